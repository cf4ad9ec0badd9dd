/* POST /api/pull: a registry pull with Ollama's progress stream
 * (ollama-compat-reference §1.8): NDJSON lines {"status","digest"?,"total"?,
 * "completed"?} — "pulling manifest", "pulling <12 hex>" (at most every 60 ms per
 * blob, and at its end), "verifying sha256 digest", "writing manifest",
 * "success" — or a final {"error":"..."} line. With "stream": false the answer is
 * the last object alone ({"status":"success"}, or 500 {"error"}). As `qfit pull`,
 * the model is planned for this machine from its GGUF header first and refused
 * when it cannot fit, unless the request says "force": true (a qfit extension).
 * "insecure": true also means plain http for a name without a scheme (as Ollama).
 * A client that disconnects does not stop the pull (it completes, or stays
 * resumable as partial blobs). */
#include "server/server_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qfit/pull.h"
#include "qfit/store.h"

typedef struct {
    char             *root;      /* a copy: the pull may outlive the server */
    qfit_http_stream *stream;    /* NULL: not streaming */
    char             *name;
    bool              insecure, force;
    char              last_status[96];
    struct timespec   last;
} pull_job;

static void job_free(pull_job *j)
{
    free(j->name);
    free(j->root);
    free(j);
}

static double since_ms(const struct timespec *t)
{
    struct timespec n;
    clock_gettime(CLOCK_MONOTONIC, &n);
    return (double)(n.tv_sec - t->tv_sec) * 1e3 + (double)(n.tv_nsec - t->tv_nsec) / 1e6;
}

static void write_line(pull_job *j, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    if (text) {
        size_t n = strlen(text);
        text[n] = '\n';   /* replaces the NUL: written with its length */
        qfit_http_stream_write(j->stream, text, n + 1);
    }
    free(text);
    json_decref(obj);
}

static void on_progress(const qfit_pull_progress *p, void *ctx)
{
    pull_job *j = ctx;
    if (!j->stream) return;
    bool same = !strcmp(p->status, j->last_status);
    bool blob_done = p->digest && p->total && p->completed == p->total;
    if (same && !blob_done && since_ms(&j->last) < 60) return;
    snprintf(j->last_status, sizeof j->last_status, "%s", p->status);
    clock_gettime(CLOCK_MONOTONIC, &j->last);
    json_t *o = json_pack("{s:s}", "status", p->status);
    if (o && p->digest) json_object_set_new(o, "digest", json_string(p->digest));
    if (o && p->total) json_object_set_new(o, "total", json_integer((json_int_t)p->total));
    if (o && p->completed) json_object_set_new(o, "completed", json_integer((json_int_t)p->completed));
    write_line(j, o);
}

/* Runs the pull; 0 or -1 with the (scrubbed) message in err. */
static int run_pull(pull_job *j, char *err, size_t err_len)
{
    qfit_store *st = qfit_store_open(j->root, err, err_len);
    if (!st) return -1;
    qfit_pull_opts o = { .insecure = j->insecure, .plan = true, .force = j->force,
                         .progress = on_progress, .ctx = j };
    int rc = qfit_pull(st, j->name, &o, err, err_len);
    qfit_store_close(st);
    return rc;
}

static void *pull_thread(void *p)
{
    pull_job *j = p;
    char err[2048];
    if (run_pull(j, err, sizeof err) != 0) {
        qfit_server_scrub_paths(j->root, err, sizeof err);
        write_line(j, json_pack("{s:s}", "error", err));
    }
    qfit_http_stream *s = j->stream;
    job_free(j);   /* before the end: a client that has it all may exit at once */
    qfit_http_stream_end(s);
    return NULL;
}

static void h_pull(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    json_t *body = qfit_http_req_json(r);
    if (!body) return;
    const char *name = json_string_value(json_object_get(body, "model"));
    if (!name || !*name) name = json_string_value(json_object_get(body, "name"));
    qfit_name n;
    char err[2048];
    pull_job *j = NULL;
    if (!name || qfit_name_parse(name, &n, err, sizeof err) != 0) {
        qfit_http_respond_error(r, 400, "invalid model name");
        goto out;
    }
    json_t *stream = json_object_get(body, "stream");
    /* Ollama's makeRequest: insecure turns the registry's https into http */
    bool insecure = json_is_true(json_object_get(body, "insecure"));
    if (!(j = calloc(1, sizeof *j)) ||
        asprintf(&j->name, "%s%s", insecure && !strstr(name, "://") ? "http://" : "", name) < 0 ||
        !(j->root = strdup(qfit_server_store_root(qfit_http_req_server(r))))) {
        qfit_http_respond_error(r, 500, "out of memory");
        goto out;
    }
    j->insecure = insecure;
    j->force = json_is_true(json_object_get(body, "force"));
    if (json_is_false(stream)) {
        if (run_pull(j, err, sizeof err) != 0) qfit_http_respond_error(r, 500, "%s", err);
        else qfit_http_respond(r, 200, "application/json; charset=utf-8", "{\"status\":\"success\"}", 20);
        goto out;
    }
    if (!(j->stream = qfit_http_stream_begin(r, 200, "application/x-ndjson"))) {
        qfit_http_respond_error(r, 500, "cannot start the response stream");
        goto out;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, pull_thread, j) != 0) {
        write_line(j, json_pack("{s:s}", "error", "cannot start the pull thread"));
        qfit_http_stream_end(j->stream);
        goto out;
    }
    pthread_detach(t);
    j = NULL;   /* the thread owns it */
out:
    if (j) job_free(j);
    json_decref(body);
}

int qfit_server_add_manage_routes(qfit_server *s, char *err, size_t err_len)
{
    const qfit_http_route r = { "POST", "/api/pull", h_pull, NULL, QFIT_HTTP_MANAGE, 0, NULL };
    return qfit_server_route(s, &r, err, err_len);
}
