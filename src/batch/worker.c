/* qfit worker's queue side (contract: include/qfit/batch.h, "workers").
 *
 * Each job thread has its own Redis connection (hiredis contexts are not
 * thread-safe) and its own consumer name in the group "workers", and takes one job
 * at a time: XAUTOCLAIM of an entry idle past the visibility timeout first (at most
 * once a second, or whenever nothing new came), else XREADGROUP ... COUNT 1 on the
 * models' streams in turn. So a worker never holds a job it is not running,
 * and the ones it runs are listed in its heartbeat. The calling thread keeps the
 * heartbeat key alive (SET PX) and passes a stop request on to the job threads.
 *
 * A job's life: delivery count over max_attempts -> failed (a job that kills its
 * workers); its batch gone -> dropped; batch cancelling -> a cancelled line;
 * otherwise run: an answer below 500 is the result; no answer or 5xx -> failed
 * when this was the last attempt, else handed back at once (XCLAIM IDLE: claimable
 * now, without waiting for the visibility timeout).
 */
#include "batch/batch_int.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HEARTBEAT_MS   1000
#define HEARTBEAT_TTL_MS 5000
#define CLAIM_EVERY_MS 1000
#define MODELS_EVERY_MS 3000
#define MAX_STREAMS    64

typedef struct worker worker;

typedef struct {
    worker     *w;
    int         index;
    pthread_t   thread;
    rconn       r;
    char        consumer[160];
    char        current[64];        /* "<batch>-<idx>" while running, under w->mu */
    char        claim_cursor[MAX_STREAMS][48];
    char        streams[MAX_STREAMS][300];
    size_t      n_streams, next_stream;
    int64_t     last_claim_ms, last_models_ms;
    atomic_int  rc;
    atomic_bool ended;              /* job_main returned: the join does not wait (a
                                     * portable pthread_tryjoin_np) */
    char        err[512];
} job_thread;

struct worker {
    const qfit_batch_worker_config *cfg;
    const atomic_int *stop;
    atomic_bool       cancel;       /* stop >= 2: running jobs are cancelled */
    char              id[128];
    pthread_mutex_t   mu;
    long long         n_done, n_failed;
    job_thread       *threads;
};

static void wlog(worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wlog(worker *w, const char *fmt, ...)
{
    if (!w->cfg->log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    w->cfg->log(w->cfg->log_ctx, line);
}

static int stop_level(const worker *w) { return atomic_load(w->stop); }

/* ---------------------------------------------------------------- streams */

/* XGROUP CREATE ... MKSTREAM (an existing group is fine). */
static int ensure_group(rconn *r, const char *key, char *err, size_t err_len)
{
    redisReply *rep = rconn_cmdf(r, err, err_len, "XGROUP CREATE %s " BATCH_GROUP " 0 MKSTREAM", key);
    if (!rep) return -1;
    int rc = 0;
    if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "BUSYGROUP", 9) != 0) {
        snprintf(err, err_len, "XGROUP CREATE %s: %s", key, rep->str);
        rc = -1;
    }
    freeReplyObject(rep);
    return rc;
}

/* The streams this thread reads: the configured models, or every model in
 * qfit:models that has_model accepts (this machine's store; re-read every
 * MODELS_EVERY_MS, so a model pulled meanwhile is picked up). */
static int refresh_streams(job_thread *t, char *err, size_t err_len)
{
    const qfit_batch_worker_config *cfg = t->w->cfg;
    int64_t now = batch_now_ms();
    if (cfg->n_models ? t->n_streams > 0 : t->last_models_ms && now - t->last_models_ms < MODELS_EVERY_MS)
        return 0;
    t->last_models_ms = now;
    size_t n = 0;
    if (cfg->n_models) {
        for (size_t i = 0; i < cfg->n_models && n < MAX_STREAMS; i++)
            batch_stream_key(cfg->models[i], t->streams[n++], sizeof t->streams[0]);
    } else {
        redisReply *rep = rconn_cmdf(&t->r, err, err_len, "SMEMBERS " BATCH_MODELS);
        if (!rep) return -1;
        for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements && n < MAX_STREAMS; i++)
            if (!cfg->has_model || cfg->has_model(cfg->has_model_ctx, rep->element[i]->str))
                batch_stream_key(rep->element[i]->str, t->streams[n++], sizeof t->streams[0]);
        freeReplyObject(rep);
    }
    for (size_t i = 0; i < MAX_STREAMS; i++)   /* the list may have changed: claims scan from the start */
        snprintf(t->claim_cursor[i], sizeof t->claim_cursor[i], "0-0");
    t->n_streams = n;
    for (size_t i = 0; i < n; i++)
        if (ensure_group(&t->r, t->streams[i], err, err_len) != 0) return -1;
    return 0;
}

/* A job taken from a stream. */
typedef struct {
    const char *stream;
    char        entry[48];
    const char *b, *i, *c, *u, *d;
    size_t      d_len;
    long long   deliveries;
} job;

static const char *field(const redisReply *f, const char *name, size_t *len)
{
    for (size_t k = 0; f && f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2)
        if (f->element[k]->type == REDIS_REPLY_STRING && !strcmp(f->element[k]->str, name)) {
            if (len) *len = f->element[k + 1]->len;
            return f->element[k + 1]->str;
        }
    return NULL;
}

/* Entry e ([id, [fields]]) into j; false when it has no fields (deleted meanwhile). */
static bool take_entry(const redisReply *e, const char *stream, job *j)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[1]->type != REDIS_REPLY_ARRAY) return false;
    memset(j, 0, sizeof *j);
    j->stream = stream;
    snprintf(j->entry, sizeof j->entry, "%s", e->element[0]->str);
    const redisReply *f = e->element[1];
    j->b = field(f, "b", NULL);
    j->i = field(f, "i", NULL);
    j->c = field(f, "c", NULL);
    j->u = field(f, "u", NULL);
    j->d = field(f, "d", &j->d_len);
    j->deliveries = 1;
    return true;
}

/* How many times the group has delivered entry (XPENDING); 1 if unknown. */
static long long deliveries(job_thread *t, const char *stream, const char *entry)
{
    char err[256];
    redisReply *rep = rconn_cmdf(&t->r, err, sizeof err, "XPENDING %s " BATCH_GROUP " %s %s 1", stream, entry, entry);
    long long n = 1;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 && rep->element[0]->type == REDIS_REPLY_ARRAY &&
        rep->element[0]->elements >= 4)
        n = rep->element[0]->element[3]->integer;
    if (rep) freeReplyObject(rep);
    return n;
}

/* ---------------------------------------------------------------- one job */

/* The usage of an answer: generated tokens (OpenAI usage.completion_tokens or
 * Ollama eval_count). */
static long long gen_tokens(const json_t *body)
{
    json_t *u = json_object_get(body, "usage");
    json_t *n = u ? json_object_get(u, "completion_tokens") : json_object_get(body, "eval_count");
    return json_is_integer(n) ? (long long)json_integer_value(n) : 0;
}

/* The output line of an answer: the body embedded as it came when it is JSON (byte
 * for byte what the server sends), else as a string. */
static char *answer_line(const char *id, long long idx, const char *custom_id, unsigned status, const char *resp,
                         size_t resp_len, long long *tokens)
{
    char rid[64], head[128];
    snprintf(rid, sizeof rid, "%s-%lld", id, idx);
    json_t *body = json_loadb(resp, resp_len, JSON_DECODE_ANY, NULL);
    *tokens = body ? gen_tokens(body) : 0;
    json_decref(body);
    json_t *cid = json_string(custom_id), *raw = body ? NULL : json_stringn(resp, resp_len);
    char *cid_s = cid ? json_dumps(cid, JSON_ENCODE_ANY) : NULL;
    char *raw_s = raw ? json_dumps(raw, JSON_ENCODE_ANY) : NULL;
    json_decref(cid);
    json_decref(raw);
    char *line = NULL;
    const char *b = body ? resp : raw_s;
    size_t blen = body ? resp_len : raw_s ? strlen(raw_s) : 0;
    if (cid_s && b) {
        snprintf(head, sizeof head, ",\"response\":{\"status_code\":%u,\"request_id\":\"%s\",\"body\":", status, rid);
        size_t n = strlen(rid) + strlen(cid_s) + strlen(head) + blen + 64;
        if ((line = malloc(n)))
            snprintf(line, n, "{\"id\":\"%s\",\"custom_id\":%s%s%.*s},\"error\":null}", rid, cid_s, head, (int)blen, b);
    }
    free(cid_s);
    free(raw_s);
    return line;
}

/* The body of job j to run, with "stream": false (a batch answer is one body),
 * compact, malloc'd; NULL with why in msg when the entry is not a job qfit batch
 * submit would queue: only the batch endpoints, only the model of its stream (the
 * queue is shared: anyone who can write to it must not reach other routes). */
static char *job_body(const job *j, char *msg, size_t cap)
{
    const char *model = j->stream + strlen("qfit:q:");
    if (!qfit_batch_url_allowed(j->u)) {
        snprintf(msg, cap, "url '%.64s' is not a batch endpoint", j->u);
        return NULL;
    }
    json_t *b = json_loadb(j->d, j->d_len, 0, NULL);
    const char *bm = json_string_value(json_object_get(b, "model"));
    char *s = NULL;
    if (!json_is_object(b)) snprintf(msg, cap, "the queued body is not a JSON object");
    else if (!bm || strcmp(bm, model) != 0) snprintf(msg, cap, "body.model is not '%.64s', the model of its queue", model);
    else if (json_object_set_new(b, "stream", json_false()) != 0 || !(s = json_dumps(b, JSON_COMPACT)))
        snprintf(msg, cap, "out of memory");
    json_decref(b);
    return s;
}

/* "queued"/"running"/...: the batch's status, after marking it started; NULL when
 * the batch no longer exists. malloc'd. */
static const char START_LUA[] =
    "local s = redis.call('HGET', KEYS[1], 'status')\n"
    "if not s then return false end\n"
    "if s == 'queued' then redis.call('HSET', KEYS[1], 'status', 'running') end\n"
    "redis.call('HSETNX', KEYS[1], 'started_ms', ARGV[1])\n"
    "return s\n";

static int start_job(job_thread *t, const char *id, char *status, size_t cap, char *err, size_t err_len)
{
    char key[64], now[24];
    snprintf(key, sizeof key, "qfit:batch:%s", id);
    snprintf(now, sizeof now, "%lld", (long long)batch_now_ms());
    const char *argv[] = { "EVAL", START_LUA, "1", key, now };
    redisReply *rep = rconn_cmd(&t->r, 5, argv, NULL, err, err_len);
    if (!rep) return -1;
    int rc = 0;
    status[0] = '\0';
    if (rep->type == REDIS_REPLY_STRING) snprintf(status, cap, "%s", rep->str);
    else if (rep->type == REDIS_REPLY_ERROR) { snprintf(err, err_len, "%s", rep->str); rc = -1; }
    freeReplyObject(rep);
    return rc;
}

/* Hand a job back: claimable at once by any consumer (idle time set past the
 * visibility timeout; JUSTID keeps the delivery count). */
static void release(job_thread *t, const job *j)
{
    char err[256];
    redisReply *rep = rconn_cmdf(&t->r, err, sizeof err, "XCLAIM %s " BATCH_GROUP " %s 0 %s IDLE %d JUSTID",
                                 j->stream, t->consumer, j->entry, t->w->cfg->visibility_ms + 1);
    if (rep) freeReplyObject(rep);
}

static int fail_job(job_thread *t, const job *j, long long idx, const char *msg)
{
    worker *w = t->w;
    char *line = batch_error_line(j->b, idx, j->c, BATCH_FAILED, msg);
    if (!line) { snprintf(t->err, sizeof t->err, "out of memory"); return -1; }
    bool stored = false;
    int rc = batch_store(&t->r, j->b, idx, line, j->stream, j->entry, BATCH_FAILED, 0, j->c, msg, j->deliveries,
                         &stored, t->err, sizeof t->err);
    free(line);
    if (!rc && stored) {
        wlog(w, "%s line %lld (%s): failed after %lld attempt%s: %s", j->b, idx + 1, j->c, j->deliveries,
             j->deliveries == 1 ? "" : "s", msg);
        pthread_mutex_lock(&w->mu);
        w->n_failed++;
        pthread_mutex_unlock(&w->mu);
    }
    return rc;
}

/* Drop an entry that cannot be a job (fields missing, batch gone). */
static int drop(job_thread *t, const job *j)
{
    redisReply *rep = rconn_cmdf(&t->r, t->err, sizeof t->err, "XACK %s " BATCH_GROUP " %s", j->stream, j->entry);
    if (!rep) return -1;
    freeReplyObject(rep);
    if (!(rep = rconn_cmdf(&t->r, t->err, sizeof t->err, "XDEL %s %s", j->stream, j->entry))) return -1;
    freeReplyObject(rep);
    return 0;
}

/* Run job j to its stored result, failure or hand-back; -1 only when Redis is gone
 * for good (the job stays pending and is reclaimed later). */
static int process(job_thread *t, job *j)
{
    worker *w = t->w;
    const qfit_batch_worker_config *cfg = w->cfg;
    if (!j->b || !j->i || !j->c || !j->u || !j->d) {
        wlog(w, "%s %s: not a qfit job entry: dropped", j->stream, j->entry);
        return drop(t, j);
    }
    long long idx = strtoll(j->i, NULL, 10);
    if (j->deliveries > cfg->max_attempts) {
        char msg[160];
        snprintf(msg, sizeof msg, "delivered %lld times without a result (its workers died or were stopped)",
                 j->deliveries - 1);
        j->deliveries--;
        return fail_job(t, j, idx, msg);
    }
    char st[32];
    if (start_job(t, j->b, st, sizeof st, t->err, sizeof t->err) != 0) return -1;
    if (!st[0]) {
        wlog(w, "%s line %lld: the batch no longer exists: dropped", j->b, idx + 1);
        return drop(t, j);
    }
    if (!strcmp(st, "cancelling") || !strcmp(st, "cancelled")) {
        char *line = batch_error_line(j->b, idx, j->c, BATCH_CANCELLED, "the batch was cancelled before this "
                                      "request ran");
        if (!line) return -1;
        int rc = batch_store(&t->r, j->b, idx, line, j->stream, j->entry, BATCH_CANCELLED, 0, j->c, NULL, 0,
                             NULL, t->err, sizeof t->err);
        free(line);
        return rc;
    }
    char why[160];
    char *body = job_body(j, why, sizeof why);
    if (!body) return fail_job(t, j, idx, why);
    pthread_mutex_lock(&w->mu);
    snprintf(t->current, sizeof t->current, "%s-%lld", j->b, idx);
    pthread_mutex_unlock(&w->mu);
    unsigned status = 0;
    char *resp = NULL, msg[512];
    size_t resp_len = 0;
    int rrc = cfg->run(cfg->run_ctx, j->u, body, strlen(body), &w->cancel, &status, &resp, &resp_len, msg, sizeof msg);
    free(body);
    pthread_mutex_lock(&w->mu);
    t->current[0] = '\0';
    pthread_mutex_unlock(&w->mu);
    int rc = 0;
    bool answered = rrc == 0 && status < 500 && status != 499;   /* 499: cancelled, no answer */
    if (answered) {
        long long tokens = 0;
        char *line = answer_line(j->b, idx, j->c, status, resp, resp_len, &tokens);
        bool stored = false;
        if (!line) {
            snprintf(t->err, sizeof t->err, "out of memory");
            rc = -1;
        } else rc = batch_store(&t->r, j->b, idx, line, j->stream, j->entry, BATCH_DONE, tokens, j->c, NULL,
                              j->deliveries, &stored, t->err, sizeof t->err);
        free(line);
        if (!rc) {
            pthread_mutex_lock(&w->mu);
            w->n_done += stored;
            pthread_mutex_unlock(&w->mu);
        }
    } else if (atomic_load(&w->cancel)) {   /* stopped mid-run: someone else runs it */
        release(t, j);
    } else {
        if (rrc == 0) snprintf(msg, sizeof msg, "HTTP %u: %.400s", status, resp ? resp : "");
        if (j->deliveries >= cfg->max_attempts) rc = fail_job(t, j, idx, msg);
        else {
            wlog(w, "%s line %lld (%s): attempt %lld failed, retrying: %s", j->b, idx + 1, j->c, j->deliveries, msg);
            release(t, j);
        }
    }
    free(resp);
    return rc;
}

/* ---------------------------------------------------------------- taking jobs */

/* XAUTOCLAIM one idle entry of any stream; 1 with *j and *rep (free it) when one
 * was taken, 0 when none, -1 on a Redis failure. */
static int claim(job_thread *t, job *j, redisReply **rep)
{
    const qfit_batch_worker_config *cfg = t->w->cfg;
    t->last_claim_ms = batch_now_ms();
    for (size_t s = 0; s < t->n_streams; s++) {
        redisReply *r = rconn_cmdf(&t->r, t->err, sizeof t->err, "XAUTOCLAIM %s " BATCH_GROUP " %s %d %s COUNT 1",
                                   t->streams[s], t->consumer, cfg->visibility_ms, t->claim_cursor[s]);
        if (!r) return -1;
        if (r->type == REDIS_REPLY_ERROR) {   /* NOGROUP: the stream was deleted; recreate */
            freeReplyObject(r);
            if (ensure_group(&t->r, t->streams[s], t->err, sizeof t->err) != 0) return -1;
            continue;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2) {
            snprintf(t->claim_cursor[s], sizeof t->claim_cursor[s], "%s", r->element[0]->str);
            const redisReply *es = r->element[1];
            for (size_t k = 0; k < es->elements; k++)
                if (take_entry(es->element[k], t->streams[s], j)) {
                    j->deliveries = deliveries(t, t->streams[s], j->entry);
                    *rep = r;
                    return 1;
                }
        }
        freeReplyObject(r);
    }
    return 0;
}

/* XREADGROUP one new entry of stream s (blocking up to 1 s when block); as claim.
 * One stream per call: COUNT applies per stream, so a read of several streams could
 * hand this thread several jobs at once, and the ones waiting would look idle. */
static int read_stream(job_thread *t, size_t s, bool block, job *j, redisReply **rep)
{
    const char *argv[] = { "XREADGROUP", "GROUP", BATCH_GROUP, t->consumer, "COUNT", "1", "BLOCK", "1000",
                           "STREAMS", t->streams[s], ">" };
    int argc = (int)(sizeof argv / sizeof argv[0]);
    if (!block) {   /* without BLOCK */
        argv[6] = "STREAMS";
        argv[7] = t->streams[s];
        argv[8] = ">";
        argc -= 2;
    }
    redisReply *r = rconn_cmd(&t->r, argc, argv, NULL, t->err, sizeof t->err);
    if (!r) return -1;
    if (r->type == REDIS_REPLY_ERROR) {   /* NOGROUP after Redis lost the stream: recreate */
        wlog(t->w, "XREADGROUP %s: %s", t->streams[s], r->str);
        freeReplyObject(r);
        t->n_streams = 0;
        return 0;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        const redisReply *st = r->element[0];
        if (st->type == REDIS_REPLY_ARRAY && st->elements >= 2 && st->element[1]->elements &&
            take_entry(st->element[1]->element[0], t->streams[s], j)) {
            *rep = r;
            return 1;
        }
    }
    freeReplyObject(r);
    return 0;
}

/* One new entry of any stream: round robin without blocking (one stream: blocks
 * up to 1 s; several: sleeps 100 ms when all are empty). */
static int read_new(job_thread *t, job *j, redisReply **rep)
{
    if (t->n_streams == 1) return read_stream(t, 0, true, j, rep);
    for (size_t k = 0; k < t->n_streams; k++) {
        size_t s = (t->next_stream + k) % t->n_streams;
        int got = read_stream(t, s, false, j, rep);
        if (got) {
            t->next_stream = s + 1;
            return got;
        }
        if (!t->n_streams) return 0;
    }
    usleep(100000);
    return 0;
}

static void *job_main(void *arg)
{
    job_thread *t = arg;
    worker *w = t->w;
    while (stop_level(w) == 0) {
        if (refresh_streams(t, t->err, sizeof t->err) != 0) break;
        if (!t->n_streams) {
            usleep(200000);
            continue;
        }
        job j;
        redisReply *rep = NULL;
        int got = 0;
        if (batch_now_ms() - t->last_claim_ms >= CLAIM_EVERY_MS && (got = claim(t, &j, &rep)) < 0) break;
        if (!got && (got = read_new(t, &j, &rep)) < 0) break;
        if (!got && !stop_level(w) && (got = claim(t, &j, &rep)) < 0) break;
        if (!got) continue;
        if (stop_level(w)) {   /* told to stop while taking it: not started, hand it back */
            release(t, &j);
            freeReplyObject(rep);
            break;
        }
        int rc = process(t, &j);
        freeReplyObject(rep);
        if (rc != 0) break;
    }
    if (stop_level(w) == 0) {   /* Redis gone for good (or a fatal error) */
        t->rc = -1;
        wlog(w, "job thread %d stops: %s", t->index, t->err);
    }
    atomic_store(&t->ended, true);
    return NULL;
}

/* ---------------------------------------------------------------- the worker */

static void heartbeat(worker *w, rconn *r)
{
    json_t *jobs = json_array(), *models = json_array();
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->cfg->concurrency; i++)
        if (w->threads[i].current[0]) json_array_append_new(jobs, json_string(w->threads[i].current));
    long long done = w->n_done, failed = w->n_failed;
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < w->cfg->n_models; i++) json_array_append_new(models, json_string(w->cfg->models[i]));
    json_t *j = json_pack("{s:s,s:o,s:i,s:o,s:I,s:I}", "id", w->id, "models", models, "concurrency",
                          w->cfg->concurrency, "jobs", jobs, "done", (json_int_t)done, "failed", (json_int_t)failed);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    char err[256];
    redisReply *rep = s ? rconn_cmdf(r, err, sizeof err, "SET qfit:worker:%s %s PX %d", w->id, s, HEARTBEAT_TTL_MS)
                        : NULL;
    if (rep) freeReplyObject(rep);
    free(s);
}

int qfit_batch_worker_run(const qfit_batch_worker_config *in, const atomic_int *stop, char *err, size_t err_len)
{
    qfit_batch_worker_config cfg = *in;
    if (cfg.concurrency <= 0) cfg.concurrency = 1;
    if (cfg.visibility_ms <= 0) cfg.visibility_ms = 60000;
    if (cfg.max_attempts <= 0) cfg.max_attempts = 3;
    if (cfg.n_models > MAX_STREAMS) {
        snprintf(err, err_len, "at most %d models per worker (got %zu)", MAX_STREAMS, cfg.n_models);
        return -1;
    }
    worker w = { .cfg = &cfg, .stop = stop };
    atomic_init(&w.cancel, false);
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    unsigned rnd = (unsigned)batch_now_ms() ^ (unsigned)getpid() * 2654435761u;
    snprintf(w.id, sizeof w.id, "%.60s-%d-%04x", host, (int)getpid(), rnd & 0xffff);
    pthread_mutex_init(&w.mu, NULL);
    rconn hb = { .log = cfg.log, .log_ctx = cfg.log_ctx };
    if (rconn_open(&hb, cfg.url, stop, err, err_len) != 0) {
        pthread_mutex_destroy(&w.mu);
        return -1;
    }
    w.threads = calloc((size_t)cfg.concurrency, sizeof *w.threads);
    if (!w.threads) {
        snprintf(err, err_len, "out of memory");
        rconn_close(&hb);
        pthread_mutex_destroy(&w.mu);
        return -1;
    }
    int started = 0, rc = 0;
    for (int i = 0; i < cfg.concurrency; i++) {
        job_thread *t = &w.threads[i];
        t->w = &w;
        t->index = i;
        t->r.log = cfg.log;
        t->r.log_ctx = cfg.log_ctx;
        t->r.timeout_ms = 10000;
        snprintf(t->consumer, sizeof t->consumer, "%s-t%d", w.id, i);
        if (rconn_open(&t->r, cfg.url, stop, err, err_len) != 0) { rc = -1; break; }
        atomic_init(&t->ended, false);
        if (pthread_create(&t->thread, NULL, job_main, t) != 0) {
            rconn_close(&t->r);
            snprintf(err, err_len, "cannot start a job thread");
            rc = -1;
            break;
        }
        started++;
    }
    if (!rc) wlog(&w, "worker %s: %d job thread%s", w.id, cfg.concurrency, cfg.concurrency == 1 ? "" : "s");
    /* heartbeats until stopped or every job thread has ended */
    for (;;) {
        if (stop_level(&w) >= 2) atomic_store(&w.cancel, true);
        if (rc || stop_level(&w)) break;
        bool alive = false;
        for (int i = 0; i < started; i++) alive |= w.threads[i].rc == 0;
        if (!alive) break;
        heartbeat(&w, &hb);
        for (int k = 0; k < HEARTBEAT_MS / 100 && !stop_level(&w); k++) usleep(100000);
    }
    /* the job threads finish their job (stop 1) or hand it back (stop 2) */
    for (int i = 0; i < started; i++) {
        while (!atomic_load(&w.threads[i].ended)) {
            if (stop_level(&w) >= 2) atomic_store(&w.cancel, true);
            usleep(50000);
        }
        pthread_join(w.threads[i].thread, NULL);
        if (w.threads[i].rc && !rc) {
            rc = -1;
            snprintf(err, err_len, "%s", w.threads[i].err);
        }
        rconn_close(&w.threads[i].r);
    }
    char e2[128];
    redisReply *rep = rconn_cmdf(&hb, e2, sizeof e2, "DEL qfit:worker:%s", w.id);
    if (rep) freeReplyObject(rep);
    wlog(&w, "worker %s: stopped (%lld done, %lld failed)", w.id, w.n_done, w.n_failed);
    rconn_close(&hb);
    free(w.threads);
    pthread_mutex_destroy(&w.mu);
    return rc;
}
