/* Attention row kernels, AVX2 + FMA + F16C (chosen at run time when the CPU has them). */
#include "model/attn.h"

#include <immintrin.h>
#include <string.h>

#include "quant/blocks.h"

static inline float hsum8(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

static float dot_f32(const float *q, const float *k, int n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(k + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), a0);
    float s = hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += q[i] * k[i];
    return s;
}

static float dot_f16(const float *q, const uint16_t *k, int n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 k0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i)));
        __m256 k1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i + 8)));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), k0, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), k1, a1);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i))), a0);
    float s = hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += q[i] * h2f(k[i]);
    return s;
}

/* 32 signed bytes x 32 signed bytes -> 8 int32 partial sums, as floats */
static inline __m256 dot32_i8(__m256i x, __m256i y)
{
    const __m256i ax = _mm256_sign_epi8(x, x);
    const __m256i sy = _mm256_sign_epi8(y, x);
    const __m256i p16 = _mm256_maddubs_epi16(ax, sy);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/* 16 bytes of packed nibbles -> 32 signed bytes in [-8, 7] (low nibbles first) */
static inline __m256i unpack_q4(const uint8_t *qs)
{
    const __m128i b = _mm_loadu_si128((const __m128i *)qs);
    const __m128i m = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_and_si128(b, m), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
    const __m256i v = _mm256_insertf128_si256(_mm256_castsi128_si256(lo), hi, 1);
    return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
}

static float dot_q8_0(const void *q8, const void *k, int n)
{
    const block_q8_0 *y = q8, *x = k;
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / 32; b++) {
        const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d));
        const __m256i xv = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const __m256i yv = _mm256_loadu_si256((const __m256i *)y[b].qs);
        acc = _mm256_fmadd_ps(d, dot32_i8(xv, yv), acc);
    }
    return hsum8(acc);
}

static float dot_q4_0(const void *q8, const void *k, int n)
{
    const block_q8_0 *y = q8;
    const block_q4_0 *x = k;
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / 32; b++) {
        const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d));
        const __m256i yv = _mm256_loadu_si256((const __m256i *)y[b].qs);
        acc = _mm256_fmadd_ps(d, dot32_i8(unpack_q4(x[b].qs), yv), acc);
    }
    return hsum8(acc);
}

static void mad_f32(float *acc, const float *v, float w, int n)
{
    const __m256 wv = _mm256_set1_ps(w);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(wv, _mm256_loadu_ps(v + i), _mm256_loadu_ps(acc + i)));
    for (; i < n; i++) acc[i] += w * v[i];
}

static void mad_f16(float *acc, const uint16_t *v, float w, int n)
{
    const __m256 wv = _mm256_set1_ps(w);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 vv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i)));
        _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(wv, vv, _mm256_loadu_ps(acc + i)));
    }
    for (; i < n; i++) acc[i] += w * h2f(v[i]);
}

/* acc[0..32) += dw * (32 signed bytes) */
static inline void mad32_i8(float *acc, __m256i q, float dw)
{
    const __m256 d = _mm256_set1_ps(dw);
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    const __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
    const __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
    const __m256 f2 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
    const __m256 f3 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
    _mm256_storeu_ps(acc + 0, _mm256_fmadd_ps(d, f0, _mm256_loadu_ps(acc + 0)));
    _mm256_storeu_ps(acc + 8, _mm256_fmadd_ps(d, f1, _mm256_loadu_ps(acc + 8)));
    _mm256_storeu_ps(acc + 16, _mm256_fmadd_ps(d, f2, _mm256_loadu_ps(acc + 16)));
    _mm256_storeu_ps(acc + 24, _mm256_fmadd_ps(d, f3, _mm256_loadu_ps(acc + 24)));
}

static void mad_q8_0(float *acc, const void *v, float w, int n)
{
    const block_q8_0 *x = v;
    for (int b = 0; b < n / 32; b++)
        mad32_i8(acc + 32 * b, _mm256_loadu_si256((const __m256i *)x[b].qs), w * h2f(x[b].d));
}

static void mad_q4_0(float *acc, const void *v, float w, int n)
{
    const block_q4_0 *x = v;
    for (int b = 0; b < n / 32; b++) mad32_i8(acc + 32 * b, unpack_q4(x[b].qs), w * h2f(x[b].d));
}

static void scale(float *acc, float s, int n)
{
    const __m256 sv = _mm256_set1_ps(s);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(acc + i, _mm256_mul_ps(sv, _mm256_loadu_ps(acc + i)));
    for (; i < n; i++) acc[i] *= s;
}

const qfit_attn_kernels qfit_attn_kernels_avx2 = {
    dot_f32, dot_f16, dot_q8_0, dot_q4_0, mad_f32, mad_f16, mad_q8_0, mad_q4_0, scale,
};
