-- neuronas/cli.lua: flag parsing for the bundled scripts. A script declares its flags;
-- bad input prints a usage line and exits 2 (the documented CLI contract).
--   local flags = cli.parse(arg, spec, { usage = "...", name = "neuronas.lua" })
-- spec entries: { name, type = "number"|"integer"|"string"|"boolean"|"choice", default, help,
--                 choices = {...}, min = }
local M = {}

local function die(opts, msg)
  io.stderr:write(string.format("%s: %s\nusage: %s\n", opts.name or "neuronas", msg, opts.usage or ""))
  os.exit(2)
end

-- Reports a usage error the documented way: one line, the usage line, exit status 2.
function M.fail(opts, msg) die(opts, msg) end

-- Help text listing every flag with its default.
function M.help(spec, opts)
  local lines = { "usage: " .. (opts.usage or ""), "" }
  if opts.description then lines[#lines + 1] = opts.description; lines[#lines + 1] = "" end
  for _, f in ipairs(spec) do
    local head = "  --" .. f.name .. (f.type ~= "boolean" and (" " .. (f.metavar or f.type:upper())) or "")
    local def = f.default ~= nil and string.format(" (default %s)", tostring(f.default)) or ""
    if f.choices then def = string.format(" (%s%s)", table.concat(f.choices, "|"), def ~= "" and "; " .. def:sub(3, -2) or "") end
    lines[#lines + 1] = string.format("%-28s %s%s", head, f.help or "", def)
  end
  return table.concat(lines, "\n") .. "\n"
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
      if not f then fail(opts, string.format("unknown flag '--%s'", name)) end
      if f.type == "boolean" then
        if val ~= nil then fail(opts, string.format("flag '--%s' takes no value", name)) end
        flags[name] = true
      else
        if val == nil then
          i = i + 1
          val = args[i]
          if val == nil then fail(opts, string.format("flag '--%s' needs a value", name)) end
        end
        local v
        if f.type == "number" then
          v = tonumber(val)
          if not v or v ~= v then fail(opts, string.format("flag '--%s': number expected, got '%s'", name, val)) end
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
        if f.min and v < f.min then fail(opts, string.format("flag '--%s': value >= %s expected, got '%s'", name, f.min, val)) end
        if f.max and v > f.max then fail(opts, string.format("flag '--%s': value <= %s expected, got '%s'", name, f.max, val)) end
        flags[name] = v
      end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      fail(opts, string.format("unknown flag '%s'", a))
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  for _, f in ipairs(spec) do
    if flags[f.name] == nil and f.default ~= nil then flags[f.name] = f.default end
  end
  return flags, pos
end

return M
