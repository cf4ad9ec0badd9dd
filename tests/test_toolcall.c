/* Tests for src/toolcall: content / thinking / tool-call split of generated text.
 *
 * Vectors are data: tests/data/toolcall/ollama_vectors.json (Ollama's own test
 * cases from tools/, thinking/ and harmony/, see the README there) and
 * qfit_cases.json (the other formats, schema checks and end-of-generation
 * rules). Every vector is run whole (qfit_toolparse_text), one byte at a time,
 * split in two at every byte boundary and in random chunks: all must give the
 * same content, thinking and calls.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/toolcall.h"
#include "util/testutil.h"

/* ------------------------------------------------------------ running a case */

typedef struct {
    char   *content, *thinking;
    size_t  content_len, thinking_len;
    json_t *calls; /* [{"name", "arguments", "id", "index"}] */
    int     rc;
    char    err[512];
} outcome;

static void append(char **s, size_t *n, const char *add, size_t k)
{
    *s = realloc(*s, *n + k + 1);
    cr_assert(*s);
    memcpy(*s + *n, add, k);
    *n += k;
    (*s)[*n] = 0;
}

static void take(outcome *o, const qfit_toolparse_delta *d)
{
    cr_assert(d->content && d->thinking, "delta strings are never NULL");
    cr_assert_eq(strlen(d->content), d->content_len);
    append(&o->content, &o->content_len, d->content, d->content_len);
    append(&o->thinking, &o->thinking_len, d->thinking, d->thinking_len);
    for (size_t i = 0; i < d->n_calls; i++)
        json_array_append_new(o->calls, json_pack("{s:s, s:O, s:s, s:i}", "name", d->calls[i].name, "arguments",
                                                  d->calls[i].arguments, "id", d->calls[i].id, "index",
                                                  d->calls[i].index));
}

static void outcome_init(outcome *o)
{
    memset(o, 0, sizeof *o);
    o->calls = json_array();
    append(&o->content, &o->content_len, "", 0);
    append(&o->thinking, &o->thinking_len, "", 0);
}

static void outcome_free(outcome *o)
{
    free(o->content);
    free(o->thinking);
    json_decref(o->calls);
}

typedef struct {
    qfit_toolcall_format fmt;
    bool                 think, starts;
    const json_t        *tools;
} opts;

/* Feed text cut at the given lengths (cuts[i] bytes each, until the text ends). */
static void run_cuts(outcome *o, const opts *op, const char *text, size_t n, const size_t *cuts, size_t n_cuts)
{
    outcome_init(o);
    qfit_toolparse *p = qfit_toolparse_new(op->fmt, op->think, op->starts, op->tools, o->err, sizeof o->err);
    cr_assert(p, "new: %s", o->err);
    qfit_toolparse_delta d;
    size_t at = 0;
    for (size_t i = 0; at < n; i++) {
        size_t k = i < n_cuts ? cuts[i] : n - at;
        if (k > n - at) k = n - at;
        o->rc = qfit_toolparse_feed(p, text + at, k, &d, o->err, sizeof o->err);
        if (o->rc) break;
        take(o, &d);
        at += k;
    }
    if (!o->rc) {
        o->rc = qfit_toolparse_finish(p, &d, o->err, sizeof o->err);
        if (!o->rc) take(o, &d);
    }
    qfit_toolparse_free(p);
}

static void run_whole(outcome *o, const opts *op, const char *text, size_t n)
{
    outcome_init(o);
    qfit_toolcall_result r;
    o->rc = qfit_toolparse_text(op->fmt, op->think, op->starts, op->tools, text, n, &r, o->err, sizeof o->err);
    if (o->rc) return;
    qfit_toolparse_delta d = { r.content, r.content_len, r.thinking, r.thinking_len, r.calls, r.n_calls };
    take(o, &d);
    qfit_toolcall_result_free(&r);
}

/* Compare an outcome with the case's expectation; `how` names the split. */
static void check(const outcome *o, const json_t *c, const char *how)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *want_err = json_string_value(json_object_get(c, "error"));
    if (want_err) {
        cr_assert_eq(o->rc, -1, "[%s] %s: expected error \"%s\", got success", name, how, want_err);
        cr_assert(strstr(o->err, want_err), "[%s] %s: error \"%s\" lacks \"%s\"", name, how, o->err, want_err);
        return;
    }
    cr_assert_eq(o->rc, 0, "[%s] %s: unexpected error: %s", name, how, o->err);
    const char *wc = json_string_value(json_object_get(c, "content"));
    const char *wt = json_string_value(json_object_get(c, "thinking"));
    cr_assert_str_eq(o->content, wc, "[%s] %s: content", name, how);
    cr_assert_str_eq(o->thinking, wt, "[%s] %s: thinking", name, how);
    const json_t *wcalls = json_object_get(c, "calls");
    cr_assert_eq(json_array_size(o->calls), json_array_size(wcalls), "[%s] %s: %zu calls, want %zu", name, how,
                 json_array_size(o->calls), json_array_size(wcalls));
    size_t i;
    const json_t *w;
    json_array_foreach(wcalls, i, w) {
        const json_t *g = json_array_get(o->calls, i);
        cr_assert(json_equal(json_object_get(g, "name"), json_object_get(w, "name")), "[%s] %s: call %zu name", name,
                  how, i);
        cr_assert(json_equal(json_object_get(g, "arguments"), json_object_get(w, "arguments")),
                  "[%s] %s: call %zu arguments", name, how, i);
        cr_assert_eq(json_integer_value(json_object_get(g, "index")), (json_int_t)i);
    }
}

static json_t *load_vectors(const char *file)
{
    char path[256];
    snprintf(path, sizeof path, "tests/data/toolcall/%s", file);
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    cr_assert(doc, "%s: %s at %d:%d", path, je.text, je.line, je.column);
    return doc;
}

static opts case_opts(const json_t *doc, const json_t *c)
{
    opts op = { 0 };
    char err[128];
    cr_assert_eq(qfit_toolcall_format_parse(json_string_value(json_object_get(c, "format")), &op.fmt, err, sizeof err), 0,
                 "%s", err);
    const json_t *think = json_object_get(c, "think");
    op.think = think ? json_is_true(think) : true;
    op.starts = json_is_true(json_object_get(c, "starts_in_thinking"));
    const json_t *tools = json_object_get(c, "tools"); /* true: the file's tools; or the case's own list */
    op.tools = json_is_true(tools) ? json_object_get(doc, "tools") : json_is_array(tools) ? tools : NULL;
    return op;
}

/* Every case of a vector file, in every split. Returns the number of cases. */
static size_t run_file(const char *file)
{
    json_t *doc = load_vectors(file);
    const json_t *cases = json_object_get(doc, "cases");
    cr_assert(json_array_size(cases) > 0);
    size_t i;
    const json_t *c;
    uint32_t rng = 12345;
    json_array_foreach(cases, i, c) {
        opts op = case_opts(doc, c);
        const char *text = json_string_value(json_object_get(c, "input"));
        size_t n = strlen(text);
        outcome o;
        char how[64];

        run_whole(&o, &op, text, n);
        check(&o, c, "whole");
        outcome_free(&o);

        size_t *ones = malloc((n + 1) * sizeof *ones);
        for (size_t k = 0; k <= n; k++) ones[k] = 1;
        run_cuts(&o, &op, text, n, ones, n);
        check(&o, c, "byte by byte");
        outcome_free(&o);

        for (size_t k = 0; k <= n; k++) {
            size_t cut[1] = { k };
            run_cuts(&o, &op, text, n, cut, 1);
            snprintf(how, sizeof how, "split at byte %zu", k);
            check(&o, c, how);
            outcome_free(&o);
        }
        for (int trial = 0; trial < 8; trial++) {
            for (size_t k = 0; k <= n; k++) {
                rng = rng * 1664525u + 1013904223u;
                ones[k] = 1 + (rng >> 16) % 9;
            }
            run_cuts(&o, &op, text, n, ones, n + 1);
            snprintf(how, sizeof how, "random chunks, trial %d", trial);
            check(&o, c, how);
            outcome_free(&o);
        }
        free(ones);
    }
    size_t count = json_array_size(cases);
    json_decref(doc);
    return count;
}

Test(toolcall, ollama_vectors)
{
    cr_assert_geq(run_file("ollama_vectors.json"), 30);
}

Test(toolcall, qfit_cases)
{
    cr_assert_geq(run_file("qfit_cases.json"), 40);
}

/* ------------------------------------------------------------ streaming promptness */

static void feed_expect(qfit_toolparse *p, const char *in, const char *content, const char *thinking, size_t n_calls)
{
    qfit_toolparse_delta d;
    char err[256];
    cr_assert_eq(qfit_toolparse_feed(p, in, strlen(in), &d, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(d.content, content, "after feeding \"%s\"", in);
    cr_assert_str_eq(d.thinking, thinking, "after feeding \"%s\"", in);
    cr_assert_eq(d.n_calls, n_calls, "after feeding \"%s\"", in);
}

/* Text is handed out as soon as it cannot be markup; only a marker prefix waits. */
Test(toolcall, streams_without_holding_back)
{
    char err[256];
    qfit_toolparse *p = qfit_toolparse_new(QFIT_TOOLCALL_HERMES, true, false, NULL, err, sizeof err);
    cr_assert(p, "%s", err);
    feed_expect(p, "<th", "", "", 0);
    feed_expect(p, "ink>Plan", "", "Plan", 0);
    feed_expect(p, " more</thi", "", " more", 0);
    feed_expect(p, "nk>Let me check. <tool_", "Let me check. ", "", 0);
    feed_expect(p, "call>{\"name\": \"a\", \"arguments\": {}}", "", "", 0);
    feed_expect(p, "</tool_call>", "", "", 1);
    feed_expect(p, "Done <", "Done ", "", 0);
    feed_expect(p, "3", "<3", "", 0);
    qfit_toolparse_free(p);

    p = qfit_toolparse_new(QFIT_TOOLCALL_HARMONY, true, false, NULL, err, sizeof err);
    cr_assert(p, "%s", err);
    feed_expect(p, "<|channel|>analysis<|message|>Hm", "", "Hm", 0);
    feed_expect(p, "m<|e", "", "m", 0);
    feed_expect(p, "nd|><|start|>assistant<|channel|>final<|message|>Hi", "Hi", "", 0);
    qfit_toolparse_free(p);
}

/* Ids as OpenAI wants them: "call_" + 16 hex digits, distinct; indexes count up. */
Test(toolcall, call_ids)
{
    const char *text = "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>"
                       "<tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>";
    qfit_toolcall_result r;
    char err[256];
    cr_assert_eq(qfit_toolparse_text(QFIT_TOOLCALL_HERMES, false, false, NULL, text, strlen(text), &r, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(r.n_calls, 2);
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(strlen(r.calls[i].id), 21, "%s", r.calls[i].id);
        cr_assert_eq(strncmp(r.calls[i].id, "call_", 5), 0);
        cr_assert_eq(strspn(r.calls[i].id + 5, "0123456789abcdef"), 16);
        cr_assert_eq(r.calls[i].index, (int)i);
    }
    cr_assert_str_neq(r.calls[0].id, r.calls[1].id);
    qfit_toolcall_result_free(&r);
}

/* ------------------------------------------------------------ limits */

static int feed_all(qfit_toolparse *p, const char *s, size_t n, size_t chunk, char *err, size_t err_len)
{
    qfit_toolparse_delta d;
    for (size_t at = 0; at < n; at += chunk)
        if (qfit_toolparse_feed(p, s + at, n - at < chunk ? n - at : chunk, &d, err, err_len)) return -1;
    return qfit_toolparse_finish(p, &d, err, err_len);
}

Test(toolcall, body_larger_than_limit)
{
    size_t big = QFIT_TOOLCALL_MAX_BODY + 100;
    const char *head = "<tool_call>{\"name\": \"a\", \"arguments\": {\"s\": \"";
    char *s = malloc(strlen(head) + big + 1);
    strcpy(s, head);
    memset(s + strlen(head), 'x', big);
    s[strlen(head) + big] = 0;
    char err[256] = "";
    qfit_toolparse *p = qfit_toolparse_new(QFIT_TOOLCALL_HERMES, false, false, NULL, err, sizeof err);
    cr_assert_eq(feed_all(p, s, strlen(s), 4096, err, sizeof err), -1);
    cr_assert(strstr(err, "tool call 1: body is larger than 1048576 bytes"), "%s", err);
    /* the error sticks */
    qfit_toolparse_delta d;
    cr_assert_eq(qfit_toolparse_feed(p, "x", 1, &d, err, sizeof err), -1);
    cr_assert(strstr(err, "larger than"), "%s", err);
    qfit_toolparse_free(p);

    /* a Mistral array grows the same way */
    memcpy(s, "[TOOL_CALLS][\"", 14);
    memset(s + 14, 'y', strlen(head) - 14);
    p = qfit_toolparse_new(QFIT_TOOLCALL_MISTRAL, false, false, NULL, err, sizeof err);
    cr_assert_eq(feed_all(p, s, strlen(s), 65536, err, sizeof err), -1);
    cr_assert(strstr(err, "larger than"), "%s", err);
    qfit_toolparse_free(p);
    free(s);
}

Test(toolcall, nesting_depth)
{
    char s[512];
    int n = snprintf(s, sizeof s, "<tool_call>{\"name\": \"a\", \"arguments\": {\"x\": ");
    for (int i = 0; i < 100; i++) s[n++] = '[';
    for (int i = 0; i < 100; i++) s[n++] = ']';
    n += snprintf(s + n, sizeof s - (size_t)n, "}}</tool_call>");
    char err[256] = "";
    qfit_toolcall_result r;
    cr_assert_eq(qfit_toolparse_text(QFIT_TOOLCALL_HERMES, false, false, NULL, s, (size_t)n, &r, err, sizeof err), -1);
    cr_assert(strstr(err, "nested deeper than 64"), "%s", err);

    /* Mistral's streamed array stops at the limit without waiting for the end */
    n = snprintf(s, sizeof s, "[TOOL_CALLS]");
    for (int i = 0; i < 100; i++) s[n++] = '[';
    cr_assert_eq(qfit_toolparse_text(QFIT_TOOLCALL_MISTRAL, false, false, NULL, s, (size_t)n, &r, err, sizeof err), -1);
    cr_assert(strstr(err, "nested too deeply"), "%s", err);

    /* a bare JSON answer that deep is not a call: it is content, unchanged */
    n = 0;
    for (int i = 0; i < 100; i++) s[n++] = '{';
    s[n] = 0;
    cr_assert_eq(qfit_toolparse_text(QFIT_TOOLCALL_JSON, false, false, NULL, s, (size_t)n, &r, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(r.content, s);
    qfit_toolcall_result_free(&r);
}

Test(toolcall, too_many_calls)
{
    const char *one = "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>";
    size_t k = strlen(one), count = QFIT_TOOLCALL_MAX_CALLS + 1;
    char *s = malloc(k * count + 1);
    for (size_t i = 0; i < count; i++) memcpy(s + i * k, one, k);
    s[k * count] = 0;
    char err[256] = "";
    qfit_toolcall_result r;
    cr_assert_eq(qfit_toolparse_text(QFIT_TOOLCALL_HERMES, false, false, NULL, s, k * count, &r, err, sizeof err), -1);
    cr_assert(strstr(err, "more than 256 tool calls"), "%s", err);
    cr_assert_eq(qfit_toolparse_text(QFIT_TOOLCALL_HERMES, false, false, NULL, s, k * (count - 1), &r, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(r.n_calls, QFIT_TOOLCALL_MAX_CALLS);
    qfit_toolcall_result_free(&r);
    free(s);
}

/* ------------------------------------------------------------ tools and schemas */

static void expect_tools_refused(const char *tools_json, const char *want)
{
    json_error_t je;
    json_t *tools = json_loads(tools_json, 0, &je);
    cr_assert(tools, "%s", je.text);
    char err[512] = "";
    qfit_toolparse *p = qfit_toolparse_new(QFIT_TOOLCALL_HERMES, false, false, tools, err, sizeof err);
    cr_assert_null(p, "tools %s accepted", tools_json);
    cr_assert(strstr(err, want), "error \"%s\" lacks \"%s\"", err, want);
    json_decref(tools);
}

Test(toolcall, tools_that_cannot_be_checked_are_refused)
{
    expect_tools_refused("[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\","
                         "\"properties\":{\"code\":{\"type\":\"string\",\"pattern\":\"^[A-Z]+$\"}}}}}]",
                         "tools[0] (f): parameters.code: unsupported schema keyword \"pattern\"");
    expect_tools_refused("[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"$ref\":\"#/x\"}}}]",
                         "unsupported schema keyword \"$ref\"");
    expect_tools_refused("[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"thing\"}}}]",
                         "unknown schema type \"thing\"");
    expect_tools_refused("[{\"type\":\"function\",\"function\":{\"description\":\"no name\"}}]",
                         "tools[0]: no \"function\" object with a \"name\" string");
    expect_tools_refused("[{\"function\":{\"name\":\"f\"}},{\"function\":{\"name\":\"f\"}}]",
                         "tools[1]: duplicate tool name \"f\"");
    expect_tools_refused("{\"name\":\"f\"}", "tools: not a JSON array");
}

static void expect_valid(const char *schema, const char *value, const char *want_err)
{
    json_error_t je;
    json_t *s = json_loads(schema, JSON_DECODE_ANY, &je), *v = json_loads(value, JSON_DECODE_ANY, &je);
    cr_assert(s && v, "test JSON: %s", je.text);
    char err[512] = "";
    int rc = qfit_toolcall_validate(s, v, err, sizeof err);
    if (want_err) {
        cr_assert_eq(rc, -1, "%s accepted by %s", value, schema);
        cr_assert(strstr(err, want_err), "error \"%s\" lacks \"%s\"", err, want_err);
    } else {
        cr_assert_eq(rc, 0, "%s refused by %s: %s", value, schema, err);
    }
    json_decref(s);
    json_decref(v);
}

Test(toolcall, schema_validator)
{
    expect_valid("{\"type\":\"integer\"}", "3.0", NULL); /* 3.0 is an integer in JSON schema */
    expect_valid("{\"type\":\"integer\"}", "3.5", "arguments: expected integer, got number");
    expect_valid("{\"type\":[\"string\",\"null\"]}", "null", NULL);
    expect_valid("{\"type\":[\"string\",\"null\"]}", "1", "type integer is not one of the allowed types");
    expect_valid("{\"type\":\"string\",\"minLength\":2}", "\"\u00e9\u00e9\"", NULL); /* 2 code points, 4 bytes */
    expect_valid("{\"type\":\"string\",\"maxLength\":1}", "\"\u00e9\u00e9\"", "string length 2 is more than maxLength 1");
    expect_valid("{\"exclusiveMinimum\":0}", "0", "0 violates exclusiveMinimum 0");
    expect_valid("{\"minimum\":0}", "0", NULL);
    expect_valid("{\"const\":\"on\"}", "\"off\"", "value \"off\" is not the const value");
    expect_valid("{\"oneOf\":[{\"type\":\"number\"},{\"type\":\"integer\"}]}", "1", "matches 2 of oneOf");
    expect_valid("{\"oneOf\":[{\"type\":\"number\"},{\"type\":\"integer\"}]}", "1.5", NULL);
    expect_valid("{\"allOf\":[{\"minimum\":1},{\"maximum\":2}]}", "3", "allOf[1]: arguments: 3 violates maximum 2");
    expect_valid("{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}}", "{\"a\":1,\"b\":\"x\"}",
                 "arguments.b: expected integer, got string");
    expect_valid("{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"object\",\"required\":[\"q\"]}}}",
                 "{\"p\":{}}", "arguments.p: missing required property \"q\"");
    expect_valid("{\"type\":\"array\",\"minItems\":1,\"items\":{\"enum\":[1,2]}}", "[]", "array length 0 is less than minItems 1");
    expect_valid("{\"type\":\"array\",\"items\":{\"enum\":[1,2]}}", "[1,3]", "arguments[1]: value 3 is not one of the enum");
    expect_valid("{\"description\":\"d\",\"title\":\"t\",\"default\":1}", "\"anything\"", NULL);
    expect_valid("{\"type\":\"string\",\"pattern\":\"a\"}", "\"a\"", "unsupported schema keyword \"pattern\"");
    expect_valid("{\"items\":[{\"type\":\"string\"}]}", "[\"a\"]", "tuple form is not supported");
    expect_valid("false", "1", "no value is allowed");
}

/* ------------------------------------------------------------ detection */

Test(toolcall, detect_from_real_templates)
{
    static const struct { const char *file; qfit_toolcall_format want; } T[] = {
        { "openai-gpt-oss-120b.jinja", QFIT_TOOLCALL_HARMONY },
        { "Mistral-Small-3.2-24B-Instruct-2506.jinja", QFIT_TOOLCALL_MISTRAL },
        { "mistralai-Mistral-Nemo-Instruct-2407.jinja", QFIT_TOOLCALL_MISTRAL },
        { "unsloth-mistral-Devstral-Small-2507.jinja", QFIT_TOOLCALL_MISTRAL },
        { "Qwen-Qwen2.5-7B-Instruct.jinja", QFIT_TOOLCALL_HERMES },
        { "Qwen-Qwen3-0.6B.jinja", QFIT_TOOLCALL_HERMES },
        { "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", QFIT_TOOLCALL_HERMES },
        { "meta-llama-Llama-3.1-8B-Instruct.jinja", QFIT_TOOLCALL_JSON },
        { "meta-llama-Llama-3.2-3B-Instruct.jinja", QFIT_TOOLCALL_JSON },
        { "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", QFIT_TOOLCALL_DEEPSEEK },
        { "deepseek-ai-DeepSeek-V3.1.jinja", QFIT_TOOLCALL_DEEPSEEK },
        { "google-gemma-2-2b-it.jinja", QFIT_TOOLCALL_NONE },
        { "microsoft-Phi-3.5-mini-instruct.jinja", QFIT_TOOLCALL_NONE },
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/data/templates/jinja/llama.cpp/%s", T[i].file);
        size_t n;
        char *t = tu_read_file(path, &n);
        cr_assert(t, "%s", path);
        char *z = realloc(t, n + 1);
        z[n] = 0;
        qfit_toolcall_format got = qfit_toolcall_detect(z);
        cr_assert_eq(got, T[i].want, "%s: %s, want %s", T[i].file, qfit_toolcall_format_name(got),
                     qfit_toolcall_format_name(T[i].want));
        free(z);
    }
    cr_assert_eq(qfit_toolcall_detect(NULL), QFIT_TOOLCALL_NONE);
    /* each marker on its own (the real templates above also say "tool") */
    cr_assert_eq(qfit_toolcall_detect("{{ '<|python_tag|>' + x }}"), QFIT_TOOLCALL_JSON);
    cr_assert_eq(qfit_toolcall_detect("<|start|>assistant<|channel|>final<|message|>"), QFIT_TOOLCALL_HARMONY);
    cr_assert_eq(qfit_toolcall_detect("{{ '[TOOL_CALLS]' }}"), QFIT_TOOLCALL_MISTRAL);
    cr_assert_eq(qfit_toolcall_detect("{{ '<tool_call>' }}"), QFIT_TOOLCALL_HERMES);
    cr_assert_eq(qfit_toolcall_detect("{% for t in tools %}{{ t }}{% endfor %}"), QFIT_TOOLCALL_JSON);
    cr_assert_eq(qfit_toolcall_detect("{{ messages[0].content }}"), QFIT_TOOLCALL_NONE);
}

Test(toolcall, format_names_and_prompt_thinking)
{
    qfit_toolcall_format f;
    char err[256];
    for (int i = 0; i < QFIT_TOOLCALL_FORMAT_COUNT; i++) {
        cr_assert_eq(qfit_toolcall_format_parse(qfit_toolcall_format_name((qfit_toolcall_format)i), &f, err, sizeof err), 0);
        cr_assert_eq((int)f, i);
    }
    cr_assert_eq(qfit_toolcall_format_parse("gpt-oss", &f, err, sizeof err), 0);
    cr_assert_eq(f, QFIT_TOOLCALL_HARMONY);
    cr_assert_eq(qfit_toolcall_format_parse("xml", &f, err, sizeof err), -1);
    cr_assert(strstr(err, "unknown tool-call format \"xml\""), "%s", err);

    const char *r1 = "<|User|>hi<|Assistant|><think>\n";
    cr_assert(qfit_toolcall_prompt_opens_thinking(r1, strlen(r1)));
    cr_assert(qfit_toolcall_prompt_opens_thinking("[INST]x[/INST][THINK]", 21));
    cr_assert_not(qfit_toolcall_prompt_opens_thinking("<think>\n\n</think>\n\n", 19));
    cr_assert_not(qfit_toolcall_prompt_opens_thinking("", 0));
}

Test(toolcall, use_after_finish_is_an_error)
{
    char err[256];
    qfit_toolparse_delta d;
    qfit_toolparse *p = qfit_toolparse_new(QFIT_TOOLCALL_NONE, false, false, NULL, err, sizeof err);
    cr_assert_eq(qfit_toolparse_finish(p, &d, err, sizeof err), 0);
    cr_assert_eq(qfit_toolparse_feed(p, "x", 1, &d, err, sizeof err), -1);
    cr_assert(strstr(err, "after the end of generation"), "%s", err);
    qfit_toolparse_free(p);
    cr_assert_null(qfit_toolparse_new((qfit_toolcall_format)99, false, false, NULL, err, sizeof err));
    cr_assert(strstr(err, "unknown tool-call format 99"), "%s", err);
}
