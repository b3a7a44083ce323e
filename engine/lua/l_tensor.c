/* l_tensor.c: neuronas.Tensor, float32 N-d tensors for Lua. */
#include <math.h>
#include <string.h>

#include "l_aux.h"

nn_tensor *l_checktensor(lua_State *L, int idx) { return l_checkopen(L, idx, NN_MT_TENSOR); }

l_box *l_pushtensorbox(lua_State *L) { return l_newbox(L, NN_MT_TENSOR, 0); }

static float checkvalue(lua_State *L, int arg);

/* Reads a shape from args first..top: either one table {d1, d2, ...} or integers. */
static int read_shape(lua_State *L, int first, int64_t *shape) {
  int n = 0;
  if (lua_type(L, first) == LUA_TTABLE) {
    n = (int)luaL_len(L, first);
    luaL_argcheck(L, n <= NN_TENSOR_MAXDIM, first, "at most 8 dimensions expected");
    for (int i = 0; i < n; i++) {
      int isint;
      lua_geti(L, first, i + 1);
      lua_Integer d = lua_tointegerx(L, -1, &isint);
      if (!isint || d < 0)
        luaL_argerror(L, first, lua_pushfstring(L, "dimension %d: integer >= 0 expected", i + 1));
      shape[i] = d;
      lua_pop(L, 1);
    }
    return n;
  }
  for (int a = first; a <= lua_gettop(L); a++) {
    lua_Integer d = luaL_checkinteger(L, a);
    luaL_argcheck(L, d >= 0, a, "dimension >= 0 expected");
    luaL_argcheck(L, n < NN_TENSOR_MAXDIM, a, "at most 8 dimensions expected");
    shape[n++] = d;
  }
  return n;
}

static nn_tensor *push_new(lua_State *L, int ndim, const int64_t *shape) {
  nn_error err;
  l_box *b = l_pushtensorbox(L);
  b->p = nn_tensor_new(ndim, shape, &err);
  if (!b->p) l_raise(L, &err);
  return b->p;
}

/* (d1, d2, ... | {d1, d2, ...}) -> zero tensor */
static int t_new(lua_State *L) {
  int64_t shape[NN_TENSOR_MAXDIM];
  int n = read_shape(L, 1, shape);
  push_new(L, n, shape);
  return 1;
}

/* Walks a nested table to find its shape: follows first elements. */
static int nested_shape(lua_State *L, int idx, int64_t *shape) {
  int n = 0;
  lua_pushvalue(L, idx);
  while (lua_type(L, -1) == LUA_TTABLE) {
    if (n == NN_TENSOR_MAXDIM) luaL_argerror(L, 1, "at most 8 dimensions expected");
    shape[n++] = (int64_t)luaL_len(L, -1);
    if (shape[n - 1] == 0) break;
    lua_geti(L, -1, 1);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
  return n;
}

/* Fills data from the nested table at idx at depth d; *pos advances. Raises on ragged input. */
static void fill_nested(lua_State *L, int idx, int d, int ndim, const int64_t *shape, float *data,
                        int64_t *pos, char *path, size_t plen) {
  if (d == ndim) {
    int isnum;
    lua_Number v = lua_tonumberx(L, idx, &isnum);
    if (!isnum)
      luaL_argerror(L, 1, lua_pushfstring(L, "element %s: number expected, got %s", path,
                                          luaL_typename(L, idx)));
    if (!isfinite((float)v))
      luaL_argerror(L, 1, lua_pushfstring(L, "element %s: finite float32 value expected, got %s",
                                          path, lua_tostring(L, idx)));
    data[(*pos)++] = (float)v;
    return;
  }
  if (lua_type(L, idx) != LUA_TTABLE || (int64_t)luaL_len(L, idx) != shape[d])
    luaL_argerror(L, 1, lua_pushfstring(L, "element %s: table of %d entries expected (ragged input)",
                                        path, (int)shape[d]));
  for (int64_t i = 0; i < shape[d]; i++) {
    size_t l = strlen(path);
    snprintf(path + l, plen - l, "[%lld]", (long long)(i + 1));
    lua_geti(L, idx, i + 1);
    fill_nested(L, lua_gettop(L), d + 1, ndim, shape, data, pos, path, plen);
    lua_pop(L, 1);
    path[l] = 0;
  }
}

/* (nested table | number) -> tensor with that shape and those values */
static int t_from(lua_State *L) {
  int64_t shape[NN_TENSOR_MAXDIM];
  int n;
  int64_t pos = 0;
  char path[256] = "";
  nn_tensor *t;
  if (lua_type(L, 1) == LUA_TNUMBER) {
    float v = checkvalue(L, 1);
    t = push_new(L, 0, shape);
    nn_tensor_data(t)[0] = v;
    return 1;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  n = nested_shape(L, 1, shape);
  t = push_new(L, n, shape);
  fill_nested(L, 1, 0, n, shape, nn_tensor_data(t), &pos, path, sizeof path);
  return 1;
}

static int t_gc(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_TENSOR);
  l_check_close(L, NN_MT_TENSOR);
  nn_tensor_free(b->p);
  b->p = NULL;
  return 0;
}

static int t_tostring(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_TENSOR);
  char buf[128];
  if (!b->p) {
    lua_pushliteral(L, "neuronas.Tensor (closed)");
    return 1;
  }
  nn_tensor_shape_str(b->p, buf, sizeof buf);
  lua_pushfstring(L, "neuronas.Tensor (%s)", buf);
  return 1;
}

/* tensor -> {d1, d2, ...} */
static int t_shape(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  lua_createtable(L, nn_tensor_ndim(t), 0);
  for (int i = 0; i < nn_tensor_ndim(t); i++) {
    lua_pushinteger(L, nn_tensor_shape(t)[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* tensor, i -> size of dimension i (1-based) */
static int t_size(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  luaL_argcheck(L, i >= 1 && i <= nn_tensor_ndim(t), 2, "dimension index out of range");
  lua_pushinteger(L, nn_tensor_shape(t)[i - 1]);
  return 1;
}

static int t_numel(lua_State *L) {
  lua_pushinteger(L, nn_tensor_numel(l_checktensor(L, 1)));
  return 1;
}

static int t_dim(lua_State *L) {
  lua_pushinteger(L, nn_tensor_ndim(l_checktensor(L, 1)));
  return 1;
}

/* Argument arg as a float element: a number whose float32 value is finite (a tensor never holds
 * NaN or infinities put there from Lua: every score computed from it would be NaN). */
static float checkvalue(lua_State *L, int arg) {
  lua_Number v = luaL_checknumber(L, arg);
  float f = (float)v;
  if (!isfinite(f))
    luaL_argerror(L, arg, lua_pushfstring(L, "finite float32 value expected, got %s",
                                          lua_tostring(L, arg)));
  return f;
}

/* tensor, v -> tensor (filled) */
static int t_fill(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  float v = checkvalue(L, 2);
  nn_tensor_fill(t, v);
  lua_settop(L, 1);
  return 1;
}

static int t_sum(lua_State *L) {
  lua_pushnumber(L, nn_tensor_sum(l_checktensor(L, 1)));
  return 1;
}

static int t_mean(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  if (nn_tensor_numel(t) == 0) return luaL_error(L, "mean of an empty tensor");
  lua_pushnumber(L, nn_tensor_sum(t) / (double)nn_tensor_numel(t));
  return 1;
}

static int t_min(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  if (nn_tensor_numel(t) == 0) return luaL_error(L, "min of an empty tensor");
  lua_pushnumber(L, nn_tensor_min(t));
  return 1;
}

static int t_max(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  if (nn_tensor_numel(t) == 0) return luaL_error(L, "max of an empty tensor");
  lua_pushnumber(L, nn_tensor_max(t));
  return 1;
}

/* tensor -> independent copy */
static int t_copy(lua_State *L) {
  nn_error err;
  l_checktensor(L, 1);
  l_box *b = l_pushtensorbox(L);
  nn_tensor *t = l_checktensor(L, 1); /* resolved after the allocation (l_aux.h) */
  b->p = nn_tensor_clone(t, &err);
  if (!b->p) return l_raise(L, &err);
  return 1;
}

/* tensor, shape... -> tensor (reshaped in place) */
static int t_reshape(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  int64_t shape[NN_TENSOR_MAXDIM];
  nn_error err;
  int n = read_shape(L, 2, shape);
  if (nn_tensor_reshape(t, n, shape, &err) != NN_OK) return l_raise(L, &err);
  lua_settop(L, 1);
  return 1;
}

/* Flat offset of the 1-based multi-index in args first..first+ndim-1. */
static int64_t offset_of(lua_State *L, nn_tensor *t, int first) {
  int64_t off = 0;
  int nd = nn_tensor_ndim(t);
  for (int d = 0; d < nd; d++) {
    lua_Integer i = luaL_checkinteger(L, first + d);
    int64_t n = nn_tensor_shape(t)[d];
    if (i < 1 || i > n)
      luaL_argerror(L, first + d, lua_pushfstring(L, "index in 1..%I expected, got %I",
                                                  (lua_Integer)n, i));
    off = off * n + (i - 1);
  }
  return off;
}

/* tensor, i, j, ... -> value */
static int t_get(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  lua_pushnumber(L, nn_tensor_data(t)[offset_of(L, t, 2)]);
  return 1;
}

/* tensor, i, j, ..., v -> tensor */
static int t_set(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  int nd = nn_tensor_ndim(t);
  int64_t off = offset_of(L, t, 2);
  nn_tensor_data(t)[off] = checkvalue(L, 2 + nd);
  lua_settop(L, 1);
  return 1;
}

static void push_nested(lua_State *L, const float *data, const int64_t *shape, int nd, int64_t *pos) {
  if (nd == 0) {
    lua_pushnumber(L, data[(*pos)++]);
    return;
  }
  lua_createtable(L, (int)shape[0], 0);
  for (int64_t i = 0; i < shape[0]; i++) {
    push_nested(L, data, shape + 1, nd - 1, pos);
    lua_rawseti(L, -2, i + 1);
  }
}

/* tensor -> nested table */
static int t_totable(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  int64_t pos = 0;
  push_nested(L, nn_tensor_data(t), nn_tensor_shape(t), nn_tensor_ndim(t), &pos);
  return 1;
}

/* tensor, rng[, lo=0, hi=1] -> tensor */
static int t_uniform(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  nn_rng *r = l_checkrng(L, 2);
  lua_Number lo = luaL_optnumber(L, 3, 0), hi = luaL_optnumber(L, 4, 1);
  /* float32 draws lo + (hi - lo) * u: every term must be finite, or the tensor fills with NaN */
  luaL_argcheck(L, isfinite((float)lo), 3, "finite float32 lo expected");
  luaL_argcheck(L, isfinite((float)hi), 4, "finite float32 hi expected");
  luaL_argcheck(L, lo <= hi, 4, "hi >= lo expected");
  luaL_argcheck(L, isfinite((float)hi - (float)lo), 4, "hi - lo within float32 range expected");
  nn_tensor_uniform(t, r, (float)lo, (float)hi);
  lua_settop(L, 1);
  return 1;
}

/* tensor, rng[, mean=0, std=1] -> tensor */
static int t_normal(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  nn_rng *r = l_checkrng(L, 2);
  lua_Number m = luaL_optnumber(L, 3, 0), s = luaL_optnumber(L, 4, 1);
  luaL_argcheck(L, isfinite((float)m), 3, "finite float32 mean expected");
  luaL_argcheck(L, s >= 0 && isfinite((float)s), 4, "finite std >= 0 expected");
  nn_tensor_normal(t, r, (float)m, (float)s);
  lua_settop(L, 1);
  return 1;
}

static int64_t flat_index(lua_State *L, nn_tensor *t, int idx) {
  lua_Integer i = lua_tointeger(L, idx);
  if (i < 1 || i > nn_tensor_numel(t))
    luaL_error(L, "tensor index %I out of range 1..%I", i, (lua_Integer)nn_tensor_numel(t));
  return i - 1;
}

/* t[i]: flat 1-based element; t.name: method */
static int t_index(lua_State *L) {
  l_checkbox(L, 1, NN_MT_TENSOR); /* a metamethod checks its self like a method does */
  if (lua_isinteger(L, 2)) {
    nn_tensor *t = l_checktensor(L, 1);
    lua_pushnumber(L, nn_tensor_data(t)[flat_index(L, t, 2)]);
    return 1;
  }
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "methods");
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

/* t[i] = v: flat 1-based element */
static int t_newindex(lua_State *L) {
  nn_tensor *t = l_checktensor(L, 1);
  if (!lua_isinteger(L, 2)) return luaL_error(L, "tensor index must be an integer");
  float v = checkvalue(L, 3);
  nn_tensor_data(t)[flat_index(L, t, 2)] = v;
  return 0;
}

static int t_len(lua_State *L) { return t_numel(L); }

int nn_lua_open_tensor(lua_State *L) {
  static const luaL_Reg meta[] = {{"__gc", t_gc},       {"__close", t_gc},
                                  {"__tostring", t_tostring}, {"__len", t_len},
                                  {"__index", t_index}, {"__newindex", t_newindex},
                                  {NULL, NULL}};
  static const luaL_Reg methods[] = {
      {"shape", t_shape}, {"size", t_size},       {"numel", t_numel},     {"dim", t_dim},
      {"fill", t_fill},   {"sum", t_sum},         {"mean", t_mean},       {"min", t_min},
      {"max", t_max},     {"copy", t_copy},       {"reshape", t_reshape}, {"get", t_get},
      {"set", t_set},     {"totable", t_totable}, {"uniform", t_uniform}, {"normal", t_normal},
      {"close", t_gc},    {NULL, NULL}};
  l_newtype(L, NN_MT_TENSOR, meta, NULL);
  luaL_getmetatable(L, NN_MT_TENSOR);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "methods");
  lua_pop(L, 1);
  lua_pushcfunction(L, t_new);
  lua_setfield(L, -2, "tensor");
  lua_pushcfunction(L, t_from);
  lua_setfield(L, -2, "tensor_from");
  return 0;
}
