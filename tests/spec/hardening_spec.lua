-- hardening_spec.lua: one regression test per defect of the misuse campaign, engine and binding
-- side (docs/reliability.md): callbacks that close objects, metamethods with a foreign self,
-- iterator overflow, NUL bytes, bounded counts and files, safetensors refusals, memory the
-- collector cannot see, NaN from infinite bounds, raw Lua errors from bad arguments.
local H = require("helpers")
local before = H.globals()
local nn = require("neuronas")

local TINY = { channels = 2, fc_width = 4, timesteps = 2, input = { 1, 8, 8 }, classes = 2, second_pool = 1 }

local function tiny(extra)
  local o = {}
  for k, v in pairs(TINY) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return nn.net(o)
end

local function batch(n, seed)
  return nn.tensor(n, 1, 8, 8):uniform(nn.rng(seed or 1))
end

describe("callbacks that close or drop objects the binding uses", function()
  it("nn.fitness: a dataset that closes the net gets an error, not a freed net", function()
    local n, x = tiny(), batch(2)
    local ds = { batch = function() n:close() return batch(2, 2) end }
    assert.has_error(function() nn.fitness(n, x, { ["repeat"] = 2, dataset = ds }) end,
      "attempt to use a closed neuronas.Net")
  end)

  it("nn.fitness: a dataset that closes the cache or an earlier batch gets an error", function()
    local n, x, c = tiny(), batch(2), nn.fitness_cache()
    local ds = { batch = function() c:close() return batch(2, 2) end }
    assert.has_error(function() nn.fitness(n, x, { ["repeat"] = 2, dataset = ds, cache = c }) end,
      "attempt to use a closed neuronas.FitnessCache")
    ds = { batch = function() x:close() return batch(2, 2) end }
    assert.has_error(function() nn.fitness(n, x, { ["repeat"] = 2, dataset = ds }) end,
      "attempt to use a closed neuronas.Tensor")
  end)

  it("nn.fitness: a dataset that drops the options' cache and collects still scores (the binding holds it)", function()
    local n, x = tiny(), batch(2)
    local opts = { ["repeat"] = 3, cache = nn.fitness_cache() }
    opts.dataset = { batch = function(_, s, o)
      opts.cache = nil
      collectgarbage()
      return batch(s, o.seed)
    end }
    local s1 = nn.fitness(n, x, opts)
    -- the same three batches without any callback trickery give the same score
    local s2 = nn.fitness(n, { x, batch(2, 2), batch(2, 3) })
    assert.equal(s2, s1)
  end)

  it("nn.fitness_many: a dataset that closes a net or the cache gets an error", function()
    local a, b, x, c = tiny(), tiny({ cellA = "111111" }), batch(2), nn.fitness_cache()
    local ds = { batch = function() b:close() return batch(2, 2) end }
    assert.has_error(function() nn.fitness_many({ a, b }, x, { ["repeat"] = 2, dataset = ds }) end,
      "attempt to use a closed neuronas.Net")
    ds = { batch = function() c:close() return batch(2, 2) end }
    assert.has_error(function() nn.fitness_many({ a }, x, { ["repeat"] = 2, dataset = ds, cache = c }) end,
      "attempt to use a closed neuronas.FitnessCache")
  end)

  it("nn.fitness_many: a net list whose __index closes a net gets an error", function()
    local a, b, x = tiny(), tiny(), batch(2)
    local list = setmetatable({}, {
      __len = function() return 2 end,
      __index = function(_, i) if i == 2 then a:close() return b end return a end,
    })
    assert.has_error(function() nn.fitness_many(list, x) end, "attempt to use a closed neuronas.Net")
  end)

  it("net:save with options whose __index closes the net gets an error", function()
    local n = tiny()
    local opts = setmetatable({}, { __index = function() n:close() end })
    local p = os.tmpname()
    assert.has_error(function() n:save(p, opts) end, "attempt to use a closed neuronas.Net")
    os.remove(p)
  end)

  it("Space:index with a cell table whose metamethods close the space gets an error", function()
    local s = nn.space("neuronas")
    local t = setmetatable({}, { __len = function() s:close() return 6 end,
      __index = function() return "skip" end })
    assert.has_error(function() s:index(t) end, "attempt to use a closed neuronas.Space")
  end)

  it("close from another object's finalizer is refused (the object's own __gc still frees it)", function()
    -- a finalizer can run during any allocation, also inside a call that holds the net
    local n = tiny()
    local err
    local guard = setmetatable({}, { __gc = function() err = select(2, pcall(n.close, n)) end })
    guard = nil
    collectgarbage()
    assert.equal("cannot close a neuronas.Net inside a finalizer (__gc): a call in progress may be "
      .. "using it; drop the reference instead", err)
    assert.equal("number", type(nn.fitness(n, batch(2)))) -- still open
    -- outside a finalizer close works, and a dropped net is still freed by its own __gc
    local m0 = nn.core.mem_live()
    n = nil
    collectgarbage()
    collectgarbage()
    assert.is_true(nn.core.mem_live() < m0)
  end)

  it("raises a clear error for a dataset option that is not a dataset", function()
    local n, x = tiny(), batch(2)
    assert.has_error(function() nn.fitness(n, x, { ["repeat"] = 2, dataset = 5 }) end,
      "bad argument #3 to 'fitness' (field 'dataset': a value with a batch method expected, got number)")
    assert.has_error(function() nn.fitness(n, x, { ["repeat"] = 2, dataset = { batch = 5 } }) end,
      "bad argument #3 to 'fitness' (field 'dataset': a value with a batch method expected, got table)")
    assert.has_error(function() nn.fitness(n, x, { ["repeat"] = 2, dataset = io.stdout }) end,
      "bad argument #3 to 'fitness' (field 'dataset': a value with a batch method expected, got userdata)")
  end)
end)

describe("metamethods check their self", function()
  it("Tensor.__index with a string self raises instead of crashing", function()
    assert.has_error(function() getmetatable(nn.tensor(1)).__index("abc", "x") end,
      "bad argument #1 to '__index' (neuronas.Tensor expected, got string)")
  end)

  it("the other __index metamethods too", function()
    local tr = nn.trainer({ net = tiny() })
    assert.has_error(function() getmetatable(tr).__index(5, "steps") end,
      "bad argument #1 to '__index' (neuronas.Trainer expected, got number)")
    local ds = nn.data.default({ quiet = true, embedded = true, limit = 4 })
    assert.has_error(function() getmetatable(ds).__index({}, "size") end,
      "bad argument #1 to '__index' (neuronas.Dataset expected, got table)")
    assert.has_error(function() getmetatable(nn.ela()).__index("x", "xbar") end,
      "bad argument #1 to '__index' (neuronas.ELA expected, got string)")
    assert.has_error(function() getmetatable(nn.quantizer()).__index(1, "bits") end,
      "bad argument #1 to '__index' (neuronas.Quantizer expected, got number)")
    -- a key that is no string is simply absent
    assert.is_nil(tr[1])
    assert.is_nil(nn.quantizer()[true])
  end)

  it("ELA:evaluate with a table that has a layers field names what it takes", function()
    assert.has_error(function() nn.ela():evaluate({ layers = { { pes = "x" } } }) end,
      "bad argument #1 to 'evaluate' (layer list or neuronas.Net expected)")
  end)

  it("ELA:report with a wrong self names it", function()
    local hw = nn.ela()
    assert.has_error(function() hw.report(5, {}) end,
      "calling 'report' on bad self (neuronas.ELA expected, got number)")
    assert.has_error(function() hw:report({ layers = { { pes = "x" } } }) end,
      "bad argument #1 to 'report' (layers[1].pes: integer expected, got string)")
  end)
end)

describe("Space:cells()", function()
  it("stops instead of overflowing at math.maxinteger and below 0", function()
    local s = nn.space("neuronas")
    local f, st = s:cells()
    assert.equal(0, select("#", f(st, math.maxinteger)))
    assert.equal(0, select("#", f(st, -1)))
    assert.equal(0, select("#", f(st, 729)))
    local i, c = f(st, 728)
    assert.equal(729, i)
    assert.equal("222222", c:digits())
  end)
end)

describe("strings with a NUL byte", function()
  it("are refused as genotypes instead of being cut at the NUL", function()
    assert.has_error(function() nn.cell("102101\0garbage") end,
      "bad argument #1 to 'cell' (cell string: character 7 is a NUL byte, expected a genotype without one)")
    assert.has_error(function() nn.cell.parse("102101\0", "neuronas") end,
      "bad argument #1 to 'cell.parse' (cell string: character 7 is a NUL byte, expected a genotype without one)")
    assert.has_error(function() nn.net({ cellA = "102101\0x" }) end,
      "bad argument #1 to 'net' (field 'cellA': cell string: character 7 is a NUL byte, expected a genotype without one)")
    assert.has_error(function() nn.cell({ "skip\0", "skip", "skip", "skip", "skip", "skip" }) end)
  end)

  it("are refused as paths, names and option strings", function()
    local n = tiny()
    assert.has_error(function() n:save("w\0.safetensors") end,
      "bad argument #1 to 'save' (path: string without NUL bytes expected, got a NUL at byte 2)")
    assert.has_error(function() n:load("w\0") end,
      "bad argument #1 to 'load' (path: string without NUL bytes expected, got a NUL at byte 2)")
    assert.has_error(function() n:tensor("stem.conv.weight\0") end,
      "bad argument #1 to 'tensor' (name: string without NUL bytes expected, got a NUL at byte 17)")
    assert.has_error(function() n:conv_mode("dense\0x") end,
      "bad argument #1 to 'conv_mode' (option: string without NUL bytes expected, got a NUL at byte 6)")
    assert.has_error(function() nn.data.open({ format = "npy", path = "x\0y" }) end,
      "bad argument #1 to 'open' (field 'path': string without NUL bytes expected)")
    assert.has_error(function() nn.data.open({ format = "npy\0", path = "x" }) end)
    assert.has_error(function() nn.net({ preset = "cifar10\0" }) end)
    assert.has_error(function() nn.space({ ops = { "skip\0" } }) end)
    assert.has_error(function() nn.rng(1):split("a\0b") end,
      "bad argument #1 to 'split' (label: string without NUL bytes expected, got a NUL at byte 2)")
    assert.has_error(function() n:params({ scope = "all\0" }) end)
    assert.has_error(function() nn.tensor.save("t\0.safetensors", { x = nn.tensor(1) }) end)
    assert.has_error(function() nn.tensor.load("/dev/zero") end, "/dev/zero: not a regular file")
  end)
end)

describe("bounded counts and files", function()
  it("Space:sample refuses a count above 2^20 before allocating", function()
    local s = nn.space("neuronas")
    assert.has_error(function() s:sample(nn.rng(1), 1 << 31) end,
      "bad argument #2 to 'sample' (count in 0..1048576 expected, got 2147483648)")
    assert.equal(5, #s:sample(nn.rng(1), 5))
  end)

  it("files on a pipe are refused by their kind, without waiting for a writer", function()
    -- run in a child under a timeout: opening a pipe for reading blocks until someone writes
    local dir = H.tmpname("-pipe")
    assert.is_true(os.execute("mkdir " .. dir .. " && mkfifo " .. dir .. "/p"))
    local script = dir .. "/open.lua"
    H.spit(script, ([[
      local nn = require("neuronas")
      local p = %q
      for _, f in ipairs({
        function() return nn.data.open({ format = "npy", path = p, labels = p }) end,
        function() return nn.data.open({ format = "idx", path = p }) end,
        function() return nn.data.open({ format = "cifar10", path = p }) end,
        function() return nn.tensor.load(p) end,
        function() return nn.net({ preset = "fashion-mnist" }):load(p) end,
      }) do
        local ok, err = pcall(f)
        io.write(tostring(ok), " ", tostring(err), "\n")
      end
    ]]):format(dir .. "/p"))
    local code, out, err = H.run("timeout 60 " .. H.q(H.cli) .. " run " .. script)
    assert.are.equal(0, code, err)
    assert.are.equal(("false " .. dir .. "/p: not a regular file\n"):rep(5), out)
    os.execute("rm -rf " .. dir)
  end)

  it("datasets refuse /dev/zero and files above the bound, naming the file", function()
    assert.has_error(function() nn.data.open({ format = "npy", path = "/dev/zero", labels = "/dev/zero" }) end,
      "/dev/zero: not a regular file")
    assert.has_error(function() nn.data.open({ format = "idx", path = "/dev/zero" }) end)
    local ok, why = nn.data.probe("/dev/zero")
    assert.is_false(ok)
    assert.equal("/dev/zero: not a regular file", why)
    -- a sparse file of 5 GiB: refused from its size, without reading it
    local big = os.tmpname()
    local f = assert(io.open(big, "wb"))
    f:seek("set", 5 * 2 ^ 30)
    f:write("x")
    f:close()
    assert.has_error(function() nn.data.open({ format = "npy", path = big, labels = big }) end,
      big .. ": 5368709121 bytes, larger than the 4294967296-byte bound")
    os.remove(big)
  end)

  it("tensors refuse non-finite values and infinite random bounds instead of filling with NaN", function()
    local r = nn.rng(1)
    assert.has_error(function() r:uniform(-math.huge, 1) end, "bad argument #1 to 'uniform' (finite lo expected)")
    assert.has_error(function() r:uniform(-1e308, 1e308) end,
      "bad argument #2 to 'uniform' (hi - lo within the number range expected)")
    assert.has_error(function() r:normal(0, math.huge) end, "bad argument #2 to 'normal' (finite std >= 0 expected)")
    local t = nn.tensor(4)
    assert.has_error(function() t:uniform(r, -math.huge, math.huge) end,
      "bad argument #2 to 'uniform' (finite float32 lo expected)")
    assert.has_error(function() t:uniform(r, -3e38, 3e38) end,
      "bad argument #3 to 'uniform' (hi - lo within float32 range expected)")
    assert.has_error(function() t:fill(0 / 0) end)
    assert.has_error(function() t:set(1, 1e39) end)
    assert.has_error(function() t[1] = math.huge end)
    assert.has_error(function() nn.tensor.from({ 1, -math.huge }) end)
    -- what is still accepted keeps its meaning
    local u = t:uniform(nn.rng(2), -1, 1)
    assert.is_true(u:min() >= -1 and u:max() < 1)
  end)

  it("nn.train.evaluate / epoch name bad options instead of raising Lua's own errors", function()
    local tr = nn.trainer({ net = nn.net({ channels = 2, fc_width = 4, timesteps = 2 }) })
    local ds = nn.data.default({ quiet = true, embedded = true, limit = 8 })
    assert.has_error(function() nn.train.evaluate(tr, ds, { batch = 0 }) end,
      "bad argument #3 to 'evaluate' (field 'batch': integer in 1..1073741824 expected, got 0)")
    assert.has_error(function() nn.train.evaluate(tr, ds, { batch = 2.5 }) end,
      "bad argument #3 to 'evaluate' (field 'batch': integer in 1..1073741824 expected, got 2.5)")
    assert.has_error(function() nn.train.epoch(tr, ds, { on_batch = 5 }) end,
      "bad argument #3 to 'epoch' (field 'on_batch': function expected, got number)")
    assert.has_error(function() nn.train.epoch(5, ds) end,
      "bad argument #1 to 'epoch' (neuronas.Trainer expected, got number)")
    local r = nn.train.evaluate(tr, ds, { batch = 3 })
    assert.equal(8, r.images)
  end)
end)

-- A safetensors file from parts: header JSON text (exactly as given) and the data bytes.
local function st_file(header, data)
  local p = os.tmpname()
  local f = assert(io.open(p, "wb"))
  f:write(string.pack("<I8", #header), header, data)
  f:close()
  return p
end

-- The tiny net's tensors as {name, shape, F32 bytes}, in save order.
local function tensors_of(net)
  local out = {}
  for _, name in ipairs(net:tensor_names()) do
    local t = net:tensor(name)
    local b = {}
    for i = 1, #t do b[i] = string.pack("<f", t[i]) end
    out[#out + 1] = { name = name, shape = t:shape(), bytes = table.concat(b) }
  end
  return out
end

-- Header and data for entries (each may override dtype, offsets; extra JSON before the '}').
local function build(entries, extra)
  local parts, data, at = {}, {}, 0
  for _, e in ipairs(entries) do
    local b, en = e.begin or at, e.finish or (at + #e.bytes)
    parts[#parts + 1] = ('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}'):format(e.name,
      e.dtype or "F32", table.concat(e.shape, ","), b, en)
    data[#data + 1] = e.bytes
    at = at + #e.bytes
  end
  return "{" .. table.concat(parts, ",") .. (extra or "") .. "}", table.concat(data)
end

local function copy_entries(es)
  local out = {}
  for i, e in ipairs(es) do out[i] = { name = e.name, shape = e.shape, bytes = e.bytes } end
  return out
end

describe("net:load refuses bad safetensors files and leaves the net unchanged", function()
  local src = tiny({ seed = 7 })
  local E = tensors_of(src)

  local function refused(path, msg)
    local net = tiny({ seed = 1 })
    local w = net:tensor("stem.conv.weight"):totable()
    local ok, err = pcall(net.load, net, path)
    os.remove(path)
    assert.is_false(ok)
    if msg then assert.equal(path .. ": " .. msg, err) end
    assert.same(w, net:tensor("stem.conv.weight"):totable())
    assert.equal(32, net:weight_bits())
  end

  it("loads the file the helper builds from the parts (the cases below change one thing)", function()
    local net = tiny({ seed = 1 })
    local p = st_file(build(E))
    net:load(p)
    os.remove(p)
    assert.same(src:tensor("stem.conv.weight"):totable(), net:tensor("stem.conv.weight"):totable())
  end)

  it("refuses integer weights (no silent conversion)", function()
    local es = copy_entries(E)
    es[1].dtype = "I32"
    refused(st_file(build(es)), "tensor '" .. es[1].name .. "' has dtype I32, expected F32 or F64 (or integer "
      .. "codes with '" .. es[1].name .. ".exponent')")
  end)

  it("refuses overlapping, out-of-order and gapped data offsets", function()
    local es = copy_entries(E)
    es[2].begin, es[2].finish = 0, #es[2].bytes -- overlaps tensor 1
    local h, d = build(es)
    refused(st_file(h, d))
    es = copy_entries(E)
    es[1].bytes = es[1].bytes .. "\0\0\0\0" -- a gap: tensor 1's offsets cover 4 bytes less
    es[1].finish = #es[1].bytes - 4
    h, d = build(es)
    refused(st_file(h, d), "tensor '" .. es[2].name .. "': data_offsets begin at "
      .. #es[1].bytes .. ", expected " .. (#es[1].bytes - 4) .. " (leaves a gap)")
  end)

  it("refuses bytes after the last tensor's data", function()
    local h, d = build(E)
    refused(st_file(h, d .. "junk"), "4 bytes after the last tensor's data (the offsets must cover the data)")
  end)

  it("refuses a repeated tensor name", function()
    local es = copy_entries(E)
    local h, d = build(es, ',"' .. es[1].name .. '":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}')
    refused(st_file(h, d), "tensor '" .. es[1].name .. "' repeats")
  end)

  it("refuses bytes after the header JSON and invalid JSON", function()
    local h, d = build(E)
    refused(st_file(h .. "xyz", d), "bytes after the header JSON (at header byte " .. (#h + 1) .. ")")
    refused(st_file(h:gsub('"F32"', '"F32\\q"', 1), d))
    refused(st_file(build(E, ',"x":tru')))
  end)

  it("refuses malformed __metadata__", function()
    refused(st_file(build(E, ',"__metadata__":{"weight_bits":8}')), "__metadata__: string values expected")
    refused(st_file(build(E, ',"__metadata__":{"a":"1","a":"2"}')), "__metadata__: key 'a' repeats")
    refused(st_file(build(E, ',"__metadata__":{},"__metadata__":{}')), "__metadata__ repeats")
    refused(st_file(build(E, ',"__metadata__":{"weight_bits":"8abc"}')),
      '__metadata__ weight_bits is "8abc", an integer in 2..32 expected')
  end)

  it("refuses a BN running variance <= 0", function()
    local es = copy_entries(E)
    for _, e in ipairs(es) do
      if e.name:find("running_var$") then
        e.bytes = string.pack("<f", 0) .. e.bytes:sub(5)
        refused(st_file(build(es)), "tensor '" .. e.name .. "' element 1 is 0, a variance > 0 expected")
        return
      end
    end
    error("the tiny net has no running_var")
  end)

  it("refuses /dev/zero and a folder", function()
    local net = tiny()
    assert.has_error(function() net:load("/dev/zero") end, "/dev/zero: not a regular file")
    assert.has_error(function() net:load("/") end)
  end)

  it("trainer:load refuses the same files", function()
    local tr = nn.trainer({ net = tiny() })
    assert.has_error(function() tr:load("/dev/zero") end, "/dev/zero: not a regular file")
    local p = os.tmpname()
    tr:save(p)
    local f = assert(io.open(p, "ab"))
    f:write("junk")
    f:close()
    assert.has_error(function() tr:load(p) end,
      p .. ": 4 bytes after the last tensor's data (the offsets must cover the data)")
    os.remove(p)
  end)
end)

describe("memory outside Lua's heap", function()
  it("is counted by the engine and released when objects are collected", function()
    collectgarbage()
    local m0 = nn.core.mem_live()
    local nets = {}
    for i = 1, 100 do nets[i] = nn.net({}) end
    local m1 = nn.core.mem_live()
    -- at least 4 bytes per parameter of each net, less what the engine's per-thread scratch
    -- cache (at most 64 MiB, nn_scratch.h) held before and hands out again
    local weights = 100 * 4 * nets[1]:params({ scope = "all" })
    assert.is_true(m1 - m0 >= weights - (64 << 20), ("100 nets: %d bytes counted"):format(m1 - m0))
    nets = nil
    collectgarbage()
    collectgarbage()
    assert.is_true(m1 - nn.core.mem_live() >= weights - (64 << 20))
  end)

  -- The loops run in a child process: under ASan its quarantine (256 MiB of freed memory kept
  -- to catch use-after-free) would otherwise count as resident, so the child turns it off.
  local LOOPS = [[
    local nn = require("neuronas")
    local function rss()
      local f = assert(io.open("/proc/self/statm"))
      local _, r = f:read("n", "n")
      f:close()
      return r * 4096 / 2 ^ 20
    end
    -- live set: the engine bytes one object holds (nn.core.mem_live); growth: the resident size
    collectgarbage()
    local m0, r0 = nn.core.mem_live(), rss()
    local keep = nn.net({})
    local live = (nn.core.mem_live() - m0) / 2 ^ 20
    for _ = 1, 200 do local _ = nn.net({}) end
    print(("nets %.1f %.1f"):format(live, rss() - r0))
    local ds = nn.data.default({ quiet = true, embedded = true, limit = 16 })
    local x, y = ds:batch(8)
    collectgarbage()
    m0, r0 = nn.core.mem_live(), rss()
    local tr = nn.trainer({ net = keep })
    tr:step(x, y)
    live = (nn.core.mem_live() - m0) / 2 ^ 20
    for _ = 1, 12 do
      local t = nn.trainer({ net = keep })
      t:step(x, y)
    end
    print(("trainers %.1f %.1f"):format(live, rss() - r0))
  ]]

  it("keeps a loop that drops nets and trainers without close within a small multiple of its live set", function()
    local script = H.tmpfile(LOOPS, ".lua")
    local src = assert(io.popen("pwd")):read("l")
    local asan = os.getenv("ASAN_OPTIONS")
    local env = asan and ("ASAN_OPTIONS=" .. H.q(asan .. ":quarantine_size_mb=0") .. " ") or ""
    local code, out, err = H.run(env .. "LUA_PATH=" .. H.q(src .. "/lua/?.lua;" .. src .. "/lua/?/init.lua;;")
      .. " LUA_CPATH=" .. H.q(H.build .. "/lua/?.so;;") .. " lua5.4 " .. H.q(script))
    os.remove(script)
    assert.equal(0, code, out .. err)
    local live, grown = out:match("nets ([%d.]+) ([%d.]+)")
    live, grown = tonumber(live), tonumber(grown)
    -- without telling the collector: ~1.7 MB per dropped net, 340 MB here
    assert.is_true(grown < 4 * live + 48, ("nets: %.1f MB for a live set of %.1f MB"):format(grown, live))
    live, grown = out:match("trainers ([%d.]+) ([%d.]+)")
    live, grown = tonumber(live), tonumber(grown)
    -- without telling the collector: every dropped trainer's state and step buffers stay resident
    -- (650 MB here for a live set of 72 MB)
    assert.is_true(grown < 4 * live + 48, ("trainers: %.1f MB for a live set of %.1f MB"):format(grown, live))
  end)
end)

describe("hardening", function()
  it("leaves _G alone", function()
    assert.same(before, H.globals())
  end)
end)
