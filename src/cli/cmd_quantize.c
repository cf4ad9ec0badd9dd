/* qfit quantize IN.gguf OUT.gguf TYPE [--threads N] [--imatrix FILE]
 *               [--target-size S | --target-bpw B] [--calibrate TEXT [--calib-chunks N] [--calib-ctx N]] */
#include "cli/cli_env.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "qfit/eval.h"
#include "qfit/gguf.h"
#include "qfit/imatrix.h"
#include "qfit/quant.h"
#include "qfit/quantize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void quantize_usage(FILE *out)
{
    fprintf(out,
        "usage: qfit quantize IN.gguf OUT.gguf TYPE [--threads N] [--imatrix FILE]\n"
        "       qfit quantize IN.gguf OUT.gguf [TYPE] --target-size SIZE | --target-bpw B\n"
        "                     --calibrate TEXT [--imatrix FILE]   (or --imatrix FILE alone)\n"
        "\n"
        "Quantizes a model of F32/F16/BF16 weights with llama.cpp's per-tensor rules\n"
        "(the same type for every tensor, and the same bytes, as llama-quantize).\n"
        "\n"
        "  TYPE          %s\n"
        "                (case-insensitive, as llama.cpp and Ollama spell them: q4_k_m, Q8_0, f16)\n"
        "  --threads N   worker threads (default: the number of online CPUs)\n"
        "  --imatrix F   importance matrix (GGUF as llama-imatrix or qfit imatrix write it,\n"
        "                or a legacy .dat): weights the rounding error of each column by\n"
        "                how strongly it is used, as llama-quantize --imatrix\n"
        "\n"
        "Quantize to a size instead of a named mix: every weight matrix gets the type\n"
        "(Q2_K Q3_K IQ4_XS Q4_K Q5_K Q6_K Q8_0) that, within the size, loses the least;\n"
        "tensors that are not planned keep TYPE's mix (default Q4_K_M).\n"
        "  --target-size S  a file size: bytes, or with K M G (x1024) or KB MB GB (x1000)\n"
        "  --target-bpw B   bits per weight of tensor data\n"
        "  --calibrate TEXT measure the loss: the model runs over TEXT once per tensor with\n"
        "                only that tensor quantized (to Q3_K), the loss is the mean KL divergence\n"
        "                of its predictions from the full model's, and the other types' losses\n"
        "                are scaled from it by their rounding error (a perplexity run of TEXT\n"
        "                per weight matrix). Without it the loss is estimated from --imatrix\n"
        "                alone (no forward pass; on the models checked, a worse choice).\n"
        "                Use a text other than the one you evaluate on.\n"
        "  --calib-chunks N chunks of TEXT to use (default 8)\n"
        "  --calib-ctx N    tokens per chunk (default 256)\n"
        "  --calib-all      run every candidate type of every tensor (7x the runs); by\n"
        "                default one (Q3_K) is run and the others scaled by their estimated\n"
        "                error relative to it\n"
        "\n"
        "The output is written to a temporary file and renamed when complete.\n",
        qfit_ftype_supported_list());
}

/* "4400000000", "4.4G" (x1024^3), "4.4GB" (x1000^3), also K/M/T, KB/MB/TB, KiB/MiB/GiB/TiB */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0)) return -1;
    double mul = 1;
    const char *u = end;
    if (*u) {
        const char *units = "KMGT";
        const char *k = strchr(units, *u >= 'a' ? *u - 32 : *u);
        if (!k || !*u) return -1;
        const int e = (int)(k - units) + 1;
        u++;
        const bool decimal = (*u == 'B' || *u == 'b') && u[1] == 0;
        if (!decimal && *u && strcmp(u, "iB") != 0) return -1;
        for (int i = 0; i < e; i++) mul *= decimal ? 1000.0 : 1024.0;
    }
    v *= mul;
    if (v >= 1.8e19) return -1;
    *out = (uint64_t)v;
    return 0;
}

/* the calibration runs: one line per tensor on a terminal, every 10% otherwise */
static void target_progress(void *user, int64_t step, int64_t n_steps, const char *name, int type)
{
    qfit_progress_bar *ps = user;
    (void)type;
    if (!name[0]) {
        if (ps->tty) fprintf(stderr, "\r\033[Kmeasured %lld choices\n", (long long)n_steps);
        return;
    }
    const int pct = n_steps ? (int)(100 * step / n_steps) : 100;
    if (ps->tty) {
        fprintf(stderr, "\r\033[Kmeasuring %3d%% %s as %s", pct, name, qfit_type_name(type));
        fflush(stderr);
    } else if (step == 0 || pct / 10 != (int)(100 * (step - 1) / n_steps) / 10) {
        fprintf(stderr, "measuring: %d%% (%lld of %lld)\n", pct, (long long)step, (long long)n_steps);
    }
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int qfit_cmd_quantize(int argc, char **argv)
{
    const char *pos[3];
    int npos = 0;
    int threads = 0;
    const char *imatrix_path = NULL;
    uint64_t target_size = 0;
    double target_bpw = 0;
    const char *calib_path = NULL;
    int calib_chunks = 8, calib_ctx = 256;
    bool calib_all = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            quantize_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "qfit quantize: %s needs a number\n", a);
                return 2;
            }
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 512) {
                fprintf(stderr, "qfit quantize: --threads must be a number from 1 to 512, not '%s'\n", argv[i]);
                return 2;
            }
            threads = (int)v;
        } else if (!strncmp(a, "--threads=", 10)) {
            char *end;
            long v = strtol(a + 10, &end, 10);
            if (*end || v < 1 || v > 512) {
                fprintf(stderr, "qfit quantize: --threads must be a number from 1 to 512, not '%s'\n", a + 10);
                return 2;
            }
            threads = (int)v;
        } else if (!strcmp(a, "--imatrix") || !strncmp(a, "--imatrix=", 10)) {
            if (a[9] == '=') {
                imatrix_path = a + 10;
            } else if (i + 1 < argc) {
                imatrix_path = argv[++i];
            } else {
                fprintf(stderr, "qfit quantize: --imatrix needs a file\n");
                return 2;
            }
            if (!imatrix_path[0]) {
                fprintf(stderr, "qfit quantize: --imatrix needs a file\n");
                return 2;
            }
        } else if (!strcmp(a, "--calibrate")) {
            if (i + 1 >= argc || !argv[i + 1][0]) {
                fprintf(stderr, "qfit quantize: --calibrate needs a text file\n");
                return 2;
            }
            calib_path = argv[++i];
        } else if (!strcmp(a, "--calib-all")) {
            calib_all = true;
        } else if (!strcmp(a, "--calib-chunks") || !strcmp(a, "--calib-ctx")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "qfit quantize: %s needs a number\n", a);
                return 2;
            }
            const bool chunks = !strcmp(a, "--calib-chunks");
            if (qfit_cli_parse_int("quantize", argv[++i], a, chunks ? 1 : 16, chunks ? &calib_chunks : &calib_ctx))
                return 2;
        } else if (!strcmp(a, "--target-size") || !strcmp(a, "--target-bpw")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "qfit quantize: %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (a[9] == 's') {
                if (parse_size(v, &target_size) != 0) {
                    fprintf(stderr, "qfit quantize: --target-size '%s' is not a size (bytes, or 4.4G, 800M, 4.4GB)\n", v);
                    return 2;
                }
            } else {
                char *end;
                target_bpw = strtod(v, &end);
                if (*end || !(target_bpw >= 1.0 && target_bpw <= 32.0)) {
                    fprintf(stderr, "qfit quantize: --target-bpw must be a number from 1 to 32, not '%s'\n", v);
                    return 2;
                }
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "qfit quantize: unknown option '%s'\n\n", a);
            quantize_usage(stderr);
            return 2;
        } else {
            if (npos == 3) {
                fprintf(stderr, "qfit quantize: too many arguments ('%s')\n\n", a);
                quantize_usage(stderr);
                return 2;
            }
            pos[npos++] = a;
        }
    }
    const bool target = target_size || target_bpw > 0;
    if (npos != 3 && !(target && npos == 2)) {
        quantize_usage(stderr);
        return 2;
    }
    if (target_size && target_bpw > 0) {
        fprintf(stderr, "qfit quantize: give --target-size or --target-bpw, not both\n");
        return 2;
    }
    if (target && !imatrix_path && !calib_path) {
        fprintf(stderr, "qfit quantize: --target-size/--target-bpw need --calibrate TEXT (or --imatrix FILE): "
                "they measure what each tensor's type costs\n");
        return 2;
    }
    if ((calib_path || calib_all) && !target) {
        fprintf(stderr, "qfit quantize: --calibrate and --calib-all are for --target-size/--target-bpw\n");
        return 2;
    }
    if (npos == 2) pos[2] = "Q4_K_M";
    int ftype = qfit_ftype_from_name(pos[2]);
    if (ftype < 0) {
        fprintf(stderr, "qfit quantize: unknown type '%s'\nsupported types: %s\n", pos[2],
                qfit_ftype_supported_list());
        return 2;
    }
    if (!qfit_ftype_supported(ftype)) {
        fprintf(stderr, "qfit quantize: type %s is not supported by qfit (it needs an importance matrix "
                "or quantizers qfit does not have)\nsupported types: %s\n",
                qfit_ftype_name(ftype), qfit_ftype_supported_list());
        return 2;
    }

    char err[1024];
    qfit_imatrix *im = NULL;
    if (imatrix_path) {
        im = qfit_imatrix_load(imatrix_path, err, sizeof err);
        if (!im) {
            fprintf(stderr, "qfit quantize: importance matrix: %s\n", err);
            return 1;
        }
    }
    /* the calibration text, with the input model's tokenizer */
    int32_t *calib_ids = NULL;
    size_t calib_n = 0;
    qfit_calibration cal = { .n_ctx = calib_ctx, .n_chunks = calib_chunks };
    if (calib_path) {
        qfit_gguf *g = qfit_gguf_open(pos[0], err, sizeof err);
        if (!g) {
            fprintf(stderr, "qfit quantize: %s: %s\n", pos[0], err);
            qfit_imatrix_free(im);
            return 1;
        }
        const int bad = qfit_eval_tokenize_file(g, calib_path, &calib_ids, &calib_n, &cal.bos, err, sizeof err);
        qfit_gguf_close(g);
        if (bad) {
            fprintf(stderr, "qfit quantize: calibration: %s\n", err);
            qfit_imatrix_free(im);
            return 1;
        }
        cal.tokens = calib_ids;
        cal.n_tokens = calib_n;
        fprintf(stderr, "calibration: %s, %zu tokens; %d chunks of %d\n", calib_path, calib_n, calib_chunks, calib_ctx);
    }
    qfit_progress_bar ps = { isatty(STDERR_FILENO), -1 };
    qfit_quantize_params p = { .ftype = ftype, .n_threads = threads,
                               .progress = qfit_progress_bar_update, .progress_user = &ps,
                               .imatrix = im, .imatrix_file = imatrix_path,
                               .target_size = target_size, .target_bpw = target_bpw,
                               .calibration = calib_path ? &cal : NULL, .calibration_all = calib_all,
                               .target_progress = target_progress };
    if (target_size)
        fprintf(stderr, "target: %llu bytes; tensors not planned keep the %s mix\n",
                (unsigned long long)target_size, qfit_ftype_name(ftype));
    else if (target_bpw > 0)
        fprintf(stderr, "target: %.3f bits per weight; tensors not planned keep the %s mix\n",
                target_bpw, qfit_ftype_name(ftype));
    qfit_quantize_stats st;
    int rc = qfit_quantize_model(pos[0], pos[1], &p, &st, err, sizeof err);
    qfit_imatrix_free(im);
    free(calib_ids);
    if (rc != 0) {
        if (ps.tty && ps.last_pct >= 0) fprintf(stderr, "\n");
        fprintf(stderr, "qfit quantize: %s\n", err);
        return 1;
    }

    const double mib = 1024.0 * 1024.0;
    printf("quantized %s -> %s (%s, %d thread%s)\n", base_name(pos[0]), pos[1],
           qfit_ftype_name(ftype), st.n_threads, st.n_threads == 1 ? "" : "s");
    printf("  tensors : %lld (%lld converted, %lld copied), %d fallback%s\n",
           (long long)st.n_tensors, (long long)st.n_quantized,
           (long long)(st.n_tensors - st.n_quantized), st.n_fallback, st.n_fallback == 1 ? "" : "s");
    printf("  types   :");
    for (int t = 0; t < 64; t++)
        if (st.type_count[t]) printf(" %s %lld", qfit_type_name(t), (long long)st.type_count[t]);
    printf("\n");
    if (imatrix_path)
        printf("  imatrix : %s: %lld tensors weighted by it, %lld quantized without (no entry)\n",
               imatrix_path, (long long)st.n_imatrix, (long long)st.n_no_imatrix);
    if (target && st.target.measured)
        printf("  target  : %lld tensors typed by measured KL divergence (%lld runs of %ld tokens, %.1f s); "
               "predicted mean KLD %.6g on the calibration text\n",
               (long long)st.n_target_planned, (long long)st.target.n_measured, st.target.n_calib_tokens,
               st.target.seconds, st.target.cost);
    else if (target)
        printf("  target  : %lld tensors typed by estimated error (relative imatrix-weighted error %.6g)\n",
               (long long)st.n_target_planned, st.target.cost);
    double bpw_in = st.n_elements ? 8.0 * (double)st.data_in / (double)st.n_elements : 0;
    double bpw_out = st.n_elements ? 8.0 * (double)st.data_out / (double)st.n_elements : 0;
    printf("  size    : %.2f MiB -> %.2f MiB (%.2f -> %.2f bits per weight, %lld weights)\n",
           (double)st.data_in / mib, (double)st.data_out / mib, bpw_in, bpw_out, (long long)st.n_elements);
    printf("  file    : %llu -> %llu bytes\n", (unsigned long long)st.file_in,
           (unsigned long long)st.file_out);
    printf("  time    : %.3f s (the quantize call: open, quantize, write; not process start-up)\n", st.seconds);
    return 0;
}
