/* File helpers of the store: atomic writes, bounded reads, streamed hashing,
 * case-insensitive manifest lookup. */
#include "store/store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define IO_CHUNK (1u << 20)

int st_path(char *buf, size_t cap, char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, err_len, "path too long (over %zu bytes) under the store", cap - 1);
        if (cap) buf[0] = 0;
        return -1;
    }
    return 0;
}

int st_mkdirs(const char *path, char *err, size_t err_len)
{
    char p[ST_PATH_MAX];
    if (st_path(p, sizeof p, err, err_len, "%s", path) != 0) return -1;
    for (char *c = p + 1; ; c++) {
        if (*c != '/' && *c != 0) continue;
        char save = *c;
        *c = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            snprintf(err, err_len, "cannot create directory '%s': %s", p, strerror(errno));
            return -1;
        }
        struct stat st;
        if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, err_len, "'%s' exists and is not a directory", p);
            return -1;
        }
        *c = save;
        if (!save) break;
    }
    return 0;
}

int st_fsync_dir(const char *dir, char *err, size_t err_len)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open directory '%s' to sync it: %s", dir, strerror(errno));
        return -1;
    }
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    /* some file systems refuse fsync on directories; the rename is then as durable as it gets */
    if (rc != 0 && e != EINVAL && e != EROFS) {
        snprintf(err, err_len, "fsync of directory '%s': %s", dir, strerror(e));
        return -1;
    }
    return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int st_write_atomic(const char *path, const void *data, size_t len, char *err, size_t err_len)
{
    char dir[ST_PATH_MAX], tmp[ST_PATH_MAX];
    if (st_path(dir, sizeof dir, err, err_len, "%s", path) != 0) return -1;
    char *slash = strrchr(dir, '/');
    if (!slash) { snprintf(err, err_len, "'%s' is not a path with a directory", path); return -1; }
    *slash = 0;
    if (st_mkdirs(dir, err, err_len) != 0) return -1;
    if (st_path(tmp, sizeof tmp, err, err_len, "%s/" ST_TMP_PREFIX "XXXXXX", dir) != 0) return -1;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, err_len, "cannot create a temporary file in '%s': %s", dir, strerror(errno));
        return -1;
    }
    if (fchmod(fd, 0644) != 0) { /* best effort: mkstemp makes 0600 */ }
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        snprintf(err, err_len, "cannot write '%s' (%zu bytes): %s", tmp, len, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        snprintf(err, err_len, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return st_fsync_dir(dir, err, err_len);
}

char *st_read_file(const char *path, size_t max, size_t *len, char *err, size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "'%s' is not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((uint64_t)st.st_size > max) {
        snprintf(err, err_len, "'%s' is %lld bytes, more than the %zu allowed", path, (long long)st.st_size, max);
        close(fd);
        return NULL;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = malloc(n + 1);
    if (!buf) { snprintf(err, err_len, "out of memory reading '%s'", path); close(fd); return NULL; }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            snprintf(err, err_len, "cannot read '%s': %s", path, r < 0 ? strerror(errno) : "file shrank while reading");
            free(buf);
            close(fd);
            return NULL;
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *len = n;
    return buf;
}

int st_hash_file(const char *path, qfit_digest *out, int64_t *size, qfit_store_progress_fn progress,
                 void *progress_ctx, char *err, size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = malloc(IO_CHUNK);
    int rc = -1;
    int64_t total = 0;
    struct stat st;
    uint64_t expect = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (!ctx || !buf || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        snprintf(err, err_len, "cannot start sha256 of '%s'", path);
        goto done;
    }
    for (;;) {
        ssize_t r = read(fd, buf, IO_CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { snprintf(err, err_len, "cannot read '%s': %s", path, strerror(errno)); goto done; }
        if (r == 0) break;
        EVP_DigestUpdate(ctx, buf, (size_t)r);
        total += r;
        if (progress) progress((uint64_t)total, expect, progress_ctx);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
        snprintf(err, err_len, "sha256 of '%s' failed", path);
        goto done;
    }
    st_hex(md, out);
    if (size) *size = total;
    rc = 0;
done:
    EVP_MD_CTX_free(ctx);
    free(buf);
    close(fd);
    return rc;
}

/* In dir, the entry equal to want ignoring case (exact spelling preferred).
 * Writes the spelling found (or want itself) into got. */
static void find_casefold(const char *dir, const char *want, char *got, size_t cap)
{
    snprintf(got, cap, "%s", want);
    char p[ST_PATH_MAX];
    struct stat st;
    if (snprintf(p, sizeof p, "%s/%s", dir, want) < (int)sizeof p && lstat(p, &st) == 0) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcasecmp(e->d_name, want) == 0) {
            snprintf(got, cap, "%s", e->d_name);
            break;
        }
    }
    closedir(d);
}

int st_manifest_path(const qfit_store *s, const qfit_name *n, char *buf, size_t cap, bool *exists,
                     char *err, size_t err_len)
{
    const char *parts[4] = { n->host, n->ns, n->model, n->tag };
    if (st_path(buf, cap, err, err_len, "%s/manifests", s->root) != 0) return -1;
    for (int i = 0; i < 4; i++) {
        char got[QFIT_NAME_HOST_MAX + 1];
        find_casefold(buf, parts[i], got, sizeof got);
        size_t l = strlen(buf);
        if (st_path(buf + l, cap - l, err, err_len, "/%s", got) != 0) return -1;
    }
    struct stat st;
    *exists = stat(buf, &st) == 0 && S_ISREG(st.st_mode);
    return 0;
}
