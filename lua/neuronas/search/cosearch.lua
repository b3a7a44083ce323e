-- neuronas/search/cosearch.lua: hardware co-search (docs/search.md, "Hardware co-search"): NSGA-II
-- (Deb et al. 2002) over cells A and B and the hardware knobs of neuronas.search.knobs, with two
-- objectives, the score (higher is better) and an energy cost field (lower is better), and
-- constrained domination (a feasible result beats an infeasible one; among infeasible ones the
-- smaller total violation wins). A generation is `population` children asked at once (the
-- evaluator scores them together, on threads); a child is a binary-tournament parent with one
-- mutation: one edge of cell A or B, or (when knobs are searched) one knob to another value.
-- The budget is population x generations *scored* candidates (a candidate that breaks a
-- constraint is only costed and does not count), so two runs compare at the same number of
-- scores; evaluations stop at 20 times that whatever happens.
-- With knobs = {} it is the same search over cells alone on the setup's fixed chip.
local options = require("neuronas.search.options")
local run = require("neuronas.search.run")
local knobs = require("neuronas.search.knobs")

local M = {}

-- The knob values searched by default: crossbar rows, bits per cell, ADC bits, weight bits, T.
M.KNOBS = {
  xbar = { 32, 64, 128 }, device_bits = { 1, 2, 4 }, adc_bits = { 3, 4, 5 },
  bits = { 4, 6, 8 }, timesteps = { 3, 4, 5 },
}
local KNOB_ORDER = { "xbar", "device_bits", "adc_bits", "bits", "timesteps" }

-- a dominates b (both results): constrained domination on (score max, energy min)
local function dominates(a, b)
  if a.ok ~= b.ok then return a.ok end
  if not a.ok then return a.viol < b.viol end
  local sa, sb, ea, eb = a.score, b.score, a.energy, b.energy
  return sa >= sb and ea <= eb and (sa > sb or ea < eb)
end

-- Fast non-dominated sort and crowding distance (Deb et al. 2002); sets m.rank and m.crowd.
local function rank_and_crowd(pop)
  local fronts, dom_by, count = { {} }, {}, {}
  for i, a in ipairs(pop) do
    dom_by[i], count[i] = {}, 0
    for j, b in ipairs(pop) do
      if i ~= j then
        if dominates(a, b) then dom_by[i][#dom_by[i] + 1] = j
        elseif dominates(b, a) then count[i] = count[i] + 1 end
      end
    end
    if count[i] == 0 then
      a.rank = 1
      fronts[1][#fronts[1] + 1] = i
    end
  end
  local f = 1
  while #fronts[f] > 0 do
    local nxt = {}
    for _, i in ipairs(fronts[f]) do
      for _, j in ipairs(dom_by[i]) do
        count[j] = count[j] - 1
        if count[j] == 0 then
          pop[j].rank = f + 1
          nxt[#nxt + 1] = j
        end
      end
    end
    f = f + 1
    fronts[f] = nxt
  end
  for _, fr in ipairs(fronts) do
    for _, i in ipairs(fr) do pop[i].crowd = 0 end
    for _, key in ipairs({ "score", "energy" }) do
      local idx = {}
      for k, i in ipairs(fr) do idx[k] = i end
      table.sort(idx, function(x, y)
        if pop[x][key] ~= pop[y][key] then return pop[x][key] < pop[y][key] end
        return x < y
      end)
      local n = #idx
      if n > 0 then
        local lo, hi = pop[idx[1]][key], pop[idx[n]][key]
        pop[idx[1]].crowd, pop[idx[n]].crowd = math.huge, math.huge
        if hi > lo and hi - lo < math.huge then
          for k = 2, n - 1 do
            pop[idx[k]].crowd = pop[idx[k]].crowd + (pop[idx[k + 1]][key] - pop[idx[k - 1]][key]) / (hi - lo)
          end
        end
      end
    end
  end
end

local function better(a, b)
  if a.rank ~= b.rank then return a.rank < b.rank end
  return a.crowd > b.crowd
end

function M.strategy(opts)
  opts = opts or {}
  options.check_keys("search.cosearch_strategy", opts,
    { space = "", knobs = "", population = "", generations = "", seed = "", objective = "" })
  local nn = require("neuronas")
  local space = opts.space or nn.space("neuronas")
  local rng = nn.rng(opts.seed or 1)
  local field = opts.objective or "energy_uj"
  local P, G = opts.population or 16, opts.generations or 6
  assert(math.type(P) == "integer" and P >= 2, "search.cosearch_strategy: population: integer >= 2 expected")
  assert(math.type(G) == "integer" and G >= 1, "search.cosearch_strategy: generations: integer >= 1 expected")
  local kn = opts.knobs or M.KNOBS
  local names = {}
  for _, k in ipairs(KNOB_ORDER) do
    if kn[k] then
      if type(kn[k]) ~= "table" or #kn[k] < 1 then
        error("search.cosearch_strategy: knobs." .. k .. ": non-empty list of values expected", 2)
      end
      names[#names + 1] = k
    end
  end
  for k in pairs(kn) do
    local known = false
    for _, n in ipairs(KNOB_ORDER) do known = known or n == k end
    if not known then
      error("search.cosearch_strategy: unknown knob '" .. tostring(k) .. "' (expected: " .. table.concat(KNOB_ORDER, ", ") .. ")", 2)
    end
  end
  local ops = space:ops()
  local seen = {}

  local function pick(list) return list[rng:integer(1, #list)] end
  local function with_knob(c, k, v)
    if k == "bits" or k == "timesteps" then
      c[k] = v
    else
      c.hw = c.hw or {}
      c.hw[k] = v
    end
  end
  local function knob_of(c, k)
    if k == "bits" or k == "timesteps" then return c[k] end
    return c.hw and c.hw[k]
  end
  local function copy_cand(c)
    local n = { cellA = c.cellA, cellB = c.cellB, bits = c.bits, timesteps = c.timesteps }
    if c.hw then n.hw = options.copy(c.hw) end
    return n
  end
  local function mutate_cell(cell)
    local ns = nn.cell(cell):ops()
    local i = rng:integer(1, #ns)
    local choices = {}
    for _, o in ipairs(ops) do if o ~= ns[i] then choices[#choices + 1] = o end end
    ns[i] = pick(choices)
    return tostring(nn.cell(ns))
  end
  local function mutate(parent)
    local c = copy_cand(parent)
    if #names > 0 and rng:integer(0, 1) == 0 then
      local k = names[rng:integer(1, #names)]
      local others = {}
      for _, v in ipairs(kn[k]) do if v ~= knob_of(c, k) then others[#others + 1] = v end end
      if #others > 0 then with_knob(c, k, pick(others)) return c end
    end
    if rng:integer(0, 1) == 0 then c.cellA = mutate_cell(c.cellA) else c.cellB = mutate_cell(c.cellB) end
    return c
  end
  local function random_cand()
    local c = { cellA = tostring(space:sample(rng)), cellB = tostring(space:sample(rng)) }
    for _, k in ipairs(names) do with_knob(c, k, pick(kn[k])) end
    return c
  end
  local key = require("neuronas.search.evaluator").key

  local st = { name = "cosearch", gen = 0, pop = {}, all = {}, field = field, P = P, G = G, scored = 0, asked = 0 }
  function st:ask()
    local left = P * G - self.scored
    if left <= 0 or self.asked >= 20 * P * G then return nil end
    self.gen = self.gen + 1
    local out = {}
    for _ = 1, math.min(P, left) do
      local c
      for _ = 1, 50 do -- a child not evaluated before, so every generation scores P new candidates
        if #self.pop == 0 then
          c = random_cand()
        else
          local a, b = self.pop[rng:integer(1, #self.pop)], self.pop[rng:integer(1, #self.pop)]
          c = mutate(better(a, b) and a or b)
        end
        if not seen[key(c)] then break end
      end
      seen[key(c)] = true
      c.stage = self.gen
      out[#out + 1] = c
      self.asked = self.asked + 1
    end
    return out
  end
  function st:tell(results)
    local merged = {}
    for _, m in ipairs(self.pop) do merged[#merged + 1] = m end
    for _, r in ipairs(results) do
      local m = {
        cellA = r.cellA, cellB = r.cellB, hw = r.hw, bits = r.bits, timesteps = r.timesteps, result = r,
        ok = r.feasible and r.score ~= nil and r.score > -math.huge,
        viol = r.violation or 0, score = r.score or -math.huge, energy = r.cost[field] or math.huge,
      }
      merged[#merged + 1] = m
      self.all[#self.all + 1] = m
      if r.score ~= nil then self.scored = self.scored + 1 end
    end
    rank_and_crowd(merged)
    table.sort(merged, better)
    self.pop = {}
    for i = 1, math.min(P, #merged) do self.pop[i] = merged[i] end
  end
  -- the feasible results no other feasible result dominates, by ascending energy
  function st:front()
    local ok = {}
    for _, m in ipairs(self.all) do if m.ok then ok[#ok + 1] = m end end
    local out = {}
    for _, a in ipairs(ok) do
      local dom = false
      for _, b in ipairs(ok) do
        if b ~= a and dominates(b, a) then dom = true break end
      end
      if not dom then out[#out + 1] = a.result end
    end
    table.sort(out, function(x, y) return x.cost[field] < y.cost[field] end)
    return out
  end
  function st:best()
    local b
    for _, m in ipairs(self.all) do
      if m.ok and (not b or m.score > b.score) then b = m end
    end
    return b and b.result
  end
  function st:total() return P * G end
  return st
end

-- The 2-D hypervolume of a front of results (score up, cost field down) against a reference
-- point (score_ref below every score, energy_ref above every energy): the area they dominate.
function M.hypervolume(front, field, score_ref, energy_ref)
  local pts = {}
  for _, r in ipairs(front) do
    if r.score > score_ref and r.cost[field] < energy_ref then pts[#pts + 1] = { r.cost[field], r.score } end
  end
  table.sort(pts, function(a, b) return a[1] < b[1] end)
  local hv, best = 0, score_ref
  for i, p in ipairs(pts) do
    local nxt = pts[i + 1] and pts[i + 1][1] or energy_ref
    if p[2] > best then best = p[2] end
    hv = hv + (nxt - p[1]) * (best - score_ref)
  end
  return hv
end

-- search.cosearch{ knobs =, population =, generations =, objective =, ... } -> report (with .front)
function M.search(opts)
  local setup, strat, hooks = run.split_opts(opts, { space = true, knobs = true, population = true,
    generations = true, objective = true, sample_seed = true }, "search.cosearch")
  local st = M.strategy(strat)
  local rep = run.run(st, options.setup(setup), hooks)
  rep.front = st:front()
  return rep
end

return M
