/* ARM NEON register-tiled gemm kernels on packed weight panels (gemm_pack.c,
 * portable packer), compiled with -march=armv8.2-a+dotprod+fp16. Lane r of a
 * vector is weight row r of the panel (4 lanes per vector, NV vectors, so
 * R = 4 * NV rows); every step multiplies 4 quants of each row by the same 4
 * activation bytes. Two variants: SDOT, and a widening-multiply emulation for
 * CPUs without dotprod. SDOT is signed x signed, so the panel's unsigned quants
 * (at most 6 bits) are used as they are and the signed families need no offset
 * correction (IQ4_XS's level + 128 is flipped back to the signed level). Integer sums are exact; only the float scaling order differs. */
#include <arm_neon.h>
#include <string.h>
#include "kernels/kernels_internal.h"

#define NV 2
#define NA 4
#define R (4 * NV)

static inline int32_t rd32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline float h2f(const uint8_t *p)
{
    __fp16 f;
    memcpy(&f, p, 2);
    return (float)f;
}

static inline int32x4_t sdot_hw(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    return vdotq_s32(acc, a, b);
}

static inline int32x4_t sdot_em(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    int16x8_t p0 = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    int16x8_t p1 = vmull_high_s8(a, b);
    return vaddq_s32(acc, vpaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1)));
}

/* sum of the two int16 products in each 32-bit lane */
static inline int32x4_t dot16(int32x4_t acc, int16x8_t a, int16x8_t b)
{
    int32x4_t lo = vmull_s16(vget_low_s16(a), vget_low_s16(b));
    int32x4_t hi = vmull_high_s16(a, b);
    return vaddq_s32(acc, vpaddq_s32(lo, hi));
}

static inline void store_row(float *y, const float32x4_t *acc, int nw)
{
    if (nw == R) {
        for (int v = 0; v < NV; v++) vst1q_f32(y + 4 * v, acc[v]);
        return;
    }
    float t[R];
    for (int v = 0; v < NV; v++) vst1q_f32(t + 4 * v, acc[v]);
    memcpy(y, t, (size_t)nw * sizeof(float));
}

#define INLINE static inline __attribute__((always_inline))

#define DEFINE_NEON_PANELS(SDOT, SFX)                                                             \
INLINE void q8_tile##SFX(int64_t nb, const uint8_t *panel, int nw, const uint8_t *A, size_t as,    \
                         const int na, float *Y, int64_t ldy, const int uns)                      \
{                                                                                                  \
    const size_t BB = (size_t)R * 40;                                                              \
    float32x4_t acc[NA][NV];                                                                       \
    for (int a = 0; a < na; a++)                                                                   \
        for (int v = 0; v < NV; v++) acc[a][v] = vdupq_n_f32(0.0f);                                \
    const size_t ab = uns ? 36 : 34, aq = uns ? 4 : 2;                                             \
    for (int64_t b = 0; b < nb; b++) {                                                             \
        const uint8_t *pb = panel + (size_t)b * BB, *yb = A + (size_t)b * ab;                      \
        int32x4_t is[NA][NV];                                                                      \
        for (int a = 0; a < na; a++)                                                               \
            for (int v = 0; v < NV; v++) is[a][v] = vdupq_n_s32(0);                                \
        for (int g = 0; g < 8; g++) {                                                              \
            int8x16_t w[NV];                                                                       \
            for (int v = 0; v < NV; v++) w[v] = vld1q_s8((const int8_t *)(pb + ((size_t)g * R + 4 * v) * 4)); \
            for (int a = 0; a < na; a++) {                                                         \
                const int8x16_t x = vreinterpretq_s8_s32(vdupq_n_s32(rd32(yb + a * as + aq + 4 * g))); \
                for (int v = 0; v < NV; v++) is[a][v] = SDOT(is[a][v], w[v], x);                   \
            }                                                                                      \
        }                                                                                          \
        for (int v = 0; v < NV; v++) {                                                             \
            /* signed: qs | corr | d ; unsigned: qs | d | m */                                     \
            const float32x4_t d = vld1q_f32((const float *)(const void *)(pb + (size_t)R * (uns ? 32 : 36) + 16 * v)); \
            const float32x4_t m = vld1q_f32((const float *)(const void *)(pb + (size_t)R * 36 + 16 * v)); \
            for (int a = 0; a < na; a++) {                                                         \
                const float32x4_t dd = vmulq_n_f32(d, h2f(yb + a * as));                           \
                acc[a][v] = vfmaq_f32(acc[a][v], vcvtq_f32_s32(is[a][v]), dd);                     \
                if (uns) acc[a][v] = vfmaq_n_f32(acc[a][v], m, h2f(yb + a * as + 2));              \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    for (int a = 0; a < na; a++) store_row(Y + a * ldy, acc[a], nw);                               \
}                                                                                                  \
INLINE void k_tile##SFX(int64_t nb, const uint8_t *panel, int nw, const uint8_t *A, size_t as,     \
                        const int na, float *Y, int64_t ldy, const int s16, const int ofs)        \
{                                                                                                  \
    const int NS = s16 ? 16 : 8, GS = s16 ? 4 : 8;                                                 \
    /* ofs 2 (IQ4_XS): the quants are level + 128; flipping the top bit gives the \
     * signed level, which SDOT takes as it is, so no offset is subtracted */   \
    const int8x16_t flip = vdupq_n_s8(ofs == 2 ? (int8_t)-128 : 0);                                \
    const size_t BB = (size_t)R * (256 + 4 * (size_t)NS + 32 + 8);                                 \
    const size_t OFF_SC = (size_t)R * 256, OFF_MN = OFF_SC + (size_t)R * 4 * NS;                   \
    const size_t OFF_D = OFF_MN + (size_t)R * 32;                                                  \
    float32x4_t acc[NA][NV];                                                                       \
    for (int a = 0; a < na; a++)                                                                   \
        for (int v = 0; v < NV; v++) acc[a][v] = vdupq_n_f32(0.0f);                                \
    for (int64_t b = 0; b < nb; b++) {                                                             \
        const uint8_t *pb = panel + (size_t)b * BB, *yb = A + (size_t)b * 292;                     \
        int32x4_t isum[NA][NV];                                                                    \
        for (int a = 0; a < na; a++)                                                               \
            for (int v = 0; v < NV; v++) isum[a][v] = vdupq_n_s32(0);                              \
        for (int s = 0; s < NS; s++) {                                                             \
            int32x4_t isub[NA][NV];                                                                \
            for (int a = 0; a < na; a++)                                                           \
                for (int v = 0; v < NV; v++) isub[a][v] = vdupq_n_s32(0);                          \
            const uint8_t *pq = pb + (size_t)s * GS * R * 4, *yq = yb + 4 + (size_t)s * GS * 4;     \
            for (int g = 0; g < GS; g++) {                                                         \
                int8x16_t w[NV];                                                                   \
                for (int v = 0; v < NV; v++)                                                       \
                    w[v] = veorq_s8(vld1q_s8((const int8_t *)(pq + ((size_t)g * R + 4 * v) * 4)), flip); \
                for (int a = 0; a < na; a++) {                                                     \
                    const int8x16_t x = vreinterpretq_s8_s32(vdupq_n_s32(rd32(yq + a * as + 4 * g))); \
                    for (int v = 0; v < NV; v++) isub[a][v] = SDOT(isub[a][v], w[v], x);           \
                }                                                                                  \
            }                                                                                      \
            for (int v = 0; v < NV; v++) {                                                         \
                const int32x4_t sc = vld1q_s32((const int32_t *)(const void *)(pb + OFF_SC + ((size_t)s * R + 4 * v) * 4)); \
                for (int a = 0; a < na; a++) isum[a][v] = vmlaq_s32(isum[a][v], isub[a][v], sc);   \
            }                                                                                      \
        }                                                                                          \
        int32x4_t msum[NA][NV];                                                                    \
        for (int a = 0; a < na; a++)                                                               \
            for (int v = 0; v < NV; v++) msum[a][v] = vdupq_n_s32(0);                              \
        for (int p = 0; p < (ofs == 2 ? 0 : 8); p++) {                                            \
            int16x8_t mn[NV];                                                                      \
            for (int v = 0; v < NV; v++) mn[v] = vld1q_s16((const int16_t *)(const void *)(pb + OFF_MN + ((size_t)p * R + 4 * v) * 4)); \
            for (int a = 0; a < na; a++) {                                                         \
                const int16x8_t x = vreinterpretq_s16_s32(vdupq_n_s32(rd32(yb + a * as + 260 + 4 * p))); \
                for (int v = 0; v < NV; v++) msum[a][v] = dot16(msum[a][v], mn[v], x);             \
            }                                                                                      \
        }                                                                                          \
        for (int v = 0; v < NV; v++) {                                                             \
            const float32x4_t d = vld1q_f32((const float *)(const void *)(pb + OFF_D + 16 * v));  \
            const float32x4_t dm = vld1q_f32((const float *)(const void *)(pb + OFF_D + (size_t)R * 4 + 16 * v)); \
            for (int a = 0; a < na; a++) {                                                         \
                float yd;                                                                          \
                memcpy(&yd, yb + a * as, 4);                                                       \
                if (ofs) {                                                                         \
                    acc[a][v] = vfmaq_f32(acc[a][v], vcvtq_f32_s32(vsubq_s32(isum[a][v], msum[a][v])), vmulq_n_f32(d, yd)); \
                } else {                                                                           \
                    acc[a][v] = vfmaq_f32(acc[a][v], vcvtq_f32_s32(isum[a][v]), vmulq_n_f32(d, yd)); \
                    acc[a][v] = vfmsq_f32(acc[a][v], vcvtq_f32_s32(msum[a][v]), vmulq_n_f32(dm, yd)); \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    for (int a = 0; a < na; a++) store_row(Y + a * ldy, acc[a], nw);                               \
}                                                                                                  \
static void run_q8##SFX(int64_t k, const void *panel, int nw, const void *A, size_t as, int64_t m, \
                        float *Y, int64_t ldy)                                                     \
{                                                                                                  \
    const uint8_t *Ab = A;                                                                         \
    int64_t j = 0;                                                                                 \
    for (; j + NA <= m; j += NA) q8_tile##SFX(k / 32, panel, nw, Ab + (size_t)j * as, as, NA, Y + j * ldy, ldy, 0); \
    for (; j < m; j++) q8_tile##SFX(k / 32, panel, nw, Ab + (size_t)j * as, as, 1, Y + j * ldy, ldy, 0); \
}                                                                                                  \
static void run_q8u##SFX(int64_t k, const void *panel, int nw, const void *A, size_t as, int64_t m, \
                         float *Y, int64_t ldy)                                                    \
{                                                                                                  \
    const uint8_t *Ab = A;                                                                         \
    int64_t j = 0;                                                                                 \
    for (; j + NA <= m; j += NA) q8_tile##SFX(k / 32, panel, nw, Ab + (size_t)j * as, as, NA, Y + j * ldy, ldy, 1); \
    for (; j < m; j++) q8_tile##SFX(k / 32, panel, nw, Ab + (size_t)j * as, as, 1, Y + j * ldy, ldy, 1); \
}                                                                                                  \
INLINE void run_k##SFX(int64_t k, const void *panel, int nw, const void *A, size_t as, int64_t m,   \
                       float *Y, int64_t ldy, const int s16, const int ofs)                        \
{                                                                                                  \
    const uint8_t *Ab = A;                                                                         \
    int64_t j = 0;                                                                                 \
    for (; j + NA <= m; j += NA) k_tile##SFX(k / 256, panel, nw, Ab + (size_t)j * as, as, NA, Y + j * ldy, ldy, s16, ofs); \
    for (; j < m; j++) k_tile##SFX(k / 256, panel, nw, Ab + (size_t)j * as, as, 1, Y + j * ldy, ldy, s16, ofs); \
}                                                                                                  \
/* Q4_K Q5_K; IQ4_XS; Q3_K Q6_K; Q2_K (gemm_pack.c) */                                            \
static void run_k32##SFX(int64_t k, const void *p, int nw, const void *A, size_t as, int64_t m, float *Y, int64_t ldy) \
{ run_k##SFX(k, p, nw, A, as, m, Y, ldy, 0, 0); }                                                  \
static void run_k32o##SFX(int64_t k, const void *p, int nw, const void *A, size_t as, int64_t m, float *Y, int64_t ldy) \
{ run_k##SFX(k, p, nw, A, as, m, Y, ldy, 0, 2); }                                                  \
static void run_k16##SFX(int64_t k, const void *p, int nw, const void *A, size_t as, int64_t m, float *Y, int64_t ldy) \
{ run_k##SFX(k, p, nw, A, as, m, Y, ldy, 1, 1); }                                                  \
static void run_k16m##SFX(int64_t k, const void *p, int nw, const void *A, size_t as, int64_t m, float *Y, int64_t ldy) \
{ run_k##SFX(k, p, nw, A, as, m, Y, ldy, 1, 0); }

DEFINE_NEON_PANELS(sdot_hw, _dp)
DEFINE_NEON_PANELS(sdot_em, _em)

void qk_fill_gemm_neon(qk_table *t, int dotprod)
{
    const qk_panel q8 = {dotprod ? run_q8_dp : run_q8_em, NULL, R, 8, NULL, QK_PF_Q8, 0, QK_ACT_ROWS};
    const qk_panel q8u = {dotprod ? run_q8u_dp : run_q8u_em, NULL, R, 8, NULL, QK_PF_Q8U, 0, QK_ACT_ROWS};
    const qk_panel k32 = {dotprod ? run_k32_dp : run_k32_em, NULL, R, 8, NULL, QK_PF_K32, 0, QK_ACT_ROWS};
    const qk_panel k16 = {dotprod ? run_k16_dp : run_k16_em, NULL, R, 8, NULL, QK_PF_K16, 0, QK_ACT_ROWS};
    const qk_panel k16m = {dotprod ? run_k16m_dp : run_k16m_em, NULL, R, 8, NULL, QK_PF_K16, 0, QK_ACT_ROWS};
    const qk_panel k32o = {dotprod ? run_k32o_dp : run_k32o_em, NULL, R, 8, NULL, QK_PF_K32, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_Q4_0] = q8;
    t->panel[QFIT_TYPE_Q5_0] = q8;
    t->panel[QFIT_TYPE_Q8_0] = q8;
    t->panel[QFIT_TYPE_IQ4_NL] = q8;
    t->panel[QFIT_TYPE_MXFP4] = q8;
    t->panel[QFIT_TYPE_Q4_1] = q8u;
    t->panel[QFIT_TYPE_Q5_1] = q8u;
    t->panel[QFIT_TYPE_Q4_K] = k32;
    t->panel[QFIT_TYPE_Q5_K] = k32;
    t->panel[QFIT_TYPE_Q6_K] = k16;
    t->panel[QFIT_TYPE_Q3_K] = k16;
    t->panel[QFIT_TYPE_Q2_K] = k16m;
    t->panel[QFIT_TYPE_IQ4_XS] = k32o;
}
