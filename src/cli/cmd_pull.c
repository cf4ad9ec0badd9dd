/* qfit pull — download a model from an Ollama-compatible registry (or hf.co) into
 * the store, after checking that it fits this machine. */
#include <stdbool.h>
#include <stdio.h>
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
        "An interrupted pull resumes where it stopped when run again.\n");
}

typedef struct {
    qfit_progress_bar bar;
    char   last_status[64];
    double t0;              /* when the current blob started */
    uint64_t done0;         /* its bytes at that time (resumed part) */
    char   digest[80];
} pull_view;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human(uint64_t b, char *buf, size_t cap)
{
    if (b >= 1000000000ull) snprintf(buf, cap, "%.1f GB", (double)b / 1e9);
    else if (b >= 1000000ull) snprintf(buf, cap, "%.1f MB", (double)b / 1e6);
    else if (b >= 1000ull) snprintf(buf, cap, "%.1f KB", (double)b / 1e3);
    else snprintf(buf, cap, "%llu B", (unsigned long long)b);
}

static void on_progress(const qfit_pull_progress *p, void *ctx)
{
    pull_view *v = ctx;
    bool new_status = strcmp(p->status, v->last_status) != 0;
    if (new_status) {
        snprintf(v->last_status, sizeof v->last_status, "%s", p->status);
        v->t0 = now_s();
        v->done0 = p->completed;
        if (!v->bar.tty || !p->digest) {
            char sz[32];
            human(p->total, sz, sizeof sz);
            if (p->digest && !strncmp(p->status, "pulling ", 8))
                fprintf(stderr, "%s %s%s\n", p->status, sz, p->completed == p->total ? " (present)" : "");
            else fprintf(stderr, "%s\n", p->status);
        }
        v->bar.last_pct = -1;
    }
    if (!v->bar.tty || !p->digest || strncmp(p->status, "pulling ", 8)) return;
    double dt = now_s() - v->t0;
    double rate = dt > 0.2 ? (double)(p->completed - v->done0) / dt : 0;
    char line[256], d[32], t[32], r[32];
    human(p->completed, d, sizeof d);
    human(p->total, t, sizeof t);
    human((uint64_t)rate, r, sizeof r);
    if (rate > 0) {
        double eta = (double)(p->total - p->completed) / rate;
        snprintf(line, sizeof line, "%s %s/%s %s/s ETA %dm%02ds", p->status, d, t, r, (int)eta / 60, (int)eta % 60);
    } else {
        snprintf(line, sizeof line, "%s %s/%s", p->status, d, t);
    }
    qfit_progress_bar_update(&v->bar, (int64_t)p->completed, (int64_t)p->total, p->completed, p->total, line);
}

static void on_plan(const qfit_plan_model *m, const qfit_plan_machine *mach, const qfit_plan_result *r, void *ctx)
{
    char w[32], kv[32], tot[32], bud[32];
    human(r->weights_bytes, w, sizeof w);
    human(r->kv_bytes, kv, sizeof kv);
    human(r->total_bytes, tot, sizeof tot);
    human(r->budget_bytes, bud, sizeof bud);
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
    pull_view v = { .bar = { isatty(2), -1 } };
    o.progress = on_progress;
    o.on_plan = on_plan;
    o.ctx = &v;
    int rc = qfit_pull(s, name, &o, err, sizeof err);
    if (v.bar.tty) fprintf(stderr, "\n");
    if (rc != 0) fprintf(stderr, "qfit pull: %s\n", err);
    qfit_store_close(s);
    return rc ? 1 : 0;
}
