/* Perplexity and KL-divergence, computed as llama.cpp's perplexity tool does
 * (same chunking, same scored positions, same arithmetic and error formulas). */
#include "qfit/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void qfit_ppl_params_init(qfit_ppl_params *p)
{
    memset(p, 0, sizeof *p);
    p->n_ctx = 512;
    p->n_chunks = -1;
    p->bos = -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double qfit_nll(const float *logits, int n_vocab, int tok)
{
    float max_logit = logits[0];
    for (int i = 1; i < n_vocab; i++) if (logits[i] > max_logit) max_logit = logits[i];
    double sum_exp = 0.0;
    for (int i = 0; i < n_vocab; i++) sum_exp += expf(logits[i] - max_logit);
    return -((double)(logits[tok] - max_logit) - log(sum_exp));
}

/* round to nearest with the float magic-number trick ggml uses */
static inline int nearest_int(float f)
{
    float v = f + 12582912.f;
    int i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

double qfit_nll_quantized(const float *logits, int n_vocab, int tok, uint16_t *log_prob)
{
    float max_logit = logits[0], min_logit = logits[0];
    for (int i = 1; i < n_vocab; i++) {
        if (logits[i] > max_logit) max_logit = logits[i];
        if (logits[i] < min_logit) min_logit = logits[i];
    }
    if (min_logit < max_logit - 16) min_logit = max_logit - 16;
    double sum_exp = 0.0;
    for (int i = 0; i < n_vocab; i++) sum_exp += expf(logits[i] - max_logit);
    const float log_sum_exp = (float)log(sum_exp);
    const float min_log_prob = min_logit - max_logit - log_sum_exp;
    const float scale = (max_logit - min_logit) / 65535.f;
    float hdr[2] = { scale, min_log_prob };
    memcpy(log_prob, hdr, sizeof hdr);
    uint16_t *q = log_prob + 4;
    if (scale != 0.0f) {
        const float inv = 1.0f / scale;
        for (int i = 0; i < n_vocab; i++)
            q[i] = logits[i] > min_logit ? (uint16_t)nearest_int(inv * (logits[i] - min_logit)) : 0;
    } else {
        memset(q, 0, (size_t)n_vocab * sizeof *q);
    }
    if (n_vocab % 2) q[n_vocab] = 0;   /* padding entry */
    return max_logit + log_sum_exp - logits[tok];
}

int qfit_logits_file_info(const char *path, int *n_ctx, int *n_vocab, int *n_chunk, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, err_len, "cannot open %s", path); return -1; }
    char magic[8];
    uint32_t fctx = 0;
    int32_t fvocab = 0, fchunk = 0;
    int ok = fread(magic, 1, 8, f) == 8 && memcmp(magic, "_logits_", 8) == 0 && fread(&fctx, 4, 1, f) == 1 &&
             fread(&fvocab, 4, 1, f) == 1 && fread(&fchunk, 4, 1, f) == 1;
    fclose(f);
    if (!ok) { snprintf(err, err_len, "%s is not a logits file", path); return -1; }
    if (fctx < 4 || fctx > (1u << 24) || fvocab < 1 || fchunk < 1) {
        snprintf(err, err_len, "%s: invalid header (n_ctx %u, n_vocab %d, n_chunk %d)", path, fctx, fvocab, fchunk);
        return -1;
    }
    *n_ctx = (int)fctx;
    *n_vocab = fvocab;
    *n_chunk = fchunk;
    return 0;
}

typedef struct {
    double sum_nll, sum_nll2, sum_nll_base, sum_nll_base2, sum_nll_nll_base;
    double sum_kld, sum_kld2, sum_p_diff, sum_p_diff2, sum_p_diff4;
    size_t n_same_top, count;
} kld_acc;

static double kld_one(const float *logits, int n_vocab, const uint16_t *base, int tok, kld_acc *k, float *p_diff_out)
{
    float max_logit = logits[0];
    int imax = 0;
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > max_logit) { max_logit = logits[i]; imax = i; }
    double sum_exp = 0.0;
    for (int i = 0; i < n_vocab; i++) sum_exp += expf(logits[i] - max_logit);
    const float log_sum_exp = (float)log(sum_exp);
    float hdr[2];
    memcpy(hdr, base, sizeof hdr);
    const float scale = hdr[0], min_log_prob = hdr[1];
    const uint16_t *q = base + 4;

    const float nll = max_logit + log_sum_exp - logits[tok];
    k->sum_nll += nll;
    k->sum_nll2 += (double)nll * nll;
    const float nll_base = -(scale * q[tok] + min_log_prob);
    k->sum_nll_base += nll_base;
    k->sum_nll_base2 += (double)nll_base * nll_base;
    k->sum_nll_nll_base += (double)nll * nll_base;

    max_logit += log_sum_exp;
    double sum = 0;
    int imax_base = -1;
    float lp_base_max = 0;
    for (int i = 0; i < n_vocab; i++) {
        const float lp_base = scale * q[i] + min_log_prob;
        if (i == 0 || lp_base > lp_base_max) { lp_base_max = lp_base; imax_base = i; }
        if (lp_base > -16.f) sum += expf(lp_base) * (lp_base - logits[i] + max_logit);
    }
    k->sum_kld += sum;
    k->sum_kld2 += sum * sum;
    k->count++;
    if (imax == imax_base) k->n_same_top++;
    const float p_diff = expf(-nll) - expf(-nll_base);
    k->sum_p_diff += p_diff;
    const double d2 = (double)p_diff * p_diff;
    k->sum_p_diff2 += d2;
    k->sum_p_diff4 += d2 * d2;
    *p_diff_out = p_diff;
    return sum;
}

static void mean_unc(double sum, double sum2, size_t count, double *mean, double *unc)
{
    if (count < 1) { *mean = 0; *unc = 0; return; }
    double f = sum / (double)count;
    double df = sum2 / (double)count - f * f;
    df = df > 0 && count > 10 ? sqrt(df / (double)(count - 1)) : 0.;
    *mean = f;
    *unc = df;
}

static double covariance(double a, double b, double ab, size_t count)
{
    if (count < 10) return 0.0;
    double var = ab / (double)count - (a / (double)count) * (b / (double)count);
    return var / (double)(count - 1);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

static float percentile(const float *v, size_t n, float fraction)
{
    if (fraction <= 0) return v[0];
    if (fraction >= 1) return v[n - 1];
    float p = fraction * (float)(n - 1);
    size_t ip = (size_t)p;
    p -= (float)ip;
    size_t ip1 = ip + 1 < n ? ip + 1 : n - 1;
    return (1 - p) * v[ip] + p * v[ip1];
}

static float median(const float *v, size_t n)
{
    return n % 2 == 0 ? 0.5f * (v[n / 2] + v[n / 2 - 1]) : v[n / 2];
}

#define FAIL(...) do { snprintf(err, err_len, __VA_ARGS__); goto done; } while (0)

int qfit_perplexity(qfit_context *c, const int32_t *tokens_in, size_t n_tokens_in,
                    const qfit_ppl_params *pp, qfit_ppl_result *r, char *err, size_t err_len)
{
    char dummy[8];
    if (!err || !err_len) { err = dummy; err_len = sizeof dummy; }
    err[0] = 0;
    qfit_ppl_params p;
    if (pp) p = *pp; else qfit_ppl_params_init(&p);
    memset(r, 0, sizeof *r);
    const int n_vocab = qfit_model_hparams(qfit_context_model(c))->n_vocab;
    const int nv = 2 * ((n_vocab + 1) / 2) + 4;
    int rc = -1;
    FILE *kin = NULL, *sav = NULL;
    int32_t *file_tokens = NULL;
    float *all_logits = NULL, *kld_values = NULL, *p_diffs = NULL;
    uint16_t *lp = NULL;
    const int32_t *tokens = tokens_in;
    int n_ctx = p.n_ctx, n_chunk;

    if (p.save_logits && p.kld_base) FAIL("--save-logits and --kld-base are exclusive");
    if (p.kld_base) {
        kin = fopen(p.kld_base, "rb");
        if (!kin) FAIL("cannot open %s", p.kld_base);
        char magic[8];
        uint32_t fctx;
        int32_t fvocab, fchunk;
        if (fread(magic, 1, 8, kin) != 8 || memcmp(magic, "_logits_", 8) != 0)
            FAIL("%s is not a logits file (bad magic)", p.kld_base);
        if (fread(&fctx, 4, 1, kin) != 1 || fread(&fvocab, 4, 1, kin) != 1 || fread(&fchunk, 4, 1, kin) != 1)
            FAIL("%s: truncated header", p.kld_base);
        if (fvocab != n_vocab) FAIL("%s: vocabulary size %d differs from the model's %d", p.kld_base, fvocab, n_vocab);
        if (fctx < 4 || fctx > (uint32_t)qfit_context_n_ctx(c))
            FAIL("%s: n_ctx %u is invalid or larger than the context (%d)", p.kld_base, fctx, qfit_context_n_ctx(c));
        if (fchunk < 1 || (uint64_t)fchunk * fctx > (1ull << 31)) FAIL("%s: invalid chunk count %d", p.kld_base, fchunk);
        n_ctx = (int)fctx;
        n_chunk = fchunk;
        file_tokens = malloc(sizeof(int32_t) * (size_t)n_chunk * (size_t)n_ctx);
        if (!file_tokens) FAIL("out of memory");
        if (fread(file_tokens, sizeof(int32_t), (size_t)n_chunk * n_ctx, kin) != (size_t)n_chunk * n_ctx)
            FAIL("%s: truncated token list", p.kld_base);
        for (size_t i = 0; i < (size_t)n_chunk * n_ctx; i++)
            if (file_tokens[i] < 0 || file_tokens[i] >= n_vocab) FAIL("%s: token id %d out of range", p.kld_base, file_tokens[i]);
        tokens = file_tokens;
        if (p.n_chunks >= 0 && p.n_chunks < n_chunk) n_chunk = p.n_chunks;
    } else {
        if (n_ctx < 4 || n_ctx > qfit_context_n_ctx(c))
            FAIL("chunk size %d is invalid or larger than the context (%d)", n_ctx, qfit_context_n_ctx(c));
        if (n_tokens_in < 2 * (size_t)n_ctx)
            FAIL("you need at least %d tokens to evaluate perplexity with a context of %d; the text has %zu",
                 2 * n_ctx, n_ctx, n_tokens_in);
        n_chunk = (int)(n_tokens_in / (size_t)n_ctx);
        if (p.n_chunks >= 0 && p.n_chunks < n_chunk) n_chunk = p.n_chunks;
    }
    if (n_chunk < 1) FAIL("no chunk to evaluate");

    int n_batch = p.n_batch > 0 ? p.n_batch : n_ctx;
    if (n_batch > n_ctx) n_batch = n_ctx;
    if (n_batch > qfit_context_n_batch(c)) n_batch = qfit_context_n_batch(c);
    const int first = n_ctx / 2;
    const int n_score = n_ctx - first - 1;
    const int n_out = n_ctx - first;

    all_logits = malloc(sizeof(float) * (size_t)n_out * (size_t)n_vocab);
    int32_t *chunk = malloc(sizeof(int32_t) * (size_t)n_ctx);
    if (!all_logits || !chunk) { free(chunk); FAIL("out of memory"); }
    if (p.save_logits) {
        sav = fopen(p.save_logits, "wb");
        lp = malloc(sizeof(uint16_t) * (size_t)n_score * (size_t)nv);
        if (!sav || !lp) { free(chunk); FAIL("cannot open %s for writing", p.save_logits); }
        uint32_t u = (uint32_t)n_ctx;
        int32_t iv = n_vocab, ic = n_chunk;
        if (fwrite("_logits_", 1, 8, sav) != 8 || fwrite(&u, 4, 1, sav) != 1 || fwrite(&iv, 4, 1, sav) != 1 ||
            fwrite(&ic, 4, 1, sav) != 1 ||
            fwrite(tokens, sizeof(int32_t), (size_t)n_chunk * n_ctx, sav) != (size_t)n_chunk * n_ctx) {
            free(chunk);
            FAIL("write error on %s", p.save_logits);
        }
    }
    if (kin) {
        lp = malloc(sizeof(uint16_t) * (size_t)n_score * (size_t)nv);
        kld_values = malloc(sizeof(float) * (size_t)n_score * (size_t)n_chunk);
        p_diffs = malloc(sizeof(float) * (size_t)n_score * (size_t)n_chunk);
        if (!lp || !kld_values || !p_diffs) { free(chunk); FAIL("out of memory"); }
    }

    double nll = 0.0, nll2 = 0.0;
    long count = 0;
    kld_acc k;
    memset(&k, 0, sizeof k);
    const double t0 = now_s();
    for (int ic = 0; ic < n_chunk; ic++) {
        memcpy(chunk, tokens + (size_t)ic * n_ctx, sizeof(int32_t) * (size_t)n_ctx);
        if (p.bos >= 0) chunk[0] = p.bos;
        qfit_context_reset(c);
        for (int b0 = 0; b0 < n_ctx; b0 += n_batch) {
            const int nb = n_ctx - b0 < n_batch ? n_ctx - b0 : n_batch;
            int from = first - b0;
            if (from < 0) from = 0;
            if (from > nb) from = nb;
            if (qfit_decode(c, chunk + b0, nb, from) != 0) {
                free(chunk);
                FAIL("decode failed in chunk %d: %s", ic + 1, qfit_context_error(c));
            }
            for (int i = 0; i < nb - from; i++) {
                const int pos = b0 + from + i;
                memcpy(all_logits + (size_t)(pos - first) * n_vocab, qfit_get_logits(c, i), sizeof(float) * (size_t)n_vocab);
            }
        }
        const int32_t *tok = tokens + (size_t)ic * n_ctx + first;
        if (kin) {
            if (fread(lp, sizeof(uint16_t), (size_t)n_score * nv, kin) != (size_t)n_score * nv) {
                free(chunk);
                FAIL("%s: truncated at chunk %d", p.kld_base, ic + 1);
            }
            for (int j = 0; j < n_score; j++) {
                float pd;
                double kv = kld_one(all_logits + (size_t)j * n_vocab, n_vocab, lp + (size_t)j * nv, tok[j + 1], &k, &pd);
                kld_values[(size_t)ic * n_score + j] = (float)kv;
                p_diffs[(size_t)ic * n_score + j] = pd;
            }
            if (p.progress) {
                double a, au, b, bu, kl, klu, pm, pmu;
                mean_unc(k.sum_nll, k.sum_nll2, k.count, &a, &au);
                mean_unc(k.sum_nll_base, k.sum_nll_base2, k.count, &b, &bu);
                double cov = covariance(k.sum_nll, k.sum_nll_base, k.sum_nll_nll_base, k.count);
                mean_unc(k.sum_kld, k.sum_kld2, k.count, &kl, &klu);
                mean_unc(k.sum_p_diff2, k.sum_p_diff4, k.count, &pm, &pmu);
                double rms = sqrt(pm), top = (double)k.n_same_top / (double)k.count;
                double d = au * au + bu * bu - 2.0 * cov;
                fprintf(p.progress, "%4d    %9.4f \xc2\xb1 %9.4f    %10.5f \xc2\xb1 %10.5f    %10.5f \xc2\xb1 %10.5f    %6.3f \xc2\xb1 %6.3f %%    %6.3f \xc2\xb1 %6.3f %%\n",
                        ic + 1, exp(a), exp(a) * au, a - b, d > 0 ? sqrt(d) : 0.0, kl, klu, 100.0 * rms,
                        rms > 0 ? 100.0 * 0.5 / rms * pmu : 0.0, 100.0 * top,
                        k.count > 1 ? 100.0 * sqrt(top * (1 - top) / (double)(k.count - 1)) : 0.0);
                fflush(p.progress);
            }
        } else {
            for (int j = 0; j < n_score; j++) {
                const float *lg = all_logits + (size_t)j * n_vocab;
                double v = sav ? qfit_nll_quantized(lg, n_vocab, tok[j + 1], lp + (size_t)j * nv)
                               : qfit_nll(lg, n_vocab, tok[j + 1]);
                nll += v;
                nll2 += v * v;
            }
            if (sav && fwrite(lp, sizeof(uint16_t), (size_t)n_score * nv, sav) != (size_t)n_score * nv) {
                free(chunk);
                FAIL("write error on %s", p.save_logits);
            }
            count += n_score;
            if (p.progress) {
                fprintf(p.progress, "[%d]%.4f,", ic + 1, exp(nll / (double)count));
                fflush(p.progress);
            }
        }
    }
    free(chunk);
    if (p.progress) fprintf(p.progress, "\n");
    r->seconds = now_s() - t0;
    r->n_ctx = n_ctx;
    r->n_chunks = n_chunk;

    if (!kin) {
        r->n_scored = count;
        double m = nll / (double)count, v = nll2 / (double)count - m * m;
        r->mean_nll = m;
        r->ppl = exp(m);
        r->ppl_err = v > 0 ? sqrt(v / (double)(count - 1)) * r->ppl : 0.0;
    } else {
        const size_t n = k.count;
        r->n_scored = (long)n;
        r->has_kld = true;
        double a, au, b, bu;
        mean_unc(k.sum_nll, k.sum_nll2, n, &a, &au);
        mean_unc(k.sum_nll_base, k.sum_nll_base2, n, &b, &bu);
        r->mean_nll = a;
        r->ppl = exp(a);
        r->ppl_err = r->ppl * au;
        r->ppl_base = exp(b);
        r->ppl_base_err = r->ppl_base * bu;
        double cov = covariance(k.sum_nll, k.sum_nll_base, k.sum_nll_nll_base, n);
        r->cor_pct = au > 0 && bu > 0 ? 100.0 * cov / (au * bu) : 0.0;
        r->ln_ratio = a - b;
        double d = au * au + bu * bu - 2.0 * cov;
        r->ln_ratio_err = d > 0 ? sqrt(d) : 0.0;
        mean_unc(k.sum_kld, k.sum_kld2, n, &r->kld_mean, &r->kld_err);
        qsort(kld_values, n, sizeof(float), cmp_float);
        r->kld_max = kld_values[n - 1];
        r->kld_p999 = percentile(kld_values, n, 0.999f);
        r->kld_p99 = percentile(kld_values, n, 0.990f);
        r->kld_p95 = percentile(kld_values, n, 0.950f);
        r->kld_p90 = percentile(kld_values, n, 0.900f);
        r->kld_median = median(kld_values, n);
        r->kld_p10 = percentile(kld_values, n, 0.100f);
        r->kld_p5 = percentile(kld_values, n, 0.050f);
        r->kld_p1 = percentile(kld_values, n, 0.010f);
        r->kld_p01 = percentile(kld_values, n, 0.001f);
        r->kld_min = kld_values[0];
        double pd, pdu, pm, pmu;
        mean_unc(k.sum_p_diff, k.sum_p_diff2, n, &pd, &pdu);
        r->mean_dp_pct = 100.0 * pd;
        r->mean_dp_err = 100.0 * pdu;
        mean_unc(k.sum_p_diff2, k.sum_p_diff4, n, &pm, &pmu);
        double rms = sqrt(pm);
        r->rms_dp_pct = 100.0 * rms;
        r->rms_dp_err = rms > 0 ? 100.0 * 0.5 / rms * pmu : 0.0;
        double top = (double)k.n_same_top / (double)n;
        r->same_top_pct = 100.0 * top;
        r->same_top_err = n > 1 ? 100.0 * sqrt(top * (1.0 - top) / (double)(n - 1)) : 0.0;
    }
    rc = 0;
done:
    if (kin) fclose(kin);
    if (sav) {
        if (fclose(sav) != 0 && rc == 0) { snprintf(err, err_len, "write error on %s", p.save_logits); rc = -1; }
    }
    free(file_tokens);
    free(all_logits);
    free(kld_values);
    free(p_diffs);
    free(lp);
    qfit_context_reset(c);
    return rc;
}

void qfit_ppl_print(FILE *f, const qfit_ppl_result *r)
{
    if (!r->has_kld) {
        fprintf(f, "Final estimate: PPL = %.4f +/- %.5f\n", r->ppl, r->ppl_err);
        return;
    }
    fprintf(f, "\n====== Perplexity statistics ======\n");
    fprintf(f, "Mean PPL(Q)                   : %10.6f \xc2\xb1 %10.6f\n", r->ppl, r->ppl_err);
    fprintf(f, "Mean PPL(base)                : %10.6f \xc2\xb1 %10.6f\n", r->ppl_base, r->ppl_base_err);
    fprintf(f, "Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", r->cor_pct);
    fprintf(f, "Mean ln(PPL(Q)/PPL(base))     : %10.6f \xc2\xb1 %10.6f\n", r->ln_ratio, r->ln_ratio_err);
    fprintf(f, "Mean PPL(Q)/PPL(base)         : %10.6f \xc2\xb1 %10.6f\n", exp(r->ln_ratio), exp(r->ln_ratio) * r->ln_ratio_err);
    fprintf(f, "\n====== KL divergence statistics ======\n");
    fprintf(f, "Mean    KLD: %10.6f \xc2\xb1 %10.6f\n", r->kld_mean, r->kld_err);
    fprintf(f, "Maximum KLD: %10.6f\n", r->kld_max);
    fprintf(f, "99.9%%   KLD: %10.6f\n", r->kld_p999);
    fprintf(f, "99.0%%   KLD: %10.6f\n", r->kld_p99);
    fprintf(f, "95.0%%   KLD: %10.6f\n", r->kld_p95);
    fprintf(f, "90.0%%   KLD: %10.6f\n", r->kld_p90);
    fprintf(f, "Median  KLD: %10.6f\n", r->kld_median);
    fprintf(f, "10.0%%   KLD: %10.6f\n", r->kld_p10);
    fprintf(f, " 5.0%%   KLD: %10.6f\n", r->kld_p5);
    fprintf(f, " 1.0%%   KLD: %10.6f\n", r->kld_p1);
    fprintf(f, " 0.1%%   KLD: %10.6f\n", r->kld_p01);
    fprintf(f, "Minimum KLD: %10.6f\n", r->kld_min);
    fprintf(f, "\n====== Token probability statistics ======\n");
    fprintf(f, "Mean    \xce\x94p: %6.3f \xc2\xb1 %5.3f %%\n", r->mean_dp_pct, r->mean_dp_err);
    fprintf(f, "RMS \xce\x94p    : %6.3f \xc2\xb1 %5.3f %%\n", r->rms_dp_pct, r->rms_dp_err);
    fprintf(f, "Same top p: %6.3f \xc2\xb1 %5.3f %%\n", r->same_top_pct, r->same_top_err);
    fprintf(f, "\nKLD_SUMMARY mean_kld=%.6f mean_kld_unc=%.6f same_top_pct=%.3f rms_dp_pct=%.3f ppl_q=%.6f ppl_base=%.6f n=%ld\n",
            r->kld_mean, r->kld_err, r->same_top_pct, r->rms_dp_pct, r->ppl, r->ppl_base, r->n_scored);
}
