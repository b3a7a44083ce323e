-- init_cache_spec.lua: nn.init_cache and nn.net{init_cache=} (docs/model.md [choice]: initial weights
-- are a pure function of (seed, layer path, shape), so a search's candidates share the draws).
local H = require("helpers")

describe("nn.init_cache", function()
  local nn = require("neuronas")

  it("leaves _G alone", function()
    local before = H.globals()
    local c = nn.init_cache()
    nn.net { init_cache = c }:close()
    assert.are.same({}, H.new_globals(before))
  end)

  it("builds nets that score bit-identically, drawing each tensor once", function()
    local c = nn.init_cache()
    local x = nn.tensor(8, 1, 28, 28)
    x:normal(nn.rng(3), 0, 1)
    local q = nn.quantizer { bits = 8 }
    for _, cell in ipairs({ "101021", "111111", "212121", "101021" }) do
      local a = nn.net { preset = "fashion-mnist", cellA = cell, cellB = "201120", seed = 5 }
      local b = nn.net { preset = "fashion-mnist", cellA = cell, cellB = "201120", seed = 5, init_cache = c }
      assert.are.same(a:layers(), b:layers())
      assert.are.equal(nn.fitness(q:apply(a), x), nn.fitness(q:apply(b), x))
    end
    local s = c:stats()
    assert.is_true(s.hits > 0 and s.misses > 0)
    assert.are.equal(s.misses, s.entries)
    assert.are.equal(256 * 1024 * 1024, s.max_bytes)
    assert.are.equal(string.format("neuronas.InitCache (%d tensors, %d hits, %d misses)", s.entries, s.hits,
      s.misses), tostring(c))
    c:close()
    assert.are.equal("neuronas.InitCache (closed)", tostring(c))
    assert.has_error(function() nn.net { init_cache = c } end, "attempt to use a closed neuronas.InitCache")
  end)

  -- every tensor of a net as its float bits, in save order
  local function bits_of(net)
    local out = {}
    for _, name in ipairs(net:tensor_names()) do
      local t, b = net:tensor(name), {}
      for i = 1, #t do b[i] = string.pack("<f", t[i]) end
      out[#out + 1] = name .. "=" .. table.concat(b)
    end
    return out
  end

  it("builds nets quantized as q:apply makes them, each layer quantized once per store", function()
    local c = nn.init_cache()
    local qs = { nn.quantizer { bits = 8 }, nn.quantizer { bits = 4, rounding = "stochastic", seed = 1 },
      nn.quantizer { bits = 4, rounding = "stochastic", seed = 2 }, nn.quantizer { bits = 32 },
      nn.quantizer { bits = 6, scale = "maxabs" } }
    for _, cell in ipairs({ "101021", "212121" }) do
      for _, q in ipairs(qs) do
        local o = { preset = "fashion-mnist", cellA = cell, cellB = "201120", seed = 5, channels = 4, fc_width = 16 }
        local ref = q:apply(nn.net(o))
        o.quantizer = q
        local plain = nn.net(o)
        o.init_cache = c
        local stored = nn.net(o)
        assert.are.equal(q.bits, ref:weight_bits())
        assert.are.equal(q.bits, plain:weight_bits())
        assert.are.equal(q.bits, stored:weight_bits())
        assert.are.same(bits_of(ref), bits_of(plain))
        assert.are.same(bits_of(ref), bits_of(stored))
        -- the same net again comes whole from the store: hits only, nothing new
        local before = c:stats()
        assert.are.same(bits_of(ref), bits_of(nn.net(o)))
        local after = c:stats()
        assert.are.equal(before.misses, after.misses)
        assert.are.equal(before.entries, after.entries)
        assert.is_true(after.hits > before.hits)
      end
    end
    -- the two stochastic seeds round differently: the store did not serve one for the other
    local o = { preset = "fashion-mnist", cellA = "101021", seed = 5, channels = 4, fc_width = 16, init_cache = c }
    o.quantizer = qs[2]
    local a = bits_of(nn.net(o))
    o.quantizer = qs[3]
    assert.are_not.same(a, bits_of(nn.net(o)))
    assert.has_error(function() nn.net { quantizer = {} } end,
      "bad argument #1 to 'net' (field 'quantizer': neuronas.Quantizer expected)")
  end)

  it("diagnoses bad arguments with exact messages", function()
    assert.has_error(function() nn.init_cache { max_bytes = -1 } end,
      "bad argument #1 to 'init_cache' (field 'max_bytes': integer >= 0 expected, got -1)")
    assert.has_error(function() nn.init_cache { bytes = 1 } end,
      "bad argument #1 to 'init_cache' (unknown field 'bytes' (expected: max_bytes))")
    assert.has_error(function() nn.net { init_cache = {} } end,
      "bad argument #1 to 'net' (field 'init_cache': neuronas.InitCache expected)")
  end)
end)
