/* l_core.c: luaopen_neuronas_core, the C half of require "neuronas". */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "l_aux.h"
#include "neuronas/nn_blas.h"
#include "neuronas/nn_data.h"
#include "neuronas/nn_fitness.h"
#include "neuronas/nn_layer.h"
#include "neuronas/nn_net.h"

#define NN_BINDING(name) int nn_lua_open_##name(lua_State *L);
#include "nn_bindings.h"
#undef NN_BINDING

/* () -> string: OpenBLAS build configuration */
static int core_blas_config(lua_State *L) {
  lua_pushstring(L, nn_blas_config());
  return 1;
}

/* (n) -> (): threads OpenBLAS may use */
static int core_blas_threads(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 1024, 1, "thread count in 1..1024 expected");
  nn_blas_set_threads((int)n);
  return 0;
}

/* (on) -> (): sets the engine's cooperative cancel flag (Ctrl-C) */
static int core_cancel(lua_State *L) {
  nn_cancel_set(lua_toboolean(L, 1));
  return 0;
}

/* (fd) -> boolean: whether fd (0, 1 or 2) is a terminal (progress display) */
static int core_isatty(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= 2, 1, "0, 1 or 2 expected");
  lua_pushboolean(L, isatty((int)fd));
  return 1;
}

/* () -> bytes the engine holds on the heap now (nets, trainers, tensors, datasets, caches) */
static int core_mem_live(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)nn_mem_live_bytes());
  return 1;
}

/* () -> seconds: monotonic wall clock (os.clock is CPU time) */
static int core_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + 1e-9 * (lua_Number)ts.tv_nsec);
  return 1;
}

/* (path) -> "file" | "folder" | "other", or nil, message naming the path, "missing" | "io".
 * From stat(2), so a pipe or a device is told apart without opening it (opening a pipe for
 * reading waits for a writer). */
static int core_file_kind(lua_State *L) {
  const char *path = l_checkstring(L, 1, "path");
  struct stat sb;
  if (stat(path, &sb) != 0) {
    const int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(e));
    lua_pushstring(L, e == ENOENT || e == ENOTDIR ? "missing" : "io");
    return 3;
  }
  lua_pushstring(L, S_ISREG(sb.st_mode) ? "file" : S_ISDIR(sb.st_mode) ? "folder" : "other");
  return 1;
}

/* (path [, max_bytes]) -> the file's bytes, or nil, message naming the path, reason: "missing",
 * "folder", "other" (a device, a pipe, a socket: no end to read up to), "large" (more than
 * max_bytes, default nn.bounds.file_bytes) or "io". The kind and size come from stat(2) before
 * the file is opened (opening a pipe for reading waits for a writer); the buffer is allocated
 * before the open, so no Lua error can leave the descriptor open, and a file that grew or
 * changed kind in between is refused. */
static int core_read_text(lua_State *L) {
  const char *path = l_checkstring(L, 1, "path");
  const lua_Integer max = luaL_optinteger(L, 2, (lua_Integer)NN_FILE_MAX_BYTES);
  luaL_argcheck(L, max >= 0 && (uint64_t)max <= (uint64_t)NN_FILE_MAX_BYTES, 2,
                lua_pushfstring(L, "max_bytes: 0..%I expected", (lua_Integer)NN_FILE_MAX_BYTES));
  const char *why = "io";
  int e = 0;
  struct stat sb;
  if (stat(path, &sb) != 0) {
    e = errno;
    why = e == ENOENT || e == ENOTDIR ? "missing" : "io";
  } else if (S_ISDIR(sb.st_mode)) {
    why = "folder";
  } else if (!S_ISREG(sb.st_mode)) {
    why = "other";
  } else if ((uint64_t)sb.st_size > (uint64_t)max) {
    why = "large";
  } else {
    const size_t cap = (size_t)sb.st_size + 1; /* one byte more: a file that grew is seen */
    char *buf = lua_newuserdatauv(L, cap, 0);
    size_t got = 0;
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) e = errno;
    else if (fstat(fd, &sb) != 0) e = errno;
    else if (!S_ISREG(sb.st_mode)) why = "other";
    else
      while (got < cap) {
        const ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) e = errno;
        if (n <= 0) break;
        got += (size_t)n;
      }
    if (fd >= 0) close(fd);
    if (!e && strcmp(why, "other") && got == cap) {
      lua_pushnil(L);
      lua_pushfstring(L, "%s: changed while being read", path);
      lua_pushstring(L, "io");
      return 3;
    }
    if (!e && strcmp(why, "other")) {
      lua_pushlstring(L, buf, got);
      return 1;
    }
  }
  lua_pushnil(L);
  if (e) lua_pushfstring(L, "%s: %s", path, strerror(e));
  else if (!strcmp(why, "folder")) lua_pushfstring(L, "%s: is a folder, a file expected", path);
  else if (!strcmp(why, "other")) lua_pushfstring(L, "%s: not a regular file", path);
  else lua_pushfstring(L, "%s: larger than %I bytes", path, max);
  lua_pushstring(L, why);
  return 3;
}

int luaopen_neuronas_core(lua_State *L) {
  static const luaL_Reg fns[] = {{"blas_config", core_blas_config},
                                 {"blas_threads", core_blas_threads},
                                 {"cancel", core_cancel},
                                 {"isatty", core_isatty},
                                 {"clock", core_clock},
                                 {"mem_live", core_mem_live},
                                 {"file_kind", core_file_kind},
                                 {"read_text", core_read_text},
                                 {NULL, NULL}};
  luaL_newlib(L, fns);
  lua_pushliteral(L, NN_VERSION);
  lua_setfield(L, -2, "version");
  /* nn.bounds: the upper bounds where a value sizes work or memory (docs/reliability.md
   * "Bounds"; the CLI's flag ranges are neuronas.limits) */
  lua_createtable(L, 0, 8);
#define LIMIT(name, v) (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, name))
  LIMIT("repeat", NN_FITNESS_MAX_REPEAT);
  LIMIT("threads", NN_FITNESS_MAX_THREADS);
  LIMIT("timesteps", NN_NET_MAX_TIMESTEPS);
  LIMIT("channels", NN_NET_MAX_CHANNELS);
  LIMIT("tensor_elements", NN_TENSOR_MAX_NUMEL);
  LIMIT("file_bytes", NN_FILE_MAX_BYTES);
  LIMIT("space_samples", NN_SPACE_MAX_SAMPLES);
  LIMIT("fitness_many_nets", NN_FITNESS_MAX_NETS);
#undef LIMIT
  lua_setfield(L, -2, "bounds");
  /* nn.weight_bits: the one range and default of the weight precision (nn_layer.h), which every
   * entry point checks against: nn.quantizer, nn.trainer, hw:evaluate, --bits (neuronas.limits) */
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, NN_WEIGHT_BITS_MIN), lua_setfield(L, -2, "min");
  lua_pushinteger(L, NN_WEIGHT_BITS_MAX), lua_setfield(L, -2, "max");
  lua_pushinteger(L, NN_WEIGHT_BITS_DEFAULT), lua_setfield(L, -2, "default");
  lua_pushinteger(L, NN_WEIGHT_BITS_FLOAT), lua_setfield(L, -2, "float");
  lua_setfield(L, -2, "weight_bits");
#define NN_BINDING(name) nn_lua_open_##name(L);
#include "nn_bindings.h"
#undef NN_BINDING
  return 1;
}
