-- scripts/bench-fitness-paper.lua: the estimated wall time of a whole two-stage search at paper
-- size (docs/performance.md, "Fitness at paper size"), from per-candidate times measured by
-- `bench_fitness paper`. Run by scripts/bench-fitness --paper:
--   neuronas run scripts/bench-fitness-paper.lua STAGE1_S STAGE2_S [BITS]
-- Stage 1 scores (c, c) for every cell c of the 729 that fits the memory budget; stage 2 scores
-- (A*, c) for every c meeting the whole budget (README, "The search"); skipped candidates are costed
-- with the closed-form hardware model only, which takes microseconds. In the neuronas space a
-- candidate's costs depend only on how many conv3x3 edges each cell has (skip and avgpool have
-- no weights), so 7 x 7 nets of the cifar100 preset decide every candidate; A* is not known
-- before stage 1 has scored, so stage 2 is given for every possible count of convs in A*.
local nn = require("neuronas")
local app = require("neuronas.app")

local args = { ... }
local t1, t2, bits = tonumber(args[1]), tonumber(args[2]), tonumber(args[3] or "8")
if not t1 or not t2 or not bits then
  io.stderr:write("usage: neuronas run scripts/bench-fitness-paper.lua STAGE1_S STAGE2_S [BITS]\n")
  os.exit(2)
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

local s1 = 0
for n = 0, 6 do
  if fits_mem[n][n] then s1 = s1 + count[n] end
end
print(string.format("budget (cifar100 preset, FxP%d): memory %g params, area %g mm^2, latency %g ms, energy %g uJ",
  bits, limits.memory, limits.area, limits.latency, limits.energy))
print(string.format("stage 1: %d of 729 candidates fit the memory budget and are scored", s1))
local lo, hi
for na = 0, 6 do
  if fits_mem[na][na] then
    local s2 = 0
    for nb = 0, 6 do
      if fits_all[na][nb] then s2 = s2 + count[nb] end
    end
    print(string.format("stage 2 with %d conv3x3 edge(s) in A*: %d of 729 candidates meet the whole budget", na, s2))
    lo, hi = math.min(lo or s2, s2), math.max(hi or s2, s2)
  end
end
lo, hi = lo or 0, hi or 0
local function hours(s) return s / 3600 end
print(string.format("estimated two-stage search: %.1f h (stage 1: %d x %.2f s) + %.1f-%.1f h (stage 2: %d-%d x %.2f s) "
  .. "= %.1f-%.1f h wall", hours(s1 * t1), s1, t1, hours(lo * t2), hours(hi * t2), lo, hi, t2,
  hours(s1 * t1 + lo * t2), hours(s1 * t1 + hi * t2)))
print(string.format("paper.search_h=%.2f-%.2f", hours(s1 * t1 + lo * t2), hours(s1 * t1 + hi * t2)))
