/* Go text/template: the evaluator, builtin functions, and Ollama's Execute (internal to
 * src/template; the entry point is qfit_template_render_go in qfit/template.h).
 *
 * The evaluator follows text/template/exec.go: a pipeline's value feeds the next command as its
 * last argument; an interface value is unwrapped at the end of each command (so a nil interface
 * prints "<no value>"); `and`/`or` short-circuit and return an operand; variables live on a
 * stack popped at the end of if/with/range and of each range iteration; range visits map keys
 * in sorted order, and `else` runs when there is nothing to visit.
 *
 * Ollama's layer (template/template.go, Template.Execute) decides what the template sees:
 *  - messages are collated: consecutive messages of the same role (except "tool") are merged
 *    with "\n\n", roles lowercased (api.Message.UnmarshalJSON), and .System is every system
 *    message joined with "\n\n";
 *  - with a prompt and a suffix (fill-in-the-middle): .Prompt .Suffix .Response="";
 *  - if the template mentions "messages": .System .Messages .Tools .Response="" .Think ...;
 *  - otherwise the legacy mode: the template runs once per user turn with .System .Prompt
 *    .Response, and the last turn runs on a copy of the template cut after its first .Response,
 *    which holds a trailing assistant message (so the model continues it);
 *  - a template that mentions neither "messages" nor "response" gets "{{ .Response }}" appended.
 */
#include "template/gotmpl_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { WALK_OK = 0, WALK_BREAK = 1, WALK_CONTINUE = 2, WALK_ERR = -1 };

typedef struct {
    const char *name;
    gt_val      v;
} gvar;

typedef struct {
    gt_vctx     vc;
    gt_buf     *out;
    gvar       *vars;
    int         nvars, capvars;
    long        iterations;
    size_t      pos;      /* the node being executed, for error positions */
    json_t     *owned;    /* JSON arrays made while rendering (slices of slices) */
} ex;

static int xerr(ex *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int xerr(ex *e, const char *fmt, ...)
{
    if (e->vc.failed) return -1;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return gt_verr(&e->vc, "%s", msg);
}

/* ------------------------------------------------------------ variables */

static int var_push(ex *e, const char *name, gt_val v)
{
    if (e->nvars == e->capvars) {
        if (e->capvars >= GT_MAX_VARS) return xerr(e, "too many variables");
        int cap = e->capvars ? e->capvars * 2 : 16;
        gvar *nv = realloc(e->vars, (size_t)cap * sizeof(*nv));
        if (!nv) return xerr(e, "out of memory");
        e->vars = nv;
        e->capvars = cap;
    }
    e->vars[e->nvars++] = (gvar){ name, v };
    return 0;
}

static gvar *var_find(ex *e, const char *name)
{
    for (int i = e->nvars - 1; i >= 0; i--)
        if (!strcmp(e->vars[i].name, name)) return &e->vars[i];
    return NULL;
}

static int var_set(ex *e, const char *name, gt_val v)
{
    gvar *g = var_find(e, name);
    if (!g) return xerr(e, "undefined variable: %s", name);
    g->v = v;
    return 0;
}

/* ------------------------------------------------------------ helpers */

static gt_val unwrap(gt_val v) { return v.k == GV_NIL ? gt_invalid() : v; }

static int make_string(ex *e, gt_buf *b, gt_val *out)
{
    if (b->overflow) {
        gt_buf_free(b);
        return xerr(e, "string longer than %u bytes", (unsigned)GT_MAX_STRING);
    }
    char *s = gt_strndup(e->vc.arena, b->p ? b->p : "", b->n);
    size_t n = b->n;
    gt_buf_free(b);
    if (!s) return xerr(e, "template strings exceed %u bytes", (unsigned)GT_MAX_ARENA);
    *out = gt_str(s, n);
    return 0;
}

/* ------------------------------------------------------------ evaluation */

static int eval_pipe(ex *e, gt_val dot, const gt_pipe *p, gt_val *out);
static int walk_list(ex *e, gt_val dot, const gt_list *l);

typedef struct {
    gt_node *const *args; /* cmd args after the first word */
    int             n;
    bool            has_final;
    gt_val          final;
} callargs;

static int count_args(const callargs *a) { return a->n + (a->has_final ? 1 : 0); }

static int not_a_function(ex *e, const callargs *a, const char *what)
{
    if (count_args(a) > 0) return xerr(e, "can't give argument to non-function %s", what);
    return 0;
}

/* The field chain ident[0..n) applied to recv; the last one gets the arguments. */
static int eval_fields(ex *e, gt_val recv, const char *const *ident, int n, const callargs *a,
                       gt_val *out)
{
    for (int i = 0; i < n; i++) {
        bool last = i == n - 1;
        gt_val next;
        int rc = gt_field_get(&e->vc, recv, ident[i], &next);
        if (rc < 0) return -1;
        if (rc == 0)
            return xerr(e, "can't evaluate field %s in type %s", ident[i], gt_type_name(recv));
        if (last && a && count_args(a) > 0 && recv.k != GV_INVALID)
            return xerr(e, "%s is not a method but has arguments", ident[i]);
        recv = next;
    }
    *out = recv;
    return 0;
}

static int call_function(ex *e, gt_val dot, const gt_node *fn, const callargs *a, gt_val *out);

/* An operand used as an argument (Go's evalArg): functions are called with no arguments. */
static int eval_arg(ex *e, gt_val dot, const gt_node *n, gt_val *out)
{
    e->pos = n->pos;
    static const callargs none = { 0 };
    switch (n->kind) {
    case GN_DOT: *out = dot; return 0;
    case GN_NIL: *out = gt_nil(); return 0;
    case GN_BOOL: *out = gt_bool(n->b); return 0;
    case GN_STRING: *out = gt_str(n->text, n->len); return 0;
    case GN_NUMBER:
        *out = n->is_int ? gt_int(n->i) : (gt_val){ .k = GV_FLOAT, .f = n->f };
        return 0;
    case GN_FIELD: return eval_fields(e, dot, n->ident, n->nident, NULL, out);
    case GN_VARIABLE: {
        gvar *g = var_find(e, n->ident[0]);
        if (!g) return xerr(e, "undefined variable: %s", n->ident[0]);
        if (n->nident == 1) {
            *out = g->v;
            return 0;
        }
        return eval_fields(e, g->v, n->ident + 1, n->nident - 1, NULL, out);
    }
    case GN_CHAIN: {
        gt_val base;
        if (n->sub->kind == GN_NIL) return xerr(e, "indirection through explicit nil");
        if (eval_arg(e, dot, n->sub, &base)) return -1;
        return eval_fields(e, base, n->ident, n->nident, NULL, out);
    }
    case GN_PIPE: return eval_pipe(e, dot, n->pipe, out);
    case GN_IDENT: return call_function(e, dot, n, &none, out);
    default: return xerr(e, "unexpected operand");
    }
}

static int eval_command(ex *e, gt_val dot, const gt_cmd *cmd, bool has_final, gt_val final,
                        gt_val *out)
{
    const gt_node *first = cmd->args[0];
    callargs a = { cmd->args + 1, cmd->n - 1, has_final, final };
    e->pos = first->pos;
    switch (first->kind) {
    case GN_FIELD: return eval_fields(e, dot, first->ident, first->nident, &a, out);
    case GN_VARIABLE: {
        gvar *g = var_find(e, first->ident[0]);
        if (!g) return xerr(e, "undefined variable: %s", first->ident[0]);
        if (first->nident == 1) {
            if (not_a_function(e, &a, first->ident[0])) return -1;
            *out = g->v;
            return 0;
        }
        return eval_fields(e, g->v, first->ident + 1, first->nident - 1, &a, out);
    }
    case GN_CHAIN: {
        gt_val base;
        if (first->sub->kind == GN_NIL) return xerr(e, "indirection through explicit nil");
        if (eval_arg(e, dot, first->sub, &base)) return -1;
        return eval_fields(e, base, first->ident, first->nident, &a, out);
    }
    case GN_IDENT: return call_function(e, dot, first, &a, out);
    case GN_NIL: return xerr(e, "nil is not a command");
    default:
        if (not_a_function(e, &a, first->kind == GN_PIPE ? "(pipeline)" : "literal")) return -1;
        return eval_arg(e, dot, first, out);
    }
}

static int eval_pipe(ex *e, gt_val dot, const gt_pipe *p, gt_val *out)
{
    gt_val v = gt_invalid();
    for (int i = 0; i < p->ncmds; i++) {
        if (eval_command(e, dot, &p->cmds[i], i > 0, v, &v)) return -1;
        v = unwrap(v); /* dig into interface{} */
    }
    for (int i = 0; i < p->ndecl; i++) {
        if (p->is_assign ? var_set(e, p->decl[i], v) : var_push(e, p->decl[i], v)) return -1;
    }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------ builtins */

/* Arguments of a builtin: evaluated operands, then the pipeline's final value. */
static int eval_args(ex *e, gt_val dot, const callargs *a, gt_val *argv, int max, int *argc)
{
    int n = count_args(a);
    if (n > max) return xerr(e, "too many arguments (%d)", n);
    for (int i = 0; i < a->n; i++)
        if (eval_arg(e, dot, a->args[i], &argv[i])) return -1;
    if (a->has_final) argv[a->n] = a->final;
    *argc = n;
    return 0;
}

typedef enum { K_BAD, K_BOOL, K_INT, K_FLOAT, K_STRING } basic_kind;

static basic_kind basic(gt_val v)
{
    switch (v.k) {
    case GV_BOOL: return K_BOOL;
    case GV_INT: return K_INT;
    case GV_FLOAT: return K_FLOAT;
    case GV_STRING: return K_STRING;
    default: return K_BAD;
    }
}

/* Go's isNil for the values eq compares: invalid, nil interface, nil slice/map/pointer. */
static bool is_nil(gt_val v)
{
    if (v.k == GV_INVALID || v.k == GV_NIL) return true;
    if (v.k != GV_TYPED || v.j) return false;
    return v.t->kind != GK_STRUCT || v.t->ptr;
}

/* Go's eq for two values: 1 equal, 0 not, -1 error. */
static int eq2(ex *e, gt_val a, gt_val b)
{
    a = unwrap(a);
    b = unwrap(b);
    basic_kind ka = basic(a), kb = basic(b);
    if (ka != kb) {
        if (a.k != GV_INVALID && b.k != GV_INVALID)
            return xerr(e, "incompatible types for comparison: %s and %s", gt_type_name(a), gt_type_name(b));
        return 0;
    }
    switch (ka) {
    case K_BOOL: return a.b == b.b;
    case K_INT: return a.i == b.i;
    case K_FLOAT: return a.f == b.f;
    case K_STRING: return a.n == b.n && !memcmp(a.s, b.s, a.n);
    default: break;
    }
    /* neither is a basic value: nil-ness, else pointer equality; slices and maps do not compare */
    bool na = is_nil(a), nb = is_nil(b);
    if (na || nb) return na == nb;
    if (a.t == b.t && a.t->kind == GK_STRUCT && a.t->ptr) return a.j == b.j;
    return xerr(e, "non-comparable type %s", gt_type_name(a));
}

/* lt for two values (Go's lt): 1, 0, or -1 on error. */
static int lt2(ex *e, gt_val a, gt_val b)
{
    a = unwrap(a);
    b = unwrap(b);
    basic_kind ka = basic(a), kb = basic(b);
    if (ka == K_BAD || kb == K_BAD) return xerr(e, "invalid type for comparison");
    if (ka != kb) return xerr(e, "incompatible types for comparison");
    switch (ka) {
    case K_INT: return a.i < b.i;
    case K_FLOAT: return a.f < b.f;
    case K_STRING: {
        int c = memcmp(a.s, b.s, a.n < b.n ? a.n : b.n);
        return c < 0 || (c == 0 && a.n < b.n);
    }
    default: return xerr(e, "invalid type for comparison");
    }
}

static int want_int(ex *e, gt_val v, int64_t *out)
{
    v = unwrap(v);
    if (v.k == GV_INT) {
        *out = v.i;
        return 0;
    }
    if (v.k == GV_INVALID) return xerr(e, "cannot index slice/array with nil");
    return xerr(e, "cannot index slice/array with type %s", gt_type_name(v));
}

static int fn_index(ex *e, gt_val *argv, int argc, gt_val *out)
{
    gt_val item = unwrap(argv[0]);
    if (item.k == GV_INVALID) return xerr(e, "index of untyped nil");
    for (int i = 1; i < argc; i++) {
        gt_val idx = unwrap(argv[i]);
        if (item.k == GV_INVALID) return xerr(e, "index of untyped nil");
        if (item.k == GV_STRING || gt_is_slice(item)) {
            int64_t x, len = gt_len(&e->vc, item);
            if (want_int(e, idx, &x)) return -1;
            if (x < 0 || x >= len) return xerr(e, "index out of range: %lld", (long long)x);
            if (item.k == GV_STRING) {
                item = gt_int((unsigned char)item.s[x]);
                item.u8 = true;
            }
            else if (gt_index(&e->vc, item, x, &item)) return -1;
        } else if (gt_is_map(item)) {
            if (idx.k != GV_STRING) return xerr(e, "value has type %s; should be string", gt_type_name(idx));
            char *key = gt_strndup(e->vc.arena, idx.s, idx.n);
            if (!key) return xerr(e, "out of memory");
            if (gt_map_get(&e->vc, item, key, &item) < 0) return -1;
        } else if (item.k == GV_TYPED && item.t->kind == GK_STRUCT && item.t->ptr && !item.j) {
            return xerr(e, "index of nil pointer");
        } else {
            return xerr(e, "can't index item of type %s", gt_type_name(item));
        }
    }
    *out = item;
    return 0;
}

static int fn_slice(ex *e, gt_val *argv, int argc, gt_val *out)
{
    gt_val item = unwrap(argv[0]);
    if (item.k == GV_INVALID) return xerr(e, "slice of untyped nil");
    if (argc > 4) return xerr(e, "too many slice indexes: %d", argc - 1);
    bool str = item.k == GV_STRING;
    if (!str && !(item.k == GV_TYPED && item.t->kind == GK_SLICE))
        return xerr(e, "can't slice item of type %s", gt_type_name(item));
    if (str && argc == 4) return xerr(e, "cannot 3-index slice a string");
    int64_t len = gt_len(&e->vc, item), idx[3] = { 0, len, len };
    for (int i = 1; i < argc; i++) {
        if (want_int(e, argv[i], &idx[i - 1])) return -1;
        if (idx[i - 1] < 0 || idx[i - 1] > len) return xerr(e, "index out of range: %lld", (long long)idx[i - 1]);
    }
    if (idx[0] > idx[1]) return xerr(e, "invalid slice index: %lld > %lld", (long long)idx[0], (long long)idx[1]);
    if (argc == 4 && idx[1] > idx[2])
        return xerr(e, "invalid slice index: %lld > %lld", (long long)idx[1], (long long)idx[2]);
    if (str) {
        *out = gt_str(item.s + idx[0], (size_t)(idx[1] - idx[0]));
        return 0;
    }
    if (!item.j) { /* nil[0:0] stays nil */
        *out = item;
        return 0;
    }
    json_t *arr = json_array();
    if (!arr || json_array_append_new(e->owned, arr)) return xerr(e, "out of memory");
    for (int64_t i = idx[0]; i < idx[1]; i++)
        if (json_array_append(arr, json_array_get(item.j, (size_t)i))) return xerr(e, "out of memory");
    *out = gt_typed(item.t, arr);
    return 0;
}

/* fmt.Sprint / Sprintln */
static int fn_print(ex *e, gt_val *argv, int argc, bool ln, gt_val *out)
{
    gt_buf b = { .limit = GT_MAX_STRING };
    for (int i = 0; i < argc; i++) {
        gt_val v = argv[i].k == GV_INVALID ? gt_nil() : argv[i];
        bool sep = ln ? i > 0 : i > 0 && v.k != GV_STRING && argv[i - 1].k != GV_STRING;
        if (sep) gt_buf_put(&b, " ", 1);
        if (gt_print(&e->vc, &b, v, false, 'v') && e->vc.failed) {
            gt_buf_free(&b);
            return -1;
        }
    }
    if (ln) gt_buf_put(&b, "\n", 1);
    return make_string(e, &b, out);
}

/* strconv.Quote for %q (printable runes kept, others escaped). */
static void quote(gt_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    gt_buf_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        const char *r = NULL;
        switch (c) {
        case '"': r = "\\\""; break;
        case '\\': r = "\\\\"; break;
        case '\n': r = "\\n"; break;
        case '\r': r = "\\r"; break;
        case '\t': r = "\\t"; break;
        case '\a': r = "\\a"; break;
        case '\b': r = "\\b"; break;
        case '\f': r = "\\f"; break;
        case '\v': r = "\\v"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(esc, sizeof(esc), "\\x%c%c", hex[c >> 4], hex[c & 15]);
                r = esc;
            }
        }
        if (r) gt_buf_put(b, r, strlen(r));
        else gt_buf_put(b, s + i, 1);
    }
    gt_buf_put(b, "\"", 1);
}

/* "%!v(type=value)": how fmt reports an argument its verb cannot print. */
static int bad_verb(ex *e, gt_buf *b, char verb, gt_val v)
{
    char head[8];
    snprintf(head, sizeof(head), "%%!%c(", verb);
    gt_buf_put(b, head, strlen(head));
    if (v.k == GV_NIL) {
        gt_buf_put(b, "<nil>)", 6);
        return 0;
    }
    const char *t = gt_type_name(v);
    gt_buf_put(b, t, strlen(t));
    gt_buf_put(b, "=", 1);
    if (gt_print(&e->vc, b, v, false, 'v') && e->vc.failed) return -1;
    gt_buf_put(b, ")", 1);
    return 0;
}

/* fmt.Sprintf with the verbs chat templates use: %s %v %d %q %t %%. A verb that does not fit its
 * argument prints as fmt prints it ("%!d(string=x)"); other verbs, flags and widths are errors. */
static int fn_printf(ex *e, gt_val *argv, int argc, gt_val *out)
{
    gt_val f = unwrap(argv[0]);
    if (f.k != GV_STRING) return xerr(e, "printf: format is %s, not a string", gt_type_name(f));
    gt_buf b = { .limit = GT_MAX_STRING };
    int next = 1, rc = 0;
    for (size_t i = 0; i < f.n && !rc; i++) {
        if (f.s[i] != '%') {
            gt_buf_put(&b, f.s + i, 1);
            continue;
        }
        if (++i >= f.n) {
            gt_buf_put(&b, "%!(NOVERB)", 10);
            break;
        }
        char verb = f.s[i];
        if (verb == '%') {
            gt_buf_put(&b, "%", 1);
            continue;
        }
        if (!strchr("svdqt", verb)) {
            gt_buf_free(&b);
            return xerr(e, "printf: verb or flag %%%c is not supported", verb);
        }
        if (next >= argc) {
            char m[24];
            snprintf(m, sizeof(m), "%%!%c(MISSING)", verb);
            gt_buf_put(&b, m, strlen(m));
            continue;
        }
        gt_val v = argv[next++];
        if (v.k == GV_INVALID) v = gt_nil();
        bool stringer = v.k == GV_TYPED && (v.t->stringer != GS_NONE || v.t->kind == GK_PROPTYPE);
        bool scalar = v.k == GV_NIL || v.k == GV_BOOL || v.k == GV_INT || v.k == GV_FLOAT || v.k == GV_STRING;
        if (verb == 'v') {
            rc = gt_print(&e->vc, &b, v, false, 'v') && e->vc.failed ? -1 : 0;
        } else if (verb == 's' && !scalar && !stringer) {
            rc = gt_print(&e->vc, &b, v, false, 's') && e->vc.failed ? -1 : 0;
        } else if (!scalar && !stringer) {
            rc = xerr(e, "printf: %%%c of a %s value is not supported", verb, gt_type_name(v));
        } else if ((verb == 's' || verb == 'q') && (v.k == GV_STRING || stringer)) {
            gt_buf tmp = { .limit = GT_MAX_STRING };
            if (gt_print(&e->vc, &tmp, v, false, 'v') && e->vc.failed) rc = -1;
            else if (verb == 's') gt_buf_put(&b, tmp.p ? tmp.p : "", tmp.n);
            else quote(&b, tmp.p ? tmp.p : "", tmp.n);
            gt_buf_free(&tmp);
        } else if ((verb == 'd' && v.k == GV_INT) || (verb == 't' && v.k == GV_BOOL)) {
            rc = gt_print(&e->vc, &b, v, false, 'v') && e->vc.failed ? -1 : 0;
        } else if (verb == 'q' && v.k == GV_INT) {
            rc = xerr(e, "printf: %%q of an int is not supported");
        } else {
            rc = bad_verb(e, &b, verb, v);
        }
    }
    if (!rc && next < argc) {
        gt_buf_put(&b, "%!(EXTRA ", 9);
        for (int i = next; i < argc && !rc; i++) {
            gt_val v = argv[i].k == GV_INVALID ? gt_nil() : argv[i];
            if (i > next) gt_buf_put(&b, ", ", 2);
            if (v.k != GV_NIL) {
                const char *t = gt_type_name(v);
                gt_buf_put(&b, t, strlen(t));
                gt_buf_put(&b, "=", 1);
            }
            if (gt_print(&e->vc, &b, v, false, 'v') && e->vc.failed) rc = -1;
        }
        gt_buf_put(&b, ")", 1);
    }
    if (rc) {
        gt_buf_free(&b);
        return -1;
    }
    return make_string(e, &b, out);
}

static int fn_date(ex *e, gt_val *argv, int argc, int days_back, gt_val *out)
{
    for (int i = 0; i < argc; i++)
        if (unwrap(argv[i]).k != GV_STRING)
            return xerr(e, "wrong type for value; expected string; got %s", gt_type_name(argv[i]));
    time_t now = time(NULL) - (time_t)days_back * 86400;
    struct tm tm;
    if (!localtime_r(&now, &tm)) return xerr(e, "cannot read the local time");
    char buf[32];
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
    char *s = gt_strndup(e->vc.arena, buf, n);
    if (!s) return xerr(e, "out of memory");
    *out = gt_str(s, n);
    return 0;
}

static int call_function(ex *e, gt_val dot, const gt_node *fn, const callargs *a, gt_val *out)
{
    char name[32];
    snprintf(name, sizeof(name), "%.*s", (int)fn->len, fn->text);
    gt_val argv[64];
    int argc = 0;
    size_t pos = fn->pos;

    if (!strcmp(name, "and") || !strcmp(name, "or")) {
        /* short-circuit: the first operand that decides, else the last one */
        bool is_or = name[0] == 'o';
        if (count_args(a) < 1) return xerr(e, "wrong number of args for %s: want at least 1 got 0", name);
        gt_val v = gt_invalid();
        for (int i = 0; i < a->n; i++) {
            if (eval_arg(e, dot, a->args[i], &v)) return -1;
            if (gt_truth(v) == is_or) {
                *out = v;
                return 0;
            }
        }
        if (a->has_final) v = a->final;
        *out = v;
        return 0;
    }
    if (eval_args(e, dot, a, argv, (int)(sizeof(argv) / sizeof(argv[0])), &argc)) return -1;
    e->pos = pos;
    /* functions taking interface{} see an invalid value as nil; the builtins taking
     * reflect.Value get it as it is (Go: not of it is true, eq of it and "x" is false) */
    bool takes_any = !strcmp(name, "print") || !strcmp(name, "printf") || !strcmp(name, "println") ||
                     !strcmp(name, "json") || !strcmp(name, "toTypeScriptType");
    for (int i = 0; i < argc; i++)
        if (argv[i].k == GV_INVALID && takes_any) argv[i] = gt_nil();
#define ARGS(lo, hi)                                                                             \
    do {                                                                                         \
        if (argc < (lo) || argc > (hi))                                                          \
            return xerr(e, "wrong number of args for %s: want %d got %d", name, (lo), argc);     \
    } while (0)
    if (!strcmp(name, "not")) {
        ARGS(1, 1);
        *out = gt_bool(!gt_truth(argv[0]));
        return 0;
    }
    if (!strcmp(name, "eq")) {
        if (argc < 2) return xerr(e, "missing argument for comparison");
        for (int i = 1; i < argc; i++) {
            int r = eq2(e, argv[0], argv[i]);
            if (r < 0) return -1;
            if (r) {
                *out = gt_bool(true);
                return 0;
            }
        }
        *out = gt_bool(false);
        return 0;
    }
    if (!strcmp(name, "ne") || !strcmp(name, "lt") || !strcmp(name, "le") || !strcmp(name, "gt") ||
        !strcmp(name, "ge")) {
        ARGS(2, 2);
        int r;
        if (!strcmp(name, "ne")) {
            if ((r = eq2(e, argv[0], argv[1])) < 0) return -1;
            r = !r;
        } else {
            int lt = lt2(e, argv[0], argv[1]);
            if (lt < 0) return -1;
            int eq = strcmp(name, "le") && strcmp(name, "gt") ? 0 : eq2(e, argv[0], argv[1]);
            if (eq < 0) return -1;
            r = name[0] == 'l' ? (name[1] == 't' ? lt : lt || eq) : (name[1] == 't' ? !(lt || eq) : !lt);
        }
        *out = gt_bool(r);
        return 0;
    }
    if (!strcmp(name, "len")) {
        ARGS(1, 1);
        gt_val v = unwrap(argv[0]);
        if (v.k == GV_INVALID || (v.k == GV_TYPED && (v.t->kind == GK_STRUCT || v.t->kind == GK_PROPMAP) &&
                                  v.t->ptr && !v.j))
            return xerr(e, "len of nil pointer");
        int64_t n = gt_len(&e->vc, v);
        if (n < 0) return xerr(e, "len of type %s", gt_type_name(v));
        *out = gt_int(n);
        return 0;
    }
    if (!strcmp(name, "index")) {
        if (argc < 1) return xerr(e, "wrong number of args for index: want at least 1 got 0");
        return fn_index(e, argv, argc, out);
    }
    if (!strcmp(name, "slice")) {
        if (argc < 1) return xerr(e, "wrong number of args for slice: want at least 1 got 0");
        return fn_slice(e, argv, argc, out);
    }
    if (!strcmp(name, "print") || !strcmp(name, "println"))
        return fn_print(e, argv, argc, name[5] == 'l', out);
    if (!strcmp(name, "printf")) {
        if (argc < 1) return xerr(e, "wrong number of args for printf: want at least 1 got 0");
        return fn_printf(e, argv, argc, out);
    }
    if (!strcmp(name, "json")) {
        ARGS(1, 1);
        gt_buf b = { .limit = GT_MAX_STRING };
        if (gt_json(&e->vc, &b, argv[0]) && e->vc.failed) {
            gt_buf_free(&b);
            return -1;
        }
        return make_string(e, &b, out);
    }
    if (!strcmp(name, "toTypeScriptType")) {
        ARGS(1, 1);
        gt_val v = argv[0];
        if (!(v.k == GV_TYPED && v.t == &gt_t_tool_property)) {
            *out = gt_str("any", 3);
            return 0;
        }
        gt_buf b = { .limit = GT_MAX_STRING };
        if (gt_typescript(&e->vc, &b, v.j)) {
            gt_buf_free(&b);
            return -1;
        }
        return make_string(e, &b, out);
    }
    if (!strcmp(name, "currentDate")) return fn_date(e, argv, argc, 0, out);
    if (!strcmp(name, "yesterdayDate")) return fn_date(e, argv, argc, 1, out);
#undef ARGS
    return xerr(e, "function %s is not supported", name);
}

/* ------------------------------------------------------------ walking */

static int walk_range(ex *e, gt_val dot, const gt_node *n)
{
    int mark = e->nvars, rc = WALK_OK;
    gt_val v;
    if (eval_pipe(e, dot, n->pipe, &v)) return WALK_ERR;
    int inner = e->nvars;
    const gt_pipe *p = n->pipe;
    int64_t count;
    const char **keys = NULL;
    bool is_int = v.k == GV_INT;
    if (v.k == GV_INVALID) {
        count = 0;
    } else if (is_int) {
        if (p->ndecl > 1) return xerr(e, "can't use %lld to iterate over more than one variable", (long long)v.i);
        count = v.i > 0 ? v.i : 0;
    } else if (gt_is_map(v)) {
        if (gt_map_keys(&e->vc, v, &keys, &count)) return WALK_ERR;
    } else if (gt_is_slice(v)) {
        count = gt_len(&e->vc, v);
    } else {
        return xerr(e, "range can't iterate over %s", gt_type_name(v));
    }
    for (int64_t i = 0; i < count; i++) {
        if (++e->iterations > GT_MAX_ITERATIONS)
            return xerr(e, "more than %d range iterations", GT_MAX_ITERATIONS);
        gt_val index, elem;
        if (is_int) {
            index = elem = gt_int(i);
        } else if (keys) {
            index = gt_str(keys[i], strlen(keys[i]));
            if (gt_map_get(&e->vc, v, keys[i], &elem) < 0) return WALK_ERR;
        } else {
            index = gt_int(i);
            if (gt_index(&e->vc, v, i, &elem)) return WALK_ERR;
        }
        /* one variable: the element; two: index/key then element */
        if (p->ndecl > 0) {
            gt_val first = p->ndecl > 1 ? index : elem;
            if (p->is_assign) {
                if (var_set(e, p->decl[0], first)) return WALK_ERR;
            } else {
                e->vars[inner - p->ndecl].v = first;
            }
        }
        if (p->ndecl > 1) {
            if (p->is_assign) {
                if (var_set(e, p->decl[1], elem)) return WALK_ERR;
            } else {
                e->vars[inner - 1].v = elem;
            }
        }
        rc = walk_list(e, elem, &n->list);
        e->nvars = inner;
        if (rc == WALK_ERR) return rc;
        if (rc == WALK_BREAK) break;
        rc = WALK_OK;
    }
    /* break/continue end here; in the else list they belong to an enclosing range */
    rc = count == 0 && n->has_else ? walk_list(e, dot, &n->else_list) : WALK_OK;
    e->nvars = mark;
    return rc;
}

static int walk_node(ex *e, gt_val dot, const gt_node *n)
{
    e->pos = n->pos;
    switch (n->kind) {
    case GN_TEXT:
        if (gt_buf_put(e->out, n->text, n->len))
            return xerr(e, "output exceeds %u bytes", (unsigned)e->out->limit);
        return WALK_OK;
    case GN_ACTION: {
        gt_val v;
        if (eval_pipe(e, dot, n->pipe, &v)) return WALK_ERR;
        if (n->pipe->ndecl > 0) return WALK_OK;
        e->pos = n->pos;
        if (gt_print(&e->vc, e->out, v, true, 'v')) {
            if (e->out->overflow) return xerr(e, "output exceeds %u bytes", (unsigned)e->out->limit);
            return WALK_ERR;
        }
        return WALK_OK;
    }
    case GN_IF: case GN_WITH: {
        int mark = e->nvars, rc;
        gt_val v;
        if (eval_pipe(e, dot, n->pipe, &v)) return WALK_ERR;
        if (gt_truth(v)) rc = walk_list(e, n->kind == GN_WITH ? v : dot, &n->list);
        else rc = n->has_else ? walk_list(e, dot, &n->else_list) : WALK_OK;
        e->nvars = mark;
        return rc;
    }
    case GN_RANGE: return walk_range(e, dot, n);
    case GN_BREAK: return WALK_BREAK;
    case GN_CONTINUE: return WALK_CONTINUE;
    default: return xerr(e, "unexpected node");
    }
}

static int walk_list(ex *e, gt_val dot, const gt_list *l)
{
    for (int i = 0; i < l->n; i++) {
        int rc = walk_node(e, dot, l->v[i]);
        if (rc != WALK_OK) return rc;
    }
    return WALK_OK;
}

/* ------------------------------------------------------------ Ollama's layer */

/* Template.Vars: does any field or variable (lowercased) in the tree equal name?
 * Like Ollama's Identifiers, it looks at pipelines of actions and control structures (not
 * inside chains) and at every segment of .A.B and $x.A. */
static bool mentions(const gt_list *l, const char *name);

static bool pipe_mentions(const gt_pipe *p, const char *name)
{
    for (int c = 0; c < p->ncmds; c++)
        for (int a = 0; a < p->cmds[c].n; a++) {
            const gt_node *n = p->cmds[c].args[a];
            if (n->kind == GN_FIELD || n->kind == GN_VARIABLE) {
                for (int i = 0; i < n->nident; i++)
                    if (!strcasecmp(n->ident[i], name)) return true;
            } else if (n->kind == GN_PIPE && pipe_mentions(n->pipe, name)) {
                return true;
            }
        }
    return false;
}

static bool mentions(const gt_list *l, const char *name)
{
    for (int i = 0; i < l->n; i++) {
        const gt_node *n = l->v[i];
        if (n->pipe && pipe_mentions(n->pipe, name)) return true;
        if ((n->kind == GN_IF || n->kind == GN_RANGE || n->kind == GN_WITH) &&
            (mentions(&n->list, name) || mentions(&n->else_list, name)))
            return true;
    }
    return false;
}

/* Ollama's deleteNode(root, cut after the first .Response): a copy of the tree in which every
 * node after the first field node naming Response is gone. Nodes are copied into the tree's
 * arena; the original stays intact for the earlier turns. */
typedef struct {
    gt_arena *arena;
    bool      cut;
    bool      failed;     /* out of memory */
    bool      go_panics;  /* Ollama's walk would panic (an else list after the cut) */
} cutter;

static bool cut_here(cutter *c, const gt_node *n)
{
    if (n->kind == GN_FIELD)
        for (int i = 0; i < n->nident; i++)
            if (!strcmp(n->ident[i], "Response")) {
                c->cut = true;
                return false;
            }
    return c->cut;
}

static gt_pipe *cut_pipe(cutter *c, const gt_pipe *p);

static gt_node *cut_node(cutter *c, const gt_node *n)
{
    if (cut_here(c, n)) return NULL;
    if (n->kind != GN_IF && n->kind != GN_RANGE && n->kind != GN_WITH && n->kind != GN_ACTION &&
        n->kind != GN_PIPE)
        return (gt_node *)n;
    gt_node *m = gt_alloc(c->arena, sizeof(*m));
    if (!m) {
        c->failed = true;
        return NULL;
    }
    *m = *n;
    if (n->kind == GN_ACTION || n->kind == GN_PIPE) {
        if (!(m->pipe = cut_pipe(c, n->pipe))) return NULL;
        return m;
    }
    /* if/range/with: the lists are walked, the condition pipeline is not */
    gt_list lists[2] = { n->list, n->else_list };
    for (int k = 0; k < 2; k++) {
        if (k == 1 && !n->has_else) break;
        if (c->cut) { /* Go: walk(ElseList) returns nil and the type assertion panics */
            c->go_panics = true;
            return NULL;
        }
        gt_list *dst = k == 0 ? &m->list : &m->else_list;
        dst->v = gt_alloc(c->arena, (size_t)(lists[k].n ? lists[k].n : 1) * sizeof(*dst->v));
        if (!dst->v) {
            c->failed = true;
            return NULL;
        }
        dst->n = 0;
        for (int i = 0; i < lists[k].n; i++) {
            gt_node *x = cut_node(c, lists[k].v[i]);
            if (c->failed || c->go_panics) return NULL;
            if (x) dst->v[dst->n++] = x;
        }
    }
    return m;
}

static gt_pipe *cut_pipe(cutter *c, const gt_pipe *p)
{
    if (c->cut) return NULL; /* fn(pipe) */
    gt_pipe *q = gt_alloc(c->arena, sizeof(*q));
    gt_cmd *cmds = gt_alloc(c->arena, (size_t)p->ncmds * sizeof(*cmds));
    if (!q || !cmds) {
        c->failed = true;
        return NULL;
    }
    *q = *p;
    q->cmds = cmds;
    for (int i = 0; i < p->ncmds; i++) {
        gt_node **args = gt_alloc(c->arena, (size_t)p->cmds[i].n * sizeof(*args));
        if (!args) {
            c->failed = true;
            return NULL;
        }
        int n = 0;
        for (int a = 0; a < p->cmds[i].n; a++) {
            gt_node *x = cut_node(c, p->cmds[i].args[a]);
            if (c->failed || c->go_panics) return NULL;
            if (x) args[n++] = x;
        }
        if (n == 0) return NULL; /* Go drops the whole pipeline */
        cmds[i] = p->cmds[i];
        cmds[i].args = args;
        cmds[i].n = n;
    }
    return q;
}

/* Collated messages (see the top of this file); *system = system messages joined. */
static int collate(ex *e, const json_t *msgs, json_t **out, gt_buf *system)
{
    json_t *arr = json_array();
    if (!arr) return xerr(e, "out of memory");
    *out = arr;
    size_t nsys = 0;
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        const json_t *m = json_array_get(msgs, i);
        if (!json_is_object(m)) return xerr(e, "messages[%zu]: expected an object", i);
        static const char *const str_keys[] = { "role", "content", "thinking", "tool_name", "tool_call_id" };
        for (size_t k = 0; k < sizeof(str_keys) / sizeof(str_keys[0]); k++) {
            const json_t *v = json_object_get(m, str_keys[k]);
            if (v && !json_is_string(v) && !json_is_null(v))
                return xerr(e, "messages[%zu].%s: expected a string", i, str_keys[k]);
        }
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *content = json_string_value(json_object_get(m, "content"));
        if (!role) role = "";
        if (!content) content = "";
        char *lower = gt_strndup(e->vc.arena, role, strlen(role));
        if (!lower) return xerr(e, "out of memory");
        for (char *p = lower; *p; p++) *p = (char)tolower((unsigned char)*p);
        if (!strcmp(lower, "system")) {
            if (nsys++ && gt_buf_put(system, "\n\n", 2)) return xerr(e, "system prompt too long");
            if (gt_buf_put(system, content, strlen(content))) return xerr(e, "system prompt too long");
        }
        size_t n = json_array_size(arr);
        json_t *prev = n ? json_array_get(arr, n - 1) : NULL;
        if (prev && !strcmp(json_string_value(json_object_get(prev, "role")), lower) && strcmp(lower, "tool")) {
            const char *pc = json_string_value(json_object_get(prev, "content"));
            size_t a = pc ? strlen(pc) : 0, b = strlen(content);
            if (a + b + 2 > GT_MAX_STRING) return xerr(e, "messages[%zu].content: merged content too long", i);
            char *merged = malloc(a + b + 3);
            if (!merged) return xerr(e, "out of memory");
            memcpy(merged, pc ? pc : "", a);
            memcpy(merged + a, "\n\n", 2);
            memcpy(merged + a + 2, content, b + 1);
            int rc = json_object_set_new(prev, "content", json_string(merged));
            free(merged);
            if (rc) return xerr(e, "messages[%zu].content: not valid UTF-8", i);
            continue;
        }
        json_t *copy = json_copy((json_t *)m);
        if (!copy || json_array_append_new(arr, copy) || json_object_set_new(copy, "role", json_string(lower)))
            return xerr(e, "out of memory");
        if (!json_object_get(copy, "content") && json_object_set_new(copy, "content", json_string("")))
            return xerr(e, "out of memory");
    }
    return 0;
}

static int set_str(json_t *o, const char *key, const char *s)
{
    return json_object_set_new(o, key, json_string(s ? s : ""));
}

/* One execution of list over the values object vals. */
static int run(ex *e, const gt_list *root, json_t *vals)
{
    gt_val dot = gt_typed(&gt_t_values, vals);
    e->nvars = 0;
    if (var_push(e, "$", dot)) return -1;
    int rc = walk_list(e, dot, root);
    return rc == WALK_ERR ? -1 : 0;
}

/* The options Ollama passes beside the messages, from in->extra (see qfit/template.h). */
typedef struct {
    const char *prompt, *suffix, *think_level;
} go_extra;

static int read_extra(const json_t *extra, go_extra *x, char *err, size_t err_len)
{
    memset(x, 0, sizeof(*x));
    if (!extra) return 0;
    if (!json_is_object(extra)) {
        snprintf(err, err_len, "template: extra must be an object");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)extra, key, v) {
        const char **dst = !strcmp(key, "prompt") ? &x->prompt : !strcmp(key, "suffix") ? &x->suffix
                         : !strcmp(key, "think_level") ? &x->think_level : NULL;
        if (!dst) {
            snprintf(err, err_len, "template: extra.%s is not a Go template value (known: prompt, suffix, "
                                   "think_level)", key);
            return -1;
        }
        if (!json_is_string(v)) {
            snprintf(err, err_len, "template: extra.%s must be a string", key);
            return -1;
        }
        *dst = json_string_value(v);
    }
    return 0;
}

static int render(ex *e, gt_tree *t, const qfit_chat_input *in, const go_extra *x)
{
    /* Parse(): append {{ .Response }} when the template names neither messages nor response */
    if (!mentions(&t->root, "messages") && !mentions(&t->root, "response")) {
        gt_node *act = gt_alloc(&t->arena, sizeof(*act));
        gt_pipe *pipe = gt_alloc(&t->arena, sizeof(*pipe));
        gt_cmd *cmd = gt_alloc(&t->arena, sizeof(*cmd));
        gt_node *field = gt_alloc(&t->arena, sizeof(*field));
        const char **ident = gt_alloc(&t->arena, sizeof(*ident));
        gt_node **args = gt_alloc(&t->arena, sizeof(*args));
        gt_node **v = gt_alloc(&t->arena, (size_t)(t->root.n + 1) * sizeof(*v));
        if (!act || !pipe || !cmd || !field || !ident || !args || !v) return xerr(e, "out of memory");
        size_t end = strlen(t->src);
        *ident = "Response";
        *field = (gt_node){ .kind = GN_FIELD, .pos = end, .ident = ident, .nident = 1 };
        *args = field;
        *cmd = (gt_cmd){ .args = args, .n = 1, .pos = end };
        *pipe = (gt_pipe){ .pos = end, .cmds = cmd, .ncmds = 1 };
        *act = (gt_node){ .kind = GN_ACTION, .pos = end, .pipe = pipe };
        if (t->root.n) memcpy(v, t->root.v, (size_t)t->root.n * sizeof(*v));
        v[t->root.n] = act;
        t->root.v = v;
        t->root.n++;
    }

    bool think = in->think == 1;
    bool think_set = in->think == 0 || in->think == 1;
    if (x->think_level && !think) return xerr(e, "extra.think_level needs think = 1");

    json_t *msgs = NULL;
    gt_buf system = { .limit = GT_MAX_STRING };
    int rc = collate(e, in->messages, &msgs, &system);
    json_t *vals = json_object();
    if (!rc && !vals) rc = xerr(e, "out of memory");
    if (!rc && (json_object_set_new(vals, "Think", json_boolean(think)) ||
                set_str(vals, "ThinkLevel", x->think_level) ||
                json_object_set_new(vals, "IsThinkSet", json_boolean(think_set)) ||
                set_str(vals, "Response", "")))
        rc = xerr(e, "out of memory");

    if (rc) {
        /* nothing more */
    } else if (x->prompt && *x->prompt && x->suffix && *x->suffix) {
        if (set_str(vals, "Prompt", x->prompt) || set_str(vals, "Suffix", x->suffix))
            rc = xerr(e, "out of memory");
        else
            rc = run(e, &t->root, vals);
    } else if (mentions(&t->root, "messages")) {
        if (set_str(vals, "System", system.p) ||
            json_object_set(vals, "Messages", json_array_size(msgs) ? msgs : json_null()) ||
            json_object_set(vals, "Tools", in->tools ? (json_t *)in->tools : json_null()))
            rc = xerr(e, "out of memory");
        else
            rc = run(e, &t->root, vals);
    } else {
        /* legacy: one execution per turn, the last one on the tree cut after .Response */
        const char *sys = "", *prompt = "", *response = "";
        for (size_t i = 0; !rc && i < json_array_size(msgs); i++) {
            const json_t *m = json_array_get(msgs, i);
            const char *role = json_string_value(json_object_get(m, "role"));
            const char *content = json_string_value(json_object_get(m, "content"));
            bool flush = (!strcmp(role, "system") && (*prompt || *response)) ||
                         (!strcmp(role, "user") && *response);
            if (flush) {
                if (set_str(vals, "System", sys) || set_str(vals, "Prompt", prompt) ||
                    set_str(vals, "Response", response))
                    rc = xerr(e, "out of memory");
                else
                    rc = run(e, &t->root, vals);
                sys = prompt = response = "";
            }
            if (!strcmp(role, "system")) sys = content;
            else if (!strcmp(role, "user")) prompt = content;
            else if (!strcmp(role, "assistant")) response = content;
        }
        if (!rc) {
            cutter c = { .arena = &t->arena };
            gt_list cut = { gt_alloc(&t->arena, (size_t)(t->root.n ? t->root.n : 1) * sizeof(gt_node *)), 0 };
            if (!cut.v) c.failed = true;
            for (int i = 0; !c.failed && !c.go_panics && i < t->root.n; i++) {
                gt_node *n = cut_node(&c, t->root.v[i]);
                if (n) cut.v[cut.n++] = n;
            }
            if (c.failed) rc = xerr(e, "out of memory");
            else if (c.go_panics)
                rc = xerr(e, "{{ .Response }} inside an if/range/with that has an else: Ollama's legacy "
                             "(no .Messages) rendering fails on this template too");
            else if (set_str(vals, "System", sys) || set_str(vals, "Prompt", prompt) ||
                     set_str(vals, "Response", response))
                rc = xerr(e, "out of memory");
            else
                rc = run(e, &cut, vals);
        }
    }
    json_decref(vals);
    json_decref(msgs);
    gt_buf_free(&system);
    return rc;
}

int qfit_template_render_go(const char *tmpl, const qfit_chat_input *in, char **out, char *err,
                            size_t err_len)
{
    if (out) *out = NULL;
    if (!tmpl || !in || !out || !json_is_array(in->messages)) {
        snprintf(err, err_len, "template: %s", !tmpl || !in || !out ? "missing argument"
                                               : "messages must be a JSON array");
        return -1;
    }
    if (in->tools && !json_is_array(in->tools) && !json_is_null(in->tools)) {
        snprintf(err, err_len, "template: tools must be a JSON array");
        return -1;
    }
    go_extra x;
    if (read_extra(in->extra, &x, err, err_len)) return -1;
    gt_tree t;
    if (gt_parse(&t, tmpl, err, err_len)) return -1;

    gt_arena strings = { .limit = GT_MAX_ARENA };
    gt_buf buf = { .limit = QFIT_TEMPLATE_MAX_OUTPUT };
    char msg[512] = "";
    ex e = { .vc = { .arena = &strings, .err = msg, .err_len = sizeof(msg) }, .out = &buf,
             .owned = json_array() };
    int rc = e.owned ? render(&e, &t, in, &x) : xerr(&e, "out of memory");
    if (rc) {
        int line, col;
        gt_line_col(tmpl, e.pos, &line, &col);
        snprintf(err, err_len, "template:%d:%d: %s", line, col, msg);
    } else if (!buf.p) {
        *out = strdup("");
        if (!*out) {
            snprintf(err, err_len, "template: out of memory");
            rc = -1;
        }
    } else {
        *out = buf.p;
        buf.p = NULL;
    }
    gt_buf_free(&buf);
    free(e.vars);
    json_decref(e.owned);
    gt_arena_free(&strings);
    gt_tree_free(&t);
    return rc;
}
