-- scripts_cli_spec.lua: the CLI contract (docs/reliability.md) for the bundled scripts beside the
-- main job: every flag is parsed against its range in neuronas.limits, the same as the bound of
-- the engine or module the value reaches, so a value the engine would refuse is one line naming
-- the flag, the usage line and exit 2, before any data is read; and `neuronas run` refuses a
-- script path that names no file the same way as a missing script.
local H = require("helpers")

local function run(script, args)
  return H.run(H.q(H.cli) .. " run " .. script .. " " .. args)
end

-- exit 2, nothing on stdout, exactly "<script>: <msg>\nusage: ...\n" on stderr
local function assert_usage_error(script, args, msg)
  local code, out, err = run("scripts/" .. script, args)
  assert.are.equal(2, code, args .. ": " .. err)
  assert.are.equal("", out, args)
  local first, second, rest = err:match("^([^\n]*)\n([^\n]*)\n(.*)$")
  assert.are.equal(script .. ": " .. msg, first, args)
  local head = "usage: neuronas run " .. script
  assert.are.equal(head, second and second:sub(1, #head), args .. ": " .. err)
  assert.are.equal("", rest, args)
end

describe("neuronas run", function()
  it("refuses an empty script path or a folder as a missing script: one line, exit 2", function()
    for _, c in ipairs({
      { "''", "neuronas: cannot open script '' (empty path)\n" },
      { "scripts/", "neuronas: cannot open script 'scripts/' (a folder, a Lua file expected)\n" },
      { "/tmp", "neuronas: cannot open script '/tmp' (a folder, a Lua file expected)\n" },
    }) do
      local code, out, err = H.run(H.q(H.cli) .. " run " .. c[1])
      assert.are.equal(2, code, c[1] .. ": " .. err)
      assert.are.equal("", out)
      assert.are.equal(c[2], err)
    end
  end)
end)

describe("hardware-constraint.lua", function()
  it("takes no flags: an unknown flag or a stray argument is a usage error, --help says what it does", function()
    assert_usage_error("hardware-constraint.lua", "--bogus-flag 7 stray", "unknown flag '--bogus-flag'")
    assert_usage_error("hardware-constraint.lua", "stray",
      "unexpected argument 'stray' (every argument is a --flag; see --help)")
    local code, out = run("scripts/hardware-constraint.lua", "--help")
    assert.are.equal(0, code)
    assert.truthy(out:find("^usage: neuronas run hardware%-constraint%.lua"), out)
    assert.truthy(out:find("average-power budget", 1, true), out)
  end)
end)
