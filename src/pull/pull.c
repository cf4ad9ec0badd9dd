/* Pull: the registry protocol over libcurl, writing through the store's blob writer.
 * See include/qfit/pull.h for the contract. */
#include "qfit/pull.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define URL_MAX 4096

/* snprintf that says when the result did not fit (URLs and paths are then refused). */
static int fmt(char *buf, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
static int fmt(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(buf, cap, f, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap ? 0 : -1;
}

typedef struct {
    char       *buf;
    size_t      len, cap;
    size_t      max;    /* more is an error */
    const char *what;   /* "manifest", for that error */
} membuf;

typedef struct {
    qfit_store           *s;
    const qfit_pull_opts *o;
    CURL                 *curl;
    qfit_name             name;
    char                  base[URL_MAX];       /* scheme://host/v2/ns/model */
    char                  reg_host[512];       /* host:port of the registry, lowercase */
    qfit_pull_progress    prog;
    membuf                head;                /* the model layer's first bytes (plan) */
    qfit_digest           head_digest;         /* ... of this blob */
} puller;

/* What a response body is written to. sink returns 0 to go on, -1 to abort (its
 * message in err). Bodies of 3xx and >= 400 responses never reach it. */
typedef int (*sink_fn)(const char *p, size_t n, void *ctx, char *err, size_t err_len);

typedef struct {
    puller  *P;
    long     status;                    /* of the current response */
    char     content_range[128];        /* Content-Range of the current response */
    sink_fn  sink;
    void    *sink_ctx;
    char     excerpt[QFIT_PULL_ERR_BODY_MAX + 1];
    size_t   excerpt_len;
    uint64_t discarded;                 /* bytes of 3xx / error bodies */
    char    *err;
    size_t   err_len;
    int      sink_failed;
} xfer;

static void report(puller *P, const char *status, const char *digest)
{
    P->prog.status = status;
    P->prog.digest = digest;
    if (P->o->progress) P->o->progress(&P->prog, P->o->ctx);
}

/* host[:port] of a URL, lowercase, with the scheme's default port made explicit so
 * that "http://h" and "http://h:80" compare equal. */
static int url_host_port(const char *url, char *scheme, size_t scap, char *out, size_t cap)
{
    CURLU *u = curl_url();
    if (!u) return -1;
    char *sch = NULL, *host = NULL, *port = NULL;
    int rc = -1;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &sch, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        snprintf(scheme, scap, "%s", sch);
        for (char *c = scheme; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        int n = snprintf(out, cap, "%s:%s", host, port);
        for (char *c = out; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        rc = n > 0 && (size_t)n < cap ? 0 : -1;
    }
    curl_free(sch);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ctx)
{
    xfer *x = ctx;
    size_t n = size * nitems;
    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) x->content_range[0] = 0;   /* a new response */
    if (n > 14 && strncasecmp(buf, "Content-Range:", 14) == 0) {
        size_t l = n - 14;
        if (l >= sizeof x->content_range) l = sizeof x->content_range - 1;
        memcpy(x->content_range, buf + 14, l);
        x->content_range[l] = 0;
    }
    return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
    xfer *x = ctx;
    size_t n = size * nmemb;
    long st = 0;
    curl_easy_getinfo(x->P->curl, CURLINFO_RESPONSE_CODE, &st);
    x->status = st;
    if (st >= 200 && st < 300) {
        if (x->sink(p, n, x->sink_ctx, x->err, x->err_len) != 0) {
            x->sink_failed = 1;
            return CURL_WRITEFUNC_ERROR;
        }
        return n;
    }
    /* redirect or error body: keep an excerpt, read at most 64 KiB */
    size_t room = QFIT_PULL_ERR_BODY_MAX - x->excerpt_len;
    size_t take = n < room ? n : room;
    memcpy(x->excerpt + x->excerpt_len, p, take);
    x->excerpt_len += take;
    x->excerpt[x->excerpt_len] = 0;
    x->discarded += n;
    return x->discarded > (64u << 10) ? CURL_WRITEFUNC_ERROR : n;
}

/* Printable excerpt of an error body (control characters replaced). */
static void clean_excerpt(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20) *s = ' ';
}

/* GET url, following redirects. range_from >= 0 sends "Range: bytes=<from>-"
 * (range_to >= 0: "<from>-<to>"). The body of the final 2xx response goes to sink.
 * *status: the final status. 0 when a 2xx response was read completely; 1 when
 * the final status is an error (>= 400): the excerpt is in x->excerpt; -1 on a
 * transport or sink error (message in err). */
static int http_get(puller *P, const char *url0, const char *accept, int64_t range_from, int64_t range_to,
                    xfer *x, char *err, size_t err_len)
{
    char url[URL_MAX];
    snprintf(url, sizeof url, "%s", url0);
    x->P = P;
    x->err = err;
    x->err_len = err_len;
    for (int hop = 0;; hop++) {
        char scheme[16], hostport[512];
        if (url_host_port(url, scheme, sizeof scheme, hostport, sizeof hostport) != 0) {
            snprintf(err, err_len, "invalid URL '%.512s'", url);
            return -1;
        }
        if (strcmp(scheme, "https") != 0 && !(strcmp(scheme, "http") == 0 && P->o->insecure)) {
            snprintf(err, err_len, "refusing %s URL '%.512s'%s", scheme, url,
                     strcmp(scheme, "http") == 0 ? " (plain http needs --insecure)" : " (only http and https)");
            return -1;
        }
        struct curl_slist *h = NULL;
        char line[600];
        if (accept) {
            snprintf(line, sizeof line, "Accept: %s", accept);
            h = curl_slist_append(h, line);
        }
        if (range_from >= 0) {
            if (range_to >= 0) snprintf(line, sizeof line, "Range: bytes=%lld-%lld", (long long)range_from, (long long)range_to);
            else snprintf(line, sizeof line, "Range: bytes=%lld-", (long long)range_from);
            h = curl_slist_append(h, line);
        }
        /* credentials only for the registry itself, never for a host a redirect names */
        if (P->o->bearer_token && strcmp(hostport, P->reg_host) == 0) {
            snprintf(line, sizeof line, "Authorization: Bearer %.500s", P->o->bearer_token);
            h = curl_slist_append(h, line);
        }
        CURL *c = P->curl;
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "qfit");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);          /* we check every hop */
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);         /* stalled 60 s: retry */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
        /* no CURLOPT_ACCEPT_ENCODING: bodies are never decompressed */
        x->status = 0;
        x->excerpt_len = 0;
        x->excerpt[0] = 0;
        x->discarded = 0;
        x->sink_failed = 0;
        CURLcode cr = curl_easy_perform(c);
        curl_slist_free_all(h);
        long st = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        x->status = st;
        if (x->sink_failed) return -1;
        if (cr != CURLE_OK) {
            snprintf(err, err_len, "GET %.512s: %s", url, curl_easy_strerror(cr));
            return -1;
        }
        if (st == 301 || st == 302 || st == 303 || st == 307 || st == 308) {
            char *loc = NULL;
            curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
            if (!loc || !*loc) {
                snprintf(err, err_len, "GET %.512s: %ld redirect without a Location", url, st);
                return -1;
            }
            if (hop + 1 >= QFIT_PULL_MAX_REDIRECTS) {
                snprintf(err, err_len, "GET %.512s: more than %d redirects", url0, QFIT_PULL_MAX_REDIRECTS);
                return -1;
            }
            if (strlen(loc) >= sizeof url) {
                snprintf(err, err_len, "GET %.512s: redirect Location longer than %zu bytes", url, sizeof url - 1);
                return -1;
            }
            snprintf(url, sizeof url, "%s", loc);
            continue;
        }
        if (st >= 400) {
            clean_excerpt(x->excerpt);
            return 1;
        }
        if (st < 200 || st >= 300) {
            snprintf(err, err_len, "GET %.512s: unexpected status %ld", url, st);
            return -1;
        }
        return 0;
    }
}

/* ------------------------------------------------------------------ manifest */


static int sink_mem(const char *p, size_t n, void *ctx, char *err, size_t err_len)
{
    membuf *m = ctx;
    if (n > m->max - m->len) {
        snprintf(err, err_len, "%s is larger than %zu bytes", m->what, m->max);
        return -1;
    }
    if (m->len + n + 1 > m->cap) {   /* grow geometrically: bodies arrive in small pieces */
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->len + n + 1) cap *= 2;
        char *nb = realloc(m->buf, cap);
        if (!nb) { snprintf(err, err_len, "out of memory"); return -1; }
        m->buf = nb;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, p, n);
    m->len += n;
    m->buf[m->len] = 0;
    return 0;
}

static int fetch_manifest(puller *P, const char *display, membuf *out, char *err, size_t err_len)
{
    char url[URL_MAX];
    fmt(url, sizeof url, "%s/manifests/%s", P->base, P->name.tag);
    xfer x = { .sink = sink_mem, .sink_ctx = out };
    int rc = http_get(P, url, QFIT_MEDIA_MANIFEST, -1, -1, &x, err, err_len);
    if (rc == 1) {
        if (x.status == 404) snprintf(err, err_len, "model '%s' not found (%s returned 404)", display, url);
        else snprintf(err, err_len, "pulling manifest of '%s': registry returned %ld for %s: %s", display, x.status,
                      url, x.excerpt);
        return -1;
    }
    if (rc != 0) {
        char e2[1024];
        snprintf(e2, sizeof e2, "%s", err);
        snprintf(err, err_len, "pulling manifest of '%s': %s", display, e2);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ blobs */

typedef struct {
    puller           *P;
    qfit_blob_writer *w;
    const qfit_digest *d;
    xfer             *x;
    uint64_t          size;       /* expected blob size */
    uint64_t          start;      /* offset the request asked for */
    bool              checked;    /* status / Content-Range checked for this response */
    uint64_t          base_done;  /* all_completed before this blob */
    int               write_errno;
} blob_ctx;

static int reopen_truncated(blob_ctx *b, char *err, size_t err_len)
{
    qfit_blob_abort(b->w);
    b->w = qfit_blob_begin(b->P->s, b->d, 0, err, err_len);
    return b->w ? 0 : -1;
}

static int sink_blob(const char *p, size_t n, void *ctx, char *err, size_t err_len)
{
    blob_ctx *b = ctx;
    if (!b->checked) {
        b->checked = true;
        if (b->x->status == 206) {
            unsigned long long from = 0;
            if (sscanf(b->x->content_range, " bytes %llu-", &from) != 1 || from != b->start) {
                snprintf(err, err_len, "registry answered the range from byte %llu with Content-Range '%s'",
                         (unsigned long long)b->start, b->x->content_range);
                return -1;
            }
        } else if (qfit_blob_offset(b->w) > 0) {
            /* the server ignored the Range: start the blob over */
            if (reopen_truncated(b, err, err_len) != 0) return -1;
        }
    }
    uint64_t off = qfit_blob_offset(b->w);
    if (n > b->size - off) {
        char ds[QFIT_DIGEST_STR];
        qfit_digest_str(b->d, ds);
        snprintf(err, err_len, "blob %s: the registry sent more than the manifest's %llu bytes", ds,
                 (unsigned long long)b->size);
        return -1;
    }
    errno = 0;
    if (qfit_blob_write(b->w, p, n, err, err_len) != 0) {
        b->write_errno = errno;
        return -1;
    }
    b->P->prog.completed = off + n;
    b->P->prog.all_completed = b->base_done + off + n;
    char ds[QFIT_DIGEST_STR];
    qfit_digest_str(b->d, ds);
    char st[32];
    snprintf(st, sizeof st, "pulling %.12s", b->d->hex);
    report(b->P, st, ds);
    return 0;
}

static bool is_space_errno(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG;
}

static void blobs_dir(puller *P, char *buf, size_t cap)
{
    fmt(buf, cap, "%s/blobs", qfit_store_root(P->s));
}

/* Rewrite a failed write's message (ENOSPC, EDQUOT, EFBIG) as the path and the bytes needed. */
static void space_error(puller *P, const qfit_layer *l, char *err, size_t err_len)
{
    char dir[URL_MAX], part[URL_MAX + 96], e2[1024], ds[QFIT_DIGEST_STR];
    qfit_digest_str(&l->digest, ds);
    blobs_dir(P, dir, sizeof dir);
    snprintf(e2, sizeof e2, "%s", err);
    /* what the partial file holds (a write may have been cut short mid-chunk) */
    struct stat ps;
    uint64_t kept = 0;
    if (fmt(part, sizeof part, "%s/sha256-%s-partial", dir, l->digest.hex) == 0 && stat(part, &ps) == 0 &&
        ps.st_size <= l->size)
        kept = (uint64_t)ps.st_size;
    snprintf(err, err_len, "not enough disk space in '%s': %llu more bytes needed for blob %s (%s); "
             "the partial download is kept, run the pull again after freeing space", dir,
             (unsigned long long)((uint64_t)l->size - kept), ds, e2);
}

static int download_blob(puller *P, const qfit_layer *l, char *err, size_t err_len)
{
    char ds[QFIT_DIGEST_STR], url[URL_MAX], st[32];
    qfit_digest_str(&l->digest, ds);
    fmt(url, sizeof url, "%s/blobs/%s", P->base, ds);
    snprintf(st, sizeof st, "pulling %.12s", l->digest.hex);
    blob_ctx b = { .P = P, .d = &l->digest, .size = (uint64_t)l->size, .base_done = P->prog.all_completed };
    xfer x = { .sink = sink_blob, .sink_ctx = &b };
    b.x = &x;
    b.w = qfit_blob_begin(P->s, &l->digest, QFIT_BLOB_RESUME, err, err_len);
    if (!b.w) return -1;
    if (qfit_blob_offset(b.w) > b.size && reopen_truncated(&b, err, err_len) != 0) return -1;
    /* the header fetched for the plan is the start of this blob: not fetched twice */
    uint64_t off0 = qfit_blob_offset(b.w);
    if (P->head.len && qfit_digest_equal(&l->digest, &P->head_digest) && off0 < P->head.len) {
        errno = 0;
        if (qfit_blob_write(b.w, P->head.buf + off0, P->head.len - off0, err, err_len) != 0) {
            if (is_space_errno(errno)) space_error(P, l, err, err_len);
            qfit_blob_abort(b.w);
            return -1;
        }
    }
    P->prog.total = b.size;
    for (int attempt = 0;; attempt++) {
        uint64_t off = qfit_blob_offset(b.w);
        P->prog.completed = off;
        P->prog.all_completed = b.base_done + off;
        report(P, st, ds);
        if (off == b.size) break;
        b.start = off;
        b.checked = false;
        b.write_errno = 0;
        int rc = http_get(P, url, NULL, off > 0 ? (int64_t)off : -1, -1, &x, err, err_len);
        if (rc == 1) {
            snprintf(err, err_len, "pulling %s: registry returned %ld for %s: %s", ds, x.status, url, x.excerpt);
            qfit_blob_abort(b.w);
            return -1;
        }
        if (rc == 0 && qfit_blob_offset(b.w) == b.size) break;
        if (rc == 0) snprintf(err, err_len, "pulling %s: the registry sent %llu of %llu bytes", ds,
                              (unsigned long long)qfit_blob_offset(b.w), (unsigned long long)b.size);
        if (b.write_errno && is_space_errno(b.write_errno)) {
            space_error(P, l, err, err_len);
            qfit_blob_abort(b.w);
            return -1;
        }
        /* a sink error other than a network failure (bad range, too many bytes) is final */
        if (x.sink_failed || attempt + 1 >= QFIT_PULL_RETRIES || (rc == 0 && qfit_blob_offset(b.w) == 0)) {
            char e2[1024];
            snprintf(e2, sizeof e2, "%s", err);
            snprintf(err, err_len, "%s (%llu of %llu bytes kept in the partial file; run the pull again to resume)",
                     e2, (unsigned long long)qfit_blob_offset(b.w), (unsigned long long)b.size);
            qfit_blob_abort(b.w);
            return -1;
        }
        if (attempt > 0) sleep((unsigned)attempt);   /* 0 s, 1 s, 2 s */
    }
    report(P, "verifying sha256 digest", ds);
    int64_t got = 0;
    return qfit_blob_commit(b.w, NULL, &got, err, err_len);
}

/* Bytes still to download, against the free space of the blobs folder. */
static int check_space(puller *P, const qfit_manifest *m, char *err, size_t err_len)
{
    char dir[URL_MAX];
    blobs_dir(P, dir, sizeof dir);
    uint64_t need = 0;
    for (size_t i = 0; i <= m->n_layers; i++) {
        const qfit_layer *l = i < m->n_layers ? &m->layers[i] : &m->config;
        int64_t have;
        if (qfit_store_has_blob(P->s, &l->digest, &have) && have == l->size) continue;
        char part[URL_MAX];
        if (fmt(part, sizeof part, "%s/sha256-%s-partial", dir, l->digest.hex) != 0) continue;
        struct stat ps;
        uint64_t done = 0;
        if (stat(part, &ps) == 0 && ps.st_size > 0 && (uint64_t)ps.st_size <= (uint64_t)l->size)
            done = (uint64_t)ps.st_size;
        need += (uint64_t)l->size - done;
    }
    struct statvfs sv;
    const char *probe = qfit_store_root(P->s);
    if (statvfs(dir, &sv) != 0 && statvfs(probe, &sv) != 0) return 0;   /* not created yet: the writes will tell */
    uint64_t avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    if (need > avail) {
        snprintf(err, err_len, "not enough disk space in '%s': %llu bytes needed, %llu available", dir,
                 (unsigned long long)need, (unsigned long long)avail);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ plan */

typedef struct {
    membuf mb;
    size_t cap;
    bool   full;
} headbuf;

static int sink_head(const char *p, size_t n, void *ctx, char *err, size_t err_len)
{
    headbuf *h = ctx;
    size_t take = n < h->cap - h->mb.len ? n : h->cap - h->mb.len;
    if (take && sink_mem(p, take, &h->mb, err, err_len) != 0) return -1;
    if (h->mb.len == h->cap) {   /* enough (a server that ignores Range sends it all) */
        h->full = true;
        snprintf(err, err_len, "header complete");
        return -1;
    }
    return 0;
}

/* The planner reads a GGUF file's metadata and tensor infos, never its weights: the
 * header bytes go into a sparse temporary file of the blob's full size (so the
 * reader's offset checks see the real size) under blobs/, which prune cleans. */
static int plan_from_header(puller *P, const headbuf *h, uint64_t size, qfit_plan_model *pm, char *err, size_t err_len)
{
    char path[URL_MAX];
    blobs_dir(P, path, sizeof path);
    if (mkdir(qfit_store_root(P->s), 0755) != 0 && errno != EEXIST) { /* reported by mkstemp below */ }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) { /* idem */ }
    size_t l = strlen(path);
    snprintf(path + l, sizeof path - l, "/.qfit-tmp-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) { fmt(err, err_len, "cannot create a temporary file '%s': %s", path, strerror(errno)); return -1; }
    int rc = -1;
    size_t off = 0;
    while (off < h->mb.len) {
        ssize_t w = write(fd, h->mb.buf + off, h->mb.len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) { fmt(err, err_len, "cannot write '%s': %s", path, strerror(errno)); goto out; }
        off += (size_t)w;
    }
    if (ftruncate(fd, (off_t)size) != 0) {
        fmt(err, err_len, "cannot size '%s' to %llu bytes: %s", path, (unsigned long long)size, strerror(errno));
        goto out;
    }
    rc = qfit_plan_model_from_gguf(path, pm, err, err_len);
out:
    close(fd);
    unlink(path);
    return rc;
}

static int pull_plan(puller *P, const char *display, const qfit_manifest *m, char *err, size_t err_len)
{
    const qfit_layer *l = qfit_manifest_layer(m, QFIT_LAYER_MODEL);
    if (!l) {
        snprintf(err, err_len, "'%s' has no model layer: there is nothing to plan", display);
        return -1;
    }
    char ds[QFIT_DIGEST_STR], url[URL_MAX];
    qfit_digest_str(&l->digest, ds);
    fmt(url, sizeof url, "%s/blobs/%s", P->base, ds);
    qfit_plan_model pm;
    memset(&pm, 0, sizeof pm);
    char perr[512] = "";
    int have = -1;
    for (size_t cap = QFIT_PULL_HEADER_FIRST;; cap = QFIT_PULL_HEADER_MAX) {
        if (cap > (uint64_t)l->size) cap = (size_t)l->size;
        headbuf h = { .mb = { .max = cap, .what = "GGUF header" }, .cap = cap };
        xfer x = { .sink = sink_head, .sink_ctx = &h };
        report(P, "reading model header", ds);
        int rc = http_get(P, url, NULL, 0, (int64_t)cap - 1, &x, err, err_len);
        if (rc == 1) {
            snprintf(err, err_len, "reading the GGUF header of %s: registry returned %ld for %s: %s", ds, x.status,
                     url, x.excerpt);
            free(h.mb.buf);
            return -1;
        }
        if (rc != 0 && !h.full) { free(h.mb.buf); return -1; }
        have = plan_from_header(P, &h, (uint64_t)l->size, &pm, perr, sizeof perr);
        free(P->head.buf);
        P->head = h.mb;   /* kept: the download starts after it */
        P->head_digest = l->digest;
        if (have == 0 || cap >= QFIT_PULL_HEADER_MAX || cap >= (uint64_t)l->size) break;
        qfit_plan_model_free(&pm);
        memset(&pm, 0, sizeof pm);
    }
    if (have != 0) {
        snprintf(err, err_len, "cannot plan '%s' from its GGUF header (first %u bytes of %s): %s", display,
                 QFIT_PULL_HEADER_MAX, ds, perr);
        qfit_plan_model_free(&pm);
        return -1;
    }
    fmt(pm.name, sizeof pm.name, "%s", display);
    qfit_plan_machine me;
    const qfit_plan_machine *mach = P->o->machine;
    if (!mach) { qfit_plan_machine_detect(&me); mach = &me; }
    qfit_plan_settings set;
    memset(&set, 0, sizeof set);
    qfit_plan_result r;
    int rc = qfit_plan_compute(&pm, mach, &set, &r, err, err_len);
    if (rc == 0) {
        if (P->o->on_plan) P->o->on_plan(&pm, mach, &r, P->o->ctx);
        if (r.verdict == QFIT_VERDICT_NO_FIT && !P->o->force && !P->o->plan_only) {
            snprintf(err, err_len, "'%s' does not fit %s: %llu bytes needed, budget %llu (use --force to download "
                     "it anyway)", display, mach->name, (unsigned long long)r.total_bytes,
                     (unsigned long long)r.budget_bytes);
            rc = -1;
        }
    }
    qfit_plan_model_free(&pm);
    return rc;
}

/* ------------------------------------------------------------------ pull */

int qfit_pull(qfit_store *s, const char *name, const qfit_pull_opts *opts, char *err, size_t err_len)
{
    static const qfit_pull_opts defaults;
    puller P = { .s = s, .o = opts ? opts : &defaults };
    if (qfit_name_parse(name, &P.name, err, err_len) != 0) return -1;
    char display[QFIT_NAME_STR_MAX];
    qfit_name_display(&P.name, display, sizeof display);
    if (strcmp(P.name.scheme, "http") == 0 && !P.o->insecure) {
        snprintf(err, err_len, "'%s': plain http registries are refused without --insecure", name);
        return -1;
    }
    fmt(P.base, sizeof P.base, "%s://%s/v2/%s/%s", P.name.scheme, P.name.host, P.name.ns, P.name.model);
    char scheme[16];
    if (url_host_port(P.base, scheme, sizeof scheme, P.reg_host, sizeof P.reg_host) != 0) {
        snprintf(err, err_len, "'%s': host '%s' does not make a valid URL", name, P.name.host);
        return -1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) { snprintf(err, err_len, "libcurl initialisation failed"); return -1; }
    P.curl = curl_easy_init();
    if (!P.curl) { snprintf(err, err_len, "libcurl: cannot create a handle"); return -1; }

    int rc = -1;
    membuf mb = { .max = QFIT_MANIFEST_MAX_BYTES, .what = "manifest" };
    qfit_manifest *m = NULL;
    report(&P, "pulling manifest", NULL);
    if (fetch_manifest(&P, display, &mb, err, err_len) != 0) goto done;
    char perr[512];
    m = qfit_manifest_parse(mb.buf ? mb.buf : "", mb.len, perr, sizeof perr);
    if (!m) {
        snprintf(err, err_len, "manifest of '%s' from %s is invalid: %s (nothing was downloaded)", display,
                 P.name.host, perr);
        goto done;
    }
    if ((P.o->plan || P.o->plan_only) && pull_plan(&P, display, m, err, err_len) != 0) goto done;
    if (P.o->plan_only) { rc = 0; goto done; }

    P.prog.all_total = (uint64_t)m->total_size;
    for (size_t i = 0; i <= m->n_layers; i++) {   /* layers, then the config, as Ollama */
        const qfit_layer *l = i < m->n_layers ? &m->layers[i] : &m->config;
        int64_t have;
        if (qfit_store_has_blob(s, &l->digest, &have) && have == l->size) P.prog.all_completed += (uint64_t)have;
    }
    if (check_space(&P, m, err, err_len) != 0) goto done;
    for (size_t i = 0; i <= m->n_layers; i++) {
        const qfit_layer *l = i < m->n_layers ? &m->layers[i] : &m->config;
        int64_t have;
        char ds[QFIT_DIGEST_STR], st[32];
        qfit_digest_str(&l->digest, ds);
        if (qfit_store_has_blob(s, &l->digest, &have) && have == l->size) {
            snprintf(st, sizeof st, "pulling %.12s", l->digest.hex);
            P.prog.completed = P.prog.total = (uint64_t)have;
            report(&P, st, ds);
            continue;
        }
        uint64_t before = P.prog.all_completed;
        if (download_blob(&P, l, err, err_len) != 0) goto done;
        P.prog.all_completed = before + (uint64_t)l->size;
    }
    report(&P, "writing manifest", NULL);
    if (qfit_store_put_manifest(s, &P.name, mb.buf, mb.len, err, err_len) != 0) goto done;
    report(&P, "success", NULL);
    rc = 0;
done:
    qfit_manifest_free(m);
    free(mb.buf);
    free(P.head.buf);
    curl_easy_cleanup(P.curl);
    return rc;
}
