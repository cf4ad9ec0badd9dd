/* qfit imatrix MODEL.gguf TEXT.txt -o FILE — an importance matrix, computed the
 * way llama-imatrix does, for qfit quantize --imatrix (and llama-quantize). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_env.h"
#include "cli/commands.h"
#include "qfit/eval.h"
#include "qfit/imatrix.h"
#include "qfit/model.h"
#include "qfit/tokenizer.h"

static void imatrix_usage(FILE *f)
{
    fprintf(f,
            "usage: qfit imatrix MODEL.gguf TEXT.txt -o FILE [options]\n"
            "\n"
            "Runs the model over the text and records, for every weight matrix of the layers,\n"
            "the mean square of each input column (llama-imatrix's statistic): what\n"
            "qfit quantize --imatrix and llama-quantize --imatrix use to weight rounding errors.\n"
            "The text is cut into chunks of --ctx tokens, each evaluated from an empty cache\n"
            "with BOS in place of its first token; tokens after the last whole chunk are unused.\n"
            "\n"
            "  -o, --output FILE     where to write it (required)\n"
            "  --format gguf|dat     GGUF (current llama.cpp; the default unless FILE ends in .dat)\n"
            "                        or the legacy .dat format\n"
            "  --ctx N               tokens per chunk (default 512)\n"
            "  --chunks N            at most N chunks (default: all)\n"
            "  --threads N           threads (default: all CPUs)\n"
            "  --process-output      also collect output.weight (llama-imatrix --process-output)\n");
}

static bool ends_with(const char *s, const char *suffix)
{
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int qfit_cmd_imatrix(int argc, char **argv)
{
    const char *model_path = NULL, *text_path = NULL, *out_path = NULL, *format = NULL;
    int n_ctx = 512, n_chunks = -1, threads = 0;
    bool process_output = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { imatrix_usage(stdout); return 0; }
        if (!strcmp(a, "--process-output")) { process_output = true; continue; }
        if (a[0] == '-' && a[1]) {
            if (!v) { fprintf(stderr, "qfit imatrix: %s needs a value\n", a); return 2; }
            i++;
            if (!strcmp(a, "-o") || !strcmp(a, "--output")) out_path = v;
            else if (!strcmp(a, "--format")) format = v;
            else if (!strcmp(a, "--ctx")) { if (qfit_cli_parse_int("imatrix", v, a, 16, &n_ctx)) return 2; }
            else if (!strcmp(a, "--chunks")) { if (qfit_cli_parse_int("imatrix", v, a, 1, &n_chunks)) return 2; }
            else if (!strcmp(a, "--threads")) { if (qfit_cli_parse_int("imatrix", v, a, 1, &threads)) return 2; }
            else { fprintf(stderr, "qfit imatrix: unknown option %s\n\n", a); imatrix_usage(stderr); return 2; }
        } else if (!model_path) model_path = a;
        else if (!text_path) text_path = a;
        else { fprintf(stderr, "qfit imatrix: too many arguments ('%s')\n\n", a); imatrix_usage(stderr); return 2; }
    }
    if (!model_path || !text_path || !out_path) { imatrix_usage(stderr); return 2; }
    qfit_imatrix_format fmt = ends_with(out_path, ".dat") ? QFIT_IMATRIX_DAT : QFIT_IMATRIX_GGUF;
    if (format) {
        if (!strcmp(format, "gguf")) fmt = QFIT_IMATRIX_GGUF;
        else if (!strcmp(format, "dat")) fmt = QFIT_IMATRIX_DAT;
        else { fprintf(stderr, "qfit imatrix: --format must be gguf or dat, not '%s'\n", format); return 2; }
    }

    char err[512];
    int rc = 1;
    qfit_context *c = NULL;
    qfit_imatrix *im = NULL;
    int32_t *ids = NULL, *chunk = NULL;
    size_t n_ids = 0;
    int32_t bos = -1;
    qfit_model *m = qfit_model_load(model_path, err, sizeof err);
    if (!m) { fprintf(stderr, "qfit imatrix: %s\n", err); return 1; }
    if (qfit_eval_tokenize_file(qfit_model_gguf(m), text_path, &ids, &n_ids, &bos, err, sizeof err) != 0) {
        fprintf(stderr, "qfit imatrix: %s\n", err);
        goto out;
    }
    size_t n_chunk = n_ids / (size_t)n_ctx;
    if (n_chunks > 0 && (size_t)n_chunks < n_chunk) n_chunk = (size_t)n_chunks;
    if (n_chunk == 0) {
        fprintf(stderr, "qfit imatrix: %s has %zu tokens, fewer than one chunk of %d (--ctx)\n", text_path, n_ids, n_ctx);
        goto out;
    }
    if (n_chunk > UINT32_MAX) n_chunk = UINT32_MAX;

    qfit_context_params cp = qfit_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_ctx;   /* a chunk in one pass: every matmul sees all its rows */
    cp.n_threads = threads;
    c = qfit_context_new(m, &cp, err, sizeof err);
    if (!c) { fprintf(stderr, "qfit imatrix: %s\n", err); goto out; }
    im = qfit_imatrix_new();
    chunk = malloc((size_t)n_ctx * sizeof *chunk);
    if (!im || !chunk) { fprintf(stderr, "qfit imatrix: out of memory\n"); goto out; }
    if (qfit_imatrix_set_dataset(im, text_path, err, sizeof err) != 0) {
        fprintf(stderr, "qfit imatrix: %s\n", err);
        goto out;
    }
    fprintf(stderr, "%zu tokens: %zu chunks of %d (%zu tokens after the last chunk unused)\n", n_ids, n_chunk, n_ctx,
            n_ids - n_chunk * (size_t)n_ctx);

    qfit_imatrix_collector co = { im, process_output, "" };
    qfit_context_set_matmul_observer(c, qfit_imatrix_observe, &co);
    const bool tty = isatty(STDERR_FILENO);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < n_chunk; i++) {
        memcpy(chunk, ids + i * (size_t)n_ctx, (size_t)n_ctx * sizeof *chunk);
        if (bos >= 0) chunk[0] = bos;
        qfit_context_reset(c);
        /* no logits needed (output.weight's input only with --process-output) */
        if (qfit_decode(c, chunk, n_ctx, process_output ? 0 : n_ctx) != 0) {
            fprintf(stderr, "\nqfit imatrix: chunk %zu: %s\n", i, qfit_context_error(c));
            goto out;
        }
        if (co.err[0]) {
            fprintf(stderr, "\nqfit imatrix: chunk %zu: %s\n", i, co.err);
            goto out;
        }
        if (tty) fprintf(stderr, "\r[%zu/%zu]", i + 1, n_chunk);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (tty) fprintf(stderr, "\n");
    qfit_context_set_matmul_observer(c, NULL, NULL);
    im->chunk_count = (uint32_t)n_chunk;
    im->chunk_size = (uint32_t)n_ctx;
    if (qfit_imatrix_save(im, out_path, fmt, err, sizeof err) != 0) {
        fprintf(stderr, "qfit imatrix: %s\n", err);
        goto out;
    }
    const double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("wrote %s (%s): %zu entries, %zu chunks x %d tokens, %.2f s\n", out_path,
           fmt == QFIT_IMATRIX_DAT ? "legacy .dat" : "GGUF", im->n_entries, n_chunk, n_ctx, secs);
    rc = 0;
out:
    free(chunk);
    free(ids);
    qfit_imatrix_free(im);
    qfit_context_free(c);
    qfit_model_free(m);
    return rc;
}
