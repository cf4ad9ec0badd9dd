/* Jinja engine: values, syntax tree and render context.
 * Internal to src/template: do not include from other modules (the API is qfit/template.h).
 *
 * Memory: everything a render allocates (tokens, AST, values) lives in one arena owned by the
 * render context and freed at once when the render ends, so errors can unwind with longjmp from
 * any depth without leaking. The arena has a byte budget (JINJA_MAX_MEMORY): exceeding it is an
 * error like any other limit.
 */
#ifndef QFIT_TEMPLATE_JINJA_H
#define QFIT_TEMPLATE_JINJA_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define JINJA_MAX_MEMORY    (256u << 20) /* arena bytes per render */
#define JINJA_MAX_DEPTH     200          /* nesting of expressions/statements/macro calls */
#define JINJA_MAX_STEPS     2000000      /* statements executed + loop iterations per render */
#define JINJA_MAX_RANGE     100000       /* jinja2 sandbox's MAX_RANGE */

/* ---- values (Python objects as jinja2 sees them) ---- */
typedef enum {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT,
    JV_NS,     /* namespace(): a dict whose attributes can be assigned */
    JV_LOOP,   /* the `loop` variable of a for statement */
    JV_MACRO,  /* a macro (or `caller`) */
    JV_FUNC,   /* a global function: range, namespace, dict, raise_exception, strftime_now */
    JV_METHOD, /* a bound method of a str/dict/list/loop, e.g. 'a b'.split */
} jv_type;

typedef struct jv jv;
typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jloop jloop;
typedef struct jmacro jmacro;

struct jv {
    jv_type t;
    bool safe;  /* JV_STR: a jinja2 Markup (from |safe or |escape): '+' escapes the other side */
    union {
        bool b;
        int64_t i;
        double f;
        struct { const char *p; size_t n; } s; /* JV_STR: UTF-8, not NUL-terminated */
        jlist *l;
        jdict *d;                              /* JV_DICT, JV_NS */
        jloop *loop;
        jmacro *macro;
        int func;                              /* JV_FUNC: JF_* */
        struct { jv *self; const char *name; } m;
        const char *undef_name;                /* JV_UNDEF: what was looked up (for messages) */
    } u;
};

/* gen: the result of a filter that jinja2 returns as a generator (map, select, unique, ...):
 * iterable once, always true, no len(), no subscript, no str() that a test could match. */
/* range: made by range(); str() shows "range(a, b[, step])" as Python does (rng holds them). */
struct jlist { jv *v; size_t n, cap; bool tuple, gen, range; int64_t rng[3]; };
struct jdict { jv *k; jv *v; size_t n, cap; };

enum { JF_RANGE, JF_NAMESPACE, JF_DICT, JF_RAISE, JF_STRFTIME, JF_COUNT };

/* ---- syntax tree ---- */
typedef enum {
    /* expressions */
    N_LIT, N_NAME, N_LIST, N_TUPLE, N_DICT, N_ATTR, N_ITEM, N_SLICE, N_CALL, N_FILTER, N_TEST,
    N_NEG, N_POS, N_NOT, N_AND, N_OR, N_BIN, N_CMP, N_COND,
    /* statements */
    N_TEXT, N_OUTPUT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_CALLBLOCK, N_FILTERBLOCK,
    N_BREAK, N_CONTINUE, N_WITH,
} jnode_kind;

typedef struct jnode jnode;
typedef struct { jnode **v; size_t n; } jnodes;

struct jnode {
    jnode_kind kind;
    int line;
    int op;              /* N_BIN: operator char ('+', '-', '*', '/', 'f' floordiv, '%', 'p' pow,
                            '~'); N_TEST: 1 when negated; N_FOR: 1 when recursive */
    const char *name;    /* N_NAME, N_ATTR, N_FILTER, N_TEST, N_MACRO */
    jv lit;              /* N_LIT, N_TEXT */
    jnode *a, *b, *c, *d;/* operands (meaning per kind, see jinja_parse.c) */
    jnodes args;         /* call/filter/test args; list/tuple items; dict keys; body */
    jnodes args2;        /* dict values; kwargs values; else body; macro defaults */
    const char **names;  /* kwargs names (args2), macro parameter names (args2) */
    int *ops;            /* N_CMP: one comparison operator per operand in args */
};

/* ---- render context ---- */
typedef struct jchunk jchunk;
typedef struct jscope jscope;

typedef struct {
    char *p; size_t n, cap;
} jbuf;

typedef struct {
    jmp_buf fail;
    char *err; size_t err_len;
    jchunk *chunks; size_t mem_used;
    int depth;
    long steps;
    jbuf *out;            /* where output goes now (a block set or macro captures into its own) */
    size_t max_output;
    jscope *globals;
    const char *src;      /* template text, for line:column in syntax errors */
} jctx;

/* Arena */
void *jx_alloc(jctx *x, size_t n);
char *jx_strdup(jctx *x, const char *s, size_t n);
void jx_free_all(jctx *x);
/* Records the message (with "line N: " when line > 0) and unwinds to the render's setjmp. */
_Noreturn void jx_fail(jctx *x, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parser: the whole template to a statement list (fails through jx_fail). */
jnodes jinja_parse(jctx *x, const char *src, size_t len);

/* Values (jinja_value.c) */
jv jv_none(void);
jv jv_bool(bool b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(const char *p, size_t n);
jv jv_cstr(const char *s);
jv jv_undef(const char *name);
jv jv_newlist(jctx *x, bool tuple);
jv jv_newdict(jctx *x);
void jl_push(jctx *x, jlist *l, jv v);
/* The items a for loop (or a filter) iterates: list items, dict keys, string characters;
 * anything else fails with "'T' object is not iterable". */
jlist *jx_iter_items(jctx *x, int line, jv v);
jv *jd_get(jdict *d, jv key);                    /* NULL when absent */
jv *jd_get_str(jdict *d, const char *key);
void jd_set(jctx *x, jdict *d, jv key, jv v);
jv jv_from_json(jctx *x, const json_t *j, int depth);
bool jv_truthy(jv v);
bool jv_equal(jv a, jv b);
int jv_compare(jctx *x, int line, jv a, jv b);   /* <0, 0, >0; fails on unorderable types */
const char *jv_type_name(jv v);                  /* Python's type name, for messages */
bool jv_is_seq(jv v);                            /* list, tuple or str */
jv jv_html_escape(jctx *x, jv s);                /* markupsafe.escape of a str: a Markup */

/* Text building */
void jb_put(jctx *x, jbuf *b, const char *p, size_t n);
void jb_puts(jctx *x, jbuf *b, const char *s);
void jv_str_into(jctx *x, jbuf *b, jv v);        /* Python str(v) */
void jv_repr_into(jctx *x, jbuf *b, jv v);       /* Python repr(v) */
void jv_json_into(jctx *x, int line, jbuf *b, jv v, int indent, int level); /* json.dumps */
jv jv_to_str(jctx *x, jv v);                     /* str(v) as a value */
void jfmt_float(char *buf, size_t len, double f); /* Python repr of a float */

/* UTF-8 (code point semantics of Python str) */
size_t ju_len(const char *p, size_t n);                    /* code points */
size_t ju_offset(const char *p, size_t n, size_t cp);      /* byte offset of code point cp */
uint32_t ju_decode(const char *p, size_t n, size_t *adv);  /* one code point */
void ju_encode(jctx *x, jbuf *b, uint32_t c);
bool ju_isspace(uint32_t c);                               /* Python str.isspace */

/* Builtins (jinja_builtins.c) */
jv jinja_filter(jctx *x, jnode *n, jv in, jv *args, size_t nargs, const char **kwn, jv *kwv,
                size_t nkw, jscope *sc);
bool jinja_test(jctx *x, jnode *n, const char *name, jv v, jv *args, size_t nargs);
jv jinja_getattr(jctx *x, int line, jv obj, const char *name);
jv jinja_call_method(jctx *x, int line, jv m, jv *args, size_t nargs, const char **kwn,
                     jv *kwv, size_t nkw);
jv jinja_call_func(jctx *x, int line, int func, jv *args, size_t nargs, const char **kwn,
                   jv *kwv, size_t nkw);
/* Loop attributes (jinja_eval.c) */
jv jinja_loop_attr(jctx *x, int line, jloop *l, const char *name);
/* Calls a macro or callable value (jinja_eval.c), used by filters such as map */
jv jinja_call_value(jctx *x, int line, jv f, jv *args, size_t nargs, const char **kwn, jv *kwv,
                    size_t nkw);

#endif
