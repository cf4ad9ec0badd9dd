/* The store: root, manifests (write, resolve, list, remove, copy), prune, verify.
 *
 * Order of writes keeps the invariant of store.h under kill -9: blobs are renamed
 * into place only when verified, a manifest is written only when all its blobs
 * exist, and removal deletes the manifest before any blob it names.
 */
#include "store/store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qfit/config.h"

/* ---------------------------------------------------------------- root */

int qfit_store_default_root(char *buf, size_t cap, char *err, size_t err_len)
{
    char v[ST_PATH_MAX];
    const char *which = NULL;
    bool too_long;
    const char *s = qfit_env("MODELS", v, sizeof v, &which, &too_long);
    if (s || too_long) {   /* QFIT_MODELS, else OLLAMA_MODELS */
        if (too_long || snprintf(buf, cap, "%s", s) >= (int)cap) {
            snprintf(err, err_len, "%s is too long (at most %zu bytes)", which, (cap < sizeof v ? cap : sizeof v) - 1);
            return -1;
        }
        return 0;
    }
    const char *home = getenv("HOME");
    if (!home || !*home) {
        snprintf(err, err_len, "HOME is not set: set QFIT_MODELS to the model store folder");
        return -1;
    }
    if (snprintf(buf, cap, "%s/.qfit/models", home) >= (int)cap) {
        snprintf(err, err_len, "HOME is too long for the store path");
        return -1;
    }
    return 0;
}

/* Go's strconv.ParseBool as Ollama's envconfig.Bool uses it: unset or empty is
 * false, an unparsable value is true. */
static bool env_bool(const char *suffix)
{
    char v[64];
    bool too_long;
    const char *s = qfit_env(suffix, v, sizeof v, NULL, &too_long);
    if (too_long) return true;
    if (!s) return false;
    static const char *const F[] = { "0", "f", "F", "false", "FALSE", "False" };
    for (size_t i = 0; i < sizeof F / sizeof F[0]; i++)
        if (strcmp(s, F[i]) == 0) return false;
    return true;
}

qfit_store *qfit_store_open(const char *root, char *err, size_t err_len)
{
    if (!root || !*root) { snprintf(err, err_len, "empty store root"); return NULL; }
    if (strlen(root) > ST_PATH_MAX - 1024) {
        snprintf(err, err_len, "store root is too long (%zu bytes)", strlen(root));
        return NULL;
    }
    struct stat st;
    if (stat(root, &st) == 0 && !S_ISDIR(st.st_mode)) {
        snprintf(err, err_len, "store root '%s' is not a directory", root);
        return NULL;
    }
    qfit_store *s = calloc(1, sizeof *s);
    if (!s || !(s->root = strdup(root))) {
        free(s);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    size_t n = strlen(s->root);
    while (n > 1 && s->root[n - 1] == '/') s->root[--n] = 0;
    s->prune = !env_bool("NOPRUNE");   /* QFIT_NOPRUNE, else OLLAMA_NOPRUNE */
    return s;
}

void qfit_store_close(qfit_store *s)
{
    if (!s) return;
    free(s->root);
    free(s);
}

const char *qfit_store_root(const qfit_store *s) { return s->root; }
void qfit_store_set_prune(qfit_store *s, bool prune_unused_blobs) { s->prune = prune_unused_blobs; }

int qfit_store_blob_path(const qfit_store *s, const qfit_digest *d, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/blobs/sha256-%s", s->root, d->hex);
    if (n < 0 || (size_t)n >= cap) { if (cap) buf[0] = 0; return -1; }
    return n;
}

bool qfit_store_has_blob(const qfit_store *s, const qfit_digest *d, int64_t *size)
{
    char p[ST_PATH_MAX];
    struct stat st;
    if (qfit_store_blob_path(s, d, p, sizeof p) < 0 || stat(p, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    if (size) *size = st.st_size;
    return true;
}

/* ---------------------------------------------------------------- the store lock */

/* Writers of manifests and removers of blobs exclude each other with flock on
 * <root>/.qfit-lock, so a blob is never deleted between another process's check
 * that it exists and the rename of the manifest naming it (the other process then
 * gets a clear "not in the store" error instead). Blob writes need no lock.
 * Returns the fd to pass to unlock, or -1 + message. */
static int store_lock(const qfit_store *s, char *err, size_t err_len)
{
    char p[ST_PATH_MAX];
    if (st_mkdirs(s->root, err, err_len) != 0 || st_path(p, sizeof p, err, err_len, "%s/.qfit-lock", s->root) != 0)
        return -1;
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open the store lock '%s': %s", p, strerror(errno));
        return -1;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        snprintf(err, err_len, "cannot lock '%s': %s", p, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void store_unlock(int fd)
{
    if (fd >= 0) close(fd);   /* releases the flock */
}

/* ---------------------------------------------------------------- walking manifests */

/* Called for each non-directory at manifests/<a>/<b>/<c>/<d>. */
typedef int (*walk_fn)(const char *path, const char *const parts[4], void *ctx, char *err, size_t err_len);

static int walk(const char *dir, int depth, const char *parts[4], walk_fn fn, void *ctx, char *err, size_t err_len)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : (snprintf(err, err_len, "cannot read '%s': %s", dir, strerror(errno)), -1);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[ST_PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) continue;
        struct stat st;
        if (lstat(p, &st) != 0) continue;
        parts[depth] = e->d_name;
        if (depth < 3) {
            if (S_ISDIR(st.st_mode)) rc = walk(p, depth + 1, parts, fn, ctx, err, err_len);
        } else if (!S_ISDIR(st.st_mode)) {
            rc = fn(p, parts, ctx, err, err_len);
        }
    }
    closedir(d);
    return rc;
}

static int walk_manifests(const qfit_store *s, walk_fn fn, void *ctx, char *err, size_t err_len)
{
    char dir[ST_PATH_MAX];
    if (st_path(dir, sizeof dir, err, err_len, "%s/manifests", s->root) != 0) return -1;
    const char *parts[4] = { 0 };
    return walk(dir, 0, parts, fn, ctx, err, err_len);
}

static bool is_tmp(const char *base) { return strncmp(base, ST_TMP_PREFIX, strlen(ST_TMP_PREFIX)) == 0; }

/* The name of manifests/<host>/<ns>/<model>/<tag>; -1 if a part is invalid. */
static int name_of_parts(const char *const parts[4], qfit_name *n, char *err, size_t err_len)
{
    char s[ST_PATH_MAX];
    if (snprintf(s, sizeof s, "%s/%s/%s:%s", parts[0], parts[1], parts[2], parts[3]) >= (int)sizeof s ||
        strchr(parts[3], ':')) {
        snprintf(err, err_len, "not a valid model name");
        return -1;
    }
    return qfit_name_parse(s, n, err, err_len);
}

/* ---------------------------------------------------------------- digest sets */

static int set_add(st_digest_set *set, const qfit_digest *d)
{
    if (st_set_has(set, d)) return 0;
    if (set->n == set->cap) {
        size_t nc = set->cap ? set->cap * 2 : 64;
        qfit_digest *nd = realloc(set->d, nc * sizeof *nd);
        if (!nd) return -1;
        set->d = nd;
        set->cap = nc;
    }
    set->d[set->n++] = *d;
    return 0;
}

bool st_set_has(const st_digest_set *set, const qfit_digest *d)
{
    for (size_t i = 0; i < set->n; i++)
        if (qfit_digest_equal(&set->d[i], d)) return true;
    return false;
}

void st_set_free(st_digest_set *set)
{
    free(set->d);
    memset(set, 0, sizeof *set);
}

static qfit_manifest *read_manifest(const char *path, char *err, size_t err_len)
{
    size_t len;
    char rerr[512];
    char *b = st_read_file(path, QFIT_MANIFEST_MAX_BYTES, &len, rerr, sizeof rerr);
    if (!b) { snprintf(err, err_len, "%s", rerr); return NULL; }
    qfit_manifest *m = qfit_manifest_parse(b, len, rerr, sizeof rerr);
    free(b);
    if (!m) snprintf(err, err_len, "%s: %s", path, rerr);
    return m;
}

static int collect_refs(const char *path, const char *const parts[4], void *ctx, char *err, size_t err_len)
{
    qfit_name n;
    char nerr[512];
    if (is_tmp(parts[3]) || name_of_parts(parts, &n, nerr, sizeof nerr) != 0)
        return 0;   /* a temporary file or a file no name can reach: references nothing */
    char merr[768];
    qfit_manifest *m = read_manifest(path, merr, sizeof merr);
    if (!m) {
        snprintf(err, err_len, "manifest '%s' is unreadable (%s)", path, merr);
        return -1;
    }
    st_digest_set *set = ctx;
    int rc = set_add(set, &m->config.digest);
    for (size_t i = 0; rc == 0 && i < m->n_layers; i++) rc = set_add(set, &m->layers[i].digest);
    qfit_manifest_free(m);
    if (rc) snprintf(err, err_len, "out of memory");
    return rc;
}

int st_referenced(const qfit_store *s, st_digest_set *set, char *err, size_t err_len)
{
    memset(set, 0, sizeof *set);
    if (walk_manifests(s, collect_refs, set, err, err_len) != 0) {
        st_set_free(set);
        return -1;
    }
    return 0;
}

int st_remove_unused(qfit_store *s, const qfit_manifest *m, char *err, size_t err_len)
{
    if (!s->prune) return 0;
    st_digest_set used;
    char rerr[1024];
    int lock = store_lock(s, err, err_len);
    if (lock < 0) return -1;
    if (st_referenced(s, &used, rerr, sizeof rerr) != 0) {
        snprintf(err, err_len, "unused blobs kept: %s", rerr);
        store_unlock(lock);
        return -1;
    }
    for (size_t i = 0; i <= m->n_layers; i++) {
        const qfit_digest *d = i < m->n_layers ? &m->layers[i].digest : &m->config.digest;
        char p[ST_PATH_MAX];
        if (st_set_has(&used, d) || qfit_store_blob_path(s, d, p, sizeof p) < 0) continue;
        if (unlink(p) != 0 && errno != ENOENT) { /* kept; `qfit prune` reports it later */ }
    }
    st_set_free(&used);
    store_unlock(lock);
    return 0;
}

/* ---------------------------------------------------------------- writing manifests */

/* Every blob the manifest names exists with its declared size. */
static int check_blobs(const qfit_store *s, const qfit_manifest *m, char *err, size_t err_len)
{
    for (size_t i = 0; i <= m->n_layers; i++) {
        const qfit_layer *l = i < m->n_layers ? &m->layers[i] : &m->config;
        int64_t have;
        if (!qfit_store_has_blob(s, &l->digest, &have)) {
            snprintf(err, err_len, "blob sha256:%s (%s) is not in the store", l->digest.hex, l->media_type);
            return -1;
        }
        if (have != l->size) {
            snprintf(err, err_len, "blob sha256:%s is %lld bytes, the manifest says %lld", l->digest.hex,
                     (long long)have, (long long)l->size);
            return -1;
        }
    }
    return 0;
}

int qfit_store_put_manifest(qfit_store *s, const qfit_name *name, const void *bytes, size_t len,
                            char *err, size_t err_len)
{
    char perr[768];
    qfit_manifest *m = qfit_manifest_parse(bytes, len, perr, sizeof perr);
    if (!m) { snprintf(err, err_len, "%s", perr); return -1; }
    int rc = -1;
    qfit_manifest *old = NULL;
    char path[ST_PATH_MAX];
    bool exists;
    int lock = store_lock(s, err, err_len);
    if (lock < 0) goto done;
    if (check_blobs(s, m, err, err_len) != 0 ||
        st_manifest_path(s, name, path, sizeof path, &exists, err, err_len) != 0) {
        store_unlock(lock);
        goto done;
    }
    if (exists) old = read_manifest(path, perr, sizeof perr);   /* unreadable: just replaced */
    rc = st_write_atomic(path, bytes, len, err, err_len);
    store_unlock(lock);
    if (rc != 0) goto done;
    if (old && !qfit_digest_equal(&old->id, &m->id)) {
        char rerr[1024];
        if (st_remove_unused(s, old, rerr, sizeof rerr) != 0) { /* best effort: prune reports them */ }
    }
done:
    qfit_manifest_free(old);
    qfit_manifest_free(m);
    return rc;
}

int qfit_store_write_manifest(qfit_store *s, const qfit_name *name, const qfit_layer *config,
                              const qfit_layer *layers, size_t n, char *err, size_t err_len)
{
    size_t len;
    char *b = qfit_manifest_build(config, layers, n, &len, err, err_len);
    if (!b) return -1;
    int rc = qfit_store_put_manifest(s, name, b, len, err, err_len);
    free(b);
    return rc;
}

/* ---------------------------------------------------------------- resolve */

int qfit_store_resolve(qfit_store *s, const char *name, qfit_store_model *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    qfit_name n;
    if (qfit_name_parse(name, &n, err, err_len) != 0) return -1;
    char path[ST_PATH_MAX];
    bool exists;
    if (st_manifest_path(s, &n, path, sizeof path, &exists, err, err_len) != 0) return -1;
    if (!exists) {
        char d[QFIT_NAME_STR_MAX];
        qfit_name_display(&n, d, sizeof d);
        snprintf(err, err_len, "model '%s' not found in '%s'", d, s->root);
        return -1;
    }
    /* the spelling on disk: the last four path components */
    const char *parts[4];
    char tmp[ST_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (int i = 3; i >= 0; i--) {
        char *sl = strrchr(tmp, '/');
        parts[i] = sl + 1;
        *sl = 0;
    }
    if (name_of_parts(parts, &out->name, err, err_len) != 0) return -1;
    snprintf(out->name.scheme, sizeof out->name.scheme, "%s", n.scheme);
    char merr[1024];
    out->manifest = read_manifest(path, merr, sizeof merr);
    if (!out->manifest) {
        snprintf(err, err_len, "model '%s': %s", name, merr);
        return -1;
    }
    struct stat st;
    out->mtime = stat(path, &st) == 0 ? (int64_t)st.st_mtime : 0;
    if (!(out->manifest_path = strdup(path))) {
        qfit_store_model_free(out);
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    return 0;
}

void qfit_store_model_free(qfit_store_model *m)
{
    if (!m) return;
    qfit_manifest_free(m->manifest);
    free(m->manifest_path);
    memset(m, 0, sizeof *m);
}

int qfit_store_model_path(const qfit_store *s, const qfit_store_model *m, qfit_layer_kind kind, char *buf, size_t cap)
{
    const qfit_layer *l = qfit_manifest_layer(m->manifest, kind);
    if (!l) { if (cap) buf[0] = 0; return -1; }
    return qfit_store_blob_path(s, &l->digest, buf, cap);
}

char *qfit_store_read_blob(const qfit_store *s, const qfit_layer *l, size_t max, size_t *len,
                           char *err, size_t err_len)
{
    char p[ST_PATH_MAX];
    if (qfit_store_blob_path(s, &l->digest, p, sizeof p) < 0) {
        snprintf(err, err_len, "blob path too long");
        return NULL;
    }
    char *b = st_read_file(p, max, len, err, err_len);
    if (!b) return NULL;
    qfit_digest got;
    qfit_digest_of(b, *len, &got);
    if (!qfit_digest_equal(&got, &l->digest)) {
        snprintf(err, err_len, "digest mismatch in '%s': expected \"sha256:%s\", got \"sha256:%s\"", p,
                 l->digest.hex, got.hex);
        free(b);
        return NULL;
    }
    return b;
}

/* ---------------------------------------------------------------- list */

typedef struct {
    qfit_store_entry *e;
    size_t n, cap;
} entry_list;

static int collect_entry(const char *path, const char *const parts[4], void *ctx, char *err, size_t err_len)
{
    if (is_tmp(parts[3])) return 0;
    entry_list *L = ctx;
    if (L->n == L->cap) {
        size_t nc = L->cap ? L->cap * 2 : 16;
        qfit_store_entry *ne = realloc(L->e, nc * sizeof *ne);
        if (!ne) { snprintf(err, err_len, "out of memory"); return -1; }
        L->e = ne;
        L->cap = nc;
    }
    qfit_store_entry *e = &L->e[L->n++];
    memset(e, 0, sizeof *e);
    struct stat st;
    e->mtime = stat(path, &st) == 0 ? (int64_t)st.st_mtime : 0;
    qfit_name n;
    char nerr[512];
    if (name_of_parts(parts, &n, nerr, sizeof nerr) != 0) {
        char q[200];
        snprintf(q, sizeof q, "%s/%s/%s/%s", parts[0], parts[1], parts[2], parts[3]);
        snprintf(e->name, sizeof e->name, "%.*s", (int)sizeof e->name - 1, q);
        snprintf(e->error, sizeof e->error, "'%s' is not a valid model name", q);
        return 0;
    }
    qfit_name_display(&n, e->name, sizeof e->name);
    char merr[1024];
    qfit_manifest *m = read_manifest(path, merr, sizeof merr);
    if (!m) {
        snprintf(e->error, sizeof e->error, "%.*s", (int)sizeof e->error - 1, merr);
        return 0;
    }
    e->id = m->id;
    e->size = m->total_size;
    qfit_manifest_free(m);
    return 0;
}

static int by_newest(const void *a, const void *b)
{
    const qfit_store_entry *x = a, *y = b;
    if (x->mtime != y->mtime) return x->mtime > y->mtime ? -1 : 1;
    return strcmp(x->name, y->name);
}

int qfit_store_list(qfit_store *s, qfit_store_entry **out, size_t *n, char *err, size_t err_len)
{
    entry_list L = { 0 };
    if (walk_manifests(s, collect_entry, &L, err, err_len) != 0) { free(L.e); return -1; }
    if (L.n) qsort(L.e, L.n, sizeof *L.e, by_newest);
    *out = L.e;
    *n = L.n;
    return 0;
}

/* ---------------------------------------------------------------- remove, copy */

/* Remove empty directories under dir (not dir itself); returns true if dir is empty. */
static bool prune_empty_dirs(const char *dir, bool dry_run, qfit_store_report_fn report, void *ctx)
{
    DIR *d = opendir(dir);
    if (!d) return false;
    bool empty = true;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[ST_PATH_MAX];
        struct stat st;
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p || lstat(p, &st) != 0 ||
            !S_ISDIR(st.st_mode) || !prune_empty_dirs(p, dry_run, report, ctx)) {
            empty = false;
            continue;
        }
        if (report) report(p, 0, ctx);
        if (!dry_run && rmdir(p) != 0) empty = false;
    }
    closedir(d);
    return empty;
}

int qfit_store_remove(qfit_store *s, const char *name, char *err, size_t err_len)
{
    qfit_name n;
    if (qfit_name_parse(name, &n, err, err_len) != 0) return -1;
    char path[ST_PATH_MAX], dir[ST_PATH_MAX];
    bool exists;
    if (st_manifest_path(s, &n, path, sizeof path, &exists, err, err_len) != 0) return -1;
    if (!exists) {
        char d[QFIT_NAME_STR_MAX];
        qfit_name_display(&n, d, sizeof d);
        snprintf(err, err_len, "model '%s' not found", d);
        return -1;
    }
    char merr[1024];
    qfit_manifest *m = read_manifest(path, merr, sizeof merr);   /* a corrupt one is removed too */
    if (unlink(path) != 0) {
        snprintf(err, err_len, "cannot remove '%s': %s", path, strerror(errno));
        qfit_manifest_free(m);
        return -1;
    }
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    int rc = st_fsync_dir(dir, err, err_len);
    char mdir[ST_PATH_MAX];
    snprintf(mdir, sizeof mdir, "%s/manifests", s->root);
    prune_empty_dirs(mdir, false, NULL, NULL);
    if (rc == 0 && !m) {
        snprintf(err, err_len, "removed; its blobs are unknown (%s): `qfit prune` removes them", merr);
        rc = 1;
    } else if (rc == 0 && st_remove_unused(s, m, err, err_len) != 0) {
        rc = 1;   /* removed; blobs kept, err says why */
    }
    qfit_manifest_free(m);
    return rc;
}

int qfit_store_copy(qfit_store *s, const char *src, const char *dst, char *err, size_t err_len)
{
    qfit_name dn;
    char perr[768];
    if (qfit_name_parse(dst, &dn, perr, sizeof perr) != 0) {
        snprintf(err, err_len, "destination: %s", perr);
        return -1;
    }
    qfit_store_model m;
    if (qfit_store_resolve(s, src, &m, err, err_len) != 0) return -1;
    size_t len;
    char *b = st_read_file(m.manifest_path, QFIT_MANIFEST_MAX_BYTES, &len, err, err_len);
    int rc = b ? qfit_store_put_manifest(s, &dn, b, len, err, err_len) : -1;
    free(b);
    qfit_store_model_free(&m);
    return rc;
}

/* ---------------------------------------------------------------- prune */

typedef struct {
    bool dry_run;
    qfit_store_report_fn report;
    void *ctx;
    int64_t freed;
} prune_ctx;

/* Remove one file unless another process holds its lock (a write in progress). */
static void prune_file(prune_ctx *P, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    bool busy = flock(fd, LOCK_EX | LOCK_NB) != 0;
    int64_t size = fstat(fd, &st) == 0 ? (int64_t)st.st_size : 0;
    if (!busy) {
        if (P->report) P->report(path, size, P->ctx);
        if (!P->dry_run) unlink(path);
        P->freed += size;
    }
    close(fd);   /* releases the lock */
}

static int prune_manifest_tmp(const char *path, const char *const parts[4], void *ctx, char *err, size_t err_len)
{
    if (is_tmp(parts[3])) prune_file(ctx, path);
    return 0;
}

static bool is_hex64(const char *p)
{
    for (int i = 0; i < QFIT_DIGEST_HEX; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) return false;
    return true;
}

int qfit_store_prune(qfit_store *s, bool dry_run, qfit_store_report_fn report, void *ctx,
                     int64_t *freed, char *err, size_t err_len)
{
    prune_ctx P = { dry_run, report, ctx, 0 };
    st_digest_set used;
    char rerr[1024] = "";
    char dir[ST_PATH_MAX];
    if (st_path(dir, sizeof dir, err, err_len, "%s/blobs", s->root) != 0) return -1;
    int lock = store_lock(s, err, err_len);
    if (lock < 0) return -1;
    bool refs_ok = st_referenced(s, &used, rerr, sizeof rerr) == 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        const char *b = e->d_name;
        char p[ST_PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", dir, b) >= (int)sizeof p) continue;
        if (is_tmp(b)) { prune_file(&P, p); continue; }
        if (strncmp(b, "sha256-", 7) != 0 || strlen(b) < 7 + QFIT_DIGEST_HEX || !is_hex64(b + 7)) continue;
        const char *rest = b + 7 + QFIT_DIGEST_HEX;
        if (strncmp(rest, ST_PARTIAL_SUFFIX, strlen(ST_PARTIAL_SUFFIX)) == 0) { prune_file(&P, p); continue; }
        if (*rest || !refs_ok) continue;
        qfit_digest dg;
        memcpy(dg.hex, b + 7, QFIT_DIGEST_HEX);
        dg.hex[QFIT_DIGEST_HEX] = 0;
        if (!st_set_has(&used, &dg)) prune_file(&P, p);
    }
    if (d) closedir(d);
    char terr[256];
    walk_manifests(s, prune_manifest_tmp, &P, terr, sizeof terr);
    char mdir[ST_PATH_MAX];
    snprintf(mdir, sizeof mdir, "%s/manifests", s->root);
    prune_empty_dirs(mdir, dry_run, report, ctx);
    if (!dry_run) st_fsync_dir(dir, terr, sizeof terr);
    store_unlock(lock);
    st_set_free(&used);
    if (freed) *freed = P.freed;
    if (!refs_ok) {
        snprintf(err, err_len, "no blob removed: %s (fix or remove it with `qfit rm`, then prune again)", rerr);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- verify */

int qfit_store_verify(qfit_store *s, const char *name, char *err, size_t err_len)
{
    qfit_store_model m;
    if (qfit_store_resolve(s, name, &m, err, err_len) != 0) return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i <= m.manifest->n_layers; i++) {
        const qfit_layer *l = i < m.manifest->n_layers ? &m.manifest->layers[i] : &m.manifest->config;
        char p[ST_PATH_MAX];
        qfit_digest got;
        int64_t size;
        if (qfit_store_blob_path(s, &l->digest, p, sizeof p) < 0 || st_hash_file(p, &got, &size, NULL, NULL, err, err_len) != 0) {
            rc = -1;
        } else if (!qfit_digest_equal(&got, &l->digest)) {
            snprintf(err, err_len, "digest mismatch in '%s': expected \"sha256:%s\", got \"sha256:%s\"", p,
                     l->digest.hex, got.hex);
            rc = -1;
        } else if (size != l->size) {
            snprintf(err, err_len, "'%s' is %lld bytes, the manifest says %lld", p, (long long)size, (long long)l->size);
            rc = -1;
        }
    }
    qfit_store_model_free(&m);
    return rc;
}
