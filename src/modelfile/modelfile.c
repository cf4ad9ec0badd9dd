/* Modelfile lexer/parser, printer and FROM resolution.
 *
 * The lexer works on the whole text in memory. A first pass checks the
 * encoding (UTF-8, no control characters but tab/CR/LF) and the size limits,
 * so the parser itself only deals with the grammar. Values follow Ollama's
 * rule (parser/parser.go): at every line break, the value read so far is
 * trimmed; if it starts with `"""` it is complete once it is at least six
 * characters long and ends with `"""`, if it starts with `"` once it ends with
 * `"`, otherwise at once. The printer checks every value it writes by reading
 * it back with the same lexer, so print/parse round-trips by construction.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "modelfile/mf_internal.h"

/* ================================================================ lexer */

typedef struct {
    size_t   off;
    unsigned line, col;
} mpos;

typedef struct {
    const char    *s;
    size_t         len;
    size_t         pos;
    unsigned       line, col;   /* of pos, 1-based; col counts characters */
    const char    *name;        /* error prefix */
    char          *err;
    size_t         err_len;
    qfit_warnings *w;
} lexer;

static void lex_init(lexer *lx, const char *s, size_t len, const char *name, char *err, size_t err_len)
{
    memset(lx, 0, sizeof *lx);
    lx->s = s;
    lx->len = len;
    lx->line = lx->col = 1;
    lx->name = name;
    lx->err = err;
    lx->err_len = err_len;
}

static mpos here(const lexer *lx) { return (mpos){ lx->pos, lx->line, lx->col }; }

static bool is_nl(char c) { return c == '\r' || c == '\n'; }
static bool is_blank(char c) { return c == ' ' || c == '\t'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* One byte forward. CR, LF and CRLF each end one line. */
static void adv(lexer *lx)
{
    unsigned char c = (unsigned char)lx->s[lx->pos++];
    if (c == '\r' || (c == '\n' && !(lx->pos >= 2 && lx->s[lx->pos - 2] == '\r'))) {
        lx->line++;
        lx->col = 1;
    } else if (c != '\n' && (c & 0xC0) != 0x80) {
        lx->col++;
    }
}

static int lex_error(lexer *lx, mpos at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int lex_error(lexer *lx, mpos at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mf_err(lx->err, lx->err_len, "%s:%u:%u: %s", lx->name, at.line, at.col, msg);
    return -1;
}

/* Length of the UTF-8 sequence at s (n bytes left), 0 if invalid (overlong,
 * surrogate, beyond U+10FFFF, truncated). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) k = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) k = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) k = 4, cp = c & 0x07;
    else return 0;
    if (n < k) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return k;
}

/* The encoding pass over [lx->pos, len): UTF-8 only, no control characters but
 * tab, CR and LF, at most QFIT_MODELFILE_MAX_LINES lines. Leaves lx unmoved. */
static int check_text(lexer *lx)
{
    lexer t = *lx;
    while (t.pos < t.len) {
        unsigned char c = (unsigned char)t.s[t.pos];
        if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7F)
            return lex_error(lx, here(&t), "control character U+%04X is not allowed", c);
        size_t k = utf8_len((const unsigned char *)t.s + t.pos, t.len - t.pos);
        if (k == 0) return lex_error(lx, here(&t), "invalid UTF-8 (byte 0x%02X)", c);
        for (size_t i = 0; i < k; i++) adv(&t);
        if (t.line > QFIT_MODELFILE_MAX_LINES)
            return lex_error(lx, here(&t), "more than %u lines", QFIT_MODELFILE_MAX_LINES);
    }
    return 0;
}

static void skip_blanks(lexer *lx)
{
    while (lx->pos < lx->len && is_blank(lx->s[lx->pos])) adv(lx);
}

/* A value from lx->pos to the line break that completes it (left unconsumed).
 * *out is malloc'd; *at is where the value starts. 0 or -1. */
static int lex_value(lexer *lx, char **out, mpos *at)
{
    skip_blanks(lx);
    *at = here(lx);
    const char *t = lx->s + lx->pos;
    size_t end = lx->pos;   /* one past the last non-blank character so far */
    for (;;) {
        while (lx->pos < lx->len && !is_nl(lx->s[lx->pos])) {
            bool blank = is_blank(lx->s[lx->pos]);
            adv(lx);
            if (!blank) end = lx->pos;
        }
        size_t n = end - at->off, q = 0;
        bool done = true;
        if (n >= 3 && memcmp(t, "\"\"\"", 3) == 0) {
            q = 3;
            done = n >= 6 && memcmp(t + n - 3, "\"\"\"", 3) == 0;
        } else if (n >= 1 && t[0] == '"') {
            q = 1;
            done = n >= 2 && t[n - 1] == '"';
        }
        if (done) {
            if (!(*out = strndup(t + q, n - 2 * q))) return lex_error(lx, *at, "out of memory");
            return 0;
        }
        if (lx->pos >= lx->len)
            return lex_error(lx, *at, "unterminated %s value: no closing %s before the end of the file",
                             q == 3 ? "\"\"\"" : "\"", q == 3 ? "\"\"\"" : "\"");
        adv(lx);   /* the line break is part of the quoted value */
    }
}

/* A word of [A-Za-z] (plus digits and '_' when name_chars) into buf. Its length,
 * or -1 when it is longer than buf can hold. */
static int lex_word(lexer *lx, char *buf, size_t cap, bool name_chars)
{
    size_t n = 0;
    while (lx->pos < lx->len) {
        char c = lx->s[lx->pos];
        if (!(is_alpha(c) || (name_chars && (is_digit(c) || c == '_')))) break;
        if (n + 1 >= cap) return -1;
        buf[n++] = c;
        adv(lx);
    }
    buf[n] = '\0';
    return (int)n;
}

/* After a word: one blank or more must follow (the value may then be empty, as
 * in Ollama: `SYSTEM ` is an empty system). */
static int expect_blank(lexer *lx, const char *what)
{
    if (lx->pos < lx->len && is_blank(lx->s[lx->pos])) return 0;
    if (lx->pos >= lx->len || is_nl(lx->s[lx->pos])) return lex_error(lx, here(lx), "%s: missing value", what);
    char c = lx->s[lx->pos];
    if (c >= 0x20 && c < 0x7F) return lex_error(lx, here(lx), "%s: unexpected character '%c'", what, c);
    return lex_error(lx, here(lx), "%s: unexpected character", what);
}

/* ============================================================ model API */

qfit_modelfile *qfit_modelfile_new(void)
{
    qfit_modelfile *m = calloc(1, sizeof *m);
    if (m && !(m->params = qfit_params_new())) {
        free(m);
        return NULL;
    }
    return m;
}

void qfit_modelfile_free(qfit_modelfile *m)
{
    if (!m) return;
    free(m->from);
    free(m->tmpl);
    free(m->system);
    free(m->requires);
    qfit_params_free(m->params);
    for (size_t i = 0; i < m->nlicenses; i++) free(m->licenses[i]);
    free(m->licenses);
    for (size_t i = 0; i < m->nmessages; i++) {
        free(m->messages[i].role);
        free(m->messages[i].content);
    }
    free(m->messages);
    for (size_t i = 0; i < m->nroutes; i++) {
        free(m->routes[i].rule);
        free(m->routes[i].model);
    }
    free(m->routes);
    free(m);
}

static bool valid_role(const char *r)
{
    return strcmp(r, "system") == 0 || strcmp(r, "user") == 0 || strcmp(r, "assistant") == 0;
}

/* Takes ownership of text (freed on error). */
static int push_license(qfit_modelfile *m, char *text)
{
    char **v = mf_grow(m->licenses, m->nlicenses, sizeof *v);
    if (!v) {
        free(text);
        return -1;
    }
    m->licenses = v;
    v[m->nlicenses++] = text;
    return 0;
}

/* Takes ownership of content (freed on error). */
static int push_message(qfit_modelfile *m, const char *role, char *content)
{
    qfit_modelfile_message *v = mf_grow(m->messages, m->nmessages, sizeof *v);
    char *r = mf_strdup(role);
    if (!v || !r) {
        if (v) m->messages = v;
        free(r);
        free(content);
        return -1;
    }
    m->messages = v;
    v[m->nmessages++] = (qfit_modelfile_message){ r, content };
    return 0;
}

int qfit_modelfile_add_license(qfit_modelfile *m, const char *text, char *err, size_t err_len)
{
    char *t = mf_strdup(text);
    if (!t || push_license(m, t) < 0) {
        mf_err(err, err_len, "out of memory");
        return -1;
    }
    return 0;
}

int qfit_modelfile_add_message(qfit_modelfile *m, const char *role, const char *content,
                               char *err, size_t err_len)
{
    if (!valid_role(role)) {
        mf_err(err, err_len, "message role must be one of \"system\", \"user\", or \"assistant\" (got '%s')", role);
        return -1;
    }
    char *c = mf_strdup(content);
    if (!c || push_message(m, role, c) < 0) {
        mf_err(err, err_len, "out of memory");
        return -1;
    }
    return 0;
}

int qfit_route_rule_check(const char *rule, long *long_tokens, char *err, size_t err_len)
{
    if (long_tokens) *long_tokens = 0;
    if (!strcmp(rule, "default") || !strcmp(rule, "code")) return 0;
    if (!strncmp(rule, "long>", 5)) {
        const char *p = rule + 5;
        long v = 0;
        if (!is_digit(*p)) goto bad;
        for (; is_digit(*p); p++) {
            v = v * 10 + (*p - '0');
            if (v > 100000000L) goto bad;
        }
        if (*p || v < 1) goto bad;
        if (long_tokens) *long_tokens = v;
        return 0;
    }
bad:
    mf_err(err, err_len, "ROUTE rule '%s': expected default, code or long>N (N from 1 to 100000000 tokens)", rule);
    return -1;
}

int qfit_modelfile_add_route(qfit_modelfile *m, const char *rule, const char *model, char *err, size_t err_len)
{
    if (qfit_route_rule_check(rule, NULL, err, err_len) != 0) return -1;
    if (!model[0] || strpbrk(model, " \t\r\n")) {
        mf_err(err, err_len, "ROUTE %s: the model '%s' is not a model name or path", rule, model);
        return -1;
    }
    for (size_t i = 0; i < m->nroutes; i++)
        if (!strcmp(m->routes[i].rule, rule) && !strcmp(rule, "default")) {
            mf_err(err, err_len, "ROUTE default: a second default (the first sends to %s)", m->routes[i].model);
            return -1;
        }
    qfit_modelfile_route *v = mf_grow(m->routes, m->nroutes, sizeof *v);
    if (v) m->routes = v;
    char *r = mf_strdup(rule), *mo = mf_strdup(model);
    if (!v || !r || !mo) {
        free(r);
        free(mo);
        mf_err(err, err_len, "out of memory");
        return -1;
    }
    v[m->nroutes++] = (qfit_modelfile_route){ r, mo };
    return 0;
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool qfit_modelfile_equal(const qfit_modelfile *a, const qfit_modelfile *b)
{
    if (!str_eq(a->from, b->from) || !str_eq(a->tmpl, b->tmpl) || !str_eq(a->system, b->system) ||
        !str_eq(a->requires, b->requires) || !qfit_params_equal(a->params, b->params) ||
        a->nlicenses != b->nlicenses || a->nmessages != b->nmessages || a->nroutes != b->nroutes)
        return false;
    for (size_t i = 0; i < a->nroutes; i++)
        if (strcmp(a->routes[i].rule, b->routes[i].rule) != 0 || strcmp(a->routes[i].model, b->routes[i].model) != 0)
            return false;
    for (size_t i = 0; i < a->nlicenses; i++)
        if (strcmp(a->licenses[i], b->licenses[i]) != 0) return false;
    for (size_t i = 0; i < a->nmessages; i++)
        if (strcmp(a->messages[i].role, b->messages[i].role) != 0 ||
            strcmp(a->messages[i].content, b->messages[i].content) != 0)
            return false;
    return true;
}

/* ================================================================ parser */

/* golang.org/x/mod/semver IsValid (after the leading 'v'): MAJOR[.MINOR[.PATCH
 * [-PRERELEASE][+BUILD]]], no leading zeros in numbers. */
static bool semver_num(const char **p)
{
    const char *s = *p;
    if (!is_digit(*s)) return false;
    if (*s == '0' && is_digit(s[1])) return false;
    while (is_digit(*s)) s++;
    *p = s;
    return true;
}

static bool semver_idents(const char **p, bool prerelease)
{
    const char *s = *p;
    for (;;) {
        const char *start = s;
        bool numeric = true;
        while (is_alpha(*s) || is_digit(*s) || *s == '-') numeric &= is_digit(*s), s++;
        if (s == start) return false;
        if (prerelease && numeric && *start == '0' && s - start > 1) return false;
        if (*s != '.') break;
        s++;
    }
    *p = s;
    return true;
}

static bool semver_valid(const char *v)
{
    const char *s = v;
    if (!semver_num(&s)) return false;
    if (*s == '\0') return true;
    if (*s++ != '.' || !semver_num(&s)) return false;
    if (*s == '\0') return true;
    if (*s++ != '.' || !semver_num(&s)) return false;
    if (*s == '-' && (s++, !semver_idents(&s, true))) return false;
    if (*s == '+' && (s++, !semver_idents(&s, false))) return false;
    return *s == '\0';
}

typedef struct {
    lexer           lx;
    qfit_modelfile *m;
    unsigned        from_line, tmpl_line, system_line, requires_line;
} parser;

/* A single-valued instruction given twice is an error naming the first line. */
static int set_once(parser *ps, char **slot, unsigned *line, const char *instr, char *value, mpos at)
{
    if (*slot) {
        free(value);
        return lex_error(&ps->lx, at, "%s given twice (first at line %u)", instr, *line);
    }
    *slot = value;
    *line = at.line;
    return 0;
}

static int parse_parameter(parser *ps)
{
    lexer *lx = &ps->lx;
    char name[64];
    skip_blanks(lx);
    mpos at = here(lx);
    if (lex_word(lx, name, sizeof name, true) < 0) return lex_error(lx, at, "parameter name too long");
    if (name[0] == '\0') return lex_error(lx, at, "PARAMETER: missing parameter name");
    if (expect_blank(lx, "PARAMETER") < 0) return -1;
    int kind = qfit_params_lookup(name, NULL);
    if (kind < 0) return lex_error(lx, at, "unknown parameter '%s'", name);
    char *value;
    mpos vat;
    if (lex_value(lx, &value, &vat) < 0) return -1;
    if (kind == 0) {
        free(value);
        return mf_warn(lx->w, "%s:%u:%u: parameter %s is deprecated and ignored", lx->name, at.line, at.col, name) < 0
                   ? lex_error(lx, at, "out of memory") : 0;
    }
    char msg[400];
    int rc = qfit_params_set_string(ps->m->params, name, value, NULL, msg, sizeof msg);
    free(value);
    return rc < 0 ? lex_error(lx, vat, "%s", msg) : 0;
}

static int parse_message(parser *ps)
{
    lexer *lx = &ps->lx;
    char role[16];
    skip_blanks(lx);
    mpos at = here(lx);
    int n = lex_word(lx, role, sizeof role, false);
    if (n == 0) return lex_error(lx, at, "MESSAGE: missing role");
    if (n < 0 || !valid_role(role))
        return lex_error(lx, at, "message role must be one of \"system\", \"user\", or \"assistant\"");
    if (expect_blank(lx, "MESSAGE") < 0) return -1;
    char *value;
    mpos vat;
    if (lex_value(lx, &value, &vat) < 0) return -1;
    return push_message(ps->m, role, value) < 0 ? lex_error(lx, vat, "out of memory") : 0;
}

/* What qfit refuses, and why (never silently ignored). */
static const struct {
    const char *word, *why;
} UNSUPPORTED[] = {
    { "adapter", "ADAPTER is not supported: qfit cannot apply LoRA adapters (merge the adapter into the model weights first)" },
    { "draft", "DRAFT is not supported: qfit has no speculative decoding with a draft model" },
    { "renderer", "RENDERER is not supported: qfit has no built-in prompt renderers (use TEMPLATE)" },
    { "parser", "PARSER is not supported: qfit has no built-in output parsers" },
};

static int parse_instruction(parser *ps)
{
    lexer *lx = &ps->lx;
    mpos at = here(lx);
    char word[16];
    int n = lex_word(lx, word, sizeof word, false);
    bool followed_ok = lx->pos >= lx->len || is_blank(lx->s[lx->pos]) || is_nl(lx->s[lx->pos]);
    if (n <= 0 || !followed_ok) {
        /* name the whole token in the message */
        size_t e = at.off;
        while (e < lx->len && !is_blank(lx->s[e]) && !is_nl(lx->s[e]) && e - at.off < 40) e++;
        return lex_error(lx, at, "unknown instruction '%.*s' (expected FROM, PARAMETER, TEMPLATE, SYSTEM, "
                         "MESSAGE, LICENSE, REQUIRES or ROUTE)", (int)(e - at.off), lx->s + at.off);
    }
    for (char *c = word; *c; c++) *c = (char)(*c | 0x20);   /* ASCII letters: lower case */
    for (size_t i = 0; i < sizeof UNSUPPORTED / sizeof UNSUPPORTED[0]; i++)
        if (strcmp(word, UNSUPPORTED[i].word) == 0) return lex_error(lx, at, "%s", UNSUPPORTED[i].why);

    static const char *const KNOWN[] = { "from", "parameter", "template", "system", "message", "license", "requires",
                                         "route" };
    size_t k = 0;
    while (k < sizeof KNOWN / sizeof KNOWN[0] && strcmp(word, KNOWN[k]) != 0) k++;
    if (k == sizeof KNOWN / sizeof KNOWN[0])
        return lex_error(lx, at, "unknown instruction '%.*s' (expected FROM, PARAMETER, TEMPLATE, SYSTEM, "
                         "MESSAGE, LICENSE, REQUIRES or ROUTE)", n, lx->s + at.off);
    char upper[16];
    for (int i = 0; i < n; i++) upper[i] = (char)(word[i] & ~0x20);
    upper[n] = '\0';
    if (expect_blank(lx, upper) < 0) return -1;
    if (k == 1) return parse_parameter(ps);
    if (k == 4) return parse_message(ps);

    char *value;
    mpos vat;
    if (lex_value(lx, &value, &vat) < 0) return -1;
    qfit_modelfile *m = ps->m;
    switch (k) {
    case 0:
        if (value[0] == '\0') {
            free(value);
            return lex_error(lx, vat, "FROM needs a model name or a path");
        }
        if (m->from) {
            free(value);
            return lex_error(lx, at, "a second FROM (the first is at line %u): qfit does not support projectors "
                             "or several model files", ps->from_line);
        }
        m->from = value;
        ps->from_line = at.line;
        return 0;
    case 2: return set_once(ps, &m->tmpl, &ps->tmpl_line, "TEMPLATE", value, at);
    case 3: return set_once(ps, &m->system, &ps->system_line, "SYSTEM", value, at);
    case 5: return push_license(m, value) < 0 ? lex_error(lx, vat, "out of memory") : 0;
    case 7: {   /* ROUTE RULE MODEL */
        char *sp = value;
        while (*sp && !is_blank(*sp)) sp++;
        char *model = sp;
        while (*model && is_blank(*model)) model++;
        *sp = '\0';
        char e2[256];
        int rc = *value && *model ? qfit_modelfile_add_route(m, value, model, e2, sizeof e2) : -1;
        if (rc < 0 && !(*value && *model)) snprintf(e2, sizeof e2, "ROUTE needs a rule and a model: ROUTE RULE MODEL");
        if (rc < 0) lex_error(lx, vat, "%s", e2);
        free(value);
        return rc;
    }
    default: {
        /* REQUIRES: Ollama prefixes a missing 'v', checks semver, stores without 'v' */
        const char *v = value[0] == 'v' ? value + 1 : value;
        if (!semver_valid(v)) {
            lex_error(lx, vat, "requires must be a valid semver (e.g. 0.14.0), got '%s'", value);
            free(value);
            return -1;
        }
        memmove(value, v, strlen(v) + 1);
        return set_once(ps, &m->requires, &ps->requires_line, "REQUIRES", value, at);
    }
    }
}

/* UTF-16 (BOM first, its byte order) to a malloc'd NUL-terminated UTF-8 string;
 * NULL with an error at the character where the input is not valid UTF-16. */
static char *utf16_to_utf8(lexer *lx, const char *data, size_t len)
{
    const unsigned char *b = (const unsigned char *)data;
    bool le = b[0] == 0xFF;
    char *out = malloc(len / 2 * 3 + 1);   /* each 2-byte unit gives at most 3 bytes */
    if (!out) {
        lex_error(lx, here(lx), "out of memory");
        return NULL;
    }
    size_t n = 0;
    const char *why = NULL;
    for (size_t i = 2; i < len; i += 2) {
        if (i + 1 >= len) {
            why = "an odd number of bytes";
            break;
        }
        unsigned u = le ? b[i] | (unsigned)b[i + 1] << 8 : (unsigned)b[i] << 8 | b[i + 1];
        unsigned cp = u;
        if (u >= 0xD800 && u <= 0xDFFF) {
            unsigned v = 0;
            if (u <= 0xDBFF && i + 3 < len)
                v = le ? b[i + 2] | (unsigned)b[i + 3] << 8 : (unsigned)b[i + 2] << 8 | b[i + 3];
            if (!(v >= 0xDC00 && v <= 0xDFFF)) {
                why = "an unpaired surrogate";
                break;
            }
            cp = 0x10000 + ((u - 0xD800) << 10) + (v - 0xDC00);
            i += 2;
        }
        if (cp == 0) {   /* kept out of the C string: the parser reports it */
            why = "a NUL character";
            break;
        }
        if (cp < 0x80) out[n++] = (char)cp;
        else if (cp < 0x800) out[n++] = (char)(0xC0 | cp >> 6), out[n++] = (char)(0x80 | (cp & 0x3F));
        else if (cp < 0x10000)
            out[n++] = (char)(0xE0 | cp >> 12), out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F)),
            out[n++] = (char)(0x80 | (cp & 0x3F));
        else
            out[n++] = (char)(0xF0 | cp >> 18), out[n++] = (char)(0x80 | ((cp >> 12) & 0x3F)),
            out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[n++] = (char)(0x80 | (cp & 0x3F));
    }
    out[n] = '\0';
    if (!why) return out;
    /* the position of the bad unit: the decoded text before it, counted like the lexer */
    lexer t = *lx;
    t.s = out;
    t.len = n;
    while (t.pos < t.len) adv(&t);
    lex_error(lx, here(&t), "invalid UTF-16: %s", why);
    free(out);
    return NULL;
}

static qfit_modelfile *parse_named(const char *data, size_t len, const char *name, qfit_warnings *w,
                                   char *err, size_t err_len)
{
    parser ps = { 0 };
    lexer *lx = &ps.lx;
    lex_init(lx, data, len, name, err, err_len);
    lx->w = w;
    if (len > QFIT_MODELFILE_MAX_BYTES) {
        lex_error(lx, here(lx), "the Modelfile is larger than %u MiB", QFIT_MODELFILE_MAX_BYTES >> 20);
        return NULL;
    }
    if (len >= 2 && ((data[0] == '\xFF' && data[1] == '\xFE') || (data[0] == '\xFE' && data[1] == '\xFF'))) {
        /* UTF-16 with a BOM (PowerShell's `>` writes it): decode, then parse the UTF-8 */
        char *utf8 = utf16_to_utf8(lx, data, len);
        if (!utf8) return NULL;
        qfit_modelfile *m = parse_named(utf8, strlen(utf8), name, w, err, err_len);
        free(utf8);
        return m;
    }
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) lx->pos = 3;
    if (check_text(lx) < 0) return NULL;
    if (!(ps.m = qfit_modelfile_new())) {
        lex_error(lx, here(lx), "out of memory");
        return NULL;
    }
    size_t count = 0;
    while (lx->pos < lx->len) {
        char c = lx->s[lx->pos];
        if (is_blank(c) || is_nl(c)) {
            adv(lx);
        } else if (c == '#') {   /* a comment runs to the end of its line */
            while (lx->pos < lx->len && !is_nl(lx->s[lx->pos])) adv(lx);
        } else {
            if (++count > QFIT_MODELFILE_MAX_INSTRUCTIONS) {
                lex_error(lx, here(lx), "more than %u instructions", QFIT_MODELFILE_MAX_INSTRUCTIONS);
                goto fail;
            }
            if (parse_instruction(&ps) < 0) goto fail;
        }
    }
    if (ps.m->nroutes) {   /* a routing model names other models and is nothing else */
        const qfit_modelfile *m = ps.m;
        const char *other = m->from ? "FROM" : m->tmpl ? "TEMPLATE" : m->system ? "SYSTEM" : m->requires ? "REQUIRES"
                            : qfit_params_count(m->params) ? "PARAMETER" : m->nlicenses ? "LICENSE"
                            : m->nmessages ? "MESSAGE" : NULL;
        if (other) {
            lex_error(lx, (mpos){ 0, 1, 1 }, "a routing model (ROUTE lines) has no %s: it sends each request to "
                      "one of the models it names, which have their own", other);
            goto fail;
        }
        bool has_default = false;
        for (size_t i = 0; i < m->nroutes; i++) has_default |= !strcmp(m->routes[i].rule, "default");
        if (!has_default) {
            lex_error(lx, (mpos){ 0, 1, 1 }, "a routing model needs a ROUTE default MODEL line (where requests no "
                      "rule matches go)");
            goto fail;
        }
        return ps.m;
    }
    if (!ps.m->from) {
        lex_error(lx, (mpos){ 0, 1, 1 }, "no FROM line");
        goto fail;
    }
    return ps.m;
fail:
    qfit_modelfile_free(ps.m);
    return NULL;
}

qfit_modelfile *qfit_modelfile_parse(const char *data, size_t len, qfit_warnings *w, char *err, size_t err_len)
{
    return parse_named(data, len, "modelfile", w, err, err_len);
}

qfit_modelfile *qfit_modelfile_parse_file(const char *path, qfit_warnings *w, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        mf_err(err, err_len, "%s: %s", path, strerror(errno));
        return NULL;
    }
    /* read at most one byte past the limit, so an oversized file is detected without reading it all */
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    qfit_modelfile *m = NULL;
    while (buf) {
        if (n == cap) {
            size_t ncap = cap * 2 > QFIT_MODELFILE_MAX_BYTES + 1 ? QFIT_MODELFILE_MAX_BYTES + 1 : cap * 2;
            if (ncap == cap) break;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (!buf) mf_err(err, err_len, "%s: out of memory", path);
    else if (ferror(f)) mf_err(err, err_len, "%s: read error: %s", path, strerror(errno));
    else m = parse_named(buf, n, path, w, err, err_len);
    fclose(f);
    free(buf);
    return m;
}

/* =============================================================== printer */

typedef struct {
    char  *s;
    size_t len, cap;
    bool   oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

/* Whether `open v close` followed by a newline reads back as exactly v. */
static bool reads_back(const char *q, const char *v)
{
    size_t ql = strlen(q), vl = strlen(v), n = 2 * ql + vl + 1;
    char *text = malloc(n + 1);
    if (!text) return false;
    memcpy(text, q, ql);
    memcpy(text + ql, v, vl);
    memcpy(text + ql + vl, q, ql);
    text[n - 1] = '\n';
    text[n] = '\0';
    lexer lx;
    lex_init(&lx, text, n, "", NULL, 0);
    char *got = NULL;
    mpos at;
    bool ok = lex_value(&lx, &got, &at) == 0 && lx.pos == n - 1 && strcmp(got, v) == 0;
    free(got);
    free(text);
    return ok;
}

/* Write value v (of `what`) in the first form that reads back unchanged:
 * Ollama's choice first, so ordinary output looks like Ollama's. */
static int put_value(sbuf *b, const char *v, const char *what, char *err, size_t err_len)
{
    lexer lx;
    char msg[256];
    lex_init(&lx, v, strlen(v), "value", msg, sizeof msg);
    if (check_text(&lx) < 0) {
        mf_err(err, err_len, "cannot write %s in a Modelfile: %s", what, msg);
        return -1;
    }
    static const char *const FORMS[3] = { "", "\"", "\"\"\"" };   /* bare, "...", """...""" */
    size_t n = strlen(v);
    bool ollama_quotes = strchr(v, '\n') || (n && (v[0] == ' ' || v[n - 1] == ' '));
    int first = n == 0 ? 1   /* `SYSTEM ""`, not a trailing blank an editor may strip */
              : ollama_quotes ? (strchr(v, '"') ? 2 : 1) : 0;
    for (int t = 0; t < 3; t++) {
        int i = t == 0 ? first : (t - 1) + (t - 1 >= first);   /* then the other two, in order */
        if (reads_back(FORMS[i], v)) {
            puts_(b, FORMS[i]);
            puts_(b, v);
            puts_(b, FORMS[i]);
            return 0;
        }
    }
    mf_err(err, err_len, "cannot write %s in a Modelfile: no quoting (bare, \"...\", \"\"\"...\"\"\") reads it back "
           "unchanged (Modelfile values have no escapes)", what);
    return -1;
}

static int put_line(sbuf *b, const char *instr, const char *v, const char *what, char *err, size_t err_len)
{
    puts_(b, instr);
    puts_(b, " ");
    if (put_value(b, v, what, err, err_len) < 0) return -1;
    puts_(b, "\n");
    return 0;
}

char *qfit_modelfile_print(const qfit_modelfile *m, const char *short_name, char *err, size_t err_len)
{
    sbuf b = { 0 };
    char what[64];
    if ((!m->from || !m->from[0]) && !m->nroutes) {
        mf_err(err, err_len, "cannot write a Modelfile without FROM");
        return NULL;
    }
    if (short_name) {
        if (strpbrk(short_name, "\r\n")) {
            mf_err(err, err_len, "model name contains a line break");
            return NULL;
        }
        puts_(&b, "# Modelfile generated by \"qfit show\"\n"
                  "# To build a new Modelfile based on this, replace FROM with:\n# FROM ");
        puts_(&b, short_name);
        puts_(&b, "\n\n");
    }
    for (size_t i = 0; i < m->nroutes; i++) {
        puts_(&b, "ROUTE ");
        puts_(&b, m->routes[i].rule);
        puts_(&b, " ");
        puts_(&b, m->routes[i].model);
        puts_(&b, "\n");
    }
    if (m->from && put_line(&b, "FROM", m->from, "FROM", err, err_len) < 0) goto fail;
    if (m->tmpl && put_line(&b, "TEMPLATE", m->tmpl, "TEMPLATE", err, err_len) < 0) goto fail;
    if (m->system && put_line(&b, "SYSTEM", m->system, "SYSTEM", err, err_len) < 0) goto fail;
    for (size_t i = 0; i < qfit_params_count(m->params); i++) {
        const qfit_param *e = qfit_params_at(m->params, i);
        char instr[96];
        snprintf(instr, sizeof instr, "PARAMETER %s", e->name);
        if (e->type == QFIT_PARAM_STRINGS) {
            for (size_t k = 0; k < e->nstrs; k++) {
                snprintf(what, sizeof what, "PARAMETER %s value %zu", e->name, k + 1);
                if (put_line(&b, instr, e->strs[k], what, err, err_len) < 0) goto fail;
            }
        } else {
            char *t = qfit_params_value_text(e);
            if (!t) goto oom;
            int rc = put_line(&b, instr, t, e->name, err, err_len);
            free(t);
            if (rc < 0) goto fail;
        }
    }
    for (size_t i = 0; i < m->nlicenses; i++) {
        snprintf(what, sizeof what, "LICENSE %zu", i + 1);
        if (put_line(&b, "LICENSE", m->licenses[i], what, err, err_len) < 0) goto fail;
    }
    for (size_t i = 0; i < m->nmessages; i++) {
        const qfit_modelfile_message *msg = &m->messages[i];
        if (!valid_role(msg->role)) {
            mf_err(err, err_len, "cannot write MESSAGE %zu in a Modelfile: role '%s' is not system, user or assistant",
                   i + 1, msg->role);
            goto fail;
        }
        char instr[32];
        snprintf(instr, sizeof instr, "MESSAGE %s", msg->role);
        snprintf(what, sizeof what, "MESSAGE %zu", i + 1);
        if (put_line(&b, instr, msg->content, what, err, err_len) < 0) goto fail;
    }
    if (m->requires && put_line(&b, "REQUIRES", m->requires, "REQUIRES", err, err_len) < 0) goto fail;
    if (b.oom) goto oom;
    return b.s;
oom:
    mf_err(err, err_len, "out of memory");
fail:
    free(b.s);
    return NULL;
}

/* ========================================================= FROM resolution */

int qfit_modelfile_resolve_from(const char *from, const char *modelfile_dir,
                                qfit_from_kind *kind, char **path_out, char *err, size_t err_len)
{
    *path_out = NULL;
    char *path = NULL;
    if (from[0] == '\0') {
        mf_err(err, err_len, "FROM needs a model name or a path");
        return -1;
    }
    if (from[0] == '/') {
        path = mf_strdup(from);
    } else if (from[0] == '~') {
        /* ~ and ~/x: the current user's home; ~user and ~user/x: that user's */
        const char *slash = strchr(from, '/');
        size_t ulen = slash ? (size_t)(slash - from - 1) : strlen(from) - 1;
        const char *home = NULL;
        struct passwd pwbuf, *pw = NULL;
        char strbuf[16384];   /* getpw*_r: thread-safe, unlike getpwnam */
        if (ulen == 0) {
            home = getenv("HOME");
            if ((!home || !home[0]) && getpwuid_r(getuid(), &pwbuf, strbuf, sizeof strbuf, &pw) == 0 && pw)
                home = pw->pw_dir;
        } else {
            char user[256];
            if (ulen >= sizeof user) ulen = sizeof user - 1;
            memcpy(user, from + 1, ulen);
            user[ulen] = '\0';
            if (getpwnam_r(user, &pwbuf, strbuf, sizeof strbuf, &pw) != 0 || !pw) {
                mf_err(err, err_len, "FROM %s: no user '%s'", from, user);
                return -1;
            }
            home = pw->pw_dir;
        }
        if (!home) {
            mf_err(err, err_len, "FROM %s: cannot find the home directory", from);
            return -1;
        }
        if (asprintf(&path, "%s%s", home, slash ? slash : "") < 0) path = NULL;
    } else {
        if (asprintf(&path, "%s/%s", modelfile_dir ? modelfile_dir : ".", from) < 0) path = NULL;
    }
    if (!path) {
        mf_err(err, err_len, "out of memory");
        return -1;
    }
    struct stat st;
    if (stat(path, &st) == 0) {
        char *real = realpath(path, NULL);
        if (!real) {
            mf_err(err, err_len, "FROM %s: %s: %s", from, path, strerror(errno));
            free(path);
            return -1;
        }
        free(path);
        *kind = S_ISDIR(st.st_mode) ? QFIT_FROM_DIR : QFIT_FROM_FILE;
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
            mf_err(err, err_len, "FROM %s: %s is neither a regular file nor a directory", from, real);
            free(real);
            return -1;
        }
        *path_out = real;
        return 0;
    }
    int e = errno;
    size_t n = strlen(from);
    bool looks_like_path = from[0] == '/' || from[0] == '~' || strncmp(from, "./", 2) == 0 ||
                           strncmp(from, "../", 3) == 0 || strcmp(from, ".") == 0 || strcmp(from, "..") == 0 ||
                           (n >= 5 && strcasecmp(from + n - 5, ".gguf") == 0);
    if ((e != ENOENT && e != ENOTDIR) || looks_like_path) {
        mf_err(err, err_len, "FROM %s: %s: %s", from, path, strerror(e));
        free(path);
        return -1;
    }
    free(path);
    *kind = QFIT_FROM_NAME;
    return 0;
}
