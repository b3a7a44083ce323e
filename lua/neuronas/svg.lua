-- neuronas/svg.lua: a small SVG writer for the HTML report (docs/report.md). Elements are added
-- in order to a document and serialised as well-formed XML: attribute names sorted, text and
-- attribute values escaped, numbers written with at most two decimals. A number that is NaN or
-- infinite raises an error naming the attribute, so a non-finite value never reaches the SVG.
--   local svg = require("neuronas.svg")
--   local d = svg.new(480, 320, { class = "plot" })
--   d:add("circle", { cx = 10, cy = 20, r = 2, class = "pt" })
--   d:open("g", { class = "axis" }) ... d:close()
--   d:text(40, 12, "energy (uJ)", { class = "label" })
--   d:polyline({ { 0, 0 }, { 10, 5 } }, { class = "front" })
--   local xml = d:render()
local json = require("neuronas.json")

local M = {}

local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

-- Escapes text for XML/HTML content and attribute values. Control characters other than tab
-- and newline are not valid XML 1.0 and are dropped.
function M.escape(s)
  s = json.valid_utf8(tostring(s)) -- the page is UTF-8: other bytes as U+FFFD
  s = s:gsub("[%z\1-\8\11\12\14-\31]", "")
  return (s:gsub("[&<>\"']", ESC))
end

local function finite(v)
  return v == v and v > -math.huge and v < math.huge
end
M.finite = finite

-- A number as an attribute value: finite only (raises naming `what` otherwise), at most two
-- decimals, no trailing zeros, no "-0".
function M.num(v, what)
  if type(v) ~= "number" or not finite(v) then
    error(string.format("svg: attribute '%s': finite number expected, got %s", what or "?", tostring(v)), 2)
  end
  local s = string.format("%.2f", v):gsub("0+$", ""):gsub("%.$", "")
  if s == "-0" then s = "0" end
  return s
end

local Doc = {}
Doc.__index = Doc

local function attrs_of(attrs)
  if not attrs then return "" end
  local names = {}
  for k in pairs(attrs) do
    if type(k) ~= "string" or not k:match("^[%a_][%w_%-:]*$") then
      error("svg: bad attribute name " .. tostring(k), 3)
    end
    names[#names + 1] = k
  end
  table.sort(names)
  local out = {}
  for _, k in ipairs(names) do
    local v = attrs[k]
    if type(v) == "number" then
      v = M.num(v, k)
    elseif type(v) == "boolean" then
      v = tostring(v)
    elseif type(v) ~= "string" then
      error(string.format("svg: attribute '%s': string or number expected, got %s", k, type(v)), 3)
    end
    out[#out + 1] = string.format(' %s="%s"', k, M.escape(v))
  end
  return table.concat(out)
end

-- svg.new(width, height[, attrs]) -> document with viewBox "0 0 width height" (the page's CSS
-- scales it to the screen: width 100%, height auto).
function M.new(w, h, attrs)
  local a = {}
  for k, v in pairs(attrs or {}) do a[k] = v end
  a.xmlns = "http://www.w3.org/2000/svg"
  a.viewBox = M.num(0) .. " 0 " .. M.num(w, "width") .. " " .. M.num(h, "height")
  local d = setmetatable({ parts = {}, stack = {}, width = w, height = h }, Doc)
  d.parts[1] = "<svg" .. attrs_of(a) .. ">"
  return d
end

-- Adds an element; text (optional) becomes its escaped content.
function Doc:add(tag, attrs, text)
  local a = attrs_of(attrs)
  if text == nil then
    self.parts[#self.parts + 1] = "<" .. tag .. a .. "/>"
  else
    self.parts[#self.parts + 1] = "<" .. tag .. a .. ">" .. M.escape(text) .. "</" .. tag .. ">"
  end
  return self
end

function Doc:open(tag, attrs)
  self.parts[#self.parts + 1] = "<" .. tag .. attrs_of(attrs) .. ">"
  self.stack[#self.stack + 1] = tag
  return self
end

function Doc:close()
  local tag = table.remove(self.stack)
  if not tag then error("svg: close() without open()", 2) end
  self.parts[#self.parts + 1] = "</" .. tag .. ">"
  return self
end

function Doc:text(x, y, s, attrs)
  local a = {}
  for k, v in pairs(attrs or {}) do a[k] = v end
  a.x, a.y = x, y
  return self:add("text", a, s)
end

-- A polyline through points {{x, y}, ...} (each coordinate finite, else an error).
function Doc:polyline(points, attrs)
  local p = {}
  for i, xy in ipairs(points) do p[i] = M.num(xy[1], "points") .. "," .. M.num(xy[2], "points") end
  local a = {}
  for k, v in pairs(attrs or {}) do a[k] = v end
  a.points = table.concat(p, " ")
  return self:add("polyline", a)
end

-- The document as a string; open groups are closed.
function Doc:render()
  while #self.stack > 0 do self:close() end
  return table.concat(self.parts, "\n") .. "\n</svg>"
end

-- scale(d0, d1, r0, r1) -> function mapping the domain [d0, d1] onto [r0, r1] linearly; a
-- degenerate domain maps everything to the middle of the range.
function M.scale(d0, d1, r0, r1)
  if not (d1 > d0) then
    local mid = (r0 + r1) / 2
    return function() return mid end
  end
  local k = (r1 - r0) / (d1 - d0)
  return function(v) return r0 + (v - d0) * k end
end

-- "Nice" ticks covering [lo, hi]: about n values at a step of 1, 2 or 5 times a power of ten;
-- returns ticks, step. A degenerate or non-finite range gives the one value (or none).
function M.ticks(lo, hi, n)
  if not (finite(lo) and finite(hi)) then return {}, 1 end
  if hi < lo then lo, hi = hi, lo end
  if hi == lo then return { lo }, 1 end
  n = n or 5
  local raw = (hi - lo) / n
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local step = mag
  for _, m in ipairs({ 1, 2, 5, 10 }) do
    step = m * mag
    if step >= raw then break end
  end
  local out = {}
  local first = math.ceil(lo / step - 1e-9)
  local last = math.floor(hi / step + 1e-9)
  for i = first, last do out[#out + 1] = i * step end
  return out, step
end

-- A tick label: as many decimals as the step needs, thousands grouped.
function M.tick_label(v, step)
  local dec = 0
  if step < 1 then dec = math.min(6, math.ceil(-math.log(step, 10) - 1e-9)) end
  local s = string.format("%." .. dec .. "f", v)
  if s:match("^%-0%.?0*$") then s = s:sub(2) end
  local int, frac = s:match("^(%-?%d+)(.*)$")
  if int and #int > 4 then
    local neg = int:sub(1, 1) == "-"
    if neg then int = int:sub(2) end
    int = int:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
    s = (neg and "-" or "") .. int .. frac
  end
  return s
end

return M
