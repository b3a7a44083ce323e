/* nn_file.c: see nn_file.h. */
#include "nn_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

FILE *nn_file_open_regular(const char *path, struct stat *sb, char *why, size_t nwhy) {
  const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    snprintf(why, nwhy, "cannot open (%s)", strerror(errno));
    return NULL;
  }
  const char *bad = NULL;
  if (fstat(fd, sb) != 0) bad = strerror(errno);
  else if (S_ISDIR(sb->st_mode)) bad = "is a folder, a file expected";
  else if (!S_ISREG(sb->st_mode)) bad = "not a regular file";
  FILE *f = NULL;
  if (!bad) {
    const int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 || !(f = fdopen(fd, "rb"))) bad = strerror(errno);
  }
  if (bad) {
    snprintf(why, nwhy, "%s", bad);
    close(fd);
    return NULL;
  }
  return f;
}
