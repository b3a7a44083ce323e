-- scripts/snasnet.lua: SNASNet's random-search baseline (docs/search.md): `--num` backward cells from
-- SNASNet's sampler, the same cell at both positions, scored without constraints at FxP32 (costs
-- reported). Constraint flags, when given, make it a constrained random search.
local search = require("neuronas.search")
local cli = require("neuronas.cli")
local app = require("neuronas.app")

local spec = app.extend(app.flags(require("neuronas.limits").bits.float), {
  { name = "num", type = "integer", default = 5000, range = require("neuronas.limits").num, help = "cells to sample" },
})
local opts = { name = "snasnet.lua", usage = "neuronas run snasnet.lua [--num N] [--preset P] [--bits N] [--json FILE] [--help]",
  description = "SNASNet baseline: random backward cells, scored by the Hamming-kernel fitness." }
local flags = cli.parse({ ... }, spec, opts)

local constraints = app.constraints(flags, nil)
local data = app.open_data(flags, opts)
local bar, hooks = app.progress(flags, flags.num, "snasnet")
local setup = app.setup(flags, data, constraints)
setup.num, setup.hooks = flags.num, hooks
local rep = search.random(setup)
bar:finish()
os.exit(app.finish(rep, flags, app.settings(flags, data, constraints)))
