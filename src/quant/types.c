/* qfit — type traits, half-float conversions and the quantize/dequantize
 * dispatchers (ggml-compatible). */
#include <math.h>
#include <strings.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "qfit/quant.h"
#include "quant/blocks.h"
#include "quant/quant_internal.h"

typedef void (*quant_fn)(const float *x, void *y, int64_t k);
typedef void (*dequant_fn)(const void *x, float *y, int64_t k);
typedef void (*quant_imatrix_fn)(const float *x, void *y, int64_t n_per_row, const float *qw);

typedef struct {
    qfit_type_traits t;
    quant_fn   quantize;    /* NULL: handled specially (plain types) or none */
    dequant_fn dequantize;
} type_entry;

/* the row quantizers that use an importance matrix (ggml's *_impl paths) */
static const quant_imatrix_fn k_imatrix_quant[QFIT_TYPE_COUNT] = {
    [QFIT_TYPE_Q4_0]   = qfit_quantize_row_q4_0_imatrix,
    [QFIT_TYPE_Q4_1]   = qfit_quantize_row_q4_1_imatrix,
    [QFIT_TYPE_Q5_0]   = qfit_quantize_row_q5_0_imatrix,
    [QFIT_TYPE_Q5_1]   = qfit_quantize_row_q5_1_imatrix,
    [QFIT_TYPE_Q2_K]   = qfit_quantize_row_q2_K_imatrix,
    [QFIT_TYPE_Q3_K]   = qfit_quantize_row_q3_K_imatrix,
    [QFIT_TYPE_Q4_K]   = qfit_quantize_row_q4_K_imatrix,
    [QFIT_TYPE_Q5_K]   = qfit_quantize_row_q5_K_imatrix,
    [QFIT_TYPE_Q6_K]   = qfit_quantize_row_q6_K_imatrix,
    [QFIT_TYPE_IQ4_NL] = qfit_quantize_row_iq4_nl_imatrix,
    [QFIT_TYPE_IQ4_XS] = qfit_quantize_row_iq4_xs_imatrix,
};

/* plain-type (de)quantizers, written as row functions so that every type goes
 * through the same path */
static void quant_f32(const float *x, void *y, int64_t k) { memcpy(y, x, (size_t)k * sizeof(float)); }
static void dequant_f32(const void *x, float *y, int64_t k) { memcpy(y, x, (size_t)k * sizeof(float)); }

static void quant_f16(const float *x, void *y, int64_t k) {
    uint16_t *o = y;
    for (int64_t i = 0; i < k; i++) o[i] = qfit_fp32_to_fp16(x[i]);
}
static void dequant_f16(const void *x, float *y, int64_t k) {
    const uint16_t *h = x;
    for (int64_t i = 0; i < k; i++) y[i] = qfit_fp16_to_fp32(h[i]);
}
static void quant_bf16(const float *x, void *y, int64_t k) {
    uint16_t *o = y;
    for (int64_t i = 0; i < k; i++) o[i] = qfit_fp32_to_bf16(x[i]);
}
static void dequant_bf16(const void *x, float *y, int64_t k) {
    const uint16_t *h = x;
    for (int64_t i = 0; i < k; i++) y[i] = qfit_bf16_to_fp32(h[i]);
}

/* name, block size, bytes per block, quantized, can_quantize, can_dequantize */
#define PLAIN(nm, ts) { nm, 1, ts, false, false, false }
#define BLOCK(nm, bs, ts) { nm, bs, ts, true, false, false }

static const type_entry k_types[QFIT_TYPE_COUNT] = {
    [QFIT_TYPE_F32]     = { { "f32", 1, 4, false, true, true }, quant_f32, dequant_f32 },
    [QFIT_TYPE_F16]     = { { "f16", 1, 2, false, true, true }, quant_f16, dequant_f16 },
    [QFIT_TYPE_Q4_0]    = { { "q4_0", QK4_0, sizeof(block_q4_0), true, true, true },
                            qfit_quantize_row_q4_0_ref, qfit_dequantize_row_q4_0 },
    [QFIT_TYPE_Q4_1]    = { { "q4_1", QK4_1, sizeof(block_q4_1), true, true, true },
                            qfit_quantize_row_q4_1_ref, qfit_dequantize_row_q4_1 },
    [QFIT_TYPE_Q5_0]    = { { "q5_0", QK5_0, sizeof(block_q5_0), true, true, true },
                            qfit_quantize_row_q5_0_ref, qfit_dequantize_row_q5_0 },
    [QFIT_TYPE_Q5_1]    = { { "q5_1", QK5_1, sizeof(block_q5_1), true, true, true },
                            qfit_quantize_row_q5_1_ref, qfit_dequantize_row_q5_1 },
    [QFIT_TYPE_Q8_0]    = { { "q8_0", QK8_0, sizeof(block_q8_0), true, true, true },
                            qfit_quantize_row_q8_0_ref, qfit_dequantize_row_q8_0 },
    /* ggml has no to_float for q8_1 (it only exists as a dot-product operand) */
    [QFIT_TYPE_Q8_1]    = { { "q8_1", QK8_1, sizeof(block_q8_1), true, true, false },
                            qfit_quantize_row_q8_1_ref, NULL },
    [QFIT_TYPE_Q2_K]    = { { "q2_K", QK_K, sizeof(block_q2_K), true, true, true },
                            qfit_quantize_row_q2_K_ref, qfit_dequantize_row_q2_K },
    [QFIT_TYPE_Q3_K]    = { { "q3_K", QK_K, sizeof(block_q3_K), true, true, true },
                            qfit_quantize_row_q3_K_ref, qfit_dequantize_row_q3_K },
    [QFIT_TYPE_Q4_K]    = { { "q4_K", QK_K, sizeof(block_q4_K), true, true, true },
                            qfit_quantize_row_q4_K_ref, qfit_dequantize_row_q4_K },
    [QFIT_TYPE_Q5_K]    = { { "q5_K", QK_K, sizeof(block_q5_K), true, true, true },
                            qfit_quantize_row_q5_K_ref, qfit_dequantize_row_q5_K },
    [QFIT_TYPE_Q6_K]    = { { "q6_K", QK_K, sizeof(block_q6_K), true, true, true },
                            qfit_quantize_row_q6_K_ref, qfit_dequantize_row_q6_K },
    [QFIT_TYPE_Q8_K]    = { { "q8_K", QK_K, sizeof(block_q8_K), true, true, true },
                            qfit_quantize_row_q8_K_ref, qfit_dequantize_row_q8_K },
    /* i-quants with lattice codebooks: layout known (sizes only), no codec */
    [QFIT_TYPE_IQ2_XXS] = { BLOCK("iq2_xxs", QK_K, 66), NULL, NULL },
    [QFIT_TYPE_IQ2_XS]  = { BLOCK("iq2_xs", QK_K, 74), NULL, NULL },
    [QFIT_TYPE_IQ3_XXS] = { BLOCK("iq3_xxs", QK_K, 98), NULL, NULL },
    [QFIT_TYPE_IQ1_S]   = { BLOCK("iq1_s", QK_K, 50), NULL, NULL },
    [QFIT_TYPE_IQ4_NL]  = { { "iq4_nl", QK4_NL, sizeof(block_iq4_nl), true, true, true },
                            qfit_quantize_row_iq4_nl_ref, qfit_dequantize_row_iq4_nl },
    [QFIT_TYPE_IQ3_S]   = { BLOCK("iq3_s", QK_K, 110), NULL, NULL },
    [QFIT_TYPE_IQ2_S]   = { BLOCK("iq2_s", QK_K, 82), NULL, NULL },
    [QFIT_TYPE_IQ4_XS]  = { { "iq4_xs", QK_K, sizeof(block_iq4_xs), true, true, true },
                            qfit_quantize_row_iq4_xs_ref, qfit_dequantize_row_iq4_xs },
    [QFIT_TYPE_I8]      = { PLAIN("i8", 1), NULL, NULL },
    [QFIT_TYPE_I16]     = { PLAIN("i16", 2), NULL, NULL },
    [QFIT_TYPE_I32]     = { PLAIN("i32", 4), NULL, NULL },
    [QFIT_TYPE_I64]     = { PLAIN("i64", 8), NULL, NULL },
    [QFIT_TYPE_F64]     = { PLAIN("f64", 8), NULL, NULL },
    [QFIT_TYPE_IQ1_M]   = { BLOCK("iq1_m", QK_K, 56), NULL, NULL },
    [QFIT_TYPE_BF16]    = { { "bf16", 1, 2, false, true, true }, quant_bf16, dequant_bf16 },
    [QFIT_TYPE_TQ1_0]   = { BLOCK("tq1_0", QK_K, 54), NULL, NULL },
    [QFIT_TYPE_TQ2_0]   = { BLOCK("tq2_0", QK_K, 66), NULL, NULL },
    [QFIT_TYPE_MXFP4]   = { { "mxfp4", QK_MXFP4, sizeof(block_mxfp4), true, true, true },
                            qfit_quantize_row_mxfp4_ref, qfit_dequantize_row_mxfp4 },
};

static const type_entry *entry(int type) {
    if (type < 0 || type >= QFIT_TYPE_COUNT) return NULL;
    const type_entry *e = &k_types[type];
    return e->t.name ? e : NULL;   /* retired ids have no entry */
}

const qfit_type_traits *qfit_type_get_traits(int type) {
    const type_entry *e = entry(type);
    return e ? &e->t : NULL;
}

bool qfit_type_is_valid(int type) { return entry(type) != NULL; }

const char *qfit_type_name(int type) {
    const type_entry *e = entry(type);
    return e ? e->t.name : "?";
}

int qfit_type_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < QFIT_TYPE_COUNT; i++) {
        const type_entry *e = entry(i);
        if (e && strcasecmp(e->t.name, name) == 0) return i;
    }
    return -1;
}

/* ---- sizes ---- */

static bool row_size_checked(int type, int64_t n, size_t *out) {
    const type_entry *e = entry(type);
    if (!e || n < 0 || n % e->t.block_size != 0) return false;
    uint64_t nb = (uint64_t)(n / e->t.block_size);
    if (nb != 0 && e->t.type_size > SIZE_MAX / nb) return false;
    *out = (size_t)nb * e->t.type_size;
    return true;
}

size_t qfit_row_size(int type, int64_t n) {
    size_t rs;
    return row_size_checked(type, n, &rs) ? rs : 0;
}

size_t qfit_tensor_nbytes(int type, int64_t ne0, int64_t nrows) {
    size_t rs;
    if (nrows < 0 || !row_size_checked(type, ne0, &rs)) return SIZE_MAX;
    if (nrows != 0 && rs > (SIZE_MAX - 1) / (uint64_t)nrows) return SIZE_MAX;
    return rs * (size_t)nrows;
}

/* ---- IEEE binary16 / bfloat16 ---- */

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }

uint16_t qfit_fp32_to_fp16(float f) {
    const uint32_t u = f2u(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;          /* NaN: canonical quiet NaN, as ggml */
    const uint32_t e = a >> 23;                           /* biased fp32 exponent */
    if (e >= 143) return sign | 0x7c00u;                  /* >= 2^16 (and inf): overflow */
    uint32_t mant, shift;
    uint32_t h;
    if (e >= 113) {                                       /* normal half */
        mant = a & 0x7fffffu;
        h = ((e - 112) << 10) | (mant >> 13);
        shift = 13;
    } else {                                              /* subnormal half or zero */
        if (e < 102) return sign;                         /* below half of the smallest subnormal */
        mant = (a & 0x7fffffu) | 0x800000u;
        shift = 126 - e;                                  /* 14 .. 24 */
        h = mant >> shift;
    }
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (h & 1u))) h++;  /* carries into exponent / inf */
    return (uint16_t)(sign | h);
}

float qfit_fp16_to_fp32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu;
    const uint32_t m = h & 0x3ffu;
    if (e == 0) {
        float v = (float)m * 0x1p-24f;                    /* exact: m < 2^10 */
        return sign ? -v : v;
    }
    if (e == 31) {
        uint32_t bits = sign | 0x7f800000u | (m << 13);
        if (m) bits |= 0x00400000u;                       /* NaN comes out quiet */
        return u2f(bits);
    }
    return u2f(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t qfit_fp32_to_bf16(float f) {
    const uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);  /* quiet NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);                  /* RNE */
}

float qfit_bf16_to_fp32(uint16_t h) { return u2f((uint32_t)h << 16); }

/* ---- dispatch ---- */

int qfit_quantize_row_ref(int type, const float *x, void *y, int64_t n) {
    const type_entry *e = entry(type);
    if (!e || !e->quantize || !x || !y || n < 0 || n % e->t.block_size != 0) return -1;
    if (n > 0) e->quantize(x, y, n);
    return 0;
}

int qfit_dequantize_row(int type, const void *x, float *y, int64_t n) {
    const type_entry *e = entry(type);
    if (!e || !e->dequantize || !x || !y || n < 0 || n % e->t.block_size != 0) return -1;
    if (n > 0) e->dequantize(x, y, n);
    return 0;
}

static void set_err(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || err_len == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

bool qfit_type_uses_imatrix(int type) {
    return type >= 0 && type < QFIT_TYPE_COUNT && k_imatrix_quant[type] != NULL;
}

size_t qfit_quantize_rows(int type, const float *src, void *dst,
                          int64_t nrows, int64_t n_per_row,
                          char *err, size_t err_len) {
    return qfit_quantize_rows_imatrix(type, src, dst, nrows, n_per_row, NULL, err, err_len);
}

size_t qfit_quantize_rows_imatrix(int type, const float *src, void *dst,
                                  int64_t nrows, int64_t n_per_row, const float *imatrix,
                                  char *err, size_t err_len) {
    if (err && err_len) err[0] = '\0';
    const type_entry *e = entry(type);
    if (!e) {
        set_err(err, err_len, "unknown tensor type id %d", type);
        return 0;
    }
    if (!e->quantize) {
        set_err(err, err_len, "type %s: qfit has no quantizer for it", e->t.name);
        return 0;
    }
    if (nrows < 0 || n_per_row <= 0) {
        set_err(err, err_len, "type %s: invalid shape (%lld rows of %lld)", e->t.name,
                (long long)nrows, (long long)n_per_row);
        return 0;
    }
    if (n_per_row % e->t.block_size != 0) {
        set_err(err, err_len, "type %s: row length %lld is not a multiple of the block size %lld",
                e->t.name, (long long)n_per_row, (long long)e->t.block_size);
        return 0;
    }
    size_t total = qfit_tensor_nbytes(type, n_per_row, nrows);
    if (total == SIZE_MAX || (nrows != 0 && n_per_row > INT64_MAX / nrows) ||
        (uint64_t)(nrows * n_per_row) > SIZE_MAX / sizeof(float)) {
        set_err(err, err_len, "type %s: tensor of %lld x %lld is too large", e->t.name,
                (long long)nrows, (long long)n_per_row);
        return 0;
    }
    if (nrows == 0) {
        set_err(err, err_len, "type %s: no rows to quantize", e->t.name);
        return 0;
    }
    if (!src || !dst) {
        set_err(err, err_len, "type %s: NULL buffer", e->t.name);
        return 0;
    }
    const quant_imatrix_fn qi = imatrix ? k_imatrix_quant[type] : NULL;
    if (qi) {
        for (int64_t j = 0; j < n_per_row; j++) {
            if (!(imatrix[j] >= 0.0f) || !isfinite(imatrix[j])) {
                set_err(err, err_len, "type %s: importance weight of column %lld is %g (must be finite and >= 0)",
                        e->t.name, (long long)j, (double)imatrix[j]);
                return 0;
            }
        }
    }
    /* Blocks never straddle rows (n_per_row is a multiple of the block size), so
     * ggml_quantize_chunk without an importance matrix is the reference row
     * quantizer applied to each row, which equals one call over all the rows. */
    const size_t rs = qfit_row_size(type, n_per_row);
    const char *s = (const char *)src;
    char *d = dst;
    for (int64_t r = 0; r < nrows; r++) {
        const float *row = (const float *)(s + (size_t)r * (size_t)n_per_row * sizeof(float));
        if (qi) qi(row, d + (size_t)r * rs, n_per_row, imatrix);   /* row by row, as ggml's *_impl */
        else    e->quantize(row, d + (size_t)r * rs, n_per_row);
    }
    return total;
}

int qfit_rows_to_float(int type, const void *src, float *dst, int64_t nrows, int64_t n_per_row) {
    const type_entry *e = entry(type);
    if (!e || !e->dequantize || !src || !dst || nrows < 0 || n_per_row < 0) return -1;
    size_t total = qfit_tensor_nbytes(type, n_per_row, nrows);
    if (total == SIZE_MAX) return -1;
    if (nrows != 0 && n_per_row > INT64_MAX / nrows) return -1;
    const size_t rs = qfit_row_size(type, n_per_row);
    const char *s = src;
    for (int64_t r = 0; r < nrows; r++) {
        if (n_per_row > 0)
            e->dequantize(s + (size_t)r * rs, dst + (size_t)r * (size_t)n_per_row, n_per_row);
    }
    return 0;
}
