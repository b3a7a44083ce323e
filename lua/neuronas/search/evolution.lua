-- neuronas/search/evolution.lua: regularized evolution (Real et al. 2019) over (cell A, cell B)
-- pairs: a population of `population` members, each cycle samples `sample` of them, mutates one
-- edge of the best (of A or B, at random) and replaces the oldest. Infeasible candidates get -inf
-- fitness and die out. `cycles` counts all evaluations, the initial population included.
local options = require("neuronas.search.options")
local run = require("neuronas.search.run")
local mutate_edge = require("neuronas.search.mutate")

local M = {}

function M.strategy(opts)
  opts = opts or {}
  options.check_keys("search.evolution_strategy", opts, { space = "", population = "", sample = "", cycles = "", seed = "" })
  local nn = require("neuronas")
  local space = opts.space or nn.space("neuronas")
  local rng = nn.rng(opts.seed or 1)
  local st = {
    name = "evolution", pop = {}, P = opts.population or 20, S = opts.sample or 5,
    cycles = opts.cycles or 200, n = 0, pending = nil,
  }
  assert(st.S <= st.P, "search.evolution_strategy: sample must not exceed population")
  local function mutate(cell) return mutate_edge.one_edge(space, rng, cell) end
  function st:ask()
    if self.n >= self.cycles then return nil end
    self.n = self.n + 1
    if #self.pop < self.P then
      return { { cellA = space:sample(rng), cellB = space:sample(rng), stage = 1 } }
    end
    local parent
    for _ = 1, self.S do
      local m = self.pop[rng:integer(1, #self.pop)]
      if not parent or m.fitness > parent.fitness then parent = m end
    end
    local a, b = parent.cellA, parent.cellB
    if rng:integer(0, 1) == 0 then a = mutate(a) else b = mutate(b) end
    return { { cellA = a, cellB = b, stage = 1 } }
  end
  function st:tell(results)
    for _, r in ipairs(results) do
      local fit = (r.feasible and r.score) or -math.huge
      self.pop[#self.pop + 1] = { cellA = r.cellA, cellB = r.cellB, fitness = fit }
      if #self.pop > self.P then table.remove(self.pop, 1) end
    end
  end
  function st:total() return self.cycles end
  return st
end

-- search.evolution{ population =, sample =, cycles =, ... } -> report
function M.search(opts)
  local setup, strat, hooks = run.split_opts(opts, { space = true, population = true, sample = true, cycles = true,
    sample_seed = true }, "search.evolution")
  return run.run(M.strategy(strat), options.setup(setup), hooks)
end

return M
