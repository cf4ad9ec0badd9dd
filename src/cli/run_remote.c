/* qfit run through a running qfit serve (run_remote.h). */
#include "cli/run_remote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_client.h"
#include "cli/cli_store.h"
#include "qfit/chat.h"

/* The server's error message of an answer ({"error": "..."}), or a fallback. */
static const char *error_of(const json_t *j, const char *fallback)
{
    const char *e = json_string_value(json_object_get(j, "error"));
    return e ? e : fallback;
}

int qfit_run_remote_open(run_remote *r, const char *name, char *err, size_t err_len)
{
    memset(r, 0, sizeof *r);
    long status = 0;
    json_t *req = json_pack("{s:s}", "model", name), *ans = NULL;
    if (!req || !(r->name = strdup(name))) {
        json_decref(req);
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    char e2[1024];
    if (qfit_client_call("POST", "/api/show", req, &status, &ans, e2, sizeof e2) != 0) {
        snprintf(err, err_len, "%s", e2);
        goto fail;
    }
    if (status != 200 || !json_is_object(ans)) {
        snprintf(err, err_len, "the server: %s", error_of(ans, "no answer to /api/show"));
        goto fail;
    }
    r->show = ans;
    ans = NULL;
    /* load it now: an empty prompt loads the model and answers done_reason "load" */
    if (qfit_client_call("POST", "/api/generate", req, &status, &ans, e2, sizeof e2) != 0) {
        snprintf(err, err_len, "%s", e2);
        goto fail;
    }
    if (status != 200) {
        snprintf(err, err_len, "the server cannot load %s: %s", name, error_of(ans, "no reason given"));
        goto fail;
    }
    json_decref(ans);
    json_decref(req);
    return 0;
fail:
    json_decref(ans);
    json_decref(req);
    qfit_run_remote_close(r);
    return -1;
}

void qfit_run_remote_close(run_remote *r)
{
    free(r->name);
    json_decref(r->show);
    memset(r, 0, sizeof *r);
}

bool qfit_run_remote_has_template(const run_remote *r)
{
    const char *t = json_string_value(json_object_get(r->show, "template"));
    return t && t[0];
}

/* ---- one answer */

typedef struct {
    const qfit_gen_callbacks *cb;
    bool          chat;
    qfit_gen_result *res;
    bool          done, failed;
    char          error[1024];
} stream_state;

static uint64_t u64_field(const json_t *j, const char *k)
{
    const json_t *v = json_object_get(j, k);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static int on_line(void *u, const char *line, size_t len)
{
    stream_state *s = u;
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\r' || line[i] == '\t')) i++;   /* keep-alive spaces */
    if (i == len) return 0;
    json_error_t je;
    json_t *j = json_loadb(line + i, len - i, 0, &je);
    if (!json_is_object(j)) {
        snprintf(s->error, sizeof s->error, "the server sent a line that is not a JSON object: %s", je.text);
        s->failed = true;
        json_decref(j);
        return 1;
    }
    const char *e = json_string_value(json_object_get(j, "error"));
    if (e) {
        snprintf(s->error, sizeof s->error, "%s", e);
        s->failed = true;
        json_decref(j);
        return 1;
    }
    const char *text = s->chat ? json_string_value(json_object_get(json_object_get(j, "message"), "content"))
                               : json_string_value(json_object_get(j, "response"));
    const size_t n = text ? strlen(text) : 0;
    if (n && s->cb->on_text && s->cb->on_text(s->cb->user, text, n) != 0) {
        json_decref(j);
        return 1;
    }
    if (json_is_true(json_object_get(j, "done"))) {
        qfit_gen_result *r = s->res;
        const char *why = json_string_value(json_object_get(j, "done_reason"));
        r->reason = why && !strcmp(why, "length") ? QFIT_GEN_LENGTH : QFIT_GEN_STOP;
        r->prompt_eval_count = (int)u64_field(j, "prompt_eval_count");
        r->prompt_eval_ns = u64_field(j, "prompt_eval_duration");
        r->eval_count = (int)u64_field(j, "eval_count");
        r->eval_ns = u64_field(j, "eval_duration");
        r->load_ns = u64_field(j, "load_duration");
        r->total_ns = u64_field(j, "total_duration");
        s->done = true;
    }
    json_decref(j);
    return 0;
}

static bool abort_cb(void *u)
{
    const stream_state *s = u;
    return s->cb->should_abort && s->cb->should_abort(s->cb->user);
}

int qfit_run_remote_answer(run_remote *r, const json_t *messages, const char *raw, const qfit_params *options,
                           const json_t *format, const qfit_gen_callbacks *cb, qfit_gen_result *res, char *err,
                           size_t err_len)
{
    memset(res, 0, sizeof *res);
    json_t *body = json_pack("{s:s, s:b}", "model", r->name, "stream", 1);
    json_t *opts = options ? qfit_params_to_json(options) : NULL;
    int rc = -1;
    if (!body || (options && !opts)) goto oom;
    if (messages ? json_object_set(body, "messages", (json_t *)messages) != 0
                 : (json_object_set_new(body, "prompt", json_string(raw)) != 0 ||
                    json_object_set_new(body, "raw", json_true()) != 0))
        goto oom;
    if (opts && json_object_size(opts) && json_object_set(body, "options", opts) != 0) goto oom;
    if (format && json_object_set(body, "format", (json_t *)format) != 0) goto oom;
    stream_state st = { .cb = cb, .chat = messages != NULL, .res = res };
    long status = 0;
    char e2[1024];
    int sr = qfit_client_stream(messages ? "/api/chat" : "/api/generate", body, on_line, abort_cb, &st, &status, e2,
                                sizeof e2);
    if (sr < 0) snprintf(err, err_len, "%s", e2);
    else if (st.failed && status >= 400 && status < 500) {
        snprintf(err, err_len, "%s", st.error);
        rc = 1;
    } else if (st.failed) snprintf(err, err_len, "the server: %s", st.error);
    else if (sr == 1) {   /* cancelled here (Ctrl-C) or by on_text */
        res->reason = QFIT_GEN_CANCELLED;
        rc = 0;
    } else if (!st.done) snprintf(err, err_len, "the server's answer ended without its final chunk (HTTP %ld)", status);
    else rc = 0;
    json_decref(body);
    json_decref(opts);
    return rc;
oom:
    snprintf(err, err_len, "out of memory (or a prompt that is not UTF-8)");
    json_decref(body);
    json_decref(opts);
    return -1;
}

int qfit_run_remote_num_predict(const run_remote *r, const qfit_params *overrides)
{
    qfit_gen_params gp;
    qfit_gen_params_init(&gp);
    char err[256];
    if (overrides && qfit_params_count(overrides) && qfit_chat_apply_params(overrides, &gp, NULL, err, sizeof err) == 0 &&
        qfit_params_get(overrides, "num_predict"))
        return gp.num_predict;
    /* the model's own: a "num_predict   N" line of /api/show's parameters */
    const char *p = json_string_value(json_object_get(r->show, "parameters"));
    for (const char *l = p; l && *l;) {
        long v;
        if (sscanf(l, "num_predict %ld", &v) == 1) return (int)v;
        const char *nl = strchr(l, '\n');
        l = nl ? nl + 1 : NULL;
    }
    return gp.num_predict;
}

/* ---- /show and /save */

static const char *str_field(const json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

bool qfit_run_remote_show(const run_remote *r, const char *what, const qfit_params *overrides, const char *system)
{
    const json_t *show = r->show;
    if (!strcmp(what, "info")) {
        const json_t *info = json_object_get(show, "model_info");
        const char *arch = json_string_value(json_object_get(info, "general.architecture"));
        char key[128];
        printf("  Model\n");
        printf("    %-20s%s\n", "name", r->name);
        printf("    %-20s%s\n", "architecture", arch ? arch : "-");
        printf("    %-20s%s\n", "parameters", str_field(json_object_get(show, "details"), "parameter_size"));
        snprintf(key, sizeof key, "%s.context_length", arch ? arch : "");
        printf("    %-20s%lld\n", "context length", (long long)json_integer_value(json_object_get(info, key)));
        snprintf(key, sizeof key, "%s.embedding_length", arch ? arch : "");
        printf("    %-20s%lld\n", "embedding length", (long long)json_integer_value(json_object_get(info, key)));
        printf("    %-20s%s\n\n", "template", qfit_run_remote_has_template(r) ? "yes" : "none");
    } else if (!strcmp(what, "template")) {
        printf("%s\n", qfit_run_remote_has_template(r) ? str_field(show, "template")
                                                       : "No template was specified for this model.");
    } else if (!strcmp(what, "parameters")) {
        const char *p = str_field(show, "parameters");
        const bool mine = overrides && qfit_params_count(overrides);
        if (p[0]) printf("Model defined parameters:\n%s\n", p);
        if (mine) { printf("Session parameters:\n"); qfit_cli_print_params(overrides, "", 31); }
        if (!p[0] && !mine) printf("No parameters were specified for this model.\n");
    } else if (!strcmp(what, "system")) {
        const char *sys = system ? system : str_field(show, "system");
        printf("%s\n", sys[0] ? sys : "No system message was specified for this model.");
    } else if (!strcmp(what, "modelfile")) {
        fputs(str_field(show, "modelfile"), stdout);
    } else {
        return false;
    }
    return true;
}

int qfit_run_remote_save(const run_remote *r, const char *name, const qfit_params *overrides, const char *system,
                         const json_t *history, char *err, size_t err_len)
{
    json_t *body = json_pack("{s:s, s:s, s:b}", "model", name, "from", r->name, "stream", 0);
    json_t *params = overrides && qfit_params_count(overrides) ? qfit_params_to_json(overrides) : NULL;
    json_t *msgs = json_array();
    size_t i;
    json_t *m;
    int rc = -1;
    if (!body || !msgs || (overrides && qfit_params_count(overrides) && !params)) goto oom;
    json_array_foreach(history, i, m)   /* as the local /save: every turn, /set system's included */
        if (json_array_append(msgs, m) != 0) goto oom;
    if ((system && json_object_set_new(body, "system", json_string(system)) != 0) ||
        (params && json_object_set(body, "parameters", params) != 0) || json_object_set(body, "messages", msgs) != 0)
        goto oom;
    long status = 0;
    json_t *ans = NULL;
    if (qfit_client_call("POST", "/api/create", body, &status, &ans, err, err_len) == 0) {
        if (status == 200) rc = 0;
        else snprintf(err, err_len, "the server: %s", error_of(ans, "no reason given"));
    }
    json_decref(ans);
    goto out;
oom:
    snprintf(err, err_len, "out of memory");
out:
    json_decref(body);
    json_decref(params);
    json_decref(msgs);
    return rc;
}
