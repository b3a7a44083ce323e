/* nn_status.c: status strings, error filling, the host log callback and the cancel flag. */
#include "neuronas/nn.h"

#include <stdarg.h>
#include <stdio.h>

const char *nn_status_str(nn_status s) {
  switch (s) {
  case NN_OK: return "ok";
  case NN_ENOMEM: return "out of memory";
  case NN_EINVAL: return "invalid argument";
  case NN_EIO: return "i/o error";
  case NN_EFORMAT: return "bad format";
  case NN_EINTR: return "interrupted";
  }
  return "unknown status";
}

nn_status nn_fail(nn_error *err, nn_status code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

static volatile int cancel_flag;

void nn_cancel_set(int on) { cancel_flag = on; }
int nn_cancelled(void) { return cancel_flag; }
