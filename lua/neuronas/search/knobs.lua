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
  local kv = {}
  for k, v in pairs(cand.hw or {}) do kv[#kv + 1] = k .. "=" .. tostring(v) end
  if cand.bits then kv[#kv + 1] = "bits=" .. cand.bits end
  if cand.timesteps then kv[#kv + 1] = "timesteps=" .. cand.timesteps end
  table.sort(kv)
  return table.concat(kv, " ")
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
