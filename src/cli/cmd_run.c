/* qfit run — generate text, streamed as it is produced:
 *   qfit run MODEL.gguf -p PROMPT [options]   plain completion of PROMPT (an existing file)
 *   qfit run NAME [PROMPT]                    chat with a stored model (include/qfit/chat.h):
 *                                             one-shot with PROMPT or piped stdin, else an
 *                                             interactive session like `ollama run`; through
 *                                             a running qfit serve when one answers at
 *                                             QFIT_HOST (run_remote.h), else in this process. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_client.h"
#include "cli/cli_env.h"
#include "cli/cli_store.h"
#include "cli/commands.h"
#include "cli/run_grammar.h"
#include "cli/run_remote.h"
#include "platform/platform.h"
#include "qfit/chat.h"
#include "qfit/config.h"
#include "qfit/generate.h"
#include "qfit/model.h"
#include "qfit/tokenizer.h"

static void run_usage(FILE *f)
{
    fprintf(f,
            "usage: qfit run NAME [PROMPT] [--verbose] [--format json|SCHEMA.json] [--local]\n"
            "  chat with the stored model NAME through its chat template: one answer to PROMPT (or\n"
            "  to piped stdin), else an interactive session (type /? there for its commands).\n"
            "  When a qfit server answers at QFIT_HOST, the server runs the model (it stays loaded,\n"
            "  with the server's store and settings); --local runs it in this process instead\n"
            "usage: qfit run MODEL.gguf -p PROMPT [options]\n"
            "  -p, --prompt S        prompt text\n"
            "  -n, --n-predict N     tokens to generate (default 128)\n"
            "  --temp T              temperature (default 0.8; 0 = greedy)\n"
            "  --top-k K             (default 40; 0 = off)\n"
            "  --top-p P             (default 0.95; 1 = off)\n"
            "  --min-p P             (default 0.05; 0 = off)\n"
            "  --repeat-penalty R    (default 1.0 = off)\n"
            "  --repeat-last-n N     (default 64; -1 = context size, 0 = off)\n"
            "  --presence-penalty P, --frequency-penalty P   (default 0 = off)\n"
            "  --typical-p P         (default 1 = off)\n"
            "  --stop S              stop before this text (repeatable; not printed)\n"
            "  --seed S              RNG seed (default 0x5EED)\n"
            "  --threads N           (default: all CPUs)\n"
            "  --ctx N               context size (default: min(training context, 4096); at most the\n"
            "                        training context). When generation fills it, the context is\n"
            "                        shifted: the first --keep tokens stay, the oldest half of the rest goes\n"
            "  --keep N              tokens kept at the start on a context shift (default 0; BOS always kept)\n"
            "  --no-context-shift    stop at a full context instead of shifting it\n"
            "  --kv-type T           KV cache type for K and V: f16 (default), f32, bf16, q8_0, q4_0, q4_1,\n"
            "                        q5_0, q5_1, iq4_nl\n"
            "  --cache-type-k T, --cache-type-v T   K and V cache types separately\n"
            "  --flash-attn on|off|auto   tiled attention with online softmax (default auto = on)\n"
            "  --device D            where the forward pass runs: cpu (default), ref (the scalar reference\n"
            "                        backend, slow), vulkan0, ... (qfit inspect --devices lists them)\n"
            "  --gpu-layers N        on a Vulkan device, run the last N layers there (-ngl; default -1: all that fit)\n"
            "  --gpu-mem SIZE        the device memory -1 may fill (default: its memory less 512 MiB)\n"
            "  --ignore-eos          keep generating after an end-of-generation token\n"
            "  --format json|FILE    structured output: any JSON value, or JSON matching a JSON Schema file\n"
            "  --grammar FILE        structured output: text matching a GBNF grammar (llama.cpp syntax)\n"
            "environment: QFIT_KV_CACHE_TYPE (OLLAMA_KV_CACHE_TYPE), QFIT_FLASH_ATTENTION\n"
            "  (OLLAMA_FLASH_ATTENTION), QFIT_CONTEXT_LENGTH, QFIT_DEVICE; options override the environment\n");
}

/* the streaming side of qfit run: text to stdout, events to stderr */
static int run_text(void *u, const char *text, size_t len)
{
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static void run_shift(void *u, int n_keep, int n_discard, int n_past)
{
    fprintf(stderr, "\n[context shift: kept %d, discarded %d, %d cached]\n", n_keep, n_discard, n_past);
}

static void run_prefill(void *u, int n_done, int n_total)
{
    if (n_done == 0) {   /* echo the prompt once, before it is evaluated */
        fputs((const char *)u, stdout);
        fflush(stdout);
    }
}

static int num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

/* qfit run MODEL.gguf -p PROMPT: plain completion with the options above. */
static int run_gguf(int argc, char **argv)
{
    const char *model_path = NULL, *prompt = NULL, *format = NULL, *grammar_path = NULL;
    const char *stops[QFIT_GEN_MAX_STOP];
    qfit_gen_params gp;
    qfit_gen_params_init(&gp);
    gp.num_predict = 128;
    gp.overflow = QFIT_OVERFLOW_SHIFT;
    gp.stop = stops;
    qfit_sampler_params *sp = &gp.sampling;   /* qfit run's own defaults (see run_usage) */
    sp->top_p = 0.95f;
    sp->min_p = 0.05f;
    sp->seed = 0x5EED;
    qfit_context_params cp = qfit_context_default_params();
    char env_desc[256], perr[256];
    if (qfit_context_params_from_env(&cp, env_desc, sizeof env_desc, perr, sizeof perr) != 0) {
        fprintf(stderr, "qfit run: %s\n", perr);
        return 2;
    }
    if (env_desc[0]) fprintf(stderr, "environment: %s\n", env_desc);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { run_usage(stdout); return 0; }
        if (!strcmp(a, "--ignore-eos")) { gp.ignore_eos = true; continue; }
        if (!strcmp(a, "--no-context-shift")) { gp.overflow = QFIT_OVERFLOW_ERROR; continue; }
        if (a[0] == '-' && a[1]) {
            if (i + 1 >= argc) { fprintf(stderr, "qfit run: %s needs a value\n", a); return 2; }
            const char *v = argv[++i];
            double d = 0;
            int bad = 0, pr = qfit_context_params_parse_arg(&cp, a, v, perr, sizeof perr);
            if (pr < 0) { fprintf(stderr, "qfit run: %s\n", perr); return 2; }
            if (pr > 0) continue;
            if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = v;
            else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) { bad = num(v, 0, 1 << 24, &d); gp.num_predict = (int)d; }
            else if (!strcmp(a, "--temp")) { bad = num(v, 0, 1e6, &d); sp->temperature = (float)d; }
            else if (!strcmp(a, "--top-k")) { bad = num(v, 0, 1 << 30, &d); sp->top_k = (int)d; }
            else if (!strcmp(a, "--top-p")) { bad = num(v, 0, 1, &d); sp->top_p = (float)d; }
            else if (!strcmp(a, "--min-p")) { bad = num(v, 0, 1, &d); sp->min_p = (float)d; }
            else if (!strcmp(a, "--typical-p")) { bad = num(v, 0, 1, &d); sp->typical_p = (float)d; }
            else if (!strcmp(a, "--repeat-penalty")) { bad = num(v, 1e-3, 1e3, &d); sp->repeat_penalty = (float)d; }
            else if (!strcmp(a, "--presence-penalty")) { bad = num(v, -1e3, 1e3, &d); sp->presence_penalty = (float)d; }
            else if (!strcmp(a, "--frequency-penalty")) { bad = num(v, -1e3, 1e3, &d); sp->frequency_penalty = (float)d; }
            else if (!strcmp(a, "--repeat-last-n")) { bad = num(v, -1, 1 << 20, &d); sp->repeat_last_n = (int)d; }
            else if (!strcmp(a, "--seed")) { bad = num(v, 0, 1.8e19, &d); sp->seed = (uint64_t)d; }
            else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) { bad = num(v, 1, 1024, &d); cp.n_threads = (int)d; }
            else if (!strcmp(a, "--keep")) { bad = num(v, 0, 1 << 24, &d); gp.n_keep = (int)d; }
            else if (!strcmp(a, "--format")) format = v;
            else if (!strcmp(a, "--grammar")) grammar_path = v;
            else if (!strcmp(a, "--stop")) {
                if (gp.n_stop == QFIT_GEN_MAX_STOP) { fprintf(stderr, "qfit run: at most %d --stop strings\n", QFIT_GEN_MAX_STOP); return 2; }
                stops[gp.n_stop++] = v;
            }
            else { fprintf(stderr, "qfit run: unknown option %s\n", a); run_usage(stderr); return 2; }
            if (bad) { fprintf(stderr, "qfit run: invalid value '%s' for %s\n", v, a); return 2; }
        } else if (!model_path) model_path = a;
        else { run_usage(stderr); return 2; }
    }
    if (!model_path || !prompt) { run_usage(stderr); return 2; }
    qfit_grammar *grammar = NULL;   /* refused before the model is loaded */
    if (qfit_run_grammar_load(format, grammar_path, &grammar) != 0) return 2;
    gp.grammar = grammar;

    char err[512];
    qfit_model *m = qfit_model_load_for(model_path, &cp, err, sizeof err);
    if (!m) { fprintf(stderr, "qfit run: %s\n", err); qfit_grammar_free(grammar); return 1; }
    const qfit_hparams *hp = qfit_model_hparams(m);
    fprintf(stderr, "model: %s (%s, %d layers, vocab %d), loaded in %.3f s, RSS %.1f MiB\n", model_path,
            hp->arch_name, hp->n_layer, hp->n_vocab, qfit_model_load_seconds(m),
            (double)qfit_process_rss_bytes() / (1 << 20));
    int rc = 1;
    qfit_context *c = NULL;
    qfit_tokenizer *tok = qfit_tokenizer_from_gguf(qfit_model_gguf(m), err, sizeof err);
    if (!tok) { fprintf(stderr, "qfit run: tokenizer: %s\n", err); goto out; }
    c = qfit_context_new(m, &cp, err, sizeof err);
    if (!c) { fprintf(stderr, "qfit run: %s\n", err); goto out; }
    {
        char desc[512];
        qfit_context_describe(c, desc, sizeof desc);
        fprintf(stderr, "%s\n", desc);
    }
    qfit_cli_debug_context("run", model_path, c);
    const qfit_gen_callbacks cb = { .on_text = run_text, .on_shift = run_shift, .on_prefill = run_prefill,
                                    .user = (void *)prompt };
    qfit_gen_result r;
    if (qfit_generate_text(c, tok, prompt, &gp, &cb, &r) != 0) {
        fprintf(stderr, "%sqfit run: %s\n", r.prompt_eval_count > 0 ? "\n" : "", r.error);
        goto out;
    }
    if (r.context_full)
        fprintf(stderr, "\nqfit run: the context (%d tokens) is full; stopping (--no-context-shift)\n",
                qfit_context_n_ctx(c));
    printf("\n");
    fflush(stdout);
    const double t_prompt = (double)r.prompt_eval_ns * 1e-9, t_gen = (double)r.eval_ns * 1e-9;
    fprintf(stderr, "prompt: %d tokens in %.3f s (%.1f tokens/s)\n", r.prompt_eval_count, t_prompt,
            t_prompt > 0 ? (double)r.prompt_eval_count / t_prompt : 0.0);
    fprintf(stderr, "generation: %d tokens in %.3f s (%.1f tokens/s), %d context shifts\n", r.eval_count, t_gen,
            t_gen > 0 && r.eval_count > 1 ? (double)(r.eval_count - 1) / t_gen : 0.0, r.n_shifts);
    fprintf(stderr, "peak RSS: %.1f MiB\n", (double)qfit_process_peak_rss_bytes() / (1 << 20));
    rc = 0;
out:
    qfit_context_free(c);
    qfit_tokenizer_free(tok);
    qfit_model_free(m);
    qfit_grammar_free(grammar);
    return rc;
}

/* ================================================================ chat mode */

/* Set by SIGINT in an interactive session: polled between tokens (ends that answer)
 * and seen by the line reader (a Ctrl-C at the prompt). */
static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

typedef struct {
    qfit_chat_model    *cm;
    qfit_model         *m;
    qfit_context       *c;
    qfit_params        *params;   /* the session's: the Modelfile's, then /set parameter */
    qfit_context_params cp;       /* the context's settings (environment, then params) */
    json_t             *history;  /* the conversation: user, assistant and /set system messages */
    char               *system;   /* /set system's text (NULL: the model's SYSTEM) */
    int32_t            *cached;   /* the token ids in the context's KV cache, in order */
    size_t              n_cached, cap_cached;
    bool                verbose;
    const qfit_grammar *grammar;  /* --format: every answer constrained (NULL: none) */
    /* Through a server (remote.name set): no model, context or cache here; params holds
     * only the session's /set parameter overrides (the server applies the model's own),
     * format_json is --format as the server takes it. */
    run_remote          remote;
    bool                use_server;
    json_t             *format_json;
} chat_session;

static void session_close_model(chat_session *s)
{
    qfit_run_remote_close(&s->remote);
    qfit_context_free(s->c);
    qfit_model_free(s->m);
    qfit_chat_model_free(s->cm);
    qfit_params_free(s->params);
    s->c = NULL;
    s->m = NULL;
    s->cm = NULL;
    s->params = NULL;
    s->n_cached = 0;
}

/* Context settings: the environment, then the session's parameters. */
static int session_context_params(const qfit_params *p, qfit_context_params *cp, char *err, size_t err_len)
{
    *cp = qfit_context_default_params();
    char env_desc[256];
    if (qfit_context_params_from_env(cp, env_desc, sizeof env_desc, err, err_len) != 0) return -1;
    return qfit_chat_apply_params(p, NULL, cp, err, err_len);
}

/* Open MODEL on the server, replacing nothing on failure. */
static int session_open_remote(chat_session *s, const char *model, bool need_template, char *err, size_t err_len)
{
    run_remote r;
    qfit_params *p = qfit_params_new();
    if (!p) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    if (qfit_run_remote_open(&r, model, err, err_len) != 0) {
        qfit_params_free(p);
        return -1;
    }
    if (need_template && !qfit_run_remote_has_template(&r)) {
        snprintf(err, err_len, "%s has no chat template on the server: create a model with a Modelfile "
                 "TEMPLATE to chat with it", model);
        qfit_run_remote_close(&r);
        qfit_params_free(p);
        return -1;
    }
    session_close_model(s);
    s->remote = r;
    s->params = p;
    return 0;
}

/* Open MODEL (stored name or GGUF path) into s, replacing nothing on failure. */
static int session_open(chat_session *s, const char *model, bool need_template, char *err, size_t err_len)
{
    if (s->use_server) return session_open_remote(s, model, need_template, err, err_len);
    chat_session n = { .verbose = s->verbose };
    qfit_warnings w = { 0 };
    n.cm = qfit_chat_model_open(model, NULL, &w, err, err_len);
    for (size_t i = 0; i < w.count; i++) fprintf(stderr, "qfit run: warning: %s\n", w.msgs[i]);
    qfit_warnings_free(&w);
    if (!n.cm) return -1;
    if (need_template && !qfit_chat_model_template(n.cm)) {
        snprintf(err, err_len, "%s has no chat template (no TEMPLATE, no tokenizer.chat_template): "
                 "create a model with a Modelfile TEMPLATE to chat with it", model);
        goto fail;
    }
    if (!(n.params = qfit_params_clone(qfit_chat_model_modelfile(n.cm)->params))) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    char e2[512];
    if (session_context_params(n.params, &n.cp, e2, sizeof e2) != 0) {
        snprintf(err, err_len, "%s: %s", model, e2);
        goto fail;
    }
    if (!(n.m = qfit_model_load_for(qfit_chat_model_gguf_path(n.cm), &n.cp, err, err_len)) ||
        !(n.c = qfit_context_new(n.m, &n.cp, err, err_len)))
        goto fail;
    qfit_cli_debug_context("run", qfit_chat_model_gguf_path(n.cm), n.c);
    session_close_model(s);
    s->cm = n.cm;
    s->m = n.m;
    s->c = n.c;
    s->params = n.params;
    s->cp = n.cp;
    s->n_cached = 0;
    return 0;
fail:
    session_close_model(&n);
    return -1;
}

/* ---- one answer */

typedef struct {
    char    *text;           /* the answer so far */
    size_t   len, cap;
    int32_t *ids;            /* the tokens sampled */
    size_t   n_ids, cap_ids;
    bool     oom;
} answer_buf;

static int answer_text(void *u, const char *text, size_t len)
{
    answer_buf *a = u;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    if (a->len + len + 1 > a->cap) {
        size_t cap = (a->len + len + 1) * 2;
        char *t = realloc(a->text, cap);
        if (!t) { a->oom = true; return 1; }
        a->text = t;
        a->cap = cap;
    }
    memcpy(a->text + a->len, text, len);
    a->len += len;
    a->text[a->len] = '\0';
    return 0;
}

static int answer_token(void *u, const qfit_gen_token *tok)
{
    answer_buf *a = u;
    if (a->n_ids == a->cap_ids) {
        size_t cap = a->cap_ids ? a->cap_ids * 2 : 256;
        int32_t *t = realloc(a->ids, cap * sizeof *t);
        if (!t) { a->oom = true; return 1; }
        a->ids = t;
        a->cap_ids = cap;
    }
    a->ids[a->n_ids++] = tok->id;
    return 0;
}

static bool answer_abort(void *u)
{
    (void)u;
    return g_interrupted != 0;
}

/* Record ids[0..n) followed by more[0..n_more) as the cache's content, cut to what the
 * context holds now (a cancelled prefill or an unevaluated last token hold less). */
static int session_set_cached(chat_session *s, const int32_t *ids, size_t n, const int32_t *more, size_t n_more)
{
    size_t total = (size_t)qfit_context_n_past(s->c);
    if (total > n + n_more) total = n + n_more;
    if (total > s->cap_cached) {
        int32_t *t = realloc(s->cached, total * sizeof *t);
        if (!t) { s->n_cached = 0; qfit_context_reset(s->c); return -1; }
        s->cached = t;
        s->cap_cached = total;
    }
    const size_t from_ids = total < n ? total : n;
    memmove(s->cached, ids, from_ids * sizeof *ids);
    if (total > n) memcpy(s->cached + n, more, (total - n) * sizeof *more);
    s->n_cached = total;
    return 0;
}

static void print_stats(const qfit_gen_result *r)
{
    const double tp = (double)r->prompt_eval_ns * 1e-9, te = (double)r->eval_ns * 1e-9;
    fprintf(stderr, "total duration:       %.3fs\n", (double)r->total_ns * 1e-9);
    fprintf(stderr, "prompt eval count:    %d token(s)\n", r->prompt_eval_count);
    fprintf(stderr, "prompt eval duration: %.3fs\n", tp);
    fprintf(stderr, "prompt eval rate:     %.2f tokens/s\n", tp > 0 ? r->prompt_eval_count / tp : 0.0);
    fprintf(stderr, "eval count:           %d token(s)\n", r->eval_count);
    fprintf(stderr, "eval duration:        %.3fs\n", te);
    fprintf(stderr, "eval rate:            %.2f tokens/s\n", te > 0 && r->eval_count > 1 ? (r->eval_count - 1) / te : 0.0);
}

/* Room kept for the answer when checking that a prompt fits: num_predict when it is
 * smaller, else an eighth of the context; at least one token. */
static int answer_reserve(int num_predict, int n_ctx)
{
    int r = n_ctx / 8;
    if (num_predict >= 0 && num_predict < r) r = num_predict;
    return r < 1 ? 1 : r;
}

typedef enum { TURN_OK = 0, TURN_NOT_RUN = 1, TURN_ERROR = -1 } turn_status;

/* Generate the answer to the conversation (chat = true: rendered from the history with
 * the template; false: raw is the whole prompt, plain completion). Reuses the longest
 * cached prefix, so a turn costs its new tokens. The answer, even cut by Ctrl-C or a
 * full context, is appended to the history. TURN_NOT_RUN: the prompt does not fit (a
 * message says so; the history is unchanged). */
static turn_status session_turn_remote(chat_session *s, bool chat, const char *raw, bool interactive);

static turn_status session_turn(chat_session *s, bool chat, const char *raw, bool interactive)
{
    if (s->use_server) return session_turn_remote(s, chat, raw, interactive);
    char err[1024];
    char *prompt = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    turn_status st = TURN_ERROR;
    answer_buf a = { 0 };
    const qfit_tokenizer *tok = qfit_chat_model_tokenizer(s->cm);
    if (chat) {
        if (qfit_chat_render(s->cm, s->history, NULL, true, -1, &prompt, err, sizeof err) != 0 ||
            qfit_chat_tokenize(s->cm, prompt, &ids, &n, err, sizeof err) != 0) {
            fprintf(stderr, "qfit run: %s\n", err);
            goto out;
        }
    } else if (qfit_tokenize_alloc(tok, raw, strlen(raw), true, false, &ids, &n) != 0) {
        fprintf(stderr, "qfit run: tokenization failed\n");
        goto out;
    }
    if (n == 0) { fprintf(stderr, "qfit run: the prompt is empty\n"); goto out; }

    qfit_gen_params gp;
    qfit_gen_params_init(&gp);
    if (qfit_chat_apply_params(s->params, &gp, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "qfit run: %s\n", err);
        goto out;
    }
    gp.overflow = QFIT_OVERFLOW_ERROR;   /* never drop the start of a conversation silently */
    gp.grammar = s->grammar;
    const int n_ctx = qfit_context_n_ctx(s->c), reserve = answer_reserve(gp.num_predict, n_ctx);
    if ((int64_t)n + reserve > n_ctx) {
        fprintf(stderr, "qfit run: the %s is %zu tokens and %d more are kept for the answer, but the "
                "context holds %d tokens: %s\n", chat ? "conversation" : "prompt", n, reserve, n_ctx,
                interactive ? "use /clear to start a new conversation, or /set parameter num_ctx "
                              "with a larger value" : "shorten it, or use a larger num_ctx");
        st = TURN_NOT_RUN;
        goto out;
    }
    /* The longest cached prefix of the new prompt, leaving one token to evaluate; the
     * prefix still counts in the penalty window (gp.history), as Ollama's runner does. */
    size_t keep = 0;
    while (keep < s->n_cached && keep < n - 1 && s->cached[keep] == ids[keep]) keep++;
    qfit_context_truncate(s->c, (int)keep);
    keep = (size_t)qfit_context_n_past(s->c);   /* sliding-window layers may keep less (model.h) */
    s->n_cached = keep;

    g_interrupted = 0;
    const qfit_gen_callbacks cb = { .on_text = answer_text, .on_token = answer_token,
                                    .should_abort = answer_abort, .user = &a };
    qfit_gen_result r;
    gp.history = ids;
    gp.n_history = keep;
    int rc = qfit_generate(s->c, tok, ids + keep, n - keep, &gp, &cb, &r);
    g_interrupted = 0;
    if (session_set_cached(s, ids, n, a.ids, a.n_ids) != 0) a.oom = true;
    printf("\n");
    fflush(stdout);
    if (rc != 0 || a.oom) {
        fprintf(stderr, "qfit run: %s\n", rc != 0 ? r.error : "out of memory");
        qfit_context_reset(s->c);
        s->n_cached = 0;
        goto out;
    }
    if (r.context_full)
        fprintf(stderr, "qfit run: the context (%d tokens) is full: the answer stops here. %s\n", n_ctx,
                interactive ? "Use /clear to start a new conversation, or /set parameter num_ctx with a "
                              "larger value" : "Use a larger num_ctx");
    if (s->verbose) print_stats(&r);
    if (chat) {
        /* the text as generated (a truncated character at a cut end included) */
        json_t *msg = json_pack("{s:s, s:o}", "role", "assistant", "content",
                                json_stringn_nocheck(a.text ? a.text : "", a.len));
        if (!msg || json_array_append_new(s->history, msg) != 0) { fprintf(stderr, "qfit run: out of memory\n"); goto out; }
    }
    st = TURN_OK;
out:
    free(a.text);
    free(a.ids);
    free(ids);
    free(prompt);
    return st;
}

/* The same turn through the server: the conversation (or the raw prompt) is sent whole;
 * the server's prefix cache reuses what it has. */
static turn_status session_turn_remote(chat_session *s, bool chat, const char *raw, bool interactive)
{
    char err[1024];
    answer_buf a = { 0 };
    /* to tell a full context from the length asked for */
    const int num_predict = qfit_run_remote_num_predict(&s->remote, s->params);
    g_interrupted = 0;
    const qfit_gen_callbacks cb = { .on_text = answer_text, .should_abort = answer_abort, .user = &a };
    qfit_gen_result r;
    int rc = qfit_run_remote_answer(&s->remote, chat ? s->history : NULL, raw, s->params, s->format_json, &cb, &r,
                                    err, sizeof err);
    g_interrupted = 0;
    if (a.len || rc == 0) printf("\n");
    fflush(stdout);
    turn_status st = TURN_ERROR;
    if (rc == 1) {
        fprintf(stderr, "qfit run: %s\n", err);
        st = TURN_NOT_RUN;
    } else if (rc != 0 || a.oom) {
        fprintf(stderr, "qfit run: %s\n", rc != 0 ? err : "out of memory");
    } else {
        if (r.reason == QFIT_GEN_LENGTH && (num_predict < 0 || r.eval_count < num_predict))
            fprintf(stderr, "qfit run: the context is full: the answer stops here. %s\n",
                    interactive ? "Use /clear to start a new conversation, or /set parameter num_ctx with a "
                                  "larger value" : "Use a larger num_ctx");
        if (s->verbose && r.reason != QFIT_GEN_CANCELLED) print_stats(&r);
        st = TURN_OK;
    }
    if (chat && (st == TURN_OK || a.len)) {   /* an answer cut by Ctrl-C stays in the conversation */
        json_t *msg = json_pack("{s:s, s:o}", "role", "assistant", "content",
                                json_stringn_nocheck(a.text ? a.text : "", a.len));
        if (!msg || json_array_append_new(s->history, msg) != 0) { fprintf(stderr, "qfit run: out of memory\n"); st = TURN_ERROR; }
        else st = TURN_OK;
    }
    free(a.text);
    free(a.ids);
    return st;
}

/* ---- interactive session */

/* Lines from fd 0 with read(2), so that a SIGINT interrupts the wait. */
typedef struct {
    char  *buf;
    size_t len, cap;
    bool   eof;
} line_reader;

enum { LINE_OK = 1, LINE_EOF = 0, LINE_INTERRUPTED = -1, LINE_ERROR = -2 };

#define LINE_MAX_BYTES (16u << 20)

/* *line: malloc'd, without its newline. */
static int read_line(line_reader *r, char **line)
{
    for (;;) {
        char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
        if (nl || (r->eof && r->len)) {
            size_t n = nl ? (size_t)(nl - r->buf) : r->len;
            if (!(*line = strndup(r->buf, n))) return LINE_ERROR;
            size_t used = nl ? n + 1 : n;
            memmove(r->buf, r->buf + used, r->len - used);
            r->len -= used;
            return LINE_OK;
        }
        if (r->eof) return LINE_EOF;
        if (r->cap - r->len < 4096) {
            if (r->cap >= LINE_MAX_BYTES) return LINE_ERROR;
            size_t cap = r->cap ? r->cap * 2 : 8192;
            char *b = realloc(r->buf, cap);
            if (!b) return LINE_ERROR;
            r->buf = b;
            r->cap = cap;
        }
        /* Wait with SIGINT blocked except inside the wait (ppoll), so that a Ctrl-C arriving just
         * before the wait is not lost (a plain read would then block until Enter). */
        sigset_t intr, old, during;
        sigemptyset(&intr);
        sigaddset(&intr, SIGINT);
        sigprocmask(SIG_BLOCK, &intr, &old);
        during = old;
        sigdelset(&during, SIGINT);
        int pr = g_interrupted ? -1 : qfit_sys_wait_readable(0, &during);
        int saved = pr < 0 && !g_interrupted ? errno : EINTR;
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (g_interrupted) {   /* the terminal discards the pending line on Ctrl-C */
            g_interrupted = 0;
            r->len = 0;
            return LINE_INTERRUPTED;
        }
        if (pr < 0 && saved == EINTR) continue;
        if (pr < 0) return LINE_ERROR;
        ssize_t got = read(0, r->buf + r->len, r->cap - r->len);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return LINE_ERROR;
        if (got == 0) r->eof = true;
        r->len += (size_t)got;
    }
}

static void chat_help(const char *topic)
{
    if (topic && !strcmp(topic, "set")) {
        printf("Available Commands:\n"
               "  /set parameter NAME VALUE   Set a parameter (as Modelfile PARAMETER; stop takes several values)\n"
               "  /set system TEXT            Set the system message\n"
               "  /set verbose                Show statistics after each answer\n"
               "  /set quiet                  Do not show statistics\n");
    } else if (topic && !strcmp(topic, "show")) {
        printf("Available Commands:\n"
               "  /show info         Details of this model\n"
               "  /show modelfile    The Modelfile of this session\n"
               "  /show parameters   Parameters of this session\n"
               "  /show system       The system message\n"
               "  /show template     The chat template\n");
    } else {
        printf("Available Commands:\n"
               "  /set            Set session variables\n"
               "  /show           Show model information\n"
               "  /load <model>   Load a model (a new conversation)\n"
               "  /save <model>   Save the session as a model (its Modelfile and the conversation)\n"
               "  /clear          Clear the conversation and its cached tokens\n"
               "  /bye            Exit\n"
               "  /?, /help       Help for a command\n"
               "  /? set, /? show Help for /set and /show\n\n"
               "Use \"\"\" to begin a multi-line message.\n");
    }
}

/* The session as a Modelfile: FROM the model, its template when it was set on the GGUF
 * (a stored model's is inherited through FROM), the session's system and parameters,
 * the model's messages, then the conversation when with_history. */
static qfit_modelfile *session_modelfile(const chat_session *s, bool with_history, char *err, size_t err_len)
{
    const qfit_modelfile *src = qfit_chat_model_modelfile_c(s->cm);
    qfit_modelfile *mf = qfit_modelfile_new();
    if (!mf) goto oom;
    qfit_params_free(mf->params);
    mf->params = NULL;
    if (!(mf->from = strdup(qfit_chat_model_name(s->cm))) || !(mf->params = qfit_params_clone(s->params)) ||
        ((s->system || src->system) && !(mf->system = strdup(s->system ? s->system : src->system))))
        goto oom;
    if (!qfit_chat_model_is_stored(s->cm) && !strcmp(qfit_chat_model_template_source(s->cm), "set") &&
        !(mf->tmpl = strdup(qfit_chat_model_template(s->cm))))
        goto oom;
    for (size_t i = 0; i < src->nlicenses; i++)
        if (qfit_modelfile_add_license(mf, src->licenses[i], err, err_len) != 0) goto fail;
    for (size_t i = 0; i < src->nmessages; i++)
        if (qfit_modelfile_add_message(mf, src->messages[i].role, src->messages[i].content, err, err_len) != 0)
            goto fail;
    size_t i;
    json_t *msg;
    if (with_history) json_array_foreach(s->history, i, msg) {
        const char *role = json_string_value(json_object_get(msg, "role"));
        const char *content = json_string_value(json_object_get(msg, "content"));
        if (qfit_modelfile_add_message(mf, role ? role : "", content ? content : "", err, err_len) != 0) goto fail;
    }
    return mf;
oom:
    snprintf(err, err_len, "out of memory");
fail:
    qfit_modelfile_free(mf);
    return NULL;
}

/* The words of a command line: first word in *cmd, the rest after blanks in *rest. */
static void split_word(char *line, char **word, char **rest)
{
    while (*line == ' ' || *line == '\t') line++;
    *word = line;
    while (*line && *line != ' ' && *line != '\t') line++;
    if (*line) *line++ = '\0';
    while (*line == ' ' || *line == '\t') line++;
    *rest = line;
}

/* /set parameter NAME VALUE...: validated on a copy of the session's parameters, then
 * applied; a new context size (or batch, threads) makes a new context. */
static void cmd_set_parameter(chat_session *s, char *args)
{
    char *name, *value, err[512];
    split_word(args, &name, &value);
    if (!*name || !*value) { printf("Usage: /set parameter NAME VALUE\n"); return; }
    qfit_params *set = qfit_params_new(), *next = qfit_params_clone(s->params);
    qfit_warnings w = { 0 };
    int rc = set && next ? 0 : -1;
    if (rc) snprintf(err, sizeof err, "out of memory");
    qfit_param_type type;
    if (rc == 0 && qfit_params_lookup(name, &type) == 1 && type == QFIT_PARAM_STRINGS) {
        char *word, *rest = value;   /* stop: each word is one stop string, as Ollama */
        while (rc > -1 && *rest) {
            split_word(rest, &word, &rest);
            rc = qfit_params_set_string(set, name, word, &w, err, sizeof err);
        }
    } else if (rc == 0) {
        rc = qfit_params_set_string(set, name, value, &w, err, sizeof err);
    }
    for (size_t i = 0; i < w.count; i++) printf("%s\n", w.msgs[i]);
    qfit_context_params cp;
    /* session_context_params validates the generation options as well */
    if (rc == 1 && (qfit_params_merge(next, set, err, sizeof err) != 0 ||
                    session_context_params(next, &cp, err, sizeof err) != 0))
        rc = -1;
    if (rc == 1 && !s->use_server && memcmp(&cp, &s->cp, sizeof cp) != 0) {
        qfit_context *c = qfit_context_new(s->m, &cp, err, sizeof err);
        if (!c) rc = -1;
        else {
            qfit_context_free(s->c);
            s->c = c;
            s->cp = cp;
            s->n_cached = 0;
        }
    }
    if (rc == 1) {
        qfit_params_free(s->params);
        s->params = next;
        next = NULL;
        printf("Set parameter '%s' to '%s'\n", name, value);
    } else if (rc < 0) {
        printf("Error: %s\n", err);
    }
    qfit_warnings_free(&w);
    qfit_params_free(set);
    qfit_params_free(next);
}

static void cmd_set(chat_session *s, char *args)
{
    char *what, *rest;
    split_word(args, &what, &rest);
    if (!strcmp(what, "parameter")) cmd_set_parameter(s, rest);
    else if (!strcmp(what, "system")) {
        /* as Ollama: a system message in the conversation (replacing one just before) */
        char *copy = strdup(rest);
        json_t *msg = json_pack("{s:s, s:s}", "role", "system", "content", rest);
        size_t n = json_array_size(s->history);
        const char *last = json_string_value(json_object_get(json_array_get(s->history, n ? n - 1 : 0), "role"));
        if (!copy || !msg || (n && last && !strcmp(last, "system") ? json_array_set_new(s->history, n - 1, msg)
                                                                    : json_array_append_new(s->history, msg))) {
            free(copy);
            printf("Error: out of memory or not UTF-8\n");
            return;
        }
        free(s->system);
        s->system = copy;
        printf("Set system message.\n");
    } else if (!strcmp(what, "verbose")) { s->verbose = true; printf("Set 'verbose' mode.\n"); }
    else if (!strcmp(what, "quiet")) { s->verbose = false; printf("Set 'quiet' mode.\n"); }
    else printf("Unknown command '/set %s'. Type /? set for help\n", what);
}

static void cmd_show(chat_session *s, char *args)
{
    char *what, *rest, err[512];
    split_word(args, &what, &rest);
    if (s->use_server) {
        if (!qfit_run_remote_show(&s->remote, what, s->params, s->system))
            printf("Unknown command '/show %s'. Type /? show for help\n", what);
        return;
    }
    const qfit_modelfile *mf = qfit_chat_model_modelfile_c(s->cm);
    if (!strcmp(what, "info")) {
        const qfit_hparams *hp = qfit_model_hparams(s->m);
        const char *tmpl_src = qfit_chat_model_template_source(s->cm);
        printf("  Model\n");
        printf("    %-20s%s\n", "name", qfit_chat_model_name(s->cm));
        printf("    %-20s%s\n", "file", qfit_chat_model_gguf_path(s->cm));
        printf("    %-20s%s\n", "architecture", hp->arch_name);
        printf("    %-20s%llu\n", "parameters", (unsigned long long)qfit_model_n_params(s->m));
        printf("    %-20s%d\n", "context length", hp->n_ctx_train);
        printf("    %-20s%d\n", "embedding length", hp->n_embd);
        printf("    %-20s%d\n", "num_ctx", qfit_context_n_ctx(s->c));
        printf("    %-20s%s%s%s%s\n\n", "template", tmpl_src,
               qfit_chat_model_template(s->cm) ? " (" : "",
               qfit_chat_model_template(s->cm) ? qfit_template_kind_name(qfit_chat_model_template_kind(s->cm)) : "",
               qfit_chat_model_template(s->cm) ? ")" : "");
    } else if (!strcmp(what, "template")) {
        const char *t = qfit_chat_model_template(s->cm);
        printf("%s\n", t ? t : "No template was specified for this model.");
    } else if (!strcmp(what, "parameters")) {
        if (qfit_params_count(s->params)) { printf("Model defined parameters:\n"); qfit_cli_print_params(s->params, "", 30); }
        else printf("No parameters were specified for this model.\n");
    } else if (!strcmp(what, "system")) {
        const char *sys = s->system ? s->system : mf->system;
        printf("%s\n", sys && sys[0] ? sys : "No system message was specified for this model.");
    } else if (!strcmp(what, "modelfile")) {
        qfit_modelfile *m = session_modelfile(s, false, err, sizeof err);
        char *text = m ? qfit_modelfile_print(m, NULL, err, sizeof err) : NULL;
        if (text) fputs(text, stdout);
        else printf("Error: %s\n", err);
        free(text);
        qfit_modelfile_free(m);
    } else {
        printf("Unknown command '/show %s'. Type /? show for help\n", what);
    }
}

static void cmd_save(chat_session *s, char *args)
{
    char *name, *rest, err[1024];
    split_word(args, &name, &rest);
    if (!*name || *rest) { printf("Usage: /save <modelname>\n"); return; }
    if (s->use_server) {
        if (qfit_run_remote_save(&s->remote, name, s->params, s->system, s->history, err, sizeof err) != 0)
            printf("Error: %s\n", err);
        else printf("Created new model '%s'\n", name);
        return;
    }
    qfit_modelfile *mf = session_modelfile(s, true, err, sizeof err);
    qfit_store *st = mf ? qfit_cli_open_store("run") : NULL;
    qfit_create_opts o = { .quantize_ftype = -1 };
    if (!mf) printf("Error: %s\n", err);
    else if (st && qfit_store_create(st, name, mf, &o, err, sizeof err) != 0) printf("Error: %s\n", err);
    else if (st) printf("Created new model '%s'\n", name);
    qfit_store_close(st);
    qfit_modelfile_free(mf);
}

/* A message from a line: `"""` opens a multi-line message that ends at a line ending in
 * `"""` (lines joined with newlines, as Ollama). LINE_OK with *text malloc'd; *quoted
 * when the message began with `"""` (then it is never a command). */
static int read_message(line_reader *lr, char *first, char **text, bool *quoted)
{
    size_t flen = strlen(first);
    *quoted = strncmp(first, "\"\"\"", 3) == 0;
    if (!*quoted) { *text = first; return LINE_OK; }
    char *body = first + 3;
    size_t blen = flen - 3;
    if (blen >= 3 && !strcmp(body + blen - 3, "\"\"\"")) {   /* """one line""" */
        memmove(first, body, blen - 3);
        first[blen - 3] = '\0';
        *text = first;
        return LINE_OK;
    }
    size_t len = blen, cap = blen + 2;
    char *acc = malloc(cap);
    if (!acc) { free(first); return LINE_ERROR; }
    memcpy(acc, body, blen);
    acc[len++] = '\n';
    free(first);
    for (;;) {
        printf("... ");
        fflush(stdout);
        char *line;
        int rc = read_line(lr, &line);
        if (rc != LINE_OK) { free(acc); return rc; }
        size_t n = strlen(line);
        bool end = n >= 3 && !strcmp(line + n - 3, "\"\"\"");
        if (end) n -= 3;
        if (len + n + 2 > cap) {
            cap = (len + n + 2) * 2;
            char *t = cap <= LINE_MAX_BYTES ? realloc(acc, cap) : NULL;
            if (!t) { free(acc); free(line); return LINE_ERROR; }
            acc = t;
        }
        memcpy(acc + len, line, n);
        len += n;
        free(line);
        if (end) break;
        acc[len++] = '\n';
    }
    acc[len] = '\0';
    *text = acc;
    return LINE_OK;
}

static int chat_interactive(chat_session *s)
{
    struct sigaction sa = { 0 }, old;
    sa.sa_handler = on_sigint;   /* no SA_RESTART: a Ctrl-C interrupts the wait for input */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    sigset_t intr, old_mask;   /* a parent may have blocked it: Ctrl-C must reach us */
    sigemptyset(&intr);
    sigaddset(&intr, SIGINT);
    sigprocmask(SIG_UNBLOCK, &intr, &old_mask);
    line_reader lr = { 0 };
    int rc = 0;
    for (;;) {
        printf(">>> ");
        fflush(stdout);
        char *line = NULL, *text = NULL;
        bool quoted = false;
        int lrc = read_line(&lr, &line);
        if (lrc == LINE_OK) lrc = read_message(&lr, line, &text, &quoted);
        if (lrc == LINE_INTERRUPTED) { printf("\nUse Ctrl + d or /bye to exit.\n"); continue; }
        if (lrc == LINE_EOF) { printf("\n"); break; }
        if (lrc == LINE_ERROR) { fprintf(stderr, "qfit run: cannot read the input (a line over %u bytes?)\n", LINE_MAX_BYTES); rc = 1; break; }
        if (text[0] == '/' && !quoted) {
            char *cmd, *args;
            split_word(text + 1, &cmd, &args);
            bool bye = false;
            if (!strcmp(cmd, "bye") || !strcmp(cmd, "exit")) bye = true;
            else if (!strcmp(cmd, "?") || !strcmp(cmd, "help")) chat_help(*args ? args : NULL);
            else if (!strcmp(cmd, "set")) cmd_set(s, args);
            else if (!strcmp(cmd, "show")) cmd_show(s, args);
            else if (!strcmp(cmd, "save")) cmd_save(s, args);
            else if (!strcmp(cmd, "clear")) {
                json_array_clear(s->history);
                if (s->c) qfit_context_reset(s->c);
                s->n_cached = 0;
                printf("Cleared session context\n");
            } else if (!strcmp(cmd, "load")) {
                char err[1024], *name, *rest;
                split_word(args, &name, &rest);
                if (!*name || *rest) printf("Usage: /load <modelname>\n");
                else if (session_open(s, name, true, err, sizeof err) != 0) printf("Error: %s\n", err);
                else {
                    json_array_clear(s->history);
                    free(s->system);
                    s->system = NULL;
                    printf("Loading model '%s'\n", name);
                }
            } else printf("Unknown command '/%s'. Type /? for help\n", cmd);
            free(text);
            if (bye) break;
            continue;
        }
        if (!text[0]) { free(text); continue; }
        json_t *msg = json_pack("{s:s, s:s}", "role", "user", "content", text);
        free(text);
        if (!msg) { printf("Error: the message is not valid UTF-8\n"); continue; }
        json_array_append_new(s->history, msg);
        if (session_turn(s, true, NULL, true) != TURN_OK)   /* not answered: forget the question */
            json_array_remove(s->history, json_array_size(s->history) - 1);
        printf("\n");
    }
    free(lr.buf);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGINT, &old, NULL);
    return rc;
}

/* All of stdin (piped), at most LINE_MAX_BYTES. NULL on error (message printed). */
static char *read_all_stdin(void)
{
    size_t len = 0, cap = 8192;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        if (cap - len < 2) {
            char *t = cap < LINE_MAX_BYTES ? realloc(buf, cap * 2) : NULL;
            if (!t) { free(buf); buf = NULL; break; }
            buf = t;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, stdin);
        len += n;
        if (n == 0) {
            if (ferror(stdin)) { free(buf); buf = NULL; }
            break;
        }
    }
    if (!buf) { fprintf(stderr, "qfit run: cannot read stdin (more than %u bytes?)\n", LINE_MAX_BYTES); return NULL; }
    buf[len] = '\0';
    if (strlen(buf) != len) { fprintf(stderr, "qfit run: stdin contains a NUL byte\n"); free(buf); return NULL; }
    return buf;
}

/* --format as the server takes it: "json", or the schema file's JSON. NULL when absent;
 * the file was validated by qfit_run_grammar_load already. */
static json_t *format_value(const char *format)
{
    if (!format) return NULL;
    if (!strcmp(format, "json")) return json_string("json");
    json_error_t je;
    return json_load_file(format, 0, &je);
}

/* Where the model runs: 1 through the server at QFIT_HOST, 0 here (nobody listens
 * there, or --local), -1 after a message (something that is not a qfit server answers,
 * or QFIT_HOST is bad). */
static int use_server(bool local, bool verbose)
{
    if (local) return 0;
    char base[600], err[1024];
    int r = qfit_client_probe(base, sizeof base, err, sizeof err);
    if (r < 0) fprintf(stderr, "qfit run: %s (use --local to run the model in this process)\n", err);
    if (r == 1 && verbose) fprintf(stderr, "qfit run: through the server at %s\n", base);
    /* the engine settings of this environment are the server's business now: say so */
    static const char *const engine_env[] = { "KV_CACHE_TYPE", "FLASH_ATTENTION", "CONTEXT_LENGTH" };
    for (size_t i = 0; r == 1 && i < sizeof engine_env / sizeof engine_env[0]; i++) {
        char v[256];
        const char *which = NULL;
        bool too_long = false;
        if (qfit_env(engine_env[i], v, sizeof v, &which, &too_long) || too_long)
            fprintf(stderr, "qfit run: note: %s is not applied: the server at %s runs the model with its own "
                    "settings (--local runs it here)\n", which, base);
    }
    return r;
}

/* qfit run NAME [PROMPT...] [--verbose] [--format json|SCHEMA.json] [--local] */
static int run_chat(int argc, char **argv)
{
    const char *model = NULL, *format = NULL;
    char *prompt = NULL;
    size_t plen = 0;
    bool verbose = false, local = false;
    int rc = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--verbose")) verbose = true;
        else if (!strcmp(a, "--local")) local = true;
        else if (!strcmp(a, "--format") && i + 1 < argc) format = argv[++i];
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "qfit run: unknown option %s for a stored model (its settings come from its "
                    "Modelfile; change them with /set parameter in a session)\n", a);
            free(prompt);
            return 2;
        } else if (!model) model = a;
        else {   /* the prompt's words, joined by spaces (as Ollama) */
            size_t n = strlen(a);
            char *t = realloc(prompt, plen + n + 2);
            if (!t) { free(prompt); return 1; }
            prompt = t;
            if (plen) prompt[plen++] = ' ';
            memcpy(prompt + plen, a, n + 1);
            plen += n;
        }
    }
    if (!model) { run_usage(stderr); free(prompt); return 2; }
    qfit_grammar *grammar = NULL;   /* an unsupported schema is refused before anything loads */
    if (qfit_run_grammar_load(format, NULL, &grammar) != 0) { free(prompt); return 2; }
    const bool interactive = !prompt && isatty(0);
    if (!prompt && !interactive && !(prompt = read_all_stdin())) { qfit_grammar_free(grammar); return 1; }

    chat_session s = { .verbose = verbose, .grammar = grammar };
    char err[1024];
    const int server = use_server(local, verbose);
    if (server < 0) goto out;
    s.use_server = server == 1;
    if (s.use_server && format && !(s.format_json = format_value(format))) {
        fprintf(stderr, "qfit run: cannot read %s\n", format);
        goto out;
    }
    if (!(s.history = json_array())) goto out;
    if (session_open(&s, model, interactive, err, sizeof err) != 0) {
        fprintf(stderr, "qfit run: %s\n", err);
        goto out;
    }
    if (interactive) { rc = chat_interactive(&s); goto out; }

    const bool chat = s.use_server ? qfit_run_remote_has_template(&s.remote) : qfit_chat_model_template(s.cm) != NULL;
    if (!chat)
        fprintf(stderr, "qfit run: %s has no chat template: the prompt is completed as it is\n", model);
    json_t *msg = chat ? json_pack("{s:s, s:s}", "role", "user", "content", prompt) : NULL;
    if (chat && (!msg || json_array_append_new(s.history, msg) != 0)) {
        fprintf(stderr, "qfit run: the prompt is not valid UTF-8\n");
        goto out;
    }
    rc = session_turn(&s, chat, prompt, false) == TURN_OK ? 0 : 1;
out:
    session_close_model(&s);
    json_decref(s.history);
    json_decref(s.format_json);
    free(s.system);
    free(s.cached);
    free(prompt);
    qfit_grammar_free(grammar);
    return rc;
}

/* The model argument: the first word that is neither an option nor an option's value. */
static const char *model_arg(int argc, char **argv)
{
    static const char *const flags[] = { "--ignore-eos", "--no-context-shift", "--verbose", "--local", "-h", "--help" };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1]) return a;
        bool flag = false;
        for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) flag |= !strcmp(a, flags[f]);
        if (!flag) i++;
    }
    return NULL;
}

int qfit_cmd_run(int argc, char **argv)
{
    const char *model = model_arg(argc, argv);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { run_usage(stdout); return 0; }
    if (!model || access(model, F_OK) == 0) return run_gguf(argc, argv);   /* a file: plain completion */
    return run_chat(argc, argv);
}
