/* Redis URLs and connections that survive a Redis restart (contract: batch.h,
 * "URLs"; internal API: batch_int.h). hiredis 0.14 (Debian) is synchronous and
 * has no TLS: rediss:// is refused here rather than sent in the clear. */
#include "batch/batch_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_MS  100
#define BACKOFF_MAX_MS  5000
#define RETRY_LIMIT_MS  30000   /* without a stop flag (CLI calls) */

int64_t batch_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {}
}

const char *qfit_batch_default_url(const char *arg)
{
    if (arg) return arg;
    const char *e = getenv("QFIT_REDIS_URL");
    return e && *e ? e : QFIT_BATCH_DEFAULT_URL;
}

static int hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decode s[0..n) into out[cap]; -1 on a bad escape, %00 or overflow. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int a = hexv(s[i + 1]), b = hexv(s[i + 2]);
            if (a < 0 || b < 0 || (a == 0 && b == 0)) return -1;
            c = (char)(a * 16 + b);
            i += 2;
        }
        if (o + 1 >= cap) return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static int parse_int(const char *s, size_t n, int lo, int hi, int *out)
{
    if (!n || n > 9) return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int qfit_redis_url_parse(const char *url, qfit_redis_url *u, char *err, size_t err_len)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (!strncmp(url, "rediss://", 9)) {
        snprintf(err, err_len, "'rediss://' (TLS) is not supported: this qfit is built with a hiredis without "
                 "TLS; use a TLS tunnel (stunnel, ssh -L) to a redis:// address on this machine");
        return -1;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, err_len, "Redis URL '%.200s': must start with redis:// (redis://[user:password@]host[:port][/db])",
                 url);
        return -1;
    }
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    const char *slash = strchr(p, '/');
    if (at && slash && slash < at) at = NULL;   /* an '@' in the path is not credentials */
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t ul = colon ? (size_t)(colon - p) : (size_t)(at - p);
        if (colon) {
            if (pct_decode(p, ul, u->user, sizeof u->user) != 0 ||
                pct_decode(colon + 1, (size_t)(at - colon - 1), u->password, sizeof u->password) != 0) {
                snprintf(err, err_len, "Redis URL: user or password too long or with a bad %%-escape");
                return -1;
            }
        } else if (pct_decode(p, ul, u->password, sizeof u->password) != 0) {   /* redis://secret@host */
            snprintf(err, err_len, "Redis URL: password too long or with a bad %%-escape");
            return -1;
        }
        p = at + 1;
    }
    const char *end = strchr(p, '/');
    size_t hl = end ? (size_t)(end - p) : strlen(p);
    const char *hs = p, *port = NULL;
    size_t hostlen;
    if (hl && *p == '[') {   /* [::1]:6379 */
        const char *rb = memchr(p, ']', hl);
        if (!rb) { snprintf(err, err_len, "Redis URL: '[' without ']' in the host"); return -1; }
        hs = p + 1;
        hostlen = (size_t)(rb - hs);
        if (rb + 1 < p + hl) {
            if (rb[1] != ':') { snprintf(err, err_len, "Redis URL: junk after ']'"); return -1; }
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', hl);
        hostlen = colon ? (size_t)(colon - p) : hl;
        if (colon) port = colon + 1;
    }
    if (!hostlen || hostlen >= sizeof u->host) {
        snprintf(err, err_len, "Redis URL '%.200s': %s host", url, hostlen ? "too long a" : "missing");
        return -1;
    }
    memcpy(u->host, hs, hostlen);
    u->host[hostlen] = '\0';
    for (size_t i = 0; i < hostlen; i++)
        if ((unsigned char)u->host[i] <= ' ' || u->host[i] == '@' || u->host[i] == '?') {
            snprintf(err, err_len, "Redis URL: bad character in host '%.64s'", u->host);
            return -1;
        }
    if (port && parse_int(port, (size_t)(p + hl - port), 1, 65535, &u->port) != 0) {
        snprintf(err, err_len, "Redis URL '%.200s': port must be 1-65535", url);
        return -1;
    }
    if (end && end[1] && parse_int(end + 1, strlen(end + 1), 0, 1 << 20, &u->db) != 0) {
        snprintf(err, err_len, "Redis URL '%.200s': the database after '/' must be a number (no query options)", url);
        return -1;
    }
    return 0;
}

static void logf_(rconn *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(rconn *r, const char *fmt, ...)
{
    if (!r->log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->log(r->log_ctx, line);
}

/* One connection attempt with AUTH and SELECT; 0, or -1 + err. fatal: an error
 * retrying cannot fix (wrong password). */
static int connect_once(rconn *r, bool *fatal, char *err, size_t err_len)
{
    *fatal = false;
    struct timeval tv = { r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000 };
    redisContext *c = redisConnectWithTimeout(r->url.host, r->url.port, tv);
    if (!c || c->err) {
        snprintf(err, err_len, "cannot connect to Redis at %s:%d: %s", r->url.host, r->url.port,
                 c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return -1;
    }
    redisSetTimeout(c, tv);
    redisReply *rep = NULL;
    if (r->url.password[0]) {
        rep = r->url.user[0] ? redisCommand(c, "AUTH %s %s", r->url.user, r->url.password)
                             : redisCommand(c, "AUTH %s", r->url.password);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            snprintf(err, err_len, "Redis AUTH at %s:%d failed: %s", r->url.host, r->url.port,
                     rep ? rep->str : c->errstr);
            *fatal = rep && strncmp(rep->str, "LOADING", 7) != 0;
            if (rep) freeReplyObject(rep);
            redisFree(c);
            return -1;
        }
        freeReplyObject(rep);
    }
    if (r->url.db) {
        rep = redisCommand(c, "SELECT %d", r->url.db);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            snprintf(err, err_len, "Redis SELECT %d failed: %s", r->url.db, rep ? rep->str : c->errstr);
            *fatal = rep && strncmp(rep->str, "LOADING", 7) != 0;
            if (rep) freeReplyObject(rep);
            redisFree(c);
            return -1;
        }
        freeReplyObject(rep);
    }
    r->c = c;
    return 0;
}

static bool stopping(const rconn *r) { return r->stop && atomic_load(r->stop) >= 2; }

/* Connect, retrying with backoff; -1 + err when giving up. */
static int reconnect(rconn *r, char *err, size_t err_len)
{
    if (r->c) { redisFree(r->c); r->c = NULL; }
    int wait = BACKOFF_MIN_MS, waited = 0;
    for (int attempt = 0;; attempt++) {
        bool fatal;
        if (connect_once(r, &fatal, err, err_len) == 0) {
            if (attempt || r->lost) logf_(r, "reconnected to Redis at %s:%d", r->url.host, r->url.port);
            r->lost = false;
            return 0;
        }
        if (fatal || stopping(r) || (!r->stop && waited >= RETRY_LIMIT_MS)) return -1;
        if (attempt == 0) logf_(r, "%s; retrying", err);
        sleep_ms(wait);
        waited += wait;
        wait = wait * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : wait * 2;
    }
}

int rconn_open(rconn *r, const char *url, const atomic_int *stop, char *err, size_t err_len)
{
    r->c = NULL;
    r->stop = stop;
    if (!r->timeout_ms) r->timeout_ms = 10000;
    if (qfit_redis_url_parse(url, &r->url, err, err_len) != 0) return -1;
    return reconnect(r, err, err_len);
}

void rconn_close(rconn *r)
{
    if (r->c) redisFree(r->c);
    r->c = NULL;
}

/* Send a formatted command and read its reply, reconnecting and re-sending while
 * the connection fails or Redis is loading. */
static redisReply *send_formatted(rconn *r, const char *cmd, size_t len, char *err, size_t err_len)
{
    int wait = BACKOFF_MIN_MS, waited = 0;
    for (;;) {
        if (!r->c && reconnect(r, err, err_len) != 0) return NULL;
        redisReply *rep = NULL;
        if (redisAppendFormattedCommand(r->c, cmd, len) == REDIS_OK) {
            void *p = NULL;
            if (redisGetReply(r->c, &p) == REDIS_OK) rep = p;
        }
        if (rep && !(rep->type == REDIS_REPLY_ERROR && !strncmp(rep->str, "LOADING", 7))) return rep;
        if (rep) {
            snprintf(err, err_len, "Redis: %s", rep->str);
            freeReplyObject(rep);
        } else {
            snprintf(err, err_len, "Redis connection to %s:%d lost: %s", r->url.host, r->url.port, r->c->errstr);
            logf_(r, "%s", err);
            redisFree(r->c);
            r->c = NULL;
            r->lost = true;
        }
        if (stopping(r) || (!r->stop && waited >= RETRY_LIMIT_MS)) return NULL;
        sleep_ms(wait);
        waited += wait;
        wait = wait * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : wait * 2;
    }
}

redisReply *rconn_cmd(rconn *r, int argc, const char **argv, const size_t *lens, char *err, size_t err_len)
{
    char *cmd = NULL;
    long long len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0) { snprintf(err, err_len, "out of memory"); return NULL; }
    redisReply *rep = send_formatted(r, cmd, (size_t)len, err, err_len);
    redisFreeCommand(cmd);
    return rep;
}

redisReply *rconn_cmdf(rconn *r, char *err, size_t err_len, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0) { snprintf(err, err_len, "out of memory"); return NULL; }
    redisReply *rep = send_formatted(r, cmd, (size_t)len, err, err_len);
    redisFreeCommand(cmd);
    return rep;
}
