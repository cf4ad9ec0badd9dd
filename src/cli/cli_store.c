/* Helpers shared by the CLI's store commands. */
#include "cli/cli_store.h"

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
