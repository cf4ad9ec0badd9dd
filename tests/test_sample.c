/* Suite `sample`: the sampling chain. Each stage is checked against an
 * independent computation in this file (sorting, cumulating, the definitions),
 * either on the support of many draws (which tokens can come out) or on the
 * distribution of the draws (a chi-square test). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/sample.h"

#define NV 31   /* odd: chi-square tests over all NV tokens have an even df */

static void rand_logits(float *l, int n, unsigned seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        l[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 6.0f;
    }
}

static qfit_sampler_params plain(void)
{
    qfit_sampler_params p;
    qfit_sampler_params_init(&p);
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 42;
    return p;
}

static qfit_sampler *mk(const qfit_sampler_params *p, int n)
{
    char err[256] = "";
    qfit_sampler *s = qfit_sampler_new(p, n, 128, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    return s;
}

/* softmax in double, the test's own */
static void softmax_d(const float *l, int n, double *p)
{
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) if (l[i] > mx) mx = l[i];
    for (int i = 0; i < n; i++) sum += (p[i] = exp((double)l[i] - mx));
    for (int i = 0; i < n; i++) p[i] /= sum;
}

/* token ids sorted by descending probability (ties: lower id) */
static const double *g_sort_p;
static int by_p_desc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    if (g_sort_p[x] != g_sort_p[y]) return g_sort_p[x] > g_sort_p[y] ? -1 : 1;
    return x - y;
}

/* Draw many times with a flat temperature (so every survivor shows up) and
 * compare the set of drawn ids with the expected support. */
static void expect_support(qfit_sampler_params p, const float *l, int n, const bool *want, const char *what)
{
    p.temperature = 1000.0f;   /* after the filters: nearly uniform over the survivors */
    qfit_sampler *s = mk(&p, n);
    bool seen[NV] = { 0 };
    for (int i = 0; i < 4000; i++) {
        int t = qfit_sampler_sample(s, l);
        cr_assert(t >= 0 && t < n);
        seen[t] = true;
    }
    qfit_sampler_free(s);
    for (int i = 0; i < n; i++)
        cr_expect_eq(seen[i], want[i], "%s: token %d %s", what, i, want[i] ? "never drawn" : "drawn but filtered out");
}

/* Chi-square goodness of fit of N draws against probabilities want[0..n).
 * With n = NV = 31 categories, df <= 30 (cells with expected count < 5 are
 * pooled; a smaller df only makes the bound looser): P(chi2(30) > 82.3) < 1e-6
 * (the 1e-6 quantile is 82.04), so a correct sampler essentially never fails; a wrong
 * distribution of the kind tested here (a penalty or temperature not applied)
 * moves probabilities by >= 0.02 and gives chi2 in the thousands at N = 40000. */
static void expect_distribution(qfit_sampler *s, const float *l, int n, const double *want, const char *what)
{
    const int N = 40000;
    int cnt[NV] = { 0 };
    for (int i = 0; i < N; i++) cnt[qfit_sampler_sample(s, l)]++;
    double chi2 = 0, pooled_o = 0, pooled_e = 0;
    for (int i = 0; i < n; i++) {
        double e = want[i] * N;
        if (e < 5) { pooled_o += cnt[i]; pooled_e += e; continue; }
        chi2 += (cnt[i] - e) * (cnt[i] - e) / e;
    }
    if (pooled_e > 0) chi2 += (pooled_o - pooled_e) * (pooled_o - pooled_e) / pooled_e;
    else cr_expect_eq(pooled_o, 0, "%s: drew tokens of probability 0", what);
    cr_expect_lt(chi2, 82.3, "%s: chi2 %.1f over %d categories", what, chi2, n);
}

Test(sample, greedy_ties_go_to_lowest_id)
{
    float l[6] = { 0.5f, 2.0f, -1.0f, 2.0f, 1.0f, 2.0f };
    cr_expect_eq(qfit_argmax(l, 6), 1);
    qfit_sampler_params p = plain();
    p.temperature = 0;
    qfit_sampler *s = mk(&p, 6);
    cr_expect_eq(qfit_sampler_sample(s, l), 1);
    qfit_sampler_free(s);
    /* -inf everywhere: nothing to draw */
    float m[3] = { -INFINITY, -INFINITY, -INFINITY };
    s = mk(&p, 3);
    cr_expect_eq(qfit_sampler_sample(s, m), -1);
    qfit_sampler_free(s);
    p.temperature = 1;
    s = mk(&p, 3);
    cr_expect_eq(qfit_sampler_sample(s, m), -1);
    qfit_sampler_free(s);
}

Test(sample, seed_reproducible_and_seed_dependent)
{
    float l[NV];
    rand_logits(l, NV, 7);
    qfit_sampler_params p = plain();
    p.temperature = 1.5f;
    p.seed = 1234;
    int a[64], b[64], c[64], d[64];
    qfit_sampler *s = mk(&p, NV);
    for (int i = 0; i < 64; i++) a[i] = qfit_sampler_sample(s, l);
    qfit_sampler_reset(s);
    for (int i = 0; i < 64; i++) b[i] = qfit_sampler_sample(s, l);
    qfit_sampler_free(s);
    p.seed = 99;
    s = mk(&p, NV);
    for (int i = 0; i < 64; i++) c[i] = qfit_sampler_sample(s, l);
    qfit_sampler_free(s);
    cr_expect_arr_eq(a, b, sizeof a);
    cr_expect(memcmp(a, c, sizeof a) != 0);
    /* a random seed is reported, and reusing it reproduces the run */
    p.seed = QFIT_SEED_RANDOM;
    s = mk(&p, NV);
    for (int i = 0; i < 64; i++) c[i] = qfit_sampler_sample(s, l);
    p.seed = qfit_sampler_seed(s);
    cr_expect_neq(p.seed, QFIT_SEED_RANDOM);
    qfit_sampler_free(s);
    s = mk(&p, NV);
    for (int i = 0; i < 64; i++) d[i] = qfit_sampler_sample(s, l);
    qfit_sampler_free(s);
    cr_expect_arr_eq(c, d, sizeof c);
}

Test(sample, temperature_distribution)
{
    float l[NV], scaled[NV];
    rand_logits(l, NV, 11);
    const float temps[] = { 0.5f, 1.0f, 2.0f };
    for (size_t k = 0; k < 3; k++) {
        qfit_sampler_params p = plain();
        p.temperature = temps[k];
        for (int i = 0; i < NV; i++) scaled[i] = l[i] / temps[k];
        double want[NV];
        softmax_d(scaled, NV, want);
        qfit_sampler *s = mk(&p, NV);
        expect_distribution(s, l, NV, want, "temperature");
        qfit_sampler_free(s);
    }
}

Test(sample, top_k_keeps_the_k_largest)
{
    float l[NV];
    rand_logits(l, NV, 3);
    l[5] = l[9];   /* a tie at some rank: the lower id wins */
    double p[NV];
    softmax_d(l, NV, p);
    int order[NV];
    for (int i = 0; i < NV; i++) order[i] = i;
    g_sort_p = p;
    qsort(order, NV, sizeof *order, by_p_desc);
    for (int k = 1; k <= NV + 3; k += 4) {
        bool want[NV] = { 0 };
        for (int i = 0; i < k && i < NV; i++) want[order[i]] = true;
        qfit_sampler_params sp = plain();
        sp.top_k = k;
        expect_support(sp, l, NV, want, "top_k");
    }
}

Test(sample, top_p_keeps_the_smallest_set_reaching_p)
{
    float l[NV];
    rand_logits(l, NV, 5);
    double p[NV];
    softmax_d(l, NV, p);
    int order[NV];
    for (int i = 0; i < NV; i++) order[i] = i;
    g_sort_p = p;
    qsort(order, NV, sizeof *order, by_p_desc);
    const float ps[] = { 0.0f, 0.3f, 0.5f, 0.8f, 0.95f, 0.999f };
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
        bool want[NV] = { 0 };
        double cum = 0;
        for (int i = 0; i < NV; i++) {   /* smallest prefix of the sorted list with mass >= p */
            want[order[i]] = true;
            cum += p[order[i]];
            if (cum >= ps[k]) break;
        }
        qfit_sampler_params sp = plain();
        sp.top_p = ps[k];
        expect_support(sp, l, NV, want, "top_p");
        /* after top_k 20 (the sorted path): the same rule on the 20 renormalised */
        double mass20 = 0;
        for (int i = 0; i < 20; i++) mass20 += p[order[i]];
        memset(want, 0, sizeof want);
        cum = 0;
        for (int i = 0; i < 20; i++) {
            want[order[i]] = true;
            cum += p[order[i]] / mass20;
            if (cum >= ps[k]) break;
        }
        sp.top_k = 20;
        expect_support(sp, l, NV, want, "top_k 20 + top_p");
    }
}

Test(sample, min_p_keeps_tokens_above_the_fraction_of_the_best)
{
    float l[NV];
    rand_logits(l, NV, 8);
    double p[NV], mx = 0;
    softmax_d(l, NV, p);
    for (int i = 0; i < NV; i++) if (p[i] > mx) mx = p[i];
    const float ms[] = { 0.01f, 0.1f, 0.5f, 1.0f };
    for (size_t k = 0; k < 4; k++) {
        bool want[NV];
        for (int i = 0; i < NV; i++) want[i] = p[i] >= ms[k] * mx;
        qfit_sampler_params sp = plain();
        sp.min_p = ms[k];
        expect_support(sp, l, NV, want, "min_p");
    }
}

/* typical_p from its definition: H = -sum p log p; rank tokens by |-log p - H|;
 * keep the first ones until their mass exceeds typical_p */
static const double *g_dist;
static int by_dist(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    if (g_dist[x] != g_dist[y]) return g_dist[x] < g_dist[y] ? -1 : 1;
    return x - y;
}

Test(sample, typical_p_matches_its_definition)
{
    float l[NV];
    rand_logits(l, NV, 21);
    double p[NV], dist[NV], h = 0;
    softmax_d(l, NV, p);
    for (int i = 0; i < NV; i++) h -= p[i] * log(p[i]);
    for (int i = 0; i < NV; i++) dist[i] = fabs(-log(p[i]) - h);
    int order[NV];
    for (int i = 0; i < NV; i++) order[i] = i;
    g_dist = dist;
    qsort(order, NV, sizeof *order, by_dist);
    const float ts[] = { 0.1f, 0.4f, 0.7f, 0.9f };
    for (size_t k = 0; k < 4; k++) {
        bool want[NV] = { 0 };
        double cum = 0;
        for (int i = 0; i < NV; i++) {
            want[order[i]] = true;
            cum += p[order[i]];
            if (cum > ts[k]) break;
        }
        qfit_sampler_params sp = plain();
        sp.typical_p = ts[k];
        expect_support(sp, l, NV, want, "typical_p");
        /* the most likely token is not necessarily typical: temperature 0 takes the
         * best of the survivors (llama.cpp's chain), not the global argmax */
        sp.temperature = 0;
        qfit_sampler *s = mk(&sp, NV);
        int t = qfit_sampler_sample(s, l);
        qfit_sampler_free(s);
        int best = -1;
        for (int i = 0; i < NV; i++)
            if (want[i] && (best < 0 || p[i] > p[best])) best = i;
        cr_expect_eq(t, best, "typical_p %g greedy: %d vs %d", ts[k], t, best);
    }
}

/* penalties on a hand-made history, checked on the distribution they must give */
Test(sample, penalties_on_a_history)
{
    float l[NV];
    rand_logits(l, NV, 13);
    l[3] = 2.5f;
    l[4] = -1.5f;
    const int32_t hist[] = { 7, 3, 3, 4, 9, 3, 4, 12, 3 };   /* last 6: 4 9 3 4 12 3 */
    const int nh = (int)(sizeof hist / sizeof *hist);
    qfit_sampler_params sp = plain();
    sp.repeat_penalty = 1.7f;
    sp.presence_penalty = 0.4f;
    sp.frequency_penalty = 0.3f;
    sp.repeat_last_n = 6;
    float want_l[NV];
    memcpy(want_l, l, sizeof l);
    int count[NV] = { 0 };
    for (int i = nh - 6; i < nh; i++) count[hist[i]]++;
    for (int t = 0; t < NV; t++) {
        if (!count[t]) continue;
        float x = want_l[t];
        x = x > 0 ? x / sp.repeat_penalty : x * sp.repeat_penalty;
        want_l[t] = x - (float)count[t] * sp.frequency_penalty - sp.presence_penalty;
    }
    double want[NV];
    softmax_d(want_l, NV, want);
    qfit_sampler *s = mk(&sp, NV);
    for (int i = 0; i < nh; i++) qfit_sampler_accept(s, hist[i]);
    qfit_sampler_accept(s, -5);        /* ignored */
    qfit_sampler_accept(s, NV + 1);    /* ignored */
    expect_distribution(s, l, NV, want, "penalties");
    /* reset clears the history: back to the plain distribution */
    qfit_sampler_reset(s);
    softmax_d(l, NV, want);
    expect_distribution(s, l, NV, want, "penalties after reset");
    qfit_sampler_free(s);
    /* repeat_last_n 0: no penalty at all */
    sp.repeat_last_n = 0;
    s = mk(&sp, NV);
    for (int i = 0; i < nh; i++) qfit_sampler_accept(s, hist[i]);
    expect_distribution(s, l, NV, want, "repeat_last_n 0");
    qfit_sampler_free(s);
}

Test(sample, repeat_penalty_greedy_and_window)
{
    float l[4] = { 2.0f, 1.9f, -1.0f, -1.2f };
    qfit_sampler_params p = plain();
    p.temperature = 0;
    p.repeat_penalty = 1.5f;
    p.repeat_last_n = 2;
    qfit_sampler *s = mk(&p, 4);
    cr_expect_eq(qfit_sampler_sample(s, l), 0);
    qfit_sampler_accept(s, 0);          /* 2.0 / 1.5 = 1.33 < 1.9 */
    qfit_sampler_accept(s, 0);          /* counted once */
    cr_expect_eq(qfit_sampler_sample(s, l), 1);
    qfit_sampler_accept(s, 1);
    qfit_sampler_accept(s, 3);          /* window of 2: token 0 has left it */
    cr_expect_eq(qfit_sampler_sample(s, l), 0);
    qfit_sampler_free(s);
    /* negative logits are multiplied */
    float m[2] = { -1.0f, -1.2f };
    p.repeat_last_n = 4;
    s = mk(&p, 2);
    qfit_sampler_accept(s, 0);          /* -1.5 < -1.2 */
    cr_expect_eq(qfit_sampler_sample(s, m), 1);
    qfit_sampler_free(s);
    /* -1 = the context size (128 here): an early token still counts after 100 more */
    p.repeat_last_n = -1;
    s = mk(&p, 4);
    qfit_sampler_accept(s, 0);
    for (int i = 0; i < 100; i++) qfit_sampler_accept(s, 3);
    cr_expect_eq(qfit_sampler_get_params(s)->repeat_last_n, 128);
    cr_expect_eq(qfit_sampler_sample(s, l), 1);
    qfit_sampler_free(s);
}

/* a large vocabulary exercises the partial selection (heap) against a full sort */
Test(sample, large_vocab_top_k_matches_full_sort)
{
    const int n = 50000, k = 40;
    float *l = malloc(sizeof(float) * n);
    double *p = malloc(sizeof(double) * n);
    int *order = malloc(sizeof(int) * n);
    cr_assert(l && p && order);
    rand_logits(l, n, 77);
    for (int i = 0; i < n; i += 1000) l[i] = 3.0f;   /* many ties */
    softmax_d(l, n, p);
    for (int i = 0; i < n; i++) order[i] = i;
    g_sort_p = p;
    qsort(order, (size_t)n, sizeof *order, by_p_desc);
    qfit_sampler_params sp = plain();
    sp.top_k = k;
    sp.temperature = 1000.0f;
    qfit_sampler *s = mk(&sp, n);
    bool *seen = calloc((size_t)n, 1);
    for (int i = 0; i < 6000; i++) seen[qfit_sampler_sample(s, l)] = true;
    int n_seen = 0;
    for (int i = 0; i < n; i++) n_seen += seen[i];
    for (int i = 0; i < k; i++) cr_expect(seen[order[i]], "rank %d (id %d) never drawn", i, order[i]);
    cr_expect_eq(n_seen, k);
    qfit_sampler_free(s);
    free(seen);
    free(l);
    free(p);
    free(order);
}

Test(sample, logprobs_are_the_log_softmax_of_raw_logits)
{
    float l[NV];
    rand_logits(l, NV, 19);
    l[NV - 1] = -INFINITY;
    double p[NV];
    softmax_d(l, NV, p);
    double total = 0;
    for (int t = 0; t < NV; t++) {
        float lp;
        cr_assert_eq(qfit_logprobs(l, NV, t, 0, &lp, NULL), 0);
        if (t == NV - 1) { cr_expect(isinf(lp) && lp < 0); continue; }
        cr_expect_leq(fabs(lp - log(p[t])), 1e-5, "token %d: %g vs %g", t, lp, log(p[t]));
        total += exp(lp);
    }
    cr_expect_leq(fabs(total - 1.0), 1e-5, "sum of probabilities %.8f", total);
    qfit_token_logprob top[QFIT_TOP_LOGPROBS_MAX];
    float lp;
    cr_assert_eq(qfit_logprobs(l, NV, 4, 20, &lp, top), 20);
    for (int i = 0; i < 20; i++) {
        cr_expect_leq(fabs(top[i].logprob - log(p[top[i].id])), 1e-5);
        if (i) cr_expect_geq(top[i - 1].logprob, top[i].logprob);
    }
    cr_expect_eq(top[0].id, qfit_argmax(l, NV));
    cr_expect_eq(qfit_logprobs(l, NV, 4, 21, &lp, top), -1);
    cr_expect_eq(qfit_logprobs(l, NV, NV, 1, &lp, top), -1);
}

Test(sample, invalid_parameters_name_the_field)
{
    const char *cases[] = { "temperature", "top_k", "top_p", "min_p", "typical_p", "repeat_penalty",
                            "presence_penalty", "frequency_penalty", "repeat_last_n" };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (int variant = 0; variant < 2; variant++) {
            qfit_sampler_params p = plain();
            const char *f = cases[i];
            float bad = variant ? NAN : -1.0f;
            if (!strcmp(f, "temperature")) p.temperature = variant ? NAN : -0.5f;
            else if (!strcmp(f, "top_k")) p.top_k = variant ? -7 : -1;
            else if (!strcmp(f, "top_p")) p.top_p = variant ? bad : 1.5f;
            else if (!strcmp(f, "min_p")) p.min_p = bad;
            else if (!strcmp(f, "typical_p")) p.typical_p = variant ? bad : 2.0f;
            else if (!strcmp(f, "repeat_penalty")) p.repeat_penalty = variant ? bad : 0.0f;
            else if (!strcmp(f, "presence_penalty")) p.presence_penalty = variant ? NAN : INFINITY;
            else if (!strcmp(f, "frequency_penalty")) p.frequency_penalty = variant ? NAN : -INFINITY;
            else if (!strcmp(f, "repeat_last_n")) p.repeat_last_n = -2;
            char err[256] = "";
            cr_expect_null(qfit_sampler_new(&p, 10, 128, err, sizeof err), "%s variant %d accepted", f, variant);
            cr_expect_eq(strncmp(err, f, strlen(f)), 0, "%s: message '%s'", f, err);
        }
    }
    qfit_sampler_params p = plain();
    char err[256] = "";
    cr_expect_null(qfit_sampler_new(&p, 0, 128, err, sizeof err));
    cr_expect_not_null(strstr(err, "n_vocab"), "%s", err);
    p.repeat_last_n = -1;
    cr_expect_null(qfit_sampler_new(&p, 10, 0, err, sizeof err));
    cr_expect_not_null(strstr(err, "repeat_last_n"), "%s", err);
    /* documented meanings are valid */
    p = plain();
    p.top_k = 0; p.top_p = 1; p.min_p = 0; p.typical_p = 1; p.temperature = 0; p.repeat_last_n = 0;
    cr_expect_eq(qfit_sampler_params_check(&p, 0, err, sizeof err), 0, "%s", err);
}
