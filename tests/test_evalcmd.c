/* Suite `evalcmd`: qfit eval (qfit_eval_run, its table, JSON and SVG) on the shared model.
 *
 * Reference: llama.cpp's own KL-divergence of the same quantized files against the same
 * F32 logits (peer harness peer-ppl --save-logits / --kld-base, on peer-quantize's files,
 * which are byte-identical to qfit's), in tests/data/eval/peer_kld.tsv, made by
 * tests/data/eval/make_reference.sh on the chunks kld_matches_llama_cpp uses
 * (--ctx 128 --chunks 256: 16128 scored positions). The 1% tolerance is issue 14's.
 *
 * Why 256 chunks: a quantized model's logits move with the summation order of its
 * kernels, because the activations are rounded to 8 bits between layers and a change
 * in the 7th digit flips some of those roundings. Multiplying every matmul output by
 * 1 +- 1.2e-7 (pseudo-random sign per element: what a different summation order does)
 * moved the mean KLD over 126 positions (2 chunks) by up to 4% (Q4_K_M 0.004189 ..
 * 0.004351), over 4032 positions by up to 0.9%, over 16128 by 0.4% (Q4_K_M 0.003863 ..
 * 0.003879; Q3_K_M 0.05%). llama.cpp's number carries the same noise from its own
 * kernels, so the 1% bound needs the long run; the other tests here use 2 chunks and
 * compare qfit with itself. What the bound must catch is far larger: one step of the mix
 * rules moves the KLD 10-50% (Q3_K_L 0.014772, Q3_K_S 0.023937, Q4_K_S 0.004843 here). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qfit/eval.h"
#include "qfit/model.h"
#include "qfit/quantize.h"
#include "util/testutil.h"

#define EVAL_ARGS "--ctx 128 --chunks 2 --threads 2 --no-speed"
#define PEER_CHUNKS 256          /* the chunks of peer_kld.tsv */
#define BASE_PPL_LLAMA 36.4935   /* peer-ppl F32 --ctx 128 --chunks 256: Final estimate: PPL = 36.4935 */

static const char *model_f32(void) { return tu_shared_path("models/kjv-llama-7m-f32.gguf"); }
static const char *val_text(void) { return tu_shared_path("models/kjv-llama-7m-val.txt"); }

/* qfit eval ... --json with this binary and these options; the parsed JSON (status 0 asserted) */
static json_t *eval_json_with(const char *bin, const char *types, const char *args)
{
    char out[600], cmd[6000];
    snprintf(out, sizeof out, "%s/eval-%d.json", tu_tmpdir(), rand());
    snprintf(cmd, sizeof cmd, "(%s eval %s %s --types %s %s --json > %s)", bin, model_f32(), val_text(), types, args, out);
    int st;
    char *log = tu_run(cmd, &st);
    cr_assert_eq(st, 0, "%s\n%s", cmd, log);
    free(log);
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    cr_assert_not_null(j, "%s: %s", out, je.text);
    return j;
}

/* the same with tu_qfit_bin(), EVAL_ARGS and the extra options */
static json_t *eval_json(const char *types, const char *extra)
{
    char args[4600];
    snprintf(args, sizeof args, EVAL_ARGS " %s", extra);
    return eval_json_with(tu_qfit_bin(), types, args);
}

static double num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_number(v), "field %s missing or not a number", k);
    return json_number_value(v);
}

static json_t *row_named(json_t *j, const char *name)
{
    json_t *rows = json_object_get(j, "rows"), *r;
    size_t i;
    json_array_foreach(rows, i, r)
        if (!strcmp(json_string_value(json_object_get(r, "name")), name)) return r;
    cr_assert_fail("no row %s", name);
    return NULL;
}

Test(evalcmd, kld_matches_llama_cpp, .timeout = 600)
{
    char *tsv = tu_read_file("tests/data/eval/peer_kld.tsv", NULL);
    cr_assert_not_null(tsv, "tests/data/eval/peer_kld.tsv");
    /* the release binary when there is one: 3 x 32768 tokens under ASan take minutes */
    const char *bin = getenv("QFIT_RELEASE_BIN");
    if (!bin || access(bin, X_OK) != 0) bin = tu_qfit_bin();
    char args[200];
    snprintf(args, sizeof args, "--ctx 128 --chunks %d --threads 2 --no-speed", PEER_CHUNKS);
    json_t *j = eval_json_with(bin, "Q4_K_M,Q3_K_M", args);
    cr_assert_eq(json_array_size(json_object_get(j, "rows")), 3);
    cr_assert_eq(num(j, "n_scored"), PEER_CHUNKS * 63);   /* 63 scored positions a chunk, as llama.cpp */
    double base = num(row_named(j, "base"), "ppl");
    cr_expect_leq(fabs(base / BASE_PPL_LLAMA - 1), 1e-5, "base ppl %.4f vs llama.cpp %.4f", base, BASE_PPL_LLAMA);
    int checked = 0;
    for (char *line = strtok(tsv, "\n"); line; line = strtok(NULL, "\n")) {
        char type[32];
        double ppl, kld, same;
        if (line[0] == '#' || sscanf(line, "%31s %lf %lf %lf", type, &ppl, &kld, &same) != 4) continue;
        if (strcmp(type, "Q4_K_M") && strcmp(type, "Q3_K_M")) continue;   /* Q8_0: see the report, 3 digits only */
        json_t *r = row_named(j, type);
        cr_log_info("%s: KLD %.6f (llama.cpp %.6f, %+.2f%%), ppl %.4f (llama.cpp %.4f)", type, num(r, "kld_mean"), kld,
                    100 * (num(r, "kld_mean") / kld - 1), num(r, "ppl"), ppl);
        cr_expect_leq(fabs(num(r, "kld_mean") / kld - 1), 0.01, "%s: mean KLD %.6f vs llama.cpp %.6f", type,
                      num(r, "kld_mean"), kld);
        cr_expect_leq(fabs(num(r, "ppl") / ppl - 1), 0.01, "%s: ppl %.4f vs llama.cpp %.4f", type, num(r, "ppl"), ppl);
        checked++;
    }
    cr_assert_eq(checked, 2);
    json_decref(j);
    free(tsv);
}

/* every derived number follows from the measured ones as the definitions say */
Test(evalcmd, rows_consistent, .timeout = 300)
{
    char dir[600], extra[700];
    snprintf(dir, sizeof dir, "%s/keep", tu_tmpdir());
    snprintf(extra, sizeof extra, "--keep --out-dir %s", dir);
    json_t *j = eval_json("Q8_0,Q4_0", extra);
    char err[256];
    qfit_model *m = qfit_model_load(model_f32(), err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    const double n_params = (double)qfit_model_n_params(m);
    qfit_model_free(m);
    json_t *rows = json_object_get(j, "rows"), *r;
    cr_assert_eq(json_array_size(rows), 3);
    const double base_ppl = num(json_array_get(rows, 0), "ppl");
    cr_assert(json_is_true(json_object_get(json_array_get(rows, 0), "base")));
    size_t i;
    json_array_foreach(rows, i, r) {
        const char *name = json_string_value(json_object_get(r, "name"));
        cr_expect_eq(num(r, "n_params"), n_params, "%s: n_params", name);
        cr_expect_leq(fabs(num(r, "bpw") - 8 * num(r, "tensor_bytes") / n_params), 1e-9, "%s: bpw", name);
        cr_expect_leq(fabs(num(r, "dppl_pct") - 100 * (num(r, "ppl") / base_ppl - 1)), 1e-9, "%s: dppl", name);
        cr_expect_leq(fabs(num(r, "retention_pct") - 100 * exp(-num(r, "kld_mean"))), 1e-9, "%s: retention", name);
        cr_expect(num(r, "kld_p99") >= num(r, "kld_mean"), "%s: p99 below the mean", name);
        cr_expect(json_is_null(json_object_get(r, "tg_tps")), "%s: speed not measured must be null", name);
        struct stat sb;
        cr_assert_eq(stat(json_string_value(json_object_get(r, "path")), &sb), 0, "%s kept", name);
        cr_expect_eq(num(r, "file_bytes"), (double)sb.st_size, "%s: file_bytes", name);
        cr_expect_lt(num(r, "tensor_bytes"), num(r, "file_bytes"), "%s", name);
    }
    cr_expect_eq(num(json_array_get(rows, 0), "bpw"), 32.0);
    cr_expect_eq(num(json_array_get(rows, 0), "kld_mean"), 0.0);
    /* Q8_0 is closer to the base than Q4_0 and bigger */
    cr_expect_lt(num(row_named(j, "Q8_0"), "kld_mean"), num(row_named(j, "Q4_0"), "kld_mean"));
    /* no tensor below its format's 8.5 / 4.5 bits; Q8_0 bigger */
    cr_expect_geq(num(row_named(j, "Q8_0"), "bpw"), 8.5);
    cr_expect_geq(num(row_named(j, "Q4_0"), "bpw"), 4.5);
    cr_expect_lt(num(row_named(j, "Q4_0"), "bpw"), num(row_named(j, "Q8_0"), "bpw"));
    json_decref(j);
}

/* without --keep the work directory is left empty */
Test(evalcmd, table_and_cleanup, .timeout = 300)
{
    char dir[600], cmd[4096];
    snprintf(dir, sizeof dir, "%s/work", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s eval %s %s --types Q4_K_S " EVAL_ARGS " --out-dir %s", tu_qfit_bin(), model_f32(),
             val_text(), dir);
    int st;
    char *out = tu_run(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    cr_expect_not_null(strstr(out, "| base (full precision) |"), "%s", out);
    cr_expect_not_null(strstr(out, "| Q4_K_S |"), "%s", out);
    cr_expect_not_null(strstr(out, "quality retention = 100 * exp(-mean KLD)"), "the definition is printed");
    free(out);
    snprintf(cmd, sizeof cmd, "ls -A %s", dir);
    out = tu_run(cmd, &st);
    cr_expect_str_empty(out, "left in the work directory: %s", out);
    free(out);
}

/* ---------------------------------------------------------------- SVG */

static void svg_parses(const char *path)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])' %s",
             path);
    int st;
    char *out = tu_run(cmd, &st);
    cr_assert_eq(st, 0, "%s is not well-formed XML: %s", path, out);
    free(out);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static qfit_eval_row mk(const char *name, double mib, double kld, double tg)
{
    qfit_eval_row r;
    memset(&r, 0, sizeof r);
    snprintf(r.name, sizeof r.name, "%s", name);
    r.file_bytes = (uint64_t)(mib * (1 << 20));
    r.kld_mean = kld;
    if (tg > 0) { r.has_speed = true; r.tg_tps = tg; r.pp_tps = 5 * tg; }
    return r;
}

/* sizes/KLDs: B is beaten by A (smaller and better), so the front is D, A, C */
Test(evalcmd, pareto_front)
{
    qfit_eval_row rows[] = { mk("base", 28, 0, 0), mk("A", 4, 0.004, 0), mk("B", 5, 0.005, 0), mk("C", 8, 0.0001, 0),
                             mk("D", 3, 0.02, 0), mk("E", 4, 0.006, 0) };
    rows[0].is_base = true;
    qfit_eval_result res = { .rows = rows, .n_rows = 6 };
    int front[6];
    const int n = qfit_eval_pareto(&res, front);
    cr_assert_eq(n, 3);
    cr_expect_str_eq(rows[front[0]].name, "D");
    cr_expect_str_eq(rows[front[1]].name, "A");
    cr_expect_str_eq(rows[front[2]].name, "C");
}

/* hostile names are escaped; one labelled point per row and chart; the front drawn */
Test(evalcmd, svg_escaped_and_complete)
{
    qfit_eval_row rows[] = { mk("base", 28, 0, 900), mk("a<b&\"c'>", 4, 0.004, 1000), mk("Q8_0", 7.5, 0.0001, 800),
                             mk("Q2_K", 2.5, 0.06, 1200), mk("same", 28, 0, 0) };
    rows[0].is_base = true;
    qfit_eval_result res = { .rows = rows, .n_rows = 5, .n_ctx = 128, .n_chunks = 2, .speed_pp = 512, .speed_tg = 128 };
    char path[600], err[256];
    snprintf(path, sizeof path, "%s/chart.svg", tu_tmpdir());
    cr_assert_eq(qfit_eval_write_svg(path, &res, err, sizeof err), 0, "%s", err);
    svg_parses(path);
    char *svg = tu_read_file(path, NULL);
    cr_assert_not_null(svg);
    cr_expect_not_null(strstr(svg, ">a&lt;b&amp;&quot;c&apos;&gt;</text>"));
    cr_expect_eq(count(svg, ">Q8_0</text>"), 2, "Q8_0 labelled in both charts");
    cr_expect_eq(count(svg, ">Q2_K</text>"), 2);
    cr_expect_eq(count(svg, "<circle"), 3 + 6, "3 quality points, 3 tg + 3 pp points");
    cr_expect_eq(count(svg, "class=\"pareto\""), 1);
    cr_expect_not_null(strstr(svg, "not drawn (mean KLD 0): same</text>"), "a row off the log scale is named");
    cr_expect_eq(count(svg, "<script") + count(svg, "href"), 0, "standalone");
    free(svg);
}

Test(evalcmd, svg_from_cli, .timeout = 300)
{
    char svg_path[600], json_path[600], cmd[4096];
    snprintf(svg_path, sizeof svg_path, "%s/eval.svg", tu_tmpdir());
    snprintf(json_path, sizeof json_path, "%s/eval.json", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "%s eval %s %s --types Q5_K_M,Q4_K_M,Q3_K_S " EVAL_ARGS " --svg %s --json-out %s",
             tu_qfit_bin(), model_f32(), val_text(), svg_path, json_path);
    int st;
    char *out = tu_run(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    /* --json-out: the same run's rows, while the table still goes to stdout */
    cr_expect_not_null(strstr(out, "| Q4_K_M |"), "%s", out);
    json_error_t je;
    json_t *j = json_load_file(json_path, 0, &je);
    cr_assert_not_null(j, "%s: %s", json_path, je.text);
    cr_expect_eq(json_array_size(json_object_get(j, "rows")), 4);
    char needle[64];
    snprintf(needle, sizeof needle, "| %.6f |", num(row_named(j, "Q4_K_M"), "kld_mean"));
    cr_expect_not_null(strstr(out, needle), "the JSON's Q4_K_M KLD %s is not the table's: %s", needle, out);
    json_decref(j);
    free(out);
    svg_parses(svg_path);
    char *svg = tu_read_file(svg_path, NULL);
    cr_assert_not_null(svg);
    cr_expect_eq(count(svg, "<circle"), 3, "one point per type (no speed chart)");
    cr_expect_eq(count(svg, ">Q5_K_M</text>") + count(svg, ">Q4_K_M</text>") + count(svg, ">Q3_K_S</text>"), 3);
    cr_expect_eq(count(svg, "class=\"pareto\""), 1);
    /* on this model the three form the front: 3 vertices */
    const char *pl = strstr(svg, "class=\"pareto\"");
    cr_assert_not_null(pl);
    const char *pts = strstr(pl, "points=\"");
    cr_assert_not_null(pts);
    int commas = 0;
    for (const char *p = pts + 8; *p && *p != '"'; p++) commas += *p == ',';
    cr_expect_eq(commas, 3);
    free(svg);
}

/* ---------------------------------------------------------------- Ctrl-C */

Test(evalcmd, sigint_gives_partial_table, .timeout = 300)
{
    char out_path[600], err_path[600];
    snprintf(out_path, sizeof out_path, "%s/sigint.out", tu_tmpdir());
    snprintf(err_path, sizeof err_path, "%s/sigint.err", tu_tmpdir());
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (!freopen(out_path, "w", stdout) || !freopen(err_path, "w", stderr)) _exit(99);
        execl(tu_qfit_bin(), "qfit", "eval", model_f32(), val_text(), "--types", "Q8_0,Q4_K_M,Q3_K_M,Q2_K", "--ctx",
              "128", "--chunks", "4", "--threads", "2", "--no-speed", (char *)NULL);
        _exit(98);
    }
    /* signal once the first quantized row has begun (the base row is done) */
    bool sent = false;
    for (int i = 0; i < 60000 && !sent; i++) {
        char *e = tu_read_file(err_path, NULL);
        if (e && strstr(e, "quantize Q8_0")) { kill(pid, SIGINT); sent = true; }
        free(e);
        if (!sent) usleep(5000);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(sent, "the run never reached the first quantization");
    char *out = tu_read_file(out_path, NULL), *err = tu_read_file(err_path, NULL);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "exit status %d\n%s\n%s", st, out, err);
    cr_expect_not_null(strstr(out, "| base (full precision) |"), "%s", out);
    cr_expect_not_null(strstr(out, "INTERRUPTED"), "%s", out);
    cr_expect_null(strstr(out, "| Q2_K |"), "stopped after the current step: %s", out);
    cr_expect_not_null(strstr(err, "interrupted"), "%s", err);
    free(out);
    free(err);
}

/* ---------------------------------------------------------------- library API with speed */

Test(evalcmd, library_run_with_speed, .timeout = 300)
{
    const int ftypes[] = { qfit_ftype_from_name("Q4_0") };
    qfit_eval_params p;
    qfit_eval_params_init(&p);
    p.model_path = model_f32();
    p.text_path = val_text();
    p.ftypes = ftypes;
    p.n_ftypes = 1;
    p.n_ctx = 64;
    p.n_chunks = 1;
    p.n_threads = 2;
    p.speed_pp = 32;
    p.speed_tg = 8;
    p.speed_reps = 1;
    p.work_dir = tu_tmpdir();
    qfit_eval_result res;
    char err[512];
    cr_assert_eq(qfit_eval_run(&p, &res, err, sizeof err), 0, "%s", err);
    cr_assert_eq(res.n_rows, 2);
    cr_expect_not(res.interrupted);
    cr_expect_eq(res.n_scored, 31);   /* positions 32..62 of one chunk of 64 */
    for (int i = 0; i < 2; i++) {
        cr_expect(res.rows[i].has_speed);
        cr_expect_gt(res.rows[i].pp_tps, 0);
        cr_expect_gt(res.rows[i].tg_tps, 0);
    }
    cr_expect_gt(res.rows[1].kld_mean, 0);
    char *js = qfit_eval_json(&res);
    cr_assert_not_null(js);
    json_error_t je;
    json_t *j = json_loads(js, 0, &je);
    cr_assert_not_null(j, "%s", je.text);
    cr_expect(json_is_real(json_object_get(json_array_get(json_object_get(j, "rows"), 1), "tg_tps")));
    cr_expect_eq(num(j, "speed_pp"), 32);
    json_decref(j);
    free(js);
    char path[600];
    snprintf(path, sizeof path, "%s/speed.svg", tu_tmpdir());
    cr_assert_eq(qfit_eval_write_svg(path, &res, err, sizeof err), 0, "%s", err);
    svg_parses(path);
    char *svg = tu_read_file(path, NULL);
    cr_expect_not_null(strstr(svg, "Speed vs size"));
    cr_expect_eq(count(svg, "<circle"), 3, "1 quality point, tg and pp points");
    free(svg);
    qfit_eval_result_free(&res);
}

/* an unwritable type is refused before anything runs, naming it */
Test(evalcmd, bad_type_named)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s eval %s %s --types Q4_K_M,IQ2_XXS --no-speed", tu_qfit_bin(), model_f32(), val_text());
    int st;
    char *out = tu_run(cmd, &st);
    cr_expect_eq(st, 2, "%s", out);
    cr_expect_not_null(strstr(out, "'IQ2_XXS'"), "%s", out);
    free(out);
}

/* --files: an existing quantized file is scored as is, named by its file name: the same
 * KLD, to the last digit, as --types Q4_K_M (the same bytes through the same engine) */
Test(evalcmd, files_option, .timeout = 300)
{
    char cmd[4096], out[700];
    const char *q = tu_kjv_quantized("Q4_K_M", "my-q4.gguf");
    snprintf(out, sizeof out, "%s/files.json", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "(%s eval %s %s --files %s " EVAL_ARGS " --json > %s)", tu_qfit_bin(), model_f32(),
             val_text(), q, out);
    int st;
    char *log = tu_run(cmd, &st);
    cr_assert_eq(st, 0, "%s", log);
    free(log);
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    cr_assert_not_null(j, "%s", je.text);
    cr_assert_eq(json_array_size(json_object_get(j, "rows")), 2);
    json_t *r = row_named(j, "my-q4.gguf");
    cr_expect_str_eq(json_string_value(json_object_get(r, "path")), q);
    json_t *jt = eval_json("Q4_K_M", "");
    cr_expect_eq(num(r, "kld_mean"), num(row_named(jt, "Q4_K_M"), "kld_mean"), "KLD of the file %.9f, of --types %.9f",
                 num(r, "kld_mean"), num(row_named(jt, "Q4_K_M"), "kld_mean"));
    cr_expect_eq(num(r, "ppl"), num(row_named(jt, "Q4_K_M"), "ppl"));
    json_decref(jt);
    struct stat sb;
    cr_expect_eq(stat(q, &sb), 0, "a given file is never removed");
    json_decref(j);
}

/* --imatrix reaches the quantizer: Q4_K_M with the committed imatrix of the shared model
 * (tests/data/imatrix) is measurably closer to the base than without (-16% here; the
 * kernels' summation order moves either number by up to 4% on these 2 chunks) */
Test(evalcmd, imatrix_used, .timeout = 300)
{
    char arg[4400];
    snprintf(arg, sizeof arg, "--imatrix %s", tu_imatrix_kjv());
    json_t *j = eval_json("Q4_K_M", arg), *j0 = eval_json("Q4_K_M", "");
    const double kld = num(row_named(j, "Q4_K_M"), "kld_mean"), kld0 = num(row_named(j0, "Q4_K_M"), "kld_mean");
    cr_expect_lt(kld, 0.9 * kld0, "KLD %.6f with the imatrix vs %.6f without", kld, kld0);
    cr_expect_gt(kld, 0);
    json_decref(j);
    json_decref(j0);
}
