/* Compute kernels: vec_dot / gemm / activation quantizers for every supported
 * weight type, against float references and across every ISA this CPU has. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/kernels.h"
#include "qfit/quant.h"
#include "quant/blocks.h"
#include "kernels/kernels_internal.h"
#include "util/testutil.h"

/* Selects an ISA for the loops over all of them; false (after tu_isa_unavailable for an ISA
 * this architecture can have) when the CPU lacks it. */
static bool try_isa(int isa)
{
    if (qfit_isa_select((qfit_isa)isa) == 0) return true;
#if defined(__x86_64__) || defined(__i386__)
    const bool same_family = isa != QFIT_ISA_NEON;
#else
    const bool same_family = isa == QFIT_ISA_NEON;
#endif
    if (same_family) tu_isa_unavailable(qfit_isa_name((qfit_isa)isa));
    return false;
}

static uint64_t rng_state;
static float rnd_uniform(void)   /* [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Values with a varying scale per 32 elements, a shifted mean and a few outliers:
 * exercises scales, mins and sign handling of every format. */
static void fill_random(float *x, int64_t n, uint64_t seed)
{
    rng_state = seed * 2654435761ULL + 12345;
    for (int64_t i = 0; i < n; i += 32) {
        float scale = 0.05f + 2.0f * fabsf(rnd_uniform());
        float mean = 0.3f * rnd_uniform() * scale;
        for (int64_t j = i; j < i + 32 && j < n; j++) {
            float g = rnd_uniform() + rnd_uniform() + rnd_uniform();
            x[j] = mean + scale * g;
            if (((rng_state >> 20) & 63) == 0) x[j] *= 4.0f;
        }
    }
}

static size_t row_bytes(int type, int64_t n)
{
    size_t b = qfit_row_size(type, n);
    cr_assert(b > 0, "row size of %s x %lld", qfit_type_name(type), (long long)n);
    return b;
}

/* Float value of an activation row in its vec-dot type (written here, not with
 * the library's dequantizers, so the test stands on its own). */
static void act_to_float(int vd, const void *a, float *out, int64_t n)
{
    if (vd == QFIT_TYPE_F32) { memcpy(out, a, (size_t)n * 4); return; }
    if (vd == QFIT_TYPE_F16) {
        const uint16_t *h = a;
        for (int64_t i = 0; i < n; i++) out[i] = qfit_fp16_to_fp32(h[i]);
        return;
    }
    if (vd == QFIT_TYPE_BF16) {
        const uint16_t *h = a;
        for (int64_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)h[i] << 16;
            memcpy(&out[i], &u, 4);
        }
        return;
    }
    if (vd == QFIT_TYPE_Q8_0) {
        const block_q8_0 *b = a;
        for (int64_t i = 0; i < n; i++) out[i] = qfit_fp16_to_fp32(b[i / 32].d) * b[i / 32].qs[i % 32];
        return;
    }
    if (vd == QFIT_TYPE_Q8_1) {
        const block_q8_1 *b = a;
        for (int64_t i = 0; i < n; i++) out[i] = qfit_fp16_to_fp32(b[i / 32].d) * b[i / 32].qs[i % 32];
        return;
    }
    if (vd == QFIT_TYPE_Q8_K) {
        const block_q8_K *b = a;
        for (int64_t i = 0; i < n; i++) out[i] = b[i / 256].d * b[i / 256].qs[i % 256];
        return;
    }
    cr_assert_fail("unexpected vec-dot type %d", vd);
}

/* Largest error the activation rounding may introduce at element i. */
static double act_step_bound(int vd, const float *x, int64_t n, int64_t i)
{
    int64_t bs = vd == QFIT_TYPE_Q8_K ? 256 : 32;
    if (vd == QFIT_TYPE_F32) return 0.0;
    if (vd == QFIT_TYPE_F16) return fabs(x[i]) * (1.0 / 2048.0) + 6e-8;
    if (vd == QFIT_TYPE_BF16) return fabs(x[i]) * (1.0 / 256.0);
    double amax = 0.0;
    int64_t b0 = i / bs * bs;
    for (int64_t j = b0; j < b0 + bs && j < n; j++) amax = fmax(amax, fabs(x[j]));
    /* half a quantization step, plus fp16 rounding of the block scale */
    return amax / 127.0 * 0.5 * 1.01 + amax * (1.0 / 1024.0);
}

typedef struct {
    int type, vd;
    int64_t n, rows, m;
    float *wf;          /* original weights, rows x n */
    float *wd;          /* dequantized weights */
    uint8_t *wq;        /* quantized weights */
    size_t wstride;
    float *xf;          /* original activations, m x n */
    float *xd;          /* activations after quantization, as float */
    uint8_t *aq;        /* quantized activations */
    size_t astride;
} fixture;

static void fixture_make(fixture *f, int type, int64_t n, int64_t rows, int64_t m, uint64_t seed)
{
    memset(f, 0, sizeof(*f));
    f->type = type; f->n = n; f->rows = rows; f->m = m;
    f->vd = qfit_vec_dot_type(type);
    cr_assert(f->vd >= 0, "no vec-dot type for %s", qfit_type_name(type));
    f->wstride = row_bytes(type, n);
    f->astride = row_bytes(f->vd, n);
    f->wf = malloc((size_t)(rows * n) * 4);
    f->wd = malloc((size_t)(rows * n) * 4);
    f->wq = malloc(f->wstride * (size_t)rows);
    f->xf = malloc((size_t)(m * n) * 4);
    f->xd = malloc((size_t)(m * n) * 4);
    f->aq = malloc(f->astride * (size_t)m);
    cr_assert(f->wf && f->wd && f->wq && f->xf && f->xd && f->aq);
    fill_random(f->wf, rows * n, seed);
    fill_random(f->xf, m * n, seed + 1000);
    char err[256] = "";
    size_t got = qfit_quantize_rows(type, f->wf, f->wq, rows, n, err, sizeof err);
    cr_assert_eq(got, f->wstride * (size_t)rows, "quantize %s: %s", qfit_type_name(type), err);
    cr_assert_eq(qfit_rows_to_float(type, f->wq, f->wd, rows, n), 0, "dequantize %s", qfit_type_name(type));
    for (int64_t j = 0; j < m; j++) {
        qfit_quantize_activations(f->vd, f->xf + j * n, f->aq + (size_t)j * f->astride, n);
        act_to_float(f->vd, f->aq + (size_t)j * f->astride, f->xd + j * n, n);
    }
}

static void fixture_free(fixture *f)
{
    free(f->wf); free(f->wd); free(f->wq); free(f->xf); free(f->xd); free(f->aq);
}

static const uint8_t *wrow(const fixture *f, int64_t i) { return f->wq + (size_t)i * f->wstride; }
static const uint8_t *arow(const fixture *f, int64_t j) { return f->aq + (size_t)j * f->astride; }

/* sum |w_i a_i| of a row pair: the scale of float rounding errors */
static double abs_scale(const fixture *f, int64_t i, int64_t j)
{
    double s = 0.0;
    for (int64_t l = 0; l < f->n; l++) s += fabs((double)f->wd[i * f->n + l] * f->xd[j * f->n + l]);
    return s;
}

static void check_against_float(int type, int64_t n)
{
    cr_assert_eq(qfit_isa_select(QFIT_ISA_SCALAR), 0);
    fixture f;
    fixture_make(&f, type, n, 5, 3, (uint64_t)type * 77 + (uint64_t)n);
    for (int64_t i = 0; i < f.rows; i++) {
        for (int64_t j = 0; j < f.m; j++) {
            const float *w = f.wd + i * n, *xd = f.xd + j * n, *xf = f.xf + j * n;
            double ref_q = 0.0, ref_f = 0.0, bnd = 0.0;
            for (int64_t l = 0; l < n; l++) {
                ref_q += (double)w[l] * xd[l];
                ref_f += (double)w[l] * xf[l];
                bnd += fabs(w[l]) * act_step_bound(f.vd, xf, n, l);
            }
            float got = qfit_vec_dot(type, n, wrow(&f, i), arow(&f, j));
            double scale = abs_scale(&f, i, j);
            /* integer dot products are exact: only float scaling/accumulation differs */
            double tight = 2e-5 * scale + 1e-6;
            if (f.vd == QFIT_TYPE_Q8_1) {
                /* Q8_1 stores s = d * sum(q) as fp16: ggml's dot uses that rounded sum */
                const uint8_t *wr = wrow(&f, i);
                const block_q8_1 *ab = (const block_q8_1 *)arow(&f, j);
                size_t bsz = f.wstride / (size_t)(n / 32);
                for (int64_t b = 0; b < n / 32; b++) {
                    uint16_t mh;
                    memcpy(&mh, wr + (size_t)b * bsz + 2, 2);   /* d, m lead both Q4_1 and Q5_1 */
                    tight += fabs(qfit_fp16_to_fp32(mh) * qfit_fp16_to_fp32(ab[b].s)) / 2048.0;
                }
            }
            cr_assert(fabs(got - ref_q) <= tight,
                      "%s n=%lld row %lld act %lld: vec_dot %.9g vs dequantized reference %.9g (tol %.3g)",
                      qfit_type_name(type), (long long)n, (long long)i, (long long)j, got, ref_q, tight);
            double loose = bnd * 1.001 + 2e-5 * scale + 1e-6;
            cr_assert(fabs(got - ref_f) <= loose,
                      "%s n=%lld row %lld act %lld: vec_dot %.9g vs unquantized activations %.9g (tol %.3g)",
                      qfit_type_name(type), (long long)n, (long long)i, (long long)j, got, ref_f, loose);
            /* and the result must be a meaningful approximation of the true product */
            double absf = 0.0;
            for (int64_t l = 0; l < n; l++) absf += fabs((double)w[l] * xf[l]);
            cr_assert(fabs(got - ref_f) <= 0.05 * absf, "%s: activation quantization error too large",
                      qfit_type_name(type));
        }
    }
    fixture_free(&f);
}

/* gemm over an odd block of rows and activations equals vec_dot, and writes
 * exactly the requested part of Y. */
static void check_gemm(int type, int64_t n, qfit_isa isa)
{
    fixture f;
    const int64_t rows = 11, m = 9, i0 = 1, i1 = 10, ldy = 13;
    cr_assert_eq(qfit_isa_select(isa), 0);
    fixture_make(&f, type, n, rows, m, (uint64_t)type * 31 + 7);
    float *Y = malloc((size_t)(m * ldy) * 4);
    cr_assert(Y);
    for (int64_t q = 0; q < m * ldy; q++) Y[q] = -12345.0f;
    qfit_gemm(type, n, f.wq, f.wstride, i0, i1, f.aq, f.astride, m, Y, ldy);
    for (int64_t j = 0; j < m; j++) {
        for (int64_t i = 0; i < ldy; i++) {
            float y = Y[j * ldy + i];
            if (i < i0 || i >= i1) {
                cr_assert_eq(y, -12345.0f, "%s gemm wrote outside [i0,i1) at (%lld,%lld)",
                             qfit_type_name(type), (long long)j, (long long)i);
                continue;
            }
            float d = qfit_vec_dot(type, n, wrow(&f, i), arow(&f, j));
            double tol = 1e-5 * abs_scale(&f, i, j) + 1e-6;
            cr_assert(fabs((double)y - d) <= tol, "%s [%s] gemm(%lld,%lld) = %.9g, vec_dot = %.9g",
                      qfit_type_name(type), qfit_isa_name(isa), (long long)j, (long long)i, y, d);
        }
    }
    free(Y);
    fixture_free(&f);
    qfit_isa_select(QFIT_ISA_SCALAR);
}

/* Every ISA this CPU has gives the scalar results: same activation bytes,
 * dot products equal up to float summation order. */
static void check_isas(int type, int64_t n)
{
    fixture f;
    const int64_t rows = 6, m = 5;
    cr_assert_eq(qfit_isa_select(QFIT_ISA_SCALAR), 0);
    fixture_make(&f, type, n, rows, m, (uint64_t)type * 13 + 3);
    float ref[6 * 5];
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < m; j++) ref[i * m + j] = qfit_vec_dot(type, n, wrow(&f, i), arow(&f, j));
    uint8_t *aq2 = malloc(f.astride);
    cr_assert(aq2);
    for (int isa = 1; isa < 4; isa++) {
        if (!try_isa(isa)) continue;
        for (int64_t j = 0; j < m; j++) {
            memset(aq2, 0xA5, f.astride);
            qfit_quantize_activations(f.vd, f.xf + j * n, aq2, n);
            cr_assert(memcmp(aq2, arow(&f, j), f.astride) == 0,
                      "%s activations (%s) differ from the scalar quantizer",
                      qfit_isa_name((qfit_isa)isa), qfit_type_name(f.vd));
        }
        for (int64_t i = 0; i < rows; i++) {
            for (int64_t j = 0; j < m; j++) {
                float got = qfit_vec_dot(type, n, wrow(&f, i), arow(&f, j));
                double tol = 1e-5 * abs_scale(&f, i, j) + 1e-6;
                cr_assert(fabs((double)got - ref[i * m + j]) <= tol,
                          "%s [%s] n=%lld row %lld act %lld: %.9g vs scalar %.9g",
                          qfit_type_name(type), qfit_isa_name((qfit_isa)isa), (long long)n,
                          (long long)i, (long long)j, got, ref[i * m + j]);
            }
        }
    }
    free(aq2);
    fixture_free(&f);
    qfit_isa_select(QFIT_ISA_SCALAR);
}

/* The register-tiled gemm paths: for several activation counts m (tile tails
 * included) and row ranges that start and end inside weight panels, every ISA
 * must give the scalar vec_dot results and write nothing outside [i0, i1). */
static void check_gemm_tiles(int type, int64_t n)
{
    static const int64_t ms[] = {1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 33};
    static const int64_t ranges[][2] = {{0, 45}, {3, 40}, {17, 18}, {16, 32}, {5, 21}};
    const int64_t rows = 45, mmax = 33, ldy = 47;
    fixture f;
    cr_assert_eq(qfit_isa_select(QFIT_ISA_SCALAR), 0);
    fixture_make(&f, type, n, rows, mmax + 1, (uint64_t)type * 101 + 5);
    float *ref = malloc((size_t)(rows * (mmax + 1)) * 4), *Y = malloc((size_t)(mmax * ldy) * 4);
    cr_assert(ref && Y);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j <= mmax; j++) ref[j * rows + i] = qfit_vec_dot(type, n, wrow(&f, i), arow(&f, j));
    for (int isa = 0; isa < 4; isa++) {
        if (!try_isa(isa)) continue;
        for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++) {
            for (size_t ri = 0; ri < sizeof ranges / sizeof *ranges; ri++) {
                const int64_t m = ms[mi], i0 = ranges[ri][0], i1 = ranges[ri][1];
                for (int64_t q = 0; q < mmax * ldy; q++) Y[q] = -12345.0f;
                /* activation rows start at row 1: an offset base pointer */
                qfit_gemm(type, n, f.wq, f.wstride, i0, i1, arow(&f, 1), f.astride, m, Y, ldy);
                for (int64_t j = 0; j < mmax; j++) {
                    for (int64_t i = 0; i < ldy; i++) {
                        const float y = Y[j * ldy + i];
                        if (j >= m || i < i0 || i >= i1) {
                            cr_assert_eq(y, -12345.0f, "%s [%s] m=%lld [%lld,%lld) wrote Y(%lld,%lld)",
                                         qfit_type_name(type), qfit_isa_name((qfit_isa)isa), (long long)m,
                                         (long long)i0, (long long)i1, (long long)j, (long long)i);
                            continue;
                        }
                        const double want = ref[(j + 1) * rows + i];
                        const double tol = 1e-5 * abs_scale(&f, i, j + 1) + 1e-6;
                        cr_assert(fabs((double)y - want) <= tol,
                                  "%s [%s] m=%lld [%lld,%lld): Y(%lld,%lld) = %.9g, scalar vec_dot %.9g",
                                  qfit_type_name(type), qfit_isa_name((qfit_isa)isa), (long long)m,
                                  (long long)i0, (long long)i1, (long long)j, (long long)i, y, want);
                    }
                }
            }
        }
    }
    free(ref);
    free(Y);
    fixture_free(&f);
    qfit_isa_select(QFIT_ISA_SCALAR);
}

/* Every ISA's SIMD panel packer writes exactly the bytes of the portable
 * packer (gemm_pack.c), for full and partial panels. */
static void check_pack(int type, int64_t n)
{
    if (qk_pack_family(type) < 0) return;
    fixture f;
    cr_assert_eq(qfit_isa_select(QFIT_ISA_SCALAR), 0);
    fixture_make(&f, type, n, 19, 1, (uint64_t)type * 7 + 11);
    for (int isa = 0; isa < 4; isa++) {
        const qk_table *t = qk_table_for((qfit_isa)isa);
        if (!t || !t->panel[type].pack) continue;
        const int R = t->panel[type].rows, fam = t->panel[type].family;
        const size_t bytes = qk_pack_block_bytes(fam, R) * (size_t)(n / qk_pack_family_block(fam));
        uint8_t *p1 = malloc(bytes), *p2 = malloc(bytes);
        cr_assert(p1 && p2);
        const int nws[] = {R, 1, R - 3, 9};
        for (size_t q = 0; q < sizeof nws / sizeof *nws; q++) {
            memset(p1, 0x11, bytes);
            memset(p2, 0x22, bytes);
            t->panel[type].pack(n, wrow(&f, 2), f.wstride, nws[q], NULL, p1);
            qk_pack_panel(fam, type, n, wrow(&f, 2), f.wstride, nws[q], R, p2);
            size_t at = 0;
            while (at < bytes && p1[at] == p2[at]) at++;
            cr_assert_eq(at, bytes, "%s [%s] nw=%d: packed panels differ at byte %zu of %zu",
                         qfit_type_name(type), qfit_isa_name((qfit_isa)isa), nws[q], at, bytes);
        }
        free(p1);
        free(p2);
    }
    fixture_free(&f);
}

/* Weights packed at load (qfit_pack_matrix): where an ISA has a load-time layout
 * for the type, qfit_gemm_packed gives the scalar vec_dot results for every m (one
 * row, tile tails, several tiles) on panel-aligned ranges and writes nothing
 * outside them; a range that is not on panel boundaries, or another active ISA, is
 * refused (1) with nothing written, so the caller can use the rows. AVX-512 VNNI
 * must have layouts for Q4_K, Q6_K, Q8_0, Q4_0, IQ4_NL and IQ4_XS (the test cannot pass by
 * packing nothing). */
static void check_gemm_packed(int type, int64_t n)
{
    static const int64_t ms[] = {1, 2, 3, 4, 5, 8, 9, 33};
    const int64_t rows = 45, mmax = 33, ldy = 47;
    fixture f;
    cr_assert_eq(qfit_isa_select(QFIT_ISA_SCALAR), 0);
    fixture_make(&f, type, n, rows, mmax + 1, (uint64_t)type * 131 + 7);
    float *ref = malloc((size_t)(rows * (mmax + 1)) * 4), *Y = malloc((size_t)(mmax * ldy) * 4);
    cr_assert(ref && Y);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j <= mmax; j++) ref[j * rows + i] = qfit_vec_dot(type, n, wrow(&f, i), arow(&f, j));
    for (int isa = 0; isa < 4; isa++) {
        if (!try_isa(isa)) continue;
        const size_t bytes = qfit_pack_bytes(type, n, rows);
        if (isa == QFIT_ISA_AVX512 && qfit_cpu_get_features()->avx512vnni &&
            (type == QFIT_TYPE_Q4_K || type == QFIT_TYPE_Q6_K || type == QFIT_TYPE_Q8_0 || type == QFIT_TYPE_Q4_0 ||
             type == QFIT_TYPE_IQ4_NL || type == QFIT_TYPE_IQ4_XS))
            cr_assert_gt(bytes, 0, "%s: no load-time layout on AVX-512 VNNI", qfit_type_name(type));
        qfit_packed p;
        if (bytes == 0) {
            cr_assert_eq(qfit_pack_matrix(type, n, rows, f.wq, f.wstride, &p), -1);
            cr_assert_null(p.data);
            continue;
        }
        cr_assert_eq(qfit_pack_matrix(type, n, rows, f.wq, f.wstride, &p), 0);
        cr_assert_eq(p.rows * ((rows + p.rows - 1) / p.rows) * (int64_t)(p.panel_bytes / (size_t)p.rows), (int64_t)bytes);
        const int64_t R = p.rows;
        const int64_t ranges[][2] = {{0, rows}, {R, 2 * R}, {0, R}, {2 * R, rows}, {3, 40}, {R, R + 5}};
        for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++)
            for (size_t ri = 0; ri < sizeof ranges / sizeof *ranges; ri++) {
                const int64_t m = ms[mi], i0 = ranges[ri][0], i1 = ranges[ri][1];
                const bool aligned = i0 % R == 0 && (i1 % R == 0 || i1 == rows);
                for (int64_t q = 0; q < mmax * ldy; q++) Y[q] = -12345.0f;
                const int rc = qfit_gemm_packed(&p, i0, i1, arow(&f, 1), f.astride, m, Y, ldy);
                cr_assert_eq(rc, aligned ? 0 : 1, "%s [%s] [%lld,%lld): returned %d", qfit_type_name(type),
                             qfit_isa_name((qfit_isa)isa), (long long)i0, (long long)i1, rc);
                for (int64_t j = 0; j < mmax; j++)
                    for (int64_t i = 0; i < ldy; i++) {
                        const float y = Y[j * ldy + i];
                        if (!aligned || j >= m || i < i0 || i >= i1) {
                            cr_assert_eq(y, -12345.0f, "%s [%s] m=%lld [%lld,%lld) wrote Y(%lld,%lld)",
                                         qfit_type_name(type), qfit_isa_name((qfit_isa)isa), (long long)m,
                                         (long long)i0, (long long)i1, (long long)j, (long long)i);
                            continue;
                        }
                        const double want = ref[(j + 1) * rows + i];
                        const double tol = 1e-5 * abs_scale(&f, i, j + 1) + 1e-6;
                        cr_assert(fabs((double)y - want) <= tol,
                                  "%s [%s] packed m=%lld [%lld,%lld): Y(%lld,%lld) = %.9g, scalar vec_dot %.9g",
                                  qfit_type_name(type), qfit_isa_name((qfit_isa)isa), (long long)m, (long long)i0,
                                  (long long)i1, (long long)j, (long long)i, y, want);
                    }
            }
        /* another ISA active: refused, nothing written */
        cr_assert_eq(qfit_isa_select(QFIT_ISA_SCALAR), 0);
        Y[0] = -12345.0f;
        cr_assert_eq(qfit_gemm_packed(&p, 0, rows, arow(&f, 1), f.astride, 1, Y, ldy), 1);
        cr_assert_eq(Y[0], -12345.0f);
        cr_assert_eq(qfit_gemm_packed(&p, 0, rows + 1, arow(&f, 1), f.astride, 1, Y, ldy), -1, "past the rows");
        qfit_packed_free(&p);
        cr_assert_null(p.data);
    }
    free(ref);
    free(Y);
    fixture_free(&f);
    qfit_isa_select(QFIT_ISA_SCALAR);
}

static void check_type(int type, int64_t n1, int64_t n2)
{
    check_against_float(type, n1);
    check_against_float(type, n2);
    check_isas(type, n1);
    check_isas(type, n2);
    for (int isa = 0; isa < 4; isa++) {
        if (!try_isa(isa)) continue;
        check_gemm(type, n2, (qfit_isa)isa);
    }
    check_gemm_tiles(type, n1);
    check_gemm_packed(type, n1);
    check_pack(type, n2);
    qfit_isa_select(QFIT_ISA_SCALAR);
}

#define PLAIN_N1 1031   /* odd lengths exercise SIMD tails */
#define PLAIN_N2 4096
#define LEG_N1   (32 * 37)
#define LEG_N2   (32 * 128)
#define K_N1     (256 * 3)
#define K_N2     (256 * 16)

Test(kernels, f32)    { check_type(QFIT_TYPE_F32, PLAIN_N1, PLAIN_N2); }
Test(kernels, f16)    { check_type(QFIT_TYPE_F16, PLAIN_N1, PLAIN_N2); }
Test(kernels, bf16)   { check_type(QFIT_TYPE_BF16, PLAIN_N1, PLAIN_N2); }
Test(kernels, q4_0)   { check_type(QFIT_TYPE_Q4_0, LEG_N1, LEG_N2); }
Test(kernels, q4_1)   { check_type(QFIT_TYPE_Q4_1, LEG_N1, LEG_N2); }
Test(kernels, q5_0)   { check_type(QFIT_TYPE_Q5_0, LEG_N1, LEG_N2); }
Test(kernels, q5_1)   { check_type(QFIT_TYPE_Q5_1, LEG_N1, LEG_N2); }
Test(kernels, q8_0)   { check_type(QFIT_TYPE_Q8_0, LEG_N1, LEG_N2); }
Test(kernels, iq4_nl) { check_type(QFIT_TYPE_IQ4_NL, LEG_N1, LEG_N2); }
Test(kernels, mxfp4)  { check_type(QFIT_TYPE_MXFP4, LEG_N1, LEG_N2); }
Test(kernels, q2_K)   { check_type(QFIT_TYPE_Q2_K, K_N1, K_N2); }
Test(kernels, q3_K)   { check_type(QFIT_TYPE_Q3_K, K_N1, K_N2); }
Test(kernels, q4_K)   { check_type(QFIT_TYPE_Q4_K, K_N1, K_N2); }
Test(kernels, q5_K)   { check_type(QFIT_TYPE_Q5_K, K_N1, K_N2); }
Test(kernels, q6_K)   { check_type(QFIT_TYPE_Q6_K, K_N1, K_N2); }
Test(kernels, iq4_xs) { check_type(QFIT_TYPE_IQ4_XS, K_N1, K_N2); }

/* Q4_0 and IQ4_NL packed take their activations with block sums, converted a few rows at
 * a time into 256 KiB of per-thread scratch: rows of 65536 elements (80 KiB converted)
 * go 3 at a time, so 9 rows are 3 chunks, each landing in its own rows of Y. */
Test(kernels, packed_activation_chunks)
{
    const int types[] = { QFIT_TYPE_Q4_0, QFIT_TYPE_IQ4_NL };
    const int64_t n = 32 * 2048, rows = 32, m = 9;
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        const int type = types[ti];
        fixture f;
        cr_assert_eq(qfit_isa_select(QFIT_ISA_SCALAR), 0);
        fixture_make(&f, type, n, rows, m, 4242 + (uint64_t)type);
        for (int isa = 0; isa < 4; isa++) {
            if (!try_isa(isa)) continue;
            qfit_packed p;
            if (qfit_pack_matrix(type, n, rows, f.wq, f.wstride, &p) != 0) continue;
            float Y[9 * 32];
            cr_assert_eq(qfit_gemm_packed(&p, 0, rows, f.aq, f.astride, m, Y, rows), 0);
            for (int64_t j = 0; j < m; j++)
                for (int64_t i = 0; i < rows; i++) {
                    const double want = qfit_vec_dot(type, n, wrow(&f, i), arow(&f, j));
                    cr_assert(fabs((double)Y[j * rows + i] - want) <= 1e-5 * abs_scale(&f, i, j) + 1e-6,
                              "%s [%s] Y(%lld,%lld) = %.9g, scalar vec_dot %.9g", qfit_type_name(type),
                              qfit_isa_name((qfit_isa)isa), (long long)j, (long long)i, Y[j * rows + i], want);
                }
            qfit_packed_free(&p);
        }
        fixture_free(&f);
    }
    qfit_isa_select(QFIT_ISA_SCALAR);
}

#if defined(__x86_64__)
/* BF16 on AVX-512 without AVX512_BF16 (Skylake-X, Ice Lake): the converting tile that
 * such a CPU's table holds, which a CPU with the extension never runs through
 * qfit_gemm. Against the scalar vec_dot, m and row counts through both tile sizes and
 * k through the masked tail. */
Test(kernels, bf16_tile_without_avx512_bf16)
{
    const qfit_cpu_features *cf = qfit_cpu_get_features();
    if (!cf->avx512f || !cf->avx512vnni || !qk_table_for(QFIT_ISA_AVX512)) {
        cr_skip_test("no AVX-512 VNNI on this CPU");
        return;
    }
    qk_table t;
    memset(&t, 0, sizeof t);
    qk_fill_gemm_avx512(&t, 0);
    const qk_direct_fn fn = t.panel[QFIT_TYPE_BF16].direct;
    cr_assert_not_null(fn);
    const int64_t n = PLAIN_N1, rows = 11, m = 9, ldy = 13;
    fixture f;
    cr_assert_eq(qfit_isa_select(QFIT_ISA_SCALAR), 0);
    fixture_make(&f, QFIT_TYPE_BF16, n, rows, m, 977);
    float Y[9 * 13];
    for (int q = 0; q < 9 * 13; q++) Y[q] = -12345.0f;
    fn(n, f.wq, f.wstride, (int)rows, f.aq, f.astride, m, Y, ldy);
    for (int64_t j = 0; j < m; j++)
        for (int64_t i = 0; i < ldy; i++) {
            if (i >= rows) {
                cr_assert_eq(Y[j * ldy + i], -12345.0f, "wrote Y(%lld,%lld)", (long long)j, (long long)i);
                continue;
            }
            const double want = qfit_vec_dot(QFIT_TYPE_BF16, n, wrow(&f, i), arow(&f, j));
            cr_assert(fabs((double)Y[j * ldy + i] - want) <= 1e-5 * abs_scale(&f, i, j) + 1e-6,
                      "Y(%lld,%lld) = %.9g, scalar vec_dot %.9g", (long long)j, (long long)i, Y[j * ldy + i], want);
        }
    fixture_free(&f);
}
#endif

Test(kernels, vec_dot_types)
{
    cr_assert_eq(qfit_vec_dot_type(QFIT_TYPE_F32), QFIT_TYPE_F32);
    cr_assert_eq(qfit_vec_dot_type(QFIT_TYPE_F16), QFIT_TYPE_F16);
    cr_assert_eq(qfit_vec_dot_type(QFIT_TYPE_BF16), QFIT_TYPE_BF16);
    cr_assert_eq(qfit_vec_dot_type(QFIT_TYPE_Q4_0), QFIT_TYPE_Q8_0);
    cr_assert_eq(qfit_vec_dot_type(QFIT_TYPE_Q5_0), QFIT_TYPE_Q8_0);
    cr_assert_eq(qfit_vec_dot_type(QFIT_TYPE_Q8_0), QFIT_TYPE_Q8_0);
    cr_assert_eq(qfit_vec_dot_type(QFIT_TYPE_IQ4_NL), QFIT_TYPE_Q8_0);
    cr_assert_eq(qfit_vec_dot_type(QFIT_TYPE_MXFP4), QFIT_TYPE_Q8_0);
    cr_assert_eq(qfit_vec_dot_type(QFIT_TYPE_Q4_1), QFIT_TYPE_Q8_1);
    cr_assert_eq(qfit_vec_dot_type(QFIT_TYPE_Q5_1), QFIT_TYPE_Q8_1);
    cr_assert_eq(qfit_vec_dot_type(QFIT_TYPE_Q2_K), QFIT_TYPE_Q8_K);
    cr_assert_eq(qfit_vec_dot_type(QFIT_TYPE_Q6_K), QFIT_TYPE_Q8_K);
    cr_assert_eq(qfit_vec_dot_type(QFIT_TYPE_IQ4_XS), QFIT_TYPE_Q8_K);
    cr_assert_eq(qfit_vec_dot_type(QFIT_TYPE_IQ2_XXS), -1);
    cr_assert_eq(qfit_vec_dot_type(-1), -1);
    cr_assert_eq(qfit_vec_dot_type(QFIT_TYPE_COUNT), -1);
}

Test(kernels, isa_selection)
{
    const qfit_cpu_features *ft = qfit_cpu_get_features();
    cr_assert(ft);
    cr_assert_str_eq(qfit_isa_name(QFIT_ISA_SCALAR), "scalar");
    cr_assert_str_eq(qfit_isa_name(QFIT_ISA_AVX512), "avx512");
    cr_assert_eq(qfit_isa_select(QFIT_ISA_SCALAR), 0);
    cr_assert_eq(qfit_isa_active(), QFIT_ISA_SCALAR);
#if defined(__x86_64__)
    cr_assert_eq(qfit_isa_select(QFIT_ISA_NEON), -1, "NEON must be refused on x86");
    cr_assert_eq(qfit_isa_active(), QFIT_ISA_SCALAR, "a refused select changes nothing");
    cr_assert_eq(qfit_isa_select(QFIT_ISA_AVX2) == 0, ft->avx2 && ft->fma && ft->f16c);
#endif
    cr_assert_eq(qfit_isa_select((qfit_isa)7), -1);
    qfit_isa best = qfit_isa_best();
    cr_assert_eq(qfit_isa_select(best), 0);
    cr_assert_eq(qfit_isa_active(), best);
    qfit_isa_select(QFIT_ISA_SCALAR);
}

Test(kernels, bad_arguments)
{
    block_q8_0 w[2], a[2];
    memset(w, 0, sizeof w);
    memset(a, 0, sizeof a);
    cr_assert(isnan(qfit_vec_dot(QFIT_TYPE_Q8_0, 33, w, a)), "n not a multiple of the block");
    cr_assert(isnan(qfit_vec_dot(QFIT_TYPE_Q8_0, 0, w, a)));
    cr_assert(isnan(qfit_vec_dot(QFIT_TYPE_IQ2_XXS, 256, w, a)), "unsupported type");
    cr_assert(isnan(qfit_vec_dot(99, 32, w, a)));
    cr_assert(isnan(qfit_vec_dot(QFIT_TYPE_Q8_0, 32, NULL, a)));
    cr_assert_eq(qfit_vec_dot(QFIT_TYPE_Q8_0, 64, w, a), 0.0f);
    float y[4] = {7, 7, 7, 7};
    /* refused, said so, nothing written */
    cr_assert_eq(qfit_gemm(QFIT_TYPE_Q8_0, 33, w, 34, 0, 1, a, 34, 1, y, 4), -1, "k not a multiple of the block");
    cr_assert_eq(qfit_gemm(QFIT_TYPE_Q8_0, 32, w, 34, 1, 1, a, 34, 1, y, 4), -1, "empty range");
    cr_assert_eq(qfit_gemm(QFIT_TYPE_IQ2_XXS, 256, w, 34, 0, 1, a, 34, 1, y, 4), -1, "no dot kernel");
    cr_assert_eq(qfit_gemm(QFIT_TYPE_Q8_0, 32, NULL, 34, 0, 1, a, 34, 1, y, 4), -1);
    cr_assert_eq(y[0], 7.0f);
    cr_assert_eq(y[1], 7.0f);
    cr_assert_eq(qfit_gemm(QFIT_TYPE_Q8_0, 32, w, 34, 0, 1, a, 34, 1, y, 4), 0);
    cr_assert_eq(y[0], 0.0f, "a valid call writes");
    float x[32];
    for (int i = 0; i < 32; i++) x[i] = (float)i;
    uint8_t out[64];
    memset(out, 0x5A, sizeof out);
    qfit_quantize_activations(QFIT_TYPE_Q8_0, x, out, 31);   /* not a whole block: nothing */
    qfit_quantize_activations(-3, x, out, 32);
    for (int i = 0; i < 64; i++) cr_assert_eq(out[i], 0x5A);
}

/* A hand-computed case: exact integer result. */
Test(kernels, q8_0_exact)
{
    float w[64], x[64];
    for (int i = 0; i < 64; i++) { w[i] = (float)((i % 7) - 3); x[i] = (float)((i % 5) - 2); }
    w[0] = 127.0f; x[0] = 127.0f;   /* blocks with amax 127: scale 1 exactly */
    w[32] = -127.0f; x[32] = 127.0f;
    block_q8_0 wq[2], aq[2];
    char err[128];
    cr_assert_eq(qfit_quantize_rows(QFIT_TYPE_Q8_0, w, wq, 1, 64, err, sizeof err), sizeof wq);
    double expect = 0;
    for (int i = 0; i < 64; i++) expect += (double)w[i] * x[i];
    for (int isa = 0; isa < 4; isa++) {
        if (!try_isa(isa)) continue;
        qfit_quantize_activations(QFIT_TYPE_Q8_0, x, aq, 64);
        cr_assert_eq(qfit_vec_dot(QFIT_TYPE_Q8_0, 64, wq, aq), (float)expect, "%s", qfit_isa_name((qfit_isa)isa));
    }
    qfit_isa_select(QFIT_ISA_SCALAR);
}

/* A QFIT_ISA that cannot be honoured is an error, never a warning and a fallback. */
Test(kernels, unavailable_isa_from_the_environment_is_an_error, .timeout = 120)
{
#if defined(__x86_64__) || defined(__i386__)
    const char *foreign = "neon";
#else
    const char *foreign = "avx2";
#endif
    char cmd[1200];
    int st = 0;
    snprintf(cmd, sizeof cmd, "QFIT_ISA=%s %s run %s -p 'In the beginning' -n 2 --threads 1", foreign, tu_qfit_bin(),
             tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    char *out = tu_run(cmd, &st);
    cr_expect_neq(st, 0, "%s", out);
    cr_expect_not_null(strstr(out, "is not available on this CPU"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "QFIT_ISA=sse9 %s bench %s --pp 8 --tg 0 --reps 1 --threads 1", tu_qfit_bin(),
             tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    out = tu_run(cmd, &st);
    cr_expect_neq(st, 0, "%s", out);
    cr_expect_not_null(strstr(out, "QFIT_ISA=sse9 is not an instruction set"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "QFIT_ISA=scalar %s run %s -p 'In the beginning' -n 2 --threads 1", tu_qfit_bin(),
             tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    out = tu_run(cmd, &st);
    cr_expect_eq(st, 0, "%s", out);
    free(out);
}

/* ---------------------------------------------------------------- row kernels */

static double rel_diff(double a, double b) { return fabs(a - b) / fmax(1e-6, fmax(fabs(a), fabs(b))); }

/* rows8 (flash attention over up to 8 query rows sharing a KV head) against a
 * softmax in double over the dequantized cache, for each cache type it takes, head
 * dims 64 and 128, 1..8 real rows (AVX-512: 1, 2, 4 rows, 3 run as 4; AVX2: up to
 * 2, 4, 8), rows seeing different lengths, several tiles, and a split range
 * (p_begin > 0, the unnormalized output with max and sum). Tolerance: float sums in
 * another order and the vector exp (1e-4 of the output's scale). */
static void check_rows8(const qfit_row_kernels *V)
{
    static const int types[3] = {QFIT_TYPE_F16, QFIT_TYPE_Q8_0, QFIT_TYPE_Q4_0};
    enum { P = 200, HDMAX = 128 };
    char err[128];
    for (int ti = 0; ti < 3; ti++) {
        for (int HD = 64; HD <= HDMAX; HD += 64) {
            const int ty = types[ti];
            const size_t rb = qfit_row_size(ty, HD);
            uint8_t *kc = malloc(rb * P), *vc = malloc(rb * P);
            float *kf = malloc(sizeof *kf * P * HD), *vf = malloc(sizeof *vf * P * HD);
            float *qs = malloc(sizeof *qs * 8 * HD), *outs = malloc(sizeof *outs * 8 * HD);
            float *scr = malloc(sizeof *scr * QFIT_ATTN_ROWS8_SCRATCH(HD, HD));
            cr_assert(kc && vc && kf && vf && qs && outs && scr);
            fill_random(kf, P * HD, 5 + ti);
            fill_random(vf, P * HD, 6 + ti);
            fill_random(qs, 8 * HD, 7 + ti);
            if (ty != QFIT_TYPE_F16) {   /* block keys take queries rounded to q8_0 (the contract) */
                uint8_t qb[8 * HDMAX / 32 * 34];
                qfit_quantize_activations(qfit_vec_dot_type(ty), qs, qb, 8 * HD);
                cr_assert_eq(qfit_rows_to_float(qfit_vec_dot_type(ty), qb, qs, 1, 8 * HD), 0);
            }
            for (int i = 0; i < P * HD; i++) kf[i] *= 3.0f;   /* peaked softmax */
            cr_assert_gt(qfit_quantize_rows(ty, kf, kc, P, HD, err, sizeof err), 0, "%s", err);
            cr_assert_gt(qfit_quantize_rows(ty, vf, vc, P, HD, err, sizeof err), 0, "%s", err);
            cr_assert_eq(qfit_rows_to_float(ty, kc, kf, P, HD), 0);   /* the reference sees the cache */
            cr_assert_eq(qfit_rows_to_float(ty, vc, vf, P, HD), 0);
            for (int split = 0; split < 2; split++) {
                for (int nr = 1; nr <= 8; nr++) {
                    const int p_begin = split ? 37 : 0;
                    const float *qp[8];
                    float *op[8], ml[16];
                    int npos[8];
                    for (int r = 0; r < 8; r++) {
                        qp[r] = qs + (size_t)(r < nr ? r : 0) * HD;
                        op[r] = outs + (size_t)r * HD;
                        npos[r] = r < nr ? P - 3 * r : P;
                    }
                    const float scale = 0.125f;
                    V->rows8(ty, ty, HD, HD, nr, qp, p_begin, npos, scale, kc, rb, vc, rb, op, split ? ml : NULL, scr);
                    for (int r = 0; r < nr; r++) {
                        double sc[P], M = -INFINITY, sum = 0;
                        for (int p = p_begin; p < npos[r]; p++) {
                            double d = 0;
                            for (int j = 0; j < HD; j++) d += (double)qp[r][j] * kf[(size_t)p * HD + j];
                            sc[p] = scale * d;
                            M = fmax(M, sc[p]);
                        }
                        for (int p = p_begin; p < npos[r]; p++) sum += (sc[p] = exp(sc[p] - M));
                        if (split) {
                            cr_expect_leq(fabs(ml[2 * r] - M), 1e-4 * fmax(1.0, fabs(M)), "%s hd %d %d rows: row %d max %g vs %g",
                                          qfit_type_name(ty), HD, nr, r, ml[2 * r], M);
                            cr_expect_leq(fabs(ml[2 * r + 1] - sum), 1e-4 * sum, "%s hd %d %d rows: row %d sum %g vs %g",
                                          qfit_type_name(ty), HD, nr, r, ml[2 * r + 1], sum);
                        }
                        for (int d = 0; d < HD; d++) {
                            double o = 0;
                            for (int p = p_begin; p < npos[r]; p++) o += sc[p] * vf[(size_t)p * HD + d];
                            if (!split) o /= sum;
                            const double tol = 1e-4 * (split ? sum : 1.0) * fmax(1.0, fabs(o) / (split ? sum : 1.0));
                            cr_expect_leq(fabs(op[r][d] - o), tol, "%s hd %d split %d, %d rows: row %d dim %d: %g vs %g",
                                          qfit_type_name(ty), HD, split, nr, r, d, op[r][d], o);
                        }
                    }
                }
            }
            free(kc); free(vc); free(kf); free(vf); free(qs); free(outs); free(scr);
        }
    }
}

/* The per-row flash path for one query row over cached positions [p0, p1): attn.c's
 * flash_range (what the model runs when the 8-row kernel does not) on the table's own
 * entries. qv: the query as that path hands it to the dots (f32 for f16 keys, q8_0
 * blocks for block keys); per tile of QFIT_ATTN_ROWS8_TILE positions the scores
 * dot x scale, the tile's max, the sum and accumulator scaled by expf(M - M') when it
 * grew, exp_sub, then in position order S += w and mad of the value row. acc is left
 * unnormalized. */
static void flash_row_ref(const qfit_row_kernels *V, int tk, int tv, int hdk, int hdv, const void *qv, float scale,
                          const uint8_t *kc, size_t ks, const uint8_t *vc, size_t vs, int p0, int p1, float *acc,
                          float *M_out, float *S_out)
{
    enum { T = QFIT_ATTN_ROWS8_TILE };
    float tile[T], M = -INFINITY, S = 0.0f;
    memset(acc, 0, sizeof(float) * (size_t)hdv);
    for (int t0 = p0; t0 < p1; t0 += T) {
        const int nt = p1 - t0 < T ? p1 - t0 : T;
        for (int i = 0; i < nt; i++) {
            const uint8_t *k = kc + (size_t)(t0 + i) * ks;
            const float d = tk == QFIT_TYPE_F16 ? V->dot_f16(qv, (const uint16_t *)k, hdk)
                            : tk == QFIT_TYPE_Q8_0 ? V->dot_q8_0(qv, k, hdk) : V->dot_q4_0(qv, k, hdk);
            tile[i] = d * scale;
        }
        float mt = tile[0];
        for (int i = 1; i < nt; i++) if (tile[i] > mt) mt = tile[i];
        if (mt > M) {
            if (S > 0.0f) {
                const float r = expf(M - mt);
                V->scale(acc, r, hdv);
                S *= r;
            }
            M = mt;
        }
        V->exp_sub(tile, M, nt);
        for (int i = 0; i < nt; i++) {
            const float w = tile[i];
            const uint8_t *v = vc + (size_t)(t0 + i) * vs;
            S += w;
            if (tv == QFIT_TYPE_F16) V->mad_f16(acc, (const uint16_t *)v, w, hdv);
            else if (tv == QFIT_TYPE_Q8_0) V->mad_q8_0(acc, v, w, hdv);
            else V->mad_q4_0(acc, v, w, hdv);
        }
    }
    *M_out = M;
    *S_out = S;
}

static bool same_bits(const float *a, const float *b, int n, int *at)
{
    for (int i = 0; i < n; i++) {
        uint32_t x, y;
        memcpy(&x, a + i, 4);
        memcpy(&y, b + i, 4);
        if (x != y) { *at = i; return false; }
    }
    return true;
}

/* rows8 with more than 4 rows (the model's prefill blocks of 8 query rows, and decode
 * groups of 5..8 heads) is the per-row flash path, bit for bit (qfit/kernels.h): each
 * row's output (and, on a split range, its max and sum) equals flash_row_ref's for that
 * row alone, on every cache type pair it takes, head dims 64 and 128 (and 40 for f16:
 * the dot's last 8 dims), rows ending in every tile and between whole groups of 8 (the
 * tail exp_sub takes with expf), prefill-shaped blocks (4 tokens x 2 heads), and a split
 * range. The queries are what the model hands over: for block keys the query quantized to
 * q8_0 (the per-row path's dot input) and, for rows8, expanded back (rows8_queries). */
Test(kernels, rows8_equals_per_row_flash)
{
    static const int cfg[][3] = {
        { QFIT_TYPE_F16, QFIT_TYPE_F16, 64 },   { QFIT_TYPE_F16, QFIT_TYPE_F16, 128 },
        { QFIT_TYPE_F16, QFIT_TYPE_F16, 40 },   { QFIT_TYPE_Q8_0, QFIT_TYPE_Q8_0, 64 },
        { QFIT_TYPE_Q8_0, QFIT_TYPE_Q8_0, 128 }, { QFIT_TYPE_Q4_0, QFIT_TYPE_Q4_0, 64 },
        { QFIT_TYPE_Q4_0, QFIT_TYPE_Q4_0, 128 }, { QFIT_TYPE_Q8_0, QFIT_TYPE_F16, 64 },
        { QFIT_TYPE_F16, QFIT_TYPE_Q4_0, 64 },  { QFIT_TYPE_Q4_0, QFIT_TYPE_Q8_0, 64 },
    };
    enum { P = 300, HDMAX = 128, NQ = 16 };
    int checked = 0;
    for (int isa = QFIT_ISA_AVX2; isa <= QFIT_ISA_NEON; isa++) {
        if (!try_isa(isa)) continue;
        const qfit_row_kernels *V = qfit_row_kernels_active();
        if (!V->rows8) continue;
        for (size_t ci = 0; ci < sizeof cfg / sizeof cfg[0]; ci++) {
            const int tk = cfg[ci][0], tv = cfg[ci][1], HD = cfg[ci][2];
            const size_t ks = qfit_row_size(tk, HD), vs = qfit_row_size(tv, HD);
            uint8_t *kc = malloc(ks * P), *vc = malloc(vs * P), *qb = malloc((size_t)NQ * HD * 4);
            float *kf = malloc(sizeof(float) * P * HD), *vf = malloc(sizeof(float) * P * HD);
            float *qs = malloc(sizeof(float) * NQ * HD), *q8f = malloc(sizeof(float) * NQ * HD);
            float *outs = malloc(sizeof(float) * 8 * HD), *ref = malloc(sizeof(float) * HD);
            float *scr = malloc(sizeof(float) * QFIT_ATTN_ROWS8_SCRATCH(HD, HD));
            cr_assert(kc && vc && qb && kf && vf && qs && q8f && outs && ref && scr);
            fill_random(kf, (int64_t)P * HD, 11 + ci);
            fill_random(vf, (int64_t)P * HD, 12 + ci);
            fill_random(qs, (int64_t)NQ * HD, 13 + ci);
            for (int i = 0; i < P * HD; i++) kf[i] *= 3.0f;   /* peaked softmax: the max moves between tiles */
            char err[128];
            cr_assert_gt(qfit_quantize_rows(tk, kf, kc, P, HD, err, sizeof err), 0, "%s", err);
            cr_assert_gt(qfit_quantize_rows(tv, vf, vc, P, HD, err, sizeof err), 0, "%s", err);
            const size_t qrow = tk == QFIT_TYPE_F16 ? sizeof(float) * HD : qfit_row_size(QFIT_TYPE_Q8_0, HD);
            for (int j = 0; j < NQ; j++) {
                if (tk == QFIT_TYPE_F16) {
                    memcpy(qb + qrow * j, qs + (size_t)j * HD, qrow);
                    memcpy(q8f + (size_t)j * HD, qs + (size_t)j * HD, sizeof(float) * HD);
                } else {
                    qfit_quantize_activations(QFIT_TYPE_Q8_0, qs + (size_t)j * HD, qb + qrow * j, HD);
                    cr_assert_eq(qfit_rows_to_float(QFIT_TYPE_Q8_0, qb + qrow * j, q8f + (size_t)j * HD, 1, HD), 0);
                }
            }
            /* cases: prefill blocks (token b + r / 2 of a run starting at 0 sees b + r / 2 + 1
             * positions), 5..7 wanted rows, equal rows, and split ranges with max and sum */
            static const int bases[] = { 0, 3, 58, 63, 125, 190, 296 };
            const int nb = (int)(sizeof bases / sizeof bases[0]);
            for (int cs = 0; cs < nb + 5; cs++) {
                int npos[8], nrows = 8, p_begin = 0, split = 0;
                const float *qp[8];
                float *op[8], ml[16];
                for (int r = 0; r < 8; r++) {
                    if (cs < nb) npos[r] = bases[cs] + r / 2 + 1;
                    else if (cs == nb) npos[r] = P - 37 * r;
                    else if (cs <= nb + 3) { nrows = 4 + cs - nb; npos[r] = r < nrows ? P - 5 - 9 * r : P - 5; }
                    else { split = 1; p_begin = 37; npos[r] = P - 11 * r; }
                }
                for (int r = 0; r < 8; r++) {
                    const int j = (cs * 8 + (r < nrows ? r : 0)) % NQ;
                    qp[r] = q8f + (size_t)j * HD;
                    op[r] = outs + (size_t)r * HD;
                }
                V->rows8(tk, tv, HD, HD, nrows, qp, p_begin, npos, 0.125f, kc, ks, vc, vs, op, split ? ml : NULL, scr);
                for (int r = 0; r < nrows; r++) {
                    const int j = (cs * 8 + r) % NQ;
                    float M, S;
                    flash_row_ref(V, tk, tv, HD, HD, qb + qrow * j, 0.125f, kc, ks, vc, vs, p_begin, npos[r], ref, &M, &S);
                    if (split) {
                        int at = 0;
                        cr_expect(same_bits(&ml[2 * r], &M, 1, &at) && same_bits(&ml[2 * r + 1], &S, 1, &at),
                                  "%s: %s/%s hd %d, split, row %d: max %a sum %a, per-row %a %a", qfit_isa_name((qfit_isa)isa),
                                  qfit_type_name(tk), qfit_type_name(tv), HD, r, ml[2 * r], ml[2 * r + 1], M, S);
                    } else {
                        const float inv = 1.0f / S;
                        for (int d = 0; d < HD; d++) ref[d] *= inv;
                    }
                    int at = 0;
                    cr_expect(same_bits(op[r], ref, HD, &at), "%s: %s/%s hd %d, case %d (%d rows), row %d (npos %d): dim %d %a, per-row %a",
                              qfit_isa_name((qfit_isa)isa), qfit_type_name(tk), qfit_type_name(tv), HD, cs, nrows, r,
                              npos[r], at, op[r][at], ref[at]);
                    checked++;
                }
            }
            free(kc); free(vc); free(qb); free(kf); free(vf); free(qs); free(q8f); free(outs); free(ref); free(scr);
        }
    }
    qfit_isa_select(qfit_isa_best());
    if (!checked) cr_log_warn("no ISA here has a rows8 kernel: nothing to compare");
}

/* The active ISA's row kernels (attention over the cache, SwiGLU, exp, f16 stores)
 * against the scalar reference, each entry; rows8 (flash attention over 8 query rows)
 * against a softmax computed with the scalar dots. Tolerances: float sums in another
 * order (1e-5 relative), the vector exp (~1e-7, 1e-5 here); f16 conversion exact. */
Test(kernels, row_kernels_match_scalar)
{
    for (int isa = QFIT_ISA_AVX2; isa <= QFIT_ISA_NEON; isa++) {
        if (!try_isa(isa)) continue;
        const qfit_row_kernels *V = qfit_row_kernels_active(), *S = &qfit_row_kernels_scalar;
        if (V == S) {
            cr_log_warn("ISA %s: no vector row kernels yet (the scalar table is used)", qfit_isa_name((qfit_isa)isa));
            continue;
        }
        enum { N = 128, P = 70, HD = 64 };
        float q[N], k[N], v[N], a1[N], a2[N], g1[N], g2[N], u[N];
        uint16_t kh[N], h1[N], h2[N];
        fill_random(q, N, 1);
        fill_random(k, N, 2);
        fill_random(v, N, 3);
        fill_random(u, N, 4);
        for (int i = 0; i < N; i++) kh[i] = qfit_fp32_to_fp16(k[i]);
        cr_expect_leq(rel_diff(V->dot_f32(q, k, N), S->dot_f32(q, k, N)), 1e-5);
        cr_expect_leq(rel_diff(V->dot_f16(q, kh, N), S->dot_f16(q, kh, N)), 1e-5);
        /* block rows: the key in its type, the query in q8_0 */
        uint8_t q8[N / 32 * sizeof(block_q8_0)], k8[N / 32 * sizeof(block_q8_0)], k4[N / 32 * sizeof(block_q4_0)];
        qfit_quantize_activations(QFIT_TYPE_Q8_0, q, q8, N);
        char err[128];
        cr_assert_gt(qfit_quantize_rows(QFIT_TYPE_Q8_0, k, k8, 1, N, err, sizeof err), 0, "%s", err);
        cr_assert_gt(qfit_quantize_rows(QFIT_TYPE_Q4_0, k, k4, 1, N, err, sizeof err), 0, "%s", err);
        cr_expect_leq(rel_diff(V->dot_q8_0(q8, k8, N), S->dot_q8_0(q8, k8, N)), 1e-5);
        cr_expect_leq(rel_diff(V->dot_q4_0(q8, k4, N), S->dot_q4_0(q8, k4, N)), 1e-5);
        /* mad and scale */
        for (int t = 0; t < 4; t++) {
            memcpy(a1, u, sizeof a1);
            memcpy(a2, u, sizeof a2);
            switch (t) {
            case 0: V->mad_f32(a1, v, 0.37f, N); S->mad_f32(a2, v, 0.37f, N); break;
            case 1: V->mad_f16(a1, kh, 0.37f, N); S->mad_f16(a2, kh, 0.37f, N); break;
            case 2: V->mad_q8_0(a1, k8, 0.37f, N); S->mad_q8_0(a2, k8, 0.37f, N); break;
            default: V->mad_q4_0(a1, k4, 0.37f, N); S->mad_q4_0(a2, k4, 0.37f, N); break;
            }
            for (int i = 0; i < N; i++) cr_expect_leq(rel_diff(a1[i], a2[i]), 1e-5, "mad %d at %d", t, i);
        }
        memcpy(a1, u, sizeof a1);
        memcpy(a2, u, sizeof a2);
        V->scale(a1, -1.75f, N);
        S->scale(a2, -1.75f, N);
        cr_expect_arr_eq(a1, a2, sizeof a1, "scale");
        /* exp_sub over a range that includes underflow, and swiglu */
        for (int i = 0; i < N; i++) a1[i] = a2[i] = -30.0f + 0.25f * (float)i;
        V->exp_sub(a1, 2.0f, N);
        S->exp_sub(a2, 2.0f, N);
        for (int i = 0; i < N; i++) cr_expect_leq(rel_diff(a1[i], a2[i]), 1e-5, "exp at %d", i);
        memcpy(g1, q, sizeof g1);
        memcpy(g2, q, sizeof g2);
        V->swiglu(g1, u, N);
        S->swiglu(g2, u, N);
        for (int i = 0; i < N; i++) cr_expect_leq(fabs(g1[i] - g2[i]), 1e-5 * fmax(1.0, fabs(g2[i])), "swiglu at %d", i);
        V->f32_to_f16(v, h1, N);
        S->f32_to_f16(v, h2, N);
        cr_expect_arr_eq(h1, h2, sizeof h1, "f32 -> f16");

        if (V->rows8) check_rows8(V);
    }
    qfit_isa_select(qfit_isa_best());
}
