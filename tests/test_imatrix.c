/* Importance matrices: quantization with an imatrix byte-exact with ggml
 * (tests/data/imatrix, see gen.sh there), llama.cpp's GGUF and legacy imatrix
 * files, and model quantization with an imatrix against llama.cpp's files. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <unistd.h>

#include "qfit/eval.h"
#include "qfit/gguf.h"
#include "qfit/imatrix.h"
#include "qfit/quant.h"
#include "qfit/quantize.h"
#include "qfit/model.h"
#include "qfit/synth.h"
#include "util/testutil.h"

#define IM_N 512   /* columns of the committed rows */

/* every type whose quantizer takes an importance matrix in ggml */
static const char *const IM_TYPES[] = {
    "q4_0", "q4_1", "q5_0", "q5_1", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "iq4_nl", "iq4_xs",
};
#define IM_NTYPES (sizeof IM_TYPES / sizeof IM_TYPES[0])

static void *im_read(const char *path, size_t *n)
{
    void *p = tu_read_file(path, n);
    cr_assert_not_null(p, "cannot read %s", path);
    return p;
}

static int im_first_diff(const unsigned char *a, const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        if (a[i] != b[i]) return (int)i;
    return -1;
}

Test(imatrix, quantize_matches_ggml_for_every_type)
{
    size_t nx, nw;
    float *x = im_read("tests/data/imatrix/rows.f32", &nx);
    float *w = im_read("tests/data/imatrix/weights.f32", &nw);
    cr_assert_eq(nw, IM_N * sizeof(float));
    const int64_t nrows = (int64_t)(nx / sizeof(float)) / IM_N;
    cr_assert_eq(nrows, 6);

    for (size_t i = 0; i < IM_NTYPES; ++i) {
        const int type = qfit_type_from_name(IM_TYPES[i]);
        cr_assert(qfit_type_uses_imatrix(type), "%s", IM_TYPES[i]);
        char path[128];
        size_t nq;
        snprintf(path, sizeof path, "tests/data/imatrix/%s.q", IM_TYPES[i]);
        unsigned char *ref = im_read(path, &nq);
        const size_t row_bytes = qfit_row_size(type, IM_N);
        cr_assert_eq(nq, (size_t)nrows * row_bytes, "%s: reference size", IM_TYPES[i]);

        unsigned char *q = malloc(nq), *plain = malloc(nq);
        char err[256] = "";
        size_t got = qfit_quantize_rows_imatrix(type, x, q, nrows, IM_N, w, err, sizeof err);
        cr_assert_eq(got, nq, "%s: returned %zu (%s)", IM_TYPES[i], got, err);
        int at = im_first_diff(q, ref, nq);
        cr_expect_eq(at, -1, "%s: first differing byte %d (row %d)", IM_TYPES[i], at,
                     at < 0 ? -1 : at / (int)row_bytes);

        /* the vectors exercise the imatrix path: every row comes out different without it */
        cr_assert_eq(qfit_quantize_rows(type, x, plain, nrows, IM_N, err, sizeof err), nq);
        for (int64_t r = 0; r < nrows; ++r)
            cr_expect_neq(memcmp(plain + r * row_bytes, ref + r * row_bytes, row_bytes), 0,
                          "%s: row %lld is the same without the imatrix", IM_TYPES[i], (long long)r);

        /* the imatrix applies per row: quantizing one row at a time gives the same bytes */
        for (int64_t r = 0; r < nrows; ++r) {
            cr_assert_eq(qfit_quantize_rows_imatrix(type, x + r * IM_N, plain, 1, IM_N, w, err, sizeof err),
                         row_bytes);
            cr_expect_eq(memcmp(plain, ref + r * row_bytes, row_bytes), 0, "%s: row %lld alone differs",
                         IM_TYPES[i], (long long)r);
        }
        free(q); free(plain); free(ref);
    }
    free(x); free(w);
}

/* Types ggml quantizes without looking at the imatrix take it and ignore it. */
Test(imatrix, types_without_imatrix_path_ignore_it)
{
    float x[256], w[256];
    for (int i = 0; i < 256; ++i) {
        x[i] = sinf((float)i * 0.37f) * (1.0f + (float)(i % 7));
        w[i] = (float)(i % 5);
    }
    const int types[] = { QFIT_TYPE_Q8_0, QFIT_TYPE_F16, QFIT_TYPE_BF16, QFIT_TYPE_F32 };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; ++i) {
        unsigned char a[1024], b[1024];
        char err[128];
        cr_assert(!qfit_type_uses_imatrix(types[i]));
        size_t na = qfit_quantize_rows(types[i], x, a, 1, 256, err, sizeof err);
        size_t nb = qfit_quantize_rows_imatrix(types[i], x, b, 1, 256, w, err, sizeof err);
        cr_assert(na > 0 && na == nb);
        cr_expect_eq(memcmp(a, b, na), 0, "%s", qfit_type_name(types[i]));
    }
}

Test(imatrix, invalid_weights_are_rejected_with_the_column)
{
    float x[256], w[256], out[256];
    for (int i = 0; i < 256; ++i) { x[i] = (float)i - 100.0f; w[i] = 1.0f; }
    const float bad[] = { -1.0f, NAN, INFINITY };
    for (size_t i = 0; i < 3; ++i) {
        char err[256] = "";
        w[37] = bad[i];
        cr_assert_eq(qfit_quantize_rows_imatrix(QFIT_TYPE_Q4_K, x, out, 1, 256, w, err, sizeof err), 0);
        cr_expect(strstr(err, "column 37") != NULL, "message: %s", err);
    }
}

/* ---- imatrix files ------------------------------------------------------------------ */

#define IM_KJV tu_imatrix_kjv()   /* llama.cpp's imatrix of the shared model (tests/util/testutil.h) */
/* the imatrix name llama.cpp's quantized files record (quantize.imatrix.file), part of
 * their digests: gen-model.sh gives the quantizer this relative path */
#define IM_KJV_RECORDED "tests/data/imatrix/kjv-2x128.imatrix.gguf"

static char *im_tmp(const char *name)
{
    static char buf[8][4096];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, 4096, "%s/%s", tu_tmpdir(), name);
    return p;
}

/* llama.cpp's own file (bench/peer_imatrix.c, ggml's gguf writer) reads as written */
Test(imatrix, reads_llama_cpp_gguf)
{
    char err[512] = "";
    qfit_imatrix *im = qfit_imatrix_load(IM_KJV, err, sizeof err);
    cr_assert_not_null(im, "%s", err);
    cr_expect_eq(im->n_entries, 56u);   /* 8 layers x q k v output gate up down */
    cr_expect_eq(im->chunk_count, 2u);
    cr_expect_eq(im->chunk_size, 128u);
    cr_assert_eq(im->n_datasets, 1u);
    cr_expect_str_eq(im->datasets[0], "kjv-llama-7m-val.txt");
    const qfit_imatrix_entry *e = qfit_imatrix_find(im, "blk.0.ffn_down.weight");
    cr_assert_not_null(e);
    cr_expect_eq(e->n_per_mat, 768);   /* n_ff columns */
    cr_expect_eq(e->n_mat, 1);
    cr_expect_eq(e->counts[0], 256);   /* 2 chunks x 128 tokens */
    e = qfit_imatrix_find(im, "blk.7.attn_q.weight");
    cr_assert_not_null(e);
    cr_expect_eq(e->n_per_mat, 256);
    for (int64_t j = 0; j < e->n_per_mat; j++) cr_expect(e->sum2[j] > 0, "column %lld", (long long)j);
    cr_expect_null(qfit_imatrix_find(im, "output.weight"));   /* only blk.* weights are collected */
    qfit_imatrix_free(im);
}

/* the weights llama-quantize derives: sum / count, and 1 for a matrix without data */
Test(imatrix, weights_are_means_and_one_without_data)
{
    char err[256];
    qfit_imatrix *im = qfit_imatrix_new();
    qfit_imatrix_entry *e = qfit_imatrix_entry_get(im, "blk.0.ffn_down_exps.weight", 4, 2, err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    const float x[2][4] = { { 1, 2, 3, 4 }, { -1, 0, 0.5f, 2 } };
    qfit_imatrix_accumulate(e, 0, &x[0][0], 2, 4);
    float w[8];
    qfit_imatrix_weights(e, w);
    const float want[8] = { 1, 2, 4.625f, 10, 1, 1, 1, 1 };
    for (int j = 0; j < 8; j++) cr_expect_eq(w[j], want[j], "weight %d: %g", j, (double)w[j]);
    cr_expect_eq(e->counts[0], 2);
    cr_expect_eq(e->counts[1], 0);
    /* the same name with another shape is refused */
    cr_expect_null(qfit_imatrix_entry_get(im, "blk.0.ffn_down_exps.weight", 4, 1, err, sizeof err));
    cr_expect(strstr(err, "shape") != NULL, "%s", err);
    qfit_imatrix_free(im);
}

static void im_expect_same(const qfit_imatrix *a, const qfit_imatrix *b, double rel)
{
    cr_assert_eq(a->n_entries, b->n_entries);
    for (size_t i = 0; i < a->n_entries; i++) {
        const qfit_imatrix_entry *x = &a->entries[i], *y = qfit_imatrix_find(b, x->name);
        cr_assert_not_null(y, "%s missing", x->name);
        cr_assert_eq(x->n_per_mat * x->n_mat, y->n_per_mat * y->n_mat, "%s", x->name);
        const int64_t n = x->n_per_mat * x->n_mat;
        float *wx = malloc((size_t)n * sizeof *wx), *wy = malloc((size_t)n * sizeof *wy);
        qfit_imatrix_weights(x, wx);
        qfit_imatrix_weights(y, wy);
        for (int64_t j = 0; j < n; j++)
            cr_expect(fabsf(wx[j] - wy[j]) <= rel * fabsf(wx[j]), "%s[%lld]: %.9g vs %.9g", x->name,
                      (long long)j, (double)wx[j], (double)wy[j]);
        free(wx);
        free(wy);
    }
}

Test(imatrix, gguf_and_dat_round_trip)
{
    char err[512] = "";
    qfit_imatrix *im = qfit_imatrix_load(IM_KJV, err, sizeof err);
    cr_assert_not_null(im, "%s", err);

    /* GGUF: the same file, byte for byte, as llama.cpp's writer made it */
    const char *g = im_tmp("rt.imatrix.gguf");
    cr_assert_eq(qfit_imatrix_save(im, g, QFIT_IMATRIX_GGUF, err, sizeof err), 0, "%s", err);
    size_t na, nb;
    void *a = tu_read_file(IM_KJV, &na), *b = tu_read_file(g, &nb);
    cr_assert(a && b);
    cr_expect(na == nb && memcmp(a, b, na) == 0, "qfit's GGUF imatrix differs from llama.cpp's (%zu vs %zu bytes)", nb, na);
    free(a);
    free(b);

    /* legacy .dat: the means survive (value = mean * ncall, read back / ncall) */
    const char *d = im_tmp("rt.imatrix.dat");
    cr_assert_eq(qfit_imatrix_save(im, d, QFIT_IMATRIX_DAT, err, sizeof err), 0, "%s", err);
    qfit_imatrix *im2 = qfit_imatrix_load(d, err, sizeof err);
    cr_assert_not_null(im2, "%s", err);
    im_expect_same(im, im2, 1e-6);
    cr_expect_eq(im2->chunk_count, 2u);
    cr_assert_eq(im2->n_datasets, 1u);
    cr_expect_str_eq(im2->datasets[0], "kjv-llama-7m-val.txt");
    /* and that file converts back to GGUF with the same means */
    const char *g2 = im_tmp("rt2.imatrix.gguf");
    cr_assert_eq(qfit_imatrix_save(im2, g2, QFIT_IMATRIX_GGUF, err, sizeof err), 0, "%s", err);
    qfit_imatrix *im3 = qfit_imatrix_load(g2, err, sizeof err);
    cr_assert_not_null(im3, "%s", err);
    im_expect_same(im, im3, 1e-6);
    qfit_imatrix_free(im3);
    qfit_imatrix_free(im2);
    qfit_imatrix_free(im);
}

/* little-endian builder for hand-made legacy files */
typedef struct { unsigned char b[512]; size_t n; } im_buf;
static void put_i32(im_buf *o, int32_t v) { memcpy(o->b + o->n, &v, 4); o->n += 4; }
static void put_f32(im_buf *o, float v) { memcpy(o->b + o->n, &v, 4); o->n += 4; }
static void put_str(im_buf *o, const char *s) { put_i32(o, (int32_t)strlen(s)); memcpy(o->b + o->n, s, strlen(s)); o->n += strlen(s); }

/* The legacy layout as llama.cpp's save_imatrix_legacy writes it, both directions */
Test(imatrix, legacy_dat_layout)
{
    im_buf f = { .n = 0 };
    put_i32(&f, 2);
    put_str(&f, "blk.0.attn_q.weight");   /* entries in name order */
    put_i32(&f, 3);                       /* ncall */
    put_i32(&f, 2);
    put_f32(&f, 6.0f);                    /* mean 2 * ncall 3 */
    put_f32(&f, 1.5f);
    put_str(&f, "blk.0.ffn_up.weight");
    put_i32(&f, 1);
    put_i32(&f, 1);
    put_f32(&f, 0.25f);
    put_i32(&f, 3);                       /* last chunk */
    put_str(&f, "train.txt");

    char err[256] = "";
    qfit_imatrix_format fmt = QFIT_IMATRIX_GGUF;
    qfit_imatrix *im = qfit_imatrix_load_buffer(f.b, f.n, &fmt, err, sizeof err);
    cr_assert_not_null(im, "%s", err);
    cr_expect_eq(fmt, QFIT_IMATRIX_DAT);
    cr_assert_eq(im->n_entries, 2u);
    cr_expect_eq(im->chunk_count, 3u);
    cr_assert_eq(im->n_datasets, 1u);
    cr_expect_str_eq(im->datasets[0], "train.txt");
    float w[2];
    qfit_imatrix_weights(qfit_imatrix_find(im, "blk.0.attn_q.weight"), w);
    cr_expect(w[0] == 2.0f && w[1] == 0.5f, "%g %g", (double)w[0], (double)w[1]);
    qfit_imatrix_weights(qfit_imatrix_find(im, "blk.0.ffn_up.weight"), w);
    cr_expect_eq(w[0], 0.25f);

    /* written back: the same bytes (chunk size 512 assumed on read gives ncall back) */
    const char *p = im_tmp("legacy.dat");
    cr_assert_eq(qfit_imatrix_save(im, p, QFIT_IMATRIX_DAT, err, sizeof err), 0, "%s", err);
    size_t n;
    unsigned char *got = tu_read_file(p, &n);
    cr_assert_not_null(got);
    cr_expect(n == f.n && memcmp(got, f.b, n) == 0, "written legacy file differs (%zu vs %zu bytes)", n, f.n);
    free(got);
    qfit_imatrix_free(im);

    /* an older file without the trailer also loads */
    im = qfit_imatrix_load_buffer(f.b, f.n - 4 - 4 - 9, NULL, err, sizeof err);
    cr_assert_not_null(im, "%s", err);
    cr_expect_eq(im->n_datasets, 0u);
    qfit_imatrix_free(im);
}

static void expect_load_error(const void *data, size_t n, const char *needle)
{
    char err[512] = "";
    qfit_imatrix *im = qfit_imatrix_load_buffer(data, n, NULL, err, sizeof err);
    cr_expect_null(im, "loaded a bad file (expected: %s)", needle);
    cr_expect(strstr(err, needle) != NULL, "message '%s' lacks '%s'", err, needle);
    qfit_imatrix_free(im);
}

Test(imatrix, bad_legacy_files_are_refused)
{
    im_buf f = { .n = 0 };
    put_i32(&f, 1);
    put_str(&f, "blk.0.attn_q.weight");
    put_i32(&f, 1);
    put_i32(&f, 2);
    put_f32(&f, 1.0f);
    put_f32(&f, 2.0f);
    /* every truncation is an error, never a crash */
    for (size_t n = 0; n < f.n; n++) {
        char err[256];
        qfit_imatrix *im = qfit_imatrix_load_buffer(f.b, n, NULL, err, sizeof err);
        cr_expect_null(im, "truncated at %zu loaded", n);
        qfit_imatrix_free(im);
    }
    im_buf g = f;
    memcpy(g.b + 4 + 4 + 19 + 4, &(int32_t){ 1000000 }, 4);   /* nval beyond the file */
    expect_load_error(g.b, g.n, "value count 1000000");
    g = f;
    memcpy(g.b + 4, &(int32_t){ -5 }, 4);
    expect_load_error(g.b, g.n, "bad name length");
    g = f;
    memcpy(g.b + 4 + 4 + 19, &(int32_t){ -1 }, 4);
    expect_load_error(g.b, g.n, "ncall");
    g = f;
    memcpy(g.b + g.n - 4, &(float){ NAN }, 4);
    expect_load_error(g.b, g.n, "value 1 is nan");
    g = f;
    memcpy(g.b + g.n - 4, &(float){ -1.0f }, 4);
    expect_load_error(g.b, g.n, "must be finite and >= 0");
    g = f;
    put_i32(&g, 1);
    put_i32(&g, 100);   /* dataset length beyond the end */
    expect_load_error(g.b, g.n, "bad dataset name");
    g = f;
    put_i32(&g, 1);
    put_str(&g, "x");
    put_i32(&g, 7);     /* trailing garbage */
    expect_load_error(g.b, g.n, "unexpected bytes");
    /* the same name twice */
    im_buf h = { .n = 0 };
    put_i32(&h, 2);
    for (int i = 0; i < 2; i++) { put_str(&h, "a.weight"); put_i32(&h, 1); put_i32(&h, 1); put_f32(&h, 1.0f); }
    expect_load_error(h.b, h.n, "appears twice");
}

/* GGUF imatrix files with a missing part, a wrong type or size, bad values */
Test(imatrix, bad_gguf_files_are_refused)
{
    size_t n;
    unsigned char *good = tu_read_file(IM_KJV, &n);
    cr_assert_not_null(good);
    for (size_t cut = 0; cut < n; cut += 97) {
        char err[256];
        qfit_imatrix *im = qfit_imatrix_load_buffer(good, cut, NULL, err, sizeof err);
        cr_expect_null(im, "truncated at %zu loaded", cut);
        qfit_imatrix_free(im);
    }
    free(good);

    const char *p = im_tmp("bad.imatrix.gguf");
    char err[512];
    struct { const char *what, *needle; } cases[] = {
        { "no counts", "without .counts" },
        { "counts size", "2 counts for 1 matrices" },
        { "negative sum", "must be finite and >= 0" },
        { "f16 sums", "is f16, not f32" },
        { "no metadata", "imatrix.datasets is missing" },
        { "lonely counts", "has no .in_sum2 partner" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        qfit_gguf_writer *w = qfit_gguf_writer_new();
        const char *ds[1] = { "t.txt" };
        if (c != 4) {
            qfit_gguf_set_arr_str(w, "imatrix.datasets", ds, 1);
            qfit_gguf_set_u32(w, "imatrix.chunk_count", 1);
            qfit_gguf_set_u32(w, "imatrix.chunk_size", 4);
        }
        const int64_t ne_s[2] = { 4, 1 }, ne_c1[2] = { 1, 1 }, ne_c2[2] = { 1, 2 };
        float sums[4] = { 1, 2, 3, c == 2 ? -1.0f : 4 }, counts[2] = { 4, 4 };
        uint16_t half[4] = { 0 };
        if (c != 5) qfit_gguf_add_tensor(w, "a.weight.in_sum2", 2, ne_s, c == 3 ? QFIT_TYPE_F16 : QFIT_TYPE_F32);
        if (c != 0) qfit_gguf_add_tensor(w, c == 5 ? "b.weight.counts" : "a.weight.counts", 2,
                                         c == 1 ? ne_c2 : ne_c1, QFIT_TYPE_F32);
        cr_assert_eq(qfit_gguf_writer_begin(w, p, err, sizeof err), 0, "%s", err);
        if (c != 5) {
            if (c == 3) qfit_gguf_writer_write_tensor(w, half, sizeof half, err, sizeof err);
            else qfit_gguf_writer_write_tensor(w, sums, sizeof sums, err, sizeof err);
        }
        if (c != 0) qfit_gguf_writer_write_tensor(w, counts, c == 1 ? 8 : 4, err, sizeof err);
        cr_assert_eq(qfit_gguf_writer_finish(w, err, sizeof err), 0, "%s", err);
        qfit_gguf_writer_free(w);
        qfit_imatrix *im = qfit_imatrix_load(p, err, sizeof err);
        cr_expect_null(im, "%s: loaded", cases[c].what);
        cr_expect(strstr(err, cases[c].needle) != NULL, "%s: message '%s' lacks '%s'", cases[c].what, err,
                  cases[c].needle);
        qfit_imatrix_free(im);
    }
}

Test(imatrix, save_refuses_names_too_long_for_gguf)
{
    char err[256] = "";
    qfit_imatrix *im = qfit_imatrix_new();
    /* 55 bytes + ".in_sum2" fill ggml's 63-byte tensor names exactly; one more does not fit */
    const char *ok = "blk.0.a_rather_long_tensor_name_for_a_model_abcd.weight";
    const char *too_long = "blk.0.a_rather_long_tensor_name_for_a_model_abcde.weight";
    qfit_imatrix_entry *e = qfit_imatrix_entry_get(im, ok, 4, 1, err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    e->counts[0] = 1;
    cr_expect_eq(qfit_imatrix_save(im, im_tmp("ok.gguf"), QFIT_IMATRIX_GGUF, err, sizeof err), 0, "%s", err);
    e = qfit_imatrix_entry_get(im, too_long, 4, 1, err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    e->counts[0] = 1;
    err[0] = 0;
    cr_expect_eq(qfit_imatrix_save(im, im_tmp("long.gguf"), QFIT_IMATRIX_GGUF, err, sizeof err), -1);
    cr_expect(strstr(err, "too long") != NULL, "message: '%s'", err);
    /* the legacy format has no such limit */
    cr_expect_eq(qfit_imatrix_save(im, im_tmp("long.dat"), QFIT_IMATRIX_DAT, err, sizeof err), 0, "%s", err);
    qfit_imatrix_free(im);
}

/* ---- model quantization with an importance matrix ------------------------------------ */

static void sha256_file(const char *path, char hex[65])
{
    size_t n = 0;
    unsigned char *b = tu_read_file(path, &n);
    cr_assert_not_null(b, "cannot read %s", path);
    unsigned char md[32];
    unsigned int len = 0;
    cr_assert_eq(EVP_Digest(b, n, md, &len, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    free(b);
}

/* Every mix with llama.cpp's imatrix of the shared model: the whole file is the same as
 * llama.cpp's (digests and how they were made: tests/data/imatrix/gen-model.sh). */
Test(imatrix, model_mixes_byte_identical_to_llama_cpp, .timeout = 900)
{
    char *tsv = tu_read_file("tests/data/imatrix/kjv-imatrix.sha256", NULL);
    cr_assert_not_null(tsv);
    char src[4096], err[1024] = "";
    snprintf(src, sizeof src, "%s", tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    qfit_imatrix *im = qfit_imatrix_load(IM_KJV, err, sizeof err);
    cr_assert_not_null(im, "%s", err);
    int checked = 0;
    for (char *line = strtok(tsv, "\n"); line; line = strtok(NULL, "\n")) {
        char mix[16], want[65], got[65];
        cr_assert_eq(sscanf(line, "%15s %64s", mix, want), 2, "bad line '%s'", line);
        const char *out = im_tmp("imatrix-mix.gguf");
        qfit_quantize_params p = { .ftype = qfit_ftype_from_name(mix), .n_threads = 2,
                                   .imatrix = im, .imatrix_file = IM_KJV_RECORDED };
        qfit_quantize_stats st;
        cr_assert_eq(qfit_quantize_model(src, out, &p, &st, err, sizeof err), 0, "%s: %s", mix, err);
        sha256_file(out, got);
        cr_expect_str_eq(got, want, "%s: qfit's file differs from llama.cpp's", mix);
        /* 56 blk.* weights have entries; token_embd and output are quantized without */
        if (strcmp(mix, "Q8_0") != 0) {
            cr_expect_eq(st.n_imatrix, 56, "%s", mix);
            cr_expect_eq(st.n_no_imatrix, 2, "%s", mix);
        }
        unlink(out);
        checked++;
    }
    cr_expect_eq(checked, 16);
    qfit_imatrix_free(im);
    free(tsv);
}

static int plan_type(const qfit_gguf *g, int ftype, bool has_imatrix, const char *name)
{
    const int64_t n = qfit_gguf_n_tensors(g);
    size_t *order = calloc((size_t)n, sizeof *order);
    int *types = calloc((size_t)n, sizeof *types);
    char err[256];
    cr_assert_eq(qfit_mix_plan_gguf_imatrix(g, ftype, has_imatrix, order, types, NULL, err, sizeof err), 0, "%s", err);
    const int t = types[qfit_gguf_find_tensor(g, name)];
    free(order);
    free(types);
    return t;
}

/* llama.cpp's rules that look at has_imatrix, on the first ffn_down of the shared model */
Test(imatrix, mix_rules_that_depend_on_the_imatrix)
{
    char err[256];
    qfit_gguf *g = qfit_gguf_open(tu_shared_path("models/kjv-llama-7m-f32.gguf"), err, sizeof err);
    cr_assert_not_null(g, "%s", err);
    const char *d0 = "blk.0.ffn_down.weight", *d1 = "blk.1.ffn_down.weight";
    cr_expect_eq(plan_type(g, QFIT_FTYPE_MOSTLY_Q4_0, false, d0), QFIT_TYPE_Q4_0);
    cr_expect_eq(plan_type(g, QFIT_FTYPE_MOSTLY_Q4_0, true, d0), QFIT_TYPE_Q4_1);
    cr_expect_eq(plan_type(g, QFIT_FTYPE_MOSTLY_Q4_0, true, d1), QFIT_TYPE_Q4_0);   /* n_layer / 8 = 1 */
    cr_expect_eq(plan_type(g, QFIT_FTYPE_MOSTLY_Q5_0, true, d0), QFIT_TYPE_Q5_1);
    cr_expect_eq(plan_type(g, QFIT_FTYPE_MOSTLY_IQ4_NL, false, d0), QFIT_TYPE_Q5_K);
    cr_expect_eq(plan_type(g, QFIT_FTYPE_MOSTLY_IQ4_NL, true, d0), QFIT_TYPE_IQ4_NL);
    cr_expect_eq(plan_type(g, QFIT_FTYPE_MOSTLY_IQ4_XS, true, d0), QFIT_TYPE_IQ4_XS);
    cr_expect_eq(plan_type(g, QFIT_FTYPE_MOSTLY_Q4_K_M, true, d0), plan_type(g, QFIT_FTYPE_MOSTLY_Q4_K_M, false, d0));
    qfit_gguf_close(g);
}

Test(imatrix, quantize_refuses_an_entry_of_the_wrong_size, .timeout = 120)
{
    char src[4096], err[1024] = "";
    snprintf(src, sizeof src, "%s", tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    qfit_imatrix *im = qfit_imatrix_new();
    qfit_imatrix_entry *e = qfit_imatrix_entry_get(im, "blk.3.attn_k.weight", 128, 1, err, sizeof err);
    cr_assert_not_null(e);
    e->counts[0] = 1;
    const char *out = im_tmp("wrong-size.gguf");
    qfit_quantize_params p = { .ftype = QFIT_FTYPE_MOSTLY_Q4_K_M, .n_threads = 2, .imatrix = im };
    cr_expect_eq(qfit_quantize_model(src, out, &p, NULL, err, sizeof err), -1);
    cr_expect(strstr(err, "blk.3.attn_k.weight") && strstr(err, "128"), "%s", err);
    cr_expect_eq(access(out, F_OK), -1, "a file was left behind");
    /* token_embd.weight with a mismatched entry is quantized without it, as llama.cpp does */
    qfit_imatrix_free(im);
    im = qfit_imatrix_new();
    e = qfit_imatrix_entry_get(im, "token_embd.weight", 7, 1, err, sizeof err);
    e->counts[0] = 1;
    p.imatrix = im;
    qfit_quantize_stats st;
    cr_expect_eq(qfit_quantize_model(src, out, &p, &st, err, sizeof err), 0, "%s", err);
    cr_expect_eq(st.n_imatrix, 0);
    qfit_imatrix_free(im);
}

Test(imatrix, cli_quantize_with_imatrix, .timeout = 120)
{
    char cmd[8192];
    int status;
    const char *out = im_tmp("cli-q4km.gguf");
    snprintf(cmd, sizeof cmd, "%s quantize '%s' '%s' q4_k_m --threads 2 --imatrix %s 2>&1", tu_qfit_bin(),
             tu_shared_path("models/kjv-llama-7m-f32.gguf"), out, IM_KJV);
    char *o = tu_run(cmd, &status);
    cr_expect_eq(status, 0, "%s", o);
    cr_expect(strstr(o, "56 tensors weighted by it, 2 quantized without") != NULL, "%s", o);
    free(o);
    snprintf(cmd, sizeof cmd, "%s quantize '%s' '%s' q4_k_m --imatrix /nonexistent/im.gguf 2>&1", tu_qfit_bin(),
             tu_shared_path("models/kjv-llama-7m-f32.gguf"), out);
    o = tu_run(cmd, &status);
    cr_expect_neq(status, 0);
    cr_expect(strstr(o, "importance matrix") && strstr(o, "/nonexistent/im.gguf"), "%s", o);
    free(o);
}

/* ---- collecting: qfit imatrix against llama.cpp's statistics ------------------------- */

/* qfit imatrix on the shared model, 2 chunks of 128 tokens of the validation text, against
 * llama.cpp's sums for the same chunks (kjv-2x128.imatrix.gguf, from its eval callback):
 * every column of every entry within 1e-3 (the forward passes differ in float rounding
 * only: observed about 3e-4 at most), the same tokens counted. */
Test(imatrix, collect_matches_llama_cpp, .timeout = 300)
{
    char cmd[8192], err[512] = "";
    int status;
    const char *out = im_tmp("kjv.imatrix.gguf");
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' imatrix kjv-llama-7m-f32.gguf kjv-llama-7m-val.txt -o '%s' "
             "--ctx 128 --chunks 2 --threads 2 2>&1", tu_shared_path("models"), tu_qfit_bin(), out);
    char *o = tu_run(cmd, &status);
    cr_assert_eq(status, 0, "%s", o);
    cr_expect(strstr(o, "56 entries, 2 chunks x 128 tokens") != NULL, "%s", o);
    free(o);
    qfit_imatrix *got = qfit_imatrix_load(out, err, sizeof err);
    cr_assert_not_null(got, "%s", err);
    qfit_imatrix *ref = qfit_imatrix_load(IM_KJV, err, sizeof err);
    cr_assert_not_null(ref, "%s", err);
    cr_expect_eq(got->chunk_count, 2u);
    cr_expect_eq(got->chunk_size, 128u);
    cr_assert_eq(got->n_datasets, 1u);
    cr_expect_str_eq(got->datasets[0], "kjv-llama-7m-val.txt");
    cr_assert_eq(got->n_entries, ref->n_entries);
    double worst = 0;
    for (size_t i = 0; i < ref->n_entries; i++) {
        const qfit_imatrix_entry *r = &ref->entries[i], *g = qfit_imatrix_find(got, r->name);
        cr_assert_not_null(g, "no entry %s", r->name);
        cr_assert_eq(g->n_per_mat, r->n_per_mat, "%s", r->name);
        cr_expect_eq(g->counts[0], r->counts[0], "%s: %lld tokens, llama.cpp %lld", r->name,
                     (long long)g->counts[0], (long long)r->counts[0]);
        for (int64_t j = 0; j < r->n_per_mat; j++) {
            const double d = fabs(g->sum2[j] - r->sum2[j]) / fabs(r->sum2[j]);
            worst = d > worst ? d : worst;
            cr_expect(d <= 1e-3, "%s[%lld]: %.7g, llama.cpp %.7g", r->name, (long long)j, g->sum2[j], r->sum2[j]);
        }
    }
    cr_log_info("imatrix: worst relative difference to llama.cpp %.3g", worst);
    qfit_imatrix_free(ref);
    qfit_imatrix_free(got);
}

Test(imatrix, cli_refusals)
{
    char cmd[8192];
    int status;
    const char *m = tu_shared_path("models/kjv-llama-7m-f32.gguf");
    struct { const char *args, *needle; } cases[] = {
        { "'%s' /nonexistent.txt -o x.gguf", "cannot read /nonexistent.txt" },
        { "'%s' tests/data/imatrix/gen.sh -o x.gguf --ctx 4096", "fewer than one chunk of 4096" },
        { "'%s' tests/data/imatrix/gen.sh -o x.gguf --format xml", "--format must be gguf or dat" },
        { "'%s' tests/data/imatrix/gen.sh", "usage: qfit imatrix" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[4096];
        snprintf(args, sizeof args, cases[i].args, m);
        snprintf(cmd, sizeof cmd, "%s imatrix %s 2>&1", tu_qfit_bin(), args);
        char *o = tu_run(cmd, &status);
        cr_expect_neq(status, 0, "%s", args);
        cr_expect(strstr(o, cases[i].needle) != NULL, "%s: %s", args, o);
        free(o);
    }
}

/* ---- quantize to a size ---------------------------------------------------------------- */

static uint64_t file_size(const char *p)
{
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f, "%s", p);
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fclose(f);
    return (uint64_t)n;
}

/* The size of llama.cpp's Q4_K_M (with the imatrix) as the target: the file is within 1%
 * below it, and qfit loads it and evaluates with it. */
Test(imatrix, target_size_is_met_and_the_file_loads, .timeout = 600)
{
    char src[4096], err[1024] = "";
    snprintf(src, sizeof src, "%s", tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    qfit_imatrix *im = qfit_imatrix_load(IM_KJV, err, sizeof err);
    cr_assert_not_null(im, "%s", err);
    const char *ref = im_tmp("t-ref.gguf"), *out = im_tmp("t-out.gguf");
    qfit_quantize_params p = { .ftype = QFIT_FTYPE_MOSTLY_Q4_K_M, .n_threads = 2, .imatrix = im };
    cr_assert_eq(qfit_quantize_model(src, ref, &p, NULL, err, sizeof err), 0, "%s", err);
    const uint64_t target = file_size(ref);
    p.target_size = target;
    qfit_quantize_stats st;
    cr_assert_eq(qfit_quantize_model(src, out, &p, &st, err, sizeof err), 0, "%s", err);
    const uint64_t got = file_size(out);
    cr_expect(got <= target && got >= target - target / 100, "file %llu bytes for a target of %llu",
              (unsigned long long)got, (unsigned long long)target);
    cr_expect_eq(st.n_target_planned, 56);
    cr_expect_eq(st.file_out, got);

    qfit_model *m = qfit_model_load(out, err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    qfit_context_params cp = qfit_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 2;
    qfit_context *c = qfit_context_new(m, &cp, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    const int32_t toks[4] = { 1, 100, 200, 300 };
    cr_expect_eq(qfit_decode(c, toks, 4, 3), 0, "%s", qfit_context_error(c));
    const float *lg = qfit_get_logits(c, 0);
    cr_assert_not_null(lg);
    cr_expect(isfinite(lg[0]));
    qfit_context_free(c);
    qfit_model_free(m);

    /* bits per weight: the tensor data within 1% below the target */
    p.target_size = 0;
    p.target_bpw = 4.0;
    cr_assert_eq(qfit_quantize_model(src, out, &p, &st, err, sizeof err), 0, "%s", err);
    const double bpw = 8.0 * (double)st.data_out / (double)st.n_elements;
    cr_expect(bpw <= 4.0 && bpw >= 3.96, "%.4f bits per weight for a target of 4", bpw);
    qfit_imatrix_free(im);
}

/* Quantize to a size, calibrated (the goal): at the size of llama.cpp's Q4_K_M
 * and of its Q3_K_M, each with the committed llama.cpp imatrix, the mean KL divergence
 * on evaluation text the calibration never saw (the first 2 chunks of 512 of the
 * validation text; the calibration is 2 chunks of 256 from its last 150 kB) is at least
 * 25% below llama.cpp's mix without an imatrix and below the mix with that imatrix.
 * The imatrix-only estimate fails this (Q4_K_M size, 16 chunks: 0.00384 against
 * 0.00361 without an imatrix and 0.00342 with it). Calibrated, on these 2 chunks:
 * 0.00193 against 0.00351 / 0.00331 (Q4_K_M), 0.00686 against 0.01467 / 0.01486 (Q3_K_M). */
Test(imatrix, target_calibrated_beats_llama_cpp_mixes, .timeout = 1800)
{
    char src[4096], val[4096], err[1024] = "";
    snprintf(src, sizeof src, "%s", tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    snprintf(val, sizeof val, "%s", tu_shared_path("models/kjv-llama-7m-val.txt"));
    size_t vn = 0;
    char *text = tu_read_file(val, &vn);
    cr_assert(text && vn > 300000);
    const char *calib = im_tmp("calib.txt");
    FILE *f = fopen(calib, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text + vn - 150000, 1, 150000, f), 150000);
    fclose(f);
    free(text);
    qfit_gguf *g = qfit_gguf_open(src, err, sizeof err);
    cr_assert_not_null(g, "%s", err);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    qfit_calibration cal = { .n_ctx = 256, .n_chunks = 2 };
    cr_assert_eq(qfit_eval_tokenize_file(g, calib, &ids, &n_ids, &cal.bos, err, sizeof err), 0, "%s", err);
    qfit_gguf_close(g);
    cal.tokens = ids;
    cal.n_tokens = n_ids;
    qfit_imatrix *im = qfit_imatrix_load(IM_KJV, err, sizeof err);
    cr_assert_not_null(im, "%s", err);

    static const int mixes[2] = { QFIT_FTYPE_MOSTLY_Q4_K_M, QFIT_FTYPE_MOSTLY_Q3_K_M };
    for (int k = 0; k < 2; k++) {
        char plain[4096], with_im[4096], out[4096];
        snprintf(plain, sizeof plain, "%s/mix%d.gguf", tu_tmpdir(), k);
        snprintf(with_im, sizeof with_im, "%s/mix%d-im.gguf", tu_tmpdir(), k);
        snprintf(out, sizeof out, "%s/target%d.gguf", tu_tmpdir(), k);
        qfit_quantize_params p = { .ftype = mixes[k], .n_threads = 2 };
        cr_assert_eq(qfit_quantize_model(src, plain, &p, NULL, err, sizeof err), 0, "%s", err);
        p.imatrix = im;
        cr_assert_eq(qfit_quantize_model(src, with_im, &p, NULL, err, sizeof err), 0, "%s", err);
        p.target_size = file_size(with_im);
        p.calibration = &cal;
        qfit_quantize_stats st;
        cr_assert_eq(qfit_quantize_model(src, out, &p, &st, err, sizeof err), 0, "%s", err);
        cr_expect(st.target.measured);
        cr_expect_eq(st.target.n_planned, 58, "every matrix, token_embd and output included");
        cr_expect_eq(st.target.n_measured, 58, "one probe run per tensor");
        cr_expect_eq(st.target.n_calib_tokens, 512);
        cr_expect_leq(file_size(out), p.target_size);
        cr_expect_geq(file_size(out), p.target_size - p.target_size / 100);

        const char *files[3] = { plain, with_im, out };
        qfit_eval_params ep;
        qfit_eval_params_init(&ep);
        ep.model_path = src;
        ep.text_path = val;
        ep.files = files;
        ep.n_files = 3;
        ep.n_chunks = 2;
        ep.n_threads = 2;
        ep.speed = false;
        ep.work_dir = tu_tmpdir();
        qfit_eval_result res;
        cr_assert_eq(qfit_eval_run(&ep, &res, err, sizeof err), 0, "%s", err);
        cr_assert_eq(res.n_rows, 4);
        const double kp = res.rows[1].kld_mean, ki = res.rows[2].kld_mean, kt = res.rows[3].kld_mean;
        cr_log_info("%s size: mean KLD %.6f, llama.cpp's mix %.6f, with the imatrix %.6f (%.0f%% lower)",
                    qfit_ftype_name(mixes[k]), kt, kp, ki, 100 * (1 - kt / kp));
        cr_expect_leq(kt, 0.75 * kp, "%s size: KLD %.6f, not 25%% below llama.cpp's %.6f", qfit_ftype_name(mixes[k]),
                      kt, kp);
        cr_expect_lt(kt, ki, "%s size: KLD %.6f, llama.cpp's with the same imatrix %.6f", qfit_ftype_name(mixes[k]),
                     kt, ki);
        qfit_eval_result_free(&res);
    }
    qfit_imatrix_free(im);
    free(ids);
}

/* qfit quantize --target-size --calibrate: the run, its report, and the refusals */
Test(imatrix, cli_target_calibrate, .timeout = 600)
{
    char cmd[8192];
    int status;
    const char *src = tu_shared_path("models/kjv-llama-7m-f32.gguf");
    const char *val = tu_shared_path("models/kjv-llama-7m-val.txt");
    const char *out = im_tmp("cli-target.gguf");
    snprintf(cmd, sizeof cmd, "%s quantize '%s' '%s' --target-size 4.3M --calibrate '%s' --calib-chunks 1 "
             "--calib-ctx 64 --threads 2 2>&1", tu_qfit_bin(), src, out, val);
    char *o = tu_run(cmd, &status);
    cr_expect_eq(status, 0, "%s", o);
    cr_expect(strstr(o, "58 tensors typed by measured KL divergence (58 runs of 64 tokens") != NULL, "%s", o);
    cr_expect(strstr(o, "predicted mean KLD") != NULL, "%s", o);
    free(o);
    const uint64_t target = (uint64_t)(4.3 * 1024 * 1024);
    cr_expect(file_size(out) <= target && file_size(out) >= target - target / 100, "%llu bytes",
              (unsigned long long)file_size(out));

    static const struct { const char *args; int status; const char *needle; } bad[] = {
        { "--target-size 4M", 2, "need --calibrate TEXT (or --imatrix FILE)" },
        { "Q4_K_M --calibrate VAL", 2, "are for --target-size" },
        { "--target-size 4M --calibrate VAL --calib-chunks 0", 2, "invalid --calib-chunks '0'" },
        { "--target-size 4M --calibrate VAL --calib-ctx 8", 2, "invalid --calib-ctx '8'" },
        { "--target-size 4M --calibrate /nonexistent/calib.txt", 1, "cannot read /nonexistent/calib.txt" },
        { "--target-size 4M --calibrate VAL --calib-chunks 99999", 1, "chunks of 256 tokens, 99999 asked for" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char args[1024];
        const char *v = strstr(bad[i].args, "VAL");
        if (v) snprintf(args, sizeof args, "%.*s'%s'%s", (int)(v - bad[i].args), bad[i].args, val, v + 3);
        else snprintf(args, sizeof args, "%s", bad[i].args);
        snprintf(cmd, sizeof cmd, "%s quantize '%s' '%s' %s 2>&1", tu_qfit_bin(), src, im_tmp("cli-bad.gguf"), args);
        o = tu_run(cmd, &status);
        cr_expect_eq(status, bad[i].status, "%s: %s", bad[i].args, o);
        cr_expect(strstr(o, bad[i].needle) != NULL, "%s: %s", bad[i].args, o);
        free(o);
    }
    cr_expect_eq(access(im_tmp("cli-bad.gguf"), F_OK), -1, "a file was left behind");
}

Test(imatrix, target_refusals, .timeout = 300)
{
    char src[4096], err[1024] = "";
    snprintf(src, sizeof src, "%s", tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    const char *out = im_tmp("t-bad.gguf");
    qfit_quantize_params p = { .ftype = QFIT_FTYPE_MOSTLY_Q4_K_M, .n_threads = 2, .target_size = 4000000 };
    cr_expect_eq(qfit_quantize_model(src, out, &p, NULL, err, sizeof err), -1);
    cr_expect(strstr(err, "needs a calibration text") != NULL, "%s", err);
    qfit_imatrix *im = qfit_imatrix_load(IM_KJV, err, sizeof err);
    cr_assert_not_null(im, "%s", err);
    p.imatrix = im;
    p.target_size = 1000000;   /* below even all-Q2_K with Q6_K output */
    cr_expect_eq(qfit_quantize_model(src, out, &p, NULL, err, sizeof err), -1);
    cr_expect(strstr(err, "too small") != NULL, "%s", err);
    p.target_bpw = 4;
    cr_expect_eq(qfit_quantize_model(src, out, &p, NULL, err, sizeof err), -1);
    cr_expect(strstr(err, "not both") != NULL, "%s", err);
    cr_expect_eq(access(out, F_OK), -1, "a file was left behind");
    qfit_imatrix_free(im);
}

/* the planner: more room never gives more error, and the data always fits */
Test(imatrix, target_plan_monotonic, .timeout = 600)
{
    char err[1024] = "";
    qfit_gguf *g = qfit_gguf_open(tu_shared_path("models/kjv-llama-7m-f32.gguf"), err, sizeof err);
    cr_assert_not_null(g, "%s", err);
    qfit_imatrix *im = qfit_imatrix_load(IM_KJV, err, sizeof err);
    cr_assert_not_null(im, "%s", err);
    const int64_t n = qfit_gguf_n_tensors(g);
    size_t *order = calloc((size_t)n, sizeof *order);
    int *mix = calloc((size_t)n, sizeof *mix), *types = calloc((size_t)n, sizeof *types);
    cr_assert_eq(qfit_mix_plan_gguf_imatrix(g, QFIT_FTYPE_MOSTLY_Q4_K_M, true, order, mix, NULL, err, sizeof err), 0);
    double prev = INFINITY;
    for (uint64_t budget = 3000000; budget <= 6000000; budget += 1000000) {
        memcpy(types, mix, (size_t)n * sizeof *types);
        qfit_target_result r;
        qfit_target_params tp;
        qfit_target_params_init(&tp);
        tp.budget = budget;
        tp.imatrix = im;
        cr_assert_eq(qfit_target_plan(g, &tp, types, &r, err, sizeof err), 0, "%s", err);
        cr_expect(r.data_bytes <= budget && r.data_bytes >= budget - budget / 50, "%llu of %llu",
                  (unsigned long long)r.data_bytes, (unsigned long long)budget);
        cr_expect(r.cost < prev, "budget %llu: error %g, smaller budget %g", (unsigned long long)budget, r.cost, prev);
        prev = r.cost;
    }
    free(order); free(mix); free(types);
    qfit_imatrix_free(im);
    qfit_gguf_close(g);
}

/* qfit imatrix's collection over one pass of n tokens on a synthetic shape (F32, seed 3):
 * the statistics, and the model (*m) for the caller to free. */
static qfit_imatrix *collect_synth(const char *shape, const int32_t *toks, int n, qfit_model **m)
{
    char err[256], file[80];
    snprintf(file, sizeof file, "%s.gguf", shape);
    *m = qfit_model_load(tu_synth(shape, QFIT_FTYPE_ALL_F32, 3, file), err, sizeof err);
    cr_assert_not_null(*m, "%s", err);
    qfit_context_params p = qfit_context_default_params();
    p.n_ctx = 128;
    p.n_threads = 2;
    qfit_context *c = qfit_context_new(*m, &p, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    qfit_imatrix *im = qfit_imatrix_new();
    cr_assert_not_null(im);
    qfit_imatrix_collector co = { im, false, "" };
    qfit_context_set_matmul_observer(c, qfit_imatrix_observe, &co);
    cr_assert_eq(qfit_decode(c, toks, n, n - 1), 0, "%s", qfit_context_error(c));
    cr_assert_str_empty(co.err);
    qfit_context_free(c);
    return im;
}

/* A mixture of experts (synth shape tiny-qwen3moe: 16 experts, 4 per token): the experts'
 * stacks get one statistic per expert (n_mat 16), every routed row counted for its expert
 * (llama-imatrix's MUL_MAT_ID), the router a plain one. Exact consequences: gate and up
 * see the same rows; summed over the experts, their sums of squares are 4 times the
 * router's (each token's FFN input goes to 4 experts) and their counts 4 times the tokens;
 * the down projections count the same (token, expert) pairs. An observer that dropped
 * the expert (everything into matrix 0), counted a pair twice or skipped passes of
 * fewer than 16 rows per expert breaks one of them. */
Test(imatrix, experts_statistics_per_expert, .timeout = 120)
{
    enum { N_TOK = 40 };
    int32_t toks[N_TOK];
    for (int i = 0; i < N_TOK; i++) toks[i] = 3 + (97 * i + 11) % 509;
    qfit_model *m;
    qfit_imatrix *im = collect_synth("tiny-qwen3moe", toks, N_TOK, &m);
    for (int il = 0; il < 4; il++) {
        char name[96];
        snprintf(name, sizeof name, "blk.%d.ffn_gate_inp.weight", il);
        const qfit_imatrix_entry *r = qfit_imatrix_find(im, name);
        cr_assert_not_null(r, "%s", name);
        cr_expect_eq(r->n_mat, 1);
        cr_expect_eq(r->counts[0], N_TOK);
        const qfit_imatrix_entry *ex[3];
        static const char *const what[3] = { "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps" };
        for (int w = 0; w < 3; w++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", il, what[w]);
            ex[w] = qfit_imatrix_find(im, name);
            cr_assert_not_null(ex[w], "%s", name);
            cr_expect_eq(ex[w]->n_mat, 16, "%s: %lld matrices", name, (long long)ex[w]->n_mat);
            int64_t total = 0, used = 0;
            for (int e = 0; e < ex[w]->n_mat; e++) { total += ex[w]->counts[e]; used += ex[w]->counts[e] > 0; }
            cr_expect_eq(total, 4 * N_TOK, "%s: %lld rows counted", name, (long long)total);
            cr_expect_geq(used, 8, "%s: only %lld experts were chosen", name, (long long)used);
        }
        for (int e = 0; e < 16; e++) {
            cr_expect_eq(ex[0]->counts[e], ex[2]->counts[e], "layer %d expert %d: gate and down counts", il, e);
            for (int j = 0; j < 256; j++)
                cr_expect_eq(ex[0]->sum2[e * 256 + j], ex[1]->sum2[e * 256 + j], "layer %d: gate and up differ", il);
        }
        for (int j = 0; j < 256; j++) {
            double s = 0;
            for (int e = 0; e < 16; e++) s += ex[0]->sum2[e * 256 + j];
            cr_expect(fabs(s - 4 * r->sum2[j]) <= 1e-9 * fabs(s) + 1e-12, "layer %d dim %d: experts %.9g, 4 x router %.9g",
                      il, j, s, 4 * r->sum2[j]);
        }
    }
    qfit_imatrix_free(im);
    qfit_model_free(m);
}

/* Fused matrices (phi3): the statistics are named after the file's tensors, attn_qkv and
 * the fused gate-up ffn_up, as llama-imatrix sees one MUL_MAT each; an entry named after
 * the engine's views (attn_q, ffn_gate) would match no tensor when quantizing. */
Test(imatrix, fused_matrices_keep_their_file_names, .timeout = 120)
{
    int32_t toks[32];
    for (int i = 0; i < 32; i++) toks[i] = 3 + (31 * i + 7) % 500;
    qfit_model *m;
    qfit_imatrix *im = collect_synth("tiny-phi3", toks, 32, &m);
    const qfit_gguf *g = qfit_model_gguf(m);
    static const char *const have[] = { "attn_qkv", "attn_output", "ffn_up", "ffn_down" };
    static const char *const not_have[] = { "attn_q", "attn_k", "attn_v", "ffn_gate" };
    for (int il = 0; il < 4; il++) {
        char name[96];
        for (size_t i = 0; i < 4; i++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", il, have[i]);
            const qfit_imatrix_entry *e = qfit_imatrix_find(im, name);
            cr_expect_not_null(e, "no statistics for %s", name);
            cr_expect_geq(qfit_gguf_find_tensor(g, name), 0, "%s is not a tensor of the file", name);
            if (e) cr_expect_eq(e->counts[0], 32, "%s", name);
            snprintf(name, sizeof name, "blk.%d.%s.weight", il, not_have[i]);
            cr_expect_null(qfit_imatrix_find(im, name), "statistics for %s, which the file does not have", name);
        }
    }
    qfit_imatrix_free(im);
    qfit_model_free(m);
}
