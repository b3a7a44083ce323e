-- neuronas/search/random.lua: SNASNet's baseline: `num` cells drawn by the SNASNet sampler, the
-- same cell at both positions, no constraints unless given.
local limits = require("neuronas.limits")
local options = require("neuronas.search.options")
local run = require("neuronas.search.run")

local M = {}

function M.strategy(opts)
  opts = opts or {}
  options.check_keys("search.random_strategy", opts, { space = "", num = "", seed = "", chunk = "" })
  local nn = require("neuronas")
  local space = opts.space or nn.space("snasnet", { cell = "backward" })
  local rng = nn.rng(opts.seed or 1)
  local st = { name = "random", n = 0, num = opts.num or 5000, chunk = opts.chunk }
  -- without a chunk: the evaluator's list size
  function st:prepare(ev)
    self.chunk = self.chunk or (ev.list_size and ev:list_size()) or 1
  end
  function st:ask()
    self.chunk = self.chunk or 1
    if self.n >= self.num then return nil end
    local out = {}
    for _ = 1, math.min(self.chunk, self.num - self.n) do
      self.n = self.n + 1
      local c = space:sample(rng)
      out[#out + 1] = { cellA = c, cellB = c, stage = 1 }
    end
    return out
  end
  function st:tell() end
  function st:total() return self.num end
  return st
end

-- search.random{ num = 5000, bits = 32, ... } -> report; bits defaults to float weights (SNASNet's
-- baseline scores unquantized nets)
function M.search(opts)
  opts = options.copy(opts)
  if opts.bits == nil then opts.bits = limits.bits.float end
  local setup, strat, hooks = run.split_opts(opts, { space = true, num = true, chunk = true, sample_seed = true },
    "search.random")
  local st = options.setup(setup)
  return run.run(M.strategy(strat), st, hooks)
end

return M
