-- scripts/bench-prefilter.lua: what the feasibility-aware stage 1 costs (docs/search.md, "Stage 1"):
-- the 729 (c, c) costs, then all 729 x 729 completions (c, B) through the cost split, against
-- costing completions one by one on the full model (a sample, scaled to 531,441).
-- Usage: build/neuronas run scripts/bench-prefilter.lua [sample] [bits]. Prints CPU seconds.
local nn = require("neuronas")
local search = require("neuronas.search")
local prefilter = require("neuronas.search.prefilter")
local app = require("neuronas.app")
local args = { ... }
local sample = tonumber(args[1]) or 2000
local bits = tonumber(args[2]) or 8

local space = nn.space("neuronas")
local cells = {}
for i = 1, space:size() do cells[i] = space:cell(i) end
local set = require("neuronas.constraints").new(app.SMALL)
local ev = search.evaluator({ bits = bits, constraints = set })
local t0 = os.clock()
local pf = prefilter.run(ev, cells, set)
local split = os.clock() - t0
print(string.format("split:  %d (c, c) costs + %d completions: %.3f s CPU (%.4f s for the completions);"
  .. " front %d, %d of %d cells excluded", #cells, pf.completions, split, pf.combine_seconds or 0, pf.front or 0,
  pf.excluded, pf.cells))

-- one by one: cost_only of (c, B) pairs drawn at random, scaled to every completion
local ev2 = search.evaluator({ bits = bits, constraints = set })
local rng = nn.rng(1)
t0 = os.clock()
for _ = 1, sample do
  ev2.pipeline.cost_only({ cellA = cells[rng:integer(1, 729)], cellB = cells[rng:integer(1, 729)] })
end
local each = (os.clock() - t0) / sample
local total = each * #cells * #cells
print(string.format("one by one: %.3f ms per completion, %.0f s CPU for all %d (%.0fx the split)",
  1e3 * each, total, #cells * #cells, total / split))
