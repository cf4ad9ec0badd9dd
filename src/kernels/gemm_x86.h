/* Internal: x86 register-tiled gemm kernels on packed weight panels
 * (gemm_pack.c), written once for a vector of QG_L 32-bit lanes and compiled
 * per instruction set by the includer, which defines:
 *   QG_L     8 (256-bit vectors) or 16 (512-bit)
 *   QG_VNNI  1: vpdpbusd / vpdpwssd; 0: AVX2 maddubs/madd emulation
 *   QG_NV    vectors per panel (panel rows R = QG_L * QG_NV)
 *   QG_NA    activation rows per register tile
 *   QG_FN(x) the name of this variant's function x
 * Lane r of every vector belongs to weight row r of the panel; each step
 * multiplies 4 consecutive quants of all R rows by the same 4 activation bytes
 * (broadcast), so the integer sum of a block for R rows x QG_NA activation rows
 * builds up in QG_NV x QG_NA registers with no horizontal reduction. Integer
 * sums are exact; only the float scaling order differs from the dot kernels. */
#include <immintrin.h>
#include <string.h>
#include "kernels/kernels_internal.h"

#define QG_R (QG_L * QG_NV)
#define QG_STR2(x) #x
#ifdef __clang__
#define QG_UNROLL _Pragma(QG_STR2(clang loop unroll(full)))
#else
#define QG_UNROLL _Pragma(QG_STR2(GCC unroll 16))
#endif

#if QG_L == 16
typedef __m512i qg_vi;
typedef __m512  qg_vf;
#define VI_LOAD(p)        _mm512_loadu_si512((const void *)(p))
#define VI_BC32(p)        _mm512_set1_epi32(qg_rd32(p))
#define VI_SET1_8(x)      _mm512_set1_epi8(x)
#define VI_SET1_32(x)     _mm512_set1_epi32(x)
#define VI_MADD16(a, b)   _mm512_madd_epi16(a, b)
#define VI_ZERO()         _mm512_setzero_si512()
#define VI_ADD(a, b)      _mm512_add_epi32(a, b)
#define VI_SUB(a, b)      _mm512_sub_epi32(a, b)
#define VI_XOR(a, b)      _mm512_xor_si512(a, b)
#define VI_AND(a, b)      _mm512_and_si512(a, b)
#define VI_OR(a, b)       _mm512_or_si512(a, b)
#define VI_SRLI16(a, n)   _mm512_srli_epi16(a, n)
#define VI_SLLI16(a, n)   _mm512_slli_epi16(a, n)
#define VI_SLLI32(a, n)   _mm512_slli_epi32(a, n)
#define VI_MULLO(a, b)    _mm512_mullo_epi32(a, b)
#define VI_DPBUSD(c, u, s) _mm512_dpbusd_epi32(c, u, s)
#define VI_DPWSSD(c, a, b) _mm512_dpwssd_epi32(c, a, b)
#define VI_SHUF8(t, i)    _mm512_shuffle_epi8(t, i)
#define VI_BC128(p)       _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define VF_ZERO()         _mm512_setzero_ps()
#define VF_LOAD(p)        _mm512_loadu_ps(p)
#define VF_LOAD_H(p)      _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))
#define VF_STORE(p, v)    _mm512_storeu_ps(p, v)
#define VF_SET1(x)        _mm512_set1_ps(x)
#define VF_CVT(v)         _mm512_cvtepi32_ps(v)
#define VF_MUL(a, b)      _mm512_mul_ps(a, b)
#define VF_FMA(a, b, c)   _mm512_fmadd_ps(a, b, c)
#define VF_FNMA(a, b, c)  _mm512_fnmadd_ps(a, b, c)
#else
typedef __m256i qg_vi;
typedef __m256  qg_vf;
#define VI_LOAD(p)        _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define VI_BC32(p)        _mm256_set1_epi32(qg_rd32(p))
#define VI_SET1_8(x)      _mm256_set1_epi8(x)
#define VI_SET1_32(x)     _mm256_set1_epi32(x)
#define VI_MADD16(a, b)   _mm256_madd_epi16(a, b)
#define VI_ZERO()         _mm256_setzero_si256()
#define VI_ADD(a, b)      _mm256_add_epi32(a, b)
#define VI_SUB(a, b)      _mm256_sub_epi32(a, b)
#define VI_XOR(a, b)      _mm256_xor_si256(a, b)
#define VI_AND(a, b)      _mm256_and_si256(a, b)
#define VI_OR(a, b)       _mm256_or_si256(a, b)
#define VI_SRLI16(a, n)   _mm256_srli_epi16(a, n)
#define VI_SLLI16(a, n)   _mm256_slli_epi16(a, n)
#define VI_SLLI32(a, n)   _mm256_slli_epi32(a, n)
#define VI_MULLO(a, b)    _mm256_mullo_epi32(a, b)
#define VI_SHUF8(t, i)    _mm256_shuffle_epi8(t, i)
#define VI_BC128(p)       _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#if QG_VNNI
#define VI_DPBUSD(c, u, s) _mm256_dpbusd_epi32(c, u, s)
#define VI_DPWSSD(c, a, b) _mm256_dpwssd_epi32(c, a, b)
#else
/* no saturation: callers keep 2 * max|u| * max|s| < 32768 */
#define VI_DPBUSD(c, u, s) _mm256_add_epi32(c, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)))
#define VI_DPWSSD(c, a, b) _mm256_add_epi32(c, _mm256_madd_epi16(a, b))
#endif
#define VF_ZERO()         _mm256_setzero_ps()
#define VF_LOAD(p)        _mm256_loadu_ps(p)
#define VF_LOAD_H(p)      _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define VF_STORE(p, v)    _mm256_storeu_ps(p, v)
#define VF_SET1(x)        _mm256_set1_ps(x)
#define VF_CVT(v)         _mm256_cvtepi32_ps(v)
#define VF_MUL(a, b)      _mm256_mul_ps(a, b)
#define VF_FMA(a, b, c)   _mm256_fmadd_ps(a, b, c)
#define VF_FNMA(a, b, c)  _mm256_fnmadd_ps(a, b, c)
#endif

#define QG_INLINE static inline __attribute__((always_inline))

QG_INLINE int32_t qg_rd32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* IQ4_NL's levels (qfit_kvalues_iq4nl) + 128, as unsigned bytes */
static const uint8_t qg_lut_iq4nl_u[16] = {1, 24, 45, 63, 79, 93, 106, 118, 129, 141, 153, 166, 181, 197, 217, 241};

QG_INLINE float qg_h2f(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* the nw real results of one activation row */
QG_INLINE void qg_store(float *y, const qg_vf *acc, int nw)
{
    if (nw == QG_R) {
        QG_UNROLL for (int v = 0; v < QG_NV; v++) VF_STORE(y + v * QG_L, acc[v]);
        return;
    }
    float t[QG_R];
    QG_UNROLL for (int v = 0; v < QG_NV; v++) VF_STORE(t + v * QG_L, acc[v]);
    memcpy(y, t, (size_t)nw * sizeof(float));
}

/* ---- 32-element blocks, signed values (Q4_0 Q5_0 Q8_0 IQ4_NL MXFP4) x Q8_0 ----
 * The activation bytes are flipped to unsigned (a + 128) for vpdpbusd; the
 * panel's per-row 128 * sum(w) takes the offset back out. */
QG_INLINE void qg_q8_tile(int64_t nb, const uint8_t *panel, int nw, const uint8_t *A,
                          size_t as, const int NA, float *Y, int64_t ldy)
{
    const size_t BB = (size_t)QG_R * 40;
    const qg_vi flip = VI_SET1_8((char)0x80);
    qg_vf acc[QG_NA][QG_NV];
    QG_UNROLL for (int a = 0; a < NA; a++)
        QG_UNROLL for (int v = 0; v < QG_NV; v++) acc[a][v] = VF_ZERO();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + (size_t)b * BB;
        const uint8_t *yb = A + (size_t)b * 34;
        qg_vi is[QG_NA][QG_NV];
        QG_UNROLL for (int a = 0; a < NA; a++)
            QG_UNROLL for (int v = 0; v < QG_NV; v++) is[a][v] = VI_ZERO();
        QG_UNROLL for (int g = 0; g < 8; g++) {
            qg_vi w[QG_NV];
            QG_UNROLL for (int v = 0; v < QG_NV; v++) w[v] = VI_LOAD(pb + ((size_t)g * QG_R + v * QG_L) * 4);
            QG_UNROLL for (int a = 0; a < NA; a++) {
                const qg_vi x = VI_XOR(VI_BC32(yb + a * as + 2 + 4 * g), flip);
                QG_UNROLL for (int v = 0; v < QG_NV; v++) is[a][v] = VI_DPBUSD(is[a][v], x, w[v]);
            }
        }
        QG_UNROLL for (int v = 0; v < QG_NV; v++) {
            const qg_vi corr = VI_LOAD(pb + (size_t)QG_R * 32 + v * QG_L * 4);
            const qg_vf d = VF_LOAD((const float *)(const void *)(pb + (size_t)QG_R * 36 + v * QG_L * 4));
            QG_UNROLL for (int a = 0; a < NA; a++) {
                const qg_vf dd = VF_MUL(d, VF_SET1(qg_h2f(yb + a * as)));
                acc[a][v] = VF_FMA(VF_CVT(VI_SUB(is[a][v], corr)), dd, acc[a][v]);
            }
        }
    }
    QG_UNROLL for (int a = 0; a < NA; a++) qg_store(Y + a * ldy, acc[a], nw);
}

/* ---- 32-element blocks, unsigned values with a min (Q4_1 Q5_1) x Q8_1 ---- */
QG_INLINE void qg_q8u_tile(int64_t nb, const uint8_t *panel, int nw, const uint8_t *A,
                           size_t as, const int NA, float *Y, int64_t ldy)
{
    const size_t BB = (size_t)QG_R * 40;
    qg_vf acc[QG_NA][QG_NV];
    QG_UNROLL for (int a = 0; a < NA; a++)
        QG_UNROLL for (int v = 0; v < QG_NV; v++) acc[a][v] = VF_ZERO();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + (size_t)b * BB;
        const uint8_t *yb = A + (size_t)b * 36;
        qg_vi is[QG_NA][QG_NV];
        QG_UNROLL for (int a = 0; a < NA; a++)
            QG_UNROLL for (int v = 0; v < QG_NV; v++) is[a][v] = VI_ZERO();
        QG_UNROLL for (int g = 0; g < 8; g++) {
            qg_vi w[QG_NV];
            QG_UNROLL for (int v = 0; v < QG_NV; v++) w[v] = VI_LOAD(pb + ((size_t)g * QG_R + v * QG_L) * 4);
            QG_UNROLL for (int a = 0; a < NA; a++) {
                const qg_vi x = VI_BC32(yb + a * as + 4 + 4 * g);
                QG_UNROLL for (int v = 0; v < QG_NV; v++) is[a][v] = VI_DPBUSD(is[a][v], w[v], x);
            }
        }
        QG_UNROLL for (int v = 0; v < QG_NV; v++) {
            const qg_vf d = VF_LOAD((const float *)(const void *)(pb + (size_t)QG_R * 32 + v * QG_L * 4));
            const qg_vf m = VF_LOAD((const float *)(const void *)(pb + (size_t)QG_R * 36 + v * QG_L * 4));
            QG_UNROLL for (int a = 0; a < NA; a++) {
                const qg_vf dd = VF_MUL(d, VF_SET1(qg_h2f(yb + a * as)));
                acc[a][v] = VF_FMA(VF_CVT(is[a][v]), dd, acc[a][v]);
                acc[a][v] = VF_FMA(m, VF_SET1(qg_h2f(yb + a * as + 2)), acc[a][v]);
            }
        }
    }
    QG_UNROLL for (int a = 0; a < NA; a++) qg_store(Y + a * ldy, acc[a], nw);
}

/* ---- K-quants (and IQ4_XS) x Q8_K: NS sub-blocks of 256/NS elements (S16:
 * 16 of 16, else 8 of 32), per-row integer sub-block scales; the mins (Q2_K,
 * Q4_K, Q5_K: OFS = 0, scaled by dmin) or the value offsets (Q3_K, Q6_K,
 * IQ4_XS: OFS = 1, scaled by d with the rest) come from the activation's
 * 16-element sums (gemm_pack.c describes each type's numbers). ---- */
QG_INLINE void qg_k_tile(int64_t nb, const uint8_t *panel, int nw, const uint8_t *A,
                         size_t as, const int NA, float *Y, int64_t ldy, const int S16, const int OFS)
{
    const int NS = S16 ? 16 : 8, GS = S16 ? 4 : 8;   /* sub-blocks, 4-byte groups per sub-block */
    const size_t BB = (size_t)QG_R * (256 + 4 * (size_t)NS + 32 + 8);
    const size_t OFF_SC = (size_t)QG_R * 256, OFF_MN = OFF_SC + (size_t)QG_R * 4 * NS;
    const size_t OFF_D = OFF_MN + (size_t)QG_R * 32;
    qg_vf acc[QG_NA][QG_NV];
    QG_UNROLL for (int a = 0; a < NA; a++)
        QG_UNROLL for (int v = 0; v < QG_NV; v++) acc[a][v] = VF_ZERO();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + (size_t)b * BB;
        const uint8_t *yb = A + (size_t)b * 292;
        qg_vi isum[QG_NA][QG_NV];
        QG_UNROLL for (int a = 0; a < NA; a++)
            QG_UNROLL for (int v = 0; v < QG_NV; v++) isum[a][v] = VI_ZERO();
        for (int s = 0; s < NS; s++) {
            qg_vi isub[QG_NA][QG_NV];
            QG_UNROLL for (int a = 0; a < NA; a++)
                QG_UNROLL for (int v = 0; v < QG_NV; v++) isub[a][v] = VI_ZERO();
            const uint8_t *pq = pb + (size_t)s * GS * QG_R * 4;
            const uint8_t *yq = yb + 4 + (size_t)s * GS * 4;
            QG_UNROLL for (int g = 0; g < GS; g++) {
                qg_vi w[QG_NV];
                QG_UNROLL for (int v = 0; v < QG_NV; v++) w[v] = VI_LOAD(pq + ((size_t)g * QG_R + v * QG_L) * 4);
                QG_UNROLL for (int a = 0; a < NA; a++) {
                    const qg_vi x = VI_BC32(yq + a * as + 4 * g);
                    QG_UNROLL for (int v = 0; v < QG_NV; v++) isub[a][v] = VI_DPBUSD(isub[a][v], w[v], x);
                }
            }
            QG_UNROLL for (int v = 0; v < QG_NV; v++) {
                const qg_vi sc = VI_LOAD(pb + OFF_SC + ((size_t)s * QG_R + v * QG_L) * 4);
                QG_UNROLL for (int a = 0; a < NA; a++) isum[a][v] = VI_ADD(isum[a][v], VI_MULLO(isub[a][v], sc));
            }
        }
        qg_vi msum[QG_NA][QG_NV];
        QG_UNROLL for (int a = 0; a < NA; a++)
            QG_UNROLL for (int v = 0; v < QG_NV; v++) msum[a][v] = VI_ZERO();
        QG_UNROLL for (int p = 0; p < 8; p++) {
            qg_vi mn[QG_NV];
            QG_UNROLL for (int v = 0; v < QG_NV; v++) mn[v] = VI_LOAD(pb + OFF_MN + ((size_t)p * QG_R + v * QG_L) * 4);
            QG_UNROLL for (int a = 0; a < NA; a++) {
                const qg_vi x = VI_BC32(yb + a * as + 260 + 4 * p);
                QG_UNROLL for (int v = 0; v < QG_NV; v++) msum[a][v] = VI_DPWSSD(msum[a][v], mn[v], x);
            }
        }
        QG_UNROLL for (int v = 0; v < QG_NV; v++) {
            const qg_vf d = VF_LOAD((const float *)(const void *)(pb + OFF_D + v * QG_L * 4));
            const qg_vf dm = VF_LOAD((const float *)(const void *)(pb + OFF_D + (size_t)QG_R * 4 + v * QG_L * 4));
            QG_UNROLL for (int a = 0; a < NA; a++) {
                float yd;
                memcpy(&yd, yb + a * as, 4);
                const qg_vf da = VF_SET1(yd);
                if (OFS) {
                    acc[a][v] = VF_FMA(VF_CVT(VI_SUB(isum[a][v], msum[a][v])), VF_MUL(d, da), acc[a][v]);
                } else {
                    acc[a][v] = VF_FMA(VF_CVT(isum[a][v]), VF_MUL(d, da), acc[a][v]);
                    acc[a][v] = VF_FNMA(VF_CVT(msum[a][v]), VF_MUL(dm, da), acc[a][v]);
                }
            }
        }
    }
    QG_UNROLL for (int a = 0; a < NA; a++) qg_store(Y + a * ldy, acc[a], nw);
}

/* ---- Q4_K on its stored nibbles (QK_PF_K4N) x Q8_K: each 4-byte group holds
 * 4 values of sub-block 2c (low nibbles) and the same 4 of sub-block 2c+1 (high
 * nibbles); both sub-blocks of a pair build up together. ---- */
QG_INLINE qg_vi qg_u8x(const uint8_t *p)   /* QG_L bytes, zero-extended to 32-bit lanes */
{
#if QG_L == 16
    return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
#else
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
#endif
}

/* The compact panels (K4N, K6N) are read once per tile, front to back, and with the
 * weights packed at load one panel follows the other in memory: fetch the block
 * QG_PF_BLOCKS ahead while this one is computed (the hardware prefetcher alone left a
 * batch of 8 rows waiting on DRAM: Q4_K at 142 GMAC/s from DRAM vs 240 from cache).
 * Past the end of the last panel the addresses are only hints (no fault). */
#define QG_PF_BLOCKS 2
QG_INLINE void qg_prefetch_ahead(const uint8_t *pb, size_t bb)
{
    const char *p = (const char *)pb + QG_PF_BLOCKS * bb;
    for (size_t o = 0; o < bb; o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
}

QG_INLINE qg_vi qg_i8x(const uint8_t *p)   /* QG_L bytes, sign-extended to 32-bit lanes */
{
#if QG_L == 16
    return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
#else
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
#endif
}

/* One vector of a nibble panel (QG_L rows x 4 bytes): the low and the high nibbles as
 * bytes, through the level table `tab` (lut's 16 entries in every 128-bit lane) when lut
 * is set. */
QG_INLINE void qg_nibbles(const uint8_t *p, const uint8_t *lut, qg_vi tab, qg_vi *lo, qg_vi *hi)
{
    const qg_vi m4 = VI_SET1_8(0x0F), w = VI_LOAD(p);
    *lo = VI_AND(w, m4);
    *hi = VI_AND(VI_SRLI16(w, 4), m4);
    if (lut) {
        *lo = VI_SHUF8(tab, *lo);
        *hi = VI_SHUF8(tab, *hi);
    }
}

/* With `lut` (IQ4_XS in QK_PF_X4N: the nibbles in Q4_K's order, levels + 128 through
 * lut, signed scales, no mins): the offset 128 * scale * xsum takes the place of the
 * mins, and there is no mn area (the block is 140 bytes a row instead of 152). */
QG_INLINE void qg_k4n_tile(int64_t nb, const uint8_t *panel, int nw, const uint8_t *A,
                           size_t as, const int NA, float *Y, int64_t ldy, const uint8_t *lut)
{
    const size_t BB = (size_t)QG_R * (lut ? 140 : 152);
    const size_t OFF_SC = (size_t)QG_R * 128, OFF_MN = OFF_SC + (size_t)QG_R * 8;
    const size_t OFF_D = lut ? OFF_MN : OFF_MN + (size_t)QG_R * 8;
    const qg_vi tab = lut ? VI_BC128(lut) : VI_ZERO();
    qg_vf acc[QG_NA][QG_NV];
    QG_UNROLL for (int a = 0; a < NA; a++)
        QG_UNROLL for (int v = 0; v < QG_NV; v++) acc[a][v] = VF_ZERO();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + (size_t)b * BB;
        const uint8_t *yb = A + (size_t)b * 292;
        qg_prefetch_ahead(pb, BB);
        qg_vi isum[QG_NA][QG_NV];
        QG_UNROLL for (int a = 0; a < NA; a++)
            QG_UNROLL for (int v = 0; v < QG_NV; v++) isum[a][v] = VI_ZERO();
        for (int c = 0; c < 4; c++) {
            qg_vi ie[QG_NA][QG_NV], io[QG_NA][QG_NV];
            QG_UNROLL for (int a = 0; a < NA; a++)
                QG_UNROLL for (int v = 0; v < QG_NV; v++) ie[a][v] = io[a][v] = VI_ZERO();
            const uint8_t *pq = pb + (size_t)c * 8 * QG_R * 4;
            const uint8_t *yq = yb + 4 + (size_t)c * 64;
            /* one activation row and one vector per panel: the odd groups build up in
             * a second pair of sums, so 4 dependency chains run instead of 2 */
            qg_vi ie1[QG_NV], io1[QG_NV];
            QG_UNROLL for (int v = 0; v < QG_NV; v++) ie1[v] = io1[v] = VI_ZERO();
            const bool split = NA == 1 && QG_NV == 1;
            QG_UNROLL for (int g = 0; g < 8; g++) {
                qg_vi lo[QG_NV], hi[QG_NV];
                QG_UNROLL for (int v = 0; v < QG_NV; v++)
                    qg_nibbles(pq + ((size_t)g * QG_R + v * QG_L) * 4, lut, tab, &lo[v], &hi[v]);
                QG_UNROLL for (int a = 0; a < NA; a++) {
                    const qg_vi xl = VI_BC32(yq + a * as + 4 * g), xh = VI_BC32(yq + a * as + 32 + 4 * g);
                    QG_UNROLL for (int v = 0; v < QG_NV; v++) {
                        if (split && (g & 1)) {
                            ie1[v] = VI_DPBUSD(ie1[v], lo[v], xl);
                            io1[v] = VI_DPBUSD(io1[v], hi[v], xh);
                        } else {
                            ie[a][v] = VI_DPBUSD(ie[a][v], lo[v], xl);
                            io[a][v] = VI_DPBUSD(io[a][v], hi[v], xh);
                        }
                    }
                }
            }
            if (split)
                QG_UNROLL for (int v = 0; v < QG_NV; v++) {
                    ie[0][v] = VI_ADD(ie[0][v], ie1[v]);
                    io[0][v] = VI_ADD(io[0][v], io1[v]);
                }
            QG_UNROLL for (int v = 0; v < QG_NV; v++) {
                const uint8_t *sp = pb + OFF_SC + (size_t)(2 * c) * QG_R + v * QG_L;
                const qg_vi se = lut ? qg_i8x(sp) : qg_u8x(sp);
                const qg_vi so = lut ? qg_i8x(sp + QG_R) : qg_u8x(sp + QG_R);
                QG_UNROLL for (int a = 0; a < NA; a++)
                    isum[a][v] = VI_ADD(isum[a][v], VI_ADD(VI_MULLO(ie[a][v], se), VI_MULLO(io[a][v], so)));
            }
        }
        /* mins: sum_j min_j * (bsum[2j] + bsum[2j+1]), the pair of 16-element sums
         * against (min, min) */
        qg_vi msum[QG_NA][QG_NV];
        QG_UNROLL for (int a = 0; a < NA; a++)
            QG_UNROLL for (int v = 0; v < QG_NV; v++) msum[a][v] = VI_ZERO();
        QG_UNROLL for (int p = 0; p < 8; p++) {
            qg_vi mn[QG_NV];
            QG_UNROLL for (int v = 0; v < QG_NV; v++) {
                if (lut) {   /* the signed scale in both halves */
                    const qg_vi m1 = qg_i8x(pb + OFF_SC + (size_t)p * QG_R + v * QG_L);
                    mn[v] = VI_OR(VI_AND(m1, VI_SET1_32(0xFFFF)), VI_SLLI32(m1, 16));
                } else {
                    const qg_vi m1 = qg_u8x(pb + OFF_MN + (size_t)p * QG_R + v * QG_L);
                    mn[v] = VI_OR(m1, VI_SLLI32(m1, 16));
                }
            }
            QG_UNROLL for (int a = 0; a < NA; a++) {
                const qg_vi x = VI_BC32(yb + a * as + 260 + 4 * p);
                QG_UNROLL for (int v = 0; v < QG_NV; v++) msum[a][v] = VI_DPWSSD(msum[a][v], mn[v], x);
            }
        }
        QG_UNROLL for (int v = 0; v < QG_NV; v++) {
            const qg_vf d = VF_LOAD((const float *)(const void *)(pb + OFF_D + v * QG_L * 4));
            const qg_vf dm = lut ? VF_MUL(d, VF_SET1(128.0f))
                                 : VF_LOAD((const float *)(const void *)(pb + OFF_D + (size_t)QG_R * 4 + v * QG_L * 4));
            QG_UNROLL for (int a = 0; a < NA; a++) {
                float yd;
                memcpy(&yd, yb + a * as, 4);
                const qg_vf da = VF_SET1(yd);
                acc[a][v] = VF_FMA(VF_CVT(isum[a][v]), VF_MUL(d, da), acc[a][v]);
                acc[a][v] = VF_FNMA(VF_CVT(msum[a][v]), VF_MUL(dm, da), acc[a][v]);
            }
        }
    }
    QG_UNROLL for (int a = 0; a < NA; a++) qg_store(Y + a * ldy, acc[a], nw);
}


/* ---- Q6_K on its stored bits (QK_PF_K6N) x Q8_K: per half of the block, records
 * j = 0..7 of ql bytes (A: bytes 4j.., B: 32 + 4j..) and of qh give the 4 values
 * 32t + 4j .. +3 (t = 0..3) of every row: A's low nibbles with qh bits 0-1 (t = 0),
 * B's low with bits 2-3, A's high with 4-5, B's high with 6-7, as unsigned 0..63.
 * Groups 0-3 are the even 16-element sub-blocks of each t, 4-7 the odd ones; the
 * -32 comes back as 32 * scale * the activation's 16-element sums. ---- */
QG_INLINE void qg_k6n_tile(int64_t nb, const uint8_t *panel, int nw, const uint8_t *A,
                           size_t as, const int NA, float *Y, int64_t ldy)
{
    const size_t BB = (size_t)QG_R * 212;
    const size_t OFF_SC = (size_t)QG_R * 192, OFF_D = (size_t)QG_R * 208;
    const qg_vi m4 = VI_SET1_8(0x0F), m30 = VI_SET1_8(0x30);
    qg_vf acc[QG_NA][QG_NV];
    QG_UNROLL for (int a = 0; a < NA; a++)
        QG_UNROLL for (int v = 0; v < QG_NV; v++) acc[a][v] = VF_ZERO();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + (size_t)b * BB;
        const uint8_t *yb = A + (size_t)b * 292;
        qg_prefetch_ahead(pb, BB);
        qg_vi isum[QG_NA][QG_NV];
        QG_UNROLL for (int a = 0; a < NA; a++)
            QG_UNROLL for (int v = 0; v < QG_NV; v++) isum[a][v] = VI_ZERO();
        for (int seg = 0; seg < 4; seg++) {   /* half h = seg / 2, odd sub-blocks when seg & 1 */
            const int h = seg >> 1, odd = seg & 1;
            qg_vi st[4][QG_NA][QG_NV];
            QG_UNROLL for (int t = 0; t < 4; t++)
                QG_UNROLL for (int a = 0; a < NA; a++)
                    QG_UNROLL for (int v = 0; v < QG_NV; v++) st[t][a][v] = VI_ZERO();
            QG_UNROLL for (int jj = 0; jj < 4; jj++) {
                const int j = 4 * odd + jj;
                const uint8_t *rec = pb + (size_t)(8 * h + j) * 3 * QG_R * 4;
                QG_UNROLL for (int v = 0; v < QG_NV; v++) {
                    const qg_vi qa = VI_LOAD(rec + (size_t)v * QG_L * 4);
                    const qg_vi qb = VI_LOAD(rec + ((size_t)QG_R + v * QG_L) * 4);
                    const qg_vi qh = VI_LOAD(rec + ((size_t)2 * QG_R + v * QG_L) * 4);
                    qg_vi w[4];
                    w[0] = VI_OR(VI_AND(qa, m4), VI_AND(VI_SLLI16(qh, 4), m30));
                    w[1] = VI_OR(VI_AND(qb, m4), VI_AND(VI_SLLI16(qh, 2), m30));
                    w[2] = VI_OR(VI_AND(VI_SRLI16(qa, 4), m4), VI_AND(qh, m30));
                    w[3] = VI_OR(VI_AND(VI_SRLI16(qb, 4), m4), VI_AND(VI_SRLI16(qh, 2), m30));
                    QG_UNROLL for (int a = 0; a < NA; a++) {
                        const uint8_t *yq = yb + 4 + a * as + 128 * h + 4 * j;
                        QG_UNROLL for (int t = 0; t < 4; t++)
                            st[t][a][v] = VI_DPBUSD(st[t][a][v], w[t], VI_BC32(yq + 32 * t));
                    }
                }
            }
            QG_UNROLL for (int v = 0; v < QG_NV; v++)
                QG_UNROLL for (int t = 0; t < 4; t++) {
                    const qg_vi sc = qg_i8x(pb + OFF_SC + (size_t)(8 * h + 2 * t + odd) * QG_R + v * QG_L);
                    QG_UNROLL for (int a = 0; a < NA; a++) isum[a][v] = VI_ADD(isum[a][v], VI_MULLO(st[t][a][v], sc));
                }
        }
        /* the offset: 32 * sum_s sc[s] * bsum[s], sub-blocks in pairs against the
         * activation's pairs of 16-element sums */
        QG_UNROLL for (int p = 0; p < 8; p++) {
            qg_vi o[QG_NV];
            QG_UNROLL for (int v = 0; v < QG_NV; v++) {
                const qg_vi s0 = qg_i8x(pb + OFF_SC + (size_t)(2 * p) * QG_R + v * QG_L);
                const qg_vi s1 = qg_i8x(pb + OFF_SC + (size_t)(2 * p + 1) * QG_R + v * QG_L);
                o[v] = VI_SLLI16(VI_OR(VI_AND(s0, VI_SET1_32(0xFFFF)), VI_SLLI32(s1, 16)), 5);
            }
            QG_UNROLL for (int a = 0; a < NA; a++) {
                const qg_vi x = VI_BC32(yb + a * as + 260 + 4 * p);
                QG_UNROLL for (int v = 0; v < QG_NV; v++) isum[a][v] = VI_SUB(isum[a][v], VI_MADD16(o[v], x));
            }
        }
        QG_UNROLL for (int v = 0; v < QG_NV; v++) {
            const qg_vf d = VF_LOAD((const float *)(const void *)(pb + OFF_D + v * QG_L * 4));
            QG_UNROLL for (int a = 0; a < NA; a++) {
                float yd;
                memcpy(&yd, yb + a * as, 4);
                acc[a][v] = VF_FMA(VF_CVT(isum[a][v]), VF_MUL(d, VF_SET1(yd)), acc[a][v]);
            }
        }
    }
    QG_UNROLL for (int a = 0; a < NA; a++) qg_store(Y + a * ldy, acc[a], nw);
}


#if QG_VNNI
/* ---- Q8_0 as stored (QK_PF_Q8N) x Q8_0, VNNI only: the activation bytes, offset by
 * 128 to unsigned, against the signed weights; the offset comes back as 128 times
 * each row's block sum (taken from the weights in the same pass, vpdpbusd of ones). ---- */
QG_INLINE void qg_q8n_tile(int64_t nb, const uint8_t *panel, int nw, const uint8_t *A,
                           size_t as, const int NA, float *Y, int64_t ldy)
{
    const size_t BB = (size_t)QG_R * 34, OFF_D = (size_t)QG_R * 32;
    const qg_vi ones = VI_SET1_8(1), x80 = VI_SET1_8((char)0x80);
    qg_vf acc[QG_NA][QG_NV];
    QG_UNROLL for (int a = 0; a < NA; a++)
        QG_UNROLL for (int v = 0; v < QG_NV; v++) acc[a][v] = VF_ZERO();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + (size_t)b * BB;
        const uint8_t *yb = A + (size_t)b * 34;
        if ((b & 3) == 0) qg_prefetch_ahead(pb + 2 * BB, 4 * BB);   /* 4 blocks, 8 ahead */
        qg_vi isum[QG_NA][QG_NV], wsum[QG_NV];
        QG_UNROLL for (int v = 0; v < QG_NV; v++) wsum[v] = VI_ZERO();
        QG_UNROLL for (int a = 0; a < NA; a++)
            QG_UNROLL for (int v = 0; v < QG_NV; v++) isum[a][v] = VI_ZERO();
        /* odd groups into second sums: twice the independent chains (one row is
         * latency-bound otherwise) */
        qg_vi isum1[QG_NA][QG_NV], wsum1[QG_NV];
        QG_UNROLL for (int v = 0; v < QG_NV; v++) wsum1[v] = VI_ZERO();
        QG_UNROLL for (int a = 0; a < NA; a++)
            QG_UNROLL for (int v = 0; v < QG_NV; v++) isum1[a][v] = VI_ZERO();
        QG_UNROLL for (int g = 0; g < 8; g++) {
            qg_vi w[QG_NV];
            QG_UNROLL for (int v = 0; v < QG_NV; v++) {
                w[v] = VI_LOAD(pb + ((size_t)g * QG_R + v * QG_L) * 4);
                if (g & 1) wsum1[v] = VI_DPBUSD(wsum1[v], ones, w[v]);
                else wsum[v] = VI_DPBUSD(wsum[v], ones, w[v]);
            }
            QG_UNROLL for (int a = 0; a < NA; a++) {
                const qg_vi xu = VI_XOR(VI_BC32(yb + a * as + 2 + 4 * g), x80);
                QG_UNROLL for (int v = 0; v < QG_NV; v++) {
                    if ((g & 1) && NA < 4) isum1[a][v] = VI_DPBUSD(isum1[a][v], xu, w[v]);
                    else isum[a][v] = VI_DPBUSD(isum[a][v], xu, w[v]);
                }
            }
        }
        QG_UNROLL for (int v = 0; v < QG_NV; v++) {
            wsum[v] = VI_ADD(wsum[v], wsum1[v]);
            QG_UNROLL for (int a = 0; a < NA; a++) isum[a][v] = VI_ADD(isum[a][v], isum1[a][v]);
        }
        QG_UNROLL for (int v = 0; v < QG_NV; v++) {
            const qg_vf dw = VF_LOAD_H(pb + OFF_D + (size_t)v * QG_L * 2);
            const qg_vi off = VI_SLLI32(wsum[v], 7);
            QG_UNROLL for (int a = 0; a < NA; a++) {
                uint16_t dh;
                memcpy(&dh, yb + a * as, 2);
                acc[a][v] = VF_FMA(VF_CVT(VI_SUB(isum[a][v], off)), VF_MUL(dw, VF_SET1(_cvtsh_ss(dh))), acc[a][v]);
            }
        }
    }
    QG_UNROLL for (int a = 0; a < NA; a++) qg_store(Y + a * ldy, acc[a], nw);
}

/* up to 8 activation rows a tile: the sums of one zmm panel fit with 8 (8 int + 8 float) */
#define QG_NA4N 8
/* ---- Q4_0 and IQ4_NL on their stored nibbles (QK_PF_Q4N) x Q8_0 with block sums
 * (QK_ACT_Q8S: f32 d, int32 sum of the 32 values, the values), VNNI only: group g of
 * a block holds its bytes 4g .. 4g+3 (low nibbles: values 4g.., high: 16 + 4g..). The
 * nibbles go into vpdpbusd as the unsigned side, through `lut` where the levels are not
 * the nibbles (IQ4_NL: level + 128); the offset (Q4_0: 8, IQ4_NL: 128, = 1 << sh) comes
 * back out as the activation block sum times it. ---- */
QG_INLINE void qg_q4n_tile(int64_t nb, const uint8_t *panel, int nw, const uint8_t *A,
                           size_t as, const int NA, float *Y, int64_t ldy, const uint8_t *lut, const int sh)
{
    const size_t BB = (size_t)QG_R * 18, OFF_D = (size_t)QG_R * 16;
    const qg_vi tab = lut ? VI_BC128(lut) : VI_ZERO();
    qg_vf acc[QG_NA4N][QG_NV];
    QG_UNROLL for (int a = 0; a < NA; a++)
        QG_UNROLL for (int v = 0; v < QG_NV; v++) acc[a][v] = VF_ZERO();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + (size_t)b * BB;
        const uint8_t *yb = A + (size_t)b * 40;
        if ((b & 7) == 0) qg_prefetch_ahead(pb, 8 * BB);   /* 8 blocks, 16 ahead */
        /* the sums start at minus the offset; with fewer than 4 activation rows the high
         * nibbles build up in sums of their own (2 dependency chains per row) */
        const bool split = NA < 4;
        qg_vi ilo[QG_NA4N][QG_NV], ihi[QG_NA4N][QG_NV];
        QG_UNROLL for (int a = 0; a < NA; a++) {
            int32_t xs;
            memcpy(&xs, yb + a * as + 4, 4);
            const qg_vi off = VI_SET1_32(-xs * (1 << sh));
            QG_UNROLL for (int v = 0; v < QG_NV; v++) {
                ilo[a][v] = off;
                ihi[a][v] = VI_ZERO();
            }
        }
        QG_UNROLL for (int g = 0; g < 4; g++) {
            qg_vi lo[QG_NV], hi[QG_NV];
            QG_UNROLL for (int v = 0; v < QG_NV; v++)
                qg_nibbles(pb + ((size_t)g * QG_R + v * QG_L) * 4, lut, tab, &lo[v], &hi[v]);
            QG_UNROLL for (int a = 0; a < NA; a++) {
                const qg_vi xl = VI_BC32(yb + a * as + 8 + 4 * g), xh = VI_BC32(yb + a * as + 24 + 4 * g);
                QG_UNROLL for (int v = 0; v < QG_NV; v++) {
                    ilo[a][v] = VI_DPBUSD(ilo[a][v], lo[v], xl);
                    if (split) ihi[a][v] = VI_DPBUSD(ihi[a][v], hi[v], xh);
                    else ilo[a][v] = VI_DPBUSD(ilo[a][v], hi[v], xh);
                }
            }
        }
        qg_vf dw[QG_NV];
        QG_UNROLL for (int v = 0; v < QG_NV; v++) dw[v] = VF_LOAD_H(pb + OFF_D + (size_t)v * QG_L * 2);
        QG_UNROLL for (int a = 0; a < NA; a++) {
            float dx1;
            memcpy(&dx1, yb + a * as, 4);
            const qg_vf dx = VF_SET1(dx1);
            QG_UNROLL for (int v = 0; v < QG_NV; v++) {
                const qg_vi is = split ? VI_ADD(ilo[a][v], ihi[a][v]) : ilo[a][v];
                acc[a][v] = VF_FMA(VF_CVT(is), VF_MUL(dw[v], dx), acc[a][v]);
            }
        }
    }
    QG_UNROLL for (int a = 0; a < NA; a++) qg_store(Y + a * ldy, acc[a], nw);
}
#endif

/* ---- drivers: all m activation rows, NA (<= 8) at a time, then the tail ---- */
#define QG_DRIVER_NA(name, call, NA)                                                   \
    __attribute__((unused)) static void QG_FN(name)(int64_t k, const void *panel, int nw, const void *A, \
                            size_t as, int64_t m, float *Y, int64_t ldy)               \
    {                                                                                  \
        const uint8_t *P = panel, *Ab = A;                                             \
        int64_t j = 0;                                                                 \
        for (; j + (NA) <= m; j += (NA)) call(NA);                                     \
        switch (m - j) {                                                               \
        case 7: if ((NA) > 7) { call(7 % (NA)); } break;                               \
        case 6: if ((NA) > 6) { call(6 % (NA)); } break;                               \
        case 5: if ((NA) > 5) { call(5 % (NA)); } break;                               \
        case 4: if ((NA) > 4) { call(4 % (NA)); } break;                               \
        case 3: call(3 % (NA)); break;                                                 \
        case 2: call(2 % (NA)); break;                                                 \
        case 1: call(1); break;                                                        \
        default: break;                                                                \
        }                                                                              \
    }
#define QG_DRIVER(name, call) QG_DRIVER_NA(name, call, QG_NA)

#define QG_CALL_Q8(na)  qg_q8_tile(k / 32, P, nw, Ab + (size_t)j * as, as, na, Y + j * ldy, ldy)
#define QG_CALL_Q8U(na) qg_q8u_tile(k / 32, P, nw, Ab + (size_t)j * as, as, na, Y + j * ldy, ldy)
#define QG_CALL_K32(na)  qg_k_tile(k / 256, P, nw, Ab + (size_t)j * as, as, na, Y + j * ldy, ldy, 0, 0)
#define QG_CALL_K32O(na) qg_k_tile(k / 256, P, nw, Ab + (size_t)j * as, as, na, Y + j * ldy, ldy, 0, 1)
#define QG_CALL_K16(na)  qg_k_tile(k / 256, P, nw, Ab + (size_t)j * as, as, na, Y + j * ldy, ldy, 1, 1)
#define QG_CALL_K16M(na) qg_k_tile(k / 256, P, nw, Ab + (size_t)j * as, as, na, Y + j * ldy, ldy, 1, 0)
#define QG_CALL_K4N(na) qg_k4n_tile(k / 256, P, nw, Ab + (size_t)j * as, as, na, Y + j * ldy, ldy, NULL)
#define QG_CALL_X4N(na) qg_k4n_tile(k / 256, P, nw, Ab + (size_t)j * as, as, na, Y + j * ldy, ldy, qg_lut_iq4nl_u)
#define QG_CALL_K6N(na) qg_k6n_tile(k / 256, P, nw, Ab + (size_t)j * as, as, na, Y + j * ldy, ldy)
#define QG_CALL_Q8N(na) qg_q8n_tile(k / 32, P, nw, Ab + (size_t)j * as, as, na, Y + j * ldy, ldy)
#define QG_CALL_Q40N(na) qg_q4n_tile(k / 32, P, nw, Ab + (size_t)j * as, as, na, Y + j * ldy, ldy, NULL, 3)
#define QG_CALL_IQ4N(na) qg_q4n_tile(k / 32, P, nw, Ab + (size_t)j * as, as, na, Y + j * ldy, ldy, qg_lut_iq4nl_u, 7)

QG_DRIVER(q8, QG_CALL_Q8)
QG_DRIVER(q8u, QG_CALL_Q8U)
QG_DRIVER(k32, QG_CALL_K32)
QG_DRIVER(k32o, QG_CALL_K32O)
QG_DRIVER(k16, QG_CALL_K16)
QG_DRIVER(k16m, QG_CALL_K16M)
QG_DRIVER(k4n, QG_CALL_K4N)
QG_DRIVER(x4n, QG_CALL_X4N)
QG_DRIVER(k6n, QG_CALL_K6N)
#if QG_VNNI
QG_DRIVER(q8n, QG_CALL_Q8N)
QG_DRIVER_NA(q40n, QG_CALL_Q40N, QG_NA4N)
QG_DRIVER_NA(iq4n, QG_CALL_IQ4N, QG_NA4N)
#endif

/* ================= packing (AVX2 instructions; any QG_L) ================= */

/* 8 rows x 8 dwords, transposed in place: afterwards r[g] holds dword g of
 * rows 0..7 (4 consecutive quants of each row, row q in lane q). */
QG_INLINE void qg_tr8(__m256i *r)
{
    __m256i t[8], u[8];
    for (int q = 0; q < 8; q += 2) {
        t[q] = _mm256_unpacklo_epi32(r[q], r[q + 1]);
        t[q + 1] = _mm256_unpackhi_epi32(r[q], r[q + 1]);
    }
    for (int q = 0; q < 8; q += 4) {
        u[q] = _mm256_unpacklo_epi64(t[q], t[q + 2]);
        u[q + 1] = _mm256_unpackhi_epi64(t[q], t[q + 2]);
        u[q + 2] = _mm256_unpacklo_epi64(t[q + 1], t[q + 3]);
        u[q + 3] = _mm256_unpackhi_epi64(t[q + 1], t[q + 3]);
    }
    for (int g = 0; g < 4; g++) {
        r[g] = _mm256_permute2x128_si256(u[g], u[g + 4], 0x20);
        r[g + 4] = _mm256_permute2x128_si256(u[g], u[g + 4], 0x31);
    }
}

/* 16 nibble bytes -> 32 bytes: the low nibbles, then the high ones */
QG_INLINE __m256i qg_nib32(const uint8_t *q)
{
    const __m128i t = _mm_loadu_si128((const __m128i *)(const void *)q);
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

/* bit j of the 32-bit word at p -> 0x10 in byte j */
QG_INLINE __m256i qg_bit4(const uint8_t *p)
{
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32(qg_rd32(p)), shuf);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(b, bit), bit), _mm256_set1_epi8(0x10));
}

/* one 32-element block as 32 bytes in element order */
QG_INLINE __m256i qg_dec32(const int wtype, const uint8_t *src)
{
    switch (wtype) {
    case QFIT_TYPE_Q4_0: return _mm256_sub_epi8(qg_nib32(src + 2), _mm256_set1_epi8(8));
    case QFIT_TYPE_Q5_0:
        return _mm256_sub_epi8(_mm256_or_si256(qg_nib32(src + 6), qg_bit4(src + 2)), _mm256_set1_epi8(16));
    case QFIT_TYPE_Q8_0: return _mm256_loadu_si256((const __m256i *)(const void *)(src + 2));
    case QFIT_TYPE_IQ4_NL: {
        const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)qfit_kvalues_iq4nl));
        return _mm256_shuffle_epi8(kv, qg_nib32(src + 2));
    }
    case QFIT_TYPE_MXFP4: {
        const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)qfit_kvalues_mxfp4));
        return _mm256_shuffle_epi8(kv, qg_nib32(src + 1));
    }
    case QFIT_TYPE_Q4_1: return qg_nib32(src + 4);
    default:   /* Q5_1 */
        return _mm256_or_si256(qg_nib32(src + 8), qg_bit4(src + 4));
    }
}

QG_INLINE size_t qg_type_size(const int wtype)
{
    switch (wtype) {
    case QFIT_TYPE_Q4_0: return sizeof(block_q4_0);
    case QFIT_TYPE_Q5_0: return sizeof(block_q5_0);
    case QFIT_TYPE_Q8_0: return sizeof(block_q8_0);
    case QFIT_TYPE_IQ4_NL: return sizeof(block_iq4_nl);
    case QFIT_TYPE_MXFP4: return sizeof(block_mxfp4);
    case QFIT_TYPE_Q4_1: return sizeof(block_q4_1);
    case QFIT_TYPE_Q5_1: return sizeof(block_q5_1);
    case QFIT_TYPE_Q4_K: return sizeof(block_q4_K);
    case QFIT_TYPE_Q5_K: return sizeof(block_q5_K);
    default: return sizeof(block_q6_K);
    }
}

/* 8 fp16 values (zero for missing rows) -> floats stored at dst */
QG_INLINE void qg_store_h8(uint8_t *dst, const uint16_t *h)
{
    _mm256_storeu_ps((float *)(void *)dst, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)h)));
}

/* The packers read 8 rows side by side in short runs (one block of each row),
 * which the hardware prefetcher does not follow: with the weights in DRAM,
 * packing was latency-bound and most of a small-batch matmul's time. While
 * packing block b of rows h..h+7, fetch the same bytes of the next panel
 * (`next`, NULL for the last panel): one panel ahead hides the latency. */
QG_INLINE void qg_prefetch_rows(const uint8_t *next, size_t ws, int h, int64_t b, size_t tsz)
{
    if (!next) return;
    const uint8_t *p = next + (size_t)h * ws + (size_t)b * tsz;
    for (int q = 0; q < 8; q++)
        for (size_t o = 0; o < tsz; o += 64) _mm_prefetch((const char *)(p + (size_t)q * ws + o), _MM_HINT_T0);
}

/* 32-element families: rows h..h+7 of the panel */
QG_INLINE void qg_pack32(const int wtype, int64_t k, const uint8_t *W, size_t ws, int nw, const uint8_t *next,
                         uint8_t *panel)
{
    const int64_t nb = k / 32;
    const size_t tsz = qg_type_size(wtype), BB = (size_t)QG_R * 40;
    const int sgn = wtype != QFIT_TYPE_Q4_1 && wtype != QFIT_TYPE_Q5_1;
    for (int h = 0; h < QG_R; h += 8) {
        const int nr = nw - h < 0 ? 0 : (nw - h > 8 ? 8 : nw - h);
        for (int64_t b = 0; b < nb; b++) {
            qg_prefetch_rows(next, ws, h, b, tsz);
            __m256i r[8];
            uint16_t dh[8], mh[8];
            float df[8];   /* MXFP4: the E8M0 scales (no fp16 scale to convert) */
            for (int q = 0; q < 8; q++) {
                if (q < nr) {
                    const uint8_t *src = W + (size_t)(h + q) * ws + (size_t)b * tsz;
                    r[q] = qg_dec32(wtype, src);
                    if (wtype == QFIT_TYPE_MXFP4) {
                        df[q] = qfit_e8m0_to_fp32_half(src[0]);
                    } else {
                        memcpy(&dh[q], src, 2);
                        memcpy(&mh[q], src + 2, 2);
                    }
                } else {
                    r[q] = _mm256_setzero_si256();
                    dh[q] = mh[q] = 0;
                    df[q] = 0.0f;
                }
            }
            qg_tr8(r);
            uint8_t *pb = panel + (size_t)b * BB;
            __m256i sum = _mm256_setzero_si256();
            for (int g = 0; g < 8; g++) {
                _mm256_storeu_si256((__m256i *)(void *)(pb + ((size_t)g * QG_R + h) * 4), r[g]);
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), r[g]),
                                                              _mm256_set1_epi16(1)));
            }
            if (sgn) {
                _mm256_storeu_si256((__m256i *)(void *)(pb + (size_t)QG_R * 32 + (size_t)h * 4), _mm256_slli_epi32(sum, 7));
                if (wtype == QFIT_TYPE_MXFP4)
                    _mm256_storeu_ps((float *)(void *)(pb + (size_t)QG_R * 36 + (size_t)h * 4), _mm256_loadu_ps(df));
                else
                    qg_store_h8(pb + (size_t)QG_R * 36 + (size_t)h * 4, dh);
            } else {
                qg_store_h8(pb + (size_t)QG_R * 32 + (size_t)h * 4, dh);
                qg_store_h8(pb + (size_t)QG_R * 36 + (size_t)h * 4, mh);
            }
        }
    }
}

/* K-quants: rows h..h+7 of the panel, one 256-element block at a time */
QG_INLINE void qg_packK(const int wtype, int64_t k, const uint8_t *W, size_t ws, int nw, const uint8_t *next,
                        uint8_t *panel)
{
    const int six = wtype == QFIT_TYPE_Q6_K, five = wtype == QFIT_TYPE_Q5_K;
    const int NS = six ? 16 : 8;
    const int64_t nb = k / QK_K;
    const size_t tsz = qg_type_size(wtype);
    const size_t BB = (size_t)QG_R * (256 + 4 * (size_t)NS + 32 + 8);
    const size_t OFF_SC = (size_t)QG_R * 256, OFF_MN = OFF_SC + (size_t)QG_R * 4 * NS;
    const size_t OFF_D = OFF_MN + (size_t)QG_R * 32;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    for (int h = 0; h < QG_R; h += 8) {
        const int nr = nw - h < 0 ? 0 : (nw - h > 8 ? 8 : nw - h);
        for (int64_t b = 0; b < nb; b++) {
            qg_prefetch_rows(next, ws, h, b, tsz);
            __m256i v[8][8];   /* [32-element chunk][row] */
            int32_t sc[16][8];
            int16_t mn[8][8][2];
            uint16_t dh[8], mh[8];
            memset(sc, 0, sizeof sc);
            memset(mn, 0, sizeof mn);
            for (int q = 0; q < 8; q++) {
                if (q >= nr) {
                    for (int e = 0; e < 8; e++) v[e][q] = _mm256_setzero_si256();
                    dh[q] = mh[q] = 0;
                    continue;
                }
                const uint8_t *src = W + (size_t)(h + q) * ws + (size_t)b * tsz;
                if (six) {
                    const block_q6_K *x = (const block_q6_K *)(const void *)src;
                    for (int hf = 0; hf < 2; hf++) {
                        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(const void *)(x->ql + 64 * hf));
                        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(const void *)(x->ql + 64 * hf + 32));
                        const __m256i hb = _mm256_loadu_si256((const __m256i *)(const void *)(x->qh + 32 * hf));
                        v[4 * hf + 0][q] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
                        v[4 * hf + 1][q] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
                        v[4 * hf + 2][q] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m30));
                        v[4 * hf + 3][q] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                                          _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
                    }
                    for (int j = 0; j < 16; j++) sc[j][q] = x->scales[j];
                    for (int p = 0; p < 8; p++) {
                        mn[p][q][0] = (int16_t)(32 * x->scales[2 * p]);
                        mn[p][q][1] = (int16_t)(32 * x->scales[2 * p + 1]);
                    }
                    memcpy(&dh[q], &x->d, 2);
                    mh[q] = 0;
                } else {
                    const uint8_t *scales = src + 4;
                    const uint8_t *q4 = src + 4 + K_SCALE_SIZE + (five ? QK_K / 8 : 0);
                    const __m256i hv = five ? _mm256_loadu_si256((const __m256i *)(const void *)(src + 4 + K_SCALE_SIZE))
                                            : _mm256_setzero_si256();
                    for (int c = 0; c < 4; c++) {
                        const __m256i qq = _mm256_loadu_si256((const __m256i *)(const void *)(q4 + 32 * c));
                        __m256i lo = _mm256_and_si256(qq, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qq, 4), m4);
                        if (five) {
                            const __m256i b0 = _mm256_set1_epi8((char)(1 << (2 * c))), b1 = _mm256_set1_epi8((char)(2 << (2 * c)));
                            const __m256i s10 = _mm256_set1_epi8(0x10);
                            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hv, b0), b0), s10));
                            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hv, b1), b1), s10));
                        }
                        v[2 * c][q] = lo;
                        v[2 * c + 1][q] = hi;
                    }
                    for (int j = 0; j < 8; j++) {
                        int s, m;
                        if (j < 4) {
                            s = scales[j] & 63;
                            m = scales[j + 4] & 63;
                        } else {
                            s = (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4);
                            m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
                        }
                        sc[j][q] = s;
                        mn[j][q][0] = mn[j][q][1] = (int16_t)m;
                    }
                    memcpy(&dh[q], src, 2);
                    memcpy(&mh[q], src + 2, 2);
                }
            }
            uint8_t *pb = panel + (size_t)b * BB;
            for (int e = 0; e < 8; e++) {
                qg_tr8(v[e]);
                for (int g = 0; g < 8; g++)
                    _mm256_storeu_si256((__m256i *)(void *)(pb + ((size_t)(8 * e + g) * QG_R + h) * 4), v[e][g]);
            }
            for (int j = 0; j < NS; j++)
                _mm256_storeu_si256((__m256i *)(void *)(pb + OFF_SC + ((size_t)j * QG_R + h) * 4),
                                    _mm256_loadu_si256((const __m256i *)(const void *)sc[j]));
            for (int p = 0; p < 8; p++)
                _mm256_storeu_si256((__m256i *)(void *)(pb + OFF_MN + ((size_t)p * QG_R + h) * 4),
                                    _mm256_loadu_si256((const __m256i *)(const void *)mn[p]));
            qg_store_h8(pb + OFF_D + (size_t)h * 4, dh);
            qg_store_h8(pb + OFF_D + (size_t)QG_R * 4 + (size_t)h * 4, mh);
        }
    }
}

/* Q4_K into QK_PF_K4N: rows h..h+7, the stored quant bytes transposed in
 * 4-byte groups (no decoding), the 6-bit scales and mins unpacked to bytes. */
QG_INLINE void qg_packK4N(const int wtype, int64_t k, const uint8_t *W, size_t ws, int nw, const uint8_t *next,
                          uint8_t *panel)
{
    (void)wtype;
    const int64_t nb = k / QK_K;
    const size_t tsz = sizeof(block_q4_K), BB = (size_t)QG_R * 152;
    const size_t OFF_SC = (size_t)QG_R * 128, OFF_MN = OFF_SC + (size_t)QG_R * 8;
    const size_t OFF_D = OFF_MN + (size_t)QG_R * 8;
    for (int h = 0; h < QG_R; h += 8) {
        const int nr = nw - h < 0 ? 0 : (nw - h > 8 ? 8 : nw - h);
        for (int64_t b = 0; b < nb; b++) {
            qg_prefetch_rows(next, ws, h, b, tsz);
            __m256i v[4][8];   /* [32-byte chunk][row] */
            uint8_t sm[8][16];  /* [row]: 8 scales, 8 mins */
            uint16_t dh[8], mh[8];
            for (int q = 0; q < 8; q++) {
                if (q >= nr) {
                    for (int e = 0; e < 4; e++) v[e][q] = _mm256_setzero_si256();
                    memset(sm[q], 0, 16);
                    dh[q] = mh[q] = 0;
                    continue;
                }
                const block_q4_K *x = (const block_q4_K *)(const void *)(W + (size_t)(h + q) * ws + (size_t)b * tsz);
                for (int e = 0; e < 4; e++) v[e][q] = _mm256_loadu_si256((const __m256i *)(const void *)(x->qs + 32 * e));
                uint32_t u[3];
                memcpy(u, x->scales, 12);
                const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
                const uint32_t w4[4] = {u[0] & m6, (u[2] & m4) | (((u[0] >> 6) & m2) << 4),
                                        u[1] & m6, ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4)};
                memcpy(sm[q], w4, 16);
                memcpy(&dh[q], &x->d, 2);
                memcpy(&mh[q], &x->dmin, 2);
            }
            uint8_t *pb = panel + (size_t)b * BB;
            for (int e = 0; e < 4; e++) {
                qg_tr8(v[e]);
                for (int g = 0; g < 8; g++)
                    _mm256_storeu_si256((__m256i *)(void *)(pb + ((size_t)(8 * e + g) * QG_R + h) * 4), v[e][g]);
            }
            for (int j = 0; j < 8; j++)
                for (int q = 0; q < 8; q++) {
                    pb[OFF_SC + (size_t)j * QG_R + h + q] = sm[q][j];
                    pb[OFF_MN + (size_t)j * QG_R + h + q] = sm[q][8 + j];
                }
            qg_store_h8(pb + OFF_D + (size_t)h * 4, dh);
            qg_store_h8(pb + OFF_D + (size_t)QG_R * 4 + (size_t)h * 4, mh);
        }
    }
}

/* IQ4_XS into QK_PF_X4N: rows h..h+7; each pair of sub-blocks re-nibbled into Q4_K's
 * order (byte l: value l of the even sub-block, low, and of the odd one, high), the
 * scales as signed bytes (6 bits - 32), d as float. */
QG_INLINE void qg_packX4N(const int wtype, int64_t k, const uint8_t *W, size_t ws, int nw, const uint8_t *next,
                          uint8_t *panel)
{
    (void)wtype;
    const int64_t nb = k / QK_K;
    const size_t tsz = sizeof(block_iq4_xs), BB = (size_t)QG_R * 140;
    const size_t OFF_SC = (size_t)QG_R * 128, OFF_D = OFF_SC + (size_t)QG_R * 8;
    for (int h = 0; h < QG_R; h += 8) {
        const int nr = nw - h < 0 ? 0 : (nw - h > 8 ? 8 : nw - h);
        for (int64_t b = 0; b < nb; b++) {
            qg_prefetch_rows(next, ws, h, b, tsz);
            __m256i v[4][8];   /* [pair of sub-blocks][row] */
            int8_t sc[8][8];   /* [row][sub-block] */
            uint16_t dh[8];
            for (int q = 0; q < 8; q++) {
                if (q >= nr) {
                    for (int e = 0; e < 4; e++) v[e][q] = _mm256_setzero_si256();
                    memset(sc[q], 0, 8);
                    dh[q] = 0;
                    continue;
                }
                const block_iq4_xs *x = (const block_iq4_xs *)(const void *)(W + (size_t)(h + q) * ws + (size_t)b * tsz);
                for (int e = 0; e < 4; e++)
                    v[e][q] = _mm256_or_si256(qg_nib32(x->qs + 32 * e), _mm256_slli_epi16(qg_nib32(x->qs + 32 * e + 16), 4));
                for (int j = 0; j < 8; j++)
                    sc[q][j] = (int8_t)((((x->scales_l[j / 2] >> (4 * (j & 1))) & 0x0F) | (((x->scales_h >> (2 * j)) & 3) << 4)) - 32);
                memcpy(&dh[q], &x->d, 2);
            }
            uint8_t *pb = panel + (size_t)b * BB;
            for (int e = 0; e < 4; e++) {
                qg_tr8(v[e]);
                for (int g = 0; g < 8; g++)
                    _mm256_storeu_si256((__m256i *)(void *)(pb + ((size_t)(8 * e + g) * QG_R + h) * 4), v[e][g]);
            }
            for (int j = 0; j < 8; j++)
                for (int q = 0; q < 8; q++) pb[OFF_SC + (size_t)j * QG_R + h + q] = (uint8_t)sc[q][j];
            qg_store_h8(pb + OFF_D + (size_t)h * 4, dh);
        }
    }
}

/* Q8_0 into QK_PF_Q8N, Q4_0 / IQ4_NL into QK_PF_Q4N: rows h..h+7, the quant bytes (32 or
 * 16, after the fp16 scale in all three blocks) transposed in 4-byte groups, the fp16
 * scales as they are. */
QG_INLINE void qg_packN32(const int wtype, int64_t k, const uint8_t *W, size_t ws, int nw, const uint8_t *next,
                          uint8_t *panel)
{
    const int nq = wtype == QFIT_TYPE_Q8_0 ? 32 : 16;   /* quant bytes per block */
    const int64_t nb = k / 32;
    const size_t tsz = qg_type_size(wtype), BB = (size_t)QG_R * (size_t)(nq + 2), OFF_D = (size_t)QG_R * (size_t)nq;
    for (int h = 0; h < QG_R; h += 8) {
        const int nr = nw - h < 0 ? 0 : (nw - h > 8 ? 8 : nw - h);
        for (int64_t b = 0; b < nb; b++) {
            qg_prefetch_rows(next, ws, h, b, tsz);
            __m256i v[8];
            uint16_t dh[8];
            for (int q = 0; q < 8; q++) {
                if (q >= nr) {
                    v[q] = _mm256_setzero_si256();
                    dh[q] = 0;
                    continue;
                }
                const uint8_t *x = W + (size_t)(h + q) * ws + (size_t)b * tsz;
                v[q] = nq == 32 ? _mm256_loadu_si256((const __m256i *)(const void *)(x + 2))
                                : _mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(x + 2)));
                memcpy(&dh[q], x, 2);
            }
            qg_tr8(v);
            uint8_t *pb = panel + (size_t)b * BB;
            for (int g = 0; g < nq / 4; g++) _mm256_storeu_si256((__m256i *)(void *)(pb + ((size_t)g * QG_R + h) * 4), v[g]);
            memcpy(pb + OFF_D + (size_t)h * 2, dh, 16);
        }
    }
}

/* Q6_K into QK_PF_K6N: rows h..h+7, ql and qh transposed in 4-byte groups (no
 * decoding) into the records the kernel reads in order, the scales as bytes, d as
 * float. */
QG_INLINE void qg_packK6N(const int wtype, int64_t k, const uint8_t *W, size_t ws, int nw, const uint8_t *next,
                          uint8_t *panel)
{
    (void)wtype;
    const int64_t nb = k / QK_K;
    const size_t tsz = sizeof(block_q6_K), BB = (size_t)QG_R * 212;
    const size_t OFF_SC = (size_t)QG_R * 192, OFF_D = (size_t)QG_R * 208;
    for (int h = 0; h < QG_R; h += 8) {
        const int nr = nw - h < 0 ? 0 : (nw - h > 8 ? 8 : nw - h);
        for (int64_t b = 0; b < nb; b++) {
            qg_prefetch_rows(next, ws, h, b, tsz);
            __m256i v[6][8];   /* [32-byte chunk: ql 0-3, qh 4-5][row] */
            int8_t sc[8][16];
            uint16_t dh[8];
            for (int q = 0; q < 8; q++) {
                if (q >= nr) {
                    for (int e = 0; e < 6; e++) v[e][q] = _mm256_setzero_si256();
                    memset(sc[q], 0, 16);
                    dh[q] = 0;
                    continue;
                }
                const block_q6_K *x = (const block_q6_K *)(const void *)(W + (size_t)(h + q) * ws + (size_t)b * tsz);
                for (int e = 0; e < 4; e++) v[e][q] = _mm256_loadu_si256((const __m256i *)(const void *)(x->ql + 32 * e));
                for (int e = 0; e < 2; e++)
                    v[4 + e][q] = _mm256_loadu_si256((const __m256i *)(const void *)(x->qh + 32 * e));
                memcpy(sc[q], x->scales, 16);
                memcpy(&dh[q], &x->d, 2);
            }
            uint8_t *pb = panel + (size_t)b * BB;
            for (int e = 0; e < 6; e++) qg_tr8(v[e]);
            /* chunk e, dword g: ql bytes 32e + 4g (half e / 2, A when e is even) or qh
             * bytes 32 (e - 4) + 4g (half e - 4) */
            for (int hh = 0; hh < 2; hh++)
                for (int j = 0; j < 8; j++) {
                    uint8_t *rec = pb + (size_t)(8 * hh + j) * 3 * QG_R * 4 + (size_t)h * 4;
                    _mm256_storeu_si256((__m256i *)(void *)rec, v[2 * hh][j]);
                    _mm256_storeu_si256((__m256i *)(void *)(rec + (size_t)QG_R * 4), v[2 * hh + 1][j]);
                    _mm256_storeu_si256((__m256i *)(void *)(rec + (size_t)2 * QG_R * 4), v[4 + hh][j]);
                }
            for (int j = 0; j < 16; j++)
                for (int q = 0; q < 8; q++) pb[OFF_SC + (size_t)j * QG_R + h + q] = (uint8_t)sc[q][j];
            qg_store_h8(pb + OFF_D + (size_t)h * 4, dh);
        }
    }
}

/* Q8_0 activation rows into QK_ACT_Q8S rows (kernels_internal.h): per block the scale as
 * f32, the sum of the 32 values (vpsadbw on the values offset to unsigned), the values */
__attribute__((unused)) static void QG_FN(act_q8s)(int64_t nb, const uint8_t *A, size_t as, int64_t m, uint8_t *B)
{
    const __m256i x80 = _mm256_set1_epi8((char)0x80);
    for (int64_t j = 0; j < m; j++) {
        const uint8_t *x = A + (size_t)j * as;
        uint8_t *y = B + (size_t)j * (size_t)nb * 40;
        for (int64_t b = 0; b < nb; b++, x += 34, y += 40) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(x + 2));
            const __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(v, x80), _mm256_setzero_si256());
            __m128i h = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
            h = _mm_add_epi64(h, _mm_unpackhi_epi64(h, h));
            const int32_t s = (int32_t)_mm_cvtsi128_si32(h) - 32 * 128;
            const float d = qg_h2f(x);
            memcpy(y, &d, 4);
            memcpy(y + 4, &s, 4);
            _mm256_storeu_si256((__m256i *)(void *)(y + 8), v);
        }
    }
}

#define QG_PACKER(name, body, ty)                                                        \
    __attribute__((unused)) static void QG_FN(name)(int64_t k, const void *W, size_t ws, int nw, \
                                                    const void *next, void *panel)       \
    {                                                                                    \
        body(ty, k, (const uint8_t *)W, ws, nw, (const uint8_t *)next, (uint8_t *)panel); \
    }
QG_PACKER(pack_q4_0, qg_pack32, QFIT_TYPE_Q4_0)
QG_PACKER(pack_q5_0, qg_pack32, QFIT_TYPE_Q5_0)
QG_PACKER(pack_q8_0, qg_pack32, QFIT_TYPE_Q8_0)
QG_PACKER(pack_iq4_nl, qg_pack32, QFIT_TYPE_IQ4_NL)
QG_PACKER(pack_mxfp4, qg_pack32, QFIT_TYPE_MXFP4)
QG_PACKER(pack_q4_1, qg_pack32, QFIT_TYPE_Q4_1)
QG_PACKER(pack_q5_1, qg_pack32, QFIT_TYPE_Q5_1)
QG_PACKER(pack_q4_K, qg_packK, QFIT_TYPE_Q4_K)
QG_PACKER(pack_q5_K, qg_packK, QFIT_TYPE_Q5_K)
QG_PACKER(pack_q6_K, qg_packK, QFIT_TYPE_Q6_K)
QG_PACKER(pack_q4_K_n, qg_packK4N, QFIT_TYPE_Q4_K)
QG_PACKER(pack_q6_K_n, qg_packK6N, QFIT_TYPE_Q6_K)
QG_PACKER(pack_q8_0_n, qg_packN32, QFIT_TYPE_Q8_0)
QG_PACKER(pack_q4_0_n, qg_packN32, QFIT_TYPE_Q4_0)
QG_PACKER(pack_iq4_nl_n, qg_packN32, QFIT_TYPE_IQ4_NL)
QG_PACKER(pack_iq4_xs_n, qg_packX4N, QFIT_TYPE_IQ4_XS)

/* ================= float types: register tile on the rows as stored =================
 * QG_FR weight rows x QG_FA activation rows of 8-float accumulators; each
 * weight and activation vector is converted once and used QG_FA / QG_FR times. */
#if QG_VNNI
#define QG_FR 4
#define QG_FA 4
#else
#define QG_FR 4
#define QG_FA 2
#endif

QG_INLINE __m256 qg_ld_f32(const void *p, int64_t i) { return _mm256_loadu_ps((const float *)p + i); }
QG_INLINE __m256 qg_ld_f16(const void *p, int64_t i)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)((const uint16_t *)p + i)));
}
QG_INLINE __m256 qg_ld_bf16(const void *p, int64_t i)   /* bf16 = the top half of an f32 */
{
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)((const uint16_t *)p + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
}
QG_INLINE float qg_el_f32(const void *p, int64_t i) { return ((const float *)p)[i]; }
QG_INLINE float qg_el_f16(const void *p, int64_t i) { return _cvtsh_ss(((const uint16_t *)p)[i]); }
QG_INLINE float qg_el_bf16(const void *p, int64_t i)
{
    const uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

QG_INLINE float qg_hsum8(__m256 v)
{
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

#define QG_FLOAT_TILE(sfx)                                                                       \
    QG_INLINE void qg_ftile_##sfx(int64_t k, const uint8_t *W, size_t ws, const int NR,          \
                                  const uint8_t *A, size_t as, const int NA, float *Y, int64_t ldy) \
    {                                                                                            \
        __m256 acc[QG_FA][QG_FR];                                                                \
        QG_UNROLL for (int a = 0; a < NA; a++)                                                   \
            QG_UNROLL for (int r = 0; r < NR; r++) acc[a][r] = _mm256_setzero_ps();              \
        int64_t i = 0;                                                                           \
        for (; i + 8 <= k; i += 8) {                                                             \
            __m256 w[QG_FR];                                                                     \
            QG_UNROLL for (int r = 0; r < NR; r++) w[r] = qg_ld_##sfx(W + r * ws, i);            \
            QG_UNROLL for (int a = 0; a < NA; a++) {                                             \
                const __m256 x = qg_ld_##sfx(A + a * as, i);                                     \
                QG_UNROLL for (int r = 0; r < NR; r++) acc[a][r] = _mm256_fmadd_ps(w[r], x, acc[a][r]); \
            }                                                                                    \
        }                                                                                        \
        QG_UNROLL for (int a = 0; a < NA; a++)                                                   \
            QG_UNROLL for (int r = 0; r < NR; r++) {                                             \
                float s = qg_hsum8(acc[a][r]);                                                   \
                for (int64_t t = i; t < k; t++)                                                  \
                    s += qg_el_##sfx(W + r * ws, t) * qg_el_##sfx(A + a * as, t);                \
                Y[a * ldy + r] = s;                                                              \
            }                                                                                    \
    }                                                                                            \
    QG_INLINE void qg_frows_##sfx(int64_t k, const uint8_t *W, size_t ws, const int NR,          \
                                  const uint8_t *A, size_t as, int64_t m, float *Y, int64_t ldy) \
    {                                                                                            \
        int64_t j = 0;                                                                           \
        for (; j + QG_FA <= m; j += QG_FA) qg_ftile_##sfx(k, W, ws, NR, A + j * as, as, QG_FA, Y + j * ldy, ldy); \
        for (; j < m; j++) qg_ftile_##sfx(k, W, ws, NR, A + j * as, as, 1, Y + j * ldy, ldy);   \
    }                                                                                            \
    __attribute__((unused)) static void QG_FN(direct_##sfx)(int64_t k, const void *W, size_t ws, int nw, \
                                    const void *A, size_t as, int64_t m, float *Y, int64_t ldy)  \
    {                                                                                            \
        const uint8_t *Wb = W, *Ab = A;                                                          \
        /* activation rows in chunks of about 512 KiB that stay in L2 */                         \
        int64_t jchunk = (int64_t)((512u * 1024u) / (as ? as : 1));                              \
        if (jchunk < QG_FA) jchunk = QG_FA;                                                      \
        for (int64_t jb = 0; jb < m; jb += jchunk) {                                             \
            const int64_t mm = jb + jchunk < m ? jchunk : m - jb;                                \
            int i = 0;                                                                           \
            for (; i + QG_FR <= nw; i += QG_FR)                                                  \
                qg_frows_##sfx(k, Wb + (size_t)i * ws, ws, QG_FR, Ab + (size_t)jb * as, as, mm, Y + jb * ldy + i, ldy); \
            for (; i < nw; i++)                                                                  \
                qg_frows_##sfx(k, Wb + (size_t)i * ws, ws, 1, Ab + (size_t)jb * as, as, mm, Y + jb * ldy + i, ldy); \
        }                                                                                        \
    }
QG_FLOAT_TILE(f32)
QG_FLOAT_TILE(f16)
QG_FLOAT_TILE(bf16)
