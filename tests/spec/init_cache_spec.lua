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

  it("diagnoses bad arguments with exact messages", function()
    assert.has_error(function() nn.init_cache { max_bytes = -1 } end,
      "bad argument #1 to 'init_cache' (field 'max_bytes': integer >= 0 expected, got -1)")
    assert.has_error(function() nn.init_cache { bytes = 1 } end,
      "bad argument #1 to 'init_cache' (unknown field 'bytes' (expected: max_bytes))")
    assert.has_error(function() nn.net { init_cache = {} } end,
      "bad argument #1 to 'net' (field 'init_cache': neuronas.InitCache expected)")
  end)
end)
