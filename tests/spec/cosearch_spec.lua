-- cosearch_spec.lua: candidates with hardware knobs and the hardware co-search, search.nsga2 with
-- `knobs` (docs/search.md, "Hardware co-search"). Expectations are computed here: knob values
-- against the lists they come from, keys against builds counted by a fake pipeline, the front
-- against a brute-force non-dominated set of the evaluated results.
local H = require("helpers")

local nn = require("neuronas")
local search = require("neuronas.search")
local knobs = require("neuronas.search.knobs")
local mutate = require("neuronas.search.mutate")
local HV = require("neuronas.search.hypervolume")

-- A fake pipeline whose costs and scores depend on the cells and on every knob, counting builds
-- per key and keeping every candidate it was handed.
local function fake_pipeline(stats)
  stats = stats or {}
  stats.build, stats.keys = 0, {}
  local key = search.key
  local function f(c, k, d) return knobs.get(c, k) or d end
  return {
    build = function(c)
      knobs.check(c)
      stats.build = stats.build + 1
      stats.keys[key(c)] = (stats.keys[key(c)] or 0) + 1
      return knobs.copy(c)
    end,
    cost = function(n)
      local a, b = tostring(n.cellA), tostring(n.cellB)
      local c = H.fake_cost(a, b)
      -- energy grows with bits and T, falls with bigger crossbars, cells and ADCs cost more per bit
      local e = c.energy_uj * f(n, "bits", 8) / 8 * f(n, "timesteps", 5) / 5 * 64 / f(n, "xbar", 64)
        * (1 + 0.1 * f(n, "device_bits", 1)) * 2 ^ (f(n, "adc_bits", 4) - 4)
      c.energy_uj = e
      return c
    end,
    score = function(n)
      local a, b = tostring(n.cellA), tostring(n.cellB)
      return H.count_op(a, "conv3x3") + H.count_op(b, "conv3x3") + 0.1 * f(n, "bits", 8) + 0.05 * f(n, "timesteps", 5)
        - (#a % 7) / 100
    end,
    release = function() end,
  }
end

describe("hardware knobs", function()
  it("leave _G alone", function()
    local before = H.globals()
    knobs.text({ cellA = "000000", cellB = "000000", bits = 4 })
    knobs.space(knobs.DEFAULTS, "x")
    assert.are.same({}, H.new_globals(before))
  end)

  it("enter the cache and journal key, sorted; a plain candidate keeps its old key", function()
    assert.are.equal("000000 | 000000", search.key({ cellA = "000000", cellB = "000000" }))
    assert.are.equal("000000 | 000000 | adc_bits=5 bits=6 device_bits=2 timesteps=4 xbar=128",
      search.key({ cellA = "000000", cellB = "000000", hw = { xbar = 128, device_bits = 2, adc_bits = 5 },
        bits = 6, timesteps = 4 }))
    -- the text reads back
    local c = knobs.parse("adc_bits=5 bits=6 device_bits=2 timesteps=4 xbar=128")
    assert.are.same({ hw = { xbar = 128, device_bits = 2, adc_bits = 5 }, bits = 6, timesteps = 4 }, c)
  end)

  it("separate two candidates differing in one knob in the cache and the journal", function()
    local stats = {}
    local j = H.tmpname(".journal")
    local base = { cellA = "101021", cellB = "111111", hw = { xbar = 64 }, bits = 6 }
    local other = knobs.copy(base)
    other.hw.xbar = 128
    local ev = search.evaluator({ pipeline = fake_pipeline(stats), journal = j, constraints = { memory = 1e9 } })
    local r = ev:evaluate({ base, other, knobs.copy(base) })
    ev:close()
    assert.are.equal(2, stats.build)            -- the repeat of base came from the cache
    assert.are_not.equal(r[1].key, r[2].key)
    assert.are.equal(r[1].key, r[3].key)
    assert.is_true(r[3].cached)
    assert.are_not.equal(r[1].cost.energy_uj, r[2].cost.energy_uj)
    assert.are.equal(r[1].cost.energy_uj * 64 / 128, r[2].cost.energy_uj)
    -- the journal holds one line per key, and a resumed evaluator answers both without building
    local lines = 0
    for line in H.slurp(j):gmatch("[^\n]+") do
      if line:find(r[1].key, 1, true) or line:find(r[2].key, 1, true) then lines = lines + 1 end
    end
    assert.are.equal(2, lines)
    local stats2 = {}
    local ev2 = search.evaluator({ pipeline = fake_pipeline(stats2), journal = j, resume = true, constraints = { memory = 1e9 } })
    local r2 = ev2:evaluate({ other, base })
    ev2:close()
    os.remove(j)
    assert.are.equal(0, stats2.build)
    assert.are.equal(r[2].cost.energy_uj, r2[1].cost.energy_uj)
    assert.are.equal(r[1].cost.energy_uj, r2[2].cost.energy_uj)
    assert.are.equal(r[2].score, r2[1].score)
  end)

  it("mutate one knob at a time, to another value of its list, and nothing else", function()
    local space = knobs.space({ xbar = { 32, 64, 128 }, bits = { 4, 8 }, timesteps = { 5 } }, "t")
    local rng = nn.rng(7)
    local moved = {}
    for _ = 1, 300 do
      local c = { cellA = "101021", cellB = "111111", hw = { xbar = ({ 32, 64, 128 })[rng:integer(1, 3)] },
        bits = ({ 4, 8 })[rng:integer(1, 2)], timesteps = 5 }
      local before = knobs.copy(c)
      assert.is_true(mutate.knob(space, rng, c))
      local changed = {}
      for _, k in ipairs(knobs.ORDER) do
        if knobs.get(c, k) ~= knobs.get(before, k) then changed[#changed + 1] = k end
      end
      assert.are.equal(1, #changed)
      local k = changed[1]
      moved[k] = true
      local legal = false
      for _, s in ipairs(space) do
        if s.name == k then
          for _, v in ipairs(s.values) do legal = legal or v == knobs.get(c, k) end
        end
      end
      assert.is_true(legal)
      assert.are.equal("101021", c.cellA)
      assert.are.equal("111111", c.cellB)
    end
    -- both movable knobs moved at some point; timesteps (one value) never did
    assert.are.same({ xbar = true, bits = true }, moved)
    -- nothing to move: false, and no draw taken
    local r1, r2 = nn.rng(3), nn.rng(3)
    local c = { cellA = "101021", cellB = "111111", timesteps = 5 }
    assert.is_false(mutate.knob(knobs.space({ timesteps = { 5 } }, "t"), r1, c))
    assert.are.equal(r2:integer(1, 1000), r1:integer(1, 1000))
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
    assert.has_error(function() search.nsga2_strategy({ knobs = { xbars = { 64 } } }) end,
      "search.nsga2_strategy: option 'knobs': unknown knob 'xbars' (expected: xbar, device_bits, adc_bits, bits, timesteps)")
    assert.has_error(function() search.nsga2_strategy({ knobs = { bits = { 4, 40 } } }) end,
      "search.nsga2_strategy: option 'knobs': knob 'bits' value 2: field 'bits': integer in 2..32 expected, got 40")
    assert.has_error(function() search.nsga2_strategy({ knobs = { xbar = {} } }) end,
      "search.nsga2_strategy: option 'knobs': knob 'xbar': non-empty list of values expected")
    assert.has_error(function() search.nsga2_strategy({ knobs = { xbar = { 64, 64 } } }) end,
      "search.nsga2_strategy: option 'knobs': knob 'xbar': value 64 given twice")
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

describe("search.nsga2 with knobs (the hardware co-search)", function()
  local KN = { xbar = { 32, 64, 128 }, bits = { 4, 6, 8 }, timesteps = { 3, 5 }, adc_bits = { 3, 4 } }
  local LIM = { memory = 2600, energy = 2.5 }

  -- brute force: the feasible scored results (one per key) no other one dominates on
  -- (score up, energy down)
  local function brute_front(results)
    local pts, seen = {}, {}
    for _, r in ipairs(results) do
      if r.feasible and r.score ~= nil and not seen[r.key] then
        seen[r.key] = true
        pts[#pts + 1] = r
      end
    end
    local front = {}
    for _, a in ipairs(pts) do
      local dominated = false
      for _, b in ipairs(pts) do
        local e1, e2 = b.cost.energy_uj, a.cost.energy_uj
        if b.score >= a.score and e1 <= e2 and (b.score > a.score or e1 < e2) then dominated = true end
      end
      if not dominated then front[a.key] = true end
    end
    return front, #pts
  end

  it("carries legal knobs, spends exactly its scored budget, and its front is the brute-force one", function()
    local stats = {}
    local rep = search.nsga2({ pipeline = fake_pipeline(stats), constraints = LIM, knobs = KN, population = 6,
      scored = 30, objectives = { "score", "energy" }, seed = 4 })
    local scored, keys = 0, {}
    for _, r in ipairs(rep.results) do
      if r.score ~= nil and not keys[r.key] then scored = scored + 1 end
      keys[r.key] = true
      for name, values in pairs(KN) do
        local v, ok = knobs.get(r, name), false
        for _, x in ipairs(values) do ok = ok or x == v end
        assert.is_true(ok, r.key)
      end
      assert.is_nil(r.hw.device_bits)
      -- the key names the knobs the pipeline was handed
      assert.are.equal(search.key(r), r.key)
    end
    assert.are.equal(30, scored)
    -- every build was of a key the run reports, and each key was built once
    for k, n in pairs(stats.keys) do
      assert.is_true(keys[k])
      assert.are.equal(1, n)
    end
    local want, n = brute_front(rep.results)
    assert.is_true(n >= 5)
    local got = HV.front(rep.results, { objectives = { "score", "energy" } }).front
    local got_keys = {}
    for _, r in ipairs(got) do got_keys[r.key] = true end
    assert.are.same(want, got_keys)
    -- the knobs were searched: more than one value of each seen
    for name in pairs(KN) do
      local vals = {}
      for _, r in ipairs(rep.results) do vals[knobs.get(r, name)] = true end
      assert.is_true(next(vals, next(vals)) ~= nil, name)
    end
  end)

  it("without knobs asks what the cells-only search asks, draw for draw", function()
    local a = search.nsga2({ pipeline = fake_pipeline(), constraints = LIM, population = 6, generations = 3, seed = 2 })
    local b = search.nsga2({ pipeline = fake_pipeline(), constraints = LIM, population = 6, generations = 3, seed = 2,
      knobs = {} })
    assert.are.equal(#a.results, #b.results)
    for i, r in ipairs(a.results) do
      assert.are.equal(r.key, b.results[i].key)
      assert.is_nil(b.results[i].hw)
      assert.is_nil(b.results[i].bits)
    end
  end)

  it("is the main job's --strategy nsga2 --knobs, and scripts/cosearch.lua prints both fronts", function()
    local json = require("neuronas.json")
    local out_json, html, j = H.tmpname(".json"), H.tmpname(".html"), H.tmpname(".journal")
    local code, out, err = H.run(H.q(H.cli) .. " run scripts/neuronas.lua --strategy nsga2 --population 4 --generations 1"
      .. " --knobs xbar,bits --batch 8 --quiet --memory 1e9 --area 1e9 --latency 1e9 --energy 1e9 --json " .. H.q(out_json)
      .. " --html " .. H.q(html) .. " --journal " .. H.q(j))
    assert.are.equal(0, code, err)
    local doc = json.decode(H.slurp(out_json))
    local kt = knobs.text(doc.best)
    assert.truthy(kt:match("^bits=%d+ xbar=%d+$"), kt)
    assert.truthy(out:find("hardware knobs: " .. kt, 1, true))
    assert.truthy(H.slurp(html):find("hardware knobs <code>" .. kt .. "</code>", 1, true))
    -- the report redrawn from the journal reads the knobs back from the keys
    os.remove(html)
    code, _, err = H.run(H.q(H.cli) .. " run scripts/report.lua " .. H.q(j) .. " --html " .. H.q(html))
    assert.are.equal(0, code, err)
    assert.truthy(H.slurp(html):find("hardware knobs <code>bits=%d+ xbar=%d+</code>"))
    for _, p in ipairs({ out_json, html, j }) do os.remove(p) end
    code, _, err = H.run(H.q(H.cli) .. " run scripts/neuronas.lua --strategy random --knobs xbar --quiet")
    assert.are.equal(2, code)
    assert.truthy(err:find("--knobs: only with --strategy nsga2", 1, true))
    code, _, err = H.run(H.q(H.cli) .. " run scripts/neuronas.lua --strategy nsga2 --knobs xbars --quiet")
    assert.are.equal(2, code)
    assert.truthy(err:find("--knobs: unknown knob 'xbars'", 1, true))
    code, out, err = H.run(H.q(H.cli) .. " run scripts/cosearch.lua --population 3 --generations 1 --batch 8 --quiet"
      .. " --knobs bits --json " .. H.q(out_json))
    assert.are.equal(0, code, err)
    doc = json.decode(H.slurp(out_json))
    os.remove(out_json)
    assert.are.equal(3, doc.fixed.scored)
    assert.are.equal(3, doc.cosearch.scored)
    for _, r in ipairs(doc.fixed.front) do assert.are.equal("", r.knobs) end
    for _, r in ipairs(doc.cosearch.front) do assert.truthy(r.knobs:match("^bits=%d$"), r.knobs) end
    assert.truthy(out:find("cosearch: 3 scored", 1, true))
  end)
end)
