-- neuronas/search/prefilter.lua: feasibility-aware stage 1 (docs/search.md, "Stage 1"). Before
-- anything is scored, every completion (c, B) of a stage-1 cell c is costed against the run's
-- constraints, and only the cells some B completes within every limit stay stage-1 candidates.
--
-- Why it is cheap: in the hardware model's "neuronas" mode every cost the named limits read is a
-- sum over layers, and no layer is shared between cell A and the rest (a layer has its own tiles,
-- the downconv's input is C channels whatever cell A is, and the last layer -- the one with the
-- full-latency term -- is cell B's or the downconv). So
--   cost(c, B) = A(c) + R(B),   A(c) = the cellA.* layers of (c, c),  R(B) = cost(B, B) - A(B)
-- for every additive field, and costing all N x N completions takes the N (c, c) costs stage 1
-- needs anyway plus N x |front| additions, where the front is the Pareto-minimal R(B) vectors
-- (tests/spec/prefilter_spec.lua checks it against the full model). Verdicts within `TOL` of a
-- limit are confirmed on the full model, so rounding never decides one.
--
-- Only limits on additive cost fields take part (the named limits, tiles, pes, xbars); Lua cost
-- functions and predicates are not used (they may read anything), and the result says so.
-- A cost without named per-layer records, or another hardware mode, falls back to costing every
-- completion through the pipeline (prefilter.brute, also the reference the spec checks against).
-- So does a cost that is not finite (a custom hardware model's inf, where inf - inf would be
-- NaN); the brute force reads a NaN cost as +inf, within no limit.
local M = {}

M.TOL = 1e-9
-- Completions the fallback costs one by one at most; beyond, the pre-filter keeps every cell and
-- says why (method "none").
M.BRUTE_MAX = 20000

-- Cost field -> the per-layer field summing to it.
local ADDITIVE = { memory_params = "weights", pes = "pes", xbars = "xbars", tiles = "tiles",
  area_mm2 = "area_mm2", energy_uj = "energy_uj", latency_ms = "latency_ms" }
M.ADDITIVE = ADDITIVE

local function genotype(c) return type(c) == "string" and c or tostring(c) end
local function finite(x) return type(x) == "number" and x == x and x > -math.huge and x < math.huge end
local named_cheapest

-- The constraints of a set the decomposition can use: { name =, field =, max = } in set order,
-- and the others as { name =, why = }.
function M.usable(set)
  local use, skip = {}, {}
  for _, c in ipairs(set.list) do
    if c.kind == "field" and ADDITIVE[c.field] then
      use[#use + 1] = { name = c.name, field = c.field, max = c.max }
    else
      skip[#skip + 1] = { name = c.name,
        why = c.kind == "field" and ("cost." .. c.field .. " is not a sum over layers") or "a Lua function" }
    end
  end
  return use, skip
end

-- A(c): the cellA.* part of a (c, c) cost, per used field; nil when the layers carry no names.
function M.cell_a_part(cost, use)
  if type(cost.layers) ~= "table" or cost.mode ~= "neuronas" then return nil end
  local a, named = {}, false
  for k, u in ipairs(use) do a[k] = 0 end
  for _, l in ipairs(cost.layers) do
    if type(l.name) ~= "string" then return nil end
    named = true
    if l.name:sub(1, 6) == "cellA." then
      for k, u in ipairs(use) do a[k] = a[k] + l[ADDITIVE[u.field]] end
    end
  end
  return named and a or nil
end

-- Does a value vector meet every used limit? true, false, or "near" (within TOL of one).
local function verdict(v, use)
  local near = false
  for k, u in ipairs(use) do
    if v[k] > u.max * (1 + M.TOL) then return false end
    if v[k] > u.max * (1 - M.TOL) then near = true end
  end
  return near and "near" or true
end

-- The pre-filter's result: { kept = cells, excluded = n, by_limit = { name = n }, jointly = n,
--   used = { names }, unused = { {name, why} }, method = "decomposed"|"brute"|"none", seconds,
--   completions = N x M, cells = N }
-- by_limit counts the excluded cells no B completes within that limit alone; `jointly` those
-- where each limit alone can be met but never all at once.
local function result(cells, keep, minima, use, skip, method)
  local r = { kept = {}, excluded = 0, by_limit = {}, jointly = 0, used = {}, unused = skip,
    method = method, cells = #cells }
  for _, u in ipairs(use) do r.used[#r.used + 1] = u.name end
  for i, c in ipairs(cells) do
    if keep[i] then
      r.kept[#r.kept + 1] = c
    else
      r.excluded = r.excluded + 1
      local alone = false
      for k, u in ipairs(use) do
        if minima[i][k] > u.max then
          r.by_limit[u.name] = (r.by_limit[u.name] or 0) + 1
          alone = true
        end
      end
      if not alone then r.jointly = r.jointly + 1 end
    end
  end
  return r
end

-- { name = { value, limit, cellA, cellB } } from a list indexed like `use` (genotypes as strings).
named_cheapest = function(list, use)
  local out = {}
  for k, u in ipairs(use) do
    local c = list[k]
    if c then
      out[u.name] = { value = c.value, limit = u.max, cellA = genotype(c.cellA), cellB = genotype(c.cellB) }
    end
  end
  return out
end

-- The Pareto-minimal rows of a list of vectors (indices), smallest first in the first field.
local function minimal_front(vecs, nk)
  local order = {}
  for j = 1, #vecs do order[j] = j end
  table.sort(order, function(x, y)
    for k = 1, nk do
      if vecs[x][k] ~= vecs[y][k] then return vecs[x][k] < vecs[y][k] end
    end
    return x < y
  end)
  local front = {}
  for _, j in ipairs(order) do
    local v, dominated = vecs[j], false
    for _, f in ipairs(front) do
      local w, le = vecs[f], true
      for k = 1, nk do
        if w[k] > v[k] then le = false break end
      end
      if le then dominated = true break end
    end
    if not dominated then front[#front + 1] = j end
  end
  return front
end

-- Exact check of one completion on the full model (borderline verdicts, and the brute force).
local function full_values(ev, a, b, use)
  local cost = ev:cost_only({ cellA = a, cellB = b })
  local v = {}
  for k, u in ipairs(use) do
    local x = cost[u.field]
    v[k] = x == x and x or math.huge -- NaN: within no limit (not a pass by failed comparisons)
  end
  return v
end

-- prefilter.brute(ev, cellsA, cellsB, set) -> result: every completion costed by the pipeline.
function M.brute(ev, cells, cellsB, set)
  local clock = ev.clock or os.clock
  local t0 = clock()
  local use, skip = M.usable(set)
  local keep, minima, cheapest = {}, {}, {}
  for i, c in ipairs(cells) do
    local mins = {}
    for k = 1, #use do mins[k] = math.huge end
    for _, b in ipairs(cellsB) do
      local v = full_values(ev, c, b, use)
      local ok = true
      for k, u in ipairs(use) do
        mins[k] = math.min(mins[k], v[k])
        if not cheapest[k] or v[k] < cheapest[k].value then cheapest[k] = { value = v[k], cellA = c, cellB = b } end
        if v[k] > u.max then ok = false end
      end
      if ok then keep[i] = true end
    end
    minima[i] = mins
  end
  local r = result(cells, keep, minima, use, skip, "brute")
  r.cheapest = named_cheapest(cheapest, use)
  r.completions, r.seconds = #cells * #cellsB, clock() - t0
  return r
end

-- prefilter.run(ev, cells, set[, cellsB = cells]) -> result (see above). ev is the run's
-- evaluator: ev:cost_only(cand) gives (and keeps for stage 1) the (c, c) costs.
function M.run(ev, cells, set, cellsB)
  cellsB = cellsB or cells
  local clock = ev.clock or os.clock
  local t0 = clock()
  local use, skip = M.usable(set)
  if #use == 0 then
    local r = result(cells, setmetatable({}, { __index = function() return true end }), {}, use, skip, "none")
    r.completions, r.seconds = 0, clock() - t0
    return r
  end
  -- A(x) and R(x) for every cell at either position
  local A, R, same = {}, {}, {}
  local function parts(x)
    local g = genotype(x)
    if same[g] then return same[g] end
    local cost = ev:cost_only({ cellA = x, cellB = x })
    local a = M.cell_a_part(cost, use)
    if not a then return nil end
    local rest = {}
    for k, u in ipairs(use) do
      if not (finite(cost[u.field]) and finite(a[k])) then return nil, "nonfinite" end
      rest[k] = cost[u.field] - a[k]
    end
    same[g] = { a = a, r = rest }
    return same[g]
  end
  local function fallback(why)
    if #cells * #cellsB <= M.BRUTE_MAX then return M.brute(ev, cells, cellsB, set) end
    local r = result(cells, setmetatable({}, { __index = function() return true end }), {}, use, skip, "none")
    r.completions, r.seconds = 0, clock() - t0
    r.why = why == "nonfinite"
      and "a cost is not finite, so the costs do not split into a cell-A part and a rest, and"
        .. " costing every completion is too slow"
      or "the costs do not split into a cell-A part and a rest (hardware mode other than"
        .. " \"neuronas\", or layers without names), and costing every completion is too slow"
    return r
  end
  for i, c in ipairs(cells) do
    local p, why = parts(c)
    if not p then return fallback(why) end
    A[i] = p.a
  end
  for j, b in ipairs(cellsB) do
    local p, why = parts(b)
    if not p then return fallback(why) end
    R[j] = p.r
  end
  local nk = #use
  local t1 = clock()
  local front = minimal_front(R, nk)
  local rmin, rarg = {}, {}
  for k = 1, nk do
    rmin[k] = math.huge
    for _, j in ipairs(front) do
      if R[j][k] < rmin[k] then rmin[k], rarg[k] = R[j][k], j end
    end
  end
  local keep, minima, v = {}, {}, {}
  for i, c in ipairs(cells) do
    local a, mins = A[i], {}
    for k = 1, nk do mins[k] = a[k] + rmin[k] end
    minima[i] = mins
    local near = {}
    for _, j in ipairs(front) do
      local r = R[j]
      for k = 1, nk do v[k] = a[k] + r[k] end
      local ok = verdict(v, use)
      if ok == true then keep[i] = true break end
      if ok == "near" then near[#near + 1] = j end
    end
    if not keep[i] then
      for _, j in ipairs(near) do
        local exact, fine = full_values(ev, c, cellsB[j], use), true
        for k, u in ipairs(use) do
          if exact[k] > u.max then fine = false end
        end
        if fine then keep[i] = true break end
      end
    end
  end
  -- an excluded cell's least value for a limit within rounding of that limit: from the full
  -- model (the decomposed sums round otherwise), over the cells B whose part is as near the
  -- least, so that which limit excludes it alone is not decided by rounding
  for i, c in ipairs(cells) do
    if not keep[i] then
      for k, u in ipairs(use) do
        local slack = M.TOL * math.abs(u.max)
        if math.abs(minima[i][k] - u.max) <= slack then
          local least = math.huge
          for j, r in ipairs(R) do
            if r[k] <= rmin[k] + 2 * slack then least = math.min(least, full_values(ev, c, cellsB[j], use)[k]) end
          end
          minima[i][k] = least
        end
      end
    end
  end
  -- the cheapest completion for each limit: the cell A with the least A(c) + min R
  local cheapest = {}
  for i, c in ipairs(cells) do
    for k = 1, nk do
      if not cheapest[k] or minima[i][k] < cheapest[k].value then
        cheapest[k] = { value = minima[i][k], cellA = c, cellB = cellsB[rarg[k]] }
      end
    end
  end
  local r = result(cells, keep, minima, use, skip, "decomposed")
  r.cheapest = named_cheapest(cheapest, use)
  r.completions, r.front, r.seconds = #cells * #cellsB, #front, clock() - t0
  r.combine_seconds = clock() - t1 -- the N x N part, after the N (c, c) costs
  return r
end

return M
