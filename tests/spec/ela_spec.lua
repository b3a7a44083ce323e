-- ela_spec.lua: nn.ela, the SpikeFlow CIM energy-latency-area model from Lua (docs/hardware.md).
local H = require("helpers")

local function rel(a, b) return math.abs(a - b) / math.max(math.abs(a), math.abs(b), 1e-30) end

-- SpikeSim's VGG9 example (docs/hardware.md)
local function vgg9()
  local D = { 3, 64, 64, 128, 128, 256, 256 }
  local F = { 64, 64, 128, 128, 256, 256, 256 }
  local I = { 32, 32, 16, 16, 8, 8, 8 }
  local O = { 32, 16, 16, 8, 8, 8, 4 }
  local l = {}
  for i = 1, 7 do
    l[i] = { kind = "conv", in_ch = D[i], out_ch = F[i], in_dim = I[i], out_dim = O[i], k = 3 }
  end
  return l
end

local function conv(d, f, i, o, k)
  return { kind = "conv", in_ch = d, out_ch = f, in_dim = i, out_dim = o, k = k or 3 }
end

describe("nn.ela", function()
  local nn = require("neuronas")

  it("loads without touching _G", function()
    local before = H.globals()
    package.loaded["neuronas"] = nil
    local m = require("neuronas")
    local hw = m.ela()
    hw:evaluate({ conv(3, 8, 4, 4) })
    hw:report({ conv(3, 8, 4, 4) })
    hw:evaluate(m.net { cellA = "102101" })
    assert.are.same({}, H.new_globals(before))
  end)

  it("reproduces SpikeSim's VGG9 example (docs/hardware.md) to 1e-9", function()
    local hw = nn.ela { mode = "spikesim", device = "rram" }
    local c = hw:evaluate(vgg9(), { bits = 4, timesteps = 5 })
    assert.are.equal(6, c.tiles)
    assert.are.equal(48, c.pes)
    assert.is_true(rel(c.area_um2, 8425528.76) < 1e-9)
    assert.is_true(rel(c.energy_pj, 15906934.03) < 1e-9)
    assert.is_true(rel(c.latency_ns, 62832640) < 1e-9)
    assert.is_true(rel(c.area_mm2, 8.42552876) < 1e-9)
    assert.is_true(rel(c.energy_uj, 15.90693403) < 1e-9)
    assert.is_true(rel(c.latency_ms, 62.83264) < 1e-9)
    assert.are.equal(7, #c.layers)
    local a, e, l_ms, t = 0, 0, 0, 0
    for _, l in ipairs(c.layers) do
      a, e, l_ms, t = a + l.area_mm2, e + l.energy_uj, l_ms + l.latency_ms, t + l.latency_share
    end
    assert.is_true(rel(a, c.area_mm2) < 1e-12 and rel(e, c.energy_uj) < 1e-12)
    assert.is_true(rel(l_ms, c.latency_ms) < 1e-12 and math.abs(t - 1) < 1e-12)
    -- layers 6 and 7 each span two of the six packed tiles (PEs 16..31 and 32..47)
    assert.are.equal(2, c.layers[6].tiles)
    assert.are.equal(16, c.layers[7].pes)
    assert.are.equal(1, c.cells_per_weight)
  end)

  it("computes a hand-worked neuronas layer (docs/hardware.md)", function()
    -- D=100, F=70, 16x16 -> 8x8, k=3, FxP8: w=8, PEs = 1*2*9 = 18, tiles 3;
    -- E = 9*2*64*828.4861472*5 pJ; A = 3*596708.219839 + (100*256 + 70*64)*16.2602 um^2;
    -- L = 104 ns * 64*70*5
    local hw = nn.ela()
    local c = hw:evaluate({ conv(100, 70, 16, 8) }, { bits = 8, timesteps = 5 })
    assert.are.equal(18, c.pes)
    assert.are.equal(3, c.tiles)
    assert.are.equal(63000, c.memory_params)
    assert.are.equal(504000, c.memory_bits)
    assert.are.equal(63000, c.memory_bytes)
    assert.is_true(rel(c.energy_pj, 4772080.207872) < 1e-9)
    assert.is_true(rel(c.area_um2, 2279231.475517) < 1e-9)
    assert.is_true(rel(c.latency_ns, 104 * 64 * 70 * 5) < 1e-9)
    local l = c.layers[1]
    assert.are.equal(8, c.cells_per_weight)
    assert.are.same({ index = 1, kind = "conv", in_ch = 100, out_ch = 70, in_dim = 16, out_dim = 8,
      k = 3, weights = 63000, pes = 18, xbars = 162, tiles = 3, area_mm2 = c.area_mm2,
      energy_uj = c.energy_uj, latency_ms = c.latency_ms, latency_share = 1 }, l)
    hw.bit_serial = true
    assert.is_true(rel(hw:evaluate({ conv(100, 70, 16, 8) }, { bits = 8 }).latency_ns,
      8 * 104 * 64 * 70 * 5) < 1e-9)
  end)

  it("defaults: bits 32, timesteps 5, scope features, neuronas mode on RRAM", function()
    local hw = nn.ela()
    assert.are.equal("neuronas", hw.mode)
    assert.are.equal("rram", hw.device)
    local c = hw:evaluate({ conv(3, 8, 4, 4),
      { kind = "linear", in_ch = 128, out_ch = 10, features = false } })
    assert.are.equal(32, c.bits)
    assert.are.equal(5, c.timesteps)
    assert.are.equal("features", c.scope)
    assert.are.equal(1, c.n_layers)
    local all = hw:evaluate({ conv(3, 8, 4, 4),
      { kind = "linear", in_ch = 128, out_ch = 10, features = false, name = "fc" } },
      { scope = "all" })
    assert.are.equal(2, all.n_layers)
    assert.are.equal(8 * 3 * 9 + 1280, all.memory_params)
    assert.are.equal("fc", all.layers[2].name)
    assert.is_nil(hw:evaluate({ conv(3, 8, 4, 4) }, { breakdown = false }).layers)
  end)

  it("handles long lists and keeps original indices when the scope skips layers", function()
    local hw = nn.ela()
    local L, one = {}, hw:evaluate({ conv(8, 8, 4, 4) }, { bits = 8 })
    for i = 1, 150 do
      L[i] = i % 3 == 0 and { kind = "linear", in_ch = 8, out_ch = 8, features = false }
        or conv(8, 8, 4, 4)
    end
    local c = hw:evaluate(L, { bits = 8 })
    assert.are.equal(100, c.n_layers)
    assert.are.equal(100, #c.layers)
    assert.are.equal(1, c.layers[1].index)
    assert.are.equal(2, c.layers[2].index)
    assert.are.equal(4, c.layers[3].index)
    assert.are.equal(149, c.layers[100].index)
    assert.is_true(rel(c.energy_pj, 100 * one.energy_pj) < 1e-12)
    assert.is_true(rel(c.area_um2, 100 * one.area_um2) < 1e-12)
    assert.are.equal(100 * one.tiles, c.tiles)
    L[140].in_ch = 0
    assert.has_error(function() hw:evaluate(L) end,
      "bad argument #1 to 'evaluate' (layer 140: field 'in_ch': positive integer expected, got 0)")
  end)

  it("exposes every constant as a validated field", function()
    local hw = nn.ela()
    assert.are.equal(64, hw.xbar)
    assert.are.equal(9, hw.xbars_per_pe)
    assert.are.equal(8, hw.pe_per_tile)
    assert.are.equal(250, hw.clock_mhz)
    assert.are.equal(26, hw.pe_cycles)
    assert.are.equal(1, hw.device_bits)
    assert.are.equal(4, hw.adc_bits)
    assert.are.equal(8, hw.mux)
    assert.are.equal(1.76423, hw.e_xbar_pj)
    assert.are.equal(26.2144, hw.a_xbar_um2)
    assert.are.equal(0.9, hw.vdd_v)
    assert.are.equal(200, hw.roff_kohm)
    local names = hw:fields()
    local cfg = hw:config()
    for _, n in ipairs(names) do assert.are.equal(hw[n], cfg[n]) end
    assert.are.equal(44, #names)
    hw.xbar = 128
    assert.are.equal(128, hw.xbar)
    hw.clock_mhz = 500.5
    assert.are.equal(500.5, hw.clock_mhz)
    -- the device loads its crossbar constants (docs/hardware.md); explicit values win at construction
    hw.device = "sram"
    assert.are.equal(671.089, hw.e_xbar_pj)
    assert.are.equal(671.089, hw.a_xbar_um2)
    local s = nn.ela { device = "sram", e_xbar_pj = 500 }
    assert.are.equal(500, s.e_xbar_pj)
    assert.are.equal(671.089, s.a_xbar_um2)
    -- copies are independent
    local c = s:copy { xbar = 32 }
    assert.are.equal(32, c.xbar)
    assert.are.equal(64, s.xbar)
    assert.are.equal(500, c.e_xbar_pj)
    assert.are.equal(1.76423, s:copy { device = "rram" }.e_xbar_pj)
  end)

  it("accepts in evaluate every value its fields accept (C and Lua ranges agree)", function()
    for _, name in ipairs(nn.ela():fields()) do
      for _, v in ipairs({ 0, 1e-6, 1, 1024, 1073741824 }) do
        local hw = nn.ela()
        if type(hw[name]) == "number" and pcall(function() hw[name] = v end) then
          local ok, err = pcall(hw.evaluate, hw, { conv(3, 8, 4, 4) }, { bits = 8 })
          assert(ok, name .. " = " .. v .. ": " .. tostring(err))
        end
      end
    end
  end)

  it("bends: a bigger crossbar and 2-bit cells change the mapping as expected", function()
    local hw = nn.ela()
    local l = { conv(100, 70, 16, 8) }
    hw.device_bits = 2 -- w = ceil(8/2) = 4 -> ceil(280/64) = 5 column blocks, 10 PEs
    assert.are.equal(10, hw:evaluate(l, { bits = 8 }).pes)
    hw.xbar = 128 -- ceil(100/128)*ceil(280/128) = 3 PEs
    assert.are.equal(3, hw:evaluate(l, { bits = 8 }).pes)
  end)

  it("reports a per-layer table from a cost, a bare layer list of costs, or layers", function()
    local hw = nn.ela()
    local L = { conv(3, 64, 8, 8), { kind = "linear", in_ch = 64, out_ch = 10, name = "fc" } }
    local c = hw:evaluate(L, { bits = 8 })
    local full = hw:report(c)
    assert.are.equal(full, hw:report(L, { bits = 8 }))
    local lines = {}
    for s in full:gmatch("[^\n]+") do lines[#lines + 1] = s end
    assert.are.equal(4, #lines)
    assert.truthy(lines[3]:find("^  2 fc%s+linear  1    64    10    1        640      2     1"))
    assert.truthy(lines[4]:find("total: 2 layers, 2368 weights (FxP8, 2368 bytes, 8 cells each), 10 PEs, 2 tiles", 1, true))
    local bare = hw:report({ layers = c.layers }) -- what the search scripts pass
    assert.truthy(bare:find("total: 2 layers, 2368 weights, 10 PEs, 2 tiles, 1.2627 mm^2", 1, true))
    assert.has_error(function() hw:report(L, { breakdown = false }) end,
      "bad argument #2 to 'report' (breakdown = false leaves nothing to report)")
  end)

  it("prints its configuration", function()
    local s = tostring(nn.ela { mode = "spikesim" })
    assert.are.equal("neuronas.ELA (mode=spikesim, device=rram)", s:match("^[^\n]*"))
    assert.truthy(s:find("\n  xbar = 64  -- crossbar rows = columns X (NeuroNAS Table I: 64)", 1, true))
    assert.truthy(s:find("\n  e_htree_pj = 157.12  -- H-tree, pJ (SpikeSim: 19.64*8)", 1, true))
  end)

  it("never costs less with more bits, more timesteps or more crossbars", function()
    for _, mode in ipairs({ "neuronas", "spikesim" }) do
      local hw = nn.ela { mode = mode }
      local function cost(bits, t, ch)
        return hw:evaluate({ conv(3, ch, 16, 16), conv(ch, ch, 16, 8, 1),
          { kind = "linear", in_ch = ch * 64, out_ch = 10 } }, { bits = bits, timesteps = t })
      end
      local function ge(a, b)
        return a.area_um2 >= b.area_um2 and a.energy_pj >= b.energy_pj
          and a.latency_ns >= b.latency_ns and a.tiles >= b.tiles and a.xbars >= b.xbars
      end
      for b = 3, 16 do assert.is_true(ge(cost(b, 5, 40), cost(b - 1, 5, 40))) end
      for t = 2, 10 do assert.is_true(ge(cost(8, t, 40), cost(8, t - 1, 40))) end
      for ch = 41, 140, 3 do assert.is_true(ge(cost(8, 5, ch), cost(8, 5, ch - 3))) end
    end
  end)

  it("costs a neuronas.Net from C: its layers, weight bits and timesteps, no Lua called", function()
    local net = nn.quantize(nn.net { cellA = "102101", cellB = "200100", timesteps = 3 }, 4)
    local hw = nn.ela()
    local layers = net:layers()
    -- the same costs as the net's own layer list with its bits and T given by hand
    local c = hw:evaluate(net)
    assert.are.equal(4, c.bits)
    assert.are.equal(3, c.timesteps)
    assert.are.equal(hw:evaluate(layers, { bits = 4, timesteps = 3 }).energy_pj, c.energy_pj)
    assert.are.equal(8, hw:evaluate(net, { bits = 8 }).bits)
    assert.are.equal(5, hw:evaluate(net, { timesteps = 5 }).timesteps)
    assert.are.equal(#layers, hw:evaluate(net, { scope = "all" }).n_layers)
    assert.are.equal(#layers - 2, c.n_layers) -- scope "features": no classifier (fc1, fc2)
    for i, l in ipairs(c.layers) do
      assert.are.equal(layers[i].name, l.name)
      assert.are.equal(i, l.index)
    end
    -- evaluate reads the net in C: the Lua-visible methods are never called
    local methods = getmetatable(net).__index
    local saved = { layers = methods.layers, weight_bits = methods.weight_bits, config = methods.config }
    local calls = 0
    for k in pairs(saved) do methods[k] = function() calls = calls + 1; error("called " .. k) end end
    local ok, again = pcall(hw.evaluate, hw, net)
    local ok2, text = pcall(hw.report, hw, net)
    local ok3, active = pcall(hw.evaluate_active, hw, net, nn.tensor(2, 1, 28, 28))
    for k, f in pairs(saved) do methods[k] = f end
    assert.is_true(ok, again)
    assert.is_true(ok2, text)
    assert.is_true(ok3, active)
    assert.are.equal(0, calls)
    assert.are.equal(c.energy_pj, again.energy_pj)
    assert.truthy(text:find("total: " .. c.n_layers .. " layers", 1, true))
    assert.are.equal(c.energy_pj, active.energy_pj)
    net:close()
    assert.has_error(function() hw:evaluate(net) end, "attempt to use a closed neuronas.Net")
  end)

  it("names evaluate_active in the errors of the calls it makes for the caller", function()
    local hw = nn.ela()
    local net = nn.net { preset = "fashion-mnist" }
    local x = nn.tensor(2, 1, 28, 28)
    assert.has_error(function() hw:evaluate_active(net, x, { bits = 99 }) end,
      "bad argument #3 to 'evaluate_active' (field 'bits': integer in 2..32 expected, got 99)")
    assert.has_error(function() hw:evaluate_active(net, "x") end,
      "bad argument #2 to 'evaluate_active' (neuronas.Tensor expected, got string)")
    net:close()
  end)

  it("never calls a net-like table: only a neuronas.Net or a plain layer list is costed", function()
    local calls = 0
    local function count() calls = calls + 1; return { conv(3, 8, 4, 4) } end
    local fake = { layers = count, weight_bits = function() calls = calls + 1; return 4 end, timesteps = 3 }
    local hw = nn.ela()
    assert.has_error(function() hw:evaluate(fake) end,
      "bad argument #1 to 'evaluate' (layer list or neuronas.Net expected)")
    assert.has_error(function() hw:report(fake) end,
      "bad argument #1 to 'report' (layer list or neuronas.Net expected)")
    -- an __index of the caller's is not consulted either
    local proxy = setmetatable({}, { __index = function(_, k) calls = calls + 1; return k == "layers" and count or nil end })
    assert.are.equal(0, hw:evaluate(proxy).n_layers) -- an empty list
    assert.has_error(function() hw:evaluate(nn.tensor(2)) end,
      "bad argument #1 to 'evaluate' (layer list or neuronas.Net expected)")
    assert.are.equal(0, calls)
    -- the C half alone costs a net: no Lua module of neuronas is needed
    local core = require("neuronas.core")
    local n = core.net { cellA = "102101" }
    assert.are.equal(hw:evaluate(n:layers(), { bits = 32, timesteps = 5 }).energy_pj, core.ela():evaluate(n).energy_pj)
    n:close()
  end)

  it("costs an nn.net like its layer list: the docs/hardware.md cross-check range on cifar100", function()
    local all = "conv3x3 conv3x3 conv3x3 conv3x3 conv3x3 conv3x3"
    local hw = nn.ela()
    local top = hw:evaluate(nn.net { preset = "cifar100", cellA = all, cellB = all }, { bits = 8 })
    assert.are.equal(14, top.n_layers) -- scope "features": no classifier (docs/model.md)
    assert.are.equal(8, top.bits)
    assert.is_true(math.abs(top.area_mm2 - 124.5) < 0.05)
    assert.is_true(math.abs(top.latency_ms - 622) < 0.5)
    assert.is_true(math.abs(top.energy_uj - 1968) < 0.5)
    local none = "skip skip skip skip skip skip"
    local net = nn.net { preset = "cifar100", cellA = none, cellB = "avgpool3x3 skip skip skip skip skip",
      timesteps = 3 }
    local c = hw:evaluate(net, { bits = 8 })
    assert.are.equal(3, c.timesteps) -- from net:config()
    assert.are.equal(32, hw:evaluate(net).bits) -- an unquantized net: weight_bits() = 32
    local bottom = hw:evaluate(net, { bits = 8, timesteps = 5 })
    assert.are.equal(2, bottom.n_layers)
    assert.are.equal(3456 + 294912, bottom.memory_params)
    assert.is_true(math.abs(bottom.area_mm2 - 14.5) < 0.05)
    assert.is_true(math.abs(bottom.latency_ms - 187) < 0.5)
    assert.is_true(math.abs(bottom.energy_uj - 339) < 0.5)
    assert.are.equal(4, hw:evaluate(net, { scope = "all" }).n_layers)
  end)

  it("reports layer-list errors naming the layer and field", function()
    local hw = nn.ela()
    local function ev(l, o) return function() hw:evaluate(l, o) end end
    assert.has_error(ev({ conv(3, 8, 4, 4), { kind = "conv", in_ch = 8, out_ch = 8, in_dim = 4, k = 3 } }),
      "bad argument #1 to 'evaluate' (layer 2: field 'out_dim' missing (positive integer expected))")
    assert.has_error(ev({ conv(3, 0, 4, 4) }),
      "bad argument #1 to 'evaluate' (layer 1: field 'out_ch': positive integer expected, got 0)")
    assert.has_error(ev({ conv(3, -2, 4, 4) }),
      "bad argument #1 to 'evaluate' (layer 1: field 'out_ch': positive integer expected, got -2)")
    assert.has_error(ev({ conv(3, 0 / 0, 4, 4) }),
      "bad argument #1 to 'evaluate' (layer 1: field 'out_ch': positive integer expected, got nan)")
    assert.has_error(ev({ conv(3, 2.5, 4, 4) }),
      "bad argument #1 to 'evaluate' (layer 1: field 'out_ch': positive integer expected, got 2.5)")
    assert.has_error(ev({ conv(3, "8", 4, 4) }),
      "bad argument #1 to 'evaluate' (layer 1: field 'out_ch': positive integer expected, got \"8\")")
    assert.has_error(ev({ conv(3, 1 << 31, 4, 4) }),
      "bad argument #1 to 'evaluate' (layer 1: field 'out_ch': integer <= 1073741824 expected, got 2147483648)")
    assert.has_error(ev({ { kind = "pool", in_ch = 1, out_ch = 1 } }),
      "bad argument #1 to 'evaluate' (layer 1: field 'kind': \"conv\" or \"linear\" expected, got \"pool\")")
    assert.has_error(ev({ { in_ch = 1, out_ch = 1 } }),
      "bad argument #1 to 'evaluate' (layer 1: field 'kind' missing (\"conv\" or \"linear\" expected))")
    assert.has_error(ev({ conv(3, 8, 4, 4), 7 }),
      "bad argument #1 to 'evaluate' (layer 2: table expected, got 7)")
    assert.has_error(ev({ { kind = "linear", in_ch = 8, out_ch = 2, k = 3 } }),
      "bad argument #1 to 'evaluate' (layer 1: field 'k': 1 expected for a linear layer, got 3)")
    assert.has_error(ev({ { kind = "conv", in_ch = 8, out_ch = 2, in_dim = 1, out_dim = 1, k = 1, features = 1 } }),
      "bad argument #1 to 'evaluate' (layer 1: field 'features': boolean expected, got 1)")
    assert.has_error(ev({ conv(3, 8, 4, 4) }, { bits = 0 }),
      "bad argument #2 to 'evaluate' (field 'bits': integer in 2..32 expected, got 0)")
    assert.has_error(ev({ conv(3, 8, 4, 4) }, { timestep = 5 }),
      "bad argument #2 to 'evaluate' (unknown field 'timestep' (expected: bits, timesteps, scope, breakdown))")
    assert.has_error(ev({ conv(3, 8, 4, 4) }, { scope = "everything" }),
      "bad argument #2 to 'evaluate' (field 'scope': one of \"features\"|\"all\" expected, got \"everything\")")
    assert.has_error(ev(42),
      "bad argument #1 to 'evaluate' (table expected, got number)")
    assert.has_error(function() nn.ela().evaluate(42) end,
      "bad argument #1 to 'evaluate' (neuronas.ELA expected, got number)")
  end)

  it("never crashes or returns NaN on random layer lists", function()
    local r = nn.rng(7)
    local vals = { 0, -1, 1, 2, 3, 64, 65, 1 << 30, (1 << 30) + 1, 0 / 0, 1 / 0, 2.5, "x", true, {} }
    local keys = { "kind", "in_ch", "out_ch", "in_dim", "out_dim", "k", "stride", "weights", "features" }
    local hw = { nn.ela(), nn.ela { mode = "spikesim" }, nn.ela { bit_serial = true } }
    local ok_count = 0
    for _ = 1, 3000 do
      local L = {}
      for i = 1, r:integer(0, 4) do
        local l = conv(r:integer(1, 300), r:integer(1, 300), r:integer(1, 40), r:integer(1, 40),
          r:integer(1, 7))
        if r:uniform() < 0.3 then l[keys[r:integer(#keys)]] = vals[r:integer(#vals)] end
        if r:uniform() < 0.1 then l.kind = "linear" end
        L[i] = l
      end
      local h, bits = hw[r:integer(3)], r:integer(1, 64)
      local ok, c = pcall(function() return h:evaluate(L, { bits = bits }) end)
      if ok then
        ok_count = ok_count + 1
        for _, f in ipairs({ "area_um2", "energy_pj", "latency_ns" }) do
          assert(c[f] == c[f] and c[f] >= 0 and c[f] < math.huge, f)
        end
      else
        assert.are.equal("string", type(c))
        assert.truthy(c:find("bad argument #1 to 'evaluate' (layer ", 1, true) or c:find("overflow", 1, true)
          or (bits < 2 or bits > 32) and c:find("bad argument #2 to 'evaluate' (field 'bits': integer in 2..32", 1, true), c)
      end
    end
    assert.is_true(ok_count > 100)
  end)

  it("active_energy scales only the measured layers, by hand", function()
    local hw = nn.ela()
    local L = { conv(3, 8, 4, 4), conv(8, 8, 4, 4) }
    L[1].name, L[2].name = "a", "b"
    local cost = hw:evaluate(L, { bits = 8 })
    local out = hw:active_energy(cost, { xbar = 64, layers = { 7, { name = "b", fraction = 0.25 } } })
    assert.are.equal(cost, out) -- filled in place
    -- layer a has no measurement: fraction 1, energy unchanged
    assert.are.equal(1, out.layers[1].active_fraction)
    assert.is_true(rel(out.layers[1].energy_active_uj, out.layers[1].energy_uj) < 1e-15)
    -- layer b: e (fixed + f scaled) / (fixed + scaled), the 3x3 cycle of docs/hardware.md
    local scaled = 8 * (9 * 1.76423 + 8 * (2.03084 + 0.094245)) + 8 * 16 * 1.15e-6
    local fixed = 19.64 * 8 + 4.64 + 1.274 * 4 + 8 * 0.2 + 397
    local want = out.layers[2].energy_uj * (fixed + 0.25 * scaled) / (fixed + scaled)
    assert.is_true(rel(out.layers[2].energy_active_uj, want) < 1e-12)
    assert.is_true(rel(out.energy_active_uj, out.layers[1].energy_active_uj + want) < 1e-12)
    assert.are.equal(out.energy_active_uj * 1e6, out.energy_active_pj)
    assert.has_error(function() hw:active_energy(cost, { layers = {}, xbar = 128 }) end,
      "bad argument #2 to 'active_energy' (activity counted for xbar 128, the model has 64)")
    assert.has_error(function() hw:active_energy({}, { layers = {} }) end,
      "bad argument #1 to 'active_energy' (a cost with its per-layer list expected)")
    assert.has_error(function() hw.active_energy(5, cost, {}) end,
      "bad argument #1 to 'active_energy' (neuronas.ELA expected, got number)")
  end)

  it("active_energy is finite for every constant in range and refuses bad activity tables", function()
    local L = { conv(3, 8, 4, 4) }
    L[1].name = "a"
    -- every energy constant 0: the static energy is 0 and so is the active one (not 0/0)
    local zero = nn.ela()
    for _, f in ipairs(zero:fields()) do if f:match("^e_") then zero[f] = 0 end end
    local c = zero:active_energy(zero:evaluate(L), { xbar = 64, layers = { { name = "a", fraction = 0.5 } } })
    assert.are.equal(0, c.energy_uj)
    assert.are.equal(0, c.energy_active_uj)
    assert.are.equal(0, c.layers[1].energy_active_uj)
    -- a fraction is the share of reads that are active: a number in [0, 1]
    local hw = nn.ela()
    for _, f in ipairs({ 0, 1 }) do
      local e = hw:active_energy(hw:evaluate(L), { layers = { { name = "a", fraction = f } } }).energy_active_uj
      assert.is_true(e >= 0 and e < math.huge)
    end
    local function refused(act, want)
      assert.has_error(function() hw:active_energy(hw:evaluate(L), act) end, want)
    end
    for _, bad in ipairs({ { 0 / 0, "nan" }, { -5, "-5" }, { 7, "7" }, { 1.5, "1.5" },
                           { "0.5", "string" }, { true, "boolean" } }) do
      refused({ layers = { { name = "x" }, { name = "a", fraction = bad[1] } } },
        "bad argument #2 to 'active_energy' (layers[2].fraction: number in [0, 1] expected, got " .. bad[2] .. ")")
    end
    refused({ layers = { { name = 0 / 0, fraction = 0.5 } } },
      "bad argument #2 to 'active_energy' (layers[1].name: string expected, got nan)")
    refused({ layers = { { name = {}, fraction = 0.5 } } },
      "bad argument #2 to 'active_energy' (layers[1].name: string expected, got table)")
    -- the cost's own energies: finite and >= 0
    for _, bad in ipairs({ { 0 / 0, "nan" }, { math.huge, "inf" }, { -1, "-1" } }) do
      local cost = hw:evaluate(L)
      cost.layers[1].energy_uj = bad[1]
      assert.has_error(function() hw:active_energy(cost, { layers = {} }) end,
        "bad argument #1 to 'active_energy' (layers[1].energy_uj: finite number >= 0 expected, got " .. bad[2] .. ")")
    end
  end)

  it("rejects bad constants with the field's name", function()
    local hw = nn.ela()
    assert.has_error(function() hw.xbar = 0 end,
      "neuronas.ELA: field 'xbar': integer in 1..1073741824 expected, got 0")
    assert.has_error(function() hw.xbar = 64.5 end,
      "neuronas.ELA: field 'xbar': integer in 1..1073741824 expected, got 64.5")
    local range = "number in [0.0, 1000000000000.0] expected" -- energies and areas: 0..1e12
    assert.has_error(function() hw.e_adc_pj = 0 / 0 end,
      "neuronas.ELA: field 'e_adc_pj': " .. range .. ", got " .. tostring(0 / 0))
    assert.has_error(function() hw.e_adc_pj = -1 end,
      "neuronas.ELA: field 'e_adc_pj': " .. range .. ", got -1")
    -- finite but huge: its costs would overflow to inf, so it is refused like a NaN
    assert.has_error(function() hw.e_adc_pj = 1e308 end,
      "neuronas.ELA: field 'e_adc_pj': " .. range .. ", got 1e+308")
    assert.has_error(function() nn.ela { a_htree_um2 = 1e13 } end,
      "bad argument #1 to 'ela' (field 'a_htree_um2': " .. range .. ", got 10000000000000.0)")
    hw.e_adc_pj = 1e12 -- the bound itself is accepted, and the costs stay finite
    local big = hw:copy { e_tile_buf_pj = 1e12, a_tile_buf_um2 = 1e12, e_htree_pj = 1e12 }
    local c = big:evaluate({ conv(1024, 1024, 1024, 1024, 7) }, { bits = 32, timesteps = 1000000 })
    for _, f in ipairs({ "area_um2", "energy_pj", "latency_ns" }) do assert.is_true(c[f] < math.huge, f) end
    hw.e_adc_pj = 2.03084
    assert.has_error(function() hw.clock_mhz = 1 / 0 end,
      "neuronas.ELA: field 'clock_mhz': number >= 1e-06 expected, got inf")
    assert.has_error(function() hw.mode = "fast" end,
      "neuronas.ELA: field 'mode': one of \"neuronas\"|\"spikesim\" expected, got \"fast\"")
    assert.has_error(function() hw.bit_serial = 1 end,
      "neuronas.ELA: field 'bit_serial': boolean expected, got 1")
    local names = table.concat(hw:fields(), ", ")
    assert.has_error(function() hw.xbarr = 1 end,
      "neuronas.ELA: unknown field 'xbarr' (expected: " .. names .. ")")
    assert.has_error(function() return hw.xbarr end,
      "neuronas.ELA has no field 'xbarr' (expected: " .. names .. ")")
    assert.has_error(function() nn.ela { xbar = -1 } end,
      "bad argument #1 to 'ela' (field 'xbar': integer in 1..1073741824 expected, got -1)")
    assert.has_error(function() nn.ela { devise = "sram" } end,
      "bad argument #1 to 'ela' (unknown field 'devise' (expected: " .. names .. "))")
    assert.has_error(function() nn.ela { device = "dram" } end,
      "bad argument #1 to 'ela' (field 'device': one of \"rram\"|\"sram\" expected, got \"dram\")")
    assert.has_error(function() hw:copy { mux = 0 } end,
      "bad argument #1 to 'copy' (field 'mux': integer in 1..1073741824 expected, got 0)")
    -- a failed write leaves the model unchanged
    assert.are.equal(64, hw.xbar)
  end)
end)

describe("scripts/hardware.lua and scripts/hardware-constraint.lua", function()
  it("print the per-layer table of the all-conv3x3 cifar100 list (docs/hardware.md range top)", function()
    local code, out, err = H.run(H.q(H.cli) .. " run scripts/hardware.lua --bits 8")
    assert.are.equal(0, code, err)
    assert.truthy(out:find(" 14 cellB.e23.conv ", 1, true))
    assert.truthy(out:find("130 tiles, 124.5097 mm^2, 1968.2180 uJ, 621.9366 ms", 1, true))
    assert.truthy(out:find("neuronas constraints: infeasible", 1, true))
    code, out = H.run(H.q(H.cli) .. " run scripts/hardware.lua --bogus 1")
    assert.are.equal(2, code)
  end)

  it("the main job refuses a --hardware constant out of range in one line naming it", function()
    local f = H.tmpfile("return { e_adc_pj = 1e308 }\n", ".lua")
    local code, out, err = H.run(H.q(H.cli) .. " run scripts/neuronas.lua --quiet --hardware " .. H.q(f))
    os.remove(f)
    assert.are.equal(2, code, out)
    local first = err:match("^[^\n]*")
    assert.truthy(first:find("field 'e_adc_pj': number in [0.0, 1000000000000.0] expected, got 1e+308", 1, true), err)
  end)

  it("add a constraint in a few lines", function()
    local code, out, err = H.run(H.q(H.cli) .. " run scripts/hardware-constraint.lua")
    assert.are.equal(0, code, err)
    assert.truthy(out:find("avg_power <= 3 mW (Lua function)", 1, true))
    assert.truthy(out:find("layer 4 needs 16 tiles", 1, true))
    assert.truthy(out:find("feasible: false (total violation 1.000)", 1, true))
  end)

  it("costs a genotype's network with --cellA/--cellB", function()
    local code, out, err = H.run(H.q(H.cli) .. " run scripts/hardware.lua --cellA "
      .. H.q("conv3x3 skip skip skip skip skip") .. " --cellB " .. H.q("conv3x3 skip skip skip skip skip"))
    assert.are.equal(0, code, err)
    assert.truthy(out:find("  4 cellB.e01.conv ", 1, true))
    assert.truthy(out:find("total: 4 layers, 1035648 weights", 1, true))
  end)
end)
