/* qfit — chat on a model: what a model says about chatting (its Modelfile, its chat
 * template, its special tokens) and turning a conversation into the prompt tokens the
 * model was trained on. Shared by `qfit run NAME`, `qfit template` and the server.
 *
 * A chat model is opened from MODEL, which is either an existing file (a GGUF: no
 * Modelfile, its own tokenizer.chat_template) or the name of a stored model (its
 * Modelfile as the store holds it: parameters, SYSTEM, MESSAGE turns, TEMPLATE).
 * The template used, in order: a template set with qfit_chat_model_set_template
 * (e.g. `--template FILE`), else the stored TEMPLATE / template layer (Go, as Ollama;
 * a text qfit_template_detect calls Jinja is rendered as Jinja, where Ollama would
 * fail), else the GGUF's tokenizer.chat_template (Jinja), else none (plain completion).
 *
 * Rendering sends what Ollama's chat handler sends a stored model: the model's
 * MESSAGE turns first, then the caller's messages, with the model's SYSTEM inserted
 * first unless the caller's first message is a system one (server/routes.go: it looks
 * at the request's messages, not at the model's MESSAGE turns). Jinja templates get the
 * model's BOS and EOS token texts as bos_token / eos_token.
 *
 * Tokenizing a rendered prompt: control tokens written in it ("<|im_start|>", "<s>")
 * become those tokens, and the model's BOS is added when the tokenizer says so,
 * unless the prompt already starts with it (templates that write bos_token
 * themselves would otherwise get two, as llama.cpp avoids too).
 *
 * Parameters: qfit_chat_apply_params turns Modelfile PARAMETERs (qfit_params, see
 * modelfile.h) into generation and context settings. Every option is either honoured
 * or refused with an error naming it and its value; none is dropped silently.
 *
 * Errors: functions return NULL or -1 and write a message naming the model, the
 * field or the value into err[err_len] (err may be NULL).
 * Ownership: a qfit_chat_model owns its Modelfile, template text, tokenizer and the
 * GGUF it opened; pointers returned by accessors live until qfit_chat_model_free (or
 * the next setter call for what that setter replaces). Rendered prompts and token
 * arrays are malloc'd and freed by the caller. Inputs (JSON) are never modified or kept.
 * Thread-safety: a qfit_chat_model may be read (render, tokenize, accessors) from
 * several threads at once; setters need exclusive access. No global state.
 */
#ifndef QFIT_CHAT_H
#define QFIT_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "qfit/generate.h"
#include "qfit/model.h"
#include "qfit/modelfile.h"
#include "qfit/store.h"
#include "qfit/template.h"
#include "qfit/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qfit_chat_model qfit_chat_model;

/* Open MODEL: a file path when something exists at that path, else a stored model
 * name looked up in store (NULL: the default store, qfit_store_default_root, opened
 * only for a name and closed before returning). Opens the GGUF and its tokenizer.
 * Warnings of the stored params layer (unknown keys) go to w (may be NULL). */
qfit_chat_model *qfit_chat_model_open(const char *model, qfit_store *store, qfit_warnings *w,
                                      char *err, size_t err_len);
void qfit_chat_model_free(qfit_chat_model *cm);

/* MODEL as given to open (a path, or a stored name in its shortest display form). */
const char *qfit_chat_model_name(const qfit_chat_model *cm);
/* true when MODEL named a stored model (false: a GGUF file). */
bool        qfit_chat_model_is_stored(const qfit_chat_model *cm);
/* The GGUF file holding the weights (the model layer's blob for a stored model). */
const char *qfit_chat_model_gguf_path(const qfit_chat_model *cm);
const qfit_gguf      *qfit_chat_model_gguf(const qfit_chat_model *cm);
const qfit_tokenizer *qfit_chat_model_tokenizer(const qfit_chat_model *cm);
/* The Modelfile: a stored model's (from = the GGUF path), or an empty one (from =
 * the path) for a file. Mutable: a session may change its system and params (the
 * template in use is set with qfit_chat_model_set_template, not through tmpl). */
qfit_modelfile *qfit_chat_model_modelfile(qfit_chat_model *cm);
const qfit_modelfile *qfit_chat_model_modelfile_c(const qfit_chat_model *cm);

/* The template in use (NULL when the model has none), its language, and where it
 * came from: "TEMPLATE" (Modelfile / template layer), "tokenizer.chat_template",
 * "set" (qfit_chat_model_set_template), or "none". */
const char        *qfit_chat_model_template(const qfit_chat_model *cm);
qfit_template_kind qfit_chat_model_template_kind(const qfit_chat_model *cm);
const char        *qfit_chat_model_template_source(const qfit_chat_model *cm);
/* Use this template text instead (copied). kind UNKNOWN: detected from the text;
 * a text that is neither Go nor Jinja is an error (nothing changed). */
int qfit_chat_model_set_template(qfit_chat_model *cm, const char *text, qfit_template_kind kind,
                                 char *err, size_t err_len);

/* The model's MESSAGE turns, then messages (an array of message objects, or NULL),
 * with its SYSTEM first unless messages[0] is a system one. A new array
 * (json_decref it); NULL on allocation failure. */
json_t *qfit_chat_messages(const qfit_chat_model *cm, const json_t *messages);

/* Render messages (as qfit_chat_messages completes them) and tools (array or NULL)
 * with the model's template. add_generation_prompt and think as in template.h
 * (think: -1 unset, 0, 1). Error when the model has no template, when the input is
 * not an array, or when the template fails (its message, prefixed by the language). */
int qfit_chat_render(const qfit_chat_model *cm, const json_t *messages, const json_t *tools,
                     bool add_generation_prompt, int think, char **out, char *err, size_t err_len);

/* The same with another template (a request's own `template`, as Ollama's /api/generate
 * takes): Go or Jinja, detected from the text; a text that is neither is an error. */
int qfit_chat_render_with(const qfit_chat_model *cm, const char *tmpl, const json_t *messages, const json_t *tools,
                          bool add_generation_prompt, int think, char **out, char *err, size_t err_len);

/* Fill-in-the-middle (Ollama's /api/generate with a suffix): tmpl (NULL: the model's
 * template) rendered with only .Prompt = prompt and .Suffix = suffix (both non-empty).
 * An error naming the model when the template is not a Go template using .Suffix (the
 * "insert" capability /api/show reports). */
int qfit_chat_render_fim(const qfit_chat_model *cm, const char *tmpl, const char *prompt, const char *suffix, char **out,
                         char *err, size_t err_len);

/* Tokenize a rendered prompt (see the header comment: control tokens parsed, BOS
 * added once when the model adds one). *ids malloc'd (free()), *n set. 0 or -1. */
int qfit_chat_tokenize(const qfit_chat_model *cm, const char *prompt, int32_t **ids, size_t *n,
                       char *err, size_t err_len);

/* The prompt of a conversation, tokenized, leaving `reserve` positions of an n_ctx
 * context free (for the answer). messages as qfit_chat_render completes them (the
 * model's MESSAGE turns and SYSTEM included). When the whole conversation does not fit:
 *  - truncate false: an error naming the prompt's tokens, the reserve and n_ctx;
 *  - truncate true: the oldest whole turns are dropped (a turn starts at a user message
 *    and runs to the next one), never a system message and never the last turn, until
 *    the prompt fits; *n_dropped (may be NULL) gets the number of messages dropped (0
 *    when everything fitted). An error when the system messages and the last turn
 *    alone do not fit.
 * *ids malloc'd (free()), *n set. 0, or -1 with a message. */
int qfit_chat_prompt_fit(const qfit_chat_model *cm, const json_t *messages, const json_t *tools,
                         bool add_generation_prompt, int think, int n_ctx, int reserve, bool truncate,
                         int32_t **ids, size_t *n, int *n_dropped, char *err, size_t err_len);

/* Apply parameters to gp and cp (either may be NULL: the options for it are then only
 * validated). Honoured: num_ctx, num_batch, num_thread, num_gpu (context: n_gpu_layers,
 * -1 .. 2^20; a device without layers to run refuses a count above 0 when the context is
 * made); temperature, top_k,
 * top_p, min_p, typical_p, repeat_penalty, repeat_last_n, presence_penalty,
 * frequency_penalty, seed (-1 = random), num_predict (-1 no limit; -2 = until the
 * context is full: -1 with gp->overflow QFIT_OVERFLOW_ERROR), num_keep, stop
 * (gp->stop then points into p's strings: p must outlive gp's use). Accepted only
 * at the value qfit always has: use_mmap true, main_gpu 0, draft_num_predict 0 (no draft
 * model). Anything else (another value of those,
 * an int out of range, more than QFIT_GEN_MAX_STOP stop strings, sampling values
 * qfit_sampler_params_check refuses) is an error naming the parameter and value;
 * gp and cp are then unspecified. */
int qfit_chat_apply_params(const qfit_params *p, qfit_gen_params *gp, qfit_context_params *cp,
                           char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_CHAT_H */
