/* l_cell.c: neuronas.Cell, cell genotypes for Lua (docs/model.md).
 * A Cell is a full userdata holding an nn_cell value (immutable; copied, never shared). */
#include <string.h>

#include "l_cell.h"
#include "neuronas/nn_space.h"

#define OPS_EXPECTED "zero, skip, conv1x1, conv3x3, conv5x5, conv7x7, avgpool3x3"

void l_pushcell(lua_State *L, const nn_cell *c) {
  nn_cell *p = lua_newuserdatauv(L, sizeof *p, 0);
  *p = *c;
  luaL_setmetatable(L, NN_MT_CELL);
}

static nn_cell *checkcell(lua_State *L, int idx) { return luaL_checkudata(L, idx, NN_MT_CELL); }

/* Reads an op name at stack top for table parsing; 1 on success. */
static int table_op(lua_State *L, const char *where, int *op, nn_error *err) {
  if (lua_type(L, -1) != LUA_TSTRING) {
    nn_fail(err, NN_EFORMAT, "cell table: %s: op name expected, got %s", where, luaL_typename(L, -1));
    return 0;
  }
  *op = l_tolstring_nonul(L, -1, NULL) ? nn_op_from_name(lua_tostring(L, -1)) : -1;
  if (*op < 0) {
    char name[40];
    const char *s = lua_tostring(L, -1);
    size_t n = strlen(s);
    snprintf(name, sizeof name, "%.*s%s", n > 24 ? 21 : (int)n, s, n > 24 ? "..." : "");
    nn_fail(err, NN_EFORMAT, "cell table: %s: unknown op '%s' (expected " OPS_EXPECTED ")", where, name);
    return 0;
  }
  return 1;
}

/* The table at idx: {6 op names} in edge order, {12 op names} (6 forward, then the backward
 * edges 10 20 30 21 31 32), or {{4 names} x 4} (row = from). */
static int parse_table(lua_State *L, int idx, nn_cell *out, nn_error *err) {
  nn_cell c;
  char where[48];
  int op;
  memset(&c, 0, sizeof c);
  lua_Integer n = luaL_len(L, idx);
  if (n == 6 || n == 12) {
    for (int e = 0; e < n; e++) {
      int k = e % 6, back = e >= 6;
      int i = back ? NN_CELL_EDGE_TO[k] : NN_CELL_EDGE_FROM[k];
      int j = back ? NN_CELL_EDGE_FROM[k] : NN_CELL_EDGE_TO[k];
      lua_geti(L, idx, e + 1);
      snprintf(where, sizeof where, "item %d (edge %d%d)", e + 1, i, j);
      int ok = table_op(L, where, &op, err);
      lua_pop(L, 1);
      if (!ok) return 0;
      c.m[i][j] = (uint8_t)op;
    }
  } else if (n == 4) {
    for (int i = 0; i < 4; i++) {
      lua_geti(L, idx, i + 1);
      if (lua_type(L, -1) != LUA_TTABLE || luaL_len(L, -1) != 4) {
        nn_fail(err, NN_EFORMAT, "cell table: row %d: table of 4 op names expected, got %s", i + 1,
                lua_type(L, -1) == LUA_TTABLE ? "another length" : luaL_typename(L, -1));
        lua_pop(L, 1);
        return 0;
      }
      for (int j = 0; j < 4; j++) {
        lua_geti(L, -1, j + 1);
        snprintf(where, sizeof where, "row %d col %d (edge %d%d)", i + 1, j + 1, i, j);
        int ok = table_op(L, where, &op, err);
        lua_pop(L, 1);
        if (ok && i == j && op != NN_OP_ZERO) {
          nn_fail(err, NN_EFORMAT, "cell table: %s: '%s' on the diagonal, expected zero (no self-loops)",
                  where, nn_op_name((nn_op)op));
          ok = 0;
        }
        if (!ok) {
          lua_pop(L, 1);
          return 0;
        }
        c.m[i][j] = (uint8_t)op;
      }
      lua_pop(L, 1);
    }
  } else {
    nn_fail(err, NN_EFORMAT,
            "cell table: %lld item%s, expected 6 op names (edges 01 02 03 12 13 23), 12 (then 10 20 30 21 31 32) or 4 rows of 4",
            (long long)n, n == 1 ? "" : "s");
    return 0;
  }
  *out = c;
  return 1;
}

/* The genotype string at idx in form; a NUL byte is an error, not the end of the text. */
static int parse_string(lua_State *L, int idx, nn_cell_form form, nn_cell *out, nn_error *err) {
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  const char *z = memchr(s, 0, n);
  if (z) {
    nn_fail(err, NN_EFORMAT, "cell string: character %d is a NUL byte, expected a genotype without one",
            (int)(z - s) + 1);
    return 0;
  }
  return nn_cell_parse(s, form, out, err) == NN_OK;
}

int l_getcell(lua_State *L, int idx, nn_cell *out, nn_error *err) {
  idx = lua_absindex(L, idx);
  const nn_cell *c = luaL_testudata(L, idx, NN_MT_CELL);
  if (c) {
    *out = *c;
    return 1;
  }
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: return parse_string(L, idx, NN_CELL_FORM_AUTO, out, err);
  case LUA_TTABLE: return parse_table(L, idx, out, err);
  default:
    nn_fail(err, NN_EINVAL, "neuronas.Cell or cell string expected, got %s", luaL_typename(L, idx));
    return 0;
  }
}

/* Raises "bad argument #idx" for a positive idx, else the bare message (see l_cell.h). */
const nn_cell *l_tocell(lua_State *L, int idx, nn_cell *tmp) {
  nn_error err;
  const nn_cell *c = luaL_testudata(L, idx, NN_MT_CELL);
  if (c) return c;
  if (!l_getcell(L, idx, tmp, &err)) {
    if (idx > 0) luaL_argerror(L, idx, err.msg);
    luaL_error(L, "%s", err.msg); /* a pushed value (e.g. a table field), not an argument */
  }
  return tmp;
}

/* Raises "bad argument #arg to 'fname' (msg)" independent of how the function was reached
 * (nn.cell is called through its table's __call, which hides the name from the debug info). */
static int argerror(lua_State *L, int arg, const char *fname, const char *msg) {
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, fname, msg);
}

/* (text | table | cell) -> cell */
static int c_new(lua_State *L) {
  nn_cell c;
  nn_error err;
  if (lua_isnoneornil(L, 1))
    return argerror(L, 1, "cell", "cell string, table of op names or neuronas.Cell expected, got no value");
  if (!l_getcell(L, 1, &c, &err)) return argerror(L, 1, "cell", err.msg);
  l_pushcell(L, &c);
  return 1;
}

/* (callable, text | table | cell) -> cell: the __call of the nn.cell table; a C function so that
 * errors point at the user's line. */
static int c_call(lua_State *L) {
  lua_remove(L, 1);
  return c_new(L);
}

static const char *const form_choices = "\"auto\"|\"names\"|\"neuronas\"|\"snasnet\"";

/* Reads an optional form name at arg; def when absent. */
static nn_cell_form checkform(lua_State *L, int arg, const char *fname, nn_cell_form def) {
  if (lua_isnoneornil(L, arg)) return def;
  if (lua_type(L, arg) != LUA_TSTRING) {
    argerror(L, arg, fname,
             lua_pushfstring(L, "form: one of %s expected, got %s", form_choices, luaL_typename(L, arg)));
  }
  int f = l_tolstring_nonul(L, arg, NULL) ? nn_cell_form_from_name(lua_tostring(L, arg)) : -1;
  if (f < 0)
    argerror(L, arg, fname,
             lua_pushfstring(L, "form: one of %s expected, got \"%s\"", form_choices, lua_tostring(L, arg)));
  return (nn_cell_form)f;
}

/* (text[, form]) -> cell */
static int c_parse(lua_State *L) {
  nn_cell c;
  nn_error err;
  if (lua_type(L, 1) != LUA_TSTRING)
    return argerror(L, 1, "cell.parse", lua_pushfstring(L, "string expected, got %s", luaL_typename(L, 1)));
  nn_cell_form form = checkform(L, 2, "cell.parse", NN_CELL_FORM_AUTO);
  if (!parse_string(L, 1, form, &c, &err)) return argerror(L, 1, "cell.parse", err.msg);
  l_pushcell(L, &c);
  return 1;
}

/* cell -> canonical string */
static int c_tostring(lua_State *L) {
  char buf[NN_CELL_TEXT_MAX];
  nn_cell_format(checkcell(L, 1), buf, sizeof buf);
  lua_pushstring(L, buf);
  return 1;
}

/* cell[, form] -> string in that form (raises when the form cannot express the cell) */
static int c_format(lua_State *L) {
  char buf[NN_CELL_TEXT_MAX];
  nn_error err;
  const nn_cell *c = checkcell(L, 1);
  nn_cell_form form = checkform(L, 2, "format", NN_CELL_FORM_NAMES);
  if (nn_cell_format_as(c, form, buf, sizeof buf, &err) != NN_OK) return l_raise(L, &err);
  lua_pushstring(L, buf);
  return 1;
}

/* cell -> "101021" (raises when the cell is not in the NeuroNAS vocabulary) */
static int c_digits(lua_State *L) {
  char buf[NN_CELL_TEXT_MAX];
  nn_error err;
  if (nn_cell_format_as(checkcell(L, 1), NN_CELL_FORM_NEURONAS, buf, sizeof buf, &err) != NN_OK)
    return l_raise(L, &err);
  lua_pushstring(L, buf);
  return 1;
}

/* cell -> "0302 0030 3003 0000" (raises for conv5x5/conv7x7) */
static int c_snasnet(lua_State *L) {
  char buf[NN_CELL_TEXT_MAX];
  nn_error err;
  if (nn_cell_format_as(checkcell(L, 1), NN_CELL_FORM_SNASNET, buf, sizeof buf, &err) != NN_OK)
    return l_raise(L, &err);
  lua_pushstring(L, buf);
  return 1;
}

static void push_edge(lua_State *L, int from, int to, nn_op op) {
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, from);
  lua_setfield(L, -2, "from");
  lua_pushinteger(L, to);
  lua_setfield(L, -2, "to");
  lua_pushstring(L, nn_op_name(op));
  lua_setfield(L, -2, "op");
}

/* cell -> { {from=, to=, op=}, ... }: the non-zero edges, forward ones in edge order
 * 01 02 03 12 13 23, then backward ones in order 10 20 30 21 31 32. */
static int c_edges(lua_State *L) {
  const nn_cell *c = checkcell(L, 1);
  lua_newtable(L);
  int n = 0;
  for (int back = 0; back < 2; back++)
    for (int e = 0; e < 6; e++) {
      int i = back ? NN_CELL_EDGE_TO[e] : NN_CELL_EDGE_FROM[e];
      int j = back ? NN_CELL_EDGE_FROM[e] : NN_CELL_EDGE_TO[e];
      if (c->m[i][j] == NN_OP_ZERO) continue;
      push_edge(L, i, j, (nn_op)c->m[i][j]);
      lua_seti(L, -2, ++n);
    }
  return 1;
}

/* cell -> the op names of the canonical form as a list: the 6 forward edges in edge order
 * (zero included), then for a cell with a backward edge the 6 backward ones (10 20 30 21 31 32);
 * nn.cell(cell:ops()) == cell */
static int c_ops(lua_State *L) {
  const nn_cell *c = checkcell(L, 1);
  int n = nn_cell_is_forward(c) ? 6 : 12;
  lua_createtable(L, n, 0);
  for (int e = 0; e < n; e++) {
    int k = e % 6, back = e >= 6;
    int i = back ? NN_CELL_EDGE_TO[k] : NN_CELL_EDGE_FROM[k];
    int j = back ? NN_CELL_EDGE_FROM[k] : NN_CELL_EDGE_TO[k];
    lua_pushstring(L, nn_op_name((nn_op)c->m[i][j]));
    lua_seti(L, -2, e + 1);
  }
  return 1;
}

/* cell, from, to -> op name on edge from->to (nodes 0..3) */
static int c_op(lua_State *L) {
  const nn_cell *c = checkcell(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2), j = luaL_checkinteger(L, 3);
  luaL_argcheck(L, i >= 0 && i <= 3, 2, "node 0..3 expected");
  luaL_argcheck(L, j >= 0 && j <= 3, 3, "node 0..3 expected");
  lua_pushstring(L, nn_op_name((nn_op)c->m[i][j]));
  return 1;
}

/* cell[, "names"|"snasnet"] -> 4x4 table, t[i+1][j+1] = op on edge i->j (names, or SNASNet
 * codes as integers; raises when an op has no SNASNet code) */
static int c_matrix(lua_State *L) {
  const nn_cell *c = checkcell(L, 1);
  nn_cell_form form = checkform(L, 2, "matrix", NN_CELL_FORM_NAMES);
  if (form != NN_CELL_FORM_NAMES && form != NN_CELL_FORM_SNASNET)
    return argerror(L, 2, "matrix", "form: \"names\" or \"snasnet\" expected");
  if (form == NN_CELL_FORM_SNASNET) {
    char buf[NN_CELL_TEXT_MAX];
    nn_error err;
    if (nn_cell_format_as(c, form, buf, sizeof buf, &err) != NN_OK) return l_raise(L, &err);
  }
  lua_createtable(L, 4, 0);
  for (int i = 0; i < 4; i++) {
    lua_createtable(L, 4, 0);
    for (int j = 0; j < 4; j++) {
      if (form == NN_CELL_FORM_SNASNET)
        lua_pushinteger(L, nn_op_snasnet_code((nn_op)c->m[i][j]));
      else
        lua_pushstring(L, nn_op_name((nn_op)c->m[i][j]));
      lua_seti(L, -2, j + 1);
    }
    lua_seti(L, -2, i + 1);
  }
  return 1;
}

static int c_is_forward(lua_State *L) {
  lua_pushboolean(L, nn_cell_is_forward(checkcell(L, 1)));
  return 1;
}

static int c_conv_count(lua_State *L) {
  lua_pushinteger(L, nn_cell_conv_count(checkcell(L, 1)));
  return 1;
}

static int c_edge_count(lua_State *L) {
  lua_pushinteger(L, nn_cell_edge_count(checkcell(L, 1)));
  return 1;
}

/* cell -> cleaned cell, accepted: SNASNet's sanity pass (docs/model.md; nn_cell_snasnet_sanity);
 * accepted is true when edge 0->3 survives, i.e. SNASNet's generator would keep the cell */
static int c_sanity(lua_State *L) {
  nn_cell c = *checkcell(L, 1);
  int ok = nn_cell_snasnet_sanity(&c);
  l_pushcell(L, &c);
  lua_pushboolean(L, ok);
  return 2;
}

/* a, b -> boolean (only called by Lua when both are full userdata) */
static int c_eq(lua_State *L) {
  const nn_cell *a = luaL_testudata(L, 1, NN_MT_CELL), *b = luaL_testudata(L, 2, NN_MT_CELL);
  lua_pushboolean(L, a && b && nn_cell_equal(a, b));
  return 1;
}

int nn_lua_open_cell(lua_State *L) {
  static const luaL_Reg meta[] = {{"__tostring", c_tostring}, {"__eq", c_eq}, {NULL, NULL}};
  static const luaL_Reg methods[] = {{"edges", c_edges},
                                     {"op", c_op},
                                     {"ops", c_ops},
                                     {"matrix", c_matrix},
                                     {"is_forward", c_is_forward},
                                     {"conv_count", c_conv_count},
                                     {"edge_count", c_edge_count},
                                     {"digits", c_digits},
                                     {"snasnet", c_snasnet},
                                     {"format", c_format},
                                     {"sanity", c_sanity},
                                     {"tostring", c_tostring},
                                     {NULL, NULL}};
  l_newtype(L, NN_MT_CELL, meta, methods);
  /* nn.cell: a callable table, nn.cell(x) -> Cell, nn.cell.parse(text[, form]), nn.cell.ops */
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, c_parse);
  lua_setfield(L, -2, "parse");
  lua_createtable(L, NN_OP_COUNT, 0); /* the op vocabulary of docs/model.md, in nn_op order */
  for (int op = 0; op < NN_OP_COUNT; op++) {
    lua_pushstring(L, nn_op_name((nn_op)op));
    lua_seti(L, -2, op + 1);
  }
  lua_setfield(L, -2, "ops");
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, c_call);
  lua_setfield(L, -2, "__call");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "cell");
  return 0;
}
