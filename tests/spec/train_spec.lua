-- train_spec.lua: nn.trainer, nn.train.* and scripts/train.lua from Lua (docs/training.md).
local H = require("helpers")
local before = H.globals()
local nn = require("neuronas")

local A = "conv3x3 skip avgpool3x3 conv3x3 skip conv3x3"
-- a SNASNet backward cell: forward 01 12 23 conv/skip, backward 20 conv3x3
local B = "conv3x3 skip skip zero zero conv3x3|zero conv3x3 zero zero zero zero"

-- A tiny network whose LIFs fire from the start (threshold 0.1), so a few steps show learning.
local function tiny()
  return nn.net{ preset = "fashion-mnist", cellA = A, cellB = B, seed = 3, channels = 4, fc_width = 16,
                 input = { 1, 12, 12 }, timesteps = 3, threshold = 0.1, classes = 4, cluster = 2 }
end

local function batch(n)
  local x = nn.tensor(n, 1, 12, 12)
  x:normal(nn.rng(1), 0, 1)
  local y = nn.tensor(n)
  for i = 1, n do y[i] = (i - 1) % 4 end
  return x, y
end

describe("nn.trainer", function()
  it("decreases a tiny net's loss over a few steps on a fixed batch", function()
    local tr = nn.trainer{ net = tiny(), optimizer = "adam", lr = 0.01, dropout = 0 }
    local x, y = batch(16)
    local first = tr:step(x, y)
    assert.near(math.log(4), first, 1e-3) -- the classifier starts silent: uniform output
    local last
    for _ = 1, 10 do last = tr:step(x, y) end
    assert.is_true(last < 0.95 * first)
    assert.equal(11, tr.steps)
  end)

  it("gives the same losses and outputs on 1 and 2 threads", function()
    local x, y = batch(12)
    local runs = {}
    for k, threads in ipairs({ 1, 2 }) do
      local tr = nn.trainer{ net = tiny(), optimizer = "adam", lr = 0.01, bits = 8, threads = threads }
      local losses = {}
      for s = 1, 4 do losses[s] = tr:step(x, y) end
      runs[k] = { losses = losses, out = tr:forward(x):totable() }
    end
    assert.same(runs[1].losses, runs[2].losses)
    assert.same(runs[1].out, runs[2].out)
    assert.is_true(runs[1].losses[4] ~= runs[1].losses[1]) -- the steps changed something
  end)

  it("reports step figures, evaluates, exports and describes itself", function()
    local net = tiny()
    local tr = nn.trainer{ net = net, bits = 8, epochs = 2, steps_per_epoch = 5 }
    assert.equal("neuronas.Trainer (sgd, lr 0.1, QAT FxP8, step 0)", tostring(tr))
    assert.equal(10, tr.total_steps)
    assert.equal(8, tr.bits)
    assert.equal("sgd", tr.optimizer)
    local x, y = batch(8)
    local loss, correct, info = tr:step(x, y)
    assert.is_true(loss > 0 and correct >= 0 and correct <= 8)
    assert.equal(8, info.samples)
    assert.near(0.1, info.lr, 1e-12)
    assert.is_true(info.forward_s > 0 and info.backward_s > 0)
    -- cosine: half-way through 10 steps the lr is (0.1 + 0.001) / 2
    for _ = 1, 4 do tr:step(x, y) end
    assert.near(0.0505, tr.lr, 1e-12)
    local el, ec = tr:evaluate(x, y)
    assert.is_true(el > 0 and ec >= 0)
    local out = tr:forward(x)
    assert.same({ 8, 4 }, out:shape())
    assert.equal(net, tr:export(net))
    assert.equal(8, net:weight_bits())
    -- the exported (FxP8) net computes what the trainer computes (same kernels, same choice of
    -- dense or event-driven convs)
    local a = net:forward(x, { train = false })
    for i = 1, 8 * 4 do assert.equal(out[i], a[i]) end
    tr:export(net, false)
    assert.equal(32, net:weight_bits())
    tr.total_steps = 100
    assert.equal(100, tr.total_steps)
    tr:close()
    tr:close()
    assert.equal("neuronas.Trainer (closed)", tostring(tr))
    assert.has_error(function() tr:step(x, y) end, "attempt to use a closed neuronas.Trainer")
  end)

  it("saves and resumes checkpoints with the optimizer state", function()
    local x, y = batch(8)
    local path = os.tmpname()
    local tr = nn.trainer{ net = tiny(), optimizer = "adam", lr = 0.01 }
    tr:step(x, y)
    tr:save(path, "state 1")
    local l2 = tr:step(x, y)
    tr:step(x, y)
    assert.equal("state 1", tr:load(path))
    assert.equal(1, tr.steps)
    assert.equal(l2, tr:step(x, y))
    local sgd = nn.trainer{ net = tiny() }
    assert.has_error(function() sgd:load(path) end,
      path .. ": optimizer state is for adam, the trainer uses sgd")
    -- nor at another weight precision: resuming QAT at FxP4 from FxP8 would mix two trainings
    local tr4 = nn.trainer{ net = tiny(), optimizer = "adam", lr = 0.01, bits = 4 }
    assert.has_error(function() tr4:load(path) end,
      path .. ": checkpoint of a trainer at bits " .. tr.bits .. ", this one trains at bits 4")
    assert.equal(0, tr4.steps)
    os.remove(path)
  end)

  it("diagnoses misuse with exact messages", function()
    local net = tiny()
    assert.has_error(function() nn.trainer() end,
      "bad argument #1 to 'trainer' (table expected, got no value)")
    assert.has_error(function() nn.trainer{} end,
      "bad argument #1 to 'trainer' (field 'net': neuronas.Net expected, got nil)")
    assert.has_error(function() nn.trainer{ net = net, sead = 1 } end,
      "bad argument #1 to 'trainer' (unknown field 'sead' (expected: net, optimizer, lr, lr_min, "
      .. "momentum, weight_decay, beta1, beta2, eps, bits, dropout, seed, threads, total_steps, epochs, steps_per_epoch))")
    assert.has_error(function() nn.trainer{ net = net, threads = -1 } end,
      "bad argument #1 to 'trainer' (field 'threads': integer in 0..64 expected, got -1)")
    assert.has_error(function() nn.trainer{ net = net, bits = 40 } end,
      "bad argument #1 to 'trainer' (field 'bits': integer in 2..32 expected, got 40)")
    assert.has_error(function() nn.trainer{ net = net, optimizer = "rmsprop" } end,
      "bad argument #1 to 'trainer' (field 'optimizer': one of \"sgd\"|\"adam\" expected, got \"rmsprop\")")
    assert.has_error(function() nn.trainer{ net = net, epochs = 3 } end,
      "bad argument #1 to 'trainer' (fields 'epochs' and 'steps_per_epoch' go together)")
    local tr = nn.trainer{ net = net }
    local x, y = batch(4)
    assert.has_error(function() tr:step(nn.tensor(4, 3, 12, 12), y) end,
      "x: expected a tensor S x 1 x 12 x 12, got 4x3x12x12")
    assert.has_error(function() tr:step(x, nn.tensor(3)) end, "y: expected 4 labels, got 3")
    local bad = nn.tensor(4)
    bad[2] = 7
    assert.has_error(function() tr:step(x, bad) end, "label 2 is 7, expected an integer in 0..3")
    assert.has_error(function() tr:step(x) end,
      "bad argument #2 to 'step' (neuronas.Tensor expected, got no value)")
    assert.has_error(function() tr.steps = 3 end,
      "neuronas.Trainer: field 'steps' is read-only or unknown (settable: total_steps)")
    assert.has_error(function() tr:load("/nonexistent/ckpt") end)
  end)

  it("fails the step that diverges, then refuses to hand out NaN until a checkpoint is loaded", function()
    local x, y = batch(8)
    local path = os.tmpname()
    local tr = nn.trainer{ net = tiny(), lr = 1e6, weight_decay = 1 } -- each within its range
    tr:save(path)
    local ok, err, k = true, nil, 0
    while ok and k < 50 do
      k = k + 1
      ok, err = pcall(tr.step, tr, x, y)
    end
    assert.is_false(ok)
    assert.truthy(err:find("^training diverged at step " .. tr.steps), err)
    local function refused(f, ...)
      local ok2, e = pcall(f, tr, ...)
      assert.is_false(ok2)
      assert.truthy(e:find("^trainer: tensor '[%w._]+' element %d+ is not finite %(training diverged at or "
        .. "before step " .. tr.steps .. "%); load a checkpoint or make a new trainer$"), e)
    end
    local net = tiny()
    local before = net:forward(x):sum()
    refused(tr.step, x, y)
    refused(tr.evaluate, x, y)
    refused(tr.forward, x)
    refused(tr.export, net)
    refused(tr.save, path .. ".2")
    assert.is_nil(io.open(path .. ".2"))
    assert.equal(before, net:forward(x):sum()) -- the net is unchanged
    tr:load(path)
    assert.equal(0, tr.steps)
    local loss = tr:evaluate(x, y)
    assert.is_true(loss == loss and loss < math.huge)
    os.remove(path)
  end)

  it("defaults lr_min to 0.001, or to lr when lr is smaller", function()
    local net = tiny()
    local x, y = batch(4)
    for _, c in ipairs { { nil, 0.001 }, { 0.01, 0.001 }, { 0.001, 0.001 }, { 1e-4, 1e-4 }, { 1e-7, 1e-7 } } do
      local tr = nn.trainer{ net = net, lr = c[1], total_steps = 1, dropout = 0 }
      tr:step(x, y) -- the schedule's end: the next step's lr is lr_min
      assert.equal(c[2], tr.lr)
    end
    assert.equal(0, nn.trainer{ net = net, lr = 1e-4, lr_min = 0 }.total_steps)
    assert.has_error(function() nn.trainer{ net = net, lr = 1e-4, lr_min = 0.001 } end,
      "bad argument #1 to 'trainer' (field 'lr_min': at most lr (0.0001) expected, got 0.001)")
  end)

  it("bounds the cosine length epochs x steps_per_epoch without overflowing", function()
    local net = tiny()
    for _, c in ipairs { { 1000000000, 1 << 62 }, { 3, 1 << 62 }, { 2, 4600000000000000001 } } do
      assert.has_error(function() nn.trainer{ net = net, epochs = c[1], steps_per_epoch = c[2] } end,
        ("bad argument #1 to 'trainer' (fields 'epochs' and 'steps_per_epoch': a product (the cosine "
         .. "length) of at most 9200000000000000000 expected, got %d x %d)"):format(c[1], c[2]))
    end
    assert.equal(9200000000000000000,
      nn.trainer{ net = net, epochs = 2, steps_per_epoch = 4600000000000000000 }.total_steps)
    assert.equal(1000000000 * 9200000000,
      nn.trainer{ net = net, epochs = 1000000000, steps_per_epoch = 9200000000 }.total_steps)
  end)
end)

describe("nn.train", function()
  it("runs an epoch and an evaluation over a dataset", function()
    local ds = nn.data.default{ split = "test", quiet = true, embedded = true }
    local net = nn.net{ preset = "fashion-mnist", cellA = A, cellB = A, channels = 2, fc_width = 8,
                        timesteps = 2 }
    local tr = nn.trainer{ net = net, optimizer = "adam", lr = 1e-3 }
    local _, small = ds:split{ validation = 0.03, seed = 1 } -- 30 images of the subset
    local calls = 0
    local r = nn.train.epoch(tr, small, { batch = 8, on_batch = function() calls = calls + 1 end })
    assert.equal(#small // 8, r.steps)
    assert.equal(calls, r.steps)
    assert.equal(8 * r.steps, r.images)
    assert.is_true(r.accuracy >= 0 and r.accuracy <= 1 and r.images_per_s > 0)
    local e = nn.train.evaluate(tr, small, { batch = 16 })
    assert.equal(#small, e.images)
    assert.has_error(function() nn.train.epoch(tr, small, { bach = 8 }) end,
      "bad argument #3 to 'epoch' (unknown field 'bach' (expected: augment, batch, epoch, on_batch, seed))")
    assert.has_error(function() nn.train.evaluate(net, small) end,
      "bad argument #1 to 'evaluate' (neuronas.Trainer expected, got userdata)")
  end)
end)

describe("scripts/train.lua", function()
  it("rejects a missing architecture with a usage line", function()
    local code, _, err = H.run(H.cli .. " run scripts/train.lua --epochs 1")
    assert.equal(2, code)
    assert.equal("train.lua: an architecture is needed: --genotype A,B or --from REPORT", err:match("^[^\n]*"))
    local bad = H.tmpfile('{"format": "x"}', ".json")
    code, _, err = H.run(H.cli .. " run scripts/train.lua --from " .. bad)
    os.remove(bad)
    assert.equal(2, code)
    assert.equal("train.lua: --from: " .. bad .. " has no best.cellA / best.cellB (a search report expected)",
      err:match("^[^\n]*"))
  end)

  it("trains, checkpoints, resumes and writes the curve", function()
    local ck, js = os.tmpname(), os.tmpname()
    os.remove(ck)
    local cells = "skip conv3x3 skip skip avgpool3x3 skip"
    local rep = H.tmpfile('{"best": {"cellA": "' .. cells .. '", "cellB": "' .. cells .. '"}}', ".json")
    local common = " --data datasets/fashion-mnist --limit 64 --test-limit 32 --batch 32 --bits 8 --quiet "
      .. "--checkpoint " .. ck .. " --json " .. js
    -- epoch 1 from a search report, epoch 2 resumed from the checkpoint with the same cells
    local code, out = H.run(H.cli .. " run scripts/train.lua --from " .. rep .. common .. " --epochs 1")
    assert.equal(0, code)
    assert.truthy(out:find("epoch 1/1  loss %d"))
    assert.truthy(out:find(", 1 epoch, 64 train / 32 test images", 1, true), out) -- singular

    code, out = H.run(H.cli .. " run scripts/train.lua --genotype '" .. cells .. "'" .. common .. " --epochs 2 --ptq 4")
    os.remove(rep)
    assert.equal(0, code)
    assert.truthy(out:find("resumed " .. ck:gsub("%p", "%%%0") .. " after epoch 1"))
    assert.truthy(out:find("epoch 2/2  loss"))
    assert.truthy(out:find(", 2 epochs, ", 1, true))
    assert.truthy(out:find("PTQ FxP4: test"))
    local f = assert(io.open(js, "rb"))
    local doc = require("neuronas.json").decode(f:read("a"))
    f:close()
    assert.equal(2, #doc.history)
    assert.equal(8, doc.bits)
    assert.equal(4, doc.ptq.bits)
    os.remove(ck)
    os.remove(js)
  end)
end)

describe("module hygiene", function()
  it("leaves _G alone", function() assert.same(before, H.globals()) end)
end)
