/* nn_net_init.c: a net's initial values (docs/model.md "Initialisation") and the initial-weight
 * store that lets the nets of one search draw each tensor once (nn_net.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

struct nn_init_cache {
  init_entry *head;
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
  free(c);
}

nn_init_cache_stats nn_init_cache_stats_of(const nn_init_cache *c) {
  nn_init_cache_stats s = {0, 0, 0, 0, 0};
  if (c) s.hits = c->hits, s.misses = c->misses, s.entries = c->entries, s.bytes = c->bytes, s.max_bytes = c->max_bytes;
  return s;
}

/* Fills t with the (seed, path) stream's draws, from c when it holds them (stored there after a
 * miss when they fit). */
static void draw(nn_init_cache *c, uint64_t seed, nn_tensor *t, const char *path, nn_init_kind kind, float a,
                 float b) {
  init_entry key;
  memset(&key, 0, sizeof key);
  if (c && strlen(path) >= sizeof key.path) c = NULL; /* never key on a truncated path */
  if (c) {
    snprintf(key.path, sizeof key.path, "%s", path);
    key.seed = seed, key.kind = kind, key.a = a, key.b = b, key.ndim = t->ndim;
    for (int d = 0; d < t->ndim && d < 4; d++) key.shape[d] = t->shape[d];
    for (init_entry *e = c->head; e; e = e->next)
      if (e->seed == key.seed && e->kind == kind && !memcmp(&e->a, &a, sizeof a) &&
          !memcmp(&e->b, &b, sizeof b) && e->ndim == key.ndim &&
          !memcmp(e->shape, key.shape, sizeof key.shape) && !strcmp(e->path, key.path)) {
        memcpy(t->data, e->data, (size_t)t->numel * sizeof *t->data);
        c->hits++;
        return;
      }
    c->misses++;
  }
  nn_rng root = nn_rng_seed(seed), r = nn_rng_split(&root, path);
  if (kind == NN_INIT_UNIFORM) nn_tensor_uniform(t, &r, a, b);
  else nn_tensor_normal(t, &r, a, b);
  int64_t bytes = t->numel * (int64_t)sizeof(float) + (int64_t)sizeof(init_entry);
  if (!c || t->ndim > 4 || c->bytes + bytes > c->max_bytes) return;
  init_entry *e = malloc(sizeof *e);
  float *data = malloc((size_t)t->numel * sizeof *data);
  if (!e || !data) { /* only a speed-up: keep going without storing */
    free(e), free(data);
    return;
  }
  *e = key;
  e->data = data;
  memcpy(data, t->data, (size_t)t->numel * sizeof *data);
  e->next = c->head;
  c->head = e;
  c->entries++;
  c->bytes += bytes;
}

void nn_init_fill(nn_init_cache *c, uint64_t seed, const nn_plan_param *q, const char *path, nn_tensor *t) {
  switch (q->init) {
  case NN_INIT_ZEROS: nn_tensor_fill(t, 0.0f); break;
  case NN_INIT_ONES: nn_tensor_fill(t, 1.0f); break;
  default: draw(c, seed, t, path, q->init, q->a, q->b); break;
  }
}
