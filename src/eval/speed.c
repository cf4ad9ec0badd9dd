/* Speed runs timed the way llama-bench (pp, tg) and llama-batched-bench (n_seq
 * sequences) do; moved here from src/cli/cmd_bench.c so qfit bench and qfit eval
 * share them. */
#include "qfit/eval.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qfit/sample.h"

int qfit_speed_init(qfit_speed *s, qfit_context *c, int depth, int n_seq, int max_n, char *err, size_t err_len)
{
    memset(s, 0, sizeof *s);
    if (depth < 0 || n_seq < 1 || max_n < 0 || (int64_t)max_n * n_seq > (1 << 26)) {
        snprintf(err, err_len, "speed: invalid depth %d / sequences %d / tokens %d", depth, n_seq, max_n);
        return -1;
    }
    s->c = c;
    s->depth = depth;
    s->n_seq = n_seq;
    const size_t n = (size_t)max_n * (size_t)n_seq + 1;
    s->tok = malloc(n * sizeof *s->tok);
    s->seq = malloc(n * sizeof *s->seq);
    s->want = malloc(n * sizeof *s->want);
    if (!s->tok || !s->seq || !s->want) {
        qfit_speed_free(s);
        snprintf(err, err_len, "speed: out of memory");
        return -1;
    }
    return 0;
}

void qfit_speed_free(qfit_speed *s)
{
    free(s->tok);
    free(s->seq);
    free(s->want);
    memset(s, 0, sizeof *s);
}

int qfit_speed_fill(qfit_speed *s, const int32_t *toks)
{
    qfit_context_reset(s->c);
    const int nb = qfit_context_n_batch(s->c);
    for (int i = 0; i < s->depth; i += nb) {
        const int k = s->depth - i < nb ? s->depth - i : nb;
        if (qfit_decode(s->c, toks + i, k, k) != 0) return -1;
    }
    for (int q = 1; q < s->n_seq; q++)
        if (qfit_seq_copy(s->c, 0, q, -1) != 0) return -1;
    return 0;
}

int qfit_speed_reset(qfit_speed *s, const int32_t *toks)
{
    bool kept = true;
    for (int q = 0; q < s->n_seq; q++) {
        qfit_seq_truncate(s->c, q, s->depth);
        kept &= qfit_seq_n_past(s->c, q) == s->depth;
    }
    return kept ? 0 : qfit_speed_fill(s, toks);
}

int qfit_speed_pp(qfit_speed *s, const int32_t *toks, int n)
{
    if (qfit_speed_reset(s, toks) != 0) return -1;
    toks += s->depth;
    const int total = n * s->n_seq, nb = qfit_context_n_batch(s->c);
    for (int i = 0; i < total; i++) {
        s->tok[i] = toks[i % n];
        s->seq[i] = i / n;
        s->want[i] = i % n == n - 1;
    }
    for (int i = 0; i < total; i += nb) {
        const int k = total - i < nb ? total - i : nb;
        const qfit_batch b = { .n_tokens = k, .token = s->tok + i, .seq = s->seq + i, .logits = s->want + i };
        if (qfit_decode_batch(s->c, &b) != 0) return -1;
    }
    return 0;
}

int qfit_speed_tg(qfit_speed *s, const int32_t *toks, int n)
{
    if (qfit_speed_reset(s, toks) != 0) return -1;
    toks += s->depth;
    for (int i = 0; i < n; i++) {
        for (int q = 0; q < s->n_seq; q++) {
            s->tok[q] = toks[(i + q) % n];
            s->seq[q] = q;
            s->want[q] = true;
        }
        const qfit_batch b = { .n_tokens = s->n_seq, .token = s->tok, .seq = s->seq, .logits = s->want };
        if (qfit_decode_batch(s->c, &b) != 0) return -1;
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int qfit_speed_measure(qfit_context *c, int pp, int tg, int reps, double *pp_tps, double *tg_tps,
                       char *err, size_t err_len)
{
    *pp_tps = *tg_tps = 0.0;
    const int n = pp > tg ? pp : tg;
    if (n > qfit_context_n_ctx(c) || reps < 1 || pp < 0 || tg < 0) {
        snprintf(err, err_len, "speed: pp %d / tg %d / reps %d do not fit a context of %d", pp, tg, reps,
                 qfit_context_n_ctx(c));
        return -1;
    }
    qfit_speed s;
    if (qfit_speed_init(&s, c, 0, 1, n, err, err_len) != 0) return -1;
    const int n_vocab = qfit_model_hparams(qfit_context_model(c))->n_vocab;
    int32_t *toks = malloc(sizeof *toks * (size_t)(n > 0 ? n : 1));
    if (!toks) { qfit_speed_free(&s); snprintf(err, err_len, "speed: out of memory"); return -1; }
    qfit_rng rng;   /* random tokens, as qfit bench and llama-bench */
    qfit_rng_seed(&rng, 42);
    for (int i = 0; i < n; i++) toks[i] = (int32_t)(qfit_rng_next(&rng) % (uint64_t)n_vocab);
    int rc = 0;
    for (int which = 0; which < 2 && rc == 0; which++) {
        const int cnt = which == 0 ? pp : tg;
        if (cnt < 1) continue;
        int (*once)(qfit_speed *, const int32_t *, int) = which == 0 ? qfit_speed_pp : qfit_speed_tg;
        if (once(&s, toks, which == 0 ? cnt : 1) != 0) { rc = -1; break; }   /* warm-up */
        double sum = 0.0;
        for (int r = 0; r < reps && rc == 0; r++) {
            if (qfit_speed_reset(&s, toks) != 0) { rc = -1; break; }
            const double t0 = now_s();
            if (once(&s, toks, cnt) != 0) rc = -1;
            else sum += (double)cnt / (now_s() - t0);
        }
        *(which == 0 ? pp_tps : tg_tps) = sum / reps;
    }
    if (rc != 0) snprintf(err, err_len, "speed: %s", qfit_context_error(c));
    free(toks);
    qfit_speed_free(&s);
    return rc;
}
