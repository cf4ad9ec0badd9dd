/* ARM NEON kernels (AArch64; compiled with -march=armv8.2-a+dotprod+fp16).
 * Integer kernels come in two variants: SDOT (when the CPU reports dotprod)
 * and a widening-multiply emulation for plain ARMv8 NEON. */
#include <arm_neon.h>
#include <string.h>
#include "kernels/kernels_internal.h"

static inline float h2f(uint16_t h)
{
    __fp16 f;
    memcpy(&f, &h, 2);
    return (float)f;
}

static inline void k4_scales(const uint8_t *q, uint8_t *sc, uint8_t *mn)
{
    for (int j = 0; j < 4; j++) {
        sc[j] = q[j] & 63;
        mn[j] = q[j + 4] & 63;
        sc[j + 4] = (uint8_t)((q[j + 8] & 0x0F) | ((q[j] >> 6) << 4));
        mn[j + 4] = (uint8_t)((q[j + 8] >> 4) | ((q[j + 4] >> 6) << 4));
    }
}

static inline int32x4_t sdot_hw(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    return vdotq_s32(acc, a, b);
}

/* same lanes as SDOT: lane i += sum of bytes 4i..4i+3 products */
static inline int32x4_t sdot_emul(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    int16x8_t p0 = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    int16x8_t p1 = vmull_high_s8(a, b);
    return vaddq_s32(acc, vpaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1)));
}

#define NEON_SDOT sdot_hw
#define NEON_SFX _dp
#include "kernels/dot_neon_impl.h"
#undef NEON_SDOT
#undef NEON_SFX
#define NEON_SDOT sdot_emul
#define NEON_SFX _em
#include "kernels/dot_neon_impl.h"
#undef NEON_SDOT
#undef NEON_SFX

static void n_dot_f32(int64_t n, float *s, const void *w, const void *a)
{
    const float *x = w, *y = a;
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = vfmaq_f32(a0, vld1q_f32(x + i), vld1q_f32(y + i));
        a1 = vfmaq_f32(a1, vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
        a2 = vfmaq_f32(a2, vld1q_f32(x + i + 8), vld1q_f32(y + i + 8));
        a3 = vfmaq_f32(a3, vld1q_f32(x + i + 12), vld1q_f32(y + i + 12));
    }
    for (; i + 4 <= n; i += 4) a0 = vfmaq_f32(a0, vld1q_f32(x + i), vld1q_f32(y + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) sum += x[i] * y[i];
    *s = sum;
}

static inline float32x4_t ld_f16x4(const uint16_t *p)
{
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

static void n_dot_f16(int64_t n, float *s, const void *w, const void *a)
{
    const uint16_t *x = w, *y = a;
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = vfmaq_f32(a0, ld_f16x4(x + i), ld_f16x4(y + i));
        a1 = vfmaq_f32(a1, ld_f16x4(x + i + 4), ld_f16x4(y + i + 4));
        a2 = vfmaq_f32(a2, ld_f16x4(x + i + 8), ld_f16x4(y + i + 8));
        a3 = vfmaq_f32(a3, ld_f16x4(x + i + 12), ld_f16x4(y + i + 12));
    }
    for (; i + 4 <= n; i += 4) a0 = vfmaq_f32(a0, ld_f16x4(x + i), ld_f16x4(y + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) sum += h2f(x[i]) * h2f(y[i]);
    *s = sum;
}

void qk_fill_neon(qk_table *t, int dotprod)
{
    t->dot[QFIT_TYPE_F32] = n_dot_f32;
    t->dot[QFIT_TYPE_F16] = n_dot_f16;
    t->dot[QFIT_TYPE_Q8_0] = dotprod ? n_dot_q8_0_dp : n_dot_q8_0_em;
    t->dot[QFIT_TYPE_Q4_0] = dotprod ? n_dot_q4_0_dp : n_dot_q4_0_em;
    t->dot[QFIT_TYPE_MXFP4] = dotprod ? n_dot_mxfp4_dp : n_dot_mxfp4_em;
    t->dot[QFIT_TYPE_Q4_K] = dotprod ? n_dot_q4_K_dp : n_dot_q4_K_em;
    t->dot[QFIT_TYPE_Q6_K] = dotprod ? n_dot_q6_K_dp : n_dot_q6_K_em;
}
