-- cosearch_spec.lua: candidates with hardware knobs and the co-search strategy (docs/search.md,
-- "Hardware co-search").
local H = require("helpers")

describe("hardware knobs", function()
  local nn = require("neuronas")
  local search = require("neuronas.search")
  local knobs = require("neuronas.search.knobs")

  it("leave _G alone", function()
    local before = H.globals()
    knobs.text({ cellA = "000000", cellB = "000000", bits = 4 })
    assert.are.same({}, H.new_globals(before))
  end)

  it("enter the cache and journal key, sorted; a plain candidate keeps its old key", function()
    assert.are.equal("000000 | 000000", search.key({ cellA = "000000", cellB = "000000" }))
    assert.are.equal("000000 | 000000 | adc_bits=5 bits=6 device_bits=2 timesteps=4 xbar=128",
      search.key({ cellA = "000000", cellB = "000000", hw = { xbar = 128, device_bits = 2, adc_bits = 5 },
        bits = 6, timesteps = 4 }))
  end)

  it("scale the ADC's energy and area by 2 per bit from the model's 4-bit figures", function()
    local base = nn.ela()
    local h = knobs.hardware(base, { adc_bits = 6, xbar = 32 })
    assert.are.equal(2.03084 * 4, h.e_adc_pj)   -- docs/hardware.md: 2.03084 pJ at 4 bits
    assert.are.equal(693.633 * 4, h.a_adc_um2)
    assert.are.equal(6, h.adc_bits)
    assert.are.equal(32, h.xbar)
    assert.are.equal(2.03084, base.e_adc_pj)     -- the base is untouched
    assert.are.equal(base, knobs.hardware(base, nil))
  end)

  it("are refused when malformed, naming the field", function()
    assert.has_error(function() knobs.check({ hw = { xbarr = 64 } }) end,
      "candidate: field 'hw.xbarr' unknown (expected: adc_bits, device_bits, xbar)")
    assert.has_error(function() knobs.check({ bits = 40 }) end,
      "candidate: field 'bits': integer in 2..32 expected, got 40")
    assert.has_error(function() knobs.check({ timesteps = 0 }) end,
      "candidate: field 'timesteps': positive integer expected, got 0")
  end)

  it("cost and score a candidate as its own chip, bits and T would", function()
    local ev = search.evaluator({ batch = 8, constraints = { memory = 1e9 } })
    local cand = { cellA = "101021", cellB = "111111", hw = { xbar = 32, device_bits = 2, adc_bits = 5 },
      bits = 6, timesteps = 3 }
    local r = ev:evaluate({ cand })[1]
    ev:close()
    -- the same by hand: the net at T = 3, FxP6, costed on the chip with those fields
    local net = nn.net { preset = "fashion-mnist", cellA = "101021", cellB = "111111", timesteps = 3 }
    local q = nn.quantizer({ bits = 6, seed = 1 }):apply(net)
    local chip = nn.ela { xbar = 32, device_bits = 2, adc_bits = 5, e_adc_pj = 2.03084 * 2, a_adc_um2 = 693.633 * 2 }
    local want = chip:evaluate(q)
    assert.are.equal(want.energy_uj, r.cost.energy_uj)
    assert.are.equal(want.area_mm2, r.cost.area_mm2)
    assert.are.equal(want.latency_ms, r.cost.latency_ms)
    assert.are.equal(3, r.cost.timesteps)
    assert.are.equal(6, r.cost.bits)
    local x = nn.data.default({ split = "train", quiet = true }):batch(8, { seed = 1 })
    assert.are.equal(nn.fitness(q, x), r.score)
    assert.are.same({ xbar = 32, device_bits = 2, adc_bits = 5 }, r.hw)
  end)
end)

describe("search.cosearch", function()
  local search = require("neuronas.search")

  it("computes a 2-D hypervolume by hand", function()
    -- points (energy, score): (1, 5), (2, 7), (3, 6) dominated by (2, 7); ref (4, 0)
    -- area: [1,2) x 5 + [2,4) x 7 = 5 + 14 = 19
    local function r(e, s) return { score = s, cost = { energy_uj = e } } end
    assert.are.equal(19, search.cosearch_hypervolume({ r(1, 5), r(2, 7), r(3, 6) }, "energy_uj", 0, 4))
    assert.are.equal(0, search.cosearch_hypervolume({}, "energy_uj", 0, 4))
  end)

  it("searches cells and knobs, every candidate new, and returns a non-dominated front", function()
    local rep = search.cosearch({ batch = 8, population = 4, generations = 3, constraints = { memory = 1e9, area = 4.5 },
      knobs = { timesteps = { 2, 3 }, bits = { 4, 8 }, xbar = { 32, 64 } }, threads = 2 })
    local keys, scored = {}, 0
    for _, r in ipairs(rep.results) do
      if r.score ~= nil then scored = scored + 1 end
      assert.is_nil(keys[r.key])
      keys[r.key] = true
      assert.is_true(r.timesteps == 2 or r.timesteps == 3)
      assert.is_true(r.bits == 4 or r.bits == 8)
      assert.is_nil(r.hw.device_bits)
    end
    assert.are.equal(12, scored) -- population x generations scored candidates
    assert.is_true(#rep.front >= 1)
    for _, a in ipairs(rep.front) do
      for _, b in ipairs(rep.results) do
        local dom = b.feasible and b.score >= a.score and b.cost.energy_uj <= a.cost.energy_uj
          and (b.score > a.score or b.cost.energy_uj < a.cost.energy_uj)
        assert.is_false(dom)
      end
    end
    -- fixed hardware: no knob on any candidate
    local fixed = search.cosearch({ batch = 8, population = 4, generations = 2, knobs = {}, constraints = { memory = 1e9 } })
    for _, r in ipairs(fixed.results) do assert.is_nil(r.hw) assert.is_nil(r.bits) end
    assert.has_error(function() search.cosearch({ knobs = { xbars = { 1 } } }) end)
  end)
end)
