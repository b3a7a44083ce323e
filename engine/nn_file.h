/* nn_file.h: opening a file the engine reads whole (data sets, safetensors). */
#ifndef NN_FILE_H
#define NN_FILE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

/* Opens path for reading ("rb") when it is a regular file, with its stat in *sb. The open does
 * not block (a pipe's open for reading waits for a writer: the kind is checked with fstat before
 * anything is read, then the descriptor reads as usual). Returns the stream, or NULL with why
 * ("cannot open (<OS error>)", "is a folder, a file expected" or "not a regular file", without
 * the path) written into why[nwhy]. */
FILE *nn_file_open_regular(const char *path, struct stat *sb, char *why, size_t nwhy);

#endif
