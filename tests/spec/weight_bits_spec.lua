-- weight_bits_spec.lua: the weight precision FxP-n has one range and one default, the same at
-- every entry point (the --bits flag, nn.quantizer, nn.trainer, hw:evaluate, a search setup and
-- a candidate's knob), and travels with the quantized net into the hardware model.
-- docs/quantizer.md: "Signed fixed point with n bits, n = 2..32"; docs/search.md: --bits
-- defaults to 8.
local H = require("helpers")
local nn = require("neuronas")
local L = require("neuronas.limits")
local app = require("neuronas.app")
local cli = require("neuronas.cli")
local options = require("neuronas.search.options")
local knobs = require("neuronas.search.knobs")

local MIN, MAX, DEFAULT = 2, 32, 8 -- the documented range and default

-- The error message of fn(), without a "file:line: " position.
local function message(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "accepted")
  return (tostring(err):gsub("^[^:\n]*:%d+: ", ""))
end

describe("the weight precision", function()
  it("is one range and one default, exported once by the engine", function()
    assert.are.same({ min = MIN, max = MAX, default = DEFAULT, float = 32 }, nn.weight_bits)
    assert.are.same(nn.weight_bits, L.bits)
    assert.are.equal("2..32", L.describe(L.bits))
  end)

  -- Each entry point: a function of bits that raises on a bad value, and the message it gives
  -- for one value (%s: the value).
  local conv = { kind = "conv", in_ch = 3, out_ch = 8, in_dim = 4, out_dim = 4, k = 3 }
  local net = nn.net { cellA = "102101" }
  local entries = {
    flag = { function(b) return cli.parse({ "--bits", tostring(b) }, app.flags(), { noexit = true, name = "t" }).bits end,
      "flag '--bits': value in 2..32 expected, got '%s'" },
    quantizer = { function(b) return nn.quantizer({ bits = b }).bits end,
      "bad argument #1 to 'quantizer' (field 'bits': integer in 2..32 expected, got %s)" },
    trainer = { function(b) return nn.trainer({ net = net, bits = b }).bits end,
      "bad argument #1 to 'trainer' (field 'bits': integer in 2..32 expected, got %s)" },
    evaluate = { function(b) return nn.ela():evaluate({ conv }, { bits = b }).bits end,
      "bad argument #2 to 'evaluate' (field 'bits': integer in 2..32 expected, got %s)" },
    setup = { function(b) return options.setup({ bits = b }).bits end,
      "search.setup: option 'bits': integer in 2..32 expected, got %s" },
    knob = { function(b) knobs.check({ bits = b }) return b end,
      "candidate: field 'bits': integer in 2..32 expected, got %s" },
  }

  for name, e in pairs(entries) do
    it("is checked against that range by " .. name .. ": both ends in, one past refused", function()
      local fn, want = e[1], e[2]
      assert.are.equal(MIN, fn(MIN))
      assert.are.equal(MAX, fn(MAX))
      assert.are.equal(want:format(MIN - 1), message(function() fn(MIN - 1) end))
      assert.are.equal(want:format(MAX + 1), message(function() fn(MAX + 1) end))
    end)
  end

  it("defaults to the same value wherever a default is taken", function()
    local flags = cli.parse({}, app.flags(), { noexit = true, name = "t" })
    assert.are.equal(DEFAULT, flags.bits)
    assert.are.equal(DEFAULT, nn.quantizer().bits)
    assert.are.equal(DEFAULT, options.setup({}).bits)
    assert.are.equal(DEFAULT, nn.quantize(net, {}):weight_bits())
    local code, out, err = H.run(H.q(H.cli) .. " run scripts/hardware.lua")
    assert.are.equal(0, code, err)
    assert.truthy(out:find("(FxP8,", 1, true))
  end)

  it("travels with the quantized net into the hardware model", function()
    local hw = nn.ela()
    assert.are.equal(32, hw:evaluate(net).bits) -- a float net
    assert.are.equal(32, hw:evaluate({ conv }).bits) -- a bare layer list: float weights
    for _, b in ipairs({ MIN, 5, DEFAULT, MAX }) do
      local q = nn.quantize(net, b)
      local c = hw:evaluate(q)
      assert.are.equal(b, c.bits)
      -- memory: every in-scope weight at b bits (independent of the net: its layer list)
      local weights = 0
      for _, l in ipairs(q:layers()) do if l.features then weights = weights + l.weights end end
      assert.are.equal(weights * b, c.memory_bits)
      q:close()
    end
  end)
end)
