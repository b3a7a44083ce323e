/* nn_mem.h: allocation accounting of the engine (docs/reliability.md "Memory outside Lua").
 * CMake force-includes this header into every engine source (-include), so malloc, calloc,
 * realloc, aligned_alloc, strdup and free there go through nn_mem_*, which keep a process-wide
 * count of the bytes the engine holds (nn_mem_live_bytes in nn.h). A host with a garbage
 * collector reads it to learn about memory its collector cannot see: a Lua script that drops
 * nets without closing them then still collects them at a pace set by their real size.
 * Pointers from a library the engine calls (zlib) never reach nn_mem_free; a pointer the engine
 * returns to its caller (nn_trainer_load's user string) may be released with plain free, which
 * only leaves the count a little high. The macros rename the C library's own declarations
 * (stdlib.h, string.h) when a source includes them afterwards; the types agree. */
#ifndef NEURONAS_NN_MEM_H
#define NEURONAS_NN_MEM_H

#include <stddef.h> /* only: a source may still set feature-test macros before its own includes */

void *nn_mem_malloc(size_t n);
void *nn_mem_calloc(size_t n, size_t size);
void *nn_mem_realloc(void *p, size_t n);
void *nn_mem_aligned_alloc(size_t align, size_t n);
char *nn_mem_strdup(const char *s);
void nn_mem_free(void *p);

#ifndef NN_MEM_NO_MACROS
#define malloc(n) nn_mem_malloc(n)
#define calloc(n, s) nn_mem_calloc(n, s)
#define realloc(p, n) nn_mem_realloc(p, n)
#define aligned_alloc(a, n) nn_mem_aligned_alloc(a, n)
#define strdup(s) nn_mem_strdup(s)
#define free(p) nn_mem_free(p)
#endif

#endif
