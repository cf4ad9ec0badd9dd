/* qfit synth --shape NAME --type MIX OUT.gguf [--seed S] [--threads N]
 * Synthetic models: real shapes, random weights — for speed/memory measurement only. */
#include "cli/commands.h"
#include "cli/progress.h"
#include "qfit/quant.h"
#include "qfit/quantize.h"
#include "qfit/synth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void synth_usage(FILE *out)
{
    fprintf(out,
        "usage: qfit synth --shape NAME --type MIX OUT.gguf [--seed S] [--threads N]\n"
        "       qfit synth --list\n"
        "\n"
        "Writes a GGUF with a real model's exact tensor shapes and metadata and RANDOM weights.\n"
        "\n"
        "  *** FOR SPEED AND MEMORY MEASUREMENT ONLY. A synthetic model loads and runs like the\n"
        "  *** real one (same sizes, same work per token) but it generates gibberish: never use\n"
        "  *** it to judge output quality, perplexity or accuracy.\n"
        "\n"
        "  --shape NAME   model shape (see --list)\n"
        "  --type MIX     quantization mix, as for qfit quantize: %s\n"
        "  --seed S       random seed (default 1); the same seed gives the same bytes\n"
        "  --threads N    worker threads (default: the number of online CPUs)\n"
        "  --list         list the shapes\n"
        "\n"
        "Weights are generated and quantized row block by row block, so large models never\n"
        "exist in F32 in memory. The vocabulary is a placeholder (<unk>, <s>, </s>, 256 byte\n"
        "tokens, filler pieces) of the real vocabulary size.\n",
        qfit_ftype_supported_list());
}

static void list_shapes(void)
{
    printf("%-14s %-6s %8s %6s %6s %6s %5s %4s  %s\n", "shape", "arch", "params", "embd", "layers",
           "ff", "heads", "kv", "copies");
    for (size_t i = 0; i < qfit_synth_n_shapes(); i++) {
        const qfit_synth_shape *s = qfit_synth_shape_at(i);
        double np = (double)qfit_synth_n_params(s);
        char pbuf[32];
        if (np >= 1e9) snprintf(pbuf, sizeof pbuf, "%.2fB", np / 1e9);
        else snprintf(pbuf, sizeof pbuf, "%.1fM", np / 1e6);
        printf("%-14s %-6s %8s %6d %6d %6d %5d %4d  %s\n", s->name, s->arch, pbuf, s->n_embd,
               s->n_layer, s->n_ff, s->n_head, s->n_head_kv, s->desc);
    }
    printf("\nSynthetic models have random weights: for speed/memory measurement only.\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

int qfit_cmd_synth(int argc, char **argv)
{
    const char *shape_name = NULL, *type_name = NULL, *out = NULL;
    uint64_t seed = 1;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { synth_usage(stdout); return 0; }
        if (!strcmp(a, "--list")) { list_shapes(); return 0; }
        if (!strcmp(a, "--shape") || !strcmp(a, "--type") || !strcmp(a, "--seed") ||
            !strcmp(a, "--threads") || !strcmp(a, "-t")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "qfit synth: %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--shape")) shape_name = v;
            else if (!strcmp(a, "--type")) type_name = v;
            else if (!strcmp(a, "--seed")) {
                if (parse_u64(v, &seed) < 0) {
                    fprintf(stderr, "qfit synth: --seed must be a non-negative integer, not '%s'\n", v);
                    return 2;
                }
            } else {
                uint64_t t;
                if (parse_u64(v, &t) < 0 || t < 1 || t > 512) {
                    fprintf(stderr, "qfit synth: --threads must be a number from 1 to 512, not '%s'\n", v);
                    return 2;
                }
                threads = (int)t;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "qfit synth: unknown option '%s'\n\n", a);
            synth_usage(stderr);
            return 2;
        } else if (!out) {
            out = a;
        } else {
            fprintf(stderr, "qfit synth: too many arguments ('%s')\n", a);
            return 2;
        }
    }
    if (!shape_name || !type_name || !out) {
        synth_usage(stderr);
        return 2;
    }
    const qfit_synth_shape *shape = qfit_synth_find_shape(shape_name);
    if (!shape) {
        fprintf(stderr, "qfit synth: unknown shape '%s'; shapes:", shape_name);
        for (size_t i = 0; i < qfit_synth_n_shapes(); i++) fprintf(stderr, " %s", qfit_synth_shape_at(i)->name);
        fprintf(stderr, "\n");
        return 2;
    }
    int ftype = qfit_ftype_from_name(type_name);
    if (ftype < 0 || !qfit_ftype_supported(ftype)) {
        fprintf(stderr, "qfit synth: %s type '%s'\nsupported types: %s\n",
                ftype < 0 ? "unknown" : "unsupported", type_name, qfit_ftype_supported_list());
        return 2;
    }

    qfit_progress_bar ps = { isatty(STDERR_FILENO), -1 };
    qfit_synth_params p = { .shape = shape, .ftype = ftype, .seed = seed, .n_threads = threads,
                            .progress = qfit_progress_bar_update, .progress_user = &ps };
    qfit_synth_stats st;
    char err[1024];
    if (qfit_synth_write(out, &p, &st, err, sizeof err) != 0) {
        if (ps.tty && ps.last_pct >= 0) fprintf(stderr, "\n");
        fprintf(stderr, "qfit synth: %s\n", err);
        return 1;
    }
    printf("wrote %s: SYNTHETIC %s (%s shape), %s, seed %llu — random weights, for speed/memory "
           "measurement only\n", out, shape->name, shape->desc, qfit_ftype_name(ftype), (unsigned long long)seed);
    printf("  tensors : %lld, %d fallback%s\n", (long long)st.n_tensors, st.n_fallback,
           st.n_fallback == 1 ? "" : "s");
    printf("  types   :");
    for (int t = 0; t < 64; t++)
        if (st.type_count[t]) printf(" %s %lld", qfit_type_name(t), (long long)st.type_count[t]);
    printf("\n");
    printf("  size    : %.2f MiB tensor data, %llu bytes file, %.2f bits per weight, %lld weights\n",
           (double)st.data_bytes / (1024.0 * 1024.0), (unsigned long long)st.file_bytes,
           st.n_params ? 8.0 * (double)st.data_bytes / (double)st.n_params : 0.0, (long long)st.n_params);
    printf("  time    : %.2f s (%d thread%s)\n", st.seconds, st.n_threads, st.n_threads == 1 ? "" : "s");
    return 0;
}
