-- neuronas/report.lua: what a search prints and writes: the final summary, the JSON
-- report (format documented in README "The search report") and the per-candidate CSV.
local json = require("neuronas.json")

local M = {}

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

-- The constraint table: one row per limit with value, limit and a pass/fail mark; custom
-- constraints come from the result's check records.
function M.constraint_rows(result)
  local rows = {}
  for _, rec in ipairs(result.checks or {}) do
    local v = rec.value
    local vs = type(v) == "number" and (math.abs(v) >= 1e4 and group(v) or string.format("%.4g", v)) or tostring(v)
    local ls = type(rec.limit) == "number" and (math.abs(rec.limit) >= 1e4 and group(rec.limit) or string.format("%.4g", rec.limit))
      or tostring(rec.limit or "")
    rows[#rows + 1] = string.format("    %-12s %16s %-7s <= %-14s %s", rec.name, vs, rec.unit or "", ls, rec.ok and "ok" or "FAIL")
  end
  return rows
end

-- The final summary printed by the main job.
function M.summary(rep, opts)
  opts = opts or {}
  local out = {}
  local function add(s) out[#out + 1] = s end
  local r = rep.best
  add("")
  if r then
    add(string.format("Found architecture (%s search), fitness score %.6f", rep.strategy, r.score))
    if r.variation then
      local v = r.variation
      add(string.format("    robust score (mean of %d noisy copies, sigma %g): %.6f, worst %.6f; noise-free %.6f, drop %.6f",
        v.draws, v.sigma, v.mean, v.worst, v.clean, v.drop))
    end
    if r.cost and r.cost.energy_active_uj then
      add(string.format("    activity-aware energy %.4f uJ (%.1f %% of the static %.4f uJ)", r.cost.energy_active_uj,
        100 * r.cost.energy_active_uj / r.cost.energy_uj, r.cost.energy_uj))
    end
    add(string.format("    cell A: %s", r.cellA))
    add(string.format("    cell B: %s", r.cellB))
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
    add("No feasible architecture: no candidate met every constraint.")
    if #rep.nearest > 0 then
      add("Nearest misses (total normalised violation):")
      for _, m in ipairs(rep.nearest) do
        local fails = {}
        for _, rec in ipairs(m.checks or {}) do
          if not rec.ok then fails[#fails + 1] = string.format("%s %+.1f%%", rec.name, 100 * (rec.violation or 0)) end
        end
        add(string.format("    %.4f  %s | %s  (%s)", m.violation, m.cellA, m.cellB, table.concat(fails, ", ")))
      end
    end
  end
  add("")
  local c = rep.counts
  add(string.format("Candidates: %d evaluated, %d scored, %d skipped by constraints, %d from cache; %d on the Pareto front",
    c.evaluated, c.scored, c.skipped, c.cached, #rep.pareto))
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
    cost = json.object(cost), feasible = r.feasible, violation = r.violation,
    score = r.score or json.null, pareto = r.pareto or false,
    variation = r.variation and { clean = r.variation.clean, mean = r.variation.mean, worst = r.variation.worst,
      drop = r.variation.drop, sigma = r.variation.sigma, draws = r.variation.draws } or nil,
  }
end

-- The JSON report (README "The search report").
function M.to_json(rep, settings, extra)
  local best = json.null
  if rep.best then
    best = result_json(rep.best)
    best.checks = {}
    for i, rec in ipairs(rep.best.checks or {}) do
      best.checks[i] = { name = rec.name, value = rec.value, limit = rec.limit or json.null, ok = rec.ok }
    end
    if extra and extra.layers then best.layers = extra.layers end
  end
  local nearest, pareto = {}, {}
  for i, m in ipairs(rep.nearest or {}) do nearest[i] = result_json(m) end
  for i, m in ipairs(rep.pareto or {}) do pareto[i] = result_json(m) end
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
  }
  return json.encode(doc, { indent = "  ", nonfinite = "null" }) .. "\n"
end

M.CSV_COLUMNS = { "index", "stage", "cellA", "cellB", "memory_params", "area_mm2", "latency_ms",
  "energy_uj", "feasible", "violation", "score", "pareto", "seconds", "cached" }

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

-- One CSV row per evaluated candidate.
function M.to_csv(rep)
  local lines = { table.concat(M.CSV_COLUMNS, ",") }
  for _, r in ipairs(rep.results) do
    local c = r.cost or {}
    local row = { r.index, r.stage, r.cellA, r.cellB, c.memory_params, c.area_mm2, c.latency_ms,
      c.energy_uj, r.feasible, r.violation, r.score, r.pareto or false, r.seconds, r.cached }
    for i = 1, #M.CSV_COLUMNS do row[i] = csv_field(row[i]) end
    lines[#lines + 1] = table.concat(row, ",")
  end
  return table.concat(lines, "\n") .. "\n"
end

-- Writes text to path atomically (temp file + rename), so a crash never leaves a torn report.
function M.write_file(path, text)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "w")
  if not f then error(string.format("cannot write '%s': %s", path, err), 0) end
  f:write(text)
  f:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then error(string.format("cannot write '%s': %s", path, rerr), 0) end
end

return M
