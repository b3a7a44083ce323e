-- search_spec.lua: strategies, evaluator, journal and reports (docs/search.md), on a fake
-- pipeline whose costs and scores are simple functions of the genotype, so every expectation is
-- computed independently here.
local nn = require("neuronas")
local search = require("neuronas.search")
local H = require("helpers")

local function count(cell, op)
  local n = 0
  for _, e in ipairs(nn.cell(cell):edges()) do
    if e.op == op then n = n + 1 end
  end
  return n
end

-- Costs grow with the convolutions of each cell; the score is a hash of the genotype pair.
local function fake_cost(a, b)
  local ca, cb = count(a, "conv3x3"), count(b, "conv3x3")
  local pa, pb = count(a, "avgpool3x3"), count(b, "avgpool3x3")
  return {
    memory_params = 1000 + 100 * ca + 400 * cb,
    area_mm2 = 1 + 0.5 * ca + 0.25 * cb + 0.01 * (pa + pb),
    latency_ms = 2 + ca + 2 * cb - 0.1 * pb,
    energy_uj = 1 + 0.3 * ca + 0.2 * cb + 0.05 * pa,
  }
end

local function fake_score(a, b)
  local h = 0
  for ch in (a .. "|" .. b):gmatch(".") do h = (h * 31 + ch:byte()) % 1000003 end
  return -(h % 10007) / 1000
end

local function fake_pipeline(stats, fail_after)
  stats = stats or {}
  stats.build, stats.score = 0, 0
  return {
    build = function(c)
      if fail_after and stats.build >= fail_after then error("killed", 0) end
      stats.build = stats.build + 1
      return { a = tostring(c.cellA), b = tostring(c.cellB) }
    end,
    cost = function(n) return fake_cost(n.a, n.b) end,
    score_many = function(nets)
      stats.many = (stats.many or 0) + 1
      local out = {}
      for i, n in ipairs(nets) do
        stats.score = stats.score + 1
        out[i] = fake_score(n.a, n.b)
      end
      return out
    end,
    score = function(n)
      stats.score = stats.score + 1
      return fake_score(n.a, n.b)
    end,
    release = function() end,
  }
end

local function fits(cost, lim)
  return cost.memory_params <= (lim.memory or math.huge) and cost.area_mm2 <= (lim.area or math.huge)
    and cost.latency_ms <= (lim.latency or math.huge) and cost.energy_uj <= (lim.energy or math.huge)
end

-- Alg. 1 written out plainly; `paper = true` carries stage 1's best score into stage 2 (the flaw).
local function naive_two_stage(lim, paper)
  local space = nn.space("neuronas")
  local bestA, best = nil, -math.huge
  for i = 1, space:size() do
    local c = tostring(space:cell(i))
    if fake_cost(c, c).memory_params <= (lim.memory or math.huge) then
      local s = fake_score(c, c)
      if s > best then best, bestA = s, c end
    end
  end
  if not bestA then return nil end
  local bestB, best2 = paper and bestA or nil, paper and best or -math.huge
  for i = 1, space:size() do
    local c = tostring(space:cell(i))
    if fits(fake_cost(bestA, c), lim) then
      local s = fake_score(bestA, c)
      if s > best2 then best2, bestB = s, c end
    end
  end
  return bestB and { cellA = bestA, cellB = bestB, score = best2 } or nil
end

describe("search.two_stage", function()
  it("leaves _G alone", function()
    local before = H.globals()
    package.loaded["neuronas.search"] = nil
    require("neuronas.search")
    assert.are.same({}, H.new_globals(before))
  end)

  it("finds Alg. 1's pair and scores only feasible candidates", function()
    local lim = { memory = 2500, area = 3.0, latency = 12, energy = 2.2 }
    local stats = {}
    local rep = search.two_stage({ constraints = lim, pipeline = fake_pipeline(stats) })
    local want = naive_two_stage(lim)
    assert.is_true(rep.feasible)
    assert.are.equal(want.cellA, rep.best.cellA)
    assert.are.equal(want.cellB, rep.best.cellB)
    assert.are.equal(want.score, rep.best.score)
    assert.is_true(fits(rep.best.cost, lim))
    assert.are.equal(1458, rep.counts.evaluated)
    -- (A*, A*) comes up again in stage 2 and is served from the cache
    assert.are.equal(1, rep.counts.cached)
    assert.are.equal(1457, stats.build)
    local feasible = 0
    for _, r in ipairs(rep.results) do
      if r.feasible then feasible = feasible + 1 end
      assert.are.equal(r.feasible, r.score ~= nil)
    end
    assert.are.equal(rep.counts.scored, feasible)
    assert.are.equal(feasible - 1, stats.score) -- the cached repeat is not scored again
  end)

  it("never returns a stage-1 network that breaks area, latency or energy (our fix, docs/search.md)", function()
    -- stage 1's winner with itself misses the area budget, and so does every (A*, c) with a
    -- high score: the paper's pseudo-code would hand back (A*, A*)
    local a = naive_two_stage({ memory = 2500 }).cellA
    local space, min_area = nn.space("neuronas"), math.huge
    for i = 1, space:size() do min_area = math.min(min_area, fake_cost(a, tostring(space:cell(i))).area_mm2) end
    local lim = { memory = 2500, area = (fake_cost(a, a).area_mm2 + min_area) / 2 }
    local flawed = naive_two_stage(lim, true)
    assert.are.equal(flawed.cellA, flawed.cellB)
    assert.is_false(fits(fake_cost(flawed.cellA, flawed.cellB), lim))
    local rep = search.two_stage({ constraints = lim, pipeline = fake_pipeline() })
    assert.is_true(rep.feasible)
    assert.is_true(fits(rep.best.cost, lim))
    assert.are.same(naive_two_stage(lim).cellB, rep.best.cellB)
  end)

  it("says plainly when nothing meets the constraints and lists the nearest misses", function()
    local rep = search.two_stage({ constraints = { memory = 5000, energy = 0.5 }, pipeline = fake_pipeline() })
    assert.is_false(rep.feasible)
    assert.is_nil(rep.best)
    assert.are.equal(5, #rep.nearest)
    for i, m in ipairs(rep.nearest) do
      assert.is_false(m.feasible)
      assert.are.equal(2, m.stage)
      -- total normalised violation (energy - 0.5) / 0.5, ascending
      assert.is_true(math.abs(m.violation - (m.cost.energy_uj - 0.5) / 0.5) < 1e-12)
      if i > 1 then assert.is_true(m.violation >= rep.nearest[i - 1].violation) end
    end
  end)

  it("marks the Pareto front of the feasible candidates", function()
    local rep = search.two_stage({ constraints = { memory = 3000 }, pipeline = fake_pipeline() })
    local pts = {}
    for _, r in ipairs(rep.results) do
      if r.feasible then pts[#pts + 1] = r end
    end
    local function dominates(b, a)
      local c1, c2 = b.cost, a.cost
      local ge = b.score >= a.score and c1.energy_uj <= c2.energy_uj and c1.area_mm2 <= c2.area_mm2
        and c1.latency_ms <= c2.latency_ms
      local gt = b.score > a.score or c1.energy_uj < c2.energy_uj or c1.area_mm2 < c2.area_mm2
        or c1.latency_ms < c2.latency_ms
      return ge and gt
    end
    local n = 0
    for _, a in ipairs(pts) do
      local dom = false
      for _, b in ipairs(pts) do
        if dominates(b, a) then dom = true break end
      end
      assert.are.equal(not dom, a.pareto == true)
      if not dom then n = n + 1 end
    end
    assert.are.equal(n, #rep.pareto)
    assert.is_true(n >= 1)
  end)

  it("resumes from its journal after a kill to the same result, redoing at most one candidate", function()
    local lim = { memory = 2500, area = 3.0 }
    local journal = os.tmpname()
    local ref = search.two_stage({ constraints = lim, pipeline = fake_pipeline() })
    local ok, err = pcall(search.two_stage, { constraints = lim, pipeline = fake_pipeline({}, 700), journal = journal })
    assert.is_false(ok)
    assert.are.equal("killed", err)
    local stats = {}
    local rep = search.two_stage({ constraints = lim, pipeline = fake_pipeline(stats), journal = journal, resume = true })
    assert.are.equal(ref.best.cellA, rep.best.cellA)
    assert.are.equal(ref.best.cellB, rep.best.cellB)
    assert.are.equal(ref.best.score, rep.best.score)
    assert.are.equal(1457 - 700, stats.build)
    -- resuming with other settings is refused
    assert.has_error(function()
      search.two_stage({ constraints = lim, pipeline = fake_pipeline(), journal = journal, resume = true, bits = 4 })
    end)
    os.remove(journal)
  end)

  it("gives the same result when candidates are evaluated several at a time", function()
    local lim = { memory = 2500, area = 3.0, latency = 12, energy = 2.2 }
    local one = search.two_stage({ constraints = lim, pipeline = fake_pipeline() })
    local stats = {}
    local three = search.two_stage({ constraints = lim, pipeline = fake_pipeline(stats), threads = 3 })
    assert.are.equal(one.best.key, three.best.key)
    assert.are.equal(one.best.score, three.best.score)
    assert.are.same(one.counts, three.counts)
    assert.is_true(stats.many > 100) -- scores went through score_many in groups
    for i, r in ipairs(one.results) do
      assert.are.equal(r.key, three.results[i].key)
      assert.are.equal(r.score, three.results[i].score)
    end
  end)

  it("rejects unknown options, naming the valid ones", function()
    assert.has_error(function() search.two_stage({ sead = 1, pipeline = fake_pipeline() }) end,
      "search.setup: unknown option 'sead' (expected: activity, batch, bits, constraints, data, data_seed, hardware, "
      .. "journal, label, logger, net, pipeline, prefix_cache, preset, quantizer, repeat, resume, rounding, seed, threads, "
      .. "timesteps, variation)")
    assert.has_error(function() search.two_stage({ bits = 40, pipeline = fake_pipeline() }) end,
      "search.setup: option 'bits': integer in 2..32 expected, got 40")
  end)
end)

describe("search.random and search.evolution", function()
  it("samples SNASNet cells, the same cell at both positions, unconstrained, FxP32", function()
    local seen = {}
    local rep = search.random({ num = 60, pipeline = fake_pipeline(), logger = function(r) seen[#seen + 1] = r end })
    assert.are.equal(60, rep.counts.evaluated)
    assert.are.equal(60, #seen)
    local distinct = {}
    for _, r in ipairs(rep.results) do
      assert.are.equal(r.cellA, r.cellB)
      assert.is_true(r.feasible)
      distinct[r.key] = true
    end
    local nd = 0
    for _ in pairs(distinct) do nd = nd + 1 end
    assert.are.equal(60 - nd, rep.counts.cached)
    -- the best is the highest score among them
    local best = -math.huge
    for _, r in ipairs(rep.results) do best = math.max(best, r.score) end
    assert.are.equal(best, rep.best.score)
  end)

  it("evolves feasible pairs within its budget of evaluations", function()
    local lim = { memory = 2500 }
    local rep = search.evolution({ cycles = 120, population = 10, sample = 3, constraints = lim, pipeline = fake_pipeline() })
    assert.are.equal(120, rep.counts.evaluated)
    assert.is_true(rep.feasible)
    assert.is_true(rep.best.cost.memory_params <= 2500)
    -- every child differs from some earlier candidate in one edge of one cell
    local first_random = 10
    for i = first_random + 1, #rep.results do
      local r = rep.results[i]
      local close = false
      for j = 1, i - 1 do
        local p = rep.results[j]
        local d = 0
        for _, pair in ipairs({ { p.cellA, r.cellA }, { p.cellB, r.cellB } }) do
          local e1, e2 = nn.cell(pair[1]):edges(), nn.cell(pair[2]):edges()
          for k = 1, 6 do if e1[k].op ~= e2[k].op then d = d + 1 end end
        end
        if d == 1 then close = true break end
      end
      assert.is_true(close)
    end
  end)
end)
