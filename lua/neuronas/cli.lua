-- neuronas/cli.lua: flag parsing for the bundled scripts. A script declares its flags;
-- bad input prints one line and a usage line and exits 2 (the documented CLI contract).
--   local flags = cli.parse(arg, spec, { usage = "...", name = "neuronas.lua" })
-- spec entries: { name, type = "number"|"integer"|"string"|"boolean"|"choice", default, help,
--                 choices = {...}, range = limits.X (or min =, max =, gt =),
--                 output = true (a file the script writes: checked writable at parse time) }
-- Every number must be finite and within its range (neuronas.limits), checked here, at parse
-- time; an argument that is not a flag is an error unless opts.positional; `--help` prints the
-- flags with their ranges; `--debug` (any script) makes an error show its Lua traceback.
local core = require("neuronas.core")
local limits = require("neuronas.limits")

local M = {}

local function die(opts, msg)
  io.stderr:write(string.format("%s: %s\nusage: %s\n", opts.name or "neuronas", msg, opts.usage or ""))
  os.exit(2)
end

-- Reports a usage error the documented way: one line, the usage line, exit status 2.
function M.fail(opts, msg) die(opts, msg) end

local function range_of(f)
  if f.range then return f.range end
  if f.min or f.max or f.gt then return { min = f.min, max = f.max, gt = f.gt } end
  return nil
end

-- Help text listing every flag with its default and range.
function M.help(spec, opts)
  local lines = { "usage: " .. (opts.usage or ""), "" }
  if opts.description then lines[#lines + 1] = opts.description; lines[#lines + 1] = "" end
  for _, f in ipairs(spec) do
    local head = "  --" .. f.name .. (f.type ~= "boolean" and (" " .. (f.metavar or f.type:upper())) or "")
    local notes = {}
    if f.choices then notes[#notes + 1] = table.concat(f.choices, "|") end
    local r = limits.describe(range_of(f))
    if r then notes[#notes + 1] = r end
    if f.default ~= nil then notes[#notes + 1] = "default " .. tostring(f.default) end
    local tail = #notes > 0 and (" (" .. table.concat(notes, "; ") .. ")") or ""
    lines[#lines + 1] = string.format("%-28s %s%s", head, f.help or "", tail)
  end
  lines[#lines + 1] = string.format("%-28s %s", "  --debug", "show the Lua traceback of an error")
  lines[#lines + 1] = string.format("%-28s %s", "  --help", "this text")
  return table.concat(lines, "\n") .. "\n"
end

-- Levenshtein distance between two short strings.
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- The valid flag nearest to an unknown name: the only flag it begins, else the closest by edit
-- distance when at most a third of the name (at least 1) differs; nil when none is close.
function M.nearest(name, spec)
  local names = { "help", "debug" }
  for _, f in ipairs(spec) do names[#names + 1] = f.name end
  local prefixed = {}
  for _, n in ipairs(names) do
    if #name >= 2 and n:sub(1, #name) == name then prefixed[#prefixed + 1] = n end
  end
  if #prefixed == 1 then return prefixed[1] end
  local best, bestd = nil, math.max(1, #name // 3) + 1
  for _, n in ipairs(names) do
    local d = distance(name, n)
    if d < bestd then best, bestd = n, d end
  end
  return best
end

-- Parses args (a list of strings) -> flags table (defaults filled), positional list.
-- `--help` prints help and exits 0. Errors exit 2 with a usage line. With opts.noexit, errors
-- are raised as Lua errors instead (for tests).
function M.parse(args, spec, opts)
  opts = opts or {}
  local fail = opts.noexit and function(_, msg) error(msg, 0) end or die
  local by = {}
  for _, f in ipairs(spec) do by[f.name] = f end
  local flags, pos = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--help" or a == "-h" then
      if opts.noexit then error("help", 0) end
      io.stdout:write(M.help(spec, opts))
      os.exit(0)
    end
    local name, val = a:match("^%-%-([%w%-_]+)=(.*)$")
    if not name then name = a:match("^%-%-([%w%-_]+)$") end
    if name then
      local f = by[name]
      if not f and name == "debug" and val == nil then
        debug.getregistry()["neuronas.debug"] = true
        goto continue
      end
      if not f and (name == "debug" or name == "help") then fail(opts, string.format("flag '--%s' takes no value", name)) end
      if not f then
        local near = M.nearest(name, spec)
        fail(opts, string.format("unknown flag '--%s'%s", name, near and (" (did you mean --" .. near .. "?)") or ""))
      end
      if f.type == "boolean" then
        if val ~= nil then fail(opts, string.format("flag '--%s' takes no value", name)) end
        flags[name] = true
      else
        if val == nil then
          i = i + 1
          val = args[i]
          if val == nil then fail(opts, string.format("flag '--%s' needs a value", name)) end
          -- "--json --quiet": the next flag is not a value (a value that starts so is written --json=VALUE)
          if val:match("^%-%-%a") then
            fail(opts, string.format("flag '--%s' needs a value, got the flag '%s' (write --%s=%s for that value)", name,
              val, name, val))
          end
        end
        local v
        if f.type == "number" then
          v = tonumber(val)
          if not v or v ~= v or v == math.huge or v == -math.huge then
            fail(opts, string.format("flag '--%s': finite number expected, got '%s'", name, val))
          end
        elseif f.type == "integer" then
          v = math.tointeger(tonumber(val))
          if not v then fail(opts, string.format("flag '--%s': integer expected, got '%s'", name, val)) end
        elseif f.type == "choice" then
          for _, c in ipairs(f.choices) do if c == val then v = val end end
          if not v then
            fail(opts, string.format("flag '--%s': one of %s expected, got '%s'", name, table.concat(f.choices, "|"), val))
          end
        else
          v = val
        end
        local r = range_of(f)
        if r and not limits.contains(r, v) then
          local what = limits.describe(r)
          fail(opts, string.format("flag '--%s': value %s expected, got '%s'", name,
            (r.min and r.max) and ("in " .. what) or what, val))
        end
        flags[name] = v
      end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      fail(opts, string.format("unknown flag '%s'", a))
    elseif not opts.positional then
      fail(opts, string.format("unexpected argument '%s' (every argument is a --flag; see --help)", a))
    else
      pos[#pos + 1] = a
    end
    ::continue::
    i = i + 1
  end
  for _, f in ipairs(spec) do
    if flags[f.name] == nil and f.default ~= nil then flags[f.name] = f.default end
  end
  for _, f in ipairs(spec) do
    if f.output and flags[f.name] then M.check_writable(flags[f.name], f.name, opts) end
  end
  return flags, pos
end

-- Checks at start that a report or journal file can be written (a run must not fail at its end
-- for a path it could have refused at once): a directory, a missing folder or no permission is a
-- usage error naming the flag and the path. The file itself is left as it was (created and
-- removed again when absent), and its temporary twin PATH.tmp (atomic writes) must be creatable.
function M.check_writable(path, flag, opts)
  local fail = opts.noexit and function(_, msg) error(msg, 0) end or die
  for _, p in ipairs({ path, path .. ".tmp" }) do
    -- the kind from stat, without opening: a pipe's open would wait for a reader
    local kind, _, reason = core.file_kind(p)
    if kind == "folder" then fail(opts, string.format("--%s %s: is a directory (a file path expected)", flag, p)) end
    if kind == "other" then fail(opts, string.format("--%s %s: not a regular file (a file path expected)", flag, p)) end
    do
      local f <close>, err = io.open(p, "a")
      if not f then fail(opts, string.format("--%s: cannot write %s", flag, tostring(err))) end
    end
    if reason == "missing" then os.remove(p) end
  end
end

return M
