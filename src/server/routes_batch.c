/* /api/batch: the batch queue over HTTP (routes_batch.h). */
#include "server/routes_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qfit/batch.h"

/* Results are read into memory to be answered: beyond this, `qfit batch results -o`. */
#define RESULTS_MAX ((size_t)256 << 20)

struct qfit_batch_routes {
    char *url;
};

/* The HTTP status of a library error (its messages are stable: queue.c). */
/* the HTTP status of a failed batch call, by the kind of its error */
static unsigned status_of(const qfit_batch_client *c)
{
    switch (qfit_batch_client_status(c)) {
    case QFIT_E_NOT_FOUND: return 404;
    case QFIT_E_INVALID:   return 400;
    case QFIT_E_CONFLICT:  return 409;
    case QFIT_E_NOMEM:     return 500;
    default:               return 503;   /* Redis unreachable or failing */
    }
}

static qfit_batch_client *connect_or_answer(qfit_batch_routes *br, qfit_http_req *req)
{
    char err[512];
    qfit_batch_client *c = qfit_batch_connect(br->url, err, sizeof err);
    if (!c) qfit_http_respond_error(req, 503, "batch queue unavailable: %s", err);
    return c;
}

static void respond_status(qfit_http_req *req, qfit_batch_client *c, const char *id)
{
    char err[512];
    qfit_batch_status st;
    if (qfit_batch_get_status(c, id, &st, err, sizeof err) != 0) {
        qfit_http_respond_error(req, status_of(c), "%s", err);
        return;
    }
    json_t *j = qfit_batch_status_json(id, &st);
    if (j) qfit_http_respond_json(req, 200, j);
    else qfit_http_respond_error(req, 500, "out of memory");
    json_decref(j);
}

static void h_submit(qfit_http_req *req, void *ctx)
{
    char err[1024];
    size_t len;
    const char *body = qfit_http_req_body(req, &len);
    const char *model = qfit_http_req_query(req, "model"), *ttl = qfit_http_req_query(req, "ttl");
    long ttl_s = 0;
    if (ttl && qfit_batch_parse_ttl(ttl, &ttl_s) != 0) {
        qfit_http_respond_error(req, 400, "ttl '%.64s': a duration such as 3600, 90m, 24h or 7d (1 s to 365 d)", ttl);
        return;
    }
    qfit_batch_input *in = qfit_batch_parse(body ? body : "", body ? len : 0, model && *model ? model : NULL, err,
                                            sizeof err);
    if (!in) {
        qfit_http_respond_error(req, 400, "%s", err);
        return;
    }
    qfit_batch_client *c = connect_or_answer(ctx, req);
    char id[QFIT_BATCH_ID_LEN + 1];
    if (c && qfit_batch_submit(c, in, ttl_s, id, err, sizeof err) != 0) qfit_http_respond_error(req, status_of(c), "%s", err);
    else if (c) {
        json_t *j = json_pack("{s:s, s:I}", "id", id, "total", (json_int_t)in->n);
        if (j) qfit_http_respond_json(req, 200, j);
        else qfit_http_respond_error(req, 500, "out of memory");
        json_decref(j);
    }
    qfit_batch_close(c);
    qfit_batch_input_free(in);
}

static void h_status(qfit_http_req *req, void *ctx)
{
    qfit_batch_client *c = connect_or_answer(ctx, req);
    if (!c) return;
    respond_status(req, c, qfit_http_req_param(req, "id"));
    qfit_batch_close(c);
}

static void h_cancel(qfit_http_req *req, void *ctx)
{
    qfit_batch_client *c = connect_or_answer(ctx, req);
    if (!c) return;
    char err[512];
    const char *id = qfit_http_req_param(req, "id");
    if (qfit_batch_cancel(c, id, err, sizeof err) != 0) qfit_http_respond_error(req, status_of(c), "%s", err);
    else respond_status(req, c, id);
    qfit_batch_close(c);
}

static void h_results(qfit_http_req *req, void *ctx)
{
    qfit_batch_client *c = connect_or_answer(ctx, req);
    if (!c) return;
    char err[512];
    FILE *f = tmpfile();   /* unlinked at once: nothing is left behind */
    char *buf = NULL;
    long n = -1;
    if (!f) snprintf(err, sizeof err, "no room for a temporary file");
    else if (qfit_batch_results_fd(c, qfit_http_req_param(req, "id"), fileno(f), err, sizeof err) == 0) {
        n = lseek(fileno(f), 0, SEEK_END);
        if (n < 0 || (size_t)n > RESULTS_MAX) {
            snprintf(err, sizeof err, "the results are over %zu MiB: fetch them with qfit batch results -o FILE",
                     RESULTS_MAX >> 20);
            n = -2;
        } else if (!(buf = malloc((size_t)n + 1)) || pread(fileno(f), buf, (size_t)n, 0) != n) {
            snprintf(err, sizeof err, "cannot read the results back");
            n = -1;
        }
    }
    if (n >= 0) qfit_http_respond(req, 200, "application/x-ndjson", buf, (size_t)n);
    else qfit_http_respond_error(req, n == -2 ? 413 : status_of(c), "%s", err);
    free(buf);
    if (f) fclose(f);
    qfit_batch_close(c);
}

qfit_batch_routes *qfit_batch_routes_add(qfit_server *srv, const char *redis_url, char *err, size_t err_len)
{
    qfit_batch_routes *br = calloc(1, sizeof *br);
    if (!br || !(br->url = strdup(redis_url))) {
        free(br);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    const qfit_http_route routes[] = {
        { "POST", "/api/batch", h_submit, br, QFIT_HTTP_MANAGE, 0, NULL },
        { "GET", "/api/batch/:id", h_status, br, QFIT_HTTP_MANAGE, 0, NULL },
        { "GET", "/api/batch/:id/results", h_results, br, QFIT_HTTP_MANAGE, 0, NULL },
        { "DELETE", "/api/batch/:id", h_cancel, br, QFIT_HTTP_MANAGE, 0, NULL },
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (qfit_server_route(srv, &routes[i], err, err_len) != 0) {
            qfit_batch_routes_free(br);
            return NULL;
        }
    return br;
}

void qfit_batch_routes_free(qfit_batch_routes *br)
{
    if (!br) return;
    free(br->url);
    free(br);
}
