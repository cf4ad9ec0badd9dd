/* Internal: block layouts, byte-identical to ggml's. Shared by the reference
 * quantizers (src/quant) and the compute kernels (src/kernels).
 * Half floats are stored as raw uint16_t (IEEE binary16). */
#ifndef QFIT_BLOCKS_H
#define QFIT_BLOCKS_H

#include <assert.h>
#include <stdint.h>

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK4_NL 32
#define QK_MXFP4 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef uint16_t qfit_half;

typedef struct { qfit_half d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct { qfit_half d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
typedef struct { qfit_half d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
typedef struct { qfit_half d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
typedef struct { qfit_half d; int8_t qs[QK8_0]; } block_q8_0;
typedef struct { qfit_half d, s; int8_t qs[QK8_1]; } block_q8_1;   /* s = d * sum(qs) */

/* Q2_K: 2.625 bpw. scales: low 4 bits scale, high 4 bits min, per 16 elements */
typedef struct {
    uint8_t scales[QK_K / 16];
    uint8_t qs[QK_K / 4];
    qfit_half d, dmin;
} block_q2_K;

/* Q3_K: 3.4375 bpw. hmask: high bit; 6-bit scales packed in 12 bytes */
typedef struct {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];
    qfit_half d;
} block_q3_K;

/* Q4_K: 4.5 bpw. 8 sub-blocks of 32 with 6-bit scales and mins */
typedef struct {
    qfit_half d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
} block_q4_K;

/* Q5_K: 5.5 bpw */
typedef struct {
    qfit_half d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;

/* Q6_K: 6.5625 bpw. 16 sub-blocks of 16 with 8-bit scales */
typedef struct {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t  scales[QK_K / 16];
    qfit_half d;
} block_q6_K;

/* Q8_K: activations for K-quant dot products */
typedef struct {
    float   d;
    int8_t  qs[QK_K];
    int16_t bsums[QK_K / 16];
} block_q8_K;

typedef struct { qfit_half d; uint8_t qs[QK4_NL / 2]; } block_iq4_nl;
typedef struct {
    qfit_half d;
    uint16_t scales_h;
    uint8_t  scales_l[QK_K / 64];
    uint8_t  qs[QK_K / 2];
} block_iq4_xs;

/* MXFP4 (OCP microscaling): one E8M0 exponent e, then 32 E2M1 codes as
 * nibbles (low nibbles = elements 0..15, high = 16..31). */
typedef struct { uint8_t e; uint8_t qs[QK_MXFP4 / 2]; } block_mxfp4;

static_assert(sizeof(block_q4_0) == 18, "block_q4_0 size");
static_assert(sizeof(block_q4_1) == 20, "block_q4_1 size");
static_assert(sizeof(block_q5_0) == 22, "block_q5_0 size");
static_assert(sizeof(block_q5_1) == 24, "block_q5_1 size");
static_assert(sizeof(block_q8_0) == 34, "block_q8_0 size");
static_assert(sizeof(block_q8_1) == 36, "block_q8_1 size");
static_assert(sizeof(block_q2_K) == 84, "block_q2_K size");
static_assert(sizeof(block_q3_K) == 110, "block_q3_K size");
static_assert(sizeof(block_q4_K) == 144, "block_q4_K size");
static_assert(sizeof(block_q5_K) == 176, "block_q5_K size");
static_assert(sizeof(block_q6_K) == 210, "block_q6_K size");
static_assert(sizeof(block_q8_K) == 292, "block_q8_K size");
static_assert(sizeof(block_iq4_nl) == 18, "block_iq4_nl size");
static_assert(sizeof(block_iq4_xs) == 136, "block_iq4_xs size");
static_assert(sizeof(block_mxfp4) == 17, "block_mxfp4 size");

/* the 16 non-linear levels of IQ4_NL / IQ4_XS */
extern const int8_t qfit_kvalues_iq4nl[16];

/* the 16 E2M1 values of MXFP4, doubled so they are integers:
 * {0, 0.5, 1, 1.5, 2, 3, 4, 6} and their negatives (code 8 is -0) */
extern const int8_t qfit_kvalues_mxfp4[16];

/* Value of an E8M0 exponent byte, halved to undo the doubling of the table:
 * 2^(e - 128) (ggml's GGML_E8M0_TO_FP32_HALF; e = 255 gives 2^127, not NaN). */
static inline float qfit_e8m0_to_fp32_half(uint8_t e)
{
    /* e < 2: the subnormals 2^-128 and 2^-127; else the normal 2^(e-128) */
    const uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    union { uint32_t u; float f; } v = { bits };
    return v.f;
}

#endif
