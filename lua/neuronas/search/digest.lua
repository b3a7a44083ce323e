-- neuronas/search/digest.lua: what a journal's results depend on, as one comparable table
-- (docs/reliability.md, "The journal"). The settings of the setup, the identity of the scoring
-- data (path, size, a content hash of the very batches scored), the hardware model's
-- configuration, the quantizer and the constraint definitions (a Lua function by name and a hash
-- of its bytecode). Resuming a journal whose digest differs is refused, naming what differs.
local json = require("neuronas.json")

local M = {}

local PRIME = 0x100000001b3          -- FNV-1a's 64-bit prime; the mix below is FNV over words
local OFFSET = -3750763034362895579  -- FNV-1a's 64-bit offset basis 0xcbf29ce484222325

local function finish(h)
  h = h ~ (h >> 33)
  h = h * -49064778989728563         -- 0xff51afd7ed558ccd (MurmurHash3's fmix64)
  h = h ~ (h >> 33)
  return string.format("%016x", h)
end

-- A 64-bit hash of a string, as 16 hex digits (not cryptographic: it detects a changed source,
-- not a forged one).
function M.hash_string(s)
  local h = OFFSET ~ #s
  local n = #s - #s % 8
  for i = 1, n, 8 do h = (h ~ string.unpack("<i8", s, i)) * PRIME end
  for i = n + 1, #s do h = (h ~ s:byte(i)) * PRIME end
  return finish(h)
end

-- A 64-bit hash of a tensor's shape and float32 bit patterns, as 16 hex digits.
function M.hash_tensor(t)
  local shape = t:shape()
  local h = OFFSET
  for _, d in ipairs(shape) do h = (h ~ d) * PRIME end
  local c = t:copy()   -- reshape works in place: flatten a copy
  local flat = c:reshape(c:numel()):totable()
  c:close()
  local pack, unpack, n, i = string.pack, string.unpack, #flat, 1
  local pf, uf = "<" .. string.rep("f", 64), "<" .. string.rep("i4", 64)
  while i + 63 <= n do
    local w = { unpack(uf, pack(pf, table.unpack(flat, i, i + 63))) }
    for k = 1, 64 do h = (h ~ w[k]) * PRIME end
    i = i + 64
  end
  for k = i, n do h = (h ~ unpack("<i4", pack("<f", flat[k]))) * PRIME end
  return finish(h)
end

-- The source text of lines a..b of a chunk's source (a file "@path" or the chunk's own text),
-- or nil when it cannot be had.
local function source_lines(source, a, b)
  local text
  if source:sub(1, 1) == "@" then
    local f = io.open(source:sub(2), "r")
    if not f then return nil end
    text = f:read("a")
    f:close()
  elseif source:sub(1, 1) ~= "=" then
    text = source
  end
  if not text then return nil end
  if a <= 0 then return text end
  local out, n = {}, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if n >= a then out[#out + 1] = line end
    if n >= b then break end
  end
  return #out > 0 and table.concat(out, "\n") or nil
end

-- A Lua function's identity: a hash of its source text (the lines that define it, so an edit
-- elsewhere in its file does not count; its bytecode when the source cannot be read) and of
-- the numbers, strings and booleans it captures (`local LIMIT = 5` above it). A C function has
-- no source: its name stands in. code_only leaves the captured values out.
function M.function_id(fn, code_only)
  local info = debug.getinfo(fn, "S")
  if info.what == "C" then return "c:" .. tostring(info.short_src) end
  local code = source_lines(info.source, info.linedefined, info.lastlinedefined)
  if not code then
    local ok, dump = pcall(string.dump, fn, true)
    code = ok and dump or tostring(info.short_src)
  end
  local parts = { code }
  for i = 1, code_only and 0 or 255 do
    local name, v = debug.getupvalue(fn, i)
    if not name then break end
    local ty = type(v)
    if ty == "number" or ty == "string" or ty == "boolean" then
      parts[#parts + 1] = name .. "=" .. (ty == "number" and string.format("%.17g", v) or tostring(v))
    end
  end
  return "lua:" .. M.hash_string(table.concat(parts, "\0"))
end

-- A value as plain JSON data: numbers (non-finite ones as strings), strings, booleans, tables
-- copied, a function as its identity, a userdata with a config() (an ELA model) as that config,
-- another userdata (a Cell) as its string form.
local function plain(v, depth)
  local ty = type(v)
  depth = depth or 0
  if depth > 20 then return "..." end
  if ty == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return tostring(v) end
    return v
  elseif ty == "string" or ty == "boolean" then
    return v
  elseif ty == "function" then
    return M.function_id(v)
  elseif ty == "table" then
    if v == json.null then return v end
    local out = {}
    for k, x in pairs(v) do out[tostring(k)] = plain(x, depth + 1) end
    return json.object(out)
  elseif ty == "userdata" then
    local ok, cfg = pcall(function() return v:config() end)
    if ok and type(cfg) == "table" then return plain(cfg, depth + 1) end
    return (tostring(v):gsub(": 0x%x+", ""))
  end
  return json.null
end
M.plain = plain

-- The constraint definitions of a setup (a spec table or a built set): limits as given, a
-- predicate or cost function by its name (the key) and its identity, with max, unit and doc.
function M.constraints(spec)
  local C = require("neuronas.constraints")
  if C.is_set(spec) then spec = spec:spec() end
  local out = {}
  for name, v in pairs(spec or {}) do
    if v ~= false then out[name] = plain(v) end
  end
  return json.object(out)
end

-- A pipeline's identity: its own p.identity() when it has one (the engine pipeline: data,
-- hardware, quantizer), else the code of its functions (a custom pipeline: what its closures
-- capture is its own business).
local function pipeline_id(p)
  if not p then return json.null end
  if p.identity then return p.identity() end
  local out = {}
  for _, k in ipairs({ "build", "cost", "score", "score_many" }) do
    if type(p[k]) == "function" then out[k] = M.function_id(p[k], true) end
  end
  return json.object(out)
end

-- The digest of a normalised setup and its pipeline: plain JSON data (a journal's header keeps
-- it); two digests are the same when M.differences finds nothing.
function M.settings(s, p)
  return {
    preset = s.preset, seed = s.seed, bits = s.bits, rounding = s.rounding, batch = s.batch,
    ["repeat"] = s["repeat"], timesteps = s.timesteps or json.null, data_seed = s.data_seed,
    net = plain(s.net or {}), label = s.label or json.null,
    constraints = M.constraints(s.constraints), pipeline = pipeline_id(p),
  }
end

-- The fields where two decoded digests differ, as "a.b (journal X, now Y)" strings, sorted.
function M.differences(old, new)
  local out = {}
  local function walk(a, b, path)
    local ta = type(a) == "table" and a ~= json.null
    local tb = type(b) == "table" and b ~= json.null
    if ta and tb then
      local keys = {}
      for k in pairs(a) do keys[k] = true end
      for k in pairs(b) do keys[k] = true end
      for k in pairs(keys) do walk(a[k], b[k], path == "" and tostring(k) or (path .. "." .. tostring(k))) end
    elseif json.encode(a == nil and json.null or a) ~= json.encode(b == nil and json.null or b) then
      local function show(v)
        if v == nil or v == json.null then return "none" end
        local e = json.encode(v)
        return #e > 40 and (e:sub(1, 37) .. "...") or e
      end
      out[#out + 1] = string.format("%s (journal %s, now %s)", path, show(a), show(b))
    end
  end
  walk(old, new, "")
  table.sort(out)
  return out
end

return M
