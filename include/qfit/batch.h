/* qfit — batch jobs through a Redis Streams queue (hiredis): `qfit batch` submits
 * files of requests, `qfit worker` processes drain them on one or many machines.
 *
 * Input: the OpenAI Batch API's JSONL, one request a line:
 *     {"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{...}}
 * url: /v1/chat/completions, /v1/completions, /v1/embeddings, /api/generate,
 * /api/chat or /api/embed. Every line is checked before anything is queued
 * (qfit_batch_parse): JSON object, exactly these four keys, method POST, a known
 * url, a body object whose "model" is a name (or the default model fills it),
 * custom_id unique in the file; the whole file is refused naming the first bad line.
 *
 * Output (qfit_batch_results): one line per input line, in input order:
 *     {"id":"<batch>-<index>","custom_id":"r1","response":{"status_code":200,
 *      "request_id":"<batch>-<index>","body":{...}},"error":null}
 * body is the answer of the qfit serve route, byte for byte (the worker runs it
 * in-process with "stream": false). Every HTTP answer below 500 is a result, 4xx
 * included (as OpenAI's batch output: a prompt longer than the context is a 400 the
 * user must see, and running it again cannot change it). A job without an answer (a
 * 5xx, a 499 after a cancel, a worker that died or stopped) is retried; after
 * max_attempts deliveries it is a failure: "response": null,
 * "error": {"code":"job_failed","message":...}, and an entry in the dead-letter
 * stream. A cancelled job: "error": {"code":"batch_cancelled",...}.
 *
 * Redis layout (prefix "qfit:"):
 *   qfit:q:<model>          stream of jobs, consumer group "workers" (fields b, i, c, u, d:
 *                           batch id, index, custom_id, url, body)
 *   qfit:models             set of the models that have a job stream
 *   qfit:batch:<id>         hash: total, done, failed, cancelled, status (queued, running,
 *                           cancelling, then completed or cancelled), models, created_ms,
 *                           started_ms, finished_ms, tokens (generated tokens), ttl_s
 *   qfit:batch:<id>:out     hash index -> output line (HSETNX: a job done twice is stored once)
 *   qfit:dead               the dead-letter stream (b, i, c, error, attempts), capped ~10000
 *   qfit:worker:<id>        a worker's heartbeat (JSON, expires after 3 heartbeats)
 * A result is stored, counted, acknowledged (XACK) and deleted from the stream
 * (XDEL) in one Lua script: atomic, so counts never drift, and the stream only
 * holds unfinished jobs (memory bounded). The batch's keys expire ttl_s (chosen at
 * submit) after it finished. Jobs pending on a consumer longer than the visibility timeout
 * are taken over by another worker (XAUTOCLAIM), so a killed worker loses nothing.
 *
 * URLs: redis://[[user]:password@]host[:port][/db]; rediss:// (TLS) is refused: the
 * hiredis this build links has no TLS (never a silent plain-text fallback). The
 * password is sent with AUTH. Connections retry with backoff (100 ms doubling to 5 s)
 * while Redis restarts or loads its AOF: a worker waits for ever (until stopped),
 * other calls give up after ~30 s.
 *
 * Errors: -1/NULL with a message in err[err_len]. Ownership: what a function returns
 * is freed with its _free/_close. Thread-safety: a qfit_batch_client is used by one
 * thread at a time; qfit_batch_worker_run creates its own connections.
 */
#ifndef QFIT_BATCH_H
#define QFIT_BATCH_H

#include <stdatomic.h>
#include <stdbool.h>

#include "qfit/status.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QFIT_BATCH_DEFAULT_URL       "redis://127.0.0.1:6379/0"
#define QFIT_BATCH_MAX_LINE          (8u << 20)   /* bytes of one input line */
#define QFIT_BATCH_MAX_FILE          ((size_t)1 << 30)   /* bytes of one input file (qfit batch submit) */
#define QFIT_BATCH_MAX_JOBS          1000000      /* lines of one file */
#define QFIT_BATCH_MAX_CUSTOM_ID     512          /* bytes */
#define QFIT_BATCH_MAX_MODEL         256          /* bytes of a model name */
#define QFIT_BATCH_ID_LEN            22           /* "batch_" + 16 hex digits */

/* ---- Redis URLs */
typedef struct {
    char host[256];
    int  port;          /* 6379 when omitted */
    int  db;            /* 0 when omitted */
    char user[128];     /* "" = none (AUTH password only) */
    char password[256]; /* "" = no AUTH */
} qfit_redis_url;
/* Parse url (percent-escapes in user and password decoded). rediss:// is an error. */
int qfit_redis_url_parse(const char *url, qfit_redis_url *out, char *err, size_t err_len);
/* The URL to use: arg, else $QFIT_REDIS_URL, else QFIT_BATCH_DEFAULT_URL. */
const char *qfit_batch_default_url(const char *arg);

/* ---- input */
typedef struct {
    char  *custom_id;
    char  *url;         /* one of the six endpoints */
    char  *model;       /* body.model (filled from the default when missing) */
    char  *body;        /* the body as compact JSON, model filled in */
} qfit_batch_job;

typedef struct {
    qfit_batch_job *jobs;
    size_t          n;
} qfit_batch_input;

/* Check one line (without its '\n'; a '\r' before it is allowed) and fill job (free
 * with qfit_batch_job_clear). default_model: NULL or the model for a body without
 * one. The message starts with the line number's subject, e.g. "field 'url': ...". */
int  qfit_batch_parse_line(const char *line, size_t len, const char *default_model, qfit_batch_job *job,
                           char *err, size_t err_len);
void qfit_batch_job_clear(qfit_batch_job *job);
/* Is url one of the six batch endpoints? (workers check every job they take: whoever
 * can write to Redis must not reach other routes, such as /api/pull or /api/create) */
bool qfit_batch_url_allowed(const char *url);
/* Check every line of data[len] (unique custom_ids included); NULL with
 * "line N: ..." naming the first bad line. An empty file is an error. */
qfit_batch_input *qfit_batch_parse(const char *data, size_t len, const char *default_model,
                                   char *err, size_t err_len);
void qfit_batch_input_free(qfit_batch_input *in);

/* ---- client calls (submit, status, results, cancel) */
typedef struct qfit_batch_client qfit_batch_client;
qfit_batch_client *qfit_batch_connect(const char *url, char *err, size_t err_len);
void qfit_batch_close(qfit_batch_client *c);

/* Queue every job; writes the new id (QFIT_BATCH_ID_LEN + 1 bytes) into id. ttl_s:
 * how long the batch and its results are kept once finished (0 = 7 days). */
#define QFIT_BATCH_DEFAULT_TTL_S (7 * 24 * 3600)
/* A ttl as users write it: "3600", "90m", "24h", "7d" (1 s to 365 days) into seconds;
 * -1 when it is not that. */
int qfit_batch_parse_ttl(const char *s, long *out);
int qfit_batch_submit(qfit_batch_client *c, const qfit_batch_input *in, long ttl_s, char *id,
                      char *err, size_t err_len);

typedef struct {
    char     status[16];     /* queued, running, cancelling, completed, cancelled */
    char     models[512];    /* comma-separated */
    int64_t  total, done, failed, cancelled;
    int64_t  running;        /* jobs the live workers report running now */
    int64_t  created_ms, started_ms, finished_ms;   /* Unix ms; 0 = not yet */
    int64_t  tokens;         /* generated tokens (usage of the answers) */
    int      workers;        /* live workers (heartbeats) */
} qfit_batch_status;
int qfit_batch_get_status(qfit_batch_client *c, const char *id, qfit_batch_status *st, char *err, size_t err_len);
/* The status as one JSON object (a new reference; NULL when out of memory): id, status,
 * models, the counts, created_ms/started_ms/finished_ms (Unix ms, 0 = not yet), tokens,
 * workers. What `qfit batch status --json` prints and GET /api/batch/:id answers. */
json_t *qfit_batch_status_json(const char *id, const qfit_batch_status *st);

/* Write the output lines to out_path (temp file + fsync + rename + directory
 * fsync), or to stdout when out_path is NULL. Refused while jobs are unfinished. */
int qfit_batch_results(qfit_batch_client *c, const char *id, const char *out_path, char *err, size_t err_len);
/* The same lines written to an open descriptor (the caller owns it; nothing is synced). */
int qfit_batch_results_fd(qfit_batch_client *c, const char *id, int fd, char *err, size_t err_len);

/* Cancel: the jobs still queued get a batch_cancelled line at once, running ones
 * finish; the batch ends "cancelled". Cancelling a finished batch is an error. */
int qfit_batch_cancel(qfit_batch_client *c, const char *id, char *err, size_t err_len);
/* The kind of the last failed call's error on c (submit, get_status, results, cancel):
 * QFIT_E_INVALID (not a batch id, a negative ttl), QFIT_E_NOT_FOUND (no such batch, or
 * it expired), QFIT_E_CONFLICT (results of an unfinished batch, cancelling an ended
 * one), QFIT_E_NOMEM, QFIT_E_IO (Redis or a file: everything else); QFIT_OK after a call
 * that succeeded. */
qfit_status qfit_batch_client_status(const qfit_batch_client *c);

/* ---- workers */

/* Runs one job: the HTTP method, url and body (with "stream": false). On 0: the
 * status and response body (malloc'd, the worker frees it). -1 + err: no answer
 * (the job is retried). cancel rises when the worker is told to stop at once. */
typedef int (*qfit_batch_run_fn)(void *ctx, const char *url, const char *body, size_t body_len,
                                 const atomic_bool *cancel, unsigned *status, char **resp, size_t *resp_len,
                                 char *err, size_t err_len);

typedef struct {
    const char        *url;           /* Redis URL */
    const char *const *models;        /* streams to read; n_models 0 = every model in qfit:models */
    size_t             n_models;      /* that has_model accepts (re-read every 3 s) */
    bool             (*has_model)(void *ctx, const char *model);   /* NULL: all; any thread */
    void              *has_model_ctx;
    int                concurrency;   /* job threads (0 = 1) */
    int                visibility_ms; /* pending longer than this: taken over (0 = 60000) */
    int                max_attempts;  /* deliveries before the dead-letter stream (0 = 3) */
    qfit_batch_run_fn  run;
    void              *run_ctx;
    void             (*log)(void *ctx, const char *line);   /* NULL = silent; any thread */
    void              *log_ctx;
} qfit_batch_worker_config;

/* Work until *stop: 1 = take no new job, finish those running, return; 2 = cancel
 * the running ones too and hand them back at once (another worker may take them
 * without waiting for the visibility timeout). 0 after a clean stop. */
int qfit_batch_worker_run(const qfit_batch_worker_config *cfg, const atomic_int *stop, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_BATCH_H */
