/* l_space.c: neuronas.Space, search spaces of cells for Lua (docs/model.md; docs/search.md).
 * A closed-box userdata around an nn_space (enumeration order documented in nn_space.h). */
#include <string.h>

#include "l_aux.h"
#include "neuronas/nn_space.h"

#define OPS_EXPECTED "zero, skip, conv1x1, conv3x3, conv5x5, conv7x7, avgpool3x3"


static nn_space *checkspace(lua_State *L, int idx) { return l_checkopen(L, idx, NN_MT_SPACE); }

/* __gc and __close: frees once, tolerates a closed box */
static int s_gc(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_SPACE);
  l_check_close(L, NN_MT_SPACE);
  nn_space_free(b->p);
  b->p = NULL;
  return 0;
}

/* Pushes a new space for p; raises argument argn's error when p is rejected. */
static void push_space(lua_State *L, const nn_space_params *p, int argn) {
  nn_error err;
  l_box *b = l_newbox(L, NN_MT_SPACE, 0); /* closed first: an error below leaks nothing */
  b->p = nn_space_new(p, &err);
  if (!b->p) {
    if (err.code == NN_ENOMEM) l_raise(L, &err);
    luaL_argerror(L, argn, err.msg);
  }
}

typedef struct snasnet_opts {
  int cell; /* 0 forward, 1 backward */
} snasnet_opts;

typedef struct custom_opts {
  int backward, sanity;
} custom_opts;

static const char *const cell_kinds[] = {"forward", "backward", NULL};

static const l_field snasnet_fields[] = {
    {"cell", L_F_ENUM, 0, 0, offsetof(snasnet_opts, cell), cell_kinds, "SNASNet cell type"},
    {NULL, 0, 0, 0, 0, NULL, NULL}};

static const l_field custom_fields[] = {
    {"ops", L_F_SKIP, 0, 0, 0, NULL, "list of op names"},
    {"backward", L_F_BOOL, 0, 1, offsetof(custom_opts, backward), NULL, "backward edges allowed"},
    {"sanity", L_F_BOOL, 0, 1, offsetof(custom_opts, sanity), NULL, "SNASNet's generator and sanity pass"},
    {NULL, 0, 0, 0, 0, NULL, NULL}};

/* Options table at idx -> custom space params (argument argn in errors). */
static void custom_params(lua_State *L, int idx, int argn, nn_space_params *p) {
  custom_opts o = {0, 0};
  l_parse_fields(L, idx, argn, custom_fields, &o);
  memset(p, 0, sizeof *p);
  strcpy(p->name, "custom");
  p->backward = o.backward;
  p->sanity = o.sanity;
  lua_getfield(L, idx, "ops");
  if (lua_type(L, -1) != LUA_TTABLE)
    luaL_argerror(L, argn,
                  lua_pushfstring(L, "field 'ops': list of op names expected, got %s", luaL_typename(L, -1)));
  lua_Integer n = luaL_len(L, -1);
  if (n < 1 || n > NN_OP_COUNT)
    luaL_argerror(L, argn,
                  lua_pushfstring(L, "field 'ops': 1..%d distinct op names expected, got %I items", NN_OP_COUNT, n));
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, -1, i);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, argn, lua_pushfstring(L, "field 'ops': item %I: op name expected, got %s", i,
                                             luaL_typename(L, -1)));
    int op = l_tolstring_nonul(L, -1, NULL) ? nn_op_from_name(lua_tostring(L, -1)) : -1;
    if (op < 0)
      luaL_argerror(L, argn, lua_pushfstring(L, "field 'ops': item %I: unknown op '%s' (expected " OPS_EXPECTED ")",
                                             i, lua_tostring(L, -1)));
    for (int j = 0; j < i - 1; j++)
      if (p->ops[j] == (nn_op)op)
        luaL_argerror(L, argn, lua_pushfstring(L, "field 'ops': item %I repeats '%s'", i, lua_tostring(L, -1)));
    p->ops[i - 1] = (nn_op)op;
    lua_pop(L, 1);
  }
  p->nops = (int)n;
  lua_pop(L, 1);
}

/* ("neuronas") | ("snasnet"[, {cell=}]) | ("custom", opts) | (opts) -> space */
static int s_new(lua_State *L) {
  nn_space_params p;
  nn_error err;
  if (lua_type(L, 1) == LUA_TTABLE) {
    custom_params(L, 1, 1, &p);
    push_space(L, &p, 1);
    return 1;
  }
  if (lua_type(L, 1) != LUA_TSTRING)
    return luaL_argerror(L, 1, lua_pushfstring(L, "\"neuronas\", \"snasnet\", \"custom\" or an options table expected, got %s",
                                               luaL_typename(L, 1)));
  const char *name = l_tolstring_nonul(L, 1, NULL);
  if (!name) name = "(a string holding a NUL byte)";
  if (strcmp(name, "neuronas") == 0) {
    if (!lua_isnoneornil(L, 2))
      return luaL_argerror(L, 2, lua_pushfstring(L, "no options expected for space \"neuronas\", got %s",
                                                 luaL_typename(L, 2)));
    p = nn_space_params_default();
  } else if (strcmp(name, "snasnet") == 0) {
    snasnet_opts o = {1}; /* default: backward cells, as in SNASNet's published search (docs/search.md) */
    l_parse_fields(L, 2, 2, snasnet_fields, &o);
    if (nn_space_preset("snasnet", o.cell, &p, &err) != NN_OK) return l_raise(L, &err);
  } else if (strcmp(name, "custom") == 0) {
    if (lua_type(L, 2) != LUA_TTABLE)
      return luaL_argerror(L, 2, lua_pushfstring(L, "options table with field 'ops' expected, got %s",
                                                 luaL_typename(L, 2)));
    custom_params(L, 2, 2, &p);
    push_space(L, &p, 2);
    return 1;
  } else {
    return luaL_argerror(L, 1, lua_pushfstring(L, "\"neuronas\", \"snasnet\", \"custom\" or an options table expected, got \"%s\"",
                                               name));
  }
  push_space(L, &p, 1);
  return 1;
}

static int64_t size_of(lua_State *L, nn_space *s) {
  int64_t n;
  nn_error err;
  if (nn_space_size(s, &n, &err) != NN_OK) l_raise(L, &err);
  return n;
}

/* space -> number of cells */
static int s_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)size_of(L, checkspace(L, 1)));
  return 1;
}

/* space, i -> cell number i (1-based, enumeration order) */
static int s_cell(lua_State *L) {
  nn_space *s = checkspace(L, 1);
  int64_t n = size_of(L, s);
  int isint;
  lua_Integer i = lua_tointegerx(L, 2, &isint);
  if (!isint || i < 1 || i > n) {
    if (lua_type(L, 2) == LUA_TNUMBER)
      luaL_tolstring(L, 2, NULL);
    else
      lua_pushstring(L, luaL_typename(L, 2));
    return luaL_argerror(L, 2, lua_pushfstring(L, "index 1..%I expected, got %s", (lua_Integer)n, lua_tostring(L, -1)));
  }
  nn_cell c;
  nn_error err;
  if (nn_space_cell(s, (int64_t)i - 1, &c, &err) != NN_OK) return l_raise(L, &err);
  l_pushcell(L, &c);
  return 1;
}

/* space, cell|string -> index (1-based) or nil when the cell is not in the space */
static int s_index(lua_State *L) {
  nn_cell tmp;
  l_checkbox(L, 1, NN_MT_SPACE);
  const nn_cell *c = l_tocell(L, 2, &tmp); /* may run Lua code (a table's metamethods) */
  nn_space *s = checkspace(L, 1);
  int64_t i;
  nn_error err;
  if (nn_space_index(s, c, &i, &err) != NN_OK) return l_raise(L, &err);
  if (i < 0)
    lua_pushnil(L);
  else
    lua_pushinteger(L, (lua_Integer)i + 1);
  return 1;
}

/* space, cell|string -> boolean */
static int s_contains(lua_State *L) {
  s_index(L);
  lua_pushboolean(L, !lua_isnil(L, -1));
  return 1;
}

/* iterator step: space, i -> i+1, cell (nothing after the last) */
static int s_iter(lua_State *L) {
  nn_space *s = checkspace(L, 1);
  lua_Integer c0 = luaL_checkinteger(L, 2);
  int64_t n = size_of(L, s);
  if (c0 < 0 || c0 >= n) return 0; /* also math.maxinteger, whose successor overflows */
  lua_Integer i = c0 + 1;
  nn_cell c;
  nn_error err;
  if (nn_space_cell(s, (int64_t)i - 1, &c, &err) != NN_OK) return l_raise(L, &err);
  lua_pushinteger(L, i);
  l_pushcell(L, &c);
  return 2;
}

/* space -> iterator, space, 0: `for i, cell in space:cells() do ... end` */
static int s_cells(lua_State *L) {
  checkspace(L, 1);
  lua_pushcfunction(L, s_iter);
  lua_pushvalue(L, 1);
  lua_pushinteger(L, 0);
  return 3;
}

/* space, rng[, n] -> cell (or a list of n cells); draws advance rng */
static int s_sample(lua_State *L) {
  nn_space *s = checkspace(L, 1);
  nn_rng *r = l_checkrng(L, 2);
  nn_cell c;
  nn_error err;
  if (lua_isnoneornil(L, 3)) {
    if (nn_space_sample(s, r, &c, &err) != NN_OK) return l_raise(L, &err);
    l_pushcell(L, &c);
    return 1;
  }
  lua_Integer n = luaL_checkinteger(L, 3);
  if (n < 0 || n > NN_SPACE_MAX_SAMPLES)
    luaL_argerror(L, 3, lua_pushfstring(L, "count in 0..%d expected, got %I", NN_SPACE_MAX_SAMPLES, n));
  lua_createtable(L, (int)n, 0);
  for (lua_Integer k = 1; k <= n; k++) {
    if (nn_space_sample(s, r, &c, &err) != NN_OK) return l_raise(L, &err);
    l_pushcell(L, &c);
    lua_seti(L, -2, k);
  }
  return 1;
}

/* space -> list of op names (enumeration order) */
static int s_ops(lua_State *L) {
  const nn_space_params *p = nn_space_params_get(checkspace(L, 1));
  lua_createtable(L, p->nops, 0);
  for (int i = 0; i < p->nops; i++) {
    lua_pushstring(L, nn_op_name(p->ops[i]));
    lua_seti(L, -2, i + 1);
  }
  return 1;
}

static int s_name(lua_State *L) {
  lua_pushstring(L, nn_space_params_get(checkspace(L, 1))->name);
  return 1;
}

static int s_is_backward(lua_State *L) {
  lua_pushboolean(L, nn_space_params_get(checkspace(L, 1))->backward);
  return 1;
}

static int s_has_sanity(lua_State *L) {
  lua_pushboolean(L, nn_space_params_get(checkspace(L, 1))->sanity);
  return 1;
}

/* space -> "neuronas.Space (neuronas: 729 forward cells; ops skip conv3x3 avgpool3x3)" */
static int s_tostring(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_SPACE);
  if (!b->p) {
    lua_pushliteral(L, "neuronas.Space (closed)");
    return 1;
  }
  const nn_space_params *p = nn_space_params_get(b->p);
  luaL_Buffer buf;
  luaL_buffinit(L, &buf);
  lua_pushfstring(L, "neuronas.Space (%s: %I %s cells%s; ops", p->name, (lua_Integer)size_of(L, b->p),
                  p->backward ? "backward" : "forward", p->sanity ? " after SNASNet's sanity pass" : "");
  luaL_addvalue(&buf);
  for (int i = 0; i < p->nops; i++) {
    luaL_addchar(&buf, ' ');
    luaL_addstring(&buf, nn_op_name(p->ops[i]));
  }
  luaL_addchar(&buf, ')');
  luaL_pushresult(&buf);
  return 1;
}

static int s_len(lua_State *L) { return s_size(L); }

int nn_lua_open_space(lua_State *L) {
  static const luaL_Reg meta[] = {{"__gc", s_gc},   {"__close", s_gc}, {"__tostring", s_tostring},
                                  {"__len", s_len}, {NULL, NULL}};
  static const luaL_Reg methods[] = {{"size", s_size},         {"cell", s_cell},
                                     {"index", s_index},       {"contains", s_contains},
                                     {"cells", s_cells},       {"sample", s_sample},
                                     {"ops", s_ops},           {"name", s_name},
                                     {"is_backward", s_is_backward}, {"has_sanity", s_has_sanity},
                                     {"close", s_gc},          {NULL, NULL}};
  l_newtype(L, NN_MT_SPACE, meta, methods);
  lua_pushcfunction(L, s_new);
  lua_setfield(L, -2, "space");
  return 0;
}
