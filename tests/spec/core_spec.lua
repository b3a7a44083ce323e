-- core_spec.lua: the module, tensors and rng from Lua.
local H = require("helpers")

describe("require 'neuronas'", function()
  it("loads from plain lua5.4 and leaves _G alone", function()
    local before = H.globals()
    package.loaded["neuronas"] = nil
    local nn = require("neuronas")
    assert.are.same({}, H.new_globals(before))
    assert.are.equal("0.1.0", nn.version)
  end)
end)

describe("nn.tensor", function()
  local nn = require("neuronas")

  it("makes zero tensors from dims or a shape table", function()
    local t = nn.tensor(2, 3)
    assert.are.same({ 2, 3 }, t:shape())
    assert.are.equal(6, t:numel())
    assert.are.equal(6, #t)
    assert.are.equal(0, t:sum())
    assert.are.same({ 4 }, nn.tensor({ 4 }):shape())
    assert.are.equal("neuronas.Tensor (2x3)", tostring(t))
  end)

  it("builds from nested tables and reads back by flat and multi-index", function()
    local t = nn.tensor.from({ { 1, 2, 3 }, { 4, 5, 6 } })
    assert.are.same({ 2, 3 }, t:shape())
    assert.are.equal(4, t[4])
    assert.are.equal(6, t:get(2, 3))
    assert.are.equal(21, t:sum())
    assert.are.equal(3.5, t:mean())
    assert.are.equal(1, t:min())
    assert.are.equal(6, t:max())
    t:set(1, 2, -7)
    assert.are.equal(-7, t[2])
    t[6] = 0.5
    assert.are.same({ { 1, -7, 3 }, { 4, 5, 0.5 } }, t:totable())
  end)

  it("copies independently and reshapes in place", function()
    local t = nn.tensor.from({ 1, 2, 3, 4 })
    local c = t:copy():fill(9)
    assert.are.equal(10, t:sum())
    assert.are.equal(36, c:sum())
    t:reshape(2, 2)
    assert.are.same({ { 1, 2 }, { 3, 4 } }, t:totable())
  end)

  it("stores float32 values", function()
    local t = nn.tensor.from({ 0.1 })
    assert.are_not.equal(0.1, t[1])
    assert.is_true(math.abs(t[1] - 0.1) < 1e-8)
  end)

  it("diagnoses bad arguments with exact messages", function()
    assert.has_error(function() nn.tensor(2, -1) end,
      "bad argument #2 to 'tensor' (dimension >= 0 expected)")
    assert.has_error(function() nn.tensor.from({ { 1, 2 }, { 3 } }) end,
      "bad argument #1 to 'from' (element [2]: table of 2 entries expected (ragged input))")
    assert.has_error(function() nn.tensor.from({ { 1, "x" } }) end,
      "bad argument #1 to 'from' (element [1][2]: number expected, got string)")
    local t = nn.tensor(2, 2)
    assert.has_error(function() t:get(3, 1) end, "bad argument #1 to 'get' (index in 1..2 expected, got 3)")
    assert.has_error(function() return t[5] end, "tensor index 5 out of range 1..4")
    assert.has_error(function() t:reshape(3) end, "reshape: 4 elements cannot take a shape of 3")
    assert.has_error(function() nn.tensor(2):mean(); nn.tensor(0):mean() end, "mean of an empty tensor")
  end)

  it("refuses use after close, and closing twice is harmless", function()
    local t = nn.tensor(3)
    t:close()
    t:close()
    assert.has_error(function() t:sum() end, "attempt to use a closed neuronas.Tensor")
    assert.are.equal("neuronas.Tensor (closed)", tostring(t))
    do
      local s <close> = nn.tensor(2)
      s:fill(1)
    end
  end)
end)

describe("nn.rng", function()
  local nn = require("neuronas")

  it("is SplitMix64: published first values for seeds 0 and 1", function()
    assert.are.equal(math.tointeger(0xE220A8397B1DCDAF), nn.rng(0):u64())
    assert.are.equal(math.tointeger(0x910A2DEC89025CC1), nn.rng(1):u64())
  end)

  it("draws uniform numbers with the right moments", function()
    local r = nn.rng(123)
    local n, s, bins = 100000, 0, {}
    for i = 1, 10 do bins[i] = 0 end
    for _ = 1, n do
      local u = r:uniform()
      assert(u >= 0 and u < 1)
      s = s + u
      local b = math.floor(u * 10) + 1
      bins[b] = bins[b] + 1
    end
    local chi = 0
    for i = 1, 10 do chi = chi + (bins[i] - n / 10) ^ 2 / (n / 10) end
    assert.is_true(math.abs(s / n - 0.5) < 0.005)
    assert.is_true(chi < 27.9) -- 9 dof, p = 0.001
  end)

  it("draws integers in the closed interval, like math.random", function()
    local r = nn.rng(5)
    local seen = {}
    for _ = 1, 2000 do
      local v = r:integer(3, 7)
      assert.is_true(v >= 3 and v <= 7 and math.type(v) == "integer")
      seen[v] = true
    end
    for v = 3, 7 do assert.is_true(seen[v]) end
    assert.are.equal(1, r:integer(1, 1))
  end)

  it("splits into named streams without advancing the parent", function()
    local r = nn.rng(9)
    local a1, a2 = r:split("cellA.e01.conv"), r:split("cellA.e01.conv")
    assert.are.equal(a1:u64(), a2:u64())
    assert.are_not.equal(r:split("x"):u64(), r:split("y"):u64())
    local _, counter = r:state()
    assert.are.equal(0, counter)
  end)

  it("fills tensors reproducibly", function()
    local a = nn.tensor(100):uniform(nn.rng(4), -1, 1)
    local b = nn.tensor(100):uniform(nn.rng(4), -1, 1)
    assert.are.same(a:totable(), b:totable())
    assert.is_true(a:min() >= -1 and a:max() < 1)
  end)

  it("diagnoses bad arguments", function()
    assert.has_error(function() nn.rng("x") end,
      "bad argument #1 to 'rng' (number expected, got string)")
    assert.has_error(function() nn.rng(1):integer(5, 2) end,
      "bad argument #2 to 'integer' (empty interval)")
  end)
end)

describe("nn.read_text and nn.file_kind", function()
  local nn = require("neuronas")

  it("read a regular file whole, within a bound, and tell the other kinds apart without opening them", function()
    local dir = H.tmpname("-files")
    assert.is_true(os.execute("mkdir " .. dir .. " && mkfifo " .. dir .. "/pipe"))
    local f = dir .. "/f.txt"
    H.spit(f, "abc\0def\n")
    assert.are.equal("abc\0def\n", nn.read_text(f))
    assert.are.equal("abc\0def\n", nn.read_text(f, 8))
    assert.are.same({ nil, f .. ": larger than 7 bytes", "large" }, { nn.read_text(f, 7) })
    H.spit(f, "")
    assert.are.equal("", nn.read_text(f, 0))
    -- a pipe with no writer: an open for reading would wait; /dev/zero would never end
    for _, c in ipairs({ { dir .. "/pipe", "other", ": not a regular file" }, { "/dev/zero", "other", ": not a regular file" },
      { dir, "folder", ": is a folder, a file expected" } }) do
      assert.are.equal(c[2], nn.file_kind(c[1]))
      assert.are.same({ nil, c[1] .. c[3], c[2] }, { nn.read_text(c[1]) })
    end
    assert.are.equal("file", nn.file_kind(f))
    assert.are.same({ nil, dir .. "/none: No such file or directory", "missing" }, { nn.file_kind(dir .. "/none") })
    assert.are.same({ nil, dir .. "/none: No such file or directory", "missing" }, { nn.read_text(dir .. "/none") })
    assert.has_error(function() nn.read_text(f, -1) end)
    assert.has_error(function() nn.read_text("a\0b") end)
    assert.has_error(function() nn.file_kind({}) end)
    os.execute("rm -rf " .. dir)
  end)
end)
