-- neuronas/search/hypervolume.lua: multi-objective pieces shared by NSGA-II and the reports
-- (docs/search.md "Objectives, Pareto front and hypervolume"): objective lists, dominance, Deb's
-- fast non-dominated sort, crowding distance, the exact hypervolume of a point set, and the
-- feasible front of a run with its hypervolume against a documented reference point.
-- Internally every objective is minimised: a maximised one (the score) is negated.
local M = {}

-- Names a user may give for the four costs the hardware model reports.
M.ALIASES = { energy = "energy_uj", area = "area_mm2", latency = "latency_ms", memory = "memory_params" }
-- The cost field each named limit of neuronas.constraints reads (for the reference point).
M.LIMIT_OF = { energy_uj = "energy", area_mm2 = "area", latency_ms = "latency", memory_params = "memory" }
M.UNITS = { score = "", energy_uj = "uJ", area_mm2 = "mm^2", latency_ms = "ms", memory_params = "params",
  tiles = "tiles", pes = "PEs", xbars = "crossbars" }
M.DEFAULT = { "score", "energy_uj", "area_mm2", "latency_ms" }

local function finite(v)
  return type(v) == "number" and v == v and v > -math.huge and v < math.huge
end
M.finite = finite

-- objectives(spec) -> list of { field, sense = "max"|"min", unit }.
-- spec: nil (the default: maximise score, minimise energy, area, latency), or a list whose items
-- are "score", a numeric cost field ("tiles", "energy_uj", or an alias: energy, area, latency,
-- memory), or { field = name, sense = "min"|"max" }. Raises naming the bad item.
function M.objectives(spec, fname)
  fname = fname or "objectives"
  spec = spec or M.DEFAULT
  if type(spec) ~= "table" or #spec == 0 then
    error(string.format("%s: non-empty list expected, got %s", fname, type(spec)), 3)
  end
  local out, seen = {}, {}
  for i, item in ipairs(spec) do
    local field, sense
    if type(item) == "string" then
      field = item
    elseif type(item) == "table" then
      for k in pairs(item) do
        if k ~= "field" and k ~= "sense" then
          error(string.format("%s[%d]: unknown key '%s' (expected: field, sense)", fname, i, tostring(k)), 3)
        end
      end
      field, sense = item.field, item.sense
    end
    if type(field) ~= "string" or field == "" then
      error(string.format("%s[%d]: a field name or { field =, sense = } expected, got %s", fname, i, type(item)), 3)
    end
    field = M.ALIASES[field] or field
    sense = sense or (field == "score" and "max" or "min")
    if sense ~= "min" and sense ~= "max" then
      error(string.format("%s[%d]: sense 'min' or 'max' expected, got %s", fname, i, tostring(sense)), 3)
    end
    if seen[field] then error(string.format("%s[%d]: '%s' given twice", fname, i, field), 3) end
    seen[field] = true
    out[i] = { field = field, sense = sense, unit = M.UNITS[field] or "" }
  end
  return out
end

-- The numeric cost fields of the hardware model's evaluate (docs/hardware.md), with the
-- activity-aware energy; a custom pipeline or a constraint file may add others.
M.COST_FIELDS = { "memory_params", "memory_bits", "memory_bytes", "pes", "xbars", "tiles", "n_layers",
  "cells_per_weight", "bits", "timesteps", "area_mm2", "energy_uj", "latency_ms", "area_um2", "energy_pj",
  "latency_ns", "energy_active_uj", "energy_active_pj" }

-- The numeric fields of a cost table, as a set.
function M.numeric_fields(cost, into)
  into = into or {}
  for k, v in pairs(cost) do
    if type(k) == "string" and type(v) == "number" then into[k] = true end
  end
  return into
end

-- Raises naming the objective when one of objs is not in known (a set of field names; "score"
-- is always known), listing them and the aliases. level: error's level (0: no position).
function M.check_fields(objs, known, fname, level)
  for i, o in ipairs(objs) do
    if o.field ~= "score" and not known[o.field] then
      local names, aliases = {}, {}
      for k in pairs(known) do names[#names + 1] = k end
      table.sort(names)
      for a, f in pairs(M.ALIASES) do
        if known[f] then aliases[#aliases + 1] = a end
      end
      table.sort(aliases)
      error(string.format("%s[%d]: unknown field '%s' (expected \"score\" or a numeric cost field: %s%s)", fname, i,
        o.field, table.concat(names, ", "), #aliases > 0 and ("; aliases " .. table.concat(aliases, ", ")) or ""),
        level or 1)
    end
  end
end

-- The raw value of one objective for a result (nil when missing or not a number).
function M.value(r, o)
  local v
  if o.field == "score" then v = r.score else v = r.cost and r.cost[o.field] end
  if type(v) ~= "number" then return nil end
  return v
end

-- The minimisation vector of a result; nil when some objective is missing or not finite.
function M.vector(r, objs)
  local v = {}
  for i, o in ipairs(objs) do
    local x = M.value(r, o)
    if not finite(x) then return nil end
    v[i] = o.sense == "max" and -x or x
  end
  return v
end

-- a dominates b (minimisation): no worse in every objective and better in one.
function M.dominates(a, b)
  local better = false
  for i = 1, #a do
    if a[i] > b[i] then return false end
    if a[i] < b[i] then better = true end
  end
  return better
end

-- Deb's fast non-dominated sort over items 1..n with dom(i, j) -> true when i dominates j.
-- Returns rank (rank[i] = 1 for the first front) and fronts (lists of indices, ascending).
function M.sort(n, dom)
  local S, count, rank, fronts = {}, {}, {}, { {} }
  for i = 1, n do S[i], count[i] = {}, 0 end
  for i = 1, n do
    for j = i + 1, n do
      if dom(i, j) then
        S[i][#S[i] + 1] = j
        count[j] = count[j] + 1
      elseif dom(j, i) then
        S[j][#S[j] + 1] = i
        count[i] = count[i] + 1
      end
    end
  end
  for i = 1, n do
    if count[i] == 0 then
      rank[i] = 1
      fronts[1][#fronts[1] + 1] = i
    end
  end
  local k = 1
  while #fronts[k] > 0 do
    local nxt = {}
    for _, i in ipairs(fronts[k]) do
      for _, j in ipairs(S[i]) do
        count[j] = count[j] - 1
        if count[j] == 0 then
          rank[j] = k + 1
          nxt[#nxt + 1] = j
        end
      end
    end
    table.sort(nxt)
    k = k + 1
    fronts[k] = nxt
  end
  fronts[k] = nil
  return rank, fronts
end

-- Indices (ascending) of the non-dominated vectors of a list; equal vectors are all kept.
function M.front_indices(vecs)
  local _, fronts = M.sort(#vecs, function(i, j) return M.dominates(vecs[i], vecs[j]) end)
  return fronts[1] or {}
end

-- Crowding distance of the members of one front: dist[i] for i in idx. Per objective, the two
-- extremes get +inf and the others the normalised gap between their neighbours; ties are ordered
-- by index so the result is deterministic.
function M.crowding(vecs, idx)
  local dist = {}
  for _, i in ipairs(idx) do dist[i] = 0 end
  if #idx == 0 then return dist end
  local m = #vecs[idx[1]]
  for k = 1, m do
    local order = {}
    for n, i in ipairs(idx) do order[n] = i end
    table.sort(order, function(a, b)
      if vecs[a][k] ~= vecs[b][k] then return vecs[a][k] < vecs[b][k] end
      return a < b
    end)
    local lo, hi = vecs[order[1]][k], vecs[order[#order]][k]
    dist[order[1]], dist[order[#order]] = math.huge, math.huge
    local span = hi - lo
    if span > 0 and span < math.huge then
      for n = 2, #order - 1 do
        local i = order[n]
        dist[i] = dist[i] + (vecs[order[n + 1]][k] - vecs[order[n - 1]][k]) / span
      end
    end
  end
  return dist
end

-- The exact hypervolume (minimisation) of points against ref: the measure of the union of the
-- boxes [p, ref]. Points not strictly better than ref in every dimension add nothing. Slices
-- along the last dimension and recurses (exact; meant for fronts of up to a few hundred points
-- in up to four or five dimensions).
local function hv(pts, ref, d)
  local n = #pts
  if n == 0 then return 0 end
  if d == 1 then
    local lo = math.huge
    for _, p in ipairs(pts) do if p[1] < lo then lo = p[1] end end
    return ref[1] - lo
  end
  table.sort(pts, function(a, b) return a[d] < b[d] end)
  if d == 2 then
    local vol, best = 0, math.huge
    for i = 1, n do
      local p = pts[i]
      if p[1] < best then best = p[1] end
      local nxt = i < n and pts[i + 1][2] or ref[2]
      -- a tie in the last coordinate adds no slice (and (inf - best) * 0 would be NaN)
      if nxt > p[2] then vol = vol + (ref[1] - best) * (nxt - p[2]) end
    end
    return vol
  end
  local vol, prefix = 0, {}
  for i = 1, n do
    local p = pts[i]
    -- keep the slice's set non-dominated in the remaining dimensions (it only grows)
    local proj = {}
    for k = 1, d - 1 do proj[k] = p[k] end
    local covered = false
    for _, q in ipairs(prefix) do
      local le = true
      for k = 1, d - 1 do if q[k] > proj[k] then le = false break end end
      if le then covered = true break end
    end
    if not covered then
      local kept = {}
      for _, q in ipairs(prefix) do
        local ge = true
        for k = 1, d - 1 do if q[k] < proj[k] then ge = false break end end
        if not ge then kept[#kept + 1] = q end
      end
      kept[#kept + 1] = proj
      prefix = kept
    end
    local nxt = i < n and pts[i + 1][d] or ref[d]
    if nxt > p[d] then
      local copy = {}
      for k, q in ipairs(prefix) do copy[k] = q end
      vol = vol + hv(copy, ref, d - 1) * (nxt - p[d])
    end
  end
  return vol
end

-- Whether v is a non-empty list of numbers without NaN (of d numbers when d is given); false and
-- the index of the first bad entry otherwise.
local function number_list(v, d)
  if type(v) ~= "table" then return false end
  if d and #v ~= d then return false end
  if #v == 0 then return false end
  for k = 1, #v do
    if type(v[k]) ~= "number" or v[k] ~= v[k] then return false, k end
  end
  return true
end

-- hypervolume(points, ref): ref a non-empty list of numbers, points a list of lists of as many
-- numbers; a NaN is refused (it has no place in a point). Infinite coordinates are allowed: a
-- point at -inf in a dimension, or a reference at +inf, makes the volume inf, never NaN.
function M.hypervolume(points, ref)
  local ok, k = number_list(ref)
  if not ok then
    error(string.format("search.hypervolume: bad argument #2 (reference point: non-empty list of numbers expected%s)",
      k and string.format(", got %s at [%d]", tostring(ref[k]), k) or ", got " .. (type(ref) == "table" and "an empty table" or type(ref))), 2)
  end
  if type(points) ~= "table" then
    error(string.format("search.hypervolume: bad argument #1 (list of points expected, got %s)", type(points)), 2)
  end
  local d = #ref
  for i, p in ipairs(points) do
    local pok, pk = number_list(p, d)
    if not pok then
      error(string.format("search.hypervolume: bad argument #1 (points[%d]: list of %d numbers expected (the"
        .. " reference point's dimension), got %s)", i, d,
        pk and string.format("%s at [%d]", tostring(p[pk]), pk)
          or type(p) == "table" and string.format("a list of %d", #p) or type(p)), 2)
    end
  end
  local pts = {}
  for _, p in ipairs(points) do
    local inside = true
    for k = 1, d do
      if not (p[k] < ref[k]) then inside = false break end
    end
    if inside then
      local c = {}
      for k = 1, d do c[k] = p[k] end
      pts[#pts + 1] = c
    end
  end
  return hv(pts, ref, d)
end

-- Whether a result counts for the feasible front: feasible, and within every named limit given
-- (a stage that checks only some limits marks its results feasible for itself alone).
function M.fully_feasible(r, limits)
  if not r.feasible then return false end
  for name, lim in pairs(limits or {}) do
    local field = M.ALIASES[name] or name
    local v = r.cost and r.cost[field]
    if type(lim) == "number" and type(v) == "number" and v > lim then return false end
  end
  return true
end

-- front(results, opts) -> summary of the feasible Pareto front of a run:
--   { objectives, front (results, in index order), hypervolume, reference = { [field] = {value, why} },
--     feasible = number of distinct feasible scored candidates }
-- opts: objectives (see M.objectives), limits ({ memory =, area =, latency =, energy = } or cost
-- fields), reference ({ [field] = value }), score_floor (number).
-- Reference point (docs/search.md): a cost's reference is its limit in the run when it has one,
-- else opts.reference[field], else the largest value among the run's feasible scored results;
-- the score's reference is opts.score_floor, else the lowest finite score among them. Each cost
-- axis is normalised by its reference (value / reference, so a limit is 1); the score axis stays
-- in score units. The hypervolume is then in score units times fractions of the limits.
function M.front(results, opts)
  if type(results) ~= "table" then
    error(string.format("search.front: bad argument #1 (list of results expected, got %s)", type(results)), 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then
    error(string.format("search.front: bad argument #2 (table of options expected, got %s)", type(opts)), 2)
  end
  for _, k in ipairs({ "limits", "reference" }) do
    if opts[k] ~= nil and type(opts[k]) ~= "table" then
      error(string.format("search.front: option '%s': table expected, got %s", k, type(opts[k])), 2)
    end
  end
  for i, r in ipairs(results) do
    if type(r) ~= "table" then
      error(string.format("search.front: results[%d]: table expected, got %s", i, type(r)), 2)
    end
  end
  local objs = M.objectives(opts.objectives, "front: objectives")
  -- every objective must name a cost field of the hardware model or one the results' costs have
  -- (a typo would leave the front empty; a value missing from some results only drops them)
  local known = {}
  for _, f in ipairs(M.COST_FIELDS) do known[f] = true end
  for _, r in ipairs(results) do
    if type(r.cost) == "table" then M.numeric_fields(r.cost, known) end
  end
  M.check_fields(objs, known, "front: objectives", 3)
  local limits = {}
  for name, lim in pairs(opts.limits or {}) do
    -- an infinite limit is no limit: the reference then comes from the run (not inf)
    if finite(lim) then limits[M.ALIASES[name] or name] = lim end
  end
  local pts, vecs = {}, {}
  local again = require("neuronas.search.pareto").repeats(results) -- a candidate counts once
  for _, r in ipairs(results) do
    if r.score ~= nil and not again[r] and M.fully_feasible(r, opts.limits) then
      local v = M.vector(r, objs)
      if v then
        pts[#pts + 1] = r
        vecs[#vecs + 1] = v
      end
    end
  end
  local ref, refv, scale = {}, {}, {}
  for k, o in ipairs(objs) do
    local why, value
    if o.field == "score" and finite(opts.score_floor) then
      value, why = opts.score_floor, "score floor given"
    elseif limits[o.field] and o.sense == "min" then
      value, why = limits[o.field], "limit of the run"
    elseif opts.reference and finite(opts.reference[o.field]) then
      value, why = opts.reference[o.field], "reference given"
    else
      -- the worst value among the points: the run's own extent
      for _, v in ipairs(vecs) do
        local raw = o.sense == "max" and -v[k] or v[k]
        if value == nil or (o.sense == "max" and raw < value) or (o.sense == "min" and raw > value) then value = raw end
      end
      why = o.field == "score" and "lowest score in the run" or "largest value in the run"
    end
    ref[o.field] = { value = value, why = why }
    -- normalise costs by their reference (so a limit is 1); the score stays in score units
    local s = 1
    if o.field ~= "score" and value and value ~= 0 and finite(value) then s = math.abs(value) end
    scale[k] = s
    refv[k] = value and ((o.sense == "max" and -value or value) / s) or 0
  end
  local norm = {}
  for i, v in ipairs(vecs) do
    local w = {}
    for k = 1, #v do w[k] = v[k] / scale[k] end
    norm[i] = w
  end
  local idx = M.front_indices(norm)
  local front, fvecs = {}, {}
  for n, i in ipairs(idx) do
    front[n] = pts[i]
    fvecs[n] = norm[i]
  end
  local hvol = #vecs > 0 and M.hypervolume(fvecs, refv) or 0
  return { objectives = objs, front = front, hypervolume = hvol, reference = ref, feasible = #pts }
end

return M
