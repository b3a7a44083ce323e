/* l_st.c: safetensors files of tensors for Lua (docs/interop.md).
 * nn.tensor.load(path[, name]) -> tensor (name given) or { name = tensor, ... } (every tensor);
 * nn.tensor.save(path, { name = tensor, ... }) writes F32 tensors, names in sorted order. */
#include <stdlib.h>
#include <string.h>

#include "l_aux.h"
#include "neuronas/nn_safetensors.h"

/* An open file while its tensors are read: a box, so that a Lua error closes it (__gc). */
#define NN_MT_STFILE "neuronas.SafetensorsFile"

static int stf_gc(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_STFILE);
  nn_st_close(b->p);
  b->p = NULL;
  return 0;
}

/* Reads tensor `name` of f as a new tensor box on the stack; raises on error, and for a value
 * that is not finite as float32 (a tensor from Lua never holds one; net:load's check). */
static void push_read(lua_State *L, nn_st_file *f, const char *name) {
  nn_error err;
  l_box *t = l_pushtensorbox(L);
  if (!(t->p = nn_st_read_tensor(f, name, &err))) l_raise(L, &err);
  if (nn_st_check_finite(f, name, nn_tensor_data(t->p), nn_tensor_numel(t->p), &err) != NN_OK) l_raise(L, &err);
}

/* path [, name] -> tensor | { name = tensor } */
static int st_load(lua_State *L) {
  const char *path = l_checkstring(L, 1, "path");
  const char *name = lua_isnoneornil(L, 2) ? NULL : l_checkstring(L, 2, "name");
  nn_error err;
  l_box *b = l_newbox(L, NN_MT_STFILE, 0);
  if (!(b->p = nn_st_open(path, &err))) return l_raise(L, &err);
  nn_st_file *f = b->p;
  if (name) {
    if (nn_st_find(f, name) < 0) return luaL_error(L, "bad argument #2 to 'load' (%s: no tensor '%s')", path, name);
    push_read(L, f, name);
  } else {
    lua_createtable(L, 0, (int)nn_st_count(f));
    for (size_t i = 0; i < nn_st_count(f); i++) {
      push_read(L, f, nn_st_name(f, i));
      lua_setfield(L, -2, nn_st_name(f, i));
    }
  }
  nn_st_close(f);
  b->p = NULL;
  return 1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* path, { name = tensor, ... } -> () */
static int st_save(lua_State *L) {
  const char *path = l_checkstring(L, 1, "path");
  luaL_checktype(L, 2, LUA_TTABLE);
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    if (lua_type(L, -2) != LUA_TSTRING || !*lua_tostring(L, -2))
      return luaL_error(L, "bad argument #2 to 'save' (keys must be non-empty tensor names, got %s)",
                        luaL_typename(L, -2));
    if (!l_tolstring_nonul(L, -2, NULL))
      return luaL_error(L, "bad argument #2 to 'save' (tensor names without NUL bytes expected)");
    if (!luaL_testudata(L, -1, NN_MT_TENSOR))
      return luaL_error(L, "bad argument #2 to 'save' (field '%s': neuronas.Tensor expected, got %s)",
                        lua_tostring(L, -2), luaL_typename(L, -1));
    l_checktensor(L, -1); /* raises for a closed tensor */
    lua_pop(L, 1);
    n++;
  }
  if (n == 0) return luaL_error(L, "bad argument #2 to 'save' (at least one tensor expected)");
  /* the names and entries live in a Lua-owned buffer: nothing to free if a raise happens */
  nn_st_entry *e = lua_newuserdatauv(L, n * sizeof *e, 0);
  const char **names = lua_newuserdatauv(L, n * sizeof *names, 0);
  size_t k = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    names[k++] = lua_tostring(L, -2); /* the table keeps the string alive */
    lua_pop(L, 1);
  }
  qsort(names, n, sizeof *names, cmp_str);
  for (size_t i = 0; i < n; i++) {
    lua_getfield(L, 2, names[i]);
    e[i].name = names[i];
    e[i].t = l_checktensor(L, -1);
    lua_pop(L, 1);
  }
  nn_error err;
  if (nn_st_write(path, e, n, NULL, &err) != NN_OK) return l_raise(L, &err);
  return 0;
}

int nn_lua_open_st(lua_State *L) {
  static const luaL_Reg meta[] = {{"__gc", stf_gc}, {"__close", stf_gc}, {NULL, NULL}};
  l_newtype(L, NN_MT_STFILE, meta, NULL);
  lua_pushcfunction(L, st_load);
  lua_setfield(L, -2, "tensor_load");
  lua_pushcfunction(L, st_save);
  lua_setfield(L, -2, "tensor_save");
  return 0;
}
