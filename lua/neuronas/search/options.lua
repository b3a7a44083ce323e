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

-- Normalises a setup table: defaults (docs/search.md) and type checks. Returns a new table.
function M.setup(opts)
  if opts and opts._is_setup then return opts end
  opts = opts or {}
  if type(opts) ~= "table" then error("search.setup: table expected, got " .. type(opts), 2) end
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
  s.constraint_set = M.constraint_set(s.constraints)
  if s.variation ~= nil and type(s.variation) ~= "table" then
    error("search.setup: option 'variation': table expected (docs/variation.md), got " .. type(s.variation), 2)
  end
  -- a limit on the activity-aware energy needs it measured (docs/hardware.md)
  if s.activity == nil and s.constraint_set:limits().energy_active_uj then s.activity = true end
  return s
end

return M
