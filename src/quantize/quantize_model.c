/* qfit — GGUF-to-GGUF model quantization (llama.cpp's llama_model_quantize,
 * with or without an importance matrix). */
#include "qfit/quantize.h"
#include "qfit/imatrix.h"
#include "qfit/quant.h"
#include "quantize/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int qfit_quantize_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > 512) n = 512;
    return (int)n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    const qfit_gguf *g;
    const int64_t   *src_index;   /* output position -> source tensor index */
} qm_fill_ctx;

static const float *qm_fill(void *user, size_t ti, int64_t row0, int64_t nrows,
                            float *scratch, char *err, size_t err_len)
{
    const qm_fill_ctx *c = user;
    const qfit_gguf_tensor *t = qfit_gguf_tensor_at(c->g, c->src_index[ti]);
    const int64_t ne0 = t->ne[0];
    const size_t row_bytes = qfit_row_size(t->type, ne0);
    const uint8_t *src = (const uint8_t *)t->data + (size_t)row0 * row_bytes;
    const float *f;
    if (t->type == QFIT_TYPE_F32) {
        f = (const float *)src;
    } else {
        if (qfit_rows_to_float(t->type, src, scratch, nrows, ne0) != 0) {
            snprintf(err, err_len, "tensor '%.*s': cannot convert %s to float",
                     (int)t->name.len, t->name.data, qfit_type_name(t->type));
            return NULL;
        }
        f = scratch;
    }
    if (!qfit_qe_all_finite(f, nrows * ne0)) {
        /* find the row for the message */
        int64_t r = 0;
        while (r < nrows && qfit_qe_all_finite(f + r * ne0, ne0)) r++;
        snprintf(err, err_len, "tensor '%.*s' has a NaN or infinite weight in row %lld; refusing to quantize it",
                 (int)t->name.len, t->name.data, (long long)(row0 + r));
        return NULL;
    }
    return f;
}

typedef struct {
    const qfit_quantize_params *p;
} qm_progress_ctx;

static void qm_progress(void *user, size_t done, size_t total, uint64_t bytes_done,
                        uint64_t bytes_total, const char *name)
{
    const qm_progress_ctx *c = user;
    if (c->p->progress)
        c->p->progress(c->p->progress_user, (int64_t)done, (int64_t)total, bytes_done, bytes_total, name);
}

/* ggml_n_dims */
static uint32_t eff_dims(const qfit_gguf_tensor *t)
{
    uint32_t n = 1;
    for (uint32_t d = 1; d < QFIT_GGUF_MAX_DIMS && d < t->n_dims; d++)
        if (t->ne[d] > 1) n = d + 1;
    return n;
}

static bool same_file(const char *a, const char *b)
{
    if (strcmp(a, b) == 0) return true;
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0) return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The metadata llama-quantize adds for an importance matrix (as KV overrides,
 * after general.file_type; strings cut to 127 bytes as there, counts u32). */
static int set_imatrix_kv(qfit_gguf_writer *w, const qfit_quantize_params *p)
{
    char s[128];
    if (p->imatrix_file) {
        snprintf(s, sizeof s, "%s", p->imatrix_file);
        if (qfit_gguf_set_str(w, "quantize.imatrix.file", s) != 0) return -1;
    }
    if (p->imatrix->n_datasets > 0) {
        snprintf(s, sizeof s, "%s", p->imatrix->datasets[0]);
        if (qfit_gguf_set_str(w, "quantize.imatrix.dataset", s) != 0) return -1;
    }
    if (qfit_gguf_set_u32(w, "quantize.imatrix.entries_count", (uint32_t)p->imatrix->n_entries) != 0) return -1;
    if (p->imatrix->chunk_count > 0 &&
        qfit_gguf_set_u32(w, "quantize.imatrix.chunks_count", p->imatrix->chunk_count) != 0)
        return -1;
    return 0;
}

/* The importance weights for a tensor (malloc'd, ne0 * ne2 floats) in *out, or
 * NULL when it has no entry (or is token_embd.weight with a mismatched one, which
 * llama.cpp quantizes without). -1 on a size mismatch or out of memory. */
static int tensor_imatrix(const qfit_imatrix *im, const char *name, const qfit_gguf_tensor *t,
                          float **out, char *err, size_t err_len)
{
    *out = NULL;
    const qfit_imatrix_entry *e = qfit_imatrix_find(im, name);
    if (!e) return 0;
    const int64_t want = t->ne[0] * t->ne[2];
    if (e->n_per_mat * e->n_mat != want || t->ne[3] != 1) {
        if (strcmp(name, "token_embd.weight") == 0) return 0;
        snprintf(err, err_len, "importance matrix entry '%s' has %lld values, the tensor needs %lld (ne0 x ne2)",
                 name, (long long)(e->n_per_mat * e->n_mat), (long long)want);
        return -1;
    }
    *out = malloc((size_t)want * sizeof **out);
    if (!*out) { snprintf(err, err_len, "out of memory"); return -1; }
    qfit_imatrix_weights(e, *out);
    return 0;
}

/* The output's metadata: the input's, then what llama.cpp's quantizer adds. */
static int set_output_kv(qfit_gguf_writer *w, const qfit_gguf *g, const qfit_quantize_params *p,
                         char *err, size_t err_len)
{
    if (qfit_gguf_copy_all_kv(w, g) != 0) {
        snprintf(err, err_len, "cannot copy the input's metadata");
        return -1;
    }
    /* as llama.cpp: both keys are (re)appended at the end; split keys dropped */
    qfit_gguf_remove_key(w, "general.quantization_version");
    qfit_gguf_remove_key(w, "general.file_type");
    qfit_gguf_remove_key(w, "split.no");
    qfit_gguf_remove_key(w, "split.count");
    qfit_gguf_remove_key(w, "split.tensors.count");
    if (qfit_gguf_set_u32(w, "general.quantization_version", QFIT_QUANTIZATION_VERSION) != 0 ||
        qfit_gguf_set_u32(w, "general.file_type", (uint32_t)p->ftype) != 0 ||
        (p->imatrix && set_imatrix_kv(w, p) != 0)) {
        snprintf(err, err_len, "cannot set metadata");
        return -1;
    }
    return 0;
}

/* --target-size / --target-bpw: the tensor-data budget, then qfit_target_plan over the
 * mix's types. The file's bytes before the tensor data do not depend on the types, so
 * they are measured once with a writer that is never begun. */
static int plan_target(const qfit_gguf *g, const char *in_path, const qfit_quantize_params *p,
                       const size_t *order, int *types, qfit_quantize_stats *st, char *err, size_t err_len)
{
    if (!p->imatrix && !p->calibration) {
        snprintf(err, err_len, "quantizing to a size needs a calibration text (--calibrate) or an importance "
                 "matrix (--imatrix): they measure how much each tensor's rounding matters");
        return -1;
    }
    if (p->target_size && p->target_bpw > 0) {
        snprintf(err, err_len, "give a target size or a target bits per weight, not both");
        return -1;
    }
    const int64_t n = qfit_gguf_n_tensors(g);
    uint64_t budget;
    if (p->target_size) {
        qfit_gguf_writer *w = qfit_gguf_writer_new();
        if (!w) { snprintf(err, err_len, "out of memory"); return -1; }
        int rc = set_output_kv(w, g, p, err, err_len);
        for (int64_t k = 0; k < n && rc == 0; k++) {
            const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, (int64_t)order[k]);
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
            if (qfit_gguf_add_tensor(w, name, t->n_dims, t->ne, t->type) != 0) {
                snprintf(err, err_len, "cannot declare tensor '%s'", name);
                rc = -1;
            }
        }
        const uint64_t head = qfit_gguf_writer_data_offset(w);
        qfit_gguf_writer_free(w);
        if (rc != 0) return -1;
        if (p->target_size <= head) {
            snprintf(err, err_len, "target size %llu bytes is not even the metadata (%llu bytes)",
                     (unsigned long long)p->target_size, (unsigned long long)head);
            return -1;
        }
        budget = p->target_size - head;
    } else {
        uint64_t n_el = 0;
        for (int64_t i = 0; i < n; i++) n_el += (uint64_t)qfit_gguf_tensor_nelements(qfit_gguf_tensor_at(g, i));
        if (!(p->target_bpw <= 64.0)) {
            snprintf(err, err_len, "target bits per weight %g is out of range", p->target_bpw);
            return -1;
        }
        budget = (uint64_t)(p->target_bpw * (double)n_el / 8.0);
    }
    qfit_target_params tp;
    qfit_target_params_init(&tp);
    tp.budget = budget;
    tp.alignment = qfit_gguf_alignment(g);
    tp.imatrix = p->imatrix;
    tp.calibration = p->calibration;
    tp.measure_all = p->calibration_all;
    tp.model_path = in_path;
    tp.n_threads = p->n_threads;
    tp.progress = p->target_progress;
    tp.progress_user = p->progress_user;
    char perr[512];
    if (qfit_target_plan(g, &tp, types, &st->target, perr, sizeof perr) != 0) {
        snprintf(err, err_len, "quantize to a size: %s", perr);
        return -1;
    }
    st->n_target_planned = st->target.n_planned;
    return 0;
}

static bool type_writable(int type)
{
    if (type == QFIT_TYPE_F32 || type == QFIT_TYPE_F16 || type == QFIT_TYPE_BF16) return true;
    const qfit_type_traits *tr = qfit_type_get_traits(type);
    return tr && tr->can_quantize;
}

int qfit_quantize_model(const char *in_path, const char *out_path,
                        const qfit_quantize_params *params, qfit_quantize_stats *stats,
                        char *err, size_t err_len)
{
    char dummy[8];
    if (!err) { err = dummy; err_len = sizeof dummy; }
    err[0] = 0;
    if (!in_path || !out_path || !params) {
        snprintf(err, err_len, "invalid arguments");
        return -1;
    }
    const double t0 = now_s();
    const int ftype = params->ftype;
    if (!qfit_ftype_name(ftype)) {
        snprintf(err, err_len, "unknown file type %d (supported: %s)", ftype, qfit_ftype_supported_list());
        return -1;
    }
    if (!qfit_ftype_supported(ftype)) {
        snprintf(err, err_len, "qfit cannot write %s files (supported: %s)",
                 qfit_ftype_name(ftype), qfit_ftype_supported_list());
        return -1;
    }
    if (same_file(in_path, out_path)) {
        snprintf(err, err_len, "output '%s' is the input file; choose another output path", out_path);
        return -1;
    }
    int n_threads = params->n_threads > 0 ? params->n_threads : qfit_quantize_default_threads();

    char gerr[512];
    qfit_gguf *g = qfit_gguf_open(in_path, gerr, sizeof gerr);
    if (!g) {
        snprintf(err, err_len, "cannot read '%s': %s", in_path, gerr);
        return -1;
    }

    int rc = -1;
    const int64_t n = qfit_gguf_n_tensors(g);
    size_t *order = calloc((size_t)n + 1, sizeof *order);
    int *types = calloc((size_t)n + 1, sizeof *types);
    int64_t *src_index = calloc((size_t)n + 1, sizeof *src_index);
    qfit_qe_tensor *qt = calloc((size_t)n + 1, sizeof *qt);
    char *names = NULL;
    qfit_gguf_writer *w = NULL;
    float **weights = calloc((size_t)n + 1, sizeof *weights);
    qfit_quantize_stats st;
    memset(&st, 0, sizeof st);
    if (!order || !types || !src_index || !qt || !weights) {
        snprintf(err, err_len, "out of memory");
        goto done;
    }

    int n_fallback = 0;
    if (qfit_mix_plan_gguf_imatrix(g, ftype, params->imatrix != NULL, order, types, &n_fallback,
                                   gerr, sizeof gerr) < 0) {
        snprintf(err, err_len, "'%s': %s", in_path, gerr);
        goto done;
    }
    if (params->target_size || params->target_bpw > 0) {
        if (plan_target(g, in_path, params, order, types, &st, err, err_len) < 0) goto done;
    }

    /* NUL-terminated names */
    size_t name_total = 0;
    for (int64_t i = 0; i < n; i++) name_total += qfit_gguf_tensor_at(g, i)->name.len + 1;
    names = malloc(name_total + 1);
    if (!names) { snprintf(err, err_len, "out of memory"); goto done; }

    w = qfit_gguf_writer_new();
    if (!w) { snprintf(err, err_len, "out of memory"); goto done; }
    if (set_output_kv(w, g, params, err, err_len) != 0) goto done;

    char *np = names;
    for (int64_t k = 0; k < n; k++) {
        const int64_t si = (int64_t)order[k];
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, si);
        memcpy(np, t->name.data, t->name.len);
        np[t->name.len] = 0;
        const int ot = types[si];
        int64_t rows = 1;
        for (uint32_t d = 1; d < QFIT_GGUF_MAX_DIMS; d++) rows *= t->ne[d];
        src_index[k] = si;
        qt[k].name = np;
        qt[k].ne0 = t->ne[0];
        qt[k].nrows = rows;
        qt[k].out_type = ot;
        np += t->name.len + 1;

        st.n_elements += qfit_gguf_tensor_nelements(t);
        st.data_in += t->nbytes;
        if (ot == t->type) {
            qt[k].copy = t->data;
            qt[k].nbytes = t->nbytes;
        } else {
            if (t->type != QFIT_TYPE_F32 && t->type != QFIT_TYPE_F16 && t->type != QFIT_TYPE_BF16) {
                snprintf(err, err_len, "tensor '%s' is %s; qfit quantize needs F32, F16 or BF16 weights "
                         "(it does not requantize already-quantized models)", qt[k].name, qfit_type_name(t->type));
                goto done;
            }
            if (!type_writable(ot)) {
                snprintf(err, err_len, "tensor '%s' needs type %s, which qfit cannot produce",
                         qt[k].name, qfit_type_name(ot));
                goto done;
            }
            size_t nb = qfit_tensor_nbytes(ot, t->ne[0], rows);
            if (nb == SIZE_MAX) {
                snprintf(err, err_len, "tensor '%s': row length %lld does not fit type %s",
                         qt[k].name, (long long)t->ne[0], qfit_type_name(ot));
                goto done;
            }
            qt[k].nbytes = nb;
            st.n_quantized++;
            if (params->imatrix && qfit_type_uses_imatrix(ot)) {
                if (tensor_imatrix(params->imatrix, qt[k].name, t, &weights[k], err, err_len) < 0) goto done;
                qt[k].imatrix = weights[k];
                qt[k].imatrix_rows = t->ne[1];
                if (weights[k]) st.n_imatrix++;
                else st.n_no_imatrix++;
            }
        }
        st.data_out += qt[k].nbytes;
        if (ot >= 0 && ot < 64) st.type_count[ot]++;
        if (qfit_gguf_add_tensor(w, qt[k].name, eff_dims(t), t->ne, ot) != 0) {
            snprintf(err, err_len, "cannot declare tensor '%s'", qt[k].name);
            goto done;
        }
    }

    if (qfit_gguf_writer_begin(w, out_path, gerr, sizeof gerr) != 0) {
        snprintf(err, err_len, "cannot create '%s': %s", out_path, gerr);
        goto done;
    }
    qm_fill_ctx fc = { g, src_index };
    qm_progress_ctx pc = { params };
    if (qfit_qe_run(w, qt, (size_t)n, n_threads, qm_fill, &fc, qm_progress, &pc, gerr, sizeof gerr) != 0) {
        snprintf(err, err_len, "%s", gerr);
        goto done;
    }
    if (qfit_gguf_writer_finish(w, gerr, sizeof gerr) != 0) {
        snprintf(err, err_len, "cannot write '%s': %s", out_path, gerr);
        goto done;
    }

    st.n_tensors = n;
    st.n_fallback = n_fallback;
    st.n_threads = n_threads;
    st.file_in = qfit_gguf_file_size(g);
    struct stat sb;
    st.file_out = stat(out_path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    st.seconds = now_s() - t0;
    rc = 0;

done:
    qfit_gguf_writer_free(w);   /* removes an unfinished temporary file */
    if (rc == 0 && stats) *stats = st;
    free(names);
    if (weights)
        for (int64_t k = 0; k < n; k++) free(weights[k]);
    free(weights);
    free(qt);
    free(src_index);
    free(types);
    free(order);
    qfit_gguf_close(g);
    return rc;
}
