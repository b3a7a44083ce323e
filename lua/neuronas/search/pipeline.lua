-- neuronas/search/pipeline.lua: the engine's pipeline for one candidate: build the net (weights
-- keyed by seed and layer path) -> quantize (QaFE) -> hardware costs -> fitness score. The
-- evaluator calls it; a test or another back end can pass its own table with the same fields.
local options = require("neuronas.search.options")

local M = {}

-- The engine's pipeline for a setup: build, cost and score one candidate.
--   p.build(cand) -> net (quantized), p.cost(net) -> cost table, p.score(net) -> score, diag,
--   p.release(net); p.score_many(nets) when the setup scores several nets at once (threads > 1);
--   p.cost_only(cand) -> the cost of p.cost(p.build(cand)), cheaper
-- A candidate's hardware knobs (neuronas.search.knobs: hw, bits, timesteps) override the setup's
-- chip, precision and T for it; cost, score and score_many then take the candidates too.
-- The quantizer and the chip of a setup's pipeline: the setup's own, else made from its fields.
local function parts(s)
  local nn = require("neuronas")
  -- stochastic rounding draws from the search's seed
  local q = s.quantizer or nn.quantizer({ bits = s.bits, rounding = s.rounding, seed = s.seed })
  local hw = s.hardware
  if hw == nil or (type(hw) == "table" and getmetatable(hw) == nil) then hw = nn.ela(hw or { mode = "neuronas" }) end
  return q, hw
end

-- What the results depend on in the quantizer and the chip: the hardware model's configuration
-- and the quantizer's parameters (part of the journal's digest and of the MPI start check).
local function parts_identity(q, hw)
  local digest = require("neuronas.search.digest")
  local qid = {}
  for _, k in ipairs({ "bits", "rounding", "scale", "seed", "int_bits" }) do
    local ok, v = pcall(function() return q[k] end)
    if ok and v ~= nil then qid[k] = v end
  end
  return { hardware = digest.plain(hw), quantizer = qid }
end

-- The identity of a setup's pipeline without its data: what every MPI rank must agree on before
-- the data (which a worker may not have read yet) is compared.
function M.setup_identity(s) return parts_identity(parts(s)) end

function M.engine_pipeline(s)
  local nn = require("neuronas")
  local knobs = require("neuronas.search.knobs")
  local q, hw = parts(s)
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
  -- docs/variation.md: cells of the hardware model's width unless the setup says otherwise
  local variation = s.variation
  if variation and variation.device_bits == nil then
    variation = options.copy(variation)
    variation.device_bits = hw.device_bits
  end
  local p = {}
  local wbits -- the quantized nets' weight_bits(), known after the first build
  local quantizers, chips = {}, {} -- per knob value (a candidate's bits, its hw)
  local function quantizer(cand)
    if not cand or not cand.bits then return q end
    quantizers[cand.bits] = quantizers[cand.bits] or nn.quantizer({ bits = cand.bits, rounding = s.rounding, seed = s.seed })
    return quantizers[cand.bits]
  end
  local function chip(cand)
    if not cand or not cand.hw then return hw end
    local k = knobs.text({ hw = cand.hw })
    chips[k] = chips[k] or knobs.hardware(hw, cand.hw)
    return chips[k]
  end
  -- the variation of a candidate: cells as wide as its chip's
  local function variation_of(cand)
    if not variation or not (cand and cand.hw and cand.hw.device_bits) or s.variation.device_bits then return variation end
    local v = options.copy(variation)
    v.device_bits = cand.hw.device_bits
    return v
  end
  -- the candidate's net, float or (given quantizer) quantized as quantizer:apply would make it;
  -- the store keeps the quantized layer weights too, so a search quantizes each layer once
  local function make_net(cand, quant)
    local o = options.copy(s.net)
    o.preset, o.cellA, o.cellB, o.seed, o.init_cache = s.preset, cand.cellA, cand.cellB, s.seed, icache
    if s.timesteps then o.timesteps = s.timesteps end
    if cand.timesteps then o.timesteps = cand.timesteps end
    o.quantizer = quant
    return nn.net(o)
  end
  function p.build(cand)
    knobs.check(cand)
    local qz, qnet = quantizer(cand), nil
    local mt = getmetatable(qz)
    if type(mt) == "table" and mt.__name == "neuronas.Quantizer" then
      qnet = make_net(cand, qz)
    else -- a quantizer of the caller's own, with an apply method
      local net = make_net(cand)
      qnet = qz:apply(net)
      net:close()
    end
    if not knobs.has(cand) then wbits = wbits or qnet:weight_bits() end
    return qnet
  end
  -- docs/hardware.md "Activity-aware energy": the active reads are counted from the spikes of the
  -- score's own forward (on the first scoring batch), run here on the setup's threads; the score
  -- is kept, by candidate key, for p.score and p.score_many, so the candidate takes one forward.
  -- With variation the robust score is computed as without activity.
  local measured = {} -- key -> score
  local key_of = require("neuronas.search.evaluator").key
  function p.cost(net, cand)
    local h = chip(cand)
    local cost = h:evaluate(net)
    if s.activity then
      local score, d = nn.fitness(net, inputs(), { cache = fcache, threads = s.threads, activity = { xbar = h.xbar } })
      h:active_energy(cost, d.activity)
      if not variation and cand then measured[key_of(cand)] = score end
    end
    return cost
  end
  -- the kept score of a candidate's cost forward, once (nil when there is none)
  local function kept(cand)
    local sc = cand and measured[key_of(cand)]
    if sc ~= nil then measured[key_of(cand)] = nil end
    return sc
  end
  -- The cost of a candidate without quantizing its weights (what the stage-1 pre-filter reads):
  -- the float net has the quantized one's layers, and its weight bits are given, so the cost is
  -- the same as p.cost(p.build(cand)) (tests/spec/prefilter_spec.lua checks it).
  function p.cost_only(cand)
    -- the activity-aware energy needs the quantized net's spikes; knobs change bits and chip
    if not wbits or s.activity or knobs.has(cand) then
      local qnet = p.build(cand)
      local cost = p.cost(qnet, cand)
      qnet:close()
      return cost
    end
    local net = make_net(cand)
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
  -- How many candidates a strategy asks for at once when its caller does not say (its chunk):
  -- with several threads, lists long enough that nn.fitness_many keeps every thread busy to the
  -- end (in a list of one candidate per thread, the thread with the cheaper net waits for the
  -- other), while the weights of a list's nets, built before they are scored, stay within
  -- LIST_BYTES. Big nets are scored one at a time with the threads inside: lists of one per
  -- thread, as before. The nets' layers do not depend on the cells beyond the convs, so the
  -- default cells size them.
  local LIST_PER_THREAD, LIST_BYTES = 16, 256 << 20
  function p.list_size()
    if s.threads <= 1 then return 1 end
    local net = make_net({})
    local b, bytes = big(net), net:params({ scope = "all" }) * 4
    net:close()
    if b then return s.threads end
    return math.max(s.threads, math.min(LIST_PER_THREAD * s.threads, LIST_BYTES // math.max(bytes, 1)))
  end
  -- A big candidate's pass buffers stay allocated for the next one (keep_memory: its pages are
  -- not faulted in again, about 0.8 s of a paper-size candidate); p.close gives them back.
  function p.score(net, cand)
    local sc = kept(cand)
    if sc ~= nil then return sc end
    local b = big(net)
    return nn.fitness(net, inputs(), { cache = fcache, threads = b and s.threads or 1,
      variation = variation_of(cand), keep_memory = b })
  end
  if s.threads > 1 then
    -- nets whose variation differs (by their cells' width) go in separate calls
    function p.score_many(nets, cands)
      local scores, diags = {}, {}
      if s.activity and not variation then
        -- every net's score comes from its cost's forward (or, when it has none, is computed)
        for i, net in ipairs(nets) do scores[i], diags[i] = p.score(net, cands and cands[i]) end
        return scores, diags
      end
      if big(nets[1]) then
        for i, net in ipairs(nets) do scores[i], diags[i] = p.score(net, cands and cands[i]) end
        return scores, diags
      end
      local groups, order = {}, {}
      for i, net in ipairs(nets) do
        local v = variation_of(cands and cands[i])
        local k = v and v.device_bits or 0
        if not groups[k] then
          groups[k] = { v = v, nets = {}, at = {} }
          order[#order + 1] = k
        end
        local g = groups[k]
        g.nets[#g.nets + 1], g.at[#g.at + 1] = net, i
      end
      for _, k in ipairs(order) do
        local g = groups[k]
        local sc, ds = nn.fitness_many(g.nets, inputs(), { cache = fcache, threads = s.threads, variation = g.v })
        for j, i in ipairs(g.at) do scores[i], diags[i] = sc[j], ds[j] end
      end
      return scores, diags
    end
  end
  function p.release(net)
    net:close()
  end
  function p.close()
    nn.fitness_release_memory()
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
    local id = parts_identity(q, hw)
    id.data = data
    return id
  end
  p.hardware, p.quantizer, p.inputs = hw, q, inputs
  return p
end

return M
