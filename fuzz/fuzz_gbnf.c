/* libFuzzer target: the GBNF parser, the matcher and token masks on arbitrary bytes.
 *
 * The input is GBNF text, optionally followed by a NUL byte and a string to
 * match. A refused grammar must come with a message "line L, column C: ...".
 * An accepted one gets a matcher (which may refuse with a limit message); the
 * string is fed whole and byte by byte (both must agree unless a limit is hit),
 * and at every prefix the mask over a small vocabulary cut from the string must
 * equal the token-by-token check.
 * Build: make fuzz; run:
 *   mkdir -p fuzz/corpus-gbnf
 *   ./build/fuzz/fuzz_gbnf -max_total_time=180 -max_len=4096 -timeout=10 \
 *       -artifact_prefix=build/fuzz/ -print_final_stats=1 fuzz/corpus-gbnf
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/grammar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_TOK 24

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, 0, size);
    const size_t glen = nul ? (size_t)(nul - text) : size;
    const char *in = nul ? nul + 1 : "";
    const size_t in_len = nul ? size - glen - 1 : 0;
    char err[512] = "";
    qfit_grammar *g = qfit_grammar_parse(text, glen, err, sizeof err);
    if (!g) {
        unsigned line, col;
        if (sscanf(err, "line %u, column %u: ", &line, &col) != 2 || line == 0 || col == 0) {
            fprintf(stderr, "error without line:column: %s\n", err);
            abort();
        }
        return 0;
    }
    qfit_grammar_matcher *m = qfit_grammar_matcher_new(g, err, sizeof err);
    if (!m) { qfit_grammar_free(g); return 0; }
    const int whole = qfit_grammar_matcher_accept(m, in, in_len);
    int bytewise = 1;
    if (qfit_grammar_matcher_reset(m) == 0) {
        for (size_t k = 0; k < in_len && bytewise == 1; k++) bytewise = qfit_grammar_matcher_accept(m, in + k, 1);
        if (whole >= 0 && bytewise >= 0 && whole != bytewise) {
            fprintf(stderr, "whole %d, byte by byte %d\n", whole, bytewise);
            abort();
        }
    }
    /* a vocabulary: substrings of the input */
    const char *toks[N_TOK];
    size_t lens[N_TOK];
    for (int t = 0; t < N_TOK; t++) {
        const size_t at = in_len ? (size_t)(t * 7) % in_len : 0, max = in_len - at;
        toks[t] = in + at;
        lens[t] = max < (size_t)(t % 5) ? max : (size_t)(t % 5);
    }
    qfit_grammar_vocab *v = qfit_grammar_vocab_new(N_TOK, toks, lens, err, sizeof err);
    uint8_t allowed[N_TOK];
    for (size_t at = 0; v && at <= in_len && at < 64; at++) {
        if (qfit_grammar_matcher_reset(m) != 0 || qfit_grammar_matcher_accept(m, in, at) != 1) break;
        if (qfit_grammar_matcher_mask(m, v, allowed) < 0) break;
        for (int t = 0; t < N_TOK; t++) {
            const int want = lens[t] > 0 && qfit_grammar_matcher_accepts(m, toks[t], lens[t]) == 1;
            if (allowed[t] != want) {
                fprintf(stderr, "token %d: mask %d, check %d\n", t, allowed[t], want);
                abort();
            }
        }
    }
    qfit_grammar_vocab_free(v);
    qfit_grammar_matcher_free(m);
    qfit_grammar_free(g);
    return 0;
}
