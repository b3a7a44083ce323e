-- neuronas/search/nsga2.lua: NSGA-II (Deb et al. 2002) over (cell A, cell B) pairs of any space
-- (docs/search.md "NSGA-II"). Objectives: the score and any numeric cost fields (default: maximise
-- score, minimise energy, area, latency). Constraints by Deb's constraint-domination: a feasible
-- candidate beats an infeasible one, and of two infeasible ones the smaller total violation wins,
-- so candidates the evaluator costs but never scores are still ranked. Each generation asks for
-- `population` children at once (binary tournament on rank then crowding, uniform crossover that
-- swaps edges between the parents, one-edge mutation) and keeps the best `population` of parents
-- and children. Deterministic for a seed: every draw comes from nn.rng(seed), every sort breaks
-- ties by the order of evaluation.
-- Hardware co-search (docs/search.md, "Hardware co-search"): with `knobs` = { xbar = {...},
-- device_bits =, adc_bits =, bits =, timesteps = } a candidate also carries those knobs (drawn
-- from the lists at start, swapped knob by knob in crossover, and a mutation moves one knob
-- instead of one edge half of the time). Without knobs the draws are those of the cells-only
-- search. `scored = N` ends the search after N scored candidates instead of after `generations`
-- (candidates that break a limit are only costed and do not count; at most 20 N are asked), so
-- searches over different spaces compare at the same number of scores.
local options = require("neuronas.search.options")
local run = require("neuronas.search.run")
local H = require("neuronas.search.hypervolume")
local mutate_edge = require("neuronas.search.mutate")
local knobs = require("neuronas.search.knobs")
local key_of = require("neuronas.search.evaluator").key

local M = {}

M.DEFAULTS = { population = 32, generations = 44, crossover = 0.9, mutation = 1.0 }

local KEYS = { space = "", population = "", generations = "", crossover = "", mutation = "", seed = "",
  objectives = "", knobs = "", scored = "" }

local function check_int(name, v, lo)
  if math.type(v) ~= "integer" or v < lo then
    error(string.format("search.nsga2_strategy: option '%s': integer >= %d expected, got %s", name, lo, tostring(v)), 4)
  end
end

local function check_prob(name, v)
  if type(v) ~= "number" or not (v >= 0 and v <= 1) then
    error(string.format("search.nsga2_strategy: option '%s': number in 0..1 expected, got %s", name, tostring(v)), 4)
  end
end

-- The minimisation vector NSGA-II sorts on: non-finite values (a -inf score) become the worst
-- finite value, so sorting and crowding never meet inf - inf.
local BIG = 1e300
local function vector_of(r, objs)
  local v = {}
  for i, o in ipairs(objs) do
    local x = H.value(r, o)
    if type(x) ~= "number" or x ~= x then
      v[i] = BIG
    else
      if o.sense == "max" then x = -x end
      v[i] = math.max(-BIG, math.min(BIG, x))
    end
  end
  return v
end

-- Deb's constraint-domination of member a over member b.
local function cdom(a, b)
  if a.feasible ~= b.feasible then return a.feasible end
  if not a.feasible then return a.violation < b.violation end
  return H.dominates(a.vec, b.vec)
end
M.constraint_dominates = cdom

-- Keeps the best n of members (in place order = evaluation order): fronts by constraint-domination,
-- the last one cut by crowding distance (larger first, earlier on ties). Sets rank and crowd on the
-- kept members and returns them.
local function select(members, n)
  local rank, fronts = H.sort(#members, function(i, j) return cdom(members[i], members[j]) end)
  local kept = {}
  for _, front in ipairs(fronts) do
    local vecs = {}
    for _, i in ipairs(front) do vecs[i] = members[i].vec end
    local crowd = {}
    if members[front[1]].feasible then
      crowd = H.crowding(vecs, front)
    end
    for _, i in ipairs(front) do
      members[i].rank, members[i].crowd = rank[i], crowd[i] or 0
    end
    if #kept + #front <= n then
      for _, i in ipairs(front) do kept[#kept + 1] = members[i] end
    else
      local order = {}
      for k, i in ipairs(front) do order[k] = i end
      table.sort(order, function(a, b)
        local ca, cb = members[a].crowd, members[b].crowd
        if ca ~= cb then return ca > cb end
        return a < b
      end)
      for k = 1, n - #kept do kept[#kept + 1] = members[order[k]] end
    end
    if #kept >= n then break end
  end
  table.sort(kept, function(a, b) return a.seq < b.seq end)
  return kept
end
M.select = select

function M.strategy(opts)
  opts = opts or {}
  options.check_keys("search.nsga2_strategy", opts, KEYS)
  local P = opts.population or M.DEFAULTS.population
  local G = opts.generations or M.DEFAULTS.generations
  local pc = opts.crossover or M.DEFAULTS.crossover
  local pm = opts.mutation or M.DEFAULTS.mutation
  check_int("population", P, 2)
  check_int("generations", G, 0)
  check_prob("crossover", pc)
  check_prob("mutation", pm)
  if opts.seed ~= nil then check_int("seed", opts.seed, 0) end
  if opts.scored ~= nil then check_int("scored", opts.scored, 1) end
  local kspace = knobs.space(opts.knobs, "search.nsga2_strategy: option 'knobs'")
  local objs = H.objectives(opts.objectives, "search.nsga2_strategy: option 'objectives'")
  local nn = require("neuronas")
  local space = opts.space or nn.space("neuronas")
  local rng = nn.rng(opts.seed or 1)
  -- forward cells are six independent edge choices; a backward-cell space is not (its cells come
  -- from a sampler), so there crossover swaps whole cells and mutation draws a fresh cell
  local edgewise = mutate_edge.edgewise(space)
  local st = {
    name = "nsga2", objectives = objs, P = P, G = G, gen = 0, pop = {}, seen = {}, seq = 0,
    population = P, generations = G, budget = opts.scored, nscored = 0, asked = 0, counted = {},
  }

  local function names(cell)
    if type(cell) == "string" then cell = nn.cell(cell) end
    return cell:ops()
  end

  local function mutate_cell(cell) return mutate_edge.one_edge(space, rng, cell) end
  -- one knob half of the time (when there are knobs), else one edge of cell A or B
  local function mutate(child)
    if #kspace > 0 and rng:integer(0, 1) == 0 and mutate_edge.knob(kspace, rng, child) then return end
    if rng:integer(0, 1) == 0 then child.cellA = mutate_cell(child.cellA) else child.cellB = mutate_cell(child.cellB) end
  end

  -- Two children of two parents: each of the twelve edges (six of A, six of B) swapped between
  -- them with probability 1/2 (whole cells in a backward-cell space).
  -- Knobs, when searched, are swapped one by one with probability 1/2 after the cells.
  local function swap_knobs(c1, c2)
    for _, k in ipairs(kspace) do
      if rng:integer(0, 1) == 1 then
        local v1, v2 = knobs.get(c1, k.name), knobs.get(c2, k.name)
        knobs.set(c1, k.name, v2)
        knobs.set(c2, k.name, v1)
      end
    end
    return c1, c2
  end
  local function crossover(p1, p2)
    local c1, c2 = knobs.copy(p1), knobs.copy(p2)
    if not edgewise then
      if rng:integer(0, 1) == 1 then c1.cellA, c2.cellA = c2.cellA, c1.cellA end
      if rng:integer(0, 1) == 1 then c1.cellB, c2.cellB = c2.cellB, c1.cellB end
      return swap_knobs(c1, c2)
    end
    local a1, b1, a2, b2 = names(p1.cellA), names(p1.cellB), names(p2.cellA), names(p2.cellB)
    for i = 1, #a1 do
      if rng:integer(0, 1) == 1 then a1[i], a2[i] = a2[i], a1[i] end
    end
    for i = 1, #b1 do
      if rng:integer(0, 1) == 1 then b1[i], b2[i] = b2[i], b1[i] end
    end
    c1.cellA, c1.cellB, c2.cellA, c2.cellB = nn.cell(a1), nn.cell(b1), nn.cell(a2), nn.cell(b2)
    return swap_knobs(c1, c2)
  end

  -- Binary tournament: the lower rank wins, then the larger crowding distance, then the first drawn.
  local function tournament()
    local a = st.pop[rng:integer(1, #st.pop)]
    local b = st.pop[rng:integer(1, #st.pop)]
    if b.rank < a.rank or (b.rank == a.rank and b.crowd > a.crowd) then return b end
    return a
  end

  -- A child already evaluated (or already asked in this batch) gets further one-edge mutations,
  -- up to ten, so a generation does not spend its budget on repeats; after that it is kept (the
  -- evaluator's cache answers it). Keys are the evaluator's (cells and knobs).
  local function fresh(child, batch)
    for _ = 1, 10 do
      local k = key_of(child)
      if not st.seen[k] and not batch[k] then break end
      mutate(child)
    end
    batch[key_of(child)] = true
    child.stage = 1
    return child
  end

  -- A random candidate: two cells, then each knob from its list.
  local function random_cand()
    local c = { cellA = space:sample(rng), cellB = space:sample(rng) }
    for _, k in ipairs(kspace) do knobs.set(c, k.name, k.values[rng:integer(1, #k.values)]) end
    return c
  end

  -- The objectives must name numeric fields of the run's costs (a typo would rank every candidate
  -- on a missing value): checked on the first cost, before generation 0 is evaluated when the
  -- pipeline costs a candidate without building it for scoring (cost_only; the evaluator keeps
  -- that cost for the candidate's evaluation), else on the first results.
  local fname = "search.nsga2_strategy: option 'objectives'"
  local function check_objectives(cost)
    if st.checked or type(cost) ~= "table" then return end
    H.check_fields(objs, H.numeric_fields(cost), fname, 0)
    st.checked = true
  end
  function st:prepare(ev) self.ev = ev end

  function st:ask()
    local n = self.P
    if self.budget then
      -- a scored budget: as many children as scores are left, up to a population
      n = math.min(self.P, self.budget - self.nscored)
      if n <= 0 or self.asked >= 20 * self.budget then return nil end
    elseif self.gen > self.G then
      return nil
    end
    local out, batch = {}, {}
    if #self.pop == 0 then
      for _ = 1, n do out[#out + 1] = fresh(random_cand(), batch) end
    else
      while #out < n do
        local p1, p2 = tournament(), tournament()
        local c1, c2
        if rng:uniform() < pc then
          c1, c2 = crossover(p1, p2)
        else
          c1, c2 = knobs.copy(p1), knobs.copy(p2)
        end
        for _, c in ipairs({ c1, c2 }) do
          if #out < n then
            if rng:uniform() < pm then mutate(c) end
            out[#out + 1] = fresh(c, batch)
          end
        end
      end
    end
    self.asked = self.asked + #out
    local ev = self.ev
    if not self.checked and ev and ev.cost_only and type(ev.pipeline) == "table" and ev.pipeline.cost_only and out[1] then
      local ok, cost = pcall(ev.cost_only, ev, out[1])
      if ok then check_objectives(cost) end -- else evaluating it raises, or tell checks
    end
    return out
  end

  function st:tell(results)
    local merged = {}
    for _, m in ipairs(self.pop) do merged[#merged + 1] = m end
    local inpop = {}
    for _, m in ipairs(self.pop) do inpop[m.key] = true end
    for _, r in ipairs(results) do check_objectives(r.cost) end
    for _, r in ipairs(results) do
      local k = r.key or key_of(r)
      self.seen[k] = true
      if r.score ~= nil and not self.counted[k] then
        self.counted[k] = true
        self.nscored = self.nscored + 1
      end
      if not inpop[k] then
        inpop[k] = true
        self.seq = self.seq + 1
        local m = knobs.copy(r)
        m.key, m.seq, m.feasible, m.violation, m.vec, m.score =
          k, self.seq, r.feasible and true or false, r.violation or 0, vector_of(r, objs), r.score
        merged[#merged + 1] = m
      end
    end
    self.pop = select(merged, self.P)
    self.gen = self.gen + 1
  end

  function st:total() return self.budget or self.P * (self.G + 1) end
  return st
end

-- search.nsga2{ population =, generations =, crossover =, mutation =, objectives =, knobs =,
-- scored =, ... } -> report
function M.search(opts)
  local setup, strat, hooks = run.split_opts(opts, { space = true, population = true, generations = true,
    crossover = true, mutation = true, objectives = true, knobs = true, scored = true, sample_seed = true },
    "search.nsga2")
  return run.run(M.strategy(strat), options.setup(setup), hooks)
end

return M
