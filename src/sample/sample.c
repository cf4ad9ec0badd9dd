/* Sampling chain: penalties, top-k, typical-p, top-p, min-p, temperature, draw.
 *
 * Cost: the common case (top_k > 0) never touches more than the k best
 * candidates after one read-only pass over the row (a k-entry min-heap), so a
 * 152K-entry row costs about one comparison per entry. Without top_k the
 * candidate list is the whole vocabulary: top_p then buckets it by logit and
 * sorts one bucket (top_p_unsorted); typical_p sorts it fully (rarely used). */
#include "qfit/sample.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platform/platform.h"

void qfit_sampler_params_init(qfit_sampler_params *p)
{
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.9f;
    p->min_p = 0.0f;
    p->typical_p = 1.0f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->presence_penalty = 0.0f;
    p->frequency_penalty = 0.0f;
    p->seed = QFIT_SEED_RANDOM;
}

static int fail(char *err, size_t err_len, const char *what, double v, const char *rule)
{
    if (err && err_len) snprintf(err, err_len, "%s %g %s", what, v, rule);
    return -1;
}

int qfit_sampler_params_check(const qfit_sampler_params *p, int n_ctx, char *err, size_t err_len)
{
    if (!(p->temperature >= 0.0f) || isinf(p->temperature))
        return fail(err, err_len, "temperature", p->temperature, "is invalid (must be finite and >= 0)");
    if (p->top_k < 0) return fail(err, err_len, "top_k", p->top_k, "is invalid (must be >= 0; 0 = off)");
    const struct { const char *name; float v; } unit[] = {
        { "top_p", p->top_p }, { "min_p", p->min_p }, { "typical_p", p->typical_p } };
    for (size_t i = 0; i < sizeof unit / sizeof *unit; i++)
        if (!(unit[i].v >= 0.0f && unit[i].v <= 1.0f))
            return fail(err, err_len, unit[i].name, unit[i].v, "is outside [0, 1]");
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
        return fail(err, err_len, "repeat_penalty", p->repeat_penalty, "is invalid (must be finite and > 0; 1 = off)");
    if (!isfinite(p->presence_penalty))
        return fail(err, err_len, "presence_penalty", p->presence_penalty, "is invalid (must be finite)");
    if (!isfinite(p->frequency_penalty))
        return fail(err, err_len, "frequency_penalty", p->frequency_penalty, "is invalid (must be finite)");
    if (p->repeat_last_n < -1)
        return fail(err, err_len, "repeat_last_n", p->repeat_last_n, "is invalid (-1 = context size, 0 = off, or > 0)");
    if (p->repeat_last_n == -1 && n_ctx < 1)
        return fail(err, err_len, "repeat_last_n", -1, "(the context size) needs a context size >= 1");
    return 0;
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

typedef struct { int32_t id; float logit; float p; float key; } cand;   /* key: typical_p's distance */

struct qfit_sampler {
    qfit_sampler_params p;   /* resolved: repeat_last_n >= 0, seed != random */
    int n_vocab;
    qfit_rng rng;
    cand *c;                 /* n_vocab candidates */
    cand *c2;                /* scratch for top_p without top_k (allocated on first use) */
    float *work;             /* n_vocab: the row with penalties applied */
    /* penalty window: a ring of the last repeat_last_n tokens, the count of each
     * token in it, and the list of distinct tokens (where[t]: index in distinct) */
    int32_t *ring;
    int ring_n, ring_pos;
    int32_t *count, *distinct, *where;
    int n_distinct;
};

int32_t qfit_argmax(const float *logits, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

/* The largest entry, NaN skipped (-inf if none). Eight independent lanes of
 * "x > m ? x : m" (the compiler makes them one max instruction per vector):
 * a single running maximum would make each step wait for the previous one. */
static float row_max(const float *row, int n)
{
    float m8[8];
    for (int j = 0; j < 8; j++) m8[j] = -INFINITY;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) m8[j] = row[i + j] > m8[j] ? row[i + j] : m8[j];
    float mx = -INFINITY;
    for (int j = 0; j < 8; j++) mx = m8[j] > mx ? m8[j] : mx;
    for (; i < n; i++) mx = row[i] > mx ? row[i] : mx;
    return mx;
}

static bool penalties_on(const qfit_sampler_params *p)
{
    return p->repeat_last_n > 0 &&
           (p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f);
}

qfit_sampler *qfit_sampler_new(const qfit_sampler_params *pp, int n_vocab, int n_ctx, char *err, size_t err_len)
{
    qfit_sampler_params p;
    if (pp) p = *pp; else qfit_sampler_params_init(&p);
    if (n_vocab < 1) {
        if (err && err_len) snprintf(err, err_len, "sampler: n_vocab %d is invalid", n_vocab);
        return NULL;
    }
    if (qfit_sampler_params_check(&p, n_ctx, err, err_len) != 0) return NULL;
    if (p.repeat_last_n == -1) p.repeat_last_n = n_ctx;
    if (p.seed == QFIT_SEED_RANDOM) {
        uint64_t r = 0;
        if (qfit_sys_random(&r, sizeof r, false) != 0) r = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&r;
        p.seed = r == QFIT_SEED_RANDOM ? 0 : r;
    }
    qfit_sampler *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->p = p;
    s->n_vocab = n_vocab;
    s->c = malloc(sizeof(cand) * (size_t)n_vocab);
    if (!s->c) goto oom;
    if (penalties_on(&p)) {
        s->work = malloc(sizeof(float) * (size_t)n_vocab);
        s->ring = malloc(sizeof(int32_t) * (size_t)p.repeat_last_n);
        s->count = calloc((size_t)n_vocab, sizeof(int32_t));
        s->where = malloc(sizeof(int32_t) * (size_t)n_vocab);
        s->distinct = malloc(sizeof(int32_t) * (size_t)(p.repeat_last_n < n_vocab ? p.repeat_last_n : n_vocab));
        if (!s->work || !s->ring || !s->count || !s->where || !s->distinct) goto oom;
    }
    qfit_rng_seed(&s->rng, p.seed);
    return s;
oom:
    qfit_sampler_free(s);
    if (err && err_len) snprintf(err, err_len, "sampler: out of memory (n_vocab %d)", n_vocab);
    return NULL;
}

void qfit_sampler_free(qfit_sampler *s)
{
    if (!s) return;
    free(s->c);
    free(s->c2);
    free(s->work);
    free(s->ring);
    free(s->count);
    free(s->where);
    free(s->distinct);
    free(s);
}

uint64_t qfit_sampler_seed(const qfit_sampler *s) { return s->p.seed; }
const qfit_sampler_params *qfit_sampler_get_params(const qfit_sampler *s) { return &s->p; }

void qfit_sampler_reset(qfit_sampler *s)
{
    if (s->count)
        for (int i = 0; i < s->n_distinct; i++) s->count[s->distinct[i]] = 0;
    s->n_distinct = 0;
    s->ring_n = s->ring_pos = 0;
    qfit_rng_seed(&s->rng, s->p.seed);
}

static void count_add(qfit_sampler *s, int32_t t, int d)
{
    if (s->count[t] == 0) {             /* enters the window */
        s->where[t] = s->n_distinct;
        s->distinct[s->n_distinct++] = t;
    }
    s->count[t] += d;
    if (s->count[t] == 0) {             /* leaves it: swap-remove from the distinct list */
        int32_t last = s->distinct[--s->n_distinct];
        s->distinct[s->where[t]] = last;
        s->where[last] = s->where[t];
    }
}

void qfit_sampler_accept(qfit_sampler *s, int32_t token)
{
    if (!s->ring || token < 0 || token >= s->n_vocab) return;
    const int n = s->p.repeat_last_n;
    if (s->ring_n == n) count_add(s, s->ring[s->ring_pos], -1);
    else s->ring_n++;
    s->ring[s->ring_pos] = token;
    s->ring_pos = (s->ring_pos + 1) % n;
    count_add(s, token, +1);
}

/* ordering of candidates: larger logit first, ties to the lower id */
static inline bool better(const cand *a, const cand *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_cand(const void *a, const void *b)
{
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

/* min-heap on "better": the root is the worst of the kept candidates */
static void sift_down(cand *h, int n, int i)
{
    for (;;) {
        int w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && better(&h[w], &h[l])) w = l;
        if (r < n && better(&h[w], &h[r])) w = r;
        if (w == i) return;
        cand t = h[i]; h[i] = h[w]; h[w] = t;
        i = w;
    }
}

/* The k best finite entries of row[0..n) into out[0..k), best first. One pass:
 * an entry enters only when it beats the heap's worst (entries arrive in id
 * order, so an equal logit never beats an earlier id). Returns how many. */
static int select_top(const float *row, int n, int k, cand *out)
{
    int m = 0, i = 0;
    for (; i < n && m < k; i++)
        if (row[i] > -INFINITY) out[m++] = (cand){ i, row[i], 0, 0 };
    for (int j = m / 2 - 1; j >= 0; j--) sift_down(out, m, j);
    if (m == k)
        for (; i < n; i++)
            if (row[i] > out[0].logit) {
                out[0] = (cand){ i, row[i], 0, 0 };
                sift_down(out, m, 0);
            }
    qsort(out, (size_t)m, sizeof *out, cmp_cand);
    return m;
}

static float max_logit(const cand *c, int m)
{
    float mx = c[0].logit;
    for (int i = 1; i < m; i++)
        if (c[i].logit > mx) mx = c[i].logit;
    return mx;
}

/* c[i].p = softmax of the logits of c[0..m) (m >= 1, finite maximum) */
static void softmax(cand *c, int m)
{
    const float mx = max_logit(c, m);
    double sum = 0;
    for (int i = 0; i < m; i++) { c[i].p = expf(c[i].logit - mx); sum += c[i].p; }
    for (int i = 0; i < m; i++) c[i].p = (float)(c[i].p / sum);
}

/* ascending distance from the entropy, ties to the lower id */
static int cmp_typical(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* locally typical sampling (Meister et al. 2022, as llama.cpp): keep the tokens
 * whose surprise -log p is closest to the entropy H until their mass exceeds typ */
static int typical(cand *c, int m, float typ)
{
    softmax(c, m);
    double h = 0;
    for (int i = 0; i < m; i++)
        if (c[i].p > 0) h -= (double)c[i].p * log(c[i].p);
    for (int i = 0; i < m; i++)
        c[i].key = c[i].p > 0 ? (float)fabs(-log(c[i].p) - h) : INFINITY;
    qsort(c, (size_t)m, sizeof *c, cmp_typical);
    double cum = 0;
    for (int i = 0; i < m; i++) {
        cum += c[i].p;
        if (cum > typ) return i + 1;
    }
    return m;
}

/* top_p over an unsorted list (no top_k before it: possibly the whole
 * vocabulary). The candidates are bucketed by logit, whole buckets are taken
 * from the top while their mass stays below p, and only the bucket where the
 * mass reaches p is sorted: O(n) plus one bucket's sort instead of a full sort.
 * The kept set is the same as with a full sort: bucket order follows logit
 * order, and ties share a bucket. Survivors end up in s->c in bucket order. */
#define TOP_P_BUCKETS 1024
static int top_p_unsorted(qfit_sampler *s, int m, float top_p)
{
    cand *c = s->c;
    if (!s->c2 && !(s->c2 = malloc(sizeof(cand) * (size_t)s->n_vocab))) return -1;
    softmax(c, m);
    float mx = c[0].logit, mn = c[0].logit;
    for (int i = 1; i < m; i++) {
        if (c[i].logit > mx) mx = c[i].logit;
        if (c[i].logit < mn) mn = c[i].logit;
    }
    const float scale = mx > mn ? (float)(TOP_P_BUCKETS - 1) / (mx - mn) : 0.0f;
    int count[TOP_P_BUCKETS + 1] = { 0 };
    double mass[TOP_P_BUCKETS] = { 0 };
    for (int i = 0; i < m; i++) {
        int b = (int)((mx - c[i].logit) * scale);   /* 0: the largest logits */
        if (b > TOP_P_BUCKETS - 1) b = TOP_P_BUCKETS - 1;
        c[i].key = (float)b;
        count[b + 1]++;
        mass[b] += c[i].p;
    }
    int edge = TOP_P_BUCKETS - 1;
    double cum = 0;
    for (int b = 0; b < TOP_P_BUCKETS; b++) {
        if (cum + mass[b] >= top_p) { edge = b; break; }
        cum += mass[b];
    }
    for (int b = 0; b < TOP_P_BUCKETS; b++) count[b + 1] += count[b];   /* bucket start offsets */
    cand *out = s->c2;
    for (int i = 0; i < m; i++) {
        const int b = (int)c[i].key;
        if (b <= edge) out[count[b]++] = c[i];
    }
    const int start = edge > 0 ? count[edge - 1] : 0, end = count[edge];
    qsort(out + start, (size_t)(end - start), sizeof *out, cmp_cand);
    int keep = end;
    for (int i = start; i < end; i++) {
        cum += out[i].p;
        if (cum >= top_p) { keep = i + 1; break; }
    }
    memcpy(c, out, sizeof(cand) * (size_t)keep);
    return keep;
}

int32_t qfit_sampler_sample(qfit_sampler *s, const float *logits)
{
    const qfit_sampler_params *p = &s->p;
    const int n = s->n_vocab;
    const float *row = logits;

    if (s->ring && s->n_distinct > 0) {
        memcpy(s->work, logits, sizeof(float) * (size_t)n);
        for (int i = 0; i < s->n_distinct; i++) {
            const int32_t t = s->distinct[i];
            float l = s->work[t];
            l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
            l -= (float)s->count[t] * p->frequency_penalty + p->presence_penalty;
            s->work[t] = l;
        }
        row = s->work;
    }

    /* greedy: every stage before temperature keeps the largest logit, except typical_p */
    if (p->temperature <= 0.0f && p->typical_p >= 1.0f) {
        const float mx = row_max(row, n);
        if (!(mx > -INFINITY)) return -1;
        int32_t best = 0;
        while (row[best] != mx) best++;
        return best;
    }

    cand *c = s->c;
    int m = 0;
    bool sorted;
    if (p->top_k > 0 && p->top_k < n) {
        m = select_top(row, n, p->top_k, c);
        sorted = true;
    } else {
        for (int i = 0; i < n; i++)
            if (row[i] > -INFINITY) c[m++] = (cand){ i, row[i], 0, 0 };
        sorted = false;
    }
    if (m == 0) return -1;

    if (p->typical_p < 1.0f) {
        m = typical(c, m, p->typical_p);
        sorted = false;
    }
    if (p->top_p < 1.0f) {
        if (sorted) {
            softmax(c, m);
            double cum = 0;
            for (int i = 0; i < m; i++) {
                cum += c[i].p;
                if (cum >= p->top_p) { m = i + 1; break; }
            }
        } else {
            m = top_p_unsorted(s, m, p->top_p);
            if (m < 0) return -1;
        }
    }
    if (p->min_p > 0.0f) {
        const float thr = max_logit(c, m) + logf(p->min_p);
        int k = 0;
        for (int i = 0; i < m; i++)
            if (c[i].logit >= thr) c[k++] = c[i];
        m = k;
    }

    if (p->temperature <= 0.0f) {
        int best = 0;
        for (int i = 1; i < m; i++)
            if (better(&c[i], &c[best])) best = i;
        return c[best].id;
    }
    /* draw: survivors in their current order (best first whenever top_k or top_p ran) */
    const float mx = max_logit(c, m);
    double sum = 0;
    for (int i = 0; i < m; i++) {
        c[i].p = expf((c[i].logit - mx) / p->temperature);
        sum += c[i].p;
    }
    double u = qfit_rng_uniform(&s->rng) * sum, acc = 0;
    for (int i = 0; i < m; i++) {
        acc += c[i].p;
        if (u < acc) return c[i].id;
    }
    return c[m - 1].id;
}

int qfit_logprobs(const float *logits, int n_vocab, int32_t token, int n_top, float *token_logprob,
                  qfit_token_logprob *top)
{
    if (!logits || n_vocab < 1 || token < 0 || token >= n_vocab || n_top < 0 || n_top > QFIT_TOP_LOGPROBS_MAX ||
        (n_top > 0 && !top))
        return -1;
    const float mx = row_max(logits, n_vocab);
    if (!(mx > -INFINITY) || isinf(mx)) return -1;
    double sum = 0;
    for (int i = 0; i < n_vocab; i++)
        if (logits[i] > -INFINITY) sum += expf(logits[i] - mx);
    const double lse = mx + log(sum);
    if (token_logprob) *token_logprob = logits[token] > -INFINITY ? (float)(logits[token] - lse) : -INFINITY;
    cand best[QFIT_TOP_LOGPROBS_MAX];
    int k = n_top > 0 ? select_top(logits, n_vocab, n_top, best) : 0;
    for (int i = 0; i < k; i++) top[i] = (qfit_token_logprob){ best[i].id, (float)(best[i].logit - lse) };
    return k;
}
