-- search_spec.lua: strategies, evaluator, journal and reports (docs/search.md), on a fake
-- pipeline whose costs and scores are simple functions of the genotype, so every expectation is
-- computed independently here.
local nn = require("neuronas")
local search = require("neuronas.search")
local H = require("helpers")

local count = H.count_op

-- Costs grow with the convolutions of each cell; the score is a hash of the genotype pair.
local fake_cost = H.fake_cost

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

  it("runs Alg. 1's literal stage 1 with stage1 = \"paper\" and judges every result on every constraint", function()
    local lim = { memory = 2500, area = 3.0, latency = 12, energy = 2.2 }
    local stats = {}
    local rep = search.two_stage({ constraints = lim, pipeline = fake_pipeline(stats), stage1 = "paper" })
    local want = naive_two_stage(lim)
    -- the strategy's own pick is Alg. 1's (A*, B*)
    assert.are.equal(want.cellA, rep.notes.stage2_best.cellA)
    assert.are.equal(want.cellB, rep.notes.stage2_best.cellB)
    assert.are.equal(want.score, rep.notes.stage2_best.score)
    assert.are.equal(1458, rep.counts.evaluated)
    -- (A*, A*) comes up again in stage 2 and is served from the cache
    assert.are.equal(1, rep.counts.cached)
    assert.are.equal(1457, stats.build)
    -- every result: feasible against all four limits, stage_ok against its stage's filter
    -- (memory only in stage 1), scored exactly when one of them holds
    local best, nfeasible, scored = nil, 0, {}
    for _, r in ipairs(rep.results) do
      assert.are.equal(fits(r.cost, lim), r.feasible)
      local mem_ok = r.cost.memory_params <= lim.memory
      assert.are.equal(r.stage == 1 and mem_ok or r.feasible, r.stage_ok)
      assert.are.equal(r.stage_ok or r.feasible, r.score ~= nil)
      for _, rec in ipairs(r.checks) do
        assert.are.equal(r.cost[({ memory = "memory_params", area = "area_mm2", latency = "latency_ms",
          energy = "energy_uj" })[rec.name]] <= lim[rec.name], rec.ok)
      end
      if r.feasible then
        nfeasible = nfeasible + 1
        local s = fake_score(r.cellA, r.cellB)
        if not best or s > best.score then best = { cellA = r.cellA, cellB = r.cellB, score = s } end
      end
      if r.score then scored[r.key] = true end
    end
    assert.are.equal(nfeasible, rep.counts.feasible)
    -- the report's best is the best-scoring fully feasible candidate evaluated, whatever stage
    assert.is_true(rep.feasible)
    assert.are.same(best, { cellA = rep.best.cellA, cellB = rep.best.cellB, score = rep.best.score })
    local n = 0
    for _ in pairs(scored) do n = n + 1 end
    assert.are.equal(n, stats.score) -- each scored pair once
  end)

  it("never returns a network that breaks area, latency or energy (the stage-2 fix, docs/search.md)", function()
    -- stage 1's winner with itself misses the area budget, and so does every (A*, c) with a
    -- high score: the paper's pseudo-code would hand back (A*, A*)
    local a = naive_two_stage({ memory = 2500 }).cellA
    local space, min_area = nn.space("neuronas"), math.huge
    for i = 1, space:size() do min_area = math.min(min_area, fake_cost(a, tostring(space:cell(i))).area_mm2) end
    local lim = { memory = 2500, area = (fake_cost(a, a).area_mm2 + min_area) / 2 }
    local flawed = naive_two_stage(lim, true)
    assert.are.equal(flawed.cellA, flawed.cellB)
    assert.is_false(fits(fake_cost(flawed.cellA, flawed.cellB), lim))
    local rep = search.two_stage({ constraints = lim, pipeline = fake_pipeline(), stage1 = "paper" })
    assert.is_true(rep.feasible)
    assert.is_true(fits(rep.best.cost, lim))
    assert.are.same(naive_two_stage(lim).cellB, rep.notes.stage2_best.cellB)
  end)

  it("says plainly when nothing meets the constraints and lists the nearest misses", function()
    local lim = { memory = 5000, energy = 0.5 }
    local rep = search.two_stage({ constraints = lim, pipeline = fake_pipeline(), stage1 = "paper" })
    assert.is_false(rep.feasible)
    assert.is_nil(rep.best)
    assert.are.equal(5, #rep.nearest)
    for i, m in ipairs(rep.nearest) do
      assert.is_false(m.feasible)
      -- total normalised violation over both limits, ascending
      local v = math.max(0, (m.cost.memory_params - 5000) / 5000) + math.max(0, (m.cost.energy_uj - 0.5) / 0.5)
      assert.is_true(math.abs(m.violation - v) < 1e-12)
      if i > 1 then assert.is_true(m.violation >= rep.nearest[i - 1].violation) end
    end
  end)

  it("marks the Pareto front of the feasible candidates", function()
    local rep = search.two_stage({ constraints = { memory = 3000 }, pipeline = fake_pipeline(), stage1 = "paper" })
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
    local ref = search.two_stage({ constraints = lim, pipeline = fake_pipeline(), stage1 = "paper" })
    local ok, err = pcall(search.two_stage, { constraints = lim, pipeline = fake_pipeline({}, 700), journal = journal, stage1 = "paper" })
    assert.is_false(ok)
    assert.are.equal("killed", err)
    local stats = {}
    local rep = search.two_stage({ constraints = lim, pipeline = fake_pipeline(stats), journal = journal, resume = true,
      stage1 = "paper" })
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
    local one = search.two_stage({ constraints = lim, pipeline = fake_pipeline(), stage1 = "paper" })
    local stats = {}
    local three = search.two_stage({ constraints = lim, pipeline = fake_pipeline(stats), threads = 3, stage1 = "paper" })
    assert.are.equal(one.best.key, three.best.key)
    assert.are.equal(one.best.score, three.best.score)
    assert.are.same(one.counts, three.counts)
    assert.is_true(stats.many > 100) -- scores went through score_many in groups
    for i, r in ipairs(one.results) do
      assert.are.equal(r.key, three.results[i].key)
      assert.are.equal(r.score, three.results[i].score)
    end
  end)

  it("asks lists of the evaluator's list size unless given a chunk, with the same results", function()
    local lim = { memory = 2500, area = 3.0, latency = 12, energy = 2.2 }
    -- the sizes of the lists the strategy asked for, through a pipeline that says its list size
    local function sized(n, stats)
      local p = fake_pipeline(stats)
      p.list_size = n and function() return n end or nil
      return p
    end
    local function asked(st, p)
      local sizes, ask = {}, st.ask
      st.ask = function(self)
        local c = ask(self)
        if c then sizes[#sizes + 1] = #c end
        return c
      end
      return search.run(st, { constraints = lim, pipeline = p, threads = 2 }), sizes
    end
    local ref = search.two_stage({ constraints = lim, pipeline = fake_pipeline(), stage1 = "paper" })
    local rep, sizes = asked(search.two_stage_strategy({ stage1 = "paper" }), sized(7))
    assert.are.equal(7, sizes[1])
    assert.are.equal(7, sizes[#sizes - 1])
    assert.are.equal(ref.best.key, rep.best.key)
    assert.are.same(ref.counts, rep.counts)
    for i, r in ipairs(ref.results) do assert.are.equal(r.score, rep.results[i].score) end
    -- no list size from the pipeline: one candidate per thread; a chunk given wins over both
    _, sizes = asked(search.two_stage_strategy({ stage1 = "paper" }), sized(nil))
    assert.are.equal(2, sizes[1])
    _, sizes = asked(search.two_stage_strategy({ stage1 = "paper", chunk = 5 }), sized(7))
    assert.are.equal(5, sizes[1])
    _, sizes = asked(search.random_strategy({ num = 30 }), sized(7))
    assert.are.same({ 7, 7, 7, 7, 2 }, sizes)
    _, sizes = asked(search.random_strategy({ num = 30, chunk = 4 }), sized(7))
    assert.are.equal(4, sizes[1])
  end)

  it("rejects unknown options, naming the setup's and the strategy's valid ones", function()
    assert.has_error(function() search.two_stage({ sead = 1, pipeline = fake_pipeline() }) end,
      "search.two_stage: unknown option 'sead' (expected: activity, batch, bits, chunk, constraints, data, data_seed, "
      .. "hardware, hooks, journal, label, logger, net, pipeline, prefix_cache, preset, quantizer, repeat, resume, "
      .. "rounding, seed, space, stage1, threads, timesteps, variation)")
    assert.has_error(function() search.two_stage({ bits = 40, pipeline = fake_pipeline() }) end,
      "search.setup: option 'bits': integer in 2..32 expected, got 40")
    assert.has_error(function() search.evolution({ cycle = 5, pipeline = fake_pipeline() }) end,
      "search.evolution: unknown option 'cycle' (expected: activity, batch, bits, constraints, cycles, data, data_seed, "
      .. "hardware, hooks, journal, label, logger, net, pipeline, population, prefix_cache, preset, quantizer, repeat, "
      .. "resume, rounding, sample, sample_seed, seed, space, threads, timesteps, variation)")
    assert.has_error(function() search.two_stage({ stage1 = "alg1", pipeline = fake_pipeline() }) end,
      "search.two_stage_strategy: option 'stage1': \"feasible\" or \"paper\" expected, got alg1")
  end)
end)

describe("the engine pipeline's list size", function()
  it("fills every thread to the end within 256 MiB of weights, and keeps big nets one per thread", function()
    local function list(setup) return search.evaluator(setup):list_size() end
    local function weight_bytes(o) return nn.net(o):params({ scope = "all" }) * 4 end
    local cap = 256 * 1024 * 1024
    -- SNASNet's setting: 16 channels, batch 32; a net's 10 MB of weights allow 25 in a list
    local b16 = weight_bytes({ preset = "cifar100", channels = 16 })
    assert.are.equal(math.min(32, cap // b16), list({ preset = "cifar100", net = { channels = 16 }, batch = 32, threads = 2 }))
    assert.is_true(cap // b16 < 32 and cap // b16 > 2)
    assert.are.equal(math.min(48, cap // b16), list({ preset = "cifar100", net = { channels = 16 }, batch = 32, threads = 3 }))
    -- fashion-mnist's small nets: 16 per thread
    assert.is_true(weight_bytes({ preset = "fashion-mnist" }) * 32 <= cap)
    assert.are.equal(32, list({ threads = 2 }))
    -- maps of 256 MiB or more (512 x 16 x 32 x 32 x 40 bytes): scored one at a time, threads inside
    assert.are.equal(2, list({ preset = "cifar100", net = { channels = 16 }, batch = 512, threads = 2 }))
    assert.are.equal(1, list({ threads = 1 }))
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

describe("search.run with a strategy of one's own", function()
  local function once(cands)
    local st = { done = false }
    function st:ask()
      if self.done then return nil end
      self.done = true
      return cands
    end
    function st:tell() end
    return st
  end
  local a = "conv3x3 skip skip skip conv3x3 skip"

  it("refuses a bare candidate, an unknown key or a missing cell, naming the expected shape", function()
    assert.has_error(function() search.run(once({ cellA = a, cellB = a }), { pipeline = fake_pipeline() }) end,
      "strategy 'custom': ask() returned a bare candidate (expected a list of candidates { { cellA = cell, cellB = cell"
      .. " [, stage = n, constraints = table] }, ... } or nil; wrap it: return { cand })")
    assert.has_error(function() search.run(once({ { cellA = a, cellb = a } }), { pipeline = fake_pipeline() }) end,
      "strategy 'custom': ask() candidate 1 has unknown key 'cellb' (expected: cellA, cellB, constraints, stage, hw, bits, timesteps)")
    assert.has_error(function() search.run(once({ { cellA = a } }), { pipeline = fake_pipeline() }) end,
      "strategy 'custom': ask() candidate 1: 'cellB' must be a cell (genotype string or nn.cell), got nil")
    assert.has_error(function() search.run(once(42), { pipeline = fake_pipeline() }) end,
      "strategy 'custom': ask() returned a number (expected a list of candidates { { cellA = cell, cellB = cell"
      .. " [, stage = n, constraints = table] }, ... } or nil)")
    assert.has_error(function() search.run({ ask = 1 }, { pipeline = fake_pipeline() }) end,
      "search.run: bad argument #1 (strategy with ask() and tell(results) expected)")
  end)

  it("refuses a malformed stage, constraints or knobs and a report() that is no table, naming them", function()
    assert.has_error(function() search.run(once({ { cellA = a, cellB = a, stage = {} } }), { pipeline = fake_pipeline() }) end,
      "strategy 'custom': ask() candidate 1: 'stage' must be an integer or a string, got table")
    assert.has_error(function() search.run(once({ { cellA = a, cellB = a, constraints = 5 } }), { pipeline = fake_pipeline() }) end,
      "strategy 'custom': ask() candidate 1: 'constraints' must be a table of constraints, got number")
    assert.has_error(function() search.run(once({ { cellA = a, cellB = a, hw = 5 } }), { pipeline = fake_pipeline() }) end,
      "strategy 'custom': ask() candidate 1: field 'hw': table expected, got number")
    local st = once({ { cellA = a, cellB = a } })
    st.report = function() return 5 end
    assert.has_error(function() search.run(st, { pipeline = fake_pipeline() }) end,
      "strategy 'custom': report() returned a number (expected a table of notes or nil)")
    assert.has_error(function() search.key({ cellA = a, cellB = a, hw = 5 }) end)
    local ok, err = pcall(search.key, { cellA = a, cellB = a, hw = 5 })
    assert.truthy(err:find("candidate: field 'hw': table expected, got number", 1, true), err)
    -- the summary of a report of the wrong shape
    local report = require("neuronas.report")
    local rep = search.run(once({ { cellA = a, cellB = a } }), { pipeline = fake_pipeline() })
    rep.results[1].stage = {}
    assert.has_error(function() report.summary(rep) end, "report.summary: results[1].stage: number or string expected, got table")
    rep.results[1].stage, rep.notes = nil, 5
    assert.has_error(function() report.summary(rep) end, "report.summary: field 'notes': table expected, got number")
  end)

  it("judges a candidate's own constraints as stage_ok and feasibility on the run's", function()
    local st = once({ { cellA = a, cellB = a, constraints = { memory = 1e9 } } })
    local rep = search.run(st, { pipeline = fake_pipeline(), constraints = { memory = 100 } })
    local r = rep.results[1]
    assert.is_true(r.stage_ok)
    assert.is_false(r.feasible)
    assert.is_number(r.score) -- scored for its stage, but never the best
    assert.is_nil(rep.best)
    assert.are.equal((fake_cost(a, a).memory_params - 100) / 100, r.violation)
  end)
end)

describe("search.setup's checks", function()
  local function setup_error(k, v)
    local ok, err = pcall(search.random, { num = 1, pipeline = k ~= "pipeline" and fake_pipeline() or nil, [k] = v })
    assert.is_false(ok, k)
    return tostring(err)
  end
  it("names the option and what it expects for objects of the wrong kind", function()
    local want = {
      hardware = "option 'hardware': nn.ela options (a plain table) or an object with an evaluate method (nn.ela) expected, got number 5",
      quantizer = "option 'quantizer': an object with an apply method (nn.quantizer) expected, got number 5",
      data = "option 'data': a dataset with a batch method (nn.data.open) expected, got number 5",
      logger = "option 'logger': a function of each result expected, got number 5",
      net = "option 'net': a table of nn.net options expected, got number 5",
      pipeline = "option 'pipeline': a table with build, cost, score and release functions expected, got number 5",
    }
    for k, msg in pairs(want) do
      local err = setup_error(k, 5)
      assert.truthy(err:find("search.setup: " .. msg, 1, true), err)
      assert.is_nil(err:find("attempt to", 1, true), err)
    end
    local err = setup_error("pipeline", { build = print, cost = print, score = print })
    assert.truthy(err:find("search.setup: option 'pipeline': field 'release': function expected, got nil", 1, true), err)
    err = setup_error("data_seed", "x")
    assert.truthy(err:find("search.setup: option 'data_seed': integer in 0..2^53-1 expected, got string \"x\"", 1, true), err)
    err = setup_error("resume", "yes")
    assert.truthy(err:find("search.setup: option 'resume': boolean expected, got string \"yes\"", 1, true), err)
    assert.has_error(function() search.setup(5) end, "search.setup: table expected, got number")
  end)

  it("takes a journal path as the CLI passes it (a string), or none, and refuses anything else", function()
    for _, v in ipairs({ 5, {}, "", "a\0b", true }) do
      local err = setup_error("journal", v)
      assert.truthy(err:find("search.setup: option 'journal': a file path (non-empty string without NUL bytes) or false expected", 1, true), err)
    end
    local j = H.tmpname(".journal")
    local rep = search.random({ num = 1, pipeline = fake_pipeline(), journal = j })
    assert.are.equal(1, #rep.results)
    assert.truthy(H.slurp(j):find('"journal":"neuronas"', 1, true))
    os.remove(j)
    assert.are.equal(1, #search.random({ num = 1, pipeline = fake_pipeline(), journal = false }).results)
  end)
end)

describe("search.pareto and search.nearest_misses", function()
  it("name a result without the field they read", function()
    assert.has_error(function() search.pareto({ { feasible = true, score = 1 }, { feasible = true, score = 2 } }) end,
      "search.pareto: results[1]: field 'cost': table expected (a feasible scored result has its costs), got nil")
    assert.has_error(function() search.pareto(nil) end, "search.pareto: bad argument #1 (list of results expected, got nil)")
    assert.has_error(function() search.nearest_misses({ { feasible = false }, { feasible = false } }) end,
      "search.nearest_misses: results[1]: field 'violation': number expected (an infeasible result's total normalised"
      .. " violation), got nil")
    assert.has_error(function() search.nearest_misses({}, -1) end,
      "search.nearest_misses: bad argument #2 (integer >= 0 expected, got -1)")
    -- without an index, ties keep the list's order
    local m = search.nearest_misses({ { feasible = false, violation = 1, name = "x" }, { feasible = false, violation = 1, name = "y" },
      { feasible = false, violation = 0.5, name = "z" } })
    assert.are.same({ "z", "x", "y" }, { m[1].name, m[2].name, m[3].name })
  end)

  it("put a candidate evaluated twice on the front once, at its first evaluation", function()
    local cost = { energy_uj = 1, area_mm2 = 1, latency_ms = 1 }
    local r = function(i, key, score) return { index = i, key = key, feasible = true, score = score, cost = cost } end
    local rs = { r(1, "a | a", -1), r(2, "b | b", -2), r(3, "a | a", -1) }
    local f = search.pareto(rs)
    assert.are.same({ 1 }, { f[1].index, f[2] and f[2].index })
    assert.is_true(rs[1].pareto)
    assert.is_nil(rs[3].pareto)
  end)

  it("list a candidate evaluated twice once, at its first evaluation", function()
    local r = function(i, key, v) return { index = i, key = key, feasible = false, violation = v } end
    local m = search.nearest_misses({ r(1, "a | a", 0.2), r(2, "b | b", 0.1), r(3, "a | a", 0.2), r(4, "c | c", 0.3),
      r(5, "b | b", 0.1) }, 3)
    assert.are.same({ 2, 1, 4 }, { m[1].index, m[2].index, m[3].index })
  end)
end)

describe("feasibility-aware stage 1", function()
  -- a small space, so the pre-filter costs every completion through the fake pipeline (whose
  -- costs carry no per-layer list to split)
  local space = nn.space("neuronas")
  local cells = {}
  for i = 1, 40 do cells[i] = tostring(space:cell(1 + (i - 1) * 18)) end

  it("keeps only cells some B completes, so A* never dooms stage 2 as Alg. 1's literal stage 1 does", function()
    local paper0 = search.two_stage({ space = cells, constraints = { memory = 2500 }, pipeline = fake_pipeline(), stage1 = "paper" })
    local a = paper0.notes.cellA
    local ca, pa = count(a, "conv3x3"), count(a, "avgpool3x3")
    assert.is_true(ca + pa > 0)
    -- an energy limit just under what A* needs even with the cheapest cell B
    local minB = math.huge
    for _, b in ipairs(cells) do minB = math.min(minB, fake_cost(a, b).energy_uj) end
    local lim = { memory = 2500, energy = minB - 1e-6 }
    local paper = search.two_stage({ space = cells, constraints = lim, pipeline = fake_pipeline(), stage1 = "paper" })
    assert.are.equal(a, paper.notes.cellA)
    assert.is_nil(paper.notes.stage2_best)
    local rep = search.two_stage({ space = cells, constraints = lim, pipeline = fake_pipeline() })
    assert.is_true(fits(rep.notes.stage2_best.cost, lim))
    assert.is_true(rep.feasible)
    -- the kept cells, by brute force here
    local want, by = {}, {}
    for _, c in ipairs(cells) do
      local any, mem, en = false, false, false
      for _, b in ipairs(cells) do
        local k = fake_cost(c, b)
        if fits(k, lim) then any = true end
        if k.memory_params <= lim.memory then mem = true end
        if k.energy_uj <= lim.energy then en = true end
      end
      if any then want[#want + 1] = c end
      if not any and not mem then by.memory = (by.memory or 0) + 1 end
      if not any and not en then by.energy = (by.energy or 0) + 1 end
    end
    local pf = rep.notes.prefilter
    assert.are.equal("brute", pf.method)
    local got = {}
    for i, c in ipairs(pf.kept) do got[i] = tostring(c) end
    assert.are.same(want, got)
    assert.are.equal(#cells - #want, pf.excluded)
    assert.are.same(by, pf.by_limit)
    -- stage 1 asked the kept cells only
    local n1 = 0
    for _, r in ipairs(rep.results) do if r.stage == 1 then n1 = n1 + 1 end end
    assert.are.equal(#want, n1)
  end)
end)

describe("the reports", function()
  local report = require("neuronas.report")
  local json = require("neuronas.json")

  it("describe function constraints and write any field JSON cannot hold as a string, saying which", function()
    local power = function(cost) return cost.energy_uj / cost.latency_ms end
    local lim = { memory = 2500, power = { fn = power, max = 0.3, unit = "mW", doc = "energy / latency" },
      small = function(cost) return cost.memory_params < 2000, "too big" end }
    local rep = search.two_stage({ constraints = lim, pipeline = fake_pipeline(), stage1 = "paper" })
    local warnings = {}
    local text = report.to_json(rep, { constraints = lim, odd = print },
      { warn = function(m) warnings[#warnings + 1] = m end, sources = { memory = "--memory" } })
    local doc = json.decode(text)
    assert.are.same({ "warning: JSON report: field 'report.settings.odd' cannot be encoded, written as a string" }, warnings)
    assert.are.equal(tostring(print), doc.settings.odd)
    assert.are.same({ name = "power", kind = "function", limit = 0.3, unit = "mW", doc = "energy / latency",
      field = json.null, source = json.null }, doc.settings.constraints[2])
    assert.are.same({ name = "memory", kind = "limit", limit = 2500, unit = "params", doc = json.null,
      field = "cost.memory_params", source = "--memory" }, doc.settings.constraints[1])
    if rep.best then
      local c = rep.best.cost
      local p = doc.best.checks[2]
      assert.are.same({ "power", c.energy_uj / c.latency_ms, 0.3, "mW", "energy / latency" },
        { p.name, p.value, p.limit, p.unit, p.doc })
    end
    -- the CSV: one column per constraint besides the four named limits, then its value per row
    local lines = {}
    for l in report.to_csv(rep):gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.truthy(lines[1]:find(",cached,power,small$"))
    local r = rep.results[3]
    local want = string.format("%.10g,%s", r.cost.energy_uj / r.cost.latency_ms, r.cost.memory_params < 2000 and "1" or "0")
    assert.are.equal(want, lines[4]:match("([^,]+,[^,]+)$"))
  end)
end)
