-- neuronas/search/pipeline.lua: the engine's pipeline for one candidate: build the net (weights
-- keyed by seed and layer path) -> quantize (QaFE) -> hardware costs -> fitness score. The
-- evaluator calls it; a test or another back end can pass its own table with the same fields.
local options = require("neuronas.search.options")

local M = {}

-- The engine's pipeline for a setup: build, cost and score one candidate.
--   p.build(cand) -> net (quantized), p.cost(net) -> cost table, p.score(net) -> score, diag,
--   p.release(net); p.score_many(nets) when the setup scores several nets at once (threads > 1);
--   p.cost_only(cand) -> the cost of p.cost(p.build(cand)), cheaper
function M.engine_pipeline(s)
  local nn = require("neuronas")
  -- stochastic rounding draws from the search's seed
  local q = s.quantizer or nn.quantizer({ bits = s.bits, rounding = s.rounding, seed = s.seed })
  local hw = s.hardware
  if hw == nil or (type(hw) == "table" and getmetatable(hw) == nil) then hw = nn.ela(hw or { mode = "neuronas" }) end
  local batches, fcache, used
  local function inputs()
    if not batches then
      local ds = s.data or nn.data.default({ split = "train" })
      used = ds
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
  local p = {}
  local wbits -- the quantized nets' weight_bits(), known after the first build
  local function float_net(cand)
    local o = options.copy(s.net)
    o.preset, o.cellA, o.cellB, o.seed, o.init_cache = s.preset, cand.cellA, cand.cellB, s.seed, icache
    if s.timesteps then o.timesteps = s.timesteps end
    return nn.net(o)
  end
  function p.build(cand)
    local net = float_net(cand)
    local qnet = q:apply(net)
    net:close()
    wbits = wbits or qnet:weight_bits()
    return qnet
  end
  function p.cost(net)
    return hw:evaluate(net)
  end
  -- The cost of a candidate without quantizing its weights (what the stage-1 pre-filter reads):
  -- the float net has the quantized one's layers, and its weight bits are given, so the cost is
  -- the same as p.cost(p.build(cand)) (tests/spec/prefilter_spec.lua checks it).
  function p.cost_only(cand)
    if not wbits then
      local qnet = p.build(cand)
      local cost = hw:evaluate(qnet)
      qnet:close()
      return cost
    end
    local net = float_net(cand)
    local cost = hw:evaluate(net, { bits = wbits })
    net:close()
    return cost
  end
  -- Threads go to candidates at once for small nets and to one candidate at a time for big ones
  -- (a forward's working set of 256 MB or more: the cifar presets from a batch of about 32;
  -- docs/performance.md, "Candidates at once or threads per candidate"). Scores are the same
  -- bits either way.
  local function big(net)
    local c = net:config()
    local maps = s.batch * c.channels * c.input[2] * c.input[3] * 4 * 10
    return maps >= 256 * 2 ^ 20
  end
  function p.score(net)
    return nn.fitness(net, inputs(), { cache = fcache, threads = big(net) and s.threads or 1 })
  end
  if s.threads > 1 then
    function p.score_many(nets)
      if not big(nets[1]) then
        return nn.fitness_many(nets, inputs(), { cache = fcache, threads = s.threads })
      end
      local scores, diags = {}, {}
      for i, net in ipairs(nets) do scores[i], diags[i] = p.score(net) end
      return scores, diags
    end
  end
  function p.release(net)
    net:close()
  end
  -- What the results depend on beyond the setup's fields (the journal's digest): the data (path,
  -- size and a content hash of the very batches scored), the hardware model's configuration and
  -- the quantizer.
  function p.identity()
    local digest = require("neuronas.search.digest")
    local b = inputs()
    local ds = used
    local hashes = {}
    for r, x in ipairs(b) do hashes[r] = digest.hash_tensor(x) end
    local data = { batches = hashes }
    for _, k in ipairs({ "name", "path", "source", "size" }) do
      local ok, v = pcall(function() return ds[k] end)
      if ok and v ~= nil then data[k] = v end
    end
    local qid = {}
    for _, k in ipairs({ "bits", "rounding", "scale", "seed", "int_bits" }) do
      local ok, v = pcall(function() return q[k] end)
      if ok and v ~= nil then qid[k] = v end
    end
    return { data = data, hardware = digest.plain(hw), quantizer = qid }
  end
  p.hardware, p.quantizer = hw, q
  return p
end

return M
