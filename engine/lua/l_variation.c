/* l_variation.c: device variation and measured crossbar activity (docs/variation.md,
 * docs/hardware.md "Activity-aware energy"). The Lua half (neuronas/variation.lua) builds
 * nn.fitness's `variation` option on these; hw:evaluate_active (l_ela.c) counts activity here. */
#include <stdlib.h>
#include <string.h>

#include "l_aux.h"
#include "l_net.h"
#include "l_variation.h"
#include "neuronas/nn_activity.h"
#include "neuronas/nn_variation.h"

/* opts table at idx -> params; unknown keys and bad values raise naming the field */
static nn_variation_params check_vparams(lua_State *L, int idx, int argn) {
  nn_variation_params p = nn_variation_params_default();
  if (lua_isnoneornil(L, idx)) return p;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    if (!strcmp(k, "sigma") || !strcmp(k, "stuck") || !strcmp(k, "stuck_high")) {
      if (!lua_isnumber(L, -1))
        luaL_argerror(L, argn, lua_pushfstring(L, "field '%s': number expected, got %s", k, luaL_typename(L, -1)));
      double v = lua_tonumber(L, -1);
      if (!strcmp(k, "sigma")) p.sigma = v;
      else if (!strcmp(k, "stuck")) p.stuck = v;
      else p.stuck_high = v;
    } else if (!strcmp(k, "device_bits") || !strcmp(k, "seed")) {
      if (!lua_isinteger(L, -1))
        luaL_argerror(L, argn, lua_pushfstring(L, "field '%s': integer expected, got %s", k, luaL_typename(L, -1)));
      lua_Integer v = lua_tointeger(L, -1);
      if (!strcmp(k, "seed")) p.seed = (uint64_t)v;
      else p.device_bits = v < 1 || v > 16 ? 0 : (int)v;
    } else if (strcmp(k, "draws") != 0) {
      luaL_argerror(L, argn, lua_pushfstring(L, "unknown field '%s' (expected: sigma, draws, stuck, "
                                                "stuck_high, device_bits, seed)", k));
    }
    lua_pop(L, 1);
  }
  nn_error err;
  if (nn_variation_params_check(&p, &err) != NN_OK) luaL_argerror(L, argn, err.msg);
  return p;
}

static uint64_t check_draw(lua_State *L, int idx) {
  lua_Integer d = luaL_checkinteger(L, idx);
  luaL_argcheck(L, d >= 1, idx, "draw number >= 1 expected");
  return (uint64_t)d;
}

/* net, opts, draw -> a new Net with perturbed crossbar weights */
static int v_net(lua_State *L) {
  nn_net *net = l_checknet(L, 1);
  nn_variation_params p = check_vparams(L, 2, 2);
  uint64_t draw = check_draw(L, 3);
  nn_error err;
  l_box *b = l_pushnetbox(L);
  if (!(b->p = nn_variation_net(&p, net, draw, &err))) return l_raise(L, &err);
  return 1;
}

/* tensor, bits, opts, label, draw -> new tensor, { weights, cells, stuck, step } */
static int v_tensor(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  lua_Integer bits = luaL_checkinteger(L, 2);
  luaL_argcheck(L, bits >= 2 && bits <= 24, 2, "weight bits in 2..24 expected");
  nn_variation_params p = check_vparams(L, 3, 3);
  const char *label = luaL_checkstring(L, 4);
  uint64_t draw = check_draw(L, 5);
  nn_error err;
  l_box *b = l_pushtensorbox(L);
  if (!(b->p = nn_tensor_clone(t, &err))) return l_raise(L, &err);
  nn_variation_stats st;
  if (nn_variation_array(&p, (int)bits, label, draw, nn_tensor_data(b->p), nn_tensor_numel(b->p), &st, &err) != NN_OK)
    return l_raise(L, &err);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, st.weights), lua_setfield(L, -2, "weights");
  lua_pushinteger(L, st.cells), lua_setfield(L, -2, "cells");
  lua_pushinteger(L, st.stuck), lua_setfield(L, -2, "stuck");
  lua_pushnumber(L, st.step), lua_setfield(L, -2, "step");
  return 2;
}

static int64_t opt_int(lua_State *L, int idx, const char *k, int64_t dflt) {
  lua_getfield(L, idx, k);
  int64_t v = dflt;
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
      luaL_argerror(L, idx, lua_pushfstring(L, "field '%s': positive integer expected", k));
    v = lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* spikes (S x C x H x W tensor of 0/1), { k =, stride =, xbar = }[, "ref"] -> active reads,
 * reads per sample */
static int v_count(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_argcheck(L, nn_tensor_ndim(t) == 4, 1, "S x C x H x W tensor expected");
  nn_activity_geom g = {.channels = nn_tensor_dim(t, 1), .height = nn_tensor_dim(t, 2), .width = nn_tensor_dim(t, 3),
                        .k = opt_int(L, 2, "k", 1), .stride = opt_int(L, 2, "stride", 1),
                        .xbar = opt_int(L, 2, "xbar", 64)};
  int ref = lua_isstring(L, 3) && !strcmp(lua_tostring(L, 3), "ref");
  int64_t S = nn_tensor_dim(t, 0), N = g.channels * g.height * g.width, words = (N + 63) / 64;
  const float *x = nn_tensor_cdata(t);
  size_t nwords = (size_t)(S * words);
  uint64_t *bits = calloc(nwords ? nwords : 1, sizeof *bits);
  if (!bits) return luaL_error(L, "activity_count: out of memory");
  for (int64_t s = 0; s < S; s++)
    for (int64_t n = 0; n < N; n++)
      if (x[s * N + n] != 0.0f) bits[s * words + n / 64] |= (uint64_t)1 << (n % 64);
  nn_error err;
  int64_t active = 0, oh, ow, reads = 0;
  nn_status st = ref ? nn_activity_count_ref(&g, bits, S, words, &active, &err)
                     : nn_activity_count(&g, bits, S, words, &active, &err);
  free(bits);
  if (st == NN_OK) st = nn_activity_reads(&g, &oh, &ow, &reads, &err);
  if (st != NN_OK) return l_raise(L, &err);
  lua_pushinteger(L, active);
  lua_pushinteger(L, reads);
  return 2;
}

/* Pushes nn.activity's result for counts ls of net's layers (also nn.fitness's `activity`). */
void l_push_activity(lua_State *L, const nn_net *net, const nn_activity_layer *ls, lua_Integer xbar) {
  size_t n = nn_net_layer_count(net);
  lua_createtable(L, 0, 5);
  lua_createtable(L, (int)n, 0);
  int64_t active = 0, reads = 0;
  for (size_t i = 0; i < n; i++) {
    lua_createtable(L, 0, 5);
    lua_pushstring(L, nn_net_layer(net, i)->name), lua_setfield(L, -2, "name");
    lua_pushinteger(L, ls[i].active), lua_setfield(L, -2, "active");
    lua_pushinteger(L, ls[i].reads), lua_setfield(L, -2, "reads");
    if (ls[i].reads > 0) lua_pushnumber(L, (double)ls[i].active / (double)ls[i].reads);
    else lua_pushinteger(L, 1);
    lua_setfield(L, -2, "fraction");
    lua_pushboolean(L, ls[i].measured), lua_setfield(L, -2, "measured");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
    if (ls[i].measured) active += ls[i].active, reads += ls[i].reads;
  }
  lua_setfield(L, -2, "layers");
  lua_pushinteger(L, active), lua_setfield(L, -2, "active");
  lua_pushinteger(L, reads), lua_setfield(L, -2, "reads");
  if (reads > 0) lua_pushnumber(L, (double)active / (double)reads);
  else lua_pushinteger(L, 1);
  lua_setfield(L, -2, "fraction");
  lua_pushinteger(L, xbar), lua_setfield(L, -2, "xbar");
}

/* nn.activity(net, x | { batches }[, { xbar = 64 }]) -> { layers = { {name, active, reads,
 * fraction, measured}, ... }, active =, reads =, fraction =, xbar = }: the crossbar reads of each
 * layer that see a nonzero input, over the measured layers (docs/hardware.md) */
int nn_lua_activity(lua_State *L) {
  lua_Integer xbar = 64;
  if (!lua_isnoneornil(L, 3)) {
    if (lua_type(L, 3) != LUA_TTABLE)
      return luaL_error(L, "bad argument #3 to 'activity' (table of options expected, got %s)", luaL_typename(L, 3));
    if (lua_getfield(L, 3, "xbar") != LUA_TNIL) {
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
        return luaL_error(L, "bad argument #3 to 'activity' (field 'xbar': positive integer expected, got %s)",
                          luaL_tolstring(L, -1, NULL));
      xbar = lua_tointeger(L, -1);
    }
    luaL_argcheck(L, xbar <= 1073741824, 3, "crossbar rows in 1..1073741824 expected");
  }
  lua_settop(L, 2);
  l_checknet(L, 1);
  int nb = 1, base = 3; /* the batches, pushed at base.. before any pointer is taken (l_aux.h) */
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_Integer len = luaL_len(L, 2);
    luaL_argcheck(L, len >= 1 && len <= 64, 2, "list of 1..64 batches expected");
    nb = (int)len;
    luaL_checkstack(L, nb, "activity");
    for (int i = 0; i < nb; i++) {
      lua_geti(L, 2, i + 1);
      if (!l_testopen(L, -1, NN_MT_TENSOR))
        luaL_argerror(L, 2, lua_pushfstring(L, "batch %d: neuronas.Tensor expected", i + 1));
    }
  } else {
    l_checktensor(L, 2);
    lua_pushvalue(L, 2);
  }
  const nn_tensor *batches[64];
  for (int i = 0; i < nb; i++) batches[i] = l_checktensor(L, base + i);
  nn_net *net = l_checknet(L, 1);
  size_t n = nn_net_layer_count(net);
  nn_activity_layer *ls = calloc(n ? n : 1, sizeof *ls);
  if (!ls) return luaL_error(L, "activity: out of memory");
  nn_error err;
  if (nn_activity_net(net, batches, nb, (int64_t)xbar, ls, &err) != NN_OK) {
    free(ls);
    return l_raise(L, &err);
  }
  lua_settop(L, 2);
  l_push_activity(L, net, ls, xbar);
  free(ls);
  return 1;
}

int nn_lua_open_variation(lua_State *L) {
  static const luaL_Reg fns[] = {{"variation_net", v_net},
                                 {"variation_tensor", v_tensor},
                                 {"activity_count", v_count},
                                 {"activity", nn_lua_activity},
                                 {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
  return 0;
}
