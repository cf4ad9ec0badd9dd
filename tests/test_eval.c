/* Suite `eval`: perplexity and KL-divergence against llama.cpp.
 *
 * Full-text values (246 chunks) are in testdata/kjv-llama-7m/ppl.tsv; under
 * ASan a full run per variant is too slow, so these tests score the first 4
 * chunks (2048 tokens of the validation text). Reference values for 4 chunks
 * were produced with llama.cpp (peer tools, v0.5.0):
 *   peer-ppl MODEL ../shared/models/kjv-llama-7m-val.txt --chunks 4 --threads 1
 * on the F32 file and on peer-quantize's Q8_0/Q6_K/Q5_K_M/Q4_K_M/Q4_0 files
 * (byte-identical to qfit quantize's output):
 *   F32 25.7233, Q8_0 25.7248, Q6_K 25.6903, Q5_K_M 25.7646, Q4_K_M 25.7493, Q4_0 26.0450
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/eval.h"
#include "qfit/model.h"
#include "qfit/quantize.h"
#include "qfit/tokenizer.h"
#include "util/testutil.h"

static const char *model_f32(void) { return tu_shared_path("models/kjv-llama-7m-f32.gguf"); }

/* the committed ids of the validation text (llama.cpp's tokenization, BOS first) */
static int32_t *val_ids(size_t *n)
{
    char *txt = tu_read_file(tu_shared_path("testdata/kjv-llama-7m/tokenizer/kjv-llama-7m-val.ids"), NULL);
    cr_assert_not_null(txt);
    size_t cap = 1 << 17, k = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    char *p = txt, *end;
    for (;;) {
        while (*p && (*p < '0' || *p > '9')) p++;
        if (!*p) break;
        long v = strtol(p, &end, 10);
        if (k == cap) ids = realloc(ids, (cap *= 2) * sizeof *ids);
        ids[k++] = (int32_t)v;
        p = end;
    }
    free(txt);
    *n = k;
    return ids;
}

static const char *quantized(const char *ftype)
{
    static char path[8][512];
    static int n;
    cr_assert_lt(n, 8);
    char *p = path[n++];
    snprintf(p, 512, "%s/eval-%s.gguf", tu_tmpdir(), ftype);
    qfit_quantize_params qp;
    memset(&qp, 0, sizeof qp);
    qp.ftype = qfit_ftype_from_name(ftype);
    qp.n_threads = 2;
    char err[256];
    cr_assert_eq(qfit_quantize_model(model_f32(), p, &qp, NULL, err, sizeof err), 0, "%s", err);
    return p;
}

static double ppl_of(const char *path, int chunks, const char *save, const char *kld, qfit_ppl_result *out)
{
    char err[256];
    qfit_model *m = qfit_model_load(path, err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    qfit_context_params cp = qfit_context_default_params();
    cp.n_ctx = 512;
    cp.n_threads = 2;
    qfit_context *c = qfit_context_new(m, &cp, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    size_t n = 0;
    int32_t *ids = val_ids(&n);
    qfit_ppl_params pp;
    qfit_ppl_params_init(&pp);
    pp.n_ctx = 512;
    pp.n_chunks = chunks;
    pp.bos = 1;
    pp.save_logits = save;
    pp.kld_base = kld;
    qfit_ppl_result r;
    cr_assert_eq(qfit_perplexity(c, ids, n, &pp, &r, err, sizeof err), 0, "%s", err);
    free(ids);
    qfit_context_free(c);
    qfit_model_free(m);
    if (out) *out = r;
    return r.ppl;
}

static void expect_ppl(const char *ftype, double ref)
{
    const char *path = strcmp(ftype, "F32") ? quantized(ftype) : model_f32();
    qfit_ppl_result r;
    double ppl = ppl_of(path, 4, NULL, NULL, &r);
    cr_expect_eq(r.n_chunks, 4);
    cr_expect_eq(r.n_scored, 4 * 255);
    cr_expect_leq(fabs(ppl / ref - 1.0), 0.005, "%s: ppl %.4f vs llama.cpp %.4f", ftype, ppl, ref);
    cr_expect_gt(r.ppl_err, 0.0);
}

Test(eval, ppl_f32, .timeout = 900) { expect_ppl("F32", 25.7233); }
Test(eval, ppl_q8_0, .timeout = 900) { expect_ppl("Q8_0", 25.7248); }
Test(eval, ppl_q6_k, .timeout = 900) { expect_ppl("Q6_K", 25.6903); }
Test(eval, ppl_q5_k_m, .timeout = 900) { expect_ppl("Q5_K_M", 25.7646); }
Test(eval, ppl_q4_k_m, .timeout = 900) { expect_ppl("Q4_K_M", 25.7493); }
Test(eval, ppl_q4_0, .timeout = 900) { expect_ppl("Q4_0", 26.0450); }

/* --save-logits then --kld-base: against itself KLD ~ 0 and same top 100%;
 * Q8_0 against F32 shows a small positive KLD and high top-token agreement
 * (ppl.tsv over the full text: mean KLD 0.000122, same top 99.166%). */
Test(eval, kld_roundtrip, .timeout = 900)
{
    char base[600];
    snprintf(base, sizeof base, "%s/f32.logits", tu_tmpdir());
    qfit_ppl_result r0, r1, r2;
    double p0 = ppl_of(model_f32(), 2, base, NULL, &r0);
    size_t sz = 0;
    void *f = tu_read_file(base, &sz);
    cr_assert_not_null(f);
    free(f);
    /* header 20 + tokens 2*512*4 + 2 chunks * 255 positions * (2048+4) * 2 bytes */
    cr_expect_eq(sz, (size_t)20 + 2 * 512 * 4 + (size_t)2 * 255 * 2052 * 2);
    ppl_of(model_f32(), -1, NULL, base, &r1);
    cr_expect(r1.has_kld);
    cr_expect_eq(r1.n_chunks, 2);
    cr_expect_lt(r1.kld_mean, 1e-4, "self KLD %g", r1.kld_mean);
    cr_expect_float_eq(r1.same_top_pct, 100.0, 1e-9);
    cr_expect_leq(fabs(r1.ppl / p0 - 1), 1e-6);
    cr_expect_leq(fabs(r1.ppl_base / p0 - 1), 1e-3);   /* base nll from 16-bit log-probs */
    ppl_of(quantized("Q8_0"), -1, NULL, base, &r2);
    cr_expect_gt(r2.kld_mean, 1e-5);
    cr_expect_lt(r2.kld_mean, 2e-3, "Q8_0 KLD %g", r2.kld_mean);
    cr_expect_gt(r2.same_top_pct, 95.0);
    cr_expect_leq(r2.kld_min, r2.kld_median);
    cr_expect_leq(r2.kld_median, r2.kld_p99);
    cr_expect_leq(r2.kld_p99, r2.kld_max);
}

Test(eval, nll_arithmetic)
{
    float l[4] = { 1.0f, 2.0f, 3.0f, 4.0f };
    double lse = log(exp(-3.0) + exp(-2.0) + exp(-1.0) + 1.0);
    cr_expect_float_eq(qfit_nll(l, 4, 3), lse, 1e-6);
    cr_expect_float_eq(qfit_nll(l, 4, 0), 3.0 + lse, 1e-6);
    uint16_t q[8];
    double v = qfit_nll_quantized(l, 4, 0, q);
    cr_expect_float_eq(v, 3.0 + lse, 1e-5);
    float hdr[2];
    memcpy(hdr, q, sizeof hdr);
    cr_expect_float_eq(hdr[0], 3.0f / 65535.f, 1e-9);           /* range max-min = 3 */
    cr_expect_eq(q[4 + 3], 65535);
    cr_expect_eq(q[4 + 0], 0);
}

Test(eval, bad_inputs)
{
    char err[256];
    qfit_model *m = qfit_model_load(model_f32(), err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    qfit_context_params cp = qfit_context_default_params();
    cp.n_ctx = 128;
    cp.n_threads = 1;
    qfit_context *c = qfit_context_new(m, &cp, err, sizeof err);
    cr_assert_not_null(c);
    int32_t ids[300] = { 0 };
    qfit_ppl_params pp;
    qfit_ppl_params_init(&pp);
    pp.n_ctx = 512;   /* larger than the context */
    qfit_ppl_result r;
    cr_expect_eq(qfit_perplexity(c, ids, 300, &pp, &r, err, sizeof err), -1);
    pp.n_ctx = 128;   /* fewer than 2 * n_ctx tokens */
    cr_expect_eq(qfit_perplexity(c, ids, 200, &pp, &r, err, sizeof err), -1);
    cr_expect_not_null(strstr(err, "at least 256 tokens"), "%s", err);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/not-logits.bin", tu_tmpdir());
    FILE *f = fopen(bad, "wb");
    fputs("this is not a logits file", f);
    fclose(f);
    pp.kld_base = bad;
    cr_expect_eq(qfit_perplexity(c, NULL, 0, &pp, &r, err, sizeof err), -1);
    qfit_context_free(c);
    qfit_model_free(m);
}
