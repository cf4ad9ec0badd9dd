/* qfit eval MODEL.gguf TEXT.txt — quantize to several types (or take files) and tabulate
 * size, perplexity, KL-divergence against the full-precision model and speed
 * (qfit_eval_run in src/eval does the work). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_env.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "qfit/eval.h"
#include "qfit/imatrix.h"
#include "qfit/quantize.h"

#define DEFAULT_TYPES "Q8_0,Q6_K,Q5_K_M,Q4_K_M"
#define ALL_TYPES "Q8_0,Q6_K,Q5_K_M,Q5_K_S,Q5_1,Q5_0,Q4_K_M,Q4_K_S,Q4_1,Q4_0,IQ4_XS,IQ4_NL,Q3_K_L,Q3_K_M,Q3_K_S,Q2_K"
#define MAX_ITEMS 64

static void eval_usage(FILE *f)
{
    fprintf(f,
            "usage: qfit eval MODEL-F16-or-F32.gguf TEXT.txt [options]\n"
            "  --types T,T,...|all  quantize to these types (default " DEFAULT_TYPES " unless --files)\n"
            "  --files A.gguf,...   evaluate existing quantized files too\n"
            "  --ctx N              tokens per chunk (default 512)\n"
            "  --chunks N           only the first N chunks (default: all)\n"
            "  --threads N          threads (default: all CPUs)\n"
            "  --imatrix FILE       quantize with this importance matrix\n"
            "  --no-speed           skip the pp/tg speed measurement\n"
            "  --json               the table as JSON (fields: see include/qfit/eval.h)\n"
            "  --json-out FILE      also write the JSON to FILE (the table still on stdout)\n"
            "  --svg FILE           charts: mean KLD vs size with the Pareto front, speed vs size\n"
            "  --out-dir DIR        where base logits and quantized files go (default: a temp dir)\n"
            "  --keep               keep them\n"
            "Ctrl-C stops after the current step and prints the rows done so far (exit 130).\n");
}

static volatile sig_atomic_t g_stop;

static void on_sigint(int sig)
{
    (void)sig;
    g_stop = 1;
}

typedef struct {
    qfit_progress_bar bar;
} eval_progress;

static void on_progress(void *user, int step, int n_steps, const char *label)
{
    eval_progress *ep = user;
    if (ep->bar.tty) qfit_progress_bar_update(&ep->bar, step, n_steps, (uint64_t)step, (uint64_t)n_steps, label);
    else if (label[0]) fprintf(stderr, "eval: [%d/%d] %s\n", step + 1, n_steps, label);
}

/* split a comma list in place (at most MAX_ITEMS) */
static int split(char *s, char **items)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        if (n == MAX_ITEMS) return -1;
        items[n++] = tok;
    }
    return n;
}

int qfit_cmd_eval(int argc, char **argv)
{
    qfit_eval_params p;
    qfit_eval_params_init(&p);
    const char *types_arg = NULL, *files_arg = NULL, *imatrix_path = NULL, *svg = NULL, *out_dir = NULL,
               *json_out = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { eval_usage(stdout); return 0; }
        if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--no-speed")) p.speed = false;
        else if (!strcmp(a, "--keep")) p.keep = true;
        else if (a[0] == '-' && a[1] == '-') {
            const char *v = i + 1 < argc ? argv[++i] : NULL;
            if (!v) { fprintf(stderr, "qfit eval: %s needs a value\n", a); return 2; }
            if (!strcmp(a, "--types")) types_arg = v;
            else if (!strcmp(a, "--files")) files_arg = v;
            else if (!strcmp(a, "--ctx")) { if (qfit_cli_parse_int("eval", v, a, 4, &p.n_ctx)) return 2; }
            else if (!strcmp(a, "--chunks")) { if (qfit_cli_parse_int("eval", v, a, 1, &p.n_chunks)) return 2; }
            else if (!strcmp(a, "--threads")) { if (qfit_cli_parse_int("eval", v, a, 1, &p.n_threads)) return 2; }
            else if (!strcmp(a, "--imatrix")) imatrix_path = v;
            else if (!strcmp(a, "--svg")) svg = v;
            else if (!strcmp(a, "--json-out")) json_out = v;
            else if (!strcmp(a, "--out-dir")) out_dir = v;
            else { fprintf(stderr, "qfit eval: unknown option %s\n", a); eval_usage(stderr); return 2; }
        } else if (!p.model_path) p.model_path = a;
        else if (!p.text_path) p.text_path = a;
        else { eval_usage(stderr); return 2; }
    }
    if (!p.model_path || !p.text_path) { eval_usage(stderr); return 2; }

    char tbuf[1024], fbuf[4096];
    char *items[MAX_ITEMS];
    int ftypes[MAX_ITEMS];
    const char *type_list = types_arg ? (!strcmp(types_arg, "all") ? ALL_TYPES : types_arg)
                                      : files_arg ? "" : DEFAULT_TYPES;
    if (snprintf(tbuf, sizeof tbuf, "%s", type_list) >= (int)sizeof tbuf) { fprintf(stderr, "qfit eval: --types too long\n"); return 2; }
    int nt = split(tbuf, items);
    if (nt < 0) { fprintf(stderr, "qfit eval: more than %d types\n", MAX_ITEMS); return 2; }
    for (int i = 0; i < nt; i++) {
        ftypes[i] = qfit_ftype_from_name(items[i]);
        if (ftypes[i] < 0 || !qfit_ftype_supported(ftypes[i])) {
            fprintf(stderr, "qfit eval: --types: '%s' is not a type qfit can write (%s)\n", items[i],
                    qfit_ftype_supported_list());
            return 2;
        }
    }
    char *files[MAX_ITEMS];
    int nf = 0;
    if (files_arg) {
        if (snprintf(fbuf, sizeof fbuf, "%s", files_arg) >= (int)sizeof fbuf) { fprintf(stderr, "qfit eval: --files too long\n"); return 2; }
        if ((nf = split(fbuf, files)) < 0) { fprintf(stderr, "qfit eval: more than %d files\n", MAX_ITEMS); return 2; }
    }
    if (nt + nf == 0) { fprintf(stderr, "qfit eval: nothing to evaluate (--types or --files)\n"); return 2; }
    p.ftypes = ftypes;
    p.n_ftypes = nt;
    p.files = (const char *const *)files;
    p.n_files = nf;

    char err[1024];
    qfit_imatrix *im = NULL;
    if (imatrix_path) {
        im = qfit_imatrix_load(imatrix_path, err, sizeof err);
        if (!im) { fprintf(stderr, "qfit eval: --imatrix: %s\n", err); return 1; }
        p.imatrix = im;
        p.imatrix_file = imatrix_path;
    }
    char tmpdir[512];
    bool made_dir = false;
    if (out_dir) {
        if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "qfit eval: --out-dir %s: %s\n", out_dir, strerror(errno));
            qfit_imatrix_free(im);
            return 1;
        }
        p.work_dir = out_dir;
    } else {
        const char *t = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/qfit-eval-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "qfit eval: cannot create a temp directory %s: %s\n", tmpdir, strerror(errno));
            qfit_imatrix_free(im);
            return 1;
        }
        made_dir = true;
        p.work_dir = tmpdir;
    }

    eval_progress ep = { .bar = { .tty = isatty(STDERR_FILENO), .last_pct = -1 } };
    p.progress = on_progress;
    p.progress_user = &ep;
    g_stop = 0;
    p.stop = &g_stop;
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND | SA_RESTART;   /* a second Ctrl-C ends the process at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_sa);

    qfit_eval_result res;
    const int run = qfit_eval_run(&p, &res, err, sizeof err);
    sigaction(SIGINT, &old_sa, NULL);
    if (run != 0 && ep.bar.tty && ep.bar.last_pct >= 0) fprintf(stderr, "\n");   /* the bar clears itself at the end */
    if (run != 0) fprintf(stderr, "qfit eval: %s\n", err);
    else if (res.interrupted) fprintf(stderr, "qfit eval: interrupted: %d of %d rows\n", res.n_rows, 1 + nt + nf);

    int rc = run != 0 ? 1 : res.interrupted ? 130 : 0;
    if (res.n_rows > 0) {
        if (json) {
            char *s = qfit_eval_json(&res);
            if (s) { printf("%s\n", s); free(s); }
            else { fprintf(stderr, "qfit eval: out of memory\n"); rc = 1; }
        } else {
            qfit_eval_print_table(stdout, &res);
        }
        fflush(stdout);
        if (svg) {
            if (qfit_eval_write_svg(svg, &res, err, sizeof err) != 0) { fprintf(stderr, "qfit eval: %s\n", err); rc = 1; }
            else fprintf(stderr, "chart: %s\n", svg);
        }
        if (json_out) {
            if (qfit_eval_write_json(json_out, &res, err, sizeof err) != 0) { fprintf(stderr, "qfit eval: %s\n", err); rc = 1; }
            else fprintf(stderr, "json: %s\n", json_out);
        }
    }
    if (p.keep) fprintf(stderr, "files kept in %s\n", p.work_dir);
    else if (made_dir) rmdir(tmpdir);
    qfit_eval_result_free(&res);
    qfit_imatrix_free(im);
    return rc;
}
