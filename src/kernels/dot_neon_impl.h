/* Internal: NEON kernels, included twice by dot_neon.c: with NEON_SDOT = the
 * hardware SDOT (vdotq_s32, ARMv8.2 dotprod) and with a widening-multiply
 * emulation that has the same lane layout. NEON_SFX names the variant. */
#define NEON_CAT2(a, b) a##b
#define NEON_CAT(a, b) NEON_CAT2(a, b)
#define NEON_FN(name) NEON_CAT(name, NEON_SFX)

static void NEON_FN(n_dot_q8_0)(int64_t n, float *s, const void *w, const void *a)
{
    const block_q8_0 *x = w, *y = a;
    const int64_t nb = n / QK8_0;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        int32x4_t p0 = NEON_SDOT(vdupq_n_s32(0), vld1q_s8(x[b].qs), vld1q_s8(y[b].qs));
        int32x4_t p1 = NEON_SDOT(vdupq_n_s32(0), vld1q_s8(x[b + 1].qs), vld1q_s8(y[b + 1].qs));
        p0 = NEON_SDOT(p0, vld1q_s8(x[b].qs + 16), vld1q_s8(y[b].qs + 16));
        p1 = NEON_SDOT(p1, vld1q_s8(x[b + 1].qs + 16), vld1q_s8(y[b + 1].qs + 16));
        acc0 = vmlaq_n_f32(acc0, vcvtq_f32_s32(p0), h2f(x[b].d) * h2f(y[b].d));
        acc1 = vmlaq_n_f32(acc1, vcvtq_f32_s32(p1), h2f(x[b + 1].d) * h2f(y[b + 1].d));
    }
    for (; b < nb; b++) {
        int32x4_t p0 = NEON_SDOT(vdupq_n_s32(0), vld1q_s8(x[b].qs), vld1q_s8(y[b].qs));
        p0 = NEON_SDOT(p0, vld1q_s8(x[b].qs + 16), vld1q_s8(y[b].qs + 16));
        acc0 = vmlaq_n_f32(acc0, vcvtq_f32_s32(p0), h2f(x[b].d) * h2f(y[b].d));
    }
    *s = vaddvq_f32(vaddq_f32(acc0, acc1));
}

static void NEON_FN(n_dot_q4_0)(int64_t n, float *s, const void *w, const void *a)
{
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK8_0;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    const int8x16_t s8 = vdupq_n_s8(8);
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++) {
        uint8x16_t q = vld1q_u8(x[b].qs);
        int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, m4)), s8);
        int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), s8);
        int32x4_t p = NEON_SDOT(vdupq_n_s32(0), lo, vld1q_s8(y[b].qs));
        p = NEON_SDOT(p, hi, vld1q_s8(y[b].qs + 16));
        acc = vmlaq_n_f32(acc, vcvtq_f32_s32(p), h2f(x[b].d) * h2f(y[b].d));
    }
    *s = vaddvq_f32(acc);
}

/* MXFP4 x Q8_0: a table lookup (TBL) turns the nibbles into the doubled E2M1
 * values, then an int8 dot with the activations */
static void NEON_FN(n_dot_mxfp4)(int64_t n, float *s, const void *w, const void *a)
{
    const block_mxfp4 *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK_MXFP4;
    const int8x16_t kv = vld1q_s8(qfit_kvalues_mxfp4);
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++) {
        const uint8x16_t q = vld1q_u8(x[b].qs);
        const int8x16_t lo = vqtbl1q_s8(kv, vandq_u8(q, m4));
        const int8x16_t hi = vqtbl1q_s8(kv, vshrq_n_u8(q, 4));
        int32x4_t p = NEON_SDOT(vdupq_n_s32(0), lo, vld1q_s8(y[b].qs));
        p = NEON_SDOT(p, hi, vld1q_s8(y[b].qs + 16));
        acc = vmlaq_n_f32(acc, vcvtq_f32_s32(p), h2f(y[b].d) * qfit_e8m0_to_fp32_half(x[b].e));
    }
    *s = vaddvq_f32(acc);
}

static void NEON_FN(n_dot_q4_K)(int64_t n, float *s, const void *w, const void *a)
{
    const block_q4_K *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float sumf = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t sc[8], mn[8];
        k4_scales(x[b].scales, sc, mn);
        /* mins: sums of 32 activations (pairs of bsums) times the mins */
        int16x8_t bs = vpaddq_s16(vld1q_s16(y[b].bsums), vld1q_s16(y[b].bsums + 8));
        int16x8_t m16 = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mn)));
        int32x4_t ms = vmull_s16(vget_low_s16(bs), vget_low_s16(m16));
        ms = vmlal_high_s16(ms, bs, m16);
        const int summ = vaddvq_s32(ms);
        int32x4_t isum = vdupq_n_s32(0);
        const uint8_t *q4 = x[b].qs;
        const int8_t *q8 = y[b].qs;
        for (int c = 0; c < 4; c++) {
            uint8x16_t qa = vld1q_u8(q4 + 32 * c), qb = vld1q_u8(q4 + 32 * c + 16);
            int32x4_t plo = NEON_SDOT(vdupq_n_s32(0), vreinterpretq_s8_u8(vandq_u8(qa, m4)), vld1q_s8(q8 + 64 * c));
            plo = NEON_SDOT(plo, vreinterpretq_s8_u8(vandq_u8(qb, m4)), vld1q_s8(q8 + 64 * c + 16));
            int32x4_t phi = NEON_SDOT(vdupq_n_s32(0), vreinterpretq_s8_u8(vshrq_n_u8(qa, 4)), vld1q_s8(q8 + 64 * c + 32));
            phi = NEON_SDOT(phi, vreinterpretq_s8_u8(vshrq_n_u8(qb, 4)), vld1q_s8(q8 + 64 * c + 48));
            isum = vmlaq_n_s32(isum, plo, sc[2 * c]);
            isum = vmlaq_n_s32(isum, phi, sc[2 * c + 1]);
        }
        sumf += y[b].d * h2f(x[b].d) * (float)vaddvq_s32(isum);
        sumf -= y[b].d * h2f(x[b].dmin) * (float)summ;
    }
    *s = sumf;
}

static void NEON_FN(n_dot_q6_K)(int64_t n, float *s, const void *w, const void *a)
{
    const block_q6_K *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(0x03);
    const int8x16_t o32 = vdupq_n_s8(32);
    float sumf = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *ql = x[b].ql, *qh = x[b].qh;
        const int8_t *q8 = y[b].qs;
        const int8_t *sc = x[b].scales;
        int32x4_t isum = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            for (int k = 0; k < 2; k++) {
                uint8x16_t hb = vld1q_u8(qh + 16 * k);
                uint8x16_t l0 = vld1q_u8(ql + 16 * k), l1 = vld1q_u8(ql + 32 + 16 * k);
                uint8x16_t v0 = vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hb, m3), 4));
                uint8x16_t v1 = vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m3), 4));
                uint8x16_t v2 = vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m3), 4));
                uint8x16_t v3 = vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4));
                int32x4_t p0 = NEON_SDOT(vdupq_n_s32(0), vsubq_s8(vreinterpretq_s8_u8(v0), o32), vld1q_s8(q8 + 16 * k));
                int32x4_t p1 = NEON_SDOT(vdupq_n_s32(0), vsubq_s8(vreinterpretq_s8_u8(v1), o32), vld1q_s8(q8 + 32 + 16 * k));
                int32x4_t p2 = NEON_SDOT(vdupq_n_s32(0), vsubq_s8(vreinterpretq_s8_u8(v2), o32), vld1q_s8(q8 + 64 + 16 * k));
                int32x4_t p3 = NEON_SDOT(vdupq_n_s32(0), vsubq_s8(vreinterpretq_s8_u8(v3), o32), vld1q_s8(q8 + 96 + 16 * k));
                isum = vmlaq_n_s32(isum, p0, sc[k]);
                isum = vmlaq_n_s32(isum, p1, sc[2 + k]);
                isum = vmlaq_n_s32(isum, p2, sc[4 + k]);
                isum = vmlaq_n_s32(isum, p3, sc[6 + k]);
            }
            ql += 64; qh += 32; q8 += 128; sc += 8;
        }
        sumf += y[b].d * h2f(x[b].d) * (float)vaddvq_s32(isum);
    }
    *s = sumf;
}

#undef NEON_FN
#undef NEON_CAT
#undef NEON_CAT2
