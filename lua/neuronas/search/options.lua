-- neuronas/search/options.lua: the setup table of a search (defaults and checks) and the small
-- table helpers every search module shares. Unknown option keys are errors listing the valid ones.
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

-- The memory-only subset used by stage 1 of the paper's two-stage search.
function M.memory_only(spec)
  local C = require("neuronas.constraints")
  local limits = C.is_set(spec) and spec:limits() or spec or {}
  return C.new({ memory = limits.memory })
end

local SETUP_KEYS = {
  preset = "", net = "", seed = "", bits = "", rounding = "", quantizer = "", hardware = "",
  constraints = "", data = "", batch = "", ["repeat"] = "", timesteps = "", data_seed = "",
  journal = "", resume = "", logger = "", pipeline = "", prefix_cache = "",
  label = "", threads = "", variation = "", activity = "",
}

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
  s.bits = s.bits or 8
  s.rounding = s.rounding or "nearest"
  s.batch = s.batch or 64
  s["repeat"] = s["repeat"] or 1
  s.data_seed = s.data_seed or s.seed
  s.threads = s.threads or 1
  if math.type(s.threads) ~= "integer" or s.threads < 1 or s.threads > 256 then
    error("search.setup: option 'threads': integer in 1..256 expected, got " .. tostring(s.threads), 2)
  end
  if s.prefix_cache == nil then s.prefix_cache = true end
  if math.type(s.bits) ~= "integer" or s.bits < 2 or s.bits > 32 then
    error("search.setup: option 'bits': integer in 2..32 expected, got " .. tostring(s.bits), 2)
  end
  if math.type(s.batch) ~= "integer" or s.batch < 2 then
    error("search.setup: option 'batch': integer >= 2 expected, got " .. tostring(s.batch), 2)
  end
  if math.type(s["repeat"]) ~= "integer" or s["repeat"] < 1 then
    error("search.setup: option 'repeat': integer >= 1 expected, got " .. tostring(s["repeat"]), 2)
  end
  if s.timesteps ~= nil and (math.type(s.timesteps) ~= "integer" or s.timesteps < 1) then
    error("search.setup: option 'timesteps': integer >= 1 expected, got " .. tostring(s.timesteps), 2)
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
