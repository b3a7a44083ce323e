-- neuronas/search/two_stage.lua: NeuroNAS's two-stage cell search (docs/search.md). Stage 1
-- scores every cell c as (c, c) when it fits the memory budget and keeps the best as A*; stage 2
-- starts from -inf, scores (A*, c) only when every constraint holds and keeps the best as B*.
-- Ties keep the first (strictly higher replaces).
local options = require("neuronas.search.options")
local run = require("neuronas.search.run")

local M = {}

local function space_cells(space)
  local list = {}
  for i = 1, space:size() do list[i] = space:cell(i) end
  return list
end
M.space_cells = space_cells

function M.strategy(opts)
  opts = opts or {}
  options.check_keys("search.two_stage_strategy", opts, { space = "", constraints = "", chunk = "" })
  local nn = require("neuronas")
  local space = opts.space or nn.space("neuronas")
  local cells = type(space) == "table" and space[1] ~= nil and space or space_cells(space)
  local st = {
    name = "two_stage", cells = cells, stage = 1, i = 0, chunk = opts.chunk or 1,
    full = options.constraint_set(opts.constraints), mem = options.memory_only(opts.constraints),
    bestA = nil, bestB = nil, stage2 = {},
  }
  function st:ask()
    if self.stage == 1 and self.i >= #self.cells then
      if not self.bestA then return nil end -- nothing fits memory: stage 2 cannot start
      self.stage, self.i = 2, 0
    end
    if self.stage == 2 and self.i >= #self.cells then return nil end
    local out = {}
    for _ = 1, self.chunk do
      if self.i >= #self.cells then break end
      self.i = self.i + 1
      local c = self.cells[self.i]
      if self.stage == 1 then
        out[#out + 1] = { cellA = c, cellB = c, stage = 1, constraints = self.mem }
      else
        out[#out + 1] = { cellA = self.bestA.cellA, cellB = c, stage = 2, constraints = self.full }
      end
    end
    return out
  end
  function st:tell(results)
    for _, r in ipairs(results) do
      if r.stage == 1 then
        if r.feasible and r.score and (not self.bestA or r.score > self.bestA.score) then self.bestA = r end
      else
        self.stage2[#self.stage2 + 1] = r
        if r.feasible and r.score and (not self.bestB or r.score > self.bestB.score) then self.bestB = r end
      end
    end
  end
  function st:best() return self.bestB end
  function st:final_results() return #self.stage2 > 0 and self.stage2 or nil end
  function st:total() return 2 * #self.cells end
  return st
end

-- search.two_stage{ preset =, bits =, constraints = {...}, ... } -> report (see search.run)
function M.search(opts)
  local setup, strat = run.split_opts(opts, { space = true, chunk = true, hooks = true })
  local hooks = strat.hooks
  strat.hooks = nil
  strat.constraints = setup.constraints
  local st = options.setup(setup)
  strat.chunk = strat.chunk or st.threads
  return run.run(M.strategy(strat), st, hooks)
end

return M
