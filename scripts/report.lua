-- scripts/report.lua: the HTML report (docs/report.md) of a finished search, from its --json report
-- or its journal: `neuronas run report.lua RUN.json|JOURNAL --html FILE`.
-- A journal records neither the constraints nor the stages: its limits are the preset's default
-- budget unless given by the limit flags (which override a --json report's limits too).
-- Exit status: 0 written; 2 bad flags; 1 an unreadable or foreign input file.
local cli = require("neuronas.cli")
local app = require("neuronas.app")
local report_html = require("neuronas.report_html")

local spec = {
  { name = "html", type = "string", metavar = "FILE", output = true, help = "write the HTML report here (required)" },
  { name = "memory", type = "number", min = 0, help = "limit on weight parameters" },
  { name = "area", type = "number", min = 0, help = "limit on chip area, mm^2" },
  { name = "latency", type = "number", min = 0, help = "limit on latency, ms" },
  { name = "energy", type = "number", min = 0, help = "limit on energy, uJ" },
  { name = "objectives", type = "string", metavar = "LIST",
    help = "objectives of the front, comma-separated (default score,energy,area,latency)" },
  { name = "score-floor", type = "number", help = "score reference of the hypervolume (default: lowest feasible score)" },
}
local opts = { name = "report.lua", positional = true, usage = "neuronas run report.lua RUN.json|JOURNAL --html FILE [--memory N ...]",
  description = "HTML report of a search from its --json report or journal (docs/report.md)." }
local flags, pos = cli.parse({ ... }, spec, opts)
if #pos ~= 1 then cli.fail(opts, "one RUN.json or JOURNAL expected, got " .. #pos) end
if not flags.html then cli.fail(opts, "--html FILE is required") end

local objectives
if flags.objectives then
  objectives = {}
  for item in flags.objectives:gmatch("[^,%s]+") do objectives[#objectives + 1] = item end
  local ok, why = pcall(require("neuronas.search.hypervolume").objectives, objectives, "--objectives")
  if not ok then cli.fail(opts, tostring(why):gsub("^[^:\n]+:%d+: ", "")) end
end

local given = app.constraints(flags)
local extra = { objectives = objectives, score_floor = flags["score-floor"] }

-- the file's text (a clear error for a missing file, a folder, a device or a pipe), then a peek
-- at its first line, to give a journal its limits and a way to cost the best network
local rok, text = pcall(report_html.read, pos[1])
if not rok then
  io.stderr:write("report.lua: " .. tostring(text) .. "\n")
  os.exit(1)
end
local ok, h = pcall(require("neuronas.json").decode, text:match("^[^\n]*"))
local is_journal = ok and type(h) == "table" and h.journal == "neuronas"

-- The per-layer costs of a network, rebuilt with a run's settings s (the default hardware), or
-- nil when they cannot be (the report then has no per-layer table).
local function layers_of(s, best)
  local lok, layers = pcall(function()
    local search = require("neuronas.search")
    local setup = search.setup({ preset = s.preset, bits = s.bits, rounding = s.rounding, seed = s.seed,
      timesteps = s.timesteps ~= require("neuronas.json").null and s.timesteps or nil })
    local p = search.engine_pipeline(setup)
    local net = p.build({ cellA = best.cellA, cellB = best.cellB })
    local cost = p.cost(net)
    p.release(net)
    return cost.layers
  end)
  return lok and layers or nil
end

if is_journal then
  local sok, s = pcall(require("neuronas.json").decode, h.settings or "")
  s = sok and type(s) == "table" and s or {}
  local defaults = app.default_limits(s.preset or "fashion-mnist")
  extra.constraints = app.constraints(flags, defaults)
  extra.sources = report_html.constraint_sources(flags, defaults)
  -- the per-layer costs of the best network: rebuilt with the journal's settings
  extra.layers = function(best) return layers_of(s, best) end
end

local lok, model = pcall(report_html.load_text, text, pos[1], extra)
if not lok then
  local why = tostring(model):gsub("^[^:\n]+:%d+: ", "") -- the message, not where in the library
  -- an objective the results have no field for is the flag's fault (known once they are read)
  if flags.objectives and why:find("^front: objectives%[") then cli.fail(opts, "--objectives: " .. why) end
  io.stderr:write("report.lua: " .. why .. "\n")
  os.exit(1)
end
if not is_journal and next(given) then
  -- limit flags override the report's own
  local c = {}
  for k, v in pairs(model.constraints or {}) do c[k] = v end
  local sources = {}
  for k, v in pairs(model.sources or {}) do sources[k] = v end
  for k, v in pairs(given) do c[k], sources[k] = v, "flag --" .. k end
  model.constraints, model.sources = c, sources
  -- the chosen network again, under the new limits: the best score among the candidates that
  -- meet them, with its checks against them (and its layers rebuilt when it changed)
  local H = require("neuronas.search.hypervolume")
  local best = require("neuronas.search.run").best_of(model.results, function(r) return H.fully_feasible(r, c) end)
  local old = model.best
  if best and not (old and old.cellA == best.cellA and old.cellB == best.cellB and old.index == best.index) then
    model.layers = layers_of(type(model.settings) == "table" and model.settings or {}, best)
  end
  if best then
    local cok, set = pcall(require("neuronas.constraints").new, c)
    local chk, _, records = false, nil, nil
    if cok then chk, _, records = pcall(set.check, set, best.cost) end
    best.checks = chk and records or nil
  end
  model.best = best
  -- the front again, under the new limits: from the objectives as given (the model holds them
  -- resolved) and with its own reference point
  model.objectives, model.reference = objectives, nil
  model = report_html.model(model)
end
require("neuronas.report").write_file(flags.html, report_html.render(model))
io.stdout:write(string.format("%s: %d candidates, %d on the feasible front, hypervolume %.6g\n", flags.html,
  #model.results, #model.front, model.hypervolume))
