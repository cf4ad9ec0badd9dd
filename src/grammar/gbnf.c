/* GBNF text -> compiled grammar (grammar_int.h). A recursive-descent parser whose
 * recursion is bounded by the group nesting limit; every count is checked before
 * it grows an array. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/grammar_int.h"

#define REPEAT_INF UINT32_MAX

typedef struct {
    gelem *v;
    uint32_t n, cap;
} evec;

typedef struct {
    uint32_t rule;
    size_t first_ref;   /* offset of the first reference, for "undefined rule" */
    size_t def;         /* offset of the definition; SIZE_MAX if none yet */
} symbol;

typedef struct {
    const char *s;
    size_t n, i;
    char *err;
    size_t err_len;
    int failed;
    struct qfit_grammar *g;
    uint32_t el_cap, alt_cap, rule_cap, cs_cap, rng_cap;
    uint32_t owner;      /* the named rule being defined */
    symbol *sym;         /* open-addressed table of named rules */
    uint32_t sym_cap, n_sym;
} parser;

static int fail_at(parser *p, size_t off, const char *fmt, ...)
{
    if (p->failed) return -1;
    p->failed = 1;
    unsigned line = 1, col = 1;
    for (size_t k = 0; k < off && k < p->n; k++) {
        if (p->s[k] == '\n') { line++; col = 1; }
        else col++;
    }
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->err && p->err_len) snprintf(p->err, p->err_len, "line %u, column %u: %s", line, col, msg);
    return -1;
}

static int oom(parser *p) { return fail_at(p, p->i, "out of memory"); }

/* grow *arr (element size sz) so that need elements fit */
static int grow(parser *p, void **arr, uint32_t *cap, uint64_t need, size_t sz)
{
    if (need <= *cap) return 0;
    if (need > QFIT_GRAMMAR_MAX_ELEMENTS * 2ull)
        return fail_at(p, p->i, "the grammar is too large (more than %u elements)", QFIT_GRAMMAR_MAX_ELEMENTS);
    uint64_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *a = realloc(*arr, (size_t)c * sz);
    if (!a) return oom(p);
    *arr = a;
    *cap = (uint32_t)c;
    return 0;
}

static int evec_push(parser *p, evec *v, uint32_t type, uint32_t arg)
{
    if (v->n >= QFIT_GRAMMAR_MAX_ELEMENTS)
        return fail_at(p, p->i, "the grammar is too large (more than %u elements)", QFIT_GRAMMAR_MAX_ELEMENTS);
    if (grow(p, (void **)&v->v, &v->cap, (uint64_t)v->n + 1, sizeof *v->v)) return -1;
    v->v[v->n++] = (gelem){ type, arg };
    return 0;
}

static uint32_t new_rule(parser *p, const char *name, size_t name_len)
{
    struct qfit_grammar *g = p->g;
    if (grow(p, (void **)&g->rule, &p->rule_cap, (uint64_t)g->n_rule + 1, sizeof *g->rule)) return UINT32_MAX;
    grule *r = &g->rule[g->n_rule];
    r->first_alt = 0;
    r->n_alt = UINT32_MAX;   /* not defined yet */
    r->name = NULL;
    r->owner = name ? g->n_rule : p->owner;
    if (name) {
        if (!(r->name = malloc(name_len + 1))) { oom(p); return UINT32_MAX; }
        memcpy(r->name, name, name_len);
        r->name[name_len] = 0;
    }
    return g->n_rule++;
}

/* Commit alternatives (a run of elements, each alternative ended by GE_END) as
 * the body of rule r. */
static int commit_rule(parser *p, uint32_t r, const evec *alts)
{
    struct qfit_grammar *g = p->g;
    if ((uint64_t)g->n_el + alts->n > QFIT_GRAMMAR_MAX_ELEMENTS)
        return fail_at(p, p->i, "the grammar is too large (more than %u elements)", QFIT_GRAMMAR_MAX_ELEMENTS);
    uint32_t n_alt = 0;
    for (uint32_t k = 0; k < alts->n; k++) n_alt += alts->v[k].type == GE_END;
    if (grow(p, (void **)&g->el, &p->el_cap, (uint64_t)g->n_el + alts->n, sizeof *g->el) ||
        grow(p, (void **)&g->alt, &p->alt_cap, (uint64_t)g->n_alt + n_alt, sizeof *g->alt))
        return -1;
    g->rule[r].first_alt = g->n_alt;
    g->rule[r].n_alt = n_alt;
    uint32_t start = g->n_el;
    for (uint32_t k = 0; k < alts->n; k++) {
        g->el[g->n_el++] = alts->v[k];
        if (alts->v[k].type == GE_END) {
            g->alt[g->n_alt++] = start;
            start = g->n_el;
        }
    }
    return 0;
}

/* a generated rule with the given alternatives */
static uint32_t gen_rule(parser *p, const evec *alts)
{
    uint32_t r = new_rule(p, NULL, 0);
    if (r == UINT32_MAX || commit_rule(p, r, alts)) return UINT32_MAX;
    return r;
}

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t k = 0; k < n; k++) h = (h ^ (unsigned char)s[k]) * 1099511628211ull;
    return h;
}

/* the rule named s[0..n), created (undefined) on first use */
static symbol *lookup(parser *p, const char *s, size_t n, size_t off)
{
    if (p->n_sym * 2 + 2 > p->sym_cap) {
        uint32_t cap = p->sym_cap ? p->sym_cap * 2 : 64;
        symbol *t = malloc((size_t)cap * sizeof *t);
        if (!t) { oom(p); return NULL; }
        for (uint32_t k = 0; k < cap; k++) t[k].rule = UINT32_MAX;
        for (uint32_t k = 0; k < p->sym_cap; k++) {
            if (p->sym[k].rule == UINT32_MAX) continue;
            const char *nm = p->g->rule[p->sym[k].rule].name;
            uint32_t h = (uint32_t)hash_name(nm, strlen(nm)) & (cap - 1);
            while (t[h].rule != UINT32_MAX) h = (h + 1) & (cap - 1);
            t[h] = p->sym[k];
        }
        free(p->sym);
        p->sym = t;
        p->sym_cap = cap;
    }
    uint32_t h = (uint32_t)hash_name(s, n) & (p->sym_cap - 1);
    while (p->sym[h].rule != UINT32_MAX) {
        const char *nm = p->g->rule[p->sym[h].rule].name;
        if (strlen(nm) == n && memcmp(nm, s, n) == 0) return &p->sym[h];
        h = (h + 1) & (p->sym_cap - 1);
    }
    uint32_t r = new_rule(p, s, n);
    if (r == UINT32_MAX) return NULL;
    p->sym[h] = (symbol){ r, off, SIZE_MAX };
    p->n_sym++;
    return &p->sym[h];
}

static void skip_space(parser *p, int newlines)
{
    while (p->i < p->n) {
        const char c = p->s[p->i];
        if (c == ' ' || c == '\t' || c == '\r') p->i++;
        else if (c == '\n' && newlines) p->i++;
        else if (c == '#') { while (p->i < p->n && p->s[p->i] != '\n') p->i++; }
        else break;
    }
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static size_t name_len(const parser *p)
{
    size_t k = p->i;
    while (k < p->n && is_name_char(p->s[k])) k++;
    return k - p->i;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* one UTF-8 character of the grammar text */
static int64_t utf8_char(parser *p)
{
    const unsigned char *s = (const unsigned char *)p->s;
    const unsigned char b = s[p->i];
    uint32_t need, cp, min;
    if (b < 0x80) { p->i++; return b; }
    if (b >= 0xC2 && b <= 0xDF) { need = 1; cp = b & 0x1F; min = 0x80; }
    else if (b >= 0xE0 && b <= 0xEF) { need = 2; cp = b & 0x0F; min = 0x800; }
    else if (b >= 0xF0 && b <= 0xF4) { need = 3; cp = b & 0x07; min = 0x10000; }
    else return fail_at(p, p->i, "invalid UTF-8 byte 0x%02X", b);
    if (p->i + need >= p->n) return fail_at(p, p->i, "truncated UTF-8 character");
    for (uint32_t k = 1; k <= need; k++) {
        if ((s[p->i + k] & 0xC0) != 0x80) return fail_at(p, p->i, "invalid UTF-8 character");
        cp = cp << 6 | (s[p->i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return fail_at(p, p->i, "invalid UTF-8 character");
    p->i += need + 1;
    return cp;
}

/* one character of a literal or a class, escapes decoded; -1 on error */
static int64_t parse_char(parser *p)
{
    if (p->i >= p->n) return fail_at(p, p->i, "unexpected end of the grammar");
    if (p->s[p->i] != '\\') return utf8_char(p);
    const size_t at = p->i;
    if (p->i + 1 >= p->n) return fail_at(p, at, "unexpected end after '\\'");
    const char e = p->s[p->i + 1];
    p->i += 2;
    int digits = 0;
    switch (e) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case '\\': case '"': case '[': case ']': case '-': case '^': return e;
    case 'x': digits = 2; break;
    case 'u': digits = 4; break;
    case 'U': digits = 8; break;
    default: return fail_at(p, at, "unknown escape '\\%c'", e);
    }
    uint32_t cp = 0;
    for (int k = 0; k < digits; k++) {
        const int h = p->i < p->n ? hexval(p->s[p->i]) : -1;
        if (h < 0) return fail_at(p, at, "'\\%c' needs %d hexadecimal digits", e, digits);
        cp = cp << 4 | (uint32_t)h;
        p->i++;
    }
    if (cp > 0x10FFFF) return fail_at(p, at, "code point U+%X is beyond U+10FFFF", cp);
    return cp;
}

static uint32_t add_charset(parser *p, const uint32_t *ranges, uint32_t n_pairs, int neg)
{
    struct qfit_grammar *g = p->g;
    if (grow(p, (void **)&g->cs, &p->cs_cap, (uint64_t)g->n_cs + 1, sizeof *g->cs) ||
        grow(p, (void **)&g->rng, &p->rng_cap, 2 * ((uint64_t)g->n_rng + n_pairs), sizeof *g->rng))
        return UINT32_MAX;
    g->cs[g->n_cs] = (gcharset){ g->n_rng, n_pairs, (uint32_t)neg };
    if (n_pairs) memcpy(g->rng + 2 * (size_t)g->n_rng, ranges, 2 * (size_t)n_pairs * sizeof *ranges);
    g->n_rng += n_pairs;
    return g->n_cs++;
}

static int push_char(parser *p, evec *seq, uint32_t cp)
{
    const uint32_t r[2] = { cp, cp };
    const uint32_t cs = add_charset(p, r, 1, 0);
    return cs == UINT32_MAX ? -1 : evec_push(p, seq, GE_CHAR, cs);
}

static int parse_literal(parser *p, evec *seq)
{
    const size_t at = p->i++;
    while (p->i < p->n && p->s[p->i] != '"') {
        if (p->s[p->i] == '\n') return fail_at(p, at, "unterminated string literal");
        const int64_t c = parse_char(p);
        if (c < 0 || push_char(p, seq, (uint32_t)c)) return -1;
    }
    if (p->i >= p->n) return fail_at(p, at, "unterminated string literal");
    p->i++;
    return 0;
}

static int parse_class(parser *p, evec *seq)
{
    const size_t at = p->i++;
    int neg = 0;
    if (p->i < p->n && p->s[p->i] == '^') { neg = 1; p->i++; }
    evec pairs = { 0 };   /* (lo, hi) stored in the type/arg fields */
    while (p->i < p->n && p->s[p->i] != ']') {
        const size_t c_at = p->i;
        const int64_t lo = parse_char(p);
        int64_t hi = lo;
        if (lo < 0) goto fail;
        if (p->i + 1 < p->n && p->s[p->i] == '-' && p->s[p->i + 1] != ']') {
            p->i++;
            if ((hi = parse_char(p)) < 0) goto fail;
            if (hi < lo) { fail_at(p, c_at, "range end U+%X is below its start U+%X", (unsigned)hi, (unsigned)lo); goto fail; }
        }
        if (evec_push(p, &pairs, (uint32_t)lo, (uint32_t)hi)) goto fail;
    }
    if (p->i >= p->n) { fail_at(p, at, "unterminated character class"); goto fail; }
    p->i++;
    const uint32_t cs = add_charset(p, (const uint32_t *)pairs.v, pairs.n, neg);
    free(pairs.v);
    return cs == UINT32_MAX ? -1 : evec_push(p, seq, GE_CHAR, cs);
fail:
    free(pairs.v);
    return -1;
}

static int parse_alternatives(parser *p, evec *alts, int nested, int depth);

/* x{m,n}, x*, x+, x? applied to seq[start..): the item becomes one element */
static int parse_repetition(parser *p, evec *seq, uint32_t start)
{
    const size_t at = p->i;
    if (start >= seq->n) return fail_at(p, at, "'%c' has nothing to repeat", p->s[p->i]);
    uint32_t m = 0, n = REPEAT_INF;
    const char op = p->s[p->i++];
    if (op == '+') m = 1;
    else if (op == '?') n = 1;
    else if (op == '{') {
        uint64_t v[2] = { 0, 0 };
        int have[2] = { 0, 0 }, k = 0, comma = 0;
        for (;; p->i++) {
            skip_space(p, 0);
            if (p->i >= p->n) return fail_at(p, at, "unterminated repetition '{'");
            const char c = p->s[p->i];
            if (c >= '0' && c <= '9') {
                v[k] = v[k] * 10 + (uint64_t)(c - '0');
                have[k] = 1;
                if (v[k] > QFIT_GRAMMAR_MAX_REPEAT)
                    return fail_at(p, at, "repetition count above %d", QFIT_GRAMMAR_MAX_REPEAT);
            } else if (c == ',' && !comma) { comma = 1; k = 1; }
            else if (c == '}') { p->i++; break; }
            else return fail_at(p, p->i, "unexpected '%c' in a repetition", c);
        }
        if (!have[0] && !have[1]) return fail_at(p, at, "a repetition needs a count");
        m = (uint32_t)v[0];
        n = !comma ? m : have[1] ? (uint32_t)v[1] : REPEAT_INF;
        if (n < m) return fail_at(p, at, "repetition {%u,%u}: the maximum is below the minimum", m, n);
    }
    /* the item as one element */
    gelem x = seq->v[start];
    if (seq->n - start != 1) {
        evec one = { 0 };
        for (uint32_t k = start; k < seq->n; k++)
            if (evec_push(p, &one, seq->v[k].type, seq->v[k].arg)) { free(one.v); return -1; }
        const uint32_t r = evec_push(p, &one, GE_END, 0) ? UINT32_MAX : gen_rule(p, &one);
        free(one.v);
        if (r == UINT32_MAX) return -1;
        x = (gelem){ GE_REF, r };
    }
    seq->n = start;
    if ((uint64_t)m * 2 + (n == REPEAT_INF ? 0 : (uint64_t)(n - m) * 4) + p->g->n_el > QFIT_GRAMMAR_MAX_ELEMENTS)
        return fail_at(p, at, "the grammar is too large (more than %u elements)", QFIT_GRAMMAR_MAX_ELEMENTS);
    for (uint32_t k = 0; k < m; k++)
        if (evec_push(p, seq, x.type, x.arg)) return -1;
    if (n == m) return 0;
    evec body = { 0 };
    uint32_t r;
    if (n == REPEAT_INF) {   /* R ::= x R | "" */
        r = new_rule(p, NULL, 0);
        if (r == UINT32_MAX || evec_push(p, &body, x.type, x.arg) || evec_push(p, &body, GE_REF, r) ||
            evec_push(p, &body, GE_END, 0) || evec_push(p, &body, GE_END, 0) || commit_rule(p, r, &body))
            r = UINT32_MAX;
    } else {                 /* O1 ::= x | "";  Ok ::= x O(k-1) | "" */
        r = UINT32_MAX;
        for (uint32_t k = 0; k < n - m; k++) {
            body.n = 0;
            if (evec_push(p, &body, x.type, x.arg) || (k > 0 && evec_push(p, &body, GE_REF, r)) ||
                evec_push(p, &body, GE_END, 0) || evec_push(p, &body, GE_END, 0) ||
                (r = gen_rule(p, &body)) == UINT32_MAX) {
                r = UINT32_MAX;
                break;
            }
        }
    }
    free(body.v);
    return r == UINT32_MAX ? -1 : evec_push(p, seq, GE_REF, r);
}

/* a sequence of items up to '|', ')', the end of the line (top level) or the end */
static int parse_sequence(parser *p, evec *seq, int nested, int depth)
{
    uint32_t last = UINT32_MAX;   /* where the last item starts in seq */
    while (p->i < p->n) {
        const char c = p->s[p->i];
        const uint32_t here = seq->n;
        if (c == '"') {
            if (parse_literal(p, seq)) return -1;
            last = here;
        } else if (c == '[') {
            if (parse_class(p, seq)) return -1;
            last = here;
        } else if (c == '.') {
            p->i++;
            const uint32_t cs = add_charset(p, NULL, 0, 1);
            if (cs == UINT32_MAX || evec_push(p, seq, GE_CHAR, cs)) return -1;
            last = here;
        } else if (is_name_char(c)) {
            const size_t at = p->i, len = name_len(p);
            symbol *s = lookup(p, p->s + at, len, at);
            if (!s || evec_push(p, seq, GE_REF, s->rule)) return -1;
            p->i += len;
            last = here;
        } else if (c == '(') {
            const size_t at = p->i++;
            if (depth + 1 > QFIT_GRAMMAR_MAX_NESTING)
                return fail_at(p, at, "groups nested deeper than %d", QFIT_GRAMMAR_MAX_NESTING);
            evec alts = { 0 };
            skip_space(p, 1);
            int rc = parse_alternatives(p, &alts, 1, depth + 1);
            if (!rc && (p->i >= p->n || p->s[p->i] != ')')) rc = fail_at(p, at, "'(' without a matching ')'");
            const uint32_t r = rc ? UINT32_MAX : gen_rule(p, &alts);
            free(alts.v);
            if (r == UINT32_MAX) return -1;
            p->i++;
            if (evec_push(p, seq, GE_REF, r)) return -1;
            last = here;
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (parse_repetition(p, seq, last == UINT32_MAX ? seq->n : last)) return -1;
        } else if (c == '<') {
            return fail_at(p, p->i, "token references (<...>) are not supported");
        } else break;
        skip_space(p, nested);
    }
    return 0;
}

static int parse_alternatives(parser *p, evec *alts, int nested, int depth)
{
    for (;;) {
        if (parse_sequence(p, alts, nested, depth) || evec_push(p, alts, GE_END, 0)) return -1;
        if (p->i < p->n && p->s[p->i] == '|') {
            p->i++;
            skip_space(p, 1);
            continue;
        }
        return 0;
    }
}

static int parse_rules(parser *p)
{
    skip_space(p, 1);
    while (p->i < p->n) {
        const size_t at = p->i, len = name_len(p);
        if (len == 0) return fail_at(p, at, "expected a rule name, found '%c'", p->s[at]);
        symbol *s = lookup(p, p->s + at, len, at);
        if (!s) return -1;
        if (s->def != SIZE_MAX) return fail_at(p, at, "rule '%.*s' is defined twice", (int)len, p->s + at);
        s->def = at;
        const uint32_t rule = s->rule;   /* s may move when the table grows */
        p->owner = rule;
        p->i += len;
        skip_space(p, 0);
        if (p->n - p->i < 3 || memcmp(p->s + p->i, "::=", 3) != 0) return fail_at(p, p->i, "expected '::='");
        p->i += 3;
        skip_space(p, 1);
        evec alts = { 0 };
        int rc = parse_alternatives(p, &alts, 0, 0);
        if (!rc && p->i < p->n && p->s[p->i] != '\n')
            rc = fail_at(p, p->i, "unexpected '%c'", p->s[p->i]);
        if (!rc) rc = commit_rule(p, rule, &alts);
        free(alts.v);
        if (rc) return -1;
        skip_space(p, 1);
    }
    return 0;
}

/* undefined rules, the root, left recursion */
static int check_rules(parser *p)
{
    struct qfit_grammar *g = p->g;
    for (uint32_t k = 0; k < p->sym_cap; k++) {
        const symbol *s = &p->sym[k];
        if (s->rule != UINT32_MAX && s->def == SIZE_MAX)
            return fail_at(p, s->first_ref, "undefined rule '%s'", g->rule[s->rule].name);
    }
    const symbol *root = NULL;
    for (uint32_t k = 0; k < p->sym_cap && !root; k++)
        if (p->sym[k].rule != UINT32_MAX && !strcmp(g->rule[p->sym[k].rule].name, "root")) root = &p->sym[k];
    if (!root) return fail_at(p, 0, "the grammar has no 'root' rule");
    g->root = root->rule;

    /* Nullable rules (fixed point), then the "starts with" graph: an edge r -> s
     * when s can be the first thing r expands. The matcher follows tail
     * references without growing its stacks, so only a cycle through a non-tail
     * reference (left recursion that grows a stack forever) is an error. */
    uint8_t *nullable = calloc(g->n_rule, 1);
    uint32_t *edge_first = calloc((size_t)g->n_rule + 1, sizeof *edge_first);
    uint32_t *edges = NULL, *idx = NULL, *low = NULL, *sstack = NULL, *cstack = NULL, *citer = NULL;
    uint8_t *grows = NULL, *on = NULL;
    int rc = -1;
    if (!nullable || !edge_first) { oom(p); goto out; }
    for (int changed = 1; changed;) {
        changed = 0;
        for (uint32_t r = 0; r < g->n_rule; r++) {
            if (nullable[r]) continue;
            for (uint32_t a = 0; a < g->rule[r].n_alt && !nullable[r]; a++) {
                uint32_t e = g->alt[g->rule[r].first_alt + a];
                while (g->el[e].type == GE_REF && nullable[g->el[e].arg]) e++;
                if (g->el[e].type == GE_END) nullable[r] = 1, changed = 1;
            }
        }
    }
    uint64_t n_edges = 0;
    for (int pass = 0; pass < 2; pass++) {
        n_edges = 0;
        for (uint32_t r = 0; r < g->n_rule; r++) {
            if (pass) edge_first[r] = (uint32_t)n_edges;
            for (uint32_t a = 0; a < g->rule[r].n_alt; a++)
                for (uint32_t e = g->alt[g->rule[r].first_alt + a]; g->el[e].type == GE_REF; e++) {
                    if (pass) {
                        edges[n_edges] = g->el[e].arg;
                        grows[n_edges] = g->el[e + 1].type != GE_END;
                    }
                    n_edges++;
                    if (!nullable[g->el[e].arg]) break;
                }
        }
        if (!pass && (!(edges = malloc((size_t)(n_edges + 1) * sizeof *edges)) || !(grows = malloc((size_t)n_edges + 1)))) {
            oom(p);
            goto out;
        }
    }
    edge_first[g->n_rule] = (uint32_t)n_edges;
    /* strongly connected components (Tarjan, with explicit stacks) */
    idx = malloc((size_t)g->n_rule * sizeof *idx);
    low = malloc((size_t)g->n_rule * sizeof *low);
    sstack = malloc((size_t)g->n_rule * sizeof *sstack);
    cstack = malloc((size_t)g->n_rule * sizeof *cstack);
    citer = malloc((size_t)g->n_rule * sizeof *citer);
    on = calloc(g->n_rule, 1);
    if (!idx || !low || !sstack || !cstack || !citer || !on) { oom(p); goto out; }
    memset(idx, 0xFF, (size_t)g->n_rule * sizeof *idx);
    uint32_t counter = 0, ssp = 0;
    for (uint32_t r0 = 0; r0 < g->n_rule; r0++) {
        if (idx[r0] != UINT32_MAX) continue;
        uint32_t csp = 0;
        cstack[csp] = r0;
        citer[csp++] = edge_first[r0];
        idx[r0] = low[r0] = counter++;
        sstack[ssp++] = r0;
        on[r0] = 1;
        while (csp) {
            const uint32_t v = cstack[csp - 1];
            if (citer[csp - 1] < edge_first[v + 1]) {
                const uint32_t w = edges[citer[csp - 1]++];
                if (idx[w] == UINT32_MAX) {
                    idx[w] = low[w] = counter++;
                    sstack[ssp++] = w;
                    on[w] = 1;
                    cstack[csp] = w;
                    citer[csp++] = edge_first[w];
                } else if (on[w] && idx[w] < low[v]) low[v] = idx[w];
                continue;
            }
            if (low[v] == idx[v]) {   /* v roots a component: its members get low = idx[v] */
                uint32_t w;
                do {
                    w = sstack[--ssp];
                    on[w] = 0;
                    low[w] = idx[v];
                } while (w != v);
            }
            csp--;
            if (csp && low[v] < low[cstack[csp - 1]]) low[cstack[csp - 1]] = low[v];
        }
    }
    for (uint32_t r = 0; r < g->n_rule; r++)
        for (uint32_t k = edge_first[r]; k < edge_first[r + 1]; k++)
            if (grows[k] && low[edges[k]] == low[r]) {
                const char *nm = g->rule[g->rule[r].owner].name;
                symbol *sym = lookup(p, nm, strlen(nm), 0);
                fail_at(p, sym ? sym->def : 0, "rule '%s' is left-recursive", nm);
                goto out;
            }
    rc = 0;
out:
    free(nullable);
    free(edge_first);
    free(edges);
    free(grows);
    free(idx);
    free(low);
    free(sstack);
    free(cstack);
    free(citer);
    free(on);
    return rc;
}

void qfit_grammar_free(qfit_grammar *g)
{
    if (!g) return;
    for (uint32_t r = 0; r < g->n_rule; r++) free(g->rule[r].name);
    free(g->el);
    free(g->alt);
    free(g->rule);
    free(g->cs);
    free(g->rng);
    free(g);
}

qfit_grammar *qfit_grammar_parse(const char *text, size_t len, char *err, size_t err_len)
{
    if (err && err_len) err[0] = 0;
    parser p = { .s = text, .n = len, .err = err, .err_len = err_len };
    if (!text && len) { fail_at(&p, 0, "no grammar text"); return NULL; }
    if (len > QFIT_GRAMMAR_MAX_TEXT) {
        fail_at(&p, 0, "the grammar is %zu bytes (at most %u)", len, QFIT_GRAMMAR_MAX_TEXT);
        return NULL;
    }
    if (!(p.g = calloc(1, sizeof *p.g))) { oom(&p); return NULL; }
    if (memchr(text, 0, len)) fail_at(&p, (size_t)((const char *)memchr(text, 0, len) - text), "NUL byte in the grammar");
    if (p.failed || parse_rules(&p) || check_rules(&p)) {
        free(p.sym);
        qfit_grammar_free(p.g);
        return NULL;
    }
    free(p.sym);
    return p.g;
}
