/* libFuzzer target: the batch JSONL validator (qfit_batch_parse) on arbitrary bytes.
 *
 * A rejected file must come with a message naming its line ("line N..." with N
 * between 1 and the number of lines) or saying it is empty. An accepted one: every
 * job has a known url, a model name and a body that is a JSON object carrying that
 * model; custom_ids are unique; the job count equals the number of lines. The
 * first byte chooses whether a default model is given (the --model of submit).
 * Build: make fuzz; run:
 *   mkdir -p fuzz/corpus-batch && cp tests/data/batch/sample.jsonl fuzz/corpus-batch/
 *   ./build/fuzz/fuzz_batch -max_total_time=180 -max_len=4096 -timeout=10 \
 *       -artifact_prefix=build/fuzz/ -print_final_stats=1 fuzz/corpus-batch
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (ok) return;
    fprintf(stderr, "fuzz_batch: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size) return 0;
    const char *dflt = (data[0] & 1) ? "dflt:latest" : NULL;
    data++;
    size--;
    /* an exact-size heap copy so ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    size_t lines = 0;
    for (size_t i = 0; i < size; i++) lines += buf[i] == '\n';
    if (size && buf[size - 1] != '\n') lines++;
    char err[1024] = "";
    qfit_batch_input *in = qfit_batch_parse(buf, size, dflt, err, sizeof err);
    if (!in) {
        unsigned long n = 0;
        if (sscanf(err, "line %lu", &n) == 1) check(n >= 1 && n <= lines, "error names a line outside the file");
        else check(strstr(err, "no requests") != NULL || strstr(err, "out of memory") != NULL,
                   "error without a line number");
        free(buf);
        return 0;
    }
    check(in->n == lines, "job count differs from the line count");
    for (size_t i = 0; i < in->n; i++) {
        const qfit_batch_job *j = &in->jobs[i];
        check(j->custom_id[0] && j->model[0] && j->url[0] == '/', "empty field in an accepted job");
        json_t *b = json_loads(j->body, 0, NULL);
        check(json_is_object(b), "body is not an object");
        const char *m = json_string_value(json_object_get(b, "model"));
        check(m && !strcmp(m, j->model), "body.model differs from the job's model");
        json_decref(b);
        for (size_t k = 0; k < i; k++) check(strcmp(in->jobs[k].custom_id, j->custom_id) != 0, "duplicate custom_id");
    }
    qfit_batch_input_free(in);
    free(buf);
    return 0;
}
