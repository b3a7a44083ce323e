-- variation_spec.lua: device variation (docs/variation.md) and measured crossbar activity
-- (docs/hardware.md, "Activity-aware energy") from Lua, against naive Lua twins.
local H = require("helpers")

describe("device variation", function()
  local nn = require("neuronas")
  local batch = H.fashion_batch
  local function qnet(cellB, bits)
    local net = nn.net { preset = "fashion-mnist", cellA = "101021", cellB = cellB or "111111", timesteps = 2 }
    return nn.quantize(net, bits or 8)
  end

  -- The model written out plainly: digits by integer division, the sign by comparison, the
  -- step from the quantizer's report (not from the tensor), the same counter stream.
  local function naive(values, step, bits, p, label, draw)
    local d = p.device_bits or 1
    local cells = (bits + d - 1) // d
    local base = 2 ^ d
    local r = nn.rng(p.seed or 1):split(label):split(draw)
    local out = {}
    for i, w in ipairs(values) do
      local code = math.floor(math.abs(w) / step + 0.5)
      local m, place = 0, 1
      for _ = 1, cells do
        local level = code % base
        code = code // base
        local u, v, z = r:uniform(), r:uniform(), r:normal()
        if u < (p.stuck or 0) then
          level = v < (p.stuck_high or 0.5) and base - 1 or 0
        else
          level = math.max(0, level * (1 + (p.sigma or 0) * z))
        end
        m = m + level * place
        place = place * base
      end
      out[i] = (w < 0 and -m or m) * step
    end
    return out
  end

  local function fxp_tensor(n, bits, seed)
    local t = nn.tensor(n)
    t:normal(nn.rng(seed), 0, 0.05)
    local q = nn.quantizer { bits = bits }
    local rep = q:report(t)
    return q:apply(t), 2.0 ^ -rep.frac_bits
  end

  it("leaves _G alone", function()
    local before = H.globals()
    local t = fxp_tensor(8, 6, 1)
    nn.core.variation_tensor(t, 6, { sigma = 0.1 }, "x", 1)
    assert.are.same({}, H.new_globals(before))
  end)

  it("matches the naive model cell by cell", function()
    for _, case in ipairs({
      { bits = 6, p = { sigma = 0.1, device_bits = 2 } },
      { bits = 8, p = { sigma = 0.2, device_bits = 3, stuck = 0.3, stuck_high = 0.25, seed = 5 } },
      { bits = 4, p = { sigma = 0.05, device_bits = 1, stuck = 0.1 } },
    }) do
      local t, step = fxp_tensor(40, case.bits, 3)
      local want = naive(t:totable(), step, case.bits, case.p, "cellA.e01.conv", 2)
      local got = nn.core.variation_tensor(t, case.bits, case.p, "cellA.e01.conv", 2):totable()
      for i = 1, #want do
        assert.is_true(math.abs(got[i] - want[i]) <= 1e-6 * math.abs(want[i]) + 1e-12,
          string.format("bits %d weight %d: %.9g vs %.9g", case.bits, i, got[i], want[i]))
      end
    end
  end)

  it("is the identity at sigma 0 for every cell width, and stuck = 1 sticks every cell", function()
    local t = fxp_tensor(64, 8, 4)
    local v = t:totable()
    for d = 1, 8 do
      local same, st = nn.core.variation_tensor(t, 8, { sigma = 0, device_bits = d }, "l", 1)
      assert.are.same(v, same:totable())
      assert.are.equal(64 * ((8 + d - 1) // d), st.cells)
      assert.are.equal(0, st.stuck)
    end
    local _, st = nn.core.variation_tensor(t, 8, { stuck = 1, device_bits = 3 }, "l", 1)
    assert.are.equal(st.cells, st.stuck)
    -- stuck = 1: every cell is 0 or 2^d - 1, so |w| / step is a sum of such digits
    local stuck = nn.core.variation_tensor(t, 8, { stuck = 1, device_bits = 3 }, "l", 1):totable()
    for _, w in ipairs(stuck) do
      local code = math.floor(math.abs(w) / st.step + 0.5)
      for _ = 1, 3 do
        assert.is_true(code % 8 == 0 or code % 8 == 7)
        code = code // 8
      end
    end
  end)

  it("perturbs one-cell weights by the relative sd sigma, unbiased", function()
    local n, sigma = 4000, 0.1
    local t = fxp_tensor(n, 8, 9)
    local w = t:totable()
    local v = nn.core.variation_tensor(t, 8, { sigma = sigma, device_bits = 8 }, "big", 1):totable()
    local sum, sum2, m = 0, 0, 0
    for i = 1, n do
      if w[i] ~= 0 then
        local rel = v[i] / w[i] - 1
        sum, sum2, m = sum + rel, sum2 + rel * rel, m + 1
      end
    end
    local mean = sum / m
    local sd = math.sqrt(sum2 / m - mean * mean)
    assert.is_true(m > 3000)
    assert.is_true(math.abs(mean) < 4 * sigma / math.sqrt(m), "mean " .. mean)
    assert.is_true(math.abs(sd - sigma) < 0.1 * sigma, "sd " .. sd)
  end)

  it("is a function of (seed, layer path, draw)", function()
    local t = fxp_tensor(32, 8, 2)
    local function f(label, draw, seed)
      return nn.core.variation_tensor(t, 8, { sigma = 0.1, seed = seed }, label, draw):totable()
    end
    assert.are.same(f("a", 1, 1), f("a", 1, 1))
    assert.are_not.same(f("a", 1, 1), f("a", 2, 1))
    assert.are_not.same(f("a", 1, 1), f("b", 1, 1))
    assert.are_not.same(f("a", 1, 1), f("a", 1, 2))
    -- a net's layer gets the stream of its path: the same as the tensor call
    local q = qnet()
    local noisy = nn.variation(q, { sigma = 0.1 }, 3)
    local name = q:layers()[2].name
    local w0 = q:tensor(name .. ".weight")
    assert.are.same(nn.core.variation_tensor(w0, 8, { sigma = 0.1 }, name, 3):totable(),
      noisy:tensor(name .. ".weight"):totable())
  end)

  it("scores noisy copies: variation = nil is today's score, sigma = 0 changes nothing", function()
    local q, x = qnet(), batch(8, 1)
    local s0, d0 = nn.core.fitness(q, x)
    local s1, d1 = nn.fitness(q, x, { variation = nil })
    assert.are.equal(s0, s1)
    assert.is_nil(d1.variation)
    local s2, d2 = nn.fitness(q, x, { variation = { sigma = 0, draws = 2 } })
    assert.are.equal(s0, s2)
    assert.are.same({ s0, s0 }, d2.variation.scores)
    assert.are.equal(0, d2.variation.drop)
    local s3, d3 = nn.fitness(q, x, { variation = { sigma = 0.2, draws = 3 } })
    local v = d3.variation
    assert.are.equal(s0, v.clean)
    assert.are.equal(3, #v.scores)
    assert.are.equal((v.scores[1] + v.scores[2] + v.scores[3]) / 3, s3)
    assert.are.equal(math.min(v.scores[1], v.scores[2], v.scores[3]), v.worst)
    assert.are.equal(v.clean - v.mean, v.drop)
    -- each draw is the score of nn.variation's copy
    local c2 = nn.variation(q, { sigma = 0.2 }, 2)
    assert.are.equal(nn.fitness(c2, x), v.scores[2])
    assert.are_not.equal(v.scores[1], v.scores[2])
  end)

  it("fitness_many with variation gives each net's nn.fitness", function()
    local nets, x = { qnet("111111"), qnet("000000") }, batch(8, 2)
    local opts = { variation = { sigma = 0.1, draws = 2 } }
    local ss, ds = nn.fitness_many(nets, x, { variation = opts.variation, threads = 2 })
    for i, n in ipairs(nets) do
      local s, d = nn.fitness(n, x, opts)
      assert.are.equal(s, ss[i])
      assert.are.same(d.variation.scores, ds[i].variation.scores)
    end
  end)

  it("gives a drop of 0, not NaN, when the kernel is singular with and without noise", function()
    -- identical images: every spike pattern is the same, K is singular and scores -inf
    local NET = { channels = 2, fc_width = 4, timesteps = 2, input = { 1, 8, 8 }, classes = 2, second_pool = 1 }
    local q = nn.quantize(nn.net(NET), 8)
    local x = nn.tensor(4, 1, 8, 8):fill(0.5)
    local opts = { variation = { sigma = 0.1, draws = 2 } }
    local s, d = nn.fitness(q, x, opts)
    assert.are.equal(-math.huge, s)
    assert.are.equal(-math.huge, d.variation.clean)
    assert.are.equal(0, d.variation.drop)
    local _, ds = nn.fitness_many({ q }, x, opts)
    assert.are.equal(0, ds[1].variation.drop)
  end)

  it("rejects bad input with the field's name", function()
    local q, x = qnet(), batch(4, 1)
    local function err(f) local ok, e = pcall(f); assert.is_false(ok); return tostring(e) end
    assert.matches("sigma", err(function() nn.fitness(q, x, { variation = { sigma = -1 } }) end))
    assert.matches("unknown field 'sigmaa'", err(function() nn.fitness(q, x, { variation = { sigmaa = 1 } }) end))
    assert.matches("variation.draws", err(function() nn.fitness(q, x, { variation = { draws = 0 } }) end))
    assert.matches("weight_bits%(%) is 32", err(function()
      nn.variation(nn.net { preset = "fashion-mnist" }, { sigma = 0.1 }, 1) end))
    assert.matches("not on an FxP%-6 grid", err(function()
      nn.core.variation_tensor(nn.tensor.from { 0.3, 0.1 }, 6, {}, "w", 1) end))
  end)
end)

describe("crossbar activity", function()
  local nn = require("neuronas")

  -- The naive count: every (sample, output position, row group) scans its channels and window.
  local function naive(x, S, C, Hh, W, k, stride, xbar)
    local pad = k // 2
    local oh, ow = (Hh + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1
    local count = 0
    for s = 0, S - 1 do
      for oy = 0, oh - 1 do
        for ox = 0, ow - 1 do
          for c0 = 0, C - 1, xbar do
            local any = false
            for c = c0, math.min(C, c0 + xbar) - 1 do
              for ky = 0, k - 1 do
                for kx = 0, k - 1 do
                  local y, xx = oy * stride - pad + ky, ox * stride - pad + kx
                  if y >= 0 and y < Hh and xx >= 0 and xx < W and x[s + 1][c + 1][y + 1][xx + 1] ~= 0 then
                    any = true
                  end
                end
              end
            end
            if any then count = count + 1 end
          end
        end
      end
    end
    return count, oh * ow * ((C + xbar - 1) // xbar)
  end

  it("counts active reads as the naive count does on random spike maps", function()
    local rng = nn.rng(11)
    for _, g in ipairs({
      { S = 2, C = 3, H = 6, W = 5, k = 3, stride = 1, xbar = 2, rate = 0.05 },
      { S = 3, C = 5, H = 7, W = 7, k = 5, stride = 2, xbar = 64, rate = 0.02 },
      { S = 1, C = 4, H = 5, W = 6, k = 1, stride = 1, xbar = 1, rate = 0.3 },
      { S = 2, C = 2, H = 4, W = 4, k = 7, stride = 1, xbar = 3, rate = 0.01 },
    }) do
      local nested = {}
      for s = 1, g.S do
        nested[s] = {}
        for c = 1, g.C do
          nested[s][c] = {}
          for y = 1, g.H do
            nested[s][c][y] = {}
            for x = 1, g.W do nested[s][c][y][x] = rng:uniform() < g.rate and 1 or 0 end
          end
        end
      end
      local t = nn.tensor.from(nested)
      local want, per_sample = naive(nested, g.S, g.C, g.H, g.W, g.k, g.stride, g.xbar)
      local got, reads = nn.core.activity_count(t, { k = g.k, stride = g.stride, xbar = g.xbar })
      assert.are.equal(want, got)
      assert.are.equal(per_sample, reads)
    end
  end)

  it("gives the activity-aware energy term by term", function()
    local net = nn.quantize(nn.net { preset = "fashion-mnist", cellA = "101021", cellB = "111111", timesteps = 2 }, 8)
    local x = nn.tensor(8, 1, 28, 28)
    x:normal(nn.rng(3), 0, 1)
    local hw = nn.ela()
    local act = nn.activity(net, x, { xbar = hw.xbar })
    local cost = hw:evaluate_active(net, x)
    assert.are.equal(hw:evaluate(net).energy_uj, cost.energy_uj) -- unchanged
    -- a 3x3 layer's cycle at the defaults (docs/hardware.md), by hand:
    -- scaled = 8 (9 x 1.76423 + 8 (2.03084 + 0.094245)) + 8 x 16 x 1.15e-6
    -- fixed = 19.64 x 8 + 4.64 + 1.274 x 4 + 8 x 0.2 + 397
    local scaled = 8 * (9 * 1.76423 + 8 * (2.03084 + 0.094245)) + 8 * 16 * 1.15e-6
    local fixed = 19.64 * 8 + 4.64 + 1.274 * 4 + 8 * 0.2 + 397
    local sum, seen = 0, 0
    for _, l in ipairs(cost.layers) do
      local a
      for _, m in ipairs(act.layers) do if m.name == l.name then a = m end end
      local f = a.active / a.reads
      assert.are.equal(f, l.active_fraction)
      if l.name == "stem.conv" then assert.are.equal(1, f) else assert.is_true(f < 1) end
      local want = l.energy_uj * (fixed + f * scaled) / (fixed + scaled)
      assert.is_true(math.abs(l.energy_active_uj - want) <= 1e-12 * want)
      sum, seen = sum + want, seen + 1
    end
    assert.are.equal(11, seen) -- scope "features": stem, 3 + 6 cell convs, downconv
    assert.is_true(math.abs(cost.energy_active_uj - sum) <= 1e-12 * sum)
    assert.is_true(cost.energy_active_uj < cost.energy_uj)
    -- counted for another crossbar size: refused
    local big = nn.ela { xbar = 128 }
    assert.has_error(function() big:active_energy(big:evaluate(net), act) end)
  end)
end)

describe("the search with variation and activity", function()
  local nn = require("neuronas")
  local search = require("neuronas.search")
  local cells = { "000000", "000001", "100000", "111111" }
  local function run(threads, extra)
    local setup = { space = cells, batch = 8, timesteps = 2, threads = threads,
      constraints = { memory = 1e9 } }
    for k, v in pairs(extra or {}) do setup[k] = v end
    return search.two_stage(setup)
  end

  it("ranks by the robust score, the same with one thread or two", function()
    local v = { sigma = 0.2, draws = 2 }
    local r1, r2 = run(1, { variation = v }), run(2, { variation = v })
    assert.are.equal(#r1.results, #r2.results)
    for i, r in ipairs(r1.results) do
      assert.is_table(r.variation)
      assert.are.equal(r.variation.mean, r.score)
      assert.are.equal(r.score, r2.results[i].score)
      assert.are.equal(1, r.variation.device_bits) -- the hardware model's cells
    end
    -- without variation: no variation table, and the noise-free scores are the clean ones above
    local plain = run(1)
    for i, r in ipairs(plain.results) do
      assert.is_nil(r.variation)
      assert.are.equal(r1.results[i].variation.clean, r.score)
    end
  end)

  it("measures the activity-aware energy when a limit names it, and applies the limit", function()
    local all = run(1, { activity = true })
    local values = {}
    for _, r in ipairs(all.results) do
      assert.is_true(r.cost.energy_active_uj > 0 and r.cost.energy_active_uj <= r.cost.energy_uj)
      values[#values + 1] = r.cost.energy_active_uj
    end
    table.sort(values)
    local limit = values[#values // 2 + 1] -- about half of stage 2 passes
    local lim = run(1, { constraints = { memory = 1e9, energy_active_uj = limit } })
    local stage2 = 0
    for _, r in ipairs(lim.results) do
      if r.stage == 2 then -- stage 1 checks memory only
        stage2 = stage2 + 1
        assert.are.equal(r.cost.energy_active_uj <= limit, r.feasible)
        assert.is_table(r.checks.energy_active_uj)
      end
    end
    assert.is_true(stage2 > 0)
  end)
end)

describe("the activity counted in the scoring forward", function()
  local nn = require("neuronas")
  local search = require("neuronas.search")
  local cells = { "000000", "000001", "100000", "111111" }

  it("equals nn.activity's count layer by layer, and leaves the score as it was", function()
    local x = nn.data.default({ split = "train", quiet = true }):batch(16, { seed = 2 })
    for _, c in ipairs({ { "101021", "111111" }, { "000001", "120021" } }) do
      local q = nn.quantize(nn.net { preset = "fashion-mnist", cellA = c[1], cellB = c[2], timesteps = 3 }, 6)
      for _, xbar in ipairs({ 64, 16 }) do
        local want = nn.activity(q, x, { xbar = xbar })
        local plain = nn.fitness(q, x)
        for _, threads in ipairs({ 1, 2 }) do
          local s, d = nn.fitness(q, x, { threads = threads, activity = { xbar = xbar } })
          assert.are.equal(plain, s)
          assert.are.same(want, d.activity)
        end
      end
    end
    local q = nn.quantize(nn.net { preset = "fashion-mnist", cellA = "000000", cellB = "000000", timesteps = 2 }, 8)
    assert.has_error(function() nn.fitness(q, x, { activity = { xbar = 0 } }) end,
      "bad argument #3 to 'fitness' (field 'activity.xbar': crossbar rows in 1..1073741824 expected)")
    assert.has_error(function() nn.fitness(q, x, { activity = 64 }) end,
      "bad argument #3 to 'fitness' (field 'activity': table { xbar = rows } expected, got number)")
  end)

  it("makes a search with activity run one forward per costed candidate, with the separate count's energies", function()
    -- count the forwards: each net scored by nn.fitness or nn.fitness_many, or counted by nn.activity
    local forwards = 0
    local fitness, many, activity = nn.fitness, nn.fitness_many, nn.activity
    nn.fitness = function(...) forwards = forwards + 1 return fitness(...) end
    nn.fitness_many = function(nets, ...) forwards = forwards + #nets return many(nets, ...) end
    nn.activity = function(...) forwards = forwards + 1 return activity(...) end
    local ok, err = pcall(function()
      for _, threads in ipairs({ 1, 2 }) do
        forwards = 0
        local rep = search.two_stage({ space = cells, batch = 8, timesteps = 2, threads = threads, activity = true,
          constraints = { memory = 30000 } })
        local n, keys, scored = forwards, {}, 0
        for _, r in ipairs(rep.results) do
          if not keys[r.key] then keys[r.key], scored = true, scored + (r.score and 1 or 0) end
        end
        local costed = 0
        for _ in pairs(keys) do costed = costed + 1 end
        assert.is_true(scored < costed) -- the memory limit leaves some only costed
        assert.are.equal(costed, n)
        -- the energies and scores of the run without activity and of the separate count
        local plain = search.two_stage({ space = cells, batch = 8, timesteps = 2, threads = threads,
          constraints = { memory = 30000 } })
        local x = nn.data.default({ split = "train", quiet = true }):batch(8, { seed = 1 })
        local hw = nn.ela({ mode = "neuronas" })
        for i, r in ipairs(rep.results) do
          assert.are.equal(plain.results[i].score, r.score)
          local q = nn.quantizer({ bits = 8, seed = 1 }):apply(nn.net { preset = "fashion-mnist", cellA = r.cellA,
            cellB = r.cellB, timesteps = 2 })
          local want = hw:active_energy(hw:evaluate(q), activity(q, x, { xbar = hw.xbar }))
          assert.are.equal(want.energy_active_uj, r.cost.energy_active_uj)
        end
      end
    end)
    nn.fitness, nn.fitness_many, nn.activity = fitness, many, activity
    assert(ok, err)
  end)
end)

describe("scripts/variation-sweep.lua", function()
  local json = require("neuronas.json")
  it("tabulates each sigma's choice from its own search report, and --reuse reads them back", function()
    local dir = os.tmpname()
    os.remove(dir)
    local cmd = H.q(H.cli) .. " run scripts/variation-sweep.lua --cells 3 --sigmas 0,0.2 --draws 2 --dir " .. H.q(dir)
    local code, out, err = H.run(cmd)
    assert.are.equal(0, code, err)
    local rows = {}
    for line in out:gmatch("[^\n]+") do
      local sg, a, b, clean, robust, worst, drop = line:match(
        "^| ([%d.]+) | (.-) | (.-) | (%S+) | (%S+) %((%S+)%) | (%S+) |")
      if sg then rows[#rows + 1] = { sigma = tonumber(sg), cells = a .. " | " .. b, clean = tonumber(clean),
        robust = tonumber(robust), worst = tonumber(worst), drop = tonumber(drop) } end
    end
    assert.are.equal(2, #rows)
    for _, r in ipairs(rows) do
      local doc = json.decode(H.slurp(string.format("%s/sigma-%g.json", dir, r.sigma)))
      assert.are.equal(doc.best.cellA .. " | " .. doc.best.cellB, r.cells)
      local v = doc.best.variation
      if r.sigma == 0 then
        assert.is_nil(v)
        assert.are.equal(string.format("%.4f", doc.best.score), string.format("%.4f", r.clean))
        assert.are.equal(r.clean, r.robust)
        assert.are.equal(0, r.drop)
      else
        assert.are.equal(0.2, v.sigma)
        assert.are.equal(string.format("%.4f", v.clean), string.format("%.4f", r.clean))
        assert.are.equal(string.format("%.4f", v.mean), string.format("%.4f", r.robust))
        assert.are.equal(string.format("%.4f", v.worst), string.format("%.4f", r.worst))
        assert.are.equal(string.format("%.4f", v.clean - v.mean), string.format("%.4f", r.drop))
      end
    end
    -- --reuse: the same table, from the reports, without searching
    local code2, out2, err2 = H.run(cmd .. " --reuse")
    assert.are.equal(0, code2, err2)
    assert.is_nil(out2:find("neuronas run scripts/neuronas.lua", 1, true))
    assert.are.equal(out:match("\n(| sigma .*)$"), out2:match("\n(| sigma .*)$"))
    os.execute("rm -rf " .. H.q(dir))
  end)
end)

describe("scripts/train.lua --eval-variation", function()
  local json = require("neuronas.json")
  it("evaluates noisy copies of the trained net and records them", function()
    local out = os.tmpname()
    local code, stdout, err = H.run(H.cli .. " run scripts/train.lua --genotype 000000 --epochs 1 --limit 64"
      .. " --test-limit 64 --bits 6 --eval-variation 0.3 --eval-variation-draws 3 --device-bits 2 --quiet --json " .. out)
    assert.are.equal(0, code, err)
    local f = assert(io.open(out))
    local doc = json.decode(f:read("a"))
    f:close()
    os.remove(out)
    local v = doc.variation
    assert.are.equal(6, v.bits)
    assert.are.equal(2, v.device_bits)
    assert.are.equal(0.3, v.sigma)
    assert.are.equal(3, #v.accuracies)
    local sum, worst = 0, math.huge
    for _, a in ipairs(v.accuracies) do
      assert.is_true(a >= 0 and a <= 1)
      sum, worst = sum + a, math.min(worst, a)
    end
    assert.is_true(math.abs(v.mean_accuracy - sum / 3) < 1e-12)
    assert.are.equal(worst, v.worst_accuracy)
    assert.are.equal(doc.test_accuracy, v.clean_accuracy) -- the QAT net as trained, no noise
    assert.truthy(stdout:find("variation sigma 0.3 at FxP6 (2-bit cells)", 1, true))
  end)
end)
