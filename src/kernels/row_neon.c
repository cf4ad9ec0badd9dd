/* Row kernels (qfit_row_kernels in qfit/kernels.h), AArch64 NEON. Only ARMv8.0
 * instructions (no dotprod, no fp16 arithmetic; the f16 <-> f32 conversions are
 * ARMv8.0), so the table serves every AArch64 CPU; rows8 is left to the generic path.
 * Integer block dots sum exactly and scale per block as the scalar table does. */
#include "qfit/kernels.h"
#include "kernels/kernels_internal.h"

#include <arm_neon.h>
#include <math.h>

#include "quant/blocks.h"

static inline float h2f(uint16_t h)
{
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

static inline float32x4_t h4(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

static float dot_f32(const float *q, const float *k, int n)
{
    float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        a0 = vfmaq_f32(a0, vld1q_f32(q + i), vld1q_f32(k + i));
        a1 = vfmaq_f32(a1, vld1q_f32(q + i + 4), vld1q_f32(k + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < n; i++) s += q[i] * k[i];
    return s;
}

static float dot_f16(const float *q, const uint16_t *k, int n)
{
    float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        a0 = vfmaq_f32(a0, vld1q_f32(q + i), h4(k + i));
        a1 = vfmaq_f32(a1, vld1q_f32(q + i + 4), h4(k + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < n; i++) s += q[i] * h2f(k[i]);
    return s;
}

/* sum of 32 int8 x int8 products (exact in int32) */
static inline int32_t dot32(int8x16_t x0, int8x16_t x1, const int8_t *y)
{
    const int8x16_t y0 = vld1q_s8(y), y1 = vld1q_s8(y + 16);
    int32x4_t acc = vpaddlq_s16(vmull_s8(vget_low_s8(x0), vget_low_s8(y0)));
    acc = vpadalq_s16(acc, vmull_high_s8(x0, y0));
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(x1), vget_low_s8(y1)));
    acc = vpadalq_s16(acc, vmull_high_s8(x1, y1));
    return vaddvq_s32(acc);
}

/* the 32 values of a q4_0 block as int8 (low nibbles first, minus 8) */
static inline void unpack_q4(const uint8_t *qs, int8x16_t *lo, int8x16_t *hi)
{
    const uint8x16_t b = vld1q_u8(qs);
    const int8x16_t eight = vdupq_n_s8(8);
    *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(0x0f))), eight);
    *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(b, 4)), eight);
}

static float dot_q8_0(const void *q8, const void *k, int n)
{
    const block_q8_0 *y = q8, *x = k;
    float s = 0.0f;
    for (int b = 0; b < n / 32; b++) {
        const int32_t sum = dot32(vld1q_s8(x[b].qs), vld1q_s8(x[b].qs + 16), y[b].qs);
        s += (float)sum * (h2f(x[b].d) * h2f(y[b].d));
    }
    return s;
}

static float dot_q4_0(const void *q8, const void *k, int n)
{
    const block_q8_0 *y = q8;
    const block_q4_0 *x = k;
    float s = 0.0f;
    for (int b = 0; b < n / 32; b++) {
        int8x16_t lo, hi;
        unpack_q4(x[b].qs, &lo, &hi);
        const int32_t sum = dot32(lo, hi, y[b].qs);
        s += (float)sum * (h2f(x[b].d) * h2f(y[b].d));
    }
    return s;
}

static void mad_f32(float *acc, const float *v, float w, int n)
{
    const float32x4_t wv = vdupq_n_f32(w);
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(acc + i, vfmaq_f32(vld1q_f32(acc + i), vld1q_f32(v + i), wv));
    for (; i < n; i++) acc[i] += w * v[i];
}

static void mad_f16(float *acc, const uint16_t *v, float w, int n)
{
    const float32x4_t wv = vdupq_n_f32(w);
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(acc + i, vfmaq_f32(vld1q_f32(acc + i), h4(v + i), wv));
    for (; i < n; i++) acc[i] += w * h2f(v[i]);
}

/* acc[0..16) += d * x (16 int8) */
static inline void mad16_i8(float *acc, int8x16_t x, float d)
{
    const float32x4_t dv = vdupq_n_f32(d);
    const int16x8_t l = vmovl_s8(vget_low_s8(x)), h = vmovl_high_s8(x);
    vst1q_f32(acc, vfmaq_f32(vld1q_f32(acc), vcvtq_f32_s32(vmovl_s16(vget_low_s16(l))), dv));
    vst1q_f32(acc + 4, vfmaq_f32(vld1q_f32(acc + 4), vcvtq_f32_s32(vmovl_high_s16(l)), dv));
    vst1q_f32(acc + 8, vfmaq_f32(vld1q_f32(acc + 8), vcvtq_f32_s32(vmovl_s16(vget_low_s16(h))), dv));
    vst1q_f32(acc + 12, vfmaq_f32(vld1q_f32(acc + 12), vcvtq_f32_s32(vmovl_high_s16(h)), dv));
}

static void mad_q8_0(float *acc, const void *v, float w, int n)
{
    const block_q8_0 *x = v;
    for (int b = 0; b < n / 32; b++) {
        const float d = w * h2f(x[b].d);
        mad16_i8(acc + 32 * b, vld1q_s8(x[b].qs), d);
        mad16_i8(acc + 32 * b + 16, vld1q_s8(x[b].qs + 16), d);
    }
}

static void mad_q4_0(float *acc, const void *v, float w, int n)
{
    const block_q4_0 *x = v;
    for (int b = 0; b < n / 32; b++) {
        const float d = w * h2f(x[b].d);
        int8x16_t lo, hi;
        unpack_q4(x[b].qs, &lo, &hi);
        mad16_i8(acc + 32 * b, lo, d);
        mad16_i8(acc + 32 * b + 16, hi, d);
    }
}

static void scale(float *acc, float s, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(acc + i, vmulq_n_f32(vld1q_f32(acc + i), s));
    for (; i < n; i++) acc[i] *= s;
}

/* e^x for 4 lanes, the method of the AVX2 table: x = n ln2 + r, |r| <= ln2 / 2, e^r by
 * its degree-6 Taylor polynomial (relative error ~1e-7), 2^n added to the exponent
 * bits; inputs clamped to [-87.3, 88.3] (no denormals, no inf). */
static inline float32x4_t exp4(float32x4_t x)
{
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.3f));
    const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693145751953125f));
    r = vfmsq_f32(r, n, vdupq_n_f32(1.428606765330187e-06f));
    float32x4_t p = vdupq_n_f32(1.0f / 720.0f);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    const int32x4_t e = vshlq_n_s32(vcvtq_s32_f32(n), 23);
    return vreinterpretq_f32_s32(vaddq_s32(vreinterpretq_s32_f32(p), e));
}

static void exp_sub(float *x, float m, int n)
{
    const float32x4_t mv = vdupq_n_f32(m);
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, exp4(vsubq_f32(vld1q_f32(x + i), mv)));
    for (; i < n; i++) x[i] = expf(x[i] - m);
}

static void swiglu(float *g, const float *u, int64_t n)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t x = vld1q_f32(g + i);
        const float32x4_t s = vdivq_f32(x, vaddq_f32(one, exp4(vnegq_f32(x))));
        vst1q_f32(g + i, vmulq_f32(s, vld1q_f32(u + i)));
    }
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void f32_to_f16(const float *x, uint16_t *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++)
        y[i] = vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(x[i]))), 0);
}

const qfit_row_kernels qfit_row_kernels_neon = {
    .dot_f32 = dot_f32, .dot_f16 = dot_f16, .dot_q8_0 = dot_q8_0, .dot_q4_0 = dot_q4_0,
    .mad_f32 = mad_f32, .mad_f16 = mad_f16, .mad_q8_0 = mad_q8_0, .mad_q4_0 = mad_q4_0,
    .scale = scale, .exp_sub = exp_sub, .swiglu = swiglu, .gelu = qk_gelu, .geglu = qk_geglu, .swiglu_oai = qk_swiglu_oai, .f32_to_f16 = f32_to_f16, .rows8 = NULL,
};
