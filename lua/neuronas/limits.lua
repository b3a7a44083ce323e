-- neuronas/limits.lua: the one table of ranges for the values a user sets by flag (neuronas.cli,
-- shown in every script's --help) or by search option (neuronas.search.options), so a bad value
-- is refused when it is parsed, with the range it breaks (docs/reliability.md). Where the engine
-- checks the same value, the range is the engine's (tests/spec/limits_spec.lua holds the two
-- together); the others are documented bounds on what a value may allocate.
--   range = { min =, max = } (inclusive) or { gt = } (exclusive lower bound); numbers are finite.
local M = {}

-- The weight precision FxP-n: the engine's one range and default (nn.weight_bits, nn_layer.h),
-- which nn.quantizer, nn.trainer and hw:evaluate check too; `float` is an unquantized net's 32.
local wb = require("neuronas.core").weight_bits
M.bits = { min = wb.min, max = wb.max, default = wb.default, float = wb.float }
M.threads = { min = 1, max = 64 }            -- nn.fitness_many's threads
M.blas_threads = { min = 1, max = 1024 }     -- nn.blas_threads
M.train_threads = { min = 0, max = 64 }      -- nn.trainer's threads (0 = one per idle core)
M.timesteps = { min = 1, max = 1024 }        -- nn.net's timesteps
M.hw_timesteps = { min = 1, max = 1000000 }  -- hw:evaluate's timesteps (a cost model, no net is run)
M.channels = { min = 1, max = 4096 }         -- nn.net's channels (cell A's width)
M.seed = { min = 0, max = 2 ^ 53 - 1 }       -- nn.net's seed (>= 0); 2^53 - 1: exact in any JSON reader
-- Images per fitness or training batch: the fitness kernel is batch^2 doubles and a forward's
-- maps grow with the batch (1024: an 8 MB kernel; SNASNet scores at 64..256).
M.batch = { min = 2, max = 1024 }
M["repeat"] = { min = 1, max = 64 }          -- fitness batches per candidate (nn.fitness's repeat)
M.cells = { min = 1, max = 729 }             -- the NeuroNAS space's size
M.num = { min = 1, max = 1000000 }           -- sampled cells
M.population = { min = 2, max = 100000 }     -- NSGA-II's population (all held at once)
M.generations = { min = 0, max = 100000 }    -- NSGA-II's generations after the first
-- Scored candidates of one run (cosearch.lua's population x generations; the main job's --budget
-- has the same bound, num): every result is kept in the report, so this bounds the run's memory.
M.scored = { min = 1, max = 1000000 }
M.epochs = { min = 1, max = 100000 }
M.count = { min = 1 }                        -- a number of records (--limit)
M.limit = { gt = 0 }                         -- a constraint limit (memory, area, latency, energy)
M.lr = { min = 1e-12, max = 1e6 }            -- nn.trainer's lr
M.lr_min = { min = 0, max = 1e6 }            -- nn.trainer's lr_min, the cosine schedule's end point (also <= lr)
-- Device variation (docs/variation.md): nn.variation's cell sd and bits per cell, and the noisy
-- copies a fitness call scores (neuronas.variation's draws).
M.sigma = { min = 0, max = 10 }
M.device_bits = { min = 1, max = 16 }
M.draws = { min = 1, max = 1024 }

local function fmt(v)
  if v == 2 ^ 53 - 1 then return "2^53-1" end
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2 ^ 63 then v = math.tointeger(v) end
  return tostring(v)
end

-- The range as text: "1..64", ">= 1", "> 0" (nil for no range).
function M.describe(r)
  if not r then return nil end
  if r.min and r.max then return fmt(r.min) .. ".." .. fmt(r.max) end
  if r.min then return ">= " .. fmt(r.min) end
  if r.gt then return "> " .. fmt(r.gt) end
  if r.max then return "<= " .. fmt(r.max) end
  return nil
end

-- Whether v (a number) lies in r: finite, and within its bounds.
function M.contains(r, v)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then return false end
  if not r then return true end
  if r.min and v < r.min then return false end
  if r.max and v > r.max then return false end
  if r.gt and v <= r.gt then return false end
  return true
end

return M
