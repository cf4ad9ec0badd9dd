/* qfit serve — the HTTP server (thin layer over include/qfit/server.h). */
#include "cli/cli_env.h"
#include "cli/cli_store.h"
#include "cli/commands.h"
#include "qfit/config.h"
#include "qfit/model.h"
#include "qfit/plan.h"
#include "qfit/sched.h"
#include "qfit/server.h"
#include "qfit/store.h"
#include "qfit/batch.h"
#include "server/routes_batch.h"
#include "server/routes_engine.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void serve_usage(FILE *out)
{
    fprintf(out, "usage: qfit serve [--host ADDR] [--no-auth] [--redis URL] [--device D] [--gpu-layers N]\n"
                 "                  [--gpu-mem SIZE]\n\n"
                 "Serves the Ollama and OpenAI APIs on QFIT_HOST (else OLLAMA_HOST, default 127.0.0.1:11434).\n"
                 "  --host ADDR  address to listen on (as QFIT_HOST: \"0.0.0.0\", \":8080\", \"[::1]:8080\", ...)\n"
                 "  --no-auth    allow a non-loopback address without QFIT_API_KEY (anyone who can reach\n"
                 "               the port can then use the models)\n"
                 "  --redis URL  the batch queue's Redis (as QFIT_REDIS_URL): serves /api/batch (submit,\n"
                 "               status, results, cancel: what `qfit batch` does)\n"
                 "  --device D   where the models run (as QFIT_DEVICE): cpu, vulkan0, ... (qfit inspect --devices)\n"
                 "  --gpu-layers N  on a Vulkan device, the last N layers there (-1, the default: all that fit);\n"
                 "               a request's or Modelfile's num_gpu overrides it per model\n"
                 "  --gpu-mem SIZE  the device memory -1 may fill (default: its memory less 512 MiB)\n"
                 "Settings: QFIT_API_KEY (clients send Authorization: Bearer KEY), QFIT_ORIGINS (extra CORS\n"
                 "origins, comma-separated, '*' wildcards), QFIT_MODELS (the store).\n"
                 "Models: QFIT_MAX_MEMORY (memory for the loaded models, e.g. 24G; default: what `qfit plan`\n"
                 "budgets for this machine), QFIT_MAX_LOADED_MODELS (3), QFIT_NUM_PARALLEL (sequences per\n"
                 "model, decoded together; 1), QFIT_MAX_QUEUE (waiting requests; beyond: 503; 512),\n"
                 "QFIT_KEEP_ALIVE (5m), QFIT_CONTEXT_LENGTH, QFIT_KV_CACHE_TYPE, QFIT_FLASH_ATTENTION.\n"
                 "Every OLLAMA_ name works as well.\n");
}

int qfit_cmd_serve(int argc, char **argv)
{
    if (qfit_cli_wants_help(argc, argv, serve_usage)) return 0;
    const char *host_arg = NULL, *redis_arg = NULL;
    const char *engine_opt[3][2];   /* --device, --gpu-layers, --gpu-mem: applied over the environment */
    int n_engine = 0;
    bool no_auth = false;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--device") || !strcmp(argv[i], "--gpu-layers") || !strcmp(argv[i], "-ngl") ||
             !strcmp(argv[i], "--gpu-mem")) && i + 1 < argc && n_engine < 3) {
            engine_opt[n_engine][0] = argv[i];
            engine_opt[n_engine++][1] = argv[++i];
        } else if (!strcmp(argv[i], "--host") && i + 1 < argc) host_arg = argv[++i];
        else if (!strcmp(argv[i], "--redis") && i + 1 < argc) redis_arg = argv[++i];
        else if (!strcmp(argv[i], "--no-auth")) no_auth = true;
        else { fprintf(stderr, "qfit serve: unknown option or missing value: '%s'\n", argv[i]); return 2; }
    }
    char err[1024], root[4096], key[1024], origins[4096];
    qfit_host h;
    if ((host_arg ? qfit_parse_host(host_arg, &h, err, sizeof err) : qfit_config_host(&h, err, sizeof err)) != 0) {
        fprintf(stderr, "qfit serve: %s%s\n", host_arg ? "--host: " : "", err);
        return 2;
    }
    if (strcmp(h.scheme, "http") != 0 || h.path[0]) {
        fprintf(stderr, "qfit serve: cannot serve %s://%s:%d%s: only plain http without a path (put a TLS "
                "proxy in front for https)\n", h.scheme, h.host, h.port, h.path);
        return 2;
    }
    bool too_long;
    const char *which = NULL;
    const char *k = qfit_env("API_KEY", key, sizeof key, &which, &too_long);
    if (too_long) { fprintf(stderr, "qfit serve: %s is too long\n", which); return 2; }
    const char *o = qfit_env("ORIGINS", origins, sizeof origins, &which, &too_long);
    if (too_long) { fprintf(stderr, "qfit serve: %s is too long\n", which); return 2; }
    if (qfit_store_default_root(root, sizeof root, err, sizeof err) != 0) {
        fprintf(stderr, "qfit serve: %s\n", err);
        return 1;
    }
    bool loopback = qfit_server_host_is_loopback(h.host);
    if (!loopback && !k && no_auth)
        fprintf(stderr, "qfit serve: WARNING: listening on %s without an API key (--no-auth): anyone who can "
                "reach port %d can use these models; model management stays loopback-only\n", h.host, h.port);

    /* SIGINT/SIGTERM are blocked in every thread and taken by sigwait below */
    sigset_t set;
    qfit_cli_block_stop_signals(&set);

    qfit_server_config cfg = { .host = h.host, .port = h.port, .api_key = k, .no_auth = no_auth,
                               .origins = o, .store_root = root, .log = qfit_cli_log_line };
    qfit_sched_config sc;
    if (qfit_cli_sched_config("serve", &sc) != 0) return 2;
    for (int i = 0; i < n_engine; i++)
        if (qfit_context_params_parse_arg(&sc.ctx, engine_opt[i][0], engine_opt[i][1], err, sizeof err) != 1) {
            fprintf(stderr, "qfit serve: %s\n", err);
            return 2;
        }
    qfit_store *store = qfit_store_open(root, err, sizeof err);
    if (!store) {
        fprintf(stderr, "qfit serve: %s\n", err);
        return 1;
    }
    sc.store = store;
    sc.log = qfit_cli_log_line;
    sc.log_user = (void *)"sched: ";
    sc.reserve_bytes = (uint64_t)QFIT_SERVER_DEFAULT_MAX_CONNECTIONS * QFIT_SERVER_CONNECTION_BYTES;
    qfit_sched *sched = qfit_sched_new(&sc, err, sizeof err);
    qfit_server *s = sched ? qfit_server_new(&cfg, err, sizeof err) : NULL;
    qfit_engine_routes *er = s ? qfit_engine_routes_add(s, sched, err, sizeof err) : NULL;
    /* the batch API only when a Redis is named (flag or QFIT_REDIS_URL): a bad URL is an error */
    const char *redis = redis_arg ? redis_arg : getenv("QFIT_REDIS_URL");
    qfit_redis_url ru;
    bool batch_ok = !redis || !*redis || qfit_redis_url_parse(redis, &ru, err, sizeof err) == 0;
    qfit_batch_routes *br = er && batch_ok && redis && *redis ? qfit_batch_routes_add(s, redis, err, sizeof err) : NULL;
    if (!er || !batch_ok || (redis && *redis && !br) || qfit_server_start(s, err, sizeof err) != 0) {
        fprintf(stderr, "qfit serve: %s%s\n", batch_ok ? "" : "--redis / QFIT_REDIS_URL: ", err);
        qfit_server_free(s);
        qfit_batch_routes_free(br);
        qfit_engine_routes_free(er);
        qfit_sched_free(sched);
        qfit_store_close(store);
        return 1;
    }
    fprintf(stderr, "qfit serve: listening on http://%s%s%s:%d (models in %s)%s\n", strchr(h.host, ':') ? "[" : "",
            h.host, strchr(h.host, ':') ? "]" : "", qfit_server_port(s), root, k ? ", API key required" : "");
    if (br) fprintf(stderr, "qfit serve: batch API at /api/batch (Redis %s:%d/%d)\n", ru.host, ru.port, ru.db);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "qfit serve: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    qfit_server_free(s);
    qfit_batch_routes_free(br);
    qfit_engine_routes_free(er);
    qfit_sched_free(sched);
    qfit_store_close(store);
    return 0;
}
