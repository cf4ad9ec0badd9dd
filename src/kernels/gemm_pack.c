/* Weight panels for the register-tiled gemm kernels (portable C).
 *
 * A panel holds R consecutive weight rows, block by block, "transposed" so
 * that one vector load gives 4 consecutive quant values of each of the R rows
 * (row r in 32-bit lane r). The per-row scales of a block follow its quants as
 * R-wide arrays, ready to be loaded as vectors. Rows past the end of the matrix
 * are zero (scales included), so they contribute nothing and are not stored.
 *
 * Layout of one block (offsets in bytes, R rows):
 *   QK_PF_Q8  (32-element blocks, signed values: Q4_0 Q5_0 Q8_0 IQ4_NL MXFP4)
 *     qs[8][R][4] int8 | corr[R] int32 = 128 * sum of the block's values | d[R] f32
 *   QK_PF_Q8U (32-element blocks, unsigned values with a min: Q4_1 Q5_1)
 *     qs[8][R][4] uint8 | d[R] f32 | m[R] f32
 *   QK_PF_K32 (256 elements, 8 sub-blocks of 32, unsigned values u)
 *     qs[64][R][4] uint8 | sc[8][R] int32 | mn[8][R] (int16 pair: min, min) |
 *     d[R] f32 | dmin[R] f32
 *     Q4_K Q5_K: u = the stored value, sc and min as stored; a row's dot is
 *       d * sum(sc * dot(u, x)) - dmin * sum(min * xsum) ("mins" kernels)
 *     IQ4_XS: u = level + 128 (1..241), sc = scale - 32, min = 128 * sc, dmin = 0;
 *       the dot is d * (sum(sc * dot(u, x)) - sum(min * xsum)) ("offset" kernels)
 *   QK_PF_K16 (256 elements, 16 sub-blocks of 16, unsigned values u)
 *     qs[64][R][4] uint8 | sc[16][R] int32 | mn[8][R] (int16 pair: o[2p], o[2p+1]) |
 *     d[R] f32 | dmin[R] f32
 *     Q6_K: u = stored value (0..63), sc as stored, o = 32 * sc, dmin = 0 (offset)
 *     Q3_K: u = 2 low bits + 4 * high bit (0..7), sc = scale - 32, o = 4 * sc,
 *       dmin = 0 (offset)
 *     Q2_K: u = the 2 bits, sc = low scale nibble, o = min nibble, dmin (mins)
 *   xsum: the activation's (Q8_K) 16-element sums, taken in pairs.
 *   QK_PF_K4N (Q4_K with its nibbles as stored: half the bytes of K32, and packing
 *     is a transpose of 4-byte groups with no decoding — what makes the panel kernel
 *     pay off for a few activation rows, where packing dominates)
 *     qs[32][R][4] uint8: group g = 8c + j holds bytes 32c + 4j .. +3 of the row's
 *       qs: low nibbles = values 4j..4j+3 of sub-block 2c, high = of sub-block 2c+1 |
 *     sc[8][R] uint8 | mn[8][R] uint8 | d[R] f32 | dmin[R] f32
 *   QK_PF_Q8N (Q8_0 as stored: 34 bytes per row and block, as stored; VNNI only: the
 *     kernel feeds the activations offset to unsigned, 2 x 255 x 128 would saturate the
 *     maddubs emulation)
 *     qs[8][R][4] int8 | d[R] fp16
 *   QK_PF_Q4N (Q4_0 and IQ4_NL on their nibbles as stored: 18 bytes per row and block,
 *     as stored; VNNI only: the nibbles are vpdpbusd's unsigned side, IQ4_NL's through a
 *     16-entry table of level + 128, and the offset comes back out through the
 *     activation block sums of QK_ACT_Q8S)
 *     qs[4][R][4] uint8: group g holds bytes 4g .. 4g+3 of the row's qs (low nibbles =
 *       values 4g.., high = values 16 + 4g..) | d[R] fp16
 *   QK_PF_X4N (IQ4_XS on its nibbles, re-ordered as Q4_K's: 140 bytes per row and
 *     block, 136 stored)
 *     qs[32][R][4] uint8 as K4N's: group g = 8c + j holds, for l = 4j .. 4j+3, value l of
 *       sub-block 2c in the low nibble and value l of sub-block 2c+1 in the high one
 *       (the stored block has each sub-block's 16 first values in the low nibbles of
 *       its 16 bytes, the next 16 in the high ones) | sc[8][R] int8 = scale - 32 | d[R] f32
 *     the dot is d * (sum(sc * dot(level + 128, x)) - 128 * sum(sc * xsum))
 *   QK_PF_K6N (Q6_K with its bits as stored: 212 bytes per row and block, 210 stored;
 *     what lets Q6_K be packed once at load, see qfit_pack_matrix), in the order the
 *     kernel reads it (one pass, front to back):
 *     rec[16][3][R][4] uint8: record 8h + j (half h = 0..1, j = 0..7) holds ql bytes
 *       64h + 4j .. +3, ql bytes 64h + 32 + 4j .. +3 and qh bytes 32h + 4j .. +3 |
 *     sc[16][R] int8 as stored | d[R] f32
 *     Value 128h + 32t + l (t = 0..3, l = 0..31) is the low (t = 0, 1) or high (t = 2, 3)
 *     nibble of ql byte 64h + l + 32 (t & 1), with bits 2t, 2t+1 of qh byte 32h + l as
 *     its bits 4 and 5, minus 32 (ggml's order).
 */
#include <string.h>
#include "kernels/kernels_internal.h"
#include "quant/quant_internal.h"

#define H2F(h) qfit_fp16_to_fp32(h)

size_t qk_pack_block_bytes(int family, int R)
{
    switch (family) {
    case QK_PF_Q8:  return (size_t)R * (32 + 4 + 4);
    case QK_PF_Q8U: return (size_t)R * (32 + 4 + 4);
    case QK_PF_K32: return (size_t)R * (256 + 8 * 4 + 8 * 4 + 4 + 4);
    case QK_PF_K16: return (size_t)R * (256 + 16 * 4 + 8 * 4 + 4 + 4);
    case QK_PF_K4N: return (size_t)R * (128 + 8 + 8 + 4 + 4);
    case QK_PF_K6N: return (size_t)R * (128 + 64 + 16 + 4);
    case QK_PF_Q8N: return (size_t)R * (32 + 2);
    case QK_PF_Q4N: return (size_t)R * (16 + 2);
    case QK_PF_X4N: return (size_t)R * (128 + 8 + 4);
    }
    return 0;
}

int64_t qk_pack_family_block(int family)
{
    return family == QK_PF_Q8 || family == QK_PF_Q8U || family == QK_PF_Q8N || family == QK_PF_Q4N ? 32
                                                                                                   : QK_K;
}

int qk_pack_family(int wtype)
{
    switch (wtype) {
    case QFIT_TYPE_Q4_0: case QFIT_TYPE_Q5_0: case QFIT_TYPE_Q8_0: case QFIT_TYPE_IQ4_NL:
    case QFIT_TYPE_MXFP4:
        return QK_PF_Q8;
    case QFIT_TYPE_Q4_1: case QFIT_TYPE_Q5_1:
        return QK_PF_Q8U;
    case QFIT_TYPE_Q4_K: case QFIT_TYPE_Q5_K: case QFIT_TYPE_IQ4_XS:
        return QK_PF_K32;
    case QFIT_TYPE_Q2_K: case QFIT_TYPE_Q3_K: case QFIT_TYPE_Q6_K:
        return QK_PF_K16;
    default:
        return -1;
    }
}

/* Scatter the n values of one row into the transposed quant area. */
static inline void put_row(uint8_t *qs, const uint8_t *v, int n, int R, int r)
{
    for (int g = 0; g < n / 4; g++) memcpy(qs + ((size_t)g * R + r) * 4, v + 4 * g, 4);
}

static void pack_block_q8(int wtype, const uint8_t *src, int R, int r, uint8_t *dst)
{
    int8_t v[32];
    float d;
    if (wtype == QFIT_TYPE_MXFP4) {
        d = qfit_e8m0_to_fp32_half(src[0]);
    } else {
        uint16_t d16;   /* the other types start with an fp16 scale */
        memcpy(&d16, src, 2);
        d = H2F(d16);
    }
    switch (wtype) {
    case QFIT_TYPE_Q4_0: {
        const block_q4_0 *x = (const block_q4_0 *)src;
        for (int j = 0; j < 16; j++) {
            v[j] = (int8_t)((x->qs[j] & 0x0F) - 8);
            v[j + 16] = (int8_t)((x->qs[j] >> 4) - 8);
        }
        break;
    }
    case QFIT_TYPE_Q5_0: {
        const block_q5_0 *x = (const block_q5_0 *)src;
        uint32_t qh;
        memcpy(&qh, x->qh, 4);
        for (int j = 0; j < 16; j++) {
            v[j] = (int8_t)(((x->qs[j] & 0x0F) | (((qh >> j) & 1u) << 4)) - 16);
            v[j + 16] = (int8_t)(((x->qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16);
        }
        break;
    }
    case QFIT_TYPE_Q8_0: {
        const block_q8_0 *x = (const block_q8_0 *)src;
        memcpy(v, x->qs, 32);
        break;
    }
    case QFIT_TYPE_MXFP4: {
        const block_mxfp4 *x = (const block_mxfp4 *)src;
        for (int j = 0; j < 16; j++) {
            v[j] = qfit_kvalues_mxfp4[x->qs[j] & 0x0F];
            v[j + 16] = qfit_kvalues_mxfp4[x->qs[j] >> 4];
        }
        break;
    }
    default: {   /* IQ4_NL */
        const block_iq4_nl *x = (const block_iq4_nl *)src;
        for (int j = 0; j < 16; j++) {
            v[j] = qfit_kvalues_iq4nl[x->qs[j] & 0x0F];
            v[j + 16] = qfit_kvalues_iq4nl[x->qs[j] >> 4];
        }
        break;
    }
    }
    int32_t sum = 0;
    for (int j = 0; j < 32; j++) sum += v[j];
    put_row(dst, (const uint8_t *)v, 32, R, r);
    int32_t corr = 128 * sum;
    memcpy(dst + (size_t)R * 32 + 4 * (size_t)r, &corr, 4);
    memcpy(dst + (size_t)R * 36 + 4 * (size_t)r, &d, 4);
}

static void pack_block_q8u(int wtype, const uint8_t *src, int R, int r, uint8_t *dst)
{
    uint8_t v[32];
    uint16_t d16, m16;
    memcpy(&d16, src, 2);
    memcpy(&m16, src + 2, 2);
    if (wtype == QFIT_TYPE_Q4_1) {
        const block_q4_1 *x = (const block_q4_1 *)src;
        for (int j = 0; j < 16; j++) {
            v[j] = x->qs[j] & 0x0F;
            v[j + 16] = x->qs[j] >> 4;
        }
    } else {
        const block_q5_1 *x = (const block_q5_1 *)src;
        uint32_t qh;
        memcpy(&qh, x->qh, 4);
        for (int j = 0; j < 16; j++) {
            v[j] = (uint8_t)((x->qs[j] & 0x0F) | (((qh >> j) & 1u) << 4));
            v[j + 16] = (uint8_t)((x->qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4));
        }
    }
    put_row(dst, v, 32, R, r);
    float d = H2F(d16), m = H2F(m16);
    memcpy(dst + (size_t)R * 32 + 4 * (size_t)r, &d, 4);
    memcpy(dst + (size_t)R * 36 + 4 * (size_t)r, &m, 4);
}

/* The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block's 12 scale bytes. */
static void k4_scale_min(const uint8_t *scales, int j, int *s, int *m)
{
    if (j < 4) {
        *s = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *s = (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4);
        *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

/* IQ4_XS into the K32 layout: levels + 128, signed scales, the offset as the min */
static void pack_block_iq4_xs(const uint8_t *src, int R, int r, uint8_t *dst)
{
    const block_iq4_xs *x = (const block_iq4_xs *)src;
    uint8_t v[QK_K];
    for (int ib = 0; ib < 8; ib++) {
        for (int j = 0; j < 16; j++) {
            const uint8_t q = x->qs[16 * ib + j];
            v[32 * ib + j] = (uint8_t)(qfit_kvalues_iq4nl[q & 0x0F] + 128);
            v[32 * ib + 16 + j] = (uint8_t)(qfit_kvalues_iq4nl[q >> 4] + 128);
        }
    }
    put_row(dst, v, QK_K, R, r);
    uint8_t *sc = dst + (size_t)R * 256, *mn = sc + (size_t)R * 32, *fl = mn + (size_t)R * 32;
    for (int ib = 0; ib < 8; ib++) {
        const int ls = ((x->scales_l[ib / 2] >> (4 * (ib & 1))) & 0x0F) | (((x->scales_h >> (2 * ib)) & 3) << 4);
        const int32_t s32 = ls - 32;
        const int16_t m2[2] = {(int16_t)(128 * s32), (int16_t)(128 * s32)};
        memcpy(sc + ((size_t)ib * R + r) * 4, &s32, 4);
        memcpy(mn + ((size_t)ib * R + r) * 4, m2, 4);
    }
    const float d = H2F(x->d), dmin = 0.0f;
    memcpy(fl + 4 * (size_t)r, &d, 4);
    memcpy(fl + (size_t)R * 4 + 4 * (size_t)r, &dmin, 4);
}

static void pack_block_k32(int wtype, const uint8_t *src, int R, int r, uint8_t *dst)
{
    if (wtype == QFIT_TYPE_IQ4_XS) {
        pack_block_iq4_xs(src, R, r, dst);
        return;
    }
    const int five = wtype == QFIT_TYPE_Q5_K;
    uint16_t d16, m16;
    memcpy(&d16, src, 2);
    memcpy(&m16, src + 2, 2);
    const uint8_t *scales = src + 4;
    const uint8_t *qh = five ? src + 4 + K_SCALE_SIZE : NULL;
    const uint8_t *q4 = src + 4 + K_SCALE_SIZE + (five ? QK_K / 8 : 0);
    uint8_t v[QK_K];
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) {
            int lo = q4[32 * c + l] & 0x0F, hi = q4[32 * c + l] >> 4;
            if (five) {
                lo |= ((qh[l] >> (2 * c)) & 1) << 4;
                hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
            }
            v[64 * c + l] = (uint8_t)lo;
            v[64 * c + 32 + l] = (uint8_t)hi;
        }
    }
    put_row(dst, v, QK_K, R, r);
    uint8_t *sc = dst + (size_t)R * 256, *mn = sc + (size_t)R * 32, *fl = mn + (size_t)R * 32;
    for (int j = 0; j < 8; j++) {
        int s, m;
        k4_scale_min(scales, j, &s, &m);
        int32_t s32 = s;
        int16_t m2[2] = {(int16_t)m, (int16_t)m};
        memcpy(sc + ((size_t)j * R + r) * 4, &s32, 4);
        memcpy(mn + ((size_t)j * R + r) * 4, m2, 4);
    }
    float d = H2F(d16), dmin = H2F(m16);
    memcpy(fl + 4 * (size_t)r, &d, 4);
    memcpy(fl + (size_t)R * 4 + 4 * (size_t)r, &dmin, 4);
}

/* the 16 6-bit scales of a Q3_K block, less 32 */
static void q3_scales(const uint8_t *sb, int32_t *sc)
{
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? (sb[j] & 0x0F) : (sb[j - 8] >> 4);
        const int hi = (sb[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
        sc[j] = (lo | (hi << 4)) - 32;
    }
}

/* Q2_K / Q3_K: element 128h + 32c + l is bits 2c..2c+1 of byte 32h + l of qs
 * (Q3_K: plus bit 4h + c of hmask[l] as the third bit), sub-block = element / 16 */
static void pack_block_q23(int wtype, const uint8_t *src, int R, int r, uint8_t *dst)
{
    const int three = wtype == QFIT_TYPE_Q3_K;
    const uint8_t *qs = three ? ((const block_q3_K *)src)->qs : ((const block_q2_K *)src)->qs;
    uint8_t v[QK_K];
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int u = (qs[32 * h + l] >> (2 * c)) & 3;
                if (three) u |= ((((const block_q3_K *)src)->hmask[l] >> (4 * h + c)) & 1) << 2;
                v[128 * h + 32 * c + l] = (uint8_t)u;
            }
    put_row(dst, v, QK_K, R, r);
    int32_t s[16], o[16];
    float d, dmin;
    if (three) {
        const block_q3_K *x = (const block_q3_K *)src;
        q3_scales(x->scales, s);
        for (int j = 0; j < 16; j++) o[j] = 4 * s[j];
        d = H2F(x->d);
        dmin = 0.0f;
    } else {
        const block_q2_K *x = (const block_q2_K *)src;
        for (int j = 0; j < 16; j++) {
            s[j] = x->scales[j] & 0x0F;
            o[j] = x->scales[j] >> 4;
        }
        d = H2F(x->d);
        dmin = H2F(x->dmin);
    }
    uint8_t *sc = dst + (size_t)R * 256, *mn = sc + (size_t)R * 64, *fl = mn + (size_t)R * 32;
    for (int j = 0; j < 16; j++) memcpy(sc + ((size_t)j * R + r) * 4, &s[j], 4);
    for (int p = 0; p < 8; p++) {
        const int16_t m2[2] = {(int16_t)o[2 * p], (int16_t)o[2 * p + 1]};
        memcpy(mn + ((size_t)p * R + r) * 4, m2, 4);
    }
    memcpy(fl + 4 * (size_t)r, &d, 4);
    memcpy(fl + (size_t)R * 4 + 4 * (size_t)r, &dmin, 4);
}

static void pack_block_k16(int wtype, const uint8_t *src, int R, int r, uint8_t *dst)
{
    if (wtype != QFIT_TYPE_Q6_K) {
        pack_block_q23(wtype, src, R, r, dst);
        return;
    }
    const block_q6_K *x = (const block_q6_K *)src;
    uint8_t v[QK_K];
    const uint8_t *ql = x->ql, *qh = x->qh;
    for (int half = 0; half < 2; half++) {
        uint8_t *p = v + 128 * half;
        for (int l = 0; l < 32; l++) {
            p[l]      = (uint8_t)((ql[l] & 0x0F)      | (((qh[l] >> 0) & 3) << 4));
            p[l + 32] = (uint8_t)((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4));
            p[l + 64] = (uint8_t)((ql[l] >> 4)        | (((qh[l] >> 4) & 3) << 4));
            p[l + 96] = (uint8_t)((ql[l + 32] >> 4)   | (((qh[l] >> 6) & 3) << 4));
        }
        ql += 64;
        qh += 32;
    }
    put_row(dst, v, QK_K, R, r);
    uint8_t *sc = dst + (size_t)R * 256, *mn = sc + (size_t)R * 64, *fl = mn + (size_t)R * 32;
    for (int j = 0; j < 16; j++) {
        int32_t s32 = x->scales[j];
        memcpy(sc + ((size_t)j * R + r) * 4, &s32, 4);
    }
    for (int p = 0; p < 8; p++) {
        int16_t m2[2] = {(int16_t)(32 * x->scales[2 * p]), (int16_t)(32 * x->scales[2 * p + 1])};
        memcpy(mn + ((size_t)p * R + r) * 4, m2, 4);
    }
    float d = H2F(x->d);
    memcpy(fl + 4 * (size_t)r, &d, 4);
    memset(fl + (size_t)R * 4 + 4 * (size_t)r, 0, 4);
}

static void pack_block_k4n(const uint8_t *src, int R, int r, uint8_t *dst)
{
    const block_q4_K *x = (const block_q4_K *)src;
    put_row(dst, x->qs, QK_K / 2, R, r);
    uint8_t *sc = dst + (size_t)R * 128, *mn = sc + (size_t)R * 8, *fl = mn + (size_t)R * 8;
    for (int j = 0; j < 8; j++) {
        int s, m;
        k4_scale_min(x->scales, j, &s, &m);
        sc[(size_t)j * R + r] = (uint8_t)s;
        mn[(size_t)j * R + r] = (uint8_t)m;
    }
    float d = H2F(x->d), dmin = H2F(x->dmin);
    memcpy(fl + 4 * (size_t)r, &d, 4);
    memcpy(fl + (size_t)R * 4 + 4 * (size_t)r, &dmin, 4);
}

static void pack_block_q8n(const uint8_t *src, int R, int r, uint8_t *dst)
{
    const block_q8_0 *x = (const block_q8_0 *)src;
    put_row(dst, (const uint8_t *)x->qs, 32, R, r);
    memcpy(dst + (size_t)R * 32 + 2 * (size_t)r, &x->d, 2);
}

/* Q4_0 and IQ4_NL: fp16 d, then qs[16] */
static void pack_block_q4n(const uint8_t *src, int R, int r, uint8_t *dst)
{
    put_row(dst, src + 2, 16, R, r);
    memcpy(dst + (size_t)R * 16 + 2 * (size_t)r, src, 2);
}

static void pack_block_x4n(const uint8_t *src, int R, int r, uint8_t *dst)
{
    const block_iq4_xs *x = (const block_iq4_xs *)src;
    for (int c = 0; c < 4; c++) {
        uint8_t q[32];
        for (int l = 0; l < 32; l++) {
            const int e = l < 16 ? x->qs[32 * c + l] & 0x0F : x->qs[32 * c + l - 16] >> 4;
            const int o = l < 16 ? x->qs[32 * c + 16 + l] & 0x0F : x->qs[32 * c + l] >> 4;
            q[l] = (uint8_t)(e | o << 4);
        }
        put_row(dst + (size_t)c * 8 * R * 4, q, 32, R, r);
    }
    uint8_t *sc = dst + (size_t)R * 128, *fl = sc + (size_t)R * 8;
    for (int j = 0; j < 8; j++) {
        const int ls = ((x->scales_l[j / 2] >> (4 * (j & 1))) & 0x0F) | (((x->scales_h >> (2 * j)) & 3) << 4);
        sc[(size_t)j * R + r] = (uint8_t)(int8_t)(ls - 32);
    }
    const float d = H2F(x->d);
    memcpy(fl + 4 * (size_t)r, &d, 4);
}

static void pack_block_k6n(const uint8_t *src, int R, int r, uint8_t *dst)
{
    const block_q6_K *x = (const block_q6_K *)src;
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 8; j++) {
            uint8_t *rec = dst + (size_t)(8 * h + j) * 3 * R * 4;
            memcpy(rec + (size_t)r * 4, x->ql + 64 * h + 4 * j, 4);
            memcpy(rec + ((size_t)R + r) * 4, x->ql + 64 * h + 32 + 4 * j, 4);
            memcpy(rec + ((size_t)2 * R + r) * 4, x->qh + 32 * h + 4 * j, 4);
        }
    uint8_t *sc = dst + (size_t)R * 192, *fl = sc + (size_t)R * 16;
    for (int j = 0; j < 16; j++) sc[(size_t)j * R + r] = (uint8_t)x->scales[j];
    const float d = H2F(x->d);
    memcpy(fl + 4 * (size_t)r, &d, 4);
}

void qk_pack_panel(int family, int wtype, int64_t k, const void *W, size_t w_stride, int nw, int R,
                   void *panel)
{
    const qfit_type_traits *tr = qfit_type_get_traits(wtype);
    const int64_t bs = qk_pack_family_block(family);
    const int64_t nb = k / bs;
    const size_t bb = qk_pack_block_bytes(family, R);
    const size_t wb = tr ? tr->type_size : 0;
    uint8_t *out = panel;
    if (nw < R) memset(out, 0, bb * (size_t)nb);
    for (int r = 0; r < nw; r++) {
        const uint8_t *row = (const uint8_t *)W + (size_t)r * w_stride;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *src = row + (size_t)b * wb;
            uint8_t *dst = out + (size_t)b * bb;
            switch (family) {
            case QK_PF_Q8:  pack_block_q8(wtype, src, R, r, dst); break;
            case QK_PF_Q8U: pack_block_q8u(wtype, src, R, r, dst); break;
            case QK_PF_K32: pack_block_k32(wtype, src, R, r, dst); break;
            case QK_PF_K4N: pack_block_k4n(src, R, r, dst); break;
            case QK_PF_K6N: pack_block_k6n(src, R, r, dst); break;
            case QK_PF_Q8N: pack_block_q8n(src, R, r, dst); break;
            case QK_PF_Q4N: pack_block_q4n(src, R, r, dst); break;
            case QK_PF_X4N: pack_block_x4n(src, R, r, dst); break;
            default:        pack_block_k16(wtype, src, R, r, dst); break;
            }
        }
    }
}
