/* Chat models: a model's Modelfile, template and tokens; rendering and parameters. */
#include "qfit/chat.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct qfit_chat_model {
    char               *name;        /* as given, or the stored model's display name */
    bool                stored;
    qfit_modelfile     *mf;          /* never NULL; mf->from is the GGUF path */
    qfit_gguf          *gguf;
    qfit_tokenizer     *tok;
    char               *tmpl;        /* the template in use, NULL for none */
    qfit_template_kind  kind;
    const char         *source;      /* static text, see qfit_chat_model_template_source */
    char                bos[256], eos[256];
};

static void chat_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || !err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static void token_text(const qfit_tokenizer *t, int32_t id, char *buf, size_t cap)
{
    size_t len = 0;
    const char *p = id == QFIT_TOKEN_NONE ? NULL : qfit_tokenizer_token_text(t, id, &len);
    snprintf(buf, cap, "%.*s", p ? (int)len : 0, p ? p : "");
}

/* A stored model's Modelfile and display name from the store (store NULL: the default). */
static int open_stored(qfit_chat_model *cm, const char *model, qfit_store *store, qfit_warnings *w,
                       char *err, size_t err_len)
{
    qfit_store *own = NULL;
    if (!store) {
        char root[4096];
        if (qfit_store_default_root(root, sizeof root, err, err_len) != 0) return -1;
        if (!(store = own = qfit_store_open(root, err, err_len))) return -1;
    }
    qfit_store_model m;
    int rc = qfit_store_resolve(store, model, &m, err, err_len);
    if (rc == 0) {
        rc = qfit_store_model_modelfile(store, &m, &cm->mf, w, err, err_len);
        if (rc == 0 && cm->mf->nroutes) {
            chat_err(err, err_len, "%s is a routing model (ROUTE lines): ask `qfit serve`, which sends each request "
                     "to one of the models it names (the default: %s)", model, cm->mf->routes[cm->mf->nroutes - 1].model);
            for (size_t i = 0; i < cm->mf->nroutes; i++)
                if (!strcmp(cm->mf->routes[i].rule, "default"))
                    chat_err(err, err_len, "%s is a routing model (ROUTE lines): ask `qfit serve`, which sends each "
                             "request to one of the models it names (the default: %s)", model, cm->mf->routes[i].model);
            rc = -1;
        }
        char disp[QFIT_NAME_STR_MAX];
        if (rc == 0 && (qfit_name_display(&m.name, disp, sizeof disp) < 0 || !(cm->name = strdup(disp)))) {
            chat_err(err, err_len, "out of memory");
            rc = -1;
        }
        qfit_store_model_free(&m);
    }
    qfit_store_close(own);
    return rc;
}

qfit_chat_model *qfit_chat_model_open(const char *model, qfit_store *store, qfit_warnings *w,
                                      char *err, size_t err_len)
{
    if (!model || !*model) { chat_err(err, err_len, "no model given"); return NULL; }
    qfit_chat_model *cm = calloc(1, sizeof *cm);
    if (!cm) { chat_err(err, err_len, "out of memory"); return NULL; }
    if (access(model, F_OK) == 0) {   /* a file path wins over a model name */
        if (!(cm->mf = qfit_modelfile_new()) || !(cm->mf->from = strdup(model)) || !(cm->name = strdup(model))) {
            chat_err(err, err_len, "out of memory");
            goto fail;
        }
    } else {
        cm->stored = true;
        if (open_stored(cm, model, store, w, err, err_len) != 0) goto fail;
    }
    char e2[512];
    if (!(cm->gguf = qfit_gguf_open(cm->mf->from, e2, sizeof e2)) ||
        !(cm->tok = qfit_tokenizer_from_gguf(cm->gguf, e2, sizeof e2))) {
        chat_err(err, err_len, "%s: %s", cm->mf->from, e2);
        goto fail;
    }
    token_text(cm->tok, qfit_tokenizer_bos(cm->tok), cm->bos, sizeof cm->bos);
    token_text(cm->tok, qfit_tokenizer_eos(cm->tok), cm->eos, sizeof cm->eos);

    cm->kind = QFIT_TEMPLATE_UNKNOWN;
    cm->source = "none";
    if (cm->mf->tmpl) {   /* Go, as Ollama; Jinja when its syntax says so (Ollama would refuse it) */
        if (!(cm->tmpl = strdup(cm->mf->tmpl))) { chat_err(err, err_len, "out of memory"); goto fail; }
        cm->kind = qfit_template_detect(cm->tmpl) == QFIT_TEMPLATE_JINJA ? QFIT_TEMPLATE_JINJA : QFIT_TEMPLATE_GO;
        cm->source = "TEMPLATE";
    } else {
        int64_t k = qfit_gguf_find_key(cm->gguf, "tokenizer.chat_template");
        if (k >= 0 && qfit_gguf_kv_type(cm->gguf, k) == QFIT_GGUF_STRING) {
            qfit_gguf_str v = qfit_gguf_get_str(cm->gguf, k);
            if (!(cm->tmpl = strndup(v.data, (size_t)v.len))) { chat_err(err, err_len, "out of memory"); goto fail; }
            cm->kind = QFIT_TEMPLATE_JINJA;
            cm->source = "tokenizer.chat_template";
        }
    }
    return cm;
fail:
    qfit_chat_model_free(cm);
    return NULL;
}

void qfit_chat_model_free(qfit_chat_model *cm)
{
    if (!cm) return;
    qfit_tokenizer_free(cm->tok);
    qfit_gguf_close(cm->gguf);
    qfit_modelfile_free(cm->mf);
    free(cm->tmpl);
    free(cm->name);
    free(cm);
}

const char *qfit_chat_model_name(const qfit_chat_model *cm) { return cm->name; }
bool qfit_chat_model_is_stored(const qfit_chat_model *cm) { return cm->stored; }
const char *qfit_chat_model_gguf_path(const qfit_chat_model *cm) { return cm->mf->from; }
const qfit_gguf *qfit_chat_model_gguf(const qfit_chat_model *cm) { return cm->gguf; }
const qfit_tokenizer *qfit_chat_model_tokenizer(const qfit_chat_model *cm) { return cm->tok; }
qfit_modelfile *qfit_chat_model_modelfile(qfit_chat_model *cm) { return cm->mf; }
const qfit_modelfile *qfit_chat_model_modelfile_c(const qfit_chat_model *cm) { return cm->mf; }
const char *qfit_chat_model_template(const qfit_chat_model *cm) { return cm->tmpl; }
qfit_template_kind qfit_chat_model_template_kind(const qfit_chat_model *cm) { return cm->kind; }
const char *qfit_chat_model_template_source(const qfit_chat_model *cm) { return cm->source; }

int qfit_chat_model_set_template(qfit_chat_model *cm, const char *text, qfit_template_kind kind,
                                 char *err, size_t err_len)
{
    if (kind == QFIT_TEMPLATE_UNKNOWN) kind = qfit_template_detect(text);
    if (kind == QFIT_TEMPLATE_UNKNOWN) {
        chat_err(err, err_len, "neither a Go nor a Jinja template");
        return -1;
    }
    char *copy = strdup(text);
    if (!copy) { chat_err(err, err_len, "out of memory"); return -1; }
    free(cm->tmpl);
    cm->tmpl = copy;
    cm->kind = kind;
    cm->source = "set";
    return 0;
}

static json_t *message(const char *role, const char *content)
{
    return json_pack("{s:s, s:s}", "role", role, "content", content);
}

json_t *qfit_chat_messages(const qfit_chat_model *cm, const json_t *messages)
{
    const qfit_modelfile *mf = cm->mf;
    json_t *all = json_array();
    for (size_t i = 0; all && i < mf->nmessages; i++)
        if (json_array_append_new(all, message(mf->messages[i].role, mf->messages[i].content)) != 0) {
            json_decref(all);
            return NULL;
        }
    if (all && messages && json_array_extend(all, (json_t *)messages) != 0) {
        json_decref(all);
        return NULL;
    }
    /* Ollama looks at the caller's first message, not at the model's MESSAGE turns */
    const char *first = json_string_value(json_object_get(json_array_get(messages, 0), "role"));
    if (all && mf->system && mf->system[0] && !(first && !strcmp(first, "system")) &&
        json_array_insert_new(all, 0, message("system", mf->system)) != 0) {
        json_decref(all);
        return NULL;
    }
    return all;
}

/* Render a complete message list (qfit_chat_messages already applied). */
static int render_all(const qfit_chat_model *cm, const json_t *all, const json_t *tools, bool add_generation_prompt,
                      int think, char **out, char *err, size_t err_len)
{
    qfit_chat_input in = {
        .messages = all, .tools = tools, .add_generation_prompt = add_generation_prompt,
        .bos_token = cm->bos, .eos_token = cm->eos, .think = think,
    };
    char e2[768];
    int rc = qfit_template_render(cm->tmpl, cm->kind, &in, out, e2, sizeof e2);
    if (rc != 0) chat_err(err, err_len, "%s template: %s", qfit_template_kind_name(cm->kind), e2);
    return rc;
}

static int check_render_input(const qfit_chat_model *cm, const json_t *messages, const json_t *tools, char *err,
                              size_t err_len)
{
    if (!cm->tmpl) {
        chat_err(err, err_len, "%s has no chat template (no TEMPLATE, no tokenizer.chat_template)", cm->name);
        return -1;
    }
    if (messages && !json_is_array(messages)) { chat_err(err, err_len, "messages must be an array"); return -1; }
    if (tools && !json_is_array(tools)) { chat_err(err, err_len, "tools must be an array"); return -1; }
    return 0;
}

int qfit_chat_render(const qfit_chat_model *cm, const json_t *messages, const json_t *tools,
                     bool add_generation_prompt, int think, char **out, char *err, size_t err_len)
{
    *out = NULL;
    if (check_render_input(cm, messages, tools, err, err_len) != 0) return -1;
    json_t *all = qfit_chat_messages(cm, messages);
    if (!all) { chat_err(err, err_len, "out of memory"); return -1; }
    int rc = render_all(cm, all, tools, add_generation_prompt, think, out, err, err_len);
    json_decref(all);
    return rc;
}

int qfit_chat_render_with(const qfit_chat_model *cm, const char *tmpl, const json_t *messages, const json_t *tools,
                          bool add_generation_prompt, int think, char **out, char *err, size_t err_len)
{
    *out = NULL;
    const qfit_template_kind kind = qfit_template_detect(tmpl);
    if (kind == QFIT_TEMPLATE_UNKNOWN) {
        chat_err(err, err_len, "template: neither a Go nor a Jinja template");
        return -1;
    }
    if (messages && !json_is_array(messages)) { chat_err(err, err_len, "messages must be an array"); return -1; }
    json_t *all = qfit_chat_messages(cm, messages);
    if (!all) { chat_err(err, err_len, "out of memory"); return -1; }
    qfit_chat_input in = {
        .messages = all, .tools = tools, .add_generation_prompt = add_generation_prompt,
        .bos_token = cm->bos, .eos_token = cm->eos, .think = think,
    };
    char e2[768];
    int rc = qfit_template_render(tmpl, kind, &in, out, e2, sizeof e2);
    if (rc != 0) chat_err(err, err_len, "template: %s", e2);
    json_decref(all);
    return rc;
}

int qfit_chat_render_fim(const qfit_chat_model *cm, const char *tmpl, const char *prompt, const char *suffix, char **out,
                         char *err, size_t err_len)
{
    *out = NULL;
    if (!tmpl) tmpl = cm->tmpl;
    if (!tmpl || qfit_template_detect(tmpl) != QFIT_TEMPLATE_GO || !strstr(tmpl, ".Suffix")) {
        chat_err(err, err_len, "%s does not support insert: fill-in-the-middle needs a Go template that uses .Suffix",
                 cm->name);
        return -1;
    }
    json_t *none = json_array(), *extra = json_pack("{s:s, s:s}", "prompt", prompt, "suffix", suffix);
    int rc = -1;
    if (!none || !extra) chat_err(err, err_len, "out of memory (or text that is not UTF-8)");
    else {
        /* as Ollama: .Prompt and .Suffix only (no system, no messages) */
        qfit_chat_input in = { .messages = none, .bos_token = cm->bos, .eos_token = cm->eos, .think = -1,
                               .extra = extra };
        char e2[768];
        if ((rc = qfit_template_render(tmpl, QFIT_TEMPLATE_GO, &in, out, e2, sizeof e2)) != 0)
            chat_err(err, err_len, "template: %s", e2);
    }
    json_decref(none);
    json_decref(extra);
    return rc;
}

static bool is_role(const json_t *m, const char *role)
{
    const char *r = json_string_value(json_object_get(m, "role"));
    return r && !strcmp(r, role);
}

int qfit_chat_prompt_fit(const qfit_chat_model *cm, const json_t *messages, const json_t *tools,
                         bool add_generation_prompt, int think, int n_ctx, int reserve, bool truncate,
                         int32_t **ids, size_t *n, int *n_dropped, char *err, size_t err_len)
{
    *ids = NULL;
    *n = 0;
    if (n_dropped) *n_dropped = 0;
    if (reserve < 0 || n_ctx < 1) { chat_err(err, err_len, "invalid context %d / reserve %d", n_ctx, reserve); return -1; }
    if (check_render_input(cm, messages, tools, err, err_len) != 0) return -1;
    json_t *all = qfit_chat_messages(cm, messages);
    if (!all) { chat_err(err, err_len, "out of memory"); return -1; }
    const size_t total = json_array_size(all);
    size_t last_user = 0;   /* the last turn is never dropped */
    for (size_t i = 0; i < total; i++) if (is_role(json_array_get(all, i), "user")) last_user = i;
    int rc = -1;
    size_t first_n = 0;
    /* cut = index of the first non-system message kept: 0, then each user message */
    for (size_t cut = 0; cut <= last_user; cut++) {
        if (cut > 0 && !is_role(json_array_get(all, cut), "user")) continue;
        json_t *kept = json_array();
        int dropped = 0;
        for (size_t i = 0; kept && i < total; i++) {
            json_t *m = json_array_get(all, i);
            if (i < cut && !is_role(m, "system")) { dropped++; continue; }
            json_array_append(kept, m);
        }
        char *text = NULL;
        int32_t *t = NULL;
        size_t nt = 0;
        if (!kept) { chat_err(err, err_len, "out of memory"); break; }
        int r = render_all(cm, kept, tools, add_generation_prompt, think, &text, err, err_len);
        json_decref(kept);
        if (r == 0) r = qfit_chat_tokenize(cm, text, &t, &nt, err, err_len);
        free(text);
        if (r != 0) break;
        if (cut == 0) first_n = nt;
        if ((int64_t)nt + reserve <= n_ctx) {
            *ids = t;
            *n = nt;
            if (n_dropped) *n_dropped = dropped;
            rc = 0;
            break;
        }
        free(t);
        if (!truncate) {
            chat_err(err, err_len, "the conversation (%zu tokens) and room for the answer (%d) exceed the context "
                     "(%d tokens)", nt, reserve, n_ctx);
            break;
        }
        if (cut == last_user)
            chat_err(err, err_len, "the conversation does not fit the context (%d tokens) even with only its system "
                     "messages and last turn (%zu tokens, %d for the answer; %zu with every turn)", n_ctx, nt,
                     reserve, first_n);
    }
    json_decref(all);
    return rc;
}

int qfit_chat_tokenize(const qfit_chat_model *cm, const char *prompt, int32_t **ids, size_t *n,
                       char *err, size_t err_len)
{
    *ids = NULL;
    *n = 0;
    int32_t *t = NULL;
    size_t nt = 0;
    if (qfit_tokenize_alloc(cm->tok, prompt, strlen(prompt), false, true, &t, &nt) != 0) {
        chat_err(err, err_len, "tokenization failed");
        return -1;
    }
    const int32_t bos = qfit_tokenizer_bos(cm->tok);
    if (qfit_tokenizer_add_bos(cm->tok) && bos != QFIT_TOKEN_NONE && !(nt > 0 && t[0] == bos)) {
        int32_t *b = malloc((nt + 1) * sizeof *b);
        if (!b) { free(t); chat_err(err, err_len, "out of memory"); return -1; }
        b[0] = bos;
        if (nt) memcpy(b + 1, t, nt * sizeof *t);
        free(t);
        t = b;
        nt++;
    }
    *ids = t;
    *n = nt;
    return 0;
}

/* ------------------------------------------------------------ parameters */

static int int_in(const qfit_param *e, int64_t lo, int64_t hi, int *out, char *err, size_t err_len)
{
    if (e->i < lo || e->i > hi) {
        chat_err(err, err_len, "parameter %s: %lld is outside [%lld, %lld]", e->name, (long long)e->i,
                 (long long)lo, (long long)hi);
        return -1;
    }
    *out = (int)e->i;
    return 0;
}

/* Options qfit accepts only at the one value it always has: NULL when v is that value,
 * else why not. */
static const char *fixed_value_refusal(const qfit_param *e)
{
    if (!strcmp(e->name, "use_mmap"))
        return e->b ? NULL : "qfit always memory-maps the weights (use_mmap must be true)";
    if (!strcmp(e->name, "main_gpu"))
        return e->i == 0 ? NULL : "the device is chosen by QFIT_DEVICE or --device (main_gpu must be 0)";
    if (!strcmp(e->name, "draft_num_predict"))
        return e->i == 0 ? NULL : "qfit has no draft model (draft_num_predict must be 0)";
    return "qfit does not support this parameter";
}

int qfit_chat_apply_params(const qfit_params *p, qfit_gen_params *gp, qfit_context_params *cp,
                           char *err, size_t err_len)
{
    qfit_gen_params gscratch;
    qfit_context_params cscratch;
    if (!gp) { qfit_gen_params_init(&gscratch); gp = &gscratch; }
    if (!cp) { cscratch = qfit_context_default_params(); cp = &cscratch; }
    qfit_sampler_params *s = &gp->sampling;
    for (size_t i = 0; p && i < qfit_params_count(p); i++) {
        const qfit_param *e = qfit_params_at(p, i);
        const char *n = e->name;
        int v = 0, rc = 0;
        if (!strcmp(n, "num_ctx")) { rc = int_in(e, 1, INT_MAX / 2, &v, err, err_len); cp->n_ctx = v; }
        else if (!strcmp(n, "num_batch")) { rc = int_in(e, 1, 1 << 20, &v, err, err_len); cp->n_batch = v; }
        else if (!strcmp(n, "num_thread")) { rc = int_in(e, 0, QFIT_MAX_THREADS, &v, err, err_len); cp->n_threads = v; }
        else if (!strcmp(n, "num_gpu")) {   /* layers on the GPU (llama.cpp's -ngl; -1: all that fit) */
            rc = int_in(e, -1, 1 << 20, &v, err, err_len);
            cp->n_gpu_layers = v;
        }
        else if (!strcmp(n, "num_predict")) {
            rc = int_in(e, -2, INT_MAX, &v, err, err_len);
            gp->num_predict = v == -2 ? -1 : v;
            if (v == -2) gp->overflow = QFIT_OVERFLOW_ERROR;   /* until the context is full */
        } else if (!strcmp(n, "num_keep")) { rc = int_in(e, 0, INT_MAX, &v, err, err_len); gp->n_keep = v; }
        else if (!strcmp(n, "top_k")) { rc = int_in(e, 0, INT_MAX, &v, err, err_len); s->top_k = v; }
        else if (!strcmp(n, "repeat_last_n")) { rc = int_in(e, -1, INT_MAX, &v, err, err_len); s->repeat_last_n = v; }
        else if (!strcmp(n, "seed")) {
            if (e->i < -1) { chat_err(err, err_len, "parameter seed: %lld is invalid (-1 = random, or >= 0)", (long long)e->i); return -1; }
            s->seed = e->i == -1 ? QFIT_SEED_RANDOM : (uint64_t)e->i;
        }
        else if (!strcmp(n, "temperature")) s->temperature = e->f;
        else if (!strcmp(n, "top_p")) s->top_p = e->f;
        else if (!strcmp(n, "min_p")) s->min_p = e->f;
        else if (!strcmp(n, "typical_p")) s->typical_p = e->f;
        else if (!strcmp(n, "repeat_penalty")) s->repeat_penalty = e->f;
        else if (!strcmp(n, "presence_penalty")) s->presence_penalty = e->f;
        else if (!strcmp(n, "frequency_penalty")) s->frequency_penalty = e->f;
        else if (!strcmp(n, "stop")) {
            if (e->nstrs > QFIT_GEN_MAX_STOP) {
                chat_err(err, err_len, "parameter stop: %zu strings (qfit takes at most %d)", e->nstrs, QFIT_GEN_MAX_STOP);
                return -1;
            }
            gp->stop = (const char *const *)e->strs;
            gp->n_stop = (int)e->nstrs;
        } else {
            const char *why = fixed_value_refusal(e);
            if (why) {
                char *val = qfit_params_value_text(e);
                chat_err(err, err_len, "parameter %s %s: %s", n, val ? val : "?", why);
                free(val);
                return -1;
            }
        }
        if (rc != 0) return -1;
    }
    /* the sampling values, checked as the sampler will (named in the message) */
    char e2[256];
    if (qfit_sampler_params_check(s, cp->n_ctx > 0 ? cp->n_ctx : 1, e2, sizeof e2) != 0) {
        chat_err(err, err_len, "parameter %s", e2);
        return -1;
    }
    return 0;
}
