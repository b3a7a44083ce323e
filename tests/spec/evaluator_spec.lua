-- evaluator_spec.lua: the evaluator a strategy is given. Once closed (its journal closed with
-- it), it refuses to evaluate: a search that went on would no longer journal what it found, and
-- a later --resume would silently redo that work.
local nn = require("neuronas")
local search = require("neuronas.search")
local H = require("helpers")

describe("the evaluator", function()
  it("refuses to evaluate once closed, also when a strategy closes it mid-search", function()
    local space, rng = nn.space("neuronas"), nn.rng(3)
    local st = { left = 3 }
    function st:prepare(ev) self.ev = ev end
    function st:ask()
      if self.left == 0 then return nil end
      self.left = self.left - 1
      return { { cellA = space:sample(rng), cellB = space:sample(rng) } }
    end
    function st:tell() self.ev:close() end
    local j = H.tmpname(".journal")
    local pipeline = { build = function(c) return c end, cost = function(n) return H.fake_cost(n.cellA, n.cellB) end,
      score = function() return -1 end, release = function() end }
    local ok, err = pcall(search.run, st, { pipeline = pipeline, journal = j, constraints = { memory = 1e9 } })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("evaluate: the evaluator is closed (and its journal with it)", 1, true), err)
    -- what it evaluated before is journaled: the header and the one record
    assert.are.equal(2, H.count(H.slurp(j), "\n"))
    os.remove(j)
  end)
end)

describe("evaluator keys", function()
  local evaluator = require("neuronas.search.evaluator")

  it("parse back into the cells and knobs they were made of, also where a cell's genotype holds ' | '", function()
    local snas = nn.space("snasnet", { cell = "backward" })
    local neu = nn.space("neuronas")
    local rng = nn.rng(5)
    for _ = 1, 50 do
      for _, sp in ipairs({ snas, neu }) do
        local cand = { cellA = sp:sample(rng), cellB = sp:sample(rng) }
        if rng:integer(1, 2) == 1 then cand.bits = 6 end
        local key = search.key(cand)
        local a, b, kt = evaluator.parse_key(key)
        assert.are.equal(tostring(cand.cellA), a, key)
        assert.are.equal(tostring(cand.cellB), b, key)
        assert.are.equal(cand.bits and "bits=6" or nil, kt, key)
      end
    end
    -- a SNASNet backward cell's genotype itself holds " | "
    assert.truthy(tostring(snas:sample(rng)):find(" | ", 1, true))
  end)

  it("are one pair's: cells whose genotypes hold ' | ' do not run together into another pair's key", function()
    -- the backward part of a SNASNet cell is left out of its genotype when it has no edge
    local X, Y, Z = "zero zero conv1x1 skip zero avgpool3x3", "conv1x1 conv1x1 zero zero skip zero",
      "zero conv1x1 skip zero zero conv1x1"
    local one = { cellA = nn.cell(X .. " | " .. Y), cellB = nn.cell(Z) }
    local two = { cellA = nn.cell(X), cellB = nn.cell(Y .. " | " .. Z) }
    assert.are_not.equal(tostring(one.cellA), tostring(two.cellA))
    assert.are_not.equal(search.key(one), search.key(two))
    for _, c in ipairs({ one, two }) do
      local a, b = evaluator.parse_key(search.key(c))
      assert.are.same({ tostring(c.cellA), tostring(c.cellB) }, { a, b })
    end
    -- cells without " | " keep the plain form (journals of the neuronas space read as before)
    assert.are.equal(X .. " | " .. Z, search.key({ cellA = nn.cell(X), cellB = nn.cell(Z) }))
  end)
end)

describe("a resumed journal", function()
  it("rebuilds a knobbed candidate's per-layer costs on its own chip, precision and T", function()
    local j = H.tmpname(".journal")
    local function maxpes(_, layers)
      local m = 0
      for _, l in ipairs(layers) do m = math.max(m, l.pes) end
      return m
    end
    local function setup(resume)
      return { batch = 8, journal = j, resume = resume, threads = 1,
        constraints = { memory = 1e9, maxpes = { fn = maxpes, max = 4 } } }
    end
    local cands = { { cellA = "conv3x3 skip skip skip conv3x3 skip", cellB = "conv3x3 skip skip skip skip skip",
      hw = { xbar = 32 }, bits = 8 }, { cellA = "conv3x3 skip skip skip conv3x3 skip",
      cellB = "conv3x3 skip skip skip skip skip", bits = 4, timesteps = 3 } }
    local ev = search.evaluator(setup(false))
    local fresh = ev:evaluate(cands)
    ev:close()
    local ev2 = search.evaluator(setup(true))
    local again = ev2:evaluate(cands)
    for i, r in ipairs(again) do
      assert.is_true(r.cached)
      assert.are.equal(fresh[i].feasible, r.feasible)
      local a, b = {}, {}
      for k, l in ipairs(fresh[i].cost.layers) do a[k] = { l.pes, l.energy_uj } end
      for k, l in ipairs(ev2:layers_of(r)) do b[k] = { l.pes, l.energy_uj } end
      assert.are.same(a, b)
    end
    ev2:close()
    os.remove(j)
  end)
end)
