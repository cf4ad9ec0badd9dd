/* The CLI's use of the environment settings. */
#include "cli/cli_env.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "qfit/config.h"
#include "qfit/plan.h"

int qfit_cli_check_env(void)
{
    char err[1024];
    qfit_context_params p = qfit_context_default_params();
    if (qfit_config_check(err, sizeof err) != 0 ||
        qfit_context_params_from_env(&p, NULL, 0, err, sizeof err) != 0) {
        fprintf(stderr, "qfit: %s\n", err);
        return -1;
    }
    return 0;
}

void qfit_cli_debug_context(const char *cmd, const char *gguf_path, const qfit_context *c)
{
    char err[512];
    int level;
    if (qfit_config_debug(&level, err, sizeof err) != 0 || level < 1) return;
    qfit_plan_model m;
    char report[2048];
    if (qfit_plan_model_from_gguf(gguf_path, &m, err, sizeof err) != 0) {
        fprintf(stderr, "qfit %s: debug: no plan for %s: %s\n", cmd, gguf_path, err);
        return;
    }
    int rc = qfit_plan_debug_report(&m, c, report, sizeof report, err, sizeof err);
    qfit_plan_model_free(&m);
    if (rc != 0) {
        fprintf(stderr, "qfit %s: debug: no plan for %s: %s\n", cmd, gguf_path, err);
        return;
    }
    for (char *line = report, *nl; *line; line = nl + 1) {
        if (!(nl = strchr(line, '\n'))) break;
        fprintf(stderr, "qfit %s: debug: %.*s\n", cmd, (int)(nl - line), line);
    }
}

int qfit_cli_sched_config(const char *cmd, qfit_sched_config *sc)
{
    char err[512], v[64];
    qfit_sched_config_init(sc);
    if (qfit_config_int("NUM_PARALLEL", 1, QFIT_MAX_SEQ, 1, &sc->num_parallel, err, sizeof err) != 0 ||
        qfit_config_int("MAX_LOADED_MODELS", 1, 1024, 3, &sc->max_loaded, err, sizeof err) != 0 ||
        qfit_config_int("MAX_QUEUE", 1, 1 << 20, 512, &sc->max_queue, err, sizeof err) != 0 ||
        qfit_config_keep_alive(&sc->keep_alive_ns, err, sizeof err) != 0 ||
        qfit_context_params_from_env(&sc->ctx, NULL, 0, err, sizeof err) != 0) {
        fprintf(stderr, "qfit %s: %s\n", cmd, err);
        return -1;
    }
    const char *which = NULL;
    bool too_long;
    const char *mem = qfit_env("MAX_MEMORY", v, sizeof v, &which, &too_long);
    if (too_long || (mem && qfit_parse_size(mem, &sc->max_memory) != 0)) {
        fprintf(stderr, "qfit %s: %s: '%s' is not a size (e.g. 24G, 512M)\n", cmd, which, mem ? mem : "(too long)");
        return -1;
    }
    return 0;
}

void qfit_cli_log_line(void *ctx, const char *line)
{
    char when[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s %s%s\n", when, ctx ? (const char *)ctx : "", line);
}

int qfit_cli_parse_int(const char *cmd, const char *s, const char *what, int lo, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > 1 << 30) {
        fprintf(stderr, "qfit %s: invalid %s '%s'\n", cmd, what, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

void qfit_cli_block_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}
