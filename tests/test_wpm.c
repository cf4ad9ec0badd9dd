/* WordPiece ("bert") tokenizer tests: a small vocabulary (tests/data/tokenizer/wpm,
 * built by make_vocab.py) written to a GGUF the way convert_hf_to_gguf.py writes a
 * BERT vocabulary, tokenized and detokenized by qfit and compared exactly with what
 * llama.cpp produced for the same files (make-refs.sh, peer-wpm.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/gguf.h"
#include "qfit/tokenizer.h"
#include "tokenizer/tok_internal.h"
#include "util/testutil.h"

#define DATA "tests/data/tokenizer/wpm/"

/* ------------------------------------------------------------ helpers */

/* \xHH and \\ -> bytes (the escapes of cases.txt and the reference files) */
static size_t unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\\') {
            out[o++] = '\\';
            i++;
        } else if (s[i] == '\\' && i + 3 < n && s[i + 1] == 'x') {
            char hx[3] = { s[i + 2], s[i + 3], 0 };
            out[o++] = (char) strtol(hx, NULL, 16);
            i += 3;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

/* the reference files' escaping: bytes < 0x20, 0x7F and '\' as \xHH */
static char *escape(const char *s, size_t n)
{
    char *o = malloc(4 * n + 1), *p = o;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c < 0x20 || c == 0x7F || c == '\\') p += sprintf(p, "\\x%02x", c);
        else *p++ = (char) c;
    }
    *p = 0;
    return o;
}

/* splits buf (modified) into lines; returns the count */
static size_t split_lines(char *buf, size_t size, char ***lines)
{
    size_t n = 0, cap = 64;
    *lines = malloc(cap * sizeof **lines);
    for (size_t pos = 0; pos < size;) {
        char *nl = memchr(buf + pos, '\n', size - pos);
        if (n == cap) *lines = realloc(*lines, (cap *= 2) * sizeof **lines);
        (*lines)[n++] = buf + pos;
        if (!nl) break;
        *nl = 0;
        pos = (size_t) (nl - buf) + 1;
    }
    return n;
}

/* the writer's variants of the vocabulary file; -1 = key absent */
typedef struct {
    const char *name;
    int lowercase, strip_accents, add_bos, add_sep;
} variant;

static const variant variants[] = {
    { "default", -1, -1, -1, -1 },
    { "cased", 0, -1, -1, -1 },
    { "keep-accents", 1, 0, -1, -1 },
    { "no-add", -1, -1, 0, 0 },
};

static bool is_special(const char *s)
{
    return !strcmp(s, "[PAD]") || !strcmp(s, "[UNK]") || !strcmp(s, "[CLS]") || !strcmp(s, "[SEP]") ||
           !strcmp(s, "[MASK]");
}

/* vocab.txt as convert_hf_to_gguf.py's BertModel stores it: the special (CONTROL)
 * tokens as they are, "##x" -> "x", any other piece gets the word-start mark "▁"
 * (so "[unused0]", a NORMAL token, becomes "▁[unused0]") */
static char **load_vocab(size_t *n)
{
    size_t size;
    char *data = tu_read_file(DATA "vocab.txt", &size);
    cr_assert(data, DATA "vocab.txt missing");
    char **lines;
    *n = split_lines(data, size, &lines);
    if (*n && !*lines[*n - 1]) (*n)--;
    char **toks = malloc(*n * sizeof *toks);
    for (size_t i = 0; i < *n; i++) {
        const char *s = lines[i];
        toks[i] = malloc(strlen(s) + 4);
        if (is_special(s)) strcpy(toks[i], s);
        else if (strncmp(s, "##", 2) == 0) strcpy(toks[i], s + 2);
        else { strcpy(toks[i], "\xE2\x96\x81"); strcat(toks[i], s); }
    }
    free(lines);
    free(data);
    return toks;
}

static void free_vocab(char **toks, size_t n)
{
    for (size_t i = 0; i < n; i++) free(toks[i]);
    free(toks);
}

/* Writes the vocabulary-only GGUF llama.cpp loads (general.architecture "bert" with
 * the hyper-parameters its loader requires) to dir/wpm-<variant>.gguf. */
static void write_gguf(const char *path, const variant *v)
{
    size_t n;
    char **toks = load_vocab(&n);
    int32_t *types = malloc(n * sizeof *types);
    for (size_t i = 0; i < n; i++) types[i] = is_special(toks[i]) ? QFIT_TOKEN_TYPE_CONTROL : QFIT_TOKEN_TYPE_NORMAL;
    qfit_gguf_writer *w = qfit_gguf_writer_new();
    qfit_gguf_set_str(w, "general.architecture", "bert");
    qfit_gguf_set_str(w, "general.name", "wpm-test");
    qfit_gguf_set_u32(w, "bert.context_length", 512);
    qfit_gguf_set_u32(w, "bert.embedding_length", 32);
    qfit_gguf_set_u32(w, "bert.block_count", 1);
    qfit_gguf_set_u32(w, "bert.feed_forward_length", 64);
    qfit_gguf_set_u32(w, "bert.attention.head_count", 2);
    qfit_gguf_set_f32(w, "bert.attention.layer_norm_epsilon", 1e-12f);
    qfit_gguf_set_bool(w, "bert.attention.causal", false);
    qfit_gguf_set_u32(w, "bert.pooling_type", 1);
    qfit_gguf_set_u32(w, "tokenizer.ggml.token_type_count", 2);
    qfit_gguf_set_str(w, "tokenizer.ggml.model", "bert");
    qfit_gguf_set_str(w, "tokenizer.ggml.pre", "default");   /* ignored for WordPiece */
    qfit_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *) toks, n);
    qfit_gguf_set_arr(w, "tokenizer.ggml.token_type", QFIT_GGUF_INT32, types, n);
    qfit_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 100);
    qfit_gguf_set_u32(w, "tokenizer.ggml.seperator_token_id", 102);
    qfit_gguf_set_u32(w, "tokenizer.ggml.padding_token_id", 0);
    qfit_gguf_set_u32(w, "tokenizer.ggml.mask_token_id", 103);
    if (v->lowercase >= 0) qfit_gguf_set_bool(w, "tokenizer.ggml.normalizer.lowercase", v->lowercase);
    if (v->strip_accents >= 0) qfit_gguf_set_bool(w, "tokenizer.ggml.normalizer.strip_accents", v->strip_accents);
    if (v->add_bos >= 0) qfit_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos);
    if (v->add_sep >= 0) qfit_gguf_set_bool(w, "tokenizer.ggml.add_sep_token", v->add_sep);
    char err[256];
    cr_assert_eq(qfit_gguf_writer_begin(w, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qfit_gguf_writer_finish(w, err, sizeof err), 0, "%s", err);
    qfit_gguf_writer_free(w);
    free(types);
    free_vocab(toks, n);
}

/* the variant's tokenizer; QFIT_WPM_SAVE_DIR keeps the GGUF there (make-refs.sh) */
static qfit_tokenizer *open_variant(const variant *v)
{
    char path[512];
    const char *dir = getenv("QFIT_WPM_SAVE_DIR");
    snprintf(path, sizeof path, "%s/wpm-%s.gguf", dir && *dir ? dir : tu_tmpdir(), v->name);
    write_gguf(path, v);
    char err[256] = "";
    qfit_gguf *g = qfit_gguf_open(path, err, sizeof err);
    cr_assert(g, "%s", err);
    qfit_tokenizer *t = qfit_tokenizer_from_gguf(g, err, sizeof err);
    cr_assert(t, "%s: %s", v->name, err);
    qfit_gguf_close(g);
    return t;
}

static char *ids_text(const int32_t *ids, size_t n)
{
    char *s = malloc(12 * n + 1), *p = s;
    *p = 0;
    for (size_t i = 0; i < n; i++) p += sprintf(p, i ? " %d" : "%d", (int) ids[i]);
    return s;
}

/* ------------------------------------------------------------ vs llama.cpp */

/* every case in every mode against ids-<variant>.tsv; returns the mismatch count */
static int compare_variant(const variant *v)
{
    qfit_tokenizer *t = open_variant(v);
    size_t csize, rsize;
    char *cases = tu_read_file(DATA "cases.txt", &csize);
    char path[256];
    snprintf(path, sizeof path, DATA "ids-%s.tsv", v->name);
    char *refs = tu_read_file(path, &rsize);
    cr_assert(cases && refs, "missing %s or cases.txt", path);
    char **cl, **rl;
    size_t nc = split_lines(cases, csize, &cl), nr = split_lines(refs, rsize, &rl);
    if (nc && !*cl[nc - 1]) nc--;
    cr_assert(nr >= nc + 1, "%s: %zu lines for %zu cases", path, nr, nc);

    /* #info n_vocab bos eos sep pad mask nl add_bos add_eos add_sep */
    int info[10];
    cr_assert_eq(sscanf(rl[0], "#info %d %d %d %d %d %d %d %d %d %d", &info[0], &info[1], &info[2], &info[3],
                        &info[4], &info[5], &info[6], &info[7], &info[8], &info[9]), 10);
    int mine[10] = { qfit_tokenizer_n_vocab(t), qfit_tokenizer_bos(t), qfit_tokenizer_eos(t), qfit_tokenizer_sep(t),
                     qfit_tokenizer_pad(t), qfit_tokenizer_mask(t), qfit_tokenizer_nl(t), qfit_tokenizer_add_bos(t),
                     qfit_tokenizer_add_eos(t), qfit_tokenizer_add_sep(t) };
    for (int k = 0; k < 10; k++) cr_expect_eq(mine[k], info[k], "%s: info field %d: %d, llama.cpp %d", v->name, k, mine[k], info[k]);
    cr_expect_eq(qfit_tokenizer_cls(t), qfit_tokenizer_bos(t));

    int bad = 0;
    char *text = malloc(csize + 1);
    for (size_t i = 0; i < nc; i++) {
        size_t len = unescape(cl[i], strlen(cl[i]), text);
        char *f[5] = { 0 };
        char *s = rl[i + 1];
        for (int k = 0; k < 5; k++) {
            f[k] = s;
            char *tab = s ? strchr(s, '\t') : NULL;
            if (tab) { *tab = 0; s = tab + 1; } else s = NULL;
        }
        cr_assert(f[4], "%s line %zu: 5 fields expected", path, i + 2);
        static const bool modes[3][2] = { { true, false }, { false, false }, { true, true } };
        int32_t *ids[3];
        size_t n[3];
        for (int m = 0; m < 3; m++) {
            cr_assert_eq(qfit_tokenize_alloc(t, text, len, modes[m][0], modes[m][1], &ids[m], &n[m]), 0);
            char *got = ids_text(ids[m], n[m]);
            if (strcmp(got, f[m])) {
                if (bad++ < 10)
                    cr_log_error("%s case %zu '%s' (add_special %d parse_special %d):\n  qfit      %s\n  llama.cpp %s",
                                 v->name, i + 1, cl[i], modes[m][0], modes[m][1], got, f[m]);
            }
            free(got);
        }
        for (int d = 0; d < 2; d++) {
            size_t dl;
            char *dt = qfit_detokenize_alloc(t, ids[0], n[0], d == 1, d == 1, &dl);
            cr_assert(dt);
            char *e = escape(dt, dl);
            if (strcmp(e, f[3 + d]) && bad++ < 10)
                cr_log_error("%s case %zu '%s' detokenize (remove/unparse special %d):\n  qfit      '%s'\n  llama.cpp '%s'",
                             v->name, i + 1, cl[i], d, e, f[3 + d]);
            free(e);
            free(dt);
        }
        for (int m = 0; m < 3; m++) free(ids[m]);
    }
    free(text);
    free(cl);
    free(rl);
    free(cases);
    free(refs);
    qfit_tokenizer_free(t);
    return bad;
}

Test(wpm, default_vs_llama_cpp) { cr_expect_eq(compare_variant(&variants[0]), 0); }
Test(wpm, cased_vs_llama_cpp) { cr_expect_eq(compare_variant(&variants[1]), 0); }
Test(wpm, keep_accents_vs_llama_cpp) { cr_expect_eq(compare_variant(&variants[2]), 0); }
Test(wpm, no_add_flags_vs_llama_cpp) { cr_expect_eq(compare_variant(&variants[3]), 0); }

/* token_to_piece of every id, special off and on, and its eog / control flags,
 * against pieces-default.tsv: "▁the" -> " the", a continuation "ing" -> "ing",
 * controls empty unless special */
Test(wpm, pieces_vs_llama_cpp)
{
    qfit_tokenizer *t = open_variant(&variants[0]);
    size_t size;
    char *refs = tu_read_file(DATA "pieces-default.tsv", &size);
    cr_assert(refs, DATA "pieces-default.tsv missing");
    char **rl;
    size_t nr = split_lines(refs, size, &rl);
    cr_assert_geq(nr, (size_t) qfit_tokenizer_n_vocab(t));
    int bad = 0;
    char buf[1024];
    for (int32_t id = 0; id < qfit_tokenizer_n_vocab(t); id++) {
        char *tab = strchr(rl[id], '\t'), *tab2 = tab ? strchr(tab + 1, '\t') : NULL;
        int eog, control;
        cr_assert(tab2 && sscanf(tab2 + 1, "%d %d", &eog, &control) == 2, "pieces line %d", id + 1);
        *tab = *tab2 = 0;
        const char *want[2] = { rl[id], tab + 1 };
        if ((qfit_tokenizer_is_eog(t, id) != (eog != 0) || qfit_tokenizer_is_control(t, id) != (control != 0)) &&
            bad++ < 10)
            cr_log_error("id %d: qfit eog %d control %d, llama.cpp %d %d", id, qfit_tokenizer_is_eog(t, id),
                         qfit_tokenizer_is_control(t, id), eog, control);
        for (int sp = 0; sp < 2; sp++) {
            size_t n = qfit_token_to_piece(t, id, buf, sizeof buf, 0, sp == 1);
            char *e = escape(buf, n);
            if (strcmp(e, want[sp]) && bad++ < 10)
                cr_log_error("id %d special %d: qfit '%s', llama.cpp '%s'", id, sp, e, want[sp]);
            free(e);
        }
    }
    cr_expect_eq(bad, 0);
    /* and a hand-checked pair: "▁walk" + "ing" reads back as " walking" */
    int32_t ids[2] = { qfit_tokenizer_find(t, "\xE2\x96\x81walk", 7), qfit_tokenizer_find(t, "ing", 3) };
    cr_assert(ids[0] >= 0 && ids[1] >= 0, "vocab.txt lacks walk / ##ing");
    size_t n;
    char *s = qfit_detokenize_alloc(t, ids, 2, false, false, &n);
    cr_expect_str_eq(s, " walking");
    free(s);
    free(rl);
    free(refs);
    qfit_tokenizer_free(t);
}

/* ------------------------------------------------------------ hand checks */

Test(wpm, embedding_adds_cls_and_sep)
{
    qfit_tokenizer *t = open_variant(&variants[0]);
    cr_expect_eq(qfit_tokenizer_model(t), QFIT_TOK_WPM);
    cr_expect_eq(qfit_tokenizer_bos(t), 101);
    cr_expect_eq(qfit_tokenizer_sep(t), 102);
    /* llama.cpp takes "[PAD]" for a fill-in-the-middle pad token: end of generation */
    cr_expect(qfit_tokenizer_is_eog(t, 0));
    cr_expect(!qfit_tokenizer_is_eog(t, 102));
    int32_t ids[16];
    int64_t n = qfit_tokenize(t, "", 0, true, false, ids, 16);
    cr_assert_eq(n, 2);
    cr_expect(ids[0] == 101 && ids[1] == 102);
    n = qfit_tokenize(t, "The Lord", 8, true, false, ids, 16);
    cr_assert_eq(n, 4);
    cr_expect_eq(ids[0], 101);
    cr_expect_eq(ids[1], qfit_tokenizer_find(t, "\xE2\x96\x81the", 6));
    cr_expect_eq(ids[2], qfit_tokenizer_find(t, "\xE2\x96\x81lord", 7));
    cr_expect_eq(ids[3], 102);
    /* a word with no piece at some position is one [UNK] */
    n = qfit_tokenize(t, "\xE2\x82\xAC", 3, false, false, ids, 16);   /* "€": no such piece */
    cr_assert_eq(n, 1);
    cr_expect_eq(ids[0], 100);
    qfit_tokenizer_free(t);
}

Test(wpm, unicode_tables)
{
    /* spot checks of the generated tables against UnicodeData.txt facts */
    cr_expect_eq(tok_wpm_tolower('A'), 'a');
    cr_expect_eq(tok_wpm_tolower(0x130), 'i');        /* İ: simple mapping */
    cr_expect_eq(tok_wpm_tolower(0x1C5), 0x1C6);      /* ǅ -> ǆ (step-1 run) */
    cr_expect_eq(tok_wpm_tolower(0x100), 0x101);      /* Ā -> ā (step-2 run) */
    cr_expect_eq(tok_wpm_tolower(0x101), 0x101);
    cr_expect_eq(tok_wpm_tolower(0x212A), 'k');       /* Kelvin sign */
    cr_expect_eq(tok_wpm_tolower(0x10400), 0x10428);  /* Deseret */
    cr_expect_eq(tok_wpm_nfd_first(0xE9), 'e');
    cr_expect_eq(tok_wpm_nfd_first(0x212B), 'A');     /* Angstrom sign -> Å -> A */
    cr_expect_eq(tok_wpm_nfd_first(0xD55C), 0x1112);  /* 한 -> ᄒ */
    cr_expect_eq(tok_wpm_nfd_first(0xFF21), 0xFF21);  /* compatibility only: kept */
    cr_expect_eq(tok_wpm_class('!'), TOK_WPM_PUNCT);
    cr_expect_eq(tok_wpm_class('$'), TOK_WPM_ASCII_SYMBOL);
    cr_expect_eq(tok_wpm_class(0x20AC), TOK_WPM_OTHER);   /* € is a symbol, but not ASCII */
    cr_expect_eq(tok_wpm_class(0x301), TOK_WPM_MARK);
    cr_expect_eq(tok_wpm_class(0x200B), TOK_WPM_CONTROL); /* Cf */
    cr_expect_eq(tok_wpm_class(0x378), TOK_WPM_OTHER);    /* unassigned: not control */
    cr_expect_eq(tok_wpm_class(0x10FFFF), TOK_WPM_OTHER);
}

/* ------------------------------------------------------------ bad input */

static qfit_tokenizer *small(const char *const *toks, int n, int unk, char *err, size_t err_len)
{
    qfit_tokenizer_params p;
    qfit_tokenizer_params_init(&p, QFIT_TOK_WPM);
    p.n_vocab = n;
    p.tokens = toks;
    p.unk = unk;
    p.bos = 1;
    p.sep = 2;
    p.pad = p.mask = QFIT_TOKEN_NONE;
    return qfit_tokenizer_new(&p, err, err_len);
}

Test(wpm, bad_vocabularies)
{
    char err[256] = "";
    const char *toks[] = { "[UNK]", "[CLS]", "[SEP]", "\xE2\x96\x81" "a", "b" };
    cr_expect_null(small(toks, 5, 100, err, sizeof err));   /* default [UNK] 100 out of range */
    cr_expect(strstr(err, "unknown token"), "%s", err);
    cr_expect_null(small(toks, 5, QFIT_TOKEN_NONE, err, sizeof err));
    cr_expect(strstr(err, "unknown token"), "%s", err);
    const char *empty[] = { "[UNK]", "[CLS]", "[SEP]", "", "b" };
    cr_expect_null(small(empty, 5, 0, err, sizeof err));
    cr_expect(strstr(err, "token 3") && strstr(err, "empty"), "%s", err);
    qfit_tokenizer_params p;
    qfit_tokenizer_params_init(&p, QFIT_TOK_WPM);
    p.n_vocab = 5;
    p.tokens = toks;
    p.unk = 0;
    p.bos = 1;   /* sep defaults to 102: out of range */
    cr_expect_null(qfit_tokenizer_new(&p, err, sizeof err));
    cr_expect(strstr(err, "sep"), "%s", err);
    p.sep = 2;
    p.add_sep = 0;
    p.bos = QFIT_TOKEN_NONE;
    p.add_bos = 0;
    cr_expect_null(qfit_tokenizer_new(&p, err, sizeof err));
    cr_expect(strstr(err, "[CLS]"), "%s", err);

    qfit_tokenizer *t = small(toks, 5, 0, err, sizeof err);
    cr_assert(t, "%s", err);
    int32_t ids[8];
    /* "ab": "▁a" + "b"; "ba": no "▁b" -> [UNK] */
    cr_expect_eq(qfit_tokenize(t, "AB", 2, false, false, ids, 8), 2);
    cr_expect(ids[0] == 3 && ids[1] == 4);
    cr_expect_eq(qfit_tokenize(t, "ba", 2, false, false, ids, 8), 1);
    cr_expect_eq(ids[0], 0);
    qfit_tokenizer_free(t);
}

Test(wpm, bad_text_never_crashes)
{
    qfit_tokenizer *t = open_variant(&variants[0]);
    /* invalid UTF-8 is dropped as llama.cpp drops it (U+FFFD is skipped), and a
     * sequence above U+10FFFF (llama.cpp throws) is dropped too */
    int32_t ids[16];
    cr_expect_eq(qfit_tokenize(t, "\xff\xfe\xf7\xbf\xbf\xbf", 6, false, false, ids, 16), 0);
    cr_expect_eq(qfit_tokenize(t, "a\xf4\x90\x80\x80", 5, false, false, ids, 16), 1);
    cr_expect_eq(ids[0], qfit_tokenizer_find(t, "\xE2\x96\x81" "a", 4));
    /* every byte pair and a few triples: no crash, no sanitizer report */
    unsigned char b[3];
    for (int x = 0; x < 256; x++)
        for (int y = 0; y < 256; y += 3) {
            b[0] = (unsigned char) x;
            b[1] = (unsigned char) y;
            b[2] = (unsigned char) (x ^ y);
            cr_assert_geq(qfit_tokenize(t, (const char *) b, 3, true, true, ids, 16), 2);
        }
    /* a long word of repeated pieces is tokenized (llama.cpp has no 100-char limit) */
    char *big = malloc(100001);
    for (int i = 0; i < 100000; i++) big[i] = "ab"[i & 1];
    int64_t n = qfit_tokenize(t, big, 100000, false, false, NULL, 0);
    cr_expect_gt(n, 1);
    free(big);
    qfit_tokenizer_free(t);
}
