-- constraints_spec.lua: neuronas.constraints, the search's constraint sets (docs/search.md).
local H = require("helpers")

-- A cost table shaped like nn.ela's evaluate result (only the fields the checks read).
local function cost(t)
  local c = { memory_params = 888192, area_mm2 = 50, latency_ms = 300, energy_uj = 500,
    tiles = 30, pes = 200, xbars = 1800 }
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

describe("neuronas.constraints", function()
  it("loads as a plain module without touching _G", function()
    local before = H.globals()
    package.loaded["neuronas.constraints"] = nil
    local C = require("neuronas.constraints")
    C.new(C.presets.neuronas):check(cost())
    assert.are.same({}, H.new_globals(before))
  end)

  local C = require("neuronas.constraints")

  it("has the paper presets (docs/search.md)", function()
    assert.are.same({ memory = 10e6, area = 1000, latency = 500, energy = 1000 }, C.presets.neuronas)
    assert.are.same({ memory = 4e6, area = 100, latency = 400, energy = 120 }, C.presets.hasnas)
    assert.are.same({ memory = 4e6, area = 100, latency = 400, energy = 120, tiles = 40 },
      C.preset("hasnas", { tiles = 40 }))
    assert.are.same({ memory = 4e6, area = 100, latency = 400 },
      C.new(C.preset("hasnas", { energy = false })):limits())
  end)

  it("checks the four named limits with normalised violations", function()
    local set = C.new(C.presets.hasnas)
    local ok, rec, total = set:check(cost())
    assert.is_false(ok)
    assert.are.same({ "memory", "area", "latency", "energy" }, set:names())
    assert.are.equal(4, #rec)
    assert.are.equal("memory", rec[1].name)
    assert.are.equal(888192, rec.memory.value)
    assert.are.equal(4e6, rec.memory.limit)
    assert.is_true(rec.memory.ok)
    assert.are.equal((888192 - 4e6) / 4e6, rec.memory.violation)
    assert.is_true(rec.area.ok and rec.latency.ok)
    assert.is_false(rec.energy.ok)
    assert.are.equal("uJ", rec.energy.unit)
    assert.are.equal((500 - 120) / 120, rec.energy.violation)
    assert.are.equal((500 - 120) / 120, total)
    ok, rec, total = C.new(C.presets.neuronas):check(cost())
    assert.is_true(ok)
    assert.are.equal(0, total)
    -- a limit met exactly holds
    assert.is_true(C.new { area = 50 }:feasible(cost()))
    -- no constraints: always feasible
    assert.is_true((C.new():check(cost())))
  end)

  it("ranks nearest misses by total violation", function()
    local set = C.new { area = 100, energy = 200 }
    local _, _, t1 = set:check(cost { area_mm2 = 110, energy_uj = 100 })
    local _, _, t2 = set:check(cost { area_mm2 = 150, energy_uj = 300 })
    assert.is_true(math.abs(t1 - 0.1) < 1e-12)
    assert.is_true(math.abs(t2 - 1.0) < 1e-12)
  end)

  it("limits any other cost field by name", function()
    local set = C.new { tiles = 25, xbars = { max = 2000, doc = "chip budget" } }
    local ok, rec = set:check(cost())
    assert.is_false(ok)
    assert.are.same({ "tiles", "xbars" }, set:names())
    assert.are.equal(30, rec.tiles.value)
    assert.are.equal(0.2, rec.tiles.violation)
    assert.is_true(rec.xbars.ok)
  end)

  it("takes Lua cost functions and predicates over (cost, layers)", function()
    local layers = { { kind = "conv", k = 3 }, { kind = "conv", k = 5 } }
    local seen
    local set = C.new {
      energy = 1000,
      peak_power = { fn = function(c, l)
        seen = l
        return c.energy_uj / c.latency_ms -- uJ/ms = mW
      end, max = 1, unit = "mW" },
      only_3x3 = function(_, l)
        for i, x in ipairs(l) do
          if x.k ~= 3 then return false, "layer " .. i .. " has k=" .. x.k end
        end
        return true
      end,
    }
    local ok, rec, total = set:check(cost(), layers)
    assert.are.equal(layers, seen)
    assert.is_false(ok)
    assert.are.same({ "energy", "only_3x3", "peak_power" }, set:names())
    assert.are.equal(500 / 300, rec.peak_power.value)
    assert.is_false(rec.peak_power.ok)
    assert.is_false(rec.only_3x3.ok)
    assert.are.equal(1, rec.only_3x3.violation)
    assert.are.equal("layer 2 has k=5", rec.only_3x3.why)
    assert.is_true(math.abs(total - (1 + (500 / 300 - 1))) < 1e-12)
    layers[2].k = 3
    ok, rec = set:check(cost { energy_uj = 200 }, layers)
    assert.is_true(ok)
    assert.is_true(rec.only_3x3.value)
    assert.are.equal(0, rec.only_3x3.violation)
  end)

  it("reads entries back by name, copies its spec and takes subsets", function()
    local f = function() return true end
    local set = C.new { memory = 4e6, area = 100, fits = f }
    assert.are.equal(4e6, set.memory)
    assert.are.equal(f, set.fits)
    assert.is_nil(set.energy)
    assert.are.same({ memory = 4e6, area = 100, fits = f }, set:spec())
    local mem = set:subset { "memory", "energy" }
    assert.are.same({ "memory" }, mem:names())
    assert.is_true(mem:feasible(cost { area_mm2 = 500 }))
    assert.is_false(set:feasible(cost { area_mm2 = 500 }))
    assert.are.equal(set, C.new(set))
    assert.is_true(C.is_set(set))
    assert.is_false(C.is_set({}))
    assert.has_error(function() set:subset("memory") end,
      "bad argument #1 to 'subset' (list of names expected, got string)")
  end)

  it("describes itself", function()
    local set = C.new {
      memory = 10e6, area = 1000, tiles = 40,
      peak_power = { fn = function() return 0 end, max = 2, unit = "W", doc = "estimate" },
      fits = function() return true end,
    }
    assert.are.equal(table.concat({
      "memory <= 10000000 params (cost.memory_params)",
      "area <= 1000 mm^2 (cost.area_mm2)",
      "fits: Lua predicate",
      "peak_power <= 2 W (Lua function) -- estimate",
      "tiles <= 40 tiles (cost.tiles)",
    }, "\n"), set:describe())
    assert.are.equal("neuronas.ConstraintSet (5): memory, area, fits, peak_power, tiles",
      tostring(set))
    assert.are.equal("no constraints", C.new({}):describe())
    local _, rec = set:check(cost())
    assert.truthy(C.format(rec):find("tiles", 1, true))
  end)

  it("works on a real cost from nn.ela", function()
    local nn = require("neuronas")
    local c = nn.ela():evaluate({ { kind = "conv", in_ch = 3, out_ch = 128, in_dim = 32,
      out_dim = 32, k = 3 } }, { bits = 8 })
    local ok, rec = C.new(C.preset("neuronas", { tiles = 1 })):check(c, c.layers)
    assert.is_false(ok)
    assert.are.equal(2, rec.tiles.value)
    assert.is_true(rec.memory.ok and rec.area.ok and rec.latency.ok and rec.energy.ok)
  end)

  it("can re-cost the network on another configuration (an ADC-precision what-if)", function()
    local nn = require("neuronas")
    local hw = nn.ela()
    local c = hw:evaluate({ { kind = "conv", in_ch = 3, out_ch = 64, in_dim = 16, out_dim = 16, k = 3 },
      { kind = "linear", in_ch = 64, out_ch = 10 } }, { bits = 8 })
    -- a 6-bit ADC at 4x the energy per conversion: cost.layers are valid evaluate input
    local adc6 = hw:copy { adc_bits = 6, e_adc_pj = 4 * hw.e_adc_pj }
    local set = C.new { energy_adc6 = { max = 1e9, unit = "uJ",
      fn = function(cost) return adc6:evaluate(cost.layers, { bits = cost.bits }).energy_uj end } }
    local _, rec = set:check(c, c.layers)
    assert.is_true(rec.energy_adc6.value > c.energy_uj)
    local same = hw:evaluate(c.layers, { bits = 8 })
    assert.are.equal(c.energy_uj, same.energy_uj)
    assert.are.equal(c.area_mm2, same.area_mm2)
  end)

  it("rejects bad entries with clear errors", function()
    assert.has_error(function() C.new { tile = 40 } end,
      "constraints: unknown cost field 'tile' (expected: memory, area, latency, energy, "
      .. "memory_params, memory_bits, memory_bytes, tiles, pes, xbars, n_layers, area_mm2, "
      .. "energy_uj, latency_ms, area_um2, energy_pj, latency_ns, energy_active_uj; or a predicate function, "
      .. "or { fn = function(cost, layers) ... end, max = limit })")
    assert.has_error(function() C.new { area = -1 } end,
      "constraints: 'area': limit must be a positive finite number, got -1")
    assert.has_error(function() C.new { area = 0 / 0 } end,
      "constraints: 'area': limit must be a positive finite number, got " .. tostring(0 / 0))
    assert.has_error(function() C.new { area = "big" } end,
      "constraints: 'area': number, function or table expected, got string")
    assert.has_error(function() C.new { p = { fn = function() end } } end,
      "constraints: 'p': max must be a positive finite number, got nil")
    assert.has_error(function() C.new { p = { fn = 3, max = 1 } } end,
      "constraints: 'p': fn must be a function, got number")
    assert.has_error(function() C.new { p = { fn = function() end, maxx = 1 } } end,
      "constraints: 'p': unknown key 'maxx' (expected: fn, max, unit, doc)")
    assert.has_error(function() C.new { 100 } end,
      "constraints: key 1 is not a name (write name = limit)")
    assert.has_error(function() C.new(5) end,
      "bad argument #1 to 'new' (table of constraints expected, got number)")
    assert.has_error(function() C.preset("tiny") end,
      "constraints: unknown preset 'tiny' (expected: hasnas, neuronas)")
    local set = C.new { area = 10 }
    assert.has_error(function() set:check(nil) end,
      "bad argument #1 to 'check' (cost table expected, got nil)")
    assert.has_error(function() set:check({ latency_ms = 3 }) end,
      "constraint 'area': cost field 'area_mm2' must be a number, got nil")
    assert.has_error(function() C.new { p = { fn = function() return 0 / 0 end, max = 1 } }:check(cost()) end,
      "constraint 'p': fn must return a finite number, got " .. tostring(0 / 0))
    assert.has_error(function() C.new { p = { fn = function() return "x" end, max = 1 } }:check(cost()) end,
      "constraint 'p': fn must return a finite number, got string")
    -- an infinite value would pass (-inf) or fail (inf) every limit and print as a cost
    assert.has_error(function() C.new { p = { fn = function() return 1 / 0 end, max = 1 } }:check(cost()) end,
      "constraint 'p': fn must return a finite number, got inf")
    assert.has_error(function() C.new { p = { fn = function() return -1 / 0 end, max = 1 } }:check(cost()) end,
      "constraint 'p': fn must return a finite number, got -inf")
    assert.has_error(function() C.new { q = function() return 1 end }:check(cost()) end,
      "constraint 'q': predicate must return a boolean, got number (for a cost, write { fn = f, max = limit })")
    assert.has_error(function() C.new { q = function() error("boom", 0) end }:check(cost()) end,
      "constraint 'q': boom")
  end)
end)
