/* Collecting a streamed generation into one non-streaming reply (api.h qfit_api_accum). */
#include <stdlib.h>
#include <string.h>

#include "qfit/api.h"

typedef struct {
    char  *s;
    size_t len, cap;
} text_buf;

struct qfit_api_accum {
    text_buf content, thinking;
    json_t  *tool_calls;        /* array, NULL until the first call */
    qfit_api_logprob *lps;
    size_t n_lps, cap_lps;
};

qfit_api_accum *qfit_api_accum_new(void)
{
    return calloc(1, sizeof(qfit_api_accum));
}

static void free_token(qfit_api_token_logprob *t) { free((char *)t->token); }

void qfit_api_accum_free(qfit_api_accum *a)
{
    if (!a) return;
    free(a->content.s);
    free(a->thinking.s);
    json_decref(a->tool_calls);
    for (size_t i = 0; i < a->n_lps; i++) {
        free_token(&a->lps[i].tok);
        for (size_t k = 0; k < a->lps[i].n_top; k++) free_token((qfit_api_token_logprob *)&a->lps[i].top[k]);
        free((void *)a->lps[i].top);
    }
    free(a->lps);
    free(a);
}

static int append_text(text_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0) return 0;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) return -1;
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
    return 0;
}

/* A copy of t whose token bytes the accumulator owns. */
static int copy_token(qfit_api_token_logprob *dst, const qfit_api_token_logprob *src)
{
    char *tok = malloc(src->len + 1);
    if (!tok) return -1;
    if (src->len) memcpy(tok, src->token, src->len);
    tok[src->len] = '\0';
    *dst = (qfit_api_token_logprob){ tok, src->len, src->logprob };
    return 0;
}

static int add_logprob(qfit_api_accum *a, const qfit_api_logprob *lp)
{
    if (a->n_lps == a->cap_lps) {
        size_t cap = a->cap_lps ? 2 * a->cap_lps : 16;
        qfit_api_logprob *p = realloc(a->lps, cap * sizeof *p);
        if (!p) return -1;
        a->lps = p;
        a->cap_lps = cap;
    }
    qfit_api_logprob *d = &a->lps[a->n_lps];
    qfit_api_token_logprob *top = lp->n_top ? calloc(lp->n_top, sizeof *top) : NULL;
    if ((lp->n_top && !top) || copy_token(&d->tok, &lp->tok) < 0) {
        free(top);
        return -1;
    }
    d->top = top;
    d->n_top = 0;
    a->n_lps++;   /* counted now: free releases what was copied so far */
    for (size_t k = 0; k < lp->n_top; k++, d->n_top++)
        if (copy_token(&top[k], &lp->top[k]) < 0) return -1;
    return 0;
}

int qfit_api_accum_add(qfit_api_accum *a, const qfit_api_result *piece)
{
    if (append_text(&a->content, piece->content) < 0 || append_text(&a->thinking, piece->thinking) < 0) return -1;
    for (size_t i = 0; i < json_array_size(piece->tool_calls); i++) {
        if (!a->tool_calls && !(a->tool_calls = json_array())) return -1;
        if (json_array_append_new(a->tool_calls, json_deep_copy(json_array_get(piece->tool_calls, i))) < 0) return -1;
    }
    for (size_t i = 0; i < piece->n_logprobs; i++)
        if (add_logprob(a, &piece->logprobs[i]) < 0) return -1;
    return 0;
}

void qfit_api_accum_get(const qfit_api_accum *a, qfit_api_result *out)
{
    out->content = a->content.s ? a->content.s : "";
    out->thinking = a->thinking.s;
    out->tool_calls = a->tool_calls;
    out->logprobs = a->lps;
    out->n_logprobs = a->n_lps;
}
