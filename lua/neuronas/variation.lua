-- neuronas/variation.lua: device-variation-aware fitness (docs/variation.md) and the
-- activity-aware energy (docs/hardware.md, "Activity-aware energy"). The C half (l_variation.c)
-- perturbs a net's crossbar weights and counts active crossbar reads; this adds
--   nn.fitness(net, x, { variation = { sigma =, draws =, stuck =, ... } })  (and fitness_many),
--   nn.variation(net, opts, draw), nn.activity(net, x, { xbar = }),
--   hw:active_energy(cost, activity) and hw:evaluate_active(net, x[, opts]).
local VKEYS = { sigma = true, draws = true, stuck = true, stuck_high = true, device_bits = true, seed = true }

-- The variation table of a fitness call, checked; draws defaults to 4.
local function check_variation(fname, v)
  if type(v) ~= "table" then
    error(string.format("bad argument #3 to '%s' (field 'variation': table expected, got %s)", fname, type(v)), 3)
  end
  for k in pairs(v) do
    if not VKEYS[k] then
      error(string.format("bad argument #3 to '%s' (field 'variation': unknown field '%s' (expected: "
        .. "sigma, draws, stuck, stuck_high, device_bits, seed))", fname, tostring(k)), 3)
    end
  end
  local draws = v.draws == nil and 4 or v.draws
  if math.type(draws) ~= "integer" or draws < 1 or draws > 1024 then
    error(string.format("bad argument #3 to '%s' (field 'variation.draws': integer in 1..1024 expected, got %s)",
      fname, tostring(v.draws)), 3)
  end
  local p = {}
  for k, x in pairs(v) do if k ~= "draws" then p[k] = x end end
  return p, draws
end

-- opts without `variation` (what the C half accepts), or nil when opts has none.
local function split_opts(opts)
  if type(opts) ~= "table" or opts.variation == nil then return nil end
  local o = {}
  for k, x in pairs(opts) do if k ~= "variation" then o[k] = x end end
  return o, opts.variation
end

-- The robust summary of one net: clean score, noisy scores -> the `variation` diagnostics.
local function summary(clean, scores, p, draws)
  local sum, worst = 0, math.huge
  for _, s in ipairs(scores) do
    sum = sum + s
    if s < worst then worst = s end
  end
  local mean = sum / #scores
  return {
    clean = clean, mean = mean, worst = worst, drop = clean - mean, scores = scores,
    sigma = p.sigma or 0, stuck = p.stuck or 0, stuck_high = p.stuck_high or 0.5,
    device_bits = p.device_bits or 1, seed = p.seed or 1, draws = draws,
  }
end

-- Per layer of an ELA cost: the share of a cycle's energy that scales with active reads
-- (crossbar reads, ADC conversions, mux, shift-and-subtract accumulation) and the rest (H-tree,
-- fetch, neuron update, temporary and tile buffers), docs/hardware.md.
local function cycle_split(hw, k)
  local a = hw.xbar / hw.mux
  local pe = k * k * hw.e_xbar_pj + a * (hw.e_adc_pj + hw.e_mux_pj)
  local scaled = a * pe + a * hw.sub_per_adc * hw.e_sub_pj
  local fixed = hw.e_htree_pj + hw.e_fetch_pj + hw.e_neuron_pj + a * hw.e_temp_buf_pj + hw.e_tile_buf_pj
  return scaled, fixed
end

return function(M, core)
  if not core.variation_net then return end
  local fitness, fitness_many = core.fitness, core.fitness_many

  -- nn.variation(net, { sigma =, stuck =, stuck_high =, device_bits =, seed = }, draw) -> noisy copy
  M.variation = core.variation_net

  M.fitness = function(net, x, opts)
    local o, v = split_opts(opts)
    if not o then return fitness(net, x, opts) end
    local p, draws = check_variation("fitness", v)
    local clean, d = fitness(net, x, o)
    local scores = {}
    for k = 1, draws do
      local noisy = core.variation_net(net, p, k)
      local ok, s = pcall(fitness, noisy, x, o)
      noisy:close()
      if not ok then error(s, 0) end
      scores[k] = s
    end
    d.variation = summary(clean, scores, p, draws)
    return d.variation.mean, d
  end

  if fitness_many then
    M.fitness_many = function(nets, x, opts)
      local o, v = split_opts(opts)
      if not o then return fitness_many(nets, x, opts) end
      local p, draws = check_variation("fitness_many", v)
      local clean, ds = fitness_many(nets, x, o)
      -- every noisy copy is a distinct net: score them all in one call (threads pay)
      local noisy = {}
      local ok, err = pcall(function()
        for i, net in ipairs(nets) do
          for k = 1, draws do noisy[(i - 1) * draws + k] = core.variation_net(net, p, k) end
        end
      end)
      local scores
      if ok then ok, err = pcall(function() scores = fitness_many(noisy, x, o) end) end
      for _, n in ipairs(noisy) do n:close() end
      if not ok then error(err, 0) end
      local out = {}
      for i = 1, #nets do
        local s = {}
        for k = 1, draws do s[k] = scores[(i - 1) * draws + k] end
        ds[i].variation = summary(clean[i], s, p, draws)
        out[i] = ds[i].variation.mean
      end
      return out, ds
    end
  end

  -- nn.activity(net, x | { batches }, { xbar = 64 }) -> { layers = { {name, active, reads,
  -- fraction, measured}, ... }, active =, reads =, fraction = } over the measured layers
  M.activity = function(net, x, opts)
    if opts ~= nil and type(opts) ~= "table" then
      error("bad argument #3 to 'activity' (table of options expected, got " .. type(opts) .. ")", 2)
    end
    local xbar = opts and opts.xbar or 64
    if math.type(xbar) ~= "integer" or xbar < 1 then
      error("bad argument #3 to 'activity' (field 'xbar': positive integer expected, got " .. tostring(xbar) .. ")", 2)
    end
    local ls = core.activity(net, x, xbar)
    local act, reads = 0, 0
    for _, l in ipairs(ls) do
      l.fraction = l.reads > 0 and l.active / l.reads or 1
      if l.measured then act, reads = act + l.active, reads + l.reads end
    end
    return { layers = ls, active = act, reads = reads, fraction = reads > 0 and act / reads or 1, xbar = xbar }
  end

  if not core.ela then return end
  local mt = getmetatable(core.ela())

  -- hw:active_energy(cost, activity) -> cost with energy_active_uj / _pj and per layer
  -- energy_active_uj, active_fraction (a layer without a measurement keeps its energy)
  local function check_self(self, fname)
    if getmetatable(self) ~= mt then
      error(string.format("bad argument #1 to '%s' (neuronas.ELA expected, got %s)", fname, type(self)), 3)
    end
  end

  mt.methods.active_energy = function(self, cost, act)
    check_self(self, "active_energy")
    if type(cost) ~= "table" or type(cost.layers) ~= "table" then
      error("bad argument #1 to 'active_energy' (a cost with its per-layer list expected)", 2)
    end
    if type(act) ~= "table" or type(act.layers) ~= "table" then
      error("bad argument #2 to 'active_energy' (nn.activity's result expected)", 2)
    end
    if act.xbar and act.xbar ~= self.xbar then
      error(string.format("bad argument #2 to 'active_energy' (activity counted for xbar %d, the model has %d)",
        act.xbar, self.xbar), 2)
    end
    local frac = {}
    for _, l in ipairs(act.layers) do frac[l.name] = l.fraction end
    local total = 0
    for _, l in ipairs(cost.layers) do
      local f = frac[l.name] or 1
      local k = cost.mode == "spikesim" and self.kernel or l.k or 1
      local scaled, fixed = cycle_split(self, k)
      l.active_fraction = f
      l.energy_active_uj = l.energy_uj * (fixed + f * scaled) / (fixed + scaled)
      total = total + l.energy_active_uj
    end
    cost.energy_active_uj = total
    cost.energy_active_pj = total * 1e6
    return cost
  end

  -- hw:evaluate_active(net, x[, opts]) == hw:active_energy(hw:evaluate(net, opts), nn.activity(net, x))
  mt.methods.evaluate_active = function(self, net, x, opts)
    check_self(self, "evaluate_active")
    if opts ~= nil and type(opts) ~= "table" then
      error("bad argument #3 to 'evaluate_active' (table of options expected, got " .. type(opts) .. ")", 2)
    end
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    o.breakdown = true
    local cost = self:evaluate(net, o)
    return self:active_energy(cost, M.activity(net, x, { xbar = self.xbar }))
  end
end
