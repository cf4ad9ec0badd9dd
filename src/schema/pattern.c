/* JSON Schema "pattern" (an ECMA-262 regular expression, the subset documented in
 * include/qfit/schema.h) -> a GBNF expression over the JSON-encoded string
 * content: a character that JSON must escape (", \, control characters) is
 * matched in its escaped form. Recursion is bounded by the group nesting limit. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema_int.h"

#define MAX_NEST 64
#define MAX_REPEAT 1000
#define MAX_RANGES 64

typedef struct {
    const char *s;
    size_t n, i;
    sbuf *out;
    const char *char_rule;
    size_t base;   /* offset of s in the pattern (after a leading '^') */
    char *err;
    size_t err_len;
    int failed;
} rx;

typedef struct {
    uint32_t r[MAX_RANGES][2];
    int n, neg;
} cpset;

static int rx_fail(rx *x, size_t at, const char *fmt, ...)
{
    if (x->failed) return -1;
    x->failed = 1;
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(x->err, x->err_len, "pattern: %s at offset %zu", msg, at + x->base);
    return -1;
}

static int set_add(rx *x, cpset *c, uint32_t lo, uint32_t hi)
{
    if (c->n == MAX_RANGES) return rx_fail(x, x->i, "more than %d ranges in a class", MAX_RANGES);
    c->r[c->n][0] = lo;
    c->r[c->n][1] = hi;
    c->n++;
    return 0;
}

static int set_has(const cpset *c, uint32_t cp)
{
    for (int k = 0; k < c->n; k++)
        if (cp >= c->r[k][0] && cp <= c->r[k][1]) return !c->neg;
    return c->neg;
}

static void put_cp(sbuf *b, uint32_t cp)
{
    if (cp < 0x100) sb_printf(b, "\\x%02X", (unsigned)cp);
    else if (cp < 0x10000) sb_printf(b, "\\u%04X", (unsigned)cp);
    else sb_printf(b, "\\U%08X", (unsigned)cp);
}

/* the set as GBNF over JSON-encoded text: raw characters that need no escape,
 * plus the escaped forms of ", \ and \b \f \n \r \t when the set has them */
static void emit_set(rx *x, const cpset *c)
{
    static const uint32_t ok[3][2] = { { 0x20, 0x21 }, { 0x23, 0x5B }, { 0x5D, 0x10FFFF } };
    sbuf *b = x->out;
    sb_str(b, "(");
    if (c->neg) {
        sb_str(b, "[^\\x00-\\x1F\\x22\\x5C");
        for (int k = 0; k < c->n; k++) {
            put_cp(b, c->r[k][0]);
            sb_str(b, "-");
            put_cp(b, c->r[k][1]);
        }
        sb_str(b, "]");
    } else {
        sb_str(b, "[");
        int any = 0;
        for (int k = 0; k < c->n; k++)
            for (int q = 0; q < 3; q++) {
                const uint32_t lo = c->r[k][0] > ok[q][0] ? c->r[k][0] : ok[q][0];
                const uint32_t hi = c->r[k][1] < ok[q][1] ? c->r[k][1] : ok[q][1];
                if (lo > hi) continue;
                put_cp(b, lo);
                sb_str(b, "-");
                put_cp(b, hi);
                any = 1;
            }
        if (!any) sb_str(b, "^\\x00-\\U0010FFFF");   /* matches nothing */
        sb_str(b, "]");
    }
    static const struct { uint32_t cp; const char *esc; } e[] = {
        { '"', "\"\\\\\\\"\"" }, { '\\', "\"\\\\\\\\\"" }, { '\b', "\"\\\\b\"" }, { '\f', "\"\\\\f\"" },
        { '\n', "\"\\\\n\"" },   { '\r', "\"\\\\r\"" },    { '\t', "\"\\\\t\"" },
    };
    for (size_t k = 0; k < sizeof e / sizeof *e; k++)
        if (set_has(c, e[k].cp)) sb_printf(b, " | %s", e[k].esc);
    sb_str(b, ")");
}

static int hexn(rx *x, int digits, uint32_t *out)
{
    uint32_t v = 0;
    for (int k = 0; k < digits; k++) {
        if (x->i >= x->n) return rx_fail(x, x->i, "truncated escape");
        const char c = x->s[x->i++];
        const int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (h < 0) return rx_fail(x, x->i - 1, "bad hexadecimal digit");
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return 0;
}

/* one UTF-8 character of the pattern */
static int utf8(rx *x, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)x->s;
    const unsigned char b = s[x->i];
    int need = b < 0x80 ? 0 : (b & 0xE0) == 0xC0 ? 1 : (b & 0xF0) == 0xE0 ? 2 : (b & 0xF8) == 0xF0 ? 3 : -1;
    if (need < 0 || x->i + (size_t)need >= x->n + (need ? 0 : 1)) return rx_fail(x, x->i, "invalid UTF-8");
    uint32_t v = need ? b & (0x3Fu >> need) : b;
    for (int k = 1; k <= need; k++) {
        if ((s[x->i + (size_t)k] & 0xC0) != 0x80) return rx_fail(x, x->i, "invalid UTF-8");
        v = v << 6 | (s[x->i + (size_t)k] & 0x3F);
    }
    x->i += (size_t)need + 1;
    *cp = v;
    return 0;
}

/* an escape after '\': a single character (*cp) or a class added to c (returns 1) */
static int escape(rx *x, cpset *c, uint32_t *cp, int in_class)
{
    const size_t at = x->i - 1;
    if (x->i >= x->n) return rx_fail(x, at, "'\\' at the end");
    const char e = x->s[x->i++];
    int neg = 0;
    switch (e) {
    case 'n': *cp = '\n'; return 0;
    case 't': *cp = '\t'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 'f': *cp = '\f'; return 0;
    case 'v': *cp = '\v'; return 0;
    case 'x': return hexn(x, 2, cp);
    case 'u': return hexn(x, 4, cp);
    case 'D': case 'W': case 'S': neg = 1; /* fall through */
    case 'd': case 'w': case 's': {
        if (neg && (in_class || c->n)) return rx_fail(x, at, "'\\%c' inside a class is not supported", e);
        const char k = (char)(e | 0x20);
        if (k == 'd') { if (set_add(x, c, '0', '9')) return -1; }
        else if (k == 'w') {
            if (set_add(x, c, 'a', 'z') || set_add(x, c, 'A', 'Z') || set_add(x, c, '0', '9') || set_add(x, c, '_', '_'))
                return -1;
        } else {
            static const uint32_t sp[][2] = { { 9, 13 }, { 32, 32 }, { 0xA0, 0xA0 }, { 0x1680, 0x1680 }, { 0x2000, 0x200A },
                                              { 0x2028, 0x2029 }, { 0x202F, 0x202F }, { 0x205F, 0x205F }, { 0x3000, 0x3000 },
                                              { 0xFEFF, 0xFEFF } };
            for (size_t q = 0; q < sizeof sp / sizeof *sp; q++)
                if (set_add(x, c, sp[q][0], sp[q][1])) return -1;
        }
        c->neg = neg;
        return 1;
    }
    case 'b': case 'B': return rx_fail(x, at, "word boundaries (\\%c) are not supported", e);
    case 'p': case 'P': return rx_fail(x, at, "Unicode property escapes (\\%c) are not supported", e);
    case 'k': return rx_fail(x, at, "named backreferences are not supported");
    default:
        if (e >= '1' && e <= '9') return rx_fail(x, at, "backreferences are not supported");
        if (e == '0') { *cp = 0; return 0; }
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) return rx_fail(x, at, "unknown escape '\\%c'", e);
        x->i--;
        return utf8(x, cp);   /* an escaped punctuation character is itself */
    }
}

static int parse_class(rx *x, cpset *c)
{
    const size_t at = x->i++;
    if (x->i < x->n && x->s[x->i] == '^') { c->neg = 1; x->i++; }
    int negated_escape_seen = 0;
    while (x->i < x->n && x->s[x->i] != ']') {
        uint32_t lo, hi;
        if (x->s[x->i] == '\\') {
            x->i++;
            cpset sub = { .n = 0 };
            const int r = escape(x, &sub, &lo, 1);
            if (r < 0) return -1;
            if (r == 1) {
                for (int k = 0; k < sub.n; k++)
                    if (set_add(x, c, sub.r[k][0], sub.r[k][1])) return -1;
                negated_escape_seen |= sub.neg;
                continue;
            }
        } else if (x->s[x->i] == '[' && x->i + 1 < x->n && x->s[x->i + 1] == ':') {
            return rx_fail(x, x->i, "POSIX classes are not supported");
        } else if (utf8(x, &lo)) return -1;
        hi = lo;
        if (x->i + 1 < x->n && x->s[x->i] == '-' && x->s[x->i + 1] != ']') {
            x->i++;
            if (x->s[x->i] == '\\') {
                x->i++;
                cpset sub = { .n = 0 };
                const int r = escape(x, &sub, &hi, 1);
                if (r < 0) return -1;
                if (r == 1) return rx_fail(x, x->i, "a class escape cannot end a range");
            } else if (utf8(x, &hi)) return -1;
            if (hi < lo) return rx_fail(x, at, "range out of order");
        }
        if (set_add(x, c, lo, hi)) return -1;
    }
    if (x->i >= x->n) return rx_fail(x, at, "unterminated class");
    x->i++;
    (void)negated_escape_seen;
    return 0;
}

static int parse_alt(rx *x, int depth);

/* a quantifier after an atom written at out[start..]: wraps it and appends {m,n} */
static int quantifier(rx *x)
{
    const size_t at = x->i;
    const char q = x->s[x->i];
    unsigned long m = 0, n = 0;
    int inf = 0;
    if (q == '*') { inf = 1; x->i++; }
    else if (q == '+') { m = 1; inf = 1; x->i++; }
    else if (q == '?') { n = 1; x->i++; }
    else if (q == '{') {
        char *end;
        x->i++;
        m = strtoul(x->s + x->i, &end, 10);
        if (end == x->s + x->i) return rx_fail(x, at, "bad quantifier");
        x->i = (size_t)(end - x->s);
        n = m;
        if (x->i < x->n && x->s[x->i] == ',') {
            x->i++;
            if (x->i < x->n && x->s[x->i] == '}') inf = 1;
            else {
                n = strtoul(x->s + x->i, &end, 10);
                if (end == x->s + x->i) return rx_fail(x, at, "bad quantifier");
                x->i = (size_t)(end - x->s);
            }
        }
        if (x->i >= x->n || x->s[x->i] != '}') return rx_fail(x, at, "bad quantifier");
        x->i++;
        if (m > MAX_REPEAT || n > MAX_REPEAT) return rx_fail(x, at, "repetition count above %d", MAX_REPEAT);
        if (!inf && n < m) return rx_fail(x, at, "quantifier {%lu,%lu} out of order", m, n);
    } else return 0;
    if (x->i < x->n && x->s[x->i] == '?') x->i++;   /* lazy: the same strings */
    if (inf) sb_printf(x->out, "{%lu,}", m);
    else sb_printf(x->out, "{%lu,%lu}", m, n);
    if (x->i < x->n && (x->s[x->i] == '*' || x->s[x->i] == '+' || x->s[x->i] == '{'))
        return rx_fail(x, x->i, "nested quantifier");
    return 0;
}

static int parse_seq(rx *x, int depth)
{
    sb_str(x->out, "(");
    int empty = 1;
    while (x->i < x->n && x->s[x->i] != '|' && x->s[x->i] != ')') {
        const size_t at = x->i;
        const char c = x->s[x->i];
        sb_str(x->out, " ");
        if (c == '(') {
            x->i++;
            if (depth + 1 > MAX_NEST) return rx_fail(x, at, "groups nested deeper than %d", MAX_NEST);
            if (x->i < x->n && x->s[x->i] == '?') {
                if (x->i + 1 < x->n && x->s[x->i + 1] == ':') x->i += 2;
                else return rx_fail(x, at, "lookaround and named groups are not supported");
            }
            if (parse_alt(x, depth + 1)) return -1;
            if (x->i >= x->n || x->s[x->i] != ')') return rx_fail(x, at, "unclosed group");
            x->i++;
        } else if (c == '[') {
            cpset cs = { .n = 0 };
            if (parse_class(x, &cs)) return -1;
            emit_set(x, &cs);
        } else if (c == '.') {
            x->i++;
            cpset cs = { .n = 0, .neg = 1 };
            set_add(x, &cs, '\n', '\n');
            set_add(x, &cs, '\r', '\r');
            set_add(x, &cs, 0x2028, 0x2029);
            emit_set(x, &cs);
        } else if (c == '^' || c == '$') {
            return rx_fail(x, at, "'%c' is only supported at the start ('^') or end ('$') of the pattern", c);
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            return rx_fail(x, at, "'%c' has nothing to repeat", c);
        } else if (c == ']' || c == '}') {
            return rx_fail(x, at, "unbalanced '%c'", c);
        } else {
            cpset cs = { .n = 0 };
            uint32_t cp;
            int r;
            if (c == '\\') {
                x->i++;
                r = escape(x, &cs, &cp, 0);
            } else r = utf8(x, &cp);
            if (r < 0) return -1;
            if (r == 0 && set_add(x, &cs, cp, cp)) return -1;
            emit_set(x, &cs);
        }
        empty = 0;
        if (x->i < x->n && quantifier(x)) return -1;
    }
    if (empty) sb_str(x->out, "\"\"");
    sb_str(x->out, ")");
    return 0;
}

static int parse_alt(rx *x, int depth)
{
    sb_str(x->out, "(");
    for (;;) {
        if (parse_seq(x, depth)) return -1;
        if (x->i < x->n && x->s[x->i] == '|') {
            x->i++;
            sb_str(x->out, " | ");
            continue;
        }
        break;
    }
    sb_str(x->out, ")");
    return 0;
}

int schema_pattern_gbnf(const char *pattern, sbuf *out, const char *char_rule, char *err, size_t err_len)
{
    rx x = { .s = pattern, .n = strlen(pattern), .out = out, .char_rule = char_rule, .err = err, .err_len = err_len };
    int start = 0, end = 0;
    if (x.n && x.s[0] == '^') { start = 1; x.s++; x.n--; x.base = 1; }
    if (x.n && x.s[x.n - 1] == '$') {   /* an anchor unless escaped (an odd number of '\\' before it) */
        size_t bs = 0;
        while (bs + 1 < x.n && x.s[x.n - 2 - bs] == '\\') bs++;
        if (bs % 2 == 0) { end = 1; x.n--; }
    }
    /* a top-level '|' with anchors binds each anchor to one branch only */
    if (start || end) {
        int level = 0, in_class = 0;
        for (size_t k = 0; k < x.n; k++) {
            const char c = x.s[k];
            if (c == '\\') { k++; continue; }
            if (in_class) { if (c == ']') in_class = 0; continue; }
            if (c == '[') in_class = 1;
            else if (c == '(') level++;
            else if (c == ')') level--;
            else if (c == '|' && level == 0)
                return rx_fail(&x, k, "an anchored pattern with a top-level '|' (wrap the alternatives in a group)");
        }
    }
    sb_str(out, "(");
    if (!start) sb_printf(out, " %s*", char_rule);
    sb_str(out, " ");
    if (parse_alt(&x, 0)) return -1;
    if (x.i < x.n) return rx_fail(&x, x.i, "unbalanced ')'");
    if (!end) sb_printf(out, " %s*", char_rule);
    sb_str(out, " )");
    return 0;
}
