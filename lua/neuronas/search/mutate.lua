-- neuronas/search/mutate.lua: the one-edge mutation the evolutionary strategies share. One edge
-- of a forward cell gets another op of the space (two draws of rng: the edge, then the op); a
-- backward-cell space, whose edges are not six independent choices, draws a fresh cell instead.
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

return M
