/* Jinja engine: attributes, methods, global functions, filters and tests.
 * Internal to src/template: do not include from other modules.
 *
 * Each builtin does what its jinja2 3.x / Python 3 counterpart does for the values chat
 * templates use. Case mapping (upper, lower, title, capitalize) is ASCII-only: non-ASCII
 * letters are left unchanged where Python would map them.
 * Names that Python has but this engine does not implement are errors naming them, never
 * a silent empty value.
 */
#include "template/jinja.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ helpers */

static jv mkstr(jbuf *b) { return jv_str(b->p ? b->p : "", b->n); }

static bool str_eq(jv v, const char *s) { return v.t == JV_STR && v.u.s.n == strlen(s) && !memcmp(v.u.s.p, s, v.u.s.n); }

static const char *cstr(jctx *x, jv v) { return jx_strdup(x, v.u.s.p, v.u.s.n); }

static _Noreturn void undef_err(jctx *x, int line, jv v)
{
    jx_fail(x, line, "'%s' is undefined", v.u.undef_name ? v.u.undef_name : "value");
}

static jv need_str(jctx *x, int line, jv v, const char *what)
{
    if (v.t == JV_UNDEF) undef_err(x, line, v);
    if (v.t != JV_STR) jx_fail(x, line, "%s: expected a string, got %s", what, jv_type_name(v));
    return v;
}

static int64_t need_int(jctx *x, int line, jv v, const char *what)
{
    if (v.t == JV_INT) return v.u.i;
    if (v.t == JV_BOOL) return v.u.b;
    jx_fail(x, line, "%s: expected an integer, got %s", what, jv_type_name(v));
}


static jv gen_of(jctx *x)
{
    jv l = jv_newlist(x, false);
    l.u.l->gen = true;
    return l;
}

/* Named or positional argument number pos (or NULL when absent). */
typedef struct { jv *args; size_t nargs; const char **kwn; jv *kwv; size_t nkw; const char *fn; int line; jctx *x; } argv_t;

static jv *arg(argv_t *a, size_t pos, const char *name)
{
    for (size_t k = 0; k < a->nkw; k++)
        if (!strcmp(a->kwn[k], name)) return &a->kwv[k];
    return pos < a->nargs ? &a->args[pos] : NULL;
}

/* Rejects arguments beyond the npos positional ones and keyword names not listed. */
static void check_args(argv_t *a, size_t npos, const char *const *names)
{
    if (a->nargs > npos)
        jx_fail(a->x, a->line, "%s() takes at most %zu argument(s) (%zu given)", a->fn, npos, a->nargs);
    for (size_t k = 0; k < a->nkw; k++) {
        bool ok = false;
        for (size_t i = 0; names && names[i]; i++) ok |= !strcmp(names[i], a->kwn[k]);
        if (!ok) jx_fail(a->x, a->line, "%s() got an unexpected keyword argument '%s'", a->fn, a->kwn[k]);
    }
}

static bool ascii_upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool ascii_lower(char c) { return c >= 'a' && c <= 'z'; }

/* Simple case mapping of Python's str for Latin-1, Latin Extended-A, Greek, Cyrillic and
 * fullwidth Latin (other scripts are left unchanged; Greek final sigma is not special-cased). */
static uint32_t cp_upper(uint32_t c)
{
    if (c >= 'a' && c <= 'z') return c - 32;
    if (c < 0x80) return c;
    if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
    if (c == 0xFF) return 0x178;
    if (c == 0xB5) return 0x39C;
    if (c == 0x131) return 'I';
    if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
        return c & 1 ? c - 1 : c;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c & 1 ? c : c - 1;
    if (c == 0x17F) return 'S';
    if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
    if (c == 0x3C2) return 0x3A3;
    if (c == 0x3AC) return 0x386;
    if (c >= 0x3AD && c <= 0x3AF) return c - 37;
    if (c == 0x3CC) return 0x38C;
    if (c == 0x3CD || c == 0x3CE) return c - 63;
    if (c >= 0x430 && c <= 0x44F) return c - 32;
    if (c >= 0x450 && c <= 0x45F) return c - 80;
    if (c >= 0xFF41 && c <= 0xFF5A) return c - 32;
    return c;
}

static uint32_t cp_lower(uint32_t c)
{
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0x80) return c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if (c == 0x178) return 0xFF;
    if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
        return c & 1 ? c : c + 1;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c & 1 ? c + 1 : c;
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
    if (c == 0x386) return 0x3AC;
    if (c >= 0x388 && c <= 0x38A) return c + 37;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 63;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    if (c >= 0xFF21 && c <= 0xFF3A) return c + 32;
    return c;
}

static bool cp_cased(uint32_t c) { return cp_upper(c) != c || cp_lower(c) != c || c == 0xDF; }

/* 'u' upper, 'l' lower, 'c' capitalize, 't' str.title, 'j' jinja's title filter (words start
 * after whitespace or one of -([{<) */
static jv map_case(jctx *x, jv s, int mode)
{
    jbuf b = { 0 };
    bool prev_cased = false, start = true;
    for (size_t i = 0; i < s.u.s.n;) {
        size_t adv;
        uint32_t c = ju_decode(s.u.s.p + i, s.u.s.n - i, &adv);
        bool up;
        switch (mode) {
        case 'u': up = true; break;
        case 'l': up = false; break;
        case 'c': up = i == 0; break;
        case 't': up = !prev_cased; break;
        default: up = start; break;
        }
        prev_cased = cp_cased(c);
        start = ju_isspace(c) || (c < 0x80 && strchr("-([{<", (int)c) && c);
        if (up && c == 0xDF) jb_puts(x, &b, "SS"); /* Python: 'ß'.upper() == 'SS' */
        else ju_encode(x, &b, up ? cp_upper(c) : cp_lower(c));
        i += adv;
    }
    return mkstr(&b);
}

/* strip/lstrip/rstrip with Python's whitespace or a set of characters */
static bool in_chars(uint32_t c, jv chars)
{
    if (chars.t != JV_STR) return ju_isspace(c);
    for (size_t i = 0; i < chars.u.s.n;) {
        size_t adv;
        if (ju_decode(chars.u.s.p + i, chars.u.s.n - i, &adv) == c) return true;
        i += adv;
    }
    return false;
}

static jv strip(jv s, jv chars, bool left, bool right)
{
    const char *p = s.u.s.p;
    size_t b = 0, e = s.u.s.n;
    if (left) {
        while (b < e) {
            size_t adv;
            uint32_t c = ju_decode(p + b, e - b, &adv);
            if (!in_chars(c, chars)) break;
            b += adv;
        }
    }
    if (right) {
        size_t keep = b;
        for (size_t i = b; i < e;) {
            size_t adv;
            uint32_t c = ju_decode(p + i, e - i, &adv);
            i += adv;
            if (!in_chars(c, chars)) keep = i;
        }
        e = keep;
    }
    return jv_str(p + b, e - b);
}

static const char *find_sub(const char *h, size_t hn, const char *n, size_t nn)
{
    if (nn == 0) return h;
    return memmem(h, hn, n, nn);
}

static const char *rfind_sub(const char *h, size_t hn, const char *n, size_t nn)
{
    if (nn > hn) return NULL;
    for (size_t i = hn - nn + 1; i-- > 0;)
        if (!memcmp(h + i, n, nn)) return h + i;
    return NULL;
}

/* str.split / str.rsplit */
static jv split(jctx *x, int line, jv s, jv sep, int64_t maxsplit, bool from_right)
{
    jv out = jv_newlist(x, false);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n;
    if (sep.t == JV_STR) {
        if (sep.u.s.n == 0) jx_fail(x, line, "split(): empty separator");
        if (!from_right) {
            size_t i = 0;
            while (maxsplit != 0) {
                const char *f = find_sub(p + i, n - i, sep.u.s.p, sep.u.s.n);
                if (!f) break;
                jl_push(x, out.u.l, jv_str(p + i, (size_t)(f - (p + i))));
                i = (size_t)(f - p) + sep.u.s.n;
                maxsplit--;
            }
            jl_push(x, out.u.l, jv_str(p + i, n - i));
        } else {
            size_t e = n;
            jv rev = jv_newlist(x, false);
            while (maxsplit != 0) {
                const char *f = rfind_sub(p, e, sep.u.s.p, sep.u.s.n);
                if (!f) break;
                size_t at = (size_t)(f - p);
                jl_push(x, rev.u.l, jv_str(p + at + sep.u.s.n, e - at - sep.u.s.n));
                e = at;
                maxsplit--;
            }
            jl_push(x, out.u.l, jv_str(p, e));
            for (size_t i = rev.u.l->n; i-- > 0;) jl_push(x, out.u.l, rev.u.l->v[i]);
        }
        return out;
    }
    /* whitespace runs; leading/trailing whitespace ignored */
    if (from_right) {
        jv all = split(x, line, s, jv_none(), -1, false);
        jlist *w = all.u.l;
        if (maxsplit < 0 || (size_t)maxsplit >= w->n) return all;
        /* the last maxsplit words split off; the rest, leading whitespace included, stays one */
        size_t keep = w->n - (size_t)maxsplit;
        jv r = jv_newlist(x, false);
        const char *last_end = w->v[keep - 1].u.s.p + w->v[keep - 1].u.s.n;
        jl_push(x, r.u.l, jv_str(p, (size_t)(last_end - p)));
        for (size_t i = keep; i < w->n; i++) jl_push(x, r.u.l, w->v[i]);
        return r;
    }
    size_t i = 0;
    for (;;) {
        while (i < n) {
            size_t adv;
            if (!ju_isspace(ju_decode(p + i, n - i, &adv))) break;
            i += adv;
        }
        if (i >= n) break;
        if (maxsplit == 0) { /* the remainder keeps its trailing whitespace */
            jl_push(x, out.u.l, jv_str(p + i, n - i));
            break;
        }
        size_t b = i;
        while (i < n) {
            size_t adv;
            if (ju_isspace(ju_decode(p + i, n - i, &adv))) break;
            i += adv;
        }
        jl_push(x, out.u.l, jv_str(p + b, i - b));
        maxsplit--;
    }
    return out;
}

static jv replace(jctx *x, jv s, jv old, jv new_, int64_t count)
{
    jbuf b = { 0 };
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    if (old.u.s.n == 0) { /* Python inserts new between every character */
        size_t k = 0;
        for (;;) {
            if (count >= 0 && (int64_t)k >= count) { jb_put(x, &b, p + i, n - i); break; }
            jb_put(x, &b, new_.u.s.p, new_.u.s.n);
            k++;
            if (i >= n) break;
            size_t adv;
            ju_decode(p + i, n - i, &adv);
            jb_put(x, &b, p + i, adv);
            i += adv;
        }
        return mkstr(&b);
    }
    while (count != 0) {
        const char *f = find_sub(p + i, n - i, old.u.s.p, old.u.s.n);
        if (!f) break;
        jb_put(x, &b, p + i, (size_t)(f - (p + i)));
        jb_put(x, &b, new_.u.s.p, new_.u.s.n);
        i = (size_t)(f - p) + old.u.s.n;
        count--;
    }
    jb_put(x, &b, p + i, n - i);
    return mkstr(&b);
}

static bool starts_or_ends(jctx *x, int line, jv s, jv what, bool ends)
{
    if (what.t == JV_LIST && what.u.l->tuple) {
        for (size_t i = 0; i < what.u.l->n; i++)
            if (starts_or_ends(x, line, s, what.u.l->v[i], ends)) return true;
        return false;
    }
    need_str(x, line, what, ends ? "endswith" : "startswith");
    if (what.u.s.n > s.u.s.n) return false;
    return !memcmp(s.u.s.p + (ends ? s.u.s.n - what.u.s.n : 0), what.u.s.p, what.u.s.n);
}

/* str.format with "{}", "{0}", "{name}" fields and no format specs */
static jv str_format(jctx *x, int line, jv s, argv_t *a)
{
    jbuf b = { 0 };
    size_t auto_i = 0;
    const char *p = s.u.s.p;
    size_t n = s.u.s.n;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '{' && i + 1 < n && p[i + 1] == '{') { jb_puts(x, &b, "{"); i++; continue; }
        if (p[i] == '}' && i + 1 < n && p[i + 1] == '}') { jb_puts(x, &b, "}"); i++; continue; }
        if (p[i] != '{') { jb_put(x, &b, p + i, 1); continue; }
        const char *close = memchr(p + i, '}', n - i);
        if (!close) jx_fail(x, line, "format(): single '{' encountered in format string");
        const char *f = p + i + 1;
        size_t fl = (size_t)(close - f);
        if (memchr(f, ':', fl) || memchr(f, '!', fl) || memchr(f, '.', fl) || memchr(f, '[', fl))
            jx_fail(x, line, "format(): format specs and conversions are not supported");
        jv v;
        if (fl == 0) {
            if (auto_i >= a->nargs) jx_fail(x, line, "format(): replacement index %zu out of range", auto_i);
            v = a->args[auto_i++];
        } else if (f[0] >= '0' && f[0] <= '9') {
            size_t k = (size_t)strtoul(f, NULL, 10);
            if (k >= a->nargs) jx_fail(x, line, "format(): replacement index %zu out of range", k);
            v = a->args[k];
        } else {
            char *name = jx_strdup(x, f, fl);
            jv *kv = arg(a, (size_t)-1, name);
            if (!kv) jx_fail(x, line, "format(): missing keyword '%s'", name);
            v = *kv;
        }
        jv_str_into(x, &b, v);
        i = (size_t)(close - p);
    }
    return mkstr(&b);
}

/* ------------------------------------------------------------------ attributes & methods */

static const char *const str_methods[] = {
    "upper", "lower", "strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith",
    "replace", "title", "capitalize", "find", "rfind", "count", "join", "splitlines", "format",
    "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper", "index", "rindex", NULL };
/* str methods Python has that this engine does not implement: errors, not undefined */
static const char *const str_unsupported[] = {
    "casefold", "center", "encode", "expandtabs", "format_map", "isascii", "isdecimal",
    "isidentifier", "isnumeric", "isprintable", "istitle", "ljust", "maketrans", "partition",
    "rjust", "rpartition", "swapcase", "translate", "zfill", "removeprefix", "removesuffix", NULL };
static const char *const dict_methods[] = { "items", "keys", "values", "get", "copy", NULL };
static const char *const dict_mutators[] = { "update", "pop", "popitem", "setdefault", "clear", NULL };
static const char *const list_methods[] = { "index", "count", "copy", NULL };
static const char *const list_mutators[] = { "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", NULL };

static bool listed(const char *const *l, const char *name)
{
    for (; *l; l++) if (!strcmp(*l, name)) return true;
    return false;
}

static jv method(jctx *x, jv obj, const char *name)
{
    jv *self = jx_alloc(x, sizeof *self);
    *self = obj;
    return (jv){ .t = JV_METHOD, .u.m = { self, name } };
}

jv jinja_getattr(jctx *x, int line, jv obj, const char *name)
{
    if (name[0] == '_')
        jx_fail(x, line, "access to attribute '%s' of '%s' object is unsafe", name, jv_type_name(obj));
    switch (obj.t) {
    case JV_UNDEF: undef_err(x, line, obj);
    case JV_DICT:
        if (listed(dict_methods, name)) return method(x, obj, name);
        if (listed(dict_mutators, name))
            jx_fail(x, line, "access to attribute '%s' of 'dict' object is unsafe", name);
        {
            jv *v = jd_get_str(obj.u.d, name);
            return v ? *v : jv_undef(name);
        }
    case JV_NS: {
        jv *v = jd_get_str(obj.u.d, name);
        return v ? *v : jv_undef(name);
    }
    case JV_LOOP: return jinja_loop_attr(x, line, obj.u.loop, name);
    case JV_STR:
        if (listed(str_methods, name)) return method(x, obj, name);
        if (listed(str_unsupported, name)) jx_fail(x, line, "string method '%s' is not supported", name);
        return jv_undef(name);
    case JV_LIST:
        if (listed(list_mutators, name))
            jx_fail(x, line, "access to attribute '%s' of '%s' object is unsafe", name, jv_type_name(obj));
        if (listed(list_methods, name) && !obj.u.l->gen) return method(x, obj, name);
        return jv_undef(name);
    default:
        return jv_undef(name);
    }
}

static jv str_method(jctx *x, jv s, const char *m, argv_t *a)
{
    int line = a->line;
    jv *a0 = a->nargs > 0 ? &a->args[0] : NULL;
    jv *a1 = a->nargs > 1 ? &a->args[1] : NULL;
    if (strcmp(m, "format") && a->nkw) check_args(a, 3, (const char *const[]){ "sep", "maxsplit", NULL });
    if (!strcmp(m, "upper")) return map_case(x, s, 'u');
    if (!strcmp(m, "lower")) return map_case(x, s, 'l');
    if (!strcmp(m, "title")) return map_case(x, s, 't');
    if (!strcmp(m, "capitalize")) return map_case(x, s, 'c');
    if (!strcmp(m, "strip") || !strcmp(m, "lstrip") || !strcmp(m, "rstrip")) {
        check_args(a, 1, NULL);
        jv chars = a0 ? *a0 : jv_none();
        if (chars.t != JV_NONE) need_str(x, line, chars, m);
        return strip(s, chars, m[0] != 'r', m[0] != 'l');
    }
    if (!strcmp(m, "split") || !strcmp(m, "rsplit")) {
        check_args(a, 2, (const char *const[]){ "sep", "maxsplit", NULL });
        jv *sep = arg(a, 0, "sep"), *mx = arg(a, 1, "maxsplit");
        jv sp = sep ? *sep : jv_none();
        if (sp.t != JV_NONE) need_str(x, line, sp, m);
        return split(x, line, s, sp, mx ? need_int(x, line, *mx, m) : -1, m[0] == 'r');
    }
    if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
        check_args(a, 1, NULL);
        if (!a0) jx_fail(x, line, "%s() takes at least 1 argument", m);
        return jv_bool(starts_or_ends(x, line, s, *a0, m[0] == 'e'));
    }
    if (!strcmp(m, "replace")) {
        check_args(a, 3, NULL);
        if (!a1) jx_fail(x, line, "replace() takes at least 2 arguments");
        need_str(x, line, *a0, m); need_str(x, line, *a1, m);
        return replace(x, s, *a0, *a1, a->nargs > 2 ? need_int(x, line, a->args[2], m) : -1);
    }
    if (!strcmp(m, "find") || !strcmp(m, "rfind") || !strcmp(m, "index") || !strcmp(m, "rindex") || !strcmp(m, "count")) {
        check_args(a, 1, NULL);
        if (!a0) jx_fail(x, line, "%s() takes at least 1 argument", m);
        need_str(x, line, *a0, m);
        if (!strcmp(m, "count")) {
            if (a0->u.s.n == 0) return jv_int((int64_t)ju_len(s.u.s.p, s.u.s.n) + 1);
            int64_t c = 0;
            for (size_t i = 0; i + a0->u.s.n <= s.u.s.n;) {
                const char *f = find_sub(s.u.s.p + i, s.u.s.n - i, a0->u.s.p, a0->u.s.n);
                if (!f) break;
                c++;
                i = (size_t)(f - s.u.s.p) + a0->u.s.n;
            }
            return jv_int(c);
        }
        const char *f = m[0] == 'r' ? rfind_sub(s.u.s.p, s.u.s.n, a0->u.s.p, a0->u.s.n)
                                    : find_sub(s.u.s.p, s.u.s.n, a0->u.s.p, a0->u.s.n);
        if (!f && m[strlen(m) - 1] == 'x') jx_fail(x, line, "substring not found");
        return jv_int(f ? (int64_t)ju_len(s.u.s.p, (size_t)(f - s.u.s.p)) : -1);
    }
    if (!strcmp(m, "join")) {
        check_args(a, 1, NULL);
        if (!a0) jx_fail(x, line, "join() takes exactly one argument");
        jlist *l = jx_iter_items(x, line, *a0);
        jbuf b = { 0 };
        for (size_t i = 0; i < l->n; i++) {
            if (i) jb_put(x, &b, s.u.s.p, s.u.s.n);
            if (l->v[i].t != JV_STR)
                jx_fail(x, line, "sequence item %zu: expected str instance, %s found", i, jv_type_name(l->v[i]));
            jb_put(x, &b, l->v[i].u.s.p, l->v[i].u.s.n);
        }
        return mkstr(&b);
    }
    if (!strcmp(m, "splitlines")) {
        check_args(a, 0, NULL);
        jv out = jv_newlist(x, false);
        size_t b = 0;
        for (size_t i = 0; i < s.u.s.n; i++) {
            char c = s.u.s.p[i];
            if (c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1e)) {
                jl_push(x, out.u.l, jv_str(s.u.s.p + b, i - b));
                if (c == '\r' && i + 1 < s.u.s.n && s.u.s.p[i + 1] == '\n') i++;
                b = i + 1;
            }
        }
        if (b < s.u.s.n) jl_push(x, out.u.l, jv_str(s.u.s.p + b, s.u.s.n - b));
        return out;
    }
    if (!strcmp(m, "format")) return str_format(x, line, s, a);
    /* is* predicates (ASCII classes; Python's are Unicode-aware) */
    check_args(a, 0, NULL);
    if (s.u.s.n == 0) return jv_bool(false);
    bool all = true, any_cased = false;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = s.u.s.p[i];
        bool d = c >= '0' && c <= '9', al = ascii_upper(c) || ascii_lower(c);
        any_cased |= al;
        if (!strcmp(m, "isdigit")) all &= d;
        else if (!strcmp(m, "isalpha")) all &= al;
        else if (!strcmp(m, "isalnum")) all &= d || al;
        else if (!strcmp(m, "isspace")) all &= ju_isspace((unsigned char)c);
        else if (!strcmp(m, "islower")) all &= !ascii_upper(c);
        else all &= !ascii_lower(c); /* isupper */
    }
    if (!strcmp(m, "islower") || !strcmp(m, "isupper")) return jv_bool(all && any_cased);
    return jv_bool(all);
}

static jv dict_items(jctx *x, jdict *d)
{
    jv out = jv_newlist(x, false);
    for (size_t i = 0; i < d->n; i++) {
        jv t = jv_newlist(x, true);
        jl_push(x, t.u.l, d->k[i]);
        jl_push(x, t.u.l, d->v[i]);
        jl_push(x, out.u.l, t);
    }
    return out;
}

jv jinja_call_method(jctx *x, int line, jv m, jv *args, size_t nargs, const char **kwn, jv *kwv,
                     size_t nkw)
{
    argv_t a = { args, nargs, kwn, kwv, nkw, m.u.m.name, line, x };
    jv self = *m.u.m.self;
    const char *name = m.u.m.name;
    if (self.t == JV_STR) return str_method(x, self, name, &a);
    if (self.t == JV_LOOP) { /* loop.cycle(a, b, ...) */
        if (nargs == 0) jx_fail(x, line, "no items for cycling given");
        jv idx = jinja_loop_attr(x, line, self.u.loop, "index0");
        return args[idx.u.i % (int64_t)nargs];
    }
    if (self.t == JV_DICT) {
        jdict *d = self.u.d;
        if (!strcmp(name, "get")) {
            check_args(&a, 2, NULL);
            if (nargs < 1) jx_fail(x, line, "get expected at least 1 argument, got 0");
            jv *v = jd_get(d, args[0]);
            return v ? *v : nargs > 1 ? args[1] : jv_none();
        }
        check_args(&a, 0, NULL);
        if (!strcmp(name, "items")) return dict_items(x, d);
        if (!strcmp(name, "copy")) {
            jv c = jv_newdict(x);
            for (size_t i = 0; i < d->n; i++) jd_set(x, c.u.d, d->k[i], d->v[i]);
            return c;
        }
        jv out = jv_newlist(x, false);
        for (size_t i = 0; i < d->n; i++) jl_push(x, out.u.l, name[0] == 'k' ? d->k[i] : d->v[i]);
        return out;
    }
    if (self.t == JV_LIST) {
        jlist *l = self.u.l;
        if (!strcmp(name, "copy")) {
            check_args(&a, 0, NULL);
            jv c = jv_newlist(x, l->tuple);
            for (size_t i = 0; i < l->n; i++) jl_push(x, c.u.l, l->v[i]);
            return c;
        }
        check_args(&a, 1, NULL);
        if (nargs < 1) jx_fail(x, line, "%s() takes exactly one argument (0 given)", name);
        int64_t c = 0;
        for (size_t i = 0; i < l->n; i++) {
            if (!jv_equal(l->v[i], args[0])) continue;
            if (name[0] == 'i') return jv_int((int64_t)i);
            c++;
        }
        if (name[0] == 'i') jx_fail(x, line, "list.index(x): x not in list");
        return jv_int(c);
    }
    jx_fail(x, line, "'%s' object has no callable attribute '%s'", jv_type_name(self), name);
}

/* ------------------------------------------------------------------ global functions */

jv jinja_call_func(jctx *x, int line, int func, jv *args, size_t nargs, const char **kwn,
                   jv *kwv, size_t nkw)
{
    switch (func) {
    case JF_RANGE: {
        if (nkw) jx_fail(x, line, "range() takes no keyword arguments");
        if (nargs < 1 || nargs > 3) jx_fail(x, line, "range expected 1 to 3 arguments, got %zu", nargs);
        int64_t v[3];
        for (size_t i = 0; i < nargs; i++) v[i] = need_int(x, line, args[i], "range");
        int64_t start = nargs > 1 ? v[0] : 0, stop = nargs > 1 ? v[1] : v[0], st = nargs > 2 ? v[2] : 1;
        if (st == 0) jx_fail(x, line, "range() arg 3 must not be zero");
        /* the sandbox's MAX_RANGE check, before any item is made */
        double count = st > 0 ? ceil(((double)stop - (double)start) / (double)st)
                              : ceil(((double)start - (double)stop) / (double)-st);
        if (count > JINJA_MAX_RANGE)
            jx_fail(x, line, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", JINJA_MAX_RANGE);
        jv l = jv_newlist(x, false);
        for (int64_t i = start; st > 0 ? i < stop : i > stop; i += st) jl_push(x, l.u.l, jv_int(i));
        l.u.l->range = true;
        l.u.l->rng[0] = start; l.u.l->rng[1] = stop; l.u.l->rng[2] = st;
        return l;
    }
    case JF_NAMESPACE: case JF_DICT: {
        jv d = jv_newdict(x);
        if (func == JF_NAMESPACE) d.t = JV_NS;
        for (size_t i = 0; i < nargs; i++) { /* namespace({...}) / dict({...}) copy a mapping */
            if (args[i].t != JV_DICT || i > 0) jx_fail(x, line, "%s(): expected at most one mapping argument", func == JF_DICT ? "dict" : "namespace");
            for (size_t k = 0; k < args[i].u.d->n; k++) jd_set(x, d.u.d, args[i].u.d->k[k], args[i].u.d->v[k]);
        }
        for (size_t k = 0; k < nkw; k++) jd_set(x, d.u.d, jv_cstr(kwn[k]), kwv[k]);
        return d;
    }
    case JF_RAISE: {
        jbuf b = { 0 };
        if (nargs > 0) jv_str_into(x, &b, args[0]);
        jx_fail(x, line, "%s", b.p ? b.p : "");
    }
    case JF_STRFTIME: {
        if (nargs != 1 || nkw) jx_fail(x, line, "strftime_now() takes exactly one argument");
        const char *fmt = cstr(x, need_str(x, line, args[0], "strftime_now"));
        const char *fixed = getenv("QFIT_TEMPLATE_NOW");
        time_t now = time(NULL);
        struct tm tm;
        if (fixed && *fixed) {
            char *end;
            long long t = strtoll(fixed, &end, 10);
            if (*end) jx_fail(x, line, "QFIT_TEMPLATE_NOW='%s' is not an integer number of seconds", fixed);
            now = (time_t)t;
            gmtime_r(&now, &tm);
        } else {
            localtime_r(&now, &tm);
        }
        char buf[512];
        size_t n = strftime(buf, sizeof buf, fmt, &tm);
        if (n == 0 && fmt[0]) jx_fail(x, line, "strftime_now(): format too long or empty result");
        return jv_str(jx_strdup(x, buf, n), n);
    }
    default:
        jx_fail(x, line, "internal error: unknown function");
    }
}

/* ------------------------------------------------------------------ filters */

/* jinja2's make_attrgetter: "a.b.0" looks up a, then b, then index 0, item-first. */
static jv get_path(jctx *x, int line, jv v, jv attr)
{
    if (attr.t == JV_INT) {
        if (v.t == JV_LIST) {
            int64_t i = attr.u.i < 0 ? attr.u.i + (int64_t)v.u.l->n : attr.u.i;
            return (i >= 0 && (size_t)i < v.u.l->n) ? v.u.l->v[i] : jv_undef("index");
        }
        return jv_undef("index");
    }
    need_str(x, line, attr, "attribute");
    const char *p = attr.u.s.p, *end = p + attr.u.s.n;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (!dot) dot = end;
        char *part = jx_strdup(x, p, (size_t)(dot - p));
        if (v.t == JV_UNDEF) undef_err(x, line, v);
        if (part[0] >= '0' && part[0] <= '9' && v.t == JV_LIST) {
            int64_t i = strtoll(part, NULL, 10);
            v = (size_t)i < v.u.l->n ? v.u.l->v[i] : jv_undef(part);
        } else if (v.t == JV_DICT || v.t == JV_NS) {
            jv *f = jd_get_str(v.u.d, part);
            v = f ? *f : jv_undef(part);
        } else {
            v = jinja_getattr(x, line, v, part);
        }
        p = dot + 1;
    }
    return v;
}

static jv lower_key(jctx *x, jv v, bool case_sensitive)
{
    return (!case_sensitive && v.t == JV_STR) ? map_case(x, v, 'l') : v;
}

/* stable merge sort of a list by key (keys[] parallel to items) */
static void sort_by(jctx *x, int line, jv *items, jv *keys, size_t n, bool reverse)
{
    if (n < 2) return;
    jv *ti = jx_alloc(x, n * sizeof *ti), *tk = jx_alloc(x, n * sizeof *tk);
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int c = jv_compare(x, line, keys[j], keys[i]);
                bool take_right = reverse ? c > 0 : c < 0;
                if (take_right) { ti[k] = items[j]; tk[k++] = keys[j++]; }
                else { ti[k] = items[i]; tk[k++] = keys[i++]; }
            }
            while (i < mid) { ti[k] = items[i]; tk[k++] = keys[i++]; }
            while (j < hi) { ti[k] = items[j]; tk[k++] = keys[j++]; }
        }
        memcpy(items, ti, n * sizeof *ti);
        memcpy(keys, tk, n * sizeof *tk);
    }
}

static double to_float_or(jv v, double dflt, bool *ok)
{
    *ok = true;
    if (v.t == JV_FLOAT) return v.u.f;
    if (v.t == JV_INT) return (double)v.u.i;
    if (v.t == JV_BOOL) return v.u.b;
    if (v.t == JV_STR) {
        char buf[64];
        jv s = strip(v, jv_none(), true, true);
        if (s.u.s.n > 0 && s.u.s.n < sizeof buf) {
            memcpy(buf, s.u.s.p, s.u.s.n);
            buf[s.u.s.n] = 0;
            char *end;
            double d = strtod(buf, &end);
            if (!*end) return d;
        }
    }
    *ok = false;
    return dflt;
}

static jv select_reject(jctx *x, jnode *n, jv in, argv_t *a, bool attr_mode, bool keep)
{
    jlist *l = jx_iter_items(x, n->line, jv_truthy(in) ? in : jv_undef("value")); /* `if value:` */
    size_t first = 0;
    jv attr = jv_none();
    if (attr_mode) {
        if (a->nargs < 1) jx_fail(x, n->line, "%s: missing attribute name", n->name);
        attr = a->args[0];
        first = 1;
    }
    const char *test = NULL;
    if (a->nargs > first) test = cstr(x, need_str(x, n->line, a->args[first], n->name));
    jv out = gen_of(x);
    for (size_t i = 0; i < l->n; i++) {
        jv v = attr_mode ? get_path(x, n->line, l->v[i], attr) : l->v[i];
        bool r = test ? jinja_test(x, n, test, v, a->args + first + 1, a->nargs - first - 1) : jv_truthy(v);
        if (r == keep) jl_push(x, out.u.l, l->v[i]);
    }
    return out;
}

static jv do_map(jctx *x, jnode *n, jv in, argv_t *a, jscope *sc)
{
    jlist *l = jx_iter_items(x, n->line, jv_truthy(in) ? in : jv_undef("value")); /* `if value:` */
    jv out = gen_of(x);
    jv *attr = arg(a, (size_t)-1, "attribute");
    if (attr) {
        jv *dflt = arg(a, (size_t)-1, "default");
        for (size_t i = 0; i < l->n; i++) {
            jv v = get_path(x, n->line, l->v[i], *attr);
            if (v.t == JV_UNDEF && dflt) v = *dflt;
            jl_push(x, out.u.l, v);
        }
        return out;
    }
    if (a->nargs < 1) jx_fail(x, n->line, "map: expected a filter name or attribute=");
    jnode fn = *n;
    fn.name = cstr(x, need_str(x, n->line, a->args[0], "map"));
    for (size_t i = 0; i < l->n; i++)
        jl_push(x, out.u.l, jinja_filter(x, &fn, l->v[i], a->args + 1, a->nargs - 1, a->kwn, a->kwv, a->nkw, sc));
    return out;
}

static jv to_list(jctx *x, int line, jv v)
{
    jlist *l = jx_iter_items(x, line, v);
    jv out = jv_newlist(x, false);
    for (size_t i = 0; i < l->n; i++) jl_push(x, out.u.l, l->v[i]);
    return out;
}

static jv indent(jctx *x, int line, jv s, argv_t *a)
{
    jv *w = arg(a, 0, "width"), *first = arg(a, 1, "first"), *blank = arg(a, 2, "blank");
    jbuf ind = { 0 };
    if (w && w->t == JV_STR) jb_put(x, &ind, w->u.s.p, w->u.s.n);
    else {
        int64_t k = w ? need_int(x, line, *w, "indent") : 4;
        for (int64_t i = 0; i < k; i++) jb_puts(x, &ind, " ");
    }
    jv text = s;
    jbuf t = { 0 };
    jb_put(x, &t, text.u.s.p, text.u.s.n);
    jb_puts(x, &t, "\n");
    jv lines = jv_newlist(x, false);
    { /* splitlines of s + "\n" */
        jv m = method(x, mkstr(&t), "splitlines");
        lines = jinja_call_method(x, line, m, NULL, 0, NULL, NULL, 0);
    }
    jbuf r = { 0 };
    jlist *L = lines.u.l;
    bool bl = blank && jv_truthy(*blank);
    for (size_t i = 0; i < L->n; i++) {
        if (i) jb_puts(x, &r, "\n");
        bool do_ind = (i > 0 || (first && jv_truthy(*first))) && (bl || L->v[i].u.s.n > 0 || i == 0);
        if (i == 0 && !(first && jv_truthy(*first))) do_ind = false;
        if (do_ind) jb_put(x, &r, ind.p, ind.n);
        jb_put(x, &r, L->v[i].u.s.p, L->v[i].u.s.n);
    }
    return mkstr(&r);
}

static int64_t py_len(jctx *x, int line, jv v)
{
    switch (v.t) {
    case JV_UNDEF: return 0;
    case JV_STR: return (int64_t)ju_len(v.u.s.p, v.u.s.n);
    case JV_LIST:
        if (v.u.l->gen) jx_fail(x, line, "object of type 'generator' has no len()");
        return (int64_t)v.u.l->n;
    case JV_DICT: return (int64_t)v.u.d->n;
    default: jx_fail(x, line, "object of type '%s' has no len()", jv_type_name(v));
    }
}

jv jinja_filter(jctx *x, jnode *n, jv in, jv *args, size_t nargs, const char **kwn, jv *kwv,
                size_t nkw, jscope *sc)
{
    const char *f = n->name;
    int line = n->line;
    argv_t a = { args, nargs, kwn, kwv, nkw, f, line, x };

    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        check_args(&a, 2, (const char *const[]){ "default_value", "boolean", NULL });
        jv *dv = arg(&a, 0, "default_value"), *bo = arg(&a, 1, "boolean");
        bool use = in.t == JV_UNDEF || (bo && jv_truthy(*bo) && !jv_truthy(in));
        return use ? (dv ? *dv : jv_cstr("")) : in;
    }
    if (!strcmp(f, "safe")) {
        jv s = jv_to_str(x, in);
        s.safe = true;
        return s;
    }
    if (!strcmp(f, "length") || !strcmp(f, "count")) return jv_int(py_len(x, line, in));
    if (!strcmp(f, "list")) return to_list(x, line, in);
    if (!strcmp(f, "string")) return jv_to_str(x, in);
    if (!strcmp(f, "tojson")) {
        check_args(&a, 1, (const char *const[]){ "indent", "ensure_ascii", "sort_keys", "separators", NULL });
        jv *ind = arg(&a, 0, "indent"), *ea = arg(&a, (size_t)-1, "ensure_ascii"),
           *sk = arg(&a, (size_t)-1, "sort_keys"), *sp = arg(&a, (size_t)-1, "separators");
        if ((ea && jv_truthy(*ea)) || (sk && jv_truthy(*sk)) || (sp && sp->t != JV_NONE))
            jx_fail(x, line, "tojson: only the indent argument is supported");
        int indn = -1;
        if (ind && ind->t != JV_NONE) indn = (int)need_int(x, line, *ind, "tojson indent");
        if (indn > 64) jx_fail(x, line, "tojson: indent %d too large", indn);
        jbuf b = { 0 };
        jv_json_into(x, line, &b, in, indn, 0);
        return mkstr(&b);
    }
    if (!strcmp(f, "items")) {
        if (in.t == JV_UNDEF) return jv_newlist(x, false);
        if (in.t != JV_DICT) jx_fail(x, line, "items: can only get item pairs from a mapping, not %s", jv_type_name(in));
        return dict_items(x, in.u.d);
    }
    if (!strcmp(f, "first") || !strcmp(f, "last")) {
        if (in.t == JV_LIST && in.u.l->gen && f[0] == 'l') jx_fail(x, line, "'generator' object is not reversible");
        jlist *l = jx_iter_items(x, line, in);
        if (l->n == 0) return jv_undef(f[0] == 'f' ? "No first item, sequence was empty." : "No last item, sequence was empty.");
        return f[0] == 'f' ? l->v[0] : l->v[l->n - 1];
    }
    if (!strcmp(f, "join")) {
        check_args(&a, 2, (const char *const[]){ "d", "attribute", NULL });
        jv *d = arg(&a, 0, "d"), *at = arg(&a, 1, "attribute");
        jlist *l = jx_iter_items(x, line, in);
        jbuf b = { 0 };
        for (size_t i = 0; i < l->n; i++) {
            if (i && d) jv_str_into(x, &b, *d);
            jv_str_into(x, &b, at ? get_path(x, line, l->v[i], *at) : l->v[i]);
        }
        return mkstr(&b);
    }
    if (!strcmp(f, "select") || !strcmp(f, "reject") || !strcmp(f, "selectattr") || !strcmp(f, "rejectattr")) {
        if (nkw) jx_fail(x, line, "%s: keyword arguments are not supported", f);
        return select_reject(x, n, in, &a, strstr(f, "attr") != NULL, f[0] == 's');
    }
    if (!strcmp(f, "map")) return do_map(x, n, in, &a, sc);
    if (!strcmp(f, "unique")) {
        check_args(&a, 2, (const char *const[]){ "case_sensitive", "attribute", NULL });
        jv *cs = arg(&a, 0, "case_sensitive"), *at = arg(&a, 1, "attribute");
        bool sens = cs && jv_truthy(*cs);
        jlist *l = jx_iter_items(x, line, in);
        jv out = gen_of(x), seen = jv_newlist(x, false);
        for (size_t i = 0; i < l->n; i++) {
            jv k = lower_key(x, at ? get_path(x, line, l->v[i], *at) : l->v[i], sens);
            bool dup = false;
            for (size_t j = 0; j < seen.u.l->n && !dup; j++) dup = jv_equal(seen.u.l->v[j], k);
            if (dup) continue;
            jl_push(x, seen.u.l, k);
            jl_push(x, out.u.l, l->v[i]);
        }
        return out;
    }
    if (!strcmp(f, "dictsort")) {
        check_args(&a, 3, (const char *const[]){ "case_sensitive", "by", "reverse", NULL });
        if (in.t != JV_DICT) jx_fail(x, line, "dictsort: expected a mapping, got %s", jv_type_name(in));
        jv *cs = arg(&a, 0, "case_sensitive"), *by = arg(&a, 1, "by"), *rv = arg(&a, 2, "reverse");
        bool by_value = by && str_eq(*by, "value");
        if (by && !by_value && !str_eq(*by, "key")) jx_fail(x, line, "You can only sort by either \"key\" or \"value\"");
        jv items = dict_items(x, in.u.d);
        jlist *l = items.u.l;
        jv *keys = jx_alloc(x, (l->n + 1) * sizeof *keys);
        for (size_t i = 0; i < l->n; i++) keys[i] = lower_key(x, l->v[i].u.l->v[by_value ? 1 : 0], cs && jv_truthy(*cs));
        sort_by(x, line, l->v, keys, l->n, rv && jv_truthy(*rv));
        return items;
    }
    if (!strcmp(f, "sort")) {
        check_args(&a, 3, (const char *const[]){ "reverse", "case_sensitive", "attribute", NULL });
        jv *rv = arg(&a, 0, "reverse"), *cs = arg(&a, 1, "case_sensitive"), *at = arg(&a, 2, "attribute");
        jv out = to_list(x, line, in);
        jlist *l = out.u.l;
        jv *keys = jx_alloc(x, (l->n + 1) * sizeof *keys);
        for (size_t i = 0; i < l->n; i++) keys[i] = lower_key(x, at ? get_path(x, line, l->v[i], *at) : l->v[i], cs && jv_truthy(*cs));
        sort_by(x, line, l->v, keys, l->n, rv && jv_truthy(*rv));
        return out;
    }
    if (!strcmp(f, "reverse")) {
        if (in.t == JV_STR) {
            jlist *l = jx_iter_items(x, line, in);
            jbuf b = { 0 };
            for (size_t i = l->n; i-- > 0;) jb_put(x, &b, l->v[i].u.s.p, l->v[i].u.s.n);
            return mkstr(&b);
        }
        jlist *l = jx_iter_items(x, line, in);
        jv out = gen_of(x);
        for (size_t i = l->n; i-- > 0;) jl_push(x, out.u.l, l->v[i]);
        return out;
    }
    if (!strcmp(f, "max") || !strcmp(f, "min")) {
        check_args(&a, 2, (const char *const[]){ "case_sensitive", "attribute", NULL });
        jv *cs = arg(&a, 0, "case_sensitive"), *at = arg(&a, 1, "attribute");
        jlist *l = jx_iter_items(x, line, in);
        if (l->n == 0) return jv_undef(f[1] == 'a' ? "No aggregated item, sequence was empty." : "No aggregated item, sequence was empty.");
        size_t best = 0;
        jv bk = lower_key(x, at ? get_path(x, line, l->v[0], *at) : l->v[0], cs && jv_truthy(*cs));
        for (size_t i = 1; i < l->n; i++) {
            jv k = lower_key(x, at ? get_path(x, line, l->v[i], *at) : l->v[i], cs && jv_truthy(*cs));
            int c = jv_compare(x, line, k, bk);
            if (f[1] == 'a' ? c > 0 : c < 0) { best = i; bk = k; }
        }
        return l->v[best];
    }
    if (!strcmp(f, "sum")) {
        check_args(&a, 2, (const char *const[]){ "attribute", "start", NULL });
        jv *at = arg(&a, 0, "attribute"), *st = arg(&a, 1, "start");
        jlist *l = jx_iter_items(x, line, in);
        jv acc = st ? *st : jv_int(0);
        for (size_t i = 0; i < l->n; i++) {
            jv v = at ? get_path(x, line, l->v[i], *at) : l->v[i];
            if (!((acc.t == JV_INT || acc.t == JV_FLOAT || acc.t == JV_BOOL) && (v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL)))
                jx_fail(x, line, "sum: unsupported operand type(s) for +: '%s' and '%s'", jv_type_name(acc), jv_type_name(v));
            if (acc.t == JV_FLOAT || v.t == JV_FLOAT) {
                bool ok;
                acc = jv_float(to_float_or(acc, 0, &ok) + to_float_or(v, 0, &ok));
            } else {
                int64_t r;
                if (__builtin_add_overflow(acc.t == JV_INT ? acc.u.i : acc.u.b, v.t == JV_INT ? v.u.i : v.u.b, &r))
                    jx_fail(x, line, "integer overflow in sum");
                acc = jv_int(r);
            }
        }
        return acc;
    }
    if (!strcmp(f, "abs")) {
        if (in.t == JV_INT) {
            if (in.u.i == INT64_MIN) jx_fail(x, line, "integer overflow in abs");
            return jv_int(in.u.i < 0 ? -in.u.i : in.u.i);
        }
        if (in.t == JV_BOOL) return jv_int(in.u.b);
        if (in.t == JV_FLOAT) return jv_float(fabs(in.u.f));
        jx_fail(x, line, "bad operand type for abs(): '%s'", jv_type_name(in));
    }
    if ((!strcmp(f, "int") || !strcmp(f, "float")) && in.t == JV_UNDEF) undef_err(x, line, in); /* int(Undefined) raises */
    if (!strcmp(f, "int")) {
        check_args(&a, 2, (const char *const[]){ "default", "base", NULL });
        jv *dv = arg(&a, 0, "default"), *bs = arg(&a, 1, "base");
        jv dflt = dv ? *dv : jv_int(0);
        if (in.t == JV_INT) return in;
        if (in.t == JV_BOOL) return jv_int(in.u.b);
        if (in.t == JV_FLOAT) {
            if (!isfinite(in.u.f) || fabs(in.u.f) >= 9.2e18) return dflt;
            return jv_int((int64_t)in.u.f);
        }
        if (in.t == JV_STR) {
            jv s = strip(in, jv_none(), true, true);
            char buf[64];
            if (s.u.s.n == 0 || s.u.s.n >= sizeof buf) return dflt;
            memcpy(buf, s.u.s.p, s.u.s.n);
            buf[s.u.s.n] = 0;
            char *end;
            long long v = strtoll(buf, &end, bs ? (int)need_int(x, line, *bs, "int base") : 10);
            if (!*end) return jv_int(v);
            bool ok;
            double d = to_float_or(in, 0, &ok);
            if (ok && isfinite(d) && fabs(d) < 9.2e18) return jv_int((int64_t)d);
        }
        return dflt;
    }
    if (!strcmp(f, "float")) {
        jv *dv = arg(&a, 0, "default");
        bool ok;
        double d = to_float_or(in, 0, &ok);
        return ok ? jv_float(d) : (dv ? *dv : jv_float(0.0));
    }
    if (!strcmp(f, "round")) {
        check_args(&a, 2, (const char *const[]){ "precision", "method", NULL });
        jv *pr = arg(&a, 0, "precision"), *me = arg(&a, 1, "method");
        int64_t p = pr ? need_int(x, line, *pr, "round") : 0;
        bool ok;
        double d = to_float_or(in, 0, &ok);
        if (!ok || in.t == JV_STR) jx_fail(x, line, "round: expected a number, got %s", jv_type_name(in));
        if (p < 0 || p > 15) jx_fail(x, line, "round: precision %lld not supported", (long long)p);
        double scale = pow(10, (double)p);
        if (me && str_eq(*me, "floor")) return jv_float(floor(d * scale) / scale);
        if (me && str_eq(*me, "ceil")) return jv_float(ceil(d * scale) / scale);
        if (me && !str_eq(*me, "common")) jx_fail(x, line, "method must be common, ceil or floor");
        if (in.t == JV_INT || in.t == JV_BOOL) return jv_int(in.t == JV_INT ? in.u.i : in.u.b); /* round(int) is an int */
        char buf[64];
        snprintf(buf, sizeof buf, "%.*f", (int)p, d); /* correctly rounded, like Python's round() */
        return jv_float(strtod(buf, NULL));
    }
    /* string filters (jinja2 converts the input with str()) */
    if (!strcmp(f, "trim") || !strcmp(f, "upper") || !strcmp(f, "lower") || !strcmp(f, "capitalize") ||
        !strcmp(f, "title") || !strcmp(f, "replace") || !strcmp(f, "indent") || !strcmp(f, "wordcount") ||
        !strcmp(f, "e") || !strcmp(f, "escape") || !strcmp(f, "forceescape")) {
        jv s = jv_to_str(x, in);
        if (!strcmp(f, "trim")) {
            check_args(&a, 1, (const char *const[]){ "chars", NULL });
            jv *ch = arg(&a, 0, "chars");
            return strip(s, ch ? *ch : jv_none(), true, true);
        }
        if (!strcmp(f, "upper")) return map_case(x, s, 'u');
        if (!strcmp(f, "lower")) return map_case(x, s, 'l');
        if (!strcmp(f, "capitalize")) return map_case(x, s, 'c');
        if (!strcmp(f, "replace")) {
            if (nargs < 2) jx_fail(x, line, "replace: expected old and new strings");
            jv o = jv_to_str(x, args[0]), nw = jv_to_str(x, args[1]);
            return replace(x, s, o, nw, nargs > 2 ? need_int(x, line, args[2], "replace") : -1);
        }
        if (!strcmp(f, "indent")) { /* jinja2 appends "\n" to the value itself: str only */
            if (in.t != JV_STR) jx_fail(x, line, "indent: expected a string, got %s", jv_type_name(in));
            check_args(&a, 3, (const char *const[]){ "width", "first", "blank", NULL });
            return indent(x, line, s, &a);
        }
        if (!strcmp(f, "wordcount")) { /* runs of \w (letters, digits, '_'; non-ASCII counted as letters) */
            int64_t words = 0;
            bool in_word = false;
            for (size_t i = 0; i < s.u.s.n; i++) {
                unsigned char c = (unsigned char)s.u.s.p[i];
                bool w = c >= 0x80 || c == '_' || (c >= '0' && c <= '9') || ascii_upper((char)c) || ascii_lower((char)c);
                words += w && !in_word;
                in_word = w;
            }
            return jv_int(words);
        }
        if (f[0] == 'e' || f[0] == 'f') return in.t == JV_STR && in.safe && f[0] == 'e' ? in : jv_html_escape(x, s);
        return map_case(x, s, 'j'); /* title */
    }
    jx_fail(x, line, "no filter named '%s'", f);
}

/* ------------------------------------------------------------------ tests */

bool jinja_test(jctx *x, jnode *n, const char *t, jv v, jv *args, size_t nargs)
{
    int line = n->line;
    jv a0 = nargs > 0 ? args[0] : jv_undef("argument");
    if (!strcmp(t, "defined")) return v.t != JV_UNDEF;
    if (!strcmp(t, "undefined")) return v.t == JV_UNDEF;
    if (!strcmp(t, "none")) return v.t == JV_NONE;
    if (!strcmp(t, "boolean")) return v.t == JV_BOOL;
    if (!strcmp(t, "true")) return v.t == JV_BOOL && v.u.b;
    if (!strcmp(t, "false")) return v.t == JV_BOOL && !v.u.b;
    if (!strcmp(t, "integer")) return v.t == JV_INT;
    if (!strcmp(t, "float")) return v.t == JV_FLOAT;
    if (!strcmp(t, "number")) return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL;
    if (!strcmp(t, "string")) return v.t == JV_STR;
    if (!strcmp(t, "mapping")) return v.t == JV_DICT;
    if (!strcmp(t, "iterable")) return v.t == JV_LIST || v.t == JV_DICT || v.t == JV_STR || v.t == JV_UNDEF;
    if (!strcmp(t, "sequence")) return (v.t == JV_LIST && !v.u.l->gen) || v.t == JV_DICT || v.t == JV_STR || v.t == JV_UNDEF;
    if (!strcmp(t, "callable")) return v.t == JV_MACRO || v.t == JV_FUNC || v.t == JV_METHOD;
    if (!strcmp(t, "sameas")) {
        if (v.t != a0.t) return false;
        if (v.t == JV_NONE || v.t == JV_UNDEF) return true;
        if (v.t == JV_BOOL) return v.u.b == a0.u.b;
        if (v.t == JV_LIST) return v.u.l == a0.u.l;
        if (v.t == JV_DICT || v.t == JV_NS) return v.u.d == a0.u.d;
        return jv_equal(v, a0);
    }
    if (!strcmp(t, "equalto") || !strcmp(t, "eq") || !strcmp(t, "==")) return jv_equal(v, a0);
    if (!strcmp(t, "ne") || !strcmp(t, "!=")) return !jv_equal(v, a0);
    if (!strcmp(t, "lt") || !strcmp(t, "lessthan") || !strcmp(t, "<")) return jv_compare(x, line, v, a0) < 0;
    if (!strcmp(t, "le") || !strcmp(t, "<=")) return jv_compare(x, line, v, a0) <= 0;
    if (!strcmp(t, "gt") || !strcmp(t, "greaterthan") || !strcmp(t, ">")) return jv_compare(x, line, v, a0) > 0;
    if (!strcmp(t, "ge") || !strcmp(t, ">=")) return jv_compare(x, line, v, a0) >= 0;
    if (!strcmp(t, "in")) {
        if (a0.t == JV_STR) {
            need_str(x, line, v, "in");
            return v.u.s.n == 0 || memmem(a0.u.s.p, a0.u.s.n, v.u.s.p, v.u.s.n) != NULL;
        }
        if (a0.t == JV_DICT) return jd_get(a0.u.d, v) != NULL;
        jlist *l = jx_iter_items(x, line, a0);
        for (size_t i = 0; i < l->n; i++) if (jv_equal(l->v[i], v)) return true;
        return false;
    }
    if (!strcmp(t, "odd") || !strcmp(t, "even")) { /* value % 2 == 1 / == 0, floats too */
        if (v.t == JV_FLOAT) {
            double m = fmod(v.u.f, 2.0);
            if (m < 0) m += 2.0;
            return t[0] == 'o' ? m == 1.0 : m == 0.0;
        }
        int64_t i = need_int(x, line, v, t);
        return (i % 2 != 0) == (t[0] == 'o');
    }
    if (!strcmp(t, "divisibleby")) {
        int64_t d = need_int(x, line, a0, t);
        if (d == 0) jx_fail(x, line, "integer division or modulo by zero");
        return need_int(x, line, v, t) % d == 0;
    }
    if (!strcmp(t, "lower") || !strcmp(t, "upper")) {
        jv s = jv_to_str(x, v);
        jv m = method(x, s, t[0] == 'l' ? "islower" : "isupper");
        return jinja_call_method(x, line, m, NULL, 0, NULL, NULL, 0).u.b;
    }
    if (!strcmp(t, "escaped")) return false;
    jx_fail(x, line, "no test named '%s'", t);
}
