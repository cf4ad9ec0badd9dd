/* qfit — split a model's generated text into content, thinking and tool calls.
 *
 * A chat model answers in one stream of text that mixes what the user should
 * see (content), its reasoning (thinking) and requests to call tools, each in
 * the markup of its family. This module turns that stream into the three parts
 * of an Ollama/OpenAI response and never lets markup reach the content.
 *
 * Formats (markup as in Ollama's tools/, thinking/, harmony/ and llama.cpp's
 * common/chat.cpp):
 *   JSON     Llama 3.x: the whole answer is {"name": N, "parameters"|"arguments": {...}}
 *            (several may follow, separated by ';' or whitespace), or such an
 *            object after <|python_tag|>. An answer whose first character is not
 *            '{' is content; a complete object that is not a call, or that names
 *            a tool not in `tools`, is content (as Ollama).
 *   HERMES   Qwen2.5 / Qwen3 / Hermes: <tool_call>{"name":..., "arguments":{...}}</tool_call>,
 *            any number, anywhere in the answer. Qwen3-Coder's body
 *            <function=NAME><parameter=P>VALUE</parameter></function> is taken
 *            too: a VALUE becomes the JSON type its schema asks for (as Ollama:
 *            null, boolean, integer, number, array, object), else a string.
 *   MISTRAL  [TOOL_CALLS][{"name":..., "arguments":{...}}, ...] and the newer
 *            [TOOL_CALLS]NAME[ARGS]{...}; a stray [/TOOL_CALLS] is dropped.
 *            Thinking tags are [THINK] [/THINK] (Magistral).
 *   HARMONY  gpt-oss: <|channel|>analysis<|message|>...<|end|> is thinking,
 *            <|channel|>final<|message|>... is content, and
 *            <|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{...}<|call|>
 *            is a call (a recipient without "functions." — browser.search,
 *            python — is the tool name as it is). A message left open at the
 *            end of generation is closed there (<|call|>, <|return|> are
 *            end-of-generation tokens: the engine may stop before printing them).
 *   DEEPSEEK DeepSeek R1 / V3.1 (special tokens with U+FF5C and U+2581, shown
 *            here with | and _): <|tool_calls_begin|><|tool_call_begin|>function
 *            <|tool_sep|>NAME\n```json\n{...}\n```<|tool_call_end|>...<|tool_calls_end|>
 *            (R1), or <|tool_call_begin|>NAME<|tool_sep|>{...}<|tool_call_end|> (V3.1).
 *   NONE     no tool calls: only the thinking split. Use it for a request
 *            without tools (as Ollama parses calls only when tools were sent),
 *            so that a JSON answer is never mistaken for a call.
 *
 * Thinking (every format but HARMONY): a <think>...</think> block counts only
 * at the start of the answer (after whitespace), as in Ollama; whitespace after
 * the opening and after the closing tag is dropped. starts_in_thinking says the
 * prompt already opened the block (DeepSeek-R1 templates end with "<think>\n"),
 * so the answer begins inside it. When thinking is not enabled the block is
 * still recognised (its markup never reaches the content) but its text is
 * discarded, as the caller asked not to see reasoning (for HARMONY: the
 * analysis channel). Whitespace between a call and what follows is dropped.
 *
 * Streaming: content and thinking are handed out as soon as they cannot be the
 * beginning of a marker: only a possible prefix of a marker is held back, never
 * emitted and then taken back. A tool call is handed out when its markup is
 * complete. Feeding the same text in any split gives the same concatenated
 * result (the tests check every byte boundary).
 *
 * Tool calls: the arguments must be a JSON object (a JSON string holding an
 * object is accepted, as Ollama does). When `tools` is given (the request's
 * array of {"type":"function","function":{"name","parameters"}}), the name must
 * be one of them and the arguments must satisfy its "parameters" JSON schema
 * (a tool without "parameters" takes any object).
 * Supported schema keywords: type, properties, required, additionalProperties,
 * enum, const, items, minItems, maxItems, minLength, maxLength (code points),
 * minimum, maximum, exclusiveMinimum, exclusiveMaximum, anyOf, oneOf, allOf;
 * annotations (description, title, default, examples, format, $schema,
 * $comment) are not checked. Any other keyword makes qfit_toolparse_new fail,
 * naming the tool, the path and the keyword: a schema that cannot be checked
 * is never silently accepted.
 *
 * End of generation (qfit_toolparse_finish): held-back text that turned out not
 * to be markup is content (or thinking). A tool call whose end marker never
 * came is accepted when its body is already a complete, valid call, and is an
 * error otherwise ("unterminated tool call"); it is never dropped. An unclosed
 * JSON answer of the JSON format that never became a call is content.
 *
 * Errors: functions return -1 / NULL and write a message into err naming the
 * problem: which call (1-based), the tool name, the JSON line:column, the
 * schema path. On error *out is emptied (the response becomes an error) and
 * the parser stays failed: later calls repeat the message.
 * Limits: a call body over QFIT_TOOLCALL_MAX_BODY bytes, JSON nested deeper
 * than QFIT_TOOLCALL_MAX_DEPTH, or more than QFIT_TOOLCALL_MAX_CALLS calls is
 * an error, never unbounded growth.
 *
 * Ownership: the parser keeps a reference to `tools` (json_incref). Deltas
 * returned by feed/finish point into the parser and stay valid until its next
 * feed/finish/free; json_incref an arguments object to keep it. A result from
 * qfit_toolparse_text is the caller's: free it with qfit_toolcall_result_free.
 * Thread-safety: a parser is used by one thread at a time; distinct parsers
 * are independent. Needs jansson.
 */
#ifndef QFIT_TOOLCALL_H
#define QFIT_TOOLCALL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QFIT_TOOLCALL_MAX_BODY  (1u << 20) /* bytes of one call's markup body */
#define QFIT_TOOLCALL_MAX_DEPTH 64         /* JSON nesting of one call */
#define QFIT_TOOLCALL_MAX_CALLS 256        /* calls in one answer */

typedef enum {
    QFIT_TOOLCALL_NONE = 0,
    QFIT_TOOLCALL_JSON,
    QFIT_TOOLCALL_HERMES,
    QFIT_TOOLCALL_MISTRAL,
    QFIT_TOOLCALL_HARMONY,
    QFIT_TOOLCALL_DEEPSEEK,
    QFIT_TOOLCALL_FORMAT_COUNT
} qfit_toolcall_format;

/* The format a chat template (Jinja or Go template text) produces, from the
 * markers it contains: harmony channels, [TOOL_CALLS], DeepSeek's
 * tool_calls_begin, <tool_call>, <|python_tag|>; a template that mentions
 * tools without any of them gets JSON (as Ollama's "{" tag), one that does not
 * mention tools gets NONE. NULL → NONE. */
qfit_toolcall_format qfit_toolcall_detect(const char *chat_template);
/* "none", "json", "hermes", "mistral", "harmony", "deepseek". */
const char *qfit_toolcall_format_name(qfit_toolcall_format f);
/* By name: the names above, plus "llama3" (JSON), "qwen" (HERMES), "gpt-oss"
 * (HARMONY). Returns 0, or -1 with a message listing the known names. */
int qfit_toolcall_format_parse(const char *name, qfit_toolcall_format *out,
                               char *err, size_t err_len);
/* True when a rendered prompt ends with an opening thinking tag (<think> or
 * [THINK], then optional whitespace): the answer starts inside thinking. */
bool qfit_toolcall_prompt_opens_thinking(const char *prompt, size_t len);

typedef struct {
    char    id[32];       /* "call_" + 16 hex digits, random */
    int     index;        /* 0-based position in the answer */
    char   *name;         /* NUL-terminated */
    json_t *arguments;    /* a JSON object */
} qfit_toolcall;

/* What one feed/finish produced. content/thinking are NUL-terminated (also
 * when empty); their bytes are the model's bytes (not re-encoded). */
typedef struct {
    const char          *content;
    size_t               content_len;
    const char          *thinking;
    size_t               thinking_len;
    const qfit_toolcall *calls;
    size_t               n_calls;
} qfit_toolparse_delta;

typedef struct qfit_toolparse qfit_toolparse;

/* tools: NULL (any name, arguments only checked to be an object) or a JSON
 * array of tools as in the Ollama/OpenAI request. NULL on error (bad format,
 * a malformed tool, a duplicate name, an unsupported schema keyword). */
qfit_toolparse *qfit_toolparse_new(qfit_toolcall_format format, bool thinking_enabled,
                                   bool starts_in_thinking, const json_t *tools,
                                   char *err, size_t err_len);
void qfit_toolparse_free(qfit_toolparse *p);

/* Feed the next piece of generated text (any split, even inside a UTF-8
 * sequence or a marker). On success returns 0 and fills *out. */
int qfit_toolparse_feed(qfit_toolparse *p, const char *text, size_t len,
                        qfit_toolparse_delta *out, char *err, size_t err_len);
/* End of generation: flush what was held back, close an open call or message
 * (see the rules above). Returns 0 and fills *out, or -1. Feeding after
 * finish is an error. */
int qfit_toolparse_finish(qfit_toolparse *p, qfit_toolparse_delta *out,
                          char *err, size_t err_len);

/* Whole answer at once (stream:false): the same parser, fed once and finished. */
typedef struct {
    char          *content;    /* malloc'd, NUL-terminated */
    size_t         content_len;
    char          *thinking;   /* malloc'd, NUL-terminated */
    size_t         thinking_len;
    qfit_toolcall *calls;      /* malloc'd array; names malloc'd; arguments referenced */
    size_t         n_calls;
} qfit_toolcall_result;

int  qfit_toolparse_text(qfit_toolcall_format format, bool thinking_enabled,
                         bool starts_in_thinking, const json_t *tools,
                         const char *text, size_t len, qfit_toolcall_result *out,
                         char *err, size_t err_len);
void qfit_toolcall_result_free(qfit_toolcall_result *r);

/* Check `args` against a JSON schema with the keywords listed above.
 * 0 when valid; -1 with "PATH: reason" (PATH like arguments.items[2].city).
 * An unsupported keyword in the schema is an error too. */
int qfit_toolcall_validate(const json_t *schema, const json_t *args,
                           char *err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif
