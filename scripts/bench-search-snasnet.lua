-- scripts/bench-search-snasnet.lua: SNASNet's baseline search as a user runs it (search.random, the
-- path of scripts/snasnet.lua) in SNASNet's own setting: cifar100 preset with 16 channels, batch
-- 32, T = 5, one repeat, FxP32, on 2 threads. Whole candidates: build, hardware cost and score,
-- through the evaluator, the progress hooks left out. Three ways, alternately, on the same cells:
--   apply, lists of 2:  each net built float and quantized by q:apply, one candidate per thread
--                       per list (the search's way before the quantized store and list sizes)
--   direct, lists of 2: nn.net{ quantizer = q } through the store, one candidate per thread
--   direct, default:    the same, lists of the evaluator's list size (docs/search.md)
-- The data: 1,024 random images in the CIFAR-100 binary layout, in a temporary file.
-- Usage: build/neuronas run scripts/bench-search-snasnet.lua [candidates] [rounds] [cells-file]
-- With a cells file (one SNASNet matrix per line, as scripts/bench-fitness gets them from
-- PyTorch's run) the search scores those cells (each once) instead of drawing them.
-- Prints wall and CPU milliseconds per drawn cell and per scored cell (a cell drawn again is not
-- scored again), and whether the three found the same scores; the last lines (search.*=) are the
-- default lists' best per drawn cell and the counts, for scripts/bench-fitness.
local nn = require("neuronas")
local core = require("neuronas.core")
local search = require("neuronas.search")

local args = { ... }
local num = tonumber(args[1]) or 400
local rounds = tonumber(args[2]) or 2
local cells -- the cells file's cells, in canonical form
if args[3] then
  cells = {}
  for line in io.lines(args[3]) do
    if line:match("%S") then cells[#cells + 1] = tostring(nn.cell(line, { form = "snasnet" })) end
  end
  assert(#cells > 0, "bench: no cells in " .. args[3])
  num = #cells
end
-- the cells file in turn, as a space the random strategy samples
local function space()
  if not cells then return nil end
  local i = 0
  return { sample = function() i = i % #cells + 1; return cells[i] end }
end

-- 1,024 records of 1 coarse label, 1 fine label and 3 x 32 x 32 pixel bytes (a fixed stream)
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"), "bench: cannot make " .. dir)
local f = assert(io.open(dir .. "/train.bin", "wb"))
local rng = nn.rng(7)
for _ = 1, 1024 do
  local rec = { string.char(rng:integer(0, 19), rng:integer(0, 99)) }
  for i = 1, 3072 / 8 do
    local v = rng:u64()
    rec[#rec + 1] = string.pack("<i8", v)
  end
  f:write(table.concat(rec))
end
f:close()
local data = nn.data.open({ path = dir, format = "cifar100", split = "train" })

local q = nn.quantizer({ bits = 32 })
-- a quantizer of the caller's own (an apply method): the pipeline builds the float net and applies it
local applying = { bits = 32, apply = function(_, net) return q:apply(net) end }

local ways = {
  { name = "apply, lists of 2", quantizer = applying, chunk = 2 },
  { name = "direct, lists of 2", quantizer = q, chunk = 2 },
  { name = "direct, default lists", quantizer = q },
}

local function run(way)
  local w0, c0 = core.clock(), os.clock()
  local rep = search.random({ preset = "cifar100", net = { channels = 16 }, batch = 32, ["repeat"] = 1, bits = 32,
    quantizer = way.quantizer, data = data, seed = 1, threads = 2, num = num, chunk = way.chunk, space = space() })
  local w, c = core.clock() - w0, os.clock() - c0
  local sum = 0
  for _, r in ipairs(rep.results) do sum = sum + (r.score or 0) end
  return w, c, sum, rep.best and rep.best.key, rep.counts.evaluated - rep.counts.cached
end

-- A build alone, both ways, through one warm store: 40 random backward cells, best of 3
local function builds()
  local space, ic = nn.space("snasnet", { cell = "backward" }), nn.init_cache()
  local r = nn.rng(3)
  local list = {}
  for i = 1, 40 do list[i] = tostring(space:sample(r)) end
  local function opts(c, quant)
    return { preset = "cifar100", channels = 16, cellA = c, cellB = c, seed = 1, init_cache = ic, quantizer = quant }
  end
  local function apply_way(c)
    local f = nn.net(opts(c))
    local n = q:apply(f)
    f:close()
    return n
  end
  local function direct_way(c) return nn.net(opts(c, q)) end
  local best = {}
  for rep = 0, 3 do -- rep 0 warms the store
    for k, make in ipairs({ apply_way, direct_way }) do
      local t0 = core.clock()
      for _, c in ipairs(list) do make(c):close() end
      local t = (core.clock() - t0) / #list
      if rep > 0 and (not best[k] or t < best[k]) then best[k] = t end
    end
  end
  print(string.format("a build, the store warm (40 random cells, each net closed before the next, best of 3): float net + q:apply %.2f ms, "
    .. "nn.net{ quantizer = q } %.2f ms", 1e3 * best[1], 1e3 * best[2]))
end

-- The score alone (nn.fitness_many, lists of 25, the store warm, best of 3) per cell of the draws
-- and per cell of the distinct ones: what the repeats the search skips would have cost.
local function score_alone()
  local draws, distinct, seen = {}, {}, {}
  local sp, r = space() or nn.space("snasnet", { cell = "backward" }), nn.rng(1) -- search.random's stream
  for i = 1, num do
    local c = tostring(sp:sample(r))
    draws[i] = c
    if not seen[c] then seen[c], distinct[#distinct + 1] = true, c end
  end
  local x = data:batch(32, { seed = 1 })
  local ic = nn.init_cache()
  local function run(list)
    local best = math.huge
    for rep = 0, 3 do -- rep 0 warms the store
      local t0 = core.clock()
      for s0 = 1, #list, 25 do
        local nets = {}
        for i = s0, math.min(s0 + 24, #list) do
          nets[#nets + 1] = nn.net({ preset = "cifar100", channels = 16, cellA = list[i], seed = 1, init_cache = ic,
            quantizer = q })
        end
        nn.fitness_many(nets, x, { threads = 2 })
        for _, n in ipairs(nets) do n:close() end
      end
      local t = (core.clock() - t0) / #list
      if rep > 0 and t < best then best = t end
    end
    return best
  end
  print(string.format("the score alone (nn.fitness_many, the store warm, best of 3): %.2f ms per cell of the %d draws, "
    .. "%.2f ms per cell of the %d distinct", 1e3 * run(draws), #draws, 1e3 * run(distinct), #distinct))
end

print(string.format("SNASNet's baseline search (search.random), cifar100 preset with 16 channels, batch 32, T=5, "
  .. "1 repeat, FxP32, 2 threads, %d %s, %d rounds", num, cells and ("cells of " .. args[3]) or "random backward cells",
  rounds))
builds()
score_alone()
-- Per drawn cell and per scored one: SNASNet's sampler draws many cells again (its pruning maps
-- many draws onto the same cells), and the evaluator serves a repeat from its cache, where
-- the PyTorch harness scores it again. The whole search's seconds include its one-time costs
-- (reading the data, drawing and quantizing each layer once).
local best = {}
local sums, keys, scored = {}, {}, nil
for r = 1, rounds do
  for i, way in ipairs(ways) do
    local w, c, sum, key, n = run(way)
    scored = n
    io.write(string.format("  round %d, %-22s %6.2f ms per drawn cell wall, %6.2f ms CPU; %6.2f ms per scored cell wall\n",
      r, way.name .. ":", 1e3 * w / num, 1e3 * c / num, 1e3 * w / n))
    if not best[i] or w < best[i].w then best[i] = { w = w, c = c } end
    sums[i], keys[i] = sum, key
  end
end
print(string.format("%d cells drawn, %d of them scored (the others repeat a cell: from the evaluator's cache)",
  num, scored))
for i, way in ipairs(ways) do
  print(string.format("%-22s best %6.2f ms per drawn cell wall (%.2f ms CPU), %6.2f ms per scored cell (%.2f ms CPU)",
    way.name .. ":", 1e3 * best[i].w / num, 1e3 * best[i].c / num, 1e3 * best[i].w / scored, 1e3 * best[i].c / scored))
end
print(string.format("default lists against apply, lists of 2: %.2fx by wall", best[1].w / best[3].w))
print(string.format("same scores all three ways: %s", (sums[1] == sums[2] and sums[2] == sums[3] and keys[1] == keys[3])
  and "yes (sums bit-identical, same best)" or "NO"))
print(string.format("search.ms_wall=%.3f\nsearch.ms_cpu=%.3f\nsearch.drawn=%d\nsearch.scored=%d", 1e3 * best[3].w / num,
  1e3 * best[3].c / num, num, scored))
os.remove(dir .. "/train.bin")
os.remove(dir)
