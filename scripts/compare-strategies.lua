-- scripts/compare-strategies.lua: two-stage vs. NSGA-II vs. regularized evolution vs. random (A, B)
-- pairs on the main job's default setting (docs/search.md "Comparing strategies"), at the same
-- number of scored candidates: the two-stage search runs first over the whole space, and each
-- other strategy stops once it has scored as many distinct candidates. Prints a Markdown table:
-- feasible front size, hypervolume, best feasible score, candidates evaluated and scored, wall time.
--   neuronas run scripts/compare-strategies.lua [--seed N] [--threads N] [--json FILE]
-- All four share one hypervolume reference: the run's limits for the costs and, for the score,
-- the lowest feasible score any of the four runs evaluated (docs/report.md).
local cli = require("neuronas.cli")
local L = require("neuronas.limits")
local app = require("neuronas.app")
local search = require("neuronas.search")
local H = require("neuronas.search.hypervolume")
local nn = require("neuronas")

local spec = app.extend(app.data_flags(), {
  { name = "seed", type = "integer", default = 1, range = L.seed, help = "weights, data and sampling seed" },
  { name = "threads", type = "integer", default = 2, range = L.threads, help = "candidates scored at once" },
  { name = "bits", type = "integer", default = L.bits.default, range = L.bits, help = "weight precision FxP-n" },
  { name = "json", type = "string", metavar = "FILE", output = true, help = "also write the figures as JSON" },
  { name = "quiet", type = "boolean", help = "no progress lines" },
})
local opts = { name = "compare-strategies.lua", usage = "neuronas run compare-strategies.lua [--seed N] [--threads N]",
  description = "Two-stage vs. NSGA-II vs. evolution vs. random at the same number of scored candidates." }
local flags = cli.parse({ ... }, spec, opts)
flags.batch, flags["repeat"], flags.rounding = 64, 1, "nearest"

local limits = app.default_limits(flags.preset)
local data = app.open_data(flags, opts)
local function setup()
  return app.setup(flags, data, limits)
end

-- Distinct scored candidates of a list of results.
local function scored_keys(results)
  local seen, n = {}, 0
  for _, r in ipairs(results) do
    if r.score ~= nil and not seen[r.key] then seen[r.key], n = true, n + 1 end
  end
  return n
end

-- Wraps a strategy so the run stops once `n` distinct candidates were scored: each batch the
-- strategy asks for is handed out in slices no longer than the scores still allowed (a slice
-- can add at most one score per candidate), and the strategy is told the whole batch's results.
local function budgeted(inner, n)
  local w = { name = inner.name, seen = {}, count = 0, queue = {}, got = {} }
  function w:ask()
    if self.count >= n then return nil end
    if #self.queue == 0 then
      local batch = inner:ask()
      if not batch or #batch == 0 then return nil end
      self.queue, self.got = batch, {}
    end
    local k = math.min(#self.queue, n - self.count)
    local slice = {}
    for i = 1, k do slice[i] = table.remove(self.queue, 1) end
    return slice
  end
  function w:tell(results)
    for _, r in ipairs(results) do
      self.got[#self.got + 1] = r
      if r.score ~= nil and not self.seen[r.key] then self.seen[r.key], self.count = true, self.count + 1 end
    end
    if #self.queue == 0 then inner:tell(self.got) end
  end
  return w
end

-- Random (A, B) pairs of the NeuroNAS space, `chunk` at a time.
local function random_pairs(seed, chunk)
  local space, rng = nn.space("neuronas"), nn.rng(seed)
  local st = { name = "random" }
  function st:ask()
    local out = {}
    for i = 1, chunk do out[i] = { cellA = space:sample(rng), cellB = space:sample(rng), stage = 1 } end
    return out
  end
  function st:tell() end
  return st
end

local function log(fmt, ...)
  if not flags.quiet then io.stderr:write(string.format(fmt, ...) .. "\n") end
end

local runs = {}
log("two_stage: the whole space (1,458 candidates)")
local two = search.two_stage(setup())
runs[1] = { name = "two-stage", rep = two }
local N = scored_keys(two.results)
log("two_stage: %d scored; the others stop at %d scored", N, N)

local others = {
  { "NSGA-II", function() return search.nsga2_strategy({ seed = flags.seed, generations = 10000 }) end },
  { "evolution", function() return search.evolution_strategy({ seed = flags.seed, cycles = 1000000 }) end },
  { "random (A, B)", function() return random_pairs(flags.seed, flags.threads) end },
}
for _, o in ipairs(others) do
  log("%s ...", o[1])
  local rep = search.run(budgeted(o[2](), N), setup())
  runs[#runs + 1] = { name = o[1], rep = rep }
end

-- one score floor for all: the lowest feasible score any run evaluated
local floor
for _, r in ipairs(runs) do
  for _, x in ipairs(r.rep.results) do
    if x.score and H.finite(x.score) and H.fully_feasible(x, limits) and (not floor or x.score < floor) then floor = x.score end
  end
end

local rows = {}
io.stdout:write(string.format("\nDefault data (%s), FxP%d, limits memory %s params, area %s mm^2, latency %s ms, energy %s uJ;"
  .. " seed %d, %d threads; %d scored candidates each; hypervolume reference: the limits and score %.4f.\n\n",
  data.source or flags.data, flags.bits, limits.memory, limits.area, limits.latency, limits.energy, flags.seed,
  flags.threads, N, floor or 0 / 0))
io.stdout:write("| strategy | evaluated | scored | feasible | front | hypervolume | best feasible score | wall time, s |\n")
io.stdout:write("|---|---:|---:|---:|---:|---:|---:|---:|\n")
for _, r in ipairs(runs) do
  local f = H.front(r.rep.results, { limits = limits, score_floor = floor })
  local best
  for _, x in ipairs(r.rep.results) do
    if x.score and H.fully_feasible(x, limits) and (not best or x.score > best) then best = x.score end
  end
  local row = { strategy = r.name, evaluated = #r.rep.results, scored = scored_keys(r.rep.results), feasible = f.feasible,
    front = #f.front, hypervolume = f.hypervolume, best = best, seconds = r.rep.seconds }
  rows[#rows + 1] = row
  io.stdout:write(string.format("| %s | %d | %d | %d | %d | %.4f | %s | %.1f |\n", row.strategy, row.evaluated, row.scored,
    row.feasible, row.front, row.hypervolume, best and string.format("%.4f", best) or "none", row.seconds))
end
if flags.json then
  require("neuronas.report").write_file(flags.json, require("neuronas.json").encode({ seed = flags.seed,
    threads = flags.threads, scored = N, score_floor = floor, limits = limits, rows = rows }, { indent = "  " }) .. "\n")
end
