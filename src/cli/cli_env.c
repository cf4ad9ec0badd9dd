/* The CLI's use of the environment settings. */
#include "cli/cli_env.h"

#include <stdio.h>
#include <string.h>

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
