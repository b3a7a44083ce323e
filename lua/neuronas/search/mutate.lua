-- neuronas/search/mutate.lua: the one-edge mutation the evolutionary strategies share. One edge
-- of a forward cell gets another op of the space (two draws of rng: the edge, then the op); a
-- backward-cell space, whose edges are not six independent choices, draws a fresh cell instead.
-- A candidate's hardware knobs (neuronas.search.knobs) mutate one at a time, to another value of
-- the knob space.
local M = {}

-- Whether a space's cells mutate edge by edge (else whole cells are drawn).
function M.edgewise(space)
  return #space:ops() >= 2 and not (space.is_backward and space:is_backward())
end

-- mutate.one_edge(space, rng, cell) -> a new nn.cell
function M.one_edge(space, rng, cell)
  local nn = require("neuronas")
  if not M.edgewise(space) then return space:sample(rng) end
  if type(cell) == "string" then cell = nn.cell(cell) end
  local names = cell:ops()
  local i = rng:integer(1, #names)
  local choices = {}
  for _, o in ipairs(space:ops()) do
    if o ~= names[i] then choices[#choices + 1] = o end
  end
  names[i] = choices[rng:integer(1, #choices)]
  return nn.cell(names)
end

-- mutate.knob(kspace, rng, cand) -> true when one knob of cand (a knob space as knobs.space
-- returns it, each knob with at least two values) was set to another of its values (two draws:
-- the knob, then the value); false, drawing nothing, when no knob has a second value.
function M.knob(kspace, rng, cand)
  local movable = {}
  for _, k in ipairs(kspace) do
    if #k.values >= 2 then movable[#movable + 1] = k end
  end
  if #movable == 0 then return false end
  local knobs = require("neuronas.search.knobs")
  local k = movable[rng:integer(1, #movable)]
  local now, others = knobs.get(cand, k.name), {}
  for _, v in ipairs(k.values) do
    if v ~= now then others[#others + 1] = v end
  end
  knobs.set(cand, k.name, others[rng:integer(1, #others)])
  return true
end

return M
