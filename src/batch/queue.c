/* Batches in Redis: submit, status, results, cancel, and the result store shared
 * with the workers (contract and key layout: include/qfit/batch.h). */
#include "batch/batch_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct qfit_batch_client {
    rconn r;
    qfit_status status;   /* kind of the last failed call's error (qfit_batch_client_status) */
};

/* KEYS: out hash, batch hash, job stream, dead-letter stream.
 * ARGV: idx, line, group, entry id ('' = none), kind field, tokens, now ms, ttl s,
 *       batch id, custom_id, error, attempts. */
static const char STORE_LUA[] =
    "local new = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])\n"
    "if new == 1 then\n"
    "  redis.call('HINCRBY', KEYS[2], ARGV[5], 1)\n"
    "  if tonumber(ARGV[6]) > 0 then redis.call('HINCRBY', KEYS[2], 'tokens', ARGV[6]) end\n"
    "  if ARGV[5] == 'failed' then\n"
    "    redis.call('XADD', KEYS[4], 'MAXLEN', '~', '10000', '*', 'b', ARGV[9], 'i', ARGV[1], 'c', ARGV[10],\n"
    "               'error', ARGV[11], 'attempts', ARGV[12])\n"
    "  end\n"
    "  local m = redis.call('HMGET', KEYS[2], 'total', 'done', 'failed', 'cancelled', 'status')\n"
    "  if m[1] then\n"
    "    local fin = (tonumber(m[2]) or 0) + (tonumber(m[3]) or 0) + (tonumber(m[4]) or 0)\n"
    "    if fin >= tonumber(m[1]) then\n"
    "      local st = 'completed'\n"
    "      if m[5] == 'cancelling' then st = 'cancelled' end\n"
    "      redis.call('HSET', KEYS[2], 'status', st, 'finished_ms', ARGV[7])\n"
    "      local ttl = redis.call('HGET', KEYS[2], 'ttl_s') or ARGV[8]\n"
    "      redis.call('EXPIRE', KEYS[1], ttl)\n"
    "      redis.call('EXPIRE', KEYS[2], ttl)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if ARGV[4] ~= '' then\n"
    "  redis.call('XACK', KEYS[3], ARGV[3], ARGV[4])\n"
    "  redis.call('XDEL', KEYS[3], ARGV[4])\n"
    "end\n"
    "return new\n";

void batch_stream_key(const char *model, char *out, size_t cap) { snprintf(out, cap, "qfit:q:%s", model); }

int batch_store(rconn *r, const char *id, long long idx, const char *line, const char *stream, const char *entry,
                batch_kind kind, long long tokens, const char *custom_id, const char *error, long long attempts,
                bool *stored, char *err, size_t err_len)
{
    char out_key[64], meta_key[64], sidx[24], stok[24], snow[24], sttl[24], satt[24];
    snprintf(out_key, sizeof out_key, "qfit:batch:%s:out", id);
    snprintf(meta_key, sizeof meta_key, "qfit:batch:%s", id);
    snprintf(sidx, sizeof sidx, "%lld", idx);
    snprintf(stok, sizeof stok, "%lld", tokens);
    snprintf(snow, sizeof snow, "%lld", (long long)batch_now_ms());
    snprintf(sttl, sizeof sttl, "%d", QFIT_BATCH_DEFAULT_TTL_S);   /* a batch hash without ttl_s */
    snprintf(satt, sizeof satt, "%lld", attempts);
    const char *kinds[] = { "done", "failed", "cancelled" };
    const char *argv[] = { "EVAL", STORE_LUA, "4", out_key, meta_key, stream, BATCH_DEAD, sidx, line, BATCH_GROUP,
                           entry ? entry : "", kinds[kind], stok, snow, sttl, id, custom_id, error ? error : "", satt };
    redisReply *rep = rconn_cmd(r, (int)(sizeof argv / sizeof argv[0]), argv, NULL, err, err_len);
    if (!rep) return -1;
    int rc = 0;
    if (rep->type != REDIS_REPLY_INTEGER) {
        snprintf(err, err_len, "storing the result of %s line %lld: %s", id, idx + 1,
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
        rc = -1;
    } else if (stored) {
        *stored = rep->integer == 1;
    }
    freeReplyObject(rep);
    return rc;
}

char *batch_error_line(const char *id, long long idx, const char *custom_id, batch_kind kind, const char *msg)
{
    char rid[64];
    snprintf(rid, sizeof rid, "%s-%lld", id, idx);
    json_t *j = json_pack("{s:s,s:s,s:n,s:{s:s,s:s}}", "id", rid, "custom_id", custom_id, "response", "error",
                          "code", kind == BATCH_CANCELLED ? "batch_cancelled" : "job_failed", "message", msg);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

/* ---------------------------------------------------------------- connections */

qfit_batch_client *qfit_batch_connect(const char *url, char *err, size_t err_len)
{
    qfit_batch_client *c = calloc(1, sizeof *c);
    if (!c) { snprintf(err, err_len, "out of memory"); return NULL; }
    if (rconn_open(&c->r, url, NULL, err, err_len) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

void qfit_batch_close(qfit_batch_client *c)
{
    if (!c) return;
    rconn_close(&c->r);
    free(c);
}

/* A reply that is an error or not of the wanted type becomes err; NULL then. */
static redisReply *expect(redisReply *rep, int type, const char *what, char *err, size_t err_len)
{
    if (!rep || rep->type == type) return rep;
    snprintf(err, err_len, "%s: %s", what, rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply type");
    freeReplyObject(rep);
    return NULL;
}

/* ---------------------------------------------------------------- submit */

static int valid_id(const char *id, char *err, size_t err_len)
{
    size_t n = strlen(id);
    bool ok = n == QFIT_BATCH_ID_LEN && !strncmp(id, "batch_", 6);
    for (size_t i = 6; ok && i < n; i++) ok = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f');
    if (!ok) snprintf(err, err_len, "'%.64s' is not a batch id (batch_ and 16 hex digits)", id);
    return ok ? 0 : -1;
}

static int submit_impl(qfit_batch_client *c, const qfit_batch_input *in, long ttl_s, char *id,
                      char *err, size_t err_len)
{
    if (ttl_s < 0) { snprintf(err, err_len, "ttl %ld: must not be negative", ttl_s); c->status = QFIT_E_INVALID; return -1; }
    unsigned char rnd[8];
    if (RAND_bytes(rnd, sizeof rnd) != 1) { snprintf(err, err_len, "no random bytes for the batch id"); return -1; }
    snprintf(id, QFIT_BATCH_ID_LEN + 1, "batch_%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5], rnd[6], rnd[7]);
    /* the distinct models, comma-separated */
    size_t cap = 1, len = 0;
    for (size_t i = 0; i < in->n; i++) cap += strlen(in->jobs[i].model) + 1;
    char *models = malloc(cap);
    if (!models) { snprintf(err, err_len, "out of memory"); c->status = QFIT_E_NOMEM; return -1; }
    models[0] = '\0';
    int rc = -1;
    redisReply *rep;
    char key[512];
    for (size_t i = 0; i < in->n; i++) {
        const char *m = in->jobs[i].model;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) seen = !strcmp(in->jobs[j].model, m);
        if (seen) continue;
        len += (size_t)snprintf(models + len, cap - len, "%s%s", len ? "," : "", m);
        batch_stream_key(m, key, sizeof key);
        rep = rconn_cmdf(&c->r, err, err_len, "XGROUP CREATE %s " BATCH_GROUP " 0 MKSTREAM", key);
        if (!rep) goto out;
        bool bad = rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "BUSYGROUP", 9) != 0;
        if (bad) snprintf(err, err_len, "XGROUP CREATE %s: %s", key, rep->str);
        freeReplyObject(rep);
        if (bad) goto out;
        if (!(rep = expect(rconn_cmdf(&c->r, err, err_len, "SADD " BATCH_MODELS " %s", m), REDIS_REPLY_INTEGER,
                           "SADD", err, err_len)))
            goto out;
        freeReplyObject(rep);
    }
    char meta[64];
    snprintf(meta, sizeof meta, "qfit:batch:%s", id);
    if (!(rep = expect(rconn_cmdf(&c->r, err, err_len,
                                  "HSET %s total %lld done 0 failed 0 cancelled 0 tokens 0 status queued models %s "
                                  "created_ms %lld ttl_s %ld", meta, (long long)in->n, models,
                                  (long long)batch_now_ms(), ttl_s ? ttl_s : (long)QFIT_BATCH_DEFAULT_TTL_S),
                       REDIS_REPLY_INTEGER, "HSET", err, err_len)))
        goto out;
    freeReplyObject(rep);
    /* a job re-sent after a lost reply is queued twice: it then runs twice and is stored once */
    for (size_t i = 0; i < in->n; i++) {
        const qfit_batch_job *j = &in->jobs[i];
        batch_stream_key(j->model, key, sizeof key);
        if (!(rep = expect(rconn_cmdf(&c->r, err, err_len, "XADD %s * b %s i %lld c %s u %s d %s", key, id,
                                      (long long)i, j->custom_id, j->url, j->body),
                           REDIS_REPLY_STRING, "XADD", err, err_len))) {
            size_t n = strlen(err);
            snprintf(err + n, err_len - n, " (batch %s: %zu of %zu jobs were queued; cancel it)", id, i, in->n);
            goto out;
        }
        freeReplyObject(rep);
    }
    rc = 0;
out:
    free(models);
    return rc;
}

/* ---------------------------------------------------------------- status */

static int64_t field_int(const redisReply *rep, const char *name)
{
    for (size_t i = 0; i + 1 < rep->elements; i += 2)
        if (!strcmp(rep->element[i]->str, name)) return strtoll(rep->element[i + 1]->str, NULL, 10);
    return 0;
}

static const char *field_str(const redisReply *rep, const char *name)
{
    for (size_t i = 0; i + 1 < rep->elements; i += 2)
        if (!strcmp(rep->element[i]->str, name)) return rep->element[i + 1]->str;
    return NULL;
}

/* The batch's hash (HGETALL); NULL + err when it does not exist. */
static redisReply *get_meta(qfit_batch_client *c, const char *id, char *err, size_t err_len)
{
    if (valid_id(id, err, err_len) != 0) { c->status = QFIT_E_INVALID; return NULL; }
    redisReply *rep = expect(rconn_cmdf(&c->r, err, err_len, "HGETALL qfit:batch:%s", id), REDIS_REPLY_ARRAY,
                             "HGETALL", err, err_len);
    if (rep && !rep->elements) {
        snprintf(err, err_len, "no batch %s (unknown id, or its results expired)", id);
        c->status = QFIT_E_NOT_FOUND;
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* Count the live workers and the jobs of batch id they are running (their heartbeats). */
static int scan_workers(qfit_batch_client *c, const char *id, qfit_batch_status *st, char *err, size_t err_len)
{
    char cursor[32] = "0";
    do {
        redisReply *rep = expect(rconn_cmdf(&c->r, err, err_len, "SCAN %s MATCH qfit:worker:* COUNT 200", cursor),
                                 REDIS_REPLY_ARRAY, "SCAN", err, err_len);
        if (!rep) return -1;
        snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
        const redisReply *keys = rep->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            redisReply *v = rconn_cmdf(&c->r, err, err_len, "GET %s", keys->element[i]->str);
            if (!v) { freeReplyObject(rep); return -1; }
            json_t *j = v->type == REDIS_REPLY_STRING ? json_loads(v->str, 0, NULL) : NULL;
            if (j) {
                st->workers++;
                size_t k;
                json_t *job;
                json_array_foreach(json_object_get(j, "jobs"), k, job)
                    if (json_is_string(job) && !strncmp(json_string_value(job), id, strlen(id))) st->running++;
            }
            json_decref(j);
            freeReplyObject(v);
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

static int get_status_impl(qfit_batch_client *c, const char *id, qfit_batch_status *st, char *err, size_t err_len)
{
    memset(st, 0, sizeof *st);
    redisReply *rep = get_meta(c, id, err, err_len);
    if (!rep) return -1;
    snprintf(st->status, sizeof st->status, "%s", field_str(rep, "status") ? field_str(rep, "status") : "?");
    snprintf(st->models, sizeof st->models, "%s", field_str(rep, "models") ? field_str(rep, "models") : "");
    st->total = field_int(rep, "total");
    st->done = field_int(rep, "done");
    st->failed = field_int(rep, "failed");
    st->cancelled = field_int(rep, "cancelled");
    st->created_ms = field_int(rep, "created_ms");
    st->started_ms = field_int(rep, "started_ms");
    st->finished_ms = field_int(rep, "finished_ms");
    st->tokens = field_int(rep, "tokens");
    freeReplyObject(rep);
    return scan_workers(c, id, st, err, err_len);
}

/* ---------------------------------------------------------------- results */

#define RESULTS_CHUNK 256

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_results(qfit_batch_client *c, const char *id, int64_t total, int fd, char *err, size_t err_len)
{
    for (int64_t base = 0; base < total; base += RESULTS_CHUNK) {
        int64_t n = total - base < RESULTS_CHUNK ? total - base : RESULTS_CHUNK;
        const char *argv[2 + RESULTS_CHUNK];
        char key[64], idx[RESULTS_CHUNK][24];
        snprintf(key, sizeof key, "qfit:batch:%s:out", id);
        argv[0] = "HMGET";
        argv[1] = key;
        for (int64_t i = 0; i < n; i++) {
            snprintf(idx[i], sizeof idx[i], "%lld", (long long)(base + i));
            argv[2 + i] = idx[i];
        }
        redisReply *rep = expect(rconn_cmd(&c->r, (int)(2 + n), argv, NULL, err, err_len), REDIS_REPLY_ARRAY,
                                 "HMGET", err, err_len);
        if (!rep) return -1;
        for (int64_t i = 0; i < n; i++) {
            const redisReply *e = rep->element[i];
            if (e->type != REDIS_REPLY_STRING) {
                snprintf(err, err_len, "batch %s: the result of line %lld is missing (expired?)", id,
                         (long long)(base + i + 1));
                freeReplyObject(rep);
                return -1;
            }
            if (write_all(fd, e->str, e->len) != 0 || write_all(fd, "\n", 1) != 0) {
                snprintf(err, err_len, "writing the results: %s", strerror(errno));
                freeReplyObject(rep);
                return -1;
            }
        }
        freeReplyObject(rep);
    }
    return 0;
}

int qfit_batch_parse_ttl(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    long unit = !*end ? 1 : !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60 : !strcmp(end, "h") ? 3600
              : !strcmp(end, "d") ? 86400 : 0;
    if (errno || end == s || *s == '-' || !unit || v <= 0 || v > 365L * 86400 / unit) return -1;
    *out = v * unit;
    return 0;
}

/* The number of jobs of a finished batch; -1 (message) when it is unknown or unfinished. */
static int64_t finished_total(qfit_batch_client *c, const char *id, char *err, size_t err_len)
{
    redisReply *rep = get_meta(c, id, err, err_len);
    if (!rep) return -1;
    int64_t total = field_int(rep, "total");
    int64_t fin = field_int(rep, "done") + field_int(rep, "failed") + field_int(rep, "cancelled");
    freeReplyObject(rep);
    if (fin < total) {
        snprintf(err, err_len, "batch %s is not finished: %lld of %lld jobs have a result", id, (long long)fin,
                 (long long)total);
        c->status = QFIT_E_CONFLICT;
        return -1;
    }
    return total;
}

static int results_fd_impl(qfit_batch_client *c, const char *id, int fd, char *err, size_t err_len)
{
    const int64_t total = finished_total(c, id, err, err_len);
    return total < 0 ? -1 : write_results(c, id, total, fd, err, err_len);
}

json_t *qfit_batch_status_json(const char *id, const qfit_batch_status *st)
{
    return json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i}", "id", id, "status", st->status,
                     "models", st->models, "total", (json_int_t)st->total, "done", (json_int_t)st->done,
                     "failed", (json_int_t)st->failed, "cancelled", (json_int_t)st->cancelled,
                     "running", (json_int_t)st->running, "created_ms", (json_int_t)st->created_ms,
                     "started_ms", (json_int_t)st->started_ms, "finished_ms", (json_int_t)st->finished_ms,
                     "tokens", (json_int_t)st->tokens, "workers", st->workers);
}

static int results_impl(qfit_batch_client *c, const char *id, const char *out_path, char *err, size_t err_len)
{
    const int64_t total = finished_total(c, id, err, err_len);
    if (total < 0) return -1;
    if (!out_path) return write_results(c, id, total, STDOUT_FILENO, err, err_len);
    char *dup = strdup(out_path), tmp[4200];
    if (!dup) { snprintf(err, err_len, "out of memory"); c->status = QFIT_E_NOMEM; return -1; }
    const char *dir = dirname(dup);
    snprintf(tmp, sizeof tmp, "%s/.qfit-tmp-XXXXXX", dir);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, err_len, "cannot create a file in '%s': %s", dir, strerror(errno));
        free(dup);
        return -1;
    }
    int rc = write_results(c, id, total, fd, err, err_len);
    if (!rc && (fsync(fd) != 0 || fchmod(fd, 0644) != 0)) {
        snprintf(err, err_len, "fsync '%s': %s", tmp, strerror(errno));
        rc = -1;
    }
    if (close(fd) != 0 && !rc) { snprintf(err, err_len, "close '%s': %s", tmp, strerror(errno)); rc = -1; }
    if (!rc && rename(tmp, out_path) != 0) {
        snprintf(err, err_len, "rename to '%s': %s", out_path, strerror(errno));
        rc = -1;
    }
    if (rc) unlink(tmp);
    else {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY);
        if (dfd < 0 || fsync(dfd) != 0) {
            snprintf(err, err_len, "fsync of the directory '%s': %s", dir, strerror(errno));
            rc = -1;
        }
        if (dfd >= 0) close(dfd);
    }
    free(dup);
    return rc;
}

/* ---------------------------------------------------------------- cancel */

/* The jobs of batch id not yet handed to a worker in stream key get a cancelled
 * line (the ones already delivered are seen as cancelled by their worker). */
static int cancel_stream(qfit_batch_client *c, const char *id, const char *key, char *err, size_t err_len)
{
    redisReply *g = expect(rconn_cmdf(&c->r, err, err_len, "XINFO GROUPS %s", key), REDIS_REPLY_ARRAY,
                           "XINFO GROUPS", err, err_len);
    if (!g) return -1;
    char start[64] = "-";
    for (size_t i = 0; i < g->elements; i++) {
        const redisReply *grp = g->element[i];
        if (grp->type != REDIS_REPLY_ARRAY) continue;
        const char *name = field_str(grp, "name"), *last = field_str(grp, "last-delivered-id");
        if (name && last && !strcmp(name, BATCH_GROUP)) snprintf(start, sizeof start, "(%s", last);
    }
    freeReplyObject(g);
    for (;;) {
        redisReply *rep = expect(rconn_cmdf(&c->r, err, err_len, "XRANGE %s %s + COUNT 500", key, start),
                                 REDIS_REPLY_ARRAY, "XRANGE", err, err_len);
        if (!rep) return -1;
        size_t n = rep->elements;
        for (size_t i = 0; i < n; i++) {
            const redisReply *e = rep->element[i];
            snprintf(start, sizeof start, "(%s", e->element[0]->str);
            const redisReply *f = e->element[1];
            const char *b = field_str(f, "b"), *idx = field_str(f, "i"), *cid = field_str(f, "c");
            if (!b || strcmp(b, id) != 0 || !idx || !cid) continue;
            long long ix = strtoll(idx, NULL, 10);
            char *line = batch_error_line(id, ix, cid, BATCH_CANCELLED, "the batch was cancelled before this "
                                          "request ran");
            int rc = line ? batch_store(&c->r, id, ix, line, key, e->element[0]->str, BATCH_CANCELLED, 0, cid, NULL,
                                        0, NULL, err, err_len)
                          : (snprintf(err, err_len, "out of memory"), -1);
            free(line);
            if (rc) { freeReplyObject(rep); return -1; }
        }
        freeReplyObject(rep);
        if (n < 500) return 0;
    }
}

static int cancel_impl(qfit_batch_client *c, const char *id, char *err, size_t err_len)
{
    redisReply *rep = get_meta(c, id, err, err_len);
    if (!rep) return -1;
    const char *st = field_str(rep, "status");
    if (st && (!strcmp(st, "completed") || !strcmp(st, "cancelled"))) {
        snprintf(err, err_len, "batch %s is already %s", id, st);
        c->status = QFIT_E_CONFLICT;
        freeReplyObject(rep);
        return -1;
    }
    char *models = strdup(field_str(rep, "models") ? field_str(rep, "models") : "");
    freeReplyObject(rep);
    if (!models) { snprintf(err, err_len, "out of memory"); c->status = QFIT_E_NOMEM; return -1; }
    int rc = -1;
    redisReply *h = expect(rconn_cmdf(&c->r, err, err_len, "HSET qfit:batch:%s status cancelling", id),
                           REDIS_REPLY_INTEGER, "HSET", err, err_len);
    if (!h) goto out;
    freeReplyObject(h);
    char *save = NULL;
    for (char *m = strtok_r(models, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        char key[512];
        batch_stream_key(m, key, sizeof key);
        if (cancel_stream(c, id, key, err, err_len) != 0) goto out;
    }
    rc = 0;
out:
    free(models);
    return rc;
}

/* ---------------------------------------------------------------- the calls, with their kind of error */

int qfit_batch_submit(qfit_batch_client *c, const qfit_batch_input *in, long ttl_s, char *id,
                      char *err, size_t err_len)
{
    c->status = QFIT_OK;
    const int rc = submit_impl(c, in, ttl_s, id, err, err_len);
    if (rc != 0 && c->status == QFIT_OK) c->status = QFIT_E_IO;   /* Redis, or a file */
    return rc;
}

int qfit_batch_get_status(qfit_batch_client *c, const char *id, qfit_batch_status *st, char *err, size_t err_len)
{
    c->status = QFIT_OK;
    const int rc = get_status_impl(c, id, st, err, err_len);
    if (rc != 0 && c->status == QFIT_OK) c->status = QFIT_E_IO;   /* Redis, or a file */
    return rc;
}

int qfit_batch_results_fd(qfit_batch_client *c, const char *id, int fd, char *err, size_t err_len)
{
    c->status = QFIT_OK;
    const int rc = results_fd_impl(c, id, fd, err, err_len);
    if (rc != 0 && c->status == QFIT_OK) c->status = QFIT_E_IO;   /* Redis, or a file */
    return rc;
}

int qfit_batch_results(qfit_batch_client *c, const char *id, const char *out_path, char *err, size_t err_len)
{
    c->status = QFIT_OK;
    const int rc = results_impl(c, id, out_path, err, err_len);
    if (rc != 0 && c->status == QFIT_OK) c->status = QFIT_E_IO;   /* Redis, or a file */
    return rc;
}

int qfit_batch_cancel(qfit_batch_client *c, const char *id, char *err, size_t err_len)
{
    c->status = QFIT_OK;
    const int rc = cancel_impl(c, id, err, err_len);
    if (rc != 0 && c->status == QFIT_OK) c->status = QFIT_E_IO;   /* Redis, or a file */
    return rc;
}

qfit_status qfit_batch_client_status(const qfit_batch_client *c) { return c->status; }
