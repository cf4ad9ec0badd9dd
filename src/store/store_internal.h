/* Internal to src/store: do not include from other modules.
 * File helpers shared by the store's files (atomic writes, hashing, walking). */
#ifndef QFIT_STORE_INTERNAL_H
#define QFIT_STORE_INTERNAL_H

#include "qfit/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_TMP_PREFIX  ".qfit-tmp-"
#define ST_PARTIAL_SUFFIX "-partial"
#define ST_PATH_MAX 4096

struct qfit_store {
    char *root;
    bool  prune;   /* remove blobs a removed/replaced manifest leaves unreferenced */
};

/* s[0..len) quoted for a message: printable ASCII kept, others as \xNN, cut at 80. */
void st_quote(const char *s, size_t len, char *buf, size_t cap);
void st_hex(const unsigned char md[32], qfit_digest *out);

/* snprintf into a path buffer; -1 + message if it does not fit. */
int  st_path(char *buf, size_t cap, char *err, size_t err_len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* mkdir -p (mode 0755). */
int  st_mkdirs(const char *path, char *err, size_t err_len);
/* fsync the directory holding path (the directory itself when is_dir). */
int  st_fsync_dir(const char *dir, char *err, size_t err_len);
/* Write data to path atomically: <dir>/.qfit-tmp-XXXXXX, fsync, rename, fsync dir. */
int  st_write_atomic(const char *path, const void *data, size_t len, char *err, size_t err_len);
/* Whole file into memory, refusing files over max bytes. NUL-terminated. */
char *st_read_file(const char *path, size_t max, size_t *len, char *err, size_t err_len);
/* sha256 of a file's content (streamed); progress may be NULL. */
int  st_hash_file(const char *path, qfit_digest *out, int64_t *size, qfit_store_progress_fn progress,
                  void *progress_ctx, char *err, size_t err_len);

/* The manifest path of a name, following existing directories case-insensitively
 * (so "hf.co/User/Repo" stored by Ollama is found as "hf.co/user/repo"); parts that
 * do not exist keep the name's spelling. *exists says whether the file exists. */
int  st_manifest_path(const qfit_store *s, const qfit_name *n, char *buf, size_t cap, bool *exists,
                      char *err, size_t err_len);

/* The set of digests every manifest names. -1 (with the first unreadable manifest
 * in err) when any manifest cannot be read: callers then must not delete blobs. */
typedef struct {
    qfit_digest *d;
    size_t n, cap;
} st_digest_set;
int  st_referenced(const qfit_store *s, st_digest_set *set, char *err, size_t err_len);
bool st_set_has(const st_digest_set *set, const qfit_digest *d);
void st_set_free(st_digest_set *set);

/* Remove the blobs of m that no manifest names any more (when pruning is on).
 * Best effort: a failure is reported in err and returns -1, nothing else changes. */
int  st_remove_unused(qfit_store *s, const qfit_manifest *m, char *err, size_t err_len);

/* Add a GGUF file as a model blob (linked or copied per opts) and its config blob
 * (filled from the GGUF metadata); no manifest is written. 0 or -1 + message. */
int  st_add_gguf(qfit_store *s, const char *gguf_path, const qfit_import_opts *opts, bool *linked,
                 qfit_layer *model, qfit_layer *config, char *err, size_t err_len);

#endif
