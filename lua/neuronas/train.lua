-- neuronas/train.lua: the Lua half of training (docs/training.md). The C half is nn.trainer
-- (l_train.c): tr:step(x, y), tr:evaluate(x, y), tr:export(net), tr:save/load. This adds
-- nn.train.epoch / nn.train.evaluate, the loops over a dataset that scripts/train.lua runs.

-- What each option accepts: a check returning nil when the value is fine, else what was expected.
local function int_in(lo, hi)
  return function(v)
    if math.type(v) == "integer" and v >= lo and v <= hi then return nil end
    return ("integer in %d..%d"):format(lo, hi)
  end
end
local CHECKS = {
  batch = int_in(1, 1 << 30),
  seed = int_in(0, math.maxinteger),
  epoch = int_in(0, math.maxinteger),
  augment = function(v) if type(v) ~= "boolean" and type(v) ~= "table" then return "boolean or table" end end,
  on_batch = function(v) if type(v) ~= "function" then return "function" end end,
}

local function check_opts(fname, opts, valid)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("bad argument #3 to '%s' (table expected, got %s)"):format(fname, type(opts)), 3)
  end
  local names = {}
  for k in pairs(valid) do names[#names + 1] = k end
  table.sort(names)
  for k, v in pairs(opts) do
    if not valid[k] then
      error(("bad argument #3 to '%s' (unknown field '%s' (expected: %s))")
        :format(fname, tostring(k), table.concat(names, ", ")), 3)
    end
    local want = CHECKS[k] and CHECKS[k](v)
    if want then
      error(("bad argument #3 to '%s' (field '%s': %s expected, got %s)")
        :format(fname, k, want, want:find("^integer") and math.type(v) and tostring(v) or type(v)), 3)
    end
  end
  return opts
end

-- The metatable's __name says the type (a __tostring could lie, and could raise).
local function is(v, name)
  local mt = type(v) == "userdata" and getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__name") == name
end

local function check_args(fname, tr, ds)
  if not is(tr, "neuronas.Trainer") then
    error(("bad argument #1 to '%s' (neuronas.Trainer expected, got %s)"):format(fname, type(tr)), 3)
  end
  if not is(ds, "neuronas.Dataset") then
    error(("bad argument #2 to '%s' (neuronas.Dataset expected, got %s)"):format(fname, type(ds)), 3)
  end
end

local EPOCH_OPTS = { batch = true, seed = true, epoch = true, augment = true, on_batch = true }
local EVAL_OPTS = { batch = true, on_batch = true }

local clock = require("neuronas.core").clock
local train = {}

-- nn.train.epoch(tr, ds, { batch = 64, seed = 1, epoch = 0, augment = true,
--                          on_batch = function(done, total, loss, correct, images) end })
-- One pass over ds in a shuffled order (seed, epoch) with crop/flip augmentation (docs/training.md),
-- one tr:step per batch (a short last batch is dropped: BN statistics of a few images are
-- noise). Returns { loss = mean, accuracy = 0..1, images =, steps =, seconds =,
-- images_per_s =, forward_s =, backward_s = } (forward/backward: summed step times).
function train.epoch(tr, ds, opts)
  check_args("epoch", tr, ds)
  opts = check_opts("epoch", opts, EPOCH_OPTS)
  local batch = opts.batch or 64
  local aug = opts.augment
  if aug == nil then aug = true end
  local it = ds:iter({ batch = batch, shuffle = true, seed = opts.seed or 1, epoch = opts.epoch or 0,
                       augment = aug, drop_last = true })
  local total = #ds // batch
  local t0 = clock()
  local r = { loss = 0, accuracy = 0, images = 0, steps = 0, forward_s = 0, backward_s = 0 }
  local correct = 0
  for x, y in it do
    local loss, ok, info = tr:step(x, y)
    r.steps = r.steps + 1
    r.images = r.images + info.samples
    r.loss = r.loss + loss * info.samples
    correct = correct + ok
    r.forward_s = r.forward_s + info.forward_s
    r.backward_s = r.backward_s + info.backward_s
    if opts.on_batch then opts.on_batch(r.steps, total, loss, ok, info.samples) end
  end
  r.seconds = clock() - t0
  if r.images > 0 then
    r.loss = r.loss / r.images
    r.accuracy = correct / r.images
    r.images_per_s = r.images / math.max(r.seconds, 1e-9)
  else
    r.images_per_s = 0
  end
  return r
end

-- nn.train.evaluate(tr, ds, { batch = 256, on_batch = }) -> { loss =, accuracy =, images = }
-- Evaluation mode (running BN statistics, no dropout, QAT weights) over all of ds, in order.
function train.evaluate(tr, ds, opts)
  check_args("evaluate", tr, ds)
  opts = check_opts("evaluate", opts, EVAL_OPTS)
  local batch = opts.batch or 256
  local n = #ds
  local r = { loss = 0, accuracy = 0, images = 0 }
  local correct, done = 0, 0
  local total = (n + batch - 1) // batch
  for off = 0, n - 1, batch do
    local x, y = ds:batch(math.min(batch, n - off), { offset = off })
    local loss, ok = tr:evaluate(x, y)
    local m = math.min(batch, n - off)
    r.loss = r.loss + loss * m
    correct = correct + ok
    r.images = r.images + m
    done = done + 1
    if opts.on_batch then opts.on_batch(done, total, loss, ok, m) end
  end
  if r.images > 0 then
    r.loss = r.loss / r.images
    r.accuracy = correct / r.images
  end
  return r
end

return train
