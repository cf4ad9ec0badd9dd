/* Go text/template engine: syntax tree, values and the parts shared by its three files.
 * Internal to src/template: do not include from other modules (use qfit/template.h).
 *
 *   gotmpl_parse.c  lexer + parser -> syntax tree (every node keeps its byte offset)
 *   gotmpl_value.c  Go-typed views over JSON values: field access, fmt %v printing, json.Marshal
 *   gotmpl_exec.c   the evaluator, the builtin functions, and Ollama's Execute (collate, legacy)
 */
#ifndef QFIT_TEMPLATE_GOTMPL_INTERNAL_H
#define QFIT_TEMPLATE_GOTMPL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "qfit/template.h"

/* Bounds (the engine stops with an error, never hangs or grows without limit). */
#define GT_MAX_NESTING    100          /* control structures / parentheses inside each other */
#define GT_MAX_ITERATIONS 1000000      /* range iterations over a whole render */
#define GT_MAX_ARENA      (64u << 20)  /* bytes of strings made while rendering */
#define GT_MAX_VARS       10000        /* live template variables */
#define GT_MAX_STRING     QFIT_TEMPLATE_MAX_OUTPUT /* one string made by a function */

/* ------------------------------------------------------------------ arena */

/* Every syntax node and every string made during a render lives in an arena, freed at once. */
typedef struct gt_arena_block gt_arena_block;
typedef struct {
    gt_arena_block *head;
    size_t          used;   /* bytes handed out, across blocks */
    size_t          limit;  /* 0 = unlimited */
} gt_arena;

void *gt_alloc(gt_arena *a, size_t n);  /* zeroed; NULL past the limit or on OOM */
char *gt_strndup(gt_arena *a, const char *s, size_t n);
void  gt_arena_free(gt_arena *a);

/* ------------------------------------------------------------ syntax tree */

typedef enum {
    /* list items */
    GN_TEXT, GN_ACTION, GN_IF, GN_RANGE, GN_WITH, GN_BREAK, GN_CONTINUE,
    /* operands */
    GN_FIELD,    /* .A.B           : ident[] */
    GN_VARIABLE, /* $x.A.B         : ident[0] = "$x" */
    GN_CHAIN,    /* (pipe).A.B     : sub = the operand, ident[] */
    GN_DOT, GN_NIL, GN_BOOL, GN_NUMBER, GN_STRING,
    GN_IDENT,    /* function name  : text */
    GN_PIPE,     /* (pipeline)     : pipe */
} gt_node_kind;

typedef struct gt_node gt_node;
typedef struct gt_pipe gt_pipe;

typedef struct {
    gt_node **v;
    int       n;
} gt_list;

typedef struct {
    gt_node **args;
    int       n;
    size_t    pos;
} gt_cmd;

struct gt_pipe {
    size_t       pos;
    bool         is_assign;   /* `=` (assign) rather than `:=` (declare) */
    const char **decl;        /* declared/assigned variable names ("$x") */
    int          ndecl;
    gt_cmd      *cmds;
    int          ncmds;
};

struct gt_node {
    gt_node_kind kind;
    size_t       pos;          /* byte offset in the template text */
    /* GN_TEXT, GN_STRING, GN_IDENT, GN_NUMBER (source text) */
    const char  *text;
    size_t       len;
    /* GN_BOOL */
    bool         b;
    /* GN_NUMBER */
    bool         is_int;
    int64_t      i;
    double       f;
    /* GN_FIELD, GN_VARIABLE, GN_CHAIN */
    const char **ident;
    int          nident;
    gt_node     *sub;          /* GN_CHAIN */
    /* GN_ACTION, GN_IF, GN_RANGE, GN_WITH, GN_PIPE */
    gt_pipe     *pipe;
    gt_list      list, else_list; /* GN_IF, GN_RANGE, GN_WITH */
    bool         has_else;
};

typedef struct {
    gt_arena  arena;
    gt_list   root;
    const char *src;  /* the template text (borrowed), for line:column */
} gt_tree;

/* Parse text into t (t->arena owns the nodes). -1 with "template:LINE:COL: ..." in err. */
int  gt_parse(gt_tree *t, const char *src, char *err, size_t err_len);
void gt_tree_free(gt_tree *t);
/* 1-based line and column (in bytes) of byte offset pos. */
void gt_line_col(const char *src, size_t pos, int *line, int *col);

/* ------------------------------------------------------------------ values */

/* The Go types Ollama hands its templates (template/template.go), described as data so one
 * field accessor, one printer and one JSON marshaller serve them all. Data lives in jansson
 * values; a typed value is (type, json node) where the node may be NULL (nil slice/map/pointer,
 * zero struct). */
typedef enum {
    GK_STRING, GK_BOOL, GK_INT,
    GK_ANY,      /* interface{} holding a decoded JSON value (map[string]any, []any, float64...) */
    GK_SLICE,    /* elem */
    GK_MAP,      /* map[string]elem: range and printing in sorted key order */
    GK_STRUCT,   /* fields; `ptr` for *T */
    GK_VALUES,   /* Ollama's map[string]any of top-level values: per-key types in fields */
    GK_PROPTYPE, /* api.PropertyType: []string, String() "a" or "[a b]", JSON "a" or ["a","b"] */
    GK_PROPMAP,  /* *api.ToolPropertiesMap: ordered map, JSON in insertion order */
    GK_BYTES,    /* api.ImageData ([]byte): base64 text in JSON; not printable */
} gt_kind;

typedef enum {
    GS_NONE,          /* no String method */
    GS_JSON,          /* String() = json.Marshal(v) */
    GS_JSON_NIL_EMPTY /* String() = "{}" when nil, else json.Marshal(v) */
} gt_stringer;

typedef struct gt_type gt_type;
typedef struct {
    const char    *name;       /* Go field name (template: .Name) */
    const char    *key;        /* key in the input JSON object */
    const char    *json;       /* json tag name, NULL = the Go name */
    bool           omitempty;
    const gt_type *type;
} gt_field;

struct gt_type {
    gt_kind         kind;
    const char     *go_name;   /* for messages: "*template.templateMessage" */
    const gt_type  *elem;      /* GK_SLICE, GK_MAP */
    const gt_field *fields;    /* GK_STRUCT, GK_VALUES */
    int             nfields;
    bool            ptr;       /* GK_STRUCT: the value is a *T (nil when the node is NULL) */
    gt_stringer     stringer;
    bool            ts_method; /* has ToTypeScriptType() (api.ToolProperty) */
};

extern const gt_type gt_t_string, gt_t_bool, gt_t_int, gt_t_any;
extern const gt_type gt_t_messages, gt_t_tools, gt_t_tool_property, gt_t_values;

typedef enum {
    GV_INVALID, /* Go's invalid reflect.Value: prints "<no value>" */
    GV_NIL,     /* a nil interface{} (missing map key, JSON null, the nil keyword) */
    GV_BOOL, GV_INT, GV_FLOAT, GV_STRING,
    GV_TYPED,   /* composite: t + j */
} gt_vkind;

typedef struct {
    gt_vkind       k;
    bool           b;
    int64_t        i;
    bool           u8;  /* GV_INT holding a byte of a string (Go's uint8, from index) */
    double         f;
    const char    *s;   /* GV_STRING: borrowed from JSON or the render arena */
    size_t         n;
    const gt_type *t;   /* GV_TYPED */
    const json_t  *j;   /* GV_TYPED: NULL = nil / zero */
} gt_val;

/* Value layer context: the arena strings are made in, and where errors go. */
typedef struct {
    gt_arena *arena;
    char     *err;
    size_t    err_len;
    int       failed;
} gt_vctx;

gt_val gt_invalid(void);
gt_val gt_nil(void);
gt_val gt_bool(bool b);
gt_val gt_int(int64_t i);
gt_val gt_str(const char *s, size_t n);
gt_val gt_typed(const gt_type *t, const json_t *j);
/* The value of a field/key typed t stored as JSON node j (NULL = absent). */
int gt_from_json(gt_vctx *c, const gt_type *t, const json_t *j, const char *what, gt_val *out);

/* .name on v: 1 found (out set), 0 no such field/method (Go's "can't evaluate field"),
 * -1 error already written. Methods (String, ToTypeScriptType) are found too. */
int gt_field_get(gt_vctx *c, gt_val v, const char *name, gt_val *out);
/* Length of a slice/map/string; -1 if v has no length. */
int64_t gt_len(gt_vctx *c, gt_val v);
/* Element i of a slice (0 <= i < len). */
int gt_index(gt_vctx *c, gt_val v, int64_t i, gt_val *out);
/* Map lookup: 1 found, 0 missing (out = the zero value of the element type). */
int gt_map_get(gt_vctx *c, gt_val v, const char *key, gt_val *out);
/* Sorted keys of a map value (arena array of n strings). */
int gt_map_keys(gt_vctx *c, gt_val v, const char ***keys, int64_t *n);
bool gt_is_map(gt_val v);
bool gt_is_slice(gt_val v);
bool gt_truth(gt_val v);
const char *gt_type_name(gt_val v);

/* Growable output with a size limit. */
typedef struct {
    char  *p;
    size_t n, cap, limit;
    int    overflow;
} gt_buf;
int  gt_buf_put(gt_buf *b, const char *s, size_t n);
void gt_buf_free(gt_buf *b);

/* How text/template prints an action's value (action = true: "<no value>" for invalid, a
 * pointer to a struct dereferenced) or how fmt.Sprint prints an argument (action = false:
 * "&{...}" for a pointer to a struct). verb 'v', or 's' for printf's %s of a composite value
 * (its numbers, bools and nils print as "%!s(int=1)"). */
int gt_print(gt_vctx *c, gt_buf *b, gt_val v, bool action, char verb);
/* json.Marshal(v). */
int gt_json(gt_vctx *c, gt_buf *b, gt_val v);
/* Go's strconv.FormatFloat(f, fmt, -1, 64) for fmt 'g' (fmt %v) or json's float encoding. */
void gt_fmt_float(gt_buf *b, double f, bool json);
/* api.ToolProperty.ToTypeScriptType() */
int gt_typescript(gt_vctx *c, gt_buf *b, const json_t *prop);

int gt_verr(gt_vctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
