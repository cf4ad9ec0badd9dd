/* qfit tokenizer — internals shared by the files of src/tokenizer. */
#ifndef QFIT_TOK_INTERNAL_H
#define QFIT_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "qfit/tokenizer.h"

/* token attributes (bit set; a token may gain CONTROL by name detection) */
enum {
    TOK_ATTR_UNKNOWN = 1u << 0,
    TOK_ATTR_UNUSED  = 1u << 1,
    TOK_ATTR_NORMAL  = 1u << 2,
    TOK_ATTR_CONTROL = 1u << 3,
    TOK_ATTR_USER    = 1u << 4,
    TOK_ATTR_BYTE    = 1u << 5,
};

/* A table of byte strings with exact-match lookup (open addressing). */
typedef struct {
    char     *blob;   /* all strings, each followed by a NUL */
    uint64_t *off;
    uint32_t *len;
    int64_t   n;
    int32_t  *slot;   /* index+1, 0 = empty */
    uint64_t  mask;   /* slot count - 1 */
} tok_strtab;

/* Builds the table from n strings; dup_keep_first: on duplicate keys keep the
 * first index in lookups (else the last). 0 on success, -1 out of memory. */
int     tok_strtab_build(tok_strtab *st, const char *const *strs, const size_t *lens, int64_t n,
                         bool dup_keep_first, int64_t *n_dups);
void    tok_strtab_free(tok_strtab *st);
int64_t tok_strtab_find(const tok_strtab *st, const char *key, size_t len);

/* ------------------------------------------------------------ pre-tokenizer */

typedef struct tok_pretok tok_pretok;

typedef struct {
    size_t off, len;
} tok_span;

/* Regex list for a tokenizer.ggml.pre name. Returns false for an unknown name.
 * flags: TOK_PRE_* below. */
enum {
    TOK_PRE_IGNORE_MERGES = 1u << 0,
    TOK_PRE_ADD_BOS       = 1u << 1,  /* llama.cpp's default add_bos for this pre */
    TOK_PRE_NO_CLEAN      = 1u << 2,  /* clean_spaces = false */
};
bool tok_pre_lookup(const char *pre, const char *const **regexes, int *n_regexes, unsigned *flags);

/* Compiles the regexes (llama.cpp syntax; \s / \S mean Unicode White_Space). */
tok_pretok *tok_pretok_new(const char *const *regexes, int n, char *err, size_t err_len);
void        tok_pretok_free(tok_pretok *p);
/* Splits subject (valid UTF-8) the way llama.cpp's unicode_regex_split does:
 * each regex in turn splits every piece into its matches and the text between
 * them. *spans is malloc'd (byte offsets into subject). 0 / -1 on error. */
int tok_pretok_split(const tok_pretok *p, const char *subject, size_t len, tok_span **spans, size_t *n);

/* ------------------------------------------------------------ the tokenizer */

struct qfit_tokenizer {
    qfit_tok_model model;
    char           pre[64];

    int32_t        n_vocab;
    tok_strtab     vocab;
    float         *score;
    int32_t       *type;     /* qfit_token_type as given */
    uint8_t       *attr;     /* TOK_ATTR_* */
    uint8_t       *eog;      /* 1 = end of generation */

    tok_strtab     merges;   /* keys "left right", lookups keep the first (lowest rank) */

    int32_t bos, eos, unk, pad, eot, eom, nl;
    bool    add_bos, add_eos, add_space_prefix, ignore_merges, clean_spaces;

    int32_t *special;        /* control / user-defined / unknown ids, longest text first */
    int64_t  n_special;

    tok_pretok *pretok;      /* BPE only */

    /* BPE byte <-> unicode alphabet */
    char     b2u[256][3];    /* UTF-8 of the code point for each byte, NUL-terminated */
    int16_t  u2b[324];       /* code point -> byte, -1 if none */
};

#endif
