/* nn_scratch.h: large per-call scratch buffers, recycled per thread.
 *
 * A forward pass allocates a few dozen buffers of 0.1-10 MB and frees them when it returns; a
 * search runs thousands of forwards. Through malloc each such buffer is fresh memory from the
 * kernel (glibc maps and unmaps large blocks, or trims the heap top), and the page faults of
 * touching it cost a quarter of a small forward (measured: SNASNet's scaled-down candidate,
 * 65 -> 48 ms with malloc told to keep its memory). nn_scratch_get/put keep freed blocks of
 * NN_SCRATCH_MIN bytes or more in a per-thread cache (up to NN_SCRATCH_SLOTS blocks and
 * NN_SCRATCH_MAX_BYTES) and hand them out again, so a thread's steady state faults no page.
 * Blocks are plain memory: get = malloc, put = free, as far as callers can tell (no zeroing
 * unless asked, any thread may put a block another got), 64-byte aligned. Tensor data comes from
 * here too, so a search's nets recycle their weight memory. Under AddressSanitizer the cache is
 * off (get/put are malloc/free) so that use-after-put is still caught. */
#ifndef NEURONAS_NN_SCRATCH_H
#define NEURONAS_NN_SCRATCH_H

#include <stddef.h>

#define NN_SCRATCH_MIN ((size_t)64 << 10)
#define NN_SCRATCH_SLOTS 48
#define NN_SCRATCH_MAX_BYTES ((size_t)64 << 20) /* a small forward's working set; the main job's peak RSS 323 -> 465 MB (512 MB: 787 MB) */

void *nn_scratch_get(size_t bytes);    /* NULL when out of memory; bytes 0 gives a valid block */
void *nn_scratch_zeroed(size_t bytes); /* as calloc */
void nn_scratch_put(void *p);          /* NULL ok */
void nn_scratch_trim(void);            /* frees the calling thread's cached blocks */
/* Sets the calling thread's cache budget (NN_SCRATCH_MAX_BYTES until set), freeing the largest
 * cached blocks until the cache fits; returns the previous budget. A big forward (the cifar
 * presets at batch 256 allocate maps of 134 MB) raises it for its duration so that its second
 * repeat and its suffix reuse the prefix's pages instead of faulting fresh ones. */
size_t nn_scratch_set_limit(size_t bytes);

#endif
