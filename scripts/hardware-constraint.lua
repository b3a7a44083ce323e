-- scripts/hardware-constraint.lua: adding a hardware constraint from Lua (docs/search.md).
-- The paper's four limits plus two new ones, each a few lines: an average-power budget computed
-- from the cost, and a predicate that keeps every layer within one tile's ADC-column budget.
--   neuronas run scripts/hardware-constraint.lua
local nn = require("neuronas")
local C = require("neuronas.constraints")
local cli = require("neuronas.cli")

-- no flags: an unknown flag or a stray argument is a usage error, --help says what it does
cli.parse({ ... }, {}, { name = "hardware-constraint.lua", usage = "neuronas run hardware-constraint.lua [--help]",
  description = "The paper's four limits plus an average-power budget and a tiles-per-layer predicate,\n"
    .. "checked on a four-layer FxP8 network (docs/search.md)." })

local set = C.new(C.preset("neuronas", {
  avg_power = { unit = "mW", max = 3, doc = "energy / latency of one inference",
    fn = function(cost) return cost.energy_uj / cost.latency_ms end },   -- uJ/ms = mW
  tiles_per_layer = function(cost)
    for _, l in ipairs(cost.layers) do
      if l.tiles > 8 then return false, string.format("layer %d needs %d tiles", l.index, l.tiles) end
    end
    return true
  end,
}))

local conv = function(d, f, i, o) return { kind = "conv", in_ch = d, out_ch = f, in_dim = i, out_dim = o, k = 3 } end
local layers = { conv(3, 128, 32, 32), conv(128, 128, 32, 32), conv(128, 256, 32, 32), conv(256, 256, 16, 16) }
local cost = nn.ela():evaluate(layers, { bits = 8 })
print(set:describe())
local ok, records, total = set:check(cost, layers)
print(C.format(records))
print(string.format("feasible: %s (total violation %.3f)", tostring(ok), total))
