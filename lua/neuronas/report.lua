-- neuronas/report.lua: what a search prints and writes: the final summary, the JSON
-- report (format documented in README "The search report") and the per-candidate CSV.
local json = require("neuronas.json")

local M = {}

local function options_copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

M.FORMAT = "neuronas-report/1"

local function group(n)
  local s = string.format("%.0f", n)
  local neg = s:sub(1, 1) == "-"
  if neg then s = s:sub(2) end
  s = s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return (neg and "-" or "") .. s
end
M.group = group

-- Lines drawing a cell's edges, "0 -> 1  conv3x3", forward then backward, zero edges left out.
function M.cell_lines(cell)
  local nn = require("neuronas")
  local c = type(cell) == "string" and nn.cell(cell) or cell
  local lines = {}
  for _, e in ipairs(c:edges()) do
    if e.op ~= "zero" then lines[#lines + 1] = string.format("%d -> %d  %s", e.from, e.to, e.op) end
  end
  if #lines == 0 then lines[1] = "(no edges)" end
  return lines
end

-- Two columns side by side.
local function columns(a, b, wa)
  local out = {}
  for i = 1, math.max(#a, #b) do
    out[i] = string.format("    %-" .. wa .. "s  %s", a[i] or "", b[i] or "")
  end
  return out
end

-- A value as the summary prints it: 4 significant digits, thousands grouped from 10,000.
local function num(v)
  if type(v) ~= "number" then return tostring(v) end
  return math.abs(v) >= 1e4 and group(v) or string.format("%.4g", v)
end

-- A value and its limit as the summary prints them: as num does, with more digits where that
-- would print two different numbers alike (4751.6 against a limit of 4752 is not "4752 (limit
-- 4752) fails").
local function num_pair(v, limit)
  local a, b = num(v), num(limit)
  if a ~= b or type(v) ~= "number" or type(limit) ~= "number" or v == limit then return a, b end
  for digits = 5, 17 do
    a, b = string.format("%." .. digits .. "g", v), string.format("%." .. digits .. "g", limit)
    if a ~= b then break end
  end
  return a, b
end

-- The constraint table: one row per limit with value, limit and a pass/fail mark; custom
-- constraints come from the result's check records.
function M.constraint_rows(result)
  local rows = {}
  for _, rec in ipairs(result.checks or {}) do
    local vs, ls = num_pair(rec.value, rec.limit)
    local lim = rec.limit ~= nil and ("<= " .. ls) or ""
    rows[#rows + 1] = string.format("    %-12s %16s %-7s %-17s %s%s", rec.name, vs, rec.unit or "", lim, rec.ok and "ok" or "FAIL",
      rec.why and ("  (" .. rec.why .. ")") or "")
  end
  return rows
end

-- The constraint list with where each limit came from: one line each, e.g.
-- "    energy <= 20 uJ (cost.energy_uj)  [--energy]".
function M.constraint_lines(set, sources)
  local lines = {}
  if not set or #set.list == 0 then return lines end
  for i, l in ipairs(set:describe_lines()) do
    local src = sources and sources[set.list[i].name]
    lines[#lines + 1] = "    " .. l .. (src and ("  [" .. src .. "]") or "")
  end
  return lines
end

-- Failure counts per constraint over a list of results: { name = n }, and the names in order.
local function failures(results)
  local fails, order = {}, {}
  for _, r in ipairs(results) do
    for _, rec in ipairs(r.checks or {}) do
      if fails[rec.name] == nil then
        fails[rec.name] = 0
        order[#order + 1] = rec.name
      end
      if not rec.ok then fails[rec.name] = fails[rec.name] + 1 end
    end
  end
  return fails, order
end

-- Why nothing was feasible: per stage, how many candidates each limit ruled out; the stage-1
-- pre-filter's exclusions; and the cheapest evaluated candidate for each limit.
function M.explain_infeasible(rep)
  local out = {}
  local function add(s) out[#out + 1] = s end
  local pf = rep.notes and rep.notes.prefilter
  if pf and pf.excluded > 0 then
    add(string.format("    stage 1 pre-filter: %d of %d cells excluded before scoring, no cell B completes them (%s)",
      pf.excluded, pf.cells, M.exclusion_reasons(pf)))
    if pf.excluded == pf.cells then
      add(string.format("    so no pair (A, B) of the %d x %d meets %s: the cheapest completion for each limit:",
        pf.cells, pf.cells, table.concat(pf.used, ", ")))
      for _, n in ipairs(pf.used) do
        local c = pf.cheapest and pf.cheapest[n]
        if c then
          local vs, ls = num_pair(c.value, c.limit)
          add(string.format("      %-10s %s (limit %s)  %s | %s%s", n, vs, ls, c.cellA, c.cellB,
            c.value > c.limit and "" or "  (meets it)"))
        end
      end
    end
  end
  local stages, order = {}, {}
  for _, r in ipairs(rep.results or {}) do
    local s = r.stage or "-"
    if not stages[s] then
      stages[s] = {}
      order[#order + 1] = s
    end
    table.insert(stages[s], r)
  end
  for _, s in ipairs(order) do
    local list = stages[s]
    local fails, names = failures(list)
    local parts = {}
    for _, n in ipairs(names) do
      if fails[n] > 0 then
        parts[#parts + 1] = string.format("%s %d%s", n, fails[n], fails[n] == #list and " (every one)" or "")
      end
    end
    add(string.format("    %s: %d evaluated, none feasible; ruled out by %s", s == "-" and "candidates" or ("stage " .. s),
      #list, #parts > 0 and table.concat(parts, ", ") or "nothing (no constraint failed)"))
  end
  local notes = rep.notes or {}
  if notes.stage1 and not notes.cellA and #(rep.results or {}) > 0 then
    add("    stage 2: not run (no stage-1 cell (c, c) passed the memory limit, so no cell A was chosen)")
  end
  local set = rep.constraint_set
  local cheapest = {}
  for _, r in ipairs(rep.results or {}) do
    for _, rec in ipairs(r.checks or {}) do
      if type(rec.value) == "number" and (not cheapest[rec.name] or rec.value < cheapest[rec.name].rec.value) then
        cheapest[rec.name] = { r = r, rec = rec }
      end
    end
  end
  local names = set and set:names() or {}
  local first = true
  for _, n in ipairs(names) do
    local c = cheapest[n]
    if c then
      if first then add("Cheapest evaluated candidate for each limit:") first = false end
      local other = {}
      for _, rec in ipairs(c.r.checks) do
        if not rec.ok then other[#other + 1] = rec.name end
      end
      local vs, ls = num_pair(c.rec.value, c.rec.limit)
      add(string.format("    %-10s %s %s (limit %s)  %s | %s%s  fails: %s", n, vs, c.rec.unit or "",
        ls, c.r.cellA, c.r.cellB, c.r.stage and ("  stage " .. c.r.stage) or "",
        #other > 0 and table.concat(other, ", ") or "nothing"))
    end
  end
  return out
end

-- "energy 12, area 3, jointly 2": why the pre-filter excluded its cells.
function M.exclusion_reasons(pf)
  local parts = {}
  for _, n in ipairs(pf.used or {}) do
    if pf.by_limit[n] then parts[#parts + 1] = string.format("%s alone: %d", n, pf.by_limit[n]) end
  end
  if pf.jointly > 0 then parts[#parts + 1] = string.format("only jointly: %d", pf.jointly) end
  return table.concat(parts, ", ")
end

-- One line on the stage-1 pre-filter (nil when there was none).
function M.prefilter_line(notes)
  local pf = notes and notes.prefilter
  if not pf then return nil end
  local s
  if pf.method == "none" then
    s = string.format("Stage 1 pre-filter: off (%s); all %d cells kept", pf.why or "no limit it can use", pf.cells)
  else
    s = string.format("Stage 1 pre-filter: %s; %s completions (c, B) costed in %.2f s%s, using %s",
      pf.excluded > 0 and string.format("%d of %d cells excluded, no cell B completes them within the limits (%s)",
        pf.excluded, pf.cells, M.exclusion_reasons(pf))
        or string.format("all %d cells kept, each has a cell B completing it within the limits", pf.cells),
      group(pf.completions), pf.seconds or 0,
      pf.combine_seconds and string.format(" (%.3f s after the %d (c, c) costs)", pf.combine_seconds, pf.cells) or "",
      table.concat(pf.used, ", "))
  end
  if pf.unused and #pf.unused > 0 then
    local u = {}
    for _, x in ipairs(pf.unused) do u[#u + 1] = x.name .. " (" .. x.why .. ")" end
    s = s .. "; not used: " .. table.concat(u, ", ")
  end
  return s
end

-- The final summary printed by the main job.
-- Raises naming the field when a report (search.run's) has the wrong shape for the summary.
local function check_report(rep)
  if type(rep) ~= "table" then error("report.summary: bad argument #1 (search report expected, got " .. type(rep) .. ")", 3) end
  for _, k in ipairs({ "results", "notes", "counts", "pareto", "nearest" }) do
    if rep[k] ~= nil and type(rep[k]) ~= "table" then
      error(string.format("report.summary: field '%s': table expected, got %s", k, type(rep[k])), 3)
    end
  end
  for i, r in ipairs(rep.results or {}) do
    if type(r) ~= "table" then error(string.format("report.summary: results[%d]: table expected, got %s", i, type(r)), 3) end
    if r.stage ~= nil and type(r.stage) ~= "string" and type(r.stage) ~= "number" then
      error(string.format("report.summary: results[%d].stage: number or string expected, got %s", i, type(r.stage)), 3)
    end
  end
end

function M.summary(rep, opts)
  check_report(rep)
  opts = opts or {}
  local out = {}
  local function add(s) out[#out + 1] = s end
  local r = rep.best
  add("")
  local clines = M.constraint_lines(rep.constraint_set, opts.sources)
  if #clines > 0 then
    add("Constraints:")
    for _, l in ipairs(clines) do add(l) end
  end
  local pfl = M.prefilter_line(rep.notes)
  if pfl then add(pfl) end
  if #clines > 0 or pfl then add("") end
  if r then
    add(string.format("Found architecture (%s search), fitness score %.6f", rep.strategy, r.score))
    if r.score == -math.huge then
      -- the best of the feasible is -inf only when every scored kernel was singular
      add("    every feasible candidate scored -inf: its spike codes did not tell the batch's images apart"
        .. " (identical images, or no neuron firing), so the score ranks nothing; check the data (docs/fitness.md)")
    end
    if r.variation then
      local v = r.variation
      add(string.format("    robust score (mean of %d noisy copies, sigma %g): %.6f, worst %.6f; noise-free %.6f, drop %.6f",
        v.draws, v.sigma, v.mean, v.worst, v.clean, v.drop))
    end
    if r.cost and r.cost.energy_active_uj then
      add(string.format("    activity-aware energy %.4f uJ (%.1f %% of the static %.4f uJ)", r.cost.energy_active_uj,
        100 * r.cost.energy_active_uj / r.cost.energy_uj, r.cost.energy_uj))
    end
    local notes = rep.notes or {}
    if notes.stage1 and notes.cellA and not notes.stage2_best then
      add(string.format("    (stage 2 found no cell B completing A* = %s within every limit; this is the best"
        .. " fully feasible pair evaluated, from stage %s)", notes.cellA, tostring(r.stage)))
    end
    add(string.format("    cell A: %s", r.cellA))
    add(string.format("    cell B: %s", r.cellB))
    local kt = require("neuronas.search.knobs").text(r)
    if kt ~= "" then add("    hardware knobs: " .. kt) end
    local ok, a = pcall(M.cell_lines, r.cellA)
    local ok2, b = pcall(M.cell_lines, r.cellB)
    if ok and ok2 then
      table.insert(a, 1, "cell A")
      table.insert(b, 1, "cell B")
      for _, l in ipairs(columns(a, b, 26)) do add(l) end
    end
    add("")
    add("Costs against the constraints:")
    for _, l in ipairs(M.constraint_rows(r)) do add(l) end
    if opts.hw_table then
      add("")
      add(string.format("Per-layer costs (%s layers, docs/hardware.md):", opts.scope or "features"))
      add(opts.hw_table)
    end
  else
    local n = #(rep.results or {})
    add(n > 0 and string.format("No feasible architecture: none of the %d evaluated candidates met every constraint.", n)
      or "No feasible architecture: no candidate was left to evaluate.")
    local why = M.explain_infeasible(rep)
    if #why > 0 then
      add("Why:")
      for _, l in ipairs(why) do add(l) end
    end
    if #rep.nearest > 0 then
      add("Nearest misses (total normalised violation):")
      for _, m in ipairs(rep.nearest) do
        local fails = {}
        for _, rec in ipairs(m.checks or {}) do
          -- two significant digits below 10 %: a miss by 0.008 % is not "+0.0%"
          local pct = 100 * (rec.violation or 0)
          if not rec.ok then
            fails[#fails + 1] = string.format(math.abs(pct) < 10 and "%s %+.2g%%" or "%s %+.1f%%", rec.name, pct)
          end
        end
        add(string.format("    %.4f  %s | %s  (%s)", m.violation, m.cellA, m.cellB, table.concat(fails, ", ")))
      end
    end
  end
  add("")
  local c = rep.counts
  add(string.format("Candidates: %d evaluated, %d feasible, %d scored, %d only costed, %d from cache; %d on the Pareto front",
    c.evaluated, c.feasible or 0, c.scored, c.skipped, c.cached, #rep.pareto))
  add(string.format("Wall time: %.1f s", rep.seconds))
  return table.concat(out, "\n") .. "\n"
end

local function result_json(r)
  local cost = {}
  for k, v in pairs(r.cost or {}) do
    if k ~= "layers" and type(v) ~= "table" then cost[k] = v end
  end
  return {
    index = r.index, stage = r.stage or json.null, cellA = r.cellA, cellB = r.cellB,
    cost = json.object(cost), feasible = r.feasible, stage_ok = r.stage_ok, violation = r.violation,
    score = r.score or json.null, pareto = r.pareto or false,
    variation = r.variation and { clean = r.variation.clean, mean = r.variation.mean, worst = r.variation.worst,
      drop = r.variation.drop, sigma = r.variation.sigma, draws = r.variation.draws } or nil,
    hw = r.hw and json.object(r.hw) or nil, bits = r.bits, timesteps = r.timesteps,
  }
end

-- A check record as JSON: name, value, limit, unit, doc, ok (a predicate's value is its verdict).
local function check_json(rec, set)
  local c = set and set.entries and type(set.entries[rec.name]) == "table" and set.entries[rec.name] or {}
  return { name = rec.name, value = rec.value, limit = rec.limit or json.null, unit = rec.unit or json.null,
    doc = c.doc or json.null, ok = rec.ok, why = rec.why }
end

-- The constraints of a run as data: { name, kind (limit|function|predicate), limit, unit, doc,
-- field, source } in check order (functions are described, never encoded).
function M.constraints_json(set, sources)
  local out = {}
  for i, c in ipairs(set and set.list or {}) do
    out[i] = { name = c.name, kind = c.kind == "field" and "limit" or c.kind == "fn" and "function" or "predicate",
      limit = c.max or json.null, unit = c.unit or json.null, doc = c.doc or json.null,
      field = c.field and ("cost." .. c.field) or json.null, source = sources and sources[c.name] or json.null }
  end
  return out
end

-- Replaces what JSON cannot hold (functions, userdata, threads, non-string keys) by strings,
-- collecting the paths it changed, so a report is always written.
function M.encodable(v, path, changed, seen)
  local ty = type(v)
  if v == json.null then return v end
  if ty == "function" or ty == "userdata" or ty == "thread" then
    changed[#changed + 1] = path
    return tostring(v)
  end
  if ty ~= "table" then return v end
  seen = seen or {}
  if seen[v] then
    changed[#changed + 1] = path
    return "(cycle)"
  end
  seen[v] = true
  local t = setmetatable({}, getmetatable(v) == json.object_mt and json.object_mt or nil)
  for k, x in pairs(v) do
    local key = k
    if type(k) ~= "string" and math.type(k) ~= "integer" then
      key = tostring(k)
      changed[#changed + 1] = path .. "[" .. key .. "]"
    end
    t[key] = M.encodable(x, path .. "." .. tostring(key), changed, seen)
  end
  seen[v] = nil
  return t
end

-- The JSON report (docs/search.md, "The search report"). extra: { layers =, sources =,
-- warn = function(msg) } (warn defaults to stderr).
function M.to_json(rep, settings, extra)
  extra = extra or {}
  local set = rep.constraint_set
  local best = json.null
  if rep.best then
    best = result_json(rep.best)
    best.checks = {}
    for i, rec in ipairs(rep.best.checks or {}) do best.checks[i] = check_json(rec, set) end
    if extra.layers then best.layers = extra.layers end
  end
  local nearest, pareto = {}, {}
  for i, m in ipairs(rep.nearest or {}) do
    nearest[i] = result_json(m)
    nearest[i].checks = {}
    for k, rec in ipairs(m.checks or {}) do nearest[i].checks[k] = check_json(rec, set) end
  end
  for i, m in ipairs(rep.pareto or {}) do pareto[i] = result_json(m) end
  settings = options_copy(settings or {})
  if set then settings.constraints = M.constraints_json(set, extra.sources) end
  local notes = json.null
  if rep.notes then
    notes = options_copy(rep.notes)
    if notes.prefilter then
      local pf = options_copy(notes.prefilter)
      pf.kept = #pf.kept
      pf.by_limit = json.object(pf.by_limit)
      notes.prefilter = pf
    end
    if notes.stage2_best then notes.stage2_best = result_json(notes.stage2_best) end
  end
  local results = {} -- every evaluated candidate (the HTML report draws them: docs/report.md)
  for i, m in ipairs(rep.results or {}) do results[i] = result_json(m) end
  local doc = {
    format = M.FORMAT,
    engine_version = require("neuronas").version,
    strategy = rep.strategy,
    feasible = rep.feasible,
    best = best,
    nearest_misses = nearest,
    pareto = pareto,
    counts = rep.counts,
    seconds = rep.seconds,
    settings = settings,
    notes = notes,
    results = results,
  }
  local changed = {}
  doc = M.encodable(doc, "report", changed)
  local warn = extra.warn or function(msg) io.stderr:write(msg, "\n") end
  for _, p in ipairs(changed) do
    warn(string.format("warning: JSON report: field '%s' cannot be encoded, written as a string", p))
  end
  return json.encode(doc, { indent = "  ", nonfinite = "null" }) .. "\n"
end

M.CSV_COLUMNS = { "index", "stage", "cellA", "cellB", "memory_params", "area_mm2", "latency_ms",
  "energy_uj", "tiles", "pes", "feasible", "stage_ok", "violation", "score", "pareto", "seconds", "cached" }
local NAMED = { memory = true, area = true, latency = true, energy = true }

local function csv_field(v)
  if v == nil then return "" end
  if type(v) == "boolean" then return v and "1" or "0" end
  if type(v) == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    return string.format("%.10g", v)
  end
  v = tostring(v)
  if v:find('[,"\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
  return v
end

-- One CSV row per evaluated candidate: M.CSV_COLUMNS, then one column per constraint other than
-- the four named limits (its value; a predicate's verdict as 1/0), headed by its name.
function M.to_csv(rep)
  local extra = {}
  for _, n in ipairs(rep.constraint_set and rep.constraint_set:names() or {}) do
    if not NAMED[n] then extra[#extra + 1] = n end
  end
  local head = {}
  for i, c in ipairs(M.CSV_COLUMNS) do head[i] = c end
  for _, n in ipairs(extra) do head[#head + 1] = csv_field(n) end
  -- a co-search's hardware knobs (docs/search.md), as one last column when any result has them
  local knobs, with_knobs = require("neuronas.search.knobs"), false
  for _, r in ipairs(rep.results) do with_knobs = with_knobs or knobs.has(r) end
  if with_knobs then head[#head + 1] = "knobs" end
  local lines = { table.concat(head, ",") }
  for _, r in ipairs(rep.results) do
    local c = r.cost or {}
    local row = { r.index, r.stage, r.cellA, r.cellB, c.memory_params, c.area_mm2, c.latency_ms,
      c.energy_uj, c.tiles, c.pes, r.feasible, r.stage_ok, r.violation, r.score, r.pareto or false, r.seconds, r.cached }
    for i = 1, #M.CSV_COLUMNS do row[i] = csv_field(row[i]) end
    for _, n in ipairs(extra) do
      local rec = r.checks and r.checks[n]
      row[#row + 1] = csv_field(rec and rec.value)
    end
    if with_knobs then row[#row + 1] = csv_field(knobs.text(r)) end
    lines[#lines + 1] = table.concat(row, ",")
  end
  return table.concat(lines, "\n") .. "\n"
end

-- Writes text to path atomically (temp file + rename), so a crash never leaves a torn report.
function M.write_file(path, text)
  local tmp = path .. ".tmp"
  do
    local f <close>, err = io.open(tmp, "w")
    if not f then error(string.format("cannot write '%s': %s", path, err), 0) end
    f:write(text)
  end -- closed (flushed) before the rename
  local ok, rerr = os.rename(tmp, path)
  if not ok then error(string.format("cannot write '%s': %s", path, rerr), 0) end
end

return M
