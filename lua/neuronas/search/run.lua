-- neuronas/search/run.lua: drives a strategy's ask/tell loop through an evaluator.
--   strategy:ask()            -> a list of candidates { cellA =, cellB = [, constraints =, stage =] },
--                                or nil when the strategy is done
--   strategy:tell(results)    -> learns from the results of the last ask (same order)
--   strategy:prepare(ev)      -> optional, called once before the first ask with the evaluator
--                                (ev:cost_only(cand) costs a candidate without scoring it)
--   strategy:total()          -> optional, the number of candidates it will ask (progress)
--   strategy:report()         -> optional, a table of notes the summary and JSON report show
-- docs/search.md describes the contract in full.
local options = require("neuronas.search.options")
local evaluator = require("neuronas.search.evaluator")
local pareto = require("neuronas.search.pareto")
local knobs = require("neuronas.search.knobs")

local M = {}

local CAND_KEYS = { cellA = true, cellB = true, constraints = true, stage = true,
  hw = true, bits = true, timesteps = true } -- hardware knobs (neuronas.search.knobs)
local SHAPE = "{ { cellA = cell, cellB = cell [, stage = n, constraints = table] }, ... } or nil"

local function is_cell(v)
  if type(v) == "string" then return true end
  local mt = type(v) == "userdata" and getmetatable(v)
  return type(mt) == "table" and mt.__name == "neuronas.Cell"
end

-- Checks what a strategy's ask() returned: a list of candidate tables with known keys.
function M.check_candidates(cands, who)
  who = who or "strategy"
  if type(cands) ~= "table" then
    error(string.format("%s: ask() returned a %s (expected a list of candidates %s)", who, type(cands), SHAPE), 0)
  end
  if cands.cellA ~= nil or cands.cellB ~= nil then
    error(string.format("%s: ask() returned a bare candidate (expected a list of candidates %s;"
      .. " wrap it: return { cand })", who, SHAPE), 0)
  end
  for k in pairs(cands) do
    if math.type(k) ~= "integer" then
      error(string.format("%s: ask() returned a table with key '%s' (expected a list of candidates %s)",
        who, tostring(k), SHAPE), 0)
    end
  end
  for i, c in ipairs(cands) do
    if type(c) ~= "table" then
      error(string.format("%s: ask() candidate %d is a %s (expected { cellA = cell, cellB = cell })", who, i, type(c)), 0)
    end
    for k in pairs(c) do
      if not CAND_KEYS[k] then
        error(string.format("%s: ask() candidate %d has unknown key '%s' (expected: cellA, cellB, constraints, stage, hw, bits, timesteps)",
          who, i, tostring(k)), 0)
      end
    end
    for _, k in ipairs({ "cellA", "cellB" }) do
      if not is_cell(c[k]) then
        error(string.format("%s: ask() candidate %d: '%s' must be a cell (genotype string or nn.cell), got %s",
          who, i, k, type(c[k])), 0)
      end
    end
    if c.stage ~= nil and type(c.stage) ~= "string" and math.type(c.stage) ~= "integer" then
      error(string.format("%s: ask() candidate %d: 'stage' must be an integer or a string, got %s",
        who, i, type(c.stage)), 0)
    end
    if c.constraints ~= nil and type(c.constraints) ~= "table" then
      error(string.format("%s: ask() candidate %d: 'constraints' must be a table of constraints, got %s",
        who, i, type(c.constraints)), 0)
    end
    local ok, err = pcall(knobs.check, c)
    if not ok then
      error(string.format("%s: ask() candidate %d: %s", who, i,
        (tostring(err):gsub("^[^:]*:%d+: ", ""):gsub("^candidate: ", ""))), 0)
    end
  end
end

-- The best-scoring fully feasible result (first on ties), or nil. feasible(r) decides what is
-- feasible (default: r.feasible; a report drawn again under other limits passes its own).
function M.best_of(results, feasible)
  local best
  for _, r in ipairs(results) do
    local ok = feasible and feasible(r) or (not feasible and r.feasible)
    if ok and type(r.score) == "number" and r.score == r.score and (not best or r.score > best.score) then best = r end
  end
  return best
end

-- search.run(strategy, setup_or_evaluator[, hooks]) -> report table:
--   { strategy, results, best (or nil), feasible, nearest, pareto, counts, seconds, notes }
-- hooks: on_start(info) once after strategy:prepare, info = { strategy =, total = (or nil) };
-- on_result(result, evaluator) after every evaluated candidate.
-- best is the best-scoring fully feasible result the run evaluated (whatever stage asked for it).
function M.run(strategy, setup, hooks)
  if type(strategy) ~= "table" or type(strategy.ask) ~= "function" or type(strategy.tell) ~= "function" then
    error("search.run: bad argument #1 (strategy with ask() and tell(results) expected)", 2)
  end
  local ev = (type(setup) == "table" and setup.evaluate) and setup or evaluator.new(setup)
  hooks = hooks or {}
  local who = string.format("strategy '%s'", strategy.name or "custom")
  local clock = ev.clock or os.clock
  local t0 = clock()
  local all = {}
  local ok, err = pcall(function()
    if strategy.prepare then strategy:prepare(ev) end
    if hooks.on_start then hooks.on_start({ strategy = strategy, total = strategy.total and strategy:total() or nil }) end
    while true do
      local cands = strategy:ask()
      if cands == nil then break end
      M.check_candidates(cands, who)
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
  local notes
  if strategy.report then
    notes = strategy:report()
    if notes ~= nil and type(notes) ~= "table" then
      if ev.close and ev ~= setup then ev:close() end
      error(string.format("%s: report() returned a %s (expected a table of notes or nil)", who, type(notes)), 0)
    end
  end
  local best = M.best_of(all)
  local report = {
    strategy = strategy.name or "custom",
    results = all,
    best = best,
    feasible = best ~= nil,
    nearest = best == nil and pareto.nearest_misses(all, 5) or {},
    pareto = pareto.pareto(all),
    counts = options.copy(ev.count),
    seconds = clock() - t0,
    notes = notes,
    constraint_set = ev.setup and ev.setup.constraint_set,
    evaluator = ev,
  }
  if ev.close and ev ~= setup then ev:close() end
  return report
end

-- Splits one-call options into setup options and the strategy's own keys; a key that is neither
-- is an error listing both (fname names the caller).
-- Also takes out `hooks` (search.run's third argument), and when the strategy has a
-- `sample_seed` key, hands it the strategy's `seed` (sample_seed, else the setup's seed).
-- Returns setup, strategy options, hooks.
function M.split_opts(opts, strategy_keys, fname)
  local setup, strat = {}, {}
  local valid = options.copy(options.SETUP_KEYS)
  for k in pairs(strategy_keys) do valid[k] = "" end
  valid.hooks = ""
  options.check_keys(fname or "search", opts or {}, valid)
  for k, v in pairs(opts or {}) do
    if strategy_keys[k] then strat[k] = v elseif k ~= "hooks" then setup[k] = v end
  end
  if strategy_keys.sample_seed then
    strat.seed, strat.sample_seed = strat.sample_seed or setup.seed, nil
  end
  return setup, strat, opts and opts.hooks
end

return M
