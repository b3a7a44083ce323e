-- scripts/neuronas.lua: the main job: NeuroNAS's two-stage hardware-aware cell search (docs/search.md,
-- Alg. 1 with the stage-2 fix) on the embedded default data. `--help` lists the flags.
-- Exit status: 0 an architecture meeting every constraint was found; 3 none was (the report is
-- still written); 2 bad flags; 1 an error; 130 interrupted (the journal stays valid: --resume).
local search = require("neuronas.search")
local cli = require("neuronas.cli")
local app = require("neuronas.app")

local spec = app.extend(app.flags(8), {
  { name = "journal", type = "string", metavar = "FILE", default = "neuronas-search.journal",
    help = "journal of evaluated candidates" },
  { name = "resume", type = "boolean", help = "continue from the journal of an interrupted run" },
  { name = "cells", type = "integer", min = 1, max = 729, help = "search only the first N cells of the space (quick trials)" },
  { name = "data-broadcast", type = "boolean",
    help = "under mpirun: only rank 0 reads --data and sends the scoring batches (docs/cluster.md)" },
})
local opts = { name = "neuronas.lua",
  usage = "neuronas run neuronas.lua [--preset P] [--bits N] [--memory N] [--area MM2] [--latency MS] "
    .. "[--energy UJ] [--json FILE] [--csv FILE] [--resume] [--help]",
  description = "Two-stage hardware-aware SNN cell search (NeuroNAS Alg. 1, docs/search.md)." }
local flags = cli.parse({ ... }, spec, opts)

local constraints = app.constraints(flags, app.default_limits(flags.preset))
local data = app.open_data(flags, opts)
local space = require("neuronas").space("neuronas")
local cells = {}
for i = 1, flags.cells or space:size() do cells[i] = space:cell(i) end
local bar, hooks = app.progress(flags, 2 * #cells, "search")
local setup = app.setup(flags, data, constraints)
-- under mpirun (docs/cluster.md): rank 0 goes on with a remote pipeline; the other ranks serve
-- candidates here until rank 0 is done, then exit
local remote = search.mpi_pipeline(setup, { data_broadcast = flags["data-broadcast"] })
setup.journal, setup.resume, setup.hooks, setup.space = flags.journal, flags.resume, hooks, cells
setup.pipeline, setup.chunk = remote, remote and remote.batch
local rep = search.two_stage(setup)
bar:finish()
os.exit(app.finish(rep, flags, app.settings(flags, data, constraints)))
