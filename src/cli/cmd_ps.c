/* qfit ps / qfit stop NAME: the models a running qfit serve has loaded, and unloading
 * one (as ollama ps / ollama stop). */
#include "cli/cli_client.h"
#include "cli/cli_store.h"
#include "cli/commands.h"
#include "qfit/store.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void ps_usage(FILE *out)
{
    fprintf(out, "usage: qfit ps\n\nThe models the running server (QFIT_HOST) has loaded: name, ID, planned size,\n"
                 "processor, context per sequence, parallel sequences, and when it will be unloaded.\n");
}

/* bytes as ollama ps prints them (decimal units) */
static void human_bytes(uint64_t b, char *buf, size_t cap)
{
    if (b >= 1000000000ull) snprintf(buf, cap, "%.1f GB", (double)b / 1e9);
    else if (b >= 1000000ull) snprintf(buf, cap, "%.0f MB", (double)b / 1e6);
    else snprintf(buf, cap, "%.0f KB", (double)b / 1e3);
}

/* "4 minutes from now", "Forever", "Stopping..." */
static void until(const char *expires, char *buf, size_t cap)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!expires || !strptime(expires, "%Y-%m-%dT%H:%M:%S", &tm)) {
        snprintf(buf, cap, "-");
        return;
    }
    const double d = difftime(timegm(&tm), time(NULL));
    if (tm.tm_year + 1900 > 2200) snprintf(buf, cap, "Forever");
    else if (d <= 0) snprintf(buf, cap, "Stopping...");
    else if (d < 90) snprintf(buf, cap, "%d seconds from now", (int)d);
    else if (d < 5400) snprintf(buf, cap, "%d minutes from now", (int)(d / 60 + 0.5));
    else snprintf(buf, cap, "%d hours from now", (int)(d / 3600 + 0.5));
}

int qfit_cmd_ps(int argc, char **argv)
{
    if (qfit_cli_wants_help(argc, argv, ps_usage)) return 0;
    if (argc > 1) {
        ps_usage(stderr);
        return 2;
    }
    long status = 0;
    json_t *j = NULL;
    char err[1024];
    if (qfit_client_call("GET", "/api/ps", NULL, &status, &j, err, sizeof err) != 0) {
        fprintf(stderr, "qfit ps: %s\n", err);
        return 1;
    }
    if (status != 200 || !json_is_array(json_object_get(j, "models"))) {
        const char *e = json_string_value(json_object_get(j, "error"));
        fprintf(stderr, "qfit ps: server answered %ld%s%s\n", status, e ? ": " : "", e ? e : "");
        json_decref(j);
        return 1;
    }
    printf("%-32s %-14s %-10s %-10s %-8s %-9s %s\n", "NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "PARALLEL", "UNTIL");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(j, "models"), i, m) {
        const char *digest = json_string_value(json_object_get(m, "digest"));
        char id[13] = "-", size[32], u[64];
        if (digest && strlen(digest) >= 12) snprintf(id, sizeof id, "%.12s", digest);
        human_bytes((uint64_t)json_integer_value(json_object_get(m, "size")), size, sizeof size);
        until(json_string_value(json_object_get(m, "expires_at")), u, sizeof u);
        printf("%-32s %-14s %-10s %-10s %-8lld %-9lld %s\n", json_string_value(json_object_get(m, "name")), id, size,
               "100% CPU", (long long)json_integer_value(json_object_get(m, "context_length")),
               (long long)json_integer_value(json_object_get(m, "parallel")), u);
    }
    json_decref(j);
    return 0;
}

static void stop_usage(FILE *out)
{
    fprintf(out, "usage: qfit stop NAME\n\nUnload a model from the running server (QFIT_HOST) as soon as no request "
                 "uses it.\n");
}

int qfit_cmd_stop(int argc, char **argv)
{
    if (qfit_cli_wants_help(argc, argv, stop_usage)) return 0;
    if (argc != 2) {
        stop_usage(stderr);
        return 2;
    }
    /* loaded at all? (ollama stop says so rather than loading it to unload it) */
    long status = 0;
    json_t *j = NULL;
    char err[1024];
    if (qfit_client_call("GET", "/api/ps", NULL, &status, &j, err, sizeof err) != 0) {
        fprintf(stderr, "qfit stop: %s\n", err);
        return 1;
    }
    qfit_name want, have;
    bool loaded = false;
    size_t i;
    json_t *m;
    if (qfit_name_parse(argv[1], &want, NULL, 0) == 0)
        json_array_foreach(json_object_get(j, "models"), i, m) {
            const char *n = json_string_value(json_object_get(m, "name"));
            if (n && qfit_name_parse(n, &have, NULL, 0) == 0 && qfit_name_equal(&want, &have)) loaded = true;
        }
    json_decref(j);
    if (!loaded) {
        fprintf(stderr, "qfit stop: model '%s' is not loaded\n", argv[1]);
        return 1;
    }
    json_t *body = json_pack("{s:s, s:i}", "model", argv[1], "keep_alive", 0);
    int rc = qfit_client_call("POST", "/api/generate", body, &status, &j, err, sizeof err);
    json_decref(body);
    if (rc != 0) {
        fprintf(stderr, "qfit stop: %s\n", err);
        return 1;
    }
    const char *reason = json_string_value(json_object_get(j, "done_reason"));
    if (status != 200 || !reason || strcmp(reason, "unload") != 0) {
        const char *e = json_string_value(json_object_get(j, "error"));
        fprintf(stderr, "qfit stop: server answered %ld%s%s\n", status, e ? ": " : "", e ? e : "");
        json_decref(j);
        return 1;
    }
    json_decref(j);
    return 0;
}
