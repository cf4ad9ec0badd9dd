/* qfit batch — submit, watch, collect and cancel batches of requests queued in
 * Redis (include/qfit/batch.h); `qfit worker` processes run them. */
#include "cli/cli_store.h"
#include "cli/commands.h"
#include "qfit/batch.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void batch_usage(FILE *out)
{
    fprintf(out, "usage: qfit batch submit FILE.jsonl [--model NAME] [--ttl DURATION] [--redis URL]\n"
                 "       qfit batch status ID [--watch | --json] [--redis URL]\n"
                 "       qfit batch results ID [-o OUT.jsonl] [--redis URL]\n"
                 "       qfit batch cancel ID [--redis URL]\n\n"
                 "FILE.jsonl: the OpenAI Batch API's input, one request a line:\n"
                 "  {\"custom_id\":\"r1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{...}}\n"
                 "url: /v1/chat/completions, /v1/completions, /v1/embeddings, /api/generate, /api/chat,\n"
                 "/api/embed. Every line is checked before anything is queued. --model fills a body without\n"
                 "\"model\"; --ttl: how long the results are kept once the batch is finished (e.g. 90m,\n"
                 "24h, 7d; seconds without a unit; default 7d). submit prints the batch id; `qfit worker` processes run the jobs. results writes\n"
                 "one line per input line, in input order (OpenAI's batch output format), to OUT.jsonl or\n"
                 "stdout. --redis: redis://[[user]:password@]host[:port][/db] (QFIT_REDIS_URL, default\n"
                 QFIT_BATCH_DEFAULT_URL ").\n");
}

static char *read_file(const char *path, size_t *len, char *err, size_t err_len)
{
    FILE *f = !strcmp(path, "-") ? stdin : fopen(path, "rb");
    if (!f) { snprintf(err, err_len, "cannot open '%s': %s", path, strerror(errno)); return NULL; }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = cap >= QFIT_BATCH_MAX_FILE ? NULL : realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    bool bad = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf || bad) {
        free(buf);
        snprintf(err, err_len, "cannot read '%s': %s", path, bad ? strerror(errno) : "larger than 1 GiB, or out of memory");
        return NULL;
    }
    *len = n;
    return buf;
}

static void print_status(const char *id, const qfit_batch_status *st, bool bar)
{
    int64_t fin = st->done + st->failed + st->cancelled;
    int64_t queued = st->total - fin - st->running;
    if (queued < 0) queued = 0;
    double secs = st->started_ms ? (double)((st->finished_ms ? st->finished_ms : (int64_t)time(NULL) * 1000) -
                                            st->started_ms) / 1000.0 : 0;
    double rate = secs > 0 ? (double)(st->done + st->failed) / secs : 0;
    if (bar) {
        int width = 30, fill = st->total ? (int)(fin * width / st->total) : 0;
        char b[64];
        for (int i = 0; i < width; i++) b[i] = i < fill ? '#' : '-';
        b[width] = '\0';
        fprintf(stdout, "\r[%s] %lld/%lld %s", b, (long long)fin, (long long)st->total, st->status);
        if (rate > 0 && fin < st->total) fprintf(stdout, ", ETA %.0fs", (double)(st->total - fin) / rate);
        fprintf(stdout, "\033[K");
        fflush(stdout);
        return;
    }
    printf("batch      %s\nstatus     %s\nmodels     %s\n", id, st->status, st->models);
    printf("jobs       %lld total: %lld queued, %lld running, %lld done, %lld failed, %lld cancelled\n",
           (long long)st->total, (long long)queued, (long long)st->running, (long long)st->done,
           (long long)st->failed, (long long)st->cancelled);
    printf("workers    %d alive\n", st->workers);
    if (st->started_ms)
        printf("throughput %.2f jobs/s, %.1f generated tokens/s over %.1f s\n", rate,
               secs > 0 ? (double)st->tokens / secs : 0.0, secs);
    if (rate > 0 && fin < st->total) printf("eta        %.0f s\n", (double)(st->total - fin) / rate);
    if (st->failed) printf("failed jobs are in the dead-letter stream qfit:dead and in the results (\"error\")\n");
}

static void print_json(const char *id, const qfit_batch_status *st)
{
    json_t *j = qfit_batch_status_json(id, st);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (s) printf("%s\n", s);
    free(s);
    json_decref(j);
}

int qfit_cmd_batch(int argc, char **argv)
{
    if (argc < 2 || qfit_cli_wants_help(argc, argv, batch_usage)) {
        if (argc < 2) batch_usage(stderr);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1], *arg = NULL, *url = NULL, *model = NULL, *out = NULL, *ttl = NULL;
    bool watch = false, as_json = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        bool has_v = i + 1 < argc;
        if (!strcmp(a, "--redis") && has_v) url = argv[++i];
        else if (!strcmp(a, "--model") && has_v && !strcmp(sub, "submit")) model = argv[++i];
        else if (!strcmp(a, "-o") && has_v && !strcmp(sub, "results")) out = argv[++i];
        else if (!strcmp(a, "--ttl") && has_v && !strcmp(sub, "submit")) ttl = argv[++i];
        else if (!strcmp(a, "--watch") && !strcmp(sub, "status")) watch = true;
        else if (!strcmp(a, "--json") && !strcmp(sub, "status")) as_json = true;
        else if (a[0] != '-' || !strcmp(a, "-")) {
            if (arg) { fprintf(stderr, "qfit batch %s: one argument expected, got '%s' too\n", sub, a); return 2; }
            arg = a;
        } else { fprintf(stderr, "qfit batch %s: unknown option or missing value: '%s'\n", sub, a); return 2; }
    }
    if (strcmp(sub, "submit") && strcmp(sub, "status") && strcmp(sub, "results") && strcmp(sub, "cancel")) {
        fprintf(stderr, "qfit batch: unknown subcommand '%s' (submit, status, results, cancel)\n", sub);
        return 2;
    }
    if (!arg) {
        fprintf(stderr, "qfit batch %s: %s expected\n", sub, !strcmp(sub, "submit") ? "FILE.jsonl" : "a batch id");
        return 2;
    }
    char err[2048];
    long ttl_s = 0;
    if (ttl && qfit_batch_parse_ttl(ttl, &ttl_s) != 0) {
        fprintf(stderr, "qfit batch submit: --ttl '%s': a duration such as 3600, 90m, 24h or 7d (1 s to 365 d)\n", ttl);
        return 2;
    }
    qfit_batch_input *in = NULL;
    if (!strcmp(sub, "submit")) {   /* the whole file is checked before connecting */
        size_t len;
        char *data = read_file(arg, &len, err, sizeof err);
        if (data) in = qfit_batch_parse(data, len, model, err, sizeof err);
        free(data);
        if (!in) { fprintf(stderr, "qfit batch submit: %s: %s\n", arg, err); return 1; }
    }
    qfit_batch_client *c = qfit_batch_connect(qfit_batch_default_url(url), err, sizeof err);
    if (!c) {
        fprintf(stderr, "qfit batch %s: %s\n", sub, err);
        qfit_batch_input_free(in);
        return 1;
    }
    int rc = 0;
    if (in) {
        char id[QFIT_BATCH_ID_LEN + 1];
        rc = qfit_batch_submit(c, in, ttl_s, id, err, sizeof err);
        if (!rc) {
            printf("%s\n", id);
            fprintf(stderr, "qfit batch: %zu request%s queued\n", in->n, in->n == 1 ? "" : "s");
        }
    } else if (!strcmp(sub, "status")) {
        qfit_batch_status st;
        bool bar = watch && isatty(STDOUT_FILENO);
        for (;;) {
            if ((rc = qfit_batch_get_status(c, arg, &st, err, sizeof err)) != 0) break;
            if (as_json) {
                print_json(arg, &st);
                break;
            }
            print_status(arg, &st, bar);
            bool over = !strcmp(st.status, "completed") || !strcmp(st.status, "cancelled");
            if (!watch || over) break;
            if (!bar) printf("\n");
            fflush(stdout);
            sleep(1);
        }
        if (bar) printf("\n");
    } else if (!strcmp(sub, "results")) {
        rc = qfit_batch_results(c, arg, out, err, sizeof err);
    } else {
        rc = qfit_batch_cancel(c, arg, err, sizeof err);
        if (!rc) fprintf(stderr, "qfit batch: %s cancelled (running jobs finish)\n", arg);
    }
    if (rc) fprintf(stderr, "qfit batch %s: %s\n", sub, err);
    qfit_batch_close(c);
    qfit_batch_input_free(in);
    return rc ? 1 : 0;
}
