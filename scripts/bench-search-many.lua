-- scripts/bench-search-many.lua: what nn.fitness_many and nn.init_cache buy the two-stage search
-- (docs/search.md): every cell of the neuronas space is scored in stage 1 (A = B = c) and stage 2
-- (A = best of stage 1, B = c), fashion-mnist preset, batch 64 (data seed 1), T = 5, FxP8, with
-- no hardware constraint (an upper bound: the real search skips infeasible candidates).
-- Usage: build/neuronas run scripts/bench-search-many.lua [cells] [threads] [chunk] [mode]
--   mode "many" (default): nets built through one init cache, scored by nn.fitness_many in
--   chunks; mode "seq": plain nn.net + nn.fitness one by one, as search.lua does today.
-- Prints wall and CPU seconds per stage and the best cells (equal in both modes).
local nn = require("neuronas")
local core = require("neuronas.core")
local args = { ... }
local ncells = tonumber(args[1]) or 729
local threads = tonumber(args[2]) or 2
local chunk = tonumber(args[3]) or 32
local mode = args[4] or "many"

local x = nn.data.default({ split = "train" }):batch(64, { seed = 1 })
local space = nn.space("neuronas")
local q = nn.quantizer({ bits = 8 })
local ic = mode == "many" and nn.init_cache() or nil

local function build(a, b)
  local n = nn.net({ preset = "fashion-mnist", cellA = a, cellB = b, seed = 1, init_cache = ic })
  local qn = q:apply(n)
  n:close()
  return qn
end

local function stage(name, cellA)
  local w0, c0 = core.clock(), os.clock()
  local cache = nn.fitness_cache({})
  local best, best_score = nil, -math.huge
  local i = 1
  while i <= ncells do
    local nets, cells = {}, {}
    for j = i, math.min(i + chunk - 1, ncells) do
      local c = tostring(space:cell(j))
      cells[#cells + 1] = c
      nets[#nets + 1] = build(cellA or c, c)
    end
    local scores
    if mode == "many" then
      scores = nn.fitness_many(nets, x, { threads = threads, cache = cache })
    else
      scores = {}
      for k, n in ipairs(nets) do scores[k] = nn.fitness(n, x, { cache = cache }) end
    end
    for k, n in ipairs(nets) do
      if scores[k] > best_score then best, best_score = cells[k], scores[k] end
      n:close()
    end
    i = i + chunk
  end
  print(string.format("%-8s %s: %d candidates, %.1f s wall, %.1f s cpu, best %s (%.6f)", mode, name, ncells,
    core.clock() - w0, os.clock() - c0, best, best_score))
  return best
end

local w0, c0 = core.clock(), os.clock()
local a = stage("stage 1", nil)
stage("stage 2", a)
print(string.format("%-8s total: %.1f s wall, %.1f s cpu (threads=%d, chunk=%d)", mode, core.clock() - w0,
  os.clock() - c0, mode == "many" and threads or 1, chunk))
