-- neuronas/json.lua: a small JSON encoder/decoder for reports, journals and configs.
-- encode: tables with only integer keys 1..n are arrays, others objects (keys sorted, so output
-- is deterministic); numbers that are integral print without a fraction; NaN/inf raise (JSON has
-- none), except that encode(v, { nonfinite = "null" }) writes them as null; a string's bytes that
-- are not UTF-8 are written as U+FFFD.
-- decode: strict RFC 8259 (no comments, no trailing commas); errors name the byte offset.
local M = {}

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

-- s with each byte that does not begin a valid UTF-8 sequence replaced by U+FFFD (a name from a
-- user's file may hold any bytes; JSON is UTF-8, and readers refuse anything else).
local function valid_utf8(s)
  if utf8.len(s) then return s end
  local out, i = {}, 1
  while i <= #s do
    local ok, bad = utf8.len(s, i)
    if ok then
      out[#out + 1] = s:sub(i)
      break
    end
    out[#out + 1] = s:sub(i, bad - 1) .. "\u{FFFD}"
    i = bad + 1
  end
  return table.concat(out)
end
M.valid_utf8 = valid_utf8

local function encode_string(s)
  s = valid_utf8(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function is_array(t)
  local n = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 then return false end
    n = n + 1
  end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return true, n
end

local function encode(v, opts, out, indent, depth)
  local ty = type(v)
  if v == nil or v == M.null then
    out[#out + 1] = "null"
  elseif ty == "boolean" then
    out[#out + 1] = tostring(v)
  elseif ty == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      if opts.nonfinite == "null" then
        out[#out + 1] = "null"
      else
        error("json: cannot encode non-finite number " .. tostring(v), 0)
      end
    elseif math.type(v) == "integer" or (v == math.floor(v) and math.abs(v) < 2 ^ 53) then
      out[#out + 1] = string.format("%d", v)
    else
      -- the shortest form that reads back as the same double
      local t = string.format("%.15g", v)
      if tonumber(t) ~= v then t = string.format("%.16g", v) end
      if tonumber(t) ~= v then t = string.format("%.17g", v) end
      out[#out + 1] = t
    end
  elseif ty == "string" then
    out[#out + 1] = encode_string(v)
  elseif ty == "table" then
    if depth > 100 then error("json: nesting deeper than 100 (a cycle?)", 0) end
    local arr, n = is_array(v)
    local nl = indent and ("\n" .. string.rep(indent, depth + 1)) or ""
    local close = indent and ("\n" .. string.rep(indent, depth)) or ""
    if arr and (n > 0 or next(v) == nil and getmetatable(v) ~= M.object_mt) then
      if n == 0 then out[#out + 1] = "[]" return end
      out[#out + 1] = "["
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = nl
        encode(v[i], opts, out, indent, depth + 1)
      end
      out[#out + 1] = close .. "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" and math.type(k) ~= "integer" then
          error("json: cannot encode a key of type " .. type(k), 0)
        end
        keys[#keys + 1] = tostring(k)
      end
      table.sort(keys)
      if #keys == 0 then out[#out + 1] = "{}" return end
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = nl .. encode_string(k) .. (indent and ": " or ":")
        local val = v[k]
        if val == nil then val = v[math.tointeger(tonumber(k))] end
        encode(val, opts, out, indent, depth + 1)
      end
      out[#out + 1] = close .. "}"
    end
  else
    error("json: cannot encode a " .. ty, 0)
  end
end

-- A sentinel for JSON null inside tables, and a metatable marking an empty table as {}.
M.null = setmetatable({}, { __tostring = function() return "null" end })
M.object_mt = {}
function M.object(t) return setmetatable(t or {}, M.object_mt) end

-- encode(value[, { indent = "  ", nonfinite = "null" }]) -> string
function M.encode(v, opts)
  opts = opts or {}
  local out = {}
  encode(v, opts, out, opts.indent, 0)
  return table.concat(out)
end

local function decode_error(s, i, what)
  error(string.format("json: %s at byte %d", what, i), 0)
end

local function skip(s, i)
  return s:find("[^ \t\r\n]", i) or #s + 1
end

local parse

local function parse_string(s, i)
  local out, j = {}, i + 1
  while true do
    local c = s:sub(j, j)
    if c == "" then decode_error(s, j, "unterminated string") end
    if c == '"' then return table.concat(out), j + 1 end
    if c == "\\" then
      local e = s:sub(j + 1, j + 1)
      local map = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }
      if map[e] then
        out[#out + 1] = map[e]
        j = j + 2
      elseif e == "u" then
        local hex = s:sub(j + 2, j + 5)
        if not hex:match("^%x%x%x%x$") then decode_error(s, j, "bad \\u escape") end
        local cp = tonumber(hex, 16)
        j = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF and s:sub(j, j + 1) == "\\u" then
          local lo = tonumber(s:sub(j + 2, j + 5), 16)
          if lo and lo >= 0xDC00 and lo <= 0xDFFF then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            j = j + 6
          end
        end
        out[#out + 1] = utf8.char(cp)
      else
        decode_error(s, j, "bad escape")
      end
    elseif c:byte() < 32 then
      decode_error(s, j, "control character in string")
    else
      local k = s:find('[%c"\\]', j) or #s + 1
      out[#out + 1] = s:sub(j, k - 1)
      j = k
    end
  end
end

parse = function(s, i, depth)
  if depth > 200 then decode_error(s, i, "nesting too deep") end
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    local obj = M.object({})
    i = skip(s, i + 1)
    if s:sub(i, i) == "}" then return obj, i + 1 end
    while true do
      if s:sub(i, i) ~= '"' then decode_error(s, i, "object key expected") end
      local k
      k, i = parse_string(s, i)
      i = skip(s, i)
      if s:sub(i, i) ~= ":" then decode_error(s, i, "':' expected") end
      local v
      v, i = parse(s, i + 1, depth + 1)
      obj[k] = v
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "}" then return obj, i + 1 end
      if d ~= "," then decode_error(s, i, "',' or '}' expected") end
      i = skip(s, i + 1)
    end
  elseif c == "[" then
    local arr, n = {}, 0
    i = skip(s, i + 1)
    if s:sub(i, i) == "]" then return arr, i + 1 end
    while true do
      local v
      v, i = parse(s, i, depth + 1)
      n = n + 1
      arr[n] = v
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "]" then return arr, i + 1 end
      if d ~= "," then decode_error(s, i, "',' or ']' expected") end
      i = i + 1
    end
  elseif c == '"' then
    return parse_string(s, i)
  elseif s:find("^true", i) then
    return true, i + 4
  elseif s:find("^false", i) then
    return false, i + 5
  elseif s:find("^null", i) then
    return M.null, i + 4
  else
    local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
    if not num or num == "" or num == "-" then decode_error(s, i, "value expected") end
    local v = math.tointeger(tonumber(num)) or tonumber(num)
    if not v then decode_error(s, i, "bad number") end
    return v, i + #num
  end
end

-- decode(string) -> value (null as json.null)
function M.decode(s)
  if type(s) ~= "string" then error("json: string expected, got " .. type(s), 2) end
  local v, i = parse(s, 1, 0)
  i = skip(s, i)
  if i <= #s then decode_error(s, i, "trailing characters") end
  return v
end

return M
