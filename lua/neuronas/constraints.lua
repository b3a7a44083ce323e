-- neuronas/constraints.lua: hardware constraint sets for the search (docs/search.md).
--
--   local C = require("neuronas.constraints")
--   local set = C.new{
--     memory = 10e6, area = 1000, latency = 500, energy = 1000,   -- params, mm^2, ms, uJ
--     tiles = 40,                                                  -- any numeric cost field
--     peak_power = { fn = function(cost, layers) return watts end, max = 2, unit = "W" },
--     fits = function(cost, layers) return ok, why end,            -- a predicate
--   }
--   local feasible, records, total = set:check(cost, layers)
--
-- A record is { name, value, limit, ok, violation, unit[, why] }; for a limit,
-- violation = (value - limit) / limit (negative: slack), for a predicate 0 (holds) or 1.
-- total = the sum of the positive violations: 0 when feasible, for ranking nearest misses.
-- Records come in a fixed order (memory, area, latency, energy, then the other names sorted)
-- and are also indexed by name (records.area). Bad entries raise naming the constraint.
local M = {}

-- The paper presets (docs/search.md) (memory in weight parameters, area mm^2, latency ms, energy uJ).
M.presets = {
  neuronas = { memory = 10e6, area = 1000, latency = 500, energy = 1000 },
  hasnas = { memory = 4e6, area = 100, latency = 400, energy = 120 },
}

-- The four named limits of docs/search.md and the cost fields (nn.ela's evaluate) they read.
local NAMED = {
  memory = { field = "memory_params", unit = "params" },
  area = { field = "area_mm2", unit = "mm^2" },
  latency = { field = "latency_ms", unit = "ms" },
  energy = { field = "energy_uj", unit = "uJ" },
}
local NAMED_ORDER = { "memory", "area", "latency", "energy" }

-- Other numeric fields of a cost table usable by name (e.g. tiles = 40).
local COST_FIELDS = {
  memory_params = "params", memory_bits = "bits", memory_bytes = "bytes", tiles = "tiles",
  pes = "PEs", xbars = "crossbars", n_layers = "layers", area_mm2 = "mm^2", energy_uj = "uJ",
  latency_ms = "ms", area_um2 = "um^2", energy_pj = "pJ", latency_ns = "ns",
  energy_active_uj = "uJ", -- docs/hardware.md "Activity-aware energy" (setup.activity)
}
local COST_ORDER = { "memory_params", "memory_bits", "memory_bytes", "tiles", "pes", "xbars",
  "n_layers", "area_mm2", "energy_uj", "latency_ms", "area_um2", "energy_pj", "latency_ns", "energy_active_uj" }

local TABLE_KEYS = { fn = true, max = true, unit = true, doc = true }

local function sorted_keys(t)
  local k = {}
  for n in pairs(t) do k[#k + 1] = n end
  table.sort(k)
  return k
end

local function fmt_num(v)
  if math.type(v) == "integer" or (v == math.floor(v) and math.abs(v) < 2 ^ 53) then
    return string.format("%d", v)
  end
  return string.format("%.6g", v)
end

local function valid_limit(v)
  return type(v) == "number" and v == v and v > 0 and v < math.huge
end

-- One entry -> a constraint record template, or nil, message.
local function parse_entry(name, v)
  local c = { name = name }
  local fields_hint = "memory, area, latency, energy, " .. table.concat(COST_ORDER, ", ")
  local function field_of()
    if NAMED[name] then return NAMED[name].field, NAMED[name].unit end
    if COST_FIELDS[name] then return name, COST_FIELDS[name] end
    return nil
  end
  if type(v) == "number" then
    c.field, c.unit = field_of()
    if not c.field then
      return nil, string.format("unknown cost field '%s' (expected: %s; or a predicate function,"
        .. " or { fn = function(cost, layers) ... end, max = limit })", name, fields_hint)
    end
    if not valid_limit(v) then
      return nil, string.format("'%s': limit must be a positive finite number, got %s", name,
        tostring(v))
    end
    c.kind, c.max = "field", v
  elseif type(v) == "function" then
    c.kind, c.fn, c.unit = "predicate", v, nil
  elseif type(v) == "table" then
    for _, k in ipairs(sorted_keys(v)) do
      if not TABLE_KEYS[k] then
        return nil, string.format("'%s': unknown key '%s' (expected: fn, max, unit, doc)", name,
          tostring(k))
      end
    end
    if v.fn ~= nil and type(v.fn) ~= "function" then
      return nil, string.format("'%s': fn must be a function, got %s", name, type(v.fn))
    end
    if not valid_limit(v.max) then
      return nil, string.format("'%s': max must be a positive finite number, got %s", name,
        tostring(v.max))
    end
    if v.unit ~= nil and type(v.unit) ~= "string" then
      return nil, string.format("'%s': unit must be a string, got %s", name, type(v.unit))
    end
    if v.doc ~= nil and type(v.doc) ~= "string" then
      return nil, string.format("'%s': doc must be a string, got %s", name, type(v.doc))
    end
    c.max, c.doc = v.max, v.doc
    if v.fn then
      c.kind, c.fn, c.unit = "fn", v.fn, v.unit
    else
      local f, unit = field_of()
      if not f then
        return nil, string.format("unknown cost field '%s' (expected: %s; or give fn)", name,
          fields_hint)
      end
      c.kind, c.field, c.unit = "field", f, v.unit or unit
    end
  else
    return nil, string.format("'%s': number, function or table expected, got %s", name, type(v))
  end
  return c
end

local Set = {}
Set.__name = "neuronas.ConstraintSet"
-- set.<name> reads an entry back as it was given (set.memory -> 10e6), so code that treats a
-- set like its spec table keeps working; methods take precedence.
Set.__index = function(t, k)
  local m = Set[k]
  if m ~= nil then return m end
  return rawget(t, "entries")[k]
end

-- C.new(spec) -> constraint set. spec: name = limit | predicate | { fn =, max =, unit =, doc = };
-- name = false leaves the name out (handy over a preset). An existing set is returned as is.
function M.new(spec)
  if getmetatable(spec) == Set then return spec end
  if spec == nil then spec = {} end
  if type(spec) ~= "table" then
    error(string.format("bad argument #1 to 'new' (table of constraints expected, got %s)",
      type(spec)), 2)
  end
  local list, named, other, entries = {}, {}, {}, {}
  for k, v in pairs(spec) do
    if type(k) ~= "string" then
      error(string.format("constraints: key %s is not a name (write name = limit)", tostring(k)), 2)
    end
    if v ~= false then
      local c, msg = parse_entry(k, v)
      if not c then error("constraints: " .. msg, 2) end
      if NAMED[k] then named[k] = c else other[#other + 1] = c end
      entries[k] = v
    end
  end
  for _, n in ipairs(NAMED_ORDER) do list[#list + 1] = named[n] end
  table.sort(other, function(a, b) return a.name < b.name end)
  for _, c in ipairs(other) do list[#list + 1] = c end
  return setmetatable({ list = list, entries = entries }, Set)
end

-- C.preset(name[, extra]) -> a plain spec table: the docs/search.md preset plus/over extra's entries
-- (extra's false removes one). Pass it to C.new or as a search's `constraints`.
function M.preset(name, extra)
  local p = M.presets[name]
  if not p then
    error(string.format("constraints: unknown preset '%s' (expected: %s)", tostring(name),
      table.concat(sorted_keys(M.presets), ", ")), 2)
  end
  if extra ~= nil and type(extra) ~= "table" then
    error(string.format("bad argument #2 to 'preset' (table expected, got %s)", type(extra)), 2)
  end
  local t = {}
  for k, v in pairs(p) do t[k] = v end
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

function M.is_set(x) return getmetatable(x) == Set end

-- set:check(cost[, layers]) -> feasible, records, total (see the header).
-- Raises when the cost lacks a field a limit reads, or a function returns a bad value.
function Set:check(cost, layers)
  if type(cost) ~= "table" then
    error(string.format("bad argument #1 to 'check' (cost table expected, got %s)", type(cost)), 2)
  end
  local records, feasible, total = {}, true, 0
  for _, c in ipairs(self.list) do
    local r = { name = c.name, limit = c.max, unit = c.unit }
    if c.kind == "predicate" then
      local ok, res, why = pcall(c.fn, cost, layers)
      if not ok then error(string.format("constraint '%s': %s", c.name, tostring(res)), 0) end
      if type(res) ~= "boolean" then
        error(string.format("constraint '%s': predicate must return a boolean, got %s (for a"
          .. " cost, write { fn = f, max = limit })", c.name, type(res)), 0)
      end
      r.value, r.ok, r.violation = res, res, res and 0 or 1
      if why ~= nil then r.why = tostring(why) end
    else
      local v
      if c.kind == "field" then
        v = cost[c.field]
        if type(v) ~= "number" then
          error(string.format("constraint '%s': cost field '%s' must be a number, got %s", c.name,
            c.field, type(v)), 0)
        end
      else
        local ok, res = pcall(c.fn, cost, layers)
        if not ok then error(string.format("constraint '%s': %s", c.name, tostring(res)), 0) end
        if type(res) ~= "number" or res ~= res or res == math.huge or res == -math.huge then
          error(string.format("constraint '%s': fn must return a finite number, got %s", c.name,
            type(res) == "number" and tostring(res) or type(res)), 0)
        end
        v = res
      end
      r.value, r.ok = v, v <= c.max
      r.violation = (v - c.max) / c.max
    end
    if not r.ok then
      feasible = false
      total = total + math.max(r.violation, 0)
    end
    records[#records + 1] = r
    records[c.name] = r
  end
  return feasible, records, total
end

-- set:spec() -> a copy of the entries as given (a plain table C.new accepts)
function Set:spec()
  local t = {}
  for k, v in pairs(self.entries) do t[k] = v end
  return t
end

-- set:subset{ "memory", ... } -> a new set with only those constraints (absent names ignored),
-- e.g. the memory-only stage 1 of Alg. 1 (docs/search.md)
function Set:subset(names)
  if type(names) ~= "table" then
    error(string.format("bad argument #1 to 'subset' (list of names expected, got %s)",
      type(names)), 2)
  end
  local t = {}
  for _, n in ipairs(names) do t[n] = self.entries[n] end
  return M.new(t)
end

-- set:feasible(cost[, layers]) -> boolean
function Set:feasible(cost, layers) return (self:check(cost, layers)) end

-- set:names() -> the constraint names in check order
function Set:names()
  local t = {}
  for i, c in ipairs(self.list) do t[i] = c.name end
  return t
end

-- set:limits() -> { name = limit } for the numeric constraints
function Set:limits()
  local t = {}
  for _, c in ipairs(self.list) do
    if c.max then t[c.name] = c.max end
  end
  return t
end

-- set:describe() -> one line per constraint, e.g. "area <= 1000 mm^2 (cost.area_mm2)"
-- One line per constraint, in the set's order (a doc or a unit may itself hold newlines).
function Set:describe_lines()
  local out = {}
  for _, c in ipairs(self.list) do
    local s
    if c.kind == "predicate" then
      s = string.format("%s: Lua predicate", c.name)
    else
      s = string.format("%s <= %s%s (%s)", c.name, fmt_num(c.max), c.unit and (" " .. c.unit) or "",
        c.kind == "field" and ("cost." .. c.field) or "Lua function")
    end
    if c.doc then s = s .. " -- " .. c.doc end
    out[#out + 1] = s
  end
  return out
end

function Set:describe()
  if #self.list == 0 then return "no constraints" end
  return table.concat(self:describe_lines(), "\n")
end

function Set:__tostring()
  return string.format("neuronas.ConstraintSet (%d): %s", #self.list,
    table.concat(self:names(), ", "))
end

-- C.format(records) -> text table of a check's records (name, value, limit, ok, violation).
function M.format(records)
  local out = { string.format("%-14s %14s %14s %-5s %9s", "constraint", "value", "limit", "ok",
    "violation") }
  for _, r in ipairs(records) do
    local value = type(r.value) == "number" and fmt_num(r.value) or tostring(r.value)
    out[#out + 1] = string.format("%-14s %14s %14s %-5s %8.1f%%%s", r.name, value,
      r.limit and fmt_num(r.limit) or "-", tostring(r.ok), 100 * r.violation,
      r.why and ("  " .. r.why) or "")
  end
  return table.concat(out, "\n")
end

return M
