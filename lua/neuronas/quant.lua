-- neuronas/quant.lua: Lua sugar for quantizers (docs/quantizer.md). The C half (l_quant.c) holds
-- nn.quantizer; this module returns the one shorthand and sets no globals.
local core = require("neuronas.core")

local M = {}

-- nn.quantize(net_or_tensor, bits | opts) == nn.quantizer(opts):apply(net_or_tensor)
function M.quantize(x, opts)
  if math.type(opts) == "integer" then opts = { bits = opts } end
  return core.quantizer(opts):apply(x)
end

return M
