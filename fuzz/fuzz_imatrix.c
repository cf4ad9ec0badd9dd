/* libFuzzer target: the importance-matrix loader (GGUF and legacy .dat) on arbitrary bytes.
 *
 * Loads the input with qfit_imatrix_load_buffer() (an exact-size heap copy, so ASan
 * sees any read past the end). When accepted, every entry must be findable by its
 * name, have a valid shape and finite, non-negative sums, and its weights
 * (qfit_imatrix_weights) must come out finite; when refused, there must be a message.
 * Seeds: the GGUF the tests rebuild from tests/data/imatrix/kjv-2x128.imatrix.txt (tu_imatrix_kjv)
 * plus a legacy file saved from it.
 * Build: make fuzz; run: ./build/fuzz/fuzz_imatrix -max_total_time=600 -max_len=100000 CORPUS
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/imatrix.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    char err[512] = "";
    qfit_imatrix *im = qfit_imatrix_load_buffer(copy, size, NULL, err, sizeof err);
    if (!im) {
        if (!err[0]) abort();   /* a refusal always says why */
        free(copy);
        return 0;
    }
    for (size_t i = 0; i < im->n_entries; i++) {
        const qfit_imatrix_entry *e = &im->entries[i];
        if (qfit_imatrix_find(im, e->name) != e) abort();
        if (e->n_per_mat <= 0 || e->n_mat <= 0) abort();
        const int64_t n = e->n_per_mat * e->n_mat;
        float *w = malloc((size_t)n * sizeof *w);
        if (!w) continue;
        qfit_imatrix_weights(e, w);
        for (int64_t j = 0; j < n; j++)
            if (!(e->sum2[j] >= 0) || !isfinite(w[j]) || w[j] < 0) abort();
        free(w);
    }
    for (size_t i = 0; i < im->n_datasets; i++) (void)strlen(im->datasets[i]);
    qfit_imatrix_free(im);
    free(copy);
    return 0;
}
