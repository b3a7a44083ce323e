-- neuronas/search/pareto.lua: what a report lists beside the best: the Pareto front of the feasible
-- scored results and the nearest misses of an infeasible run.
local M = {}

local function check_list(fname, results)
  if type(results) ~= "table" then
    error(string.format("%s: bad argument #1 (list of results expected, got %s)", fname, type(results)), 3)
  end
  for i, r in ipairs(results) do
    if type(r) ~= "table" then
      error(string.format("%s: results[%d]: table expected, got %s", fname, i, type(r)), 3)
    end
  end
end

-- The results that repeat an earlier result's candidate (stage 1's (c, c) again in stage 2, a
-- repeat answered by the cache), as a set: a candidate counts once, at its first evaluation. A
-- result without a key is keyed as the evaluator keys candidates (its cells and knobs).
function M.repeats(results)
  local key_of = require("neuronas.search.evaluator").key
  local seen, again = {}, {}
  for _, r in ipairs(results) do
    local key = r.key or (r.cellA and r.cellB and key_of(r)) or r
    if seen[key] then again[r] = true end
    seen[key] = true
  end
  return again
end

-- Marks the Pareto front of the feasible scored results: no other result has a score at least
-- as high and energy, area and latency at most as high, with one strictly better.
function M.pareto(results)
  check_list("search.pareto", results)
  local again = M.repeats(results)
  local pts = {}
  for i, r in ipairs(results) do
    if r.feasible and r.score and r.score > -math.huge and not again[r] then
      if type(r.score) ~= "number" then
        error(string.format("search.pareto: results[%d]: field 'score': number expected, got %s", i, type(r.score)), 2)
      end
      if type(r.cost) ~= "table" then
        error(string.format("search.pareto: results[%d]: field 'cost': table expected (a feasible scored result"
          .. " has its costs), got %s", i, type(r.cost)), 2)
      end
      pts[#pts + 1] = r
    end
  end
  local function le(a, b) return (a or 0) <= (b or 0) end
  local front = {}
  for _, a in ipairs(pts) do
    local dominated = false
    for _, b in ipairs(pts) do
      if b ~= a and b.score >= a.score and le(b.cost.energy_uj, a.cost.energy_uj)
          and le(b.cost.area_mm2, a.cost.area_mm2) and le(b.cost.latency_ms, a.cost.latency_ms)
          and (b.score > a.score or (b.cost.energy_uj or 0) < (a.cost.energy_uj or 0)
            or (b.cost.area_mm2 or 0) < (a.cost.area_mm2 or 0) or (b.cost.latency_ms or 0) < (a.cost.latency_ms or 0)) then
        dominated = true
        break
      end
    end
    if not dominated then
      a.pareto = true
      front[#front + 1] = a
    end
  end
  return front
end

-- The n results closest to feasibility (by total normalised violation; ties in the run's order),
-- each candidate once.
function M.nearest_misses(results, n)
  check_list("search.nearest_misses", results)
  if n ~= nil and (math.type(n) ~= "integer" or n < 0) then
    error(string.format("search.nearest_misses: bad argument #2 (integer >= 0 expected, got %s)", tostring(n)), 2)
  end
  local again = M.repeats(results)
  local miss, at = {}, {}
  for i, r in ipairs(results) do
    if not r.feasible and not again[r] then
      local v = r.violation
      if type(v) ~= "number" or v ~= v then
        error(string.format("search.nearest_misses: results[%d]: field 'violation': number expected (an infeasible"
          .. " result's total normalised violation), got %s", i, v ~= v and "nan" or type(v)), 2)
      end
      miss[#miss + 1] = r
      at[r] = math.type(r.index) == "integer" and r.index or i -- ties: the run's order
    end
  end
  table.sort(miss, function(a, b)
    if a.violation ~= b.violation then return a.violation < b.violation end
    return at[a] < at[b]
  end)
  local out = {}
  for i = 1, math.min(n or 5, #miss) do out[i] = miss[i] end
  return out
end

return M
