/* The engine routes of `qfit serve` (routes_engine.h): a request is parsed by the
 * protocol module, its model acquired from the scheduler, its prompt rendered and
 * tokenized, and its job's events turned into response chunks (NDJSON for the native
 * API, SSE for OpenAI) or one response. A streaming response is produced by a thread
 * of its own (the HTTP layer sends what it writes, with keep-alives while a long
 * prefill runs); a non-streaming one on the connection's thread. A client that goes
 * away cancels its job: at most one more token, or one more prefill micro-batch. */
#include "server/routes_engine.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qfit/api.h"
#include "qfit/chat.h"
#include "qfit/config.h"
#include "qfit/grammar.h"
#include "qfit/modelfile.h"
#include "qfit/schema.h"
#include "qfit/toolcall.h"

/* ------------------------------------------------------------- metrics */

/* Prometheus histogram bucket bounds, seconds */
static const double TTFT_BOUNDS[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
static const double ITL_BOUNDS[] = {0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28};
#define N_TTFT (sizeof TTFT_BOUNDS / sizeof *TTFT_BOUNDS)
#define N_ITL (sizeof ITL_BOUNDS / sizeof *ITL_BOUNDS)

typedef struct {
    uint64_t buckets[16];
    uint64_t count;
    double sum;
} histo;

struct qfit_engine_routes {
    qfit_sched *sched;
    pthread_mutex_t mu;   /* metrics */
    histo ttft, itl;
    uint64_t requests, errors_4xx, errors_5xx, refused_busy;
};

static void histo_add(qfit_engine_routes *er, histo *h, const double *bounds, size_t nb, double v)
{
    pthread_mutex_lock(&er->mu);
    for (size_t i = 0; i < nb; i++)
        if (v <= bounds[i]) h->buckets[i]++;
    h->count++;
    h->sum += v;
    pthread_mutex_unlock(&er->mu);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static uint64_t rand64(void)
{
    static _Atomic uint64_t counter;
    uint64_t x = (uint64_t)wall_ns() ^ (counter++ * 0x9E3779B97F4A7C15ull);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* ------------------------------------------------------------- answers */

static void count_status(qfit_engine_routes *er, unsigned status)
{
    pthread_mutex_lock(&er->mu);
    if (status >= 500) er->errors_5xx++;
    else if (status >= 400) er->errors_4xx++;
    if (status == 503) er->refused_busy++;
    pthread_mutex_unlock(&er->mu);
}

static void fail(qfit_engine_routes *er, qfit_http_req *req, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(qfit_engine_routes *er, qfit_http_req *req, unsigned status, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    count_status(er, status);
    if (status == 503) qfit_http_add_header(req, "Retry-After", "1");
    qfit_http_respond_error(req, status, "%s", msg);
}

/* the HTTP status of a generation that failed in the library, by the kind of its error */
static unsigned gen_http_status(qfit_status st)
{
    switch (st) {
    case QFIT_E_INVALID: case QFIT_E_CONTEXT_FULL: return 400;
    case QFIT_E_NOMEM: return 503;
    default: return 500;
    }
}

static unsigned sched_status(qfit_sched_code c)
{
    switch (c) {
    case QFIT_SCHED_INVALID:   return 400;
    case QFIT_SCHED_NOT_FOUND: return 404;
    case QFIT_SCHED_BUSY:      return 503;
    default:                   return 500;
    }
}

static int respond_json_steal(qfit_http_req *req, unsigned status, json_t *j)
{
    /* an encoder fails on out of memory, or on a number JSON cannot carry (NaN, Inf) */
    if (!j) return qfit_http_respond_error(req, 500, "could not encode the response (out of memory, or a "
                                           "non-finite number)");
    int rc = qfit_http_respond_json(req, status, j);
    json_decref(j);
    return rc;
}

/* The request body as a protocol request; NULL after answering. */
static qfit_api_request *parse_request(qfit_engine_routes *er, qfit_http_req *req, qfit_api_endpoint ep,
                                       json_t **body_out)
{
    json_t *body = qfit_http_req_json(req);
    if (!body) return NULL;
    if (!qfit_api_json_depth_ok(body, QFIT_API_MAX_DEPTH)) {
        json_decref(body);
        fail(er, req, 400, "request body nested deeper than %d levels", QFIT_API_MAX_DEPTH);
        return NULL;
    }
    qfit_api_error e;
    qfit_api_request *r = qfit_api_parse(ep, body, &e);
    if (!r) {
        json_decref(body);
        count_status(er, (unsigned)e.status);
        qfit_http_respond_error(req, (unsigned)e.status, "%s", e.message);
        return NULL;
    }
    char err[512];
    if (qfit_chat_apply_params(r->options, NULL, NULL, err, sizeof err) != 0) {
        json_decref(body);
        qfit_api_request_free(r);
        fail(er, req, 400, "options: %s", err);
        return NULL;
    }
    pthread_mutex_lock(&er->mu);
    er->requests++;
    pthread_mutex_unlock(&er->mu);
    /* ignored fields and options: the request goes on, the server log says what was ignored */
    for (size_t i = 0; i < r->warnings.count && i < 16; i++)
        fprintf(stderr, "%s warning: %s %s: %s\n", r->model, qfit_http_req_method(req), qfit_http_req_path(req),
                r->warnings.msgs[i]);
    *body_out = body;
    return r;
}

/* The request's context settings (num_ctx, num_batch, num_thread: 0 where unset; num_gpu:
 * QFIT_SCHED_NGL_UNSET where unset). */
static void context_override(const qfit_api_request *r, qfit_context_params *ov)
{
    memset(ov, 0, sizeof *ov);
    ov->n_gpu_layers = QFIT_SCHED_NGL_UNSET;
    char err[256];
    qfit_chat_apply_params(r->options, NULL, ov, err, sizeof err);   /* validated in parse_request */
}

static qfit_sched_model *acquire(qfit_engine_routes *er, qfit_http_req *req, const qfit_api_request *r,
                                 uint64_t *load_ns)
{
    qfit_context_params ov;
    context_override(r, &ov);
    qfit_sched_model *m = NULL;
    qfit_sched_code code;
    char err[2048];
    const int64_t ka = r->keep_alive_set ? r->keep_alive_ns : QFIT_SCHED_KEEP_ALIVE_UNSET;
    if (qfit_sched_acquire(er->sched, r->model, &ov, ka, &m, load_ns, &code, err, sizeof err) != 0) {
        if (code == QFIT_SCHED_NOT_FOUND) fail(er, req, 404, "model '%s' not found, try pulling it first", r->model);
        else fail(er, req, sched_status(code), "%s", err);
        return NULL;
    }
    return m;
}

/* ------------------------------------------------------------ a generation */

typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

static int sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) return -1;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

typedef struct {
    qfit_engine_routes *er;
    qfit_api_request *r;
    json_t *body;
    qfit_sched_model *m;
    qfit_sched_job *job;
    qfit_toolparse *tp;
    qfit_grammar *grammar;
    qfit_gen_params gp;
    qfit_http_stream *st;
    qfit_api_endpoint ep;
    bool openai, chat, stream;
    uint64_t t0, load_ns, t_last;
    bool got_first;
    bool cancel_sent;              /* the job was told to stop (client gone) */
    int n_prompt;
    int n_dropped;
    char id[48];
    char router[256];              /* the routing model asked for, "" when none */
    qfit_api_meta meta;
    bool first_chunk;
    /* accumulated (non-streaming) or pending (streaming) parts */
    sbuf content, thinking;
    json_t *calls;                 /* Ollama tool calls of this response */
    qfit_api_logprob *lp;          /* pending logprobs */
    qfit_api_token_logprob *lp_top;
    char **lp_bytes;               /* token bytes of each pending logprob and its alternatives */
    size_t n_lp, cap_lp, n_bytes, cap_bytes;
    char error[1024];
    qfit_status error_status;   /* the library's kind of that error (QFIT_OK: the server's own) */
} gen;

static void gen_free(gen *g)
{
    if (!g) return;
    if (g->job) qfit_sched_job_free(g->job);
    if (g->m) qfit_sched_release(g->m);
    qfit_toolparse_free(g->tp);
    qfit_grammar_free(g->grammar);
    qfit_api_request_free(g->r);
    json_decref(g->body);
    json_decref(g->calls);
    free(g->content.p);
    free(g->thinking.p);
    for (size_t i = 0; i < g->n_bytes; i++) free(g->lp_bytes[i]);
    free(g->lp_bytes);
    free(g->lp);
    free(g->lp_top);
    free(g);
}

static const char *keep_bytes(gen *g, const char *s, size_t n)
{
    if (g->n_bytes == g->cap_bytes) {
        size_t nc = g->cap_bytes ? 2 * g->cap_bytes : 64;
        char **nb = realloc(g->lp_bytes, nc * sizeof *nb);
        if (!nb) return NULL;
        g->lp_bytes = nb;
        g->cap_bytes = nc;
    }
    char *c = malloc(n + 1);
    if (!c) return NULL;
    memcpy(c, s, n);
    c[n] = '\0';
    g->lp_bytes[g->n_bytes++] = c;
    return c;
}

/* a sampled token's log-probabilities, kept until the next chunk */
static int add_logprob(gen *g, const qfit_gen_token *t)
{
    const qfit_tokenizer *tok = qfit_chat_model_tokenizer(qfit_sched_model_chat(g->m));
    if (g->n_lp == g->cap_lp) {
        size_t nc = g->cap_lp ? 2 * g->cap_lp : 32;
        qfit_api_logprob *nl = realloc(g->lp, nc * sizeof *nl);
        if (!nl) return -1;
        g->lp = nl;
        qfit_api_token_logprob *nt = realloc(g->lp_top, nc * QFIT_TOP_LOGPROBS_MAX * sizeof *nt);
        if (!nt) return -1;
        g->lp_top = nt;
        g->cap_lp = nc;
        for (size_t i = 0; i < g->n_lp; i++) g->lp[i].top = g->lp_top + i * QFIT_TOP_LOGPROBS_MAX;
    }
    qfit_api_logprob *l = &g->lp[g->n_lp];
    const char *b = keep_bytes(g, t->piece, t->piece_len);
    if (!b) return -1;
    l->tok = (qfit_api_token_logprob){b, t->piece_len, t->logprob};
    qfit_api_token_logprob *top = g->lp_top + g->n_lp * QFIT_TOP_LOGPROBS_MAX;
    for (int i = 0; i < t->n_top; i++) {
        char piece[256];
        size_t n = qfit_token_to_piece(tok, t->top[i].id, piece, sizeof piece, 0, false);
        if (n > sizeof piece) n = sizeof piece;
        const char *tb = keep_bytes(g, piece, n);
        if (!tb) return -1;
        top[i] = (qfit_api_token_logprob){tb, n, t->top[i].logprob};
    }
    l->top = top;
    l->n_top = (size_t)t->n_top;
    g->n_lp++;
    return 0;
}

static void clear_pending(gen *g)
{
    for (size_t i = 0; i < g->n_bytes; i++) free(g->lp_bytes[i]);
    g->n_bytes = 0;
    g->n_lp = 0;
    g->content.len = g->thinking.len = 0;
    if (g->content.p) g->content.p[0] = '\0';
    if (g->thinking.p) g->thinking.p[0] = '\0';
    json_decref(g->calls);
    g->calls = NULL;
}

/* tool calls of the parser as Ollama message tool_calls */
static int add_calls(gen *g, const qfit_toolcall *c, size_t n)
{
    if (!n) return 0;
    if (!g->calls && !(g->calls = json_array())) return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *fn = json_pack("{s:i, s:s, s:O}", "index", c[i].index, "name", c[i].name, "arguments", c[i].arguments);
        json_t *call = fn ? json_pack("{s:s, s:o}", "id", c[i].id, "function", fn) : NULL;
        if (!call || json_array_append_new(g->calls, call) != 0) return -1;
    }
    return 0;
}

static int take_delta(gen *g, const qfit_toolparse_delta *d)
{
    if (d->content_len && sb_add(&g->content, d->content, d->content_len) != 0) return -1;
    if (d->thinking_len && sb_add(&g->thinking, d->thinking, d->thinking_len) != 0) return -1;
    return add_calls(g, d->calls, d->n_calls);
}

/* The result for the encoders from what is pending (and, when done, the counters). */
static void fill_result(gen *g, qfit_api_result *res, const qfit_gen_result *done)
{
    memset(res, 0, sizeof *res);
    res->content = g->content.p ? g->content.p : "";
    res->thinking = g->thinking.len ? g->thinking.p : NULL;
    res->tool_calls = g->calls;
    res->logprobs = g->n_lp ? g->lp : NULL;
    res->n_logprobs = g->n_lp;
    if (done) {
        res->done = true;
        res->done_reason = done->reason == QFIT_GEN_LENGTH ? "length" : "stop";
        res->prompt_tokens = g->n_prompt;   /* the whole prompt, as Ollama and OpenAI count it (a cached prefix included) */
        res->completion_tokens = done->eval_count;
        res->prompt_eval_ns = done->prompt_eval_ns;
        res->eval_ns = done->eval_ns;
        res->load_ns = g->load_ns;
        res->total_ns = now_ns() - g->t0;
    }
}

/* Stream the pending parts (and the end). -1 when the client is gone. */
static int stream_out(gen *g, const qfit_gen_result *done)
{
    if (!done && !g->content.len && !g->thinking.len && !g->calls && !g->n_lp) return 0;
    qfit_api_result res;
    fill_result(g, &res, done);
    g->meta.now_ns = wall_ns();
    int rc = 0;
    if (!g->openai) {
        json_t *c = g->chat ? qfit_api_ollama_chat_chunk(&g->meta, &res) : qfit_api_ollama_generate_chunk(&g->meta, &res);
        if (c && done && g->router[0]) json_object_set_new(c, "routed_model", json_string(g->r->model));
        char *line = c ? qfit_api_ndjson_line(c) : NULL;
        json_decref(c);
        rc = line ? qfit_http_stream_write(g->st, line, strlen(line)) : -1;
        free(line);
    } else {
        json_t *evs = g->chat ? qfit_api_openai_chat_chunks(&g->meta, &res, g->first_chunk)
                              : qfit_api_openai_completion_chunks(&g->meta, &res);
        if (g->calls) g->meta.tool_call_sent = true;
        g->first_chunk = false;
        size_t i;
        json_t *ev;
        if (!evs) rc = -1;
        json_array_foreach(evs, i, ev) {
            char *data = qfit_api_sse_data(ev);
            if (!data || qfit_http_stream_write(g->st, data, strlen(data)) != 0) rc = -1;
            free(data);
            if (rc) break;
        }
        json_decref(evs);
        if (!rc && done) rc = qfit_http_stream_write(g->st, QFIT_API_SSE_DONE, strlen(QFIT_API_SSE_DONE));
    }
    clear_pending(g);
    return rc;
}

static void stream_error(gen *g, const char *msg)
{
    json_t *e = g->openai ? qfit_api_openai_error(500, msg, NULL) : qfit_api_ollama_error(msg);
    char *line = e ? (g->openai ? qfit_api_sse_data(e) : qfit_api_ndjson_line(e)) : NULL;
    if (line) qfit_http_stream_write(g->st, line, strlen(line));
    free(line);
    json_decref(e);
}

/* Read the job to its end. Streaming: chunks as the parts come; otherwise the parts
 * accumulate. Returns the result, or NULL when the client went away or on an error
 * (g->error). */
static const qfit_gen_result *run_job(gen *g, qfit_http_req *req)
{
    char err[512];
    qfit_sched_event ev;
    for (;;) {
        int r = qfit_sched_job_next(g->job, 100, &ev);
        /* a client gone (or a cancelled in-process call) stops the job: checked at every
         * event, not only when none comes for 100 ms, or a decoding job would run to
         * its end for nobody (a poll of the socket costs about a microsecond) */
        if (r >= 0 && !g->cancel_sent && (g->stream ? qfit_http_stream_cancelled(g->st) : qfit_http_req_cancelled(req))) {
            qfit_sched_job_cancel(g->job);
            g->cancel_sent = true;
        }
        if (r == 0) continue;
        if (r < 0) return NULL;
        if (ev.kind == QFIT_SCHED_EV_TOKEN) {
            if (add_logprob(g, &ev.token) != 0) {
                snprintf(g->error, sizeof g->error, "out of memory");
                qfit_sched_job_cancel(g->job);
            }
            continue;
        }
        const uint64_t t = now_ns();
        if (ev.kind == QFIT_SCHED_EV_TEXT) {
            if (!g->got_first) histo_add(g->er, &g->er->ttft, TTFT_BOUNDS, N_TTFT, (double)(t - g->t0) / 1e9);
            else histo_add(g->er, &g->er->itl, ITL_BOUNDS, N_ITL, (double)(t - g->t_last) / 1e9);
            g->got_first = true;
            g->t_last = t;
            qfit_toolparse_delta d;
            if (qfit_toolparse_feed(g->tp, ev.text, ev.len, &d, err, sizeof err) != 0 || take_delta(g, &d) != 0) {
                snprintf(g->error, sizeof g->error, "%s", err);
                qfit_sched_job_cancel(g->job);
                continue;
            }
            if (g->stream && stream_out(g, NULL) != 0) qfit_sched_job_cancel(g->job);
            continue;
        }
        /* DONE */
        const qfit_gen_result *res = qfit_sched_job_result(g->job);
        if (g->error[0]) return NULL;
        if (res->reason == QFIT_GEN_ERROR) {
            snprintf(g->error, sizeof g->error, "%s", res->error);
            g->error_status = res->status;
            return NULL;
        }
        if (res->reason == QFIT_GEN_CANCELLED) return NULL;   /* the client is gone */
        qfit_toolparse_delta d;
        if (qfit_toolparse_finish(g->tp, &d, err, sizeof err) != 0 || take_delta(g, &d) != 0) {
            snprintf(g->error, sizeof g->error, "%s", err);
            return NULL;
        }
        return res;
    }
}

static void *stream_main(void *arg)
{
    gen *g = arg;
    const qfit_gen_result *res = run_job(g, NULL);
    if (res) stream_out(g, res);
    else if (g->error[0]) {
        count_status(g->er, gen_http_status(g->error_status));
        stream_error(g, g->error);
    }
    qfit_http_stream_end(g->st);
    gen_free(g);
    return NULL;
}

/* The prompt of the request, tokenized; -1 after answering. */
static int build_prompt(gen *g, qfit_http_req *req, int32_t **ids, size_t *n, char **text)
{
    const qfit_chat_model *cm = qfit_sched_model_chat(g->m);
    const int n_ctx = qfit_sched_model_n_ctx(g->m);
    const qfit_api_request *r = g->r;
    char err[1024];
    *text = NULL;
    if (g->chat) {
        if (!qfit_chat_model_template(cm)) {
            fail(g->er, req, 400, "%s has no chat template: create a model with a Modelfile TEMPLATE to chat with it",
                 r->model);
            return -1;
        }
        const json_t *tools = r->tool_choice == QFIT_API_TOOL_NONE ? NULL : r->tools;
        const bool truncate = json_is_true(json_object_get(g->body, "truncate"));
        if (qfit_chat_prompt_fit(cm, r->messages, tools, true, r->think, n_ctx, 1, truncate, ids, n, &g->n_dropped,
                                 err, sizeof err) != 0) {
            fail(g->er, req, 400, "%s", err);
            return -1;
        }
        /* the text too: whether the prompt opens a thinking block */
        if (qfit_chat_render(cm, r->messages, tools, true, r->think, text, err, sizeof err) != 0) *text = NULL;
        return 0;
    }
    const bool fim = r->suffix && *r->suffix;
    if (fim && r->raw) {
        fail(g->er, req, 400, "suffix cannot be used with raw: the model's template places the suffix");
        return -1;
    }
    if (r->context) {
        fail(g->er, req, 400, "context: the deprecated context parameter is not supported; send the conversation "
             "to /api/chat");
        return -1;
    }
    if (fim) {
        if (qfit_chat_render_fim(cm, r->tmpl, r->prompt ? r->prompt : "", r->suffix, text, err, sizeof err) != 0) {
            fail(g->er, req, 400, "%s", err);
            return -1;
        }
    } else if (r->raw || (!qfit_chat_model_template(cm) && !r->tmpl)) {
        if (!(*text = strdup(r->prompt ? r->prompt : ""))) {
            fail(g->er, req, 500, "out of memory");
            return -1;
        }
    } else {
        json_t *msgs = json_array();
        if (r->system) json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", r->system));
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", r->prompt ? r->prompt : ""));
        int rc = r->tmpl ? qfit_chat_render_with(cm, r->tmpl, msgs, NULL, true, r->think, text, err, sizeof err)
                         : qfit_chat_render(cm, msgs, NULL, true, r->think, text, err, sizeof err);
        json_decref(msgs);
        if (rc != 0) {
            fail(g->er, req, r->tmpl ? 400 : 500, "%s", err);
            return -1;
        }
    }
    if (qfit_chat_tokenize(cm, *text, ids, n, err, sizeof err) != 0) {
        fail(g->er, req, 400, "%s", err);
        return -1;
    }
    if (*n >= (size_t)n_ctx) {
        fail(g->er, req, 400, "the prompt is %zu tokens and the context is %d tokens (num_ctx): it leaves no room for "
             "an answer; raise num_ctx or shorten the prompt", *n, n_ctx);
        return -1;
    }
    return 0;
}

/* tool_choice required / named: a grammar that makes the answer one call in the model's
 * own markup, its name one of the tools (or the named one) and its arguments valid for
 * that tool's parameters schema. NULL after answering. */
static char *tool_call_gbnf(gen *g, qfit_http_req *req)
{
    const qfit_api_request *r = g->r;
    const qfit_toolcall_format tf = qfit_toolcall_detect(qfit_chat_model_template(qfit_sched_model_chat(g->m)));
    const char *open, *close;
    switch (tf) {
    case QFIT_TOOLCALL_HERMES:  open = "\"<tool_call>\\n\""; close = "\"\\n</tool_call>\""; break;
    case QFIT_TOOLCALL_MISTRAL: open = "\"[TOOL_CALLS][\""; close = "\"]\""; break;
    case QFIT_TOOLCALL_JSON:    open = "\"\""; close = "\"\""; break;
    default:
        fail(g->er, req, 400, "tool_choice: the model's tool-call format (%s) cannot be constrained to a call; use "
             "tool_choice auto", qfit_toolcall_format_name(tf));
        return NULL;
    }
    json_t *alts = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(r->tools, i, t) {
        json_t *fn = json_object_get(t, "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (!name || (r->tool_choice == QFIT_API_TOOL_NAMED && strcmp(name, r->tool_name) != 0)) continue;
        json_t *params = json_object_get(fn, "parameters");
        params = params ? json_incref(params) : json_pack("{s:s}", "type", "object");
        json_array_append_new(alts, json_pack("{s:s, s:{s:{s:s}, s:o}, s:[s, s]}", "type", "object", "properties",
                                              "name", "const", name, "arguments", params, "required", "name",
                                              "arguments"));
    }
    if (json_array_size(alts) == 0) {
        json_decref(alts);
        fail(g->er, req, 400, "tool_choice: no tool named '%s' in tools", r->tool_name ? r->tool_name : "");
        return NULL;
    }
    json_t *schema = json_pack("{s:o}", "anyOf", alts);
    char *text = schema ? json_dumps(schema, JSON_COMPACT) : NULL;
    json_decref(schema);
    char err[1024] = "out of memory";
    char *call = text ? qfit_schema_to_gbnf(text, strlen(text), err, sizeof err) : NULL;
    free(text);
    if (!call) {
        fail(g->er, req, 400, "tools: %s", err);
        return NULL;
    }
    /* the schema grammar's root becomes tc-call, wrapped in the format's markers */
    if (strncmp(call, "root ::=", 8) != 0) {
        free(call);
        fail(g->er, req, 500, "tools: unexpected grammar");
        return NULL;
    }
    sbuf b = {0};
    char head[256];
    snprintf(head, sizeof head, "root ::= %s tc-call %s\ntc-call ::=", open, close);
    if (sb_add(&b, head, strlen(head)) != 0 || sb_add(&b, call + 8, strlen(call + 8)) != 0) {
        free(b.p);
        b.p = NULL;
        fail(g->er, req, 500, "out of memory");
    }
    free(call);
    return b.p;
}

/* Structured output: the grammar of format / response_format, or of a required tool
 * call; -1 after answering. */
static int build_grammar(gen *g, qfit_http_req *req)
{
    const qfit_api_request *r = g->r;
    const bool must_call = r->tools && (r->tool_choice == QFIT_API_TOOL_REQUIRED || r->tool_choice == QFIT_API_TOOL_NAMED);
    if (must_call && r->format != QFIT_API_FORMAT_NONE) {
        fail(g->er, req, 400, "tool_choice %s and a response format cannot both constrain the answer",
             r->tool_choice == QFIT_API_TOOL_NAMED ? "(a named tool)" : "required");
        return -1;
    }
    if (r->format == QFIT_API_FORMAT_NONE && !must_call) return 0;
    char err[1024];
    char *gbnf = NULL;
    if (must_call) {
        if (!(gbnf = tool_call_gbnf(g, req))) return -1;
    } else if (r->format == QFIT_API_FORMAT_JSON) gbnf = strdup(qfit_schema_any_json_gbnf());
    else {
        char *schema = json_dumps(r->schema, JSON_COMPACT);
        gbnf = schema ? qfit_schema_to_gbnf(schema, strlen(schema), err, sizeof err) : NULL;
        free(schema);
        if (!gbnf) {
            fail(g->er, req, 400, "format: %s", err);
            return -1;
        }
    }
    if (!gbnf || !(g->grammar = qfit_grammar_parse(gbnf, strlen(gbnf), err, sizeof err))) {
        free(gbnf);
        fail(g->er, req, 500, "format: %s", gbnf ? err : "out of memory");
        return -1;
    }
    free(gbnf);
    g->gp.grammar = g->grammar;
    if (!(g->gp.grammar_vocab = qfit_sched_model_grammar_vocab(g->m, err, sizeof err))) {
        fail(g->er, req, 500, "%s", err);
        return -1;
    }
    return 0;
}

/* load / unload requests (empty prompt or messages) */
static void answer_load(gen *g, qfit_http_req *req)
{
    const bool unload = g->r->action == QFIT_API_UNLOAD;
    if (unload) {
        qfit_sched_release(g->m);
        g->m = NULL;
        qfit_sched_unload(g->er->sched, g->r->model);
    }
    qfit_api_result res;
    memset(&res, 0, sizeof res);
    res.done = true;
    res.done_reason = unload ? "unload" : "load";
    res.content = "";
    res.load_ns = g->load_ns;
    res.total_ns = now_ns() - g->t0;
    g->meta.now_ns = wall_ns();
    respond_json_steal(req, 200, g->chat ? qfit_api_ollama_chat_chunk(&g->meta, &res)
                                         : qfit_api_ollama_generate_chunk(&g->meta, &res));
}

/* ------------------------------------------------------------ routing */

static bool word_in(const char *text, const char *w)
{
    const size_t n = strlen(w);
    for (const char *p = text; (p = strcasestr(p, w)); p++) {
        const bool start = p == text || !isalnum((unsigned char)p[-1]);
        const bool end = !isalnum((unsigned char)p[n]);
        if (start && end) return true;
    }
    return false;
}

/* The "code" rule: a fenced block, two lines that look like source code, or words of a
 * programming request. A heuristic, documented as one (README). */
static bool looks_like_code(const char *text)
{
    if (!text) return false;
    if (strstr(text, "```")) return true;
    int lines = 0;
    for (const char *l = text; *l;) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l) : strlen(l);
        while (n && (l[n - 1] == ' ' || l[n - 1] == '\t' || l[n - 1] == '\r')) n--;
        const char *b = l;
        while (b < l + n && (*b == ' ' || *b == '\t')) b++;
        if (n && (l[n - 1] == ';' || l[n - 1] == '{' || l[n - 1] == '}' || !strncmp(b, "def ", 4) ||
                  !strncmp(b, "#include", 8) || !strncmp(b, "import ", 7) || !strncmp(b, "return ", 7) ||
                  !strncmp(b, "function ", 9) || !strncmp(b, "class ", 6) || !strncmp(b, "fn ", 3)))
            lines++;
        if (!e) break;
        l = e + 1;
    }
    if (lines >= 2) return true;
    static const char *const WORDS[] = {"code", "function", "compile", "compiler", "python", "javascript",
                                        "typescript", "rust", "golang", "java", "c++", "sql", "regex", "bug",
                                        "debug", "refactor", "stack trace", "segfault", "api"};
    for (size_t i = 0; i < sizeof WORDS / sizeof *WORDS; i++)
        if (word_in(text, WORDS[i])) return true;
    return false;
}

/* The text a rule judges: the last user message (chat) or the prompt. */
static const char *request_text(const qfit_api_request *r)
{
    if (r->messages) {
        for (size_t i = json_array_size(r->messages); i-- > 0;) {
            const json_t *m = json_array_get(r->messages, i);
            const char *role = json_string_value(json_object_get(m, "role"));
            if (role && !strcmp(role, "user"))
                return json_string_value(json_object_get(m, "content"));
        }
        return NULL;
    }
    return r->prompt;
}

/* Prompt tokens of the request with a model's template and tokenizer (the long>N rule). */
static long prompt_tokens(qfit_engine_routes *er, const qfit_api_request *r, const char *model, char *err,
                          size_t err_len)
{
    qfit_sched_model *m = NULL;
    qfit_sched_code code;
    if (qfit_sched_acquire(er->sched, model, NULL, QFIT_SCHED_KEEP_ALIVE_UNSET, &m, NULL, &code, err, err_len) != 0)
        return -1;
    const qfit_chat_model *cm = qfit_sched_model_chat(m);
    char *text = NULL;
    long n = -1;
    int32_t *ids = NULL;
    size_t nid = 0;
    if (r->messages && qfit_chat_model_template(cm)) {
        if (qfit_chat_render(cm, r->messages, r->tools, true, r->think, &text, err, err_len) != 0) text = NULL;
    } else text = strdup(r->prompt ? r->prompt : "");
    if (text && qfit_chat_tokenize(cm, text, &ids, &nid, err, err_len) == 0) n = (long)nid;
    free(ids);
    free(text);
    qfit_sched_release(m);
    return n;
}

/* When the requested model is a routing model: the model that answers, into r->model (the
 * router's name into router[]). 0 (routed or not a router), -1 after answering. */
static int route_request(qfit_engine_routes *er, qfit_http_req *req, qfit_api_request *r, char *router, size_t cap)
{
    router[0] = '\0';
    json_t *routes = NULL;
    char err[1024];
    int rc = qfit_sched_routes(er->sched, r->model, &routes, err, sizeof err);
    if (rc < 0) {
        fail(er, req, 500, "%s", err);
        return -1;
    }
    if (rc == 0) return 0;
    const char *target = NULL, *fallback = NULL;
    size_t i;
    json_t *rt;
    json_array_foreach(routes, i, rt)
        if (!strcmp(json_string_value(json_object_get(rt, "rule")), "default"))
            fallback = json_string_value(json_object_get(rt, "model"));
    json_array_foreach(routes, i, rt) {
        const char *rule = json_string_value(json_object_get(rt, "rule"));
        const char *model = json_string_value(json_object_get(rt, "model"));
        long n_long = 0;
        qfit_route_rule_check(rule, &n_long, NULL, 0);
        if (!strcmp(rule, "default")) target = model;
        else if (!strcmp(rule, "code") && looks_like_code(request_text(r))) target = model;
        else if (n_long > 0 && (r->messages || r->prompt)) {
            long n = prompt_tokens(er, r, fallback, err, sizeof err);
            if (n < 0) {
                json_decref(routes);
                fail(er, req, 500, "routing %s (%s): %s", r->model, rule, err);
                return -1;
            }
            if (n > n_long) target = model;
        }
        if (target) break;
    }
    snprintf(router, cap, "%s", r->model);
    char *t = strdup(target ? target : fallback);
    json_decref(routes);
    if (!t) {
        fail(er, req, 500, "out of memory");
        return -1;
    }
    free(r->model);
    r->model = t;
    qfit_http_add_header(req, "X-Qfit-Routed-Model", t);
    return 0;
}

static void handle_generation(qfit_http_req *req, qfit_engine_routes *er, qfit_api_endpoint ep)
{
    gen *g = calloc(1, sizeof *g);
    if (!g) {
        fail(er, req, 500, "out of memory");
        return;
    }
    g->er = er;
    g->ep = ep;
    g->t0 = now_ns();
    g->openai = ep == QFIT_API_OAI_CHAT || ep == QFIT_API_OAI_COMPLETIONS;
    g->chat = ep == QFIT_API_CHAT || ep == QFIT_API_OAI_CHAT;
    g->first_chunk = true;
    if (!(g->r = parse_request(er, req, ep, &g->body))) {
        gen_free(g);
        return;
    }
    g->stream = g->r->stream;
    if (route_request(er, req, g->r, g->router, sizeof g->router) != 0) {
        gen_free(g);
        return;
    }
    qfit_api_make_id(g->chat ? "chatcmpl-" : "cmpl-", rand64(), 24, g->id, sizeof g->id);
    g->meta.model = g->router[0] ? g->router : g->r->model;   /* the name the client asked for */
    g->meta.created = wall_ns() / 1000000000ll;
    g->meta.id = g->id;
    g->meta.include_usage = g->r->include_usage;
    if (!(g->m = acquire(er, req, g->r, &g->load_ns))) {
        gen_free(g);
        return;
    }
    if (g->r->action != QFIT_API_RUN) {
        answer_load(g, req);
        gen_free(g);
        return;
    }
    char err[1024];
    /* settings: the model's PARAMETERs, then the request's options */
    if (qfit_sched_model_gen_params(g->m, &g->gp, err, sizeof err) != 0 ||
        qfit_chat_apply_params(g->r->options, &g->gp, NULL, err, sizeof err) != 0) {
        fail(er, req, 400, "options: %s", err);
        gen_free(g);
        return;
    }
    /* a full context ends the answer with "length" unless the request asks for Ollama's
     * context shift explicitly ("shift": true; qfit never shifts silently) */
    if (json_is_true(json_object_get(g->body, "shift"))) g->gp.overflow = QFIT_OVERFLOW_SHIFT;
    g->gp.logprobs = g->r->logprobs;
    g->gp.top_logprobs = g->r->logprobs ? g->r->top_logprobs : 0;
    if (build_grammar(g, req) != 0) {
        gen_free(g);
        return;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    char *text = NULL;
    if (build_prompt(g, req, &ids, &n, &text) != 0) {
        free(ids);
        free(text);
        gen_free(g);
        return;
    }
    const qfit_chat_model *cm = qfit_sched_model_chat(g->m);
    const qfit_toolcall_format tf = g->r->tools && g->r->tool_choice != QFIT_API_TOOL_NONE
                                        ? qfit_toolcall_detect(qfit_chat_model_template(cm))
                                        : QFIT_TOOLCALL_NONE;
    const bool opens = text && qfit_toolcall_prompt_opens_thinking(text, strlen(text));
    free(text);
    const json_t *tools = tf != QFIT_TOOLCALL_NONE ? g->r->tools : NULL;
    if (!(g->tp = qfit_toolparse_new(tf, g->r->think == 1, opens, tools, err, sizeof err))) {
        free(ids);
        fail(er, req, 400, "tools: %s", err);
        gen_free(g);
        return;
    }
    qfit_sched_code code;
    g->n_prompt = (int)n;
    g->job = qfit_sched_generate(g->m, ids, n, &g->gp, &code, err, sizeof err);
    free(ids);
    if (!g->job) {
        fail(er, req, sched_status(code), "%s", err);
        gen_free(g);
        return;
    }
    if (g->n_dropped > 0) {
        char v[32];
        snprintf(v, sizeof v, "%d", g->n_dropped);
        qfit_http_add_header(req, "X-Qfit-Truncated-Messages", v);
    }
    if (g->stream) {
        g->st = qfit_http_stream_begin(req, 200, g->openai ? "text/event-stream" : "application/x-ndjson");
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (!g->st) {
            gen_free(g);
            return;
        }
        if (pthread_create(&t, &a, stream_main, g) != 0) {
            stream_error(g, "cannot start the stream");
            qfit_http_stream_end(g->st);
            gen_free(g);
        }
        pthread_attr_destroy(&a);
        return;
    }
    const qfit_gen_result *res = run_job(g, req);
    if (!res) {
        if (g->error[0]) fail(er, req, gen_http_status(g->error_status), "%s", g->error);
        else qfit_http_respond_error(req, 499, "client closed the request");
        gen_free(g);
        return;
    }
    qfit_api_result out;
    fill_result(g, &out, res);
    g->meta.now_ns = wall_ns();
    json_t *j;
    if (!g->openai) j = g->chat ? qfit_api_ollama_chat_chunk(&g->meta, &out) : qfit_api_ollama_generate_chunk(&g->meta, &out);
    else j = g->chat ? qfit_api_openai_chat(&g->meta, &out) : qfit_api_openai_completion(&g->meta, &out);
    if (j && g->router[0]) json_object_set_new(j, "routed_model", json_string(g->r->model));
    respond_json_steal(req, 200, j);
    gen_free(g);
}

static void h_generate(qfit_http_req *req, void *ctx) { handle_generation(req, ctx, QFIT_API_GENERATE); }
static void h_chat(qfit_http_req *req, void *ctx) { handle_generation(req, ctx, QFIT_API_CHAT); }
static void h_oai_chat(qfit_http_req *req, void *ctx) { handle_generation(req, ctx, QFIT_API_OAI_CHAT); }
static void h_oai_completions(qfit_http_req *req, void *ctx) { handle_generation(req, ctx, QFIT_API_OAI_COMPLETIONS); }

/* ------------------------------------------------------------ embeddings */

static void handle_embed(qfit_http_req *req, qfit_engine_routes *er, qfit_api_endpoint ep)
{
    const uint64_t t0 = now_ns();
    json_t *body = NULL;
    qfit_api_request *r = parse_request(er, req, ep, &body);
    if (!r) return;
    char router[256];
    if (route_request(er, req, r, router, sizeof router) != 0) {
        qfit_api_request_free(r);
        json_decref(body);
        return;
    }
    uint64_t load_ns = 0;
    qfit_sched_model *m = acquire(er, req, r, &load_ns);
    float *vec = NULL;
    const char **texts = NULL;
    qfit_embed_item *items = NULL;
    if (!m) goto done;
    if (r->action != QFIT_API_RUN) {
        if (r->action == QFIT_API_UNLOAD) {
            qfit_sched_release(m);
            m = NULL;
            qfit_sched_unload(er->sched, r->model);
        }
        qfit_api_result res = {.load_ns = load_ns, .total_ns = now_ns() - t0};
        qfit_api_meta meta = {.model = r->model, .now_ns = wall_ns()};
        respond_json_steal(req, 200, ep == QFIT_API_EMBEDDINGS ? qfit_api_ollama_embedding(NULL, 0)
                                                               : qfit_api_ollama_embed(&meta, NULL, 0, 0, &res));
        goto done;
    }
    /* the legacy endpoint embeds its one `prompt`, and does not normalise (as Ollama) */
    const bool legacy = ep == QFIT_API_EMBEDDINGS;
    const size_t n_in = legacy ? 1 : r->n_inputs;
    texts = calloc(n_in ? n_in : 1, sizeof *texts);
    items = calloc(n_in ? n_in : 1, sizeof *items);
    if (!texts || !items) {
        fail(er, req, 500, "out of memory");
        goto done;
    }
    if (legacy) texts[0] = r->prompt;
    for (size_t i = 0; !legacy && i < r->n_inputs; i++) {
        if (!r->inputs[i].text) {
            fail(er, req, 400, "input[%zu]: token-id inputs are not supported; send text", i);
            goto done;
        }
        texts[i] = r->inputs[i].text;
    }
    const int n_embd = qfit_sched_model_n_embd(m);
    const int dims = r->dimensions > 0 ? r->dimensions : n_embd;
    if (dims > n_embd) {
        fail(er, req, 400, "dimensions: %d is more than the model's %d", dims, n_embd);
        goto done;
    }
    if (n_in == 0 || !texts[0]) {
        fail(er, req, 400, "no input to embed");
        goto done;
    }
    if (!(vec = malloc(n_in * (size_t)dims * sizeof *vec))) {
        fail(er, req, 500, "out of memory");
        goto done;
    }
    qfit_embed_params ep2;
    qfit_embed_params_init(&ep2);
    ep2.truncate = json_is_true(json_object_get(body, "truncate"));
    ep2.dimensions = r->dimensions;
    ep2.normalize = !legacy;
    qfit_embed_result res;
    memset(&res, 0, sizeof res);
    qfit_sched_code code;
    char err[1024];
    if (qfit_sched_embed(m, texts, n_in, &ep2, vec, items, &res, &code, err, sizeof err) != 0) {
        fail(er, req, sched_status(code), "%s", err);
        goto done;
    }
    for (size_t i = 0; i < n_in * (size_t)res.n_dims; i++)
        if (!isfinite(vec[i])) {   /* never expected: say exactly what went wrong */
            fprintf(stderr, "%s: embedding of input %zu has a non-finite value at %zu (%g); %zu inputs, %d dims\n",
                    r->model, i / (size_t)res.n_dims, i % (size_t)res.n_dims, (double)vec[i], n_in, res.n_dims);
            fail(er, req, 500, "embedding of input %zu is not finite (value %zu of %d): an engine error",
                 i / (size_t)res.n_dims, i % (size_t)res.n_dims, res.n_dims);
            goto done;
        }
    if (res.n_truncated > 0) {
        char v[32];
        snprintf(v, sizeof v, "%lld", (long long)res.n_truncated);
        qfit_http_add_header(req, "X-Qfit-Truncated-Tokens", v);
    }
    if (ep == QFIT_API_EMBEDDINGS) respond_json_steal(req, 200, qfit_api_ollama_embedding(vec, (size_t)res.n_dims));
    else if (ep == QFIT_API_OAI_EMBEDDINGS)
        respond_json_steal(req, 200, qfit_api_openai_embeddings(r->model, vec, r->n_inputs, (size_t)res.n_dims,
                                                                r->base64, (int)res.prompt_eval_count));
    else {
        qfit_api_result ar = {.prompt_tokens = (int)res.prompt_eval_count, .load_ns = load_ns,
                              .total_ns = now_ns() - t0};
        qfit_api_meta meta = {.model = r->model, .now_ns = wall_ns()};
        respond_json_steal(req, 200, qfit_api_ollama_embed(&meta, vec, r->n_inputs, (size_t)res.n_dims, &ar));
    }
done:
    free(vec);
    free(texts);
    free(items);
    if (m) qfit_sched_release(m);
    qfit_api_request_free(r);
    json_decref(body);
}

static void h_embed(qfit_http_req *req, void *ctx) { handle_embed(req, ctx, QFIT_API_EMBED); }
static void h_embeddings(qfit_http_req *req, void *ctx) { handle_embed(req, ctx, QFIT_API_EMBEDDINGS); }
static void h_oai_embeddings(qfit_http_req *req, void *ctx) { handle_embed(req, ctx, QFIT_API_OAI_EMBEDDINGS); }

/* ------------------------------------------------------------ ps, metrics, tokenize */

static void h_ps(qfit_http_req *req, void *ctx)
{
    qfit_engine_routes *er = ctx;
    qfit_sched_ps_entry e[64];
    const int n = qfit_sched_ps(er->sched, e, 64);
    json_t *models = json_array();
    for (int i = 0; i < n && i < 64; i++) {
        char when[48];
        if (e[i].pinned) snprintf(when, sizeof when, "2318-11-26T00:00:00Z");   /* Ollama's "forever" */
        else qfit_api_rfc3339(e[i].expires_unix_ns ? e[i].expires_unix_ns : wall_ns(), when, sizeof when);
        json_array_append_new(models, json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:s}, s:s, s:I, s:i, s:i}",
                                                "name", e[i].name, "model", e[i].name, "size", (json_int_t)e[i].size_bytes,
                                                "digest", e[i].digest, "details", "format", "gguf", "parent_model", "",
                                                "expires_at", when, "size_vram", (json_int_t)0, "context_length",
                                                e[i].n_ctx, "parallel", e[i].n_seq));
    }
    respond_json_steal(req, 200, json_pack("{s:o}", "models", models));
}

static void put_histo(sbuf *b, const char *name, const char *help, const histo *h, const double *bounds, size_t nb)
{
    char line[256];
    snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    sb_add(b, line, strlen(line));
    for (size_t i = 0; i < nb; i++) {
        snprintf(line, sizeof line, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)h->buckets[i]);
        sb_add(b, line, strlen(line));
    }
    snprintf(line, sizeof line, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
             (unsigned long long)h->count, name, h->sum, name, (unsigned long long)h->count);
    sb_add(b, line, strlen(line));
}

static void h_metrics(qfit_http_req *req, void *ctx)
{
    qfit_engine_routes *er = ctx;
    qfit_sched_stats st;
    qfit_sched_get_stats(er->sched, &st);
    qfit_sched_ps_entry e[64];
    const int n = qfit_sched_ps(er->sched, e, 64);
    uint64_t hits = 0, reused = 0, evaluated = 0;
    for (int i = 0; i < n && i < 64; i++) {
        hits += e[i].batch.hits;
        reused += e[i].batch.reused_tokens;
        evaluated += e[i].batch.evaluated_tokens;
    }
    sbuf b = {0};
    char t[4096];
    pthread_mutex_lock(&er->mu);
    snprintf(t, sizeof t,
             "# HELP qfit_queue_depth Requests waiting for a model or a sequence.\n# TYPE qfit_queue_depth gauge\n"
             "qfit_queue_depth %d\n"
             "# HELP qfit_active_sequences Sequences generating now.\n# TYPE qfit_active_sequences gauge\n"
             "qfit_active_sequences %d\n"
             "# HELP qfit_loaded_models Model instances loaded.\n# TYPE qfit_loaded_models gauge\nqfit_loaded_models %d\n"
             "# HELP qfit_memory_planned_bytes Planned memory of the loaded models and the runtime.\n"
             "# TYPE qfit_memory_planned_bytes gauge\nqfit_memory_planned_bytes %llu\n"
             "# HELP qfit_memory_budget_bytes The memory budget (QFIT_MAX_MEMORY).\n"
             "# TYPE qfit_memory_budget_bytes gauge\nqfit_memory_budget_bytes %llu\n"
             "# HELP qfit_memory_resident_bytes Resident memory of the process.\n"
             "# TYPE qfit_memory_resident_bytes gauge\nqfit_memory_resident_bytes %zu\n"
             "# HELP qfit_prompt_tokens_total Prompt tokens evaluated.\n# TYPE qfit_prompt_tokens_total counter\n"
             "qfit_prompt_tokens_total %llu\n"
             "# HELP qfit_generated_tokens_total Tokens generated.\n# TYPE qfit_generated_tokens_total counter\n"
             "qfit_generated_tokens_total %llu\n"
             "# HELP qfit_requests_total Engine requests received.\n# TYPE qfit_requests_total counter\n"
             "qfit_requests_total %llu\n"
             "# HELP qfit_errors_total Engine requests answered with an error, by class.\n"
             "# TYPE qfit_errors_total counter\nqfit_errors_total{class=\"4xx\"} %llu\nqfit_errors_total{class=\"5xx\"} %llu\n"
             "# HELP qfit_model_loads_total Model loads.\n# TYPE qfit_model_loads_total counter\nqfit_model_loads_total %llu\n"
             "# HELP qfit_model_unloads_total Model unloads by cause.\n# TYPE qfit_model_unloads_total counter\n"
             "qfit_model_unloads_total{cause=\"expired\"} %llu\nqfit_model_unloads_total{cause=\"evicted\"} %llu\n"
             "qfit_model_unloads_total{cause=\"requested\"} %llu\n"
             "# HELP qfit_refused_total Requests refused, by cause.\n# TYPE qfit_refused_total counter\n"
             "qfit_refused_total{cause=\"busy\"} %llu\nqfit_refused_total{cause=\"no_fit\"} %llu\n"
             "qfit_refused_total{cause=\"prompt_too_long\"} %llu\n"
             "# HELP qfit_cancellations_total Generations cancelled (clients gone).\n"
             "# TYPE qfit_cancellations_total counter\nqfit_cancellations_total %llu\n"
             "# HELP qfit_prefix_cache_hits_total Requests that reused a cached prompt prefix.\n"
             "# TYPE qfit_prefix_cache_hits_total counter\nqfit_prefix_cache_hits_total %llu\n"
             "# HELP qfit_prefix_cache_reused_tokens_total Prompt tokens not evaluated thanks to the cache.\n"
             "# TYPE qfit_prefix_cache_reused_tokens_total counter\nqfit_prefix_cache_reused_tokens_total %llu\n",
             st.queue_depth, st.active_sequences, n, (unsigned long long)st.used_bytes,
             (unsigned long long)st.budget_bytes, qfit_process_rss_bytes(), (unsigned long long)st.prompt_tokens,
             (unsigned long long)st.generated_tokens, (unsigned long long)er->requests,
             (unsigned long long)er->errors_4xx, (unsigned long long)er->errors_5xx, (unsigned long long)st.loads,
             (unsigned long long)st.unloads_expired, (unsigned long long)st.unloads_evicted,
             (unsigned long long)st.unloads_requested, (unsigned long long)(st.refused_busy + er->refused_busy),
             (unsigned long long)st.refused_no_fit, (unsigned long long)st.refused_too_long,
             (unsigned long long)st.cancellations, (unsigned long long)hits, (unsigned long long)reused);
    (void)evaluated;
    sb_add(&b, t, strlen(t));
    put_histo(&b, "qfit_time_to_first_token_seconds", "From request to the first text of an answer.", &er->ttft,
              TTFT_BOUNDS, N_TTFT);
    put_histo(&b, "qfit_inter_token_seconds", "Between consecutive pieces of text of an answer.", &er->itl,
              ITL_BOUNDS, N_ITL);
    pthread_mutex_unlock(&er->mu);
    if (!b.p) qfit_http_respond_error(req, 500, "out of memory");
    else qfit_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    free(b.p);
}

/* POST /tokenize {"model","content"} -> {"tokens":[...]}; POST /detokenize {"model","tokens"} -> {"content"} */
static void handle_tok(qfit_http_req *req, qfit_engine_routes *er, bool detok)
{
    json_t *body = qfit_http_req_json(req);
    if (!body) return;
    const char *model = json_string_value(json_object_get(body, "model"));
    if (!model || !*model) {
        json_decref(body);
        fail(er, req, 400, "model is required");
        return;
    }
    qfit_sched_model *m = NULL;
    qfit_sched_code code;
    char err[1024];
    if (qfit_sched_acquire(er->sched, model, NULL, QFIT_SCHED_KEEP_ALIVE_UNSET, &m, NULL, &code, err, sizeof err) != 0) {
        json_decref(body);
        fail(er, req, sched_status(code), "%s", err);
        return;
    }
    const qfit_tokenizer *tok = qfit_chat_model_tokenizer(qfit_sched_model_chat(m));
    if (!detok) {
        const char *content = json_string_value(json_object_get(body, "content"));
        int32_t *ids = NULL;
        size_t n = 0;
        if (!content) fail(er, req, 400, "content: a string is required");
        else if (qfit_tokenize_alloc(tok, content, strlen(content), json_is_true(json_object_get(body, "add_special")),
                                     true, &ids, &n) != 0)
            fail(er, req, 400, "content: cannot tokenize");
        else {
            json_t *arr = json_array();
            for (size_t i = 0; i < n; i++) json_array_append_new(arr, json_integer(ids[i]));
            respond_json_steal(req, 200, json_pack("{s:o}", "tokens", arr));
        }
        free(ids);
    } else {
        json_t *toks = json_object_get(body, "tokens");
        const int n_vocab = qfit_sched_model_n_vocab(m);
        size_t n = json_array_size(toks), i;
        int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
        json_t *v;
        bool ok = json_is_array(toks) && ids;
        json_array_foreach(toks, i, v) {
            if (!ok) break;
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= n_vocab) {
                ok = false;
                fail(er, req, 400, "tokens[%zu]: not a token id of this model (0..%d)", i, n_vocab - 1);
            } else ids[i] = (int32_t)json_integer_value(v);
        }
        if (ok) {
            char *text = qfit_detokenize_alloc(tok, ids, n, false, false, NULL);
            if (!text) fail(er, req, 500, "out of memory");
            else respond_json_steal(req, 200, json_pack("{s:s}", "content", text));
            free(text);
        } else if (!json_is_array(toks)) fail(er, req, 400, "tokens: an array of token ids is required");
        free(ids);
    }
    qfit_sched_release(m);
    json_decref(body);
}

static void h_tokenize(qfit_http_req *req, void *ctx) { handle_tok(req, ctx, false); }
static void h_detokenize(qfit_http_req *req, void *ctx) { handle_tok(req, ctx, true); }

/* ------------------------------------------------------------ registration */

qfit_engine_routes *qfit_engine_routes_add(qfit_server *srv, qfit_sched *sched, char *err, size_t err_len)
{
    qfit_engine_routes *er = calloc(1, sizeof *er);
    if (!er) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    er->sched = sched;
    pthread_mutex_init(&er->mu, NULL);
    const qfit_http_route routes[] = {
        {"POST", "/api/generate", h_generate, er, 0, 0, NULL},
        {"POST", "/api/chat", h_chat, er, 0, 0, NULL},
        {"POST", "/api/embed", h_embed, er, 0, 0, NULL},
        {"POST", "/api/embeddings", h_embeddings, er, 0, 0, NULL},
        {"GET", "/api/ps", h_ps, er, 0, 0, NULL},
        {"POST", "/v1/chat/completions", h_oai_chat, er, 0, 0, NULL},
        {"POST", "/v1/completions", h_oai_completions, er, 0, 0, NULL},
        {"POST", "/v1/embeddings", h_oai_embeddings, er, 0, 0, NULL},
        {"GET", "/metrics", h_metrics, er, 0, 0, NULL},
        {"POST", "/tokenize", h_tokenize, er, 0, 0, NULL},
        {"POST", "/detokenize", h_detokenize, er, 0, 0, NULL},
    };
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++)
        if (qfit_server_route(srv, &routes[i], err, err_len) != 0) {
            qfit_engine_routes_free(er);
            return NULL;
        }
    return er;
}

void qfit_engine_routes_free(qfit_engine_routes *er)
{
    if (!er) return;
    pthread_mutex_destroy(&er->mu);
    free(er);
}
