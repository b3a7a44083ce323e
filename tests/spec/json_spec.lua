-- json_spec.lua: the report/journal JSON codec.
local json = require("neuronas.json")
local H = require("helpers")

describe("neuronas.json", function()
  it("leaves _G alone", function()
    local before = H.globals()
    package.loaded["neuronas.json"] = nil
    require("neuronas.json")
    assert.are.same({}, H.new_globals(before))
  end)

  it("encodes deterministically with sorted keys", function()
    assert.are.equal('{"a":[1,2.5,"x\\n"],"b":true,"c":null}',
      json.encode({ b = true, a = { 1, 2.5, "x\n" }, c = json.null }))
    assert.are.equal("[]", json.encode({}))
    assert.are.equal("{}", json.encode(json.object()))
    assert.are.equal("-11.123831276456913", json.encode(-11.123831276456913))
    assert.are.equal("10000000", json.encode(10e6))
  end)

  it("round-trips nested values", function()
    local v = { name = "conv3x3 skip", score = -1.5e-3, list = { { x = 1 }, { y = "\226\130\172" } }, ok = false }
    assert.are.same(v, json.decode(json.encode(v)))
    assert.are.same(v, json.decode(json.encode(v, { indent = "  " })))
  end)

  it("decodes escapes and numbers", function()
    assert.are.same({ "\"/\\", "\u{20ac}", "\u{1f600}" }, json.decode('["\\"\\/\\\\","\\u20ac","\\ud83d\\ude00"]'))
    assert.are.equal(3, json.decode(" 3 "))
    assert.are.equal(math.type(3), math.type(json.decode("3")))
    assert.are.equal(-0.25, json.decode("-2.5e-1"))
  end)

  it("writes a string's bytes that are not UTF-8 as U+FFFD, so every reader takes the output", function()
    local R = "\u{FFFD}"
    local cases = { { "ok \u{e9}", "ok \u{e9}" }, { "a\xffb", "a" .. R .. "b" }, { "\x80\x80x", R .. R .. "x" },
      { "\u{e9}\xe9", "\u{e9}" .. R }, { "\xed\xa0\x80z", R .. R .. R .. "z" }, -- a surrogate's bytes
      { "\xf4\x90\x80\x80", R .. R .. R .. R } } -- above U+10FFFF
    for _, c in ipairs(cases) do
      local e = json.encode(c[1])
      assert.is_truthy(utf8.len(e), e)
      assert.are.equal(c[2], json.decode(e))
    end
  end)

  it("refuses what JSON cannot say, with positions", function()
    assert.has_error(function() json.encode(0 / 0) end, "json: cannot encode non-finite number " .. tostring(0 / 0))
    assert.are.equal("null", json.encode(math.huge, { nonfinite = "null" }))
    assert.has_error(function() json.decode('{"a":1,}') end, "json: object key expected at byte 8")
    assert.has_error(function() json.decode("[1 2]") end, "json: ',' or ']' expected at byte 4")
    assert.has_error(function() json.decode('"abc') end, "json: unterminated string at byte 5")
    assert.has_error(function() json.decode("1 x") end, "json: trailing characters at byte 3")
  end)
end)

describe("neuronas.json numbers", function()
  it("writes the shortest text that reads back as the same double", function()
    assert.are.equal("5.6", json.encode(5.6))
    assert.are.equal("0.1", json.encode(0.1))
    assert.are.equal("0.30000000000000004", json.encode(0.1 + 0.2))
    for _, v in ipairs({ 1 / 3, 2 / 3, 1e-300, 123456.789e10, -11.123831276456913 }) do
      assert.are.equal(v, json.decode(json.encode(v)))
    end
  end)
end)
