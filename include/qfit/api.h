/* qfit — the JSON protocol of the Ollama and OpenAI HTTP APIs, without HTTP:
 * request bodies (already parsed by jansson) into neutral structs, and engine
 * results into response objects. Pure functions over jansson; no I/O, no clock,
 * no random numbers, no global state: the caller passes times and ids in.
 * (ollama-compat-reference.md sections 0-2 and 9 list the fields and shapes.)
 *
 * Requests: qfit_api_parse(endpoint, body) validates everything the protocol
 * says about a request (types, ranges, enumerations, counts, the combinations
 * Ollama refuses) and returns one qfit_api_request whatever the endpoint, with
 * OpenAI requests translated into the native meaning (max_tokens -> num_predict,
 * response_format -> format, stop -> options.stop, OpenAI messages -> Ollama
 * message objects, OpenAI's sampling defaults temperature 1 and top_p 1 made
 * explicit; llama-server's top-level top_k, min_p, typical_p, repeat_penalty,
 * repeat_last_n honoured too). What depends on the model (capabilities, context
 * length, the model's own parameters) is the caller's job.
 *   - Stricter than Ollama, on purpose: OpenAI ranges are enforced (temperature
 *     [0, 2], top_p [0, 1], penalties [-2, 2], n = 1); roles are checked; an
 *     explicit /v1/completions top_p 0 is kept (Ollama cannot tell it from absent);
 *     max_tokens and max_completion_tokens both given must agree.
 *   - Unknown top-level fields are ignored (clients send many). Unknown and
 *     deprecated `options` keys are warnings (req->warnings), never errors.
 *   - A value qfit cannot honour is an error naming it, never dropped: images
 *     (no vision), OpenAI n > 1, best_of > 1, echo, a non-empty logit_bias,
 *     an image or audio content part, the deprecated functions / function_call,
 *     audio output. Accepted but not enforceable: parallel_tool_calls false (a
 *     warning).
 *   - Option values are type-checked here (modelfile.h qfit_params_from_json);
 *     their ranges depend on the engine: call qfit_chat_apply_params(req->options,
 *     NULL, NULL, ...) to check them alone (400 "options: " + its message), and
 *     again on the merged set (model params, then request options).
 * Errors: NULL with e->status (400 for anything wrong with the request, 500 only
 * for out of memory) and e->message, which starts with the JSON path of the
 * field at fault: "messages[2].role: ...", "options.temperature: ...".
 * Limits: the QFIT_API_MAX_* counts below; nesting depth is the HTTP layer's
 * check (qfit_api_json_depth_ok) before parsing; request strings may not
 * contain NUL characters.
 *
 * Responses: encoders build json_t objects (the caller dumps them: compact,
 * see qfit_api_ndjson_line / qfit_api_sse_data) from a qfit_api_result the
 * caller fills from the engine, and a qfit_api_meta (model name, times, ids)
 * that stays the same for one response stream. Ollama: one chunk per call, the
 * final chunk (done) with done_reason and the six timing fields in integer
 * nanoseconds; non-streaming is the final chunk carrying the whole text. OpenAI:
 * one call may give several SSE events (a reasoning and a content delta are two
 * chunks, the finish chunk, the usage chunk), so the chunk encoders return an
 * array of events to send in order. Token text that is not valid UTF-8 (a byte
 * piece of a character) is written with U+FFFD in `token`; `bytes` keeps the
 * raw bytes (legacy /v1/completions logprobs: tokens, token_logprobs,
 * top_logprobs; no text_offset). Write with qfit_api_ndjson_line / qfit_api_sse_data: they print
 * reals with 9 significant digits, which carries every float32 exactly (jansson's
 * default of 17 would print 0.1f as 0.10000000149011612).
 *
 * A handler, in short:
 *   body = json_loadb(...); if (!qfit_api_json_depth_ok(body, QFIT_API_MAX_DEPTH)) 400;
 *   req = qfit_api_parse(endpoint, body, &e); if (!req) reply e.status with e.message
 *     (native: qfit_api_ollama_error; /v1: qfit_api_openai_error(e.status, e.message, e.param));
 *   log req->warnings; LOAD / UNLOAD actions reply at once (done_reason "load"/"unload");
 *   merge the model's params with req->options, qfit_chat_apply_params, render
 *     req->messages / req->tools (qfit_chat_render), constrain by req->format / schema;
 *   per piece: stream ? send chunk(s) : qfit_api_accum_add; at the end fill the
 *     done fields (reason, counts, durations) and send the final chunk / object;
 *     /v1 streams end with QFIT_API_SSE_DONE; a mid-stream failure is one
 *     qfit_api_ollama_error line (native) or an SSE event of qfit_api_openai_error.
 *
 * Ownership: a qfit_api_request owns everything it points to (malloc'd copies,
 * json_t references it holds); qfit_api_request_free releases all of it. The
 * body given to qfit_api_parse is not modified and not kept. Encoders borrow
 * their inputs and return a new reference (json_decref it) or a malloc'd string;
 * NULL only when out of memory or, where said, on invalid input.
 * Thread-safety: no shared state; distinct objects may be used from distinct
 * threads. Units: durations in nanoseconds, times in Unix nanoseconds (UTC).
 * Needs jansson.
 */
#ifndef QFIT_API_H
#define QFIT_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "qfit/modelfile.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QFIT_API_MAX_DEPTH      64        /* nesting of a request body */
#define QFIT_API_MAX_MESSAGES   100000u
#define QFIT_API_MAX_TOOLS      1000u
#define QFIT_API_MAX_STOP       16u       /* stop strings in one request */
#define QFIT_API_MAX_INPUTS     100000u   /* embedding inputs */
#define QFIT_API_MAX_TOKENS     (1u << 24)/* token ids in one input or in `context` */
#define QFIT_API_MAX_NAME       1024u     /* bytes of a model or tool name */
#define QFIT_API_MAX_TOP_LOGPROBS 20
#define QFIT_API_MAX_DIMENSIONS (1 << 20)

/* true when no array/object in j is nested deeper than max levels (j itself is
 * level 1). Iterative: safe on any depth jansson could build. */
bool qfit_api_json_depth_ok(const json_t *j, int max);

/* ------------------------------------------------------------- requests */

typedef enum {
    QFIT_API_GENERATE,          /* POST /api/generate */
    QFIT_API_CHAT,              /* POST /api/chat */
    QFIT_API_EMBED,             /* POST /api/embed */
    QFIT_API_EMBEDDINGS,        /* POST /api/embeddings (legacy) */
    QFIT_API_OAI_CHAT,          /* POST /v1/chat/completions */
    QFIT_API_OAI_COMPLETIONS,   /* POST /v1/completions */
    QFIT_API_OAI_EMBEDDINGS,    /* POST /v1/embeddings */
} qfit_api_endpoint;

typedef enum {
    QFIT_API_RUN,      /* generate / embed */
    QFIT_API_LOAD,     /* native: empty prompt / messages / input: load only, reply done_reason "load" */
    QFIT_API_UNLOAD,   /* the same with keep_alive 0: reply done_reason "unload", expire the model */
} qfit_api_action;

typedef enum {
    QFIT_API_FORMAT_NONE,
    QFIT_API_FORMAT_JSON,     /* "json", response_format json_object */
    QFIT_API_FORMAT_SCHEMA,   /* a JSON Schema object (req->schema) */
} qfit_api_format;

typedef enum {
    QFIT_API_TOOL_AUTO,       /* default (and the only native behaviour) */
    QFIT_API_TOOL_NONE,       /* tool_choice "none": the caller renders without tools */
    QFIT_API_TOOL_REQUIRED,   /* "required": some tool must be called */
    QFIT_API_TOOL_NAMED,      /* {"type":"function","function":{"name"}}: req->tool_name */
} qfit_api_tool_choice;

/* One embedding input: text, or token ids (OpenAI accepts arrays of ids). */
typedef struct {
    char    *text;       /* NULL when tokens */
    int32_t *tokens;
    size_t   n_tokens;
} qfit_api_input;

typedef struct {
    qfit_api_endpoint endpoint;
    qfit_api_action   action;
    char *model;                 /* required, non-empty */

    /* generate / completions (NULL when absent) */
    char *prompt;
    char *suffix;
    char *system;                /* generate only */
    char *tmpl;                  /* generate `template` */
    bool  raw;
    int32_t *context;            /* generate's deprecated `context` tokens (NULL: none) */
    size_t   n_context;

    /* chat: an array of Ollama message objects {role, content, thinking?,
     * tool_calls?[{id?, function:{index, name, arguments:{object}}}], tool_name?,
     * tool_call_id?} (roles lower-cased, OpenAI messages converted: developer ->
     * system, text parts -> one message each as Ollama does, arguments strings
     * parsed, tool_name found from tool_call_id). Never NULL for chat endpoints
     * (possibly empty); NULL otherwise. */
    json_t *messages;
    json_t *tools;               /* array of tool definitions, NULL when none */
    qfit_api_tool_choice tool_choice;
    char  *tool_name;            /* QFIT_API_TOOL_NAMED */

    qfit_api_format format;
    json_t *schema;              /* QFIT_API_FORMAT_SCHEMA */
    bool    schema_strict;       /* json_schema.strict */

    qfit_params  *options;       /* never NULL: the request's options, OpenAI fields mapped in */
    qfit_warnings warnings;      /* ignored options and fields, each naming its path */

    bool stream;                 /* native default true; OpenAI default false */
    bool include_usage;          /* OpenAI stream_options.include_usage */
    bool keep_alive_set;         /* false: keep the model's current timer */
    int64_t keep_alive_ns;       /* QFIT_FOREVER_NS (config.h) for negative values; 0 = unload when idle */
    int  think;                  /* -1 unset, 0 off, 1 on */
    char think_level[8];         /* "" or "low" | "medium" | "high" | "max" (think == 1) */
    bool logprobs;
    int  top_logprobs;           /* 0..20, only with logprobs */
    bool truncate;               /* native default true (embed: cut inputs; chat: drop old turns) */
    bool shift;                  /* native default true */

    /* embeddings */
    qfit_api_input *inputs;
    size_t          n_inputs;
    int  dimensions;             /* 0: the model's */
    bool base64;                 /* OpenAI encoding_format "base64" */
} qfit_api_request;

typedef struct {
    int  status;                 /* HTTP status: 400, or 500 when out of memory */
    char message[512];           /* "path: what is wrong" */
    char param[128];             /* the JSON path alone ("messages[2].role"; "" if none): OpenAI's error.param */
} qfit_api_error;

qfit_api_request *qfit_api_parse(qfit_api_endpoint endpoint, const json_t *body, qfit_api_error *e);
void qfit_api_request_free(qfit_api_request *r);

/* ------------------------------------------------------------ responses */

/* One token's log-probabilities (engine: qfit_gen_token + detokenized pieces). */
typedef struct {
    const char *token;           /* the token's bytes (any bytes) */
    size_t      len;
    double      logprob;
} qfit_api_token_logprob;

typedef struct {
    qfit_api_token_logprob tok;
    size_t n_top;
    const qfit_api_token_logprob *top;   /* most likely first */
} qfit_api_logprob;

/* What the engine produced since the last chunk (streaming), or in all
 * (non-streaming final). Fields left zero/NULL are absent from the output. */
typedef struct {
    const char *content;         /* text piece (NULL = "") */
    const char *thinking;        /* reasoning piece */
    const json_t *tool_calls;    /* array of Ollama tool calls (arguments as objects), or NULL */
    const qfit_api_logprob *logprobs;
    size_t n_logprobs;

    bool done;                   /* the final chunk */
    const char *done_reason;     /* "stop" | "length" | "load" | "unload" (done) */
    int prompt_tokens;           /* prompt_eval_count */
    int completion_tokens;       /* eval_count */
    uint64_t total_ns, load_ns, prompt_eval_ns, eval_ns;
    const int32_t *context;      /* generate: tokens to return as `context` (done), or NULL */
    size_t n_context;
} qfit_api_result;

/* Fixed for one response (stream). */
typedef struct {
    const char *model;           /* the name the client asked for */
    int64_t     now_ns;          /* wall-clock time of this chunk, Unix ns (Ollama created_at) */
    int64_t     created;         /* OpenAI `created`, Unix seconds, pinned for the stream */
    const char *id;              /* OpenAI "chatcmpl-..." / "cmpl-..." (qfit_api_make_id) */
    bool        include_usage;   /* OpenAI streams: add the usage chunk */
    bool        tool_call_sent;  /* OpenAI chat stream: the caller sets it once a chunk carried tool calls */
} qfit_api_meta;

/* RFC 3339 with nanoseconds in UTC as Go's time.RFC3339Nano writes it (trailing
 * zeros of the fraction dropped): "2023-08-04T19:22:45.499127Z". buf >= 40. */
void qfit_api_rfc3339(int64_t unix_ns, char *buf, size_t len);
/* prefix + n_chars characters [a-z0-9] derived from r (the caller's random
 * number), cut to fit len: ("chatcmpl-", r, 24) for OpenAI ids, ("call_", r, 8)
 * for tool call ids as Ollama writes them. */
void qfit_api_make_id(const char *prefix, uint64_t r, size_t n_chars, char *buf, size_t len);

/* Framing (malloc'd, NUL-terminated): one compact JSON line + "\n"; one SSE
 * event "data: <json>\n\n". QFIT_API_SSE_DONE ends an OpenAI stream. */
char *qfit_api_ndjson_line(const json_t *obj);
char *qfit_api_sse_data(const json_t *obj);
#define QFIT_API_SSE_DONE "data: [DONE]\n\n"

/* Ollama native. */
json_t *qfit_api_ollama_generate_chunk(const qfit_api_meta *m, const qfit_api_result *r);
json_t *qfit_api_ollama_chat_chunk(const qfit_api_meta *m, const qfit_api_result *r);
/* /api/embed: n vectors of dim floats (row-major); prompt_tokens, durations from r. */
json_t *qfit_api_ollama_embed(const qfit_api_meta *m, const float *vectors, size_t n, size_t dim,
                              const qfit_api_result *r);
/* /api/embeddings (legacy): one vector (dim 0: the empty load reply). */
json_t *qfit_api_ollama_embedding(const float *vector, size_t dim);
json_t *qfit_api_ollama_error(const char *message);

/* OpenAI. Non-streaming objects: */
json_t *qfit_api_openai_chat(const qfit_api_meta *m, const qfit_api_result *r);
json_t *qfit_api_openai_completion(const qfit_api_meta *m, const qfit_api_result *r);
/* Streaming: the events for this result, in order (an array, maybe empty). The
 * first call of a chat stream (first = true) carries role "assistant". A done
 * result gives its content chunk if any, the finish chunk, and the usage chunk
 * when m->include_usage. The caller ends with QFIT_API_SSE_DONE. */
json_t *qfit_api_openai_chat_chunks(const qfit_api_meta *m, const qfit_api_result *r, bool first);
json_t *qfit_api_openai_completion_chunks(const qfit_api_meta *m, const qfit_api_result *r);
/* /v1/embeddings: n vectors of dim floats; base64 = little-endian float32 bytes. */
json_t *qfit_api_openai_embeddings(const char *model, const float *vectors, size_t n, size_t dim,
                                   bool base64, int prompt_tokens);
/* /v1/models entries: {"id","object":"model","created","owned_by"}; the list wraps
 * an array of them (data: [] when none). */
json_t *qfit_api_openai_model(const char *id, int64_t created, const char *owned_by);
json_t *qfit_api_openai_model_list(const json_t *models);
/* {"error":{"message","type","param","code"}}: type invalid_request_error (400),
 * authentication_error (401), permission_error (403), not_found_error (404),
 * rate_limit_error (429), api_error otherwise. param may be NULL (null). */
json_t *qfit_api_openai_error(int status, const char *message, const char *param);

/* Non-streaming replies: collect the pieces of a generation (content, thinking,
 * tool calls, logprobs), then encode the final result once. Everything added is
 * copied. */
typedef struct qfit_api_accum qfit_api_accum;
qfit_api_accum *qfit_api_accum_new(void);
void qfit_api_accum_free(qfit_api_accum *a);
/* Append a piece (its done fields are ignored). 0, or -1 when out of memory. */
int  qfit_api_accum_add(qfit_api_accum *a, const qfit_api_result *piece);
/* Set out's content, thinking, tool_calls (NULL when none) and logprobs to all
 * that was added, in order; the other fields of out are left as they are.
 * Pointers stay valid until the next add or free. */
void qfit_api_accum_get(const qfit_api_accum *a, qfit_api_result *out);

/* A URL path segment percent-decoded into out (cap bytes with the NUL), as
 * /v1/models/{id} needs: openai-node sends "hf.co%2Fu%2Fr:Q4_K_M". '+' stays '+'
 * (a path, not a query). -1 on a malformed escape, an encoded NUL, or no room. */
int qfit_api_path_decode(const char *in, char *out, size_t cap);

/* Base64 (standard alphabet, padded) of n bytes; malloc'd. Exposed for tests. */
char *qfit_api_base64(const void *data, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_API_H */
