-- tests/fuzz/api_fuzz.lua: the misuse generator of the Lua API (docs/reliability.md "How it is
-- tested"). It walks every function of require "neuronas" and every method and metamethod of
-- its userdata types, and calls each with values from a catalogue of bad ones: nil, booleans,
-- NaN, infinities, -0, huge and negative integers, empty / NUL / huge strings, absolute paths
-- of devices, userdata of the wrong type, closed objects, tables with bad fields or raising
-- metamethods, and callbacks that raise, close objects or run the collector (a dataset's batch,
-- a trainer loop's on_batch). Most calls start from a valid call and replace one or two of its
-- arguments, so the checks past the first argument are reached too.
--
-- A call passes when it returns (and no number it returns, directly, in a table or as a
-- tensor's sum, is NaN) or raises a Lua error whose message is a string and not one of Lua's
-- own messages for a bad operation ("attempt to index a number value", "'for' step is zero"):
-- those mean an argument went unchecked. A crash (or a sanitizer report) ends the process.
--
--   lua5.4 tests/fuzz/api_fuzz.lua [--seed N] [--calls N] [--seconds S] [--verbose] [--skip A,B]
-- (--skip leaves out the named functions, e.g. one whose known crash hides the others)
--
-- Run it in a scratch folder: save functions write files (relative names only; the generator
-- never hands an absolute path to a function that writes). Exit status 0 when every call passed,
-- 1 otherwise; the last line is "api-fuzz: seed S: C calls of F functions, E raised, X failed".
local nn = require("neuronas")

local opts = { seed = 1, calls = 3000, seconds = nil, verbose = false, skip = {} }
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--verbose" then
      opts.verbose = true
    elseif a == "--skip" then
      for name in tostring(arg[i + 1]):gmatch("[^,]+") do opts.skip[name] = true end
      i = i + 1
    elseif a == "--seed" or a == "--calls" or a == "--seconds" then
      opts[a:sub(3)] = math.tointeger(tonumber(arg[i + 1]))
        or error("api_fuzz: " .. a .. " needs an integer", 0)
      i = i + 1
    else
      error("api_fuzz: unknown argument '" .. tostring(a) .. "'", 0)
    end
    i = i + 1
  end
end
math.randomseed(opts.seed)

local function pick(t) return t[math.random(#t)] end

-- ---------------------------------------------------------------- files the pool reads

-- A 16-image 1x8x8 uint8 .npy dataset and its labels (the tiny net's input size).
local function write_npy(path, descr, shape, bytes)
  local dict = ("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }"):format(descr, shape)
  local pad = 64 - (10 + #dict + 1) % 64
  local f = assert(io.open(path, "wb"))
  f:write("\147NUMPY\1\0", string.pack("<I2", #dict + pad + 1), dict, string.rep(" ", pad), "\n", bytes)
  f:close()
end
local NPY, LAB = "fuzz-images.npy", "fuzz-labels.npy"
do
  local px, lb = {}, {}
  for i = 1, 16 * 64 do px[i] = string.char((i * 37) % 256) end
  for i = 1, 16 do lb[i] = string.char(i % 2) end
  write_npy(NPY, "|u1", "16, 1, 8, 8", table.concat(px))
  write_npy(LAB, "|u1", "16,", table.concat(lb))
end

-- ---------------------------------------------------------------- the pool of live objects

local NETCFG = { channels = 2, fc_width = 4, timesteps = 2, input = { 1, 8, 8 }, classes = 2, second_pool = 1 }

local P -- the current pool: fresh objects of every type, and closed ones
local CLOSABLE = { "tensor", "batch", "labels", "space", "net", "net2", "ds", "fcache", "icache", "tr" }

local function new_pool()
  local p = {}
  p.rng = nn.rng(math.random(0, 1000))
  p.tensor = nn.tensor(3)
  p.batch = nn.tensor(4, 1, 8, 8):uniform(p.rng)
  p.labels = nn.tensor.from({ 0, 1, 1, 0 })
  p.cell = nn.cell("102101")
  p.space = nn.space("neuronas")
  p.net = nn.net(NETCFG)
  local cfg2 = { cellA = "111111" }
  for k, v in pairs(NETCFG) do cfg2[k] = v end
  p.net2 = nn.net(cfg2)
  p.quant = nn.quantizer({ bits = 4 })
  p.ds = nn.data.open({ format = "npy", path = NPY, labels = LAB })
  p.ela = nn.ela()
  p.fcache = nn.fitness_cache({ max_entries = 4 })
  p.icache = nn.init_cache({ max_bytes = 1 << 20 })
  p.tr = nn.trainer({ net = p.net })
  p.iter = p.ds:iter({ batch = 4 })
  p.closed = {}
  for _, k in ipairs(CLOSABLE) do
    local o
    if k == "tensor" or k == "batch" or k == "labels" then o = nn.tensor(2)
    elseif k == "space" then o = nn.space("neuronas")
    elseif k == "net" or k == "net2" then o = nn.net(NETCFG)
    elseif k == "ds" then o = nn.data.open({ format = "npy", path = NPY, labels = LAB })
    elseif k == "fcache" then o = nn.fitness_cache()
    elseif k == "icache" then o = nn.init_cache()
    else o = nn.trainer({ net = p.net }) end
    o:close()
    p.closed[#p.closed + 1] = o
  end
  return p
end

-- Closes one live object of the pool (what a callback may do to the caller's objects).
local function close_one()
  local k = pick(CLOSABLE)
  local o = P[k]
  if o and o.close then o:close() end
end

-- ---------------------------------------------------------------- the bad-value catalogue

local HUGE_STRING = string.rep("x", 1 << 16)

-- Each entry: a label (for the report) and a maker called with the pool.
local BAD = {
  { "nil", function() return nil end },
  { "true", function() return true end },
  { "false", function() return false end },
  { "0", function() return 0 end },
  { "1", function() return 1 end },
  { "2", function() return 2 end },
  { "7", function() return 7 end },
  { "-1", function() return -1 end },
  { "1.5", function() return 1.5 end },
  { "-0.0", function() return -0.0 end },
  { "NaN", function() return 0 / 0 end },
  { "inf", function() return math.huge end },
  { "-inf", function() return -math.huge end },
  { "2^31", function() return 2 ^ 31 end },
  { "2^31 (integer)", function() return 1 << 31 end },
  { "2^53", function() return 2 ^ 53 end },
  { "1e300", function() return 1e300 end },
  { "maxinteger", function() return math.maxinteger end },
  { "mininteger", function() return math.mininteger end },
  { '""', function() return "" end },
  { '"\\0"', function() return "\0" end },
  { '"102101\\0garbage"', function() return "102101\0garbage" end },
  { '"conv3x3"', function() return "conv3x3" end },
  { '"abc"', function() return "abc" end },
  { '"1"', function() return "1" end },
  { '"%s%n"', function() return "%s%n" end },
  { "64 KiB string", function() return HUGE_STRING end },
  { '"/dev/zero"', function() return "/dev/zero" end },
  { '"/"', function() return "/" end },
  { '"missing/dir/file"', function() return "missing/dir/file" end },
  { "{}", function() return {} end },
  { "{1, 2, 3}", function() return { 1, 2, 3 } end },
  { "{{}}", function() return { {} } end },
  { "{NaN}", function() return { 0 / 0 } end },
  { "table whose __index raises", function()
    return setmetatable({}, { __index = function() error("fuzz: __index raised", 0) end })
  end },
  { "table whose __index closes", function()
    return setmetatable({}, { __index = function() close_one() return nil end })
  end },
  { "table with __len -1", function() return setmetatable({}, { __len = function() return -1 end }) end },
  { "table with __len maxinteger", function()
    return setmetatable({}, { __len = function() return math.maxinteger end })
  end },
  { "table whose finalizer closes", function()
    return setmetatable({}, { __gc = function() close_one() end })
  end },
  { "function", function() return function() end end },
  { "raising callback", function() return function() error("fuzz: callback raised", 0) end end },
  { "closing callback", function(p) return function() close_one() return p.batch end end },
  { "collecting callback", function(p)
    return function() P.batch = nil collectgarbage() collectgarbage() return p.batch end
  end },
  { "coroutine", function() return coroutine.create(function() end) end },
  { "io.stdout", function() return io.stdout end },
  { "closed object", function(p) return pick(p.closed) end },
  { "live object", function(p)
    return p[pick({ "rng", "tensor", "batch", "cell", "space", "net", "quant", "ds", "ela", "fcache", "icache", "tr" })]
  end },
  { "options with bad fields", function(p)
    return pick({
      { seed = -1 }, { seed = 0 / 0 }, { batch = 0 }, { batch = -1 }, { batch = 2 ^ 31 },
      { ["repeat"] = 1 << 31 }, { ["repeat"] = 2, dataset = 5 }, { ["repeat"] = 2, dataset = "ds" },
      { ["repeat"] = 2, dataset = io.stdout }, { ["repeat"] = 2, dataset = { batch = 5 } },
      { ["repeat"] = 3, dataset = { batch = function() close_one() return p.batch end } },
      { ["repeat"] = 3, dataset = { batch = function() P.net = nil collectgarbage() return p.batch end } },
      { ["repeat"] = 2, dataset = p.ds }, { cache = 5 }, { cache = pick(p.closed) }, { threads = 0 },
      { threads = 1 << 31 }, { preset = "cifar10\0" }, { cellA = "zz" }, { cellA = "102101\0" },
      { input = { 0, 0, 0 } }, { input = { 1, 2 ^ 40, 1 } }, { bits = 40 }, { bits = 0 / 0 },
      { format = "idx", path = "/dev/zero" }, { format = "npy", path = "/dev/zero" },
      { format = "cifar10", path = "/" }, { format = "npy", path = NPY .. "\0x" },
      { net = pick(p.closed) }, { net = 5 }, { lr = 0 / 0 }, { lr = 0 }, { scope = "all\0" },
      { augment = 5 }, { augment = { pad = -1 } }, { offset = 1 << 62 }, { validation = 2 },
      { ops = { "skip", "skip" } }, { ops = { "skip\0" } }, { cell = "sideways" }, { max_bytes = -1 },
      { max_entries = 0 }, { mode = 5 }, { limit = 0 }, { on_batch = 5 }, { quantizer = 5 },
      { quantizer = p.ds }, { quantizer = p.quant, init_cache = pick(p.closed) },
      { on_batch = function() close_one() end }, { [1] = 1 }, { [true] = 1 },
      { breakdown = "yes" }, { timesteps = 2 ^ 31 }, { layers = 5 }, { layers = { { pes = "x" } } },
    })
  end },
}

-- ---------------------------------------------------------------- what to call

-- Valid argument lists (after self for methods), keyed by name; a call mutates one or two.
local GOOD = {
  tensor = function() return { 2, 3 } end,
  ["tensor.from"] = function() return { { { 1, 2 }, { 3, 4 } } } end,
  rng = function() return { 1 } end,
  cell = function() return { "102101" } end,
  ["cell.parse"] = function() return { "102101", "neuronas" } end,
  space = function() return { "neuronas" } end,
  net = function(p)
    if math.random(2) == 1 then return { NETCFG } end
    local cfg = { quantizer = p.quant, init_cache = p.icache } -- built quantized, through the store
    for k, v in pairs(NETCFG) do cfg[k] = v end
    return { cfg }
  end,
  quantizer = function() return { { bits = 4 } } end,
  quantize = function(p) return { p.net, 4 } end,
  fitness = function(p) return { p.net, p.batch, { ["repeat"] = 2, dataset = p.ds, cache = p.fcache } } end,
  fitness_many = function(p) return { { p.net, p.net2 }, p.batch, { threads = 2, cache = p.fcache } } end,
  fitness_cache = function() return { { max_entries = 4 } } end,
  init_cache = function() return { { max_bytes = 1 << 20 } } end,
  ela = function() return { {} } end,
  trainer = function(p) return { { net = p.net } } end,
  ["data.open"] = function() return { { format = "npy", path = NPY, labels = LAB } } end,
  ["data.probe"] = function() return { NPY } end,
  ["data.default"] = function() return { { quiet = true, limit = 8, embedded = true } } end,
  ["train.epoch"] = function(p) return { p.tr, p.ds, { batch = 4, on_batch = function() end } } end,
  ["train.evaluate"] = function(p) return { p.tr, p.ds, { batch = 4 } } end,
  blas_threads = function() return { 1 } end,
  cancel = function() return { false } end,
  isatty = function() return { 1 } end,
  read_text = function() return { NPY, 1 << 20 } end,
  file_kind = function() return { NPY } end,
  ["Tensor.get"] = function() return { 1 } end,
  ["Tensor.set"] = function() return { 1, 2.5 } end,
  ["Tensor.reshape"] = function() return { 3 } end,
  ["Tensor.size"] = function() return { 1 } end,
  ["Tensor.fill"] = function() return { 1 } end,
  ["Tensor.uniform"] = function(p) return { p.rng, 0, 1 } end,
  ["Tensor.normal"] = function(p) return { p.rng, 0, 1 } end,
  ["Tensor.__index"] = function() return { 1 } end,
  ["Tensor.__newindex"] = function() return { 1, 2.0 } end,
  ["Rng.uniform"] = function() return { 0, 1 } end,
  ["Rng.normal"] = function() return { 0, 1 } end,
  ["Rng.integer"] = function() return { 1, 6 } end,
  ["Rng.split"] = function() return { "a" } end,
  ["Cell.op"] = function() return { 0, 1 } end,
  ["Cell.format"] = function() return { "names" } end,
  ["Cell.matrix"] = function() return { "snasnet" } end,
  ["Space.cell"] = function() return { 1 } end,
  ["Space.index"] = function() return { "102101" } end,
  ["Space.contains"] = function() return { "102101" } end,
  ["Space.sample"] = function(p) return { p.rng, 3 } end,
  ["Net.forward"] = function(p) return { p.batch } end,
  ["Net.save"] = function() return { "fuzz-net.safetensors" } end,
  ["Net.load"] = function() return { "fuzz-net.safetensors" } end,
  ["Net.tensor"] = function() return { "stem.conv.weight" } end,
  ["Net.params"] = function() return { { scope = "all" } } end,
  ["Net.conv_mode"] = function() return { "dense" } end,
  ["Quantizer.apply"] = function(p) return { p.net } end,
  ["Quantizer.report"] = function(p) return { p.net } end,
  ["ELA.evaluate"] = function(p) return { p.net } end,
  ["ELA.report"] = function(p) return { p.net } end,
  ["ELA.copy"] = function() return { { xbar = 128 } } end,
  ["ELA.__index"] = function() return { "xbar" } end,
  ["ELA.__newindex"] = function() return { "xbar", 128 } end,
  ["Dataset.batch"] = function() return { 4, { seed = 1 } } end,
  ["Dataset.iter"] = function() return { { batch = 4 } } end,
  ["Dataset.split"] = function() return { { validation = 0.25 } } end,
  ["Dataset.record"] = function() return { 1 } end,
  ["Dataset.__index"] = function() return { "size" } end,
  ["Trainer.step"] = function(p) return { p.batch, p.labels } end,
  ["Trainer.evaluate"] = function(p) return { p.batch, p.labels } end,
  ["Trainer.forward"] = function(p) return { p.batch } end,
  ["Trainer.export"] = function(p) return { p.net } end,
  ["Trainer.save"] = function() return { "fuzz-ckpt.safetensors" } end,
  ["Trainer.load"] = function() return { "fuzz-ckpt.safetensors" } end,
  ["Trainer.__index"] = function() return { "steps" } end,
  ["Trainer.__newindex"] = function() return { "total_steps", 10 } end,
}

-- Functions that write files (their name says save or write): a string argument that is
-- absolute or climbs becomes a local name, so no call writes outside the scratch folder (a file
-- saved as "/dev/zero" is written next to it and renamed over it).
local function writes(name)
  local n = name:lower()
  return n:find("save", 1, true) or n:find("write", 1, true)
end

-- The entries: {name, fn, self_key} (self_key: pool field of the self for methods, else nil).
local ENTRIES = {}
do
  local seen = {}
  local function add(name, fn, self_key)
    if (seen[fn] and not self_key) or opts.skip[name] then return end
    seen[fn] = true
    ENTRIES[#ENTRIES + 1] = { name = name, fn = fn, self = self_key }
  end
  local function walk(t, prefix, depth)
    for k, v in pairs(t) do
      local name = prefix .. tostring(k)
      if type(v) == "function" then
        add(name, v)
      elseif type(v) == "table" and depth < 2 and k ~= "core" and v ~= nn.core.mpi then
        -- (nn.core.mpi is the MPI evaluator's transport: recv waits for another rank and abort
        -- ends the job, by design; tests/spec/mpi_spec.lua exercises it across ranks)
        local mt = getmetatable(v)
        if mt and type(mt.__call) == "function" then add(name, function(...) return v(...) end) end
        walk(v, name .. ".", depth + 1)
      end
    end
  end
  walk(nn, "", 0)
  walk(nn.core, "", 1) -- the C half: functions init.lua does not re-export under the same value
  P = new_pool()
  local TYPES = { Tensor = "tensor", Rng = "rng", Cell = "cell", Space = "space", Net = "net",
    Quantizer = "quant", Dataset = "ds", ELA = "ela", FitnessCache = "fcache", InitCache = "icache",
    Trainer = "tr" }
  for tname, key in pairs(TYPES) do
    local mt = getmetatable(P[key])
    local methods = rawget(mt, "methods") or (type(rawget(mt, "__index")) == "table" and mt.__index) or {}
    for m, fn in pairs(methods) do
      if type(fn) == "function" then add(tname .. "." .. m, fn, key) end
    end
    for m, fn in pairs(mt) do
      if type(fn) == "function" and m:sub(1, 2) == "__" then add(tname .. "." .. m, fn, key) end
    end
  end
  add("DataIter()", function(...) return P.iter(...) end)
  table.sort(ENTRIES, function(a, b) return a.name < b.name end)
end

-- ---------------------------------------------------------------- checks

-- Lua's own messages for an operation on a bad value (patterns). luaL_checkinteger's "bad
-- argument #2 to 'f' (number has no integer representation)" names the argument: not raw.
local RAW = { "attempt to index", "attempt to call", "attempt to perform arithmetic",
  "attempt to concatenate", "attempt to compare", "attempt to get length", "'for' step is zero",
  "'for' initial value", "'for' limit", "attempt to divide by zero", "^[^(]*number has no integer representation",
  "to 'format' %(%a+ expected", "table index is nil", "table index is NaN", "invalid key to 'next'" }

local function raw_error(msg)
  if msg:find("fuzz:", 1, true) then return nil end -- raised by a catalogue callback on purpose
  for _, r in ipairs(RAW) do
    if msg:find(r) then return r end
  end
  return nil
end

-- The first NaN found in v (numbers, tables to depth 3, tensors by their sum), or nil.
local function find_nan(v, depth, seen)
  if type(v) == "number" then return v ~= v and "NaN" or nil end
  if type(v) == "table" and depth < 3 and not seen[v] then
    seen[v] = true
    local n = 0
    for k, x in pairs(v) do
      n = n + 1
      if n > 2000 then break end
      local w = find_nan(x, depth + 1, seen)
      if w then return "[" .. tostring(k) .. "]" .. w end
    end
  end
  local mt = type(v) == "userdata" and getmetatable(v)
  if mt and rawget(mt, "__name") == "neuronas.Tensor" then
    local ok, s = pcall(function() return v:numel() <= 1e6 and v:sum() end)
    if ok and s and s ~= s then return "tensor with NaN" end
  end
  return nil
end

local function describe(v)
  if type(v) == "string" then
    if #v > 40 then return ("string of %d bytes"):format(#v) end
    return ("%q"):format(v)
  end
  if type(v) == "number" then return math.type(v) == "float" and ("%.17g"):format(v) or tostring(v) end
  local mt = type(v) == "userdata" and getmetatable(v)
  if mt and rawget(mt, "__name") then
    local ok, s = pcall(tostring, v)
    return ok and s or rawget(mt, "__name")
  end
  return type(v)
end

-- ---------------------------------------------------------------- the campaign

local stats = { calls = 0, raised = 0, failed = 0 }
local failures = {}
local t0 = os.clock()

local function one_call()
  if stats.calls % 25 == 0 then
    P = nil
    collectgarbage()
    P = new_pool()
  end
  local e = pick(ENTRIES)
  local p = P
  local args = GOOD[e.name] and GOOD[e.name](p) or {}
  local n = GOOD[e.name] and #args or math.random(0, 3)
  if not GOOD[e.name] then
    for i = 1, n do args[i] = pick(BAD)[2](p) end
  else
    for _ = 1, math.random(1, 2) do
      local i = math.random(1, math.max(n + 1, 1))
      args[i] = pick(BAD)[2](p)
      if i > n then n = i end
    end
  end
  if e.self then
    local r = math.random()
    local self = r < 0.8 and p[e.self] or r < 0.9 and pick(p.closed) or pick(BAD)[2](p)
    table.insert(args, 1, self)
    n = n + 1
  end
  if writes(e.name) then
    for i = 1, n do
      if type(args[i]) == "string" and (args[i]:sub(1, 1) == "/" or args[i]:find("..", 1, true)) then
        args[i] = "fuzz-abs.safetensors"
      end
    end
  end
  local desc = {}
  for i = 1, n do desc[i] = describe(args[i]) end
  local call = e.name .. "(" .. table.concat(desc, ", ") .. ")"
  if opts.verbose then io.stderr:write(call, "\n") end
  local res = table.pack(pcall(e.fn, table.unpack(args, 1, n)))
  nn.core.cancel(false) -- a call may have set the cancel flag: later calls must not see it
  stats.calls = stats.calls + 1
  local why
  if not res[1] then
    stats.raised = stats.raised + 1
    local msg = res[2]
    if type(msg) ~= "string" then
      why = "error value is a " .. type(msg) .. ", a string expected"
    else
      local r = raw_error(msg)
      if r then why = "raw Lua error: " .. msg end
    end
  else
    for i = 2, res.n do
      local w = find_nan(res[i], 0, {})
      if w then why = ("result %d holds a NaN (%s)"):format(i - 1, w) break end
    end
  end
  if why then
    stats.failed = stats.failed + 1
    if #failures < 50 then failures[#failures + 1] = call .. "\n    " .. why end
  end
end

while true do
  if opts.seconds then
    if os.clock() - t0 >= opts.seconds then break end
  elseif stats.calls >= opts.calls then
    break
  end
  one_call()
end
P = nil
collectgarbage()

for _, f in ipairs(failures) do io.write("FAIL ", f, "\n") end
io.write(("api-fuzz: seed %d: %d calls of %d functions and methods, %d raised, %d failed\n")
  :format(opts.seed, stats.calls, #ENTRIES, stats.raised, stats.failed))
os.exit(stats.failed == 0 and 0 or 1)
