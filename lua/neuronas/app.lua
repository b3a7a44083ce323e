-- neuronas/app.lua: what the bundled search scripts share: their common flags, the
-- default constraints, opening the scoring data, the progress hooks and the final output.
local cli = require("neuronas.cli")
local report = require("neuronas.report")
local progress = require("neuronas.progress")
local L = require("neuronas.limits")

local M = {}

-- docs/search.md: the NeuroNAS paper's evaluation budget, for the CIFAR and TinyImageNet presets.
M.PAPER = { memory = 10e6, area = 1000, latency = 500, energy = 1000 }
-- The fashion-mnist preset never comes near the paper's budget. These limits are the medians
-- of the 729 (c, c) networks at FxP8 under the default hardware model (scripts/calibrate.lua
-- prints them), so about half of the space violates each one and the default run shows the
-- constraints at work.
M.SMALL = { memory = 28000, area = 5.6, latency = 30, energy = 39 }

-- The preset and data flags every script that builds nets on data takes (M.open_data reads them).
function M.data_flags()
  return {
    { name = "preset", type = "choice", choices = { "fashion-mnist", "cifar10", "cifar100", "tinyimagenet" },
      default = "fashion-mnist", help = "network and data preset (docs/model.md)" },
    { name = "data", type = "string", default = "default", metavar = "PATH",
      help = "dataset path; 'default' = Fashion-MNIST (Debian's, else the embedded subset)" },
    { name = "data-format", type = "choice", choices = { "idx", "cifar10", "cifar100", "npy" },
      help = "format of --data (default: from the preset)" },
  }
end

-- Flags shared by the search scripts; `bits` defaults to the quantizer's (L.bits.default) unless
-- a script gives its own (the SNASNet baseline: L.bits.float).
function M.flags(bits_default)
  return M.extend(M.data_flags(), {
    { name = "bits", type = "integer", default = bits_default or L.bits.default, range = L.bits,
      help = "weight precision FxP-n" },
    { name = "rounding", type = "choice", choices = { "nearest", "floor", "zero", "stochastic" },
      default = "nearest", help = "quantizer rounding" },
    { name = "memory", type = "number", range = L.limit, help = "max weight parameters" },
    { name = "area", type = "number", range = L.limit, help = "max chip area, mm^2" },
    { name = "latency", type = "number", range = L.limit, help = "max latency of one inference, ms" },
    { name = "energy", type = "number", range = L.limit, help = "max energy of one inference, uJ" },
    { name = "batch", type = "integer", default = 64, range = L.batch, help = "images per fitness batch" },
    { name = "repeat", type = "integer", default = 1, range = L["repeat"], help = "fitness batches per candidate" },
    { name = "timesteps", type = "integer", range = L.timesteps, help = "SNN timesteps T (default: the preset's, 5)" },
    { name = "channels", type = "integer", range = L.channels,
      help = "C, cell A's width; cell B's is 2C (default: the preset's: 16 fashion-mnist, 128 cifar100 and tinyimagenet, 256 cifar10)" },
    { name = "seed", type = "integer", default = 1, range = L.seed, help = "weights, data and sampling seed" },
    { name = "json", type = "string", metavar = "FILE", output = true, help = "write the JSON report here" },
    { name = "csv", type = "string", metavar = "FILE", output = true, help = "write one row per evaluated candidate here" },
    { name = "threads", type = "integer", default = 2, range = L.threads,
      help = "candidates scored at once, on that many threads (same results for any value)" },
    { name = "quiet", type = "boolean", help = "no progress display" },
    { name = "variation", type = "number", range = L.sigma, metavar = "SIGMA",
      help = "rank by the mean score over noisy weight copies, cell sd SIGMA (docs/variation.md)" },
    { name = "variation-draws", type = "integer", default = 4, range = L.draws, help = "noisy copies per candidate" },
    { name = "energy-active", type = "number", range = L.limit, metavar = "UJ",
      help = "max activity-aware energy, uJ (docs/hardware.md; measures every candidate's spikes)" },
    { name = "activity", type = "boolean", help = "measure the activity-aware energy without limiting it" },
  })
end

-- Appends extra flag specs to a list.
function M.extend(list, extra)
  for _, f in ipairs(extra) do list[#list + 1] = f end
  return list
end

-- The constraint table from the flags: given limits over the defaults (nil defaults: none).
function M.constraints(flags, defaults)
  local c = {}
  for _, k in ipairs({ "memory", "area", "latency", "energy" }) do
    c[k] = flags[k] or (defaults and defaults[k])
  end
  c.energy_active_uj = flags["energy-active"]
  return c
end

-- The default limits of a preset.
function M.default_limits(preset)
  return preset == "fashion-mnist" and M.SMALL or M.PAPER
end

-- Opens the data of the flags: split "train" (default) or "test", optionally only the first
-- `limit` records; --data default is Fashion-MNIST (nn.data.default).
function M.open_data(flags, opts, split, limit, quiet)
  local nn = require("neuronas")
  split = split or "train"
  -- --data-broadcast (scripts that distribute a search): under mpirun only rank 0 reads the data
  if flags["data-broadcast"] and require("neuronas.search.mpi").rank() > 0 then return nil end
  if flags.data == "default" then
    if flags.preset ~= "fashion-mnist" then
      cli.fail(opts, string.format("--preset %s needs --data PATH (the embedded data is Fashion-MNIST)", flags.preset))
    end
    return nn.data.default({ split = split, limit = limit, quiet = quiet })
  end
  local fmt = flags["data-format"] or ({ ["fashion-mnist"] = "idx", cifar10 = "cifar10", cifar100 = "cifar100",
    tinyimagenet = "npy" })[flags.preset]
  local ds = nn.data.open({ format = fmt, path = flags.data, split = split, limit = limit })
  -- images of the preset's shape, labels within its classes: else every candidate would fail
  -- later, with a message naming neither the flag nor the file
  local net = nn.net({ preset = flags.preset })
  local want = net:config()
  net:close()
  local c, h, w = want.input[1], want.input[2], want.input[3]
  if ds.channels ~= c or ds.height ~= h or ds.width ~= w then
    cli.fail(opts, string.format("--data %s: images of %dx%dx%d, --preset %s takes %dx%dx%d", flags.data,
      ds.channels, ds.height, ds.width, flags.preset, c, h, w))
  end
  if ds.classes > want.classes then
    cli.fail(opts, string.format("--data %s: %d classes, --preset %s has %d", flags.data, ds.classes, flags.preset,
      want.classes))
  end
  return ds
end

-- The setup options of the flags (search.setup's table).
function M.setup(flags, data, constraints)
  return {
    preset = flags.preset, bits = flags.bits, rounding = flags.rounding, constraints = constraints,
    data = data, batch = flags.batch, ["repeat"] = flags["repeat"], timesteps = flags.timesteps,
    net = flags.channels and { channels = flags.channels } or nil,
    seed = flags.seed, threads = flags.threads, variation = M.variation(flags),
    activity = (flags.activity or flags["energy-active"]) and true or nil,
  }
end

-- The variation table of the flags (docs/variation.md), nil without --variation.
function M.variation(flags)
  if not flags.variation then return nil end
  return { sigma = flags.variation, draws = flags["variation-draws"], seed = flags.seed }
end

-- The settings recorded in a report.
function M.settings(flags, data, constraints)
  return {
    preset = flags.preset, bits = flags.bits, rounding = flags.rounding, batch = flags.batch,
    ["repeat"] = flags["repeat"], timesteps = flags.timesteps, channels = flags.channels, seed = flags.seed,
    data = data and data.source or flags.data, constraints = constraints, variation = M.variation(flags),
  }
end

-- A progress bar and the search hooks that drive it: feasible count and best score are those of
-- the current stage (a two-stage search starts counting afresh in stage 2).
function M.progress(flags, total, label)
  local bar = progress.new({ label = label, quiet = flags.quiet })
  local feasible, best, stage = 0, nil, nil
  local hooks = {
    -- the strategy's own count, once it is known (after a stage-1 pre-filter, say)
    on_start = function(info)
      if info.total then total = info.total end
    end,
    on_result = function(r)
      if r.stage ~= stage then feasible, best, stage = 0, nil, r.stage end
      if r.feasible then
        feasible = feasible + 1
        if r.score and (not best or r.score > best) then best = r.score end
      end
      bar:update({ done = r.index, total = total, feasible = feasible, best = best,
        stage = r.stage and ("stage " .. r.stage) or nil })
    end,
  }
  return bar, hooks
end

-- Prints the summary and writes the requested files; returns the exit status (0, or 3 when no
-- feasible architecture was found). extra: { sources = { constraint name = where it came from } }.
function M.finish(rep, flags, settings, out, extra)
  out = out or io.stdout
  extra = extra or {}
  local layers, hw_table
  if rep.best then
    local ev = rep.evaluator
    layers = ev:layers_of(rep.best)
    local hw = ev.pipeline.hardware
    -- a co-search's best is costed on its own chip (docs/search.md "Hardware co-search")
    if hw and rep.best.hw then hw = require("neuronas.search.knobs").hardware(hw, rep.best.hw) end
    -- the table's total line is the cost's own (spikesim packs layers into shared tiles, so its
    -- per-layer tiles do not add up to the network's)
    local cost = {}
    for k, v in pairs(rep.best.cost or {}) do cost[k] = v end
    cost.layers = layers
    if hw and hw.report then hw_table = hw:report(cost) end
  end
  out:write(report.summary(rep, { layers = layers, hw_table = hw_table, sources = extra.sources }))
  if flags.json then
    report.write_file(flags.json, report.to_json(rep, settings, { layers = layers, sources = extra.sources }))
  end
  if flags.csv then report.write_file(flags.csv, report.to_csv(rep)) end
  if flags.html then
    local hs = {}
    for k, v in pairs(settings or {}) do hs[k] = v end
    hs.constraint_sources = extra.sources
    require("neuronas.report_html").write(flags.html, rep, hs, { layers = layers })
  end
  return rep.feasible and 0 or 3
end

-- Runs a user's Lua file (--constraints, --hardware, --strategy) and returns what it returns;
-- the file gets `...` = ctx. A missing or broken file is a usage error naming the flag.
function M.load_file(opts, flag, path, ctx)
  local chunk, err = loadfile(path, "t")
  if not chunk then cli.fail(opts, string.format("--%s %s: %s", flag, path, err)) end
  local ok, v = pcall(chunk, ctx)
  -- Ctrl-C while the file runs is the user's stop (exit 130), not a fault of the file
  if not ok and tostring(v):find("interrupted!$") then error(v, 0) end
  if not ok then cli.fail(opts, string.format("--%s %s: %s", flag, path, tostring(v))) end
  return v
end

-- The constraints of a run, merged from lowest to highest priority: the preset's defaults
-- (unless defaults == false), the script's own (main{ constraints = }), --constraints FILE, then
-- the limit flags. A later `name = false` drops a limit. Returns the table and, per name, where
-- it came from ("default", "script", "file PATH", "--energy").
function M.merge_constraints(flags, layers)
  local c, sources = {}, {}
  for _, layer in ipairs(layers) do
    for k, v in pairs(layer.table or {}) do
      if v == false then
        c[k], sources[k] = nil, nil
      else
        c[k], sources[k] = v, layer.source
      end
    end
  end
  for _, k in ipairs({ "memory", "area", "latency", "energy" }) do
    if flags[k] then c[k], sources[k] = flags[k], "--" .. k end
  end
  if flags["energy-active"] then -- docs/hardware.md "Activity-aware energy"
    c.energy_active_uj, sources.energy_active_uj = flags["energy-active"], "--energy-active"
  end
  return c, sources
end

-- The strategies --strategy names (a Lua file is the other form).
M.STRATEGIES = { "two_stage", "random", "evolution", "nsga2" }

-- The flags of the main job on top of M.flags.
function M.main_flags()
  return {
    { name = "strategy", type = "string", metavar = "NAME|FILE",
      help = "two_stage (default), random, evolution, or a Lua file returning a strategy (docs/search.md)" },
    { name = "stage1", type = "choice", choices = { "feasible", "paper" }, default = "feasible",
      help = "two_stage: drop cells no cell B completes within the limits, or Alg. 1's literal stage 1" },
    { name = "constraints", type = "string", metavar = "FILE",
      help = "Lua file returning constraints (limits, {fn, max, unit, doc}, predicates); limit flags win" },
    { name = "hardware", type = "string", metavar = "FILE",
      help = "Lua file returning nn.ela options or an nn.ela object (default: the neuronas model)" },
    { name = "budget", type = "integer", range = L.num,
      help = "random/evolution: candidates to evaluate (default: 2 x cells, the two-stage count)" },
    { name = "journal", type = "string", metavar = "FILE", default = "neuronas-search.journal", output = true,
      help = "journal of evaluated candidates" },
    { name = "resume", type = "boolean", help = "continue from the journal of an interrupted run" },
    { name = "cells", type = "integer", range = L.cells,
      help = "two_stage: search only the first N cells of the space (quick trials); random/evolution: 2 x N candidates" },
    { name = "population", type = "integer", range = L.population, help = "nsga2: population (default 32)" },
    { name = "generations", type = "integer", range = L.generations, help = "nsga2: generations after the first (default 44)" },
    { name = "knobs", type = "string", metavar = "LIST",
      help = "nsga2: also search these hardware knobs, e.g. xbar,device_bits,adc_bits,bits,timesteps (docs/search.md)" },
    { name = "html", type = "string", metavar = "FILE", output = true, help = "write the HTML report here (docs/report.md)" },
    { name = "data-broadcast", type = "boolean",
      help = "under mpirun: only rank 0 reads --data and sends the scoring batches (docs/cluster.md)" },
  }
end

-- The knob space of a comma-separated list of knob names, each over its default values
-- (neuronas.search.knobs, docs/search.md "Hardware co-search"); a usage error names a bad one.
function M.knob_space(list, opts)
  local knobs = require("neuronas.search.knobs")
  local space = {}
  for name in list:gmatch("[^,%s]+") do
    if not knobs.DEFAULTS[name] then
      cli.fail(opts, string.format("--knobs: unknown knob '%s' (expected: %s)", name, table.concat(knobs.ORDER, ", ")))
    end
    space[name] = knobs.DEFAULTS[name]
  end
  return space
end

-- A strategy object from a name, a file, an object or a function(ctx) returning one.
function M.make_strategy(what, ctx, opts)
  local search = require("neuronas.search")
  local budget = ctx.flags.budget or 2 * #ctx.cells
  local named = {
    two_stage = function()
      return search.two_stage_strategy({ space = ctx.cells, stage1 = ctx.flags.stage1 })
    end,
    random = function()
      return search.random_strategy({ num = budget, seed = ctx.flags.seed })
    end,
    evolution = function()
      return search.evolution_strategy({ cycles = budget, seed = ctx.flags.seed })
    end,
    nsga2 = function()
      return search.nsga2_strategy({ space = ctx.space, seed = ctx.flags.seed,
        population = ctx.flags.population, generations = ctx.flags.generations,
        knobs = ctx.flags.knobs and M.knob_space(ctx.flags.knobs, opts) or nil })
    end,
  }
  local st = what
  if ctx.flags.knobs and what ~= "nsga2" then
    cli.fail(opts, "--knobs: only with --strategy nsga2 (the hardware co-search, docs/search.md)")
  end
  if ctx.flags.cells and what == "nsga2" then
    -- nsga2 breeds over the whole space: a list of cells would not bound it
    cli.fail(opts, "--cells: not with --strategy nsga2 (it breeds over the whole space; size it with "
      .. "--population and --generations)")
  end
  if type(what) == "string" then
    if named[what] then
      st = named[what]()
    elseif what:find("%.lua$") then
      st = M.load_file(opts, "strategy", what, ctx)
    else
      cli.fail(opts, string.format("--strategy: one of %s or a FILE.lua expected, got '%s'",
        table.concat(M.STRATEGIES, "|"), what))
    end
  end
  if type(st) == "function" then st = st(ctx) end
  if type(st) ~= "table" or type(st.ask) ~= "function" or type(st.tell) ~= "function" then
    cli.fail(opts, string.format("--strategy %s: a strategy object with ask() and tell(results) expected, got %s",
      tostring(what), type(st)))
  end
  return st
end

-- app.main{ ... } -> exit status: the main job (scripts/neuronas.lua) with a script's own parts.
--   args         the command-line arguments (default: the script's `arg`)
--   name, usage, description   for --help and error lines
--   strategy     a name, a strategy object, or function(ctx) -> strategy (--strategy wins)
--   constraints  a constraints table over the preset's defaults (--constraints, flags win)
--   defaults     false: no default limits (the preset's otherwise)
--   hardware     nn.ela options or an nn.ela object (--hardware wins)
--   bits         default --bits (neuronas.limits: the quantizer's, 8);  flags: extra flag specs, read back from ctx.flags
-- ctx (what a strategy function or file receives) = { flags, cells, space, seed, threads }.
-- Every strategy gets the progress display, summary, journal/--resume, --json and --csv.
function M.main(o)
  o = o or {}
  local nn = require("neuronas")
  local search = require("neuronas.search")
  local spec = M.extend(M.extend(M.flags(o.bits), M.main_flags()), o.flags or {})
  local opts = { name = o.name or "neuronas.lua",
    usage = o.usage or ("neuronas run " .. (o.name or "neuronas.lua") .. " [--strategy NAME|FILE] [--constraints FILE]"
      .. " [--hardware FILE] [--memory N] [--area MM2] [--latency MS] [--energy UJ] [--json FILE] [--csv FILE]"
      .. " [--resume] [--help]"),
    description = o.description or "Hardware-aware SNN cell search (NeuroNAS, docs/search.md)." }
  local flags = cli.parse(o.args or arg or {}, spec, opts)
  local space = nn.space("neuronas")
  local cells = {}
  for i = 1, flags.cells or space:size() do cells[i] = space:cell(i) end
  local ctx = { flags = flags, cells = cells, space = space, seed = flags.seed, threads = flags.threads }

  local layers = {}
  if o.defaults ~= false then layers[#layers + 1] = { table = M.default_limits(flags.preset), source = "default" } end
  local C = require("neuronas.constraints")
  if o.constraints then
    layers[#layers + 1] = { table = C.is_set(o.constraints) and o.constraints:spec() or o.constraints, source = "script" }
  end
  if flags.constraints then
    local t = M.load_file(opts, "constraints", flags.constraints, ctx)
    if C.is_set(t) then t = t:spec() end
    if type(t) ~= "table" then
      cli.fail(opts, string.format("--constraints %s: a table of constraints expected, got %s", flags.constraints, type(t)))
    end
    layers[#layers + 1] = { table = t, source = "file " .. flags.constraints }
  end
  local constraints, sources = M.merge_constraints(flags, layers)
  local ok, err = pcall(C.new, constraints)
  if not ok then cli.fail(opts, tostring(err)) end

  local hardware = o.hardware
  if flags.hardware then hardware = M.load_file(opts, "hardware", flags.hardware, ctx) end
  if hardware ~= nil then
    local hok, herr = pcall(function()
      if type(hardware) == "table" and getmetatable(hardware) == nil then hardware = nn.ela(hardware) end
      if not (type(hardware) == "userdata" or type(hardware) == "table") or not hardware.evaluate then
        error(string.format("nn.ela options or an nn.ela object expected, got %s", type(hardware)), 0)
      end
    end)
    if not hok then
      herr = tostring(herr):gsub("^[^:\n]+:%d+: ", "") -- the message, not where in app.lua it was raised
      cli.fail(opts, string.format("--hardware %s: %s", tostring(flags.hardware or "(script)"), herr))
    end
  end

  local strategy = M.make_strategy(flags.strategy or o.strategy or "two_stage", ctx, opts)
  local data = M.open_data(flags, opts)
  if data and #data < flags.batch then
    cli.fail(opts, string.format("--batch %d is larger than the data (%d image%s)", flags.batch, #data,
      #data == 1 and "" or "s"))
  end
  local setup = M.setup(flags, data, constraints)
  setup.hardware, setup.journal, setup.resume = hardware, flags.journal, flags.resume
  -- under mpirun (docs/cluster.md): rank 0 goes on with a remote pipeline; the other ranks serve
  -- candidates here until rank 0 is done, then exit. A strategy that asks `chunk` candidates at
  -- a time (two_stage, random) asks a batch that keeps every worker busy (the remote pipeline's
  -- list size, when its chunk is left to the evaluator).
  local remote = search.mpi_pipeline(setup, { data_broadcast = flags["data-broadcast"] })
  if remote then
    setup.pipeline = remote
    if type(strategy.chunk) == "number" then strategy.chunk = remote.batch end
  end
  local bar, hooks = M.progress(flags, 2 * #cells, "search")
  local rep = search.run(strategy, setup, hooks)
  bar:finish()
  local settings = M.settings(flags, data, constraints)
  settings.strategy = rep.strategy
  settings.hardware = flags.hardware or (o.hardware and "script") or "default"
  return M.finish(rep, flags, settings, nil, { sources = sources })
end

return M
