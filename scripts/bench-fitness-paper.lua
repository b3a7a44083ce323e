-- scripts/bench-fitness-paper.lua: the estimated wall time of a whole two-stage search at paper
-- size (docs/performance.md, "Fitness at paper size"), from per-candidate times measured by
-- `bench_fitness paper` and `bench_fitness paper-space`. Run by scripts/bench-fitness --paper:
--   neuronas run scripts/bench-fitness-paper.lua STAGE1_S STAGE2_S [BITS [SPACE_FILE]]
-- Stage 1 scores (c, c) for every cell c of the 729 that fits the memory budget; stage 2 scores
-- (A*, c) for every c meeting the whole budget (README, "The search"); skipped candidates are costed
-- with the closed-form hardware model only, which takes microseconds. In the neuronas space a
-- candidate's costs depend only on how many conv3x3 edges each cell has (skip and avgpool have
-- no weights), so 7 x 7 nets of the cifar100 preset decide every candidate; A* is not known
-- before stage 1 has scored, so stage 2 is given for every possible count of convs in A*.
-- SPACE_FILE holds `bench_fitness paper-space` output: the seconds of a stage-1 and a stage-2
-- candidate for each count of conv3x3 edges per cell ("paper.s1_n<k>=", "paper.s2_n<k>="); with
-- it every candidate is timed by its cell's count, and STAGE1_S / STAGE2_S (SNASNet's README
-- cell, five convs in each cell) give an upper bound.
local nn = require("neuronas")
local app = require("neuronas.app")

local args = { ... }
local t1, t2, bits = tonumber(args[1]), tonumber(args[2]), tonumber(args[3] or "8")
if not t1 or not t2 or not bits then
  io.stderr:write("usage: neuronas run scripts/bench-fitness-paper.lua STAGE1_S STAGE2_S [BITS [SPACE_FILE]]\n")
  os.exit(2)
end
-- per conv3x3 count: s1[n], s2[n] seconds, from SPACE_FILE
local s1t, s2t
if args[4] then
  local f, why = io.open(args[4])
  if not f then
    io.stderr:write("bench-fitness-paper.lua: " .. why .. "\n")
    os.exit(2)
  end
  s1t, s2t = {}, {}
  for line in f:lines() do
    local st, n, v = line:match("^paper%.s([12])_n(%d)=([%d.]+)$")
    if st then (st == "1" and s1t or s2t)[tonumber(n)] = tonumber(v) end
  end
  f:close()
  for n = 0, 6 do
    if not s1t[n] or not s2t[n] then
      io.stderr:write(string.format("bench-fitness-paper.lua: %s has no paper.s1_n%d / paper.s2_n%d line\n", args[4], n, n))
      os.exit(2)
    end
  end
end

local limits = app.default_limits("cifar100")
local hw = nn.ela({ mode = "neuronas" })
local icache = nn.init_cache({})

local function cell_with(n) -- n conv3x3 edges, the others skip
  local ops = {}
  for e = 1, 6 do ops[e] = e <= n and "conv3x3" or "skip" end
  return table.concat(ops, " ")
end

local function binom(n, k)
  local r = 1
  for i = 1, k do r = r * (n - k + i) / i end
  return r
end
-- cells of the 729 with n conv3x3 edges: choose the conv edges, each other edge skip or avgpool
local count = {}
for n = 0, 6 do count[n] = binom(6, n) * 2 ^ (6 - n) end

local fits_mem, fits_all = {}, {}
for na = 0, 6 do
  fits_mem[na], fits_all[na] = {}, {}
  for nb = 0, 6 do
    local net = nn.net({ preset = "cifar100", cellA = cell_with(na), cellB = cell_with(nb), init_cache = icache })
    local cost = hw:evaluate(net, { bits = bits })
    net:close()
    fits_mem[na][nb] = cost.memory_params <= limits.memory
    fits_all[na][nb] = fits_mem[na][nb] and cost.area_mm2 <= limits.area and cost.latency_ms <= limits.latency
      and cost.energy_uj <= limits.energy
  end
end

-- per-count weights w[0..6] (1 for a count of candidates, seconds for a time) summed over the
-- candidates each stage scores: stage 1 every (c, c) within the memory budget; stage 2, for an A*
-- with na conv3x3 edges, every (A*, c) meeting the whole budget; range: stage 2's least and most
-- over the A* that stage 1 can score
local function weighted(keep, w) -- sum of count[n] * w[n] over the counts n that keep(n) admits
  local sum = 0
  for n = 0, 6 do
    if keep(n) then sum = sum + count[n] * w[n] end
  end
  return sum
end
local function stage1(w)
  return weighted(function(n) return fits_mem[n][n] end, w)
end
local function stage2(na, w)
  return weighted(function(nb) return fits_all[na][nb] end, w)
end
local function range(w)
  local lo, hi
  for na = 0, 6 do
    if fits_mem[na][na] then
      local sum = stage2(na, w)
      lo, hi = math.min(lo or sum, sum), math.max(hi or sum, sum)
    end
  end
  return lo or 0, hi or 0
end
local ones = {}
for n = 0, 6 do ones[n] = 1 end

local s1 = stage1(ones)
print(string.format("budget (cifar100 preset, FxP%d): memory %g params, area %g mm^2, latency %g ms, energy %g uJ",
  bits, limits.memory, limits.area, limits.latency, limits.energy))
print(string.format("stage 1: %d of 729 candidates fit the memory budget and are scored", s1))
for na = 0, 6 do
  if fits_mem[na][na] then
    print(string.format("stage 2 with %d conv3x3 edge(s) in A*: %d of 729 candidates meet the whole budget", na,
      stage2(na, ones)))
  end
end
local lo, hi = range(ones)
local function hours(s) return s / 3600 end
local bound = s1t and "upper bound, every candidate as the README cell" or "estimated two-stage search"
print(string.format("%s: %.1f h (stage 1: %d x %.2f s) + %.1f-%.1f h (stage 2: %d-%d x %.2f s) "
  .. "= %.1f-%.1f h wall", bound, hours(s1 * t1), s1, t1, hours(lo * t2), hours(hi * t2), lo, hi, t2,
  hours(s1 * t1 + lo * t2), hours(s1 * t1 + hi * t2)))
if s1t then
  -- every candidate timed by its cells' conv3x3 counts
  local w1 = stage1(s1t)
  local w2lo, w2hi = range(s2t)
  print(string.format("estimated two-stage search, each candidate timed by its cells' conv3x3 count: %.1f h (stage 1: "
    .. "%d candidates, %.2f s mean) + %.1f-%.1f h (stage 2) = %.1f-%.1f h wall", hours(w1), s1, s1 > 0 and w1 / s1 or 0,
    hours(w2lo), hours(w2hi), hours(w1 + w2lo), hours(w1 + w2hi)))
  print(string.format("paper.search_h=%.2f-%.2f", hours(w1 + w2lo), hours(w1 + w2hi)))
else
  print(string.format("paper.search_h=%.2f-%.2f", hours(s1 * t1 + lo * t2), hours(s1 * t1 + hi * t2)))
end
