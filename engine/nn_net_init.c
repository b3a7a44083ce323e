/* nn_net_init.c: a net's initial values (docs/model.md "Initialisation") and the initial-weight
 * store that lets the nets of one search draw each tensor once (nn_net.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn_quant.h"
#include "neuronas/nn_rng.h"
#include "nn_net_impl.h"

/* One stored draw, keyed by everything the draws depend on. */
typedef struct init_entry {
  char path[NN_PLAN_PATH_LEN];
  uint64_t seed;
  nn_init_kind kind; /* NN_INIT_UNIFORM (a, b) or NN_INIT_NORMAL (mean a, std b) */
  float a, b;
  int ndim;
  int64_t shape[4];
  float *data;
  struct init_entry *next;
} init_entry;

/* One stored quantized layer weight: the quantizer's output for the draw src under the
 * quantizer's parameters and the layer's label (which keys its stochastic-rounding stream). */
typedef struct quant_entry {
  const init_entry *src;
  nn_quant_params q;
  char label[NN_PLAN_PATH_LEN];
  float *data;
  struct quant_entry *next;
} quant_entry;

struct nn_init_cache {
  init_entry *head;
  quant_entry *qhead;
  int64_t hits, misses, entries, bytes, max_bytes;
};

nn_init_cache *nn_init_cache_new(int64_t max_bytes, nn_error *err) {
  nn_init_cache *c;
  if (max_bytes < 0) return nn_fail(err, NN_EINVAL, "init cache: max_bytes=%lld is negative", (long long)max_bytes), NULL;
  if (!(c = calloc(1, sizeof *c))) return nn_fail(err, NN_ENOMEM, "init cache: out of memory"), NULL;
  c->max_bytes = max_bytes;
  return c;
}

void nn_init_cache_free(nn_init_cache *c) {
  if (!c) return;
  for (init_entry *e = c->head, *n; e; e = n) {
    n = e->next;
    free(e->data);
    free(e);
  }
  for (quant_entry *e = c->qhead, *n; e; e = n) {
    n = e->next;
    free(e->data);
    free(e);
  }
  free(c);
}

nn_init_cache_stats nn_init_cache_stats_of(const nn_init_cache *c) {
  nn_init_cache_stats s = {0, 0, 0, 0, 0};
  if (c) s.hits = c->hits, s.misses = c->misses, s.entries = c->entries, s.bytes = c->bytes, s.max_bytes = c->max_bytes;
  return s;
}

/* The key of t's draws from the (seed, path) stream; 0 when path is too long to key on (never
 * key on a truncated path). */
static int make_key(init_entry *key, uint64_t seed, const nn_tensor *t, const char *path, nn_init_kind kind, float a,
                    float b) {
  memset(key, 0, sizeof *key);
  if (strlen(path) >= sizeof key->path) return 0;
  snprintf(key->path, sizeof key->path, "%s", path);
  key->seed = seed, key->kind = kind, key->a = a, key->b = b, key->ndim = t->ndim;
  for (int d = 0; d < t->ndim && d < 4; d++) key->shape[d] = t->shape[d];
  return 1;
}

/* The entry of c under key, or NULL. */
static const init_entry *find(const nn_init_cache *c, const init_entry *key) {
  for (const init_entry *e = c->head; e; e = e->next)
    if (e->seed == key->seed && e->kind == key->kind && !memcmp(&e->a, &key->a, sizeof e->a) &&
        !memcmp(&e->b, &key->b, sizeof e->b) && e->ndim == key->ndim &&
        !memcmp(e->shape, key->shape, sizeof e->shape) && !strcmp(e->path, key->path))
      return e;
  return NULL;
}

/* A copy of t's values for a new entry of c, counted there as `bytes` (the entry included); NULL
 * when memory is short (the store is only a speed-up). */
static float *kept_copy(nn_init_cache *c, const nn_tensor *t, int64_t bytes) {
  float *data = malloc((size_t)t->numel * sizeof *data);
  if (!data) return NULL;
  memcpy(data, t->data, (size_t)t->numel * sizeof *data);
  c->entries++;
  c->bytes += bytes;
  return data;
}

/* Fills t with the (seed, path) stream's draws, from c when it holds them (stored there after a
 * miss when they fit). Returns the entry that holds them, or NULL. */
static const init_entry *draw(nn_init_cache *c, uint64_t seed, nn_tensor *t, const char *path, nn_init_kind kind,
                              float a, float b) {
  init_entry key;
  if (c && !make_key(&key, seed, t, path, kind, a, b)) c = NULL;
  if (c) {
    const init_entry *e = find(c, &key);
    if (e) {
      memcpy(t->data, e->data, (size_t)t->numel * sizeof *t->data);
      c->hits++;
      return e;
    }
    c->misses++;
  }
  nn_rng root = nn_rng_seed(seed), r = nn_rng_split(&root, path);
  if (kind == NN_INIT_UNIFORM) nn_tensor_uniform(t, &r, a, b);
  else nn_tensor_normal(t, &r, a, b);
  int64_t bytes = t->numel * (int64_t)sizeof(float) + (int64_t)sizeof(init_entry);
  if (!c || t->ndim > 4 || c->bytes + bytes > c->max_bytes) return NULL;
  init_entry *e = malloc(sizeof *e);
  float *data = e ? kept_copy(c, t, bytes) : NULL;
  if (!data) { /* only a speed-up: keep going without storing */
    free(e);
    return NULL;
  }
  *e = key;
  e->data = data;
  e->next = c->head;
  c->head = e;
  return e;
}

void nn_init_fill(nn_init_cache *c, uint64_t seed, const nn_plan_param *q, const char *path, nn_tensor *t) {
  switch (q->init) {
  case NN_INIT_ZEROS: nn_tensor_fill(t, 0.0f); break;
  case NN_INIT_ONES: nn_tensor_fill(t, 1.0f); break;
  default: draw(c, seed, t, path, q->init, q->a, q->b); break;
  }
}

static int same_quant(const nn_quant_params *a, const nn_quant_params *b) {
  return a->bits == b->bits && a->rounding == b->rounding && a->scale == b->scale && a->int_bits == b->int_bits &&
         a->seed == b->seed;
}

nn_status nn_init_fill_quant(nn_init_cache *c, uint64_t seed, const nn_plan_param *q, const char *path,
                             const nn_quant_params *qp, const char *label, nn_tensor *t, nn_error *err) {
  const init_entry *src = NULL;
  init_entry key;
  if (q->init == NN_INIT_UNIFORM || q->init == NN_INIT_NORMAL) {
    if (c && strlen(label) < NN_PLAN_PATH_LEN && make_key(&key, seed, t, path, q->init, q->a, q->b)) {
      /* the draw's entry, found without copying it: a stored quantized copy makes the copy moot */
      src = find(c, &key);
      for (const quant_entry *e = c->qhead; src && e; e = e->next)
        if (e->src == src && same_quant(&e->q, qp) && !strcmp(e->label, label)) {
          memcpy(t->data, e->data, (size_t)t->numel * sizeof *t->data);
          c->hits++;
          return NN_OK;
        }
    }
    if (src) { /* the draw is stored, its quantized copy is not yet */
      memcpy(t->data, src->data, (size_t)t->numel * sizeof *t->data);
      c->hits++;
    } else {
      src = draw(c, seed, t, path, q->init, q->a, q->b);
    }
  } else {
    nn_init_fill(NULL, seed, q, path, t);
  }
  nn_status st = nn_quant_tensor(qp, label, t, NULL, err);
  int64_t bytes = t->numel * (int64_t)sizeof(float) + (int64_t)sizeof(quant_entry);
  if (st != NN_OK || !src || strlen(label) >= NN_PLAN_PATH_LEN || c->bytes + bytes > c->max_bytes) return st;
  quant_entry *e = malloc(sizeof *e);
  float *data = e ? kept_copy(c, t, bytes) : NULL;
  if (!data) { /* only a speed-up */
    free(e);
    return NN_OK;
  }
  memset(e, 0, sizeof *e);
  e->src = src, e->q = *qp, e->data = data;
  snprintf(e->label, sizeof e->label, "%s", label);
  e->next = c->qhead;
  c->qhead = e;
  return NN_OK;
}
