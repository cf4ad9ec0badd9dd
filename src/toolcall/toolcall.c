/* Streaming split of generated text into content, thinking and tool calls.
 *
 * The parser is a state machine over `in`, the text fed but not yet decided.
 * Each state knows which markers it looks for; text before the earliest
 * marker goes to the state's destination (content, thinking, discard or the
 * current call body), and a tail that could still grow into a marker is held
 * in `in`. That is the only text ever held back, apart from a call body
 * (bounded by QFIT_TOOLCALL_MAX_BODY) and a harmony header (bounded).
 *
 * Call bodies end in one of two ways: at an end marker (</tool_call>, a
 * harmony <|end|>/<|call|>) or when one JSON value is complete (Llama's bare
 * JSON, <|python_tag|>, Mistral's array and [ARGS]); a small scanner follows
 * the brackets and strings for the latter, bounding the nesting depth.
 */
#include <stdarg.h>
#include <stddef.h>
#include <strings.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qfit/toolcall.h"
#include "platform/platform.h"
#include "toolcall/toolcall_int.h"

#define MAX_HEADER 1024 /* harmony header bytes before <|message|> */
#define MAX_NAME   256  /* Mistral tool name before [ARGS] */

/* ------------------------------------------------------------ small buffers */

typedef struct {
    char  *p;
    size_t len, cap;
} sbuf;

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return -1;
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

static void sb_drop_front(sbuf *b, size_t n)
{
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->p[b->len] = 0;
}

static void sb_clear(sbuf *b)
{
    b->len = 0;
    if (b->p) b->p[0] = 0;
}

/* ------------------------------------------------------------ markers */

typedef enum {
    A_THINK_OPEN, A_THINK_CLOSE, A_HERMES, A_CALL_END, A_PYTHON_TAG, A_MISTRAL, A_DROP,
    A_DS_SECTION, A_DS_CALL, A_DS_SECTION_END,
    A_ARGS, A_H_MESSAGE, A_H_END, A_H_START, A_H_CHANNEL,
} action;

typedef struct {
    const char *s;
    action      a;
} marker;

#define M(str, act) { str, act }
static const marker MK_THINK_OPEN[]    = { M("<think>", A_THINK_OPEN) };
static const marker MK_THINK_CLOSE[]   = { M("</think>", A_THINK_CLOSE) };
static const marker MK_MTHINK_OPEN[]   = { M("[THINK]", A_THINK_OPEN) };
static const marker MK_MTHINK_CLOSE[]  = { M("[/THINK]", A_THINK_CLOSE) };
static const marker MK_JSON[]          = { M("<|python_tag|>", A_PYTHON_TAG) };
static const marker MK_HERMES[]        = { M("<tool_call>", A_HERMES) };
static const marker MK_HERMES_END[]    = { M("</tool_call>", A_CALL_END) };
/* DeepSeek's special tokens use U+FF5C (fullwidth |) and U+2581 (▁). */
#define DS_CALLS_BEGIN "<\uFF5Ctool\u2581calls\u2581begin\uFF5C>"
#define DS_CALLS_END   "<\uFF5Ctool\u2581calls\u2581end\uFF5C>"
#define DS_CALL_BEGIN  "<\uFF5Ctool\u2581call\u2581begin\uFF5C>"
#define DS_CALL_END    "<\uFF5Ctool\u2581call\u2581end\uFF5C>"
#define DS_SEP         "<\uFF5Ctool\u2581sep\uFF5C>"
static const marker MK_DEEPSEEK[]      = { M(DS_CALLS_BEGIN, A_DS_SECTION), M(DS_CALL_BEGIN, A_DS_CALL) };
static const marker MK_DS_SECTION[]    = { M(DS_CALL_BEGIN, A_DS_CALL), M(DS_CALLS_END, A_DS_SECTION_END) };
static const marker MK_DS_CALL_END[]   = { M(DS_CALL_END, A_CALL_END) };
static const marker MK_MISTRAL[]       = { M("[TOOL_CALLS]", A_MISTRAL), M("[/TOOL_CALLS]", A_DROP) };
static const marker MK_MISTRAL_ARGS[]  = { M("[ARGS]", A_ARGS) };
static const marker MK_H_HEADER[]      = { M("<|message|>", A_H_MESSAGE) };
/* A message ends at <|end|>, <|call|> or <|return|>; a new <|start|> or
 * <|channel|> also ends it (the model skipped <|end|>). */
static const marker MK_H_BODY[] = {
    M("<|end|>", A_H_END), M("<|call|>", A_H_END), M("<|return|>", A_H_END),
    M("<|start|>", A_H_START), M("<|channel|>", A_H_CHANNEL),
};
static const marker MK_H_BETWEEN[] = {
    M("<|start|>", A_H_START), M("<|channel|>", A_H_CHANNEL),
    M("<|end|>", A_DROP), M("<|call|>", A_DROP), M("<|return|>", A_DROP),
};
#undef M
#define NM(a) (sizeof(a) / sizeof((a)[0]))

/* Earliest full marker in b[0..n) (ties: the longer one): 1 with *which, *at.
 * Otherwise 0 and *at = where the longest tail that is a proper prefix of a
 * marker starts (n if none): the bytes before it cannot be part of a marker.
 * One pass, so a long text costs time linear in its length. (No marker of a
 * set occurs inside a proper prefix of another, so the first partial match
 * can stop the search.) */
static int scan(const char *b, size_t n, const marker *m, size_t nm, const marker **which, size_t *at)
{
    for (size_t i = 0; i < n; i++) {
        const marker *best = NULL;
        bool partial = false;
        for (size_t k = 0; k < nm; k++) {
            if (b[i] != m[k].s[0]) continue;
            size_t ml = strlen(m[k].s);
            if (n - i >= ml) {
                if (!memcmp(b + i, m[k].s, ml) && (!best || ml > strlen(best->s))) best = &m[k];
            } else if (!memcmp(b + i, m[k].s, n - i)) {
                partial = true;
            }
        }
        if (best || partial) {
            *which = best;
            *at = i;
            return best != NULL;
        }
    }
    *at = n;
    return 0;
}

/* ------------------------------------------------------------ JSON extent */

/* Follows one JSON object/array as it streams in: 1 when it closed, 0 while
 * open, -1 when nested too deeply or it does not start with { or [. */
typedef struct {
    int  depth;
    bool started, in_str, esc;
} jscan;

static int jscan_byte(jscan *j, char c)
{
    if (!j->started) {
        if (is_ws(c)) return 0;
        if (c != '{' && c != '[') return -1;
        j->started = true;
    }
    if (j->in_str) {
        if (j->esc) j->esc = false;
        else if (c == '\\') j->esc = true;
        else if (c == '"') j->in_str = false;
        return 0;
    }
    if (c == '"') {
        j->in_str = true;
    } else if (c == '{' || c == '[') {
        if (++j->depth > QFIT_TOOLCALL_MAX_DEPTH) return -1;
    } else if (c == '}' || c == ']') {
        if (--j->depth == 0) return 1;
    }
    return 0;
}

/* True when the first JSON value in s[0..n) nests deeper than the limit
 * (checked before jansson recurses over it). */
static bool too_deep(const char *s, size_t n)
{
    jscan js = { 0 };
    for (size_t i = 0; i < n; i++) {
        int r = jscan_byte(&js, s[i]);
        if (r == 1) return false;
        if (r < 0) return js.started;
    }
    return false;
}

/* ------------------------------------------------------------ the parser */

typedef enum {
    S_START,       /* before the answer: a thinking block may open */
    S_THINK_LEAD,  /* whitespace after the opening tag */
    S_THINK,
    S_AFTER_THINK, /* whitespace after the closing tag */
    S_LEAD,        /* start of content: the JSON format looks for '{' */
    S_CONTENT,
    S_AFTER_CALL,  /* whitespace (and ';' for JSON) between calls */
    S_DS_GAP,      /* DeepSeek: whitespace at the start of the calls section or after a call */
    S_DS_SECTION,  /* DeepSeek: between <tool_calls_begin> and <tool_calls_end> */
    S_MISTRAL,     /* after [TOOL_CALLS]: '[' array or NAME[ARGS] */
    S_BODY,        /* a call body */
    H_BETWEEN,     /* harmony: outside a message */
    H_HEADER,
    H_BODY,
    S_FINISHED,
    S_FAILED,
} pstate;

/* Where text goes. Thinking is dropped there when the caller did not enable it. */
typedef enum { D_CONTENT, D_THINKING, D_BODY } dest;

typedef enum {
    SH_CALL,      /* {"name":..., "arguments":{...}} (Hermes: or Qwen3-Coder's XML) */
    SH_DEEPSEEK,  /* TYPE<sep>NAME\n```json\nARGS\n``` (R1) or NAME<sep>ARGS (V3.1) */
    SH_CALLS,     /* [call, call, ...] */
    SH_ARGS,      /* the arguments object of call_name */
    SH_CANDIDATE, /* JSON format: a call object, or else content */
} shape;

struct qfit_toolparse {
    qfit_toolcall_format fmt;
    bool                 think_on;
    json_t              *tools; /* NULL: any tool */
    const marker        *think_open, *think_close;
    pstate               st;
    sbuf                 in;   /* fed; from `off` on not yet decided */
    size_t               off;
    /* the call being read */
    sbuf                 body;
    shape                shape;
    bool                 until_tag; /* ends at a marker, else at the end of one JSON value */
    jscan                js;
    char                *call_name;
    dest                 h_dest;    /* harmony: where the open message goes */
    int                  n_calls;   /* calls so far (the next index) */
    /* this feed's output */
    sbuf                 content, thinking;
    qfit_toolcall       *calls;
    size_t               n_out, cap_out;
    char                 failed[512];
};

static int pfail(qfit_toolparse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int pfail(qfit_toolparse *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->failed, sizeof p->failed, fmt, ap);
    va_end(ap);
    p->st = S_FAILED;
    return -1;
}

static int oom(qfit_toolparse *p) { return pfail(p, "out of memory"); }

static int emit(qfit_toolparse *p, dest d, const char *s, size_t n)
{
    if (!n) return 0;
    switch (d) {
    case D_CONTENT:  return sb_add(&p->content, s, n) ? oom(p) : 0;
    case D_THINKING: return p->think_on && sb_add(&p->thinking, s, n) ? oom(p) : 0;
    case D_BODY:
        if (p->body.len + n > QFIT_TOOLCALL_MAX_BODY)
            return pfail(p, "tool call %d: body is larger than %u bytes", p->n_calls + 1, QFIT_TOOLCALL_MAX_BODY);
        return sb_add(&p->body, s, n) ? oom(p) : 0;
    }
    return 0;
}

/* ------------------------------------------------------------ accepting calls */

static const json_t *find_tool(const qfit_toolparse *p, const char *name)
{
    size_t i;
    const json_t *t;
    json_array_foreach(p->tools, i, t) {
        const json_t *f = json_object_get(t, "function");
        if (!strcmp(json_string_value(json_object_get(f, "name")), name)) return f;
    }
    return NULL;
}

static void new_id(char id[32])
{
    static unsigned long counter; /* shared by all parsers: atomic */
    uint8_t r[8];
    if (qfit_sys_random(r, sizeof r, true) != 0) {
        /* no entropy yet (very early boot): ids need only be unique in a response */
        uint64_t x = (uint64_t)time(NULL) * 6364136223846793005u + __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
        memcpy(r, &x, sizeof r);
    }
    char *o = id + snprintf(id, 32, "call_");
    for (size_t i = 0; i < sizeof r; i++) o += snprintf(o, 3, "%02x", r[i]);
}

/* Takes the reference to args. */
static int add_call(qfit_toolparse *p, const char *name, json_t *args)
{
    int k = p->n_calls + 1;
    if (!json_is_object(args)) {
        json_decref(args);
        return pfail(p, "tool call %d (%s): arguments are not a JSON object", k, name);
    }
    if (!name[0]) {
        json_decref(args);
        return pfail(p, "tool call %d: empty tool name", k);
    }
    if (p->n_calls >= QFIT_TOOLCALL_MAX_CALLS) {
        json_decref(args);
        return pfail(p, "more than %d tool calls in one answer", QFIT_TOOLCALL_MAX_CALLS);
    }
    if (p->tools) {
        const json_t *f = find_tool(p, name);
        if (!f) {
            json_decref(args);
            return pfail(p, "tool call %d: unknown tool \"%.100s\" (not in the request's tools)", k, name);
        }
        const json_t *schema = json_object_get(f, "parameters");
        char why[384];
        if (schema && qfit_toolcall_validate(schema, args, why, sizeof why)) {
            json_decref(args);
            return pfail(p, "tool call %d (%s): %s", k, name, why);
        }
    }
    if (p->n_out == p->cap_out) {
        size_t cap = p->cap_out ? 2 * p->cap_out : 4;
        qfit_toolcall *c = realloc(p->calls, cap * sizeof *c);
        if (!c) { json_decref(args); return oom(p); }
        p->calls = c;
        p->cap_out = cap;
    }
    qfit_toolcall *c = &p->calls[p->n_out];
    c->name = strdup(name);
    if (!c->name) { json_decref(args); return oom(p); }
    c->arguments = args;
    c->index = p->n_calls++;
    new_id(c->id);
    p->n_out++;
    return 0;
}

/* {"name": N, "arguments"|"parameters": {...} or "{...}"} → add it. With
 * `strict` false (the JSON format's bare answer) an object that does not look
 * like a call returns 1 and is left to be content. */
static int take_call_object(qfit_toolparse *p, const json_t *o, bool strict)
{
    int k = p->n_calls + 1;
    const json_t *name = json_object_get(o, "name");
    const json_t *args = json_object_get(o, "arguments");
    if (!args) args = json_object_get(o, "parameters");
    if (!strict && (!json_is_string(name) || !args)) return 1;
    /* naming a tool the request does not have: a JSON answer, not a call (as Ollama) */
    if (!strict && p->tools && !find_tool(p, json_string_value(name))) return 1;
    if (!json_is_object(o)) return pfail(p, "tool call %d: not a JSON object", k);
    if (!json_is_string(name)) return pfail(p, "tool call %d: no \"name\" string", k);
    json_t *a;
    if (!args) {
        a = json_object(); /* a call without arguments */
    } else if (json_is_string(args)) {
        json_error_t je;
        if (too_deep(json_string_value(args), json_string_length(args)))
            return pfail(p, "tool call %d: JSON nested deeper than %d", k, QFIT_TOOLCALL_MAX_DEPTH);
        a = json_loads(json_string_value(args), JSON_REJECT_DUPLICATES, &je);
        if (!a) return pfail(p, "tool call %d (%s): arguments string is not JSON: %s", k, json_string_value(name), je.text);
    } else {
        a = json_incref((json_t *)args);
    }
    return add_call(p, json_string_value(name), a);
}

/* ------------------------------------------------------------ Qwen3-Coder */

/* The JSON types a tool's schema allows for parameter `param` (its "type",
 * or the types of its anyOf branches), into types[]; returns the count. */
static int param_types(const qfit_toolparse *p, const char *tool, const char *param, const char *types[8])
{
    const json_t *f = p->tools ? find_tool(p, tool) : NULL;
    const json_t *prop = json_object_get(json_object_get(json_object_get(f, "parameters"), "properties"), param);
    const json_t *one[1] = { prop }, *const *branches = one;
    size_t nb = 1, i;
    const json_t *any = json_object_get(prop, "anyOf");
    const json_t *list[8];
    if (json_is_array(any)) {
        nb = 0;
        json_array_foreach(any, i, prop) if (nb < 8) list[nb++] = prop;
        branches = list;
    }
    int n = 0;
    for (size_t b = 0; b < nb; b++) {
        const json_t *t = json_object_get(branches[b], "type"), *e;
        if (json_is_string(t) && n < 8) types[n++] = json_string_value(t);
        json_array_foreach(t, i, e) if (json_is_string(e) && n < 8) types[n++] = json_string_value(e);
    }
    return n;
}

static bool allows(const char *const *types, int n, const char *t)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(types[i], t)) return true;
    return false;
}

/* A parameter's text as the JSON value its schema type asks for, in Ollama's
 * order (null, boolean, integer, number, array, object); text that fits none
 * stays a string, for the schema check to report. New reference. */
static json_t *typed_value(const char *s, size_t n, const char *const *types, int nt)
{
    if (n == 4 && !strncasecmp(s, "null", 4)) return json_null();
    if (allows(types, nt, "boolean")) {
        if (n == 4 && !strncasecmp(s, "true", 4)) return json_true();
        if (n == 5 && !strncasecmp(s, "false", 5)) return json_false();
    }
    if (allows(types, nt, "integer") || allows(types, nt, "number") || allows(types, nt, "array") ||
        allows(types, nt, "object")) {
        json_t *v = json_loadb(s, n, JSON_DECODE_ANY, NULL);
        if (v && ((json_is_integer(v) && (allows(types, nt, "integer") || allows(types, nt, "number"))) ||
                  (json_is_real(v) && allows(types, nt, "number")) ||
                  (json_is_array(v) && allows(types, nt, "array")) ||
                  (json_is_object(v) && allows(types, nt, "object"))))
            return v;
        json_decref(v);
    }
    return json_stringn(s, n); /* NULL: not UTF-8 */
}

/* Qwen3-Coder's body of a <tool_call>:
 *   <function=NAME>\n<parameter=P>\nVALUE\n</parameter>...\n</function>
 * A value is the raw text between the tags, less one leading and one trailing
 * newline. */
static int take_xml_call(qfit_toolparse *p, const char *b, size_t n)
{
    int k = p->n_calls + 1;
    const char *end = b + n, *q = b;
#define SKIP_WS() while (q < end && is_ws(*q)) q++
#define EAT(lit) (end - q >= (ptrdiff_t)strlen(lit) && !memcmp(q, lit, strlen(lit)) ? (q += strlen(lit), true) : false)
    SKIP_WS();
    if (!EAT("<function=")) return pfail(p, "tool call %d: expected <function=NAME>", k);
    const char *gt = memchr(q, '>', (size_t)(end - q));
    if (!gt || gt - q >= MAX_NAME) return pfail(p, "tool call %d: unterminated <function=", k);
    char name[MAX_NAME];
    snprintf(name, sizeof name, "%.*s", (int)(gt - q), q);
    q = gt + 1;
    json_t *args = json_object();
    if (!args) return oom(p);
    for (;;) {
        SKIP_WS();
        if (EAT("</function>")) break;
        if (!EAT("<parameter=")) {
            json_decref(args);
            return pfail(p, "tool call %d (%s): expected <parameter=NAME> or </function>", k, name);
        }
        gt = memchr(q, '>', (size_t)(end - q));
        const char *close = gt ? memmem(gt, (size_t)(end - gt), "</parameter>", 12) : NULL;
        if (!close || gt - q >= MAX_NAME) {
            json_decref(args);
            return pfail(p, "tool call %d (%s): unterminated <parameter=", k, name);
        }
        char pname[MAX_NAME];
        snprintf(pname, sizeof pname, "%.*s", (int)(gt - q), q);
        const char *v = gt + 1, *ve = close;
        if (v < ve && *v == '\n') v++;
        if (ve > v && ve[-1] == '\n') ve--;
        const char *types[8];
        int nt = param_types(p, name, pname, types);
        if (json_object_get(args, pname)) {
            json_decref(args);
            return pfail(p, "tool call %d (%s): parameter \"%s\" given twice", k, name, pname);
        }
        json_t *val = typed_value(v, (size_t)(ve - v), types, nt);
        if (!val || json_object_set_new(args, pname, val)) {
            json_decref(args);
            return pfail(p, "tool call %d (%s): parameter \"%s\" is not valid UTF-8", k, name, pname);
        }
        q = close + 12;
    }
    SKIP_WS();
    if (q != end) {
        json_decref(args);
        return pfail(p, "tool call %d (%s): text after </function>", k, name);
    }
#undef SKIP_WS
#undef EAT
    return add_call(p, name, args);
}

/* ------------------------------------------------------------ DeepSeek */

static int complete_body(qfit_toolparse *p);

/* The body between <tool_call_begin> and <tool_call_end>:
 *   R1:   function<sep>NAME\n```json\nARGS\n```
 *   V3.1: NAME<sep>ARGS
 * Sets call_name and leaves the ARGS text alone in the body, then goes on as
 * for any arguments object. */
static int take_deepseek_call(qfit_toolparse *p)
{
    int k = p->n_calls + 1;
    char *b = p->body.p, *end = b + p->body.len;
    char *sep = memmem(b, p->body.len, DS_SEP, strlen(DS_SEP));
    if (!sep) return pfail(p, "tool call %d: no %s in the call", k, DS_SEP);
    char *name = b, *name_end = sep, *args = sep + strlen(DS_SEP), *args_end = end;
    char *fence = memmem(args, (size_t)(end - args), "```json", 7);
    if (fence) { /* R1: the name follows the separator, the arguments are fenced */
        name = args;
        name_end = fence;
        args = fence + 7;
        while (args_end > args && is_ws(args_end[-1])) args_end--;
        if (args_end - args < 3 || memcmp(args_end - 3, "```", 3))
            return pfail(p, "tool call %d: the ```json block is not closed", k);
        args_end -= 3;
    }
    while (name < name_end && is_ws(*name)) name++;
    while (name_end > name && is_ws(name_end[-1])) name_end--;
    if (name_end - name >= MAX_NAME) return pfail(p, "tool call %d: tool name longer than %d bytes", k, MAX_NAME - 1);
    free(p->call_name);
    p->call_name = strndup(name, (size_t)(name_end - name));
    if (!p->call_name) return oom(p);
    size_t n = (size_t)(args_end - args);
    memmove(p->body.p, args, n);
    p->body.len = n;
    p->body.p[n] = 0;
    p->shape = SH_ARGS;
    return complete_body(p);
}

/* The body is complete: interpret it by shape. For SH_CANDIDATE, returns 1
 * when it is not a call (the caller makes it content). */
static int complete_body(qfit_toolparse *p)
{
    int k = p->n_calls + 1;
    json_error_t je;
    size_t i = 0;
    while (i < p->body.len && is_ws(p->body.p[i])) i++;
    if (p->shape == SH_ARGS && i == p->body.len) return add_call(p, p->call_name, json_object()); /* "" = no arguments */
    if (p->shape == SH_CALL && p->until_tag && i < p->body.len && p->body.p[i] == '<')
        return take_xml_call(p, p->body.p, p->body.len); /* Qwen3-Coder */
    if (p->shape == SH_DEEPSEEK) return take_deepseek_call(p);
    if (too_deep(p->body.p, p->body.len)) {
        if (p->shape == SH_CANDIDATE) return 1;
        return pfail(p, "tool call %d: JSON nested deeper than %d", k, QFIT_TOOLCALL_MAX_DEPTH);
    }
    json_t *v = json_loadb(p->body.p, p->body.len, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        if (p->shape == SH_CANDIDATE) return 1;
        return pfail(p, "tool call %d%s%s%s: invalid JSON at %d:%d: %s", k, p->call_name ? " (" : "",
                     p->call_name ? p->call_name : "", p->call_name ? ")" : "", je.line, je.column, je.text);
    }
    int rc;
    switch (p->shape) {
    case SH_ARGS:
        return add_call(p, p->call_name, v);
    case SH_CALLS:
        if (json_is_array(v)) {
            size_t j;
            json_t *e;
            rc = 0;
            json_array_foreach(v, j, e)
                if ((rc = take_call_object(p, e, true))) break;
        } else {
            rc = take_call_object(p, v, true);
        }
        break;
    case SH_CANDIDATE:
        rc = json_is_object(v) ? take_call_object(p, v, false) : 1;
        break;
    default:
        rc = take_call_object(p, v, true);
        break;
    }
    json_decref(v);
    return rc;
}

static void start_body(qfit_toolparse *p, shape sh, bool until_tag)
{
    sb_clear(&p->body);
    p->shape = sh;
    p->until_tag = until_tag;
    memset(&p->js, 0, sizeof p->js);
    p->st = S_BODY;
}

/* After a call: drop the name, look for the next one. */
static int end_body(qfit_toolparse *p, int rc)
{
    free(p->call_name);
    p->call_name = NULL;
    sb_clear(&p->body);
    if (rc < 0) return -1;
    p->st = p->fmt == QFIT_TOOLCALL_DEEPSEEK ? S_DS_GAP : S_AFTER_CALL;
    return 0;
}

/* ------------------------------------------------------------ harmony */

/* Header text between <|start|> (or <|channel|>) and <|message|>:
 * "assistant<|channel|>commentary to=functions.get_weather <|constrain|>json". */
static int harmony_header(qfit_toolparse *p, const char *h, size_t n)
{
    char hdr[MAX_HEADER + 1];
    memcpy(hdr, h, n);
    hdr[n] = 0;
    char channel[64] = "", recipient[MAX_NAME] = "";
    const char *c = strstr(hdr, "<|channel|>");
    if (c) {
        c += strlen("<|channel|>");
        size_t k = strcspn(c, " \t\n<");
        snprintf(channel, sizeof channel, "%.*s", (int)(k < 63 ? k : 63), c);
    }
    const char *t = strstr(hdr, "to=");
    if (t) {
        t += 3;
        size_t k = strcspn(t, " \t\n<");
        if (k >= sizeof recipient) return pfail(p, "harmony: recipient longer than %d bytes", MAX_NAME - 1);
        snprintf(recipient, sizeof recipient, "%.*s", (int)k, t);
    }
    if (recipient[0]) {
        const char *name = strncmp(recipient, "functions.", 10) ? recipient : recipient + 10;
        p->call_name = strdup(name);
        if (!p->call_name) return oom(p);
        sb_clear(&p->body);
        p->h_dest = D_BODY;
    } else if (!strcmp(channel, "analysis")) {
        p->h_dest = D_THINKING;
    } else {
        p->h_dest = D_CONTENT; /* final, commentary without recipient, or none */
    }
    p->st = H_BODY;
    return 0;
}

/* End of a harmony message: a tool message becomes a call. */
static int harmony_end(qfit_toolparse *p)
{
    int rc = 0;
    if (p->h_dest == D_BODY) {
        p->shape = SH_ARGS;
        rc = complete_body(p);
        free(p->call_name);
        p->call_name = NULL;
        sb_clear(&p->body);
    }
    p->st = H_BETWEEN;
    return rc;
}

/* ------------------------------------------------------------ the steps */

/* The undecided input from p->off on; consumed bytes only move the offset
 * (the buffer is compacted once per feed, so a long text with many markers
 * costs linear time). */
typedef struct {
    const char *p; /* NUL-terminated (the buffer's terminator) */
    size_t      len;
} view;

static void consume(qfit_toolparse *p, view *in, size_t k)
{
    p->off += k;
    in->p += k;
    in->len -= k;
}

/* A bare JSON answer (JSON format) that is not a call, too deep or too big to
 * be one: it was content all along, as it stands (the body and the next k
 * input bytes, never searched for markers, so that where it ends does not
 * depend on how the text was split); what follows is content too. */
static int candidate_is_content(qfit_toolparse *p, view *in, size_t k)
{
    if (emit(p, D_CONTENT, p->body.p, p->body.len) || emit(p, D_CONTENT, in->p, k)) return -1;
    consume(p, in, k);
    sb_clear(&p->body);
    p->st = S_CONTENT;
    return 1;
}

/* Emit what cannot be markup, act on the marker if one is complete.
 * Returns 1 if progress was made, 0 if waiting for more input, -1 on error. */
static int step(qfit_toolparse *p)
{
    view v = { p->in.p + p->off, p->in.len - p->off }, *in = &v;
    const marker *m = NULL;
    size_t at = 0;

    switch (p->st) {
    case S_START: {
        size_t ws = strspn(in->p, " \t\r\n");
        if (ws == in->len) return 0;
        size_t ol = strlen(p->think_open->s), rest = in->len - ws;
        if (rest >= ol && !memcmp(in->p + ws, p->think_open->s, ol)) {
            consume(p, in, ws + ol);
            p->st = S_THINK_LEAD;
            return 1;
        }
        if (rest < ol && !memcmp(in->p + ws, p->think_open->s, rest)) return 0;
        p->st = S_LEAD; /* no thinking block: the whitespace is content */
        return 1;
    }
    case S_THINK_LEAD:
    case S_AFTER_THINK:
    case S_AFTER_CALL:
    case S_DS_GAP: {
        size_t ws = strspn(in->p, p->st == S_AFTER_CALL && p->fmt == QFIT_TOOLCALL_JSON ? " \t\r\n;" : " \t\r\n");
        consume(p, in, ws);
        if (!in->len) return 0;
        p->st = p->st == S_THINK_LEAD ? S_THINK : p->st == S_DS_GAP ? S_DS_SECTION : S_LEAD;
        return 1;
    }
    case S_LEAD: {
        if (p->fmt != QFIT_TOOLCALL_JSON) { p->st = S_CONTENT; return 1; }
        size_t ws = strspn(in->p, " \t\r\n");
        if (ws == in->len) return 0;
        if (in->p[ws] == '{') {
            start_body(p, SH_CANDIDATE, false); /* the whitespace too: content if it is no call */
        } else {
            p->st = S_CONTENT;
        }
        return 1;
    }
    case S_THINK:
    case S_CONTENT:
    case S_DS_SECTION:
    case S_MISTRAL:
    case H_BETWEEN:
    case H_HEADER:
    case H_BODY:
        break;
    case S_BODY:
        if (!p->until_tag) { /* one JSON value */
            bool cand = p->shape == SH_CANDIDATE;
            size_t i, lim = in->len;
            if (cand && lim > QFIT_TOOLCALL_MAX_BODY - p->body.len) lim = QFIT_TOOLCALL_MAX_BODY - p->body.len;
            int r = 0;
            for (i = 0; i < lim && r == 0; i++) r = jscan_byte(&p->js, in->p[i]);
            if (r < 0 && cand) return candidate_is_content(p, in, i - 1); /* too deep: content up to there */
            if (r < 0)
                return pfail(p, "tool call %d: %s", p->n_calls + 1,
                             p->js.started ? "JSON nested too deeply" : "expected a JSON object or array");
            if (r == 0 && cand && p->body.len + i == QFIT_TOOLCALL_MAX_BODY)
                return candidate_is_content(p, in, i); /* too big to be a call */
            if (emit(p, D_BODY, in->p, i)) return -1;
            consume(p, in, i);
            if (r == 0) return 0;
            int rc = complete_body(p);
            if (rc == 1) return candidate_is_content(p, in, 0);
            return end_body(p, rc) ? -1 : 1;
        }
        break;
    default:
        return 0;
    }

    /* marker states */
    const marker *set;
    size_t nset;
    dest d;
    switch (p->st) {
    case S_THINK:   set = p->think_close; nset = 1; d = D_THINKING; break;
    case S_BODY:
        set = p->fmt == QFIT_TOOLCALL_DEEPSEEK ? MK_DS_CALL_END : MK_HERMES_END;
        nset = 1;
        d = D_BODY;
        break;
    case S_DS_SECTION: set = MK_DS_SECTION; nset = NM(MK_DS_SECTION); d = D_CONTENT; break;
    case S_MISTRAL: set = MK_MISTRAL_ARGS; nset = 1; d = D_BODY; break;
    case H_BETWEEN: set = MK_H_BETWEEN; nset = NM(MK_H_BETWEEN); d = D_CONTENT; break;
    case H_HEADER:  set = MK_H_HEADER; nset = 1; d = D_BODY; break;
    case H_BODY:    set = MK_H_BODY; nset = NM(MK_H_BODY); d = p->h_dest; break;
    default: /* S_CONTENT */
        d = D_CONTENT;
        switch (p->fmt) {
        case QFIT_TOOLCALL_JSON:    set = MK_JSON; nset = NM(MK_JSON); break;
        case QFIT_TOOLCALL_HERMES:  set = MK_HERMES; nset = NM(MK_HERMES); break;
        case QFIT_TOOLCALL_MISTRAL: set = MK_MISTRAL; nset = NM(MK_MISTRAL); break;
        case QFIT_TOOLCALL_DEEPSEEK: set = MK_DEEPSEEK; nset = NM(MK_DEEPSEEK); break;
        default:                    set = NULL; nset = 0; break;
        }
    }

    if (p->st == S_MISTRAL) { /* '[' starts the array form, else NAME[ARGS] */
        size_t ws = strspn(in->p, " \t\r\n");
        if (ws == in->len) return 0;
        if (p->body.len == 0 && in->p[ws] == '[') {
            consume(p, in, ws);
            start_body(p, SH_CALLS, false);
            return 1;
        }
    }

    int found = set ? scan(in->p, in->len, set, nset, &m, &at) : 0;
    if (!set) at = in->len;
    if (p->st == S_MISTRAL && p->body.len + at > MAX_NAME)
        return pfail(p, "tool call %d: no [ARGS] within %d bytes of [TOOL_CALLS]", p->n_calls + 1, MAX_NAME);
    if (p->st == H_HEADER && p->body.len + at > MAX_HEADER)
        return pfail(p, "harmony: message header longer than %d bytes", MAX_HEADER);
    if (emit(p, d, in->p, at)) return -1;
    if (!found) {
        consume(p, in, at);
        return 0;
    }
    consume(p, in, at + strlen(m->s));

    switch (m->a) {
    case A_THINK_CLOSE: p->st = S_AFTER_THINK; return 1;
    case A_HERMES:      start_body(p, SH_CALL, true); return 1;
    case A_PYTHON_TAG:  start_body(p, SH_CALL, false); return 1;
    case A_MISTRAL:     sb_clear(&p->body); p->st = S_MISTRAL; return 1;
    case A_DROP:        return 1;
    case A_CALL_END:    return end_body(p, complete_body(p)) ? -1 : 1;
    case A_DS_SECTION:  p->st = S_DS_GAP; return 1;
    case A_DS_CALL:     start_body(p, SH_DEEPSEEK, true); return 1;
    case A_DS_SECTION_END: p->st = S_AFTER_CALL; return 1;
    case A_ARGS: {
        size_t a = 0, b = p->body.len; /* trim the name */
        while (a < b && is_ws(p->body.p[a])) a++;
        while (b > a && is_ws(p->body.p[b - 1])) b--;
        p->call_name = strndup(p->body.p + a, b - a);
        if (!p->call_name) return oom(p);
        start_body(p, SH_ARGS, false);
        return 1;
    }
    case A_H_MESSAGE: {
        int rc = harmony_header(p, p->body.p, p->body.len);
        sb_clear(&p->body);
        return rc ? -1 : 1;
    }
    case A_H_END:
        return harmony_end(p) ? -1 : 1;
    case A_H_START:
    case A_H_CHANNEL:
        if (p->st == H_BODY && harmony_end(p)) return -1;
        sb_clear(&p->body);
        if (m->a == A_H_CHANNEL && sb_add(&p->body, "<|channel|>", strlen("<|channel|>"))) return oom(p);
        p->st = H_HEADER;
        return 1;
    case A_THINK_OPEN: /* only at the start: S_START matches it itself */
        break;
    }
    return 1;
}

/* ------------------------------------------------------------ public */

static const char *const FORMAT_NAMES[QFIT_TOOLCALL_FORMAT_COUNT] = {
    "none", "json", "hermes", "mistral", "harmony", "deepseek",
};

const char *qfit_toolcall_format_name(qfit_toolcall_format f)
{
    return (unsigned)f < QFIT_TOOLCALL_FORMAT_COUNT ? FORMAT_NAMES[f] : "?";
}

int qfit_toolcall_format_parse(const char *name, qfit_toolcall_format *out, char *err, size_t err_len)
{
    static const struct { const char *n; qfit_toolcall_format f; } alias[] = {
        { "llama3", QFIT_TOOLCALL_JSON }, { "qwen", QFIT_TOOLCALL_HERMES }, { "gpt-oss", QFIT_TOOLCALL_HARMONY },
    };
    for (int f = 0; name && f < QFIT_TOOLCALL_FORMAT_COUNT; f++)
        if (!strcmp(name, FORMAT_NAMES[f])) { *out = (qfit_toolcall_format)f; return 0; }
    for (size_t i = 0; name && i < NM(alias); i++)
        if (!strcmp(name, alias[i].n)) { *out = alias[i].f; return 0; }
    if (err && err_len)
        snprintf(err, err_len, "unknown tool-call format \"%.64s\" (known: none, json, hermes, mistral, harmony, "
                 "deepseek, llama3, qwen, gpt-oss)", name ? name : "(null)");
    return -1;
}

qfit_toolcall_format qfit_toolcall_detect(const char *t)
{
    if (!t) return QFIT_TOOLCALL_NONE;
    if (strstr(t, "<|channel|>") && strstr(t, "<|message|>")) return QFIT_TOOLCALL_HARMONY;
    if (strstr(t, "[TOOL_CALLS]")) return QFIT_TOOLCALL_MISTRAL;
    if (strstr(t, "tool\u2581calls\u2581begin")) return QFIT_TOOLCALL_DEEPSEEK;
    if (strstr(t, "<tool_call>")) return QFIT_TOOLCALL_HERMES;
    if (strstr(t, "<|python_tag|>")) return QFIT_TOOLCALL_JSON;
    /* tools without a tag of their own: Ollama's "{" (a bare JSON answer) */
    if (strstr(t, "tool") || strstr(t, "Tool")) return QFIT_TOOLCALL_JSON;
    return QFIT_TOOLCALL_NONE;
}

bool qfit_toolcall_prompt_opens_thinking(const char *prompt, size_t len)
{
    while (len && is_ws(prompt[len - 1])) len--;
    static const char *const open[] = { "<think>", "[THINK]" };
    for (size_t i = 0; i < NM(open); i++) {
        size_t n = strlen(open[i]);
        if (len >= n && !memcmp(prompt + len - n, open[i], n)) return true;
    }
    return false;
}

/* Each tool: {"type":"function","function":{"name": unique string, "parameters": checkable schema}}. */
static int check_tools(const json_t *tools, char *err, size_t err_len)
{
    if (!json_is_array(tools)) {
        snprintf(err, err_len, "tools: not a JSON array");
        return -1;
    }
    size_t i, j;
    const json_t *t;
    json_array_foreach(tools, i, t) {
        const json_t *f = json_object_get(t, "function");
        const json_t *name = json_object_get(f, "name");
        if (!json_is_object(f) || !json_is_string(name) || !json_string_length(name)) {
            snprintf(err, err_len, "tools[%zu]: no \"function\" object with a \"name\" string", i);
            return -1;
        }
        const json_t *type = json_object_get(t, "type");
        if (type && !(json_is_string(type) && !strcmp(json_string_value(type), "function"))) {
            snprintf(err, err_len, "tools[%zu] (%s): type is not \"function\"", i, json_string_value(name));
            return -1;
        }
        for (j = 0; j < i; j++)
            if (json_equal(name, json_object_get(json_object_get(json_array_get(tools, j), "function"), "name"))) {
                snprintf(err, err_len, "tools[%zu]: duplicate tool name \"%s\"", i, json_string_value(name));
                return -1;
            }
        const json_t *params = json_object_get(f, "parameters");
        char why[384];
        if (params && tc_schema_check(params, "parameters", why, sizeof why)) {
            snprintf(err, err_len, "tools[%zu] (%s): %s", i, json_string_value(name), why);
            return -1;
        }
    }
    return 0;
}

qfit_toolparse *qfit_toolparse_new(qfit_toolcall_format format, bool thinking_enabled, bool starts_in_thinking,
                                   const json_t *tools, char *err, size_t err_len)
{
    char scratch[8];
    if (!err || !err_len) { err = scratch; err_len = sizeof scratch; }
    if ((unsigned)format >= QFIT_TOOLCALL_FORMAT_COUNT) {
        snprintf(err, err_len, "unknown tool-call format %d", (int)format);
        return NULL;
    }
    if (tools && check_tools(tools, err, err_len)) return NULL;
    qfit_toolparse *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    p->fmt = format;
    p->think_on = thinking_enabled;
    p->tools = tools ? json_incref((json_t *)tools) : NULL;
    bool mistral = format == QFIT_TOOLCALL_MISTRAL;
    p->think_open = mistral ? MK_MTHINK_OPEN : MK_THINK_OPEN;
    p->think_close = mistral ? MK_MTHINK_CLOSE : MK_THINK_CLOSE;
    if (format == QFIT_TOOLCALL_HARMONY) {
        p->st = starts_in_thinking ? H_BODY : H_BETWEEN;
        p->h_dest = D_THINKING;
    } else {
        p->st = starts_in_thinking ? S_THINK_LEAD : S_START;
    }
    /* every buffer allocated from the start: their pointers are never NULL */
    if (sb_add(&p->in, "", 0) || sb_add(&p->body, "", 0) || sb_add(&p->content, "", 0) ||
        sb_add(&p->thinking, "", 0)) {
        qfit_toolparse_free(p);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    return p;
}

static void clear_out(qfit_toolparse *p)
{
    for (size_t i = 0; i < p->n_out; i++) {
        free(p->calls[i].name);
        json_decref(p->calls[i].arguments);
    }
    p->n_out = 0;
    sb_clear(&p->content);
    sb_clear(&p->thinking);
}

void qfit_toolparse_free(qfit_toolparse *p)
{
    if (!p) return;
    clear_out(p);
    free(p->calls);
    free(p->in.p);
    free(p->body.p);
    free(p->content.p);
    free(p->thinking.p);
    free(p->call_name);
    json_decref(p->tools);
    free(p);
}

static int report(qfit_toolparse *p, int rc, qfit_toolparse_delta *out, char *err, size_t err_len)
{
    if (rc < 0) {
        if (err && err_len) snprintf(err, err_len, "%s", p->failed);
        if (out) memset(out, 0, sizeof *out);
        return -1;
    }
    if (out) {
        out->content = p->content.p;
        out->content_len = p->content.len;
        out->thinking = p->thinking.p;
        out->thinking_len = p->thinking.len;
        out->calls = p->calls;
        out->n_calls = p->n_out;
    }
    return 0;
}

int qfit_toolparse_feed(qfit_toolparse *p, const char *text, size_t len, qfit_toolparse_delta *out,
                        char *err, size_t err_len)
{
    clear_out(p);
    if (p->st == S_FINISHED) pfail(p, "text fed after the end of generation");
    if (p->st == S_FAILED) return report(p, -1, out, err, err_len);
    if (len && sb_add(&p->in, text, len)) return report(p, oom(p), out, err, err_len);
    int r;
    while ((r = step(p)) > 0) {}
    sb_drop_front(&p->in, p->off);
    p->off = 0;
    return report(p, r, out, err, err_len);
}

/* End of generation in each state: see the rules in the header. */
int qfit_toolparse_finish(qfit_toolparse *p, qfit_toolparse_delta *out, char *err, size_t err_len)
{
    clear_out(p);
    if (p->st == S_FINISHED) pfail(p, "generation finished twice");
    if (p->st == S_FAILED) return report(p, -1, out, err, err_len);
    int rc = 0, k = p->n_calls + 1;
    sbuf *in = &p->in;
    switch (p->st) {
    case S_THINK:
    case S_THINK_LEAD:
        rc = emit(p, D_THINKING, in->p, in->len);
        break;
    case S_BODY:
        if (p->shape == SH_CANDIDATE) { /* a JSON answer that never closed: content */
            rc = emit(p, D_CONTENT, p->body.p, p->body.len);
            if (!rc) rc = emit(p, D_CONTENT, in->p, in->len);
            break;
        }
        if (p->until_tag) { /* what is held is a cut-off end marker: not part of the body */
            char saved[sizeof p->failed];
            rc = complete_body(p);
            if (rc < 0) { /* the body is not a complete call: say it was cut off */
                snprintf(saved, sizeof saved, "%s", p->failed);
                rc = pfail(p, "unterminated tool call %d (no %s): %s", k,
                           p->fmt == QFIT_TOOLCALL_DEEPSEEK ? DS_CALL_END : "</tool_call>", saved);
            }
            break;
        }
        rc = pfail(p, "unterminated tool call %d: the JSON %s was not closed", k,
                   p->shape == SH_ARGS ? "arguments object" : "call");
        break;
    case S_MISTRAL:
        rc = pfail(p, "unterminated tool call %d: [TOOL_CALLS] without [ARGS] or a call list", k);
        break;
    case H_HEADER:
        if (strstr(p->body.p, "to=") || strstr(in->p, "to="))
            rc = pfail(p, "unterminated tool call %d: generation ended inside its harmony header", k);
        break; /* an unfinished header of a plain message is markup, not content */
    case H_BODY:
        if (!(rc = emit(p, p->h_dest, in->p, in->len))) rc = harmony_end(p);
        break;
    case S_AFTER_CALL:
    case S_DS_GAP:
    case S_AFTER_THINK:
        break; /* only whitespace is held there */
    default: /* S_START, S_LEAD, S_CONTENT, H_BETWEEN: held text was not markup */
        rc = emit(p, D_CONTENT, in->p, in->len);
        break;
    }
    if (rc >= 0) {
        sb_clear(in);
        p->st = S_FINISHED;
    }
    return report(p, rc < 0 ? -1 : 0, out, err, err_len);
}

/* ------------------------------------------------------------ whole text */

void qfit_toolcall_result_free(qfit_toolcall_result *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_calls; i++) {
        free(r->calls[i].name);
        json_decref(r->calls[i].arguments);
    }
    free(r->calls);
    free(r->content);
    free(r->thinking);
    memset(r, 0, sizeof *r);
}

/* Append a delta to a result. */
static int collect(qfit_toolcall_result *r, const qfit_toolparse_delta *d, sbuf *content, sbuf *thinking)
{
    if (sb_add(content, d->content, d->content_len) || sb_add(thinking, d->thinking, d->thinking_len)) return -1;
    if (!d->n_calls) return 0;
    qfit_toolcall *c = realloc(r->calls, (r->n_calls + d->n_calls) * sizeof *c);
    if (!c) return -1;
    r->calls = c;
    for (size_t i = 0; i < d->n_calls; i++) {
        qfit_toolcall *o = &r->calls[r->n_calls];
        *o = d->calls[i];
        o->name = strdup(d->calls[i].name);
        if (!o->name) return -1;
        json_incref(o->arguments);
        r->n_calls++;
    }
    return 0;
}

int qfit_toolparse_text(qfit_toolcall_format format, bool thinking_enabled, bool starts_in_thinking,
                        const json_t *tools, const char *text, size_t len, qfit_toolcall_result *out,
                        char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    qfit_toolparse *p = qfit_toolparse_new(format, thinking_enabled, starts_in_thinking, tools, err, err_len);
    if (!p) return -1;
    sbuf content = { 0 }, thinking = { 0 };
    qfit_toolparse_delta d;
    int rc = qfit_toolparse_feed(p, text, len, &d, err, err_len);
    if (!rc && collect(out, &d, &content, &thinking)) rc = -2;
    if (!rc) rc = qfit_toolparse_finish(p, &d, err, err_len);
    if (!rc && collect(out, &d, &content, &thinking)) rc = -2;
    if (!rc && (sb_add(&content, "", 0) || sb_add(&thinking, "", 0))) rc = -2;
    qfit_toolparse_free(p);
    if (rc == -2 && err && err_len) snprintf(err, err_len, "out of memory");
    out->content = content.p;
    out->content_len = content.len;
    out->thinking = thinking.p;
    out->thinking_len = thinking.len;
    if (rc) {
        qfit_toolcall_result_free(out);
        return -1;
    }
    return 0;
}
