/* The deterministic inputs of the MXFP4 reference files, shared by the generator
 * (tests/data/mxfp4/gen-refs.c, linked against ggml) and the test that reads the
 * files (tests/test_mxfp4.c). Only integer arithmetic, bit patterns and exact or
 * IEEE-rounded float operations (no libm), so both programs make the same bits;
 * refs.txt records an FNV-1a hash of them and the test checks it.
 *
 * MX_NQ blocks of 32 floats for the quantizer, in groups:
 *   [0, 32)       special blocks: zeros of both signs, subnormals, FLT_MAX, inf, NaN
 *   [32, 863)     the exponent sweep: for every E in -149..127 three blocks whose largest
 *                 magnitude is 2^E minus one ulp, 2^E, and 2^E times a random mantissa
 *                 (the exponent byte, log2f's rounding just below powers of two, the
 *                 clamps at both ends)
 *   [863, 2400)   rounding boundaries: amax = 2^F, every other value exactly half-way
 *                 between two levels of the block's scale, or one ulp either side
 *   [2400, 4096)  weight-like values: sums of three uniforms at random scales, outliers,
 *                 exact zeros
 * MX_NA activation rows of MX_DOT_N floats (quantized to Q8_0 by ggml for the dot). */
#ifndef QFIT_MXFP4_CASES_H
#define QFIT_MXFP4_CASES_H

#include <stdint.h>
#include <string.h>

#define MX_NQ 4096           /* quantizer input blocks */
#define MX_NDEQ 256          /* dequantizer blocks: one per exponent byte */
#define MX_DOT_BLOCKS 8      /* blocks per dot-product row */
#define MX_DOT_N (32 * MX_DOT_BLOCKS)
#define MX_NW 128            /* weight rows of the dot set */
#define MX_NA 128            /* activation rows */
#define MX_NDOT (2 * MX_NW)  /* pairs: (r, r) and (r, (r + 1) % MX_NA) */
#define MX_DOT_MAX_E 200     /* dot rows use blocks with e <= this (no overflow to inf) */

static inline uint32_t mx_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 32);
}
static inline float mx_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t mx_ubits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
/* 2^E for E in -149..127 (subnormal below -126) */
static inline float mx_pow2(int E)
{
    return E >= -126 ? mx_bits((uint32_t)(E + 127) << 23) : mx_bits(1u << (E + 149));
}
/* uniform in (-1, 1), 24 bits: exact */
static inline float mx_unif(uint64_t *s)
{
    return (float)((int32_t)mx_next(s) >> 8) * mx_pow2(-23);
}

/* the weight (block) with the dot product's index i: the blocks are visited in
 * the order i * 1237 mod MX_NQ, the first with e <= MX_DOT_MAX_E taken */
static inline int mx_dot_block_order(int i) { return (int)(((int64_t)i * 1237) % MX_NQ); }

static inline void mx_special(int b, float *x)
{
    uint64_t s = 77 + (uint64_t)b;
    memset(x, 0, 32 * sizeof(float));
    switch (b) {
    case 0: break;                                                              /* all +0 */
    case 1: for (int j = 0; j < 32; j++) x[j] = -0.0f; break;                   /* all -0 */
    case 2: for (int j = 0; j < 32; j++) x[j] = (j & 1) ? -0.0f : 0.0f; break;
    case 3: x[5] = mx_pow2(-149); break;                                        /* one smallest subnormal */
    case 4: for (int j = 0; j < 32; j++) x[j] = (j & 1) ? -mx_pow2(-149) : mx_pow2(-149); break;
    case 5: for (int j = 0; j < 32; j++) x[j] = mx_bits(0x007fffffu - (uint32_t)j); break;   /* largest subnormals */
    case 6: x[31] = mx_bits(0x7f7fffffu); x[0] = 1.0f; x[1] = -3e38f; break;    /* FLT_MAX */
    case 7: for (int j = 0; j < 32; j++) x[j] = mx_bits(0x7f7fffffu - (uint32_t)(j * 1000)); break;
    case 8: x[3] = mx_bits(0x7f800000u); x[4] = 2.0f; break;                    /* +inf */
    case 9: x[3] = mx_bits(0xff800000u); x[4] = 2.0f; break;                    /* -inf */
    case 10: x[0] = mx_bits(0x7fc00000u); for (int j = 1; j < 32; j++) x[j] = mx_unif(&s); break;   /* NaN */
    case 11: for (int j = 0; j < 32; j++) x[j] = mx_bits(0x7fc00000u); break;  /* all NaN */
    case 12: for (int j = 0; j < 32; j++) x[j] = 1.0f; break;
    case 13: for (int j = 0; j < 32; j++) x[j] = -6.0f; break;
    case 14: x[7] = -1.0f; break;                                               /* one negative */
    case 15: for (int j = 0; j < 32; j++) x[j] = (float)(j - 16) * 0.25f; break;
    case 16: for (int j = 0; j < 32; j++) x[j] = mx_pow2(-125) * mx_unif(&s); break;   /* e = 0 region */
    case 17: x[0] = mx_pow2(-125); for (int j = 1; j < 32; j++) x[j] = mx_pow2(-128) * (float)(j % 13); break;
    case 18: x[0] = mx_bits(0x01000000u - 1); break;                            /* just below 2^-125 */
    case 19: x[0] = mx_pow2(-126); for (int j = 1; j < 32; j++) x[j] = -mx_pow2(-140) * (float)j; break;
    case 20: x[0] = mx_pow2(127); for (int j = 1; j < 32; j++) x[j] = mx_pow2(124) * (float)(j % 17 - 8); break;
    case 21: x[0] = mx_pow2(127) * 1.5f; x[1] = -mx_pow2(126) * 1.25f; break;
    default: {
        /* a value and many tiny ones: everything below amax / 32 becomes 0 */
        const float a = mx_pow2(b - 30);
        x[b % 32] = a;
        for (int j = 0; j < 32; j++)
            if (j != b % 32) x[j] = a * mx_pow2(-5 - (j % 4)) * (float)(1 + (j % 3));
        break;
    }
    }
}

/* exponent sweep: block k (0 .. 830): E = -149 + k / 3 */
static inline void mx_sweep(int k, float *x)
{
    uint64_t s = 1000 + (uint64_t)k;
    const int E = -149 + k / 3;
    float amax;
    switch (k % 3) {
    case 0: amax = mx_bits(mx_ubits(mx_pow2(E)) - 1); break;   /* one ulp below 2^E */
    case 1: amax = mx_pow2(E); break;
    default: amax = E >= -126 ? mx_bits(mx_ubits(mx_pow2(E)) | (mx_next(&s) & 0x7fffffu))
                              : mx_bits(mx_ubits(mx_pow2(E)) | (mx_next(&s) & (mx_ubits(mx_pow2(E)) - 1)));
    }
    for (int j = 0; j < 32; j++) x[j] = amax * mx_unif(&s);
    const int at = (int)(mx_next(&s) % 32);
    x[at] = (mx_next(&s) & 1) ? -amax : amax;
}

/* rounding boundaries: block k, scale d = 2^(F-3) for amax = 2^F */
static inline void mx_boundary(int k, float *x)
{
    /* half-way points between consecutive levels of kvalues (0 1 2 3 4 6 8 12) and past 12 */
    static const float mid[9] = { 0.5f, 1.5f, 2.5f, 3.5f, 5.0f, 7.0f, 10.0f, 14.0f, 15.5f };
    uint64_t s = 5000 + (uint64_t)k;
    const int F = -100 + (int)(mx_next(&s) % 221);           /* -100 .. 120 */
    const float d = mx_pow2(F - 3);
    x[0] = (mx_next(&s) & 1) ? -mx_pow2(F) : mx_pow2(F);
    for (int j = 1; j < 32; j++) {
        float v = mid[mx_next(&s) % 9] * d;
        const uint32_t r = mx_next(&s) % 4;                   /* 0, 1: exact; 2: ulp below; 3: above */
        if (r == 2) v = mx_bits(mx_ubits(v) - 1);
        if (r == 3) v = mx_bits(mx_ubits(v) + 1);
        x[j] = (mx_next(&s) & 1) ? -v : v;
    }
}

/* weight-like values */
static inline void mx_weights(int k, float *x)
{
    uint64_t s = 90000 + (uint64_t)k;
    const int S = -24 + (int)(mx_next(&s) % 31);              /* scale 2^-24 .. 2^6 */
    const float sc = mx_pow2(S);
    for (int j = 0; j < 32; j++) {
        /* one call per statement: the order of calls within an expression is unspecified */
        float g = mx_unif(&s);
        g += mx_unif(&s);
        g += mx_unif(&s);
        if ((mx_next(&s) & 63) == 0) g *= 16.0f;
        if ((mx_next(&s) & 31) == 0) g = 0.0f;
        x[j] = g * sc;
    }
}

/* block b (0 .. MX_NQ-1) of the quantizer inputs */
static inline void mx_block(int b, float *x)
{
    if (b < 32) mx_special(b, x);
    else if (b < 863) mx_sweep(b - 32, x);
    else if (b < 2400) mx_boundary(b - 863, x);
    else mx_weights(b - 2400, x);
}

/* activation row r (MX_DOT_N floats) */
static inline void mx_activation(int r, float *x)
{
    uint64_t s = 700000 + (uint64_t)r;
    const float sc = mx_pow2(-8 + (int)(mx_next(&s) % 12));
    for (int j = 0; j < MX_DOT_N; j++) {
        float g = mx_unif(&s);
        g += mx_unif(&s);
        if ((mx_next(&s) & 127) == 0) g *= 20.0f;
        x[j] = g * sc;
    }
}

/* the dequantizer's test blocks: exponent byte b, low nibble j, high nibble 15 - j */
static inline void mx_deq_block(int b, uint8_t blk[17])
{
    blk[0] = (uint8_t)b;
    for (int j = 0; j < 16; j++) blk[1 + j] = (uint8_t)(j | ((15 - j) << 4));
}

static inline uint64_t mx_fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *c = p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ULL;
    return h;
}
#define MX_FNV_INIT 0xcbf29ce484222325ULL
#define MX_QGROUP 128   /* blocks per digest of ggml's quantization in refs.txt */

#endif
