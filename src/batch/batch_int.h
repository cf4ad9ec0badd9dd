/* Internal to src/batch: do not include from other modules.
 * A Redis connection that reconnects with backoff (redis.c). */
#ifndef QFIT_BATCH_INT_H
#define QFIT_BATCH_INT_H

#include "qfit/batch.h"

#include <hiredis/hiredis.h>

typedef struct {
    qfit_redis_url   url;
    redisContext    *c;
    const atomic_int *stop;     /* NULL: give up after RETRY_LIMIT_MS; else retry until *stop */
    int              timeout_ms;   /* socket timeout of a command */
    bool             lost;         /* the connection broke: log the reconnection */
    void           (*log)(void *ctx, const char *line);
    void            *log_ctx;
} rconn;

/* Connect now (AUTH, SELECT); -1 + err when the URL's server cannot be reached
 * (after retrying as described in batch.h). */
int  rconn_open(rconn *r, const char *url, const atomic_int *stop, char *err, size_t err_len);
void rconn_close(rconn *r);
/* One command; NULL + err when Redis stays unreachable (or *stop rose). A reply of
 * type REDIS_REPLY_ERROR is returned as a reply (the caller decides), except LOADING
 * and the connection errors, which are retried. The command is re-sent after a
 * reconnect: callers only send commands that are safe to repeat. */
redisReply *rconn_cmd(rconn *r, int argc, const char **argv, const size_t *lens, char *err, size_t err_len);
/* The same with printf-style arguments (hiredis's format: %s, %b, %lld). */
redisReply *rconn_cmdf(rconn *r, char *err, size_t err_len, const char *fmt, ...);

int64_t batch_now_ms(void);

/* ---- queue.c: shared by the client calls and the workers */
#define BATCH_GROUP      "workers"
#define BATCH_DEAD       "qfit:dead"
#define BATCH_MODELS     "qfit:models"

typedef enum { BATCH_DONE, BATCH_FAILED, BATCH_CANCELLED } batch_kind;

/* Store the output line of job idx of batch id once (HSETNX), count it, put a failed
 * one into the dead-letter stream, finish the batch when it was the last (status,
 * finished_ms, EXPIRE after the batch's ttl_s), then XACK
 * and XDEL the stream entry (entry NULL: none). One Lua script: atomic.
 * *stored: whether this call stored it (false: it was already there). */
int batch_store(rconn *r, const char *id, long long idx, const char *line, const char *stream, const char *entry,
                batch_kind kind, long long tokens, const char *custom_id, const char *error, long long attempts,
                bool *stored, char *err, size_t err_len);
/* The output line of a job without an answer (kind FAILED or CANCELLED); malloc'd. */
char *batch_error_line(const char *id, long long idx, const char *custom_id, batch_kind kind, const char *msg);
/* The stream key of a model into out[cap]. */
void batch_stream_key(const char *model, char *out, size_t cap);

#endif
