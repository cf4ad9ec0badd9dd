/* Plain-C test driver for the NEON kernels, run under qemu-aarch64 by
 * tests/neon/run.sh (no Criterion). For every weight type: the NEON path
 * (forced with qfit_isa_select) must give the scalar path's activation bytes
 * and dot products, the scalar dot must match a float reference built from the
 * dequantized operands, and gemm must equal vec_dot. The row kernels (attention over
 * the cache, SwiGLU, exp, f16 stores) must match the scalar table.
 * Prints "N passed, M failed"; exits nonzero on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/kernels.h"
#include "qfit/quant.h"
#include "quant/blocks.h"

static int n_pass, n_fail;

#define CHECK(cond, ...) do { \
        if (cond) n_pass++; \
        else { n_fail++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } \
    } while (0)

static uint64_t rs;
static float urand(void)
{
    rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(rs >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fill(float *x, int64_t n, uint64_t seed)
{
    rs = seed * 2654435761ULL + 99;
    for (int64_t i = 0; i < n; i += 32) {
        float sc = 0.05f + 2.0f * fabsf(urand()), mean = 0.3f * urand() * sc;
        for (int64_t j = i; j < i + 32 && j < n; j++) x[j] = mean + sc * (urand() + urand() + urand());
    }
}

static void act_float(int vd, const void *a, float *o, int64_t n)
{
    if (vd == QFIT_TYPE_F32) memcpy(o, a, (size_t)n * 4);
    else if (vd == QFIT_TYPE_F16 || vd == QFIT_TYPE_BF16) {
        const uint16_t *h = a;
        for (int64_t i = 0; i < n; i++) o[i] = vd == QFIT_TYPE_F16 ? qfit_fp16_to_fp32(h[i]) : qfit_bf16_to_fp32(h[i]);
    } else if (vd == QFIT_TYPE_Q8_0) {
        const block_q8_0 *b = a;
        for (int64_t i = 0; i < n; i++) o[i] = qfit_fp16_to_fp32(b[i / 32].d) * b[i / 32].qs[i % 32];
    } else if (vd == QFIT_TYPE_Q8_1) {
        const block_q8_1 *b = a;
        for (int64_t i = 0; i < n; i++) o[i] = qfit_fp16_to_fp32(b[i / 32].d) * b[i / 32].qs[i % 32];
    } else {
        const block_q8_K *b = a;
        for (int64_t i = 0; i < n; i++) o[i] = b[i / 256].d * b[i / 256].qs[i % 256];
    }
}

static void check_type(int type, int64_t n)
{
    const char *nm = qfit_type_name(type);
    const int64_t rows = 6, m = 5;
    const int vd = qfit_vec_dot_type(type);
    const size_t ws = qfit_row_size(type, n), as = qfit_row_size(vd, n);
    float *wf = malloc((size_t)(rows * n) * 4), *wd = malloc((size_t)(rows * n) * 4);
    float *xf = malloc((size_t)(m * n) * 4), *xd = malloc((size_t)(m * n) * 4);
    uint8_t *wq = malloc(ws * rows), *aq = malloc(as * m), *aq2 = malloc(as);
    float *Y = malloc((size_t)(rows * m) * 4);
    char err[200] = "";
    if (!wf || !wd || !xf || !xd || !wq || !aq || !aq2 || !Y) { printf("out of memory\n"); exit(2); }
    fill(wf, rows * n, (uint64_t)type + 5);
    fill(xf, m * n, (uint64_t)type + 500);
    size_t got = qfit_quantize_rows(type, wf, wq, rows, n, err, sizeof err);
    CHECK(got == ws * rows, "%s: quantize: %s", nm, err);
    if (got != ws * rows) goto out;
    qfit_rows_to_float(type, wq, wd, rows, n);

    qfit_isa_select(QFIT_ISA_SCALAR);
    for (int64_t j = 0; j < m; j++) {
        qfit_quantize_activations(vd, xf + j * n, aq + j * as, n);
        act_float(vd, aq + j * as, xd + j * n, n);
    }
    float ref[6][5];
    double scale[6][5];
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < m; j++) {
            ref[i][j] = qfit_vec_dot(type, n, wq + i * ws, aq + j * as);
            double r = 0, sc = 0;
            for (int64_t l = 0; l < n; l++) {
                r += (double)wd[i * n + l] * xd[j * n + l];
                sc += fabs((double)wd[i * n + l] * xd[j * n + l]);
            }
            scale[i][j] = sc;
            double tol = 2e-5 * sc + 1e-6;
            if (vd == QFIT_TYPE_Q8_1) tol += 2e-3 * sc;   /* fp16-rounded block sums */
            CHECK(fabs(ref[i][j] - r) <= tol, "%s: scalar dot %.9g vs float reference %.9g", nm, ref[i][j], r);
        }

    CHECK(qfit_isa_select(QFIT_ISA_NEON) == 0, "NEON must be selectable");
    for (int64_t j = 0; j < m; j++) {
        memset(aq2, 0xA5, as);
        qfit_quantize_activations(vd, xf + j * n, aq2, n);
        CHECK(memcmp(aq2, aq + j * as, as) == 0, "%s: NEON activation bytes differ", nm);
    }
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < m; j++) {
            float v = qfit_vec_dot(type, n, wq + i * ws, aq + j * as);
            CHECK(fabs((double)v - ref[i][j]) <= 1e-5 * scale[i][j] + 1e-6,
                  "%s: NEON dot %.9g vs scalar %.9g (row %lld act %lld)", nm, v, ref[i][j],
                  (long long)i, (long long)j);
        }
    qfit_gemm(type, n, wq, ws, 0, rows, aq, as, m, Y, rows);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < m; j++)
            CHECK(fabs((double)Y[j * rows + i] - ref[i][j]) <= 1e-5 * scale[i][j] + 1e-6,
                  "%s: NEON gemm %.9g vs scalar dot %.9g", nm, Y[j * rows + i], ref[i][j]);
out:
    qfit_isa_select(QFIT_ISA_SCALAR);
    free(wf); free(wd); free(xf); free(xd); free(wq); free(aq); free(aq2); free(Y);
}

/* The register-tiled gemm (packed panels): m activation rows against the
 * weight rows [2, 19) of 21 (a partial panel at the end), every value equal
 * to the scalar vec_dot up to float scaling order; nothing written outside. */
static void check_gemm_panels(int type, int64_t n)
{
    const char *nm = qfit_type_name(type);
    const int64_t rows = 21, mmax = 11, i0 = 2, i1 = 19, ldy = 23;
    const int vd = qfit_vec_dot_type(type);
    const size_t ws = qfit_row_size(type, n), as = qfit_row_size(vd, n);
    float *wf = malloc((size_t)(rows * n) * 4), *xf = malloc((size_t)(mmax * n) * 4);
    uint8_t *wq = malloc(ws * rows), *aq = malloc(as * mmax);
    float *Y = malloc((size_t)(mmax * ldy) * 4), *ref = malloc((size_t)(rows * mmax) * 4);
    char err[200] = "";
    if (!wf || !xf || !wq || !aq || !Y || !ref) { printf("out of memory\n"); exit(2); }
    fill(wf, rows * n, (uint64_t)type + 71);
    fill(xf, mmax * n, (uint64_t)type + 710);
    CHECK(qfit_quantize_rows(type, wf, wq, rows, n, err, sizeof err) == ws * rows, "%s: quantize: %s", nm, err);
    qfit_isa_select(QFIT_ISA_SCALAR);
    for (int64_t j = 0; j < mmax; j++) qfit_quantize_activations(vd, xf + j * n, aq + j * as, n);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < mmax; j++) ref[j * rows + i] = qfit_vec_dot(type, n, wq + i * ws, aq + j * as);
    CHECK(qfit_isa_select(QFIT_ISA_NEON) == 0, "NEON must be selectable");
    for (int64_t m = 8; m <= mmax; m++) {
        for (int64_t q = 0; q < mmax * ldy; q++) Y[q] = -777.0f;
        qfit_gemm(type, n, wq, ws, i0, i1, aq, as, m, Y, ldy);
        for (int64_t j = 0; j < mmax; j++)
            for (int64_t i = 0; i < ldy; i++) {
                const float y = Y[j * ldy + i];
                if (j >= m || i < i0 || i >= i1) {
                    CHECK(y == -777.0f, "%s: NEON gemm m=%lld wrote Y(%lld,%lld)", nm, (long long)m,
                          (long long)j, (long long)i);
                    continue;
                }
                const double want = ref[j * rows + i];
                CHECK(fabs((double)y - want) <= 1e-5 * fabs(want) + 2e-4,
                      "%s: NEON gemm m=%lld Y(%lld,%lld) = %.9g vs scalar dot %.9g", nm, (long long)m,
                      (long long)j, (long long)i, y, want);
            }
    }
    qfit_isa_select(QFIT_ISA_SCALAR);
    free(wf); free(xf); free(wq); free(aq); free(Y); free(ref);
}

static double rdiff(double a, double b) { return fabs(a - b) / fmax(1e-6, fmax(fabs(a), fabs(b))); }

/* the NEON row kernels against the scalar table (tolerances: float sums in another
 * order and FMA, 1e-5 relative; the vector exp ~1e-7; f16 stores exact) */
static void check_row_kernels(void)
{
    qfit_isa_select(QFIT_ISA_NEON);
    const qfit_row_kernels *V = qfit_row_kernels_active(), *S = &qfit_row_kernels_scalar;
    CHECK(V != S, "NEON has its own row kernels");
    enum { N = 160 };
    float q[N], k[N], v[N], u[N], a1[N], a2[N];
    uint16_t kh[N], h1[N], h2[N];
    fill(q, N, 11); fill(k, N, 12); fill(v, N, 13); fill(u, N, 14);
    for (int i = 0; i < N; i++) kh[i] = qfit_fp32_to_fp16(k[i]);
    CHECK(rdiff(V->dot_f32(q, k, N - 3), S->dot_f32(q, k, N - 3)) <= 1e-5, "row dot_f32");
    CHECK(rdiff(V->dot_f16(q, kh, N - 3), S->dot_f16(q, kh, N - 3)) <= 1e-5, "row dot_f16");
    block_q8_0 q8[N / 32], k8[N / 32];
    block_q4_0 k4[N / 32];
    char err[128];
    qfit_quantize_activations(QFIT_TYPE_Q8_0, q, q8, N);
    CHECK(qfit_quantize_rows(QFIT_TYPE_Q8_0, k, k8, 1, N, err, sizeof err) > 0, "%s", err);
    CHECK(qfit_quantize_rows(QFIT_TYPE_Q4_0, k, k4, 1, N, err, sizeof err) > 0, "%s", err);
    CHECK(V->dot_q8_0(q8, k8, N) == S->dot_q8_0(q8, k8, N), "row dot_q8_0 (exact: integer sums, same order)");
    CHECK(V->dot_q4_0(q8, k4, N) == S->dot_q4_0(q8, k4, N), "row dot_q4_0 (exact)");
    for (int t = 0; t < 4; t++) {
        memcpy(a1, u, sizeof a1);
        memcpy(a2, u, sizeof a2);
        const int n = t < 2 ? N - 3 : N;
        switch (t) {
        case 0: V->mad_f32(a1, v, -0.61f, n); S->mad_f32(a2, v, -0.61f, n); break;
        case 1: V->mad_f16(a1, kh, -0.61f, n); S->mad_f16(a2, kh, -0.61f, n); break;
        case 2: V->mad_q8_0(a1, k8, -0.61f, n); S->mad_q8_0(a2, k8, -0.61f, n); break;
        default: V->mad_q4_0(a1, k4, -0.61f, n); S->mad_q4_0(a2, k4, -0.61f, n); break;
        }
        int bad = 0;
        for (int i = 0; i < N; i++) bad += !(fabs(a1[i] - a2[i]) <= 1e-5 * fmax(1.0, fabs(a2[i])));
        CHECK(bad == 0, "row mad %d: %d values differ", t, bad);
    }
    memcpy(a1, u, sizeof a1);
    memcpy(a2, u, sizeof a2);
    V->scale(a1, 1.3f, N - 1);
    S->scale(a2, 1.3f, N - 1);
    CHECK(!memcmp(a1, a2, sizeof a1), "row scale");
    for (int i = 0; i < N; i++) a1[i] = a2[i] = -38.0f + 0.25f * (float)i;
    V->exp_sub(a1, 1.5f, N - 1);
    S->exp_sub(a2, 1.5f, N - 1);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += !(rdiff(a1[i], a2[i]) <= 1e-5);
    CHECK(bad == 0, "row exp_sub: %d values differ", bad);
    memcpy(a1, q, sizeof a1);
    memcpy(a2, q, sizeof a2);
    V->swiglu(a1, u, N - 1);
    S->swiglu(a2, u, N - 1);
    bad = 0;
    for (int i = 0; i < N; i++) bad += !(fabs(a1[i] - a2[i]) <= 1e-5 * fmax(1.0, fabs(a2[i])));
    CHECK(bad == 0, "row swiglu: %d values differ", bad);
    V->f32_to_f16(v, h1, N - 1);
    S->f32_to_f16(v, h2, N - 1);
    CHECK(!memcmp(h1, h2, sizeof(uint16_t) * (N - 1)), "row f32_to_f16");
}

int main(void)
{
    const qfit_cpu_features *f = qfit_cpu_get_features();
    printf("neon=%d dotprod=%d fp16=%d best=%s\n", f->neon, f->dotprod, f->fp16, qfit_isa_name(qfit_isa_best()));
    CHECK(f->neon, "NEON must be detected on AArch64");
    CHECK(qfit_isa_select(QFIT_ISA_AVX2) == -1, "AVX2 must be refused on AArch64");
    const char *env = getenv("QFIT_ISA");
    if (env && !strcmp(env, "neon")) CHECK(qfit_isa_best() == QFIT_ISA_NEON, "QFIT_ISA=neon honoured");
    static const struct { int type; int64_t n; } cases[] = {
        {QFIT_TYPE_F32, 1031}, {QFIT_TYPE_F16, 1031}, {QFIT_TYPE_BF16, 1031},
        {QFIT_TYPE_Q4_0, 32 * 37}, {QFIT_TYPE_Q4_1, 32 * 37}, {QFIT_TYPE_Q5_0, 32 * 37},
        {QFIT_TYPE_Q5_1, 32 * 37}, {QFIT_TYPE_Q8_0, 32 * 37}, {QFIT_TYPE_IQ4_NL, 32 * 37},
        {QFIT_TYPE_MXFP4, 32 * 37},
        {QFIT_TYPE_Q2_K, 256 * 3}, {QFIT_TYPE_Q3_K, 256 * 3}, {QFIT_TYPE_Q4_K, 256 * 3},
        {QFIT_TYPE_Q5_K, 256 * 3}, {QFIT_TYPE_Q6_K, 256 * 3}, {QFIT_TYPE_IQ4_XS, 256 * 3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        check_type(cases[c].type, cases[c].n);
        check_gemm_panels(cases[c].type, cases[c].n);
    }
    check_row_kernels();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
