/* Request bodies of the Ollama and OpenAI APIs into qfit_api_request (api.h).
 * Every check writes the JSON path of the field at fault first in the message. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/api.h"
#include "qfit/config.h"

/* ----------------------------------------------------------- helpers */

static int fail(qfit_api_error *e, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
        e->status = 400;
    }
    return -1;
}

static int oom(qfit_api_error *e)
{
    if (e) {
        snprintf(e->message, sizeof e->message, "out of memory");
        e->status = 500;
    }
    return -1;
}

static const char *type_word(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: case JSON_REAL: return "number";
    case JSON_TRUE: case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* A string value without NUL characters (they would cut the text silently). */
static int check_string(const json_t *v, const char *path, qfit_api_error *e)
{
    if (!json_is_string(v)) return fail(e, "%s: must be a string, not %s", path, type_word(v));
    if (strlen(json_string_value(v)) != json_string_length(v))
        return fail(e, "%s: contains a NUL character", path);
    return 0;
}

/* *out = a copy of string field key (NULL when absent or null). */
static int opt_string(const json_t *obj, const char *key, const char *path, char **out, qfit_api_error *e)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (check_string(v, path, e) < 0) return -1;
    if (!(*out = dupn(json_string_value(v), json_string_length(v)))) return oom(e);
    return 0;
}

/* Booleans keep *out when absent or null. */
static int opt_bool(const json_t *obj, const char *key, bool *out, qfit_api_error *e)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return fail(e, "%s: must be a boolean, not %s", key, type_word(v));
    *out = json_is_true(v);
    return 0;
}

/* An integral number within [lo, hi]; *present tells whether it was given. */
static int opt_int(const json_t *obj, const char *key, const char *path, int64_t lo, int64_t hi,
                   int64_t *out, bool *present, qfit_api_error *e)
{
    const json_t *v = json_object_get(obj, key);
    if (present) *present = false;
    if (!v || json_is_null(v)) return 0;
    int64_t x;
    if (json_is_integer(v)) x = json_integer_value(v);
    else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != floor(d)) return fail(e, "%s: must be an integer, got %.17g", path, d);
        /* inside int64 before converting (2^63 itself is not) */
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
            return fail(e, "%s: %.17g is outside [%lld, %lld]", path, d, (long long)lo, (long long)hi);
        x = (int64_t)d;
    } else
        return fail(e, "%s: must be an integer, not %s", path, type_word(v));
    if (x < lo || x > hi) return fail(e, "%s: %lld is outside [%lld, %lld]", path, (long long)x, (long long)lo, (long long)hi);
    *out = x;
    if (present) *present = true;
    return 0;
}

static int opt_number(const json_t *obj, const char *key, double lo, double hi, double *out, bool *present,
                      qfit_api_error *e)
{
    const json_t *v = json_object_get(obj, key);
    *present = false;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return fail(e, "%s: must be a number, not %s", key, type_word(v));
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi)) return fail(e, "%s: %g is outside [%g, %g]", key, d, lo, hi);
    *out = d;
    *present = true;
    return 0;
}

static int warn(qfit_api_request *r, const char *fmt, ...)
{
    qfit_warnings *w = &r->warnings;
    if (w->count == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 4;
        char **m = realloc(w->msgs, cap * sizeof *m);
        if (!m) return -1;
        w->msgs = m;
        w->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!(w->msgs[w->count] = dupn(buf, strlen(buf)))) return -1;
    w->count++;
    return 0;
}

/* ------------------------------------------------------- common fields */

static int parse_model(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    if (opt_string(body, "model", "model", &r->model, e) < 0) return -1;
    if (!r->model || !r->model[0]) return fail(e, "model: is required");
    if (strlen(r->model) > QFIT_API_MAX_NAME) return fail(e, "model: longer than %u bytes", QFIT_API_MAX_NAME);
    return 0;
}

/* Ollama api.Duration: number = seconds (negative: forever), string = Go duration. */
static int parse_keep_alive(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    const json_t *v = json_object_get(body, "keep_alive");
    if (!v || json_is_null(v)) return 0;
    if (json_is_number(v)) {
        double s = json_number_value(v);
        if (s < 0) r->keep_alive_ns = QFIT_FOREVER_NS;
        else if (s * 1e9 >= 9223372036854775807.0) return fail(e, "keep_alive: %g seconds is too long", s);
        else r->keep_alive_ns = (int64_t)(s * 1e9);
    } else if (json_is_string(v)) {
        char msg[256];
        if (check_string(v, "keep_alive", e) < 0) return -1;
        if (qfit_parse_duration(json_string_value(v), false, &r->keep_alive_ns, msg, sizeof msg) < 0)
            return fail(e, "keep_alive: %s", msg);
    } else {
        return fail(e, "keep_alive: unsupported type '%s' (a number of seconds or a duration string)", type_word(v));
    }
    r->keep_alive_set = true;
    return 0;
}

/* Ollama `think`: bool or "low" | "medium" | "high" | "max". */
static int parse_think(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    const json_t *v = json_object_get(body, "think");
    if (!v || json_is_null(v)) return 0;
    if (json_is_boolean(v)) {
        r->think = json_is_true(v);
        return 0;
    }
    static const char *const LEVELS[] = { "low", "medium", "high", "max" };
    if (json_is_string(v))
        for (size_t i = 0; i < 4; i++)
            if (strcmp(json_string_value(v), LEVELS[i]) == 0) {
                r->think = 1;
                snprintf(r->think_level, sizeof r->think_level, "%s", LEVELS[i]);
                return 0;
            }
    return fail(e, "think: must be true, false, \"low\", \"medium\", \"high\" or \"max\"");
}

/* OpenAI reasoning_effort / reasoning.effort, mapped as Ollama's openai layer does. */
static int parse_effort(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    const json_t *reasoning = json_object_get(body, "reasoning");
    const json_t *v = json_object_get(body, "reasoning_effort");
    const char *path = "reasoning_effort";
    if (reasoning && !json_is_null(reasoning)) {
        if (!json_is_object(reasoning)) return fail(e, "reasoning: must be an object");
        v = json_object_get(reasoning, "effort");
        path = "reasoning.effort";
    }
    if (!v || json_is_null(v)) return 0;
    if (check_string(v, path, e) < 0) return -1;
    const char *s = json_string_value(v);
    if (!strcmp(s, "none")) r->think = 0;
    else if (!strcmp(s, "minimal")) r->think = 1, snprintf(r->think_level, sizeof r->think_level, "low");
    else if (!strcmp(s, "low") || !strcmp(s, "medium") || !strcmp(s, "high") || !strcmp(s, "max"))
        r->think = 1, snprintf(r->think_level, sizeof r->think_level, "%s", s);
    else if (!strcmp(s, "xhigh") || !strcmp(s, "ultra")) r->think = 1, snprintf(r->think_level, sizeof r->think_level, "max");
    else
        return fail(e, "%s: invalid value \"%.64s\" (none, minimal, low, medium, high, xhigh, ultra or max)", path, s);
    return 0;
}

/* Ollama `format`: "json", a schema object, "" or null (unset). */
static int parse_format(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    const json_t *v = json_object_get(body, "format");
    if (!v || json_is_null(v)) return 0;
    if (json_is_string(v) && json_string_value(v)[0] == '\0') return 0;
    if (json_is_string(v) && strcmp(json_string_value(v), "json") == 0) {
        r->format = QFIT_API_FORMAT_JSON;
        return 0;
    }
    if (json_is_object(v)) {
        if (!(r->schema = json_deep_copy(v))) return oom(e);
        r->format = QFIT_API_FORMAT_SCHEMA;
        return 0;
    }
    return fail(e, "format: invalid format; expected \"json\" or a valid JSON Schema object");
}

/* Check one stop list (options.stop or OpenAI stop): bounded, no empty string. */
static int check_stop(const qfit_params *p, const char *path, qfit_api_error *e)
{
    const qfit_param *s = qfit_params_get(p, "stop");
    if (!s) return 0;
    if (s->nstrs > QFIT_API_MAX_STOP) return fail(e, "%s: %zu strings (at most %u)", path, s->nstrs, QFIT_API_MAX_STOP);
    for (size_t i = 0; i < s->nstrs; i++)
        if (s->strs[i][0] == '\0') return fail(e, "%s[%zu]: must not be empty", path, i);
    return 0;
}

/* One known option (key, JSON value) into r->options, typed by the options table
 * (modelfile.h); errors name it as prefix + key. */
static int set_option(qfit_api_request *r, const char *key, json_t *v, const char *prefix, qfit_api_error *e)
{
    json_t *one = json_object();
    if (!one || json_object_set(one, key, v) < 0) {
        json_decref(one);
        return oom(e);
    }
    char msg[256] = "";
    qfit_params *p = qfit_params_from_json(one, NULL, msg, sizeof msg);
    json_decref(one);
    if (!p) {
        /* drop the module's `option "key" ` prefix: the path names it */
        char head[160];
        snprintf(head, sizeof head, "option \"%s\" ", key);
        const char *m = strncmp(msg, head, strlen(head)) == 0 ? msg + strlen(head) : msg;
        return fail(e, "%s%s: %s", prefix, key, m);
    }
    int rc = qfit_params_merge(r->options, p, NULL, 0);
    qfit_params_free(p);
    return rc < 0 ? oom(e) : 0;
}

/* Native `options`: unknown and deprecated keys become warnings. Converted one key
 * at a time so an error names its key. */
static int parse_options(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    const json_t *opts = json_object_get(body, "options");
    if (!opts || json_is_null(opts)) return 0;
    if (!json_is_object(opts)) return fail(e, "options: must be an object, not %s", type_word(opts));
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)opts, key, v) {
        int kind = qfit_params_lookup(key, NULL);
        if (kind != 1) {
            if (warn(r, "options.%.128s: %s option, ignored", key, kind == 0 ? "deprecated" : "unknown") < 0)
                return oom(e);
            continue;
        }
        if (set_option(r, key, v, "options.", e) < 0) return -1;
    }
    return check_stop(r->options, "options.stop", e);
}

/* Sampling fields llama-server's /v1 accepts at the top level (same names and
 * meaning as Ollama's options): honoured, never dropped. */
static int parse_openai_extensions(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    static const char *const KEYS[] = { "top_k", "min_p", "typical_p", "repeat_penalty", "repeat_last_n" };
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++) {
        json_t *v = json_object_get(body, KEYS[i]);
        if (v && !json_is_null(v) && set_option(r, KEYS[i], v, "", e) < 0) return -1;
    }
    return 0;
}

static int parse_logprobs(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    int64_t n = 0;
    bool given = false;
    if (opt_bool(body, "logprobs", &r->logprobs, e) < 0) return -1;
    if (opt_int(body, "top_logprobs", "top_logprobs", INT64_MIN, INT64_MAX, &n, &given, e) < 0) return -1;
    if (n < 0 || n > QFIT_API_MAX_TOP_LOGPROBS) return fail(e, "top_logprobs: must be between 0 and 20");
    if (n > 0 && !r->logprobs) return fail(e, "top_logprobs: needs logprobs true");
    r->top_logprobs = (int)n;
    return 0;
}

/* images on a native request: only an empty list can be honoured. */
static int refuse_images(const json_t *obj, const char *path, qfit_api_error *e)
{
    const json_t *v = json_object_get(obj, "images");
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v)) return fail(e, "%s: must be an array of base64 strings", path);
    if (json_array_size(v) > 0) return fail(e, "%s: images are not supported (qfit runs no vision models)", path);
    return 0;
}

/* A tools array: each {"type":"function","function":{"name",...}}; deep-copied. */
static int parse_tools(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    const json_t *v = json_object_get(body, "tools");
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v)) return fail(e, "tools: must be an array, not %s", type_word(v));
    if (json_array_size(v) > QFIT_API_MAX_TOOLS) return fail(e, "tools: more than %u tools", QFIT_API_MAX_TOOLS);
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *t = json_array_get(v, i), *type = json_object_get(t, "type");
        char path[64];
        if (!json_is_object(t)) return fail(e, "tools[%zu]: must be an object", i);
        if (type && !json_is_null(type) && !(json_is_string(type) && !strcmp(json_string_value(type), "function")))
            return fail(e, "tools[%zu].type: must be \"function\"", i);
        const json_t *f = json_object_get(t, "function");
        if (!json_is_object(f)) return fail(e, "tools[%zu].function: must be an object", i);
        const json_t *name = json_object_get(f, "name");
        snprintf(path, sizeof path, "tools[%zu].function.name", i);
        if (!name) return fail(e, "%s: is required", path);
        if (check_string(name, path, e) < 0) return -1;
        if (json_string_length(name) == 0 || json_string_length(name) > QFIT_API_MAX_NAME)
            return fail(e, "%s: must be 1 to %u bytes", path, QFIT_API_MAX_NAME);
        const json_t *params = json_object_get(f, "parameters");
        if (params && !json_is_null(params) && !json_is_object(params))
            return fail(e, "tools[%zu].function.parameters: must be an object", i);
    }
    if (json_array_size(v) > 0 && !(r->tools = json_deep_copy(v))) return oom(e);
    return 0;
}

static bool has_tool(const json_t *tools, const char *name)
{
    for (size_t i = 0; i < json_array_size(tools); i++) {
        const json_t *n = json_object_get(json_object_get(json_array_get(tools, i), "function"), "name");
        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0) return true;
    }
    return false;
}

/* ------------------------------------------------------------- messages */

static const char *const NATIVE_ROLES[] = { "system", "user", "assistant", "tool" };

/* A lower-cased copy of a role string; NULL when not a known role. */
static const char *role_of(const char *s, bool openai)
{
    char low[16];
    size_t n = strlen(s);
    if (n >= sizeof low) return NULL;
    for (size_t i = 0; i <= n; i++) low[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
    if (openai && strcmp(low, "developer") == 0) return "system";
    for (size_t i = 0; i < 4; i++)
        if (strcmp(low, NATIVE_ROLES[i]) == 0) return NATIVE_ROLES[i];
    return NULL;
}

/* Set a string field of out from a string field of in (checked), when present. */
static int copy_str_field(json_t *out, const char *out_key, const json_t *in, const char *key, const char *mpath,
                          qfit_api_error *e)
{
    const json_t *v = json_object_get(in, key);
    if (!v || json_is_null(v)) return 0;
    char path[96];
    snprintf(path, sizeof path, "%s.%s", mpath, key);
    if (check_string(v, path, e) < 0) return -1;
    if (json_string_length(v) == 0) return 0;
    if (json_object_set_new(out, out_key, json_stringn(json_string_value(v), json_string_length(v))) < 0)
        return oom(e);
    return 0;
}

/* tool_calls of one message, into Ollama's shape {id?, function:{index, name,
 * arguments:{}}}. OpenAI sends arguments as a JSON string; native as an object. */
static int parse_tool_calls(json_t *out, const json_t *in, const char *mpath, bool openai, qfit_api_error *e)
{
    const json_t *v = json_object_get(in, "tool_calls");
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v)) return fail(e, "%s.tool_calls: must be an array", mpath);
    if (json_array_size(v) > QFIT_API_MAX_TOOLS) return fail(e, "%s.tool_calls: more than %u calls", mpath, QFIT_API_MAX_TOOLS);
    if (json_array_size(v) == 0) return 0;
    json_t *calls = json_array();
    if (!calls || json_object_set_new(out, "tool_calls", calls) < 0) return oom(e);
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *c = json_array_get(v, i), *f = json_object_get(c, "function");
        char path[128];
        snprintf(path, sizeof path, "%s.tool_calls[%zu]", mpath, i);
        if (!json_is_object(c)) return fail(e, "%s: must be an object", path);
        if (!json_is_object(f)) return fail(e, "%s.function: must be an object", path);
        json_t *oc = json_object(), *of = json_object();
        if (!oc || !of || json_array_append_new(calls, oc) < 0) {
            json_decref(oc);
            json_decref(of);
            return oom(e);
        }
        if (json_object_set_new(oc, "function", of) < 0) return oom(e);
        if (copy_str_field(oc, "id", c, "id", path, e) < 0) return -1;
        char fpath[160];
        snprintf(fpath, sizeof fpath, "%s.function", path);
        const json_t *name = json_object_get(f, "name");
        if (!json_is_string(name) || json_string_length(name) == 0)
            return fail(e, "%s.name: must be a non-empty string", fpath);
        if (copy_str_field(of, "name", f, "name", fpath, e) < 0) return -1;
        int64_t index = (int64_t)i;
        char ipath[176];
        snprintf(ipath, sizeof ipath, "%s.index", fpath);
        if (opt_int(f, "index", ipath, 0, INT32_MAX, &index, NULL, e) < 0) return -1;
        if (json_object_set_new(of, "index", json_integer(index)) < 0) return oom(e);
        const json_t *args = json_object_get(f, "arguments");
        json_t *obj = NULL;
        if (!args || json_is_null(args)) obj = json_object();
        else if (json_is_object(args)) obj = json_deep_copy(args);
        else if (openai && json_is_string(args)) {
            json_error_t je;
            obj = json_loadb(json_string_value(args), json_string_length(args), JSON_REJECT_DUPLICATES, &je);
            if (!json_is_object(obj)) {
                json_decref(obj);
                return fail(e, "%s.arguments: invalid tool call arguments (not a JSON object)", fpath);
            }
            if (!qfit_api_json_depth_ok(obj, QFIT_API_MAX_DEPTH)) {
                json_decref(obj);
                return fail(e, "%s.arguments: nested deeper than %d levels", fpath, QFIT_API_MAX_DEPTH);
            }
        } else
            return fail(e, "%s.arguments: must be %s", fpath, openai ? "a JSON string or an object" : "an object");
        if (!obj || json_object_set_new(of, "arguments", obj) < 0) return oom(e);
    }
    return 0;
}

/* The tool name of an earlier call with this id (the last one wins, as Ollama). */
static const char *name_from_call_id(const json_t *msgs, const char *id)
{
    for (size_t i = json_array_size(msgs); i-- > 0;) {
        const json_t *calls = json_object_get(json_array_get(msgs, i), "tool_calls");
        for (size_t k = json_array_size(calls); k-- > 0;) {
            const json_t *c = json_array_get(calls, k), *cid = json_object_get(c, "id");
            if (json_is_string(cid) && strcmp(json_string_value(cid), id) == 0)
                return json_string_value(json_object_get(json_object_get(c, "function"), "name"));
        }
    }
    return NULL;
}

/* A new message {role, content} appended to msgs; NULL when out of memory or when
 * msgs is full (the caller checks room_for_message first). */
static json_t *new_message(json_t *msgs, const char *role, const char *content, size_t len)
{
    if (json_array_size(msgs) >= QFIT_API_MAX_MESSAGES) return NULL;
    json_t *m = json_object();
    if (!m || json_array_append_new(msgs, m) < 0) {
        json_decref(m);
        return NULL;
    }
    if (json_object_set_new(m, "role", json_string(role)) < 0 ||
        json_object_set_new(m, "content", json_stringn(content, len)) < 0)
        return NULL;
    return m;
}

/* Text parts become messages of their own: the bound applies to the result. */
static int room_for_message(const json_t *msgs, const char *path, qfit_api_error *e)
{
    if (json_array_size(msgs) >= QFIT_API_MAX_MESSAGES)
        return fail(e, "%s: more than %u messages (each text part counts as one)", path, QFIT_API_MAX_MESSAGES);
    return 0;
}

/* One message. Native: content a string. OpenAI: a string, an array of text parts
 * (one message each, as Ollama's openai layer), or null with tool_calls. */
static int parse_message(json_t *msgs, const json_t *in, size_t idx, bool openai, qfit_api_error *e)
{
    char mpath[48];
    snprintf(mpath, sizeof mpath, "messages[%zu]", idx);
    if (!json_is_object(in)) return fail(e, "%s: must be an object", mpath);
    const json_t *rv = json_object_get(in, "role");
    if (!rv) return fail(e, "%s.role: is required", mpath);
    char rpath[64];
    snprintf(rpath, sizeof rpath, "%s.role", mpath);
    if (check_string(rv, rpath, e) < 0) return -1;
    const char *role = role_of(json_string_value(rv), openai);
    if (!role)
        return fail(e, "%s: invalid role \"%.32s\" (%s)", rpath, json_string_value(rv),
                    openai ? "system, developer, user, assistant or tool" : "system, user, assistant or tool");
    char ipath[64];
    snprintf(ipath, sizeof ipath, "%s.images", mpath);
    if (refuse_images(in, ipath, e) < 0) return -1;

    const json_t *content = json_object_get(in, "content"), *calls = json_object_get(in, "tool_calls");
    bool has_calls = json_is_array(calls) && json_array_size(calls) > 0;
    json_t *last = NULL;
    char cpath[64];
    snprintf(cpath, sizeof cpath, "%s.content", mpath);
    if (!content || json_is_null(content)) {
        if (openai && !has_calls && strcmp(role, "assistant") != 0)
            return fail(e, "%s: is required (a string or an array of text parts)", cpath);
        if (room_for_message(msgs, mpath, e) < 0) return -1;
        if (!(last = new_message(msgs, role, "", 0))) return oom(e);
    } else if (json_is_string(content)) {
        if (room_for_message(msgs, mpath, e) < 0) return -1;
        if (check_string(content, cpath, e) < 0) return -1;
        if (!(last = new_message(msgs, role, json_string_value(content), json_string_length(content)))) return oom(e);
    } else if (openai && json_is_array(content)) {
        for (size_t k = 0; k < json_array_size(content); k++) {
            const json_t *part = json_array_get(content, k), *type = json_object_get(part, "type");
            char ppath[96];
            snprintf(ppath, sizeof ppath, "%s[%zu]", cpath, k);
            if (!json_is_object(part) || !json_is_string(type)) return fail(e, "%s: must be an object with a type", ppath);
            const char *t = json_string_value(type);
            if (strcmp(t, "text") == 0) {
                const json_t *text = json_object_get(part, "text");
                char tpath[112];
                snprintf(tpath, sizeof tpath, "%s.text", ppath);
                if (!text) return fail(e, "%s: is required", tpath);
                if (check_string(text, tpath, e) < 0 || room_for_message(msgs, ppath, e) < 0) return -1;
                if (!(last = new_message(msgs, role, json_string_value(text), json_string_length(text)))) return oom(e);
            } else if (!strcmp(t, "image_url") || !strcmp(t, "input_audio") || !strcmp(t, "input_image") || !strcmp(t, "file"))
                return fail(e, "%s: %s content is not supported (qfit takes text only)", ppath, t);
            else
                return fail(e, "%s.type: unknown content part type \"%.32s\"", ppath, t);
        }
        if (!last) {   /* an empty array: one empty message */
            if (room_for_message(msgs, mpath, e) < 0) return -1;
            if (!(last = new_message(msgs, role, "", 0))) return oom(e);
        }
    } else
        return fail(e, "%s: must be a string%s, not %s", cpath, openai ? " or an array of text parts" : "", type_word(content));

    /* the other fields go on the last message made (Ollama puts tool calls there) */
    if (copy_str_field(last, "thinking", in, openai ? "reasoning" : "thinking", mpath, e) < 0) return -1;
    if (openai && copy_str_field(last, "thinking", in, "reasoning_content", mpath, e) < 0) return -1;
    if (parse_tool_calls(last, in, mpath, openai, e) < 0) return -1;
    if (copy_str_field(last, "tool_call_id", in, "tool_call_id", mpath, e) < 0) return -1;
    if (copy_str_field(last, "tool_name", in, openai ? "name" : "tool_name", mpath, e) < 0) return -1;
    if (openai && strcmp(role, "tool") != 0) json_object_del(last, "tool_name");   /* a participant name, not a tool's */
    if (!strcmp(role, "tool") && !json_object_get(last, "tool_name") && json_object_get(last, "tool_call_id")) {
        const char *name = name_from_call_id(msgs, json_string_value(json_object_get(last, "tool_call_id")));
        if (name && json_object_set_new(last, "tool_name", json_string(name)) < 0) return oom(e);
    }
    return 0;
}

static int parse_messages(qfit_api_request *r, const json_t *body, bool openai, qfit_api_error *e)
{
    const json_t *v = json_object_get(body, "messages");
    if (!(r->messages = json_array())) return oom(e);
    if (!v || json_is_null(v)) {
        if (openai) return fail(e, "messages: is required");
        return 0;
    }
    if (!json_is_array(v)) return fail(e, "messages: must be an array, not %s", type_word(v));
    if (openai && json_array_size(v) == 0) return fail(e, "messages: [] is too short (at least one message)");
    if (json_array_size(v) > QFIT_API_MAX_MESSAGES) return fail(e, "messages: more than %u messages", QFIT_API_MAX_MESSAGES);
    for (size_t i = 0; i < json_array_size(v); i++)
        if (parse_message(r->messages, json_array_get(v, i), i, openai, e) < 0) return -1;
    return 0;
}

/* -------------------------------------------------------- native endpoints */

/* Fields /api/generate and /api/chat share. */
static int parse_native_common(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    if (parse_format(r, body, e) < 0 || parse_think(r, body, e) < 0 || parse_logprobs(r, body, e) < 0 ||
        opt_bool(body, "truncate", &r->truncate, e) < 0 || opt_bool(body, "shift", &r->shift, e) < 0 ||
        opt_bool(body, "stream", &r->stream, e) < 0 || parse_keep_alive(r, body, e) < 0 || parse_options(r, body, e) < 0)
        return -1;
    return 0;
}

/* Nothing to generate or embed: load the model, or unload it with keep_alive 0. */
static void load_only(qfit_api_request *r)
{
    r->action = r->keep_alive_set && r->keep_alive_ns == 0 ? QFIT_API_UNLOAD : QFIT_API_LOAD;
}

static int parse_generate(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    if (opt_string(body, "prompt", "prompt", &r->prompt, e) < 0 || opt_string(body, "suffix", "suffix", &r->suffix, e) < 0 ||
        opt_string(body, "system", "system", &r->system, e) < 0 || opt_string(body, "template", "template", &r->tmpl, e) < 0 ||
        opt_bool(body, "raw", &r->raw, e) < 0 || refuse_images(body, "images", e) < 0 || parse_native_common(r, body, e) < 0)
        return -1;
    const json_t *ctx = json_object_get(body, "context");
    if (ctx && !json_is_null(ctx)) {
        if (!json_is_array(ctx)) return fail(e, "context: must be an array of token ids");
        size_t n = json_array_size(ctx);
        if (n > QFIT_API_MAX_TOKENS) return fail(e, "context: more than %u tokens", QFIT_API_MAX_TOKENS);
        if (n && !(r->context = malloc(n * sizeof *r->context))) return oom(e);
        for (size_t i = 0; i < n; i++) {
            const json_t *t = json_array_get(ctx, i);
            if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX)
                return fail(e, "context[%zu]: must be a token id (an integer >= 0)", i);
            r->context[i] = (int32_t)json_integer_value(t);
        }
        r->n_context = n;
    }
    if (r->raw && (r->tmpl || r->system || r->n_context))
        return fail(e, "raw: raw mode does not support template, system, or context");
    if (!r->prompt || !r->prompt[0])
        load_only(r);
    return 0;
}

static int parse_chat(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    if (parse_messages(r, body, false, e) < 0 || parse_tools(r, body, e) < 0 || parse_native_common(r, body, e) < 0)
        return -1;
    if (json_array_size(r->messages) == 0)
        load_only(r);
    return 0;
}

static int add_text_input(qfit_api_request *r, const json_t *s, const char *path, qfit_api_error *e)
{
    if (check_string(s, path, e) < 0) return -1;
    qfit_api_input *in = &r->inputs[r->n_inputs];
    if (!(in->text = dupn(json_string_value(s), json_string_length(s)))) return oom(e);
    r->n_inputs++;
    return 0;
}

static int add_token_input(qfit_api_request *r, const json_t *a, const char *path, qfit_api_error *e)
{
    size_t n = json_array_size(a);
    if (n == 0) return fail(e, "%s: an empty token array", path);
    if (n > QFIT_API_MAX_TOKENS) return fail(e, "%s: more than %u tokens", path, QFIT_API_MAX_TOKENS);
    qfit_api_input *in = &r->inputs[r->n_inputs];
    if (!(in->tokens = malloc(n * sizeof *in->tokens))) return oom(e);
    r->n_inputs++;
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(a, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX)
            return fail(e, "%s[%zu]: must be a token id (an integer >= 0)", path, i);
        in->tokens[i] = (int32_t)json_integer_value(t);
    }
    in->n_tokens = n;
    return 0;
}

/* input: a string or an array of strings; OpenAI also a token array or an array of
 * token arrays. */
static int parse_inputs(qfit_api_request *r, const json_t *body, bool openai, qfit_api_error *e)
{
    const json_t *v = json_object_get(body, "input");
    if (!v || json_is_null(v)) {
        if (openai) return fail(e, "input: is required");
        return 0;
    }
    if (json_is_string(v)) {
        if (!openai && json_string_length(v) == 0) return 0;   /* load only */
        if (!(r->inputs = calloc(1, sizeof *r->inputs))) return oom(e);
        return add_text_input(r, v, "input", e);
    }
    if (!json_is_array(v)) return fail(e, "input: invalid input type %s (a string or an array of strings)", type_word(v));
    size_t n = json_array_size(v);
    if (n == 0) return openai ? fail(e, "input: invalid input (an empty array)") : 0;
    if (n > QFIT_API_MAX_INPUTS) return fail(e, "input: more than %u inputs", QFIT_API_MAX_INPUTS);
    if (openai && json_is_integer(json_array_get(v, 0))) {   /* one token array */
        if (!(r->inputs = calloc(1, sizeof *r->inputs))) return oom(e);
        return add_token_input(r, v, "input", e);
    }
    if (!(r->inputs = calloc(n, sizeof *r->inputs))) return oom(e);
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(v, i);
        char path[48];
        snprintf(path, sizeof path, "input[%zu]", i);
        if (json_is_string(x)) {
            if (add_text_input(r, x, path, e) < 0) return -1;
        } else if (openai && json_is_array(x)) {
            if (add_token_input(r, x, path, e) < 0) return -1;
        } else
            return fail(e, "%s: invalid input type %s (%s)", path, type_word(x),
                        openai ? "a string or an array of token ids" : "a string");
    }
    return 0;
}

static int parse_dimensions(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    int64_t d = 0;
    bool given = false;
    if (opt_int(body, "dimensions", "dimensions", 1, QFIT_API_MAX_DIMENSIONS, &d, &given, e) < 0) return -1;
    r->dimensions = (int)d;
    return 0;
}

static int parse_embed(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    if (parse_inputs(r, body, false, e) < 0 || opt_bool(body, "truncate", &r->truncate, e) < 0 ||
        parse_dimensions(r, body, e) < 0 || parse_keep_alive(r, body, e) < 0 || parse_options(r, body, e) < 0)
        return -1;
    if (r->n_inputs == 0)
        load_only(r);
    return 0;
}

static int parse_embeddings(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    if (opt_string(body, "prompt", "prompt", &r->prompt, e) < 0 || parse_keep_alive(r, body, e) < 0 ||
        parse_options(r, body, e) < 0)
        return -1;
    if (!r->prompt || !r->prompt[0])
        load_only(r);
    return 0;
}

/* -------------------------------------------------------- OpenAI endpoints */

/* Values qfit cannot honour: n > 1, best_of > 1, echo, a non-empty logit_bias. */
static int refuse_unsupported(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    int64_t n = 1;
    bool given;
    if (opt_int(body, "n", "n", 1, INT32_MAX, &n, &given, e) < 0) return -1;
    if (n != 1) return fail(e, "n: only 1 choice is supported, got %lld", (long long)n);
    if (opt_int(body, "best_of", "best_of", 0, INT32_MAX, &n, &given, e) < 0) return -1;
    if (given && n > 1) return fail(e, "best_of: only 1 is supported, got %lld", (long long)n);
    bool echo = false;
    if (opt_bool(body, "echo", &echo, e) < 0) return -1;
    if (echo) return fail(e, "echo: not supported (the prompt is not returned)");
    /* logit_bias: only biases of 0 (which change nothing) can be honoured */
    const json_t *lb = json_object_get(body, "logit_bias");
    if (lb && !json_is_null(lb)) {
        if (!json_is_object(lb)) return fail(e, "logit_bias: must be an object of token ids to biases");
        const char *tok;
        json_t *bias;
        json_object_foreach((json_t *)lb, tok, bias) {
            if (!json_is_number(bias)) return fail(e, "logit_bias: the bias of token %.32s must be a number", tok);
            if (json_number_value(bias) != 0) return fail(e, "logit_bias: not supported (token %.32s has a bias)", tok);
        }
    }
    /* the pre-tools function calling and audio output: a client using them expects them */
    static const char *const REFUSED[][2] = {
        { "functions", "the deprecated functions field is not supported (use tools)" },
        { "function_call", "the deprecated function_call field is not supported (use tool_choice)" },
        { "audio", "audio output is not supported" },
        { "web_search_options", "web search is not supported" },
    };
    for (size_t i = 0; i < sizeof REFUSED / sizeof REFUSED[0]; i++) {
        const json_t *v = json_object_get(body, REFUSED[i][0]);
        if (v && !json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0))
            return fail(e, "%s: %s", REFUSED[i][0], REFUSED[i][1]);
    }
    const json_t *ptc = json_object_get(body, "parallel_tool_calls");
    if (json_is_false(ptc) && warn(r, "parallel_tool_calls: false is not enforced; the model may call several tools") < 0)
        return oom(e);
    return 0;
}

/* OpenAI sampling fields into an options object (then typed like native options):
 * temperature and top_p default to 1 (Ollama's openai layer: they override the
 * model's parameters), max_tokens / max_completion_tokens -> num_predict. */
static int parse_openai_sampling(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    json_t *opts = json_object();
    if (!opts) return oom(e);
    double d = 0;
    bool given = false;
    int rc = -1;
    int64_t mt = 0, mct = 0, seed = 0;
    bool has_mt = false, has_mct = false;
    if (opt_number(body, "temperature", 0, 2, &d, &given, e) < 0) goto out;
    if (json_object_set_new(opts, "temperature", json_real(given ? d : 1.0)) < 0) goto nomem;
    if (opt_number(body, "top_p", 0, 1, &d, &given, e) < 0) goto out;
    if (json_object_set_new(opts, "top_p", json_real(given ? d : 1.0)) < 0) goto nomem;
    static const char *const PENALTIES[] = { "frequency_penalty", "presence_penalty" };
    for (size_t i = 0; i < 2; i++) {
        if (opt_number(body, PENALTIES[i], -2, 2, &d, &given, e) < 0) goto out;
        if (given && json_object_set_new(opts, PENALTIES[i], json_real(d)) < 0) goto nomem;
    }
    if (opt_int(body, "seed", "seed", INT64_MIN, INT64_MAX, &seed, &given, e) < 0) goto out;
    if (given && json_object_set_new(opts, "seed", json_integer(seed)) < 0) goto nomem;
    if (opt_int(body, "max_tokens", "max_tokens", 0, INT32_MAX, &mt, &has_mt, e) < 0 ||
        opt_int(body, "max_completion_tokens", "max_completion_tokens", 0, INT32_MAX, &mct, &has_mct, e) < 0)
        goto out;
    if (has_mt && has_mct && mt != mct) {
        fail(e, "max_completion_tokens: %lld differs from max_tokens %lld (give one)", (long long)mct, (long long)mt);
        goto out;
    }
    if ((has_mt || has_mct) && json_object_set_new(opts, "num_predict", json_integer(has_mct ? mct : mt)) < 0) goto nomem;
    const json_t *stop = json_object_get(body, "stop");
    if (stop && !json_is_null(stop)) {
        json_t *list = json_array();
        if (!list || json_object_set_new(opts, "stop", list) < 0) goto nomem;
        if (json_is_string(stop)) {
            if (check_string(stop, "stop", e) < 0) goto out;
            if (json_array_append(list, (json_t *)stop) < 0) goto nomem;
        } else if (json_is_array(stop)) {
            if (json_array_size(stop) > QFIT_API_MAX_STOP) {
                fail(e, "stop: %zu strings (at most %u)", json_array_size(stop), QFIT_API_MAX_STOP);
                goto out;
            }
            for (size_t i = 0; i < json_array_size(stop); i++) {
                char path[32];
                snprintf(path, sizeof path, "stop[%zu]", i);
                if (check_string(json_array_get(stop, i), path, e) < 0) goto out;
                if (json_array_append(list, json_array_get(stop, i)) < 0) goto nomem;
            }
        } else {
            fail(e, "stop: must be a string or an array of strings, not %s", type_word(stop));
            goto out;
        }
    }
    char msg[256];
    qfit_params *p = qfit_params_from_json(opts, NULL, msg, sizeof msg);
    if (!p) {
        fail(e, "%s", msg);   /* cannot happen: every value was checked above */
        goto out;
    }
    qfit_params_free(r->options);
    r->options = p;
    rc = check_stop(r->options, "stop", e);
    goto out;
nomem:
    oom(e);
out:
    json_decref(opts);
    return rc;
}

static int parse_stream_options(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    if (opt_bool(body, "stream", &r->stream, e) < 0) return -1;
    const json_t *so = json_object_get(body, "stream_options");
    if (!so || json_is_null(so)) return 0;
    if (!json_is_object(so)) return fail(e, "stream_options: must be an object");
    const json_t *iu = json_object_get(so, "include_usage");
    if (iu && !json_is_null(iu) && !json_is_boolean(iu)) return fail(e, "stream_options.include_usage: must be a boolean");
    r->include_usage = json_is_true(iu);
    if (!r->stream && r->include_usage && warn(r, "stream_options: ignored without stream true") < 0) return oom(e);
    return 0;
}

/* tool_choice: "auto" | "none" | "required" | {"type":"function","function":{"name"}}. */
static int parse_tool_choice(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    const json_t *v = json_object_get(body, "tool_choice");
    if (!v || json_is_null(v)) return 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!strcmp(s, "auto")) r->tool_choice = QFIT_API_TOOL_AUTO;
        else if (!strcmp(s, "none")) r->tool_choice = QFIT_API_TOOL_NONE;
        else if (!strcmp(s, "required")) r->tool_choice = QFIT_API_TOOL_REQUIRED;
        else return fail(e, "tool_choice: invalid value \"%.32s\" (auto, none, required or a function)", s);
    } else if (json_is_object(v)) {
        const json_t *type = json_object_get(v, "type"), *name = json_object_get(json_object_get(v, "function"), "name");
        if (!json_is_string(type) || strcmp(json_string_value(type), "function") != 0)
            return fail(e, "tool_choice.type: must be \"function\"");
        if (!json_is_string(name) || json_string_length(name) == 0) return fail(e, "tool_choice.function.name: is required");
        if (check_string(name, "tool_choice.function.name", e) < 0) return -1;
        if (!has_tool(r->tools, json_string_value(name)))
            return fail(e, "tool_choice.function.name: no tool named \"%.128s\" in tools", json_string_value(name));
        if (!(r->tool_name = dupn(json_string_value(name), json_string_length(name)))) return oom(e);
        r->tool_choice = QFIT_API_TOOL_NAMED;
    } else
        return fail(e, "tool_choice: must be a string or an object");
    if (r->tool_choice == QFIT_API_TOOL_REQUIRED && !r->tools) return fail(e, "tool_choice: \"required\" needs tools");
    return 0;
}

/* response_format: text | json_object | json_schema {schema, strict}. */
static int parse_response_format(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    const json_t *v = json_object_get(body, "response_format");
    if (!v || json_is_null(v)) return 0;
    const json_t *type = json_object_get(v, "type");
    if (!json_is_object(v) || !json_is_string(type)) return fail(e, "response_format: must be an object with a type");
    const char *t = json_string_value(type);
    if (!strcmp(t, "text")) return 0;
    if (!strcmp(t, "json_object")) {
        r->format = QFIT_API_FORMAT_JSON;
        return 0;
    }
    if (strcmp(t, "json_schema") != 0)
        return fail(e, "response_format.type: invalid value \"%.32s\" (text, json_object or json_schema)", t);
    const json_t *js = json_object_get(v, "json_schema");
    if (!json_is_object(js)) return fail(e, "response_format.json_schema: is required (an object)");
    const json_t *schema = json_object_get(js, "schema"), *strict = json_object_get(js, "strict");
    if (!json_is_object(schema)) return fail(e, "response_format.json_schema.schema: must be a JSON Schema object");
    if (strict && !json_is_null(strict) && !json_is_boolean(strict))
        return fail(e, "response_format.json_schema.strict: must be a boolean");
    r->schema_strict = json_is_true(strict);
    if (!(r->schema = json_deep_copy(schema))) return oom(e);
    r->format = QFIT_API_FORMAT_SCHEMA;
    return 0;
}

static int parse_oai_chat(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    if (refuse_unsupported(r, body, e) < 0 || parse_messages(r, body, true, e) < 0 || parse_tools(r, body, e) < 0 ||
        parse_tool_choice(r, body, e) < 0 || parse_response_format(r, body, e) < 0 || parse_effort(r, body, e) < 0 ||
        parse_stream_options(r, body, e) < 0 || parse_openai_sampling(r, body, e) < 0 ||
        parse_openai_extensions(r, body, e) < 0)
        return -1;
    /* logprobs bool, top_logprobs 0..20 (needs logprobs, as OpenAI) */
    return parse_logprobs(r, body, e);
}

static int parse_oai_completions(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    if (refuse_unsupported(r, body, e) < 0 || opt_string(body, "suffix", "suffix", &r->suffix, e) < 0 ||
        parse_stream_options(r, body, e) < 0 || parse_openai_sampling(r, body, e) < 0 ||
        parse_openai_extensions(r, body, e) < 0)
        return -1;
    const json_t *p = json_object_get(body, "prompt");
    if (json_is_array(p)) {
        if (json_array_size(p) != 1 || !json_is_string(json_array_get(p, 0)))
            return fail(e, "prompt: only a string or an array of one string is supported");
        p = json_array_get(p, 0);
    }
    if (!p || json_is_null(p)) return fail(e, "prompt: is required");
    if (check_string(p, "prompt", e) < 0) return -1;
    if (!(r->prompt = dupn(json_string_value(p), json_string_length(p)))) return oom(e);
    /* legacy logprobs: an integer, the number of alternatives (0: only the chosen token) */
    int64_t lp = 0;
    bool given = false;
    if (opt_int(body, "logprobs", "logprobs", 0, QFIT_API_MAX_TOP_LOGPROBS, &lp, &given, e) < 0) return -1;
    r->logprobs = given;
    r->top_logprobs = (int)lp;
    return 0;
}

static int parse_oai_embeddings(qfit_api_request *r, const json_t *body, qfit_api_error *e)
{
    if (parse_inputs(r, body, true, e) < 0 || parse_dimensions(r, body, e) < 0) return -1;
    const json_t *f = json_object_get(body, "encoding_format");
    if (f && !json_is_null(f)) {
        if (json_is_string(f) && !strcmp(json_string_value(f), "base64")) r->base64 = true;
        else if (!json_is_string(f) || strcmp(json_string_value(f), "float") != 0)
            return fail(e, "encoding_format: must be \"float\" or \"base64\"");
    }
    return 0;
}

/* ------------------------------------------------------------ entry */

qfit_api_request *qfit_api_parse(qfit_api_endpoint endpoint, const json_t *body, qfit_api_error *e)
{
    if (e) {
        e->status = 0;
        e->message[0] = e->param[0] = '\0';
    }
    if (!json_is_object(body)) {
        fail(e, "request body: must be a JSON object");
        return NULL;
    }
    qfit_api_request *r = calloc(1, sizeof *r);
    if (!r || !(r->options = qfit_params_new())) {
        free(r);
        oom(e);
        return NULL;
    }
    r->endpoint = endpoint;
    r->think = -1;
    r->truncate = r->shift = true;
    bool openai = endpoint >= QFIT_API_OAI_CHAT;
    r->stream = !openai && endpoint != QFIT_API_EMBED && endpoint != QFIT_API_EMBEDDINGS;
    int rc = parse_model(r, body, e);
    if (rc == 0) {
        switch (endpoint) {
        case QFIT_API_GENERATE: rc = parse_generate(r, body, e); break;
        case QFIT_API_CHAT: rc = parse_chat(r, body, e); break;
        case QFIT_API_EMBED: rc = parse_embed(r, body, e); break;
        case QFIT_API_EMBEDDINGS: rc = parse_embeddings(r, body, e); break;
        case QFIT_API_OAI_CHAT: rc = parse_oai_chat(r, body, e); break;
        case QFIT_API_OAI_COMPLETIONS: rc = parse_oai_completions(r, body, e); break;
        case QFIT_API_OAI_EMBEDDINGS: rc = parse_oai_embeddings(r, body, e); break;
        default: rc = fail(e, "unknown endpoint %d", (int)endpoint);
        }
    }
    if (rc < 0) {
        qfit_api_request_free(r);
        if (e && e->status == 400) {   /* the path: what precedes the first ": " */
            const char *colon = strstr(e->message, ": ");
            size_t n = colon ? (size_t)(colon - e->message) : 0;
            if (n >= sizeof e->param || memchr(e->message, ' ', n)) n = 0;
            memcpy(e->param, e->message, n);
            e->param[n] = '\0';
        }
        return NULL;
    }
    return r;
}

void qfit_api_request_free(qfit_api_request *r)
{
    if (!r) return;
    free(r->model);
    free(r->prompt);
    free(r->suffix);
    free(r->system);
    free(r->tmpl);
    free(r->context);
    json_decref(r->messages);
    json_decref(r->tools);
    free(r->tool_name);
    json_decref(r->schema);
    qfit_params_free(r->options);
    qfit_warnings_free(&r->warnings);
    for (size_t i = 0; i < r->n_inputs; i++) {
        free(r->inputs[i].text);
        free(r->inputs[i].tokens);
    }
    free(r->inputs);
    free(r);
}

/* ------------------------------------------------------------ paths */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int qfit_api_path_decode(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; in[i]; i++) {
        char c = in[i];
        if (c == '%') {
            int hi = hex_digit(in[i + 1]), lo = hi < 0 ? -1 : hex_digit(in[i + 2]);
            if (hi < 0 || lo < 0 || (hi | lo) == 0) return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (o + 1 >= cap) return -1;
        out[o++] = c;
    }
    if (cap == 0) return -1;
    out[o] = '\0';
    return 0;
}

/* ------------------------------------------------------------ depth */

bool qfit_api_json_depth_ok(const json_t *j, int max)
{
    if (!json_is_object(j) && !json_is_array(j)) return true;
    if (max < 1) return false;
    /* explicit stack of containers and the position reached in each */
    struct frame { const json_t *c; void *it; size_t i; } *st = malloc((size_t)max * sizeof *st);
    if (!st) return false;
    int top = 0;
    st[0] = (struct frame){ j, json_is_object(j) ? json_object_iter((json_t *)j) : NULL, 0 };
    bool ok = true;
    while (top >= 0) {
        struct frame *f = &st[top];
        const json_t *child = NULL;
        if (json_is_object(f->c)) {
            if (f->it) {
                child = json_object_iter_value(f->it);
                f->it = json_object_iter_next((json_t *)f->c, f->it);
            }
        } else if (f->i < json_array_size(f->c))
            child = json_array_get(f->c, f->i++);
        if (!child) {
            top--;
            continue;
        }
        if (!json_is_object(child) && !json_is_array(child)) continue;
        if (top + 1 >= max) {
            ok = false;
            break;
        }
        st[++top] = (struct frame){ child, json_is_object(child) ? json_object_iter((json_t *)child) : NULL, 0 };
    }
    free(st);
    return ok;
}
