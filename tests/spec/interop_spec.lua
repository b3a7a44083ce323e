-- interop_spec.lua: safetensors tensors from Lua and SNASNet's PyTorch names (docs/interop.md).
-- Truth: the SNASNet fixture (tests/fixtures/README.md) and values written by hand.
local H = require("helpers")
local before = H.globals()
local nn = require("neuronas")

local FIX = "tests/fixtures/snasnet-backward/"

local function fixture_net()
  return nn.net{ preset = "cifar100", cellA = "0303 0030 2002 0200", channels = 16 }
end

local function keys(t)
  local k = {}
  for name in pairs(t) do k[#k + 1] = name end
  table.sort(k)
  return k
end

local function same(a, b)
  if a:numel() ~= b:numel() then return false end
  for i = 1, a:numel() do
    if a[i] ~= b[i] then return false end
  end
  return true
end

describe("nn.tensor.save / nn.tensor.load", function()
  it("round-trips named tensors exactly", function()
    local p = os.tmpname()
    local a = nn.tensor.from{ { 1.5, -2.25, 0 }, { 3, 1e-30, -7 } }
    local b = nn.tensor.from{ 0.1 }
    nn.tensor.save(p, { weight = a, bias = b })
    local all = nn.tensor.load(p)
    assert.same({ "bias", "weight" }, keys(all))
    assert.same({ 2, 3 }, all.weight:shape())
    assert.is_true(same(a, all.weight))
    assert.equal(b[1], nn.tensor.load(p, "bias")[1]) -- float32 0.1, the same bits
    os.remove(p)
  end)

  it("reads the fixture's input batch", function()
    local x = nn.tensor.load(FIX .. "inputs.safetensors", "input.r0")
    assert.same({ 32, 3, 32, 32 }, x:shape())
    local mask = nn.tensor.load(FIX .. "inputs.safetensors", "dropout_mask.r0.classifier.0")
    for i = 1, mask:numel(), 97 do assert.is_true(mask[i] == 0 or mask[i] == 2) end
  end)

  it("rejects bad arguments with messages naming them", function()
    local p = os.tmpname()
    assert.has_error(function() nn.tensor.save(p, {}) end,
      "bad argument #2 to 'save' (at least one tensor expected)")
    assert.has_error(function() nn.tensor.save(p, { w = 3 }) end,
      "bad argument #2 to 'save' (field 'w': neuronas.Tensor expected, got number)")
    assert.has_error(function() nn.tensor.save(p, { nn.tensor(2) }) end,
      "bad argument #2 to 'save' (keys must be non-empty tensor names, got number)")
    -- the format reserves "__metadata__": refused at the save, not by every later load
    os.remove(p)
    assert.has_error(function() nn.tensor.save(p, { w = nn.tensor(2), __metadata__ = nn.tensor(1) }) end,
      p .. ": tensor '__metadata__': the format reserves that name for the metadata")
    assert.is_nil(io.open(p, "rb"))
    nn.tensor.save(p, { w = nn.tensor(2) })
    assert.has_error(function() nn.tensor.load(p, "v") end,
      "bad argument #2 to 'load' (" .. p .. ": no tensor 'v')")
    local ok, err = pcall(nn.tensor.load, p .. ".missing")
    assert.is_false(ok)
    assert.truthy(err:find(p .. ".missing", 1, true))
    os.remove(p)
  end)

  -- a safetensors file of one tensor "w" of the given dtype and packed little-endian data
  local function st_file(dtype, n, data)
    local hdr = ('{"w":{"dtype":"%s","shape":[%d],"data_offsets":[0,%d]}}'):format(dtype, n, #data)
    while #hdr % 8 ~= 0 do hdr = hdr .. " " end
    local p = os.tmpname()
    H.spit(p, string.pack("<I8", #hdr) .. hdr .. data)
    return p
  end

  it("refuses values that are not finite as float32, naming the file, tensor and element", function()
    local cases = {
      { "F32", string.pack("<ffff", 1, 0 / 0, 2, 3), "element 2 is not finite" },
      { "F32", string.pack("<ffff", 1, 2, 3, -math.huge), "element 4 is not finite" },
      { "F64", string.pack("<dddd", 1, 2, 1e300, 3),
        "element 3 is not finite as float32 (F64 values must lie within +-3.40282e+38)" },
      { "F64", string.pack("<dddd", -1e39, 1, 2, 3), "element 1 is not finite as float32" },
    }
    for _, c in ipairs(cases) do
      local p = st_file(c[1], 4, c[2])
      for _, name in ipairs { "w", false } do -- one tensor by name, and every tensor
        local ok, err = pcall(nn.tensor.load, p, name or nil)
        assert.is_false(ok)
        assert.truthy(err:find(p .. ": tensor 'w' " .. c[3], 1, true), err)
      end
      os.remove(p)
    end
    local p = st_file("F64", 2, string.pack("<dd", 3.4e38, -1e-300)) -- in range: read as float32
    local t = nn.tensor.load(p, "w")
    assert.near(3.4e38, t[1], 3.4e38 * 1e-6)
    assert.equal(0, math.abs(t[2]))
    os.remove(p)
  end)
end)

describe("net:save / net:load with SNASNet names", function()
  it("loads the fixture and writes SNASNet's key list back", function()
    local net = fixture_net()
    net:load(FIX .. "weights.safetensors", { names = "snasnet" })
    local ref = nn.tensor.load(FIX .. "weights.safetensors")
    assert.is_true(same(ref["cell2.cell_architecture_back.4.1.weight"], net:tensor("cellB.e31.conv.weight")))
    assert.is_true(same(ref["downconv1.3.running_var"], net:tensor("downconv.bn2.running_var")))
    local p = os.tmpname()
    net:save(p, { names = "snasnet" })
    local mine = nn.tensor.load(p)
    assert.same(keys(ref), keys(mine))
    for k, t in pairs(ref) do
      assert.same(t:shape(), mine[k]:shape())
      assert.is_true(same(t, mine[k]), k)
    end
    os.remove(p)
  end)

  it("exports pow2-quantized weights as integer codes and loads them back", function()
    local net = fixture_net()
    net:load(FIX .. "weights.safetensors", { names = "snasnet" })
    local q = nn.quantizer{ bits = 4 }
    local p = os.tmpname()
    net:save(p, { codes = q })
    local codes = nn.tensor.load(p, "stem.conv.weight")
    local e = nn.tensor.load(p, "stem.conv.weight.exponent")[1]
    local qnet = q:apply(net)
    local want = qnet:tensor("stem.conv.weight")
    for i = 1, codes:numel() do
      assert.is_true(codes[i] >= -8 and codes[i] <= 7 and codes[i] == math.floor(codes[i]))
      assert.equal(want[i], codes[i] * 2.0 ^ e)
    end
    local back = fixture_net()
    back:load(p)
    assert.is_true(same(want, back:tensor("stem.conv.weight")))
    assert.equal(4, back:weight_bits()) -- the codes' precision, as q:apply(net) sets it
    assert.equal(32, net:weight_bits())
    assert.has_error(function() net:save(p, { codes = nn.quantizer{ scale = "maxabs" } }) end)
    os.remove(p)
  end)

  it("rejects unknown options and namings", function()
    local net = fixture_net()
    local ok, err = pcall(net.save, net, os.tmpname(), { name = "snasnet" })
    assert.is_false(ok)
    assert.truthy(err:find("names", 1, true), err)
    ok, err = pcall(net.load, net, FIX .. "weights.safetensors", { names = "torch" })
    assert.is_false(ok)
    assert.truthy(err:find("snasnet", 1, true), err)
    -- the fixture under our own names: the first foreign tensor is named
    ok, err = pcall(net.load, net, FIX .. "weights.safetensors")
    assert.is_false(ok)
    assert.truthy(err:find("unexpected tensor", 1, true), err)
  end)

  it("refuses weights saved for other cells, though every name and shape fits", function()
    -- a skip and an avgpool hold no tensors: swapping them changes no name or shape
    local a = nn.net{ preset = "fashion-mnist", cellA = "102101", cellB = "101021", channels = 4, seed = 1 }
    local b = nn.net{ preset = "fashion-mnist", cellA = "120101", cellB = "101021", channels = 4, seed = 2 }
    local w0 = b:tensor("stem.conv.weight"):totable()
    for _, names in ipairs{ "neuronas", "snasnet" } do
      local p = os.tmpname()
      a:save(p, { names = names })
      assert.has_error(function() b:load(p, { names = names }) end,
        p .. ": weights of another architecture: the file's cellA \"conv3x3 skip avgpool3x3 conv3x3 skip conv3x3\", "
          .. "the net's \"conv3x3 avgpool3x3 skip conv3x3 skip conv3x3\"")
      assert.same(w0, b:tensor("stem.conv.weight"):totable())
      os.remove(p)
    end
    local p = os.tmpname()
    a:save(p, { codes = nn.quantizer{ bits = 4 } })
    local ok, err = pcall(b.load, b, p)
    assert.is_false(ok)
    assert.truthy(err:find(p .. ": weights of another architecture", 1, true), err)
    os.remove(p)
  end)

  it("leaves _G alone", function()
    assert.same(before, H.globals())
  end)
end)
