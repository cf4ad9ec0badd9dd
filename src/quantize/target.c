/* qfit — quantize to a size: per-tensor types chosen by sensitivity
 * (see qfit_target_plan in include/qfit/quantize.h).
 *
 * Every tensor the plan may change gets a list of candidate types and, for each,
 * its bytes and a cost:
 *   - measured (a calibration text is given): the base model is run over the
 *     calibration chunks with only this tensor quantized to the probe type (the rest at
 *     full precision), and the probe's cost is the mean KL divergence of its next-token
 *     distributions from the base's: what the tensor's rounding does to the model's
 *     output, end to end. The other candidates' costs are the probe's scaled by their
 *     estimated error (below) relative to the probe's; measure_all runs them all;
 *   - estimated (an importance matrix alone): sum over rows and columns of
 *     w_j * (x - q(x))^2, w the imatrix weights (the expected squared error of the
 *     tensor's outputs when inputs have those mean squares), divided by the
 *     outputs' expected energy sum w_j x^2 (a noise-to-signal ratio: absolute
 *     errors are not comparable between matmuls whose outputs have different
 *     scales). It cannot see that one matrix matters more to the output than another
 *     of the same noise-to-signal ratio, which is what the measurement adds.
 * Costs are taken as additive over tensors (for small perturbations the KL
 * divergence is quadratic in them and independent rounding errors do not
 * correlate). A multiple-choice knapsack by greedy marginal analysis then starts
 * every tensor at its smallest candidate and repeatedly takes the upgrade with the
 * largest cost decrease per added byte that still fits the budget, over each
 * tensor's lower convex hull of (bytes, cost). */
#include "qfit/quantize.h"
#include "qfit/imatrix.h"
#include "qfit/model.h"
#include "qfit/quant.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TP_MAX_CAND 8
#define TP_TOP_K    128   /* base tokens kept per position for the KL divergence */
/* the candidate measured when not measure_all (an index into the lists below) */
#define TP_PROBE_K      1   /* Q3_K */
#define TP_PROBE_LEGACY 0   /* Q4_0 */

static const int K_CANDIDATES[] = { QFIT_TYPE_Q2_K, QFIT_TYPE_Q3_K, QFIT_TYPE_IQ4_XS, QFIT_TYPE_Q4_K,
                                    QFIT_TYPE_Q5_K, QFIT_TYPE_Q6_K, QFIT_TYPE_Q8_0 };
static const int LEGACY_CANDIDATES[] = { QFIT_TYPE_Q4_0, QFIT_TYPE_IQ4_NL, QFIT_TYPE_Q4_1,
                                         QFIT_TYPE_Q5_0, QFIT_TYPE_Q5_1, QFIT_TYPE_Q8_0 };

typedef struct {
    int      n;                    /* points, by increasing bytes (and on the hull decreasing cost) */
    int      type[TP_MAX_CAND];
    uint64_t bytes[TP_MAX_CAND];   /* padded to the file's alignment */
    double   cost[TP_MAX_CAND];
    int      cur;                  /* chosen point */
} tp_tensor;

static uint64_t pad_to(uint64_t n, size_t a) { return (n + a - 1) / a * a; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* keep the lower convex hull of the candidates (sorted by bytes): each step up
 * must lower the cost, at a decreasing rate per byte */
static void convex_hull(tp_tensor *t)
{
    int k = 0;
    for (int i = 0; i < t->n; i++) {
        if (k > 0 && !(t->cost[i] < t->cost[k - 1])) continue;   /* bigger and not better */
        while (k >= 2) {
            const double s1 = (t->cost[k - 2] - t->cost[k - 1]) / (double)(t->bytes[k - 1] - t->bytes[k - 2]);
            const double s2 = (t->cost[k - 1] - t->cost[i]) / (double)(t->bytes[i] - t->bytes[k - 1]);
            if (s2 >= s1) k--;   /* the middle point is not on the hull */
            else break;
        }
        t->type[k] = t->type[i];
        t->bytes[k] = t->bytes[i];
        t->cost[k] = t->cost[i];
        k++;
    }
    t->n = k;
}

/* ------------------------------------------------------------ measured costs */

/* The base model's next-token distributions over the calibration chunks: for every
 * position its TP_TOP_K most likely tokens with their log-probabilities and the
 * probability of all the others (one bucket), so that the KL divergence of a copy is
 * that of the two distributions over those K + 1 outcomes (a lower bound of the full
 * one, equal up to the tail's share; memory does not grow with the vocabulary). */
typedef struct {
    qfit_model   *model;
    qfit_context *ctx;
    const int32_t *tokens;
    int       n_ctx, n_chunks, k, n_vocab;
    int32_t   bos;
    int32_t  *chunk;        /* [n_ctx] */
    int32_t  *top_id;       /* [n_pos][k] */
    float    *top_lp;       /* [n_pos][k] */
    double   *rest;         /* [n_pos] probability outside the top k */
    int      *order;        /* [k] scratch */
} tp_calib;

/* chunk ci from an empty cache, one pass (n_batch = n_ctx), logits of every position */
static int calib_run_chunk(tp_calib *cb, int ci, char *err, size_t err_len)
{
    memcpy(cb->chunk, cb->tokens + (size_t)ci * (size_t)cb->n_ctx, sizeof(int32_t) * (size_t)cb->n_ctx);
    if (cb->bos >= 0) cb->chunk[0] = cb->bos;
    qfit_context_reset(cb->ctx);
    if (qfit_decode(cb->ctx, cb->chunk, cb->n_ctx, 0) != 0) {
        snprintf(err, err_len, "calibration: %s", qfit_context_error(cb->ctx));
        return -1;
    }
    return 0;
}

/* log-sum-exp of a row of logits */
static double row_lse(const float *l, int n)
{
    float mx = l[0];
    for (int i = 1; i < n; i++) if (l[i] > mx) mx = l[i];
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)(l[i] - mx));
    return (double)mx + log(s);
}

/* heap[0..k) := ids of the k largest logits (a min-heap on the logit, ties to the
 * lower id); O(n log k) */
static bool heap_less(const float *l, int a, int b) { return l[a] < l[b] || (l[a] == l[b] && a > b); }
static void heap_down(const float *l, int *h, int k, int i)
{
    for (;;) {
        int m = i, a = 2 * i + 1, b = a + 1;
        if (a < k && heap_less(l, h[a], h[m])) m = a;
        if (b < k && heap_less(l, h[b], h[m])) m = b;
        if (m == i) return;
        int t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}
static void top_k(const float *l, int n, int *h, int k)
{
    for (int i = 0; i < k; i++) h[i] = i;
    for (int i = k / 2 - 1; i >= 0; i--) heap_down(l, h, k, i);
    for (int i = k; i < n; i++)
        if (heap_less(l, h[0], i)) { h[0] = i; heap_down(l, h, k, 0); }
}

/* the base distributions of every calibration position */
static int calib_base(tp_calib *cb, char *err, size_t err_len)
{
    for (int ci = 0; ci < cb->n_chunks; ci++) {
        if (calib_run_chunk(cb, ci, err, err_len) < 0) return -1;
        for (int p = 0; p < cb->n_ctx; p++) {
            const float *l = qfit_get_logits(cb->ctx, p);
            const double lse = row_lse(l, cb->n_vocab);
            top_k(l, cb->n_vocab, cb->order, cb->k);
            const size_t at = ((size_t)ci * (size_t)cb->n_ctx + (size_t)p) * (size_t)cb->k;
            double top = 0;
            for (int j = 0; j < cb->k; j++) {
                const int id = cb->order[j];
                cb->top_id[at + (size_t)j] = id;
                cb->top_lp[at + (size_t)j] = (float)((double)l[id] - lse);
                top += exp((double)cb->top_lp[at + (size_t)j]);
            }
            cb->rest[(size_t)ci * (size_t)cb->n_ctx + (size_t)p] = top < 1 ? 1 - top : 0;
        }
    }
    return 0;
}

/* mean over the calibration positions of KL(base || model as it is now) */
static int calib_kld(tp_calib *cb, double *out, char *err, size_t err_len)
{
    double sum = 0;
    for (int ci = 0; ci < cb->n_chunks; ci++) {
        if (calib_run_chunk(cb, ci, err, err_len) < 0) return -1;
        for (int p = 0; p < cb->n_ctx; p++) {
            const float *l = qfit_get_logits(cb->ctx, p);
            const double lse = row_lse(l, cb->n_vocab);
            const size_t pos = (size_t)ci * (size_t)cb->n_ctx + (size_t)p;
            const int32_t *id = cb->top_id + pos * (size_t)cb->k;
            const float *lp = cb->top_lp + pos * (size_t)cb->k;
            double kl = 0, q_top = 0;
            for (int j = 0; j < cb->k; j++) {
                const double lq = (double)l[id[j]] - lse;
                q_top += exp(lq);
                kl += exp((double)lp[j]) * ((double)lp[j] - lq);
            }
            const double pr = cb->rest[pos], qr = q_top < 1 ? 1 - q_top : 0;
            if (pr > 0) kl += pr * (log(pr) - log(qr > 1e-300 ? qr : 1e-300));
            sum += kl;
        }
    }
    *out = sum / ((double)cb->n_chunks * (double)cb->n_ctx);
    if (!(*out >= 0)) *out = 0;   /* rounding below the exact 0 of an unchanged model */
    return 0;
}

static void calib_free(tp_calib *cb)
{
    qfit_context_free(cb->ctx);
    qfit_model_free(cb->model);
    free(cb->chunk); free(cb->top_id); free(cb->top_lp); free(cb->rest); free(cb->order);
    memset(cb, 0, sizeof *cb);
}

static int calib_init(tp_calib *cb, const qfit_target_params *p, char *err, size_t err_len)
{
    memset(cb, 0, sizeof *cb);
    const qfit_calibration *cal = p->calibration;
    if (!p->model_path) { snprintf(err, err_len, "calibration needs the model's path"); return -1; }
    const int n_ctx = cal->n_ctx > 0 ? cal->n_ctx : 256;
    if (!cal->tokens || n_ctx < 8 || cal->n_tokens / (size_t)n_ctx < 1) {
        snprintf(err, err_len, "the calibration text has %zu tokens, fewer than one chunk of %d",
                 cal->n_tokens, n_ctx);
        return -1;
    }
    size_t avail = cal->n_tokens / (size_t)n_ctx;
    if (cal->n_chunks > 0 && (size_t)cal->n_chunks > avail) {
        snprintf(err, err_len, "the calibration text has %zu chunks of %d tokens, %d asked for",
                 avail, n_ctx, cal->n_chunks);
        return -1;
    }
    cb->n_chunks = cal->n_chunks > 0 ? cal->n_chunks : (int)(avail > 1000000 ? 1000000 : avail);
    cb->n_ctx = n_ctx;
    cb->tokens = cal->tokens;
    cb->bos = cal->bos;
    char merr[512];
    cb->model = qfit_model_load(p->model_path, merr, sizeof merr);
    if (!cb->model) { snprintf(err, err_len, "calibration: %s", merr); return -1; }
    const qfit_hparams *hp = qfit_model_hparams(cb->model);
    cb->n_vocab = hp->n_vocab;
    for (size_t i = 0; i < (size_t)cb->n_chunks * (size_t)n_ctx; i++)
        if (cal->tokens[i] < 0 || cal->tokens[i] >= cb->n_vocab) {
            snprintf(err, err_len, "calibration token %zu (%d) is not in the vocabulary", i, (int)cal->tokens[i]);
            goto fail;
        }
    qfit_context_params cp = qfit_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_ctx;
    cp.n_threads = p->n_threads;
    cb->ctx = qfit_context_new(cb->model, &cp, merr, sizeof merr);
    if (!cb->ctx) { snprintf(err, err_len, "calibration: %s", merr); goto fail; }
    if (qfit_context_n_batch(cb->ctx) != n_ctx) {
        snprintf(err, err_len, "calibration: a context of %d tokens per pass could not be made (%d)", n_ctx,
                 qfit_context_n_batch(cb->ctx));
        goto fail;
    }
    cb->k = cb->n_vocab < TP_TOP_K ? cb->n_vocab : TP_TOP_K;
    const size_t n_pos = (size_t)cb->n_chunks * (size_t)n_ctx;
    cb->chunk = malloc(sizeof *cb->chunk * (size_t)n_ctx);
    cb->top_id = malloc(sizeof *cb->top_id * n_pos * (size_t)cb->k);
    cb->top_lp = malloc(sizeof *cb->top_lp * n_pos * (size_t)cb->k);
    cb->rest = malloc(sizeof *cb->rest * n_pos);
    cb->order = malloc(sizeof *cb->order * (size_t)cb->k);
    if (!cb->chunk || !cb->top_id || !cb->top_lp || !cb->rest || !cb->order) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    if (calib_base(cb, err, err_len) < 0) goto fail;
    return 0;
fail:
    calib_free(cb);
    return -1;
}

/* ------------------------------------------------------------ the plan */

/* Rows of a tensor quantized to a type on several threads: into q (all rows; may be
 * NULL) and/or, per row, the squared error weighted by w (row_err; may be NULL). Rows
 * are split evenly; every row's result is its own, so nothing depends on the thread
 * count. w holds one slice of ne0 weights per slice_rows rows. */
typedef struct {
    int      type;
    const float *x, *w;
    int64_t  ne0, slice_rows, r0, r1;
    bool     quantize_with_w;
    uint8_t *q;
    double  *row_err;
    int      rc;
    char     err[160];
} tp_rows_job;

static void *tp_rows_worker(void *arg)
{
    tp_rows_job *j = arg;
    const size_t rs = qfit_row_size(j->type, j->ne0);
    uint8_t *own = malloc(rs + 64);
    float *deq = malloc((size_t)j->ne0 * sizeof *deq);
    if (!own || !deq) { snprintf(j->err, sizeof j->err, "out of memory"); j->rc = -1; goto out; }
    for (int64_t r = j->r0; r < j->r1; r++) {
        const float *xr = j->x + r * j->ne0;
        const float *ws = j->w ? j->w + (r / j->slice_rows) * j->ne0 : NULL;
        uint8_t *qr = j->q ? j->q + (size_t)r * rs : own;
        if (qfit_quantize_rows_imatrix(j->type, xr, qr, 1, j->ne0, j->quantize_with_w ? ws : NULL, j->err,
                                       sizeof j->err) != rs) { j->rc = -1; goto out; }
        if (!j->row_err) continue;
        if (qfit_rows_to_float(j->type, qr, deq, 1, j->ne0) != 0) {
            snprintf(j->err, sizeof j->err, "cannot dequantize %s", qfit_type_name(j->type));
            j->rc = -1;
            goto out;
        }
        double e = 0;
        for (int64_t k = 0; k < j->ne0; k++) {
            const double d = (double)xr[k] - (double)deq[k];
            e += (double)ws[k] * d * d;
        }
        j->row_err[r] = e;
    }
out:
    free(own);
    free(deq);
    return NULL;
}

#define TP_MAX_THREADS 64

static int tp_rows(int n_threads, tp_rows_job tmpl, int64_t nrows, char *err, size_t err_len)
{
    if (n_threads > TP_MAX_THREADS) n_threads = TP_MAX_THREADS;
    if (n_threads > nrows) n_threads = (int)nrows;
    if (n_threads < 1) n_threads = 1;
    tp_rows_job jobs[TP_MAX_THREADS];
    pthread_t th[TP_MAX_THREADS];
    bool started[TP_MAX_THREADS] = { false };
    for (int i = 0; i < n_threads; i++) {
        jobs[i] = tmpl;
        jobs[i].r0 = nrows * i / n_threads;
        jobs[i].r1 = nrows * (i + 1) / n_threads;
        if (i > 0) started[i] = pthread_create(&th[i], NULL, tp_rows_worker, &jobs[i]) == 0;
        if (i > 0 && !started[i]) tp_rows_worker(&jobs[i]);   /* no thread: do it here */
    }
    tp_rows_worker(&jobs[0]);
    int rc = 0;
    for (int i = 0; i < n_threads; i++) {
        if (started[i]) pthread_join(th[i], NULL);
        if (jobs[i].rc != 0 && rc == 0) {
            snprintf(err, err_len, "%s", jobs[i].err);
            rc = -1;
        }
    }
    return rc;
}

/* The importance weights of tensor t (ne0 * ne2 floats into w), as the quantizer will
 * use them: false when the imatrix has no entry of that size. */
static bool tensor_weights(const qfit_imatrix *im, const char *name, const qfit_gguf_tensor *t, float *w)
{
    if (!im) return false;
    const qfit_imatrix_entry *e = qfit_imatrix_find(im, name);
    if (!e || e->n_per_mat * e->n_mat != t->ne[0] * t->ne[2] || t->ne[3] != 1) return false;
    qfit_imatrix_weights(e, w);
    return true;
}

void qfit_target_params_init(qfit_target_params *p)
{
    memset(p, 0, sizeof *p);
    p->alignment = 32;
}

int qfit_target_plan(const qfit_gguf *g, const qfit_target_params *p, int *types, qfit_target_result *res,
                     char *err, size_t err_len)
{
    char dummy[8];
    if (!err) { err = dummy; err_len = sizeof dummy; }
    if (!g || !p || !types || p->alignment == 0) { snprintf(err, err_len, "invalid arguments"); return -1; }
    const bool measured = p->calibration != NULL;
    if (!measured && !p->imatrix) {
        snprintf(err, err_len, "choosing types for a size needs a calibration text or an importance matrix");
        return -1;
    }
    const double t0 = now_s();
    const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    const int n_threads = p->n_threads > 0 ? p->n_threads : (ncpu > 0 ? (int)ncpu : 1);
    const int64_t n = qfit_gguf_n_tensors(g);
    tp_tensor *tt = calloc((size_t)n + 1, sizeof *tt);
    if (!tt) { snprintf(err, err_len, "out of memory"); return -1; }
    qfit_target_result r;
    memset(&r, 0, sizeof r);
    r.measured = measured;
    int rc = -1;
    float *x = NULL, *w = NULL;
    double *row_err = NULL;
    void *qbuf = NULL;
    uint64_t fixed = 0, total = 0;
    tp_calib cb;
    memset(&cb, 0, sizeof cb);
    if (measured && calib_init(&cb, p, err, err_len) < 0) { free(tt); return -1; }

    /* which tensors are planned, and their candidates */
    int64_t n_steps = 0, step = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t i = 0; i < n; i++) {
            const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
            int64_t rows = 1;
            for (int d = 1; d < QFIT_GGUF_MAX_DIMS; d++) rows *= t->ne[d];
            const qfit_type_traits *tr = qfit_type_get_traits(types[i]);
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
            const qfit_imatrix_entry *e = p->imatrix ? qfit_imatrix_find(p->imatrix, name) : NULL;
            const bool src_float = t->type == QFIT_TYPE_F32 || t->type == QFIT_TYPE_F16 || t->type == QFIT_TYPE_BF16;
            /* measured: the model's matrices (the replace hook knows them; 2-D); estimated:
             * the ones the imatrix covers */
            bool plannable = tr && tr->quantized && types[i] != t->type && src_float && t->ne[3] == 1 &&
                             t->ne[0] % 32 == 0;
            if (measured)   /* a matrix the model computes with (restoring it is a no-op test) */
                plannable = plannable && t->ne[2] == 1 &&
                            qfit_model_replace_weight(cb.model, name, t->type, NULL, 0, NULL, 0) == 0;
            else plannable = plannable && e && e->n_per_mat * e->n_mat == t->ne[0] * t->ne[2];
            const int *cand = t->ne[0] % QFIT_QK_K == 0 ? K_CANDIDATES : LEGACY_CANDIDATES;
            const int nc = t->ne[0] % QFIT_QK_K == 0 ? (int)(sizeof K_CANDIDATES / sizeof *cand)
                                                      : (int)(sizeof LEGACY_CANDIDATES / sizeof *cand);
            if (pass == 0) {
                if (!plannable) {
                    const size_t nb = types[i] == t->type ? (size_t)t->nbytes
                                                          : qfit_tensor_nbytes(types[i], t->ne[0], rows);
                    fixed += pad_to(nb, p->alignment);
                } else {
                    tt[i].n = -1;   /* planned, measured in pass 1 */
                    n_steps += measured && !p->measure_all ? 1 : nc;
                }
                continue;
            }
            if (tt[i].n != -1) continue;
            tt[i].n = 0;
            /* the tensor as float, and its weights */
            free(x); free(row_err); free(w); free(qbuf);
            const size_t n_el = (size_t)(t->ne[0] * rows);
            x = malloc(n_el * sizeof *x);
            row_err = malloc((size_t)rows * sizeof *row_err);
            w = malloc((size_t)(t->ne[0] * t->ne[2]) * sizeof *w);
            qbuf = measured ? malloc(qfit_tensor_nbytes(QFIT_TYPE_Q8_0, t->ne[0], rows) + 64) : NULL;
            if (!x || !row_err || !w || (measured && !qbuf)) { snprintf(err, err_len, "out of memory"); goto done; }
            if (qfit_rows_to_float(t->type, t->data, x, rows, t->ne[0]) != 0) {
                snprintf(err, err_len, "tensor '%s': cannot read %s", name, qfit_type_name(t->type));
                goto done;
            }
            const bool has_w = tensor_weights(p->imatrix, name, t, w);
            if (!has_w) for (int64_t j = 0; j < t->ne[0] * t->ne[2]; j++) w[j] = 1.0f;
            tp_tensor *pt = &tt[i];
            /* estimates: every candidate without calibration, all but the probe with one */
            double est[TP_MAX_CAND];
            if (!measured || !p->measure_all) {
                if (!measured && !has_w) { snprintf(err, err_len, "tensor '%s': no importance weights", name); goto done; }
                /* the tensor's output energy, sum over rows of sum_j w_j W_rj^2: errors are
                 * compared relative to it (noise-to-signal of each matmul's output) */
                double energy = 0;
                for (int64_t rr = 0; rr < rows; rr++) {
                    const float *ws = w + (rr / t->ne[1]) * t->ne[0];
                    const float *xr = x + rr * t->ne[0];
                    for (int64_t j = 0; j < t->ne[0]; j++) energy += (double)ws[j] * (double)xr[j] * (double)xr[j];
                }
                if (!(energy > 0)) energy = 1;
                for (int c = 0; c < nc; c++) {
                    tp_rows_job jb = { .type = cand[c], .x = x, .w = w, .ne0 = t->ne[0], .slice_rows = t->ne[1],
                                       .quantize_with_w = has_w, .row_err = row_err };
                    if (tp_rows(n_threads, jb, rows, err, err_len) < 0) goto done;
                    double sum = 0;
                    for (int64_t rr = 0; rr < rows; rr++) sum += row_err[rr];
                    est[c] = sum / energy;
                }
            }
            const int probe = t->ne[0] % QFIT_QK_K == 0 ? TP_PROBE_K : TP_PROBE_LEGACY;
            double probe_kld = 0;
            for (int c = 0; c < nc; c++) {
                pt->type[pt->n] = cand[c];
                const size_t nbytes = qfit_tensor_nbytes(cand[c], t->ne[0], rows);
                pt->bytes[pt->n] = pad_to(nbytes, p->alignment);
                double cost = est[c];
                if (measured && (!!p->measure_all || c == probe)) {
                    if (p->progress) p->progress(p->progress_user, step, n_steps, name, cand[c]);
                    step++;
                    tp_rows_job jb = { .type = cand[c], .x = x, .w = w, .ne0 = t->ne[0], .slice_rows = t->ne[1],
                                       .quantize_with_w = has_w, .q = qbuf };
                    if (tp_rows(n_threads, jb, rows, err, err_len) < 0) goto done;
                    char merr[256];
                    if (qfit_model_replace_weight(cb.model, name, cand[c], qbuf, nbytes, merr, sizeof merr) != 0) {
                        snprintf(err, err_len, "tensor '%s' as %s: %s", name, qfit_type_name(cand[c]), merr);
                        goto done;
                    }
                    const int krc = calib_kld(&cb, &cost, err, err_len);
                    if (qfit_model_replace_weight(cb.model, name, t->type, NULL, 0, merr, sizeof merr) != 0) {
                        snprintf(err, err_len, "tensor '%s': cannot restore it: %s", name, merr);
                        goto done;
                    }
                    if (krc < 0) goto done;
                    r.n_measured++;
                    probe_kld = cost;
                } else if (!measured && p->progress) {
                    p->progress(p->progress_user, step, n_steps, name, cand[c]);
                    step++;
                }
                pt->cost[pt->n] = cost;
                pt->n++;
            }
            if (measured && !p->measure_all)   /* the others scaled by their estimated error against the probe's */
                for (int c = 0; c < nc; c++)
                    if (c != probe) pt->cost[c] = est[probe] > 0 ? probe_kld * est[c] / est[probe] : 0;
            /* candidates come in increasing size but some swap (Q4_1 / Q5_0): sort */
            for (int a = 1; a < pt->n; a++)
                for (int b = a; b > 0 && pt->bytes[b] < pt->bytes[b - 1]; b--) {
                    int ty = pt->type[b]; pt->type[b] = pt->type[b - 1]; pt->type[b - 1] = ty;
                    uint64_t by = pt->bytes[b]; pt->bytes[b] = pt->bytes[b - 1]; pt->bytes[b - 1] = by;
                    double co = pt->cost[b]; pt->cost[b] = pt->cost[b - 1]; pt->cost[b - 1] = co;
                }
            convex_hull(pt);
            pt->cur = 0;
            total += pt->bytes[0];
            r.n_planned++;
        }
    }
    if (p->progress) p->progress(p->progress_user, n_steps, n_steps, "", -1);
    if (r.n_planned == 0) {
        snprintf(err, err_len, measured ? "no tensor of the model can be planned (none is a float matrix the mix quantizes)"
                                        : "the importance matrix covers none of the tensors to quantize");
        goto done;
    }
    if (fixed + total > p->budget) {
        snprintf(err, err_len, "the target is too small: the smallest choice takes %llu bytes of tensor data, "
                 "the target leaves %llu", (unsigned long long)(fixed + total), (unsigned long long)p->budget);
        goto done;
    }
    /* greedy: the fitting upgrade with the best cost decrease per byte */
    for (;;) {
        int64_t best = -1;
        double best_rate = 0;
        for (int64_t i = 0; i < n; i++) {
            const tp_tensor *pt = &tt[i];
            if (pt->n <= 0 || pt->cur + 1 >= pt->n) continue;
            const uint64_t add = pt->bytes[pt->cur + 1] - pt->bytes[pt->cur];
            if (fixed + total + add > p->budget) continue;
            const double rate = (pt->cost[pt->cur] - pt->cost[pt->cur + 1]) / (double)add;
            if (best < 0 || rate > best_rate) { best = i; best_rate = rate; }
        }
        if (best < 0) break;
        tp_tensor *pt = &tt[best];
        total += pt->bytes[pt->cur + 1] - pt->bytes[pt->cur];
        pt->cur++;
    }
    for (int64_t i = 0; i < n; i++) {
        if (tt[i].n <= 0) continue;
        types[i] = tt[i].type[tt[i].cur];
        r.cost += tt[i].cost[tt[i].cur];
    }
    r.data_bytes = fixed + total;
    r.n_calib_tokens = measured ? (long)cb.n_chunks * cb.n_ctx : 0;
    r.seconds = now_s() - t0;
    if (res) *res = r;
    rc = 0;
done:
    free(x); free(row_err); free(w); free(qbuf);
    free(tt);
    if (measured) calib_free(&cb);
    return rc;
}
