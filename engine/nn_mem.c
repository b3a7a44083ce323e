/* nn_mem.c: the allocation count behind nn_mem.h and nn_mem_live_bytes (nn.h). Each block is
 * counted at its usable size (malloc_usable_size), so the count needs no header of its own and
 * stays right for blocks resized by realloc. The counter is atomic: fitness_many's workers
 * allocate concurrently. */
#undef malloc
#undef calloc
#undef realloc
#undef aligned_alloc
#undef strdup
#undef free

#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "neuronas/nn.h"
#include "nn_mem.h"

static _Atomic int64_t live;

static void *counted(void *p) {
  if (p) atomic_fetch_add_explicit(&live, (int64_t)malloc_usable_size(p), memory_order_relaxed);
  return p;
}

void *nn_mem_malloc(size_t n) { return counted(malloc(n)); }
void *nn_mem_calloc(size_t n, size_t size) { return counted(calloc(n, size)); }
void *nn_mem_aligned_alloc(size_t align, size_t n) { return counted(aligned_alloc(align, n)); }
char *nn_mem_strdup(const char *s) { return counted(strdup(s)); }

void *nn_mem_realloc(void *p, size_t n) {
  size_t old = p ? malloc_usable_size(p) : 0;
  void *q = realloc(p, n ? n : 1); /* never size 0, whose NULL result would be ambiguous */
  if (!q) return NULL;             /* p is untouched */
  atomic_fetch_sub_explicit(&live, (int64_t)old, memory_order_relaxed);
  return counted(q);
}

void nn_mem_free(void *p) {
  if (!p) return;
  atomic_fetch_sub_explicit(&live, (int64_t)malloc_usable_size(p), memory_order_relaxed);
  free(p);
}

int64_t nn_mem_live_bytes(void) { return atomic_load_explicit(&live, memory_order_relaxed); }
