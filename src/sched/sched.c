/* The model scheduler (include/qfit/sched.h): instances of models within a memory
 * budget, a worker thread per instance driving its batcher, keep-alive timers.
 *
 * Locking: one mutex (s->mu) guards the instance list, every instance's bookkeeping
 * (holders, state, keep-alive, pending jobs, counters) and the statistics; s->cv is
 * broadcast whenever an instance changes state or becomes idle. Loading, unloading,
 * decoding and embedding run without s->mu. Each job has its own mutex for its event
 * queue, so a reader never blocks the worker. The store has its own lock. */
#include "qfit/sched.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "platform/platform.h"

#include "qfit/config.h"
#include "qfit/backend.h"
#include "qfit/plan.h"

enum { ST_LOADING = 0, ST_READY, ST_FAILED };

struct qfit_sched_job {
    qfit_sched_model *in;
    int32_t *prompt;
    size_t n_prompt;
    qfit_gen_params gp;
    qfit_gen_callbacks cb;
    atomic_bool cancel;
    /* events, guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job_ev { qfit_sched_event ev; char *data; } *evs;
    size_t n_evs, head, cap_evs;
    char *cur_data;            /* the data of the event last returned */
    bool done, done_read;
    qfit_gen_result res;
    struct qfit_sched_job *next;   /* pending list (s->mu) */
};

struct qfit_sched_model {
    qfit_sched *s;
    char name[256];
    char digest[QFIT_DIGEST_STR];   /* a stored model's ID (its manifest's sha256), "" for a file */
    int ov_n_ctx, ov_n_batch, ov_n_threads;   /* the request's context settings (the key) */
    int ov_n_gpu;                             /* its num_gpu (QFIT_SCHED_NGL_UNSET: none) */
    int state;
    char load_err[512];
    qfit_chat_model *cm;
    qfit_params *params;        /* the model's PARAMETERs */
    qfit_model *model;
    qfit_context *ctx;
    qfit_batcher *batcher;
    qfit_context_params cp;
    uint64_t size_bytes;
    int holders;
    int64_t keep_alive_ns;
    uint64_t expires_ns;        /* monotonic; valid when holders == 0 and not pinned */
    uint64_t last_used_ns;
    /* worker */
    pthread_t worker;
    bool worker_started, stop;
    pthread_cond_t wake;
    qfit_sched_job *pending, *pending_tail;
    int n_pending, n_running;
    qfit_batcher_stats bstats;
    /* structured output: the vocabulary's token table, built on first use (under gvocab_mu,
     * so that it never waits behind an embedding call) */
    pthread_mutex_t gvocab_mu;
    qfit_grammar_vocab *gvocab;
    /* embeddings */
    pthread_mutex_t embed_mu;
    qfit_context *ectx;
    uint64_t embed_bytes;
};

struct qfit_sched {
    qfit_sched_config cfg;
    uint64_t budget, base_bytes;
    pthread_mutex_t mu, store_mu;
    pthread_cond_t cv;
    qfit_sched_model **inst;
    int n_inst, cap_inst;
    uint64_t used;
    int queue_depth;
    qfit_sched_stats st;
    /* reaper */
    pthread_t reaper;
    pthread_cond_t reaper_cv;
    bool closing;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* absolute CLOCK_MONOTONIC deadline for pthread_cond_timedwait (conds use the monotonic clock) */
static struct timespec ts_at(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    return ts;
}

static void cond_init_mono(pthread_cond_t *c) { qfit_sys_cond_init_mono(c); }

static void set_err(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t len, const char *fmt, ...)
{
    if (!err || !len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

static void slog(qfit_sched *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void slog(qfit_sched *s, const char *fmt, ...)
{
    if (!s->cfg.log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->cfg.log(s->cfg.log_user, line);
}

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

void qfit_sched_config_init(qfit_sched_config *c)
{
    memset(c, 0, sizeof *c);
    c->keep_alive_ns = QFIT_DEFAULT_KEEP_ALIVE_NS;
    c->ctx = qfit_context_default_params();
}

/* ------------------------------------------------------------------ jobs */

static void job_push(qfit_sched_job *j, const qfit_sched_event *ev, const char *data, size_t len)
{
    pthread_mutex_lock(&j->mu);
    if (j->n_evs == j->cap_evs) {
        size_t nc = j->cap_evs ? 2 * j->cap_evs : 16;
        struct job_ev *ne = realloc(j->evs, nc * sizeof *ne);
        if (!ne) {   /* out of memory: stop the job rather than lose text silently */
            atomic_store(&j->cancel, true);
            pthread_mutex_unlock(&j->mu);
            return;
        }
        j->evs = ne;
        j->cap_evs = nc;
    }
    struct job_ev *e = &j->evs[j->n_evs];
    e->ev = *ev;
    e->data = NULL;
    if (len) {
        if (!(e->data = malloc(len))) {
            atomic_store(&j->cancel, true);
            pthread_mutex_unlock(&j->mu);
            return;
        }
        memcpy(e->data, data, len);
    }
    j->n_evs++;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static int job_on_text(void *u, const char *text, size_t len)
{
    qfit_sched_job *j = u;
    qfit_sched_event ev = {.kind = QFIT_SCHED_EV_TEXT, .len = len};
    job_push(j, &ev, text, len);
    return 0;
}

static int job_on_token(void *u, const qfit_gen_token *tok)
{
    qfit_sched_job *j = u;
    qfit_sched_event ev = {.kind = QFIT_SCHED_EV_TOKEN, .token = *tok};
    ev.token.piece = NULL;
    job_push(j, &ev, tok->piece, tok->piece_len);
    return 0;
}

static bool job_should_abort(void *u)
{
    qfit_sched_job *j = u;
    return atomic_load(&j->cancel);
}

static void job_finish(qfit_sched_job *j, const qfit_gen_result *res)
{
    pthread_mutex_lock(&j->mu);
    j->res = *res;
    j->done = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static void job_fail(qfit_sched_job *j, const char *msg)
{
    qfit_gen_result r;
    memset(&r, 0, sizeof r);
    r.reason = QFIT_GEN_ERROR;
    snprintf(r.error, sizeof r.error, "%s", msg);
    job_finish(j, &r);
}

/* ---------------------------------------------------------------- worker */

static void *worker_main(void *arg)
{
    qfit_sched_model *in = arg;
    qfit_sched *s = in->s;
    const int n_seq = qfit_context_n_seq(in->ctx);
    qfit_sched_job **running = calloc((size_t)n_seq, sizeof *running);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!in->stop && !in->pending && in->n_running == 0) pthread_cond_wait(&in->wake, &s->mu);
        if (in->stop && !in->pending && in->n_running == 0) break;
        /* admit pending jobs into free sequences, oldest first */
        while (in->pending && in->n_running < n_seq && running) {
            qfit_sched_job *j = in->pending;
            in->pending = j->next;
            if (!in->pending) in->pending_tail = NULL;
            in->n_pending--;
            s->queue_depth--;
            pthread_mutex_unlock(&s->mu);
            char err[512];
            int seq = qfit_batcher_submit(in->batcher, j->prompt, j->n_prompt, &j->gp, &j->cb, err, sizeof err);
            pthread_mutex_lock(&s->mu);
            if (seq < 0) {
                s->st.refused_too_long++;
                job_fail(j, err);
                continue;
            }
            running[seq] = j;
            in->n_running++;
            s->st.active_sequences++;
        }
        if (!running) {   /* out of memory at start: fail what is queued */
            while (in->pending) {
                qfit_sched_job *j = in->pending;
                in->pending = j->next;
                in->n_pending--;
                s->queue_depth--;
                job_fail(j, "out of memory");
            }
            in->pending_tail = NULL;
            continue;
        }
        if (in->n_running == 0) continue;
        pthread_mutex_unlock(&s->mu);
        qfit_batcher_step(in->batcher);   /* a failure ends every running sequence with reason error */
        pthread_mutex_lock(&s->mu);
        for (int q = 0; q < n_seq; q++) {
            qfit_gen_result res;
            if (!running[q] || !qfit_batcher_result(in->batcher, q, &res)) continue;
            qfit_sched_job *j = running[q];
            running[q] = NULL;
            in->n_running--;
            s->st.active_sequences--;
            s->st.jobs_done++;
            s->st.prompt_tokens += (uint64_t)res.prompt_eval_count;
            s->st.generated_tokens += (uint64_t)res.eval_count;
            if (res.reason == QFIT_GEN_CANCELLED) s->st.cancellations++;
            job_finish(j, &res);
        }
        qfit_batcher_get_stats(in->batcher, &in->bstats);
    }
    pthread_mutex_unlock(&s->mu);
    free(running);
    return NULL;
}

/* ------------------------------------------------------------- instances */

static void inst_free(qfit_sched_model *in)
{
    if (!in) return;
    qfit_sched *s = in->s;
    if (in->worker_started) {
        pthread_mutex_lock(&s->mu);
        in->stop = true;
        pthread_cond_signal(&in->wake);
        pthread_mutex_unlock(&s->mu);
        pthread_join(in->worker, NULL);
    }
    qfit_batcher_free(in->batcher);
    qfit_grammar_vocab_free(in->gvocab);
    qfit_context_free(in->ectx);
    qfit_context_free(in->ctx);
    qfit_model_free(in->model);
    qfit_params_free(in->params);
    qfit_chat_model_free(in->cm);
    pthread_cond_destroy(&in->wake);
    pthread_mutex_destroy(&in->embed_mu);
    pthread_mutex_destroy(&in->gvocab_mu);
    free(in);
}

/* s->mu held: take in out of the list and the memory count. */
static void inst_detach(qfit_sched *s, qfit_sched_model *in)
{
    for (int i = 0; i < s->n_inst; i++)
        if (s->inst[i] == in) {
            memmove(&s->inst[i], &s->inst[i + 1], (size_t)(s->n_inst - i - 1) * sizeof *s->inst);
            s->n_inst--;
            break;
        }
    s->used -= in->size_bytes + in->embed_bytes;
    pthread_cond_broadcast(&s->cv);
}

static bool inst_pinned(const qfit_sched_model *in) { return in->keep_alive_ns == QFIT_FOREVER_NS; }

static bool inst_idle(const qfit_sched_model *in)
{
    return in->state == ST_READY && in->holders == 0 && !in->pending && in->n_running == 0;
}

/* s->mu held: the least recently used idle instance that may be unloaded for room */
static qfit_sched_model *lru_evictable(qfit_sched *s)
{
    qfit_sched_model *best = NULL;
    for (int i = 0; i < s->n_inst; i++) {
        qfit_sched_model *in = s->inst[i];
        if (!inst_idle(in) || inst_pinned(in)) continue;
        if (!best || in->last_used_ns < best->last_used_ns) best = in;
    }
    return best;
}

static void *reaper_main(void *arg)
{
    qfit_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->closing) {
        uint64_t now = now_ns(), next = UINT64_MAX;
        qfit_sched_model *victim = NULL;
        for (int i = 0; i < s->n_inst; i++) {
            qfit_sched_model *in = s->inst[i];
            if (!inst_idle(in) || inst_pinned(in)) continue;
            if (in->expires_ns <= now) { victim = in; break; }
            if (in->expires_ns < next) next = in->expires_ns;
        }
        if (victim) {
            inst_detach(s, victim);
            s->st.unloads_expired++;
            slog(s, "unloaded %s (keep-alive expired; %.1f MiB freed)", victim->name,
                 mib(victim->size_bytes + victim->embed_bytes));
            pthread_mutex_unlock(&s->mu);
            inst_free(victim);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        if (next == UINT64_MAX) pthread_cond_wait(&s->reaper_cv, &s->mu);
        else {
            struct timespec ts = ts_at(next);
            qfit_sys_cond_timedwait_mono(&s->reaper_cv, &s->mu, &ts);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

qfit_sched *qfit_sched_new(const qfit_sched_config *cfg, char *err, size_t err_len)
{
    qfit_sched *s = calloc(1, sizeof *s);
    if (!s) {
        set_err(err, err_len, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    if (s->cfg.max_loaded <= 0) s->cfg.max_loaded = 3;
    if (s->cfg.num_parallel <= 0) s->cfg.num_parallel = 1;
    if (s->cfg.max_queue <= 0) s->cfg.max_queue = 512;
    if (s->cfg.load_timeout_ns <= 0) s->cfg.load_timeout_ns = 300ll * 1000000000ll;
    if (s->cfg.num_parallel > QFIT_MAX_SEQ) {
        set_err(err, err_len, "num_parallel %d: at most %d sequences per model", s->cfg.num_parallel, QFIT_MAX_SEQ);
        free(s);
        return NULL;
    }
    if (s->cfg.max_memory) s->budget = s->cfg.max_memory;
    else {   /* what `qfit plan` budgets for this machine, less the share it keeps for the OS */
        qfit_plan_machine m;
        qfit_plan_machine_detect(&m);
        const uint64_t b = qfit_plan_budget_bytes(&m), os = qfit_plan_os_reserve_bytes(&m);
        s->budget = b > os ? b - os : b;
    }
    s->base_bytes = QFIT_PLAN_RUNTIME_BASE_BYTES + s->cfg.reserve_bytes;
    s->used = 0;
    s->st.budget_bytes = s->budget;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->store_mu, NULL);
    cond_init_mono(&s->cv);
    cond_init_mono(&s->reaper_cv);
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        set_err(err, err_len, "cannot start the scheduler thread");
        pthread_cond_destroy(&s->cv);
        pthread_cond_destroy(&s->reaper_cv);
        pthread_mutex_destroy(&s->mu);
        pthread_mutex_destroy(&s->store_mu);
        free(s);
        return NULL;
    }
    return s;
}

void qfit_sched_free(qfit_sched *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    pthread_cond_broadcast(&s->reaper_cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->reaper, NULL);
    for (int i = 0; i < s->n_inst; i++) inst_free(s->inst[i]);
    free(s->inst);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->reaper_cv);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->store_mu);
    free(s);
}

/* Open the model and work out its context settings and planned size (no lock held). */
static int inst_prepare(qfit_sched *s, qfit_sched_model *in, qfit_sched_code *code, char *err, size_t err_len)
{
    char e2[512];
    pthread_mutex_lock(&s->store_mu);
    in->cm = qfit_chat_model_open(in->name, s->cfg.store, NULL, e2, sizeof e2);
    qfit_store_model sm;
    if (in->cm && qfit_chat_model_is_stored(in->cm) && s->cfg.store &&
        qfit_store_resolve(s->cfg.store, in->name, &sm, NULL, 0) == 0) {
        FILE *f = fopen(sm.manifest_path, "rb");
        char buf[65536];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f) fclose(f);
        if (n > 0 && n < sizeof buf) {
            qfit_digest d;
            qfit_digest_of(buf, n, &d);
            snprintf(in->digest, sizeof in->digest, "%s", d.hex);
        }
        qfit_store_model_free(&sm);
    }
    pthread_mutex_unlock(&s->store_mu);
    if (!in->cm) {
        *code = strstr(e2, "not found") ? QFIT_SCHED_NOT_FOUND : QFIT_SCHED_ERROR;
        set_err(err, err_len, "%s", e2);
        return -1;
    }
    in->params = qfit_params_clone(qfit_chat_model_modelfile(in->cm)->params);
    if (!in->params) {
        *code = QFIT_SCHED_ERROR;
        set_err(err, err_len, "out of memory");
        return -1;
    }
    in->cp = s->cfg.ctx;
    if (qfit_chat_apply_params(in->params, NULL, &in->cp, e2, sizeof e2) != 0) {
        *code = QFIT_SCHED_INVALID;
        set_err(err, err_len, "%s: %s", in->name, e2);
        return -1;
    }
    if (in->ov_n_ctx > 0) in->cp.n_ctx = in->ov_n_ctx;
    if (in->ov_n_batch > 0) in->cp.n_batch = in->ov_n_batch;
    if (in->ov_n_threads > 0) in->cp.n_threads = in->ov_n_threads;
    if (in->ov_n_gpu != QFIT_SCHED_NGL_UNSET) in->cp.n_gpu_layers = in->ov_n_gpu;
    in->cp.n_seq = s->cfg.num_parallel;
    in->cp.embeddings = false;
    /* the engine's default context, resolved as qfit_context_new will */
    const qfit_gguf *g = qfit_chat_model_gguf(in->cm);
    qfit_hparams hp;
    if (qfit_hparams_from_gguf(g, &hp, e2, sizeof e2) != 0) {
        *code = QFIT_SCHED_ERROR;
        set_err(err, err_len, "%s: %s", in->name, e2);
        return -1;
    }
    if (in->cp.n_ctx <= 0) in->cp.n_ctx = hp.n_ctx_train > 0 && hp.n_ctx_train < 4096 ? (int)hp.n_ctx_train : 4096;
    /* num_gpu the request may not ask of this server: the client's error (400), not a load failure */
    if (in->cp.n_gpu_layers > hp.n_layer + 1 || (in->cp.n_gpu_layers > 0 && !qfit_device_offloads(in->cp.device))) {
        *code = QFIT_SCHED_INVALID;
        if (in->cp.n_gpu_layers > hp.n_layer + 1)
            set_err(err, err_len, "%s: %d GPU layers requested: this model has %d (and the output layer: -1 or 0 .. %d)",
                    in->name, in->cp.n_gpu_layers, hp.n_layer, hp.n_layer + 1);
        else
            set_err(err, err_len, "%s: %d GPU layers requested, but device %s has none to run them on (the server's "
                    "device: QFIT_DEVICE or qfit serve --device)", in->name, in->cp.n_gpu_layers,
                    in->cp.device[0] ? in->cp.device : "cpu");
        return -1;
    }
    if (hp.n_ctx_train > 0 && in->cp.n_ctx > hp.n_ctx_train) {
        *code = QFIT_SCHED_INVALID;
        set_err(err, err_len, "%s: num_ctx %d is more than the model's training context %lld", in->name,
                in->cp.n_ctx, (long long)hp.n_ctx_train);
        return -1;
    }
    qfit_plan_model pm;
    if (qfit_plan_model_from_gguf(qfit_chat_model_gguf_path(in->cm), &pm, e2, sizeof e2) != 0) {
        *code = QFIT_SCHED_ERROR;
        set_err(err, err_len, "%s: cannot plan its memory: %s", in->name, e2);
        return -1;
    }
    qfit_plan_machine mach;
    qfit_plan_machine_custom(s->budget, &mach);
    qfit_plan_settings ps;
    memset(&ps, 0, sizeof ps);
    ps.n_ctx = in->cp.n_ctx;
    ps.kv_type = qfit_plan_kv_setting(in->cp.type_k);
    ps.kv_type_v = qfit_plan_kv_setting(in->cp.type_v);
    ps.flash_attn = in->cp.flash_attn;
    ps.n_parallel = in->cp.n_seq;
    ps.n_batch = in->cp.n_batch;
    /* a Vulkan device: the offloaded layers' side in its memory (a device in host memory,
     * lavapipe: in the budget too), -1 resolved as the context will (all that fit) */
    qfit_device_info di;
    const bool gpu = qfit_device_get(qfit_device_find(in->cp.device), &di) == 0 && di.offload;
    qfit_plan_result r;
    int rc = 0;
    if (gpu) {
        ps.offload = true;
        ps.n_gpu_layers = in->cp.n_gpu_layers;
        /* the planner leaves the reserve of what it is given: the context's budget plus it */
        ps.gpu_mem_bytes = (in->cp.gpu_mem ? in->cp.gpu_mem : qfit_device_gpu_budget(&di)) + QFIT_GPU_RESERVE_BYTES;
        if (ps.n_gpu_layers == -1) {   /* the count the context will take (qfit_vulkan_fit_layers) */
            rc = qfit_plan_fit_layers(&pm, &mach, &ps, &r, e2, sizeof e2);
            if (rc >= 0) ps.n_gpu_layers = rc == 0 ? 0 : r.gpu_output ? -1 : r.n_gpu_layers;
            rc = rc < 0 ? -1 : 0;
        }
        if (di.host_memory) ps.gpu_mem_bytes = 0;   /* lavapipe: its buffers are in the host's budget */
    }
    if (rc == 0) rc = qfit_plan_compute(&pm, &mach, &ps, &r, e2, sizeof e2);
    qfit_plan_model_free(&pm);
    if (rc != 0) {
        *code = QFIT_SCHED_ERROR;
        set_err(err, err_len, "%s: cannot plan its memory: %s", in->name, e2);
        return -1;
    }
    if (r.offload && !r.gpu_unified && r.gpu_verdict == QFIT_VERDICT_NO_FIT) {
        *code = QFIT_SCHED_NO_FIT;
        s->st.refused_no_fit++;
        set_err(err, err_len,
                "%s: %d layers on %s need %.1f MiB of its memory (weights %.1f, KV cache %.1f, buffers %.1f) and it "
                "has %.1f MiB to give; use fewer layers (num_gpu) or -1 for all that fit; `qfit plan %s --device %s "
                "--fit` shows the split", in->name, r.n_gpu_layers, in->cp.device, mib(r.gpu_total_bytes),
                mib(r.gpu_weights_bytes), mib(r.gpu_kv_bytes), mib(r.gpu_compute_bytes), mib(r.gpu_budget_bytes),
                in->name, in->cp.device);
        return -1;
    }
    in->size_bytes = r.process_bytes > r.runtime_base_bytes ? r.process_bytes - r.runtime_base_bytes : r.process_bytes;
    if (r.offload && r.gpu_unified) in->size_bytes += r.gpu_total_bytes;   /* the device's buffers are host memory */
    if (in->size_bytes + s->base_bytes > s->budget) {
        *code = QFIT_SCHED_NO_FIT;
        s->st.refused_no_fit++;
        set_err(err, err_len,
                "%s does not fit in the memory budget: it needs %.1f MiB (weights %.1f, KV cache %.1f for "
                "%d x %d tokens, compute %.1f, runtime %.1f, server connections %.1f) and the budget is %.1f MiB "
                "(QFIT_MAX_MEMORY). "
                "Try a smaller quantization, a smaller num_ctx, fewer parallel sequences (QFIT_NUM_PARALLEL) "
                "or a quantized KV cache (QFIT_KV_CACHE_TYPE=q8_0); `qfit plan %s --fit` lists what fits",
                in->name, mib(in->size_bytes + s->base_bytes), mib(r.weights_resident_bytes), mib(r.kv_bytes),
                in->cp.n_seq, in->cp.n_ctx, mib(r.compute_bytes), mib(r.runtime_bytes), mib(s->cfg.reserve_bytes),
                mib(s->budget), in->name);
        return -1;
    }
    return 0;
}

static int inst_load(qfit_sched_model *in, char *err, size_t err_len)
{
    if (!(in->model = qfit_model_load_for(qfit_chat_model_gguf_path(in->cm), &in->cp, err, err_len))) return -1;
    if (!(in->ctx = qfit_context_new(in->model, &in->cp, err, err_len))) return -1;
    if (!(in->batcher = qfit_batcher_new(in->ctx, qfit_chat_model_tokenizer(in->cm), err, err_len))) return -1;
    if (pthread_create(&in->worker, NULL, worker_main, in) != 0) {
        set_err(err, err_len, "cannot start the model's worker thread");
        return -1;
    }
    in->worker_started = true;
    return 0;
}

static qfit_sched_model *find_inst(qfit_sched *s, const char *name, const qfit_context_params *ov)
{
    const int c = ov ? ov->n_ctx : 0, b = ov ? ov->n_batch : 0, t = ov ? ov->n_threads : 0;
    const int g = ov ? ov->n_gpu_layers : QFIT_SCHED_NGL_UNSET;
    for (int i = 0; i < s->n_inst; i++) {
        qfit_sched_model *in = s->inst[i];
        if (in->state != ST_FAILED && !strcasecmp(in->name, name) && in->ov_n_ctx == c && in->ov_n_batch == b &&
            in->ov_n_threads == t && in->ov_n_gpu == g)
            return in;
    }
    return NULL;
}

/* One instance per model whatever the spelling: "kjv", "kjv:latest" and "KJV" are one
 * stored model ("kjv:latest", Ollama's short display form); a file path stays as it is. */
static const char *canon_name(const char *model, char *buf, size_t cap)
{
    struct stat st;
    qfit_name nm;
    if (stat(model, &st) != 0 && qfit_name_parse(model, &nm, NULL, 0) == 0 && qfit_name_display(&nm, buf, cap) > 0)
        return buf;
    return model;
}

static void hold(qfit_sched_model *in, int64_t keep_alive_ns)
{
    in->holders++;
    in->last_used_ns = now_ns();
    if (keep_alive_ns != QFIT_SCHED_KEEP_ALIVE_UNSET) in->keep_alive_ns = keep_alive_ns;
}

int qfit_sched_acquire(qfit_sched *s, const char *model, const qfit_context_params *ov, int64_t keep_alive_ns,
                       qfit_sched_model **out, uint64_t *load_ns, qfit_sched_code *code, char *err, size_t err_len)
{
    qfit_sched_code dummy;
    if (!code) code = &dummy;
    *code = QFIT_SCHED_OK;
    *out = NULL;
    if (load_ns) *load_ns = 0;
    if (!model || !*model || strlen(model) >= sizeof(((qfit_sched_model *)0)->name)) {
        *code = QFIT_SCHED_INVALID;
        set_err(err, err_len, "model name is empty or too long");
        return -1;
    }
    /* not a file: it must be a valid model name (refused here as a bad request, never a
     * server error; "../x" and other paths that are not files never reach the store) */
    struct stat fst;
    char ename[512];
    if (stat(model, &fst) != 0 && qfit_name_parse(model, &(qfit_name){0}, ename, sizeof ename) != 0) {
        *code = QFIT_SCHED_INVALID;
        set_err(err, err_len, "invalid model name: %s", ename);
        return -1;
    }
    char canon[256];
    model = canon_name(model, canon, sizeof canon);
    const uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)s->cfg.load_timeout_ns;
    pthread_mutex_lock(&s->mu);
    /* already loaded (or being loaded by another request) */
    for (;;) {
        qfit_sched_model *in = find_inst(s, model, ov);
        if (!in) break;
        if (in->state == ST_READY) {
            hold(in, keep_alive_ns);
            pthread_mutex_unlock(&s->mu);
            *out = in;
            return 0;
        }
        struct timespec ts = ts_at(deadline);
        if (qfit_sys_cond_timedwait_mono(&s->cv, &s->mu, &ts) == ETIMEDOUT) {
            pthread_mutex_unlock(&s->mu);
            *code = QFIT_SCHED_BUSY;
            set_err(err, err_len, "%s: timed out waiting for the model to load", model);
            return -1;
        }
    }
    if (s->queue_depth >= s->cfg.max_queue) {
        s->st.refused_busy++;
        pthread_mutex_unlock(&s->mu);
        *code = QFIT_SCHED_BUSY;
        set_err(err, err_len, "server busy: %d requests queued (QFIT_MAX_QUEUE)", s->cfg.max_queue);
        return -1;
    }
    pthread_mutex_unlock(&s->mu);

    qfit_sched_model *in = calloc(1, sizeof *in);
    if (!in) {
        *code = QFIT_SCHED_ERROR;
        set_err(err, err_len, "out of memory");
        return -1;
    }
    in->s = s;
    snprintf(in->name, sizeof in->name, "%s", model);
    in->ov_n_ctx = ov ? ov->n_ctx : 0;
    in->ov_n_batch = ov ? ov->n_batch : 0;
    in->ov_n_threads = ov ? ov->n_threads : 0;
    in->ov_n_gpu = ov ? ov->n_gpu_layers : QFIT_SCHED_NGL_UNSET;
    in->keep_alive_ns = s->cfg.keep_alive_ns;
    in->state = ST_LOADING;
    cond_init_mono(&in->wake);
    pthread_mutex_init(&in->embed_mu, NULL);
    pthread_mutex_init(&in->gvocab_mu, NULL);
    if (inst_prepare(s, in, code, err, err_len) != 0) {
        inst_free(in);
        return -1;
    }

    /* make room: unload idle instances, least recently used first, or wait for one */
    qfit_sched_model *evicted[64];
    int n_evicted = 0;
    pthread_mutex_lock(&s->mu);
    s->queue_depth++;
    for (;;) {
        qfit_sched_model *other = find_inst(s, model, ov);
        if (other) {   /* someone else loaded it meanwhile: use theirs */
            s->queue_depth--;
            pthread_mutex_unlock(&s->mu);
            inst_free(in);
            for (int i = 0; i < n_evicted; i++) inst_free(evicted[i]);
            return qfit_sched_acquire(s, model, ov, keep_alive_ns, out, load_ns, code, err, err_len);
        }
        if (s->used + in->size_bytes + s->base_bytes <= s->budget && s->n_inst < s->cfg.max_loaded) break;
        qfit_sched_model *v = n_evicted < 64 ? lru_evictable(s) : NULL;
        if (v) {
            inst_detach(s, v);
            s->st.unloads_evicted++;
            slog(s, "unloaded %s (evicted: least recently used, to make room for %s: %.1f MiB needed, %.1f of "
                 "%.1f MiB in use, %d of %d models loaded)", v->name, model, mib(in->size_bytes),
                 mib(s->used + s->base_bytes), mib(s->budget), s->n_inst + 1, s->cfg.max_loaded);
            evicted[n_evicted++] = v;
            continue;
        }
        struct timespec ts = ts_at(deadline);
        if (qfit_sys_cond_timedwait_mono(&s->cv, &s->mu, &ts) == ETIMEDOUT) {
            s->queue_depth--;
            s->st.refused_busy++;
            pthread_mutex_unlock(&s->mu);
            *code = QFIT_SCHED_BUSY;
            set_err(err, err_len,
                    "%s: no room after waiting %.0f s: it needs %.1f MiB; %.1f of %.1f MiB are held by %d loaded "
                    "model(s) that are busy or pinned (keep_alive -1)", model,
                    (double)s->cfg.load_timeout_ns / 1e9, mib(in->size_bytes), mib(s->used + s->base_bytes),
                    mib(s->budget), s->n_inst);
            inst_free(in);
            for (int i = 0; i < n_evicted; i++) inst_free(evicted[i]);
            return -1;
        }
    }
    s->queue_depth--;
    if (s->n_inst == s->cap_inst) {
        int nc = s->cap_inst ? 2 * s->cap_inst : 8;
        qfit_sched_model **ni = realloc(s->inst, (size_t)nc * sizeof *ni);
        if (!ni) {
            pthread_mutex_unlock(&s->mu);
            *code = QFIT_SCHED_ERROR;
            set_err(err, err_len, "out of memory");
            inst_free(in);
            for (int i = 0; i < n_evicted; i++) inst_free(evicted[i]);
            return -1;
        }
        s->inst = ni;
        s->cap_inst = nc;
    }
    s->inst[s->n_inst++] = in;
    s->used += in->size_bytes;
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < n_evicted; i++) inst_free(evicted[i]);

    /* load outside the lock; others asking for it wait on s->cv */
    char e2[512];
    const uint64_t tl = now_ns();
    int rc = inst_load(in, e2, sizeof e2);
    pthread_mutex_lock(&s->mu);
    if (rc != 0) {
        in->state = ST_FAILED;
        inst_detach(s, in);
        pthread_mutex_unlock(&s->mu);
        *code = QFIT_SCHED_ERROR;
        set_err(err, err_len, "%s: %s", model, e2);
        inst_free(in);
        return -1;
    }
    in->state = ST_READY;
    s->st.loads++;
    hold(in, keep_alive_ns);
    char where[128] = "";
    if (qfit_device_offloads(in->cp.device)) {   /* the layers on the device, as the context resolved them */
        const int nl = qfit_model_hparams(in->model)->n_layer, ngl = qfit_context_gpu_layers(in->ctx);
        snprintf(where, sizeof where, ", device %s (%d of %d layers there%s)", in->cp.device, ngl < 0 || ngl > nl ? nl : ngl,
                 nl, ngl < 0 || ngl > nl ? ", and the output" : "");
    }
    slog(s, "loaded %s (%s): %.1f MiB planned, context %d x %d sequences%s, %.1f of %.1f MiB in use, %.2f s",
         model, qfit_chat_model_gguf_path(in->cm), mib(in->size_bytes), in->cp.n_ctx, in->cp.n_seq, where,
         mib(s->used + s->base_bytes), mib(s->budget), (double)(now_ns() - tl) / 1e9);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (load_ns) *load_ns = now_ns() - t0;
    *out = in;
    return 0;
}

int qfit_sched_routes(qfit_sched *s, const char *model, json_t **routes, char *err, size_t err_len)
{
    *routes = NULL;
    struct stat st;
    if (!s->cfg.store || stat(model, &st) == 0) return 0;
    int rc = 0;
    qfit_store_model sm;
    pthread_mutex_lock(&s->store_mu);
    if (qfit_store_resolve(s->cfg.store, model, &sm, NULL, 0) == 0) {
        if (qfit_manifest_layer(sm.manifest, QFIT_LAYER_ROUTES)) {
            qfit_modelfile *mf = NULL;
            rc = -1;
            if (qfit_store_model_modelfile(s->cfg.store, &sm, &mf, NULL, err, err_len) == 0 && (*routes = json_array())) {
                for (size_t i = 0; i < mf->nroutes; i++)
                    json_array_append_new(*routes, json_pack("{s:s, s:s}", "rule", mf->routes[i].rule, "model",
                                                             mf->routes[i].model));
                rc = 1;
            }
            qfit_modelfile_free(mf);
        }
        qfit_store_model_free(&sm);
    }
    pthread_mutex_unlock(&s->store_mu);
    return rc;
}

/* s->mu held: after the last holder left */
static qfit_sched_model *on_idle(qfit_sched *s, qfit_sched_model *in)
{
    if (!inst_idle(in)) return NULL;
    in->last_used_ns = now_ns();
    pthread_cond_broadcast(&s->cv);
    if (in->keep_alive_ns == 0) {
        inst_detach(s, in);
        s->st.unloads_requested++;
        slog(s, "unloaded %s (keep_alive 0; %.1f MiB freed)", in->name, mib(in->size_bytes + in->embed_bytes));
        return in;
    }
    if (!inst_pinned(in)) {
        const uint64_t ka = (uint64_t)in->keep_alive_ns;
        in->expires_ns = in->last_used_ns + ka < in->last_used_ns ? UINT64_MAX : in->last_used_ns + ka;
        pthread_cond_signal(&s->reaper_cv);
    }
    return NULL;
}

void qfit_sched_release(qfit_sched_model *in)
{
    if (!in) return;
    qfit_sched *s = in->s;
    pthread_mutex_lock(&s->mu);
    in->holders--;
    qfit_sched_model *gone = on_idle(s, in);
    pthread_mutex_unlock(&s->mu);
    inst_free(gone);
}

int qfit_sched_unload(qfit_sched *s, const char *model)
{
    char canon[256];
    model = canon_name(model, canon, sizeof canon);
    int found = 0;
    qfit_sched_model *gone[64];
    int n_gone = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_inst;) {
        qfit_sched_model *in = s->inst[i];
        if (strcasecmp(in->name, model) != 0 || in->state != ST_READY) {
            i++;
            continue;
        }
        found++;
        in->keep_alive_ns = 0;
        qfit_sched_model *g = n_gone < 64 ? on_idle(s, in) : NULL;
        if (g) gone[n_gone++] = g;   /* detached: the same index now holds the next one */
        else i++;
    }
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < n_gone; i++) inst_free(gone[i]);
    return found;
}

const qfit_chat_model *qfit_sched_model_chat(const qfit_sched_model *m) { return m->cm; }
const char *qfit_sched_model_name(const qfit_sched_model *m) { return m->name; }
int qfit_sched_model_n_ctx(const qfit_sched_model *m) { return qfit_context_n_ctx(m->ctx); }
int qfit_sched_model_gpu_layers(const qfit_sched_model *m) { return qfit_context_gpu_layers(m->ctx); }
int qfit_sched_model_n_vocab(const qfit_sched_model *m) { return (int)qfit_model_hparams(m->model)->n_vocab; }
int qfit_sched_model_n_embd(const qfit_sched_model *m) { return (int)qfit_model_hparams(m->model)->n_embd; }

int qfit_sched_model_gen_params(const qfit_sched_model *m, qfit_gen_params *gp, char *err, size_t err_len)
{
    qfit_gen_params_init(gp);
    return qfit_chat_apply_params(m->params, gp, NULL, err, err_len);
}

const qfit_grammar_vocab *qfit_sched_model_grammar_vocab(qfit_sched_model *m, char *err, size_t err_len)
{
    pthread_mutex_lock(&m->gvocab_mu);
    if (!m->gvocab) m->gvocab = qfit_gen_grammar_vocab(qfit_chat_model_tokenizer(m->cm), err, err_len);
    const qfit_grammar_vocab *v = m->gvocab;
    pthread_mutex_unlock(&m->gvocab_mu);
    return v;
}

/* ------------------------------------------------------------ generation */

qfit_sched_job *qfit_sched_generate(qfit_sched_model *in, const int32_t *prompt, size_t n_prompt,
                                    const qfit_gen_params *p, qfit_sched_code *code, char *err, size_t err_len)
{
    qfit_sched *s = in->s;
    qfit_sched_code dummy;
    if (!code) code = &dummy;
    *code = QFIT_SCHED_OK;
    const int n_ctx = qfit_context_n_ctx(in->ctx);
    if (n_prompt == 0) {
        *code = QFIT_SCHED_INVALID;
        set_err(err, err_len, "empty prompt");
        return NULL;
    }
    if (n_prompt >= (size_t)n_ctx) {
        pthread_mutex_lock(&s->mu);
        s->st.refused_too_long++;
        pthread_mutex_unlock(&s->mu);
        *code = QFIT_SCHED_INVALID;
        set_err(err, err_len, "the prompt is %zu tokens and the context is %d tokens (num_ctx): it leaves no room "
                "for an answer", n_prompt, n_ctx);
        return NULL;
    }
    qfit_sched_job *j = calloc(1, sizeof *j);
    if (!j || !(j->prompt = malloc(n_prompt * sizeof *j->prompt))) {
        free(j);
        *code = QFIT_SCHED_ERROR;
        set_err(err, err_len, "out of memory");
        return NULL;
    }
    memcpy(j->prompt, prompt, n_prompt * sizeof *prompt);
    j->n_prompt = n_prompt;
    j->gp = *p;
    j->in = in;
    atomic_init(&j->cancel, false);
    j->cb.on_text = job_on_text;
    j->cb.on_token = p->logprobs ? job_on_token : NULL;
    j->cb.should_abort = job_should_abort;
    j->cb.user = j;
    pthread_mutex_init(&j->mu, NULL);
    cond_init_mono(&j->cv);
    pthread_mutex_lock(&s->mu);
    if (s->queue_depth >= s->cfg.max_queue) {
        s->st.refused_busy++;
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_destroy(&j->mu);
        pthread_cond_destroy(&j->cv);
        free(j->prompt);
        free(j);
        *code = QFIT_SCHED_BUSY;
        set_err(err, err_len, "server busy: %d requests queued (QFIT_MAX_QUEUE)", s->cfg.max_queue);
        return NULL;
    }
    in->holders++;   /* the job holds the instance until freed */
    if (in->pending_tail) in->pending_tail->next = j;
    else in->pending = j;
    in->pending_tail = j;
    in->n_pending++;
    s->queue_depth++;
    pthread_cond_signal(&in->wake);
    pthread_mutex_unlock(&s->mu);
    return j;
}

int qfit_sched_job_next(qfit_sched_job *j, int timeout_ms, qfit_sched_event *ev)
{
    pthread_mutex_lock(&j->mu);
    free(j->cur_data);
    j->cur_data = NULL;
    if (j->done_read) {
        pthread_mutex_unlock(&j->mu);
        return -1;
    }
    if (j->head == j->n_evs && !j->done) {
        struct timespec ts = ts_at(now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000ull);
        while (j->head == j->n_evs && !j->done)
            if (pthread_cond_timedwait(&j->cv, &j->mu, &ts) == ETIMEDOUT) break;
    }
    if (j->head < j->n_evs) {
        struct job_ev *e = &j->evs[j->head++];
        *ev = e->ev;
        j->cur_data = e->data;
        if (ev->kind == QFIT_SCHED_EV_TEXT) ev->text = e->data ? e->data : "";
        else {
            ev->token.piece = e->data ? e->data : "";
        }
        if (j->head == j->n_evs) j->head = j->n_evs = 0;
        pthread_mutex_unlock(&j->mu);
        return 1;
    }
    if (j->done) {
        memset(ev, 0, sizeof *ev);
        ev->kind = QFIT_SCHED_EV_DONE;
        j->done_read = true;
        pthread_mutex_unlock(&j->mu);
        return 1;
    }
    pthread_mutex_unlock(&j->mu);
    return 0;
}

const qfit_gen_result *qfit_sched_job_result(const qfit_sched_job *j) { return &j->res; }

void qfit_sched_job_cancel(qfit_sched_job *j)
{
    if (j) atomic_store(&j->cancel, true);
}

void qfit_sched_job_free(qfit_sched_job *j)
{
    if (!j) return;
    qfit_sched_model *in = j->in;
    qfit_sched *s = in->s;
    atomic_store(&j->cancel, true);
    /* a job still pending is taken out of the queue; a running one ends at the next step */
    pthread_mutex_lock(&s->mu);
    for (qfit_sched_job **pp = &in->pending, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            if (in->pending_tail == j) in->pending_tail = prev;
            in->n_pending--;
            s->queue_depth--;
            s->st.cancellations++;
            qfit_gen_result r;
            memset(&r, 0, sizeof r);
            r.reason = QFIT_GEN_CANCELLED;
            job_finish(j, &r);
            break;
        }
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&j->mu);
    while (!j->done) pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
    for (size_t i = j->head; i < j->n_evs; i++) free(j->evs[i].data);
    free(j->evs);
    free(j->cur_data);
    free(j->prompt);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
    qfit_sched_release(in);
}

/* ------------------------------------------------------------ embeddings */

int qfit_sched_embed(qfit_sched_model *in, const char *const *inputs, size_t n, const qfit_embed_params *p,
                     float *out, qfit_embed_item *items, qfit_embed_result *res, qfit_sched_code *code,
                     char *err, size_t err_len)
{
    qfit_sched *s = in->s;
    qfit_sched_code dummy;
    if (!code) code = &dummy;
    *code = QFIT_SCHED_OK;
    pthread_mutex_lock(&in->embed_mu);
    if (!in->ectx) {
        qfit_context_params cp = in->cp;
        cp.n_seq = 1;
        cp.embeddings = true;
        const uint64_t extra = qfit_context_alloc_bytes(in->model, &cp);   /* as qfit_context_new sizes it */
        pthread_mutex_lock(&s->mu);
        if (s->used + extra + s->base_bytes > s->budget) {
            pthread_mutex_unlock(&s->mu);
            pthread_mutex_unlock(&in->embed_mu);
            *code = QFIT_SCHED_NO_FIT;
            set_err(err, err_len, "%s: no room for an embedding context (%.1f MiB; %.1f of %.1f MiB in use)",
                    in->name, mib(extra), mib(s->used + s->base_bytes), mib(s->budget));
            return -1;
        }
        s->used += extra;
        in->embed_bytes = extra;
        pthread_mutex_unlock(&s->mu);
        char e2[512];
        if (!(in->ectx = qfit_context_new(in->model, &cp, e2, sizeof e2))) {
            pthread_mutex_lock(&s->mu);
            s->used -= extra;
            in->embed_bytes = 0;
            pthread_mutex_unlock(&s->mu);
            pthread_mutex_unlock(&in->embed_mu);
            *code = QFIT_SCHED_ERROR;
            set_err(err, err_len, "%s: %s", in->name, e2);
            return -1;
        }
    }
    int rc = qfit_embed(in->ectx, qfit_chat_model_tokenizer(in->cm), inputs, n, p, out, items, res, err, err_len);
    pthread_mutex_unlock(&in->embed_mu);
    if (rc != 0) *code = QFIT_SCHED_INVALID;
    return rc;
}

/* ------------------------------------------------------------------ state */

int qfit_sched_ps(qfit_sched *s, qfit_sched_ps_entry *out, int cap)
{
    pthread_mutex_lock(&s->mu);
    const int n = s->n_inst;
    /* most recently used first */
    int *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    int k = 0;
    if (order) {
        for (int i = 0; i < n; i++) order[i] = i;
        for (int i = 1; i < n; i++)
            for (int q = i; q > 0 && s->inst[order[q]]->last_used_ns > s->inst[order[q - 1]]->last_used_ns; q--) {
                int t = order[q];
                order[q] = order[q - 1];
                order[q - 1] = t;
            }
        const uint64_t now = now_ns();
        const int64_t wall = wall_ns();
        for (int i = 0; i < n && k < cap; i++) {
            const qfit_sched_model *in = s->inst[order[i]];
            if (in->state != ST_READY) continue;
            qfit_sched_ps_entry *e = &out[k++];
            memset(e, 0, sizeof *e);
            snprintf(e->name, sizeof e->name, "%s", in->name);
            snprintf(e->path, sizeof e->path, "%s", qfit_chat_model_gguf_path(in->cm));
            snprintf(e->digest, sizeof e->digest, "%s", in->digest);
            e->size_bytes = in->size_bytes + in->embed_bytes;
            e->n_ctx = in->cp.n_ctx;
            e->n_seq = in->cp.n_seq;
            e->holders = in->holders;
            e->running = in->n_pending + in->n_running;
            e->pinned = inst_pinned(in);
            e->batch = in->bstats;
            if (e->pinned) e->expires_unix_ns = INT64_MAX;
            else if (in->holders > 0) e->expires_unix_ns = 0;
            else e->expires_unix_ns = wall + (int64_t)(in->expires_ns > now ? in->expires_ns - now : 0);
        }
        free(order);
    }
    pthread_mutex_unlock(&s->mu);
    return k;
}

void qfit_sched_get_stats(qfit_sched *s, qfit_sched_stats *st)
{
    pthread_mutex_lock(&s->mu);
    *st = s->st;
    st->queue_depth = s->queue_depth;
    st->used_bytes = s->used + s->base_bytes;
    st->budget_bytes = s->budget;
    pthread_mutex_unlock(&s->mu);
}
