/* l_train.c: neuronas.Trainer, surrogate-gradient BPTT training with QAT for Lua
 * (docs/training.md). nn.trainer{ net = , ... } copies the net's weights; tr:step(x, y) trains on a
 * batch; tr:evaluate(x, y) measures; tr:export(net) writes the weights back; tr:save/load
 * keep checkpoints with the optimizer state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "l_aux.h"
#include "neuronas/nn_net.h"
#include "neuronas/nn_train.h"

#define NN_MT_TRAINER "neuronas.Trainer"

static nn_trainer *checktr(lua_State *L, int idx) { return l_checkopen(L, idx, NN_MT_TRAINER); }

static const char *const OPTIMIZERS[] = {"sgd", "adam", NULL};

typedef struct topts {
  nn_train_params p;
  int optimizer;
  int64_t epochs, steps_per_epoch;
} topts;

/* The longest cosine schedule: total_steps, and epochs x steps_per_epoch, at most this. */
#define MAX_TOTAL 9.2e18

static const l_field trainer_fields[] = {
    {"net", L_F_SKIP, 0, 0, 0, NULL, "the neuronas.Net to train (weights are copied)"},
    {"optimizer", L_F_ENUM, 0, 0, offsetof(topts, optimizer), OPTIMIZERS, "sgd or adam"},
    {"lr", L_F_NUM, 1e-12, 1e6, offsetof(topts, p.lr), NULL, "initial learning rate"},
    {"lr_min", L_F_NUM, 0, 1e6, offsetof(topts, p.lr_min), NULL, "cosine end point"},
    {"momentum", L_F_NUM, 0, 0.999999, offsetof(topts, p.momentum), NULL, "SGD momentum"},
    {"weight_decay", L_F_NUM, 0, 1, offsetof(topts, p.weight_decay), NULL, "L2 on every parameter"},
    {"beta1", L_F_NUM, 0, 0.999999, offsetof(topts, p.beta1), NULL, "Adam"},
    {"beta2", L_F_NUM, 0, 0.999999, offsetof(topts, p.beta2), NULL, "Adam"},
    {"eps", L_F_NUM, 1e-30, 1, offsetof(topts, p.adam_eps), NULL, "Adam"},
    {"bits", L_F_INT32, NN_WEIGHT_BITS_MIN, NN_WEIGHT_BITS_MAX, offsetof(topts, p.bits), NULL,
     "32 = float, else QAT at FxP-bits"},
    {"dropout", L_F_NUM, 0, 0.99, offsetof(topts, p.dropout), NULL, "classifier dropout"},
    {"seed", L_F_U64, 0, 0, offsetof(topts, p.seed), NULL, "dropout masks"},
    {"threads", L_F_INT32, 0, NN_TRAIN_MAX_THREADS, offsetof(topts, p.threads), NULL,
     "threads of a step (0 = one per idle core); results do not depend on it"},
    {"total_steps", L_F_INT, 0, MAX_TOTAL, offsetof(topts, p.total_steps), NULL, "cosine length"},
    {"epochs", L_F_INT, 0, 1e9, offsetof(topts, epochs), NULL, "with steps_per_epoch: cosine length"},
    {"steps_per_epoch", L_F_INT, 0, MAX_TOTAL, offsetof(topts, steps_per_epoch), NULL, "batches per epoch"},
    {NULL, 0, 0, 0, 0, NULL, NULL}};

/* {net=, ...} -> trainer */
static int t_new(lua_State *L) {
  topts o;
  nn_error err;
  luaL_checktype(L, 1, LUA_TTABLE);
  o.p = nn_train_params_default();
  o.p.lr_min = NAN; /* not given: set from lr below */
  o.optimizer = 0;
  o.epochs = o.steps_per_epoch = 0;
  l_parse_fields(L, 1, 1, trainer_fields, &o);
  o.p.optimizer = o.optimizer == 1 ? NN_OPT_ADAM : NN_OPT_SGD;
  if ((o.epochs > 0) != (o.steps_per_epoch > 0))
    return luaL_argerror(L, 1, "fields 'epochs' and 'steps_per_epoch' go together");
  if (o.epochs > 0 && o.steps_per_epoch > (int64_t)MAX_TOTAL / o.epochs)
    return luaL_argerror(L, 1, lua_pushfstring(L, "fields 'epochs' and 'steps_per_epoch': a product (the "
                                               "cosine length) of at most %I expected, got %I x %I",
                                               (lua_Integer)MAX_TOTAL, (lua_Integer)o.epochs,
                                               (lua_Integer)o.steps_per_epoch));
  if (o.epochs > 0) o.p.total_steps = o.epochs * o.steps_per_epoch;
  lua_getfield(L, 1, "net");
  if (!l_testopen(L, -1, NN_MT_NET))
    return luaL_argerror(L, 1, lua_pushfstring(L, "field 'net': %s expected, got %s", NN_MT_NET,
                                               luaL_typename(L, -1)));
  const double lr_min = nn_train_params_default().lr_min;
  if (isnan(o.p.lr_min)) o.p.lr_min = lr_min < o.p.lr ? lr_min : o.p.lr; /* the default, or lr below it */
  if (o.p.lr_min > o.p.lr)
    return luaL_argerror(L, 1, lua_pushfstring(L, "field 'lr_min': at most lr (%f) expected, got %f",
                                               o.p.lr, o.p.lr_min));
  l_box *b = l_newbox(L, NN_MT_TRAINER, 0);
  nn_net *net = l_checknet(L, -2); /* resolved after the allocation (l_aux.h) */
  b->p = nn_trainer_new(net, &o.p, &err);
  if (!b->p) return l_raise(L, &err);
  return 1;
}

static int t_gc(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_TRAINER);
  l_check_close(L, NN_MT_TRAINER);
  nn_trainer_free(b->p);
  b->p = NULL;
  return 0;
}

static void push_result(lua_State *L, const nn_train_result *r) {
  lua_createtable(L, 0, 6);
  lua_pushnumber(L, r->forward_s), lua_setfield(L, -2, "forward_s");
  lua_pushnumber(L, r->backward_s), lua_setfield(L, -2, "backward_s");
  lua_pushnumber(L, r->update_s), lua_setfield(L, -2, "update_s");
  lua_pushnumber(L, r->lr), lua_setfield(L, -2, "lr");
  lua_pushinteger(L, (lua_Integer)r->samples), lua_setfield(L, -2, "samples");
}

/* tr, x, y -> loss, correct, {forward_s, backward_s, update_s, lr, samples} */
static int t_step(lua_State *L) {
  nn_trainer *tr = checktr(L, 1);
  nn_tensor *x = l_checktensor(L, 2), *y = l_checktensor(L, 3);
  nn_train_result r;
  nn_error err;
  if (nn_trainer_step(tr, x, y, &r, &err) != NN_OK) return l_raise(L, &err);
  lua_pushnumber(L, r.loss);
  lua_pushinteger(L, (lua_Integer)r.correct);
  push_result(L, &r);
  return 3;
}

/* tr, x, y -> loss, correct (evaluation mode: running BN stats, no dropout, no update) */
static int t_evaluate(lua_State *L) {
  nn_trainer *tr = checktr(L, 1);
  nn_tensor *x = l_checktensor(L, 2), *y = l_checktensor(L, 3);
  nn_train_result r;
  nn_error err;
  if (nn_trainer_evaluate(tr, x, y, &r, &err) != NN_OK) return l_raise(L, &err);
  lua_pushnumber(L, r.loss);
  lua_pushinteger(L, (lua_Integer)r.correct);
  return 2;
}

/* tr, x[, train=false] -> S x classes tensor (T-averaged output) */
static int t_forward(lua_State *L) {
  int train = lua_toboolean(L, 3);
  nn_error err;
  checktr(L, 1), l_checktensor(L, 2);
  l_box *b = l_pushtensorbox(L);
  nn_trainer *tr = checktr(L, 1); /* resolved after the allocation (l_aux.h) */
  nn_tensor *x = l_checktensor(L, 2);
  nn_tensor *out = NULL;
  if (nn_trainer_forward(tr, x, train, &out, &err) != NN_OK) return l_raise(L, &err);
  b->p = out;
  return 1;
}

/* tr, net[, quantized=true] -> net (weights, BN parameters and running stats copied in;
 * FxP-bits crossbar weights and weight_bits = bits when the trainer does QAT and quantized) */
static int t_export(lua_State *L) {
  nn_trainer *tr = checktr(L, 1);
  nn_net *net = l_checknet(L, 2);
  int quantized = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
  nn_error err;
  if (nn_trainer_export(tr, net, quantized, &err) != NN_OK) return l_raise(L, &err);
  lua_settop(L, 2);
  return 1;
}

/* tr, path[, user string] -> tr */
static int t_save(lua_State *L) {
  nn_trainer *tr = checktr(L, 1);
  const char *path = l_checkstring(L, 2, "path");
  const char *user = lua_isnoneornil(L, 3) ? NULL : l_checkstring(L, 3, "user string");
  nn_error err;
  if (nn_trainer_save(tr, path, user, &err) != NN_OK) return l_raise(L, &err);
  lua_settop(L, 1);
  return 1;
}

/* tr, path -> user string or nil */
static int t_load(lua_State *L) {
  nn_trainer *tr = checktr(L, 1);
  const char *path = l_checkstring(L, 2, "path");
  char *user = NULL;
  nn_error err;
  if (nn_trainer_load(tr, path, &user, &err) != NN_OK) return l_raise(L, &err);
  if (user) {
    lua_pushstring(L, user);
    free(user);
  } else {
    lua_pushnil(L);
  }
  return 1;
}

static int t_tostring(lua_State *L) {
  l_box *b = l_checkbox(L, 1, NN_MT_TRAINER);
  if (!b->p) {
    lua_pushliteral(L, "neuronas.Trainer (closed)");
    return 1;
  }
  const nn_train_params *p = nn_trainer_params(b->p);
  lua_pushfstring(L, "neuronas.Trainer (%s, lr %f, %s, step %I)",
                  p->optimizer == NN_OPT_ADAM ? "adam" : "sgd", nn_trainer_lr(b->p),
                  p->bits >= 32 ? "float" : lua_pushfstring(L, "QAT FxP%d", p->bits),
                  (lua_Integer)nn_trainer_steps(b->p));
  return 1;
}

/* Properties: steps, total_steps (settable), lr (of the next step), bits, optimizer. */
static int t_index(lua_State *L) {
  l_checkbox(L, 1, NN_MT_TRAINER); /* a metamethod checks its self like a method does */
  const char *k = l_tolstring_nonul(L, 2, NULL);
  if (!k) return 0; /* no such field or method: nil */
  luaL_getmetafield(L, 1, "methods");
  if (lua_getfield(L, -1, k) != LUA_TNIL) return 1; /* methods work on closed trainers too */
  nn_trainer *tr = checktr(L, 1);
  const nn_train_params *p = nn_trainer_params(tr);
  if (strcmp(k, "steps") == 0) lua_pushinteger(L, (lua_Integer)nn_trainer_steps(tr));
  else if (strcmp(k, "total_steps") == 0) lua_pushinteger(L, (lua_Integer)p->total_steps);
  else if (strcmp(k, "lr") == 0) lua_pushnumber(L, nn_trainer_lr(tr));
  else if (strcmp(k, "bits") == 0) lua_pushinteger(L, p->bits);
  else if (strcmp(k, "optimizer") == 0) lua_pushstring(L, p->optimizer == NN_OPT_ADAM ? "adam" : "sgd");
  else lua_pushnil(L);
  return 1;
}

static int t_newindex(lua_State *L) {
  nn_trainer *tr = checktr(L, 1);
  const char *k = l_checkstring(L, 2, "field name");
  if (strcmp(k, "total_steps") == 0) {
    lua_Integer v = luaL_checkinteger(L, 3);
    luaL_argcheck(L, v >= 0, 3, "total_steps >= 0 expected");
    nn_trainer_set_total_steps(tr, (int64_t)v);
    return 0;
  }
  return luaL_error(L, "neuronas.Trainer: field '%s' is read-only or unknown (settable: total_steps)", k);
}

int nn_lua_open_train(lua_State *L) {
  static const luaL_Reg meta[] = {{"__gc", t_gc},       {"__close", t_gc},
                                  {"__tostring", t_tostring}, {"__index", t_index},
                                  {"__newindex", t_newindex}, {NULL, NULL}};
  static const luaL_Reg methods[] = {{"step", t_step},     {"evaluate", t_evaluate},
                                     {"forward", t_forward}, {"export", t_export},
                                     {"save", t_save},     {"load", t_load},
                                     {"close", t_gc},      {NULL, NULL}};
  l_newtype(L, NN_MT_TRAINER, meta, NULL);
  luaL_getmetatable(L, NN_MT_TRAINER);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "methods");
  lua_pop(L, 1);
  lua_pushcfunction(L, t_new);
  lua_setfield(L, -2, "trainer");
  return 0;
}
