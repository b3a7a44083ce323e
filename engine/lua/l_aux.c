/* l_aux.c: boxes, checked accessors, errors and field-descriptor parsing for the bindings. */
#include "l_aux.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Registry key of the engine's live bytes when the collector was last told (l_gc_external). */
#define EXTMEM_KEY "neuronas.extmem"

void l_gc_external(lua_State *L) {
  int64_t live = nn_mem_live_bytes();
  lua_getfield(L, LUA_REGISTRYINDEX, EXTMEM_KEY);
  int64_t last = (int64_t)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (live - last >= 1024) {
    int64_t kb = (live - last) / 1024;
    /* as if kb KiB had been allocated in Lua: the collector runs steps in proportion */
    lua_gc(L, LUA_GCSTEP, kb > INT_MAX ? INT_MAX : (int)kb);
    live = nn_mem_live_bytes(); /* what the step freed lowers the base */
  } else if (live >= last) {
    return; /* small growth: keep the base, it adds up */
  }
  lua_pushinteger(L, (lua_Integer)live);
  lua_setfield(L, LUA_REGISTRYINDEX, EXTMEM_KEY);
}

l_box *l_newbox(lua_State *L, const char *mt, int nuv) {
  l_gc_external(L);
  l_box *b = lua_newuserdatauv(L, sizeof *b, nuv);
  b->p = NULL;
  luaL_setmetatable(L, mt);
  return b;
}

l_box *l_checkbox(lua_State *L, int idx, const char *mt) {
  return (l_box *)luaL_checkudata(L, idx, mt);
}

void *l_checkopen(lua_State *L, int idx, const char *mt) {
  l_box *b = l_checkbox(L, idx, mt);
  if (!b->p) luaL_error(L, "attempt to use a closed %s", mt);
  return b->p;
}

void *l_testopen(lua_State *L, int idx, const char *mt) {
  l_box *b = (l_box *)luaL_testudata(L, idx, mt);
  return b ? b->p : NULL;
}

/* Whether stack level `level` runs as a finalizer (Lua reports it as metamethod "__gc"). */
static int finalizer_at(lua_State *L, int level) {
  lua_Debug ar;
  if (!lua_getstack(L, level, &ar) || !lua_getinfo(L, "n", &ar)) return -1; /* no such level */
  return ar.namewhat && strcmp(ar.namewhat, "metamethod") == 0 && ar.name && strcmp(ar.name, "__gc") == 0;
}

void l_check_close(lua_State *L, const char *mt) {
  if (finalizer_at(L, 0) == 1) return; /* the object's own __gc */
  for (int level = 1;; level++) {
    int f = finalizer_at(L, level);
    if (f < 0) return;
    if (f)
      luaL_error(L, "cannot close a %s inside a finalizer (__gc): a call in progress may be using it; "
                    "drop the reference instead", mt);
  }
}

void l_newtype(lua_State *L, const char *mt, const luaL_Reg *meta, const luaL_Reg *methods) {
  luaL_newmetatable(L, mt);
  luaL_setfuncs(L, meta, 0);
  lua_getfield(L, -1, "__index");
  if (lua_isnil(L, -1) && methods) {
    lua_pop(L, 1);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  } else {
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

int l_raise(lua_State *L, const nn_error *err) {
  lua_pushstring(L, err->msg);
  return lua_error(L);
}

const char *l_tolstring_nonul(lua_State *L, int idx, size_t *len) {
  size_t n;
  const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &n) : NULL;
  if (!s || memchr(s, 0, n)) return NULL;
  if (len) *len = n;
  return s;
}

int l_checkoption(lua_State *L, int arg, const char *def, const char *const lst[]) {
  const char *name = def && lua_isnoneornil(L, arg) ? def : l_checkstring(L, arg, "option");
  for (int i = 0; lst[i]; i++)
    if (strcmp(lst[i], name) == 0) return i;
  return luaL_argerror(L, arg, lua_pushfstring(L, "invalid option '%s'", name));
}

const char *l_checkstring(lua_State *L, int arg, const char *what) {
  size_t n;
  const char *s = luaL_checklstring(L, arg, &n);
  const char *z = memchr(s, 0, n);
  if (z)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: string without NUL bytes expected, got a NUL at byte %d",
                                          what, (int)(z - s) + 1));
  return s;
}

int l_opttable(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  return 1;
}

const l_field *l_field_find(const l_field *fields, const char *name) {
  for (const l_field *f = fields; f->name; f++)
    if (strcmp(f->name, name) == 0) return f;
  return NULL;
}

void l_push_field_names(lua_State *L, const l_field *fields) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (const l_field *f = fields; f->name; f++) {
    if (f != fields) luaL_addstring(&b, ", ");
    luaL_addstring(&b, f->name);
  }
  luaL_pushresult(&b);
}

static void push_choices(lua_State *L, const char *const *c) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; c[i]; i++) {
    if (i) luaL_addstring(&b, "|");
    luaL_addchar(&b, '"');
    luaL_addstring(&b, c[i]);
    luaL_addchar(&b, '"');
  }
  luaL_pushresult(&b);
}

/* Pushes a description of what f accepts, e.g. "integer in 2..32". */
static void push_expected(lua_State *L, const l_field *f) {
  switch (f->type) {
  case L_F_INT:
  case L_F_INT32:
    if (f->hi >= 9e15)
      lua_pushfstring(L, "integer >= %I", (lua_Integer)f->lo);
    else
      lua_pushfstring(L, "integer in %I..%I", (lua_Integer)f->lo, (lua_Integer)f->hi);
    break;
  case L_F_U64: lua_pushliteral(L, "integer >= 0"); break;
  case L_F_NUM:
    if (f->hi >= HUGE_VAL)
      lua_pushfstring(L, "number >= %f", (lua_Number)f->lo);
    else
      lua_pushfstring(L, "number in [%f, %f]", (lua_Number)f->lo, (lua_Number)f->hi);
    break;
  case L_F_BOOL: lua_pushliteral(L, "boolean"); break;
  case L_F_ENUM:
    push_choices(L, f->choices);
    lua_pushliteral(L, "one of ");
    lua_insert(L, -2);
    lua_concat(L, 2);
    break;
  case L_F_SKIP: lua_pushliteral(L, "value"); break;
  }
}

/* Pushes the value at vidx as text for an error message ("40", "a string", "nil"). */
static void push_got(lua_State *L, int vidx) {
  if (lua_type(L, vidx) == LUA_TNUMBER || lua_type(L, vidx) == LUA_TBOOLEAN)
    luaL_tolstring(L, vidx, NULL);
  else if (lua_type(L, vidx) == LUA_TSTRING)
    lua_pushfstring(L, "\"%s\"", lua_tostring(L, vidx));
  else
    lua_pushstring(L, luaL_typename(L, vidx));
}

/* Validates the value at vidx for f; on success stores into dst+offset and returns 1.
 * On failure pushes "field 'x': E expected, got G" and returns 0. */
static int field_store(lua_State *L, const l_field *f, void *dst, int vidx) {
  char *p = (char *)dst + f->offset;
  vidx = lua_absindex(L, vidx);
  switch (f->type) {
  case L_F_INT:
  case L_F_INT32:
  case L_F_U64: {
    int isint;
    lua_Integer v = lua_tointegerx(L, vidx, &isint);
    if (!isint || lua_type(L, vidx) != LUA_TNUMBER) break;
    if (f->type == L_F_U64) {
      if (v < 0) break;
      *(uint64_t *)p = (uint64_t)v;
      return 1;
    }
    if ((double)v < f->lo || (double)v > f->hi) break;
    if (f->type == L_F_INT)
      *(int64_t *)p = (int64_t)v;
    else
      *(int *)p = (int)v;
    return 1;
  }
  case L_F_NUM: {
    if (lua_type(L, vidx) != LUA_TNUMBER) break;
    double v = lua_tonumber(L, vidx);
    if (!isfinite(v) || v < f->lo || v > f->hi) break;
    *(double *)p = v;
    return 1;
  }
  case L_F_BOOL:
    if (!lua_isboolean(L, vidx)) break;
    *(int *)p = lua_toboolean(L, vidx);
    return 1;
  case L_F_ENUM: {
    size_t n;
    const char *v = l_tolstring_nonul(L, vidx, &n);
    if (!v) break;
    for (int i = 0; f->choices[i]; i++)
      if (strlen(f->choices[i]) == n && memcmp(f->choices[i], v, n) == 0) {
        *(int *)p = i;
        return 1;
      }
    break;
  }
  case L_F_SKIP: return 1;
  }
  lua_pushfstring(L, "field '%s': ", f->name);
  push_expected(L, f);
  lua_pushliteral(L, " expected, got ");
  push_got(L, vidx);
  lua_concat(L, 4);
  return 0;
}

void l_parse_fields(lua_State *L, int idx, int argn, const l_field *fields, void *dst) {
  if (!l_opttable(L, idx)) return;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const l_field *f = NULL;
    if (l_tolstring_nonul(L, -2, NULL)) f = l_field_find(fields, lua_tostring(L, -2));
    if (!f) {
      const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                       : luaL_tolstring(L, -2, NULL);
      l_push_field_names(L, fields);
      lua_pushfstring(L, "unknown field '%s' (expected: %s)", key, lua_tostring(L, -1));
      luaL_argerror(L, argn, lua_tostring(L, -1));
    }
    if (!field_store(L, f, dst, -1)) luaL_argerror(L, argn, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}

int l_field_push(lua_State *L, const l_field *f, const void *src) {
  const char *p = (const char *)src + f->offset;
  switch (f->type) {
  case L_F_INT: lua_pushinteger(L, (lua_Integer) * (const int64_t *)p); return 1;
  case L_F_INT32: lua_pushinteger(L, *(const int *)p); return 1;
  case L_F_U64: lua_pushinteger(L, (lua_Integer) * (const uint64_t *)p); return 1;
  case L_F_NUM: lua_pushnumber(L, *(const double *)p); return 1;
  case L_F_BOOL: lua_pushboolean(L, *(const int *)p); return 1;
  case L_F_ENUM: lua_pushstring(L, f->choices[*(const int *)p]); return 1;
  case L_F_SKIP: return 0;
  }
  return 0;
}

void l_field_set(lua_State *L, const l_field *f, void *dst, int vidx, const char *what) {
  if (!field_store(L, f, dst, vidx)) luaL_error(L, "%s: %s", what, lua_tostring(L, -1));
}
