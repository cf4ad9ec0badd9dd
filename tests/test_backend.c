/* Suite `backend`: the devices a context runs on (qfit/backend.h) and the scalar
 * reference backend (device "ref", src/model/backend_ref.c) beside the CPU's.
 *
 * The reference backend's logits against llama.cpp's, by the rules every CPU ISA is
 * held to, are in tests/test_engine_paths.c (engine/ref_backend_*). Here: the device
 * table and its errors, the models the reference refuses (with the reason, never a
 * fallback), its perplexity per KV cache type against the CPU backend's, and that a
 * pass of several sequences gives each one exactly what it gets alone. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/backend.h"
#include "qfit/eval.h"
#include "qfit/model.h"
#include "qfit/quant.h"
#include "qfit/quantize.h"
#include "qfit/sample.h"
#include "util/testutil.h"

static qfit_model *load_kjv(void)
{
    char err[256];
    qfit_model *m = qfit_model_load(tu_shared_path("models/kjv-llama-7m-f32.gguf"), err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    return m;
}

/* a context on device (n_gpu_layers ngl) */
static qfit_context *ctx_ngl(const qfit_model *m, const char *device, int ngl, int n_ctx, int type, int n_seq)
{
    char err[256];
    qfit_context_params p = qfit_context_default_params();
    p.n_ctx = n_ctx;
    p.n_threads = 2;
    p.type_k = p.type_v = type;
    p.n_seq = n_seq;
    p.n_gpu_layers = ngl;
    snprintf(p.device, sizeof p.device, "%s", device);
    qfit_context *c = qfit_context_new(m, &p, err, sizeof err);
    cr_assert_not_null(c, "device %s: %s", device, err);
    cr_assert_str_eq(qfit_context_device(c), device);
    return c;
}

/* ------------------------------------------------------------ the devices */

/* What a new context may take of a GPU: its total less the driver's reserve, and no more
 * than the driver says is free (VK_EXT_memory_budget; lavapipe does not say, so this is
 * where the free side is held) */
Test(backend, gpu_budget_takes_free_memory_where_known)
{
    const uint64_t G = 1ull << 30, R = QFIT_GPU_RESERVE_BYTES;
    qfit_device_info d = { .name = "vulkan9", .mem_total = 24 * G };
    cr_expect_eq(qfit_device_gpu_budget(&d), 24 * G - R, "free unknown: the total less the reserve");
    d.mem_free = 10 * G;
    cr_expect_eq(qfit_device_gpu_budget(&d), 10 * G, "another process holds 14 GiB: what is free");
    d.mem_free = 24 * G;
    cr_expect_eq(qfit_device_gpu_budget(&d), 24 * G - R, "all free: still the reserve kept");
    d.mem_total = R / 2;
    d.mem_free = R / 2;
    cr_expect_eq(qfit_device_gpu_budget(&d), 0, "less than the reserve: nothing");
    d.mem_total = 0;
    d.mem_free = 0;
    cr_expect_eq(qfit_device_gpu_budget(&d), 0, "unknown memory");
}

Test(backend, devices_are_listed)
{
    cr_assert_geq(qfit_device_count(), 2);
    qfit_device_info d;
    cr_assert_eq(qfit_device_get(0, &d), 0);
    cr_expect_str_eq(d.name, "cpu");
    cr_expect(d.host_memory);
    cr_expect_gt(d.mem_total, 0, "the host's memory is known on this system");
    cr_expect_gt(d.mem_free, 0);
    cr_expect_leq(d.mem_free, d.mem_total);
    cr_assert_eq(qfit_device_get(1, &d), 0);
    cr_expect_str_eq(d.name, "ref");
    cr_expect_neq(strstr(d.description, "reference"), NULL, "%s", d.description);
    cr_expect_eq(qfit_device_get(qfit_device_count(), &d), -1);
    cr_expect_eq(qfit_device_get(-1, &d), -1);
    cr_expect_eq(qfit_device_find(NULL), 0);
    cr_expect_eq(qfit_device_find(""), 0);
    cr_expect_eq(qfit_device_find("ref"), 1);
    cr_expect_eq(qfit_device_find("REF"), -1);
    cr_expect_eq(qfit_device_find("vulkan99"), -1);
    cr_expect_eq(strncmp(qfit_device_names(), "cpu, ref", 8), 0, "%s", qfit_device_names());
    /* then the Vulkan devices, one entry each */
    for (int i = 2; i < qfit_device_count(); i++) {
        char want[32];
        snprintf(want, sizeof want, "vulkan%d", i - 2);
        cr_assert_eq(qfit_device_get(i, &d), 0);
        cr_expect_str_eq(d.name, want);
        cr_expect_eq(strncmp(d.description, "Vulkan: ", 8), 0, "%s", d.description);
        cr_expect_eq(qfit_device_find(want), i);
        cr_expect_neq(strstr(qfit_device_names(), want), NULL, "%s", qfit_device_names());
    }
}

/* qfit inspect --devices: the devices and (a Vulkan build with a device: CI's lavapipe) the
 * Vulkan devices with their features. */
Test(backend, inspect_lists_the_devices)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s inspect --devices 2>&1", tu_qfit_bin());
    int st = -1;
    char *out = tu_run(cmd, &st);
    cr_assert_not_null(out);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect_neq(strstr(out, "\ncpu "), NULL, "%s", out);
    cr_expect_neq(strstr(out, "\nref "), NULL, "%s", out);
    cr_expect_neq(strstr(out, "Vulkan"), NULL, "%s", out);
    const char *ci = getenv("CI");
    if (ci && !strcmp(ci, "true")) {   /* CI installs lavapipe */
        cr_expect_neq(strstr(out, "vulkan0  llvmpipe"), NULL, "%s", out);
        cr_expect_neq(strstr(out, "subgroup 8"), NULL, "%s", out);
    }
    free(out);
    snprintf(cmd, sizeof cmd, "%s inspect --devices extra.gguf 2>&1", tu_qfit_bin());
    out = tu_run(cmd, &st);
    cr_expect_neq(st, 0, "%s", out);
    free(out);
}

/* An unknown device is an error wherever it is named: option, environment, parameters. */
Test(backend, unknown_device_is_an_error)
{
    char err[256];
    qfit_context_params p = qfit_context_default_params();
    cr_expect_eq(qfit_context_params_parse_arg(&p, "--device", "gpu", err, sizeof err), -1);
    cr_expect_neq(strstr(err, "unknown device 'gpu'"), NULL, "%s", err);
    cr_expect_neq(strstr(err, qfit_device_names()), NULL, "%s", err);
    cr_expect_str_eq(p.device, "");
    cr_expect_eq(qfit_context_params_parse_arg(&p, "--device", "", err, sizeof err), -1);
    cr_expect_eq(qfit_context_params_parse_arg(&p, "--device", "ref", err, sizeof err), 1);
    cr_expect_str_eq(p.device, "ref");

    char applied[256];
    p = qfit_context_default_params();
    setenv("QFIT_DEVICE", "metal", 1);
    cr_expect_eq(qfit_context_params_from_env(&p, applied, sizeof applied, err, sizeof err), -1);
    cr_expect_neq(strstr(err, "QFIT_DEVICE=metal is not a device"), NULL, "%s", err);
    setenv("QFIT_DEVICE", "ref", 1);
    cr_expect_eq(qfit_context_params_from_env(&p, applied, sizeof applied, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(p.device, "ref");
    cr_expect_neq(strstr(applied, "QFIT_DEVICE=ref"), NULL, "%s", applied);
    unsetenv("QFIT_DEVICE");

    qfit_model *m = load_kjv();
    p = qfit_context_default_params();
    p.n_ctx = 64;
    snprintf(p.device, sizeof p.device, "vulkan99");
    cr_expect_null(qfit_context_new(m, &p, err, sizeof err));
    cr_expect_neq(strstr(err, "unknown device \"vulkan99\""), NULL, "%s", err);
    memset(p.device, 'x', sizeof p.device);   /* not terminated */
    cr_expect_null(qfit_context_new(m, &p, err, sizeof err));
    cr_expect_neq(strstr(err, "not terminated"), NULL, "%s", err);
    cr_expect_eq(qfit_device_supports("ref", m, err, sizeof err), 0, "%s", err);
    cr_expect_eq(qfit_device_supports("cpu", m, err, sizeof err), 0, "%s", err);
    cr_expect_eq(qfit_device_supports("npu", m, err, sizeof err), -1);
    /* layers to offload need a device to run them */
    p = qfit_context_default_params();
    p.n_ctx = 64;
    cr_expect_eq(p.n_gpu_layers, -1);
    p.n_gpu_layers = 3;
    cr_expect_null(qfit_context_new(m, &p, err, sizeof err));
    cr_expect_neq(strstr(err, "device cpu has none"), NULL, "%s", err);
    p.n_gpu_layers = 10;   /* 8 layers and the output: at most 9 */
    cr_expect_null(qfit_context_new(m, &p, err, sizeof err));
    cr_expect_neq(strstr(err, "this model has 8"), NULL, "%s", err);
    p = qfit_context_default_params();
    cr_expect_eq(qfit_context_params_parse_arg(&p, "-ngl", "x", err, sizeof err), -1);
    cr_expect_eq(qfit_context_params_parse_arg(&p, "--gpu-layers", "-2", err, sizeof err), -1);
    cr_expect_eq(qfit_context_params_parse_arg(&p, "--gpu-layers", "7", err, sizeof err), 1);
    cr_expect_eq(p.n_gpu_layers, 7);
    qfit_model_free(m);
}

/* The reference backend refuses what it does not compute, naming it, when the context is
 * made; the CPU takes the same model. */
Test(backend, ref_refuses_what_it_cannot_run, .timeout = 300)
{
    const struct { const char *shape, *why; } cases[] = {
        { "tiny-qwen3moe", "mixture-of-experts" },
        { "tiny-gemma2", "soft-capping" },
        { "tiny-gpt-oss", "mixture-of-experts" },
        { "tiny-phi3-longrope", "LongRoPE" },
        { "tiny-bert", "post-norm blocks" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64], err[256];
        snprintf(name, sizeof name, "%s.gguf", cases[i].shape);
        const char *path = tu_synth(cases[i].shape, QFIT_FTYPE_ALL_F32, 7, name);
        qfit_model *m = qfit_model_load(path, err, sizeof err);
        cr_assert_not_null(m, "%s: %s", cases[i].shape, err);
        cr_expect_eq(qfit_device_supports("ref", m, err, sizeof err), -1, "%s: the reference took it", cases[i].shape);
        cr_expect_neq(strstr(err, cases[i].why), NULL, "%s: %s", cases[i].shape, err);
        cr_expect_neq(strstr(err, "device ref"), NULL, "%s", err);
        qfit_context_params p = qfit_context_default_params();
        p.n_ctx = 64;
        snprintf(p.device, sizeof p.device, "ref");
        cr_expect_null(qfit_context_new(m, &p, err, sizeof err), "%s: a context on ref", cases[i].shape);
        cr_expect_neq(strstr(err, cases[i].why), NULL, "%s: %s", cases[i].shape, err);
        cr_expect_eq(qfit_device_supports("cpu", m, err, sizeof err), 0, "%s: %s", cases[i].shape, err);
        snprintf(p.device, sizeof p.device, "cpu");
        qfit_context *c = qfit_context_new(m, &p, err, sizeof err);
        cr_expect_not_null(c, "%s on cpu: %s", cases[i].shape, err);
        qfit_context_free(c);
        qfit_model_free(m);
    }
}

/* ------------------------------------------------------- the reference */

static int32_t *val_ids(size_t *n)
{
    char *txt = tu_read_file(tu_shared_path("testdata/kjv-llama-7m/tokenizer/kjv-llama-7m-val.ids"), NULL);
    cr_assert_not_null(txt);
    size_t cap = 4096, k = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    cr_assert_not_null(ids);
    for (char *p = txt, *end; k < cap;) {
        while (*p && (*p < '0' || *p > '9')) p++;
        if (!*p) break;
        ids[k++] = (int32_t)strtol(p, &end, 10);
        p = end;
    }
    free(txt);
    *n = k;
    return ids;
}

static qfit_ppl_result ppl_ngl(const qfit_model *m, const char *device, int ngl, int type, const int32_t *ids,
                               size_t n, const char *save, const char *base)
{
    char err[256];
    qfit_context *c = ctx_ngl(m, device, ngl, 512, type, 1);
    qfit_ppl_params pp;
    qfit_ppl_params_init(&pp);
    pp.n_ctx = 512;
    pp.n_chunks = base ? -1 : 2;
    pp.bos = 1;
    pp.save_logits = save;
    pp.kld_base = base;
    qfit_ppl_result r;
    cr_assert_eq(qfit_perplexity(c, ids, n, &pp, &r, err, sizeof err), 0, "%s", err);
    cr_assert_eq(r.n_chunks, 2);
    qfit_context_free(c);
    return r;
}

static qfit_ppl_result ppl_on(const qfit_model *m, const char *device, int type, const int32_t *ids, size_t n,
                              const char *save, const char *base)
{
    return ppl_ngl(m, device, -1, type, ids, n, save, base);
}

/* Perplexity (2 chunks of 512) per KV cache type on the reference and on the CPU backend
 * (which tests/test_kv.c holds to llama.cpp per cache type), and each quantized cache's
 * KL-divergence from the backend's own f16 run within 25% of the CPU's (a cache type not
 * honoured gives 0; q8_0 in place of q4_0, 200x less). F16 also against llama.cpp's
 * 22.9159 (test_engine_paths' PPL2_F32).
 * Measured: f16 ref 22.915892 / cpu 22.915852; q8_0 22.914713 / 22.914423 (1.3e-5 apart);
 * q4_0 22.924461 / 22.911077 (5.8e-4): the reference's K and V differ from the CPU's in
 * the last bits (double sums), and a q4_0 rounding that flips moves a value by a
 * sixteenth of its block's range. Bounds: 1e-4 for f16 and q8_0; 2e-3 for q4_0, which
 * still catches a cache stored without its Hadamard rotation (0.77% on 2 chunks,
 * tests/test_kv.c). */
Test(backend, ref_perplexity_per_cache_type, .timeout = 900)
{
    qfit_model *m = load_kjv();
    size_t n = 0;
    int32_t *ids = val_ids(&n);
    cr_assert_geq(n, (size_t)1024);
    const int types[] = { QFIT_TYPE_Q8_0, QFIT_TYPE_Q4_0 };
    const char *devs[] = { "cpu", "ref" };
    double ppl16[2], kld[2][2], ppl[2][2];
    for (int d = 0; d < 2; d++) {
        char base[600];
        snprintf(base, sizeof base, "%s/backend-f16-%s.logits", tu_tmpdir(), devs[d]);
        ppl16[d] = ppl_on(m, devs[d], QFIT_TYPE_F16, ids, n, base, NULL).ppl;
        for (int t = 0; t < 2; t++) {
            qfit_ppl_result r = ppl_on(m, devs[d], types[t], ids, n, NULL, base);
            cr_assert(r.has_kld);
            ppl[d][t] = r.ppl;
            kld[d][t] = r.kld_mean;
        }
    }
    cr_log_info("f16 ppl: cpu %.6f, ref %.6f (llama.cpp 22.9159)", ppl16[0], ppl16[1]);
    cr_expect_leq(fabs(ppl16[1] / 22.9159 - 1), 1e-4, "ref f16: ppl %.6f vs llama.cpp 22.9159", ppl16[1]);
    cr_expect_leq(fabs(ppl16[1] / ppl16[0] - 1), 1e-4, "f16: ref %.6f vs cpu %.6f", ppl16[1], ppl16[0]);
    for (int t = 0; t < 2; t++) {
        const char *tn = qfit_type_name(types[t]);
        cr_log_info("%s: ppl cpu %.6f ref %.6f; KLD from f16 cpu %.6f ref %.6f", tn, ppl[0][t], ppl[1][t], kld[0][t],
                    kld[1][t]);
        const double tol = types[t] == QFIT_TYPE_Q4_0 ? 2e-3 : 1e-4;
        cr_expect_leq(fabs(ppl[1][t] / ppl[0][t] - 1), tol, "%s cache: ref ppl %.6f vs cpu %.6f", tn, ppl[1][t],
                      ppl[0][t]);
        cr_expect_leq(fabs(kld[1][t] / kld[0][t] - 1), 0.25, "%s cache: ref KLD %.6f vs cpu %.6f", tn, kld[1][t],
                      kld[0][t]);
    }
    free(ids);
    qfit_model_free(m);
}

/* The three prompts below (VS_NP tokens each) on device (ngl layers there; q8_0 cache,
 * rotated), each decoded alone in its own context, then VS_NG greedy tokens; and the three
 * together in one context of three sequences (prompts interleaved token by token, then one
 * greedy token of each per pass): every step's logits into alone[s][g] and together[s][g]. */
enum { VS_NS = 3, VS_NP = 9, VS_NG = 4, VS_NV = 2048 };
static const int32_t VS_PROMPT[VS_NS][VS_NP] = {
    { 1, 1046, 261, 1909, 1289, 271, 261, 336, 1991 },
    { 1, 270, 292, 261, 1046, 1909, 271, 336, 1289 },
    { 1, 336, 1991, 270, 261, 292, 1046, 271, 261 },
};

static void sequences_alone_and_together(const qfit_model *m, const char *dev, int ngl,
                                         float alone[VS_NS][VS_NG][VS_NV], float together[VS_NS][VS_NG][VS_NV])
{
    for (int s = 0; s < VS_NS; s++) {
        qfit_context *c = ctx_ngl(m, dev, ngl, 64, QFIT_TYPE_Q8_0, 1);
        cr_assert_eq(qfit_decode(c, VS_PROMPT[s], VS_NP, VS_NP - 1), 0, "%s", qfit_context_error(c));
        for (int g = 0; g < VS_NG; g++) {
            const float *l = qfit_get_logits(c, 0);
            memcpy(alone[s][g], l, sizeof alone[s][g]);
            int32_t tk = qfit_argmax(l, VS_NV);
            cr_assert_eq(qfit_decode(c, &tk, 1, 0), 0, "%s", qfit_context_error(c));
        }
        qfit_context_free(c);
    }
    qfit_context *c = ctx_ngl(m, dev, ngl, 64, QFIT_TYPE_Q8_0, VS_NS);
    int32_t tok[VS_NS * VS_NP];
    int seq[VS_NS * VS_NP];
    bool want[VS_NS * VS_NP];
    for (int i = 0; i < VS_NP; i++)
        for (int s = 0; s < VS_NS; s++) {
            tok[i * VS_NS + s] = VS_PROMPT[s][i];
            seq[i * VS_NS + s] = s;
            want[i * VS_NS + s] = i == VS_NP - 1;
        }
    qfit_batch b = { VS_NS * VS_NP, tok, seq, want };
    cr_assert_eq(qfit_decode_batch(c, &b), 0, "%s", qfit_context_error(c));
    for (int g = 0; g < VS_NG; g++) {
        int32_t next[VS_NS];
        int sq[VS_NS];
        bool w[VS_NS];
        for (int s = 0; s < VS_NS; s++) {
            const float *l = qfit_get_logits(c, s);
            memcpy(together[s][g], l, sizeof together[s][g]);
            next[s] = qfit_argmax(l, VS_NV);
            sq[s] = s;
            w[s] = 1;
        }
        qfit_batch nb = { VS_NS, next, sq, w };
        cr_assert_eq(qfit_decode_batch(c, &nb), 0, "%s", qfit_context_error(c));
    }
    qfit_context_free(c);
}

static double max_diff(const float *a, const float *b, int n)
{
    double md = 0;
    for (int v = 0; v < n; v++) md = fmax(md, fabs((double)a[v] - b[v]));
    return md;
}

/* Three sequences in the same passes (prompts interleaved token by token, then one token
 * of each per pass) give each sequence exactly the logits it gets alone: the reference
 * computes every (token, head) and every output row the same way whatever else is in
 * the pass, so the comparison is for equality. */
Test(backend, ref_sequences_together_equal_alone, .timeout = 300)
{
    qfit_model *m = load_kjv();
    static float alone[VS_NS][VS_NG][VS_NV], together[VS_NS][VS_NG][VS_NV];
    sequences_alone_and_together(m, "ref", -1, alone, together);
    for (int s = 0; s < VS_NS; s++)
        for (int g = 0; g < VS_NG; g++) {
            const double md = max_diff(together[s][g], alone[s][g], VS_NV);
            cr_expect_eq(md, 0.0, "sequence %d step %d: together vs alone differ by %g", s, g, md);
        }
    qfit_model_free(m);
}

/* ------------------------------------------------------------------ Vulkan */

/* Perplexity of 2 chunks of 512 (F32 weights, f16 cache) on the Vulkan device, all layers
 * and the last 4 of 8: within 1e-4 of the CPU backend's and of llama.cpp's 22.9159 (the
 * CPU's is within 2e-6 of it; a layer's op computed wrong moves it by percent, a cache
 * position off by one by more, a layer run twice or skipped by more still). */
Test(backend, vulkan_perplexity_matches_cpu, .timeout = 900)
{
    const char *dev = tu_vulkan_device();
    qfit_model *m = load_kjv();
    size_t n = 0;
    int32_t *ids = val_ids(&n);
    const double cpu = ppl_on(m, "cpu", QFIT_TYPE_F16, ids, n, NULL, NULL).ppl;
    const double gpu = ppl_on(m, dev, QFIT_TYPE_F16, ids, n, NULL, NULL).ppl;
    const double half = ppl_ngl(m, dev, 4, QFIT_TYPE_F16, ids, n, NULL, NULL).ppl;   /* the last 4 of 8 layers */
    cr_log_info("ppl 2 chunks: cpu %.6f, %s %.6f, half offloaded %.6f (llama.cpp 22.9159)", cpu, dev, gpu, half);
    cr_expect_leq(fabs(gpu / cpu - 1), 1e-4, "%s %.6f vs cpu %.6f", dev, gpu, cpu);
    cr_expect_leq(fabs(gpu / 22.9159 - 1), 1e-4, "%s %.6f vs llama.cpp 22.9159", dev, gpu);
    cr_expect_leq(fabs(half / cpu - 1), 1e-4, "%s, 4 layers: %.6f vs cpu %.6f", dev, half, cpu);
    free(ids);
    qfit_model_free(m);
}

/* What the Vulkan backend does not run yet is refused, naming it: models (Q/K/V biases,
 * soft-capping) and contexts (cache types other than f16, q8_0 and q4_0). */
Test(backend, vulkan_refuses_what_it_cannot_run, .timeout = 300)
{
    const char *dev = tu_vulkan_device();
    char err[256];
    const struct { const char *shape, *why; } cases[] = {
        { "tiny-qwen2", "biases" },
        { "tiny-gemma2", "soft-capping" },
        { "tiny-qwen3moe", "mixture-of-experts" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "vk-%s.gguf", cases[i].shape);
        qfit_model *m = qfit_model_load(tu_synth(cases[i].shape, QFIT_FTYPE_ALL_F32, 7, name), err, sizeof err);
        cr_assert_not_null(m, "%s", err);
        cr_expect_eq(qfit_device_supports(dev, m, err, sizeof err), -1, "%s taken", cases[i].shape);
        cr_expect_neq(strstr(err, cases[i].why), NULL, "%s: %s", cases[i].shape, err);
        qfit_model_free(m);
    }
    qfit_model *m = load_kjv();
    qfit_context_params p = qfit_context_default_params();
    p.n_ctx = 64;
    snprintf(p.device, sizeof p.device, "%s", dev);
    p.type_k = QFIT_TYPE_Q5_0;   /* the CPU takes it */
    cr_expect_null(qfit_context_new(m, &p, err, sizeof err));
    cr_expect_neq(strstr(err, "takes f16, q8_0 and q4_0 so far (q5_0/f16 requested)"), NULL, "%s", err);
    p.type_k = QFIT_TYPE_F16;
    p.type_v = QFIT_TYPE_F32;
    cr_expect_null(qfit_context_new(m, &p, err, sizeof err));
    cr_expect_neq(strstr(err, "(f16/f32 requested)"), NULL, "%s", err);
    p.type_v = QFIT_TYPE_F16;
    qfit_context *c = qfit_context_new(m, &p, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    qfit_context_free(c);
    qfit_model_free(m);
}

/* ppl of 2 chunks of 256 with cache types k and v on device (the last ngl layers) */
static double ppl_kv(const qfit_model *m, const char *device, int ngl, int type_k, int type_v, const int32_t *ids,
                     size_t n)
{
    char err[256];
    qfit_context_params p = qfit_context_default_params();
    p.n_ctx = 256;
    p.n_threads = 2;
    p.type_k = type_k;
    p.type_v = type_v;
    p.n_gpu_layers = ngl;
    snprintf(p.device, sizeof p.device, "%s", device);
    qfit_context *c = qfit_context_new(m, &p, err, sizeof err);
    cr_assert_not_null(c, "device %s: %s", device, err);
    qfit_ppl_params pp;
    qfit_ppl_params_init(&pp);
    pp.n_ctx = 256;
    pp.n_chunks = 2;
    pp.bos = 1;
    qfit_ppl_result r;
    cr_assert_eq(qfit_perplexity(c, ids, n, &pp, &r, err, sizeof err), 0, "%s", err);
    cr_assert_eq(r.n_chunks, 2);
    qfit_context_free(c);
    return r.ppl;
}

/* Perplexity (2 chunks of 256, F32 weights: the debug build's CPU runs are slow) with
 * quantized KV caches on the Vulkan device against the CPU backend's with the same cache
 * types: q8_0 and q4_0 (Hadamard-rotated, as the CPU stores them: head_dim 64), and q4_0
 * with the last 4 of 8 layers offloaded (K and V of different types:
 * engine/vulkan_kv_cache_types_logits). Bound 1e-3 (issue 16's 0.1%). What separates the
 * two: the device's K and V differ from the CPU's in the last bits (float32 sums in another
 * order), and a quantization rounding that flips moves a value by a step of its block (a
 * sixteenth of its range in q4_0); the ref backend, with the same kind of difference,
 * measured 5.8e-4 for q4_0 (backend/ref_perplexity_per_cache_type). Measured on lavapipe:
 * q8_0 1.9e-5, q4_0 4.8e-5, q4_0 half offloaded 1.7e-5 (2 x 512 while developing: K q8_0
 * V f16 7.0e-6, K f16 V q4_0 6.2e-5). A cache stored without its rotation, a query not rounded to q8_0 for block keys,
 * or a wrong block layout move it by more (a missing rotation: 0.77% for q4_0,
 * tests/test_kv.c). */
Test(backend, vulkan_perplexity_per_cache_type, .timeout = 900)
{
    const char *dev = tu_vulkan_device();
    qfit_model *m = load_kjv();
    size_t n = 0;
    int32_t *ids = val_ids(&n);
    const int Q8 = QFIT_TYPE_Q8_0, Q4 = QFIT_TYPE_Q4_0;
    const struct { int k, v, ngl; } cases[] = { { Q8, Q8, -1 }, { Q4, Q4, -1 }, { Q4, Q4, 4 } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const double cpu = ppl_kv(m, "cpu", -1, cases[i].k, cases[i].v, ids, n);
        const double gpu = ppl_kv(m, dev, cases[i].ngl, cases[i].k, cases[i].v, ids, n);
        cr_log_info("K %s V %s, %d layers: ppl cpu %.6f, %s %.6f (%.2e apart)", qfit_type_name(cases[i].k),
                    qfit_type_name(cases[i].v), cases[i].ngl, cpu, dev, gpu, fabs(gpu / cpu - 1));
        cr_expect_leq(fabs(gpu / cpu - 1), 1e-3, "K %s V %s (%d layers): %s %.6f vs cpu %.6f",
                      qfit_type_name(cases[i].k), qfit_type_name(cases[i].v), cases[i].ngl, dev, gpu, cpu);
    }
    free(ids);
    qfit_model_free(m);
}

/* Perplexity (2 chunks of 256, f16 cache) of qfit's Q4_K_M, Q4_0 and Q8_0 mixes of the
 * shared model on the Vulkan device against the reference backend's (the oracle, which
 * rounds each product's input as ggml's CPU does) on the same file: within 1e-3 (issue
 * 16's 0.1%). The device rounds each product's input the same way (qfit_vk_round_rows).
 * Measured (release, lavapipe): Q4_K_M 23.5075 vs ref 23.5054 (9e-5), Q4_0 23.9643 vs
 * 23.9732 (3.7e-4), Q8_0 23.3722 vs 23.3682 (1.7e-4). The CPU backend is logged, not
 * bounded here: its default flash-attention path gives 23.5636, 23.9823, 23.3764, and
 * without flash attention 23.4947 and 24.0065 for Q4_K_M and Q4_0 (F32 weights: the same
 * either way), up to 2.5e-3 from the reference. */
Test(backend, vulkan_perplexity_quantized, .timeout = 900)
{
    const char *dev = tu_vulkan_device();
    size_t n = 0;
    int32_t *ids = val_ids(&n);
    const char *mixes[] = { "Q4_K_M", "Q4_0", "Q8_0" };
    for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++) {
        char err[256], name[64];
        snprintf(name, sizeof name, "backend-kjv-vk-%s.gguf", mixes[i]);
        qfit_model *m = qfit_model_load(tu_kjv_quantized(mixes[i], name), err, sizeof err);
        cr_assert_not_null(m, "%s", err);
        const double ref = ppl_kv(m, "ref", -1, QFIT_TYPE_F16, QFIT_TYPE_F16, ids, n);
        const double cpu = ppl_kv(m, "cpu", -1, QFIT_TYPE_F16, QFIT_TYPE_F16, ids, n);
        const double gpu = ppl_kv(m, dev, -1, QFIT_TYPE_F16, QFIT_TYPE_F16, ids, n);
        cr_log_info("%s: ppl ref %.6f, %s %.6f (%.2e apart); cpu %.6f (%.2e from the device)", mixes[i], ref, dev, gpu,
                    fabs(gpu / ref - 1), cpu, fabs(gpu / cpu - 1));
        cr_expect_leq(fabs(gpu / ref - 1), 1e-3, "%s: %s %.6f vs ref %.6f", mixes[i], dev, gpu, ref);
        qfit_model_free(m);
    }
    free(ids);
}

/* Three sequences in the same passes on the Vulkan device (prompts interleaved token by
 * token, then one token of each per pass) give each sequence the logits it gets alone.
 * All layers there: exactly (each (token, head) of the device's attention is one workgroup
 * that reads only its token's sequence, and its matrix products and norms compute every
 * row the same way whatever the other rows are). The last 4 of 8 layers there: the CPU's
 * first 4 (reading the host cache) take another path for a pass of 27 interleaved tokens
 * than for one of 9 (a run of one token is a decode), so within the CPU's own bound for
 * that, tests/test_multiseq.c's path_tol: 0.1 with a block-type cache (measured 3.8e-6;
 * a token that attends to another sequence's cells moves logits by whole units). q8_0 cache
 * (rotated). */
Test(backend, vulkan_sequences_together_equal_alone, .timeout = 600)
{
    const char *dev = tu_vulkan_device();
    qfit_model *m = load_kjv();
    static float alone[VS_NS][VS_NG][VS_NV], together[VS_NS][VS_NG][VS_NV];
    const int ngls[2] = { -1, 4 };
    for (int t = 0; t < 2; t++) {
        sequences_alone_and_together(m, dev, ngls[t], alone, together);
        for (int s = 0; s < VS_NS; s++)
            for (int g = 0; g < VS_NG; g++) {
                const double md = max_diff(together[s][g], alone[s][g], VS_NV);
                cr_expect_leq(md, ngls[t] < 0 ? 0.0 : 0.1, "%d layers, sequence %d step %d: together vs alone differ by "
                              "%g", ngls[t], s, g, md);
                if (s == 0 && g == 0) cr_log_info("%d layers: together vs alone %g", ngls[t], md);
            }
    }
    qfit_model_free(m);
}

/* Prefix reuse on the Vulkan device, all layers there and the last 4 of 8: prompt B shares
 * its first 5 tokens with prompt A (decoded into sequence 0). B's logits and its greedy
 * step are the same, bit for bit, (1) decoded from scratch, (2) after A in the same
 * sequence cut back to the shared prefix (qfit_seq_truncate: what the serving engine's
 * batcher does) and (3) in sequence 1 after qfit_seq_copy of sequence 0's first 5
 * positions (copied on the device, and in the host cache for the CPU's layers): each row
 * of a pass is computed the same way whatever the other rows are, so recomputed and kept
 * K/V cells hold the same bits. A copy that does not reach the device's cells leaves
 * sequence 1 reading zeros. */
Test(backend, vulkan_prefix_reuse_equals_recompute, .timeout = 600)
{
    const char *dev = tu_vulkan_device();
    qfit_model *m = load_kjv();
    enum { NA = 9, NB = 8, KEEP = 5 };
    const int32_t A[NA] = { 1, 1046, 261, 1909, 1289, 271, 261, 336, 1991 };
    const int32_t B[NB] = { 1, 1046, 261, 1909, 1289, 336, 1991, 270 };
    static float l[3][2][VS_NV];
    const int ngls[2] = { -1, 4 };
    for (int t = 0; t < 2; t++) {
        for (int way = 0; way < 3; way++) {
            qfit_context *c = ctx_ngl(m, dev, ngls[t], 64, QFIT_TYPE_Q4_0, 2);
            int s = 0;
            if (way > 0) {
                cr_assert_eq(qfit_decode(c, A, NA, NA - 1), 0, "%s", qfit_context_error(c));
                if (way == 1) {
                    qfit_seq_truncate(c, 0, KEEP);
                    cr_assert_eq(qfit_seq_n_past(c, 0), KEEP);
                } else {
                    cr_assert_eq(qfit_seq_copy(c, 0, 1, KEEP), 0, "%s", qfit_context_error(c));
                    cr_assert_eq(qfit_seq_n_past(c, 1), KEEP);
                    s = 1;
                }
            }
            const int from = way > 0 ? KEEP : 0, nt = NB - from;
            int sq[NB];
            bool want[NB];
            for (int i = 0; i < nt; i++) {
                sq[i] = s;
                want[i] = i == nt - 1;
            }
            qfit_batch b = { nt, B + from, sq, want };
            cr_assert_eq(qfit_decode_batch(c, &b), 0, "%s", qfit_context_error(c));
            memcpy(l[way][0], qfit_get_logits(c, 0), sizeof l[way][0]);
            int32_t next = qfit_argmax(l[way][0], VS_NV);
            qfit_batch nb = { 1, &next, &s, NULL };
            bool w1 = true;
            nb.logits = &w1;
            cr_assert_eq(qfit_decode_batch(c, &nb), 0, "%s", qfit_context_error(c));
            memcpy(l[way][1], qfit_get_logits(c, 0), sizeof l[way][1]);
            qfit_context_free(c);
        }
        for (int way = 1; way < 3; way++)
            for (int g = 0; g < 2; g++) {
                const double md = max_diff(l[way][g], l[0][g], VS_NV);
                cr_expect_eq(md, 0.0, "%d layers, %s, step %d: reused prefix vs recomputed differ by %g", ngls[t],
                             way == 1 ? "truncated in place" : "copied to sequence 1", g, md);
            }
    }
    qfit_model_free(m);
}

/* The context shift with the cache on the Vulkan device (qfit_seq_shift: the sequence's
 * cells of the device's layers shifted in a transient host copy as the CPU shifts them, and
 * back): sequence 1 of two
 * holds 24 tokens of the validation text, keeps 4 and discards 8 (its keys re-rotated by
 * RoPE, rotated q8_0 ones dequantized and requantized), then both sequences take 5 greedy
 * tokens a pass. Each step's logits against the CPU backend doing the same: the same tokens,
 * and within 0.02 (engine/vulkan_kv_cache_types_logits' bound) for f16 with the last 4
 * layers there, 0.08 for q8_0 with every layer there. Measured on lavapipe: f16 half
 * offloaded 2e-5; q8_0 0.042 (sequence 0, not shifted: 6.5e-4). The q8_0 number is last
 * bits amplified: the two sides' caches differ by q8_0 roundings that flipped, and the
 * shift requantizes every key it moves; with the CPU's prefill attention in the 8-row
 * kernel's former summation order (before it took the per-row path's) the same test
 * measured 0.0146 (sequence 0: 0.0079). A shift whose cells never reach the device
 * (sequence 1 then reads positions 12.. as 4..) changes the greedy tokens at the first
 * step; sequence 0 is untouched. */
Test(backend, vulkan_context_shift_matches_cpu, .timeout = 600)
{
    const char *dev = tu_vulkan_device();
    qfit_model *m = load_kjv();
    size_t n = 0;
    int32_t *ids = val_ids(&n);
    enum { NP = 24, KEEP = 4, DROP = 8, NG = 5 };
    static float l[2][2][NG][VS_NV];
    const struct { int type, ngl; double tol; } cases[] = { { QFIT_TYPE_Q8_0, -1, 0.08 }, { QFIT_TYPE_F16, 4, 0.02 } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t tok[2][NG];
        for (int d = 0; d < 2; d++) {
            qfit_context *c = ctx_ngl(m, d ? dev : "cpu", d ? cases[i].ngl : -1, 64, cases[i].type, 2);
            int sq[NP], sq1[NP];
            for (int j = 0; j < NP; j++) {
                sq[j] = j < 6 ? 0 : 1;   /* 6 tokens of sequence 0, 18 of sequence 1, then 24 more of 1 */
                sq1[j] = 1;
            }
            qfit_batch b = { NP, ids + 100, sq, NULL };
            cr_assert_eq(qfit_decode_batch(c, &b), 0, "%s", qfit_context_error(c));
            b = (qfit_batch){ NP, ids + 200, sq1, NULL };
            cr_assert_eq(qfit_decode_batch(c, &b), 0, "%s", qfit_context_error(c));
            const int past0 = qfit_seq_n_past(c, 0), past1 = qfit_seq_n_past(c, 1);
            cr_assert_eq(qfit_seq_shift(c, 1, KEEP, DROP), 0, "%s", qfit_context_error(c));
            cr_assert_eq(qfit_seq_n_past(c, 1), past1 - DROP);
            cr_assert_eq(qfit_seq_n_past(c, 0), past0);
            int32_t next[2] = { ids[300], ids[301] };
            const int s2[2] = { 0, 1 };
            const bool w[2] = { 1, 1 };
            for (int g = 0; g < NG; g++) {
                qfit_batch nb = { 2, next, s2, w };
                cr_assert_eq(qfit_decode_batch(c, &nb), 0, "%s", qfit_context_error(c));
                for (int s = 0; s < 2; s++) {
                    memcpy(l[d][s][g], qfit_get_logits(c, s), sizeof l[d][s][g]);
                    next[s] = qfit_argmax(l[d][s][g], VS_NV);
                }
                if (d) cr_expect_eq(next[1], tok[1][g], "%s cache, %d layers: step %d token %d, cpu %d",
                                    qfit_type_name(cases[i].type), cases[i].ngl, g, next[1], tok[1][g]);
                else tok[1][g] = next[1];
            }
            qfit_context_free(c);
        }
        double worst[2] = { 0, 0 };
        for (int s = 0; s < 2; s++)
            for (int g = 0; g < NG; g++) worst[s] = fmax(worst[s], max_diff(l[1][s][g], l[0][s][g], VS_NV));
        cr_log_info("%s cache, %d layers: after the shift, max |dlogit| vs cpu %.3g (sequence 0: %.3g)",
                    qfit_type_name(cases[i].type), cases[i].ngl, worst[1], worst[0]);
        for (int s = 0; s < 2; s++)
            cr_expect_leq(worst[s], cases[i].tol, "%s cache, %d layers, sequence %d: max |dlogit| vs cpu %g",
                          qfit_type_name(cases[i].type), cases[i].ngl, s, worst[s]);
    }
    free(ids);
    qfit_model_free(m);
}

/* The Vulkan device's paths (QFIT_VK_FEATURES none against all: the shader builds, and the
 * weights copied against read in place from the mapping; the context's description names
 * the ones it took) give the same logits bit for bit: the
 * shared model's Q4_K_M mix (Q4_K, Q6_K and F32 products, the storage path's byte and
 * fp16 loads) every layer on the device with a q8_0 cache (rotated keys: the attention's
 * query rounding), a 40-token prompt (prefill: several activation rows, two chunks of
 * positions) then 3 greedy tokens one at a time (decode). The rest of the suite runs the
 * builds the device offers; vulkan/feature_paths_agree_bitwise holds each op to this. */
Test(backend, vulkan_feature_paths_same_logits, .timeout = 600)
{
    const char *dev = tu_vulkan_device();
    char err[256];
    qfit_model *m = qfit_model_load(tu_kjv_quantized("Q4_K_M", "backend-kjv-vk-Q4_K_M.gguf"), err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    size_t n = 0;
    int32_t *ids = val_ids(&n);
    enum { NP = 40, NG = 3 };
    /* the single-feature builds are held to the plain ones op by op
     * (vulkan/feature_paths_agree_bitwise); here the two ends, on a whole model */
    const char *paths[] = { "none", "all" };
    /* all: every one of the 57 matrices (7 a layer and the output) read from the file's
     * mapping in place, the norms copied */
    const char *named[] = { "paths: none)", "paths: subgroup,storage,import; 57 of 57 matrices read in place from the mapping)" };
    static float l[2][NP + NG][VS_NV];   /* every prompt row's logits, then each greedy token's */
    bool want[NP];
    for (int j = 0; j < NP; j++) want[j] = true;
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(setenv("QFIT_VK_FEATURES", paths[i], 1), 0);
        qfit_context *c = ctx_ngl(m, dev, -1, 128, QFIT_TYPE_Q8_0, 1);
        char desc[512];
        qfit_context_describe(c, desc, sizeof desc);
        cr_assert_neq(strstr(desc, named[i]), NULL, "QFIT_VK_FEATURES=%s: %s", paths[i], desc);
        int sq[NP] = { 0 };
        qfit_batch b = { NP, ids + 50, sq, want };
        cr_assert_eq(qfit_decode_batch(c, &b), 0, "%s", qfit_context_error(c));
        cr_assert_eq(qfit_n_logits(c), NP);
        for (int j = 0; j < NP; j++) memcpy(l[i][j], qfit_get_logits(c, j), sizeof l[i][j]);
        for (int g = 0; g < NG; g++) {
            int32_t next = qfit_argmax(l[i][NP - 1 + g], VS_NV);
            qfit_batch nb = { 1, &next, sq, want };
            cr_assert_eq(qfit_decode_batch(c, &nb), 0, "%s", qfit_context_error(c));
            memcpy(l[i][NP + g], qfit_get_logits(c, 0), sizeof l[i][NP + g]);
        }
        qfit_context_free(c);
        if (i) cr_expect_eq(memcmp(l[i], l[0], sizeof l[0]), 0, "QFIT_VK_FEATURES=%s: logits differ from none's", paths[i]);
    }
    unsetenv("QFIT_VK_FEATURES");
    free(ids);
    qfit_model_free(m);
}
