/* Suite `sample`: the sampling chain. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "qfit/sample.h"

Test(sample, greedy_ties_go_to_lowest_id)
{
    float l[6] = { 0.5f, 2.0f, -1.0f, 2.0f, 1.0f, 2.0f };
    cr_expect_eq(qfit_argmax(l, 6), 1);
    qfit_sampler_params p;
    qfit_sampler_params_init(&p);
    p.temp = 0;
    qfit_sampler *s = qfit_sampler_new(&p, 6);
    cr_assert_not_null(s);
    cr_expect_eq(qfit_sampler_sample(s, l), 1);
    qfit_sampler_free(s);
}

Test(sample, seed_reproducible_and_seed_dependent)
{
    float l[50];
    for (int i = 0; i < 50; i++) l[i] = (float)sin(i * 0.7) * 2.0f;
    qfit_sampler_params p;
    qfit_sampler_params_init(&p);
    p.temp = 1.5f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 1234;
    int a[64], b[64], c[64];
    qfit_sampler *s = qfit_sampler_new(&p, 50);
    for (int i = 0; i < 64; i++) a[i] = qfit_sampler_sample(s, l);
    qfit_sampler_reset(s);
    for (int i = 0; i < 64; i++) b[i] = qfit_sampler_sample(s, l);
    qfit_sampler_free(s);
    p.seed = 99;
    s = qfit_sampler_new(&p, 50);
    for (int i = 0; i < 64; i++) c[i] = qfit_sampler_sample(s, l);
    qfit_sampler_free(s);
    cr_expect_arr_eq(a, b, sizeof a);
    cr_expect(memcmp(a, c, sizeof a) != 0);
}

/* empirical frequencies follow softmax(l / T) */
Test(sample, temperature_distribution)
{
    float l[3] = { 1.0f, 0.0f, -1.0f };
    qfit_sampler_params p;
    qfit_sampler_params_init(&p);
    p.temp = 0.5f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    qfit_sampler *s = qfit_sampler_new(&p, 3);
    int cnt[3] = { 0 };
    const int N = 20000;
    for (int i = 0; i < N; i++) cnt[qfit_sampler_sample(s, l)]++;
    qfit_sampler_free(s);
    double z = exp(2.0) + 1.0 + exp(-2.0);
    double want[3] = { exp(2.0) / z, 1.0 / z, exp(-2.0) / z };
    for (int i = 0; i < 3; i++)
        cr_expect_leq(fabs((double)cnt[i] / N - want[i]), 0.015, "token %d: %g vs %g", i, (double)cnt[i] / N, want[i]);
}

Test(sample, top_k_top_p_min_p_restrict_candidates)
{
    float l[5] = { 3.0f, 2.9f, 0.0f, -1.0f, -2.0f };
    qfit_sampler_params p;
    qfit_sampler_params_init(&p);
    p.temp = 5.0f;   /* nearly uniform over whatever survives */
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.top_k = 2;
    qfit_sampler *s = qfit_sampler_new(&p, 5);
    for (int i = 0; i < 500; i++) cr_assert_lt(qfit_sampler_sample(s, l), 2);
    qfit_sampler_free(s);
    p.top_k = 0;
    p.top_p = 0.5f;   /* the first token alone holds < 50%, the first two > 50% */
    s = qfit_sampler_new(&p, 5);
    for (int i = 0; i < 500; i++) cr_assert_lt(qfit_sampler_sample(s, l), 2);
    qfit_sampler_free(s);
    p.top_p = 1.0f;
    p.min_p = 0.5f;   /* p(2.9)/p(3.0) = 0.90 passes, p(0)/p(3) = 0.05 does not */
    s = qfit_sampler_new(&p, 5);
    int seen1 = 0;
    for (int i = 0; i < 500; i++) {
        int t = qfit_sampler_sample(s, l);
        cr_assert_lt(t, 2);
        seen1 += t == 1;
    }
    cr_expect_gt(seen1, 100);
    qfit_sampler_free(s);
}

Test(sample, repeat_penalty)
{
    float l[4] = { 2.0f, 1.9f, -1.0f, -1.2f };
    qfit_sampler_params p;
    qfit_sampler_params_init(&p);
    p.temp = 0;
    p.repeat_penalty = 1.5f;
    p.repeat_last_n = 2;
    qfit_sampler *s = qfit_sampler_new(&p, 4);
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
    s = qfit_sampler_new(&p, 2);
    qfit_sampler_accept(s, 0);          /* -1.5 < -1.2 */
    cr_expect_eq(qfit_sampler_sample(s, m), 1);
    qfit_sampler_free(s);
}

Test(sample, invalid_parameters)
{
    qfit_sampler_params p;
    qfit_sampler_params_init(&p);
    cr_expect_null(qfit_sampler_new(&p, 0));
    p.repeat_penalty = 0;
    cr_expect_null(qfit_sampler_new(&p, 10));
    qfit_sampler_params_init(&p);
    p.temp = NAN;
    cr_expect_null(qfit_sampler_new(&p, 10));
}
