/* Row kernels (qfit_row_kernels in qfit/kernels.h), AVX2 + FMA + F16C: chosen at run
 * time when the CPU has them. */
#include "qfit/kernels.h"
#include "kernels/kernels_internal.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "qfit/quant.h"
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

/* ------------------------------------------------ vector exp and SwiGLU */

/* e^x for 8 lanes: x = n ln2 + r with n = round(x / ln2) and |r| <= ln2 / 2,
 * e^r by its degree-6 Taylor polynomial (relative error ~1e-7), 2^n added to the
 * exponent bits. Inputs are clamped to [-87.3, 88.3] (no denormals, no inf). */
static inline __m256 exp8(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);       /* ln2, high part */
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);           /* ln2, low part */
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
}

static void qfit_swiglu_avx2(float *g, const float *u, int64_t n)
{
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, exp8(_mm256_sub_ps(zero, x))));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void qfit_exp_sub_avx2(float *x, float m, int n)
{
    int i = 0;
    const __m256 mv = _mm256_set1_ps(m);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv)));
    for (; i < n; i++) x[i] = expf(x[i] - m);
}

/* One cached row (n elements of a KV cache type) to f32: f16, q8_0 and q4_0
 * vectorized, the other types through the reference dequantizer. */
static inline __attribute__((always_inline)) void kv_row_to_f32(int type, const uint8_t *src, float *dst, int n)
{
    if (type == QFIT_TYPE_F16) {
        const uint16_t *h = (const uint16_t *)src;
        for (int d = 0; d < n; d += 8)
            _mm256_storeu_ps(dst + d, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + d))));
    } else if (type == QFIT_TYPE_Q8_0) {
        const block_q8_0 *x = (const block_q8_0 *)src;
        for (int b = 0; b < n / 32; b++) {
            const __m256 dv = _mm256_set1_ps(h2f(x[b].d));
            for (int k = 0; k < 32; k += 8) {
                const __m256i i32 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[b].qs + k)));
                _mm256_storeu_ps(dst + 32 * b + k, _mm256_mul_ps(dv, _mm256_cvtepi32_ps(i32)));
            }
        }
    } else if (type == QFIT_TYPE_Q4_0) {
        const block_q4_0 *x = (const block_q4_0 *)src;
        for (int b = 0; b < n / 32; b++) {
            const __m256 dv = _mm256_set1_ps(h2f(x[b].d));
            const __m256i v = unpack_q4(x[b].qs);
            const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
            float *o = dst + 32 * b;
            _mm256_storeu_ps(o, _mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
            _mm256_storeu_ps(o + 8, _mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
            _mm256_storeu_ps(o + 16, _mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
            _mm256_storeu_ps(o + 24, _mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
        }
    } else {
        qfit_rows_to_float(type, src, dst, 1, n);
    }
}

/* ------------------------------------------- up to 4 rows (a decoding GQA group) */

/* 1 to 4 query rows against one KV head: scores as 4 dot products per position,
 * lanes along the head dimension (the query pre-scaled, the K/V tile converted to
 * f32), the softmax lane-wise on st[t] = the rows' scores of position t0 + t. Float
 * sums in another order than the per-row path. */
/* Four rows' outputs at columns d .. d + 15 (or d .. d + 7 at the end of an hdv that is 8
 * mod 16): each rescaled by its a, then the tile's nt weighted value rows added, row r's
 * weight of value row i at pw0[i * pstride + r], in order */
static inline __attribute__((always_inline)) void mad_rows4(float *ou0, float *ou1, float *ou2, float *ou3, __m256 a0,
                                                            __m256 a1, __m256 a2, __m256 a3, const float *vf, int hdv,
                                                            int d, int nt, const float *pw0, size_t pstride)
{
    if (d + 16 <= hdv) {
        __m256 o00 = _mm256_mul_ps(a0, _mm256_loadu_ps(ou0 + d)), o01 = _mm256_mul_ps(a0, _mm256_loadu_ps(ou0 + d + 8));
        __m256 o10 = _mm256_mul_ps(a1, _mm256_loadu_ps(ou1 + d)), o11 = _mm256_mul_ps(a1, _mm256_loadu_ps(ou1 + d + 8));
        __m256 o20 = _mm256_mul_ps(a2, _mm256_loadu_ps(ou2 + d)), o21 = _mm256_mul_ps(a2, _mm256_loadu_ps(ou2 + d + 8));
        __m256 o30 = _mm256_mul_ps(a3, _mm256_loadu_ps(ou3 + d)), o31 = _mm256_mul_ps(a3, _mm256_loadu_ps(ou3 + d + 8));
        for (int i = 0; i < nt; i++) {
            const float *vr = vf + (size_t)i * hdv + d, *pw = pw0 + (size_t)i * pstride;
            const __m256 va = _mm256_loadu_ps(vr), vb = _mm256_loadu_ps(vr + 8);
            __m256 p = _mm256_broadcast_ss(pw);
            o00 = _mm256_fmadd_ps(p, va, o00);
            o01 = _mm256_fmadd_ps(p, vb, o01);
            p = _mm256_broadcast_ss(pw + 1);
            o10 = _mm256_fmadd_ps(p, va, o10);
            o11 = _mm256_fmadd_ps(p, vb, o11);
            p = _mm256_broadcast_ss(pw + 2);
            o20 = _mm256_fmadd_ps(p, va, o20);
            o21 = _mm256_fmadd_ps(p, vb, o21);
            p = _mm256_broadcast_ss(pw + 3);
            o30 = _mm256_fmadd_ps(p, va, o30);
            o31 = _mm256_fmadd_ps(p, vb, o31);
        }
        _mm256_storeu_ps(ou0 + d, o00); _mm256_storeu_ps(ou0 + d + 8, o01);
        _mm256_storeu_ps(ou1 + d, o10); _mm256_storeu_ps(ou1 + d + 8, o11);
        _mm256_storeu_ps(ou2 + d, o20); _mm256_storeu_ps(ou2 + d + 8, o21);
        _mm256_storeu_ps(ou3 + d, o30); _mm256_storeu_ps(ou3 + d + 8, o31);
    } else {   /* the last 8 columns when hdv % 16 == 8 */
        __m256 o0 = _mm256_mul_ps(a0, _mm256_loadu_ps(ou0 + d)), o1 = _mm256_mul_ps(a1, _mm256_loadu_ps(ou1 + d));
        __m256 o2 = _mm256_mul_ps(a2, _mm256_loadu_ps(ou2 + d)), o3 = _mm256_mul_ps(a3, _mm256_loadu_ps(ou3 + d));
        for (int i = 0; i < nt; i++) {
            const float *pw = pw0 + (size_t)i * pstride;
            const __m256 va = _mm256_loadu_ps(vf + (size_t)i * hdv + d);
            o0 = _mm256_fmadd_ps(_mm256_broadcast_ss(pw), va, o0);
            o1 = _mm256_fmadd_ps(_mm256_broadcast_ss(pw + 1), va, o1);
            o2 = _mm256_fmadd_ps(_mm256_broadcast_ss(pw + 2), va, o2);
            o3 = _mm256_fmadd_ps(_mm256_broadcast_ss(pw + 3), va, o3);
        }
        _mm256_storeu_ps(ou0 + d, o0); _mm256_storeu_ps(ou1 + d, o1);
        _mm256_storeu_ps(ou2 + d, o2); _mm256_storeu_ps(ou3 + d, o3);
    }
}

/* The end of a block of rows: each row's running max and sum into ml (a split range's
 * partial result, merged by the caller), or its output divided by its sum */
static void rows_finish(__m256 L, __m256 M, int nrows, int hdv, float *const *out, float *ml)
{
    float lf[8];
    _mm256_storeu_ps(lf, L);
    if (ml) {
        float mf[8];
        _mm256_storeu_ps(mf, M);
        for (int r = 0; r < nrows; r++) {
            ml[2 * r] = mf[r];
            ml[2 * r + 1] = lf[r];
        }
        return;
    }
    for (int r = 0; r < nrows; r++) {
        const __m256 inv = _mm256_set1_ps(1.0f / lf[r]);
        for (int d = 0; d < hdv; d += 8) _mm256_storeu_ps(out[r] + d, _mm256_mul_ps(inv, _mm256_loadu_ps(out[r] + d)));
    }
}

static void attn4(int type_k, int type_v, int hdk, int hdv, int nrows, const float *const *q, int p_begin,
                  const int *npos, float scale, const uint8_t *k0, size_t k_stride, const uint8_t *v0,
                  size_t v_stride, float *const *out, float *ml, float *scratch)
{
    enum { T = 64 };
    float *qt = scratch;                       /* [4][hdk] query, scaled */
    float *kf = qt + (size_t)hdk * 8;          /* [T][hdk] key tile in f32 */
    float *st = kf + (size_t)T * hdk;          /* [T][8] scores / weights, transposed */
    float *vf = st + (size_t)T * 8;            /* [T][hdv] value tile in f32 */
    const size_t krow_bytes = qfit_row_size(type_k, hdk), vrow_bytes = qfit_row_size(type_v, hdv);
    for (int r = 0; r < 4; r++)   /* qt = the 4 query rows, scaled */
        for (int d = 0; d < hdk; d++) qt[r * hdk + d] = q[r][d] * scale;
    int maxpos = 0;
    for (int r = 0; r < 8; r++) {
        if (npos[r] > maxpos) maxpos = npos[r];
        memset(out[r], 0, (size_t)hdv * sizeof(float));
    }
    const __m256i np = _mm256_loadu_si256((const __m256i *)npos);
    __m256 M = _mm256_set1_ps(-INFINITY), L = _mm256_setzero_ps();
    for (int t0 = p_begin; t0 < maxpos; t0 += T) {
        const int nt = maxpos - t0 < T ? maxpos - t0 : T;
        /* the tile's K and V rows to f32; meanwhile the next tile's rows are
         * fetched (cache rows are k_stride apart: a strided walk the hardware
         * prefetchers follow too late when decoding, which is latency-bound) */
        const int tn = t0 + T < maxpos ? (maxpos - t0 - T < T ? maxpos - t0 - T : T) : 0;
        for (int t = 0; t < nt; t++) {
            if (t < tn) {
                const char *kp = (const char *)(k0 + (size_t)(t0 + T + t) * k_stride);
                const char *vp = (const char *)(v0 + (size_t)(t0 + T + t) * v_stride);
                for (size_t o = 0; o < krow_bytes; o += 64) _mm_prefetch(kp + o, _MM_HINT_T0);
                for (size_t o = 0; o < vrow_bytes; o += 64) _mm_prefetch(vp + o, _MM_HINT_T0);
            }
            kv_row_to_f32(type_k, k0 + (size_t)(t0 + t) * k_stride, kf + (size_t)t * hdk, hdk);
            kv_row_to_f32(type_v, v0 + (size_t)(t0 + t) * v_stride, vf + (size_t)t * hdv, hdv);
        }
        __m256 tmax = _mm256_set1_ps(-INFINITY);
        if (nrows <= 2) {
            /* two rows (a GQA pair): the four-row form without its two idle rows, the
             * same sums in the same order (lanes 0 and 1 of the four-row reduction) */
            const float *q_0 = qt, *q_1 = qt + hdk;
            for (int t = 0; t < nt; t++) {
                __m256 a0 = _mm256_setzero_ps(), a1 = a0;
                const float *kr = kf + (size_t)t * hdk;
                for (int d = 0; d < hdk; d += 8) {
                    const __m256 kv = _mm256_loadu_ps(kr + d);
                    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q_0 + d), kv, a0);
                    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q_1 + d), kv, a1);
                }
                const __m256 h01 = _mm256_hadd_ps(a0, a1);
                const __m256 h = _mm256_hadd_ps(h01, h01);
                const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
                const __m128 s2 = _mm_blend_ps(_mm_set1_ps(-INFINITY), s4, 0x3);   /* lanes 2, 3: no rows */
                const __m256 sc = _mm256_insertf128_ps(_mm256_set1_ps(-INFINITY), s2, 0);
                const __m256i pos = _mm256_set1_epi32(t0 + t);
                const __m256 vis = _mm256_castsi256_ps(_mm256_cmpgt_epi32(np, pos));
                const __m256 sv = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), sc, vis);
                _mm256_storeu_ps(st + (size_t)t * 8, sv);
                tmax = _mm256_max_ps(tmax, sv);
            }
        } else {
            const float *q_0 = qt, *q_1 = qt + hdk, *q_2 = qt + 2 * (size_t)hdk, *q_3 = qt + 3 * (size_t)hdk;
            for (int t = 0; t < nt; t++) {
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                const float *kr = kf + (size_t)t * hdk;
                for (int d = 0; d < hdk; d += 8) {
                    const __m256 kv = _mm256_loadu_ps(kr + d);
                    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q_0 + d), kv, a0);
                    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q_1 + d), kv, a1);
                    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q_2 + d), kv, a2);
                    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q_3 + d), kv, a3);
                }
                /* the 4 sums into lanes 0..3; lanes 4..7 (no rows) -inf */
                const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
                const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
                const __m256 sc = _mm256_insertf128_ps(_mm256_set1_ps(-INFINITY), s4, 0);
                const __m256i pos = _mm256_set1_epi32(t0 + t);
                const __m256 vis = _mm256_castsi256_ps(_mm256_cmpgt_epi32(np, pos));
                const __m256 sv = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), sc, vis);
                _mm256_storeu_ps(st + (size_t)t * 8, sv);
                tmax = _mm256_max_ps(tmax, sv);
            }
        }
        const __m256 Mn = _mm256_max_ps(M, tmax);
        /* rows whose max did not change keep alpha = 1; M = -inf only before the first tile */
        const __m256 alpha = exp8(_mm256_sub_ps(M, Mn));
        const __m256 first = _mm256_cmp_ps(M, _mm256_set1_ps(-INFINITY), _CMP_EQ_OQ);
        const __m256 al = _mm256_blendv_ps(alpha, _mm256_setzero_ps(), first);
        M = Mn;
        __m256 lsum = _mm256_setzero_ps();
        for (int i = 0; i < nt; i++) {
            const __m256 sv = _mm256_loadu_ps(st + (size_t)i * 8);
            const __m256 vis = _mm256_cmp_ps(sv, _mm256_set1_ps(-INFINITY), _CMP_NEQ_OQ);
            const __m256 p = _mm256_and_ps(exp8(_mm256_sub_ps(sv, Mn)), vis);
            _mm256_storeu_ps(st + (size_t)i * 8, p);
            lsum = _mm256_add_ps(lsum, p);
        }
        L = _mm256_fmadd_ps(L, al, lsum);
        float alf[8];
        _mm256_storeu_ps(alf, al);
        /* out[r] = alpha[r] * out[r] + sum_t p[t][r] * V[t]: 4 rows x 16 columns per pass
         * (two rows: 2 x 32) */
        if (nrows <= 2) {
            const __m256 a0 = _mm256_set1_ps(alf[0]), a1 = _mm256_set1_ps(alf[1]);
            float *ou0 = out[0], *ou1 = out[1];
            int d = 0;
            for (; d + 32 <= hdv; d += 32) {
                __m256 o00 = _mm256_mul_ps(a0, _mm256_loadu_ps(ou0 + d)), o01 = _mm256_mul_ps(a0, _mm256_loadu_ps(ou0 + d + 8));
                __m256 o02 = _mm256_mul_ps(a0, _mm256_loadu_ps(ou0 + d + 16)), o03 = _mm256_mul_ps(a0, _mm256_loadu_ps(ou0 + d + 24));
                __m256 o10 = _mm256_mul_ps(a1, _mm256_loadu_ps(ou1 + d)), o11 = _mm256_mul_ps(a1, _mm256_loadu_ps(ou1 + d + 8));
                __m256 o12 = _mm256_mul_ps(a1, _mm256_loadu_ps(ou1 + d + 16)), o13 = _mm256_mul_ps(a1, _mm256_loadu_ps(ou1 + d + 24));
                for (int i = 0; i < nt; i++) {
                    const float *vr = vf + (size_t)i * hdv + d, *pw = st + (size_t)i * 8;
                    const __m256 p0 = _mm256_broadcast_ss(pw), p1 = _mm256_broadcast_ss(pw + 1);
                    const __m256 va = _mm256_loadu_ps(vr), vb = _mm256_loadu_ps(vr + 8);
                    const __m256 vc = _mm256_loadu_ps(vr + 16), vd = _mm256_loadu_ps(vr + 24);
                    o00 = _mm256_fmadd_ps(p0, va, o00);
                    o01 = _mm256_fmadd_ps(p0, vb, o01);
                    o02 = _mm256_fmadd_ps(p0, vc, o02);
                    o03 = _mm256_fmadd_ps(p0, vd, o03);
                    o10 = _mm256_fmadd_ps(p1, va, o10);
                    o11 = _mm256_fmadd_ps(p1, vb, o11);
                    o12 = _mm256_fmadd_ps(p1, vc, o12);
                    o13 = _mm256_fmadd_ps(p1, vd, o13);
                }
                _mm256_storeu_ps(ou0 + d, o00); _mm256_storeu_ps(ou0 + d + 8, o01);
                _mm256_storeu_ps(ou0 + d + 16, o02); _mm256_storeu_ps(ou0 + d + 24, o03);
                _mm256_storeu_ps(ou1 + d, o10); _mm256_storeu_ps(ou1 + d + 8, o11);
                _mm256_storeu_ps(ou1 + d + 16, o12); _mm256_storeu_ps(ou1 + d + 24, o13);
            }
            for (; d < hdv; d += 8) {   /* hdv % 32: 8 columns at a time */
                __m256 o0 = _mm256_mul_ps(a0, _mm256_loadu_ps(ou0 + d)), o1 = _mm256_mul_ps(a1, _mm256_loadu_ps(ou1 + d));
                for (int i = 0; i < nt; i++) {
                    const float *pw = st + (size_t)i * 8;
                    const __m256 va = _mm256_loadu_ps(vf + (size_t)i * hdv + d);
                    o0 = _mm256_fmadd_ps(_mm256_broadcast_ss(pw), va, o0);
                    o1 = _mm256_fmadd_ps(_mm256_broadcast_ss(pw + 1), va, o1);
                }
                _mm256_storeu_ps(ou0 + d, o0);
                _mm256_storeu_ps(ou1 + d, o1);
            }
        }
        for (int r0 = 0; r0 < (nrows <= 2 ? 0 : 4); r0 += 4) {
            const __m256 a0 = _mm256_set1_ps(alf[r0]), a1 = _mm256_set1_ps(alf[r0 + 1]);
            const __m256 a2 = _mm256_set1_ps(alf[r0 + 2]), a3 = _mm256_set1_ps(alf[r0 + 3]);
            float *ou0 = out[r0], *ou1 = out[r0 + 1], *ou2 = out[r0 + 2], *ou3 = out[r0 + 3];
            for (int d = 0; d < hdv; d += 16) {
                mad_rows4(ou0, ou1, ou2, ou3, a0, a1, a2, a3, vf, hdv, d, nt, st + r0, 8);
            }
        }
    }
    rows_finish(L, M, nrows, hdv, out, ml);
}

/* ------------------------------------------- 8 rows: the per-row path's arithmetic
 *
 * A prefill block (and a decoding GQA group of 5 to 8 heads) computes exactly what
 * the per-row flash path (attn.c's flash_range over this table's entries) computes for
 * each of its rows, bit for bit: the same roundings in the same order, only 8 rows at
 * a time, lane r of every vector being row r, and each cached K and V row read once for
 * the 8. Per (row, position) that path does:
 *   score   f16 K: dot_f16(q, k) (its two 8-lane accumulators, then hsum8's tree) x scale;
 *           q8_0 / q4_0 K: dot_q8_0 / dot_q4_0 on the query in q8_0: per 32-block the
 *           integer dot of each 4 values (exact), times dk dq (rounded), added into
 *           one of 8 lanes by FMA, then hsum8's tree; x scale.
 *   softmax per tile of T = QFIT_ATTN_ROWS8_TILE positions: the tile's max M', the old
 *           sum and accumulator scaled by expf(M - M') when the max grew, weights
 *           exp_sub (exp8 on whole groups of 8 from the tile start, expf on the rest),
 *           summed in position order.
 *   values  acc = fma(w, v, acc) (f16 V), fma(w dv, v_int, acc) (block V), in order;
 *           at the end acc x (1 / S).
 * The queries of block keys come rounded to q8_0 (the contract in qfit/kernels.h):
 * each 32-block is dq x integers with dq an f16 and max |integer| = 127, so its dq
 * and integers are recovered exactly (amax / 127 is dq, x / dq the integer). Masked
 * positions get weight 0: adding 0 (0 x v) changes no sum. */

/* 4 positions' sums of q[d] k[d] over d = l, l + 16, l + 32, ... in that order: lane
 * l % 8 of dot_f16's accumulator a0 (l < 8, which also takes the last 8 dims when
 * hd % 16 == 8) or a1 (l >= 8). qt: [hd][8] query; kr: the 4 key rows in f32. */
static inline __attribute__((always_inline)) void chain16(const float *qt, const float *const *kr, int hd, int l,
                                                         __m256 *a)
{
    const int lim = l < 8 ? hd : hd & ~15;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int d = l; d < lim; d += 16) {
        const __m256 qv = _mm256_loadu_ps(qt + (size_t)d * 8);
        a0 = _mm256_fmadd_ps(qv, _mm256_broadcast_ss(kr[0] + d), a0);
        a1 = _mm256_fmadd_ps(qv, _mm256_broadcast_ss(kr[1] + d), a1);
        a2 = _mm256_fmadd_ps(qv, _mm256_broadcast_ss(kr[2] + d), a2);
        a3 = _mm256_fmadd_ps(qv, _mm256_broadcast_ss(kr[3] + d), a3);
    }
    a[0] = a0, a[1] = a1, a[2] = a2, a[3] = a3;
}

/* lane l of dot_f16's a0 + a1, 4 positions */
static inline __attribute__((always_inline)) void lane_f16(const float *qt, const float *const *kr, int hd, int l,
                                                          __m256 *v)
{
    __m256 x[4], y[4];
    chain16(qt, kr, hd, l, x);
    chain16(qt, kr, hd, l + 8, y);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) v[i] = _mm256_add_ps(x[i], y[i]);
}

/* 4 positions' sums over the dims of lane j of dot_q8_0's accumulator: per block b,
 * P = the integer dot of values 32b + 4j .. + 3 (exact in float), acc = fma(dk dq, P,
 * acc). qt: [hd][8] query integers; kr: the 4 key rows' integers; dd: per position,
 * [nb][8] dk x dq. */
static inline __attribute__((always_inline)) void lane_blk(const float *qt, const float *const *kr,
                                                          const float *const *dd, int hd, int j, __m256 *v)
{
    __m256 a[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) a[i] = _mm256_setzero_ps();
    for (int b = 0; b < hd / 32; b++) {
        const int e = 32 * b + 4 * j;
        const __m256 q0 = _mm256_loadu_ps(qt + (size_t)e * 8), q1 = _mm256_loadu_ps(qt + (size_t)(e + 1) * 8);
        const __m256 q2 = _mm256_loadu_ps(qt + (size_t)(e + 2) * 8), q3 = _mm256_loadu_ps(qt + (size_t)(e + 3) * 8);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m256 p = _mm256_mul_ps(q0, _mm256_broadcast_ss(kr[i] + e));
            p = _mm256_fmadd_ps(q1, _mm256_broadcast_ss(kr[i] + e + 1), p);
            p = _mm256_fmadd_ps(q2, _mm256_broadcast_ss(kr[i] + e + 2), p);
            p = _mm256_fmadd_ps(q3, _mm256_broadcast_ss(kr[i] + e + 3), p);
            a[i] = _mm256_fmadd_ps(_mm256_loadu_ps(dd[i] + 8 * b), p, a[i]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) v[i] = a[i];
}

/* 4 positions' scores: hsum8's tree ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7))
 * over the 8 lanes v of the per-row dot, then x scale */
static inline __attribute__((always_inline)) void scores4(int blk, const float *qt, const float *const *kr,
                                                         const float *const *dd, int hd, __m256 scale, __m256 *s)
{
    __m256 x[2][4];
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m256 va[4], vb[4], w[4];
        if (blk) lane_blk(qt, kr, dd, hd, h, va), lane_blk(qt, kr, dd, hd, h + 4, vb);
        else lane_f16(qt, kr, hd, h, va), lane_f16(qt, kr, hd, h + 4, vb);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) w[i] = _mm256_add_ps(va[i], vb[i]);
        if (blk) lane_blk(qt, kr, dd, hd, h + 2, va), lane_blk(qt, kr, dd, hd, h + 6, vb);
        else lane_f16(qt, kr, hd, h + 2, va), lane_f16(qt, kr, hd, h + 6, vb);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) x[h][i] = _mm256_add_ps(w[i], _mm256_add_ps(va[i], vb[i]));
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) s[i] = _mm256_mul_ps(_mm256_add_ps(x[0][i], x[1][i]), scale);
}

/* one cached block row (q8_0 / q4_0) to its integers as f32 and its block scales */
static inline __attribute__((always_inline)) void blk_row_ints(int type, const uint8_t *src, float *dst, float *d,
                                                              int n)
{
    for (int b = 0; b < n / 32; b++) {
        __m256i v;
        if (type == QFIT_TYPE_Q8_0) {
            const block_q8_0 *x = (const block_q8_0 *)src + b;
            v = _mm256_loadu_si256((const __m256i *)x->qs);
            d[b] = h2f(x->d);
        } else {
            const block_q4_0 *x = (const block_q4_0 *)src + b;
            v = unpack_q4(x->qs);
            d[b] = h2f(x->d);
        }
        const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
        float *o = dst + 32 * b;
        _mm256_storeu_ps(o, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)));
        _mm256_storeu_ps(o + 8, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))));
        _mm256_storeu_ps(o + 16, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)));
        _mm256_storeu_ps(o + 24, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))));
    }
}

static void attn8(int type_k, int type_v, int hdk, int hdv, int nrows, const float *const *q, int p_begin,
                  const int *npos, float scale, const uint8_t *k0, size_t k_stride, const uint8_t *v0,
                  size_t v_stride, float *const *out, float *ml, float *scratch)
{
    enum { T = QFIT_ATTN_ROWS8_TILE };
    const int bk = type_k != QFIT_TYPE_F16, bv = type_v != QFIT_TYPE_F16;
    const int nbk = hdk / 32, nbv = hdv / 32;
    float *qt = scratch;                       /* [hdk][8] query (block keys: its integers) */
    float *kf = qt + (size_t)hdk * 8;          /* [T][hdk] key tile in f32 (block keys: integers) */
    float *st = kf + (size_t)T * hdk;          /* [T][8] scores / weights, transposed */
    float *vf = st + (size_t)T * 8;            /* [T][hdv] value tile in f32 (block values: integers) */
    float *dq = vf + (size_t)T * hdv;          /* [nbk][8] query block scales */
    float *dd = dq + (size_t)hdk / 4;          /* [T][nbk][8] dk x dq */
    float *dk = dd + (size_t)T * 8 * nbk;      /* [T][nbk] key block scales */
    float *dv = dk + (size_t)T * nbk;          /* [T][nbv] value block scales */
    float *pd = dv + (size_t)T * nbv;          /* [T][nbv][8] weight x dv */
    const size_t krow_bytes = qfit_row_size(type_k, hdk), vrow_bytes = qfit_row_size(type_v, hdv);
    const float *qr[8];   /* the rows as the scores take them */
    if (!bk) {
        for (int r = 0; r < 8; r++) qr[r] = q[r];
    } else {
        /* each 32-block's dq (amax / 127, exactly the f16 it was rounded with) and
         * integers (x / dq, exact), row by row into the key tile's space */
        const __m256 sgn = _mm256_set1_ps(-0.0f);
        for (int r = 0; r < 8; r++) {
            float *qi = kf + (size_t)r * hdk;
            for (int b = 0; b < nbk; b++) {
                const float *x = q[r] + 32 * b;
                const __m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8);
                const __m256 x2 = _mm256_loadu_ps(x + 16), x3 = _mm256_loadu_ps(x + 24);
                const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sgn, x0), _mm256_andnot_ps(sgn, x1)),
                                               _mm256_max_ps(_mm256_andnot_ps(sgn, x2), _mm256_andnot_ps(sgn, x3)));
                __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
                m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
                m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
                const float d = _cvtsh_ss(_cvtss_sh(_mm_cvtss_f32(m4) / 127.0f, _MM_FROUND_TO_NEAREST_INT));
                dq[b * 8 + r] = d;
                const __m256 dv8 = _mm256_set1_ps(d > 0.0f ? d : 1.0f);
                const __m256 xs[4] = { x0, x1, x2, x3 };
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++)
                    _mm256_storeu_ps(qi + 32 * b + 8 * k, _mm256_round_ps(_mm256_div_ps(xs[k], dv8),
                                                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            }
            qr[r] = qi;
        }
    }
    for (int d = 0; d < hdk; d += 8) {   /* qt: the 8 rows transposed, 8 x 8 at a time */
        __m256 a[8], t[8];
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) a[r] = _mm256_loadu_ps(qr[r] + d);
#pragma GCC unroll 4
        for (int r = 0; r < 8; r += 2) {
            t[r] = _mm256_unpacklo_ps(a[r], a[r + 1]);
            t[r + 1] = _mm256_unpackhi_ps(a[r], a[r + 1]);
        }
#pragma GCC unroll 2
        for (int r = 0; r < 8; r += 4) {
            a[r] = _mm256_shuffle_ps(t[r], t[r + 2], 0x44);
            a[r + 1] = _mm256_shuffle_ps(t[r], t[r + 2], 0xEE);
            a[r + 2] = _mm256_shuffle_ps(t[r + 1], t[r + 3], 0x44);
            a[r + 3] = _mm256_shuffle_ps(t[r + 1], t[r + 3], 0xEE);
        }
        /* a[0..3]: columns d + 0, 1, 2, 3 of rows 0-3 (low half) and d + 4..7 (high); a[4..7]: rows 4-7 */
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            _mm256_storeu_ps(qt + (size_t)(d + c) * 8, _mm256_permute2f128_ps(a[c], a[4 + c], 0x20));
            _mm256_storeu_ps(qt + (size_t)(d + c + 4) * 8, _mm256_permute2f128_ps(a[c], a[4 + c], 0x31));
        }
    }
    int maxpos = 0;
    for (int r = 0; r < 8; r++) {
        if (npos[r] > maxpos) maxpos = npos[r];
        memset(out[r], 0, (size_t)hdv * sizeof(float));
    }
    const __m256i np = _mm256_loadu_si256((const __m256i *)npos);
    const __m256 ninf = _mm256_set1_ps(-INFINITY), sc = _mm256_set1_ps(scale);
    __m256 M = ninf, L = _mm256_setzero_ps();
    for (int t0 = p_begin; t0 < maxpos; t0 += T) {
        const int nt = maxpos - t0 < T ? maxpos - t0 : T;
        const int tn = t0 + T < maxpos ? (maxpos - t0 - T < T ? maxpos - t0 - T : T) : 0;
        for (int t = 0; t < nt; t++) {
            if (t < tn) {   /* the next tile's rows (see the 4-row kernel) */
                const char *kp = (const char *)(k0 + (size_t)(t0 + T + t) * k_stride);
                const char *vp = (const char *)(v0 + (size_t)(t0 + T + t) * v_stride);
                for (size_t o = 0; o < krow_bytes; o += 64) _mm_prefetch(kp + o, _MM_HINT_T0);
                for (size_t o = 0; o < vrow_bytes; o += 64) _mm_prefetch(vp + o, _MM_HINT_T0);
            }
            const uint8_t *kr = k0 + (size_t)(t0 + t) * k_stride, *vr = v0 + (size_t)(t0 + t) * v_stride;
            if (bk) {
                float *dkt = dk + (size_t)t * nbk;
                blk_row_ints(type_k, kr, kf + (size_t)t * hdk, dkt, hdk);
                for (int b = 0; b < nbk; b++)   /* dot_q8_0's d: dk x dq, one product */
                    _mm256_storeu_ps(dd + ((size_t)t * nbk + b) * 8,
                                     _mm256_mul_ps(_mm256_set1_ps(dkt[b]), _mm256_loadu_ps(dq + b * 8)));
            } else {
                kv_row_to_f32(QFIT_TYPE_F16, kr, kf + (size_t)t * hdk, hdk);
            }
            if (bv) blk_row_ints(type_v, vr, vf + (size_t)t * hdv, dv + (size_t)t * nbv, hdv);
            else kv_row_to_f32(QFIT_TYPE_F16, vr, vf + (size_t)t * hdv, hdv);
        }
        /* scores, 4 positions at a time (past nt: a copy of the last row, not stored) */
        __m256 tmax = ninf;
        for (int t = 0; t < nt; t += 4) {
            const int nn = nt - t < 4 ? nt - t : 4;
            const float *krs[4], *dds[4];
            for (int i = 0; i < 4; i++) {
                const int ti = t + (i < nn ? i : nn - 1);
                krs[i] = kf + (size_t)ti * hdk;
                dds[i] = dd + (size_t)ti * nbk * 8;
            }
            __m256 s[4];
            if (bk) scores4(1, qt, krs, dds, hdk, sc, s);
            else scores4(0, qt, krs, dds, hdk, sc, s);
            for (int i = 0; i < nn; i++) {
                /* causal mask: lane r sees positions < npos[r] */
                const __m256 vis = _mm256_castsi256_ps(_mm256_cmpgt_epi32(np, _mm256_set1_epi32(t0 + t + i)));
                const __m256 sv = _mm256_blendv_ps(ninf, s[i], vis);
                _mm256_storeu_ps(st + (size_t)(t + i) * 8, sv);
                tmax = _mm256_max_ps(tmax, sv);
            }
        }
        /* the tile's max; where it grew (and the row had a max before) the sum and
         * the accumulator are scaled by expf(M - M'), else by 1 (exact) */
        const __m256 Mn = _mm256_max_ps(M, tmax);
        float mo[8], mn[8], alf[8];
        _mm256_storeu_ps(mo, M);
        _mm256_storeu_ps(mn, Mn);
        for (int r = 0; r < 8; r++) alf[r] = mo[r] == -INFINITY ? 0.0f : mn[r] > mo[r] ? expf(mo[r] - mn[r]) : 1.0f;
        M = Mn;
        L = _mm256_mul_ps(L, _mm256_loadu_ps(alf));
        /* exp_sub's tail: in a row's last tile, positions past its last whole group of
         * 8 take expf */
        int tlo[8], thi[8], tmin = T;
        for (int r = 0; r < 8; r++) {
            int n_r = npos[r] - t0;
            n_r = n_r < 0 ? 0 : n_r > T ? T : n_r;
            tlo[r] = n_r & ~7;
            thi[r] = n_r;
            if (tlo[r] < thi[r] && tlo[r] < tmin) tmin = tlo[r];
        }
        for (int i = 0; i < nt; i++) {
            const __m256 sv = _mm256_loadu_ps(st + (size_t)i * 8);
            const __m256 vis = _mm256_cmp_ps(sv, ninf, _CMP_NEQ_OQ);
            __m256 p = _mm256_and_ps(exp8(_mm256_sub_ps(sv, Mn)), vis);
            if (i >= tmin) {
                float pf[8], sf[8];
                _mm256_storeu_ps(pf, p);
                _mm256_storeu_ps(sf, sv);
                for (int r = 0; r < 8; r++)
                    if (i >= tlo[r] && i < thi[r]) pf[r] = expf(sf[r] - mn[r]);
                p = _mm256_loadu_ps(pf);
            }
            _mm256_storeu_ps(st + (size_t)i * 8, p);
            L = _mm256_add_ps(L, p);
            for (int b = 0; b < (bv ? nbv : 0); b++)   /* block values: the weight x dv per block */
                _mm256_storeu_ps(pd + ((size_t)i * nbv + b) * 8, _mm256_mul_ps(p, _mm256_set1_ps(dv[(size_t)i * nbv + b])));
        }
        /* out[r] = alpha[r] out[r] + sum_t w[t][r] V[t]: 4 rows x 16 columns per pass;
         * pw(i, d): the 4 rows' weights of position i for column d */
        const size_t pstride = bv ? (size_t)nbv * 8 : 8;
        for (int r0 = 0; r0 < 8; r0 += 4) {
            const __m256 a0 = _mm256_set1_ps(alf[r0]), a1 = _mm256_set1_ps(alf[r0 + 1]);
            const __m256 a2 = _mm256_set1_ps(alf[r0 + 2]), a3 = _mm256_set1_ps(alf[r0 + 3]);
            float *ou0 = out[r0], *ou1 = out[r0 + 1], *ou2 = out[r0 + 2], *ou3 = out[r0 + 3];
            for (int d = 0; d < hdv; d += 16) {
                const float *pw0 = (bv ? pd + (size_t)(d / 32) * 8 : st) + r0;
                mad_rows4(ou0, ou1, ou2, ou3, a0, a1, a2, a3, vf, hdv, d, nt, pw0, pstride);
            }
        }
    }
    rows_finish(L, M, nrows, hdv, out, ml);
}

/* 8 query rows against one KV head (qfit/kernels.h): up to 4 wanted rows take the
 * 4-row form, more the 8-row one */
void qk_attn_rows8_avx2(int type_k, int type_v, int hdk, int hdv, int nrows, const float *const *q, int p_begin,
                        const int *npos, float scale, const uint8_t *k0, size_t k_stride, const uint8_t *v0,
                        size_t v_stride, float *const *out, float *ml, float *scratch)
{
    if (nrows <= 4) attn4(type_k, type_v, hdk, hdv, nrows, q, p_begin, npos, scale, k0, k_stride, v0, v_stride, out, ml, scratch);
    else attn8(type_k, type_v, hdk, hdv, nrows, q, p_begin, npos, scale, k0, k_stride, v0, v_stride, out, ml, scratch);
}

static void qfit_f32_to_f16_avx2(const float *x, uint16_t *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = (uint16_t)_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

const qfit_row_kernels qfit_row_kernels_avx2 = {
    .dot_f32 = dot_f32, .dot_f16 = dot_f16, .dot_q8_0 = dot_q8_0, .dot_q4_0 = dot_q4_0,
    .mad_f32 = mad_f32, .mad_f16 = mad_f16, .mad_q8_0 = mad_q8_0, .mad_q4_0 = mad_q4_0,
    .scale = scale, .exp_sub = qfit_exp_sub_avx2, .swiglu = qfit_swiglu_avx2, .gelu = qk_gelu, .geglu = qk_geglu, .swiglu_oai = qk_swiglu_oai,
    .f32_to_f16 = qfit_f32_to_f16_avx2, .rows8 = qk_attn_rows8_avx2,
};

/* AVX-512: the same table with attn_avx512.c's flash attention (f16/q8_0/q4_0 caches;
 * it hands everything else back to the AVX2 kernel) */
const qfit_row_kernels qfit_row_kernels_avx512 = {
    .dot_f32 = dot_f32, .dot_f16 = dot_f16, .dot_q8_0 = dot_q8_0, .dot_q4_0 = dot_q4_0,
    .mad_f32 = mad_f32, .mad_f16 = mad_f16, .mad_q8_0 = mad_q8_0, .mad_q4_0 = mad_q4_0,
    .scale = scale, .exp_sub = qfit_exp_sub_avx2, .swiglu = qfit_swiglu_avx2, .gelu = qk_gelu, .geglu = qk_geglu, .swiglu_oai = qk_swiglu_oai,
    .f32_to_f16 = qfit_f32_to_f16_avx2, .rows8 = qk_attn_rows8_avx512,
};
