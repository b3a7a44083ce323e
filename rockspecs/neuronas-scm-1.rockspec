-- LuaRocks rockspec: builds the C engine and the Lua module with CMake from a checkout.
--   luarocks --lua-version 5.4 make --tree /tmp/rocks rockspecs/neuronas-scm-1.rockspec
-- (docs/interop.md, "The Lua rock"). `luarocks make` builds the checkout it is run in;
-- source.url is only used by `luarocks install`/`build` from a rock server.
rockspec_format = "3.0"
package = "neuronas"
version = "scm-1"
source = {
  url = "git+file://./",
}
description = {
  summary = "Hardware-aware search of spiking neural networks for RRAM compute-in-memory chips",
  detailed = [[
A C engine (spiking networks built from cells, fixed-point weight quantization, a
training-free fitness score, an RRAM compute-in-memory hardware model) with a Lua 5.4 API
and search strategies written in Lua.]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    -- the C library, pkg-config and CMake files stay inside the rock's own directory;
    -- LuaRocks deploys only lua/, lib/ and bin/ into the tree
    CMAKE_INSTALL_LIBDIR = "clib",
    NEURONAS_INSTALL_LUADIR = "$(LUADIR)",
    NEURONAS_INSTALL_LUACDIR = "$(LIBDIR)",
    NEURONAS_TESTS = "OFF",
  },
}
