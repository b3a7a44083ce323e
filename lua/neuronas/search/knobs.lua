-- neuronas/search/knobs.lua: hardware knobs a candidate may carry next to its cells (docs/search.md,
-- "Hardware co-search"): { cellA, cellB, hw = { xbar =, device_bits =, adc_bits = }, bits =,
-- timesteps = }. A candidate without them is costed and scored with the setup's chip, bits and T.
local L = require("neuronas.limits")
local M = {}

-- The chip fields a candidate may set (nn.ela fields).
M.HW = { xbar = true, device_bits = true, adc_bits = true }

local function is_int(v, lo, hi) return math.type(v) == "integer" and v >= lo and v <= hi end

-- Raises naming the field when a candidate's knobs are malformed.
function M.check(cand)
  if cand.hw ~= nil then
    if type(cand.hw) ~= "table" then error("candidate: field 'hw': table expected, got " .. type(cand.hw), 3) end
    for k, v in pairs(cand.hw) do
      if not M.HW[k] then
        error(string.format("candidate: field 'hw.%s' unknown (expected: adc_bits, device_bits, xbar)", tostring(k)), 3)
      end
      if not is_int(v, 1, 1 << 20) then
        error(string.format("candidate: field 'hw.%s': positive integer expected, got %s", k, tostring(v)), 3)
      end
    end
  end
  if cand.bits ~= nil and not is_int(cand.bits, L.bits.min, L.bits.max) then
    error("candidate: field 'bits': integer in " .. L.describe(L.bits) .. " expected, got " .. tostring(cand.bits), 3)
  end
  if cand.timesteps ~= nil and not is_int(cand.timesteps, 1, 1 << 20) then
    error("candidate: field 'timesteps': positive integer expected, got " .. tostring(cand.timesteps), 3)
  end
end

function M.has(cand) return cand.hw ~= nil or cand.bits ~= nil or cand.timesteps ~= nil end

-- The knobs as text, sorted by name ("adc_bits=4 bits=6 device_bits=2 timesteps=4 xbar=128");
-- "" for a candidate without knobs.
function M.text(cand)
  if not M.has(cand) then return "" end
  M.check(cand) -- a malformed hw is named, not iterated
  local kv = {}
  for k, v in pairs(cand.hw or {}) do kv[#kv + 1] = k .. "=" .. tostring(v) end
  if cand.bits then kv[#kv + 1] = "bits=" .. cand.bits end
  if cand.timesteps then kv[#kv + 1] = "timesteps=" .. cand.timesteps end
  table.sort(kv)
  return table.concat(kv, " ")
end

-- The knobs a search may vary, in the order its draws visit them, and the values searched by
-- default (crossbar rows, bits per cell, ADC bits, weight bits, T; docs/search.md).
M.ORDER = { "xbar", "device_bits", "adc_bits", "bits", "timesteps" }
M.DEFAULTS = {
  xbar = { 32, 64, 128 }, device_bits = { 1, 2, 4 }, adc_bits = { 3, 4, 5 },
  bits = { 4, 6, 8 }, timesteps = { 3, 4, 5 },
}

-- A candidate's value of knob k (nil when it does not carry it), and setting it.
function M.get(cand, k)
  if M.HW[k] then return cand.hw and cand.hw[k] end
  return cand[k]
end
function M.set(cand, k, v)
  if M.HW[k] then
    cand.hw = cand.hw or {}
    cand.hw[k] = v
  else
    cand[k] = v
  end
end

-- A candidate's cells and knobs in a new table (its hw table copied, not shared).
function M.copy(cand)
  local c = { cellA = cand.cellA, cellB = cand.cellB, bits = cand.bits, timesteps = cand.timesteps }
  if cand.hw then
    c.hw = {}
    for k, v in pairs(cand.hw) do c.hw[k] = v end
  end
  return c
end

-- A knob space { name = { values... } } checked (known names, non-empty lists of legal values,
-- no value twice) -> list of { name =, values = } in M.ORDER. fname names the caller's option.
function M.space(spec, fname)
  local out = {}
  if spec == nil then return out end
  if type(spec) ~= "table" then error(string.format("%s: table of knob value lists expected, got %s", fname, type(spec)), 3) end
  for k in pairs(spec) do
    if not (M.HW[k] or k == "bits" or k == "timesteps") then
      error(string.format("%s: unknown knob '%s' (expected: %s)", fname, tostring(k), table.concat(M.ORDER, ", ")), 3)
    end
  end
  for _, k in ipairs(M.ORDER) do
    local vs = spec[k]
    if vs ~= nil then
      if type(vs) ~= "table" or #vs < 1 then
        error(string.format("%s: knob '%s': non-empty list of values expected", fname, k), 3)
      end
      local seen = {}
      for i, v in ipairs(vs) do
        local ok, err = pcall(M.check, M.HW[k] and { hw = { [k] = v } } or { [k] = v })
        if not ok then error(string.format("%s: knob '%s' value %d: %s", fname, k, i, (tostring(err):gsub("^[^:]*:%d+: ", ""):gsub("^candidate: ", ""))), 3) end
        if seen[v] then error(string.format("%s: knob '%s': value %s given twice", fname, k, tostring(v)), 3) end
        seen[v] = true
      end
      out[#out + 1] = { name = k, values = vs }
    end
  end
  return out
end

-- The knobs of a text as M.text writes it ("bits=6 xbar=128"), set on cand (a new table when
-- nil); returns cand. Words that are not a known knob with an integer value are left out.
function M.parse(text, cand)
  cand = cand or {}
  for k, v in text:gmatch("([%w_]+)=(%-?%d+)") do
    if M.HW[k] or k == "bits" or k == "timesteps" then M.set(cand, k, math.tointeger(tonumber(v))) end
  end
  return cand
end

-- The chip of a candidate: a copy of base with its hw fields. The ADC model: a conversion's energy
-- and the ADC's area double per bit (the Walden figure of merit, E = FoM 2^bits, and a SAR ADC's
-- capacitor array of 2^bits unit capacitors), from base's figures at base.adc_bits (Table I: 4 bits).
function M.hardware(base, hw)
  if not hw or next(hw) == nil then return base end
  local over = {}
  for k, v in pairs(hw) do over[k] = v end
  if hw.adc_bits then
    local scale = 2.0 ^ (hw.adc_bits - base.adc_bits)
    over.e_adc_pj, over.a_adc_um2 = base.e_adc_pj * scale, base.a_adc_um2 * scale
  end
  return base:copy(over)
end

return M
