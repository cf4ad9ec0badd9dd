/* The batcher: continuous batching of many generations over one multi-sequence context,
 * with prompt reuse across requests (see qfit/generate.h). */
#include "qfit/generate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { SEQ_FREE = 0, SEQ_PROMPT, SEQ_GEN, SEQ_DONE } seq_state;

typedef struct {
    seq_state st;
    int32_t  *cache;        /* the tokens this sequence's KV cache holds, in order */
    int       n_cache, cap; /* cap: n_ctx */
    int32_t  *prompt;       /* the request's prompt */
    int       n_prompt, n_fed;   /* n_fed: prompt tokens in the cache (reused + evaluated) */
    int32_t   next;         /* SEQ_GEN: the token to evaluate next */
    qfit_gen *g;
    qfit_gen_callbacks cb;
    qfit_overflow_policy overflow;
    int       n_keep;
    bool      cancel;
    uint64_t  t0, t_gen, last_used;
    qfit_gen_result res;
} seq_slot;

struct qfit_batcher {
    qfit_context *c;
    const qfit_tokenizer *tok;
    int n_seq, n_ctx, n_batch, n_vocab;
    seq_slot *s;
    uint64_t clock;          /* submission counter: LRU order */
    qfit_batcher_stats stats;
    /* one batch */
    int32_t *tok_buf;
    int *seq_buf, *row_seq;
    bool *want;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

qfit_batcher *qfit_batcher_new(qfit_context *c, const qfit_tokenizer *tok, char *err, size_t err_len)
{
    qfit_batcher *b = calloc(1, sizeof *b);
    if (!b) { snprintf(err, err_len, "out of memory"); return NULL; }
    b->c = c;
    b->tok = tok;
    b->n_seq = qfit_context_n_seq(c);
    b->n_ctx = qfit_context_n_ctx(c);
    b->n_batch = qfit_context_n_batch(c);
    b->n_vocab = qfit_model_hparams(qfit_context_model(c))->n_vocab;
    if (b->n_batch < b->n_seq) {
        snprintf(err, err_len, "a batch of %d tokens cannot hold one token of each of %d sequences", b->n_batch,
                 b->n_seq);
        free(b);
        return NULL;
    }
    b->s = calloc((size_t)b->n_seq, sizeof *b->s);
    b->tok_buf = malloc((size_t)b->n_batch * sizeof *b->tok_buf);
    b->seq_buf = malloc((size_t)b->n_batch * sizeof *b->seq_buf);
    b->row_seq = malloc((size_t)b->n_batch * sizeof *b->row_seq);
    b->want = malloc((size_t)b->n_batch * sizeof *b->want);
    bool ok = b->s && b->tok_buf && b->seq_buf && b->row_seq && b->want;
    for (int i = 0; ok && i < b->n_seq; i++) {
        b->s[i].cap = b->n_ctx;
        ok = (b->s[i].cache = malloc((size_t)b->n_ctx * sizeof(int32_t))) != NULL;
    }
    if (!ok) {
        qfit_batcher_free(b);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    qfit_context_reset(c);   /* what the context held is unknown to the batcher: start empty */
    return b;
}

static void slot_release(seq_slot *s)
{
    qfit_gen_free(s->g);
    s->g = NULL;
    free(s->prompt);
    s->prompt = NULL;
}

void qfit_batcher_free(qfit_batcher *b)
{
    if (!b) return;
    for (int i = 0; b->s && i < b->n_seq; i++) {
        slot_release(&b->s[i]);
        free(b->s[i].cache);
    }
    free(b->s);
    free(b->tok_buf);
    free(b->seq_buf);
    free(b->row_seq);
    free(b->want);
    free(b);
}

int qfit_batcher_submit(qfit_batcher *b, const int32_t *prompt, size_t n_prompt, const qfit_gen_params *p,
                        const qfit_gen_callbacks *cb, char *err, size_t err_len)
{
    if (!p) { snprintf(err, err_len, "no generation parameters"); return -1; }
    if (n_prompt == 0) { snprintf(err, err_len, "the prompt is empty"); return -1; }
    if (n_prompt >= (size_t)b->n_ctx) {
        snprintf(err, err_len, "the prompt (%zu tokens) does not fit the context (%d tokens)", n_prompt, b->n_ctx);
        return -1;
    }
    for (size_t i = 0; i < n_prompt; i++) {
        if (prompt[i] < 0 || prompt[i] >= b->n_vocab) {
            snprintf(err, err_len, "prompt token %d at index %zu is outside the vocabulary [0, %d)", (int)prompt[i], i,
                     b->n_vocab);
            return -1;
        }
    }
    /* the free sequence with the longest common prefix, then the least recently used */
    int best = -1, best_common = -1;
    for (int i = 0; i < b->n_seq; i++) {
        const seq_slot *s = &b->s[i];
        if (s->st != SEQ_FREE) continue;
        int k = 0;
        while (k < s->n_cache && (size_t)k < n_prompt && s->cache[k] == prompt[k]) k++;
        if (k > best_common || (k == best_common && s->last_used < b->s[best].last_used)) {
            best = i;
            best_common = k;
        }
    }
    if (best < 0) { snprintf(err, err_len, "all %d sequences are busy", b->n_seq); return -1; }
    seq_slot *s = &b->s[best];
    qfit_gen *g = qfit_gen_new(b->tok, b->n_vocab, b->n_ctx, p, cb, err, err_len);
    int32_t *copy = malloc(n_prompt * sizeof *copy);
    if (!g || !copy) {
        if (g && !copy) snprintf(err, err_len, "out of memory");
        qfit_gen_free(g);
        free(copy);
        return -1;
    }
    memcpy(copy, prompt, n_prompt * sizeof *copy);
    /* the last prompt token is always evaluated: its logits start the generation */
    int reuse = best_common < (int)n_prompt ? best_common : (int)n_prompt - 1;
    qfit_seq_truncate(b->c, best, reuse);
    reuse = qfit_seq_n_past(b->c, best);   /* sliding-window layers may keep less (model.h) */
    s->n_cache = reuse;
    s->st = SEQ_PROMPT;
    s->g = g;
    s->cb = cb ? *cb : (qfit_gen_callbacks){ 0 };
    s->prompt = copy;
    s->n_prompt = (int)n_prompt;
    s->n_fed = reuse;
    s->overflow = p->overflow;
    s->n_keep = p->n_keep + (qfit_tokenizer_add_bos(b->tok) ? 1 : 0);
    if (s->n_keep > b->n_ctx / 2) s->n_keep = b->n_ctx / 2;
    if (s->n_keep > (int)n_prompt) s->n_keep = (int)n_prompt;
    s->cancel = false;
    s->t0 = now_ns();
    s->t_gen = 0;
    s->last_used = ++b->clock;
    memset(&s->res, 0, sizeof s->res);
    s->res.load_ns = p->load_ns;
    s->res.seed = qfit_gen_seed(g);
    qfit_gen_accept_prompt(g, prompt, n_prompt);
    b->stats.requests++;
    if (reuse > 0) b->stats.hits++;
    b->stats.reused_tokens += (uint64_t)reuse;
    return best;
}

/* the sequence's generation is over (its qfit_gen knows why): results, free for reuse */
static void slot_finish(qfit_batcher *b, seq_slot *s, qfit_gen_reason why)
{
    if (why != QFIT_GEN_RUNNING) qfit_gen_finish(s->g, why);
    const uint64_t t = now_ns();
    if (!s->t_gen) s->t_gen = t;
    s->res.reason = qfit_gen_reason_of(s->g);
    if (s->res.reason == QFIT_GEN_ERROR && !s->res.error[0])
        snprintf(s->res.error, sizeof s->res.error, "no token can be sampled (every logit is -inf or NaN)");
    if (s->res.reason == QFIT_GEN_ERROR && s->res.status == QFIT_OK) s->res.status = QFIT_E_INTERNAL;
    s->res.prompt_eval_ns = s->t_gen - s->t0;
    s->res.eval_ns = t - s->t_gen;
    s->res.eval_count = qfit_gen_n_generated(s->g);
    s->res.total_ns = s->res.load_ns + (t - s->t0);
    s->st = SEQ_DONE;
    (void)b;
}

static bool wants_abort(const seq_slot *s)
{
    return s->cancel || (s->cb.should_abort && s->cb.should_abort(s->cb.user));
}

/* before a sequence takes one more position: room, or a shift, or the end */
static bool make_room(qfit_batcher *b, int i)
{
    seq_slot *s = &b->s[i];
    if (s->n_cache < b->n_ctx) return true;
    if (s->overflow != QFIT_OVERFLOW_SHIFT) {
        s->res.context_full = true;
        slot_finish(b, s, QFIT_GEN_LENGTH);
        return false;
    }
    const int n_discard = (s->n_cache - s->n_keep) / 2;
    if (n_discard < 1 || qfit_seq_shift(b->c, i, s->n_keep, n_discard) != 0) {
        snprintf(s->res.error, sizeof s->res.error, "context shift failed: %s",
                 n_discard < 1 ? "nothing to discard" : qfit_context_error(b->c));
        s->res.status = n_discard < 1 ? QFIT_E_CONTEXT_FULL : qfit_context_status(b->c);
        slot_finish(b, s, QFIT_GEN_ERROR);
        return false;
    }
    memmove(s->cache + s->n_keep, s->cache + s->n_keep + n_discard,
            (size_t)(s->n_cache - s->n_keep - n_discard) * sizeof *s->cache);
    s->n_cache -= n_discard;
    s->res.n_shifts++;
    s->res.n_discarded += n_discard;
    if (s->cb.on_shift) s->cb.on_shift(s->cb.user, s->n_keep, n_discard, s->n_cache);
    return true;
}

int qfit_batcher_step(qfit_batcher *b)
{
    int n = 0, n_rows = 0;
    /* cancellations first: no more tokens for them */
    for (int i = 0; i < b->n_seq; i++) {
        seq_slot *s = &b->s[i];
        if ((s->st == SEQ_PROMPT || s->st == SEQ_GEN) && wants_abort(s)) slot_finish(b, s, QFIT_GEN_CANCELLED);
    }
    /* the next token of every generating sequence */
    for (int i = 0; i < b->n_seq; i++) {
        seq_slot *s = &b->s[i];
        if (s->st != SEQ_GEN || !make_room(b, i)) continue;
        b->tok_buf[n] = s->next;
        b->seq_buf[n] = i;
        b->want[n] = true;
        b->row_seq[n_rows++] = i;
        s->cache[s->n_cache++] = s->next;
        n++;
    }
    /* prompt tokens in the room left, oldest request first */
    for (;;) {
        int pick = -1;
        for (int i = 0; i < b->n_seq; i++)
            if (b->s[i].st == SEQ_PROMPT && b->s[i].n_fed < b->s[i].n_prompt &&
                (pick < 0 || b->s[i].last_used < b->s[pick].last_used))
                pick = i;
        if (pick < 0 || n >= b->n_batch) break;
        seq_slot *s = &b->s[pick];
        if (s->cb.on_prefill) s->cb.on_prefill(s->cb.user, s->n_fed, s->n_prompt);
        int k = s->n_prompt - s->n_fed;
        if (k > b->n_batch - n) k = b->n_batch - n;
        for (int j = 0; j < k; j++, n++) {
            b->tok_buf[n] = s->prompt[s->n_fed + j];
            b->seq_buf[n] = pick;
            b->want[n] = s->n_fed + j == s->n_prompt - 1;
            if (b->want[n]) b->row_seq[n_rows++] = pick;
        }
        memcpy(s->cache + s->n_cache, s->prompt + s->n_fed, (size_t)k * sizeof *s->cache);
        s->n_cache += k;
        s->n_fed += k;
        s->res.prompt_eval_count += k;
        b->stats.evaluated_tokens += (uint64_t)k;
        if (s->n_fed < s->n_prompt) break;   /* the batch is full */
    }
    if (n > 0) {
        const qfit_batch batch = { .n_tokens = n, .token = b->tok_buf, .seq = b->seq_buf, .logits = b->want };
        if (qfit_decode_batch(b->c, &batch) != 0) {
            for (int i = 0; i < b->n_seq; i++) {
                seq_slot *s = &b->s[i];
                if (s->st != SEQ_PROMPT && s->st != SEQ_GEN) continue;
                snprintf(s->res.error, sizeof s->res.error, "%s", qfit_context_error(b->c));
                s->res.status = qfit_context_status(b->c);
                slot_finish(b, s, QFIT_GEN_ERROR);
            }
            return -1;
        }
        for (int r = 0; r < n_rows; r++) {
            seq_slot *s = &b->s[b->row_seq[r]];
            if (s->st == SEQ_PROMPT) {
                s->st = SEQ_GEN;
                s->t_gen = now_ns();
                if (s->cb.on_prefill) s->cb.on_prefill(s->cb.user, s->n_prompt, s->n_prompt);
            }
            const int32_t t = qfit_gen_step(s->g, qfit_get_logits(b->c, r));
            if (t < 0) slot_finish(b, s, QFIT_GEN_RUNNING);
            else if (wants_abort(s)) slot_finish(b, s, QFIT_GEN_CANCELLED);
            else s->next = t;
        }
    }
    return qfit_batcher_n_running(b);
}

bool qfit_batcher_result(qfit_batcher *b, int seq, qfit_gen_result *res)
{
    if (seq < 0 || seq >= b->n_seq || b->s[seq].st != SEQ_DONE) return false;
    seq_slot *s = &b->s[seq];
    *res = s->res;
    slot_release(s);
    s->st = SEQ_FREE;
    return true;
}

void qfit_batcher_cancel(qfit_batcher *b, int seq)
{
    if (seq >= 0 && seq < b->n_seq && (b->s[seq].st == SEQ_PROMPT || b->s[seq].st == SEQ_GEN)) b->s[seq].cancel = true;
}

int qfit_batcher_n_running(const qfit_batcher *b)
{
    int n = 0;
    for (int i = 0; i < b->n_seq; i++) n += b->s[i].st == SEQ_PROMPT || b->s[i].st == SEQ_GEN;
    return n;
}

void qfit_batcher_get_stats(const qfit_batcher *b, qfit_batcher_stats *s) { *s = b->stats; }
