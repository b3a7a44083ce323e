-- tests/spec/nsga2_spec.lua: search.nsga2 on a fake pipeline whose costs and scores are simple
-- functions of the genotype, so each expectation is computed here by brute force over the
-- evaluated candidates: constraint-domination, elitism, determinism, journal and resume.
local nn = require("neuronas")
local search = require("neuronas.search")
local nsga2 = require("neuronas.search.nsga2")
local HV = require("neuronas.search.hypervolume")
local H = require("helpers")

local count = H.count_op

local fake_cost = H.fake_cost

-- more convolutions score higher (a real trade-off against the costs), plus a genotype hash
local function fake_score(a, b)
  local h = 0
  for ch in (a .. "|" .. b):gmatch(".") do h = (h * 31 + ch:byte()) % 1000003 end
  return count(a, "conv3x3") + count(b, "conv3x3") - (h % 1009) / 1000
end

local function fake_pipeline(stats, fail_after, many)
  stats = stats or {}
  stats.build, stats.score, stats.scored = 0, 0, {}
  local p = {
    build = function(c)
      if fail_after and stats.build >= fail_after then error("killed", 0) end
      stats.build = stats.build + 1
      return { a = tostring(c.cellA), b = tostring(c.cellB) }
    end,
    cost = function(n) return fake_cost(n.a, n.b) end,
    score = function(n)
      stats.score = stats.score + 1
      stats.scored[n.a .. " | " .. n.b] = true
      return fake_score(n.a, n.b)
    end,
    release = function() end,
  }
  if many then
    p.score_many = function(nets)
      local out = {}
      for i, n in ipairs(nets) do out[i] = p.score(n) end
      return out
    end
  end
  return p
end

local LIM = { memory = 3000, energy = 2.5 }

local function fits(cost, lim)
  return cost.memory_params <= (lim.memory or math.huge) and cost.energy_uj <= (lim.energy or math.huge)
end

local function keys_of(rep)
  local k = {}
  for i, r in ipairs(rep.results) do k[i] = r.key end
  return k
end

describe("search.nsga2", function()
  it("leaves _G alone", function()
    local before = H.globals()
    local st = search.nsga2_strategy({ population = 4, generations = 1 })
    search.run(st, { pipeline = fake_pipeline() })
    assert.are.same({}, H.new_globals(before))
  end)

  it("evaluates population x (generations + 1) candidates, scoring exactly the feasible ones", function()
    local stats = {}
    local rep = search.nsga2({ population = 12, generations = 5, constraints = LIM, pipeline = fake_pipeline(stats) })
    assert.are.equal(12 * 6, #rep.results)
    local feasible = {}
    for _, r in ipairs(rep.results) do
      assert.are.equal(fits(r.cost, LIM), r.feasible)
      assert.are.equal(r.feasible, r.score ~= nil)
      if r.feasible then feasible[r.key] = true end
    end
    -- each feasible genotype pair scored once, no infeasible one ever
    assert.are.same(feasible, stats.scored)
    local n = 0
    for _ in pairs(stats.scored) do n = n + 1 end
    assert.are.equal(n, stats.score)
  end)

  it("is deterministic for a seed and differs across seeds", function()
    local a = search.nsga2({ population = 8, generations = 3, seed = 5, constraints = LIM, pipeline = fake_pipeline() })
    local b = search.nsga2({ population = 8, generations = 3, seed = 5, constraints = LIM, pipeline = fake_pipeline() })
    local c = search.nsga2({ population = 8, generations = 3, seed = 6, constraints = LIM, pipeline = fake_pipeline() })
    assert.are.same(keys_of(a), keys_of(b))
    assert.are_not.same(keys_of(a), keys_of(c))
    -- scoring several at a time (the threaded path) changes nothing
    local d = search.nsga2({ population = 8, generations = 3, seed = 5, constraints = LIM,
      pipeline = fake_pipeline({}, nil, true) })
    assert.are.same(keys_of(a), keys_of(d))
  end)

  it("keeps every candidate no evaluated one dominates (elitism, checked by brute force)", function()
    local st = search.nsga2_strategy({ population = 16, generations = 6, seed = 3, objectives = { "score", "energy" } })
    local rep = search.run(st, { constraints = LIM, pipeline = fake_pipeline() })
    -- brute force: the feasible results no other feasible result dominates on (score, energy)
    local pts, owners = {}, {}
    for _, r in ipairs(rep.results) do
      if r.feasible and not owners[r.key] then
        pts[#pts + 1] = { -r.score, r.cost.energy_uj }
        owners[r.key] = #pts
      end
    end
    local best = {}
    for k, i in pairs(owners) do
      local dominated = false
      for j = 1, #pts do
        if j ~= i and pts[j][1] <= pts[i][1] and pts[j][2] <= pts[i][2]
            and (pts[j][1] < pts[i][1] or pts[j][2] < pts[i][2]) then dominated = true end
      end
      if not dominated then best[k] = true end
    end
    local nbest = 0
    for _ in pairs(best) do nbest = nbest + 1 end
    assert.is_true(nbest > 1 and nbest <= 16)
    local inpop = {}
    for _, m in ipairs(st.pop) do inpop[m.key] = true end
    for k in pairs(best) do assert.is_true(inpop[k], k .. " left the population") end
    -- the run's front over the same objectives is the same set
    local f = HV.front(rep.results, { objectives = { "score", "energy" }, limits = LIM })
    assert.are.equal(nbest, #f.front)
  end)

  it("ranks candidates it never scores by their total violation", function()
    -- nothing meets these limits: the population must end as the 6 smallest violations seen
    local st = search.nsga2_strategy({ population = 6, generations = 4, seed = 2 })
    local rep = search.run(st, { constraints = { memory = 100, energy = 0.1 }, pipeline = fake_pipeline() })
    assert.are.equal(0, rep.counts.scored)
    local seen, v = {}, {}
    for _, r in ipairs(rep.results) do
      if not seen[r.key] then seen[r.key] = true v[#v + 1] = r.violation end
    end
    table.sort(v)
    local got = {}
    for i, m in ipairs(st.pop) do got[i] = m.violation end
    table.sort(got)
    for i = 1, 6 do assert.are.equal(v[i], got[i]) end
  end)

  it("constraint-domination: feasible first, then smaller violation, then Pareto", function()
    local cd = nsga2.constraint_dominates
    local f1 = { feasible = true, violation = 0, vec = { 1, 1 } }
    local f2 = { feasible = true, violation = 0, vec = { 2, 2 } }
    local f3 = { feasible = true, violation = 0, vec = { 0, 3 } }
    local i1 = { feasible = false, violation = 0.5, vec = { 0, 0 } }
    local i2 = { feasible = false, violation = 0.7, vec = { 0, 0 } }
    assert.is_true(cd(f2, i1))
    assert.is_false(cd(i1, f2))
    assert.is_true(cd(i1, i2))
    assert.is_false(cd(i2, i1))
    assert.is_true(cd(f1, f2))
    assert.is_false(cd(f1, f3))
    assert.is_false(cd(f3, f1))
    -- select keeps the best 3 of 5: f1, f3 (front 1), f2 (front 2); then infeasible by violation
    local members = { i2, f2, i1, f3, f1 }
    for k, m in ipairs(members) do m.seq = k end
    local kept = nsga2.select(members, 3)
    assert.are.same({ f2, f3, f1 }, kept)
    assert.are.same({ f2, i1, f3, f1 }, nsga2.select(members, 4))
  end)

  it("cuts the last front by crowding distance, extremes first", function()
    local function members(v3, v4)
      return {
        { feasible = true, violation = 0, vec = { 0, 4 }, seq = 1 },
        { feasible = true, violation = 0, vec = { 1, 3 }, seq = 2 },
        { feasible = true, violation = 0, vec = v3, seq = 3 },
        { feasible = true, violation = 0, vec = v4, seq = 4 },
        { feasible = true, violation = 0, vec = { 4, 0 }, seq = 5 },
      }
    end
    -- evenly spaced: every inner point has 2/4 + 2/4 = 1; the extremes (inf) and the earliest
    local m = members({ 2, 2 }, { 3, 1 })
    assert.are.same({ m[1], m[2], m[5] }, nsga2.select(m, 3))
    -- member 2: (1.2 - 0)/4 + (4 - 2.5)/4 = 0.675; member 3: (3.9 - 1)/4 + (3 - 1)/4 = 1.225;
    -- member 4: (4 - 1.2)/4 + (2.5 - 0)/4 = 1.325
    m = members({ 1.2, 2.5 }, { 3.9, 1 })
    assert.are.same({ m[1], m[4], m[5] }, nsga2.select(m, 3))
    assert.are.same({ m[1], m[3], m[4], m[5] }, nsga2.select(m, 4))
  end)

  it("resumes from its journal after a kill to the same result", function()
    local j = os.tmpname()
    local ref = search.nsga2({ population = 6, generations = 3, constraints = LIM, pipeline = fake_pipeline() })
    assert.has_error(function()
      search.nsga2({ population = 6, generations = 3, constraints = LIM, journal = j, pipeline = fake_pipeline({}, 10) })
    end, "killed")
    local stats = {}
    local rep = search.nsga2({ population = 6, generations = 3, constraints = LIM, journal = j, resume = true,
      pipeline = fake_pipeline(stats) })
    assert.are.same(keys_of(ref), keys_of(rep))
    assert.are.equal(ref.best.key, rep.best.key)
    assert.is_true(stats.build < #ref.results)
    os.remove(j)
  end)

  it("rejects bad options naming them", function()
    assert.has_error(function() search.nsga2_strategy({ populaton = 4 }) end,
      "search.nsga2_strategy: unknown option 'populaton' (expected: crossover, generations, knobs, mutation, objectives, population, scored, seed, space)")
    assert.has_error(function() search.nsga2_strategy({ population = 1 }) end,
      "search.nsga2_strategy: option 'population': integer >= 2 expected, got 1")
    assert.has_error(function() search.nsga2_strategy({ mutation = 1.5 }) end,
      "search.nsga2_strategy: option 'mutation': number in 0..1 expected, got 1.5")
    assert.has_error(function() search.nsga2_strategy({ crossover = 0 / 0 }) end,
      "search.nsga2_strategy: option 'crossover': number in 0..1 expected, got " .. tostring(0 / 0))
    assert.has_error(function() search.nsga2_strategy({ objectives = { "score", 3 } }) end,
      "search.nsga2_strategy: option 'objectives'[2]: a field name or { field =, sense = } expected, got number")
  end)

  it("refuses an objective the costs do not have, before scoring anything with the engine pipeline", function()
    local ok, err = pcall(search.nsga2, { population = 4, generations = 1, batch = 16, objectives = { "score", "energgy" } })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("search.nsga2_strategy: option 'objectives'[2]: unknown field 'energgy' (expected"
      .. " \"score\" or a numeric cost field: area_mm2, ", 1, true), err)
    -- a pipeline of one's own: its cost fields are the known ones (checked on the first results)
    local p = fake_pipeline()
    local cost = p.cost
    p.cost = function(n) local c = cost(n) c.widgets = 3 return c end
    local rep = search.nsga2({ population = 4, generations = 1, pipeline = p, objectives = { "score", "widgets" } })
    assert.are.equal(8, #rep.results)
    ok, err = pcall(search.nsga2, { population = 4, generations = 1, pipeline = fake_pipeline(), objectives = { "score", "widgets" } })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("option 'objectives'[2]: unknown field 'widgets'", 1, true), err)
  end)

  it("is the main job's --strategy nsga2, with --json and --html", function()
    local j, js, html = os.tmpname(), os.tmpname(), os.tmpname()
    local code, out, err = H.run(H.q(H.cli) .. " run scripts/neuronas.lua --strategy nsga2 --population 4 --generations 1"
      .. " --batch 16 --quiet --journal " .. H.q(j) .. " --json " .. H.q(js) .. " --html " .. H.q(html))
    assert.are.equal(0, code, err)
    assert.truthy(out:find("Found architecture (nsga2 search)", 1, true))
    local doc = require("neuronas.json").decode(H.slurp(js))
    assert.are.equal("nsga2", doc.strategy)
    assert.are.equal(8, #doc.results)
    local page = H.slurp(html)
    assert.are.equal(4 * 8, H.count(page, '<circle class="pt '))
    os.remove(j)
    os.remove(js)
    os.remove(html)
  end)

  it("runs on the engine: a small real search over the default data", function()
    local rep = search.nsga2({ population = 4, generations = 1, batch = 16, constraints = { memory = 40000 } })
    assert.are.equal(8, #rep.results)
    for _, r in ipairs(rep.results) do
      assert.are.equal(r.cost.memory_params <= 40000, r.feasible)
      if r.feasible then assert.is_number(r.score) end
    end
  end)
end)
