/* nn.h: NeuroNAS engine core (status, errors, logging).
 * The engine is pure C with no lua.h; bindings live in engine/lua/. */
#ifndef NEURONAS_NN_H
#define NEURONAS_NN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NN_VERSION "0.1.0"

typedef enum nn_status {
  NN_OK = 0,
  NN_ENOMEM,  /* allocation failed */
  NN_EINVAL,  /* bad argument: the message names it and what was expected */
  NN_EIO,     /* a file could not be opened, read or written */
  NN_EFORMAT, /* a file or string does not follow its format */
  NN_EINTR    /* interrupted by the host (nn_cancel flag) */
} nn_status;

/* Filled by every fallible function when non-NULL: msg names the file, field or
 * argument and what was expected. */
typedef struct nn_error {
  nn_status code;
  char msg[256];
} nn_error;

const char *nn_status_str(nn_status s);

/* Sets err (if non-NULL) to code and a printf-formatted message; returns code,
 * so failures read `return nn_fail(err, NN_EINVAL, "bits=%d outside 2..32", b);`. */
nn_status nn_fail(nn_error *err, nn_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Bytes the engine holds on the heap right now, over all threads (engine/nn_mem.h). Bindings
 * tell their host's garbage collector about growth of it, since the memory of a net, trainer
 * or tensor sits outside the host's own heap. */
int64_t nn_mem_live_bytes(void);

/* Cooperative cancellation (Ctrl-C): long loops poll nn_cancelled() and return NN_EINTR. The
 * engine never prints (failures come back as nn_status + nn_error); this flag is its only
 * process-wide setting. */
void nn_cancel_set(int on);
int nn_cancelled(void);

#ifdef __cplusplus
}
#endif
#endif
