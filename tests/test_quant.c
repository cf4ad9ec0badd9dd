/* Tests for src/quant: type table, half-float conversions, and the block
 * formats checked byte for byte against ggml's own output (shared testdata). */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/quant.h"
#include "util/testutil.h"

/* ------------------------------------------------------------------ helpers */

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }

/* the description of row `row` in testdata/quant/rowsN.tsv ("?" if unavailable) */
static const char *row_desc(int n_per_row, int64_t row, char *buf, size_t len) {
    char rel[64];
    snprintf(rel, sizeof rel, "testdata/quant/rows%d.tsv", n_per_row);
    snprintf(buf, len, "?");
    size_t sz;
    char *tsv = tu_read_file(tu_shared_path(rel), &sz);
    if (!tsv) return buf;
    for (char *line = strtok(tsv, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');
        if (tab && strtoll(line, NULL, 10) == row) { snprintf(buf, len, "%s", tab + 1); break; }
    }
    free(tsv);
    return buf;
}

static void *read_shared(const char *rel, size_t *size) {
    void *p = tu_read_file(tu_shared_path(rel), size);
    cr_assert_not_null(p, "cannot read shared test file %s", tu_shared_path(rel));
    return p;
}

/* Quantize rowsN.f32 and compare with ggml's TYPE.rowsN.q; dequantize ggml's bytes
 * and compare bit-exactly with TYPE.rowsN.deq.f32. */
static void check_exact(const char *tname, int n_per_row) {
    const int type = qfit_type_from_name(tname);
    cr_assert_geq(type, 0, "type name %s unknown", tname);
    char rel[128];
    size_t fsize, qsize, dsize;

    snprintf(rel, sizeof rel, "testdata/quant/rows%d.f32", n_per_row);
    float *src = read_shared(rel, &fsize);
    cr_assert_eq(fsize % (sizeof(float) * (size_t)n_per_row), 0, "%s: size not a whole number of rows", rel);
    const int64_t nrows = (int64_t)(fsize / sizeof(float) / (size_t)n_per_row);
    const size_t rs = qfit_row_size(type, n_per_row);
    cr_assert_gt(rs, 0);

    snprintf(rel, sizeof rel, "testdata/quant/%s.rows%d.q", tname, n_per_row);
    uint8_t *ref = read_shared(rel, &qsize);
    cr_assert_eq(qsize, rs * (size_t)nrows, "%s: %zu bytes, expected %lld rows of %zu", rel, qsize,
                 (long long)nrows, rs);

    /* quantize: byte for byte */
    uint8_t *out = malloc(qsize + 16);
    cr_assert_not_null(out);
    memset(out, 0xA5, qsize + 16);
    char err[256] = "";
    size_t written = qfit_quantize_rows(type, src, out, nrows, n_per_row, err, sizeof err);
    cr_assert_eq(written, qsize, "%s rows%d: qfit_quantize_rows wrote %zu bytes, expected %zu (%s)", tname,
                 n_per_row, written, qsize, err);
    for (int i = 0; i < 16; i++) cr_assert_eq(out[qsize + i], 0xA5, "%s: wrote past the end", tname);
    for (size_t i = 0; i < qsize; i++) {
        if (out[i] != ref[i]) {
            char d[128];
            const int64_t row = (int64_t)(i / rs);
            cr_assert_fail("%s rows%d: quantized bytes differ from ggml at row %lld (%s), byte %zu of the row "
                    "(block %zu, offset %zu): qfit 0x%02x, ggml 0x%02x",
                    tname, n_per_row, (long long)row, row_desc(n_per_row, row, d, sizeof d), i % rs,
                    (i % rs) / qfit_type_get_traits(type)->type_size,
                    (i % rs) % qfit_type_get_traits(type)->type_size, out[i], ref[i]);
            break;
        }
    }

    /* dequantize ggml's bytes: bit for bit (memcmp also compares NaN payloads) */
    snprintf(rel, sizeof rel, "testdata/quant/%s.rows%d.deq.f32", tname, n_per_row);
    float *deq_ref = read_shared(rel, &dsize);
    cr_assert_eq(dsize, fsize, "%s: size mismatch", rel);
    float *deq = malloc(dsize);
    cr_assert_not_null(deq);
    cr_assert_eq(qfit_rows_to_float(type, ref, deq, nrows, n_per_row), 0, "%s: rows_to_float failed", tname);
    for (size_t i = 0; i < dsize / sizeof(float); i++) {
        if (memcmp(&deq[i], &deq_ref[i], sizeof(float)) != 0) {
            char d[128];
            const int64_t row = (int64_t)(i / (size_t)n_per_row);
            cr_assert_fail("%s rows%d: dequantized value differs from ggml at row %lld (%s), element %zu: "
                    "qfit %a (0x%08x), ggml %a (0x%08x)",
                    tname, n_per_row, (long long)row, row_desc(n_per_row, row, d, sizeof d),
                    i % (size_t)n_per_row, (double)deq[i], f2u(deq[i]), (double)deq_ref[i], f2u(deq_ref[i]));
            break;
        }
    }

    /* the single-row entry points agree with the chunk entry point */
    uint8_t *one = malloc(rs);
    float *onef = malloc((size_t)n_per_row * sizeof(float));
    cr_assert(one && onef);
    for (int64_t r = 0; r < nrows; r += 5) {
        cr_assert_eq(qfit_quantize_row_ref(type, src + r * n_per_row, one, n_per_row), 0);
        cr_assert(memcmp(one, ref + (size_t)r * rs, rs) == 0, "%s: qfit_quantize_row_ref differs on row %lld",
                  tname, (long long)r);
        cr_assert_eq(qfit_dequantize_row(type, ref + (size_t)r * rs, onef, n_per_row), 0);
        cr_assert(memcmp(onef, deq_ref + r * n_per_row, (size_t)n_per_row * sizeof(float)) == 0,
                  "%s: qfit_dequantize_row differs on row %lld", tname, (long long)r);
    }

    free(one); free(onef);
    free(src); free(ref); free(out); free(deq_ref); free(deq);
}

#define EXACT_TEST(T)                                                   \
    Test(quant, exact_##T) { check_exact(#T, 256); check_exact(#T, 768); }

EXACT_TEST(f16)
EXACT_TEST(bf16)
EXACT_TEST(q4_0)
EXACT_TEST(q4_1)
EXACT_TEST(q5_0)
EXACT_TEST(q5_1)
EXACT_TEST(q8_0)
EXACT_TEST(q2_K)
EXACT_TEST(q3_K)
EXACT_TEST(q4_K)
EXACT_TEST(q5_K)
EXACT_TEST(q6_K)
EXACT_TEST(iq4_nl)
EXACT_TEST(iq4_xs)

/* ------------------------------------------------------- type table / names */

Test(quant, traits_of_every_known_type) {
    static const struct { int id; const char *name; int64_t bs; size_t ts; bool quantized; } k[] = {
        { QFIT_TYPE_F32, "f32", 1, 4, false },         { QFIT_TYPE_F16, "f16", 1, 2, false },
        { QFIT_TYPE_Q4_0, "q4_0", 32, 18, true },      { QFIT_TYPE_Q4_1, "q4_1", 32, 20, true },
        { QFIT_TYPE_Q5_0, "q5_0", 32, 22, true },      { QFIT_TYPE_Q5_1, "q5_1", 32, 24, true },
        { QFIT_TYPE_Q8_0, "q8_0", 32, 34, true },      { QFIT_TYPE_Q8_1, "q8_1", 32, 36, true },
        { QFIT_TYPE_Q2_K, "q2_K", 256, 84, true },     { QFIT_TYPE_Q3_K, "q3_K", 256, 110, true },
        { QFIT_TYPE_Q4_K, "q4_K", 256, 144, true },    { QFIT_TYPE_Q5_K, "q5_K", 256, 176, true },
        { QFIT_TYPE_Q6_K, "q6_K", 256, 210, true },    { QFIT_TYPE_Q8_K, "q8_K", 256, 292, true },
        { QFIT_TYPE_IQ2_XXS, "iq2_xxs", 256, 66, true }, { QFIT_TYPE_IQ2_XS, "iq2_xs", 256, 74, true },
        { QFIT_TYPE_IQ3_XXS, "iq3_xxs", 256, 98, true }, { QFIT_TYPE_IQ1_S, "iq1_s", 256, 50, true },
        { QFIT_TYPE_IQ4_NL, "iq4_nl", 32, 18, true },  { QFIT_TYPE_IQ3_S, "iq3_s", 256, 110, true },
        { QFIT_TYPE_IQ2_S, "iq2_s", 256, 82, true },   { QFIT_TYPE_IQ4_XS, "iq4_xs", 256, 136, true },
        { QFIT_TYPE_I8, "i8", 1, 1, false },           { QFIT_TYPE_I16, "i16", 1, 2, false },
        { QFIT_TYPE_I32, "i32", 1, 4, false },         { QFIT_TYPE_I64, "i64", 1, 8, false },
        { QFIT_TYPE_F64, "f64", 1, 8, false },         { QFIT_TYPE_IQ1_M, "iq1_m", 256, 56, true },
        { QFIT_TYPE_BF16, "bf16", 1, 2, false },       { QFIT_TYPE_TQ1_0, "tq1_0", 256, 54, true },
        { QFIT_TYPE_TQ2_0, "tq2_0", 256, 66, true },   { QFIT_TYPE_MXFP4, "mxfp4", 32, 17, true },
    };
    int nvalid = 0;
    for (int id = -3; id < QFIT_TYPE_COUNT + 3; id++) nvalid += qfit_type_is_valid(id);
    cr_assert_eq(nvalid, (int)(sizeof k / sizeof k[0]), "number of valid type ids");
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        const qfit_type_traits *t = qfit_type_get_traits(k[i].id);
        cr_assert_not_null(t, "traits of %s", k[i].name);
        cr_assert_str_eq(t->name, k[i].name);
        cr_assert_str_eq(qfit_type_name(k[i].id), k[i].name);
        cr_assert_eq(t->block_size, k[i].bs, "%s block size %lld", k[i].name, (long long)t->block_size);
        cr_assert_eq(t->type_size, k[i].ts, "%s type size %zu", k[i].name, t->type_size);
        cr_assert_eq(t->quantized, k[i].quantized, "%s quantized flag", k[i].name);
        cr_assert_eq(qfit_type_from_name(k[i].name), k[i].id, "%s from name", k[i].name);
        cr_assert_eq(qfit_row_size(k[i].id, 4096), (size_t)(4096 / k[i].bs) * k[i].ts, "%s row size", k[i].name);
    }
}

Test(quant, codec_flags) {
    static const int both[] = { QFIT_TYPE_F32, QFIT_TYPE_F16, QFIT_TYPE_BF16, QFIT_TYPE_Q4_0, QFIT_TYPE_Q4_1,
                                QFIT_TYPE_Q5_0, QFIT_TYPE_Q5_1, QFIT_TYPE_Q8_0, QFIT_TYPE_Q2_K, QFIT_TYPE_Q3_K,
                                QFIT_TYPE_Q4_K, QFIT_TYPE_Q5_K, QFIT_TYPE_Q6_K, QFIT_TYPE_Q8_K,
                                QFIT_TYPE_IQ4_NL, QFIT_TYPE_IQ4_XS, QFIT_TYPE_MXFP4 };
    for (size_t i = 0; i < sizeof both / sizeof both[0]; i++) {
        const qfit_type_traits *t = qfit_type_get_traits(both[i]);
        cr_assert(t->can_quantize && t->can_dequantize, "%s should have both codecs", t->name);
    }
    static const int none[] = { QFIT_TYPE_IQ2_XXS, QFIT_TYPE_IQ2_XS, QFIT_TYPE_IQ3_XXS, QFIT_TYPE_IQ1_S,
                                QFIT_TYPE_IQ3_S, QFIT_TYPE_IQ2_S, QFIT_TYPE_IQ1_M, QFIT_TYPE_TQ1_0,
                                QFIT_TYPE_TQ2_0, QFIT_TYPE_I8, QFIT_TYPE_I16, QFIT_TYPE_I32,
                                QFIT_TYPE_I64, QFIT_TYPE_F64 };
    float x[256] = { 0 }, y[256];
    uint8_t buf[2048];
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        const qfit_type_traits *t = qfit_type_get_traits(none[i]);
        cr_assert(!t->can_quantize && !t->can_dequantize, "%s has no codec in qfit", t->name);
        cr_assert_eq(qfit_quantize_row_ref(none[i], x, buf, 256), -1, "%s", t->name);
        cr_assert_eq(qfit_dequantize_row(none[i], buf, y, 256), -1, "%s", t->name);
        char err[128] = "";
        cr_assert_eq(qfit_quantize_rows(none[i], x, buf, 1, 256, err, sizeof err), 0);
        cr_assert(strstr(err, t->name) && strstr(err, "no quantizer"), "error message for %s: '%s'", t->name, err);
        cr_assert_eq(qfit_rows_to_float(none[i], buf, y, 1, 256), -1);
    }
    /* q8_1 quantizes (dot-product operand) but, as in ggml, has no to_float */
    const qfit_type_traits *q81 = qfit_type_get_traits(QFIT_TYPE_Q8_1);
    cr_assert(q81->can_quantize && !q81->can_dequantize);
}

Test(quant, type_from_name_is_case_insensitive) {
    cr_assert_eq(qfit_type_from_name("Q4_K"), QFIT_TYPE_Q4_K);
    cr_assert_eq(qfit_type_from_name("q4_k"), QFIT_TYPE_Q4_K);
    cr_assert_eq(qfit_type_from_name("q4_K"), QFIT_TYPE_Q4_K);
    cr_assert_eq(qfit_type_from_name("bf16"), QFIT_TYPE_BF16);
    cr_assert_eq(qfit_type_from_name("BF16"), QFIT_TYPE_BF16);
    cr_assert_eq(qfit_type_from_name("F32"), QFIT_TYPE_F32);
    cr_assert_eq(qfit_type_from_name("Q8_0"), QFIT_TYPE_Q8_0);
    cr_assert_eq(qfit_type_from_name("IQ4_XS"), QFIT_TYPE_IQ4_XS);
    cr_assert_eq(qfit_type_from_name("iq4_NL"), QFIT_TYPE_IQ4_NL);
    cr_assert_eq(qfit_type_from_name("MXFP4"), QFIT_TYPE_MXFP4);
    cr_assert_eq(qfit_type_from_name("q4_2"), -1);      /* retired */
    cr_assert_eq(qfit_type_from_name("q4_K_M"), -1);    /* a mix, not a type */
    cr_assert_eq(qfit_type_from_name("q4_"), -1);
    cr_assert_eq(qfit_type_from_name(""), -1);
    cr_assert_eq(qfit_type_from_name(NULL), -1);
}

Test(quant, unknown_type_ids_are_rejected) {
    static const int bad[] = { -1, -1000, 4, 5, 31, 32, 33, 36, 37, 38, QFIT_TYPE_COUNT, 41, 1 << 20 };
    float x[256] = { 0 }, y[256];
    uint8_t buf[1024];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const int id = bad[i];
        cr_assert_null(qfit_type_get_traits(id), "id %d", id);
        cr_assert(!qfit_type_is_valid(id), "id %d", id);
        cr_assert_str_eq(qfit_type_name(id), "?");
        cr_assert_eq(qfit_row_size(id, 256), 0, "id %d", id);
        cr_assert_eq(qfit_tensor_nbytes(id, 256, 1), SIZE_MAX, "id %d", id);
        cr_assert_eq(qfit_quantize_row_ref(id, x, buf, 256), -1);
        cr_assert_eq(qfit_dequantize_row(id, buf, y, 256), -1);
        cr_assert_eq(qfit_rows_to_float(id, buf, y, 1, 256), -1);
        char err[128] = "";
        cr_assert_eq(qfit_quantize_rows(id, x, buf, 1, 256, err, sizeof err), 0);
        cr_assert(strstr(err, "unknown"), "error for id %d: '%s'", id, err);
    }
}

Test(quant, row_and_tensor_sizes) {
    cr_assert_eq(qfit_row_size(QFIT_TYPE_Q4_0, 4096), 128 * 18);
    cr_assert_eq(qfit_row_size(QFIT_TYPE_Q4_K, 4096), 16 * 144);
    cr_assert_eq(qfit_row_size(QFIT_TYPE_F16, 7), 14);
    cr_assert_eq(qfit_row_size(QFIT_TYPE_Q4_0, 0), 0);
    cr_assert_eq(qfit_row_size(QFIT_TYPE_Q4_0, 48), 0);    /* not a multiple of 32 */
    cr_assert_eq(qfit_row_size(QFIT_TYPE_Q6_K, 128), 0);   /* not a multiple of 256 */
    cr_assert_eq(qfit_row_size(QFIT_TYPE_F32, -4), 0);
    cr_assert_eq(qfit_tensor_nbytes(QFIT_TYPE_Q8_0, 256, 3), 3 * 8 * 34);
    cr_assert_eq(qfit_tensor_nbytes(QFIT_TYPE_F32, 256, 0), 0);
    cr_assert_eq(qfit_tensor_nbytes(QFIT_TYPE_Q8_0, 100, 3), SIZE_MAX);
    cr_assert_eq(qfit_tensor_nbytes(QFIT_TYPE_F32, 256, -1), SIZE_MAX);
    /* overflow of size_t */
    cr_assert_eq(qfit_tensor_nbytes(QFIT_TYPE_F64, INT64_MAX / 4, 8), SIZE_MAX);
    cr_assert_eq(qfit_tensor_nbytes(QFIT_TYPE_F32, (int64_t)1 << 40, (int64_t)1 << 30), SIZE_MAX);
    cr_assert_eq(qfit_row_size(QFIT_TYPE_F64, INT64_MAX), 0);
    cr_assert_eq(qfit_tensor_nbytes(QFIT_TYPE_Q8_K, (int64_t)1 << 40, 1), ((size_t)1 << 32) * 292);
}

/* -------------------------------------------------------------- half floats */

Test(quant, fp16_special_values) {
    cr_assert_eq(qfit_fp32_to_fp16(0.0f), 0x0000);
    cr_assert_eq(qfit_fp32_to_fp16(-0.0f), 0x8000);
    cr_assert_eq(qfit_fp32_to_fp16(INFINITY), 0x7c00);
    cr_assert_eq(qfit_fp32_to_fp16(-INFINITY), 0xfc00);
    cr_assert_eq(qfit_fp32_to_fp16(NAN), 0x7e00);                 /* ggml: canonical quiet NaN */
    cr_assert_eq(qfit_fp32_to_fp16(u2f(0xff800001u)), 0xfe00);    /* sign kept */
    cr_assert_eq(qfit_fp32_to_fp16(1.0f), 0x3c00);
    cr_assert_eq(qfit_fp32_to_fp16(-2.0f), 0xc000);
    cr_assert_eq(qfit_fp32_to_fp16(65504.0f), 0x7bff);            /* largest normal */
    cr_assert_eq(qfit_fp32_to_fp16(65519.99f), 0x7bff);
    cr_assert_eq(qfit_fp32_to_fp16(65520.0f), 0x7c00);            /* tie rounds to even = inf */
    cr_assert_eq(qfit_fp32_to_fp16(1e10f), 0x7c00);
    cr_assert_eq(qfit_fp32_to_fp16(0x1p-14f), 0x0400);            /* smallest normal */
    cr_assert_eq(qfit_fp32_to_fp16(0x3ffp-24f), 0x03ff);          /* largest subnormal */
    cr_assert_eq(qfit_fp32_to_fp16(0x1p-24f), 0x0001);            /* smallest subnormal */
    cr_assert_eq(qfit_fp32_to_fp16(-0x1p-24f), 0x8001);
    cr_assert_eq(qfit_fp32_to_fp16(0x1p-25f), 0x0000);            /* tie: to even (zero) */
    cr_assert_eq(qfit_fp32_to_fp16(nextafterf(0x1p-25f, 1.0f)), 0x0001);
    cr_assert_eq(qfit_fp32_to_fp16(0x3p-25f), 0x0002);            /* tie between 1 and 2 ulp */
    cr_assert_eq(qfit_fp32_to_fp16(0x7ffp-25f), 0x0400);          /* rounds up into the normals */
    cr_assert_eq(qfit_fp32_to_fp16(1e-30f), 0x0000);
    cr_assert_eq(qfit_fp32_to_fp16(u2f(0x00000001u)), 0x0000);    /* fp32 denormal */
    cr_assert_eq(qfit_fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00);     /* tie: to even */
    cr_assert_eq(qfit_fp32_to_fp16(1.0f + 0x3p-11f), 0x3c02);     /* tie: to even (up) */
    cr_assert_eq(qfit_fp32_to_fp16(nextafterf(1.0f + 0x1p-11f, 2.0f)), 0x3c01);
    cr_assert_eq(qfit_fp32_to_fp16(2049.0f), 0x6800);
    cr_assert_eq(qfit_fp32_to_fp16(2051.0f), 0x6802);
    cr_assert_eq(qfit_fp32_to_fp16(0.1f), 0x2e66);

    cr_assert_eq(f2u(qfit_fp16_to_fp32(0x0000)), 0x00000000u);
    cr_assert_eq(f2u(qfit_fp16_to_fp32(0x8000)), 0x80000000u);
    cr_assert_eq(qfit_fp16_to_fp32(0x3c00), 1.0f);
    cr_assert_eq(qfit_fp16_to_fp32(0x7bff), 65504.0f);
    cr_assert_eq(qfit_fp16_to_fp32(0x0001), 0x1p-24f);
    cr_assert_eq(qfit_fp16_to_fp32(0x83ff), -0x3ffp-24f);
    cr_assert_eq(qfit_fp16_to_fp32(0x0400), 0x1p-14f);
    cr_assert(isinf(qfit_fp16_to_fp32(0xfc00)) && qfit_fp16_to_fp32(0xfc00) < 0);
    cr_assert(isnan(qfit_fp16_to_fp32(0x7c01)));
    cr_assert(isnan(qfit_fp16_to_fp32(0x7e00)));

    /* every half survives the round trip; NaNs stay NaN */
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = qfit_fp16_to_fp32((uint16_t)h);
        const uint16_t back = qfit_fp32_to_fp16(f);
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
            cr_assert(isnan(f), "half 0x%04x should decode to NaN", h);
            cr_assert_eq(back, (h & 0x8000) | 0x7e00);
        } else {
            cr_assert_eq(back, h, "half 0x%04x -> %a -> 0x%04x", h, (double)f, back);
        }
    }
}

/* the exact value of fp32 x rounded to fp16, checked against a double computation */
Test(quant, fp16_matches_double_rounding) {
    uint32_t s = 12345;
    for (int i = 0; i < 200000; i++) {
        s = s * 1664525u + 1013904223u;
        /* exponents around the fp16 range */
        const uint32_t bits = (s & 0x807fffffu) | ((uint32_t)(96 + (s >> 8) % 50) << 23);
        const float f = u2f(bits);
        const uint16_t h = qfit_fp32_to_fp16(f);
        /* neighbours: the result must be a nearest half */
        const double v = fabs((double)f);
        const double got = fabs((double)qfit_fp16_to_fp32(h));
        if (isinf(got)) { cr_assert_geq(v, 65520.0); continue; }
        const double up = fabs((double)qfit_fp16_to_fp32((uint16_t)((h & 0x7fff) + 1)));
        const double dn = (h & 0x7fff) ? fabs((double)qfit_fp16_to_fp32((uint16_t)((h & 0x7fff) - 1))) : 0.0;
        cr_assert_leq(fabs(got - v), fabs(up - v), "%a -> 0x%04x", (double)f, h);
        cr_assert_leq(fabs(got - v), fabs(dn - v), "%a -> 0x%04x", (double)f, h);
        if (fabs(got - v) == fabs(up - v) || ((h & 0x7fff) && fabs(got - v) == fabs(dn - v)))
            cr_assert_eq(h & 1, 0, "tie must go to even: %a -> 0x%04x", (double)f, h);
    }
}

Test(quant, bf16_special_values) {
    cr_assert_eq(qfit_fp32_to_bf16(0.0f), 0x0000);
    cr_assert_eq(qfit_fp32_to_bf16(-0.0f), 0x8000);
    cr_assert_eq(qfit_fp32_to_bf16(1.0f), 0x3f80);
    cr_assert_eq(qfit_fp32_to_bf16(INFINITY), 0x7f80);
    cr_assert_eq(qfit_fp32_to_bf16(-INFINITY), 0xff80);
    cr_assert_eq(qfit_fp32_to_bf16(u2f(0x7f800001u)), 0x7fc0);    /* signalling NaN made quiet */
    cr_assert_eq(qfit_fp32_to_bf16(u2f(0xffc12345u)), 0xffc1);
    cr_assert_eq(qfit_fp32_to_bf16(u2f(0x3f808000u)), 0x3f80);    /* tie: to even */
    cr_assert_eq(qfit_fp32_to_bf16(u2f(0x3f818000u)), 0x3f82);    /* tie: to even (up) */
    cr_assert_eq(qfit_fp32_to_bf16(u2f(0x3f808001u)), 0x3f81);
    cr_assert_eq(qfit_fp32_to_bf16(u2f(0x3f807fffu)), 0x3f80);
    cr_assert_eq(qfit_fp32_to_bf16(FLT_MAX), 0x7f80);              /* rounds up to inf */
    cr_assert_eq(qfit_fp32_to_bf16(u2f(0x7f7f7fffu)), 0x7f7f);     /* largest finite stays */
    cr_assert_eq(qfit_fp32_to_bf16(FLT_MIN), 0x0080);              /* smallest normal */
    cr_assert_eq(qfit_fp32_to_bf16(u2f(0x00010000u)), 0x0001);     /* subnormals are kept, not flushed */
    cr_assert_eq(qfit_fp32_to_bf16(u2f(0x80018000u)), 0x8002);
    cr_assert_eq(qfit_fp32_to_bf16(u2f(0x00008000u)), 0x0000);     /* tie below the smallest subnormal */
    cr_assert_eq(qfit_bf16_to_fp32(0x3f80), 1.0f);
    cr_assert_eq(f2u(qfit_bf16_to_fp32(0x8000)), 0x80000000u);
    cr_assert_eq(f2u(qfit_bf16_to_fp32(0x0001)), 0x00010000u);
    cr_assert(isnan(qfit_bf16_to_fp32(0x7fc0)));
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7f80) == 0x7f80 && (h & 0x7f)) continue;   /* NaN */
        cr_assert_eq(qfit_fp32_to_bf16(qfit_bf16_to_fp32((uint16_t)h)), h, "bf16 0x%04x", h);
    }
}

/* ---------------------------------------------------------------- edge cases */

static const int k_codec_types[] = { QFIT_TYPE_F16, QFIT_TYPE_BF16, QFIT_TYPE_Q4_0, QFIT_TYPE_Q4_1,
                                     QFIT_TYPE_Q5_0, QFIT_TYPE_Q5_1, QFIT_TYPE_Q8_0, QFIT_TYPE_Q2_K,
                                     QFIT_TYPE_Q3_K, QFIT_TYPE_Q4_K, QFIT_TYPE_Q5_K, QFIT_TYPE_Q6_K,
                                     QFIT_TYPE_Q8_K, QFIT_TYPE_IQ4_NL, QFIT_TYPE_IQ4_XS };
#define N_CODEC (sizeof k_codec_types / sizeof k_codec_types[0])
#define EDGE_N 512

/* quantize one row of EDGE_N floats with `type`, dequantize into y */
static void roundtrip(int type, const float *x, float *y) {
    uint8_t buf[EDGE_N * 4];
    char err[128] = "";
    const size_t rs = qfit_row_size(type, EDGE_N);
    cr_assert_eq(qfit_quantize_rows(type, x, buf, 1, EDGE_N, err, sizeof err), rs, "%s: %s",
                 qfit_type_name(type), err);
    cr_assert_eq(qfit_rows_to_float(type, buf, y, 1, EDGE_N), 0, "%s", qfit_type_name(type));
}

Test(quant, zero_blocks_dequantize_to_exact_zero) {
    float x[EDGE_N] = { 0 }, y[EDGE_N];
    for (size_t t = 0; t < N_CODEC; t++) {
        roundtrip(k_codec_types[t], x, y);
        for (int i = 0; i < EDGE_N; i++)
            cr_assert(y[i] == 0.0f, "%s: element %d = %a", qfit_type_name(k_codec_types[t]), i, (double)y[i]);
    }
    /* a zero block next to non-zero blocks stays exactly zero too (block-local scales) */
    for (int i = 0; i < EDGE_N; i++) x[i] = (i >= 256) ? sinf((float)i) : 0.0f;
    for (size_t t = 0; t < N_CODEC; t++) {
        roundtrip(k_codec_types[t], x, y);
        for (int i = 0; i < 256; i++)
            cr_assert(y[i] == 0.0f, "%s: element %d = %a", qfit_type_name(k_codec_types[t]), i, (double)y[i]);
    }
}

Test(quant, constant_blocks) {
    static const float consts[] = { 0.5f, -3.0f, 1.3f, -0.0071f, 250.0f };
    float x[EDGE_N], y[EDGE_N];
    for (size_t c = 0; c < sizeof consts / sizeof consts[0]; c++) {
        for (int i = 0; i < EDGE_N; i++) x[i] = consts[c];
        for (size_t t = 0; t < N_CODEC; t++) {
            const int type = k_codec_types[t];
            roundtrip(type, x, y);
            /* a constant comes back up to the precision of the format's scale:
             * one fp16 scale per block: ~1e-3; bf16: 8 significant bits; K-quants
             * and iq4_xs multiply a 6/8-bit sub-scale by an fp16 super-scale */
            const qfit_type_traits *tr = qfit_type_get_traits(type);
            const float rel = type == QFIT_TYPE_BF16 ? 4e-3f : (tr->block_size == 256 && type != QFIT_TYPE_Q8_K) ? 5e-3f : 1e-3f;
            const float tol = fabsf(consts[c]) * rel;
            for (int i = 0; i < EDGE_N; i++)
                cr_assert_leq(fabsf(y[i] - consts[c]), tol, "%s constant %g: element %d = %g",
                              qfit_type_name(type), (double)consts[c], i, (double)y[i]);
        }
    }
    /* formats whose scale is exactly representable reproduce 0.5 exactly */
    for (int i = 0; i < EDGE_N; i++) x[i] = 0.5f;
    static const int exact[] = { QFIT_TYPE_F16, QFIT_TYPE_BF16, QFIT_TYPE_Q4_0, QFIT_TYPE_Q4_1,
                                 QFIT_TYPE_Q5_0, QFIT_TYPE_Q5_1 };
    for (size_t t = 0; t < sizeof exact / sizeof exact[0]; t++) {
        roundtrip(exact[t], x, y);
        for (int i = 0; i < EDGE_N; i++) cr_assert_eq(y[i], 0.5f, "%s", qfit_type_name(exact[t]));
    }
}

Test(quant, huge_outlier_keeps_its_value_and_spares_other_blocks) {
    float x[EDGE_N], y[EDGE_N];
    for (size_t t = 0; t < N_CODEC; t++) {
        const int type = k_codec_types[t];
        if (type == QFIT_TYPE_F16) continue;   /* 1e4 is not an outlier for a float format */
        uint32_t s = 7;
        for (int i = 0; i < EDGE_N; i++) {
            s = s * 1664525u + 1013904223u;
            x[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 0.1f;
        }
        x[300] = 1e4f;
        roundtrip(type, x, y);
        cr_assert_leq(fabsf(y[300] - 1e4f), 1e4f * 0.02f, "%s: outlier came back as %g", qfit_type_name(type),
                      (double)y[300]);
        /* the first super-block (elements 0..255) does not contain the outlier:
         * its error must stay at the level of a 0.1-wide uniform signal */
        double se = 0, sx = 0;
        for (int i = 0; i < 256; i++) { se += (double)(y[i] - x[i]) * (y[i] - x[i]); sx += (double)x[i] * x[i]; }
        cr_assert_leq(sqrt(se / sx), 0.35, "%s: a block without the outlier degraded (rel rmse %g)",
                      qfit_type_name(type), sqrt(se / sx));
        for (int i = 0; i < EDGE_N; i++) cr_assert(isfinite(y[i]), "%s", qfit_type_name(type));
    }
}

Test(quant, denormal_inputs) {
    float x[EDGE_N], y[EDGE_N];
    for (int i = 0; i < EDGE_N; i++) x[i] = u2f((uint32_t)(i * 2654435761u) & 0x807fffffu);   /* fp32 denormals */
    for (size_t t = 0; t < N_CODEC; t++) {
        const int type = k_codec_types[t];
        roundtrip(type, x, y);
        for (int i = 0; i < EDGE_N; i++) {
            cr_assert(isfinite(y[i]), "%s: element %d not finite", qfit_type_name(type), i);
            cr_assert_leq(fabsf(y[i]), 1e-37f, "%s: element %d = %g", qfit_type_name(type), i, (double)y[i]);
        }
    }
    /* bf16 keeps fp32 denormals (rounded), fp16 flushes them by rounding */
    cr_assert_eq(qfit_fp32_to_bf16(u2f(0x00123456u)), 0x0012);
    cr_assert_eq(qfit_fp32_to_fp16(u2f(0x00123456u)), 0x0000);
}

Test(quant, non_finite_inputs_do_not_crash) {
    float x[EDGE_N], y[EDGE_N];
    for (int i = 0; i < EDGE_N; i++) x[i] = sinf((float)i);
    x[3] = NAN; x[40] = INFINITY; x[77] = -INFINITY; x[300] = NAN;
    for (size_t t = 0; t < N_CODEC; t++) roundtrip(k_codec_types[t], x, y);
}

Test(quant, row_length_must_be_a_multiple_of_the_block_size) {
    float x[300] = { 0 };
    uint8_t buf[4096];
    char err[256];
    struct { int type; int64_t n; const char *bs; } cases[] = {
        { QFIT_TYPE_Q4_0, 48, "32" }, { QFIT_TYPE_Q8_0, 31, "32" }, { QFIT_TYPE_Q4_K, 288, "256" },
        { QFIT_TYPE_Q6_K, 128, "256" }, { QFIT_TYPE_IQ4_XS, 32, "256" }, { QFIT_TYPE_IQ4_NL, 33, "32" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(err, 0, sizeof err);
        memset(buf, 0x5a, sizeof buf);
        cr_assert_eq(qfit_quantize_rows(cases[i].type, x, buf, 1, cases[i].n, err, sizeof err), 0);
        cr_assert(strstr(err, "block size") && strstr(err, cases[i].bs),
                  "%s n=%lld: error should name the block size %s: '%s'", qfit_type_name(cases[i].type),
                  (long long)cases[i].n, cases[i].bs, err);
        cr_assert_eq(buf[0], 0x5a, "nothing may be written on error");
        cr_assert_eq(qfit_quantize_row_ref(cases[i].type, x, buf, cases[i].n), -1);
        cr_assert_eq(qfit_dequantize_row(cases[i].type, buf, (float *)x, cases[i].n), -1);
    }
    /* shape errors */
    cr_assert_eq(qfit_quantize_rows(QFIT_TYPE_Q8_0, x, buf, -1, 32, err, sizeof err), 0);
    cr_assert_eq(qfit_quantize_rows(QFIT_TYPE_Q8_0, x, buf, 1, 0, err, sizeof err), 0);
    cr_assert_eq(qfit_quantize_rows(QFIT_TYPE_Q8_0, x, buf, INT64_MAX / 2, 256, err, sizeof err), 0);
    cr_assert(strstr(err, "too large"), "'%s'", err);
    cr_assert_eq(qfit_quantize_rows(QFIT_TYPE_Q8_0, NULL, buf, 1, 32, err, sizeof err), 0);
    /* a NULL / zero-length error buffer is allowed */
    cr_assert_eq(qfit_quantize_rows(QFIT_TYPE_Q8_0, x, buf, 1, 33, NULL, 0), 0);
    cr_assert_eq(qfit_quantize_rows(QFIT_TYPE_Q8_0, x, buf, 1, 32, NULL, 0), 34);
}

Test(quant, f32_rows_are_copied) {
    float x[64], y[64];
    uint8_t buf[256];
    for (int i = 0; i < 64; i++) x[i] = (float)i * 0.37f - 5.0f;
    x[5] = NAN;
    cr_assert_eq(qfit_quantize_rows(QFIT_TYPE_F32, x, buf, 2, 32, NULL, 0), 256);
    cr_assert(memcmp(buf, x, 256) == 0);
    cr_assert_eq(qfit_rows_to_float(QFIT_TYPE_F32, buf, y, 4, 16), 0);
    cr_assert(memcmp(y, x, 256) == 0);
}

/* q8_1 has no ggml reference data; check its invariants: q8_0's bytes plus
 * s = fp16(d * sum(qs)) */
Test(quant, q8_1_matches_q8_0_and_stores_the_sum) {
    float x[256];
    uint8_t a[8 * 36], b[8 * 34];
    for (int i = 0; i < 256; i++) x[i] = cosf((float)i * 0.7f) * (float)(1 + i % 13);
    cr_assert_eq(qfit_quantize_rows(QFIT_TYPE_Q8_1, x, a, 1, 256, NULL, 0), 8 * 36);
    cr_assert_eq(qfit_quantize_rows(QFIT_TYPE_Q8_0, x, b, 1, 256, NULL, 0), 8 * 34);
    for (int blk = 0; blk < 8; blk++) {
        const uint8_t *p = a + 36 * blk, *q = b + 34 * blk;
        cr_assert(memcmp(p, q, 2) == 0, "d of block %d", blk);
        cr_assert(memcmp(p + 4, q + 2, 32) == 0, "qs of block %d", blk);
        /* s is fp16(d * sum) with d the fp32 scale before it was rounded to fp16 */
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * blk + j]));
        const float d = amax / 127;
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += (int8_t)p[4 + j];
        uint16_t s;
        memcpy(&s, p + 2, 2);
        cr_assert_eq(s, qfit_fp32_to_fp16((float)sum * d), "s of block %d: 0x%04x, sum %d", blk, s, sum);
        cr_assert_neq(sum, 0, "test data should give non-zero sums");
    }
}

/* ------------------------------------------- round-trip error on real weights */

/* A minimal, bounds-checked walk over a GGUF v3 header, enough to locate one F32
 * tensor (the test stays independent of src/gguf). */
typedef struct { const uint8_t *p, *end; bool ok; } gg_reader;

static uint64_t gg_uint(gg_reader *r, size_t n) {
    uint64_t v = 0;
    if (!r->ok || (size_t)(r->end - r->p) < n) { r->ok = false; return 0; }
    memcpy(&v, r->p, n);
    r->p += n;
    return v;
}

static void gg_skip(gg_reader *r, uint64_t n) {
    if (!r->ok || (uint64_t)(r->end - r->p) < n) { r->ok = false; return; }
    r->p += n;
}

static void gg_skip_value(gg_reader *r, uint32_t type, int depth) {
    static const uint8_t fixed[13] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };
    if (type == 8) {                      /* string */
        gg_skip(r, gg_uint(r, 8));
    } else if (type == 9 && depth < 2) {  /* array */
        const uint32_t et = (uint32_t)gg_uint(r, 4);
        const uint64_t n = gg_uint(r, 8);
        if (et < 13 && fixed[et]) {
            if (n > (uint64_t)(r->end - r->p) / fixed[et]) r->ok = false;
            else gg_skip(r, n * fixed[et]);
        } else {
            for (uint64_t i = 0; i < n && r->ok; i++) gg_skip_value(r, et, depth + 1);
        }
    } else if (type < 13 && fixed[type]) {
        gg_skip(r, fixed[type]);
    } else {
        r->ok = false;
    }
}

static const float *gguf_find_f32(const uint8_t *buf, size_t len, const char *name, int64_t *ne0, int64_t *ne1) {
    gg_reader r = { buf, buf + len, true };
    if (gg_uint(&r, 4) != 0x46554747u) return NULL;   /* "GGUF" */
    gg_uint(&r, 4);                                   /* version */
    const uint64_t n_tensors = gg_uint(&r, 8), n_kv = gg_uint(&r, 8);
    uint64_t align = 32;
    for (uint64_t i = 0; i < n_kv && r.ok; i++) {
        const uint64_t kl = gg_uint(&r, 8);
        const char *key = (const char *)r.p;
        gg_skip(&r, kl);
        const uint32_t t = (uint32_t)gg_uint(&r, 4);
        if (r.ok && t == 4 && kl == 17 && memcmp(key, "general.alignment", 17) == 0) align = gg_uint(&r, 4);
        else gg_skip_value(&r, t, 0);
    }
    bool found = false;
    uint64_t off = 0;
    for (uint64_t i = 0; i < n_tensors && r.ok; i++) {
        const uint64_t nl = gg_uint(&r, 8);
        const char *nm = (const char *)r.p;
        gg_skip(&r, nl);
        const uint32_t nd = (uint32_t)gg_uint(&r, 4);
        int64_t d[4] = { 1, 1, 1, 1 };
        if (nd > 4) r.ok = false;
        for (uint32_t j = 0; j < nd && r.ok; j++) d[j] = (int64_t)gg_uint(&r, 8);
        const uint32_t type = (uint32_t)gg_uint(&r, 4);
        const uint64_t o = gg_uint(&r, 8);
        if (r.ok && type == QFIT_TYPE_F32 && nl == strlen(name) && memcmp(nm, name, nl) == 0 && d[2] == 1) {
            found = true; off = o; *ne0 = d[0]; *ne1 = d[1];
        }
    }
    if (!r.ok || !found || align == 0 || *ne0 <= 0 || *ne1 <= 0) return NULL;
    const uint64_t data = ((uint64_t)(r.p - buf) + align - 1) / align * align;
    const uint64_t bytes = (uint64_t)*ne0 * (uint64_t)*ne1 * sizeof(float);
    if (data > len || off > len - data || bytes > len - data - off || (data + off) % sizeof(float)) return NULL;
    return (const float *)(buf + data + off);
}

static double rel_rmse(int type, const float *x, int64_t ne0, int64_t nrows) {
    const size_t bytes = qfit_tensor_nbytes(type, ne0, nrows);
    cr_assert_neq(bytes, SIZE_MAX);
    uint8_t *q = malloc(bytes);
    float *y = malloc((size_t)(ne0 * nrows) * sizeof(float));
    cr_assert(q && y);
    char err[128] = "";
    cr_assert_eq(qfit_quantize_rows(type, x, q, nrows, ne0, err, sizeof err), bytes, "%s", err);
    cr_assert_eq(qfit_rows_to_float(type, q, y, nrows, ne0), 0);
    double se = 0, sx = 0;
    for (int64_t i = 0; i < ne0 * nrows; i++) {
        const double d = (double)x[i] - (double)y[i];
        se += d * d;
        sx += (double)x[i] * x[i];
    }
    free(q);
    free(y);
    return sqrt(se / sx);
}

/* Relative RMSE (||x - deq(q(x))|| / ||x||) on kjv-llama-7m's weights: more bits, less error.
 * The bytes themselves are checked against ggml's above and in test_quant_k.c; this orders the
 * types by precision (a band around values measured with qfit would test nothing more). */
static const int k_rmse_types[] = {
    QFIT_TYPE_F16, QFIT_TYPE_BF16, QFIT_TYPE_Q8_0, QFIT_TYPE_Q6_K, QFIT_TYPE_Q5_1, QFIT_TYPE_Q5_K, QFIT_TYPE_Q5_0,
    QFIT_TYPE_IQ4_NL, QFIT_TYPE_Q4_1, QFIT_TYPE_Q4_K, QFIT_TYPE_IQ4_XS, QFIT_TYPE_Q4_0, QFIT_TYPE_Q3_K, QFIT_TYPE_Q2_K,
};
#define N_RMSE (sizeof k_rmse_types / sizeof k_rmse_types[0])

static double rmse_of(const double *v, int type) {
    for (size_t i = 0; i < N_RMSE; i++) if (k_rmse_types[i] == type) return v[i];
    cr_assert_fail("type %d not measured", type);
    return 0;
}

Test(quant, roundtrip_rmse_on_real_weights) {
    size_t len;
    uint8_t *gguf = tu_read_file(tu_shared_path("models/kjv-llama-7m-f32.gguf"), &len);
    cr_assert_not_null(gguf, "cannot read %s", tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    static const char *tensors[] = { "blk.2.ffn_gate.weight", "blk.6.ffn_down.weight", "blk.0.attn_q.weight" };
    for (size_t t = 0; t < sizeof tensors / sizeof tensors[0]; t++) {
        int64_t ne0 = 0, ne1 = 0;
        const float *w = gguf_find_f32(gguf, len, tensors[t], &ne0, &ne1);
        cr_assert_not_null(w, "F32 tensor %s not found in the model", tensors[t]);
        cr_assert(ne0 % 256 == 0 && ne1 > 0);
        double got[N_RMSE];
        for (size_t i = 0; i < N_RMSE; i++) {
            got[i] = rel_rmse(k_rmse_types[i], w, ne0, ne1);
            cr_log_info("%s %-7s rel rmse %.6f", tensors[t], qfit_type_name(k_rmse_types[i]), got[i]);
        }
        /* precision ordering */
        static const int order[] = { QFIT_TYPE_F16, QFIT_TYPE_BF16, QFIT_TYPE_Q8_0, QFIT_TYPE_Q6_K,
                                     QFIT_TYPE_Q5_K, QFIT_TYPE_Q4_K, QFIT_TYPE_Q3_K, QFIT_TYPE_Q2_K };
        for (size_t i = 0; i + 1 < sizeof order / sizeof order[0]; i++)
            cr_expect_lt(rmse_of(got, order[i]), rmse_of(got, order[i + 1]), "%s: %s should beat %s", tensors[t],
                         qfit_type_name(order[i]), qfit_type_name(order[i + 1]));
        cr_expect_lt(rmse_of(got, QFIT_TYPE_Q5_0), rmse_of(got, QFIT_TYPE_Q4_0));
        cr_expect_lt(rmse_of(got, QFIT_TYPE_Q5_1), rmse_of(got, QFIT_TYPE_Q4_1));
        cr_expect_lt(rmse_of(got, QFIT_TYPE_Q5_1), rmse_of(got, QFIT_TYPE_Q5_0));
        cr_expect_lt(rmse_of(got, QFIT_TYPE_IQ4_NL), rmse_of(got, QFIT_TYPE_Q4_0));
        cr_expect_lt(rmse_of(got, QFIT_TYPE_IQ4_XS), rmse_of(got, QFIT_TYPE_Q4_0));
    }
    free(gguf);
}

/* A block where values land exactly half-way between two IQ4 levels while the
 * quantizer searches for the scale (integer inputs make that happen); ggml
 * picks the upper level on such ties. Expected bytes: ggml_quantize_chunk(IQ4_NL). */
Test(quant, iq4_nl_ties_go_to_the_upper_level) {
    static const float x[32] = {
        -85, 86, 107, 70, 57, -113, -122, -15, 102, -124, 86, -127, -22, 31, 35, -87,
        -19, -108, 18, 8, -10, -118, -91, 123, -123, 3, -109, -13, 4, -2, 104, 61,
    };
    static const uint8_t expect[18] = { 0x1e, 0xbc, 0x9e, 0xf2, 0x61, 0x73, 0x94, 0xff, 0xef,
                                        0x09, 0xf1, 0x8f, 0xf2, 0x9f, 0x8a, 0x85, 0x15, 0x3e };
    uint8_t got[18];
    cr_assert_eq(qfit_quantize_rows(QFIT_TYPE_IQ4_NL, x, got, 1, 32, NULL, 0), 18);
    for (int i = 0; i < 18; i++)
        cr_assert_eq(got[i], expect[i], "byte %d: qfit 0x%02x, ggml 0x%02x", i, got[i], expect[i]);
}
