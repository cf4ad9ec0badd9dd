/* K-quants (256-element super-blocks): reference quantizers and dequantizers.
 *
 * The output must be byte-identical to ggml's quantize_row_qN_K_ref (the path
 * ggml_quantize_chunk takes without an importance matrix), so every search
 * heuristic below follows ggml's algorithm and its floating-point evaluation
 * order exactly: the same candidate scales, the same accumulation order, the
 * same rounding (the 1.5*2^23 trick), the same integer truncations, and the
 * same fp16 round trips of the super-block scales. Do not "simplify" any
 * expression here without re-running the byte-exact tests.
 */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "quant_internal.h"

/* ggml's reference build never contracts a*b+c into an fma; neither may we.
 * (gcc already has contraction off under -std=c11; clang needs the pragma.) */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* below this a group counts as all zero (ggml's GROUP_MAX_EPS) */
#define KQ_EPS 1e-15f

static inline int kq_min_i(int a, int b) { return a < b ? a : b; }
static inline int kq_max_i(int a, int b) { return a > b ? a : b; }

/* Round to nearest (ties to even) by adding 1.5*2^23 and reading the low
 * mantissa bits, exactly as ggml does. For |v| > 2^22 the result is whatever the
 * bit pattern gives; ggml produces the same value, so we reproduce it. */
static inline int kq_round(float v)
{
    float shifted = v + 12582912.f;
    int32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    return (int)(bits & 0x007fffff) - 0x00400000;
}

static inline float kq_h2f(qfit_half h) { return qfit_fp16_to_fp32(h); }
static inline qfit_half kq_f2h(float f) { return qfit_fp32_to_fp16(f); }

/* ---------------------------------------------------------------------------
 * Scale searches
 * ------------------------------------------------------------------------- */

/* Symmetric search (ggml make_qx_quants, rmse_type 1): weights qw, or x^2 when
 * qw is NULL. Levels are -nmax .. nmax-1, stored in L offset by nmax. */
float qfit_kq_symmetric_scale(int n, int nmax, const float *x, int8_t *L, const float *qw)
{
    float amax = 0.f, vmax = 0.f;
    for (int i = 0; i < n; ++i) {
        float a = fabsf(x[i]);
        if (a > amax) { amax = a; vmax = x[i]; }
    }
    if (amax < KQ_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }

    float inv = -nmax / vmax;
    float slx = 0.f, sl2 = 0.f;
    for (int i = 0; i < n; ++i) {
        int q = kq_max_i(-nmax, kq_min_i(nmax - 1, kq_round(inv * x[i])));
        L[i] = (int8_t)(q + nmax);
        float w = qw ? qw[i] : x[i] * x[i];
        slx += w * x[i] * q;
        sl2 += w * q * q;
    }
    float scale = sl2 ? slx / sl2 : 0.0f;
    float best = scale * slx;

    for (int step = -9; step <= 9; ++step) {
        if (step == 0) continue;
        float cand = -(nmax + 0.1f * step) / vmax;
        float cx = 0.f, c2 = 0.f;
        for (int i = 0; i < n; ++i) {
            int q = kq_max_i(-nmax, kq_min_i(nmax - 1, kq_round(cand * x[i])));
            float w = qw ? qw[i] : x[i] * x[i];
            cx += w * x[i] * q;
            c2 += w * q * q;
        }
        if (c2 > 0 && cx * cx > best * c2) {
            for (int i = 0; i < n; ++i) {
                int q = kq_max_i(-nmax, kq_min_i(nmax - 1, kq_round(cand * x[i])));
                L[i] = (int8_t)(nmax + q);
            }
            scale = cx / c2;
            best = scale * cx;
        }
    }
    return scale;
}

/* Symmetric search refined by coordinate descent on single levels (ggml
 * make_q3_quants with do_rmse). L receives levels offset by nmax. */
static float kq_symmetric_scale_refined(int n, int nmax, const float *x, int8_t *L)
{
    float amax = 0.f, vmax = 0.f;
    for (int i = 0; i < n; ++i) {
        float a = fabsf(x[i]);
        if (a > amax) { amax = a; vmax = x[i]; }
    }
    if (amax < KQ_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }

    float inv = -nmax / vmax;
    float slx = 0.f, sl2 = 0.f;
    for (int i = 0; i < n; ++i) {
        int q = kq_max_i(-nmax, kq_min_i(nmax - 1, kq_round(inv * x[i])));
        L[i] = (int8_t)q;
        float w = x[i] * x[i];
        slx += w * x[i] * q;
        sl2 += w * q * q;
    }

    for (int pass = 0; pass < 5; ++pass) {
        int changed = 0;
        for (int i = 0; i < n; ++i) {
            float w = x[i] * x[i];
            float cx = slx - w * x[i] * L[i];
            if (!(cx > 0)) continue;
            float c2 = sl2 - w * L[i] * L[i];
            int q = kq_max_i(-nmax, kq_min_i(nmax - 1, kq_round(x[i] * c2 / cx)));
            if (q == L[i]) continue;
            cx += w * x[i] * q;
            c2 += w * q * q;
            if (c2 > 0 && cx * cx * sl2 > slx * slx * c2) {
                L[i] = (int8_t)q;
                slx = cx;
                sl2 = c2;
                ++changed;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; ++i) L[i] = (int8_t)(L[i] + nmax);
    return sl2 > 0.0f ? slx / sl2 : 0.0f;
}

/* Affine (scale + non-positive offset) search with weights (ggml
 * make_qkx2_quants). Levels 0..nmax go to L; *neg_min receives -min >= 0.
 * Tries nstep+1 candidate scales (rmin + rdelta*k + nmax)/(max - min), fitting
 * scale and offset by weighted least squares for each, and keeps the one with
 * the smallest weighted error (|diff| when use_abs, diff^2 otherwise).
 * With an importance matrix ggml calls make_qkx3_quants instead: for non-NULL
 * weights it is this same search (its extra guard only differs for inf/NaN). */
float qfit_kq_affine_scale(int n, int nmax, const float *x, const float *w,
                           uint8_t *L, float *neg_min, uint8_t *Ltmp,
                           float rmin, float rdelta, int nstep, int use_abs)
{
    float lo = x[0], hi = x[0];
    float sw = w[0];
    float swx = sw * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
        sw += w[i];
        swx += w[i] * x[i];
    }
    if (lo > 0) lo = 0;
    if (hi == lo) {
        memset(L, 0, (size_t)n);
        *neg_min = -lo;
        return 0.f;
    }

    float inv = nmax / (hi - lo);
    float scale = 1 / inv;
    float best_err = 0;
    for (int i = 0; i < n; ++i) {
        int q = kq_round(inv * (x[i] - lo));
        L[i] = (uint8_t)kq_max_i(0, kq_min_i(nmax, q));
        float diff = scale * L[i] + lo - x[i];
        diff = use_abs ? fabsf(diff) : diff * diff;
        best_err += w[i] * diff;
    }
    if (nstep < 1) {
        *neg_min = -lo;
        return scale;
    }

    for (int step = 0; step <= nstep; ++step) {
        float cand = (rmin + rdelta * step + nmax) / (hi - lo);
        float sl = 0, sl2 = 0, sxl = 0;
        for (int i = 0; i < n; ++i) {
            int q = kq_max_i(0, kq_min_i(nmax, kq_round(cand * (x[i] - lo))));
            Ltmp[i] = (uint8_t)q;
            sl += w[i] * q;
            sl2 += w[i] * q * q;
            sxl += w[i] * q * x[i];
        }
        float det = sw * sl2 - sl * sl;
        if (!(det > 0)) continue;
        float s = (sw * sxl - swx * sl) / det;
        float m = (sl2 * swx - sl * sxl) / det;
        if (m > 0) {
            m = 0;
            s = sxl / sl2;
        }
        float err = 0;
        for (int i = 0; i < n; ++i) {
            float diff = s * Ltmp[i] + m - x[i];
            diff = use_abs ? fabsf(diff) : diff * diff;
            err += w[i] * diff;
        }
        if (err < best_err) {
            memcpy(L, Ltmp, (size_t)n);
            best_err = err;
            scale = s;
            lo = m;
        }
    }
    *neg_min = -lo;
    return scale;
}

/* Quantizes non-negative values (the sub-block scales or mins of a super-block)
 * to levels 0..nmax under one scale, with weights qw (ggml make_qp_quants, the
 * importance-matrix path): 8 trial scales around nmax/max by weighted squared
 * error, then coordinate descent on single levels. Returns the scale. */
static float kq_positive_scale(int n, int nmax, const float *x, uint8_t *L, const float *qw)
{
    float max = 0;
    for (int i = 0; i < n; ++i) max = x[i] > max ? x[i] : max;
    if (max < KQ_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float inv = nmax / max;
    float scale = 1 / inv;
    float best = 0;
    for (int i = 0; i < n; ++i) {
        L[i] = (uint8_t)kq_round(inv * x[i]);   /* the first guess is not capped, but kept in 8 bits */
        float diff = x[i] - scale * L[i];
        best += qw[i] * diff * diff;
    }
    for (int step = -4; step <= 4; ++step) {
        if (step == 0) continue;
        float cand = (0.1f * step + nmax) / max;
        float cs = 1 / cand;
        float err = 0;
        for (int i = 0; i < n; ++i) {
            int q = kq_min_i(nmax, kq_round(cand * x[i]));
            float diff = x[i] - cs * q;
            err += qw[i] * diff * diff;
        }
        if (err < best) {
            best = err;
            inv = cand;
        }
    }
    float slx = 0, sl2 = 0;
    for (int i = 0; i < n; ++i) {
        int q = kq_min_i(nmax, kq_round(inv * x[i]));
        L[i] = (uint8_t)q;
        slx += qw[i] * x[i] * q;
        sl2 += qw[i] * q * q;
    }
    for (int pass = 0; pass < 5; ++pass) {
        int changed = 0;
        for (int i = 0; i < n; ++i) {
            float w = qw[i];
            float cx = slx - w * x[i] * L[i];
            float c2 = sl2 - w * L[i] * L[i];
            if (!(cx > 0 && c2 > 0)) continue;
            int q = kq_min_i(nmax, kq_round(x[i] * c2 / cx));
            if (q == L[i]) continue;
            cx += w * x[i] * q;
            c2 += w * q * q;
            if (cx * cx * sl2 > slx * slx * c2) {
                L[i] = (uint8_t)q;
                slx = cx;
                sl2 = c2;
                ++changed;
            }
        }
        if (!changed) break;
    }
    return sl2 > 0.0f ? slx / sl2 : 0.0f;
}

/* ---------------------------------------------------------------------------
 * Shared packing helpers
 * ------------------------------------------------------------------------- */

/* 2-bit packing used by Q2_K and Q3_K: byte l of each 32-byte half holds
 * elements l, l+32, l+64, l+96 of the corresponding 128 elements. */
static void kq_pack_2bit(const uint8_t *L, uint8_t *qs)
{
    for (int half = 0; half < 2; ++half) {
        const uint8_t *src = L + 128 * half;
        uint8_t *dst = qs + 32 * half;
        for (int l = 0; l < 32; ++l)
            dst[l] = (uint8_t)(src[l] | (src[l + 32] << 2) | (src[l + 64] << 4) | (src[l + 96] << 6));
    }
}

/* 6-bit scale/min pairs of Q4_K/Q5_K: 8 pairs in 12 bytes. */
static void kq_put_scale_min(uint8_t *s, int j, uint8_t sc, uint8_t mn)
{
    if (j < 4) {
        s[j] = sc;
        s[j + 4] = mn;
    } else {
        s[j + 4] = (uint8_t)((sc & 0xF) | ((mn & 0xF) << 4));
        s[j - 4] |= (uint8_t)((sc >> 4) << 6);
        s[j] |= (uint8_t)((mn >> 4) << 6);
    }
}

static inline void kq_get_scale_min(const uint8_t *s, int j, uint8_t *sc, uint8_t *mn)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        *mn = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

/* 6-bit signed-offset scales of Q3_K (value + 32): low nibbles in bytes 0..7,
 * high 2 bits in bytes 8..11. */
static inline int kq_q3_scale(const uint8_t *s, int j)
{
    int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
}

/* ---------------------------------------------------------------------------
 * Q2_K
 * ------------------------------------------------------------------------- */

/* Levels against the block's rounded scales, then packed (both Q2_K paths). */
static void kq_q2_levels(const float *x, block_q2_K *y, uint8_t *L)
{
    for (int j = 0; j < QK_K / 16; ++j) {
        const float d = kq_h2f(y->d) * (y->scales[j] & 0xF);
        if (!d) continue;
        const float m = kq_h2f(y->dmin) * (y->scales[j] >> 4);
        for (int l = 0; l < 16; ++l) {
            int q = kq_round((x[16 * j + l] + m) / d);
            L[16 * j + l] = (uint8_t)kq_max_i(0, kq_min_i(3, q));
        }
    }
    kq_pack_2bit(L, y->qs);
}

void qfit_quantize_row_q2_K_ref(const float *x, void *vy, int64_t k)
{
    block_q2_K *y = vy;
    const int64_t nb = k / QK_K;
    uint8_t L[QK_K], Ltmp[16];
    float w[16], sc[QK_K / 16], mn[QK_K / 16];

    for (int64_t b = 0; b < nb; ++b, x += QK_K) {
        float max_sc = 0, max_mn = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            for (int l = 0; l < 16; ++l) w[l] = fabsf(x[16 * j + l]);
            sc[j] = qfit_kq_affine_scale(16, 3, x + 16 * j, w, L + 16 * j, &mn[j], Ltmp,
                                    -0.5f, 0.1f, 15, 1);
            if (sc[j] > max_sc) max_sc = sc[j];
            if (mn[j] > max_mn) max_mn = mn[j];
        }

        if (max_sc > 0) {
            float inv = 15.f / max_sc;
            for (int j = 0; j < QK_K / 16; ++j) y[b].scales[j] = (uint8_t)kq_round(inv * sc[j]);
            y[b].d = kq_f2h(max_sc / 15.f);
        } else {
            memset(y[b].scales, 0, sizeof y[b].scales);
            y[b].d = kq_f2h(0.f);
        }
        if (max_mn > 0) {
            float inv = 15.f / max_mn;
            for (int j = 0; j < QK_K / 16; ++j)
                y[b].scales[j] |= (uint8_t)((unsigned)kq_round(inv * mn[j]) << 4);
            y[b].dmin = kq_f2h(max_mn / 15.f);
        } else {
            y[b].dmin = kq_f2h(0.f);
        }

        kq_q2_levels(x, &y[b], L);
    }
}

/* With an importance matrix (ggml quantize_row_q2_K_impl): weights
 * qw * sqrt(sigma^2 + x^2), a finer affine search per 16 values, and the 4-bit
 * scales and mins fitted by kq_positive_scale weighted by each group's weight. */
void qfit_quantize_row_q2_K_imatrix(const float *x, void *vy, int64_t k, const float *qw)
{
    block_q2_K *y = vy;
    const int64_t nb = k / QK_K;
    uint8_t L[QK_K], Ltmp[16], Ls[QK_K / 16], Lm[QK_K / 16];
    float w[16], sc[QK_K / 16], mn[QK_K / 16], sw[QK_K / 16];

    for (int64_t b = 0; b < nb; ++b, x += QK_K, qw += QK_K) {
        float sumx2 = 0;
        for (int j = 0; j < QK_K; ++j) sumx2 += x[j] * x[j];
        const float sigma2 = sumx2 / QK_K;
        for (int j = 0; j < QK_K / 16; ++j) {
            sw[j] = 0;
            for (int l = 0; l < 16; ++l) {
                w[l] = qw[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
                sw[j] += w[l];
            }
            sc[j] = qfit_kq_affine_scale(16, 3, x + 16 * j, w, L + 16 * j, &mn[j], Ltmp,
                                         -0.9f, 0.05f, 36, 0);
        }
        y[b].d = kq_f2h(kq_positive_scale(QK_K / 16, 15, sc, Ls, sw));
        y[b].dmin = kq_f2h(kq_positive_scale(QK_K / 16, 15, mn, Lm, sw));
        for (int j = 0; j < QK_K / 16; ++j) y[b].scales[j] = (uint8_t)(Ls[j] | (Lm[j] << 4));
        kq_q2_levels(x, &y[b], L);
    }
}

void qfit_dequantize_row_q2_K(const void *vx, float *y, int64_t k)
{
    const block_q2_K *x = vx;
    const int64_t nb = k / QK_K;
    for (int64_t b = 0; b < nb; ++b) {
        const float d = kq_h2f(x[b].d);
        const float dmin = kq_h2f(x[b].dmin);
        for (int half = 0; half < 2; ++half) {
            const uint8_t *q = x[b].qs + 32 * half;
            for (int sh = 0; sh < 4; ++sh) {
                for (int part = 0; part < 2; ++part) {
                    uint8_t s = x[b].scales[8 * half + 2 * sh + part];
                    const float dl = d * (s & 0xF);
                    const float ml = dmin * (s >> 4);
                    for (int l = 0; l < 16; ++l)
                        *y++ = dl * ((q[16 * part + l] >> (2 * sh)) & 3) - ml;
                }
            }
        }
    }
}

/* ---------------------------------------------------------------------------
 * Q3_K
 * ------------------------------------------------------------------------- */

/* Scale j (0..63) into the 12 scale bytes, which start zeroed. */
static void kq_q3_put_scale(uint8_t *s, int j, int v)
{
    if (j < 8) s[j] = (uint8_t)(v & 0xF);
    else       s[j - 8] |= (uint8_t)((v & 0xF) << 4);
    s[8 + j % 4] |= (uint8_t)((v >> 4) << (2 * (j / 4)));
}

/* Levels against the block's rounded scales; high bits to hmask, low bits
 * packed (both Q3_K paths). L is scratch. */
static void kq_q3_levels(const float *x, block_q3_K *y, int8_t *L)
{
    for (int j = 0; j < QK_K / 16; ++j) {
        const float d = kq_h2f(y->d) * kq_q3_scale(y->scales, j);
        if (!d) continue;
        for (int l = 0; l < 16; ++l) {
            int q = kq_max_i(-4, kq_min_i(3, kq_round(x[16 * j + l] / d)));
            L[16 * j + l] = (int8_t)(q + 4);
        }
    }

    /* high bit of element j goes to bit j/32 of hmask[j%32] */
    uint8_t lo[QK_K];
    memset(y->hmask, 0, sizeof y->hmask);
    for (int j = 0; j < QK_K; ++j) {
        uint8_t v = (uint8_t)L[j];
        if (v > 3) {
            y->hmask[j % 32] |= (uint8_t)(1u << (j / 32));
            v = (uint8_t)(v - 4);
        }
        lo[j] = v;
    }
    kq_pack_2bit(lo, y->qs);
}

void qfit_quantize_row_q3_K_ref(const float *x, void *vy, int64_t k)
{
    block_q3_K *y = vy;
    const int64_t nb = k / QK_K;
    int8_t L[QK_K];
    float sc[QK_K / 16];

    for (int64_t b = 0; b < nb; ++b, x += QK_K) {
        float amax = 0, max_sc = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            sc[j] = kq_symmetric_scale_refined(16, 4, x + 16 * j, L + 16 * j);
            float a = fabsf(sc[j]);
            if (a > amax) { amax = a; max_sc = sc[j]; }
        }

        memset(y[b].scales, 0, sizeof y[b].scales);
        if (max_sc) {
            float inv = -32.f / max_sc;
            for (int j = 0; j < QK_K / 16; ++j) {
                int8_t q8 = (int8_t)kq_round(inv * sc[j]);   /* ggml stores it in an int8 first */
                kq_q3_put_scale(y[b].scales, j, kq_max_i(-32, kq_min_i(31, q8)) + 32);
            }
            y[b].d = kq_f2h(1 / inv);
        } else {
            y[b].d = kq_f2h(0.f);
        }

        kq_q3_levels(x, &y[b], L);
    }
}

/* With an importance matrix (ggml quantize_row_q3_K_impl): each 16 values by
 * the symmetric search under weights qw * sqrt(sigma^2 + x^2), then the 16
 * scales themselves by the same search (6-bit, weighted by each group's weight). */
void qfit_quantize_row_q3_K_imatrix(const float *x, void *vy, int64_t k, const float *qw)
{
    block_q3_K *y = vy;
    const int64_t nb = k / QK_K;
    int8_t L[QK_K], Ls[QK_K / 16];
    float w[16], sc[QK_K / 16], sw[QK_K / 16];

    for (int64_t b = 0; b < nb; ++b, x += QK_K, qw += QK_K) {
        float sumx2 = 0;
        for (int j = 0; j < QK_K; ++j) sumx2 += x[j] * x[j];
        const float sigma2 = 2 * sumx2 / QK_K;
        for (int j = 0; j < QK_K / 16; ++j) {
            sw[j] = 0;
            for (int l = 0; l < 16; ++l) {
                w[l] = qw[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
                sw[j] += w[l];
            }
            sc[j] = qfit_kq_symmetric_scale(16, 4, x + 16 * j, L + 16 * j, w);
        }
        const float d = qfit_kq_symmetric_scale(QK_K / 16, 32, sc, Ls, sw);
        memset(y[b].scales, 0, sizeof y[b].scales);
        for (int j = 0; j < QK_K / 16; ++j) kq_q3_put_scale(y[b].scales, j, Ls[j]);
        y[b].d = kq_f2h(d);
        kq_q3_levels(x, &y[b], L);
    }
}

void qfit_dequantize_row_q3_K(const void *vx, float *y, int64_t k)
{
    const block_q3_K *x = vx;
    const int64_t nb = k / QK_K;
    for (int64_t b = 0; b < nb; ++b) {
        const float d = kq_h2f(x[b].d);
        const uint8_t *hm = x[b].hmask;
        for (int half = 0; half < 2; ++half) {
            const uint8_t *q = x[b].qs + 32 * half;
            for (int sh = 0; sh < 4; ++sh) {
                const uint8_t bit = (uint8_t)(1u << (4 * half + sh));
                for (int part = 0; part < 2; ++part) {
                    const float dl = d * kq_q3_scale(x[b].scales, 8 * half + 2 * sh + part);
                    for (int l = 0; l < 16; ++l) {
                        int idx = 16 * part + l;
                        int v = ((q[idx] >> (2 * sh)) & 3) - ((hm[idx] & bit) ? 0 : 4);
                        *y++ = dl * v;
                    }
                }
            }
        }
    }
}

/* ---------------------------------------------------------------------------
 * Q4_K and Q5_K share the scale search: 8 sub-blocks of 32 with 6-bit
 * scales/mins under fp16 super-block factors.
 * ------------------------------------------------------------------------- */

/* Levels against the rounded 6-bit scales and mins (every Q4_K/Q5_K path). */
static void kq_q45_levels(const float *x, int nmax, const uint8_t *packed,
                          qfit_half dh, qfit_half dminh, uint8_t *L)
{
    const float d_all = kq_h2f(dh), m_all = kq_h2f(dminh);
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t s, m;
        kq_get_scale_min(packed, j, &s, &m);
        const float d = d_all * s;
        if (!d) continue;
        const float dm = m_all * m;
        for (int l = 0; l < 32; ++l) {
            int q = kq_round((x[32 * j + l] + dm) / d);
            L[32 * j + l] = (uint8_t)kq_max_i(0, kq_min_i(nmax, q));
        }
    }
}

static void kq_q45_scales(const float *x, int nmax, float rmin, float rdelta, int nstep,
                          uint8_t *L, uint8_t *packed, qfit_half *d_out, qfit_half *dmin_out)
{
    float w[32], sc[QK_K / 32], mn[QK_K / 32];
    uint8_t Ltmp[32];
    float max_sc = 0, max_mn = 0;

    for (int j = 0; j < QK_K / 32; ++j) {
        const float *xs = x + 32 * j;
        float sx2 = 0;
        for (int l = 0; l < 32; ++l) sx2 += xs[l] * xs[l];
        float av = sqrtf(sx2 / 32);
        for (int l = 0; l < 32; ++l) w[l] = av + fabsf(xs[l]);
        sc[j] = qfit_kq_affine_scale(32, nmax, xs, w, L + 32 * j, &mn[j], Ltmp, rmin, rdelta, nstep, 0);
        if (sc[j] > max_sc) max_sc = sc[j];
        if (mn[j] > max_mn) max_mn = mn[j];
    }

    float inv_sc = max_sc > 0 ? 63.f / max_sc : 0.f;
    float inv_mn = max_mn > 0 ? 63.f / max_mn : 0.f;
    memset(packed, 0, K_SCALE_SIZE);
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t ls = (uint8_t)kq_round(inv_sc * sc[j]);   /* truncated to 8 bits, then capped */
        uint8_t lm = (uint8_t)kq_round(inv_mn * mn[j]);
        if (ls > 63) ls = 63;
        if (lm > 63) lm = 63;
        kq_put_scale_min(packed, j, ls, lm);
    }
    *d_out = kq_f2h(max_sc / 63.f);
    *dmin_out = kq_f2h(max_mn / 63.f);
    kq_q45_levels(x, nmax, packed, *d_out, *dmin_out, L);
}

/* The same with an importance matrix (ggml quantize_row_q4_K_impl / q5_K_impl):
 * weights qw * sqrt(sigma^2 + x^2), a finer affine search per 32 values, and
 * the 6-bit scales and mins fitted by kq_positive_scale. */
static void kq_q45_scales_imatrix(const float *x, const float *qw, int nmax, uint8_t *L,
                                  uint8_t *packed, qfit_half *d_out, qfit_half *dmin_out)
{
    float w[32], sc[QK_K / 32], mn[QK_K / 32], sw[QK_K / 32];
    uint8_t Ltmp[32], Ls[QK_K / 32], Lm[QK_K / 32];

    float sumx2 = 0;
    for (int l = 0; l < QK_K; ++l) sumx2 += x[l] * x[l];
    const float sigma2 = 2 * sumx2 / QK_K;
    for (int j = 0; j < QK_K / 32; ++j) {
        float sumw = 0;
        for (int l = 0; l < 32; ++l) w[l] = qw[32 * j + l] * sqrtf(sigma2 + x[32 * j + l] * x[32 * j + l]);
        for (int l = 0; l < 32; ++l) sumw += w[l];
        sw[j] = sumw;
        sc[j] = qfit_kq_affine_scale(32, nmax, x + 32 * j, w, L + 32 * j, &mn[j], Ltmp,
                                     -0.9f, 0.05f, 36, 0);
    }
    const float d = kq_positive_scale(QK_K / 32, 63, sc, Ls, sw);
    const float m = kq_positive_scale(QK_K / 32, 63, mn, Lm, sw);
    memset(packed, 0, K_SCALE_SIZE);
    for (int j = 0; j < QK_K / 32; ++j) {
        /* levels are 0..63 unless a fitted scale came out negative and wrapped
         * around in 8 bits; ggml caps them for Q5_K only, and so do we */
        uint8_t ls = Ls[j], lm = Lm[j];
        if (nmax == 31) {
            ls = ls > 63 ? 63 : ls;
            lm = lm > 63 ? 63 : lm;
        }
        kq_put_scale_min(packed, j, ls, lm);
    }
    *d_out = kq_f2h(d);
    *dmin_out = kq_f2h(m);
    kq_q45_levels(x, nmax, packed, *d_out, *dmin_out, L);
}

static void kq_q4_pack(const uint8_t *L, block_q4_K *y)
{
    for (int c = 0; c < 4; ++c)
        for (int l = 0; l < 32; ++l)
            y->qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
}

static void kq_q5_pack(const uint8_t *L, block_q5_K *y)
{
    memset(y->qh, 0, sizeof y->qh);
    for (int c = 0; c < 4; ++c) {
        const uint8_t bit_lo = (uint8_t)(1u << (2 * c)), bit_hi = (uint8_t)(2u << (2 * c));
        for (int l = 0; l < 32; ++l) {
            int a = L[64 * c + l], h = L[64 * c + 32 + l];
            if (a > 15) { a -= 16; y->qh[l] |= bit_lo; }
            if (h > 15) { h -= 16; y->qh[l] |= bit_hi; }
            y->qs[32 * c + l] = (uint8_t)(a | (h << 4));
        }
    }
}

void qfit_quantize_row_q4_K_imatrix(const float *x, void *vy, int64_t k, const float *qw)
{
    block_q4_K *y = vy;
    uint8_t L[QK_K];
    for (int64_t b = 0; b < k / QK_K; ++b, x += QK_K, qw += QK_K) {
        kq_q45_scales_imatrix(x, qw, 15, L, y[b].scales, &y[b].d, &y[b].dmin);
        kq_q4_pack(L, &y[b]);
    }
}

void qfit_quantize_row_q5_K_imatrix(const float *x, void *vy, int64_t k, const float *qw)
{
    block_q5_K *y = vy;
    uint8_t L[QK_K];
    for (int64_t b = 0; b < k / QK_K; ++b, x += QK_K, qw += QK_K) {
        kq_q45_scales_imatrix(x, qw, 31, L, y[b].scales, &y[b].d, &y[b].dmin);
        kq_q5_pack(L, &y[b]);
    }
}

void qfit_quantize_row_q4_K_ref(const float *x, void *vy, int64_t k)
{
    block_q4_K *y = vy;
    const int64_t nb = k / QK_K;
    uint8_t L[QK_K];

    for (int64_t b = 0; b < nb; ++b, x += QK_K) {
        kq_q45_scales(x, 15, -1.f, 0.1f, 20, L, y[b].scales, &y[b].d, &y[b].dmin);
        kq_q4_pack(L, &y[b]);
    }
}

void qfit_dequantize_row_q4_K(const void *vx, float *y, int64_t k)
{
    const block_q4_K *x = vx;
    const int64_t nb = k / QK_K;
    for (int64_t b = 0; b < nb; ++b) {
        const float d = kq_h2f(x[b].d);
        const float dmin = kq_h2f(x[b].dmin);
        for (int c = 0; c < 4; ++c) {
            const uint8_t *q = x[b].qs + 32 * c;
            uint8_t s, m;
            kq_get_scale_min(x[b].scales, 2 * c, &s, &m);
            const float d1 = d * s, m1 = dmin * m;
            kq_get_scale_min(x[b].scales, 2 * c + 1, &s, &m);
            const float d2 = d * s, m2 = dmin * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

void qfit_quantize_row_q5_K_ref(const float *x, void *vy, int64_t k)
{
    block_q5_K *y = vy;
    const int64_t nb = k / QK_K;
    uint8_t L[QK_K];

    for (int64_t b = 0; b < nb; ++b, x += QK_K) {
        kq_q45_scales(x, 31, -0.5f, 0.1f, 15, L, y[b].scales, &y[b].d, &y[b].dmin);
        kq_q5_pack(L, &y[b]);
    }
}

void qfit_dequantize_row_q5_K(const void *vx, float *y, int64_t k)
{
    const block_q5_K *x = vx;
    const int64_t nb = k / QK_K;
    for (int64_t b = 0; b < nb; ++b) {
        const float d = kq_h2f(x[b].d);
        const float dmin = kq_h2f(x[b].dmin);
        const uint8_t *qh = x[b].qh;
        for (int c = 0; c < 4; ++c) {
            const uint8_t *ql = x[b].qs + 32 * c;
            const uint8_t bit_lo = (uint8_t)(1u << (2 * c)), bit_hi = (uint8_t)(2u << (2 * c));
            uint8_t s, m;
            kq_get_scale_min(x[b].scales, 2 * c, &s, &m);
            const float d1 = d * s, m1 = dmin * m;
            kq_get_scale_min(x[b].scales, 2 * c + 1, &s, &m);
            const float d2 = d * s, m2 = dmin * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + ((qh[l] & bit_lo) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + ((qh[l] & bit_hi) ? 16 : 0)) - m2;
        }
    }
}

/* ---------------------------------------------------------------------------
 * Q6_K
 * ------------------------------------------------------------------------- */

/* Both Q6_K paths: the imatrix one (ggml quantize_row_q6_K_impl) only passes
 * the raw importance weights qw to each 16-value search instead of x^2. */
static void kq_q6_K(const float *x, void *vy, int64_t k, const float *qw)
{
    block_q6_K *y = vy;
    const int64_t nb = k / QK_K;
    int8_t L[QK_K];
    float sc[QK_K / 16];

    for (int64_t b = 0; b < nb; ++b, x += QK_K, qw = qw ? qw + QK_K : NULL) {
        float amax = 0, max_sc = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            sc[j] = qfit_kq_symmetric_scale(16, 32, x + 16 * j, L + 16 * j, qw ? qw + 16 * j : NULL);
            float a = fabsf(sc[j]);
            if (a > amax) { amax = a; max_sc = sc[j]; }
        }
        if (amax < KQ_EPS) {
            memset(&y[b], 0, sizeof y[b]);
            y[b].d = kq_f2h(0.f);
            continue;
        }

        float inv = -128.f / max_sc;
        y[b].d = kq_f2h(1 / inv);
        for (int j = 0; j < QK_K / 16; ++j)
            y[b].scales[j] = (int8_t)kq_min_i(127, kq_round(inv * sc[j]));

        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = kq_h2f(y[b].d) * y[b].scales[j];
            if (!d) continue;
            for (int l = 0; l < 16; ++l) {
                int q = kq_max_i(-32, kq_min_i(31, kq_round(x[16 * j + l] / d)));
                L[16 * j + l] = (int8_t)(q + 32);
            }
        }

        for (int half = 0; half < 2; ++half) {
            const uint8_t *v = (const uint8_t *)L + 128 * half;
            uint8_t *ql = y[b].ql + 64 * half;
            uint8_t *qh = y[b].qh + 32 * half;
            for (int l = 0; l < 32; ++l) {
                ql[l] = (uint8_t)((v[l] & 0xF) | ((v[l + 64] & 0xF) << 4));
                ql[l + 32] = (uint8_t)((v[l + 32] & 0xF) | ((v[l + 96] & 0xF) << 4));
                qh[l] = (uint8_t)((v[l] >> 4) | ((v[l + 32] >> 4) << 2) |
                                  ((v[l + 64] >> 4) << 4) | ((v[l + 96] >> 4) << 6));
            }
        }
    }
}

void qfit_quantize_row_q6_K_ref(const float *x, void *vy, int64_t k) { kq_q6_K(x, vy, k, NULL); }

void qfit_dequantize_row_q6_K(const void *vx, float *y, int64_t k)
{
    const block_q6_K *x = vx;
    const int64_t nb = k / QK_K;
    for (int64_t b = 0; b < nb; ++b) {
        const float d = kq_h2f(x[b].d);
        for (int half = 0; half < 2; ++half) {
            const uint8_t *ql = x[b].ql + 64 * half;
            const uint8_t *qh = x[b].qh + 32 * half;
            const int8_t *sc = x[b].scales + 8 * half;
            float *out = y + 128 * half;
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                out[l] = d * sc[is] * q1;
                out[l + 32] = d * sc[is + 2] * q2;
                out[l + 64] = d * sc[is + 4] * q3;
                out[l + 96] = d * sc[is + 6] * q4;
            }
        }
        y += QK_K;
    }
}

/* ---------------------------------------------------------------------------
 * Q8_K (activations for K-quant dot products)
 * ------------------------------------------------------------------------- */

void qfit_quantize_row_q8_K_ref(const float *x, void *vy, int64_t k)
{
    block_q8_K *y = vy;
    const int64_t nb = k / QK_K;
    for (int64_t b = 0; b < nb; ++b, x += QK_K) {
        float amax = 0, vmax = 0;
        for (int j = 0; j < QK_K; ++j) {
            float a = fabsf(x[j]);
            if (a > amax) { amax = a; vmax = x[j]; }
        }
        if (!amax) {
            /* ggml leaves bsums untouched here; we define them as 0 */
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        const float inv = -127.f / vmax;
        for (int j = 0; j < QK_K; ++j)
            y[b].qs[j] = (int8_t)kq_min_i(127, kq_round(inv * x[j]));
        for (int g = 0; g < QK_K / 16; ++g) {
            int s = 0;
            for (int l = 0; l < 16; ++l) s += y[b].qs[16 * g + l];
            y[b].bsums[g] = (int16_t)s;
        }
        y[b].d = 1 / inv;
    }
}

void qfit_dequantize_row_q8_K(const void *vx, float *y, int64_t k)
{
    const block_q8_K *x = vx;
    const int64_t nb = k / QK_K;
    for (int64_t b = 0; b < nb; ++b)
        for (int j = 0; j < QK_K; ++j) *y++ = x[b].d * x[b].qs[j];
}

void qfit_quantize_row_q6_K_imatrix(const float *x, void *y, int64_t k, const float *qw) { kq_q6_K(x, y, k, qw); }
