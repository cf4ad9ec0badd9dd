/* JSON Schema -> GBNF. Every schema node becomes one rule (r1, r2, ...); shared
 * pieces (ws, char, string, number, integer, value) are emitted once. Every
 * keyword is either honoured, an annotation, or an error naming it with its JSON
 * pointer. */
#include "qfit/schema.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema_int.h"

/* ------------------------------------------------------------------ sbuf */

void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) { b->oom = 1; return; }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) { b->oom = 1; return; }
    sb_put(b, tmp, (size_t)n);
}

void sb_literal(sbuf *b, const char *s, size_t n)
{
    sb_str(b, "\"");
    for (size_t k = 0; k < n; k++) {
        const unsigned char c = (unsigned char)s[k];
        if (c == '"' || c == '\\') sb_printf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7F) sb_printf(b, "\\x%02X", c);
        else sb_put(b, (const char *)&c, 1);
    }
    sb_str(b, "\"");
}

/* ------------------------------------------------------------- converter */

#define ANY_JSON_RULES                                                                                   \
    "value ::= object | array | string | number | \"true\" | \"false\" | \"null\"\n"                     \
    "object ::= \"{\" ws ( string \":\" ws value ( \",\" ws string \":\" ws value )* )? ws \"}\"\n"      \
    "array ::= \"[\" ws ( value ( \",\" ws value )* )? ws \"]\"\n"

#define BASE_RULES                                                                                       \
    "ws ::= \" \"?\n"                                                                                    \
    "char ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" [\"\\\\/bfnrt]\n"                                      \
    "string ::= \"\\\"\" char* \"\\\"\"\n"                                                               \
    "number ::= \"-\"? ( \"0\" | [1-9] [0-9]{0,15} ) ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?\n" \
    "integer ::= \"-\"? ( \"0\" | [1-9] [0-9]{0,15} )\n"

const char *qfit_schema_any_json_gbnf(void)
{
    return "root ::= value\n" ANY_JSON_RULES BASE_RULES;
}

typedef struct { char s[24]; } rname;

typedef struct {
    const json_t *node;
    unsigned id;
    int level;        /* conv.level when its rule was started */
    int done;
} refent;

typedef struct {
    json_t *root;
    sbuf rules;
    unsigned next_id;
    int any_used;
    int level;        /* object/array nesting: a $ref back at the same level consumed nothing */
    int depth;
    refent *refs;
    size_t n_refs, cap_refs;
    char ptr[1024];
    size_t ptr_len;
    char *err;
    size_t err_len;
    int failed;
} conv;

static int cfail(conv *c, const char *fmt, ...)
{
    if (c->failed) return -1;
    c->failed = 1;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->err_len, "%s at %s", msg, c->ptr_len ? c->ptr : "/ (the root)");
    return -1;
}

/* JSON pointer of the node being converted: push a segment, pop back to a length */
static size_t ptr_push(conv *c, const char *seg)
{
    const size_t old = c->ptr_len;
    char esc[256];
    size_t n = 0;
    for (const char *p = seg; *p && n + 3 < sizeof esc; p++) {
        if (*p == '~') { esc[n++] = '~'; esc[n++] = '0'; }
        else if (*p == '/') { esc[n++] = '~'; esc[n++] = '1'; }
        else esc[n++] = *p;
    }
    esc[n] = 0;
    const int w = snprintf(c->ptr + c->ptr_len, sizeof c->ptr - c->ptr_len, "/%s", esc);
    if (w > 0) c->ptr_len += (size_t)w < sizeof c->ptr - c->ptr_len ? (size_t)w : sizeof c->ptr - c->ptr_len - 1;
    return old;
}

static size_t ptr_push_index(conv *c, size_t i)
{
    char seg[32];
    snprintf(seg, sizeof seg, "%zu", i);
    return ptr_push(c, seg);
}

static void ptr_pop(conv *c, size_t len)
{
    c->ptr_len = len;
    c->ptr[len] = 0;
}

static rname new_name(conv *c)
{
    rname r;
    snprintf(r.s, sizeof r.s, "r%u", ++c->next_id);
    return r;
}

static rname fixed(const char *s)
{
    rname r;
    snprintf(r.s, sizeof r.s, "%s", s);
    return r;
}

static int add_rule(conv *c, const rname *name, const sbuf *body)
{
    if (body->oom) return cfail(c, "out of memory");
    sb_printf(&c->rules, "%s ::= ", name->s);
    sb_put(&c->rules, body->s ? body->s : "\"\"", body->s ? body->n : 2);
    sb_str(&c->rules, "\n");
    if (c->rules.oom) return cfail(c, "out of memory");
    if (c->rules.n > QFIT_SCHEMA_MAX_GRAMMAR)
        return cfail(c, "the grammar grows beyond %u bytes", QFIT_SCHEMA_MAX_GRAMMAR);
    return 0;
}

/* the JSON text of a value as a GBNF literal */
static int literal_value(conv *c, sbuf *b, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) return cfail(c, "out of memory");
    sb_literal(b, s, strlen(s));
    free(s);
    return 0;
}

static const char *const annotations[] = { "$schema", "$id", "$comment", "title", "description", "default", "examples",
                                            "deprecated", "readOnly", "writeOnly", "$defs", "definitions", NULL };

static int is_annotation(const char *k)
{
    for (int i = 0; annotations[i]; i++)
        if (!strcmp(k, annotations[i])) return 1;
    return 0;
}

static int visit(conv *c, const json_t *s, rname *out);

/* ------------------------------------------------------------- integers */

static int num_digits(uint64_t v)
{
    int d = 1;
    while (v >= 10) { v /= 10; d++; }
    return d;
}

/* decimal strings of [x, y], both with n digits: alternatives into b */
static void same_len_range(sbuf *b, const char *x, const char *y, size_t n, int *first)
{
    if (n == 0) return;
    size_t p = 0;
    while (p < n && x[p] == y[p]) p++;
    char head[24];
    memcpy(head, x, p);
    head[p] = 0;
    if (p == n) {   /* x == y */
        sb_str(b, *first ? "" : " | ");
        *first = 0;
        sb_printf(b, "\"%s\"", head);
        return;
    }
    /* x = head a X', y = head b Y' with a < b */
    const size_t rest = n - p - 1;
    const int x_low = strspn(x + p + 1, "0") == rest, y_high = strspn(y + p + 1, "9") == rest;
    const int a = x[p] - '0', bdig = y[p] - '0';
    int lo = x_low ? a : a + 1, hi = y_high ? bdig : bdig - 1;
    if (!x_low) {   /* head a [X', 99..9] */
        char ny[24];
        memset(ny, '9', rest);
        ny[rest] = 0;
        /* recurse on the tail with the prefix written as a literal */
        sbuf t = { 0 };
        int f = 1;
        same_len_range(&t, x + p + 1, ny, rest, &f);
        sb_str(b, *first ? "" : " | ");
        *first = 0;
        sb_printf(b, "\"%s%c\" (", head, x[p]);
        sb_put(b, t.s ? t.s : "\"\"", t.s ? t.n : 2);
        sb_str(b, ")");
        if (t.oom) b->oom = 1;
        free(t.s);
    }
    if (lo <= hi) {
        sb_str(b, *first ? "" : " | ");
        *first = 0;
        sb_printf(b, "\"%s\" [%d-%d]", head, lo, hi);
        if (rest) sb_printf(b, " [0-9]{%zu}", rest);
    }
    if (!y_high) {   /* head b [00..0, Y'] */
        char nx[24];
        memset(nx, '0', rest);
        nx[rest] = 0;
        sbuf t = { 0 };
        int f = 1;
        same_len_range(&t, nx, y + p + 1, rest, &f);
        sb_str(b, *first ? "" : " | ");
        *first = 0;
        sb_printf(b, "\"%s%c\" (", head, y[p]);
        sb_put(b, t.s ? t.s : "\"\"", t.s ? t.n : 2);
        sb_str(b, ")");
        if (t.oom) b->oom = 1;
        free(t.s);
    }
}

#define MAX_INT_DIGITS 16

/* non-negative integers in [lo, hi] without leading zeros; hi = UINT64_MAX: no bound
 * (up to MAX_INT_DIGITS digits) */
static void uint_range(sbuf *b, uint64_t lo, uint64_t hi, int *first)
{
    const int dlo = num_digits(lo), dhi = hi == UINT64_MAX ? MAX_INT_DIGITS : num_digits(hi);
    for (int d = dlo; d <= dhi; d++) {
        uint64_t a = 1, z;
        for (int k = 1; k < d; k++) a *= 10;
        z = a * 10 - 1;
        if (d == 1) a = 0;
        if (a < lo) a = lo;
        if (hi != UINT64_MAX && z > hi) z = hi;
        if (a > z) continue;
        char xs[24], ys[24];
        snprintf(xs, sizeof xs, "%llu", (unsigned long long)a);
        snprintf(ys, sizeof ys, "%llu", (unsigned long long)z);
        same_len_range(b, xs, ys, (size_t)d, first);
    }
}

/* the bound of a keyword as an integer: floor/ceil of a real; 0 absent, -1 error */
static int int_bound(conv *c, const json_t *s, const char *kw, int upper, int exclusive, int64_t *out)
{
    const json_t *v = json_object_get(s, kw);
    if (!v) return 0;
    double d;
    if (json_is_integer(v)) {
        const int64_t i = json_integer_value(v);
        if (exclusive && ((upper && i == INT64_MIN) || (!upper && i == INT64_MAX))) return cfail(c, "'%s' out of range", kw);
        *out = exclusive ? (upper ? i - 1 : i + 1) : i;
        return 1;
    }
    if (!json_is_real(v)) return cfail(c, "'%s' must be a number", kw);
    d = json_real_value(v);
    double r = upper ? floor(d) : ceil(d);
    if (exclusive && r == d) r += upper ? -1 : 1;
    if (!(r > -9.2e18 && r < 9.2e18)) return cfail(c, "'%s' %g is out of the integer range", kw, d);
    *out = (int64_t)r;
    return 1;
}

static int integer_rule(conv *c, const json_t *s, sbuf *b)
{
    int64_t lo = INT64_MIN, hi = INT64_MAX, v;
    int has_lo = 0, has_hi = 0, r;
    if ((r = int_bound(c, s, "minimum", 0, 0, &v)) < 0) return -1;
    if (r) { has_lo = 1; lo = v; }
    if ((r = int_bound(c, s, "exclusiveMinimum", 0, 1, &v)) < 0) return -1;
    if (r && (!has_lo || v > lo)) { has_lo = 1; lo = v; }
    if ((r = int_bound(c, s, "maximum", 1, 0, &v)) < 0) return -1;
    if (r) { has_hi = 1; hi = v; }
    if ((r = int_bound(c, s, "exclusiveMaximum", 1, 1, &v)) < 0) return -1;
    if (r && (!has_hi || v < hi)) { has_hi = 1; hi = v; }
    if (!has_lo && !has_hi) { sb_str(b, "integer"); return 0; }
    if (has_lo && has_hi && lo > hi) return cfail(c, "no integer satisfies minimum %lld and maximum %lld", (long long)lo, (long long)hi);
    const uint64_t cap = 9999999999999999ull;   /* MAX_INT_DIGITS nines */
    if ((has_lo && lo > (int64_t)cap) || (has_hi && hi < -(int64_t)cap))
        return cfail(c, "integer bounds beyond %d digits", MAX_INT_DIGITS);
    int first = 1;
    sb_str(b, "(");
    if (!has_lo || lo < 0) {   /* negative part: "-" then magnitudes [max(1, -hi), -lo] */
        const uint64_t mlo = has_hi && hi < 0 ? (uint64_t)(-(hi + 1)) + 1 : 1;
        const uint64_t mhi = has_lo ? (uint64_t)(-(lo + 1)) + 1 : UINT64_MAX;
        sbuf t = { 0 };
        int f = 1;
        uint_range(&t, mlo, mhi > cap && mhi != UINT64_MAX ? cap : mhi, &f);
        if (!f) {
            sb_str(b, "\"-\" (");
            sb_put(b, t.s, t.n);
            sb_str(b, ")");
            first = 0;
        }
        if (t.oom) b->oom = 1;
        free(t.s);
    }
    if (!has_hi || hi >= 0) {
        const uint64_t plo = has_lo && lo > 0 ? (uint64_t)lo : 0;
        const uint64_t phi = has_hi ? ((uint64_t)hi > cap ? cap : (uint64_t)hi) : UINT64_MAX;
        if (!first) sb_str(b, " | ");
        int f = 1;
        uint_range(b, plo, phi, &f);
    }
    sb_str(b, ")");
    return 0;
}

/* ---------------------------------------------------------------- strings */

static int string_rule(conv *c, const json_t *s, sbuf *b)
{
    const json_t *fmt = json_object_get(s, "format"), *pat = json_object_get(s, "pattern");
    const json_t *jmin = json_object_get(s, "minLength"), *jmax = json_object_get(s, "maxLength");
    if ((jmin && !json_is_integer(jmin)) || (jmax && !json_is_integer(jmax)))
        return cfail(c, "'%s' must be an integer", jmin && !json_is_integer(jmin) ? "minLength" : "maxLength");
    const int64_t mn = jmin ? json_integer_value(jmin) : 0, mx = jmax ? json_integer_value(jmax) : -1;
    if (mn < 0 || mn > 10000 || (jmax && (mx < 0 || mx > 10000)))
        return cfail(c, "'%s' must be between 0 and 10000", mn < 0 || mn > 10000 ? "minLength" : "maxLength");
    if (jmax && mx < mn) return cfail(c, "maxLength %lld is below minLength %lld", (long long)mx, (long long)mn);
    const int n_special = (fmt != NULL) + (pat != NULL) + (jmin || jmax);
    if (n_special > 1)
        return cfail(c, "'%s' together with '%s' is not supported", fmt ? "format" : "pattern", jmin ? "minLength" : jmax ? "maxLength" : "pattern");
    if (fmt) {
        const char *f = json_string_value(fmt);
        static const char *date = "[0-9]{4} \"-\" ( \"0\" [1-9] | \"1\" [0-2] ) \"-\" ( \"0\" [1-9] | [12] [0-9] | \"3\" [01] )";
        static const char *time = "( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9] ( \".\" [0-9]{1,6} )? "
                                  "( \"Z\" | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )";
        if (!f) return cfail(c, "'format' must be a string");
        sb_str(b, "\"\\\"\" ");
        if (!strcmp(f, "date")) sb_str(b, date);
        else if (!strcmp(f, "time")) sb_str(b, time);
        else if (!strcmp(f, "date-time")) sb_printf(b, "%s \"T\" %s", date, time);
        else if (!strcmp(f, "uuid"))
            sb_str(b, "[0-9a-fA-F]{8} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{12}");
        else return cfail(c, "unsupported format '%s'", f);
        sb_str(b, " \"\\\"\"");
        return 0;
    }
    if (pat) {
        if (!json_is_string(pat)) return cfail(c, "'pattern' must be a string");
        char perr[256];
        sb_str(b, "\"\\\"\" ");
        if (schema_pattern_gbnf(json_string_value(pat), b, "char", perr, sizeof perr)) return cfail(c, "%s", perr);
        sb_str(b, " \"\\\"\"");
        return 0;
    }
    if (!jmin && !jmax) { sb_str(b, "string"); return 0; }
    if (jmax) sb_printf(b, "\"\\\"\" char{%lld,%lld} \"\\\"\"", (long long)mn, (long long)mx);
    else sb_printf(b, "\"\\\"\" char{%lld,} \"\\\"\"", (long long)mn);
    return 0;
}

/* ---------------------------------------------------------------- arrays */

static int child(conv *c, const json_t *s, const char *seg, size_t idx, int use_idx, rname *out)
{
    const size_t old = use_idx ? ptr_push_index(c, idx) : ptr_push(c, seg);
    const int rc = visit(c, s, out);
    if (!rc) ptr_pop(c, old);
    return rc;
}

static int array_rule(conv *c, const json_t *s, sbuf *b)
{
    const json_t *items = json_object_get(s, "items"), *prefix = json_object_get(s, "prefixItems");
    const json_t *jmin = json_object_get(s, "minItems"), *jmax = json_object_get(s, "maxItems");
    if ((jmin && !json_is_integer(jmin)) || (jmax && !json_is_integer(jmax)))
        return cfail(c, "'%s' must be an integer", jmin && !json_is_integer(jmin) ? "minItems" : "maxItems");
    int64_t mn = jmin ? json_integer_value(jmin) : 0, mx = jmax ? json_integer_value(jmax) : -1;
    if (mn < 0 || mn > 1000 || (jmax && (mx < 0 || mx > 1000)))
        return cfail(c, "'%s' must be between 0 and 1000", mn < 0 || mn > 1000 ? "minItems" : "maxItems");
    if (jmax && mx < mn) return cfail(c, "maxItems %lld is below minItems %lld", (long long)mx, (long long)mn);
    size_t old = 0;
    const char *pkw = "prefixItems";
    if (json_is_array(items)) {   /* the older tuple form */
        if (prefix) return cfail(c, "'items' as an array together with 'prefixItems'");
        prefix = items;
        pkw = "items";
        items = NULL;
    }
    if (prefix && !json_is_array(prefix)) return cfail(c, "'prefixItems' must be an array");
    const size_t np = prefix ? json_array_size(prefix) : 0;
    if (jmax && (int64_t)np > mx) return cfail(c, "%zu prefixItems but maxItems %lld", np, (long long)mx);
    c->level++;
    sb_str(b, "\"[\" ws");
    for (size_t i = 0; i < np; i++) {
        rname r;
        old = ptr_push(c, pkw);
        if (child(c, json_array_get(prefix, i), NULL, i, 1, &r)) return -1;
        ptr_pop(c, old);
        sb_printf(b, "%s %s", i ? " \",\" ws" : "", r.s);
    }
    /* more items after the prefix: items (a schema; false: none; absent: none are generated) */
    int64_t more_min = mn > (int64_t)np ? mn - (int64_t)np : 0, more_max = jmax ? mx - (int64_t)np : -1;
    if (items && json_is_false(items)) {
        if (more_min > 0) return cfail(c, "minItems %lld needs more items than 'items': false allows", (long long)mn);
    } else if (items || !prefix) {
        rname r;
        if (items) {
            if (child(c, items, "items", 0, 0, &r)) return -1;
        } else r = fixed("value"), c->any_used = 1;
        if (more_max != 0) {
            if (np > 0) {   /* each further item after a comma */
                sb_printf(b, " ( \",\" ws %s )", r.s);
                if (more_max < 0) sb_printf(b, "{%lld,}", (long long)more_min);
                else sb_printf(b, "{%lld,%lld}", (long long)more_min, (long long)more_max);
            } else {
                /* first item, then the others after commas */
                const char *opt = more_min == 0 ? "?" : "";
                const int64_t rmin = more_min > 0 ? more_min - 1 : 0, rmax = more_max > 0 ? more_max - 1 : -1;
                sb_printf(b, " ( %s ( \",\" ws %s )", r.s, r.s);
                if (rmax < 0) sb_printf(b, "{%lld,}", (long long)rmin);
                else sb_printf(b, "{%lld,%lld}", (long long)rmin, (long long)rmax);
                sb_printf(b, " )%s", opt);
            }
        }
    } else if (more_min > 0) return cfail(c, "minItems %lld is more than the %zu prefixItems", (long long)mn, np);
    sb_str(b, " ws \"]\"");
    c->level--;
    return 0;
}

/* --------------------------------------------------------------- objects */

#define MAX_KEY_CHARS 256

typedef struct { uint32_t cp[MAX_KEY_CHARS]; size_t n; } ckey;

static void put_cp(sbuf *b, uint32_t cp)
{
    if (cp < 0x100) sb_printf(b, "\\x%02X", (unsigned)cp);
    else if (cp < 0x10000) sb_printf(b, "\\u%04X", (unsigned)cp);
    else sb_printf(b, "\\U%08X", (unsigned)cp);
}

/* A rule for the rest of an extra property name (escape-free characters) after
 * the prefix keys[idx[0]][0..d) shared by idx[0..n): every name except the
 * declared keys (a trie of them, one rule per node). */
static int other_key_node(conv *c, const ckey *keys, const size_t *idx, size_t n, size_t d, rname *out)
{
    int terminal = 0;
    size_t *sub = malloc((n + 1) * sizeof *sub);
    if (!sub) return cfail(c, "out of memory");
    sbuf body = { 0 }, cls = { 0 };
    sb_str(&cls, "[^\"\\\\\\x00-\\x1F");
    int rc = 0;
    for (size_t k = 0; k < n && !rc; k++) {
        const ckey *key = &keys[idx[k]];
        if (key->n == d) { terminal = 1; continue; }
        const uint32_t cp = key->cp[d];
        if (cp == '"' || cp == '\\' || cp < 0x20) continue;   /* never in an escape-free name */
        int seen = 0;   /* one child per distinct character */
        for (size_t q = 0; q < k && !seen; q++) seen = keys[idx[q]].n > d && keys[idx[q]].cp[d] == cp;
        if (seen) continue;
        size_t ns = 0;
        for (size_t q = k; q < n; q++)
            if (keys[idx[q]].n > d && keys[idx[q]].cp[d] == cp) sub[ns++] = idx[q];
        rname child_rule;
        if ((rc = other_key_node(c, keys, sub, ns, d + 1, &child_rule))) break;
        put_cp(&cls, cp);
        sb_str(&body, body.n ? " | \"" : "\"");
        put_cp(&body, cp);
        sb_printf(&body, "\" %s", child_rule.s);
    }
    free(sub);
    if (!rc) {
        sb_str(&cls, "]");
        sb_printf(&body, "%s%s char*", body.n ? " | " : "", cls.s ? cls.s : "");
        if (!terminal) sb_str(&body, " | \"\"");
        *out = new_name(c);
        rc = add_rule(c, out, &body);
    }
    free(body.s);
    free(cls.s);
    return rc;
}

/* the quoted name of an extra property: any escape-free name but the declared ones */
static int other_key_rule(conv *c, const json_t *props, rname *out)
{
    const size_t n = json_object_size(props);
    ckey *keys = calloc(n + 1, sizeof *keys);
    size_t *idx = calloc(n + 1, sizeof *idx);
    if (!keys || !idx) { free(keys); free(idx); return cfail(c, "out of memory"); }
    const char *key;
    json_t *v;
    size_t k = 0;
    int rc = 0;
    json_object_foreach((json_t *)props, key, v) {
        const unsigned char *p = (const unsigned char *)key;
        while (*p && !rc) {   /* jansson keys are valid UTF-8 */
            const int len = *p < 0x80 ? 1 : *p < 0xE0 ? 2 : *p < 0xF0 ? 3 : 4;
            uint32_t cp = len == 1 ? *p : *p & (0x3Fu >> (len - 1));
            for (int q = 1; q < len; q++) cp = cp << 6 | (p[q] & 0x3F);
            if (keys[k].n == MAX_KEY_CHARS) rc = cfail(c, "property name longer than %d characters with additionalProperties", MAX_KEY_CHARS);
            else keys[k].cp[keys[k].n++] = cp;
            p += len;
        }
        idx[k] = k;
        k++;
    }
    rname rest;
    if (!rc) rc = other_key_node(c, keys, idx, n, 0, &rest);
    if (!rc) {
        sbuf body = { 0 };
        sb_printf(&body, "\"\\\"\" %s \"\\\"\"", rest.s);
        *out = new_name(c);
        rc = add_rule(c, out, &body);
        free(body.s);
    }
    free(keys);
    free(idx);
    return rc;
}

static int object_rule(conv *c, const json_t *s, sbuf *b)
{
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    const json_t *add = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props)) return cfail(c, "'properties' must be an object");
    if (req && !json_is_array(req)) return cfail(c, "'required' must be an array");
    size_t i;
    json_t *v;
    json_array_foreach(req, i, v) {
        if (!json_is_string(v)) return cfail(c, "'required' must hold strings");
        if (!json_object_get(props, json_string_value(v)))
            return cfail(c, "required property '%s' is not in 'properties' (it cannot be generated)", json_string_value(v));
    }
    int extra = 0;
    rname extra_val, extra_key = fixed("string");
    if (add && !json_is_boolean(add) && !json_is_object(add)) return cfail(c, "'additionalProperties' must be a boolean or a schema");
    if (add && !json_is_false(add)) {
        extra = 1;
        c->level++;
        if (json_is_true(add)) { extra_val = fixed("value"); c->any_used = 1; }
        else if (child(c, add, "additionalProperties", 0, 0, &extra_val)) return -1;
        c->level--;
        /* an extra name must differ from the declared ones (their schemas rule them) */
        if (props && json_object_size(props) > 0 && other_key_rule(c, props, &extra_key)) return -1;
    }
    /* properties in order: rest_k = what may follow once something was written */
    const size_t n = props ? json_object_size(props) : 0;
    rname *kv = calloc(n + 1, sizeof *kv);
    int *required = calloc(n + 1, sizeof *required);
    if (!kv || !required) { free(kv); free(required); return cfail(c, "out of memory"); }
    const char *key;
    size_t k = 0;
    c->level++;
    const size_t oldp = ptr_push(c, "properties");
    json_object_foreach((json_t *)props, key, v) {
        rname r;
        if (child(c, v, key, 0, 0, &r)) { free(kv); free(required); return -1; }
        json_array_foreach(req, i, v) required[k] |= !strcmp(json_string_value(v), key);
        sbuf body = { 0 };
        json_t *ks = json_string(key);
        literal_value(c, &body, ks);
        json_decref(ks);
        sb_printf(&body, " ws \":\" ws %s", r.s);
        kv[k] = new_name(c);
        if (add_rule(c, &kv[k], &body)) { free(body.s); free(kv); free(required); return -1; }
        free(body.s);
        k++;
    }
    ptr_pop(c, oldp);
    c->level--;
    /* first_k: the first written member is property j >= k; rest_k: after a comma */
    rname next_first = fixed(""), next_rest = fixed("");
    int rc = 0;
    for (size_t j = n + 1; j-- > 0 && !rc;) {
        rname first = new_name(c), rest = new_name(c);
        sbuf fb = { 0 }, rb = { 0 };
        if (j == n) {
            if (extra) {   /* extra properties come after the declared ones */
                sb_printf(&fb, "( %s ws \":\" ws %s %s )?", extra_key.s, extra_val.s, rest.s);
                sb_printf(&rb, "( \",\" ws %s ws \":\" ws %s )*", extra_key.s, extra_val.s);
            } else {
                sb_str(&fb, "\"\"");
                sb_str(&rb, "\"\"");
            }
        } else {
            sb_printf(&fb, "%s %s", kv[j].s, next_rest.s);
            if (!required[j]) sb_printf(&fb, " | %s", next_first.s);
            sb_printf(&rb, "\",\" ws %s %s", kv[j].s, next_rest.s);
            if (!required[j]) sb_printf(&rb, " | %s", next_rest.s);
        }
        rc = add_rule(c, &first, &fb) || add_rule(c, &rest, &rb);
        free(fb.s);
        free(rb.s);
        next_first = first;
        next_rest = rest;
    }
    free(kv);
    free(required);
    if (rc) return -1;
    sb_printf(b, "\"{\" ws %s ws \"}\"", next_first.s);
    return 0;
}

/* ---------------------------------------------------------------- $ref */

static const json_t *resolve(conv *c, const char *ref)
{
    if (ref[0] != '#') return cfail(c, "$ref '%s' is not local to this schema (only '#...' is supported)", ref), NULL;
    const json_t *cur = c->root;
    const char *p = ref + 1;
    if (*p && *p != '/') return cfail(c, "$ref '%s': anchors are not supported (use a JSON pointer)", ref), NULL;
    while (*p == '/') {
        p++;
        char seg[256];
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof seg) {
            if (p[0] == '~' && p[1] == '0') { seg[n++] = '~'; p += 2; }
            else if (p[0] == '~' && p[1] == '1') { seg[n++] = '/'; p += 2; }
            else seg[n++] = *p++;
        }
        seg[n] = 0;
        if (json_is_object(cur)) cur = json_object_get(cur, seg);
        else if (json_is_array(cur)) {
            char *end;
            const unsigned long i = strtoul(seg, &end, 10);
            cur = *end || !n ? NULL : json_array_get(cur, i);
        } else cur = NULL;
        if (!cur) return cfail(c, "$ref '%s' does not resolve", ref), NULL;
    }
    return cur;
}

static refent *ref_find(conv *c, const json_t *node)
{
    for (size_t i = 0; i < c->n_refs; i++)
        if (c->refs[i].node == node) return &c->refs[i];
    return NULL;
}

/* ---------------------------------------------------------------- visit */

static int type_rule(conv *c, const json_t *s, const char *t, sbuf *b)
{
    if (!strcmp(t, "string")) return string_rule(c, s, b);
    if (!strcmp(t, "integer")) return integer_rule(c, s, b);
    if (!strcmp(t, "number")) {
        static const char *bounds[] = { "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf" };
        for (int i = 0; i < 5; i++)
            if (json_object_get(s, bounds[i])) return cfail(c, "'%s' for type number is not supported (use type integer)", bounds[i]);
        sb_str(b, "number");
        return 0;
    }
    if (!strcmp(t, "boolean")) { sb_str(b, "( \"true\" | \"false\" )"); return 0; }
    if (!strcmp(t, "null")) { sb_str(b, "\"null\""); return 0; }
    if (!strcmp(t, "array")) return array_rule(c, s, b);
    if (!strcmp(t, "object")) return object_rule(c, s, b);
    return cfail(c, "unknown type '%s'", t);
}

/* keywords this converter knows (anything else is an error) */
static const char *const known[] = { "type", "properties", "required", "additionalProperties", "items", "prefixItems",
                                      "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "minItems", "maxItems",
                                      "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
                                      "exclusiveMaximum", "pattern", "format", NULL };

static int is_known(const char *k)
{
    for (int i = 0; known[i]; i++)
        if (!strcmp(k, known[i])) return 1;
    return is_annotation(k);
}

/* the types a schema without "type" is about, from its keywords */
static const char *implied_type(const json_t *s)
{
    if (json_object_get(s, "properties") || json_object_get(s, "additionalProperties") || json_object_get(s, "required"))
        return "object";
    if (json_object_get(s, "items") || json_object_get(s, "prefixItems") || json_object_get(s, "minItems") ||
        json_object_get(s, "maxItems"))
        return "array";
    if (json_object_get(s, "minLength") || json_object_get(s, "maxLength") || json_object_get(s, "pattern") ||
        json_object_get(s, "format"))
        return "string";
    if (json_object_get(s, "minimum") || json_object_get(s, "maximum") || json_object_get(s, "exclusiveMinimum") ||
        json_object_get(s, "exclusiveMaximum"))
        return "integer-or-number";
    return NULL;
}

static int merge_allof(conv *c, const json_t *s, json_t *into, const json_t **chain, int depth);

static int visit_body(conv *c, const json_t *s, sbuf *b)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)s, key, v) {
        if (!is_known(key)) return cfail(c, "unsupported keyword '%s'", key);
    }
    /* combinators: alone (annotations aside) */
    const char *comb = json_object_get(s, "anyOf") ? "anyOf" : json_object_get(s, "oneOf") ? "oneOf" : NULL;
    if (comb) {
        json_object_foreach((json_t *)s, key, v) {
            if (strcmp(key, comb) && !is_annotation(key))
                return cfail(c, "'%s' together with '%s' is not supported (move it into the alternatives)", key, comb);
        }
        const json_t *alts = json_object_get(s, comb);
        if (!json_is_array(alts) || json_array_size(alts) == 0) return cfail(c, "'%s' must be a non-empty array", comb);
        const size_t old = ptr_push(c, comb);
        size_t i;
        json_array_foreach(alts, i, v) {
            rname r;
            if (child(c, v, NULL, i, 1, &r)) return -1;
            sb_printf(b, "%s%s", i ? " | " : "", r.s);
        }
        ptr_pop(c, old);
        return 0;
    }
    if (json_object_get(s, "allOf")) {
        json_t *merged = json_object();
        if (!merged) return cfail(c, "out of memory");
        const json_t *chain[QFIT_SCHEMA_MAX_DEPTH + 1];
        int rc = merge_allof(c, s, merged, chain, 0);
        if (!rc) {
            rname r;
            rc = visit(c, merged, &r);
            if (!rc) sb_str(b, r.s);
        }
        json_decref(merged);
        return rc;
    }
    const json_t *ref = json_object_get(s, "$ref");
    if (ref) {
        json_object_foreach((json_t *)s, key, v) {
            if (strcmp(key, "$ref") && !is_annotation(key))
                return cfail(c, "'%s' next to '$ref' is not supported (use allOf)", key);
        }
        if (!json_is_string(ref)) return cfail(c, "'$ref' must be a string");
        const json_t *target = resolve(c, json_string_value(ref));
        if (!target) return -1;
        refent *e = ref_find(c, target);
        if (e) {
            if (!e->done && e->level == c->level)
                return cfail(c, "$ref '%s' is a cycle that consumes nothing", json_string_value(ref));
            sb_printf(b, "r%u", e->id);
            return 0;
        }
        if (c->n_refs == c->cap_refs) {
            const size_t cap = c->cap_refs ? c->cap_refs * 2 : 16;
            refent *n = realloc(c->refs, cap * sizeof *n);
            if (!n) return cfail(c, "out of memory");
            c->refs = n;
            c->cap_refs = cap;
        }
        const rname name = new_name(c);
        const size_t idx = c->n_refs++;
        c->refs[idx] = (refent){ target, c->next_id, c->level, 0 };
        /* the target's own pointer, for messages */
        char saved[sizeof c->ptr];
        const size_t saved_len = c->ptr_len;
        memcpy(saved, c->ptr, sizeof saved);
        snprintf(c->ptr, sizeof c->ptr, "%s", json_string_value(ref) + 1);
        c->ptr_len = strlen(c->ptr);
        rname inner;
        int rc = visit(c, target, &inner);
        if (rc) return -1;
        memcpy(c->ptr, saved, sizeof saved);
        c->ptr_len = saved_len;
        c->refs[idx].done = 1;
        sbuf body = { 0 };
        sb_str(&body, inner.s);
        rc = add_rule(c, &name, &body);
        free(body.s);
        if (rc) return -1;
        sb_str(b, name.s);
        return 0;
    }
    if (json_object_get(s, "const") || json_object_get(s, "enum")) {
        const json_t *cst = json_object_get(s, "const"), *en = json_object_get(s, "enum");
        if (cst && en) return cfail(c, "'const' together with 'enum' is not supported");
        json_object_foreach((json_t *)s, key, v) {
            if (strcmp(key, "const") && strcmp(key, "enum") && strcmp(key, "type") && !is_annotation(key))
                return cfail(c, "'%s' together with '%s' is not supported", key, cst ? "const" : "enum");
        }
        if (en && (!json_is_array(en) || json_array_size(en) == 0)) return cfail(c, "'enum' must be a non-empty array");
        /* values of the wrong "type" would be invalid: refuse them */
        const json_t *type = json_object_get(s, "type");
        size_t i, n = cst ? 1 : json_array_size(en);
        int written = 0;
        sb_str(b, "(");
        for (i = 0; i < n; i++) {
            const json_t *val = cst ? cst : json_array_get(en, i);
            if (type) {
                const char *t = json_is_string(val) ? "string" : json_is_integer(val) ? "integer" : json_is_real(val) ? "number"
                              : json_is_boolean(val) ? "boolean" : json_is_null(val) ? "null" : json_is_array(val) ? "array" : "object";
                int ok = 0;
                size_t k;
                json_t *tv;
                if (json_is_string(type)) ok = !strcmp(json_string_value(type), t) || (!strcmp(t, "integer") && !strcmp(json_string_value(type), "number"));
                json_array_foreach(type, k, tv) {
                    ok |= json_is_string(tv) && (!strcmp(json_string_value(tv), t) || (!strcmp(t, "integer") && !strcmp(json_string_value(tv), "number")));
                }
                if (!ok) continue;   /* not of the type: not a valid value, never generated */
            }
            if (written++) sb_str(b, " | ");
            if (literal_value(c, b, val)) return -1;
        }
        sb_str(b, ")");
        if (!written) return cfail(c, "no value of '%s' has the schema's type", cst ? "const" : "enum");
        return 0;
    }
    const json_t *type = json_object_get(s, "type");
    if (!type) {
        const char *t = implied_type(s);
        if (!t) { sb_str(b, "value"); c->any_used = 1; return 0; }
        if (!strcmp(t, "integer-or-number")) t = "integer";
        return type_rule(c, s, t, b);
    }
    if (json_is_string(type)) return type_rule(c, s, json_string_value(type), b);
    if (!json_is_array(type) || json_array_size(type) == 0) return cfail(c, "'type' must be a string or a non-empty array");
    size_t i;
    sb_str(b, "(");
    json_array_foreach(type, i, v) {
        if (!json_is_string(v)) return cfail(c, "'type' must hold strings");
        if (i) sb_str(b, " | ");
        if (type_rule(c, s, json_string_value(v), b)) return -1;
    }
    sb_str(b, ")");
    return 0;
}

/* allOf: merge the members (resolving $ref) into one schema */
static int merge_allof(conv *c, const json_t *s, json_t *into, const json_t **chain, int depth)
{
    if (depth >= QFIT_SCHEMA_MAX_DEPTH) return cfail(c, "allOf/$ref chain deeper than %d", QFIT_SCHEMA_MAX_DEPTH);
    for (int k = 0; k < depth; k++)
        if (chain[k] == s) return cfail(c, "allOf/$ref: a $ref cycle that consumes nothing");
    chain[depth] = s;
    if (json_is_true(s)) return 0;
    if (!json_is_object(s)) return cfail(c, "allOf members must be schemas");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)s, key, v) {
        if (is_annotation(key)) continue;
        if (!strcmp(key, "allOf")) {
            if (!json_is_array(v)) return cfail(c, "'allOf' must be an array");
            size_t i;
            json_t *m;
            json_array_foreach(v, i, m) {
                if (merge_allof(c, m, into, chain, depth + 1)) return -1;
            }
            continue;
        }
        if (!strcmp(key, "$ref")) {
            const json_t *t = json_is_string(v) ? resolve(c, json_string_value(v)) : NULL;
            if (!t) return c->failed ? -1 : cfail(c, "'$ref' must be a string");
            if (merge_allof(c, t, into, chain, depth + 1)) return -1;
            continue;
        }
        json_t *have = json_object_get(into, key);
        if (!strcmp(key, "properties") && have && json_is_object(v)) {
            const char *pk;
            json_t *pv;
            json_object_foreach(v, pk, pv) {
                json_t *old = json_object_get(have, pk);
                if (old && !json_equal(old, pv)) return cfail(c, "allOf: property '%s' is defined differently", pk);
                json_object_set(have, pk, pv);
            }
            continue;
        }
        if (!strcmp(key, "required") && have && json_is_array(v)) {
            size_t i;
            json_t *r;
            json_array_foreach(v, i, r) json_array_append(have, r);
            continue;
        }
        if (have && !json_equal(have, v)) return cfail(c, "allOf: '%s' differs between members (not a simple merge)", key);
        json_t *copy = json_deep_copy(v);
        if (!copy || json_object_set_new(into, key, copy)) return cfail(c, "out of memory");
    }
    return 0;
}

static int visit(conv *c, const json_t *s, rname *out)
{
    if (c->depth >= QFIT_SCHEMA_MAX_DEPTH) return cfail(c, "schemas nested deeper than %d levels", QFIT_SCHEMA_MAX_DEPTH);
    if (json_is_true(s) || (json_is_object(s) && json_object_size(s) == 0)) {
        c->any_used = 1;
        *out = fixed("value");
        return 0;
    }
    if (json_is_false(s)) return cfail(c, "the schema false accepts nothing");
    if (!json_is_object(s)) return cfail(c, "a schema must be an object or a boolean");
    c->depth++;
    sbuf body = { 0 };
    int rc = visit_body(c, s, &body);
    c->depth--;
    if (!rc) {
        *out = new_name(c);
        rc = add_rule(c, out, &body);
    }
    free(body.s);
    return rc;
}

char *qfit_schema_to_gbnf(const char *schema, size_t len, char *err, size_t err_len)
{
    char dummy[8];
    if (!err || !err_len) { err = dummy; err_len = sizeof dummy; }
    err[0] = 0;
    if (len > QFIT_SCHEMA_MAX_BYTES) {
        snprintf(err, err_len, "the schema is %zu bytes (at most %u)", len, QFIT_SCHEMA_MAX_BYTES);
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(schema, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root) {
        snprintf(err, err_len, "the schema is not valid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        return NULL;
    }
    conv c = { .root = root, .err = err, .err_len = err_len };
    rname top;
    char *out = NULL;
    /* the root as the target of "$ref": "#", so a recursive reference reuses its rule */
    const json_t *self = json_pack("{s:s}", "$ref", "#");
    const int rc = self ? visit(&c, self, &top) : cfail(&c, "out of memory");
    json_decref((json_t *)self);
    if (rc == 0) {
        sbuf all = { 0 };
        sb_printf(&all, "root ::= %s\n", top.s);
        sb_put(&all, c.rules.s ? c.rules.s : "", c.rules.n);
        if (c.any_used) sb_str(&all, ANY_JSON_RULES);
        sb_str(&all, BASE_RULES);
        if (all.oom) {
            snprintf(err, err_len, "out of memory");
            free(all.s);
        } else out = all.s;
    }
    free(c.rules.s);
    free(c.refs);
    json_decref(root);
    return out;
}
