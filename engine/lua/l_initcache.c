/* l_initcache.c: the initial-weight store for Lua (docs/model.md [choice]: weights are a pure
 * function of (seed, layer path, shape), so a search's candidates share their draws).
 * nn.init_cache{max_bytes=} -> neuronas.InitCache; pass it as nn.net{..., init_cache = c}. */
#include "l_aux.h"
#include "neuronas/nn_net.h"

#define NN_MT_INIT_CACHE "neuronas.InitCache"

typedef struct icopts {
  int64_t max_bytes;
} icopts;

static const l_field ic_fields[] = {
    {"max_bytes", L_F_INT, 0, 9.2e18, offsetof(icopts, max_bytes), NULL,
     "bytes of initial weights kept (default 256 MiB)"},
    {NULL, 0, 0, 0, 0, NULL, NULL}};

/* ([opts]) -> cache */
static int ic_new(lua_State *L) {
  nn_error err;
  icopts o = {(int64_t)256 << 20};
  l_parse_fields(L, 1, 1, ic_fields, &o);
  l_box *b = l_newbox(L, NN_MT_INIT_CACHE, 0);
  if (!(b->p = nn_init_cache_new(o.max_bytes, &err))) return l_raise(L, &err);
  return 1;
}

static int ic_gc(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_INIT_CACHE);
  l_check_close(L, NN_MT_INIT_CACHE);
  nn_init_cache_free(b->p);
  b->p = NULL;
  return 0;
}

/* cache -> {hits=, misses=, entries=, bytes=, max_bytes=} */
static int ic_stats(lua_State *L) {
  nn_init_cache_stats s = nn_init_cache_stats_of(l_checkopen(L, 1, NN_MT_INIT_CACHE));
  lua_createtable(L, 0, 5);
#define SETI(name, v) (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, name))
  SETI("hits", s.hits);
  SETI("misses", s.misses);
  SETI("entries", s.entries);
  SETI("bytes", s.bytes);
  SETI("max_bytes", s.max_bytes);
#undef SETI
  return 1;
}

static int ic_tostring(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_INIT_CACHE);
  if (!b->p) {
    lua_pushliteral(L, "neuronas.InitCache (closed)");
    return 1;
  }
  nn_init_cache_stats s = nn_init_cache_stats_of(b->p);
  lua_pushfstring(L, "neuronas.InitCache (%I tensors, %I hits, %I misses)", (lua_Integer)s.entries,
                  (lua_Integer)s.hits, (lua_Integer)s.misses);
  return 1;
}

int nn_lua_open_initcache(lua_State *L) {
  static const luaL_Reg meta[] = {
      {"__gc", ic_gc}, {"__close", ic_gc}, {"__tostring", ic_tostring}, {NULL, NULL}};
  static const luaL_Reg methods[] = {{"stats", ic_stats}, {"close", ic_gc}, {NULL, NULL}};
  l_newtype(L, NN_MT_INIT_CACHE, meta, methods);
  lua_pushcfunction(L, ic_new);
  lua_setfield(L, -2, "init_cache");
  return 0;
}
