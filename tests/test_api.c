/* Suite api: the JSON protocol of the Ollama and OpenAI APIs (qfit/api.h).
 * References: Ollama's own middleware test vectors and docs/api.md examples
 * (tests/data/api/requests.json, see its README), the reference document's
 * error messages and shapes (ollama-compat-reference.md sections 1, 2, 9), Go's
 * RFC3339Nano output, and OpenSSL's base64 decoder for the embedding round trip.
 * Encoders are checked by parsing their output back with jansson. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "qfit/api.h"
#include "qfit/config.h"
#include "qfit/template.h"
#include "util/testutil.h"

/* ------------------------------------------------------------- helpers */

static json_t *J(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &je);   /* as a lenient HTTP layer might */
    cr_assert(j, "bad test JSON (%s): %s", je.text, text);
    return j;
}

static qfit_api_request *parse_ok(qfit_api_endpoint ep, const char *text)
{
    json_t *body = J(text);
    qfit_api_error e;
    qfit_api_request *r = qfit_api_parse(ep, body, &e);
    json_decref(body);
    cr_assert(r, "expected success for %s, got %d %s", text, e.status, e.message);
    return r;
}

/* The error message for a body that must be refused with 400. */
static void parse_err(qfit_api_endpoint ep, const char *text, const char *prefix, const char *param)
{
    json_t *body = J(text);
    qfit_api_error e;
    qfit_api_request *r = qfit_api_parse(ep, body, &e);
    json_decref(body);
    cr_assert_null(r, "expected an error for %s", text);
    qfit_api_request_free(r);
    cr_expect_eq(e.status, 400, "%s: status %d", text, e.status);
    cr_expect(strncmp(e.message, prefix, strlen(prefix)) == 0, "%s:\n  got      '%s'\n  expected '%s...'", text,
              e.message, prefix);
    if (param) cr_expect_str_eq(e.param, param, "%s: param", text);
}

static json_t *dump_parse(const json_t *j)
{
    char *s = qfit_api_ndjson_line(j);
    cr_assert(s);
    size_t n = strlen(s);
    cr_assert(n > 1 && s[n - 1] == '\n' && !memchr(s, '\n', n - 1), "one line: %s", s);
    json_t *back = J(s);
    free(s);
    return back;
}

/* ----------------------------------------------------- request vectors */

static qfit_api_endpoint endpoint_of(const char *s)
{
    static const struct { const char *n; qfit_api_endpoint e; } M[] = {
        { "generate", QFIT_API_GENERATE }, { "chat", QFIT_API_CHAT }, { "embed", QFIT_API_EMBED },
        { "embeddings", QFIT_API_EMBEDDINGS }, { "oai_chat", QFIT_API_OAI_CHAT },
        { "oai_completions", QFIT_API_OAI_COMPLETIONS }, { "oai_embeddings", QFIT_API_OAI_EMBEDDINGS },
    };
    for (size_t i = 0; i < sizeof M / sizeof M[0]; i++)
        if (!strcmp(M[i].n, s)) return M[i].e;
    cr_assert_fail("unknown endpoint %s", s);
    return QFIT_API_GENERATE;
}

static void expect_json(const char *name, const char *field, const json_t *got, const json_t *want)
{
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    cr_expect(json_equal((json_t *)got, (json_t *)want), "%s: %s\n  got  %s\n  want %s", name, field, g, w);
    free(g);
    free(w);
}

static void run_vectors(const char *path)
{
    json_error_t je;
    json_t *cases = json_load_file(path, 0, &je);
    cr_assert(cases, "%s: %s line %d", path, je.text, je.line);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        qfit_api_endpoint ep = endpoint_of(json_string_value(json_object_get(c, "endpoint")));
        qfit_api_error e;
        qfit_api_request *r = qfit_api_parse(ep, json_object_get(c, "body"), &e);
        const json_t *err = json_object_get(c, "error");
        if (err) {
            cr_expect_null(r, "%s: expected an error", name);
            cr_expect(strncmp(e.message, json_string_value(err), strlen(json_string_value(err))) == 0,
                      "%s: got '%s'", name, e.message);
            cr_expect_str_eq(e.param, json_string_value(json_object_get(c, "param")), "%s", name);
            qfit_api_request_free(r);
            continue;
        }
        cr_assert(r, "%s: %s", name, e.message);
        const json_t *x = json_object_get(c, "expect"), *v;
        cr_expect_str_eq(r->model, json_string_value(json_object_get(json_object_get(c, "body"), "model")), "%s", name);
        if ((v = json_object_get(x, "messages"))) expect_json(name, "messages", r->messages, v);
        if ((v = json_object_get(x, "tools"))) expect_json(name, "tools", r->tools, v);
        if ((v = json_object_get(x, "options"))) {
            json_t *o = qfit_params_to_json(r->options);
            expect_json(name, "options", o, v);
            json_decref(o);
        }
        if ((v = json_object_get(x, "stream"))) cr_expect_eq(r->stream, json_is_true(v), "%s: stream", name);
        if ((v = json_object_get(x, "include_usage"))) cr_expect_eq(r->include_usage, json_is_true(v), "%s: include_usage", name);
        if ((v = json_object_get(x, "base64"))) cr_expect_eq(r->base64, json_is_true(v), "%s: base64", name);
        if ((v = json_object_get(x, "prompt"))) cr_expect_str_eq(r->prompt, json_string_value(v), "%s", name);
        if ((v = json_object_get(x, "suffix"))) cr_expect_str_eq(r->suffix, json_string_value(v), "%s", name);
        if ((v = json_object_get(x, "warnings"))) cr_expect_eq(r->warnings.count, (size_t)json_integer_value(v), "%s", name);
        if ((v = json_object_get(x, "format"))) {
            const char *f = json_string_value(v);
            qfit_api_format want = !strcmp(f, "json") ? QFIT_API_FORMAT_JSON : !strcmp(f, "schema") ? QFIT_API_FORMAT_SCHEMA
                                                                                                   : QFIT_API_FORMAT_NONE;
            cr_expect_eq(r->format, want, "%s: format", name);
        }
        if ((v = json_object_get(x, "think"))) cr_expect_eq(r->think, json_integer_value(v), "%s: think", name);
        if ((v = json_object_get(x, "logprobs"))) cr_expect_eq(r->logprobs, json_is_true(v), "%s: logprobs", name);
        if ((v = json_object_get(x, "top_logprobs"))) cr_expect_eq(r->top_logprobs, json_integer_value(v), "%s", name);
        if ((v = json_object_get(x, "dimensions"))) cr_expect_eq(r->dimensions, json_integer_value(v), "%s", name);
        if ((v = json_object_get(x, "tool_choice")))
            cr_expect_eq(r->tool_choice, !strcmp(json_string_value(v), "none") ? QFIT_API_TOOL_NONE : QFIT_API_TOOL_AUTO, "%s", name);
        if ((v = json_object_get(x, "inputs"))) {
            cr_expect_eq(r->n_inputs, json_array_size(v), "%s: inputs", name);
            for (size_t k = 0; k < r->n_inputs && k < json_array_size(v); k++)
                cr_expect_str_eq(r->inputs[k].text, json_string_value(json_array_get(v, k)), "%s", name);
        }
        qfit_api_request_free(r);
    }
    json_decref(cases);
}

Test(api, ollama_vectors) { run_vectors("tests/data/api/requests.json"); }
Test(api, openai_node_vectors) { run_vectors("tests/data/api/openai_node.json"); }

/* ------------------------------------------------------- native fields */

Test(api, generate_fields_and_defaults)
{
    qfit_api_request *r = parse_ok(QFIT_API_GENERATE,
        "{\"model\":\"m\",\"prompt\":\"hi\",\"suffix\":\"end\",\"system\":\"be brief\",\"template\":\"{{ .Prompt }}\","
        "\"context\":[1,2,3],\"format\":\"json\",\"logprobs\":true,\"top_logprobs\":5}");
    cr_expect_eq(r->endpoint, QFIT_API_GENERATE);
    cr_expect_eq(r->action, QFIT_API_RUN);
    cr_expect_str_eq(r->prompt, "hi");
    cr_expect_str_eq(r->suffix, "end");
    cr_expect_str_eq(r->system, "be brief");
    cr_expect_str_eq(r->tmpl, "{{ .Prompt }}");
    cr_expect_eq(r->n_context, 3);
    cr_expect_eq(r->context[2], 3);
    cr_expect_eq(r->format, QFIT_API_FORMAT_JSON);
    cr_expect(r->stream, "native stream defaults to true");
    cr_expect(r->truncate && r->shift);
    cr_expect_eq(r->think, -1);
    cr_expect(!r->keep_alive_set, "an omitted keep_alive leaves the timer alone");
    cr_expect(r->logprobs);
    cr_expect_eq(r->top_logprobs, 5);
    cr_expect_eq(qfit_params_count(r->options), 0);
    qfit_api_request_free(r);

    r = parse_ok(QFIT_API_GENERATE, "{\"model\":\"m\",\"prompt\":\"x\",\"format\":{\"type\":\"object\"},\"raw\":true,\"stream\":false}");
    cr_expect_eq(r->format, QFIT_API_FORMAT_SCHEMA);
    cr_expect_str_eq(json_string_value(json_object_get(r->schema, "type")), "object");
    cr_expect(r->raw && !r->stream);
    qfit_api_request_free(r);

    /* "" and null formats are unset */
    r = parse_ok(QFIT_API_GENERATE, "{\"model\":\"m\",\"prompt\":\"x\",\"format\":\"\"}");
    cr_expect_eq(r->format, QFIT_API_FORMAT_NONE);
    qfit_api_request_free(r);
}

Test(api, load_and_unload)
{
    static const struct { qfit_api_endpoint ep; const char *body; qfit_api_action want; } C[] = {
        { QFIT_API_GENERATE, "{\"model\":\"m\"}", QFIT_API_LOAD },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"prompt\":\"\"}", QFIT_API_LOAD },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"prompt\":\"\",\"keep_alive\":0}", QFIT_API_UNLOAD },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"keep_alive\":\"0\"}", QFIT_API_UNLOAD },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"keep_alive\":\"5m\"}", QFIT_API_LOAD },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"prompt\":\"x\",\"keep_alive\":0}", QFIT_API_RUN },
        { QFIT_API_CHAT, "{\"model\":\"m\"}", QFIT_API_LOAD },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"messages\":[]}", QFIT_API_LOAD },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"messages\":[],\"keep_alive\":0}", QFIT_API_UNLOAD },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", QFIT_API_RUN },
        { QFIT_API_EMBED, "{\"model\":\"m\",\"input\":\"\"}", QFIT_API_LOAD },
        { QFIT_API_EMBED, "{\"model\":\"m\",\"input\":[]}", QFIT_API_LOAD },
        { QFIT_API_EMBED, "{\"model\":\"m\"}", QFIT_API_LOAD },
        { QFIT_API_EMBED, "{\"model\":\"m\",\"input\":\"a\"}", QFIT_API_RUN },
        { QFIT_API_EMBEDDINGS, "{\"model\":\"m\",\"prompt\":\"\"}", QFIT_API_LOAD },
        { QFIT_API_EMBEDDINGS, "{\"model\":\"m\",\"prompt\":\"a\"}", QFIT_API_RUN },
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        qfit_api_request *r = parse_ok(C[i].ep, C[i].body);
        cr_expect_eq(r->action, C[i].want, "%s: action %d, want %d", C[i].body, r->action, C[i].want);
        qfit_api_request_free(r);
    }
}

/* Ollama api/types_test.go TestKeepAliveParsingFromJSON (42, 42.5, "42m", -1, -3.14,
 * "-1m"), then the reference's other forms. */
Test(api, keep_alive_semantics)
{
    static const struct { const char *value; int64_t ns; } OK[] = {
        { "42", 42000000000LL }, { "42.5", 42500000000LL }, { "\"42m\"", 2520000000000LL },
        { "-1", QFIT_FOREVER_NS }, { "-3.14", QFIT_FOREVER_NS }, { "\"-1m\"", QFIT_FOREVER_NS },
        { "300", 300000000000LL }, { "1.5", 1500000000LL }, { "0", 0 }, { "-1", QFIT_FOREVER_NS },
        { "-0.5", QFIT_FOREVER_NS }, { "\"10m\"", 600000000000LL }, { "\"1h30m\"", 5400000000000LL },
        { "\"300ms\"", 300000000LL }, { "\"0\"", 0 }, { "\"-1m\"", QFIT_FOREVER_NS },
    };
    for (size_t i = 0; i < sizeof OK / sizeof OK[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"model\":\"m\",\"prompt\":\"p\",\"keep_alive\":%s}", OK[i].value);
        qfit_api_request *r = parse_ok(QFIT_API_GENERATE, body);
        cr_expect(r->keep_alive_set, "%s", OK[i].value);
        cr_expect_eq(r->keep_alive_ns, OK[i].ns, "%s: %lld", OK[i].value, (long long)r->keep_alive_ns);
        qfit_api_request_free(r);
    }
    /* null = not given */
    qfit_api_request *r = parse_ok(QFIT_API_CHAT, "{\"model\":\"m\",\"keep_alive\":null}");
    cr_expect(!r->keep_alive_set);
    qfit_api_request_free(r);
    /* a unit-less string is a 400 (Ollama), other types too */
    parse_err(QFIT_API_GENERATE, "{\"model\":\"m\",\"keep_alive\":\"10\"}", "keep_alive: ", "keep_alive");
    parse_err(QFIT_API_GENERATE, "{\"model\":\"m\",\"keep_alive\":\"-1\"}", "keep_alive: ", "keep_alive");
    parse_err(QFIT_API_CHAT, "{\"model\":\"m\",\"keep_alive\":true}", "keep_alive: unsupported type 'boolean'", "keep_alive");
    parse_err(QFIT_API_EMBED, "{\"model\":\"m\",\"keep_alive\":[1]}", "keep_alive: unsupported type 'array'", "keep_alive");
    parse_err(QFIT_API_EMBED, "{\"model\":\"m\",\"keep_alive\":1e300}", "keep_alive: 1e+300 seconds is too long", "keep_alive");
}

Test(api, think_values)
{
    static const struct { const char *v; int think; const char *level; } C[] = {
        { "true", 1, "" }, { "false", 0, "" }, { "\"low\"", 1, "low" }, { "\"medium\"", 1, "medium" },
        { "\"high\"", 1, "high" }, { "\"max\"", 1, "max" }, { "null", -1, "" },
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"model\":\"m\",\"think\":%s}", C[i].v);
        qfit_api_request *r = parse_ok(QFIT_API_CHAT, body);
        cr_expect_eq(r->think, C[i].think, "%s", C[i].v);
        cr_expect_str_eq(r->think_level, C[i].level, "%s", C[i].v);
        qfit_api_request_free(r);
    }
    parse_err(QFIT_API_CHAT, "{\"model\":\"m\",\"think\":\"extreme\"}", "think: must be", "think");
    parse_err(QFIT_API_GENERATE, "{\"model\":\"m\",\"think\":\"invalid\"}", "think: must be", "think");   /* Ollama's vector */
    parse_err(QFIT_API_GENERATE, "{\"model\":\"m\",\"think\":1}", "think: must be", "think");
    /* OpenAI reasoning_effort / reasoning.effort, Ollama's mapping */
    static const struct { const char *field; int think; const char *level; } O[] = {
        { "\"reasoning_effort\":\"none\"", 0, "" }, { "\"reasoning_effort\":\"minimal\"", 1, "low" },
        { "\"reasoning_effort\":\"high\"", 1, "high" }, { "\"reasoning_effort\":\"xhigh\"", 1, "max" },
        { "\"reasoning\":{\"effort\":\"ultra\"}", 1, "max" }, { "\"reasoning\":{\"effort\":\"medium\"}", 1, "medium" },
    };
    for (size_t i = 0; i < sizeof O / sizeof O[0]; i++) {
        char body[160];
        snprintf(body, sizeof body, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s}", O[i].field);
        qfit_api_request *r = parse_ok(QFIT_API_OAI_CHAT, body);
        cr_expect_eq(r->think, O[i].think, "%s", O[i].field);
        cr_expect_str_eq(r->think_level, O[i].level, "%s", O[i].field);
        qfit_api_request_free(r);
    }
    parse_err(QFIT_API_OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"reasoning_effort\":\"huge\"}",
              "reasoning_effort: invalid value \"huge\"", "reasoning_effort");
}

Test(api, options_typed_unknown_warned)
{
    /* clients still send removed options: warnings, never errors */
    qfit_api_request *r = parse_ok(QFIT_API_GENERATE,
        "{\"model\":\"m\",\"prompt\":\"p\",\"options\":{\"num_predict\":1,\"mirostat\":1,\"tfs_z\":1.0,\"numa\":false,"
        "\"penalize_newline\":true,\"temperature\":0.5,\"stop\":[\"a\",\"b\"],\"seed\":42,\"use_mmap\":true,\"top_k\":null}}");
    cr_expect_eq(r->warnings.count, 4, "mirostat, tfs_z, numa, penalize_newline: %zu", r->warnings.count);
    bool saw_tfs = false;
    for (size_t i = 0; i < r->warnings.count; i++)
        if (strstr(r->warnings.msgs[i], "options.tfs_z")) saw_tfs = true;
    cr_expect(saw_tfs, "a warning names options.tfs_z");
    const qfit_param *p = qfit_params_get(r->options, "temperature");
    cr_assert(p);
    cr_expect_float_eq(p->f, 0.5f, 0);
    cr_expect_eq(qfit_params_get(r->options, "num_predict")->i, 1);
    cr_expect_eq(qfit_params_get(r->options, "seed")->i, 42);
    cr_expect_eq(qfit_params_get(r->options, "stop")->nstrs, 2);
    cr_expect(qfit_params_get(r->options, "use_mmap")->b);
    cr_expect_null(qfit_params_get(r->options, "top_k"), "null is skipped");
    qfit_api_request_free(r);

    parse_err(QFIT_API_GENERATE, "{\"model\":\"m\",\"options\":{\"temperature\":\"hot\"}}",
              "options.temperature: must be of type float32", "options.temperature");
    parse_err(QFIT_API_CHAT, "{\"model\":\"m\",\"options\":{\"num_ctx\":1.5}}", "options.num_ctx: must be an integer", "options.num_ctx");
    parse_err(QFIT_API_CHAT, "{\"model\":\"m\",\"options\":{\"use_mmap\":1}}", "options.use_mmap: must be of type boolean", "options.use_mmap");
    parse_err(QFIT_API_CHAT, "{\"model\":\"m\",\"options\":{\"stop\":\"x\"}}", "options.stop: must be of type array", "options.stop");
    parse_err(QFIT_API_CHAT, "{\"model\":\"m\",\"options\":{\"stop\":[\"a\",\"\"]}}", "options.stop[1]: must not be empty", "options.stop[1]");
    parse_err(QFIT_API_CHAT, "{\"model\":\"m\",\"options\":{\"temperature\":1e300}}", "options.temperature: ", "options.temperature");
    parse_err(QFIT_API_EMBED, "{\"model\":\"m\",\"options\":[]}", "options: must be an object", "options");
    parse_err(QFIT_API_CHAT,
              "{\"model\":\"m\",\"options\":{\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]}}",
              "options.stop: 17 strings (at most 16)", "options.stop");
}

Test(api, native_errors_name_their_field)
{
    static const struct { qfit_api_endpoint ep; const char *body, *msg, *param; } C[] = {
        { QFIT_API_GENERATE, "[]", "request body: must be a JSON object", "" },
        { QFIT_API_GENERATE, "{}", "model: is required", "model" },
        { QFIT_API_GENERATE, "{\"model\":\"\"}", "model: is required", "model" },
        { QFIT_API_GENERATE, "{\"model\":7}", "model: must be a string, not number", "model" },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"prompt\":[1]}", "prompt: must be a string, not array", "prompt" },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"prompt\":\"a\\u0000b\"}", "prompt: contains a NUL character", "prompt" },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"stream\":\"yes\"}", "stream: must be a boolean", "stream" },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"raw\":true,\"system\":\"s\"}", "raw: raw mode does not support template, system, or context", "raw" },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"raw\":true,\"context\":[1]}", "raw: raw mode does not support", "raw" },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"format\":\"xml\"}", "format: invalid format; expected \"json\" or a valid JSON Schema object", "format" },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"format\":[1]}", "format: invalid format", "format" },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"images\":[\"aGk=\"]}", "images: images are not supported", "images" },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"images\":\"aGk=\"}", "images: must be an array", "images" },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"top_logprobs\":21,\"logprobs\":true}", "top_logprobs: must be between 0 and 20", "top_logprobs" },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"top_logprobs\":-1}", "top_logprobs: must be between 0 and 20", "top_logprobs" },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"top_logprobs\":3}", "top_logprobs: needs logprobs true", "top_logprobs" },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"context\":[1,-2]}", "context[1]: must be a token id", "context[1]" },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"context\":{}}", "context: must be an array", "context" },
        { QFIT_API_GENERATE, "{\"model\":\"m\",\"truncate\":0}", "truncate: must be a boolean", "truncate" },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"messages\":{}}", "messages: must be an array, not object", "messages" },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"messages\":[1]}", "messages[0]: must be an object", "messages[0]" },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", "messages[0].role: is required", "messages[0].role" },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"robot\",\"content\":\"x\"}]}",
          "messages[1].role: invalid role \"robot\"", "messages[1].role" },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"x\"}]}", "messages[0].role: invalid role", "messages[0].role" },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]}",
          "messages[0].content: must be a string, not array", "messages[0].content" },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":[\"aGk=\"]}]}",
          "messages[0].images: images are not supported", "messages[0].images" },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"thinking\":5}]}",
          "messages[0].thinking: must be a string", "messages[0].thinking" },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}]}",
          "messages[0].tool_calls[0].function.arguments: must be an object", "messages[0].tool_calls[0].function.arguments" },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"arguments\":{}}}]}]}",
          "messages[0].tool_calls[0].function.name: must be a non-empty string", "messages[0].tool_calls[0].function.name" },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"index\":-1}}]}]}",
          "messages[0].tool_calls[0].function.index: -1 is outside", "messages[0].tool_calls[0].function.index" },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"tools\":{}}", "tools: must be an array, not object", "tools" },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"tools\":[{\"type\":\"function\"}]}", "tools[0].function: must be an object", "tools[0].function" },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"tools\":[{\"type\":\"retrieval\",\"function\":{\"name\":\"f\"}}]}", "tools[0].type: must be \"function\"", "tools[0].type" },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"tools\":[{\"function\":{\"name\":\"f\"}},{\"function\":{}}]}", "tools[1].function.name: is required", "tools[1].function.name" },
        { QFIT_API_CHAT, "{\"model\":\"m\",\"tools\":[{\"function\":{\"name\":\"f\",\"parameters\":[]}}]}", "tools[0].function.parameters: must be an object", "tools[0].function.parameters" },
        { QFIT_API_EMBED, "{\"model\":\"m\",\"input\":5}", "input: invalid input type number", "input" },
        { QFIT_API_EMBED, "{\"model\":\"m\",\"input\":[\"a\",[1,2]]}", "input[1]: invalid input type array", "input[1]" },
        { QFIT_API_EMBED, "{\"model\":\"m\",\"input\":\"a\",\"dimensions\":0}", "dimensions: 0 is outside [1,", "dimensions" },
        { QFIT_API_EMBED, "{\"model\":\"m\",\"input\":\"a\",\"dimensions\":2.5}", "dimensions: must be an integer, got 2.5", "dimensions" },
        { QFIT_API_EMBED, "{\"model\":\"m\",\"input\":\"a\",\"truncate\":\"no\"}", "truncate: must be a boolean", "truncate" },
        { QFIT_API_EMBEDDINGS, "{\"model\":\"m\",\"prompt\":1}", "prompt: must be a string", "prompt" },
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) parse_err(C[i].ep, C[i].body, C[i].msg, C[i].param);
}

Test(api, native_chat_messages_normalised)
{
    /* Ollama api/types_test.go TestMessage_UnmarshalJSON: roles are lower-cased */
    qfit_api_request *lc = parse_ok(QFIT_API_CHAT,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"USER\",\"content\":\"Hello!\"},{\"role\":\"System\",\"content\":\"Initialization complete.\"},"
        "{\"role\":\"assistant\",\"content\":\"How can I help you?\"},{\"role\":\"TOOl\",\"content\":\"Access granted.\"}]}");
    static const char *const ROLES[] = { "user", "system", "assistant", "tool" };
    for (size_t i = 0; i < 4; i++)
        cr_expect_str_eq(json_string_value(json_object_get(json_array_get(lc->messages, i), "role")), ROLES[i]);
    qfit_api_request_free(lc);

    qfit_api_request *r = parse_ok(QFIT_API_CHAT,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"System\",\"content\":\"s\"},{\"role\":\"user\",\"content\":null,\"thinking\":\"\",\"tool_call_id\":\"\"},"
        "{\"role\":\"assistant\",\"content\":\"a\",\"thinking\":\"t\",\"tool_calls\":[{\"id\":\"call_1\",\"function\":{\"index\":3,\"name\":\"f\",\"arguments\":{\"b\":1,\"a\":2}}}]},"
        "{\"role\":\"tool\",\"content\":\"r\",\"tool_call_id\":\"call_1\"}]}");
    json_t *want = J("[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"\"},"
                     "{\"role\":\"assistant\",\"content\":\"a\",\"thinking\":\"t\",\"tool_calls\":[{\"id\":\"call_1\",\"function\":{\"index\":3,\"name\":\"f\",\"arguments\":{\"b\":1,\"a\":2}}}]},"
                     "{\"role\":\"tool\",\"content\":\"r\",\"tool_call_id\":\"call_1\",\"tool_name\":\"f\"}]");
    expect_json("native chat", "messages", r->messages, want);
    /* argument order is preserved (Ollama keeps insertion order) */
    json_t *args = json_object_get(json_object_get(json_array_get(json_object_get(json_array_get(r->messages, 2), "tool_calls"), 0), "function"), "arguments");
    cr_expect_str_eq(json_object_iter_key(json_object_iter(args)), "b");
    json_decref(want);
    qfit_api_request_free(r);
}

Test(api, embed_inputs)
{
    qfit_api_request *r = parse_ok(QFIT_API_EMBED, "{\"model\":\"m\",\"input\":[\"a\",\"\",\"c\"],\"truncate\":false,\"dimensions\":8}");
    cr_expect_eq(r->n_inputs, 3);
    cr_expect_str_eq(r->inputs[1].text, "");
    cr_expect(!r->truncate);
    cr_expect_eq(r->dimensions, 8);
    cr_expect(!r->stream);
    qfit_api_request_free(r);

    r = parse_ok(QFIT_API_OAI_EMBEDDINGS, "{\"model\":\"m\",\"input\":[1,2,3]}");
    cr_expect_eq(r->n_inputs, 1);
    cr_expect_null(r->inputs[0].text);
    cr_expect_eq(r->inputs[0].n_tokens, 3);
    cr_expect_eq(r->inputs[0].tokens[2], 3);
    qfit_api_request_free(r);

    r = parse_ok(QFIT_API_OAI_EMBEDDINGS, "{\"model\":\"m\",\"input\":[[1,2],\"x\"],\"encoding_format\":\"float\",\"user\":\"u\"}");
    cr_expect_eq(r->n_inputs, 2);
    cr_expect_eq(r->inputs[0].n_tokens, 2);
    cr_expect_str_eq(r->inputs[1].text, "x");
    qfit_api_request_free(r);

    /* "" is one empty input on /v1 (Ollama), [] is refused */
    r = parse_ok(QFIT_API_OAI_EMBEDDINGS, "{\"model\":\"m\",\"input\":\"\"}");
    cr_expect_eq(r->n_inputs, 1);
    qfit_api_request_free(r);
    parse_err(QFIT_API_OAI_EMBEDDINGS, "{\"model\":\"m\",\"input\":[]}", "input: invalid input", "input");
    parse_err(QFIT_API_OAI_EMBEDDINGS, "{\"model\":\"m\",\"input\":\"a\",\"encoding_format\":\"int8\"}",
              "encoding_format: must be \"float\" or \"base64\"", "encoding_format");
    parse_err(QFIT_API_OAI_EMBEDDINGS, "{\"model\":\"m\",\"input\":[[1,\"x\"]]}", "input[0][1]: must be a token id", "input[0][1]");
    parse_err(QFIT_API_OAI_EMBEDDINGS, "{\"model\":\"m\",\"input\":[[]]}", "input[0]: an empty token array", "input[0]");
    parse_err(QFIT_API_OAI_EMBEDDINGS, "{\"model\":\"m\",\"input\":[true]}", "input[0]: invalid input type boolean", "input[0]");
}

/* ------------------------------------------------------- OpenAI fields */

#define OAI_MSG "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"

Test(api, openai_chat_fields)
{
    qfit_api_request *r = parse_ok(QFIT_API_OAI_CHAT,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"d\"},{\"role\":\"user\",\"content\":\"x\",\"name\":\"bob\"}],"
        "\"max_completion_tokens\":7,\"stop\":\"END\",\"n\":1,\"user\":\"u\",\"logprobs\":true,\"top_logprobs\":2,"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"object\"},\"strict\":true}}}");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(r->messages, 0), "role")), "system", "developer -> system");
    cr_expect_null(json_object_get(json_array_get(r->messages, 1), "tool_name"), "name on a user message is not a tool name");
    cr_expect_eq(qfit_params_get(r->options, "num_predict")->i, 7);
    const qfit_param *stop = qfit_params_get(r->options, "stop");
    cr_assert(stop && stop->nstrs == 1);
    cr_expect_str_eq(stop->strs[0], "END");
    cr_expect(r->logprobs);
    cr_expect_eq(r->top_logprobs, 2);
    cr_expect_eq(r->tool_choice, QFIT_API_TOOL_NAMED);
    cr_expect_str_eq(r->tool_name, "f");
    cr_expect_eq(r->format, QFIT_API_FORMAT_SCHEMA);
    cr_expect(r->schema_strict);
    cr_expect(!r->stream, "OpenAI stream defaults to false");
    qfit_api_request_free(r);

    static const struct { const char *tc; qfit_api_tool_choice want; } T[] = {
        { "\"auto\"", QFIT_API_TOOL_AUTO }, { "\"none\"", QFIT_API_TOOL_NONE }, { "\"required\"", QFIT_API_TOOL_REQUIRED },
    };
    for (size_t i = 0; i < 3; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"model\":\"m\"," OAI_MSG ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":%s}", T[i].tc);
        r = parse_ok(QFIT_API_OAI_CHAT, body);
        cr_expect_eq(r->tool_choice, T[i].want, "%s", T[i].tc);
        qfit_api_request_free(r);
    }
}

Test(api, openai_errors_name_their_field)
{
    static const struct { qfit_api_endpoint ep; const char *body, *msg, *param; } C[] = {
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\",\"messages\":[]}", "messages: [] is too short", "messages" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"}", "messages: is required", "messages" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"n\":2}", "n: only 1 choice is supported, got 2", "n" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"n\":0}", "n: 0 is outside", "n" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"logit_bias\":{\"50256\":-100}}", "logit_bias: not supported (token 50256 has a bias)", "logit_bias" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"logit_bias\":{\"1\":0,\"2\":0.5}}", "logit_bias: not supported (token 2 has a bias)", "logit_bias" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"logit_bias\":[1]}", "logit_bias: must be an object", "logit_bias" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"web_search_options\":{}}", "web_search_options: web search is not supported", "web_search_options" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"temperature\":-0.1}", "temperature: -0.1 is outside [0, 2]", "temperature" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"temperature\":\"1\"}", "temperature: must be a number, not string", "temperature" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"top_p\":1.5}", "top_p: 1.5 is outside [0, 1]", "top_p" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"presence_penalty\":3}", "presence_penalty: 3 is outside [-2, 2]", "presence_penalty" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"frequency_penalty\":-3}", "frequency_penalty: -3 is outside [-2, 2]", "frequency_penalty" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"seed\":1.5}", "seed: must be an integer", "seed" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"seed\":9223372036854775808.0}", "seed: 9.2233720368547758e+18 is outside", "seed" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"seed\":1e19}", "seed: 1e+19 is outside", "seed" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"max_tokens\":1099511627776}", "max_tokens: 1099511627776 is outside [0, 2147483647]", "max_tokens" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"n\":1000000}", "n: only 1 choice is supported, got 1000000", "n" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"logprobs\":true,\"top_logprobs\":1000000}", "top_logprobs: must be between 0 and 20", "top_logprobs" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\\u0000x\"," OAI_MSG "}", "model: contains a NUL character", "model" },
        { QFIT_API_OAI_EMBEDDINGS, "{\"model\":\"m\",\"input\":[1,-1]}", "input[1]: must be a token id", "input[1]" },
        { QFIT_API_OAI_EMBEDDINGS, "{\"model\":\"m\",\"input\":[2147483648]}", "input[0]: must be a token id", "input[0]" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"max_tokens\":-1}", "max_tokens: -1 is outside", "max_tokens" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"max_tokens\":5,\"max_completion_tokens\":6}", "max_completion_tokens: 6 differs from max_tokens 5", "max_completion_tokens" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"stop\":5}", "stop: must be a string or an array of strings", "stop" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"stop\":[\"a\",1]}", "stop[1]: must be a string", "stop[1]" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"stop\":\"\"}", "stop[0]: must not be empty", "stop[0]" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]}",
          "stop: 17 strings (at most 16)", "stop" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"top_logprobs\":2}", "top_logprobs: needs logprobs true", "top_logprobs" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"logprobs\":true,\"top_logprobs\":30}", "top_logprobs: must be between 0 and 20", "top_logprobs" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"stream\":true,\"stream_options\":{\"include_usage\":1}}", "stream_options.include_usage: must be a boolean", "stream_options.include_usage" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"tool_choice\":\"always\"}", "tool_choice: invalid value \"always\"", "tool_choice" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"tool_choice\":\"required\"}", "tool_choice: \"required\" needs tools", "tool_choice" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}}",
          "tool_choice.function.name: no tool named \"g\" in tools", "tool_choice.function.name" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"response_format\":{\"type\":\"yaml\"}}", "response_format.type: invalid value \"yaml\"", "response_format.type" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"response_format\":{\"type\":\"json_schema\"}}", "response_format.json_schema: is required", "response_format.json_schema" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":true}}}",
          "response_format.json_schema.schema: must be a JSON Schema object", "response_format.json_schema.schema" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\",\"input_audio\":{}}]}]}",
          "messages[0].content[0]: input_audio content is not supported", "messages[0].content[0]" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"hologram\"}]}]}",
          "messages[0].content[0].type: unknown content part type \"hologram\"", "messages[0].content[0].type" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
          "messages[0].content[0].text: is required", "messages[0].content[0].text" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]}", "messages[0].content: is required", "messages[0].content" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"a\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{not json\"}}]}]}",
          "messages[0].tool_calls[0].function.arguments: invalid tool call arguments", "messages[0].tool_calls[0].function.arguments" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
          "messages[0].tool_calls[0].function.arguments: invalid tool call arguments", "messages[0].tool_calls[0].function.arguments" },
        { QFIT_API_OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"p\",\"echo\":true}", "echo: not supported", "echo" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"functions\":[{\"name\":\"f\"}]}", "functions: the deprecated functions field is not supported", "functions" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"function_call\":\"auto\"}", "function_call: the deprecated", "function_call" },
        { QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"audio\":{\"voice\":\"alloy\"}}", "audio: audio output is not supported", "audio" },
        { QFIT_API_OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"p\",\"best_of\":3}", "best_of: only 1 is supported", "best_of" },
        { QFIT_API_OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[\"a\",\"b\"]}", "prompt: only a string or an array of one string", "prompt" },
        { QFIT_API_OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":[1,2]}", "prompt: only a string or an array of one string", "prompt" },
        { QFIT_API_OAI_COMPLETIONS, "{\"model\":\"m\"}", "prompt: is required", "prompt" },
        { QFIT_API_OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"p\",\"logprobs\":true}", "logprobs: must be an integer", "logprobs" },
        { QFIT_API_OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"p\",\"logprobs\":21}", "logprobs: 21 is outside [0, 20]", "logprobs" },
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) parse_err(C[i].ep, C[i].body, C[i].msg, C[i].param);
}

Test(api, message_count_bound)
{
    /* text parts become messages: 3 x 40000 parts exceed the bound on the result */
    json_t *body = J("{\"model\":\"m\",\"messages\":[]}"), *msgs = json_object_get(body, "messages");
    for (int i = 0; i < 3; i++) {
        json_t *parts = json_array();
        for (int k = 0; k < 40000; k++) json_array_append_new(parts, json_pack("{s:s,s:s}", "type", "text", "text", "x"));
        json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", "user", "content", parts));
    }
    qfit_api_error e;
    qfit_api_request *r = qfit_api_parse(QFIT_API_OAI_CHAT, body, &e);
    cr_expect_null(r);
    qfit_api_request_free(r);
    cr_expect_str_eq(e.message, "messages[2].content[20000]: more than 100000 messages (each text part counts as one)");
    /* 100001 plain messages: refused before conversion */
    json_array_clear(msgs);
    for (int i = 0; i < 100001; i++) json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", ""));
    r = qfit_api_parse(QFIT_API_CHAT, body, &e);
    cr_expect_null(r);
    cr_expect_str_eq(e.message, "messages: more than 100000 messages");
    json_array_remove(msgs, 0);
    r = qfit_api_parse(QFIT_API_CHAT, body, &e);
    cr_expect(r, "exactly 100000 is fine: %s", e.message);
    qfit_api_request_free(r);
    json_decref(body);
}

Test(api, openai_integer_edges)
{
    qfit_api_request *r = parse_ok(QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"seed\":-1}");
    cr_expect_eq(qfit_params_get(r->options, "seed")->i, -1, "seed -1 = random, as Ollama");
    qfit_api_request_free(r);
    r = parse_ok(QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"seed\":9007199254740993}");
    cr_expect_eq(qfit_params_get(r->options, "seed")->i, 9007199254740993LL, "an integer seed is kept exactly");
    qfit_api_request_free(r);
    r = parse_ok(QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"max_tokens\":2.0}");
    cr_expect_eq(qfit_params_get(r->options, "num_predict")->i, 2, "an integral real is an integer");
    qfit_api_request_free(r);
    char body[2200];
    snprintf(body, sizeof body, "{\"model\":\"%01100d\"}", 0);
    parse_err(QFIT_API_GENERATE, body, "model: longer than 1024 bytes", "model");
}

Test(api, openai_warnings)
{
    qfit_api_request *r = parse_ok(QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"parallel_tool_calls\":false,\"stream_options\":{\"include_usage\":true},\"functions\":[]}");
    cr_expect_eq(r->warnings.count, 2);
    cr_expect(strstr(r->warnings.msgs[0], "parallel_tool_calls") != NULL, "%s", r->warnings.msgs[0]);
    cr_expect(strstr(r->warnings.msgs[1], "stream_options") != NULL, "%s", r->warnings.msgs[1]);
    cr_expect(!r->stream);
    qfit_api_request_free(r);
}

Test(api, openai_llama_server_extensions)
{
    /* top_k, min_p, typical_p, repeat_penalty, repeat_last_n at the top level (llama-server's /v1) */
    qfit_api_request *r = parse_ok(QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"top_k\":5,\"min_p\":0.05,\"repeat_penalty\":1.1,\"repeat_last_n\":-1,\"typical_p\":0.9}");
    cr_expect_eq(qfit_params_get(r->options, "top_k")->i, 5);
    cr_expect_float_eq(qfit_params_get(r->options, "min_p")->f, 0.05f, 0);
    cr_expect_float_eq(qfit_params_get(r->options, "repeat_penalty")->f, 1.1f, 0);
    cr_expect_eq(qfit_params_get(r->options, "repeat_last_n")->i, -1);
    cr_expect_float_eq(qfit_params_get(r->options, "typical_p")->f, 0.9f, 0);
    qfit_api_request_free(r);
    r = parse_ok(QFIT_API_OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"p\",\"top_k\":1}");
    cr_expect_eq(qfit_params_get(r->options, "top_k")->i, 1);
    qfit_api_request_free(r);
    parse_err(QFIT_API_OAI_CHAT, "{\"model\":\"m\"," OAI_MSG ",\"top_k\":\"many\"}", "top_k: must be of type integer", "top_k");
}

Test(api, openai_completions_fields)
{
    qfit_api_request *r = parse_ok(QFIT_API_OAI_COMPLETIONS,
        "{\"model\":\"m\",\"prompt\":[\"once\"],\"max_tokens\":16,\"logprobs\":3,\"top_p\":0,\"n\":1,\"echo\":false}");
    cr_expect_str_eq(r->prompt, "once");
    cr_expect_eq(qfit_params_get(r->options, "num_predict")->i, 16);
    cr_expect(r->logprobs);
    cr_expect_eq(r->top_logprobs, 3);
    cr_expect_float_eq(qfit_params_get(r->options, "top_p")->f, 0.0f, 0, "an explicit top_p 0 is kept");
    cr_expect_float_eq(qfit_params_get(r->options, "temperature")->f, 1.0f, 0, "OpenAI default temperature");
    qfit_api_request_free(r);
}

/* ---------------------------------------------------------------- depth */

static json_t *nested(int depth)
{
    json_t *j = json_integer(1);
    for (int i = 0; i < depth; i++) {
        json_t *c = (i % 2) ? json_array() : json_object();
        if (json_is_array(c)) json_array_append_new(c, j);
        else json_object_set_new(c, "k", j);
        j = c;
    }
    return j;
}

Test(api, json_depth)
{
    json_t *a = nested(64), *b = nested(65);
    cr_expect(qfit_api_json_depth_ok(a, 64));
    cr_expect(!qfit_api_json_depth_ok(b, 64));
    cr_expect(qfit_api_json_depth_ok(b, 65));
    json_decref(a);
    json_decref(b);
    json_t *deep = nested(100000);   /* far deeper than any recursion would survive */
    cr_expect(!qfit_api_json_depth_ok(deep, QFIT_API_MAX_DEPTH));
    json_decref(deep);
    /* wide but shallow, and siblings after a deep branch */
    json_t *w = J("{\"a\":[[[1]]],\"b\":[1,2,{\"c\":{}}],\"d\":3}");
    cr_expect(qfit_api_json_depth_ok(w, 4));
    cr_expect(!qfit_api_json_depth_ok(w, 3));
    json_decref(w);
    json_t *s = json_string("x");
    cr_expect(qfit_api_json_depth_ok(s, 0));
    json_decref(s);
    /* tool call arguments arrive as a string: their depth is checked too */
    char body[1024] = "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"";
    for (int i = 0; i < 70; i++) strcat(body, "{\\\"a\\\":");
    strcat(body, "1");
    for (int i = 0; i < 70; i++) strcat(body, "}");
    strcat(body, "\"}}]}]}");
    parse_err(QFIT_API_OAI_CHAT, body, "messages[0].tool_calls[0].function.arguments: nested deeper than 64 levels", NULL);
}

/* ---------------------------------------------------------- encoders */

static const int64_t T0 = 1691176965499127000LL;   /* 2023-08-04T19:22:45.499127Z */

Test(api, rfc3339_as_go)
{
    /* Go: time.Unix(0, n).UTC().Format(time.RFC3339Nano) */
    static const struct { int64_t ns; const char *want; } C[] = {
        { T0, "2023-08-04T19:22:45.499127Z" },
        { 1691176965000000000LL, "2023-08-04T19:22:45Z" },
        { 1691176965000000001LL, "2023-08-04T19:22:45.000000001Z" },
        { 0, "1970-01-01T00:00:00Z" },
        { -1, "1969-12-31T23:59:59.999999999Z" },
        { 4102444800123456789LL, "2100-01-01T00:00:00.123456789Z" },
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        char buf[48];
        qfit_api_rfc3339(C[i].ns, buf, sizeof buf);
        cr_expect_str_eq(buf, C[i].want);
    }
}

static void expect_metrics(const json_t *o, const char *what)
{
    static const char *const F[] = { "total_duration", "load_duration", "prompt_eval_count",
                                     "prompt_eval_duration", "eval_count", "eval_duration" };
    for (size_t i = 0; i < 6; i++)
        cr_expect(json_is_integer(json_object_get(o, F[i])), "%s: %s must be an integer", what, F[i]);
}

static const qfit_api_result FINAL = {
    .done = true, .done_reason = "stop", .prompt_tokens = 26, .completion_tokens = 298,
    .total_ns = 4935886791ULL, .load_ns = 534986708ULL, .prompt_eval_ns = 107345000ULL, .eval_ns = 4289432000ULL,
};

Test(api, ollama_generate_chunks)
{
    qfit_api_meta m = { .model = "llama3.2", .now_ns = T0 };
    qfit_api_result piece = { .content = "The", .thinking = NULL };
    json_t *o = qfit_api_ollama_generate_chunk(&m, &piece), *b = dump_parse(o);
    json_t *want = J("{\"model\":\"llama3.2\",\"created_at\":\"2023-08-04T19:22:45.499127Z\",\"response\":\"The\",\"done\":false}");
    expect_json("generate chunk", "all", b, want);
    json_decref(o), json_decref(b), json_decref(want);

    /* final chunk: done_reason, the six metrics (integers, ns), context */
    qfit_api_result fin = FINAL;
    int32_t ctx[] = { 1, 2, 3 };
    fin.content = "";
    fin.context = ctx;
    fin.n_context = 3;
    o = qfit_api_ollama_generate_chunk(&m, &fin);
    b = dump_parse(o);
    cr_expect(json_is_true(json_object_get(b, "done")));
    cr_expect_str_eq(json_string_value(json_object_get(b, "done_reason")), "stop");
    expect_metrics(b, "generate final");
    cr_expect_eq(json_integer_value(json_object_get(b, "total_duration")), 4935886791LL);
    cr_expect_eq(json_integer_value(json_object_get(b, "eval_count")), 298);
    cr_expect_eq(json_array_size(json_object_get(b, "context")), 3);
    cr_expect_str_eq(json_string_value(json_object_get(b, "response")), "");
    json_decref(o), json_decref(b);

    /* load / unload replies: done_reason, no metrics */
    qfit_api_result load = { .done = true, .done_reason = "load" };
    o = qfit_api_ollama_generate_chunk(&m, &load);
    want = J("{\"model\":\"llama3.2\",\"created_at\":\"2023-08-04T19:22:45.499127Z\",\"response\":\"\",\"done\":true,\"done_reason\":\"load\"}");
    expect_json("load reply", "all", o, want);
    json_decref(o), json_decref(want);

    /* thinking is a separate field, never inside response */
    qfit_api_result th = { .content = "", .thinking = "hmm" };
    o = qfit_api_ollama_generate_chunk(&m, &th);
    cr_expect_str_eq(json_string_value(json_object_get(o, "thinking")), "hmm");
    cr_expect_str_eq(json_string_value(json_object_get(o, "response")), "");
    json_decref(o);
}

Test(api, ollama_chat_chunks)
{
    qfit_api_meta m = { .model = "m", .now_ns = T0 };
    json_t *calls = J("[{\"id\":\"call_abcd1234\",\"function\":{\"index\":0,\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}}]");
    qfit_api_result r = { .content = "", .thinking = "t", .tool_calls = calls };
    json_t *o = qfit_api_ollama_chat_chunk(&m, &r), *b = dump_parse(o);
    json_t *want = J("{\"model\":\"m\",\"created_at\":\"2023-08-04T19:22:45.499127Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"t\","
                     "\"tool_calls\":[{\"id\":\"call_abcd1234\",\"function\":{\"index\":0,\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}}]},\"done\":false}");
    expect_json("chat chunk", "all", b, want);
    cr_expect(json_is_object(json_object_get(json_object_get(json_array_get(json_object_get(json_object_get(b, "message"), "tool_calls"), 0), "function"), "arguments")),
              "native arguments are an object");
    json_decref(o), json_decref(b), json_decref(want), json_decref(calls);

    qfit_api_result fin = FINAL;
    fin.done_reason = "length";
    o = qfit_api_ollama_chat_chunk(&m, &fin);
    b = dump_parse(o);
    cr_expect_str_eq(json_string_value(json_object_get(b, "done_reason")), "length");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(b, "message"), "content")), "");
    cr_expect_null(json_object_get(b, "context"), "chat has no context");
    expect_metrics(b, "chat final");
    json_decref(o), json_decref(b);
}

Test(api, logprobs_shapes_and_bytes)
{
    /* a token that is half of "é" (0xC3 0xA9): token text gets U+FFFD, bytes keep 195 */
    qfit_api_token_logprob top[2] = { { "\xC3", 1, -0.25 }, { " the", 4, -2.5 } };
    qfit_api_logprob lp[1] = { { .tok = { "\xC3", 1, -0.25 }, .n_top = 2, .top = top } };
    qfit_api_result r = { .content = "", .logprobs = lp, .n_logprobs = 1 };
    qfit_api_meta m = { .model = "m", .now_ns = T0, .id = "chatcmpl-x", .created = 1 };
    json_t *o = qfit_api_ollama_generate_chunk(&m, &r), *b = dump_parse(o);
    json_t *want = J("[{\"token\":\"\\ufffd\",\"logprob\":-0.25,\"bytes\":[195],\"top_logprobs\":["
                     "{\"token\":\"\\ufffd\",\"logprob\":-0.25,\"bytes\":[195]},{\"token\":\" the\",\"logprob\":-2.5,\"bytes\":[32,116,104,101]}]}]");
    expect_json("ollama logprobs", "logprobs", json_object_get(b, "logprobs"), want);
    json_decref(o), json_decref(b);

    /* OpenAI chat: choices[0].logprobs.content, same entries */
    json_t *ev = qfit_api_openai_chat_chunks(&m, &r, true);
    cr_assert_eq(json_array_size(ev), 1);
    expect_json("openai logprobs", "content",
                json_object_get(json_object_get(json_array_get(json_object_get(json_array_get(ev, 0), "choices"), 0), "logprobs"), "content"), want);
    json_decref(ev), json_decref(want);

    /* legacy completions: tokens / token_logprobs / top_logprobs maps */
    r.done = true;
    r.done_reason = "length";
    o = qfit_api_openai_completion(&m, &r);
    want = J("{\"tokens\":[\"\\ufffd\"],\"token_logprobs\":[-0.25],\"top_logprobs\":[{\"\\ufffd\":-0.25,\" the\":-2.5}]}");
    expect_json("legacy logprobs", "logprobs", json_object_get(json_array_get(json_object_get(o, "choices"), 0), "logprobs"), want);
    json_decref(o), json_decref(want);
}

Test(api, openai_chat_objects)
{
    qfit_api_meta m = { .model = "llama3.2", .id = "chatcmpl-abc", .created = 1700000000 };
    qfit_api_result r = FINAL;
    r.content = "Hello!";
    r.thinking = "greet";
    json_t *o = qfit_api_openai_chat(&m, &r), *b = dump_parse(o);
    json_t *want = J("{\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"llama3.2\",\"system_fingerprint\":\"fp_qfit\","
                     "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello!\",\"reasoning\":\"greet\"},\"finish_reason\":\"stop\"}],"
                     "\"usage\":{\"prompt_tokens\":26,\"completion_tokens\":298,\"total_tokens\":324}}");
    expect_json("chat.completion", "all", b, want);
    json_decref(o), json_decref(b), json_decref(want);

    /* tool calls: arguments become a JSON string, finish_reason tool_calls, content null */
    json_t *calls = J("[{\"id\":\"call_1\",\"function\":{\"index\":0,\"name\":\"f\",\"arguments\":{\"x\":1,\"a\":\"b\"}}}]");
    qfit_api_result t = FINAL;
    t.tool_calls = calls;
    o = qfit_api_openai_chat(&m, &t);
    json_t *choice = json_array_get(json_object_get(o, "choices"), 0), *msg = json_object_get(choice, "message");
    cr_expect_str_eq(json_string_value(json_object_get(choice, "finish_reason")), "tool_calls");
    cr_expect(json_is_null(json_object_get(msg, "content")));
    json_t *tc = json_array_get(json_object_get(msg, "tool_calls"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(tc, "type")), "function");
    cr_expect_str_eq(json_string_value(json_object_get(tc, "id")), "call_1");
    const char *args = json_string_value(json_object_get(json_object_get(tc, "function"), "arguments"));
    cr_assert(args, "arguments must be a string");
    cr_expect_str_eq(args, "{\"x\":1,\"a\":\"b\"}", "order kept: %s", args);
    json_decref(o);

    /* length is never relabelled */
    t.done_reason = "length";
    o = qfit_api_openai_chat(&m, &t);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(o, "choices"), 0), "finish_reason")), "length");
    json_decref(o), json_decref(calls);
}

Test(api, openai_chat_stream_events)
{
    qfit_api_meta m = { .model = "m", .id = "chatcmpl-abc", .created = 1700000000, .include_usage = true };
    /* first piece: role assistant, finish_reason null */
    qfit_api_result p = { .content = "Hel" };
    json_t *ev = qfit_api_openai_chat_chunks(&m, &p, true);
    cr_assert_eq(json_array_size(ev), 1);
    char *s = qfit_api_sse_data(json_array_get(ev, 0));
    cr_expect(strncmp(s, "data: {", 7) == 0 && strcmp(s + strlen(s) - 3, "}\n\n") == 0, "SSE framing: %s", s);
    json_t *b = J(s + 6);
    free(s);
    json_t *want = J("{\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m\",\"system_fingerprint\":\"fp_qfit\","
                     "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"finish_reason\":null}]}");
    expect_json("first chunk", "all", b, want);
    json_decref(b), json_decref(want), json_decref(ev);

    /* reasoning and content together: two chunks, reasoning first */
    qfit_api_result mix = { .content = "lo", .thinking = "hm" };
    ev = qfit_api_openai_chat_chunks(&m, &mix, false);
    cr_assert_eq(json_array_size(ev), 2);
    json_t *d0 = json_object_get(json_array_get(json_object_get(json_array_get(ev, 0), "choices"), 0), "delta");
    json_t *d1 = json_object_get(json_array_get(json_object_get(json_array_get(ev, 1), "choices"), 0), "delta");
    want = J("{\"reasoning\":\"hm\"}");
    expect_json("reasoning chunk", "delta", d0, want);
    json_decref(want);
    want = J("{\"content\":\"lo\"}");
    expect_json("content chunk", "delta", d1, want);
    json_decref(want), json_decref(ev);

    /* final: finish chunk with an empty delta, then the usage chunk with no choices */
    qfit_api_result fin = FINAL;
    fin.content = "";
    ev = qfit_api_openai_chat_chunks(&m, &fin, false);
    cr_assert_eq(json_array_size(ev), 2, "finish + usage, got %zu", json_array_size(ev));
    json_t *c0 = json_array_get(json_object_get(json_array_get(ev, 0), "choices"), 0);
    cr_expect_eq(json_object_size(json_object_get(c0, "delta")), 0);
    cr_expect_str_eq(json_string_value(json_object_get(c0, "finish_reason")), "stop");
    cr_expect_null(json_object_get(json_array_get(ev, 0), "usage"));
    json_t *u = json_array_get(ev, 1);
    cr_expect_eq(json_array_size(json_object_get(u, "choices")), 0);
    cr_expect(json_is_array(json_object_get(u, "choices")));
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(u, "usage"), "total_tokens")), 324);
    json_decref(ev);

    /* without include_usage: no usage chunk; a tool call sent earlier makes it tool_calls */
    m.include_usage = false;
    m.tool_call_sent = true;
    ev = qfit_api_openai_chat_chunks(&m, &fin, false);
    cr_assert_eq(json_array_size(ev), 1);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(json_array_get(ev, 0), "choices"), 0), "finish_reason")), "tool_calls");
    json_decref(ev);
    cr_expect_str_eq(QFIT_API_SSE_DONE, "data: [DONE]\n\n");
}

Test(api, openai_completion_objects)
{
    qfit_api_meta m = { .model = "m", .id = "cmpl-1", .created = 5, .include_usage = true };
    qfit_api_result r = FINAL;
    r.content = "text";
    json_t *o = qfit_api_openai_completion(&m, &r);
    json_t *want = J("{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":5,\"model\":\"m\",\"system_fingerprint\":\"fp_qfit\","
                     "\"choices\":[{\"text\":\"text\",\"index\":0,\"finish_reason\":\"stop\",\"logprobs\":null}],"
                     "\"usage\":{\"prompt_tokens\":26,\"completion_tokens\":298,\"total_tokens\":324}}");
    expect_json("text_completion", "all", o, want);
    json_decref(o), json_decref(want);

    qfit_api_result p = { .content = "pi" };
    json_t *ev = qfit_api_openai_completion_chunks(&m, &p);
    cr_assert_eq(json_array_size(ev), 1);
    cr_expect(json_is_null(json_object_get(json_array_get(json_object_get(json_array_get(ev, 0), "choices"), 0), "finish_reason")));
    json_decref(ev);
    r.content = "";
    ev = qfit_api_openai_completion_chunks(&m, &r);
    cr_assert_eq(json_array_size(ev), 2);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(json_array_get(ev, 0), "choices"), 0), "finish_reason")), "stop");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(json_array_get(ev, 1), "usage"), "prompt_tokens")), 26);
    json_decref(ev);
}

Test(api, embeddings_float_and_base64)
{
    const float v[2][3] = { { 0.5f, -1.25f, 3.0e-8f }, { 1.0f, 0.0f, -0.0f } };
    json_t *o = qfit_api_openai_embeddings("m", &v[0][0], 2, 3, false, 7), *b = dump_parse(o);
    cr_expect_str_eq(json_string_value(json_object_get(b, "object")), "list");
    json_t *d1 = json_array_get(json_object_get(b, "data"), 1);
    cr_expect_str_eq(json_string_value(json_object_get(d1, "object")), "embedding");
    cr_expect_eq(json_integer_value(json_object_get(d1, "index")), 1);
    json_t *e0 = json_object_get(json_array_get(json_object_get(b, "data"), 0), "embedding");
    for (size_t k = 0; k < 3; k++)
        cr_expect_eq((float)json_number_value(json_array_get(e0, k)), v[0][k], "float %zu survives the text form", k);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(b, "usage"), "total_tokens")), 7);
    json_decref(o), json_decref(b);

    /* base64: little-endian float32, decoded by OpenSSL (an independent decoder) */
    o = qfit_api_openai_embeddings("m", &v[0][0], 2, 3, true, 7);
    for (size_t i = 0; i < 2; i++) {
        const char *s = json_string_value(json_object_get(json_array_get(json_object_get(o, "data"), i), "embedding"));
        cr_assert(s, "base64 embedding %zu is a string", i);
        unsigned char raw[16];
        int n = EVP_DecodeBlock(raw, (const unsigned char *)s, (int)strlen(s));
        cr_assert_eq(n, 12, "12 bytes + padding, got %d for %s", n, s);   /* 16 chars: 12 bytes, no padding */
        for (size_t k = 0; k < 3; k++) {
            uint32_t u = (uint32_t)raw[4 * k] | (uint32_t)raw[4 * k + 1] << 8 | (uint32_t)raw[4 * k + 2] << 16 | (uint32_t)raw[4 * k + 3] << 24;
            float f;
            memcpy(&f, &u, 4);
            cr_expect(memcmp(&f, &v[i][k], 4) == 0, "vector %zu value %zu: %g != %g", i, k, f, v[i][k]);
        }
    }
    json_decref(o);

    /* base64 of every length mod 3, against OpenSSL's encoder */
    const unsigned char bytes[] = "\x00\xff\x10qfit base64\x80";
    for (size_t n = 0; n <= sizeof bytes - 1; n++) {
        char *mine = qfit_api_base64(bytes, n);
        unsigned char ref[64];
        EVP_EncodeBlock(ref, bytes, (int)n);
        cr_expect_str_eq(mine, (char *)ref, "length %zu", n);
        free(mine);
    }

    /* native /api/embed and legacy /api/embeddings */
    qfit_api_meta m = { .model = "all-minilm" };
    qfit_api_result r = { .total_ns = 14143917, .load_ns = 1019500, .prompt_tokens = 8 };
    o = qfit_api_ollama_embed(&m, &v[0][0], 2, 3, &r);
    b = dump_parse(o);
    cr_expect_eq(json_array_size(json_object_get(b, "embeddings")), 2);
    cr_expect_eq(json_array_size(json_array_get(json_object_get(b, "embeddings"), 0)), 3);
    cr_expect_eq(json_integer_value(json_object_get(b, "prompt_eval_count")), 8);
    cr_expect(json_is_integer(json_object_get(b, "total_duration")) && json_is_integer(json_object_get(b, "load_duration")));
    json_decref(o), json_decref(b);
    o = qfit_api_ollama_embed(&m, NULL, 0, 0, NULL);
    json_t *want = J("{\"model\":\"all-minilm\",\"embeddings\":[]}");
    expect_json("empty embed", "all", o, want);
    json_decref(o), json_decref(want);
    o = qfit_api_ollama_embedding(&v[1][0], 3);
    cr_expect_eq(json_array_size(json_object_get(o, "embedding")), 3);
    json_decref(o);
    o = qfit_api_ollama_embedding(NULL, 0);
    want = J("{\"embedding\":[]}");
    expect_json("empty legacy embedding", "all", o, want);
    json_decref(o), json_decref(want);
}

Test(api, models_and_errors)
{
    json_t *list = json_array();
    json_array_append_new(list, qfit_api_openai_model("llama3.2:latest", 1700000000, "library"));
    json_t *o = qfit_api_openai_model_list(list);
    json_t *want = J("{\"object\":\"list\",\"data\":[{\"id\":\"llama3.2:latest\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"library\"}]}");
    expect_json("model list", "all", o, want);
    json_decref(o), json_decref(want), json_decref(list);
    o = qfit_api_openai_model_list(NULL);
    cr_expect(json_is_array(json_object_get(o, "data")) && json_array_size(json_object_get(o, "data")) == 0, "data: [] never null");
    json_decref(o);

    static const struct { int status; const char *type; } T[] = {
        { 400, "invalid_request_error" }, { 401, "authentication_error" }, { 403, "permission_error" },
        { 404, "not_found_error" }, { 429, "rate_limit_error" }, { 500, "api_error" }, { 503, "api_error" },
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        o = qfit_api_openai_error(T[i].status, "boom", i == 0 ? "messages" : NULL);
        json_t *e = json_object_get(o, "error");
        cr_expect_str_eq(json_string_value(json_object_get(e, "type")), T[i].type, "%d", T[i].status);
        cr_expect_str_eq(json_string_value(json_object_get(e, "message")), "boom");
        cr_expect(json_object_get(e, "code") && json_is_null(json_object_get(e, "code")));
        cr_expect(i == 0 ? json_is_string(json_object_get(e, "param")) : json_is_null(json_object_get(e, "param")));
        json_decref(o);
    }
    o = qfit_api_ollama_error("model 'x' not found");
    char *line = qfit_api_ndjson_line(o);
    cr_expect_str_eq(line, "{\"error\":\"model 'x' not found\"}\n");
    free(line);
    json_decref(o);
}

Test(api, ids)
{
    char a[64], b[64], c[16];
    qfit_api_make_id("chatcmpl-", 1, 24, a, sizeof a);
    qfit_api_make_id("chatcmpl-", 2, 24, b, sizeof b);
    cr_expect_eq(strlen(a), 9 + 24);
    cr_expect_str_neq(a, b);
    for (size_t i = 9; a[i]; i++) cr_expect((a[i] >= 'a' && a[i] <= 'z') || (a[i] >= '0' && a[i] <= '9'), "%s", a);
    qfit_api_make_id("call_", 7, 8, c, sizeof c);
    cr_expect_eq(strlen(c), 13, "call_ + 8: %s", c);
    qfit_api_make_id("call_", 7, 8, c, 10);   /* cut to fit */
    cr_expect_eq(strlen(c), 9);
}

Test(api, accumulate_non_streaming)
{
    qfit_api_accum *a = qfit_api_accum_new();
    cr_assert(a);
    json_t *c1 = J("[{\"function\":{\"index\":0,\"name\":\"f\",\"arguments\":{}}}]");
    json_t *c2 = J("[{\"function\":{\"index\":1,\"name\":\"g\",\"arguments\":{\"x\":1}}}]");
    char piece[4] = "ab";   /* a caller's buffer, reused: the accumulator must copy */
    qfit_api_token_logprob top = { "ab", 2, -0.5 };
    qfit_api_logprob lp = { .tok = { piece, 2, -0.5 }, .n_top = 1, .top = &top };
    qfit_api_result p1 = { .content = piece, .thinking = "th", .tool_calls = c1, .logprobs = &lp, .n_logprobs = 1 };
    cr_assert_eq(qfit_api_accum_add(a, &p1), 0);
    strcpy(piece, "cd");
    qfit_api_result p2 = { .content = piece, .tool_calls = c2 };
    cr_assert_eq(qfit_api_accum_add(a, &p2), 0);
    qfit_api_result p3 = { .thinking = "ink" };
    cr_assert_eq(qfit_api_accum_add(a, &p3), 0);
    json_decref(c1), json_decref(c2);

    qfit_api_result fin = FINAL;
    qfit_api_accum_get(a, &fin);
    cr_expect_str_eq(fin.content, "abcd");
    cr_expect_str_eq(fin.thinking, "think");
    cr_expect_eq(json_array_size(fin.tool_calls), 2);
    cr_expect_eq(fin.n_logprobs, 1);
    cr_expect_eq(fin.completion_tokens, 298, "other fields untouched");
    qfit_api_meta m = { .model = "m", .now_ns = T0 };
    json_t *o = qfit_api_ollama_chat_chunk(&m, &fin);
    json_t *want = J("{\"role\":\"assistant\",\"content\":\"abcd\",\"thinking\":\"think\",\"tool_calls\":["
                     "{\"function\":{\"index\":0,\"name\":\"f\",\"arguments\":{}}},{\"function\":{\"index\":1,\"name\":\"g\",\"arguments\":{\"x\":1}}}]}");
    expect_json("non-streaming chat", "message", json_object_get(o, "message"), want);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(o, "logprobs"), 0), "token")), "ab",
                     "the logprob token was copied, not borrowed");
    expect_metrics(o, "non-streaming chat");
    json_decref(o), json_decref(want);
    qfit_api_accum_free(a);

    /* nothing added: empty content, no thinking, no calls */
    a = qfit_api_accum_new();
    qfit_api_result e = { 0 };
    qfit_api_accum_get(a, &e);
    cr_expect_str_eq(e.content, "");
    cr_expect_null(e.thinking);
    cr_expect_null(e.tool_calls);
    qfit_api_accum_free(a);
}

/* ------------------------------------------- through the chat templates */

/* The same conversation as an OpenAI client sends it: arguments as JSON strings,
 * thinking as `reasoning`, the tool name of a result as `name`, type "function". */
static json_t *to_openai_messages(const json_t *native)
{
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(native, i, m) {
        json_t *o = json_pack("{s:O,s:O}", "role", json_object_get(m, "role"), "content", json_object_get(m, "content"));
        if (json_object_get(m, "thinking")) json_object_set(o, "reasoning", json_object_get(m, "thinking"));
        if (json_object_get(m, "tool_call_id")) json_object_set(o, "tool_call_id", json_object_get(m, "tool_call_id"));
        /* with a call id the client sends no name: qfit must find it from the call */
        if (json_object_get(m, "tool_name") && !json_object_get(m, "tool_call_id"))
            json_object_set(o, "name", json_object_get(m, "tool_name"));
        const json_t *calls = json_object_get(m, "tool_calls");
        if (calls) {
            json_t *oc = json_array();
            size_t k;
            json_t *c;
            json_array_foreach(calls, k, c) {
                const json_t *f = json_object_get(c, "function");
                char *args = json_dumps(json_object_get(f, "arguments"), JSON_COMPACT | JSON_REAL_PRECISION(17));
                json_array_append_new(oc, json_pack("{s:O,s:s,s:{s:O,s:O,s:s}}", "id", json_object_get(c, "id"), "type", "function",
                                                    "function", "name", json_object_get(f, "name"), "index",
                                                    json_object_get(f, "index"), "arguments", args));
                free(args);
            }
            json_object_set_new(o, "tool_calls", oc);
        }
        json_array_append_new(out, o);
    }
    return out;
}

static char *render(const json_t *tcase, const qfit_api_request *r)
{
    const json_t *think = json_object_get(tcase, "think");
    qfit_chat_input in = { .messages = r->messages, .tools = r->tools, .think = json_is_boolean(think) ? json_is_true(think) : -1 };
    char *out = NULL, err[256];
    int rc = qfit_template_render_go(json_string_value(json_object_get(tcase, "template")), &in, &out, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: %s", json_string_value(json_object_get(tcase, "name")), err);
    return out;
}

/* Ollama library templates over five conversations, expected outputs from Go's
 * text/template (tests/data/templates/library): a native /api/chat body and the
 * same conversation through /v1/chat/completions must both render exactly so. */
Test(api, parsed_messages_render_as_ollama)
{
    json_error_t je;
    json_t *cases = json_load_file("tests/data/templates/library/cases.json", 0, &je);
    cr_assert(cases, "tests/data/templates/library/cases.json: %s", je.text);
    size_t i, n_tools = 0;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *want = json_string_value(json_object_get(c, "expected"));
        const json_t *tools = json_object_get(c, "tools");
        for (int openai = 0; openai < 2; openai++) {
            json_t *msgs = openai ? to_openai_messages(json_object_get(c, "messages")) : json_incref(json_object_get(c, "messages"));
            json_t *body = json_pack("{s:s,s:o}", "model", "m", "messages", msgs);
            if (tools) json_object_set(body, "tools", (json_t *)tools);
            qfit_api_error e;
            qfit_api_request *r = qfit_api_parse(openai ? QFIT_API_OAI_CHAT : QFIT_API_CHAT, body, &e);
            json_decref(body);
            cr_assert(r, "%s (%s): %s", name, openai ? "openai" : "native", e.message);
            char *got = render(c, r);
            cr_expect_str_eq(got, want, "%s through %s", name, openai ? "/v1/chat/completions" : "/api/chat");
            free(got);
            qfit_api_request_free(r);
        }
        n_tools += tools != NULL;
    }
    cr_expect(n_tools >= 20, "cases with tools: %zu", n_tools);
    json_decref(cases);
}

Test(api, path_decode)
{
    char out[64];
    cr_assert_eq(qfit_api_path_decode("hf.co%2Fu%2Fr:Q4_K_M", out, sizeof out), 0);
    cr_expect_str_eq(out, "hf.co/u/r:Q4_K_M");   /* openai-node's encodeURIPath form */
    cr_assert_eq(qfit_api_path_decode("llama3.2:latest", out, sizeof out), 0);
    cr_expect_str_eq(out, "llama3.2:latest");
    cr_assert_eq(qfit_api_path_decode("a+b%2b%41%c3%a9", out, sizeof out), 0);
    cr_expect_str_eq(out, "a+b+A\xc3\xa9");
    cr_expect_eq(qfit_api_path_decode("x%2", out, sizeof out), -1, "truncated escape");
    cr_expect_eq(qfit_api_path_decode("x%", out, sizeof out), -1);
    cr_expect_eq(qfit_api_path_decode("x%G1", out, sizeof out), -1, "not hex");
    cr_expect_eq(qfit_api_path_decode("x%00y", out, sizeof out), -1, "encoded NUL");
    cr_expect_eq(qfit_api_path_decode("abcd", out, 4), -1, "no room for the NUL");
    cr_expect_eq(qfit_api_path_decode("abc", out, 4), 0);
    cr_expect_eq(qfit_api_path_decode("", out, 1), 0);
    cr_expect_str_eq(out, "");
}
