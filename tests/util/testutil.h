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
/* Called by a test that cannot exercise instruction set `isa` (e.g. "avx512") because this
 * CPU lacks it. When QFIT_REQUIRE_ISAS (comma-separated, set by .ci/run) names it, the test
 * fails: a CI host without it would otherwise never run those kernels. Otherwise a warning
 * is logged and printed, and the caller skips that ISA. */
void tu_isa_unavailable(const char *isa);
/* "vulkan0", the first Vulkan device (qfit/backend.h; CI: lavapipe). Without one the
 * calling test is skipped, except under CI=true, where it fails. */
const char *tu_vulkan_device(void);
/* Run a shell command, capture stdout+stderr (malloc'd, NUL-terminated) and the exit status. */
char *tu_run(const char *cmd, int *status);
/* A synthetic model (qfit synth: shape, qfit_ftype, seed; 2 threads) written to
 * tu_tmpdir()/name; its path (static rotating buffer, 4 slots). The test fails on error. */
const char *tu_synth(const char *shape, int ftype, uint64_t seed, const char *name);
/* The shared model (models/kjv-llama-7m-f32.gguf) quantized by qfit to the mix ftype_name
 * ("Q4_K_M"; 2 threads) into tu_tmpdir()/name; its path (static rotating buffer, 4 slots).
 * The test fails on error. */
const char *tu_kjv_quantized(const char *ftype_name, const char *name);

/* llama.cpp's importance matrix of the shared model (2 chunks of 128 tokens), rebuilt from
 * tests/data/imatrix/kjv-2x128.imatrix.txt into tu_tmpdir() with qfit's GGUF writer; the
 * test fails unless the file is byte for byte llama.cpp's (its FNV-1a 64 and size are
 * recorded in the text). Built once per process; returns its path. */
const char *tu_imatrix_kjv(void);
/* FNV-1a 64 of a whole file (asserts that it can be read). */
uint64_t tu_fnv1a_file(const char *path);

#endif
