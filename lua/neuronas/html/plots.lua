-- neuronas/html/plots.lua: the SVG figures of the HTML report (docs/report.md): score-vs-cost
-- scatter plots with the front, the chosen network and the limit; the search's progress; a cell
-- as a graph; the per-layer cost shares as bars. Each function returns one SVG string. Points
-- carry no labels (a run has up to 1,458 of them); every number goes through neuronas.svg, so a
-- non-finite value is left out before it could reach an attribute.
local svg = require("neuronas.svg")
local H = require("neuronas.search.hypervolume")

local M = {}

local finite = svg.finite

-- Geometry of a scatter/line plot (viewBox units; the CSS scales the whole figure).
local W, HGT = 480, 330
local ML, MR, MT, MB = 66, 18, 26, 70
local STRIP = 16 -- the band under the plot holding candidates that were never scored

-- Axis with ticks, tick labels and a title; x along the bottom (at y0), y along the left.
local function axes(d, xs, ys, xdom, ydom, xlabel, ylabel, y0)
  local px0, px1 = ML, W - MR
  local py0, py1 = MT, y0
  d:open("g", { class = "axis" })
  d:add("line", { x1 = px0, y1 = py1, x2 = px1, y2 = py1 })
  d:add("line", { x1 = px0, y1 = py0, x2 = px0, y2 = py1 })
  local xt, xstep = svg.ticks(xdom[1], xdom[2], 5)
  for _, v in ipairs(xt) do
    local x = xs(v)
    d:add("line", { x1 = x, y1 = py1, x2 = x, y2 = py1 + 4 })
    d:text(x, py1 + 15, svg.tick_label(v, xstep), { class = "tick", ["text-anchor"] = "middle" })
  end
  local yt, ystep = svg.ticks(ydom[1], ydom[2], 5)
  for _, v in ipairs(yt) do
    local y = ys(v)
    d:add("line", { x1 = px0 - 4, y1 = y, x2 = px0, y2 = y })
    d:add("line", { x1 = px0, y1 = y, x2 = px1, y2 = y, class = "grid" })
    d:text(px0 - 6, y + 3.5, svg.tick_label(v, ystep), { class = "tick", ["text-anchor"] = "end" })
  end
  d:text((px0 + px1) / 2, py1 + 32, xlabel, { class = "axis-title", ["text-anchor"] = "middle" })
  d:text(14, (py0 + py1) / 2, ylabel, { class = "axis-title", ["text-anchor"] = "middle",
    transform = string.format("rotate(-90 14 %s)", svg.num((py0 + py1) / 2)) })
  d:close()
end

-- A padded domain over finite values (and extra values such as a limit); nil when there are none.
local function domain(values, extra, zero)
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(values) do
    if finite(v) then lo, hi = math.min(lo, v), math.max(hi, v) end
  end
  for _, v in ipairs(extra or {}) do
    if finite(v) then lo, hi = math.min(lo, v), math.max(hi, v) end
  end
  if lo > hi then return nil end
  if zero and lo > 0 then lo = 0 end
  local pad = (hi - lo) * 0.05
  if pad == 0 then pad = math.max(math.abs(hi) * 0.05, 0.5) end
  return { zero and lo == 0 and 0 or lo - pad, hi + pad }
end

-- Deterministic jitter in [0, 1) for point i (spreads the unscored band without a random stream).
local function jitter(i)
  return ((i * 2654435761) % 1000) / 1000
end

-- scatter(model, field) -> SVG of score against one cost field: one circle per evaluated
-- candidate (class "pt": "ok" feasible and scored, "grey" scored but not within every limit,
-- "unscored" in the band under the axis), the feasible front of this pair as a staircase
-- (class "front-line"), the members of the run's front ringed ("front-pt"), the chosen network
-- ("chosen") and the limit ("limit") as a dashed line.
function M.scatter(model, field, title)
  local unit = H.UNITS[field] or ""
  local results = model.results
  local xsv, ysv = {}, {}
  for _, r in ipairs(results) do
    local x = r.cost and r.cost[field]
    if type(x) == "number" then xsv[#xsv + 1] = x end
    if type(r.score) == "number" then ysv[#ysv + 1] = r.score end
  end
  local limit = model.limits and model.limits[field]
  local xdom = domain(xsv, { limit }, true) or { 0, 1 }
  local ydom = domain(ysv) or { 0, 1 }
  local y0 = HGT - MB
  local xs = svg.scale(xdom[1], xdom[2], ML, W - MR)
  local ys = svg.scale(ydom[1], ydom[2], y0 - STRIP - 4, MT)
  local d = svg.new(W, HGT, { class = "plot scatter", ["data-field"] = field, role = "img",
    ["aria-label"] = title })
  d:add("title", nil, title)
  axes(d, xs, ys, xdom, ydom, string.format("%s (%s)", title:match("^score vs (.*)$") or field, unit),
    "fitness score", y0)
  d:add("rect", { x = ML + 1, y = y0 - STRIP, width = W - MR - ML - 1, height = STRIP - 1, class = "band" })
  d:text(ML + 4, y0 - 4, "not scored (broke a limit)", { class = "band-label" })
  -- points: greyed first, feasible on top
  local onfront = {}
  for _, r in ipairs(model.front or {}) do onfront[r] = true end
  local grey, ok = {}, {}
  for i, r in ipairs(results) do
    local x = r.cost and r.cost[field]
    if type(x) == "number" and finite(x) then
      local cx = xs(x)
      if type(r.score) == "number" and finite(r.score) then
        local feas = model.is_feasible(r)
        local list = feas and ok or grey
        list[#list + 1] = { cx = cx, cy = ys(r.score), r = 2, class = feas and "pt ok" or "pt grey" }
      else
        grey[#grey + 1] = { cx = cx, cy = y0 - STRIP + 2 + jitter(i) * (STRIP - 5), r = 1.6, class = "pt unscored" }
      end
    end
  end
  d:open("g", { class = "points" })
  for _, a in ipairs(grey) do d:add("circle", a) end
  for _, a in ipairs(ok) do d:add("circle", a) end
  d:close()
  -- the 2-D front of (score max, this cost min) over the feasible scored points: a staircase
  local pts, vecs = {}, {}
  for _, r in ipairs(results) do
    local x = r.cost and r.cost[field]
    if type(x) == "number" and finite(x) and type(r.score) == "number" and finite(r.score) and model.is_feasible(r) then
      pts[#pts + 1] = r
      vecs[#vecs + 1] = { x, -r.score }
    end
  end
  local idx = H.front_indices(vecs)
  table.sort(idx, function(a, b)
    if vecs[a][1] ~= vecs[b][1] then return vecs[a][1] < vecs[b][1] end
    return vecs[a][2] < vecs[b][2]
  end)
  if #idx > 0 then
    local line = {}
    for n, i in ipairs(idx) do
      local x, y = xs(vecs[i][1]), ys(-vecs[i][2])
      if n > 1 then line[#line + 1] = { x, line[#line][2] } end
      line[#line + 1] = { x, y }
    end
    d:polyline(line, { class = "front-line" })
  end
  for r in pairs(onfront) do
    local x = r.cost and r.cost[field]
    if type(x) == "number" and finite(x) and type(r.score) == "number" and finite(r.score) then
      d:add("circle", { cx = xs(x), cy = ys(r.score), r = 4, class = "front-pt" })
    end
  end
  if type(limit) == "number" and finite(limit) then
    local x = xs(limit)
    d:add("line", { x1 = x, y1 = MT, x2 = x, y2 = y0, class = "limit" })
    local ls = limit >= 1e4 and svg.tick_label(limit, 1) or string.format("%.4g", limit)
    -- above the plot area, where no point can be: ending at the line, or starting there
    -- when the line is too close to the left edge
    local left = x - ML < 110
    d:text(x + (left and -4 or 4), MT - 7, "limit " .. ls .. " " .. unit,
      { class = "limit-label", ["text-anchor"] = left and "start" or "end" })
  end
  local b = model.best
  if b and b.cost and type(b.cost[field]) == "number" and finite(b.cost[field])
      and type(b.score) == "number" and finite(b.score) then
    local x, y = xs(b.cost[field]), ys(b.score)
    d:polyline({ { x, y - 6 }, { x + 6, y }, { x, y + 6 }, { x - 6, y }, { x, y - 6 } }, { class = "chosen" })
  end
  return d:render()
end

-- progress(model) -> SVG of the best score so far against candidates evaluated, one step line
-- per stage (class "progress"), the best of a stage counting the candidates feasible for it.
function M.progress(model)
  local results = model.results
  local stages, order = {}, {}
  local ys_all = {}
  for _, r in ipairs(results) do
    local s = r.stage or 1
    local st = stages[s]
    if not st then
      st = { best = nil, line = {}, first = r.index }
      stages[s] = st
      order[#order + 1] = s
    end
    if r.feasible and type(r.score) == "number" and finite(r.score) and (not st.best or r.score > st.best) then
      st.best = r.score
      ys_all[#ys_all + 1] = r.score
    end
    if st.best then st.line[#st.line + 1] = { r.index, st.best } end
  end
  local n = #results
  local xdom = { 0, math.max(n, 1) }
  local ydom = domain(ys_all) or { 0, 1 }
  local y0 = HGT - MB
  local xs = svg.scale(xdom[1], xdom[2], ML, W - MR)
  local ys = svg.scale(ydom[1], ydom[2], y0 - 4, MT)
  local d = svg.new(W, HGT, { class = "plot progress-plot", role = "img", ["aria-label"] = "search progress" })
  d:add("title", nil, "best feasible score against candidates evaluated")
  axes(d, xs, ys, xdom, ydom, "candidates evaluated", "best score so far", y0)
  for k, s in ipairs(order) do
    local st = stages[s]
    if k > 1 then
      local x = xs(st.first - 1)
      d:add("line", { x1 = x, y1 = MT, x2 = x, y2 = y0, class = "stage-sep" })
    end
    d:text(xs(st.first - 1) + 4, MT + 10, "stage " .. tostring(s), { class = "stage-label" })
    if #st.line > 0 then
      local line = {}
      for i, p in ipairs(st.line) do
        if i > 1 then line[#line + 1] = { xs(p[1]), ys(st.line[i - 1][2]) } end
        line[#line + 1] = { xs(p[1]), ys(p[2]) }
      end
      if #line == 1 then line[2] = { line[1][1] + 1, line[1][2] } end
      d:polyline(line, { class = "progress stage-" .. (k % 4 + 1), ["data-stage"] = tostring(s) })
    end
  end
  return d:render()
end

-- cell(edges, id, label) -> SVG of a cell: nodes 0-3 on a row, forward edges as arcs above (taller
-- for longer spans, so no two labels share a height and x), backward edges below, each labelled
-- by its op; zero edges are left out. edges: list of { from, to, op }.
function M.cell(edges, id, label)
  local name = label or id
  local back = false
  for _, e in ipairs(edges) do
    if e.op ~= "zero" and e.from > e.to then back = true end
  end
  -- room above for the forward arcs, below for backward ones (when the cell has any)
  local Wc, Hc, y = 420, back and 280 or 180, 140
  local function nx(i) return 60 + 100 * i end
  local d = svg.new(Wc, Hc, { class = "cell-graph", id = id, ["data-cell"] = id, role = "img", ["aria-label"] = name })
  d:add("title", nil, name)
  local shown = 0
  for _, e in ipairs(edges) do
    if e.op ~= "zero" then
      shown = shown + 1
      local x1, x2 = nx(e.from), nx(e.to)
      local span = math.abs(e.to - e.from)
      local up = e.to > e.from
      local h = 24 + 58 * span
      local cy = up and (y - h) or (y + h * 0.55)
      local mx = (x1 + x2) / 2
      local ay = (y + cy) / 2 -- the apex of a quadratic arc is halfway to its control point
      d:add("path", { d = string.format("M %s %s Q %s %s %s %s", svg.num(x1), svg.num(y), svg.num(mx), svg.num(cy),
        svg.num(x2), svg.num(y)), class = "edge op-" .. e.op, ["marker-end"] = "url(#arrow-" .. id .. ")" })
      d:text(mx, ay + (up and -3 or 11), e.op, { class = "edge-label", ["text-anchor"] = "middle" })
    end
  end
  d:open("defs")
  d:open("marker", { id = "arrow-" .. id, viewBox = "0 0 8 8", refX = 15, refY = 4, markerWidth = 7,
    markerHeight = 7, orient = "auto" })
  d:add("path", { d = "M 0 0 L 8 4 L 0 8 z", class = "arrow" })
  d:close()
  d:close()
  for i = 0, 3 do
    d:add("circle", { cx = nx(i), cy = y, r = 13, class = "node" })
    d:text(nx(i), y + 4.5, tostring(i), { class = "node-label", ["text-anchor"] = "middle" })
  end
  d:text(10, Hc - 8, name .. (shown == 0 and " (no edges)" or ""), { class = "cell-name" })
  return d:render()
end

-- bars(layers) -> SVG of each layer's share of area, energy and latency (class "bar bar-area",
-- "bar-energy", "bar-latency"), one group of three bars per layer, its name on the left.
M.BAR_FIELDS = { { "area_mm2", "area", "mm^2" }, { "energy_uj", "energy", "uJ" }, { "latency_ms", "latency", "ms" } }
function M.bars(layers)
  local Wb, left, right, row, bar = 480, 132, 52, 40, 10
  local totals = {}
  for _, f in ipairs(M.BAR_FIELDS) do
    local t = 0
    for _, l in ipairs(layers) do
      local v = l[f[1]]
      if type(v) == "number" and finite(v) and v > 0 then t = t + v end
    end
    totals[f[1]] = t
  end
  local Hb = 30 + row * math.max(#layers, 1)
  local d = svg.new(Wb, Hb, { class = "layer-bars", role = "img", ["aria-label"] = "per-layer cost shares" })
  d:add("title", nil, "share of area, energy and latency per layer")
  local xs = svg.scale(0, 100, left, Wb - right)
  for _, t in ipairs({ 0, 25, 50, 75, 100 }) do
    d:add("line", { x1 = xs(t), y1 = 18, x2 = xs(t), y2 = Hb - 6, class = "grid" })
    d:text(xs(t), 12, t .. "%", { class = "tick", ["text-anchor"] = "middle" })
  end
  if #layers == 0 then d:text(left, 40, "no per-layer costs", { class = "note" }) end
  for i, l in ipairs(layers) do
    local y = 22 + row * (i - 1)
    d:open("g", { class = "layer", ["data-layer"] = tostring(l.name or i) })
    d:text(left - 6, y + 18, tostring(l.name or ("layer " .. i)), { class = "layer-name", ["text-anchor"] = "end" })
    for k, f in ipairs(M.BAR_FIELDS) do
      local v = l[f[1]]
      local share = 0
      if type(v) == "number" and finite(v) and v > 0 and totals[f[1]] > 0 then share = 100 * v / totals[f[1]] end
      local by = y + (k - 1) * (bar + 1)
      d:add("rect", { x = left, y = by, width = math.max(xs(share) - left, 0.5), height = bar,
        class = "bar bar-" .. f[2] }, nil)
      d:text(xs(share) + 3, by + bar - 1.5, string.format("%.1f%%", share), { class = "bar-value" })
    end
    d:close()
  end
  return d:render()
end

return M
