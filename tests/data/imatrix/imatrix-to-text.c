#include <stdio.h>
#include <inttypes.h>
#include "qfit/imatrix.h"
/* tests/data/imatrix/imatrix-to-text.c: an imatrix file (GGUF or .dat) as the text that
 * tu_imatrix_kjv() (tests/util/testutil.c) rebuilds it from. Sums in C99 hex floats (exact).
 *   cc -Iinclude tests/data/imatrix/imatrix-to-text.c build/release/libqfit.a -lm -lpthread -o im2txt
 *   ./im2txt FILE.imatrix.gguf > FILE.imatrix.txt */
int main(int argc, char **argv)
{
    char err[256];
    qfit_imatrix *im = qfit_imatrix_load(argv[1], err, sizeof err);
    if (!im) { fprintf(stderr, "%s\n", err); return 1; }
    printf("chunk_count %u\nchunk_size %u\n", im->chunk_count, im->chunk_size);
    for (size_t i = 0; i < im->n_datasets; i++) printf("dataset %s\n", im->datasets[i]);
    for (size_t i = 0; i < im->n_entries; i++) {
        const qfit_imatrix_entry *e = &im->entries[i];
        printf("entry %s %lld %lld\n", e->name, (long long)e->n_per_mat, (long long)e->n_mat);
        for (int64_t m = 0; m < e->n_mat; m++) printf("%s%lld", m ? " " : "counts ", (long long)e->counts[m]);
        printf("\n");
        for (int64_t j = 0; j < e->n_per_mat * e->n_mat; j++) printf("%s%a", j % 8 ? " " : (j ? "\n" : ""), (float)e->sum2[j]);
        printf("\n");
    }
    return 0;
}
