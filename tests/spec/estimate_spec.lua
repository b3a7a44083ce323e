-- estimate_spec.lua: scripts/bench-fitness-paper.lua, the two-stage search estimate at paper size
-- that scripts/bench-fitness --paper prints, checked against hand-computed sums.
local H = require("helpers")

-- runs the estimator with the README-cell times t1, t2 and, when given, per-count times
-- s1[n], s2[n] (n = 0..6) in a space file; returns exit code, stdout, stderr
local function estimate(t1, t2, s1, s2, skip)
  local space
  if s1 then
    local lines = {}
    for n = 0, 6 do
      if n ~= skip then
        lines[#lines + 1] = string.format("paper.s1_n%d=%.3f", n, s1[n + 1])
        lines[#lines + 1] = string.format("paper.s2_n%d=%.3f", n, s2[n + 1])
      end
    end
    space = H.tmpfile("noise before\n" .. table.concat(lines, "\n") .. "\n", ".txt")
  end
  local code, out, err = H.run(H.q(H.cli) .. " run scripts/bench-fitness-paper.lua " .. t1 .. " " .. t2 .. " 8"
    .. (space and " " .. H.q(space) or ""))
  if space then os.remove(space) end
  return code, out, err, space
end

local function search_h(out)
  local lo, hi = out:match("paper%.search_h=([%d.]+)%-([%d.]+)")
  return tonumber(lo), tonumber(hi)
end

-- the stage-2 candidate counts the script prints for each A*, the largest and smallest
local function stage2_counts(out)
  local lo, hi
  for m in out:gmatch("stage 2 with %d conv3x3 edge%(s%) in A%*: (%d+) of 729") do
    m = tonumber(m)
    lo, hi = math.min(lo or m, m), math.max(hi or m, m)
  end
  return lo, hi
end

describe("the paper-size search estimate", function()
  it("scores every one of the 729 cells in stage 1 under the paper's memory budget", function()
    local code, out = estimate(5, 2)
    assert.are.equal(0, code)
    assert.truthy(out:find("stage 1: 729 of 729 candidates fit the memory budget", 1, true))
    -- without per-count times: 729 x t1 plus the stage-2 range at t2
    local lo, hi = search_h(out)
    local c2lo, c2hi = stage2_counts(out)
    assert.is_near((729 * 5 + c2lo * 2) / 3600, lo, 0.006)
    assert.is_near((729 * 5 + c2hi * 2) / 3600, hi, 0.006)
  end)

  it("weights each conv3x3 count by its number of cells (C(6, n) 2^(6 - n))", function()
    -- s1[n] = 2n seconds: the sum over the 729 cells is 2 x their conv3x3 edges, and a random
    -- edge of the space is conv3x3 with probability 1/3: 2 x 729 x 6 / 3 = 2916 s
    local code, out = estimate(5, 2, { 0, 2, 4, 6, 8, 10, 12 }, { 0, 0, 0, 0, 0, 0, 0 })
    assert.are.equal(0, code)
    local lo, hi = search_h(out)
    assert.are.equal(0.81, lo)
    assert.are.equal(0.81, hi)
    assert.truthy(out:find("729 candidates, 4.00 s mean", 1, true))
    -- one cell has six conv3x3 edges: an hour for it alone
    code, out = estimate(5, 2, { 0, 0, 0, 0, 0, 0, 3600 }, { 0, 0, 0, 0, 0, 0, 0 })
    assert.are.equal(0, code)
    assert.are.equal(1.0, (search_h(out)))
  end)

  it("times stage 2 by the candidates that meet the whole budget", function()
    -- one second per stage-2 candidate: the range is the printed counts' range
    local code, out = estimate(5, 2, { 0, 0, 0, 0, 0, 0, 0 }, { 1, 1, 1, 1, 1, 1, 1 })
    assert.are.equal(0, code)
    local lo, hi = search_h(out)
    local c2lo, c2hi = stage2_counts(out)
    assert.truthy(c2hi > c2lo)
    assert.is_near(c2lo / 3600, lo, 0.006)
    assert.is_near(c2hi / 3600, hi, 0.006)
  end)

  it("agrees with the README-cell bound when every count takes the README cell's time", function()
    local s1, s2 = {}, {}
    for n = 1, 7 do s1[n], s2[n] = 5.25, 1.5 end
    local code, out = estimate(5.25, 1.5, s1, s2)
    assert.are.equal(0, code)
    local b1, b2 = out:match("upper bound, every candidate as the README cell: .-= ([%d.]+)%-([%d.]+) h wall")
    local e1, e2 = out:match("each candidate timed by its cells' conv3x3 count: .-= ([%d.]+)%-([%d.]+) h wall")
    assert.truthy(b1 and e1)
    assert.are.equal(b1, e1)
    assert.are.equal(b2, e2)
  end)

  it("names the space file and the missing count, exit 2", function()
    local code, out, err, space = estimate(5, 2, { 1, 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 1, 1, 1 }, 3)
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.truthy(err:find(space .. " has no paper.s1_n3 / paper.s2_n3 line", 1, true), err)
    code, _, err = H.run(H.q(H.cli) .. " run scripts/bench-fitness-paper.lua 5 2 8 /nonexistent/space.txt")
    assert.are.equal(2, code)
    assert.truthy(err:find("/nonexistent/space.txt", 1, true), err)
  end)
end)
