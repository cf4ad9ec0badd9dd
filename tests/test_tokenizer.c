/* Tokenizer tests: the shared SentencePiece model against llama.cpp's ids, and a
 * small byte-level BPE vocabulary (tests/data/tokenizer) against ids llama.cpp
 * produced for it, plus hand-checked pre-tokenizer splits. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/gguf.h"
#include "qfit/tokenizer.h"
#include "qfit/quantize.h"
#include "tokenizer/tok_internal.h"
#include "util/testutil.h"

/* ------------------------------------------------------------ helpers */

static qfit_gguf *g_kjv;
static qfit_tokenizer *kjv_tokenizer(void)
{
    char err[256] = "";
    g_kjv = qfit_gguf_open(tu_shared_path("models/kjv-llama-7m-f32.gguf"), err, sizeof err);
    cr_assert(g_kjv, "open: %s", err);
    qfit_tokenizer *t = qfit_tokenizer_from_gguf(g_kjv, err, sizeof err);
    cr_assert(t, "tokenizer: %s", err);
    qfit_gguf_close(g_kjv);
    g_kjv = NULL;
    return t;
}

/* printf %b style unescape (\n \t \r \\ \xHH \0NNN); returns length */
static size_t unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) { out[o++] = s[i]; continue; }
        char d = s[++i];
        switch (d) {
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case 'r': out[o++] = '\r'; break;
        case '\\': out[o++] = '\\'; break;
        case 'x': {
            unsigned v = 0;
            int k = 0;
            while (k < 2 && i + 1 < n && strchr("0123456789abcdefABCDEF", s[i + 1]) && s[i + 1]) {
                char c = s[++i];
                v = v * 16 + (unsigned) (c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
                k++;
            }
            out[o++] = (char) v;
            break;
        }
        case '0': {
            unsigned v = 0;
            int k = 0;
            while (k < 3 && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '7') { v = v * 8 + (unsigned) (s[++i] - '0'); k++; }
            out[o++] = (char) v;
            break;
        }
        default: out[o++] = '\\'; out[o++] = d; break;
        }
    }
    return o;
}

static size_t parse_ids(const char *s, int32_t *ids, size_t cap)
{
    size_t n = 0;
    char *end;
    for (;;) {
        while (*s == ' ') s++;
        if (!*s || *s == '\n') break;
        long v = strtol(s, &end, 10);
        if (end == s) break;
        if (n < cap) ids[n] = (int32_t) v;
        n++;
        s = end;
    }
    return n;
}

static void assert_ids(const qfit_tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                       const int32_t *exp, size_t n_exp, const char *what)
{
    int32_t *got = NULL;
    size_t n = 0;
    cr_assert_eq(qfit_tokenize_alloc(t, text, len, add_special, parse_special, &got, &n), 0, "%s", what);
    size_t k = 0;
    while (k < n && k < n_exp && got[k] == exp[k]) k++;
    cr_expect(n == n_exp && k == n, "%s (add_special=%d parse_special=%d): %zu ids, expected %zu; first difference at %zu: %d vs %d",
              what, add_special, parse_special, n, n_exp, k, k < n ? got[k] : -1, k < n_exp ? exp[k] : -1);
    free(got);
}

/* ------------------------------------------------------------ SentencePiece (shared model) */

Test(tokenizer, kjv_metadata)
{
    qfit_tokenizer *t = kjv_tokenizer();
    cr_expect_eq(qfit_tokenizer_model(t), QFIT_TOK_SPM);
    cr_expect_eq(qfit_tokenizer_n_vocab(t), 2048);
    cr_expect_eq(qfit_tokenizer_bos(t), 1);
    cr_expect_eq(qfit_tokenizer_eos(t), 2);
    cr_expect_eq(qfit_tokenizer_unk(t), 0);
    cr_expect_eq(qfit_tokenizer_nl(t), 13);
    cr_expect(qfit_tokenizer_add_bos(t));
    cr_expect(!qfit_tokenizer_add_eos(t));
    cr_expect(qfit_tokenizer_add_space_prefix(t));
    cr_expect(qfit_tokenizer_is_eog(t, 2));
    cr_expect(!qfit_tokenizer_is_eog(t, 1));
    cr_expect(qfit_tokenizer_is_control(t, 1));
    cr_expect_eq(qfit_tokenizer_token_type(t, 0), QFIT_TOKEN_TYPE_UNKNOWN);
    cr_expect_eq(qfit_tokenizer_token_type(t, 3), QFIT_TOKEN_TYPE_BYTE);
    cr_expect_eq(qfit_tokenizer_token_type(t, 300), QFIT_TOKEN_TYPE_NORMAL);
    size_t l = 0;
    cr_expect_str_eq(qfit_tokenizer_token_text(t, 13, &l), "<0x0A>");
    cr_expect_eq(l, 6);
    cr_expect_eq(qfit_tokenizer_find(t, "<s>", 3), 1);
    cr_expect_eq(qfit_tokenizer_find(t, "no such token", 13), QFIT_TOKEN_NONE);
    cr_expect_null(qfit_tokenizer_token_text(t, 2048, NULL));
    qfit_tokenizer_free(t);
}

Test(tokenizer, kjv_tsv)
{
    qfit_tokenizer *t = kjv_tokenizer();
    size_t size = 0;
    char *data = tu_read_file(tu_shared_path("testdata/kjv-llama-7m/tokenizer/kjv-llama-7m.tsv"), &size);
    cr_assert(data);
    int lines = 0;
    for (char *line = data; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char *tab = strchr(line, '\t');
        if (line[0] != '#' && tab) {
            char text[4096];
            int32_t exp[1024];
            size_t len = unescape(line, (size_t) (tab - line), text);
            size_t n = parse_ids(tab + 1, exp, 1024);
            assert_ids(t, text, len, true, false, exp, n, line);
            lines++;
        }
        line = nl ? nl + 1 : NULL;
    }
    cr_expect_geq(lines, 30);
    free(data);
    qfit_tokenizer_free(t);
}

Test(tokenizer, kjv_validation_text)
{
    qfit_tokenizer *t = kjv_tokenizer();
    size_t tsize = 0, isize = 0;
    char *text = tu_read_file(tu_shared_path("models/kjv-llama-7m-val.txt"), &tsize);
    char *idtxt = tu_read_file(tu_shared_path("testdata/kjv-llama-7m/tokenizer/kjv-llama-7m-val.ids"), &isize);
    cr_assert(text && idtxt);
    int32_t *exp = malloc(sizeof *exp * 200000);
    size_t n = parse_ids(idtxt, exp, 200000);
    cr_assert_eq(n, 126034);
    /* the .ids file is the tokenization of the whole file (its trailing newline included) */
    assert_ids(t, text, tsize, true, false, exp, n, "validation text");

    /* round trip: the ids without BOS give the text back (the dummy-prefix space of
     * the first piece is dropped) */
    size_t len = 0;
    char *back = qfit_detokenize_alloc(t, exp + 1, n - 1, true, false, &len);
    cr_assert(back);
    cr_expect_eq(len, tsize);
    cr_expect(len == tsize && memcmp(back, text, tsize) == 0, "detokenized text differs");
    free(back);
    /* llama.cpp keeps that space when the ids start with BOS (removed or not) */
    back = qfit_detokenize_alloc(t, exp, n, true, false, &len);
    cr_assert(back);
    cr_expect(len == tsize + 1 && back[0] == ' ' && memcmp(back + 1, text, tsize) == 0);
    free(back);
    free(exp);
    free(text);
    free(idtxt);
    qfit_tokenizer_free(t);
}

static void check_json_mode(const qfit_tokenizer *t, json_t *c, const char *key, bool as, bool ps)
{
    const char *text = json_string_value(json_object_get(c, "text"));
    json_t *arr = json_object_get(c, key);
    cr_assert(text && json_is_array(arr));
    size_t n = json_array_size(arr);
    int32_t *exp = malloc(sizeof *exp * (n + 1));
    for (size_t i = 0; i < n; i++) exp[i] = (int32_t) json_integer_value(json_array_get(arr, i));
    assert_ids(t, text, strlen(text), as, ps, exp, n, text);
    free(exp);
}

Test(tokenizer, kjv_reference_json)
{
    qfit_tokenizer *t = kjv_tokenizer();
    json_error_t je;
    json_t *root = json_load_file(tu_shared_path("models/kjv-llama-7m-reference.json"), 0, &je);
    cr_assert(root, "json: %s", je.text);
    json_t *cases = json_object_get(root, "tokenizer_cases");
    cr_assert(json_is_array(cases));
    cr_expect_geq(json_array_size(cases), 30);
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        check_json_mode(t, c, "ids", false, false);
        check_json_mode(t, c, "ids_add_special", true, false);
        check_json_mode(t, c, "ids_parse_special", false, true);
    }
    json_decref(root);
    qfit_tokenizer_free(t);
}

Test(tokenizer, kjv_extra_cases)
{
    qfit_tokenizer *t = kjv_tokenizer();
    size_t size = 0;
    char *data = tu_read_file("tests/data/tokenizer/extra.tsv", &size);
    cr_assert(data, "tests/data/tokenizer/extra.tsv missing");
    int rows = 0;
    for (char *line = data; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (line[0] != '#') {
            char *f1 = strchr(line, '\t'), *f2 = f1 ? strchr(f1 + 1, '\t') : NULL, *f3 = f2 ? strchr(f2 + 1, '\t') : NULL;
            cr_assert(f3, "bad row: %s", line);
            char text[4096];
            int32_t exp[1024];
            size_t len = unescape(f2 + 1, (size_t) (f3 - f2 - 1), text);
            size_t n = parse_ids(f3 + 1, exp, 1024);
            assert_ids(t, text, len, line[0] == '1', f1[1] == '1', exp, n, f2 + 1);
            rows++;
        }
        line = nl ? nl + 1 : NULL;
    }
    cr_expect_geq(rows, 100);
    free(data);
    qfit_tokenizer_free(t);
}

Test(tokenizer, kjv_pieces_and_detokenize)
{
    qfit_tokenizer *t = kjv_tokenizer();
    char buf[64];
    /* control token: empty unless special */
    cr_expect_eq(qfit_token_to_piece(t, 1, buf, sizeof buf, 0, false), 0);
    size_t n = qfit_token_to_piece(t, 1, buf, sizeof buf, 0, true);
    cr_expect(n == 3 && memcmp(buf, "<s>", 3) == 0);
    /* byte token -> the raw byte */
    n = qfit_token_to_piece(t, 13, buf, sizeof buf, 0, false);
    cr_expect(n == 1 && buf[0] == '\n');
    /* a piece with the U+2581 marker -> leading space; lstrip removes it */
    int32_t id = qfit_tokenizer_find(t, "\xE2\x96\x81the", 6);
    cr_assert_geq(id, 0);
    n = qfit_token_to_piece(t, id, buf, sizeof buf, 0, false);
    cr_expect(n == 4 && memcmp(buf, " the", 4) == 0);
    n = qfit_token_to_piece(t, id, buf, sizeof buf, 1, false);
    cr_expect(n == 3 && memcmp(buf, "the", 3) == 0);
    /* too small a buffer: length still reported */
    cr_expect_eq(qfit_token_to_piece(t, id, buf, 2, 0, false), 4);
    cr_expect_eq(qfit_token_to_piece(t, -5, buf, sizeof buf, 0, true), 0);

    /* round trips, non-ASCII (byte fallback) included */
    const char *texts[] = { "Hello  world!\n", "  two leading", "caf\xC3\xA9 \xF0\x9F\x98\x80 \xE4\xB8\xAD", "<s> as text </s>", "" };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int32_t *ids = NULL;
        size_t k = 0;
        cr_assert_eq(qfit_tokenize_alloc(t, texts[i], strlen(texts[i]), false, false, &ids, &k), 0);
        size_t len = 0;
        char *back = qfit_detokenize_alloc(t, ids, k, true, false, &len);
        cr_assert(back);
        cr_expect_str_eq(back, texts[i]);
        free(back);
        free(ids);
        /* with a BOS in front (removed or rendered empty) the first piece keeps its space */
        cr_assert_eq(qfit_tokenize_alloc(t, texts[i], strlen(texts[i]), true, false, &ids, &k), 0);
        back = qfit_detokenize_alloc(t, ids, k, true, false, &len);
        cr_expect(len == strlen(texts[i]) + (texts[i][0] ? 1 : 0), "'%s' -> %zu bytes", texts[i], len);
        free(back);
        back = qfit_detokenize_alloc(t, ids, k, false, false, &len);
        cr_expect(len == strlen(texts[i]) + (texts[i][0] ? 1 : 0), "'%s' -> %zu bytes", texts[i], len);
        free(back);
        free(ids);
    }
    /* with special rendering the BOS shows */
    int32_t ids2[] = { 1, 415, 576 };
    size_t len = qfit_detokenize(t, ids2, 3, buf, sizeof buf, false, true);
    cr_expect(len >= 3 && memcmp(buf, "<s>", 3) == 0);
    qfit_tokenizer_free(t);
}

Test(tokenizer, caller_buffer)
{
    qfit_tokenizer *t = kjv_tokenizer();
    const char *s = "In the beginning God created the heaven and the earth.";
    int32_t few[3] = { -7, -7, -7 };
    int64_t n = qfit_tokenize(t, s, strlen(s), true, false, few, 2);
    cr_expect_eq(n, 15);
    cr_expect(few[0] == 1 && few[1] == 1046 && few[2] == -7);
    cr_expect_eq(qfit_tokenize(t, s, strlen(s), true, false, NULL, 0), 15);
    cr_expect_eq(qfit_tokenize(t, "", 0, true, false, NULL, 0), 1);
    cr_expect_eq(qfit_tokenize(t, "", 0, false, false, NULL, 0), 0);
    qfit_tokenizer_free(t);
}

typedef struct {
    const qfit_tokenizer *t;
    const char *text;
    size_t len;
    int64_t n;
} thr_arg;

static void *thr_main(void *p)
{
    thr_arg *a = p;
    int32_t *ids = NULL;
    size_t n = 0;
    for (int r = 0; r < 3; r++) {
        if (qfit_tokenize_alloc(a->t, a->text, a->len, true, false, &ids, &n)) { a->n = -1; return NULL; }
        a->n = (int64_t) n;
        free(ids);
    }
    return NULL;
}

Test(tokenizer, concurrent_use)
{
    qfit_tokenizer *t = kjv_tokenizer();
    size_t size = 0;
    char *text = tu_read_file(tu_shared_path("models/kjv-llama-7m-val.txt"), &size);
    cr_assert(text);
    size_t part = size < 60000 ? size : 60000;
    thr_arg a[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        a[i] = (thr_arg) { t, text, part, 0 };
        cr_assert_eq(pthread_create(&th[i], NULL, thr_main, &a[i]), 0);
    }
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    int64_t ref = qfit_tokenize(t, text, part, true, false, NULL, 0);
    cr_expect_gt(ref, 1000);
    for (int i = 0; i < 3; i++) cr_expect_eq(a[i].n, ref);
    free(text);
    qfit_tokenizer_free(t);
}

/* ------------------------------------------------------------ byte-level BPE (test vocabulary) */

static void b2u_char(int b, char out[3])
{
    int n = 0;
    for (int x = 0; x < b; x++) {
        bool self = (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
        if (!self) n++;
    }
    bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    unsigned cp = self ? (unsigned) b : 256u + (unsigned) n;
    if (cp < 0x80) { out[0] = (char) cp; out[1] = 0; }
    else { out[0] = (char) (0xC0 | (cp >> 6)); out[1] = (char) (0x80 | (cp & 0x3F)); out[2] = 0; }
}

typedef struct {
    char **tok;
    int32_t *types;
    int64_t n_tok;
    int32_t endoftext;   /* <|endoftext|>: bos and eos */
    char **merges;
    int64_t n_merges;
} bpe_vocab;

/* the vocabulary make_bpe.py writes from a merges file (see its header), with n_extra more
 * special tokens (text, type) after its four */
static void bpe_vocab_load_from(bpe_vocab *v, const char *merges_path, const char *const *extra,
                                const int32_t *extra_types, int n_extra)
{
    size_t size = 0;
    char *data = tu_read_file(merges_path, &size);
    cr_assert(data, "%s missing", merges_path);
    memset(v, 0, sizeof *v);
    v->tok = calloc(2000, sizeof *v->tok);
    v->types = calloc(2000, sizeof *v->types);
    v->merges = calloc(2000, sizeof *v->merges);
    for (int b = 0; b < 256; b++) {
        char c[3];
        b2u_char(b, c);
        v->tok[v->n_tok] = strdup(c);
        v->types[v->n_tok++] = QFIT_TOKEN_TYPE_NORMAL;
    }
    for (char *line = data; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char *sp = strchr(line, ' ');
        if (sp && v->n_merges < 1900) {
            v->merges[v->n_merges++] = strdup(line);
            size_t la = (size_t) (sp - line), lb = strlen(sp + 1);
            char *cat = malloc(la + lb + 1);
            memcpy(cat, line, la);
            memcpy(cat + la, sp + 1, lb + 1);
            bool dup = false;
            for (int64_t i = 0; i < v->n_tok && !dup; i++) dup = strcmp(v->tok[i], cat) == 0;
            if (dup) free(cat);
            else { v->tok[v->n_tok] = cat; v->types[v->n_tok++] = QFIT_TOKEN_TYPE_NORMAL; }
        }
        line = nl ? nl + 1 : NULL;
    }
    const char *sp[] = { "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool>" };
    const int32_t ty[] = { 3, 3, 3, 4 };
    v->endoftext = (int32_t) v->n_tok;
    for (int i = 0; i < 4; i++) { v->tok[v->n_tok] = strdup(sp[i]); v->types[v->n_tok++] = ty[i]; }
    for (int i = 0; i < n_extra; i++) { v->tok[v->n_tok] = strdup(extra[i]); v->types[v->n_tok++] = extra_types[i]; }
    free(data);
}

static void bpe_vocab_load(bpe_vocab *v)
{
    bpe_vocab_load_from(v, "tests/data/tokenizer/bpe-merges.txt", NULL, NULL, 0);
}

static void bpe_vocab_free(bpe_vocab *v)
{
    for (int64_t i = 0; i < v->n_tok; i++) free(v->tok[i]);
    for (int64_t i = 0; i < v->n_merges; i++) free(v->merges[i]);
    free(v->tok);
    free(v->types);
    free(v->merges);
}

static qfit_tokenizer *bpe_tokenizer(const bpe_vocab *v, const char *pre)
{
    qfit_tokenizer_params p;
    qfit_tokenizer_params_init(&p, QFIT_TOK_BPE);
    p.pre = pre;
    p.n_vocab = v->n_tok;
    p.tokens = (const char *const *) v->tok;
    p.types = v->types;
    p.n_merges = v->n_merges;
    p.merges = (const char *const *) v->merges;
    p.bos = p.eos = v->endoftext;
    p.add_bos = 1;
    p.add_eos = 0;
    char err[256] = "";
    qfit_tokenizer *t = qfit_tokenizer_new(&p, err, sizeof err);
    cr_assert(t, "bpe tokenizer (%s): %s", pre, err);
    return t;
}

Test(tokenizer, bpe_llama_cpp_cases)
{
    bpe_vocab v;
    bpe_vocab_load(&v);
    const char *pres[] = { "default", "gpt-2", "llama-bpe", "qwen2", "deepseek-llm" };
    qfit_tokenizer *tk[5];
    for (int i = 0; i < 5; i++) tk[i] = bpe_tokenizer(&v, pres[i]);
    cr_expect_eq(qfit_tokenizer_n_vocab(tk[0]), 666);
    size_t size = 0;
    char *data = tu_read_file("tests/data/tokenizer/bpe.tsv", &size);
    cr_assert(data, "tests/data/tokenizer/bpe.tsv missing");
    int rows = 0, per_pre[5] = { 0 };
    for (char *line = data; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (line[0] != '#') {
            char *f[4];
            char *p = line;
            for (int i = 0; i < 4; i++) { f[i] = p ? strchr(p, '\t') : NULL; p = f[i] ? f[i] + 1 : NULL; }
            cr_assert(f[3], "bad row: %s", line);
            *f[0] = 0;
            int which = -1;
            for (int i = 0; i < 5; i++) if (!strcmp(line, pres[i])) which = i;
            cr_assert_geq(which, 0, "unknown pre %s", line);
            char text[4096];
            int32_t exp[1024];
            size_t len = unescape(f[2] + 1, (size_t) (f[3] - f[2] - 1), text);
            size_t n = parse_ids(f[3] + 1, exp, 1024);
            char what[200];
            snprintf(what, sizeof what, "[%s] %.*s", pres[which], (int) (f[3] - f[2] - 1), f[2] + 1);
            assert_ids(tk[which], text, len, f[0][1] == '1', f[1][1] == '1', exp, n, what);
            rows++;
            per_pre[which]++;
        }
        line = nl ? nl + 1 : NULL;
    }
    cr_expect_geq(rows, 500);
    for (int i = 0; i < 5; i++) cr_expect_geq(per_pre[i], 100, "%s has %d rows", pres[i], per_pre[i]);
    free(data);
    for (int i = 0; i < 5; i++) qfit_tokenizer_free(tk[i]);
    bpe_vocab_free(&v);
}

/* ------------------------------------------------------------ llama.cpp's answers, case by case */

static char *next_line(char **cur)
{
    char *line = *cur;
    if (!line || !*line) return NULL;
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    *cur = nl ? nl + 1 : NULL;
    return line;
}

static void expect_detok(const qfit_tokenizer *t, const int32_t *ids, size_t n, bool rm, bool unparse,
                         const char *esc, size_t esc_len, const char *what)
{
    char exp[4096];
    size_t exp_len = unescape(esc, esc_len, exp);
    size_t len = 0;
    char *got = qfit_detokenize_alloc(t, ids, n, rm, unparse, &len);
    cr_assert(got);
    cr_expect(len == exp_len && memcmp(got, exp, len) == 0, "%s: detokenize(remove_special=%d unparse_special=%d) is '%s', llama.cpp '%.*s'",
              what, rm, unparse, got, (int) esc_len, esc);
    free(got);
}

/* Compares a tokenizer with a file that tests/data/tokenizer/wpm/peer-wpm.c wrote from
 * llama.cpp: an "#info n_vocab bos eos sep pad mask nl add_bos add_eos add_sep" line,
 * then for each line of cases_path: ids(add_special=1, parse_special=0) TAB ids(0, 0)
 * TAB ids(1, 1) TAB detokenize(first ids, 0, 0) TAB detokenize(first ids, 1, 1).
 * Returns the number of cases. */
static int check_peer_answers(const qfit_tokenizer *t, const char *cases_path, const char *ids_path)
{
    size_t size = 0;
    char *cases = tu_read_file(cases_path, &size), *answers = tu_read_file(ids_path, &size);
    cr_assert(cases && answers, "%s or %s missing", cases_path, ids_path);
    char *cc = cases, *ac = answers;
    char *info = next_line(&ac);
    int nv, bos, eos, sep, pad, mask, nl, ab, ae, as;
    cr_assert(info && sscanf(info, "#info %d %d %d %d %d %d %d %d %d %d", &nv, &bos, &eos, &sep, &pad, &mask, &nl,
                             &ab, &ae, &as) == 10, "%s: bad #info line", ids_path);
    cr_expect_eq(qfit_tokenizer_n_vocab(t), nv);
    cr_expect_eq(qfit_tokenizer_bos(t), bos);
    cr_expect_eq(qfit_tokenizer_eos(t), eos);
    cr_expect_eq(qfit_tokenizer_nl(t), nl);
    cr_expect_eq(qfit_tokenizer_add_bos(t), ab != 0);
    cr_expect_eq(qfit_tokenizer_add_eos(t), ae != 0);
    int rows = 0;
    for (char *c, *a; (c = next_line(&cc)) && (a = next_line(&ac)); rows++) {
        char *f[4];
        char *p = a;
        for (int i = 0; i < 4; i++) { f[i] = p ? strchr(p, '\t') : NULL; p = f[i] ? f[i] + 1 : NULL; }
        cr_assert(f[3], "%s line %d: five columns expected", ids_path, rows + 2);
        for (int i = 0; i < 4; i++) *f[i] = 0;
        char text[4096];
        size_t len = unescape(c, strlen(c), text);
        int32_t exp[3][1024];
        size_t n[3];
        const char *col[3] = { a, f[0] + 1, f[1] + 1 };
        for (int k = 0; k < 3; k++) n[k] = parse_ids(col[k], exp[k], 1024);
        char what[300];
        snprintf(what, sizeof what, "case %d '%s'", rows + 1, c);
        assert_ids(t, text, len, true, false, exp[0], n[0], what);
        assert_ids(t, text, len, false, false, exp[1], n[1], what);
        assert_ids(t, text, len, true, true, exp[2], n[2], what);
        expect_detok(t, exp[0], n[0], false, false, f[2] + 1, strlen(f[2] + 1), what);
        expect_detok(t, exp[0], n[0], true, true, f[3] + 1, strlen(f[3] + 1), what);
    }
    cr_expect_null(next_line(&ac), "%s has more lines than %s", ids_path, cases_path);
    free(cases);
    free(answers);
    return rows;
}

/* Compares every token's piece (special off and on) and its end-of-generation and control
 * flags with a file peer-wpm.c wrote: piece TAB special piece TAB is_eog TAB is_control. */
static void check_peer_pieces(const qfit_tokenizer *t, const char *path)
{
    size_t size = 0;
    char *data = tu_read_file(path, &size);
    cr_assert(data, "%s missing", path);
    char *cur = data;
    int32_t id = 0;
    for (char *line; (line = next_line(&cur)); id++) {
        char *f[3];
        char *p = line;
        for (int i = 0; i < 3; i++) { f[i] = p ? strchr(p, '\t') : NULL; p = f[i] ? f[i] + 1 : NULL; }
        cr_assert(f[2], "%s line %d: four columns expected", path, id + 1);
        for (int i = 0; i < 3; i++) *f[i] = 0;
        const char *col[2] = { line, f[0] + 1 };
        for (int sp = 0; sp < 2; sp++) {
            char exp[256], got[256];
            size_t el = unescape(col[sp], strlen(col[sp]), exp);
            size_t gl = qfit_token_to_piece(t, id, got, sizeof got, 0, sp == 1);
            cr_expect(gl == el && memcmp(got, exp, el) == 0, "token %d (special=%d): piece '%.*s', llama.cpp '%s'", id, sp,
                      (int) gl, got, col[sp]);
        }
        cr_expect_eq(qfit_tokenizer_is_eog(t, id), f[1][1] == '1', "token %d: is_eog", id);
        cr_expect_eq(qfit_tokenizer_is_control(t, id), f[2][1] == '1', "token %d: is_control", id);
    }
    cr_expect_eq(id, qfit_tokenizer_n_vocab(t));
    free(data);
}

/* The o200k pre-tokenizer (tokenizer.ggml.pre "gpt-4o", "llama4": gpt-oss, Llama 4 and
 * other GPT-4o-style vocabularies) on a byte-level vocabulary whose merges were trained
 * on the cases themselves (so that they cross case changes, contractions and digit
 * groups: a split in the wrong place changes the ids), against llama.cpp's ids
 * (tests/data/tokenizer/o200k, make-refs.sh). The vocabulary also has gpt-oss's harmony
 * tokens, as control tokens like in its GGUFs: llama.cpp matches <|start|>, <|channel|>,
 * <|message|>, <|constrain|> in any text and renders them always, and <|end|> (with
 * <|return|> and <|call|> present) does not end generation. */
/* gpt-oss's harmony tokens, then two normal tokens no merge reaches ("qqq", " QQQ"): with
 * ignore_merges (not set for o200k) the words would become them */
static const char *const o200k_extra[] = { "<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|constrain|>",
                                           "<|return|>", "<|call|>", "qqq", "\xC4\xA0QQQ" };
static const int32_t o200k_extra_types[] = { 3, 3, 3, 3, 3, 3, 3, 1, 1 };
#define N_O200K_EXTRA 9

Test(tokenizer, o200k_llama_cpp_cases)
{
    bpe_vocab v;
    bpe_vocab_load_from(&v, "tests/data/tokenizer/o200k/merges.txt", o200k_extra, o200k_extra_types, N_O200K_EXTRA);
    const char *pres[] = { "gpt-4o", "llama4" };
    for (int i = 0; i < 2; i++) {
        qfit_tokenizer *t = bpe_tokenizer(&v, pres[i]);
        char ids[128];
        snprintf(ids, sizeof ids, "tests/data/tokenizer/o200k/ids-%s.tsv", pres[i]);
        cr_expect_geq(check_peer_answers(t, "tests/data/tokenizer/o200k/cases.txt", ids), 400);
        if (i == 0) check_peer_pieces(t, "tests/data/tokenizer/o200k/pieces-gpt-4o.tsv");
        qfit_tokenizer_free(t);
    }
    bpe_vocab_free(&v);
}

/* ------------------------------------------------------------ Gemma-style SentencePiece */

/* Writes the Gemma-like vocabulary of tests/data/tokenizer/gemma/vocab.tsv (make_gemma.py)
 * as a vocabulary-only GGUF the way Gemma 2/3 GGUFs store theirs: model "llama", scores,
 * token types, bos 2, eos 1, unk 3, pad 0, add_bos_token true, add_eos_token false,
 * add_space_prefix false (general.architecture "llama" with the hyper-parameters llama.cpp
 * reads before it stops at vocab_only). QFIT_GEMMA_SAVE_DIR keeps the file there (make-refs.sh). */
static qfit_tokenizer *gemma_tokenizer(void)
{
    size_t size = 0;
    char *data = tu_read_file("tests/data/tokenizer/gemma/vocab.tsv", &size);
    cr_assert(data, "tests/data/tokenizer/gemma/vocab.tsv missing");
    char **toks = calloc(1024, sizeof *toks);
    float *scores = calloc(1024, sizeof *scores);
    int32_t *types = calloc(1024, sizeof *types);
    size_t n = 0;
    char *cur = data;
    for (char *line; (line = next_line(&cur)) && n < 1024; n++) {
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        cr_assert(t2, "vocab.tsv line %zu: three columns expected", n + 1);
        toks[n] = malloc((size_t) (t1 - line) + 1);
        toks[n][unescape(line, (size_t) (t1 - line), toks[n])] = 0;
        scores[n] = strtof(t1 + 1, NULL);
        types[n] = (int32_t) strtol(t2 + 1, NULL, 10);
    }
    char path[512];
    const char *dir = getenv("QFIT_GEMMA_SAVE_DIR");
    snprintf(path, sizeof path, "%s/gemma-vocab.gguf", dir && *dir ? dir : tu_tmpdir());
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    qfit_gguf_set_str(w, "general.architecture", "llama");
    qfit_gguf_set_str(w, "general.name", "gemma-vocab-test");
    qfit_gguf_set_u32(w, "llama.context_length", 512);
    qfit_gguf_set_u32(w, "llama.embedding_length", 256);
    qfit_gguf_set_u32(w, "llama.block_count", 1);
    qfit_gguf_set_u32(w, "llama.feed_forward_length", 768);
    qfit_gguf_set_u32(w, "llama.attention.head_count", 4);
    qfit_gguf_set_u32(w, "llama.attention.head_count_kv", 4);
    qfit_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-6f);
    qfit_gguf_set_u32(w, "llama.rope.dimension_count", 64);
    qfit_gguf_set_u32(w, "llama.vocab_size", (uint32_t) n);
    qfit_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    qfit_gguf_set_str(w, "tokenizer.ggml.pre", "default");
    qfit_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *) toks, n);
    qfit_gguf_set_arr(w, "tokenizer.ggml.scores", QFIT_GGUF_FLOAT32, scores, n);
    qfit_gguf_set_arr(w, "tokenizer.ggml.token_type", QFIT_GGUF_INT32, types, n);
    qfit_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 2);
    qfit_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 1);
    qfit_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 3);
    qfit_gguf_set_u32(w, "tokenizer.ggml.padding_token_id", 0);
    qfit_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    qfit_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    qfit_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", false);
    char err[256] = "";
    cr_assert_eq(qfit_gguf_writer_begin(w, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_gguf_writer_finish(w, err, sizeof err), 0, "%s", err);
    qfit_gguf_writer_free(w);
    for (size_t i = 0; i < n; i++) free(toks[i]);
    free(toks);
    free(scores);
    free(types);
    free(data);
    qfit_gguf *g = qfit_gguf_open(path, err, sizeof err);
    cr_assert(g, "%s", err);
    qfit_tokenizer *t = qfit_tokenizer_from_gguf(g, err, sizeof err);
    cr_assert(t, "gemma vocabulary: %s", err);
    qfit_gguf_close(g);
    return t;
}

/* Gemma's SentencePiece vocabulary without a space prefix, with user-defined tokens (runs
 * of spaces, newlines and tabs, HTML tags: matched in the raw text, always), control tokens
 * (<start_of_turn>, <unusedN>, <mask>: only with parse_special; merges may still spell one)
 * and byte fallback: 303 strings against llama.cpp's ids and detokenization
 * (tests/data/tokenizer/gemma). */
Test(tokenizer, gemma_llama_cpp_cases)
{
    qfit_tokenizer *t = gemma_tokenizer();
    cr_expect(!qfit_tokenizer_add_space_prefix(t));
    cr_expect_geq(check_peer_answers(t, "tests/data/tokenizer/gemma/cases.txt", "tests/data/tokenizer/gemma/ids.tsv"), 300);
    /* and every case comes back from its ids (BOS removed, control tokens rendered), but
     * those with a literal "▁": it reads back as a space, in llama.cpp too */
    size_t size = 0;
    char *cases = tu_read_file("tests/data/tokenizer/gemma/cases.txt", &size), *cur = cases;
    cr_assert(cases);
    int round_trips = 0;
    for (char *c; (c = next_line(&cur));) {
        char text[4096];
        size_t len = unescape(c, strlen(c), text);
        text[len] = 0;
        if (strstr(text, "\xE2\x96\x81")) continue;
        int32_t *ids = NULL;
        size_t n = 0, back_len = 0;
        cr_assert_eq(qfit_tokenize_alloc(t, text, len, true, false, &ids, &n), 0);
        char *back = qfit_detokenize_alloc(t, ids, n, true, true, &back_len);
        cr_expect(back_len == len && memcmp(back, text, len) == 0, "'%s' comes back as '%s'", c, back);
        round_trips++;
        free(back);
        free(ids);
    }
    cr_expect_geq(round_trips, 290);
    free(cases);
    qfit_tokenizer_free(t);
}

/* every token's piece (special off and on), end-of-generation and control flags, as
 * llama.cpp reports them */
Test(tokenizer, gemma_pieces_as_llama_cpp)
{
    qfit_tokenizer *t = gemma_tokenizer();
    check_peer_pieces(t, "tests/data/tokenizer/gemma/pieces.tsv");
    qfit_tokenizer_free(t);
}

/* pre-tokenizer splits, worked out by hand from the regexes */
static void expect_split(const char *pre, const char *text, const char *const *want, size_t n_want)
{
    const char *const *rx;
    int n_rx;
    unsigned flags;
    cr_assert(tok_pre_lookup(pre, &rx, &n_rx, &flags), "%s", pre);
    char err[256];
    tok_pretok *p = tok_pretok_new(rx, n_rx, err, sizeof err);
    cr_assert(p, "%s: %s", pre, err);
    tok_span *sp = NULL;
    size_t n = 0;
    cr_assert_eq(tok_pretok_split(p, text, strlen(text), &sp, &n), 0);
    cr_expect_eq(n, n_want, "[%s] %zu pieces, expected %zu", pre, n, n_want);
    for (size_t i = 0; i < n && i < n_want; i++)
        cr_expect(sp[i].len == strlen(want[i]) && memcmp(text + sp[i].off, want[i], sp[i].len) == 0,
                  "[%s] piece %zu is '%.*s', expected '%s'", pre, i, (int) sp[i].len, text + sp[i].off, want[i]);
    free(sp);
    tok_pretok_free(p);
}

Test(tokenizer, bpe_pretokenizer_splits)
{
    const char *s = "Hello world!! 123456 it's   \n\n x";
    const char *gpt2[] = { "Hello", " world", "!!", " 123456", " it", "'s", "   \n\n", " x" };
    const char *dflt[] = { "Hello", " world", "!!", " ", "123", "456", " it", "'", "s", "   \n\n", " x" };
    const char *llama3[] = { "Hello", " world", "!!", " ", "123", "456", " it", "'s", "   \n\n", " x" };
    const char *qwen2[] = { "Hello", " world", "!!", " ", "1", "2", "3", "4", "5", "6", " it", "'s", "   \n\n", " x" };
    const char *dsk[] = { "Hello", " world", "!!", " ", "123456", " it", "'", "s", "   ", "\n", "\n", " x" };
    expect_split("gpt-2", s, gpt2, 8);
    expect_split("default", s, dflt, 11);
    expect_split("llama-bpe", s, llama3, 10);
    expect_split("qwen2", s, qwen2, 14);
    expect_split("deepseek-llm", s, dsk, 12);
    /* llama3: case-insensitive contractions, 1-3 digit groups, letters with one leading symbol */
    const char *l3b[] = { "I", "'M", " fine", "123", "4", " $", "x" };
    expect_split("llama3", "I'M fine1234 $x", l3b, 7);
    /* Unicode whitespace is whitespace (U+3000 ideographic space), NBSP too */
    /* (the gpt-2 list has no plain \s+: a lone space before a letter stays an
     * unmatched piece of its own) */
    const char *ws[] = { "a", "\xE3\x80\x80", "b", "\xC2\xA0", "\xC2\xA0", "c" };
    expect_split("gpt-2", "a\xE3\x80\x80" "b\xC2\xA0\xC2\xA0" "c", ws, 6);
    /* o200k as llama.cpp runs it: an upper-case run then a lower-case run, with an optional
     * contraction in any case; a non-ASCII letter counts as upper and as lower case (so
     * "ÉcoleÉcole" stays whole, where tokenizer.json's \p{Lu}/\p{Ll} would cut it); digits
     * in threes; punctuation keeps the newlines and slashes after it */
    const char *o200k[] = { "Hello", "World's", " don'T", " HELLOworld", " \xC3\xA9", "COLE", " \xC3\x89" "cole\xC3\x89" "cole",
                            " ", "123", "45", " x", "!/\n\n", "y" };
    expect_split("gpt-4o", "HelloWorld's don'T HELLOworld \xC3\xA9" "COLE \xC3\x89" "cole\xC3\x89" "cole 12345 x!/\n\ny", o200k,
                 sizeof o200k / sizeof o200k[0]);
    /* a long run of letters is one piece (CJK text has no spaces): a regex that backtracks per
     * character fails there with PCRE2's match limit */
    const char *unit[] = { "\xE4\xB8\xAD", "a", "A", "\xC3\x89" };
    for (int u = 0; u < 4; u++) {
        size_t ul = strlen(unit[u]), reps = 200000;
        char *run = malloc(ul * reps + 1);
        for (size_t i = 0; i < reps; i++) memcpy(run + i * ul, unit[u], ul);
        run[ul * reps] = 0;
        const char *whole[] = { run };
        expect_split("gpt-4o", run, whole, 1);
        free(run);
    }
}

Test(tokenizer, bpe_byte_mapping_round_trip)
{
    bpe_vocab v;
    bpe_vocab_load(&v);
    qfit_tokenizer *t = bpe_tokenizer(&v, "gpt-2");
    /* every byte token renders as its byte */
    for (int b = 0; b < 256; b++) {
        char c[3], out[8];
        b2u_char(b, c);
        int32_t id = qfit_tokenizer_find(t, c, strlen(c));
        cr_assert_eq(id, b);
        size_t n = qfit_token_to_piece(t, id, out, sizeof out, 0, false);
        cr_expect(n == 1 && (unsigned char) out[0] == b, "byte %d", b);
    }
    /* text -> ids -> text for valid UTF-8 (no space clean-up triggers in these strings) */
    const char *texts[] = { "Hello world", "tab\there\nnew line\r\n", "caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80",
                            "\x01\x02\x7F ctrl", "<|endoftext|> as text" };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        cr_assert_eq(qfit_tokenize_alloc(t, texts[i], strlen(texts[i]), false, false, &ids, &n), 0);
        size_t len = 0;
        char *back = qfit_detokenize_alloc(t, ids, n, false, false, &len);
        cr_expect_str_eq(back, texts[i]);
        free(back);
        free(ids);
    }
    /* merges are applied by rank: "1 2"(400) before "Ġ 1"(405), so " 12" is Ġ + "12" */
    int32_t ids[8];
    int64_t n = qfit_tokenize(t, " 12", 3, false, false, ids, 8);
    int32_t g = qfit_tokenizer_find(t, "\xC4\xA0", 2), twelve = qfit_tokenizer_find(t, "12", 2);
    cr_expect(n == 2 && ids[0] == g && ids[1] == twelve);
    /* " 1": only "Ġ 1" applies */
    n = qfit_tokenize(t, " 1", 2, false, false, ids, 8);
    cr_expect(n == 1 && ids[0] == qfit_tokenizer_find(t, "\xC4\xA0" "1", 3));
    /* special tokens: BOS, control parsed only with parse_special, user-defined always */
    int32_t eot = qfit_tokenizer_find(t, "<|endoftext|>", 13), tool = qfit_tokenizer_find(t, "<tool>", 6);
    n = qfit_tokenize(t, "x<tool>", 7, true, false, ids, 8);
    cr_expect(n == 3 && ids[0] == eot && ids[2] == tool);
    n = qfit_tokenize(t, "<|endoftext|>", 13, false, true, ids, 8);
    cr_expect(n == 1 && ids[0] == eot);
    cr_expect_gt(qfit_tokenize(t, "<|endoftext|>", 13, false, false, ids, 8), 1);
    cr_expect(qfit_tokenizer_is_eog(t, qfit_tokenizer_find(t, "<|im_end|>", 10)));
    /* detokenize cleans spaces before punctuation for this pre-tokenizer */
    int32_t sp_comma[2] = { g, qfit_tokenizer_find(t, ",", 1) };
    char out[16];
    size_t l = qfit_detokenize(t, sp_comma, 2, out, sizeof out, false, false);
    cr_expect(l == 1 && out[0] == ',');
    qfit_tokenizer_free(t);
    bpe_vocab_free(&v);
}

/* ------------------------------------------------------------ errors */

Test(tokenizer, bad_input)
{
    char err[256] = "";
    qfit_tokenizer_params p;
    qfit_tokenizer_params_init(&p, QFIT_TOK_BPE);
    const char *toks[] = { "a", "b", "ab" };
    const char *merges[] = { "a b" };
    p.n_vocab = 3;
    p.tokens = toks;
    p.n_merges = 1;
    p.merges = merges;
    p.pre = "no-such-pre";
    cr_expect_null(qfit_tokenizer_new(&p, err, sizeof err));
    cr_expect(strstr(err, "no-such-pre"), "%s", err);
    p.pre = "gpt-2";
    p.add_bos = 1;   /* default bos 11 is out of range -> no BOS */
    cr_expect_null(qfit_tokenizer_new(&p, err, sizeof err));
    cr_expect(strstr(err, "bos"), "%s", err);
    p.add_bos = 0;
    qfit_tokenizer *t = qfit_tokenizer_new(&p, err, sizeof err);
    cr_assert(t, "%s", err);
    int32_t ids[4];
    cr_expect_eq(qfit_tokenize(t, "ab", 2, true, true, ids, 4), 1);
    cr_expect_eq(ids[0], 2);
    qfit_tokenizer_free(t);
    p.n_vocab = 0;
    cr_expect_null(qfit_tokenizer_new(&p, err, sizeof err));
    cr_expect_null(qfit_tokenizer_new(NULL, err, sizeof err));
    cr_expect_null(qfit_tokenizer_from_gguf(NULL, err, sizeof err));
}

static qfit_tokenizer *gguf_with(const char *model, bool scores_bad, char *err, size_t err_len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tok.gguf", tu_tmpdir());
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    const char *toks[] = { "<unk>", "<s>", "</s>", "a" };
    qfit_gguf_set_str(w, "tokenizer.ggml.model", model);
    qfit_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4);
    float sc[4] = { 0, 0, 0, -1 };
    qfit_gguf_set_arr(w, "tokenizer.ggml.scores", QFIT_GGUF_FLOAT32, sc, scores_bad ? 2 : 4);
    char e2[256];
    cr_assert_eq(qfit_gguf_writer_begin(w, path, e2, sizeof e2), 0, "%s", e2);
    cr_assert_eq(qfit_gguf_writer_finish(w, e2, sizeof e2), 0, "%s", e2);
    qfit_gguf_writer_free(w);
    qfit_gguf *g = qfit_gguf_open(path, e2, sizeof e2);
    cr_assert(g, "%s", e2);
    qfit_tokenizer *t = qfit_tokenizer_from_gguf(g, err, err_len);
    qfit_gguf_close(g);
    return t;
}

Test(tokenizer, gguf_refusals)
{
    char err[256] = "";
    cr_expect_null(gguf_with("t5", false, err, sizeof err));
    cr_expect(strstr(err, "'t5' is not supported"), "%s", err);
    cr_expect_null(gguf_with("llama", true, err, sizeof err));
    cr_expect(strstr(err, "scores"), "%s", err);
    cr_expect_null(gguf_with("gpt2", false, err, sizeof err));
    cr_expect(strstr(err, "merges"), "%s", err);
    qfit_tokenizer *t = gguf_with("llama", false, err, sizeof err);
    cr_assert(t, "%s", err);
    /* "a" exists; "b" has no byte token -> unk */
    int32_t ids[8];
    int64_t n = qfit_tokenize(t, "ab", 2, false, false, ids, 8);
    cr_expect(n >= 1 && ids[n - 1] == 0, "n=%lld", (long long) n);
    qfit_tokenizer_free(t);
}

/* ------------------------------------------------------------ CLI */

Test(tokenizer, cli)
{
    char cmd[1024];
    int st = 0;
    snprintf(cmd, sizeof cmd, "%s tokenize %s 'In the beginning God' --ids-only", tu_qfit_bin(),
             tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    char *out = tu_run(cmd, &st);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect_str_eq(out, "[1, 1046, 261, 1909, 1289, 403]\n");
    free(out);

    snprintf(cmd, sizeof cmd, "%s tokenize %s 'In the\nbeginning'", tu_qfit_bin(),
             tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    out = tu_run(cmd, &st);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "     1 -> '<s>'\n") == out, "%s", out);
    cr_expect(strstr(out, "    13 -> '\n'\n"), "%s", out);
    cr_expect(strstr(out, "   261 -> ' the'\n"), "%s", out);
    free(out);

    char path[512];
    snprintf(path, sizeof path, "%s/in.txt", tu_tmpdir());
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fputs("<s>In", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s tokenize %s -f %s --ids-only --no-bos --parse-special", tu_qfit_bin(),
             tu_shared_path("models/kjv-llama-7m-f32.gguf"), path);
    out = tu_run(cmd, &st);
    cr_expect_eq(st, 0, "%s", out);
    cr_expect_str_eq(out, "[1, 1046]\n");
    free(out);

    snprintf(cmd, sizeof cmd, "%s tokenize /nonexistent.gguf hi", tu_qfit_bin());
    out = tu_run(cmd, &st);
    cr_expect_neq(st, 0);
    free(out);
    snprintf(cmd, sizeof cmd, "%s tokenize %s", tu_qfit_bin(), tu_shared_path("models/kjv-llama-7m-f32.gguf"));
    out = tu_run(cmd, &st);
    cr_expect_neq(st, 0);
    cr_expect(strstr(out, "usage"), "%s", out);
    free(out);
}

/* llama.cpp strips whitespace next to special tokens by model name: in a vocabulary whose
 * general.name says phi3, every special token but <unk>, <s>, <|endoftext|> (and also
 * </s>) swallows the whitespace after it. The synthetic tiny-phi3 (qfit synth; its
 * vocabulary ends with <|endoftext|> 510 and <|end|> 511) tokenized with its special
 * tokens parsed, against llama.cpp's ids:
 *   peer-tokenize tiny-phi3-f32.gguf TEXT --parse-special   (peer 0.5.0, ggml 0.25.1)
 * Without the rule the first case keeps "  " as two more "▁" pieces. */
Test(tokenizer, phi3_special_tokens_strip_whitespace_as_llama_cpp)
{
    char err[256];
    const char *path = tu_synth("tiny-phi3", QFIT_FTYPE_ALL_F32, 7, "tok-phi3.gguf");
    qfit_gguf *g = qfit_gguf_open(path, err, sizeof err);
    cr_assert_not_null(g, "%s", err);
    qfit_tokenizer *t = qfit_tokenizer_from_gguf(g, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
#define B 229, 153, 132   /* "▁" as three byte tokens: the filler vocabulary has no "▁" alone */
    static const struct { const char *text; int32_t ids[24]; int n; } cases[] = {
        { "a<|end|>  b", { 1, B, 100, 511, B, 101 }, 10 },
        { "<|end|>\nx", { 1, 511, B, 123 }, 6 },
        { " <|endoftext|> y", { 1, B, B, 510, B, B, 124 }, 15 },
        { "x </s>  y", { 1, B, 123, B, 2, B, 124 }, 13 },
        { "<s> z", { 1, 1, B, B, 125 }, 9 },
        { "q<|end|>\t \n r<|end|>", { 1, B, 116, 511, B, 117, 511 }, 11 },
    };
#undef B
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t got[64];
        const int n = qfit_tokenize(t, cases[i].text, strlen(cases[i].text), true, true, got, 64);
        cr_expect_eq(n, cases[i].n, "case %zu: %d ids, llama.cpp %d", i, n, cases[i].n);
        if (n == cases[i].n) cr_expect_arr_eq(got, cases[i].ids, (size_t)n * sizeof(int32_t), "case %zu", i);
    }
    qfit_tokenizer_free(t);
    qfit_gguf_close(g);

    /* the rule needs its four tokens (llama.cpp refuses a phi3 vocabulary without them) */
    const char *toks[] = { "<unk>", "<s>", "</s>", "a" };
    qfit_tokenizer_params p;
    qfit_tokenizer_params_init(&p, QFIT_TOK_SPM);
    p.n_vocab = 4;
    p.tokens = toks;
    p.strip = QFIT_TOK_STRIP_PHI3;
    cr_expect_null(qfit_tokenizer_new(&p, err, sizeof err));
    cr_expect_not_null(strstr(err, "phi3 vocabulary without '<|endoftext|>'"), "message: %s", err);
}
