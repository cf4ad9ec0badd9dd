/* qfit — the legacy 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1).
 *
 * The quantizers reproduce ggml's reference quantizers bit for bit: the same
 * single-precision operations in the same order (no contraction into FMA),
 * and the same float -> small-integer conversions (truncation through a 32-bit
 * integer, keeping the low byte, as ggml's code does on x86-64). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#include <float.h>
#include <math.h>
#include <string.h>

#include "quant/blocks.h"
#include "quant/quant_internal.h"

/* float -> int8_t as C does it on x86-64 (cvttss2si, then the low byte),
 * defined for every input so that NaN/inf rows cannot trigger UB. */
static inline int8_t trunc_i8(float v) {
    int32_t i = INT32_MIN;                       /* x86 "integer indefinite" */
    if (v >= -2147483648.0f && v < 2147483648.0f) i = (int32_t)v;
    return (int8_t)(uint8_t)((uint32_t)i & 0xffu);
}

static inline uint8_t trunc_u8(float v) {
    int32_t i = INT32_MIN;
    if (v >= -2147483648.0f && v < 2147483648.0f) i = (int32_t)v;
    return (uint8_t)((uint32_t)i & 0xffu);
}

static inline float h2f(qfit_half h) { return qfit_fp16_to_fp32(h); }
static inline qfit_half f2h(float f) { return qfit_fp32_to_fp16(f); }

/* value of largest magnitude, sign kept (first one on ties) */
static inline float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        const float a = fabsf(x[j]);
        if (amax < a) { amax = a; max = x[j]; }
    }
    return max;
}

static inline void min_max(const float *x, int n, float *mn, float *mx) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo; *mx = hi;
}

static inline int8_t min_i8(int8_t a, int8_t b) { return a < b ? a : b; }

void qfit_quantize_row_q4_0_ref(const float *x, void *vy, int64_t k) {
    block_q4_0 *y = vy;
    const int64_t nb = k / QK4_0;
    for (int64_t i = 0; i < nb; i++, x += QK4_0) {
        const float max = signed_absmax(x, QK4_0);
        const float d = max / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const uint8_t lo = (uint8_t)min_i8(15, trunc_i8(x[j] * id + 8.5f));
            const uint8_t hi = (uint8_t)min_i8(15, trunc_i8(x[j + QK4_0 / 2] * id + 8.5f));
            y[i].qs[j] = (uint8_t)(lo | (uint8_t)(hi << 4));
        }
    }
}

void qfit_quantize_row_q4_1_ref(const float *x, void *vy, int64_t k) {
    block_q4_1 *y = vy;
    const int64_t nb = k / QK4_1;
    for (int64_t i = 0; i < nb; i++, x += QK4_1) {
        float mn, mx;
        min_max(x, QK4_1, &mn, &mx);
        const float d = (mx - mn) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        y[i].m = f2h(mn);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const uint8_t lo = (uint8_t)min_i8(15, trunc_i8((x[j] - mn) * id + 0.5f));
            const uint8_t hi = (uint8_t)min_i8(15, trunc_i8((x[j + QK4_1 / 2] - mn) * id + 0.5f));
            y[i].qs[j] = (uint8_t)(lo | (uint8_t)(hi << 4));
        }
    }
}

void qfit_quantize_row_q5_0_ref(const float *x, void *vy, int64_t k) {
    block_q5_0 *y = vy;
    const int64_t nb = k / QK5_0;
    for (int64_t i = 0; i < nb; i++, x += QK5_0) {
        const float max = signed_absmax(x, QK5_0);
        const float d = max / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const uint8_t lo = (uint8_t)min_i8(31, trunc_i8(x[j] * id + 16.5f));
            const uint8_t hi = (uint8_t)min_i8(31, trunc_i8(x[j + QK5_0 / 2] * id + 16.5f));
            y[i].qs[j] = (uint8_t)((lo & 0x0f) | ((hi & 0x0f) << 4));
            qh |= (uint32_t)((lo >> 4) & 1u) << j;
            qh |= (uint32_t)((hi >> 4) & 1u) << (j + QK5_0 / 2);
        }
        memcpy(y[i].qh, &qh, sizeof qh);
    }
}

void qfit_quantize_row_q5_1_ref(const float *x, void *vy, int64_t k) {
    block_q5_1 *y = vy;
    const int64_t nb = k / QK5_1;
    for (int64_t i = 0; i < nb; i++, x += QK5_1) {
        float mn, mx;
        min_max(x, QK5_1, &mn, &mx);
        const float d = (mx - mn) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        y[i].m = f2h(mn);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            /* no clamp here in ggml: the value is at most 31.5 */
            const uint8_t lo = trunc_u8((x[j] - mn) * id + 0.5f);
            const uint8_t hi = trunc_u8((x[j + QK5_1 / 2] - mn) * id + 0.5f);
            y[i].qs[j] = (uint8_t)((lo & 0x0f) | ((hi & 0x0f) << 4));
            qh |= (uint32_t)((lo >> 4) & 1u) << j;
            qh |= (uint32_t)((hi >> 4) & 1u) << (j + QK5_1 / 2);
        }
        memcpy(y[i].qh, &qh, sizeof qh);
    }
}

/* ---- importance-matrix paths (ggml quantize_row_q{4,5}_{0,1}_impl) ----
 * k is one whole row: the weights are qw * sqrt(sigma^2 + x^2) with sigma^2
 * the mean square of the row, and each block gets the weighted searches of the
 * K-quants (symmetric for _0, affine for _1) instead of the max-based scale. */

static float row_sigma2(const float *x, int64_t k) {
    float sumx2 = 0;
    for (int64_t j = 0; j < k; j++) sumx2 += x[j] * x[j];
    return sumx2 / (float)k;
}

static void block_weights(const float *xb, const float *qw, float sigma2, float *w) {
    for (int j = 0; j < 32; j++) w[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
}

/* 5th bits of the 32 levels in L, as the qh word of Q5_0/Q5_1 */
static uint32_t high_bits(const uint8_t *L) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qh |= (uint32_t)((L[j] >> 4) & 1u) << j;
        qh |= (uint32_t)((L[j + 16] >> 4) & 1u) << (j + 16);
    }
    return qh;
}

static void pack_low_nibbles(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((L[j] & 0x0f) | ((L[j + 16] & 0x0f) << 4));
}

void qfit_quantize_row_q4_0_imatrix(const float *x, void *vy, int64_t k, const float *qw) {
    block_q4_0 *y = vy;
    const float sigma2 = row_sigma2(x, k);
    float w[32];
    int8_t L[32];
    for (int64_t i = 0; i < k / QK4_0; i++, x += QK4_0, qw += QK4_0) {
        block_weights(x, qw, sigma2, w);
        y[i].d = f2h(qfit_kq_symmetric_scale(QK4_0, 8, x, L, w));
        pack_low_nibbles((const uint8_t *)L, y[i].qs);
    }
}

void qfit_quantize_row_q5_0_imatrix(const float *x, void *vy, int64_t k, const float *qw) {
    block_q5_0 *y = vy;
    const float sigma2 = row_sigma2(x, k);
    float w[32];
    int8_t L[32];
    for (int64_t i = 0; i < k / QK5_0; i++, x += QK5_0, qw += QK5_0) {
        block_weights(x, qw, sigma2, w);
        y[i].d = f2h(qfit_kq_symmetric_scale(QK5_0, 16, x, L, w));
        pack_low_nibbles((const uint8_t *)L, y[i].qs);
        const uint32_t qh = high_bits((const uint8_t *)L);
        memcpy(y[i].qh, &qh, sizeof qh);
    }
}

void qfit_quantize_row_q4_1_imatrix(const float *x, void *vy, int64_t k, const float *qw) {
    block_q4_1 *y = vy;
    const float sigma2 = row_sigma2(x, k);
    float w[32], neg_min;
    uint8_t L[32], Ltmp[32];
    for (int64_t i = 0; i < k / QK4_1; i++, x += QK4_1, qw += QK4_1) {
        block_weights(x, qw, sigma2, w);
        y[i].d = f2h(qfit_kq_affine_scale(QK4_1, 15, x, w, L, &neg_min, Ltmp, -0.9f, 0.05f, 36, 0));
        y[i].m = f2h(-neg_min);
        pack_low_nibbles(L, y[i].qs);
    }
}

void qfit_quantize_row_q5_1_imatrix(const float *x, void *vy, int64_t k, const float *qw) {
    block_q5_1 *y = vy;
    const float sigma2 = row_sigma2(x, k);
    float w[32], neg_min;
    uint8_t L[32], Ltmp[32];
    for (int64_t i = 0; i < k / QK5_1; i++, x += QK5_1, qw += QK5_1) {
        block_weights(x, qw, sigma2, w);
        y[i].d = f2h(qfit_kq_affine_scale(QK5_1, 31, x, w, L, &neg_min, Ltmp, -0.9f, 0.05f, 36, 0));
        y[i].m = f2h(-neg_min);
        pack_low_nibbles(L, y[i].qs);
        const uint32_t qh = high_bits(L);
        memcpy(y[i].qh, &qh, sizeof qh);
    }
}

static inline float absmax(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++) {
        const float a = fabsf(x[j]);
        amax = amax > a ? amax : a;   /* MAX(amax, a) as a macro: NaN a is dropped */
    }
    return amax;
}

void qfit_quantize_row_q8_0_ref(const float *x, void *vy, int64_t k) {
    block_q8_0 *y = vy;
    const int64_t nb = k / QK8_0;
    for (int64_t i = 0; i < nb; i++, x += QK8_0) {
        const float d = absmax(x, QK8_0) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        for (int j = 0; j < QK8_0; j++) y[i].qs[j] = trunc_i8(roundf(x[j] * id));
    }
}

void qfit_quantize_row_q8_1_ref(const float *x, void *vy, int64_t k) {
    block_q8_1 *y = vy;
    const int64_t nb = k / QK8_1;
    for (int64_t i = 0; i < nb; i++, x += QK8_1) {
        const float d = absmax(x, QK8_1) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = trunc_i8(roundf(x[j] * id));
            sum += y[i].qs[j];
        }
        y[i].s = f2h((float)sum * d);
    }
}

void qfit_dequantize_row_q4_0(const void *vx, float *y, int64_t k) {
    const block_q4_0 *x = vx;
    const int64_t nb = k / QK4_0;
    for (int64_t i = 0; i < nb; i++, y += QK4_0) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j]             = (float)((x[i].qs[j] & 0x0f) - 8) * d;
            y[j + QK4_0 / 2] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void qfit_dequantize_row_q4_1(const void *vx, float *y, int64_t k) {
    const block_q4_1 *x = vx;
    const int64_t nb = k / QK4_1;
    for (int64_t i = 0; i < nb; i++, y += QK4_1) {
        const float d = h2f(x[i].d), m = h2f(x[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const float lo = (float)(x[i].qs[j] & 0x0f) * d;
            const float hi = (float)(x[i].qs[j] >> 4) * d;
            y[j]             = lo + m;
            y[j + QK4_1 / 2] = hi + m;
        }
    }
}

void qfit_dequantize_row_q5_0(const void *vx, float *y, int64_t k) {
    const block_q5_0 *x = vx;
    const int64_t nb = k / QK5_0;
    for (int64_t i = 0; i < nb; i++, y += QK5_0) {
        const float d = h2f(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof qh);
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int lo = (int)((x[i].qs[j] & 0x0f) | (((qh >> j) & 1u) << 4)) - 16;
            const int hi = (int)((x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16;
            y[j]             = (float)lo * d;
            y[j + QK5_0 / 2] = (float)hi * d;
        }
    }
}

void qfit_dequantize_row_q5_1(const void *vx, float *y, int64_t k) {
    const block_q5_1 *x = vx;
    const int64_t nb = k / QK5_1;
    for (int64_t i = 0; i < nb; i++, y += QK5_1) {
        const float d = h2f(x[i].d), m = h2f(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof qh);
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int lo = (int)((x[i].qs[j] & 0x0f) | (((qh >> j) & 1u) << 4));
            const int hi = (int)((x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4));
            const float a = (float)lo * d;
            const float b = (float)hi * d;
            y[j]             = a + m;
            y[j + QK5_1 / 2] = b + m;
        }
    }
}

void qfit_dequantize_row_q8_0(const void *vx, float *y, int64_t k) {
    const block_q8_0 *x = vx;
    const int64_t nb = k / QK8_0;
    for (int64_t i = 0; i < nb; i++, y += QK8_0) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < QK8_0; j++) y[j] = (float)x[i].qs[j] * d;
    }
}
