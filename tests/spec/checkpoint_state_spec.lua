-- checkpoint_state_spec.lua: train.lua resumes only from the training state it writes. A
-- checkpoint's tensors are checked by the engine; the state train.lua keeps beside them (the
-- epochs done and one record per epoch, JSON in the file's metadata) is checked here: each
-- state no run writes is refused in one line naming the file, never trained from.
local json = require("neuronas.json")
local H = require("helpers")

-- a copy of the safetensors file src whose metadata "user" JSON has key set to value
local function with_state(src, dst, key, value)
  local b = H.slurp(src)
  local n = string.unpack("<I8", b)
  local head = json.decode(b:sub(9, 8 + n))
  local user = json.decode(head.__metadata__.user)
  user[key] = value
  head.__metadata__.user = json.encode(user)
  local hb = json.encode(head)
  hb = hb .. string.rep(" ", (8 - #hb % 8) % 8)
  H.spit(dst, string.pack("<I8", #hb) .. hb .. b:sub(9 + n))
end

describe("train.lua --checkpoint", function()
  local common = " run scripts/train.lua --genotype 102101,101021 --limit 64 --test-limit 32 --batch 32 --quiet"
  local ck = H.tmpname(".safetensors")

  it("refuses a checkpoint whose training state no run writes, naming the file", function()
    local code, out, err = H.run(H.cli .. common .. " --epochs 1 --checkpoint " .. ck)
    assert.are.equal(0, code, err)
    -- the state as written resumes (nothing left to train: one epoch of one)
    local again = H.tmpname(".safetensors")
    with_state(ck, again, "epoch", 1)
    code, out, err = H.run(H.cli .. common .. " --epochs 1 --checkpoint " .. again)
    assert.are.equal(0, code, err)
    assert.truthy(out:find("resumed " .. again .. " after epoch 1", 1, true), out)
    local bad = {
      { "epoch", math.maxinteger }, { "epoch", -3 }, { "epoch", 1.5 }, { "history", "abc" }, { "history", 5 },
      { "history", { 5 } }, { "history", { { loss = 1 } } }, { "history", { x = { test_accuracy = 1 } } },
    }
    for _, c in ipairs(bad) do
      with_state(ck, again, c[1], c[2])
      code, out, err = H.run(H.cli .. common .. " --epochs 2 --checkpoint " .. again)
      local what = c[1] .. " = " .. json.encode(c[2])
      assert.are.equal(1, code, what .. ": " .. err)
      -- the data lines, then the one line of the refusal
      assert.are.equal("neuronas: " .. again .. ": checkpoint without its training state (epoch in 0..100000, "
        .. "history: one record per epoch)", err:match("([^\n]*)\n$"), what)
      assert.are.equal(1, H.count(err, "\n") - H.count(err, "neuronas: data: "), what)
      assert.is_nil(out:find("epoch 2/2", 1, true), what)
    end
    os.remove(again)
    os.remove(ck)
  end)
end)
