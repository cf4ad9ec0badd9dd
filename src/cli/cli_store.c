/* Helpers shared by the CLI's store commands. */
#include "cli/cli_store.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

qfit_store *qfit_cli_open_store(const char *cmd)
{
    char root[4096], err[512];
    if (qfit_store_default_root(root, sizeof root, err, sizeof err) != 0) {
        fprintf(stderr, "qfit %s: %s\n", cmd, err);
        return NULL;
    }
    qfit_store *s = qfit_store_open(root, err, sizeof err);
    if (!s) fprintf(stderr, "qfit %s: %s\n", cmd, err);
    return s;
}

bool qfit_cli_wants_help(int argc, char **argv, void (*usage)(FILE *))
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return true;
        }
    }
    return false;
}

void qfit_cli_print_params(const qfit_params *p, const char *indent, int width)
{
    for (size_t i = 0; i < qfit_params_count(p); i++) {
        const qfit_param *e = qfit_params_at(p, i);
        if (e->type == QFIT_PARAM_STRINGS) {
            for (size_t j = 0; j < e->nstrs; j++) {
                json_t *js = json_string(e->strs[j]);
                char *q = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
                printf("%s%-*s%s\n", indent, width, e->name, q ? q : "");
                free(q);
                json_decref(js);
            }
        } else {
            char *v = qfit_params_value_text(e);
            printf("%s%-*s%s\n", indent, width, e->name, v ? v : "");
            free(v);
        }
    }
}
