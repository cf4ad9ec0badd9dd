/* Response objects of the Ollama and OpenAI APIs (api.h): chunks, final objects,
 * embeddings, model lists, errors, and their NDJSON / SSE framing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qfit/api.h"

/* ------------------------------------------------------------- helpers */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0x3F >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* A JSON string of len bytes; invalid UTF-8 bytes become U+FFFD (jansson refuses them). */
static json_t *lossy_string(const char *s, size_t len)
{
    if (!s) return json_string("");
    json_t *j = json_stringn(s, len);
    if (j) return j;
    char *buf = malloc(3 * len + 1);   /* each bad byte grows to 3 */
    if (!buf) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq((const unsigned char *)s + i, len - i);
        if (k == 0) {
            memcpy(buf + o, "\xEF\xBF\xBD", 3), o += 3, i++;
        } else {
            memcpy(buf + o, s + i, k), o += k, i += k;
        }
    }
    j = json_stringn(buf, o);
    free(buf);
    return j;
}

/* obj[key] = v (stolen); false when v is NULL or out of memory. */
static bool put(json_t *obj, const char *key, json_t *v)
{
    return v && json_object_set_new(obj, key, v) == 0;
}

static bool put_text(json_t *obj, const char *key, const char *s)
{
    return put(obj, key, lossy_string(s ? s : "", s ? strlen(s) : 0));
}

static bool nonempty(const char *s) { return s && s[0]; }

static json_t *fail_null(json_t *o)
{
    json_decref(o);
    return NULL;
}

void qfit_api_rfc3339(int64_t unix_ns, char *buf, size_t len)
{
    int64_t sec = unix_ns / 1000000000, ns = unix_ns % 1000000000;
    if (ns < 0) ns += 1000000000, sec--;
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    char frac[16] = "";
    if (ns) {
        snprintf(frac, sizeof frac, ".%09lld", (long long)ns);
        size_t n = strlen(frac);
        while (frac[n - 1] == '0') frac[--n] = '\0';   /* Go's RFC3339Nano drops trailing zeros */
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, frac);
}

void qfit_api_make_id(const char *prefix, uint64_t r, size_t n_chars, char *buf, size_t len)
{
    static const char ALNUM[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t p = strlen(prefix);
    if (len == 0) return;
    if (p + n_chars + 1 > len) n_chars = len > p + 1 ? len - p - 1 : 0;
    snprintf(buf, len, "%s", prefix);
    uint64_t x = r;
    for (size_t i = 0; i < n_chars && p + i + 1 < len; i++) {
        /* splitmix64 steps: every character from the whole 64-bit input */
        x += 0x9E3779B97F4A7C15ull;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        buf[p + i] = ALNUM[z % 36];
        buf[p + i + 1] = '\0';
    }
}

static char *frame(const json_t *obj, const char *pre, const char *post)
{
    char *body = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (!body) return NULL;
    size_t a = strlen(pre), b = strlen(body), c = strlen(post);
    char *out = malloc(a + b + c + 1);
    if (out) {
        memcpy(out, pre, a);
        memcpy(out + a, body, b);
        memcpy(out + a + b, post, c + 1);
    }
    free(body);
    return out;
}

char *qfit_api_ndjson_line(const json_t *obj) { return frame(obj, "", "\n"); }
char *qfit_api_sse_data(const json_t *obj) { return frame(obj, "data: ", "\n\n"); }

char *qfit_api_base64(const void *data, size_t n)
{
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = data;
    if (n > (SIZE_MAX - 1) / 4 * 3 - 3) return NULL;
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = T[v >> 18], *o++ = T[(v >> 12) & 63], *o++ = T[(v >> 6) & 63], *o++ = T[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        *o++ = T[v >> 18], *o++ = T[(v >> 12) & 63], *o++ = '=', *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        *o++ = T[v >> 18], *o++ = T[(v >> 12) & 63], *o++ = T[(v >> 6) & 63], *o++ = '=';
    }
    *o = '\0';
    return out;
}

/* ------------------------------------------------------------ logprobs */

/* Building pattern: every new value is attached at once (put / add steal it, also on
 * failure), so an allocation failure anywhere only needs the root released. */
static bool add(json_t *arr, json_t *v)
{
    return v && json_array_append_new(arr, v) == 0;
}

/* A new object / array attached to parent under key (NULL on failure). */
static json_t *put_obj(json_t *parent, const char *key)
{
    json_t *o = json_object();
    return put(parent, key, o) ? o : NULL;
}

static json_t *put_arr(json_t *parent, const char *key)
{
    json_t *a = json_array();
    return put(parent, key, a) ? a : NULL;
}

static json_t *add_obj(json_t *arr)
{
    json_t *o = json_object();
    return add(arr, o) ? o : NULL;
}

/* {token, logprob, bytes:[...]} (Ollama api.TokenLogprob; OpenAI's entries too). */
static json_t *token_logprob(const qfit_api_token_logprob *t)
{
    json_t *o = json_object(), *bytes;
    if (!o || !put(o, "token", lossy_string(t->token, t->len)) || !put(o, "logprob", json_real(t->logprob)) ||
        !(bytes = put_arr(o, "bytes")))
        return fail_null(o);
    for (size_t i = 0; i < t->len; i++)
        if (!add(bytes, json_integer((unsigned char)t->token[i]))) return fail_null(o);
    return o;
}

/* [{token, logprob, bytes, top_logprobs:[...]}]; OpenAI always has top_logprobs. */
static json_t *logprobs_array(const qfit_api_result *r, bool always_top)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n_logprobs; i++) {
        const qfit_api_logprob *lp = &r->logprobs[i];
        json_t *o = token_logprob(&lp->tok), *top;
        if (!add(a, o)) return fail_null(a);
        if (!lp->n_top && !always_top) continue;
        if (!(top = put_arr(o, "top_logprobs"))) return fail_null(a);
        for (size_t k = 0; k < lp->n_top; k++)
            if (!add(top, token_logprob(&lp->top[k]))) return fail_null(a);
    }
    return a;
}

/* ---------------------------------------------------------- Ollama native */

/* The six timing fields, integers in ns / tokens, on every final chunk of a generation. */
static bool put_metrics(json_t *o, const qfit_api_result *r)
{
    return put(o, "total_duration", json_integer((json_int_t)r->total_ns)) &&
           put(o, "load_duration", json_integer((json_int_t)r->load_ns)) &&
           put(o, "prompt_eval_count", json_integer(r->prompt_tokens)) &&
           put(o, "prompt_eval_duration", json_integer((json_int_t)r->prompt_eval_ns)) &&
           put(o, "eval_count", json_integer(r->completion_tokens)) &&
           put(o, "eval_duration", json_integer((json_int_t)r->eval_ns));
}

static bool is_load_reply(const qfit_api_result *r)
{
    return r->done_reason && (!strcmp(r->done_reason, "load") || !strcmp(r->done_reason, "unload"));
}

static bool has_calls(const qfit_api_result *r) { return r->tool_calls && json_array_size(r->tool_calls) > 0; }

/* {model, created_at} */
static json_t *native_head(const qfit_api_meta *m)
{
    json_t *o = json_object();
    char ts[48];
    qfit_api_rfc3339(m->now_ns, ts, sizeof ts);
    if (!o || !put_text(o, "model", m->model) || !put(o, "created_at", json_string(ts))) return fail_null(o);
    return o;
}

/* done, done_reason, metrics, logprobs: the tail both native chunks share. */
static bool native_tail(json_t *o, const qfit_api_result *r)
{
    if (!put(o, "done", json_boolean(r->done))) return false;
    if (r->done) {
        if (!put_text(o, "done_reason", r->done_reason ? r->done_reason : "stop")) return false;
        if (!is_load_reply(r) && !put_metrics(o, r)) return false;
    }
    return !r->n_logprobs || put(o, "logprobs", logprobs_array(r, false));
}

/* text, thinking, tool_calls into o (generate: "response"; chat: message "content"). */
static bool native_body(json_t *o, const char *text_key, const qfit_api_result *r)
{
    return put_text(o, text_key, r->content) && (!nonempty(r->thinking) || put_text(o, "thinking", r->thinking)) &&
           (!has_calls(r) || put(o, "tool_calls", json_deep_copy(r->tool_calls)));
}

json_t *qfit_api_ollama_generate_chunk(const qfit_api_meta *m, const qfit_api_result *r)
{
    json_t *o = native_head(m), *c;
    if (!o || !native_body(o, "response", r) || !native_tail(o, r)) return fail_null(o);
    if (r->done && r->context) {
        if (!(c = put_arr(o, "context"))) return fail_null(o);
        for (size_t i = 0; i < r->n_context; i++)
            if (!add(c, json_integer(r->context[i]))) return fail_null(o);
    }
    return o;
}

json_t *qfit_api_ollama_chat_chunk(const qfit_api_meta *m, const qfit_api_result *r)
{
    json_t *o = native_head(m), *msg;
    if (!o || !(msg = put_obj(o, "message")) || !put(msg, "role", json_string("assistant")) ||
        !native_body(msg, "content", r) || !native_tail(o, r))
        return fail_null(o);
    return o;
}

static json_t *float_array(const float *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (!add(a, json_real(v[i]))) return fail_null(a);
    return a;
}

json_t *qfit_api_ollama_embed(const qfit_api_meta *m, const float *vectors, size_t n, size_t dim,
                              const qfit_api_result *r)
{
    json_t *o = json_object(), *list;
    if (!o || !put_text(o, "model", m->model) || !(list = put_arr(o, "embeddings"))) return fail_null(o);
    for (size_t i = 0; i < n; i++)
        if (!add(list, float_array(vectors + i * dim, dim))) return fail_null(o);
    if (n && r &&
        (!put(o, "total_duration", json_integer((json_int_t)r->total_ns)) ||
         !put(o, "load_duration", json_integer((json_int_t)r->load_ns)) ||
         !put(o, "prompt_eval_count", json_integer(r->prompt_tokens))))
        return fail_null(o);
    return o;
}

json_t *qfit_api_ollama_embedding(const float *vector, size_t dim)
{
    json_t *o = json_object();
    if (!o || !put(o, "embedding", float_array(vector, dim))) return fail_null(o);
    return o;
}

json_t *qfit_api_ollama_error(const char *message)
{
    json_t *o = json_object();
    if (!o || !put_text(o, "error", message)) return fail_null(o);
    return o;
}

/* --------------------------------------------------------------- OpenAI */

/* {id, object, created, model, system_fingerprint} */
static json_t *oai_head(const qfit_api_meta *m, const char *object)
{
    json_t *o = json_object();
    if (!o || !put_text(o, "id", m->id) || !put(o, "object", json_string(object)) ||
        !put(o, "created", json_integer(m->created)) || !put_text(o, "model", m->model) ||
        !put(o, "system_fingerprint", json_string("fp_qfit")))
        return fail_null(o);
    return o;
}

static json_t *usage(const qfit_api_result *r)
{
    json_t *u = json_object();
    if (!u || !put(u, "prompt_tokens", json_integer(r->prompt_tokens)) ||
        !put(u, "completion_tokens", json_integer(r->completion_tokens)) ||
        !put(u, "total_tokens", json_integer((json_int_t)r->prompt_tokens + r->completion_tokens)))
        return fail_null(u);
    return u;
}

/* The string member key of o, or "". */
static const char *str_or_empty(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Ollama tool calls -> OpenAI: {id, index, type:"function", function:{name, arguments:"<json>"}} */
static json_t *oai_tool_calls(const json_t *calls)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < json_array_size(calls); i++) {
        const json_t *c = json_array_get(calls, i), *f = json_object_get(c, "function");
        const json_t *idx = json_object_get(f, "index"), *args = json_object_get(f, "arguments");
        json_t *oc = add_obj(a), *of;
        if (!oc || !put(oc, "id", json_string(str_or_empty(c, "id"))) ||
            !put(oc, "index", json_integer(json_is_integer(idx) ? json_integer_value(idx) : (json_int_t)i)) ||
            !put(oc, "type", json_string("function")) || !(of = put_obj(oc, "function")) ||
            !put(of, "name", json_string(str_or_empty(f, "name"))))
            return fail_null(a);
        char *text = args ? json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        bool ok = put(of, "arguments", json_string(text ? text : "{}"));
        free(text);
        if (!ok || (args && !text)) return fail_null(a);
    }
    return a;
}

/* finish_reason: stop becomes tool_calls when tools were called. */
static json_t *finish_reason(const qfit_api_result *r, bool tool_call_sent)
{
    const char *reason = r->done_reason ? r->done_reason : "stop";
    if (!strcmp(reason, "stop") && (tool_call_sent || has_calls(r))) reason = "tool_calls";
    return json_string(reason);
}

/* {"content": logprobs entries} */
static json_t *oai_logprobs(const qfit_api_result *r)
{
    json_t *o = json_object();
    if (!o || !put(o, "content", logprobs_array(r, true))) return fail_null(o);
    return o;
}

json_t *qfit_api_openai_chat(const qfit_api_meta *m, const qfit_api_result *r)
{
    json_t *o = oai_head(m, "chat.completion"), *choices, *choice, *msg;
    bool calls = has_calls(r);
    if (!o || !(choices = put_arr(o, "choices")) || !(choice = add_obj(choices)) ||
        !put(choice, "index", json_integer(0)) || !(msg = put_obj(choice, "message")) ||
        !put(msg, "role", json_string("assistant")) ||
        /* OpenAI: content null when the answer is only tool calls */
        !(calls && !nonempty(r->content) ? put(msg, "content", json_null()) : put_text(msg, "content", r->content)) ||
        (nonempty(r->thinking) && !put_text(msg, "reasoning", r->thinking)) ||
        (calls && !put(msg, "tool_calls", oai_tool_calls(r->tool_calls))) ||
        !put(choice, "finish_reason", finish_reason(r, m->tool_call_sent)) ||
        (r->n_logprobs && !put(choice, "logprobs", oai_logprobs(r))) || !put(o, "usage", usage(r)))
        return fail_null(o);
    return o;
}

/* One chat.completion.chunk; delta filled by the caller through *delta. finish: a
 * new reference (json_null() for none), stolen. */
static json_t *chat_chunk(const qfit_api_meta *m, json_t *events, json_t **delta, json_t *finish, bool logprobs,
                          const qfit_api_result *r)
{
    json_t *o = oai_head(m, "chat.completion.chunk"), *choices, *choice;
    if (!add(events, o) || !(choices = put_arr(o, "choices")) || !(choice = add_obj(choices)) ||
        !put(choice, "index", json_integer(0)) || !(*delta = put_obj(choice, "delta"))) {
        json_decref(finish);
        return NULL;
    }
    if (!put(choice, "finish_reason", finish) || (logprobs && !put(choice, "logprobs", oai_logprobs(r)))) return NULL;
    return o;
}

json_t *qfit_api_openai_chat_chunks(const qfit_api_meta *m, const qfit_api_result *r, bool first)
{
    json_t *ev = json_array(), *d;
    if (!ev) return NULL;
    bool think = nonempty(r->thinking), text = nonempty(r->content), calls = has_calls(r);
    /* reasoning first, in its own chunk when content or calls come with it (as Ollama) */
    if (think) {
        if (!chat_chunk(m, ev, &d, json_null(), r->n_logprobs > 0, r) ||
            (first && !put(d, "role", json_string("assistant"))) || !put_text(d, "reasoning", r->thinking))
            return fail_null(ev);
        first = false;
    }
    if (text || calls || (!think && (first || r->n_logprobs))) {
        if (!chat_chunk(m, ev, &d, json_null(), !think && r->n_logprobs, r) ||
            (first && !put(d, "role", json_string("assistant"))) || !put_text(d, "content", r->content) ||
            (calls && !put(d, "tool_calls", oai_tool_calls(r->tool_calls))))
            return fail_null(ev);
    }
    if (r->done) {
        if (!chat_chunk(m, ev, &d, finish_reason(r, m->tool_call_sent || calls), false, r)) return fail_null(ev);
        json_t *u;
        if (m->include_usage && (!add(ev, u = oai_head(m, "chat.completion.chunk")) || !put_arr(u, "choices") ||
                                 !put(u, "usage", usage(r))))
            return fail_null(ev);
    }
    return ev;
}

/* Legacy completions logprobs: {tokens, token_logprobs, top_logprobs:[{token: lp}]}. */
static json_t *legacy_logprobs(const qfit_api_result *r)
{
    json_t *o = json_object(), *tokens, *lps, *tops;
    if (!o || !(tokens = put_arr(o, "tokens")) || !(lps = put_arr(o, "token_logprobs")) ||
        !(tops = put_arr(o, "top_logprobs")))
        return fail_null(o);
    for (size_t i = 0; i < r->n_logprobs; i++) {
        const qfit_api_logprob *lp = &r->logprobs[i];
        json_t *top;
        if (!add(tokens, lossy_string(lp->tok.token, lp->tok.len)) || !add(lps, json_real(lp->tok.logprob)) ||
            !(top = add_obj(tops)))
            return fail_null(o);
        for (size_t k = 0; k < lp->n_top; k++) {
            json_t *key = lossy_string(lp->top[k].token, lp->top[k].len);
            bool ok = key && put(top, json_string_value(key), json_real(lp->top[k].logprob));
            json_decref(key);
            if (!ok) return fail_null(o);
        }
    }
    return o;
}

/* {text, index, finish_reason, logprobs} appended to choices */
static bool completion_choice(json_t *choices, const qfit_api_result *r)
{
    json_t *c = add_obj(choices);
    return c && put_text(c, "text", r->content) && put(c, "index", json_integer(0)) &&
           put(c, "finish_reason", r->done ? json_string(r->done_reason ? r->done_reason : "stop") : json_null()) &&
           put(c, "logprobs", r->n_logprobs ? legacy_logprobs(r) : json_null());
}

json_t *qfit_api_openai_completion(const qfit_api_meta *m, const qfit_api_result *r)
{
    json_t *o = oai_head(m, "text_completion"), *choices;
    if (!o || !(choices = put_arr(o, "choices")) || !completion_choice(choices, r) || !put(o, "usage", usage(r)))
        return fail_null(o);
    return o;
}

json_t *qfit_api_openai_completion_chunks(const qfit_api_meta *m, const qfit_api_result *r)
{
    json_t *ev = json_array(), *o, *choices;
    if (!ev) return NULL;
    if ((nonempty(r->content) || r->done || r->n_logprobs) &&
        (!add(ev, o = oai_head(m, "text_completion")) || !(choices = put_arr(o, "choices")) || !completion_choice(choices, r)))
        return fail_null(ev);
    if (r->done && m->include_usage &&
        (!add(ev, o = oai_head(m, "text_completion")) || !put_arr(o, "choices") || !put(o, "usage", usage(r))))
        return fail_null(ev);
    return ev;
}

/* base64 of the little-endian float32 bytes of v, whatever the host's byte order */
static json_t *base64_floats(const float *v, size_t dim)
{
    unsigned char *bytes = malloc(dim * 4 + 1);
    if (!bytes) return NULL;
    for (size_t k = 0; k < dim; k++) {
        uint32_t u;
        memcpy(&u, &v[k], 4);
        for (size_t b = 0; b < 4; b++) bytes[4 * k + b] = (unsigned char)(u >> (8 * b));
    }
    char *b64 = qfit_api_base64(bytes, dim * 4);
    free(bytes);
    json_t *s = b64 ? json_string(b64) : NULL;
    free(b64);
    return s;
}

json_t *qfit_api_openai_embeddings(const char *model, const float *vectors, size_t n, size_t dim, bool base64,
                                   int prompt_tokens)
{
    json_t *o = json_object(), *data, *u;
    if (!o || !put(o, "object", json_string("list")) || !(data = put_arr(o, "data"))) return fail_null(o);
    for (size_t i = 0; i < n; i++) {
        const float *v = vectors + i * dim;
        json_t *e = add_obj(data);
        if (!e || !put(e, "object", json_string("embedding")) ||
            !put(e, "embedding", base64 ? base64_floats(v, dim) : float_array(v, dim)) ||
            !put(e, "index", json_integer((json_int_t)i)))
            return fail_null(o);
    }
    if (!put_text(o, "model", model) || !(u = put_obj(o, "usage")) ||
        !put(u, "prompt_tokens", json_integer(prompt_tokens)) || !put(u, "total_tokens", json_integer(prompt_tokens)))
        return fail_null(o);
    return o;
}

json_t *qfit_api_openai_model(const char *id, int64_t created, const char *owned_by)
{
    json_t *o = json_object();
    if (!o || !put_text(o, "id", id) || !put(o, "object", json_string("model")) ||
        !put(o, "created", json_integer(created)) || !put_text(o, "owned_by", owned_by ? owned_by : "library"))
        return fail_null(o);
    return o;
}

json_t *qfit_api_openai_model_list(const json_t *models)
{
    json_t *o = json_object();
    if (!o || !put(o, "object", json_string("list")) ||
        !put(o, "data", json_is_array(models) ? json_deep_copy(models) : json_array()))
        return fail_null(o);
    return o;
}

json_t *qfit_api_openai_error(int status, const char *message, const char *param)
{
    const char *type = status == 400 ? "invalid_request_error" : status == 401 ? "authentication_error"
                     : status == 403 ? "permission_error" : status == 404 ? "not_found_error"
                     : status == 429 ? "rate_limit_error" : "api_error";
    json_t *o = json_object(), *e;
    if (!o || !(e = put_obj(o, "error")) || !put_text(e, "message", message) || !put(e, "type", json_string(type)) ||
        !put(e, "param", param ? json_string(param) : json_null()) || !put(e, "code", json_null()))
        return fail_null(o);
    return o;
}
