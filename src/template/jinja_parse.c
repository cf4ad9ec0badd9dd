/* Jinja engine: lexer and parser (template text -> syntax tree).
 * Internal to src/template: do not include from other modules.
 *
 * The lexer follows jinja2's lexer with trim_blocks=True and lstrip_blocks=True:
 *  - newlines are normalised to "\n" and one trailing newline of the template is dropped;
 *  - "{%-", "{{-", "{#-" strip all whitespace before the tag; "-%}", "-}}", "-#}" all after it;
 *  - trim_blocks: the first newline after "%}" or "#}" is removed ("+%}" keeps it);
 *  - lstrip_blocks: spaces/tabs from the start of a line up to "{%" or "{#" are removed
 *    ("{%+" keeps them); never before "{{";
 *  - {% raw %}...{% endraw %} is data, comments produce nothing.
 * The parser follows jinja2's grammar and operator precedence (parser.py):
 *   cond:  or ['if' or ['else' cond]]        or: and ('or' and)*    and: not ('and' not)*
 *   not:   'not' not | compare               compare: math1 (cmpop math1)*
 *   math1: concat (('+'|'-') concat)*        concat: math2 ('~' math2)*
 *   math2: pow (('*'|'/'|'//'|'%') pow)*     pow: unary ('**' unary)*
 *   unary: ('-'|'+') unary | primary postfix* ('|' filter | 'is' test | call)*
 */
#include "template/jinja.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    T_DATA, T_BLOCK_BEGIN, T_BLOCK_END, T_VAR_BEGIN, T_VAR_END,
    T_NAME, T_STRING, T_INT, T_FLOAT, T_OP, T_EOF,
} tok_type;

typedef struct {
    tok_type t;
    int line;
    const char *p; size_t n; /* text of names, operators, data */
    jv val;                  /* literal value of strings and numbers */
} tok;

typedef struct {
    jctx *x;
    tok *v; size_t n, cap;
    size_t pos;
    int depth;
} parser;

/* ------------------------------------------------------------------ lexer */

static void push_tok(parser *ps, tok t)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 256;
        tok *v = jx_alloc(ps->x, cap * sizeof *v);
        if (ps->n) memcpy(v, ps->v, ps->n * sizeof *v);
        ps->v = v; ps->cap = cap;
    }
    ps->v[ps->n++] = t;
}

static int count_nl(const char *p, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n; i++) c += p[i] == '\n';
    return c;
}

/* Length of the Python-whitespace run starting at p (bytes). */
static size_t ws_run(const char *p, const char *end)
{
    const char *q = p;
    while (q < end) {
        size_t adv;
        uint32_t c = ju_decode(q, (size_t)(end - q), &adv);
        if (!ju_isspace(c)) break;
        q += adv;
    }
    return (size_t)(q - p);
}

/* Bytes of trailing Python whitespace in [p, p+n) (str.rstrip). */
static size_t ws_tail(const char *p, size_t n)
{
    size_t keep = 0; /* byte length of the prefix up to the last non-space */
    for (size_t i = 0; i < n;) {
        size_t adv;
        uint32_t c = ju_decode(p + i, n - i, &adv);
        i += adv;
        if (!ju_isspace(c)) keep = i;
    }
    return n - keep;
}

/* Data before a tag, with "-" stripping or lstrip_blocks applied. */
static void emit_data(parser *ps, const char *p, size_t n, char sign, bool is_var,
                      bool line_starting, int line)
{
    if (sign == '-') {
        n -= ws_tail(p, n);
    } else if (sign != '+' && !is_var) {
        size_t l = n;
        while (l > 0 && p[l - 1] != '\n') l--;
        if ((l > 0 || line_starting) && l < n && ws_run(p + l, p + n) == n - l) n = l;
    }
    if (n) push_tok(ps, (tok){ .t = T_DATA, .line = line, .p = p, .n = n });
}

/* Matches a block end "+%}" | "-%}\s*" | "%}\n?" (or with '#' for comments) at p.
 * Returns its length, 0 when none. */
static size_t match_end(const char *p, const char *end, char c)
{
    if (end - p >= 3 && (p[0] == '+' || p[0] == '-') && p[1] == c && p[2] == '}') {
        if (p[0] == '+') return 3;
        return 3 + ws_run(p + 3, end);
    }
    if (end - p >= 2 && p[0] == c && p[1] == '}') return (end - p >= 3 && p[2] == '\n') ? 3 : 2;
    return 0;
}

/* "{%" sign? \s* word \s* ("-%}"\s* | "%}" [+ trim]) at p: returns the length or 0. */
static size_t match_word_tag(const char *p, const char *end, const char *word, bool trim,
                             char *sign)
{
    const char *q = p + 2;
    *sign = 0;
    if (q < end && (*q == '-' || *q == '+')) *sign = *q++;
    q += ws_run(q, end);
    size_t wl = strlen(word);
    if ((size_t)(end - q) < wl || memcmp(q, word, wl) != 0) return 0;
    q += wl;
    q += ws_run(q, end);
    if (!trim) { /* raw begin: "-%}\s*" | "%}" */
        if (end - q >= 3 && q[0] == '-' && q[1] == '%' && q[2] == '}') return (size_t)(q + 3 - p) + ws_run(q + 3, end);
        if (end - q >= 2 && q[0] == '%' && q[1] == '}') return (size_t)(q + 2 - p);
        return 0;
    }
    size_t e = match_end(q, end, '%');
    return e ? (size_t)(q - p) + e : 0;
}

static void lex_fail(parser *ps, int line, const char *msg)
{
    jx_fail(ps->x, line, "template syntax error: %s", msg);
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_name0(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_name(char c) { return is_name0(c) || is_digit(c); }

/* digits with single '_' separators: returns the length (0 when no digit) */
static size_t digits(const char *p, const char *end)
{
    const char *q = p;
    if (q >= end || !is_digit(*q)) return 0;
    while (q < end && is_digit(*q)) {
        q++;
        if (q + 1 < end && *q == '_' && is_digit(q[1])) q++;
    }
    return (size_t)(q - p);
}

static void copy_digits(char *dst, size_t cap, const char *p, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < cap; i++)
        if (p[i] != '_') dst[j++] = p[i];
    dst[j] = 0;
}

/* A string literal body with Python's unicode-escape rules. */
static jv lex_string(parser *ps, const char *p, size_t n, int line)
{
    jbuf b = { 0 };
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c != '\\' || i + 1 >= n) { jb_put(ps->x, &b, &p[i], 1); continue; }
        char e = p[++i];
        uint32_t cp = 0;
        int hex = 0;
        switch (e) {
        case 'n': jb_puts(ps->x, &b, "\n"); break;
        case 't': jb_puts(ps->x, &b, "\t"); break;
        case 'r': jb_puts(ps->x, &b, "\r"); break;
        case '\\': jb_puts(ps->x, &b, "\\"); break;
        case '\'': jb_puts(ps->x, &b, "'"); break;
        case '"': jb_puts(ps->x, &b, "\""); break;
        case 'a': jb_puts(ps->x, &b, "\a"); break;
        case 'b': jb_puts(ps->x, &b, "\b"); break;
        case 'f': jb_puts(ps->x, &b, "\f"); break;
        case 'v': jb_puts(ps->x, &b, "\v"); break;
        case '\n': break; /* line continuation */
        case 'x': hex = 2; break;
        case 'u': hex = 4; break;
        case 'U': hex = 8; break;
        default:
            if (e >= '0' && e <= '7') {
                int k = 0;
                while (k < 3 && i < n && p[i] >= '0' && p[i] <= '7') { cp = cp * 8 + (uint32_t)(p[i] - '0'); i++; k++; }
                i--;
                ju_encode(ps->x, &b, cp);
            } else {
                jb_put(ps->x, &b, &p[i - 1], 2); /* unknown escapes stay as written */
            }
        }
        if (hex) {
            for (int k = 0; k < hex; k++) {
                char h = (i + 1 + (size_t)k < n) ? p[i + 1 + (size_t)k] : 0;
                int d = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                      : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
                if (d < 0) lex_fail(ps, line, "truncated \\x/\\u escape in a string literal");
                cp = cp * 16 + (uint32_t)d;
            }
            if (cp > 0x10FFFF) lex_fail(ps, line, "\\U escape out of range in a string literal");
            i += (size_t)hex;
            ju_encode(ps->x, &b, cp);
        }
    }
    return jv_str(b.p ? b.p : "", b.n);
}

/* Tokens inside {% %} or {{ }} up to the end delimiter. Returns the position after it. */
static const char *lex_tag(parser *ps, const char *p, const char *end, bool block, int *line,
                           bool *line_starting)
{
    int balance = 0;
    for (;;) {
        if (p >= end) lex_fail(ps, *line, block ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'");
        if (balance == 0) {
            size_t e = 0;
            if (block) e = match_end(p, end, '%');
            else if (end - p >= 3 && p[0] == '-' && p[1] == '}' && p[2] == '}') e = 3 + ws_run(p + 3, end);
            else if (end - p >= 2 && p[0] == '}' && p[1] == '}') e = 2;
            if (e) {
                push_tok(ps, (tok){ .t = block ? T_BLOCK_END : T_VAR_END, .line = *line });
                *line += count_nl(p, e);
                *line_starting = p[e - 1] == '\n';
                return p + e;
            }
        }
        size_t w = ws_run(p, end);
        if (w) { *line += count_nl(p, w); p += w; continue; }
        char c = *p;
        tok t = { .line = *line, .p = p };
        if (is_digit(c)) {
            /* float: digits ('.' digits)? (e [+-]? digits)?, at least one of both parts */
            size_t n = digits(p, end);
            const char *q = p + n;
            bool is_float = false;
            if (q < end && *q == '.' && digits(q + 1, end)) { q += 1 + digits(q + 1, end); is_float = true; }
            if (q < end && (*q == 'e' || *q == 'E')) {
                const char *r = q + 1;
                if (r < end && (*r == '+' || *r == '-')) r++;
                size_t dn = digits(r, end);
                if (dn) { q = r + dn; is_float = true; }
            }
            char buf[128];
            if (is_float) {
                copy_digits(buf, sizeof buf, p, (size_t)(q - p));
                t.t = T_FLOAT; t.val = jv_float(strtod(buf, NULL));
            } else {
                int base = 10;
                const char *r = p;
                if (c == '0' && q < end && (q[0] == 'x' || q[0] == 'X' || q[0] == 'o' || q[0] == 'O' || q[0] == 'b' || q[0] == 'B')) {
                    base = (q[0] | 32) == 'x' ? 16 : (q[0] | 32) == 'o' ? 8 : 2;
                    r = q + 1;
                    q = r;
                    while (q < end && (is_name(*q))) q++;
                }
                copy_digits(buf, sizeof buf, r, (size_t)(q - r));
                errno = 0;
                char *ep;
                long long v = strtoll(buf, &ep, base);
                if (errno || *ep || !buf[0]) lex_fail(ps, *line, "integer literal out of range or malformed");
                t.t = T_INT; t.val = jv_int(v);
            }
            t.n = (size_t)(q - p);
            p = q;
        } else if (is_name0(c)) {
            const char *q = p;
            while (q < end && is_name(*q)) q++;
            t.t = T_NAME; t.n = (size_t)(q - p);
            p = q;
        } else if (c == '\'' || c == '"') {
            const char *q = p + 1;
            while (q < end && *q != c) { if (*q == '\\') q++; q++; }
            if (q >= end) lex_fail(ps, *line, "unexpected end of string literal");
            t.t = T_STRING; t.val = lex_string(ps, p + 1, (size_t)(q - p - 1), *line);
            t.n = (size_t)(q + 1 - p);
            *line += count_nl(p, t.n);
            p = q + 1;
        } else {
            static const char *const ops2[] = { "//", "**", "==", "!=", ">=", "<=", NULL };
            t.t = T_OP; t.n = 1;
            for (int i = 0; ops2[i]; i++)
                if (end - p >= 2 && p[0] == ops2[i][0] && p[1] == ops2[i][1]) t.n = 2;
            if (t.n == 1 && !strchr("+-/*%~[](){}><=.:|,;", c)) {
                char msg[64];
                snprintf(msg, sizeof msg, "unexpected char '%c'", c);
                lex_fail(ps, *line, msg);
            }
            if (c == '(' || c == '[' || c == '{') balance++;
            if (c == ')' || c == ']' || c == '}') {
                if (balance == 0) lex_fail(ps, *line, "unexpected closing bracket");
                balance--;
            }
            p += t.n;
        }
        push_tok(ps, t);
    }
}

static void lex(parser *ps, const char *src, size_t len)
{
    /* newline normalisation and the dropped trailing newline (keep_trailing_newline=False) */
    char *s = jx_alloc(ps->x, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') { s[n++] = '\n'; if (i + 1 < len && src[i + 1] == '\n') i++; }
        else s[n++] = src[i];
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;
    const char *p = s, *end = s + n;
    int line = 1;
    bool line_starting = true;
    while (p < end) {
        const char *tag = NULL;
        for (const char *q = p; q + 1 < end; q++)
            if (q[0] == '{' && (q[1] == '%' || q[1] == '{' || q[1] == '#')) { tag = q; break; }
        if (!tag) { push_tok(ps, (tok){ .t = T_DATA, .line = line, .p = p, .n = (size_t)(end - p) }); break; }
        char kind = tag[1];
        char sign = (tag + 2 < end && (tag[2] == '-' || tag[2] == '+')) ? tag[2] : 0;
        int data_line = line;
        line += count_nl(p, (size_t)(tag - p));
        char rsign;
        size_t raw = kind == '%' ? match_word_tag(tag, end, "raw", false, &rsign) : 0;
        emit_data(ps, p, (size_t)(tag - p), sign, kind == '{', line_starting, data_line);
        if (raw) {
            const char *body = tag + raw;
            line_starting = tag[raw - 1] == '\n';
            line += count_nl(tag, raw);
            for (const char *q = body;; q++) {
                if (q + 1 >= end) lex_fail(ps, line, "missing end of raw directive");
                if (q[0] != '{' || q[1] != '%') continue;
                char esign;
                size_t e = match_word_tag(q, end, "endraw", true, &esign);
                if (!e) continue;
                emit_data(ps, body, (size_t)(q - body), esign, false, line_starting, line);
                line += count_nl(body, (size_t)(q + e - body));
                line_starting = q[e - 1] == '\n';
                p = q + e;
                break;
            }
            continue;
        }
        const char *q = tag + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            const char *c = q;
            size_t e = 0;
            for (; c + 1 < end; c++) {
                if (c[0] == '#' && c[1] == '}') {
                    if (c > q && (c[-1] == '-' || c[-1] == '+')) c--;
                    e = match_end(c, end, '#');
                    break;
                }
            }
            if (!e) lex_fail(ps, line, "missing end of comment tag");
            line += count_nl(tag, (size_t)(c + e - tag));
            line_starting = c[e - 1] == '\n';
            p = c + e;
            continue;
        }
        push_tok(ps, (tok){ .t = kind == '%' ? T_BLOCK_BEGIN : T_VAR_BEGIN, .line = line });
        line_starting = false;
        p = lex_tag(ps, q, end, kind == '%', &line, &line_starting);
    }
    push_tok(ps, (tok){ .t = T_EOF, .line = line });
}

/* ------------------------------------------------------------------ parser helpers */

static tok *cur(parser *ps) { return &ps->v[ps->pos]; }
static tok *peek(parser *ps, size_t k)
{
    size_t i = ps->pos + k;
    return &ps->v[i < ps->n ? i : ps->n - 1];
}
static bool tok_is(const tok *t, tok_type ty, const char *s)
{
    return t->t == ty && (!s || (t->n == strlen(s) && memcmp(t->p, s, t->n) == 0));
}
static bool at_op(parser *ps, const char *s) { return tok_is(cur(ps), T_OP, s); }
static bool at_name(parser *ps, const char *s) { return tok_is(cur(ps), T_NAME, s); }

static const char *tok_desc(const tok *t)
{
    switch (t->t) {
    case T_DATA: return "template data";
    case T_BLOCK_BEGIN: return "'{%'";
    case T_BLOCK_END: return "end of statement block";
    case T_VAR_BEGIN: return "'{{'";
    case T_VAR_END: return "end of print statement";
    case T_NAME: return "name";
    case T_STRING: return "string";
    case T_INT: return "integer";
    case T_FLOAT: return "float";
    case T_OP: return "operator";
    default: return "end of template";
    }
}

static _Noreturn void syntax(parser *ps, const char *what)
{
    tok *t = cur(ps);
    if (t->t == T_NAME || t->t == T_OP)
        jx_fail(ps->x, t->line, "template syntax error: %s, got '%.*s'", what, (int)t->n, t->p);
    jx_fail(ps->x, t->line, "template syntax error: %s, got %s", what, tok_desc(t));
}

static void expect_op(parser *ps, const char *s)
{
    if (!at_op(ps, s)) {
        char m[64];
        snprintf(m, sizeof m, "expected '%s'", s);
        syntax(ps, m);
    }
    ps->pos++;
}

static const char *expect_name(parser *ps)
{
    if (cur(ps)->t != T_NAME) syntax(ps, "expected a name");
    tok *t = &ps->v[ps->pos++];
    return jx_strdup(ps->x, t->p, t->n);
}

static void expect_block_end(parser *ps)
{
    if (cur(ps)->t != T_BLOCK_END) syntax(ps, "expected end of statement block");
    ps->pos++;
}

static jnode *mk(parser *ps, jnode_kind k, int line)
{
    jnode *n = jx_alloc(ps->x, sizeof *n);
    memset(n, 0, sizeof *n);
    n->kind = k;
    n->line = line;
    return n;
}

/* Growable node list; the arena keeps the abandoned smaller arrays (they are small). */
static void nodes_push(parser *ps, jnodes *l, jnode *n, size_t *cap)
{
    if (l->n == *cap) {
        size_t c = *cap ? *cap * 2 : 4;
        jnode **v = jx_alloc(ps->x, c * sizeof *v);
        if (l->n) memcpy(v, l->v, l->n * sizeof *v);
        l->v = v; *cap = c;
    }
    l->v[l->n++] = n;
}

static void enter(parser *ps)
{
    if (++ps->depth > JINJA_MAX_DEPTH)
        jx_fail(ps->x, cur(ps)->line, "template too deeply nested (more than %d levels)", JINJA_MAX_DEPTH);
}

/* ------------------------------------------------------------------ expressions */

static jnode *parse_expr(parser *ps, bool with_cond);
static jnode *parse_unary(parser *ps, bool with_filter);
static jnode *parse_or(parser *ps);

/* (args) after '(' was consumed is not the convention: this consumes '(' ... ')'. */
static void parse_call_args(parser *ps, jnode *n)
{
    expect_op(ps, "(");
    size_t cap1 = 0, cap2 = 0, ncap = 0;
    while (!at_op(ps, ")")) {
        if (n->args.n + n->args2.n) expect_op(ps, ",");
        if (at_op(ps, ")")) break;
        if (at_op(ps, "*") || at_op(ps, "**")) syntax(ps, "*args/**kwargs in calls are not supported");
        if (cur(ps)->t == T_NAME && tok_is(peek(ps, 1), T_OP, "=")) {
            const char *k = expect_name(ps);
            ps->pos++;
            if (n->args2.n == ncap) {
                size_t c = ncap ? ncap * 2 : 4;
                const char **nv = jx_alloc(ps->x, c * sizeof *nv);
                if (n->args2.n) memcpy(nv, n->names, n->args2.n * sizeof *nv);
                n->names = nv; ncap = c;
            }
            n->names[n->args2.n] = k;
            nodes_push(ps, &n->args2, parse_expr(ps, true), &cap2);
        } else {
            if (n->args2.n) syntax(ps, "positional argument after keyword argument");
            nodes_push(ps, &n->args, parse_expr(ps, true), &cap1);
        }
    }
    ps->pos++;
}

static jnode *parse_primary(parser *ps)
{
    enter(ps);
    tok *t = cur(ps);
    jnode *n;
    if (t->t == T_NAME) {
        ps->pos++;
        n = mk(ps, N_LIT, t->line);
        if (tok_is(t, T_NAME, "true") || tok_is(t, T_NAME, "True")) n->lit = jv_bool(true);
        else if (tok_is(t, T_NAME, "false") || tok_is(t, T_NAME, "False")) n->lit = jv_bool(false);
        else if (tok_is(t, T_NAME, "none") || tok_is(t, T_NAME, "None")) n->lit = jv_none();
        else { n->kind = N_NAME; n->name = jx_strdup(ps->x, t->p, t->n); }
    } else if (t->t == T_STRING) {
        ps->pos++;
        n = mk(ps, N_LIT, t->line);
        n->lit = t->val;
        if (cur(ps)->t == T_STRING) { /* adjacent literals concatenate */
            jbuf b = { 0 };
            jb_put(ps->x, &b, t->val.u.s.p, t->val.u.s.n);
            while (cur(ps)->t == T_STRING) {
                jb_put(ps->x, &b, cur(ps)->val.u.s.p, cur(ps)->val.u.s.n);
                ps->pos++;
            }
            n->lit = jv_str(b.p, b.n);
        }
    } else if (t->t == T_INT || t->t == T_FLOAT) {
        ps->pos++;
        n = mk(ps, N_LIT, t->line);
        n->lit = t->val;
    } else if (tok_is(t, T_OP, "(")) {
        ps->pos++;
        if (at_op(ps, ")")) { ps->pos++; n = mk(ps, N_TUPLE, t->line); }
        else {
            n = parse_expr(ps, true);
            if (at_op(ps, ",")) {
                jnode *tu = mk(ps, N_TUPLE, t->line);
                size_t cap = 0;
                nodes_push(ps, &tu->args, n, &cap);
                while (at_op(ps, ",")) {
                    ps->pos++;
                    if (at_op(ps, ")")) break;
                    nodes_push(ps, &tu->args, parse_expr(ps, true), &cap);
                }
                n = tu;
            }
            expect_op(ps, ")");
        }
    } else if (tok_is(t, T_OP, "[")) {
        ps->pos++;
        n = mk(ps, N_LIST, t->line);
        size_t cap = 0;
        while (!at_op(ps, "]")) {
            if (n->args.n) expect_op(ps, ",");
            if (at_op(ps, "]")) break;
            nodes_push(ps, &n->args, parse_expr(ps, true), &cap);
        }
        ps->pos++;
    } else if (tok_is(t, T_OP, "{")) {
        ps->pos++;
        n = mk(ps, N_DICT, t->line);
        size_t cap1 = 0, cap2 = 0;
        while (!at_op(ps, "}")) {
            if (n->args.n) expect_op(ps, ",");
            if (at_op(ps, "}")) break;
            nodes_push(ps, &n->args, parse_expr(ps, true), &cap1);
            expect_op(ps, ":");
            nodes_push(ps, &n->args2, parse_expr(ps, true), &cap2);
        }
        ps->pos++;
    } else {
        syntax(ps, "unexpected token in expression");
    }
    ps->depth--;
    return n;
}

static jnode *parse_subscript_part(parser *ps)
{
    if (at_op(ps, ":") || at_op(ps, "]") || at_op(ps, ",")) return NULL;
    return parse_expr(ps, true);
}

static jnode *parse_postfix(parser *ps, jnode *n)
{
    for (;;) {
        tok *t = cur(ps);
        if (tok_is(t, T_OP, ".")) {
            ps->pos++;
            tok *a = cur(ps);
            if (a->t == T_NAME) {
                jnode *m = mk(ps, N_ATTR, a->line);
                m->a = n; m->name = expect_name(ps);
                n = m;
            } else if (a->t == T_INT) {
                jnode *m = mk(ps, N_ITEM, a->line);
                m->a = n; m->b = mk(ps, N_LIT, a->line); m->b->lit = a->val;
                ps->pos++;
                n = m;
            } else {
                syntax(ps, "expected name or number after '.'");
            }
        } else if (tok_is(t, T_OP, "[")) {
            ps->pos++;
            jnode *start = parse_subscript_part(ps);
            if (at_op(ps, ":")) {
                jnode *m = mk(ps, N_SLICE, t->line);
                m->a = n; m->b = start;
                ps->pos++;
                m->c = parse_subscript_part(ps);
                if (at_op(ps, ":")) { ps->pos++; m->d = parse_subscript_part(ps); }
                n = m;
            } else {
                if (!start) syntax(ps, "expected subscript expression");
                jnode *m = mk(ps, N_ITEM, t->line);
                m->a = n; m->b = start;
                n = m;
            }
            expect_op(ps, "]");
        } else if (tok_is(t, T_OP, "(")) {
            jnode *m = mk(ps, N_CALL, t->line);
            m->a = n;
            parse_call_args(ps, m);
            n = m;
        } else {
            return n;
        }
    }
}

static const char *dotted_name(parser *ps)
{
    const char *name = expect_name(ps);
    while (at_op(ps, ".")) {
        ps->pos++;
        const char *more = expect_name(ps);
        size_t l1 = strlen(name), l2 = strlen(more);
        char *s = jx_alloc(ps->x, l1 + l2 + 2);
        memcpy(s, name, l1); s[l1] = '.'; memcpy(s + l1 + 1, more, l2 + 1);
        name = s;
    }
    return name;
}

/* One "|name(args)" applied to in (NULL for filter blocks: filled at run time). */
static jnode *parse_filter(parser *ps, jnode *in)
{
    tok *t = &ps->v[ps->pos++]; /* the '|' */
    jnode *f = mk(ps, N_FILTER, t->line);
    f->a = in;
    f->name = dotted_name(ps);
    if (at_op(ps, "(")) parse_call_args(ps, f);
    return f;
}

static jnode *parse_filter_expr(parser *ps, jnode *n)
{
    for (;;) {
        if (at_op(ps, "|")) {
            n = parse_filter(ps, n);
        } else if (at_name(ps, "is")) {
            jnode *t = mk(ps, N_TEST, cur(ps)->line);
            ps->pos++;
            if (at_name(ps, "not")) { ps->pos++; t->op = 1; }
            t->a = n;
            t->name = dotted_name(ps);
            tok *c = cur(ps);
            if (at_op(ps, "(")) {
                parse_call_args(ps, t);
            } else if ((c->t == T_NAME || c->t == T_STRING || c->t == T_INT || c->t == T_FLOAT ||
                        at_op(ps, "(") || at_op(ps, "[") || at_op(ps, "{")) &&
                       !at_name(ps, "else") && !at_name(ps, "or") && !at_name(ps, "and")) {
                if (at_name(ps, "is")) syntax(ps, "you cannot chain multiple tests with is");
                jnode *arg = parse_postfix(ps, parse_primary(ps));
                size_t cap = 0;
                nodes_push(ps, &t->args, arg, &cap);
            }
            n = t;
        } else if (at_op(ps, "(")) {
            jnode *m = mk(ps, N_CALL, cur(ps)->line);
            m->a = n;
            parse_call_args(ps, m);
            n = m;
        } else {
            return n;
        }
    }
}

static jnode *parse_unary(parser *ps, bool with_filter)
{
    enter(ps);
    tok *t = cur(ps);
    jnode *n;
    if (at_op(ps, "-") || at_op(ps, "+")) {
        ps->pos++;
        n = mk(ps, t->p[0] == '-' ? N_NEG : N_POS, t->line);
        n->a = parse_unary(ps, false);
    } else {
        n = parse_primary(ps);
    }
    n = parse_postfix(ps, n);
    if (with_filter) n = parse_filter_expr(ps, n);
    ps->depth--;
    return n;
}

static jnode *bin(parser *ps, int op, jnode *a, jnode *b, int line)
{
    jnode *n = mk(ps, N_BIN, line);
    n->op = op; n->a = a; n->b = b;
    return n;
}

static jnode *parse_pow(parser *ps)
{
    jnode *n = parse_unary(ps, true);
    while (at_op(ps, "**")) {
        int line = cur(ps)->line;
        ps->pos++;
        n = bin(ps, 'p', n, parse_unary(ps, true), line);
    }
    return n;
}

static jnode *parse_math2(parser *ps)
{
    jnode *n = parse_pow(ps);
    for (;;) {
        int op = at_op(ps, "*") ? '*' : at_op(ps, "/") ? '/' : at_op(ps, "//") ? 'f' : at_op(ps, "%") ? '%' : 0;
        if (!op) return n;
        int line = cur(ps)->line;
        ps->pos++;
        n = bin(ps, op, n, parse_pow(ps), line);
    }
}

static jnode *parse_concat(parser *ps)
{
    jnode *n = parse_math2(ps);
    while (at_op(ps, "~")) {
        int line = cur(ps)->line;
        ps->pos++;
        n = bin(ps, '~', n, parse_math2(ps), line);
    }
    return n;
}

static jnode *parse_math1(parser *ps)
{
    jnode *n = parse_concat(ps);
    for (;;) {
        int op = at_op(ps, "+") ? '+' : at_op(ps, "-") ? '-' : 0;
        if (!op) return n;
        int line = cur(ps)->line;
        ps->pos++;
        n = bin(ps, op, n, parse_concat(ps), line);
    }
}

/* comparison operators: 'e' ==, 'n' !=, '<', '>', 'l' <=, 'g' >=, 'i' in, 'I' not in */
static jnode *parse_compare(parser *ps)
{
    jnode *first = parse_math1(ps);
    jnode *n = NULL;
    size_t cap = 0, opcap = 0;
    for (;;) {
        int op = at_op(ps, "==") ? 'e' : at_op(ps, "!=") ? 'n' : at_op(ps, "<") ? '<'
               : at_op(ps, ">") ? '>' : at_op(ps, "<=") ? 'l' : at_op(ps, ">=") ? 'g'
               : at_name(ps, "in") ? 'i' : 0;
        if (!op && at_name(ps, "not") && tok_is(peek(ps, 1), T_NAME, "in")) { op = 'I'; ps->pos++; }
        if (!op) break;
        int line = cur(ps)->line;
        ps->pos++;
        if (!n) {
            n = mk(ps, N_CMP, line);
            n->a = first;
        }
        if (n->args.n == opcap) {
            size_t c = opcap ? opcap * 2 : 4;
            int *o = jx_alloc(ps->x, c * sizeof *o);
            if (n->args.n) memcpy(o, n->ops, n->args.n * sizeof *o);
            n->ops = o; opcap = c;
        }
        n->ops[n->args.n] = op;
        nodes_push(ps, &n->args, parse_math1(ps), &cap);
    }
    return n ? n : first;
}

static jnode *parse_not(parser *ps)
{
    if (at_name(ps, "not")) {
        enter(ps);
        jnode *n = mk(ps, N_NOT, cur(ps)->line);
        ps->pos++;
        n->a = parse_not(ps);
        ps->depth--;
        return n;
    }
    return parse_compare(ps);
}

static jnode *parse_and(parser *ps)
{
    jnode *n = parse_not(ps);
    while (at_name(ps, "and")) {
        jnode *m = mk(ps, N_AND, cur(ps)->line);
        ps->pos++;
        m->a = n; m->b = parse_not(ps);
        n = m;
    }
    return n;
}

static jnode *parse_or(parser *ps)
{
    jnode *n = parse_and(ps);
    while (at_name(ps, "or")) {
        jnode *m = mk(ps, N_OR, cur(ps)->line);
        ps->pos++;
        m->a = n; m->b = parse_and(ps);
        n = m;
    }
    return n;
}

static jnode *parse_expr(parser *ps, bool with_cond)
{
    enter(ps);
    jnode *n = parse_or(ps);
    while (with_cond && at_name(ps, "if")) {
        jnode *c = mk(ps, N_COND, cur(ps)->line);
        ps->pos++;
        c->a = n;
        c->b = parse_or(ps);
        if (at_name(ps, "else")) { ps->pos++; c->c = parse_expr(ps, true); }
        n = c;
    }
    ps->depth--;
    return n;
}

/* expr (',' expr)* as a tuple when there is a comma (for/set/with targets and values) */
static jnode *parse_tuple(parser *ps, bool with_cond, bool names_only)
{
    int line = cur(ps)->line;
    jnode *first;
    if (names_only) {
        first = mk(ps, N_NAME, line);
        first->name = expect_name(ps);
        if (at_op(ps, ".")) { /* namespace attribute target: ns.attr */
            ps->pos++;
            jnode *m = mk(ps, N_ATTR, line);
            m->a = first; m->name = expect_name(ps);
            first = m;
        }
    } else {
        first = parse_expr(ps, with_cond);
    }
    if (!at_op(ps, ",")) return first;
    jnode *t = mk(ps, N_TUPLE, line);
    size_t cap = 0;
    nodes_push(ps, &t->args, first, &cap);
    while (at_op(ps, ",")) {
        ps->pos++;
        if (cur(ps)->t == T_BLOCK_END || at_op(ps, "=") || at_name(ps, "in")) break;
        jnode *e;
        if (names_only) { e = mk(ps, N_NAME, cur(ps)->line); e->name = expect_name(ps); }
        else e = parse_expr(ps, with_cond);
        nodes_push(ps, &t->args, e, &cap);
    }
    return t;
}

/* ------------------------------------------------------------------ statements */

static jnodes subparse(parser *ps, const char *const *ends);

static bool at_end_tag(parser *ps, const char *const *ends)
{
    if (cur(ps)->t != T_BLOCK_BEGIN) return false;
    tok *t = peek(ps, 1);
    for (int i = 0; ends && ends[i]; i++)
        if (tok_is(t, T_NAME, ends[i])) return true;
    return false;
}

/* Consumes "{% name" of an end tag already seen by at_end_tag. */
static void take_end_tag(parser *ps, const char *name)
{
    ps->pos += 2;
    (void)name;
}

static void body_until(parser *ps, jnodes *body, const char *const *ends)
{
    *body = subparse(ps, ends);
    if (!at_end_tag(ps, ends)) {
        char m[96];
        snprintf(m, sizeof m, "unexpected end of template, expected '%s'", ends[0]);
        jx_fail(ps->x, cur(ps)->line, "template syntax error: %s", m);
    }
}

static jnode *parse_if(parser *ps, int line)
{
    static const char *const ends[] = { "endif", "elif", "else", NULL };
    jnode *n = mk(ps, N_IF, line);
    n->a = parse_tuple(ps, false, false);
    expect_block_end(ps);
    body_until(ps, &n->args, ends);
    tok *t = peek(ps, 1);
    int l2 = t->line;
    if (tok_is(t, T_NAME, "elif")) {
        take_end_tag(ps, "elif");
        jnode *e = parse_if(ps, l2);
        size_t cap = 0;
        nodes_push(ps, &n->args2, e, &cap);
        return n; /* the nested if consumed endif */
    }
    if (tok_is(t, T_NAME, "else")) {
        static const char *const ends2[] = { "endif", NULL };
        take_end_tag(ps, "else");
        expect_block_end(ps);
        body_until(ps, &n->args2, ends2);
    }
    take_end_tag(ps, "endif");
    expect_block_end(ps);
    return n;
}

static jnode *parse_for(parser *ps, int line)
{
    static const char *const ends[] = { "endfor", "else", NULL };
    jnode *n = mk(ps, N_FOR, line);
    n->a = parse_tuple(ps, false, true);
    if (!at_name(ps, "in")) syntax(ps, "expected 'in'");
    ps->pos++;
    n->b = parse_tuple(ps, false, false);
    if (at_name(ps, "if")) { ps->pos++; n->c = parse_expr(ps, true); }
    if (at_name(ps, "recursive")) { ps->pos++; n->op = 1; }
    expect_block_end(ps);
    body_until(ps, &n->args, ends);
    if (tok_is(peek(ps, 1), T_NAME, "else")) {
        static const char *const ends2[] = { "endfor", NULL };
        take_end_tag(ps, "else");
        expect_block_end(ps);
        body_until(ps, &n->args2, ends2);
    }
    take_end_tag(ps, "endfor");
    expect_block_end(ps);
    return n;
}

/* Filters of a filter block / block set: a chain of N_FILTER with the innermost a == NULL. */
static jnode *parse_filter_chain(parser *ps)
{
    jnode *f = NULL;
    for (;;) {
        tok *t = cur(ps);
        jnode *m = mk(ps, N_FILTER, t->line);
        m->a = f;
        m->name = dotted_name(ps);
        if (at_op(ps, "(")) parse_call_args(ps, m);
        f = m;
        if (!at_op(ps, "|")) return f;
        ps->pos++;
    }
}

static jnode *parse_set(parser *ps, int line)
{
    jnode *target = parse_tuple(ps, false, true);
    if (at_op(ps, "=")) {
        ps->pos++;
        jnode *n = mk(ps, N_SET, line);
        n->a = target;
        n->b = parse_tuple(ps, true, false);
        expect_block_end(ps);
        return n;
    }
    static const char *const ends[] = { "endset", NULL };
    jnode *n = mk(ps, N_SETBLOCK, line);
    n->a = target;
    if (at_op(ps, "|")) { ps->pos++; n->c = parse_filter_chain(ps); }
    expect_block_end(ps);
    body_until(ps, &n->args, ends);
    take_end_tag(ps, "endset");
    expect_block_end(ps);
    return n;
}

/* "(a, b=default, ...)" of a macro or call block into names/args2 (default or NULL) */
static void parse_signature(parser *ps, jnode *n)
{
    expect_op(ps, "(");
    size_t cap = 0, ncap = 0;
    while (!at_op(ps, ")")) {
        if (n->args2.n) expect_op(ps, ",");
        const char *name = expect_name(ps);
        jnode *def = NULL;
        if (at_op(ps, "=")) { ps->pos++; def = parse_expr(ps, true); }
        if (n->args2.n == ncap) {
            size_t c = ncap ? ncap * 2 : 4;
            const char **nv = jx_alloc(ps->x, c * sizeof *nv);
            if (n->args2.n) memcpy(nv, n->names, n->args2.n * sizeof *nv);
            n->names = nv; ncap = c;
        }
        n->names[n->args2.n] = name;
        nodes_push(ps, &n->args2, def, &cap);
    }
    ps->pos++;
}

static jnode *parse_statement(parser *ps)
{
    tok *b = cur(ps); /* T_BLOCK_BEGIN */
    ps->pos++;
    tok *t = cur(ps);
    int line = t->line;
    if (t->t != T_NAME) syntax(ps, "tag name expected");
    ps->pos++;
    enter(ps);
    jnode *n = NULL;
    if (tok_is(t, T_NAME, "if")) n = parse_if(ps, line);
    else if (tok_is(t, T_NAME, "for")) n = parse_for(ps, line);
    else if (tok_is(t, T_NAME, "set")) n = parse_set(ps, line);
    else if (tok_is(t, T_NAME, "break") || tok_is(t, T_NAME, "continue")) {
        n = mk(ps, t->p[0] == 'b' ? N_BREAK : N_CONTINUE, line);
        expect_block_end(ps);
    } else if (tok_is(t, T_NAME, "macro")) {
        static const char *const ends[] = { "endmacro", NULL };
        n = mk(ps, N_MACRO, line);
        n->name = expect_name(ps);
        parse_signature(ps, n);
        expect_block_end(ps);
        body_until(ps, &n->args, ends);
        take_end_tag(ps, "endmacro");
        if (cur(ps)->t == T_NAME) ps->pos++; /* {% endmacro name %} */
        expect_block_end(ps);
    } else if (tok_is(t, T_NAME, "call")) {
        static const char *const ends[] = { "endcall", NULL };
        n = mk(ps, N_CALLBLOCK, line);
        if (at_op(ps, "(")) parse_signature(ps, n);
        n->a = parse_expr(ps, true);
        if (n->a->kind != N_CALL) syntax(ps, "expected call");
        expect_block_end(ps);
        body_until(ps, &n->args, ends);
        take_end_tag(ps, "endcall");
        expect_block_end(ps);
    } else if (tok_is(t, T_NAME, "filter")) {
        static const char *const ends[] = { "endfilter", NULL };
        n = mk(ps, N_FILTERBLOCK, line);
        n->c = parse_filter_chain(ps);
        expect_block_end(ps);
        body_until(ps, &n->args, ends);
        take_end_tag(ps, "endfilter");
        expect_block_end(ps);
    } else if (tok_is(t, T_NAME, "with")) {
        static const char *const ends[] = { "endwith", NULL };
        n = mk(ps, N_WITH, line);
        size_t cap1 = 0, cap2 = 0;
        while (cur(ps)->t != T_BLOCK_END) {
            if (n->args2.n) expect_op(ps, ",");
            jnode *tg = parse_tuple(ps, false, true);
            expect_op(ps, "=");
            nodes_push(ps, &n->args2, tg, &cap1);
            nodes_push(ps, &n->args2, parse_expr(ps, true), &cap2);
        }
        /* args2 holds target, value pairs interleaved; args the body */
        (void)cap2;
        expect_block_end(ps);
        body_until(ps, &n->args, ends);
        take_end_tag(ps, "endwith");
        expect_block_end(ps);
    } else {
        (void)b;
        jx_fail(ps->x, line, "template syntax error: unknown or unsupported tag '%.*s'", (int)t->n, t->p);
    }
    ps->depth--;
    return n;
}

static jnodes subparse(parser *ps, const char *const *ends)
{
    jnodes body = { 0 };
    size_t cap = 0;
    for (;;) {
        tok *t = cur(ps);
        if (t->t == T_EOF) return body;
        if (t->t == T_DATA) {
            jnode *n = mk(ps, N_TEXT, t->line);
            n->lit = jv_str(t->p, t->n);
            nodes_push(ps, &body, n, &cap);
            ps->pos++;
        } else if (t->t == T_VAR_BEGIN) {
            ps->pos++;
            jnode *n = mk(ps, N_OUTPUT, t->line);
            n->a = parse_tuple(ps, true, false);
            if (cur(ps)->t != T_VAR_END) syntax(ps, "expected end of print statement");
            ps->pos++;
            nodes_push(ps, &body, n, &cap);
        } else if (t->t == T_BLOCK_BEGIN) {
            if (at_end_tag(ps, ends)) return body;
            tok *name = peek(ps, 1);
            if (name->t == T_NAME && name->n > 3 && !memcmp(name->p, "end", 3))
                jx_fail(ps->x, name->line, "template syntax error: unexpected '%.*s'", (int)name->n, name->p);
            if (tok_is(name, T_NAME, "elif") || tok_is(name, T_NAME, "else"))
                jx_fail(ps->x, name->line, "template syntax error: unexpected '%.*s'", (int)name->n, name->p);
            nodes_push(ps, &body, parse_statement(ps), &cap);
        } else {
            syntax(ps, "unexpected token");
        }
    }
}

jnodes jinja_parse(jctx *x, const char *src, size_t len)
{
    parser ps = { .x = x };
    lex(&ps, src, len);
    jnodes body = subparse(&ps, NULL);
    if (cur(&ps)->t != T_EOF) syntax(&ps, "unexpected token");
    return body;
}
