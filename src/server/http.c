/* The HTTP layer of `qfit serve` on libmicrohttpd (contract: include/qfit/server.h).
 *
 * Threading: MHD_USE_THREAD_PER_CONNECTION. Every connection has its own thread,
 * so a handler may block and a stream's reader callback may wait for its producer
 * without stalling other clients (with one polling thread, a blocking callback
 * would stall every connection, and suspend/resume would need a wake-up path per
 * chunk). The connection limit bounds the threads.
 *
 * A request's life: the URI log callback allocates the qfit_http_req (MHD hands it
 * to every later callback as *req_cls) and keeps the raw URI, so the path is
 * percent-decoded here, strictly (MHD's own decoding would let %00 cut it short);
 * the first access-handler call runs the checks (routing, Host, CORS, key, body
 * size); later calls bring the body; the last runs the handler and queues its
 * answer; the completion callback logs the request and frees it.
 */
#include "server/server_int.h"
#include "platform/platform.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qfit/version.h"

#define MAX_PARAMS      4
#define STREAM_QUEUE    (256u << 10)   /* bytes a producer may be ahead of the client */
#define POLL_SLICE_MS   100            /* how often a waiting stream checks its socket */
#define CONN_MEMORY     (64u << 10)    /* request line + headers must fit in it */
#define CONN_TIMEOUT_S  600            /* idle connections (slowloris) */
#define DISCARD_MAX     (64u << 20)    /* body bytes read and dropped after an early answer */

/* ---------------------------------------------------------------- types */

typedef struct header {
    char          *name, *value;
    struct header *next;
} header;

struct qfit_http_stream {
    pthread_mutex_t   mu;
    pthread_cond_t    cv;
    int               refs;         /* the producer's and the response's */
    bool              ended, cancelled, sse;
    char             *buf;          /* queued bytes: buf[0..len) */
    size_t            len, cap;
    unsigned          keepalive_ms;
    qfit_http_req    *req;          /* while the request lives (reader side only) */
    qfit_server      *srv;
    qfit_http_stream *prev, *next;  /* the server's live streams */
};

struct qfit_http_req {
    qfit_server           *srv;
    struct MHD_Connection *conn;
    pthread_t              thread;
    char                  *raw_uri;
    char                  *path;
    const char            *method;
    const qfit_http_route *route;
    const char            *param_name[MAX_PARAMS];
    size_t                 param_name_len[MAX_PARAMS];
    char                  *param_value[MAX_PARAMS];
    size_t                 n_params;
    char                  *body;
    size_t                 body_len, body_cap, max_body, discarded;
    bool                   loopback, keyed, openai, begun;
    atomic_bool            cancelled;
    struct MHD_Response   *resp;
    unsigned               status;
    header                *extra;
    char                  *cors_origin;
    qfit_http_stream      *stream;
    void                  *user;
    void                 (*user_free)(void *);
    struct timespec        t0;
    char                   client[64];
    /* an in-process call (qfit_server_call): conn is NULL, the answer's body goes here */
    const atomic_bool     *call_cancel;
    char                  *call_out;
    size_t                 call_len;
};

/* An open connection, as the slow-client watchdog sees it (see slow_watchdog). */
typedef struct conn_rec {
    struct conn_rec *prev, *next;
    int              fd;
    struct timespec  since;        /* the connection's start, or the end of its last request */
    bool             in_request;   /* its request's headers are in: a handler has it */
    bool             closed;       /* shut down by the watchdog */
} conn_rec;

struct qfit_server {
    qfit_server_config       cfg;
    char                    *host, *origins, *store_root;
    char                     hostname[256];
    bool                     has_key;
    unsigned char            key_hash[32];
    qfit_http_route         *routes;
    size_t                   n_routes, cap_routes;
    struct MHD_Daemon       *daemon;
    struct sockaddr_storage  addr;
    socklen_t                addr_len;
    int                      port;
    pthread_mutex_t          mu;          /* the live-stream list */
    qfit_http_stream        *streams;
    atomic_bool              stopping;
    pthread_mutex_t          conn_mu;     /* conns, watchdog_stop */
    pthread_cond_t           conn_cv;
    conn_rec                *conns;
    pthread_t                watchdog;
    bool                     watchdog_started, watchdog_stop;
    atomic_ulong             slow_closed; /* connections closed by the watchdog */
};

/* ---------------------------------------------------------------- small helpers */

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

static bool addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

bool qfit_server_host_is_loopback(const char *host)
{
    if (!host || !*host) return true;   /* the default, 127.0.0.1 */
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return false;
    bool all = true;
    for (struct addrinfo *a = res; a; a = a->ai_next)
        if (!addr_is_loopback(a->ai_addr)) all = false;
    freeaddrinfo(res);
    return all;
}

/* "[::1]:80" → "::1", "h:80" → "h", "::1" → "::1" (Go's SplitHostPort, else the
 * whole value), lowercased, into out. */
static void host_of(const char *hdr, char *out, size_t cap)
{
    size_t n = strlen(hdr);
    const char *start = hdr;
    if (hdr[0] == '[') {
        const char *e = strchr(hdr, ']');
        if (e) { start = hdr + 1; n = (size_t)(e - start); }
    } else {
        const char *c = strchr(hdr, ':');
        if (c && !strchr(c + 1, ':')) n = (size_t)(c - hdr);
    }
    if (n >= cap) n = cap - 1;
    for (size_t i = 0; i < n; i++) out[i] = (char)((start[i] >= 'A' && start[i] <= 'Z') ? start[i] + 32 : start[i]);
    out[n] = '\0';
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* An address of one of this machine's interfaces? */
static bool is_local_interface(const struct sockaddr *sa)
{
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) != 0) return false;
    bool found = false;
    for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != sa->sa_family) continue;
        if (sa->sa_family == AF_INET)
            found = ((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
                    ((const struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
        else
            found = !memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr,
                            &((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
    }
    freeifaddrs(ifs);
    return found;
}

/* Ollama's allowedHostsMiddleware + allowedHost: a DNS-rebinding page can only
 * send a name it controls, so IP literals of this machine or its networks pass,
 * and names only when they are local by construction. */
static bool host_allowed(const qfit_server *s, const char *hdr)
{
    if (!hdr || !*hdr) return true;
    char h[300];
    host_of(hdr, h, sizeof h);
    if (!*h) return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, h, &a4) == 1) {
        uint32_t v = ntohl(a4.s_addr);
        if ((v >> 24) == 127 || (v >> 24) == 10 || (v >> 20) == 0xAC1 || (v >> 16) == 0xC0A8 || v == 0)
            return true;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = a4 };
        return is_local_interface((const struct sockaddr *)&sa);
    }
    if (inet_pton(AF_INET6, h, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6) || (a6.s6_addr[0] & 0xfe) == 0xfc)
            return true;
        struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = a6 };
        return is_local_interface((const struct sockaddr *)&sa);
    }
    if (!strcmp(h, "localhost") || ends_with(h, ".localhost") || ends_with(h, ".local") ||
        ends_with(h, ".internal"))
        return true;
    if (s->hostname[0] && !strcasecmp(h, s->hostname)) return true;
    return s->host && !strcasecmp(h, s->host);
}

/* '*' matches any run of characters (gin-contrib/cors wildcards). */
static bool glob_match(const char *pat, const char *s)
{
    const char *star = NULL, *mark = NULL;
    while (*s) {
        if (*pat == '*') { star = pat++; mark = s; }
        else if (*pat == *s) { pat++; s++; }
        else if (star) { pat = star + 1; s = ++mark; }
        else return false;
    }
    while (*pat == '*') pat++;
    return !*pat;
}

/* Ollama's default origins: http(s)://localhost|127.0.0.1|0.0.0.0 with an optional
 * numeric port, and the app-like schemes. */
static bool default_origin(const char *o)
{
    static const char *const schemes[] = { "app://", "file://", "tauri://", "vscode-webview://", "vscode-file://" };
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        if (!strncmp(o, schemes[i], strlen(schemes[i]))) return true;
    const char *p = !strncmp(o, "http://", 7) ? o + 7 : !strncmp(o, "https://", 8) ? o + 8 : NULL;
    if (!p) return false;
    static const char *const hosts[] = { "localhost", "127.0.0.1", "0.0.0.0" };
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        size_t n = strlen(hosts[i]);
        if (strncmp(p, hosts[i], n) != 0) continue;
        const char *q = p + n;
        if (!*q) return true;
        if (*q != ':' || !q[1]) continue;
        for (q++; *q >= '0' && *q <= '9'; q++) {}
        if (!*q) return true;
    }
    return false;
}

static bool origin_allowed(const qfit_server *s, const char *origin)
{
    if (default_origin(origin)) return true;
    if (!s->origins) return false;
    const char *p = s->origins;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        size_t n = (size_t)(e - p);
        while (n && p[n - 1] == ' ') n--;
        if (n) {
            char pat[512];
            if (n < sizeof pat) {
                memcpy(pat, p, n);
                pat[n] = '\0';
                if (glob_match(pat, origin)) return true;
            }
        }
        p = e;
    }
    return false;
}

/* A page of this server calling it: Origin is http://<the Host header> (the built-in page
 * opened at a LAN address). Safe because the Host was checked first (DNS rebinding). */
static bool same_origin(const char *origin, const char *host)
{
    return host && *host && !strncmp(origin, "http://", 7) && !strcasecmp(origin + 7, host);
}

/* Replace every occurrence of from (if non-empty) by to, in place (cap bytes). */
static void replace_all(char *msg, size_t cap, const char *from, const char *to)
{
    if (!from || !*from) return;
    size_t fl = strlen(from), tl = strlen(to);
    char *p = msg;
    while ((p = strstr(p, from)) != NULL) {
        size_t rest = strlen(p + fl);
        if ((size_t)(p - msg) + tl + rest + 1 > cap) return;
        memmove(p + tl, p + fl, rest + 1);
        memcpy(p, to, tl);
        p += tl;
    }
}

/* Error messages must not show the server's file system: the store root and
 * $HOME become "<models>" and "~", then any quoted absolute path '<path>'. */
void qfit_server_scrub_paths(const char *store_root, char *msg, size_t cap)
{
    const char *home = getenv("HOME");
    replace_all(msg, cap, store_root, "<models>");
    if (home && strlen(home) > 1) replace_all(msg, cap, home, "~");
    for (char *p = msg; (p = strpbrk(p, "'\"")) != NULL;) {
        char q = *p;
        char *e = strchr(p + 1, q);
        if (!e) break;
        if (p[1] == '/') {
            static const char repl[] = "<path>";
            size_t rest = strlen(e);
            memmove(p + 1 + sizeof repl - 1, e, rest + 1);
            memcpy(p + 1, repl, sizeof repl - 1);
            e = p + sizeof repl;
        }
        p = e + 1;
    }
}

/* ---------------------------------------------------------------- answers */

int qfit_http_add_header(qfit_http_req *r, const char *name, const char *value)
{
    header *h = calloc(1, sizeof *h);
    if (!h || !(h->name = strdup(name)) || !(h->value = strdup(value))) {
        if (h) { free(h->name); free(h); }
        return -1;
    }
    h->next = r->extra;
    r->extra = h;
    return 0;
}

/* Our headers (extra, CORS) onto a response; 0 or -1. */
static int add_headers(qfit_http_req *r, struct MHD_Response *resp, const char *content_type)
{
    if (content_type && MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES)
        return -1;
    for (header *h = r->extra; h; h = h->next)
        if (MHD_add_response_header(resp, h->name, h->value) != MHD_YES) return -1;
    if (r->cors_origin &&
        (MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors_origin) != MHD_YES ||
         MHD_add_response_header(resp, "Vary", "Origin") != MHD_YES))
        return -1;
    return 0;
}

int qfit_http_respond(qfit_http_req *r, unsigned status, const char *content_type, const void *body, size_t len)
{
    if (r->resp || r->status) return -1;   /* one answer per request */
    if (!r->conn) {   /* in-process call: keep the bytes */
        if (!(r->call_out = malloc(len + 1))) return -1;
        memcpy(r->call_out, body, len);
        r->call_out[len] = '\0';
        r->call_len = len;
        r->status = status;
        return 0;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (!resp) return -1;
    if (add_headers(r, resp, content_type) != 0) {
        MHD_destroy_response(resp);
        return -1;
    }
    r->resp = resp;
    r->status = status;
    return 0;
}

int qfit_http_respond_json(qfit_http_req *r, unsigned status, const json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) return -1;
    int rc = qfit_http_respond(r, status, "application/json; charset=utf-8", text, strlen(text));
    free(text);
    return rc;
}

/* The OpenAI error type of a status (ollama-compat-reference §2; 401/403/413/429 as
 * OpenAI names them). */
static const char *openai_error_type(unsigned status)
{
    switch (status) {
    case 400: case 405: case 413: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    default:  return "api_error";
    }
}

/* Bytes that are not UTF-8 (a client's header or name echoed back) become '?', so
 * the message can always be sent as JSON. */
void qfit_server_make_utf8(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        size_t k = 1;
        while (n && k < n && (p[k] & 0xC0) == 0x80) k++;
        json_t *probe = n > 1 && k == n ? json_stringn((const char *)p, n) : NULL;   /* overlongs, surrogates */
        if (n == 1 || probe) p += n;
        else *p++ = '?';
        json_decref(probe);
    }
}

int qfit_http_respond_error(qfit_http_req *r, unsigned status, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    qfit_server_scrub_paths(r->srv->store_root, msg, sizeof msg);
    qfit_server_make_utf8(msg);
    json_t *body;
    if (r->openai)
        body = json_pack("{s:{s:s,s:s,s:n,s:n}}", "error", "message", msg, "type", openai_error_type(status),
                         "param", "code");
    else
        body = json_pack("{s:s}", "error", msg);
    if (!body) return -1;
    int rc = qfit_http_respond_json(r, status, body);
    json_decref(body);
    return rc;
}

/* ---------------------------------------------------------------- streams */

static void stream_release(qfit_http_stream *s)
{
    pthread_mutex_lock(&s->mu);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (!last) return;
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->buf);
    free(s);
}

static void stream_cancel(qfit_http_stream *s)
{
    pthread_mutex_lock(&s->mu);
    s->cancelled = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Has the peer closed its end? (POLLRDHUP: the client shut down or disconnected.) */
static bool peer_gone(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd p = { .fd = ci->connect_fd, .events = POLLRDHUP };
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void deadline_after(struct timespec *t, unsigned ms)
{
    clock_gettime(CLOCK_REALTIME, t);
    t->tv_sec += ms / 1000;
    t->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) { t->tv_sec++; t->tv_nsec -= 1000000000L; }
}

static bool before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* MHD's content reader: runs on the connection's thread and blocks until data,
 * the end, a keep-alive deadline or a disconnect. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    qfit_http_stream *s = cls;
    struct timespec keepalive, slice, now;
    deadline_after(&keepalive, s->keepalive_ms);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->cancelled) break;
        if (s->len) {
            size_t n = s->len < max ? s->len : max;
            memcpy(buf, s->buf, n);
            memmove(s->buf, s->buf + n, s->len - n);
            s->len -= n;
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            return (ssize_t)n;
        }
        if (s->ended) {
            pthread_mutex_unlock(&s->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        clock_gettime(CLOCK_REALTIME, &now);
        if (!before(&now, &keepalive)) {
            const char *ka = s->sse ? ": keep-alive\n\n" : " ";
            size_t n = strlen(ka) < max ? strlen(ka) : max;
            memcpy(buf, ka, n);
            pthread_mutex_unlock(&s->mu);
            return (ssize_t)n;
        }
        deadline_after(&slice, POLL_SLICE_MS);
        pthread_cond_timedwait(&s->cv, &s->mu, before(&slice, &keepalive) ? &slice : &keepalive);
        if (s->req && !s->cancelled && peer_gone(s->req->conn)) {
            s->cancelled = true;
            atomic_store(&s->req->cancelled, true);
            pthread_cond_broadcast(&s->cv);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* The response is gone (sent, or the connection closed). */
static void stream_response_freed(void *cls)
{
    qfit_http_stream *s = cls;
    qfit_server *srv = s->srv;
    pthread_mutex_lock(&srv->mu);
    if (s->prev) s->prev->next = s->next;
    else if (srv->streams == s) srv->streams = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
    pthread_mutex_unlock(&srv->mu);
    stream_cancel(s);   /* later writes fail: nobody reads them */
    stream_release(s);
}

qfit_http_stream *qfit_http_stream_begin(qfit_http_req *r, unsigned status, const char *content_type)
{
    if (r->resp || r->status) return NULL;
    qfit_http_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->refs = 2;
    s->sse = content_type && !strncmp(content_type, "text/event-stream", 17);
    s->keepalive_ms = r->srv->cfg.keepalive_ms;
    s->srv = r->srv;
    if (!r->conn) {   /* in-process call: qfit_server_call reads the queue */
        r->status = status;
        r->stream = s;
        return s;
    }
    s->req = r;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s,
                                                                  stream_response_freed);
    if (!resp) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
        return NULL;
    }
    qfit_server *srv = r->srv;
    pthread_mutex_lock(&srv->mu);
    s->next = srv->streams;
    if (srv->streams) srv->streams->prev = s;
    srv->streams = s;
    pthread_mutex_unlock(&srv->mu);
    /* proxies (nginx) must pass each chunk on at once */
    if (add_headers(r, resp, content_type) != 0 ||
        MHD_add_response_header(resp, "Cache-Control", "no-cache") != MHD_YES ||
        MHD_add_response_header(resp, "X-Accel-Buffering", "no") != MHD_YES) {
        MHD_destroy_response(resp);   /* frees s's response reference */
        stream_release(s);
        return NULL;
    }
    r->resp = resp;
    r->status = status;
    r->stream = s;
    return s;
}

int qfit_http_stream_write(qfit_http_stream *s, const void *data, size_t len)
{
    pthread_mutex_lock(&s->mu);
    while (!s->cancelled && s->len && s->len + len > STREAM_QUEUE)
        pthread_cond_wait(&s->cv, &s->mu);
    int rc = -1;
    if (!s->cancelled && !s->ended) {
        if (s->len + len > s->cap) {
            size_t cap = s->len + len > STREAM_QUEUE ? s->len + len : STREAM_QUEUE;
            char *nb = realloc(s->buf, cap);
            if (nb) { s->buf = nb; s->cap = cap; }
        }
        if (s->len + len <= s->cap) {
            memcpy(s->buf + s->len, data, len);
            s->len += len;
            rc = 0;
            pthread_cond_broadcast(&s->cv);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

bool qfit_http_stream_cancelled(qfit_http_stream *s)
{
    pthread_mutex_lock(&s->mu);
    bool c = s->cancelled;
    pthread_mutex_unlock(&s->mu);
    return c;
}

void qfit_http_stream_end(qfit_http_stream *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->ended = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    stream_release(s);
}

/* ---------------------------------------------------------------- the request */

const char *qfit_http_req_method(const qfit_http_req *r) { return r->method; }
const char *qfit_http_req_path(const qfit_http_req *r) { return r->path; }
bool qfit_http_req_loopback(const qfit_http_req *r) { return r->loopback; }
bool qfit_http_req_openai(const qfit_http_req *r) { return r->openai; }
qfit_server *qfit_http_req_server(const qfit_http_req *r) { return r->srv; }
void *qfit_http_req_user(const qfit_http_req *r) { return r->user; }

void qfit_http_req_set_user(qfit_http_req *r, void *p, void (*free_fn)(void *))
{
    r->user = p;
    r->user_free = free_fn;
}

const char *qfit_http_req_param(const qfit_http_req *r, const char *name)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (strlen(name) == r->param_name_len[i] && !strncmp(name, r->param_name[i], r->param_name_len[i]))
            return r->param_value[i];
    return NULL;
}

const char *qfit_http_req_header(const qfit_http_req *r, const char *name)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *qfit_http_req_query(const qfit_http_req *r, const char *key)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key) : NULL;
}

const char *qfit_http_req_body(const qfit_http_req *r, size_t *len)
{
    if (len) *len = r->body_len;
    return r->body ? r->body : "";
}

bool qfit_http_req_cancelled(qfit_http_req *r)
{
    if (atomic_load(&r->srv->stopping)) atomic_store(&r->cancelled, true);
    if (!r->conn && r->call_cancel && atomic_load(r->call_cancel)) atomic_store(&r->cancelled, true);
    if (!atomic_load(&r->cancelled) && r->conn && pthread_equal(pthread_self(), r->thread) && peer_gone(r->conn))
        atomic_store(&r->cancelled, true);
    return atomic_load(&r->cancelled);
}

json_t *qfit_http_req_json(qfit_http_req *r)
{
    if (!r->body_len) {
        qfit_http_respond_error(r, 400, "missing request body");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(r->body, r->body_len, 0, &je);
    if (!j) {
        qfit_http_respond_error(r, 400, "invalid JSON in the request body at line %d, column %d: %s",
                                je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        qfit_http_respond_error(r, 400, "request body must be a JSON object");
        return NULL;
    }
    return j;
}

static void req_free(qfit_http_req *r)
{
    if (r->user_free) r->user_free(r->user);
    if (r->resp) MHD_destroy_response(r->resp);   /* never queued */
    for (size_t i = 0; i < r->n_params; i++) free(r->param_value[i]);
    while (r->extra) {
        header *h = r->extra;
        r->extra = h->next;
        free(h->name);
        free(h->value);
        free(h);
    }
    free(r->cors_origin);
    free(r->call_out);
    free(r->body);
    free(r->path);
    free(r->raw_uri);
    free(r);
}

/* ---------------------------------------------------------------- routing */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The path of the raw URI, percent-decoded; NULL on a bad escape or %00. */
static char *decode_path(const char *uri)
{
    size_t n = strcspn(uri, "?#");
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (uri[i] != '%') { *o++ = uri[i]; continue; }
        if (i + 2 >= n || hexval(uri[i + 1]) < 0 || hexval(uri[i + 2]) < 0) { free(out); return NULL; }
        char c = (char)(hexval(uri[i + 1]) * 16 + hexval(uri[i + 2]));
        if (!c) { free(out); return NULL; }
        *o++ = c;
        i += 2;
    }
    *o = '\0';
    return out;
}

/* Does path match pattern? Fills r's params when r is not NULL. */
static bool match(const char *pat, const char *path, qfit_http_req *r)
{
    size_t np = 0;
    while (*pat && *path) {
        if (*pat == ':' || *pat == '*') {
            bool rest = *pat == '*';
            const char *name = pat + 1;
            size_t name_len = strcspn(name, "/");
            size_t vlen = rest ? strlen(path) : strcspn(path, "/");
            if (!vlen || np >= MAX_PARAMS) return false;
            if (r) {
                r->param_name[np] = name;
                r->param_name_len[np] = name_len;
                if (!(r->param_value[np] = strndup(path, vlen))) return false;
                r->n_params = np + 1;
            }
            np++;
            pat = name + name_len;
            path += vlen;
            continue;
        }
        if (*pat != *path) return false;
        pat++;
        path++;
    }
    return !*pat && !*path;
}

/* ---------------------------------------------------------------- admission */

static bool has_valid_key(const qfit_server *s, const char *auth)
{
    if (!s->has_key || !auth || strncasecmp(auth, "Bearer ", 7) != 0) return false;
    const char *tok = auth + 7;
    while (*tok == ' ') tok++;
    unsigned char h[32];
    sha256(tok, strlen(tok), h);   /* equal lengths, so the compare is constant-time */
    return CRYPTO_memcmp(h, s->key_hash, 32) == 0;
}

/* Routing and the security checks of server.h, in that order. true: the request
 * may proceed; false: refused (answered, unless even that failed). */
static bool admit(qfit_http_req *r)
{
    qfit_server *s = r->srv;
    r->keyed = !r->conn || has_valid_key(s, qfit_http_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION));
    if (!r->keyed && !host_allowed(s, qfit_http_req_header(r, MHD_HTTP_HEADER_HOST))) {
        qfit_http_respond_error(r, 403, "host not allowed: the Host header names neither this machine nor "
                                "a local address (DNS rebinding protection); use localhost or an IP address");
        return false;
    }
    if (!r->path) {
        qfit_http_respond_error(r, 400, "invalid percent-escape (or %%00) in the request path");
        return false;
    }
    const qfit_http_route *found = NULL;
    bool path_known = false;
    char allow[128] = "";
    for (size_t i = 0; i < s->n_routes; i++) {
        const qfit_http_route *rt = &s->routes[i];
        if (!match(rt->pattern, r->path, NULL)) continue;
        path_known = true;
        if (!strcmp(rt->method, r->method) && !found) found = rt;
        if (!strstr(allow, rt->method) && strlen(allow) + strlen(rt->method) + 3 < sizeof allow)
            snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s", allow[0] ? ", " : "", rt->method);
    }
    const char *origin = qfit_http_req_header(r, "Origin");
    bool preflight = !strcmp(r->method, "OPTIONS");
    if (origin) {
        if (!origin_allowed(s, origin) && !same_origin(origin, qfit_http_req_header(r, MHD_HTTP_HEADER_HOST))) {
            qfit_http_respond_error(r, 403, "origin '%s' not allowed (add it to QFIT_ORIGINS)", origin);
            return false;
        }
        r->cors_origin = strdup(origin);
    }
    if (!path_known) {
        if (!strncmp(r->path, "/api/", 5) || r->openai)
            qfit_http_respond_error(r, 404, "%s %s: no such endpoint", r->method, r->path);
        else
            qfit_http_respond(r, 404, "text/plain; charset=utf-8", "404 page not found", 18);
        return false;
    }
    if (preflight) {
        if (origin) {
            qfit_http_add_header(r, "Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
            qfit_http_add_header(r, "Access-Control-Allow-Headers",
                                 "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, OpenAI-Beta, "
                                 "x-stainless-arch, x-stainless-async, x-stainless-custom-poll-interval, "
                                 "x-stainless-helper-method, x-stainless-lang, x-stainless-os, "
                                 "x-stainless-package-version, x-stainless-poll-helper, x-stainless-retry-count, "
                                 "x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout");
            qfit_http_add_header(r, "Access-Control-Max-Age", "43200");
        }
        qfit_http_respond(r, 204, NULL, "", 0);
        return false;
    }
    if (!found) {
        qfit_http_add_header(r, "Allow", allow);
        qfit_http_respond_error(r, 405, "method %s not allowed on %s (allowed: %s)", r->method, r->path, allow);
        return false;
    }
    r->route = found;
    match(found->pattern, r->path, r);
    if (s->has_key && !r->keyed && !(found->flags & QFIT_HTTP_PUBLIC)) {
        qfit_http_add_header(r, "WWW-Authenticate", "Bearer");
        qfit_http_respond_error(r, 401, "unauthorized: this server needs its API key "
                                "(Authorization: Bearer <QFIT_API_KEY>)");
        return false;
    }
    if ((found->flags & QFIT_HTTP_MANAGE) && !r->loopback && !r->keyed) {
        qfit_http_respond_error(r, 403, "model management from another machine needs an API key: "
                                "start the server with QFIT_API_KEY set");
        return false;
    }
    r->max_body = found->max_body ? found->max_body : s->cfg.max_body;
    const char *cl = qfit_http_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && r->max_body != SIZE_MAX) {
        errno = 0;
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno || *end || v > r->max_body) {
            qfit_http_respond_error(r, 413, "request body too large: Content-Length %s, the limit is %zu bytes",
                                    cl, r->max_body);
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------- MHD callbacks */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    qfit_server *s = cls;
    qfit_http_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    r->srv = s;
    r->conn = c;
    r->status = 0;
    if (!(r->raw_uri = strdup(uri))) { free(r); return NULL; }
    r->path = decode_path(uri);
    r->openai = r->path && (!strncmp(r->path, "/v1/", 4) || !strcmp(r->path, "/v1"));
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        r->loopback = addr_is_loopback(ci->client_addr);
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->client, sizeof r->client);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->client, sizeof r->client);
    }
    return r;
}

static enum MHD_Result queue(qfit_http_req *r)
{
    struct MHD_Response *resp = r->resp;
    r->resp = NULL;
    enum MHD_Result rc = MHD_queue_response(r->conn, r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* ---------------------------------------------------------------- slow clients */

/* Slowloris: a client that opens connections and sends its request headers a byte at a
 * time holds a connection slot (a thread) each, and libmicrohttpd's inactivity timeout
 * never fires while bytes trickle in. The watchdog closes every connection whose
 * request headers are not complete cfg.header_timeout_ms after it opened (or after its
 * previous request ended: an idle keep-alive connection goes the same way), so slots
 * come back to honest clients within that bound. A connection whose headers are in is
 * left alone (a handler owns it; a streaming answer sends keep-alives). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    qfit_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_rec *k = calloc(1, sizeof *k);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!k) return;   /* unwatched: the inactivity timeout still applies */
        k->fd = ci ? (int)ci->connect_fd : -1;
        clock_gettime(CLOCK_MONOTONIC, &k->since);
        pthread_mutex_lock(&s->conn_mu);
        k->next = s->conns;
        if (s->conns) s->conns->prev = k;
        s->conns = k;
        pthread_mutex_unlock(&s->conn_mu);
        *socket_context = k;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        conn_rec *k = *socket_context;   /* called before the socket is closed */
        pthread_mutex_lock(&s->conn_mu);
        if (k->prev) k->prev->next = k->next;
        else s->conns = k->next;
        if (k->next) k->next->prev = k->prev;
        pthread_mutex_unlock(&s->conn_mu);
        free(k);
        *socket_context = NULL;
    }
}

static void conn_mark(qfit_server *s, struct MHD_Connection *c, bool in_request)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_rec *k = ci ? ci->socket_context : NULL;
    if (!k) return;
    pthread_mutex_lock(&s->conn_mu);
    k->in_request = in_request;
    if (!in_request) clock_gettime(CLOCK_MONOTONIC, &k->since);
    pthread_mutex_unlock(&s->conn_mu);
}

static void *slow_watchdog(void *arg)
{
    qfit_server *s = arg;
    const double limit = s->cfg.header_timeout_ms;
    const unsigned tick_ms = s->cfg.header_timeout_ms < 1000 ? s->cfg.header_timeout_ms / 4 + 1 : 250;
    unsigned long reported = 0;
    pthread_mutex_lock(&s->conn_mu);
    while (!s->watchdog_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)tick_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        qfit_sys_cond_timedwait_mono(&s->conn_cv, &s->conn_mu, &ts);
        for (conn_rec *k = s->conns; k && !s->watchdog_stop; k = k->next)
            if (!k->in_request && !k->closed && k->fd >= 0 && ms_since(&k->since) > limit) {
                shutdown(k->fd, SHUT_RDWR);   /* its thread sees the end and closes it */
                k->closed = true;
                atomic_fetch_add(&s->slow_closed, 1);
            }
        const unsigned long n = atomic_load(&s->slow_closed);
        if (n != reported && s->cfg.log) {   /* one line per tick, not one per connection */
            char line[160];
            snprintf(line, sizeof line, "closed %lu connection(s) that sent no complete request within %u ms "
                     "(slow clients; %lu in all)", n - reported, s->cfg.header_timeout_ms, n);
            pthread_mutex_unlock(&s->conn_mu);
            s->cfg.log(s->cfg.log_ctx, line);
            pthread_mutex_lock(&s->conn_mu);
        }
        reported = n;
    }
    pthread_mutex_unlock(&s->conn_mu);
    return NULL;
}

unsigned long qfit_server_slow_closed(const qfit_server *s) { return atomic_load(&s->slow_closed); }

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    (void)url; (void)version;
    qfit_http_req *r = *req_cls;
    if (!r) return MHD_NO;   /* out of memory in on_uri */
    if (!r->begun) {
        conn_mark(cls, c, true);
        r->begun = true;
        r->conn = c;
        r->method = method;
        r->thread = pthread_self();
        if (!admit(r)) {
            if (!r->resp && !r->status)   /* a refusal that could not be built: never proceed */
                qfit_http_respond(r, 500, "text/plain; charset=utf-8", "internal error", 14);
            return r->resp ? queue(r) : MHD_NO;
        }
        if (r->route->body && r->route->body(r, NULL, 0, r->route->ctx) != 0 && !r->resp && !r->status)
            qfit_http_respond_error(r, 500, "the request body could not be taken");
        return r->resp ? queue(r) : MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->resp || r->status) {
            /* answered: libmicrohttpd sends an answer only once the body is in, so
             * the rest is read and dropped, up to a bound, then the connection closed */
            r->discarded += n;
            return r->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
        }
        if (n > r->max_body - r->body_len) {
            qfit_http_respond_error(r, 413, "request body too large: over %zu bytes", r->max_body);
        } else if (r->route->body) {
            r->body_len += n;   /* bytes seen, for the limit; the body function keeps the data */
            if (r->route->body(r, upload_data, n, r->route->ctx) != 0 && !r->resp && !r->status)
                qfit_http_respond_error(r, 500, "the request body could not be taken");
        } else {
            if (r->body_len + n + 1 > r->body_cap) {
                size_t cap = r->body_cap ? r->body_cap : 4096;
                while (cap < r->body_len + n + 1) cap *= 2;
                char *nb = realloc(r->body, cap);
                if (!nb) return MHD_NO;
                r->body = nb;
                r->body_cap = cap;
            }
            memcpy(r->body + r->body_len, upload_data, n);
            r->body_len += n;
            r->body[r->body_len] = '\0';
        }
        return MHD_YES;
    }
    if (r->resp) return queue(r);   /* answered while the body came in */
    if (r->status) return MHD_YES;  /* answered and queued at the first call */
    r->route->handler(r, r->route->ctx);
    if (!r->resp) qfit_http_respond_error(r, 500, "handler gave no response");
    return r->resp ? queue(r) : MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode toe)
{
    qfit_server *s = cls;
    conn_mark(s, c, false);
    qfit_http_req *r = *req_cls;
    if (!r) return;
    *req_cls = NULL;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) atomic_store(&r->cancelled, true);
    if (r->stream) {
        qfit_http_stream *st = r->stream;
        pthread_mutex_lock(&st->mu);
        st->req = NULL;
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) st->cancelled = true;
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
    }
    if (s->cfg.log && r->method) {
        char line[512], status[16] = "-";
        if (r->status) snprintf(status, sizeof status, "%u", r->status);
        snprintf(line, sizeof line, "%s %.200s %s %.1fms %s%s", r->method, r->path ? r->path : r->raw_uri, status,
                 ms_since(&r->t0), r->client,
                 toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
        s->cfg.log(s->cfg.log_ctx, line);
    }
    req_free(r);
}

/* ---------------------------------------------------------------- the server */

qfit_server *qfit_server_new(const qfit_server_config *cfg, char *err, size_t err_len)
{
    qfit_server *s = calloc(1, sizeof *s);
    if (!s) { snprintf(err, err_len, "out of memory"); return NULL; }
    s->cfg = *cfg;
    s->port = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->conn_mu, NULL);
    qfit_sys_cond_init_mono(&s->conn_cv);
    if (!s->cfg.header_timeout_ms) s->cfg.header_timeout_ms = QFIT_SERVER_DEFAULT_HEADER_TIMEOUT_MS;
    if (!s->cfg.max_body) s->cfg.max_body = QFIT_SERVER_DEFAULT_MAX_BODY;
    if (!s->cfg.max_connections) s->cfg.max_connections = QFIT_SERVER_DEFAULT_MAX_CONNECTIONS;
    if (!s->cfg.keepalive_ms) s->cfg.keepalive_ms = QFIT_SERVER_DEFAULT_KEEPALIVE_MS;
    s->host = strdup(cfg->host && *cfg->host ? cfg->host : "127.0.0.1");
    s->origins = cfg->origins && *cfg->origins ? strdup(cfg->origins) : NULL;
    s->store_root = cfg->store_root ? strdup(cfg->store_root) : NULL;
    s->cfg.host = s->host;
    s->cfg.origins = s->origins;
    s->cfg.store_root = s->store_root;
    s->cfg.api_key = NULL;   /* only its hash is kept */
    if (gethostname(s->hostname, sizeof s->hostname - 1) != 0) s->hostname[0] = '\0';
    if (cfg->api_key && *cfg->api_key) {
        s->has_key = true;
        sha256(cfg->api_key, strlen(cfg->api_key), s->key_hash);
    }
    if (!s->host || (cfg->origins && *cfg->origins && !s->origins) || (cfg->store_root && !s->store_root)) {
        snprintf(err, err_len, "out of memory");
        qfit_server_free(s);
        return NULL;
    }
    if (qfit_server_add_basic_routes(s, err, err_len) != 0 || qfit_server_add_web_routes(s, err, err_len) != 0 ||
        (s->store_root && (qfit_server_add_store_routes(s, err, err_len) != 0 ||
                           qfit_server_add_manage_routes(s, err, err_len) != 0))) {
        qfit_server_free(s);
        return NULL;
    }
    return s;
}

const char *qfit_server_store_root(const qfit_server *s) { return s->store_root; }

int qfit_server_route(qfit_server *s, const qfit_http_route *r, char *err, size_t err_len)
{
    if (s->daemon) { snprintf(err, err_len, "routes must be added before the server starts"); return -1; }
    if (!r->method || !r->pattern || r->pattern[0] != '/' || !r->handler) {
        snprintf(err, err_len, "route %s %s: method, a pattern starting with '/' and a handler are required",
                 r->method ? r->method : "(null)", r->pattern ? r->pattern : "(null)");
        return -1;
    }
    for (size_t i = 0; i < s->n_routes; i++)
        if (!strcmp(s->routes[i].method, r->method) && !strcmp(s->routes[i].pattern, r->pattern)) {
            snprintf(err, err_len, "route %s %s is already registered", r->method, r->pattern);
            return -1;
        }
    if (s->n_routes == s->cap_routes) {
        size_t cap = s->cap_routes ? s->cap_routes * 2 : 32;
        qfit_http_route *nr = realloc(s->routes, cap * sizeof *nr);
        if (!nr) { snprintf(err, err_len, "out of memory"); return -1; }
        s->routes = nr;
        s->cap_routes = cap;
    }
    s->routes[s->n_routes++] = *r;
    return 0;
}

int qfit_server_start(qfit_server *s, char *err, size_t err_len)
{
    if (s->daemon) { snprintf(err, err_len, "the server is already running"); return -1; }
    if (s->cfg.port < 0 || s->cfg.port > 65535) {
        snprintf(err, err_len, "port %d is out of range (0-65535)", s->cfg.port);
        return -1;
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res = NULL;
    int gai = getaddrinfo(s->host, NULL, &hints, &res);
    if (gai != 0 || !res) {
        snprintf(err, err_len, "cannot resolve the address to listen on '%s': %s", s->host, gai_strerror(gai));
        return -1;
    }
    /* a name with both families ("localhost"): IPv4, where most clients go first */
    const struct addrinfo *pick = res;
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET) { pick = a; break; }
    memcpy(&s->addr, pick->ai_addr, pick->ai_addrlen);
    s->addr_len = pick->ai_addrlen;
    freeaddrinfo(res);
    bool v6 = s->addr.ss_family == AF_INET6;
    if (v6) ((struct sockaddr_in6 *)&s->addr)->sin6_port = htons((uint16_t)s->cfg.port);
    else ((struct sockaddr_in *)&s->addr)->sin_port = htons((uint16_t)s->cfg.port);
    if (!qfit_server_host_is_loopback(s->host) && !s->has_key && !s->cfg.no_auth) {
        snprintf(err, err_len, "refusing to listen on '%s' without an API key: other machines could use and "
                 "change every model; set QFIT_API_KEY (clients send Authorization: Bearer <key>), or pass "
                 "--no-auth to accept that risk", s->host);
        return -1;
    }
    atomic_store(&s->stopping, false);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | (v6 ? MHD_USE_IPv6 : 0);
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&s->addr,
                                 MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                                 MHD_OPTION_CONNECTION_LIMIT, s->cfg.max_connections,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
                                 MHD_OPTION_STRICT_FOR_CLIENT, (int)1,   /* Host required in 1.1, as Go */
                                 MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, err_len, "cannot listen on %s%s%s:%d (address in use, or not an address of this machine?)",
                 v6 ? "[" : "", s->host, v6 ? "]" : "", s->cfg.port);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->cfg.port;
    s->watchdog_stop = false;
    if (pthread_create(&s->watchdog, NULL, slow_watchdog, s) != 0) {
        snprintf(err, err_len, "cannot start the slow-client watchdog thread");
        qfit_server_stop(s);
        return -1;
    }
    s->watchdog_started = true;
    return 0;
}

int qfit_server_port(const qfit_server *s) { return s->daemon ? s->port : -1; }

void qfit_server_stop(qfit_server *s)
{
    if (!s->daemon) return;
    atomic_store(&s->stopping, true);
    if (s->watchdog_started) {
        pthread_mutex_lock(&s->conn_mu);
        s->watchdog_stop = true;
        pthread_cond_signal(&s->conn_cv);
        pthread_mutex_unlock(&s->conn_mu);
        pthread_join(s->watchdog, NULL);
        s->watchdog_started = false;
    }
    pthread_mutex_lock(&s->mu);
    for (qfit_http_stream *st = s->streams; st; st = st->next) stream_cancel(st);
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    s->port = -1;
}

void qfit_server_free(qfit_server *s)
{
    if (!s) return;
    qfit_server_stop(s);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->conn_mu);
    pthread_cond_destroy(&s->conn_cv);
    free(s->routes);
    free(s->host);
    free(s->origins);
    free(s->store_root);
    free(s);
}

/* ---------------------------------------------------------------- in-process calls */

/* Move a call's stream into r->call_out until its producer ends it (a cancel flag
 * that rises makes its writes fail; the producer still ends it). 0 or -1 (memory). */
static int collect_stream(qfit_http_req *r)
{
    qfit_http_stream *s = r->stream;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->len) {
            char *nb = rc ? NULL : realloc(r->call_out, r->call_len + s->len + 1);
            if (nb) {
                memcpy(nb + r->call_len, s->buf, s->len);
                r->call_len += s->len;
                nb[r->call_len] = '\0';
                r->call_out = nb;
            } else {
                rc = -1;
                s->cancelled = true;
            }
            s->len = 0;
            pthread_cond_broadcast(&s->cv);
        }
        if (s->ended) break;
        if (r->call_cancel && atomic_load(r->call_cancel)) {
            s->cancelled = true;
            atomic_store(&r->cancelled, true);
            pthread_cond_broadcast(&s->cv);
        }
        struct timespec slice;
        deadline_after(&slice, POLL_SLICE_MS);
        pthread_cond_timedwait(&s->cv, &s->mu, &slice);
    }
    pthread_mutex_unlock(&s->mu);
    r->stream = NULL;
    stream_release(s);
    return rc;
}

int qfit_server_call(qfit_server *s, const char *method, const char *path, const char *body, size_t body_len,
                     const atomic_bool *cancel, unsigned *status, char **resp, size_t *resp_len,
                     char *err, size_t err_len)
{
    *resp = NULL;
    *resp_len = 0;
    *status = 0;
    qfit_http_req *r = calloc(1, sizeof *r);
    if (!r) { snprintf(err, err_len, "out of memory"); return -1; }
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    r->srv = s;
    r->method = method;
    r->thread = pthread_self();
    r->loopback = true;
    r->begun = true;
    r->call_cancel = cancel;
    snprintf(r->client, sizeof r->client, "in-process");
    if (!(r->raw_uri = strdup(path)) || (body_len && !(r->body = malloc(body_len + 1)))) {
        req_free(r);
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    if (body_len) {
        memcpy(r->body, body, body_len);
        r->body[body_len] = '\0';
        r->body_len = r->body_cap = body_len;
    }
    r->path = decode_path(path);
    r->openai = r->path && (!strncmp(r->path, "/v1/", 4) || !strcmp(r->path, "/v1"));
    if (admit(r)) {
        if (r->max_body != SIZE_MAX && body_len > r->max_body)
            qfit_http_respond_error(r, 413, "request body too large: over %zu bytes", r->max_body);
        else if (r->route->body && (r->route->body(r, NULL, 0, r->route->ctx) != 0 ||
                                    (body_len && r->route->body(r, body, body_len, r->route->ctx) != 0))) {
            if (!r->status) qfit_http_respond_error(r, 500, "the request body could not be taken");
        }
        if (!r->status) r->route->handler(r, r->route->ctx);
        if (!r->status) qfit_http_respond_error(r, 500, "handler gave no response");
    }
    int rc = 0;
    if (r->stream && collect_stream(r) != 0) rc = -1;
    if (!r->status) rc = -1;
    if (rc) snprintf(err, err_len, "%s %s: out of memory", method, path);
    else {
        *status = r->status;
        *resp = r->call_out ? r->call_out : strdup("");
        *resp_len = r->call_len;
        r->call_out = NULL;
        if (!*resp) { rc = -1; snprintf(err, err_len, "out of memory"); }
    }
    if (s->cfg.log) {
        char line[512];
        snprintf(line, sizeof line, "%s %.200s %u %.1fms in-process", method, r->path ? r->path : r->raw_uri,
                 r->status, ms_since(&r->t0));
        s->cfg.log(s->cfg.log_ctx, line);
    }
    req_free(r);
    return rc;
}
