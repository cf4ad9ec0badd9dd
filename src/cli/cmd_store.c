/* qfit list | rm | cp | import | prune — the model store verbs (thin layer over
 * include/qfit/store.h; output formats follow `ollama list`). */
#include "cli/cli_store.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "qfit/store.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>


/* Ollama's format.HumanBytes: decimal units, "4.7 GB", "12 MB", "512 B". */
static void human_bytes(int64_t b, char *buf, size_t cap)
{
    static const struct { double div; const char *unit; } U[] = {
        { 1e12, "TB" }, { 1e9, "GB" }, { 1e6, "MB" }, { 1e3, "KB" },
    };
    for (size_t i = 0; i < sizeof U / sizeof U[0]; i++) {
        if ((double)b < U[i].div) continue;
        double v = (double)b / U[i].div;
        if (v >= 10 || v == trunc(v)) snprintf(buf, cap, "%d %s", (int)v, U[i].unit);
        else snprintf(buf, cap, "%.1f %s", v, U[i].unit);
        return;
    }
    snprintf(buf, cap, "%" PRId64 " B", b);
}

/* Ollama's format.HumanTime: "Less than a second ago", "About a minute ago", "3 hours ago". */
static void human_time(int64_t t, int64_t now, char *buf, size_t cap)
{
    int64_t d = now - t;
    const char *suffix = " ago";
    if (d < 0) { d = -d; suffix = " from now"; }
    int64_t hours = (int64_t)llround((double)d / 3600.0);
    char v[48];
    if (d < 1) snprintf(v, sizeof v, "Less than a second");
    else if (d == 1) snprintf(v, sizeof v, "1 second");
    else if (d < 60) snprintf(v, sizeof v, "%" PRId64 " seconds", d);
    else if (d / 60 == 1) snprintf(v, sizeof v, "About a minute");
    else if (d / 60 < 60) snprintf(v, sizeof v, "%" PRId64 " minutes", d / 60);
    else if (hours == 1) snprintf(v, sizeof v, "About an hour");
    else if (hours < 48) snprintf(v, sizeof v, "%" PRId64 " hours", hours);
    else if (hours < 24 * 7 * 2) snprintf(v, sizeof v, "%" PRId64 " days", hours / 24);
    else if (hours < 24 * 30 * 2) snprintf(v, sizeof v, "%" PRId64 " weeks", hours / 24 / 7);
    else if (hours < 24 * 365 * 2) snprintf(v, sizeof v, "%" PRId64 " months", hours / 24 / 30);
    else snprintf(v, sizeof v, "%" PRId64 " years", d / 3600 / 24 / 365);
    snprintf(buf, cap, "%s%s", v, suffix);
}

/* ---------------------------------------------------------------- list */

static void list_usage(FILE *out)
{
    fprintf(out, "usage: qfit list [PREFIX]\n\n"
                 "Models in the store (QFIT_MODELS, else OLLAMA_MODELS, else ~/.qfit/models), newest first;\n"
                 "with PREFIX only the names that start with it (case-insensitive).\n");
}

int qfit_cmd_list(int argc, char **argv)
{
    if (qfit_cli_wants_help(argc, argv, list_usage)) return 0;
    if (argc > 2) { list_usage(stderr); return 2; }
    const char *prefix = argc == 2 ? argv[1] : "";
    qfit_store *s = qfit_cli_open_store("list");
    if (!s) return 1;
    qfit_store_entry *e;
    size_t n;
    char err[512];
    if (qfit_store_list(s, &e, &n, err, sizeof err) != 0) {
        fprintf(stderr, "qfit list: %s\n", err);
        qfit_store_close(s);
        return 1;
    }
    /* the table of `ollama list`: left-aligned columns, 4 spaces apart */
    typedef struct { char size[32], mod[80]; } row;
    row *rows = calloc(n ? n : 1, sizeof *rows);
    int w_name = 4, w_size = 4;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; rows && i < n; i++) {
        if (e[i].error[0] || strncasecmp(e[i].name, prefix, strlen(prefix)) != 0) continue;
        human_bytes(e[i].size, rows[i].size, sizeof rows[i].size);
        human_time(e[i].mtime, now, rows[i].mod, sizeof rows[i].mod);
        if ((int)strlen(e[i].name) > w_name) w_name = (int)strlen(e[i].name);
        if ((int)strlen(rows[i].size) > w_size) w_size = (int)strlen(rows[i].size);
    }
    int bad = 0;
    printf("%-*s    %-12s    %-*s    %s\n", w_name, "NAME", "ID", w_size, "SIZE", "MODIFIED");
    for (size_t i = 0; rows && i < n; i++) {
        if (e[i].error[0]) {
            fprintf(stderr, "qfit list: %s: %s\n", e[i].name, e[i].error);
            bad++;
        } else if (strncasecmp(e[i].name, prefix, strlen(prefix)) == 0) {
            printf("%-*s    %.12s    %-*s    %s\n", w_name, e[i].name, e[i].id.hex, w_size, rows[i].size, rows[i].mod);
        }
    }
    if (!rows) fprintf(stderr, "qfit list: out of memory\n");
    free(rows);
    free(e);
    qfit_store_close(s);
    return bad || !rows ? 1 : 0;
}

/* ---------------------------------------------------------------- rm, cp */

static void rm_usage(FILE *out)
{
    fprintf(out, "usage: qfit rm NAME...\n\n"
                 "Removes each model, then the blobs no other model uses (unless QFIT_NOPRUNE/OLLAMA_NOPRUNE).\n");
}

int qfit_cmd_rm(int argc, char **argv)
{
    if (qfit_cli_wants_help(argc, argv, rm_usage)) return 0;
    if (argc < 2) { rm_usage(stderr); return 2; }
    qfit_store *s = qfit_cli_open_store("rm");
    if (!s) return 1;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        char err[1024];
        int r = qfit_store_remove(s, argv[i], err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "qfit rm: %s\n", err);
            rc = 1;
            continue;
        }
        printf("deleted '%s'\n", argv[i]);
        if (r > 0) fprintf(stderr, "qfit rm: warning: '%s' %s\n", argv[i], err);
    }
    qfit_store_close(s);
    return rc;
}

static void cp_usage(FILE *out)
{
    fprintf(out, "usage: qfit cp SOURCE DESTINATION\n\nA new name for a model (same blobs, no copy of the weights).\n");
}

int qfit_cmd_cp(int argc, char **argv)
{
    if (qfit_cli_wants_help(argc, argv, cp_usage)) return 0;
    if (argc != 3) { cp_usage(stderr); return 2; }
    qfit_store *s = qfit_cli_open_store("cp");
    if (!s) return 1;
    char err[1024];
    int rc = qfit_store_copy(s, argv[1], argv[2], err, sizeof err);
    if (rc != 0) fprintf(stderr, "qfit cp: %s\n", err);
    else printf("copied '%s' to '%s'\n", argv[1], argv[2]);
    qfit_store_close(s);
    return rc ? 1 : 0;
}

/* ---------------------------------------------------------------- import */

static void import_usage(FILE *out)
{
    fprintf(out, "usage: qfit import FILE.gguf NAME [--link]\n\n"
                 "Adds a local GGUF file to the store under NAME ([host/][namespace/]model[:tag]).\n"
                 "  --link   store it by hard link (no extra disk space) where the file system allows;\n"
                 "           the file must then not be modified in place. Otherwise it is copied.\n");
}

static void import_progress(uint64_t done, uint64_t total, void *ctx)
{
    qfit_progress_bar_update(ctx, (int64_t)done, (int64_t)total, done, total, "import");
}

int qfit_cmd_import(int argc, char **argv)
{
    if (qfit_cli_wants_help(argc, argv, import_usage)) return 0;
    const char *pos[2];
    int npos = 0;
    bool link = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--link")) link = true;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "qfit import: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (npos < 2) pos[npos++] = argv[i];
        else { import_usage(stderr); return 2; }
    }
    if (npos != 2) { import_usage(stderr); return 2; }
    qfit_store *s = qfit_cli_open_store("import");
    if (!s) return 1;
    qfit_progress_bar bar = { isatty(2), -1 };
    qfit_import_opts o = { link, import_progress, &bar };
    bool linked = false;
    char err[1024];
    int rc = qfit_store_import_gguf(s, pos[0], pos[1], &o, &linked, err, sizeof err);
    if (bar.tty) fprintf(stderr, "\n");
    if (rc != 0) {
        fprintf(stderr, "qfit import: %s\n", err);
    } else {
        if (link && !linked)
            fprintf(stderr, "qfit import: '%s' cannot be hard-linked into '%s' (another file system?): copied instead\n",
                    pos[0], qfit_store_root(s));
        printf("imported '%s' as '%s'%s\n", pos[0], pos[1], linked ? " (hard link, no extra space)" : "");
    }
    qfit_store_close(s);
    return rc ? 1 : 0;
}

/* ---------------------------------------------------------------- prune */

static void prune_usage(FILE *out)
{
    fprintf(out, "usage: qfit prune [--dry-run]\n\n"
                 "Removes blobs no model uses, partial downloads, temporary files and empty folders.\n"
                 "  --dry-run   list what would be removed, remove nothing\n");
}

static void prune_report(const char *path, int64_t bytes, void *ctx)
{
    char b[32];
    human_bytes(bytes, b, sizeof b);
    printf("%s %s (%s)\n", *(const bool *)ctx ? "would remove" : "removed", path, b);
}

int qfit_cmd_prune(int argc, char **argv)
{
    if (qfit_cli_wants_help(argc, argv, prune_usage)) return 0;
    bool dry = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dry-run") || !strcmp(argv[i], "-n")) dry = true;
        else { fprintf(stderr, "qfit prune: unknown argument '%s'\n", argv[i]); return 2; }
    }
    qfit_store *s = qfit_cli_open_store("prune");
    if (!s) return 1;
    int64_t freed = 0;
    char err[1024], b[32];
    int rc = qfit_store_prune(s, dry, prune_report, &dry, &freed, err, sizeof err);
    human_bytes(freed, b, sizeof b);
    printf("%s %s\n", dry ? "would free" : "freed", b);
    if (rc != 0) fprintf(stderr, "qfit prune: %s\n", err);
    qfit_store_close(s);
    return rc ? 1 : 0;
}
