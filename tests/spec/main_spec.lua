-- main_spec.lua: the main job `neuronas run scripts/neuronas.lua` end to end on the real engine
-- (issue 7): constraints met, reports, determinism, resume, no-feasible exit, bad flags, Ctrl-C.
local H = require("helpers")
local json = require("neuronas.json")

local SCRIPT = "scripts/neuronas.lua"
local QUICK = " --cells 10 --batch 16 --quiet"

local function slurp(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function run(args)
  return H.run(H.q(H.cli) .. " run " .. SCRIPT .. " " .. args)
end

local function tmp(suffix)
  local p = os.tmpname()
  os.remove(p)
  return p .. suffix
end

describe("the main job", function()
  local jpath, cpath, journal = tmp(".json"), tmp(".csv"), tmp(".journal")
  local first

  it("finds an architecture meeting every constraint and writes its reports", function()
    local code, out, err = run(QUICK .. " --json " .. jpath .. " --csv " .. cpath .. " --journal " .. journal)
    assert.are.equal(0, code, err)
    assert.truthy(out:find("Found architecture (two_stage search)", 1, true))
    assert.truthy(out:find("Costs against the constraints:", 1, true))
    local rep = json.decode(slurp(jpath))
    first = rep
    assert.are.equal("neuronas-report/1", rep.format)
    assert.is_true(rep.feasible)
    local limits = { memory = 28000, area = 5.6, latency = 30, energy = 39 }
    local fields = { memory = "memory_params", area = "area_mm2", latency = "latency_ms", energy = "energy_uj" }
    for i, name in ipairs({ "memory", "area", "latency", "energy" }) do
      local c = rep.settings.constraints[i]
      assert.are.same({ name, "limit", limits[name], "cost." .. fields[name], "default" },
        { c.name, c.kind, c.limit, c.field, c.source })
    end
    for name, lim in pairs(limits) do
      assert.is_true(rep.best.cost[fields[name]] <= lim, name)
    end
    for _, c in ipairs(rep.best.checks) do assert.is_true(c.ok, c.name) end
    -- stage 1 asks the cells the pre-filter kept, stage 2 all ten
    local pf = rep.notes.prefilter
    assert.are.equal(10, pf.cells)
    assert.are.equal(10, pf.kept + pf.excluded)
    assert.are.equal(pf.kept + 10, rep.counts.evaluated)
    assert.are.equal(rep.counts.evaluated, rep.counts.scored + rep.counts.skipped)
    assert.is_true(#rep.best.layers >= 3)
    -- the CSV has a row per evaluated candidate, and its best row matches the report
    local rows = {}
    for line in slurp(cpath):gmatch("[^\n]+") do rows[#rows + 1] = line end
    assert.are.equal(rep.counts.evaluated + 1, #rows)
    assert.are.equal("index,stage,cellA,cellB,memory_params,area_mm2,latency_ms,energy_uj,tiles,pes,feasible,stage_ok,"
      .. "violation,score,pareto,seconds,cached", rows[1])
    local found = false
    for i = 2, #rows do
      if rows[i]:find("^" .. rep.best.index .. "," .. rep.best.stage .. "," .. rep.best.cellA .. "," .. rep.best.cellB .. ",") then
        found = true
      end
    end
    assert.is_true(found)
  end)

  it("gives the same result for the same seed, on one thread or two", function()
    local j2 = tmp(".json")
    local code, _, err = run(QUICK .. " --threads 1 --json " .. j2 .. " --journal " .. tmp(".journal"))
    assert.are.equal(0, code, err)
    local rep = json.decode(slurp(j2))
    assert.are.equal(first.best.cellA, rep.best.cellA)
    assert.are.equal(first.best.cellB, rep.best.cellB)
    assert.are.equal(first.best.score, rep.best.score)
    os.remove(j2)
  end)

  it("resumes a killed run from its journal to the uninterrupted result", function()
    -- a journal cut after 7 candidates, with the 8th line torn mid-write
    local lines = {}
    for line in slurp(journal):gmatch("[^\n]+") do lines[#lines + 1] = line end
    -- header + one line per candidate the engine evaluated (repeats come from the cache)
    assert.are.equal(1 + first.counts.evaluated - first.counts.cached, #lines)
    local cut = tmp(".journal")
    local f = assert(io.open(cut, "w"))
    f:write(table.concat(lines, "\n", 1, 8), "\n", lines[9]:sub(1, 25))
    f:close()
    local j3, c3 = tmp(".json"), tmp(".csv")
    local code, _, err = run(QUICK .. " --resume --journal " .. cut .. " --json " .. j3 .. " --csv " .. c3)
    assert.are.equal(0, code, err)
    local rep = json.decode(slurp(j3))
    assert.are.equal(first.best.cellA, rep.best.cellA)
    assert.are.equal(first.best.cellB, rep.best.cellB)
    assert.are.equal(first.best.score, rep.best.score)
    -- the 7 journaled candidates came from the journal (the (A*, A*) repeat is cached anyway)
    assert.is_true(rep.counts.cached >= 7)
    -- resuming with other settings is refused with a one-line error
    code, _, err = run(QUICK .. " --resume --journal " .. cut .. " --bits 4")
    assert.are.equal(1, code)
    assert.truthy(err:find("written with other settings", 1, true))
    os.remove(cut); os.remove(j3); os.remove(c3)
  end)

  it("says when nothing is feasible and why, writes the report and exits 3", function()
    local j4 = tmp(".json")
    local code, out, err = run(" --cells 6 --batch 16 --quiet --memory 100 --stage1 paper --json " .. j4 .. " --journal " .. tmp(".journal"))
    assert.are.equal(3, code, err)
    assert.truthy(out:find("No feasible architecture: none of the 6 evaluated candidates met every constraint.", 1, true))
    assert.truthy(out:find("stage 1: 6 evaluated, none feasible; ruled out by memory 6 (every one)", 1, true))
    assert.truthy(out:find("stage 2: not run", 1, true))
    -- the cheapest candidate for the memory limit: the all-skip cell, stem + downconv = 144 + 4608 weights
    assert.truthy(out:find("\n    memory     4752 params (limit 100)  skip skip skip skip skip skip | skip skip skip skip skip skip", 1, true), out)
    local rep = json.decode(slurp(j4))
    assert.is_false(rep.feasible)
    assert.are.equal(json.null, rep.best)
    assert.are.equal(5, #rep.nearest_misses)
    assert.are.equal(0, rep.counts.scored)
    -- with the default stage 1 the pre-filter proves it without scoring anything
    code, out, err = run(" --cells 6 --batch 16 --quiet --memory 100 --json " .. j4 .. " --journal " .. tmp(".journal"))
    assert.are.equal(3, code, err)
    assert.truthy(out:find("stage 1 pre-filter: 6 of 6 cells excluded before scoring, no cell B completes them (memory alone: 6)", 1, true), out)
    assert.truthy(out:find("so no pair (A, B) of the 6 x 6 meets memory, area, latency, energy", 1, true))
    rep = json.decode(slurp(j4))
    assert.are.equal(0, rep.counts.evaluated)
    assert.are.equal(6, rep.notes.prefilter.excluded)
    assert.are.equal(4752, rep.notes.prefilter.cheapest.memory.value)
    os.remove(j4)
  end)

  it("rejects bad flags with a usage line and exit 2", function()
    local code, out, err = run("--bits 40")
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.truthy(err:find("^neuronas.lua: flag '%-%-bits': value <= 32 expected, got '40'\nusage: neuronas run neuronas.lua"))
    code, _, err = run("--frobnicate")
    assert.are.equal(2, code)
    assert.truthy(err:find("^neuronas.lua: unknown flag '%-%-frobnicate'"))
    code, _, err = run("--preset cifar10")
    assert.are.equal(2, code)
    assert.truthy(err:find("needs --data PATH", 1, true))
    code, out = run("--help")
    assert.are.equal(0, code)
    assert.truthy(out:find("--memory", 1, true))
  end)

  it("stops on Ctrl-C with exit 130 and leaves a valid journal", function()
    local jr = tmp(".journal")
    local cmd = "(" .. H.q(H.cli) .. " run " .. SCRIPT .. " --quiet --batch 16 --journal " .. jr
      .. " & pid=$!; sleep 3; kill -INT $pid; wait $pid)"
    local code, _, err = H.run(cmd)
    assert.are.equal(130, code, err)
    assert.truthy(err:find("interrupted", 1, true))
    local n = 0
    for line in slurp(jr):gmatch("[^\n]+") do
      assert.is_table(json.decode(line))
      n = n + 1
    end
    assert.is_true(n >= 1)
    os.remove(jr)
  end)

  it("cleans up", function()
    os.remove(jpath); os.remove(cpath); os.remove(journal)
  end)
end)

describe("the other search scripts", function()
  it("snasnet.lua samples --num cells unconstrained at FxP32", function()
    local j = tmp(".json")
    local code, out, err = H.run(H.q(H.cli) .. " run scripts/snasnet.lua --num 12 --batch 16 --quiet --json " .. j)
    assert.are.equal(0, code, err)
    assert.truthy(out:find("Found architecture (random search)", 1, true))
    local rep = json.decode(slurp(j))
    assert.are.equal(32, rep.settings.bits)
    assert.are.same({}, rep.settings.constraints)
    assert.are.equal(12, rep.counts.evaluated)
    assert.are.equal(12, rep.counts.scored)
    assert.are.equal(rep.best.cellA, rep.best.cellB)
    os.remove(j)
  end)

  it("compare.lua tabulates NeuroNAS precisions against the SNASNet baseline", function()
    local j = tmp(".json")
    local code, out, err = H.run(H.q(H.cli) .. " run scripts/compare.lua --cells 8 --num 10 --batch 16 --quiet --precisions 8,16 --json " .. j)
    assert.are.equal(0, code, err)
    local doc = json.decode(slurp(j))
    assert.are.equal(3, #doc.rows)
    assert.are.same({ "NeuroNAS FxP8", "NeuroNAS FxP16", "SNASNet FxP32" }, { doc.rows[1].search, doc.rows[2].search, doc.rows[3].search })
    local n8, base = doc.rows[1], doc.rows[3]
    assert.is_true(n8.meets_constraints)
    assert.is_true(n8.cost.memory_params <= 28000 and n8.cost.energy_uj <= 39)
    -- the printed memory saving is 1 - NeuroNAS / SNASNet
    local saving = 100 * (1 - n8.cost.memory_params / base.cost.memory_params)
    local line = out:match("NeuroNAS FxP8[^\n]*")
    assert.truthy(line:find(string.format("%.1f%%", saving), 1, true), line)
    os.remove(j)
  end)
end)
