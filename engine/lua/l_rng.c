/* l_rng.c: neuronas.Rng, the counter-based streams of nn_rng.h for Lua (docs/model.md). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "l_aux.h"

nn_rng *l_checkrng(lua_State *L, int idx) { return luaL_checkudata(L, idx, NN_MT_RNG); }

void l_pushrng(lua_State *L, nn_rng r) {
  nn_rng *p = lua_newuserdatauv(L, sizeof *p, 0);
  *p = r;
  luaL_setmetatable(L, NN_MT_RNG);
}

/* (seed) -> rng; seed is any integer (its 64-bit two's complement pattern is the key) */
static int r_new(lua_State *L) {
  lua_Integer seed = luaL_checkinteger(L, 1);
  l_pushrng(L, nn_rng_seed((uint64_t)seed));
  return 1;
}

/* rng -> integer: the raw 64-bit draw (as Lua's signed integer) */
static int r_u64(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)nn_rng_u64(l_checkrng(L, 1)));
  return 1;
}

/* rng[, lo, hi] -> number in [0,1) or [lo,hi) */
static int r_uniform(lua_State *L) {
  nn_rng *r = l_checkrng(L, 1);
  double u = nn_rng_uniform(r);
  if (lua_gettop(L) >= 2) {
    lua_Number lo = luaL_checknumber(L, 2), hi = luaL_checknumber(L, 3);
    luaL_argcheck(L, isfinite(lo), 2, "finite lo expected");
    luaL_argcheck(L, isfinite(hi), 3, "finite hi expected");
    luaL_argcheck(L, lo <= hi, 3, "hi >= lo expected");
    luaL_argcheck(L, isfinite(hi - lo), 3, "hi - lo within the number range expected");
    u = lo + (hi - lo) * u;
  }
  lua_pushnumber(L, u);
  return 1;
}

/* rng[, mean, std] -> number */
static int r_normal(lua_State *L) {
  nn_rng *r = l_checkrng(L, 1);
  lua_Number m = luaL_optnumber(L, 2, 0), s = luaL_optnumber(L, 3, 1);
  luaL_argcheck(L, isfinite(m), 2, "finite mean expected");
  luaL_argcheck(L, s >= 0 && isfinite(s), 3, "finite std >= 0 expected");
  lua_pushnumber(L, m + s * nn_rng_normal(r));
  return 1;
}

/* rng, lo, hi -> integer in [lo, hi] (like math.random(lo, hi)); rng, n -> [1, n] */
static int r_integer(lua_State *L) {
  nn_rng *r = l_checkrng(L, 1);
  lua_Integer lo = 1, hi;
  if (lua_gettop(L) >= 3) {
    lo = luaL_checkinteger(L, 2);
    hi = luaL_checkinteger(L, 3);
  } else {
    hi = luaL_checkinteger(L, 2);
  }
  luaL_argcheck(L, lo <= hi, lua_gettop(L) >= 3 ? 3 : 2, "empty interval");
  lua_pushinteger(L, lo + (lua_Integer)nn_rng_below(r, (uint64_t)hi - (uint64_t)lo + 1));
  return 1;
}

/* rng, label|n -> independent child rng */
static int r_split(lua_State *L) {
  nn_rng *r = l_checkrng(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, 2);
    l_pushrng(L, nn_rng_split_u64(r, (uint64_t)n));
  } else {
    l_pushrng(L, nn_rng_split(r, l_checkstring(L, 2, "label")));
  }
  return 1;
}

/* rng -> key, counter (integers), e.g. to save and restore a stream */
static int r_state(lua_State *L) {
  nn_rng *r = l_checkrng(L, 1);
  lua_pushinteger(L, (lua_Integer)r->key);
  lua_pushinteger(L, (lua_Integer)r->counter);
  return 2;
}

static int r_tostring(lua_State *L) {
  nn_rng *r = l_checkrng(L, 1);
  char buf[96];
  snprintf(buf, sizeof buf, "neuronas.Rng (key=0x%016" PRIx64 ", counter=%" PRIu64 ")", r->key,
           r->counter);
  lua_pushstring(L, buf);
  return 1;
}

int nn_lua_open_rng(lua_State *L) {
  static const luaL_Reg meta[] = {{"__tostring", r_tostring}, {NULL, NULL}};
  static const luaL_Reg methods[] = {{"u64", r_u64},         {"uniform", r_uniform},
                                     {"normal", r_normal},   {"integer", r_integer},
                                     {"split", r_split},     {"state", r_state},
                                     {NULL, NULL}};
  l_newtype(L, NN_MT_RNG, meta, methods);
  lua_pushcfunction(L, r_new);
  lua_setfield(L, -2, "rng");
  return 0;
}
