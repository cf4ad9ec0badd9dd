/* Internal: x86 kernels written once for 256-bit vectors, compiled twice:
 * by dot_avx2.c (AVX2/FMA/F16C) and by dot_avx512.c with QK_USE_VNNI defined
 * (AVX-512VL + VNNI: vpdpbusd / vpdpwssd replace the maddubs/madd pairs).
 * The includer defines QK_X86_FILL, the name of the table-filling function. */
#ifndef QFIT_DOT_X86_H
#define QFIT_DOT_X86_H

#include <immintrin.h>
#include <string.h>
#include "kernels/kernels_internal.h"

/* fully unroll the short fixed loops over the sub-blocks of a block (the
 * scale-broadcast indices then become constants) */
#define QK_UNROLL _Pragma("GCC unroll 8")

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

static inline float hsum_ps(__m256 v)
{
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

static inline int32_t hsum_epi32(__m256i v)
{
    __m128i r = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0x4E));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0xB1));
    return _mm_cvtsi128_si32(r);
}

/* acc + sum of 4 adjacent u8*s8 products, per 32-bit lane */
static inline __m256i dp_u8s8(__m256i acc, __m256i u, __m256i s)
{
#ifdef QK_USE_VNNI
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

/* acc + sum of 2 adjacent s16*s16 products, per 32-bit lane */
static inline __m256i dp_s16(__m256i acc, __m256i a, __m256i b)
{
#ifdef QK_USE_VNNI
    return _mm256_dpwssd_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

/* 32 signed bytes times 32 signed bytes, 8 partial i32 sums */
static inline __m256i dp_s8s8(__m256i x, __m256i y)
{
    return dp_u8s8(_mm256_setzero_si256(), _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

/* 16 packed nibble bytes -> 32 bytes: low nibbles then high nibbles */
static inline __m256i nibbles32(const uint8_t *q)
{
    __m128i t = _mm_loadu_si128((const __m128i *)q);
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

/* 32 bits -> 32 bytes, 0xFF where the bit is set */
static inline __m256i bits_to_bytes(const uint8_t *qh)
{
    uint32_t v;
    memcpy(&v, qh, 4);
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)v), shuf);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(b, bit), bit);
}

/* ---------------- float types ---------------- */

static void x_dot_f32(int64_t n, float *s, const void *w, const void *a)
{
    const float *x = w, *y = a;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += x[i] * y[i];
    *s = sum;
}

static inline __m256 load_f16x8(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static void x_dot_f16(int64_t n, float *s, const void *w, const void *a)
{
    const uint16_t *x = w, *y = a;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(load_f16x8(x + i), load_f16x8(y + i), a0);
        a1 = _mm256_fmadd_ps(load_f16x8(x + i + 8), load_f16x8(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(load_f16x8(x + i + 16), load_f16x8(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(load_f16x8(x + i + 24), load_f16x8(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load_f16x8(x + i), load_f16x8(y + i), a0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += h2f(x[i]) * h2f(y[i]);
    *s = sum;
}

static inline __m256 load_bf16x8(const uint16_t *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

static inline float bf2f(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void x_dot_bf16(int64_t n, float *s, const void *w, const void *a)
{
    const uint16_t *x = w, *y = a;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(load_bf16x8(x + i), load_bf16x8(y + i), a0);
        a1 = _mm256_fmadd_ps(load_bf16x8(x + i + 8), load_bf16x8(y + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load_bf16x8(x + i), load_bf16x8(y + i), a0);
    float sum = hsum_ps(_mm256_add_ps(a0, a1));
    for (; i < n; i++) sum += bf2f(x[i]) * bf2f(y[i]);
    *s = sum;
}

/* ---------------- 32-element formats ---------------- */

static void x_dot_q8_0(int64_t n, float *s, const void *w, const void *a)
{
    const block_q8_0 *x = w, *y = a;
    const int64_t nb = n / QK8_0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        __m256i p0 = dp_s8s8(_mm256_loadu_si256((const __m256i *)x[b].qs),
                             _mm256_loadu_si256((const __m256i *)y[b].qs));
        __m256i p1 = dp_s8s8(_mm256_loadu_si256((const __m256i *)x[b + 1].qs),
                             _mm256_loadu_si256((const __m256i *)y[b + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b + 1].d) * h2f(y[b + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; b < nb; b++) {
        __m256i p0 = dp_s8s8(_mm256_loadu_si256((const __m256i *)x[b].qs),
                             _mm256_loadu_si256((const __m256i *)y[b].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)), _mm256_cvtepi32_ps(p0), acc0);
    }
    *s = hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* sum(u * y) - off * sum(y) for unsigned u and an offset (8 for Q4_0, 16 for Q5_0) */
static inline __m256i dp_offset(__m256i u, __m256i qy, __m256i off)
{
    __m256i p = dp_u8s8(_mm256_setzero_si256(), u, qy);
    return _mm256_sub_epi32(p, dp_u8s8(_mm256_setzero_si256(), off, qy));
}

static void x_dot_q4_0(int64_t n, float *s, const void *w, const void *a)
{
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK8_0;
    const __m256i off = _mm256_set1_epi8(8);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        __m256i p0 = dp_offset(nibbles32(x[b].qs), _mm256_loadu_si256((const __m256i *)y[b].qs), off);
        __m256i p1 = dp_offset(nibbles32(x[b + 1].qs), _mm256_loadu_si256((const __m256i *)y[b + 1].qs), off);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b + 1].d) * h2f(y[b + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; b < nb; b++) {
        __m256i p0 = dp_offset(nibbles32(x[b].qs), _mm256_loadu_si256((const __m256i *)y[b].qs), off);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)), _mm256_cvtepi32_ps(p0), acc0);
    }
    *s = hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* ---- Q4_1, Q5_0, Q5_1: 8 blocks at a time ----
 * One block is 32 products and one scale, and taking each block's scale on its own
 * (two fp16 conversions, a product, a broadcast and a multiply-add, and for the types
 * with a min a scalar chain beside it) cost as much as the products: generation on a
 * 1B Q4_1 / Q5_0 / Q5_1 model ran at 22-26 GB/s where Q4_0's rows went at 51. Here
 * the integer sums of 8 blocks are reduced into one vector (lane j = block j), and
 * their 8 scales (and mins) are converted together. */

/* lane j = the sum of p[j]'s 8 lanes */
static inline __m256i hsum8_epi32(const __m256i *p)
{
    const __m256i e = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    const __m256i f = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(e, f, 0x20), _mm256_permute2x128_si256(e, f, 0x31));
}

/* 8 dwords from 8 blocks `stride` bytes apart, each two fp16 (a at byte 0, b at 2), as f32 */
static inline void load_f16_pairs(const void *base, int stride, __m256 *a, __m256 *b)
{
    /* 8 dword loads and unpacks: a gather (vpgatherdd) was slower than taking the scales
     * block by block on Zen 4, and so was a vector built from scalars (through the stack) */
    const uint8_t *pb = base;
    const size_t st = (size_t)stride;
    const __m128i d01 = _mm_unpacklo_epi32(_mm_loadu_si32(pb), _mm_loadu_si32(pb + st));
    const __m128i d23 = _mm_unpacklo_epi32(_mm_loadu_si32(pb + 2 * st), _mm_loadu_si32(pb + 3 * st));
    const __m128i d45 = _mm_unpacklo_epi32(_mm_loadu_si32(pb + 4 * st), _mm_loadu_si32(pb + 5 * st));
    const __m128i d67 = _mm_unpacklo_epi32(_mm_loadu_si32(pb + 6 * st), _mm_loadu_si32(pb + 7 * st));
    const __m256i g = _mm256_set_m128i(_mm_unpacklo_epi64(d45, d67), _mm_unpacklo_epi64(d01, d23));
    /* [a0..a3 b0..b3 | a4..a7 b4..b7] -> [a0..a7 | b0..b7] */
    const __m256i ab = _mm256_permute4x64_epi64(
        _mm256_packus_epi32(_mm256_and_si256(g, _mm256_set1_epi32(0xFFFF)), _mm256_srli_epi32(g, 16)), 0xD8);
    *a = _mm256_cvtph_ps(_mm256_castsi256_si128(ab));
    *b = _mm256_cvtph_ps(_mm256_extracti128_si256(ab, 1));
}

/* unsigned 5-bit values of a Q5 block: the nibbles with the 5th bits of qh */
static inline __m256i q5_values(const uint8_t *qs, const uint8_t *qh)
{
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    uint32_t h;   /* the 32 bits as a byte mask: 16 added where they are set */
    memcpy(&h, qh, 4);
    const __m256i nib = nibbles32(qs);
    return _mm256_mask_add_epi8(nib, (__mmask32)h, nib, _mm256_set1_epi8(0x10));
#else
    return _mm256_or_si256(nibbles32(qs), _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10)));
#endif
}

/* the 32 unsigned values of a Q4_1 (q5 = 0) or Q5_1 (q5 = 1) block */
static inline __m256i min32_values(const uint8_t *blk, const int q5)
{
    if (q5) {
        const block_q5_1 *x = (const block_q5_1 *)(const void *)blk;
        return q5_values(x->qs, x->qh);
    }
    return nibbles32(((const block_q4_1 *)(const void *)blk)->qs);
}

/* Q4_1 / Q5_1 x Q8_1: unsigned values, a scale and a min per block (both block types
 * start with fp16 d, m; Q8_1 with d, s) */
static inline __attribute__((always_inline)) void dot_min32(int64_t n, float *s, const void *w, const void *a,
                                                           const int q5)
{
    const uint8_t *x = w;
    const block_q8_1 *y = a;
    const size_t bs = q5 ? sizeof(block_q5_1) : sizeof(block_q4_1);
    const int64_t nb = n / QK8_1;
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        __m256i p[8];
        QK_UNROLL
        for (int j = 0; j < 8; j++)
            p[j] = dp_u8s8(_mm256_setzero_si256(), min32_values(x + (size_t)(b + j) * bs, q5),
                           _mm256_loadu_si256((const __m256i *)y[b + j].qs));
        __m256 xd, xm, yd, ys;
        load_f16_pairs(x + (size_t)b * bs, (int)bs, &xd, &xm);
        load_f16_pairs(y + b, sizeof *y, &yd, &ys);
        acc = _mm256_fmadd_ps(_mm256_mul_ps(xd, yd), _mm256_cvtepi32_ps(hsum8_epi32(p)), acc);
        accm = _mm256_fmadd_ps(xm, ys, accm);
    }
    float sum = hsum_ps(_mm256_add_ps(acc, accm));
    for (; b < nb; b++) {
        uint16_t dm[2];
        memcpy(dm, x + (size_t)b * bs, 4);
        const __m256i p = dp_u8s8(_mm256_setzero_si256(), min32_values(x + (size_t)b * bs, q5),
                                  _mm256_loadu_si256((const __m256i *)y[b].qs));
        sum += h2f(dm[0]) * h2f(y[b].d) * (float)hsum_epi32(p) + h2f(dm[1]) * h2f(y[b].s);
    }
    *s = sum;
}

static void x_dot_q4_1(int64_t n, float *s, const void *w, const void *a) { dot_min32(n, s, w, a, 0); }
static void x_dot_q5_1(int64_t n, float *s, const void *w, const void *a) { dot_min32(n, s, w, a, 1); }

static void x_dot_q5_0(int64_t n, float *s, const void *w, const void *a)
{
    const block_q5_0 *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK8_0;
    const __m256i off = _mm256_set1_epi8(16);
    __m256 acc = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        __m256i p[8];
        QK_UNROLL
        for (int j = 0; j < 8; j++)
            p[j] = dp_offset(q5_values(x[b + j].qs, x[b + j].qh), _mm256_loadu_si256((const __m256i *)y[b + j].qs), off);
        __m256 xd, xx, yd, yx;   /* xx, yx: the next field's bits, unused */
        load_f16_pairs(x + b, sizeof *x, &xd, &xx);
        load_f16_pairs(y + b, sizeof *y, &yd, &yx);
        acc = _mm256_fmadd_ps(_mm256_mul_ps(xd, yd), _mm256_cvtepi32_ps(hsum8_epi32(p)), acc);
    }
    float sum = hsum_ps(acc);
    for (; b < nb; b++) {
        __m256i p = dp_offset(q5_values(x[b].qs, x[b].qh), _mm256_loadu_si256((const __m256i *)y[b].qs), off);
        sum += h2f(x[b].d) * h2f(y[b].d) * (float)hsum_epi32(p);
    }
    *s = sum;
}

static void x_dot_iq4_nl(int64_t n, float *s, const void *w, const void *a)
{
    const block_iq4_nl *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK4_NL;
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qfit_kvalues_iq4nl));
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i v = _mm256_shuffle_epi8(kv, nibbles32(x[b].qs));
        __m256i p = dp_s8s8(v, _mm256_loadu_si256((const __m256i *)y[b].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(y[b].d) * h2f(x[b].d)), _mm256_cvtepi32_ps(p), acc);
    }
    *s = hsum_ps(acc);
}

/* MXFP4 x Q8_0: the IQ4_NL kernel with the E2M1 table and the E8M0 scale */
static void x_dot_mxfp4(int64_t n, float *s, const void *w, const void *a)
{
    const block_mxfp4 *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK_MXFP4;
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qfit_kvalues_mxfp4));
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i v = _mm256_shuffle_epi8(kv, nibbles32(x[b].qs));
        __m256i p = dp_s8s8(v, _mm256_loadu_si256((const __m256i *)y[b].qs));
        const float d = h2f(y[b].d) * qfit_e8m0_to_fp32_half(x[b].e);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(p), acc);
    }
    *s = hsum_ps(acc);
}

/* ---------------- K-quants ---------------- */

/* The 8 scales (bytes 0..7) and 8 mins (bytes 8..15) of a Q4_K/Q5_K block. */
static inline __m128i k4_scales_mins(const uint8_t *q)
{
    uint32_t u[4];
    memcpy(u, q, 12);
    const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
    uint32_t sc_hi = (u[2] & m4) | (((u[0] >> 6) & m2) << 4);
    uint32_t mn_hi = ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4);
    uint32_t mn_lo = u[1] & m6;
    uint32_t sc_lo = u[0] & m6;
    return _mm_setr_epi32((int)sc_lo, (int)sc_hi, (int)mn_lo, (int)mn_hi);
}

/* 16-bit broadcast of byte j of a scales vector (sc16 = scales as 16 x i16,
 * duplicated in both 128-bit lanes) */
static inline __m256i bcast16(__m256i sc16, int j)
{
    const __m256i idx = _mm256_set1_epi16((short)(0x0100 + 0x0202 * j));
    return _mm256_shuffle_epi8(sc16, idx);
}

static void x_dot_q4_K(int64_t n, float *s, const void *w, const void *a)
{
    const block_q4_K *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m128i scm = k4_scales_mins(x[b].scales);
        const float d = y[b].d * h2f(x[b].d), dmin = -y[b].d * h2f(x[b].dmin);
        /* mins: bsums (16 x i16) . each min twice */
        __m256i mn16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(scm, scm));
        __m256i md = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[b].bsums), mn16);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(md), accm);
        const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scm));
        __m256i is0 = _mm256_setzero_si256(), is1 = _mm256_setzero_si256();
        const uint8_t *q4 = x[b].qs;
        const int8_t *q8 = y[b].qs;
        QK_UNROLL
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(q4 + 32 * c));
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * c)));
            __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * c + 32)));
            is0 = dp_s16(is0, p0, bcast16(sc16, 2 * c));
            is1 = dp_s16(is1, p1, bcast16(sc16, 2 * c + 1));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(is0, is1)), acc);
    }
    *s = hsum_ps(_mm256_add_ps(acc, accm));
}

/* QK_DOTN (4) Q4_K rows against one Q8_K row: the activation quants, bsums
 * and scale are loaded once per block for all rows, and the rows' integer
 * accumulations are independent chains. */
static void x_dotn_q4_K(int64_t n, float *s, const void *w, size_t w_stride, const void *a)
{
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const uint8_t *wb = w;
    const block_q4_K *x0 = (const block_q4_K *)wb, *x1 = (const block_q4_K *)(wb + w_stride),
                     *x2 = (const block_q4_K *)(wb + 2 * w_stride), *x3 = (const block_q4_K *)(wb + 3 * w_stride);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int64_t b = 0; b < nb; b++) {
        const __m256i bs = _mm256_loadu_si256((const __m256i *)y[b].bsums);
        const float yd = y[b].d;
        /* The rows are read interleaved, which the hardware stream prefetcher
         * does not follow: walk the next group of rows linearly instead. */
        {
            const char *pf = (const char *)wb + 4 * w_stride + (size_t)b * 4 * sizeof(block_q4_K);
            for (size_t o = 0; o < 4 * sizeof(block_q4_K); o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
        }
#define QK4_ROW_SETUP(r)                                                                              \
        const __m128i scm##r = k4_scales_mins(x##r[b].scales);                                         \
        const __m256i md##r = _mm256_madd_epi16(bs, _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(scm##r, scm##r))); \
        const __m256i sc##r = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scm##r));                 \
        __m256i is##r = _mm256_setzero_si256();                                                         \
        const uint8_t *q##r = x##r[b].qs;
        QK4_ROW_SETUP(0) QK4_ROW_SETUP(1) QK4_ROW_SETUP(2) QK4_ROW_SETUP(3)
#undef QK4_ROW_SETUP
        const int8_t *q8 = y[b].qs;
        QK_UNROLL
        for (int c = 0; c < 4; c++) {
            const __m256i ylo = _mm256_loadu_si256((const __m256i *)(q8 + 64 * c));
            const __m256i yhi = _mm256_loadu_si256((const __m256i *)(q8 + 64 * c + 32));
#define QK4_ROW_CHUNK(r)                                                                              \
            {                                                                                           \
                __m256i v = _mm256_loadu_si256((const __m256i *)(q##r + 32 * c));                       \
                __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4); \
                is##r = dp_s16(is##r, _mm256_maddubs_epi16(lo, ylo), bcast16(sc##r, 2 * c));            \
                is##r = dp_s16(is##r, _mm256_maddubs_epi16(hi, yhi), bcast16(sc##r, 2 * c + 1));        \
            }
            QK4_ROW_CHUNK(0) QK4_ROW_CHUNK(1) QK4_ROW_CHUNK(2) QK4_ROW_CHUNK(3)
#undef QK4_ROW_CHUNK
        }
#define QK4_ROW_ACC(r)                                                                                \
        acc##r = _mm256_fmadd_ps(_mm256_set1_ps(yd * h2f(x##r[b].d)), _mm256_cvtepi32_ps(is##r), acc##r); \
        acc##r = _mm256_fmadd_ps(_mm256_set1_ps(-yd * h2f(x##r[b].dmin)), _mm256_cvtepi32_ps(md##r), acc##r);
        QK4_ROW_ACC(0) QK4_ROW_ACC(1) QK4_ROW_ACC(2) QK4_ROW_ACC(3)
#undef QK4_ROW_ACC
    }
    s[0] = hsum_ps(acc0);
    s[1] = hsum_ps(acc1);
    s[2] = hsum_ps(acc2);
    s[3] = hsum_ps(acc3);
}

static void x_dot_q5_K(int64_t n, float *s, const void *w, const void *a)
{
    const block_q5_K *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m128i scm = k4_scales_mins(x[b].scales);
        const float d = y[b].d * h2f(x[b].d), dmin = -y[b].d * h2f(x[b].dmin);
        __m256i mn16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(scm, scm));
        __m256i md = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[b].bsums), mn16);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(md), accm);
        const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scm));
        __m256i is0 = _mm256_setzero_si256(), is1 = _mm256_setzero_si256();
        __m256i hv = _mm256_loadu_si256((const __m256i *)x[b].qh);
        const uint8_t *q4 = x[b].qs;
        const int8_t *q8 = y[b].qs;
        QK_UNROLL
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(q4 + 32 * c));
            /* bit 2c of qh -> 0x10 of the low nibble, bit 2c+1 -> of the high one */
            __m256i hlo = _mm256_and_si256(_mm256_slli_epi16(hv, 4), b4);
            __m256i hhi = _mm256_and_si256(_mm256_slli_epi16(hv, 3), b4);
            hv = _mm256_srli_epi16(hv, 2);
            __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), hlo);
            __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), hhi);
            __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * c)));
            __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * c + 32)));
            is0 = dp_s16(is0, p0, bcast16(sc16, 2 * c));
            is1 = dp_s16(is1, p1, bcast16(sc16, 2 * c + 1));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(is0, is1)), acc);
    }
    *s = hsum_ps(_mm256_add_ps(acc, accm));
}


/* Index vectors for q6_k_pair: 16-bit word 2p in the low 128 bits, word 2p+1
 * in the high 128 bits (each repeated), for p = 0..3. */
static inline __m256i q6_pair_idx(int p)
{
    const short lo = (short)(0x0100 + 0x0202 * (2 * p)), hi = (short)(0x0100 + 0x0202 * (2 * p + 1));
    return _mm256_setr_epi16(lo, lo, lo, lo, lo, lo, lo, lo, hi, hi, hi, hi, hi, hi, hi, hi);
}

static void x_dot_q6_K(int64_t n, float *s, const void *w, const void *a)
{
    const block_q6_K *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x30);
    const __m256i i0 = q6_pair_idx(0), i1 = q6_pair_idx(1), i2 = q6_pair_idx(2), i3 = q6_pair_idx(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        /* the 16 scales as i16; the -32 offset: 32 * sum_j sc[j] * bsums[j] */
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[b].scales));
        __m256i corr = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[b].bsums), sc16);
        __m256i isum = _mm256_setzero_si256(), isum2 = _mm256_setzero_si256();
        const uint8_t *ql = x[b].ql, *qh = x[b].qh;
        const int8_t *q8 = y[b].qs;
        QK_UNROLL
        for (int h = 0; h < 2; h++) {
            /* scales 8h..8h+7 in both 128-bit lanes */
            const __m256i sch = h ? _mm256_permute4x64_epi64(sc16, 0xEE) : _mm256_permute4x64_epi64(sc16, 0x44);
            __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
            __m256i v0 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m2));
            __m256i v1 = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m2));
            __m256i v2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m2));
            __m256i v3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                         _mm256_and_si256(_mm256_srli_epi16(hb, 2), m2));
            isum = dp_s16(isum, _mm256_maddubs_epi16(v0, _mm256_loadu_si256((const __m256i *)(q8 + 0))), _mm256_shuffle_epi8(sch, i0));
            isum2 = dp_s16(isum2, _mm256_maddubs_epi16(v1, _mm256_loadu_si256((const __m256i *)(q8 + 32))), _mm256_shuffle_epi8(sch, i1));
            isum = dp_s16(isum, _mm256_maddubs_epi16(v2, _mm256_loadu_si256((const __m256i *)(q8 + 64))), _mm256_shuffle_epi8(sch, i2));
            isum2 = dp_s16(isum2, _mm256_maddubs_epi16(v3, _mm256_loadu_si256((const __m256i *)(q8 + 96))), _mm256_shuffle_epi8(sch, i3));
            ql += 64; qh += 32; q8 += 128;
        }
        isum = _mm256_sub_epi32(_mm256_add_epi32(isum, isum2), _mm256_slli_epi32(corr, 5));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[b].d * h2f(x[b].d)), _mm256_cvtepi32_ps(isum), acc);
    }
    *s = hsum_ps(acc);
}

static void x_dot_q2_K(int64_t n, float *s, const void *w, const void *a)
{
    const block_q2_K *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i i0 = q6_pair_idx(0), i1 = q6_pair_idx(1), i2 = q6_pair_idx(2), i3 = q6_pair_idx(3);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *sc = x[b].scales;
        const __m128i scb = _mm_loadu_si128((const __m128i *)sc);
        __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(scb, 4), _mm_set1_epi8(0x0F)));
        __m256i md = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[b].bsums), mn16);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(-y[b].d * h2f(x[b].dmin)), _mm256_cvtepi32_ps(md), accm);
        /* the 16 sub-block scales as i16 */
        const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(scb, _mm_set1_epi8(0x0F)));
        __m256i is0 = _mm256_setzero_si256(), is1 = _mm256_setzero_si256();
        const int8_t *q8 = y[b].qs;
        QK_UNROLL
        for (int h = 0; h < 2; h++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * h));
            const __m256i sch = h ? _mm256_permute4x64_epi64(sc16, 0xEE) : _mm256_permute4x64_epi64(sc16, 0x44);
            QK_UNROLL
            for (int j = 0; j < 4; j += 2) {
                __m256i v0 = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j)), m3);
                __m256i v1 = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j + 2)), m3);
                __m256i p0 = _mm256_maddubs_epi16(v0, _mm256_loadu_si256((const __m256i *)(q8 + 32 * j)));
                __m256i p1 = _mm256_maddubs_epi16(v1, _mm256_loadu_si256((const __m256i *)(q8 + 32 * j + 32)));
                is0 = dp_s16(is0, p0, _mm256_shuffle_epi8(sch, j ? i2 : i0));
                is1 = dp_s16(is1, p1, _mm256_shuffle_epi8(sch, j ? i3 : i1));
            }
            q8 += 128;
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[b].d * h2f(x[b].d)),
                              _mm256_cvtepi32_ps(_mm256_add_epi32(is0, is1)), acc);
    }
    *s = hsum_ps(_mm256_add_ps(acc, accm));
}

static void x_dot_q3_K(int64_t n, float *s, const void *w, const void *a)
{
    const block_q3_K *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    const __m256i i0 = q6_pair_idx(0), i1 = q6_pair_idx(1), i2 = q6_pair_idx(2), i3 = q6_pair_idx(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        /* 16 six-bit scales: low nibbles in bytes 0..7 (scales 0..7, then the
         * high nibbles 8..15), two high bits each in bytes 8..11 */
        uint32_t u[3];
        memcpy(u, x[b].scales, 12);
        const uint32_t m4w = 0x0f0f0f0f, m2w = 0x03030303;
        const __m128i scb = _mm_setr_epi32((int)((u[0] & m4w) | ((u[2] & m2w) << 4)),
                                           (int)((u[1] & m4w) | (((u[2] >> 2) & m2w) << 4)),
                                           (int)(((u[0] >> 4) & m4w) | (((u[2] >> 4) & m2w) << 4)),
                                           (int)(((u[1] >> 4) & m4w) | (((u[2] >> 6) & m2w) << 4)));
        /* values are u - 4 with u in 0..7: subtract 4 * sum_j sc[j] * bsums[j] */
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_sub_epi8(scb, _mm_set1_epi8(32)));
        __m256i corr = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[b].bsums), sc16);
        __m256i is0 = _mm256_setzero_si256(), is1 = _mm256_setzero_si256();
        const __m256i hm = _mm256_loadu_si256((const __m256i *)x[b].hmask);
        const int8_t *q8 = y[b].qs;
        QK_UNROLL
        for (int h = 0; h < 2; h++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * h));
            const __m256i sch = h ? _mm256_permute4x64_epi64(sc16, 0xEE) : _mm256_permute4x64_epi64(sc16, 0x44);
            QK_UNROLL
            for (int j = 0; j < 4; j++) {
                __m256i lo = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j)), m3);
                __m256i hb = _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128(4 * h + j)), one);
                __m256i uq = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 2));
                __m256i p = _mm256_maddubs_epi16(uq, _mm256_loadu_si256((const __m256i *)(q8 + 32 * j)));
                const __m256i scp = _mm256_shuffle_epi8(sch, j == 0 ? i0 : j == 1 ? i1 : j == 2 ? i2 : i3);
                if (j & 1) is1 = dp_s16(is1, p, scp);
                else       is0 = dp_s16(is0, p, scp);
            }
            q8 += 128;
        }
        __m256i isum = _mm256_sub_epi32(_mm256_add_epi32(is0, is1), _mm256_slli_epi32(corr, 2));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * y[b].d), _mm256_cvtepi32_ps(isum), acc);
    }
    *s = hsum_ps(acc);
}

static void x_dot_iq4_xs(int64_t n, float *s, const void *w, const void *a)
{
    const block_iq4_xs *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qfit_kvalues_iq4nl));
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i is0 = _mm256_setzero_si256(), is1 = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            const int ls = (((x[b].scales_l[ib / 2] >> (4 * (ib & 1))) & 0x0F)
                           | (((x[b].scales_h >> (2 * ib)) & 3) << 4)) - 32;
            __m256i v = _mm256_shuffle_epi8(kv, nibbles32(x[b].qs + 16 * ib));
            __m256i q = _mm256_loadu_si256((const __m256i *)(y[b].qs + 32 * ib));
            __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(q, v));
            if (ib & 1) is1 = dp_s16(is1, p, _mm256_set1_epi16((short)ls));
            else        is0 = dp_s16(is0, p, _mm256_set1_epi16((short)ls));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * y[b].d),
                              _mm256_cvtepi32_ps(_mm256_add_epi32(is0, is1)), acc);
    }
    *s = hsum_ps(acc);
}

/* ---------------- activation quantizers (bit-identical to the reference) ---------------- */

/* roundf: half away from zero, exactly */
static inline __m256 round_away(__m256 v)
{
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_sub_ps(v, t);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 afrac = _mm256_andnot_ps(sign, frac);
    __m256 ge = _mm256_cmp_ps(afrac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, sign));
    return _mm256_add_ps(t, _mm256_and_ps(ge, one));
}

static inline float hmax_ps(__m256 v)
{
    __m128 r = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    r = _mm_max_ps(r, _mm_movehl_ps(r, r));
    r = _mm_max_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* 4 x 8 i32 (each in [-127, 127]) -> 32 i8 in element order */
static inline __m256i pack_i32x32(__m256i i0, __m256i i1, __m256i i2, __m256i i3)
{
    __m256i a = _mm256_packs_epi32(i0, i1), b = _mm256_packs_epi32(i2, i3);
    __m256i c = _mm256_packs_epi16(a, b);
    return _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static void x_quant_q8_0(const float *x, void *vy, int64_t n)
{
    block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t b = 0; b < nb; b++, x += QK8_0) {
        __m256 v[4];
        __m256 mx = _mm256_setzero_ps(), un = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            un = _mm256_or_ps(un, _mm256_cmp_ps(v[k], v[k], _CMP_UNORD_Q));
            mx = _mm256_max_ps(mx, _mm256_and_ps(v[k], absmask));
        }
        if (_mm256_movemask_ps(un)) {
            qfit_quantize_row_q8_0_ref(x, &y[b], QK8_0);
            continue;
        }
        const float amax = hmax_ps(mx);
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = qfit_fp32_to_fp16(d);
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) q[k] = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(v[k], vid)));
        _mm256_storeu_si256((__m256i *)y[b].qs, pack_i32x32(q[0], q[1], q[2], q[3]));
    }
}

static void x_quant_q8_K(const float *x, void *vy, int64_t n)
{
    block_q8_K *y = vy;
    const int64_t nb = n / QK_K;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t b = 0; b < nb; b++, x += QK_K) {
        __m256 mx = _mm256_setzero_ps(), un = _mm256_setzero_ps();
        for (int k = 0; k < QK_K; k += 8) {
            __m256 v = _mm256_loadu_ps(x + k);
            un = _mm256_or_ps(un, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
            mx = _mm256_max_ps(mx, _mm256_and_ps(v, absmask));
        }
        if (_mm256_movemask_ps(un)) {   /* NaNs: the reference decides what happens */
            qfit_quantize_row_q8_K_ref(x, &y[b], QK_K);
            continue;
        }
        const float amax = hmax_ps(mx);
        if (amax == 0.0f) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        float vmax = 0.0f;
        for (int j = 0; j < QK_K; j++)
            if (x[j] == amax || x[j] == -amax) { vmax = x[j]; break; }
        const float inv = -127.f / vmax;
        const __m256 vinv = _mm256_set1_ps(inv);
        const __m256i lim = _mm256_set1_epi32(127);
        for (int k = 0; k < QK_K; k += 32) {
            __m256i q[4];
            for (int t = 0; t < 4; t++) {
                __m256 p = _mm256_mul_ps(vinv, _mm256_loadu_ps(x + k + 8 * t));
                q[t] = _mm256_min_epi32(_mm256_cvtps_epi32(p), lim);   /* RNE, as the reference */
            }
            __m256i packed = pack_i32x32(q[0], q[1], q[2], q[3]);
            _mm256_storeu_si256((__m256i *)(y[b].qs + k), packed);
            /* two bsums of 16 */
            __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), packed);   /* pairs */
            __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));          /* quads */
            int32_t t8[8];
            _mm256_storeu_si256((__m256i *)t8, s32);
            y[b].bsums[k / 16]     = (int16_t)(t8[0] + t8[1] + t8[2] + t8[3]);
            y[b].bsums[k / 16 + 1] = (int16_t)(t8[4] + t8[5] + t8[6] + t8[7]);
        }
        y[b].d = 1 / inv;
    }
}

/* ---------------- rows in sequence ---------------- */

/* QK_DOTN consecutive rows one after the other with the one-row kernel (called
 * directly, so inlined): the same sums as one call per row, and the rows are read in
 * order (the stream the hardware prefetcher follows: interleaving the rows of an F32
 * matrix that streams from L3 made it 1.4-2.4x slower). What it saves is qfit_gemm's
 * indirect call and loop per row, which on 256-wide rows is 3-6% of a decode token of
 * the 7M model. */
#define QK_SEQ_DOTN(name, dot1)                                                                  \
    static void name(int64_t n, float *s, const void *w, size_t w_stride, const void *a)         \
    {                                                                                            \
        const uint8_t *wb = w;                                                                   \
        for (int r = 0; r < QK_DOTN; r++) dot1(n, s + r, wb + (size_t)r * w_stride, a);          \
    }
QK_SEQ_DOTN(x_dotn_f32, x_dot_f32)
QK_SEQ_DOTN(x_dotn_f16, x_dot_f16)
QK_SEQ_DOTN(x_dotn_q8_0, x_dot_q8_0)
QK_SEQ_DOTN(x_dotn_q6_K, x_dot_q6_K)
#undef QK_SEQ_DOTN

/* ---------------- table ---------------- */

void QK_X86_FILL(qk_table *t)
{
    t->dot[QFIT_TYPE_F32]    = x_dot_f32;
    t->dot[QFIT_TYPE_F16]    = x_dot_f16;
    t->dot[QFIT_TYPE_BF16]   = x_dot_bf16;
    t->dot[QFIT_TYPE_Q4_0]   = x_dot_q4_0;
    t->dot[QFIT_TYPE_Q4_1]   = x_dot_q4_1;
    t->dot[QFIT_TYPE_Q5_0]   = x_dot_q5_0;
    t->dot[QFIT_TYPE_Q5_1]   = x_dot_q5_1;
    t->dot[QFIT_TYPE_Q8_0]   = x_dot_q8_0;
    t->dot[QFIT_TYPE_IQ4_NL] = x_dot_iq4_nl;
    t->dot[QFIT_TYPE_MXFP4]  = x_dot_mxfp4;
    t->dot[QFIT_TYPE_Q4_K]   = x_dot_q4_K;
    t->dot[QFIT_TYPE_Q5_K]   = x_dot_q5_K;
    t->dot[QFIT_TYPE_Q6_K]   = x_dot_q6_K;
    t->dot[QFIT_TYPE_Q2_K]   = x_dot_q2_K;
    t->dot[QFIT_TYPE_Q3_K]   = x_dot_q3_K;
    t->dot[QFIT_TYPE_IQ4_XS] = x_dot_iq4_xs;
    t->dotn[QFIT_TYPE_Q4_K]  = x_dotn_q4_K;
    t->dotn[QFIT_TYPE_F32]   = x_dotn_f32;
    t->dotn[QFIT_TYPE_F16]   = x_dotn_f16;
    t->dotn[QFIT_TYPE_Q8_0]  = x_dotn_q8_0;
    t->dotn[QFIT_TYPE_Q6_K]  = x_dotn_q6_K;
    t->quant[QFIT_TYPE_Q8_0] = x_quant_q8_0;
    t->quant[QFIT_TYPE_Q8_K] = x_quant_q8_K;
}

#endif
