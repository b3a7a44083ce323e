-- prefilter_spec.lua: the feasibility-aware stage 1 (docs/search.md, "Stage 1"). Its cost split
-- cost(c, B) = A(c) + R(B) is checked against the full hardware model on real networks, and its
-- verdicts against a brute force that builds and costs every completion.
local nn = require("neuronas")
local search = require("neuronas.search")
local prefilter = require("neuronas.search.prefilter")
local C = require("neuronas.constraints")

local FIELDS = { "memory_params", "pes", "xbars", "tiles", "area_mm2", "energy_uj", "latency_ms" }
local REL = 1e-12 -- sums of up to a dozen doubles in another order

local function full_cost(ev, a, b)
  local net = ev.pipeline.build({ cellA = a, cellB = b })
  local cost = ev.pipeline.cost(net)
  ev.pipeline.release(net)
  return cost
end

describe("the stage-1 pre-filter", function()
  local ev = search.evaluator({ bits = 8 })
  local space = nn.space("neuronas")

  it("splits every cost of (c, B) into a cell-A part of (c, c) and a rest of (B, B)", function()
    local use = {}
    for i, f in ipairs(FIELDS) do use[i] = { field = f } end
    local rng = nn.rng(12)
    local parts = {}
    local function split(i)
      if not parts[i] then
        local c = space:cell(i)
        local cost = full_cost(ev, c, c)
        local a = prefilter.cell_a_part(cost, use)
        local r = {}
        for k, u in ipairs(use) do r[k] = cost[u.field] - a[k] end
        parts[i] = { a = a, r = r }
      end
      return parts[i]
    end
    -- pairs drawn over the whole space, plus the cells with no conv at either position (the
    -- downconv is then the last layer, with the full latency term)
    local pairs_ = { { 1, 1 }, { 1, 729 }, { 729, 1 } }
    for _ = 1, 120 do pairs_[#pairs_ + 1] = { rng:integer(1, 729), rng:integer(1, 729) } end
    for _, p in ipairs(pairs_) do
      local full = full_cost(ev, space:cell(p[1]), space:cell(p[2]))
      local a, r = split(p[1]).a, split(p[2]).r
      for k, f in ipairs(FIELDS) do
        local v = a[k] + r[k]
        if math.type(full[f]) == "integer" then
          assert.are.equal(full[f], v, f)
        else
          assert.is_true(math.abs(v - full[f]) <= REL * full[f], string.format("%s: %.17g vs %.17g", f, v, full[f]))
        end
      end
    end
  end)

  it("says which limit alone excludes a cell also one ulp from it (brute force, not the rounded split)", function()
    local cells = {}
    for i = 1, 20 do cells[i] = space:cell(i) end
    local least = {} -- each cell's least energy over its completions, on the full model
    for i, c in ipairs(cells) do
      least[i] = math.huge
      for _, b in ipairs(cells) do least[i] = math.min(least[i], full_cost(ev, c, b).energy_uj) end
    end
    local function below(x) return (string.unpack("<d", string.pack("<i8", string.unpack("<i8", string.pack("<d", x)) - 1))) end
    for _, i in ipairs({ 1, 7, 14, 20 }) do
      for _, limit in ipairs({ below(least[i]), least[i] }) do
        local set = C.new({ energy = limit, memory = 1e12, area = 1e12, latency = 1e12 })
        local r = prefilter.run(ev, cells, set)
        local want = 0
        for k = 1, #cells do if least[k] > limit then want = want + 1 end end
        assert.are.equal(want, r.excluded, string.format("cell %d, limit %.17g", i, limit))
        assert.are.equal(want, r.by_limit.energy or 0, string.format("cell %d, limit %.17g", i, limit))
        assert.are.equal(0, r.jointly)
      end
    end
  end)

  it("keeps exactly the cells some cell B completes within every limit (brute force)", function()
    local cells = {}
    for i = 1, 14 do cells[i] = space:cell(i * 50) end
    -- limits at the medians of the completions, so some cells go and some stay
    local costs, vals = {}, { memory_params = {}, area_mm2 = {}, latency_ms = {}, energy_uj = {} }
    for i, a in ipairs(cells) do
      costs[i] = {}
      for j, b in ipairs(cells) do
        local c = full_cost(ev, a, b)
        costs[i][j] = c
        for f, list in pairs(vals) do list[#list + 1] = c[f] end
      end
    end
    local function quantile(list, q)
      table.sort(list)
      return list[math.max(1, math.floor(q * #list))]
    end
    local lim = { memory = quantile(vals.memory_params, 0.6), area = quantile(vals.area_mm2, 0.5),
      latency = quantile(vals.latency_ms, 0.4), energy = quantile(vals.energy_uj, 0.5) }
    local fields = { memory = "memory_params", area = "area_mm2", latency = "latency_ms", energy = "energy_uj" }
    local want, alone, jointly, excluded = {}, {}, 0, 0
    for i = 1, #cells do
      local any, single = false, {}
      for j = 1, #cells do
        local ok = true
        for n, f in pairs(fields) do
          if costs[i][j][f] > lim[n] then ok = false else single[n] = true end
        end
        if ok then any = true end
      end
      if any then
        want[#want + 1] = tostring(cells[i])
      else
        excluded = excluded + 1
        local by_one = false
        for n in pairs(fields) do
          if not single[n] then
            alone[n] = (alone[n] or 0) + 1
            by_one = true
          end
        end
        if not by_one then jointly = jointly + 1 end
      end
    end
    assert.is_true(excluded > 0 and excluded < #cells, "limits should split the cells")
    local pf = prefilter.run(ev, cells, C.new(lim))
    assert.are.equal("decomposed", pf.method)
    local got = {}
    for i, c in ipairs(pf.kept) do got[i] = tostring(c) end
    assert.are.same(want, got)
    assert.are.equal(excluded, pf.excluded)
    assert.are.same(alone, pf.by_limit)
    assert.are.equal(jointly, pf.jointly)
    assert.are.equal(#cells * #cells, pf.completions)
  end)

  it("names the constraints it cannot use and still keeps cells by the others", function()
    local set = C.new({ energy = 30, power = { fn = function(c) return c.energy_uj / c.latency_ms end, max = 2 },
      bytes = false, fits = function() return true end, memory_bytes = 20000 })
    local use, skip = prefilter.usable(set)
    local names = {}
    for i, u in ipairs(use) do names[i] = u.name end
    assert.are.same({ "energy" }, names)
    local why = {}
    for _, x in ipairs(skip) do why[x.name] = x.why end
    assert.are.same({ fits = "a Lua function", power = "a Lua function",
      memory_bytes = "cost.memory_bytes is not a sum over layers" }, why)
  end)
end)

describe("the pre-filter with costs that are not finite", function()
  -- a custom hardware model may cost inf: A(c) = inf and cost = inf would give R = inf - inf = NaN,
  -- and a NaN passes every `v > max` test; the pre-filter must fall back and read NaN as +inf
  local function ev_with(energy_of)
    return { cost_only = function(_, cand)
      local e = energy_of(cand.cellA, cand.cellB)
      return { mode = "neuronas", energy_uj = e, layers = {
        { name = "cellA.e01.conv", energy_uj = energy_of(cand.cellA, cand.cellA) },
        { name = "cellB.e01.conv", energy_uj = e } } }
    end }
  end
  local set = C.new({ energy = 10 })
  it("falls back to the brute force, where an inf or NaN completion is within no limit", function()
    local ev = ev_with(function(a, b)
      if a == "inf" or b == "inf" then return math.huge end
      if a == "nan" or b == "nan" then return 0 / 0 end
      return 1
    end)
    local r = prefilter.run(ev, { "inf", "nan", "ok" }, set)
    assert.are.equal("brute", r.method)
    -- "ok" is completed by "ok" (energy 1); every completion of "inf" or "nan" is inf or NaN
    local kept = {}
    for _, c in ipairs(r.kept) do kept[c] = true end
    assert.is_true(kept.ok)
    assert.is_nil(kept.inf)
    assert.is_nil(kept.nan)
    for _, c in ipairs(r.kept) do assert.are.equal("string", type(c)) end
    assert.are.equal(1, r.cheapest.energy.value)
  end)
  it("says why when the brute force would be too slow", function()
    local old = prefilter.BRUTE_MAX
    prefilter.BRUTE_MAX = 1
    local ok, r = pcall(prefilter.run, ev_with(function() return math.huge end), { "a", "b" }, set)
    prefilter.BRUTE_MAX = old
    assert.is_true(ok, r)
    assert.are.equal("none", r.method)
    assert.truthy(r.why:find("not finite", 1, true))
  end)
end)

describe("the engine pipeline's cost_only", function()
  it("gives the cost of the built, quantized candidate, field by field", function()
    for _, bits in ipairs({ 8, 5 }) do
      local ev = search.evaluator({ bits = bits })
      local p = ev.pipeline
      local space = nn.space("neuronas")
      for _, i in ipairs({ 1, 2, 300, 729 }) do
        local cand = { cellA = space:cell(i), cellB = space:cell(730 - i) }
        local quick = p.cost_only(cand)
        local net = p.build(cand)
        local full = p.cost(net)
        p.release(net)
        assert.are.equal(bits, full.bits)
        for k, v in pairs(full) do
          if k ~= "layers" then assert.are.equal(v, quick[k], k) end
        end
        assert.are.same(full.layers, quick.layers)
      end
    end
  end)
end)
