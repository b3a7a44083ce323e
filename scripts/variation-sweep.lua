-- scripts/variation-sweep.lua: how the main job's choice moves with the device variation
-- (docs/variation.md, "Measured"). Runs scripts/neuronas.lua's search once per sigma (sigma 0:
-- without --variation, the noise-free search), each with its own journal and JSON report in
-- --dir (made if missing; by default ./variation-sweep in the current folder), and prints one
-- row per sigma: the chosen cells, their noise-free and robust (mean over the noisy copies)
-- scores, the drop, the worst copy, and over every scored candidate the rank correlation of
-- noise-free and robust scores and the median drop.
--   neuronas run scripts/variation-sweep.lua [--sigmas 0,0.05,0.1,0.2] [--dir DIR] [--cells N] [--reuse]
local cli = require("neuronas.cli")
local app = require("neuronas.app")
local json = require("neuronas.json")
local L = require("neuronas.limits")

local spec = {
  { name = "sigmas", type = "string", default = "0,0.05,0.1,0.2", metavar = "LIST",
    help = "cell standard deviations, comma-separated (0: the noise-free search)" },
  { name = "draws", type = "integer", default = 4, range = L.draws, help = "noisy copies per candidate" },
  { name = "dir", type = "string", default = "variation-sweep", metavar = "DIR",
    help = "folder of each run's journal and JSON report, made if missing (the default is in the current folder)" },
  { name = "cells", type = "integer", range = L.cells, help = "search only the first N cells (quick trials)" },
  { name = "threads", type = "integer", default = 2, range = L.threads, help = "the main job's --threads" },
  { name = "reuse", type = "boolean", help = "read a sigma's JSON report from --dir when it is there instead of searching again" },
}
local opts = { name = "variation-sweep.lua",
  usage = "neuronas run variation-sweep.lua [--sigmas LIST] [--draws N] [--dir DIR] [--cells N] [--help]",
  description = "The main job's chosen architecture at several device-variation sigmas (docs/variation.md)." }
local flags = cli.parse({ ... }, spec, opts)

local sigmas = {}
for s in flags.sigmas:gmatch("[^,%s]+") do
  local v = tonumber(s)
  if not v or not L.contains(L.sigma, v) then
    cli.fail(opts, "--sigmas: numbers in " .. L.describe(L.sigma) .. " expected, got '" .. s .. "'")
  end
  sigmas[#sigmas + 1] = v
end
if #sigmas == 0 then cli.fail(opts, "--sigmas: at least one value expected") end
-- --dir: made if missing (mkdir -p), then a folder we can write in, or a usage error naming it
if flags.dir == "" then cli.fail(opts, "--dir: a folder path expected, got ''") end
do
  local core = require("neuronas.core")
  local kind = core.file_kind(flags.dir)
  if kind == nil then
    local q = "'" .. flags.dir:gsub("'", "'\\''") .. "'"
    local p = assert(io.popen("LC_ALL=C mkdir -p -- " .. q .. " 2>&1"))
    local said = p:read("a")
    if not p:close() then
      -- mkdir's own words are "mkdir: cannot create directory 'X': <reason>"; keep the reason
      local why = said:match(": ([^:\n]+)\n?$") or "mkdir failed"
      cli.fail(opts, string.format("--dir %s: cannot make the folder: %s", flags.dir, why))
    end
    kind = core.file_kind(flags.dir)
  end
  if kind ~= "folder" then cli.fail(opts, string.format("--dir %s: not a folder", flags.dir)) end
  for _, s in ipairs(sigmas) do
    local tag = string.format("%s/sigma-%g", flags.dir, s)
    cli.check_writable(tag .. ".journal", "dir", opts)
    cli.check_writable(tag .. ".json", "dir", opts)
  end
end

-- Spearman's rank correlation (average ranks on ties).
local function ranks(v)
  local idx = {}
  for i = 1, #v do idx[i] = i end
  table.sort(idx, function(a, b) return v[a] < v[b] end)
  local r, i = {}, 1
  while i <= #idx do
    local j = i
    while j < #idx and v[idx[j + 1]] == v[idx[i]] do j = j + 1 end
    for k = i, j do r[idx[k]] = (i + j) / 2 end
    i = j + 1
  end
  return r
end
local function spearman(a, b)
  local ra, rb = ranks(a), ranks(b)
  local n, ma, mb = #a, 0, 0
  for i = 1, n do ma, mb = ma + ra[i] / n, mb + rb[i] / n end
  local sab, saa, sbb = 0, 0, 0
  for i = 1, n do
    sab = sab + (ra[i] - ma) * (rb[i] - mb)
    saa, sbb = saa + (ra[i] - ma) ^ 2, sbb + (rb[i] - mb) ^ 2
  end
  return (saa > 0 and sbb > 0) and sab / math.sqrt(saa * sbb) or 1
end
local function median(v)
  table.sort(v)
  local n = #v
  if n == 0 then return 0 / 0 end
  return n % 2 == 1 and v[(n + 1) // 2] or (v[n // 2] + v[n // 2 + 1]) / 2
end

local rows = {}
for _, sigma in ipairs(sigmas) do
  local tag = string.format("%s/sigma-%g", flags.dir, sigma)
  local args = { "--quiet", "--threads", tostring(flags.threads), "--journal", tag .. ".journal", "--json", tag .. ".json" }
  if sigma > 0 then
    for _, a in ipairs({ "--variation", tostring(sigma), "--variation-draws", tostring(flags.draws) }) do args[#args + 1] = a end
  end
  if flags.cells then args[#args + 1], args[#args + 2] = "--cells", tostring(flags.cells) end
  local status = 0
  local f = flags.reuse and io.open(tag .. ".json", "rb")
  if f then
    io.stdout:write(string.format("\n== sigma %g: reading %s.json\n", sigma, tag))
  else
    os.remove(tag .. ".journal")
    io.stdout:write(string.format("\n== sigma %g: neuronas run scripts/neuronas.lua %s\n", sigma, table.concat(args, " ")))
    io.stdout:flush()
    status = app.main({ args = args })
    f = assert(io.open(tag .. ".json", "rb"))
  end
  local rep = json.decode(f:read("a"))
  f:close()
  local row = { sigma = sigma, status = status, seconds = rep.seconds }
  local b = rep.best
  if type(b) == "table" then
    local v = type(b.variation) == "table" and b.variation or nil
    row.cells = b.cellA .. " | " .. b.cellB
    row.clean = v and v.clean or b.score
    row.robust = v and v.mean or b.score
    row.worst = v and v.worst or b.score
    row.drop = v and v.drop or 0
  end
  local clean, robust, drops, seen = {}, {}, {}, {}
  for _, r in ipairs(rep.results) do
    local key = r.cellA .. " | " .. r.cellB -- a candidate asked twice counts once
    if not seen[key] and type(r.variation) == "table" and type(r.variation.clean) == "number" and type(r.variation.mean) == "number"
        and r.variation.clean > -math.huge and r.variation.mean > -math.huge then
      seen[key] = true
      clean[#clean + 1], robust[#robust + 1], drops[#drops + 1] = r.variation.clean, r.variation.mean, r.variation.drop
    end
  end
  row.scored = #clean
  row.rho = #clean > 1 and spearman(clean, robust) or 1
  row.median_drop = #drops > 0 and median(drops) or 0
  rows[#rows + 1] = row
end

io.stdout:write("\n| sigma | chosen cell A | chosen cell B | noise-free score | robust score (worst copy) | drop |"
  .. " Spearman(noise-free, robust) | median drop | wall time, s |\n|---|---|---|---|---|---|---|---|---|\n")
for _, r in ipairs(rows) do
  local a, b = (r.cells or "none | none"):match("^(.-) | (.*)$")
  io.stdout:write(string.format("| %g | %s | %s | %.4f | %.4f (%.4f) | %.4f | %s | %s | %.1f |\n", r.sigma, a, b,
    r.clean or 0 / 0, r.robust or 0 / 0, r.worst or 0 / 0, r.drop or 0 / 0,
    r.scored > 0 and string.format("%.4f over %d", r.rho, r.scored) or "-",
    r.scored > 0 and string.format("%.4f", r.median_drop) or "-", r.seconds or 0 / 0))
end
