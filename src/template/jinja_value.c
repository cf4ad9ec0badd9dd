/* Jinja engine: the arena, the value model and Python's str/repr/json.dumps of values.
 * Internal to src/template: do not include from other modules.
 */
#include "template/jinja.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ arena */

struct jchunk { jchunk *next; size_t used, cap; max_align_t data[]; };

void *jx_alloc(jctx *x, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0) n = sizeof(max_align_t);
    jchunk *c = x->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > (64u << 10) ? n : (64u << 10);
        if (x->mem_used + cap > JINJA_MAX_MEMORY)
            jx_fail(x, 0, "template uses more than %u MiB of memory", JINJA_MAX_MEMORY >> 20);
        c = malloc(sizeof *c + cap);
        if (!c) jx_fail(x, 0, "out of memory");
        c->cap = cap; c->used = 0;
        c->next = x->chunks;
        x->chunks = c;
        x->mem_used += cap;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

void jx_free_all(jctx *x)
{
    while (x->chunks) {
        jchunk *c = x->chunks;
        x->chunks = c->next;
        free(c);
    }
    x->mem_used = 0;
}

char *jx_strdup(jctx *x, const char *s, size_t n)
{
    char *p = jx_alloc(x, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void jx_fail(jctx *x, int line, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (x->err && x->err_len) {
        if (line > 0) snprintf(x->err, x->err_len, "jinja template line %d: %s", line, msg);
        else snprintf(x->err, x->err_len, "jinja template: %s", msg);
    }
    longjmp(x->fail, 1);
}

/* ------------------------------------------------------------------ constructors */

jv jv_none(void) { return (jv){ .t = JV_NONE }; }
jv jv_bool(bool b) { return (jv){ .t = JV_BOOL, .u.b = b }; }
jv jv_int(int64_t i) { return (jv){ .t = JV_INT, .u.i = i }; }
jv jv_float(double f) { return (jv){ .t = JV_FLOAT, .u.f = f }; }
jv jv_str(const char *p, size_t n) { return (jv){ .t = JV_STR, .u.s = { p, n } }; }
jv jv_cstr(const char *s) { return jv_str(s, strlen(s)); }
jv jv_undef(const char *name) { return (jv){ .t = JV_UNDEF, .u.undef_name = name }; }

jv jv_newlist(jctx *x, bool tuple)
{
    jlist *l = jx_alloc(x, sizeof *l);
    memset(l, 0, sizeof *l);
    l->tuple = tuple;
    return (jv){ .t = JV_LIST, .u.l = l };
}

jv jv_newdict(jctx *x)
{
    jdict *d = jx_alloc(x, sizeof *d);
    memset(d, 0, sizeof *d);
    return (jv){ .t = JV_DICT, .u.d = d };
}

void jl_push(jctx *x, jlist *l, jv v)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jv *nv = jx_alloc(x, cap * sizeof *nv);
        if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv; l->cap = cap;
    }
    l->v[l->n++] = v;
}

jv *jd_get(jdict *d, jv key)
{
    for (size_t i = 0; i < d->n; i++)
        if (jv_equal(d->k[i], key)) return &d->v[i];
    return NULL;
}

jv *jd_get_str(jdict *d, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == JV_STR && d->k[i].u.s.n == n && memcmp(d->k[i].u.s.p, key, n) == 0)
            return &d->v[i];
    return NULL;
}

void jd_set(jctx *x, jdict *d, jv key, jv v)
{
    jv *slot = jd_get(d, key);
    if (slot) { *slot = v; return; }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        jv *nk = jx_alloc(x, cap * sizeof *nk), *nv = jx_alloc(x, cap * sizeof *nv);
        if (d->n) { memcpy(nk, d->k, d->n * sizeof *nk); memcpy(nv, d->v, d->n * sizeof *nv); }
        d->k = nk; d->v = nv; d->cap = cap;
    }
    d->k[d->n] = key;
    d->v[d->n++] = v;
}

jv jv_from_json(jctx *x, const json_t *j, int depth)
{
    if (depth > JINJA_MAX_DEPTH) jx_fail(x, 0, "input JSON nested deeper than %d levels", JINJA_MAX_DEPTH);
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        jv d = jv_newdict(x);
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
            jd_set(x, d.u.d, jv_str(jx_strdup(x, k, strlen(k)), strlen(k)), jv_from_json(x, v, depth + 1));
        return d;
    }
    case JSON_ARRAY: {
        jv l = jv_newlist(x, false);
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) jl_push(x, l.u.l, jv_from_json(x, v, depth + 1));
        return l;
    }
    case JSON_STRING: {
        size_t n = json_string_length(j);
        return jv_str(jx_strdup(x, json_string_value(j), n), n);
    }
    case JSON_INTEGER: return jv_int(json_integer_value(j));
    case JSON_REAL: return jv_float(json_real_value(j));
    case JSON_TRUE: return jv_bool(true);
    case JSON_FALSE: return jv_bool(false);
    default: return jv_none();
    }
}

/* ------------------------------------------------------------------ Python semantics */

bool jv_truthy(jv v)
{
    switch (v.t) {
    case JV_UNDEF: case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s.n != 0;
    case JV_LIST: return v.u.l->gen || v.u.l->n != 0;
    case JV_DICT: return v.u.d->n != 0;
    default: return true;
    }
}

static bool is_num(jv v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }
static double num(jv v) { return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : (double)v.u.b; }
static int64_t inum(jv v) { return v.t == JV_INT ? v.u.i : v.t == JV_BOOL ? (int64_t)v.u.b : 0; }

bool jv_equal(jv a, jv b)
{
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) return inum(a) == inum(b);
        return num(a) == num(b);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
    case JV_UNDEF: case JV_NONE: return true;
    case JV_STR: return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    case JV_LIST:
        if (a.u.l->tuple != b.u.l->tuple || a.u.l->n != b.u.l->n) return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!jv_equal(a.u.l->v[i], b.u.l->v[i])) return false;
        return true;
    case JV_DICT: case JV_NS:
        if (a.t == JV_NS) return a.u.d == b.u.d;
        if (a.u.d->n != b.u.d->n) return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv *o = jd_get(b.u.d, a.u.d->k[i]);
            if (!o || !jv_equal(a.u.d->v[i], *o)) return false;
        }
        return true;
    case JV_LOOP: return a.u.loop == b.u.loop;
    case JV_MACRO: return a.u.macro == b.u.macro;
    case JV_FUNC: return a.u.func == b.u.func;
    default: return false;
    }
}

const char *jv_type_name(jv v)
{
    switch (v.t) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: return v.u.l->gen ? "generator" : v.u.l->range ? "range" : v.u.l->tuple ? "tuple" : "list";
    case JV_DICT: return "dict";
    case JV_NS: return "Namespace";
    case JV_LOOP: return "LoopContext";
    case JV_MACRO: return "Macro";
    default: return "function";
    }
}

bool jv_is_seq(jv v) { return v.t == JV_LIST || v.t == JV_STR; }

jv jv_html_escape(jctx *x, jv s)
{
    if (s.safe) return s;
    jbuf b = { 0 };
    size_t run = 0;
    for (size_t i = 0; i < s.u.s.n; i++) {
        const char *e = NULL;
        switch (s.u.s.p[i]) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&#34;"; break;
        case '\'': e = "&#39;"; break;
        default: run++; continue;
        }
        jb_put(x, &b, s.u.s.p + i - run, run);
        run = 0;
        jb_puts(x, &b, e);
    }
    jb_put(x, &b, s.u.s.p + s.u.s.n - run, run);
    jv r = jv_str(b.p ? b.p : "", b.n);
    r.safe = true;
    return r;
}

int jv_compare(jctx *x, int line, jv a, jv b)
{
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) return (inum(a) > inum(b)) - (inum(a) < inum(b));
        double p = num(a), q = num(b);
        return (p > q) - (p < q);
    }
    if (a.t == JV_STR && b.t == JV_STR) { /* code point order == UTF-8 byte order */
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int c = memcmp(a.u.s.p, b.u.s.p, n);
        if (c) return c < 0 ? -1 : 1;
        return (a.u.s.n > b.u.s.n) - (a.u.s.n < b.u.s.n);
    }
    if (a.t == JV_LIST && b.t == JV_LIST && a.u.l->tuple == b.u.l->tuple) {
        for (size_t i = 0; i < a.u.l->n && i < b.u.l->n; i++) {
            if (jv_equal(a.u.l->v[i], b.u.l->v[i])) continue;
            return jv_compare(x, line, a.u.l->v[i], b.u.l->v[i]);
        }
        return (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
    }
    if (a.t == JV_UNDEF || b.t == JV_UNDEF)
        jx_fail(x, line, "'%s' is undefined", a.t == JV_UNDEF ? a.u.undef_name : b.u.undef_name);
    jx_fail(x, line, "'<' not supported between instances of '%s' and '%s'", jv_type_name(a), jv_type_name(b));
}

/* ------------------------------------------------------------------ UTF-8 */

uint32_t ju_decode(const char *p, size_t n, size_t *adv)
{
    const unsigned char *s = (const unsigned char *)p;
    uint32_t c = s[0];
    size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (k > n) k = 1;
    if (k == 1) { *adv = 1; return c; }
    c &= 0x3Fu >> (k - 1);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) { *adv = 1; return s[0]; }
        c = (c << 6) | (s[i] & 0x3F);
    }
    *adv = k;
    return c;
}

size_t ju_len(const char *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; c++) {
        size_t adv;
        ju_decode(p + i, n - i, &adv);
        i += adv;
    }
    return c;
}

size_t ju_offset(const char *p, size_t n, size_t cp)
{
    size_t i = 0;
    while (cp > 0 && i < n) {
        size_t adv;
        ju_decode(p + i, n - i, &adv);
        i += adv;
        cp--;
    }
    return i;
}

void ju_encode(jctx *x, jbuf *b, uint32_t c)
{
    char s[4];
    size_t n;
    if (c < 0x80) { s[0] = (char)c; n = 1; }
    else if (c < 0x800) { s[0] = (char)(0xC0 | (c >> 6)); s[1] = (char)(0x80 | (c & 0x3F)); n = 2; }
    else if (c < 0x10000) {
        s[0] = (char)(0xE0 | (c >> 12)); s[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        s[2] = (char)(0x80 | (c & 0x3F)); n = 3;
    } else {
        s[0] = (char)(0xF0 | (c >> 18)); s[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        s[2] = (char)(0x80 | ((c >> 6) & 0x3F)); s[3] = (char)(0x80 | (c & 0x3F)); n = 4;
    }
    jb_put(x, b, s, n);
}

bool ju_isspace(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Python's str.isprintable for repr(): false for controls, separators (but ' '), format
 * characters, surrogates and private use. */
static bool ju_printable(uint32_t c)
{
    if (c == ' ') return true;
    if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) return false;
    if (ju_isspace(c)) return false;
    if ((c >= 0x600 && c <= 0x605) || c == 0x61C || c == 0x6DD || c == 0x70F || c == 0x180E ||
        (c >= 0x200B && c <= 0x200F) || (c >= 0x202A && c <= 0x202E) ||
        (c >= 0x2060 && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB) ||
        (c >= 0xD800 && c <= 0xF8FF) || c == 0xE0001 || (c >= 0xE0020 && c <= 0xE007F) ||
        c >= 0xF0000)
        return false;
    return true;
}

/* ------------------------------------------------------------------ text */

void jb_put(jctx *x, jbuf *b, const char *p, size_t n)
{
    if (n == 0) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *np = jx_alloc(x, cap);
        if (b->n) memcpy(np, b->p, b->n);
        b->p = np; b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
}

void jb_puts(jctx *x, jbuf *b, const char *s) { jb_put(x, b, s, strlen(s)); }

void jfmt_float(char *buf, size_t len, double f)
{
    if (isnan(f)) { snprintf(buf, len, "nan"); return; }
    if (isinf(f)) { snprintf(buf, len, f < 0 ? "-inf" : "inf"); return; }
    if (f == 0) { snprintf(buf, len, signbit(f) ? "-0.0" : "0.0"); return; }
    /* shortest digits that round-trip, then Python's layout: fixed for 1e-4 <= |f| < 1e16 */
    char e[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    char *ep = strchr(e, 'e');
    int exp10 = atoi(ep + 1);
    *ep = 0;
    char dig[24];
    size_t nd = 0;
    for (char *p = e; *p; p++) if (*p >= '0' && *p <= '9') dig[nd++] = *p;
    dig[nd] = 0;
    const char *sign = f < 0 ? "-" : "";
    if (exp10 < -4 || exp10 >= 16) {
        snprintf(buf, len, "%s%c%s%s%se%c%02d", sign, dig[0], nd > 1 ? "." : "", dig + 1, "",
                 exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    } else if (exp10 < 0) {
        snprintf(buf, len, "%s0.%.*s%s", sign, -exp10 - 1, "0000", dig);
    } else if ((size_t)exp10 + 1 >= nd) {
        snprintf(buf, len, "%s%s%.*s.0", sign, dig, exp10 + 1 - (int)nd, "0000000000000000");
    } else {
        snprintf(buf, len, "%s%.*s.%s", sign, exp10 + 1, dig, dig + exp10 + 1);
    }
}

static void put_int(jctx *x, jbuf *b, int64_t i)
{
    char s[32];
    snprintf(s, sizeof s, "%lld", (long long)i);
    jb_puts(x, b, s);
}

static void repr_str(jctx *x, jbuf *b, const char *p, size_t n)
{
    bool sq = memchr(p, '\'', n) != NULL, dq = memchr(p, '"', n) != NULL;
    char q = (sq && !dq) ? '"' : '\'';
    jb_put(x, b, &q, 1);
    for (size_t i = 0; i < n;) {
        size_t adv;
        uint32_t c = ju_decode(p + i, n - i, &adv);
        char esc[16];
        if (c == (uint32_t)q || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; jb_put(x, b, esc, 2); }
        else if (c == '\n') jb_puts(x, b, "\\n");
        else if (c == '\r') jb_puts(x, b, "\\r");
        else if (c == '\t') jb_puts(x, b, "\\t");
        else if (!ju_printable(c)) {
            if (c < 0x100) snprintf(esc, sizeof esc, "\\x%02x", c);
            else if (c < 0x10000) snprintf(esc, sizeof esc, "\\u%04x", c);
            else snprintf(esc, sizeof esc, "\\U%08x", c);
            jb_puts(x, b, esc);
        } else jb_put(x, b, p + i, adv);
        i += adv;
    }
    jb_put(x, b, &q, 1);
}

static void repr_or_str(jctx *x, jbuf *b, jv v, bool repr)
{
    char s[40];
    switch (v.t) {
    case JV_UNDEF: break;
    case JV_NONE: jb_puts(x, b, "None"); break;
    case JV_BOOL: jb_puts(x, b, v.u.b ? "True" : "False"); break;
    case JV_INT: put_int(x, b, v.u.i); break;
    case JV_FLOAT: jfmt_float(s, sizeof s, v.u.f); jb_puts(x, b, s); break;
    case JV_STR:
        if (repr) repr_str(x, b, v.u.s.p, v.u.s.n);
        else jb_put(x, b, v.u.s.p, v.u.s.n);
        break;
    case JV_LIST:
        if (v.u.l->gen) jx_fail(x, 0, "cannot convert a generator to a string (add |list)");
        if (v.u.l->range) {
            char r[96];
            if (v.u.l->rng[2] == 1) snprintf(r, sizeof r, "range(%lld, %lld)", (long long)v.u.l->rng[0], (long long)v.u.l->rng[1]);
            else snprintf(r, sizeof r, "range(%lld, %lld, %lld)", (long long)v.u.l->rng[0], (long long)v.u.l->rng[1], (long long)v.u.l->rng[2]);
            jb_puts(x, b, r);
            break;
        }
        jb_puts(x, b, v.u.l->tuple ? "(" : "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) jb_puts(x, b, ", ");
            repr_or_str(x, b, v.u.l->v[i], true);
        }
        jb_puts(x, b, v.u.l->tuple ? (v.u.l->n == 1 ? ",)" : ")") : "]");
        break;
    case JV_DICT:
        jb_puts(x, b, "{");
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) jb_puts(x, b, ", ");
            repr_or_str(x, b, v.u.d->k[i], true);
            jb_puts(x, b, ": ");
            repr_or_str(x, b, v.u.d->v[i], true);
        }
        jb_puts(x, b, "}");
        break;
    case JV_NS:
        jb_puts(x, b, "<Namespace {");
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) jb_puts(x, b, ", ");
            repr_or_str(x, b, v.u.d->k[i], true);
            jb_puts(x, b, ": ");
            repr_or_str(x, b, v.u.d->v[i], true);
        }
        jb_puts(x, b, "}>");
        break;
    default:
        /* Python prints an object address here, which no test can match: refuse instead */
        jx_fail(x, 0, "cannot convert a %s to a string", jv_type_name(v));
    }
}

void jv_str_into(jctx *x, jbuf *b, jv v) { repr_or_str(x, b, v, false); }
void jv_repr_into(jctx *x, jbuf *b, jv v) { repr_or_str(x, b, v, true); }

jv jv_to_str(jctx *x, jv v)
{
    if (v.t == JV_STR) return v;
    jbuf b = { 0 };
    jv_str_into(x, &b, v);
    return jv_str(b.p ? b.p : "", b.n);
}

static void json_str(jctx *x, jbuf *b, const char *p, size_t n)
{
    jb_puts(x, b, "\"");
    size_t run = 0; /* bytes copied verbatim in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        const char *esc = NULL;
        char u[8];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20) { snprintf(u, sizeof u, "\\u%04x", c); esc = u; }
        if (!esc) { run++; continue; }
        jb_put(x, b, p + i - run, run);
        run = 0;
        jb_puts(x, b, esc);
    }
    jb_put(x, b, p + n - run, run);
    jb_puts(x, b, "\"");
}

static void newline_indent(jctx *x, jbuf *b, int indent, int level)
{
    jb_puts(x, b, "\n");
    for (int i = 0; i < indent * level; i++) jb_puts(x, b, " ");
}

void jv_json_into(jctx *x, int line, jbuf *b, jv v, int indent, int level)
{
    if (level > JINJA_MAX_DEPTH) jx_fail(x, line, "tojson: value nested too deeply");
    char s[40];
    switch (v.t) {
    case JV_NONE: jb_puts(x, b, "null"); break;
    case JV_BOOL: jb_puts(x, b, v.u.b ? "true" : "false"); break;
    case JV_INT: put_int(x, b, v.u.i); break;
    case JV_FLOAT:
        if (isnan(v.u.f)) jb_puts(x, b, "NaN");
        else if (isinf(v.u.f)) jb_puts(x, b, v.u.f < 0 ? "-Infinity" : "Infinity");
        else { jfmt_float(s, sizeof s, v.u.f); jb_puts(x, b, s); }
        break;
    case JV_STR: json_str(x, b, v.u.s.p, v.u.s.n); break;
    case JV_LIST:
        if (v.u.l->gen || v.u.l->range)
            jx_fail(x, line, "Object of type %s is not JSON serializable", v.u.l->gen ? "generator" : "range");
        if (v.u.l->n == 0) { jb_puts(x, b, "[]"); break; }
        jb_puts(x, b, "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) jb_puts(x, b, indent >= 0 ? "," : ", ");
            if (indent >= 0) newline_indent(x, b, indent, level + 1);
            jv_json_into(x, line, b, v.u.l->v[i], indent, level + 1);
        }
        if (indent >= 0) newline_indent(x, b, indent, level);
        jb_puts(x, b, "]");
        break;
    case JV_DICT:
        if (v.u.d->n == 0) { jb_puts(x, b, "{}"); break; }
        jb_puts(x, b, "{");
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) jb_puts(x, b, indent >= 0 ? "," : ", ");
            if (indent >= 0) newline_indent(x, b, indent, level + 1);
            jv k = v.u.d->k[i];
            if (k.t == JV_STR) json_str(x, b, k.u.s.p, k.u.s.n);
            else if (k.t == JV_INT || k.t == JV_FLOAT || k.t == JV_BOOL || k.t == JV_NONE) {
                jbuf kb = { 0 };
                jv_json_into(x, line, &kb, k, -1, level);
                json_str(x, b, kb.p, kb.n);
            } else jx_fail(x, line, "tojson: keys must be str, int, float, bool or None, not %s", jv_type_name(k));
            jb_puts(x, b, ": ");
            jv_json_into(x, line, b, v.u.d->v[i], indent, level + 1);
        }
        if (indent >= 0) newline_indent(x, b, indent, level);
        jb_puts(x, b, "}");
        break;
    default:
        jx_fail(x, line, "Object of type %s is not JSON serializable", jv_type_name(v));
    }
}
