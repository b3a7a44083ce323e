-- neuronas/search/journal.lua: the search journal (docs/reliability.md, "The journal"): a header
-- line naming the settings digest, then one flushed JSON line per evaluated candidate.
-- `--resume` replays it into the evaluator's cache; a journal written with other settings is
-- refused, naming what differs. Guarantees:
--   * the header is written atomically (temporary file + rename): a journal is absent, or starts
--     with a complete header; an empty journal counts as absent;
--   * every replayed line is checked against the record schema (M.check_record); a bad line is
--     reported (line number, why) and its candidate evaluated again; a torn last line (the run
--     died while writing it) likewise;
--   * when a resumed journal held bad or torn lines, it is first rewritten (again temporary file
--     + rename) with only its good lines, so an append never glues onto a torn line;
--   * every write and flush is checked: a failure raises "cannot write journal 'PATH': <OS
--     error>", and the journal holds only complete lines plus at most one torn last line.
-- Test hook (used by tests/spec/journal_spec.lua, documented in docs/reliability.md):
-- NEURONAS_TEST_KILL_AT=N makes the process SIGKILL itself right after its Nth record append
-- (0: right after the header is in place), N.5 halfway through writing record N+1, and -0.5
-- halfway through writing the header into its temporary file.
local core = require("neuronas.core")
local json = require("neuronas.json")
local digest = require("neuronas.search.digest")

local M = {}

local Journal = {}
Journal.__index = Journal

-- A journal larger than this is refused rather than read whole (a full search's is ~0.5 MB).
M.MAX_BYTES = 1 << 30

-- The digest of a setup and its pipeline (see neuronas.search.digest).
function M.settings_digest(s, p)
  return digest.settings(s, p)
end

local function kill_at()
  local v = os.getenv("NEURONAS_TEST_KILL_AT")
  if v == nil or v == "" then return nil end
  local n = tonumber(v)
  if not n or n < -0.5 or n * 2 ~= math.floor(n * 2) then
    error("NEURONAS_TEST_KILL_AT: a number of records (N or N.5, N >= 0, or -0.5) expected, got '" .. v .. "'", 0)
  end
  return n
end

-- The test hook's SIGKILL of this very process (its pid read from /proc/self/stat).
local function kill_self()
  local f = io.open("/proc/self/stat", "r")
  local pid = f and f:read("n")
  if f then f:close() end
  if pid then os.execute("kill -KILL " .. math.tointeger(pid)) end
  error("NEURONAS_TEST_KILL_AT: could not kill the process", 0)
end

-- Writes text to f and flushes it; raises naming the journal and the OS error on failure.
local function put(f, path, text)
  local ok, err = f:write(text)
  if ok then ok, err = f:flush() end
  if not ok then error(string.format("cannot write journal '%s': %s", path, tostring(err)), 0) end
end

-- Writes one whole line (the hook may stop the process halfway through or right after it).
local function emit(self, f, path, line)
  local at = self.kill_at
  if at and at == self.pos + 0.5 then
    put(f, path, line:sub(1, #line // 2))
    kill_self()
  end
  put(f, path, line)
  self.pos = self.pos + 1
  if at and at == self.pos then kill_self() end
end

-- Writes header + lines to path atomically: a temporary file beside it, renamed over it.
local function write_atomic(self, header, lines)
  local tmp = self.path .. ".tmp"
  local f, err = io.open(tmp, "w")
  if not f then error(string.format("cannot write journal '%s': %s", self.path, tostring(err)), 0) end
  local ok, werr = pcall(function()
    if self.kill_at == -0.5 then
      put(f, self.path, header:sub(1, #header // 2))
      kill_self()
    end
    put(f, self.path, header)
    for _, l in ipairs(lines) do put(f, self.path, l) end
  end)
  local cok, cerr = f:close()
  if ok and not cok then ok, werr = false, string.format("cannot write journal '%s': %s", self.path, tostring(cerr)) end
  if not ok then
    os.remove(tmp)
    error(werr, 0)
  end
  local rok, rerr = os.rename(tmp, self.path)
  if not rok then
    os.remove(tmp)
    error(string.format("cannot write journal '%s': %s", self.path, tostring(rerr)), 0)
  end
  self.pos = 0
  if self.kill_at == 0 then kill_self() end
end

local function open_append(self)
  local f, err = io.open(self.path, "a")
  if not f then error(string.format("cannot write journal '%s': %s", self.path, tostring(err)), 0) end
  self.file = f
end

-- The journal's text, or nil when there is none (absent file); raises naming the path when it
-- cannot be read (a folder, no permission), is not a regular file (a device or a pipe: no end
-- to read up to) or is implausibly large.
local function read_all(path)
  local text, why, reason = core.read_text(path, M.MAX_BYTES)
  if text then return text end
  if reason == "missing" then return nil end
  if reason == "large" then
    error(string.format("%s: too large for a journal (at most %d bytes)", path, M.MAX_BYTES), 0)
  end
  error("cannot read journal " .. why, 0)
end

local SCORE_WORDS = { inf = math.huge, ["-inf"] = -math.huge, nan = 0 / 0 }
local RECORD_KEYS = { key = true, cost = true, score = true, scored = true, seconds = true, variation = true }
-- Cost fields every record carries (those of docs/hardware.md the named limits read).
M.COST_FIELDS = { "memory_params", "area_mm2", "latency_ms", "energy_uj" }

local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end

-- Checks a decoded journal record against the schema: key a non-empty string; cost an object
-- of finite numbers, strings and booleans holding M.COST_FIELDS; scored a boolean
-- (absent: false); score a number or "inf", "-inf", "nan" when scored, else null or absent;
-- seconds a number >= 0 or absent; variation (a robust score) an object of such numbers and a
-- scores list, or absent; no other field. -> true, or nil and why.
function M.check_record(rec)
  if type(rec) ~= "table" or rec == json.null or rec[1] ~= nil then return nil, "not a JSON object" end
  for k in pairs(rec) do
    if not RECORD_KEYS[k] then return nil, string.format("unknown field '%s'", tostring(k)) end
  end
  if type(rec.key) ~= "string" or rec.key == "" then return nil, "field 'key': genotype pair string expected" end
  local cost = rec.cost
  if type(cost) ~= "table" or cost == json.null or cost[1] ~= nil then return nil, "field 'cost': object expected" end
  for _, k in ipairs(M.COST_FIELDS) do
    if not finite(cost[k]) then
      return nil, string.format("field 'cost.%s': finite number expected, got %s", k,
        cost[k] == nil and "nothing" or json.encode(cost[k]))
    end
  end
  for k, v in pairs(cost) do
    local ty = type(v)
    if ty ~= "number" and ty ~= "string" and ty ~= "boolean" then
      return nil, string.format("field 'cost.%s': number, string or boolean expected, got %s", tostring(k),
        v == json.null and "null" or ty)
    end
    if ty == "number" and not finite(v) then
      return nil, string.format("field 'cost.%s': finite number expected, got %s", tostring(k), tostring(v))
    end
  end
  if rec.scored ~= nil and type(rec.scored) ~= "boolean" then return nil, "field 'scored': boolean expected" end
  local s = rec.score
  if rec.scored then
    if type(s) ~= "number" and not (type(s) == "string" and SCORE_WORDS[s]) then
      return nil, string.format("field 'score': number or \"inf\", \"-inf\", \"nan\" expected for a scored candidate, got %s",
        s == nil and "nothing" or json.encode(s))
    end
  elseif s ~= nil and s ~= json.null then
    return nil, "field 'score': null expected for a candidate that was not scored"
  end
  if rec.seconds ~= nil and not (finite(rec.seconds) and rec.seconds >= 0) then
    return nil, "field 'seconds': number >= 0 expected"
  end
  local v = rec.variation
  if v ~= nil then
    if type(v) ~= "table" or v == json.null or v[1] ~= nil then return nil, "field 'variation': object expected" end
    local function num(x) return type(x) == "number" or (type(x) == "string" and SCORE_WORDS[x] ~= nil) end
    for k, x in pairs(v) do
      local ok = num(x)
      if k == "scores" and type(x) == "table" and x ~= json.null then
        ok = true
        for i, y in pairs(x) do ok = ok and math.type(i) == "integer" and num(y) end
      end
      if not ok then
        return nil, string.format("field 'variation.%s': number or \"inf\", \"-inf\", \"nan\" expected", tostring(k))
      end
    end
  end
  return true
end

-- A number as the journal writes it: JSON has no infinities or NaN, which become words.
local function word(v)
  if v ~= v then return "nan" end
  if v == math.huge or v == -math.huge then return v > 0 and "inf" or "-inf" end
  return v
end

-- The robust-score record of a candidate (docs/variation.md) as a line keeps it, and back.
local function variation_out(v)
  if type(v) ~= "table" then return nil end
  local out = {}
  for k, x in pairs(v) do
    if type(x) == "number" then
      out[k] = word(x)
    elseif k == "scores" and type(x) == "table" then
      local l = {}
      for i, y in ipairs(x) do l[i] = word(y) end
      out[k] = l
    end
  end
  return json.object(out)
end

local function variation_in(v)
  if v == nil then return nil end
  local out = {}
  for k, x in pairs(v) do
    if type(x) == "table" then
      local l = {}
      for i, y in ipairs(x) do l[i] = M.as_number(y) end
      out[k] = l
    else
      out[k] = M.as_number(x)
    end
  end
  return out
end

-- A journaled score back to a number ("-inf", "inf", "nan" were written as strings).
function M.as_number(v)
  if type(v) == "string" then return SCORE_WORDS[v] end
  return v
end

-- Where a bad line is reported by default (a line on stderr); a test may replace it.
function M.warn(msg)
  io.stderr:write("neuronas: ", msg, "\n")
  io.stderr:flush()
end

-- Reads a journal for resuming: checks its header against settings, then each line.
-- -> replayed (key -> entry), good (raw lines kept), header line, bad ({ line =, why = })
local function replay(path, text, settings)
  local lines, torn = {}, nil
  local pos = 1
  while true do
    local nl = text:find("\n", pos, true)
    if not nl then
      if pos <= #text then torn = text:sub(pos) end
      break
    end
    lines[#lines + 1] = text:sub(pos, nl - 1)
    pos = nl + 1
  end
  local ok, head = pcall(json.decode, lines[1] or "")
  if not ok or type(head) ~= "table" or head.journal ~= "neuronas" then
    error(string.format("%s: not a neuronas journal (its first line is not a complete journal header)", path), 0)
  end
  if type(head.settings) ~= "table" then
    error(string.format("%s: written with other settings (by an older neuronas, whose journal does not record "
      .. "the data, hardware and constraints); use another journal", path), 0)
  end
  local dok, diff = pcall(digest.differences, head.settings, settings)
  if not dok then
    -- a header no neuronas writes (an infinite number, nesting too deep): not ours to resume
    error(string.format("%s: its header's settings are not a journal's (%s); use another journal", path,
      tostring(diff)), 0)
  end
  if #diff > 0 then
    error(string.format("%s: written with other settings: %s; use the same flags or another journal", path,
      table.concat(diff, "; ")), 0)
  end
  local replayed, good, bad = {}, {}, {}
  for i = 2, #lines do
    local line = lines[i]
    if line:find("%S") then
      local dok, rec = pcall(json.decode, line)
      local why
      if not dok then
        why = "not JSON (" .. tostring(rec) .. ")"
      else
        local vok, vwhy = M.check_record(rec)
        if not vok then why = vwhy end
      end
      if why then
        bad[#bad + 1] = { line = i, why = why }
      else
        good[#good + 1] = line .. "\n"
        replayed[rec.key] = { cost = rec.cost, score = rec.scored and M.as_number(rec.score) or nil,
          scored = rec.scored or nil, seconds = rec.seconds, variation = variation_in(rec.variation),
          from_journal = true }
      end
    end
  end
  if torn then bad[#bad + 1] = { line = #lines + 1, why = "incomplete last line (the run stopped while writing it)" } end
  return replayed, good, lines[1] .. "\n", bad
end

-- journal.open(path, resume, settings[, { warn = fn(msg) }]) -> journal, replayed
-- settings: the digest (M.settings_digest). replayed maps each journaled key to
-- { cost =, score =, scored =, seconds =, from_journal = true } (empty for a new journal).
-- journal.bad lists the lines that were not replayed ({ line =, why = }); each is also passed to
-- warn (default: M.warn, a line on stderr).
function M.open(path, resume, settings, opts)
  opts = opts or {}
  local warn = opts.warn or M.warn
  local self = setmetatable({ path = path, pos = -1, bad = {}, kill_at = kill_at() }, Journal)
  local text = resume and read_all(path) or nil
  if text and text:find("%S") then
    local replayed, good, header, bad = replay(path, text, settings)
    self.bad = bad
    for _, b in ipairs(bad) do
      warn(string.format("%s:%d: %s; its candidate is evaluated again", path, b.line, b.why))
    end
    if #bad > 0 then
      write_atomic(self, header, good)
    else
      self.pos = 0
    end
    open_append(self)
    return self, replayed
  end
  write_atomic(self, json.encode({ journal = "neuronas", version = require("neuronas").version,
    settings = settings }) .. "\n", {})
  open_append(self)
  return self, {}
end

-- Appends one evaluated candidate (non-finite scores as strings: JSON has no inf or nan).
-- Raises "cannot write journal 'PATH': <OS error>" when the line cannot be written and flushed;
-- the journal then refuses further writes.
function Journal:write(key, entry)
  if self.failed then error(self.failed, 0) end
  local score = entry.score
  if score ~= nil then score = word(score) end
  local line = json.encode({ key = key, cost = json.object(M.slim_cost(entry.cost)),
    score = score == nil and json.null or score, scored = entry.scored or false, seconds = entry.seconds,
    variation = variation_out(entry.variation) }) .. "\n"
  local ok, err = pcall(emit, self, self.file, self.path, line)
  if not ok then
    self.failed = err
    pcall(self.file.close, self.file)
    self.file = nil
    error(err, 0)
  end
end

-- Every line was flushed and checked when written: closing has nothing left to report.
function Journal:close()
  if self.file then
    self.file:close()
    self.file = nil
  end
end

-- Cost fields a journal keeps (the per-layer list is recomputed when needed).
function M.slim_cost(cost)
  local c = {}
  for k, v in pairs(cost) do
    local ty = type(v)
    if k ~= "layers" and (ty == "number" or ty == "string" or ty == "boolean") then c[k] = v end
  end
  return c
end

return M
