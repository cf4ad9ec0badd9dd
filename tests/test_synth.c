/* Tests of synthetic models (suite `synth`). Synthetic models are for speed and
 * memory measurement only: these tests check shapes, metadata, types and
 * determinism, never output quality. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qfit/gguf.h"
#include "qfit/quant.h"
#include "qfit/quantize.h"
#include "qfit/synth.h"
#include "util/testutil.h"

static char *synth_path(const char *name)
{
    static char bufs[8][4096];
    static int slot;
    char *b = bufs[slot++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", tu_tmpdir(), name);
    return b;
}

static void synth_ok(const char *shape, int ftype, uint64_t seed, int threads, const char *path,
                     qfit_synth_stats *st)
{
    qfit_synth_params p = { .shape = qfit_synth_find_shape(shape), .ftype = ftype, .seed = seed,
                            .n_threads = threads };
    cr_assert_not_null(p.shape, "%s", shape);
    char err[512];
    cr_assert_eq(qfit_synth_write(path, &p, st, err, sizeof err), 0, "%s", err);
}

static bool same_file(const char *a, const char *b)
{
    size_t na, nb;
    void *da = tu_read_file(a, &na), *db = tu_read_file(b, &nb);
    cr_assert(da && db);
    bool same = na == nb && !memcmp(da, db, na);
    free(da);
    free(db);
    return same;
}

/* Parameter counts of the real models (Hugging Face model cards / safetensors
 * totals); rope_freqs (64 or 32 values, not a trained weight) is excluded. */
Test(synth, shapes_match_real_models)
{
    struct { const char *name; int64_t params; } want[] = {
        { "llama3-8b",    8030261248LL },
        { "llama3.2-1b",  1235814400LL },
        { "llama3.2-3b",  3212749824LL },
        { "qwen2.5-0.5b",  494032768LL },
        { "qwen2.5-7b",   7615616512LL },
        { "mistral-7b",   7241732096LL },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const qfit_synth_shape *s = qfit_synth_find_shape(want[i].name);
        cr_assert_not_null(s, "%s", want[i].name);
        int64_t n = qfit_synth_n_params(s);
        if (s->rope_freqs) n -= s->head_dim / 2;
        cr_assert_eq(n, want[i].params, "%s: %lld parameters, the real model has %lld", want[i].name,
                     (long long)n, (long long)want[i].params);
    }
    cr_assert_not_null(qfit_synth_find_shape("LLAMA3.2-1B"));
    cr_assert_null(qfit_synth_find_shape("llama5"));
    cr_assert_gt(qfit_synth_n_shapes(), 6);
}

Test(synth, tiny_metadata_shapes_types, .timeout = 60)
{
    char *path = strdup(synth_path("tiny-q4km.gguf"));
    qfit_synth_stats st;
    synth_ok("tiny", QFIT_FTYPE_MOSTLY_Q4_K_M, 7, 2, path, &st);
    char err[512];
    qfit_gguf *g = qfit_gguf_open(path, err, sizeof err);
    cr_assert_not_null(g, "%s", err);
    char s[256];
    cr_assert(qfit_gguf_get_string(g, "general.architecture", s, sizeof s));
    cr_assert_str_eq(s, "llama");
    cr_assert(qfit_gguf_get_string(g, "general.description", s, sizeof s));
    cr_assert(strstr(s, "SPEED/MEMORY MEASUREMENT ONLY"), "%s", s);
    cr_assert_eq(qfit_gguf_get_int_or(g, "llama.block_count", -1), 4);
    cr_assert_eq(qfit_gguf_get_int_or(g, "llama.embedding_length", -1), 256);
    cr_assert_eq(qfit_gguf_get_int_or(g, "llama.feed_forward_length", -1), 512);
    cr_assert_eq(qfit_gguf_get_int_or(g, "llama.attention.head_count", -1), 4);
    cr_assert_eq(qfit_gguf_get_int_or(g, "llama.attention.head_count_kv", -1), 2);
    cr_assert_eq(qfit_gguf_get_int_or(g, "llama.context_length", -1), 256);
    cr_assert_eq(qfit_gguf_get_int_or(g, "llama.vocab_size", -1), 512);
    cr_assert_eq(qfit_gguf_get_int_or(g, "llama.rope.dimension_count", -1), 64);
    cr_assert_float_eq(qfit_gguf_get_float_or(g, "llama.attention.layer_norm_rms_epsilon", 0), 1e-5, 1e-9);
    cr_assert_float_eq(qfit_gguf_get_float_or(g, "llama.rope.freq_base", 0), 10000.0, 1e-3);
    cr_assert_eq(qfit_gguf_get_int_or(g, "general.file_type", -1), QFIT_FTYPE_MOSTLY_Q4_K_M);
    cr_assert_eq(qfit_gguf_get_int_or(g, "general.quantization_version", -1), 2);
    cr_assert(qfit_gguf_get_string(g, "tokenizer.ggml.model", s, sizeof s));
    cr_assert_str_eq(s, "llama");
    int64_t ik = qfit_gguf_find_key(g, "tokenizer.ggml.tokens");
    cr_assert_geq(ik, 0);
    cr_assert_eq(qfit_gguf_arr_len(g, ik), 512);
    qfit_gguf_str t0 = qfit_gguf_arr_str(g, ik, 0), t1 = qfit_gguf_arr_str(g, ik, 1), t13 = qfit_gguf_arr_str(g, ik, 13);
    cr_assert(t0.len == 5 && !memcmp(t0.data, "<unk>", 5));
    cr_assert(t1.len == 3 && !memcmp(t1.data, "<s>", 3));
    cr_assert(t13.len == 6 && !memcmp(t13.data, "<0x0A>", 6));
    int64_t it = qfit_gguf_find_key(g, "tokenizer.ggml.token_type");
    cr_assert_eq(qfit_gguf_arr_type(g, it), QFIT_GGUF_INT32);
    int32_t tt[512];   /* array data in the file is not necessarily aligned */
    memcpy(tt, qfit_gguf_arr_data(g, it), sizeof tt);
    cr_assert_eq(tt[0], 2);
    cr_assert_eq(tt[2], 3);
    cr_assert_eq(tt[3 + 255], 6);
    cr_assert_eq(tt[300], 1);
    cr_assert_eq(qfit_gguf_arr_len(g, qfit_gguf_find_key(g, "tokenizer.ggml.scores")), 512);

    /* tensors: llama.cpp's order, the types of the mix rules */
    cr_assert_eq(qfit_gguf_n_tensors(g), 3 + 4 * 9);
    cr_assert_eq(st.n_tensors, 39);
    size_t n = (size_t)qfit_gguf_n_tensors(g);
    size_t *order = calloc(n, sizeof *order);
    int *types = calloc(n, sizeof *types);
    cr_assert_eq(qfit_mix_plan_gguf(g, QFIT_FTYPE_MOSTLY_Q4_K_M, order, types, NULL, err, sizeof err), 0, "%s", err);
    uint64_t data = 0;
    for (size_t k = 0; k < n; k++) {
        cr_assert_eq(order[k], k, "tensors are stored in llama.cpp's order");
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, (int64_t)k);
        /* the plan of an F32 model of this shape == the types written */
        int want = types[k];
        if (t->type != QFIT_TYPE_F32) cr_assert_eq(t->type, want);
        data += t->nbytes;
    }
    cr_assert_eq(data, st.data_bytes);
    const qfit_gguf_tensor *o = qfit_gguf_tensor_at(g, qfit_gguf_find_tensor(g, "output.weight"));
    cr_assert_eq(o->type, QFIT_TYPE_Q6_K);
    cr_assert_eq(o->ne[0], 256);
    cr_assert_eq(o->ne[1], 512);
    /* 4 layers: use_more_bits(i, 4) holds for i = 2 (the %3 rule) and i = 3 (>= 7n/8) */
    const qfit_gguf_tensor *v0 = qfit_gguf_tensor_at(g, qfit_gguf_find_tensor(g, "blk.0.attn_v.weight"));
    cr_assert_eq(v0->type, QFIT_TYPE_Q4_K);
    cr_assert_eq(v0->ne[1], 128);
    const qfit_gguf_tensor *v2 = qfit_gguf_tensor_at(g, qfit_gguf_find_tensor(g, "blk.2.attn_v.weight"));
    cr_assert_eq(v2->type, QFIT_TYPE_Q6_K);
    const qfit_gguf_tensor *d3 = qfit_gguf_tensor_at(g, qfit_gguf_find_tensor(g, "blk.3.ffn_down.weight"));
    cr_assert_eq(d3->type, QFIT_TYPE_Q6_K);
    const qfit_gguf_tensor *dn = qfit_gguf_tensor_at(g, qfit_gguf_find_tensor(g, "blk.3.ffn_down.weight"));
    cr_assert_eq(dn->ne[0], 512);
    cr_assert_eq(dn->ne[1], 256);
    const qfit_gguf_tensor *nr = qfit_gguf_tensor_at(g, qfit_gguf_find_tensor(g, "blk.2.ffn_norm.weight"));
    cr_assert_eq(nr->type, QFIT_TYPE_F32);
    cr_assert_eq(nr->n_dims, 1);
    for (int i = 0; i < 256; i++) cr_assert_eq(((const float *)nr->data)[i], 1.0f);
    free(order);
    free(types);
    qfit_gguf_close(g);
    free(path);
}

Test(synth, deterministic, .timeout = 60)
{
    char *a = strdup(synth_path("det-a.gguf")), *b = strdup(synth_path("det-b.gguf")),
         *c = strdup(synth_path("det-c.gguf"));
    synth_ok("tiny-qwen2", QFIT_FTYPE_MOSTLY_Q4_K_M, 42, 1, a, NULL);
    synth_ok("tiny-qwen2", QFIT_FTYPE_MOSTLY_Q4_K_M, 42, 2, b, NULL);
    synth_ok("tiny-qwen2", QFIT_FTYPE_MOSTLY_Q4_K_M, 43, 2, c, NULL);
    cr_assert(same_file(a, b), "same seed, different thread count: different bytes");
    cr_assert_not(same_file(a, c), "different seeds gave the same bytes");
    free(a); free(b); free(c);
}

/* Weights: roughly gaussian with sd 0.02, different per tensor and row;
 * a synthetic F32 model quantized by qfit quantize equals the direct synthesis. */
Test(synth, weights_and_direct_quantization, .timeout = 120)
{
    char *f32 = strdup(synth_path("w-f32.gguf")), *direct = strdup(synth_path("w-q4km.gguf")),
         *viaq = strdup(synth_path("w-q4km-via.gguf"));
    synth_ok("tiny", QFIT_FTYPE_ALL_F32, 5, 2, f32, NULL);
    synth_ok("tiny", QFIT_FTYPE_MOSTLY_Q4_K_M, 5, 2, direct, NULL);
    char err[512];
    qfit_gguf *g = qfit_gguf_open(f32, err, sizeof err);
    cr_assert_not_null(g, "%s", err);
    const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, qfit_gguf_find_tensor(g, "blk.1.ffn_gate.weight"));
    const float *x = t->data;
    int64_t n = qfit_gguf_tensor_nelements(t);
    double s = 0, s2 = 0;
    float mx = 0;
    for (int64_t i = 0; i < n; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
        if (fabsf(x[i]) > mx) mx = fabsf(x[i]);
    }
    double mean = s / (double)n, sd = sqrt(s2 / (double)n - mean * mean);
    cr_assert_lt(fabs(mean), 0.001, "mean %g", mean);
    cr_assert_float_eq(sd, 0.02, 0.001, "sd %g", sd);
    cr_assert_lt(mx, 0.07f);   /* Irwin-Hall(4) is bounded by 2*sqrt(3) sd */
    cr_assert_neq(memcmp(x, x + 256, 256 * sizeof(float)), 0, "rows repeat");
    const qfit_gguf_tensor *u = qfit_gguf_tensor_at(g, qfit_gguf_find_tensor(g, "blk.1.ffn_up.weight"));
    cr_assert_neq(memcmp(x, u->data, 256 * sizeof(float)), 0, "tensors repeat");
    qfit_gguf_close(g);

    qfit_quantize_params p = { .ftype = QFIT_FTYPE_MOSTLY_Q4_K_M, .n_threads = 2 };
    cr_assert_eq(qfit_quantize_model(f32, viaq, &p, NULL, err, sizeof err), 0, "%s", err);
    /* same tensors, types and bytes (metadata differs only in general.file_type's position) */
    qfit_gguf *a = qfit_gguf_open(direct, err, sizeof err), *b = qfit_gguf_open(viaq, err, sizeof err);
    cr_assert(a && b);
    cr_assert_eq(qfit_gguf_n_tensors(a), qfit_gguf_n_tensors(b));
    for (int64_t i = 0; i < qfit_gguf_n_tensors(a); i++) {
        const qfit_gguf_tensor *ta = qfit_gguf_tensor_at(a, i), *tb = qfit_gguf_tensor_at(b, i);
        cr_assert_eq(ta->name.len, tb->name.len);
        cr_assert(!memcmp(ta->name.data, tb->name.data, ta->name.len));
        cr_assert_eq(ta->type, tb->type);
        cr_assert_eq(ta->nbytes, tb->nbytes);
        cr_assert(!memcmp(ta->data, tb->data, ta->nbytes), "tensor %lld differs", (long long)i);
    }
    qfit_gguf_close(a);
    qfit_gguf_close(b);
    free(f32); free(direct); free(viaq);
}

Test(synth, fallback_shapes, .timeout = 60)
{
    char *path = strdup(synth_path("odd-q4km.gguf"));
    qfit_synth_stats st;
    synth_ok("tiny-odd", QFIT_FTYPE_MOSTLY_Q4_K_M, 1, 2, path, &st);
    cr_assert_eq(st.n_fallback, 16);
    cr_assert_eq(st.type_count[QFIT_TYPE_F16], 16);
    free(path);
}

Test(synth, errors_and_cli, .timeout = 60)
{
    char err[512];
    qfit_synth_params p = { .shape = qfit_synth_find_shape("tiny"), .ftype = QFIT_FTYPE_MOSTLY_IQ2_XXS };
    char *path = strdup(synth_path("err.gguf"));
    cr_assert_eq(qfit_synth_write(path, &p, NULL, err, sizeof err), -1);
    cr_assert_eq(access(path, F_OK), -1);
    p.ftype = QFIT_FTYPE_MOSTLY_Q8_0;
    char bad[4200];
    snprintf(bad, sizeof bad, "%s/missing-dir/x.gguf", tu_tmpdir());
    cr_assert_eq(qfit_synth_write(bad, &p, NULL, err, sizeof err), -1);

    char cmd[16384];
    int status;
    snprintf(cmd, sizeof cmd, "%s synth --shape tiny --type q8_0 '%s' --seed 3 --threads 2", tu_qfit_bin(), path);
    char *o = tu_run(cmd, &status);
    cr_assert_eq(status, 0, "%s", o);
    cr_assert(strstr(o, "SYNTHETIC") && strstr(o, "speed/memory"), "%s", o);
    free(o);
    cr_assert_eq(access(path, F_OK), 0);

    snprintf(cmd, sizeof cmd, "%s synth --shape nosuch --type q8_0 '%s.2'", tu_qfit_bin(), path);
    o = tu_run(cmd, &status);
    cr_assert_neq(status, 0);
    cr_assert(strstr(o, "unknown shape"), "%s", o);
    free(o);
    snprintf(cmd, sizeof cmd, "%s synth --shape tiny --type q9_9 '%s.2'", tu_qfit_bin(), path);
    o = tu_run(cmd, &status);
    cr_assert_neq(status, 0);
    cr_assert(strstr(o, "unknown type"), "%s", o);
    free(o);
    snprintf(cmd, sizeof cmd, "%s synth --help", tu_qfit_bin());
    o = tu_run(cmd, &status);
    cr_assert_eq(status, 0);
    cr_assert(strstr(o, "SPEED AND MEMORY MEASUREMENT ONLY") && strstr(o, "gibberish"), "%s", o);
    free(o);
    snprintf(cmd, sizeof cmd, "%s synth --list", tu_qfit_bin());
    o = tu_run(cmd, &status);
    cr_assert_eq(status, 0);
    cr_assert(strstr(o, "llama3.2-1b") && strstr(o, "qwen2.5-7b") && strstr(o, "mistral-7b"), "%s", o);
    free(o);
    free(path);
}
