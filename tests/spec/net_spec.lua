-- net_spec.lua: nn.net and neuronas.Net from Lua (docs/model.md).
local H = require("helpers")
local before = H.globals()
local nn = require("neuronas")

local A = "conv3x3 skip avgpool3x3 conv3x3 skip conv3x3"
local B = "conv1x1 conv3x3 skip zero avgpool3x3 conv3x3"

local function small(extra)
  local o = { preset = "fashion-mnist", cellA = A, cellB = B, seed = 3, channels = 4, fc_width = 12,
              input = { 1, 12, 12 }, timesteps = 3 }
  for k, v in pairs(extra or {}) do o[k] = v end
  return nn.net(o)
end

local function batch(n, seed)
  local x = nn.tensor(n, 1, 12, 12)
  x:normal(nn.rng(seed or 1), 0, 1)
  return x
end

describe("nn.net", function()
  it("builds presets with overrides and describes itself", function()
    local net = nn.net{ preset = "cifar100", cellA = "conv3x3 conv3x3 conv3x3 conv3x3 skip skip",
                        cellB = "skip avgpool3x3 skip skip skip skip" }
    -- docs/model.md: the paper's 888,192 features parameters
    assert.equal(888192, net:params())
    assert.equal(888192, net:params{ scope = "features" })
    assert.equal(888192 + 16384 * 1024 + 1024 * 500, net:params{ scope = "all" })
    assert.equal("neuronas.Net (cellA=conv3x3 conv3x3 conv3x3 conv3x3 skip skip, "
      .. "cellB=skip avgpool3x3 skip skip skip skip, 888.19K params)", tostring(net))
    assert.equal(32, net:weight_bits())
    local c = net:config()
    assert.equal(128, c.channels)
    assert.same({ 3, 32, 32 }, c.input)
    assert.equal(5, c.cluster)
    assert.equal(100, c.classes)
    assert.equal("conv3x3 conv3x3 conv3x3 conv3x3 skip skip", tostring(c.cellA))
    net:close()
  end)

  it("uses cellA at both positions when cellB is absent, and takes Cell values", function()
    local net = nn.net{ cellA = nn.cell(A) }
    assert.equal(A, tostring(net:config().cellB))
    assert.same({ 1, 28, 28 }, net:config().input)
  end)

  it("lists the crossbar-mapped layers in execution order (docs/model.md)", function()
    local net = nn.net{ preset = "cifar10", cellA = "0303 0030 2002 0200" }
    local L = net:layers()
    local names = {}
    for i, l in ipairs(L) do names[i] = l.name end
    assert.same({ "stem.conv", "cellA.e01.conv", "cellA.e12.conv", "cellA.e03.conv", "cellA.e23.conv",
      "cellA.e20.conv", "cellA.e31.conv", "downconv.conv", "cellB.e01.conv", "cellB.e12.conv",
      "cellB.e03.conv", "cellB.e23.conv", "cellB.e20.conv", "cellB.e31.conv", "classifier.fc1",
      "classifier.fc2" }, names)
    assert.same({ name = "cellA.e23.conv", kind = "conv", in_ch = 256, out_ch = 256, in_dim = 32, out_dim = 32,
      k = 1, stride = 1, weights = 65536, features = true }, L[5])
    assert.same({ name = "classifier.fc1", kind = "linear", in_ch = 512 * 64, out_ch = 1024, in_dim = 1,
      out_dim = 1, k = 1, stride = 1, weights = 512 * 64 * 1024, features = false }, L[15])
    local sum = 0
    for _, l in ipairs(L) do if l.features then sum = sum + l.weights end end
    assert.equal(net:params(), sum)
  end)

  it("runs the forward pass and reports firing rates per LIF module", function()
    local net = small()
    local y = net:forward(batch(4), { train = true })
    assert.same({ 4, 10 }, y:shape())
    local r = net:firing_rates()
    for _, m in ipairs({ "cellA.e01.lif", "cellA.e12.lif", "cellA.e23.lif", "downconv.lif", "cellB.e01.lif",
                         "cellB.e02.lif", "cellB.e23.lif", "last.lif", "classifier.lif" }) do
      assert.is_number(r[m], m)
      assert.is_true(r[m] >= 0 and r[m] <= 1, m)
    end
    assert.is_true(r["cellA.e01.lif"] > 0.01)
    -- eval mode is deterministic; dense and event-driven convs agree
    local e1 = net:forward(batch(4, 2))
    local e2 = net:conv_mode("events"):forward(batch(4, 2))
    local e3 = net:conv_mode("dense"):forward(batch(4, 2))
    for i = 1, 4 do
      for j = 1, 10 do
        assert.near(e1:get(i, j), e2:get(i, j), 1e-5)
        assert.near(e1:get(i, j), e3:get(i, j), 1e-5)
      end
    end
  end)

  it("clones independently and keeps weights through save/load", function()
    local net = small()
    local c = net:clone()
    assert.equal(tostring(net), tostring(c))
    local path = os.tmpname()
    net:save(path)
    local other = small{ seed = 99 }
    local names = net:tensor_names()
    assert.equal("stem.conv.weight", names[1])
    assert.equal("classifier.fc2.bias", names[#names])
    local w0, w1 = net:tensor("cellA.e01.conv.weight"), other:tensor("cellA.e01.conv.weight")
    assert.same({ 4, 4, 3, 3 }, w0:shape())
    assert.are_not.equal(w0:get(1, 1, 1, 1), w1:get(1, 1, 1, 1))
    assert.equal(other, other:load(path))
    for _, n in ipairs(names) do
      local a, b = net:tensor(n), other:tensor(n)
      assert.same(a:shape(), b:shape())
      assert.same(a:totable(), b:totable())
    end
    assert.equal(net:tensor("cellA.e01.conv.weight"):get(1, 1, 1, 1), c:tensor("cellA.e01.conv.weight"):get(1, 1, 1, 1))
    assert.has_error(function() net:tensor("stem.conv.bias") end,
      "bad argument #1 to 'tensor' (no tensor 'stem.conv.bias' in this net)")
    -- a net of another shape: the error names the file and the tensor
    local wide = small{ channels = 6 }
    assert.has_error(function() wide:load(path) end,
      path .. ": tensor 'stem.conv.weight' has shape 4x1x3x3, expected 6x1x3x3")
    local fwd = small{ cellA = B }
    assert.has_error(function() fwd:load(path) end,
      path .. ": unexpected tensor 'cellA.e12.conv.weight' (the net has no such parameter)")
    os.remove(path)
    assert.has_error(function() net:load("/nonexistent/w.safetensors") end,
      "/nonexistent/w.safetensors: cannot open (No such file or directory)")
    local junk = H.tmpfile("not a safetensors file at all")
    assert.has_error(function() net:load(junk) end, junk .. ": not a safetensors file (bad header length)")
    os.remove(junk)
  end)

  it("rejects bad options with exact messages", function()
    assert.has_error(function() nn.net{ sead = 1 } end,
      "bad argument #1 to 'net' (unknown field 'sead' (expected: preset, cellA, cellB, seed, channels, "
        .. "timesteps, tau, threshold, second_pool, fc_width, classes, cluster, input, stem_stride, init_cache, quantizer))")
    assert.has_error(function() nn.net{ preset = "cifar-10" } end,
      "bad argument #1 to 'net' (field 'preset': one of \"cifar10\"|\"cifar100\"|\"tinyimagenet\"|"
        .. "\"fashion-mnist\" expected, got \"cifar-10\")")
    assert.has_error(function() nn.net{ channels = 0 } end,
      "bad argument #1 to 'net' (field 'channels': integer in 1..4096 expected, got 0)")
    assert.has_error(function() nn.net{ cellA = 12 } end,
      "bad argument #1 to 'net' (field 'cellA': neuronas.Cell or cell string expected, got number)")
    assert.has_error(function() nn.net{ input = { 1, 28 } } end,
      "bad argument #1 to 'net' (field 'input': {C, H, W} with integers in 1..4096 expected)")
    assert.has_error(function() nn.net{ input = { 1, 3, 3 } } end,
      "bad argument #1 to 'net' (net: input 3x3 is too small: cell B maps are 1x1, second_pool=2 leaves nothing)")
    assert.has_error(function() nn.net(5) end, "bad argument #1 to 'net' (table expected, got number)")
    local net = small()
    assert.has_error(function() net:params{ scope = "everything" } end,
      "bad argument #1 to 'params' (field 'scope': one of \"features\"|\"all\" expected, got \"everything\")")
    assert.has_error(function() net:forward(nn.tensor(2, 3, 12, 12)) end,
      "forward: input has shape 2x3x12x12, expected Sx1x12x12 (S >= 1)")
    assert.has_error(function() net:forward(batch(2), { traing = true }) end,
      "bad argument #2 to 'forward' (unknown field 'traing' (expected: train))")
    assert.has_error(function() net:forward(42) end,
      "bad argument #1 to 'forward' (neuronas.Tensor expected, got number)")
    assert.has_error(function() net:conv_mode("sparse") end,
      "bad argument #1 to 'conv_mode' (invalid option 'sparse')")
  end)

  it("closes once and refuses use after close", function()
    local net = small()
    net:close()
    net:close()
    assert.equal("neuronas.Net (closed)", tostring(net))
    assert.has_error(function() net:layers() end, "attempt to use a closed neuronas.Net")
    do
      local n2 <close> = small()
      assert.is_true(n2:params() > 0)
    end
  end)

  it("leaves _G alone", function()
    assert.same({}, H.new_globals(before))
  end)
end)
