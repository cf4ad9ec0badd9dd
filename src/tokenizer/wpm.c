/* qfit tokenizer — WordPiece ("bert" vocabularies), reproducing llama.cpp's
 * llm_tokenizer_wpm_session (src/llama-vocab.cpp) id for id.
 *
 * What llama.cpp does, and so what this does:
 *  - the fragment is read as code points (an invalid UTF-8 byte becomes U+FFFD);
 *  - with strip_accents each code point is replaced by the FIRST code point of its
 *    canonical decomposition ("é" -> "e"; a Hangul syllable -> its leading jamo),
 *    and combining marks (category M) are dropped;
 *  - whitespace ends a word; NUL, U+FFFD and control characters (Cc Cf Co Cs) are
 *    dropped without ending the word;
 *  - with lowercase each code point gets its simple lowercase mapping;
 *  - punctuation (P), ASCII symbols (S below U+007F) and CJK ideographs are words
 *    of their own;
 *  - each word, prefixed with "▁" (U+2581, how convert_hf_to_gguf.py marks a word
 *    start: "the" -> "▁the", while a "##ing" continuation becomes "ing"), is cut
 *    greedily into the longest vocabulary texts, byte by byte; if some position
 *    matches nothing the whole word becomes the unknown token.
 * llama.cpp has no limit on a word's length (Hugging Face's BERT tokenizer turns
 * words over 100 characters into [UNK]; llama.cpp does not, and neither does this).
 *
 * Differences, documented: a code point above U+10FFFF (a 4-byte sequence with a
 * lead byte F4..F7) makes llama.cpp throw; here it is dropped like U+FFFD. The
 * Unicode tables are Unicode tok_wpm_unicode_version (Python's unicodedata);
 * llama.cpp's come from a later UnicodeData.txt, so code points assigned since
 * then may be classed differently (they count as letters here).
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* ================================================================ Unicode */

int tok_wpm_class(uint32_t cp)
{
    size_t lo = 0, hi = tok_wpm_n_classes;   /* last range with first <= cp */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tok_wpm_classes[mid].first <= cp) lo = mid;
        else hi = mid;
    }
    return tok_wpm_classes[lo].cls;
}

uint32_t tok_wpm_tolower(uint32_t cp)
{
    size_t lo = 0, hi = tok_wpm_n_lower;     /* first run with last >= cp */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tok_wpm_lower[mid].last < cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo == tok_wpm_n_lower) return cp;
    const tok_wpm_lower_run *r = &tok_wpm_lower[lo];
    if (cp < r->first || (cp - r->first) % r->step) return cp;
    return (uint32_t) ((int64_t) cp + r->delta);
}

uint32_t tok_wpm_nfd_first(uint32_t cp)
{
    size_t lo = 0, hi = tok_wpm_n_nfd;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tok_wpm_nfd[mid].last < cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo == tok_wpm_n_nfd || cp < tok_wpm_nfd[lo].first) return cp;
    return tok_wpm_nfd[lo].nfd;
}

/* llama.cpp's whitespace set (unicode_set_whitespace: the White_Space property) */
static bool is_whitespace(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* llama.cpp's is_chinese_char, including its 0x2B920 (where Hugging Face's Rust
 * code has it; the Python BERT tokenizer says 0x2B820) */
static bool is_chinese(uint32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* ================================================================ tokenizing */

/* decodes like llama.cpp's unicode_cpt_from_utf8 (see tokenizer.c's utf8_decode) */
static uint32_t next_cp(const unsigned char *s, size_t n, size_t *i)
{
    unsigned char c = s[*i];
    size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (need == 0 || *i + need > n) { (*i)++; return 0xFFFD; }
    uint32_t cp = need == 1 ? c : need == 2 ? (c & 0x1Fu) : need == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (size_t k = 1; k < need; k++) {
        if ((s[*i + k] & 0xC0) != 0x80) { (*i)++; return 0xFFFD; }
        cp = (cp << 6) | (s[*i + k] & 0x3Fu);
    }
    *i += need;
    return cp > 0x10FFFF ? 0xFFFD : cp;
}

static void put_utf8(char *w, size_t *n, uint32_t cp)
{
    if (cp < 0x80) { w[(*n)++] = (char) cp; return; }
    if (cp < 0x800) {
        w[(*n)++] = (char) (0xC0 | (cp >> 6));
    } else if (cp < 0x10000) {
        w[(*n)++] = (char) (0xE0 | (cp >> 12));
        w[(*n)++] = (char) (0x80 | ((cp >> 6) & 0x3F));
        w[(*n)++] = (char) (0x80 | (cp & 0x3F));
        return;
    } else {
        w[(*n)++] = (char) (0xF0 | (cp >> 18));
        w[(*n)++] = (char) (0x80 | ((cp >> 12) & 0x3F));
        w[(*n)++] = (char) (0x80 | ((cp >> 6) & 0x3F));
    }
    w[(*n)++] = (char) (0x80 | (cp & 0x3F));
}

#define WORD_START "\xE2\x96\x81"   /* U+2581, llama.cpp's phantom space */

typedef struct {
    const qfit_tokenizer *t;
    char     *word;      /* "▁" + the word's UTF-8 */
    size_t    n;         /* bytes in word (3 = empty) */
    uint64_t *scratch;   /* max_token_len prefix hashes */
    id_vec   *out;
} wpm_state;

/* greedy longest-match-first over the word's bytes; no match at some position:
 * the whole word is the unknown token */
static void flush_word(wpm_state *s)
{
    if (s->n == 3) return;
    const qfit_tokenizer *t = s->t;
    size_t start = s->out->n;
    for (size_t i = 0; i < s->n;) {
        size_t max = s->n - i < t->max_token_len ? s->n - i : t->max_token_len, len = 0;
        int64_t id = tok_strtab_longest_prefix(&t->vocab, s->word + i, max, s->scratch, &len);
        if (id < 0) { s->out->n = start; break; }
        tok_ids_push(s->out, (int32_t) id);
        i += len;
    }
    if (s->out->n == start) tok_ids_push(s->out, t->unk);
    s->n = 3;
}

int tok_wpm_fragment(const qfit_tokenizer *t, const char *text, size_t len, id_vec *out)
{
    /* a word is at most the whole fragment, each code point re-encoded in at most
     * 4 bytes from at least 1 input byte */
    if (len > (SIZE_MAX - 8) / 4) return -1;
    wpm_state s = { .t = t, .n = 3, .out = out };
    s.word = malloc(4 * len + 8);
    s.scratch = malloc(sizeof *s.scratch * (t->max_token_len ? t->max_token_len : 1));
    if (!s.word || !s.scratch) { free(s.word); free(s.scratch); return -1; }
    memcpy(s.word, WORD_START, 3);

    const unsigned char *u = (const unsigned char *) text;
    size_t i = 0;
    while (i < len) {
        uint32_t cp = next_cp(u, len, &i);
        if (t->strip_accents) cp = tok_wpm_nfd_first(cp);
        if (is_whitespace(cp)) { flush_word(&s); continue; }
        int cls = tok_wpm_class(cp);
        if (cp == 0 || cp == 0xFFFD || cls == TOK_WPM_CONTROL) continue;
        if (t->strip_accents && cls == TOK_WPM_MARK) continue;
        uint32_t c = t->lowercase ? tok_wpm_tolower(cp) : cp;
        if (cls == TOK_WPM_PUNCT || cls == TOK_WPM_ASCII_SYMBOL || is_chinese(cp)) {
            flush_word(&s);
            put_utf8(s.word, &s.n, c);
            flush_word(&s);
        } else {
            put_utf8(s.word, &s.n, c);
        }
    }
    flush_word(&s);
    free(s.word);
    free(s.scratch);
    return out->oom ? -1 : 0;
}
