/* libFuzzer target: the API request parser (qfit_api_parse) and the encoders.
 *
 * The first byte picks the endpoint (generate, chat, embed, embeddings, /v1 chat,
 * completions, embeddings); the rest is a request body, parsed by jansson (NUL
 * escapes allowed, as a lenient HTTP layer might) and checked with
 * qfit_api_json_depth_ok first, as the HTTP layer does. A refused body must come
 * with status 400 (or 500: out of memory), a message, and a param that is the
 * message's prefix. An accepted one must satisfy the struct's documented bounds,
 * and its messages/tool calls go through the response encoders and back through
 * jansson. The raw bytes also go through qfit_api_path_decode. Everything is
 * freed (ASan/LSan report leaks).
 * Build: make fuzz; run:
 *   mkdir -p fuzz/corpus-api
 *   ./build/fuzz/fuzz_api -max_total_time=180 -max_len=4096 -timeout=10 \
 *       -artifact_prefix=build/fuzz/ -print_final_stats=1 fuzz/corpus-api
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

/* An encoder's output must dump and parse back. */
static void roundtrip(json_t *j)
{
    check(j != NULL, "encoder returned NULL");
    char *s = qfit_api_ndjson_line(j);
    check(s != NULL, "dump failed");
    json_error_t je;
    json_t *back = json_loads(s, 0, &je);
    check(back != NULL, "encoder output does not parse back");
    json_decref(back);
    free(s);
    json_decref(j);
}

static void encode(const qfit_api_request *r)
{
    qfit_api_meta m = { .model = r->model, .now_ns = 1691176965499127000LL, .created = 1, .id = "chatcmpl-x",
                        .include_usage = r->include_usage };
    /* the last message's text and tool calls as if the model had produced them */
    const json_t *last = json_array_get(r->messages, json_array_size(r->messages) - 1);
    const char *text = r->prompt ? r->prompt : json_string_value(json_object_get(last, "content"));
    qfit_api_token_logprob t = { text ? text : "", text ? strlen(text) : 0, -1.5 };
    qfit_api_logprob lp = { .tok = t, .n_top = 1, .top = &t };
    qfit_api_result res = { .content = text, .thinking = json_string_value(json_object_get(last, "thinking")),
                            .tool_calls = json_object_get(last, "tool_calls"), .logprobs = &lp, .n_logprobs = 1,
                            .done = true, .done_reason = "stop", .prompt_tokens = 3, .completion_tokens = 4,
                            .context = r->context, .n_context = r->n_context };
    roundtrip(qfit_api_ollama_generate_chunk(&m, &res));
    roundtrip(qfit_api_ollama_chat_chunk(&m, &res));
    roundtrip(qfit_api_openai_chat(&m, &res));
    roundtrip(qfit_api_openai_chat_chunks(&m, &res, true));
    roundtrip(qfit_api_openai_completion(&m, &res));
    roundtrip(qfit_api_openai_completion_chunks(&m, &res));
    float v[4] = { 0.5f, -1.0f, 0.0f, 3.25f };
    roundtrip(qfit_api_openai_embeddings(r->model, v, r->n_inputs ? 1 : 0, 4, r->base64, 2));
    roundtrip(qfit_api_ollama_embed(&m, v, 1, 4, &res));
    roundtrip(qfit_api_openai_error(400, r->model, r->model));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    /* the bytes as a /v1/models/{id} path segment too */
    char *path = malloc(size + 1), out[256];
    if (!path) return 0;
    memcpy(path, data, size);
    path[size] = '\0';
    if (qfit_api_path_decode(path, out, sizeof out) == 0) check(strlen(out) <= strlen(path), "decoded longer");
    free(path);
    qfit_api_endpoint ep = (qfit_api_endpoint)(data[0] % 7);
    json_error_t je;
    json_t *body = json_loadb((const char *)data + 1, size - 1, JSON_ALLOW_NUL, &je);
    if (!body) return 0;
    if (!qfit_api_json_depth_ok(body, QFIT_API_MAX_DEPTH)) {
        json_decref(body);
        return 0;
    }
    qfit_api_error e;
    qfit_api_request *r = qfit_api_parse(ep, body, &e);
    json_decref(body);
    if (!r) {
        check(e.status == 400 || e.status == 500, "status");
        check(e.message[0] != '\0', "empty message");
        check(strncmp(e.message, e.param, strlen(e.param)) == 0, "param is not the message's prefix");
        return 0;
    }
    check(r->model && r->model[0], "model");
    check(r->think >= -1 && r->think <= 1, "think");
    check(r->top_logprobs >= 0 && r->top_logprobs <= 20, "top_logprobs");
    check(r->top_logprobs == 0 || r->logprobs, "top_logprobs without logprobs");
    const qfit_param *stop = qfit_params_get(r->options, "stop");
    check(!stop || stop->nstrs <= QFIT_API_MAX_STOP, "stop count");
    bool chat = ep == QFIT_API_CHAT || ep == QFIT_API_OAI_CHAT;
    check(chat == (r->messages != NULL), "messages iff chat");
    check(r->format != QFIT_API_FORMAT_SCHEMA || json_is_object(r->schema), "schema");
    check(r->tool_choice != QFIT_API_TOOL_NAMED || r->tool_name, "tool_name");
    for (size_t i = 0; i < r->n_inputs; i++) check((r->inputs[i].text != NULL) != (r->inputs[i].tokens != NULL), "input");
    encode(r);
    qfit_api_request_free(r);
    return 0;
}
