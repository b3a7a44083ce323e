-- scripts/bench-mpi.lua: the measurements behind scripts/bench-mpi (docs/cluster.md); run it with
-- `neuronas run`, under mpirun or not. Modes:
--   cifar DATA [N]      N (64) random SNASNet cells at the cifar100 preset, 16 channels, batch 64,
--                       1 thread per rank: wall time, and the workers' summed compute time
--   overhead [N]        rank 0 evaluates N (200) fashion-mnist stage-1 candidates with the serial
--                       evaluator, then the same ones through the MPI evaluator (run with -np 2:
--                       one worker does what the serial one did); prints the per-candidate difference
--                       and the MPI wall time not spent computing on the worker
local nn = require("neuronas")
local search = require("neuronas.search")
local clock = require("neuronas.core").clock
local mpi = require("neuronas.search.mpi")

local mode = arg[1]
local function say(fmt, ...) io.stdout:write(string.format(fmt, ...), "\n") end

if mode == "cifar" then
  local path, n = assert(arg[2], "cifar needs DATA"), tonumber(arg[3] or "") or 64
  local ds = nn.data.open({ format = "cifar100", path = path })
  local setup = { preset = "cifar100", net = { channels = 16 }, data = ds, threads = 1, bits = 8 }
  local p = search.mpi_pipeline(setup)
  local t0 = clock()
  local opts = { num = n, preset = "cifar100", net = { channels = 16 }, data = ds, threads = 1, bits = 8,
    pipeline = p, chunk = p and p.batch or 1 }
  local rep = search.random(opts)
  local wall = clock() - t0
  local ranks = p and p.ranks or 1
  say("cifar100 @16 ch, %d candidates, %d rank(s): %.2f s wall, %.1f ms per candidate%s", n, ranks, wall,
    1e3 * wall / n, p and string.format(" (workers computed %.2f s)", p.stats.worker_seconds) or "")
  assert(#rep.results == n)
elseif mode == "overhead" then
  local n = tonumber(arg[2] or "") or 200
  local space = nn.space("neuronas")
  local cands = {}
  for i = 1, n do
    local c = space:cell(i)
    cands[i] = { cellA = c, cellB = c, stage = 1 }
  end
  local setup = { threads = 1, data = nn.data.default({ quiet = true }) }
  local p = search.mpi_pipeline(setup)
  assert(p and p.ranks == 2, "overhead: run under mpirun -np 2")
  local serial = search.evaluator(setup)
  local t0 = clock()
  local a = serial:evaluate(cands)
  local ts = clock() - t0
  local s2 = {}
  for k, v in pairs(setup) do s2[k] = v end
  s2.pipeline = p
  local remote = search.evaluator(s2)
  t0 = clock()
  local u0 = os.clock()
  local b = remote:evaluate(cands)
  local tm, um = clock() - t0, os.clock() - u0
  remote:close()
  -- the CPU cost of the messages alone: one candidate's cost reply (its per-layer table included)
  -- encoded and decoded, as rank 0 and the worker do, without MPI or waiting
  local msg = { id = 1, costs = { b[1].cost }, busy = 0.1, idle_cpu = 0.001 }
  local reps, u1 = 2000, os.clock()
  for _ = 1, reps do mpi.decode(mpi.encode(msg)) end
  local codec = (os.clock() - u1) / reps
  for i = 1, n do assert(a[i].score == b[i].score or (a[i].score ~= a[i].score and b[i].score ~= b[i].score)) end
  say("overhead, %d fashion-mnist candidates, 1 thread: serial %.3f s, MPI (1 worker) %.3f s (worker computed %.3f s)",
    n, ts, tm, p.stats.worker_seconds)
  say("  wall, MPI - serial: %+.3f ms per candidate (%+.1f %%); MPI wall not spent computing: %.3f ms per candidate",
    1e3 * (tm - ts) / n, 100 * (tm - ts) / ts, 1e3 * (tm - p.stats.worker_seconds) / n)
  say("  CPU of distribution: rank 0 %.3f ms + worker outside compute %.3f ms = %.3f ms per candidate",
    1e3 * um / n, 1e3 * p.stats.worker_idle_cpu / n, 1e3 * (um + p.stats.worker_idle_cpu) / n)
  say("  (these include polling while waiting, and on a loaded machine waiting for a core)")
  say("  encoding + decoding one candidate's cost message (%d bytes): %.3f ms CPU", #mpi.encode(msg), 1e3 * codec)
else
  error("usage: neuronas run bench-mpi.lua cifar DATA [N] | overhead [N]", 0)
end
