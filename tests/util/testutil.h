/* Helpers shared by the Criterion tests. */
#ifndef QFIT_TESTUTIL_H
#define QFIT_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Path of the shared test data folder (QFIT_SHARED, default ../shared relative to
 * the repository root, which is the working directory of `make test`).
 * When it is missing: under CI (CI=true) the calling test fails; elsewhere it is
 * skipped with a clear message. Never returns NULL (the test is ended instead). */
const char *tu_shared(void);
/* tu_shared() + "/" + rel, in a static rotating buffer (8 slots). */
const char *tu_shared_path(const char *rel);
/* Whole file into a malloc'd buffer (*size set); NULL if it cannot be read. */
void *tu_read_file(const char *path, size_t *size);
/* A fresh temporary directory (under $TMPDIR or /tmp), removed at process exit. */
const char *tu_tmpdir(void);
/* Path of the qfit binary under test (QFIT_BIN, set by `make test`). */
const char *tu_qfit_bin(void);
/* Run a shell command, capture stdout+stderr (malloc'd, NUL-terminated) and the exit status. */
char *tu_run(const char *cmd, int *status);

#endif
