-- fitness_many_spec.lua: nn.fitness_many, several nets scored on threads (docs/fitness.md; docs/search.md): exactly
-- what sequential nn.fitness calls return, with and without the prefix cache.
local H = require("helpers")

describe("nn.fitness_many", function()
  local nn = require("neuronas")
  local batch = H.fashion_batch
  local q = nn.quantizer({ bits = 8 })
  local function net(cellA, cellB)
    local n = nn.net { preset = "fashion-mnist", cellA = cellA, cellB = cellB, seed = 3 }
    local qn = q:apply(n)
    n:close()
    return qn
  end
  -- stage-2-like: two cell A values, so the cache both hits and misses
  local function nets()
    local l = {}
    for i, b in ipairs({ "111111", "000000", "121212", "101021", "201120", "212121" }) do
      l[i] = net(i <= 4 and "101021" or "222222", b)
    end
    return l
  end

  -- a diag without its wall-clock timings
  local function untimed(d)
    local c = {}
    for k, v in pairs(d) do
      if not k:match("_s$") then c[k] = v end
    end
    return c
  end

  it("leaves _G alone", function()
    local before = H.globals()
    nn.fitness_many({ net("101021", "111111") }, batch(4, 1), { threads = 2 })
    assert.are.same({}, H.new_globals(before))
  end)

  for _, threads in ipairs({ 1, 2, 3 }) do
    it("returns what sequential nn.fitness returns (threads = " .. threads .. ")", function()
      local l, x = nets(), batch(8, 5)
      local want, wd = {}, {}
      for i, n in ipairs(l) do want[i], wd[i] = nn.fitness(n, x) end
      local got, gd = nn.fitness_many(l, x, { threads = threads })
      assert.are.equal(#l, #got)
      for i = 1, #l do
        assert.are.equal(want[i], got[i]) -- bit-identical
        assert.are.same(untimed(wd[i]), untimed(gd[i]))
      end
      -- the nets are left as they were: scoring again gives the same
      local again = nn.fitness_many(l, x, { threads = threads })
      assert.are.same(got, again)
    end)
  end

  it("uses and fills the prefix cache as sequential calls do", function()
    local l, x1, x2 = nets(), batch(8, 6), batch(8, 7)
    local c1, c2 = nn.fitness_cache { max_entries = 3 }, nn.fitness_cache { max_entries = 3 }
    local want, wd = {}, {}
    for i, n in ipairs(l) do want[i], wd[i] = nn.fitness(n, { x1, x2 }, { cache = c1 }) end
    local got, gd = nn.fitness_many(l, { x1, x2 }, { cache = c2, threads = 2 })
    for i = 1, #l do
      assert.are.equal(want[i], got[i])
      assert.are.same(untimed(wd[i]), untimed(gd[i]))
    end
    assert.are.same(c1:stats(), c2:stats())
    assert.are.same({ 0, 2 }, { gd[1].cache_hits, gd[1].cache_misses }) -- first with cell A 101021
    assert.are.same({ 2, 0 }, { gd[4].cache_hits, gd[4].cache_misses })
    assert.are.same({ 0, 2 }, { gd[5].cache_hits, gd[5].cache_misses }) -- first with cell A 222222
    -- a second round hits the entries the first left behind, in both
    local w2, g2 = nn.fitness(l[6], { x1, x2 }, { cache = c1 }), nn.fitness_many({ l[6] }, { x1, x2 }, { cache = c2 })
    assert.are.equal(w2, g2[1])
    assert.are.same(c1:stats(), c2:stats())
  end)

  it("scores do not depend on the BLAS thread setting (OpenBLAS rounds 1 and 2 threads differently)", function()
    -- this candidate's dense sgemms round differently on 2 BLAS threads, which flips a spike
    -- (before scoring pinned one BLAS thread it scored -62.80105 with 2 and -62.80073 with 1)
    local core = require("neuronas.core")
    local x = nn.data.default({ split = "train" }):batch(64, { seed = 1 })
    local n = q:apply(nn.net { preset = "fashion-mnist", cellA = "000012", seed = 1 })
    core.blas_threads(2)
    local s2 = nn.fitness(n, x)
    core.blas_threads(1)
    local s1 = nn.fitness(n, x)
    core.blas_threads(2)
    local sm = nn.fitness_many({ n }, x, { threads = 2 })
    assert.are.equal(s1, s2)
    assert.are.equal(s1, sm[1])
  end)

  it("draws repeats from a dataset like nn.fitness", function()
    local l, x = { net("101021", "111111"), net("101021", "000000") }, batch(6, 8)
    local ds = { batch = function(_, k, o) return batch(k, 20 + o.seed) end }
    local got, gd = nn.fitness_many(l, x, { ["repeat"] = 2, dataset = ds, seed = 4, threads = 2 })
    for i = 1, 2 do
      local s, d = nn.fitness(l[i], x, { ["repeat"] = 2, dataset = ds, seed = 4 })
      assert.are.equal(s, got[i])
      assert.are.same(d.scores, gd[i].scores)
    end
  end)

  it("scores an empty list", function()
    local s, d = nn.fitness_many({}, batch(4, 1))
    assert.are.same({}, s)
    assert.are.same({}, d)
  end)

  it("diagnoses bad arguments with exact messages", function()
    local n, x = net("101021", "111111"), batch(4, 1)
    assert.has_error(function() nn.fitness_many(n, x) end,
      "bad argument #1 to 'fitness_many' (table expected, got neuronas.Net)")
    assert.has_error(function() nn.fitness_many({ n, 3 }, x) end,
      "bad argument #1 to 'fitness_many' (net 2: neuronas.Net expected, got number)")
    assert.has_error(function() nn.fitness_many({ n, n }, x) end,
      "fitness_many: net 2 is net 1 again (score it once)")
    assert.has_error(function() nn.fitness_many({ n }, 3) end,
      "bad argument #2 to 'fitness_many' (neuronas.Tensor or list of batches expected, got number)")
    assert.has_error(function() nn.fitness_many({ n }, x, { threads = 0 }) end,
      "bad argument #3 to 'fitness_many' (field 'threads': integer in 1..64 expected, got 0)")
    assert.has_error(function() nn.fitness_many({ n }, x, { thread = 2 }) end,
      "bad argument #3 to 'fitness_many' (unknown field 'thread' (expected: threads, repeat, dataset, seed, cache))")
    assert.has_error(function() nn.fitness_many({ n }, batch(1, 1)) end,
      "fitness: batch of 1 samples (at least 2 expected)")
    local closed = net("101021", "000000")
    closed:close()
    assert.has_error(function() nn.fitness_many({ n, closed }, x) end, "attempt to use a closed neuronas.Net")
    -- a net that fails (wrong input shape) fails the call with its own message
    local cifar = nn.net { preset = "cifar10", channels = 4, fc_width = 8 }
    assert.has_error(function() nn.fitness_many({ n, cifar }, x, { threads = 2 }) end,
      "forward: input has shape 4x1x28x28, expected Sx3x32x32 (S >= 1)")
  end)
end)
