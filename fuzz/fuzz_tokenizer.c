/* libFuzzer target: the WordPiece ("bert") tokenizer on arbitrary vocabularies and text.
 *
 * Input: one flag byte (bit 0 lowercase, bit 1 strip_accents, bit 2 parse_special,
 * bit 3 add_special), then vocabulary pieces separated by '\n' up to a NUL byte,
 * then the text. The vocabulary is "[UNK]" "[CLS]" "[SEP]" followed by up to 256
 * of those pieces. A refused vocabulary must come with a message. An accepted one
 * tokenizes the text: the count with no buffer must equal the count written, every
 * id must be in range, add_special must give [CLS] ... [SEP], and the ids must
 * detokenize without error.
 * Build: make fuzz; run:
 *   mkdir -p fuzz/corpus-tokenizer
 *   ./build/fuzz/fuzz_tokenizer -max_total_time=180 -max_len=4096 -timeout=10 \
 *       -artifact_prefix=build/fuzz/ -print_final_stats=1 fuzz/corpus-tokenizer
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PIECES 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const unsigned flags = data[0];
    const char *body = (const char *) data + 1;
    size_t body_len = size - 1;
    const char *nul = memchr(body, 0, body_len);
    const size_t vlen = nul ? (size_t) (nul - body) : 0;
    const char *text = nul ? nul + 1 : body;
    const size_t text_len = nul ? body_len - vlen - 1 : body_len;

    const char *toks[MAX_PIECES + 3] = { "[UNK]", "[CLS]", "[SEP]" };
    size_t lens[MAX_PIECES + 3] = { 5, 5, 5 };
    int n = 3;
    for (size_t pos = 0; vlen > 0 && pos <= vlen && n < MAX_PIECES + 3;) {
        const char *e = memchr(body + pos, '\n', vlen - pos);
        size_t l = e ? (size_t) (e - (body + pos)) : vlen - pos;
        toks[n] = body + pos;
        lens[n++] = l;
        pos += l + 1;
    }
    qfit_tokenizer_params p;
    qfit_tokenizer_params_init(&p, QFIT_TOK_WPM);
    p.n_vocab = n;
    p.tokens = toks;
    p.token_lens = lens;
    p.unk = 0;
    p.bos = 1;
    p.sep = 2;
    p.lowercase = flags & 1;
    p.strip_accents = (flags >> 1) & 1;
    char err[256] = "";
    qfit_tokenizer *t = qfit_tokenizer_new(&p, err, sizeof err);
    if (!t) {
        if (!err[0]) { fprintf(stderr, "refused without a message\n"); abort(); }
        return 0;
    }
    const bool parse_special = flags & 4, add_special = flags & 8;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (qfit_tokenize_alloc(t, text, text_len, add_special, parse_special, &ids, &n_ids) != 0) abort();
    if (qfit_tokenize(t, text, text_len, add_special, parse_special, NULL, 0) != (int64_t) n_ids) abort();
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= n) abort();
    if (add_special && (n_ids < 2 || ids[0] != 1 || ids[n_ids - 1] != 2)) abort();
    size_t dl = 0;
    char *s = qfit_detokenize_alloc(t, ids, n_ids, flags & 16, flags & 32, &dl);
    if (!s) abort();
    free(s);
    free(ids);
    qfit_tokenizer_free(t);
    return 0;
}
