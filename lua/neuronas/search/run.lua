-- neuronas/search/run.lua: drives a strategy's ask/tell loop through an evaluator.
--   strategy:ask()         -> a list of candidates { cellA =, cellB = [, constraints =, stage =] },
--                             or nil when the strategy is done
--   strategy:tell(results) -> learns from the results of the last ask (same order)
local options = require("neuronas.search.options")
local evaluator = require("neuronas.search.evaluator")
local pareto = require("neuronas.search.pareto")

local M = {}

-- search.run(strategy, setup_or_evaluator[, { on_result = fn }]) -> report table:
--   { strategy, results, best (or nil), feasible, nearest, pareto, counts, seconds }
-- best is the strategy's own pick (strategy:best()) when it has one, else the feasible result
-- with the highest score (first on ties).
function M.run(strategy, setup, hooks)
  local ev = (type(setup) == "table" and setup.evaluate) and setup or evaluator.new(setup)
  hooks = hooks or {}
  local clock = ev.clock or os.clock
  local t0 = clock()
  local all = {}
  local ok, err = pcall(function()
    while true do
      local cands = strategy:ask()
      if not cands then break end
      local res = ev:evaluate(cands)
      for _, r in ipairs(res) do
        all[#all + 1] = r
        if hooks.on_result then hooks.on_result(r, ev) end
      end
      strategy:tell(res)
    end
  end)
  if not ok then
    if ev.close and ev ~= setup then ev:close() end
    error(err, 0)
  end
  local best
  if strategy.best then
    best = strategy:best()
  else
    for _, r in ipairs(all) do
      if r.feasible and r.score and (not best or r.score > best.score) then best = r end
    end
  end
  local report = {
    strategy = strategy.name or "custom",
    results = all,
    best = best,
    feasible = best ~= nil,
    nearest = best == nil and pareto.nearest_misses(strategy.final_results and strategy:final_results() or all, 5) or {},
    pareto = pareto.pareto(all),
    counts = options.copy(ev.count),
    seconds = clock() - t0,
    evaluator = ev,
  }
  if ev.close and ev ~= setup then ev:close() end
  return report
end

-- Splits one-call options into setup options and the strategy's own keys.
function M.split_opts(opts, strategy_keys)
  local setup, strat = {}, {}
  for k, v in pairs(opts or {}) do
    if strategy_keys[k] then strat[k] = v else setup[k] = v end
  end
  return setup, strat
end

return M
