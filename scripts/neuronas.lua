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
  { name = "strategy", type = "choice", choices = { "two_stage", "nsga2" }, default = "two_stage",
    help = "search strategy (docs/search.md)" },
  { name = "population", type = "integer", min = 2, help = "nsga2: population (default 32)" },
  { name = "generations", type = "integer", min = 0, help = "nsga2: generations after the first (default 44)" },
  { name = "html", type = "string", metavar = "FILE", help = "write the HTML report here (docs/report.md)" },
})
local opts = { name = "neuronas.lua",
  usage = "neuronas run neuronas.lua [--preset P] [--bits N] [--memory N] [--area MM2] [--latency MS] "
    .. "[--energy UJ] [--strategy two_stage|nsga2] [--json FILE] [--csv FILE] [--html FILE] [--resume] [--help]",
  description = "Two-stage hardware-aware SNN cell search (NeuroNAS Alg. 1, docs/search.md)." }
local flags = cli.parse({ ... }, spec, opts)

local constraints = app.constraints(flags, app.default_limits(flags.preset))
local data = app.open_data(flags, opts)
local space = require("neuronas").space("neuronas")
local cells = {}
for i = 1, flags.cells or space:size() do cells[i] = space:cell(i) end
local setup = app.setup(flags, data, constraints)
setup.journal, setup.resume = flags.journal, flags.resume
local rep, bar
if flags.strategy == "nsga2" then
  local d = require("neuronas.search.nsga2").DEFAULTS
  setup.population, setup.generations = flags.population or d.population, flags.generations or d.generations
  bar, setup.hooks = app.progress(flags, setup.population * (setup.generations + 1), "nsga2")
  rep = search.nsga2(setup)
else
  bar, setup.hooks = app.progress(flags, 2 * #cells, "search")
  setup.space = cells
  rep = search.two_stage(setup)
end
bar:finish()
local settings = app.settings(flags, data, constraints)
settings.strategy = flags.strategy
settings.constraint_sources = require("neuronas.report_html").constraint_sources(flags, app.default_limits(flags.preset))
os.exit(app.finish(rep, flags, settings))
