/* qfit tokenizer — building a tokenizer from GGUF tokenizer.ggml.* metadata. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/gguf.h"
#include "tokenizer/tok_internal.h"

static bool get_str(const qfit_gguf *g, const char *key, char *buf, size_t cap, bool *present);

/* llama.cpp's per-model whitespace stripping (llama_vocab::impl::load, "per token
 * attributes"): by tokenizer.ggml.pre and general.architecture, else by general.name */
static qfit_tok_strip strip_rule(const qfit_gguf *g, const char *pre)
{
    char arch[64] = "", name[256] = "";
    bool present;
    if (!get_str(g, "general.architecture", arch, sizeof arch, &present)) arch[0] = 0;
    if (!get_str(g, "general.name", name, sizeof name, &present)) name[0] = 0;
    if (strstr(pre, "jina-v2-de") || strstr(pre, "jina-v2-es") || strstr(pre, "jina-v2-code") ||
        strstr(arch, "nomic-bert-moe") || strstr(arch, "jina-bert-v3"))
        return QFIT_TOK_STRIP_MASK;
    for (char *c = name; *c; c++) *c = (char) tolower((unsigned char) *c);
    if (strstr(name, "phi-3") || strstr(name, "phi3")) return QFIT_TOK_STRIP_PHI3;
    return QFIT_TOK_STRIP_NONE;
}

static bool get_str(const qfit_gguf *g, const char *key, char *buf, size_t cap, bool *present)
{
    *present = qfit_gguf_find_key(g, key) >= 0;
    if (!*present) return true;
    return qfit_gguf_get_string(g, key, buf, cap);
}

/* reads an optional token id: absent keeps *id; a bad one is reported */
static int get_id(const qfit_gguf *g, const char *key, int32_t *id, char *err, size_t err_len)
{
    int64_t k = qfit_gguf_find_key(g, key);
    if (k < 0) return 0;
    uint64_t v;
    if (!qfit_gguf_get_uint(g, k, &v)) {
        snprintf(err, err_len, "%s: not an unsigned integer", key);
        return -1;
    }
    *id = v > (uint64_t) INT32_MAX ? INT32_MAX : (int32_t) v;   /* out of range: dropped later */
    return 0;
}

static int get_flag(const qfit_gguf *g, const char *key, int *flag, char *err, size_t err_len)
{
    int64_t k = qfit_gguf_find_key(g, key);
    if (k < 0) return 0;
    if (qfit_gguf_kv_type(g, k) != QFIT_GGUF_BOOL) {
        snprintf(err, err_len, "%s: expected a bool, found %s", key, qfit_gguf_type_name(qfit_gguf_kv_type(g, k)));
        return -1;
    }
    *flag = qfit_gguf_get_bool(g, k) ? 1 : 0;
    return 0;
}

/* string array -> pointers + lengths into the mapping */
static int get_str_array(const qfit_gguf *g, int64_t k, const char *key, uint64_t *n,
                         const char ***strs, size_t **lens, char *err, size_t err_len)
{
    if (qfit_gguf_kv_type(g, k) != QFIT_GGUF_ARRAY || qfit_gguf_arr_type(g, k) != QFIT_GGUF_STRING) {
        snprintf(err, err_len, "%s: expected an array of strings", key);
        return -1;
    }
    *n = qfit_gguf_arr_len(g, k);
    if (*n >= (uint64_t) INT32_MAX / 2) {
        snprintf(err, err_len, "%s: %llu entries is too many", key, (unsigned long long) *n);
        return -1;
    }
    *strs = malloc(sizeof **strs * (size_t) (*n ? *n : 1));
    *lens = malloc(sizeof **lens * (size_t) (*n ? *n : 1));
    if (!*strs || !*lens) {
        free(*strs); free(*lens); *strs = NULL; *lens = NULL;
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    for (uint64_t i = 0; i < *n; i++) {
        qfit_gguf_str s = qfit_gguf_arr_str(g, k, i);
        (*strs)[i] = s.data ? s.data : "";
        (*lens)[i] = s.data ? (size_t) s.len : 0;
    }
    return 0;
}

qfit_tokenizer *qfit_tokenizer_from_gguf(const qfit_gguf *g, char *err, size_t err_len)
{
    char dummy[8];
    if (!err) { err = dummy; err_len = sizeof dummy; }
    if (!g) { snprintf(err, err_len, "no GGUF file"); return NULL; }

    char model[64] = "", pre[64] = "";
    bool present;
    if (!get_str(g, "tokenizer.ggml.model", model, sizeof model, &present) || !present) {
        snprintf(err, err_len, present ? "tokenizer.ggml.model is not a string"
                                       : "no tokenizer in this file (tokenizer.ggml.model is missing)");
        return NULL;
    }
    qfit_tok_model tm;
    if (strcmp(model, "llama") == 0) tm = QFIT_TOK_SPM;
    else if (strcmp(model, "gpt2") == 0) tm = QFIT_TOK_BPE;
    else if (strcmp(model, "bert") == 0) tm = QFIT_TOK_WPM;
    else {
        snprintf(err, err_len, "tokenizer model '%s' is not supported (supported: 'llama' = SentencePiece, "
                 "'gpt2' = byte-level BPE, 'bert' = WordPiece)", model);
        return NULL;
    }
    if (!get_str(g, "tokenizer.ggml.pre", pre, sizeof pre, &present)) {
        snprintf(err, err_len, "tokenizer.ggml.pre is not a string (or longer than %zu bytes)", sizeof pre - 1);
        return NULL;
    }

    qfit_tokenizer_params p;
    qfit_tokenizer_params_init(&p, tm);
    p.pre = pre;
    p.strip = strip_rule(g, pre);

    const char **tok_strs = NULL, **merge_strs = NULL;
    size_t *tok_lens = NULL, *merge_lens = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    qfit_tokenizer *t = NULL;

    int64_t k = qfit_gguf_find_key(g, "tokenizer.ggml.tokens");
    if (k < 0) { snprintf(err, err_len, "tokenizer.ggml.tokens is missing"); return NULL; }
    uint64_t n_tok = 0;
    if (get_str_array(g, k, "tokenizer.ggml.tokens", &n_tok, &tok_strs, &tok_lens, err, err_len)) return NULL;
    if (n_tok == 0) { snprintf(err, err_len, "tokenizer.ggml.tokens is empty"); goto done; }
    p.n_vocab = (int64_t) n_tok;
    p.tokens = tok_strs;
    p.token_lens = tok_lens;

    k = qfit_gguf_find_key(g, "tokenizer.ggml.scores");
    if (k >= 0) {
        qfit_gguf_type at = qfit_gguf_kv_type(g, k) == QFIT_GGUF_ARRAY ? qfit_gguf_arr_type(g, k) : QFIT_GGUF_TYPE_COUNT;
        if (at != QFIT_GGUF_FLOAT32 && at != QFIT_GGUF_INT32) {
            snprintf(err, err_len, "tokenizer.ggml.scores: expected an array of float32 or int32");
            goto done;
        }
        if (qfit_gguf_arr_len(g, k) < n_tok) {
            snprintf(err, err_len, "tokenizer.ggml.scores has %llu entries for %llu tokens",
                     (unsigned long long) qfit_gguf_arr_len(g, k), (unsigned long long) n_tok);
            goto done;
        }
        const unsigned char *raw = qfit_gguf_arr_data(g, k);
        scores = malloc(sizeof *scores * (size_t) n_tok);
        if (!scores || !raw) { snprintf(err, err_len, "out of memory"); goto done; }
        for (uint64_t i = 0; i < n_tok; i++) {
            if (at == QFIT_GGUF_FLOAT32) memcpy(&scores[i], raw + 4 * i, 4);
            else { int32_t v; memcpy(&v, raw + 4 * i, 4); scores[i] = (float) v; }
        }
        p.scores = scores;
    }

    k = qfit_gguf_find_key(g, "tokenizer.ggml.token_type");
    if (k >= 0) {
        if (qfit_gguf_kv_type(g, k) != QFIT_GGUF_ARRAY || qfit_gguf_arr_type(g, k) != QFIT_GGUF_INT32) {
            snprintf(err, err_len, "tokenizer.ggml.token_type: expected an array of int32");
            goto done;
        }
        if (qfit_gguf_arr_len(g, k) < n_tok) {
            snprintf(err, err_len, "tokenizer.ggml.token_type has %llu entries for %llu tokens",
                     (unsigned long long) qfit_gguf_arr_len(g, k), (unsigned long long) n_tok);
            goto done;
        }
        const unsigned char *raw = qfit_gguf_arr_data(g, k);
        types = malloc(sizeof *types * (size_t) n_tok);
        if (!types || !raw) { snprintf(err, err_len, "out of memory"); goto done; }
        memcpy(types, raw, 4 * (size_t) n_tok);
        p.types = types;
    }

    if (tm == QFIT_TOK_BPE) {
        k = qfit_gguf_find_key(g, "tokenizer.ggml.merges");
        if (k < 0) { snprintf(err, err_len, "tokenizer.ggml.merges is missing (needed by a gpt2 tokenizer)"); goto done; }
        uint64_t n_m = 0;
        if (get_str_array(g, k, "tokenizer.ggml.merges", &n_m, &merge_strs, &merge_lens, err, err_len)) goto done;
        p.n_merges = (int64_t) n_m;
        p.merges = merge_strs;
        p.merge_lens = merge_lens;
    }

    if (get_id(g, "tokenizer.ggml.bos_token_id", &p.bos, err, err_len) ||
        get_id(g, "tokenizer.ggml.eos_token_id", &p.eos, err, err_len) ||
        get_id(g, "tokenizer.ggml.unknown_token_id", &p.unk, err, err_len) ||
        get_id(g, "tokenizer.ggml.padding_token_id", &p.pad, err, err_len) ||
        get_id(g, "tokenizer.ggml.eot_token_id", &p.eot, err, err_len) ||
        get_id(g, "tokenizer.ggml.eom_token_id", &p.eom, err, err_len) ||
        get_id(g, "tokenizer.ggml.seperator_token_id", &p.sep, err, err_len) ||   /* sic, llama.cpp's key */
        get_id(g, "tokenizer.ggml.mask_token_id", &p.mask, err, err_len) ||
        get_flag(g, "tokenizer.ggml.add_bos_token", &p.add_bos, err, err_len) ||
        get_flag(g, "tokenizer.ggml.add_eos_token", &p.add_eos, err, err_len) ||
        get_flag(g, "tokenizer.ggml.add_sep_token", &p.add_sep, err, err_len) ||
        get_flag(g, "tokenizer.ggml.add_space_prefix", &p.add_space_prefix, err, err_len) ||
        get_flag(g, "tokenizer.ggml.normalizer.lowercase", &p.lowercase, err, err_len) ||
        get_flag(g, "tokenizer.ggml.normalizer.strip_accents", &p.strip_accents, err, err_len))
        goto done;
    /* llama.cpp keeps the default id when the file's id is out of range */
    qfit_tokenizer_params def;
    qfit_tokenizer_params_init(&def, tm);
    if (p.bos >= p.n_vocab) p.bos = def.bos;
    if (p.eos >= p.n_vocab) p.eos = def.eos;
    if (p.unk >= p.n_vocab) p.unk = def.unk;
    if (p.pad >= p.n_vocab) p.pad = def.pad;
    if (p.eot >= p.n_vocab) p.eot = def.eot;
    if (p.eom >= p.n_vocab) p.eom = def.eom;
    if (p.sep >= p.n_vocab) p.sep = def.sep;
    if (p.mask >= p.n_vocab) p.mask = def.mask;

    t = qfit_tokenizer_new(&p, err, err_len);
done:
    free(tok_strs);
    free(tok_lens);
    free(merge_strs);
    free(merge_lens);
    free(scores);
    free(types);
    return t;
}
