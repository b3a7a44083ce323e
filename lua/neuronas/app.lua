-- neuronas/app.lua: what the bundled search scripts share: their common flags, the
-- default constraints, opening the scoring data, the progress hooks and the final output.
local cli = require("neuronas.cli")
local report = require("neuronas.report")
local progress = require("neuronas.progress")

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

-- Flags shared by the search scripts; `bits` defaults per script.
function M.flags(bits_default)
  return M.extend(M.data_flags(), {
    { name = "bits", type = "integer", default = bits_default, min = 2, max = 32, help = "weight precision FxP-n" },
    { name = "rounding", type = "choice", choices = { "nearest", "floor", "zero", "stochastic" },
      default = "nearest", help = "quantizer rounding" },
    { name = "memory", type = "number", min = 0, help = "max weight parameters" },
    { name = "area", type = "number", min = 0, help = "max chip area, mm^2" },
    { name = "latency", type = "number", min = 0, help = "max latency of one inference, ms" },
    { name = "energy", type = "number", min = 0, help = "max energy of one inference, uJ" },
    { name = "batch", type = "integer", default = 64, min = 2, help = "images per fitness batch" },
    { name = "repeat", type = "integer", default = 1, min = 1, help = "fitness batches per candidate" },
    { name = "timesteps", type = "integer", min = 1, help = "SNN timesteps T (default: the preset's, 5)" },
    { name = "seed", type = "integer", default = 1, help = "weights, data and sampling seed" },
    { name = "json", type = "string", metavar = "FILE", help = "write the JSON report here" },
    { name = "csv", type = "string", metavar = "FILE", help = "write one row per evaluated candidate here" },
    { name = "threads", type = "integer", default = 2, min = 1, max = 256,
      help = "candidates scored at once, on that many threads (same results for any value)" },
    { name = "quiet", type = "boolean", help = "no progress display" },
    { name = "variation", type = "number", min = 0, max = 10, metavar = "SIGMA",
      help = "rank by the mean score over noisy weight copies, cell sd SIGMA (docs/variation.md)" },
    { name = "variation-draws", type = "integer", default = 4, min = 1, max = 1024, help = "noisy copies per candidate" },
    { name = "energy-active", type = "number", min = 0, metavar = "UJ",
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
  if flags.data == "default" then
    if flags.preset ~= "fashion-mnist" then
      cli.fail(opts, string.format("--preset %s needs --data PATH (the embedded data is Fashion-MNIST)", flags.preset))
    end
    return nn.data.default({ split = split, limit = limit, quiet = quiet })
  end
  local fmt = flags["data-format"] or ({ ["fashion-mnist"] = "idx", cifar10 = "cifar10", cifar100 = "cifar100",
    tinyimagenet = "npy" })[flags.preset]
  return nn.data.open({ format = fmt, path = flags.data, split = split, limit = limit })
end

-- The setup options of the flags (search.setup's table).
function M.setup(flags, data, constraints)
  return {
    preset = flags.preset, bits = flags.bits, rounding = flags.rounding, constraints = constraints,
    data = data, batch = flags.batch, ["repeat"] = flags["repeat"], timesteps = flags.timesteps,
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
    ["repeat"] = flags["repeat"], timesteps = flags.timesteps, seed = flags.seed,
    data = data and data.source or flags.data, constraints = constraints, variation = M.variation(flags),
  }
end

-- A progress bar and the search hooks that drive it: feasible count and best score are those of
-- the current stage (a two-stage search starts counting afresh in stage 2).
function M.progress(flags, total, label)
  local bar = progress.new({ label = label, quiet = flags.quiet })
  local feasible, best, stage = 0, nil, nil
  local hooks = {
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
-- feasible architecture was found).
function M.finish(rep, flags, settings, out)
  out = out or io.stdout
  local layers, hw_table
  if rep.best then
    local ev = rep.evaluator
    layers = ev:layers_of(rep.best)
    local hw = ev.pipeline.hardware
    if hw and hw.report then hw_table = hw:report({ layers = layers }) end
  end
  out:write(report.summary(rep, { layers = layers, hw_table = hw_table }))
  if flags.json then report.write_file(flags.json, report.to_json(rep, settings, { layers = layers })) end
  if flags.csv then report.write_file(flags.csv, report.to_csv(rep)) end
  return rep.feasible and 0 or 3
end

return M
