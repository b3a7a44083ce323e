/* nn_gz.h: whole-file reading with transparent gzip inflation (nn_gz.c, the engine's sole zlib
 * user; docs/data.md). Private to the engine: the dataset readers and probe use it. */
#ifndef NEURONAS_NN_GZ_H
#define NEURONAS_NN_GZ_H

#include <stddef.h>
#include <stdint.h>

#include "neuronas/nn_data.h" /* NN_FILE_MAX_BYTES */

/* Reads a whole file into memory, inflating it when it starts with the gzip magic (multi-member
 * streams are concatenated). Caller frees *out with free(). Errors name the path: missing file,
 * not a regular file (a device, a pipe, a folder), larger than the bound (checked from the
 * file's size before reading), read error, corrupt or truncated gzip data. max_bytes bounds the
 * file and the output (0 = NN_FILE_MAX_BYTES). */
nn_status nn_gz_read_file(const char *path, uint8_t **out, size_t *out_n, size_t max_bytes,
                          nn_error *err);
/* The same for a buffer already in memory (`what` names it in errors; max_bytes 0 =
 * NN_FILE_MAX_BYTES). */
nn_status nn_gz_inflate(const uint8_t *src, size_t n, const char *what, uint8_t **out,
                        size_t *out_n, size_t max_bytes, nn_error *err);

#endif
