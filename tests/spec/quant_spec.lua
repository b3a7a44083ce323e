-- quant_spec.lua: nn.quantizer from Lua (docs/quantizer.md).
local H = require("helpers")

describe("nn.quantizer", function()
  local nn = require("neuronas")

  it("leaves _G alone", function()
    local before = H.globals()
    local q = nn.quantizer { bits = 4 }
    q:apply(nn.tensor.from { 0.5 })
    assert.are.same({}, H.new_globals(before))
  end)

  it("has defaults, readable fields and a tostring", function()
    local q = nn.quantizer()
    assert.are.equal(8, q.bits)
    assert.are.equal("nearest", q.rounding)
    assert.are.equal("pow2", q.scale)
    assert.is_nil(q.int_bits) -- dynamic: chosen per tensor
    assert.are.equal("neuronas.Quantizer (FxP8, nearest, pow2)", tostring(q))
    local f = nn.quantizer { bits = 6, int_bits = 1, rounding = "floor" }
    assert.are.equal(1, f.int_bits)
    assert.are.equal("neuronas.Quantizer (FxP6, floor, Q1.5)", tostring(f))
  end)

  -- FxP4, max|w| = 0.7: int bits floor(log2 0.7) + 2 = 1, fraction bits 3, step 1/8;
  -- w * 8 = 2.4, -5.6, 0.4, 2.5, -2.5
  it("quantizes tensors to hand-computed values for every rounding", function()
    local w = nn.tensor.from { 0.3, -0.7, 0.05, 0.3125, -0.3125 }
    local want = {
      nearest = { 0.25, -0.75, 0, 0.375, -0.375 },
      floor = { 0.25, -0.75, 0, 0.25, -0.375 },
      zero = { 0.25, -0.625, 0, 0.25, -0.25 },
    }
    for mode, v in pairs(want) do
      assert.are.same(v, nn.quantizer({ bits = 4, rounding = mode }):apply(w):totable())
    end
    -- the argument is untouched
    assert.is_true(math.abs(w[1] - 0.3) < 1e-7)
    -- maxabs: step 0.875 / 7 = 0.125; w / step = 7, -3.5, 1.5
    local m = nn.tensor.from { 0.875, -0.4375, 0.1875 }
    assert.are.same({ 0.875, -0.5, 0.25 }, nn.quantizer({ bits = 4, scale = "maxabs" }):apply(m):totable())
  end)

  it("reports MSE, saturation and the format", function()
    -- FxP4 of 0.99: 0.99 * 8 = 7.92 rounds to 8 > 7, clamped to 0.875
    local r = nn.quantizer({ bits = 4 }):report(nn.tensor.from { 0.99, -0.99 })
    assert.are.equal(1, r.saturated_count)
    assert.are.equal(0.5, r.saturated)
    assert.are.equal(1, r.int_bits)
    assert.are.equal(3, r.frac_bits)
    assert.are.equal(0.125, r.step)
    assert.are.equal(2, r.weights)
    local q99 = 0.99000000953674316 -- float32(0.99)
    assert.is_true(math.abs(r.mse - ((0.875 - q99) ^ 2 + (1 - q99) ^ 2) / 2) < 1e-12)
    assert.is_nil(nn.quantizer({ scale = "maxabs" }):report(nn.tensor.from { 1 }).int_bits)
  end)

  it("stochastic rounding is seeded and unbiased", function()
    local n = 20000
    local t = nn.tensor(n):fill(0.3) -- FxP4: 0.3 * 16 = 4.8 -> 5 (p 0.8) or 4
    local q = nn.quantizer { bits = 4, rounding = "stochastic", seed = 3 }
    local a, b = q:apply(t), q:apply(t)
    assert.are.same(a:totable(), b:totable())
    -- mean error std = 0.0625 * 0.4 / sqrt(n) = 1.8e-4: 6 sigma
    assert.is_true(math.abs(a:mean() - t:mean()) < 6 * 0.025 / math.sqrt(n))
  end)

  it("quantizes a net's crossbar weights into a new net", function()
    local net = nn.net { preset = "fashion-mnist", cellA = "101021", cellB = "111111", seed = 1 }
    local q = nn.quantizer { bits = 6 }
    local qn = q:apply(net)
    assert.are.equal(6, qn:weight_bits())
    assert.are.equal(32, net:weight_bits())
    local rep = q:report(net)
    local layers = net:layers()
    assert.are.equal(#layers, #rep)
    for i, l in ipairs(layers) do
      assert.are.equal(l.name, rep[i].name)
      assert.are.equal(l.weights, rep[i].weights)
      assert.are.equal(6, rep[i].bits)
      assert.is_true(rep[i].mse > 0 and rep[i].int_bits <= 1)
    end
  end)

  it("saturates weights near FLT_MAX at the largest finite code, and the net saves and loads", function()
    -- max|w| >= 2^127: i = 129, and the range's low end -2^(n-1) 2^-f = -2^128 is no float32
    local t = nn.tensor.from { 3.4e38, -3.4e38, 1, 0 }
    for _, bits in ipairs({ 2, 8, 26, 32 }) do
      local q = nn.quantizer { bits = bits }
      local qt = q:apply(t)
      assert.is_true(qt[1] < math.huge and qt[2] > -math.huge, bits)
      assert.are.equal(qt[1], -qt[2])
      local r = q:report(t)
      assert.is_true(r.mse < math.huge and r.int_bits == 129, bits)
    end
    local net = nn.net { channels = 2, fc_width = 4, timesteps = 2, input = { 1, 8, 8 }, classes = 2, second_pool = 1 }
    local path = H.tmpname(".safetensors")
    net:save(path)
    local ts = nn.tensor.load(path)
    ts["stem.conv.weight"]:fill(-3.4e38) -- finite: net:load accepts it
    nn.tensor.save(path, ts)
    net:load(path)
    local qn = nn.quantize(net, 8)
    local qw = qn:tensor("stem.conv.weight")
    assert.are.equal(-127 * 2 ^ 121, qw[1]) -- the code -127 (not -128) at step 2^121
    qn:save(path)
    local back = nn.net { channels = 2, fc_width = 4, timesteps = 2, input = { 1, 8, 8 }, classes = 2, second_pool = 1 }
    back:load(path)
    os.remove(path)
    assert.are.equal(qw:sum(), back:tensor("stem.conv.weight"):sum())
  end)

  it("diagnoses bad arguments with exact messages", function()
    assert.has_error(function() nn.quantizer { bits = 40 } end,
      "bad argument #1 to 'quantizer' (field 'bits': integer in 2..32 expected, got 40)")
    assert.has_error(function() nn.quantizer { sead = 1 } end,
      "bad argument #1 to 'quantizer' (unknown field 'sead' (expected: bits, rounding, scale, int_bits, seed))")
    assert.has_error(function() nn.quantizer { rounding = "up" } end,
      "bad argument #1 to 'quantizer' (field 'rounding': one of \"nearest\"|\"floor\"|\"zero\"|\"stochastic\" expected, got \"up\")")
    assert.has_error(function() nn.quantizer { scale = "maxabs", int_bits = 2 } end,
      "bad argument #1 to 'quantizer' (int_bits needs scale \"pow2\")")
    local q = nn.quantizer()
    assert.has_error(function() q:apply(3) end,
      "bad argument #1 to 'apply' (neuronas.Net or neuronas.Tensor expected, got number)")
    assert.has_error(function() q:report("x") end,
      "bad argument #1 to 'report' (neuronas.Net or neuronas.Tensor expected, got string)")
    local closed = nn.net { preset = "fashion-mnist" }
    closed:close()
    assert.has_error(function() q:apply(closed) end, "attempt to use a closed neuronas.Net")
    -- a NaN cannot reach the quantizer from Lua: tensors refuse it (the engine's own check of
    -- non-finite weights is tests/c/test_quant.c's)
    assert.has_error(function() q:apply(nn.tensor.from { 1, 0 / 0 }) end,
      "bad argument #1 to 'from' (element [2]: finite float32 value expected, got " .. tostring(0 / 0) .. ")")
  end)
end)

describe("nn.quantize", function()
  local nn = require("neuronas")
  it("is nn.quantizer(opts):apply(x), with a bare bit count allowed", function()
    local w = nn.tensor.from { 0.3, -0.7 }
    assert.are.same({ 0.25, -0.75 }, nn.quantize(w, 4):totable())
    assert.are.same({ 0.25, -0.75 }, nn.quantize(w, { bits = 4, rounding = "floor" }):totable())
  end)
end)
