-- neuronas/search/evaluator.lua: the serial evaluator. evaluate(candidates) -> results, one per
-- candidate in order; anything with the same method (threads, a cluster) can replace it without
-- touching a strategy. Results are cached by canonical genotype pair, so a candidate asked twice is
-- evaluated once. A result's feasible, violation and checks are always against every constraint of
-- the run; a candidate's own `constraints` (a stage's narrower filter) only decides stage_ok. A
-- candidate is scored when it passes its stage filter or is fully feasible, else only costed.
local nn = require("neuronas")
local options = require("neuronas.search.options")
local pipeline = require("neuronas.search.pipeline")
local journal = require("neuronas.search.journal")
local knobs = require("neuronas.search.knobs")

local M = {}

local Evaluator = {}
Evaluator.__index = Evaluator

local function genotype(c)
  return type(c) == "string" and c or tostring(c)
end

-- Whether a constraint set calls Lua functions (predicates, cost functions: they get the
-- per-layer costs too).
local function calls_functions(set)
  for _, c in ipairs(rawget(set, "list") or {}) do
    if c.fn then return true end
  end
  return false
end

-- The cache and journal key of a candidate: "cellA | cellB" in canonical form, then its hardware
-- knobs when it has any ("cellA | cellB | bits=6 xbar=128", neuronas.search.knobs). A cell's own
-- genotype may hold " | " (SNASNet's backward cells: "forward edges | backward edges", the second
-- part left out when it has no edge), and then "X | Y" + "Z" and "X" + "Y | Z" would read alike:
-- " || " (which no genotype holds) then stands between the cells, so one key is one pair.
function M.key(cand)
  local a, b = genotype(cand.cellA), genotype(cand.cellB)
  local k = a .. ((a:find("|", 1, true) or b:find("|", 1, true)) and " || " or " | ") .. b
  if knobs.has(cand) then k = k .. " | " .. knobs.text(cand) end
  return k
end

-- A key back to its parts: cellA, cellB and the knobs' text (or nil), as M.key wrote them.
function M.parse_key(key)
  local kt
  local head, tail = key:match("^(.-) | ([%w_]+=%-?%d+[^|]*)$") -- the knobs come last
  if head then key, kt = head, tail end
  local a, b = key:match("^(.-) || (.*)$")
  if not a then a, b = key:match("^(.-) | (.*)$") end
  return a or key, b or key, kt
end

-- search.evaluator(setup) -> evaluator with :evaluate(candidates) -> results.
function M.new(setup)
  local s = options.setup(setup)
  local ev = setmetatable({
    setup = s,
    pipeline = s.pipeline or pipeline.engine_pipeline(s),
    cache = {},          -- key -> { cost =, score =, scored = }
    costs = {},          -- key -> cost of a candidate costed ahead (cost_only), not yet evaluated
    journal = nil,
    count = { evaluated = 0, scored = 0, skipped = 0, cached = 0, feasible = 0 },
    seq = 0,
    clock = (package.loaded["neuronas.core"] or {}).clock or os.clock,
  }, Evaluator)
  if s.journal then ev:open_journal(s.journal, s.resume) end
  return ev
end

-- Opens the setup's journal; with resume, its lines prefill the cache.
function Evaluator:open_journal(path, resume)
  local replayed
  self.journal, replayed = journal.open(path, resume, journal.settings_digest(self.setup, self.pipeline))
  for k, e in pairs(replayed) do self.cache[k] = e end
end

function Evaluator:close()
  self.closed = true
  if self.pipeline.close then self.pipeline.close() end
  if self.journal then
    self.journal:close()
    self.journal = nil
  end
end

-- Evaluates a list of candidates, in three passes: costs and constraint checks for all (a net is
-- built only for what the cache lacks), then the scores of the feasible ones (together through
-- pipeline.score_many when the pipeline has it and several need scoring: that is where threads
-- pay), then the results in order, each journaled when new. A candidate is scored once per
-- canonical genotype pair; a repeat, also within one list, comes from the cache.
-- A pipeline with prefetch (the MPI one, neuronas/search/mpi.lua) first computes the whole list
-- elsewhere, asking self:to_score which candidates to score; the passes below then read its results.
function Evaluator:evaluate(cands)
  if self.closed then error("evaluate: the evaluator is closed (and its journal with it)", 2) end
  local p, clock = self.pipeline, self.clock
  if p.prefetch then p.prefetch(cands, self) end
  local jobs, todo = {}, {}
  for i, cand in ipairs(cands) do
    local t0 = clock()
    local j = { cand = cand, key = M.key(cand) }
    j.entry = self.cache[j.key]
    local v
    if j.entry and j.entry.from_journal then
      -- a journaled cost that the run's constraints cannot read (a field a constraint file reads
      -- is missing from the line): the candidate is evaluated again, and that is said
      local ok, verdict = pcall(self.verdict, self, cand, j.entry.cost, j.entry)
      if ok then
        v = verdict
      else
        journal.warn(string.format("%s: the journaled result of %s is evaluated again: %s",
          self.journal and self.journal.path or "journal", j.key, tostring(verdict)))
        self.cache[j.key], j.entry = nil, nil
      end
    end
    j.cached = j.entry ~= nil
    if not j.entry then
      local cost = self.costs[j.key]
      if cost then
        self.costs[j.key] = nil
      else
        j.net = p.build(cand)
        cost = p.cost(j.net, cand)
      end
      j.entry = { cost = cost }
      self.cache[j.key] = j.entry
    end
    v = v or self:verdict(cand, j.entry.cost, j.entry)
    j.feasible, j.records, j.violation, j.stage_ok = v.feasible, v.records, v.violation, v.stage_ok
    if (j.stage_ok or j.feasible) and not j.entry.scored and not j.entry.pending then
      j.net = j.net or p.build(cand)
      j.entry.pending, j.cached = true, false
      todo[#todo + 1] = j
    elseif j.net then
      p.release(j.net)
      j.net = nil
    end
    j.seconds = clock() - t0
    jobs[i] = j
  end
  if #todo > 1 and p.score_many then
    local t0 = clock()
    local nets = {}
    for k, j in ipairs(todo) do nets[k] = j.net end
    local cands_k = {}
    for k, j in ipairs(todo) do cands_k[k] = j.cand end
    local scores, diags = p.score_many(nets, cands_k)
    local share = (clock() - t0) / #todo
    for k, j in ipairs(todo) do
      j.score, j.seconds, j.diag = scores[k], j.seconds + share, diags and diags[k]
    end
  else
    for _, j in ipairs(todo) do
      local t0 = clock()
      j.score, j.diag = p.score(j.net, j.cand)
      j.seconds = j.seconds + (clock() - t0)
    end
  end
  for _, j in ipairs(todo) do
    p.release(j.net)
    j.net = nil
    j.entry.score, j.entry.scored, j.entry.pending = j.score, true, nil
    j.entry.variation = type(j.diag) == "table" and j.diag.variation or nil -- docs/variation.md
  end
  local out = {}
  for i, j in ipairs(jobs) do
    local entry = j.entry
    if not j.cached then
      entry.seconds = (entry.seconds or 0) + j.seconds
      if self.journal then self.journal:write(j.key, entry) end
    end
    self.seq = self.seq + 1
    local c = self.count
    c.evaluated = c.evaluated + 1
    if j.cached then c.cached = c.cached + 1 end
    local score = entry.scored and journal.as_number(entry.score) or nil
    if score ~= nil then c.scored = c.scored + 1 else c.skipped = c.skipped + 1 end
    if j.feasible then c.feasible = c.feasible + 1 end
    local r = {
      index = self.seq, key = j.key, stage = j.cand.stage,
      cellA = genotype(j.cand.cellA), cellB = genotype(j.cand.cellB),
      cost = entry.cost, checks = j.records, feasible = j.feasible, violation = j.violation,
      stage_ok = j.stage_ok, score = score,
      seconds = entry.seconds or 0, cached = j.cached, variation = entry.variation,
      hw = j.cand.hw, bits = j.cand.bits, timesteps = j.cand.timesteps,
    }
    if self.setup.logger then self.setup.logger(r) end
    out[i] = r
  end
  return out
end

-- How many candidates to evaluate at once by default (the pipeline's list_size, else one per
-- thread): what search.random and search.two_stage ask for when their chunk is not given.
function Evaluator:list_size()
  local p = self.pipeline
  if p.list_size then return p.list_size() end
  return self.setup.threads or 1
end

-- The cost of one candidate (with its per-layer list) without scoring it: what the stage-1
-- pre-filter reads. Kept so that evaluating the candidate later does not build it again.
function Evaluator:cost_only(cand)
  local key = M.key(cand)
  local entry = self.cache[key]
  if entry and entry.cost.layers then return entry.cost end
  local cost = self.costs[key]
  if cost then return cost end
  local p = self.pipeline
  if p.cost_only then
    cost = p.cost_only(cand)
  else
    local net = p.build(cand)
    cost = p.cost(net, cand)
    p.release(net)
  end
  self.costs[key] = cost
  return cost
end

-- A candidate's verdict on its cost: feasible (every constraint of the run), records,
-- violation, and stage_ok (the filter of the stage that asked for it, when it has one). entry:
-- the cache entry, when the cost came from a journal (whose lines keep no per-layer costs).
function Evaluator:verdict(cand, cost, entry)
  local set = self.setup.constraint_set
  local stage_set = cand.constraints and options.constraint_set(cand.constraints)
  if entry and entry.from_journal and cost.layers == nil
      and (calls_functions(set) or (stage_set and calls_functions(stage_set))) then
    -- rebuild the per-layer costs for constraint functions that read them, on the candidate's
    -- own chip, precision and T (a co-search's knobs)
    self:layers_of({ cellA = cand.cellA, cellB = cand.cellB, hw = cand.hw, bits = cand.bits,
      timesteps = cand.timesteps, cost = cost })
  end
  local v = {}
  v.feasible, v.records, v.violation = set:check(cost, cost.layers)
  v.stage_ok = v.feasible
  if stage_set then v.stage_ok = stage_set:check(cost, cost.layers) end
  return v
end

-- Whether a candidate with this cost is scored: it passes its stage's filter or every constraint.
function Evaluator:to_score(cand, cost)
  local v = self:verdict(cand, cost)
  return v.stage_ok or v.feasible
end

-- The per-layer cost list of a result (recomputed when it came from a journal).
function Evaluator:layers_of(result)
  if result.cost.layers then return result.cost.layers end
  local cand = { cellA = result.cellA, cellB = result.cellB, hw = result.hw, bits = result.bits,
    timesteps = result.timesteps }
  local net = self.pipeline.build(cand)
  local cost = self.pipeline.cost(net, cand)
  self.pipeline.release(net)
  result.cost.layers = cost.layers
  return cost.layers
end

return M
