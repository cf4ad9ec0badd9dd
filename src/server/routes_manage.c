/* POST /api/pull and POST /api/create, the streaming model-management routes.
 *
 * POST /api/pull: a registry pull with Ollama's progress stream
 * (ollama-compat-reference §1.8): NDJSON lines {"status","digest"?,"total"?,
 * "completed"?} — "pulling manifest", "pulling <12 hex>" (at most every 60 ms per
 * blob, and at its end), "verifying sha256 digest", "writing manifest",
 * "success" — or a final {"error":"..."} line. With "stream": false the answer is
 * the last object alone ({"status":"success"}, or 500 {"error"}). As `qfit pull`,
 * the model is planned for this machine from its GGUF header first and refused
 * when it cannot fit, unless the request says "force": true (a qfit extension).
 * "insecure": true also means plain http for a name without a scheme (as Ollama).
 * A client that disconnects does not stop the pull (it completes, or stays
 * resumable as partial blobs).
 *
 * POST /api/create (JSON form, §1.8): "model"|"name"; "from" (a stored model) or
 * "files" {"<relative name>.gguf": "sha256:<hex>"} (one GGUF, uploaded first with
 * POST /api/blobs); "template", "system", "license" (string or array),
 * "parameters" {name: value} (unknown names are skipped with a warning, as
 * Ollama), "messages" [{role, content}], "quantize" (Q4_K_M, Q8_0, ...). The
 * request is checked before anything streams (400 naming the field); then
 * {"status":"parsing GGUF"} (files), the quantizing status, "writing manifest",
 * "success" or an {"error"} line. Refused with 400 and a reason: "adapters",
 * more than one file, a "from" model that is not in the store (qfit does not pull
 * it implicitly: POST /api/pull first). */
#include "server/server_int.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qfit/modelfile.h"
#include "qfit/pull.h"
#include "qfit/quantize.h"
#include "qfit/store.h"

typedef struct {
    char             *root;      /* a copy: the pull may outlive the server */
    qfit_http_stream *stream;    /* NULL: not streaming */
    char             *name;
    bool              insecure, force;
    qfit_modelfile   *mf;        /* create */
    int               quantize;  /* create: a qfit_ftype or -1 */
    bool              from_file; /* create: from "files" */
    char              last_status[96];
    struct timespec   last;
} mgmt_job;

static void job_free(mgmt_job *j)
{
    free(j->name);
    free(j->root);
    qfit_modelfile_free(j->mf);
    free(j);
}

static double since_ms(const struct timespec *t)
{
    struct timespec n;
    clock_gettime(CLOCK_MONOTONIC, &n);
    return (double)(n.tv_sec - t->tv_sec) * 1e3 + (double)(n.tv_nsec - t->tv_nsec) / 1e6;
}

static void write_line(mgmt_job *j, json_t *obj)
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
    mgmt_job *j = ctx;
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
static int run_pull(mgmt_job *j, char *err, size_t err_len)
{
    qfit_store *st = qfit_store_open(j->root, err, err_len);
    if (!st) return -1;
    qfit_pull_opts o = { .insecure = j->insecure, .plan = true, .force = j->force,
                         .progress = on_progress, .ctx = j };
    int rc = qfit_pull(st, j->name, &o, err, err_len);
    qfit_store_close(st);
    return rc;
}

static int run_create(mgmt_job *j, char *err, size_t err_len);

/* A job's stream: run it, write an error line if it fails, end the stream. */
static void *job_thread(void *p)
{
    mgmt_job *j = p;
    char err[2048];
    if ((j->mf ? run_create(j, err, sizeof err) : run_pull(j, err, sizeof err)) != 0) {
        qfit_server_scrub_paths(j->root, err, sizeof err);
        qfit_server_make_utf8(err);
        write_line(j, json_pack("{s:s}", "error", err));
    }
    qfit_http_stream *s = j->stream;
    job_free(j);   /* before the end: a client that has it all may exit at once */
    qfit_http_stream_end(s);
    return NULL;
}

/* Runs j (owned from here on): with stream, on a thread writing NDJSON;
 * without, here, answering {"status":"success"} or fail_status {"error"}. */
static void start_job(qfit_http_req *r, mgmt_job *j, bool stream, unsigned fail_status)
{
    char err[2048];
    if (!stream) {
        if ((j->mf ? run_create(j, err, sizeof err) : run_pull(j, err, sizeof err)) != 0)
            qfit_http_respond_error(r, fail_status, "%s", err);
        else
            qfit_http_respond(r, 200, "application/json; charset=utf-8", "{\"status\":\"success\"}", 20);
        job_free(j);
        return;
    }
    if (!(j->stream = qfit_http_stream_begin(r, 200, "application/x-ndjson"))) {
        qfit_http_respond_error(r, 500, "cannot start the response stream");
        job_free(j);
        return;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, job_thread, j) != 0) {
        write_line(j, json_pack("{s:s}", "error", "cannot start a thread"));
        qfit_http_stream *s = j->stream;
        job_free(j);
        qfit_http_stream_end(s);
        return;
    }
    pthread_detach(t);
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
    mgmt_job *j = NULL;
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
    start_job(r, j, !json_is_false(stream), 500);
    j = NULL;
out:
    if (j) job_free(j);
    json_decref(body);
}

/* ---------------------------------------------------------------- create */

static void status_line(mgmt_job *j, const char *status)
{
    if (j->stream) write_line(j, json_pack("{s:s}", "status", status));
}

static void create_status(const char *msg, void *ctx)
{
    status_line(ctx, msg);
}

static int run_create(mgmt_job *j, char *err, size_t err_len)
{
    qfit_store *st = qfit_store_open(j->root, err, err_len);
    if (!st) return -1;
    if (j->from_file) status_line(j, "parsing GGUF");
    qfit_create_opts o = { .quantize_ftype = j->quantize, .status = create_status, .status_ctx = j };
    int rc = qfit_store_create(st, j->name, j->mf, &o, err, err_len);
    qfit_store_close(st);
    if (rc == 0) status_line(j, "writing manifest");
    if (rc == 0) status_line(j, "success");
    return rc;
}

/* fs.ValidPath: relative, no empty, "." or ".." element, no backslash. */
static bool valid_file_name(const char *f)
{
    if (!*f || *f == '/' || strchr(f, '\\')) return false;
    for (const char *p = f; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) return false;
        p += n + (p[n] == '/');
        if (p[-1] == '/' && !*p) return false;
    }
    return true;
}

/* The request as a Modelfile (j->mf, j->quantize, j->from_file); 0, or -1 after a 400. */
static int create_request(qfit_http_req *r, const json_t *body, mgmt_job *j, const char *root)
{
    char err[1024];
    const json_t *from = json_object_get(body, "from"), *files = json_object_get(body, "files");
    const json_t *adapters = json_object_get(body, "adapters");
    if (adapters && !json_is_null(adapters) && json_object_size(adapters) > 0) {
        qfit_http_respond_error(r, 400, "adapters are not supported by qfit yet");
        return -1;
    }
    if (!(j->mf = qfit_modelfile_new())) { qfit_http_respond_error(r, 500, "out of memory"); return -1; }
    qfit_modelfile *mf = j->mf;
    if (files && json_object_size(files) > 0) {
        if (!json_is_object(files) || json_object_size(files) != 1) {
            qfit_http_respond_error(r, 400, "\"files\" must name exactly one GGUF file (got %zu): qfit cannot "
                                    "import safetensors or split models", json_object_size(files));
            return -1;
        }
        const char *fname = json_object_iter_key(json_object_iter((json_t *)files));
        const char *dig = json_string_value(json_object_get(files, fname));
        qfit_digest d;
        if (!valid_file_name(fname)) {
            qfit_http_respond_error(r, 400, "invalid file name \"%s\" in \"files\"", fname);
            return -1;
        }
        if (!dig || qfit_digest_parse(dig, &d, err, sizeof err) != 0) {
            qfit_http_respond_error(r, 400, "files: \"%s\": %s", fname, dig ? err : "the digest must be a string");
            return -1;
        }
        char path[4200];
        snprintf(path, sizeof path, "%s/blobs/sha256-%s", root, d.hex);
        if (access(path, R_OK) != 0) {
            qfit_http_respond_error(r, 400, "blob \"sha256:%s\" for \"%s\" not found: upload it first "
                                    "(POST /api/blobs/sha256:%s)", d.hex, fname, d.hex);
            return -1;
        }
        mf->from = strdup(path);
        j->from_file = true;
    } else if (json_is_string(from) && *json_string_value(from)) {
        qfit_name n;
        const char *fs = json_string_value(from);
        if (qfit_name_parse(fs, &n, err, sizeof err) != 0) {
            qfit_http_respond_error(r, 400, "from: invalid model name \"%s\"", fs);
            return -1;
        }
        qfit_store *st = qfit_store_open(root, err, sizeof err);
        qfit_store_model m;
        int found = st ? qfit_store_resolve(st, fs, &m, err, sizeof err) : -1;
        if (found == 0) qfit_store_model_free(&m);
        qfit_store_close(st);
        if (found != 0) {
            qfit_http_respond_error(r, 400, "from: model '%s' not found (pull it first: POST /api/pull)", fs);
            return -1;
        }
        mf->from = strdup(fs);
    } else {
        qfit_http_respond_error(r, 400, "neither 'from' or 'files' was specified");
        return -1;
    }
    const json_t *v;
    if ((v = json_object_get(body, "template")) && json_is_string(v)) mf->tmpl = strdup(json_string_value(v));
    if ((v = json_object_get(body, "system")) && json_is_string(v)) mf->system = strdup(json_string_value(v));
    if (!mf->from || ((v = json_object_get(body, "template")) && json_is_string(v) && !mf->tmpl) ||
        ((v = json_object_get(body, "system")) && json_is_string(v) && !mf->system)) {
        qfit_http_respond_error(r, 500, "out of memory");
        return -1;
    }
    v = json_object_get(body, "license");
    if (json_is_string(v) && qfit_modelfile_add_license(mf, json_string_value(v), err, sizeof err) != 0) {
        qfit_http_respond_error(r, 400, "license: %s", err);
        return -1;
    }
    size_t i;
    json_t *e;
    json_array_foreach(json_is_array(v) ? v : NULL, i, e) {
        if (!json_is_string(e) || qfit_modelfile_add_license(mf, json_string_value(e), err, sizeof err) != 0) {
            qfit_http_respond_error(r, 400, "license[%zu] must be a string", i);
            return -1;
        }
    }
    v = json_object_get(body, "parameters");
    if (v && !json_is_null(v)) {
        qfit_params *p = json_is_object(v) ? qfit_params_from_json(v, NULL, err, sizeof err) : NULL;
        if (!p || qfit_params_merge(mf->params, p, err, sizeof err) != 0) {
            qfit_http_respond_error(r, 400, "parameters: %s", json_is_object(v) ? err : "must be an object");
            qfit_params_free(p);
            return -1;
        }
        qfit_params_free(p);
    }
    v = json_object_get(body, "messages");
    json_array_foreach(json_is_array(v) ? v : NULL, i, e) {
        const char *role = json_string_value(json_object_get(e, "role"));
        const char *content = json_string_value(json_object_get(e, "content"));
        if (!role || !content || qfit_modelfile_add_message(mf, role, content, err, sizeof err) != 0) {
            qfit_http_respond_error(r, 400, "messages[%zu]: %s", i,
                                    role && content ? err : "needs string \"role\" and \"content\"");
            return -1;
        }
    }
    j->quantize = -1;
    const char *q = json_string_value(json_object_get(body, "quantize"));
    if (q && *q && (j->quantize = qfit_ftype_from_name(q)) < 0) {
        qfit_http_respond_error(r, 400, "quantize: unknown type '%s' (supported: %s)", q, qfit_ftype_supported_list());
        return -1;
    }
    return 0;
}

static void h_create(qfit_http_req *r, void *ctx)
{
    (void)ctx;
    json_t *body = qfit_http_req_json(r);
    if (!body) return;
    const char *name = json_string_value(json_object_get(body, "model"));
    if (!name || !*name) name = json_string_value(json_object_get(body, "name"));
    const char *root = qfit_server_store_root(qfit_http_req_server(r));
    qfit_name n;
    char err[1024];
    mgmt_job *j = NULL;
    if (!name || qfit_name_parse(name, &n, err, sizeof err) != 0)
        qfit_http_respond_error(r, 400, "invalid model name");
    else if (!(j = calloc(1, sizeof *j)) || !(j->name = strdup(name)) || !(j->root = strdup(root)))
        qfit_http_respond_error(r, 500, "out of memory");
    else if (create_request(r, body, j, root) == 0) {
        start_job(r, j, !json_is_false(json_object_get(body, "stream")), 400);
        j = NULL;
    }
    if (j) job_free(j);
    json_decref(body);
}

int qfit_server_add_manage_routes(qfit_server *s, char *err, size_t err_len)
{
    /* qfit_pull's own first curl_global_init is not thread-safe: do it here, on the
     * thread that creates the server, before any connection thread exists */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, err_len, "cannot initialise libcurl (needed by /api/pull)");
        return -1;
    }
    const qfit_http_route routes[] = {
        { "POST", "/api/pull",   h_pull,   NULL, QFIT_HTTP_MANAGE, 0, NULL },
        { "POST", "/api/create", h_create, NULL, QFIT_HTTP_MANAGE, 0, NULL },
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (qfit_server_route(s, &routes[i], err, err_len) != 0) return -1;
    return 0;
}
