-- neuronas/search/pareto.lua: what a report lists beside the best: the Pareto front of the feasible
-- scored results and the nearest misses of an infeasible run.
local M = {}

-- Marks the Pareto front of the feasible scored results: no other result has a score at least
-- as high and energy, area and latency at most as high, with one strictly better.
function M.pareto(results)
  local pts = {}
  for _, r in ipairs(results) do
    if r.feasible and r.score and r.score > -math.huge then pts[#pts + 1] = r end
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

-- The n results closest to feasibility (by total normalised violation), best score first on ties.
function M.nearest_misses(results, n)
  local miss = {}
  for _, r in ipairs(results) do
    if not r.feasible then miss[#miss + 1] = r end
  end
  table.sort(miss, function(a, b)
    if a.violation ~= b.violation then return a.violation < b.violation end
    return a.index < b.index
  end)
  local out = {}
  for i = 1, math.min(n or 5, #miss) do out[i] = miss[i] end
  return out
end

return M
