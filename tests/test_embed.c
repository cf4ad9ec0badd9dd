/* Suite `embed`: pooled embeddings (include/qfit/embed.h) on the shared model.
 * References: llama.cpp's own pooled embeddings of five texts (tests/data/embed,
 * made by peer-embed.c against the peer harness: see its README), and the
 * engine's per-token final-normed rows, checked against the logits they are
 * projected to. Batch = single is asserted bit for bit. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/embed.h"
#include "qfit/gguf.h"
#include "qfit/model.h"
#include "qfit/tokenizer.h"
#include "util/testutil.h"

/* The texts of tests/data/embed/make-refs.sh, in the same order. */
static const char *const EMBED_TEXTS[] = {
    "In the beginning God created the heaven and the earth.",
    "Jesus wept.",
    "And God said, Let there be light: and there was light.",
    "light",
    "And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God "
    "moved upon the face of the waters. And God saw the light, that it was good: and God divided the light from the "
    "darkness.",
};
#define N_TEXTS 5
/* llama.cpp's token counts of the texts (kjv-f32.txt) */
static const int REF_TOKENS[N_TEXTS] = { 15, 5, 15, 2, 62 };

static qfit_model *M;
static qfit_tokenizer *T;
static int E;

static const char *model_path(void) { return tu_shared_path("models/kjv-llama-7m-f32.gguf"); }

static void setup(void)
{
    char err[512] = "";
    M = qfit_model_load(model_path(), err, sizeof err);
    cr_assert(M, "%s", err);
    T = qfit_tokenizer_from_gguf(qfit_model_gguf(M), err, sizeof err);
    cr_assert(T, "%s", err);
    E = qfit_model_hparams(M)->n_embd;
}

static void teardown(void)
{
    qfit_tokenizer_free(T);
    qfit_model_free(M);
}

static qfit_context *ctx(int n_ctx, int n_batch)
{
    qfit_context_params cp = qfit_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.n_threads = 2;
    char err[256] = "";
    qfit_context *c = qfit_context_new(M, &cp, err, sizeof err);
    cr_assert(c, "%s", err);
    return c;
}

/* qfit_embed of texts[0..n) with pooling/normalize; vectors malloc'd (n x E) */
static float *embed(qfit_context *c, const char *const *texts, size_t n, qfit_pooling pool, bool normalize,
                    qfit_embed_item *items)
{
    qfit_embed_params p;
    qfit_embed_params_init(&p);
    p.pooling = pool;
    p.normalize = normalize;
    float *out = malloc(n * (size_t)E * sizeof *out);
    char err[256] = "";
    qfit_embed_result res;
    cr_assert_eq(qfit_embed(c, T, texts, n, &p, out, items, &res, err, sizeof err), 0, "%s", err);
    cr_assert_eq(res.n_dims, E);
    cr_assert_eq(res.pooling, pool == QFIT_POOLING_UNSPECIFIED ? QFIT_POOLING_MEAN : pool);
    return out;
}

static double cosine(const float *a, const float *b, int n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) { ab += (double)a[i] * b[i]; aa += (double)a[i] * a[i]; bb += (double)b[i] * b[i]; }
    return ab / sqrt(aa * bb);
}

static double l2(const float *a, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * a[i];
    return sqrt(s);
}

static double max_abs_diff(const float *a, const float *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) if (fabs((double)a[i] - b[i]) > m) m = fabs((double)a[i] - b[i]);
    return m;
}

static float *read_ref(const char *pool)
{
    char path[256];
    snprintf(path, sizeof path, "tests/data/embed/kjv-f32.%s.f32", pool);
    size_t size = 0;
    float *r = tu_read_file(path, &size);
    cr_assert(r, "cannot read %s", path);
    cr_assert_eq(size, (size_t)N_TEXTS * (size_t)E * sizeof(float), "%s: %zu bytes", path, size);
    return r;
}

/* Per-token final-normed rows of text (engine in embeddings mode, every row output). */
static float *token_rows(qfit_context *c, const char *text, int max_tokens, int *n_out)
{
    int32_t *ids = NULL;
    size_t n = 0;
    cr_assert_eq(qfit_tokenize_alloc(T, text, strlen(text), true, true, &ids, &n), 0);
    if ((int)n > max_tokens) n = (size_t)max_tokens;
    qfit_context_reset(c);
    qfit_set_embeddings(c, true);
    cr_assert_eq(qfit_decode(c, ids, (int)n, 0), 0, "%s", qfit_context_error(c));
    cr_assert_eq(qfit_n_logits(c), (int)n);
    cr_assert_null(qfit_get_logits(c, 0), "no logits after a decode in embeddings mode");
    float *rows = malloc(n * (size_t)E * sizeof *rows);
    for (size_t j = 0; j < n; j++) memcpy(rows + j * (size_t)E, qfit_get_embeddings(c, (int)j), (size_t)E * sizeof(float));
    qfit_set_embeddings(c, false);
    qfit_context_reset(c);
    free(ids);
    *n_out = (int)n;
    return rows;
}

TestSuite(embed, .init = setup, .fini = teardown);

/* qfit's raw pooled vectors (--no-normalize) and normalised vectors against
 * llama.cpp's, for mean, cls and last. The F32 engines agree to ~1e-6 of the
 * vector's size; the gaps this must detect are orders larger: a missing final
 * norm changes the vector's scale and direction (cosine ~0.9 here), mean vs
 * last/cls is cosine < 0.9, an unnormalised vector has norm != 1 (raw norms ~16).
 * Measured: max |d| <= 3.3e-5 x the reference's norm, cosine >= 0.99999998.
 * Tolerance (other CPUs round differently): max |d| <= 5e-4 x the reference's
 * norm, cosine >= 0.9999. One
 * context with n_batch 8 also pools the 62-token text over 8 passes. */
Test(embed, mean_cls_last_match_llama_cpp)
{
    static const struct { const char *name; qfit_pooling p; } pools[] = {
        { "mean", QFIT_POOLING_MEAN }, { "cls", QFIT_POOLING_CLS }, { "last", QFIT_POOLING_LAST },
    };
    const int batches[2] = { 512, 8 };
    double worst_rel = 0, worst_cos = 1;
    for (int b = 0; b < 2; b++) {
        qfit_context *c = ctx(512, batches[b]);
        for (int k = 0; k < 3; k++) {
            float *ref = read_ref(pools[k].name);
            qfit_embed_item items[N_TEXTS];
            float *raw = embed(c, EMBED_TEXTS, N_TEXTS, pools[k].p, false, items);
            float *nrm = embed(c, EMBED_TEXTS, N_TEXTS, pools[k].p, true, NULL);
            for (int t = 0; t < N_TEXTS; t++) {
                const float *r = ref + (size_t)t * E, *q = raw + (size_t)t * E, *qn = nrm + (size_t)t * E;
                cr_assert_eq(items[t].n_tokens, REF_TOKENS[t], "text %d: %d tokens, llama.cpp %d", t,
                             items[t].n_tokens, REF_TOKENS[t]);
                const double rn = l2(r, E), d = max_abs_diff(q, r, E), cs = cosine(q, r, E);
                if (d / rn > worst_rel) worst_rel = d / rn;
                if (cs < worst_cos) worst_cos = cs;
                cr_assert(d <= 5e-4 * rn && cs >= 0.9999, "%s, batch %d, text %d: max|d| %g (ref norm %g), cos %.9f",
                          pools[k].name, batches[b], t, d, rn, cs);
                float rnorm[512];
                for (int i = 0; i < E; i++) rnorm[i] = (float)(r[i] / rn);
                const double dn = max_abs_diff(qn, rnorm, E);
                cr_assert(dn <= 5e-4, "%s normalised, text %d: max|d| %g", pools[k].name, t, dn);
            }
            free(raw);
            free(nrm);
            free(ref);
        }
        qfit_context_free(c);
    }
    cr_log_info("vs llama.cpp: worst max|d| / |ref| %.3g, worst cosine %.12f", worst_rel, worst_cos);
}

/* The engine's embedding rows are the rows the logits are projected from: for
 * every token, row · output.weight = the logits of a logits-mode decode (F32
 * weights; tolerance 1e-4 x the logit spread, far below what a missing or
 * doubled norm would give). Then mean/cls/last equal their definitions on those
 * rows: the average, the first row, the last row, and differ from each other. */
Test(embed, pooling_definitions_on_token_rows)
{
    qfit_context *c = ctx(512, 512);
    const char *text = EMBED_TEXTS[2];
    int n = 0;
    float *rows = token_rows(c, text, 1 << 20, &n);
    cr_assert_eq(n, 15);

    /* rows x output.weight == logits */
    const qfit_gguf *g = qfit_model_gguf(M);
    int64_t ti = qfit_gguf_find_tensor(g, "output.weight");
    if (ti < 0) ti = qfit_gguf_find_tensor(g, "token_embd.weight");
    cr_assert_geq(ti, 0);
    const qfit_gguf_tensor *w = qfit_gguf_tensor_at(g, ti);
    cr_assert_eq(w->type, 0, "the shared model's output weight is F32");
    const int V = qfit_model_hparams(M)->n_vocab;
    int32_t *ids = NULL;
    size_t nid = 0;
    cr_assert_eq(qfit_tokenize_alloc(T, text, strlen(text), true, true, &ids, &nid), 0);
    cr_assert_eq(qfit_decode(c, ids, (int)nid, 0), 0);
    cr_assert_null(qfit_get_embeddings(c, 0), "no embeddings after a decode in logits mode");
    for (int j = 0; j < n; j++) {
        const float *lg = qfit_get_logits(c, j);
        float lo = lg[0], hi = lg[0];
        double worst = 0;
        for (int v = 0; v < V; v++) {
            const float *wr = (const float *)w->data + (size_t)v * E;
            double dot = 0;
            for (int i = 0; i < E; i++) dot += (double)rows[(size_t)j * E + i] * wr[i];
            if (fabs(dot - lg[v]) > worst) worst = fabs(dot - lg[v]);
            if (lg[v] < lo) lo = lg[v];
            if (lg[v] > hi) hi = lg[v];
        }
        cr_assert(worst <= 1e-4 * (hi - lo), "token %d: max |row . W - logit| %g (spread %g)", j, worst, hi - lo);
    }
    free(ids);
    qfit_context_reset(c);

    float mean[512];
    for (int i = 0; i < E; i++) {
        double s = 0;
        for (int j = 0; j < n; j++) s += rows[(size_t)j * E + i];
        mean[i] = (float)(s / n);
    }
    const char *one[1] = { text };
    float *pm = embed(c, one, 1, QFIT_POOLING_MEAN, false, NULL);
    float *pc = embed(c, one, 1, QFIT_POOLING_CLS, false, NULL);
    float *pl = embed(c, one, 1, QFIT_POOLING_LAST, false, NULL);
    float *pd = embed(c, one, 1, QFIT_POOLING_UNSPECIFIED, false, NULL);   /* no pooling_type key: mean */
    cr_assert(max_abs_diff(pm, mean, E) <= 1e-6 * l2(mean, E), "mean != average of the token rows");
    cr_assert_eq(memcmp(pc, rows, (size_t)E * sizeof(float)), 0, "cls != first token row");
    cr_assert_eq(memcmp(pl, rows + (size_t)(n - 1) * E, (size_t)E * sizeof(float)), 0, "last != last token row");
    cr_assert_eq(memcmp(pd, pm, (size_t)E * sizeof(float)), 0, "default pooling is not mean");
    cr_assert_lt(cosine(pm, pc, E), 0.99, "mean and cls too close: %f", cosine(pm, pc, E));
    cr_assert_lt(cosine(pm, pl, E), 0.99, "mean and last too close: %f", cosine(pm, pl, E));
    cr_assert_lt(cosine(pc, pl, E), 0.99, "cls and last too close: %f", cosine(pc, pl, E));
    free(pm); free(pc); free(pl); free(pd);
    free(rows);
    qfit_context_free(c);
}

/* Five inputs of 15, 5, 15, 2 and 62 tokens in one call, and in reverse order,
 * equal each input embedded alone: bit for bit (each input is evaluated as its
 * own sequence with the same passes), hence cosine 1 >= 0.9999. A KV cache not
 * reset between inputs, or pooling state carried over, breaks this. */
Test(embed, batch_equals_single)
{
    for (int b = 0; b < 2; b++) {
        qfit_context *c = ctx(128, b ? 16 : 512);
        float *batch = embed(c, EMBED_TEXTS, N_TEXTS, QFIT_POOLING_MEAN, true, NULL);
        const char *rev[N_TEXTS];
        for (int t = 0; t < N_TEXTS; t++) rev[t] = EMBED_TEXTS[N_TEXTS - 1 - t];
        float *rbatch = embed(c, rev, N_TEXTS, QFIT_POOLING_MEAN, true, NULL);
        for (int t = 0; t < N_TEXTS; t++) {
            float *single = embed(c, &EMBED_TEXTS[t], 1, QFIT_POOLING_MEAN, true, NULL);
            const float *bt = batch + (size_t)t * E, *rt = rbatch + (size_t)(N_TEXTS - 1 - t) * E;
            cr_assert_geq(cosine(bt, single, E), 0.9999);
            cr_assert_eq(memcmp(bt, single, (size_t)E * sizeof(float)), 0, "batch %d text %d: not bitwise", b, t);
            cr_assert_eq(memcmp(rt, single, (size_t)E * sizeof(float)), 0, "reversed batch text %d: not bitwise", t);
            free(single);
        }
        free(batch);
        free(rbatch);
        qfit_context_free(c);
    }
}

static int count_passes(void *user)
{
    ++*(int *)user;
    return 0;
}

/* A context of several sequences packs inputs that fit one pass into one batch (each its own
 * sequence): the 4 short texts (37 tokens) go in one pass, the 62-token one alone, so the
 * abort callback (polled before every pass) runs twice, not 5 times. Each vector equals the
 * single-input one to the bound (cosine >= 0.9999; measured 1.000000000000 to 12
 * digits on this F32 model: only the weight matrices' row count differs), and pooling never
 * mixes inputs (pooling rows shifted by one, broken on purpose: cosines 0.99, 0.998, 0.56). */
Test(embed, packed_batch_on_a_multi_sequence_context)
{
    qfit_context_params cp = qfit_context_default_params();
    cp.n_ctx = 128;
    cp.n_batch = 512;
    cp.n_threads = 2;
    cp.n_seq = 4;
    char err[256] = "";
    qfit_context *c4 = qfit_context_new(M, &cp, err, sizeof err);
    cr_assert(c4, "%s", err);
    qfit_context *c1 = ctx(128, 512);
    qfit_embed_params p;
    qfit_embed_params_init(&p);
    int passes = 0;
    p.should_abort = count_passes;
    p.abort_user = &passes;
    float *packed = malloc((size_t)N_TEXTS * E * sizeof(float));
    cr_assert(packed);
    cr_assert_eq(qfit_embed(c4, T, EMBED_TEXTS, N_TEXTS, &p, packed, NULL, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_eq(passes, 2, "%d forward passes for 5 inputs on 4 sequences", passes);
    for (int t = 0; t < N_TEXTS; t++) {
        float *single = embed(c1, &EMBED_TEXTS[t], 1, QFIT_POOLING_MEAN, true, NULL);
        const double cs = cosine(packed + (size_t)t * E, single, E);
        cr_expect_geq(cs, 0.9999, "text %d: cosine %.9f packed vs alone", t, cs);
        free(single);
    }
    free(packed);
    qfit_context_free(c1);
    qfit_context_free(c4);
}

/* Normalised vectors have L2 norm 1 (to float rounding); dimensions K keeps the
 * first K values of the raw vector and renormalises them; K out of 1..n_embd is
 * an error naming K and n_embd. */
Test(embed, l2_norm_and_dimensions)
{
    qfit_context *c = ctx(128, 128);
    float *raw = embed(c, EMBED_TEXTS, N_TEXTS, QFIT_POOLING_MEAN, false, NULL);
    float *nrm = embed(c, EMBED_TEXTS, N_TEXTS, QFIT_POOLING_MEAN, true, NULL);
    for (int t = 0; t < N_TEXTS; t++) {
        cr_assert_gt(fabs(l2(raw + (size_t)t * E, E) - 1.0), 0.1, "raw vectors are not normalised");
        cr_assert_leq(fabs(l2(nrm + (size_t)t * E, E) - 1.0), 1e-6, "text %d: norm %.9f", t, l2(nrm + (size_t)t * E, E));
    }
    qfit_embed_params p;
    qfit_embed_params_init(&p);
    p.dimensions = 64;
    float out[N_TEXTS * 64];
    qfit_embed_result res;
    char err[256] = "";
    cr_assert_eq(qfit_embed(c, T, EMBED_TEXTS, N_TEXTS, &p, out, NULL, &res, err, sizeof err), 0, "%s", err);
    cr_assert_eq(res.n_dims, 64);
    for (int t = 0; t < N_TEXTS; t++) {
        const float *r = raw + (size_t)t * E;
        const double n64 = l2(r, 64);
        cr_assert_leq(fabs(l2(out + t * 64, 64) - 1.0), 1e-6);
        for (int i = 0; i < 64; i++)
            cr_assert_leq(fabs(out[t * 64 + i] - r[i] / n64), 1e-6, "text %d dim %d: %g vs %g", t, i, out[t * 64 + i],
                          r[i] / n64);
    }
    const int bad[3] = { E + 1, -1, 1 << 30 };
    for (int k = 0; k < 3; k++) {
        p.dimensions = bad[k];
        err[0] = 0;
        cr_assert_eq(qfit_embed(c, T, EMBED_TEXTS, 1, &p, out, NULL, NULL, err, sizeof err), -1);
        char want[32];
        snprintf(want, sizeof want, "%d", bad[k]);
        cr_assert(strstr(err, want) && strstr(err, "256"), "message: %s", err);
    }
    free(raw);
    free(nrm);
    qfit_context_free(c);
}

/* An input longer than the context: an error naming its token count (62) and
 * the context length (16); with truncate the first 16 tokens are embedded, 46
 * reported dropped, and the vector is the mean of those 16 tokens' rows. */
Test(embed, too_long_input_and_truncation)
{
    qfit_context *c = ctx(16, 16);
    qfit_embed_params p;
    qfit_embed_params_init(&p);
    const char *in[2] = { EMBED_TEXTS[1], EMBED_TEXTS[4] };
    float out[2 * 256];
    qfit_embed_item items[2];
    qfit_embed_result res;
    char err[256] = "";
    cr_assert_eq(qfit_embed(c, T, in, 2, &p, out, items, &res, err, sizeof err), -1);
    cr_assert(strstr(err, "input 1") && strstr(err, "62") && strstr(err, "16"), "message: %s", err);

    p.truncate = true;
    p.normalize = false;
    cr_assert_eq(qfit_embed(c, T, in, 2, &p, out, items, &res, err, sizeof err), 0, "%s", err);
    cr_assert_eq(items[0].n_tokens, 5);
    cr_assert_eq(items[0].n_truncated, 0);
    cr_assert_eq(items[1].n_tokens, 16);
    cr_assert_eq(items[1].n_truncated, 46);
    cr_assert_eq(res.prompt_eval_count, 21);
    cr_assert_eq(res.n_truncated, 46);

    int n = 0;
    float *rows = token_rows(c, EMBED_TEXTS[4], 16, &n);
    cr_assert_eq(n, 16);
    for (int i = 0; i < E; i++) {
        double s = 0;
        for (int j = 0; j < n; j++) s += rows[(size_t)j * E + i];
        cr_assert_leq(fabs(out[E + i] - s / n), 1e-5, "dim %d", i);
    }
    free(rows);
    qfit_context_free(c);
}

/* The shared model's vocabulary with add_bos / add_eos set as given. */
static qfit_tokenizer *tokenizer_copy(int add_bos, int add_eos)
{
    const int32_t nv = qfit_tokenizer_n_vocab(T);
    const char **toks = malloc((size_t)nv * sizeof *toks);
    size_t *lens = malloc((size_t)nv * sizeof *lens);
    float *scores = malloc((size_t)nv * sizeof *scores);
    int32_t *types = malloc((size_t)nv * sizeof *types);
    for (int32_t i = 0; i < nv; i++) {
        toks[i] = qfit_tokenizer_token_text(T, i, &lens[i]);
        scores[i] = qfit_tokenizer_token_score(T, i);
        types[i] = (int32_t)qfit_tokenizer_token_type(T, i);
    }
    qfit_tokenizer_params tp;
    qfit_tokenizer_params_init(&tp, qfit_tokenizer_model(T));
    tp.n_vocab = nv;
    tp.tokens = toks;
    tp.token_lens = lens;
    tp.scores = scores;
    tp.types = types;
    tp.bos = qfit_tokenizer_bos(T);
    tp.eos = qfit_tokenizer_eos(T);
    tp.add_bos = add_bos;
    tp.add_eos = add_eos;
    char err[256] = "";
    qfit_tokenizer *t = qfit_tokenizer_new(&tp, err, sizeof err);
    cr_assert(t, "%s", err);
    free(toks); free(lens); free(scores); free(types);
    return t;
}

/* Empty input: no inputs is a success with nothing written; an empty text on this
 * model (add_bos) is its BOS token alone: one token, a unit vector; on a tokenizer
 * that adds nothing it has no tokens: an error naming the input. */
Test(embed, empty_input)
{
    qfit_context *c = ctx(64, 64);
    qfit_embed_result res;
    char err[256] = "";
    float out[256];
    cr_assert_eq(qfit_embed(c, T, NULL, 0, NULL, NULL, NULL, &res, err, sizeof err), 0, "%s", err);
    cr_assert_eq(res.prompt_eval_count, 0);

    const char *empty[1] = { "" };
    qfit_embed_item item;
    cr_assert(qfit_tokenizer_add_bos(T));
    cr_assert_eq(qfit_embed(c, T, empty, 1, NULL, out, &item, &res, err, sizeof err), 0, "%s", err);
    cr_assert_eq(item.n_tokens, 1);
    cr_assert_leq(fabs(l2(out, E) - 1.0), 1e-6);

    /* the same vocabulary without BOS/EOS */
    qfit_tokenizer *nb = tokenizer_copy(0, 0);
    const char *two[2] = { "light", "" };
    err[0] = 0;
    cr_assert_eq(qfit_embed(c, nb, two, 2, NULL, out, NULL, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "input 1") && strstr(err, "empty"), "message: %s", err);
    qfit_tokenizer_free(nb);
    qfit_context_free(c);
}

/* A vocabulary that says add_eos_token: the EOS is appended (as llama.cpp does
 * for such embedding models) and is the token 'last' pools: "light" is BOS, light,
 * EOS, and the vector is the engine's row of that EOS. */
Test(embed, eos_appended_when_the_vocabulary_says_so)
{
    qfit_tokenizer *te = tokenizer_copy(1, 1);
    qfit_context *c = ctx(64, 64);
    const char *in[1] = { "light" };
    float out[256];
    qfit_embed_item item;
    qfit_embed_params p;
    qfit_embed_params_init(&p);
    p.pooling = QFIT_POOLING_LAST;
    p.normalize = false;
    char err[256] = "";
    cr_assert_eq(qfit_embed(c, te, in, 1, &p, out, &item, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(item.n_tokens, 3);
    const int32_t ids[3] = { qfit_tokenizer_bos(T), 1079, qfit_tokenizer_eos(T) };
    qfit_set_embeddings(c, true);
    cr_assert_eq(qfit_decode(c, ids, 3, 0), 0, "%s", qfit_context_error(c));
    cr_assert_eq(memcmp(out, qfit_get_embeddings(c, 2), (size_t)E * sizeof(float)), 0, "last is not the EOS row");
    qfit_tokenizer_free(te);
    qfit_context_free(c);
}

static int abort_after(void *user)
{
    int *polls = user;
    return --*polls < 0;
}

/* should_abort is polled before every pass: allowed 2 polls with n_batch 8, the
 * 15-token first input (2 passes) completes and the call is cancelled in input 1. */
Test(embed, cancellation)
{
    qfit_context *c = ctx(64, 8);
    int polls = 2;
    qfit_embed_params p;
    qfit_embed_params_init(&p);
    p.should_abort = abort_after;
    p.abort_user = &polls;
    float out[N_TEXTS * 256];
    char err[256] = "";
    cr_assert_eq(qfit_embed(c, T, EMBED_TEXTS, N_TEXTS, &p, out, NULL, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "cancelled at input 1"), "message: %s", err);
    cr_assert_eq(qfit_context_n_past(c), 0);
    qfit_context_free(c);
}

/* Pooling none and rank are refused by name; the context's mode is restored. */
Test(embed, unsupported_pooling_and_mode_restored)
{
    qfit_context *c = ctx(64, 64);
    float out[256];
    char err[256] = "";
    qfit_embed_params p;
    qfit_embed_params_init(&p);
    p.pooling = QFIT_POOLING_NONE;
    cr_assert_eq(qfit_embed(c, T, EMBED_TEXTS, 1, &p, out, NULL, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "'none'"), "message: %s", err);
    p.pooling = QFIT_POOLING_RANK;
    cr_assert_eq(qfit_embed(c, T, EMBED_TEXTS, 1, &p, out, NULL, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "'rank'"), "message: %s", err);
    cr_assert_eq(qfit_pooling_from_name("CLS"), QFIT_POOLING_CLS);
    cr_assert_eq(qfit_pooling_from_name("max"), QFIT_POOLING_UNSPECIFIED);

    p.pooling = QFIT_POOLING_UNSPECIFIED;
    cr_assert_eq(qfit_embed(c, T, EMBED_TEXTS, 1, &p, out, NULL, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_not(qfit_context_embeddings(c), "embed left the context in embeddings mode");
    cr_assert_eq(qfit_context_n_past(c), 0);
    qfit_set_embeddings(c, true);
    cr_assert_eq(qfit_embed(c, T, EMBED_TEXTS, 1, &p, out, NULL, NULL, err, sizeof err), 0, "%s", err);
    cr_assert(qfit_context_embeddings(c));
    qfit_context_free(c);
}

/* A copy of the shared model with llama.pooling_type = v (u32). */
static char *model_with_pooling(uint32_t v)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/pool%u.gguf", tu_tmpdir(), v);
    const qfit_gguf *g = qfit_model_gguf(M);
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    cr_assert_eq(qfit_gguf_copy_all_kv(w, g), 0);
    cr_assert_eq(qfit_gguf_set_u32(w, "llama.pooling_type", v), 0);
    for (int64_t i = 0; i < qfit_gguf_n_tensors(g); i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        cr_assert_eq(qfit_gguf_add_tensor(w, name, t->n_dims, t->ne, t->type), 0);
    }
    char err[256] = "";
    cr_assert_eq(qfit_gguf_writer_begin(w, path, err, sizeof err), 0, "%s", err);
    for (int64_t i = 0; i < qfit_gguf_n_tensors(g); i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        cr_assert_eq(qfit_gguf_writer_write_tensor(w, t->data, t->nbytes, err, sizeof err), 0, "%s", err);
    }
    cr_assert_eq(qfit_gguf_writer_finish(w, err, sizeof err), 0, "%s", err);
    qfit_gguf_writer_free(w);
    return path;
}

/* The GGUF's <arch>.pooling_type decides the default pooling: 3 (last) gives
 * the last-token vector, 0 (none) is refused naming it; 9 is not a pooling type. */
Test(embed, pooling_from_gguf)
{
    qfit_context *c0 = ctx(64, 64);
    float *last = embed(c0, EMBED_TEXTS, 1, QFIT_POOLING_LAST, true, NULL);
    qfit_context_free(c0);
    const uint32_t vals[3] = { 3, 0, 9 };
    for (int k = 0; k < 3; k++) {
        char err[256] = "";
        qfit_model *m = qfit_model_load(model_with_pooling(vals[k]), err, sizeof err);
        cr_assert(m, "%s", err);
        qfit_pooling pool;
        const int r = qfit_model_pooling(m, &pool, err, sizeof err);
        qfit_context_params cp = qfit_context_default_params();
        cp.n_ctx = 64;
        cp.n_threads = 2;
        qfit_context *c = qfit_context_new(m, &cp, err, sizeof err);
        cr_assert(c, "%s", err);
        float out[256];
        qfit_embed_result res;
        const int rc = qfit_embed(c, T, EMBED_TEXTS, 1, NULL, out, NULL, &res, err, sizeof err);
        if (vals[k] == 3) {
            cr_assert(r == 0 && pool == QFIT_POOLING_LAST);
            cr_assert_eq(rc, 0, "%s", err);
            cr_assert_eq(res.pooling, QFIT_POOLING_LAST);
            cr_assert_eq(memcmp(out, last, (size_t)E * sizeof(float)), 0);
        } else if (vals[k] == 0) {
            cr_assert(r == 0 && pool == QFIT_POOLING_NONE);
            cr_assert(rc == -1 && strstr(err, "'none'"), "message: %s", err);
        } else {
            cr_assert_eq(r, -1);
            cr_assert(rc == -1 && strstr(err, "llama.pooling_type"), "message: %s", err);
        }
        qfit_context_free(c);
        qfit_model_free(m);
    }
    free(last);
}

/* qfit embed prints {"model", "embeddings": [[K numbers] x inputs], "prompt_eval_count"}
 * with the library's values (9 significant digits: float32 exact); -f FILE gives
 * one input per line; an over-long input exits 1 naming both numbers. */
Test(embed, cli_json)
{
    char cmd[2048];
    int st = 0;
    snprintf(cmd, sizeof cmd, "(%s embed %s 'Jesus wept.' light --dimensions 32 --threads 2 2>/dev/null)", tu_qfit_bin(),
             model_path());
    char *out = tu_run(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    json_error_t je;
    json_t *root = json_loads(out, 0, &je);
    cr_assert(root, "invalid JSON (%s): %s", je.text, out);
    cr_assert_str_eq(json_string_value(json_object_get(root, "model")), model_path());
    cr_assert_eq(json_integer_value(json_object_get(root, "prompt_eval_count")), 5 + 2);
    json_t *embs = json_object_get(root, "embeddings");
    cr_assert(json_is_array(embs) && json_array_size(embs) == 2);

    qfit_context *c = ctx(4096 < qfit_model_hparams(M)->n_ctx_train ? 4096 : qfit_model_hparams(M)->n_ctx_train, 512);
    qfit_embed_params p;
    qfit_embed_params_init(&p);
    p.dimensions = 32;
    const char *in[2] = { "Jesus wept.", "light" };
    float want[64];
    char err[256] = "";
    cr_assert_eq(qfit_embed(c, T, in, 2, &p, want, NULL, NULL, err, sizeof err), 0, "%s", err);
    for (size_t i = 0; i < 2; i++) {
        json_t *row = json_array_get(embs, i);
        cr_assert(json_is_array(row) && json_array_size(row) == 32);
        for (size_t k = 0; k < 32; k++) {
            json_t *x = json_array_get(row, k);
            cr_assert(json_is_number(x));
            cr_assert_eq((float)json_number_value(x), want[i * 32 + k], "row %zu [%zu]", i, k);
        }
    }
    json_decref(root);
    free(out);
    qfit_context_free(c);

    /* -f: three lines, the last without a newline */
    char path[512];
    snprintf(path, sizeof path, "%s/inputs.txt", tu_tmpdir());
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("Jesus wept.\nlight\nAnd God said", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "(%s embed %s -f %s --threads 2 2>/dev/null)", tu_qfit_bin(), model_path(), path);
    out = tu_run(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    root = json_loads(out, 0, &je);
    cr_assert(root, "invalid JSON (%s): %s", je.text, out);
    embs = json_object_get(root, "embeddings");
    cr_assert_eq(json_array_size(embs), 3);
    cr_assert_eq(json_array_size(json_array_get(embs, 2)), (size_t)E);
    json_decref(root);
    free(out);

    snprintf(cmd, sizeof cmd, "%s embed %s '%s' --ctx 16 --threads 2 2>&1", tu_qfit_bin(), model_path(), EMBED_TEXTS[4]);
    out = tu_run(cmd, &st);
    cr_assert_neq(st, 0);
    cr_assert(strstr(out, "62") && strstr(out, "16"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "(%s embed %s '%s' --ctx 16 --truncate --threads 2 2>/dev/null)", tu_qfit_bin(),
             model_path(), EMBED_TEXTS[4]);
    out = tu_run(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    root = json_loads(out, 0, &je);
    cr_assert(root, "%s", out);
    cr_assert_eq(json_integer_value(json_object_get(root, "prompt_eval_count")), 16);
    cr_assert_eq(json_integer_value(json_object_get(root, "truncated")), 46);
    json_decref(root);
    free(out);
}
