/* qfit pull — download a model from an Ollama-compatible registry (or hf.co) into
 * the store, after checking that it fits this machine. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/progress.h"
#include "qfit/pull.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: qfit pull NAME [--insecure] [--plan-only] [--force] [--no-plan]\n"
        "\n"
        "NAME: [host/][namespace/]model[:tag] as Ollama spells it (llama3.2, library/qwen3:8b,\n"
        "hf.co/USER/REPO[:QUANT] for Hugging Face GGUF repositories). Into QFIT_MODELS.\n"
        "Before downloading the weights, the model's GGUF header is read and the memory\n"
        "plan for this machine is printed (`qfit plan` at the default context).\n"
        "\n"
        "  --insecure    allow a plain http:// registry\n"
        "  --plan-only   print the plan, download nothing\n"
        "  --force       download even when the plan says the model does not fit\n"
        "  --no-plan     skip the plan (no header request)\n"
        "\n"
        "An interrupted pull resumes where it stopped when run again. Blobs of at least\n"
        "QFIT_PULL_PARALLEL_MIN bytes (default 64 MiB) are downloaded as QFIT_PULL_PARTS\n"
        "ranges at once (default %d, at most %d).\n", QFIT_PULL_PARTS_DEFAULT, QFIT_PULL_PARTS_MAX);
}

/* An optional decimal setting from the environment, in [lo, hi]; unset or empty
 * leaves *out alone. -1 (message printed) when it cannot be honoured. */
static int env_u64(const char *name, uint64_t lo, uint64_t hi, uint64_t *out)
{
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "qfit pull: %s='%s' is not a number from %llu to %llu\n", name, s, (unsigned long long)lo,
                (unsigned long long)hi);
        return -1;
    }
    *out = v;
    return 0;
}

typedef struct {
    qfit_xfer_progress xfer;
    char   last_status[64];
    bool   in_xfer;          /* the current status is a blob transfer */
} pull_view;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Ollama's statuses: "pulling <12 hex>" (a blob: bytes, speed, ETA), the others as
 * one line each. */
static void on_progress(const qfit_pull_progress *p, void *ctx)
{
    pull_view *v = ctx;
    bool xfer = p->digest && !strncmp(p->status, "pulling ", 8);
    if (strcmp(p->status, v->last_status) != 0) {
        snprintf(v->last_status, sizeof v->last_status, "%s", p->status);
        if (v->in_xfer) qfit_xfer_end(&v->xfer, stderr);
        v->in_xfer = xfer;
        if (xfer) qfit_xfer_begin(&v->xfer, stderr, p->status, p->completed, p->total, now_s());
        else fprintf(stderr, "%s\n", p->status);
        return;
    }
    if (xfer) qfit_xfer_update(&v->xfer, stderr, p->completed, now_s());
}

static void on_plan(const qfit_plan_model *m, const qfit_plan_machine *mach, const qfit_plan_result *r, void *ctx)
{
    char w[32], kv[32], tot[32], bud[32];
    qfit_human_bytes(r->weights_bytes, w, sizeof w);
    qfit_human_bytes(r->kv_bytes, kv, sizeof kv);
    qfit_human_bytes(r->total_bytes, tot, sizeof tot);
    qfit_human_bytes(r->budget_bytes, bud, sizeof bud);
    printf("plan for %s (%s, %lld layers) on %s:\n", m->name, m->arch, (long long)m->n_layer, mach->name);
    printf("  weights   %s (%s)\n", w, r->mix);
    printf("  KV cache  %s (context %lld, %s)\n", kv, (long long)r->n_ctx, qfit_plan_kv_name(r->kv_type));
    printf("  total     %s of a %s budget: %s\n", tot, bud, qfit_plan_verdict_name(r->verdict));
    fflush(stdout);
}

int qfit_cmd_pull(int argc, char **argv)
{
    const char *name = NULL;
    qfit_pull_opts o = { .plan = true };
    uint64_t parts = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else if (!strcmp(argv[i], "--insecure")) o.insecure = true;
        else if (!strcmp(argv[i], "--plan-only")) o.plan_only = true;
        else if (!strcmp(argv[i], "--force")) o.force = true;
        else if (!strcmp(argv[i], "--no-plan")) o.plan = false;
        else if (argv[i][0] == '-') { fprintf(stderr, "qfit pull: unknown option '%s'\n", argv[i]); return 2; }
        else if (!name) name = argv[i];
        else { usage(stderr); return 2; }
    }
    if (!name) { usage(stderr); return 2; }
    if (o.plan_only && !o.plan) { fprintf(stderr, "qfit pull: --plan-only and --no-plan contradict\n"); return 2; }
    char root[4096], err[2048];
    if (qfit_store_default_root(root, sizeof root, err, sizeof err) != 0) {
        fprintf(stderr, "qfit pull: %s\n", err);
        return 1;
    }
    qfit_store *s = qfit_store_open(root, err, sizeof err);
    if (!s) { fprintf(stderr, "qfit pull: %s\n", err); return 1; }
    if (env_u64("QFIT_PULL_PARTS", 1, QFIT_PULL_PARTS_MAX, &parts) != 0 ||
        env_u64("QFIT_PULL_PARALLEL_MIN", 1, UINT64_MAX, &o.parallel_min) != 0)
        return 2;
    o.parts = (unsigned)parts;
    pull_view v = { .xfer = { .tty = isatty(2) } };
    o.progress = on_progress;
    o.on_plan = on_plan;
    o.ctx = &v;
    int rc = qfit_pull(s, name, &o, err, sizeof err);
    if (v.in_xfer) qfit_xfer_end(&v.xfer, stderr);
    if (rc != 0) fprintf(stderr, "qfit pull: %s\n", err);
    qfit_store_close(s);
    return rc ? 1 : 0;
}
