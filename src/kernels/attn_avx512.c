/* Flash attention over the cache (qfit_row_kernels.rows8), AVX-512F.
 *
 * A decoding GQA group is 1 to 8 query heads reading one KV head (a prefill block, 8
 * query rows): per cached position the work is R dot products of length hd and R
 * multiply-adds of a V row. The AVX2 kernel (attn_avx2.c) converts each tile's K and
 * V rows to f32 in memory, reloads the queries for every position and reduces each
 * score on its own; here K and V are converted in registers, and the scores of 16 / R
 * positions x R rows are reduced together into one vector of 16, so the softmax also
 * runs 16 lanes at once. R = 1, 2 or 4 (3 rows run as 4). Prefill blocks (8 rows) stay
 * on the AVX2 kernel, which computes the per-row flash path's roundings exactly (an
 * R = 8 form of this one, tried, moved a q4_0 cache's perplexity by 0.012%: another
 * summation order, and the K/V roundings downstream flip). Other cache types, K and
 * V of different types or widths, and head dims not a multiple of 16 (32 for block
 * types) go to the AVX2 kernel too.
 *
 * Scores: lane L of a group's vector is position L / R, row L % R. Sums are taken in
 * another order than the scalar reference (float rounding, ~1e-7 relative). q8_0 and
 * q4_0 keys are scored on integer dot products instead (scores_int, below): 7.7 ns per
 * (position, KV head) for q8_0 against 10.3 with the float scores, and at 16K depth a
 * decoding q8_0 cache ran at 40.3 t/s against 37.3 in the same window (1B shape,
 * BENCHMARKS.md). */
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

/* ------------------------------------------- integer scores for q8_0 / q4_0 keys
 *
 * The queries come rounded to q8_0 (the contract, qfit/kernels.h), so each 32-block
 * of a row is exactly dq x (int8 values) with dq an f16: its integer form is
 * recovered without error, and q . k = sum over blocks of dq dk (qi . ki) as ggml's
 * vec dot computes it. The integer dots run on vpdpbusd with one lane per cached
 * position: 16 key rows are transposed in registers into 4-byte columns, each
 * multiplied by a query column broadcast to every lane, so no horizontal sum is left
 * at the end (the float path above reduces 16 lanes per score). vpdpbusd's first
 * operand is unsigned: q8_0 keys are read as k + 128, q4_0 keys as their stored
 * nibble (k + 8); the bias comes back out through the query block's sum. */

typedef struct {
    int8_t *qi;     /* R rows of hd values */
    float *dqs;     /* per row and block: dq x the attention scale */
    int32_t *corr;  /* per row and block: -bias x the sum of the block's qi */
} qint;

static void query_int(int R, int tk, int hd, const float *const *q, float scale, void *scratch, qint *Q)
{
    const int nb = hd / 32, bias = tk == QFIT_TYPE_Q8_0 ? 128 : 8;
    Q->qi = scratch;
    Q->dqs = (float *)((int8_t *)scratch + (size_t)R * hd);
    Q->corr = (int32_t *)(Q->dqs + (size_t)R * nb);
    for (int r = 0; r < R; r++)
        for (int b = 0; b < nb; b++) {
            const __m512 x0 = _mm512_loadu_ps(q[r] + 32 * b), x1 = _mm512_loadu_ps(q[r] + 32 * b + 16);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
            /* q8_0's scale; for a query already rounded, exactly its own (amax = 127 dq) */
            const float d = _cvtsh_ss(_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT));
            const __m512 id = _mm512_set1_ps(d > 0.0f ? 1.0f / d : 0.0f);
            const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, id)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, id));
            _mm_storeu_si128((__m128i *)(Q->qi + (size_t)r * hd + 32 * b), _mm512_cvtsepi32_epi8(i0));
            _mm_storeu_si128((__m128i *)(Q->qi + (size_t)r * hd + 32 * b + 16), _mm512_cvtsepi32_epi8(i1));
            Q->dqs[r * nb + b] = d * scale;
            Q->corr[r * nb + b] = -bias * _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        }
}

/* 4 bytes of query row r, block b, from byte j of the block, in every lane */
static inline __m512i qcol(const qint *Q, int hd, int r, int b, int j)
{
    int32_t v;
    memcpy(&v, Q->qi + (size_t)r * hd + 32 * b + j, 4);
    return _mm512_set1_epi32(v);
}

/* the same interface as scores() above (same lane layout in st), for q8_0 / q4_0 keys */
static inline __attribute__((always_inline)) void scores_int(int R, int tk, int hd, const qint *Q,
                                                            const uint8_t *k0, size_t ks, int t0, int nt,
                                                            __m512i lanenp, __m512i lanepos, float *st)
{
    const int G = 16 / R, nb = hd / 32;
    const size_t bs = tk == QFIT_TYPE_Q8_0 ? sizeof(block_q8_0) : sizeof(block_q4_0);
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int s0 = 0; s0 < nt; s0 += 16) {
        /* 16 positions, one a lane; lanes past the tile repeat its last row (masked below) */
        const int last = nt - 1 - s0 < 15 ? nt - 1 - s0 : 15;
        const uint8_t *base = k0 + (size_t)(t0 + s0) * ks;
        const uint8_t *row[16];
        for (int p = 0; p < 16; p++) row[p] = base + (size_t)(p < last ? p : last) * ks;
        const __m512i gidx = _mm512_mullo_epi32(_mm512_min_epi32(iota, _mm512_set1_epi32(last)),
                                                _mm512_set1_epi32((int)ks));
        __m512 acc[4];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const size_t ob = (size_t)b * bs;
            /* each position's block scale (the f16 in the low half of a gathered dword) */
            const __m512 dk = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_i32gather_epi32(gidx, base + ob, 1)));
            __m512i kc[8];   /* kc[j]: bytes 4j' .. 4j' + 3 of the block's values, 16 positions */
            int qoff[8];     /* where kc[j]'s 4 values sit in the query block */
            if (tk == QFIT_TYPE_Q8_0) {
                /* A[j] = rows (j', j' + 4), j' = j or j + 4; two unpack stages and a lane
                 * shuffle leave column c of rows 0..15 in natural order */
                __m512i A[8], t[8], u[8];
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) {
                    const int lo = j < 4 ? j : j + 4;
                    const __m256i a = _mm256_loadu_si256((const __m256i *)(row[lo] + ob + 2));
                    const __m256i c = _mm256_loadu_si256((const __m256i *)(row[lo + 4] + ob + 2));
                    A[j] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(a), c, 1), _mm512_set1_epi8(-128));
                }
#pragma GCC unroll 4
                for (int j = 0; j < 8; j += 2) {
                    t[j] = _mm512_unpacklo_epi32(A[j], A[j + 1]);
                    t[j + 1] = _mm512_unpackhi_epi32(A[j], A[j + 1]);
                }
#pragma GCC unroll 2
                for (int h = 0; h < 8; h += 4) {
                    u[h] = _mm512_unpacklo_epi64(t[h], t[h + 2]);
                    u[h + 1] = _mm512_unpackhi_epi64(t[h], t[h + 2]);
                    u[h + 2] = _mm512_unpacklo_epi64(t[h + 1], t[h + 3]);
                    u[h + 3] = _mm512_unpackhi_epi64(t[h + 1], t[h + 3]);
                }
                /* u[c] (rows 0..7), u[4 + c] (rows 8..15): columns c and c + 4 */
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++) {
                    kc[c] = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88);
                    kc[4 + c] = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xDD);
                    qoff[c] = 4 * c;
                    qoff[4 + c] = 16 + 4 * c;
                }
            } else {
                /* A[j] = rows j, j + 4, j + 8, j + 12 (one a 128-bit lane): two unpack
                 * stages leave column c of rows 0..15; low nibbles are values 4c..4c+3,
                 * high nibbles 16 + 4c .. */
                __m512i A[4], t[4];
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) {
                    __m512i a = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(row[j] + ob + 2)));
                    a = _mm512_inserti32x4(a, _mm_loadu_si128((const __m128i *)(row[j + 4] + ob + 2)), 1);
                    a = _mm512_inserti32x4(a, _mm_loadu_si128((const __m128i *)(row[j + 8] + ob + 2)), 2);
                    A[j] = _mm512_inserti32x4(a, _mm_loadu_si128((const __m128i *)(row[j + 12] + ob + 2)), 3);
                }
                t[0] = _mm512_unpacklo_epi32(A[0], A[1]);
                t[1] = _mm512_unpackhi_epi32(A[0], A[1]);
                t[2] = _mm512_unpacklo_epi32(A[2], A[3]);
                t[3] = _mm512_unpackhi_epi32(A[2], A[3]);
                const __m512i col[4] = {_mm512_unpacklo_epi64(t[0], t[2]), _mm512_unpackhi_epi64(t[0], t[2]),
                                        _mm512_unpacklo_epi64(t[1], t[3]), _mm512_unpackhi_epi64(t[1], t[3])};
                const __m512i m4 = _mm512_set1_epi8(0x0F);
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++) {
                    kc[c] = _mm512_and_si512(col[c], m4);
                    kc[4 + c] = _mm512_and_si512(_mm512_srli_epi16(col[c], 4), m4);
                    qoff[c] = 4 * c;
                    qoff[4 + c] = 16 + 4 * c;
                }
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                __m512i s = _mm512_set1_epi32(Q->corr[r * nb + b]);
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) s = _mm512_dpbusd_epi32(s, kc[j], qcol(Q, hd, r, b, qoff[j]));
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dk, _mm512_set1_ps(Q->dqs[r * nb + b])),
                                         acc[r]);
            }
        }
        /* into scores()' layout: lane L of group g = position g G + L / R, row L % R */
        __m512 out[4];
        if (R == 1) {
            out[0] = acc[0];
        } else if (R == 2) {
            const __m512i i0 = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            const __m512i i1 = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            out[0] = _mm512_permutex2var_ps(acc[0], i0, acc[1]);
            out[1] = _mm512_permutex2var_ps(acc[0], i1, acc[1]);
        } else {
            const __m512i i0 = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            const __m512i i1 = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            /* pairs of (row 0, row 1) and (row 2, row 3), then the pairs interleaved */
            const __m512 a0 = _mm512_permutex2var_ps(acc[0], i0, acc[1]), a1 = _mm512_permutex2var_ps(acc[0], i1, acc[1]);
            const __m512 b0 = _mm512_permutex2var_ps(acc[2], i0, acc[3]), b1 = _mm512_permutex2var_ps(acc[2], i1, acc[3]);
            const __m512i j0 = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
            const __m512i j1 = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
            out[0] = _mm512_permutex2var_ps(a0, j0, b0);
            out[1] = _mm512_permutex2var_ps(a0, j1, b0);
            out[2] = _mm512_permutex2var_ps(a1, j0, b1);
            out[3] = _mm512_permutex2var_ps(a1, j1, b1);
        }
#pragma GCC unroll 4
        for (int o = 0; o < R; o++) {
            const int g = s0 / G + o;
            const __m512i pos = _mm512_add_epi32(_mm512_set1_epi32(t0 + g * G), lanepos);
            const __mmask16 vis = _mm512_cmplt_epi32_mask(pos, lanenp) &
                                  _mm512_cmplt_epi32_mask(lanepos, _mm512_set1_epi32(nt - g * G));
            _mm512_storeu_ps(st + 16 * g, _mm512_mask_blend_ps(vis, _mm512_set1_ps(-INFINITY), out[o]));
        }
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
    qint Q;
    int lnp[16], lpos[16], maxpos = 0;
    if (tk != QFIT_TYPE_F16) query_int(R, tk, hd, q, scale, scratch, &Q);
    for (int r = 0; r < R; r++) {
        if (tk == QFIT_TYPE_F16)
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
        if (tk == QFIT_TYPE_F16) scores(R, tk, hd, qs, k0, ks, t0, nt, lanenp, lanepos, st);
        else scores_int(R, tk, hd, &Q, k0, ks, t0, nt, lanenp, lanepos, st);
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
