/* qfit — multithreaded tensor conversion engine (see engine.h). */
#include "quantize/engine.h"
#include "qfit/quant.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Elements per work chunk: big enough to amortise the hand-off, small enough
 * that a thread's float scratch stays in L2 and small tensors still spread. */
#define CHUNK_ELEMS (64 * 1024)
#define NSLOT 2

typedef struct {
    const qfit_qe_tensor *t;
    size_t n;
    qfit_qe_fill_fn fill;
    void *fill_user;

    pthread_mutex_t mu;
    pthread_cond_t  cv_work;     /* workers: a slot became free / stop */
    pthread_cond_t  cv_done;     /* writer: a tensor became complete / error */

    /* producer cursor */
    size_t  cur;                 /* tensor being handed out */
    int64_t cur_row;             /* next row of it */
    size_t  written;             /* tensors written so far (slots before are free) */
    int64_t *pending;            /* chunks still running or not yet taken, per tensor */
    uint8_t *slot_buf[NSLOT];
    size_t   slot_cap[NSLOT];

    int     failed;
    int     stop;
    char    err[512];
} engine;

static int64_t rows_per_chunk(int64_t ne0)
{
    if (ne0 <= 0) return 1;
    int64_t r = CHUNK_ELEMS / ne0;
    return r < 1 ? 1 : r;
}

static int needs_work(const qfit_qe_tensor *t)
{
    return !t->copy && t->nrows > 0 && t->ne0 > 0;
}

int qfit_qe_all_finite(const float *x, int64_t n)
{
    /* |x| as bits: non-finite values are >= 0x7f800000 */
    uint32_t m0 = 0, m1 = 0, m2 = 0, m3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t a, b, c, d;
        memcpy(&a, x + i, 4); memcpy(&b, x + i + 1, 4);
        memcpy(&c, x + i + 2, 4); memcpy(&d, x + i + 3, 4);
        a &= 0x7fffffffu; b &= 0x7fffffffu; c &= 0x7fffffffu; d &= 0x7fffffffu;
        m0 = a > m0 ? a : m0; m1 = b > m1 ? b : m1;
        m2 = c > m2 ? c : m2; m3 = d > m3 ? d : m3;
    }
    for (; i < n; i++) {
        uint32_t a;
        memcpy(&a, x + i, 4);
        a &= 0x7fffffffu;
        m0 = a > m0 ? a : m0;
    }
    uint32_t m = m0 > m1 ? m0 : m1;
    m = m > m2 ? m : m2;
    m = m > m3 ? m : m3;
    return m < 0x7f800000u;
}

static void fail(engine *e, const char *msg)
{
    /* caller holds e->mu */
    if (!e->failed) {
        e->failed = 1;
        snprintf(e->err, sizeof e->err, "%s", msg);
    }
    e->stop = 1;
    pthread_cond_broadcast(&e->cv_work);
    pthread_cond_broadcast(&e->cv_done);
}

/* Convert nrows rows of floats (rows row0.. of tensor t) to the output type,
 * in runs of rows that share one slice of importance weights. */
static int convert_rows(const qfit_qe_tensor *t, int64_t row0, const float *src, void *dst, int64_t nrows,
                        char *err, size_t err_len)
{
    const int type = t->out_type;
    const int64_t ne0 = t->ne0;
    if (type == QFIT_TYPE_F32) {
        memcpy(dst, src, (size_t)(nrows * ne0) * sizeof(float));
        return 0;
    }
    const size_t row_bytes = qfit_row_size(type, ne0);
    for (int64_t r = 0; r < nrows;) {
        int64_t n = nrows - r;
        const float *w = NULL;
        if (t->imatrix) {
            const int64_t slice = (row0 + r) / t->imatrix_rows;
            const int64_t left = (slice + 1) * t->imatrix_rows - (row0 + r);
            n = n < left ? n : left;
            w = t->imatrix + slice * ne0;
        }
        size_t got = qfit_quantize_rows_imatrix(type, src + r * ne0, (char *)dst + (size_t)r * row_bytes,
                                                n, ne0, w, err, err_len);
        size_t want = qfit_tensor_nbytes(type, ne0, n);
        if (got == 0 || got != want) {
            if (got != 0)
                snprintf(err, err_len, "converting to %s wrote %zu bytes, expected %zu",
                         qfit_type_name(type), got, want);
            return -1;
        }
        r += n;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    engine *e = arg;
    float *scratch = NULL;
    size_t scratch_cap = 0;
    char err[512];

    pthread_mutex_lock(&e->mu);
    for (;;) {
        /* skip tensors with nothing to compute */
        while (!e->stop && e->cur < e->n && !needs_work(&e->t[e->cur])) {
            e->cur++;
            e->cur_row = 0;
        }
        if (e->stop || e->cur >= e->n) break;
        size_t ti = e->cur;
        if (ti >= e->written + NSLOT) {      /* its buffer is still being written */
            pthread_cond_wait(&e->cv_work, &e->mu);
            continue;
        }
        const qfit_qe_tensor *t = &e->t[ti];
        int64_t rpc = rows_per_chunk(t->ne0);
        int64_t row0 = e->cur_row;
        int64_t nr = t->nrows - row0 < rpc ? t->nrows - row0 : rpc;
        e->cur_row += nr;
        if (e->cur_row >= t->nrows) { e->cur++; e->cur_row = 0; }
        uint8_t *out = e->slot_buf[ti % NSLOT];
        pthread_mutex_unlock(&e->mu);

        size_t need = (size_t)(nr * t->ne0);
        int ok = 1;
        err[0] = 0;
        if (need > scratch_cap) {
            free(scratch);
            scratch = malloc(need * sizeof *scratch);
            scratch_cap = scratch ? need : 0;
            if (!scratch) { snprintf(err, sizeof err, "out of memory"); ok = 0; }
        }
        if (ok) {
            const float *f = e->fill(e->fill_user, ti, row0, nr, scratch, err, sizeof err);
            if (!f) {
                if (!err[0]) snprintf(err, sizeof err, "tensor '%s': no data", t->name);
                ok = 0;
            } else {
                size_t row_bytes = qfit_row_size(t->out_type, t->ne0);
                char cerr[400] = "";
                if (convert_rows(t, row0, f, out + (size_t)row0 * row_bytes, nr, cerr, sizeof cerr) < 0) {
                    snprintf(err, sizeof err, "tensor '%s': %s", t->name,
                             cerr[0] ? cerr : "conversion failed");
                    ok = 0;
                }
            }
        }

        pthread_mutex_lock(&e->mu);
        if (!ok) { fail(e, err); break; }
        if (--e->pending[ti] == 0) pthread_cond_broadcast(&e->cv_done);
    }
    pthread_mutex_unlock(&e->mu);
    free(scratch);
    return NULL;
}

int qfit_qe_run(qfit_gguf_writer *w, const qfit_qe_tensor *tensors, size_t n, int n_threads,
                qfit_qe_fill_fn fill, void *fill_user,
                qfit_qe_progress_fn progress, void *progress_user,
                char *err, size_t err_len)
{
    char dummy[8];
    if (!err) { err = dummy; err_len = sizeof dummy; }
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 512) n_threads = 512;

    engine e;
    memset(&e, 0, sizeof e);
    e.t = tensors;
    e.n = n;
    e.fill = fill;
    e.fill_user = fill_user;
    e.pending = calloc(n ? n : 1, sizeof *e.pending);
    if (!e.pending) { snprintf(err, err_len, "out of memory"); return -1; }

    uint64_t total_bytes = 0;
    size_t max_bytes = 0;
    int any_work = 0;
    for (size_t i = 0; i < n; i++) {
        const qfit_qe_tensor *t = &tensors[i];
        total_bytes += t->nbytes;
        if (!needs_work(t)) continue;
        size_t want = qfit_tensor_nbytes(t->out_type, t->ne0, t->nrows);
        if (want == SIZE_MAX || want != t->nbytes) {
            snprintf(err, err_len, "tensor '%s': cannot store %lld x %lld as %s",
                     t->name, (long long)t->ne0, (long long)t->nrows, qfit_type_name(t->out_type));
            free(e.pending);
            return -1;
        }
        int64_t rpc = rows_per_chunk(t->ne0);
        e.pending[i] = (t->nrows + rpc - 1) / rpc;
        if (want > max_bytes) max_bytes = want;
        any_work = 1;
    }
    if (any_work) {
        for (int s = 0; s < NSLOT; s++) {
            e.slot_buf[s] = malloc(max_bytes ? max_bytes : 1);
            if (!e.slot_buf[s]) {
                snprintf(err, err_len, "out of memory (%zu bytes for an output buffer)", max_bytes);
                for (int k = 0; k < s; k++) free(e.slot_buf[k]);
                free(e.pending);
                return -1;
            }
        }
    }

    pthread_mutex_init(&e.mu, NULL);
    pthread_cond_init(&e.cv_work, NULL);
    pthread_cond_init(&e.cv_done, NULL);

    pthread_t *th = calloc((size_t)n_threads, sizeof *th);
    int started = 0;
    if (any_work && th) {
        for (; started < n_threads; started++)
            if (pthread_create(&th[started], NULL, worker_main, &e) != 0) break;
    }
    int rc = 0;
    if (any_work && started == 0) {
        snprintf(err, err_len, "cannot start worker threads");
        rc = -1;
    }

    uint64_t bytes_done = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const qfit_qe_tensor *t = &tensors[i];
        const void *data = t->copy;
        if (needs_work(t)) {
            pthread_mutex_lock(&e.mu);
            while (!e.failed && e.pending[i] > 0) pthread_cond_wait(&e.cv_done, &e.mu);
            int failed = e.failed;
            pthread_mutex_unlock(&e.mu);
            if (failed) { rc = -1; break; }
            data = e.slot_buf[i % NSLOT];
        }
        char werr[400];
        if (qfit_gguf_writer_write_tensor(w, data, (size_t)t->nbytes, werr, sizeof werr) != 0) {
            pthread_mutex_lock(&e.mu);
            char msg[512];
            snprintf(msg, sizeof msg, "writing tensor '%s': %s", t->name, werr);
            fail(&e, msg);
            pthread_mutex_unlock(&e.mu);
            rc = -1;
            break;
        }
        pthread_mutex_lock(&e.mu);
        e.written = i + 1;
        pthread_cond_broadcast(&e.cv_work);
        pthread_mutex_unlock(&e.mu);
        bytes_done += t->nbytes;
        if (progress) progress(progress_user, i + 1, n, bytes_done, total_bytes, t->name);
    }

    pthread_mutex_lock(&e.mu);
    e.stop = 1;
    pthread_cond_broadcast(&e.cv_work);
    pthread_mutex_unlock(&e.mu);
    for (int k = 0; k < started; k++) pthread_join(th[k], NULL);
    if (e.failed) {
        snprintf(err, err_len, "%s", e.err);
        rc = -1;
    }

    free(th);
    pthread_cond_destroy(&e.cv_done);
    pthread_cond_destroy(&e.cv_work);
    pthread_mutex_destroy(&e.mu);
    for (int s = 0; s < NSLOT; s++) free(e.slot_buf[s]);
    free(e.pending);
    return rc;
}
