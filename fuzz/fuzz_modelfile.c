/* libFuzzer target: the Modelfile parser and printer on arbitrary bytes.
 *
 * Parses the input with qfit_modelfile_parse(). A rejected input must come
 * with a message of the form `modelfile:LINE:COL: ...`. An accepted one is
 * printed (with and without the header); the text must parse again, without
 * error, into an equal model (qfit_modelfile_equal), and printing that must
 * give the same text. The printer may refuse a model only with its
 * "cannot write" message. The parameters also go through JSON and back.
 * Build: make fuzz; run:
 *   mkdir -p fuzz/corpus-modelfile
 *   ./build/fuzz/fuzz_modelfile -max_total_time=180 -max_len=4096 -timeout=10 \
 *       -artifact_prefix=build/fuzz/ -print_final_stats=1 fuzz/corpus-modelfile
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/modelfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error_format(const char *err)
{
    unsigned line, col;
    int n = 0;
    if (sscanf(err, "modelfile:%u:%u: %n", &line, &col, &n) != 2 || n == 0 || line == 0 || col == 0) {
        fprintf(stderr, "error without line:col: %s\n", err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    qfit_warnings w = { 0 };
    /* an exact-size heap copy so ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    qfit_modelfile *m = qfit_modelfile_parse(buf, size, &w, err, sizeof err);
    free(buf);
    qfit_warnings_free(&w);
    if (!m) {
        check_error_format(err);
        return 0;
    }
    for (int header = 0; header < 2; header++) {
        char *text = qfit_modelfile_print(m, header ? "fuzz:latest" : NULL, err, sizeof err);
        if (!text) {
            if (strncmp(err, "cannot write ", 13) != 0) {
                fprintf(stderr, "printer failed without its message: %s\n", err);
                abort();
            }
            continue;
        }
        qfit_modelfile *back = qfit_modelfile_parse(text, strlen(text), NULL, err, sizeof err);
        if (!back) {
            fprintf(stderr, "printed text does not parse: %s\n---\n%s---\n", err, text);
            abort();
        }
        if (!qfit_modelfile_equal(m, back)) {
            fprintf(stderr, "printed text parses into another model\n---\n%s---\n", text);
            abort();
        }
        char *again = qfit_modelfile_print(back, header ? "fuzz:latest" : NULL, err, sizeof err);
        if (!again || strcmp(again, text) != 0) {
            fprintf(stderr, "printing is not stable\n");
            abort();
        }
        free(again);
        free(text);
        qfit_modelfile_free(back);
    }
    json_t *j = qfit_params_to_json(m->params);
    if (j) {
        qfit_params *p = qfit_params_from_json(j, NULL, err, sizeof err);
        if (!p || !qfit_params_equal(p, m->params)) {
            fprintf(stderr, "parameters change through JSON: %s\n", p ? "" : err);
            abort();
        }
        qfit_params_free(p);
        json_decref(j);
    }
    qfit_modelfile_free(m);
    return 0;
}
