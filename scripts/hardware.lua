-- scripts/hardware.lua: the per-layer hardware cost table (docs/hardware.md) of a network, and how it
-- fares against the paper's constraint presets (docs/search.md).
--   neuronas run scripts/hardware.lua [--bits 8] [--mode neuronas|spikesim] [--device rram|sram]
--       [--timesteps 5] [--scope features|all] [--preset cifar100] [--cellA G --cellB G]
-- With --cellA/--cellB (needs nn.net) it costs that genotype's network; otherwise a hand-written
-- layer list: the cifar100 preset with every cell edge conv3x3 (docs/model.md), the top of the
-- docs/hardware.md cross-check range (124.5 mm^2, 622 ms, 1968 uJ at FxP8).
local nn = require("neuronas")
local C = require("neuronas.constraints")

local opt = { bits = 8, mode = "neuronas", device = "rram", timesteps = 5, scope = "features",
  preset = "cifar100" }
local args = arg or {}
local i = 1
while i <= #args do
  local k, v = args[i]:match("^%-%-([%w_]+)$"), args[i + 1]
  if not k or v == nil or opt[k] == nil and k ~= "cellA" and k ~= "cellB" then
    io.stderr:write("usage: neuronas run scripts/hardware.lua [--bits N] [--mode M] [--device D]"
      .. " [--timesteps T] [--scope S] [--preset P] [--cellA G --cellB G]\n")
    os.exit(2)
  end
  opt[k] = tonumber(v) or v
  i = i + 2
end

-- The hand-written layer list: stem, cell A (6 conv3x3 edges at C), downconv, cell B (6 at 2C).
local function cifar_all_conv(Cw)
  local L = { { name = "stem.conv", kind = "conv", in_ch = 3, out_ch = Cw, in_dim = 32, out_dim = 32, k = 3 } }
  local edges = { "e01", "e02", "e03", "e12", "e13", "e23" }
  for _, e in ipairs(edges) do
    L[#L + 1] = { name = "cellA." .. e .. ".conv", kind = "conv", in_ch = Cw, out_ch = Cw,
      in_dim = 32, out_dim = 32, k = 3 }
  end
  L[#L + 1] = { name = "downconv.conv", kind = "conv", in_ch = Cw, out_ch = 2 * Cw, in_dim = 32,
    out_dim = 32, k = 3 }
  for _, e in ipairs(edges) do
    L[#L + 1] = { name = "cellB." .. e .. ".conv", kind = "conv", in_ch = 2 * Cw, out_ch = 2 * Cw,
      in_dim = 16, out_dim = 16, k = 3 }
  end
  return L
end

local hw = nn.ela { mode = opt.mode, device = opt.device }
local what, eopts = nil, { timesteps = opt.timesteps, scope = opt.scope }
if opt.cellA or opt.cellB then
  if not nn.net then error("--cellA/--cellB need nn.net (the network part is not built in)", 0) end
  local net = nn.net { preset = opt.preset, cellA = opt.cellA or opt.cellB, cellB = opt.cellB or opt.cellA }
  if nn.quantizer then
    what = nn.quantizer { bits = opt.bits }:apply(net) -- weight_bits() = bits
  else
    what, eopts.bits = net, opt.bits
  end
  print(string.format("network: preset %s, cellA %s, cellB %s", opt.preset,
    tostring(opt.cellA or opt.cellB), tostring(opt.cellB or opt.cellA)))
else
  what, eopts.bits = cifar_all_conv(128), opt.bits
  print("layer list: cifar100 preset (C = 128), every cell edge conv3x3")
end

local cost = hw:evaluate(what, eopts)
print(hw:report(cost))
for _, name in ipairs({ "neuronas", "hasnas" }) do
  local ok, rec, total = C.new(C.presets[name]):check(cost, cost.layers)
  print(string.format("\n%s constraints: %s (total violation %.3f)", name,
    ok and "feasible" or "infeasible", total))
  print(C.format(rec))
end
