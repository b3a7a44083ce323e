-- journal_spec.lua: the search journal never yields a silently wrong answer (docs/reliability.md,
-- "The journal"). In process, on a fake pipeline whose costs and scores are functions of the
-- genotype: schema checks of replayed lines, empty and foreign journals, the settings digest.
-- Through the CLI, on the real engine with small runs: SIGKILL at chosen journal writes (the
-- NEURONAS_TEST_KILL_AT hook), a full disk (an LD_PRELOAD fwrite shim built here), a changed data
-- source and corrupt lines. Every resumed run must give the uninterrupted run's results (every
-- candidate's cells, costs, feasibility and score, in order) or refuse with a clear message.
local nn = require("neuronas")
local search = require("neuronas.search")
local journal = require("neuronas.search.journal")
local json = require("neuronas.json")
local H = require("helpers")

local slurp, spit, tmp = H.slurp, H.spit, H.tmpname

local function lines_of(s)
  local t = {}
  for l in s:gmatch("([^\n]*)\n") do t[#t + 1] = l end
  return t
end

-- ------------------------------------------------------------------ fake pipeline
local function conv_count(cell)
  local n = 0
  for _, e in ipairs(nn.cell(cell):edges()) do if e.op == "conv3x3" then n = n + 1 end end
  return n
end

local function fake_pipeline(stats)
  stats.build = 0
  return {
    build = function(c)
      stats.build = stats.build + 1
      return { a = tostring(c.cellA), b = tostring(c.cellB) }
    end,
    cost = function(n)
      local ca, cb = conv_count(n.a), conv_count(n.b)
      local layers = {}
      for k = 1, ca + cb do layers[k] = { name = "conv" .. k, weights = k < ca and 100 or 400 } end
      return { memory_params = 1000 + 100 * ca + 400 * cb, area_mm2 = 1 + 0.5 * ca,
        latency_ms = 2 + ca + 2 * cb, energy_uj = 1 + 0.3 * ca + 0.2 * cb, layers = layers }
    end,
    score = function(n)
      local h = 0
      for ch in (n.a .. "|" .. n.b):gmatch(".") do h = (h * 31 + ch:byte()) % 1000003 end
      return -(h % 10007) / 1000
    end,
    release = function() end,
  }
end

local SPACE = {}
for i = 1, 40 do SPACE[i] = nn.space("neuronas"):cell(i * 18) end
local LIMITS = { memory = 2500, area = 3.0 }

local function fake_run(journal_path, resume, extra)
  local stats = {}
  -- stage1 = "paper": the feasibility pre-filter costs completions through this fake pipeline
  -- (its costs have no per-layer split), which would count as builds that no journal replays
  local o = { constraints = LIMITS, pipeline = fake_pipeline(stats), space = SPACE, journal = journal_path,
    resume = resume, stage1 = "paper" }
  for k, v in pairs(extra or {}) do o[k] = v end
  local rep = search.two_stage(o)
  return rep, stats
end

-- Every result's identity and outcome, in order.
local function outcome(rep)
  local t = {}
  for i, r in ipairs(rep.results) do
    t[i] = { r.key, r.feasible, r.score, r.cost.memory_params, r.cost.energy_uj }
  end
  return t
end

-- Runs fn with journal.warn capturing the reported lines.
local function capture_warnings(fn)
  local seen, old = {}, journal.warn
  journal.warn = function(msg) seen[#seen + 1] = msg end
  local ok, a, b = pcall(fn)
  journal.warn = old
  if not ok then error(a, 0) end
  return seen, a, b
end

describe("the journal's record schema", function()
  local path = tmp(".journal")
  local ref = fake_run(path, false)
  local pristine = slurp(path)
  local plines = lines_of(pristine)
  local n_records = #plines - 1

  it("replays a complete journal without evaluating anything again", function()
    spit(path, pristine)
    local warned, rep, stats = capture_warnings(function() return fake_run(path, true) end)
    assert.are.same({}, warned)
    assert.are.same(outcome(ref), outcome(rep))
    assert.are.equal(0, stats.build)
    assert.are.equal(pristine, slurp(path))
  end)

  -- Each corruption of one record line: a description, the edit, the reason reported.
  local function edit(fn)
    return function(line)
      local rec = json.decode(line)
      fn(rec)
      return json.encode(rec)
    end
  end
  local corruptions = {
    { "a score that is not a number", edit(function(r) r.score = "abc" end), "field 'score'" },
    { "a null score on a scored line", edit(function(r) r.score = json.null end), "field 'score'" },
    { "a table score", edit(function(r) r.score = { 1 } end), "field 'score'" },
    { "a missing cost", edit(function(r) r.cost = nil end), "field 'cost'" },
    { "a cost field that is not a number", edit(function(r) r.cost.energy_uj = "39" end), "field 'cost.energy_uj'" },
    { "a missing cost field", edit(function(r) r.cost.memory_params = nil end), "field 'cost.memory_params'" },
    { "a scored flag that is not a boolean", edit(function(r) r.scored = 1 end), "field 'scored'" },
    { "an unknown field", edit(function(r) r.cellb = "x" end), "unknown field 'cellb'" },
    { "a robust-score record that is not an object", edit(function(r) r.variation = { 1 } end), "field 'variation'" },
    { "a robust-score value that is not a number", edit(function(r) r.variation = { mean = "x" } end),
      "field 'variation.mean'" },
    { "robust scores that are not numbers", edit(function(r) r.variation = { scores = { 1, {} } } end),
      "field 'variation.scores'" },
    { "a line that is not JSON", function(line) return line:sub(1, 30) .. "}" end, "not JSON" },
    { "a line that is a JSON array", function() return "[1, 2]" end, "not a JSON object" },
    -- JSON has no infinity, but 1e999 parses as one: every number of a cost must be finite
    { "an extra cost field that is not finite", function(line)
      return (line:gsub('"cost":{', '"cost":{"memory_bits":1e999,', 1))
    end, "field 'cost.memory_bits': finite number expected" },
  }
  for _, c in ipairs(corruptions) do
    it("reports " .. c[1] .. " with its line number and evaluates that candidate again", function()
      local ls = {}
      for i, l in ipairs(plines) do ls[i] = l end
      local target = 5 -- a scored stage-1 line
      assert.is_true(json.decode(ls[target]).scored)
      ls[target] = c[2](ls[target])
      spit(path, table.concat(ls, "\n") .. "\n")
      local warned, rep, stats = capture_warnings(function() return fake_run(path, true) end)
      assert.are.equal(1, #warned)
      assert.truthy(warned[1]:find(path .. ":" .. target .. ": ", 1, true), warned[1])
      assert.truthy(warned[1]:find(c[3], 1, true), warned[1])
      assert.are.same(outcome(ref), outcome(rep))
      assert.are.equal(1, stats.build)
      -- the journal was rewritten without the bad line, and the candidate appended again
      local after = lines_of(slurp(path))
      assert.are.equal(#plines, #after)
      for i = 2, #after do assert.is_true(journal.check_record(json.decode(after[i]))) end
    end)
  end

  it("reads the non-finite scores it writes back as numbers", function()
    local rec = json.decode(plines[5])
    for word, value in pairs({ inf = math.huge, ["-inf"] = -math.huge }) do
      rec.score = word
      assert.is_true(journal.check_record(rec))
      assert.are.equal(value, journal.as_number(word))
    end
    local nan = journal.as_number("nan")
    assert.is_true(nan ~= nan)
    rec.scored, rec.score = false, 1.5
    assert.is_nil((journal.check_record(rec)))
  end)

  it("drops a torn last line, appends on a fresh line and never glues records", function()
    spit(path, table.concat(plines, "\n", 1, 9) .. "\n" .. plines[10]:sub(1, 40))
    local warned, rep, stats = capture_warnings(function() return fake_run(path, true) end)
    assert.are.equal(1, #warned)
    assert.truthy(warned[1]:find(":10: incomplete last line", 1, true), warned[1])
    assert.are.same(outcome(ref), outcome(rep))
    assert.are.equal(n_records - 8, stats.build)
    local after = lines_of(slurp(path))
    assert.are.equal(#plines, #after)
    for i = 2, #after do assert.is_true(journal.check_record(json.decode(after[i]))) end
  end)

  it("treats an empty journal as new and writes its header", function()
    spit(path, "")
    local warned, rep, stats = capture_warnings(function() return fake_run(path, true) end)
    assert.are.same({}, warned)
    assert.are.same(outcome(ref), outcome(rep))
    assert.are.equal(n_records, stats.build)
    assert.are.equal(plines[1], lines_of(slurp(path))[1])
  end)

  it("refuses a file that is not a journal, and an older journal without the digest", function()
    spit(path, "hello\n")
    assert.has_error(function() fake_run(path, true) end,
      path .. ": not a neuronas journal (its first line is not a complete journal header)")
    local dir = tmp("-dir")
    os.execute("mkdir " .. dir)
    assert.has_error(function() fake_run(dir, true) end, "cannot read journal " .. dir .. ": is a folder, a file expected")
    os.execute("rmdir " .. dir)
    -- a device or a pipe has no end to read up to: refused by its kind, before it is opened
    -- (opening a pipe for reading would wait for a writer; /dev/zero would fill the memory)
    assert.has_error(function() fake_run("/dev/zero", true) end, "cannot read journal /dev/zero: not a regular file")
    local fifo = tmp("-fifo")
    assert.is_true(os.execute("mkfifo " .. fifo))
    assert.has_error(function() fake_run(fifo, true) end, "cannot read journal " .. fifo .. ": not a regular file")
    os.remove(fifo)
    -- the size bound, from the file's size
    local max = journal.MAX_BYTES
    journal.MAX_BYTES = 10
    spit(path, "01234567890\n")
    local ok0, err0 = pcall(fake_run, path, true)
    journal.MAX_BYTES = max
    assert.is_false(ok0)
    assert.are.equal(path .. ": too large for a journal (at most 10 bytes)", err0)
    spit(path, '{"journal":"neuronas","settings":"{\\"bits\\":8}"}\n')
    local ok, err = pcall(fake_run, path, true)
    assert.is_false(ok)
    assert.truthy(err:find("written with other settings (by an older neuronas", 1, true), err)
  end)

  it("refuses a resume whose constraints differ, naming them, functions by their code", function()
    local function make(limit) return function(cost) return cost.latency_ms < limit end end
    local p2 = tmp(".journal")
    fake_run(p2, false, { constraints = { memory = 2500, fits = make(9) } })
    -- the same code in another closure, capturing the same value, is the same constraint
    local rep = fake_run(p2, true, { constraints = { memory = 2500, fits = make(9) } })
    assert.are.equal(rep.counts.evaluated, rep.counts.cached)
    -- a captured value or the code changed: refused, naming the constraint
    for _, fits in ipairs({ make(8), function(cost) return cost.latency_ms < 9 end }) do
      local ok, err = pcall(fake_run, p2, true, { constraints = { memory = 2500, fits = fits } })
      assert.is_false(ok)
      assert.truthy(err:find(p2 .. ": written with other settings: constraints.fits (journal \"lua:", 1, true), err)
    end
    local ok, err = pcall(fake_run, p2, true, { constraints = { memory = 2400, fits = make(9) } })
    assert.is_false(ok)
    assert.truthy(err:find("constraints.memory (journal 2500, now 2400)", 1, true), err)
    os.remove(p2)
  end)

  it("gives constraint functions the per-layer costs of replayed candidates too", function()
    local function few(_, layers) return #layers <= 3 end
    local big = { fn = function(_, layers)
      local m = 0
      for _, l in ipairs(layers) do m = math.max(m, l.weights) end
      return m
    end, max = 300 }
    local o = { constraints = { memory = 2500, few = few, big = big } }
    local p2 = tmp(".journal")
    local first = fake_run(p2, false, o)
    assert.is_true(first.counts.skipped > 0 and first.counts.scored > 0)
    local again, stats = fake_run(p2, true, o)
    assert.are.same(outcome(first), outcome(again))
    assert.are.equal(again.counts.evaluated, again.counts.cached)
    assert.is_true(stats.build > 0) -- nets rebuilt for their layers only, never scored again
    os.remove(p2)
  end)

  it("evaluates again a replayed candidate whose cost lacks a field a constraint reads, and says so", function()
    -- a pipeline whose costs carry a field of the user's (as a --constraints file can limit)
    local function tiled(stats)
      local p = fake_pipeline(stats)
      local cost = p.cost
      p.cost = function(n)
        local c = cost(n)
        c.tiles = 7
        return c
      end
      return p
    end
    local st0 = {}
    local o = { constraints = { memory = 2500, area = 3.0, tiles = 10 }, pipeline = tiled(st0) }
    local p2 = tmp(".journal")
    local first = fake_run(p2, false, o)
    local ls = lines_of(slurp(p2))
    local rec = json.decode(ls[5])
    assert.are.equal(7, rec.cost.tiles)
    rec.cost.tiles = nil
    ls[5] = json.encode(rec)
    spit(p2, table.concat(ls, "\n") .. "\n")
    local stats = {}
    o.pipeline = tiled(stats)
    local warned, again = capture_warnings(function() return fake_run(p2, true, o) end)
    assert.are.equal(1, #warned, table.concat(warned, "\n"))
    assert.are.equal(p2 .. ": the journaled result of " .. rec.key .. " is evaluated again: constraint 'tiles': "
      .. "cost field 'tiles' must be a number, got nil", warned[1])
    assert.are.same(outcome(first), outcome(again))
    assert.are.equal(1, stats.build)
    os.remove(p2)
  end)

  it("refuses a header whose settings no neuronas writes, naming the file", function()
    local p2 = tmp(".journal")
    fake_run(p2, false)
    local ls = lines_of(slurp(p2))
    for _, bad in ipairs({ '{"batch":1e999}', string.rep("[", 150) .. string.rep("]", 150) }) do
      local head = ls[1]:gsub('"settings":{', '"settings":{"x":' .. bad:gsub("%%", "%%%%") .. ',', 1)
      assert.are_not.equal(ls[1], head)
      spit(p2, head .. "\n")
      local ok, err = pcall(fake_run, p2, true)
      assert.is_false(ok)
      assert.truthy(err:find("^" .. p2:gsub("%p", "%%%0") .. ": its header's settings are not a journal's %(json: "), err)
    end
    os.remove(p2)
  end)

  it("cleans up", function() os.remove(path) end)
end)

describe("the settings digest", function()
  local digest = require("neuronas.search.digest")

  it("hashes tensors by shape and every float's bits", function()
    local a = nn.tensor.from({ { 1, 2 }, { 3, 4 } })
    local h = digest.hash_tensor(a)
    assert.are.equal(16, #h)
    assert.are.equal(h, digest.hash_tensor(a:copy()))
    assert.are_not.equal(h, digest.hash_tensor(nn.tensor.from({ { 1, 2, 3, 4 } })))
    local b = a:copy()
    b:set(2, 2, 4 + 2 ^ -20) -- the next floats after 4 differ in the last mantissa bits
    assert.are_not.equal(h, digest.hash_tensor(b))
    b:set(2, 2, 4)
    assert.are.equal(h, digest.hash_tensor(b))
    -- a 200-element tensor (three 64-float blocks and a tail): each element counts
    local big = nn.tensor(200)
    local hb = digest.hash_tensor(big)
    for _, i in ipairs({ 1, 64, 65, 192, 193, 200 }) do
      local c = big:copy()
      c:set(i, 1)
      assert.are_not.equal(hb, digest.hash_tensor(c), i)
    end
    assert.are.same({ 2, 2 }, a:shape()) -- the argument is left as it was
  end)

  it("covers the data actually scored, the hardware and the quantizer seed", function()
    local ds = nn.data.default({ quiet = true, embedded = true })
    local function id(o)
      local s = search.setup(o)
      return search.engine_pipeline(s).identity()
    end
    local base = id({ data = ds, batch = 4 })
    assert.are.equal(ds.path, base.data.path)
    assert.are.equal(2000, base.data.size)
    local x = ds:batch(4, { seed = 1 })
    assert.are.same({ digest.hash_tensor(x) }, base.data.batches)
    assert.are.same(base, id({ data = ds, batch = 4 }))
    assert.are_not.same(base.data.batches, id({ data = ds, batch = 4, seed = 2 }).data.batches)
    assert.are.equal(2, #id({ data = ds, batch = 4, ["repeat"] = 2 }).data.batches)
    local hw = id({ data = ds, batch = 4, hardware = { mode = "neuronas", xbar = 128 } })
    assert.are.equal(128, hw.hardware.xbar)
    assert.are.equal(64, base.hardware.xbar)
    local q = id({ data = ds, batch = 4, rounding = "stochastic", seed = 7 }).quantizer
    assert.are.same({ bits = 8, rounding = "stochastic", scale = "pow2", seed = 7 }, q)
  end)

  it("lets --rounding stochastic draw from the search seed", function()
    local s1 = search.setup({ rounding = "stochastic", seed = 3 })
    assert.are.equal(3, search.engine_pipeline(s1).quantizer.seed)
  end)
end)

-- ------------------------------------------------------------------ the CLI on the real engine
local SCRIPT = "scripts/neuronas.lua"
local QUICK = " --cells 10 --batch 16 --quiet"

local function run(args, env)
  return H.run((env or "") .. " " .. H.q(H.cli) .. " run " .. SCRIPT .. " " .. args)
end

-- The CSV rows without the columns that differ between runs (seconds, cached).
local function csv_outcome(path)
  local rows = {}
  for line in slurp(path):gmatch("[^\n]+") do rows[#rows + 1] = line end
  local cols = {}
  for c in (rows[1] .. ","):gmatch("([^,]*),") do cols[#cols + 1] = c end
  local out = {}
  for i = 2, #rows do
    local fields, k = {}, 0
    for v in (rows[i] .. ","):gmatch("([^,]*),") do
      k = k + 1
      if cols[k] ~= "seconds" and cols[k] ~= "cached" then fields[#fields + 1] = v end
    end
    out[#out + 1] = table.concat(fields, ",")
  end
  return out
end

-- Every line of a journal parses and passes the schema, but a torn last line (no newline).
local function assert_valid_journal(path)
  local text = slurp(path)
  local ls = lines_of(text)
  assert.is_table(json.decode(ls[1]))
  assert.are.equal("neuronas", json.decode(ls[1]).journal)
  for i = 2, #ls do assert.is_true(journal.check_record(json.decode(ls[i])), "line " .. i) end
  return #ls
end

describe("a journal on the real engine", function()
  local jref, cref = tmp(".journal"), tmp(".csv")
  local ref, nref

  it("records an uninterrupted run", function()
    local code, _, err = run(QUICK .. " --journal " .. jref .. " --csv " .. cref)
    assert.are.equal(0, code, err)
    ref = csv_outcome(cref)
    assert.are.equal(20, #ref)
    nref = assert_valid_journal(jref)
    assert.are.equal(20, nref) -- the header and 19 records: (A*, A*) of stage 2 came from the cache
  end)

  -- kill -9 at chosen journal writes: halfway through the header, right after it, after record 3,
  -- halfway through record 8, after the last record
  for _, at in ipairs({ "-0.5", "0", "3", "7.5", "19" }) do
    it("resumes after a SIGKILL at journal write " .. at .. " to the uninterrupted result", function()
      local j, c = tmp(".journal"), tmp(".csv")
      local code, _, err = run(QUICK .. " --journal " .. j, "NEURONAS_TEST_KILL_AT=" .. at)
      assert.are.equal(137, code, err)
      local n = tonumber(at)
      if n < 0 then
        assert.is_nil(io.open(j, "r")) -- the header never reached the journal's name
      else
        assert.are.equal(1 + math.floor(n), assert_valid_journal(j))
        local torn = slurp(j):match("[^\n]*$")
        assert.are.equal(n % 1 == 0.5, torn ~= "")
      end
      code, _, err = run(QUICK .. " --resume --journal " .. j .. " --csv " .. c)
      assert.are.equal(0, code, err)
      assert.are.same(ref, csv_outcome(c))
      assert.are.equal(nref, assert_valid_journal(j))
      if n % 1 == 0.5 and n > 0 then assert.truthy(err:find("incomplete last line", 1, true), err) end
      os.remove(j); os.remove(j .. ".tmp"); os.remove(c)
    end)
  end

  it("stops with the path and the OS error when the disk fills up, and resumes from what it kept", function()
    local so = tmp(".so")
    local code, _, err = H.run("cc -shared -fPIC -o " .. H.q(so) .. " tests/shim/enospc.c -ldl")
    assert.are.equal(0, code, err)
    local plines = lines_of(slurp(jref))
    -- room for the header, five records and half of the sixth
    local budget = #plines[1] + 1
    for i = 2, 6 do budget = budget + #plines[i] + 1 end
    budget = budget + #plines[7] // 2
    local j, c = tmp(".journal"), tmp(".csv")
    local preload = os.getenv("LD_PRELOAD")
    local env = string.format("LD_PRELOAD=%s NN_ENOSPC_PATH=%s NN_ENOSPC_BYTES=%d",
      H.q((preload and preload ~= "" and (preload .. ":") or "") .. so), H.q(j), budget)
    local out
    code, out, err = run(QUICK .. " --journal " .. j .. " --csv " .. c, env)
    assert.are.equal(1, code, err)
    assert.are.equal("", out)
    assert.truthy(err:find("neuronas: cannot write journal '" .. j .. "': No space left on device\n", 1, true), err)
    assert.is_nil(err:find("traceback", 1, true))
    assert.is_nil(io.open(c, "r")) -- no report from a run that stopped
    -- the journal holds the header, five complete records and a torn sixth
    assert.are.equal(6, assert_valid_journal(j))
    assert.are_not.equal("", slurp(j):match("[^\n]*$"))
    code, _, err = run(QUICK .. " --resume --journal " .. j .. " --csv " .. c)
    assert.are.equal(0, code, err)
    assert.are.same(ref, csv_outcome(c))
    assert.are.equal(nref, assert_valid_journal(j))
    os.remove(j); os.remove(c); os.remove(so)
  end)

  it("refuses to resume when the records scored changed, though path and size did not", function()
    local dir = tmp("-fmnist")
    assert.are.equal(0, (H.run("mkdir -p " .. H.q(dir) .. " && for f in datasets/fashion-mnist/*.gz; do gunzip -c \"$f\" > "
      .. H.q(dir) .. "/$(basename \"$f\" .gz); done")))
    local j = tmp(".journal")
    local flags = QUICK .. " --data " .. H.q(dir) .. " --journal " .. j
    local code, _, err = run(flags)
    assert.are.equal(0, code, err)
    -- invert every pixel of the training images (same size, same header)
    local img = dir .. "/train-images-idx3-ubyte"
    local bytes = slurp(img)
    local inv = bytes:sub(1, 16) .. bytes:sub(17):gsub(".", function(ch) return string.char(255 - ch:byte()) end)
    spit(img, inv)
    code, _, err = run(flags .. " --resume")
    assert.are.equal(1, code)
    assert.truthy(err:find(j .. ": written with other settings: pipeline.data.batches.1 (journal \"", 1, true), err)
    assert.is_nil(err:find("pipeline.data.size", 1, true))
    assert.is_nil(err:find("traceback", 1, true))
    -- another data source altogether (the issue's case: Debian's set, then the embedded subset)
    code, _, err = run(QUICK .. " --journal " .. j .. " --resume --data datasets/fashion-mnist")
    assert.are.equal(1, code)
    assert.truthy(err:find("pipeline.data.path (journal \"" .. dir, 1, true), err)
    os.execute("rm -rf " .. H.q(dir))
    os.remove(j)
  end)

  it("redoes a corrupt line and still gives the uninterrupted result", function()
    local ls = lines_of(slurp(jref))
    local rec = json.decode(ls[4])
    rec.score = "abc"
    ls[4] = json.encode(rec)
    local j, c = tmp(".journal"), tmp(".csv")
    spit(j, table.concat(ls, "\n") .. "\n")
    local code, _, err = run(QUICK .. " --resume --journal " .. j .. " --csv " .. c)
    assert.are.equal(0, code, err)
    assert.truthy(err:find(j .. ":4: field 'score'", 1, true), err)
    assert.are.same(ref, csv_outcome(c))
    os.remove(j); os.remove(c)
  end)

  it("cleans up", function() os.remove(jref); os.remove(cref) end)
end)
