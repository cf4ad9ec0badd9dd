/* Embeddings (qfit/embed.h): each input evaluated as its own sequence in
 * embeddings mode (the engine writes final-normed hidden rows instead of
 * logits), pooled, truncated to the asked dimensions and L2-normalised. */
#include "qfit/embed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "qfit/gguf.h"

static const char *const pooling_names[] = { "none", "mean", "cls", "last", "rank" };
#define N_POOLING ((int)(sizeof pooling_names / sizeof *pooling_names))

const char *qfit_pooling_name(qfit_pooling p)
{
    return (int)p >= 0 && (int)p < N_POOLING ? pooling_names[p] : "?";
}

qfit_pooling qfit_pooling_from_name(const char *name)
{
    for (int i = 0; name && i < N_POOLING; i++)
        if (!strcasecmp(name, pooling_names[i])) return (qfit_pooling)i;
    return QFIT_POOLING_UNSPECIFIED;
}

int qfit_model_pooling(const qfit_model *m, qfit_pooling *out, char *err, size_t err_len)
{
    char dummy[8];
    if (!err || !err_len) { err = dummy; err_len = sizeof dummy; }
    const qfit_gguf *g = qfit_model_gguf(m);
    char key[64];
    snprintf(key, sizeof key, "%s.pooling_type", qfit_model_hparams(m)->arch_name);
    const int64_t ki = qfit_gguf_find_key(g, key);
    if (ki < 0) { *out = QFIT_POOLING_MEAN; return 0; }
    int64_t v;
    if (!qfit_gguf_get_int(g, ki, &v) || v < 0 || v >= N_POOLING) {
        snprintf(err, err_len, "%s is not a pooling type (an integer: 0 none, 1 mean, 2 cls, 3 last, 4 rank)", key);
        return -1;
    }
    *out = (qfit_pooling)v;
    return 0;
}

void qfit_embed_params_init(qfit_embed_params *p)
{
    memset(p, 0, sizeof *p);
    p->pooling = QFIT_POOLING_UNSPECIFIED;
    p->normalize = true;
}

int qfit_embed_dims(const qfit_model *m, const qfit_embed_params *p, char *err, size_t err_len)
{
    char dummy[8];
    if (!err || !err_len) { err = dummy; err_len = sizeof dummy; }
    const int E = qfit_model_hparams(m)->n_embd;
    const int k = p ? p->dimensions : 0;
    if (k == 0) return E;
    if (k < 1 || k > E) {
        snprintf(err, err_len, "dimensions %d is out of range: the model's embeddings have %d (1 .. %d)", k, E, E);
        return -1;
    }
    return k;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Evaluate ids[0..n) as one sequence from position 0 and pool the final-normed
 * rows into v (n_embd floats). Every row of every pass is output (the norm is
 * cheap; no vocabulary projection), so mean, cls and last see the same rows. */
static int embed_one(qfit_context *c, const int32_t *ids, int n, const qfit_embed_params *p, qfit_pooling pooling,
                     double *sum, float *v, char *err, size_t err_len, size_t idx)
{
    const qfit_hparams *hp = qfit_model_hparams(qfit_context_model(c));
    const int E = hp->n_embd;
    /* an encoder takes an input whole in one pass (the engine names n_batch if it is too small) */
    const qfit_arch_info *ai = qfit_arch_find(hp->arch_name);
    const int nb_max = ai && ai->embd_only ? n : qfit_context_n_batch(c);
    qfit_context_reset(c);
    for (int i = 0; i < E; i++) sum[i] = 0.0;
    for (int done = 0; done < n;) {
        const int nb = n - done < nb_max ? n - done : nb_max;
        if (p->should_abort && p->should_abort(p->abort_user)) {
            snprintf(err, err_len, "cancelled at input %zu", idx);
            return -1;
        }
        if (qfit_decode(c, ids + done, nb, 0) != 0) {
            snprintf(err, err_len, "input %zu: %s", idx, qfit_context_error(c));
            return -1;
        }
        for (int j = 0; j < nb; j++) {
            const float *row = qfit_get_embeddings(c, j);
            const int t = done + j;
            if (pooling == QFIT_POOLING_MEAN) {
                for (int i = 0; i < E; i++) sum[i] += row[i];
            } else if ((pooling == QFIT_POOLING_CLS && t == 0) || (pooling == QFIT_POOLING_LAST && t == n - 1)) {
                memcpy(v, row, (size_t)E * sizeof *v);
            }
        }
        done += nb;
    }
    if (pooling == QFIT_POOLING_MEAN)
        for (int i = 0; i < E; i++) v[i] = (float)(sum[i] / n);
    return 0;
}

/* Pool rows row0 .. row0+n-1 of the last decode (one input, all its tokens) into v. */
static void pool_rows(const qfit_context *c, int row0, int n, qfit_pooling pooling, double *sum, float *v)
{
    const int E = qfit_model_hparams(qfit_context_model(c))->n_embd;
    if (pooling == QFIT_POOLING_MEAN) {
        for (int i = 0; i < E; i++) sum[i] = 0.0;
        for (int j = 0; j < n; j++) {
            const float *row = qfit_get_embeddings(c, row0 + j);
            for (int i = 0; i < E; i++) sum[i] += row[i];
        }
        for (int i = 0; i < E; i++) v[i] = (float)(sum[i] / n);
    } else {
        memcpy(v, qfit_get_embeddings(c, row0 + (pooling == QFIT_POOLING_CLS ? 0 : n - 1)), (size_t)E * sizeof *v);
    }
}

/* The first k values of v into dst, L2-normalised when asked (a zero vector stays zero). */
static void finish_vector(const float *v, int k, bool normalize, float *dst)
{
    double ss = 0.0;
    for (int i = 0; i < k; i++) ss += (double)v[i] * v[i];
    const double scale = normalize && ss > 0.0 ? 1.0 / sqrt(ss) : 1.0;
    for (int i = 0; i < k; i++) dst[i] = (float)(v[i] * scale);
}

int qfit_embed(qfit_context *c, const qfit_tokenizer *tok, const char *const *inputs, size_t n,
               const qfit_embed_params *pp, float *out, qfit_embed_item *items, qfit_embed_result *res,
               char *err, size_t err_len)
{
    char dummy[8];
    if (!err || !err_len) { err = dummy; err_len = sizeof dummy; }
    const uint64_t t0 = now_ns();
    qfit_embed_params p;
    if (pp) p = *pp;
    else qfit_embed_params_init(&p);
    if (!c || !tok) { snprintf(err, err_len, "no context or tokenizer"); return -1; }
    const qfit_model *m = qfit_context_model(c);
    const int E = qfit_model_hparams(m)->n_embd;
    const int dims = qfit_embed_dims(m, &p, err, err_len);
    if (dims < 0) return -1;
    qfit_pooling pooling = p.pooling;
    if (pooling == QFIT_POOLING_UNSPECIFIED && qfit_model_pooling(m, &pooling, err, err_len) != 0) return -1;
    if (pooling != QFIT_POOLING_MEAN && pooling != QFIT_POOLING_CLS && pooling != QFIT_POOLING_LAST) {
        snprintf(err, err_len, "pooling '%s' (%d) is not supported for one vector per input (mean, cls or last)%s",
                 qfit_pooling_name(pooling), (int)pooling,
                 pooling == QFIT_POOLING_NONE ? ": 'none' gives one vector per token" : "");
        return -1;
    }
    if (n > 0 && (!inputs || !out)) { snprintf(err, err_len, "no inputs or no output buffer"); return -1; }
    if (res) {
        memset(res, 0, sizeof *res);
        res->n_dims = dims;
        res->pooling = pooling;
    }
    if (n == 0) return 0;

    const int n_ctx = qfit_context_n_ctx(c);
    const bool was_embd = qfit_context_embeddings(c);
    double *sum = malloc((size_t)E * sizeof *sum);
    float *v = malloc((size_t)E * sizeof *v);
    int32_t **ids = NULL;   /* each input's tokens */
    int *nts = NULL;        /* and how many are evaluated */
    struct { int32_t *tok; int *seq; bool *want; } pack = { 0 };
    int rc = -1;
    if (!sum || !v) { snprintf(err, err_len, "out of memory"); goto done; }
    qfit_set_embeddings(c, true);
    /* tokenize everything first: errors come before any evaluation */
    if (!(ids = calloc(n, sizeof *ids)) || !(nts = calloc(n, sizeof *nts))) {
        snprintf(err, err_len, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (!inputs[i]) { snprintf(err, err_len, "input %zu is NULL", i); goto done; }
        size_t nt = 0;
        if (qfit_tokenize_alloc(tok, inputs[i], strlen(inputs[i]), true, true, &ids[i], &nt) != 0) {
            snprintf(err, err_len, "input %zu: tokenization failed (out of memory?)", i);
            goto done;
        }
        if (nt == 0) {
            snprintf(err, err_len, "input %zu is empty: it has no tokens (the model adds no BOS/EOS)", i);
            goto done;
        }
        int dropped = 0;
        if (nt > (size_t)n_ctx) {
            if (!p.truncate) {
                snprintf(err, err_len, "input %zu has %zu tokens, more than the context length of %d tokens "
                         "(truncate keeps the first %d)", i, nt, n_ctx, n_ctx);
                goto done;
            }
            dropped = (int)(nt - (size_t)n_ctx);
            nt = (size_t)n_ctx;
        }
        nts[i] = (int)nt;
        if (items) { items[i].n_tokens = (int)nt; items[i].n_truncated = dropped; }
        if (res) { res->prompt_eval_count += (int64_t)nt; res->n_truncated += dropped; }
    }
    const int n_seq = qfit_context_n_seq(c), n_batch = qfit_context_n_batch(c);
    for (size_t i = 0; i < n;) {
        /* a context of several sequences: inputs that fit one pass together go in one
         * batch, each as its own sequence; a longer input (or one sequence) alone */
        size_t j = i;
        int total = 0;
        while (n_seq > 1 && j < n && (int)(j - i) < n_seq && total + nts[j] <= n_batch) total += nts[j++];
        if (j - i >= 2) {
            if (p.should_abort && p.should_abort(p.abort_user)) {
                snprintf(err, err_len, "cancelled at input %zu", i);
                goto done;
            }
            if (!pack.tok && (!(pack.tok = malloc((size_t)n_batch * sizeof *pack.tok)) ||
                              !(pack.seq = malloc((size_t)n_batch * sizeof *pack.seq)) ||
                              !(pack.want = malloc((size_t)n_batch * sizeof *pack.want)))) {
                snprintf(err, err_len, "out of memory");
                goto done;
            }
            int k = 0;
            for (size_t q = i; q < j; q++)
                for (int t = 0; t < nts[q]; t++, k++) {
                    pack.tok[k] = ids[q][t];
                    pack.seq[k] = (int)(q - i);
                    pack.want[k] = true;
                }
            qfit_context_reset(c);
            const qfit_batch b = { .n_tokens = k, .token = pack.tok, .seq = pack.seq, .logits = pack.want };
            if (qfit_decode_batch(c, &b) != 0) {
                snprintf(err, err_len, "inputs %zu..%zu: %s", i, j - 1, qfit_context_error(c));
                goto done;
            }
            int row = 0;
            for (size_t q = i; q < j; row += nts[q], q++) {
                pool_rows(c, row, nts[q], pooling, sum, v);
                finish_vector(v, dims, p.normalize, out + q * (size_t)dims);
            }
            i = j;
            continue;
        }
        if (embed_one(c, ids[i], nts[i], &p, pooling, sum, v, err, err_len, i) != 0) goto done;
        finish_vector(v, dims, p.normalize, out + i * (size_t)dims);
        i++;
    }
    rc = 0;
done:
    qfit_context_reset(c);
    qfit_set_embeddings(c, was_embd);
    for (size_t i = 0; ids && i < n; i++) free(ids[i]);
    free(ids);
    free(nts);
    free(pack.tok);
    free(pack.seq);
    free(pack.want);
    free(sum);
    free(v);
    if (res) res->total_ns = now_ns() - t0;
    return rc;
}
