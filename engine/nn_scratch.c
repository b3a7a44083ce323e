/* nn_scratch.c: the per-thread block cache of nn_scratch.h. Each block carries a header with its
 * capacity; the cache is a small array per thread (a pthread key, so a worker's cache is freed
 * when the worker exits). A request takes the smallest cached block that holds it without
 * wasting more than half of it, else a new one from malloc. */
#include "nn_scratch.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define SCRATCH_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SCRATCH_CACHE 0
#endif
#endif
#ifndef SCRATCH_CACHE
#define SCRATCH_CACHE 1
#endif

/* header size = payload alignment (a cache line; tensors promise 64-byte aligned data) */
#define HDR 64

typedef struct cache {
  void *blk[NN_SCRATCH_SLOTS]; /* block starts (header), NULL = empty slot */
  size_t cap[NN_SCRATCH_SLOTS];
  size_t bytes;
  size_t limit;                /* bytes kept at most (nn_scratch_set_limit) */
} cache;

static size_t cap_of(void *p) {
  size_t c;
  memcpy(&c, (char *)p - HDR, sizeof c);
  return c;
}

static void *fresh(size_t bytes) {
  if (bytes > SIZE_MAX - 2 * HDR) return NULL;
  char *b = aligned_alloc(HDR, (bytes + 2 * HDR - 1) & ~(size_t)(HDR - 1)); /* payload 64-byte aligned */
  if (!b) return NULL;
  memcpy(b, &bytes, sizeof bytes);
  return b + HDR;
}

#if SCRATCH_CACHE
static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int key_ok;

static void cache_free(void *v) {
  cache *c = v;
  for (int i = 0; i < NN_SCRATCH_SLOTS; i++) free(c->blk[i]);
  free(c);
}
static void key_init(void) { key_ok = pthread_key_create(&key, cache_free) == 0; }

static cache *my_cache(int create) {
  pthread_once(&once, key_init);
  if (!key_ok) return NULL;
  cache *c = pthread_getspecific(key);
  if (!c && create && (c = calloc(1, sizeof *c))) {
    c->limit = NN_SCRATCH_MAX_BYTES;
    if (pthread_setspecific(key, c) != 0) {
      free(c);
      c = NULL;
    }
  }
  return c;
}
#endif

void *nn_scratch_get(size_t bytes) {
#if SCRATCH_CACHE
  if (bytes >= NN_SCRATCH_MIN) {
    cache *c = my_cache(0);
    int best = -1;
    for (int i = 0; c && i < NN_SCRATCH_SLOTS; i++)
      if (c->blk[i] && c->cap[i] >= bytes && c->cap[i] / 2 <= bytes && (best < 0 || c->cap[i] < c->cap[best]))
        best = i;
    if (best >= 0) {
      char *b = c->blk[best];
      c->blk[best] = NULL;
      c->bytes -= c->cap[best];
      return b + HDR;
    }
  }
#endif
  return fresh(bytes);
}

void *nn_scratch_zeroed(size_t bytes) {
  void *p = nn_scratch_get(bytes);
  if (p) memset(p, 0, bytes);
  return p;
}

void nn_scratch_put(void *p) {
  if (!p) return;
  size_t cap = cap_of(p);
  char *b = (char *)p - HDR;
#if SCRATCH_CACHE
  cache *c = cap >= NN_SCRATCH_MIN ? my_cache(1) : NULL;
  if (c && cap <= c->limit) {
    /* room: an empty slot, making room by dropping smaller blocks first if the budget is full */
    int slot = -1;
    for (int i = 0; i < NN_SCRATCH_SLOTS && slot < 0; i++)
      if (!c->blk[i]) slot = i;
    while (c->bytes + cap > c->limit || slot < 0) {
      int small = -1;
      for (int i = 0; i < NN_SCRATCH_SLOTS; i++)
        if (c->blk[i] && (small < 0 || c->cap[i] < c->cap[small])) small = i;
      if (small < 0 || c->cap[small] > cap) break; /* keep the cache's larger blocks instead */
      free(c->blk[small]);
      c->bytes -= c->cap[small];
      c->blk[small] = NULL;
      if (slot < 0) slot = small;
    }
    if (slot >= 0 && c->bytes + cap <= c->limit) {
      c->blk[slot] = b;
      c->cap[slot] = cap;
      c->bytes += cap;
      return;
    }
  }
#else
  (void)cap;
#endif
  free(b);
}

size_t nn_scratch_set_limit(size_t bytes) {
#if SCRATCH_CACHE
  cache *c = my_cache(1);
  if (!c) return NN_SCRATCH_MAX_BYTES;
  size_t old = c->limit;
  c->limit = bytes;
  while (c->bytes > bytes) { /* the largest blocks go first */
    int big = -1;
    for (int i = 0; i < NN_SCRATCH_SLOTS; i++)
      if (c->blk[i] && (big < 0 || c->cap[i] > c->cap[big])) big = i;
    free(c->blk[big]);
    c->bytes -= c->cap[big];
    c->blk[big] = NULL;
  }
  return old;
#else
  (void)bytes;
  return NN_SCRATCH_MAX_BYTES;
#endif
}

void nn_scratch_trim(void) {
#if SCRATCH_CACHE
  cache *c = my_cache(0);
  if (!c) return;
  for (int i = 0; i < NN_SCRATCH_SLOTS; i++) free(c->blk[i]), c->blk[i] = NULL;
  c->bytes = 0;
#endif
}
