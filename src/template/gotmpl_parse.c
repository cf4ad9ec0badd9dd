/* Go text/template: lexer and parser (internal to src/template).
 *
 * Follows Go's text/template/parse: "{{" and "}}" delimit actions; "{{- " trims the white space
 * (space, tab, CR, LF) before the action and " -}}" the white space after it; "{{" followed by
 * slash-star ... star-slash "}}" is a comment. Actions hold keywords (if/else/end/range/with/
 * break/continue), pipelines of commands separated by "|", declarations "$x :=" and
 * assignments "$x =". Like Go, function names and variables are checked while parsing;
 * {{define}}/{{template}}/{{block}} (named templates) are refused because no Ollama chat
 * template uses them. Errors are reported as "template:LINE:COL: message". Nesting depth is
 * bounded (GT_MAX_NESTING).
 */
#include "template/gotmpl_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ arena */

struct gt_arena_block {
    gt_arena_block *next;
    size_t          size, used;
    max_align_t     data[];
};

void *gt_alloc(gt_arena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0) n = sizeof(max_align_t);
    if (a->limit && (n > a->limit || a->used > a->limit - n)) return NULL;
    gt_arena_block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > 65536 ? n : 65536;
        b = malloc(sizeof(*b) + size);
        if (!b) return NULL;
        b->size = size;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

char *gt_strndup(gt_arena *a, const char *s, size_t n)
{
    char *p = gt_alloc(a, n + 1);
    if (p && n) memcpy(p, s, n);
    return p;
}

void gt_arena_free(gt_arena *a)
{
    for (gt_arena_block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head = NULL;
    a->used = 0;
}

void gt_line_col(const char *src, size_t pos, int *line, int *col)
{
    int l = 1;
    size_t start = 0;
    for (size_t i = 0; i < pos && src[i]; i++)
        if (src[i] == '\n') {
            l++;
            start = i + 1;
        }
    *line = l;
    *col = (int)(pos - start) + 1;
}

/* ------------------------------------------------------------------ lexer */

typedef enum {
    T_EOF, T_TEXT, T_LEFT, T_RIGHT, T_SPACE, T_FIELD, T_DOT, T_VAR, T_IDENT, T_BOOL, T_NIL,
    T_STRING, T_RAWSTRING, T_CHAR, T_NUMBER, T_LPAREN, T_RPAREN, T_PIPE, T_DECLARE, T_ASSIGN,
    T_COMMA,
    /* keywords */
    T_IF, T_ELSE, T_END, T_RANGE, T_WITH, T_BREAK, T_CONTINUE, T_DEFINE, T_TEMPLATE, T_BLOCK,
} tok_kind;

typedef struct {
    tok_kind    kind;
    size_t      pos;
    const char *s;  /* source bytes (T_TEXT: after trimming) */
    size_t      n;
} tok;

typedef struct {
    const char *src;
    size_t      len;
    tok        *toks;
    int         ntoks, cap;
    /* parser state */
    int         at;
    const char **vars;   /* names visible here ("$" first) */
    int          nvars, capvars;
    int          range_depth;
    int          depth;
    gt_arena    *arena;
    char        *err;
    size_t       err_len;
    int          failed;
} parser;

static int perr(parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(parser *p, size_t pos, const char *fmt, ...)
{
    if (p->failed) return -1;
    p->failed = 1;
    int line, col;
    gt_line_col(p->src, pos, &line, &col);
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->err_len, "template:%d:%d: %s", line, col, msg);
    return -1;
}

static int emit(parser *p, tok_kind k, size_t pos, const char *s, size_t n)
{
    if (p->ntoks == p->cap) {
        int cap = p->cap ? p->cap * 2 : 64;
        tok *t = realloc(p->toks, (size_t)cap * sizeof(*t));
        if (!t) return perr(p, pos, "out of memory");
        p->toks = t;
        p->cap = cap;
    }
    p->toks[p->ntoks++] = (tok){ k, pos, s, n };
    return 0;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static bool is_alnum(char c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (unsigned char)c >= 0x80; /* Go accepts Unicode letters; any non-ASCII byte here */
}

/* " -}}" at s: a right delimiter with trim marker. */
static bool right_trim_at(const char *s, const char *end)
{
    return end - s >= 4 && is_space(s[0]) && s[1] == '-' && s[2] == '}' && s[3] == '}';
}

static bool at_terminator(const char *s, const char *end)
{
    if (s >= end) return true;
    char c = *s;
    if (is_space(c) || c == '.' || c == ',' || c == '|' || c == ':' || c == ')' || c == '(')
        return true;
    return end - s >= 2 && s[0] == '}' && s[1] == '}';
}

static const struct { const char *w; tok_kind k; } keywords[] = {
    { "if", T_IF }, { "else", T_ELSE }, { "end", T_END }, { "range", T_RANGE },
    { "with", T_WITH }, { "break", T_BREAK }, { "continue", T_CONTINUE },
    { "define", T_DEFINE }, { "template", T_TEMPLATE }, { "block", T_BLOCK },
    { "true", T_BOOL }, { "false", T_BOOL }, { "nil", T_NIL },
};

/* Lexes one action starting after "{{" (and its trim marker); *pp ends after "}}". */
static int lex_action(parser *p, const char **pp, bool *trim_after, size_t start)
{
    const char *s = *pp, *end = p->src + p->len;
    int parens = 0;
    for (;;) {
        size_t pos = (size_t)(s - p->src);
        if (right_trim_at(s, end)) {
            if (parens) return perr(p, pos, "unclosed left paren");
            *trim_after = true;
            *pp = s + 4;
            return emit(p, T_RIGHT, pos, s, 4);
        }
        if (end - s >= 2 && s[0] == '}' && s[1] == '}') {
            if (parens) return perr(p, pos, "unclosed left paren");
            *trim_after = false;
            *pp = s + 2;
            return emit(p, T_RIGHT, pos, s, 2);
        }
        if (s >= end) return perr(p, start, "unclosed action");
        char c = *s;
        const char *b = s;
        if (is_space(c)) {
            while (s < end && is_space(*s)) s++;
            /* a single space before "-}}" belongs to the trim marker */
            if (s - b >= 1 && right_trim_at(s - 1, end)) {
                s--;
                if (s == b) continue;
            }
            if (emit(p, T_SPACE, pos, b, (size_t)(s - b))) return -1;
        } else if (c == '=') {
            s++;
            if (emit(p, T_ASSIGN, pos, b, 1)) return -1;
        } else if (c == ':') {
            if (end - s < 2 || s[1] != '=') return perr(p, pos, "expected :=");
            s += 2;
            if (emit(p, T_DECLARE, pos, b, 2)) return -1;
        } else if (c == '|') {
            s++;
            if (emit(p, T_PIPE, pos, b, 1)) return -1;
        } else if (c == ',') {
            s++;
            if (emit(p, T_COMMA, pos, b, 1)) return -1;
        } else if (c == '(') {
            if (++parens > GT_MAX_NESTING) return perr(p, pos, "parentheses nested too deeply");
            s++;
            if (emit(p, T_LPAREN, pos, b, 1)) return -1;
        } else if (c == ')') {
            if (--parens < 0) return perr(p, pos, "unexpected right paren");
            s++;
            if (emit(p, T_RPAREN, pos, b, 1)) return -1;
        } else if (c == '"' || c == '`' || c == '\'') {
            s++;
            while (s < end && *s != c) {
                if (c != '`' && *s == '\\' && s + 1 < end) s++;
                else if (c != '`' && *s == '\n') break;
                s++;
            }
            if (s >= end || *s != c)
                return perr(p, pos, c == '`' ? "unterminated raw quoted string"
                                  : c == '"' ? "unterminated quoted string"
                                             : "unterminated character constant");
            s++;
            if (emit(p, c == '"' ? T_STRING : c == '`' ? T_RAWSTRING : T_CHAR, pos, b,
                     (size_t)(s - b)))
                return -1;
        } else if (c == '$' || (c == '.' && !(s + 1 < end && s[1] >= '0' && s[1] <= '9'))) {
            s++;
            while (s < end && is_alnum(*s)) s++;
            if (!at_terminator(s, end))
                return perr(p, (size_t)(s - p->src), "bad character %#x", (unsigned char)*s);
            tok_kind k = c == '$' ? T_VAR : (s - b == 1 ? T_DOT : T_FIELD);
            if (emit(p, k, pos, k == T_FIELD ? b + 1 : b, (size_t)(s - b) - (k == T_FIELD)))
                return -1;
        } else if (c == '+' || c == '-' || c == '.' || (c >= '0' && c <= '9')) {
            s++;
            while (s < end && (is_alnum(*s) || *s == '.' ||
                               ((*s == '+' || *s == '-') && strchr("eEpP", s[-1]))))
                s++;
            if (emit(p, T_NUMBER, pos, b, (size_t)(s - b))) return -1;
        } else if (is_alnum(c)) {
            while (s < end && is_alnum(*s)) s++;
            if (!at_terminator(s, end))
                return perr(p, (size_t)(s - p->src), "bad character %#x", (unsigned char)*s);
            tok_kind k = T_IDENT;
            for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
                if (strlen(keywords[i].w) == (size_t)(s - b) && !memcmp(keywords[i].w, b, (size_t)(s - b)))
                    k = keywords[i].k;
            if (emit(p, k, pos, b, (size_t)(s - b))) return -1;
        } else {
            return perr(p, pos, "unrecognized character in action: %#x", (unsigned char)c);
        }
    }
}

static int lex(parser *p)
{
    const char *s = p->src, *end = p->src + p->len;
    while (s < end) {
        const char *open = strstr(s, "{{");
        if (!open) open = end;
        bool trim_before = open < end && end - open >= 4 && open[2] == '-' && is_space(open[3]);
        const char *text_end = open;
        if (trim_before)
            while (text_end > s && is_space(text_end[-1])) text_end--;
        if (text_end > s && emit(p, T_TEXT, (size_t)(s - p->src), s, (size_t)(text_end - s)))
            return -1;
        if (open == end) break;
        size_t pos = (size_t)(open - p->src);
        s = open + 2 + (trim_before ? 2 : 0);
        bool trim_after = false;
        if (end - s >= 2 && s[0] == '/' && s[1] == '*') {
            const char *close = strstr(s + 2, "*/");
            if (!close) return perr(p, pos, "unclosed comment");
            s = close + 2;
            if (right_trim_at(s, end)) {
                trim_after = true;
                s += 4;
            } else if (end - s >= 2 && s[0] == '}' && s[1] == '}') {
                s += 2;
            } else {
                return perr(p, pos, "comment ends before closing delimiter");
            }
        } else {
            if (emit(p, T_LEFT, pos, open, 2)) return -1;
            if (lex_action(p, &s, &trim_after, pos)) return -1;
        }
        if (trim_after)
            while (s < end && is_space(*s)) s++;
    }
    return emit(p, T_EOF, p->len, end, 0);
}

/* ------------------------------------------------------------------ parser */

static tok *peek(parser *p) { return &p->toks[p->at]; }
static tok *next(parser *p) { return &p->toks[p->at < p->ntoks - 1 ? p->at++ : p->at]; }
static tok *peek_ns(parser *p)
{
    while (p->toks[p->at].kind == T_SPACE) p->at++;
    return &p->toks[p->at];
}
static tok *next_ns(parser *p)
{
    peek_ns(p);
    return next(p);
}

static const char *tok_desc(const tok *t)
{
    switch (t->kind) {
    case T_EOF:    return "EOF";
    case T_RIGHT:  return "right delimiter";
    case T_RPAREN: return "right paren";
    case T_PIPE:   return "pipe";
    default:       return "token";
    }
}

static int unexpected(parser *p, const tok *t, const char *context)
{
    if (t->kind == T_EOF) return perr(p, t->pos, "unexpected EOF in %s", context);
    return perr(p, t->pos, "unexpected %s \"%.*s\" in %s", tok_desc(t),
                (int)(t->n > 40 ? 40 : t->n), t->s, context);
}

static gt_node *new_node(parser *p, gt_node_kind k, size_t pos)
{
    gt_node *n = gt_alloc(p->arena, sizeof(*n));
    if (!n) {
        perr(p, pos, "out of memory");
        return NULL;
    }
    n->kind = k;
    n->pos = pos;
    return n;
}

static int list_add(parser *p, gt_list *l, gt_node *n)
{
    /* doubling growth in the arena: the old array is abandoned (arena memory) */
    if ((l->n & (l->n - 1)) == 0) {
        gt_node **v = gt_alloc(p->arena, (size_t)(l->n ? l->n * 2 : 1) * sizeof(*v));
        if (!v) return perr(p, n->pos, "out of memory");
        if (l->n) memcpy(v, l->v, (size_t)l->n * sizeof(*v));
        l->v = v;
    }
    l->v[l->n++] = n;
    return 0;
}

static int push_var(parser *p, const char *name, size_t pos)
{
    if (p->nvars == p->capvars) {
        if (p->capvars >= GT_MAX_VARS) return perr(p, pos, "too many variables");
        int cap = p->capvars ? p->capvars * 2 : 16;
        const char **v = realloc(p->vars, (size_t)cap * sizeof(*v));
        if (!v) return perr(p, pos, "out of memory");
        p->vars = v;
        p->capvars = cap;
    }
    p->vars[p->nvars++] = name;
    return 0;
}

static bool var_known(parser *p, const char *name, size_t n)
{
    for (int i = p->nvars - 1; i >= 0; i--)
        if (strlen(p->vars[i]) == n && !memcmp(p->vars[i], name, n)) return true;
    return false;
}

/* The functions Ollama's templates can call (text/template builtins + Ollama's FuncMap). */
static const char *const known_funcs[] = {
    "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "slice", "print",
    "printf", "println", "json", "currentDate", "yesterdayDate", "toTypeScriptType", "html", "js",
    "urlquery", "call", NULL,
};

/* Go's strconv.Unquote for "..." and '...' (the escapes Go defines), raw `...` as is. */
static int unquote(parser *p, const tok *t, char **out, size_t *outn)
{
    const char *s = t->s + 1, *end = t->s + t->n - 1;
    if (t->kind == T_RAWSTRING) {
        /* Go drops carriage returns from raw strings */
        char *o = gt_alloc(p->arena, (size_t)(end - s) + 1);
        if (!o) return perr(p, t->pos, "out of memory");
        size_t k = 0;
        for (; s < end; s++)
            if (*s != '\r') o[k++] = *s;
        *out = o;
        *outn = k;
        return 0;
    }
    char *o = gt_alloc(p->arena, (size_t)(end - s) + 1);
    if (!o) return perr(p, t->pos, "out of memory");
    size_t k = 0;
    while (s < end) {
        if (*s != '\\') {
            o[k++] = *s++;
            continue;
        }
        s++;
        if (s >= end) return perr(p, t->pos, "invalid syntax in quoted string");
        char c = *s++;
        unsigned long cp;
        int hexdigits = 0;
        switch (c) {
        case 'a': o[k++] = '\a'; continue;
        case 'b': o[k++] = '\b'; continue;
        case 'f': o[k++] = '\f'; continue;
        case 'n': o[k++] = '\n'; continue;
        case 'r': o[k++] = '\r'; continue;
        case 't': o[k++] = '\t'; continue;
        case 'v': o[k++] = '\v'; continue;
        case '\\': o[k++] = '\\'; continue;
        case '\'': case '"':
            if (c != t->s[0]) return perr(p, t->pos, "invalid escape in quoted string");
            o[k++] = c;
            continue;
        case 'x': hexdigits = 2; break;
        case 'u': hexdigits = 4; break;
        case 'U': hexdigits = 8; break;
        default:
            if (c >= '0' && c <= '7') {
                if (end - s < 2 || s[0] < '0' || s[0] > '7' || s[1] < '0' || s[1] > '7')
                    return perr(p, t->pos, "invalid octal escape in quoted string");
                cp = (unsigned long)((c - '0') * 64 + (s[0] - '0') * 8 + (s[1] - '0'));
                if (cp > 255) return perr(p, t->pos, "invalid octal escape in quoted string");
                s += 2;
                o[k++] = (char)cp;
                continue;
            }
            return perr(p, t->pos, "invalid escape \\%c in quoted string", c);
        }
        if (end - s < hexdigits) return perr(p, t->pos, "invalid escape in quoted string");
        cp = 0;
        for (int i = 0; i < hexdigits; i++, s++) {
            char h = *s;
            int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                  : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (v < 0) return perr(p, t->pos, "invalid escape in quoted string");
            cp = cp * 16 + (unsigned long)v;
        }
        if (hexdigits == 2) {
            o[k++] = (char)cp;
            continue;
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return perr(p, t->pos, "invalid Unicode escape in quoted string");
        /* UTF-8; \u escapes need at most 4 bytes for 6 source bytes, so o is large enough */
        if (cp < 0x80) {
            o[k++] = (char)cp;
        } else if (cp < 0x800) {
            o[k++] = (char)(0xC0 | (cp >> 6));
            o[k++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            o[k++] = (char)(0xE0 | (cp >> 12));
            o[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            o[k++] = (char)(0x80 | (cp & 0x3F));
        } else {
            o[k++] = (char)(0xF0 | (cp >> 18));
            o[k++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            o[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            o[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    *out = o;
    *outn = k;
    return 0;
}

static int parse_number(parser *p, const tok *t, gt_node *n)
{
    char buf[128];
    if (t->kind == T_CHAR) {
        char *s;
        size_t len;
        if (unquote(p, t, &s, &len)) return -1;
        /* decode one UTF-8 character */
        const unsigned char *u = (const unsigned char *)s;
        int64_t cp;
        size_t want = u[0] < 0x80 ? 1 : u[0] >= 0xF0 ? 4 : u[0] >= 0xE0 ? 3 : 2;
        if (len == 0 || len != want) return perr(p, t->pos, "malformed character constant");
        cp = want == 1 ? u[0] : want == 2 ? u[0] & 0x1F : want == 3 ? u[0] & 0x0F : u[0] & 0x07;
        for (size_t i = 1; i < want; i++) cp = cp * 64 + (u[i] & 0x3F);
        n->is_int = true;
        n->i = cp;
        return 0;
    }
    size_t len = 0;
    for (size_t i = 0; i < t->n && len + 1 < sizeof(buf); i++) {
        if (t->s[i] != '_') {
            buf[len++] = t->s[i];
            continue;
        }
        /* Go: an underscore separates digits, or follows a base prefix (0x_1) */
        bool before = i > 0 && (isxdigit((unsigned char)t->s[i - 1]) || strchr("xXoObB", t->s[i - 1]));
        bool after = i + 1 < t->n && isxdigit((unsigned char)t->s[i + 1]);
        if (!before || !after)
            return perr(p, t->pos, "bad number syntax: \"%.*s\"", (int)(t->n > 40 ? 40 : t->n), t->s);
    }
    buf[len] = 0;
    if (len == 0 || t->n >= sizeof(buf))
        return perr(p, t->pos, "bad number syntax: \"%.*s\"", (int)(t->n > 40 ? 40 : t->n), t->s);
    bool hex = strstr(buf, "0x") || strstr(buf, "0X");
    char *e;
    errno = 0;
    if (!hex && strpbrk(buf, ".eEpP")) {
        n->f = strtod(buf, &e);
        if (*e || errno) return perr(p, t->pos, "bad number syntax: \"%s\"", buf);
        n->is_int = false;
        return 0;
    }
    /* Go integer literals: 0x.., 0o.., 0b.., leading 0 = octal */
    const char *d = buf;
    bool neg = false;
    if (*d == '+' || *d == '-') neg = *d++ == '-';
    int base = 10;
    if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) base = 16, d += 2;
    else if (d[0] == '0' && (d[1] == 'o' || d[1] == 'O')) base = 8, d += 2;
    else if (d[0] == '0' && (d[1] == 'b' || d[1] == 'B')) base = 2, d += 2;
    else if (d[0] == '0' && d[1]) base = 8, d += 1;
    if (!*d || *d == '-' || *d == '+') return perr(p, t->pos, "bad number syntax: \"%s\"", buf);
    unsigned long long v = strtoull(d, &e, base);
    if (*e || errno || v > (unsigned long long)INT64_MAX + neg)
        return perr(p, t->pos, "bad number syntax: \"%s\"", buf);
    n->is_int = true;
    n->i = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static gt_pipe *parse_pipeline(parser *p, const char *context, tok_kind end);

/* Splits "A.B.C" style chains: the lexer gives one T_FIELD per segment. */
static int add_ident(parser *p, gt_node *n, const char *s, size_t len)
{
    if ((n->nident & (n->nident - 1)) == 0) {
        const char **v = gt_alloc(p->arena, (size_t)(n->nident ? n->nident * 2 : 1) * sizeof(*v));
        if (!v) return perr(p, n->pos, "out of memory");
        if (n->nident) memcpy(v, n->ident, (size_t)n->nident * sizeof(*v));
        n->ident = v;
    }
    const char *id = gt_strndup(p->arena, s, len);
    if (!id) return perr(p, n->pos, "out of memory");
    n->ident[n->nident++] = id;
    return 0;
}

static gt_node *parse_term(parser *p)
{
    tok *t = next_ns(p);
    gt_node *n;
    switch (t->kind) {
    case T_IDENT:
        for (int i = 0; known_funcs[i]; i++)
            if (strlen(known_funcs[i]) == t->n && !memcmp(known_funcs[i], t->s, t->n)) {
                if (!(n = new_node(p, GN_IDENT, t->pos))) return NULL;
                n->text = t->s;
                n->len = t->n;
                return n;
            }
        perr(p, t->pos, "function \"%.*s\" not defined", (int)(t->n > 40 ? 40 : t->n), t->s);
        return NULL;
    case T_DOT: return new_node(p, GN_DOT, t->pos);
    case T_NIL: return new_node(p, GN_NIL, t->pos);
    case T_BOOL:
        if (!(n = new_node(p, GN_BOOL, t->pos))) return NULL;
        n->b = t->s[0] == 't';
        return n;
    case T_VAR:
        if (!var_known(p, t->s, t->n)) {
            perr(p, t->pos, "undefined variable \"%.*s\"", (int)(t->n > 40 ? 40 : t->n), t->s);
            return NULL;
        }
        if (!(n = new_node(p, GN_VARIABLE, t->pos)) || add_ident(p, n, t->s, t->n)) return NULL;
        return n;
    case T_FIELD:
        if (!(n = new_node(p, GN_FIELD, t->pos)) || add_ident(p, n, t->s, t->n)) return NULL;
        return n;
    case T_NUMBER: case T_CHAR:
        if (!(n = new_node(p, GN_NUMBER, t->pos))) return NULL;
        n->text = t->s;
        n->len = t->n;
        return parse_number(p, t, n) ? NULL : n;
    case T_STRING: case T_RAWSTRING: {
        char *s;
        size_t len;
        if (!(n = new_node(p, GN_STRING, t->pos)) || unquote(p, t, &s, &len)) return NULL;
        n->text = s;
        n->len = len;
        return n;
    }
    case T_LPAREN:
        if (!(n = new_node(p, GN_PIPE, t->pos))) return NULL;
        if (++p->depth > GT_MAX_NESTING) {
            perr(p, t->pos, "template nested too deeply");
            return NULL;
        }
        n->pipe = parse_pipeline(p, "parenthesized pipeline", T_RPAREN);
        p->depth--;
        return n->pipe ? n : NULL;
    default:
        p->at--;
        return NULL;
    }
}

static gt_node *parse_operand(parser *p)
{
    gt_node *n = parse_term(p);
    if (!n || peek(p)->kind != T_FIELD) return n;
    if (n->kind == GN_BOOL || n->kind == GN_STRING || n->kind == GN_NUMBER || n->kind == GN_NIL ||
        n->kind == GN_DOT) {
        perr(p, peek(p)->pos, "unexpected . after term");
        return NULL;
    }
    if (n->kind != GN_FIELD && n->kind != GN_VARIABLE) {
        gt_node *c = new_node(p, GN_CHAIN, peek(p)->pos);
        if (!c) return NULL;
        c->sub = n;
        n = c;
    }
    while (peek(p)->kind == T_FIELD) {
        tok *f = next(p);
        if (add_ident(p, n, f->s, f->n)) return NULL;
    }
    return n;
}

static int parse_command(parser *p, gt_cmd *cmd)
{
    cmd->pos = peek_ns(p)->pos;
    gt_list args = { 0 };
    for (;;) {
        peek_ns(p);
        gt_node *op = parse_operand(p);
        if (p->failed) return -1;
        if (op && list_add(p, &args, op)) return -1;
        tok *t = next(p);
        if (t->kind == T_SPACE) continue;
        if (t->kind == T_RIGHT || t->kind == T_RPAREN) p->at--;
        else if (t->kind != T_PIPE) return unexpected(p, t, "operand");
        break;
    }
    if (args.n == 0) return perr(p, cmd->pos, "empty command");
    cmd->args = args.v;
    cmd->n = args.n;
    return 0;
}

static gt_pipe *parse_pipeline(parser *p, const char *context, tok_kind end)
{
    gt_pipe *pipe = gt_alloc(p->arena, sizeof(*pipe));
    if (!pipe) {
        perr(p, peek(p)->pos, "out of memory");
        return NULL;
    }
    pipe->pos = peek_ns(p)->pos;
    int cap = 0;
    for (;;) { /* declarations */
        tok *v = peek_ns(p);
        if (v->kind != T_VAR) break;
        int save = p->at;
        next(p);
        tok *after = peek_ns(p);
        if (after->kind == T_DECLARE || after->kind == T_ASSIGN || after->kind == T_COMMA) {
            next(p);
            if (pipe->ndecl == 2) {
                perr(p, v->pos, "too many declarations in %s", context);
                return NULL;
            }
            if (!pipe->decl) pipe->decl = gt_alloc(p->arena, 2 * sizeof(*pipe->decl));
            const char *name = pipe->decl ? gt_strndup(p->arena, v->s, v->n) : NULL;
            if (!name) {
                perr(p, v->pos, "out of memory");
                return NULL;
            }
            if (after->kind == T_ASSIGN && !var_known(p, v->s, v->n)) {
                perr(p, v->pos, "undefined variable \"%s\"", name);
                return NULL;
            }
            pipe->decl[pipe->ndecl++] = name;
            pipe->is_assign = after->kind == T_ASSIGN;
            if (push_var(p, name, v->pos)) return NULL;
            if (after->kind == T_COMMA) {
                if (strcmp(context, "range") || pipe->ndecl > 1) {
                    perr(p, after->pos, "too many declarations in %s", context);
                    return NULL;
                }
                tok *n2 = peek_ns(p);
                if (n2->kind != T_VAR) {
                    perr(p, n2->pos, "range can only initialize variables");
                    return NULL;
                }
                continue;
            }
        } else {
            p->at = save;
        }
        break;
    }
    for (;;) {
        tok *t = next_ns(p);
        if (t->kind == end) break;
        switch (t->kind) {
        case T_BOOL: case T_CHAR: case T_DOT: case T_FIELD: case T_IDENT: case T_NUMBER:
        case T_NIL: case T_RAWSTRING: case T_STRING: case T_VAR: case T_LPAREN:
            p->at--;
            if (pipe->ncmds == cap) {
                cap = cap ? cap * 2 : 2;
                gt_cmd *c = gt_alloc(p->arena, (size_t)cap * sizeof(*c));
                if (!c) {
                    perr(p, t->pos, "out of memory");
                    return NULL;
                }
                if (pipe->ncmds) memcpy(c, pipe->cmds, (size_t)pipe->ncmds * sizeof(*c));
                pipe->cmds = c;
            }
            if (parse_command(p, &pipe->cmds[pipe->ncmds++])) return NULL;
            break;
        default:
            unexpected(p, t, context);
            return NULL;
        }
    }
    if (pipe->ncmds == 0) {
        perr(p, pipe->pos, "missing value for %s", context);
        return NULL;
    }
    for (int i = 1; i < pipe->ncmds; i++) {
        gt_node_kind k = pipe->cmds[i].args[0]->kind;
        if (k == GN_BOOL || k == GN_DOT || k == GN_NIL || k == GN_NUMBER || k == GN_STRING) {
            perr(p, pipe->cmds[i].pos, "non executable command in pipeline stage %d", i + 1);
            return NULL;
        }
    }
    return pipe;
}

/* What ended a list: T_END or T_ELSE (the token after "{{"), or T_EOF. */
static int parse_list(parser *p, gt_list *l, tok_kind *ended, size_t *ended_pos);

static int expect_right(parser *p, const char *context)
{
    tok *t = next_ns(p);
    if (t->kind != T_RIGHT) return unexpected(p, t, context);
    return 0;
}

static gt_node *parse_control(parser *p, gt_node_kind kind, size_t pos)
{
    static const char *const names[] = { [GN_IF] = "if", [GN_RANGE] = "range", [GN_WITH] = "with" };
    const char *context = names[kind];
    if (++p->depth > GT_MAX_NESTING) {
        perr(p, pos, "template nested too deeply");
        return NULL;
    }
    int vars_mark = p->nvars;
    gt_node *n = new_node(p, kind, pos);
    if (!n || !(n->pipe = parse_pipeline(p, context, T_RIGHT))) return NULL;
    if (kind == GN_RANGE) p->range_depth++;
    tok_kind ended;
    size_t ended_pos;
    if (parse_list(p, &n->list, &ended, &ended_pos)) return NULL;
    if (kind == GN_RANGE) p->range_depth--;
    if (ended == T_ELSE) {
        n->has_else = true;
        tok *t = peek_ns(p);
        if ((kind == GN_IF && t->kind == T_IF) || (kind == GN_WITH && t->kind == T_WITH)) {
            next(p);
            gt_node *inner = parse_control(p, kind, t->pos);
            if (!inner || list_add(p, &n->else_list, inner)) return NULL;
        } else {
            if (t->kind == T_IF || t->kind == T_WITH) { /* "else if" in a range, "else with" in an if */
                unexpected(p, t, "else");
                return NULL;
            }
            if (parse_list(p, &n->else_list, &ended, &ended_pos)) return NULL;
            if (ended != T_END) {
                perr(p, ended_pos, "expected end; found {{else}}");
                return NULL;
            }
        }
    }
    p->nvars = vars_mark;
    p->depth--;
    return n;
}

/* One "{{ ... }}" after its T_LEFT. Returns the node, or NULL with *ended set for end/else. */
static gt_node *parse_action(parser *p, tok_kind *ended, size_t *ended_pos)
{
    tok *t = peek_ns(p);
    size_t pos = t->pos;
    *ended = T_EOF;
    switch (t->kind) {
    case T_IF: next(p); return parse_control(p, GN_IF, pos);
    case T_RANGE: next(p); return parse_control(p, GN_RANGE, pos);
    case T_WITH: next(p); return parse_control(p, GN_WITH, pos);
    case T_END:
        next(p);
        if (expect_right(p, "end")) return NULL;
        *ended = T_END;
        *ended_pos = pos;
        return NULL;
    case T_ELSE:
        next(p);
        /* "else if"/"else with": leave the keyword for parse_control */
        if (peek_ns(p)->kind != T_IF && peek_ns(p)->kind != T_WITH && expect_right(p, "else"))
            return NULL;
        *ended = T_ELSE;
        *ended_pos = pos;
        return NULL;
    case T_BREAK: case T_CONTINUE: {
        const char *w = t->kind == T_BREAK ? "break" : "continue";
        gt_node_kind k = t->kind == T_BREAK ? GN_BREAK : GN_CONTINUE;
        next(p);
        if (expect_right(p, w)) return NULL;
        if (p->range_depth == 0) {
            perr(p, pos, "{{%s}} outside {{range}}", w);
            return NULL;
        }
        return new_node(p, k, pos);
    }
    case T_DEFINE: case T_TEMPLATE: case T_BLOCK:
        perr(p, pos, "{{%.*s}}: named templates are not supported", (int)t->n, t->s);
        return NULL;
    default: {
        gt_node *n = new_node(p, GN_ACTION, pos);
        if (!n || !(n->pipe = parse_pipeline(p, "command", T_RIGHT))) return NULL;
        return n;
    }
    }
}

static int parse_list(parser *p, gt_list *l, tok_kind *ended, size_t *ended_pos)
{
    for (;;) {
        tok *t = next(p);
        if (t->kind == T_EOF) {
            *ended = T_EOF;
            *ended_pos = t->pos;
            if (p->depth > 0) return perr(p, t->pos, "unexpected EOF");
            return 0;
        }
        gt_node *n;
        if (t->kind == T_TEXT) {
            if (!(n = new_node(p, GN_TEXT, t->pos))) return -1;
            n->text = t->s;
            n->len = t->n;
        } else {
            n = parse_action(p, ended, ended_pos);
            if (p->failed) return -1;
            if (!n) {
                if (p->depth == 0)
                    return perr(p, *ended_pos, "unexpected {{%s}}", *ended == T_END ? "end" : "else");
                return 0;
            }
        }
        if (list_add(p, l, n)) return -1;
    }
}

int gt_parse(gt_tree *t, const char *src, char *err, size_t err_len)
{
    memset(t, 0, sizeof(*t));
    t->src = src;
    parser p = { .src = src, .len = strlen(src), .arena = &t->arena, .err = err, .err_len = err_len };
    int rc = lex(&p);
    if (!rc) rc = push_var(&p, "$", 0);
    if (!rc) {
        tok_kind ended;
        size_t ended_pos;
        rc = parse_list(&p, &t->root, &ended, &ended_pos);
    }
    free(p.toks);
    free(p.vars);
    if (rc) gt_tree_free(t);
    return rc;
}

void gt_tree_free(gt_tree *t) { gt_arena_free(&t->arena); }
