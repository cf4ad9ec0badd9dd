/* Suite `model`: hyperparameters, sizing, forward pass against llama.cpp's logits,
 * error handling, thread pool. Reference data: ../shared/testdata/kjv-llama-7m/logits. */
#include <criterion/criterion.h>
#include <sched.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "model/model_internal.h"
#include "model/threadpool.h"
#include "qfit/gguf.h"
#include "qfit/model.h"
#include "qfit/quant.h"
#include "qfit/quantize.h"
#include "qfit/sample.h"
#include "util/refparse.h"
#include "util/testutil.h"

#define N_VOCAB 2048

static const char *model_f32(void) { return tu_shared_path("models/kjv-llama-7m-f32.gguf"); }

typedef struct { double max_diff; int top1_ok; int greedy_ok; int diverge_step; } logit_check;

static logit_check check_variant(const char *variant, int k, qfit_context *c)
{
    logit_check r = { 0, 0, 0, -1 };
    char rel[256];
    snprintf(rel, sizeof rel, "testdata/kjv-llama-7m/logits/%s.p%d.txt", variant, k);
    char *txt = tu_read_file(tu_shared_path(rel), NULL);
    cr_assert_not_null(txt, "%s", rel);
    snprintf(rel, sizeof rel, "testdata/kjv-llama-7m/logits/%s.p%d.f32", variant, k);
    size_t sz = 0;
    float *ref = tu_read_file(tu_shared_path(rel), &sz);
    cr_assert_not_null(ref);
    cr_assert_eq(sz, N_VOCAB * sizeof(float));
    int32_t prompt[64], greedy[64];
    int np = tu_parse_ids(txt, "prompt tokens", prompt, 64);
    int ng = tu_parse_ids(txt, "greedy (", greedy, 64);
    cr_assert_gt(np, 0, "no prompt tokens line");
    cr_assert_eq(ng, 32);

    qfit_context_reset(c);
    cr_assert_eq(qfit_decode(c, prompt, np, np - 1), 0, "%s", qfit_context_error(c));
    const float *l = qfit_get_logits(c, 0);
    for (int i = 0; i < N_VOCAB; i++) {
        double d = fabs((double)l[i] - ref[i]);
        if (d > r.max_diff) r.max_diff = d;
    }
    r.top1_ok = qfit_argmax(l, N_VOCAB) == qfit_argmax(ref, N_VOCAB);
    r.greedy_ok = 1;
    for (int s = 0; s < 32; s++) {
        int32_t t = qfit_argmax(l, N_VOCAB);
        if (t != greedy[s]) {
            r.greedy_ok = 0;
            r.diverge_step = s;
            break;
        }
        cr_assert_eq(qfit_decode(c, &t, 1, 0), 0);
        l = qfit_get_logits(c, 0);
    }
    free(txt);
    free(ref);
    return r;
}

static qfit_context *open_ctx(qfit_model **m, const char *path, int threads)
{
    char err[256];
    *m = qfit_model_load(path, err, sizeof err);
    cr_assert_not_null(*m, "load %s: %s", path, err);
    qfit_context_params p = qfit_context_default_params();
    p.n_ctx = 256;
    p.n_threads = threads;
    qfit_context *c = qfit_context_new(*m, &p, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    return c;
}

Test(model, hparams_from_metadata)
{
    char err[256];
    qfit_gguf *g = qfit_gguf_open(model_f32(), err, sizeof err);
    cr_assert_not_null(g, "%s", err);
    qfit_hparams hp;
    cr_assert_eq(qfit_hparams_from_gguf(g, &hp, err, sizeof err), 0, "%s", err);
    cr_expect_eq(hp.arch, QFIT_ARCH_LLAMA);
    cr_expect_eq(hp.n_ctx_train, 512);
    cr_expect_eq(hp.n_embd, 256);
    cr_expect_eq(hp.n_layer, 8);
    cr_expect_eq(hp.n_ff, 768);
    cr_expect_eq(hp.n_head, 4);
    cr_expect_eq(hp.n_head_kv, 2);
    cr_expect_eq(hp.head_dim_k, 64);
    cr_expect_eq(hp.head_dim_v, 64);
    cr_expect_eq(hp.n_rot, 64);
    cr_expect_eq(hp.n_vocab, 2048);
    cr_expect_eq(hp.rope_type, QFIT_ROPE_NORMAL);
    cr_expect_float_eq(hp.rms_eps, 1e-5f, 1e-12);
    cr_expect_float_eq(hp.rope_freq_base, 10000.0f, 1e-3);
    /* KV: 2 x 8 layers x 512 ctx x 2 heads x 64 dims x 2 bytes (f16) */
    cr_expect_eq(qfit_kv_cache_bytes(&hp, 512, QFIT_TYPE_F16, QFIT_TYPE_F16), (size_t)2 * 8 * 512 * 128 * 2);
    /* q8_0: 34 bytes per 32 elements */
    cr_expect_eq(qfit_kv_cache_bytes(&hp, 512, QFIT_TYPE_Q8_0, QFIT_TYPE_Q8_0), (size_t)2 * 8 * 512 * 4 * 34);
    cr_expect_eq(qfit_kv_cache_bytes(&hp, 512, QFIT_TYPE_F32, QFIT_TYPE_Q4_0), (size_t)8 * 512 * (128 * 4 + 4 * 18));
    size_t cb1 = qfit_compute_buffer_bytes(&hp, 512, 1, true), cb512 = qfit_compute_buffer_bytes(&hp, 512, 512, true);
    cr_expect_gt(cb1, (size_t)2048 * 4);                   /* at least one row of logits */
    cr_expect_gt(cb512, cb1 + (size_t)511 * 2048 * 4);      /* logits scale with the batch */
    qfit_gguf_close(g);
}

Test(model, load_reports_and_validates)
{
    char err[256];
    qfit_model *m = qfit_model_load(model_f32(), err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    cr_expect_eq(qfit_model_n_params(m), 7344384u);
    cr_expect_gt(qfit_model_weight_bytes(m), (size_t)29000000);
    cr_expect_geq(qfit_model_load_seconds(m), 0.0);
    qfit_model_free(m);
    cr_expect_null(qfit_model_load("/nonexistent/model.gguf", err, sizeof err));
    cr_expect_neq(err[0], 0);
}

/* a GGUF whose architecture qfit does not run */
Test(model, unsupported_architecture_is_an_error)
{
    char path[600], err[256];
    snprintf(path, sizeof path, "%s/gpt2.gguf", tu_tmpdir());
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    qfit_gguf_set_str(w, "general.architecture", "gpt2");
    qfit_gguf_set_u32(w, "gpt2.context_length", 64);
    int64_t ne[2] = { 32, 4 };
    qfit_gguf_add_tensor(w, "token_embd.weight", 2, ne, QFIT_TYPE_F32);
    cr_assert_eq(qfit_gguf_writer_begin(w, path, err, sizeof err), 0, "%s", err);
    float zeros[128] = { 0 };
    cr_assert_eq(qfit_gguf_writer_write_tensor(w, zeros, sizeof zeros, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_gguf_writer_finish(w, err, sizeof err), 0, "%s", err);
    qfit_gguf_writer_free(w);
    qfit_model *m = qfit_model_load(path, err, sizeof err);
    cr_assert_null(m);
    cr_expect_not_null(strstr(err, "unsupported architecture 'gpt2'"), "message: %s", err);
    cr_expect_not_null(strstr(err, "supported: llama, mistral, qwen2, qwen3"), "message: %s", err);

    cr_expect_not_null(strstr(err, "supported: llama, mistral, qwen2, qwen3, qwen3moe, phi3, gemma2, gemma3"), "message: %s", err);
}

/* expert (and phi3 RoPE) hyperparameters: each wrong one is named (not reported as a missing tensor) */
Test(model, expert_hparams_are_checked)
{
    static const struct { const char *arch; int n_expert, n_used; const char *want; } cases[] = {
        /* LongRoPE's attention factor (phi3; any architecture may carry it) is range-checked */
        { "phi3", 0, 0, "phi3.rope.scaling.attn_factor = 0 is out of range" },
        { "llama", 8, 0, "missing llama.expert_used_count" },
        { "llama", 8, 9, "llama.expert_used_count = 9 is out of range [1, expert_count 8]" },
        { "llama", 100000, 2, "llama.expert_count = 100000 is out of range" },
        { "qwen2", 8, 2, "qwen2.expert_count = 8: the qwen2 architecture has no mixture-of-experts variant" },
        { "qwen3moe", 0, 0, "qwen3moe needs qwen3moe.expert_count > 0" },
        /* consistent hyperparameters: the loader goes on to the tensors */
        { "llama", 8, 2, "missing tensor 'blk.0.attn_norm.weight'" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[600], err[256], key[96];
        snprintf(path, sizeof path, "%s/experts-%zu.gguf", tu_tmpdir(), i);
        const char *a = cases[i].arch;
        qfit_gguf_writer *w = qfit_gguf_writer_new();
        qfit_gguf_set_str(w, "general.architecture", a);
#define U32(k, v) do { snprintf(key, sizeof key, "%s." k, a); qfit_gguf_set_u32(w, key, (v)); } while (0)
        U32("context_length", 64);
        U32("embedding_length", 32);
        U32("block_count", 1);
        U32("feed_forward_length", 64);
        U32("attention.head_count", 4);
        if (cases[i].n_expert) U32("expert_count", (uint32_t)cases[i].n_expert);
        if (cases[i].n_used) U32("expert_used_count", (uint32_t)cases[i].n_used);
#undef U32
        if (!strcmp(a, "phi3")) qfit_gguf_set_f32(w, "phi3.rope.scaling.attn_factor", 0.0f);
        const int64_t ne[2] = { 32, 4 };
        qfit_gguf_add_tensor(w, "token_embd.weight", 2, ne, QFIT_TYPE_F32);
        qfit_gguf_add_tensor(w, "output_norm.weight", 1, ne, QFIT_TYPE_F32);
        float zeros[128] = { 0 };
        cr_assert_eq(qfit_gguf_writer_begin(w, path, err, sizeof err), 0, "%s", err);
        cr_assert_eq(qfit_gguf_writer_write_tensor(w, zeros, sizeof zeros, err, sizeof err), 0, "%s", err);
        cr_assert_eq(qfit_gguf_writer_write_tensor(w, zeros, 32 * sizeof(float), err, sizeof err), 0, "%s", err);
        cr_assert_eq(qfit_gguf_writer_finish(w, err, sizeof err), 0, "%s", err);
        qfit_gguf_writer_free(w);
        qfit_model *m = qfit_model_load(path, err, sizeof err);
        cr_expect_null(m, "case %zu loaded", i);
        qfit_model_free(m);
        cr_expect_not_null(strstr(err, cases[i].want), "case %zu: message: %s", i, err);
    }
}

/* gpt-oss's hyperparameters: llama.cpp's required keys, YaRN, the sliding-window pattern
 * and the architecture's variants read from the file; each bad value is named */
static int write_gpt_oss_header(const char *path, const char *skip, const char *scaling, uint32_t orig_ctx,
                                uint32_t key_length, char *err, size_t err_len)
{
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    qfit_gguf_set_str(w, "general.architecture", "gpt-oss");
    static const struct { const char *key; uint32_t v; } u32s[] = {
        { "gpt-oss.context_length", 8192 }, { "gpt-oss.embedding_length", 128 }, { "gpt-oss.block_count", 4 },
        { "gpt-oss.feed_forward_length", 128 }, { "gpt-oss.attention.head_count", 4 },
        { "gpt-oss.attention.head_count_kv", 2 }, { "gpt-oss.rope.dimension_count", 64 },
        { "gpt-oss.expert_count", 8 }, { "gpt-oss.expert_used_count", 2 },
        { "gpt-oss.expert_feed_forward_length", 96 }, { "gpt-oss.attention.sliding_window", 16 },
    };
    for (size_t i = 0; i < sizeof u32s / sizeof u32s[0]; i++)
        if (!skip || strcmp(u32s[i].key, skip) != 0) qfit_gguf_set_u32(w, u32s[i].key, u32s[i].v);
    qfit_gguf_set_u32(w, "gpt-oss.attention.key_length", key_length);
    qfit_gguf_set_u32(w, "gpt-oss.attention.value_length", 64);
    if (!skip || strcmp(skip, "gpt-oss.attention.layer_norm_rms_epsilon") != 0)
        qfit_gguf_set_f32(w, "gpt-oss.attention.layer_norm_rms_epsilon", 1e-5f);
    qfit_gguf_set_f32(w, "gpt-oss.rope.freq_base", 150000.0f);
    qfit_gguf_set_str(w, "gpt-oss.rope.scaling.type", scaling);
    qfit_gguf_set_f32(w, "gpt-oss.rope.scaling.factor", 32.0f);
    qfit_gguf_set_u32(w, "gpt-oss.rope.scaling.original_context_length", orig_ctx);
    const int64_t ne[2] = { 128, 4 };
    qfit_gguf_add_tensor(w, "token_embd.weight", 2, ne, QFIT_TYPE_F32);
    float zeros[512] = { 0 };
    int rc = qfit_gguf_writer_begin(w, path, err, err_len);
    if (rc == 0) rc = qfit_gguf_writer_write_tensor(w, zeros, sizeof zeros, err, err_len);
    if (rc == 0) rc = qfit_gguf_writer_finish(w, err, err_len);
    qfit_gguf_writer_free(w);
    return rc;
}

Test(model, gpt_oss_hparams)
{
    char path[600], err[256];
    snprintf(path, sizeof path, "%s/gpt-oss-hp.gguf", tu_tmpdir());
    cr_assert_eq(write_gpt_oss_header(path, NULL, "yarn", 4096, 64, err, sizeof err), 0, "%s", err);
    qfit_gguf *g = qfit_gguf_open(path, err, sizeof err);
    cr_assert_not_null(g, "%s", err);
    qfit_hparams hp;
    cr_assert_eq(qfit_hparams_from_gguf(g, &hp, err, sizeof err), 0, "%s", err);
    qfit_gguf_close(g);
    cr_expect_eq(hp.arch, QFIT_ARCH_GPT_OSS);
    cr_expect_eq(hp.rope_type, QFIT_ROPE_NEOX);
    cr_expect_eq(hp.n_swa, 16);
    cr_expect(qfit_layer_is_swa(&hp, 0) && !qfit_layer_is_swa(&hp, 1) && qfit_layer_is_swa(&hp, 2) &&
              !qfit_layer_is_swa(&hp, 3), "even layers slide, odd ones are full (llama.cpp's pattern 2)");
    cr_expect_float_eq(hp.rope_freq_scale, 1.0f / 32.0f, 1e-9);
    cr_expect_float_eq(hp.rope_ext_factor, 1.0f, 0);
    cr_expect_float_eq(hp.rope_attn_factor, 1.0f, 0);
    cr_expect_float_eq(hp.rope_beta_fast, 32.0f, 0);
    cr_expect_float_eq(hp.rope_beta_slow, 1.0f, 0);
    cr_expect_eq(hp.n_ctx_orig, 4096);
    cr_expect_float_eq(hp.attn_scale, 0.125f, 1e-9);
    cr_expect(hp.attn_sinks);
    cr_expect_eq(hp.ffn_act, QFIT_FFN_SWIGLU_OAI);
    cr_expect_eq(hp.moe_gating, QFIT_MOE_GATING_SOFTMAX_WEIGHT);
    cr_expect_float_eq(hp.swiglu_alpha, 1.702f, 0);
    cr_expect_float_eq(hp.swiglu_limit, 7.0f, 0);
    cr_expect_eq(hp.n_expert, 8);
    cr_expect_eq(hp.n_expert_used, 2);
    cr_expect_eq(hp.n_ff_exp, 96);
    /* each bad or missing value is named */
    static const struct { const char *skip, *scaling; uint32_t orig, key_length; const char *want; } bad[] = {
        { "gpt-oss.attention.sliding_window", "yarn", 4096, 64, "missing gpt-oss.attention.sliding_window" },
        { "gpt-oss.expert_feed_forward_length", "yarn", 4096, 64, "missing gpt-oss.expert_feed_forward_length" },
        { "gpt-oss.attention.layer_norm_rms_epsilon", "yarn", 4096, 64,
          "missing gpt-oss.attention.layer_norm_rms_epsilon" },
        { "gpt-oss.expert_count", "yarn", 4096, 64, "gpt-oss needs gpt-oss.expert_count > 0" },
        { NULL, "su", 4096, 64, "unsupported RoPE scaling type 'su' (supported: none, linear, yarn, longrope)" },
        { NULL, "yarn", 0, 64, "gpt-oss.rope.scaling.original_context_length = 0 is out of range" },
        { NULL, "yarn", 4096, 128, "gpt-oss needs rope.dimension_count (64) = key_length (128) = value_length (64)" },
        /* consistent: the loader goes on to the tensors */
        { NULL, "yarn", 4096, 64, "missing tensor 'output_norm.weight'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(write_gpt_oss_header(path, bad[i].skip, bad[i].scaling, bad[i].orig, bad[i].key_length, err,
                                          sizeof err), 0, "%s", err);
        qfit_model *m = qfit_model_load(path, err, sizeof err);
        cr_expect_null(m, "case %zu loaded", i);
        qfit_model_free(m);
        cr_expect_not_null(strstr(err, bad[i].want), "case %zu: message: %s", i, err);
    }
}

Test(model, decode_rejects_bad_input)
{
    qfit_model *m;
    qfit_context *c = open_ctx(&m, model_f32(), 1);
    int32_t bad[2] = { 1, 5000 };
    cr_expect_eq(qfit_decode(c, bad, 2, 1), -1);
    cr_expect_not_null(strstr(qfit_context_error(c), "outside the vocabulary"));
    cr_expect_eq(qfit_context_status(c), QFIT_E_INVALID);
    cr_expect_eq(qfit_context_n_past(c), 0);
    int32_t *many = calloc(300, sizeof *many);
    cr_expect_eq(qfit_decode(c, many, 300, 299), -1);   /* n_ctx is 256 */
    cr_expect_not_null(strstr(qfit_context_error(c), "context full"));
    cr_expect_eq(qfit_context_status(c), QFIT_E_CONTEXT_FULL);
    cr_expect_eq(qfit_decode(c, many, 4, 3), 0, "%s", qfit_context_error(c));
    cr_expect_eq(qfit_context_status(c), QFIT_OK, "a call that succeeds clears the status");
    cr_expect_eq(qfit_context_shift(c, 2, 9), -1);
    cr_expect_eq(qfit_context_status(c), QFIT_E_INVALID);
    cr_expect_str_eq(qfit_status_name(QFIT_E_CONTEXT_FULL), "context full");
    free(many);
    qfit_context_free(c);
    qfit_model_free(m);
}

/* A thread count over the pool's maximum is refused, not cut down quietly. */
Test(model, too_many_threads_is_an_error)
{
    qfit_model *m;
    qfit_context *c = open_ctx(&m, model_f32(), 1);
    qfit_context_free(c);
    char err[256];
    qfit_context_params p = qfit_context_default_params();
    p.n_ctx = 256;
    p.n_threads = QFIT_MAX_THREADS + 1;
    cr_expect_null(qfit_context_new(m, &p, err, sizeof err));
    cr_expect(strstr(err, "threads requested, at most"), "%s", err);
    p.n_threads = QFIT_MAX_THREADS;
    c = qfit_context_new(m, &p, err, sizeof err);
    cr_expect_not_null(c, "%s", err);
    qfit_context_free(c);
    qfit_model_free(m);
}

Test(model, f32_logits_match_llama_cpp, .timeout = 600)
{
    qfit_model *m;
    qfit_context *c = open_ctx(&m, model_f32(), 2);
    for (int k = 0; k < 5; k++) {
        logit_check r = check_variant("f32", k, c);
        cr_expect_leq(r.max_diff, 0.02, "f32 prompt %d: max |dlogit| %g", k, r.max_diff);
        cr_expect(r.top1_ok, "f32 prompt %d: top-1 differs", k);
        cr_expect(r.greedy_ok, "f32 prompt %d: greedy continuation diverges at step %d", k, r.diverge_step);
    }
    qfit_context_free(c);
    qfit_model_free(m);
}

/* Quantized variants (Q8_0, Q6_K, Q4_K_M) are checked against same-machine llama.cpp
 * logits on every ISA, with a discrimination check between the types, by the engine
 * suite (tests/test_engine_paths.c, engine/isa_*_logits; rules in tests/util/refparse.h). */

/* one batch vs token-by-token vs several threads: same logits */
Test(model, batch_and_single_token_agree, .timeout = 300)
{
    const int32_t toks[12] = { 1, 1046, 261, 1909, 1289, 271, 261, 336, 1991, 270, 292, 261 };
    qfit_model *m;
    qfit_context *c1 = open_ctx(&m, model_f32(), 1);
    char err[256];
    qfit_context_params p = qfit_context_default_params();
    p.n_ctx = 64;
    p.n_batch = 5;          /* forces several passes */
    p.n_threads = 3;
    qfit_context *c3 = qfit_context_new(m, &p, err, sizeof err);
    cr_assert_not_null(c3, "%s", err);
    float *all = malloc(sizeof(float) * 12 * N_VOCAB);
    for (int i = 0; i < 12; i++) {
        cr_assert_eq(qfit_decode(c1, toks + i, 1, 0), 0);
        memcpy(all + (size_t)i * N_VOCAB, qfit_get_logits(c1, 0), sizeof(float) * N_VOCAB);
    }
    cr_assert_eq(qfit_decode(c3, toks, 12, 8), 0, "%s", qfit_context_error(c3));
    cr_assert_eq(qfit_n_logits(c3), 4);
    for (int i = 8; i < 12; i++) {
        const float *l = qfit_get_logits(c3, i - 8);
        double md = 0;
        for (int v = 0; v < N_VOCAB; v++) md = fmax(md, fabs(l[v] - all[(size_t)i * N_VOCAB + v]));
        cr_expect_leq(md, 1e-3, "position %d: batch vs single %g", i, md);
    }
    free(all);
    qfit_context_free(c3);
    qfit_context_free(c1);
    qfit_model_free(m);
}

/* ------------------------------------------------------------- thread pool */

typedef struct { int counts[8]; int nth_seen; } tp_arg;

static void tp_task(void *arg, int ith, int nth)
{
    tp_arg *a = arg;
    a->counts[ith]++;
    a->nth_seen = nth;
}

Test(model, threadpool_runs_every_thread_and_sleeps_when_idle)
{
    qfit_threadpool *tp = qfit_threadpool_new(4);
    cr_assert_not_null(tp);
    cr_expect_eq(qfit_threadpool_size(tp), 4);
    tp_arg a;
    memset(&a, 0, sizeof a);
    for (int r = 0; r < 1000; r++) qfit_threadpool_run(tp, tp_task, &a);
    for (int i = 0; i < 4; i++) cr_expect_eq(a.counts[i], 1000, "thread %d ran %d times", i, a.counts[i]);
    cr_expect_eq(a.nth_seen, 4);
    /* idle workers block instead of spinning: after a pause they have slept */
    struct timespec ts = { 0, 50 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    cr_expect_gt(qfit_threadpool_n_sleeps(tp), 0);
    qfit_threadpool_run(tp, tp_task, &a);    /* and wake up again */
    for (int i = 0; i < 4; i++) cr_expect_eq(a.counts[i], 1001);
    qfit_threadpool_free(tp);
}

typedef struct { int n; _Atomic int *hits; _Atomic int bad_ith; int size; } tp_chunk_arg;

static void tp_chunk(void *arg, int chunk, int ith)
{
    tp_chunk_arg *a = arg;
    if (chunk < 0 || chunk >= a->n || ith < 0 || ith >= a->size) { atomic_fetch_add(&a->bad_ith, 1); return; }
    atomic_fetch_add(&a->hits[chunk], 1);
}

Test(model, threadpool_chunks_run_each_chunk_exactly_once)
{
    for (int nt = 1; nt <= 4; nt++) {
        qfit_threadpool *tp = qfit_threadpool_new(nt);
        cr_assert_not_null(tp);
        enum { NMAX = 777 };
        static _Atomic int hits[NMAX];
        tp_arg all;
        memset(&all, 0, sizeof all);
        long rounds = 0;
        for (int r = 0; r < 400; r++) {
            const int n = (r * 37) % NMAX + (r % 5 == 0 ? 0 : 1);   /* includes 0 and 1 chunk */
            for (int i = 0; i < NMAX; i++) atomic_store(&hits[i], 0);
            tp_chunk_arg a = { n, hits, 0, nt };
            qfit_threadpool_run_chunks(tp, tp_chunk, &a, n);
            cr_expect_eq(atomic_load(&a.bad_ith), 0);
            for (int i = 0; i < NMAX; i++)
                cr_expect_eq(atomic_load(&hits[i]), i < n ? 1 : 0, "threads %d round %d: chunk %d ran %d times", nt, r,
                             i, atomic_load(&hits[i]));
            /* interleaved with all-thread dispatches on the same pool */
            if (r % 3 == 0) { qfit_threadpool_run(tp, tp_task, &all); rounds++; }
        }
        for (int i = 0; i < nt; i++) cr_expect_eq(all.counts[i], rounds);
        /* more chunks than a thread's range slot counts (65535): run in parts */
        if (nt == 2) {
            enum { BIG = 70001 };
            _Atomic int *big = calloc(BIG, sizeof *big);
            cr_assert_not_null(big);
            tp_chunk_arg a = { BIG, big, 0, nt };
            qfit_threadpool_run_chunks(tp, tp_chunk, &a, BIG);
            cr_expect_eq(atomic_load(&a.bad_ith), 0);
            int wrong = 0;
            for (int i = 0; i < BIG; i++) wrong += atomic_load(&big[i]) != 1;
            cr_expect_eq(wrong, 0, "%d of %d chunks did not run exactly once", wrong, BIG);
            free(big);
        }
        qfit_threadpool_free(tp);
    }
}

/* A worker that gets no core while the caller works takes almost no chunks, and its
 * spinning only takes time from the caller: the pool notices (a window of dispatches in
 * which the workers took under a tenth of the chunks) and runs the next dispatches on
 * the caller alone while the worker sleeps. Made here by pinning the test thread, and so
 * the worker it creates, to one CPU. Every chunk still runs exactly once. */
Test(model, threadpool_runs_solo_when_workers_are_absent, .timeout = 120)
{
    cpu_set_t old, one;
    cr_assert_eq(sched_getaffinity(0, sizeof old, &old), 0);
    int cpu = 0;
    while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &old)) cpu++;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
    qfit_threadpool *tp = qfit_threadpool_new(2);
    cr_assert_not_null(tp);
    enum { N = 8 };
    static _Atomic int hits[N];
    int wrong = 0;
    for (int r = 0; r < 4000; r++) {
        for (int i = 0; i < N; i++) atomic_store(&hits[i], 0);
        tp_chunk_arg a = { N, hits, 0, 2 };
        qfit_threadpool_run_chunks(tp, tp_chunk, &a, N);
        for (int i = 0; i < N; i++) wrong += atomic_load(&hits[i]) != 1;
        wrong += atomic_load(&a.bad_ith);
    }
    const long solo = qfit_threadpool_n_solo(tp), disp = qfit_threadpool_n_dispatches(tp);
    qfit_threadpool_free(tp);
    cr_assert_eq(sched_setaffinity(0, sizeof old, &old), 0);
    cr_expect_eq(wrong, 0);
    cr_expect_eq(disp, 4000);
    cr_expect_gt(solo, 2000, "the caller ran %ld of %ld dispatches alone", solo, disp);
}

/* The fixed cost of a decode token on a small model is its round trips between the
 * caller and the workers (bench/decode_profile.c: on the 7M model at 2 threads each
 * costs about as much as the work it splits). One token of the shared model (8 layers,
 * 2 KV heads) at 2 threads takes 4 dispatches a layer — Q/K/V + attention in one (a
 * task per KV head), the output projection, gate/up, down — and 1 for the output
 * head: 33. Norms and activation quantization of a single row run on the caller. At
 * 1 thread, none. */
Test(model, decode_token_dispatch_count, .timeout = 120)
{
    for (int threads = 1; threads <= 2; threads++) {
        qfit_model *m;
        qfit_context *c = open_ctx(&m, model_f32(), threads);
        const int32_t prompt[5] = { 1, 400, 52, 900, 13 };
        cr_assert_eq(qfit_decode(c, prompt, 5, 4), 0, "%s", qfit_context_error(c));
        for (int i = 0; i < 12; i++) {
            const int32_t t = (int32_t)(100 + 37 * i);
            const long d0 = qfit_threadpool_n_dispatches(c->tp);
            cr_assert_eq(qfit_decode(c, &t, 1, 0), 0, "%s", qfit_context_error(c));
            const long d = qfit_threadpool_n_dispatches(c->tp) - d0;
            cr_expect_eq(d, threads == 1 ? 0 : 4 * 8 + 1, "%d threads, token %d: %ld dispatches", threads, i, d);
        }
        qfit_context_free(c);
        qfit_model_free(m);
    }
}

/* The decode path that fuses Q/K/V with the attention (2 threads, a task per KV head)
 * computes exactly what the unfused path does (1 thread: the matmuls over all rows,
 * then the per-token steps, then the attention): the same rows, the same kernels, the
 * same order of operations, so the logits are equal bit for bit, over enough tokens
 * that the cache holds many positions; with an f16 cache and with a q8_0 one (its rows
 * stored Hadamard-rotated, head by head in the fused path). */
Test(model, fused_decode_equals_unfused, .timeout = 300)
{
    char err[256];
    qfit_model *m = qfit_model_load(model_f32(), err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    const int kvt[2] = { QFIT_TYPE_F16, QFIT_TYPE_Q8_0 };
    enum { STEPS = 40 };
    float *ref = malloc((size_t)STEPS * N_VOCAB * sizeof *ref);
    cr_assert_not_null(ref);
    for (int k = 0; k < 2; k++) {
        for (int threads = 1; threads <= 2; threads++) {
            qfit_context_params p = qfit_context_default_params();
            p.n_ctx = 128;
            p.n_threads = threads;
            p.type_k = p.type_v = kvt[k];
            qfit_context *c = qfit_context_new(m, &p, err, sizeof err);
            cr_assert_not_null(c, "%s", err);
            const int32_t prompt[6] = { 1, 400, 52, 900, 13, 77 };
            cr_assert_eq(qfit_decode(c, prompt, 6, 5), 0, "%s", qfit_context_error(c));
            int32_t t = qfit_argmax(qfit_get_logits(c, 0), N_VOCAB);
            for (int i = 0; i < STEPS; i++) {
                cr_assert_eq(qfit_decode(c, &t, 1, 0), 0, "%s", qfit_context_error(c));
                const float *l = qfit_get_logits(c, 0);
                if (threads == 1) memcpy(ref + (size_t)i * N_VOCAB, l, N_VOCAB * sizeof *l);
                else cr_assert(memcmp(ref + (size_t)i * N_VOCAB, l, N_VOCAB * sizeof *l) == 0,
                               "KV %s, step %d: 2-thread (fused) logits differ from 1-thread ones",
                               qfit_type_name(kvt[k]), i);
                t = (int32_t)((qfit_argmax(l, N_VOCAB) + 7 * i) % N_VOCAB);
            }
            qfit_context_free(c);
        }
    }
    free(ref);
    qfit_model_free(m);
}

/* qfit_model_replace_weight: every matrix of the F32 model replaced by its F16 rounding
 * gives exactly the F16 file's logits (the hook is what the engine computes with), and
 * restoring them gives exactly the F32 logits again. Refusals name the problem. */
Test(model, replace_weight_is_what_the_engine_uses, .timeout = 300)
{
    char err[256];
    qfit_model *m = qfit_model_load(model_f32(), err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    qfit_model *m16 = qfit_model_load(tu_shared_path("models/kjv-llama-7m-f16.gguf"), err, sizeof err);
    cr_assert_not_null(m16, "%s", err);
    qfit_context_params cp = qfit_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 2;
    const int32_t toks[12] = { 1, 400, 52, 900, 13, 77, 1500, 8, 260, 2000, 31, 600 };
    float *l32 = malloc(N_VOCAB * sizeof *l32), *l16 = malloc(N_VOCAB * sizeof *l16);
    cr_assert(l32 && l16);
    qfit_context *c = qfit_context_new(m16, &cp, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(qfit_decode(c, toks, 12, 11), 0, "%s", qfit_context_error(c));
    memcpy(l16, qfit_get_logits(c, 0), N_VOCAB * sizeof *l16);
    qfit_context_free(c);
    c = qfit_context_new(m, &cp, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(qfit_decode(c, toks, 12, 11), 0, "%s", qfit_context_error(c));
    memcpy(l32, qfit_get_logits(c, 0), N_VOCAB * sizeof *l32);
    double d = 0;
    for (int i = 0; i < N_VOCAB; i++) d = fmax(d, fabs((double)l32[i] - l16[i]));
    cr_assert_gt(d, 1e-6, "the F16 file must differ from the F32 one for this test to mean anything");

    /* every 2-D weight of the F32 file, as F16 */
    const qfit_gguf *g = qfit_model_gguf(m);
    void **bufs = calloc((size_t)qfit_gguf_n_tensors(g), sizeof *bufs);
    int replaced = 0;
    for (int64_t i = 0; i < qfit_gguf_n_tensors(g); i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        if (t->n_dims != 2) continue;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        const size_t nb = qfit_tensor_nbytes(QFIT_TYPE_F16, t->ne[0], t->ne[1]);
        bufs[i] = malloc(nb);
        cr_assert_eq(qfit_quantize_rows(QFIT_TYPE_F16, t->data, bufs[i], t->ne[1], t->ne[0], err, sizeof err), nb, "%s", err);
        cr_assert_eq(qfit_model_replace_weight(m, name, QFIT_TYPE_F16, bufs[i], nb, err, sizeof err), 0, "%s: %s",
                     name, err);
        replaced++;
    }
    cr_assert_eq(replaced, 2 + 8 * 7);
    qfit_context_reset(c);
    cr_assert_eq(qfit_decode(c, toks, 12, 11), 0, "%s", qfit_context_error(c));
    cr_expect_arr_eq(qfit_get_logits(c, 0), l16, N_VOCAB * sizeof *l16, "replaced by F16: not the F16 file's logits");

    for (int64_t i = 0; i < qfit_gguf_n_tensors(g); i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        if (!bufs[i]) continue;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        cr_assert_eq(qfit_model_replace_weight(m, name, t->type, NULL, 0, err, sizeof err), 0, "%s: %s", name, err);
    }
    qfit_context_reset(c);
    cr_assert_eq(qfit_decode(c, toks, 12, 11), 0, "%s", qfit_context_error(c));
    cr_expect_arr_eq(qfit_get_logits(c, 0), l32, N_VOCAB * sizeof *l32, "restored: not the F32 logits");

    /* refusals */
    static const struct { const char *name; int type; size_t nbytes; const char *needle; } bad[] = {
        { "blk.8.attn_q.weight", QFIT_TYPE_F16, 131072, "not a weight matrix" },
        { "blk.01.attn_q.weight", QFIT_TYPE_F16, 131072, "not a weight matrix" },
        { "blk.0.attn_norm.weight", QFIT_TYPE_F32, 1024, "not a weight matrix" },
        { "blk.0.attn_q.weight", QFIT_TYPE_F16, 131071, "bytes given" },
        { "blk.0.ffn_down.weight", QFIT_TYPE_Q4_K, 0, "bytes given" },
        { "blk.0.attn_q.weight", 999, 131072, "does not fit" },
    };
    char dummy[16] = { 0 };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        cr_expect_eq(qfit_model_replace_weight(m, bad[i].name, bad[i].type, dummy, bad[i].nbytes, err, sizeof err), -1,
                     "%s accepted", bad[i].name);
        cr_expect(strstr(err, bad[i].needle) != NULL, "%s: '%s'", bad[i].name, err);
    }
    for (int64_t i = 0; i < qfit_gguf_n_tensors(g); i++) free(bufs[i]);
    free(bufs);
    qfit_context_free(c);
    free(l32);
    free(l16);
    qfit_model_free(m16);
    qfit_model_free(m);
}

/* the architecture registry: names, aliases, the facts the engine and planner use */
Test(model, arch_registry)
{
    const qfit_arch_info *a = qfit_arch_find("mistral");
    cr_assert_not_null(a);
    cr_expect_eq(a->id, QFIT_ARCH_LLAMA);
    cr_expect_str_eq(a->name, "llama");
    cr_expect_eq(a->rope_type, QFIT_ROPE_NORMAL);
    a = qfit_arch_find("qwen2");
    cr_assert_not_null(a);
    cr_expect(a->qkv_bias && !a->qk_norm && a->rope_type == QFIT_ROPE_NEOX);
    a = qfit_arch_find("qwen3");
    cr_assert_not_null(a);
    cr_expect(!a->qkv_bias && a->qk_norm && a->rope_type == QFIT_ROPE_NEOX);
    cr_expect_null(qfit_arch_find("gpt2"));
    cr_expect_null(qfit_arch_find(""));
    cr_expect_str_eq(qfit_arch_supported_list(),
                     "llama, mistral, qwen2, qwen3, qwen3moe, phi3, gemma2, gemma3, gpt-oss, bert, nomic-bert");
    a = qfit_arch_find("qwen3moe");
    cr_assert_not_null(a);
    cr_expect(a->qk_norm && a->rope_type == QFIT_ROPE_NEOX && a->experts == QFIT_EXPERTS_REQUIRED);
    cr_expect_eq(qfit_arch_find("llama")->experts, QFIT_EXPERTS_OPTIONAL);
    cr_expect_eq(qfit_arch_find("qwen3")->experts, QFIT_EXPERTS_NONE);
    cr_expect_str_eq(qfit_arch_name(QFIT_ARCH_QWEN3), "qwen3");
}

/* the recipe of every layer of a synthetic model's hyperparameters */
static void recipes_of(const char *shape, qfit_hparams *hp, qfit_layer_recipe *r, int max_layers)
{
    char name[64], err[256];
    snprintf(name, sizeof name, "%s.gguf", shape);
    const char *path = tu_synth(shape, QFIT_FTYPE_ALL_F32, 1, name);
    qfit_gguf *g = qfit_gguf_open(path, err, sizeof err);
    cr_assert_not_null(g, "%s: %s", shape, err);
    cr_assert_eq(qfit_hparams_from_gguf(g, hp, err, sizeof err), 0, "%s: %s", shape, err);
    qfit_gguf_close(g);
    cr_assert_leq(hp->n_layer, max_layers, "%s", shape);
    for (int il = 0; il < hp->n_layer; il++) r[il] = qfit_layer_recipe_of(hp, il);
}

/* What the forward pass composes for each layer comes from the architecture's
 * descriptor and its hyperparameters: norm placement, which layers slide and with
 * which RoPE table, soft-capping, sinks, dense or expert FFN, activation, gating. */
Test(model, layer_recipes_follow_the_descriptor, .timeout = 120)
{
    qfit_hparams hp;
    qfit_layer_recipe r[64];

    recipes_of("tiny-llama3", &hp, r, 64);
    for (int il = 0; il < hp.n_layer; il++)
        cr_expect(r[il].block == QFIT_BLOCK_PRE_NORM && r[il].causal && r[il].window == 0 && r[il].rope &&
                  !r[il].rope_local && r[il].softcap == 0 && !r[il].sinks && r[il].ffn == QFIT_FFN_DENSE &&
                  r[il].act == QFIT_FFN_SWIGLU, "llama layer %d", il);

    recipes_of("tiny-gemma2", &hp, r, 64);
    for (int il = 0; il < hp.n_layer; il++) {
        cr_expect_eq(r[il].block, QFIT_BLOCK_SANDWICH, "gemma2 layer %d: post-norms", il);
        cr_expect_eq(r[il].window, il % 2 == 0 ? hp.n_swa : 0, "gemma2 layer %d: even layers slide", il);
        cr_expect(!r[il].rope_local, "gemma2 layer %d: one RoPE table", il);
        cr_expect_float_eq(r[il].softcap, hp.attn_softcap, 0);
        cr_expect_eq(r[il].act, QFIT_FFN_GEGLU);
    }
    cr_expect_gt(hp.attn_softcap, 0.0f);

    recipes_of("tiny-gemma3", &hp, r, 64);
    cr_assert_eq(hp.n_layer, 6);
    for (int il = 0; il < hp.n_layer; il++) {
        const bool global = il % 6 == 5;
        cr_expect_eq(r[il].window, global ? 0 : 32, "gemma3 layer %d: five sliding layers for one global", il);
        cr_expect_eq(r[il].rope_local, !global, "gemma3 layer %d: local layers' own RoPE table", il);
        cr_expect(r[il].softcap == 0 && r[il].block == QFIT_BLOCK_SANDWICH, "gemma3 layer %d", il);
    }

    recipes_of("tiny-gpt-oss", &hp, r, 64);
    for (int il = 0; il < hp.n_layer; il++)
        cr_expect(r[il].sinks && r[il].ffn == QFIT_FFN_EXPERTS && r[il].act == QFIT_FFN_SWIGLU_OAI &&
                  r[il].gating == QFIT_MOE_GATING_SOFTMAX_WEIGHT && r[il].window == (il % 2 == 0 ? hp.n_swa : 0) &&
                  r[il].block == QFIT_BLOCK_PRE_NORM, "gpt-oss layer %d", il);

    recipes_of("tiny-qwen3moe", &hp, r, 64);
    for (int il = 0; il < hp.n_layer; il++)
        cr_expect(r[il].ffn == QFIT_FFN_EXPERTS && r[il].gating == QFIT_MOE_GATING_SOFTMAX && r[il].window == 0,
                  "qwen3moe layer %d", il);

    recipes_of("tiny-bert", &hp, r, 64);
    for (int il = 0; il < hp.n_layer; il++)
        cr_expect(r[il].block == QFIT_BLOCK_POST_NORM && !r[il].causal && !r[il].rope && r[il].act == QFIT_FFN_GELU,
                  "bert layer %d: post-norm, bidirectional, absolute positions, GELU", il);
    recipes_of("tiny-nomic-bert", &hp, r, 64);
    for (int il = 0; il < hp.n_layer; il++)
        cr_expect(r[il].block == QFIT_BLOCK_POST_NORM && !r[il].causal && r[il].rope && r[il].act == QFIT_FFN_SWIGLU,
                  "nomic-bert layer %d: post-norm, bidirectional, RoPE, SwiGLU", il);
}

/* resident memory of this process (VmRSS, bytes); 0 when /proc cannot say */
static uint64_t vm_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

/* A token reads only its experts; loading maps them all in, so the resident memory is
 * what the planner counts from the first token on (not creeping up as routing reaches
 * new experts, each first use a page-fault stall). */
Test(model, experts_resident_after_load, .timeout = 120)
{
    char err[256];
    const char *path = tu_synth("tiny-qwen3moe", QFIT_FTYPE_MOSTLY_Q8_0, 1, "tiny-qwen3moe-rss.gguf");
    qfit_gguf *g = qfit_gguf_open(path, err, sizeof err);
    cr_assert_not_null(g, "%s", err);
    uint64_t expert_bytes = 0;
    for (int64_t i = 0; i < qfit_gguf_n_tensors(g); i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        static const char suffix[] = "_exps.weight";
        const size_t n = sizeof suffix - 1;
        if (t->name.len >= n && !memcmp(t->name.data + t->name.len - n, suffix, n)) expert_bytes += t->nbytes;
    }
    qfit_gguf_close(g);
    cr_assert_gt(expert_bytes, 4u << 20, "the test needs experts well above the noise: %llu bytes",
                 (unsigned long long)expert_bytes);
    const uint64_t before = vm_rss();
    if (!before) cr_skip_test("no /proc/self/status");
    qfit_model *m = qfit_model_load(path, err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    const uint64_t grown = vm_rss() - before;
    cr_expect_geq(grown, expert_bytes, "resident memory grew %llu bytes at load, experts are %llu",
                  (unsigned long long)grown, (unsigned long long)expert_bytes);
    qfit_model_free(m);
}

/* Load-time repacking (qfit_pack_matrix, model.c's pack_weights) on the shared model
 * quantized to Q4_K_M (Q4_K and Q6_K matrices), Q4_0, IQ4_NL and IQ4_XS (each with its
 * own kernel and layout):
 *  - where the CPU has load-time layouts (AVX-512 VNNI: all of these types), the matrices are
 *    packed (bytes within 6% of the rows they replace) and the mapping's pages of those
 *    rows are given back: the resident memory grows at load by the packed bytes, not by
 *    the packed bytes plus the rows (the bug a missing release would be);
 *  - QFIT_REPACK=0 packs nothing, and a value it cannot honour is a load error;
 *  - the logits agree: a batch runs the same panel kernel on the same panels either way
 *    (packed per call or at load: bit for bit), and a single token on the packed
 *    panels differs from the row kernels by summation order only. The bound is 0.5: a
 *    wrong layout or a missing panel moves logits by O(1), while the last-bit differences
 *    of another summation order can flip a rounding of the 8-bit activations downstream
 *    (Q4_0: one such flip moved the logits by 0.085; Q4_K_M, IQ4_NL, IQ4_XS by 3e-6). */
static void check_repacked(const char *mix)
{
    char err[256], file[64];
    snprintf(file, sizeof file, "model-kjv-%s.gguf", mix);
    const char *path = tu_kjv_quantized(mix, file);

    cr_assert_eq(setenv("QFIT_REPACK", "sometimes", 1), 0);
    cr_assert_null(qfit_model_load(path, err, sizeof err), "QFIT_REPACK=sometimes was accepted");
    cr_expect(strstr(err, "QFIT_REPACK") != NULL, "the error does not name the setting: %s", err);
    cr_assert_eq(setenv("QFIT_REPACK", "0", 1), 0);
    const uint64_t before0 = vm_rss();
    qfit_model *m0 = qfit_model_load(path, err, sizeof err);
    cr_assert_not_null(m0, "%s", err);
    const uint64_t grown0 = vm_rss() - before0;   /* the mapping's rows are not read at load */
    size_t src0 = 1;
    cr_expect_eq(qfit_model_packed_bytes(m0, &src0), 0, "QFIT_REPACK=0 packed weights");
    cr_expect_eq(src0, 0);
    unsetenv("QFIT_REPACK");

    const uint64_t before = vm_rss();
    qfit_model *m1 = qfit_model_load(path, err, sizeof err);
    cr_assert_not_null(m1, "%s", err);
    const uint64_t grown = vm_rss() - before;
    size_t src = 0;
    const size_t packed = qfit_model_packed_bytes(m1, &src);
    const qfit_cpu_features *cf = qfit_cpu_get_features();
    const bool layouts = qfit_isa_active() == QFIT_ISA_AVX512 && cf->avx512vnni;
    if (layouts) {
        cr_assert_gt(packed, 0, "%s, AVX-512 VNNI: no matrix was packed", mix);
        cr_expect_leq((double)packed, 1.06 * (double)src, "%s: packed %zu bytes for %zu of rows", mix, packed, src);
        cr_expect_geq(packed, src);
        /* beyond a load without packing: the packed bytes (and, under ASan, an eighth
         * more of shadow), not those plus the rows */
        if (before)
            cr_expect_lt((double)grown - (double)grown0, 1.125 * (double)packed + 0.5 * (double)src,
                         "resident memory grew %llu bytes at load (%llu without packing): packed %zu, rows %zu "
                         "(not given back?)", (unsigned long long)grown, (unsigned long long)grown0, packed, src);
        cr_log_info("repack %s: %zu bytes packed for %zu of rows; resident +%llu at load (+%llu without)", mix, packed, src,
                    (unsigned long long)grown, (unsigned long long)grown0);
    } else {
        cr_log_info("repack %s: this CPU has no load-time layouts (packed %zu)", mix, packed);
    }

    const int32_t toks[12] = { 1, 1046, 261, 1909, 1289, 271, 261, 336, 1991, 270, 292, 261 };
    qfit_model *ms[2] = { m0, m1 };
    float *lg[2];
    for (int k = 0; k < 2; k++) {
        qfit_context_params p = qfit_context_default_params();
        p.n_ctx = 64;
        p.n_threads = 2;
        qfit_context *c = qfit_context_new(ms[k], &p, err, sizeof err);
        cr_assert_not_null(c, "%s", err);
        lg[k] = malloc(sizeof(float) * 5 * N_VOCAB);
        cr_assert_not_null(lg[k]);
        cr_assert_eq(qfit_decode(c, toks, 8, 0), 0, "%s", qfit_context_error(c));
        memcpy(lg[k], qfit_get_logits(c, 0), sizeof(float) * N_VOCAB);
        for (int i = 8; i < 12; i++) {
            cr_assert_eq(qfit_decode(c, toks + i, 1, 0), 0, "%s", qfit_context_error(c));
            memcpy(lg[k] + (size_t)(i - 7) * N_VOCAB, qfit_get_logits(c, 0), sizeof(float) * N_VOCAB);
        }
        qfit_context_free(c);
    }
    double batch = 0, single = 0;
    for (int v = 0; v < N_VOCAB; v++) batch = fmax(batch, fabs(lg[0][v] - lg[1][v]));
    for (size_t v = N_VOCAB; v < 5 * (size_t)N_VOCAB; v++) single = fmax(single, fabs(lg[0][v] - lg[1][v]));
    cr_log_info("repack %s: max |dlogit| rows vs packed: batch of 8 %g, single tokens %g", mix, batch, single);
    cr_expect_eq(batch, 0.0, "%s, a batch of 8: rows vs packed max |dlogit| %g (the same kernel on the same panels)",
                 mix, batch);
    cr_expect_leq(single, 0.5, "%s, single tokens: rows vs packed max |dlogit| %g", mix, single);
    free(lg[0]);
    free(lg[1]);
    qfit_model_free(m1);
    qfit_model_free(m0);
}

Test(model, repacked_weights_equal_rows, .timeout = 600)
{
    static const char *const mixes[] = { "Q4_K_M", "Q4_0", "IQ4_NL", "IQ4_XS" };
    for (size_t i = 0; i < sizeof mixes / sizeof *mixes; i++) check_repacked(mixes[i]);
}
