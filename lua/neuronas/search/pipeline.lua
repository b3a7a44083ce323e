-- neuronas/search/pipeline.lua: the engine's pipeline for one candidate: build the net (weights
-- keyed by seed and layer path) -> quantize (QaFE) -> hardware costs -> fitness score. The
-- evaluator calls it; a test or another back end can pass its own table with the same fields.
local options = require("neuronas.search.options")

local M = {}

-- The engine's pipeline for a setup: build, cost and score one candidate.
--   p.build(cand) -> net (quantized), p.cost(net) -> cost table, p.score(net) -> score, diag,
--   p.release(net); p.score_many(nets) when the setup scores several nets at once (threads > 1)
function M.engine_pipeline(s)
  local nn = require("neuronas")
  local q = s.quantizer or nn.quantizer({ bits = s.bits, rounding = s.rounding })
  local hw = s.hardware
  if hw == nil or (type(hw) == "table" and getmetatable(hw) == nil) then hw = nn.ela(hw or { mode = "neuronas" }) end
  local batches, fcache
  local function inputs()
    if not batches then
      local ds = s.data or nn.data.default({ split = "train" })
      batches = {}
      for r = 1, s["repeat"] do
        batches[r] = ds:batch(s.batch, { seed = s.data_seed + r - 1 })
      end
    end
    return batches
  end
  if s.prefix_cache then fcache = nn.fitness_cache({}) end
  -- initial weights are a function of (seed, layer path, shape): draw each tensor once per search
  local icache = nn.init_cache({})
  -- docs/variation.md: cells of the hardware model's width unless the setup says otherwise
  local variation = s.variation
  if variation and variation.device_bits == nil then
    variation = options.copy(variation)
    variation.device_bits = hw.device_bits
  end
  local p = {}
  function p.build(cand)
    local o = options.copy(s.net)
    o.preset, o.cellA, o.cellB, o.seed, o.init_cache = s.preset, cand.cellA, cand.cellB, s.seed, icache
    if s.timesteps then o.timesteps = s.timesteps end
    local net = nn.net(o)
    local qnet = q:apply(net)
    net:close()
    return qnet
  end
  function p.cost(net)
    local cost = hw:evaluate(net)
    -- docs/hardware.md "Activity-aware energy": one extra forward on the first scoring batch
    if s.activity then hw:active_energy(cost, nn.activity(net, inputs()[1], { xbar = hw.xbar })) end
    return cost
  end
  function p.score(net)
    local b = inputs()
    return nn.fitness(net, b, { cache = fcache, variation = variation })
  end
  if s.threads > 1 then
    -- several nets scored concurrently; the same scores as one nn.fitness call each
    function p.score_many(nets)
      return nn.fitness_many(nets, inputs(), { cache = fcache, threads = s.threads, variation = variation })
    end
  end
  function p.release(net)
    net:close()
  end
  p.hardware, p.quantizer = hw, q
  return p
end

return M
