/* qfit — MXFP4 (OCP microscaling FP4, ggml type 39), the format of gpt-oss's
 * experts: 32 values share a power-of-two scale stored as an E8M0 exponent
 * byte, each value is a 4-bit E2M1 float (sign, 2 exponent bits, 1 mantissa
 * bit: 0, 0.5, 1, 1.5, 2, 3, 4, 6).
 *
 * As ggml does, the E2M1 values are kept doubled (the integers of
 * qfit_kvalues_mxfp4) and the scale halved (qfit_e8m0_to_fp32_half), so a
 * value is kvalues[code] * 2^(e - 128) and the dot kernels can run integer
 * arithmetic on the codes.
 *
 * The quantizer reproduces ggml's quantize_row_mxfp4_ref byte for byte:
 *   e = floor(log2(amax)) - 2 + 127, so the largest level (6 = 12 / 2) times
 *       2^(e - 127) is within a factor 2 of amax: amax / scale lands in [4, 8);
 *   each value takes the level nearest to it, the lowest code on ties.
 * log2f is ggml's too (not frexpf): just below a power of two, log2f rounds
 * up to the integer, which moves the exponent by one, and matching ggml means
 * rounding there the same way (glibc's log2f on both sides). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <stdint.h>

#include "quant/blocks.h"
#include "quant/quant_internal.h"

const int8_t qfit_kvalues_mxfp4[16] = {
    0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12,
};

/* The exponent byte of a block whose largest magnitude is amax (NaNs are never
 * taken as amax: see below). ggml writes (uint8_t)(floorf(log2f(amax)) - 2 + 127),
 * a float-to-uint8 conversion that C leaves undefined outside 0..255: for
 * amax < 2^-125 (the float is -1 .. -24) and for amax = inf. The reference was
 * built on x86-64, where the conversion goes through a 32-bit integer: negative
 * values wrap modulo 256 (amax = 2^-149 gives 232) and inf gives the "integer
 * indefinite" 0x80000000, whose low byte is 0. The same is done here without
 * the undefined conversion. */
static uint8_t block_exponent(float amax)
{
    if (!(amax > 0.0f)) return 0;
    const float f = floorf(log2f(amax)) - 2 + 127;   /* ggml's float expression */
    if (!(f >= -2147483648.0f && f < 2147483648.0f)) return 0;
    return (uint8_t)(uint32_t)(int32_t)f;            /* modulo 256, defined */
}

/* Code of the level nearest to x for scale d: the first of the lowest
 * |kvalues[i] * d - x| (so -0 (code 8) is never chosen over +0, and a value
 * half-way between two levels takes the one of lower code; a NaN x gets 0). */
static inline uint8_t nearest_code(float x, float d)
{
    uint8_t best = 0;
    float best_err = fabsf((float)qfit_kvalues_mxfp4[0] * d - x);
    for (uint8_t i = 1; i < 16; i++) {
        const float err = fabsf((float)qfit_kvalues_mxfp4[i] * d - x);
        if (err < best_err) {
            best = i;
            best_err = err;
        }
    }
    return best;
}

void qfit_quantize_row_mxfp4_ref(const float *x, void *vy, int64_t k)
{
    block_mxfp4 *y = vy;
    const int64_t nb = k / QK_MXFP4;
    for (int64_t i = 0; i < nb; i++, x += QK_MXFP4) {
        float amax = 0.0f;
        for (int j = 0; j < QK_MXFP4; j++)
            if (amax < fabsf(x[j])) amax = fabsf(x[j]);   /* false for NaN: skipped */
        const uint8_t e = block_exponent(amax);
        const float d = qfit_e8m0_to_fp32_half(e);
        y[i].e = e;
        for (int j = 0; j < QK_MXFP4 / 2; j++)
            y[i].qs[j] = (uint8_t)(nearest_code(x[j], d) | (nearest_code(x[j + QK_MXFP4 / 2], d) << 4));
    }
}

void qfit_dequantize_row_mxfp4(const void *vx, float *y, int64_t k)
{
    const block_mxfp4 *x = vx;
    const int64_t nb = k / QK_MXFP4;
    for (int64_t i = 0; i < nb; i++, y += QK_MXFP4) {
        const float d = qfit_e8m0_to_fp32_half(x[i].e);
        for (int j = 0; j < QK_MXFP4 / 2; j++) {
            y[j]                = (float)qfit_kvalues_mxfp4[x[i].qs[j] & 0x0F] * d;
            y[j + QK_MXFP4 / 2] = (float)qfit_kvalues_mxfp4[x[i].qs[j] >> 4] * d;
        }
    }
}
