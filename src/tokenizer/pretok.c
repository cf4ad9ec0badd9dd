/* qfit tokenizer — byte-level BPE pre-tokenizer: the regex lists llama.cpp uses
 * for each tokenizer.ggml.pre value, run with PCRE2 (UTF + UCP).
 *
 * llama.cpp applies its regexes one after the other: every regex splits each
 * piece produced so far into its matches and the stretches between them (those
 * stretches are kept as pieces too). \s in these regexes means Unicode
 * White_Space in llama.cpp (its own tables, or non-ASCII spaces folded onto \v
 * before std::regex runs); we rewrite \s and \S into that explicit class so that
 * PCRE2's own notion of \s does not leak in. Each piece is matched as a subject
 * of its own, so $ and lookaheads stop at the piece's end, as with llama.cpp's
 * regex_iterator over a sub-range.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* ---------------------------------------------------------- regex lists */

#define RX_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RX_LLAMA3 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* o200k (GPT-4o, gpt-oss, Llama 4): upper-then-lower letter runs with an optional
 * contraction. tokenizer.json says [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+;
 * llama.cpp writes ((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+ instead ("a letter that is
 * not a-z", then "a letter that is not A-Z") and runs it on text whose non-ASCII letters
 * are collapsed to one "letter" byte, so such a letter is upper and lower case at once
 * ("ÉcoleÉcole" stays whole). [^\P{L}a-z] is that class in one piece (PCRE2's [^a-z] is
 * ASCII-only too); a repeated group would cost PCRE2 a backtracking frame per character
 * and hit its match limit on long runs of letters (CJK text without spaces). */
#define RX_GPT4O_CONTRACTION "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?"
#define RX_GPT4O "[^\\r\\n\\p{L}\\p{N}]?[^\\P{L}a-z]*[^\\P{L}A-Z]+" RX_GPT4O_CONTRACTION \
    "|[^\\r\\n\\p{L}\\p{N}]?[^\\P{L}a-z]+[^\\P{L}A-Z]*" RX_GPT4O_CONTRACTION \
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_QWEN2 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

static const char *const rx_default[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    RX_GPT2,
    "\\p{N}+",
    "[0-9][0-9][0-9]",
};
static const char *const rx_gpt2[] = { RX_GPT2 };
static const char *const rx_llama3[] = { RX_LLAMA3 };
static const char *const rx_qwen2[] = { RX_QWEN2 };
static const char *const rx_gpt4o[] = { RX_GPT4O };
static const char *const rx_deepseek_llm[] = {
    "[\r\n]",
    "\\s?[A-Za-z\xc2\xb5\xc3\x80-\xc3\x96\xc3\x98-\xc3\xb6\xc3\xb8-\xc6\xba\xc6\xbc-\xc6\xbf\xc7\x84-\xca\x93\xca\x95-\xca\xaf\xcd\xb0-\xcd\xb3\xcd\xb6\xcd\xb7\xcd\xbb-\xcd\xbd\xcd\xbf\xce\x86\xce\x88-\xce\x8a\xce\x8c\xce\x8e-\xce\xa1\xce\xa3-\xcf\xb5\xcf\xb7-\xd2\x81\xd2\x8a-\xd4\xaf\xd4\xb1-\xd5\x96\xe1\x82\xa0-\xe1\x83\x85\xe1\x8e\xa0-\xe1\x8f\xb5\xe1\x8f\xb8-\xe1\x8f\xbd\xe1\xb2\x90-\xe1\xb2\xba\xe1\xb2\xbd-\xe1\xb2\xbf\xe1\xb4\x80-\xe1\xb4\xab\xe1\xb5\xab-\xe1\xb5\xb7\xe1\xb5\xb9-\xe1\xb6\x9a\xe1\xb8\x80-\xe1\xbc\x95\xe1\xbc\x98-\xe1\xbc\x9d\xe1\xbc\xa0-\xe1\xbd\x85\xe1\xbd\x88-\xe1\xbd\x8d\xe1\xbd\x90-\xe1\xbd\x97\xe1\xbd\x99\xe1\xbd\x9b\xe1\xbd\x9d\xe1\xbd\x9f-\xe1\xbd\xbd\xe1\xbe\x80-\xe1\xbe\xb4\xe1\xbe\xb6-\xe1\xbe\xbc\xe1\xbe\xbe\xe1\xbf\x82-\xe1\xbf\x84\xe1\xbf\x86-\xe1\xbf\x8c\xe1\xbf\x90-\xe1\xbf\x93\xe1\xbf\x96-\xe1\xbf\x9b\xe1\xbf\xa0-\xe1\xbf\xac\xe1\xbf\xb2-\xe1\xbf\xb4\xe1\xbf\xb6-\xe1\xbf\xbc\xe2\x84\x82\xe2\x84\x87\xe2\x84\x8a-\xe2\x84\x93\xe2\x84\x95\xe2\x84\x99-\xe2\x84\x9d\xe2\x84\xa4\xe2\x84\xa6\xe2\x84\xa8\xe2\x84\xaa-\xe2\x84\xad\xe2\x84\xaf-\xe2\x84\xb4\xe2\x84\xb9\xe2\x84\xbc-\xe2\x84\xbf\xe2\x85\x85-\xe2\x85\x89\xe2\x85\x8e\xe2\x86\x83\xe2\x86\x84\xe2\xb0\x80-\xe2\xb1\xbb\xe2\xb1\xbe-\xe2\xb3\xa4\xe2\xb3\xab-\xe2\xb3\xae\xe2\xb3\xb2\xe2\xb3\xb3\xea\x99\x80-\xea\x99\xad\xea\x9a\x80-\xea\x9a\x9b\xea\x9c\xa2-\xea\x9d\xaf\xea\x9d\xb1-\xea\x9e\x87\xea\x9e\x8b-\xea\x9e\x8e\xea\xad\xb0-\xea\xae\xbf\xef\xac\x80-\xef\xac\x86\xef\xac\x93-\xef\xac\x97\xef\xbc\xa1-\xef\xbc\xba\xef\xbd\x81-\xef\xbd\x9a\xf0\x90\x90\x80-\xf0\x90\x91\x8f\xf0\x90\x92\xb0-\xf0\x90\x93\x93\xf0\x90\x93\x98-\xf0\x90\x93\xbb\xf0\x90\xb2\x80-\xf0\x90\xb2\xb2\xf0\x90\xb3\x80-\xf0\x90\xb3\xb2\xf0\x91\xa2\xa0-\xf0\x91\xa3\x9f\xf0\x9e\xa4\x80-\xf0\x9e\xa5\x83]+",
    "\\s?[!-/:-~\xef\xbc\x81-\xef\xbc\x8f\xef\xbc\x9a-\xef\xbd\x9e\xe2\x80\x98-\xe2\x80\x9f\xe3\x80\x80-\xe3\x80\x82]+",
    "\\s+$",
    "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+",
    "\\p{N}+",
};
static const char *const rx_deepseek_coder[] = {
    "[\r\n]",
    "\\s?\\p{L}+",
    "\\s?\\p{P}+",
    "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+",
    "\\p{N}",
};
static const char *const rx_falcon[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|`]+",
    RX_GPT2,
    "[0-9][0-9][0-9]",
};
static const char *const rx_starcoder[] = {
    "\\p{N}",
    RX_GPT2,
};

#define N_OF(a) ((int) (sizeof(a) / sizeof((a)[0])))

typedef struct {
    const char *name;
    const char *const *rx;
    int n;
    unsigned flags;
} pre_entry;

static const pre_entry pre_table[] = {
    { "default",          rx_default,        N_OF(rx_default),        0 },
    { "gpt-2",            rx_gpt2,           N_OF(rx_gpt2),           0 },
    { "gpt2",             rx_gpt2,           N_OF(rx_gpt2),           0 },
    { "phi-2",            rx_gpt2,           N_OF(rx_gpt2),           0 },
    { "mpt",              rx_gpt2,           N_OF(rx_gpt2),           0 },
    { "olmo",             rx_gpt2,           N_OF(rx_gpt2),           0 },
    { "jais",             rx_gpt2,           N_OF(rx_gpt2),           0 },
    { "llama3",           rx_llama3,         N_OF(rx_llama3),         TOK_PRE_IGNORE_MERGES | TOK_PRE_ADD_BOS },
    { "llama-v3",         rx_llama3,         N_OF(rx_llama3),         TOK_PRE_IGNORE_MERGES | TOK_PRE_ADD_BOS },
    { "llama-bpe",        rx_llama3,         N_OF(rx_llama3),         TOK_PRE_IGNORE_MERGES | TOK_PRE_ADD_BOS },
    { "falcon3",          rx_llama3,         N_OF(rx_llama3),         TOK_PRE_IGNORE_MERGES | TOK_PRE_ADD_BOS },
    { "pixtral",          rx_llama3,         N_OF(rx_llama3),         TOK_PRE_IGNORE_MERGES | TOK_PRE_ADD_BOS },
    { "dbrx",             rx_llama3,         N_OF(rx_llama3),         0 },
    { "smaug-bpe",        rx_llama3,         N_OF(rx_llama3),         0 },
    { "qwen2",            rx_qwen2,          N_OF(rx_qwen2),          TOK_PRE_NO_CLEAN },
    { "deepseek-r1-qwen", rx_qwen2,          N_OF(rx_qwen2),          TOK_PRE_NO_CLEAN },
    { "stablelm2",        rx_qwen2,          N_OF(rx_qwen2),          0 },
    { "megrez",           rx_qwen2,          N_OF(rx_qwen2),          0 },
    { "deepseek-llm",     rx_deepseek_llm,   N_OF(rx_deepseek_llm),   TOK_PRE_NO_CLEAN },
    { "deepseek-coder",   rx_deepseek_coder, N_OF(rx_deepseek_coder), TOK_PRE_NO_CLEAN },
    { "falcon",           rx_falcon,         N_OF(rx_falcon),         0 },
    { "starcoder",        rx_starcoder,      N_OF(rx_starcoder),      0 },
    { "refact",           rx_starcoder,      N_OF(rx_starcoder),      0 },
    { "command-r",        rx_starcoder,      N_OF(rx_starcoder),      TOK_PRE_NO_CLEAN },
    { "smollm",           rx_starcoder,      N_OF(rx_starcoder),      TOK_PRE_NO_CLEAN },
    { "gpt-4o",           rx_gpt4o,          N_OF(rx_gpt4o),          TOK_PRE_NO_CLEAN },
    { "llama4",           rx_gpt4o,          N_OF(rx_gpt4o),          TOK_PRE_NO_CLEAN },
    { "codeshell",        rx_starcoder,      N_OF(rx_starcoder),      0 },
};

bool tok_pre_lookup(const char *pre, const char *const **regexes, int *n_regexes, unsigned *flags)
{
    if (!pre || !*pre) pre = "default";
    for (size_t i = 0; i < sizeof pre_table / sizeof pre_table[0]; i++) {
        if (strcmp(pre, pre_table[i].name) == 0) {
            *regexes = pre_table[i].rx;
            *n_regexes = pre_table[i].n;
            *flags = pre_table[i].flags;
            return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------- compile */

/* Unicode White_Space (what llama.cpp's tables call whitespace), for use inside [...] */
#define WS_CLASS "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

struct tok_pretok {
    int          n;
    pcre2_code **code;
};

/* Rewrites \s and \S into explicit White_Space classes. Returns malloc'd string. */
static char *rewrite_ws(const char *rx)
{
    size_t n = strlen(rx);
    size_t cap = n * 8 + 256, o = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    bool in_class = false;
    for (size_t i = 0; i < n; i++) {
        if (o + sizeof(WS_CLASS) + 8 >= cap) {
            cap *= 2;
            char *t = realloc(out, cap);
            if (!t) { free(out); return NULL; }
            out = t;
        }
        char c = rx[i];
        if (c == '\\' && i + 1 < n) {
            char d = rx[i + 1];
            if (d == 's' || d == 'S') {
                if (in_class) {
                    if (d == 'S') { free(out); return NULL; } /* not used by any list */
                    memcpy(out + o, WS_CLASS, sizeof(WS_CLASS) - 1);
                    o += sizeof(WS_CLASS) - 1;
                } else {
                    o += (size_t) snprintf(out + o, cap - o, "[%s%s]", d == 'S' ? "^" : "", WS_CLASS);
                }
                i++;
                continue;
            }
            out[o++] = c;
            out[o++] = d;
            i++;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = true;
            out[o++] = c;
            /* a leading ^ or ] belongs to the class syntax */
            if (i + 1 < n && rx[i + 1] == '^') out[o++] = rx[++i];
            continue;
        }
        if (c == ']' && in_class) in_class = false;
        out[o++] = c;
    }
    out[o] = 0;
    return out;
}

tok_pretok *tok_pretok_new(const char *const *regexes, int n, char *err, size_t err_len)
{
    tok_pretok *p = calloc(1, sizeof *p);
    if (!p) { snprintf(err, err_len, "out of memory"); return NULL; }
    p->code = calloc((size_t) (n > 0 ? n : 1), sizeof *p->code);
    if (!p->code) { free(p); snprintf(err, err_len, "out of memory"); return NULL; }
    p->n = n;
    for (int i = 0; i < n; i++) {
        char *rx = rewrite_ws(regexes[i]);
        if (!rx) {
            snprintf(err, err_len, "pre-tokenizer regex %d: cannot rewrite", i);
            tok_pretok_free(p);
            return NULL;
        }
        int ec = 0;
        PCRE2_SIZE eo = 0;
        p->code[i] = pcre2_compile((PCRE2_SPTR) rx, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_UTF_CHECK,
                                   &ec, &eo, NULL);
        free(rx);
        if (!p->code[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            snprintf(err, err_len, "pre-tokenizer regex %d does not compile at %zu: %s", i, (size_t) eo,
                     (const char *) msg);
            tok_pretok_free(p);
            return NULL;
        }
        (void) pcre2_jit_compile(p->code[i], PCRE2_JIT_COMPLETE); /* optional speed-up */
    }
    return p;
}

void tok_pretok_free(tok_pretok *p)
{
    if (!p) return;
    for (int i = 0; i < p->n; i++) pcre2_code_free(p->code[i]);
    free(p->code);
    free(p);
}

/* ---------------------------------------------------------- split */

typedef struct {
    tok_span *v;
    size_t n, cap;
} span_vec;

static int span_push(span_vec *s, size_t off, size_t len)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        tok_span *t = realloc(s->v, nc * sizeof *t);
        if (!t) return -1;
        s->v = t;
        s->cap = nc;
    }
    s->v[s->n].off = off;
    s->v[s->n].len = len;
    s->n++;
    return 0;
}

static size_t utf8_step(const char *s, size_t len, size_t i)
{
    i++;
    while (i < len && ((unsigned char) s[i] & 0xC0) == 0x80) i++;
    return i;
}

int tok_pretok_split(const tok_pretok *p, const char *subject, size_t len, tok_span **spans, size_t *n)
{
    span_vec cur = { 0 }, next = { 0 };
    *spans = NULL;
    *n = 0;
    if (len == 0) return 0;
    if (span_push(&cur, 0, len)) return -1;

    pcre2_match_data *md = NULL;
    for (int r = 0; r < p->n; r++) {
        pcre2_match_data_free(md);
        md = pcre2_match_data_create_from_pattern(p->code[r], NULL);
        if (!md) goto fail;
        next.n = 0;
        for (size_t f = 0; f < cur.n; f++) {
            const char *s = subject + cur.v[f].off;
            size_t flen = cur.v[f].len, pos = 0, prev_end = 0;
            while (pos <= flen) {
                int rc = pcre2_match(p->code[r], (PCRE2_SPTR) s, flen, pos, PCRE2_NO_UTF_CHECK, md, NULL);
                if (rc == PCRE2_ERROR_NOMATCH) break;
                if (rc < 0) goto fail;
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                size_t ms = ov[0], me = ov[1];
                if (me == ms) {           /* empty match: step over one character */
                    if (ms >= flen) break;
                    pos = utf8_step(s, flen, ms);
                    continue;
                }
                if (ms > prev_end && span_push(&next, cur.v[f].off + prev_end, ms - prev_end)) goto fail;
                if (span_push(&next, cur.v[f].off + ms, me - ms)) goto fail;
                prev_end = pos = me;
            }
            if (prev_end < flen && span_push(&next, cur.v[f].off + prev_end, flen - prev_end)) goto fail;
        }
        span_vec t = cur;
        cur = next;
        next = t;
    }
    pcre2_match_data_free(md);
    free(next.v);
    *spans = cur.v;
    *n = cur.n;
    return 0;
fail:
    pcre2_match_data_free(md);
    free(cur.v);
    free(next.v);
    return -1;
}
