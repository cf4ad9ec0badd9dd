/* Generation: per-sequence state (qfit_gen) and the single-sequence driver. */
#include "qfit/generate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *qfit_gen_reason_name(qfit_gen_reason r)
{
    switch (r) {
    case QFIT_GEN_RUNNING: return "running";
    case QFIT_GEN_STOP: return "stop";
    case QFIT_GEN_LENGTH: return "length";
    case QFIT_GEN_CANCELLED: return "cancelled";
    case QFIT_GEN_ERROR: return "error";
    }
    return "?";
}

void qfit_gen_params_init(qfit_gen_params *p)
{
    memset(p, 0, sizeof *p);
    qfit_sampler_params_init(&p->sampling);
    p->num_predict = -1;
    p->overflow = QFIT_OVERFLOW_ERROR;
}

struct qfit_gen {
    const qfit_tokenizer *tok;
    qfit_gen_params p;            /* stop points into stops */
    qfit_gen_callbacks cb;
    qfit_sampler *smp;
    int n_vocab;
    char **stops;
    size_t *stop_len;
    char *hold;                   /* text not released yet */
    size_t hold_len, hold_cap;
    char *piece;
    size_t piece_cap;
    int n_gen;
    qfit_gen_reason reason;
    /* structured output (all NULL without a grammar) */
    qfit_grammar_matcher *gm;
    qfit_grammar_vocab *own_vocab;
    const qfit_grammar_vocab *vocab;
    uint8_t *allowed;
    float *masked;
    int32_t *eog_ids;
    int n_eog;
    char err[256];
};

static int gen_fail(char *err, size_t err_len, const char *fmt, long v)
{
    if (err && err_len) snprintf(err, err_len, fmt, v);
    return -1;
}

static int check_params(const qfit_gen_params *p, int n_ctx, char *err, size_t err_len)
{
    if (qfit_sampler_params_check(&p->sampling, n_ctx, err, err_len) != 0) return -1;
    if (p->num_predict < -1) return gen_fail(err, err_len, "num_predict %ld is invalid (-1 = no limit, or >= 0)", p->num_predict);
    if (p->n_stop < 0 || p->n_stop > QFIT_GEN_MAX_STOP || (p->n_stop > 0 && !p->stop))
        return gen_fail(err, err_len, "stop: %ld strings (at most 64, and a non-NULL array)", p->n_stop);
    for (int i = 0; i < p->n_stop; i++) {
        size_t n = p->stop[i] ? strlen(p->stop[i]) : 0;
        if (n == 0) return gen_fail(err, err_len, "stop[%ld] is empty", i);
        if (n > QFIT_GEN_MAX_STOP_LEN) return gen_fail(err, err_len, "stop[%ld] is longer than 4096 bytes", i);
    }
    if (p->top_logprobs < 0 || p->top_logprobs > QFIT_TOP_LOGPROBS_MAX)
        return gen_fail(err, err_len, "top_logprobs %ld must be between 0 and 20", p->top_logprobs);
    if (p->top_logprobs > 0 && !p->logprobs)
        return gen_fail(err, err_len, "top_logprobs %ld needs logprobs", p->top_logprobs);
    if (p->n_keep < 0) return gen_fail(err, err_len, "n_keep %ld is invalid (must be >= 0)", p->n_keep);
    if (p->overflow != QFIT_OVERFLOW_ERROR && p->overflow != QFIT_OVERFLOW_SHIFT)
        return gen_fail(err, err_len, "overflow policy %ld is invalid", (long)p->overflow);
    if (p->grammar_vocab && !p->grammar) {
        if (err && err_len) snprintf(err, err_len, "grammar_vocab without a grammar");
        return -1;
    }
    return 0;
}

qfit_grammar_vocab *qfit_gen_grammar_vocab(const qfit_tokenizer *tok, char *err, size_t err_len)
{
    const int32_t n = qfit_tokenizer_n_vocab(tok);
    char **bytes = n > 0 ? calloc((size_t)n, sizeof *bytes) : NULL;
    size_t *lens = n > 0 ? calloc((size_t)n, sizeof *lens) : NULL;
    qfit_grammar_vocab *v = NULL;
    char buf[256];
    int ok = bytes && lens;
    for (int32_t i = 0; ok && i < n; i++) {
        size_t len = qfit_token_to_piece(tok, i, buf, sizeof buf, 0, false);
        if (!(bytes[i] = malloc(len ? len : 1))) ok = 0;
        else if (len > sizeof buf) qfit_token_to_piece(tok, i, bytes[i], len, 0, false);
        else memcpy(bytes[i], buf, len);
        lens[i] = len;
    }
    if (ok) v = qfit_grammar_vocab_new(n, (const char *const *)bytes, lens, err, err_len);
    else if (err && err_len) snprintf(err, err_len, "out of memory");
    for (int32_t i = 0; bytes && i < n; i++) free(bytes[i]);
    free(bytes);
    free(lens);
    return v;
}

/* the grammar state of a new sequence: matcher, vocabulary, mask buffers */
static int grammar_setup(qfit_gen *g, char *err, size_t err_len)
{
    const qfit_gen_params *p = &g->p;
    g->vocab = p->grammar_vocab;
    if (!g->vocab && !(g->vocab = g->own_vocab = qfit_gen_grammar_vocab(g->tok, err, err_len))) return -1;
    if (qfit_grammar_vocab_size(g->vocab) != g->n_vocab) {
        if (err && err_len)
            snprintf(err, err_len, "grammar_vocab has %d tokens, the logits row %d", (int)qfit_grammar_vocab_size(g->vocab),
                     g->n_vocab);
        return -1;
    }
    if (!(g->gm = qfit_grammar_matcher_new(p->grammar, err, err_len))) return -1;
    g->allowed = malloc((size_t)g->n_vocab);
    g->masked = malloc((size_t)g->n_vocab * sizeof *g->masked);
    g->eog_ids = malloc((size_t)g->n_vocab * sizeof *g->eog_ids);
    if (!g->allowed || !g->masked || !g->eog_ids) {
        if (err && err_len) snprintf(err, err_len, "out of memory");
        return -1;
    }
    for (int32_t i = 0; i < g->n_vocab && !p->ignore_eos; i++)
        if (qfit_tokenizer_is_eog(g->tok, i)) g->eog_ids[g->n_eog++] = i;
    return 0;
}

/* logits with the tokens the grammar rejects at -inf; NULL (g->err set) when none is allowed */
static const float *grammar_mask(qfit_gen *g, const float *logits)
{
    const int64_t n = qfit_grammar_matcher_mask(g->gm, g->vocab, g->allowed);
    if (n < 0) {
        snprintf(g->err, sizeof g->err, "grammar: %s", qfit_grammar_matcher_error(g->gm));
        return NULL;
    }
    const bool complete = qfit_grammar_matcher_complete(g->gm);
    if (complete)
        for (int k = 0; k < g->n_eog; k++) g->allowed[g->eog_ids[k]] = 1;
    int64_t finite = 0;
    for (int i = 0; i < g->n_vocab; i++) {
        g->masked[i] = g->allowed[i] ? logits[i] : -INFINITY;
        finite += g->allowed[i] && logits[i] > -INFINITY;
    }
    if (finite == 0) {
        snprintf(g->err, sizeof g->err, "grammar: no token of the vocabulary is allowed here%s",
                 complete ? "" : " (the grammar is not complete)");
        return NULL;
    }
    return g->masked;
}

qfit_gen *qfit_gen_new(const qfit_tokenizer *tok, int n_vocab, int n_ctx, const qfit_gen_params *p,
                       const qfit_gen_callbacks *cb, char *err, size_t err_len)
{
    if (!tok || !p) {
        if (err && err_len) snprintf(err, err_len, "qfit_gen_new: no tokenizer or no parameters");
        return NULL;
    }
    if (check_params(p, n_ctx, err, err_len) != 0) return NULL;
    qfit_gen *g = calloc(1, sizeof *g);
    if (!g) goto oom;
    g->tok = tok;
    g->p = *p;
    if (cb) g->cb = *cb;
    g->n_vocab = n_vocab;
    g->smp = qfit_sampler_new(&p->sampling, n_vocab, n_ctx, err, err_len);
    if (!g->smp) { free(g); return NULL; }
    size_t max_stop = 0;
    if (p->n_stop > 0) {
        g->stops = calloc((size_t)p->n_stop, sizeof *g->stops);
        g->stop_len = calloc((size_t)p->n_stop, sizeof *g->stop_len);
        if (!g->stops || !g->stop_len) goto oom;
        for (int i = 0; i < p->n_stop; i++) {
            g->stop_len[i] = strlen(p->stop[i]);
            if (g->stop_len[i] > max_stop) max_stop = g->stop_len[i];
            if (!(g->stops[i] = strdup(p->stop[i]))) goto oom;
        }
    }
    g->p.stop = (const char *const *)g->stops;
    g->piece_cap = 256;
    g->hold_cap = max_stop + g->piece_cap + 8;
    g->piece = malloc(g->piece_cap);
    g->hold = malloc(g->hold_cap);
    if (!g->piece || !g->hold) goto oom;
    if (p->grammar && grammar_setup(g, err, err_len) != 0) {
        qfit_gen_free(g);
        return NULL;
    }
    return g;
oom:
    qfit_gen_free(g);
    if (err && err_len) snprintf(err, err_len, "out of memory");
    return NULL;
}

void qfit_gen_free(qfit_gen *g)
{
    if (!g) return;
    qfit_sampler_free(g->smp);
    for (int i = 0; g->stops && i < g->p.n_stop; i++) free(g->stops[i]);
    free(g->stops);
    free(g->stop_len);
    free(g->hold);
    free(g->piece);
    qfit_grammar_matcher_free(g->gm);
    qfit_grammar_vocab_free(g->own_vocab);
    free(g->allowed);
    free(g->masked);
    free(g->eog_ids);
    free(g);
}

void qfit_gen_accept_prompt(qfit_gen *g, const int32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) qfit_sampler_accept(g->smp, ids[i]);
}

qfit_gen_reason qfit_gen_reason_of(const qfit_gen *g) { return g->reason; }
const char *qfit_gen_error(const qfit_gen *g) { return g->err; }
int qfit_gen_n_generated(const qfit_gen *g) { return g->n_gen; }
uint64_t qfit_gen_seed(const qfit_gen *g) { return qfit_sampler_seed(g->smp); }

static void emit(qfit_gen *g, size_t n)
{
    if (n == 0) return;
    if (g->cb.on_text && g->cb.on_text(g->cb.user, g->hold, n) != 0 && g->reason == QFIT_GEN_RUNNING)
        g->reason = QFIT_GEN_CANCELLED;
    memmove(g->hold, g->hold + n, g->hold_len - n);
    g->hold_len -= n;
}

/* n, or less when s[0..n) ends inside a UTF-8 character that is still arriving
 * (a lead byte followed by fewer continuation bytes than it announces) */
static size_t utf8_cut(const char *s, size_t n)
{
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        const unsigned char b = (unsigned char)s[n - back];
        if ((b & 0xC0) == 0x80) continue;   /* continuation byte: look further back */
        const size_t need = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 1;
        return need > back ? n - back : n;
    }
    return n;
}

/* Release what can no longer become a stop string. final: flush everything. */
static void release(qfit_gen *g, bool final)
{
    if (final) { emit(g, g->hold_len); return; }
    /* a complete stop string: emit what precedes the earliest one, then stop */
    size_t first = SIZE_MAX;
    for (int i = 0; i < g->p.n_stop; i++) {
        const char *hit = memmem(g->hold, g->hold_len, g->stops[i], g->stop_len[i]);
        if (hit && (size_t)(hit - g->hold) < first) first = (size_t)(hit - g->hold);
    }
    if (first != SIZE_MAX) {
        g->reason = QFIT_GEN_STOP;
        emit(g, first);
        g->hold_len = 0;
        return;
    }
    /* hold back the longest suffix that is a prefix of some stop string */
    size_t safe = g->hold_len;
    for (size_t j = 0; j < g->hold_len && safe == g->hold_len; j++) {
        const size_t rest = g->hold_len - j;
        for (int i = 0; i < g->p.n_stop; i++)
            if (rest < g->stop_len[i] && memcmp(g->hold + j, g->stops[i], rest) == 0) { safe = j; break; }
    }
    emit(g, utf8_cut(g->hold, safe));
}

void qfit_gen_finish(qfit_gen *g, qfit_gen_reason r)
{
    if (g->reason != QFIT_GEN_RUNNING) return;
    g->reason = r;
    release(g, true);
}

static int append_hold(qfit_gen *g, const char *s, size_t n)
{
    if (g->hold_len + n > g->hold_cap) {
        size_t cap = (g->hold_len + n) * 2;
        char *h = realloc(g->hold, cap);
        if (!h) return -1;
        g->hold = h;
        g->hold_cap = cap;
    }
    memcpy(g->hold + g->hold_len, s, n);
    g->hold_len += n;
    return 0;
}

int32_t qfit_gen_step(qfit_gen *g, const float *logits)
{
    if (g->reason != QFIT_GEN_RUNNING) return -1;
    if (g->p.num_predict >= 0 && g->n_gen >= g->p.num_predict) { qfit_gen_finish(g, QFIT_GEN_LENGTH); return -1; }
    const float *row = logits;
    if (g->gm && !(row = grammar_mask(g, logits))) { qfit_gen_finish(g, QFIT_GEN_ERROR); return -1; }
    const int32_t t = qfit_sampler_sample(g->smp, row);
    if (t < 0) { qfit_gen_finish(g, QFIT_GEN_ERROR); return -1; }
    qfit_sampler_accept(g->smp, t);
    g->n_gen++;
    const bool eog = !g->p.ignore_eos && qfit_tokenizer_is_eog(g->tok, t);
    size_t len = 0;
    if (!eog) {
        len = qfit_token_to_piece(g->tok, t, g->piece, g->piece_cap, 0, false);
        if (len > g->piece_cap) {
            char *np = realloc(g->piece, len);
            if (!np) { qfit_gen_finish(g, QFIT_GEN_ERROR); return -1; }
            g->piece = np;
            g->piece_cap = len;
            len = qfit_token_to_piece(g->tok, t, g->piece, g->piece_cap, 0, false);
        }
    }
    if (g->cb.on_token) {
        qfit_gen_token info = { .id = t, .piece = eog ? "" : g->piece, .piece_len = len, .eog = eog };
        if (g->p.logprobs)
            info.n_top = qfit_logprobs(logits, g->n_vocab, t, g->p.top_logprobs, &info.logprob, info.top);
        if (info.n_top < 0) info.n_top = 0;
        if (g->cb.on_token(g->cb.user, &info) != 0) {
            qfit_gen_finish(g, QFIT_GEN_CANCELLED);
            return -1;
        }
    }
    if (eog) { qfit_gen_finish(g, QFIT_GEN_STOP); return -1; }
    if (g->gm && qfit_grammar_matcher_accept(g->gm, g->piece, len) != 1) {   /* the mask allowed it: a limit */
        snprintf(g->err, sizeof g->err, "grammar: %s", qfit_grammar_matcher_error(g->gm));
        qfit_gen_finish(g, QFIT_GEN_ERROR);
        return -1;
    }
    if (append_hold(g, g->piece, len) != 0) { qfit_gen_finish(g, QFIT_GEN_ERROR); return -1; }
    release(g, false);
    if (g->reason != QFIT_GEN_RUNNING) return -1;   /* a stop string (nothing held), or on_text cancelled */
    if (g->gm && qfit_grammar_matcher_complete(g->gm) && !qfit_grammar_matcher_can_continue(g->gm)) {
        qfit_gen_finish(g, QFIT_GEN_STOP);   /* the grammar is done: nothing else may follow */
        return -1;
    }
    if (g->p.num_predict >= 0 && g->n_gen >= g->p.num_predict) { qfit_gen_finish(g, QFIT_GEN_LENGTH); return -1; }
    return t;
}

/* ------------------------------------------------------------------ driver */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool aborted(const qfit_gen_callbacks *cb)
{
    return cb && cb->should_abort && cb->should_abort(cb->user);
}

int qfit_generate(qfit_context *c, const qfit_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                  const qfit_gen_params *p, const qfit_gen_callbacks *cb, qfit_gen_result *res)
{
    const uint64_t t0 = now_ns();
    memset(res, 0, sizeof *res);
    res->reason = QFIT_GEN_ERROR;
    res->load_ns = p ? p->load_ns : 0;
    const int n_ctx = qfit_context_n_ctx(c), n_past0 = qfit_context_n_past(c), n_batch = qfit_context_n_batch(c);
    const int n_vocab = qfit_model_hparams(qfit_context_model(c))->n_vocab;
    qfit_gen *g = NULL;
    res->status = QFIT_E_INVALID;
    if (!p) { snprintf(res->error, sizeof res->error, "no generation parameters"); goto done; }
    if (n_prompt == 0) { snprintf(res->error, sizeof res->error, "the prompt is empty"); goto done; }
    g = qfit_gen_new(tok, n_vocab, n_ctx, p, cb, res->error, sizeof res->error);
    if (!g) goto done;
    res->status = QFIT_OK;
    res->seed = qfit_gen_seed(g);

    int n_keep = p->n_keep + (qfit_tokenizer_add_bos(tok) ? 1 : 0);
    if (n_keep > n_ctx / 2) n_keep = n_ctx / 2;
    /* the prompt plus the first generated token must fit */
    if (n_prompt >= (size_t)(n_ctx - n_past0)) {
        if (n_past0 > 0)
            snprintf(res->error, sizeof res->error,
                     "the prompt (%zu tokens) does not fit the context (%d tokens, %d already cached)", n_prompt,
                     n_ctx, n_past0);
        else
            snprintf(res->error, sizeof res->error, "the prompt (%zu tokens) does not fit the context (%d tokens)",
                     n_prompt, n_ctx);
        res->status = QFIT_E_CONTEXT_FULL;
        goto done;
    }
    if (n_keep > n_past0 + (int)n_prompt) n_keep = n_past0 + (int)n_prompt;
    if (p->history && p->n_history) qfit_gen_accept_prompt(g, p->history, p->n_history);
    qfit_gen_accept_prompt(g, prompt, n_prompt);

    /* prefill in micro-batches of n_batch, polling the abort between them */
    const int n_eval = (int)n_prompt;
    for (int done = 0; done < n_eval;) {
        if (cb && cb->on_prefill) cb->on_prefill(cb->user, done, n_eval);
        if (aborted(cb)) { qfit_gen_finish(g, QFIT_GEN_CANCELLED); break; }
        const int n = n_eval - done < n_batch ? n_eval - done : n_batch;
        const bool last = done + n == n_eval;
        if (qfit_decode(c, prompt + done, n, last ? n - 1 : n) != 0) {
            snprintf(res->error, sizeof res->error, "%s", qfit_context_error(c));
            res->status = qfit_context_status(c);
            qfit_gen_finish(g, QFIT_GEN_ERROR);
            break;
        }
        done += n;
        res->prompt_eval_count = done;
        if (last && cb && cb->on_prefill) cb->on_prefill(cb->user, done, n_eval);
    }
    const uint64_t t1 = now_ns();
    res->prompt_eval_ns = t1 - t0;

    while (qfit_gen_reason_of(g) == QFIT_GEN_RUNNING) {
        if (aborted(cb)) { qfit_gen_finish(g, QFIT_GEN_CANCELLED); break; }
        int32_t t = qfit_gen_step(g, qfit_get_logits(c, 0));
        if (t < 0) break;
        if (aborted(cb)) { qfit_gen_finish(g, QFIT_GEN_CANCELLED); break; }
        if (qfit_context_n_past(c) >= n_ctx) {
            if (p->overflow != QFIT_OVERFLOW_SHIFT) {
                res->context_full = true;
                qfit_gen_finish(g, QFIT_GEN_LENGTH);
                break;
            }
            const int n_past = qfit_context_n_past(c);
            const int n_discard = (n_past - n_keep) / 2;
            if (n_discard < 1 || qfit_context_shift(c, n_keep, n_discard) != 0) {
                snprintf(res->error, sizeof res->error, "context shift failed: %s",
                         n_discard < 1 ? "nothing to discard" : qfit_context_error(c));
                res->status = n_discard < 1 ? QFIT_E_CONTEXT_FULL : qfit_context_status(c);
                qfit_gen_finish(g, QFIT_GEN_ERROR);
                break;
            }
            res->n_shifts++;
            res->n_discarded += n_discard;
            if (cb && cb->on_shift) cb->on_shift(cb->user, n_keep, n_discard, qfit_context_n_past(c));
        }
        if (qfit_decode(c, &t, 1, 0) != 0) {
            snprintf(res->error, sizeof res->error, "%s", qfit_context_error(c));
            res->status = qfit_context_status(c);
            qfit_gen_finish(g, QFIT_GEN_ERROR);
            break;
        }
    }
    res->eval_ns = now_ns() - t1;
    res->eval_count = qfit_gen_n_generated(g);
    res->reason = qfit_gen_reason_of(g);
    if (res->reason == QFIT_GEN_ERROR && !res->error[0] && qfit_gen_error(g)[0])
        snprintf(res->error, sizeof res->error, "%s", qfit_gen_error(g));
    if (res->reason == QFIT_GEN_ERROR && !res->error[0])
        snprintf(res->error, sizeof res->error, "no token can be sampled (every logit is -inf or NaN)");
    if (res->reason == QFIT_GEN_ERROR && res->status == QFIT_OK) res->status = QFIT_E_INTERNAL;
done:
    qfit_gen_free(g);
    res->total_ns = res->load_ns + (now_ns() - t0);
    return res->reason == QFIT_GEN_ERROR ? -1 : 0;
}

int qfit_generate_text(qfit_context *c, const qfit_tokenizer *tok, const char *prompt, const qfit_gen_params *p,
                       const qfit_gen_callbacks *cb, qfit_gen_result *res)
{
    int32_t *ids = NULL;
    size_t n = 0;
    if (!prompt || qfit_tokenize_alloc(tok, prompt, strlen(prompt), true, false, &ids, &n) != 0) {
        memset(res, 0, sizeof *res);
        res->reason = QFIT_GEN_ERROR;
        snprintf(res->error, sizeof res->error, "tokenization failed");
        return -1;
    }
    int rc = qfit_generate(c, tok, ids, n, p, cb, res);
    free(ids);
    return rc;
}
