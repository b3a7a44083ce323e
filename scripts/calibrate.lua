-- scripts/calibrate.lua: the cost distribution of a preset's 729 (c, c) networks under the default
-- hardware model (docs/hardware.md) at a precision: min, quartiles, max of memory, area, latency, energy.
-- The fashion-mnist default limits of scripts/neuronas.lua (neuronas.app SMALL) are its medians.
--   neuronas run calibrate.lua [--preset P] [--bits N]
local nn = require("neuronas")
local cli = require("neuronas.cli")
local flags = cli.parse({ ... }, {
  { name = "preset", type = "choice", choices = { "fashion-mnist", "cifar10", "cifar100", "tinyimagenet" }, default = "fashion-mnist" },
  { name = "bits", type = "integer", default = require("neuronas.limits").bits.default,
    range = require("neuronas.limits").bits },
}, { name = "calibrate.lua", usage = "neuronas run calibrate.lua [--preset P] [--bits N]" })

local hw = nn.ela({ mode = "neuronas" })
local space = nn.space("neuronas")
local fields = { "memory_params", "area_mm2", "latency_ms", "energy_uj" }
local vals = {}
for _, f in ipairs(fields) do vals[f] = {} end
for i = 1, space:size() do
  local c = space:cell(i)
  local net = nn.net({ preset = flags.preset, cellA = c, cellB = c, seed = 1 })
  local cost = hw:evaluate(net, { bits = flags.bits })
  net:close()
  for _, f in ipairs(fields) do vals[f][i] = cost[f] end
end
local function q(list, p)
  local i = math.max(1, math.min(#list, math.floor(p * (#list - 1) + 1.5)))
  return list[i]
end
print(string.format("%s preset, FxP%d, %d networks (c, c):", flags.preset, flags.bits, space:size()))
print(string.format("%-14s %12s %12s %12s %12s %12s", "cost", "min", "25%", "median", "75%", "max"))
for _, f in ipairs(fields) do
  table.sort(vals[f])
  local l = vals[f]
  print(string.format("%-14s %12.6g %12.6g %12.6g %12.6g %12.6g", f, l[1], q(l, 0.25), q(l, 0.5), q(l, 0.75), l[#l]))
end
