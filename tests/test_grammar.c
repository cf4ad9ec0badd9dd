/* Suite `grammar`: GBNF parsing and matching (llama.cpp's integration vectors as
 * data), token masks against token-by-token checks, limits as errors. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/grammar.h"
#include "util/testutil.h"

static qfit_grammar *parse_ok(const char *text)
{
    char err[256];
    qfit_grammar *g = qfit_grammar_parse(text, strlen(text), err, sizeof err);
    cr_assert(g, "grammar refused: %s\n%s", err, text);
    return g;
}

/* 1: the whole string is accepted and the grammar is complete after it */
static int matches(qfit_grammar_matcher *m, const char *s, size_t n)
{
    cr_assert_eq(qfit_grammar_matcher_reset(m), 0);
    const int rc = qfit_grammar_matcher_accept(m, s, n);
    cr_assert_geq(rc, 0, "matcher error: %s", qfit_grammar_matcher_error(m));
    return rc == 1 && qfit_grammar_matcher_complete(m);
}

/* the same, one byte at a time (tokens may split UTF-8 characters) */
static int matches_bytewise(qfit_grammar_matcher *m, const char *s, size_t n)
{
    cr_assert_eq(qfit_grammar_matcher_reset(m), 0);
    for (size_t k = 0; k < n; k++) {
        const int rc = qfit_grammar_matcher_accept(m, s + k, 1);
        cr_assert_geq(rc, 0, "matcher error: %s", qfit_grammar_matcher_error(m));
        if (rc == 0) return 0;
    }
    return qfit_grammar_matcher_complete(m);
}

static json_t *load_vectors(void)
{
    json_error_t je;
    json_t *j = json_load_file("tests/data/grammar/llama_integration.json", 0, &je);
    cr_assert(j, "tests/data/grammar/llama_integration.json: %s", je.text);
    return j;
}

Test(grammar, llama_integration_vectors_accept_and_reject)
{
    json_t *j = load_vectors();
    size_t i, k;
    json_t *c, *s;
    int n_checked = 0;
    json_array_foreach(json_object_get(j, "grammars"), i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        qfit_grammar *g = parse_ok(json_string_value(json_object_get(c, "grammar")));
        char err[256];
        qfit_grammar_matcher *m = qfit_grammar_matcher_new(g, err, sizeof err);
        if (!m) {   /* only the "hang" grammar may hit the stack limit, with a message */
            cr_assert_str_eq(name, "hang", "%s: %s", name, err);
            cr_assert(strstr(err, "stacks") || strstr(err, "frames"), "%s", err);
            qfit_grammar_free(g);
            continue;
        }
        json_array_foreach(json_object_get(c, "pass"), k, s) {
            const char *t = json_string_value(s);
            cr_expect(matches(m, t, strlen(t)), "%s: \"%s\" should match", name, t);
            cr_expect(matches_bytewise(m, t, strlen(t)), "%s: \"%s\" should match byte by byte", name, t);
            n_checked++;
        }
        json_array_foreach(json_object_get(c, "fail"), k, s) {
            const char *t = json_string_value(s);
            cr_expect(!matches(m, t, strlen(t)), "%s: \"%s\" should not match", name, t);
            cr_expect(!matches_bytewise(m, t, strlen(t)), "%s: \"%s\" should not match byte by byte", name, t);
            n_checked++;
        }
        qfit_grammar_matcher_free(m);
        qfit_grammar_free(g);
    }
    cr_assert_geq(n_checked, 100);
    json_decref(j);
}

Test(grammar, llama_invalid_grammars_refused_with_reason)
{
    json_t *j = load_vectors();
    const char *expect[] = { "no 'root' rule", "undefined rule 'numero'", "left-recursive", "left-recursive",
                             "left-recursive", "left-recursive" };
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(j, "invalid"), i, c) {
        const char *text = json_string_value(json_object_get(c, "grammar"));
        char err[256] = "";
        qfit_grammar *g = qfit_grammar_parse(text, strlen(text), err, sizeof err);
        cr_expect_null(g, "%s: accepted", json_string_value(json_object_get(c, "name")));
        qfit_grammar_free(g);
        cr_assert_lt(i, sizeof expect / sizeof *expect);
        cr_expect(strstr(err, expect[i]), "%s: message \"%s\" lacks \"%s\"",
                  json_string_value(json_object_get(c, "name")), err, expect[i]);
    }
    json_decref(j);
}

/* a left-recursive rule is named with the line:column of its definition */
Test(grammar, left_recursion_names_the_rule)
{
    const char *text = "root ::= a\n"
                       "a ::= \"x\" | b \"y\"\n"
                       "b ::= a \"z\"\n";
    char err[256] = "";
    qfit_grammar *g = qfit_grammar_parse(text, strlen(text), err, sizeof err);
    cr_assert_null(g);
    cr_expect(strstr(err, "left-recursive"), "%s", err);
    cr_expect(strstr(err, "'a'") || strstr(err, "'b'"), "%s", err);
    /* tail recursion and nullable loops are fine */
    qfit_grammar_free(parse_ok("root ::= \"x\" root | \"\"\n"));
    qfit_grammar_free(parse_ok("root ::= ( \"a\"? )* \"b\"\n"));
}

Test(grammar, parse_errors_name_line_and_column)
{
    static const struct { const char *text, *msg; } cases[] = {
        { "root ::= \"a\"\nfoo ::= [b\n", "line 2, column 9: unterminated character class" },
        { "root ::= \"abc\n", "line 1, column 10: unterminated string literal" },
        { "root ::= x\n", "line 1, column 10: undefined rule 'x'" },
        { "root ::= \"a\"\n  root ::= \"b\"\n", "line 2, column 3: rule 'root' is defined twice" },
        { "root := \"a\"\n", "line 1, column 6: expected '::='" },
        { "root ::= (\"a\"\n", "line 1, column 10: '(' without a matching ')'" },
        { "root ::= \"a\" )\n", "line 1, column 14: unexpected ')'" },
        { "root ::= \"\\q\"\n", "line 1, column 11: unknown escape '\\q'" },
        { "root ::= \"\\x4\"\n", "line 1, column 11: '\\x' needs 2 hexadecimal digits" },
        { "root ::= [z-a]\n", "line 1, column 11: range end U+61 is below its start U+7A" },
        { "root ::= *\n", "line 1, column 10: '*' has nothing to repeat" },
        { "root ::= \"a\"{3,2}\n", "line 1, column 13: repetition {3,2}" },
        { "root ::= \"a\"{10001}\n", "line 1, column 13: repetition count above 10000" },
        { "# only a comment\nfoo ::= \"a\"\n", "no 'root' rule" },
        { "root ::= <[12]>\n", "line 1, column 10: token references" },
        { "  ::= \"a\"\n", "line 1, column 3: expected a rule name" },
        { "root ::= \"\xC3\"\n", "line 1, column 11: " },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[256] = "";
        qfit_grammar *g = qfit_grammar_parse(cases[i].text, strlen(cases[i].text), err, sizeof err);
        cr_expect_null(g, "case %zu accepted", i);
        qfit_grammar_free(g);
        cr_expect(strstr(err, cases[i].msg), "case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].msg);
    }
}

Test(grammar, nesting_60000_groups_is_an_error_not_a_stack_overflow)
{
    const size_t depth = 60000;
    char *text = malloc(depth * 2 + 64);
    size_t n = (size_t)sprintf(text, "root ::= ");
    memset(text + n, '(', depth);
    n += depth;
    n += (size_t)sprintf(text + n, "\"a\"");
    memset(text + n, ')', depth);
    n += depth;
    char err[256] = "";
    qfit_grammar *g = qfit_grammar_parse(text, n, err, sizeof err);
    cr_assert_null(g);
    cr_expect(strstr(err, "nested deeper than 256"), "%s", err);
    cr_expect(strstr(err, "line 1, column 266"), "%s", err);
    free(text);
    /* 256 levels are fine and match */
    text = malloc(1024);
    n = (size_t)sprintf(text, "root ::= ");
    for (int k = 0; k < 256; k++) text[n++] = '(';
    n += (size_t)sprintf(text + n, "\"a\"");
    for (int k = 0; k < 256; k++) text[n++] = ')';
    text[n] = 0;
    g = parse_ok(text);
    qfit_grammar_matcher *m = qfit_grammar_matcher_new(g, err, sizeof err);
    cr_assert(m, "%s", err);
    cr_expect(matches(m, "a", 1));
    qfit_grammar_matcher_free(m);
    qfit_grammar_free(g);
    free(text);
}

Test(grammar, too_many_stacks_or_frames_is_an_error_not_allow_all)
{
    /* 2^13 ways to split a run of x's: more alive stacks than the limit */
    const char *text = "root ::= t t t t t t t t t t t t t t\nt ::= \"x\"*\n";
    qfit_grammar *g = parse_ok(text);
    char err[256];
    qfit_grammar_matcher *m = qfit_grammar_matcher_new(g, err, sizeof err);
    cr_assert(m, "%s", err);
    /* identical stacks are merged, so this stays small: accepted */
    cr_expect(matches(m, "xxxxxxxxxxxxxxxxxxxx", 20));
    qfit_grammar_matcher_free(m);
    qfit_grammar_free(g);
    /* 5000 ways to be at the same place (which optional "x" took it): too many stacks */
    g = parse_ok("root ::= (\"x\"?){0,5000} \"!\"\n");
    m = qfit_grammar_matcher_new(g, err, sizeof err);
    cr_expect_null(m);
    cr_expect(strstr(err, "more than 4096 parse stacks are alive"), "%s", err);
    qfit_grammar_matcher_free(m);
    qfit_grammar_free(g);
    g = parse_ok("root ::= (\"x\"?){0,4000} \"!\"\n");
    m = qfit_grammar_matcher_new(g, err, sizeof err);
    cr_assert(m, "%s", err);
    cr_expect(matches(m, "xxx!", 4));
    qfit_grammar_matcher_free(m);
    qfit_grammar_free(g);
    /* a stack that must grow with the input: nested brackets past the depth limit */
    g = parse_ok("root ::= \"[\" root \"]\" | \"x\"\n");
    m = qfit_grammar_matcher_new(g, err, sizeof err);
    cr_assert(m, "%s", err);
    size_t n = QFIT_GRAMMAR_MAX_DEPTH + 10;
    char *s = malloc(n);
    memset(s, '[', n);
    cr_assert_eq(qfit_grammar_matcher_reset(m), 0);
    int rc = qfit_grammar_matcher_accept(m, s, n);
    cr_expect_eq(rc, -1, "rc %d", rc);
    cr_expect(strstr(qfit_grammar_matcher_error(m), "deeper than"), "%s", qfit_grammar_matcher_error(m));
    /* and the mask reports the error too (all zeros), never all ones */
    cr_assert_eq(qfit_grammar_matcher_reset(m), 0);
    cr_assert_eq(qfit_grammar_matcher_accept(m, s, QFIT_GRAMMAR_MAX_DEPTH - 2), 1);
    const char *toks[] = { "[[[[[[", "x", "]" };
    const size_t lens[] = { 6, 1, 1 };
    qfit_grammar_vocab *v = qfit_grammar_vocab_new(3, toks, lens, err, sizeof err);
    cr_assert(v, "%s", err);
    uint8_t allowed[3] = { 1, 1, 1 };
    cr_expect_eq(qfit_grammar_matcher_mask(m, v, allowed), -1);
    cr_expect(allowed[0] == 0 && allowed[1] == 0 && allowed[2] == 0);
    qfit_grammar_vocab_free(v);
    free(s);
    qfit_grammar_matcher_free(m);
    qfit_grammar_free(g);
}

Test(grammar, complete_and_can_continue)
{
    qfit_grammar *g = parse_ok("root ::= \"ab\" | \"a\" [0-9]+\n");
    char err[256];
    qfit_grammar_matcher *m = qfit_grammar_matcher_new(g, err, sizeof err);
    cr_assert(!qfit_grammar_matcher_complete(m) && qfit_grammar_matcher_can_continue(m));
    cr_assert_eq(qfit_grammar_matcher_accept(m, "a", 1), 1);
    cr_assert(!qfit_grammar_matcher_complete(m) && qfit_grammar_matcher_can_continue(m));
    cr_assert_eq(qfit_grammar_matcher_accepts(m, "b", 1), 1);
    cr_assert_eq(qfit_grammar_matcher_accept(m, "c", 1), 0);   /* rejected: state unchanged */
    cr_assert_eq(qfit_grammar_matcher_accept(m, "b", 1), 1);
    cr_assert(qfit_grammar_matcher_complete(m) && !qfit_grammar_matcher_can_continue(m));
    cr_assert_eq(qfit_grammar_matcher_reset(m), 0);
    cr_assert_eq(qfit_grammar_matcher_accept(m, "a7", 2), 1);
    cr_assert(qfit_grammar_matcher_complete(m) && qfit_grammar_matcher_can_continue(m));
    qfit_grammar_matcher_free(m);
    qfit_grammar_free(g);
    /* inside a UTF-8 character the grammar is never complete */
    g = parse_ok("root ::= \"a\" \"é\"?\n");
    m = qfit_grammar_matcher_new(g, err, sizeof err);
    cr_assert_eq(qfit_grammar_matcher_accept(m, "a", 1), 1);
    cr_assert(qfit_grammar_matcher_complete(m));
    cr_assert_eq(qfit_grammar_matcher_accept(m, "\xC3", 1), 1);
    cr_assert(!qfit_grammar_matcher_complete(m) && qfit_grammar_matcher_can_continue(m));
    cr_assert_eq(qfit_grammar_matcher_accept(m, "\xA9", 1), 1);
    cr_assert(qfit_grammar_matcher_complete(m) && !qfit_grammar_matcher_can_continue(m));
    qfit_grammar_matcher_free(m);
    qfit_grammar_free(g);
}

Test(grammar, utf8_classes_escapes_and_invalid_bytes)
{
    qfit_grammar *g = parse_ok("root ::= [α-ω]+ \"\\x41\\u00e9\\U0001F600\" [^\\n\\t\"] .\n");
    char err[256];
    qfit_grammar_matcher *m = qfit_grammar_matcher_new(g, err, sizeof err);
    const char *ok = "αβωAé😀x€";
    cr_expect(matches(m, ok, strlen(ok)));
    cr_expect(matches_bytewise(m, ok, strlen(ok)));
    const char *bad[] = { "αAé😀\nx", "AAé😀xx", "α\xC0\x80", "α\xED\xA0\x80", "α\x80", "αAé😀x\xF5\x80\x80\x80" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) cr_expect(!matches(m, bad[i], strlen(bad[i])), "bad %zu", i);
    /* a partial character is alive only if it can still become an allowed one */
    cr_assert_eq(qfit_grammar_matcher_reset(m), 0);
    cr_expect_eq(qfit_grammar_matcher_accepts(m, "\xCE", 1), 1);   /* lead byte of α..ο */
    cr_expect_eq(qfit_grammar_matcher_accepts(m, "\xD0", 1), 0);   /* Cyrillic lead: no */
    cr_expect_eq(qfit_grammar_matcher_accepts(m, "\xCF\x80", 2), 1);  /* π */
    qfit_grammar_matcher_free(m);
    qfit_grammar_free(g);
}

/* ---------------------------------------------------------------- masks */

static uint32_t lcg(uint32_t *s) { return *s = *s * 1664525u + 1013904223u; }

/* a vocabulary of pieces of the strings the grammars use, plus UTF-8 pieces
 * (whole, split, invalid) and random bytes */
static int make_vocab(char ***out, size_t **lens, uint32_t seed)
{
    static const char *base[] = { "{", "}", "[", "]", "\"", ":", ",", " ", "\n", "true", "false", "null", "0", "1",
                                  "12", "-", ".", "e", "a", "ab", "abc", "\\", "\\\"", "\\u", "x", "xx", "é", "\xC3",
                                  "\xA9", "😀", "\xF0\x9F", "\x98\x80", "\xFF", "\xC0\x80", "\"a", "a\"", "\":",
                                  "\",\"", "{\"", "\"}", "[\"", "\"]", "α", "β", "\xCE", "+", "*", "(", ")", "7" };
    const int nb = (int)(sizeof base / sizeof *base);
    const int n = 3000;
    char **v = calloc((size_t)n, sizeof *v);
    size_t *l = calloc((size_t)n, sizeof *l);
    for (int i = 0; i < n; i++) {
        char buf[64];
        size_t len = 0;
        /* three big subtrees (the loop shortcut applies to them): under "Q" a token that
         * closes a JSON string, under "W" invalid UTF-8, under "V" non-ASCII characters */
        static const char *odd[] = { "Q\"q", "Q\\q", "Qy\xC3", "W\xFF", "W\xC3\xA9\xA9", "Wy\xA9", "V\xC3\xA9",
                                     "V\xF0\x9F\x98\x80", "Vy\xCE" };
        const int n_odd = (int)(sizeof odd / sizeof *odd);
        if (i < nb) {
            len = strlen(base[i]);
            memcpy(buf, base[i], len);
        } else if (i < nb + 900) {
            const int k = i - nb;
            len = (size_t)sprintf(buf, "%c%c%c", "QWV"[k / 300], 'a' + (k % 26), 'a' + (k / 26 % 11));
        } else if (i < nb + 900 + n_odd) {
            len = strlen(odd[i - nb - 900]);
            memcpy(buf, odd[i - nb - 900], len);
        } else if (i % 97 == 0) {
            len = 0;   /* an empty (control) token: never allowed */
        } else {
            int parts = 1 + (int)(lcg(&seed) >> 16) % 4;
            for (int k = 0; k < parts; k++) {
                if ((lcg(&seed) >> 16) % 13 == 0) buf[len++] = (char)(lcg(&seed) >> 24);
                else {
                    const char *b = base[(lcg(&seed) >> 16) % (uint32_t)nb];
                    if (len + strlen(b) < sizeof buf) { memcpy(buf + len, b, strlen(b)); len += strlen(b); }
                }
            }
        }
        v[i] = malloc(len + 1);
        memcpy(v[i], buf, len);
        l[i] = len;
    }
    *out = v;
    *lens = l;
    return n;
}

/* the mask at every prefix of s equals the token-by-token check */
static void check_masks(const char *grammar, const char *s)
{
    qfit_grammar *g = parse_ok(grammar);
    char err[256];
    qfit_grammar_matcher *m = qfit_grammar_matcher_new(g, err, sizeof err);
    cr_assert(m, "%s", err);
    char **toks;
    size_t *lens;
    const int n = make_vocab(&toks, &lens, 7);
    qfit_grammar_vocab *v = qfit_grammar_vocab_new(n, (const char *const *)toks, lens, err, sizeof err);
    cr_assert(v, "%s", err);
    uint8_t *allowed = malloc((size_t)n);
    const size_t len = strlen(s);
    for (size_t at = 0; at <= len; at++) {
        cr_assert_eq(qfit_grammar_matcher_reset(m), 0);
        cr_assert_eq(qfit_grammar_matcher_accept(m, s, at), 1, "prefix %zu of %s", at, s);
        const int64_t count = qfit_grammar_matcher_mask(m, v, allowed);
        cr_assert_geq(count, 0, "%s", qfit_grammar_matcher_error(m));
        int64_t expect = 0;
        for (int t = 0; t < n; t++) {
            const int want = lens[t] > 0 && qfit_grammar_matcher_accepts(m, toks[t], lens[t]) == 1;
            expect += want;
            cr_assert_eq(allowed[t], want, "%s at %zu: token %d (%zu bytes) mask %d, check %d", grammar, at, t,
                         lens[t], allowed[t], want);
        }
        cr_assert_eq(count, expect);
    }
    free(allowed);
    qfit_grammar_vocab_free(v);
    for (int t = 0; t < n; t++) free(toks[t]);
    free(toks);
    free(lens);
    qfit_grammar_matcher_free(m);
    qfit_grammar_free(g);
}

#define JSON_GBNF                                                                                        \
    "root ::= value\n"                                                                                   \
    "value ::= object | array | string | number | (\"true\" | \"false\" | \"null\")\n"                   \
    "object ::= \"{\" ws ( string \":\" ws value (\",\" ws string \":\" ws value)* )? \"}\" ws\n"        \
    "array ::= \"[\" ws ( value (\",\" ws value)* )? \"]\" ws\n"                                         \
    "string ::= \"\\\"\" ( [^\"\\\\\\x00-\\x1f] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4}) )* \"\\\"\" ws\n" \
    "number ::= \"-\"? ([0-9] | [1-9] [0-9]*) (\".\" [0-9]+)? ([eE] [-+]? [0-9]+)? ws\n"                 \
    "ws ::= [ \\n]{0,2}\n"

Test(grammar, mask_equals_token_by_token_check)
{
    check_masks(JSON_GBNF, "{\"a\\\"é😀b\": [1, -2.5e7, true, {\"x\":null}], \"αβ\":\"\"}");
    check_masks("root ::= (\"ab\" | [a-c]+ \"x\") \"é\"? [^a]{0,3}\n", "abcxé😀zz");
    check_masks("root ::= \"a\"* \"b\"\n", "aaaab");
    check_masks("root ::= \"s\" [a-zA-Z]* \".\"\n", "sxyz.");
}

Test(grammar, vocab_bad_arguments)
{
    char err[256] = "";
    cr_expect_null(qfit_grammar_vocab_new(0, NULL, NULL, err, sizeof err));
    cr_expect(strstr(err, "n_vocab 0"), "%s", err);
}

/* -------------------------------------------------------- JSON Schema */

#include "qfit/schema.h"

static qfit_grammar *schema_grammar(const char *schema, char *err, size_t err_len)
{
    char *gbnf = qfit_schema_to_gbnf(schema, strlen(schema), err, err_len);
    if (!gbnf) return NULL;
    qfit_grammar *g = qfit_grammar_parse(gbnf, strlen(gbnf), err, err_len);
    cr_assert(g, "generated grammar refused: %s\n%s", err, gbnf);
    free(gbnf);
    return g;
}

Test(grammar, schema_llama_vectors_accept_and_reject)
{
    json_error_t je;
    json_t *j = json_load_file("tests/data/grammar/llama_schema.json", 0, &je);
    cr_assert(j, "%s", je.text);
    size_t i, k;
    json_t *c, *s;
    int n_checked = 0;
    json_array_foreach(json_object_get(j, "schemas"), i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        char *schema = json_dumps(json_object_get(c, "schema"), 0);
        char err[512];
        qfit_grammar *g = schema_grammar(schema, err, sizeof err);
        cr_assert(g, "%s: %s", name, err);
        qfit_grammar_matcher *m = qfit_grammar_matcher_new(g, err, sizeof err);
        cr_assert(m, "%s: %s", name, err);
        json_array_foreach(json_object_get(c, "pass"), k, s) {
            const char *t = json_string_value(s);
            cr_expect(matches(m, t, strlen(t)), "%s: '%s' should match", name, t);
            n_checked++;
        }
        json_array_foreach(json_object_get(c, "fail"), k, s) {
            const char *t = json_string_value(s);
            cr_expect(!matches(m, t, strlen(t)), "%s: '%s' should not match", name, t);
            n_checked++;
        }
        qfit_grammar_matcher_free(m);
        qfit_grammar_free(g);
        free(schema);
    }
    cr_assert_geq(n_checked, 150);
    json_array_foreach(json_object_get(j, "refused"), i, c) {
        char *schema = json_dumps(json_object_get(c, "schema"), 0);
        char err[512] = "";
        char *gbnf = qfit_schema_to_gbnf(schema, strlen(schema), err, sizeof err);
        cr_expect_null(gbnf, "%s: accepted", json_string_value(json_object_get(c, "name")));
        free(gbnf);
        cr_expect_str_eq(err, json_string_value(json_object_get(c, "error")));
        free(schema);
    }
    json_decref(j);
}

static void expect_refused(const char *schema, const char *msg)
{
    char err[512] = "";
    char *gbnf = qfit_schema_to_gbnf(schema, strlen(schema), err, sizeof err);
    cr_expect_null(gbnf, "accepted: %s", schema);
    free(gbnf);
    cr_expect(strstr(err, msg), "%s: \"%s\" lacks \"%s\"", schema, err, msg);
}

Test(grammar, schema_unsupported_keyword_is_named_with_its_pointer)
{
    expect_refused("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\",\"uniqueItems\":true}}}",
                   "unsupported keyword 'uniqueItems' at /properties/a");
    expect_refused("{\"items\":{\"not\":{\"type\":\"string\"}}}", "unsupported keyword 'not' at /items");
    expect_refused("{\"prefixItems\":[{\"type\":\"integer\"},{\"type\":\"integer\",\"multipleOf\":3}]}",
                   "unsupported keyword 'multipleOf' at /prefixItems/1");
    expect_refused("{\"patternProperties\":{\"^a\":{}}}", "unsupported keyword 'patternProperties' at /");
    expect_refused("{\"if\":{},\"then\":{}}", "unsupported keyword 'if'");
    expect_refused("{\"type\":\"string\",\"format\":\"email\"}", "unsupported format 'email' at /");
    expect_refused("{\"type\":\"string\",\"pattern\":\"^(?=a)b$\"}", "pattern: lookaround and named groups are not supported at offset 1");
    expect_refused("{\"type\":\"string\",\"pattern\":\"(a)\\\\1\"}", "pattern: backreferences are not supported at offset 3");
    expect_refused("{\"type\":\"string\",\"pattern\":\"a\\\\bc\"}", "word boundaries");
    expect_refused("{\"type\":\"string\",\"pattern\":\"a^b\"}", "'^' is only supported at the start");
    expect_refused("{\"$ref\":\"http://example.com/s.json\"}", "is not local");
    expect_refused("{\"$ref\":\"#/$defs/missing\"}", "$ref '#/$defs/missing' does not resolve");
    expect_refused("{\"type\":\"number\",\"minimum\":0.5}", "'minimum' for type number is not supported");
    expect_refused("{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", "no integer satisfies minimum 5 and maximum 4");
    expect_refused("{\"type\":\"strin\"}", "unknown type 'strin'");
    expect_refused("false", "the schema false accepts nothing");
    expect_refused("{\"type\":\"string\",\"maxLength\":100000}", "'maxLength' must be between 0 and 10000");
    expect_refused("{\"anyOf\":[{\"type\":\"string\"}],\"minLength\":2}", "'minLength' together with 'anyOf'");
    expect_refused("{\"properties\":{\"a\":{}},\"required\":[\"b\"]}", "required property 'b' is not in 'properties'");
    expect_refused("{\"allOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", "allOf: 'type' differs");
    expect_refused("{\"type\":\"object\"", "the schema is not valid JSON");
}

Test(grammar, schema_ref_cycle_without_progress_is_an_error)
{
    expect_refused("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}},\"$ref\":\"#/$defs/a\"}",
                   "$ref '#/$defs/a' is a cycle that consumes nothing at /$defs/b");
    expect_refused("{\"anyOf\":[{\"$ref\":\"#\"},{\"type\":\"null\"}]}", "$ref '#' is a cycle that consumes nothing at /anyOf/0");
    expect_refused("{\"allOf\":[{\"$ref\":\"#\"}]}", "a $ref cycle that consumes nothing");
    /* recursion through an array or an object consumes "[" or "{": fine */
    char err[512];
    qfit_grammar *g = schema_grammar("{\"anyOf\":[{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}},{\"type\":\"integer\"}]}", err,
                                     sizeof err);
    cr_assert(g, "%s", err);
    qfit_grammar_matcher *m = qfit_grammar_matcher_new(g, err, sizeof err);
    cr_assert(m, "%s", err);
    cr_expect(matches(m, "[[1, [2]], 3, []]", 17));
    cr_expect(!matches(m, "[[1, [2], 3, []]", 16));
    qfit_grammar_matcher_free(m);
    qfit_grammar_free(g);
}

Test(grammar, schema_size_and_nesting_limits_are_errors)
{
    /* a 10 MB schema */
    const size_t n = 10u << 20;
    char *big = malloc(n + 64);
    size_t len = (size_t)sprintf(big, "{\"enum\":[\"");
    memset(big + len, 'a', n);
    len += n;
    len += (size_t)sprintf(big + len, "\"]}");
    char err[512] = "";
    char *gbnf = qfit_schema_to_gbnf(big, len, err, sizeof err);
    cr_expect_null(gbnf);
    free(gbnf);
    cr_expect(strstr(err, "bytes (at most 1048576)"), "%s", err);
    free(big);
    /* 60,000 nested schemas, and 100 */
    const int depths[] = { 60000, 100 };
    for (int d = 0; d < 2; d++) {
        big = malloc((size_t)depths[d] * 12 + 64);
        len = 0;
        for (int k = 0; k < depths[d]; k++) len += (size_t)sprintf(big + len, "{\"items\":");
        len += (size_t)sprintf(big + len, "{}");
        for (int k = 0; k < depths[d]; k++) big[len++] = '}';
        gbnf = qfit_schema_to_gbnf(big, len, err, sizeof err);
        cr_expect_null(gbnf);
        free(gbnf);
        cr_expect(strstr(err, d == 0 ? "maximum parsing depth" : "schemas nested deeper than 64 levels at /items/items"),
                  "%s", err);
        free(big);
    }
}

/* ------------------------------------- sampled outputs on the shared model */

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "qfit/generate.h"

/* a JSON Schema validator for the keywords the sampled schemas use, written for
 * this test (independent of the converter): 1 valid, 0 invalid (why says why) */
static int re_match(const char *re, const char *s)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_ALT_BSUX, &code, &off, NULL);
    cr_assert(c, "regex %s does not compile", re);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(c, NULL);
    const int rc = pcre2_match(c, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(c);
    return rc >= 0;
}

static size_t n_codepoints(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int validate(const json_t *root, const json_t *s, const json_t *v, char *why, size_t wn);

static int fail_why(char *why, size_t wn, const char *what, const json_t *v)
{
    char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(why, wn, "%s: %s", what, t ? t : "?");
    free(t);
    return 0;
}

static int has_type(const json_t *v, const char *t)
{
    if (!strcmp(t, "string")) return json_is_string(v);
    if (!strcmp(t, "integer")) return json_is_integer(v);
    if (!strcmp(t, "number")) return json_is_number(v);
    if (!strcmp(t, "boolean")) return json_is_boolean(v);
    if (!strcmp(t, "null")) return json_is_null(v);
    if (!strcmp(t, "array")) return json_is_array(v);
    if (!strcmp(t, "object")) return json_is_object(v);
    cr_assert_fail("validator: unknown type %s", t);
    return 0;
}

static int validate(const json_t *root, const json_t *s, const json_t *v, char *why, size_t wn)
{
    if (json_is_true(s)) return 1;
    if (json_is_false(s)) return fail_why(why, wn, "false schema", v);
    const char *key;
    json_t *k;
    json_object_foreach((json_t *)s, key, k) {
        size_t i;
        json_t *e;
        if (!strcmp(key, "$ref")) {
            const char *r = json_string_value(k);
            const json_t *t = root;
            if (!strncmp(r, "#/$defs/", 8)) t = json_object_get(json_object_get(root, "$defs"), r + 8);
            else cr_assert_str_eq(r, "#");
            if (!validate(root, t, v, why, wn)) return 0;
        } else if (!strcmp(key, "$defs")) {
        } else if (!strcmp(key, "type")) {
            int ok = 0;
            if (json_is_string(k)) ok = has_type(v, json_string_value(k));
            json_array_foreach(k, i, e) ok |= has_type(v, json_string_value(e));
            if (!ok) return fail_why(why, wn, "type", v);
        } else if (!strcmp(key, "enum")) {
            int ok = 0;
            json_array_foreach(k, i, e) ok |= json_equal(e, (json_t *)v);
            if (!ok) return fail_why(why, wn, "enum", v);
        } else if (!strcmp(key, "const")) {
            if (!json_equal(k, (json_t *)v)) return fail_why(why, wn, "const", v);
        } else if (!strcmp(key, "anyOf") || !strcmp(key, "oneOf") || !strcmp(key, "allOf")) {
            size_t n_ok = 0;
            char sub[256];
            json_array_foreach(k, i, e) n_ok += (size_t)validate(root, e, v, sub, sizeof sub);
            const int ok = key[0] == 'a' && key[1] == 'n' ? n_ok > 0 : key[0] == 'o' ? n_ok == 1 : n_ok == json_array_size(k);
            if (!ok) return fail_why(why, wn, key, v);
        } else if (!strcmp(key, "properties")) {
            if (!json_is_object(v)) continue;
            const char *pk;
            json_t *ps;
            json_object_foreach(k, pk, ps) {
                const json_t *pv = json_object_get(v, pk);
                if (pv && !validate(root, ps, pv, why, wn)) return 0;
            }
        } else if (!strcmp(key, "required")) {
            json_array_foreach(k, i, e) if (json_is_object(v) && !json_object_get(v, json_string_value(e)))
                return fail_why(why, wn, "required", v);
        } else if (!strcmp(key, "additionalProperties")) {
            if (!json_is_object(v)) continue;
            const char *vk;
            json_t *vv;
            json_object_foreach((json_t *)v, vk, vv) {
                if (json_object_get(json_object_get(s, "properties"), vk)) continue;
                if (!validate(root, k, vv, why, wn)) return 0;
            }
        } else if (!strcmp(key, "items") || !strcmp(key, "prefixItems")) {
            if (!json_is_array(v)) continue;
            const size_t np = json_array_size(json_object_get(s, "prefixItems"));
            json_array_foreach(v, i, e) {
                const json_t *is = key[0] == 'p' ? (i < np ? json_array_get(k, i) : NULL) : (i >= np ? k : NULL);
                if (is && !validate(root, is, e, why, wn)) return 0;
            }
        } else if (!strcmp(key, "minItems") || !strcmp(key, "maxItems")) {
            if (!json_is_array(v)) continue;
            const size_t n = json_array_size(v), b = (size_t)json_integer_value(k);
            if (key[1] == 'i' ? n < b : n > b) return fail_why(why, wn, key, v);
        } else if (!strcmp(key, "minLength") || !strcmp(key, "maxLength")) {
            if (!json_is_string(v)) continue;
            const size_t n = n_codepoints(json_string_value(v)), b = (size_t)json_integer_value(k);
            if (key[1] == 'i' ? n < b : n > b) return fail_why(why, wn, key, v);
        } else if (!strcmp(key, "minimum") || !strcmp(key, "maximum") || !strcmp(key, "exclusiveMinimum") ||
                   !strcmp(key, "exclusiveMaximum")) {
            if (!json_is_number(v)) continue;
            const double x = json_number_value(v), b = json_number_value(k);
            const int ok = !strcmp(key, "minimum") ? x >= b : !strcmp(key, "maximum") ? x <= b
                         : !strcmp(key, "exclusiveMinimum") ? x > b : x < b;
            if (!ok) return fail_why(why, wn, key, v);
        } else if (!strcmp(key, "pattern")) {
            if (json_is_string(v) && !re_match(json_string_value(k), json_string_value(v))) return fail_why(why, wn, "pattern", v);
        } else if (!strcmp(key, "format")) {
            if (!json_is_string(v)) continue;
            const char *f = json_string_value(k), *re = NULL;
            const char *date = "\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])";
            const char *time = "([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d+)?(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)";
            char buf[256];
            if (!strcmp(f, "date")) snprintf(buf, sizeof buf, "^%s$", date);
            else if (!strcmp(f, "time")) snprintf(buf, sizeof buf, "^%s$", time);
            else if (!strcmp(f, "date-time")) snprintf(buf, sizeof buf, "^%sT%s$", date, time);
            else if (!strcmp(f, "uuid")) snprintf(buf, sizeof buf, "^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$");
            else cr_assert_fail("validator: format %s", f);
            re = buf;
            if (!re_match(re, json_string_value(v))) return fail_why(why, wn, "format", v);
        } else cr_assert_fail("validator: keyword %s", key);
    }
    return 1;
}

Test(grammar, validator_rejects_what_it_should)
{
    /* the test's own validator, checked on hand-made values */
    json_t *s = json_loads("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\",\"minimum\":1},\"b\":{\"format\":\"date\"},"
                           "\"c\":{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}},\"required\":[\"a\"],"
                           "\"additionalProperties\":false}", 0, NULL);
    const char *bad[] = { "{}", "{\"a\":0}", "{\"a\":1,\"x\":1}", "{\"a\":1,\"b\":\"2020-13-01\"}", "{\"a\":1,\"c\":3}", "[]" };
    char why[256];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *v = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        cr_expect(!validate(s, s, v, why, sizeof why), "%s passed", bad[i]);
        json_decref(v);
    }
    json_t *v = json_loads("{\"a\":3,\"b\":\"2020-12-01\",\"c\":1.5}", 0, NULL);
    cr_expect(validate(s, s, v, why, sizeof why), "%s", why);
    json_decref(v);
    json_decref(s);
}

typedef struct { char text[8192]; size_t len; int n_tok, n_eog; } sink;

static int sink_token(void *u, const qfit_gen_token *t)
{
    sink *k = u;
    k->n_tok++;
    k->n_eog += t->eog;
    return 0;
}

static int sink_text(void *u, const char *t, size_t n)
{
    sink *k = u;
    cr_assert_lt(k->len + n, sizeof k->text);
    memcpy(k->text + k->len, t, n);
    k->len += n;
    k->text[k->len] = 0;
    return 0;
}

static const char *const sampled_schemas[] = {
    /* enum */
    "{\"enum\":[\"light\",\"darkness\",\"water\",1,null,[\"earth\"]]}",
    /* nested objects */
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":8},\"tribe\":{\"enum\":[\"Judah\",\"Levi\"]},"
    "\"place\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":6},"
    "\"year\":{\"type\":\"integer\",\"minimum\":-50,\"maximum\":2000}},\"required\":[\"city\",\"year\"],\"additionalProperties\":false}},"
    "\"required\":[\"name\",\"tribe\",\"place\"],\"additionalProperties\":false}",
    /* arrays with bounds */
    "{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":99},\"minItems\":2,\"maxItems\":4}",
    /* recursive $ref */
    "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":9},"
    "\"next\":{\"anyOf\":[{\"$ref\":\"#/$defs/node\"},{\"type\":\"null\"}]}},\"required\":[\"v\",\"next\"],\"additionalProperties\":false}},"
    "\"$ref\":\"#/$defs/node\"}",
    /* anyOf */
    "{\"anyOf\":[{\"type\":\"string\",\"pattern\":\"^[A-Z][a-z]{1,5}( [a-z]+)?$\"},{\"type\":\"array\",\"prefixItems\":[{\"type\":\"boolean\"},"
    "{\"format\":\"date\"}],\"items\":false},{\"type\":\"integer\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":10}]}",
    /* formats, optional properties, short strings */
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"format\":\"uuid\"},\"when\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"at\":{\"format\":\"time\"},\"ok\":{\"type\":[\"boolean\",\"null\"]},\"words\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":5},"
    "\"maxItems\":3}},\"required\":[\"id\",\"when\"],\"additionalProperties\":false}",
};

Test(grammar, sampled_outputs_parse_and_validate, .timeout = 600)
{
    char err[512];
    qfit_model *m = qfit_model_load(tu_shared_path("models/kjv-llama-7m-f32.gguf"), err, sizeof err);
    cr_assert(m, "%s", err);
    qfit_tokenizer *tok = qfit_tokenizer_from_gguf(qfit_model_gguf(m), err, sizeof err);
    cr_assert(tok, "%s", err);
    qfit_context_params cp = qfit_context_default_params();
    cp.n_threads = 2;
    qfit_context *ctx = qfit_context_new(m, &cp, err, sizeof err);
    cr_assert(ctx, "%s", err);
    qfit_grammar_vocab *vocab = qfit_gen_grammar_vocab(tok, err, sizeof err);
    cr_assert(vocab, "%s", err);
    int n_runs = 0;
    for (size_t i = 0; i < sizeof sampled_schemas / sizeof *sampled_schemas; i++) {
        qfit_grammar *g = schema_grammar(sampled_schemas[i], err, sizeof err);
        cr_assert(g, "schema %zu: %s", i, err);
        json_t *schema = json_loads(sampled_schemas[i], 0, NULL);
        for (uint64_t seed = 1; seed <= 6; seed++) {
            qfit_gen_params p;
            qfit_gen_params_init(&p);
            p.sampling.temperature = 1.0f;
            p.sampling.top_k = 0;
            p.sampling.top_p = 1.0f;
            p.sampling.min_p = 0.0f;
            p.sampling.seed = seed;
            p.num_predict = 400;
            p.grammar = g;
            p.grammar_vocab = vocab;
            sink *out = calloc(1, sizeof *out);
            qfit_gen_callbacks cb = { .on_text = sink_text, .on_token = sink_token, .user = out };
            qfit_gen_result res;
            qfit_context_truncate(ctx, 0);
            cr_assert_eq(qfit_generate_text(ctx, tok, "And God said", &p, &cb, &res), 0, "schema %zu seed %d: %s", i,
                         (int)seed, res.error);
            cr_assert_eq(res.reason, QFIT_GEN_STOP, "schema %zu seed %d: reason %s after %d tokens: %s", i, (int)seed,
                         qfit_gen_reason_name(res.reason), res.eval_count, out->text);
            json_error_t je;
            json_t *v = json_loads(out->text, JSON_DECODE_ANY, &je);
            cr_assert(v, "schema %zu seed %d: not JSON (%s): %s", i, (int)seed, je.text, out->text);
            char why[512];
            cr_assert(validate(schema, schema, v, why, sizeof why), "schema %zu seed %d: invalid (%s): %s", i, (int)seed,
                      why, out->text);
            /* a document that cannot continue ends the generation itself: no end-of-generation token drawn */
            const char last = out->text[out->len - 1];
            if (last == '}' || last == ']' || last == '"')
                cr_assert_eq(out->n_eog, 0, "schema %zu seed %d: an end-of-generation token after a finished document", i,
                             (int)seed);
            json_decref(v);
            free(out);
            n_runs++;
        }
        json_decref(schema);
        qfit_grammar_free(g);
    }
    cr_assert_eq(n_runs, 36);
    /* a grammar that needs a character no token has: an error, never unconstrained text */
    qfit_grammar *g = parse_ok("root ::= \"And\" [^\\x00-\\U0010FFFF]\n");
    qfit_gen_params p;
    qfit_gen_params_init(&p);
    p.sampling.seed = 1;
    p.num_predict = 50;
    p.grammar = g;
    p.grammar_vocab = vocab;
    sink *out = calloc(1, sizeof *out);
    qfit_gen_callbacks cb = { .on_text = sink_text, .user = out };
    qfit_gen_result res;
    qfit_context_truncate(ctx, 0);
    cr_assert_eq(qfit_generate_text(ctx, tok, "And God said", &p, &cb, &res), -1);
    cr_assert_eq(res.reason, QFIT_GEN_ERROR);
    cr_assert(strstr(res.error, "grammar: no token of the vocabulary is allowed here"), "%s", res.error);
    cr_assert_str_eq(out->text, "And");
    /* a vocabulary of another size is refused before anything is generated */
    const char *few[] = { "a", "b", "c" };
    const size_t few_len[] = { 1, 1, 1 };
    qfit_grammar_vocab *small = qfit_grammar_vocab_new(3, few, few_len, err, sizeof err);
    p.grammar_vocab = small;
    out->len = 0;
    out->text[0] = 0;
    cr_assert_eq(qfit_generate_text(ctx, tok, "And God said", &p, &cb, &res), -1);
    cr_assert(strstr(res.error, "grammar_vocab has 3 tokens, the logits row 2048"), "%s", res.error);
    cr_assert_eq(out->len, 0);
    qfit_grammar_vocab_free(small);
    free(out);
    qfit_grammar_free(g);
    qfit_grammar_vocab_free(vocab);
    qfit_context_free(ctx);
    qfit_tokenizer_free(tok);
    qfit_model_free(m);
}

/* qfit run --format SCHEMA / --grammar FILE */
Test(grammar, qfit_run_format_and_grammar, .timeout = 300)
{
    const char *dir = tu_tmpdir();
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s/bad.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"type\":\"object\",\"properties\":{\"tags\":{\"type\":\"array\",\"uniqueItems\":true}}}", f);
    fclose(f);
    int st;
    snprintf(cmd, sizeof cmd, "%s run %s -p 'And' --format %s", tu_qfit_bin(), tu_shared_path("models/kjv-llama-7m-f32.gguf"), path);
    char *out = tu_run(cmd, &st);
    cr_expect_eq(st, 2, "%s", out);
    cr_expect(strstr(out, "unsupported keyword 'uniqueItems' at /properties/tags"), "%s", out);
    cr_expect(!strstr(out, "model:"), "the model was loaded before the schema was refused: %s", out);
    free(out);

    snprintf(path, sizeof path, "%s/g.gbnf", dir);
    f = fopen(path, "w");
    fputs("# a sentence\nroot ::= \" Let there be \" thing \".\"\nthing ::= \"light\" | \"water\" | [a-z]{3,6}\n", f);
    fclose(f);
    for (int seed = 1; seed <= 3; seed++) {
        snprintf(cmd, sizeof cmd, "%s run %s -p 'And God said' --temp 1 --seed %d --grammar %s", tu_qfit_bin(),
                 tu_shared_path("models/kjv-llama-7m-f32.gguf"), seed, path);
        out = tu_run(cmd, &st);
        cr_expect_eq(st, 0, "%s", out);
        cr_expect(re_match("(?m)^And God said Let there be [a-z]{3,6}\\.$", out), "seed %d: %s", seed, out);
        free(out);
    }
    snprintf(cmd, sizeof cmd, "%s run %s -p 'And' --grammar %s/missing.gbnf", tu_qfit_bin(),
             tu_shared_path("models/kjv-llama-7m-f32.gguf"), dir);
    out = tu_run(cmd, &st);
    cr_expect_eq(st, 2, "%s", out);
    cr_expect(strstr(out, "cannot open"), "%s", out);
    free(out);
}

/* pattern: the grammar (on the JSON-encoded string) agrees with PCRE2 (on the string) */
Test(grammar, schema_pattern_agrees_with_pcre2)
{
    static const char *patterns[] = { "ab", "^ab", "ab$", "^a+?b$", "^\\d{3}-\\w+$", "^[^a-c\\s]{2,3}$", "^\"\\\\$",
                                      "^(?:ab|c)*d?$", "^.é.$", "^[\\t\\n]+$", "^x\\.y\\/z$", "^[a\\-z]$", "^\\D\\W\\S$",
                                      "^(a|b)(c|d){1,2}$", "^[\\u00e0-\\u00ff]+$", "^\\x41{2}$", "^a\\$", "^[^x]$" };
    static const char *cands[] = { "", "ab", "xxabyy", "xxa", "aab", "aaab", "b", "123-abc_9", "12-abc", "123-", "de", "xyz",
                                   "a b", "wxyz", "\"\\", "\"", "ababcd", "abd", "cccd", "dd", "aéb", "xéyz", "\t\n\t",
                                   "\t \n", "x.y/z", "xay/z", "-", "a", "m", "z", "x!y", "1a ", "ac", "bdd", "acdc", "àÿé",
                                   "aé", "AA", "A", "aa", "a$", "\x7F" };
    char err[512];
    for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++) {
        json_t *sch = json_pack("{s:s,s:s}", "type", "string", "pattern", patterns[i]);
        char *text = json_dumps(sch, 0);
        qfit_grammar *g = schema_grammar(text, err, sizeof err);
        cr_assert(g, "pattern %s: %s", patterns[i], err);
        qfit_grammar_matcher *m = qfit_grammar_matcher_new(g, err, sizeof err);
        cr_assert(m, "%s", err);
        for (size_t k = 0; k < sizeof cands / sizeof *cands; k++) {
            json_t *js = json_string(cands[k]);
            char *enc = json_dumps(js, JSON_ENCODE_ANY);
            const int want = re_match(patterns[i], cands[k]), got = matches(m, enc, strlen(enc));
            cr_expect_eq(got, want, "pattern %s on %s: grammar %d, PCRE2 %d", patterns[i], enc, got, want);
            free(enc);
            json_decref(js);
        }
        qfit_grammar_matcher_free(m);
        qfit_grammar_free(g);
        free(text);
        json_decref(sch);
    }
}

/* qfit's own cases: the converter's choices (type filters on enum, nested
 * anyOf/allOf merges, additionalProperties as a schema) */
Test(grammar, schema_own_vectors)
{
    static const struct { const char *schema, *pass[4], *fail[4]; } cases[] = {
        { "{\"type\":\"string\",\"enum\":[\"a\",1,null]}", { "\"a\"" }, { "1", "null" } },
        { "{\"type\":[\"integer\",\"null\"],\"enum\":[\"a\",1,null,2.5]}", { "1", "null" }, { "\"a\"", "2.5" } },
        { "{\"allOf\":[{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]},"
          "{\"properties\":{\"b\":{\"const\":true}},\"required\":[\"b\"]}]}",
          { "{\"a\": 1, \"b\": true}" }, { "{\"a\": 1}", "{\"b\": true}", "{\"a\": 1, \"b\": false}" } },
        { "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\",\"minimum\":0}}",
          { "{}", "{\"x\": 1, \"y\": 20}" }, { "{\"x\": -1}", "{\"x\": \"1\"}" } },
        { "{\"type\":\"array\",\"prefixItems\":[{\"const\":1}],\"items\":{\"type\":\"boolean\"},\"maxItems\":3}",
          { "[1]", "[1, true, false]" }, { "[]", "[2]", "[1, true, false, true]", "[1, 2]" } },
        { "{\"properties\":{\"k\\\"\":{\"const\":1},\"é\":{\"const\":2}},\"additionalProperties\":{\"type\":\"boolean\"}}",
          { "{\"k\\\"\": 1, \"k\": true}", "{\"é\": 2, \"éé\": false, \"\": true}" },
          { "{\"é\": true}", "{\"k\\\"\": true}", "{\"k\"x\": true}", "{\"é\": 2, \"k\\\"\": 1}" } },
        { "{\"type\":\"string\",\"minLength\":2,\"maxLength\":2}", { "\"é😀\"", "\"\\n\\\"\"" }, { "\"a\"", "\"abc\"" } },
    };
    char err[512];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        qfit_grammar *g = schema_grammar(cases[i].schema, err, sizeof err);
        cr_assert(g, "%s: %s", cases[i].schema, err);
        qfit_grammar_matcher *m = qfit_grammar_matcher_new(g, err, sizeof err);
        cr_assert(m, "%s", err);
        for (int k = 0; k < 4 && cases[i].pass[k]; k++)
            cr_expect(matches(m, cases[i].pass[k], strlen(cases[i].pass[k])), "%s: %s should match", cases[i].schema,
                      cases[i].pass[k]);
        for (int k = 0; k < 4 && cases[i].fail[k]; k++)
            cr_expect(!matches(m, cases[i].fail[k], strlen(cases[i].fail[k])), "%s: %s should not match", cases[i].schema,
                      cases[i].fail[k]);
        qfit_grammar_matcher_free(m);
        qfit_grammar_free(g);
    }
}
