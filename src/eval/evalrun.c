/* qfit eval: the quality / size / speed table of quantized copies of one model
 * (see the qfit eval section of include/qfit/eval.h for the definitions). */
#include "qfit/eval.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "qfit/quantize.h"
#include "qfit/tokenizer.h"

void qfit_eval_params_init(qfit_eval_params *p)
{
    memset(p, 0, sizeof *p);
    p->n_ctx = 512;
    p->n_chunks = -1;
    p->speed = true;
    p->speed_pp = 512;
    p->speed_tg = 128;
    p->speed_reps = 3;
}

void qfit_eval_result_free(qfit_eval_result *res)
{
    if (!res) return;
    free(res->rows);
    memset(res, 0, sizeof *res);
}

/* ---------------------------------------------------------------- the run */

char *qfit_eval_read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, k;
    char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; }
            else buf = nb;
        }
    }
    const int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); return NULL; }
    if (buf) *len = n;
    return buf;
}

int qfit_eval_tokenize_file(const qfit_gguf *g, const char *path, int32_t **ids, size_t *n_ids,
                            int32_t *bos, char *err, size_t err_len)
{
    char e[512];
    *ids = NULL;
    *n_ids = 0;
    qfit_tokenizer *tok = qfit_tokenizer_from_gguf(g, e, sizeof e);
    if (!tok) { snprintf(err, err_len, "tokenizer: %s", e); return -1; }
    int rc = -1;
    size_t len = 0;
    char *text = NULL;
    if (qfit_tokenizer_add_eos(tok)) {
        snprintf(err, err_len, "the vocabulary adds EOS; not supported (as llama.cpp)");
        goto out;
    }
    text = qfit_eval_read_text(path, &len);
    if (!text) { snprintf(err, err_len, "cannot read %s", path); goto out; }
    if (len > 0 && text[len - 1] == '\n') len--;   /* as llama.cpp's -f */
    if (qfit_tokenize_alloc(tok, text, len, true, false, ids, n_ids) != 0) {
        snprintf(err, err_len, "cannot tokenize %s", path);
        goto out;
    }
    *bos = qfit_tokenizer_add_bos(tok) ? qfit_tokenizer_bos(tok) : -1;
    rc = 0;
out:
    free(text);
    qfit_tokenizer_free(tok);
    return rc;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* row->path = path, or -1 with a message when it does not fit */
static int set_path(qfit_eval_row *row, const char *path, char *err, size_t err_len)
{
    if ((size_t)snprintf(row->path, sizeof row->path, "%s", path) < sizeof row->path) return 0;
    snprintf(err, err_len, "eval: path longer than %zu bytes: %.80s...", sizeof row->path - 1, path);
    return -1;
}

typedef struct {
    const qfit_eval_params *p;
    int step, n_steps;
} run_state;

static void progress(run_state *st, const char *fmt, const char *name)
{
    if (!st->p->progress) return;
    char label[128];
    snprintf(label, sizeof label, fmt, name);
    st->p->progress(st->p->progress_user, st->step, st->n_steps, label);
}

static bool stopped(const run_state *st) { return st->p->stop && *st->p->stop; }

/* Perplexity (and KLD against base_logits, or saving them when save) and speed of one
 * file into row. Returns 0, 1 when stopped between the steps, -1 on error. */
static int eval_file(run_state *st, qfit_eval_result *res, const int32_t *ids, size_t n_ids, int32_t bos,
                     const char *logits, bool save, qfit_eval_row *row, char *err, size_t err_len)
{
    const qfit_eval_params *p = st->p;
    char e[400];
    struct stat sb;
    if (stat(row->path, &sb) != 0) { snprintf(err, err_len, "%s: %s", row->path, strerror(errno)); return -1; }
    row->file_bytes = (uint64_t)sb.st_size;
    progress(st, "perplexity %s", row->name);
    qfit_model *m = qfit_model_load(row->path, e, sizeof e);
    if (!m) { snprintf(err, err_len, "%s: %s", row->name, e); return -1; }
    row->tensor_bytes = qfit_model_weight_bytes(m);
    row->n_params = qfit_model_n_params(m);
    row->bpw = row->n_params ? 8.0 * (double)row->tensor_bytes / (double)row->n_params : 0.0;
    int rc = -1;
    qfit_context_params cp = qfit_context_default_params();
    cp.n_ctx = cp.n_batch = p->n_ctx;
    cp.n_threads = p->n_threads;
    qfit_context *c = qfit_context_new(m, &cp, e, sizeof e);
    if (!c) { snprintf(err, err_len, "%s: %s", row->name, e); goto out; }
    res->n_threads = qfit_context_n_threads(c);
    qfit_ppl_params pp;
    qfit_ppl_params_init(&pp);
    pp.n_ctx = p->n_ctx;
    pp.n_chunks = p->n_chunks;
    pp.bos = bos;
    if (save) pp.save_logits = logits;
    else pp.kld_base = logits;
    qfit_ppl_result r;
    if (qfit_perplexity(c, ids, n_ids, &pp, &r, e, sizeof e) != 0) {
        snprintf(err, err_len, "%s: perplexity: %s", row->name, e);
        goto out;
    }
    qfit_context_free(c);
    c = NULL;
    st->step++;
    row->ppl = r.ppl;
    row->ppl_err = r.ppl_err;
    res->n_chunks = r.n_chunks;
    res->n_scored = r.n_scored;
    if (save) {
        row->same_top_pct = 100.0;
    } else {
        row->kld_mean = r.kld_mean;
        row->kld_err = r.kld_err;
        row->kld_p99 = r.kld_p99;
        row->same_top_pct = r.same_top_pct;
    }
    row->retention_pct = 100.0 * exp(-row->kld_mean);
    if (p->speed) {
        if (stopped(st)) { rc = 1; goto out; }
        progress(st, "speed %s", row->name);
        qfit_context_params sp = qfit_context_default_params();
        sp.n_ctx = p->speed_pp > p->speed_tg ? p->speed_pp : p->speed_tg;
        sp.n_batch = p->speed_pp > 0 && p->speed_pp < 512 ? p->speed_pp : 512;
        sp.n_threads = p->n_threads;
        c = qfit_context_new(m, &sp, e, sizeof e);
        if (!c || qfit_speed_measure(c, p->speed_pp, p->speed_tg, p->speed_reps, &row->pp_tps, &row->tg_tps, e,
                                     sizeof e) != 0) {
            snprintf(err, err_len, "%s: %s", row->name, e);
            goto out;
        }
        row->has_speed = true;
        st->step++;
    }
    rc = 0;
out:
    qfit_context_free(c);
    qfit_model_free(m);
    return rc;
}

int qfit_eval_run(const qfit_eval_params *p, qfit_eval_result *res, char *err, size_t err_len)
{
    memset(res, 0, sizeof *res);
    res->n_ctx = p->n_ctx;
    res->speed_pp = p->speed ? p->speed_pp : 0;
    res->speed_tg = p->speed ? p->speed_tg : 0;
    if (!p->model_path || !p->text_path || !p->work_dir || p->n_ctx < 4 || p->n_ftypes < 0 || p->n_files < 0) {
        snprintf(err, err_len, "eval: model, text, work directory and a context of at least 4 tokens are required");
        return -1;
    }
    for (int i = 0; i < p->n_ftypes; i++)
        if (!qfit_ftype_supported(p->ftypes[i])) {
            snprintf(err, err_len, "eval: type %d (%s) cannot be written; supported: %s", p->ftypes[i],
                     qfit_ftype_name(p->ftypes[i]) ? qfit_ftype_name(p->ftypes[i]) : "unknown",
                     qfit_ftype_supported_list());
            return -1;
        }
    const int n_rows = 1 + p->n_ftypes + p->n_files;
    res->rows = calloc((size_t)n_rows, sizeof *res->rows);
    if (!res->rows) { snprintf(err, err_len, "eval: out of memory"); return -1; }
    run_state st = { .p = p, .step = 0,
                     .n_steps = n_rows * (p->speed ? 2 : 1) + p->n_ftypes };

    char e[400], logits[600];
    int rc = -1;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int32_t bos = -1;
    bool made_logits = false;
    if ((size_t)snprintf(logits, sizeof logits, "%s/eval-base.logits", p->work_dir) >= sizeof logits) {
        snprintf(err, err_len, "eval: work directory path too long: %.80s...", p->work_dir);
        goto out;
    }

    /* tokens with the base model's tokenizer, as qfit ppl / llama-perplexity do */
    {
        qfit_gguf *g = qfit_gguf_open(p->model_path, e, sizeof e);
        if (!g) { snprintf(err, err_len, "eval: %s", e); goto out; }
        const int bad = qfit_eval_tokenize_file(g, p->text_path, &ids, &n_ids, &bos, e, sizeof e);
        qfit_gguf_close(g);
        if (bad) { snprintf(err, err_len, "eval: %s", e); goto out; }
    }

    qfit_eval_row *base = &res->rows[0];
    snprintf(base->name, sizeof base->name, "base");
    if (set_path(base, p->model_path, err, err_len) != 0) goto out;
    base->is_base = true;
    made_logits = true;
    int r = eval_file(&st, res, ids, n_ids, bos, logits, true, base, err, err_len);
    if (r < 0) goto out;
    res->n_rows = 1;   /* stopped before its speed step (r == 1): kept, without speed */
    for (int i = 0; r == 0 && i < p->n_ftypes + p->n_files; i++) {
        if (stopped(&st)) { r = 1; break; }
        qfit_eval_row *row = &res->rows[res->n_rows];
        const bool quantize = i < p->n_ftypes;
        if (quantize) {
            snprintf(row->name, sizeof row->name, "%s", qfit_ftype_name(p->ftypes[i]));
            char path[1024];
            snprintf(path, sizeof path, "%s/eval-%s.gguf", p->work_dir, row->name);
            if (set_path(row, path, err, err_len) != 0) goto out;
            progress(&st, "quantize %s", row->name);
            qfit_quantize_params qp;
            memset(&qp, 0, sizeof qp);
            qp.ftype = p->ftypes[i];
            qp.n_threads = p->n_threads;
            qp.imatrix = p->imatrix;
            qp.imatrix_file = p->imatrix_file;
            if (qfit_quantize_model(p->model_path, row->path, &qp, NULL, e, sizeof e) != 0) {
                snprintf(err, err_len, "eval: quantize %s: %s", row->name, e);
                goto out;
            }
            st.step++;
            if (stopped(&st)) { r = 1; if (!p->keep) unlink(row->path); break; }
        } else {
            const char *f = p->files[i - p->n_ftypes];
            snprintf(row->name, sizeof row->name, "%s", base_name(f));
            if (set_path(row, f, err, err_len) != 0) goto out;
        }
        r = eval_file(&st, res, NULL, 0, bos, logits, false, row, err, err_len);
        if (quantize && !p->keep) unlink(row->path);
        if (r < 0) { snprintf(e, sizeof e, "%s", err); snprintf(err, err_len, "eval: %s", e); goto out; }
        row->dppl_pct = 100.0 * (row->ppl / base->ppl - 1.0);
        res->n_rows++;   /* a row stopped before its speed step is kept, without speed */
    }
    res->interrupted = r == 1 && res->n_rows < n_rows;
    st.step = st.n_steps;
    progress(&st, "%s", "");
    rc = 0;
out:
    if (made_logits && !p->keep) unlink(logits);
    free(ids);
    return rc;
}

/* ---------------------------------------------------------------- output */

#define RETENTION_DEF "quality retention = 100 * exp(-mean KLD): the geometric mean, over the base model's " \
    "next-token distributions, of the copy's probability of a token relative to the base's (100 = identical)"

void qfit_eval_print_table(FILE *f, const qfit_eval_result *res)
{
    fprintf(f, "| model | size MiB | bpw | PPL | ΔPPL %% | mean KLD | KLD p99 | same top %% | retention %% | pp t/s | tg t/s |\n"
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < res->n_rows; i++) {
        const qfit_eval_row *w = &res->rows[i];
        char pp[32] = "-", tg[32] = "-";
        if (w->has_speed) {
            snprintf(pp, sizeof pp, "%.1f", w->pp_tps);
            snprintf(tg, sizeof tg, "%.1f", w->tg_tps);
        }
        fprintf(f, "| %s | %.2f | %.3f | %.4f ± %.4f | %+.3f | %.6f | %.6f | %.3f | %.3f | %s | %s |\n",
                w->is_base ? "base (full precision)" : w->name, (double)w->file_bytes / (1 << 20), w->bpw, w->ppl,
                w->ppl_err, w->dppl_pct, w->kld_mean, w->kld_p99, w->same_top_pct, w->retention_pct, pp, tg);
    }
    fprintf(f, "\n%d chunks of %d tokens, %ld tokens scored, %d threads%s\n", res->n_chunks, res->n_ctx,
            res->n_scored, res->n_threads, res->interrupted ? "; INTERRUPTED: the rows done so far" : "");
    fprintf(f, "size: file bytes; bpw = 8 * tensor bytes / parameters; ΔPPL = 100 * (PPL / base PPL - 1);\n"
               "KLD: KL(base || copy) in nats per scored token (mean, 99th percentile); same top: %% of tokens\n"
               "whose most likely next token is the base's; %s", RETENTION_DEF);
    if (res->speed_pp || res->speed_tg)
        fprintf(f, ";\npp: one batch of %d tokens, tg: %d single-token decodes, tokens/s (llama-bench procedure)",
                res->speed_pp, res->speed_tg);
    fprintf(f, "\n");
}

char *qfit_eval_json(const qfit_eval_result *res)
{
    json_t *rows = json_array();
    json_t *defs = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
        "bpw", "8 * tensor_bytes / n_params",
        "dppl_pct", "100 * (ppl / base ppl - 1)",
        "kld", "KL(base || copy) in nats per scored token: kld_mean, kld_p99 (99th percentile)",
        "same_top_pct", "% of scored tokens whose most likely next token is the base model's",
        "retention_pct", RETENTION_DEF,
        "speed", "pp_tps: one batch of speed_pp tokens, tg_tps: speed_tg single-token decodes, tokens/s; null: not measured");
    json_t *o = json_pack("{s:i, s:i, s:I, s:i, s:b, s:i, s:i, s:o, s:o}", "n_ctx", res->n_ctx, "n_chunks",
                          res->n_chunks, "n_scored", (json_int_t)res->n_scored, "threads", res->n_threads,
                          "interrupted", res->interrupted, "speed_pp", res->speed_pp, "speed_tg", res->speed_tg,
                          "definitions", defs, "rows", rows);
    if (!o) return NULL;
    for (int i = 0; i < res->n_rows; i++) {
        const qfit_eval_row *w = &res->rows[i];
        json_t *r = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
                              "name", w->name, "path", w->path, "base", w->is_base, "file_bytes",
                              (json_int_t)w->file_bytes, "tensor_bytes", (json_int_t)w->tensor_bytes, "n_params",
                              (json_int_t)w->n_params, "bpw", w->bpw, "ppl", w->ppl, "ppl_err", w->ppl_err,
                              "dppl_pct", w->dppl_pct, "kld_mean", w->kld_mean, "kld_err", w->kld_err, "kld_p99",
                              w->kld_p99, "same_top_pct", w->same_top_pct, "retention_pct", w->retention_pct);
        if (!r || json_object_set_new(r, "pp_tps", w->has_speed ? json_real(w->pp_tps) : json_null()) ||
            json_object_set_new(r, "tg_tps", w->has_speed ? json_real(w->tg_tps) : json_null()) ||
            json_array_append_new(rows, r)) {
            json_decref(o);
            return NULL;
        }
    }
    char *s = json_dumps(o, JSON_INDENT(1));
    json_decref(o);
    return s;
}
