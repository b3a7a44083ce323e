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

describe("the scripts' flag ranges", function()
  -- --data names no file: a value that passed the flags would fail on the data, not on its range
  local nodata = " --data /nonexistent/neuronas-data"

  it("are the engine's: a value it would refuse is a usage error naming the flag, before data is read", function()
    local cases = {
      { "hardware.lua", "--timesteps 2000000", "flag '--timesteps': value in 1..1000000 expected, got '2000000'" },
      { "hardware.lua", "--timesteps 0", "flag '--timesteps': value in 1..1000000 expected, got '0'" },
      { "train.lua", "--genotype 102101 --lr 1e-13" .. nodata, "flag '--lr': value in 1e-12..1000000 expected, got '1e-13'" },
      { "train.lua", "--genotype 102101 --lr 2e6" .. nodata, "flag '--lr': value in 1e-12..1000000 expected, got '2e6'" },
      { "train.lua", "--genotype 102101 --lr 1 --lr-min 2e6" .. nodata,
        "flag '--lr-min': value in 0..1000000 expected, got '2e6'" },
      { "cosearch.lua", "--population 1 --generations 1" .. nodata,
        "flag '--population': value in 2..100000 expected, got '1'" },
      { "cosearch.lua", "--population 1000000" .. nodata, "flag '--population': value in 2..100000 expected, got '1000000'" },
      { "cosearch.lua", "--generations 0" .. nodata, "flag '--generations': value in 1..1000000 expected, got '0'" },
      { "cosearch.lua", "--population 100000 --generations 11" .. nodata,
        "flags '--population' x '--generations': at most 1000000 scored candidates expected, got 100000 x 11" },
      { "cosearch.lua", "--knobs xbar,nope" .. nodata,
        "--knobs: unknown knob 'nope' (expected: xbar, device_bits, adc_bits, bits, timesteps)" },
      { "compare-strategies.lua", "--seed -1" .. nodata, "flag '--seed': value in 0..2^53-1 expected, got '-1'" },
      { "compare-strategies.lua", "--threads 100" .. nodata, "flag '--threads': value in 1..64 expected, got '100'" },
      { "compare-strategies.lua", "--json /tmp" .. nodata, "--json /tmp: is a directory (a file path expected)" },
      { "variation-sweep.lua", "--draws 1025", "flag '--draws': value in 1..1024 expected, got '1025'" },
      { "variation-sweep.lua", "--sigmas 0,11", "--sigmas: numbers in 0..10 expected, got '11'" },
    }
    for _, c in ipairs(cases) do assert_usage_error(c[1], c[2], c[3]) end
  end)

  it("compare.lua checks the whole --precisions list before it reads data or searches", function()
    local cases = {
      { "--precisions 8,abc --cells 2 --num 2" .. nodata, "--precisions: integers in 2..32 expected, got 'abc'" },
      { "--precisions ''" .. nodata, "--precisions: at least one precision expected" },
      { "--precisions 8," .. nodata, "--precisions: integers in 2..32 expected, got ''" },
      { "--precisions 8,,4" .. nodata, "--precisions: integers in 2..32 expected, got ''" },
      { "--precisions 16,33" .. nodata, "--precisions: integers in 2..32 expected, got '33'" },
      { "--precisions 8.5" .. nodata, "--precisions: integers in 2..32 expected, got '8.5'" },
    }
    for _, c in ipairs(cases) do assert_usage_error("compare.lua", c[1], c[2]) end
  end)
end)

describe("variation-sweep.lua --dir", function()
  it("is refused when empty or when it cannot be a folder, naming --dir, before any search", function()
    local dir = H.tmpname("-sweep")
    assert.is_true(os.execute("mkdir " .. dir .. " && touch " .. dir .. "/file"))
    assert_usage_error("variation-sweep.lua", "--dir ''", "--dir: a folder path expected, got ''")
    assert.is_nil(io.open("/sigma-0.journal", "r"))
    assert_usage_error("variation-sweep.lua", "--dir /proc/neuronas-no-such",
      "--dir /proc/neuronas-no-such: cannot make the folder: No such file or directory")
    assert_usage_error("variation-sweep.lua", "--dir " .. dir .. "/file", "--dir " .. dir .. "/file: not a folder")
    assert_usage_error("variation-sweep.lua", "--dir " .. dir .. "/file/x",
      "--dir " .. dir .. "/file/x: cannot make the folder: Not a directory")
    os.execute("rm -rf " .. dir)
  end)

  it("is made when missing, nested and with a quote in its name, and says so in --help", function()
    local dir = H.tmpname("-sweep")
    local sub = dir .. "/it's/b"
    local code, _, err = run("scripts/variation-sweep.lua", "--dir " .. H.q(sub) .. " --cells 1 --sigmas 0")
    assert.are.equal(0, code, err)
    assert.truthy(io.open(sub .. "/sigma-0.json", "r"), err)
    os.execute("rm -rf " .. dir)
    local _, out = run("scripts/variation-sweep.lua", "--help")
    assert.truthy(out:find("made if missing (the default is in the current folder) (default variation-sweep)", 1, true), out)
  end)
end)
