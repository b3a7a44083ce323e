-- neuronas/report_html.lua: the self-contained HTML report of a search (docs/report.md): inline
-- SVG and CSS only, no script, no font or image fetched, so it opens offline. Built from a model
-- of the run, which comes from a search report in memory (the main job's --html), a --json
-- report, or a journal (scripts/report.lua).
local core = require("neuronas.core")
local svg = require("neuronas.svg")
local plots = require("neuronas.html.plots")
local H = require("neuronas.search.hypervolume")
local json = require("neuronas.json")
local knobs = require("neuronas.search.knobs")
local journal = require("neuronas.search.journal")

local M = {}

local esc = svg.escape
local finite = svg.finite

-- The cost fields plotted against the score, with their axis titles.
M.PLOTS = { { "energy_uj", "energy per inference" }, { "area_mm2", "chip area" },
  { "latency_ms", "latency per inference" }, { "memory_params", "weight memory" } }

local function fmt(v)
  if type(v) ~= "number" then return v == nil and "" or tostring(v) end
  if v ~= v then return "nan" end
  if v == math.huge or v == -math.huge then return v > 0 and "inf" or "-inf" end
  if math.type(v) == "integer" or (v == math.floor(v) and math.abs(v) < 1e15) then
    return svg.tick_label(v, 1)
  end
  return string.format("%.4g", v)
end
M.fmt = fmt

-- The limits of a run by cost field ({ energy = 39 } -> { energy_uj = 39 }), numbers only.
function M.limits_of(constraints)
  local out = {}
  for k, v in pairs(constraints or {}) do
    if type(k) == "string" and type(v) == "number" then out[H.ALIASES[k] or k] = v end
  end
  return out
end

-- Where each limit of the main job came from: a flag, or the preset's default budget.
function M.constraint_sources(flags, defaults)
  local out = {}
  for _, k in ipairs({ "memory", "area", "latency", "energy" }) do
    if flags[k] ~= nil then out[k] = "flag --" .. k
    elseif defaults and defaults[k] ~= nil then out[k] = "default budget of --preset " .. tostring(flags.preset) end
  end
  return out
end

-- model(t) -> the model the page is drawn from. t: results (list of results: index, stage,
-- cellA, cellB, cost, feasible, violation, score), best, layers (per-layer costs of best),
-- constraints (the run's constraint table), sources ({ name = where it came from }), settings,
-- counts, seconds, strategy, engine_version, objectives, score_floor, reference, source.
function M.model(t)
  local m = {}
  for k, v in pairs(t) do m[k] = v end
  m.results = t.results or {}
  m.limits = M.limits_of(t.constraints)
  local limits = t.constraints
  m.is_feasible = function(r) return H.fully_feasible(r, limits) end
  local f = H.front(m.results, { objectives = t.objectives, limits = limits, score_floor = t.score_floor,
    reference = t.reference })
  m.front, m.hypervolume, m.reference, m.objectives, m.n_feasible = f.front, f.hypervolume, f.reference,
    f.objectives, f.feasible
  if not m.counts then
    local c = { evaluated = #m.results, scored = 0, skipped = 0, cached = 0 }
    for _, r in ipairs(m.results) do
      if r.score ~= nil then c.scored = c.scored + 1 else c.skipped = c.skipped + 1 end
      if r.cached then c.cached = c.cached + 1 end
    end
    m.counts = c
  end
  return m
end

-- The model of a search report in memory (search.run's table) and the main job's settings.
function M.from_report(rep, settings, extra)
  settings = settings or {}
  extra = extra or {}
  return M.model({
    results = rep.results, best = rep.best, layers = extra.layers, constraints = settings.constraints,
    sources = settings.constraint_sources, settings = settings, counts = rep.counts, seconds = rep.seconds,
    strategy = rep.strategy, engine_version = require("neuronas").version, objectives = extra.objectives,
    score_floor = extra.score_floor, source = extra.source or "this run",
  })
end

local function unjson(v)
  if v == json.null then return nil end
  return v
end

local function result_of(r)
  return { index = r.index, stage = unjson(r.stage), cellA = r.cellA, cellB = r.cellB, cost = r.cost or {},
    feasible = r.feasible, violation = unjson(r.violation), score = unjson(r.score), checks = r.checks,
    hw = unjson(r.hw), bits = unjson(r.bits), timesteps = unjson(r.timesteps) }
end

-- "cellA | cellB", then the hardware knobs of a co-search's candidate (docs/search.md)
local function cells_text(r)
  local kt = knobs.text(r)
  return r.cellA .. " | " .. r.cellB .. (kt ~= "" and (" | " .. kt) or "")
end

-- Why the result r of a --json report cannot be drawn, or nil: an object with cellA and cellB
-- strings, a cost object of numbers, strings and booleans, a score that is a number, "inf",
-- "-inf", "nan" or null, and a boolean feasible (absent: false).
local function bad_result(r)
  if type(r) ~= "table" or r == json.null or r[1] ~= nil then return "an object expected" end
  for _, k in ipairs({ "cellA", "cellB" }) do
    if type(r[k]) ~= "string" then return string.format("field '%s': cell string expected", k) end
  end
  local cost = r.cost
  if cost ~= nil and (type(cost) ~= "table" or cost == json.null or cost[1] ~= nil) then
    return "field 'cost': object expected"
  end
  for k, v in pairs(cost or {}) do
    local ty = type(v)
    if ty ~= "number" and ty ~= "string" and ty ~= "boolean" then
      return string.format("field 'cost.%s': number, string or boolean expected", tostring(k))
    end
  end
  local sc = r.score
  if not (sc == nil or sc == json.null or type(sc) == "number" or (type(sc) == "string" and journal.as_number(sc))) then
    return "field 'score': number, \"inf\", \"-inf\", \"nan\" or null expected"
  end
  if r.feasible ~= nil and type(r.feasible) ~= "boolean" then return "field 'feasible': boolean expected" end
  for _, k in ipairs({ "index", "violation" }) do
    if r[k] ~= nil and r[k] ~= json.null and type(r[k]) ~= "number" then
      return string.format("field '%s': number expected", k)
    end
  end
  return nil
end

-- The model of a --json report (it must hold "results", one per evaluated candidate).
function M.from_json(doc, path, extra)
  extra = extra or {}
  if type(doc) ~= "table" or type(doc.results) ~= "table" or doc.results == json.null then
    error(string.format("%s: no 'results' list (a neuronas-report/1 --json report of this version holds one"
      .. " per evaluated candidate; for an older run give its journal)", path), 0)
  end
  local results = {}
  for i, r in ipairs(doc.results) do
    local why = bad_result(r)
    if why then error(string.format("%s: results[%d]: %s", path, i, why), 0) end
    results[i] = result_of(r)
    results[i].score = journal.as_number(results[i].score)
  end
  local best = unjson(doc.best)
  if best then
    local why = bad_result(best)
    if why then error(string.format("%s: best: %s", path, why), 0) end
    best = result_of(best)
    best.score = journal.as_number(best.score)
  end
  local settings = unjson(doc.settings) or {}
  local constraints, sources = unjson(settings.constraints), unjson(settings.constraint_sources)
  if type(constraints) == "table" and constraints[1] ~= nil then
    -- the report's list form: { name, kind, limit, unit, doc, field, source } per constraint
    local limits, src = {}, {}
    for _, c in ipairs(constraints) do
      if c.kind == "limit" and type(c.limit) == "number" then limits[c.name] = c.limit end
      if type(c.source) == "string" then src[c.name] = c.source end
    end
    constraints, sources = limits, sources or src
  end
  return M.model({
    results = results, best = best, layers = best and unjson(doc.best.layers), constraints = constraints,
    sources = sources, settings = settings, counts = unjson(doc.counts),
    seconds = unjson(doc.seconds), strategy = doc.strategy, engine_version = doc.engine_version,
    objectives = extra.objectives, score_floor = extra.score_floor, source = path,
  })
end

-- The model of a journal: one result per journaled line in order (repeats answered from the
-- cache are not journaled); feasible = scored and within every given limit (the journal records
-- neither the constraints nor the stages: give the run's limits in extra.constraints).
function M.from_journal(lines, path, extra)
  extra = extra or {}
  local results, settings, version = {}, {}, nil
  for n, line in ipairs(lines) do
    local ok, rec = pcall(json.decode, line)
    local why = n > 1 and (not ok and tostring(rec) or select(2, journal.check_record(rec)))
    if why then
      -- a torn or foreign line: left out, and said (a resumed search evaluates it again)
      journal.warn(string.format("%s: line %d left out of the report: %s", path, n, why))
    elseif n == 1 then
      if not ok or type(rec) ~= "table" or rec.journal ~= "neuronas" then
        error(string.format("%s: neither a neuronas --json report nor a journal", path), 0)
      end
      version = rec.version
      local ok2, s = pcall(json.decode, rec.settings or "")
      if ok2 and type(s) == "table" then settings = s end
    else
      local a, b, kt = require("neuronas.search.evaluator").parse_key(rec.key)
      local score = unjson(rec.score)
      if type(score) == "string" then score = journal.as_number(score) end
      local r = { index = #results + 1, cellA = a or rec.key, cellB = b or rec.key, cost = rec.cost or {},
        score = rec.scored and score or nil, seconds = rec.seconds }
      local kok, kwhy = true, nil
      if kt then kok, kwhy = pcall(knobs.parse, kt, r) end
      if kok then
        r.feasible = rec.scored == true
        r.feasible = H.fully_feasible(r, extra.constraints)
        r.violation = 0
        results[#results + 1] = r
      else
        journal.warn(string.format("%s: line %d left out of the report: %s", path, n, tostring(kwhy)))
      end
    end
  end
  local best = require("neuronas.search.run").best_of(results)
  settings.constraints = extra.constraints
  return M.model({
    results = results, best = best, layers = extra.layers and best and extra.layers(best), constraints = extra.constraints,
    sources = extra.sources, settings = settings, strategy = "(from the journal)", engine_version = version,
    objectives = extra.objectives, score_floor = extra.score_floor, source = path,
  })
end

-- The text of RUN.json or a journal, at most journal.MAX_BYTES (a clear error naming the file
-- otherwise: missing, a folder, a device or a pipe, too large).
function M.read(path)
  local text, why, reason = core.read_text(path, journal.MAX_BYTES)
  if text then return text end
  if reason == "large" then
    error(string.format("%s: larger than %d bytes (a --json report or a journal expected)", path, journal.MAX_BYTES), 0)
  end
  error("cannot read " .. why, 0)
end

-- The model of RUN.json's or a journal's text (read from path).
function M.load_text(text, path, extra)
  local first = text:match("^[^\n]*") or ""
  local ok, head = pcall(json.decode, first)
  if ok and type(head) == "table" and head.journal == "neuronas" then
    local lines = {}
    for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
    return M.from_journal(lines, path, extra)
  end
  local ok2, doc = pcall(json.decode, text)
  if not ok2 then error(string.format("%s: neither a neuronas --json report nor a journal (%s)", path, tostring(doc)), 0) end
  return M.from_json(doc, path, extra)
end

-- Reads RUN.json or a journal -> model (a clear error naming the file otherwise).
function M.load(path, extra)
  return M.load_text(M.read(path), path, extra)
end

local CSS = [[
:root{--ok:#1f6fb4;--grey:#a9a9a9;--front:#d62728;--chosen:#ff9900;--ink:#222;--muted:#666}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);margin:0 auto;
  padding:12px;max-width:1200px;line-height:1.4}
h1{font-size:1.5em;margin:.3em 0}h2{font-size:1.2em;margin:1.2em 0 .4em;border-bottom:1px solid #ddd}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:12px}
.grid.plots{grid-template-columns:repeat(auto-fit,minmax(420px,1fr))}
figure{margin:0}figcaption{font-size:.85em;color:var(--muted)}
svg{width:100%;height:auto;display:block;max-width:720px}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;font-size:.9em}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:.9em;word-break:break-all}
.legend{font-size:.85em;display:flex;flex-wrap:wrap;gap:4px 14px;align-items:center}
.legend svg{display:inline-block;width:18px;height:12px;vertical-align:middle}
.axis line{stroke:#444;stroke-width:1}.axis .grid,.layer-bars .grid{stroke:#eee}
.tick{font-size:12px;fill:#333}.axis-title{font-size:13px;fill:#222}
.pt{stroke:none}.pt.ok{fill:var(--ok);fill-opacity:.55}.pt.grey{fill:var(--grey);fill-opacity:.5}
.pt.unscored{fill:var(--grey);fill-opacity:.45}
.band{fill:#f4f4f4}.band-label{font-size:10px;fill:#777}
.front-line{fill:none;stroke:var(--front);stroke-width:1.6}
.front-pt{fill:none;stroke:var(--front);stroke-width:1.2}
.chosen{fill:var(--chosen);stroke:#000;stroke-width:1}
.limit{stroke:#555;stroke-dasharray:5 3;stroke-width:1.2}
.limit-label,.stage-label{font-size:11px;fill:#333;paint-order:stroke;stroke:#fff;stroke-width:3px}
.stage-sep{stroke:#999;stroke-dasharray:3 3}
.progress{fill:none;stroke-width:1.8}.stage-1{stroke:#2ca02c}.stage-2{stroke:#1f6fb4}.stage-3{stroke:#9467bd}
.stage-4{stroke:#8c564b}
.edge{fill:none;stroke:#555;stroke-width:1.4}.edge.op-skip{stroke-dasharray:4 3}.edge.op-conv3x3{stroke:#1f6fb4}
.edge.op-avgpool3x3{stroke:#2ca02c}.arrow{fill:#555}
.edge-label{font-size:11px;fill:#222;paint-order:stroke;stroke:#fff;stroke-width:3px}
.node{fill:#fff;stroke:#222;stroke-width:1.5}.node-label{font-size:12px;font-weight:bold}.cell-name{font-size:12px}
.layer-name,.bar-value{font-size:12px}.bars svg{max-width:560px}.bar-area{fill:#9467bd}.bar-energy{fill:#ff7f0e}.bar-latency{fill:#17becf}
.note{font-size:11px;fill:#666}
@media (max-width:600px){body{padding:6px;font-size:15px}.grid{grid-template-columns:1fr}}
]]

local function legend()
  local function sw(inner) return '<svg viewBox="0 0 18 12" aria-hidden="true">' .. inner .. "</svg>" end
  return '<div class="legend">'
    .. "<span>" .. sw('<circle cx="9" cy="6" r="3" class="pt ok"/>') .. " feasible, scored</span>"
    .. "<span>" .. sw('<circle cx="9" cy="6" r="3" class="pt grey"/>') .. " scored, breaks a limit of the run</span>"
    .. "<span>" .. sw('<circle cx="9" cy="6" r="3" class="pt unscored"/>') .. " not scored (in the band)</span>"
    .. "<span>" .. sw('<polyline points="1,2 9,2 9,10 17,10" class="front-line"/>') .. " front of score vs this cost</span>"
    .. "<span>" .. sw('<circle cx="9" cy="6" r="4" class="front-pt"/>') .. " on the front of all objectives</span>"
    .. "<span>" .. sw('<polygon points="9,1 14,6 9,11 4,6" class="chosen"/>') .. " chosen network</span>"
    .. "<span>" .. sw('<line x1="9" y1="0" x2="9" y2="12" class="limit"/>') .. " limit</span>"
    .. "</div>"
end

local function table_html(head, rows, numeric)
  local out = { '<div class="table-wrap"><table><thead><tr>' }
  for _, h in ipairs(head) do out[#out + 1] = "<th>" .. esc(h) .. "</th>" end
  out[#out + 1] = "</tr></thead><tbody>"
  for _, row in ipairs(rows) do
    out[#out + 1] = "<tr>"
    for i, v in ipairs(row) do
      local cls = numeric and numeric[i] and ' class="n"' or ""
      out[#out + 1] = "<td" .. cls .. ">" .. esc(v) .. "</td>"
    end
    out[#out + 1] = "</tr>"
  end
  out[#out + 1] = "</tbody></table></div>"
  return table.concat(out)
end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t or {}) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b) return tostring(a) < tostring(b) end)
  return ks
end

-- The constraint rows: from the chosen network's checks when there is one, else from the limits.
local function constraint_rows(m)
  local rows, sources = {}, m.sources or {}
  local checks = m.best and m.best.checks
  if checks and #checks > 0 then
    for _, c in ipairs(checks) do
      rows[#rows + 1] = { c.name, fmt(c.value), c.unit or "", fmt(c.limit), c.ok and "ok" or "FAIL",
        sources[c.name] or "run settings" }
    end
  else
    for _, k in ipairs(sorted_keys(m.constraints)) do
      local v = m.constraints[k]
      local field = H.ALIASES[k] or k
      local val = m.best and m.best.cost and m.best.cost[field]
      rows[#rows + 1] = { tostring(k), val and fmt(val) or "", H.UNITS[field] or "",
        type(v) == "number" and fmt(v) or type(v), "", sources[k] or "run settings" }
    end
  end
  return rows
end

local function cell_edges(g)
  local ok, edges = pcall(function()
    local nn = require("neuronas")
    return nn.cell(g):edges()
  end)
  return ok and edges or {}
end

-- render(model) -> the HTML page.
function M.render(m)
  local out = {}
  local function add(s) out[#out + 1] = s end
  local b = m.best
  add("<!DOCTYPE html>")
  add('<html lang="en"><head><meta charset="utf-8">')
  add('<meta name="viewport" content="width=device-width, initial-scale=1">')
  add("<title>NeuroNAS search report: " .. esc(m.strategy or "search") .. "</title>")
  add("<style>" .. CSS .. "</style></head><body>")
  add("<h1>NeuroNAS search report</h1>")
  add(string.format("<p>Strategy <b>%s</b>, engine %s, %s evaluated in %s s. Source: %s.</p>", esc(m.strategy or "?"),
    esc(m.engine_version or "?"), esc(fmt(m.counts.evaluated)), esc(m.seconds and string.format("%.1f", m.seconds) or "?"),
    esc(m.source or "?")))
  add('<section id="chosen"><h2>Chosen network</h2>')
  if b then
    add(string.format("<p>Best feasible fitness score <b>%s</b> (candidate %s%s).</p>", esc(fmt(b.score)),
      esc(fmt(b.index)), b.stage and (", stage " .. esc(fmt(b.stage))) or ""))
    local kt = knobs.text(b)
    add("<p>cell A <code>" .. esc(b.cellA) .. "</code><br>cell B <code>" .. esc(b.cellB) .. "</code>"
      .. (kt ~= "" and ("<br>hardware knobs <code>" .. esc(kt) .. "</code>") or "") .. "</p>")
    add('<div class="grid"><figure>' .. plots.cell(cell_edges(b.cellA), "cellA", "cell A") .. "</figure>")
    add("<figure>" .. plots.cell(cell_edges(b.cellB), "cellB", "cell B") .. "</figure></div>")
    if m.layers and #m.layers > 0 then
      add("<h3>Per-layer hardware costs (share of the network's total)</h3>")
      add('<figure class="bars">' .. plots.bars(m.layers) .. "</figure>")
      local rows = {}
      for i, l in ipairs(m.layers) do
        rows[i] = { l.name or tostring(i), l.kind or "", fmt(l.weights), fmt(l.pes), fmt(l.area_mm2), fmt(l.energy_uj),
          fmt(l.latency_ms) }
      end
      add(table_html({ "layer", "kind", "weights", "PEs", "area mm^2", "energy uJ", "latency ms" }, rows,
        { false, false, true, true, true, true, true }))
    end
  else
    add("<p><b>No feasible architecture</b>: no evaluated candidate met every constraint.</p>")
  end
  add("</section>")
  add('<section id="pareto"><h2>Score against each cost</h2>')
  add(legend())
  add('<div class="grid plots">')
  for _, p in ipairs(M.PLOTS) do
    add("<figure>" .. plots.scatter(m, p[1], "score vs " .. p[2]) .. "</figure>")
  end
  add("</div>")
  local objs = {}
  for i, o in ipairs(m.objectives) do objs[i] = (o.sense == "max" and "max " or "min ") .. o.field end
  add(string.format("<p>Feasible Pareto front over (%s): <b>%d</b> of %d feasible scored candidates; "
    .. "hypervolume <b>%s</b> (docs/report.md: each cost divided by its reference, the score in score units).</p>",
    esc(table.concat(objs, ", ")), #m.front, m.n_feasible, esc(string.format("%.6g", m.hypervolume))))
  local refrows = {}
  for _, o in ipairs(m.objectives) do
    local r = m.reference[o.field] or {}
    refrows[#refrows + 1] = { o.field, o.sense, fmt(r.value), H.UNITS[o.field] or "", r.why or "" }
  end
  add(table_html({ "objective", "sense", "reference", "unit", "chosen because" }, refrows, { false, false, true }))
  if #m.front > 0 then
    local rows = {}
    local front = {}
    for i, r in ipairs(m.front) do front[i] = r end
    table.sort(front, function(x, y) return x.score > y.score end)
    for i, r in ipairs(front) do
      if i > 50 then break end
      local c = r.cost or {}
      rows[#rows + 1] = { fmt(r.index), fmt(r.score), fmt(c.energy_uj), fmt(c.area_mm2), fmt(c.latency_ms),
        fmt(c.memory_params), cells_text(r) }
    end
    add("<details><summary>Front members (best score first" .. (#front > 50 and ", first 50" or "") .. ")</summary>")
    add(table_html({ "#", "score", "energy uJ", "area mm^2", "latency ms", "params", "cells A | B [| knobs]" }, rows,
      { true, true, true, true, true, true }))
    add("</details>")
  end
  add("</section>")
  add('<section id="progress"><h2>Progress</h2><figure>' .. plots.progress(m) .. "</figure>")
  add("<figcaption>Best score so far among the candidates feasible for their stage, per stage.</figcaption></section>")
  add('<section id="settings"><h2>Constraints and settings</h2>')
  add(table_html({ "constraint", "chosen's value", "unit", "limit", "", "source" }, constraint_rows(m),
    { false, true, false, true }))
  local srows = {}
  for _, k in ipairs(sorted_keys(m.settings)) do
    local v = m.settings[k]
    if k ~= "constraints" and k ~= "constraint_sources" and type(v) ~= "table" and type(v) ~= "function" then
      srows[#srows + 1] = { tostring(k), fmt(v) }
    end
  end
  add(table_html({ "setting", "value" }, srows))
  local c = m.counts
  add(table_html({ "count", "value" }, {
    { "evaluated", fmt(c.evaluated) }, { "scored", fmt(c.scored) }, { "skipped by constraints", fmt(c.skipped) },
    { "from cache", fmt(c.cached) }, { "on the front", fmt(#m.front) },
    { "wall time, s", m.seconds and string.format("%.1f", m.seconds) or "?" },
    { "engine version", m.engine_version or "?" },
  }, { false, true }))
  add("</section></body></html>")
  return table.concat(out, "\n") .. "\n"
end

-- Writes the page of a search report in memory to path (atomically, like the other reports).
function M.write(path, rep, settings, extra)
  require("neuronas.report").write_file(path, M.render(M.from_report(rep, settings, extra)))
end

return M
