/* qfit — chat templates: the prompt text a model was trained on, from a list of messages.
 *
 * Two template languages, each rendered exactly as its reference renders it:
 *  - Go text/template as Ollama's library templates use it (manifest "template" layer, Modelfile
 *    TEMPLATE): same output as Ollama's template package, including its legacy per-turn
 *    .System/.Prompt/.Response mode for templates that do not range over .Messages;
 *  - Jinja as GGUF `tokenizer.chat_template` uses it: same output as Hugging Face's
 *    apply_chat_template (jinja2 sandbox, trim_blocks, lstrip_blocks, loopcontrols).
 *
 * Inputs are JSON values (jansson), shaped like the body of an Ollama /api/chat request:
 * `messages` is an array of objects {role, content, thinking?, tool_calls?, tool_name?, ...},
 * `tools` an array of {type:"function", function:{name, description, parameters}} or NULL.
 * The engines never modify or keep them.
 *
 * Limits: every render is bounded in recursion depth, loop iterations, and output size
 * (QFIT_TEMPLATE_MAX_OUTPUT); exceeding one is an error, never a hang or a truncated prompt.
 * Attribute access to anything but data (e.g. `''.__class__`) is an error, never evaluated.
 *
 * Jinja specifics: the globals are raise_exception(msg) (the render fails with msg) and
 * strftime_now(fmt) (local time; when the environment variable QFIT_TEMPLATE_NOW holds an
 * integer, that many seconds since the epoch in UTC instead, for reproducible renders and tests).
 * in->think >= 0 defines enable_thinking; in->extra's keys become further top-level variables.
 * Differences from jinja2: what is not implemented is an error, never a different output (no
 * printf-style '%' on strings, no format specs in str.format, a subset of str methods);
 * `''.__class__`-style access fails at once (jinja2's sandbox yields an undefined value); case
 * mapping (upper, lower, title) covers Latin, Greek, Cyrillic and fullwidth letters only,
 * without Greek final sigma or titlecase digraphs.
 *
 * Errors: functions return 0 on success, -1 on error with a message (naming the line/column of
 * the template where known) in err. On success *out is a malloc'd NUL-terminated string the
 * caller frees. Thread-safety: all functions are reentrant (no global state).
 */
#ifndef QFIT_TEMPLATE_H
#define QFIT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QFIT_TEMPLATE_MAX_OUTPUT (4u << 20) /* bytes of rendered text */

typedef enum {
    QFIT_TEMPLATE_UNKNOWN = 0,
    QFIT_TEMPLATE_GO,     /* Go text/template (Ollama) */
    QFIT_TEMPLATE_JINJA,  /* Jinja2 (Hugging Face / GGUF tokenizer.chat_template) */
} qfit_template_kind;

typedef struct {
    const json_t *messages;       /* array of message objects (required) */
    const json_t *tools;          /* array of tools, or NULL */
    bool          add_generation_prompt; /* Jinja: add_generation_prompt; Go: ignored */
    const char   *bos_token;      /* Jinja: bos_token ("" when NULL) */
    const char   *eos_token;      /* Jinja: eos_token ("" when NULL) */
    int           think;          /* Go .Think / Jinja enable_thinking: -1 unset, 0 false, 1 true */
    const json_t *extra;          /* Jinja: extra top-level variables (object) or NULL.
                                   * Go: NULL or an object with only these string keys, the
                                   * other values Ollama passes: "prompt" and "suffix" (both
                                   * non-empty: fill-in-the-middle, .Prompt/.Suffix), and
                                   * "think_level" (.ThinkLevel; needs think = 1). Any other
                                   * key is an error, never ignored. */
} qfit_chat_input;

/* Which language a template text is written in, from its syntax. */
qfit_template_kind qfit_template_detect(const char *text);
const char *qfit_template_kind_name(qfit_template_kind k);

/* Render with the language given (or detected when kind is QFIT_TEMPLATE_UNKNOWN). */
int qfit_template_render(const char *tmpl, qfit_template_kind kind, const qfit_chat_input *in,
                         char **out, char *err, size_t err_len);

/* The engines themselves (qfit_template_render dispatches to them). */
int qfit_template_render_go(const char *tmpl, const qfit_chat_input *in,
                            char **out, char *err, size_t err_len);
int qfit_template_render_jinja(const char *tmpl, const qfit_chat_input *in,
                               char **out, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
#endif
