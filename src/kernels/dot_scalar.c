/* Scalar reference kernels: integer dot products per block, scaled in the
 * same floating-point order as ggml's generic (non-SIMD) implementations. */
#include <string.h>
#include "kernels/kernels_internal.h"
#include "quant/quant_internal.h"

#define H2F(h) qfit_fp16_to_fp32(h)

/* ---------------- plain float types ---------------- */

static void dot_f32(int64_t n, float *s, const void *w, const void *a)
{
    const float *x = w, *y = a;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * y[i]);
    *s = (float)sum;
}

static void dot_f16(int64_t n, float *s, const void *w, const void *a)
{
    const uint16_t *x = w, *y = a;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(H2F(x[i]) * H2F(y[i]));
    *s = (float)sum;
}

static void dot_bf16(int64_t n, float *s, const void *w, const void *a)
{
    const uint16_t *x = w, *y = a;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(qfit_bf16_to_fp32(x[i]) * qfit_bf16_to_fp32(y[i]));
    *s = (float)sum;
}

/* ---------------- 32-element legacy formats ---------------- */

static void dot_q4_0(int64_t n, float *s, const void *w, const void *a)
{
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK8_0;
    float sumf = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        int lo = 0, hi = 0;
        for (int j = 0; j < 16; j++) {
            lo += ((x[b].qs[j] & 0x0F) - 8) * y[b].qs[j];
            hi += ((x[b].qs[j] >> 4) - 8) * y[b].qs[j + 16];
        }
        sumf += (float)(lo + hi) * H2F(x[b].d) * H2F(y[b].d);
    }
    *s = sumf;
}

static void dot_q4_1(int64_t n, float *s, const void *w, const void *a)
{
    const block_q4_1 *x = w;
    const block_q8_1 *y = a;
    const int64_t nb = n / QK8_1;
    float sumf = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        int lo = 0, hi = 0;
        for (int j = 0; j < 16; j++) {
            lo += (x[b].qs[j] & 0x0F) * y[b].qs[j];
            hi += (x[b].qs[j] >> 4) * y[b].qs[j + 16];
        }
        sumf += (H2F(x[b].d) * H2F(y[b].d)) * (float)(lo + hi) + H2F(x[b].m) * H2F(y[b].s);
    }
    *s = sumf;
}

static void dot_q5_0(int64_t n, float *s, const void *w, const void *a)
{
    const block_q5_0 *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK8_0;
    float sumf = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        uint32_t qh;
        memcpy(&qh, x[b].qh, 4);
        int lo = 0, hi = 0;
        for (int j = 0; j < 16; j++) {
            int v0 = (int)((x[b].qs[j] & 0x0F) | (((qh >> j) & 1u) << 4)) - 16;
            int v1 = (int)((x[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16;
            lo += v0 * y[b].qs[j];
            hi += v1 * y[b].qs[j + 16];
        }
        sumf += (H2F(x[b].d) * H2F(y[b].d)) * (float)(lo + hi);
    }
    *s = sumf;
}

static void dot_q5_1(int64_t n, float *s, const void *w, const void *a)
{
    const block_q5_1 *x = w;
    const block_q8_1 *y = a;
    const int64_t nb = n / QK8_1;
    float sumf = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        uint32_t qh;
        memcpy(&qh, x[b].qh, 4);
        int lo = 0, hi = 0;
        for (int j = 0; j < 16; j++) {
            int v0 = (int)((x[b].qs[j] & 0x0F) | (((qh >> j) & 1u) << 4));
            int v1 = (int)((x[b].qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4));
            lo += v0 * y[b].qs[j];
            hi += v1 * y[b].qs[j + 16];
        }
        sumf += (H2F(x[b].d) * H2F(y[b].d)) * (float)(lo + hi) + H2F(x[b].m) * H2F(y[b].s);
    }
    *s = sumf;
}

static void dot_q8_0(int64_t n, float *s, const void *w, const void *a)
{
    const block_q8_0 *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK8_0;
    float sumf = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += x[b].qs[j] * y[b].qs[j];
        sumf += (float)sum * (H2F(x[b].d) * H2F(y[b].d));
    }
    *s = sumf;
}

static void dot_iq4_nl(int64_t n, float *s, const void *w, const void *a)
{
    const block_iq4_nl *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK4_NL;
    float sumf = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const float d = H2F(y[b].d) * H2F(x[b].d);
        int lo = 0, hi = 0;
        for (int j = 0; j < 16; j++) {
            lo += y[b].qs[j] * qfit_kvalues_iq4nl[x[b].qs[j] & 0x0F];
            hi += y[b].qs[j + 16] * qfit_kvalues_iq4nl[x[b].qs[j] >> 4];
        }
        sumf += d * (float)(lo + hi);
    }
    *s = sumf;
}

/* MXFP4 against Q8_0: as IQ4_NL with the doubled E2M1 table, the scale being
 * the Q8_0 scale times the E8M0 one (a power of two: an exact product unless it
 * leaves the normal range) */
static void dot_mxfp4(int64_t n, float *s, const void *w, const void *a)
{
    const block_mxfp4 *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK_MXFP4;
    float sumf = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const float d = H2F(y[b].d) * qfit_e8m0_to_fp32_half(x[b].e);
        int lo = 0, hi = 0;
        for (int j = 0; j < 16; j++) {
            lo += y[b].qs[j] * qfit_kvalues_mxfp4[x[b].qs[j] & 0x0F];
            hi += y[b].qs[j + 16] * qfit_kvalues_mxfp4[x[b].qs[j] >> 4];
        }
        sumf += d * (float)(lo + hi);
    }
    *s = sumf;
}

/* ---------------- K-quants (256-element super-blocks) ---------------- */

/* Unpack the 8 6-bit scales and 8 6-bit mins of a Q4_K/Q5_K block. */
static void unpack_scales_mins_k4(const uint8_t *q, uint8_t *sc, uint8_t *mn)
{
    for (int j = 0; j < 4; j++) {
        sc[j] = q[j] & 63;
        mn[j] = q[j + 4] & 63;
        sc[j + 4] = (uint8_t)((q[j + 8] & 0x0F) | ((q[j] >> 6) << 4));
        mn[j + 4] = (uint8_t)((q[j + 8] >> 4) | ((q[j + 4] >> 6) << 4));
    }
}

static void dot_q2_K(int64_t n, float *s, const void *w, const void *a)
{
    const block_q2_K *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    float sumf = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *q2 = x[b].qs;
        const int8_t *q8 = y[b].qs;
        const uint8_t *sc = x[b].scales;
        int summs = 0;
        for (int j = 0; j < 16; j++) summs += y[b].bsums[j] * (sc[j] >> 4);
        const float dall = y[b].d * H2F(x[b].d);
        const float dmin = y[b].d * H2F(x[b].dmin);
        int isum = 0, is = 0;
        for (int half = 0; half < 2; half++) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; part++) {
                    int d = sc[is++] & 0x0F, acc = 0;
                    for (int l = 16 * part; l < 16 * part + 16; l++)
                        acc += q8[l] * ((q2[l] >> shift) & 3);
                    isum += d * acc;
                }
                q8 += 32;
            }
            q2 += 32;
        }
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    *s = sumf;
}

static void dot_q3_K(int64_t n, float *s, const void *w, const void *a)
{
    const block_q3_K *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    float lanes[8] = {0};
    for (int64_t b = 0; b < nb; b++) {
        int8_t v[QK_K];
        const uint8_t *q3 = x[b].qs, *hm = x[b].hmask;
        uint8_t m = 1;
        int8_t *p = v;
        for (int half = 0; half < 2; half++) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int l = 0; l < 32; l++)
                    p[l] = (int8_t)(((q3[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                p += 32;
                m = (uint8_t)(m << 1);
            }
            q3 += 32;
        }
        /* 16 6-bit scales: low 4 bits in bytes 0..7, high 2 bits in bytes 8..11 */
        const uint8_t *sb = x[b].scales;
        int sc[16];
        for (int j = 0; j < 16; j++) {
            int lo = (j < 8) ? (sb[j] & 0x0F) : (sb[j - 8] >> 4);
            int hi = (sb[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
            sc[j] = (lo | (hi << 4)) - 32;
        }
        int32_t acc[8] = {0};
        const int8_t *q8 = y[b].qs;
        for (int j = 0; j < 16; j++)
            for (int l = 0; l < 16; l++)
                acc[l & 7] += sc[j] * (q8[16 * j + l] * v[16 * j + l]);
        const float d = H2F(x[b].d) * y[b].d;
        for (int l = 0; l < 8; l++) lanes[l] += d * (float)acc[l];
    }
    float sumf = 0.0f;
    for (int l = 0; l < 8; l++) sumf += lanes[l];
    *s = sumf;
}

/* Q4_K and Q5_K share everything but the fifth bit. */
static void dot_q45_K(int64_t nb, float *s, const uint8_t *xb, size_t xstride,
                      const block_q8_K *y, int five)
{
    float lanes[8] = {0};
    float sumf = 0.0f;
    for (int64_t b = 0; b < nb; b++, xb += xstride) {
        const uint16_t d16 = (uint16_t)(xb[0] | (xb[1] << 8));
        const uint16_t m16 = (uint16_t)(xb[2] | (xb[3] << 8));
        const uint8_t *scales = xb + 4;
        const uint8_t *qh = five ? xb + 4 + K_SCALE_SIZE : NULL;
        const uint8_t *q4 = xb + 4 + K_SCALE_SIZE + (five ? QK_K / 8 : 0);
        int8_t v[QK_K];
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                int lo = q4[32 * c + l] & 0x0F, hi = q4[32 * c + l] >> 4;
                if (five) {
                    lo += (qh[l] >> (2 * c)) & 1 ? 16 : 0;
                    hi += (qh[l] >> (2 * c + 1)) & 1 ? 16 : 0;
                }
                v[64 * c + l] = (int8_t)lo;
                v[64 * c + 32 + l] = (int8_t)hi;
            }
        }
        uint8_t sc[8], mn[8];
        unpack_scales_mins_k4(scales, sc, mn);
        int summ = 0;
        for (int j = 0; j < 16; j++) summ += y[b].bsums[j] * mn[j / 2];
        int32_t acc[8] = {0};
        const int8_t *q8 = y[b].qs;
        for (int j = 0; j < 8; j++)
            for (int l = 0; l < 32; l++)
                acc[l & 7] += sc[j] * (q8[32 * j + l] * v[32 * j + l]);
        const float d = H2F(d16) * y[b].d;
        for (int l = 0; l < 8; l++) lanes[l] += d * (float)acc[l];
        const float dmin = H2F(m16) * y[b].d;
        sumf -= dmin * (float)summ;
    }
    for (int l = 0; l < 8; l++) sumf += lanes[l];
    *s = sumf;
}

static void dot_q4_K(int64_t n, float *s, const void *w, const void *a)
{
    dot_q45_K(n / QK_K, s, w, sizeof(block_q4_K), a, 0);
}

static void dot_q5_K(int64_t n, float *s, const void *w, const void *a)
{
    dot_q45_K(n / QK_K, s, w, sizeof(block_q5_K), a, 1);
}

static void dot_q6_K(int64_t n, float *s, const void *w, const void *a)
{
    const block_q6_K *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    float lanes[8] = {0};
    for (int64_t b = 0; b < nb; b++) {
        int8_t v[QK_K];
        const uint8_t *ql = x[b].ql, *qh = x[b].qh;
        for (int half = 0; half < 2; half++) {
            int8_t *p = v + 128 * half;
            for (int l = 0; l < 32; l++) {
                p[l]      = (int8_t)(((ql[l] & 0x0F)      | (((qh[l] >> 0) & 3) << 4)) - 32);
                p[l + 32] = (int8_t)(((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32);
                p[l + 64] = (int8_t)(((ql[l] >> 4)        | (((qh[l] >> 4) & 3) << 4)) - 32);
                p[l + 96] = (int8_t)(((ql[l + 32] >> 4)   | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
            ql += 64;
            qh += 32;
        }
        int32_t acc[8] = {0};
        const int8_t *q8 = y[b].qs;
        for (int j = 0; j < 16; j++)
            for (int l = 0; l < 16; l++)
                acc[l & 7] += x[b].scales[j] * (q8[16 * j + l] * v[16 * j + l]);
        const float d = H2F(x[b].d) * y[b].d;
        for (int l = 0; l < 8; l++) lanes[l] += d * (float)acc[l];
    }
    float sumf = 0.0f;
    for (int l = 0; l < 8; l++) sumf += lanes[l];
    *s = sumf;
}

static void dot_iq4_xs(int64_t n, float *s, const void *w, const void *a)
{
    const block_iq4_xs *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    float sumf = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const float dd = H2F(x[b].d) * y[b].d;
        const uint8_t *qs = x[b].qs;
        const int8_t *q8 = y[b].qs;
        for (int ib = 0; ib < 8; ib++) {
            int ls = ((x[b].scales_l[ib / 2] >> (4 * (ib & 1))) & 0x0F)
                   | (((x[b].scales_h >> (2 * ib)) & 3) << 4);
            int lo = 0, hi = 0;
            for (int j = 0; j < 16; j++) {
                lo += q8[j] * qfit_kvalues_iq4nl[qs[j] & 0x0F];
                hi += q8[j + 16] * qfit_kvalues_iq4nl[qs[j] >> 4];
            }
            sumf += (dd * (float)(ls - 32)) * (float)(lo + hi);
            qs += 16;
            q8 += 32;
        }
    }
    *s = sumf;
}

/* ---------------- activation quantizers ---------------- */

static void quant_f32(const float *x, void *y, int64_t n)
{
    memcpy(y, x, (size_t)n * sizeof(float));
}

static void quant_f16(const float *x, void *y, int64_t n)
{
    uint16_t *o = y;
    for (int64_t i = 0; i < n; i++) o[i] = qfit_fp32_to_fp16(x[i]);
}

static void quant_bf16(const float *x, void *y, int64_t n)
{
    uint16_t *o = y;
    for (int64_t i = 0; i < n; i++) o[i] = qfit_fp32_to_bf16(x[i]);
}

void qk_fill_scalar(qk_table *t)
{
    memset(t, 0, sizeof(*t));
    t->dot[QFIT_TYPE_F32]    = dot_f32;
    t->dot[QFIT_TYPE_F16]    = dot_f16;
    t->dot[QFIT_TYPE_BF16]   = dot_bf16;
    t->dot[QFIT_TYPE_Q4_0]   = dot_q4_0;
    t->dot[QFIT_TYPE_Q4_1]   = dot_q4_1;
    t->dot[QFIT_TYPE_Q5_0]   = dot_q5_0;
    t->dot[QFIT_TYPE_Q5_1]   = dot_q5_1;
    t->dot[QFIT_TYPE_Q8_0]   = dot_q8_0;
    t->dot[QFIT_TYPE_Q2_K]   = dot_q2_K;
    t->dot[QFIT_TYPE_Q3_K]   = dot_q3_K;
    t->dot[QFIT_TYPE_Q4_K]   = dot_q4_K;
    t->dot[QFIT_TYPE_Q5_K]   = dot_q5_K;
    t->dot[QFIT_TYPE_Q6_K]   = dot_q6_K;
    t->dot[QFIT_TYPE_IQ4_NL] = dot_iq4_nl;
    t->dot[QFIT_TYPE_IQ4_XS] = dot_iq4_xs;
    t->dot[QFIT_TYPE_MXFP4]  = dot_mxfp4;

    t->quant[QFIT_TYPE_F32]  = quant_f32;
    t->quant[QFIT_TYPE_F16]  = quant_f16;
    t->quant[QFIT_TYPE_BF16] = quant_bf16;
    t->quant[QFIT_TYPE_Q8_0] = qfit_quantize_row_q8_0_ref;
    t->quant[QFIT_TYPE_Q8_1] = qfit_quantize_row_q8_1_ref;
    t->quant[QFIT_TYPE_Q8_K] = qfit_quantize_row_q8_K_ref;
}
