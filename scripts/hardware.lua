-- scripts/hardware.lua: the per-layer hardware cost table (docs/hardware.md) of a network, and how it
-- fares against the paper's constraint presets (docs/search.md).
--   neuronas run scripts/hardware.lua [--bits 8] [--mode neuronas|spikesim] [--device rram|sram]
--       [--timesteps 5] [--scope features|all] [--preset cifar100] [--cellA G --cellB G]
-- With --cellA/--cellB (needs nn.net) it costs that genotype's network; otherwise a hand-written
-- layer list: the cifar100 preset with every cell edge conv3x3 (docs/model.md), the top of the
-- docs/hardware.md cross-check range (124.5 mm^2, 622 ms, 1968 uJ at FxP8).
local nn = require("neuronas")
local C = require("neuronas.constraints")

local cli = require("neuronas.cli")
local L = require("neuronas.limits")

local spec = {
  { name = "bits", type = "integer", default = L.bits.default, range = L.bits, help = "weight precision FxP-n" },
  { name = "mode", type = "choice", choices = { "neuronas", "spikesim" }, default = "neuronas", help = "hardware model mode" },
  { name = "device", type = "choice", choices = { "rram", "sram" }, default = "rram", help = "crossbar device" },
  { name = "timesteps", type = "integer", default = 5, range = L.hw_timesteps, help = "SNN timesteps T" },
  { name = "scope", type = "choice", choices = { "features", "all" }, default = "features",
    help = "layers costed: features (stem, cells, downconv) or all (with the classifier)" },
  { name = "preset", type = "choice", choices = { "fashion-mnist", "cifar10", "cifar100", "tinyimagenet" },
    default = "cifar100", help = "network preset of --cellA/--cellB" },
  { name = "cellA", type = "string", metavar = "G", help = "cell A genotype, any form nn.cell reads (102101, names, SNASNet's)" },
  { name = "cellB", type = "string", metavar = "G", help = "cell B genotype (default: cell A)" },
}
local opt = cli.parse(arg or {}, spec, { name = "hardware.lua",
  usage = "neuronas run hardware.lua [--bits N] [--mode M] [--device D] [--timesteps T] [--scope S]"
    .. " [--preset P] [--cellA G --cellB G] [--help]",
  description = "The per-layer hardware cost table of a network, checked against the paper presets." })

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
  -- genotypes stay strings (a bare "102101" is NeuroNAS digits, not a number)
  local ok, net = pcall(nn.net, { preset = opt.preset, cellA = opt.cellA or opt.cellB, cellB = opt.cellB or opt.cellA })
  if not ok then cli.fail({ name = "hardware.lua", usage = "neuronas run hardware.lua --help" }, tostring(net)) end
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
