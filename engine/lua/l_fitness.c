/* l_fitness.c: the fitness score for Lua (docs/fitness.md; docs/search.md).
 * nn.fitness(net, x, {["repeat"]=R, dataset=, seed=, cache=, threads=, activity={xbar=}, keep_memory=})
 *   -> score, diagnostics; nn.fitness_release_memory() frees what keep_memory kept
 *   (with activity, diagnostics.activity: the active crossbar reads counted from the first
 *   batch's spikes, as nn.activity gives them; docs/hardware.md "Activity-aware energy")
 * nn.fitness_cache{max_entries=, max_bytes=} -> neuronas.FitnessCache (the stage-2 prefix
 * cache: pass it as opts.cache to every candidate that shares cell A).
 * nn.fitness_many({net1, ...}, x|{x1, ..., xR}[, {threads=, cache=, ["repeat"]=, dataset=, seed=}])
 *   -> {score1, ...}, {diagnostics1, ...}: what nn.fitness gives for each net, on pthreads. */
#include <math.h>
#include <string.h>

#include "l_aux.h"
#include "l_variation.h"
#include "neuronas/nn_activity.h"
#include "neuronas/nn_fitness.h"

#define NN_MT_FITNESS_CACHE "neuronas.FitnessCache"

/* ---- neuronas.FitnessCache (a box: closed, then acquired) ---- */
static nn_fitness_cache *checkcache(lua_State *L, int idx) {
  return l_checkopen(L, idx, NN_MT_FITNESS_CACHE);
}

static const l_field cache_fields[] = {
    {"max_entries", L_F_INT, 1, 1000000, offsetof(nn_fitness_cache_params, max_entries), NULL,
     "prefix entries kept (least recently used evicted)"},
    {"max_bytes", L_F_INT, 0, 9.2e18, offsetof(nn_fitness_cache_params, max_bytes), NULL,
     "bytes kept (cell-B inputs + prefix kernels)"},
    {NULL, 0, 0, 0, 0, NULL, NULL}};

/* ([opts]) -> cache */
static int c_new(lua_State *L) {
  nn_error err;
  nn_fitness_cache_params p = nn_fitness_cache_params_default();
  l_parse_fields(L, 1, 1, cache_fields, &p);
  l_box *b = l_newbox(L, NN_MT_FITNESS_CACHE, 0);
  if (!(b->p = nn_fitness_cache_new(&p, &err))) return l_raise(L, &err);
  return 1;
}

static int c_gc(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_FITNESS_CACHE);
  l_check_close(L, NN_MT_FITNESS_CACHE);
  nn_fitness_cache_free(b->p);
  b->p = NULL;
  return 0;
}

/* cache -> {hits=, misses=, evictions=, entries=, bytes=, max_entries=, max_bytes=} */
static int c_stats(lua_State *L) {
  nn_fitness_cache_stats s = nn_fitness_cache_stats_of(checkcache(L, 1));
  lua_createtable(L, 0, 7);
#define SETI(name, v) (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, name))
  SETI("hits", s.hits);
  SETI("misses", s.misses);
  SETI("evictions", s.evictions);
  SETI("entries", s.entries);
  SETI("bytes", s.bytes);
  SETI("max_entries", s.params.max_entries);
  SETI("max_bytes", s.params.max_bytes);
#undef SETI
  return 1;
}

/* cache -> () : drops every entry (counters stay) */
static int c_clear(lua_State *L) {
  nn_fitness_cache_clear(checkcache(L, 1));
  return 0;
}

static int c_tostring(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_FITNESS_CACHE);
  if (!b->p) {
    lua_pushliteral(L, "neuronas.FitnessCache (closed)");
    return 1;
  }
  nn_fitness_cache_stats s = nn_fitness_cache_stats_of(b->p);
  lua_pushfstring(L, "neuronas.FitnessCache (%I/%I entries, %I hits, %I misses)",
                  (lua_Integer)s.entries, (lua_Integer)s.params.max_entries, (lua_Integer)s.hits,
                  (lua_Integer)s.misses);
  return 1;
}

/* ---- nn.fitness ---- */
typedef struct fopts {
  int repeat;
  uint64_t seed;
  int threads; /* fitness: threads for the one net (0: one); fitness_many: nets at once (0: one
                  per online CPU) */
  int keep_memory; /* fitness: nn_fitness_opts.keep_memory */
} fopts;

static const l_field fit_fields[] = {
    {"repeat", L_F_INT32, 1, NN_FITNESS_MAX_REPEAT, offsetof(fopts, repeat), NULL,
     "batches scored (the score is their mean)"},
    {"dataset", L_F_SKIP, 0, 0, 0, NULL, "source of batches 2..R: ds:batch(S, {seed = seed + r - 1})"},
    {"seed", L_F_U64, 0, 0, offsetof(fopts, seed), NULL, "seed of the first drawn batch"},
    {"cache", L_F_SKIP, 0, 0, 0, NULL, "a neuronas.FitnessCache (stage-2 prefix reuse)"},
    {"threads", L_F_INT32, 1, NN_FITNESS_MAX_THREADS, offsetof(fopts, threads), NULL,
     "threads for this one net (default 1; the same score for any count)"},
    {"activity", L_F_SKIP, 0, 0, 0, NULL, "{ xbar = rows }: count active crossbar reads from the first batch's spikes"},
    {"keep_memory", L_F_BOOL, 0, 0, offsetof(fopts, keep_memory), NULL,
     "keep a big net's pass buffers for the next call (nn.fitness_release_memory frees them)"},
    {NULL, 0, 0, 0, 0, NULL, NULL}};

/* opts.activity = { xbar = X } -> X (0: none). Reads the caller's table (phase 1). */
static lua_Integer activity_xbar(lua_State *L, int opts) {
  lua_Integer xbar = 0;
  if (!l_opttable(L, opts)) return 0;
  lua_getfield(L, opts, "activity");
  if (!lua_isnil(L, -1)) {
    if (!lua_istable(L, -1))
      luaL_argerror(L, opts, lua_pushfstring(L, "field 'activity': table { xbar = rows } expected, got %s",
                                             luaL_typename(L, -1)));
    lua_getfield(L, -1, "xbar");
    int ok = lua_isinteger(L, -1);
    xbar = lua_tointeger(L, -1);
    if (!ok || xbar < 1 || xbar > 1073741824)
      luaL_argerror(L, opts, "field 'activity.xbar': crossbar rows in 1..1073741824 expected");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return xbar;
}

static void push_diag(lua_State *L, const nn_fitness_diag *d) {
  lua_createtable(L, 0, 12);
#define SETN(name, v) (lua_pushnumber(L, (lua_Number)(v)), lua_setfield(L, -2, name))
#define SETI(name, v) (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, name))
  SETI("repeats", d->repeats);
  SETI("samples", d->samples);
  SETI("lif_calls", d->lif_calls);
  SETN("forward_s", d->forward_s);
  SETN("kernel_s", d->kernel_s);
  SETN("logdet_s", d->logdet_s);
  SETN("total_s", d->total_s);
  SETI("cache_hits", d->cache_hits);
  SETI("cache_misses", d->cache_misses);
  lua_createtable(L, d->repeats, 0);
  for (int r = 0; r < d->repeats; r++) {
    lua_pushnumber(L, d->scores[r]);
    lua_rawseti(L, -2, r + 1);
  }
  lua_setfield(L, -2, "scores");
  lua_createtable(L, 0, d->modules); /* firing_rates[module] = rate */
  for (int i = 0; i < d->modules; i++) {
    lua_pushnumber(L, d->module[i].firing_rate);
    lua_setfield(L, -2, d->module[i].name);
  }
  lua_setfield(L, -2, "firing_rates");
  lua_createtable(L, d->modules, 0); /* modules in first-call order */
  for (int i = 0; i < d->modules; i++) {
    const nn_fitness_module *m = &d->module[i];
    lua_createtable(L, 0, 5);
    lua_pushstring(L, m->name);
    lua_setfield(L, -2, "name");
    SETI("calls", m->calls);
    SETI("fired", m->fired);
    SETI("neurons", m->neurons);
    SETN("firing_rate", m->firing_rate);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "modules");
#undef SETN
#undef SETI
}

/* Phase 1 of nn.fitness / nn.fitness_many, the part that may run Lua code (metamethods of the
 * caller's tables, the dataset's batch method): batches for argument 2 (a tensor or a list) and
 * opts at 3 (already parsed into o). Leaves the stack at [1..3, cache|nil, dataset|nil, B]
 * where B is a table this binding owns holding the o->repeat batch tensors in order; no raw
 * pointer is kept, since a callback may close or drop any object (l_aux.h). */
static void gather_batches(lua_State *L, fopts *o) {
  int nb = 0, has_ds = 0;
  lua_settop(L, 3);
  if (l_opttable(L, 3)) {
    lua_getfield(L, 3, "cache"); /* 4 */
    if (!lua_isnil(L, 4) && !luaL_testudata(L, 4, NN_MT_FITNESS_CACHE))
      luaL_argerror(L, 3, lua_pushfstring(L, "field 'cache': neuronas.FitnessCache expected, got %s",
                                          luaL_typename(L, 4)));
    lua_getfield(L, 3, "dataset"); /* 5 */
    has_ds = !lua_isnil(L, 5);
  } else {
    lua_pushnil(L);
    lua_pushnil(L);
  }
  if (has_ds) { /* duck typing: any table or userdata whose batch field is callable */
    int t = lua_type(L, 5), ok = t == LUA_TTABLE;
    if (t == LUA_TUSERDATA && luaL_getmetafield(L, 5, "__index") != LUA_TNIL) {
      lua_pop(L, 1);
      ok = 1;
    }
    if (ok) {
      lua_getfield(L, 5, "batch");
      ok = lua_isfunction(L, -1) || luaL_getmetafield(L, -1, "__call") != LUA_TNIL;
      lua_settop(L, 5);
    }
    if (!ok)
      luaL_argerror(L, 3, lua_pushfstring(L, "field 'dataset': a value with a batch method expected, got %s",
                                          luaL_typename(L, 5)));
  }
  lua_createtable(L, o->repeat, 0); /* 6: B */
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_Integer len = luaL_len(L, 2);
    if (len < 1 || len > NN_FITNESS_MAX_REPEAT)
      luaL_argerror(L, 2, lua_pushfstring(L, "list of 1..%d batches expected, got %I entries",
                                          NN_FITNESS_MAX_REPEAT, len));
    nb = (int)len;
    for (int i = 0; i < nb; i++) {
      lua_geti(L, 2, i + 1);
      if (!luaL_testudata(L, -1, NN_MT_TENSOR))
        luaL_argerror(L, 2, lua_pushfstring(L, "batch %d: neuronas.Tensor expected, got %s", i + 1,
                                            luaL_typename(L, -1)));
      lua_rawseti(L, 6, i + 1);
    }
    if (o->repeat == 1 && nb > 1) o->repeat = nb;
    if (nb < o->repeat && !has_ds)
      luaL_argerror(L, 3, lua_pushfstring(L, "repeat=%d needs a dataset or a list of %d batches",
                                          o->repeat, o->repeat));
    if (nb > o->repeat) nb = o->repeat;
  } else {
    if (!luaL_testudata(L, 2, NN_MT_TENSOR)) luaL_typeerror(L, 2, "neuronas.Tensor or list of batches");
    lua_pushvalue(L, 2);
    lua_rawseti(L, 6, ++nb);
    if (o->repeat > 1 && !has_ds)
      luaL_argerror(L, 3, lua_pushfstring(L, "repeat=%d needs a dataset or a list of %d batches",
                                          o->repeat, o->repeat));
  }
  /* draw the missing batches: ds:batch(S, {seed = seed + r}) for batch r+1 */
  for (int r = nb; r < o->repeat; r++) {
    lua_getfield(L, 5, "batch");
    lua_pushvalue(L, 5);
    lua_rawgeti(L, 6, 1);
    lua_pushinteger(L, nn_tensor_dim(l_checktensor(L, -1), 0)); /* read at once, not kept */
    lua_remove(L, -2);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, (lua_Integer)(o->seed + (uint64_t)r));
    lua_setfield(L, -2, "seed");
    lua_call(L, 3, 1);
    if (!luaL_testudata(L, -1, NN_MT_TENSOR))
      luaL_error(L, "fitness: dataset:batch returned %s, neuronas.Tensor expected",
                 luaL_typename(L, -1));
    lua_rawseti(L, 6, r + 1);
  }
}

/* Phase 2, after every allocation: the open objects behind the gathered values (raises
 * "attempt to use a closed ..." for one a callback closed). Runs no Lua code. */
static void resolve_batches(lua_State *L, int repeat, const nn_tensor **batches,
                            nn_fitness_cache **cache) {
  *cache = lua_isnil(L, 4) ? NULL : checkcache(L, 4);
  for (int r = 0; r < repeat; r++) {
    lua_rawgeti(L, 6, r + 1);
    batches[r] = l_checktensor(L, -1);
    lua_pop(L, 1); /* still referenced by B */
  }
}

/* net, x|{x1, ..., xR}[, opts] -> score, diagnostics
 * With opts.dataset, batches 2..R are ds:batch(S, {seed = seed + r - 1}) (seed default 1). */
static int f_fitness(lua_State *L) {
  fopts o = {1, 1, 0, 0};
  nn_fitness_cache *cache = NULL;
  const nn_tensor *batches[NN_FITNESS_MAX_REPEAT];
  nn_error err;
  double score;
  luaL_checkudata(L, 1, NN_MT_NET);
  l_parse_fields(L, 3, 3, fit_fields, &o);
  lua_Integer xbar = activity_xbar(L, 3);
  gather_batches(L, &o);
  nn_fitness_diag *d = lua_newuserdatauv(L, sizeof *d, 0); /* freed by the GC, also when raising */
  nn_net *net = l_checknet(L, 1);
  /* the activity counts: layers in a userdata (freed by the GC), the counter freed here */
  size_t nl = nn_net_layer_count(net);
  nn_activity_layer *ls = xbar ? lua_newuserdatauv(L, (nl ? nl : 1) * sizeof *ls, 0) : NULL;
  resolve_batches(L, o.repeat, batches, &cache);
  nn_fitness_opts fo = {.cache = cache, .threads = o.threads, .keep_memory = o.keep_memory};
  nn_activity_counter *counter = NULL;
  if (xbar && !(counter = nn_activity_counter_new(net, nn_tensor_dim(batches[0], 0), xbar, ls, &err)))
    return l_raise(L, &err);
  fo.on_spikes = counter ? nn_activity_observe : NULL;
  fo.spikes_ud = counter;
  nn_status st = nn_fitness_eval(net, batches, o.repeat, &fo, &score, d, &err);
  if (st == NN_OK && counter) st = nn_activity_counter_status(counter, &err);
  nn_activity_counter_free(counter);
  if (st != NN_OK) return l_raise(L, &err);
  lua_pushnumber(L, score);
  push_diag(L, d);
  if (xbar) {
    l_push_activity(L, net, ls, xbar);
    lua_setfield(L, -2, "activity");
  }
  return 2;
}

static const l_field many_fields[] = {
    {"threads", L_F_INT32, 1, NN_FITNESS_MAX_THREADS, offsetof(fopts, threads), NULL,
     "worker threads (default: one per online CPU)"},
    {"repeat", L_F_INT32, 1, NN_FITNESS_MAX_REPEAT, offsetof(fopts, repeat), NULL,
     "batches scored (the score is their mean)"},
    {"dataset", L_F_SKIP, 0, 0, 0, NULL, "source of batches 2..R: ds:batch(S, {seed = seed + r - 1})"},
    {"seed", L_F_U64, 0, 0, offsetof(fopts, seed), NULL, "seed of the first drawn batch"},
    {"cache", L_F_SKIP, 0, 0, 0, NULL, "a neuronas.FitnessCache (stage-2 prefix reuse)"},
    {NULL, 0, 0, 0, 0, NULL, NULL}};

/* {net1, ..., netN}, x|{x1, ..., xR}[, opts] -> {score1, ...}, {diagnostics1, ...}
 * Each pair is what nn.fitness(net_i, x, opts) would return, in order (see nn_fitness_many). */
static int f_fitness_many(lua_State *L) {
  fopts o = {1, 1, 0, 0};
  nn_fitness_cache *cache = NULL;
  const nn_tensor *batches[NN_FITNESS_MAX_REPEAT];
  nn_error err;
  luaL_checktype(L, 1, LUA_TTABLE);
  l_parse_fields(L, 3, 3, many_fields, &o);
  lua_Integer n = luaL_len(L, 1);
  if (n < 0 || n > NN_FITNESS_MAX_NETS)
    luaL_argerror(L, 1, lua_pushfstring(L, "list of at most %d nets expected, got %I entries",
                                        NN_FITNESS_MAX_NETS, n));
  gather_batches(L, &o); /* stack: 1..6 */
  size_t cnt = (size_t)n;
  lua_createtable(L, (int)cnt, 0); /* 7: the nets, gathered before any pointer is taken */
  for (size_t i = 0; i < cnt; i++) {
    lua_geti(L, 1, (lua_Integer)i + 1);
    if (!luaL_testudata(L, -1, NN_MT_NET))
      luaL_argerror(L, 1, lua_pushfstring(L, "net %d: neuronas.Net expected, got %s", (int)i + 1,
                                          luaL_typename(L, -1)));
    lua_rawseti(L, 7, (lua_Integer)i + 1);
  }
  /* one userdata holds the net pointers, scores and diagnostics (freed by the GC on errors) */
  size_t sz = cnt * (sizeof(nn_net *) + sizeof(double) + sizeof(nn_fitness_diag));
  char *buf = lua_newuserdatauv(L, sz ? sz : 1, 0); /* 8 */
  nn_fitness_diag *d = (nn_fitness_diag *)buf;
  double *scores = (double *)(buf + cnt * sizeof *d);
  nn_net **nets = (nn_net **)(buf + cnt * (sizeof *d + sizeof *scores));
  for (size_t i = 0; i < cnt; i++) {
    lua_rawgeti(L, 7, (lua_Integer)i + 1);
    nets[i] = l_checknet(L, -1);
    lua_pop(L, 1); /* still referenced by table 7 */
  }
  resolve_batches(L, o.repeat, batches, &cache);
  nn_fitness_many_opts mo = {o.threads, cache};
  if (nn_fitness_many(nets, cnt, batches, o.repeat, &mo, scores, d, &err) != NN_OK)
    return l_raise(L, &err);
  lua_createtable(L, (int)cnt, 0);
  for (size_t i = 0; i < cnt; i++) {
    lua_pushnumber(L, scores[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_createtable(L, (int)cnt, 0);
  for (size_t i = 0; i < cnt; i++) {
    push_diag(L, &d[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 2;
}

/* () -> () : frees the pass buffers that calls with keep_memory left on this thread */
static int f_release_memory(lua_State *L) {
  (void)L;
  nn_fitness_release_memory();
  return 0;
}

int nn_lua_open_fitness(lua_State *L) {
  static const luaL_Reg meta[] = {
      {"__gc", c_gc}, {"__close", c_gc}, {"__tostring", c_tostring}, {NULL, NULL}};
  static const luaL_Reg methods[] = {
      {"stats", c_stats}, {"clear", c_clear}, {"close", c_gc}, {NULL, NULL}};
  l_newtype(L, NN_MT_FITNESS_CACHE, meta, methods);
  lua_pushcfunction(L, f_fitness);
  lua_setfield(L, -2, "fitness");
  lua_pushcfunction(L, f_fitness_many);
  lua_setfield(L, -2, "fitness_many");
  lua_pushcfunction(L, c_new);
  lua_setfield(L, -2, "fitness_cache");
  lua_pushcfunction(L, f_release_memory);
  lua_setfield(L, -2, "fitness_release_memory");
  return 0;
}
