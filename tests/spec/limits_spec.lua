-- limits_spec.lua: one range per flag (neuronas.limits), checked when the flags are parsed, and
-- the same as the engine's wherever the engine checks the value (docs/reliability.md).
local nn = require("neuronas")
local L = require("neuronas.limits")
local cli = require("neuronas.cli")
local app = require("neuronas.app")
local search = require("neuronas.search")

local function refuses(fn, what)
  local ok, err = pcall(fn)
  assert.is_false(ok, what)
  return tostring(err)
end

describe("neuronas.limits", function()
  it("matches the engine's own ranges at both ends", function()
    -- threads: nn.fitness_many
    local n1, n2 = nn.net({ cellA = "000001", seed = 1 }), nn.net({ cellA = "000001", seed = 2 })
    local x = nn.tensor(2, 1, 28, 28)
    assert.are.equal(1, L.threads.min)
    nn.fitness_many({ n1, n2 }, x, { threads = L.threads.max })
    assert.truthy(refuses(function() nn.fitness_many({ n1, n2 }, x, { threads = L.threads.max + 1 }) end)
      :find("integer in 1..64 expected", 1, true))
    refuses(function() nn.fitness_many({ n1, n2 }, x, { threads = L.threads.min - 1 }) end)
    n1:close(); n2:close()
    -- timesteps and seed: nn.net
    nn.net({ timesteps = L.timesteps.max }):close()
    nn.net({ timesteps = L.timesteps.min }):close()
    refuses(function() nn.net({ timesteps = L.timesteps.max + 1 }) end)
    refuses(function() nn.net({ timesteps = L.timesteps.min - 1 }) end)
    -- channels: nn.net (its widest net, 4096 channels, is not built here: 600 MB of weights)
    nn.net({ channels = L.channels.min }):close()
    refuses(function() nn.net({ channels = L.channels.max + 1 }) end)
    refuses(function() nn.net({ channels = L.channels.min - 1 }) end)
    nn.net({ seed = L.seed.min }):close()
    nn.net({ seed = math.tointeger(L.seed.max) }):close()
    refuses(function() nn.net({ seed = L.seed.min - 1 }) end)
    -- bits: nn.quantizer
    nn.quantizer({ bits = L.bits.min })
    nn.quantizer({ bits = L.bits.max })
    refuses(function() nn.quantizer({ bits = L.bits.min - 1 }) end)
    refuses(function() nn.quantizer({ bits = L.bits.max + 1 }) end)
    -- trainer threads: nn.trainer (its threads start at the first step, none is taken here)
    local tn = nn.net({ seed = 1 })
    nn.trainer({ net = tn, threads = L.train_threads.min })
    nn.trainer({ net = tn, threads = L.train_threads.max })
    refuses(function() nn.trainer({ net = tn, threads = L.train_threads.min - 1 }) end)
    refuses(function() nn.trainer({ net = tn, threads = L.train_threads.max + 1 }) end)
    tn:close()
    -- OpenBLAS threads (only the refusals: accepting 1024 would start that many threads)
    refuses(function() nn.blas_threads(L.blas_threads.max + 1) end)
    refuses(function() nn.blas_threads(L.blas_threads.min - 1) end)
    -- lr and lr_min: nn.trainer
    tn = nn.net({ seed = 1 })
    nn.trainer({ net = tn, lr = L.lr.min, lr_min = 0 })
    nn.trainer({ net = tn, lr = L.lr.max, lr_min = L.lr_min.max })
    refuses(function() nn.trainer({ net = tn, lr = L.lr.min / 2 }) end)
    refuses(function() nn.trainer({ net = tn, lr = L.lr.max * 2 }) end)
    nn.trainer({ net = tn, lr = 1, lr_min = L.lr_min.min })
    refuses(function() nn.trainer({ net = tn, lr = L.lr.max, lr_min = L.lr_min.max * 2 }) end)
    refuses(function() nn.trainer({ net = tn, lr = 1, lr_min = -1e-300 }) end)
    -- hardware timesteps: hw:evaluate (a cost model: no net runs them)
    local hw, layers = nn.ela(), { { kind = "conv", in_ch = 3, out_ch = 8, in_dim = 8, out_dim = 8, k = 3 } }
    hw:evaluate(layers, { bits = 8, timesteps = L.hw_timesteps.min })
    hw:evaluate(layers, { bits = 8, timesteps = L.hw_timesteps.max })
    refuses(function() hw:evaluate(layers, { bits = 8, timesteps = L.hw_timesteps.max + 1 }) end)
    refuses(function() hw:evaluate(layers, { bits = 8, timesteps = L.hw_timesteps.min - 1 }) end)
    -- device variation: nn.variation's sigma and device_bits, a fitness call's draws
    local q = nn.quantizer({ bits = 8 }):apply(tn)
    for _, v in ipairs({ { sigma = L.sigma.min }, { sigma = L.sigma.max }, { sigma = 0.1, device_bits = L.device_bits.min },
      { sigma = 0.1, device_bits = L.device_bits.max } }) do
      nn.variation(q, v, 1):close()
    end
    refuses(function() nn.variation(q, { sigma = L.sigma.max * 1.01 }, 1) end)
    refuses(function() nn.variation(q, { sigma = -1e-300 }, 1) end)
    refuses(function() nn.variation(q, { sigma = 0.1, device_bits = L.device_bits.max + 1 }, 1) end)
    refuses(function() nn.variation(q, { sigma = 0.1, device_bits = L.device_bits.min - 1 }, 1) end)
    local xb = nn.tensor(2, 1, 28, 28)
    nn.fitness(q, xb, { variation = { sigma = 0.1, draws = L.draws.min } })
    refuses(function() nn.fitness(q, xb, { variation = { sigma = 0.1, draws = L.draws.max + 1 } }) end)
    refuses(function() nn.fitness(q, xb, { variation = { sigma = 0.1, draws = L.draws.min - 1 } }) end)
    q:close(); tn:close()
  end)

  it("says each range in words and tells members from non-members", function()
    assert.are.equal("1..64", L.describe(L.threads))
    assert.are.equal("0..2^53-1", L.describe(L.seed))
    assert.are.equal("> 0", L.describe(L.limit))
    assert.are.equal("0..1000000", L.describe(L.lr_min))
    assert.are.equal("1e-12..1000000", L.describe(L.lr))
    assert.are.equal(">= 1", L.describe(L.count))
    assert.is_true(L.contains(L.limit, 1e-300))
    assert.is_false(L.contains(L.limit, 0))
    assert.is_false(L.contains(L.limit, math.huge))
    assert.is_false(L.contains(L.limit, 0 / 0))
    assert.is_true(L.contains(L.threads, 64))
    assert.is_false(L.contains(L.threads, 65))
  end)

  it("is what the search flags are parsed against: edges in, one past refused", function()
    local spec = app.flags(8)
    local opts = { noexit = true, name = "t" }
    local cases = { threads = L.threads, timesteps = L.timesteps, batch = L.batch, ["repeat"] = L["repeat"],
      bits = L.bits, channels = L.channels }
    for name, r in pairs(cases) do
      assert.are.equal(r.min, cli.parse({ "--" .. name, tostring(r.min) }, spec, opts)[name])
      assert.are.equal(r.max, cli.parse({ "--" .. name, tostring(r.max) }, spec, opts)[name])
      assert.has_error(function() cli.parse({ "--" .. name, tostring(r.max + 1) }, spec, opts) end,
        string.format("flag '--%s': value in %d..%d expected, got '%d'", name, r.min, r.max, r.max + 1))
      assert.has_error(function() cli.parse({ "--" .. name, tostring(r.min - 1) }, spec, opts) end)
    end
    for _, name in ipairs({ "memory", "area", "latency", "energy" }) do
      assert.are.equal(1e-3, cli.parse({ "--" .. name, "1e-3" }, spec, opts)[name])
      for _, bad in ipairs({ "0", "-1" }) do
        assert.has_error(function() cli.parse({ "--" .. name, bad }, spec, opts) end,
          string.format("flag '--%s': value > 0 expected, got '%s'", name, bad))
      end
      for _, bad in ipairs({ "1e999", "inf", "nan", "-1e999" }) do
        assert.has_error(function() cli.parse({ "--" .. name, bad }, spec, opts) end,
          string.format("flag '--%s': finite number expected, got '%s'", name, bad))
      end
    end
    assert.has_error(function() cli.parse({ "--seed", "-1" }, spec, opts) end,
      "flag '--seed': value in 0..2^53-1 expected, got '-1'")
  end)

  it("is what search.setup checks its options against", function()
    assert.has_error(function() search.setup({ threads = 65 }) end,
      "search.setup: option 'threads': integer in 1..64 expected, got 65")
    assert.has_error(function() search.setup({ timesteps = 1025 }) end,
      "search.setup: option 'timesteps': integer in 1..1024 expected, got 1025")
    assert.has_error(function() search.setup({ seed = -1 }) end,
      "search.setup: option 'seed': integer in 0..2^53-1 expected, got -1")
    assert.are.equal(64, search.setup({ threads = 64 }).threads)
  end)
end)

describe("neuronas.cli", function()
  local spec = app.flags(8)
  local opts = { noexit = true, name = "t" }

  it("refuses an argument that is not a flag", function()
    assert.has_error(function() cli.parse({ "--bits", "8", "extra" }, spec, opts) end,
      "unexpected argument 'extra' (every argument is a --flag; see --help)")
    local _, pos = cli.parse({ "a", "--bits", "4", "b" }, spec, { noexit = true, positional = true })
    assert.are.same({ "a", "b" }, pos)
  end)

  it("suggests the nearest flag for an unknown one", function()
    assert.are.equal("energy", cli.nearest("enrgy", spec))
    assert.are.equal("threads", cli.nearest("thread", spec))
    assert.are.equal("latency", cli.nearest("lat", spec))      -- the only flag it begins
    assert.are.equal("rounding", cli.nearest("rouding", spec))
    assert.is_nil(cli.nearest("frobnicate", spec))
    assert.is_nil(cli.nearest("x", spec))
    assert.has_error(function() cli.parse({ "--enrgy", "3" }, spec, opts) end,
      "unknown flag '--enrgy' (did you mean --energy?)")
    assert.has_error(function() cli.parse({ "--frobnicate" }, spec, opts) end, "unknown flag '--frobnicate'")
  end)

  it("lists every range in the help text", function()
    local text = cli.help(spec, { usage = "u" })
    assert.truthy(text:find("--threads INTEGER%s+candidates scored at once.-%(1%.%.64; default 2%)\n"))
    assert.truthy(text:find("--energy NUMBER%s+max energy of one inference, uJ %(> 0%)\n"))
    assert.truthy(text:find("--seed INTEGER%s+.-%(0%.%.2%^53%-1; default 1%)\n"))
    assert.truthy(text:find("--debug", 1, true))
  end)

  it("checks at parse time that output files can be written", function()
    local out = { { name = "json", type = "string", output = true } }
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir " .. dir)
    assert.has_error(function() cli.parse({ "--json", dir }, out, opts) end,
      "--json " .. dir .. ": is a directory (a file path expected)")
    assert.has_error(function() cli.parse({ "--json", dir .. "/no/such/x.json" }, out, opts) end,
      "--json: cannot write " .. dir .. "/no/such/x.json: No such file or directory")
    -- a writable path is left as it was: absent stays absent, an existing file keeps its bytes
    local p = dir .. "/r.json"
    assert.are.equal(p, cli.parse({ "--json", p }, out, opts).json)
    assert.is_nil(io.open(p, "r"))
    assert.is_nil(io.open(p .. ".tmp", "r"))
    local f = assert(io.open(p, "w"))
    f:write("keep")
    f:close()
    cli.parse({ "--json", p }, out, opts)
    f = assert(io.open(p, "r"))
    assert.are.equal("keep", f:read("a"))
    f:close()
    os.execute("rm -rf " .. dir)
  end)
end)
