-- neuronas/variation.lua: device-variation-aware fitness (docs/variation.md). The C half
-- (l_variation.c) perturbs a net's crossbar weights (nn.variation) and counts active crossbar
-- reads (nn.activity; hw:active_energy and hw:evaluate_active are the ELA's C methods); this
-- module returns the scoring over noisy copies:
--   fitness(net, x, { variation = { sigma =, draws =, stuck =, ... } })  (and fitness_many),
-- which init.lua exposes as nn.fitness and nn.fitness_many.
local core = require("neuronas.core")
local VKEYS = { sigma = true, draws = true, stuck = true, stuck_high = true, device_bits = true, seed = true }

-- The variation table of a fitness call, checked; draws defaults to 4.
local function check_variation(fname, v)
  if type(v) ~= "table" then
    error(string.format("bad argument #3 to '%s' (field 'variation': table expected, got %s)", fname, type(v)), 3)
  end
  for k in pairs(v) do
    if not VKEYS[k] then
      error(string.format("bad argument #3 to '%s' (field 'variation': unknown field '%s' (expected: "
        .. "sigma, draws, stuck, stuck_high, device_bits, seed))", fname, tostring(k)), 3)
    end
  end
  local draws = v.draws == nil and 4 or v.draws
  if math.type(draws) ~= "integer" or draws < 1 or draws > 1024 then
    error(string.format("bad argument #3 to '%s' (field 'variation.draws': integer in 1..1024 expected, got %s)",
      fname, tostring(v.draws)), 3)
  end
  local p = {}
  for k, x in pairs(v) do if k ~= "draws" then p[k] = x end end
  return p, draws
end

-- opts without `variation` (what the C half accepts), or nil when opts has none.
local function split_opts(opts)
  if type(opts) ~= "table" or opts.variation == nil then return nil end
  local o = {}
  for k, x in pairs(opts) do if k ~= "variation" then o[k] = x end end
  return o, opts.variation
end

-- The robust summary of one net: clean score, noisy scores -> the `variation` diagnostics.
local function summary(clean, scores, p, draws)
  local sum, worst = 0, math.huge
  for _, s in ipairs(scores) do
    sum = sum + s
    if s < worst then worst = s end
  end
  local mean = sum / #scores
  -- a singular kernel scores -inf with and without noise: nothing was lost, so the drop is 0,
  -- not -inf - -inf = NaN (docs/variation.md)
  local drop = clean == mean and 0.0 or clean - mean
  return {
    clean = clean, mean = mean, worst = worst, drop = drop, scores = scores,
    sigma = p.sigma or 0, stuck = p.stuck or 0, stuck_high = p.stuck_high or 0.5,
    device_bits = p.device_bits or 1, seed = p.seed or 1, draws = draws,
  }
end

local fitness, fitness_many = core.fitness, core.fitness_many
local M = {}

function M.fitness(net, x, opts)
  local o, v = split_opts(opts)
  if not o then return fitness(net, x, opts) end
  local p, draws = check_variation("fitness", v)
  local clean, d = fitness(net, x, o)
  local scores = {}
  for k = 1, draws do
    local noisy <close> = core.variation_net(net, p, k)
    scores[k] = fitness(noisy, x, o)
  end
  d.variation = summary(clean, scores, p, draws)
  return d.variation.mean, d
end

-- Closes every net of a list (a to-be-closed value: the noisy copies go on every path).
local function closing(list)
  return setmetatable(list, { __close = function(l) for _, n in ipairs(l) do n:close() end end })
end

function M.fitness_many(nets, x, opts)
  local o, v = split_opts(opts)
  if not o then return fitness_many(nets, x, opts) end
  local p, draws = check_variation("fitness_many", v)
  local clean, ds = fitness_many(nets, x, o)
  -- every noisy copy is a distinct net: score them all in one call (threads pay)
  local noisy <close> = closing({})
  for i, net in ipairs(nets) do
    for k = 1, draws do noisy[(i - 1) * draws + k] = core.variation_net(net, p, k) end
  end
  local scores = fitness_many(noisy, x, o)
  local out = {}
  for i = 1, #nets do
    local s = {}
    for k = 1, draws do s[k] = scores[(i - 1) * draws + k] end
    ds[i].variation = summary(clean[i], s, p, draws)
    out[i] = ds[i].variation.mean
  end
  return out, ds
end

return M
