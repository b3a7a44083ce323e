/* l_ela.c: neuronas.ELA, the SpikeFlow CIM energy-latency-area model for Lua
 * (docs/hardware.md). The userdata holds an nn_ela_params value (a plain value: nothing to acquire
 * or close, so no box). Every constant is a field driven by one descriptor table (FIELDS):
 * construction (`nn.ela{...}`), reading (`hw.xbar`), validated writing (`hw.xbar = 128`),
 * `tostring(hw)` and `hw:config()`. hw:evaluate costs a neuronas.Net (read here in C through
 * nn_net_layer / nn_net_weight_bits: nothing of the caller's is called) or a plain layer list;
 * hw:report, hw:active_energy and hw:evaluate_active are methods here too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "l_aux.h"
#include "l_variation.h"
#include "neuronas/nn_ela.h"
#include "neuronas/nn_net.h"

static const char *const MODES[] = {"neuronas", "spikesim", NULL};
static const char *const DEVICES[] = {"rram", "sram", NULL};

#define MAXS ((double)NN_ELA_MAX_SIZE)
#define MAXC NN_ELA_MAX_CONST /* energies and areas: keeps every cost finite (nn_ela.h) */
#define F_INT(n, lo, hi, doc) {#n, L_F_INT, lo, hi, offsetof(nn_ela_params, n), NULL, doc}
#define F_NUM(n, lo, hi, doc) {#n, L_F_NUM, lo, hi, offsetof(nn_ela_params, n), NULL, doc}

/* Every constant of docs/hardware.md (defaults: NeuroNAS Table I after SpikeSim; ranges as in
 * nn_ela_params_check). Order = the order tostring prints. */
static const l_field FIELDS[] = {
    {"mode", L_F_ENUM, 0, 0, offsetof(nn_ela_params, mode), MODES,
     "\"neuronas\" (default) or \"spikesim\" (docs/hardware.md)"},
    {"device", L_F_ENUM, 0, 0, offsetof(nn_ela_params, device), DEVICES,
     "crossbar device; writing it loads its e_xbar_pj/a_xbar_um2 (docs/hardware.md)"},
    {"bit_serial", L_F_BOOL, 0, 0, offsetof(nn_ela_params, bit_serial), NULL,
     "neuronas mode: latency x w cells per weight (our choice, docs/hardware.md)"},
    F_INT(xbar, 1, MAXS, "crossbar rows = columns X (NeuroNAS Table I: 64)"),
    F_INT(xbars_per_pe, 1, MAXS, "crossbars per PE (NeuroNAS Table I: 9)"),
    F_INT(pe_per_tile, 1, MAXS, "PEs per tile P (NeuroNAS Table I: 8)"),
    F_INT(kernel, 1, 1024, "spikesim mode: one kernel size for all layers (SpikeSim: 3)"),
    F_INT(mux, 1, MAXS, "columns per ADC; X/mux ADCs per crossbar (NeuroNAS Table I: 8)"),
    F_INT(adc_bits, 1, 64, "ADC bits; e_adc_pj/a_adc_um2 are for this (NeuroNAS Table I: 4)"),
    F_INT(device_bits, 1, 64, "bits per device cell; w = ceil(bits/device_bits) (NeuroNAS Table I: 1)"),
    F_INT(pe_cycles, 1, MAXS, "clock cycles per PE operation (SpikeSim: 26)"),
    F_INT(sub_per_adc, 0, MAXS, "subtractor operations per ADC per PE cycle (SpikeSim: 16)"),
    F_INT(neuron_mem_bits, 0, 1024, "SRAM bits per stored neuron or input (SpikeSim: 22)"),
    F_NUM(clock_mhz, 1e-6, HUGE_VAL, "clock, MHz (NeuroNAS Table I: 250)"),
    F_NUM(pipeline_overlap, 0, 1, "latency: share of a layer before the next starts (SpikeSim: 0.75)"),
    F_NUM(e_xbar_pj, 0, MAXC, "crossbar read, pJ (SpikeSim: rram 1.76423, sram 671.089)"),
    F_NUM(e_tile_buf_pj, 0, MAXC, "tile buffer, pJ (SpikeSim: 397)"),
    F_NUM(e_temp_buf_pj, 0, MAXC, "temporary buffer, pJ (SpikeSim: 0.2)"),
    F_NUM(e_sub_pj, 0, MAXC, "subtractor, pJ (SpikeSim: 1.15e-6)"),
    F_NUM(e_adc_pj, 0, MAXC, "ADC, pJ (SpikeSim: 2.03084)"),
    F_NUM(e_htree_pj, 0, MAXC, "H-tree, pJ (SpikeSim: 19.64*8)"),
    F_NUM(e_mux_pj, 0, MAXC, "mux, pJ (SpikeSim: 0.094245)"),
    F_NUM(e_fetch_pj, 0, MAXC, "memory fetch, pJ (SpikeSim: 4.64)"),
    F_NUM(e_neuron_pj, 0, MAXC, "neuron update, pJ (SpikeSim: 1.274*4)"),
    F_NUM(a_xbar_um2, 0, MAXC, "crossbar, um^2 (SpikeSim: rram 26.2144, sram 671.089)"),
    F_NUM(a_tile_buf_um2, 0, MAXC, "tile buffer, um^2 (SpikeSim: 0.7391*64*128)"),
    F_NUM(a_temp_buf_um2, 0, MAXC, "temporary buffer, um^2 (SpikeSim: 484.643999)"),
    F_NUM(a_sub_um2, 0, MAXC, "subtractor, um^2 (SpikeSim: 13411.41498)"),
    F_NUM(a_adc_um2, 0, MAXC, "ADC, um^2 (SpikeSim: 693.633)"),
    F_NUM(a_htree_um2, 0, MAXC, "H-tree, um^2 (SpikeSim: 216830*2)"),
    F_NUM(a_mux_um2, 0, MAXC, "mux, um^2 (SpikeSim: 45.9)"),
    F_NUM(a_sram_bit_um2, 0, MAXC, "neuron/input memory bit cell, um^2 (SpikeSim: 0.7391)"),
    F_INT(noc_bits, 1, MAXS, "NoC mesh width, bits (NeuroNAS Table I: 32; informational)"),
    F_NUM(gbuf_kb, 0, HUGE_VAL, "global buffer, KB (NeuroNAS Table I: 20; informational)"),
    F_NUM(tbuf_kb, 0, HUGE_VAL, "tile buffer, KB (NeuroNAS Table I: 10; informational)"),
    F_NUM(pbuf_kb, 0, HUGE_VAL, "PE buffer, KB (NeuroNAS Table I: 5; informational)"),
    F_NUM(tib_kb, 0, HUGE_VAL, "tile input buffer, KB (NeuroNAS Table I: 50; informational)"),
    F_NUM(pib_kb, 0, HUGE_VAL, "PE input buffer, KB (NeuroNAS Table I: 30; informational)"),
    F_NUM(vdd_v, 0, HUGE_VAL, "supply, V (NeuroNAS Table I: 0.9; informational)"),
    F_NUM(vread_v, 0, HUGE_VAL, "read voltage, V (NeuroNAS Table I: 0.1; informational)"),
    F_NUM(r_parasitic_ohm, 0, HUGE_VAL, "column parasitic, ohm (NeuroNAS Table I: 5; informational)"),
    F_NUM(ron_kohm, 0, HUGE_VAL, "device Ron, kohm (NeuroNAS Table I: 20; informational)"),
    F_NUM(roff_kohm, 0, HUGE_VAL, "device Roff, kohm (NeuroNAS Table I: 200; informational)"),
    F_NUM(write_variation, 0, HUGE_VAL, "device write variation (NeuroNAS Table I: 0.1; informational)"),
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
#undef F_INT
#undef F_NUM

static nn_ela_params *check_ela(lua_State *L, int idx) { return luaL_checkudata(L, idx, NN_MT_ELA); }

static nn_ela_params *push_ela(lua_State *L, const nn_ela_params *p) {
  nn_ela_params *u = lua_newuserdatauv(L, sizeof *u, 0);
  *u = *p;
  luaL_setmetatable(L, NN_MT_ELA);
  return u;
}

/* The choice index of string field `name` in the options table at idx, or def when absent
 * or invalid (l_parse_fields reports invalid values afterwards). */
static int opt_enum(lua_State *L, int idx, const char *name, const char *const *choices, int def) {
  int v = def;
  if (lua_getfield(L, idx, name) == LUA_TSTRING)
    for (int i = 0; choices[i]; i++)
      if (strcmp(choices[i], lua_tostring(L, -1)) == 0) v = i;
  lua_pop(L, 1);
  return v;
}

/* ([opts]) -> ELA. opts: mode, device, then any field (applied after the device defaults,
 * so `nn.ela{device="sram", e_xbar_pj=500}` keeps 500). */
static int e_new(lua_State *L) {
  nn_ela_mode mode = NN_ELA_NEURONAS;
  nn_ela_device dev = NN_ELA_RRAM;
  if (l_opttable(L, 1)) {
    mode = (nn_ela_mode)opt_enum(L, 1, "mode", MODES, mode);
    dev = (nn_ela_device)opt_enum(L, 1, "device", DEVICES, dev);
  }
  nn_ela_params p = nn_ela_params_default(mode, dev);
  l_parse_fields(L, 1, 1, FIELDS, &p);
  push_ela(L, &p);
  return 1;
}

/* (hw, key) -> method or field value; unknown keys raise, listing the fields */
static int e_index(lua_State *L) {
  nn_ela_params *p = check_ela(L, 1);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  const char *k = lua_tostring(L, 2);
  const l_field *f = l_tolstring_nonul(L, 2, NULL) ? l_field_find(FIELDS, k) : NULL;
  if (f) return l_field_push(L, f, p);
  l_push_field_names(L, FIELDS);
  return luaL_error(L, "neuronas.ELA has no field '%s' (expected: %s)",
                    k ? k : luaL_typename(L, 2), lua_tostring(L, -1));
}

/* (hw, key, value) -> (): validated write; `device` also loads that device's constants */
static int e_newindex(lua_State *L) {
  nn_ela_params *p = check_ela(L, 1);
  const char *k = lua_tostring(L, 2);
  const l_field *f = l_tolstring_nonul(L, 2, NULL) ? l_field_find(FIELDS, k) : NULL;
  if (!f) {
    l_push_field_names(L, FIELDS);
    return luaL_error(L, "neuronas.ELA: unknown field '%s' (expected: %s)",
                      k ? k : luaL_typename(L, 2), lua_tostring(L, -1));
  }
  nn_ela_params tmp = *p;
  l_field_set(L, f, &tmp, 3, "neuronas.ELA");
  if (f->offset == offsetof(nn_ela_params, device))
    nn_ela_params_set_device(&tmp, (nn_ela_device)tmp.device);
  *p = tmp;
  return 0;
}

/* hw -> "neuronas.ELA (mode=..., device=...)" followed by one line per field */
static int e_tostring(lua_State *L) {
  nn_ela_params *p = check_ela(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "neuronas.ELA (mode=%s, device=%s)", nn_ela_mode_str((nn_ela_mode)p->mode),
                  nn_ela_device_str((nn_ela_device)p->device));
  luaL_addvalue(&b);
  for (const l_field *f = FIELDS; f->name; f++) {
    char num[64];
    const char *v = num;
    const char *at = (const char *)p + f->offset;
    switch (f->type) {
    case L_F_INT: snprintf(num, sizeof num, "%lld", (long long)*(const int64_t *)at); break;
    case L_F_NUM: snprintf(num, sizeof num, "%.10g", *(const double *)at); break;
    case L_F_BOOL: v = *(const int *)at ? "true" : "false"; break;
    case L_F_ENUM: snprintf(num, sizeof num, "\"%s\"", f->choices[*(const int *)at]); break;
    default: v = "?"; break;
    }
    lua_pushfstring(L, "\n  %s = %s  -- %s", f->name, v, f->doc);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return 1;
}

/* hw -> table {field = value, ...} (a plain copy: editing it changes nothing) */
static int e_config(lua_State *L) {
  nn_ela_params *p = check_ela(L, 1);
  lua_createtable(L, 0, (int)(sizeof FIELDS / sizeof FIELDS[0]));
  for (const l_field *f = FIELDS; f->name; f++) {
    l_field_push(L, f, p);
    lua_setfield(L, -2, f->name);
  }
  return 1;
}

/* hw[, overrides] -> new ELA: a copy, then the overrides (same rules as nn.ela) */
static int e_copy(lua_State *L) {
  nn_ela_params p = *check_ela(L, 1);
  if (l_opttable(L, 2) && lua_getfield(L, 2, "device") != LUA_TNIL)
    nn_ela_params_set_device(&p, (nn_ela_device)opt_enum(L, 2, "device", DEVICES, p.device));
  if (lua_gettop(L) > 2) lua_settop(L, 2);
  l_parse_fields(L, 2, 2, FIELDS, &p);
  push_ela(L, &p);
  return 1;
}

/* hw -> { "mode", "device", ... } the field names, in order */
static int e_fields(lua_State *L) {
  check_ela(L, 1);
  lua_newtable(L);
  int i = 0;
  for (const l_field *f = FIELDS; f->name; f++) {
    lua_pushstring(L, f->name);
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

/* ---- evaluate ---- */

typedef struct eval_opts {
  int bits, timesteps, scope, breakdown;
} eval_opts;

static const char *const SCOPES[] = {"features", "all", NULL};
static const l_field EVAL_FIELDS[] = {
    {"bits", L_F_INT32, NN_WEIGHT_BITS_MIN, NN_WEIGHT_BITS_MAX, offsetof(eval_opts, bits), NULL,
     "weight bits (default: the net's weight_bits(), for a list 32)"},
    {"timesteps", L_F_INT32, 1, 1e6, offsetof(eval_opts, timesteps), NULL, "T (default: the net's, else 5)"},
    {"scope", L_F_ENUM, 0, 0, offsetof(eval_opts, scope), SCOPES,
     "\"features\" skips layers with features = false (docs/model.md)"},
    {"breakdown", L_F_BOOL, 0, 0, offsetof(eval_opts, breakdown), NULL,
     "false: no per-layer tables (faster)"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

/* Raises "bad argument #1 to 'evaluate' (layer i: msg)" */
static int layer_error(lua_State *L, lua_Integer i, const char *msg) {
  return luaL_argerror(L, 2, lua_pushfstring(L, "layer %I: %s", i, msg));
}

/* Text of the value at idx for "got ..." ("0", "-3.5", "nan", "\"x\"", "table"). */
static const char *got(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Number v = lua_tonumber(L, idx);
    if (isnan(v)) return "nan";
    return luaL_tolstring(L, idx, NULL);
  }
  if (lua_type(L, idx) == LUA_TSTRING) return lua_pushfstring(L, "\"%s\"", lua_tostring(L, idx));
  return luaL_typename(L, idx);
}

/* layer table at top; reads integer field name into *dst (def < 0: required) */
static void layer_int(lua_State *L, lua_Integer i, const char *name, int64_t def, int64_t *dst) {
  int t = lua_getfield(L, -1, name);
  if (t == LUA_TNIL) {
    if (def < 0)
      layer_error(L, i, lua_pushfstring(L, "field '%s' missing (positive integer expected)", name));
    *dst = def;
  } else {
    int isint = 0;
    lua_Integer v = t == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
    if (!isint || v < 1 || v > NN_ELA_MAX_SIZE) {
      const char *g = got(L, lua_gettop(L));
      layer_error(L, i, lua_pushfstring(L, "field '%s': %s, got %s", name,
                                        v > NN_ELA_MAX_SIZE ? "integer <= 1073741824 expected"
                                                            : "positive integer expected",
                                        g));
    }
    *dst = v;
  }
  lua_pop(L, 1);
}

/* Reads list entry i (table at top of stack) into *l; returns 0 when out of scope. */
static int read_layer(lua_State *L, lua_Integer i, int scope_all, nn_layer_desc *l) {
  memset(l, 0, sizeof *l);
  int t = lua_getfield(L, -1, "features");
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    layer_error(L, i, lua_pushfstring(L, "field 'features': boolean expected, got %s", got(L, -1)));
  l->features = t == LUA_TNIL || lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (!scope_all && !l->features) return 0;
  t = lua_getfield(L, -1, "kind");
  if (t == LUA_TNIL) layer_error(L, i, "field 'kind' missing (\"conv\" or \"linear\" expected)");
  const char *k = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  if (k && strcmp(k, "conv") == 0)
    l->kind = NN_LAYER_CONV;
  else if (k && strcmp(k, "linear") == 0)
    l->kind = NN_LAYER_LINEAR;
  else
    layer_error(L, i, lua_pushfstring(L, "field 'kind': \"conv\" or \"linear\" expected, got %s",
                                      got(L, lua_gettop(L))));
  lua_pop(L, 1);
  int64_t one = l->kind == NN_LAYER_LINEAR ? 1 : -1; /* linear: dims and k default to 1 */
  layer_int(L, i, "in_ch", -1, &l->in_ch);
  layer_int(L, i, "out_ch", -1, &l->out_ch);
  layer_int(L, i, "in_dim", one, &l->in_dim);
  layer_int(L, i, "out_dim", one, &l->out_dim);
  layer_int(L, i, "k", one, &l->k);
  layer_int(L, i, "stride", 1, &l->stride);
  t = lua_getfield(L, -1, "weights");
  if (t != LUA_TNIL) {
    int isint = 0;
    lua_Integer v = t == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
    if (!isint || v < 1)
      layer_error(L, i, lua_pushfstring(L, "field 'weights': positive integer expected, got %s",
                                        got(L, lua_gettop(L))));
    l->weights = v;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, -1, "name") == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (len >= sizeof l->name) len = sizeof l->name - 1;
    memcpy(l->name, s, len);
  }
  lua_pop(L, 1);
  nn_error err;
  if (nn_ela_layer_check(l, (size_t)(i - 1), &err) != NN_OK) luaL_argerror(L, 2, err.msg);
  return 1;
}

#define SETI(name, v) (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, name))
#define SETN(name, v) (lua_pushnumber(L, (lua_Number)(v)), lua_setfield(L, -2, name))
#define SETS(name, v) (lua_pushstring(L, v), lua_setfield(L, -2, name))

static double share(double part, double whole) { return whole > 0 ? part / whole : 0.0; }

enum { STACK_LAYERS = 64 };

/* The layers of the list at idx (one table per layer) in scope, read into l[]/idx[] (sized for
 * every entry); returns how many. */
static size_t list_layers(lua_State *L, int list, lua_Integer n, int scope_all, nn_layer_desc *l,
                          lua_Integer *idx) {
  size_t m = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_geti(L, list, i) != LUA_TTABLE)
      layer_error(L, i, lua_pushfstring(L, "table expected, got %s", got(L, lua_gettop(L))));
    if (read_layer(L, i, scope_all, &l[m])) idx[m++] = i;
    lua_pop(L, 1);
  }
  return m;
}

/* The layers of a net in scope (nn_net_layer order), read into l[]/idx[]; returns how many. */
static size_t net_layers(const nn_net *net, int scope_all, nn_layer_desc *l, lua_Integer *idx) {
  size_t m = 0, n = nn_net_layer_count(net);
  for (size_t i = 0; i < n; i++) {
    const nn_layer_desc *d = nn_net_layer(net, i);
    if (!scope_all && !d->features) continue;
    l[m] = *d;
    idx[m++] = (lua_Integer)i + 1;
  }
  return m;
}

/* hw at 1, what at 2 (a neuronas.Net or a layer list), opts at 3 -> pushes the cost table.
 * A net gives its layers, weight bits and timesteps from C (nn_net_layer, nn_net_weight_bits,
 * its params); nothing of the caller's is called. Errors name argument 2 of the running
 * function (evaluate or report). */
static int evaluate_at(lua_State *L) {
  eval_opts o = {0, 0, 0, 1}; /* 0: not given */
  l_parse_fields(L, 3, 3, EVAL_FIELDS, &o);
  lua_settop(L, 3);
  int is_net = luaL_testudata(L, 2, NN_MT_NET) != NULL, other = lua_type(L, 2) == LUA_TUSERDATA;
  if (!is_net && lua_type(L, 2) == LUA_TTABLE && lua_rawlen(L, 2) == 0) {
    lua_pushliteral(L, "layers"); /* raw: no __index of the caller's runs */
    other = lua_rawget(L, 2) != LUA_TNIL;
    lua_pop(L, 1);
  }
  if (!is_net && other) return luaL_argerror(L, 2, "layer list or neuronas.Net expected");
  if (!is_net) luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = is_net ? (lua_Integer)nn_net_layer_count(l_checknet(L, 2)) : luaL_len(L, 2);
  nn_layer_desc sl[STACK_LAYERS];
  nn_ela_layer_cost sc[STACK_LAYERS];
  lua_Integer idx_s[STACK_LAYERS];
  nn_layer_desc *l = sl;
  nn_ela_layer_cost *lc = sc;
  lua_Integer *idx = idx_s;
  if (n > STACK_LAYERS) { /* scratch held by a userdata: freed by the GC even on error */
    size_t per = sizeof *l + sizeof *lc + sizeof *idx;
    if ((size_t)n > ((size_t)1 << 40) / per) return luaL_argerror(L, 2, "too many layers");
    char *s = lua_newuserdatauv(L, (size_t)n * per, 0);
    l = (nn_layer_desc *)s;
    lc = (nn_ela_layer_cost *)(s + (size_t)n * sizeof *l);
    idx = (lua_Integer *)(s + (size_t)n * (sizeof *l + sizeof *lc));
  }
  size_t m;
  if (is_net) { /* resolved after the allocation (l_aux.h); nothing below runs Lua code */
    const nn_net *net = l_checknet(L, 2);
    m = net_layers(net, o.scope == 1, l, idx);
    if (!o.bits) o.bits = nn_net_weight_bits(net);
    if (!o.timesteps) o.timesteps = (int)nn_net_params_of(net)->timesteps;
  } else {
    m = list_layers(L, 2, n, o.scope == 1, l, idx);
  }
  const nn_ela_params *p = check_ela(L, 1);
  if (!o.bits) o.bits = NN_WEIGHT_BITS_FLOAT;
  if (!o.timesteps) o.timesteps = 5;
  nn_ela_cost c;
  nn_error err;
  if (nn_ela_evaluate(p, l, m, o.bits, o.timesteps, &c, o.breakdown ? lc : NULL, &err) != NN_OK)
    return l_raise(L, &err);
  lua_createtable(L, 0, 24);
  SETS("mode", nn_ela_mode_str((nn_ela_mode)p->mode));
  SETS("device", nn_ela_device_str((nn_ela_device)p->device));
  SETS("scope", SCOPES[o.scope]);
  SETI("bits", o.bits);
  SETI("timesteps", o.timesteps);
  SETI("memory_params", c.memory_params);
  SETI("memory_bits", c.memory_bits);
  SETI("memory_bytes", c.memory_bytes);
  SETI("pes", c.pes);
  SETI("xbars", c.xbars);
  SETI("tiles", c.tiles);
  SETI("n_layers", c.layers);
  SETI("cells_per_weight", p->mode == NN_ELA_SPIKESIM ? 1 : (o.bits + p->device_bits - 1) / p->device_bits);
  SETN("area_mm2", c.area_mm2);
  SETN("energy_uj", c.energy_uj);
  SETN("latency_ms", c.latency_ms);
  SETN("area_um2", c.area_um2);
  SETN("energy_pj", c.energy_pj);
  SETN("latency_ns", c.latency_ns);
  if (o.breakdown) {
    /* per-layer tables: the layer's geometry (so constraint functions over cost.layers can
     * read k, channels...) and its costs in paper units; at most 16 fields (one hash block),
     * keys pushed once and set with rawset: this is the hot path of a search */
    enum { K_INDEX, K_NAME, K_KIND, K_IN_CH, K_OUT_CH, K_IN_DIM, K_OUT_DIM, K_K, K_WEIGHTS,
           K_PES, K_XBARS, K_TILES, K_AREA_MM2, K_ENERGY_UJ, K_LATENCY_MS, K_LATENCY_SHARE,
           K_CONV, K_LINEAR, K_N };
    static const char *const keys[K_N] = {
        "index", "name", "kind", "in_ch", "out_ch", "in_dim", "out_dim", "k", "weights", "pes",
        "xbars", "tiles", "area_mm2", "energy_uj", "latency_ms", "latency_share", "conv",
        "linear"};
    luaL_checkstack(L, K_N + 4, "evaluate");
    int kb = lua_gettop(L) + 1;
    for (int j = 0; j < K_N; j++) lua_pushstring(L, keys[j]);
#define RSETI(j, v) (lua_pushvalue(L, kb + (j)), lua_pushinteger(L, (lua_Integer)(v)), lua_rawset(L, -3))
#define RSETN(j, v) (lua_pushvalue(L, kb + (j)), lua_pushnumber(L, (lua_Number)(v)), lua_rawset(L, -3))
    lua_createtable(L, (int)m, 0);
    for (size_t i = 0; i < m; i++) {
      const nn_ela_layer_cost *q = &lc[i];
      lua_createtable(L, 0, 16);
      RSETI(K_INDEX, idx[i]);
      if (l[i].name[0]) {
        lua_pushvalue(L, kb + K_NAME);
        lua_pushstring(L, l[i].name);
        lua_rawset(L, -3);
      }
      lua_pushvalue(L, kb + K_KIND);
      lua_pushvalue(L, kb + (l[i].kind == NN_LAYER_LINEAR ? K_LINEAR : K_CONV));
      lua_rawset(L, -3);
      RSETI(K_IN_CH, l[i].in_ch);
      RSETI(K_OUT_CH, l[i].out_ch);
      RSETI(K_IN_DIM, l[i].in_dim);
      RSETI(K_OUT_DIM, l[i].out_dim);
      RSETI(K_K, l[i].k);
      RSETI(K_WEIGHTS, q->weights);
      RSETI(K_PES, q->pes);
      RSETI(K_XBARS, q->xbars);
      RSETI(K_TILES, q->tiles);
      RSETN(K_AREA_MM2, q->area_um2 * 1e-6);
      RSETN(K_ENERGY_UJ, q->energy_pj * 1e-6);
      RSETN(K_LATENCY_MS, q->latency_ns * 1e-6);
      RSETN(K_LATENCY_SHARE, share(q->latency_ns, c.latency_ns));
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
#undef RSETI
#undef RSETN
    lua_replace(L, kb); /* list over the first key; drop the others */
    lua_settop(L, kb);
    lua_setfield(L, -2, "layers");
  }
  return 1;
}

/* (hw, net | layers[, opts]) -> cost table. layers: a list of {kind, in_ch, out_ch, in_dim,
 * out_dim, k[, stride, name, weights, features]}; a neuronas.Net gives its own layers, weight
 * bits and timesteps. opts: bits (the net's, for a list NN_WEIGHT_BITS_FLOAT), timesteps (the
 * net's, for a list 5), scope ("features"), breakdown (true). Units: mm2/uj/ms and raw
 * um2/pj/ns (docs/hardware.md). */
static int e_evaluate(lua_State *L) {
  check_ela(L, 1);
  return evaluate_at(L);
}

/* ---- report: the per-layer cost table as text ---- */

/* One column: header, cost field, printf format (its width is the column's). */
static const struct col {
  const char *head, *field, *fmt;
} COLS[] = {
    {"#", "index", "%3d"},          {"layer", "name", "%-18s"},        {"kind", "kind", "%-6s"},
    {"k", "k", "%2d"},              {"in", "in_ch", "%5d"},            {"out", "out_ch", "%5d"},
    {"dim", "out_dim", "%4d"},      {"weights", "weights", "%10d"},    {"PEs", "pes", "%6d"},
    {"tiles", "tiles", "%5d"},      {"area mm2", "area_mm2", "%10.4f"}, {"energy uJ", "energy_uj", "%10.4f"},
    {"latency ms", "latency_ms", "%10.4f"}, {"lat %", "latency_share", "%6.1f"},
};
enum { NCOLS = sizeof COLS / sizeof COLS[0] };

/* The width of a column and whether it is left-aligned. */
static int col_width(const struct col *c, int *left) {
  *left = c->fmt[1] == '-';
  return atoi(c->fmt + 1 + *left);
}

/* "integer", "float" or the type name of the value at idx (math.type(v) or type(v)). */
static const char *type_of(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) return lua_isinteger(L, idx) ? "integer" : "float";
  return luaL_typename(L, idx);
}

/* The integer at idx (an integer-valued float counts), or 0 with *ok = 0. */
static lua_Integer int_of(lua_State *L, int idx, int *ok) {
  *ok = 0;
  return lua_type(L, idx) == LUA_TNUMBER ? lua_tointegerx(L, idx, ok) : 0;
}

/* Appends to row[] (size cap, used *len) the printf of fmt with one value. */
#define APPEND(...) (*len += (size_t)snprintf(row + *len, *len < cap ? cap - *len : 0, __VA_ARGS__), \
                     *len = *len < cap ? *len : cap - 1)

/* Formats one layer row (the layer table at top of the stack, entry i of cost.layers) into row[]
 * and adds its columns to the sums; leaves the stack as it was. */
static void report_row(lua_State *L, lua_Integer i, double *sum, char *row, size_t cap, size_t *len) {
  static const char *const SUMS[] = {"weights", "pes", "tiles", "area_mm2", "energy_uj", "latency_ms"};
  int t = lua_gettop(L);
  for (int j = 0; j < NCOLS; j++) {
    const struct col *c = &COLS[j];
    char fmt[16];
    char kind = c->fmt[strlen(c->fmt) - 1];
    int left, w = col_width(c, &left), ok = 1;
    if (j) APPEND(" ");
    lua_getfield(L, t, c->field);
    if (lua_isnil(L, -1) && j == 0) lua_pushinteger(L, i), lua_replace(L, -2);
    if (lua_isnil(L, -1) && j == 1) lua_pushliteral(L, "-"), lua_replace(L, -2);
    if (lua_isnil(L, -1)) {
      APPEND("%*s", w, "-");
    } else if (kind == 's') {
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "bad argument #1 to 'report' (layers[%I].%s: string expected, got %s)", i, c->field,
                   type_of(L, -1));
      APPEND(c->fmt, lua_tostring(L, -1));
    } else if (kind == 'd') {
      lua_Integer v = int_of(L, -1, &ok);
      if (!ok)
        luaL_error(L, "bad argument #1 to 'report' (layers[%I].%s: integer expected, got %s)", i, c->field,
                   type_of(L, -1));
      snprintf(fmt, sizeof fmt, "%%%s%dlld", left ? "-" : "", w);
      APPEND(fmt, (long long)v);
    } else {
      if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "bad argument #1 to 'report' (layers[%I].%s: number expected, got %s)", i, c->field,
                   type_of(L, -1));
      double v = lua_tonumber(L, -1);
      APPEND(c->fmt, strcmp(c->field, "latency_share") == 0 ? 100 * v : v);
    }
    lua_pop(L, 1);
  }
  for (int k = 0; k < 6; k++) {
    lua_getfield(L, t, SUMS[k]);
    sum[k] += lua_tonumber(L, -1); /* tonumber(v) or 0 */
    lua_pop(L, 1);
  }
}

/* The per-layer table of the cost at idx (a table with a `layers` list) plus a totals line:
 * the cost's own totals when it has them (area_mm2), else sums over the layers. Rows are
 * formatted in C buffers and added while the luaL_Buffer is at the top of the stack. */
static int push_report(lua_State *L, int cost) {
  static const char *const TOTALS[] = {"n_layers", "memory_params", "bits", "memory_bytes",
                                       "cells_per_weight", "pes", "tiles", "area_mm2",
                                       "energy_uj", "latency_ms", "timesteps"};
  enum { CAP = 4096 };
  char row[CAP];
  size_t used = 0, *len = &used, cap = CAP;
  lua_getfield(L, cost, "layers");
  int layers = lua_gettop(L);
  lua_Integer n = luaL_len(L, layers);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int j = 0; j < NCOLS; j++) {
    int left, w = col_width(&COLS[j], &left);
    if (j) APPEND(" ");
    APPEND(left ? "%-*s" : "%*s", w, COLS[j].head);
  }
  luaL_addlstring(&b, row, used);
  double sum[6] = {0};
  for (lua_Integer i = 1; i <= n; i++) {
    used = 0;
    APPEND("\n");
    if (lua_geti(L, layers, i) != LUA_TTABLE)
      luaL_error(L, "bad argument #1 to 'report' (layers[%I]: table expected, got %s)", i, luaL_typename(L, -1));
    report_row(L, i, sum, row, cap, len);
    lua_pop(L, 1);
    luaL_addlstring(&b, row, used);
  }
  used = 0;
  lua_getfield(L, cost, "area_mm2");
  int totals = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (totals) {
    lua_Integer iv[8];
    double nv[3];
    int ni = 0, nn = 0;
    for (int k = 0; k < 11; k++) {
      const char *f = TOTALS[k];
      size_t fl = strlen(f);
      int num = fl > 4 && (strcmp(f + fl - 4, "_mm2") == 0 || strcmp(f + fl - 3, "_uj") == 0 ||
                           strcmp(f + fl - 3, "_ms") == 0);
      int ok = 0;
      lua_getfield(L, cost, f);
      if (num && lua_type(L, -1) == LUA_TNUMBER) nv[nn++] = lua_tonumber(L, -1), ok = 1;
      if (!num) iv[ni++] = int_of(L, -1, &ok);
      if (!ok)
        luaL_error(L, "bad argument #1 to 'report' (field '%s': %s expected, got %s)", f,
                   num ? "number" : "integer", type_of(L, -1));
      lua_pop(L, 1);
    }
    const char *mode = (lua_getfield(L, cost, "mode"), luaL_tolstring(L, -1, NULL));
    const char *device = (lua_getfield(L, cost, "device"), luaL_tolstring(L, -1, NULL));
    const char *scope = (lua_getfield(L, cost, "scope"), luaL_tolstring(L, -1, NULL));
    APPEND("\ntotal: %lld layers, %lld weights (FxP%lld, %lld bytes, %lld cells each), %lld PEs, %lld "
           "tiles, %.4f mm^2, %.4f uJ, %.4f ms (mode %s, device %s, T=%lld, scope %s)",
           (long long)iv[0], (long long)iv[1], (long long)iv[2], (long long)iv[3], (long long)iv[4],
           (long long)iv[5], (long long)iv[6], nv[0], nv[1], nv[2], mode, device, (long long)iv[7], scope);
    lua_pop(L, 6);
  } else {
    APPEND("\ntotal: %lld layers, %lld weights, %lld PEs, %lld tiles, %.4f mm^2, %.4f uJ, %.4f ms",
           (long long)n, (long long)sum[0], (long long)sum[1], (long long)sum[2], sum[3], sum[4], sum[5]);
  }
  luaL_addlstring(&b, row, used);
  luaL_pushresult(&b);
  return 1;
}
#undef APPEND

/* hw:report(cost) (or any { layers = per-layer list }) or hw:report(net | layers[, opts])
 * -> the per-layer table as text */
static int e_report(lua_State *L) {
  if (!luaL_testudata(L, 1, NN_MT_ELA))
    return luaL_error(L, "calling 'report' on bad self (neuronas.ELA expected, got %s)", luaL_typename(L, 1));
  if (lua_type(L, 2) == LUA_TTABLE) { /* a cost: { layers = per-layer list, ... } */
    lua_pushliteral(L, "layers");
    int cost = lua_rawget(L, 2) == LUA_TTABLE;
    lua_pop(L, 1);
    if (cost) return lua_settop(L, 2), push_report(L, 2);
  }
  lua_settop(L, 3);
  evaluate_at(L);
  if (lua_getfield(L, -1, "layers") == LUA_TNIL)
    return luaL_error(L, "bad argument #2 to 'report' (breakdown = false leaves nothing to report)");
  lua_pop(L, 1);
  return push_report(L, lua_gettop(L));
}

/* ---- activity-aware energy (docs/hardware.md, "Activity-aware energy") ---- */

static const nn_ela_params *check_self(lua_State *L, const char *fname) {
  nn_ela_params *p = luaL_testudata(L, 1, NN_MT_ELA);
  if (!p) luaL_error(L, "bad argument #1 to '%s' (neuronas.ELA expected, got %s)", fname, luaL_typename(L, 1));
  return p;
}

/* The number in field `name` of the table at idx; raises naming it when it is no finite number
 * >= 0 (a cost's energies are: a NaN or negative one would make every sum below meaningless). */
static double num_field(lua_State *L, int idx, const char *name, lua_Integer i) {
  lua_getfield(L, idx, name);
  double v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
  if (!(isfinite(v) && v >= 0))
    luaL_error(L, "bad argument #1 to 'active_energy' (layers[%I].%s: finite number >= 0 expected, got %s)", i,
               name, lua_type(L, -1) == LUA_TNUMBER ? got(L, -1) : type_of(L, -1));
  lua_pop(L, 1);
  return v;
}

/* Reads the activity list at al into the table at frac (layer name -> fraction). Entries that are
 * not tables, or have no name or no fraction, measure nothing; a name must be a string (a layer's
 * name in the cost) and a fraction a number in [0, 1] (the share of reads that are active). */
static void read_fractions(lua_State *L, int al, int frac) {
  lua_Integer na = luaL_len(L, al);
  for (lua_Integer i = 1; i <= na; i++) {
    if (lua_geti(L, al, i) == LUA_TTABLE) {
      int t = lua_getfield(L, -1, "name");
      if (t != LUA_TNIL && t != LUA_TSTRING)
        luaL_error(L, "bad argument #2 to 'active_energy' (layers[%I].name: string expected, got %s)", i,
                   t == LUA_TNUMBER ? got(L, -1) : type_of(L, -1));
      t = lua_getfield(L, -2, "fraction");
      double f = t == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
      if (t != LUA_TNIL && !(f >= 0 && f <= 1))
        luaL_error(L, "bad argument #2 to 'active_energy' (layers[%I].fraction: number in [0, 1] expected, "
                      "got %s)", i, t == LUA_TNUMBER ? got(L, -1) : type_of(L, -1));
      if (lua_isnil(L, -2)) lua_pop(L, 2);
      else lua_rawset(L, frac);
    }
    lua_pop(L, 1);
  }
}

/* (hw, cost, activity) -> cost with energy_active_uj / _pj, and per layer energy_active_uj and
 * active_fraction (a layer without a measurement keeps its energy). Per layer, a cycle's energy
 * splits into a part that scales with active reads (crossbar reads, ADC conversions, mux,
 * shift-and-subtract accumulation) and a fixed rest (H-tree, fetch, neuron update, temporary
 * and tile buffers), docs/hardware.md. */
static int e_active_energy(lua_State *L) {
  const nn_ela_params *p = check_self(L, "active_energy");
  lua_settop(L, 3);
  if (lua_type(L, 2) != LUA_TTABLE || lua_getfield(L, 2, "layers") != LUA_TTABLE)
    return luaL_error(L, "bad argument #1 to 'active_energy' (a cost with its per-layer list expected)");
  int cl = lua_gettop(L);
  if (lua_type(L, 3) != LUA_TTABLE || lua_getfield(L, 3, "layers") != LUA_TTABLE)
    return luaL_error(L, "bad argument #2 to 'active_energy' (nn.activity's result expected)");
  int al = lua_gettop(L);
  lua_getfield(L, 3, "xbar");
  int ok = 1;
  lua_Integer xbar = lua_isnil(L, -1) ? p->xbar : int_of(L, -1, &ok);
  if (!ok || xbar != p->xbar)
    return luaL_error(L, "bad argument #2 to 'active_energy' (activity counted for xbar %s, the model has %I)",
                      luaL_tolstring(L, -1, NULL), (lua_Integer)p->xbar);
  lua_pop(L, 1);
  lua_newtable(L); /* layer name -> fraction */
  int frac = lua_gettop(L);
  read_fractions(L, al, frac);
  lua_getfield(L, 2, "mode");
  int spikesim = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "spikesim") == 0;
  lua_pop(L, 1);
  double a = (double)p->xbar / (double)p->mux, total = 0;
  double fixed = p->e_htree_pj + p->e_fetch_pj + p->e_neuron_pj + a * p->e_temp_buf_pj + p->e_tile_buf_pj;
  lua_Integer n = luaL_len(L, cl);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_geti(L, cl, i) != LUA_TTABLE)
      return luaL_error(L, "bad argument #1 to 'active_energy' (layers[%I]: table expected, got %s)", i,
                        luaL_typename(L, -1));
    int l = lua_gettop(L);
    double f = 1, k = (double)p->kernel;
    lua_getfield(L, l, "name");
    if (lua_isnil(L, -1) || lua_rawget(L, frac) != LUA_TNUMBER) lua_pop(L, 1), lua_pushinteger(L, 1);
    f = lua_tonumber(L, -1);
    lua_setfield(L, l, "active_fraction"); /* the measured value, or 1 */
    if (!spikesim) {
      lua_getfield(L, l, "k");
      k = lua_isnil(L, -1) ? 1 : lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
    double pe = k * k * p->e_xbar_pj + a * (p->e_adc_pj + p->e_mux_pj);
    double scaled = a * pe + a * (double)p->sub_per_adc * p->e_sub_pj;
    /* every energy constant 0: the cycle costs nothing, active or not (0, not 0/0) */
    double whole = fixed + scaled, part = fixed + f * scaled;
    double e = num_field(L, l, "energy_uj", i) * (whole > 0 ? part / whole : 1.0);
    lua_pushnumber(L, e), lua_setfield(L, l, "energy_active_uj");
    total += e;
    lua_pop(L, 1);
  }
  lua_pushnumber(L, total), lua_setfield(L, 2, "energy_active_uj");
  lua_pushnumber(L, total * 1e6), lua_setfield(L, 2, "energy_active_pj");
  lua_settop(L, 2);
  return 1;
}

/* Calls the C function below its nargs arguments on the stack; an argument error it raises names
 * evaluate_active (a C function called from C has no name of its own: Lua would say '?'). The
 * argument numbers already match the caller's: the delegated frames hold the arguments where
 * hw:evaluate_active's caller counts them. */
static void call_as_evaluate_active(lua_State *L, int nargs) {
  if (lua_pcall(L, nargs, 1, 0) == LUA_OK) return;
  /* "bad argument #N to 'NAME' (...)": NAME is '?' or whatever table of package.loaded Lua
   * found the function in first, which varies from run to run */
  const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  const char *to = m && !strncmp(m, "bad argument #", 14) ? strstr(m, " to '") : NULL;
  const char *end = to ? strchr(to + 5, '\'') : NULL;
  if (end) {
    lua_pushlstring(L, m, (size_t)(to - m));
    lua_pushfstring(L, " to 'evaluate_active'%s", end + 1);
    lua_concat(L, 2);
  }
  lua_error(L);
}

/* (hw, net, x[, opts]) -> hw:active_energy(hw:evaluate(net, opts with breakdown), nn.activity(net,
 * x, { xbar = hw.xbar })). The three calls below go to C functions of this file and of
 * l_variation.c, each in its own frame; no Lua code runs. */
static int e_evaluate_active(lua_State *L) {
  const nn_ela_params *p = check_self(L, "evaluate_active");
  if (!lua_isnoneornil(L, 4) && lua_type(L, 4) != LUA_TTABLE)
    return luaL_error(L, "bad argument #3 to 'evaluate_active' (table of options expected, got %s)",
                      luaL_typename(L, 4));
  lua_Integer xbar = p->xbar;
  lua_settop(L, 4);
  lua_newtable(L); /* opts copy with breakdown = true at 5 */
  if (lua_istable(L, 4))
    for (lua_pushnil(L); lua_next(L, 4);) { /* key value -> key key value -> key */
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, 5);
    }
  lua_pushboolean(L, 1);
  lua_setfield(L, 5, "breakdown");
  lua_pushcfunction(L, e_evaluate); /* 6: cost */
  lua_pushvalue(L, 1), lua_pushvalue(L, 2), lua_pushvalue(L, 5);
  call_as_evaluate_active(L, 3);
  lua_pushcfunction(L, nn_lua_activity); /* 7: activity */
  lua_pushvalue(L, 2), lua_pushvalue(L, 3);
  lua_createtable(L, 0, 1);
  lua_pushinteger(L, xbar), lua_setfield(L, -2, "xbar");
  call_as_evaluate_active(L, 3);
  lua_pushcfunction(L, e_active_energy);
  lua_pushvalue(L, 1), lua_pushvalue(L, 6), lua_pushvalue(L, 7);
  call_as_evaluate_active(L, 3);
  return 1;
}

int nn_lua_open_ela(lua_State *L) {
  static const luaL_Reg methods[] = {{"evaluate", e_evaluate},
                                     {"report", e_report},
                                     {"active_energy", e_active_energy},
                                     {"evaluate_active", e_evaluate_active},
                                     {"config", e_config},
                                     {"copy", e_copy},
                                     {"fields", e_fields},
                                     {NULL, NULL}};
  luaL_newmetatable(L, NN_MT_ELA);
  luaL_newlib(L, methods);
  lua_pushcclosure(L, e_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, e_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, e_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  lua_pushcfunction(L, e_new);
  lua_setfield(L, -2, "ela");
  return 0;
}
