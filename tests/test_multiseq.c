/* Suite `multiseq`: one context holding several sequences (qfit_decode_batch and the
 * qfit_seq_* functions), on the shared model (kjv-llama-7m, trained context 512).
 *
 * The reference is each sequence run ALONE in a one-sequence context, the path every
 * other test checks against llama.cpp: three prompts of 6, 19 and 41 tokens, then 12
 * greedy tokens each. Together, all prompts go through one batch (in order, or
 * interleaved token by token), then every step decodes one token of each sequence
 * in one batch. Asserted for every KV cache type, flash and plain attention:
 *   - the same greedy tokens;
 *   - max |dlogit| over every step's logits within the KV type's path tolerance
 *     (path_tol): f32/f16 1e-3, bf16 1e-2, block types 0.1. Each sequence's attention
 *     runs alone, but the weight matrices see 66 or 3 rows instead of 41 or 1, and the
 *     GEMM's row blocking changes the last bits of Q/K/V, which a bf16 or block-type
 *     cache amplifies when it rounds. Interleaved, every prompt token is a one-token run
 *     (the decode path instead of the prefill path). Measured, in order / interleaved:
 *     f32 and f16 below 1e-5, bf16 1.0e-3, q8_0 6.5e-3, q5_0 0.057, iq4_nl 0.073. What
 *     the bound must detect: attention reading another sequence's rows or a wrong
 *     position moves logits by 0.1 or more — caught at 1e-3 by the f32 and f16 caches,
 *     whose arithmetic does not amplify (a mixing bug does not depend on the cache type);
 * Also: a prefix copied to another sequence then continued equals running the whole
 * text alone; truncating one sequence and shifting another leave the rest unchanged;
 * a full sequence is refused by name before anything is evaluated. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/model.h"
#include "qfit/quant.h"
#include "qfit/tokenizer.h"
#include "util/testutil.h"

#define NV 2048
#define NSEQ 3
#define NGEN 12
#define TOL 1e-3f

static const char *const PROMPTS[NSEQ] = {
    "And God said, Let",
    "In the beginning God created the heaven and the earth. And the earth was",
    "Blessed are the poor in spirit: for theirs is the kingdom of heaven. Blessed are they that mourn: "
    "for they shall be comforted. Blessed are the meek",
};

typedef struct {
    qfit_model *m;
    qfit_tokenizer *tok;
    int32_t *ids[NSEQ];
    size_t n[NSEQ];
} fixture;

static void fx_open(fixture *f)
{
    const char *path = tu_shared_path("models/kjv-llama-7m-f32.gguf");
    if (!path) cr_skip_test("shared data not found");
    char err[256];
    f->m = qfit_model_load(path, err, sizeof err);
    cr_assert(f->m, "%s", err);
    f->tok = qfit_tokenizer_from_gguf(qfit_model_gguf(f->m), err, sizeof err);
    cr_assert(f->tok, "%s", err);
    for (int s = 0; s < NSEQ; s++)
        cr_assert_eq(qfit_tokenize_alloc(f->tok, PROMPTS[s], strlen(PROMPTS[s]), true, false, &f->ids[s], &f->n[s]), 0);
}

static void fx_close(fixture *f)
{
    for (int s = 0; s < NSEQ; s++) free(f->ids[s]);
    qfit_tokenizer_free(f->tok);
    qfit_model_free(f->m);
}

static qfit_context *ctx(const fixture *f, int n_seq, int tk, int tv, int flash, int n_batch)
{
    qfit_context_params p = qfit_context_default_params();
    p.n_ctx = 128;
    p.n_batch = n_batch;
    p.n_threads = 2;
    p.type_k = tk;
    p.type_v = tv;
    p.flash_attn = flash;
    p.n_seq = n_seq;
    char err[256];
    qfit_context *c = qfit_context_new(f->m, &p, err, sizeof err);
    cr_assert(c, "%s", err);
    return c;
}

static int argmax(const float *x)
{
    int b = 0;
    for (int i = 1; i < NV; i++) if (x[i] > x[b]) b = i;
    return b;
}

/* logits[s][step] (NGEN + 1 rows: after the prompt, then after each generated token) and
 * the greedy tokens, each sequence alone */
static void run_alone(const fixture *f, int tk, int tv, int flash, float *logits, int32_t *toks)
{
    for (int s = 0; s < NSEQ; s++) {
        qfit_context *c = ctx(f, 1, tk, tv, flash, 64);
        cr_assert_eq(qfit_decode(c, f->ids[s], (int)f->n[s], (int)f->n[s] - 1), 0, "%s", qfit_context_error(c));
        for (int step = 0; step <= NGEN; step++) {
            const float *row = qfit_get_logits(c, 0);
            memcpy(logits + ((size_t)s * (NGEN + 1) + step) * NV, row, NV * sizeof(float));
            if (step == NGEN) break;
            int32_t t = argmax(row);
            toks[s * NGEN + step] = t;
            cr_assert_eq(qfit_decode(c, &t, 1, 0), 0, "%s", qfit_context_error(c));
        }
        qfit_context_free(c);
    }
}

/* all sequences in one context; interleave: prompt tokens round-robin across sequences */
static void run_together(const fixture *f, int tk, int tv, int flash, bool interleave, float *logits, int32_t *toks)
{
    qfit_context *c = ctx(f, NSEQ, tk, tv, flash, 128);   /* all prompts in one pass */
    int32_t tokv[256];
    int seqv[256];
    bool want[256];
    int n = 0;
    if (!interleave) {
        for (int s = 0; s < NSEQ; s++)
            for (size_t i = 0; i < f->n[s]; i++, n++) {
                tokv[n] = f->ids[s][i];
                seqv[n] = s;
                want[n] = i + 1 == f->n[s];
            }
    } else {
        for (size_t i = 0; n < (int)(f->n[0] + f->n[1] + f->n[2]); i++)
            for (int s = 0; s < NSEQ; s++) {
                if (i >= f->n[s]) continue;
                tokv[n] = f->ids[s][i];
                seqv[n] = s;
                want[n] = i + 1 == f->n[s];
                n++;
            }
    }
    qfit_batch b = { .n_tokens = n, .token = tokv, .seq = seqv, .logits = want };
    cr_assert_eq(qfit_decode_batch(c, &b), 0, "%s", qfit_context_error(c));
    cr_assert_eq(qfit_n_logits(c), NSEQ);
    /* the rows come in batch order: which sequence is row r? */
    int row_seq[NSEQ], r = 0;
    for (int i = 0; i < n; i++) if (want[i]) row_seq[r++] = seqv[i];
    for (int step = 0; step <= NGEN; step++) {
        int32_t next[NSEQ];
        for (int k = 0; k < NSEQ; k++) {
            const int s = row_seq[k];
            const float *row = qfit_get_logits(c, k);
            memcpy(logits + ((size_t)s * (NGEN + 1) + step) * NV, row, NV * sizeof(float));
            next[s] = argmax(row);
            if (step < NGEN) toks[s * NGEN + step] = next[s];
        }
        if (step == NGEN) break;
        /* one token of each sequence, in reverse order this time */
        int32_t t3[NSEQ];
        int s3[NSEQ];
        bool w3[NSEQ];
        for (int k = 0; k < NSEQ; k++) {
            s3[k] = NSEQ - 1 - k;
            t3[k] = next[s3[k]];
            w3[k] = true;
            row_seq[k] = s3[k];
        }
        qfit_batch d = { .n_tokens = NSEQ, .token = t3, .seq = s3, .logits = w3 };
        cr_assert_eq(qfit_decode_batch(c, &d), 0, "%s", qfit_context_error(c));
    }
    for (int s = 0; s < NSEQ; s++)
        cr_expect_eq(qfit_seq_n_past(c, s), (int)f->n[s] + NGEN, "sequence %d", s);
    qfit_context_free(c);
}

static float max_diff(const float *a, const float *b, size_t n)
{
    float d = 0.0f;
    for (size_t i = 0; i < n; i++) {
        const float e = fabsf(a[i] - b[i]);
        if (!(e <= d)) d = e;   /* NaN counts as the largest */
    }
    return d;
}

/* Path tolerance when the same token's attention runs on another path (interleaved:
 * every prompt token is a run of its own, i.e. a decode; alone: part of a prefill run),
 * from tests/test_kv.c (flash vs plain, same type): f32/f16 1e-3, bf16 1e-2, block
 * types 0.1 (requantization amplifies last-bit differences). Measured here: bf16 1.0e-3,
 * q5_0 0.057, iq4_nl 0.073. */
static float path_tol(int type)
{
    if (type == QFIT_TYPE_F32 || type == QFIT_TYPE_F16) return 1e-3f;
    return type == QFIT_TYPE_BF16 ? 1e-2f : 0.1f;
}

static void compare_all_types(bool interleave)
{
    fixture f;
    fx_open(&f);
    static const int TYPES[] = { QFIT_TYPE_F32, QFIT_TYPE_F16, QFIT_TYPE_BF16, QFIT_TYPE_Q8_0, QFIT_TYPE_Q4_0,
                                 QFIT_TYPE_Q4_1, QFIT_TYPE_Q5_0, QFIT_TYPE_Q5_1, QFIT_TYPE_IQ4_NL };
    const size_t nl = (size_t)NSEQ * (NGEN + 1) * NV;
    float *la = malloc(nl * sizeof(float)), *lb = malloc(nl * sizeof(float));
    int32_t ta[NSEQ * NGEN], tb[NSEQ * NGEN];
    cr_assert(la && lb);
    for (size_t t = 0; t < sizeof TYPES / sizeof TYPES[0]; t++) {
        for (int flash = 0; flash <= 1; flash++) {
            const int ty = TYPES[t];
            run_alone(&f, ty, ty, flash, la, ta);
            run_together(&f, ty, ty, flash, interleave, lb, tb);
            const float d = max_diff(la, lb, nl), tol = path_tol(ty);
            cr_expect(d <= tol, "%s flash %d: max |dlogit| %g together vs alone", qfit_type_name(ty), flash, (double)d);
            cr_expect_arr_eq(ta, tb, sizeof ta, "%s flash %d: greedy tokens differ", qfit_type_name(ty), flash);
        }
    }
    free(la);
    free(lb);
    fx_close(&f);
}

Test(multiseq, together_equals_alone_every_kv_type, .timeout = 300) { compare_all_types(false); }
Test(multiseq, interleaved_batch_equals_alone, .timeout = 300) { compare_all_types(true); }

/* Sequence 1 = a copy of sequence 0's prefix, continued differently; each equals the
 * whole text run alone. Sequence 0 is untouched by what sequence 1 does. */
Test(multiseq, copied_prefix_then_diverge)
{
    fixture f;
    fx_open(&f);
    const int32_t *full = f.ids[2];
    const int np = 20, n = (int)f.n[2];
    qfit_context *c = ctx(&f, 2, QFIT_TYPE_F16, QFIT_TYPE_F16, -1, 64);
    cr_assert_eq(qfit_decode(c, full, np, np), 0, "%s", qfit_context_error(c));
    cr_assert_eq(qfit_seq_copy(c, 0, 1, -1), 0, "%s", qfit_context_error(c));
    cr_expect_eq(qfit_seq_n_past(c, 1), np);
    /* sequence 1 continues with the real text, sequence 0 with other tokens */
    int32_t t[64];
    int s[64];
    bool w[64];
    int k = 0;
    for (int i = np; i < n; i++, k++) { t[k] = full[i]; s[k] = 1; w[k] = i + 1 == n; }
    for (int i = 0; i < 5; i++, k++) { t[k] = f.ids[0][i]; s[k] = 0; w[k] = i == 4; }
    qfit_batch b = { .n_tokens = k, .token = t, .seq = s, .logits = w };
    cr_assert_eq(qfit_decode_batch(c, &b), 0, "%s", qfit_context_error(c));
    float got1[NV], got0[NV];
    memcpy(got1, qfit_get_logits(c, 0), sizeof got1);
    memcpy(got0, qfit_get_logits(c, 1), sizeof got0);
    qfit_context_free(c);

    qfit_context *a = ctx(&f, 1, QFIT_TYPE_F16, QFIT_TYPE_F16, -1, 64);
    cr_assert_eq(qfit_decode(a, full, n, n - 1), 0);
    cr_expect_leq(max_diff(qfit_get_logits(a, 0), got1, NV), TOL, "copied prefix + continuation != alone");
    qfit_context_reset(a);
    int32_t mix[64];
    memcpy(mix, full, (size_t)np * sizeof *mix);
    memcpy(mix + np, f.ids[0], 5 * sizeof *mix);
    cr_assert_eq(qfit_decode(a, mix, np + 5, np + 4), 0);
    cr_expect_leq(max_diff(qfit_get_logits(a, 0), got0, NV), TOL, "the source sequence changed");
    qfit_context_free(a);
    fx_close(&f);
}

/* Truncating sequence 0 and shifting sequence 1 leave sequence 2 exactly as alone; the
 * truncated sequence re-decoded equals alone too. */
Test(multiseq, truncate_and_shift_are_per_sequence)
{
    fixture f;
    fx_open(&f);
    qfit_context *c = ctx(&f, NSEQ, QFIT_TYPE_F16, QFIT_TYPE_F16, -1, 64);
    for (int s = 0; s < NSEQ; s++) {
        int32_t t[64];
        int sq[64];
        for (size_t i = 0; i < f.n[s]; i++) { t[i] = f.ids[s][i]; sq[i] = s; }
        qfit_batch b = { .n_tokens = (int)f.n[s], .token = t, .seq = sq, .logits = NULL };
        cr_assert_eq(qfit_decode_batch(c, &b), 0, "%s", qfit_context_error(c));
    }
    qfit_seq_truncate(c, 0, 2);
    cr_expect_eq(qfit_seq_n_past(c, 0), 2);
    cr_assert_eq(qfit_seq_shift(c, 1, 1, 4), 0, "%s", qfit_context_error(c));
    cr_expect_eq(qfit_seq_n_past(c, 1), (int)f.n[1] - 4);
    cr_expect_eq(qfit_seq_n_past(c, 2), (int)f.n[2]);
    /* continue 0 and 2 by one token each */
    int32_t t2[2] = { f.ids[0][2], f.ids[0][0] };
    int s2[2] = { 0, 2 };
    bool w2[2] = { true, true };
    qfit_batch b = { .n_tokens = 2, .token = t2, .seq = s2, .logits = w2 };
    cr_assert_eq(qfit_decode_batch(c, &b), 0, "%s", qfit_context_error(c));
    float got0[NV], got2[NV];
    memcpy(got0, qfit_get_logits(c, 0), sizeof got0);
    memcpy(got2, qfit_get_logits(c, 1), sizeof got2);
    qfit_context_free(c);

    qfit_context *a = ctx(&f, 1, QFIT_TYPE_F16, QFIT_TYPE_F16, -1, 64);
    cr_assert_eq(qfit_decode(a, f.ids[0], 3, 2), 0);
    cr_expect_leq(max_diff(qfit_get_logits(a, 0), got0, NV), TOL, "truncated sequence != alone");
    qfit_context_reset(a);
    int32_t t[64];
    memcpy(t, f.ids[2], f.n[2] * sizeof *t);
    t[f.n[2]] = f.ids[0][0];
    cr_assert_eq(qfit_decode(a, t, (int)f.n[2] + 1, (int)f.n[2]), 0);
    cr_expect_leq(max_diff(qfit_get_logits(a, 0), got2, NV), TOL, "an untouched sequence changed");
    qfit_context_free(a);
    fx_close(&f);
}

/* A batch that overfills one sequence is refused before anything is evaluated, naming
 * the sequence; bad ids are refused; each sequence has the full n_ctx. */
Test(multiseq, limits_are_per_sequence_and_checked_first)
{
    fixture f;
    fx_open(&f);
    qfit_context *c = ctx(&f, 2, QFIT_TYPE_F16, QFIT_TYPE_F16, -1, 128);
    cr_expect_eq(qfit_context_n_seq(c), 2);
    /* fill sequence 0 to 120 of 128 positions, sequence 1 stays empty */
    int32_t t[200];
    int s[200];
    for (int i = 0; i < 200; i++) { t[i] = f.ids[2][i % f.n[2]]; s[i] = 0; }
    qfit_batch b = { .n_tokens = 120, .token = t, .seq = s, .logits = NULL };
    cr_assert_eq(qfit_decode_batch(c, &b), 0, "%s", qfit_context_error(c));
    /* 4 tokens for sequence 1 and 10 for sequence 0: refused as a whole */
    for (int i = 0; i < 14; i++) s[i] = i < 4 ? 1 : 0;
    b.n_tokens = 14;
    cr_expect_eq(qfit_decode_batch(c, &b), -1);
    cr_expect(strstr(qfit_context_error(c), "sequence 0 has 120 cached + 10 new tokens > n_ctx 128"), "%s",
              qfit_context_error(c));
    cr_expect_eq(qfit_seq_n_past(c, 1), 0, "partly evaluated before the refusal");
    cr_expect_eq(qfit_seq_n_past(c, 0), 120);
    /* sequence 1 still has all 128 positions */
    for (int i = 0; i < 128; i++) s[i] = 1;
    b.n_tokens = 128;
    cr_expect_eq(qfit_decode_batch(c, &b), 0, "%s", qfit_context_error(c));
    s[0] = 2;
    b.n_tokens = 1;
    cr_expect_eq(qfit_decode_batch(c, &b), -1);
    cr_expect(strstr(qfit_context_error(c), "sequence id 2"), "%s", qfit_context_error(c));
    cr_expect_eq(qfit_seq_copy(c, 0, 5, -1), -1);
    qfit_context_free(c);
    /* too many sequences */
    qfit_context_params p = qfit_context_default_params();
    p.n_ctx = 64;
    p.n_seq = QFIT_MAX_SEQ + 1;
    char err[256] = "";
    cr_expect_null(qfit_context_new(f.m, &p, err, sizeof err));
    cr_expect(strstr(err, "sequences"), "%s", err);
    /* the KV cache is n_seq x n_ctx cells */
    p.n_seq = 4;
    qfit_context *c4 = qfit_context_new(f.m, &p, err, sizeof err);
    cr_assert(c4, "%s", err);
    cr_expect_eq(qfit_context_kv_bytes(c4), qfit_kv_cache_bytes(qfit_model_hparams(f.m), 4 * 64, QFIT_TYPE_F16,
                                                                 QFIT_TYPE_F16));
    qfit_context_free(c4);
    fx_close(&f);
}
