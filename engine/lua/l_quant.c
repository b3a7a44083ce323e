/* l_quant.c: neuronas.Quantizer, FxP-n weight quantizers for Lua (docs/quantizer.md).
 * nn.quantizer{bits=, rounding=, scale=, int_bits=, seed=} -> q; q:apply(net|tensor),
 * q:report(net|tensor), q.bits ... (read-only fields), tostring(q). */
#include <string.h>

#include "l_aux.h"
#include "l_net.h"
#include "neuronas/nn_net.h"
#include "neuronas/nn_quant.h"

/* A quantizer is a plain value (its parameters): no resource, nothing to close. */
typedef struct qbox {
  nn_quant_params p;
} qbox;

static const char *const rounding_choices[] = {"nearest", "floor", "zero", "stochastic", NULL};
static const char *const scale_choices[] = {"pow2", "maxabs", NULL};

static const l_field q_fields[] = {
    {"bits", L_F_INT32, NN_WEIGHT_BITS_MIN, NN_WEIGHT_BITS_MAX, offsetof(nn_quant_params, bits), NULL,
     "FxP-n word length"},
    {"rounding", L_F_ENUM, 0, 0, offsetof(nn_quant_params, rounding), rounding_choices,
     "rounding scheme"},
    {"scale", L_F_ENUM, 0, 0, offsetof(nn_quant_params, scale), scale_choices,
     "pow2: dynamic power-of-two exponent per tensor; maxabs: max|w|/(2^(n-1)-1)"},
    {"int_bits", L_F_INT32, NN_QUANT_INT_BITS_MIN, NN_QUANT_INT_BITS_MAX,
     offsetof(nn_quant_params, int_bits), NULL, "fixed integer bits (sign included)"},
    {"seed", L_F_U64, 0, 0, offsetof(nn_quant_params, seed), NULL, "stochastic rounding seed"},
    {NULL, 0, 0, 0, 0, NULL, NULL}};

static nn_quant_params *checkq(lua_State *L, int idx) {
  return &((qbox *)luaL_checkudata(L, idx, NN_MT_QUANTIZER))->p;
}

/* The message of a params error without the engine's "quantizer: " prefix. */
static const char *bare(const nn_error *err) {
  return strncmp(err->msg, "quantizer: ", 11) == 0 ? err->msg + 11 : err->msg;
}

/* ([opts]) -> quantizer */
static int q_new(lua_State *L) {
  nn_error err;
  nn_quant_params p = nn_quant_params_default();
  l_parse_fields(L, 1, 1, q_fields, &p);
  if (nn_quant_params_check(&p, &err) != NN_OK) return luaL_argerror(L, 1, bare(&err));
  qbox *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->p = p;
  luaL_setmetatable(L, NN_MT_QUANTIZER);
  return 1;
}

/* Pushes one tensor's statistics as a table. */
static void push_stats(lua_State *L, const char *name, const nn_quant_params *p,
                       const nn_quant_stats *s) {
  lua_createtable(L, 0, 10);
  if (name) {
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
  }
  lua_pushinteger(L, s->count);
  lua_setfield(L, -2, "weights");
  lua_pushnumber(L, s->mse);
  lua_setfield(L, -2, "mse");
  lua_pushinteger(L, s->saturated);
  lua_setfield(L, -2, "saturated_count");
  lua_pushnumber(L, s->count ? (double)s->saturated / (double)s->count : 0);
  lua_setfield(L, -2, "saturated");
  lua_pushnumber(L, s->max_abs);
  lua_setfield(L, -2, "max_abs");
  lua_pushnumber(L, s->step);
  lua_setfield(L, -2, "step");
  if (p->scale == NN_QSCALE_POW2) { /* maxabs has no integer/fraction split */
    lua_pushinteger(L, s->int_bits);
    lua_setfield(L, -2, "int_bits");
    lua_pushinteger(L, s->frac_bits);
    lua_setfield(L, -2, "frac_bits");
  }
  lua_pushinteger(L, p->bits);
  lua_setfield(L, -2, "bits");
}

/* q, tensor -> new quantized tensor (the argument is untouched) */
static int apply_tensor(lua_State *L, const nn_quant_params *p) {
  nn_error err;
  l_box *b = l_pushtensorbox(L);
  nn_tensor *t = l_checktensor(L, 2); /* resolved after the allocation (l_aux.h) */
  if (!(b->p = nn_tensor_clone(t, &err))) return l_raise(L, &err);
  if (nn_quant_tensor(p, "tensor", b->p, NULL, &err) != NN_OK) return l_raise(L, &err);
  return 1;
}

/* q, net|tensor -> quantized copy (a new Net with weight_bits() == bits, or a new Tensor) */
static int q_apply(lua_State *L) {
  nn_quant_params *p = checkq(L, 1);
  nn_error err;
  if (l_testopen(L, 2, NN_MT_TENSOR)) return apply_tensor(L, p);
  if (!luaL_testudata(L, 2, NN_MT_NET)) luaL_typeerror(L, 2, "neuronas.Net or neuronas.Tensor");
  l_checknet(L, 2);
  l_box *b = l_pushnetbox(L); /* closed first: an out-of-memory raise leaks nothing */
  nn_net *net = l_checknet(L, 2); /* resolved after the allocation (l_aux.h) */
  if (!(b->p = nn_quant_net(p, net, NULL, &err))) return l_raise(L, &err);
  return 1;
}

/* q, net -> { {name=, weights=, mse=, saturated=, saturated_count=, int_bits=, frac_bits=,
 *              step=, max_abs=, bits=}, ... } per crossbar-mapped layer; q, tensor -> one table */
static int q_report(lua_State *L) {
  nn_quant_params *p = checkq(L, 1);
  nn_error err;
  nn_tensor *t = l_testopen(L, 2, NN_MT_TENSOR);
  if (t) {
    nn_quant_stats s;
    nn_tensor *c = nn_tensor_clone(t, &err);
    if (!c) return l_raise(L, &err);
    nn_status st = nn_quant_tensor(p, "tensor", c, &s, &err);
    nn_tensor_free(c);
    if (st != NN_OK) return l_raise(L, &err);
    push_stats(L, NULL, p, &s);
    return 1;
  }
  if (!luaL_testudata(L, 2, NN_MT_NET)) luaL_typeerror(L, 2, "neuronas.Net or neuronas.Tensor");
  size_t n = nn_net_layer_count(l_checknet(L, 2));
  nn_quant_layer_report *rep = lua_newuserdatauv(L, (n ? n : 1) * sizeof *rep, 0);
  nn_net *net = l_checknet(L, 2); /* resolved after the allocation (l_aux.h) */
  if (nn_quant_net_report(p, net, rep, &err) != NN_OK) return l_raise(L, &err);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    push_stats(L, rep[i].name, p, &rep[i].stats);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* q, key -> field value or method */
static int q_index(lua_State *L) {
  nn_quant_params *p = checkq(L, 1);
  const char *k = l_tolstring_nonul(L, 2, NULL);
  if (!k) return 0; /* no such field or method: nil */
  const l_field *f = l_field_find(q_fields, k);
  if (f) {
    if (strcmp(k, "int_bits") == 0 && p->int_bits == NN_QUANT_INT_BITS_DYNAMIC) {
      lua_pushnil(L); /* dynamic: chosen per tensor */
      return 1;
    }
    return l_field_push(L, f, p);
  }
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "methods");
  lua_getfield(L, -1, k);
  return 1;
}

static int q_tostring(lua_State *L) {
  nn_quant_params *p = checkq(L, 1);
  if (p->int_bits != NN_QUANT_INT_BITS_DYNAMIC)
    lua_pushfstring(L, "neuronas.Quantizer (FxP%d, %s, Q%d.%d)", p->bits,
                    nn_rounding_str(p->rounding), p->int_bits, p->bits - p->int_bits);
  else
    lua_pushfstring(L, "neuronas.Quantizer (FxP%d, %s, %s)", p->bits, nn_rounding_str(p->rounding),
                    nn_qscale_str(p->scale));
  return 1;
}

int nn_lua_open_quant(lua_State *L) {
  static const luaL_Reg meta[] = {{"__index", q_index}, {"__tostring", q_tostring}, {NULL, NULL}};
  static const luaL_Reg methods[] = {{"apply", q_apply}, {"report", q_report}, {NULL, NULL}};
  l_newtype(L, NN_MT_QUANTIZER, meta, NULL);
  luaL_getmetatable(L, NN_MT_QUANTIZER);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "methods");
  lua_pop(L, 1);
  lua_pushcfunction(L, q_new);
  lua_setfield(L, -2, "quantizer");
  return 0;
}
