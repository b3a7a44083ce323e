-- main_spec.lua: the main job `neuronas run scripts/neuronas.lua` end to end on the real engine:
-- constraints met, reports, determinism, resume, no-feasible exit, bad flags, Ctrl-C.
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
    assert.are.same(limits, rep.settings.constraints)
    for name, lim in pairs(limits) do
      assert.is_true(rep.best.cost[fields[name]] <= lim, name)
    end
    for _, c in ipairs(rep.best.checks) do assert.is_true(c.ok, c.name) end
    assert.are.equal(20, rep.counts.evaluated)
    assert.are.equal(rep.counts.evaluated, rep.counts.scored + rep.counts.skipped)
    assert.is_true(#rep.best.layers >= 3)
    -- the CSV has a row per evaluated candidate, and its best row matches the report
    local rows = {}
    for line in slurp(cpath):gmatch("[^\n]+") do rows[#rows + 1] = line end
    assert.are.equal(21, #rows)
    assert.are.equal("index,stage,cellA,cellB,memory_params,area_mm2,latency_ms,energy_uj,feasible,violation,score,pareto,seconds,cached", rows[1])
    local found = false
    for i = 2, #rows do
      if rows[i]:find(rep.best.cellA .. "," .. rep.best.cellB, 1, true) and rows[i]:find(",2,", 1, true) then found = true end
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
    -- header + 19 candidates: the (A*, A*) repeat of stage 2 came from the cache, not the engine
    assert.are.equal(20, #lines)
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

  it("says when nothing is feasible, writes the report and exits 3", function()
    local j4 = tmp(".json")
    local code, out, err = run(" --cells 6 --batch 16 --quiet --memory 100 --json " .. j4 .. " --journal " .. tmp(".journal"))
    assert.are.equal(3, code, err)
    assert.truthy(out:find("No feasible architecture", 1, true))
    local rep = json.decode(slurp(j4))
    assert.is_false(rep.feasible)
    assert.are.equal(json.null, rep.best)
    assert.are.equal(5, #rep.nearest_misses)
    assert.are.equal(0, rep.counts.scored)
    os.remove(j4)
  end)

  it("rejects bad flags with a usage line and exit 2", function()
    local code, out, err = run("--bits 40")
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.truthy(err:find("^neuronas.lua: flag '%-%-bits': value in 2..32 expected, got '40'\nusage: neuronas run neuronas.lua"))
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
    -- interrupt once the journal holds a record (waiting at most 60 s: a busy machine is slow)
    local cmd = "(" .. H.q(H.cli) .. " run " .. SCRIPT .. " --quiet --batch 16 --journal " .. jr
      .. " & pid=$!; for i in $(seq 300); do [ \"$(cat " .. jr .. " 2>/dev/null | wc -l)\" -ge 2 ] && break; sleep 0.2; done;"
      .. " kill -INT $pid; wait $pid)"
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
