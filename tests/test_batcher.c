/* Suite `batcher`: continuous batching and prompt reuse (qfit_batcher, qfit/generate.h)
 * on the shared model and its tokenizer. The reference is qfit_generate on a fresh
 * one-sequence context (the loop the `generate` suite pins to recorded outputs):
 *   - four requests at once, and a fifth that waits for a free sequence, give exactly
 *     the greedy tokens each gives alone (f16 cache: together vs alone differs below 1e-5
 *     in the logits, tests/test_multiseq.c, far from any near-tie here);
 *   - a 5-turn chat: turn 1 evaluates its whole prompt; turns 2..5 evaluate only their
 *     new tokens plus the previous answer's last token (sampled, never evaluated), and
 *     answer exactly as a fresh context given the whole prompt would;
 *   - a long prompt arriving while another sequence generates never stalls it: that
 *     sequence gets a token at every step;
 *   - cancellation: at most one more token; a cancelled prefill stops within one step;
 *   - limits: a prompt that does not fit, no free sequence, a full context. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/generate.h"
#include "qfit/model.h"
#include "qfit/tokenizer.h"
#include "util/testutil.h"

#define MAXT 512

typedef struct {
    int32_t ids[MAXT];
    int n;
    int abort_after;    /* should_abort true once this many tokens were seen (0: never) */
    int after_abort;    /* tokens reported after the abort began */
    const int *step;    /* the test's step counter */
    int step_of[MAXT];  /* step at which each token came */
} cap;

static int on_token(void *u, const qfit_gen_token *t)
{
    cap *c = u;
    if (c->abort_after && c->n >= c->abort_after) c->after_abort++;
    if (c->n < MAXT) {
        c->step_of[c->n] = c->step ? *c->step : 0;
        c->ids[c->n++] = t->id;
    }
    return 0;
}

static bool should_abort(void *u)
{
    cap *c = u;
    return c->abort_after && c->n >= c->abort_after;
}

typedef struct {
    qfit_model *m;
    qfit_tokenizer *tok;
} fx;

static void fx_open(fx *f)
{
    const char *path = tu_shared_path("models/kjv-llama-7m-f32.gguf");
    if (!path) cr_skip_test("shared data not found");
    char err[256];
    f->m = qfit_model_load(path, err, sizeof err);
    cr_assert(f->m, "%s", err);
    f->tok = qfit_tokenizer_from_gguf(qfit_model_gguf(f->m), err, sizeof err);
    cr_assert(f->tok, "%s", err);
}

static void fx_close(fx *f)
{
    qfit_tokenizer_free(f->tok);
    qfit_model_free(f->m);
}

static qfit_context *ctx(const fx *f, int n_seq, int n_ctx, int n_batch)
{
    qfit_context_params p = qfit_context_default_params();
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.n_threads = 2;
    p.n_seq = n_seq;
    char err[256];
    qfit_context *c = qfit_context_new(f->m, &p, err, sizeof err);
    cr_assert(c, "%s", err);
    return c;
}

static size_t tokenize(const fx *f, const char *text, int32_t *out, bool bos)
{
    int32_t *ids;
    size_t n;
    cr_assert_eq(qfit_tokenize_alloc(f->tok, text, strlen(text), bos, false, &ids, &n), 0);
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
    return p;
}

/* the reference: a fresh one-sequence context */
static void alone(const fx *f, const int32_t *prompt, size_t n, const qfit_gen_params *p, cap *out,
                  qfit_gen_result *res)
{
    qfit_context *c = ctx(f, 1, 256, 64);
    qfit_gen_callbacks cb = { .on_token = on_token, .user = out };
    cr_assert_eq(qfit_generate(c, f->tok, prompt, n, p, &cb, res), 0, "%s", res->error);
    qfit_context_free(c);
}

static int run_until_done(qfit_batcher *b, int *step)
{
    int steps = 0;
    while (qfit_batcher_n_running(b) > 0) {
        cr_assert_geq(qfit_batcher_step(b), 0);
        steps++;
        if (step) (*step)++;
        cr_assert_lt(steps, 10000, "no progress");
    }
    return steps;
}

static const char *const PROMPTS[5] = {
    "And God said",
    "In the beginning God created the heaven and the earth.",
    "Blessed are the meek: for they shall",
    "The LORD is my shepherd; I shall not want. He maketh me to lie down",
    "Jesus wept.",
};

Test(batcher, many_requests_equal_alone)
{
    fx f;
    fx_open(&f);
    int32_t ids[5][MAXT];
    size_t n[5];
    for (int i = 0; i < 5; i++) n[i] = tokenize(&f, PROMPTS[i], ids[i], true);
    const int NP[5] = { 12, 20, 7, 16, 10 };
    cap ref[5];
    memset(ref, 0, sizeof ref);
    for (int i = 0; i < 5; i++) {
        qfit_gen_params p = greedy(NP[i]);
        qfit_gen_result r;
        alone(&f, ids[i], n[i], &p, &ref[i], &r);
    }
    qfit_context *c = ctx(&f, 4, 256, 64);
    char err[256];
    qfit_batcher *b = qfit_batcher_new(c, f.tok, err, sizeof err);
    cr_assert(b, "%s", err);
    cap got[5];
    memset(got, 0, sizeof got);
    int seq[5];
    for (int i = 0; i < 4; i++) {
        qfit_gen_params p = greedy(NP[i]);
        qfit_gen_callbacks cb = { .on_token = on_token, .user = &got[i] };
        seq[i] = qfit_batcher_submit(b, ids[i], n[i], &p, &cb, err, sizeof err);
        cr_assert_geq(seq[i], 0, "%s", err);
    }
    qfit_gen_params p5 = greedy(NP[4]);
    qfit_gen_callbacks cb5 = { .on_token = on_token, .user = &got[4] };
    cr_expect_eq(qfit_batcher_submit(b, ids[4], n[4], &p5, &cb5, err, sizeof err), -1, "a fifth sequence");
    cr_expect(strstr(err, "all 4 sequences are busy"), "%s", err);
    /* the fifth joins as soon as a sequence is free (continuous batching) */
    bool fifth = false;
    int done = 0, shared = 0;
    bool collected[5] = { false };   /* a freed sequence id is reused by the fifth request */
    while (qfit_batcher_n_running(b) > 0 || !fifth) {
        cr_assert_geq(qfit_batcher_step(b), 0);
        for (int i = 0; i < 5; i++) {
            qfit_gen_result r;
            if (!collected[i] && (i < 4 || fifth) && qfit_batcher_result(b, seq[i], &r)) {
                collected[i] = true;
                cr_expect_eq(r.reason, QFIT_GEN_LENGTH, "request %d: %s", i, qfit_gen_reason_name(r.reason));
                cr_expect_eq(r.eval_count, NP[i], "request %d: %d tokens", i, r.eval_count);
                /* the fifth reuses what it shares with the sequence it took (its BOS) */
                cr_expect_eq(r.prompt_eval_count, (int)n[i] - (i == 4 ? shared : 0), "request %d: %d evaluated", i,
                             r.prompt_eval_count);
                done++;
                if (!fifth) {
                    while (shared < (int)n[4] && shared < (int)n[i] && ids[4][shared] == ids[i][shared]) shared++;
                    seq[4] = qfit_batcher_submit(b, ids[4], n[4], &p5, &cb5, err, sizeof err);
                    cr_assert_geq(seq[4], 0, "%s", err);
                    fifth = true;
                }
            }
        }
    }
    cr_expect_eq(done, 5);
    for (int i = 0; i < 5; i++) {
        cr_expect_eq(got[i].n, ref[i].n, "request %d: %d tokens, alone %d", i, got[i].n, ref[i].n);
        cr_expect_arr_eq(got[i].ids, ref[i].ids, (size_t)ref[i].n * sizeof(int32_t), "request %d differs", i);
    }
    qfit_batcher_free(b);
    qfit_context_free(c);
    fx_close(&f);
}

Test(batcher, five_turn_chat_evaluates_only_new_tokens)
{
    fx f;
    fx_open(&f);
    static const char *const TURNS[5] = {
        "And God said, Let there be light:", " and there was light.", " And God saw the light,",
        " that it was good:", " and God divided the light from the darkness.",
    };
    qfit_context *c = ctx(&f, 2, 512, 64);
    char err[256];
    qfit_batcher *b = qfit_batcher_new(c, f.tok, err, sizeof err);
    cr_assert(b, "%s", err);
    int32_t conv[MAXT];
    size_t n = 0;
    uint64_t reused = 0;
    for (int t = 0; t < 5; t++) {
        const size_t before = n;
        n += tokenize(&f, TURNS[t], conv + n, t == 0);
        const size_t n_new = n - before;
        qfit_gen_params p = greedy(8);
        cap got, ref;
        memset(&got, 0, sizeof got);
        memset(&ref, 0, sizeof ref);
        qfit_gen_callbacks cb = { .on_token = on_token, .user = &got };
        int s = qfit_batcher_submit(b, conv, n, &p, &cb, err, sizeof err);
        cr_assert_geq(s, 0, "%s", err);
        run_until_done(b, NULL);
        qfit_gen_result r;
        cr_assert(qfit_batcher_result(b, s, &r));
        /* turn 1: the whole prompt; then the new tokens + the last answer token */
        const int want = t == 0 ? (int)n : (int)n_new + 1;
        cr_expect_eq(r.prompt_eval_count, want, "turn %d: %d prompt tokens evaluated, expected %d of %zu", t + 1,
                     r.prompt_eval_count, want, n);
        if (t > 0) reused += n - (size_t)want;
        qfit_gen_result rr;
        alone(&f, conv, n, &p, &ref, &rr);
        cr_expect_arr_eq(got.ids, ref.ids, (size_t)ref.n * sizeof(int32_t), "turn %d answers differently", t + 1);
        /* the answer joins the conversation */
        memcpy(conv + n, got.ids, (size_t)got.n * sizeof(int32_t));
        n += (size_t)got.n;
    }
    qfit_batcher_stats st;
    qfit_batcher_get_stats(b, &st);
    cr_expect_eq(st.requests, 5);
    cr_expect_eq(st.hits, 4);
    cr_expect_eq(st.reused_tokens, reused);
    qfit_batcher_free(b);
    qfit_context_free(c);
    fx_close(&f);
}

Test(batcher, long_prompt_never_stalls_a_generating_sequence)
{
    fx f;
    fx_open(&f);
    qfit_context *c = ctx(&f, 2, 512, 32);
    char err[256];
    qfit_batcher *b = qfit_batcher_new(c, f.tok, err, sizeof err);
    cr_assert(b, "%s", err);
    int32_t a[MAXT], big[MAXT];
    size_t na = tokenize(&f, PROMPTS[0], a, true), nb = 0;
    while (nb < 300) nb += tokenize(&f, PROMPTS[3], big + nb, nb == 0);
    int step = 0;
    cap ca = { .step = &step }, cb_ = { .step = &step };
    qfit_gen_params p = greedy(40);
    qfit_gen_callbacks cba = { .on_token = on_token, .user = &ca };
    int sa = qfit_batcher_submit(b, a, na, &p, &cba, err, sizeof err);
    cr_assert_geq(sa, 0, "%s", err);
    qfit_batcher_step(b);   /* a's prompt */
    step++;
    qfit_gen_params p2 = greedy(2);
    qfit_gen_callbacks cbb = { .on_token = on_token, .user = &cb_ };
    int sb = qfit_batcher_submit(b, big, nb, &p2, &cbb, err, sizeof err);
    cr_assert_geq(sb, 0, "%s", err);
    run_until_done(b, &step);
    /* a got one token per step, with no gap while b's ~300 tokens were read 31 at a time */
    cr_assert_eq(ca.n, 40);
    for (int i = 1; i < ca.n; i++)
        cr_expect_eq(ca.step_of[i], ca.step_of[i - 1] + 1, "a waited at step %d", ca.step_of[i]);
    /* b's first token came after ceil(nb / 31) steps of prefill */
    cr_expect_eq(cb_.step_of[0], (int)((nb + 30) / 31), "b's prompt took %d steps", cb_.step_of[0]);
    qfit_gen_result r;
    cr_expect(qfit_batcher_result(b, sa, &r) && r.reason == QFIT_GEN_LENGTH);
    cr_expect(qfit_batcher_result(b, sb, &r) && r.prompt_eval_count == (int)nb);
    qfit_batcher_free(b);
    qfit_context_free(c);
    fx_close(&f);
}

Test(batcher, cancellation_bounds_and_sequence_freed)
{
    fx f;
    fx_open(&f);
    qfit_context *c = ctx(&f, 2, 512, 32);
    char err[256];
    qfit_batcher *b = qfit_batcher_new(c, f.tok, err, sizeof err);
    cr_assert(b, "%s", err);
    int32_t a[MAXT], big[MAXT];
    size_t na = tokenize(&f, PROMPTS[1], a, true), nb = 0;
    while (nb < 300) nb += tokenize(&f, PROMPTS[3], big + nb, nb == 0);
    cap ca = { .abort_after = 3 }, cb_;
    memset(&cb_, 0, sizeof cb_);
    qfit_gen_params p = greedy(100);
    qfit_gen_callbacks cba = { .on_token = on_token, .should_abort = should_abort, .user = &ca };
    qfit_gen_callbacks cbb = { .on_token = on_token, .user = &cb_ };
    int sa = qfit_batcher_submit(b, a, na, &p, &cba, err, sizeof err);
    int sb = qfit_batcher_submit(b, big, nb, &p, &cbb, err, sizeof err);
    cr_assert(sa >= 0 && sb >= 0, "%s", err);
    qfit_batcher_step(b);
    qfit_batcher_step(b);   /* b has read 2 micro-batches of its prompt */
    qfit_batcher_cancel(b, sb);
    run_until_done(b, NULL);
    qfit_gen_result r;
    cr_assert(qfit_batcher_result(b, sa, &r));
    cr_expect_eq(r.reason, QFIT_GEN_CANCELLED);
    cr_expect_leq(ca.after_abort, 1, "%d tokens after the abort", ca.after_abort);
    cr_assert(qfit_batcher_result(b, sb, &r));
    cr_expect_eq(r.reason, QFIT_GEN_CANCELLED);
    cr_expect_leq(r.prompt_eval_count, 3 * 32, "the cancelled prefill went on: %d tokens", r.prompt_eval_count);
    cr_expect_eq(cb_.n, 0);
    /* both sequences are free again */
    qfit_gen_params q = greedy(2);
    cr_expect_geq(qfit_batcher_submit(b, a, na, &q, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_geq(qfit_batcher_submit(b, a, na, &q, NULL, err, sizeof err), 0, "%s", err);
    run_until_done(b, NULL);
    qfit_batcher_free(b);
    qfit_context_free(c);
    fx_close(&f);
}

Test(batcher, limits)
{
    fx f;
    fx_open(&f);
    qfit_context *c = ctx(&f, 1, 64, 32);
    char err[256] = "";
    qfit_batcher *b = qfit_batcher_new(c, f.tok, err, sizeof err);
    cr_assert(b, "%s", err);
    int32_t big[MAXT];
    size_t nb = 0;
    while (nb < 80) nb += tokenize(&f, PROMPTS[3], big + nb, nb == 0);
    qfit_gen_params p = greedy(-1);
    cr_expect_eq(qfit_batcher_submit(b, big, nb, &p, NULL, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want, "the prompt (%zu tokens) does not fit the context (64 tokens)", nb);
    cr_expect(strstr(err, want), "%s", err);
    cr_expect_eq(qfit_batcher_submit(b, big, 0, &p, NULL, err, sizeof err), -1);
    /* no num_predict: the context fills, reason length */
    int s = qfit_batcher_submit(b, big, 40, &p, NULL, err, sizeof err);
    cr_assert_geq(s, 0, "%s", err);
    run_until_done(b, NULL);
    qfit_gen_result r;
    cr_assert(qfit_batcher_result(b, s, &r));
    cr_expect_eq(r.reason, QFIT_GEN_LENGTH);
    cr_expect(r.context_full);
    cr_expect_eq(r.eval_count, 64 - 40 + 1, "%d tokens", r.eval_count);
    qfit_batcher_free(b);
    qfit_context_free(c);
    /* n_batch below n_seq cannot hold a decode step */
    c = ctx(&f, 4, 64, 2);
    cr_expect_null(qfit_batcher_new(c, f.tok, err, sizeof err));
    qfit_context_free(c);
    fx_close(&f);
}
