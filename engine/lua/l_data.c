/* l_data.c: neuronas.Dataset, the datasets of nn_data.h for Lua (docs/data.md).
 * nn.data.open{...} -> Dataset; ds:batch, ds:iter, ds:split; nn.data.probe(path) -> ok, why. */
#include <string.h>

#include "l_aux.h"
#include "neuronas/nn_data.h"

#define NN_MT_DATAITER "neuronas.DataIter"

static const char *const formats[] = {"idx", "cifar10", "cifar100", "npy", NULL};
static const char *const splits[] = {"train", "test", NULL};
static const char *const layouts[] = {"nchw", "nhwc", NULL};
static const char *const labelkinds[] = {"fine", "coarse", NULL};

typedef struct open_opts {
  int format, split, layout, label, classes;
  int64_t limit;
} open_opts;

static const l_field open_fields[] = {
    {"format", L_F_ENUM, 0, 0, offsetof(open_opts, format), formats, "file format"},
    {"path", L_F_SKIP, 0, 0, 0, NULL, "folder, file or archive"},
    {"labels", L_F_SKIP, 0, 0, 0, NULL, "labels file (IDX/npy)"},
    {"split", L_F_ENUM, 0, 0, offsetof(open_opts, split), splits, "which split"},
    {"layout", L_F_ENUM, 0, 0, offsetof(open_opts, layout), layouts, "npy axis order"},
    {"label", L_F_ENUM, 0, 0, offsetof(open_opts, label), labelkinds, "CIFAR-100 labels"},
    {"classes", L_F_INT32, 1, 1 << 24, offsetof(open_opts, classes), NULL, "class count"},
    {"limit", L_F_INT, 1, 9.2e18, offsetof(open_opts, limit), NULL, "first records only"},
    {"name", L_F_SKIP, 0, 0, 0, NULL, "dataset name"},
    {"source", L_F_SKIP, 0, 0, 0, NULL, "where the data came from"},
    {"mean", L_F_SKIP, 0, 0, 0, NULL, "per-channel mean"},
    {"std", L_F_SKIP, 0, 0, 0, NULL, "per-channel std"},
    {NULL, 0, 0, 0, 0, NULL, NULL}};

static nn_data *checkds(lua_State *L, int idx) { return l_checkopen(L, idx, NN_MT_DATASET); }

/* Optional string field k of the table at idx (error names the field). */
static const char *optstr(lua_State *L, int idx, int argn, const char *k) {
  const char *s = NULL;
  lua_getfield(L, idx, k);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, argn, lua_pushfstring(L, "field '%s': string expected, got %s", k,
                                             luaL_typename(L, -1)));
    if (!l_tolstring_nonul(L, -1, NULL))
      luaL_argerror(L, argn, lua_pushfstring(L, "field '%s': string without NUL bytes expected", k));
    s = lua_tostring(L, -1);
  }
  lua_pop(L, 1); /* the string stays alive: it is referenced by the options table */
  return s;
}

/* Reads field k (a number, or a list of c numbers) into v; 0 when absent. */
static int optnums(lua_State *L, int idx, int argn, const char *k, int c, double *v) {
  lua_getfield(L, idx, k);
  int t = lua_type(L, -1);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (t == LUA_TNUMBER) {
    for (int i = 0; i < c; i++) v[i] = lua_tonumber(L, -1);
  } else if (t == LUA_TTABLE && luaL_len(L, -1) == c) {
    for (int i = 0; i < c; i++) {
      lua_geti(L, -1, i + 1);
      if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_argerror(L, argn, lua_pushfstring(L, "field '%s': a list of %d numbers expected", k, c));
      v[i] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  } else {
    luaL_argerror(L, argn, lua_pushfstring(L, "field '%s': a number or a list of %d numbers expected", k, c));
  }
  lua_pop(L, 1);
  return 1;
}

/* {format=, path=, ...} -> Dataset */
static int d_open(lua_State *L) {
  open_opts o = {-1, 0, 0, 0, 0, 0};
  luaL_checktype(L, 1, LUA_TTABLE);
  l_parse_fields(L, 1, 1, open_fields, &o);
  if (o.format < 0)
    luaL_argerror(L, 1, "field 'format': one of \"idx\"|\"cifar10\"|\"cifar100\"|\"npy\" expected, "
                        "got nil");
  nn_data_params p = nn_data_params_default();
  p.format = (nn_data_format)o.format;
  p.path = optstr(L, 1, 1, "path");
  if (!p.path) luaL_argerror(L, 1, "field 'path': string expected, got nil");
  p.labels = optstr(L, 1, 1, "labels");
  p.name = optstr(L, 1, 1, "name");
  p.source = optstr(L, 1, 1, "source");
  p.split = (nn_data_split_kind)o.split;
  p.layout = (nn_data_layout)o.layout;
  p.label = (nn_data_label_kind)o.label;
  p.classes = o.classes;
  p.limit = o.limit;
  nn_error err;
  l_box *b = l_newbox(L, NN_MT_DATASET, 0);
  b->p = nn_data_open(&p, &err);
  if (!b->p) return l_raise(L, &err);
  int c = nn_data_channels(b->p);
  double mean[64], std[64];
  for (int i = 0; i < c; i++) {
    mean[i] = nn_data_mean(b->p, i);
    std[i] = nn_data_std(b->p, i);
  }
  /* only what the caller gave is checked here (the dataset's own values were checked when it
   * was read); set_norm then checks that no normalised value leaves +-NN_DATA_MAX_VALUE */
  int gm = optnums(L, 1, 1, "mean", c, mean), gs = optnums(L, 1, 1, "std", c, std);
  for (int i = 0; i < c; i++) {
    if (gm && !(mean[i] >= -NN_DATA_MAX_VALUE && mean[i] <= NN_DATA_MAX_VALUE))
      luaL_argerror(L, 1, "field 'mean': finite numbers expected");
    if (gs && !(std[i] > 0 && std[i] <= NN_DATA_MAX_VALUE))
      luaL_argerror(L, 1, "field 'std': positive numbers expected");
  }
  if ((gm || gs) && nn_data_set_norm(b->p, mean, std, &err) != NN_OK)
    luaL_argerror(L, 1, lua_pushfstring(L, "%s: %s", gm && gs ? "fields 'mean' and 'std'" : gm ? "field 'mean'"
                                                                                              : "field 'std'", err.msg));
  return 1;
}

/* (path[, format]) -> true | false, why  (never raises for bad data) */
static int d_probe(lua_State *L) {
  const char *path = l_checkstring(L, 1, "path");
  int fmt = -1;
  if (!lua_isnoneornil(L, 2)) fmt = l_checkoption(L, 2, NULL, formats);
  nn_error err;
  if (nn_data_probe(path, fmt, &err) == NN_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_pushstring(L, err.msg);
  return 2;
}

static int d_gc(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_DATASET);
  l_check_close(L, NN_MT_DATASET);
  nn_data_free(b->p);
  b->p = NULL;
  return 0;
}

static int d_tostring(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_DATASET);
  if (!b->p) {
    lua_pushliteral(L, "neuronas.Dataset (closed)");
    return 1;
  }
  nn_data *d = b->p;
  lua_pushfstring(L, "neuronas.Dataset (%s, %I x %dx%dx%d, %d classes)", nn_data_name(d),
                  (lua_Integer)nn_data_size(d), nn_data_channels(d), nn_data_height(d),
                  nn_data_width(d), nn_data_classes(d));
  return 1;
}

static int d_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)nn_data_size(checkds(L, 1)));
  return 1;
}

/* Pushes the decoded x, y of records idx[0..n-1]. */
static int push_batch(lua_State *L, const nn_data *d, const int64_t *idx, int64_t n,
                      const nn_data_aug *aug, const nn_rng *rng) {
  nn_error err;
  l_box *bx = l_pushtensorbox(L);
  bx->p = nn_tensor_new4(4, n, nn_data_channels(d), nn_data_height(d), nn_data_width(d), &err);
  if (!bx->p) return l_raise(L, &err);
  l_box *by = l_pushtensorbox(L);
  by->p = nn_tensor_new4(1, n, 0, 0, 0, &err);
  if (!by->p || nn_data_decode(d, idx, n, aug, rng, bx->p, by->p, &err) != NN_OK)
    return l_raise(L, &err);
  return 2;
}

/* Reads an `augment` value (boolean or {crop=, pad=, flip=}) at vidx into *a; returns on/off. */
typedef struct aug_opts {
  int crop, pad, flip;
} aug_opts;
static const l_field aug_fields[] = {
    {"crop", L_F_BOOL, 0, 0, offsetof(aug_opts, crop), NULL, "random crop"},
    {"pad", L_F_INT32, 0, 1024, offsetof(aug_opts, pad), NULL, "zero padding (pixels)"},
    {"flip", L_F_BOOL, 0, 0, offsetof(aug_opts, flip), NULL, "random horizontal flip"},
    {NULL, 0, 0, 0, 0, NULL, NULL}};

static int read_aug(lua_State *L, int optidx, int argn, nn_data_aug *a) {
  aug_opts o = {1, -1, 1};
  int on = 0;
  lua_getfield(L, optidx, "augment");
  if (lua_isboolean(L, -1)) {
    on = lua_toboolean(L, -1);
  } else if (lua_istable(L, -1)) {
    l_parse_fields(L, -1, argn, aug_fields, &o);
    on = 1;
  } else if (!lua_isnil(L, -1)) {
    luaL_argerror(L, argn, lua_pushfstring(L, "field 'augment': boolean or table expected, got %s",
                                           luaL_typename(L, -1)));
  }
  lua_pop(L, 1);
  a->crop = o.crop;
  a->pad = o.pad;
  a->flip = o.flip;
  return on;
}

typedef struct batch_opts {
  uint64_t seed;
  int64_t offset;
  int has_seed;
} batch_opts;
static const l_field batch_fields[] = {
    {"seed", L_F_U64, 0, 0, offsetof(batch_opts, seed), NULL, "shuffle seed"},
    {"offset", L_F_INT, 0, 9.2e18, offsetof(batch_opts, offset), NULL, "first position"},
    {"augment", L_F_SKIP, 0, 0, 0, NULL, "crop/flip"},
    {NULL, 0, 0, 0, 0, NULL, NULL}};

/* ds, n[, {seed=, offset=, augment=}] -> x (n x C x H x W), y (n class indices as floats) */
static int d_batch(lua_State *L) {
  nn_data *d = checkds(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  int64_t size = nn_data_size(d);
  luaL_argcheck(L, n >= 1, 2, "batch size >= 1 expected");
  batch_opts o = {0, 0, 0};
  nn_data_aug aug;
  int augment = 0;
  if (l_opttable(L, 3)) {
    l_parse_fields(L, 3, 3, batch_fields, &o);
    lua_getfield(L, 3, "seed");
    o.has_seed = !lua_isnil(L, -1);
    lua_pop(L, 1);
    augment = read_aug(L, 3, 3, &aug);
  }
  if (n > size || o.offset > size - n)
    return luaL_argerror(L, 2, lua_pushfstring(L, "offset + n <= %I expected, got %I",
                                               (lua_Integer)size, (lua_Integer)(o.offset + n)));
  /* the index buffer is a userdata, so an error below cannot leak it */
  int64_t *idx = lua_newuserdatauv(L, (size_t)(o.has_seed ? size : n) * sizeof *idx, 0);
  nn_rng base = nn_rng_seed(o.seed);
  base = nn_rng_split_u64(&base, 0);
  if (o.has_seed) {
    nn_data_permutation_prefix(size, nn_rng_split(&base, "order"), idx, o.offset + n);
    memmove(idx, idx + o.offset, (size_t)n * sizeof *idx);
  } else {
    for (int64_t i = 0; i < n; i++) idx[i] = o.offset + i;
  }
  nn_rng ar = nn_rng_split(&base, "augment");
  return push_batch(L, d, idx, n, augment ? &aug : NULL, &ar);
}

typedef struct iter_opts {
  int64_t batch;
  int shuffle, drop_last;
  uint64_t seed, epoch;
} iter_opts;
static const l_field iter_fields[] = {
    {"batch", L_F_INT, 1, 9.2e18, offsetof(iter_opts, batch), NULL, "batch size"},
    {"shuffle", L_F_BOOL, 0, 0, offsetof(iter_opts, shuffle), NULL, "shuffle each epoch"},
    {"seed", L_F_U64, 0, 0, offsetof(iter_opts, seed), NULL, "shuffle/augment seed"},
    {"epoch", L_F_U64, 0, 0, offsetof(iter_opts, epoch), NULL, "epoch number (new order)"},
    {"augment", L_F_SKIP, 0, 0, 0, NULL, "crop/flip"},
    {"drop_last", L_F_BOOL, 0, 0, offsetof(iter_opts, drop_last), NULL, "skip a short last batch"},
    {NULL, 0, 0, 0, 0, NULL, NULL}};

static int it_gc(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_DATAITER);
  nn_data_iter_free(b->p);
  b->p = NULL;
  return 0;
}

static int it_tostring(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_DATAITER);
  if (!b->p)
    lua_pushliteral(L, "neuronas.DataIter (finished)");
  else
    lua_pushfstring(L, "neuronas.DataIter (%I batches)", (lua_Integer)nn_data_iter_batches(b->p));
  return 1;
}

/* iterator closure: () -> x, y | nil */
static int it_next(lua_State *L) {
  l_box *b = l_checkbox(L, lua_upvalueindex(1), NN_MT_DATAITER);
  if (!b->p) return 0;
  nn_tensor *x, *y;
  nn_error err;
  l_box *bx = l_pushtensorbox(L);
  l_box *by = l_pushtensorbox(L);
  if (nn_data_iter_next(b->p, &x, &y, &err) != NN_OK) return l_raise(L, &err);
  if (!x) {
    nn_data_iter_free(b->p);
    b->p = NULL;
    return 0;
  }
  bx->p = x;
  by->p = y;
  return 2;
}

/* ds[, {batch=64, shuffle=true, seed=0, epoch=0, augment=false, drop_last=false}] -> iterator */
static int d_iter(lua_State *L) {
  nn_data *d = checkds(L, 1);
  iter_opts o = {64, 1, 0, 0, 0};
  nn_data_iter_params p = nn_data_iter_params_default();
  if (l_opttable(L, 2)) {
    l_parse_fields(L, 2, 2, iter_fields, &o);
    p.augment = read_aug(L, 2, 2, &p.aug);
  } else {
    p.augment = 0;
  }
  p.batch = o.batch;
  p.shuffle = o.shuffle;
  p.drop_last = o.drop_last;
  p.seed = o.seed;
  p.epoch = o.epoch;
  nn_error err;
  l_box *b = l_newbox(L, NN_MT_DATAITER, 0);
  b->p = nn_data_iter_new(d, &p, &err);
  if (!b->p) return l_raise(L, &err);
  lua_pushcclosure(L, it_next, 1);
  return 1;
}

typedef struct split_opts {
  double validation;
  uint64_t seed;
} split_opts;
static const l_field split_fields[] = {
    {"validation", L_F_NUM, 0, 1, offsetof(split_opts, validation), NULL, "fraction"},
    {"seed", L_F_U64, 0, 0, offsetof(split_opts, seed), NULL, "shuffle seed"},
    {NULL, 0, 0, 0, 0, NULL, NULL}};

/* ds[, {validation=0.1, seed=0}] -> train, validation (views sharing the records) */
static int d_split(lua_State *L) {
  nn_data *d = checkds(L, 1);
  split_opts o = {0.1, 0};
  l_parse_fields(L, 2, 2, split_fields, &o);
  nn_error err;
  l_box *bt = l_newbox(L, NN_MT_DATASET, 0);
  l_box *bv = l_newbox(L, NN_MT_DATASET, 0);
  nn_data *t, *v;
  if (nn_data_split(d, o.validation, o.seed, &t, &v, &err) != NN_OK) {
    lua_pushfstring(L, "%s", err.msg);
    return luaL_argerror(L, 2, lua_tostring(L, -1));
  }
  bt->p = t;
  bv->p = v;
  return 2;
}

/* ds, i (1-based) -> raw pixels (a string of C*H*W bytes, NCHW; a table of numbers for a float
 * store), label (0-based class index) */
static int d_record(lua_State *L) {
  nn_data *d = checkds(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  luaL_argcheck(L, i >= 1 && i <= nn_data_size(d), 2, "record index out of range");
  size_t img = (size_t)nn_data_channels(d) * nn_data_height(d) * nn_data_width(d);
  if (!nn_data_is_float(d)) {
    lua_pushlstring(L, (const char *)nn_data_pixels(d, i - 1), img);
  } else {
    const float *f = nn_data_pixels_f32(d, i - 1);
    lua_createtable(L, (int)img, 0);
    for (size_t k = 0; k < img; k++) {
      lua_pushnumber(L, f[k]);
      lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
  }
  lua_pushinteger(L, nn_data_label(d, i - 1));
  return 2;
}

/* ds -> {label0, label1, ...} (0-based class indices of all records, in order) */
static int d_labels(lua_State *L) {
  nn_data *d = checkds(L, 1);
  int64_t n = nn_data_size(d);
  lua_createtable(L, n > 1 << 26 ? 0 : (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    lua_pushinteger(L, nn_data_label(d, i));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static void push_per_channel(lua_State *L, nn_data *d, double (*f)(const nn_data *, int)) {
  int c = nn_data_channels(d);
  lua_createtable(L, c, 0);
  for (int i = 0; i < c; i++) {
    lua_pushnumber(L, f(d, i));
    lua_rawseti(L, -2, i + 1);
  }
}

/* ds, key -> method or attribute (size, shape, channels, height, width, classes, mean, std, name,
 * path, source, float) */
static int d_index(lua_State *L) {
  l_checkbox(L, 1, NN_MT_DATASET); /* a metamethod checks its self like a method does */
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  const char *k = l_tolstring_nonul(L, 2, NULL);
  if (!k) return 0;
  nn_data *d = checkds(L, 1);
  if (strcmp(k, "size") == 0)
    lua_pushinteger(L, (lua_Integer)nn_data_size(d));
  else if (strcmp(k, "classes") == 0)
    lua_pushinteger(L, nn_data_classes(d));
  else if (strcmp(k, "channels") == 0)
    lua_pushinteger(L, nn_data_channels(d));
  else if (strcmp(k, "height") == 0)
    lua_pushinteger(L, nn_data_height(d));
  else if (strcmp(k, "width") == 0)
    lua_pushinteger(L, nn_data_width(d));
  else if (strcmp(k, "shape") == 0) {
    lua_createtable(L, 3, 0);
    lua_pushinteger(L, nn_data_channels(d));
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, nn_data_height(d));
    lua_rawseti(L, -2, 2);
    lua_pushinteger(L, nn_data_width(d));
    lua_rawseti(L, -2, 3);
  } else if (strcmp(k, "mean") == 0)
    push_per_channel(L, d, nn_data_mean);
  else if (strcmp(k, "std") == 0)
    push_per_channel(L, d, nn_data_std);
  else if (strcmp(k, "name") == 0)
    lua_pushstring(L, nn_data_name(d));
  else if (strcmp(k, "path") == 0)
    lua_pushstring(L, nn_data_path(d));
  else if (strcmp(k, "source") == 0)
    lua_pushstring(L, nn_data_source(d));
  else if (strcmp(k, "float") == 0)
    lua_pushboolean(L, nn_data_is_float(d));
  else
    return 0;
  return 1;
}

int nn_lua_open_data(lua_State *L) {
  static const luaL_Reg methods[] = {{"batch", d_batch},   {"iter", d_iter},   {"split", d_split},
                                     {"record", d_record}, {"labels", d_labels}, {"close", d_gc},
                                     {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", d_gc},
                                  {"__close", d_gc},
                                  {"__tostring", d_tostring},
                                  {"__len", d_len},
                                  {NULL, NULL}};
  static const luaL_Reg itmeta[] = {
      {"__gc", it_gc}, {"__close", it_gc}, {"__tostring", it_tostring}, {NULL, NULL}};
  l_newtype(L, NN_MT_DATAITER, itmeta, NULL);
  luaL_newmetatable(L, NN_MT_DATASET);
  luaL_setfuncs(L, meta, 0);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_pushcclosure(L, d_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"open", d_open}, {"probe", d_probe}, {NULL, NULL}};
  luaL_newlib(L, fns);
  lua_setfield(L, -2, "data");
  return 0;
}
