/* K-quants (Q2_K..Q6_K, Q8_K): byte-exact agreement with ggml's reference
 * quantizers, bit-exact dequantization, and invariants on edge cases. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/quant.h"
#include "quant/blocks.h"
#include "quant/quant_internal.h"
#include "util/testutil.h"

typedef void (*kq_quant_fn)(const float *, void *, int64_t);
typedef void (*kq_dequant_fn)(const void *, float *, int64_t);

typedef struct {
    const char *name;
    int type;
    size_t block_bytes;
    kq_quant_fn quant;
    kq_dequant_fn dequant;
    double max_rel_err; /* bound on max|deq - x| / max|x| of a super-block */
} kq_type;

/* Error bounds: about 1.3-2x the worst case seen on 10^4 gaussian / uniform /
 * one-signed / mixed-scale super-blocks; a packing or scale bug gives errors of
 * the order of max|x| itself. */
static const kq_type KQ_TYPES[] = {
    {"q2_K", QFIT_TYPE_Q2_K, sizeof(block_q2_K), qfit_quantize_row_q2_K_ref, qfit_dequantize_row_q2_K, 0.55},
    {"q3_K", QFIT_TYPE_Q3_K, sizeof(block_q3_K), qfit_quantize_row_q3_K_ref, qfit_dequantize_row_q3_K, 0.35},
    {"q4_K", QFIT_TYPE_Q4_K, sizeof(block_q4_K), qfit_quantize_row_q4_K_ref, qfit_dequantize_row_q4_K, 0.15},
    {"q5_K", QFIT_TYPE_Q5_K, sizeof(block_q5_K), qfit_quantize_row_q5_K_ref, qfit_dequantize_row_q5_K, 0.08},
    {"q6_K", QFIT_TYPE_Q6_K, sizeof(block_q6_K), qfit_quantize_row_q6_K_ref, qfit_dequantize_row_q6_K, 0.03},
};
#define KQ_NTYPES (sizeof KQ_TYPES / sizeof KQ_TYPES[0])

static const kq_type *kq_find(const char *name)
{
    for (size_t i = 0; i < KQ_NTYPES; ++i)
        if (!strcmp(KQ_TYPES[i].name, name)) return &KQ_TYPES[i];
    cr_assert_fail("unknown type %s", name);
    return NULL;
}

/* deterministic generator (xorshift64*, Box-Muller) */
static uint64_t kq_rng_state;
static void kq_seed(uint64_t s) { kq_rng_state = s * 0x9E3779B97F4A7C15ull + 1; }
static double kq_unif(void)
{
    kq_rng_state ^= kq_rng_state >> 12;
    kq_rng_state ^= kq_rng_state << 25;
    kq_rng_state ^= kq_rng_state >> 27;
    return (double)((kq_rng_state * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}
static float kq_gauss(void)
{
    double a = kq_unif(), b = kq_unif();
    if (a < 1e-300) a = 1e-300;
    return (float)(sqrt(-2.0 * log(a)) * cos(6.283185307179586 * b));
}

static void *kq_read(const char *path, size_t *size)
{
    void *p = tu_read_file(path, size);
    cr_assert_not_null(p, "cannot read %s", path);
    return p;
}

static int kq_first_diff(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; ++i)
        if (x[i] != y[i]) return (int)i;
    return -1;
}

/* ---- against the shared ggml testdata ------------------------------------ */

static void kq_check_testdata(const char *tname, int n_per_row)
{
    const kq_type *t = kq_find(tname);
    char rel[128];
    size_t nf, nq, nd;

    snprintf(rel, sizeof rel, "testdata/quant/rows%d.f32", n_per_row);
    float *x = kq_read(tu_shared_path(rel), &nf);
    snprintf(rel, sizeof rel, "testdata/quant/%s.rows%d.q", tname, n_per_row);
    unsigned char *ref_q = kq_read(tu_shared_path(rel), &nq);
    snprintf(rel, sizeof rel, "testdata/quant/%s.rows%d.deq.f32", tname, n_per_row);
    float *ref_d = kq_read(tu_shared_path(rel), &nd);

    const size_t nrows = nf / sizeof(float) / (size_t)n_per_row;
    const size_t row_bytes = (size_t)n_per_row / QK_K * t->block_bytes;
    cr_assert_gt(nrows, 0);
    cr_assert_eq(nq, nrows * row_bytes, "%s: %zu bytes, expected %zu", rel, nq, nrows * row_bytes);
    cr_assert_eq(nd, nf);

    unsigned char *q = malloc(row_bytes);
    float *d = malloc((size_t)n_per_row * sizeof(float));
    float *d_ref_bytes = malloc((size_t)n_per_row * sizeof(float));
    for (size_t r = 0; r < nrows; ++r) {
        const float *xr = x + r * (size_t)n_per_row;
        memset(q, 0xA5, row_bytes);
        t->quant(xr, q, n_per_row);
        int at = kq_first_diff(q, ref_q + r * row_bytes, row_bytes);
        cr_expect_eq(at, -1, "%s rows%d row %zu: first differing byte %d (block %d, offset %d)",
                     tname, n_per_row, r, at, at / (int)t->block_bytes, at % (int)t->block_bytes);

        /* dequantizing ggml's bytes must give ggml's floats bit for bit */
        t->dequant(ref_q + r * row_bytes, d_ref_bytes, n_per_row);
        at = kq_first_diff(d_ref_bytes, ref_d + r * (size_t)n_per_row, (size_t)n_per_row * sizeof(float));
        cr_expect_eq(at, -1, "%s rows%d row %zu: dequantized element %d differs",
                     tname, n_per_row, r, at < 0 ? -1 : at / 4);

        t->dequant(q, d, n_per_row);
        cr_expect_eq(memcmp(d, d_ref_bytes, (size_t)n_per_row * sizeof(float)), 0);
    }
    free(q); free(d); free(d_ref_bytes);
    free(x); free(ref_q); free(ref_d);
}

Test(quant_k, q2_K_matches_ggml_testdata) { kq_check_testdata("q2_K", 256); kq_check_testdata("q2_K", 768); }
Test(quant_k, q3_K_matches_ggml_testdata) { kq_check_testdata("q3_K", 256); kq_check_testdata("q3_K", 768); }
Test(quant_k, q4_K_matches_ggml_testdata) { kq_check_testdata("q4_K", 256); kq_check_testdata("q4_K", 768); }
Test(quant_k, q5_K_matches_ggml_testdata) { kq_check_testdata("q5_K", 256); kq_check_testdata("q5_K", 768); }
Test(quant_k, q6_K_matches_ggml_testdata) { kq_check_testdata("q6_K", 256); kq_check_testdata("q6_K", 768); }

/* ---- against the committed vectors in tests/data/kquant (see gen.sh) ----- */

Test(quant_k, committed_vectors_match_ggml_through_public_api)
{
    size_t nf;
    float *x = kq_read("tests/data/kquant/rows.f32", &nf);
    const int64_t n = 256;
    const int64_t nrows = (int64_t)(nf / sizeof(float)) / n;
    cr_assert_eq(nrows, 4);

    for (size_t i = 0; i < KQ_NTYPES; ++i) {
        const kq_type *t = &KQ_TYPES[i];
        char path[128];
        size_t nq;
        snprintf(path, sizeof path, "tests/data/kquant/%s.q", t->name);
        unsigned char *ref = kq_read(path, &nq);
        const size_t row_bytes = qfit_row_size(t->type, n);
        cr_assert_eq(row_bytes, t->block_bytes);
        cr_assert_eq(nq, (size_t)nrows * row_bytes);

        unsigned char *q = malloc(nq);
        char err[256] = "";
        size_t got = qfit_quantize_rows(t->type, x, q, nrows, n, err, sizeof err);
        cr_assert_eq(got, nq, "%s: qfit_quantize_rows returned %zu (%s)", t->name, got, err);
        int at = kq_first_diff(q, ref, nq);
        cr_expect_eq(at, -1, "%s: first differing byte %d (row %d)", t->name, at,
                     at < 0 ? -1 : at / (int)row_bytes);

        /* row-wise internal quantizer agrees with the whole-chunk public call */
        unsigned char *q1 = malloc(nq);
        for (int64_t r = 0; r < nrows; ++r) t->quant(x + r * n, q1 + r * row_bytes, n);
        cr_expect_eq(memcmp(q1, q, nq), 0, "%s: row-wise and chunked output differ", t->name);

        /* public dequantizer equals the internal one */
        float *d1 = malloc(nf), *d2 = malloc(nf);
        cr_assert_eq(qfit_rows_to_float(t->type, ref, d1, nrows, n), 0);
        t->dequant(ref, d2, nrows * n);
        cr_expect_eq(memcmp(d1, d2, nf), 0, "%s: public and internal dequantization differ", t->name);

        free(d1); free(d2); free(q1); free(q); free(ref);
    }
    free(x);
}

/* ---- invariants on edge cases --------------------------------------------- */

/* Quantize nb super-blocks, dequantize, check all finite and that every
 * super-block's max error is <= rel * max|x|. Returns the dequantized values
 * (malloc'd). */
static float *kq_roundtrip_checked(const kq_type *t, const float *x, int nb, const char *what, double rel)
{
    unsigned char *q = malloc((size_t)nb * t->block_bytes);
    float *y = malloc((size_t)nb * QK_K * sizeof(float));
    t->quant(x, q, (int64_t)nb * QK_K);
    t->dequant(q, y, (int64_t)nb * QK_K);
    for (int b = 0; b < nb; ++b) {
        double amax = 0, emax = 0;
        for (int i = 0; i < QK_K; ++i) {
            const int k = b * QK_K + i;
            cr_assert(isfinite(y[k]), "%s %s: element %d not finite", t->name, what, k);
            amax = fmax(amax, fabs(x[k]));
            emax = fmax(emax, fabs((double)y[k] - x[k]));
        }
        cr_expect_leq(emax, rel * amax, "%s %s block %d: max error %g > %g * max|x| (%g)",
                      t->name, what, b, emax, rel, amax);
    }
    free(q);
    return y;
}

Test(quant_k, all_zero_superblock_is_exact_and_isolated)
{
    float x[2 * QK_K];
    for (size_t ti = 0; ti < KQ_NTYPES; ++ti) {
        const kq_type *t = &KQ_TYPES[ti];
        kq_seed(11);
        for (int i = 0; i < QK_K; ++i) x[i] = 0.f;
        for (int i = QK_K; i < 2 * QK_K; ++i) x[i] = kq_gauss();
        float *y = kq_roundtrip_checked(t, x, 2, "zero+gauss", t->max_rel_err);
        for (int i = 0; i < QK_K; ++i)
            cr_expect_eq(y[i], 0.f, "%s: zero block element %d dequantized to %g", t->name, i, y[i]);

        /* a zero block does not influence its neighbour */
        unsigned char two[2 * sizeof(block_q6_K)], one[sizeof(block_q6_K)];
        t->quant(x, two, 2 * QK_K);
        t->quant(x + QK_K, one, QK_K);
        cr_expect_eq(memcmp(two + t->block_bytes, one, t->block_bytes), 0, "%s", t->name);

        /* and its bytes are all zero (ggml writes d = dmin = 0, all levels 0) */
        unsigned char zeros[sizeof(block_q6_K)] = {0};
        cr_expect_eq(memcmp(two, zeros, t->block_bytes), 0, "%s: all-zero block has non-zero bytes", t->name);
        free(y);
    }
}

Test(quant_k, one_huge_subblock)
{
    float x[QK_K];
    for (size_t ti = 0; ti < KQ_NTYPES; ++ti) {
        const kq_type *t = &KQ_TYPES[ti];
        for (int j = 0; j < 16; j += 5) {
            kq_seed(100 + (uint64_t)j);
            for (int i = 0; i < QK_K; ++i) x[i] = kq_gauss() * (i / 16 == j ? 1000.f : 0.001f);
            float *y = kq_roundtrip_checked(t, x, 1, "huge sub-block", t->max_rel_err);
            /* the huge sub-block itself keeps its own (tighter) relative error */
            double amax = 0, emax = 0;
            for (int i = 16 * j; i < 16 * j + 16; ++i) {
                amax = fmax(amax, fabs(x[i]));
                emax = fmax(emax, fabs((double)y[i] - x[i]));
            }
            cr_expect_leq(emax, t->max_rel_err * amax, "%s sub-block %d", t->name, j);
            free(y);
        }
    }
}

Test(quant_k, denormal_inputs)
{
    float x[QK_K];
    for (size_t ti = 0; ti < KQ_NTYPES; ++ti) {
        const kq_type *t = &KQ_TYPES[ti];
        kq_seed(7);
        for (int i = 0; i < QK_K; ++i) x[i] = (float)(kq_unif() * 2 - 1) * 1e-39f;
        float *y = kq_roundtrip_checked(t, x, 1, "denormal", 1.0);
        /* such scales underflow fp16: everything dequantizes to (signed) zero */
        for (int i = 0; i < QK_K; ++i) cr_expect_eq(y[i], 0.f, "%s: element %d = %g", t->name, i, y[i]);
        free(y);
    }
}

Test(quant_k, negative_only_and_positive_only_rows)
{
    float x[4 * QK_K];
    for (size_t ti = 0; ti < KQ_NTYPES; ++ti) {
        const kq_type *t = &KQ_TYPES[ti];
        kq_seed(3);
        for (int i = 0; i < 2 * QK_K; ++i) x[i] = -fabsf(kq_gauss());
        for (int i = 2 * QK_K; i < 4 * QK_K; ++i) x[i] = fabsf(kq_gauss()) + 0.5f;
        float *y = kq_roundtrip_checked(t, x, 4, "one-signed", t->max_rel_err);
        /* the dequantized values keep the sign of the data (up to the error bound
         * near zero), and the largest magnitude is reproduced closely */
        for (int b = 0; b < 4; ++b) {
            double sign = b < 2 ? -1 : 1, amax = 0, ymax = 0;
            for (int i = b * QK_K; i < (b + 1) * QK_K; ++i) {
                amax = fmax(amax, fabs(x[i]));
                ymax = fmax(ymax, sign * y[i]);
                cr_expect_geq(sign * y[i], -t->max_rel_err * amax, "%s block %d element %d", t->name, b, i);
            }
            cr_expect_leq(fabs(ymax - amax), t->max_rel_err * amax, "%s block %d", t->name, b);
        }
        free(y);
    }
}

Test(quant_k, random_rows_within_error_bound)
{
    enum { NB = 64 };
    float *x = malloc(NB * QK_K * sizeof(float));
    for (size_t ti = 0; ti < KQ_NTYPES; ++ti) {
        const kq_type *t = &KQ_TYPES[ti];
        kq_seed(1234);
        for (int b = 0; b < NB; ++b) {
            float scale = powf(10.f, (float)(kq_unif() * 8 - 4));
            float shift = (b % 3 == 0) ? (float)(kq_unif() - 0.5) * 2 * scale : 0.f;
            for (int i = 0; i < QK_K; ++i) x[b * QK_K + i] = kq_gauss() * scale + shift;
        }
        free(kq_roundtrip_checked(t, x, NB, "random", t->max_rel_err));
    }
    free(x);
}

/* ---- Q8_K ------------------------------------------------------------------ */

Test(quant_k, q8_K_round_trip_and_bsums)
{
    enum { NB = 8 };
    float x[NB * QK_K], y[NB * QK_K];
    block_q8_K q[NB];
    kq_seed(99);
    for (int b = 0; b < NB; ++b) {
        float scale = powf(10.f, (float)(b - 4));
        for (int i = 0; i < QK_K; ++i) x[b * QK_K + i] = kq_gauss() * scale;
    }
    for (int i = 0; i < QK_K; ++i) x[5 * QK_K + i] = 0.f;            /* all-zero block */
    for (int i = 0; i < QK_K; ++i) x[6 * QK_K + i] = -fabsf(x[6 * QK_K + i]); /* negative only */

    memset(q, 0x5A, sizeof q);
    qfit_quantize_row_q8_K_ref(x, q, NB * QK_K);
    qfit_dequantize_row_q8_K(q, y, NB * QK_K);

    for (int b = 0; b < NB; ++b) {
        const float *xb = x + b * QK_K;
        float amax = 0, vmax = 0;
        for (int i = 0; i < QK_K; ++i)
            if (fabsf(xb[i]) > amax) { amax = fabsf(xb[i]); vmax = xb[i]; }

        for (int g = 0; g < QK_K / 16; ++g) {
            int s = 0;
            for (int l = 0; l < 16; ++l) s += q[b].qs[16 * g + l];
            cr_expect_eq(q[b].bsums[g], s, "block %d bsum %d", b, g);
        }
        if (amax == 0) {
            cr_expect_eq(q[b].d, 0.f);
            for (int i = 0; i < QK_K; ++i) {
                cr_expect_eq(q[b].qs[i], 0);
                cr_expect_eq(y[b * QK_K + i], 0.f);
            }
            continue;
        }
        /* d = -max/127 (as ggml: the element of largest magnitude maps to -127) */
        cr_expect_eq(q[b].d, 1 / (-127.f / vmax), "block %d d", b);
        int found = 0;
        for (int i = 0; i < QK_K; ++i) {
            cr_expect(q[b].qs[i] >= -127 && q[b].qs[i] <= 127);
            if (xb[i] == vmax) { cr_expect_eq(q[b].qs[i], -127); found = 1; }
            double err = fabs((double)y[b * QK_K + i] - xb[i]);
            cr_expect_leq(err, 0.5 * fabs(q[b].d) * (1 + 1e-5) + 1e-6 * amax, "block %d elem %d", b, i);
            cr_expect_eq(y[b * QK_K + i], q[b].d * q[b].qs[i]);
        }
        cr_expect(found);
    }
}

Test(quant_k, q8_K_known_values)
{
    float x[QK_K] = {0};
    x[0] = 2.f; x[1] = -1.f; x[2] = 0.5f; x[3] = -2.f; x[17] = 1.f;
    block_q8_K q;
    qfit_quantize_row_q8_K_ref(x, &q, QK_K);
    cr_expect_eq(q.d, 1 / (-127.f / 2.f));
    cr_expect_eq(q.qs[0], -127);
    cr_expect_eq(q.qs[1], 64);   /* 63.5 rounds to even */
    cr_expect_eq(q.qs[2], -32);  /* -31.75 */
    cr_expect_eq(q.qs[3], 127);   /* same magnitude as the max, other sign */
    cr_expect_eq(q.qs[17], -64); /* -63.5 rounds to even */
    cr_expect_eq(q.bsums[0], -127 + 64 - 32 + 127);
    cr_expect_eq(q.bsums[1], -64);
    for (int g = 2; g < 16; ++g) cr_expect_eq(q.bsums[g], 0);
}

/* ---- layout facts the kernels rely on --------------------------------------- */

Test(quant_k, q4_K_scale_packing_round_trips)
{
    /* a block with distinct 6-bit scales and mins: quantize, then read the
     * scales back through the dequantizer's view (d * sc per sub-block) */
    float x[QK_K];
    for (int j = 0; j < 8; ++j)
        for (int l = 0; l < 32; ++l) x[32 * j + l] = (float)(j + 1) * (float)l / 31.f - 0.1f * (float)j;
    block_q4_K b;
    qfit_quantize_row_q4_K_ref(x, &b, QK_K);
    float y[QK_K];
    qfit_dequantize_row_q4_K(&b, y, QK_K);
    for (int j = 0; j < 8; ++j) {
        /* a ramp from -0.1j to (j+1)-0.1j must come back increasing, every element within 0.6 of
         * its sub-block's step (range / 15 levels; the 6-bit scale and min add less than 0.1 step).
         * A scale or min read from the wrong sub-block is off by >= 1/8 of the range = 1.9 steps. */
        cr_expect_lt(y[32 * j], y[32 * j + 31], "sub-block %d", j);
        const double step = (double)(j + 1) / 15.0;
        for (int l = 0; l < 32; ++l)
            cr_expect_leq(fabs(y[32 * j + l] - x[32 * j + l]), 0.6 * step, "sub-block %d element %d: %g vs %g", j, l,
                          y[32 * j + l], x[32 * j + l]);
    }
}
