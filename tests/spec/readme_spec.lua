-- readme_spec.lua: the README's "Write your own strategy" example (a strategy file and a
-- constraints file) runs through the main job as printed, and its reports say what it did.
local H = require("helpers")
local json = require("neuronas.json")

describe("README", function()
  it("has a custom strategy and constraints of at most 15 lines each that run through the main job", function()
    local f = assert(io.open("README.md"))
    local text = f:read("a")
    f:close()
    local section = text:match("### Write your own strategy(.-)\n### ")
    assert.is_string(section)
    local blocks = {}
    for code in section:gmatch("```lua\n(.-)```") do blocks[#blocks + 1] = code end
    assert.are.equal(2, #blocks)
    for _, code in ipairs(blocks) do
      local n = select(2, code:gsub("\n", ""))
      assert.is_true(n <= 15, "example has " .. n .. " lines")
    end
    local strat, cons = H.tmpfile(blocks[1], ".lua"), H.tmpfile(blocks[2], ".lua")
    local j, c, jr = os.tmpname(), os.tmpname(), os.tmpname()
    local status, out, err = H.run(H.q(H.cli) .. " run scripts/neuronas.lua --quiet --batch 16 --strategy " .. H.q(strat)
      .. " --constraints " .. H.q(cons) .. " --json " .. j .. " --csv " .. c .. " --journal " .. jr)
    assert.is_true(status == 0 or status == 3, err)
    assert.truthy(out:find("Candidates: 20 evaluated", 1, true), out)
    local rf = assert(io.open(j))
    local rep = json.decode(rf:read("a"))
    rf:close()
    assert.are.equal("random-pairs", rep.strategy)
    assert.are.equal(status == 0, rep.feasible)
    local names = {}
    for _, x in ipairs(rep.settings.constraints) do names[#names + 1] = x.name .. "=" .. x.kind end
    assert.are.same({ "memory=limit", "area=limit", "latency=limit", "energy=limit", "no_pool=predicate",
      "power=function" }, names)
    local cf = assert(io.open(c))
    local head = cf:read("l")
    cf:close()
    assert.truthy(head:find(",no_pool,power$"))
    for _, p in ipairs({ strat, cons, j, c, jr }) do os.remove(p) end
  end)
end)
