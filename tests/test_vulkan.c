/* Suite `vulkan`: the Vulkan compute ops (qfit/vulkan.h) on the first Vulkan device (in CI
 * lavapipe, Mesa's CPU driver: scripts/deps.sh installs mesa-vulkan-drivers), each against
 * the scalar reference's arithmetic: the weights dequantized by qfit's reference
 * dequantizer (held to ggml's byte for byte by tests/test_quant.c), products summed in
 * double. Without a Vulkan build or device the tests skip, except under CI=true, where
 * they fail: CI must run them. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/quant.h"
#include "qfit/vulkan.h"

static qfit_vk *open_first(void)
{
    const char *ci = getenv("CI");
    const bool in_ci = ci && !strcmp(ci, "true");
    char err[256];
    if (!qfit_vk_built()) {
        if (in_ci) cr_assert_fail("CI=true: this build has no Vulkan (libvulkan-dev and glslc are in scripts/deps.sh)");
        cr_skip_test("built without Vulkan");
    }
    const int n = qfit_vk_device_count(err, sizeof err);
    if (n <= 0) {
        if (in_ci) cr_assert_fail("CI=true: no Vulkan device (%s)", n < 0 ? err : "none listed");
        cr_skip_test("no Vulkan device: %s", n < 0 ? err : "none listed");
    }
    qfit_vk *vk = qfit_vk_open(0, err, sizeof err);
    cr_assert_not_null(vk, "%s", err);
    return vk;
}

/* deterministic values in [-1, 1) */
static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f;
}

Test(vulkan, devices_enumerated)
{
    qfit_vk *vk = open_first();
    qfit_vk_device_info d;
    cr_assert_eq(qfit_vk_device_get(0, &d), 0);
    cr_log_info("vulkan device 0: %s (kind %d, subgroup %u, shared %u, storage range %llu, fp16 %d, int8 %d)", d.name,
                (int)d.kind, d.subgroup_size, d.max_shared_bytes, (unsigned long long)d.max_storage_range, d.fp16,
                d.int8);
    cr_expect_gt(strlen(d.name), 0);
    cr_expect_gt(d.subgroup_size, 0);
    cr_expect_geq(d.max_storage_range, 1u << 27, "Vulkan guarantees at least 128 MiB per binding");
    cr_expect_gt(d.mem_device_local, 0);
    cr_expect_eq(qfit_vk_device_get(-1, &d), -1);
    char err[256];
    cr_expect_eq(qfit_vk_device_get(qfit_vk_device_count(err, sizeof err), &d), -1);
    qfit_vk_close(vk);
}

Test(vulkan, buffers_round_trip)
{
    qfit_vk *vk = open_first();
    char err[256];
    const size_t n = (1 << 20) + 37;
    uint8_t *src = malloc(n), *back = malloc(n);
    cr_assert(src && back);
    uint64_t s = 1;
    for (size_t i = 0; i < n; i++) src[i] = (uint8_t)(frand(&s) * 127);
    qfit_vk_buf *b = qfit_vk_buf_new(vk, n, err, sizeof err);
    cr_assert_not_null(b, "%s", err);
    cr_expect_eq(qfit_vk_buf_size(b), n);
    cr_assert_eq(qfit_vk_upload(vk, b, 0, src, n, err, sizeof err), 0, "%s", err);
    memset(back, 0, n);
    cr_assert_eq(qfit_vk_download(vk, b, 0, back, n, err, sizeof err), 0, "%s", err);
    cr_expect_eq(memcmp(src, back, n), 0, "the bytes came back changed");
    /* an odd piece at an odd offset */
    cr_assert_eq(qfit_vk_upload(vk, b, 1001, src + 5, 333, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_vk_download(vk, b, 1001, back, 333, err, sizeof err), 0, "%s", err);
    cr_expect_eq(memcmp(src + 5, back, 333), 0);
    /* outside the buffer: refused, nothing written */
    cr_expect_eq(qfit_vk_upload(vk, b, n - 3, src, 4, err, sizeof err), -1);
    cr_expect_neq(strstr(err, "outside"), NULL, "%s", err);
    cr_expect_eq(qfit_vk_download(vk, b, SIZE_MAX, back, 1, err, sizeof err), -1);
    cr_expect_null(qfit_vk_buf_new(vk, 0, err, sizeof err));
    qfit_vk_buf_free(vk, b);
    free(src);
    free(back);
    qfit_vk_close(vk);
}

/* The weights of one case: rows x k floats quantized to type (qfit's reference
 * quantizer, as llama.cpp's), and their dequantization. With distinct > 0 only the first
 * distinct rows are quantized, and the matrix repeats them (row r is row r % distinct):
 * a matrix larger than a binding without quantizing and summing all of it on the CPU. */
typedef struct {
    int type;
    int64_t rows, k, distinct;
    size_t row_bytes;
    uint8_t *q;
    float *deq;    /* distinct (or rows) rows */
    float *mins;   /* types with a min term: each value's min part (deq = q part + mins); else NULL */
} weights;

/* The types whose values are a q part plus a min part, which the shader sums apart (d sum(q x)
 * + m sum(x)): where the fp16 min factor lies in each block (zeroing it leaves the q part). */
static const struct { int type; size_t block_bytes, min_at; } MIN_FIELDS[] = {
    { QFIT_TYPE_Q4_1, 20, 2 }, { QFIT_TYPE_Q5_1, 24, 2 }, { QFIT_TYPE_Q2_K, 84, 82 },
    { QFIT_TYPE_Q4_K, 144, 2 }, { QFIT_TYPE_Q5_K, 176, 2 },
};

static weights make_weights_tiled(int type, int64_t rows, int64_t k, int64_t distinct, uint64_t seed)
{
    weights w = { type, rows, k, distinct, qfit_row_size(type, k), NULL, NULL, NULL };
    cr_assert_gt(w.row_bytes, 0);
    const int64_t nq = distinct > 0 ? distinct : rows;
    float *f = malloc(sizeof(float) * (size_t)(nq * k));
    w.q = malloc(w.row_bytes * (size_t)rows);
    w.deq = malloc(sizeof(float) * (size_t)(nq * k));
    cr_assert(f && w.q && w.deq);
    uint64_t s = seed;
    for (int64_t i = 0; i < nq * k; i++) f[i] = frand(&s) * (1.0f + (float)(i % 7));
    char err[256];
    cr_assert_eq(qfit_quantize_rows(type, f, w.q, nq, k, err, sizeof err), w.row_bytes * (size_t)nq, "%s", err);
    for (int64_t r = nq; r < rows; r++)
        memcpy(w.q + (size_t)r * w.row_bytes, w.q + (size_t)(r % nq) * w.row_bytes, w.row_bytes);
    cr_assert_eq(qfit_rows_to_float(type, w.q, w.deq, nq, k), 0);
    for (size_t t = 0; t < sizeof MIN_FIELDS / sizeof MIN_FIELDS[0]; t++) {
        if (MIN_FIELDS[t].type != type) continue;
        /* the same blocks with the min factor zeroed: the q parts */
        const size_t bytes = w.row_bytes * (size_t)nq, bb = MIN_FIELDS[t].block_bytes, at = MIN_FIELDS[t].min_at;
        cr_assert_eq(qfit_type_get_traits(type)->type_size, bb);
        uint8_t *nomin = malloc(bytes);
        w.mins = malloc(sizeof(float) * (size_t)(nq * k));
        cr_assert(nomin && w.mins);
        memcpy(nomin, w.q, bytes);
        for (size_t b = 0; b < bytes; b += bb) nomin[b + at] = nomin[b + at + 1] = 0;
        cr_assert_eq(qfit_rows_to_float(type, nomin, w.mins, nq, k), 0);
        for (int64_t i = 0; i < nq * k; i++) w.mins[i] = w.deq[i] - w.mins[i];
        free(nomin);
    }
    free(f);
    return w;
}

static weights make_weights(int type, int64_t rows, int64_t k, uint64_t seed)
{
    return make_weights_tiled(type, rows, k, 0, seed);
}

static void free_weights(weights *w)
{
    free(w->q);
    free(w->deq);
    free(w->mins);
}

/* GPU matmul of w (placed at byte offset w_off of its buffer) with n activation rows,
 * against the reference: |y - ref| <= bound per output, where bound is a float32 summation
 * bound for the shader's order: each of a row's 8 threads sums k/8 products one after
 * another (a quantized block: 32 products, then times its scale), and a 3-level tree adds
 * the threads' sums; each step rounds once (2^-24 relative), so
 *   |error| <= (k/8 + 32 + 3 + 2) * 2^-24 * sum_i |w_i x_i|,
 * where for the types with a min (Q4_1, Q5_1: d q + m; Q2_K, Q4_K, Q5_K: d sc q - dmin m)
 * |w_i| counts its two parts, which the shader sums apart (they can cancel in w_i). The
 * other steps fit in the 32 + 3 + 2: a block's (or a 16-value half's) sum of at most 32
 * products, its scale factors (d sc, the same float32 product the reference dequantizer
 * forms), at most two more adds joining the halves and the min part, and the reference's
 * own rounding of each dequantized value.
 * A wrong nibble order, a scale read from the wrong bytes or a block skipped moves an
 * output by a good part of sum |w_i x_i| / sqrt(k), thousands of times the bound. */
static void check_matmul(qfit_vk *vk, const weights *w, size_t w_off, int n, int64_t ldx, int64_t ldy)
{
    char err[256];
    qfit_vk_buf *wb = qfit_vk_buf_new(vk, w_off + w->row_bytes * (size_t)w->rows, err, sizeof err);
    cr_assert_not_null(wb, "%s", err);
    cr_assert_eq(qfit_vk_upload(vk, wb, w_off, w->q, w->row_bytes * (size_t)w->rows, err, sizeof err), 0, "%s", err);
    float *x = calloc((size_t)(n * ldx), sizeof *x), *y = calloc((size_t)(n * ldy), sizeof *y);
    cr_assert(x && y);
    uint64_t s = 99;
    for (int64_t i = 0; i < n * ldx; i++) x[i] = frand(&s);
    qfit_vk_buf *xb = qfit_vk_buf_new(vk, sizeof(float) * (size_t)(n * ldx), err, sizeof err);
    qfit_vk_buf *yb = qfit_vk_buf_new(vk, sizeof(float) * (size_t)(n * ldy), err, sizeof err);
    cr_assert(xb && yb, "%s", err);
    cr_assert_eq(qfit_vk_upload(vk, xb, 0, x, sizeof(float) * (size_t)(n * ldx), err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_vk_matmul(vk, w->type, wb, w_off, w->rows, w->k, xb, ldx, yb, ldy, n, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(qfit_vk_download(vk, yb, 0, y, sizeof(float) * (size_t)(n * ldy), err, sizeof err), 0, "%s", err);
    const double unit = ldexp(1.0, -24) * (double)(w->k / 8 + 32 + 3 + 2);
    double worst = 0;
    int bad = 0;
    for (int j = 0; j < n; j++)
        for (int64_t r = 0; r < w->rows; r++) {
            double ref = 0, mag = 0;
            const int64_t rr = w->distinct > 0 ? r % w->distinct : r;
            for (int64_t i = 0; i < w->k; i++) {
                const double p = (double)w->deq[rr * w->k + i] * (double)x[j * ldx + i];
                ref += p;
                if (w->mins) {
                    const double m = w->mins[rr * w->k + i];
                    mag += (fabs((double)w->deq[rr * w->k + i] - m) + fabs(m)) * fabs((double)x[j * ldx + i]);
                } else {
                    mag += fabs(p);
                }
            }
            const double d = fabs((double)y[j * ldy + r] - ref);
            if (mag > 0 && d / mag > worst) worst = d / mag;
            if (d > unit * mag + 1e-30 && bad++ < 5)
                cr_expect_leq(d, unit * mag, "%s %lldx%lld, row %lld of activation %d: gpu %.9g, reference %.9g",
                              qfit_type_name(w->type), (long long)w->rows, (long long)w->k, (long long)r, j,
                              (double)y[j * ldy + r], ref);
        }
    cr_log_info("vulkan matmul %s %lldx%lld x %d: worst error %.3g of sum|w x| (bound %.3g)", qfit_type_name(w->type),
                (long long)w->rows, (long long)w->k, n, worst, unit);
    cr_expect_eq(bad, 0, "%s: %d outputs beyond the bound", qfit_type_name(w->type), bad);
    qfit_vk_buf_free(vk, wb);
    qfit_vk_buf_free(vk, xb);
    qfit_vk_buf_free(vk, yb);
    free(x);
    free(y);
}

Test(vulkan, matmul_matches_reference, .timeout = 300)
{
    qfit_vk *vk = open_first();
    const int types[] = { QFIT_TYPE_F32,  QFIT_TYPE_F16,  QFIT_TYPE_BF16, QFIT_TYPE_Q8_0,   QFIT_TYPE_Q4_0,
                          QFIT_TYPE_Q4_1, QFIT_TYPE_Q5_0, QFIT_TYPE_Q5_1, QFIT_TYPE_Q2_K,   QFIT_TYPE_Q3_K,
                          QFIT_TYPE_Q4_K, QFIT_TYPE_Q5_K, QFIT_TYPE_Q6_K, QFIT_TYPE_IQ4_NL, QFIT_TYPE_IQ4_XS };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        cr_assert(qfit_vk_matmul_type_ok(types[t]));
        /* one activation row (decode) and several (prefill: a workgroup takes 8), strided; 67 and 129 rows (not
         * multiples of the 8 a workgroup takes), k of one and of 16 super-blocks (8 and 128
         * blocks of 32); weights at an offset that is no multiple of the device's binding
         * alignment (a row, 4 bytes or a block in: 18, 20, 22, 84 or 110 bytes leave the rows
         * off a 4-byte boundary, 2 a 16-bit value in the middle of a word) */
        weights a = make_weights(types[t], 67, 256, 11 + t);
        check_matmul(vk, &a, 0, 1, 256, 67);
        check_matmul(vk, &a, 0, 19, 256, 67);   /* three groups of 8 activation rows, the last of 3 */
        const int64_t bs = qfit_type_get_traits(types[t])->block_size;
        check_matmul(vk, &a, types[t] == QFIT_TYPE_F32 ? 4 : qfit_row_size(types[t], bs), 3, 260, 70);
        weights b = make_weights(types[t], 129, 4096, 31 + t);
        check_matmul(vk, &b, b.row_bytes, 2, 4096, 129);
        free_weights(&a);
        free_weights(&b);
    }
    qfit_vk_close(vk);
}

/* A matrix larger than one binding of the device covers (lavapipe: 128 MiB) goes in several
 * dispatches, each binding its own range of rows; every output row is checked. F32, and
 * Q3_K with rows of 15 super-blocks (1650 bytes, 2 mod 4) placed 110 bytes in: every
 * dispatch after the first starts inside a 4-byte word, off the binding alignment (its 64
 * distinct rows repeated: the matrix is not quantized whole). */
Test(vulkan, matmul_splits_large_matrices, .timeout = 600)
{
    qfit_vk *vk = open_first();
    qfit_vk_device_info d;
    cr_assert_eq(qfit_vk_device_get(0, &d), 0);
    const int64_t k = 4096, rows = (int64_t)(d.max_storage_range / ((size_t)k * 4)) + 300;
    if ((uint64_t)rows * (uint64_t)k * 4 > (1ull << 30))
        cr_skip_test("this device binds %llu bytes at once: a larger matrix would take over 1 GiB",
                     (unsigned long long)d.max_storage_range);
    weights w = make_weights(QFIT_TYPE_F32, rows, k, 5);
    check_matmul(vk, &w, 0, 1, k, rows);
    free_weights(&w);
    const int64_t k3 = 15 * 256, rows3 = (int64_t)(d.max_storage_range / qfit_row_size(QFIT_TYPE_Q3_K, k3)) + 300;
    weights q = make_weights_tiled(QFIT_TYPE_Q3_K, rows3, k3, 64, 6);
    cr_assert_eq(q.row_bytes % 4, 2);
    check_matmul(vk, &q, 110, 1, k3, rows3);
    free_weights(&q);
    qfit_vk_close(vk);
}

Test(vulkan, matmul_refuses_bad_arguments)
{
    qfit_vk *vk = open_first();
    char err[256];
    qfit_vk_buf *w = qfit_vk_buf_new(vk, 4096, err, sizeof err), *x = qfit_vk_buf_new(vk, 1024, err, sizeof err),
                *y = qfit_vk_buf_new(vk, 1024, err, sizeof err);
    cr_assert(w && x && y, "%s", err);
    cr_expect(!qfit_vk_matmul_type_ok(QFIT_TYPE_IQ2_XXS));
    cr_expect_eq(qfit_vk_matmul(vk, QFIT_TYPE_IQ2_XXS, w, 0, 1, 256, x, 256, y, 1, 1, err, sizeof err), -1);
    cr_expect_neq(strstr(err, "no kernel for iq2_xxs"), NULL, "%s", err);
    /* 4 rows of 256 f32 are 4096 bytes: one more row, or an offset, is outside */
    cr_expect_eq(qfit_vk_matmul(vk, QFIT_TYPE_F32, w, 0, 4, 256, x, 256, y, 4, 1, err, sizeof err), 0, "%s", err);
    cr_expect_eq(qfit_vk_matmul(vk, QFIT_TYPE_F32, w, 0, 5, 256, x, 256, y, 5, 1, err, sizeof err), -1);
    cr_expect_neq(strstr(err, "outside"), NULL, "%s", err);
    cr_expect_eq(qfit_vk_matmul(vk, QFIT_TYPE_F32, w, 4, 4, 256, x, 256, y, 4, 1, err, sizeof err), -1);
    /* F32 rows off a 4-byte boundary; activations past their buffer; ldx below k */
    cr_expect_eq(qfit_vk_matmul(vk, QFIT_TYPE_F32, w, 2, 1, 256, x, 256, y, 1, 1, err, sizeof err), -1);
    cr_expect_eq(qfit_vk_matmul(vk, QFIT_TYPE_F32, w, 0, 1, 256, x, 256, y, 1, 2, err, sizeof err), -1);
    cr_expect_eq(qfit_vk_matmul(vk, QFIT_TYPE_F32, w, 0, 1, 256, x, 128, y, 1, 1, err, sizeof err), -1);
    /* quantized rows at an odd byte (their fp16 fields would straddle words): refused */
    cr_expect_eq(qfit_vk_matmul(vk, QFIT_TYPE_Q4_0, w, 1, 1, 256, x, 256, y, 1, 1, err, sizeof err), -1);
    cr_expect_neq(strstr(err, "invalid matmul"), NULL, "%s", err);
    cr_expect_eq(qfit_vk_matmul(vk, QFIT_TYPE_Q4_0, w, 2, 1, 256, x, 256, y, 1, 1, err, sizeof err), 0, "%s", err);
    /* a row length that is not whole blocks */
    cr_expect_eq(qfit_vk_matmul(vk, QFIT_TYPE_Q8_0, w, 0, 1, 100, x, 100, y, 1, 1, err, sizeof err), -1);
    qfit_vk_close(vk);   /* frees the buffers too */
}

/* ------------------------------------------------------- row and element ops */

static qfit_vk_buf *upload_floats(qfit_vk *vk, const float *v, size_t n)
{
    char err[256];
    qfit_vk_buf *b = qfit_vk_buf_new(vk, n * sizeof(float), err, sizeof err);
    cr_assert_not_null(b, "%s", err);
    cr_assert_eq(qfit_vk_upload(vk, b, 0, v, n * sizeof(float), err, sizeof err), 0, "%s", err);
    return b;
}

static void download_floats(qfit_vk *vk, const qfit_vk_buf *b, float *v, size_t n)
{
    char err[256];
    cr_assert_eq(qfit_vk_download(vk, b, 0, v, n * sizeof(float), err, sizeof err), 0, "%s", err);
}

/* RMS norm against the reference's (double sums, as src/model/backend_ref.c). Bound: the
 * shader's float32 sum of squares (k/64 terms a thread, a 6-level tree) is within
 * (k/64 + 6)u of the true sum, the mean, eps, sqrt and division add 4 roundings (sqrt and
 * division: 1 ulp each in Vulkan), the two products 2: |y - ref| <= ((k/64 + 6)/2 + 8) *
 * 2^-23 * |ref| (the square root halves the sum's relative error). A missing eps (here
 * 1e-2, with rows of mean square 0.3), a mean over the wrong count, or the weight not
 * applied move outputs by percent. */
Test(vulkan, rms_norm_matches_reference)
{
    qfit_vk *vk = open_first();
    char err[256];
    const int64_t k = 1000, ldx = 1003, ldy = 1010;
    const int n = 5;
    const float eps = 1e-2f;
    float *x = calloc((size_t)(n * ldx), sizeof *x), *w = malloc(sizeof(float) * (size_t)k),
          *y = calloc((size_t)(n * ldy), sizeof *y);
    cr_assert(x && w && y);
    uint64_t s = 3;
    for (int64_t i = 0; i < n * ldx; i++) x[i] = frand(&s);
    for (int64_t i = 0; i < k; i++) w[i] = 0.5f + frand(&s);
    qfit_vk_buf *xb = upload_floats(vk, x, (size_t)(n * ldx)), *wb = upload_floats(vk, w, (size_t)k),
                *yb = upload_floats(vk, y, (size_t)(n * ldy));
    cr_assert_eq(qfit_vk_rms_norm(vk, xb, ldx, wb, yb, ldy, k, n, eps, err, sizeof err), 0, "%s", err);
    download_floats(vk, yb, y, (size_t)(n * ldy));
    const double bound = ((double)(k / 64 + 6) / 2 + 8) * ldexp(1.0, -23);
    double worst = 0;
    for (int j = 0; j < n; j++) {
        double ss = 0;
        for (int64_t i = 0; i < k; i++) ss += (double)x[j * ldx + i] * x[j * ldx + i];
        const double sc = 1.0 / sqrt(ss / (double)k + (double)eps);
        for (int64_t i = 0; i < k; i++) {
            const double ref = (double)x[j * ldx + i] * sc * (double)w[i], d = fabs(y[j * ldy + i] - ref);
            if (fabs(ref) > 0) worst = fmax(worst, d / fabs(ref));
            if (d > bound * fabs(ref) + 1e-30) {
                cr_assert_fail("row %d element %lld: gpu %.9g, reference %.9g", j, (long long)i, (double)y[j * ldy + i], ref);
            }
        }
        cr_expect_eq(y[j * ldy + k], 0.0f, "row %d: written past its k elements", j);
    }
    cr_log_info("vulkan rms_norm: worst relative error %.3g (bound %.3g)", worst, bound);
    free(x); free(w); free(y);
    qfit_vk_close(vk);
}

/* ------------------------------------------------- rounding a product's input */

static float bits_f(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static uint32_t f_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }

/* one row of k floats rounded as the CPU rounds it: qfit's reference quantizer, then its
 * dequantizer (Q8_1's values are Q8_0's: ggml has no Q8_1 dequantizer) */
static void round_ref(int type, const float *x, float *y, int64_t k)
{
    const int t = type == QFIT_TYPE_Q8_1 ? QFIT_TYPE_Q8_0 : type;
    uint8_t *q = malloc(qfit_row_size(t, k));
    cr_assert_not_null(q);
    cr_assert_eq(qfit_quantize_row_ref(t, x, q, k), 0);
    cr_assert_eq(qfit_dequantize_row(t, q, y, k), 0);
    free(q);
}

/* qfit_vk_round_rows against round_ref on n rows of k values (several blocks each) with
 * edge cases in row 0: an all-zero block, blocks whose largest |x| is negative, values at
 * exactly .5 after scaling (a block of largest |x| 127: scale 1, so 2.5 -> 3 under C's
 * roundf for Q8_0, 2 under Q8_K's round-half-even), F16/BF16 ties, overflow, subnormals,
 * NaN, infinities and -0.
 * Every value must be bit-identical to the CPU's (the shader divides in integers,
 * correctly rounded as C does; Vulkan's OpFDiv may be 2.5 ulp off, and lavapipe's 1 / x
 * is: a scale an ulp off moves every value of its block). Values past k of each output
 * row stay as they were. */
static void check_round(qfit_vk *vk, int type, int64_t k)
{
    char err[256];
    const int n = 3;
    const int64_t ldx = k + 12, ldy = k + 20;
    float *x = calloc((size_t)(n * ldx), sizeof *x), *y = malloc(sizeof(float) * (size_t)(n * ldy)),
          *ref = malloc(sizeof(float) * (size_t)k);
    cr_assert(x && y && ref);
    uint64_t s = 11 + (uint64_t)type;
    for (int64_t i = 0; i < n * ldx; i++) x[i] = frand(&s) * (i % 97 == 0 ? 40.0f : 3.0f);
    const bool fl = type == QFIT_TYPE_F16 || type == QFIT_TYPE_BF16;
    const int64_t bs = type == QFIT_TYPE_Q8_K ? 256 : fl ? 64 : 32;   /* F16/BF16: a stretch of 64 */
    cr_assert(k >= 4 * bs);
    memset(x, 0, sizeof(float) * (size_t)bs);                         /* block 0: all zero */
    for (int64_t i = 0; i < bs; i++) x[bs + i] = -frand(&s) * 0.5f;   /* block 1 */
    x[bs + 5] = -2.0f;                                                /* its largest |x|: negative */
    float *h = x + 2 * bs;                                            /* block 2: scale 1 */
    for (int64_t i = 0; i < bs; i++) h[i] = (float)((i % 9) - 4) + 0.5f;   /* -3.5 .. 4.5 */
    h[3] = type == QFIT_TYPE_Q8_K ? -127.0f : 127.0f;   /* Q8_K: the signed max -127 gives inv = 1 */
    if (fl) {
        const float ties[] = { 1.0f + 0x1p-11f, 1.0f + 0x3p-11f, 1.0f + 0x1p-8f, 1.0f + 0x3p-8f, 65519.0f, 65520.0f,
                               0x1p-25f, 0x3p-25f, 0x1p-20f, -0.0f, INFINITY, -INFINITY, NAN, 1e30f, -1e-30f,
                               0x1.fffffep127f, 0x1.ffcp-15f, 6.1e-5f };
        for (size_t i = 0; i < sizeof ties / sizeof ties[0]; i++) h[i] = ties[i];
        h[30] = bits_f(0x7f800001u);   /* a signalling NaN: quiet, payload kept (BF16) */
        h[31] = bits_f(0xff812345u);
    }
    float *b3 = x + 3 * bs;   /* block 3: tiny values (scales far below 1) */
    for (int64_t i = 0; i < bs; i++) b3[i] *= 1e-6f;
    for (int64_t i = 0; i < n * ldy; i++) y[i] = 7.0f;
    qfit_vk_buf *xb = upload_floats(vk, x, (size_t)(n * ldx)), *yb = upload_floats(vk, y, (size_t)(n * ldy));
    cr_assert_eq(qfit_vk_round_rows(vk, type, xb, ldx, yb, ldy, k, n, err, sizeof err), 0, "%s", err);
    download_floats(vk, yb, y, (size_t)(n * ldy));
    for (int j = 0; j < n; j++) {
        round_ref(type, x + j * ldx, ref, k);
        for (int64_t i = 0; i < k; i++) {
            const float g = y[j * ldy + i], r = ref[i];
            cr_assert_eq(f_bits(g), f_bits(r), "%s row %d value %lld (x %a): gpu %a (0x%08x), CPU %a (0x%08x)",
                         qfit_type_name(type), j, (long long)i, (double)x[j * ldx + i], (double)g, f_bits(g),
                         (double)r, f_bits(r));
        }
        cr_assert_eq(f_bits(y[j * ldy + k]), f_bits(7.0f), "%s row %d: written past its k values", qfit_type_name(type), j);
    }
    free(x); free(y); free(ref);
}

Test(vulkan, round_rows_matches_reference)
{
    qfit_vk *vk = open_first();
    check_round(vk, QFIT_TYPE_Q8_0, 1024);
    check_round(vk, QFIT_TYPE_Q8_1, 1024);
    check_round(vk, QFIT_TYPE_Q8_K, 1024);
    check_round(vk, QFIT_TYPE_F16, 1000);
    check_round(vk, QFIT_TYPE_BF16, 1000);
    /* refused: a type that is no vec-dot type, k not a multiple of the block, in place */
    char err[256];
    float z[512] = { 0 };
    qfit_vk_buf *b = upload_floats(vk, z, 512), *c = upload_floats(vk, z, 512);
    cr_expect_neq(qfit_vk_round_rows(vk, QFIT_TYPE_Q4_0, b, 256, c, 256, 256, 1, err, sizeof err), 0);
    cr_expect_neq(qfit_vk_round_rows(vk, QFIT_TYPE_Q8_K, b, 288, c, 288, 288, 1, err, sizeof err), 0);
    cr_expect_neq(qfit_vk_round_rows(vk, QFIT_TYPE_Q8_0, b, 256, b, 256, 256, 1, err, sizeof err), 0);
    cr_expect_neq(qfit_vk_round_rows(vk, QFIT_TYPE_Q8_0, b, 256, c, 256, 256, 3, err, sizeof err), 0);   /* past x */
    qfit_vk_close(vk);
}

/* SwiGLU and add against double. SwiGLU's bound: Vulkan gives exp within 3 + 2|x| ulp and
 * division within 2.5 ulp; with the add and the products: (3 + 2|g| + 6) * 2^-23 * |ref|
 * (and 2^-149 for results that underflow). Add: one float32 rounding, the same as C's, so
 * the outputs equal the host's float sums bit for bit. */
Test(vulkan, swiglu_and_add_match_reference)
{
    qfit_vk *vk = open_first();
    char err[256];
    const int64_t n = 70001;   /* more than one row of groups' worth of odd tails */
    float *g = malloc(sizeof(float) * (size_t)n), *u = malloc(sizeof(float) * (size_t)n), *o = malloc(sizeof(float) * (size_t)n);
    cr_assert(g && u && o);
    uint64_t s = 8;
    for (int64_t i = 0; i < n; i++) { g[i] = 12.0f * frand(&s); u[i] = 2.0f * frand(&s); }
    qfit_vk_buf *gb = upload_floats(vk, g, (size_t)n), *ub = upload_floats(vk, u, (size_t)n);
    cr_assert_eq(qfit_vk_swiglu(vk, gb, ub, n, err, sizeof err), 0, "%s", err);
    download_floats(vk, gb, o, (size_t)n);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        const double ref = (double)g[i] / (1.0 + exp(-(double)g[i])) * (double)u[i], d = fabs(o[i] - ref);
        const double bound = (3 + 2 * fabs(g[i]) + 6) * ldexp(1.0, -23) * fabs(ref) + ldexp(1.0, -149);
        if (fabs(ref) > 0) worst = fmax(worst, d / fabs(ref));
        if (d > bound) cr_assert_fail("swiglu %lld: g %g u %g: gpu %.9g, reference %.9g", (long long)i, g[i], u[i], o[i], ref);
    }
    cr_log_info("vulkan swiglu: worst relative error %.3g", worst);
    /* add: gb now holds the SwiGLU outputs o */
    cr_assert_eq(qfit_vk_add(vk, gb, ub, n, err, sizeof err), 0, "%s", err);
    float *sum = malloc(sizeof(float) * (size_t)n);
    cr_assert_not_null(sum);
    download_floats(vk, gb, sum, (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        const float want = o[i] + u[i];
        if (memcmp(&sum[i], &want, sizeof want) != 0) cr_assert_fail("add %lld: gpu %.9g, host %.9g", (long long)i, sum[i], want);
    }
    cr_expect_eq(qfit_vk_add(vk, gb, ub, n + 1, err, sizeof err), -1, "past the buffers");
    cr_expect_eq(qfit_vk_swiglu(vk, gb, ub, 0, err, sizeof err), -1);
    free(g); free(u); free(o); free(sum);
    qfit_vk_close(vk);
}

/* ------------------------------------------------------------ RoPE, the cache, attention */

/* the token table of qfit/vulkan.h: (position, sequence) per token */
static qfit_vk_buf *upload_tokens(qfit_vk *vk, const int *pos, const int *seq, int n)
{
    char err[256];
    uint32_t tab[64];
    cr_assert_leq(n, 32);
    for (int j = 0; j < n; j++) {
        tab[2 * j] = (uint32_t)pos[j];
        tab[2 * j + 1] = (uint32_t)(seq ? seq[j] : 0);
    }
    qfit_vk_buf *b = qfit_vk_buf_new(vk, (size_t)n * 8, err, sizeof err);
    cr_assert_not_null(b, "%s", err);
    cr_assert_eq(qfit_vk_upload(vk, b, 0, tab, (size_t)n * 8, err, sizeof err), 0, "%s", err);
    return b;
}

/* RoPE against double with the same table values: each output is one product, a second
 * product and a sum in float32 (or a fused multiply-add), within 3 * 2^-24 times the sum of
 * its two products' magnitudes (|x0 c| + |x1 s|, |x0 s| + |x1 c|).
 * Dimensions past n_rot and the gaps between rows stay as they were, bit for bit. A swapped
 * pair layout, a wrong position or a sign error moves outputs by whole units. Each token's
 * position comes from the token table (not in order here); one past the table makes that
 * token's rotated pairs NaN. */
static void check_rope(qfit_vk *vk, bool neox, int n_rot)
{
    char err[256];
    const int n = 5, n_head = 3, hd = 64, n_pos = 16, half = n_rot / 2;
    const int pos[5] = { 9, 7, 15, 8, 0 };
    const int64_t ld = n_head * hd + 5;
    float *x = malloc(sizeof(float) * (size_t)(n * ld)), *y = malloc(sizeof(float) * (size_t)(n * ld));
    float *tab = malloc(sizeof(float) * (size_t)(2 * n_pos * half));
    cr_assert(x && y && tab);
    uint64_t s = 21;
    for (int64_t i = 0; i < n * ld; i++) x[i] = 3.0f * frand(&s);
    for (int p = 0; p < n_pos; p++)
        for (int i = 0; i < half; i++) {
            const double th = p * pow(10000.0, -2.0 * i / n_rot);
            tab[p * half + i] = (float)cos(th);
            tab[n_pos * half + p * half + i] = (float)sin(th);
        }
    qfit_vk_buf *xb = upload_floats(vk, x, (size_t)(n * ld)), *tb = upload_floats(vk, tab, (size_t)(2 * n_pos * half));
    qfit_vk_buf *pb = upload_tokens(vk, pos, NULL, n);
    cr_assert_eq(qfit_vk_rope(vk, xb, ld, n, n_head, hd, n_rot, neox, pb, tb, n_pos, err, sizeof err), 0, "%s", err);
    download_floats(vk, xb, y, (size_t)(n * ld));
    for (int j = 0; j < n; j++) {
        for (int h = 0; h < n_head; h++) {
            const float *xr = x + j * ld + h * hd, *yr = y + j * ld + h * hd;
            for (int i = 0; i < half; i++) {
                const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
                const double c = tab[pos[j] * half + i], sn = tab[n_pos * half + pos[j] * half + i];
                const double ra = xr[a] * c - xr[b] * sn, rb = xr[a] * sn + xr[b] * c;
                const double ba = 3 * ldexp(1.0, -24) * (fabs(xr[a] * c) + fabs(xr[b] * sn));
                const double bound = 3 * ldexp(1.0, -24) * (fabs(xr[a] * sn) + fabs(xr[b] * c));
                if (fabs(yr[a] - ra) > ba || fabs(yr[b] - rb) > bound)
                    cr_assert_fail("rope %s n_rot %d: token %d head %d pair %d: gpu (%.9g, %.9g), reference (%.9g, "
                                   "%.9g), bound %.3g", neox ? "neox" : "normal", n_rot, j, h, i, yr[a], yr[b], ra, rb,
                                   bound);
            }
            cr_assert_eq(memcmp(xr + n_rot, yr + n_rot, sizeof(float) * (size_t)(hd - n_rot)), 0,
                         "dimensions past n_rot changed");
        }
        cr_assert_eq(memcmp(x + j * ld + n_head * hd, y + j * ld + n_head * hd, sizeof(float) * 5), 0, "row gap changed");
    }
    const int past[5] = { 9, 7, n_pos, 8, 0 };
    qfit_vk_buf *qb = upload_tokens(vk, past, NULL, n);
    cr_assert_eq(qfit_vk_rope(vk, xb, ld, n, n_head, hd, n_rot, neox, qb, tb, n_pos, err, sizeof err), 0, "%s", err);
    download_floats(vk, xb, y, (size_t)(n * ld));
    cr_expect(isnan(y[2 * ld]) && !isnan(y[3 * ld]), "a position past the table: token 2 %g, token 3 %g", y[2 * ld],
              y[3 * ld]);
    cr_expect_eq(qfit_vk_rope(vk, xb, ld, n + 1, n_head, hd, n_rot, neox, pb, tb, n_pos, err, sizeof err), -1,
                 "a token table shorter than the tokens");
    qfit_vk_buf_free(vk, xb);
    qfit_vk_buf_free(vk, tb);
    qfit_vk_buf_free(vk, pb);
    qfit_vk_buf_free(vk, qb);
    free(x); free(y); free(tab);
}

Test(vulkan, rope_matches_reference)
{
    qfit_vk *vk = open_first();
    check_rope(vk, false, 64);
    check_rope(vk, true, 64);
    check_rope(vk, true, 32);   /* a partial rotation */
    qfit_vk_close(vk);
}

/* The cache parts of the tests: n_seq sequences of KV_HEADS heads of KV_CTX positions, in
 * the layout of qfit/vulkan.h (head runs padded to 4 bytes, as the backend pads them). */
enum { KV_CTX = 40, KV_HEADS = 2, KV_SEQ = 2 };

static qfit_vk_kv_part kv_part(int type, bool rot, int hd, int64_t base, int n_pos)
{
    const int64_t hs = ((int64_t)n_pos * (int64_t)qfit_vk_kv_row_bytes(type, hd) + 3) & ~(int64_t)3;
    return (qfit_vk_kv_part){ type, rot, base, hs, hs * KV_HEADS, n_pos, KV_SEQ };
}

static uint8_t *kv_row(uint8_t *cache, const qfit_vk_kv_part *P, int hd, int s, int h, int p)
{
    return cache + P->base + s * P->seq_stride + h * P->head_stride + (size_t)p * qfit_vk_kv_row_bytes(P->type, hd);
}

/* y = x times H/8 per 64-value chunk, summed in float32 in the order kv.comp sums (k = 0..63,
 * +-x exact): the same bits as the device's */
static void hadamard_f32(const float *x, float *y, int n)
{
    for (int c = 0; c < n; c += 64)
        for (int i = 0; i < 64; i++) {
            float acc = 0.0f;
            for (int k = 0; k < 64; k++) acc += (__builtin_popcount((unsigned)(i & k)) & 1) ? -x[c + k] : x[c + k];
            y[c + i] = acc * 0.125f;
        }
}

/* one row of the host reference: F16 values, or the CPU's reference quantizer's blocks of x
 * (rotated first when rot) */
static void store_ref(int type, bool rot, const float *x, uint8_t *dst, int hd)
{
    float r[256];
    if (rot) hadamard_f32(x, r, hd);
    else memcpy(r, x, sizeof(float) * (size_t)hd);
    if (type == QFIT_TYPE_F16)
        for (int d = 0; d < hd; d++) {
            const uint16_t h = qfit_fp32_to_fp16(r[d]);
            memcpy(dst + 2 * d, &h, 2);
        }
    else
        cr_assert_eq(qfit_quantize_row_ref(type, r, dst, hd), 0);
}

/* kv_store of one part: tokens of two sequences at the positions of the table (adjacent
 * positions too: with heads of 32, q8_0 and q4_0 rows share 32-bit words with their
 * neighbours, which the device must not disturb), against the CPU's rows (store_ref).
 * F16: each value within one f16 ulp of round-to-nearest (packHalf2x16 leaves the rounding
 * to the device). Block types: every block's scale within one f16 ulp of the reference's
 * and every quant within 1 of it, and at most 1% of the quants off by one (a device whose
 * division rounds differently may flip a value sitting on a rounding boundary; a truncating
 * or otherwise wrong quantizer flips about half). Every other byte of the buffer keeps its
 * value; a token at a position past the part is not stored. */
static void check_kv_store(qfit_vk *vk, int type, bool rot, int hd)
{
    char err[256];
    enum { N = 5 };
    const int pos[N] = { 3, 4, 3, 9, KV_CTX - 1 }, seq[N] = { 1, 1, 0, 1, 0 };
    const int64_t ld = KV_HEADS * hd + 2;
    const qfit_vk_kv_part first = kv_part(type, rot, hd, 0, KV_CTX);
    const qfit_vk_kv_part P = kv_part(type, rot, hd, first.seq_stride * KV_SEQ, KV_CTX);   /* a second part */
    const size_t bytes = (size_t)(P.base + P.seq_stride * KV_SEQ) + 8;
    const size_t rb = qfit_vk_kv_row_bytes(type, hd);
    float *src = malloc(sizeof(float) * (size_t)(N * ld));
    uint8_t *cache = malloc(bytes), *want = malloc(bytes);
    cr_assert(src && cache && want);
    uint64_t s = 4;
    for (int64_t i = 0; i < N * ld; i++) src[i] = 5.0f * frand(&s);
    memset(cache, 0xa5, bytes);
    memcpy(want, cache, bytes);
    for (int j = 0; j < N; j++)
        for (int h = 0; h < KV_HEADS; h++) store_ref(type, rot, src + j * ld + h * hd, kv_row(want, &P, hd, seq[j], h, pos[j]), hd);
    qfit_vk_buf *sb = upload_floats(vk, src, (size_t)(N * ld)), *tb = upload_tokens(vk, pos, seq, N);
    qfit_vk_buf *cb = qfit_vk_buf_new(vk, bytes, err, sizeof err);
    cr_assert_not_null(cb, "%s", err);
    cr_assert_eq(qfit_vk_upload(vk, cb, 0, cache, bytes, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_vk_kv_store(vk, sb, ld, N, KV_HEADS, hd, tb, cb, &P, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_vk_download(vk, cb, 0, cache, bytes, err, sizeof err), 0, "%s", err);
    bool *in_row = calloc(bytes, 1);
    cr_assert_not_null(in_row);
    int flips = 0, quants = 0;
    for (int j = 0; j < N; j++)
        for (int h = 0; h < KV_HEADS; h++) {
            const size_t o = (size_t)(kv_row(cache, &P, hd, seq[j], h, pos[j]) - cache);
            for (size_t i = 0; i < rb; i++) in_row[o + i] = true;
            const uint8_t *g = cache + o, *w = want + o;
            if (type == QFIT_TYPE_F16) {
                for (int d = 0; d < hd; d++) {
                    uint16_t a, b;
                    memcpy(&a, g + 2 * d, 2);
                    memcpy(&b, w + 2 * d, 2);
                    cr_assert(abs((int)a - (int)b) <= 1 && (a ^ b) < 0x8000, "token %d head %d dim %d: %04x, round "
                              "to nearest %04x", j, h, d, a, b);
                }
                continue;
            }
            const size_t bb = type == QFIT_TYPE_Q8_0 ? 34 : 18;
            for (int blk = 0; blk < hd / 32; blk++) {
                const uint8_t *gb = g + blk * bb, *wb = w + blk * bb;
                uint16_t a, b;
                memcpy(&a, gb, 2);
                memcpy(&b, wb, 2);
                cr_assert(abs((int)a - (int)b) <= 1 && (a ^ b) < 0x8000, "%s token %d head %d block %d: scale %04x, "
                          "reference %04x", qfit_type_name(type), j, h, blk, a, b);
                for (int i = 0; i < 32; i++) {
                    int qa, qb;
                    if (type == QFIT_TYPE_Q8_0) {
                        qa = (int8_t)gb[2 + i];
                        qb = (int8_t)wb[2 + i];
                    } else {
                        qa = i < 16 ? gb[2 + i] & 15 : gb[2 + i - 16] >> 4;
                        qb = i < 16 ? wb[2 + i] & 15 : wb[2 + i - 16] >> 4;
                    }
                    cr_assert(abs(qa - qb) <= 1, "%s token %d head %d value %d: %d, reference %d", qfit_type_name(type),
                              j, h, blk * 32 + i, qa, qb);
                    flips += qa != qb;
                    quants++;
                }
            }
        }
    for (size_t i = 0; i < bytes; i++)
        if (!in_row[i] && cache[i] != 0xa5) cr_assert_fail("byte %zu outside the rows stored changed", i);
    if (quants) {
        cr_log_info("kv_store %s%s, heads of %d: %d of %d quants off by one", qfit_type_name(type), rot ? " rotated" : "",
                    hd, flips, quants);
        cr_expect_leq(flips * 100, quants, "%s: %d of %d quants differ from the CPU's", qfit_type_name(type), flips,
                      quants);
    }
    /* a position past the part: not stored */
    const int past[N] = { 3, 4, 3, 9, KV_CTX }, sq0[N] = { 0, 0, 0, 0, 0 };
    qfit_vk_buf *pb = upload_tokens(vk, past, sq0, N);
    memset(cache, 0xa5, bytes);
    cr_assert_eq(qfit_vk_upload(vk, cb, 0, cache, bytes, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_vk_kv_store(vk, sb, ld, N, KV_HEADS, hd, pb, cb, &P, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_vk_download(vk, cb, 0, want, bytes, err, sizeof err), 0, "%s", err);
    memset(in_row, 0, bytes);
    for (int j = 0; j < N - 1; j++)
        for (int h = 0; h < KV_HEADS; h++) {
            const size_t o = (size_t)(kv_row(want, &P, hd, sq0[j], h, past[j]) - want);
            for (size_t i = 0; i < rb; i++) in_row[o + i] = true;
        }
    for (size_t i = 0; i < bytes; i++)
        if (!in_row[i] && want[i] != 0xa5) cr_assert_fail("byte %zu changed: a position past the part was stored", i);
    qfit_vk_kv_part bad = P;
    bad.base += 12;   /* the last sequence's last head ends past the buffer */
    cr_expect_eq(qfit_vk_kv_store(vk, sb, ld, N, KV_HEADS, hd, tb, cb, &bad, err, sizeof err), -1, "a part past the buffer");
    bad = P;
    bad.type = QFIT_TYPE_Q5_0;
    cr_expect_eq(qfit_vk_kv_store(vk, sb, ld, N, KV_HEADS, hd, tb, cb, &bad, err, sizeof err), -1, "a q5_0 part");
    qfit_vk_buf_free(vk, sb);
    qfit_vk_buf_free(vk, tb);
    qfit_vk_buf_free(vk, cb);
    qfit_vk_buf_free(vk, pb);
    free(src); free(cache); free(want); free(in_row);
}

Test(vulkan, kv_store_writes_its_positions)
{
    qfit_vk *vk = open_first();
    check_kv_store(vk, QFIT_TYPE_F16, false, 64);
    check_kv_store(vk, QFIT_TYPE_Q8_0, false, 64);
    check_kv_store(vk, QFIT_TYPE_Q8_0, true, 64);
    check_kv_store(vk, QFIT_TYPE_Q4_0, false, 64);
    check_kv_store(vk, QFIT_TYPE_Q4_0, true, 128);
    check_kv_store(vk, QFIT_TYPE_Q8_0, false, 32);   /* rows of 34 bytes: words shared with neighbours */
    check_kv_store(vk, QFIT_TYPE_Q4_0, false, 32);   /* rows of 18 */
    qfit_vk_close(vk);
}

/* Attention against double over the same cache. The reference reads the cache's values as
 * the device does (dequantized, in the stored, possibly rotated space) and meets keys of a
 * block type with the query rotated (in float32, the device's order: the same bits) and
 * rounded to q8_0 by the CPU's reference quantizer, which is the device's arithmetic
 * (exact division and f16 rounding). Bound per output, from float32: a score's error is
 * within E = (head_dim + 2) 2^-24 scale sum_d |q_d k_d|; exp adds (3 + 2 |s - max|) ulp, so
 * each weight is within eps_w = 2E + (3 + 2R) 2^-23 (R the scores' range) of its value
 * relative to the others; the weighted sum (P positions, one after another, with a
 * rescaling per chunk of 64) and the division then give |o - ref| <= (2 eps_w + (P + 10)
 * 2^-24) max_p |v_p| = b; a rotated V's output, a signed sum of 64 of those over 8, is within
 * 8 b + 66 2^-24 8 max|v|. A token that sees one position too many or too few, or another
 * sequence's, a query head on the wrong KV head, no scale, a query not rounded as the keys
 * want or a rotation left out move outputs by far more. */
static void check_attention(qfit_vk *vk, int ctx, int tk, bool rk, int tv, bool rv, const int *pos, const int *seq, int n)
{
    char err[256];
    const int n_head = 4, hd = 64;
    const int64_t ldq = n_head * hd + 3, ldo = n_head * hd + 1;
    const qfit_vk_kv_part K = kv_part(tk, rk, hd, 0, ctx);
    const qfit_vk_kv_part V = kv_part(tv, rv, hd, K.seq_stride * KV_SEQ, ctx);
    const size_t bytes = (size_t)(V.base + V.seq_stride * KV_SEQ);
    const float scale = 0.125f;
    uint8_t *cache = calloc(bytes, 1);
    float *q = malloc(sizeof(float) * (size_t)(n * ldq)), *o = calloc((size_t)(n * ldo), sizeof(float));
    cr_assert(cache && q && o);
    uint64_t s = 77;
    float row[64];
    for (int sq = 0; sq < KV_SEQ; sq++)
        for (int h = 0; h < KV_HEADS; h++)
            for (int p = 0; p < ctx; p++) {
                for (int d = 0; d < hd; d++) row[d] = 2.0f * frand(&s);
                store_ref(tk, rk, row, kv_row(cache, &K, hd, sq, h, p), hd);
                for (int d = 0; d < hd; d++) row[d] = frand(&s) + (float)((p + 2 * sq) % 5);
                store_ref(tv, rv, row, kv_row(cache, &V, hd, sq, h, p), hd);
            }
    for (int64_t i = 0; i < n * ldq; i++) q[i] = 2.0f * frand(&s);
    qfit_vk_buf *qb = upload_floats(vk, q, (size_t)(n * ldq)), *ob = upload_floats(vk, o, (size_t)(n * ldo));
    qfit_vk_buf *tb = upload_tokens(vk, pos, seq, n);
    qfit_vk_buf *cb = qfit_vk_buf_new(vk, bytes, err, sizeof err);
    cr_assert_not_null(cb, "%s", err);
    cr_assert_eq(qfit_vk_upload(vk, cb, 0, cache, bytes, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_vk_attention(vk, qb, ldq, n, n_head, KV_HEADS, hd, tb, cb, &K, &V, scale, ob, ldo, err, sizeof err),
                 0, "%s", err);
    download_floats(vk, ob, o, (size_t)(n * ldo));
    double worst = 0;
    for (int j = 0; j < n; j++)
        for (int h = 0; h < n_head; h++) {
            const int hk = h / (n_head / KV_HEADS), P = pos[j] + 1, sq = seq[j];
            float qr[64], kr[64], vr[64];
            memcpy(qr, q + j * ldq + h * hd, sizeof qr);
            if (tk != QFIT_TYPE_F16) {
                uint8_t blk[2 * 34];
                if (rk) {
                    float t[64];
                    hadamard_f32(qr, t, hd);
                    memcpy(qr, t, sizeof t);
                }
                cr_assert_eq(qfit_quantize_row_ref(QFIT_TYPE_Q8_0, qr, blk, hd), 0);
                cr_assert_eq(qfit_rows_to_float(QFIT_TYPE_Q8_0, blk, qr, 1, hd), 0);
            }
            double sc[512], mx = -INFINITY, mn = INFINITY, E = 0;
            for (int p = 0; p < P; p++) {
                double dot = 0, mag = 0;
                cr_assert_eq(qfit_rows_to_float(tk, kv_row(cache, &K, hd, sq, hk, p), kr, 1, hd), 0);
                for (int d = 0; d < hd; d++) {
                    dot += (double)qr[d] * kr[d];
                    mag += fabs((double)qr[d] * kr[d]);
                }
                sc[p] = scale * dot;
                mx = fmax(mx, sc[p]);
                mn = fmin(mn, sc[p]);
                E = fmax(E, (hd + 2) * ldexp(1.0, -24) * scale * mag);
            }
            const double eps_w = 2 * E + (3 + 2 * (mx - mn)) * ldexp(1.0, -23);
            double sum = 0, vmax = 0, ref[64] = { 0 };
            for (int p = 0; p < P; p++) {
                const double w = exp(sc[p] - mx);
                sum += w;
                cr_assert_eq(qfit_rows_to_float(tv, kv_row(cache, &V, hd, sq, hk, p), vr, 1, hd), 0);
                for (int d = 0; d < hd; d++) {
                    ref[d] += w * vr[d];
                    vmax = fmax(vmax, fabs(vr[d]));
                }
            }
            for (int d = 0; d < hd; d++) ref[d] /= sum;
            double b = (2 * eps_w + (P + 10) * ldexp(1.0, -24)) * vmax;
            if (rv) {   /* back from the rotated space, in double */
                double t[64];
                for (int i = 0; i < 64; i++) {
                    t[i] = 0;
                    for (int k = 0; k < 64; k++) t[i] += (__builtin_popcount((unsigned)(i & k)) & 1) ? -ref[k] : ref[k];
                }
                for (int i = 0; i < 64; i++) ref[i] = t[i] / 8;
                b = 8 * b + 66 * ldexp(1.0, -24) * 8 * vmax;
            }
            for (int d = 0; d < hd; d++) {
                const double got = o[j * ldo + h * hd + d];
                worst = fmax(worst, fabs(got - ref[d]) / vmax);
                if (!(fabs(got - ref[d]) <= b))
                    cr_assert_fail("K %s%s V %s%s: token %d (sequence %d, position %d) head %d dim %d: gpu %.9g, "
                                   "reference %.9g (bound %.3g)", qfit_type_name(tk), rk ? " rotated" : "",
                                   qfit_type_name(tv), rv ? " rotated" : "", j, sq, pos[j], h, d, got, ref[d], b);
            }
        }
    cr_log_info("vulkan attention K %s%s V %s%s, %d positions: worst error %.3g of max |v|", qfit_type_name(tk),
                rk ? " rotated" : "", qfit_type_name(tv), rv ? " rotated" : "", ctx, worst);
    cr_expect_eq(qfit_vk_attention(vk, qb, ldq, n, 3, KV_HEADS, hd, tb, cb, &K, &V, scale, ob, ldo, err, sizeof err), -1,
                 "query heads not a multiple of KV heads");
    qfit_vk_kv_part bad = V;
    bad.n_pos = ctx - 1;
    cr_expect_eq(qfit_vk_attention(vk, qb, ldq, n, n_head, KV_HEADS, hd, tb, cb, &K, &bad, scale, ob, ldo, err,
                                   sizeof err), -1, "K and V parts of different shapes");
    qfit_vk_buf_free(vk, qb);
    qfit_vk_buf_free(vk, ob);
    qfit_vk_buf_free(vk, cb);
    qfit_vk_buf_free(vk, tb);
    free(cache); free(q); free(o);
}

/* within one chunk of 64 positions, and across several (the rescaling between chunks); two
 * sequences, tokens of both in one call at positions out of order; every cache type, K and
 * V apart, rotated and not. A token at a position past the cache gets NaN. */
Test(vulkan, attention_matches_reference, .timeout = 300)
{
    qfit_vk *vk = open_first();
    const int pos1[4] = { 27, 28, 5, 39 }, seq1[4] = { 0, 0, 1, 1 };
    const int pos2[3] = { 150, 199, 64 }, seq2[3] = { 1, 0, 1 };
    const int F = QFIT_TYPE_F16, Q8 = QFIT_TYPE_Q8_0, Q4 = QFIT_TYPE_Q4_0;
    check_attention(vk, KV_CTX, F, false, F, false, pos1, seq1, 4);
    check_attention(vk, 200, F, false, F, false, pos2, seq2, 3);
    check_attention(vk, KV_CTX, Q8, false, Q8, false, pos1, seq1, 4);
    check_attention(vk, 200, Q8, true, Q8, true, pos2, seq2, 3);
    check_attention(vk, KV_CTX, Q4, false, Q4, false, pos1, seq1, 4);
    check_attention(vk, KV_CTX, Q4, true, Q4, true, pos1, seq1, 4);
    check_attention(vk, KV_CTX, Q8, true, F, false, pos1, seq1, 4);
    check_attention(vk, KV_CTX, F, false, Q4, true, pos1, seq1, 4);
    /* NaN for a token past the cache, the others as they are */
    char err[256];
    const int hd = 64, n_head = 4, pos[2] = { 3, KV_CTX }, seq[2] = { 0, 0 };
    const qfit_vk_kv_part K = kv_part(F, false, hd, 0, KV_CTX), V = kv_part(F, false, hd, K.seq_stride * KV_SEQ, KV_CTX);
    qfit_vk_buf *cb = qfit_vk_buf_new(vk, (size_t)(V.base + V.seq_stride * KV_SEQ), err, sizeof err);
    float qv[2 * 4 * 64] = { 0 }, ov[2 * 4 * 64];
    qfit_vk_buf *qb = upload_floats(vk, qv, 2 * 4 * 64), *ob = upload_floats(vk, qv, 2 * 4 * 64);
    qfit_vk_buf *tb = upload_tokens(vk, pos, seq, 2);
    cr_assert_not_null(cb, "%s", err);
    cr_assert_eq(qfit_vk_attention(vk, qb, n_head * hd, 2, n_head, KV_HEADS, hd, tb, cb, &K, &V, 0.125f, ob, n_head * hd,
                                   err, sizeof err), 0, "%s", err);
    download_floats(vk, ob, ov, 2 * 4 * 64);
    cr_expect(!isnan(ov[0]) && isnan(ov[4 * 64]), "token 0 %g, token 1 (past the cache) %g", ov[0], ov[4 * 64]);
    qfit_vk_close(vk);
}

/* A batch (one command buffer, barriers between the ops) gives what the same ops give one
 * submission each, bit for bit: each op reads what the one before it wrote. Uploads and
 * downloads inside a batch are refused, and batches do not nest. (lavapipe runs a command
 * buffer's dispatches one after another, so a missing barrier would not show here: the
 * validation layers' synchronization checks are the tool for that, on a real GPU.) */
Test(vulkan, batch_equals_ops_one_by_one)
{
    qfit_vk *vk = open_first();
    char err[256];
    const int64_t k = 256, rows = 96;
    const int n = 3;
    weights w = make_weights(QFIT_TYPE_Q8_0, rows, k, 17);
    float *x = malloc(sizeof(float) * (size_t)(n * k)), *nw = malloc(sizeof(float) * (size_t)k);
    float *out[2];
    cr_assert(x && nw);
    uint64_t s = 5;
    for (int64_t i = 0; i < n * k; i++) x[i] = frand(&s);
    for (int64_t i = 0; i < k; i++) nw[i] = 1.0f + 0.5f * frand(&s);
    qfit_vk_buf *wb = qfit_vk_buf_new(vk, w.row_bytes * (size_t)rows, err, sizeof err);
    cr_assert_not_null(wb, "%s", err);
    cr_assert_eq(qfit_vk_upload(vk, wb, 0, w.q, w.row_bytes * (size_t)rows, err, sizeof err), 0, "%s", err);
    qfit_vk_buf *nb = upload_floats(vk, nw, (size_t)k);
    for (int pass = 0; pass < 2; pass++) {
        qfit_vk_buf *xb = upload_floats(vk, x, (size_t)(n * k));
        qfit_vk_buf *yb = qfit_vk_buf_new(vk, sizeof(float) * (size_t)(n * k), err, sizeof err);
        qfit_vk_buf *zb = qfit_vk_buf_new(vk, sizeof(float) * (size_t)(n * rows), err, sizeof err);
        cr_assert(yb && zb, "%s", err);
        if (pass) cr_assert_eq(qfit_vk_batch_begin(vk, err, sizeof err), 0, "%s", err);
        /* y = norm(x); y += x; y = silu(y) * x; z = W y; z copied over y's first rows */
        cr_assert_eq(qfit_vk_rms_norm(vk, xb, k, nb, yb, k, k, n, 1e-5f, err, sizeof err), 0, "%s", err);
        cr_assert_eq(qfit_vk_add(vk, yb, xb, n * k, err, sizeof err), 0, "%s", err);
        cr_assert_eq(qfit_vk_swiglu(vk, yb, xb, n * k, err, sizeof err), 0, "%s", err);
        cr_assert_eq(qfit_vk_matmul(vk, QFIT_TYPE_Q8_0, wb, 0, rows, k, yb, k, zb, rows, n, err, sizeof err), 0, "%s",
                     err);
        cr_assert_eq(qfit_vk_copy(vk, yb, 0, zb, 0, sizeof(float) * (size_t)(n * rows), err, sizeof err), 0, "%s", err);
        if (pass) {
            cr_expect_eq(qfit_vk_download(vk, yb, 0, x, 4, err, sizeof err), -1, "a download inside a batch");
            cr_expect_neq(strstr(err, "inside a batch"), NULL, "%s", err);
            cr_expect_eq(qfit_vk_upload(vk, yb, 0, x, 4, err, sizeof err), -1, "an upload inside a batch");
            cr_expect_eq(qfit_vk_batch_begin(vk, err, sizeof err), -1, "a batch inside a batch");
            cr_assert_eq(qfit_vk_batch_end(vk, err, sizeof err), 0, "%s", err);
        }
        out[pass] = malloc(sizeof(float) * (size_t)(n * k));
        cr_assert_not_null(out[pass]);
        download_floats(vk, yb, out[pass], (size_t)(n * k));
        qfit_vk_buf_free(vk, xb);
        qfit_vk_buf_free(vk, yb);
        qfit_vk_buf_free(vk, zb);
    }
    cr_expect_eq(memcmp(out[0], out[1], sizeof(float) * (size_t)(n * k)), 0, "the batch's results differ");
    cr_expect_eq(qfit_vk_batch_end(vk, err, sizeof err), -1, "no batch is open");
    free(out[0]); free(out[1]); free(x); free(nw); free_weights(&w);
    qfit_vk_close(vk);
}

/* ------------------------------------------------- the device-feature paths */

/* The matrix product's output for w times n activation rows (x from a fixed seed), w at
 * byte w_off of its buffer: a malloc'd array of n * rows floats. */
static float *matmul_out(qfit_vk *vk, const weights *w, size_t w_off, int n)
{
    char err[256];
    const size_t nx = (size_t)(n * w->k), ny = (size_t)(n * w->rows);
    qfit_vk_buf *wb = qfit_vk_buf_new(vk, w_off + w->row_bytes * (size_t)w->rows, err, sizeof err);
    cr_assert_not_null(wb, "%s", err);
    cr_assert_eq(qfit_vk_upload(vk, wb, w_off, w->q, w->row_bytes * (size_t)w->rows, err, sizeof err), 0, "%s", err);
    float *x = malloc(sizeof(float) * nx), *y = malloc(sizeof(float) * ny);
    cr_assert(x && y);
    uint64_t s = 4242;
    for (size_t i = 0; i < nx; i++) x[i] = frand(&s);
    qfit_vk_buf *xb = upload_floats(vk, x, nx), *yb = qfit_vk_buf_new(vk, sizeof(float) * ny, err, sizeof err);
    cr_assert_not_null(yb, "%s", err);
    cr_assert_eq(qfit_vk_matmul(vk, w->type, wb, w_off, w->rows, w->k, xb, w->k, yb, w->rows, n, err, sizeof err), 0,
                 "%s", err);
    download_floats(vk, yb, y, ny);
    qfit_vk_buf_free(vk, wb);
    qfit_vk_buf_free(vk, xb);
    qfit_vk_buf_free(vk, yb);
    free(x);
    return y;
}

/* Attention over a cache of K and V types tk/tv (random rows stored by the reference
 * quantizer), tokens at positions 0..89 of two sequences (two chunks of 64 each): a
 * malloc'd array of the outputs. */
static float *attention_out(qfit_vk *vk, int tk, int tv, int *count)
{
    enum { CTX = 90, N = 6, HEADS = 4, HD = 64 };
    char err[256];
    const qfit_vk_kv_part K = kv_part(tk, tk != QFIT_TYPE_F16, HD, 0, CTX);
    const qfit_vk_kv_part V = kv_part(tv, false, HD, K.seq_stride * KV_SEQ, CTX);
    const size_t bytes = (size_t)(V.base + V.seq_stride * KV_SEQ);
    uint8_t *cache = calloc(bytes, 1);
    float q[N * HEADS * HD], row[HD];
    cr_assert_not_null(cache);
    uint64_t s = 31;
    for (int sq = 0; sq < KV_SEQ; sq++)
        for (int h = 0; h < KV_HEADS; h++)
            for (int p = 0; p < CTX; p++) {
                for (int d = 0; d < HD; d++) row[d] = 2.0f * frand(&s);
                store_ref(tk, K.rotated, row, kv_row(cache, &K, HD, sq, h, p), HD);
                for (int d = 0; d < HD; d++) row[d] = frand(&s);
                store_ref(tv, false, row, kv_row(cache, &V, HD, sq, h, p), HD);
            }
    for (int i = 0; i < N * HEADS * HD; i++) q[i] = 2.0f * frand(&s);
    const int pos[N] = { 0, 63, 64, 89, 7, 70 }, seq[N] = { 0, 0, 0, 0, 1, 1 };
    float *o = calloc(N * HEADS * HD, sizeof *o);
    cr_assert_not_null(o);
    qfit_vk_buf *qb = upload_floats(vk, q, N * HEADS * HD), *ob = upload_floats(vk, o, N * HEADS * HD);
    qfit_vk_buf *tb = upload_tokens(vk, pos, seq, N), *cb = qfit_vk_buf_new(vk, bytes, err, sizeof err);
    cr_assert_not_null(cb, "%s", err);
    cr_assert_eq(qfit_vk_upload(vk, cb, 0, cache, bytes, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_vk_attention(vk, qb, HEADS * HD, N, HEADS, KV_HEADS, HD, tb, cb, &K, &V, 0.125f, ob, HEADS * HD,
                                   err, sizeof err), 0, "%s", err);
    download_floats(vk, ob, o, N * HEADS * HD);
    qfit_vk_buf_free(vk, qb);
    qfit_vk_buf_free(vk, ob);
    qfit_vk_buf_free(vk, tb);
    qfit_vk_buf_free(vk, cb);
    free(cache);
    *count = N * HEADS * HD;
    return o;
}

/* Each build the device can take (QFIT_VK_FEAT_*: subgroup reductions, 8/16-bit loads, both,
 * neither) gives the same bits as the plain one, for every weight type of the matrix
 * product (one activation row and eleven: two groups of 8; rows at an odd block offset) and for attention
 * over f16, q8_0 (rotated) and q4_0 caches: the builds change how values are loaded and
 * how partial sums meet, never the arithmetic or its order (the butterfly pairs lanes as
 * the tree does; a maximum is exact in any order). The rest of this suite runs the builds
 * the device offers (lavapipe: all); this one checks the paths a smaller device takes.
 * A wrong byte or half read, a butterfly that pairs other lanes, or a subgroup maximum over
 * the wrong lanes changes the bits. Under CI=true the device must offer both features
 * (lavapipe does): otherwise these paths would go untested. */
Test(vulkan, feature_paths_agree_bitwise, .timeout = 300)
{
    qfit_vk *vk0 = open_first();
    qfit_vk_close(vk0);
    qfit_vk_device_info d;
    cr_assert_eq(qfit_vk_device_get(0, &d), 0);
    const char *ci = getenv("CI");
    if (ci && !strcmp(ci, "true"))
        cr_assert_eq(d.features, QFIT_VK_FEAT_ALL, "CI=true: %s offers only paths %#x; these tests need all", d.name,
                     d.features);
    const int types[] = { QFIT_TYPE_F32,  QFIT_TYPE_F16,  QFIT_TYPE_BF16, QFIT_TYPE_Q8_0,   QFIT_TYPE_Q4_0,
                          QFIT_TYPE_Q4_1, QFIT_TYPE_Q5_0, QFIT_TYPE_Q5_1, QFIT_TYPE_Q2_K,   QFIT_TYPE_Q3_K,
                          QFIT_TYPE_Q4_K, QFIT_TYPE_Q5_K, QFIT_TYPE_Q6_K, QFIT_TYPE_IQ4_NL, QFIT_TYPE_IQ4_XS };
    enum { NT = sizeof types / sizeof types[0] };
    const int kv[3][2] = { { QFIT_TYPE_F16, QFIT_TYPE_F16 }, { QFIT_TYPE_Q8_0, QFIT_TYPE_Q4_0 }, { QFIT_TYPE_Q4_0, QFIT_TYPE_Q8_0 } };
    float *base[NT][2] = { { NULL } }, *base_att[3] = { NULL };
    int n_att = 0, tried = 0;
    for (unsigned f = 0; f <= (QFIT_VK_FEAT_SUBGROUP | QFIT_VK_FEAT_STORAGE); f++) {   /* the shader builds */
        if (f & ~d.features) continue;
        char err[256], names[64];
        qfit_vk *vk = qfit_vk_open_features(0, f, err, sizeof err);
        cr_assert_not_null(vk, "paths %s: %s", qfit_vk_feature_names(f, names, sizeof names), err);
        cr_assert_eq(qfit_vk_features(vk), f);
        tried++;
        for (int t = 0; t < NT; t++) {
            const int64_t bs = qfit_type_get_traits(types[t])->block_size;
            weights w = make_weights(types[t], 67, 512, 300 + (uint64_t)t);
            float *y[2] = { matmul_out(vk, &w, 0, 1),
                            matmul_out(vk, &w, types[t] == QFIT_TYPE_F32 ? 4 : qfit_row_size(types[t], bs), 11) };
            for (int i = 0; i < 2; i++) {
                const size_t ny = (size_t)(i ? 11 : 1) * 67;
                if (!base[t][i]) {
                    base[t][i] = y[i];
                    continue;
                }
                size_t diff = 0;
                for (size_t e = 0; e < ny; e++) diff += memcmp(&y[i][e], &base[t][i][e], sizeof(float)) != 0;
                cr_expect_eq(diff, 0, "%s (%s): %zu of %zu outputs differ from the plain build's", qfit_type_name(types[t]),
                             qfit_vk_feature_names(f, names, sizeof names), diff, ny);
                free(y[i]);
            }
            free_weights(&w);
        }
        for (int a = 0; a < 3; a++) {
            float *o = attention_out(vk, kv[a][0], kv[a][1], &n_att);
            if (!base_att[a]) {
                base_att[a] = o;
                continue;
            }
            cr_expect_eq(memcmp(o, base_att[a], sizeof(float) * (size_t)n_att), 0, "attention K %s V %s (%s) differs",
                         qfit_type_name(kv[a][0]), qfit_type_name(kv[a][1]), qfit_vk_feature_names(f, names, sizeof names));
            free(o);
        }
        qfit_vk_close(vk);
    }
    cr_log_info("vulkan feature paths: %d builds of %s agree bit for bit", tried, d.name);
    for (int t = 0; t < NT; t++) free(base[t][0]), free(base[t][1]);
    for (int a = 0; a < 3; a++) free(base_att[a]);
}

/* QFIT_VK_FEATURES' words, and their names back */
Test(vulkan, feature_names_parse)
{
    unsigned m = 99;
    char err[128], b[64];
    cr_expect_eq(qfit_vk_parse_features("all", &m, err, sizeof err), 0);
    cr_expect_eq(m, QFIT_VK_FEAT_ALL);
    cr_expect_eq(qfit_vk_parse_features("none", &m, err, sizeof err), 0);
    cr_expect_eq(m, 0);
    cr_expect_eq(qfit_vk_parse_features("storage,subgroup", &m, err, sizeof err), 0);
    cr_expect_eq(m, QFIT_VK_FEAT_SUBGROUP | QFIT_VK_FEAT_STORAGE);
    cr_expect_eq(qfit_vk_parse_features("subgroup", &m, err, sizeof err), 0);
    cr_expect_eq(m, QFIT_VK_FEAT_SUBGROUP);
    cr_expect_eq(qfit_vk_parse_features("subgroups", &m, err, sizeof err), -1);
    cr_expect_neq(strstr(err, "'subgroups'"), NULL, "%s", err);
    cr_expect_eq(qfit_vk_parse_features("storage,", &m, err, sizeof err), 0, "a trailing comma adds nothing");
    cr_expect_eq(qfit_vk_parse_features("fp16", &m, err, sizeof err), -1);
    cr_expect_str_eq(qfit_vk_feature_names(0, b, sizeof b), "none");
    cr_expect_str_eq(qfit_vk_feature_names(QFIT_VK_FEAT_ALL, b, sizeof b), "subgroup,storage,import");
    cr_expect_str_eq(qfit_vk_feature_names(QFIT_VK_FEAT_SUBGROUP | QFIT_VK_FEAT_STORAGE, b, sizeof b), "subgroup,storage");
    cr_expect_eq(qfit_vk_parse_features("import", &m, err, sizeof err), 0);
    cr_expect_eq(m, QFIT_VK_FEAT_IMPORT);
    cr_expect_str_eq(qfit_vk_feature_names(QFIT_VK_FEAT_STORAGE, b, sizeof b), "storage");
}
