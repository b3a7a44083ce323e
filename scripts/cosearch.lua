-- scripts/cosearch.lua: hardware co-search against the fixed-hardware search at the same number of
-- scored candidates (docs/search.md, "Hardware co-search"). Both runs are search.nsga2 on score
-- up and energy down, with the same seed, population and scored budget (population x
-- generations); the first searches cells only on the default chip at --bits and the preset's T,
-- the second cells plus the knobs of --knobs (crossbar size, bits per cell, ADC bits, weight
-- precision, T). Prints both Pareto fronts and their hypervolumes against one reference point;
-- --json writes them.
local search = require("neuronas.search")
local cli = require("neuronas.cli")
local app = require("neuronas.app")
local json = require("neuronas.json")
local knobs = require("neuronas.search.knobs")
local H = require("neuronas.search.hypervolume")

local L = require("neuronas.limits")
local spec = app.extend(app.flags(), {
  { name = "population", type = "integer", default = 12, range = L.population, help = "NSGA-II population (candidates per generation)" },
  { name = "generations", type = "integer", default = 6, range = L.scored,
    help = "generations (scored candidates = population x generations, at most 1000000)" },
  { name = "knobs", type = "string", default = "xbar,device_bits,adc_bits,bits,timesteps", metavar = "LIST",
    help = "the knobs the co-search varies, comma-separated (each over its default values, docs/search.md)" },
  { name = "objective", type = "choice", choices = { "energy_uj", "energy_active_uj" }, default = "energy_uj",
    help = "the energy objective (energy_active_uj measures spikes, docs/hardware.md)" },
})
local opts = { name = "cosearch.lua",
  usage = "neuronas run cosearch.lua [--population N] [--generations N] [--objective F] [--variation SIGMA] [--json FILE] [--help]",
  description = "Hardware co-search (cells + chip knobs) vs the fixed-hardware search at the same budget." }
local flags = cli.parse({ ... }, spec, opts)
-- the scored budget bounds the run's memory (every result is kept): checked with the flags
if flags.population * flags.generations > L.scored.max then
  cli.fail(opts, string.format("flags '--population' x '--generations': at most %d scored candidates expected, got %d x %d",
    L.scored.max, flags.population, flags.generations))
end
local chosen = app.knob_space(flags.knobs, opts)

local data = app.open_data(flags, opts)
local constraints = app.merge_constraints(flags, { { table = app.default_limits(flags.preset), source = "default" } })
local field = flags.objective

local function run(label, kn)
  local setup = app.setup(flags, data, constraints)
  setup.knobs, setup.population, setup.scored = kn, flags.population, flags.population * flags.generations
  setup.objectives = { "score", field }
  if field == "energy_active_uj" then setup.activity = true end
  local bar, hooks = app.progress(flags, flags.population * flags.generations, label)
  setup.hooks = hooks
  local rep = search.nsga2(setup)
  bar:finish()
  -- the feasible results no other dominates (score up, energy down), by rising energy
  rep.front = H.front(rep.results, { objectives = setup.objectives }).front
  table.sort(rep.front, function(x, y) return x.cost[field] < y.cost[field] end)
  return rep
end

local fixed = run("fixed hardware", nil)
local co = run("co-search", chosen)

-- one reference point for both fronts: below every feasible score, above every feasible energy
local sref, eref = math.huge, -math.huge
for _, rep in ipairs({ fixed, co }) do
  for _, r in ipairs(rep.results) do
    if r.feasible and r.score and r.score > -math.huge then
      sref, eref = math.min(sref, r.score), math.max(eref, r.cost[field])
    end
  end
end
sref, eref = sref - 1, eref * 1.01

local out = { settings = app.settings(flags, data, constraints), objective = field, reference = { score = sref, energy = eref } }
for _, x in ipairs({ { "fixed", fixed }, { "cosearch", co } }) do
  local name, rep = x[1], x[2]
  local hv = 0
  if sref < math.huge then
    hv = H.front(rep.front, { objectives = { "score", field }, score_floor = sref, reference = { [field] = eref } }).hypervolume
  end
  io.stdout:write(string.format("\n%s: %d scored, %d feasible, front of %d, hypervolume %.4f (%.1f s)\n", name,
    rep.counts.scored, rep.counts.feasible, #rep.front, hv, rep.seconds))
  io.stdout:write(string.format("  %10s %10s %9s %10s  %s\n", "score", field, "area mm2", "latency ms", "cells A | B, knobs"))
  local front = {}
  for i, r in ipairs(rep.front) do
    io.stdout:write(string.format("  %10.4f %10.4f %9.4f %10.4f  %s | %s  %s\n", r.score, r.cost[field], r.cost.area_mm2,
      r.cost.latency_ms, r.cellA, r.cellB, knobs.text(r)))
    front[i] = { score = r.score, energy = r.cost[field], area_mm2 = r.cost.area_mm2, latency_ms = r.cost.latency_ms,
      cellA = r.cellA, cellB = r.cellB, knobs = knobs.text(r) }
  end
  out[name] = { scored = rep.counts.scored, feasible = rep.counts.feasible, hypervolume = hv, front = front,
    seconds = rep.seconds }
end
if flags.json then
  local f = assert(io.open(flags.json, "wb"))
  f:write(json.encode(out, { indent = "  ", nonfinite = "null" }), "\n")
  f:close()
end
