/* Plain-C driver for the inference engine on AArch64, run under qemu-aarch64 by
 * tests/neon/run.sh (no Criterion, no tokenizer: the prompts' token ids come
 * from the reference .txt files).
 *
 * Loads the shared F32 model, quantizes it to Q8_0 and Q4_K_M in-process into a
 * temporary folder, and for each of the three files runs the 5 reference prompts
 * of testdata/kjv-llama-7m/logits with the NEON ISA and with the scalar ISA
 * forced (qfit_isa_select, before each context is created):
 *   - last-position logits against llama.cpp's (x86) reference files:
 *     F32 max |dlogit| <= 0.02; quantized <= 0.15 (llama.cpp's own quantized logits
 *     move by up to ~0.09 between its code paths, see tests/test_model.c);
 *   - same top-1, greedy continuation (32 tokens) identical unless it diverges at a
 *     near tie (best two logits within 0.15; F32: no divergence accepted);
 *   - NEON against scalar: F32 within 1e-3, quantized within 0.3 (the activation
 *     re-quantization cascade described in tests/test_engine_paths.c), greedy
 *     identical except at near ties.
 * usage: model_test [SHARED_DIR] [full|quick]   (SHARED_DIR default $QFIT_SHARED or ../shared)
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
#include "../util/refparse.h"

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

static void *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return NULL; }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); return NULL; }
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); fclose(f); return NULL; }
    buf[n] = 0;
    fclose(f);
    if (size) *size = (size_t)n;
    return buf;
}

typedef struct {
    int32_t prompt[N_PROMPTS][64];
    int     n_prompt[N_PROMPTS];
    int32_t greedy[N_PROMPTS][N_GREEDY];
    float   logits[N_PROMPTS][N_VOCAB];
} ref_set;

static int load_ref(const char *shared, const char *variant, ref_set *r)
{
    char path[1024];
    for (int k = 0; k < N_PROMPTS; k++) {
        snprintf(path, sizeof path, "%s/testdata/kjv-llama-7m/logits/%s.p%d.txt", shared, variant, k);
        char *txt = read_file(path, NULL);
        if (!txt) { printf("cannot read %s\n", path); return -1; }
        r->n_prompt[k] = tu_parse_ids(txt, "prompt tokens", r->prompt[k], 64);
        const int ng = tu_parse_ids(txt, "greedy (", r->greedy[k], N_GREEDY);
        free(txt);
        if (r->n_prompt[k] <= 0 || ng != N_GREEDY) { printf("%s: malformed\n", path); return -1; }
        snprintf(path, sizeof path, "%s/testdata/kjv-llama-7m/logits/%s.p%d.f32", shared, variant, k);
        size_t sz = 0;
        float *l = read_file(path, &sz);
        if (!l || sz != sizeof r->logits[k]) { printf("cannot read %s (%zu bytes)\n", path, sz); free(l); return -1; }
        memcpy(r->logits[k], l, sz);
        free(l);
    }
    return 0;
}

typedef struct {
    float   logits[N_PROMPTS][N_VOCAB];
    int32_t greedy[N_PROMPTS][N_GREEDY];
    float   margin[N_PROMPTS][N_GREEDY];
} run_set;

static float top2_margin(const float *l, int n)
{
    int a = qfit_argmax(l, n);
    float second = -INFINITY;
    for (int i = 0; i < n; i++)
        if (i != a && l[i] > second) second = l[i];
    return l[a] - second;
}

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
        const int np = ref->n_prompt[k];
        if (qfit_decode(c, ref->prompt[k], np, np - 1) != 0) {
            printf("decode: %s\n", qfit_context_error(c));
            qfit_context_free(c);
            return -1;
        }
        const float *l = qfit_get_logits(c, 0);
        memcpy(out->logits[k], l, sizeof out->logits[k]);
        for (int s = 0; s < N_GREEDY; s++) {
            int32_t t = qfit_argmax(l, N_VOCAB);
            out->greedy[k][s] = t;
            out->margin[k][s] = top2_margin(l, N_VOCAB);
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

static double max_abs_diff(const float *a, const float *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

static int first_divergence(const int32_t *a, const int32_t *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return i;
    return -1;
}

static void check_variant(const char *shared, const char *path, const char *variant, double tol_ref,
                          double tol_isa, float near_tie, bool with_scalar)
{
    static ref_set ref;
    static run_set runs[2];
    if (load_ref(shared, variant, &ref) != 0) { CHECK(0, "%s: reference files", variant); return; }
    char err[256];
    qfit_model *m = qfit_model_load(path, err, sizeof err);
    CHECK(m != NULL, "load %s: %s", path, err);
    if (!m) return;
    const qfit_isa isas[2] = { QFIT_ISA_NEON, QFIT_ISA_SCALAR };
    for (int i = 0; i < (with_scalar ? 2 : 1); i++) {
        const char *isa = qfit_isa_name(isas[i]);
        if (qfit_isa_select(isas[i]) != 0) { CHECK(0, "cannot select ISA %s", isa); continue; }
        const double t0 = now_s();
        if (run_prompts(m, &ref, &runs[i]) != 0) { CHECK(0, "%s %s: run failed", variant, isa); continue; }
        printf("  %-6s %-6s %.1f s\n", variant, isa, now_s() - t0);
        const run_set *r = &runs[i];
        for (int k = 0; k < N_PROMPTS; k++) {
            const double d = max_abs_diff(r->logits[k], ref.logits[k], N_VOCAB);
            const int dv = first_divergence(r->greedy[k], ref.greedy[k], N_GREEDY);
            printf("  %-6s %-6s p%d vs llama.cpp: max |dlogit| %.5f, greedy %s", variant, isa, k, d,
                   dv < 0 ? "same" : "diverges");
            if (dv >= 0) printf(" at step %d (margin %.4f)", dv, r->margin[k][dv]);
            printf("\n");
            CHECK(d <= tol_ref, "%s %s prompt %d: max |dlogit| %g > %g", variant, isa, k, d, tol_ref);
            CHECK(qfit_argmax(r->logits[k], N_VOCAB) == qfit_argmax(ref.logits[k], N_VOCAB),
                  "%s %s prompt %d: top-1 differs", variant, isa, k);
            CHECK(dv < 0 || r->margin[k][dv] < near_tie,
                  "%s %s prompt %d: greedy diverges at step %d with margin %g", variant, isa, k, dv,
                  dv < 0 ? 0.0 : r->margin[k][dv]);
        }
        if (i == 0) continue;
        for (int k = 0; k < N_PROMPTS; k++) {
            const double d = max_abs_diff(r->logits[k], runs[0].logits[k], N_VOCAB);
            const int dv = first_divergence(r->greedy[k], runs[0].greedy[k], N_GREEDY);
            printf("  %-6s scalar vs neon p%d: max |dlogit| %.7f, greedy %s\n", variant, k, d,
                   dv < 0 ? "same" : "diverges");
            CHECK(d <= tol_isa, "%s prompt %d: scalar vs neon %g > %g", variant, k, d, tol_isa);
            CHECK(dv < 0 || r->margin[k][dv] < near_tie, "%s prompt %d: scalar and neon greedy part at step %d "
                  "(margin %g)", variant, k, dv, dv < 0 ? 0.0 : r->margin[k][dv]);
        }
    }
    qfit_isa_select(QFIT_ISA_NEON);
    qfit_model_free(m);
}

int main(int argc, char **argv)
{
    const char *shared = argc > 1 ? argv[1] : getenv("QFIT_SHARED");
    if (!shared || !*shared) shared = "../shared";
    const char *mode = argc > 2 ? argv[2] : "full";
    if (strcmp(mode, "full") != 0 && strcmp(mode, "quick") != 0) {
        printf("usage: model_test [SHARED_DIR] [full|quick]\n");
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
    if (full) check_variant(shared, f32, "f32", 0.02, 1e-3, 0.0f, true);
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
        check_variant(shared, path, quants[q], 0.15, 0.3, 0.15f, full);
        unlink(path);
    }
    rmdir(dir);
    printf("model_test: %.1f s\n", now_s() - t0);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
