/* Blob writer: hashes while streaming into blobs/, verifies, renames into place.
 *
 * A blob whose digest is known in advance (a pull, a copy of a known blob) is
 * written to blobs/sha256-<hex>-partial, locked with flock while open so two
 * writers never interleave, and kept on abort so a later writer can resume it:
 * the existing bytes are hashed again (the hash state cannot be saved portably)
 * and writing continues at their end. A blob of unknown digest (an import) goes to
 * a unique blobs/.qfit-tmp-XXXXXX that is removed on abort.
 */
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define IO_CHUNK (1u << 20)

struct qfit_blob_writer {
    qfit_store  *s;
    int          fd;
    bool         random;         /* QFIT_BLOB_RANDOM: written at offsets, hashed at commit */
    bool         has_expected;
    qfit_digest  expected;
    char         path[ST_PATH_MAX];   /* the partial or temporary file */
    EVP_MD_CTX  *ctx;
    uint64_t     size;
};

static void writer_free(qfit_blob_writer *w, bool remove_file)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    if (remove_file && w->path[0]) unlink(w->path);
    EVP_MD_CTX_free(w->ctx);
    free(w);
}

/* Hash the bytes already in the partial file, leaving the offset at its end. */
static int rehash_existing(qfit_blob_writer *w, char *err, size_t err_len)
{
    unsigned char *buf = malloc(IO_CHUNK);
    if (!buf) { snprintf(err, err_len, "out of memory"); return -1; }
    for (;;) {
        ssize_t r = read(w->fd, buf, IO_CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, err_len, "cannot read partial blob '%s': %s", w->path, strerror(errno));
            free(buf);
            return -1;
        }
        if (r == 0) break;
        EVP_DigestUpdate(w->ctx, buf, (size_t)r);
        w->size += (uint64_t)r;
    }
    free(buf);
    return 0;
}

qfit_blob_writer *qfit_blob_begin(qfit_store *s, const qfit_digest *expected, unsigned flags,
                                  char *err, size_t err_len)
{
    char dir[ST_PATH_MAX];
    if (st_path(dir, sizeof dir, err, err_len, "%s/blobs", s->root) != 0 || st_mkdirs(dir, err, err_len) != 0)
        return NULL;
    qfit_blob_writer *w = calloc(1, sizeof *w);
    if (!w) { snprintf(err, err_len, "out of memory"); return NULL; }
    w->s = s;
    w->fd = -1;
    w->ctx = EVP_MD_CTX_new();
    if (!w->ctx || EVP_DigestInit_ex(w->ctx, EVP_sha256(), NULL) != 1) {
        snprintf(err, err_len, "cannot start sha256");
        writer_free(w, false);
        return NULL;
    }
    if (expected) {
        char derr[256];
        qfit_digest chk;
        char ds[QFIT_DIGEST_STR];
        qfit_digest_str(expected, ds);
        if (qfit_digest_parse(ds, &chk, derr, sizeof derr) != 0) {   /* never trust a caller's struct */
            snprintf(err, err_len, "%s", derr);
            writer_free(w, false);
            return NULL;
        }
        w->has_expected = true;
        w->expected = chk;
        if (st_path(w->path, sizeof w->path, err, err_len, "%s/sha256-%s" ST_PARTIAL_SUFFIX, dir, chk.hex) != 0) {
            w->path[0] = 0;
            writer_free(w, false);
            return NULL;
        }
        int oflags = O_RDWR | O_CREAT | O_CLOEXEC;
        w->fd = open(w->path, oflags, 0644);
        if (w->fd < 0) {
            snprintf(err, err_len, "cannot open '%s': %s", w->path, strerror(errno));
            w->path[0] = 0;
            writer_free(w, false);
            return NULL;
        }
        if (flock(w->fd, LOCK_EX | LOCK_NB) != 0) {
            snprintf(err, err_len, "blob %s is being written by another process ('%s' is locked)", ds, w->path);
            w->path[0] = 0;   /* not ours to remove */
            writer_free(w, false);
            return NULL;
        }
        if (flags & QFIT_BLOB_RANDOM) {
            w->random = true;   /* existing bytes are kept; the caller knows which ranges are done */
        } else if (flags & QFIT_BLOB_RESUME) {
            if (rehash_existing(w, err, err_len) != 0) { writer_free(w, false); return NULL; }
        } else if (ftruncate(w->fd, 0) != 0) {
            snprintf(err, err_len, "cannot truncate '%s': %s", w->path, strerror(errno));
            writer_free(w, false);
            return NULL;
        }
    } else {
        if (flags & QFIT_BLOB_RANDOM) {
            snprintf(err, err_len, "a blob written at offsets needs its expected digest");
            writer_free(w, false);
            return NULL;
        }
        if (st_path(w->path, sizeof w->path, err, err_len, "%s/" ST_TMP_PREFIX "XXXXXX", dir) != 0) {
            w->path[0] = 0;
            writer_free(w, false);
            return NULL;
        }
        w->fd = mkstemp(w->path);
        if (w->fd < 0) {
            snprintf(err, err_len, "cannot create a temporary file in '%s': %s", dir, strerror(errno));
            w->path[0] = 0;
            writer_free(w, false);
            return NULL;
        }
        if (fchmod(w->fd, 0644) != 0) { /* best effort: mkstemp makes 0600 */ }
        /* locked so a concurrent `qfit prune` leaves a write in progress alone */
        if (flock(w->fd, LOCK_EX | LOCK_NB) != 0) { /* a fresh unique file: cannot be held */ }
    }
    return w;
}

uint64_t qfit_blob_offset(const qfit_blob_writer *w)
{
    return w->size;
}

int qfit_blob_write_at(qfit_blob_writer *w, uint64_t offset, const void *data, size_t n,
                       char *err, size_t err_len)
{
    if (!w->random) {
        snprintf(err, err_len, "blob '%s' was not opened with QFIT_BLOB_RANDOM", w->path);
        return -1;
    }
    if (offset > (uint64_t)QFIT_BLOB_MAX_SIZE || n > (uint64_t)QFIT_BLOB_MAX_SIZE - offset) {
        snprintf(err, err_len, "blob '%s': range at %llu of %zu bytes is beyond %lld bytes", w->path,
                 (unsigned long long)offset, n, (long long)QFIT_BLOB_MAX_SIZE);
        return -1;
    }
    const char *p = data;
    size_t left = n;
    while (left) {
        ssize_t r = pwrite(w->fd, p, left, (off_t)(offset + (n - left)));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, err_len, "cannot write '%s' at offset %llu (%zu bytes still to write): %s", w->path,
                     (unsigned long long)(offset + (n - left)), left, strerror(errno));
            return -1;
        }
        p += r;
        left -= (size_t)r;
    }
    return 0;
}

int qfit_blob_write(qfit_blob_writer *w, const void *data, size_t n, char *err, size_t err_len)
{
    if (w->random) {
        snprintf(err, err_len, "blob '%s' was opened with QFIT_BLOB_RANDOM: use qfit_blob_write_at", w->path);
        return -1;
    }
    if (w->size + n > (uint64_t)QFIT_BLOB_MAX_SIZE) {
        snprintf(err, err_len, "blob '%s' would exceed %lld bytes", w->path, (long long)QFIT_BLOB_MAX_SIZE);
        return -1;
    }
    const char *p = data;
    size_t left = n;
    while (left) {
        ssize_t r = write(w->fd, p, left);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, err_len, "cannot write '%s' at offset %llu (%zu bytes still to write): %s", w->path,
                     (unsigned long long)(w->size + (uint64_t)(n - left)), left, strerror(errno));
            return -1;
        }
        p += r;
        left -= (size_t)r;
    }
    EVP_DigestUpdate(w->ctx, data, n);
    w->size += n;
    return 0;
}

void qfit_blob_abort(qfit_blob_writer *w)
{
    if (!w) return;
    writer_free(w, !w->has_expected);
}

int qfit_blob_commit(qfit_blob_writer *w, qfit_digest *out, int64_t *size, char *err, size_t err_len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    qfit_digest got;
    if (fsync(w->fd) != 0) {
        snprintf(err, err_len, "fsync '%s': %s", w->path, strerror(errno));
        qfit_blob_abort(w);
        return -1;
    }
    if (w->random) {
        /* the ranges came in any order: hash the whole file now */
        int64_t n;
        if (st_hash_file(w->path, &got, &n, NULL, NULL, err, err_len) != 0) { qfit_blob_abort(w); return -1; }
        w->size = (uint64_t)n;
    } else {
        if (EVP_DigestFinal_ex(w->ctx, md, &mdlen) != 1 || mdlen != 32) {
            snprintf(err, err_len, "sha256 of '%s' failed", w->path);
            qfit_blob_abort(w);
            return -1;
        }
        st_hex(md, &got);
    }
    if (w->has_expected && !qfit_digest_equal(&got, &w->expected)) {
        snprintf(err, err_len, "digest mismatch, expected \"sha256:%s\", got \"sha256:%s\" (%llu bytes; the "
                 "file is removed and must be downloaded again)", w->expected.hex, got.hex,
                 (unsigned long long)w->size);
        writer_free(w, true);
        return -1;
    }
    char final[ST_PATH_MAX];
    if (qfit_store_blob_path(w->s, &got, final, sizeof final) < 0) {
        snprintf(err, err_len, "blob path too long under '%s'", w->s->root);
        writer_free(w, true);
        return -1;
    }
    /* rename while still holding the lock on a partial file */
    if (rename(w->path, final) != 0) {
        snprintf(err, err_len, "cannot rename '%s' to '%s': %s", w->path, final, strerror(errno));
        writer_free(w, true);
        return -1;
    }
    w->path[0] = 0;
    char dir[ST_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/blobs", w->s->root);
    int rc = st_fsync_dir(dir, err, err_len);
    if (out) *out = got;
    if (size) *size = (int64_t)w->size;
    writer_free(w, false);
    return rc;
}

int qfit_store_add_blob(qfit_store *s, const void *data, size_t len, qfit_digest *out, char *err, size_t err_len)
{
    qfit_digest_of(data, len, out);
    int64_t have;
    if (qfit_store_has_blob(s, out, &have) && have == (int64_t)len) return 0;
    qfit_blob_writer *w = qfit_blob_begin(s, NULL, 0, err, err_len);
    if (!w) return -1;
    if (qfit_blob_write(w, data, len, err, err_len) != 0) { qfit_blob_abort(w); return -1; }
    return qfit_blob_commit(w, out, NULL, err, err_len);
}
