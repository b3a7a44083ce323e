-- fitness_spec.lua: nn.fitness and nn.fitness_cache from Lua (docs/fitness.md; docs/search.md).
local H = require("helpers")

describe("nn.fitness", function()
  local nn = require("neuronas")
  local batch = H.fashion_batch
  local function net(cellB, seed)
    return nn.net { preset = "fashion-mnist", cellA = "101021", cellB = cellB or "111111", seed = seed or 1 }
  end

  it("leaves _G alone", function()
    local before = H.globals()
    nn.fitness(net(), batch(8, 1))
    nn.fitness_cache()
    assert.are.same({}, H.new_globals(before))
  end)

  it("scores a net and explains where the time went", function()
    local s, d = nn.fitness(nn.quantizer({ bits = 8 }):apply(net()), batch(16, 2))
    assert.is_true(s > -1e6 and s < 1e6) -- finite
    assert.are.equal(1, d.repeats)
    assert.are.equal(16, d.samples)
    assert.are.same({ s }, d.scores)
    assert.is_true(d.lif_calls > 0 and d.lif_calls % 5 == 0) -- T = 5 steps
    for _, k in ipairs({ "forward_s", "kernel_s", "logdet_s", "total_s" }) do
      assert.is_true(d[k] >= 0, k)
    end
    assert.is_true(d.total_s >= d.kernel_s)
    assert.are.equal(#d.modules, (function() local n = 0; for _ in pairs(d.firing_rates) do n = n + 1 end; return n end)())
    for _, m in ipairs(d.modules) do
      assert.are.equal(m.firing_rate, d.firing_rates[m.name])
      assert.is_true(m.firing_rate >= 0 and m.firing_rate <= 1)
      assert.are.equal(m.fired / (m.calls * 16 * m.neurons), m.firing_rate)
    end
    assert.is_number(d.firing_rates["downconv.lif"])
  end)

  it("scores a net that never fires -inf (singular kernel), never NaN", function()
    local s, d = nn.fitness(nn.net { preset = "fashion-mnist", threshold = 1e9 }, batch(4, 9))
    assert.are.equal(-math.huge, s)
    assert.are.equal(0, d.firing_rates["downconv.lif"])
  end)

  it("averages repeats over different batches (a list, or drawn from a dataset)", function()
    local n = net()
    local x1, x2 = batch(8, 3), batch(8, 4)
    local s, d = nn.fitness(n, { x1, x2 })
    assert.are.equal(2, d.repeats)
    assert.are.equal((d.scores[1] + d.scores[2]) / 2, s)
    assert.are_not.equal(d.scores[1], d.scores[2])
    assert.are.equal(d.scores[1], (nn.fitness(n, x1)))
    -- any value with :batch(n, {seed=}) serves as a dataset; batch r is drawn with seed + r - 1
    local seeds = {}
    local ds = { batch = function(_, k, o) seeds[#seeds + 1] = o.seed; return batch(k, 2 + o.seed) end }
    local s2, d2 = nn.fitness(n, x1, { ["repeat"] = 3, dataset = ds, seed = 1 })
    assert.are.same({ 2, 3 }, seeds)
    assert.are.equal(d.scores[2], d2.scores[2]) -- seed 2 -> batch(8, 4), which is x2
    assert.are.equal(3, #d2.scores)
    assert.is_true(math.abs(s2 - (d2.scores[1] + d2.scores[2] + d2.scores[3]) / 3) < 1e-12)
  end)

  it("gives bit-identical scores with the prefix cache, reusing cell A's prefix", function()
    local c = nn.fitness_cache { max_entries = 2 }
    local x = batch(8, 7)
    for i, b in ipairs({ "111111", "000000", "121212" }) do
      local n = nn.quantizer({ bits = 8 }):apply(net(b))
      local s0 = nn.fitness(n, x)
      local s1, d = nn.fitness(n, x, { cache = c })
      assert.are.equal(s0, s1)
      assert.are.equal(i == 1 and 0 or 1, d.cache_hits)
    end
    local st = c:stats()
    assert.are.equal(2, st.hits)
    assert.are.equal(1, st.misses)
    assert.are.equal(1, st.entries)
    assert.are.equal(2, st.max_entries)
    assert.are.equal("neuronas.FitnessCache (1/2 entries, 2 hits, 1 misses)", tostring(c))
    c:clear()
    assert.are.equal(0, c:stats().entries)
    c:close()
    assert.are.equal("neuronas.FitnessCache (closed)", tostring(c))
    assert.has_error(function() nn.fitness(net(), x, { cache = c }) end,
      "attempt to use a closed neuronas.FitnessCache")
  end)

  it("scores one net on several threads with the same bits as on one", function()
    local n = nn.quantizer({ bits = 8 }):apply(net("210212"))
    local x1, x2 = batch(12, 21), batch(12, 22)
    local s1, d1 = nn.fitness(n, { x1, x2 })
    for _, threads in ipairs({ 2, 3 }) do
      local s, d = nn.fitness(n, { x1, x2 }, { threads = threads })
      assert.are.equal(s1, s)
      assert.are.same(d1.scores, d.scores)
      assert.are.same(d1.firing_rates, d.firing_rates)
    end
    local c = nn.fitness_cache()
    assert.are.equal(s1, (nn.fitness(n, { x1, x2 }, { cache = c, threads = 2 })))
    assert.are.equal(s1, (nn.fitness(n, { x1, x2 }, { cache = c, threads = 2 }))) -- from the cache
    assert.are.equal(2, c:stats().hits)
  end)

  it("keeps a big net's pass buffers on request, with the same score, until released", function()
    -- the fashion preset at batch 512 is big enough for the scorer to keep a pass's buffers
    -- (tests/c/test_scratch.c checks the kept budget itself)
    local n, x = nn.quantizer({ bits = 8 }):apply(net("210212")), batch(512, 3)
    local plain = nn.fitness(n, x)
    assert.are.equal(plain, (nn.fitness(n, x, { keep_memory = true })))
    assert.are.equal(plain, (nn.fitness(n, x, { keep_memory = true, threads = 2 })))
    nn.fitness_release_memory()
    nn.fitness_release_memory()
    assert.are.equal(plain, (nn.fitness(n, x, { keep_memory = false })))
    assert.has_error(function() nn.fitness(n, x, { keep_memory = 1 }) end,
      "bad argument #3 to 'fitness' (field 'keep_memory': boolean expected, got 1)")
  end)

  it("diagnoses bad arguments with exact messages", function()
    local n, x = net(), batch(4, 1)
    assert.has_error(function() nn.fitness(n, x, { threads = 0 }) end,
      "bad argument #3 to 'fitness' (field 'threads': integer in 1..64 expected, got 0)")
    assert.has_error(function() nn.fitness(3, x) end,
      "bad argument #1 to 'fitness' (neuronas.Net expected, got number)")
    assert.has_error(function() nn.fitness(n, 3) end,
      "bad argument #2 to 'fitness' (neuronas.Tensor or list of batches expected, got number)")
    assert.has_error(function() nn.fitness(n, x, { ["repeat"] = 2 }) end,
      "bad argument #3 to 'fitness' (repeat=2 needs a dataset or a list of 2 batches)")
    assert.has_error(function() nn.fitness(n, x, { ["repeat"] = 0 }) end,
      "bad argument #3 to 'fitness' (field 'repeat': integer in 1..64 expected, got 0)")
    assert.has_error(function() nn.fitness(n, x, { repeats = 2 }) end,
      "bad argument #3 to 'fitness' (unknown field 'repeats' (expected: repeat, dataset, seed, cache, threads, activity, keep_memory))")
    assert.has_error(function() nn.fitness(n, x, { cache = {} }) end,
      "bad argument #3 to 'fitness' (field 'cache': neuronas.FitnessCache expected, got table)")
    assert.has_error(function() nn.fitness(n, { x, 5 }) end,
      "bad argument #2 to 'fitness' (batch 2: neuronas.Tensor expected, got number)")
    assert.has_error(function() nn.fitness(n, { x, batch(5, 1) }) end,
      "fitness: batch 2 has 5 samples, batch 1 4")
    assert.has_error(function() nn.fitness(n, batch(1, 1)) end,
      "fitness: batch of 1 samples (at least 2 expected)")
    assert.has_error(function() nn.fitness_cache { max_entries = 0 } end,
      "bad argument #1 to 'fitness_cache' (field 'max_entries': integer in 1..1000000 expected, got 0)")
    local closed = net()
    closed:close()
    assert.has_error(function() nn.fitness(closed, x) end, "attempt to use a closed neuronas.Net")
    local ds = { batch = function() return "nope" end }
    assert.has_error(function() nn.fitness(n, x, { ["repeat"] = 2, dataset = ds }) end,
      "fitness: dataset:batch returned string, neuronas.Tensor expected")
  end)
end)
