-- neuronas/hardware.lua: the Lua half of the ELA model (docs/hardware.md; docs/model.md): networks for
-- hw:evaluate (duck typing: anything with :layers() and :weight_bits(), net-interfaces.md)
-- and hw:report(...), the per-layer cost table as text. Methods stay in the C metatable.
local function int_or_nil(v)
  if math.type(v) == "integer" then return v end
  if math.type(v) == "float" and v == math.floor(v) and v >= 1 and v < 2 ^ 53 then
    return math.tointeger(v)
  end
  return nil
end

-- The timesteps a network runs with, when it says: net.timesteps (a number or a method),
-- or net:config().timesteps; nil otherwise (docs/hardware.md; docs/model.md; evaluate then uses 5).
local function timesteps_of(net)
  local ok, v = pcall(function() return net.timesteps end)
  if ok and type(v) == "function" then ok, v = pcall(v, net) end
  if ok and int_or_nil(v) then return int_or_nil(v) end
  ok, v = pcall(function()
    local c = net:config()
    return type(c) == "table" and c.timesteps or nil
  end)
  if ok and int_or_nil(v) then return int_or_nil(v) end
  return nil
end

-- Whether obj[name] is something to call (a function, or a value with __call).
local function has_method(obj, name)
  local ok, v = pcall(function() return obj[name] end)
  if not ok or v == nil then return false end
  local mt = getmetatable(v)
  return type(v) == "function" or (type(mt) == "table" and rawget(mt, "__call") ~= nil)
end

-- Called by hw:evaluate (C) with a network: returns its layer list, weight bits (nil when the
-- object has no weight_bits(): a float net, 32) and timesteps (nil: 5).
local function net_adapter(net)
  if not has_method(net, "layers") then
    error("bad argument #1 to 'evaluate' (layer list or network with :layers() expected)", 0)
  end
  local layers = net:layers()
  local bits = has_method(net, "weight_bits") and net:weight_bits() or nil
  return layers, bits, timesteps_of(net)
end

local COLS = {
  { "#", "index", "%3d" }, { "layer", "name", "%-18s" }, { "kind", "kind", "%-6s" },
  { "k", "k", "%2d" }, { "in", "in_ch", "%5d" }, { "out", "out_ch", "%5d" },
  { "dim", "out_dim", "%4d" }, { "weights", "weights", "%10d" }, { "PEs", "pes", "%6d" },
  { "tiles", "tiles", "%5d" }, { "area mm2", "area_mm2", "%10.4f" },
  { "energy uJ", "energy_uj", "%10.4f" }, { "latency ms", "latency_ms", "%10.4f" },
  { "lat %", "latency_share", "%6.1f" },
}

-- The per-layer table of a cost (hw:evaluate's result with its breakdown), plus a totals line.
-- A table holding only `layers` (a per-layer list, e.g. a search result's) works too: the
-- totals are then summed from the layers.
local function format_cost(cost)
  local out, head = {}, {}
  for _, c in ipairs(COLS) do
    local w = tonumber(c[3]:match("%%%-?(%d+)")) or #c[1]
    head[#head + 1] = string.format("%" .. (c[3]:find("%-") and "-" or "") .. w .. "s", c[1])
  end
  out[1] = table.concat(head, " ")
  local sum = { weights = 0, pes = 0, tiles = 0, area_mm2 = 0, energy_uj = 0, latency_ms = 0 }
  for i, l in ipairs(cost.layers) do
    if type(l) ~= "table" then
      error(string.format("bad argument #1 to 'report' (layers[%d]: table expected, got %s)", i,
        type(l)), 3)
    end
    local row = {}
    for _, c in ipairs(COLS) do
      local v = l[c[2]]
      if c[2] == "name" then v = v or "-" end
      if c[2] == "index" then v = v or i end
      local want = c[3]:find("s$") and "string" or c[3]:find("d$") and "integer" or "number"
      if v ~= nil and not (want == "integer" and math.tointeger(v) or type(v) == want) then
        error(string.format("bad argument #1 to 'report' (layers[%d].%s: %s expected, got %s)", i, c[2],
          want, math.type(v) or type(v)), 3)
      end
      if want == "integer" and v ~= nil then v = math.tointeger(v) end
      if c[2] == "latency_share" and v then v = 100 * v end
      if v == nil then
        row[#row + 1] = string.format("%" .. (tonumber(c[3]:match("(%d+)")) or 1) .. "s", "-")
      else
        row[#row + 1] = string.format(c[3], v)
      end
    end
    for k in pairs(sum) do sum[k] = sum[k] + (tonumber(l[k]) or 0) end
    out[#out + 1] = table.concat(row, " ")
  end
  local TOTALS = { "n_layers", "memory_params", "bits", "memory_bytes", "cells_per_weight", "pes", "tiles",
    "area_mm2", "energy_uj", "latency_ms", "timesteps" }
  if cost.area_mm2 then
    for _, k in ipairs(TOTALS) do
      local v, want = cost[k], k:find("_mm2$") or k:find("_uj$") or k:find("_ms$")
      if not (want and type(v) == "number" or math.tointeger(v)) then
        error(string.format("bad argument #1 to 'report' (field '%s': %s expected, got %s)", k,
          want and "number" or "integer", math.type(v) or type(v)), 3)
      end
    end
    out[#out + 1] = string.format(
      "total: %d layers, %d weights (FxP%d, %d bytes, %d cells each), %d PEs, %d tiles, %.4f mm^2,"
        .. " %.4f uJ, %.4f ms (mode %s, device %s, T=%d, scope %s)",
      cost.n_layers, cost.memory_params, cost.bits, cost.memory_bytes, cost.cells_per_weight,
      cost.pes, cost.tiles, cost.area_mm2, cost.energy_uj, cost.latency_ms, cost.mode, cost.device,
      cost.timesteps, cost.scope)
  else
    out[#out + 1] = string.format(
      "total: %d layers, %d weights, %d PEs, %d tiles, %.4f mm^2, %.4f uJ, %.4f ms",
      #cost.layers, sum.weights, sum.pes, sum.tiles, sum.area_mm2, sum.energy_uj, sum.latency_ms)
  end
  return table.concat(out, "\n")
end

return function(M, core)
  if not core.ela then return end
  local mt = getmetatable(core.ela())
  mt.net_adapter = net_adapter
  -- hw:report(cost) (or any { layers = per-layer list }) or hw:report(layers_or_net[, opts])
  -- -> the per-layer table as text
  mt.methods.report = function(self, what, opts)
    if getmetatable(self) ~= mt then
      error(("calling 'report' on bad self (neuronas.ELA expected, got %s)"):format(type(self)), 2)
    end
    if type(what) == "table" and type(what.layers) == "table" then return format_cost(what) end
    local cost = self:evaluate(what, opts)
    if not cost.layers then
      error("bad argument #2 to 'report' (breakdown = false leaves nothing to report)", 2)
    end
    return format_cost(cost)
  end
end
