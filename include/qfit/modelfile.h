/* qfit — Modelfile (Ollama's format) parser and printer, and typed model
 * parameters (Ollama's `options` / the `params` layer of a stored model).
 *
 * Parameters: a qfit_params holds (name, typed value) pairs in insertion order
 * for the option names of Ollama's options table (int, float, bool; `stop` is a
 * list of strings). Names are case-sensitive, as in Ollama. Floats are float32
 * (Ollama's type); NaN and infinities are refused (they cannot be stored in
 * JSON). Ints are int64. Bools accept Go's strconv.ParseBool spellings
 * (1 t T TRUE true True 0 f F FALSE false False).
 *   - from a Modelfile/CLI string value: unknown names are errors; Ollama's
 *     deprecated names (mirostat, penalize_newline, ...) add a warning and are
 *     skipped (as Ollama does);
 *   - from JSON (a params layer or request `options`): unknown and deprecated
 *     keys add a warning and are skipped (Ollama's runtime logs and ignores
 *     them; clients still send removed keys, and old stores hold them); a known
 *     key with a wrong JSON type is an error (`option "x" must be of type
 *     integer`); JSON numbers given for ints must be integral; null is skipped.
 *   - setting a name already present replaces its value in place, except that
 *     each string-value `stop` appends one entry; a JSON `stop` array (and a
 *     merge) replaces the whole list, as Ollama's create and request merge do.
 *
 * Modelfile: qfit_modelfile_parse() accepts Ollama's grammar (parser/parser.go
 * in Ollama; ollama-compat-reference §3): case-insensitive
 * instructions FROM, PARAMETER, TEMPLATE, SYSTEM, LICENSE (repeatable), MESSAGE
 * (system|user|assistant), REQUIRES (semver); `#` comments at instruction
 * position; unquoted values trimmed to the end of the line; "..." and
 * """...""" values spanning lines (no escapes; a quoted value ends at the first
 * line break where the text so far, trimmed, ends with its closing quote).
 * Refused with a clear error (qfit cannot honour them): ADAPTER, DRAFT,
 * RENDERER, PARSER, a second FROM (projectors), a repeated TEMPLATE, SYSTEM or
 * REQUIRES. The input is UTF-8 (a BOM is stripped) or UTF-16 with a BOM (as
 * Ollama), without control characters other than tab, CR and LF. Sizes are bounded
 * (QFIT_MODELFILE_MAX_*).
 * Differences from Ollama, all stricter or clearer: errors carry line:column;
 * PARAMETER values are type-checked at parse time; extra blanks between
 * PARAMETER/MESSAGE and their name/role are allowed; invisible characters are
 * kept (Ollama drops non-printable runes silently).
 *
 * Errors: functions returning a pointer return NULL, functions returning int
 * return -1, with a message in err (err may be NULL; err_len bytes at most,
 * always NUL-terminated). Parse errors read `NAME:LINE:COL: message` where NAME
 * is "modelfile" (or the path for _parse_file), LINE and COL are 1-based and COL
 * counts Unicode characters. Warnings (never printed by the library) are
 * appended to a caller's qfit_warnings list, with the same prefix.
 *
 * Ownership: every object returned is owned by the caller and freed by its
 * _free function; strings inside a qfit_modelfile are malloc'd and owned by it.
 * Thread-safety: no global state; distinct objects may be used from distinct
 * threads (qfit_modelfile_resolve_from reads $HOME). Needs jansson.
 */
#ifndef QFIT_MODELFILE_H
#define QFIT_MODELFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QFIT_MODELFILE_MAX_BYTES        (16u << 20) /* whole Modelfile */
#define QFIT_MODELFILE_MAX_LINES        (1u << 20)
#define QFIT_MODELFILE_MAX_INSTRUCTIONS 65536u
#define QFIT_PARAMS_MAX_STOP            1024u       /* stop strings per parameter set */

/* ------------------------------------------------------------- warnings */

typedef struct {
    char  **msgs;   /* malloc'd messages */
    size_t  count;
    size_t  cap;
} qfit_warnings;   /* zero-initialise; release with qfit_warnings_free */

void qfit_warnings_free(qfit_warnings *w);

/* ----------------------------------------------------------- parameters */

typedef enum {
    QFIT_PARAM_INT,
    QFIT_PARAM_FLOAT,
    QFIT_PARAM_BOOL,
    QFIT_PARAM_STRINGS,   /* `stop` */
} qfit_param_type;

typedef struct {
    const char     *name;   /* static storage (the options table) */
    qfit_param_type type;
    int64_t         i;
    float           f;
    bool            b;
    char          **strs;   /* QFIT_PARAM_STRINGS: owned by the qfit_params */
    size_t          nstrs;
} qfit_param;

typedef struct qfit_params qfit_params;

/* What a name is: 1 = a current option (*type set), 0 = deprecated (skipped
 * with a warning), -1 = unknown. */
int qfit_params_lookup(const char *name, qfit_param_type *type);

qfit_params *qfit_params_new(void);
void         qfit_params_free(qfit_params *p);
qfit_params *qfit_params_clone(const qfit_params *p);

size_t            qfit_params_count(const qfit_params *p);
const qfit_param *qfit_params_at(const qfit_params *p, size_t i);       /* insertion order */
const qfit_param *qfit_params_get(const qfit_params *p, const char *name); /* NULL if not set */

/* Set from a string value (Modelfile PARAMETER, `/set parameter`). Returns 1 when
 * set, 0 when the name is deprecated (warning added to w when w is not NULL,
 * nothing set), -1 on error: unknown name, or a value that is not of the
 * option's type ("invalid int value for num_ctx: '1.5'"). */
int qfit_params_set_string(qfit_params *p, const char *name, const char *value,
                           qfit_warnings *w, char *err, size_t err_len);

/* Every entry of src into dst; an entry replaces dst's value of that name
 * (including the whole stop list). 0 or -1. */
int qfit_params_merge(qfit_params *dst, const qfit_params *src, char *err, size_t err_len);

/* Same entries with the same values in the same order (an empty stop list counts
 * as absent: a Modelfile cannot express it). */
bool qfit_params_equal(const qfit_params *a, const qfit_params *b);

/* The value as PARAMETER text (ints decimal, floats the shortest text that reads
 * back to the same float32, bools true/false); NULL for STRINGS. Malloc'd. */
char *qfit_params_value_text(const qfit_param *e);

/* JSON object {"name": value, ...} in insertion order (floats as the double
 * nearest to their shortest decimal text). NULL only on allocation failure.
 * To write a params layer as Ollama does, dump it with JSON_COMPACT |
 * JSON_SORT_KEYS | JSON_REAL_PRECISION(9): `{"stop":["<|eot_id|>"],"temperature":0.7}`
 * (jansson's default precision would write 0.69999999999999996). */
json_t      *qfit_params_to_json(const qfit_params *p);
/* From a JSON object (see the header comment for unknown keys and types). */
qfit_params *qfit_params_from_json(const json_t *obj, qfit_warnings *w, char *err, size_t err_len);

/* ------------------------------------------------------------ Modelfile */

typedef struct {
    char *role;      /* "system", "user" or "assistant" */
    char *content;
} qfit_modelfile_message;

/* ROUTE RULE MODEL: a routing model sends each request to the first model whose rule
 * matches (qfit serve). Rules: "code" (the request's last user message or prompt looks
 * like code: a fenced block, or source-code lines), "long>N" (the prompt is more than N
 * tokens, counted with the default model's tokenizer), "default" (always; exactly one). */
typedef struct {
    char *rule;
    char *model;
} qfit_modelfile_route;

/* The rule's syntax: 0, or -1 with a message naming what is wrong. *long_tokens gets N of
 * "long>N" (0 for the other rules; may be NULL). */
int qfit_route_rule_check(const char *rule, long *long_tokens, char *err, size_t err_len);

typedef struct {
    char                   *from;      /* the text after FROM; required except in a routing
                                          model (ROUTE lines), which has none */
    char                   *tmpl;      /* TEMPLATE, NULL when absent */
    char                   *system;    /* SYSTEM, NULL when absent ("" is a set, empty system) */
    char                   *requires;  /* REQUIRES without a leading 'v', NULL when absent */
    qfit_params            *params;    /* never NULL in a parsed or new modelfile */
    char                  **licenses;
    size_t                  nlicenses;
    qfit_modelfile_message *messages;
    size_t                  nmessages;
    qfit_modelfile_route   *routes;    /* a routing model: its ROUTE lines in order (and nothing else) */
    size_t                  nroutes;
} qfit_modelfile;

qfit_modelfile *qfit_modelfile_new(void);   /* empty (from NULL), params allocated */
void            qfit_modelfile_free(qfit_modelfile *m);

/* Append copies; 0 or -1 (a role other than system|user|assistant is an error).
 * The licenses and messages arrays grow geometrically: fill them only through
 * these functions (never assign an array of your own). */
int qfit_modelfile_add_license(qfit_modelfile *m, const char *text, char *err, size_t err_len);
int qfit_modelfile_add_message(qfit_modelfile *m, const char *role, const char *content,
                               char *err, size_t err_len);
/* A ROUTE line (rule checked; a second "default" is an error). */
int qfit_modelfile_add_route(qfit_modelfile *m, const char *rule, const char *model, char *err, size_t err_len);

/* Parse a Modelfile held in memory (need not be NUL-terminated). w may be NULL. */
qfit_modelfile *qfit_modelfile_parse(const char *data, size_t len, qfit_warnings *w,
                                     char *err, size_t err_len);
/* Read (at most QFIT_MODELFILE_MAX_BYTES) and parse a file; messages are prefixed
 * with the path. */
qfit_modelfile *qfit_modelfile_parse_file(const char *path, qfit_warnings *w,
                                          char *err, size_t err_len);

/* The Modelfile text of m (malloc'd, each line ends in '\n'): when short_name is
 * not NULL, first the `qfit show` header comment naming it and a blank line;
 * then FROM, TEMPLATE, SYSTEM, PARAMETER (one line per stop value), LICENSE,
 * MESSAGE, REQUIRES; a routing model's ROUTE lines instead. Values are quoted by Ollama's rule (a newline or a leading or
 * trailing space: """...""" if the value holds '"', else "..."; otherwise bare),
 * and another of the three forms is used when that one would not read back
 * identically. Guarantee: qfit_modelfile_parse() of the result equals m
 * (qfit_modelfile_equal). A value no form can carry (e.g. a line ending in
 * `"""` followed by more lines, or a control character) is an error naming it. */
char *qfit_modelfile_print(const qfit_modelfile *m, const char *short_name, char *err, size_t err_len);

bool qfit_modelfile_equal(const qfit_modelfile *a, const qfit_modelfile *b);

/* What FROM names. */
typedef enum {
    QFIT_FROM_NAME,   /* a model name (nothing at that path, and it does not look like a path) */
    QFIT_FROM_FILE,   /* an existing regular file */
    QFIT_FROM_DIR,    /* an existing directory */
} qfit_from_kind;

/* Resolve a FROM value as Ollama does: an absolute path is kept, `~` and `~user`
 * expand to home directories, anything else is relative to modelfile_dir (the
 * Modelfile's directory; NULL means the current directory). When that path
 * exists, *kind is FILE or DIR and *path_out its absolute, symlink-resolved path
 * (malloc'd). Otherwise the value is a model name (*kind NAME, *path_out NULL),
 * unless it looks like a path (starts with '/', './', '../', '~', or ends in
 * .gguf): then it is an error naming the resolved path. 0 or -1. */
int qfit_modelfile_resolve_from(const char *from, const char *modelfile_dir,
                                qfit_from_kind *kind, char **path_out, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif
