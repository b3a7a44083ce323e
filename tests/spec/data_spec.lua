-- data_spec.lua: datasets from Lua (docs/data.md, docs/training.md augmentation). Reads the real
-- Fashion-MNIST (Debian package dataset-fashion-mnist, installed on the build machine) and small
-- CIFAR-10/100 (.bin, .tar.gz) and .npy files written here in the official formats; checks pixels
-- and labels byte-for-byte, normalisation by hand, determinism, augmentation and error messages.
local H = require("helpers")
local nn = require("neuronas")

local FMNIST = "/usr/share/datasets/fashion-mnist"

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. H.q(d)))
  return d
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function be32(n) return string.pack(">I4", n) end

-- IDX files: n images of h x w with pixel (i, y, x) = (7i + 3y + x) % 256, labels i % 10
local function idx_images(n, h, w)
  local t = { "\0\0\8\3", be32(n), be32(h), be32(w) }
  for i = 0, n - 1 do
    local row = {}
    for y = 0, h - 1 do
      for x = 0, w - 1 do row[#row + 1] = string.char((7 * i + 3 * y + x) % 256) end
    end
    t[#t + 1] = table.concat(row)
  end
  return table.concat(t)
end

local function idx_labels(n)
  local t = { "\0\0\8\1", be32(n) }
  for i = 0, n - 1 do t[#t + 1] = string.char(i % 10) end
  return table.concat(t)
end

-- CIFAR records: label byte(s) + 3072 pixels, pixel k of global record g = (g*31 + k) % 251
local function pixels(g)
  local t = {}
  for k = 0, 3071 do t[k + 1] = string.char((g * 31 + k) % 251) end
  return table.concat(t)
end

local function cifar10_records(first, n)
  local t = {}
  for g = first, first + n - 1 do t[#t + 1] = string.char(g % 10) .. pixels(g) end
  return table.concat(t)
end

local function cifar100_records(first, n)
  local t = {}
  for g = first, first + n - 1 do
    t[#t + 1] = string.char(g % 20, (g * 7) % 100) .. pixels(g)
  end
  return table.concat(t)
end

local npy = H.npy -- .npy with a v1.0 header padded to 64 bytes

describe("nn.data", function()
  it("loads without touching _G", function()
    local before = H.globals()
    package.loaded["neuronas"] = nil
    package.loaded["neuronas.data"] = nil
    local m = require("neuronas")
    assert.are.same({}, H.new_globals(before))
    assert.is_function(m.data.open)
    assert.is_function(m.data.default)
    assert.is_function(m.data.probe)
  end)

  describe("Fashion-MNIST (Debian package, IDX gz)", function()
    it("is installed here (dataset-fashion-mnist)", function()
      assert.is_true(nn.data.probe(FMNIST), "install dataset-fashion-mnist: " .. FMNIST)
    end)

    it("reads every test image and label byte-for-byte", function()
      local ds = nn.data.open({ format = "idx", path = FMNIST, split = "test" })
      assert.are.equal(10000, ds.size)
      assert.are.equal(10000, #ds)
      assert.are.same({ 1, 28, 28 }, ds.shape)
      assert.are.equal(10, ds.classes)
      assert.are.equal("fashion-mnist", ds.name)
      assert.are.equal(FMNIST, ds.path)
      assert.are.equal("user", ds.source)
      -- independent decompression with gzip(1)
      local d = tmpdir()
      assert(os.execute(("gzip -dc %s > %s/i && gzip -dc %s > %s/l"):format(
        H.q(FMNIST .. "/t10k-images-idx3-ubyte.gz"), H.q(d),
        H.q(FMNIST .. "/t10k-labels-idx1-ubyte.gz"), H.q(d))))
      local img, lab = read(d .. "/i"), read(d .. "/l")
      os.execute("rm -rf " .. H.q(d))
      local bad = 0
      for i = 1, 10000 do
        local px, l = ds:record(i)
        if px ~= img:sub(17 + (i - 1) * 784, 16 + i * 784) or l ~= lab:byte(8 + i) then bad = bad + 1 end
      end
      assert.are.equal(0, bad)
      assert.are.equal("neuronas.Dataset (fashion-mnist, 10000 x 1x28x28, 10 classes)", tostring(ds))
      local head = nn.data.open({ format = "idx", path = FMNIST, split = "test", limit = 100, name = "fm" })
      assert.are.equal(100, head.size)
      assert.are.equal("fm", head.name)
      assert.are.equal(ds:record(100), head:record(100))
    end)

    it("computes mean/std over the training set (0.2860, 0.3530 published)", function()
      local ds = nn.data.open({ format = "idx", path = FMNIST })
      assert.are.equal(60000, ds.size)
      assert.is_true(math.abs(ds.mean[1] - 0.2860) < 1e-4)
      assert.is_true(math.abs(ds.std[1] - 0.3530) < 1e-4)
    end)

    it("default{} prefers the Debian set and says so; embedded=true gives the subset", function()
      local ds = nn.data.default({ quiet = true })
      assert.are.equal("debian", ds.source)
      assert.are.equal(FMNIST, ds.path)
      assert.are.equal(60000, ds.size)
      local e = nn.data.default({ embedded = true, quiet = true })
      assert.are.equal("embedded", e.source)
      assert.are.equal(2000, e.size)
      assert.is_truthy(e.path:find("/datasets/fashion%-mnist$"))
      local et = nn.data.default({ embedded = true, split = "test", quiet = true })
      assert.are.equal(1000, et.size)
      -- the subset is the first records of the full set, byte-for-byte
      local t = nn.data.default({ split = "test", quiet = true })
      for _, i in ipairs({ 1, 2, 500, 1000 }) do
        local a, la = et:record(i)
        local b, lb = t:record(i)
        assert.are.equal(b, a)
        assert.are.equal(lb, la)
      end
      for _, i in ipairs({ 1, 1999, 2000 }) do assert.are.equal(ds:record(i), e:record(i)) end
      -- every split and the subset are normalised with the full training set's statistics,
      -- which are what open computes over the Debian training files
      local full = nn.data.open({ format = "idx", path = FMNIST })
      for _, v in ipairs({ ds, e, et, t }) do
        assert.are.same(full.mean, v.mean)
        assert.are.same(full.std, v.std)
      end
    end)

    it("default{} does not depend on the current directory and logs which set it used", function()
      local code, out, err = H.run(("cd / && %s -e %s"):format(H.q(H.cli), H.q(
        'local nn = require "neuronas"; local d = nn.data.default{ embedded = true }; print(d.source, d.size)')))
      assert.are.equal(0, code, err)
      assert.are.equal("embedded\t2000\n", out)
      assert.is_truthy(err:find("Fashion%-MNIST train, 2000 images from .*/datasets/fashion%-mnist %(embedded subset%)"))
    end)
  end)

  describe("batches", function()
    local d, ds
    setup(function()
      d = tmpdir()
      write(d .. "/s-images-idx3-ubyte", idx_images(20, 4, 3))
      write(d .. "/s-labels-idx1-ubyte", idx_labels(20))
      ds = nn.data.open({ format = "idx", path = d .. "/s-images-idx3-ubyte", mean = 0.5, std = 0.25 })
    end)
    teardown(function() os.execute("rm -rf " .. H.q(d)) end)

    it("decodes n x C x H x W normalised by hand computation, labels as floats", function()
      assert.are.same({ 0.5 }, ds.mean)
      assert.are.same({ 0.25 }, ds.std)
      local x, y = ds:batch(3, { offset = 5 })
      assert.are.same({ 3, 1, 4, 3 }, x:shape())
      assert.are.same({ 3 }, y:shape())
      for k = 1, 3 do
        local i = 4 + k -- record index (0-based)
        assert.are.equal(i % 10, y[k])
        for yy = 0, 3 do
          for xx = 0, 2 do
            local v = (7 * i + 3 * yy + xx) % 256
            local want = (v / 255 - 0.5) / 0.25
            assert.is_true(math.abs(x:get(k, 1, yy + 1, xx + 1) - want) < 1e-6)
          end
        end
      end
    end)

    it("is deterministic under a seed, and the seed's order is the first iter batch", function()
      local x1, y1 = ds:batch(8, { seed = 3 })
      local x2, y2 = ds:batch(8, { seed = 3 })
      local x3, y3 = ds:batch(8, { seed = 4 })
      assert.are.same(x1:totable(), x2:totable())
      assert.are.same(y1:totable(), y2:totable())
      assert.are_not.same(y1:totable(), y3:totable())
      local xi, yi = ds:iter({ batch = 8, seed = 3 })()
      assert.are.same(x1:totable(), xi:totable())
      assert.are.same(y1:totable(), yi:totable())
      -- offset continues the same shuffled order
      local _, yo = ds:batch(4, { seed = 3, offset = 4 })
      assert.are.same({ y1[5], y1[6], y1[7], y1[8] }, yo:totable())
    end)

    it("iterates an epoch: each record once, a short last batch, new order per epoch", function()
      local seen, sizes = {}, {}
      for x, y in ds:iter({ batch = 6, seed = 1 }) do
        sizes[#sizes + 1] = y:numel()
        assert.are.equal(y:numel(), x:shape()[1])
        for k = 1, y:numel() do
          -- identify each record by its first pixel: 7i % 256 -> i (i < 20)
          local v = math.floor((x:get(k, 1, 1, 1) * 0.25 + 0.5) * 255 + 0.5)
          local i = (v * 183) % 256 -- 183 = 7^-1 mod 256
          seen[i] = (seen[i] or 0) + 1
          assert.are.equal(i % 10, y[k])
        end
      end
      assert.are.same({ 6, 6, 6, 2 }, sizes)
      for i = 0, 19 do assert.are.equal(1, seen[i]) end
      local n = 0
      for _ in ds:iter({ batch = 6, drop_last = true }) do n = n + 1 end
      assert.are.equal(3, n)
      local _, e0 = ds:iter({ batch = 20, seed = 1, epoch = 0 })()
      local _, e1 = ds:iter({ batch = 20, seed = 1, epoch = 1 })()
      assert.are_not.same(e0:totable(), e1:totable())
      local _, plain = ds:iter({ batch = 20, shuffle = false })()
      for k = 1, 20 do assert.are.equal((k - 1) % 10, plain[k]) end
    end)

    it("augments deterministically: crop keeps a shifted window, flip mirrors", function()
      local big = nn.data.open({ format = "idx", path = FMNIST, split = "test" })
      local x0 = big:batch(16)
      local xa = big:iter({ batch = 16, shuffle = false, seed = 9, augment = true })()
      local xb = big:iter({ batch = 16, shuffle = false, seed = 9, augment = true })()
      assert.are.same(xa:totable(), xb:totable())
      local zero = (0 - big.mean[1]) / big.std[1]
      local function at(t, k, i, j)
        if i < 1 or i > 28 or j < 1 or j > 28 then return zero end
        return t:get(k, 1, i, j)
      end
      local moved, mirrored = 0, 0
      local xc = big:iter({ batch = 16, shuffle = false, seed = 9, augment = { flip = false } })()
      local xf = big:iter({ batch = 16, shuffle = false, seed = 9, augment = { crop = false } })()
      for k = 1, 16 do
        -- crop only (pad 2 for 28x28): some shift in -2..2 reproduces the image exactly
        local found = false
        for sy = -2, 2 do
          for sx = -2, 2 do
            local ok = true
            for i = 1, 28 do
              for j = 1, 28 do
                if ok and math.abs(xc:get(k, 1, i, j) - at(x0, k, i + sy, j + sx)) > 1e-6 then ok = false end
              end
            end
            if ok and not found then
              found = true
              if sy ~= 0 or sx ~= 0 then moved = moved + 1 end
            end
          end
        end
        assert.is_true(found)
        -- flip only: the original or its mirror
        local same, mirror = true, true
        for i = 1, 28 do
          for j = 1, 28 do
            if xf:get(k, 1, i, j) ~= x0:get(k, 1, i, j) then same = false end
            if xf:get(k, 1, i, j) ~= x0:get(k, 1, i, 29 - j) then mirror = false end
          end
        end
        assert.is_true(same or mirror)
        if mirror and not same then mirrored = mirrored + 1 end
      end
      assert.is_true(moved >= 8)
      assert.is_true(mirrored >= 2 and mirrored <= 14)
    end)

    it("splits into disjoint train/validation views, deterministically", function()
      local tr, va = ds:split({ validation = 0.25, seed = 2 })
      assert.are.equal(15, tr.size)
      assert.are.equal(5, va.size)
      local all = {}
      for _, v in ipairs({ tr, va }) do
        for i = 1, v.size do
          local px = v:record(i)
          assert.is_nil(all[px])
          all[px] = true
        end
      end
      local tr2, va2 = ds:split({ validation = 0.25, seed = 2 })
      assert.are.same(va:labels(), va2:labels())
      assert.are.same(tr:labels(), tr2:labels())
      assert.are.equal(20, #ds:labels())
    end)

    it("rejects bad arguments with exact messages", function()
      assert.has_error(function() ds:batch(0) end, "bad argument #1 to 'batch' (batch size >= 1 expected)")
      assert.has_error(function() ds:batch(5, { offset = 18 }) end,
        "bad argument #1 to 'batch' (offset + n <= 20 expected, got 23)")
      assert.has_error(function() ds:batch(5, { sead = 1 }) end,
        "bad argument #2 to 'batch' (unknown field 'sead' (expected: seed, offset, augment))")
      assert.has_error(function() ds:iter({ batch = 0 }) end,
        "bad argument #1 to 'iter' (field 'batch': integer >= 1 expected, got 0)")
      assert.has_error(function() ds:iter({ augment = { pad = -1 } }) end,
        "bad argument #1 to 'iter' (field 'pad': integer in 0..1024 expected, got -1)")
      assert.has_error(function() ds:split({ validation = 1 }) end,
        "bad argument #1 to 'split' (validation=1: fraction in (0, 1) expected)")
      assert.has_error(function() ds:record(21) end, "bad argument #1 to 'record' (record index out of range)")
      assert.has_error(function() nn.data.default({ split = "dev" }) end,
        "bad argument #1 to 'default' (field 'split': one of \"train\"|\"test\" expected, got \"dev\")")
      assert.has_error(function() nn.data.default({ quite = true }) end,
        "bad argument #1 to 'default' (unknown field 'quite' (expected: split, quiet, embedded, limit))")
      local c = nn.data.open({ format = "idx", path = d .. "/s-images-idx3-ubyte" })
      c:close()
      c:close()
      assert.has_error(function() return c.size end, "attempt to use a closed neuronas.Dataset")
      assert.has_error(function() c:batch(1) end, "attempt to use a closed neuronas.Dataset")
      assert.are.equal("neuronas.Dataset (closed)", tostring(c))
    end)
  end)

  describe("CIFAR", function()
    local d
    setup(function()
      d = tmpdir()
      assert(os.execute("mkdir -p " .. H.q(d .. "/cifar-10-batches-bin") .. " " .. H.q(d .. "/cifar-100-binary")))
      for b = 1, 5 do
        write(("%s/cifar-10-batches-bin/data_batch_%d.bin"):format(d, b), cifar10_records(3 * (b - 1), 3))
      end
      write(d .. "/cifar-10-batches-bin/test_batch.bin", cifar10_records(100, 4))
      write(d .. "/cifar-10-batches-bin/batches.meta.txt", "airplane\n")
      write(d .. "/cifar-100-binary/train.bin", cifar100_records(0, 6))
      write(d .. "/cifar-100-binary/test.bin", cifar100_records(50, 2))
      -- the official archives: tar of the folder, gzip-compressed
      assert(os.execute(("cd %s && tar -czf cifar-10-binary.tar.gz cifar-10-batches-bin && "
        .. "tar -czf cifar-100-binary.tar.gz cifar-100-binary && "
        .. "tar -czf broken.tar.gz cifar-10-batches-bin/data_batch_1.bin cifar-10-batches-bin/data_batch_2.bin")
        :format(H.q(d))))
    end)
    teardown(function() os.execute("rm -rf " .. H.q(d)) end)

    local function check(ds, first, n, kind)
      assert.are.equal(n, ds.size)
      assert.are.same({ 3, 32, 32 }, ds.shape)
      for i = 1, n do
        local g = first + i - 1
        local px, l = ds:record(i)
        assert.are.equal(pixels(g), px)
        local want = kind == 10 and g % 10 or kind == 100 and (g * 7) % 100 or g % 20
        assert.are.equal(want, l)
      end
    end

    it("reads CIFAR-10 from the folder, its parent and the .tar.gz, byte-for-byte", function()
      for _, p in ipairs({ d, d .. "/cifar-10-batches-bin", d .. "/cifar-10-binary.tar.gz" }) do
        local tr = nn.data.open({ format = "cifar10", path = p })
        check(tr, 0, 15, 10)
        assert.are.equal(10, tr.classes)
        assert.are.equal("cifar10", tr.name)
        assert.are.same({ 0.4914, 0.4822, 0.4465 }, tr.mean)
        assert.are.same({ 0.2470, 0.2435, 0.2616 }, tr.std)
        check(nn.data.open({ format = "cifar10", path = p, split = "test" }), 100, 4, 10)
      end
      check(nn.data.open({ format = "cifar10", path = d, limit = 7 }), 0, 7, 10)
      assert.has_error(function() nn.data.open({ format = "cifar10", path = d, classes = 100 }) end,
        "classes=100: CIFAR-10 has 10 classes")
      -- normalisation uses the published per-channel values
      local ds = nn.data.open({ format = "cifar10", path = d })
      local x = ds:batch(1, { offset = 2 })
      local px = ds:record(3)
      for _, c in ipairs({ 1, 2, 3 }) do
        local v = px:byte((c - 1) * 1024 + 32 * 1 + 5 + 1) -- (y=1, x=5) of channel c
        local want = (v / 255 - ds.mean[c]) / ds.std[c]
        assert.is_true(math.abs(x:get(1, c, 2, 6) - want) < 1e-6)
      end
    end)

    it("reads tar archives in GNU, POSIX ustar and pax formats with long member names", function()
      local long = ("d"):rep(60) .. "/" .. ("e"):rep(50)
      assert(os.execute(("cd %s && mkdir -p %s && cp -r cifar-10-batches-bin %s/"):format(H.q(d), long, long)))
      for _, fmt in ipairs({ "gnu", "ustar", "pax" }) do
        local a = d .. "/long-" .. fmt .. ".tar"
        assert(os.execute(("cd %s && tar --format=%s -cf %s %s"):format(H.q(d), fmt, H.q(a), long)))
        check(nn.data.open({ format = "cifar10", path = a }), 0, 15, 10)
        check(nn.data.open({ format = "cifar10", path = a, split = "test" }), 100, 4, 10)
      end
    end)

    it("reads CIFAR-100 fine and coarse labels from the folder and the .tar.gz", function()
      for _, p in ipairs({ d, d .. "/cifar-100-binary.tar.gz" }) do
        local fine = nn.data.open({ format = "cifar100", path = p })
        check(fine, 0, 6, 100)
        assert.are.equal(100, fine.classes)
        local coarse = nn.data.open({ format = "cifar100", path = p, label = "coarse" })
        check(coarse, 0, 6, 20)
        assert.are.equal(20, coarse.classes)
        check(nn.data.open({ format = "cifar100", path = p, split = "test" }), 50, 2, 100)
      end
    end)

    it("names the archive and the missing member, and other bad files", function()
      local p = d .. "/broken.tar.gz"
      assert.has_error(function() nn.data.open({ format = "cifar10", path = p }) end,
        p .. ": the archive has no member data_batch_3.bin")
      local ok, why = nn.data.probe(p, "cifar10")
      assert.is_false(ok)
      assert.are.equal(p .. ": the archive has no member data_batch_3.bin", why)
      write(d .. "/short.bin", cifar10_records(0, 2):sub(1, -2))
      assert.has_error(function() nn.data.open({ format = "cifar10", path = d .. "/short.bin" }) end,
        d .. "/short.bin: size 6145 is not a whole number of 3073-byte CIFAR-10 records")
      -- a valid gzip header followed by garbage: zlib's reason is in the parentheses
      write(d .. "/corrupt.tar.gz", read(d .. "/cifar-10-binary.tar.gz"):sub(1, 10) .. ("\255"):rep(500))
      assert.has_error(function() nn.data.open({ format = "cifar10", path = d .. "/corrupt.tar.gz" }) end,
        d .. "/corrupt.tar.gz: corrupt gzip data (invalid block type)")
      write(d .. "/cut.tar.gz", read(d .. "/cifar-10-binary.tar.gz"):sub(1, 200))
      assert.has_error(function() nn.data.open({ format = "cifar10", path = d .. "/cut.tar.gz" }) end,
        d .. "/cut.tar.gz: truncated gzip data (stream ends after 200 compressed bytes)")
    end)
  end)

  describe(".npy", function()
    local d
    setup(function() d = tmpdir() end)
    teardown(function() os.execute("rm -rf " .. H.q(d)) end)

    it("reads uint8 NHWC and NCHW images with int64 labels byte-for-byte", function()
      -- 4 images of 3 channels, 2 x 2; NHWC value (i, y, x, c) = 50i + 10c + 2y + x
      local nhwc, nchw = {}, {}
      for i = 0, 3 do
        for y = 0, 1 do
          for x = 0, 1 do
            for c = 0, 2 do nhwc[#nhwc + 1] = string.char(50 * i + 10 * c + 2 * y + x) end
          end
        end
        for c = 0, 2 do
          for y = 0, 1 do
            for x = 0, 1 do nchw[#nchw + 1] = string.char(50 * i + 10 * c + 2 * y + x) end
          end
        end
      end
      write(d .. "/x_hwc.npy", npy("|u1", "(4, 2, 2, 3)", table.concat(nhwc)))
      write(d .. "/x_chw.npy", npy("|u1", "(4, 3, 2, 2)", table.concat(nchw)))
      write(d .. "/y.npy", npy("<i8", "(4,)", string.pack("<i8<i8<i8<i8", 3, 0, 2, 1)))
      local a = nn.data.open({ format = "npy", path = d .. "/x_hwc.npy", labels = d .. "/y.npy", layout = "nhwc" })
      local b = nn.data.open({ format = "npy", path = d .. "/x_chw.npy", labels = d .. "/y.npy" })
      assert.are.same({ 3, 2, 2 }, a.shape)
      assert.are.equal(4, a.classes)
      assert.are.equal("x_hwc", a.name)
      for i = 1, 4 do
        local pa, la = a:record(i)
        local pb, lb = b:record(i)
        assert.are.equal(table.concat(nchw, "", 12 * (i - 1) + 1, 12 * i), pa)
        assert.are.equal(pa, pb)
        assert.are.equal(({ 3, 0, 2, 1 })[i], la)
        assert.are.equal(la, lb)
      end
    end)

    it("finds the pair in a folder or derives the labels name from the images name", function()
      local x = npy("|u1", "(2, 1, 2)", "\1\2\3\4")
      local dd = d .. "/tin"
      assert(os.execute("mkdir -p " .. H.q(dd)))
      write(dd .. "/train_images.npy", x)
      write(dd .. "/train_labels.npy", npy("<i4", "(2,)", string.pack("<i4<i4", 1, 0)))
      write(dd .. "/x_test.npy", x)
      write(dd .. "/y_test.npy", npy("|u1", "(2, 1)", "\0\1"))
      local tr = nn.data.open({ format = "npy", path = dd })
      assert.are.equal("tin", tr.name)
      assert.are.same({ 1, 0 }, tr:labels())
      local te = nn.data.open({ format = "npy", path = dd, split = "test" })
      assert.are.same({ 0, 1 }, te:labels())
      assert.are.equal("\3\4", (te:record(2)))
      assert.are.same({ 0, 1 }, nn.data.open({ format = "npy", path = dd .. "/x_test.npy" }):labels())
      assert.are.same({ 1, 0 }, nn.data.open({ format = "npy", path = dd .. "/train_images.npy" }):labels())
      assert.has_error(function() nn.data.open({ format = "npy", path = d }) end,
        d .. ": no train_images.npy, x_train.npy or train_x.npy in the folder")
    end)

    it("reads float32 images, normalised with their computed mean/std", function()
      local vals = {}
      for k = 0, 7 do vals[#vals + 1] = string.pack("<f", k * 0.5) end
      write(d .. "/f.npy", npy("<f4", "(2, 2, 2)", table.concat(vals)))
      write(d .. "/fl.npy", npy("|u1", "(2,)", "\1\0"))
      local ds = nn.data.open({ format = "npy", path = d .. "/f.npy", labels = d .. "/fl.npy" })
      assert.is_true(ds.float)
      assert.are.same({ 1, 2, 2 }, ds.shape)
      assert.is_true(math.abs(ds.mean[1] - 1.75) < 1e-12)
      local sd = math.sqrt(((0 - 1.75) ^ 2 + (0.5 - 1.75) ^ 2 + (1 - 1.75) ^ 2 + (1.5 - 1.75) ^ 2
        + (2 - 1.75) ^ 2 + (2.5 - 1.75) ^ 2 + (3 - 1.75) ^ 2 + (3.5 - 1.75) ^ 2) / 8)
      assert.is_true(math.abs(ds.std[1] - sd) < 1e-12)
      local x, y = ds:batch(2)
      assert.are.same({ 1, 0 }, y:totable())
      assert.is_true(math.abs(x:get(2, 1, 2, 2) - (3.5 - 1.75) / sd) < 1e-6)
    end)

    it("refuses pixel values and normalisations beyond +-1e30, naming the file or the field", function()
      write(d .. "/e31.npy", npy("<f4", "(2, 1, 2)", string.pack("<ffff", 1, 2, -1e31, 3)))
      write(d .. "/e30.npy", npy("<f4", "(2, 1, 2)", string.pack("<ffff", 1, 2, -1e30, 1e30)))
      write(d .. "/l2.npy", npy("|u1", "(2,)", "\0\1"))
      write(d .. "/u8.npy", npy("|u1", "(2, 1, 2)", "\0\128\255\7"))
      local function open(x, o)
        o = o or {}
        o.format, o.path, o.labels = "npy", d .. "/" .. x, d .. "/l2.npy"
        return nn.data.open(o)
      end
      -- a float file's values: the file named, not an option the caller never gave
      assert.has_error(function() open("e31.npy") end,
        d .. "/e31.npy: record 1 holds the pixel value -1e+31, outside the supported range [-1e+30, 1e+30]")
      local x = open("e30.npy"):batch(2) -- the bound itself is in range, and normalised finitely
      for i = 1, 4 do assert.is_true(math.abs(x[i]) < 10) end
      -- a given mean/std whose normalised values (pixels in [0, 1] for uint8, and padding 0) overflow
      assert.has_error(function() open("u8.npy", { std = 1e-300 }) end,
        "bad argument #1 to 'open' (field 'std': std[1] = 1e-300 (mean[1] = 0.382353) normalises pixel "
        .. "values in [0, 1] to [-3.82353e+299, 6.17647e+299], outside +-1e+30)")
      assert.has_error(function() open("u8.npy", { mean = -1e30, std = 0.5 }) end,
        "bad argument #1 to 'open' (fields 'mean' and 'std': std[1] = 0.5 (mean[1] = -1e+30) normalises "
        .. "pixel values in [0, 1] to [2e+30, 2e+30], outside +-1e+30)")
      assert.has_error(function() open("e30.npy", { std = 0.5 }) end,
        "bad argument #1 to 'open' (field 'std': std[1] = 0.5 (mean[1] = 0) normalises pixel values in "
        .. "[-1e+30, 1e+30] to [-2e+30, 2e+30], outside +-1e+30)")
      assert.has_error(function() open("u8.npy", { mean = 1e31 }) end,
        "bad argument #1 to 'open' (field 'mean': finite numbers expected)")
      local ds = open("u8.npy", { std = 1e-29 }) -- outputs up to 1e29: accepted
      x = ds:batch(2)
      for i = 1, 4 do assert.is_true(math.abs(x[i]) <= 1e30) end
      -- a missing file is reported as missing, before a labels name is derived from it
      assert.has_error(function() nn.data.open({ format = "npy", path = d .. "/nonexistent" }) end,
        d .. "/nonexistent: cannot open (No such file or directory)")
    end)

    it("rejects an unsupported dtype, a truncated array and mismatched counts", function()
      write(d .. "/d.npy", npy("<f8", "(2, 2, 2)", ("\0"):rep(64)))
      write(d .. "/l.npy", npy("|u1", "(3,)", "\0\1\2"))
      write(d .. "/t.npy", npy("|u1", "(2, 2, 2)", ("\0"):rep(7)))
      write(d .. "/ok.npy", npy("|u1", "(2, 2, 2)", ("\0"):rep(8)))
      write(d .. "/c.npy", npy("<c8", "(2,)", ("\0"):rep(16)))
      local function open(x) return function() nn.data.open({ format = "npy", path = d .. "/" .. x, labels = d .. "/l.npy" }) end end
      assert.has_error(open("d.npy"), d .. "/d.npy: unsupported image dtype '<f8' (uint8 '|u1' or float32 '<f4' expected)")
      assert.has_error(open("t.npy"), d .. "/t.npy: truncated: the header announces 8 bytes of data, the file has 7")
      assert.has_error(open("ok.npy"), d .. "/l.npy: 3 labels but " .. d .. "/ok.npy has 2 images")
      assert.has_error(open("c.npy"), d .. "/c.npy: unsupported dtype '<c8'")
      -- found by fuzz_npy: the largest int32 label overflowed the class count (max label + 1)
      write(d .. "/big.npy", npy("<i4", "(2,)", string.pack("<i4<i4", 0, 2147483647)))
      assert.has_error(function() nn.data.open({ format = "npy", path = d .. "/ok.npy", labels = d .. "/big.npy" }) end,
        d .. "/big.npy: label 2147483647 of record 1 exceeds the limit of 16777216 classes")
      assert.has_error(function() nn.data.open({ format = "npy", path = d .. "/ok.npy" }) end,
        d .. "/ok.npy: a labels .npy file is needed (give labels=)")
      assert.is_true(nn.data.probe(d .. "/ok.npy"))
      assert.are.same({ false, d .. "/d.npy: unsupported image dtype '<f8' (uint8 '|u1' or float32 '<f4' expected)" },
        { nn.data.probe(d .. "/d.npy") })
      assert.are.same({ false, d .. "/t.npy: truncated: the header announces 8 bytes of data, the file has 7" },
        { nn.data.probe(d .. "/t.npy", "npy") })
    end)
  end)

  describe("bad IDX input", function()
    local d
    setup(function()
      d = tmpdir()
      write(d .. "/train-images-idx3-ubyte", idx_images(6, 2, 2))
      write(d .. "/train-labels-idx1-ubyte", idx_labels(5))
      write(d .. "/magic-images-idx3-ubyte", idx_labels(6))
      write(d .. "/magic-labels-idx1-ubyte", idx_labels(6))
      write(d .. "/trunc-images-idx3-ubyte", idx_images(6, 2, 2):sub(1, -3))
      write(d .. "/trunc-labels-idx1-ubyte", idx_labels(6))
      write(d .. "/gz-images-idx3-ubyte.gz", "\31\139\8\0\0\0\0\0\0\3" .. ("\255"):rep(40))
      write(d .. "/gz-labels-idx1-ubyte", idx_labels(6))
    end)
    teardown(function() os.execute("rm -rf " .. H.q(d)) end)

    it("gives one clear error naming the file", function()
      local function open(p) return function() nn.data.open({ format = "idx", path = p }) end end
      assert.has_error(open(d), d .. "/train-labels-idx1-ubyte: 5 labels but " .. d
        .. "/train-images-idx3-ubyte has 6 images")
      assert.has_error(open(d .. "/magic-images-idx3-ubyte"), d
        .. "/magic-images-idx3-ubyte: bad magic number 0x00000801 (IDX images expected 0x00000803)")
      assert.has_error(open(d .. "/trunc-images-idx3-ubyte"), d
        .. "/trunc-images-idx3-ubyte: truncated: header says 6 images of 2x2 (24 bytes), file has 22")
      assert.has_error(open(d .. "/gz-images-idx3-ubyte.gz"), d
        .. "/gz-images-idx3-ubyte.gz: corrupt gzip data (invalid block type)")
      assert.has_error(open(d .. "/none"), d .. "/none: cannot open (No such file or directory)")
      local ok, why = nn.data.probe(d .. "/trunc-images-idx3-ubyte")
      assert.is_false(ok)
      assert.are.equal(d .. "/trunc-images-idx3-ubyte: truncated: header says 6 images of 2x2 (24 bytes), file has 22", why)
    end)

    it("reports the bad file from the CLI with exit status 1", function()
      local code, out, err = H.run(("%s -e %s"):format(H.q(H.cli), H.q(
        ('require("neuronas").data.open{ format = "idx", path = %q }'):format(d .. "/magic-images-idx3-ubyte"))))
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.is_truthy(err:find(d .. "/magic-images-idx3-ubyte: bad magic number 0x00000801", 1, true))
    end)

    it("rejects bad open options with exact messages", function()
      assert.has_error(function() nn.data.open({ path = d }) end,
        "bad argument #1 to 'open' (field 'format': one of \"idx\"|\"cifar10\"|\"cifar100\"|\"npy\" expected, got nil)")
      assert.has_error(function() nn.data.open({ format = "mnist", path = d }) end,
        "bad argument #1 to 'open' (field 'format': one of \"idx\"|\"cifar10\"|\"cifar100\"|\"npy\" expected, got \"mnist\")")
      assert.has_error(function() nn.data.open({ format = "idx" }) end,
        "bad argument #1 to 'open' (field 'path': string expected, got nil)")
      assert.has_error(function() nn.data.open({ format = "idx", path = d, spilt = "test" }) end,
        "bad argument #1 to 'open' (unknown field 'spilt' (expected: format, path, labels, split, layout, label, classes, limit, name, source, mean, std))")
      assert.has_error(function() nn.data.open({ format = "idx", path = d .. "/magic-labels-idx1-ubyte", std = 0 }) end,
        d .. "/magic-labels-idx1-ubyte: bad magic number 0x00000801 (IDX images expected 0x00000803)")
      assert.has_error(function() nn.data.open({ format = "idx", path = d .. "/trunc-images-idx3-ubyte",
        labels = d .. "/magic-images-idx3-ubyte" }) end, d .. "/trunc-images-idx3-ubyte: truncated: header says 6 images of 2x2 (24 bytes), file has 22")
      assert.has_error(function() nn.data.open({ format = "idx", path = d .. "/magic-labels-idx1-ubyte",
        labels = d .. "/magic-images-idx3-ubyte" }) end)
      write(d .. "/ok-images-idx3-ubyte", idx_images(6, 2, 2))
      write(d .. "/ok-labels-idx1-ubyte", idx_labels(6))
      assert.has_error(function() nn.data.open({ format = "idx", path = d .. "/ok-images-idx3-ubyte", std = 0 }) end,
        "bad argument #1 to 'open' (field 'std': positive numbers expected)")
      assert.has_error(function() nn.data.open({ format = "idx", path = d .. "/ok-images-idx3-ubyte", mean = { 1, 2 } }) end,
        "bad argument #1 to 'open' (field 'mean': a number or a list of 1 numbers expected)")
      assert.has_error(function() nn.data.open({ format = "idx", path = d .. "/ok-images-idx3-ubyte", classes = 5 }) end,
        d .. "/ok-labels-idx1-ubyte: label 5 of record 5 outside 0..4")
      assert.has_error(function() nn.data.open({ format = "idx", path = d .. "/ok-images-idx3-ubyte", labels = d .. "/ok-images-idx3-ubyte" }) end,
        d .. "/ok-images-idx3-ubyte: bad magic number 0x00000803 (IDX labels expected 0x00000801)")
      assert.has_error(function() nn.data.open("x") end,
        "bad argument #1 to 'open' (table expected, got string)")
    end)
  end)
end)
