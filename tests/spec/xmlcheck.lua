-- tests/spec/xmlcheck.lua: a strict XML well-formedness check for the SVG the report writes
-- (elements balanced and properly nested, attributes quoted and unique, '&' only in entities,
-- no '<' in text or values). Written independently of neuronas.svg for the specs.
local M = {}

local function entities_ok(s)
  for amp in s:gmatch("&[^;]*;?") do
    if not (amp:match("^&[%a]+;$") or amp:match("^&#%d+;$") or amp:match("^&#x%x+;$")) then return false, amp end
    local name = amp:match("^&(%a+);$")
    if name and not ({ amp = 1, lt = 1, gt = 1, quot = 1, apos = 1 })[name] then return false, amp end
  end
  return true
end

-- check(text) -> true, or false and the reason.
function M.check(s)
  local stack, i, roots = {}, 1, 0
  while true do
    local a, b, inner = s:find("<([^<>]*)>", i)
    local text = s:sub(i, (a or #s + 1) - 1)
    if text:find("<") then return false, "stray '<' near " .. text:sub(1, 40) end
    if text:find(">") then return false, "stray '>' near " .. text:sub(1, 40) end
    local ok, bad = entities_ok(text)
    if not ok then return false, "bad entity " .. bad end
    if #stack == 0 and text:find("%S") and roots > 0 then return false, "text after the root element" end
    if not a then break end
    if inner:sub(1, 1) == "/" then
      local name = inner:match("^/([%a_][%w_%-:%.]*)%s*$")
      if not name then return false, "bad end tag <" .. inner .. ">" end
      local open = table.remove(stack)
      if open ~= name then return false, string.format("</%s> closes <%s>", name, tostring(open)) end
    else
      local self_closing = inner:sub(-1) == "/"
      if self_closing then inner = inner:sub(1, -2) end
      local name, rest = inner:match("^([%a_][%w_%-:%.]*)(.*)$")
      if not name then return false, "bad tag <" .. inner .. ">" end
      if #stack == 0 then
        roots = roots + 1
        if roots > 1 then return false, "more than one root element" end
      end
      local seen = {}
      rest = rest:gsub('%s+([%a_][%w_%-:%.]*)="([^"]*)"', function(n, v)
        if seen[n] then seen.dup = n end
        seen[n] = true
        local eok, ebad = entities_ok(v)
        if not eok then seen.bad = ebad end
        return ""
      end)
      if seen.dup then return false, "attribute '" .. seen.dup .. "' twice in <" .. name .. ">" end
      if seen.bad then return false, "bad entity " .. seen.bad .. " in <" .. name .. ">" end
      if rest:find("%S") then return false, "bad attributes in <" .. name .. ">: " .. rest end
      if not self_closing then stack[#stack + 1] = name end
    end
    i = b + 1
  end
  if #stack > 0 then return false, "unclosed <" .. stack[#stack] .. ">" end
  if roots ~= 1 then return false, "no root element" end
  return true
end

-- Every <svg>...</svg> of an HTML page (the report never nests them).
function M.svgs(html)
  local out = {}
  for s in html:gmatch("<svg[ >].-</svg>") do out[#out + 1] = s end
  return out
end

return M
