/* l_net.c: neuronas.Net, cell-based spiking networks for Lua (docs/model.md).
 * nn.net{...} builds a net from a preset plus overrides; methods: layers, params, forward,
 * clone, weight_bits, firing_rates, config, conv_mode, save, load, close. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "l_cell.h"
#include "l_net.h"
#include "neuronas/nn_interop.h"

nn_net *l_checknet(lua_State *L, int idx) { return l_checkopen(L, idx, NN_MT_NET); }

l_box *l_pushnetbox(lua_State *L) { return l_newbox(L, NN_MT_NET, 0); }

static int argerror(lua_State *L, int arg, const char *fname, const char *msg) {
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, fname, msg);
}

/* The option fields of nn.net (docs/model.md); preset, cellA, cellB and input are read by hand. */
#define F(name, type, lo, hi, field, doc) {name, type, lo, hi, offsetof(nn_net_params, field), NULL, doc}
static const l_field NET_FIELDS[] = {
    {"preset", L_F_SKIP, 0, 0, 0, NULL, "cifar10|cifar100|tinyimagenet|fashion-mnist"},
    {"cellA", L_F_SKIP, 0, 0, 0, NULL, "cell A genotype"},
    {"cellB", L_F_SKIP, 0, 0, 0, NULL, "cell B genotype (default: cellA)"},
    F("seed", L_F_U64, 0, 0, seed, "weight streams keyed by (seed, layer path)"),
    F("channels", L_F_INT, 1, NN_NET_MAX_CHANNELS, channels, "C: cell A width"),
    F("timesteps", L_F_INT, 1, NN_NET_MAX_TIMESTEPS, timesteps, "T"),
    F("tau", L_F_NUM, 0, HUGE_VAL, tau, "LIF time constant"),
    F("threshold", L_F_NUM, 0, HUGE_VAL, threshold, "LIF threshold"),
    F("second_pool", L_F_INT, 1, 4096, second_pool, "p"),
    F("fc_width", L_F_INT, 1, 1048576, fc_width, "F"),
    F("classes", L_F_INT, 1, 1048576, classes, "classes"),
    F("cluster", L_F_INT, 1, 1024, cluster, "outputs per class (boost)"),
    {"input", L_F_SKIP, 0, 0, 0, NULL, "{C, H, W}"},
    F("stem_stride", L_F_INT, 1, 8, stem_stride, "stem conv stride"),
    {"init_cache", L_F_SKIP, 0, 0, 0, NULL, "a neuronas.InitCache (initial weights shared across nets)"},
    {"quantizer", L_F_SKIP, 0, 0, 0, NULL, "a neuronas.Quantizer: the net built quantized, as q:apply would make it"},
    {NULL, L_F_SKIP, 0, 0, 0, NULL, NULL}};
#undef F

static void get_cell_field(lua_State *L, int opts, const char *key, nn_cell *dst, int *given) {
  nn_error err;
  *given = 0;
  if (lua_getfield(L, opts, key) != LUA_TNIL) {
    if (!l_getcell(L, -1, dst, &err))
      argerror(L, 1, "net", lua_pushfstring(L, "field '%s': %s", key, err.msg));
    *given = 1;
  }
  lua_pop(L, 1);
}

/* ({preset=, cellA=, cellB=, seed=, ...}) -> net */
static int net_new(lua_State *L) {
  nn_net_params p = nn_net_params_default();
  nn_error err;
  nn_init_cache *ic = NULL;
  nn_quant_params qp;
  int ga = 0, gb = 0, quantized = 0;
  if (!lua_isnoneornil(L, 1) && lua_type(L, 1) != LUA_TTABLE)
    return argerror(L, 1, "net", lua_pushfstring(L, "table expected, got %s", luaL_typename(L, 1)));
  if (lua_istable(L, 1)) {
    if (lua_getfield(L, 1, "preset") != LUA_TNIL) {
      const char *name = l_tolstring_nonul(L, -1, NULL);
      if (!name || nn_net_params_preset(&p, name, &err) != NN_OK) {
        lua_pushfstring(L, "field 'preset': one of \"cifar10\"|\"cifar100\"|\"tinyimagenet\"|\"fashion-mnist\" expected, got ");
        if (name) lua_pushfstring(L, "\"%s\"", name);
        else lua_pushstring(L, luaL_typename(L, -2));
        lua_concat(L, 2);
        return argerror(L, 1, "net", lua_tostring(L, -1));
      }
    }
    lua_pop(L, 1);
    l_parse_fields(L, 1, 1, NET_FIELDS, &p);
    get_cell_field(L, 1, "cellA", &p.cell_a, &ga);
    get_cell_field(L, 1, "cellB", &p.cell_b, &gb);
    if (ga && !gb) p.cell_b = p.cell_a;
    if (lua_getfield(L, 1, "input") != LUA_TNIL) {
      int64_t v[3];
      int ok = lua_type(L, -1) == LUA_TTABLE && luaL_len(L, -1) == 3;
      for (int i = 0; ok && i < 3; i++) {
        int isint;
        lua_geti(L, -1, i + 1);
        lua_Integer x = lua_tointegerx(L, -1, &isint);
        ok = isint && lua_type(L, -1) == LUA_TNUMBER && x >= 1 && x <= 4096;
        v[i] = x;
        lua_pop(L, 1);
      }
      if (!ok) return argerror(L, 1, "net", "field 'input': {C, H, W} with integers in 1..4096 expected");
      p.in_ch = v[0], p.in_h = v[1], p.in_w = v[2];
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "quantizer") != LUA_TNIL) {
      /* a Quantizer userdata starts with its nn_quant_params (l_quant.c): copied, a plain value */
      const nn_quant_params *q = luaL_testudata(L, -1, NN_MT_QUANTIZER);
      if (!q) return argerror(L, 1, "net", "field 'quantizer': neuronas.Quantizer expected");
      qp = *q, quantized = 1;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "init_cache") != LUA_TNIL) {
      if (!luaL_testudata(L, -1, "neuronas.InitCache"))
        return argerror(L, 1, "net", "field 'init_cache': neuronas.InitCache expected");
      ic = l_checkopen(L, -1, "neuronas.InitCache");
      lua_replace(L, 1); /* keep it at the top (the options are read) */
      lua_settop(L, 1);
    } else {
      lua_pop(L, 1);
    }
  }
  l_box *b = l_pushnetbox(L);
  if (ic) ic = l_checkopen(L, lua_gettop(L) - 1, "neuronas.InitCache"); /* after the allocation */
  b->p = quantized ? nn_net_new_quantized(&p, ic, &qp, &err) : nn_net_new_cached(&p, ic, &err);
  if (!b->p) return argerror(L, 1, "net", err.msg);
  return 1;
}

static int net_gc(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_NET);
  l_check_close(L, NN_MT_NET);
  nn_net_free(b->p);
  b->p = NULL;
  return 0;
}

/* net -> "neuronas.Net (cellA=..., cellB=..., 1.23M params)" (features scope) */
static int net_tostring(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_NET);
  char a[NN_CELL_TEXT_MAX], c[NN_CELL_TEXT_MAX], n[32];
  if (!b->p) {
    lua_pushliteral(L, "neuronas.Net (closed)");
    return 1;
  }
  const nn_net_params *p = nn_net_params_of(b->p);
  double k = (double)nn_net_param_count(b->p, 1);
  nn_cell_format(&p->cell_a, a, sizeof a);
  nn_cell_format(&p->cell_b, c, sizeof c);
  if (k >= 1e6) snprintf(n, sizeof n, "%.2fM", k / 1e6);
  else if (k >= 1e3) snprintf(n, sizeof n, "%.2fK", k / 1e3);
  else snprintf(n, sizeof n, "%.0f", k);
  lua_pushfstring(L, "neuronas.Net (cellA=%s, cellB=%s, %s params)", a, c, n);
  return 1;
}

/* net -> { {name=, kind=, in_ch=, out_ch=, in_dim=, out_dim=, k=, stride=, weights=, features=}, ... } */
static int net_layers(lua_State *L) {
  nn_net *net = l_checknet(L, 1);
  size_t n = nn_net_layer_count(net);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    const nn_layer_desc *d = nn_net_layer(net, i);
    lua_createtable(L, 0, 10);
    lua_pushstring(L, d->name), lua_setfield(L, -2, "name");
    lua_pushstring(L, nn_layer_kind_str(d->kind)), lua_setfield(L, -2, "kind");
    lua_pushinteger(L, d->in_ch), lua_setfield(L, -2, "in_ch");
    lua_pushinteger(L, d->out_ch), lua_setfield(L, -2, "out_ch");
    lua_pushinteger(L, d->in_dim), lua_setfield(L, -2, "in_dim");
    lua_pushinteger(L, d->out_dim), lua_setfield(L, -2, "out_dim");
    lua_pushinteger(L, d->k), lua_setfield(L, -2, "k");
    lua_pushinteger(L, d->stride), lua_setfield(L, -2, "stride");
    lua_pushinteger(L, d->weights), lua_setfield(L, -2, "weights");
    lua_pushboolean(L, d->features), lua_setfield(L, -2, "features");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

typedef struct scope_opts {
  int scope;
} scope_opts;
static const char *const SCOPES[] = {"features", "all", NULL};
static const l_field SCOPE_FIELDS[] = {{"scope", L_F_ENUM, 0, 0, offsetof(scope_opts, scope), SCOPES, "features|all"},
                                       {NULL, L_F_SKIP, 0, 0, 0, NULL, NULL}};

/* net[, {scope="features"|"all"}] -> integer weight count (docs/model.md) */
static int net_params(lua_State *L) {
  nn_net *net = l_checknet(L, 1);
  scope_opts o = {0};
  l_parse_fields(L, 2, 2, SCOPE_FIELDS, &o);
  lua_pushinteger(L, nn_net_param_count(net, o.scope == 0));
  return 1;
}

typedef struct fwd_opts {
  int train;
} fwd_opts;
static const l_field FWD_FIELDS[] = {{"train", L_F_BOOL, 0, 0, offsetof(fwd_opts, train), NULL, "batch-statistics BN"},
                                     {NULL, L_F_SKIP, 0, 0, 0, NULL, NULL}};

/* net, x[, {train=false}] -> S x classes tensor (the boosted output averaged over T) */
static int net_forward(lua_State *L) {
  fwd_opts fo = {0};
  nn_error err;
  l_checknet(L, 1), l_checktensor(L, 2); /* argument errors first */
  l_parse_fields(L, 3, 3, FWD_FIELDS, &fo);
  nn_forward_opts o = {.train = fo.train};
  l_box *b = l_pushtensorbox(L);
  nn_net *net = l_checknet(L, 1); /* resolved after the allocation (l_aux.h) */
  nn_tensor *x = l_checktensor(L, 2);
  nn_tensor *out = NULL;
  if (nn_net_forward(net, x, &o, &out, &err) != NN_OK) return l_raise(L, &err);
  b->p = out;
  return 1;
}

/* net -> new net with the same structure, weights and weight_bits */
static int net_clone(lua_State *L) {
  nn_error err;
  l_checknet(L, 1);
  l_box *b = l_pushnetbox(L);
  nn_net *net = l_checknet(L, 1); /* resolved after the allocation (l_aux.h) */
  if (!(b->p = nn_net_clone(net, &err))) return l_raise(L, &err);
  return 1;
}

static int net_weight_bits(lua_State *L) {
  lua_pushinteger(L, nn_net_weight_bits(l_checknet(L, 1)));
  return 1;
}

/* net -> { ["cellA.e01.lif"] = rate, ... } of the last forward (spikes / (S * neurons * T)) */
static int net_firing_rates(lua_State *L) {
  nn_net *net = l_checknet(L, 1);
  size_t n = nn_net_lif_count(net);
  lua_createtable(L, 0, (int)n);
  for (size_t i = 0; i < n; i++) {
    lua_pushnumber(L, nn_net_lif_rate(net, i));
    lua_setfield(L, -2, nn_net_lif_name(net, i));
  }
  return 1;
}

/* net -> {preset fields..., cellA = Cell, cellB = Cell, input = {C, H, W}} */
static int net_config(lua_State *L) {
  nn_net *net = l_checknet(L, 1);
  const nn_net_params *p = nn_net_params_of(net);
  lua_createtable(L, 0, 16);
  for (const l_field *f = NET_FIELDS; f->name; f++)
    if (l_field_push(L, f, p)) lua_setfield(L, -2, f->name);
  l_pushcell(L, &p->cell_a), lua_setfield(L, -2, "cellA");
  l_pushcell(L, &p->cell_b), lua_setfield(L, -2, "cellB");
  lua_createtable(L, 3, 0);
  lua_pushinteger(L, p->in_ch), lua_rawseti(L, -2, 1);
  lua_pushinteger(L, p->in_h), lua_rawseti(L, -2, 2);
  lua_pushinteger(L, p->in_w), lua_rawseti(L, -2, 3);
  lua_setfield(L, -2, "input");
  return 1;
}

/* net, "auto"|"dense"|"events" -> net: how convolutions on spikes are computed */
static int net_conv_mode(lua_State *L) {
  static const char *const modes[] = {"auto", "dense", "events", NULL};
  nn_net *net = l_checknet(L, 1);
  nn_net_set_conv_mode(net, (nn_conv_mode)l_checkoption(L, 2, NULL, modes));
  lua_settop(L, 1);
  return 1;
}

/* net -> { "stem.conv.weight", ... } names of every stored tensor, in save order */
static int net_tensor_names(lua_State *L) {
  nn_net *net = l_checknet(L, 1);
  size_t n = nn_net_tensor_count(net);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, nn_net_tensor_name(net, i));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* net, name -> a copy of the stored tensor (weights, biases, BN buffers) */
static int net_tensor(lua_State *L) {
  nn_net *net = l_checknet(L, 1);
  const char *name = l_checkstring(L, 2, "name");
  nn_error err;
  if (!nn_net_tensor_find(net, name))
    return luaL_error(L, "bad argument #1 to 'tensor' (no tensor '%s' in this net)", name);
  l_box *b = l_pushtensorbox(L);
  nn_tensor *t = nn_net_tensor_find(l_checknet(L, 1), name); /* after the allocation (l_aux.h) */
  if (!(b->p = nn_tensor_clone(t, &err))) return l_raise(L, &err);
  return 1;
}

/* Options of net:save / net:load (docs/interop.md). */
typedef struct io_opts {
  int names; /* nn_names */
} io_opts;
static const char *const names_choices[] = {"neuronas", "snasnet", NULL};
static const l_field save_fields[] = {
    {"names", L_F_ENUM, 0, 0, offsetof(io_opts, names), names_choices,
     "tensor names: ours, or the keys of SNASNet's PyTorch state dict"},
    {"codes", L_F_SKIP, 0, 0, 0, NULL, "a pow2 neuronas.Quantizer: weights as integer codes plus an exponent"},
    {NULL, L_F_SKIP, 0, 0, 0, NULL, NULL}};
static const l_field load_fields[] = {
    {"names", L_F_ENUM, 0, 0, offsetof(io_opts, names), names_choices,
     "tensor names: ours, or the keys of SNASNet's PyTorch state dict"},
    {NULL, L_F_SKIP, 0, 0, 0, NULL, NULL}};

/* net, path [, opts] -> net */
static int net_save(lua_State *L) {
  nn_net *net = l_checknet(L, 1);
  const char *path = l_checkstring(L, 2, "path");
  io_opts o = {NN_NAMES_NEURONAS};
  nn_error err;
  nn_status st;
  l_parse_fields(L, 3, 3, save_fields, &o);
  int codes = l_opttable(L, 3) && lua_getfield(L, 3, "codes") != LUA_TNIL;
  net = l_checknet(L, 1); /* the field read may have run Lua code (__index) that closed it */
  if (codes) {
    /* a Quantizer userdata starts with its nn_quant_params (l_quant.c) */
    const nn_quant_params *q = luaL_testudata(L, -1, NN_MT_QUANTIZER);
    if (!q) return argerror(L, 3, "save", "field 'codes': neuronas.Quantizer expected");
    st = nn_net_save_codes(net, path, q, (nn_names)o.names, &err);
  } else {
    st = nn_net_save_names(net, path, (nn_names)o.names, &err);
  }
  if (st != NN_OK) return l_raise(L, &err);
  lua_settop(L, 1);
  return 1;
}

/* net, path [, opts] -> net (all-or-nothing: on error the weights are unchanged) */
static int net_load(lua_State *L) {
  nn_net *net = l_checknet(L, 1);
  const char *path = l_checkstring(L, 2, "path");
  io_opts o = {NN_NAMES_NEURONAS};
  nn_error err;
  l_parse_fields(L, 3, 3, load_fields, &o);
  if (nn_net_load_names(net, path, (nn_names)o.names, &err) != NN_OK) return l_raise(L, &err);
  lua_settop(L, 1);
  return 1;
}

int nn_lua_open_net(lua_State *L) {
  static const luaL_Reg meta[] = {{"__gc", net_gc}, {"__close", net_gc}, {"__tostring", net_tostring}, {NULL, NULL}};
  static const luaL_Reg methods[] = {{"layers", net_layers},
                                     {"params", net_params},
                                     {"forward", net_forward},
                                     {"clone", net_clone},
                                     {"weight_bits", net_weight_bits},
                                     {"firing_rates", net_firing_rates},
                                     {"config", net_config},
                                     {"conv_mode", net_conv_mode},
                                     {"tensor_names", net_tensor_names},
                                     {"tensor", net_tensor},
                                     {"save", net_save},
                                     {"load", net_load},
                                     {"close", net_gc},
                                     {NULL, NULL}};
  l_newtype(L, NN_MT_NET, meta, methods);
  lua_pushcfunction(L, net_new);
  lua_setfield(L, -2, "net");
  return 0;
}
