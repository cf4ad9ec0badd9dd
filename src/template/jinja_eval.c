/* Jinja engine: the evaluator (statements, expressions, scopes, loops, macros) and
 * qfit_template_render_jinja().
 * Internal to src/template: do not include from other modules.
 *
 * Semantics are jinja2's as configured by Hugging Face's apply_chat_template
 * (ImmutableSandboxedEnvironment, default Undefined): printing an undefined value prints
 * nothing; attribute/item access, arithmetic and calls on it are errors; attribute or item
 * access that fails on a defined value (a missing key, an index out of range, an attribute of
 * None) gives an undefined value. Stricter than jinja2 in one place: access to an attribute
 * starting with '_' (``''.__class__``) is an error at once instead of an undefined value.
 */
#include "template/jinja.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/template.h"

struct jscope { jscope *parent; jdict vars; };

struct jloop {
    jlist *items;
    size_t i;
    int depth;            /* 1 for the outermost loop of a recursive loop */
    jnode *node;          /* the for statement, for loop(...) in recursive loops */
    jscope *scope;        /* where the for statement runs */
};

struct jmacro {
    const char *name;
    jnode *node;          /* N_MACRO or N_CALLBLOCK (the caller) */
    jscope *closure;
    jv caller;            /* JV_MACRO of the call block's body, or undefined */
};

enum { EX_NORMAL, EX_BREAK, EX_CONTINUE };

static jv eval(jctx *x, jscope *sc, jnode *n);
static int exec_body(jctx *x, jscope *sc, jnodes body);

static jscope *scope_new(jctx *x, jscope *parent)
{
    jscope *s = jx_alloc(x, sizeof *s);
    memset(s, 0, sizeof *s);
    s->parent = parent;
    return s;
}

static jv lookup(jscope *sc, const char *name)
{
    for (; sc; sc = sc->parent) {
        jv *v = jd_get_str(&sc->vars, name);
        if (v) return *v;
    }
    return jv_undef(name);
}

static void bind(jctx *x, jscope *sc, const char *name, jv v)
{
    jd_set(x, &sc->vars, jv_cstr(name), v);
}

static void step(jctx *x, int line)
{
    if (++x->steps > JINJA_MAX_STEPS)
        jx_fail(x, line, "template exceeded %d steps (statements and loop iterations)", JINJA_MAX_STEPS);
}

static void enter(jctx *x, int line)
{
    if (++x->depth > JINJA_MAX_DEPTH)
        jx_fail(x, line, "template recursion deeper than %d levels", JINJA_MAX_DEPTH);
}

static void emit(jctx *x, int line, const char *p, size_t n)
{
    if (x->out->n + n > x->max_output)
        jx_fail(x, line, "rendered output exceeds %zu bytes (QFIT_TEMPLATE_MAX_OUTPUT)", x->max_output);
    jb_put(x, x->out, p, n);
}

static _Noreturn void undefined_error(jctx *x, int line, jv v)
{
    jx_fail(x, line, "'%s' is undefined", v.u.undef_name ? v.u.undef_name : "value");
}

/* ------------------------------------------------------------------ iteration */

/* The items a for loop (or a filter) iterates: list items, dict keys, string characters. */
jlist *jx_iter_items(jctx *x, int line, jv v)
{
    jv l = jv_newlist(x, false);
    switch (v.t) {
    case JV_UNDEF: break;
    case JV_LIST: return v.u.l;
    case JV_DICT: for (size_t i = 0; i < v.u.d->n; i++) jl_push(x, l.u.l, v.u.d->k[i]); break;
    case JV_STR:
        for (size_t i = 0; i < v.u.s.n;) {
            size_t adv;
            ju_decode(v.u.s.p + i, v.u.s.n - i, &adv);
            jl_push(x, l.u.l, jv_str(v.u.s.p + i, adv));
            i += adv;
        }
        break;
    default:
        jx_fail(x, line, "'%s' object is not iterable", jv_type_name(v));
    }
    return l.u.l;
}

static void assign(jctx *x, jscope *sc, jnode *target, jv v)
{
    if (target->kind == N_NAME) { bind(x, sc, target->name, v); return; }
    if (target->kind == N_ATTR) {
        jv ns = lookup(sc, target->a->name);
        if (ns.t != JV_NS)
            jx_fail(x, target->line, "cannot assign attribute on non-namespace object '%s'", target->a->name);
        jd_set(x, ns.u.d, jv_cstr(target->name), v);
        return;
    }
    /* tuple unpacking */
    jlist *items = jx_iter_items(x, target->line, v);
    if (items->n != target->args.n)
        jx_fail(x, target->line, "%s values to unpack (expected %zu, got %zu)",
                items->n > target->args.n ? "too many" : "not enough", target->args.n, items->n);
    for (size_t i = 0; i < items->n; i++) assign(x, sc, target->args.v[i], items->v[i]);
}

jv jinja_loop_attr(jctx *x, int line, jloop *l, const char *name)
{
    size_t n = l->items->n, i = l->i;
    if (!strcmp(name, "index")) return jv_int((int64_t)i + 1);
    if (!strcmp(name, "index0")) return jv_int((int64_t)i);
    if (!strcmp(name, "revindex")) return jv_int((int64_t)(n - i));
    if (!strcmp(name, "revindex0")) return jv_int((int64_t)(n - i - 1));
    if (!strcmp(name, "first")) return jv_bool(i == 0);
    if (!strcmp(name, "last")) return jv_bool(i + 1 == n);
    if (!strcmp(name, "length")) return jv_int((int64_t)n);
    if (!strcmp(name, "depth")) return jv_int(l->depth);
    if (!strcmp(name, "depth0")) return jv_int(l->depth - 1);
    if (!strcmp(name, "previtem")) return i > 0 ? l->items->v[i - 1] : jv_undef("there is no previous item");
    if (!strcmp(name, "nextitem")) return i + 1 < n ? l->items->v[i + 1] : jv_undef("there is no next item");
    if (!strcmp(name, "cycle")) {
        jv *self = jx_alloc(x, sizeof *self);
        *self = (jv){ .t = JV_LOOP, .u.loop = l };
        return (jv){ .t = JV_METHOD, .u.m = { self, "cycle" } };
    }
    if (!strcmp(name, "changed"))
        jx_fail(x, line, "loop.changed is not supported");
    return jv_undef(name);
}

static int run_for(jctx *x, jscope *sc, jnode *n, jv iterable, int depth)
{
    jlist *all = jx_iter_items(x, n->line, iterable);
    jlist *items = all;
    if (n->c) { /* for x in y if cond: loop.* counts the filtered items */
        jv f = jv_newlist(x, false);
        jscope *s = scope_new(x, sc);
        for (size_t i = 0; i < all->n; i++) {
            step(x, n->line);
            s->vars.n = 0; /* a fresh scope per item, reusing the memory */
            assign(x, s, n->a, all->v[i]);
            if (jv_truthy(eval(x, s, n->c))) jl_push(x, f.u.l, all->v[i]);
        }
        items = f.u.l;
    }
    jloop *l = jx_alloc(x, sizeof *l);
    *l = (jloop){ .items = items, .depth = depth, .node = n, .scope = sc };
    jscope *s = scope_new(x, sc);
    for (l->i = 0; l->i < items->n; l->i++) {
        step(x, n->line);
        s->vars.n = 0; /* each iteration starts with no loop-local variables */
        bind(x, s, "loop", (jv){ .t = JV_LOOP, .u.loop = l });
        assign(x, s, n->a, items->v[l->i]);
        int r = exec_body(x, s, n->args);
        if (r == EX_BREAK) break;
    }
    if (items->n == 0 && n->args2.n) return exec_body(x, sc, n->args2);
    return EX_NORMAL;
}

/* ------------------------------------------------------------------ macros */

static jv capture(jctx *x, jscope *sc, jnodes body)
{
    jbuf b = { 0 }, *saved = x->out;
    x->out = &b;
    exec_body(x, sc, body);
    x->out = saved;
    return jv_str(b.p ? b.p : "", b.n);
}

/* Whether a macro body mentions a name (jinja2 gives a macro varargs/kwargs only when its body
 * uses them). */
static bool mentions(const jnode *n, const char *name, int depth)
{
    if (!n || depth > JINJA_MAX_DEPTH) return false;
    if (n->kind == N_NAME && !strcmp(n->name, name)) return true;
    if (mentions(n->a, name, depth + 1) || mentions(n->b, name, depth + 1) ||
        mentions(n->c, name, depth + 1) || mentions(n->d, name, depth + 1))
        return true;
    for (size_t i = 0; i < n->args.n; i++) if (mentions(n->args.v[i], name, depth + 1)) return true;
    for (size_t i = 0; i < n->args2.n; i++) if (mentions(n->args2.v[i], name, depth + 1)) return true;
    return false;
}

static bool body_mentions(const jnode *macro, const char *name)
{
    for (size_t i = 0; i < macro->args.n; i++)
        if (mentions(macro->args.v[i], name, 0)) return true;
    return false;
}

static jv call_macro(jctx *x, int line, jmacro *m, jv *args, size_t nargs, const char **kwn,
                     jv *kwv, size_t nkw)
{
    jnode *d = m->node;
    size_t np = d->args2.n;
    bool varargs = body_mentions(d, "varargs"), kwargs = body_mentions(d, "kwargs");
    if (nargs > np && !varargs)
        jx_fail(x, line, "macro '%s' takes not more than %zu argument(s)", m->name, np);
    enter(x, line);
    jscope *s = scope_new(x, m->closure);
    jv extra_kw = jv_newdict(x);
    for (size_t k = 0; k < nkw; k++) {
        size_t j;
        for (j = 0; j < np; j++) if (!strcmp(d->names[j], kwn[k])) break;
        if (j == np && kwargs) { jd_set(x, extra_kw.u.d, jv_cstr(kwn[k]), kwv[k]); continue; }
        if (j == np) jx_fail(x, line, "macro '%s' has no argument named '%s'", m->name, kwn[k]);
        if (j < nargs) jx_fail(x, line, "macro '%s' got multiple values for argument '%s'", m->name, kwn[k]);
    }
    if (varargs) {
        jv extra = jv_newlist(x, true);
        for (size_t i = np; i < nargs; i++) jl_push(x, extra.u.l, args[i]);
        bind(x, s, "varargs", extra);
    }
    if (kwargs) bind(x, s, "kwargs", extra_kw);
    for (size_t j = 0; j < np; j++) {
        jv v = jv_undef(d->names[j]);
        bool set = false;
        if (j < nargs) { v = args[j]; set = true; }
        for (size_t k = 0; k < nkw && !set; k++)
            if (!strcmp(d->names[j], kwn[k])) { v = kwv[k]; set = true; }
        if (!set && d->args2.v[j]) v = eval(x, s, d->args2.v[j]);
        bind(x, s, d->names[j], v);
    }
    if (m->caller.t == JV_MACRO) bind(x, s, "caller", m->caller);
    jv r = capture(x, s, d->args);
    x->depth--;
    return r;
}

static jv loop_call(jctx *x, int line, jloop *l, jv *args, size_t nargs)
{
    if (!l->node->op) jx_fail(x, line, "the loop is not recursive: 'loop' is not callable");
    if (nargs != 1) jx_fail(x, line, "loop() takes exactly one argument");
    enter(x, line);
    jbuf b = { 0 }, *saved = x->out;
    x->out = &b;
    run_for(x, l->scope, l->node, args[0], l->depth + 1);
    x->out = saved;
    x->depth--;
    return jv_str(b.p ? b.p : "", b.n);
}

jv jinja_call_value(jctx *x, int line, jv f, jv *args, size_t nargs, const char **kwn, jv *kwv,
                    size_t nkw)
{
    switch (f.t) {
    case JV_MACRO: return call_macro(x, line, f.u.macro, args, nargs, kwn, kwv, nkw);
    case JV_FUNC: return jinja_call_func(x, line, f.u.func, args, nargs, kwn, kwv, nkw);
    case JV_METHOD: return jinja_call_method(x, line, f, args, nargs, kwn, kwv, nkw);
    case JV_LOOP: return loop_call(x, line, f.u.loop, args, nargs);
    case JV_UNDEF: undefined_error(x, line, f);
    default: jx_fail(x, line, "'%s' object is not callable", jv_type_name(f));
    }
}

/* ------------------------------------------------------------------ expressions */

static bool contains(jctx *x, int line, jv item, jv container)
{
    switch (container.t) {
    case JV_STR:
        if (item.t != JV_STR)
            jx_fail(x, line, "'in <string>' requires string as left operand, not %s", jv_type_name(item));
        if (item.u.s.n == 0) return true;
        return memmem(container.u.s.p, container.u.s.n, item.u.s.p, item.u.s.n) != NULL;
    case JV_LIST:
        for (size_t i = 0; i < container.u.l->n; i++)
            if (jv_equal(container.u.l->v[i], item)) return true;
        return false;
    case JV_DICT:
        if ((item.t == JV_LIST && !item.u.l->tuple) || item.t == JV_DICT)
            jx_fail(x, line, "unhashable type: '%s'", jv_type_name(item));
        return jd_get(container.u.d, item) != NULL;
    case JV_UNDEF: return false;
    default:
        jx_fail(x, line, "argument of type '%s' is not iterable", jv_type_name(container));
    }
}

static bool is_num(jv v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }
static double num(jv v) { return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : (double)v.u.b; }
static int64_t inum(jv v) { return v.t == JV_INT ? v.u.i : v.t == JV_BOOL ? (int64_t)v.u.b : 0; }

static jv repeat(jctx *x, int line, jv seq, jv count)
{
    int64_t k = inum(count);
    if (k < 0) k = 0;
    if (seq.t == JV_STR) {
        if (seq.u.s.n && (uint64_t)k > JINJA_MAX_MEMORY / seq.u.s.n)
            jx_fail(x, line, "string repetition too large");
        jbuf b = { 0 };
        for (int64_t i = 0; i < k; i++) jb_put(x, &b, seq.u.s.p, seq.u.s.n);
        return jv_str(b.p ? b.p : "", b.n);
    }
    if (seq.u.l->n && (uint64_t)k > JINJA_MAX_MEMORY / (seq.u.l->n * sizeof(jv)))
        jx_fail(x, line, "list repetition too large");
    jv r = jv_newlist(x, seq.u.l->tuple);
    for (int64_t i = 0; i < k; i++)
        for (size_t j = 0; j < seq.u.l->n; j++) jl_push(x, r.u.l, seq.u.l->v[j]);
    return r;
}

static _Noreturn void bad_operands(jctx *x, int line, const char *op, jv a, jv b)
{
    jx_fail(x, line, "unsupported operand type(s) for %s: '%s' and '%s'", op, jv_type_name(a), jv_type_name(b));
}

static jv binop(jctx *x, int line, int op, jv a, jv b)
{
    if (op == '~') {
        jbuf s = { 0 };
        jv_str_into(x, &s, a);
        jv_str_into(x, &s, b);
        return jv_str(s.p ? s.p : "", s.n);
    }
    if (a.t == JV_UNDEF) undefined_error(x, line, a);
    if (b.t == JV_UNDEF) undefined_error(x, line, b);
    const char *name = op == 'f' ? "//" : op == 'p' ? "**" : (const char[]){ (char)op, 0 };
    if (is_num(a) && is_num(b)) {
        bool ints = a.t != JV_FLOAT && b.t != JV_FLOAT;
        int64_t p = inum(a), q = inum(b), r;
        double f = num(a), g = num(b);
        switch (op) {
        case '+':
            if (!ints) return jv_float(f + g);
            if (__builtin_add_overflow(p, q, &r)) jx_fail(x, line, "integer overflow in +");
            return jv_int(r);
        case '-':
            if (!ints) return jv_float(f - g);
            if (__builtin_sub_overflow(p, q, &r)) jx_fail(x, line, "integer overflow in -");
            return jv_int(r);
        case '*':
            if (!ints) return jv_float(f * g);
            if (__builtin_mul_overflow(p, q, &r)) jx_fail(x, line, "integer overflow in *");
            return jv_int(r);
        case '/':
            if (g == 0) jx_fail(x, line, "division by zero");
            return jv_float(f / g);
        case 'f': case '%':
            if (ints) {
                if (q == 0) jx_fail(x, line, "integer division or modulo by zero");
                if (p == INT64_MIN && q == -1) jx_fail(x, line, "integer overflow in //");
                int64_t d = p / q, m = p % q;
                if (m != 0 && ((m < 0) != (q < 0))) { d--; m += q; }
                return jv_int(op == 'f' ? d : m);
            }
            if (g == 0) jx_fail(x, line, "float division by zero");
            if (op == 'f') return jv_float(floor(f / g));
            {
                double m = fmod(f, g);
                if (m != 0 && ((m < 0) != (g < 0))) m += g;
                else if (m == 0) m = copysign(0.0, g);
                return jv_float(m);
            }
        case 'p':
            if (ints && q >= 0) {
                int64_t acc = 1;
                for (int64_t i = 0; i < q; i++) {
                    if (__builtin_mul_overflow(acc, p, &acc)) jx_fail(x, line, "integer overflow in **");
                    if (acc == 0 || acc == 1) break;
                    if (acc == -1) { acc = (q % 2) ? -1 : 1; break; }
                }
                return jv_int(acc);
            }
            if (f == 0 && g < 0) jx_fail(x, line, "0.0 cannot be raised to a negative power");
            return jv_float(pow(f, g));
        default: break;
        }
    }
    if (op == '+' && a.t == JV_STR && b.t == JV_STR) {
        bool safe = a.safe || b.safe; /* Markup + str escapes the str (markupsafe) */
        if (safe) { a = jv_html_escape(x, a); b = jv_html_escape(x, b); }
        jbuf s = { 0 };
        jb_put(x, &s, a.u.s.p, a.u.s.n);
        jb_put(x, &s, b.u.s.p, b.u.s.n);
        jv r = jv_str(s.p ? s.p : "", s.n);
        r.safe = safe;
        return r;
    }
    if (op == '+' && a.t == JV_LIST && b.t == JV_LIST && a.u.l->tuple == b.u.l->tuple) {
        jv r = jv_newlist(x, a.u.l->tuple);
        for (size_t i = 0; i < a.u.l->n; i++) jl_push(x, r.u.l, a.u.l->v[i]);
        for (size_t i = 0; i < b.u.l->n; i++) jl_push(x, r.u.l, b.u.l->v[i]);
        return r;
    }
    if (op == '*' && (a.t == JV_STR || a.t == JV_LIST) && (b.t == JV_INT || b.t == JV_BOOL)) return repeat(x, line, a, b);
    if (op == '*' && (b.t == JV_STR || b.t == JV_LIST) && (a.t == JV_INT || a.t == JV_BOOL)) return repeat(x, line, b, a);
    if (op == '%' && a.t == JV_STR)
        jx_fail(x, line, "printf-style string formatting ('%%' on a string) is not supported");
    bad_operands(x, line, name, a, b);
}

/* Python index normalisation for s[i] */
static bool norm_index(int64_t *i, size_t n)
{
    if (*i < 0) *i += (int64_t)n;
    return *i >= 0 && (uint64_t)*i < n;
}

static jv getitem(jctx *x, int line, jv obj, jv key)
{
    if (obj.t == JV_UNDEF) undefined_error(x, line, obj);
    if (key.t == JV_STR && (obj.t != JV_DICT && obj.t != JV_NS)) {
        char *name = jx_strdup(x, key.u.s.p, key.u.s.n);
        return jinja_getattr(x, line, obj, name);
    }
    switch (obj.t) {
    case JV_DICT: case JV_NS: {
        jv *v = jd_get(obj.u.d, key);
        if (v) return *v;
        if (key.t == JV_STR && obj.t == JV_DICT) /* d['items'] falls back to the method */
            return jinja_getattr(x, line, obj, jx_strdup(x, key.u.s.p, key.u.s.n));
        return jv_undef("key");
    }
    case JV_LIST:
        if (obj.u.l->gen) jx_fail(x, line, "'generator' object is not subscriptable");
        if (key.t == JV_INT || key.t == JV_BOOL) {
            int64_t i = inum(key);
            if (norm_index(&i, obj.u.l->n)) return obj.u.l->v[i];
        }
        return jv_undef("index");
    case JV_STR:
        if (key.t == JV_INT || key.t == JV_BOOL) {
            int64_t i = inum(key);
            size_t len = ju_len(obj.u.s.p, obj.u.s.n);
            if (norm_index(&i, len)) {
                size_t off = ju_offset(obj.u.s.p, obj.u.s.n, (size_t)i), adv;
                ju_decode(obj.u.s.p + off, obj.u.s.n - off, &adv);
                return jv_str(obj.u.s.p + off, adv);
            }
        }
        return jv_undef("index");
    default:
        return jv_undef("item");
    }
}

static int64_t slice_bound(jctx *x, int line, jv v, int64_t dflt, int64_t len, int64_t step)
{
    if (v.t == JV_NONE || v.t == JV_UNDEF) return dflt;
    if (v.t != JV_INT && v.t != JV_BOOL)
        jx_fail(x, line, "slice indices must be integers or None, not %s", jv_type_name(v));
    int64_t i = inum(v);
    if (i < 0) { i += len; if (i < 0) i = step < 0 ? -1 : 0; }
    else if (i >= len) i = step < 0 ? len - 1 : len;
    return i;
}

static jv slice(jctx *x, jnode *n, jscope *sc)
{
    jv obj = eval(x, sc, n->a);
    if (obj.t == JV_UNDEF) undefined_error(x, n->line, obj);
    jv vstart = n->b ? eval(x, sc, n->b) : jv_none();
    jv vstop = n->c ? eval(x, sc, n->c) : jv_none();
    jv vstep = n->d ? eval(x, sc, n->d) : jv_none();
    int64_t step = 1;
    if (vstep.t != JV_NONE) {
        if (vstep.t != JV_INT) jx_fail(x, n->line, "slice indices must be integers or None");
        step = vstep.u.i;
        if (step == 0) jx_fail(x, n->line, "slice step cannot be zero");
    }
    if (obj.t == JV_NS) jx_fail(x, n->line, "'Namespace' object is not subscriptable");
    if (obj.t != JV_STR && obj.t != JV_LIST) return jv_undef("slice"); /* jinja2: TypeError -> undefined */
    if (obj.t == JV_LIST && obj.u.l->gen) jx_fail(x, n->line, "'generator' object is not subscriptable");
    /* strings are sliced by code points: split into characters first */
    jlist *items = obj.t == JV_STR ? jx_iter_items(x, n->line, obj) : obj.u.l;
    int64_t len = (int64_t)items->n;
    int64_t start = slice_bound(x, n->line, vstart, step < 0 ? len - 1 : 0, len, step);
    int64_t stop = slice_bound(x, n->line, vstop, step < 0 ? -1 : len, len, step);
    jv r = obj.t == JV_STR ? jv_none() : jv_newlist(x, obj.u.l->tuple);
    jbuf b = { 0 };
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (obj.t == JV_STR) jb_put(x, &b, items->v[i].u.s.p, items->v[i].u.s.n);
        else jl_push(x, r.u.l, items->v[i]);
    }
    return obj.t == JV_STR ? jv_str(b.p ? b.p : "", b.n) : r;
}

typedef struct { jv *args; size_t nargs; const char **kwn; jv *kwv; size_t nkw; } callargs;

static callargs eval_args(jctx *x, jscope *sc, jnode *n)
{
    callargs c = { .nargs = n->args.n, .nkw = n->args2.n, .kwn = n->names };
    c.args = jx_alloc(x, (c.nargs + 1) * sizeof(jv));
    c.kwv = jx_alloc(x, (c.nkw + 1) * sizeof(jv));
    for (size_t i = 0; i < c.nargs; i++) c.args[i] = eval(x, sc, n->args.v[i]);
    for (size_t i = 0; i < c.nkw; i++) c.kwv[i] = eval(x, sc, n->args2.v[i]);
    return c;
}

static jv apply_filter(jctx *x, jscope *sc, jnode *f, jv in)
{
    callargs c = eval_args(x, sc, f);
    return jinja_filter(x, f, in, c.args, c.nargs, c.kwn, c.kwv, c.nkw, sc);
}

/* A filter chain of a filter block / block set (innermost filter has a == NULL). */
static jv apply_chain(jctx *x, jscope *sc, jnode *f, jv in)
{
    if (f->a) in = apply_chain(x, sc, f->a, in);
    return apply_filter(x, sc, f, in);
}

static jv eval_inner(jctx *x, jscope *sc, jnode *n)
{
    switch (n->kind) {
    case N_LIT: return n->lit;
    case N_NAME: return lookup(sc, n->name);
    case N_LIST: case N_TUPLE: {
        jv l = jv_newlist(x, n->kind == N_TUPLE);
        for (size_t i = 0; i < n->args.n; i++) jl_push(x, l.u.l, eval(x, sc, n->args.v[i]));
        return l;
    }
    case N_DICT: {
        jv d = jv_newdict(x);
        for (size_t i = 0; i < n->args.n; i++) {
            jv k = eval(x, sc, n->args.v[i]);
            if (k.t == JV_LIST && !k.u.l->tuple) jx_fail(x, n->line, "unhashable type: 'list'");
            if (k.t == JV_DICT) jx_fail(x, n->line, "unhashable type: 'dict'");
            jd_set(x, d.u.d, k, eval(x, sc, n->args2.v[i]));
        }
        return d;
    }
    case N_ATTR: {
        jv o = eval(x, sc, n->a);
        return jinja_getattr(x, n->line, o, n->name);
    }
    case N_ITEM: {
        jv o = eval(x, sc, n->a);
        return getitem(x, n->line, o, eval(x, sc, n->b));
    }
    case N_SLICE: return slice(x, n, sc);
    case N_CALL: {
        jv f = eval(x, sc, n->a);
        callargs c = eval_args(x, sc, n);
        return jinja_call_value(x, n->line, f, c.args, c.nargs, c.kwn, c.kwv, c.nkw);
    }
    case N_FILTER: return apply_filter(x, sc, n, eval(x, sc, n->a));
    case N_TEST: {
        jv v = eval(x, sc, n->a);
        callargs c = eval_args(x, sc, n);
        bool r = jinja_test(x, n, n->name, v, c.args, c.nargs);
        return jv_bool(n->op ? !r : r);
    }
    case N_NEG: case N_POS: {
        jv v = eval(x, sc, n->a);
        if (v.t == JV_UNDEF) undefined_error(x, n->line, v);
        if (v.t == JV_FLOAT) return jv_float(n->kind == N_NEG ? -v.u.f : v.u.f);
        if (v.t == JV_INT || v.t == JV_BOOL) {
            int64_t i = inum(v);
            if (n->kind == N_POS) return jv_int(i);
            if (i == INT64_MIN) jx_fail(x, n->line, "integer overflow in unary -");
            return jv_int(-i);
        }
        jx_fail(x, n->line, "bad operand type for unary %c: '%s'", n->kind == N_NEG ? '-' : '+', jv_type_name(v));
    }
    case N_NOT: return jv_bool(!jv_truthy(eval(x, sc, n->a)));
    case N_AND: {
        jv a = eval(x, sc, n->a);
        return jv_truthy(a) ? eval(x, sc, n->b) : a;
    }
    case N_OR: {
        jv a = eval(x, sc, n->a);
        return jv_truthy(a) ? a : eval(x, sc, n->b);
    }
    case N_BIN: {
        jv a = eval(x, sc, n->a);
        return binop(x, n->line, n->op, a, eval(x, sc, n->b));
    }
    case N_CMP: {
        jv a = eval(x, sc, n->a);
        for (size_t i = 0; i < n->args.n; i++) {
            jv b = eval(x, sc, n->args.v[i]);
            bool r;
            switch (n->ops[i]) {
            case 'e': r = jv_equal(a, b); break;
            case 'n': r = !jv_equal(a, b); break;
            case '<': r = jv_compare(x, n->line, a, b) < 0; break;
            case '>': r = jv_compare(x, n->line, a, b) > 0; break;
            case 'l': r = jv_compare(x, n->line, a, b) <= 0; break;
            case 'g': r = jv_compare(x, n->line, a, b) >= 0; break;
            case 'i': r = contains(x, n->line, a, b); break;
            default: r = !contains(x, n->line, a, b); break;
            }
            if (!r) return jv_bool(false);
            a = b;
        }
        return jv_bool(true);
    }
    case N_COND:
        if (jv_truthy(eval(x, sc, n->b))) return eval(x, sc, n->a);
        return n->c ? eval(x, sc, n->c) : jv_undef("the inline if-expression evaluated to false and no else section was defined");
    default:
        jx_fail(x, n->line, "internal error: statement in expression position");
    }
}

static jv eval(jctx *x, jscope *sc, jnode *n)
{
    enter(x, n->line);
    jv v = eval_inner(x, sc, n);
    x->depth--;
    return v;
}

/* ------------------------------------------------------------------ statements */

static jmacro *new_macro(jctx *x, const char *name, jnode *node, jscope *closure)
{
    jmacro *m = jx_alloc(x, sizeof *m);
    *m = (jmacro){ .name = name, .node = node, .closure = closure, .caller = jv_undef("caller") };
    return m;
}

static int exec_node(jctx *x, jscope *sc, jnode *n)
{
    step(x, n->line);
    switch (n->kind) {
    case N_TEXT: emit(x, n->line, n->lit.u.s.p, n->lit.u.s.n); return EX_NORMAL;
    case N_OUTPUT: {
        jv v = eval(x, sc, n->a);
        if (v.t == JV_STR) emit(x, n->line, v.u.s.p, v.u.s.n);
        else {
            jbuf b = { 0 };
            jv_str_into(x, &b, v);
            emit(x, n->line, b.p, b.n);
        }
        return EX_NORMAL;
    }
    case N_IF:
        if (jv_truthy(eval(x, sc, n->a))) return exec_body(x, sc, n->args);
        return exec_body(x, sc, n->args2);
    case N_FOR: return run_for(x, sc, n, eval(x, sc, n->b), 1);
    case N_SET: assign(x, sc, n->a, eval(x, sc, n->b)); return EX_NORMAL;
    case N_SETBLOCK: {
        jv v = capture(x, scope_new(x, sc), n->args);
        if (n->c) v = apply_chain(x, sc, n->c, v);
        assign(x, sc, n->a, v);
        return EX_NORMAL;
    }
    case N_MACRO:
        bind(x, sc, n->name, (jv){ .t = JV_MACRO, .u.macro = new_macro(x, n->name, n, sc) });
        return EX_NORMAL;
    case N_CALLBLOCK: {
        jnode *call = n->a;
        jv f = eval(x, sc, call->a);
        if (f.t != JV_MACRO) jx_fail(x, n->line, "call block: '%s' is not a macro", jv_type_name(f));
        callargs c = eval_args(x, sc, call);
        jmacro m = *f.u.macro;
        m.caller = (jv){ .t = JV_MACRO, .u.macro = new_macro(x, "caller", n, sc) };
        jv r = call_macro(x, n->line, &m, c.args, c.nargs, c.kwn, c.kwv, c.nkw);
        emit(x, n->line, r.u.s.p, r.u.s.n);
        return EX_NORMAL;
    }
    case N_FILTERBLOCK: {
        jv v = apply_chain(x, sc, n->c, capture(x, scope_new(x, sc), n->args));
        jbuf b = { 0 };
        jv_str_into(x, &b, v);
        emit(x, n->line, b.p, b.n);
        return EX_NORMAL;
    }
    case N_WITH: {
        jscope *s = scope_new(x, sc);
        for (size_t i = 0; i + 1 < n->args2.n; i += 2)
            assign(x, s, n->args2.v[i], eval(x, sc, n->args2.v[i + 1]));
        return exec_body(x, s, n->args);
    }
    case N_BREAK: return EX_BREAK;
    case N_CONTINUE: return EX_CONTINUE;
    default:
        jx_fail(x, n->line, "internal error: expression in statement position");
    }
}

static int exec_body(jctx *x, jscope *sc, jnodes body)
{
    enter(x, body.n ? body.v[0]->line : 0);
    int r = EX_NORMAL;
    for (size_t i = 0; i < body.n && r == EX_NORMAL; i++) r = exec_node(x, sc, body.v[i]);
    x->depth--;
    return r;
}

/* ------------------------------------------------------------------ entry point */

int qfit_template_render_jinja(const char *tmpl, const qfit_chat_input *in, char **out,
                               char *err, size_t err_len)
{
    if (!tmpl || !in || !out) {
        snprintf(err, err_len, "jinja template: missing argument");
        return -1;
    }
    *out = NULL;
    jctx *x = calloc(1, sizeof *x);
    if (!x) { snprintf(err, err_len, "jinja template: out of memory"); return -1; }
    x->err = err;
    x->err_len = err_len;
    x->max_output = QFIT_TEMPLATE_MAX_OUTPUT;
    if (setjmp(x->fail)) {
        jx_free_all(x);
        free(x);
        return -1;
    }
    if (!in->messages || !json_is_array(in->messages)) jx_fail(x, 0, "messages must be a JSON array");
    if (in->tools && !json_is_array(in->tools)) jx_fail(x, 0, "tools must be a JSON array");
    if (in->extra && !json_is_object(in->extra)) jx_fail(x, 0, "extra variables must be a JSON object");
    jnodes body = jinja_parse(x, tmpl, strlen(tmpl));

    jscope *g = scope_new(x, NULL);
    static const char *const funcs[JF_COUNT] = {
        [JF_RANGE] = "range", [JF_NAMESPACE] = "namespace", [JF_DICT] = "dict",
        [JF_RAISE] = "raise_exception", [JF_STRFTIME] = "strftime_now",
    };
    for (int i = 0; i < JF_COUNT; i++) bind(x, g, funcs[i], (jv){ .t = JV_FUNC, .u.func = i });
    bind(x, g, "messages", jv_from_json(x, in->messages, 0));
    if (in->tools) bind(x, g, "tools", jv_from_json(x, in->tools, 0));
    bind(x, g, "add_generation_prompt", jv_bool(in->add_generation_prompt));
    bind(x, g, "bos_token", jv_cstr(in->bos_token ? in->bos_token : ""));
    bind(x, g, "eos_token", jv_cstr(in->eos_token ? in->eos_token : ""));
    if (in->think >= 0) bind(x, g, "enable_thinking", jv_bool(in->think > 0));
    if (in->extra) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)in->extra, k, v) bind(x, g, jx_strdup(x, k, strlen(k)), jv_from_json(x, v, 0));
    }
    x->globals = g;
    jscope *top = scope_new(x, g);
    jbuf result = { 0 };
    x->out = &result;
    exec_body(x, top, body);

    *out = malloc(result.n + 1);
    if (!*out) jx_fail(x, 0, "out of memory");
    if (result.n) memcpy(*out, result.p, result.n);
    (*out)[result.n] = 0;
    jx_free_all(x);
    free(x);
    return 0;
}
