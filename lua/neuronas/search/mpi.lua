-- neuronas/search/mpi.lua: distributed evaluation over MPI (docs/cluster.md). Rank 0 runs the
-- strategy, the evaluator (cache, journal, constraint checks) and the reports; every other rank
-- serves: it builds, quantizes, costs and scores candidates with its own engine pipeline (its own
-- data, init-weight store and prefix cache) and sends back cost and score. On rank 0 the
-- evaluator's pipeline is replaced by a remote one, so evaluator.lua stays the one place of the
-- caching, journal and feasibility logic, and results are those of a serial run.
--
-- Work is pulled: rank 0 hands each free worker up to `threads` (that worker's) candidates; the
-- worker builds and costs them, rank 0 checks the constraints and answers which to score, and
-- the worker scores those (together, on its threads) and asks for more by answering.
--
-- Messages are Lua table constructors (numbers in %q form, exact for every double); tags:
local T = { hello = 1, go = 2, work = 3, cost = 4, decide = 5, score = 6, fail = 7, stop = 8 }

local options = require("neuronas.search.options")
local pipeline = require("neuronas.search.pipeline")
local journal = require("neuronas.search.journal")
local json = require("neuronas.json")
local evaluator = require("neuronas.search.evaluator")
local knobs = require("neuronas.search.knobs")

local M = {}

local function core() return require("neuronas.core").mpi end
local function clock() return require("neuronas.core").clock() end

-- Serialises a tree of tables, strings, numbers and booleans as a Lua constructor.
local function encode(v, out)
  local t = type(v)
  if t == "table" then
    out[#out + 1] = "{"
    for k, x in pairs(v) do
      out[#out + 1] = "["
      encode(k, out)
      out[#out + 1] = "]="
      encode(x, out)
      out[#out + 1] = ","
    end
    out[#out + 1] = "}"
  elseif t == "number" then
    -- %q writes integers as integers and floats in hexadecimal (1e9999 for inf, (0/0) for nan)
    out[#out + 1] = string.format("%q", v)
  elseif t == "string" then
    out[#out + 1] = string.format("%q", v)
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  else
    error("mpi: cannot send a " .. t .. " value", 0)
  end
  return out
end

function M.encode(v) return table.concat(encode(v, {})) end

function M.decode(s)
  local f = assert(load("return " .. s, "=mpi message", "t", {}))
  return f()
end

local function timeout()
  return tonumber(os.getenv("NEURONAS_MPI_TIMEOUT") or "") or 120
end

-- launched() -> world size announced by mpirun/srun, or nil for a plain process.
function M.launched() return core().launched() end

-- rank() -> this process's rank (0 when not launched by MPI); initialises MPI on first use.
function M.rank()
  local n = M.launched()
  if not n or n < 2 then return 0 end
  local c = core()
  if not c.available then
    error("started with " .. n .. " MPI ranks, but this neuronas was built without MPI (docs/cluster.md)", 0)
  end
  return (c.init())
end

local function size()
  local n = M.launched()
  if not n or n < 2 then return 1 end
  local _, sz = core().init()
  return sz
end

-- A fingerprint of the scoring batches (shapes and a hash of every float's bits, as the
-- journal's digest takes them), so ranks that read different files under the same path are
-- caught at start, also where shapes and sums agree.
local function data_digest(batches)
  local digest = require("neuronas.search.digest")
  local parts = {}
  for r, b in ipairs(batches) do parts[r] = table.concat(b:shape(), "x") .. ":" .. digest.hash_tensor(b) end
  return table.concat(parts, ";")
end

-- What every rank says at start; rank 0 compares the workers' against its own: the settings
-- with the chip and the quantizer (a worker on another chip would cost every candidate on it).
-- With data_broadcast the workers have no data yet (it comes after this check, so that a rank
-- started without the flag is reported instead of hanging in the broadcast).
local function hello(s, p, broadcast)
  local settings = journal.settings_digest(s)
  settings.pipeline = pipeline.setup_identity(s)
  return { version = require("neuronas").version, settings = json.encode(settings),
    broadcast = broadcast and "on" or "off", data = not broadcast and data_digest(p.inputs()) or "rank 0's",
    threads = s.threads, blas = require("neuronas.core").blas_config() }
end

local function pid()
  local f = io.open("/proc/self/stat", "r")
  local n = f and f:read("n")
  if f then f:close() end
  return n
end

-- Test hook (tests/spec/mpi_spec.lua): NEURONAS_MPI_TEST_FAIL="RANK:K:raise|die[:STAGE]" makes
-- worker RANK raise a Lua error, or die at once (SIGKILL), at its K-th candidate (of that stage).
local function fault_hook(rank)
  local r, k, how, stage = (os.getenv("NEURONAS_MPI_TEST_FAIL") or ""):match("^(%d+):(%d+):(%a+):?(%d*)$")
  if tonumber(r) ~= rank then return function() end end
  local n, at = 0, tonumber(k)
  return function(cand)
    if stage ~= "" and cand.stage ~= tonumber(stage) then return end
    n = n + 1
    if n < at then return end
    if how == "die" then
      io.stderr:flush()
      os.execute("kill -KILL " .. assert(pid()))
    end
    error(string.format("test fault on rank %d at its candidate %d", rank, n), 0)
  end
end

-- Receives batches broadcast by rank 0 (data_broadcast) as a dataset whose :batch returns them.
local function broadcast_batches(s, p)
  local c = core()
  local rank = c.init()
  local shapes = {}
  if rank == 0 then
    for r, b in ipairs(p.inputs()) do shapes[r] = b:shape() end
  end
  shapes = M.decode(c.bcast(rank == 0 and M.encode(shapes) or nil))
  local nn = require("neuronas")
  local got = {}
  for r, shape in ipairs(shapes) do
    local t = rank == 0 and p.inputs()[r] or nn.tensor(shape)
    got[r] = c.bcast_tensor(t)
  end
  if rank == 0 then return nil end
  return {
    batch = function(_, n, o)
      local b = got[o.seed - s.data_seed + 1]
      if not b or b:shape()[1] ~= n then error("mpi: no broadcast batch for seed " .. tostring(o.seed), 0) end
      return b
    end,
  }
end

-- The worker's loop: evaluate what rank 0 hands out until it says stop. Rank 0 may hand out a
-- second chunk before answering the first one's costs: the worker builds and costs it meanwhile,
-- so it does not sit idle while rank 0's answer travels.
local function serve(s, p, rank)
  local c = core()
  local fault = fault_hook(rank)
  local held = {}           -- chunk id -> { nets =, cands = }: costed, waiting for rank 0's decision
  local function release_all()
    for _, job in pairs(held) do
      for _, n in pairs(job.nets) do p.release(n) end
    end
    held = {}
  end
  local function fail(id, key, err)
    release_all()
    c.send(0, T.fail, M.encode({ id = id, key = key or "", msg = tostring(err) }))
    repeat
      local _, _, tag = c.recv(0)
    until tag == T.stop
    os.exit(1)
  end
  -- CPU seconds this rank spent outside build/cost/score since its last message (waiting,
  -- decoding, encoding): sent along, so rank 0 can tell what distribution costs
  local cpu_mark, computing = os.clock(), 0
  local function spent()
    local now = os.clock()
    local idle = now - cpu_mark - computing
    cpu_mark, computing = now, 0
    return idle
  end
  while true do
    local msg, _, tag = c.recv(0)
    if tag == T.stop then
      release_all()
      return
    elseif tag == T.work then
      local w = M.decode(msg)
      local nets, costs, current = {}, {}, nil
      local t0, u0 = clock(), os.clock()
      held[w.id] = { nets = nets, cands = w.cands }
      local ok, err = pcall(function()
        for i, cand in ipairs(w.cands) do
          current = evaluator.key(cand)
          fault(cand)
          nets[i] = p.build(cand)
          costs[i] = p.cost(nets[i], cand)
        end
      end)
      if not ok then fail(w.id, current, err) end
      computing = computing + os.clock() - u0
      c.send(0, T.cost, M.encode({ id = w.id, costs = costs, busy = clock() - t0, idle_cpu = spent() }))
    elseif tag == T.decide then
      local d = M.decode(msg)
      local job = assert(held[d.id], "mpi: decision for a chunk this rank does not hold")
      held[d.id] = nil
      local todo, tcands, idx = {}, {}, {}
      for i, n in ipairs(job.nets) do
        if d.want[i] then
          todo[#todo + 1], tcands[#tcands + 1], idx[#idx + 1] = n, job.cands[i], i
        else
          p.release(n)
        end
      end
      if #todo > 0 then
        -- the score and, with variation, its robust summary (docs/variation.md)
        local scores, variations = {}, {}
        local t0, u0 = clock(), os.clock()
        local ok, err = pcall(function()
          if #todo > 1 and p.score_many then
            local sc, ds = p.score_many(todo, tcands)
            for k, i in ipairs(idx) do scores[i], variations[i] = sc[k], ds and ds[k] and ds[k].variation end
          else
            for k, i in ipairs(idx) do
              local sc, dg = p.score(todo[k], tcands[k])
              scores[i], variations[i] = sc, type(dg) == "table" and dg.variation or nil
            end
          end
        end)
        for _, n in ipairs(todo) do p.release(n) end
        if not ok then fail(d.id, evaluator.key(tcands[1]), err) end
        computing = computing + os.clock() - u0
        c.send(0, T.score, M.encode({ id = d.id, scores = scores, variations = variations, busy = clock() - t0,
          idle_cpu = spent() }))
      end
    end
  end
end

-- Rank 0's side of the start: every worker's hello is compared with rank 0's own; a mismatch or
-- a silent rank stops the job with a message naming the ranks, never a hang.
local function greet(s, p, n, broadcast)
  local c = core()
  local mine = hello(s, p, broadcast)
  local threads, problems, heard, blas = {}, {}, {}, {}
  local deadline = timeout()
  local t0 = os.time()
  for _ = 1, n - 1 do
    local left = math.max(0, deadline - (os.time() - t0))
    local msg, src = c.recv(-1, T.hello, left)
    if not msg then break end
    heard[src] = true
    local h = M.decode(msg)
    threads[src] = h.threads
    if h.blas ~= mine.blas then blas[src] = h.blas end
    local what = { version = "engine version", settings = "settings", broadcast = "--data-broadcast",
      data = "scoring data" }
    for _, f in ipairs({ "version", "settings", "broadcast", "data" }) do
      if f == "settings" and h[f] ~= mine[f] then
        local diff = require("neuronas.search.digest").differences(json.decode(mine[f]), json.decode(h[f]))
        problems[#problems + 1] = string.format("rank %d: settings differ from rank 0's: %s", src,
          (table.concat(diff, ", "):gsub("journal ", "rank 0 "):gsub("now ", "rank " .. src .. " ")))
      elseif h[f] ~= mine[f] then
        problems[#problems + 1] = string.format("rank %d: %s %s differs from rank 0's %s", src, what[f], h[f], mine[f])
        if f == "broadcast" then break end
      end
    end
  end
  -- OpenBLAS picks its kernels by CPU: other kernels may round dense convs differently
  for r, b in pairs(blas) do
    io.stderr:write(string.format("neuronas: mpi: warning: rank %d runs %s, rank 0 %s; scores may differ "
      .. "in the last bits from a serial run on rank 0's machine\n", r, b, mine.blas))
  end
  local missing = {}
  for r = 1, n - 1 do
    if not heard[r] then missing[#missing + 1] = tostring(r) end
  end
  if #missing > 0 then
    io.stderr:write(string.format("neuronas: mpi: rank(s) %s did not answer within %d s "
      .. "(every rank must run the same script; NEURONAS_MPI_TIMEOUT sets the wait)\n", table.concat(missing, ", "), deadline))
    c.abort(1)
  end
  local verdict = #problems == 0 and "ok" or table.concat(problems, "; ")
  for r = 1, n - 1 do c.send(r, T.go, verdict) end
  if verdict ~= "ok" then error("mpi: ranks disagree at start: " .. verdict, 0) end
  c.stop_at_exit(T.stop)
  return threads
end

-- The remote pipeline of rank 0: build/cost/score/score_many/release as the engine pipeline's,
-- plus prefetch(cands, ev), which the evaluator calls first so that the whole list is spread over
-- the workers; build and cost of anything not prefetched (a journaled best's layers) run here.
local function remote(s, loc, threads, n)
  local c = core()
  -- stats: candidates handed out, chunks, the workers' summed build+cost+score seconds (wall)
  -- and their CPU seconds outside it
  local p = { hardware = loc.hardware, quantizer = loc.quantizer, ranks = n,
    stats = { candidates = 0, chunks = 0, worker_seconds = 0, worker_idle_cpu = 0 } }
  local done = {}       -- key -> { cost =, score =, scored = }
  local next_id = 0
  local per = 0
  for r = 1, n - 1 do per = per + (threads[r] or 1) end
  p.batch = 8 * per     -- a good list length for a strategy's ask (docs/cluster.md)
  function p.list_size() return p.batch end

  -- Evaluates the unique candidates of list; decide(cand, cost) says whether to score one.
  -- A worker holds at most two chunks (one being costed or scored, the next waiting), and a
  -- second one only while the list has more left than the workers' threads, so the last
  -- candidates go to whichever worker is free.
  local function dispatch(list, decide)
    local qi = 1
    local out, chunks, nout = {}, {}, 0      -- chunks in flight per rank; id -> chunk
    for r = 1, n - 1 do out[r] = 0 end
    local function note()
      local parts = {}
      for _, ch in pairs(chunks) do parts[#parts + 1] = string.format("rank %d: %s", ch.rank, ch.keys) end
      table.sort(parts)
      c.note(table.concat(parts, "; "))
    end
    local function hand_out()
      while qi <= #list do
        local depth = (#list - qi + 1) > per and 2 or 1
        local r
        for w = 1, n - 1 do
          if out[w] < depth and (not r or out[w] < out[r]) then r = w end
        end
        if not r then return end
        local items, cands, keys = {}, {}, {}
        for _ = 1, threads[r] or 1 do
          if qi > #list then break end
          local cand = list[qi]
          qi = qi + 1
          items[#items + 1] = cand
          -- the candidate with its hardware knobs (docs/search.md "Hardware co-search")
          local sent = knobs.copy(cand)
          sent.cellA, sent.cellB, sent.stage = tostring(cand.cellA), tostring(cand.cellB), cand.stage
          cands[#cands + 1] = sent
          keys[#keys + 1] = evaluator.key(cand)
        end
        next_id = next_id + 1
        p.stats.candidates, p.stats.chunks = p.stats.candidates + #items, p.stats.chunks + 1
        chunks[next_id] = { rank = r, items = items, list = keys, keys = table.concat(keys, ", ") }
        out[r], nout = out[r] + 1, nout + 1
        c.send(r, T.work, M.encode({ id = next_id, cands = cands }))
      end
    end
    local function finish(id)
      local r = chunks[id].rank
      chunks[id] = nil
      out[r], nout = out[r] - 1, nout - 1
    end
    hand_out()
    note()
    while nout > 0 do
      local msg, src, tag = c.recv(-1, -1)
      if tag == T.fail then
        local f = M.decode(msg)
        local ch = chunks[f.id]
        error(string.format("mpi: rank %d failed on candidate %s: %s", src,
          f.key ~= "" and f.key or (ch and ch.keys or "?"), f.msg), 0)
      end
      local m = M.decode(msg)
      local ch = chunks[m.id]
      if not ch or ch.rank ~= src or (tag ~= T.cost and tag ~= T.score) then
        error(string.format("mpi: unexpected message (tag %d) from rank %d", tag, src), 0)
      end
      p.stats.worker_seconds = p.stats.worker_seconds + m.busy
      p.stats.worker_idle_cpu = p.stats.worker_idle_cpu + m.idle_cpu
      if tag == T.cost then
        local want, any = {}, false
        for i, cand in ipairs(ch.items) do
          done[ch.list[i]] = { cost = m.costs[i] }
          want[i] = decide(cand, m.costs[i]) and true or false
          any = any or want[i]
        end
        c.send(src, T.decide, M.encode({ id = m.id, want = want }))
        if not any then finish(m.id) end
      else
        for i, key in ipairs(ch.list) do
          local sc = m.scores[i]
          if sc ~= nil then
            done[key].score, done[key].scored, done[key].variation = sc, true, m.variations and m.variations[i]
          end
        end
        finish(m.id)
      end
      hand_out()
      note()
    end
    c.note("")
  end

  function p.prefetch(cands, ev)
    done = {}
    local list, seen = {}, {}
    for _, cand in ipairs(cands) do
      local key = evaluator.key(cand)
      local e = ev.cache[key]
      local settled = e and (e.scored or e.pending or not ev:to_score(cand, e.cost))
      if not seen[key] and not settled then
        seen[key] = true
        list[#list + 1] = cand
      end
    end
    if #list > 0 then
      dispatch(list, function(cand, cost) return ev:to_score(cand, cost) end)
    end
  end

  function p.build(cand)
    return { cand = cand, key = evaluator.key(cand) }
  end
  function p.cost(h)
    local d = done[h.key]
    if d then return d.cost end
    local net = loc.build(h.cand)
    local cost = loc.cost(net, h.cand)
    loc.release(net)
    return cost
  end
  -- scores and diagnostics as the engine pipeline's (diagnostics: the variation summary only)
  function p.score_many(hs)
    local missing = {}
    for _, h in ipairs(hs) do
      local d = done[h.key]
      if not (d and d.scored) then missing[#missing + 1] = h.cand end
    end
    if #missing > 0 then dispatch(missing, function() return true end) end
    local out, diags = {}, {}
    for i, h in ipairs(hs) do
      out[i] = journal.as_number(done[h.key].score)
      diags[i] = { variation = done[h.key].variation }
    end
    return out, diags
  end
  function p.score(h)
    local sc, ds = p.score_many({ h })
    return sc[1], ds[1]
  end
  function p.release() end
  -- Costs without a score (the stage-1 pre-filter) and the journal digest's identity are rank 0's
  -- own: the hardware model is closed-form, and the identity must equal a serial run's.
  p.cost_only, p.identity = loc.cost_only, loc.identity
  -- Releases the workers (they exit); rank 0 keeps its local pipeline for reports.
  function p.close()
    if not p.prefetch then return end
    for r = 1, n - 1 do c.send(r, T.stop, "") end
    c.stop_at_exit(nil)
    p.prefetch = nil
  end
  return p
end

-- search.mpi_pipeline(setup[, { data_broadcast = bool }]) -> pipeline or nil.
-- nil in a plain process or a one-rank job (the evaluator then builds the engine's pipeline: the
-- serial program). On rank 0 of a larger job, the remote pipeline (with .batch, a good number of
-- candidates per ask, and .ranks). On the other ranks it never returns: the rank serves until rank
-- 0 is done, then the process exits.
function M.pipeline(setup, opts)
  opts = opts or {}
  options.check_keys("search.mpi_pipeline", opts, { data_broadcast = "" })
  local s = options.setup(setup)
  local n = size()
  if n < 2 then return nil end
  local c = core()
  local rank = c.init()
  if M.started then error("mpi: only one distributed search per job (the workers serve the first one, then exit)", 2) end
  M.started = true
  local broadcast = opts.data_broadcast and true or false
  if rank == 0 then
    local loc = pipeline.engine_pipeline(s)
    local threads = greet(s, loc, n, broadcast)
    if broadcast then broadcast_batches(s, loc) end
    return remote(s, loc, threads, n)
  end
  local loc = not broadcast and pipeline.engine_pipeline(s) or nil
  c.send(0, T.hello, M.encode(hello(s, loc, broadcast)))
  -- rank 0 answers once every rank has spoken or its own wait is over: wait longer than that
  local verdict = c.recv(0, T.go, 2 * timeout() + 10)
  if not verdict then
    io.stderr:write(string.format("neuronas: mpi: rank %d: no answer from rank 0 within %d s\n", rank, 2 * timeout() + 10))
    c.abort(1)
  end
  if verdict ~= "ok" then os.exit(1) end
  if broadcast then
    s = options.copy(s)
    s.data = broadcast_batches(s, nil)
    loc = pipeline.engine_pipeline(s)
  end
  serve(s, loc, rank)
  os.exit(0)
end

-- search.mpi_evaluator(setup[, opts]) -> evaluator: the serial evaluator in a plain process or a
-- one-rank job, the distributed one on rank 0; on the other ranks it serves and never returns.
function M.evaluator(setup, opts)
  local s = options.setup(setup)
  local p = M.pipeline(s, opts)
  if p then
    s = options.copy(s)
    s.pipeline = p
  end
  return evaluator.new(s)
end

return M
