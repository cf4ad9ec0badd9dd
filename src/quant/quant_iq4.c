/* qfit — IQ4_NL and IQ4_XS: 4-bit indices into a fixed non-uniform table of
 * 16 levels, one fp16 scale per 32 values (IQ4_NL) or one fp16 super-scale
 * plus 6-bit sub-scales per 256 values (IQ4_XS).
 *
 * The quantizer follows what ggml_quantize_chunk does: per 32-value group,
 * weights w = x^2 (or, with an importance matrix, qw * sqrt(sigma^2 + x^2)), an initial scale from the
 * element of largest magnitude, then 15 trial scales (ntry = 7) keeping the
 * one with the best weighted least-squares fit. The floating-point operations
 * are done in the same order as ggml so the bytes are identical. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <string.h>

#include "quant/blocks.h"
#include "quant/quant_internal.h"

const int8_t qfit_kvalues_iq4nl[16] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

#define IQ4_NTRY 7
#define IQ4_GROUP 32
#define IQ4_EPS 1e-15f

/* Index of the table level nearest to v (levels ascending; a value exactly
 * half-way between two levels takes the upper one). */
static inline int nearest_level(float v) {
    const int8_t *t = qfit_kvalues_iq4nl;
    if (v <= t[0]) return 0;
    if (v >= t[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (v < t[mid]) hi = mid;
        else lo = mid;
    }
    return v - t[hi - 1] < t[hi] - v ? hi - 1 : hi;
}

/* round to nearest, ties to even (magic-number trick as ggml's nearest_int,
 * valid for |v| < 2^22) */
static inline int round_nearest(float v) {
    const float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* Weights of one group: x^2 without an importance matrix; with one (qw non-NULL)
 * qw * sqrt(sigma2 + x^2), sigma2 being twice the mean square of the whole
 * (super-)block. */
static void group_weights(const float *xb, const float *qw, float sigma2, float *w) {
    for (int j = 0; j < IQ4_GROUP; j++)
        w[j] = qw ? qw[j] * sqrtf(sigma2 + xb[j] * xb[j]) : xb[j] * xb[j];
}

static float block_sigma2(const float *x, int n) {
    float s = 0;
    for (int j = 0; j < n; j++) s += x[j] * x[j];
    return s * (2.f / (float)n);
}

/* Best scale for one group of 32 values under weights w; L receives the level
 * indices of the first fit (callers recompute the final ones). Returns 0 for an
 * all-~zero group. */
static float fit_group(const float *xb, const float *w, uint8_t *L) {
    const int8_t *val = qfit_kvalues_iq4nl;

    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < IQ4_GROUP; j++) {
        const float a = fabsf(xb[j]);
        if (a > amax) { amax = a; max = xb[j]; }
    }
    if (amax < IQ4_EPS) {
        memset(L, 0, IQ4_GROUP);
        return 0.0f;
    }

    float d = -max / (float)val[0];
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < IQ4_GROUP; j++) {
        const int l = nearest_level(id * xb[j]);
        L[j] = (uint8_t)l;
        const float q = (float)val[l];
        sumqx += w[j] * q * xb[j];
        sumq2 += w[j] * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
    float best = d * sumqx;
    for (int itry = -IQ4_NTRY; itry <= IQ4_NTRY; itry++) {
        id = (float)(itry + val[0]) / max;
        sumqx = sumq2 = 0;
        for (int j = 0; j < IQ4_GROUP; j++) {
            const float q = (float)val[nearest_level(id * xb[j])];
            sumqx += w[j] * q * xb[j];
            sumq2 += w[j] * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

static void pack_nibbles(const uint8_t *L, uint8_t *qs, int n) {
    for (int g = 0; g < n / 32; g++)
        for (int j = 0; j < 16; j++)
            qs[16 * g + j] = (uint8_t)(L[32 * g + j] | (L[32 * g + 16 + j] << 4));
}

/* qw: importance weights of the row's columns, or NULL */
static void iq4_nl_row(const float *x, void *vy, int64_t k, const float *qw) {
    block_iq4_nl *y = vy;
    const int64_t nb = k / QK4_NL;
    uint8_t L[QK4_NL];
    float w[IQ4_GROUP];
    for (int64_t i = 0; i < nb; i++, x += QK4_NL, qw = qw ? qw + QK4_NL : NULL) {
        group_weights(x, qw, qw ? block_sigma2(x, QK4_NL) : 0.0f, w);
        const float d = fit_group(x, w, L);
        y[i].d = qfit_fp32_to_fp16(d);
        const float id = d != 0.0f ? 1 / d : 0.0f;
        for (int j = 0; j < QK4_NL; j++) L[j] = (uint8_t)nearest_level(id * x[j]);
        pack_nibbles(L, y[i].qs, QK4_NL);
    }
}

static void iq4_xs_row(const float *x, void *vy, int64_t k, const float *qw) {
    block_iq4_xs *y = vy;
    const int64_t nb = k / QK_K;
    enum { NG = QK_K / IQ4_GROUP };
    uint8_t L[QK_K];
    float scales[NG], w[IQ4_GROUP];
    for (int64_t i = 0; i < nb; i++, x += QK_K, qw = qw ? qw + QK_K : NULL) {
        const float sigma2 = qw ? block_sigma2(x, QK_K) : 0.0f;
        /* the sub-block scale of largest magnitude, sign kept */
        float max_scale = 0, amax_scale = 0;
        for (int g = 0; g < NG; g++) {
            group_weights(x + IQ4_GROUP * g, qw ? qw + IQ4_GROUP * g : NULL, sigma2, w);
            scales[g] = fit_group(x + IQ4_GROUP * g, w, L + IQ4_GROUP * g);
            const float a = fabsf(scales[g]);
            if (a > amax_scale) { amax_scale = a; max_scale = scales[g]; }
        }
        const float d = -max_scale / 32;
        y[i].d = qfit_fp32_to_fp16(d);
        const float id = d != 0.0f ? 1 / d : 0.0f;
        uint16_t sh = 0;
        memset(y[i].scales_l, 0, sizeof y[i].scales_l);
        for (int g = 0; g < NG; g++) {
            int l = round_nearest(id * scales[g]);
            l = l < -32 ? -32 : l > 31 ? 31 : l;
            const float dl = d * (float)l;
            const float idl = dl != 0.0f ? 1 / dl : 0.0f;
            const float *xb = x + IQ4_GROUP * g;
            for (int j = 0; j < IQ4_GROUP; j++) L[IQ4_GROUP * g + j] = (uint8_t)nearest_level(idl * xb[j]);
            const unsigned u = (unsigned)(l + 32);
            y[i].scales_l[g / 2] |= (uint8_t)((u & 0xf) << (4 * (g % 2)));
            sh |= (uint16_t)((u >> 4) << (2 * g));
        }
        y[i].scales_h = sh;
        pack_nibbles(L, y[i].qs, QK_K);
    }
}

void qfit_quantize_row_iq4_nl_ref(const float *x, void *y, int64_t k) { iq4_nl_row(x, y, k, NULL); }
void qfit_quantize_row_iq4_xs_ref(const float *x, void *y, int64_t k) { iq4_xs_row(x, y, k, NULL); }
void qfit_quantize_row_iq4_nl_imatrix(const float *x, void *y, int64_t k, const float *qw) { iq4_nl_row(x, y, k, qw); }
void qfit_quantize_row_iq4_xs_imatrix(const float *x, void *y, int64_t k, const float *qw) { iq4_xs_row(x, y, k, qw); }

void qfit_dequantize_row_iq4_nl(const void *vx, float *y, int64_t k) {
    const block_iq4_nl *x = vx;
    const int64_t nb = k / QK4_NL;
    for (int64_t i = 0; i < nb; i++, y += QK4_NL) {
        const float d = qfit_fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK4_NL / 2; j++) {
            y[j]              = d * (float)qfit_kvalues_iq4nl[x[i].qs[j] & 0x0f];
            y[j + QK4_NL / 2] = d * (float)qfit_kvalues_iq4nl[x[i].qs[j] >> 4];
        }
    }
}

void qfit_dequantize_row_iq4_xs(const void *vx, float *y, int64_t k) {
    const block_iq4_xs *x = vx;
    const int64_t nb = k / QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d = qfit_fp16_to_fp32(x[i].d);
        const uint8_t *qs = x[i].qs;
        for (int g = 0; g < QK_K / 32; g++, y += 32, qs += 16) {
            const int ls = ((x[i].scales_l[g / 2] >> (4 * (g % 2))) & 0x0f) |
                           (((x[i].scales_h >> (2 * g)) & 3) << 4);
            const float dl = d * (float)(ls - 32);
            for (int j = 0; j < 16; j++) {
                y[j]      = dl * (float)qfit_kvalues_iq4nl[qs[j] & 0x0f];
                y[j + 16] = dl * (float)qfit_kvalues_iq4nl[qs[j] >> 4];
            }
        }
    }
}
