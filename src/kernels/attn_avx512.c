/* Flash attention over the cache (qfit_row_kernels.rows8), AVX-512F.
 *
 * A decoding GQA group is 1 to 8 query heads reading one KV head (a prefill block, 8
 * query rows): per cached position the work is R dot products of length hd and R
 * multiply-adds of a V row. The AVX2 kernel (attn_avx2.c) converts each tile's K and
 * V rows to f32 in memory, reloads the queries for every position and reduces each
 * score on its own; here K and V are converted in registers, and the scores of 16 / R
 * positions x R rows are reduced together into one vector of 16, so the softmax also
 * runs 16 lanes at once. R = 1, 2 or 4 (3 rows run as 4). Prefill blocks (8 rows) stay
 * on the AVX2 kernel: an R = 8 form of this one (tried) moved a q4_0 cache's perplexity
 * by 0.012% (another summation order; the K/V roundings downstream flip), past the
 * 0.01% that kv/cache_types_match_llama_cpp holds it to. Other cache types, K and
 * V of different types or widths, and head dims not a multiple of 16 (32 for block
 * types) go to the AVX2 kernel too.
 *
 * Scores: lane L of a group's vector is position L / R, row L % R. Sums are taken in
 * another order than the scalar reference (float rounding, ~1e-7 relative). */
#include "qfit/kernels.h"
#include "kernels/kernels_internal.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "qfit/quant.h"
#include "quant/blocks.h"

enum { T = 64 };   /* positions per tile (one online-softmax rescale per tile) */

/* e^x, 16 lanes: the same reduction and degree-6 polynomial as attn_avx2.c's exp8 */
static inline __m512 exp16(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512i e = _mm512_slli_epi32(_mm512_cvtps_epi32(n), 23);
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(p), e));
}

/* elements 16c .. 16c + 15 of one cached row, as f32 */
static inline __attribute__((always_inline)) __m512 ld16(int type, const uint8_t *row, int c)
{
    if (type == QFIT_TYPE_F16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 32 * (size_t)c)));
    if (type == QFIT_TYPE_Q8_0) {
        const block_q8_0 *b = (const block_q8_0 *)row + c / 2;
        const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b->qs + 16 * (c & 1)))));
        return _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(b->d)), v);
    }
    const block_q4_0 *b = (const block_q4_0 *)row + c / 2;   /* Q4_0: low nibbles first */
    __m128i q = _mm_loadu_si128((const __m128i *)b->qs);
    if (c & 1) q = _mm_srli_epi16(q, 4);
    q = _mm_sub_epi8(_mm_and_si128(q, _mm_set1_epi8(0x0F)), _mm_set1_epi8(8));
    return _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(b->d)), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)));
}

/* 16 vectors to one: lane 4k + j of the result = the sum of a[4j + k] */
static inline __m512 reduce16(const __m512 *a)
{
    __m512 b[8], c[4], d[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xEE));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xDD));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
        d[i] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * i], c[2 * i + 1], 0x44),
                             _mm512_shuffle_ps(c[2 * i], c[2 * i + 1], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x88), _mm512_shuffle_ps(d[0], d[1], 0xDD));
}

/* The scores of positions [t0, t0 + nt) (nt <= T) for R rows into st (lane layout
 * above, T * R floats; positions past nt or not visible to a row: -inf). qs: the R
 * query rows, scaled, hd floats each. */
static inline __attribute__((always_inline)) void scores(int R, int tk, int hd, const float *qs, const uint8_t *k0,
                                                        size_t ks, int t0, int nt, __m512i lanenp,
                                                        __m512i lanepos, float *st)
{
    const int G = 16 / R;   /* positions per group of 16 lanes */
    for (int g = 0; g < (nt + G - 1) / G; g++) {
        __m512 acc[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
        for (int c = 0; c < hd / 16; c++) {
#pragma GCC unroll 16
            for (int p = 0; p < G; p++) {
                /* acc[i] holds the lane 4 (i % 4) + i / 4 (reduce16) = position L / R, row L % R */
                const int t = g * G + p < nt ? g * G + p : nt - 1;   /* past nt: masked below */
                const __m512 kv = ld16(tk, k0 + (size_t)(t0 + t) * ks, c);
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) {
                    const int L = p * R + r, i = 4 * (L % 4) + L / 4;
                    acc[i] = _mm512_fmadd_ps(_mm512_loadu_ps(qs + (size_t)r * hd + 16 * c), kv, acc[i]);
                }
            }
        }
        const __m512 s = reduce16(acc);
        const __m512i pos = _mm512_add_epi32(_mm512_set1_epi32(t0 + g * G), lanepos);
        const __mmask16 vis = _mm512_cmplt_epi32_mask(pos, lanenp) &
                              _mm512_cmplt_epi32_mask(lanepos, _mm512_set1_epi32(nt - g * G));
        _mm512_storeu_ps(st + 16 * g, _mm512_mask_blend_ps(vis, _mm512_set1_ps(-INFINITY), s));
    }
}

/* out[r][c0 .. c0 + 16 NC) = alpha[r] * out + sum_t p[t][r] V[t] over the tile */
static inline __attribute__((always_inline)) void pv(int R, int NC, int tv, int c0, const uint8_t *v0, size_t vs,
                                                    int t0, int nt, const float *st, const float *alpha,
                                                    float *const *out)
{
    __m512 o[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++)
            o[r][c] = _mm512_mul_ps(_mm512_set1_ps(alpha[r]), _mm512_loadu_ps(out[r] + 16 * (c0 + c)));
    for (int t = 0; t < nt; t++) {
        const uint8_t *vr = v0 + (size_t)(t0 + t) * vs;
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) {
            const __m512 vv = ld16(tv, vr, c0 + c);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) o[r][c] = _mm512_fmadd_ps(_mm512_set1_ps(st[t * R + r]), vv, o[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) _mm512_storeu_ps(out[r] + 16 * (c0 + c), o[r][c]);
}

static inline __attribute__((always_inline)) void attn_r(int R, int tk, int tv, int hd, const float *const *q,
                                                        int p_begin, const int *npos, float scale,
                                                        const uint8_t *k0, size_t ks, const uint8_t *v0, size_t vs,
                                                        float *const *out, float *ml, float *scratch)
{
    float *qs = scratch, *st = qs + (size_t)R * hd;
    int lnp[16], lpos[16], maxpos = 0;
    for (int r = 0; r < R; r++) {
        for (int d = 0; d < hd; d++) qs[(size_t)r * hd + d] = q[r][d] * scale;
        memset(out[r], 0, (size_t)hd * sizeof(float));
        if (npos[r] > maxpos) maxpos = npos[r];
    }
    for (int L = 0; L < 16; L++) {
        lnp[L] = npos[L % R];
        lpos[L] = L / R;
    }
    const __m512i lanenp = _mm512_loadu_si512(lnp), lanepos = _mm512_loadu_si512(lpos);
    float M[4], S[4];
    for (int r = 0; r < R; r++) M[r] = -INFINITY, S[r] = 0.0f;
    for (int t0 = p_begin; t0 < maxpos; t0 += T) {
        const int nt = maxpos - t0 < T ? maxpos - t0 : T, nv = (nt * R + 15) / 16;
        scores(R, tk, hd, qs, k0, ks, t0, nt, lanenp, lanepos, st);
        /* each row's max over the tile, then e^(s - max) and the rows' sums */
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (int i = 0; i < nv; i++) mx = _mm512_max_ps(mx, _mm512_loadu_ps(st + 16 * i));
        float mf[16], mn[16], alpha[4];
        _mm512_storeu_ps(mf, mx);
        for (int r = 0; r < R; r++) {
            float m = M[r];
            for (int L = r; L < 16; L += R) m = mf[L] > m ? mf[L] : m;
            /* rows that see nothing yet keep -inf (and alpha 0 on their zero output) */
            alpha[r] = M[r] == -INFINITY ? 0.0f : expf(M[r] - m);
            M[r] = m;
        }
        for (int L = 0; L < 16; L++) mn[L] = M[L % R] == -INFINITY ? 0.0f : M[L % R];
        const __m512 mv = _mm512_loadu_ps(mn);
        __m512 sum = _mm512_setzero_ps();
        for (int i = 0; i < nv; i++) {
            const __m512 s = _mm512_loadu_ps(st + 16 * i);
            const __mmask16 vis = _mm512_cmp_ps_mask(s, _mm512_set1_ps(-INFINITY), _CMP_NEQ_OQ);
            const __m512 p = _mm512_maskz_mov_ps(vis, exp16(_mm512_sub_ps(s, mv)));
            _mm512_storeu_ps(st + 16 * i, p);
            sum = _mm512_add_ps(sum, p);
        }
        float sf[16];
        _mm512_storeu_ps(sf, sum);
        for (int r = 0; r < R; r++) {
            float s = 0.0f;
            for (int L = r; L < 16; L += R) s += sf[L];
            S[r] = S[r] * alpha[r] + s;
        }
        /* up to 4 x 4 output vectors in registers */
        int c0 = 0;
        for (; c0 + 4 <= hd / 16; c0 += 4) pv(R, 4, tv, c0, v0, vs, t0, nt, st, alpha, out);
        for (; c0 < hd / 16; c0++) pv(R, 1, tv, c0, v0, vs, t0, nt, st, alpha, out);
    }
    if (ml) {
        for (int r = 0; r < R; r++) {
            ml[2 * r] = M[r];
            ml[2 * r + 1] = S[r];
        }
        return;
    }
    for (int r = 0; r < R; r++) {
        const __m512 inv = _mm512_set1_ps(1.0f / S[r]);
        for (int d = 0; d < hd; d += 16) _mm512_storeu_ps(out[r] + d, _mm512_mul_ps(inv, _mm512_loadu_ps(out[r] + d)));
    }
}

#define ATTN_R_TYPES(R)                                                                                         \
    static void attn_##R(int tk, int tv, int hd, const float *const *q, int p_begin, const int *npos, float scale, \
                         const uint8_t *k0, size_t ks, const uint8_t *v0, size_t vs, float *const *out, float *ml,  \
                         float *scratch)                                                                      \
    {                                                                                                         \
        if (tk == QFIT_TYPE_F16 && tv == QFIT_TYPE_F16)                                                       \
            attn_r(R, QFIT_TYPE_F16, QFIT_TYPE_F16, hd, q, p_begin, npos, scale, k0, ks, v0, vs, out, ml, scratch); \
        else if (tk == QFIT_TYPE_Q8_0 && tv == QFIT_TYPE_Q8_0)                                                \
            attn_r(R, QFIT_TYPE_Q8_0, QFIT_TYPE_Q8_0, hd, q, p_begin, npos, scale, k0, ks, v0, vs, out, ml, scratch); \
        else                                                                                                  \
            attn_r(R, QFIT_TYPE_Q4_0, QFIT_TYPE_Q4_0, hd, q, p_begin, npos, scale, k0, ks, v0, vs, out, ml, scratch); \
    }
ATTN_R_TYPES(1)
ATTN_R_TYPES(2)
ATTN_R_TYPES(4)

void qk_attn_rows8_avx512(int type_k, int type_v, int hdk, int hdv, int nrows, const float *const *q, int p_begin,
                          const int *npos, float scale, const uint8_t *k0, size_t k_stride, const uint8_t *v0,
                          size_t v_stride, float *const *out, float *ml, float *scratch)
{
    const int same = type_k == type_v &&
                     (type_k == QFIT_TYPE_F16 || type_k == QFIT_TYPE_Q8_0 || type_k == QFIT_TYPE_Q4_0);
    if (nrows > 4 || !same || hdk != hdv || hdk % (type_k == QFIT_TYPE_F16 ? 16 : 32) != 0) {
        qk_attn_rows8_avx2(type_k, type_v, hdk, hdv, nrows, q, p_begin, npos, scale, k0, k_stride, v0, v_stride, out,
                           ml, scratch);
        return;
    }
    /* 3 rows run as 4: the fourth is the contract's (a real query's copy, a scratch
     * output); its max and sum land in ml8 */
    float ml8[16];
    float *mlr = ml && nrows == 3 ? ml8 : ml;
    if (nrows == 1) attn_1(type_k, type_v, hdk, q, p_begin, npos, scale, k0, k_stride, v0, v_stride, out, mlr, scratch);
    else if (nrows == 2) attn_2(type_k, type_v, hdk, q, p_begin, npos, scale, k0, k_stride, v0, v_stride, out, mlr, scratch);
    else attn_4(type_k, type_v, hdk, q, p_begin, npos, scale, k0, k_stride, v0, v_stride, out, mlr, scratch);
    if (mlr != ml) memcpy(ml, ml8, sizeof(float) * 2 * (size_t)nrows);
}
