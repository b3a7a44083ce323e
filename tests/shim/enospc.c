/* enospc.c: an LD_PRELOAD shim that makes one file's disk full, for the journal's crash-safety
 * spec (tests/spec/journal_spec.lua builds it with the C compiler; docs/reliability.md).
 *   NN_ENOSPC_PATH=/tmp/x.journal  streams whose file path begins with this (PATH.tmp too)
 *   NN_ENOSPC_BYTES=N              bytes those streams may write in all
 * A write past the budget stores what still fits and then fails with ENOSPC, as a disk that
 * fills up mid-line does; every other stream is untouched. Only fwrite is wrapped: Lua's
 * file:write goes through it, and the journal flushes after each line. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long long used;

static int matches(FILE *f) {
  const char *want = getenv("NN_ENOSPC_PATH");
  char link[64], path[4096];
  ssize_t n;
  int fd = fileno(f);
  if (!want || !*want || fd < 0) return 0;
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = 0;
  return strncmp(path, want, strlen(want)) == 0;
}

size_t fwrite(const void *p, size_t size, size_t n, FILE *f) {
  static size_t (*real)(const void *, size_t, size_t, FILE *);
  if (!real) real = (size_t(*)(const void *, size_t, size_t, FILE *))dlsym(RTLD_NEXT, "fwrite");
  if (size && n && matches(f)) {
    const char *b = getenv("NN_ENOSPC_BYTES");
    long long budget = b ? atoll(b) : 0, want = (long long)(size * n);
    if (used + want > budget) {
      long long room = budget > used ? budget - used : 0;
      if (room > 0) real(p, 1, (size_t)room, f);
      used += room;
      errno = ENOSPC;
      return (size_t)room / size;
    }
    used += want;
  }
  return real(p, size, n, f);
}
