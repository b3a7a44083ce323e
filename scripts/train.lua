-- scripts/train.lua: train a found architecture with surrogate-gradient BPTT (docs/training.md),
-- optionally quantization-aware (--bits) or evaluated after post-training quantization (--ptq).
--   neuronas run scripts/train.lua --genotype "CELL_A,CELL_B" [--bits 8] [--epochs 3] ...
--   neuronas run scripts/train.lua --from report.json ...      (the search report's best cells)
-- Prints a progress bar per epoch and one line per epoch (loss, train/test accuracy, images/s);
-- saves a checkpoint each epoch (--checkpoint; an existing one is resumed); --json writes the
-- curve (per epoch, and each epoch's per-batch loss and accuracy). Exit status: 0 done; 2 bad flags; 1 an error.
local nn = require("neuronas")
local cli = require("neuronas.cli")
local json = require("neuronas.json")
local core = require("neuronas.core")


local app = require("neuronas.app")
local L = require("neuronas.limits")

local spec = app.extend({
  { name = "genotype", type = "string", metavar = "A,B",
    help = "cells A and B (any cell form), comma-separated; one cell = both" },
  { name = "from", type = "string", metavar = "FILE", help = "take the cells of a search report's best result" },
}, app.data_flags())
app.extend(spec, {
  { name = "epochs", type = "integer", default = 3, range = L.epochs, help = "training epochs" },
  { name = "bits", type = "integer", default = 32, range = L.bits,
    help = "weight precision: 32 = float, else QAT at FxP-n" },
  { name = "optimizer", type = "choice", choices = { "sgd", "adam" },
    help = "SGD (momentum 0.9, weight decay 5e-4; docs/training.md) or Adam (default: adam for fashion-mnist, "
      .. "whose silent classifier LIF stalls SGD; sgd for the paper presets)" },
  { name = "lr", type = "number", range = L.lr, help = "initial learning rate (default 0.1 sgd, 0.003 adam)" },
  { name = "lr-min", type = "number", range = L.lr_min, help = "cosine end point, at most --lr (default lr/100)" },
  { name = "batch", type = "integer", default = 64, range = L.batch, help = "images per step" },
  { name = "limit", type = "integer", range = L.count, help = "train on the first N images only" },
  { name = "test-limit", type = "integer", range = L.count, help = "evaluate on the first N test images only" },
  { name = "timesteps", type = "integer", range = L.timesteps, help = "SNN timesteps T (default: the preset's, 5)" },
  { name = "seed", type = "integer", default = 1, range = L.seed, help = "weights, data order, augmentation and dropout seed" },
  { name = "no-augment", type = "boolean", help = "no random crop / flip" },
  { name = "ptq", type = "integer", range = L.bits, metavar = "BITS",
    help = "also evaluate the trained float net after post-training quantization to FxP-BITS" },
  { name = "eval-variation", type = "number", range = L.sigma, metavar = "SIGMA",
    help = "also evaluate the trained net with noisy crossbar weights, cell sd SIGMA (docs/variation.md)" },
  { name = "eval-variation-draws", type = "integer", default = 4, range = L.draws, help = "noisy copies evaluated" },
  { name = "device-bits", type = "integer", default = 1, range = L.device_bits, help = "bits per RRAM cell for --eval-variation" },
  { name = "checkpoint", type = "string", metavar = "FILE", output = true, help = "save each epoch here; resume from it if present" },
  { name = "save", type = "string", metavar = "FILE", output = true, help = "write the trained net's weights (safetensors)" },
  { name = "json", type = "string", metavar = "FILE", output = true, help = "write the training curve and results here" },
  { name = "threads", type = "integer", default = 0, range = L.train_threads,
    help = "threads of a training step (0 = one per idle core; the results are the same for any count)" },
  { name = "quiet", type = "boolean", help = "no progress bar" },
})
local opts = { name = "train.lua",
  usage = "neuronas run train.lua (--genotype A,B | --from REPORT) [--preset P] [--data PATH] [--epochs N] "
    .. "[--bits N] [--optimizer sgd|adam] [--lr X] [--batch N] [--limit N] [--seed N] [--ptq BITS] "
    .. "[--checkpoint FILE] [--json FILE] [--help]",
  description = "Surrogate-gradient BPTT training (ATan, T timesteps) with optional QAT, docs/training.md." }
local flags = cli.parse({ ... }, spec, opts)

-- [choice] the fashion-mnist preset's classifier (fc1 fan-in 1568, N(0, 0.01) weights) starts
-- below threshold, its LIF silent; SGD's tiny surrogate gradients lose to weight decay there and
-- the loss stays at ln 10 for hundreds of steps, while Adam's scale-free steps escape in ~50.
flags.optimizer = flags.optimizer or (flags.preset == "fashion-mnist" and "adam" or "sgd")
-- [choice] Adam's default lr is 3e-3: at 1e-3 an epoch of 10,000 images (156 steps) ends at
-- ~55 % test accuracy with the loss still falling, at 3e-3 at ~74 % (docs/training.md).
local lr = flags.lr or (flags.optimizer == "adam" and 3e-3 or 0.1)
if flags["lr-min"] and flags["lr-min"] > lr then
  cli.fail(opts, string.format("flag '--lr-min': value <= --lr (%g) expected, got '%g'", lr, flags["lr-min"]))
end

-- ---------------------------------------------------------------- architecture
local cellA, cellB
if flags.genotype and flags.from then cli.fail(opts, "give --genotype or --from, not both") end
if flags.genotype then
  cellA, cellB = flags.genotype:match("^([^,]+),([^,]+)$")
  if not cellA then
    if flags.genotype:find(",") then cli.fail(opts, "--genotype: expected 'CELL_A,CELL_B' or one cell") end
    cellA, cellB = flags.genotype, flags.genotype
  end
elseif flags.from then
  -- a report is a few MB at most: a bounded read (a folder, a device, a pipe or a huge file is refused)
  local text, why, reason = core.read_text(flags.from, 256 << 20)
  if reason == "large" then
    cli.fail(opts, string.format("--from: %s is larger than 256 MiB (a search report expected)", flags.from))
  end
  if not text then cli.fail(opts, "--from " .. why) end
  local ok, doc = pcall(json.decode, text)
  if not ok then cli.fail(opts, string.format("--from: %s is not JSON (%s)", flags.from, tostring(doc))) end
  local best = type(doc) == "table" and doc.best
  if type(best) ~= "table" or type(best.cellA) ~= "string" or type(best.cellB) ~= "string" then
    cli.fail(opts, string.format("--from: %s has no best.cellA / best.cellB (a search report expected)", flags.from))
  end
  cellA, cellB = best.cellA, best.cellB
else
  cli.fail(opts, "an architecture is needed: --genotype A,B or --from REPORT")
end
local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end
cellA, cellB = trim(cellA), trim(cellB)
for _, c in ipairs({ cellA, cellB }) do
  local ok, why = pcall(nn.cell, c)
  if not ok then
    cli.fail(opts, (flags.from and ("--from " .. flags.from .. ": best cell: ") or "--genotype: ") .. tostring(why))
  end
end

-- ---------------------------------------------------------------- data
local function open_data(split, limit) return app.open_data(flags, opts, split, limit) end

-- whether the checkpoint exists (a fresh run starts without one); a folder, a device or a pipe
-- is refused at once, by its kind (a pipe's open would wait for a writer)
local function readable(p)
  local kind, why, reason = core.file_kind(p)
  if kind == "file" then return true end
  if reason == "missing" then return false end
  cli.fail(opts, string.format("--checkpoint %s", kind and (p .. ": not a regular file") or why))
end

local train_ds = open_data("train", flags.limit)
local test_ds = open_data("test", flags["test-limit"])

-- ---------------------------------------------------------------- network and trainer
local net_opts = { preset = flags.preset, cellA = cellA, cellB = cellB, seed = flags.seed }
if flags.timesteps then net_opts.timesteps = flags.timesteps end
local net = nn.net(net_opts)
local steps_per_epoch = #train_ds // flags.batch
if steps_per_epoch < 1 then
  cli.fail(opts, string.format("--batch %d is larger than the training set (%d images)", flags.batch, #train_ds))
end
local tr = nn.trainer({
  net = net, optimizer = flags.optimizer, lr = lr, lr_min = flags["lr-min"] or lr / 100,
  bits = flags.bits, seed = flags.seed, epochs = flags.epochs, steps_per_epoch = steps_per_epoch,
  threads = flags.threads,
})

-- ---------------------------------------------------------------- resume
local history, first_epoch = {}, 1
if flags.checkpoint and readable(flags.checkpoint) then
  local user = tr:load(flags.checkpoint)
  local ok, st = pcall(json.decode, user or "")
  -- the state train.lua writes: the epochs done (0 .. the flag's bound) and one record per epoch
  local good = ok and type(st) == "table" and math.type(st.epoch) == "integer" and st.epoch >= 0 and
    st.epoch <= L.epochs.max and (st.history == nil or (type(st.history) == "table" and st.history ~= json.null))
  local n = 0
  for k, rec in pairs(good and st.history or {}) do
    n = n + 1
    if math.type(k) ~= "integer" or type(rec) ~= "table" or type(rec.test_accuracy) ~= "number" then good = false end
  end
  good = good and n == #(st.history or {})
  if not good then
    error(string.format("%s: checkpoint without its training state (epoch in 0..%d, history: one record per epoch)",
      flags.checkpoint, L.epochs.max), 0)
  end
  history = st.history or {}
  first_epoch = st.epoch + 1
  io.stdout:write(string.format("resumed %s after epoch %d (step %d)\n", flags.checkpoint, st.epoch, tr.steps))
end

-- ---------------------------------------------------------------- display
local tty = not flags.quiet and core.isatty and core.isatty(2)
local function fmt_time(s)
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%dh%02dm", s // 3600, (s % 3600) // 60) end
  return string.format("%d:%02d", s // 60, s % 60)
end

-- A bar redrawn in place on a terminal; elsewhere a line at every 10 %.
local function bar(label)
  local t0, last, shown, width = core.clock(), -1, -1, 0
  local loss_sum, ok_sum, seen = 0, 0, 0
  return function(done, total, loss, ok, n)
    if flags.quiet then return end
    loss_sum, ok_sum, seen = loss_sum + loss * n, ok_sum + ok, seen + n
    local now = core.clock()
    local el = now - t0
    local eta = done > 0 and el / done * (total - done) or 0
    local frac = total > 0 and done / total or 1
    local text = string.format("loss %.4f  acc %5.2f%%  %.1f img/s  %s elapsed  ETA %s",
      loss_sum / seen, 100 * ok_sum / seen, seen / math.max(el, 1e-9), fmt_time(el), fmt_time(eta))
    if tty then
      if now - last < 0.2 and done < total then return end
      last = now
      local w = 24
      local f = math.floor(frac * w + 0.5)
      local line = string.format("%s [%s%s] %d/%d  %s", label, string.rep("#", f), string.rep(".", w - f),
        done, total, text)
      io.stderr:write("\r", line, string.rep(" ", math.max(width - #line, 0)))
      width = #line
      if done >= total then io.stderr:write("\r", string.rep(" ", width), "\r") end
      io.stderr:flush()
    else
      local step = math.floor(frac * 10)
      if step > shown then
        shown = step
        io.stderr:write(string.format("%s %d/%d (%d%%) %s\n", label, done, total, math.floor(frac * 100), text))
        io.stderr:flush()
      end
    end
  end
end

local function pct(a) return string.format("%.2f%%", 100 * a) end

io.stdout:write(string.format("train.lua: %s, cells %s / %s, %s, %s lr %g, batch %d, %d epoch%s, %d train / %d test images\n",
  flags.preset, cellA, cellB, flags.bits >= 32 and "float32" or ("QAT FxP" .. flags.bits), flags.optimizer, lr,
  flags.batch, flags.epochs, flags.epochs == 1 and "" or "s", #train_ds, #test_ds))
io.stdout:flush()

-- ---------------------------------------------------------------- epochs
local t_start = core.clock()
for epoch = first_epoch, flags.epochs do
  local label = string.format("epoch %d/%d", epoch, flags.epochs)
  local show, curve = bar(label), {}
  local r = nn.train.epoch(tr, train_ds, { batch = flags.batch, seed = flags.seed, epoch = epoch - 1,
    augment = not flags["no-augment"], on_batch = function(done, total, loss, ok, n)
      curve[#curve + 1] = { loss = loss, accuracy = ok / n }
      show(done, total, loss, ok, n)
    end })
  local ev = nn.train.evaluate(tr, test_ds, { on_batch = (not flags.quiet) and bar(label .. " test") or nil })
  local rec = { epoch = epoch, loss = r.loss, train_accuracy = r.accuracy, test_accuracy = ev.accuracy,
    test_loss = ev.loss, images_per_s = r.images_per_s, seconds = r.seconds,
    forward_s = r.forward_s, backward_s = r.backward_s, lr = tr.lr, curve = curve }
  history[#history + 1] = rec
  io.stdout:write(string.format("epoch %d/%d  loss %.4f  train %s  test %s  %.1f images/s  (%s; forward %.0f%%, backward %.0f%%)\n",
    epoch, flags.epochs, r.loss, pct(r.accuracy), pct(ev.accuracy), r.images_per_s, fmt_time(r.seconds),
    100 * r.forward_s / math.max(r.forward_s + r.backward_s, 1e-9),
    100 * r.backward_s / math.max(r.forward_s + r.backward_s, 1e-9)))
  io.stdout:flush()
  if flags.checkpoint then
    tr:save(flags.checkpoint, json.encode({ epoch = epoch, history = history }))
  end
end

-- ---------------------------------------------------------------- results
tr:export(net, true)
if flags.save then net:save(flags.save) end
local final = history[#history]
local result = {
  format = "neuronas.train/1",
  engine_version = nn.version,
  cellA = cellA, cellB = cellB, preset = flags.preset,
  bits = flags.bits, optimizer = flags.optimizer, lr = lr, batch = flags.batch, epochs = flags.epochs,
  seed = flags.seed, train_images = #train_ds, test_images = #test_ds,
  test_accuracy = final and final.test_accuracy or json.null,
  history = history,
  seconds = core.clock() - t_start,
}
if flags.ptq then
  -- PTQ: the float-trained weights, quantized once, evaluated (no retraining)
  local float_net = nn.net(net_opts)
  tr:export(float_net, false)
  local q = nn.trainer({ net = float_net, bits = flags.ptq })
  local ev = nn.train.evaluate(q, test_ds)
  result.ptq = { bits = flags.ptq, test_accuracy = ev.accuracy, test_loss = ev.loss }
  io.stdout:write(string.format("PTQ FxP%d: test %s (trained at %s: %s)\n", flags.ptq, pct(ev.accuracy),
    flags.bits >= 32 and "float32" or ("FxP" .. flags.bits), final and pct(final.test_accuracy) or "-"))
end
if flags["eval-variation"] then
  -- docs/variation.md: the weights as programmed (FxP-bits under QAT, else FxP-(--ptq or 8)),
  -- each noisy copy evaluated on the test set as it is (no re-quantization)
  local vbits = flags.bits < 32 and flags.bits or flags.ptq or 8
  local qnet = nn.quantize(net, vbits)
  local p = { sigma = flags["eval-variation"], device_bits = flags["device-bits"], seed = flags.seed }
  local clean = nn.train.evaluate(nn.trainer({ net = qnet, bits = 32 }), test_ds)
  local accs, sum, worst = {}, 0, math.huge
  for k = 1, flags["eval-variation-draws"] do
    local noisy = nn.variation(qnet, p, k)
    local ev = nn.train.evaluate(nn.trainer({ net = noisy, bits = 32 }), test_ds)
    noisy:close()
    accs[k], sum, worst = ev.accuracy, sum + ev.accuracy, math.min(worst, ev.accuracy)
  end
  result.variation = { bits = vbits, sigma = p.sigma, device_bits = p.device_bits, draws = #accs,
    clean_accuracy = clean.accuracy, accuracies = accs, mean_accuracy = sum / #accs, worst_accuracy = worst }
  io.stdout:write(string.format("variation sigma %g at FxP%d (%d-bit cells): test %s noise-free, %s mean, %s worst over %d copies\n",
    p.sigma, vbits, p.device_bits, pct(clean.accuracy), pct(sum / #accs), pct(worst), #accs))
end
if flags.json then
  local f <close> = assert(io.open(flags.json, "wb"))
  f:write(json.encode(result, { indent = "  ", nonfinite = "null" }), "\n")
end
