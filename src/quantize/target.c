/* qfit — quantize to a size: per-tensor types chosen by measured sensitivity
 * (see qfit_target_plan in include/qfit/quantize.h).
 *
 * For every tensor the importance matrix covers, each candidate type is tried:
 * the tensor is quantized with the imatrix and dequantized, and its error is
 * sum over rows and columns of w_j * (x - q(x))^2, w the imatrix weights (the
 * expected squared error of the tensor's outputs when inputs have those mean
 * squares), divided by the outputs' expected energy sum w_j x^2 (a noise-to-signal
 * ratio: absolute errors are not comparable between matmuls whose outputs have
 * different scales; on the shared model it took the mean KL divergence of the
 * plan at Q4_K_M's size from 0.0068 to 0.0039, llama.cpp's Q4_K_M with the same
 * imatrix being 0.0035). A multiple-choice knapsack by greedy marginal analysis then starts
 * every tensor at its smallest candidate and repeatedly takes the upgrade with
 * the largest error decrease per added byte that still fits the budget, over
 * each tensor's lower convex hull of (bytes, error). */
#include "qfit/quantize.h"
#include "qfit/imatrix.h"
#include "qfit/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TP_MAX_CAND 6

static const int K_CANDIDATES[] = { QFIT_TYPE_Q2_K, QFIT_TYPE_Q3_K, QFIT_TYPE_Q4_K,
                                    QFIT_TYPE_Q5_K, QFIT_TYPE_Q6_K, QFIT_TYPE_Q8_0 };
static const int LEGACY_CANDIDATES[] = { QFIT_TYPE_Q4_0, QFIT_TYPE_Q4_1, QFIT_TYPE_Q5_0,
                                         QFIT_TYPE_Q5_1, QFIT_TYPE_Q8_0 };

typedef struct {
    int      n;                    /* hull points, by increasing bytes and decreasing error */
    int      type[TP_MAX_CAND];
    uint64_t bytes[TP_MAX_CAND];   /* padded to the file's alignment */
    double   error[TP_MAX_CAND];
    int      cur;                  /* chosen point */
} tp_tensor;

static uint64_t pad_to(uint64_t n, size_t a) { return (n + a - 1) / a * a; }

/* imatrix-weighted squared error of quantizing rows x (nrows x ne0) to type */
static int measure(int type, const float *x, int64_t ne0, int64_t nrows, int64_t slice_rows,
                   const float *w, void *qbuf, float *deq, double *out, char *err, size_t err_len)
{
    const size_t rs = qfit_row_size(type, ne0);
    double e = 0;
    for (int64_t r0 = 0; r0 < nrows; r0 += slice_rows) {
        const int64_t nr = nrows - r0 < slice_rows ? nrows - r0 : slice_rows;
        const float *ws = w + (r0 / slice_rows) * ne0;
        for (int64_t r = 0; r < nr; r++) {
            const float *xr = x + (r0 + r) * ne0;
            if (qfit_quantize_rows_imatrix(type, xr, qbuf, 1, ne0, ws, err, err_len) != rs) return -1;
            if (qfit_rows_to_float(type, qbuf, deq, 1, ne0) != 0) {
                snprintf(err, err_len, "cannot dequantize %s", qfit_type_name(type));
                return -1;
            }
            for (int64_t j = 0; j < ne0; j++) {
                const double d = (double)xr[j] - (double)deq[j];
                e += (double)ws[j] * d * d;
            }
        }
    }
    *out = e;
    return 0;
}

/* keep the lower convex hull of the candidates (sorted by bytes): each step up
 * must lower the error, at a decreasing rate per byte */
static void convex_hull(tp_tensor *t)
{
    int k = 0;
    for (int i = 0; i < t->n; i++) {
        if (k > 0 && !(t->error[i] < t->error[k - 1])) continue;   /* bigger and not better */
        while (k >= 2) {
            const double s1 = (t->error[k - 2] - t->error[k - 1]) / (double)(t->bytes[k - 1] - t->bytes[k - 2]);
            const double s2 = (t->error[k - 1] - t->error[i]) / (double)(t->bytes[i] - t->bytes[k - 1]);
            if (s2 >= s1) k--;   /* the middle point is not on the hull */
            else break;
        }
        t->type[k] = t->type[i];
        t->bytes[k] = t->bytes[i];
        t->error[k] = t->error[i];
        k++;
    }
    t->n = k;
}

int qfit_target_plan(const qfit_gguf *g, const qfit_imatrix *im, uint64_t budget, size_t alignment,
                     int *types, qfit_target_result *res, char *err, size_t err_len)
{
    char dummy[8];
    if (!err) { err = dummy; err_len = sizeof dummy; }
    if (!g || !im || !types || alignment == 0) { snprintf(err, err_len, "invalid arguments"); return -1; }
    const int64_t n = qfit_gguf_n_tensors(g);
    tp_tensor *tt = calloc((size_t)n + 1, sizeof *tt);
    if (!tt) { snprintf(err, err_len, "out of memory"); return -1; }
    qfit_target_result r;
    memset(&r, 0, sizeof r);
    int rc = -1;
    float *x = NULL, *deq = NULL, *w = NULL;
    void *qbuf = NULL;
    uint64_t fixed = 0, total = 0;

    for (int64_t i = 0; i < n; i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        int64_t rows = 1;
        for (int d = 1; d < QFIT_GGUF_MAX_DIMS; d++) rows *= t->ne[d];
        const qfit_type_traits *tr = qfit_type_get_traits(types[i]);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        const qfit_imatrix_entry *e = qfit_imatrix_find(im, name);
        const bool plannable = tr && tr->quantized && types[i] != t->type && e &&
                               e->n_per_mat * e->n_mat == t->ne[0] * t->ne[2] && t->ne[3] == 1 &&
                               (t->type == QFIT_TYPE_F32 || t->type == QFIT_TYPE_F16 || t->type == QFIT_TYPE_BF16);
        if (!plannable) {
            const size_t nb = types[i] == t->type ? (size_t)t->nbytes : qfit_tensor_nbytes(types[i], t->ne[0], rows);
            fixed += pad_to(nb, alignment);
            continue;
        }
        const int *cand = t->ne[0] % QFIT_QK_K == 0 ? K_CANDIDATES : LEGACY_CANDIDATES;
        const int nc = t->ne[0] % QFIT_QK_K == 0 ? (int)(sizeof K_CANDIDATES / sizeof *cand)
                                                  : (int)(sizeof LEGACY_CANDIDATES / sizeof *cand);
        if (t->ne[0] % 32 != 0) {   /* no candidate fits the row: keep the mix's choice */
            fixed += pad_to(qfit_tensor_nbytes(types[i], t->ne[0], rows), alignment);
            continue;
        }
        /* the tensor as float, and its weights */
        free(x); free(deq); free(w); free(qbuf);
        x = malloc((size_t)(t->ne[0] * rows) * sizeof *x);
        deq = malloc((size_t)t->ne[0] * sizeof *deq);
        w = malloc((size_t)(t->ne[0] * t->ne[2]) * sizeof *w);
        qbuf = malloc(qfit_row_size(QFIT_TYPE_Q8_0, t->ne[0]) + 64);
        if (!x || !deq || !w || !qbuf) { snprintf(err, err_len, "out of memory"); goto done; }
        if (qfit_rows_to_float(t->type, t->data, x, rows, t->ne[0]) != 0) {
            snprintf(err, err_len, "tensor '%s': cannot read %s", name, qfit_type_name(t->type));
            goto done;
        }
        qfit_imatrix_weights(e, w);
        /* the tensor's output energy, sum over rows of sum_j w_j W_rj^2: errors are
         * compared relative to it (noise-to-signal of each matmul's output) */
        double energy = 0;
        for (int64_t rr = 0; rr < rows; rr++) {
            const float *ws = w + (rr / t->ne[1]) * t->ne[0];
            const float *xr = x + rr * t->ne[0];
            for (int64_t j = 0; j < t->ne[0]; j++) energy += (double)ws[j] * (double)xr[j] * (double)xr[j];
        }
        if (!(energy > 0)) energy = 1;
        tp_tensor *p = &tt[i];
        for (int c = 0; c < nc; c++) {
            p->type[p->n] = cand[c];
            p->bytes[p->n] = pad_to(qfit_tensor_nbytes(cand[c], t->ne[0], rows), alignment);
            if (measure(cand[c], x, t->ne[0], rows, t->ne[1], w, qbuf, deq, &p->error[p->n], err, err_len) < 0)
                goto done;
            p->error[p->n] /= energy;
            p->n++;
        }
        /* candidates come in increasing size; Q4_1 and Q5_0 can swap: sort */
        for (int a = 1; a < p->n; a++)
            for (int b = a; b > 0 && p->bytes[b] < p->bytes[b - 1]; b--) {
                int ty = p->type[b]; p->type[b] = p->type[b - 1]; p->type[b - 1] = ty;
                uint64_t by = p->bytes[b]; p->bytes[b] = p->bytes[b - 1]; p->bytes[b - 1] = by;
                double er = p->error[b]; p->error[b] = p->error[b - 1]; p->error[b - 1] = er;
            }
        convex_hull(p);
        p->cur = 0;
        total += p->bytes[0];
        r.n_planned++;
    }
    if (r.n_planned == 0) {
        snprintf(err, err_len, "the importance matrix covers none of the tensors to quantize");
        goto done;
    }
    if (fixed + total > budget) {
        snprintf(err, err_len, "the target is too small: the smallest choice takes %llu bytes of tensor data, "
                 "the target leaves %llu", (unsigned long long)(fixed + total), (unsigned long long)budget);
        goto done;
    }
    /* greedy: the fitting upgrade with the best error decrease per byte */
    for (;;) {
        int64_t best = -1;
        double best_rate = 0;
        for (int64_t i = 0; i < n; i++) {
            const tp_tensor *p = &tt[i];
            if (p->n == 0 || p->cur + 1 >= p->n) continue;
            const uint64_t add = p->bytes[p->cur + 1] - p->bytes[p->cur];
            if (fixed + total + add > budget) continue;
            const double rate = (p->error[p->cur] - p->error[p->cur + 1]) / (double)add;
            if (best < 0 || rate > best_rate) { best = i; best_rate = rate; }
        }
        if (best < 0) break;
        tp_tensor *p = &tt[best];
        total += p->bytes[p->cur + 1] - p->bytes[p->cur];
        p->cur++;
    }
    for (int64_t i = 0; i < n; i++) {
        if (tt[i].n == 0) continue;
        types[i] = tt[i].type[tt[i].cur];
        r.error += tt[i].error[tt[i].cur];
    }
    r.data_bytes = fixed + total;
    if (res) *res = r;
    rc = 0;
done:
    free(x); free(deq); free(w); free(qbuf);
    free(tt);
    return rc;
}
