/* Pull: the registry protocol over libcurl, writing through the store's blob writer.
 * See include/qfit/pull.h for the contract. */
#include "qfit/pull.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "platform/platform.h"

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
    CURL                 *curl;                /* sequential requests */
    struct curl_slist    *resolve;             /* opts->resolve as CURLOPT_RESOLVE */
    unsigned              parts;               /* opts->parts or the default */
    uint64_t              parallel_min;        /* opts->parallel_min or the default */
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
    CURL    *c;                         /* the handle this transfer runs on */
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
    char     refused_addr[64];          /* a link-local address the socket guard refused */
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
    curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &st);
    x->status = st;
    if (st >= 200 && st < 300) {
        if (x->sink(p, n, x->sink_ctx, x->err, x->err_len) != 0) {
            x->sink_failed = 1;
            return CURL_WRITEFUNC_ERROR;
        }
        return n;
    }
    /* redirect or error body: keep an excerpt, read at most QFIT_PULL_ERR_BODY_READ */
    size_t room = QFIT_PULL_ERR_BODY_MAX - x->excerpt_len;
    size_t take = n < room ? n : room;
    memcpy(x->excerpt + x->excerpt_len, p, take);
    x->excerpt_len += take;
    x->excerpt[x->excerpt_len] = 0;
    x->discarded += n;
    return x->discarded > QFIT_PULL_ERR_BODY_READ ? CURL_WRITEFUNC_ERROR : n;
}

/* Printable excerpt of an error body: control characters and NUL bytes replaced
 * (a binary body, e.g. gzip bytes, must not cut the message short). */
static void clean_excerpt(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) s[i] = ' ';
}

/* Server-side request forgery guard: no connection, whatever the URL or a redirect says
 * and whatever a name resolves to, to a link-local address (169.254.0.0/16, fe80::/10,
 * IPv4-mapped ones too): that is where cloud metadata services answer
 * (http://169.254.169.254), never a registry. Checked on the address curl is about to
 * connect to, so DNS names are covered. */
static bool link_local(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        return a[0] == 169 && a[1] == 254;
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return true;
        return memcmp(a, mapped, 12) == 0 && a[12] == 169 && a[13] == 254;
    }
    return false;
}

static curl_socket_t open_socket_guarded(void *user, curlsocktype purpose, struct curl_sockaddr *addr)
{
    xfer *x = user;
    (void)purpose;
    if (link_local(&addr->addr)) {
        const void *ip = addr->family == AF_INET ? (const void *)&((const struct sockaddr_in *)&addr->addr)->sin_addr
                                                 : (const void *)&((const struct sockaddr_in6 *)&addr->addr)->sin6_addr;
        if (!inet_ntop(addr->family, ip, x->refused_addr, sizeof x->refused_addr))
            snprintf(x->refused_addr, sizeof x->refused_addr, "a link-local address");
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype, addr->protocol);
}

/* One request of a (possibly redirected) GET: the URL's scheme is checked, the
 * headers built (Authorization only for the registry's own host:port) and the easy
 * handle c configured. *h is the header list to free after the transfer. */
static int req_setup(puller *P, CURL *c, const char *url, const char *accept, int64_t range_from,
                     int64_t range_to, xfer *x, struct curl_slist **h, char *err, size_t err_len)
{
    char scheme[16], hostport[512], line[600];
    *h = NULL;
    if (url_host_port(url, scheme, sizeof scheme, hostport, sizeof hostport) != 0) {
        snprintf(err, err_len, "invalid URL '%.512s'", url);
        return -1;
    }
    if (strcmp(scheme, "https") != 0 && !(strcmp(scheme, "http") == 0 && P->o->insecure)) {
        snprintf(err, err_len, "refusing %s URL '%.512s'%s", scheme, url,
                 strcmp(scheme, "http") == 0 ? " (plain http needs --insecure)" : " (only http and https)");
        return -1;
    }
    if (accept) {
        snprintf(line, sizeof line, "Accept: %s", accept);
        *h = curl_slist_append(*h, line);
    }
    if (range_from >= 0) {
        if (range_to >= 0) snprintf(line, sizeof line, "Range: bytes=%lld-%lld", (long long)range_from, (long long)range_to);
        else snprintf(line, sizeof line, "Range: bytes=%lld-", (long long)range_from);
        *h = curl_slist_append(*h, line);
    }
    /* credentials only for the registry itself, never for a host a redirect names */
    if (P->o->bearer_token && strcmp(hostport, P->reg_host) == 0) {
        snprintf(line, sizeof line, "Authorization: Bearer %.500s", P->o->bearer_token);
        *h = curl_slist_append(*h, line);
    }
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *h);
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
    if (P->resolve) curl_easy_setopt(c, CURLOPT_RESOLVE, P->resolve);
    x->refused_addr[0] = 0;
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket_guarded);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, x);
    /* no CURLOPT_ACCEPT_ENCODING: bodies are never decompressed (no gzip bomb) */
    x->P = P;
    x->c = c;
    x->err = err;
    x->err_len = err_len;
    x->status = 0;
    x->excerpt_len = 0;
    x->excerpt[0] = 0;
    x->discarded = 0;
    x->sink_failed = 0;
    return 0;
}

/* What a finished request means. url (URL_MAX) is the request's URL; on a redirect
 * it becomes the Location and hop is counted. 0: a 2xx response read completely;
 * 1: an error status (>= 400), its excerpt in x->excerpt; 2: follow the redirect in
 * url; -1: a transport or sink error (message in err). */
static int req_result(CURL *c, CURLcode cr, char *url, const char *url0, int *hop, xfer *x, char *err, size_t err_len)
{
    long st = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    x->status = st;
    if (x->sink_failed) return -1;
    /* an error body longer than the bound stops the transfer: still that status */
    if (cr == CURLE_WRITE_ERROR && st >= 400 && x->discarded > QFIT_PULL_ERR_BODY_READ) cr = CURLE_OK;
    if (cr != CURLE_OK && x->refused_addr[0]) {
        snprintf(err, err_len, "GET %.512s: refused to connect to %s (link-local: cloud metadata services answer "
                 "there, never a registry)", url, x->refused_addr);
        return -1;
    }
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
        if (++*hop >= QFIT_PULL_MAX_REDIRECTS) {
            snprintf(err, err_len, "GET %.512s: more than %d redirects", url0, QFIT_PULL_MAX_REDIRECTS);
            return -1;
        }
        if (strlen(loc) >= URL_MAX) {
            snprintf(err, err_len, "GET %.512s: redirect Location longer than %d bytes", url, URL_MAX - 1);
            return -1;
        }
        memmove(url, loc, strlen(loc) + 1);
        return 2;
    }
    if (st >= 400) {
        clean_excerpt(x->excerpt, x->excerpt_len);
        return 1;
    }
    if (st < 200 || st >= 300) {
        snprintf(err, err_len, "GET %.512s: unexpected status %ld", url, st);
        return -1;
    }
    return 0;
}

/* GET url, following redirects. range_from >= 0 sends "Range: bytes=<from>-"
 * (range_to >= 0: "<from>-<to>"). The body of the final 2xx response goes to x's
 * sink. 0 when a 2xx response was read completely; 1 when the final status is an
 * error (>= 400): the excerpt is in x->excerpt; -1 on a transport or sink error
 * (message in err). */
static int http_get(puller *P, const char *url0, const char *accept, int64_t range_from, int64_t range_to,
                    xfer *x, char *err, size_t err_len)
{
    char url[URL_MAX];
    snprintf(url, sizeof url, "%s", url0);
    for (int hop = 0;;) {
        struct curl_slist *h;
        if (req_setup(P, P->curl, url, accept, range_from, range_to, x, &h, err, err_len) != 0) {
            curl_slist_free_all(h);
            return -1;
        }
        CURLcode cr = curl_easy_perform(P->curl);
        curl_slist_free_all(h);
        int rc = req_result(P->curl, cr, url, url0, &hop, x, err, err_len);
        if (rc != 2) return rc;
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

/* blobs/sha256-<hex>-partial and its range record blobs/sha256-<hex>-partial.parts
 * (prune removes both: they start with the partial file's name). */
static int partial_path(puller *P, const qfit_digest *d, bool record, char *buf, size_t cap)
{
    return fmt(buf, cap, "%s/blobs/sha256-%s-partial%s", qfit_store_root(P->s), d->hex, record ? ".parts" : "");
}

/* Length of the partial file, 0 when absent or longer than the blob. */
static uint64_t partial_size(puller *P, const qfit_layer *l)
{
    char p[URL_MAX];
    struct stat ps;
    if (partial_path(P, &l->digest, false, p, sizeof p) != 0 || stat(p, &ps) != 0) return 0;
    return ps.st_size > 0 && ps.st_size <= l->size ? (uint64_t)ps.st_size : 0;
}

/* Rewrite a failed write's message (ENOSPC, EDQUOT, EFBIG) as the path and the bytes needed. */
static void space_error(puller *P, const qfit_layer *l, uint64_t kept, char *err, size_t err_len)
{
    char dir[URL_MAX], e2[1024], ds[QFIT_DIGEST_STR];
    qfit_digest_str(&l->digest, ds);
    blobs_dir(P, dir, sizeof dir);
    snprintf(e2, sizeof e2, "%s", err);
    snprintf(err, err_len, "not enough disk space in '%s': %llu more bytes needed for blob %s (%s); "
             "the partial download is kept, run the pull again after freeing space", dir,
             (unsigned long long)((uint64_t)l->size - kept), ds, e2);
}

/* ---- one stream (blobs below opts->parallel_min), hashed while written */

/* from_zero: the partial file is not a prefix of the blob (a range record that was
 * not trusted): start over instead of resuming it. */
static int download_stream(puller *P, const qfit_layer *l, bool from_zero, char *err, size_t err_len)
{
    char ds[QFIT_DIGEST_STR], url[URL_MAX], st[32];
    qfit_digest_str(&l->digest, ds);
    fmt(url, sizeof url, "%s/blobs/%s", P->base, ds);
    snprintf(st, sizeof st, "pulling %.12s", l->digest.hex);
    blob_ctx b = { .P = P, .d = &l->digest, .size = (uint64_t)l->size, .base_done = P->prog.all_completed };
    xfer x = { .sink = sink_blob, .sink_ctx = &b };
    b.x = &x;
    b.w = qfit_blob_begin(P->s, &l->digest, from_zero ? 0 : QFIT_BLOB_RESUME, err, err_len);
    if (!b.w) return -1;
    if (qfit_blob_offset(b.w) > b.size && reopen_truncated(&b, err, err_len) != 0) return -1;
    /* the header fetched for the plan is the start of this blob: not fetched twice */
    uint64_t off0 = qfit_blob_offset(b.w);
    if (P->head.len && qfit_digest_equal(&l->digest, &P->head_digest) && off0 < P->head.len) {
        errno = 0;
        if (qfit_blob_write(b.w, P->head.buf + off0, P->head.len - off0, err, err_len) != 0) {
            if (is_space_errno(errno)) space_error(P, l, partial_size(P, l), err, err_len);
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
            space_error(P, l, partial_size(P, l), err, err_len);
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

/* ---- parallel ranges (blobs from opts->parallel_min)
 *
 * Concurrency: one curl multi handle on the caller's thread, one easy handle per
 * range, rather than a thread per range: the write callbacks and the progress
 * callback all run on the thread that called qfit_pull, the ranges' counters need
 * no lock, and the progress contract stays "called from qfit_pull's thread"; the
 * blob writer's pwrite at offsets is all the ranges share. The one other thread
 * writes the range record (fdatasync + atomic file), so that the network loop never
 * waits for the disk: it only hands over snapshots of the counters, under a mutex. */

#define RECORD_MAGIC    "qfit-parts 1 "
#define RECORD_MAX      4096              /* larger records are not trusted */
#define RECORD_FLOOR    (64u << 10)       /* record at least every ... */
#define RECORD_FRACTION 256               /* ... or 1/256 of the bytes done */

typedef struct ranges ranges;

typedef struct {
    pthread_t       th;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    bool            running;                    /* the thread was started */
    bool            pending, stop;              /* under mu */
    uint64_t        snap[QFIT_PULL_PARTS_MAX];  /* under mu: done per range to record */
    uint64_t        recorded;                   /* under mu: bytes of the last record written */
    int             err_no;                     /* under mu: a record failed */
    char            err[1024];                  /* under mu */
    uint64_t        asked;                      /* network thread: bytes of the last snapshot */
} recorder;

typedef struct {
    ranges            *B;
    uint64_t           start, len;   /* the range: bytes [start, start + len) of the blob */
    uint64_t           done;         /* bytes [start, start + done) are on disk */
    uint64_t           req_from;     /* first byte the current request asked for */
    CURL              *c;
    struct curl_slist *h;
    xfer               x;
    char               url[URL_MAX]; /* the current hop */
    char               perr[1024];
    int                hop, attempts;
    bool               running, checked;
    double             not_before;   /* retry backoff (monotonic seconds) */
} range_part;

struct ranges {
    puller           *P;
    const qfit_layer *l;
    qfit_blob_writer *w;
    int               data_fd;       /* the partial file: fdatasync before a record */
    char              url0[URL_MAX];
    range_part        part[QFIT_PULL_PARTS_MAX];
    unsigned          n;
    uint64_t          recorded;      /* bytes done at the last record */
    recorder          R;
    uint64_t          base_done;     /* all_completed before this blob */
    int               write_errno;
    bool              no_range;      /* the registry answered a range with 200 */
    bool              failed;
    char              err[1400];     /* the first failure */
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t ranges_done(const ranges *B)
{
    uint64_t s = 0;
    for (unsigned i = 0; i < B->n; i++) s += B->part[i].done;
    return s;
}

/* A decimal number without sign or spaces (at most 20 digits, no overflow). */
static bool take_u64(const char **p, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    int k = 0;
    for (; *s >= '0' && *s <= '9'; s++, k++) {
        if (k >= 20 || x > (UINT64_MAX - (uint64_t)(*s - '0')) / 10) return false;
        x = x * 10 + (uint64_t)(*s - '0');
    }
    if (k == 0) return false;
    *p = s;
    *v = x;
    return true;
}

static bool take_char(const char **p, char c)
{
    if (**p != c) return false;
    (*p)++;
    return true;
}

/* The range record, as written by record_save:
 *   "qfit-parts 1 <hex> <size> <n>\n" then n lines "<start> <len> <done>\n".
 * 1: a record that matches the blob and the partial file (B->part[], B->n set);
 * 0: none; -1: one that is not trusted (why in why). A record is checked as a
 * whole: the ranges must tile [0, size) in order, done <= len, and the partial
 * file must be at least as long as the last byte any range says it holds. */
static int record_load(puller *P, const qfit_layer *l, ranges *B, char *why, size_t why_len)
{
    char path[URL_MAX], buf[RECORD_MAX + 1];
    if (partial_path(P, &l->digest, true, path, sizeof path) != 0) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf);   /* a local regular file: one read */
    close(fd);
    if (n < 0 || n > RECORD_MAX) { snprintf(why, why_len, "unreadable or larger than %d bytes", RECORD_MAX); return -1; }
    buf[n] = 0;
    if (memchr(buf, 0, (size_t)n)) { snprintf(why, why_len, "contains a NUL byte"); return -1; }
    const char *p = buf;
    uint64_t size, cnt;
    if (strncmp(p, RECORD_MAGIC, strlen(RECORD_MAGIC)) != 0) { snprintf(why, why_len, "bad header"); return -1; }
    p += strlen(RECORD_MAGIC);
    if (strncmp(p, l->digest.hex, QFIT_DIGEST_HEX) != 0) { snprintf(why, why_len, "another blob's digest"); return -1; }
    p += QFIT_DIGEST_HEX;
    if (!take_char(&p, ' ') || !take_u64(&p, &size) || !take_char(&p, ' ') || !take_u64(&p, &cnt) ||
        !take_char(&p, '\n')) { snprintf(why, why_len, "bad header"); return -1; }
    if (size != (uint64_t)l->size) { snprintf(why, why_len, "size %llu, the manifest says %lld", (unsigned long long)size, (long long)l->size); return -1; }
    if (cnt < 1 || cnt > QFIT_PULL_PARTS_MAX) { snprintf(why, why_len, "%llu ranges", (unsigned long long)cnt); return -1; }
    uint64_t next = 0, need = 0;
    for (unsigned i = 0; i < cnt; i++) {
        range_part *r = &B->part[i];
        if (!take_u64(&p, &r->start) || !take_char(&p, ' ') || !take_u64(&p, &r->len) || !take_char(&p, ' ') ||
            !take_u64(&p, &r->done) || !take_char(&p, '\n')) { snprintf(why, why_len, "bad line %u", i + 2); return -1; }
        if (r->start != next || r->len == 0 || r->len > size - next || r->done > r->len) {
            snprintf(why, why_len, "range %u (%llu+%llu, %llu done) does not follow byte %llu", i,
                     (unsigned long long)r->start, (unsigned long long)r->len, (unsigned long long)r->done,
                     (unsigned long long)next);
            return -1;
        }
        next += r->len;
        if (r->done && r->start + r->done > need) need = r->start + r->done;
    }
    if (*p || next != size) { snprintf(why, why_len, "the ranges do not end at byte %llu", (unsigned long long)size); return -1; }
    struct stat ps;
    char dpath[URL_MAX];
    if (partial_path(P, &l->digest, false, dpath, sizeof dpath) != 0 || stat(dpath, &ps) != 0 ||
        (uint64_t)ps.st_size < need) {
        snprintf(why, why_len, "the partial file is shorter than the %llu bytes it claims", (unsigned long long)need);
        return -1;
    }
    B->n = (unsigned)cnt;
    return 1;
}

/* Write the record of done[] atomically, after the data it describes is on disk.
 * Reads only what does not change during the download (B->P, l, n, the ranges'
 * start and len, data_fd): called from the recorder thread too. 0, or -1 with
 * errno and a message. */
static int record_write(const ranges *B, const uint64_t *done, char *err, size_t err_len)
{
    puller *P = B->P;
    char path[URL_MAX], tmp[URL_MAX], dir[URL_MAX], text[RECORD_MAX];
    if (qfit_sys_fdatasync(B->data_fd) != 0) {
        int e = errno;
        fmt(err, err_len, "fdatasync of the partial blob %s: %s", B->l->digest.hex, strerror(e));
        errno = e;
        return -1;
    }
    int len = snprintf(text, sizeof text, "%s%s %lld %u\n", RECORD_MAGIC, B->l->digest.hex, (long long)B->l->size, B->n);
    for (unsigned i = 0; i < B->n; i++)
        len += snprintf(text + len, sizeof text - (size_t)len, "%llu %llu %llu\n", (unsigned long long)B->part[i].start,
                        (unsigned long long)B->part[i].len, (unsigned long long)done[i]);
    blobs_dir(P, dir, sizeof dir);
    partial_path(P, &B->l->digest, true, path, sizeof path);
    fmt(tmp, sizeof tmp, "%s/.qfit-tmp-XXXXXX", dir);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e0 = errno;
        fmt(err, err_len, "cannot create a temporary file in '%s': %s", dir, strerror(e0));
        errno = e0;
        return -1;
    }
    ssize_t w = write(fd, text, (size_t)len);   /* under 4 KiB to a regular file: written whole or failed */
    int e = w == len ? 0 : (w < 0 ? errno : ENOSPC);
    if (!e && fsync(fd) != 0) e = errno;
    close(fd);
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) {
        unlink(tmp);
        fmt(err, err_len, "cannot write the range record '%s': %s", path, strerror(e));
        errno = e;
        return -1;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    return 0;
}

static uint64_t sum_of(const uint64_t *v, unsigned n)
{
    uint64_t s = 0;
    for (unsigned i = 0; i < n; i++) s += v[i];
    return s;
}

/* A record of the ranges as they are now, on the calling thread (the recorder
 * thread is not running). */
static int record_save(ranges *B, char *err, size_t err_len)
{
    uint64_t done[QFIT_PULL_PARTS_MAX];
    for (unsigned i = 0; i < B->n; i++) done[i] = B->part[i].done;
    if (record_write(B, done, err, err_len) != 0) return -1;
    B->recorded = B->R.asked = sum_of(done, B->n);
    return 0;
}

/* The recorder thread: the network loop hands it snapshots of the ranges' done
 * counts and never waits for a flush to disk (17 ms per record on the test VM's
 * disk: done inline, the sockets would stall and fill behind it). Only the latest
 * snapshot matters: a newer one replaces one not yet taken. */
static void *recorder_main(void *arg)
{
    ranges *B = arg;
    recorder *R = &B->R;
    uint64_t done[QFIT_PULL_PARTS_MAX];
    char err[1024];
    pthread_mutex_lock(&R->mu);
    for (;;) {
        while (!R->pending && !R->stop) pthread_cond_wait(&R->cv, &R->mu);
        if (!R->pending) break;
        memcpy(done, R->snap, sizeof done);
        R->pending = false;
        pthread_mutex_unlock(&R->mu);
        int rc = record_write(B, done, err, sizeof err);
        int e = errno;
        pthread_mutex_lock(&R->mu);
        if (rc != 0 && !R->err_no) {
            R->err_no = e ? e : EIO;
            snprintf(R->err, sizeof R->err, "%s", err);
        } else if (rc == 0) {
            R->recorded = sum_of(done, B->n);
        }
    }
    pthread_mutex_unlock(&R->mu);
    return NULL;
}

static int recorder_start(ranges *B)
{
    recorder *R = &B->R;
    pthread_mutex_init(&R->mu, NULL);
    pthread_cond_init(&R->cv, NULL);
    R->recorded = B->recorded;
    int e = pthread_create(&R->th, NULL, recorder_main, B);
    if (e) {
        pthread_cond_destroy(&R->cv);
        pthread_mutex_destroy(&R->mu);
        snprintf(B->err, sizeof B->err, "cannot start the thread that records the ranges: %s", strerror(e));
        B->failed = true;
        return -1;
    }
    R->running = true;
    return 0;
}

/* Hand the ranges' done counts to the recorder (network thread). */
static void recorder_ask(ranges *B, uint64_t d)
{
    recorder *R = &B->R;
    pthread_mutex_lock(&R->mu);
    for (unsigned i = 0; i < B->n; i++) R->snap[i] = B->part[i].done;
    R->pending = true;
    pthread_cond_signal(&R->cv);
    pthread_mutex_unlock(&R->mu);
    R->asked = d;
}

/* A record that failed: its errno (0: none), message into B->err. */
static int recorder_failed(ranges *B)
{
    recorder *R = &B->R;
    if (R->running) pthread_mutex_lock(&R->mu);   /* else joined: no other thread */
    int e = R->err_no;
    if (e && !B->failed) snprintf(B->err, sizeof B->err, "%s", R->err);
    if (R->running) pthread_mutex_unlock(&R->mu);
    return e;
}

/* Let the recorder write the last snapshot handed to it, then stop it. */
static void recorder_stop(ranges *B)
{
    recorder *R = &B->R;
    if (!R->running) return;
    pthread_mutex_lock(&R->mu);
    R->stop = true;
    pthread_cond_signal(&R->cv);
    pthread_mutex_unlock(&R->mu);
    pthread_join(R->th, NULL);
    pthread_cond_destroy(&R->cv);
    pthread_mutex_destroy(&R->mu);
    R->running = false;
    B->recorded = R->recorded;
}

static void ranges_report(ranges *B)
{
    char ds[QFIT_DIGEST_STR], st[32];
    qfit_digest_str(&B->l->digest, ds);
    snprintf(st, sizeof st, "pulling %.12s", B->l->digest.hex);
    uint64_t d = ranges_done(B);
    B->P->prog.total = (uint64_t)B->l->size;
    B->P->prog.completed = d;
    B->P->prog.all_completed = B->base_done + d;
    report(B->P, st, ds);
}

static int sink_range(const char *p, size_t n, void *ctx, char *err, size_t err_len)
{
    range_part *r = ctx;
    ranges *B = r->B;
    if (!r->checked) {
        r->checked = true;
        unsigned long long from = 0, to = 0;
        if (r->x.status != 206) {
            B->no_range = true;   /* the whole blob is coming: start it over as one stream */
            snprintf(err, err_len, "registry answered a range request with %ld", r->x.status);
            return -1;
        }
        if (sscanf(r->x.content_range, " bytes %llu-%llu", &from, &to) != 2 || from != r->req_from ||
            to >= r->start + r->len || to < from) {
            snprintf(err, err_len, "registry answered the range %llu-%llu with Content-Range '%s'",
                     (unsigned long long)r->req_from, (unsigned long long)(r->start + r->len - 1), r->x.content_range);
            return -1;
        }
    }
    if (n > r->len - r->done) {
        snprintf(err, err_len, "registry sent more than the %llu bytes of range %llu-%llu", (unsigned long long)r->len,
                 (unsigned long long)r->start, (unsigned long long)(r->start + r->len - 1));
        return -1;
    }
    errno = 0;
    if (qfit_blob_write_at(B->w, r->start + r->done, p, n, err, err_len) != 0) {
        B->write_errno = errno;
        return -1;
    }
    r->done += n;
    uint64_t d = ranges_done(B), unasked = d - B->R.asked;
    if (unasked >= RECORD_FLOOR && unasked >= d / RECORD_FRACTION) recorder_ask(B, d);
    ranges_report(B);
    return 0;
}

static void ranges_fail(ranges *B, const char *msg)
{
    if (!B->failed) snprintf(B->err, sizeof B->err, "%s", msg);
    B->failed = true;
}

static void range_start(ranges *B, range_part *r, CURLM *m)
{
    r->req_from = r->start + r->done;
    r->checked = false;
    r->x.sink = sink_range;
    r->x.sink_ctx = r;
    if (req_setup(B->P, r->c, r->url, NULL, (int64_t)r->req_from, (int64_t)(r->start + r->len - 1), &r->x, &r->h,
                  r->perr, sizeof r->perr) != 0) {
        ranges_fail(B, r->perr);
        return;
    }
    curl_easy_setopt(r->c, CURLOPT_PRIVATE, (void *)r);
    if (curl_multi_add_handle(m, r->c) != CURLM_OK) { ranges_fail(B, "libcurl: cannot add a transfer"); return; }
    r->running = true;
}

/* A range's transfer ended: done, redirected, retried later or failed. */
static void range_done(ranges *B, range_part *r, CURLcode cr)
{
    char ds[QFIT_DIGEST_STR];
    qfit_digest_str(&B->l->digest, ds);
    curl_slist_free_all(r->h);
    r->h = NULL;
    int rc = req_result(r->c, cr, r->url, B->url0, &r->hop, &r->x, r->perr, sizeof r->perr);
    if (rc == 2) return;   /* started again on the Location */
    if (rc == 1) {
        char m[1400];
        snprintf(m, sizeof m, "pulling %s: registry returned %ld for %.512s: %s", ds, r->x.status, r->url, r->x.excerpt);
        ranges_fail(B, m);
        return;
    }
    if (rc == 0 && r->done == r->len) return;
    if (rc == 0) snprintf(r->perr, sizeof r->perr, "the registry sent %llu of the %llu bytes of range %llu-%llu",
                          (unsigned long long)(r->start + r->done - r->req_from), (unsigned long long)(r->len - (r->req_from - r->start)),
                          (unsigned long long)r->req_from, (unsigned long long)(r->start + r->len - 1));
    /* a sink error (no Range support, bad range, too many bytes, a failed write) is final */
    if (r->x.sink_failed || ++r->attempts >= QFIT_PULL_RETRIES) {
        char m[1200];
        snprintf(m, sizeof m, "pulling %s: %s", ds, r->perr);
        ranges_fail(B, m);
        return;
    }
    r->not_before = mono_s() + (r->attempts - 1);   /* 0 s, 1 s */
    r->hop = 0;
    snprintf(r->url, sizeof r->url, "%s", B->url0);
}

/* Run every unfinished range until all are done or one fails for good. */
static void ranges_run(ranges *B)
{
    CURLM *m = curl_multi_init();
    if (!m) { ranges_fail(B, "libcurl: cannot create a multi handle"); return; }
    for (unsigned i = 0; i < B->n && !B->failed; i++) {
        range_part *r = &B->part[i];
        r->B = B;
        snprintf(r->url, sizeof r->url, "%s", B->url0);
        if (r->done < r->len && !(r->c = curl_easy_init())) ranges_fail(B, "libcurl: cannot create a handle");
    }
    while (!B->failed) {
        bool left = false;
        double now = mono_s();
        for (unsigned i = 0; i < B->n && !B->failed; i++) {
            range_part *r = &B->part[i];
            if (r->done == r->len) continue;
            left = true;
            if (!r->running && now >= r->not_before) range_start(B, r, m);
        }
        if (!left || B->failed) break;
        int rec_errno = recorder_failed(B);
        if (rec_errno) {
            B->write_errno = rec_errno;
            B->failed = true;
            break;
        }
        int still;
        curl_multi_perform(m, &still);
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(m, &q)) != NULL) {
            if (msg->msg != CURLMSG_DONE) continue;
            range_part *r = NULL;
            CURL *e = msg->easy_handle;
            CURLcode cr = msg->data.result;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
            curl_multi_remove_handle(m, e);   /* msg is invalid from here */
            r->running = false;
            range_done(B, r, cr);
        }
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    for (unsigned i = 0; i < B->n; i++) {
        range_part *r = &B->part[i];
        if (r->running) curl_multi_remove_handle(m, r->c);
        r->running = false;
        curl_slist_free_all(r->h);
        r->h = NULL;
        if (r->c) curl_easy_cleanup(r->c);
        r->c = NULL;
    }
    curl_multi_cleanup(m);
}

/* 0 done, -1 failed (err), 2: the registry ignores Range (nothing committed; the
 * record is removed and the caller downloads one stream from 0). loaded: B->part[]
 * holds a trusted record; else the ranges are laid out here, the first prefix
 * bytes taken as done (a one-stream partial file). */
static int download_ranges(puller *P, const qfit_layer *l, ranges *B, bool loaded, uint64_t prefix, unsigned parts,
                           char *err, size_t err_len)
{
    char ds[QFIT_DIGEST_STR], path[URL_MAX];
    qfit_digest_str(&l->digest, ds);
    B->P = P;
    B->l = l;
    B->base_done = P->prog.all_completed;
    fmt(B->url0, sizeof B->url0, "%s/blobs/%s", P->base, ds);
    uint64_t size = (uint64_t)l->size;
    if (!loaded) {
        B->n = parts;
        for (unsigned i = 0; i < parts; i++) {
            range_part *r = &B->part[i];
            r->start = size / parts * i;
            r->len = i + 1 < parts ? size / parts : size - r->start;
            r->done = prefix > r->start ? (prefix - r->start < r->len ? prefix - r->start : r->len) : 0;
        }
    }
    B->w = qfit_blob_begin(P->s, &l->digest, QFIT_BLOB_RANDOM, err, err_len);
    if (!B->w) return -1;
    partial_path(P, &l->digest, false, path, sizeof path);
    B->data_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (B->data_fd < 0) {
        fmt(err, err_len, "cannot open '%s': %s", path, strerror(errno));
        qfit_blob_abort(B->w);
        return -1;
    }
    /* the header fetched for the plan is the start of this blob: not fetched twice */
    bool head = P->head.len && qfit_digest_equal(&l->digest, &P->head_digest);
    for (unsigned i = 0; head && i < B->n && !B->failed; i++) {
        range_part *r = &B->part[i];
        uint64_t from = r->start + r->done, to = r->start + r->len < P->head.len ? r->start + r->len : P->head.len;
        errno = 0;
        if (from < to && qfit_blob_write_at(B->w, from, P->head.buf + from, (size_t)(to - from), B->err, sizeof B->err) != 0) {
            B->write_errno = errno;
            B->failed = true;
        } else if (from < to) {
            r->done = to - r->start;
        }
    }
    /* recorded before any byte of the network is written: a partial file without a
     * record is then always the prefix written by one stream */
    if (!B->failed && record_save(B, B->err, sizeof B->err) != 0) {
        B->write_errno = errno;
        B->failed = true;
    }
    if (!B->failed && recorder_start(B) == 0) {
        ranges_report(B);
        ranges_run(B);
        recorder_stop(B);
        int e = recorder_failed(B);   /* the last record; irrelevant once all is done */
        if (e && !B->failed && ranges_done(B) < size) {
            B->write_errno = e;
            B->failed = true;
        }
    }
    int rc = -1;
    if (B->no_range) {
        qfit_blob_abort(B->w);
        partial_path(P, &l->digest, true, path, sizeof path);
        unlink(path);
        rc = 2;
    } else if (B->failed) {
        uint64_t d = ranges_done(B);
        char e2[1024];
        if (B->recorded != d && record_save(B, e2, sizeof e2) != 0) { /* the older record stays valid */ }
        snprintf(err, err_len, "%s", B->err);
        if (B->write_errno && is_space_errno(B->write_errno)) {
            space_error(P, l, B->recorded, err, err_len);
        } else {
            snprintf(e2, sizeof e2, "%s", err);
            snprintf(err, err_len, "%s (%llu of %llu bytes kept in the partial file; run the pull again to resume)", e2,
                     (unsigned long long)B->recorded, (unsigned long long)size);
        }
        qfit_blob_abort(B->w);
    } else {
        report(P, "verifying sha256 digest", ds);
        int64_t got = 0;
        rc = qfit_blob_commit(B->w, NULL, &got, err, err_len);
        partial_path(P, &l->digest, true, path, sizeof path);
        unlink(path);   /* after the rename: a record left by a kill here is pruned later */
    }
    close(B->data_fd);
    return rc;
}

static int download_blob(puller *P, const qfit_layer *l, char *err, size_t err_len)
{
    ranges *B = calloc(1, sizeof *B);
    if (!B) { snprintf(err, err_len, "out of memory"); return -1; }
    char why[256] = "";
    int have = record_load(P, l, B, why, sizeof why);
    uint64_t size = (uint64_t)l->size;
    unsigned parts = P->parts;
    if (parts > size) parts = (unsigned)size;
    int rc;
    if (have == 1) {
        rc = download_ranges(P, l, B, true, 0, 0, err, err_len);
    } else if (size >= P->parallel_min && parts > 1) {
        /* no record: the partial file, if any, is one stream's prefix; an untrusted
         * record: nothing is done */
        rc = download_ranges(P, l, B, false, have == 0 ? partial_size(P, l) : 0, parts, err, err_len);
    } else {
        if (have == -1) {
            char path[URL_MAX];
            partial_path(P, &l->digest, true, path, sizeof path);
            unlink(path);
        }
        rc = download_stream(P, l, have == -1, err, err_len);
    }
    if (rc == 2) rc = download_stream(P, l, true, err, err_len);
    free(B);
    return rc;
}

/* Bytes of a blob already downloaded: its trusted range record, else the partial file. */
static uint64_t partial_done(puller *P, const qfit_layer *l)
{
    ranges *B = calloc(1, sizeof *B);
    char why[256];
    int have = B ? record_load(P, l, B, why, sizeof why) : 0;
    uint64_t d = have == 1 ? ranges_done(B) : have == 0 ? partial_size(P, l) : 0;
    free(B);
    return d;
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
        need += (uint64_t)l->size - partial_done(P, l);
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
    P.parts = P.o->parts ? P.o->parts : QFIT_PULL_PARTS_DEFAULT;
    if (P.parts > QFIT_PULL_PARTS_MAX) {
        snprintf(err, err_len, "parts %u: at most %d ranges per blob", P.parts, QFIT_PULL_PARTS_MAX);
        return -1;
    }
    P.parallel_min = P.o->parallel_min ? P.o->parallel_min : QFIT_PULL_PARALLEL_MIN_DEFAULT;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) { snprintf(err, err_len, "libcurl initialisation failed"); return -1; }
    P.curl = curl_easy_init();
    if (!P.curl) { snprintf(err, err_len, "libcurl: cannot create a handle"); return -1; }
    for (const char *const *r = P.o->resolve; r && *r; r++) {
        struct curl_slist *n = curl_slist_append(P.resolve, *r);
        if (!n) { snprintf(err, err_len, "out of memory"); curl_slist_free_all(P.resolve); curl_easy_cleanup(P.curl); return -1; }
        P.resolve = n;
    }

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
    curl_slist_free_all(P.resolve);
    return rc;
}
