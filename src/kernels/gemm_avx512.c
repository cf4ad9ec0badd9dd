/* AVX-512 gemm kernels for the float types (compiled with the AVX-512 flags); the
 * quantized types' panels are gemm_zmm_avx512.c's (qk_fill_gemm_avx512_zmm). */
#include <immintrin.h>
#include <string.h>
#include "kernels/kernels_internal.h"

#define Z_STR2(x) #x
#ifdef __clang__
#define Z_UNROLL _Pragma(Z_STR2(clang loop unroll(full)))
#else
#define Z_UNROLL _Pragma(Z_STR2(GCC unroll 16))
#endif

/* Float weights on 512-bit tiles, on the rows as stored: 4 weight rows x 4 activation
 * rows of 16-lane f32 sums, the tail of k by masked loads (no scalar tail). F32 and F16
 * multiply-add in f32 (F16, and BF16 without AVX512_BF16: both sides converted on load); BF16, where the CPU has
 * AVX512_BF16, on vdpbf16ps: 32 bf16 pairs into 16 f32 sums an instruction. The
 * activations are BF16's vec-dot type (bf16, as ggml), and each product of two bf16
 * values is exact in f32, so only the order of the sums differs from the f32 tile.
 * Against the 256-bit tile (QG_FLOAT_TILE) half the instructions for the same
 * multiply-adds. */
#define ZR 4
#define ZA 4
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define Z_NOTARGET

/* name: f32 / f16 / bf16dp; STEP elements a step, VT the loaded vector type, LD(p, i,
 * mask) the load of STEP elements from element i, MADD(acc, w, x) */
#define Z_FLOAT_TILE(name, TARGET, STEP, VT, LD, MADD)                                            \
    TARGET static inline __attribute__((always_inline)) void zt_##name(int64_t k, const uint8_t *W, size_t ws, const int NR, \
                                        const uint8_t *A, size_t as, const int NA, float *Y,     \
                                        int64_t ldy)                                             \
    {                                                                                            \
        __m512 acc[ZA][ZR];                                                                      \
        Z_UNROLL for (int a = 0; a < NA; a++)                                                   \
            Z_UNROLL for (int r = 0; r < NR; r++) acc[a][r] = _mm512_setzero_ps();              \
        for (int64_t i = 0; i < k; i += STEP) {                                                  \
            const uint32_t m = k - i >= STEP ? (uint32_t)((1ull << STEP) - 1) : (uint32_t)((1ull << (k - i)) - 1); \
            VT w[ZR];                                                                            \
            Z_UNROLL for (int r = 0; r < NR; r++) w[r] = LD(W + r * ws, i, m);                  \
            Z_UNROLL for (int a = 0; a < NA; a++) {                                             \
                const VT x = LD(A + a * as, i, m);                                               \
                Z_UNROLL for (int r = 0; r < NR; r++) acc[a][r] = MADD(acc[a][r], w[r], x);     \
            }                                                                                    \
        }                                                                                        \
        Z_UNROLL for (int a = 0; a < NA; a++)                                                   \
            Z_UNROLL for (int r = 0; r < NR; r++) Y[a * ldy + r] = _mm512_reduce_add_ps(acc[a][r]); \
    }                                                                                            \
    TARGET __attribute__((unused)) static void g5_direct_##name(int64_t k, const void *W, size_t ws, int nw, const void *A, \
                                         size_t as, int64_t m, float *Y, int64_t ldy)            \
    {                                                                                            \
        const uint8_t *Wb = W, *Ab = A;                                                          \
        /* activation rows in chunks of about 512 KiB that stay in L2 */                         \
        int64_t jchunk = (int64_t)((512u * 1024u) / (as ? as : 1));                              \
        if (jchunk < ZA) jchunk = ZA;                                                            \
        for (int64_t jb = 0; jb < m; jb += jchunk) {                                             \
            const int64_t mm = jb + jchunk < m ? jchunk : m - jb;                                \
            for (int i = 0; i < nw; ) {                                                          \
                const int nr = nw - i >= ZR ? ZR : 1;                                            \
                int64_t j = 0;                                                                   \
                for (; j + ZA <= mm; j += ZA) {                                                  \
                    if (nr == ZR) zt_##name(k, Wb + (size_t)i * ws, ws, ZR, Ab + (size_t)(jb + j) * as, as, ZA, \
                                            Y + (jb + j) * ldy + i, ldy);                        \
                    else zt_##name(k, Wb + (size_t)i * ws, ws, 1, Ab + (size_t)(jb + j) * as, as, ZA, \
                                   Y + (jb + j) * ldy + i, ldy);                                 \
                }                                                                                \
                for (; j < mm; j++) {                                                            \
                    if (nr == ZR) zt_##name(k, Wb + (size_t)i * ws, ws, ZR, Ab + (size_t)(jb + j) * as, as, 1, \
                                            Y + (jb + j) * ldy + i, ldy);                        \
                    else zt_##name(k, Wb + (size_t)i * ws, ws, 1, Ab + (size_t)(jb + j) * as, as, 1, \
                                   Y + (jb + j) * ldy + i, ldy);                                 \
                }                                                                                \
                i += nr;                                                                         \
            }                                                                                    \
        }                                                                                        \
    }

static inline __m512 zl_f32(const uint8_t *p, int64_t i, uint32_t m)
{
    return _mm512_maskz_loadu_ps((__mmask16)m, (const float *)(const void *)p + i);
}
static inline __m512 zl_f16(const uint8_t *p, int64_t i, uint32_t m)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16((__mmask16)m, (const uint16_t *)(const void *)p + i));
}
BF16_TARGET static inline __m512bh zl_bf16(const uint8_t *p, int64_t i, uint32_t m)
{
    return (__m512bh)_mm512_maskz_loadu_epi16((__mmask32)m, (const void *)((const uint16_t *)(const void *)p + i));
}
static inline __m512 zl_bf16f(const uint8_t *p, int64_t i, uint32_t m)   /* bf16 = the top half of an f32 */
{
    const __m512i h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16((__mmask16)m, (const uint16_t *)(const void *)p + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
}
#define Z_FMA(acc, w, x) _mm512_fmadd_ps(w, x, acc)
#define Z_DPBF16(acc, w, x) _mm512_dpbf16_ps(acc, w, x)

Z_FLOAT_TILE(f32, Z_NOTARGET, 16, __m512, zl_f32, Z_FMA)
Z_FLOAT_TILE(f16, Z_NOTARGET, 16, __m512, zl_f16, Z_FMA)
Z_FLOAT_TILE(bf16dp, BF16_TARGET, 32, __m512bh, zl_bf16, Z_DPBF16)
Z_FLOAT_TILE(bf16, Z_NOTARGET, 16, __m512, zl_bf16f, Z_FMA)   /* no AVX512_BF16: converted, f32 FMAs */

void qk_fill_gemm_avx512(qk_table *t, int bf16)
{
    t->panel[QFIT_TYPE_F32] = (qk_panel){NULL, NULL, 0, 2, g5_direct_f32, -1, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_F16] = (qk_panel){NULL, NULL, 0, 2, g5_direct_f16, -1, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_BF16] = (qk_panel){NULL, NULL, 0, 2,
                                          bf16 ? g5_direct_bf16dp : g5_direct_bf16, -1, 0, QK_ACT_ROWS};
}
