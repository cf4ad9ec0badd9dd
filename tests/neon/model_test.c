/* Plain-C driver for the inference engine on AArch64, run under qemu-aarch64 by
 * tests/neon/run.sh (no Criterion, no tokenizer: the prompts' token ids come
 * from the reference .txt files).
 *
 * Loads the shared F32 model, quantizes it to Q8_0 and Q4_K_M in-process into a
 * temporary folder, and for each of the three files runs the 5 reference prompts
 * of tests/data/kjv-logits with the NEON ISA and with the scalar ISA forced
 * (qfit_isa_select, before each context is created), held to the rules of
 * tests/util/refparse.h (as the x86 engine suite):
 *   - last-position logits against llama.cpp's (x86) reference files:
 *     F32 max |dlogit| <= 0.02; quantized <= TU_QLOGIT_TOL, and nearer (RMS) to
 *     llama.cpp's logits of the same variant than to the other variants';
 *   - same top-1, greedy continuation (32 tokens) identical unless it diverges where
 *     llama.cpp's own top-2 margin is below TU_QLOGIT_NEAR_TIE (F32: never);
 *   - NEON against scalar: F32 within 1e-3 (quantized: each against llama.cpp only);
 * then the synthetic qwen2 / qwen3 / llama3 / qwen3moe / mixtral / gpt-oss test models of
 * tests/data/engine at F32 (check_syn), and the encoders tiny-bert / tiny-nomic-bert of
 * tests/data/encoder: llama.cpp's batch of three sequences, pooled (check_syn_encoder).
 * usage: model_test [SHARED_DIR] [full|quick] [REFS_DIR]
 *   SHARED_DIR default $QFIT_SHARED or ../shared; REFS_DIR default tests/data/kjv-logits
 *   full (default): F32, Q8_0 and Q4_K_M, NEON and scalar (~1 min of CPU under qemu);
 *   quick: Q8_0 and Q4_K_M, NEON only (for a second CPU model, e.g. without dotprod).
 * Prints "N passed, M failed"; exits nonzero on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qfit/kernels.h"
#include "qfit/model.h"
#include "qfit/quant.h"
#include "qfit/quantize.h"
#include "qfit/sample.h"
#include "qfit/synth.h"
#include "../util/refparse.h"
#include "../util/synmodel.h"

#define N_VOCAB 2048
#define N_PROMPTS 5
#define N_GREEDY 32

static int n_pass, n_fail;

#define CHECK(cond, ...) do { \
        if (cond) n_pass++; \
        else { n_fail++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    tu_kjv_ref p[N_PROMPTS];
} ref_set;

static int load_ref(const char *dir, const char *variant, ref_set *r)
{
    char err[512];
    for (int k = 0; k < N_PROMPTS; k++)
        if (tu_kjv_ref_load(dir, variant, k, &r->p[k], err, sizeof err) != 0) { printf("%s\n", err); return -1; }
    return 0;
}

typedef struct {
    float   logits[N_PROMPTS][N_VOCAB];
    int32_t greedy[N_PROMPTS][N_GREEDY];
} run_set;

static int run_prompts(const qfit_model *m, const ref_set *ref, run_set *out)
{
    char err[256];
    qfit_context_params p = qfit_context_default_params();
    p.n_ctx = 128;
    p.n_threads = 2;
    qfit_context *c = qfit_context_new(m, &p, err, sizeof err);
    if (!c) { printf("context: %s\n", err); return -1; }
    for (int k = 0; k < N_PROMPTS; k++) {
        qfit_context_reset(c);
        const int np = ref->p[k].n_prompt;
        if (qfit_decode(c, ref->p[k].prompt, np, np - 1) != 0) {
            printf("decode: %s\n", qfit_context_error(c));
            qfit_context_free(c);
            return -1;
        }
        const float *l = qfit_get_logits(c, 0);
        memcpy(out->logits[k], l, sizeof out->logits[k]);
        for (int s = 0; s < N_GREEDY; s++) {
            int32_t t = qfit_argmax(l, N_VOCAB);
            out->greedy[k][s] = t;
            if (s == N_GREEDY - 1) break;
            if (qfit_decode(c, &t, 1, 0) != 0) {
                printf("decode: %s\n", qfit_context_error(c));
                qfit_context_free(c);
                return -1;
            }
            l = qfit_get_logits(c, 0);
        }
    }
    qfit_context_free(c);
    return 0;
}

static void check_variant(const char *refs_dir, const char *path, const char *variant, double tol_ref,
                          double tol_isa, float near_tie, bool with_scalar)
{
    static ref_set refs[TU_KJV_N_VARIANTS];
    static run_set runs[2];
    int self = -1;
    for (int v = 0; v < TU_KJV_N_VARIANTS; v++) {
        if (load_ref(refs_dir, TU_KJV_VARIANTS[v], &refs[v]) != 0) { CHECK(0, "%s: reference files", variant); return; }
        if (!strcmp(TU_KJV_VARIANTS[v], variant)) self = v;
    }
    if (self < 0) { CHECK(0, "no reference for %s", variant); return; }
    const ref_set *ref = &refs[self];
    char err[256];
    qfit_model *m = qfit_model_load(path, err, sizeof err);
    CHECK(m != NULL, "load %s: %s", path, err);
    if (!m) return;
    const qfit_isa isas[2] = { QFIT_ISA_NEON, QFIT_ISA_SCALAR };
    for (int i = 0; i < (with_scalar ? 2 : 1); i++) {
        const char *isa = qfit_isa_name(isas[i]);
        if (qfit_isa_select(isas[i]) != 0) { CHECK(0, "cannot select ISA %s", isa); continue; }
        const double t0 = now_s();
        if (run_prompts(m, ref, &runs[i]) != 0) { CHECK(0, "%s %s: run failed", variant, isa); continue; }
        printf("  %-6s %-6s %.1f s\n", variant, isa, now_s() - t0);
        const run_set *r = &runs[i];
        for (int k = 0; k < N_PROMPTS; k++) {
            const tu_kjv_ref *rp = &ref->p[k];
            const double d = tu_max_abs_diff(r->logits[k], rp->logits, N_VOCAB);
            const double rms = tu_rms_diff(r->logits[k], rp->logits, N_VOCAB);
            const int dv = tu_first_divergence(r->greedy[k], rp->greedy, N_GREEDY);
            printf("  %-6s %-6s p%d vs llama.cpp: max |dlogit| %.5f, rms %.5f, greedy %s", variant, isa, k, d, rms,
                   dv < 0 ? "same" : "diverges");
            if (dv >= 0) printf(" at step %d (llama.cpp's margin %.4f)", dv, rp->margin[dv]);
            printf("\n");
            CHECK(d <= tol_ref, "%s %s prompt %d: max |dlogit| %g > %g", variant, isa, k, d, tol_ref);
            CHECK(qfit_argmax(r->logits[k], N_VOCAB) == qfit_argmax(rp->logits, N_VOCAB),
                  "%s %s prompt %d: top-1 differs", variant, isa, k);
            CHECK(dv < 0 || rp->margin[dv] < near_tie,
                  "%s %s prompt %d: greedy diverges at step %d where llama.cpp's margin is %g", variant, isa, k, dv,
                  dv < 0 ? 0.0 : rp->margin[dv]);
            for (int v = 0; v < TU_KJV_N_VARIANTS; v++) {
                const double ratio = tu_kjv_discrimination(variant, TU_KJV_VARIANTS[v]);
                if (ratio <= 0) continue;
                const double other = tu_rms_diff(r->logits[k], refs[v].p[k].logits, N_VOCAB);
                CHECK(rms < ratio * other, "%s %s prompt %d: rms %.4f from llama.cpp's %s, %.4f from its %s", variant,
                      isa, k, rms, variant, other, TU_KJV_VARIANTS[v]);
            }
        }
        if (i == 0 || tol_isa <= 0) continue;
        for (int k = 0; k < N_PROMPTS; k++) {
            const double d = tu_max_abs_diff(r->logits[k], runs[0].logits[k], N_VOCAB);
            printf("  %-6s scalar vs neon p%d: max |dlogit| %.7f\n", variant, k, d);
            CHECK(d <= tol_isa, "%s prompt %d: scalar vs neon %g > %g", variant, k, d, tol_isa);
        }
    }
    qfit_isa_select(QFIT_ISA_NEON);
    qfit_model_free(m);
}

/* A synthetic test model of tests/data/engine (synth, then tu_syn_rewrite, as the x86
 * engine suite): F32 logits of its 3 prompts within max(0.02, 1e-3 x spread) of
 * llama.cpp's, the same top-1 and the same 16-token greedy continuation, with NEON (and
 * scalar: within 1e-3 of NEON). */
static void check_syn(const char *dir, const char *shape, bool with_scalar)
{
    char raw[1100], path[1100], err[600];
    snprintf(raw, sizeof raw, "%s/%s-synth.gguf", dir, shape);
    snprintf(path, sizeof path, "%s/%s-f32.gguf", dir, shape);
    qfit_synth_params sp;
    memset(&sp, 0, sizeof sp);
    sp.shape = qfit_synth_find_shape(shape);
    CHECK(sp.shape != NULL, "synth has no shape %s", shape);
    if (!sp.shape) return;
    sp.ftype = QFIT_FTYPE_ALL_F32;
    sp.seed = TU_SYN_SEED;
    sp.n_threads = 2;
    const int ws = qfit_synth_write(raw, &sp, NULL, err, sizeof err);
    CHECK(ws == 0, "synth %s: %s", shape, err);
    if (ws != 0) return;
    const int rw = tu_syn_rewrite(raw, path, err, sizeof err);
    unlink(raw);
    CHECK(rw == 0, "rewrite %s: %s", shape, err);
    if (rw != 0) return;
    qfit_model *m = qfit_model_load(path, err, sizeof err);
    CHECK(m != NULL, "load %s: %s", path, err);
    if (!m) { unlink(path); return; }
    static tu_syn_ref ref;
    static float first[TU_SYN_PROMPTS][TU_SYN_VOCAB];
    const qfit_isa isas[2] = { QFIT_ISA_NEON, QFIT_ISA_SCALAR };
    for (int i = 0; i < (with_scalar ? 2 : 1); i++) {
        const char *isa = qfit_isa_name(isas[i]);
        if (qfit_isa_select(isas[i]) != 0) { CHECK(0, "cannot select ISA %s", isa); continue; }
        qfit_context_params p = qfit_context_default_params();
        p.n_ctx = 128;
        p.n_threads = 2;
        qfit_context *c = qfit_context_new(m, &p, err, sizeof err);
        CHECK(c != NULL, "%s context: %s", shape, err);
        if (!c) continue;
        for (int k = 0; k < TU_SYN_PROMPTS; k++) {
            if (tu_syn_ref_load("tests/data/engine", shape, "f32", k, &ref, err, sizeof err) != 0) {
                CHECK(0, "%s", err);
                continue;
            }
            qfit_context_reset(c);
            if (qfit_decode(c, ref.prompt, ref.n_prompt, ref.n_prompt - 1) != 0) {
                CHECK(0, "%s %s p%d: %s", shape, isa, k, qfit_context_error(c));
                continue;
            }
            const float *l = qfit_get_logits(c, 0);
            float lo = INFINITY, hi = -INFINITY;
            for (int v = 0; v < TU_SYN_VOCAB; v++) { lo = fminf(lo, ref.logits[v]); hi = fmaxf(hi, ref.logits[v]); }
            const double spread = (double)hi - lo, tol = fmax(0.02, 1e-3 * spread);
            const double d = tu_max_abs_diff(l, ref.logits, TU_SYN_VOCAB);
            CHECK(d <= tol, "%s %s p%d: max |dlogit| vs llama.cpp %g > %g", shape, isa, k, d, tol);
            CHECK(qfit_argmax(l, TU_SYN_VOCAB) == qfit_argmax(ref.logits, TU_SYN_VOCAB), "%s %s p%d: top-1 differs",
                  shape, isa, k);
            if (i == 0) memcpy(first[k], l, sizeof first[k]);
            else {
                /* NEON and scalar sum in different orders; with a GELU FFN (Gemma) an input
                 * one bit apart can round to the neighbouring fp16 entry of ggml's GELU
                 * table (2^-11 relative), which the post-norms carry on: 3e-3 there
                 * (measured 1.3e-3); a wrong NEON kernel moves logits by > 0.05 */
                const double itol = qfit_model_hparams(m)->ffn_act == QFIT_FFN_GEGLU ? 3e-3 : 1e-3;
                const double ds = tu_max_abs_diff(l, first[k], TU_SYN_VOCAB);
                CHECK(ds <= itol, "%s p%d: scalar vs neon %g > %g", shape, k, ds, itol);
            }
            int dv = -1;
            for (int g = 0; g < TU_SYN_GREEDY; g++) {
                int32_t t = qfit_argmax(l, TU_SYN_VOCAB);
                if (t != ref.greedy[g]) { dv = g; break; }
                if (g == TU_SYN_GREEDY - 1) break;
                if (qfit_decode(c, &t, 1, 0) != 0) { dv = g; break; }
                l = qfit_get_logits(c, 0);
            }
            printf("  %-13s %-6s p%d vs llama.cpp: max |dlogit| %.5f (spread %.2f), greedy %s\n", shape, isa, k, d,
                   spread, dv < 0 ? "same" : "diverges");
            CHECK(dv < 0, "%s %s p%d: greedy diverges from llama.cpp at step %d", shape, isa, k, dv);
        }
        qfit_context_free(c);
    }
    qfit_isa_select(QFIT_ISA_NEON);
    qfit_model_free(m);
    unlink(path);
}

/* An encoder (tests/data/encoder): the three token-id inputs of SHAPE.batch as one
 * batch of three sequences, mean-pooled and normalised, against llama.cpp's vectors
 * (max |diff| <= 2e-4, the x86 suite's coarse tolerance), NEON against scalar within 1e-5. */
static void check_syn_encoder(const char *dir, const char *shape, bool with_scalar)
{
    enum { E = 128, NS = 3 };
    static const int len[NS] = { 6, 17, 41 };
    char raw[1100], path[1100], err[600];
    snprintf(raw, sizeof raw, "%s/%s-synth.gguf", dir, shape);
    snprintf(path, sizeof path, "%s/%s-f32.gguf", dir, shape);
    qfit_synth_params sp;
    memset(&sp, 0, sizeof sp);
    sp.shape = qfit_synth_find_shape(shape);
    CHECK(sp.shape != NULL, "synth has no shape %s", shape);
    if (!sp.shape) return;
    sp.ftype = QFIT_FTYPE_ALL_F32;
    sp.seed = TU_SYN_SEED;
    sp.n_threads = 2;
    const int ws = qfit_synth_write(raw, &sp, NULL, err, sizeof err);
    const int rw = ws == 0 ? tu_syn_rewrite(raw, path, err, sizeof err) : -1;
    unlink(raw);
    CHECK(rw == 0, "synth / rewrite %s: %s", shape, err);
    if (rw != 0) return;
    static float ref[NS * E], first[NS * E];
    char rpath[300];
    snprintf(rpath, sizeof rpath, "tests/data/encoder/%s.batch.f32", shape);
    FILE *f = fopen(rpath, "rb");
    const size_t got = f ? fread(ref, sizeof(float), NS * E, f) : 0;
    if (f) fclose(f);
    CHECK(got == NS * E, "cannot read %s", rpath);
    qfit_model *m = got == NS * E ? qfit_model_load(path, err, sizeof err) : NULL;
    CHECK(m != NULL, "load %s: %s", path, err);
    if (!m) { unlink(path); return; }
    int32_t tok[64];
    int seq[64], n = 0;
    for (int s = 0; s < NS; s++)   /* the prompts of tests/data/encoder/make-refs.sh */
        for (int j = 0; j < len[s]; j++, n++) {
            tok[n] = j == 0 ? 101 : j == len[s] - 1 ? 102 : 104 + (97 * j + 131 * s + 11) % 408;
            seq[n] = s;
        }
    const qfit_isa isas[2] = { QFIT_ISA_NEON, QFIT_ISA_SCALAR };
    for (int i = 0; i < (with_scalar ? 2 : 1); i++) {
        const char *isa = qfit_isa_name(isas[i]);
        if (qfit_isa_select(isas[i]) != 0) { CHECK(0, "cannot select ISA %s", isa); continue; }
        qfit_context_params p = qfit_context_default_params();
        p.n_ctx = 128;
        p.n_threads = 2;
        p.n_seq = NS;
        p.embeddings = true;
        qfit_context *c = qfit_context_new(m, &p, err, sizeof err);
        CHECK(c != NULL, "%s context: %s", shape, err);
        if (!c) continue;
        bool want[64];
        for (int j = 0; j < n; j++) want[j] = true;
        const qfit_batch b = { .n_tokens = n, .token = tok, .seq = seq, .logits = want };
        const int rc = qfit_decode_batch(c, &b);
        CHECK(rc == 0, "%s %s: %s", shape, isa, qfit_context_error(c));
        for (int s = 0, row = 0; rc == 0 && s < NS; row += len[s], s++) {
            double v[E] = { 0 }, ss = 0, rs = 0, d = 0, ds = 0;
            for (int j = 0; j < len[s]; j++) {
                const float *r = qfit_get_embeddings(c, row + j);
                for (int k = 0; k < E; k++) v[k] += r[k];
            }
            for (int k = 0; k < E; k++) { ss += v[k] * v[k]; rs += (double)ref[s * E + k] * ref[s * E + k]; }
            for (int k = 0; k < E; k++) {
                const double x = v[k] / sqrt(ss);
                d = fmax(d, fabs(x - ref[s * E + k] / sqrt(rs)));
                if (i == 0) first[s * E + k] = (float)x;
                else ds = fmax(ds, fabs(x - first[s * E + k]));
            }
            printf("  %-15s %-6s sequence %d vs llama.cpp: max |diff| %.2g\n", shape, isa, s, d);
            CHECK(d <= 2e-4, "%s %s sequence %d: max |diff| vs llama.cpp %g > 2e-4", shape, isa, s, d);
            if (i == 1) CHECK(ds <= 1e-5, "%s sequence %d: scalar vs neon %g > 1e-5", shape, s, ds);
        }
        qfit_context_free(c);
    }
    qfit_isa_select(QFIT_ISA_NEON);
    qfit_model_free(m);
    unlink(path);
}

int main(int argc, char **argv)
{
    const char *shared = argc > 1 ? argv[1] : getenv("QFIT_SHARED");
    if (!shared || !*shared) shared = "../shared";
    const char *mode = argc > 2 ? argv[2] : "full";
    const char *refs = argc > 3 ? argv[3] : "tests/data/kjv-logits";
    if (strcmp(mode, "full") != 0 && strcmp(mode, "quick") != 0) {
        printf("usage: model_test [SHARED_DIR] [full|quick] [REFS_DIR]\n");
        return 2;
    }
    const bool full = strcmp(mode, "full") == 0;
    const qfit_cpu_features *cf = qfit_cpu_get_features();
    printf("model_test (%s): shared %s, NEON %d, dotprod %d, fp16 %d\n", mode, shared, cf->neon, cf->dotprod,
           cf->fp16);
    CHECK(qfit_isa_best() == QFIT_ISA_NEON, "best ISA is %s, expected neon", qfit_isa_name(qfit_isa_best()));

    char f32[1024];
    snprintf(f32, sizeof f32, "%s/models/kjv-llama-7m-f32.gguf", shared);
    if (access(f32, R_OK) != 0) {
        printf("FAIL: %s not found (pass the shared folder as the first argument)\n0 passed, 1 failed\n", f32);
        return 1;
    }
    char dir[] = "/tmp/qfit-neon-model-XXXXXX";
    if (!mkdtemp(dir)) { printf("FAIL: mkdtemp\n0 passed, 1 failed\n"); return 1; }

    const double t0 = now_s();
    if (full) check_variant(refs, f32, "f32", 0.02, 1e-3, 0.0f, true);
    static const char *const quants[] = { "Q8_0", "Q4_K_M" };
    for (size_t q = 0; q < sizeof quants / sizeof quants[0]; q++) {
        char path[1100], err[256];
        snprintf(path, sizeof path, "%s/kjv-%s.gguf", dir, quants[q]);
        qfit_quantize_params qp;
        memset(&qp, 0, sizeof qp);
        qp.ftype = qfit_ftype_from_name(quants[q]);
        qp.n_threads = 2;
        const double tq = now_s();
        const int rc = qfit_quantize_model(f32, path, &qp, NULL, err, sizeof err);
        CHECK(rc == 0, "quantize %s: %s", quants[q], err);
        if (rc != 0) continue;
        printf("  quantized %s in %.1f s\n", quants[q], now_s() - tq);
        check_variant(refs, path, quants[q], TU_QLOGIT_TOL, 0, TU_QLOGIT_NEAR_TIE, full);
        unlink(path);
    }
    /* the synthetic models of the other architectures (tests/data/engine): every dense
     * one with scalar too in full mode; the mixtures of experts on every CPU model */
    static const char *const dense[] = { "tiny-qwen2", "tiny-qwen3", "tiny-llama3", "tiny-phi3", "tiny-gemma2",
                                         "tiny-gemma3", "tiny-phi3-longrope", "tiny-phi3-longrope-s" };
    static const char *const moe[] = { "tiny-qwen3moe", "tiny-mixtral", "tiny-gpt-oss" };
    if (full)
        for (size_t i = 0; i < sizeof dense / sizeof dense[0]; i++) check_syn(dir, dense[i], true);
    for (size_t i = 0; i < sizeof moe / sizeof moe[0]; i++) check_syn(dir, moe[i], full);
    check_syn_encoder(dir, "tiny-bert", full);
    check_syn_encoder(dir, "tiny-nomic-bert", full);
    rmdir(dir);
    printf("model_test: %.1f s\n", now_s() - t0);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
