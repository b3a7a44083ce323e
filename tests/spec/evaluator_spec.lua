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
