/* Importance matrices: quantization with an imatrix byte-exact with ggml
 * (tests/data/imatrix, see gen.sh there). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/quant.h"
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
