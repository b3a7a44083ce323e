-- cells_spec.lua: genotypes (nn.cell) and search spaces (nn.space) from Lua (docs/model.md; docs/search.md).
local helpers = require("helpers")
local before = helpers.globals()
local nn = require("neuronas")

local NAMES = { "zero", "skip", "conv1x1", "conv3x3", "conv5x5", "conv7x7", "avgpool3x3" }
local OPS_EXPECTED = "expected zero, skip, conv1x1, conv3x3, conv5x5, conv7x7, avgpool3x3"

-- edges as "IJop" strings, for compact comparisons
local function edge_list(cell)
  local out = {}
  for _, e in ipairs(cell:edges()) do out[#out + 1] = e.from .. e.to .. e.op end
  return table.concat(out, " ")
end

describe("nn.cell", function()
  it("parses the three text forms of docs/model.md", function()
    local a = nn.cell("conv3x3 skip avgpool3x3 conv3x3 skip conv3x3")
    assert.equal("conv3x3 skip avgpool3x3 conv3x3 skip conv3x3", tostring(a))
    assert.equal("01conv3x3 02skip 03avgpool3x3 12conv3x3 13skip 23conv3x3", edge_list(a))
    -- NeuroNAS digits: skip=0 conv3x3=1 avgpool3x3=2, edges 01 02 03 12 13 23
    assert.equal(a, nn.cell("102101"))
    assert.equal(a, nn.cell.parse("102101", "neuronas"))
    assert.equal("102101", a:digits())
    assert.equal(a, nn.cell({ "conv3x3", "skip", "avgpool3x3", "conv3x3", "skip", "conv3x3" }))
    assert.equal(a, nn.cell(a))
    assert.equal(a, nn.cell("  conv3x3, skip,avgpool3x3 conv3x3\tskip conv3x3\n"))
  end)

  it("decodes SNASNet's 4x4 example by hand (row = from, col = to)", function()
    -- docs/model.md: M[0][1]=3, M[0][3]=2, M[1][2]=3, M[2][0]=3, M[2][3]=3
    local b = nn.cell.parse("0302 0030 3003 0000", "snasnet")
    assert.equal("01conv3x3 03conv1x1 12conv3x3 23conv3x3 20conv3x3", edge_list(b))
    assert.is_false(b:is_forward())
    assert.equal(5, b:conv_count())
    assert.equal(5, b:edge_count())
    assert.equal("conv3x3 zero conv1x1 conv3x3 zero conv3x3 | zero conv3x3 zero zero zero zero", tostring(b))
    assert.equal("0302 0030 3003 0000", b:snasnet())
    assert.same({ { 0, 3, 0, 2 }, { 0, 0, 3, 0 }, { 3, 0, 0, 3 }, { 0, 0, 0, 0 } }, b:matrix("snasnet"))
    assert.equal("conv3x3", b:op(2, 0))
    assert.equal("zero", b:op(0, 2))
    assert.equal(b, nn.cell("0302003030030000"))
    -- as SNASNet's logs print the matrix (a torch tensor)
    assert.equal(b, nn.cell("tensor([[0, 3, 0, 2],\n        [0, 0, 3, 0],\n        [3, 0, 0, 3],\n"
      .. "        [0, 0, 0, 0]])"))
    assert.equal(b, nn.cell(tostring(b)))
    assert.equal(b, nn.cell(b:matrix()))
    assert.same({ "conv3x3", "zero", "conv1x1", "conv3x3", "zero", "conv3x3",
      "zero", "conv3x3", "zero", "zero", "zero", "zero" }, b:ops())
    assert.equal(b, nn.cell(b:ops()))
    -- the fixture cell (SNASNet's published CIFAR-10 cell)
    local f = nn.cell("0303 0030 2002 0200")
    assert.equal("01conv3x3 03conv3x3 12conv3x3 23conv1x1 20conv1x1 31conv1x1", edge_list(f))
    assert.equal("conv3x3 zero conv3x3 conv3x3 zero conv1x1 | zero conv1x1 zero zero conv1x1 zero", tostring(f))
  end)

  it("compares by value", function()
    assert.is_true(nn.cell("000000") == nn.cell("skip skip skip skip skip skip"))
    assert.is_false(nn.cell("000000") == nn.cell("000001"))
    assert.is_false(nn.cell("000000") == "skip skip skip skip skip skip") -- a string is not a cell
    local forward = nn.cell("0300 0000 0000 0000")
    local backward = nn.cell("0000 3000 0000 0000")
    assert.is_false(forward == backward)
  end)

  it("round-trips every form for all 729 NeuroNAS cells", function()
    local space = nn.space("neuronas")
    local seen = {}
    for i, c in space:cells() do
      local s = tostring(c)
      assert.is_nil(seen[s])
      seen[s] = true
      assert.equal(c, nn.cell(s))
      assert.equal(c, nn.cell.parse(s, "names"))
      assert.equal(c, nn.cell(c:digits()))
      assert.equal(c, nn.cell.parse(c:digits(), "neuronas"))
      assert.equal(c, nn.cell(c:snasnet()))
      assert.equal(c, nn.cell.parse(c:snasnet(), "snasnet"))
      assert.equal(c, nn.cell(c:matrix()))
      local names = {}
      for w in s:gmatch("%S+") do names[#names + 1] = w end
      assert.equal(c, nn.cell(names))
      assert.same(names, c:ops())
      assert.is_true(c:is_forward())
      assert.equal(i, space:index(c))
      assert.equal(i, space:index(s))
    end
  end)

  it("round-trips sampled SNASNet cells, forward and backward", function()
    for _, kind in ipairs({ "forward", "backward" }) do
      local space = nn.space("snasnet", { cell = kind })
      local rng = nn.rng(7)
      for _ = 1, 1500 do
        local c = space:sample(rng)
        assert.equal(c, nn.cell(tostring(c)))
        assert.equal(c, nn.cell(c:snasnet()))
        assert.equal(c, nn.cell(c:matrix()))
        assert.equal(c, nn.cell(c:ops()))
        assert.equal(c, nn.cell(c:format("snasnet")))
        assert.equal(tostring(c), c:format("names"))
        assert.is_not_nil(space:index(c))
        assert.equal(kind == "forward" or c:is_forward(), c:is_forward())
        assert.equal(c, (c:sanity())) -- sampled cells are fixed points of the sanity pass
        assert.not_equal("zero", c:op(0, 3))
      end
    end
  end)

  it("round-trips cells with every op and both directions of a pair", function()
    local c = nn.cell("conv5x5 conv7x7 avgpool3x3 zero conv1x1 skip | conv7x7 zero zero skip zero conv3x3")
    assert.equal("conv5x5", c:op(0, 1))
    assert.equal("conv7x7", c:op(1, 0))
    assert.equal("conv3x3", c:op(3, 2))
    assert.equal(c, nn.cell(tostring(c)))
    assert.equal(c, nn.cell(c:matrix()))
    assert.equal(5, c:conv_count())
  end)

  it("runs SNASNet's sanity pass on hand cases", function()
    -- node 1 cannot reach the output: 0->1 goes; 0->3 stays, so the draw is accepted
    local c, ok = nn.cell("0103 0000 0000 0000"):sanity()
    assert.equal("0003 0000 0000 0000", c:snasnet())
    assert.is_true(ok)
    -- node 2 is unreachable from the input: 2->3 and 2->1 go, then 1 (also unreachable)
    c, ok = nn.cell("0003 0001 0103 0000"):sanity()
    assert.equal("0003 0000 0000 0000", c:snasnet())
    assert.is_true(ok)
    -- all nodes live but no edge 0->3: kept as is, rejected
    c, ok = nn.cell("0100 0010 1003 0000"):sanity()
    assert.equal("0100 0010 1003 0000", c:snasnet())
    assert.is_false(ok)
    -- output feeding back into node 1 that reaches nothing: 3->1 goes
    c, ok = nn.cell("0004 0000 0000 0200"):sanity()
    assert.equal("0004 0000 0000 0000", c:snasnet())
    assert.is_true(ok)
  end)

  it("rejects bad text naming the edge or character and what was expected", function()
    assert.has_error(function() nn.cell("conv3x3 skp avgpool3x3 conv3x3 skip conv3x3") end,
      "bad argument #1 to 'cell' (cell \"conv3x3 skp avgpool3x3 conv3x3 skip conv3x3\": edge 02: "
        .. "unknown op 'skp' (" .. OPS_EXPECTED .. "))")
    assert.has_error(function() nn.cell("conv3x3 skip") end,
      "bad argument #1 to 'cell' (cell \"conv3x3 skip\": 2 op names, expected 6 (edges 01 02 03 12 13 23))")
    assert.has_error(function() nn.cell("101031") end,
      "bad argument #1 to 'cell' (cell \"101031\": character 5 (edge 13) is '3', expected a NeuroNAS code 0-2 "
        .. "(skip=0, conv3x3=1, avgpool3x3=2))")
    assert.has_error(function() nn.cell.parse("0302 0030 3005 0000", "snasnet") end,
      "bad argument #1 to 'cell.parse' (cell \"0302 0030 3005 0000\": character 14 (M[2][3]) is '5', expected "
        .. "a SNASNet code 0-4 (zero=0, skip=1, conv1x1=2, conv3x3=3, avgpool3x3=4))")
    assert.has_error(function() nn.cell("0302 0330 3003 0000") end,
      "bad argument #1 to 'cell' (cell \"0302 0330 3003 0000\": character 7 (M[1][1]) is '3', expected 0 on "
        .. "the diagonal (no self-loops))")
    assert.has_error(function() nn.cell.parse("0302 030 3003 0000", "snasnet") end,
      "bad argument #1 to 'cell.parse' (cell \"0302 030 3003 0000\": row 1 has 3 characters, expected 4 SNASNet codes)")
    assert.has_error(function() nn.cell.parse("0302 0030 3003", "snasnet") end,
      "bad argument #1 to 'cell.parse' (cell \"0302 0030 3003\": 3 groups of digits, expected 4 rows of 4 "
        .. "SNASNet codes (row = from, col = to))")
    assert.has_error(function() nn.cell.parse("10102", "neuronas") end,
      "bad argument #1 to 'cell.parse' (cell \"10102\": 5 characters, expected 6 NeuroNAS codes "
        .. "(edges 01 02 03 12 13 23))")
    assert.has_error(function() nn.cell.parse("1010x1", "neuronas") end,
      "bad argument #1 to 'cell.parse' (cell \"1010x1\": character 5 (edge 13) is 'x', expected a NeuroNAS "
        .. "code 0-2 (skip=0, conv3x3=1, avgpool3x3=2))")
    assert.has_error(function() nn.cell("1234567") end,
      "bad argument #1 to 'cell' (cell \"1234567\": 7 digits, expected 6 (NeuroNAS codes) or 16 "
        .. "(SNASNet 4x4 matrix))")
    assert.has_error(function() nn.cell("") end,
      "bad argument #1 to 'cell' (cell \"\": empty, expected 6 op names (edges 01 02 03 12 13 23), "
        .. "6 NeuroNAS codes or a SNASNet 4x4 matrix)")
    assert.has_error(function() nn.cell("skip skip skip skip skip skip | skip") end,
      "bad argument #1 to 'cell' (cell \"skip skip skip skip skip skip | skip\": 1 op name after '|', "
        .. "expected 6 (backward edges 10 20 30 21 31 32))")
    assert.has_error(function() nn.cell("skip skip skip skip skip skip | skip skip skip skip skip conv9") end,
      "bad argument #1 to 'cell' (cell \"skip skip skip skip skip skip | skip skip ski...\": edge 32: "
        .. "unknown op 'conv9' (" .. OPS_EXPECTED .. "))")
    assert.has_error(function() nn.cell("a b c | d e f | g") end,
      "bad argument #1 to 'cell' (cell \"a b c | d e f | g\": 2 '|' separators, expected at most 1)")
  end)

  it("rejects bad arguments with exact messages", function()
    assert.has_error(function() nn.cell() end,
      "bad argument #1 to 'cell' (cell string, table of op names or neuronas.Cell expected, got no value)")
    assert.has_error(function() nn.cell(42) end,
      "bad argument #1 to 'cell' (neuronas.Cell or cell string expected, got number)")
    assert.has_error(function() nn.cell({ "skip" }) end,
      "bad argument #1 to 'cell' (cell table: 1 item, expected 6 op names (edges 01 02 03 12 13 23), 12 (then "
        .. "10 20 30 21 31 32) or 4 rows of 4)")
    assert.has_error(function() nn.cell({ "skip", "skip", "skip", "skip", "skip", "skip",
      "zero", "zero", "zero", "conv", "zero", "zero" }) end,
      "bad argument #1 to 'cell' (cell table: item 10 (edge 21): unknown op 'conv' (" .. OPS_EXPECTED .. "))")
    assert.has_error(function() nn.cell({ "skip", "skip", "skip", 3, "skip", "skip" }) end,
      "bad argument #1 to 'cell' (cell table: item 4 (edge 12): op name expected, got number)")
    assert.has_error(function() nn.cell({ "skip", "skip", "skip", "skip", "skip", "conv2x2" }) end,
      "bad argument #1 to 'cell' (cell table: item 6 (edge 23): unknown op 'conv2x2' (" .. OPS_EXPECTED .. "))")
    assert.has_error(function() nn.cell({ { "zero" }, {}, {}, {} }) end,
      "bad argument #1 to 'cell' (cell table: row 1: table of 4 op names expected, got another length)")
    local diag = { { "zero", "skip", "zero", "zero" }, { "zero", "skip", "zero", "zero" },
      { "zero", "zero", "zero", "zero" }, { "zero", "zero", "zero", "zero" } }
    assert.has_error(function() nn.cell(diag) end,
      "bad argument #1 to 'cell' (cell table: row 2 col 2 (edge 11): 'skip' on the diagonal, expected zero "
        .. "(no self-loops))")
    assert.has_error(function() nn.cell.parse(42) end,
      "bad argument #1 to 'cell.parse' (string expected, got number)")
    assert.has_error(function() nn.cell.parse("101021", "bogus") end,
      "bad argument #2 to 'cell.parse' (form: one of \"auto\"|\"names\"|\"neuronas\"|\"snasnet\" expected, got \"bogus\")")
    assert.has_error(function() nn.cell.parse("101021", "names") end,
      "bad argument #1 to 'cell.parse' (cell \"101021\": 1 op name, expected 6 (edges 01 02 03 12 13 23))")
    local c = nn.cell("zero skip skip skip skip conv5x5")
    assert.has_error(function() c:digits() end,
      "cell \"zero skip skip skip skip conv5x5\" has no NeuroNAS digit form: edge 01 is zero "
        .. "(NeuroNAS codes: skip=0, conv3x3=1, avgpool3x3=2)")
    assert.has_error(function() c:snasnet() end,
      "cell \"zero skip skip skip skip conv5x5\" has no SNASNet form: edge 23 is conv5x5 "
        .. "(SNASNet codes: zero=0, skip=1, conv1x1=2, conv3x3=3, avgpool3x3=4)")
    assert.has_error(function() nn.cell("0302 0030 3003 0000"):digits() end,
      "cell \"conv3x3 zero conv1x1 conv3x3 zero conv3x3 | zero conv3x3 zero zero zero zero\" has no "
        .. "NeuroNAS digit form: backward edge 20 is conv3x3 (NeuroNAS cells are forward-only)")
    assert.has_error(function() c:op(0, 4) end, "bad argument #2 to 'op' (node 0..3 expected)")
    assert.has_error(function() c:matrix("neuronas") end,
      "bad argument #2 to 'matrix' (form: \"names\" or \"snasnet\" expected)")
    assert.has_error(function() c.edges(42) end,
      "bad argument #1 to 'edges' (neuronas.Cell expected, got number)")
  end)

  it("knows every op name", function()
    assert.same(NAMES, nn.cell.ops)
    assert.is_nil(nn.cell_parse)
    assert.is_nil(nn.cell_call)
    assert.is_nil(nn.cell_ops)
    for _, n in ipairs(NAMES) do
      local c = nn.cell({ n, "zero", "zero", "zero", "zero", "zero" })
      assert.equal(n, c:op(0, 1))
    end
  end)
end)

describe("nn.space", function()
  it("enumerates the NeuroNAS space in Alg. 1's loop order", function()
    local space = nn.space("neuronas")
    assert.equal(729, space:size())
    assert.equal(729, #space)
    assert.equal("neuronas", space:name())
    assert.same({ "skip", "conv3x3", "avgpool3x3" }, space:ops())
    assert.is_false(space:is_backward())
    assert.is_false(space:has_sanity())
    local i = 0
    local codes = { "0", "1", "2" }
    for _, c01 in ipairs(codes) do
      for _, c02 in ipairs(codes) do
        for _, c03 in ipairs(codes) do
          for _, c12 in ipairs(codes) do
            for _, c13 in ipairs(codes) do
              for _, c23 in ipairs(codes) do
                i = i + 1
                assert.equal(c01 .. c02 .. c03 .. c12 .. c13 .. c23, space:cell(i):digits())
              end
            end
          end
        end
      end
    end
    assert.equal("skip skip skip skip skip conv3x3", tostring(space:cell(2)))
    assert.equal(278, space:index("101021")) -- 1 + 0b3 101021 = 1 + 243 + 27 + 6 + 1
    assert.is_nil(space:index("zero skip skip skip skip skip"))
    assert.is_false(space:contains("0302 0030 3003 0000"))
    assert.is_true(space:contains(nn.cell("222222")))
    assert.equal("neuronas.Space (neuronas: 729 forward cells; ops skip conv3x3 avgpool3x3)", tostring(space))
  end)

  it("samples the NeuroNAS space uniformly and reproducibly", function()
    local space = nn.space("neuronas")
    local a, b = space:sample(nn.rng(3), 50), space:sample(nn.rng(3), 50)
    for k = 1, 50 do assert.equal(a[k], b[k]) end
    -- per-edge op frequencies: 1/3 each; 30000 draws, 5 standard errors = 0.0136
    local rng, n = nn.rng(9), 30000
    local count = {}
    for _ = 1, n do
      local d = space:sample(rng):digits()
      for e = 1, 6 do
        local key = e .. d:sub(e, e)
        count[key] = (count[key] or 0) + 1
      end
    end
    for e = 1, 6 do
      for code = 0, 2 do
        assert.is_true(math.abs(count[e .. code] / n - 1 / 3) < 5 * math.sqrt(2 / 9 / n))
      end
    end
  end)

  it("has SNASNet's forward and backward spaces with the generator's semantics", function()
    local fwd, bwd = nn.space("snasnet", { cell = "forward" }), nn.space("snasnet")
    assert.is_false(fwd:is_backward())
    assert.is_true(bwd:is_backward()) -- default: backward cells, as in SNASNet's search (docs/search.md)
    assert.is_true(bwd:has_sanity())
    assert.same({ "zero", "skip", "conv1x1", "conv3x3", "avgpool3x3" }, bwd:ops())
    -- sizes: distinct cells the generator can return (counted independently in tests/c/test_space.c)
    assert.equal(7556, fwd:size())
    assert.equal(104708, bwd:size())
    -- every listed cell is a fixed point of the sanity pass with an edge 0->3
    for i = 1, bwd:size(), 97 do
      local c = bwd:cell(i)
      local d, ok = c:sanity()
      assert.is_true(ok)
      assert.equal(c, d)
      assert.equal(i, bwd:index(c))
    end
    -- drawable but removed by the sanity pass: not in the space
    assert.is_nil(bwd:index("0103 0000 0000 0000"))
    assert.is_not_nil(bwd:index("0003 0000 0000 0000"))
    -- backward cells appear; the edge 0->3 is never zero nor reversed
    local rng, back, n = nn.rng(1), 0, 4000
    for _ = 1, n do
      local c = bwd:sample(rng)
      if not c:is_forward() then back = back + 1 end
      assert.not_equal("zero", c:op(0, 3))
      assert.equal("zero", c:op(3, 0))
    end
    -- exact P(cell has a backward edge), enumerating the generator's draws for the 5 pairs
    -- other than 03 (9 outcomes each: none 1/5, each directed op 1/10) and 03's 4 forward ops,
    -- through the sanity pass, conditioned on acceptance
    local from, to = { 0, 0, 0, 1, 1, 2 }, { 1, 2, 3, 2, 3, 3 }
    local m = {}
    for i = 0, 3 do m[i] = { [0] = 0, 0, 0, 0 } end
    local accepted, with_back = 0, 0
    local function walk(k, w)
      if k > 6 then
        local rows = {}
        for i = 0, 3 do rows[#rows + 1] = table.concat(m[i], "", 0, 3) end
        local cell, ok = nn.cell(table.concat(rows, " ")):sanity()
        if ok then
          accepted = accepted + w
          if not cell:is_forward() then with_back = with_back + w end
        end
        return
      end
      local i, j = from[k], to[k]
      for o = 0, 8 do
        if k ~= 3 or (o >= 1 and o <= 4) then
          if o >= 1 and o <= 4 then m[i][j] = o elseif o >= 5 then m[j][i] = o - 4 end
          walk(k + 1, w * (o == 0 and 0.2 or 0.1))
          m[i][j], m[j][i] = 0, 0
        end
      end
    end
    walk(1, 1)
    local p = with_back / accepted
    assert.is_true(math.abs(back / n - p) < 5 * math.sqrt(p * (1 - p) / n))
    assert.equal("neuronas.Space (snasnet: 7556 forward cells after SNASNet's sanity pass; ops zero skip "
      .. "conv1x1 conv3x3 avgpool3x3)", tostring(fwd))
  end)

  it("builds custom spaces", function()
    local s = nn.space({ ops = { "skip", "conv1x1", "avgpool3x3" }, backward = false })
    assert.equal(729, s:size())
    assert.equal("skip skip skip skip skip conv1x1", tostring(s:cell(2)))
    local b = nn.space("custom", { ops = { "zero", "conv3x3" }, backward = true })
    assert.equal(3 ^ 6, b:size()) -- per pair: zero, forward conv3x3, backward conv3x3
    assert.equal("zero zero zero zero zero zero | zero zero zero zero zero conv3x3", tostring(b:cell(3)))
    local seen, n = {}, 0
    for _, c in b:cells() do
      local t = tostring(c)
      assert.is_nil(seen[t])
      seen[t], n = true, n + 1
    end
    assert.equal(729, n)
    local sane = nn.space({ ops = { "zero", "conv5x5" }, sanity = true })
    for _ = 1, 20 do assert.equal("conv5x5", sane:sample(nn.rng(4)):op(0, 3)) end
  end)

  it("rejects bad arguments with exact messages", function()
    assert.has_error(function() nn.space("darts") end,
      "bad argument #1 to 'space' (\"neuronas\", \"snasnet\", \"custom\" or an options table expected, got \"darts\")")
    assert.has_error(function() nn.space() end,
      "bad argument #1 to 'space' (\"neuronas\", \"snasnet\", \"custom\" or an options table expected, got no value)")
    assert.has_error(function() nn.space("neuronas", { cell = "backward" }) end,
      "bad argument #2 to 'space' (no options expected for space \"neuronas\", got table)")
    assert.has_error(function() nn.space("snasnet", { cell = "sideways" }) end,
      "bad argument #2 to 'space' (field 'cell': one of \"forward\"|\"backward\" expected, got \"sideways\")")
    assert.has_error(function() nn.space("snasnet", { cells = "forward" }) end,
      "bad argument #2 to 'space' (unknown field 'cells' (expected: cell))")
    assert.has_error(function() nn.space({ ops = { "skip" }, sead = 1 }) end,
      "bad argument #1 to 'space' (unknown field 'sead' (expected: ops, backward, sanity))")
    assert.has_error(function() nn.space({ backward = true }) end,
      "bad argument #1 to 'space' (field 'ops': list of op names expected, got nil)")
    assert.has_error(function() nn.space({ ops = {} }) end,
      "bad argument #1 to 'space' (field 'ops': 1..7 distinct op names expected, got 0 items)")
    assert.has_error(function() nn.space({ ops = { "skip", "conv4x4" } }) end,
      "bad argument #1 to 'space' (field 'ops': item 2: unknown op 'conv4x4' (" .. OPS_EXPECTED .. "))")
    assert.has_error(function() nn.space({ ops = { "skip", "conv3x3", "skip" } }) end,
      "bad argument #1 to 'space' (field 'ops': item 3 repeats 'skip')")
    assert.has_error(function() nn.space({ ops = { "skip", "conv3x3" }, sanity = true }) end,
      "bad argument #1 to 'space' (space ops: the SNASNet sanity pass needs 'zero' and at least one other op in ops)")
    assert.has_error(function() nn.space({ ops = { "skip" }, backward = "yes" }) end,
      "bad argument #1 to 'space' (field 'backward': boolean expected, got \"yes\")")
    local s = nn.space("neuronas")
    assert.has_error(function() s:cell(0) end, "bad argument #1 to 'cell' (index 1..729 expected, got 0)")
    assert.has_error(function() s:cell(730) end, "bad argument #1 to 'cell' (index 1..729 expected, got 730)")
    assert.has_error(function() s:cell(1.5) end, "bad argument #1 to 'cell' (index 1..729 expected, got 1.5)")
    assert.has_error(function() s:sample() end, "bad argument #1 to 'sample' (neuronas.Rng expected, got no value)")
    assert.has_error(function() s:sample(nn.rng(1), -1) end, "bad argument #2 to 'sample' (count in 0..1048576 expected, got -1)")
    assert.has_error(function() s:index(42) end,
      "bad argument #1 to 'index' (neuronas.Cell or cell string expected, got number)")
    assert.has_error(function() s:index("skip") end,
      "bad argument #1 to 'index' (cell \"skip\": 1 op name, expected 6 (edges 01 02 03 12 13 23))")
    s:close()
    assert.has_error(function() s:size() end, "attempt to use a closed neuronas.Space")
    assert.equal("neuronas.Space (closed)", tostring(s))
    s:close() -- idempotent
  end)
end)

describe("the cells module", function()
  it("leaves _G alone", function()
    assert.same({}, helpers.new_globals(before))
  end)
end)
