/* libFuzzer target: JSON Schema -> GBNF on arbitrary bytes.
 *
 * A refused schema must come with a message. An accepted one must give GBNF
 * that the grammar parser accepts (the converter never emits a grammar it
 * cannot compile) and a matcher (or a limit message).
 * Build: make fuzz; run:
 *   mkdir -p fuzz/corpus-schema
 *   ./build/fuzz/fuzz_schema -max_total_time=180 -max_len=4096 -timeout=10 \
 *       -artifact_prefix=build/fuzz/ -print_final_stats=1 fuzz/corpus-schema
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/grammar.h"
#include "qfit/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    char *gbnf = qfit_schema_to_gbnf((const char *)data, size, err, sizeof err);
    if (!gbnf) {
        if (!err[0]) { fprintf(stderr, "refused without a message\n"); abort(); }
        return 0;
    }
    qfit_grammar *g = qfit_grammar_parse(gbnf, strlen(gbnf), err, sizeof err);
    if (!g) {
        fprintf(stderr, "generated GBNF refused: %s\n%s\n", err, gbnf);
        abort();
    }
    qfit_grammar_matcher *m = qfit_grammar_matcher_new(g, err, sizeof err);
    if (m) qfit_grammar_matcher_accept(m, "{\"a\": [1, \"x\"]}", 15);
    qfit_grammar_matcher_free(m);
    qfit_grammar_free(g);
    free(gbnf);
    return 0;
}
