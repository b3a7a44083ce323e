-- neuronas/search/options.lua: the setup table of a search (defaults and checks) and the small
-- table helpers every search module shares. Unknown option keys are errors listing the valid ones.
local L = require("neuronas.limits")

local M = {}

function M.sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

-- Raises "fname: unknown option 'k' (expected: ...)" for a key of opts not in valid.
function M.check_keys(fname, opts, valid)
  for k in pairs(opts) do
    if valid[k] == nil then
      error(string.format("%s: unknown option '%s' (expected: %s)", fname, tostring(k),
        table.concat(M.sorted_keys(valid), ", ")), 3)
    end
  end
end

function M.copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

-- Builds the constraint set of a setup: a table of limits/predicates (see neuronas.constraints)
-- or an already built set.
function M.constraint_set(spec)
  return require("neuronas.constraints").new(spec or {})
end


local SETUP_KEYS = {
  preset = "", net = "", seed = "", bits = "", rounding = "", quantizer = "", hardware = "",
  constraints = "", data = "", batch = "", ["repeat"] = "", timesteps = "", data_seed = "",
  journal = "", resume = "", logger = "", pipeline = "", prefix_cache = "",
  label = "", threads = "", variation = "", activity = "",
}
M.SETUP_KEYS = SETUP_KEYS

-- "number 5", "string \"x\"", "table": a value for an error message.
function M.describe(v)
  if type(v) == "string" then return string.format("string %q", v) end
  if type(v) == "number" or type(v) == "boolean" then return type(v) .. " " .. tostring(v) end
  return type(v)
end

-- Whether v is a function or has a __call metamethod.
local function callable(v)
  local mt = type(v) ~= "function" and getmetatable(v)
  return type(v) == "function" or (type(mt) == "table" and mt.__call ~= nil)
end

-- Whether v has a callable field `name` (read under pcall: a userdata's __index may raise).
local function has_method(v, name)
  if type(v) ~= "table" and type(v) ~= "userdata" then return false end
  local ok, f = pcall(function() return v[name] end)
  return ok and callable(f)
end

-- The object options of a setup: each nil or of the kind the pipeline uses (docs/search.md).
-- Errors name the option and point at setup's caller.
function M.check_objects(s)
  local function bad(k, want)
    error(string.format("search.setup: option '%s': %s expected, got %s", k, want, M.describe(s[k])), 4)
  end
  local hw = s.hardware
  if hw ~= nil and not ((type(hw) == "table" and getmetatable(hw) == nil) or has_method(hw, "evaluate")) then
    bad("hardware", "nn.ela options (a plain table) or an object with an evaluate method (nn.ela)")
  end
  if s.quantizer ~= nil and not has_method(s.quantizer, "apply") then
    bad("quantizer", "an object with an apply method (nn.quantizer)")
  end
  if s.data ~= nil and not has_method(s.data, "batch") then
    bad("data", "a dataset with a batch method (nn.data.open)")
  end
  if s.logger ~= nil and not callable(s.logger) then bad("logger", "a function of each result") end
  if s.net ~= nil and type(s.net) ~= "table" then bad("net", "a table of nn.net options") end
  if s.pipeline ~= nil then
    if type(s.pipeline) ~= "table" then bad("pipeline", "a table with build, cost, score and release functions") end
    for _, k in ipairs({ "build", "cost", "score", "release" }) do
      if not callable(s.pipeline[k]) then
        error(string.format("search.setup: option 'pipeline': field '%s': function expected, got %s", k,
          M.describe(s.pipeline[k])), 3)
      end
    end
  end
  -- the journal's path: the CLI passes its --journal FILE (a non-empty string); false or nil: none
  local j = s.journal
  if j ~= nil and j ~= false and (type(j) ~= "string" or j == "" or j:find("\0", 1, true)) then
    bad("journal", "a file path (non-empty string without NUL bytes) or false")
  end
  for _, k in ipairs({ "resume", "prefix_cache", "activity" }) do
    if s[k] ~= nil and type(s[k]) ~= "boolean" then bad(k, "boolean") end
  end
  for _, k in ipairs({ "preset", "rounding" }) do
    if s[k] ~= nil and type(s[k]) ~= "string" then bad(k, "string") end
  end
end

-- Normalises a setup table: defaults (docs/search.md) and type checks. Returns a new table.
function M.setup(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("search.setup: table expected, got " .. type(opts), 2) end
  if opts._is_setup then return opts end
  M.check_keys("search.setup", opts, SETUP_KEYS)
  local s = M.copy(opts)
  s._is_setup = true
  s.preset = s.preset or "fashion-mnist"
  s.seed = s.seed or 1
  s.bits = s.bits or L.bits.default
  s.rounding = s.rounding or "nearest"
  s.batch = s.batch or 64
  s["repeat"] = s["repeat"] or 1
  s.data_seed = s.data_seed or s.seed
  s.threads = s.threads or 1
  if s.prefix_cache == nil then s.prefix_cache = true end
  -- the ranges of neuronas.limits, as the flags of the same names
  for _, k in ipairs({ "threads", "bits", "batch", "repeat", "timesteps", "seed" }) do
    local v, r = s[k], L[k]
    if v ~= nil and (math.type(v) ~= "integer" or not L.contains(r, v)) then
      error(string.format("search.setup: option '%s': integer %s expected, got %s", k,
        (r.min and r.max) and ("in " .. L.describe(r)) or L.describe(r), tostring(v)), 2)
    end
  end
  if s.data_seed ~= nil and (math.type(s.data_seed) ~= "integer" or not L.contains(L.seed, s.data_seed)) then
    error(string.format("search.setup: option 'data_seed': integer in %s expected, got %s", L.describe(L.seed),
      M.describe(s.data_seed)), 2)
  end
  M.check_objects(s)
  s.constraint_set = M.constraint_set(s.constraints)
  if s.variation ~= nil and type(s.variation) ~= "table" then
    error("search.setup: option 'variation': table expected (docs/variation.md), got " .. type(s.variation), 2)
  end
  -- a limit on the activity-aware energy needs it measured (docs/hardware.md)
  if s.activity == nil and s.constraint_set:limits().energy_active_uj then s.activity = true end
  return s
end

return M
