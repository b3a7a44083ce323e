-- neuronas/quant.lua: Lua sugar for quantizers and the fitness score (docs/quantizer.md; docs/fitness.md).
-- The C half (l_quant.c, l_fitness.c) holds nn.quantizer, nn.fitness and nn.fitness_cache;
-- this adds one shorthand and sets no globals.
return function(M, core)
  -- nn.quantize(net_or_tensor, bits | opts) == nn.quantizer(opts):apply(net_or_tensor)
  M.quantize = function(x, opts)
    if math.type(opts) == "integer" then opts = { bits = opts } end
    return core.quantizer(opts):apply(x)
  end
end
