-- scripts/compare.lua: the paper's comparison (NeuroNAS Tables/Figs.): the two-stage search at
-- FxP16, FxP12 and FxP8 and SNASNet's random baseline at FxP32, all judged against the same
-- constraints, in one table with savings relative to the baseline and the speed-up of the search
-- time (the baseline's seconds over a row's; the "seconds" column).
local search = require("neuronas.search")
local cli = require("neuronas.cli")
local app = require("neuronas.app")
local L = require("neuronas.limits")

local spec = app.extend(app.flags(), {
  { name = "num", type = "integer", default = 5000, range = L.num, help = "SNASNet baseline samples" },
  { name = "precisions", type = "string", default = "16,12,8", metavar = "LIST",
    help = "NeuroNAS precisions, comma-separated, each in " .. L.describe(L.bits) },
  { name = "cells", type = "integer", range = L.cells, help = "NeuroNAS: only the first N cells of the space (quick trials)" },
})
local opts = { name = "compare.lua", usage = "neuronas run compare.lua [--num N] [--precisions 16,12,8] [--preset P] [--json FILE] [--help]",
  description = "NeuroNAS at several precisions vs the SNASNet baseline at FxP32, under the same constraints." }
local flags = cli.parse({ ... }, spec, opts)
-- the whole list is checked before any data is read or any search runs
if flags.precisions:match("^%s*$") then cli.fail(opts, "--precisions: at least one precision expected") end
local precisions = {}
for p in flags.precisions:gmatch("[^,]*") do
  local bits = math.tointeger(tonumber(p))
  if not bits or not L.contains(L.bits, bits) then
    cli.fail(opts, "--precisions: integers in " .. L.describe(L.bits) .. " expected, got '" .. p .. "'")
  end
  precisions[#precisions + 1] = bits
end

local constraints = app.constraints(flags, app.default_limits(flags.preset))
local C = require("neuronas.constraints").new(constraints)
local data = app.open_data(flags, opts)

local space = require("neuronas").space("neuronas")
local cells = {}
for i = 1, flags.cells or space:size() do cells[i] = space:cell(i) end

local rows = {}
local function add_row(label, rep, bits)
  local r = rep.best
  local row = { label = label, bits = bits, scored = rep.counts.scored, seconds = rep.seconds, rep = rep }
  if r then
    local ok = C:check(r.cost, r.cost.layers)
    row.cost, row.meets = r.cost, ok
  end
  rows[#rows + 1] = row
end

for _, bits in ipairs(precisions) do
  local f = {}
  for k, v in pairs(flags) do f[k] = v end
  f.bits = bits
  local bar, hooks = app.progress(flags, 2 * #cells, string.format("neuronas FxP%d", bits))
  local setup = app.setup(f, data, constraints)
  setup.hooks, setup.space = hooks, cells
  local rep = search.two_stage(setup)
  bar:finish()
  add_row(string.format("NeuroNAS FxP%d", bits), rep, bits)
end

do
  local f = {}
  for k, v in pairs(flags) do f[k] = v end
  f.bits = L.bits.float
  local bar, hooks = app.progress(flags, flags.num, "snasnet FxP32")
  local setup = app.setup(f, data, nil)
  setup.num, setup.hooks = flags.num, hooks
  local rep = search.random(setup)
  bar:finish()
  add_row("SNASNet FxP32", rep, 32)
end

local base = rows[#rows]
local function ratio(a, b) return (a and b and b > 0) and a / b or nil end
local out = {}
out[#out + 1] = string.format("%-15s %12s %10s %10s %10s %6s %7s %9s   %s",
  "search", "memory", "area mm2", "lat ms", "energy uJ", "meets", "scored", "seconds", "vs SNASNet (memory/area/energy saving, search-time speed-up)")
for _, r in ipairs(rows) do
  local c = r.cost or {}
  local cmp = ""
  if r ~= base and r.cost and base.cost then
    cmp = string.format("%.1f%% / %.1f%% / %.1f%%, %.2fx",
      100 * (1 - (ratio(c.memory_params, base.cost.memory_params) or 1)),
      100 * (1 - (ratio(c.area_mm2, base.cost.area_mm2) or 1)),
      100 * (1 - (ratio(c.energy_uj, base.cost.energy_uj) or 1)),
      ratio(base.seconds, r.seconds) or 0)
  end
  local function num(v, fmt) return v and string.format(fmt, v) or "-" end
  out[#out + 1] = string.format("%-15s %12s %10s %10s %10s %6s %7d %9.1f   %s", r.label,
    num(c.memory_params, "%d"), num(c.area_mm2, "%.3f"), num(c.latency_ms, "%.3f"), num(c.energy_uj, "%.3f"),
    r.cost and (r.meets and "yes" or "NO") or "none", r.scored, r.seconds, cmp)
end
io.stdout:write("\nConstraints: " .. C:describe():gsub("\n", "; ") .. "\n" .. table.concat(out, "\n") .. "\n")
if flags.json then
  local json = require("neuronas.json")
  local doc = { constraints = constraints, rows = {} }
  for i, r in ipairs(rows) do
    doc.rows[i] = { search = r.label, bits = r.bits, cost = r.cost and json.object((function()
      local t = {}
      for k, v in pairs(r.cost) do if type(v) ~= "table" then t[k] = v end end
      return t
    end)()) or json.null, meets_constraints = r.meets or false, scored = r.scored, seconds = r.seconds,
      cellA = r.rep.best and r.rep.best.cellA or json.null, cellB = r.rep.best and r.rep.best.cellB or json.null }
  end
  require("neuronas.report").write_file(flags.json, json.encode(doc, { indent = "  ", nonfinite = "null" }) .. "\n")
end
