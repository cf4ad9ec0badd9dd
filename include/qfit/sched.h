/* qfit — the model scheduler of a server: several models loaded within a memory
 * budget, each serving several requests at once through one batched context.
 *
 * Models. A request names a model (a stored name or a GGUF path, as qfit_chat_model_open
 * takes it). qfit_sched_acquire returns a handle to a loaded instance of it, loading it
 * first when needed. An instance is (model, context settings): a request asking for
 * another num_ctx / num_batch gets its own instance. Each instance has one context of
 * num_parallel sequences (each with the full n_ctx: qfit_context_params.n_seq) driven by
 * a worker thread through a qfit_batcher, so requests to the same model are decoded in
 * the same batches, and a new request reuses the longest cached prefix of a finished one.
 *
 * Memory. Before anything is allocated, the planner sizes the instance (weights as the
 * run reads them, KV cache for num_parallel x n_ctx cells, compute buffers, tokenizer and
 * metadata; qfit_plan_compute, the numbers `qfit plan` prints). Instances are loaded only
 * while the sum of their sizes plus the runtime's fixed part stays within max_memory.
 * To make room, idle instances (no request holding them) are unloaded least recently
 * used first; an instance whose keep-alive is forever (a negative keep_alive) is never
 * unloaded to make room. A model that cannot fit even alone is refused at once with the
 * planner's breakdown and advice; when it could fit but the memory is held by busy or
 * pinned instances, the request waits for them (at most load_timeout_ns), then fails
 * (QFIT_SCHED_BUSY). max_loaded bounds the number of instances the same way.
 * Every load and unload is reported through the log callback with its cause.
 *
 * Keep-alive (Ollama's semantics): when the last holder releases an instance, it stays
 * loaded for its keep-alive, then is unloaded (cause "expired"); 0 unloads it at once,
 * QFIT_FOREVER_NS never. A request that gives keep_alive sets the instance's value; one
 * that omits it (QFIT_SCHED_KEEP_ALIVE_UNSET) keeps the current value (the default,
 * config.keep_alive_ns, for a new instance).
 *
 * Queue. Requests waiting for a model's free sequence or for memory count against
 * max_queue; beyond it a request fails at once with QFIT_SCHED_BUSY (a server answers
 * 503 with Retry-After), never a hang.
 *
 * Generation: qfit_sched_generate queues a job on the instance and returns at once;
 * the caller reads the job's events (text to show, sampled tokens with their
 * log-probabilities, the end) with qfit_sched_job_next, from its own thread. The worker
 * never waits for a slow reader: events are queued. qfit_sched_job_cancel (a client
 * that went away) ends the job at the next step: at most one more token, or one more
 * prefill micro-batch.
 *
 * Embeddings run on the caller's thread on a context of the instance kept for them
 * (one at a time per instance; sized by the planner at first use and counted in the
 * instance's size).
 *
 * Thread-safety: every function may be called from any thread, concurrently, except
 * that one job is read (qfit_sched_job_next) by one thread at a time, and qfit_sched_free
 * is called once, when no other call is running and every handle and job is released.
 * Ownership: handles (qfit_sched_acquire) are released with qfit_sched_release; jobs
 * with qfit_sched_job_free (which cancels an unfinished one and waits for it to end).
 * The store passed in the config is borrowed and must outlive the scheduler; the
 * scheduler locks around its own use of it.
 * Units: bytes, nanoseconds (CLOCK_MONOTONIC for timers; wall-clock seconds in ps).
 * Errors: -1 (or NULL) and a message in err naming the model and the numbers;
 * *code (where given) tells a server which status to answer. */
#ifndef QFIT_SCHED_H
#define QFIT_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qfit/chat.h"
#include "qfit/embed.h"
#include "qfit/generate.h"
#include "qfit/model.h"
#include "qfit/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Why a call failed (for the HTTP status). */
typedef enum {
    QFIT_SCHED_OK = 0,
    QFIT_SCHED_INVALID,     /* bad request: bad parameters, prompt too long (400) */
    QFIT_SCHED_NOT_FOUND,   /* no such model (404) */
    QFIT_SCHED_NO_FIT,      /* the model cannot fit in max_memory even alone (507 / 500) */
    QFIT_SCHED_BUSY,        /* queue full, or memory held by busy/pinned models past the timeout (503) */
    QFIT_SCHED_ERROR,       /* load failure, engine error, out of memory (500) */
} qfit_sched_code;

#define QFIT_SCHED_KEEP_ALIVE_UNSET INT64_MIN

typedef struct {
    qfit_store *store;          /* borrowed; NULL: only GGUF paths can be loaded */
    uint64_t max_memory;        /* bytes for all instances (0: the planner's budget for this machine) */
    int      max_loaded;        /* instances at most (0: 3) */
    int      num_parallel;      /* sequences per instance (0: 1) */
    int      max_queue;         /* requests waiting at most (0: 512) */
    int64_t  keep_alive_ns;     /* default keep-alive (0 is allowed: unload when idle) */
    int64_t  load_timeout_ns;   /* longest wait for memory / a sequence (0: 5 minutes) */
    uint64_t reserve_bytes;     /* what the process needs besides the models and the runtime
                                   (a server's connections): counted against max_memory and in
                                   the planned total */
    qfit_context_params ctx;    /* base context settings (KV types, flash attention, n_ctx,
                                   threads); a model's num_ctx / num_batch / num_thread
                                   PARAMETERs and request options override them */
    void (*log)(void *user, const char *line);   /* load / unload lines (NULL: none) */
    void *log_user;
} qfit_sched_config;

/* Defaults above, keep_alive 5 minutes, ctx = qfit_context_default_params(). */
void qfit_sched_config_init(qfit_sched_config *c);

typedef struct qfit_sched qfit_sched;
typedef struct qfit_sched_model qfit_sched_model;
/* cp_override's n_gpu_layers when the request does not set num_gpu */
#define QFIT_SCHED_NGL_UNSET (-1000)
typedef struct qfit_sched_job qfit_sched_job;

qfit_sched *qfit_sched_new(const qfit_sched_config *cfg, char *err, size_t err_len);
/* Unloads everything (waits for the workers). */
void qfit_sched_free(qfit_sched *s);

/* A loaded instance of MODEL whose context has the settings of `cp_override` applied
 * over the model's own (NULL: the model's; only n_ctx, n_batch and n_threads are read,
 * 0 = not set, and n_gpu_layers, QFIT_SCHED_NGL_UNSET = not set). keep_alive_ns: QFIT_SCHED_KEEP_ALIVE_UNSET, QFIT_FOREVER_NS, 0 or a
 * duration. *load_ns (may be NULL) gets the time spent loading for this call (0 when it
 * was loaded already). */
int  qfit_sched_acquire(qfit_sched *s, const char *model, const qfit_context_params *cp_override,
                        int64_t keep_alive_ns, qfit_sched_model **out, uint64_t *load_ns,
                        qfit_sched_code *code, char *err, size_t err_len);
/* When MODEL is a stored routing model (Modelfile ROUTE lines): 1 and *routes = a new
 * JSON array [{"rule", "model"}, ...] in order (json_decref it). 0 when it is any other
 * model or not stored (*routes NULL); -1 with a message when its routes cannot be read. */
int  qfit_sched_routes(qfit_sched *s, const char *model, json_t **routes, char *err, size_t err_len);

/* Releases a handle (starts the keep-alive timer when it was the last one). */
void qfit_sched_release(qfit_sched_model *m);

/* Unload every instance of MODEL as soon as it is idle (now, if it is); keep_alive 0.
 * Returns the number of instances found (0: none loaded). */
int  qfit_sched_unload(qfit_sched *s, const char *model);

/* What a handle gives access to (valid while it is held). */
const qfit_chat_model *qfit_sched_model_chat(const qfit_sched_model *m);
const char *qfit_sched_model_name(const qfit_sched_model *m);     /* as requested */
int         qfit_sched_model_n_ctx(const qfit_sched_model *m);     /* per sequence */
int         qfit_sched_model_gpu_layers(const qfit_sched_model *m); /* qfit_context_gpu_layers of its context */
int         qfit_sched_model_n_vocab(const qfit_sched_model *m);
int         qfit_sched_model_n_embd(const qfit_sched_model *m);
/* The model's PARAMETERs merged into gp (sampling, num_predict, stop...): the base a
 * request's options are applied over. gp->stop points into the instance (valid while
 * the handle is held). */
int         qfit_sched_model_gen_params(const qfit_sched_model *m, qfit_gen_params *gp,
                                        char *err, size_t err_len);

/* The token table structured output needs (qfit_gen_params.grammar_vocab), built at the
 * first call and shared by every request to the instance. NULL with a message on out of
 * memory. */
const qfit_grammar_vocab *qfit_sched_model_grammar_vocab(qfit_sched_model *m, char *err, size_t err_len);

/* ---- generation */

typedef enum {
    QFIT_SCHED_EV_TEXT = 1,    /* text to show (streaming-safe: see generate.h) */
    QFIT_SCHED_EV_TOKEN = 2,   /* a sampled token (with logprobs when asked) */
    QFIT_SCHED_EV_DONE = 3,    /* the end: qfit_sched_job_result */
} qfit_sched_event_kind;

typedef struct {
    qfit_sched_event_kind kind;
    const char *text;          /* TEXT: the bytes (valid until the next call) */
    size_t len;
    qfit_gen_token token;      /* TOKEN (token.piece valid until the next call) */
} qfit_sched_event;

/* Queue a generation of `prompt` (copied) on the instance. p (and the strings and
 * grammar it points to) must stay valid until the job has finished (DONE read, or
 * qfit_sched_job_free returned); its callbacks are not used (events replace them).
 * NULL with *code BUSY when the queue is full, INVALID for parameters or a prompt the
 * context cannot hold (the message names both numbers). */
qfit_sched_job *qfit_sched_generate(qfit_sched_model *m, const int32_t *prompt, size_t n_prompt,
                                    const qfit_gen_params *p, qfit_sched_code *code,
                                    char *err, size_t err_len);
/* The next event: 1 (in *ev), 0 when none came within timeout_ms (a server sends a
 * keep-alive then), -1 after DONE has been returned. */
int  qfit_sched_job_next(qfit_sched_job *j, int timeout_ms, qfit_sched_event *ev);
/* After DONE: the counters and the reason (stop, length, cancelled, error). */
const qfit_gen_result *qfit_sched_job_result(const qfit_sched_job *j);
/* Ask the job to stop (any thread): reason cancelled. */
void qfit_sched_job_cancel(qfit_sched_job *j);
/* Cancel if needed, wait for the end, free. */
void qfit_sched_job_free(qfit_sched_job *j);

/* ---- embeddings (qfit_embed on the instance's embedding context; see embed.h) */
int  qfit_sched_embed(qfit_sched_model *m, const char *const *inputs, size_t n,
                      const qfit_embed_params *p, float *out, qfit_embed_item *items,
                      qfit_embed_result *res, qfit_sched_code *code, char *err, size_t err_len);

/* ---- state (for /api/ps and /metrics) */

typedef struct {
    char     name[256];         /* as requested */
    char     path[1024];        /* the GGUF */
    char     digest[QFIT_DIGEST_STR];   /* a stored model's ID (hex sha256 of its manifest); "" for a file */
    uint64_t size_bytes;        /* the planner's size of the instance */
    int      n_ctx, n_seq;
    int      holders;           /* handles held */
    int      running;           /* jobs queued or running */
    bool     pinned;            /* keep-alive forever */
    int64_t  expires_unix_ns;   /* wall clock; 0 while held; INT64_MAX pinned */
    qfit_batcher_stats batch;   /* prefix reuse counters */
} qfit_sched_ps_entry;

typedef struct {
    uint64_t loads, unloads_expired, unloads_evicted, unloads_requested;
    uint64_t refused_no_fit, refused_busy, refused_too_long;
    uint64_t cancellations, jobs_done;
    uint64_t prompt_tokens, generated_tokens;
    int      queue_depth, active_sequences;
    uint64_t used_bytes;        /* planned: the instances + the runtime + reserve_bytes */
    uint64_t budget_bytes;
} qfit_sched_stats;

/* Up to cap entries, most recently used first; returns the number of instances. */
int  qfit_sched_ps(qfit_sched *s, qfit_sched_ps_entry *out, int cap);
void qfit_sched_get_stats(qfit_sched *s, qfit_sched_stats *st);

#ifdef __cplusplus
}
#endif

#endif
