-- install_spec.lua: what `cmake --install` puts in a prefix is usable on its own: the C library
-- through pkg-config and through find_package(neuronas), the man page, and the Lua rock built
-- by LuaRocks from a copy of the checkout (docs/interop.md). Truth for the embedded program:
-- SNASNet's published score of the fixture (tests/fixtures/README.md).
local H = require("helpers")

local SNASNET_SCORE = -11.123831276456913 -- tests/fixtures/snasnet-backward/meta.json
local FIX = "tests/fixtures/snasnet-backward"

local build = H.build
function H.cwd()
  local p = assert(io.popen("pwd"))
  local d = p:read("l")
  p:close()
  return d
end
local tmp = os.tmpname()
os.remove(tmp)
local prefix = tmp .. "/prefix"

-- Build commands run without the sanitizer preload of the ASan suite (lua5.4 needs it, the
-- compilers do not); programs built against an instrumented library are instrumented too.
local function sh(cmd) return H.run("env -u LD_PRELOAD sh -c " .. H.q(cmd)) end
local function sanitized()
  local f = io.open(build .. "/CMakeCache.txt")
  local text = f and f:read("a") or ""
  if f then f:close() end
  return text:find("NEURONAS_SANITIZE:BOOL=ON", 1, true) ~= nil
end
local SAN = sanitized() and "-fsanitize=address,undefined" or ""

local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() end
  return f ~= nil
end

local function check_score(out)
  local s = tonumber(out:match("^score (%S+)\n$"))
  assert.is_number(s, "no score in " .. out)
  assert.is_true(math.abs(s - SNASNET_SCORE) <= 1e-4 * math.abs(SNASNET_SCORE),
    ("score %.9f, SNASNet %.9f"):format(s, SNASNET_SCORE))
end

describe("cmake --install", function()
  setup(function()
    assert(os.execute("mkdir -p " .. H.q(tmp)))
    local status, _, err = sh("cmake --install " .. H.q(build) .. " --prefix " .. H.q(prefix))
    assert.are.equal(0, status, err)
  end)
  teardown(function() os.execute("rm -rf " .. H.q(tmp)) end)

  it("installs headers, both libraries, pkg-config and CMake files, Lua module, scripts, docs, man page", function()
    for _, f in ipairs({
      "bin/neuronas", "include/neuronas/nn.h", "include/neuronas/nn_net.h", "include/neuronas/nn_interop.h",
      "lib/libneuronas.a", "lib/libneuronas.so", "lib/pkgconfig/neuronas.pc",
      "lib/cmake/neuronas/neuronasConfig.cmake", "lib/cmake/neuronas/neuronasConfigVersion.cmake",
      "share/lua/5.4/neuronas/init.lua", "lib/lua/5.4/neuronas/core.so",
      "share/neuronas/scripts/neuronas.lua", "share/doc/neuronas/README.md", "share/doc/neuronas/LICENSE",
      "share/doc/neuronas/docs/interop.md", "share/doc/neuronas/examples/embed.c",
      "share/man/man1/neuronas.1",
    }) do
      assert.is_true(exists(prefix .. "/" .. f), f .. " not installed")
    end
  end)

  it("installs a CLI that runs from the prefix", function()
    local status, out, err = sh(H.q(prefix .. "/bin/neuronas") .. " -e 'print(require(\"neuronas\").version)'")
    assert.are.equal(0, status, err)
    assert.are.equal(require("neuronas").version .. "\n", out)
  end)

  it("has a man page that formats without warnings and documents the commands and exit codes", function()
    local status, out, err = sh("groff -man -Tutf8 -P-cbou -ww " .. H.q(prefix .. "/share/man/man1/neuronas.1"))
    assert.are.equal(0, status, err)
    assert.are.equal("", err)
    for _, w in ipairs({ "SYNOPSIS", "EXIT STATUS", "--bits", "--area", "version", "help" }) do
      assert.truthy(out:gsub("\226\128\144", "-"):find(w, 1, true), w .. " missing from the man page")
    end
  end)

  it("builds examples/embed.c through pkg-config against the installed library", function()
    local pc = "PKG_CONFIG_PATH=" .. H.q(prefix .. "/lib/pkgconfig")
    local exe = tmp .. "/embed"
    local status, _, err = sh(("cc %s examples/embed.c $(%s pkg-config --cflags --libs neuronas) -Wl,-rpath,%s -o %s")
      :format(SAN, pc, H.q(prefix .. "/lib"), H.q(exe)))
    assert.are.equal(0, status, err)
    local out
    status, out, err = sh(H.q(exe) .. " " .. FIX)
    assert.are.equal(0, status, err)
    check_score(out)
    -- it uses the installed shared library, not the build tree's
    status, out = sh("ldd " .. H.q(exe))
    assert.truthy(out:find(prefix .. "/lib/libneuronas.so", 1, true), out)
    -- and a bad directory is an error naming the file
    status, _, err = sh(H.q(exe) .. " " .. H.q(tmp .. "/nowhere"))
    assert.are.equal(1, status)
    assert.truthy(err:find(tmp .. "/nowhere/weights.safetensors", 1, true), err)
  end)

  it("is found by find_package(neuronas) with shared and static imported targets", function()
    local b = tmp .. "/consumer"
    local flags = SAN ~= "" and (" -DCMAKE_C_FLAGS=" .. SAN .. " -DCMAKE_EXE_LINKER_FLAGS=" .. SAN) or ""
    local status, _, err = sh(("cmake -S tests/install -B %s -DCMAKE_PREFIX_PATH=%s -DEMBED_SOURCE=%s%s && cmake --build %s")
      :format(H.q(b), H.q(prefix), H.q(H.cwd() .. "/examples/embed.c"), flags, H.q(b)))
    assert.are.equal(0, status, err)
    for _, exe in ipairs({ "embed_shared", "embed_static" }) do
      local out
      status, out, err = sh(H.q(b .. "/" .. exe) .. " " .. FIX)
      assert.are.equal(0, status, exe .. ": " .. err)
      check_score(out)
    end
  end)
end)

describe("rockspecs/neuronas-scm-1.rockspec", function()
  teardown(function() os.execute("rm -rf " .. H.q(tmp)) end)

  it("builds with luarocks make from a copy of the checkout and require works from the tree", function()
    local src, tree = tmp .. "/src", tmp .. "/tree"
    local status, _, err = sh(("mkdir -p %s && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t %s")
      :format(H.q(src), H.q(src)))
    assert.are.equal(0, status, err)
    status, _, err = sh(("cd %s && luarocks --lua-version 5.4 make --tree %s rockspecs/neuronas-scm-1.rockspec")
      :format(H.q(src), H.q(tree)))
    assert.are.equal(0, status, err)
    local env = ("LUA_PATH=%s LUA_CPATH=%s"):format(
      H.q(tree .. "/share/lua/5.4/?.lua;" .. tree .. "/share/lua/5.4/?/init.lua;;"),
      H.q(tree .. "/lib/lua/5.4/?.so;;"))
    local out
    status, out, err = H.run(env .. " lua5.4 -e " .. H.q([[
      local nn = require "neuronas"
      print(nn.version, package.searchpath("neuronas.core", package.cpath), package.searchpath("neuronas", package.path))
      print(nn.cell("conv3x3 skip zero conv1x1 skip avgpool3x3"))]]))
    assert.are.equal(0, status, err)
    assert.are.equal(("%s\t%s\t%s\nconv3x3 skip zero conv1x1 skip avgpool3x3\n"):format(
      require("neuronas").version, tree .. "/lib/lua/5.4/neuronas/core.so", tree .. "/share/lua/5.4/neuronas/init.lua"), out)
  end)
end)
