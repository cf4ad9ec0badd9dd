/* qfit — tokenizer: SentencePiece-style ("llama"), byte-level BPE ("gpt2") and
 * WordPiece ("bert": BERT / nomic-bert embedding models) vocabularies as stored in
 * GGUF metadata, reproducing llama.cpp's tokenization token for token.
 *
 * WordPiece: a GGUF "bert" vocabulary is what convert_hf_to_gguf.py makes of a
 * vocab.txt: a word-initial piece "the" is stored as "▁the" (U+2581), a "##ing"
 * continuation as "ing", bracketed specials ("[CLS]") as they are. Text is
 * normalised as llama.cpp does (lowercase and accent stripping, each on by default;
 * tokenizer.ggml.normalizer.lowercase / .strip_accents turn them off), split on
 * whitespace, punctuation and CJK ideographs, and each word is cut greedily into
 * the longest pieces; a word that cannot be cut becomes [UNK]. With add_special,
 * qfit_tokenize adds [CLS] (the bos id) before and [SEP] (the sep id) after the
 * text, always, as llama_tokenize(add_special = true) does for these models.
 * Invalid UTF-8 bytes, NUL and control characters are dropped (as llama.cpp does).
 * qfit_detokenize gives llama.cpp's text back: each word start "▁" is a space (so
 * the text starts with one), spaces before . , ! ? are cleaned up.
 * Coverage: the Unicode tables are generated from Unicode 14.0 data
 * (src/tokenizer/gen_wpm_unicode.py); characters assigned later count as letters.
 *
 * A tokenizer is built either from a GGUF file's tokenizer.ggml.* metadata or
 * from plain arrays (qfit_tokenizer_params). After construction it is
 * immutable: every function taking a const qfit_tokenizer * may be called from
 * several threads at once.
 *
 * Token ids are int32_t; QFIT_TOKEN_NONE (-1) means "no such token".
 */
#ifndef QFIT_TOKENIZER_H
#define QFIT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QFIT_TOKEN_NONE (-1)

typedef struct qfit_tokenizer qfit_tokenizer;
typedef struct qfit_gguf qfit_gguf;

typedef enum {
    QFIT_TOK_SPM = 1,  /* tokenizer.ggml.model = "llama" */
    QFIT_TOK_BPE = 2,  /* tokenizer.ggml.model = "gpt2" (byte-level BPE) */
    QFIT_TOK_WPM = 3,  /* tokenizer.ggml.model = "bert" (WordPiece) */
} qfit_tok_model;

/* tokenizer.ggml.token_type values (as written by llama.cpp's converters). */
typedef enum {
    QFIT_TOKEN_TYPE_UNDEFINED    = 0,
    QFIT_TOKEN_TYPE_NORMAL       = 1,
    QFIT_TOKEN_TYPE_UNKNOWN      = 2,
    QFIT_TOKEN_TYPE_CONTROL      = 3,
    QFIT_TOKEN_TYPE_USER_DEFINED = 4,
    QFIT_TOKEN_TYPE_UNUSED       = 5,
    QFIT_TOKEN_TYPE_BYTE         = 6,
} qfit_token_type;

/* Whitespace stripping next to special tokens, which llama.cpp sets by model name (the
 * GGUF does not carry it; qfit_tokenizer_from_gguf picks the rule as llama.cpp does).
 * A matched special token with RSTRIP swallows the ASCII whitespace after it, with
 * LSTRIP the whitespace before it (when the text's special tokens are parsed). */
typedef enum {
    QFIT_TOK_STRIP_NONE = 0,
    QFIT_TOK_STRIP_PHI3,   /* general.name contains "phi-3" or "phi3": every special token and
                              "</s>" RSTRIP, except "<unk>", "<s>", "<|endoftext|>" (all four
                              must exist, as llama.cpp requires) */
    QFIT_TOK_STRIP_MASK,   /* tokenizer.ggml.pre jina-v2-de/es/code, or general.architecture
                              nomic-bert-moe / jina-bert-v3: "<mask>" LSTRIP */
} qfit_tok_strip;

/* Everything a tokenizer is built from. Start with qfit_tokenizer_params_init()
 * (which sets the documented defaults), then fill the arrays. The arrays are
 * copied: they need not outlive qfit_tokenizer_new(). */
typedef struct {
    qfit_tok_model model;
    /* BPE pre-tokenizer name as in tokenizer.ggml.pre: "default", "gpt-2" (or "gpt2"),
     * "llama3"/"llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "starcoder",
     * "falcon", "gpt-4o"/"llama4" (o200k: gpt-oss, Llama 4; letters split as llama.cpp
     * does, where a non-ASCII letter counts as both cases), ... NULL or "" = "default".
     * Ignored for SPM. */
    const char *pre;

    int64_t            n_vocab;
    const char *const *tokens;      /* n_vocab strings */
    const size_t      *token_lens;  /* NULL: strlen() of each */
    const float       *scores;      /* NULL: all 0 */
    const int32_t     *types;       /* NULL: all NORMAL; values as qfit_token_type */
    qfit_tok_strip     strip;       /* default QFIT_TOK_STRIP_NONE */

    int64_t            n_merges;    /* BPE: "left right" strings, ranked by order */
    const char *const *merges;
    const size_t      *merge_lens;  /* NULL: strlen() */

    /* Special ids; QFIT_TOKEN_NONE = none. params_init() sets llama.cpp's defaults
     * for the model (SPM: bos 1, eos 2, unk 0; BPE: bos 11, eos 11; WPM: bos
     * ([CLS]) 101, unk 100, sep 102, pad 0, mask 103). Ids out of range are
     * dropped. eot/eom are also detected from token texts when NONE. A WPM
     * vocabulary must have unk, bos and sep (else qfit_tokenizer_new fails). */
    int32_t bos, eos, unk, pad, eot, eom, sep, mask;
    /* -1 = the model's default (SPM: add_bos 1, add_eos 0, add_space_prefix 1;
     * BPE: add_bos 1 for llama3-style pre-tokenizers else 0, add_eos 0,
     * add_space_prefix 0; WPM: add_bos 1, add_eos 0, add_sep 1, add_space_prefix 0).
     * WPM tokenization adds [CLS]/[SEP] on add_special whatever these say (as
     * llama.cpp does); they are reported by the accessors. */
    int add_bos, add_eos, add_sep, add_space_prefix;
    /* WPM normaliser, -1 = default: lowercase 1; strip_accents = lowercase. */
    int lowercase, strip_accents;
} qfit_tokenizer_params;

void qfit_tokenizer_params_init(qfit_tokenizer_params *p, qfit_tok_model model);

/* NULL on error, with a message in err. */
qfit_tokenizer *qfit_tokenizer_new(const qfit_tokenizer_params *p, char *err, size_t err_len);
/* Reads tokenizer.ggml.* (model, pre, tokens, scores, token_type, merges,
 * bos/eos/unknown/padding/eot/eom/seperator/mask ids, add_bos_token, add_eos_token,
 * add_sep_token, add_space_prefix, normalizer.lowercase, normalizer.strip_accents).
 * Refuses other tokenizer models with a clear message. */
qfit_tokenizer *qfit_tokenizer_from_gguf(const qfit_gguf *g, char *err, size_t err_len);
void qfit_tokenizer_free(qfit_tokenizer *t);

/* Tokenize len bytes of text (any bytes; invalid UTF-8 is handled as llama.cpp does).
 * add_special: add BOS/EOS as the model says (add_bos/add_eos).
 * parse_special: control tokens written in the text ("<s>") become those tokens;
 * user-defined tokens are always matched (as in llama.cpp, gpt-oss's <|start|>, <|channel|>,
 * <|message|> and <|constrain|> count as user-defined, and so does <|end|> when the
 * vocabulary has <|return|> and <|call|>).
 * Writes at most cap ids to out (out may be NULL when cap is 0) and returns the
 * total number of ids (compare with cap); -1 on error (out of memory, regex failure). */
int64_t qfit_tokenize(const qfit_tokenizer *t, const char *text, size_t len,
                      bool add_special, bool parse_special, int32_t *out, size_t cap);
/* Same, into a malloc'd array (free() it). 0 on success, -1 on error. An empty
 * result sets *out_ids = NULL (or a valid pointer) and *n = 0. */
int qfit_tokenize_alloc(const qfit_tokenizer *t, const char *text, size_t len,
                        bool add_special, bool parse_special, int32_t **out_ids, size_t *n);

/* The text of one token as it appears in output (llama_token_to_piece):
 * SPM "▁" becomes a space, byte tokens become their raw byte, BPE pieces are
 * mapped back from the byte-to-unicode alphabet; control/unknown tokens render
 * empty unless special. lstrip: drop up to that many leading spaces.
 * Writes at most cap bytes (no NUL) and returns the piece length; 0 for an
 * invalid id. */
size_t qfit_token_to_piece(const qfit_tokenizer *t, int32_t id, char *buf, size_t cap,
                           int lstrip, bool special);

/* ids back to text (llama_detokenize): the leading space of the first piece is
 * dropped when the model adds a space prefix; remove_special drops a leading BOS
 * and a trailing EOS the model adds; unparse_special renders control tokens.
 * BPE models that clean up spaces do so. Writes at most cap bytes (no NUL) and
 * returns the full length. */
size_t qfit_detokenize(const qfit_tokenizer *t, const int32_t *ids, size_t n, char *buf, size_t cap,
                       bool remove_special, bool unparse_special);
/* Same into a malloc'd NUL-terminated string; NULL on out of memory. */
char *qfit_detokenize_alloc(const qfit_tokenizer *t, const int32_t *ids, size_t n,
                            bool remove_special, bool unparse_special, size_t *len);

/* accessors */
qfit_tok_model qfit_tokenizer_model(const qfit_tokenizer *t);
const char    *qfit_tokenizer_pre(const qfit_tokenizer *t);     /* "" for SPM */
int32_t        qfit_tokenizer_n_vocab(const qfit_tokenizer *t);
int32_t        qfit_tokenizer_bos(const qfit_tokenizer *t);
int32_t        qfit_tokenizer_eos(const qfit_tokenizer *t);
int32_t        qfit_tokenizer_eot(const qfit_tokenizer *t);
int32_t        qfit_tokenizer_eom(const qfit_tokenizer *t);
int32_t        qfit_tokenizer_unk(const qfit_tokenizer *t);
int32_t        qfit_tokenizer_pad(const qfit_tokenizer *t);
int32_t        qfit_tokenizer_nl(const qfit_tokenizer *t);      /* newline token or NONE (WPM: pad) */
int32_t        qfit_tokenizer_sep(const qfit_tokenizer *t);     /* [SEP] or NONE */
int32_t        qfit_tokenizer_cls(const qfit_tokenizer *t);     /* WPM: [CLS] (= bos); else NONE */
int32_t        qfit_tokenizer_mask(const qfit_tokenizer *t);    /* [MASK] or NONE */
bool           qfit_tokenizer_add_sep(const qfit_tokenizer *t);
bool           qfit_tokenizer_add_bos(const qfit_tokenizer *t);
bool           qfit_tokenizer_add_eos(const qfit_tokenizer *t);
bool           qfit_tokenizer_add_space_prefix(const qfit_tokenizer *t);
/* end of generation: eos, eot, eom and tokens such as <|im_end|>, <|eot_id|>; not <|end|>
 * in a vocabulary with <|return|> and <|call|> (gpt-oss: <|end|> closes a message, not the
 * turn; as llama.cpp) */
bool           qfit_tokenizer_is_eog(const qfit_tokenizer *t, int32_t id);
bool           qfit_tokenizer_is_control(const qfit_tokenizer *t, int32_t id);
/* Raw vocabulary text (NUL-terminated; *len set when len is not NULL); NULL if out of range. */
const char    *qfit_tokenizer_token_text(const qfit_tokenizer *t, int32_t id, size_t *len);
float          qfit_tokenizer_token_score(const qfit_tokenizer *t, int32_t id);
qfit_token_type qfit_tokenizer_token_type(const qfit_tokenizer *t, int32_t id);
/* Exact vocabulary lookup; QFIT_TOKEN_NONE if absent. */
int32_t        qfit_tokenizer_find(const qfit_tokenizer *t, const char *text, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* QFIT_TOKENIZER_H */
