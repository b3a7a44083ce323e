-- tests/spec/mpi_spec.lua: distributed evaluation (docs/cluster.md). The truth every MPI run is
-- held to is the serial program: the same journal lines (seconds aside), the same best cells and
-- scores, whatever the number of ranks and threads per rank. Runs mpirun on localhost.
local h = require("helpers")
local json = require("neuronas.json")
local mpi = require("neuronas.search.mpi")
local core = require("neuronas.core")

local ROOT = (io.popen("pwd"):read("l"))
local SCRIPT = ROOT .. "/scripts/neuronas.lua"
local has_mpirun = os.execute("command -v mpirun >/dev/null 2>&1") == true
local mpi_ok = core.mpi.available and has_mpirun
if not mpi_ok then
  io.stderr:write("mpi_spec: MPI not installed (build without MPI or no mpirun): "
    .. "only the encoding and the refusal of a multi-rank launch are checked\n")
end

-- mpirun on localhost; the ASan build's LD_PRELOAD (meant for lua5.4) is not passed on: the
-- neuronas binary carries its own sanitizer runtime. A hang fails (timeout's status 124).
local function mpirun(spec, env)
  local e = ""
  for k, v in pairs(env or {}) do e = e .. " -x " .. k .. "=" .. h.q(v) end
  return h.run("env -u LD_PRELOAD timeout 300 mpirun --oversubscribe --bind-to none --allow-run-as-root" .. e .. " " .. spec)
end

local function search_args(journal, extra, whole_space)
  -- the first 12 cells, except for a strategy that breeds over the whole space (nsga2)
  return table.concat({ h.q(SCRIPT), whole_space and "" or "--cells 12", "--quiet --journal", h.q(journal),
    extra or "" }, " ")
end

-- The journal's header and candidate lines without the timing field, sorted when asked; with
-- torn_ok, a last line cut short by a killed process (no newline; --resume ignores it) is left out.
local function journal_lines(path, sorted, torn_ok)
  local out = {}
  local text = h.slurp(path)
  if torn_ok then text = text:match("^(.*\n)") or "" end
  for line in text:gmatch("[^\n]+") do
    local rec = json.decode(line)     -- every whole line is valid JSON: raises otherwise
    rec.seconds = nil
    out[#out + 1] = json.encode(rec)
  end
  if sorted then
    local head = table.remove(out, 1)
    table.sort(out)
    table.insert(out, 1, head)
  end
  return out
end

local function best_of(json_path)
  local r = json.decode(h.slurp(json_path))
  return { cellA = r.best.cellA, cellB = r.best.cellB, score = r.best.score, feasible = r.feasible }
end

describe("mpi message encoding", function()
  it("round-trips every double exactly, keeps integers integers, and strings byte for byte", function()
    local vals = { 0, -0.0, 1, -1, 0.1, 1 / 3, 2 ^ -1074, 1.7976931348623157e308, math.huge, -math.huge,
      math.maxinteger, math.mininteger, 3.0, "a \"q\"\n\0\255", true, false }
    local back = mpi.decode(mpi.encode({ vals = vals, nested = { x = { 1.5, "y" } } }))
    for i, v in ipairs(vals) do
      assert.are.equal(v, back.vals[i])
      assert.are.equal(math.type(v), math.type(back.vals[i]))
    end
    assert.are.equal(1 / (-0.0), 1 / back.vals[2])        -- the sign of zero survives
    local nan = mpi.decode(mpi.encode({ 0 / 0 }))[1]
    assert.is_true(nan ~= nan)
    assert.are.equal(1.5, back.nested.x[1])
    assert.are.equal("y", back.nested.x[2])
  end)

  it("refuses values it cannot carry", function()
    assert.has_error(function() mpi.encode({ f = print }) end, "mpi: cannot send a function value")
  end)

  it("a plain process is not launched, and pipeline() leaves it serial", function()
    assert.is_nil(mpi.launched())
    assert.is_nil(mpi.pipeline({}))
    assert.has_error(function() mpi.pipeline({}, { broadcast = true }) end,
      "search.mpi_pipeline: unknown option 'broadcast' (expected: data_broadcast)")
  end)

  it("reads the world size a launcher announces", function()
    local code, out = h.run("OMPI_COMM_WORLD_SIZE=3 " .. h.q(h.cli)
      .. " -e 'print(require(\"neuronas.core\").mpi.launched())'")
    if core.mpi.available then
      assert.are.equal(0, code)
      assert.are.equal("3\n", out)
    else
      -- a build without MPI refuses to start as one of several ranks
      assert.are.equal(2, code)
    end
  end)
end)

if not core.mpi.available then
  describe("a build without MPI", function()
    it("says so when started as one of several ranks", function()
      local code, _, err = h.run("PMI_SIZE=4 " .. h.q(h.cli) .. " run " .. h.q(SCRIPT) .. " --cells 1")
      assert.are.equal(2, code)
      assert.matches("started with 4 ranks %(PMI_SIZE%), but this neuronas was built without MPI", err)
    end)
  end)
end

if mpi_ok then
  describe("mpirun", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. h.q(dir)))
    local ref_journal, ref_json = dir .. "/serial.journal", dir .. "/serial.json"
    local ref

    setup(function()
      -- the serial program, no mpirun: the reference
      local code, _, err = h.run(h.q(h.cli) .. " run " .. search_args(ref_journal, "--threads 2 --json " .. h.q(ref_json)))
      assert(code == 0, err)
      ref = journal_lines(ref_journal)
    end)

    it("gives the serial journal and best with 1, 2 and 3 ranks and 1 or 2 threads per rank", function()
      assert.is_true(#ref > 20)   -- header + 24 candidates minus a repeat
      for _, run in ipairs({ { 1, 1 }, { 2, 2 }, { 3, 1 }, { 3, 2 } }) do
        local np, th = run[1], run[2]
        local j, js = string.format("%s/np%d-t%d.journal", dir, np, th), string.format("%s/np%d-t%d.json", dir, np, th)
        local code, _, err = mpirun(string.format("-np %d %s run %s", np, h.q(h.cli),
          search_args(j, string.format("--threads %d --json %s", th, h.q(js)))))
        assert.are.equal(0, code, err)
        assert.are.same(ref, journal_lines(j))
        assert.are.same(best_of(ref_json), best_of(js))
      end
    end)

    it("--data-broadcast: workers never open --data, results unchanged", function()
      -- rank 0 reads the real data; the workers are given a path that does not exist
      local j, js = dir .. "/bcast.journal", dir .. "/bcast.json"
      local code, _, err = mpirun(string.format("-np 1 %s run %s : -np 2 %s run %s", h.q(h.cli),
        search_args(j, "--data-broadcast --json " .. h.q(js)), h.q(h.cli),
        search_args(j, "--data-broadcast --data /nonexistent/fmnist")))
      assert.are.equal(0, code, err)
      assert.are.same(ref, journal_lines(j))
      assert.are.same(best_of(ref_json), best_of(js))
    end)

    -- Runs 3 ranks with rank 2 failing (how: raise|die) at its 2nd stage-2 candidate (each stage of
    -- 12 cells is one batch, so stage 1 was journaled), checks rank 0's message and the journal,
    -- then resumes with resume_np ranks and compares with the uninterrupted serial run.
    local function fault_then_resume(how, message, resume_np)
      local j, js = dir .. "/" .. how .. ".journal", dir .. "/" .. how .. ".json"
      local code, _, err = mpirun("-np 3 " .. h.q(h.cli) .. " run " .. search_args(j, "--threads 1"),
        { NEURONAS_MPI_TEST_FAIL = "2:2:" .. how .. ":2" })
      assert.are_not.equal(0, code)
      assert.are_not.equal(124, code)
      assert.matches(message, err)
      local partial = journal_lines(j, false, true)   -- whole lines parse (a torn last one may not)
      assert.is_true(#partial > 1 and #partial < #ref)
      code, _, err = mpirun(string.format("-np %d %s run %s", resume_np, h.q(h.cli),
        search_args(j, "--resume --json " .. h.q(js))))
      assert.are.equal(0, code, err)
      assert.are.same(journal_lines(ref_journal, true), journal_lines(j, true))
      assert.are.same(best_of(ref_json), best_of(js))
    end

    it("a worker that raises: rank 0 names rank and candidate, the journal stays valid, --resume finishes it", function()
      fault_then_resume("raise",
        "mpi: rank 2 failed on candidate [%w ]+ | [%w ]+: test fault on rank 2 at its candidate 2", 2)
    end)

    it("a worker that dies: rank 0 reports what was in flight on it, --resume with one rank finishes it", function()
      fault_then_resume("die",
        "stopped by the MPI launcher %(a rank died, or Ctrl%-C%); in flight: [^\n]*rank 2: [%w ]+ | [%w ]+", 1)
    end)

    it("ranks started with other settings are refused at start", function()
      local j = dir .. "/mismatch.journal"
      local code, _, err = mpirun(string.format("-np 2 %s run %s : -np 1 %s run %s", h.q(h.cli), search_args(j),
        h.q(h.cli), search_args(j, "--seed 7")))
      assert.are_not.equal(0, code)
      assert.are_not.equal(124, code)
      assert.matches("mpi: ranks disagree at start: rank 2: settings differ from rank 0's: [^\n]*seed %(rank 0 1, rank 2 7%)", err)
      -- --data-broadcast on rank 0 only: reported before anyone enters the broadcast
      code, _, err = mpirun(string.format("-np 1 %s run %s : -np 1 %s run %s", h.q(h.cli),
        search_args(j, "--data-broadcast"), h.q(h.cli), search_args(j)))
      assert.are_not.equal(0, code)
      assert.are_not.equal(124, code)
      assert.matches("mpi: ranks disagree at start: rank 1: %-%-data%-broadcast off differs from rank 0's on", err)
      -- another chip on one rank: it would cost every candidate there on its own chip
      local chip = dir .. "/chip128.lua"
      h.spit(chip, "return { xbar = 128 }\n")
      code, _, err = mpirun(string.format("-np 1 %s run %s : -np 1 %s run %s", h.q(h.cli),
        search_args(j, "--hardware " .. h.q(chip)), h.q(h.cli), search_args(j)))
      assert.are_not.equal(0, code)
      assert.are_not.equal(124, code)
      assert.matches("mpi: ranks disagree at start: rank 1: settings differ from rank 0's: [^\n]*pipeline%.hardware%.xbar "
        .. "%(rank 0 128, rank 1 64%)", err)
      -- data of the same shapes and sums (every image mirrored) under the same path on another rank
      local function idx_data(folder, mirror)
        assert.is_true(os.execute("mkdir -p " .. h.q(folder)))
        local n, px, lab = 64, {}, {}
        for i = 0, n - 1 do
          for y = 0, 27 do
            for x = 0, 27 do
              local xx = mirror and 27 - x or x
              px[#px + 1] = string.char((i * 7 + y * 13 + xx * xx) % 256)
            end
          end
          lab[i + 1] = string.char(i % 10)
        end
        h.spit(folder .. "/train-images-idx3-ubyte", string.pack(">I4I4I4I4", 0x803, n, 28, 28) .. table.concat(px))
        h.spit(folder .. "/train-labels-idx1-ubyte", string.pack(">I4I4", 0x801, n) .. table.concat(lab))
      end
      idx_data(dir .. "/A/data", false)
      idx_data(dir .. "/B/data", true)
      local args = search_args(dir .. "/A/m.journal", "--data data --batch 16")
      code, _, err = mpirun(string.format("-np 1 -wdir %s %s run %s : -np 1 -wdir %s %s run %s", h.q(dir .. "/A"),
        h.q(h.cli), args, h.q(dir .. "/B"), h.q(h.cli), args))
      assert.are_not.equal(0, code)
      assert.are_not.equal(124, code)
      assert.matches("mpi: ranks disagree at start: rank 1: scoring data [^\n]* differs from rank 0's", err)
    end)

    it("a rank that never answers is reported, not waited for", function()
      local j = dir .. "/silent.journal"
      local code, _, err = mpirun(string.format("-np 2 %s run %s : -np 1 %s -e %s", h.q(h.cli), search_args(j),
        h.q(h.cli), h.q("require('neuronas.core').mpi.init() os.execute('sleep 20')")), { NEURONAS_MPI_TIMEOUT = "2" })
      assert.are_not.equal(0, code)
      assert.are_not.equal(124, code)
      assert.matches("mpi: rank%(s%) 2 did not answer within 2 s", err)
    end)

    it("a co-search (--knobs) with --variation gives the serial journal, results and best on 2 ranks", function()
      -- the knobs travel to the worker and its chip, bits and T are used there: a worker that
      -- dropped them would cost and score every candidate on the default chip, at FxP8 and T = 5
      local args = "--strategy nsga2 --population 4 --generations 2 --knobs xbar,device_bits,adc_bits,bits,timesteps"
        .. " --batch 16 --variation 0.1 --variation-draws 2 --threads 2 --json "
      local sj, sjs, mj, mjs = dir .. "/co-serial.journal", dir .. "/co-serial.json", dir .. "/co-np2.journal", dir .. "/co-np2.json"
      local code, _, err = h.run(h.q(h.cli) .. " run " .. search_args(sj, args .. h.q(sjs), true))
      assert.are.equal(0, code, err)
      code, _, err = mpirun(string.format("-np 2 %s run %s", h.q(h.cli), search_args(mj, args .. h.q(mjs), true)))
      assert.are.equal(0, code, err)
      local serial = journal_lines(sj)
      assert.are.same(serial, journal_lines(mj))
      local a, b = json.decode(h.slurp(sjs)), json.decode(h.slurp(mjs))
      assert.are.equal(#a.results, #b.results)
      local knobbed, robust = 0, 0
      for i, r in ipairs(a.results) do
        local q = b.results[i]
        assert.are.equal(r.cellA .. r.cellB, q.cellA .. q.cellB)
        assert.are.same(r.hw, q.hw)
        assert.are.equal(r.bits, q.bits)
        assert.are.equal(r.timesteps, q.timesteps)
        assert.are.same(r.cost, q.cost)
        assert.are.equal(r.score, q.score)
        assert.are.same(r.variation, q.variation)
        if r.hw and r.hw.xbar ~= 64 and r.bits ~= 8 then knobbed = knobbed + 1 end
        if type(r.variation) == "table" then robust = robust + 1 end
      end
      assert.is_true(knobbed > 0)
      assert.is_true(robust > 0)
      assert.are.same(best_of(sjs), best_of(mjs))
      assert.are.same(a.best.hw, b.best.hw)
    end)

    it("search.mpi_evaluator runs a custom strategy distributed with no change", function()
      local script = h.tmpfile([[
local nn = require("neuronas")
local search = require("neuronas.search")
local space = nn.space("neuronas")
local st = { n = 0 }
function st:ask()            -- three asks of 5 pairs (c_i, c_{i+40}), a repeat in the last
  if self.n == 3 then return nil end
  self.n = self.n + 1
  local out = {}
  for k = 1, 5 do
    local i = (self.n - 1) * 5 + k
    if self.n == 3 and k == 5 then i = 1 end
    out[k] = { cellA = space:cell(i), cellB = space:cell(i + 40) }
  end
  return out
end
function st:tell() end
local ev = search.mpi_evaluator({ constraints = { memory = 30000 }, threads = 2 })
local rep = search.run(st, ev)
for _, r in ipairs(rep.results) do
  print(r.key, r.feasible, r.score and string.format("%q", r.score) or "-", string.format("%q", r.cost.energy_uj), r.cached)
end
if ev.pipeline.ranks then   -- distributed: a second distributed search is refused
  io.stderr:write(select(2, pcall(search.mpi_pipeline, {})), "\n")
end
]], ".lua")
      local code, serial, err = h.run(h.q(h.cli) .. " run " .. h.q(script))
      assert.are.equal(0, code, err)
      local _, nlines = serial:gsub("\n", "")
      assert.are.equal(15, nlines)
      assert.matches("true", serial)
      assert.matches("false", serial)     -- the memory limit rules some out
      local out
      code, out, err = mpirun("-np 3 " .. h.q(h.cli) .. " run " .. h.q(script))
      assert.are.equal(0, code, err)
      assert.are.equal(serial, out)
      assert.matches("mpi: only one distributed search per job %(the workers serve the first one, then exit%)", err)
      os.remove(script)
    end)

    teardown(function()
      os.execute("rm -rf " .. h.q(dir))
    end)
  end)
end
