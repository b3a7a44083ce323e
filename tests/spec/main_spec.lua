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

  it("reports constraints whose name, unit or doc hold a newline (one summary line each)", function()
    local f, jr, js = tmp(".lua"), tmp(".journal"), tmp(".json")
    H.spit(f, 'return { ["peak\\npower"] = { fn = function(c) return c.energy_uj / c.latency_ms end, max = 100,'
      .. ' unit = "m\\nW", doc = "average\\npower" } }\n')
    local code, out, err = H.run(H.q(H.cli) .. " run " .. SCRIPT .. " --quiet --cells 4 --constraints " .. f
      .. " --journal " .. jr .. " --json " .. js)
    assert.is_true(code == 0 or code == 3, err)
    assert.truthy(out:find("    peak\npower <= 100 m\nW (Lua function) -- average\npower  [file " .. f, 1, true), out)
    assert.are.equal("peak\npower", json.decode(slurp(js)).settings.constraints[5].name)
    os.remove(f); os.remove(jr); os.remove(js)
  end)

  it("prints the per-layer table's total as the network's cost, also where layers share tiles (spikesim)", function()
    local f, jr, js = tmp(".lua"), tmp(".journal"), tmp(".json")
    H.spit(f, 'return { mode = "spikesim" }\n')
    local code, out, err = H.run(H.q(H.cli) .. " run " .. SCRIPT .. " --quiet --cells 1 --hardware " .. f
      .. " --journal " .. jr .. " --json " .. js)
    assert.are.equal(0, code, err)
    local best = json.decode(slurp(js)).best
    local sum = 0
    for _, l in ipairs(best.layers) do sum = sum + l.tiles end
    assert.is_true(sum > best.cost.tiles, "the layers' tiles overlap: " .. sum .. " " .. best.cost.tiles)
    local total = out:match("\ntotal: [^\n]*, (%d+) tiles,")
    assert.are.equal(best.cost.tiles, tonumber(total), out)
    os.remove(f); os.remove(jr); os.remove(js)
  end)

  it("prints a failing value and its limit with the digits that tell them apart", function()
    -- the all-skip pair needs 4752 weights: a limit of 4751.6 fails it by 0.4 (0.0084 %)
    local jr = tmp(".journal")
    local code, out, err = H.run(H.q(H.cli) .. " run " .. SCRIPT .. " --quiet --cells 1 --stage1 paper --memory 4751.6"
      .. " --journal " .. jr)
    assert.are.equal(3, code, err)
    assert.truthy(out:find("    memory     4752 params (limit 4751.6)", 1, true), out)
    assert.truthy(out:find("(memory +0.0084%)", 1, true), out)
    assert.is_nil(out:find("(limit 4752)", 1, true), out)
    os.remove(jr)
  end)

  it("says why when every feasible candidate scored -inf (data whose images are all the same)", function()
    local dir = tmp("-same")
    assert.is_true(os.execute("mkdir " .. dir))
    local n = 64
    H.spit(dir .. "/train-images-idx3-ubyte", string.pack(">I4I4I4I4", 0x803, n, 28, 28) .. ("\128"):rep(n * 784))
    local labels = {}
    for i = 1, n do labels[i] = string.char((i - 1) % 10) end
    H.spit(dir .. "/train-labels-idx1-ubyte", string.pack(">I4I4", 0x801, n) .. table.concat(labels))
    local jr = tmp(".journal")
    local code, out, err = H.run(H.q(H.cli) .. " run " .. SCRIPT .. " --quiet --cells 3 --batch 16 --data " .. dir
      .. " --journal " .. jr)
    assert.are.equal(0, code, err)
    assert.truthy(out:find("fitness score -inf\n    every feasible candidate scored -inf: its spike codes did not tell", 1,
      true), out)
    os.execute("rm -rf " .. dir); os.remove(jr)
  end)

  it("resumes a --variation run with its robust scores, as the uninterrupted run reported them", function()
    local jr, j1, j2 = tmp(".journal"), tmp(".json"), tmp(".json")
    local base = " --quiet --cells 2 --variation 0.1 --variation-draws 2 --journal " .. jr
    local code, out1, err = H.run(H.q(H.cli) .. " run " .. SCRIPT .. base .. " --json " .. j1)
    assert.are.equal(0, code, err)
    local out2
    code, out2, err = H.run(H.q(H.cli) .. " run " .. SCRIPT .. base .. " --resume --json " .. j2)
    assert.are.equal(0, code, err)
    local robust = out1:match("robust score[^\n]*")
    assert.truthy(robust, out1)
    assert.are.equal(robust, out2:match("robust score[^\n]*"))
    local a, b = json.decode(slurp(j1)), json.decode(slurp(j2))
    assert.are.same(a.best.variation, b.best.variation)
    for i, r in ipairs(a.results) do assert.are.same(r.variation, b.results[i].variation) end
    assert.are.equal(b.counts.evaluated, b.counts.cached)
    os.remove(jr); os.remove(j1); os.remove(j2)
  end)

  it("stops on Ctrl-C with exit 130 also while a --constraints file runs (not a fault of the file)", function()
    local f = tmp(".lua")
    H.spit(f, "io.stderr:write('started\\n'); io.stderr:flush(); while true do end\n")
    local log = tmp(".err")
    local cmd = "(" .. H.q(H.cli) .. " run " .. SCRIPT .. " --quiet --cells 2 --constraints " .. f .. " 2>" .. log
      .. " & pid=$!; for i in $(seq 300); do grep -q started " .. log .. " && break; sleep 0.2; done;"
      .. " kill -INT $pid; wait $pid)"
    local code = H.run(cmd)
    local err = slurp(log)
    assert.are.equal(130, code, err)
    assert.truthy(err:find("interrupted", 1, true), err)
    assert.is_nil(err:find("usage:", 1, true), err)
    os.remove(f); os.remove(log)
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
    assert.is_nil(out:find("Constraints", 1, true)) -- none given: no header
    local rep = json.decode(slurp(j))
    assert.are.equal(32, rep.settings.bits)
    assert.are.same({}, rep.settings.constraints)
    assert.are.equal(12, rep.counts.evaluated)
    assert.are.equal(12, rep.counts.scored)
    assert.are.equal(rep.best.cellA, rep.best.cellB)
    os.remove(j)
  end)

  it("--channels sets cell A's width of every candidate, recorded in the report", function()
    local j = tmp(".json")
    local code, _, err = H.run(H.q(H.cli) .. " run scripts/snasnet.lua --num 4 --batch 16 --channels 4 --quiet --json " .. j)
    assert.are.equal(0, code, err)
    local rep = json.decode(slurp(j))
    assert.are.equal(4, rep.settings.channels)
    -- the best candidate's memory is that of its net at 4 channels, not at the preset's 16
    local nn = require("neuronas")
    local function weights(c)
      local net = nn.net({ cellA = rep.best.cellA, cellB = rep.best.cellB, channels = c })
      local n = net:params()
      net:close()
      return n
    end
    assert.are.equal(weights(4), rep.best.cost.memory_params)
    assert.are_not.equal(weights(16), weights(4))
    code, _, err = H.run(H.q(H.cli) .. " run scripts/snasnet.lua --channels 0")
    assert.are.equal(2, code)
    assert.truthy(err:find("--channels", 1, true), err)
    os.remove(j)
  end)

  it("hardware.lua reads digit genotypes and lists its flags", function()
    local code, out, err = H.run(H.q(H.cli) .. " run scripts/hardware.lua --preset fashion-mnist --cellA 102101 --cellB 000000")
    assert.are.equal(0, code, err)
    -- NeuroNAS digits: skip=0 conv3x3=1 avgpool3x3=2
    local nn = require("neuronas")
    local want = nn.ela({}):evaluate(nn.quantizer({ bits = 8 }):apply(nn.net({ cellA = nn.cell("102101"), cellB = nn.cell("000000") })))
    assert.truthy(out:find(string.format("%d weights", want.memory_params), 1, true), out)
    local n = 0
    for _ in out:gmatch("cellA%.e%d%d%.conv") do n = n + 1 end
    assert.are.equal(3, n) -- three 1 digits: three conv3x3 edges in cell A
    code, out = H.run(H.q(H.cli) .. " run scripts/hardware.lua --help")
    assert.are.equal(0, code)
    for _, f in ipairs({ "--bits", "--mode", "--device", "--timesteps", "--scope", "--preset", "--cellA", "--cellB" }) do
      assert.truthy(out:find(f, 1, true), f)
    end
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
    assert.truthy(out:find("search-time speed-up", 1, true))
    local line = out:match("NeuroNAS FxP8[^\n]*")
    assert.truthy(line:find(string.format("%.1f%%", saving), 1, true), line)
    os.remove(j)
  end)
end)

-- Reads a CSV written by the reports (no quoted commas in these columns) into header + rows.
local function read_csv(path)
  local rows, head = {}, nil
  for line in slurp(path):gmatch("[^\n]+") do
    local t = {}
    for f in (line .. ","):gmatch("([^,]*),") do t[#t + 1] = f end
    if not head then
      head = t
    else
      local r = {}
      for i, h in ipairs(head) do r[h] = t[i] end
      rows[#rows + 1] = r
    end
  end
  return head, rows
end

describe("the main job's answers are true", function()
  it("finds the feasible architecture under --cells 40 --energy 20, and every row's verdict matches its costs", function()
    local j, c = tmp(".json"), tmp(".csv")
    local code, out, err = run("--cells 40 --energy 20 --batch 16 --quiet --csv " .. c .. " --json " .. j
      .. " --journal " .. tmp(".journal"))
    assert.are.equal(0, code, err)
    assert.truthy(out:find("Found architecture", 1, true))
    local lim = { memory_params = 28000, area_mm2 = 5.6, latency_ms = 30, energy_uj = 20 }
    local function meets(cost)
      for f, l in pairs(lim) do
        if tonumber(cost[f]) > l then return false end
      end
      return true
    end
    local _, rows = read_csv(c)
    local nfeasible = 0
    for _, r in ipairs(rows) do
      assert.are.equal(meets(r) and "1" or "0", r.feasible, r.index)
      if r.feasible == "1" then nfeasible = nfeasible + 1 end
    end
    assert.is_true(nfeasible >= 1)
    local rep = json.decode(slurp(j))
    assert.is_true(rep.feasible)
    assert.are.equal(nfeasible, rep.counts.feasible)
    assert.is_true(meets(rep.best.cost))
    for _, list in ipairs({ rep.pareto, rep.nearest_misses }) do
      for _, r in ipairs(list) do assert.are.equal(meets(r.cost), r.feasible) end
    end
    for _, r in ipairs(rep.pareto) do assert.is_true(r.feasible) end
    -- the best is the best-scoring feasible row of the CSV
    local best = -math.huge
    for _, r in ipairs(rows) do
      if r.feasible == "1" then best = math.max(best, tonumber(r.score)) end
    end
    assert.are.equal(string.format("%.10g", best), string.format("%.10g", rep.best.score))
    -- stage 1 evaluated only the cells some cell B completes within 20 uJ
    assert.are.equal(40, rep.notes.prefilter.cells)
    assert.is_true(rep.notes.prefilter.excluded > 0)
    assert.is_true(rep.notes.prefilter.by_limit.energy > 0)
    os.remove(j); os.remove(c)
  end)

  it("takes --constraints, --hardware and --strategy files and reports what they did", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. H.q(dir)))
    local function write(name, text)
      local f = assert(io.open(dir .. "/" .. name, "w"))
      f:write(text)
      f:close()
      return dir .. "/" .. name
    end
    local cons = write("budget.lua", [[
return {
  energy = 100, latency = 40,
  power = { fn = function(cost) return cost.energy_uj / cost.latency_ms end, max = 2, unit = "mW",
            doc = "average power" },
  no_pool = function(cost, layers)
    for _, l in ipairs(layers) do if l.k ~= 3 then return false, l.name end end
    return true
  end,
}
]])
    local hw = write("chip.lua", "return { device_bits = 2, xbar = 128 }\n")
    local strat = write("pairs.lua", [[
local nn = require("neuronas")
local ctx = ...
local rng = nn.rng(ctx.seed)
local st = { name = "pairs", left = 12 }
function st:ask()
  if self.left == 0 then return nil end
  self.left = self.left - 1
  return { { cellA = ctx.space:sample(rng), cellB = ctx.space:sample(rng) } }
end
function st:tell(results) end
function st:total() return 12 end
return st
]])
    local j, c = dir .. "/r.json", dir .. "/r.csv"
    local code, out, err = run("--constraints " .. cons .. " --hardware " .. hw .. " --strategy " .. strat
      .. " --energy 50 --batch 16 --quiet --json " .. j .. " --csv " .. c .. " --journal " .. dir .. "/j")
    assert.is_true(code == 0 or code == 3, err)
    assert.truthy(out:find("energy <= 50 uJ (cost.energy_uj)  [--energy]", 1, true), out)
    assert.truthy(out:find("latency <= 40 ms (cost.latency_ms)  [file " .. cons .. "]", 1, true), out)
    assert.truthy(out:find("power <= 2 mW (Lua function) -- average power  [file " .. cons .. "]", 1, true), out)
    assert.truthy(out:find("no_pool: Lua predicate  [file " .. cons .. "]", 1, true), out)
    assert.truthy(out:find("area <= 5.6 mm^2 (cost.area_mm2)  [default]", 1, true), out)
    local rep = json.decode(slurp(j))
    assert.are.equal("pairs", rep.strategy)
    assert.are.equal(12, rep.counts.evaluated)
    local byname = {}
    for _, x in ipairs(rep.settings.constraints) do byname[x.name] = x end
    assert.are.same({ name = "power", kind = "function", limit = 2, unit = "mW", doc = "average power",
      field = json.null, source = "file " .. cons }, byname.power)
    assert.are.equal("predicate", byname.no_pool.kind)
    assert.are.equal(50, byname.energy.limit)
    -- every CSV row: costs of the 2-bit, 128x128 chip, checked here with nn.ela itself
    local nn = require("neuronas")
    local chip = nn.ela({ device_bits = 2, xbar = 128 })
    local head, rows = read_csv(c)
    local anyf = false
    assert.are.same({ "no_pool", "power" }, { head[#head - 1], head[#head] }) -- the set's order: sorted
    for _, r in ipairs(rows) do
      local net = nn.quantizer({ bits = 8 }):apply(nn.net({ cellA = r.cellA, cellB = r.cellB, seed = 1 }))
      local cost = chip:evaluate(net)
      assert.are.equal(cost.tiles, tonumber(r.tiles))
      assert.are.equal(cost.pes, tonumber(r.pes))
      assert.is_true(math.abs(cost.energy_uj - tonumber(r.energy_uj)) <= 1e-9 * cost.energy_uj)
      local power = cost.energy_uj / cost.latency_ms
      assert.is_true(math.abs(power - tonumber(r.power)) <= 1e-9 * power)
      local nopool = true
      for _, l in ipairs(cost.layers) do if l.k ~= 3 then nopool = false end end
      assert.are.equal(nopool and "1" or "0", r.no_pool)
      local ok = cost.memory_params <= 28000 and cost.area_mm2 <= 5.6 and cost.latency_ms <= 40
        and cost.energy_uj <= 50 and power <= 2 and nopool
      assert.are.equal(ok and "1" or "0", r.feasible, r.index)
      if ok then anyf = true end
      net:close()
    end
    assert.are.equal(anyf, rep.feasible)
    assert.are.equal(anyf and 0 or 3, code)
    if rep.feasible then
      local names = {}
      for _, ch in ipairs(rep.best.checks) do names[ch.name] = ch end
      assert.are.equal("mW", names.power.unit)
      assert.are.equal("average power", names.power.doc)
    end
    os.execute("rm -rf " .. H.q(dir))
  end)

  it("refuses unusable --constraints, --hardware and --strategy files with one line naming the flag", function()
    local num = H.tmpfile("return 5\n", ".lua")
    local hw = H.tmpfile("return { xbarr = 3 }\n", ".lua")
    local cases = {
      { "--constraints /nonexistent/c.lua", "^neuronas.lua: %-%-constraints /nonexistent/c.lua: cannot open" },
      { "--constraints " .. num, "^neuronas.lua: %-%-constraints [^:]+: a table of constraints expected, got number\n" },
      { "--hardware " .. hw, "^neuronas.lua: %-%-hardware [^:]+: bad argument #1 to 'ela' %(unknown field 'xbarr'" },
      { "--hardware " .. num, "^neuronas.lua: %-%-hardware [^:]+: nn.ela options or an nn.ela object expected, got number\n" },
      { "--strategy " .. num, "^neuronas.lua: %-%-strategy [^:]+: a strategy object with ask%(%) and tell%(results%) expected" },
      { "--strategy genetic", "^neuronas.lua: %-%-strategy: one of two_stage|random|evolution|nsga2 or a FILE.lua expected, got 'genetic'" },
    }
    for _, c in ipairs(cases) do
      local code, out, err = run(c[1] .. " --quiet --journal " .. tmp(".journal"))
      assert.are.equal(2, code, c[1] .. ": " .. err)
      assert.are.equal("", out)
      assert.truthy(err:find(c[2]), err)
    end
    os.remove(num); os.remove(hw)
  end)

  it("refuses a strategy file whose ask() returns a bare candidate, naming the shape", function()
    local p = H.tmpfile([[
local st = { n = 0 }
function st:ask() self.n = self.n + 1; if self.n > 1 then return nil end
  return { cellA = "102101", cellB = "102101" } end
function st:tell() end
return st
]], ".lua")
    local code, _, err = run("--strategy " .. p .. " --cells 3 --quiet --journal " .. tmp(".journal"))
    assert.are.equal(1, code)
    assert.truthy(err:find("ask() returned a bare candidate (expected a list of candidates", 1, true), err)
    os.remove(p)
  end)
end)
