-- usage_spec.lua: user errors through the CLI (docs/reliability.md): a bad flag value, an
-- unknown flag or a stray argument is refused when the flags are parsed (before any data is
-- opened) with one line and the usage line, exit 2; a refused --resume is one line, exit 1; no
-- Lua traceback unless asked for (--debug, NEURONAS_DEBUG=1). The bundled scripts run from any
-- folder, in the README's form scripts/NAME.lua too.
local H = require("helpers")

local tmp = H.tmpname

local function run(script, args, env)
  return H.run((env or "") .. " " .. H.q(H.cli) .. " run " .. script .. " " .. args)
end

-- exit 2, nothing on stdout, exactly "<script>: <msg>\nusage: ...\n" on stderr
local function assert_usage_error(script, args, msg)
  local code, out, err = run("scripts/" .. script, args)
  assert.are.equal(2, code, args .. ": " .. err)
  assert.are.equal("", out)
  local first, second, rest = err:match("^([^\n]*)\n([^\n]*)\n(.*)$")
  assert.are.equal(script .. ": " .. msg, first, args)
  assert.truthy(second:find("^usage: neuronas run " .. script:gsub("%.", "%%.")), args)
  assert.are.equal("", rest, args)
end

describe("user errors", function()
  it("refuses each bad value of the search's flags at parse time, in one line, exit 2", function()
    local dir = tmp("-dir")
    os.execute("mkdir " .. dir)
    local cases = {
      { "--threads 65", "flag '--threads': value in 1..64 expected, got '65'" },
      { "--threads 256", "flag '--threads': value in 1..64 expected, got '256'" },
      { "--timesteps 1025", "flag '--timesteps': value in 1..1024 expected, got '1025'" },
      { "--seed -1", "flag '--seed': value in 0..2^53-1 expected, got '-1'" },
      { "--memory 0", "flag '--memory': value > 0 expected, got '0'" },
      { "--energy 0", "flag '--energy': value > 0 expected, got '0'" },
      { "--memory 1e999", "flag '--memory': finite number expected, got '1e999'" },
      { "--batch 100000000", "flag '--batch': value in 2..1024 expected, got '100000000'" },
      { "--repeat 100000", "flag '--repeat': value in 1..64 expected, got '100000'" },
      { "--cells 730", "flag '--cells': value in 1..729 expected, got '730'" },
      { "--bits 8 extra", "unexpected argument 'extra' (every argument is a --flag; see --help)" },
      { "--enrgy 20", "unknown flag '--enrgy' (did you mean --energy?)" },
      { "--json --quiet", "flag '--json' needs a value, got the flag '--quiet' (write --json=--quiet for that value)" },
      { "--debug=1", "flag '--debug' takes no value" },
      { "--strategy nsga2 --cells 3", "--cells: not with --strategy nsga2 (it breeds over the whole space; size it with "
        .. "--population and --generations)" },
      { "--help=x", "flag '--help' takes no value" },
      { "--json " .. dir, "--json " .. dir .. ": is a directory (a file path expected)" },
      { "--journal " .. dir, "--journal " .. dir .. ": is a directory (a file path expected)" },
      { "--csv " .. dir .. "/no/x.csv", "--csv: cannot write " .. dir .. "/no/x.csv: No such file or directory" },
    }
    for _, c in ipairs(cases) do assert_usage_error("neuronas.lua", c[1], c[2]) end
    os.execute("rm -rf " .. dir)
  end)

  it("refuses train.lua's bad learning rates and stray arguments the same way", function()
    assert_usage_error("train.lua", "--genotype 101021 --lr 0", "flag '--lr': value in 1e-12..1000000 expected, got '0'")
    assert_usage_error("train.lua", "--genotype 101021 --lr 0.01 --lr-min 0.1",
      "flag '--lr-min': value <= --lr (0.01) expected, got '0.1'")
    assert_usage_error("train.lua", "--genotype 101021 --lr-min 0.01",
      "flag '--lr-min': value <= --lr (0.003) expected, got '0.01'") -- adam's default lr
    assert_usage_error("train.lua", "101021", "unexpected argument '101021' (every argument is a --flag; see --help)")
  end)

  it("refuses train.lua --from a device, a pipe, a folder or a huge file without reading it, naming the file", function()
    assert_usage_error("train.lua", "--from /dev/zero", "--from /dev/zero: not a regular file")
    local dir = tmp("-from")
    assert.is_true(os.execute("mkdir " .. dir .. " && mkfifo " .. dir .. "/pipe && truncate -s 300M " .. dir .. "/big.json"))
    -- a pipe with no writer: opening it for reading would wait for ever
    assert_usage_error("train.lua", "--from " .. dir .. "/pipe", "--from " .. dir .. "/pipe: not a regular file")
    assert_usage_error("train.lua", "--from " .. dir, "--from " .. dir .. ": is a folder, a file expected")
    assert_usage_error("train.lua", "--from " .. dir .. "/big.json",
      "--from: " .. dir .. "/big.json is larger than 256 MiB (a search report expected)")
    -- an output flag on a pipe is refused at parse time too (opening it to append would wait)
    assert_usage_error("neuronas.lua", "--journal " .. dir .. "/pipe",
      "--journal " .. dir .. "/pipe: not a regular file (a file path expected)")
    os.execute("rm -rf " .. dir)
  end)

  it("refuses data the preset cannot read, or too little of it for a batch, naming the flag and the file", function()
    local dir = tmp("-data")
    assert.is_true(os.execute("mkdir " .. dir))
    local function images(name, n, c, h, w, labels)
      H.spit(dir .. "/" .. name .. "_images.npy", H.npy("|u1", string.format("(%d, %d, %d, %d)", n, c, h, w),
        ("\0"):rep(n * c * h * w)))
      local l = {}
      for i = 1, n do l[i] = string.pack("<i8", labels and labels[i] or (i - 1) % 10) end
      H.spit(dir .. "/" .. name .. "_labels.npy", H.npy("<i8", string.format("(%d,)", n), table.concat(l)))
      return "--data " .. dir .. "/" .. name .. "_images.npy --data-format npy --cells 2"
    end
    assert_usage_error("neuronas.lua", images("rgb", 16, 3, 32, 32),
      "--data " .. dir .. "/rgb_images.npy: images of 3x32x32, --preset fashion-mnist takes 1x28x28")
    assert_usage_error("neuronas.lua", images("many", 16, 1, 28, 28, { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 }),
      "--data " .. dir .. "/many_images.npy: 12 classes, --preset fashion-mnist has 10")
    assert_usage_error("neuronas.lua", images("one", 1, 1, 28, 28) .. " --batch 8",
      "--batch 8 is larger than the data (1 image)")
    os.execute("rm -rf " .. dir)
  end)

  it("reports a refused --resume in one line, exit 1; --debug adds the traceback", function()
    local j = tmp(".journal")
    local base = "--cells 2 --batch 16 --quiet --journal " .. j
    local code, _, err = run("scripts/neuronas.lua", base)
    assert.are.equal(0, code, err)
    code, _, err = run("scripts/neuronas.lua", base .. " --resume --bits 4")
    assert.are.equal(1, code)
    local msg = "neuronas: " .. j .. ": written with other settings: bits (journal 8, now 4); "
      .. "pipeline.quantizer.bits (journal 8, now 4); use the same flags or another journal\n"
    assert.are.equal(msg, err:match("\n(neuronas: " .. j:gsub("%p", "%%%0") .. ".*)$"), err)
    for _, how in ipairs({ { base .. " --resume --bits 4 --debug", "" }, { base .. " --resume --bits 4", "NEURONAS_DEBUG=1" } }) do
      code, _, err = run("scripts/neuronas.lua", how[1], how[2])
      assert.are.equal(1, code)
      assert.truthy(err:find(msg:sub(1, -2) .. "\nstack traceback:\n", 1, true), err)
    end
    os.remove(j)
  end)

  it("runs the bundled scripts from any folder, as NAME.lua or scripts/NAME.lua", function()
    local dir = tmp("-cwd")
    os.execute("mkdir " .. dir)
    local cli = H.cli:sub(1, 1) == "/" and H.cli or (os.getenv("PWD") .. "/" .. H.cli)
    for _, form in ipairs({ "neuronas.lua", "scripts/neuronas.lua", "./scripts/neuronas.lua", "scripts/train.lua" }) do
      local code, out, err = H.run("cd " .. H.q(dir) .. " && " .. H.q(cli) .. " run " .. form .. " --help")
      assert.are.equal(0, code, form .. ": " .. err)
      assert.truthy(out:find("^usage: neuronas run "), form)
    end
    -- a script that is in neither place is still one line, exit 2
    local code, _, err = H.run("cd " .. H.q(dir) .. " && " .. H.q(cli) .. " run scripts/nope.lua")
    assert.are.equal(2, code)
    assert.are.equal("neuronas: cannot open script 'scripts/nope.lua' (no such file)\n", err)
    -- a file of that name in the current folder wins over the bundled one
    os.execute("mkdir " .. dir .. "/scripts && echo 'print(\"mine\")' > " .. dir .. "/scripts/neuronas.lua")
    local out
    code, out = H.run("cd " .. H.q(dir) .. " && " .. H.q(cli) .. " run scripts/neuronas.lua")
    assert.are.equal(0, code)
    assert.are.equal("mine\n", out)
    os.execute("rm -rf " .. dir)
  end)
end)
