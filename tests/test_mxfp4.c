/* MXFP4 (ggml type 39): quantizer, dequantizer, vec_dot and gemm against
 * llama.cpp's ggml. The reference files in tests/data/mxfp4 come from ggml's own
 * functions (gen-refs.c, make-refs.sh); the inputs are regenerated here from
 * tests/data/mxfp4/mxfp4_cases.h and checked against the hash ggml saw. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/kernels.h"
#include "qfit/quant.h"
#include "quant/blocks.h"
#include "kernels/kernels_internal.h"
#include "util/testutil.h"
#include "data/mxfp4/mxfp4_cases.h"

#define REF_DIR "tests/data/mxfp4/"

static void *read_ref(const char *name, size_t want)
{
    size_t size = 0;
    void *p = tu_read_file(name, &size);
    cr_assert_not_null(p, "cannot read %s (run from the repository root)", name);
    cr_assert_eq(size, want, "%s: %zu bytes, expected %zu", name, size, want);
    return p;
}

/* the value of `key` in refs.txt (hex when hex) */
static uint64_t ref_value(const char *key, int hex)
{
    size_t size;
    char *txt = tu_read_file(REF_DIR "refs.txt", &size);
    cr_assert_not_null(txt, "cannot read " REF_DIR "refs.txt");
    uint64_t v = 0;
    int found = 0;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        const size_t kl = strlen(key);
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
            v = strtoull(line + kl + 1, NULL, hex ? 16 : 10);
            found = 1;
        }
    }
    free(txt);
    cr_assert(found, "refs.txt has no %s", key);
    return v;
}

static float *make_inputs(void)
{
    float *x = malloc((size_t)MX_NQ * 32 * sizeof(float));
    cr_assert_not_null(x);
    for (int b = 0; b < MX_NQ; b++) mx_block(b, x + 32 * b);
    const uint64_t h = mx_fnv1a(MX_FNV_INIT, x, (size_t)MX_NQ * 32 * sizeof(float));
    cr_assert_eq(h, ref_value("inputs_fnv1a64", 1),
                 "the regenerated inputs differ from those ggml quantized (hash %016" PRIx64 ")", h);
    return x;
}

static const char *group_of(int b)
{
    return b < 32 ? "special" : b < 863 ? "exponent sweep" : b < 2400 ? "rounding boundary" : "weight-like";
}

/* first differing block of two quantized buffers, -1 if equal */
static int first_diff_block(const uint8_t *a, const uint8_t *b, int nblocks)
{
    for (int i = 0; i < nblocks; i++)
        if (memcmp(a + 17 * i, b + 17 * i, 17) != 0) return i;
    return -1;
}

static void assert_blocks_equal(const uint8_t *got, const uint8_t *ref, const char *how)
{
    const int b = first_diff_block(got, ref, MX_NQ);
    if (b < 0) return;
    int byte = 0;
    while (got[17 * b + byte] == ref[17 * b + byte]) byte++;
    cr_assert_fail("%s: block %d (%s) differs from ggml at byte %d (%s): qfit 0x%02x, ggml 0x%02x "
                   "(exponents qfit %d, ggml %d)", how, b, group_of(b), byte,
                   byte == 0 ? "exponent" : "codes", got[17 * b + byte], ref[17 * b + byte], got[17 * b],
                   ref[17 * b]);
}

/* ggml's blocks are kept as FNV-1a 64 digests (refs.txt: whole, and per MX_QGROUP
 * blocks to say where a difference is) */
static void assert_ggml_digests(const uint8_t *q, const char *how)
{
    for (int g = 0; g < MX_NQ / MX_QGROUP; g++) {
        char key[64];
        snprintf(key, sizeof key, "quant_g%02d_fnv1a64", g);
        const uint64_t h = mx_fnv1a(MX_FNV_INIT, q + (size_t)17 * MX_QGROUP * g, (size_t)17 * MX_QGROUP);
        cr_assert_eq(h, ref_value(key, 1), "%s: blocks %d..%d (%s) differ from ggml's (digest %016" PRIx64 ")", how,
                     g * MX_QGROUP, (g + 1) * MX_QGROUP - 1, group_of(g * MX_QGROUP), h);
    }
    cr_assert_eq(mx_fnv1a(MX_FNV_INIT, q, (size_t)MX_NQ * 17), ref_value("quant_fnv1a64", 1), "%s", how);
}

/* qfit's quantization of the inputs, one block per row (equal to ggml's: quantize_matches_ggml) */
static uint8_t *quantize_inputs(void)
{
    float *x = make_inputs();
    uint8_t *q = malloc((size_t)MX_NQ * 17);
    cr_assert_not_null(q);
    char err[256] = "";
    cr_assert_eq(qfit_quantize_rows(QFIT_TYPE_MXFP4, x, q, MX_NQ, 32, err, sizeof err), (size_t)MX_NQ * 17, "%s",
                 err);
    free(x);
    return q;
}

Test(mxfp4, quantize_matches_ggml_byte_for_byte)
{
    float *x = make_inputs();
    uint8_t *got = malloc((size_t)MX_NQ * 17 + 16);
    cr_assert_not_null(got);
    char err[256] = "";

    /* one block per row (against ggml's digests), then the whole set as one row and rows of
     * 8 blocks, each against the first */
    memset(got, 0xA5, (size_t)MX_NQ * 17 + 16);
    cr_assert_eq(qfit_quantize_rows(QFIT_TYPE_MXFP4, x, got, MX_NQ, 32, err, sizeof err), (size_t)MX_NQ * 17,
                 "%s", err);
    for (int i = 0; i < 16; i++) cr_assert_eq(got[MX_NQ * 17 + i], 0xA5, "wrote past the end");
    assert_ggml_digests(got, "qfit_quantize_rows, 32 per row");
    uint8_t *ref = malloc((size_t)MX_NQ * 17);
    cr_assert_not_null(ref);
    memcpy(ref, got, (size_t)MX_NQ * 17);
    memset(got, 0, (size_t)MX_NQ * 17);
    cr_assert_eq(qfit_quantize_row_ref(QFIT_TYPE_MXFP4, x, got, (int64_t)MX_NQ * 32), 0);
    assert_blocks_equal(got, ref, "qfit_quantize_row_ref, one row");
    memset(got, 0, (size_t)MX_NQ * 17);
    cr_assert_eq(qfit_quantize_rows(QFIT_TYPE_MXFP4, x, got, MX_NQ / 8, 256, err, sizeof err), (size_t)MX_NQ * 17,
                 "%s", err);
    assert_blocks_equal(got, ref, "qfit_quantize_rows, 256 per row");
    /* no importance-matrix path (ggml ignores it for MXFP4): the same bytes with one */
    cr_assert(!qfit_type_uses_imatrix(QFIT_TYPE_MXFP4));
    float imat[256];
    for (int j = 0; j < 256; j++) imat[j] = 1.0f + (float)(j % 7);
    memset(got, 0, (size_t)MX_NQ * 17);
    cr_assert_eq(qfit_quantize_rows_imatrix(QFIT_TYPE_MXFP4, x, got, MX_NQ / 8, 256, imat, err, sizeof err),
                 (size_t)MX_NQ * 17, "%s", err);
    assert_blocks_equal(got, ref, "qfit_quantize_rows_imatrix");
    free(x);
    free(ref);
    free(got);
}

/* The exponent rule on hand-picked blocks (derived from the format, not from ggml's
 * output): e = floor(log2 amax) + 125, where glibc's log2f rounds an amax one ulp
 * below 2^k up to k for k >= 2; the out-of-range cases wrap as on x86. */
Test(mxfp4, exponent_byte_rules)
{
    static const struct { uint32_t amax_bits; int e; } k[] = {
        { 0x3f800000u, 125 },   /* 1.0 = 2^0 */
        { 0x3fffffffu, 125 },   /* one ulp below 2: log2f stays below 1 (1 - 2^-24) */
        { 0x40000000u, 126 },   /* 2.0 */
        { 0x40c00000u, 127 },   /* 6.0 = 12 * 2^(127-128): the largest level */
        { 0x00000000u, 0 },     /* all zero */
        { 0x01000000u, 0 },     /* 2^-125: the smallest amax with an in-range exponent */
        { 0x00800000u, 255 },   /* 2^-126: -1 wraps to 255 */
        { 0x00000001u, 232 },   /* 2^-149: -24 wraps to 232 */
        { 0x7f000000u, 252 },   /* 2^127 */
        { 0x7f7fffffu, 253 },   /* FLT_MAX: log2f rounds to 128 */
        { 0x7f800000u, 0 },     /* inf: the conversion's "integer indefinite" */
    };
    for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
        float x[32] = { 0 };
        x[9] = mx_bits(k[i].amax_bits);
        x[3] = -x[9] * 0.25f;
        uint8_t blk[17];
        cr_assert_eq(qfit_quantize_row_ref(QFIT_TYPE_MXFP4, x, blk, 32), 0);
        cr_assert_eq(blk[0], k[i].e, "amax %a: exponent byte %d, expected %d", (double)x[9], blk[0], k[i].e);
    }
    /* a NaN is never the maximum and gets code 0 */
    float x[32] = { 0 };
    x[0] = mx_bits(0x7fc00000u);
    x[1] = 3.0f;
    uint8_t blk[17];
    cr_assert_eq(qfit_quantize_row_ref(QFIT_TYPE_MXFP4, x, blk, 32), 0);
    cr_assert_eq(blk[0], 126);
    cr_assert_eq(blk[1], 0x00, "code of element 0 (NaN): 0x%02x", blk[1]);
    cr_assert_eq(blk[2], 0x07, "code of element 1 (3.0 = 12 * 2^(126-128)): 0x%02x", blk[2]);
}

/* Ties go to the lower code: 1.5 * d lies between levels 1 and 2 and takes code 1;
 * -0.5 * d between +0 (code 0) and -1 (code 9) takes 0; -0 never becomes code 8. */
Test(mxfp4, ties_take_the_lower_code)
{
    float x[32] = { 0 };
    x[0] = 4.0f;                /* amax 4: e = 127, d = 2^-1 */
    x[1] = 1.5f * 0.5f;         /* between 1*d and 2*d */
    x[2] = -0.5f * 0.5f;        /* between 0 and -1*d */
    x[3] = -0.0f;
    x[4] = 5.0f * 0.5f;         /* between 4*d and 6*d */
    x[16] = -10.0f * 0.5f * 0.5f;   /* -2.5: between -4*d (code 12) and -6*d (code 13) */
    uint8_t blk[17];
    cr_assert_eq(qfit_quantize_row_ref(QFIT_TYPE_MXFP4, x, blk, 32), 0);
    cr_assert_eq(blk[0], 127);
    cr_assert_eq(blk[1], 0x06 | (12 << 4), "element 0 (4.0 = 8 d) and element 16: 0x%02x", blk[1]);
    cr_assert_eq(blk[2], 0x01, "element 1: 0x%02x", blk[2]);
    cr_assert_eq(blk[3], 0x00, "element 2: 0x%02x", blk[3]);
    cr_assert_eq(blk[4], 0x00, "element 3 (-0): 0x%02x", blk[4]);
    cr_assert_eq(blk[5], 0x04, "element 4: 0x%02x", blk[5]);
}

/* Every exponent byte with every code in both nibble positions, bit for bit. */
Test(mxfp4, dequantize_matches_ggml_for_every_exponent_and_code)
{
    float *ref = read_ref(REF_DIR "deq.f32", (size_t)MX_NDEQ * 32 * sizeof(float));
    uint8_t blocks[MX_NDEQ * 17];
    for (int b = 0; b < MX_NDEQ; b++) mx_deq_block(b, blocks + 17 * b);
    static float got[MX_NDEQ * 32];
    cr_assert_eq(qfit_rows_to_float(QFIT_TYPE_MXFP4, blocks, got, MX_NDEQ, 32), 0);
    for (int i = 0; i < MX_NDEQ * 32; i++) {
        uint32_t g, r;
        memcpy(&g, &got[i], 4);
        memcpy(&r, &ref[i], 4);
        cr_assert_eq(g, r, "exponent %d, element %d (code %d): qfit %a (0x%08x), ggml %a (0x%08x)", i / 32, i % 32,
                     i % 32 < 16 ? i % 32 : 31 - i % 32, (double)got[i], g, (double)ref[i], r);
    }
    memset(got, 0, sizeof got);
    cr_assert_eq(qfit_dequantize_row(QFIT_TYPE_MXFP4, blocks, got, (int64_t)MX_NDEQ * 32), 0);
    cr_assert(memcmp(got, ref, sizeof got) == 0, "qfit_dequantize_row differs from qfit_rows_to_float");
    free(ref);
}

/* ------------------------------------------------------------- dot products */

typedef struct {
    uint8_t *w;      /* MX_NW rows of MX_DOT_BLOCKS mxfp4 blocks */
    uint8_t *a;      /* MX_NA rows of MX_DOT_BLOCKS q8_0 blocks */
    float *dots;     /* MX_NDOT x (generic, avx2) */
} dot_set;

static void dot_set_load(dot_set *s)
{
    uint8_t *q = quantize_inputs();
    s->w = malloc((size_t)MX_NW * MX_DOT_BLOCKS * 17);
    cr_assert_not_null(s->w);
    int got = 0;
    for (int i = 0; i < MX_NQ && got < MX_NW * MX_DOT_BLOCKS; i++) {
        const uint8_t *blk = q + 17 * mx_dot_block_order(i);
        if (blk[0] <= MX_DOT_MAX_E) memcpy(s->w + 17 * got++, blk, 17);
    }
    cr_assert_eq(got, MX_NW * MX_DOT_BLOCKS);
    free(q);
    s->a = read_ref(REF_DIR "act.q8_0", (size_t)MX_NA * MX_DOT_BLOCKS * 34);
    s->dots = read_ref(REF_DIR "dot.f32", (size_t)MX_NDOT * 2 * sizeof(float));
    cr_assert_eq(ref_value("dot_n", 0), MX_DOT_N);
    /* the activations ggml quantized are the ones mx_activation makes here, and qfit's
     * Q8_0 quantizer gives ggml's bytes for them */
    float *x = malloc((size_t)MX_NA * MX_DOT_N * sizeof(float));
    uint8_t *aq = malloc((size_t)MX_NA * MX_DOT_BLOCKS * 34);
    cr_assert(x && aq);
    for (int r = 0; r < MX_NA; r++) mx_activation(r, x + (size_t)r * MX_DOT_N);
    cr_assert_eq(mx_fnv1a(MX_FNV_INIT, x, (size_t)MX_NA * MX_DOT_N * sizeof(float)), ref_value("acts_fnv1a64", 1),
                 "the regenerated activations differ from those ggml quantized");
    for (int r = 0; r < MX_NA; r++)
        qfit_quantize_activations(QFIT_TYPE_Q8_0, x + (size_t)r * MX_DOT_N, aq + (size_t)r * MX_DOT_BLOCKS * 34,
                                  MX_DOT_N);
    cr_assert(memcmp(aq, s->a, (size_t)MX_NA * MX_DOT_BLOCKS * 34) == 0, "Q8_0 activations differ from ggml's");
    free(x);
    free(aq);
}

static void dot_set_free(dot_set *s)
{
    free(s->w);
    free(s->a);
    free(s->dots);
}

static const uint8_t *wrow(const dot_set *s, int r) { return s->w + (size_t)r * MX_DOT_BLOCKS * 17; }
static const uint8_t *arow(const dot_set *s, int r) { return s->a + (size_t)r * MX_DOT_BLOCKS * 34; }

/* The exact dot product of a weight row and an activation row (double: every
 * product of block scale and integer sum is exact, and their sum of 8 terms is
 * within 2^-50 of it), and the bound on any float evaluation of it.
 *
 * Every implementation computes, per block b, d_b = fp16(a.d) * 2^(e-128) (one
 * float multiply, the same in all) and exact integer sums of the products
 * q_j * kv_j (|sum| <= 32*127*12 < 2^24, exact as floats too): of the whole block
 * (scalar), or of groups of 4 elements in each vector lane. It then sums the
 * float products d_b * (integer sum): sequentially, or per lane with FMA and a
 * final horizontal sum. Each term passes through at most k = nb + 4 roundings
 * (one product, nb additions, 3 levels of an 8-lane reduction), so the result is
 * within gamma_k * sum_b |d_b| sum_j |q_j kv_j| of the exact one (the lanes'
 * partial sums can cancel, so the bound takes the elements' magnitudes),
 * gamma_k = k u / (1 - k u), u = 2^-24 (Higham, Accuracy and Stability, 3.1),
 * plus k * 2^-150 where partial results fall below the normal range. */
static double exact_dot(const uint8_t *w, const uint8_t *a, double *bound)
{
    double sum = 0.0, abs_sum = 0.0;
    for (int b = 0; b < MX_DOT_BLOCKS; b++) {
        const block_mxfp4 *x = (const block_mxfp4 *)(const void *)(w + 17 * b);
        const block_q8_0 *y = (const block_q8_0 *)(const void *)(a + 34 * b);
        const float d = qfit_fp16_to_fp32(y->d) * qfit_e8m0_to_fp32_half(x->e);
        int64_t S = 0, A = 0;
        for (int j = 0; j < 16; j++) {
            const int p0 = y->qs[j] * qfit_kvalues_mxfp4[x->qs[j] & 0x0F];
            const int p1 = y->qs[j + 16] * qfit_kvalues_mxfp4[x->qs[j] >> 4];
            S += p0 + p1;
            A += abs(p0) + abs(p1);
        }
        sum += (double)d * (double)S;
        abs_sum += fabs((double)d) * (double)A;
    }
    const double k = MX_DOT_BLOCKS + 4, u = ldexp(1.0, -24);
    *bound = k * u / (1.0 - k * u) * abs_sum + k * ldexp(1.0, -150) + ldexp(abs_sum, -50);
    return sum;
}

/* Selects an ISA; false when this CPU lacks it (reported by tu_isa_unavailable for
 * the ISAs of this architecture). */
static bool try_isa(int isa)
{
    if (qfit_isa_select((qfit_isa)isa) == 0) return true;
#if defined(__x86_64__) || defined(__i386__)
    if (isa != QFIT_ISA_NEON) tu_isa_unavailable(qfit_isa_name((qfit_isa)isa));
#else
    if (isa == QFIT_ISA_NEON) tu_isa_unavailable(qfit_isa_name((qfit_isa)isa));
#endif
    return false;
}

Test(mxfp4, vec_dot_matches_ggml_on_every_isa)
{
    dot_set s;
    dot_set_load(&s);
    cr_assert_eq(qfit_vec_dot_type(QFIT_TYPE_MXFP4), QFIT_TYPE_Q8_0);
    int checked = 0;
    for (int p = 0; p < MX_NDOT; p++) {
        const int r = p / 2, ar = (r + p % 2) % MX_NA;
        double bound;
        const double exact = exact_dot(wrow(&s, r), arow(&s, ar), &bound);
        const float generic = s.dots[2 * p], avx2 = s.dots[2 * p + 1];
        /* ggml's own two kernels obey the bound: it is not too tight */
        cr_assert(fabs((double)generic - exact) <= bound && fabs((double)avx2 - exact) <= bound,
                  "pair %d: ggml generic %a, avx2 %a, exact %a, bound %g", p, (double)generic, (double)avx2, exact,
                  bound);
        for (int isa = 0; isa < 4; isa++) {
            if (!try_isa(isa)) continue;
            const float got = qfit_vec_dot(QFIT_TYPE_MXFP4, MX_DOT_N, wrow(&s, r), arow(&s, ar));
            if (isa == QFIT_ISA_SCALAR) {
                /* the same operations in the same order as ggml's generic C: the same bits */
                cr_assert(memcmp(&got, &generic, 4) == 0, "pair %d scalar: %a, ggml generic %a", p, (double)got,
                          (double)generic);
            }
            cr_assert(fabs((double)got - exact) <= bound,
                      "pair %d [%s]: %a, exact %a (ggml generic %a, avx2 %a), bound %g", p,
                      qfit_isa_name((qfit_isa)isa), (double)got, exact, (double)generic, (double)avx2, bound);
            cr_assert(fabs((double)got - avx2) <= 2 * bound, "pair %d [%s]: %a vs ggml avx2 %a", p,
                      qfit_isa_name((qfit_isa)isa), (double)got, (double)avx2);
            checked++;
        }
    }
    cr_assert_geq(checked, MX_NDOT);
    qfit_isa_select(QFIT_ISA_SCALAR);
    dot_set_free(&s);
}

/* qfit_gemm on every ISA (panel kernels for m >= 8, the dot path below) against
 * the exact products of the dequantized weights and activations. */
Test(mxfp4, gemm_matches_dequantized_product_on_every_isa)
{
    dot_set s;
    dot_set_load(&s);
    static const int64_t ms[] = { 1, 3, 8, 13 };
    static const int64_t ranges[][2] = { { 0, MX_NW }, { 5, 38 }, { 17, 18 } };
    const int64_t ldy = MX_NW + 3, mmax = 13;
    const size_t ws = (size_t)MX_DOT_BLOCKS * 17, as = (size_t)MX_DOT_BLOCKS * 34;
    float *Y = malloc((size_t)(mmax * ldy) * sizeof(float));
    cr_assert_not_null(Y);
    for (int isa = 0; isa < 4; isa++) {
        if (!try_isa(isa)) continue;
        for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++) {
            for (size_t ri = 0; ri < sizeof ranges / sizeof *ranges; ri++) {
                const int64_t m = ms[mi], i0 = ranges[ri][0], i1 = ranges[ri][1];
                for (int64_t q = 0; q < mmax * ldy; q++) Y[q] = -12345.0f;
                /* activation rows from row 7 on: not the rows the weights were paired with */
                cr_assert_eq(qfit_gemm(QFIT_TYPE_MXFP4, MX_DOT_N, s.w, ws, i0, i1, arow(&s, 7), as, m, Y, ldy), 0);
                for (int64_t j = 0; j < mmax; j++) {
                    for (int64_t i = 0; i < ldy; i++) {
                        const float y = Y[j * ldy + i];
                        if (j >= m || i < i0 || i >= i1) {
                            cr_assert_eq(y, -12345.0f, "[%s] m=%lld: wrote Y(%lld,%lld) outside the range",
                                         qfit_isa_name((qfit_isa)isa), (long long)m, (long long)j, (long long)i);
                            continue;
                        }
                        double bound;
                        const double exact = exact_dot(wrow(&s, (int)i), arow(&s, 7 + (int)j), &bound);
                        cr_assert(fabs((double)y - exact) <= bound, "[%s] m=%lld [%lld,%lld): Y(%lld,%lld) = %a, exact %a, bound %g",
                                  qfit_isa_name((qfit_isa)isa), (long long)m, (long long)i0, (long long)i1, (long long)j,
                                  (long long)i, (double)y, exact, bound);
                    }
                }
            }
        }
    }
    /* the exact product is the one of the dequantized rows */
    float wf[MX_DOT_N];
    cr_assert_eq(qfit_rows_to_float(QFIT_TYPE_MXFP4, wrow(&s, 3), wf, 1, MX_DOT_N), 0);
    double ref = 0.0, bound;
    const block_q8_0 *a = (const block_q8_0 *)(const void *)arow(&s, 9);
    for (int l = 0; l < MX_DOT_N; l++) ref += (double)wf[l] * (qfit_fp16_to_fp32(a[l / 32].d) * (double)a[l / 32].qs[l % 32]);
    const double exact = exact_dot(wrow(&s, 3), arow(&s, 9), &bound);
    cr_assert(fabs(ref - exact) <= bound, "dequantized product %a vs block sums %a", ref, exact);
    free(Y);
    qfit_isa_select(QFIT_ISA_SCALAR);
    dot_set_free(&s);
}

/* No ISA silently falls back: every kernel table this CPU has carries an MXFP4 dot
 * and a panel kernel, and the vector ISAs their own dot (not the scalar one). */
Test(mxfp4, every_isa_has_its_kernels)
{
    const qk_table *scalar = qk_table_for(QFIT_ISA_SCALAR);
    cr_assert_not_null(scalar);
    cr_assert_not_null(scalar->dot[QFIT_TYPE_MXFP4]);
    cr_assert_eq(qk_pack_family(QFIT_TYPE_MXFP4), QK_PF_Q8);
    for (int isa = 1; isa < 4; isa++) {
        const qk_table *t = qk_table_for((qfit_isa)isa);
        if (!t) {
            (void)try_isa(isa);   /* reports a missing ISA of this architecture */
            continue;
        }
        cr_assert(t->dot[QFIT_TYPE_MXFP4] && t->dot[QFIT_TYPE_MXFP4] != scalar->dot[QFIT_TYPE_MXFP4],
                  "[%s] has no MXFP4 dot kernel of its own", qfit_isa_name((qfit_isa)isa));
        cr_assert_not_null(t->panel[QFIT_TYPE_MXFP4].run, "[%s] has no MXFP4 gemm panel kernel",
                           qfit_isa_name((qfit_isa)isa));
        cr_assert_eq(t->panel[QFIT_TYPE_MXFP4].family, QK_PF_Q8);
    }
}
