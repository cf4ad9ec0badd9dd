/* Sampling chain: penalties, top-k, top-p, min-p, temperature, draw. */
#include "qfit/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void qfit_sampler_params_init(qfit_sampler_params *p)
{
    p->temp = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->seed = 0x5EED;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void qfit_rng_seed(qfit_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t qfit_rng_next(qfit_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double qfit_rng_uniform(qfit_rng *r) { return (double)(qfit_rng_next(r) >> 11) * 0x1.0p-53; }

typedef struct { int32_t id; float logit; float p; } cand;

struct qfit_sampler {
    qfit_sampler_params p;
    int n_vocab;
    qfit_rng rng;
    cand *c;
    int32_t *hist;     /* ring of the last repeat_last_n tokens */
    int hist_n, hist_pos;
    uint8_t *seen;
};

int32_t qfit_argmax(const float *logits, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

qfit_sampler *qfit_sampler_new(const qfit_sampler_params *pp, int n_vocab)
{
    qfit_sampler_params p;
    if (pp) p = *pp; else qfit_sampler_params_init(&p);
    if (n_vocab < 1 || p.repeat_last_n < 0 || isnan(p.temp) || isnan(p.top_p) || isnan(p.min_p) ||
        !(p.repeat_penalty > 0))
        return NULL;
    qfit_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = p;
    s->n_vocab = n_vocab;
    s->c = malloc(sizeof(cand) * (size_t)n_vocab);
    s->hist = malloc(sizeof(int32_t) * (size_t)(p.repeat_last_n > 0 ? p.repeat_last_n : 1));
    s->seen = calloc((size_t)n_vocab, 1);
    if (!s->c || !s->hist || !s->seen) { qfit_sampler_free(s); return NULL; }
    qfit_rng_seed(&s->rng, p.seed);
    return s;
}

void qfit_sampler_free(qfit_sampler *s)
{
    if (!s) return;
    free(s->c);
    free(s->hist);
    free(s->seen);
    free(s);
}

void qfit_sampler_reset(qfit_sampler *s)
{
    s->hist_n = s->hist_pos = 0;
    qfit_rng_seed(&s->rng, s->p.seed);
}

void qfit_sampler_accept(qfit_sampler *s, int32_t token)
{
    if (s->p.repeat_last_n <= 0) return;
    s->hist[s->hist_pos] = token;
    s->hist_pos = (s->hist_pos + 1) % s->p.repeat_last_n;
    if (s->hist_n < s->p.repeat_last_n) s->hist_n++;
}

/* descending logit, ties by lower id */
static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int32_t qfit_sampler_sample(qfit_sampler *s, const float *logits)
{
    const int n = s->n_vocab;
    cand *c = s->c;
    for (int i = 0; i < n; i++) { c[i].id = i; c[i].logit = logits[i]; c[i].p = 0; }

    /* repeat penalty: each distinct recent token once (llama.cpp's rule) */
    if (s->p.repeat_penalty != 1.0f && s->hist_n > 0) {
        for (int i = 0; i < s->hist_n; i++) {
            int32_t t = s->hist[i];
            if (t < 0 || t >= n || s->seen[t]) continue;
            s->seen[t] = 1;
            if (c[t].logit > 0) c[t].logit /= s->p.repeat_penalty;
            else c[t].logit *= s->p.repeat_penalty;
        }
        for (int i = 0; i < s->hist_n; i++) {
            int32_t t = s->hist[i];
            if (t >= 0 && t < n) s->seen[t] = 0;
        }
    }

    if (s->p.temp <= 0.0f) {
        int32_t best = 0;
        for (int i = 1; i < n; i++)
            if (c[i].logit > c[best].logit) best = i;
        return best;
    }

    int m = n;
    /* top-k (also sorts); without it the list is sorted fully */
    qsort(c, (size_t)n, sizeof *c, cmp_cand);
    if (s->p.top_k > 0 && s->p.top_k < m) m = s->p.top_k;

    /* probabilities of the kept candidates */
    double sum = 0;
    for (int i = 0; i < m; i++) { c[i].p = expf(c[i].logit - c[0].logit); sum += c[i].p; }
    for (int i = 0; i < m; i++) c[i].p = (float)(c[i].p / sum);

    if (s->p.top_p < 1.0f) {
        double cum = 0;
        int keep = m;
        for (int i = 0; i < m; i++) {
            cum += c[i].p;
            if (cum >= s->p.top_p) { keep = i + 1; break; }
        }
        m = keep;
    }
    if (s->p.min_p > 0.0f) {
        const float thr = c[0].p * s->p.min_p;
        int keep = 1;
        while (keep < m && c[keep].p >= thr) keep++;
        m = keep;
    }

    /* temperature on the survivors, then draw */
    sum = 0;
    for (int i = 0; i < m; i++) {
        c[i].p = expf((c[i].logit - c[0].logit) / s->p.temp);
        sum += c[i].p;
    }
    double u = qfit_rng_uniform(&s->rng) * sum, acc = 0;
    for (int i = 0; i < m; i++) {
        acc += c[i].p;
        if (u < acc) return c[i].id;
    }
    return c[m - 1].id;
}
