-- neuronas/search/two_stage.lua: NeuroNAS's two-stage cell search (docs/search.md). Stage 1
-- scores cells c as (c, c) when (c, c) fits the memory budget and keeps the best as A*; stage 2
-- starts from -inf, scores every (A*, c) and keeps the best that meets every constraint as B*.
-- Ties keep the first (strictly higher replaces).
-- stage1 = "feasible" (the default) first drops the cells no cell B can complete within the
-- limits (neuronas/search/prefilter.lua), so A* never dooms stage 2; stage1 = "paper" is
-- Alg. 1's literal stage 1 over every cell.
local options = require("neuronas.search.options")
local run = require("neuronas.search.run")
local prefilter = require("neuronas.search.prefilter")

local M = {}

local function space_cells(space)
  local list = {}
  for i = 1, space:size() do list[i] = space:cell(i) end
  return list
end
M.space_cells = space_cells

M.STAGE1 = { feasible = true, paper = true }

function M.strategy(opts)
  opts = opts or {}
  options.check_keys("search.two_stage_strategy", opts, { space = "", constraints = "", chunk = "", stage1 = "" })
  local stage1 = opts.stage1 or "feasible"
  if not M.STAGE1[stage1] then
    error(string.format("search.two_stage_strategy: option 'stage1': \"feasible\" or \"paper\" expected, got %s",
      tostring(stage1)), 2)
  end
  local nn = require("neuronas")
  local space = opts.space or nn.space("neuronas")
  local cells = type(space) == "table" and space[1] ~= nil and space or space_cells(space)
  local st = {
    name = "two_stage", cells = cells, cells1 = cells, stage = 1, i = 0, chunk = opts.chunk,
    stage1 = stage1, own = opts.constraints and options.constraint_set(opts.constraints) or nil,
    bestA = nil, bestB = nil, prepared = false,
  }
  -- The run's constraints (its own when given), Alg. 1's memory-only stage-1 filter, and with
  -- stage1 = "feasible" the pre-filter over every completion of every cell.
  function st:prepare(ev)
    self.chunk = self.chunk or (ev.list_size and ev:list_size()) or 1 -- the evaluator's list size
    local full = self.own or ev.setup.constraint_set
    self.mem = full:subset({ "memory" })
    if self.stage1 == "feasible" then
      self.prefilter = prefilter.run(ev, self.cells, full)
      self.cells1 = self.prefilter.kept
    end
    self.prepared = true
  end
  function st:ask()
    if not self.prepared then
      if self.stage1 == "feasible" then
        error("search.two_stage_strategy: stage1 = \"feasible\" needs the evaluator: run it through search.run", 0)
      end
      self.mem, self.prepared = (self.own or options.constraint_set({})):subset({ "memory" }), true
      self.chunk = self.chunk or 1
    end
    if self.stage == 1 and self.i >= #self.cells1 then
      if not self.bestA then return nil end -- nothing fits memory: stage 2 cannot start
      self.stage, self.i = 2, 0
    end
    if self.stage == 2 and self.i >= #self.cells then return nil end
    local out = {}
    for _ = 1, self.chunk do
      local list = self.stage == 1 and self.cells1 or self.cells
      if self.i >= #list then break end
      self.i = self.i + 1
      local c = list[self.i]
      if self.stage == 1 then
        out[#out + 1] = { cellA = c, cellB = c, stage = 1, constraints = self.mem }
      else
        out[#out + 1] = { cellA = self.bestA.cellA, cellB = c, stage = 2, constraints = self.own }
      end
    end
    return out
  end
  function st:tell(results)
    for _, r in ipairs(results) do
      local key = r.stage == 1 and "bestA" or "bestB"
      if r.stage_ok and r.score and (not self[key] or r.score > self[key].score) then self[key] = r end
    end
  end
  function st:total() return #self.cells1 + #self.cells end
  function st:report()
    return { stage1 = self.stage1, prefilter = self.prefilter,
      cellA = self.bestA and self.bestA.cellA or nil, stage2_best = self.bestB }
  end
  return st
end

-- search.two_stage{ preset =, bits =, constraints = {...}, stage1 =, ... } -> report (see search.run)
function M.search(opts)
  local setup, strat, hooks = run.split_opts(opts, { space = true, chunk = true, stage1 = true }, "search.two_stage")
  local st = options.setup(setup)
  return run.run(M.strategy(strat), st, hooks)
end

return M
