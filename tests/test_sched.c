/* Suite `sched`: the model scheduler (qfit/sched.h) on the shared model's F32 and F16
 * files (two models as far as the scheduler is concerned). References:
 *   - generation through the scheduler gives the tokens qfit_generate gives on a fresh
 *     one-sequence context (F32 KV cache: the batch and the single run are the same
 *     arithmetic per row; greedy), and its TEXT events concatenate to the same text;
 *   - two requests at once on num_parallel 2 each give their single-run tokens;
 *   - memory: the planner's size of an instance decides what is loaded; with a budget
 *     for one model, loading the second unloads the idle first (LRU, logged with its
 *     cause); a pinned one is never unloaded for room (the request fails after the
 *     wait); a model bigger than the budget is refused before anything is allocated;
 *   - keep-alive: 0 unloads at release; a short one expires; unload by name;
 *   - queue: beyond max_queue a request fails at once; a cancelled job ends with at most
 *     one more token; a prompt the context cannot hold is refused naming both numbers;
 *   - embeddings through the scheduler equal qfit_embed on a fresh context. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qfit/config.h"
#include "qfit/embed.h"
#include "qfit/generate.h"
#include "qfit/model.h"
#include "qfit/plan.h"
#include "qfit/quant.h"
#include "qfit/sched.h"
#include "qfit/tokenizer.h"
#include "util/testutil.h"

#define F32_REL "models/kjv-llama-7m-f32.gguf"
#define F16_REL "models/kjv-llama-7m-f16.gguf"
#define MAXT 512

static const char *model_path(const char *rel)
{
    const char *p = tu_shared_path(rel);
    if (!p) cr_skip_test("shared data not found");
    return strdup(p);
}

/* log lines kept for assertions */
typedef struct {
    char text[8192];
    size_t len;
} logbuf;

static void log_line(void *u, const char *line)
{
    logbuf *l = u;
    int n = snprintf(l->text + l->len, sizeof l->text - l->len, "%s\n", line);
    if (n > 0 && l->len + (size_t)n < sizeof l->text) l->len += (size_t)n;
}

static qfit_sched *sched_new(uint64_t max_memory, int num_parallel, int max_queue, logbuf *lb)
{
    qfit_sched_config c;
    qfit_sched_config_init(&c);
    c.max_memory = max_memory ? max_memory : (8ull << 30);
    c.num_parallel = num_parallel;
    c.max_queue = max_queue;
    c.load_timeout_ns = 10ll * 1000000000ll;   /* a bug that waits fails the test instead of hanging it */
    c.ctx.n_ctx = 256;
    c.ctx.n_batch = 64;
    c.ctx.n_threads = 2;
    c.ctx.type_k = c.ctx.type_v = QFIT_TYPE_F32;
    c.log = lb ? log_line : NULL;
    c.log_user = lb;
    char err[512];
    qfit_sched *s = qfit_sched_new(&c, err, sizeof err);
    cr_assert(s, "%s", err);
    return s;
}

static qfit_sched_model *acquire(qfit_sched *s, const char *path, int64_t keep_alive)
{
    qfit_sched_model *m = NULL;
    qfit_sched_code code;
    char err[1024];
    int rc = qfit_sched_acquire(s, path, NULL, keep_alive, &m, NULL, &code, err, sizeof err);
    cr_assert_eq(rc, 0, "acquire %s: %s", path, err);
    return m;
}

static size_t tokenize(const qfit_sched_model *m, const char *text, int32_t *out)
{
    const qfit_tokenizer *tok = qfit_chat_model_tokenizer(qfit_sched_model_chat(m));
    int32_t *ids;
    size_t n;
    cr_assert_eq(qfit_tokenize_alloc(tok, text, strlen(text), true, false, &ids, &n), 0);
    cr_assert_lt(n, (size_t)MAXT);
    memcpy(out, ids, n * sizeof *ids);
    free(ids);
    return n;
}

static qfit_gen_params greedy(int num_predict)
{
    qfit_gen_params p;
    qfit_gen_params_init(&p);
    p.sampling.temperature = 0.0f;
    p.num_predict = num_predict;
    p.logprobs = true;   /* TOKEN events */
    return p;
}

typedef struct {
    int32_t ids[MAXT];
    int n;
    char text[8192];
    size_t len;
} cap;

static int cap_token(void *u, const qfit_gen_token *t)
{
    cap *c = u;
    if (c->n < MAXT) c->ids[c->n++] = t->id;
    return 0;
}

static int cap_text(void *u, const char *s, size_t n)
{
    cap *c = u;
    if (c->len + n < sizeof c->text) {
        memcpy(c->text + c->len, s, n);
        c->len += n;
    }
    return 0;
}

/* the reference: qfit_generate on a fresh one-sequence CPU context of the same settings,
 * with KV cache type kv */
static void alone_kv(const char *path, const int32_t *prompt, size_t n, const qfit_gen_params *p, cap *out, int kv)
{
    char err[256];
    qfit_model *m = qfit_model_load(path, err, sizeof err);
    cr_assert(m, "%s", err);
    qfit_tokenizer *tok = qfit_tokenizer_from_gguf(qfit_model_gguf(m), err, sizeof err);
    cr_assert(tok, "%s", err);
    qfit_context_params cp = qfit_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 64;
    cp.n_threads = 2;
    cp.type_k = cp.type_v = kv;
    qfit_context *c = qfit_context_new(m, &cp, err, sizeof err);
    cr_assert(c, "%s", err);
    qfit_gen_callbacks cb = {.on_token = cap_token, .on_text = cap_text, .user = out};
    qfit_gen_result res;
    cr_assert_eq(qfit_generate(c, tok, prompt, n, p, &cb, &res), 0, "%s", res.error);
    qfit_context_free(c);
    qfit_tokenizer_free(tok);
    qfit_model_free(m);
}

static void alone(const char *path, const int32_t *prompt, size_t n, const qfit_gen_params *p, cap *out)
{
    alone_kv(path, prompt, n, p, out, QFIT_TYPE_F32);
}

/* read a job to its end; returns the result */
static qfit_gen_result drain(qfit_sched_job *j, cap *out)
{
    qfit_sched_event ev;
    for (int guard = 0; guard < 100000; guard++) {
        int r = qfit_sched_job_next(j, 30000, &ev);
        cr_assert_neq(r, 0, "no event within 30 s");
        cr_assert_eq(r, 1);
        if (ev.kind == QFIT_SCHED_EV_DONE) return *qfit_sched_job_result(j);
        if (ev.kind == QFIT_SCHED_EV_TEXT) cap_text(out, ev.text, ev.len);
        if (ev.kind == QFIT_SCHED_EV_TOKEN) cap_token(out, &ev.token);
    }
    cr_assert_fail("job never ended");
    return *qfit_sched_job_result(j);
}

static qfit_sched_job *submit(qfit_sched_model *m, const int32_t *ids, size_t n, const qfit_gen_params *p)
{
    qfit_sched_code code;
    char err[512];
    qfit_sched_job *j = qfit_sched_generate(m, ids, n, p, &code, err, sizeof err);
    cr_assert(j, "generate: %s", err);
    return j;
}

static int n_loaded(qfit_sched *s, qfit_sched_ps_entry *e, int cap_n)
{
    return qfit_sched_ps(s, e, cap_n);
}

Test(sched, generate_equals_the_engine_alone)
{
    const char *path = model_path(F32_REL);
    qfit_sched *s = sched_new(0, 1, 0, NULL);
    qfit_sched_model *m = acquire(s, path, QFIT_SCHED_KEEP_ALIVE_UNSET);
    int32_t ids[MAXT];
    size_t n = tokenize(m, "In the beginning God created", ids);
    qfit_gen_params p = greedy(24);
    cap got = {0}, want = {0};
    qfit_sched_job *j = submit(m, ids, n, &p);
    qfit_gen_result r = drain(j, &got);
    qfit_sched_job_free(j);
    alone(path, ids, n, &p, &want);
    cr_assert_eq(r.reason, QFIT_GEN_LENGTH, "reason %s: %s", qfit_gen_reason_name(r.reason), r.error);
    cr_assert_eq(r.prompt_eval_count, (int)n);
    cr_assert_eq(got.n, 24);
    cr_assert_eq(want.n, got.n);
    cr_assert_arr_eq(got.ids, want.ids, (size_t)got.n * sizeof *got.ids);
    cr_assert_eq(got.len, want.len);
    cr_assert_arr_eq(got.text, want.text, got.len, "text: '%.*s' vs '%.*s'", (int)got.len, got.text,
                     (int)want.len, want.text);
    /* the same prompt again: the cached prefix is reused (only the last token evaluated) */
    cap again = {0};
    j = submit(m, ids, n, &p);
    r = drain(j, &again);
    qfit_sched_job_free(j);
    cr_assert_eq(r.prompt_eval_count, 1, "prompt_eval_count %d: the cached prefix was not reused",
                 r.prompt_eval_count);
    cr_assert_arr_eq(again.ids, want.ids, (size_t)want.n * sizeof *want.ids);
    qfit_sched_release(m);
    qfit_sched_free(s);
    free((void *)path);
}

Test(sched, two_requests_at_once_each_as_alone)
{
    const char *path = model_path(F32_REL);
    qfit_sched *s = sched_new(0, 2, 0, NULL);
    qfit_sched_model *m = acquire(s, path, QFIT_SCHED_KEEP_ALIVE_UNSET);
    int32_t a[MAXT], b[MAXT];
    size_t na = tokenize(m, "And the earth was without form", a);
    size_t nb = tokenize(m, "The LORD is my shepherd; I shall not", b);
    qfit_gen_params p = greedy(20);
    qfit_sched_job *ja = submit(m, a, na, &p), *jb = submit(m, b, nb, &p);
    cap ga = {0}, gb = {0}, wa = {0}, wb = {0};
    /* read both as they come */
    bool da = false, db = false;
    qfit_sched_event ev;
    while (!da || !db) {
        if (!da && qfit_sched_job_next(ja, 10, &ev) == 1) {
            if (ev.kind == QFIT_SCHED_EV_DONE) da = true;
            else if (ev.kind == QFIT_SCHED_EV_TOKEN) cap_token(&ga, &ev.token);
        }
        if (!db && qfit_sched_job_next(jb, 10, &ev) == 1) {
            if (ev.kind == QFIT_SCHED_EV_DONE) db = true;
            else if (ev.kind == QFIT_SCHED_EV_TOKEN) cap_token(&gb, &ev.token);
        }
    }
    qfit_sched_ps_entry e[4];
    cr_assert_eq(n_loaded(s, e, 4), 1);
    cr_assert_eq(e[0].n_seq, 2);
    qfit_sched_job_free(ja);
    qfit_sched_job_free(jb);
    alone(path, a, na, &p, &wa);
    alone(path, b, nb, &p, &wb);
    cr_assert_eq(ga.n, wa.n);
    cr_assert_eq(gb.n, wb.n);
    cr_assert_arr_eq(ga.ids, wa.ids, (size_t)wa.n * sizeof *wa.ids);
    cr_assert_arr_eq(gb.ids, wb.ids, (size_t)wb.n * sizeof *wb.ids);
    qfit_sched_release(m);
    qfit_sched_free(s);
    free((void *)path);
}

/* the planner's size of one instance of path (as the scheduler plans it) */
static uint64_t instance_size(const char *path)
{
    qfit_sched *s = sched_new(0, 1, 0, NULL);
    qfit_sched_model *m = acquire(s, path, QFIT_SCHED_KEEP_ALIVE_UNSET);
    qfit_sched_ps_entry e[2];
    cr_assert_eq(qfit_sched_ps(s, e, 2), 1);
    uint64_t size = e[0].size_bytes;
    qfit_sched_release(m);
    qfit_sched_free(s);
    return size;
}

Test(sched, budget_for_one_unloads_the_idle_one)
{
    const char *f32 = model_path(F32_REL), *f16 = model_path(F16_REL);
    const uint64_t s32 = instance_size(f32), s16 = instance_size(f16);
    cr_assert_gt(s32, s16, "an F32 model plans bigger than its F16 copy");
    logbuf lb = {0};
    /* room for the F32 instance alone (plus the runtime), not for both */
    qfit_sched *s = sched_new(s32 + QFIT_PLAN_RUNTIME_BASE_BYTES, 1, 0, &lb);
    qfit_sched_release(acquire(s, f32, QFIT_SCHED_KEEP_ALIVE_UNSET));
    qfit_sched_ps_entry e[4];
    cr_assert_eq(n_loaded(s, e, 4), 1, "the F32 model stays loaded (keep-alive 5 minutes)");
    qfit_sched_model *m = acquire(s, f16, QFIT_SCHED_KEEP_ALIVE_UNSET);
    cr_assert_eq(n_loaded(s, e, 4), 1);
    cr_assert_str_eq(e[0].name, f16);
    cr_assert(strstr(lb.text, "evicted"), "log: %s", lb.text);
    qfit_sched_stats st;
    qfit_sched_get_stats(s, &st);
    cr_assert_eq(st.unloads_evicted, 1);
    cr_assert_leq(st.used_bytes, st.budget_bytes);
    qfit_sched_release(m);
    qfit_sched_free(s);
    free((void *)f32);
    free((void *)f16);
}

Test(sched, pinned_model_is_never_unloaded_for_room)
{
    const char *f32 = model_path(F32_REL), *f16 = model_path(F16_REL);
    const uint64_t s32 = instance_size(f32);
    qfit_sched_config c;
    qfit_sched_config_init(&c);
    c.max_memory = s32 + QFIT_PLAN_RUNTIME_BASE_BYTES;
    c.ctx.n_ctx = 256;
    c.ctx.n_batch = 64;
    c.ctx.n_threads = 2;
    c.ctx.type_k = c.ctx.type_v = QFIT_TYPE_F32;
    c.load_timeout_ns = 300 * 1000000ll;
    char err[1024];
    qfit_sched *s = qfit_sched_new(&c, err, sizeof err);
    cr_assert(s, "%s", err);
    qfit_sched_release(acquire(s, f32, QFIT_FOREVER_NS));
    qfit_sched_model *m = NULL;
    qfit_sched_code code;
    int rc = qfit_sched_acquire(s, f16, NULL, QFIT_SCHED_KEEP_ALIVE_UNSET, &m, NULL, &code, err, sizeof err);
    cr_assert_eq(rc, -1, "the pinned model was unloaded to make room");
    cr_assert_eq(code, QFIT_SCHED_BUSY);
    cr_assert(strstr(err, "pinned"), "%s", err);
    qfit_sched_ps_entry e[4];
    cr_assert_eq(qfit_sched_ps(s, e, 4), 1);
    cr_assert_str_eq(e[0].name, f32);
    cr_assert(e[0].pinned);
    qfit_sched_free(s);
    free((void *)f32);
    free((void *)f16);
}

Test(sched, too_big_for_the_budget_is_refused_with_the_numbers)
{
    const char *f32 = model_path(F32_REL);
    qfit_sched *s = sched_new(4ull << 20, 1, 0, NULL);
    qfit_sched_model *m = NULL;
    qfit_sched_code code;
    char err[1024];
    const size_t rss0 = qfit_process_rss_bytes();
    cr_assert_eq(qfit_sched_acquire(s, f32, NULL, QFIT_SCHED_KEEP_ALIVE_UNSET, &m, NULL, &code, err, sizeof err), -1);
    cr_assert_eq(code, QFIT_SCHED_NO_FIT);
    cr_assert(strstr(err, "does not fit") && strstr(err, "weights") && strstr(err, "KV cache") &&
              strstr(err, "4.0 MiB"), "%s", err);
    /* refused before loading: the weights (28 MiB) were never read in */
    cr_assert_lt(qfit_process_rss_bytes(), rss0 + (16u << 20));
    qfit_sched_ps_entry e[2];
    cr_assert_eq(qfit_sched_ps(s, e, 2), 0);
    qfit_sched_free(s);
    free((void *)f32);
}

Test(sched, keep_alive_zero_expiry_and_unload_by_name)
{
    const char *f32 = model_path(F32_REL);
    logbuf lb = {0};
    qfit_sched *s = sched_new(0, 1, 0, &lb);
    qfit_sched_ps_entry e[2];
    /* 0: unloaded when released */
    qfit_sched_release(acquire(s, f32, 0));
    cr_assert_eq(qfit_sched_ps(s, e, 2), 0, "keep_alive 0 left the model loaded");
    /* a short keep-alive expires (bounded wait) */
    qfit_sched_release(acquire(s, f32, 100 * 1000000ll));
    cr_assert_eq(qfit_sched_ps(s, e, 2), 1);
    cr_assert_gt(e[0].expires_unix_ns, 0);
    for (int i = 0; i < 500 && qfit_sched_ps(s, e, 2) > 0; i++) nanosleep(&(struct timespec){0, 10000000}, NULL);
    cr_assert_eq(qfit_sched_ps(s, e, 2), 0, "the keep-alive never expired");
    cr_assert(strstr(lb.text, "expired"), "log: %s", lb.text);
    /* unload by name: held -> stays until released */
    qfit_sched_model *m = acquire(s, f32, QFIT_FOREVER_NS);
    cr_assert_eq(qfit_sched_unload(s, f32), 1);
    cr_assert_eq(qfit_sched_ps(s, e, 2), 1, "unloaded while held");
    qfit_sched_release(m);
    cr_assert_eq(qfit_sched_ps(s, e, 2), 0, "still loaded after the last release");
    /* omitting keep_alive keeps the instance's value: pinned stays pinned */
    qfit_sched_release(acquire(s, f32, QFIT_FOREVER_NS));
    qfit_sched_release(acquire(s, f32, QFIT_SCHED_KEEP_ALIVE_UNSET));
    cr_assert_eq(qfit_sched_ps(s, e, 2), 1);
    cr_assert(e[0].pinned);
    qfit_sched_free(s);
    free((void *)f32);
}

Test(sched, full_queue_refused_at_once_and_cancel_ends_quickly)
{
    const char *f32 = model_path(F32_REL);
    qfit_sched *s = sched_new(0, 1, 1, NULL);
    qfit_sched_model *m = acquire(s, f32, QFIT_SCHED_KEEP_ALIVE_UNSET);
    int32_t ids[MAXT];
    size_t n = tokenize(m, "In the beginning", ids);
    qfit_gen_params p = greedy(-1);
    p.ignore_eos = true;
    qfit_sched_job *a = submit(m, ids, n, &p);
    qfit_sched_event ev;
    cap ca = {0};
    while (ca.n < 2) {   /* a is running */
        cr_assert_eq(qfit_sched_job_next(a, 30000, &ev), 1);
        cr_assert_neq(ev.kind, QFIT_SCHED_EV_DONE);
        if (ev.kind == QFIT_SCHED_EV_TOKEN) cap_token(&ca, &ev.token);
    }
    qfit_sched_job *b = submit(m, ids, n, &p);   /* waits: the one sequence is busy */
    qfit_sched_code code;
    char err[512];
    cr_assert_null(qfit_sched_generate(m, ids, n, &p, &code, err, sizeof err), "a third request was queued");
    cr_assert_eq(code, QFIT_SCHED_BUSY);
    cr_assert(strstr(err, "busy"), "%s", err);
    /* cancel a: at most one more token after the cancel. The tokens produced while this
     * thread was submitting b are already queued: read them first (timeout 0), so that
     * only what comes after the cancel is counted (under a sanitizer on a busy machine
     * the model ran ahead by several tokens here) */
    while (qfit_sched_job_next(a, 0, &ev) == 1) cr_assert_neq(ev.kind, QFIT_SCHED_EV_DONE);
    qfit_sched_job_cancel(a);
    int after = 0;
    for (;;) {
        cr_assert_eq(qfit_sched_job_next(a, 30000, &ev), 1);
        if (ev.kind == QFIT_SCHED_EV_DONE) break;
        if (ev.kind == QFIT_SCHED_EV_TOKEN) after++;
    }
    cr_assert_eq(qfit_sched_job_result(a)->reason, QFIT_GEN_CANCELLED);
    cr_assert_leq(after, 2, "%d tokens after the cancel (one in flight while the queue was read + one)", after);
    qfit_sched_job_free(a);
    /* b gets the sequence; freeing it unread cancels it */
    cr_assert_eq(qfit_sched_job_next(b, 30000, &ev), 1);
    qfit_sched_job_free(b);
    qfit_sched_stats st;
    qfit_sched_get_stats(s, &st);
    cr_assert_eq(st.refused_busy, 1);
    cr_assert_geq(st.cancellations, 2);
    cr_assert_eq(st.queue_depth, 0);
    qfit_sched_release(m);
    qfit_sched_free(s);
    free((void *)f32);
}

Test(sched, prompt_the_context_cannot_hold_is_refused)
{
    const char *f32 = model_path(F32_REL);
    qfit_sched *s = sched_new(0, 1, 0, NULL);
    qfit_sched_model *m = acquire(s, f32, QFIT_SCHED_KEEP_ALIVE_UNSET);
    int32_t ids[300];
    for (int i = 0; i < 300; i++) ids[i] = 100 + i % 50;
    qfit_gen_params p = greedy(8);
    qfit_sched_code code;
    char err[512];
    cr_assert_null(qfit_sched_generate(m, ids, 300, &p, &code, err, sizeof err));
    cr_assert_eq(code, QFIT_SCHED_INVALID);
    cr_assert(strstr(err, "300") && strstr(err, "256"), "%s", err);
    qfit_sched_release(m);
    qfit_sched_free(s);
    free((void *)f32);
}

Test(sched, embeddings_equal_a_fresh_context)
{
    const char *f32 = model_path(F32_REL);
    qfit_sched *s = sched_new(0, 1, 0, NULL);
    qfit_sched_model *m = acquire(s, f32, QFIT_SCHED_KEEP_ALIVE_UNSET);
    const char *in[] = {"In the beginning", "God is love"};
    const int d = qfit_sched_model_n_embd(m);
    float *got = malloc(2 * (size_t)d * sizeof *got), *want = malloc(2 * (size_t)d * sizeof *want);
    qfit_embed_params ep;
    qfit_embed_params_init(&ep);
    qfit_embed_item items[2];
    qfit_embed_result res;
    qfit_sched_code code;
    char err[512];
    cr_assert_eq(qfit_sched_embed(m, in, 2, &ep, got, items, &res, &code, err, sizeof err), 0, "%s", err);
    /* reference */
    qfit_model *mm = qfit_model_load(f32, err, sizeof err);
    cr_assert(mm, "%s", err);
    qfit_tokenizer *tok = qfit_tokenizer_from_gguf(qfit_model_gguf(mm), err, sizeof err);
    qfit_context_params cp = qfit_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 64;
    cp.n_threads = 2;
    cp.type_k = cp.type_v = QFIT_TYPE_F32;
    cp.embeddings = true;
    qfit_context *c = qfit_context_new(mm, &cp, err, sizeof err);
    cr_assert(c, "%s", err);
    cr_assert_eq(qfit_embed(c, tok, in, 2, &ep, want, items, &res, err, sizeof err), 0, "%s", err);
    cr_assert_arr_eq(got, want, 2 * (size_t)d * sizeof *got);
    qfit_sched_ps_entry e[2];
    cr_assert_eq(qfit_sched_ps(s, e, 2), 1);
    cr_assert_gt(e[0].size_bytes, instance_size(f32), "the embedding context is counted in the size");
    qfit_context_free(c);
    qfit_tokenizer_free(tok);
    qfit_model_free(mm);
    free(got);
    free(want);
    qfit_sched_release(m);
    qfit_sched_free(s);
    free((void *)f32);
}

/* num_gpu (a request's option, as Ollama's) is the context's layer count on the server's
 * device (QFIT_DEVICE): the instance runs that many layers on the Vulkan device, generates
 * what the engine alone generates (the F32 model: the same greedy tokens), reuses its cached
 * prefix on the device; another num_gpu is another instance; a count the model does not
 * have is refused naming it. */
Test(sched, num_gpu_offloads_on_the_device, .timeout = 600)
{
    const char *dev = tu_vulkan_device();
    const char *path = model_path(F32_REL);
    qfit_sched_config c;
    qfit_sched_config_init(&c);
    c.max_memory = 8ull << 30;
    c.num_parallel = 1;
    c.load_timeout_ns = 60ll * 1000000000ll;
    c.ctx.n_ctx = 256;
    c.ctx.n_batch = 64;
    c.ctx.n_threads = 2;
    snprintf(c.ctx.device, sizeof c.ctx.device, "%s", dev);
    char err[1024];
    qfit_sched *s = qfit_sched_new(&c, err, sizeof err);
    cr_assert(s, "%s", err);
    qfit_context_params ov;
    memset(&ov, 0, sizeof ov);
    ov.n_gpu_layers = 4;
    qfit_sched_model *m = NULL;
    qfit_sched_code code;
    cr_assert_eq(qfit_sched_acquire(s, path, &ov, QFIT_SCHED_KEEP_ALIVE_UNSET, &m, NULL, &code, err, sizeof err), 0,
                 "%s", err);
    cr_expect_eq(qfit_sched_model_gpu_layers(m), 4);
    int32_t ids[MAXT];
    size_t n = tokenize(m, "In the beginning God created", ids);
    qfit_gen_params p = greedy(16);
    p.logprobs = true;
    cap got = {0}, want = {0}, again = {0};
    qfit_sched_job *j = submit(m, ids, n, &p);
    qfit_gen_result r = drain(j, &got);
    qfit_sched_job_free(j);
    alone_kv(path, ids, n, &p, &want, QFIT_TYPE_F16);   /* the Vulkan backend's cache is f16 */
    cr_assert_eq(got.n, 16, "%s", r.error);
    cr_expect_arr_eq(got.ids, want.ids, 16 * sizeof *got.ids, "'%.*s' vs '%.*s'", (int)got.len, got.text,
                     (int)want.len, want.text);
    j = submit(m, ids, n, &p);
    r = drain(j, &again);
    qfit_sched_job_free(j);
    cr_expect_eq(r.prompt_eval_count, 1, "the cached prefix was not reused (%d evaluated)", r.prompt_eval_count);
    cr_expect_arr_eq(again.ids, want.ids, 16 * sizeof *again.ids);
    qfit_sched_release(m);
    /* another count: another instance, on the device as asked */
    ov.n_gpu_layers = 9;
    cr_assert_eq(qfit_sched_acquire(s, path, &ov, QFIT_SCHED_KEEP_ALIVE_UNSET, &m, NULL, &code, err, sizeof err), 0,
                 "%s", err);
    cr_expect_eq(qfit_sched_model_gpu_layers(m), 9);
    qfit_sched_ps_entry e[4];
    cr_expect_eq(n_loaded(s, e, 4), 2);
    qfit_sched_release(m);
    ov.n_gpu_layers = 99;
    cr_expect_eq(qfit_sched_acquire(s, path, &ov, QFIT_SCHED_KEEP_ALIVE_UNSET, &m, NULL, &code, err, sizeof err), -1);
    cr_expect_neq(strstr(err, "99 GPU layers requested"), NULL, "%s", err);
    qfit_sched_free(s);
    free((void *)path);
}
