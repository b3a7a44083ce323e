-- tests/spec/hypervolume_spec.lua: the Pareto, non-dominated sort, crowding and hypervolume code
-- of neuronas.search.hypervolume against brute force on random point sets (2 to 4 objectives,
-- ties and duplicates included) and hand-computed cases.
local H = require("neuronas.search.hypervolume")

-- naive references ----------------------------------------------------------------------------
local function naive_dom(a, b)
  local all_le, one_lt = true, false
  for k = 1, #a do
    if a[k] > b[k] then all_le = false end
    if a[k] < b[k] then one_lt = true end
  end
  return all_le and one_lt
end

-- ranks by peeling: front 1 = not dominated by anyone, remove, repeat
local function naive_ranks(pts)
  local rank, left, r = {}, {}, 0
  for i = 1, #pts do left[i] = true end
  local remaining = #pts
  while remaining > 0 do
    r = r + 1
    local this = {}
    for i = 1, #pts do
      if left[i] then
        local dominated = false
        for j = 1, #pts do
          if left[j] and j ~= i and naive_dom(pts[j], pts[i]) then dominated = true end
        end
        if not dominated then this[#this + 1] = i end
      end
    end
    for _, i in ipairs(this) do
      rank[i], left[i] = r, false
      remaining = remaining - 1
    end
  end
  return rank
end

-- hypervolume by inclusion-exclusion: the union of boxes [p, ref] is the alternating sum over
-- non-empty subsets of the volume of their intersection, the box [max of the subset, ref]
local function hv_inclusion_exclusion(pts, ref)
  local n, d, total = #pts, #ref, 0
  for mask = 1, (1 << n) - 1 do
    local lo, bits = {}, 0
    for k = 1, d do lo[k] = -math.huge end
    for i = 1, n do
      if mask & (1 << (i - 1)) ~= 0 then
        bits = bits + 1
        for k = 1, d do lo[k] = math.max(lo[k], pts[i][k]) end
      end
    end
    local v = 1
    for k = 1, d do v = v * math.max(0, ref[k] - lo[k]) end
    total = total + ((bits % 2 == 1) and v or -v)
  end
  return total
end

-- hypervolume by exact cell decomposition: the grid of every distinct coordinate; a cell counts
-- when some point is <= its lower corner in every dimension
local function hv_grid(pts, ref)
  local d = #ref
  local axes = {}
  for k = 1, d do
    local set, list = {}, {}
    for _, p in ipairs(pts) do
      if p[k] < ref[k] and not set[p[k]] then set[p[k]] = true list[#list + 1] = p[k] end
    end
    list[#list + 1] = ref[k]
    table.sort(list)
    axes[k] = list
  end
  local total = 0
  local corner = {}
  local function walk(k, vol)
    if k > d then
      for _, p in ipairs(pts) do
        local ok = true
        for j = 1, d do if p[j] > corner[j] then ok = false break end end
        if ok then total = total + vol return end
      end
      return
    end
    local a = axes[k]
    for i = 1, #a - 1 do
      corner[k] = a[i]
      walk(k + 1, vol * (a[i + 1] - a[i]))
    end
  end
  walk(1, 1)
  return total
end

local function random_points(n, d, ties)
  local pts = {}
  for i = 1, n do
    local p = {}
    for k = 1, d do p[k] = ties and math.random(0, 4) or math.random() * 10 end
    pts[i] = p
  end
  if n >= 2 and ties then pts[n] = { table.unpack(pts[1]) } end -- a duplicate for sure
  return pts
end

local function close(a, b) return math.abs(a - b) <= 1e-9 * math.max(1, math.abs(a), math.abs(b)) end

describe("neuronas.search.hypervolume", function()
  before_each(function() math.randomseed(20261129) end)

  it("ranks like naive peeling on random sets (2-4 objectives, ties, duplicates)", function()
    for trial = 1, 120 do
      local d = 2 + trial % 3
      local pts = random_points(math.random(1, 30), d, trial % 2 == 0)
      local rank = H.sort(#pts, function(i, j) return H.dominates(pts[i], pts[j]) end)
      local want = naive_ranks(pts)
      for i = 1, #pts do assert.are.equal(want[i], rank[i]) end
      local front = H.front_indices(pts)
      local n1 = 0
      for i = 1, #pts do if want[i] == 1 then n1 = n1 + 1 end end
      assert.are.equal(n1, #front)
      for _, i in ipairs(front) do assert.are.equal(1, want[i]) end
    end
  end)

  it("keeps equal points on the front together", function()
    local pts = { { 1, 2 }, { 1, 2 }, { 2, 1 }, { 2, 2 } }
    assert.are.same({ 1, 2, 3 }, H.front_indices(pts))
  end)

  it("hypervolume matches inclusion-exclusion and the cell grid (2-4 objectives)", function()
    for trial = 1, 150 do
      local d = 2 + trial % 3
      local ties = trial % 2 == 0
      local pts = random_points(math.random(0, 9), d, ties)
      local ref = {}
      for k = 1, d do ref[k] = ties and 4 or 9 end -- some points beyond ref: they add nothing
      local got = H.hypervolume(pts, ref)
      local inside = {}
      for _, p in ipairs(pts) do
        local ok = true
        for k = 1, d do if p[k] >= ref[k] then ok = false end end
        if ok then inside[#inside + 1] = p end
      end
      local ie = hv_inclusion_exclusion(inside, ref)
      local grid = hv_grid(pts, ref)
      assert.is_true(close(ie, grid), string.format("references disagree: %g vs %g", ie, grid))
      assert.is_true(close(got, ie), string.format("trial %d: %g expected, got %g", trial, ie, got))
    end
  end)

  it("hypervolume of larger sets matches the cell grid", function()
    for trial = 1, 12 do
      local d = 2 + trial % 3
      local pts = random_points(d == 4 and 14 or 40, d, trial % 2 == 1)
      local ref = {}
      for k = 1, d do ref[k] = 10 end
      assert.is_true(close(hv_grid(pts, ref), H.hypervolume(pts, ref)))
    end
  end)

  it("hand-computed hypervolumes", function()
    assert.are.equal(0, H.hypervolume({}, { 1, 1 }))
    assert.are.equal(6, H.hypervolume({ { 1, 1 } }, { 3, 4 }))
    -- two boxes 2x1 and 1x2 overlapping in 1x1: 3
    assert.are.equal(3, H.hypervolume({ { 0, 1 }, { 1, 0 } }, { 2, 2 }))
    -- a point on the reference adds nothing
    assert.are.equal(0, H.hypervolume({ { 2, 0 } }, { 2, 2 }))
    -- 3-D: unit cube corner at 0 against ref 2: 8; with a duplicate: still 8
    assert.are.equal(8, H.hypervolume({ { 0, 0, 0 }, { 0, 0, 0 } }, { 2, 2, 2 }))
  end)

  it("is never NaN: ties in the last coordinate add no slice, infinities give inf", function()
    -- two points at -inf on the first axis with the same second coordinate: (inf) * 0 was NaN
    assert.are.equal(math.huge, H.hypervolume({ { -math.huge, 0 }, { -math.huge, 0 } }, { 1, 1 }))
    assert.are.equal(math.huge, H.hypervolume({ { 0, 0 }, { 0.5, 0 } }, { math.huge, 1 }))
    -- the same tie with finite values: the union of the boxes
    assert.are.equal(2, H.hypervolume({ { 0, 0 }, { 0.5, 0 } }, { 2, 1 }))
    assert.are.equal(math.huge, H.hypervolume({ { 0, 0, 0 }, { 0, 1, 0 } }, { math.huge, 2, 1 }))
    -- an infinite limit is no limit: the front's reference comes from the run, and is finite
    local function res(key) return { key = key, feasible = true, score = 1, cost = { energy_uj = 1, area_mm2 = 1, latency_ms = 1 } } end
    local f = H.front({ res("a | a"), res("b | b") }, { objectives = { "energy", "score" }, limits = { energy = math.huge },
      score_floor = 0 })
    assert.are.equal(f.hypervolume, f.hypervolume)
    assert.are.equal("largest value in the run", f.reference.energy_uj.why)
  end)

  it("refuses malformed arguments naming them", function()
    local search = require("neuronas.search")
    assert.has_error(function() search.hypervolume(nil, { 1, 1 }) end,
      "search.hypervolume: bad argument #1 (list of points expected, got nil)")
    assert.has_error(function() search.hypervolume({ { 0 } }, { 1, 1 }) end,
      "search.hypervolume: bad argument #1 (points[1]: list of 2 numbers expected (the reference point's dimension), got a list of 1)")
    assert.has_error(function() search.hypervolume({ { 0, 0 }, 5 }, { 1, 1 }) end,
      "search.hypervolume: bad argument #1 (points[2]: list of 2 numbers expected (the reference point's dimension), got number)")
    assert.has_error(function() search.hypervolume({ { 0, 0 / 0 } }, { 1, 1 }) end,
      "search.hypervolume: bad argument #1 (points[1]: list of 2 numbers expected (the reference point's dimension), got "
      .. tostring(0 / 0) .. " at [2])")
    assert.has_error(function() search.hypervolume({ { 0, 0 } }) end,
      "search.hypervolume: bad argument #2 (reference point: non-empty list of numbers expected, got nil)")
    assert.has_error(function() search.hypervolume({}, {}) end,
      "search.hypervolume: bad argument #2 (reference point: non-empty list of numbers expected, got an empty table)")
    assert.has_error(function() search.hypervolume({}, { 1, "x" }) end,
      "search.hypervolume: bad argument #2 (reference point: non-empty list of numbers expected, got x at [2])")
    assert.has_error(function() search.front(nil) end, "search.front: bad argument #1 (list of results expected, got nil)")
    assert.has_error(function() search.front({ 5 }) end, "search.front: results[1]: table expected, got number")
    assert.has_error(function() search.front({}, 5) end, "search.front: bad argument #2 (table of options expected, got number)")
    assert.has_error(function() search.front({}, { limits = 5 }) end, "search.front: option 'limits': table expected, got number")
  end)

  it("refuses an objective no cost has, listing the known fields", function()
    local res = { { key = "a", feasible = true, score = 1, cost = { energy_uj = 1, tiles_used = 3 } } }
    local ok, err = pcall(H.front, res, { objectives = { "score", "energgy" } })
    assert.is_false(ok)
    assert.truthy(err:find("front: objectives[2]: unknown field 'energgy' (expected \"score\" or a numeric cost field: ", 1, true), err)
    assert.truthy(err:find("energy_uj", 1, true) and err:find("tiles_used", 1, true), err)
    -- a field a custom pipeline adds is known, as is a model field missing from these costs
    assert.are.equal(1, #H.front(res, { objectives = { "score", "tiles_used" } }).front)
    assert.are.equal(0, #H.front(res, { objectives = { "score", "latency" } }).front)
  end)

  it("crowding distance: extremes infinite, the inner ones by their neighbours", function()
    local pts = { { 0, 4 }, { 1, 2 }, { 3, 1 }, { 4, 0 } }
    local d = H.crowding(pts, { 1, 2, 3, 4 })
    assert.are.equal(math.huge, d[1])
    assert.are.equal(math.huge, d[4])
    -- point 2: (3 - 0)/4 + (4 - 1)/4 = 1.5; point 3: (4 - 1)/4 + (2 - 0)/4 = 1.25
    assert.is_true(close(1.5, d[2]))
    assert.is_true(close(1.25, d[3]))
    -- a flat objective adds nothing and never divides by zero
    local f = H.crowding({ { 1, 5 }, { 2, 5 }, { 3, 5 } }, { 1, 2, 3 })
    assert.are.equal(1, f[2])
  end)

  it("parses objectives and rejects bad ones naming the item", function()
    local o = H.objectives({ "score", "energy", { field = "tiles", sense = "min" } })
    assert.are.same({ field = "score", sense = "max", unit = "" }, o[1])
    assert.are.same({ field = "energy_uj", sense = "min", unit = "uJ" }, o[2])
    assert.are.equal("tiles", o[3].field)
    assert.has_error(function() H.objectives({ "score", { field = "x", sens = "min" } }, "nsga2: objectives") end,
      "nsga2: objectives[2]: unknown key 'sens' (expected: field, sense)")
    assert.has_error(function() H.objectives({ { field = "x", sense = "up" } }, "f") end,
      "f[1]: sense 'min' or 'max' expected, got up")
    assert.has_error(function() H.objectives({ "score", "score" }, "f") end, "f[2]: 'score' given twice")
    assert.has_error(function() H.objectives({}, "f") end, "f: non-empty list expected, got table")
  end)

  it("front of a run: feasible only, limits as reference, hand-computed hypervolume", function()
    local function r(score, e, feasible)
      return { score = score, cost = { energy_uj = e }, feasible = feasible }
    end
    local res = {
      r(-60, 10, true),   -- on the front
      r(-50, 30, true),   -- on the front
      r(-55, 35, true),   -- dominated by the second
      r(-40, 5, false),   -- infeasible: never on the front
      r(-45, 50, true),   -- feasible for its stage but over the energy limit: out
      { score = nil, cost = { energy_uj = 1 }, feasible = false },
    }
    local f = H.front(res, { objectives = { "score", "energy" }, limits = { energy = 40 }, score_floor = -70 })
    assert.are.equal(2, #f.front)
    assert.are.equal(-60, f.front[1].score)
    assert.are.equal(-50, f.front[2].score)
    assert.are.equal(40, f.reference.energy_uj.value)
    assert.are.equal("limit of the run", f.reference.energy_uj.why)
    -- energy normalised by 40: boxes (score gain 10, energy 1 - 0.25) and (20, 1 - 0.75),
    -- overlap 10 x 0.25: 7.5 + 5 - 2.5 = 10
    assert.is_true(close(10, f.hypervolume))
    -- without a floor, the lowest feasible score (-60) is the reference: only the second adds
    local g = H.front(res, { objectives = { "score", "energy" }, limits = { energy = 40 } })
    assert.are.equal(-60, g.reference.score.value)
    assert.is_true(close(10 * 0.25, g.hypervolume))
    -- a repeat of a candidate (answered by the cache) counts once
    local twice = { r(-60, 10, true), r(-60, 10, true) }
    twice[1].cellA, twice[1].cellB, twice[2].cellA, twice[2].cellB = "a", "b", "a", "b"
    local t = H.front(twice, { objectives = { "score", "energy" }, limits = { energy = 40 }, score_floor = -70 })
    assert.are.equal(1, #t.front)
    assert.are.equal(1, t.feasible)
    assert.is_true(close(10 * 0.75, t.hypervolume))
    -- an empty run
    local e = H.front({}, {})
    assert.are.equal(0, #e.front)
    assert.are.equal(0, e.hypervolume)
  end)
end)

describe("search.front over results without keys (a --json report's)", function()
  it("tells apart pairs by their cells and knobs as the evaluator keys them", function()
    local nn = require("neuronas")
    local X, Y, Z = "zero zero conv1x1 skip zero avgpool3x3", "conv1x1 conv1x1 zero zero skip zero",
      "zero conv1x1 skip zero zero conv1x1"
    local function res(a, b, energy, score, bits)
      return { cellA = nn.cell(a), cellB = nn.cell(b), feasible = true, score = score, bits = bits,
        cost = { energy_uj = energy } }
    end
    -- two pairs whose cells' texts run together alike, and one pair at two weight precisions:
    -- four candidates, each on the front (less energy, lower score)
    local rs = { res(X .. " | " .. Y, Z, 1, -4), res(X, Y .. " | " .. Z, 2, -3), res(X, Z, 3, -2, 4), res(X, Z, 4, -1, 8) }
    local f = H.front(rs, { objectives = { "energy", "score" } })
    assert.are.equal(4, #f.front)
  end)
end)
