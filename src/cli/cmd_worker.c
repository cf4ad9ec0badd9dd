/* qfit worker — runs batch jobs from a Redis queue (include/qfit/batch.h) through
 * the very route handlers of `qfit serve`, in-process (qfit_server_call): a job's
 * answer is what the server would send. One scheduler, several job threads: the
 * scheduler decodes their sequences together (QFIT_NUM_PARALLEL). */
#include "cli/cli_env.h"
#include "cli/cli_store.h"
#include "cli/commands.h"
#include "qfit/batch.h"
#include "qfit/config.h"
#include "qfit/plan.h"
#include "qfit/sched.h"
#include "qfit/server.h"
#include "qfit/store.h"
#include "server/routes_engine.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_MODELS 64

static void worker_usage(FILE *out)
{
    fprintf(out, "usage: qfit worker [--redis URL] [--model NAME]... [--concurrency N] [--visibility SECONDS]\n"
                 "                   [--max-attempts N]\n\n"
                 "Runs batch jobs (qfit batch submit) from a Redis queue with the models of this machine's store.\n"
                 "  --redis URL         redis://[[user]:password@]host[:port][/db] (QFIT_REDIS_URL, default\n"
                 "                      " QFIT_BATCH_DEFAULT_URL ")\n"
                 "  --model NAME        take jobs of this model only (repeatable; default: every queued model\n"
                 "                      this machine's store has)\n"
                 "  --concurrency N     jobs run at once (default QFIT_NUM_PARALLEL, else 1); the scheduler\n"
                 "                      decodes up to QFIT_NUM_PARALLEL of them together\n"
                 "  --visibility S      a job another worker took and has not finished after S seconds is\n"
                 "                      taken over (default 60: longer than your longest job)\n"
                 "  --max-attempts N    deliveries before a job goes to the dead-letter stream (default 3)\n"
                 "SIGINT/SIGTERM: take no new job, finish the running ones, exit; a second signal cancels\n"
                 "them and hands them back to the queue at once. Settings as `qfit serve` (QFIT_MAX_MEMORY,\n"
                 "QFIT_NUM_PARALLEL, QFIT_KEEP_ALIVE, QFIT_CONTEXT_LENGTH, ...).\n");
}

/* qfit_batch_run_fn: POST url through the server's routes. */
static int run_job(void *ctx, const char *url, const char *body, size_t body_len, const atomic_bool *cancel,
                   unsigned *status, char **resp, size_t *resp_len, char *err, size_t err_len)
{
    return qfit_server_call(ctx, "POST", url, body, body_len, cancel, status, resp, resp_len, err, err_len);
}

/* qfit_batch_worker_config.has_model: is the model in this machine's store? A
 * handle of its own (the scheduler's is not shared between threads), locked. */
typedef struct {
    pthread_mutex_t mu;
    qfit_store     *store;
} store_probe;

static bool has_model(void *ctx, const char *model)
{
    store_probe *p = ctx;
    char err[512];
    qfit_store_model m;
    pthread_mutex_lock(&p->mu);
    bool ok = qfit_store_resolve(p->store, model, &m, err, sizeof err) == 0;
    if (ok) qfit_store_model_free(&m);
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static atomic_int stop_level;

/* Takes SIGINT/SIGTERM (blocked in every other thread): the first finishes, the
 * second cancels. */
static void *signal_main(void *arg)
{
    const sigset_t *set = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0) continue;
        int level = atomic_fetch_add(&stop_level, 1) + 1;
        fprintf(stderr, "qfit worker: %s: %s\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
                level == 1 ? "finishing the running jobs (again to hand them back now)"
                           : "cancelling the running jobs and handing them back");
        if (level >= 2) return NULL;
    }
}

static int parse_int_arg(const char *opt, const char *v, int lo, int hi, int *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end || x < lo || x > hi) {
        fprintf(stderr, "qfit worker: %s: '%s' must be a whole number from %d to %d\n", opt, v, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

int qfit_cmd_worker(int argc, char **argv)
{
    if (qfit_cli_wants_help(argc, argv, worker_usage)) return 0;
    const char *url = NULL, *models[MAX_MODELS];
    size_t n_models = 0;
    int concurrency = 0, visibility_s = 60, attempts = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { fprintf(stderr, "qfit worker: unknown option or missing value: '%s'\n", a); return 2; }
        i++;
        if (!strcmp(a, "--redis")) url = v;
        else if (!strcmp(a, "--model")) {
            if (n_models == MAX_MODELS) { fprintf(stderr, "qfit worker: at most %d --model\n", MAX_MODELS); return 2; }
            models[n_models++] = v;
        } else if (!strcmp(a, "--concurrency")) { if (parse_int_arg(a, v, 1, 1024, &concurrency)) return 2; }
        else if (!strcmp(a, "--visibility")) { if (parse_int_arg(a, v, 1, 7 * 24 * 3600, &visibility_s)) return 2; }
        else if (!strcmp(a, "--max-attempts")) { if (parse_int_arg(a, v, 1, 100, &attempts)) return 2; }
        else { fprintf(stderr, "qfit worker: unknown option '%s'\n", a); return 2; }
    }
    url = qfit_batch_default_url(url);
    char err[1024], root[4096];
    qfit_redis_url ru;
    if (qfit_redis_url_parse(url, &ru, err, sizeof err) != 0) {
        fprintf(stderr, "qfit worker: %s\n", err);
        return 2;
    }
    qfit_sched_config sc;
    if (qfit_cli_sched_config("worker", &sc) != 0) return 2;
    if (!concurrency) concurrency = sc.num_parallel;
    if (qfit_store_default_root(root, sizeof root, err, sizeof err) != 0) {
        fprintf(stderr, "qfit worker: %s\n", err);
        return 1;
    }

    sigset_t set;
    qfit_cli_block_stop_signals(&set);

    qfit_store *store = qfit_store_open(root, err, sizeof err);
    store_probe probe = { .store = store ? qfit_store_open(root, err, sizeof err) : NULL };
    if (!store || !probe.store) {
        fprintf(stderr, "qfit worker: %s\n", err);
        qfit_store_close(store);
        return 1;
    }
    pthread_mutex_init(&probe.mu, NULL);
    sc.store = store;
    sc.log = qfit_cli_log_line;
    sc.log_user = (void *)"sched: ";
    qfit_server_config cfg = { .store_root = root };   /* never started: routes only */
    qfit_sched *sched = qfit_sched_new(&sc, err, sizeof err);
    qfit_server *s = sched ? qfit_server_new(&cfg, err, sizeof err) : NULL;
    qfit_engine_routes *er = s ? qfit_engine_routes_add(s, sched, err, sizeof err) : NULL;
    int rc = 1;
    pthread_t sig_thread;
    if (!er) {
        fprintf(stderr, "qfit worker: %s\n", err);
        goto out;
    }
    if (pthread_create(&sig_thread, NULL, signal_main, &set) != 0) {
        fprintf(stderr, "qfit worker: cannot start the signal thread\n");
        goto out;
    }
    pthread_detach(sig_thread);
    qfit_batch_worker_config wc = {
        .url = url, .models = models, .n_models = n_models, .concurrency = concurrency,
        .visibility_ms = visibility_s * 1000, .max_attempts = attempts, .run = run_job, .run_ctx = s,
        .has_model = has_model, .has_model_ctx = &probe, .log = qfit_cli_log_line, .log_ctx = (void *)"worker: ",
    };
    fprintf(stderr, "qfit worker: %s:%d db %d, %d job%s at once, models: %s%s\n", ru.host, ru.port, ru.db,
            concurrency, concurrency == 1 ? "" : "s", n_models ? "" : "every queued model in this store", n_models ? models[0] : "");
    for (size_t i = 1; i < n_models; i++) fprintf(stderr, "  and %s\n", models[i]);
    if (qfit_batch_worker_run(&wc, &stop_level, err, sizeof err) != 0) fprintf(stderr, "qfit worker: %s\n", err);
    else rc = 0;
out:
    qfit_server_free(s);
    qfit_engine_routes_free(er);
    qfit_sched_free(sched);
    qfit_store_close(store);
    qfit_store_close(probe.store);
    pthread_mutex_destroy(&probe.mu);
    return rc;
}
