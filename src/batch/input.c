/* The JSONL input of a batch: every line checked before anything is queued
 * (contract: include/qfit/batch.h). Bounded: a line is at most QFIT_BATCH_MAX_LINE
 * bytes, jansson's parser limits the nesting depth, a file at most
 * QFIT_BATCH_MAX_JOBS lines; duplicate custom_ids are found by sorting. */
#include "qfit/batch.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ENDPOINTS[] = {
    "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/api/generate", "/api/chat", "/api/embed",
};
#define N_ENDPOINTS (sizeof ENDPOINTS / sizeof ENDPOINTS[0])

bool qfit_batch_url_allowed(const char *url)
{
    for (size_t e = 0; e < N_ENDPOINTS; e++)
        if (!strcmp(url, ENDPOINTS[e])) return true;
    return false;
}

static int fail(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return -1;
}

/* A model name: printable ASCII or UTF-8, no spaces or control characters. */
static bool model_name_ok(const char *s, size_t n)
{
    if (!n || n > QFIT_BATCH_MAX_MODEL) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f) return false;
    return true;
}

void qfit_batch_job_clear(qfit_batch_job *job)
{
    if (!job) return;
    free(job->custom_id);
    free(job->url);
    free(job->model);
    free(job->body);
    memset(job, 0, sizeof *job);
}

int qfit_batch_parse_line(const char *line, size_t len, const char *default_model, qfit_batch_job *job,
                          char *err, size_t err_len)
{
    memset(job, 0, sizeof *job);
    if (len && line[len - 1] == '\r') len--;
    if (len > QFIT_BATCH_MAX_LINE)
        return fail(err, err_len, "line too long: %zu bytes, the limit is %u", len, QFIT_BATCH_MAX_LINE);
    if (!len) return fail(err, err_len, "empty line (one JSON request per line)");
    json_error_t je;
    json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) return fail(err, err_len, "column %d: invalid JSON: %s", je.column, je.text);
    int rc = -1;
    const char *key;
    json_t *v;
    if (!json_is_object(j)) { fail(err, err_len, "not a JSON object"); goto out; }
    json_object_foreach(j, key, v) {
        if (strcmp(key, "custom_id") && strcmp(key, "method") && strcmp(key, "url") && strcmp(key, "body")) {
            fail(err, err_len, "unknown field '%.64s' (a line has custom_id, method, url and body)", key);
            goto out;
        }
    }
    json_t *cid = json_object_get(j, "custom_id"), *method = json_object_get(j, "method");
    json_t *url = json_object_get(j, "url"), *body = json_object_get(j, "body");
    if (!json_is_string(cid) || !json_string_length(cid) || json_string_length(cid) > QFIT_BATCH_MAX_CUSTOM_ID) {
        fail(err, err_len, "field 'custom_id': %s", !cid ? "missing" : !json_is_string(cid) ? "must be a string"
                          : !json_string_length(cid) ? "must not be empty" : "longer than 512 bytes");
        goto out;
    }
    if (!json_is_string(method) || strcmp(json_string_value(method), "POST") != 0) {
        fail(err, err_len, "field 'method': %s", !method ? "missing" : "must be \"POST\"");
        goto out;
    }
    size_t e = N_ENDPOINTS;
    if (json_is_string(url))
        for (e = 0; e < N_ENDPOINTS && strcmp(json_string_value(url), ENDPOINTS[e]) != 0; e++) {}
    if (e == N_ENDPOINTS) {
        fail(err, err_len, "field 'url': %s%.64s%s is not a batch endpoint (/v1/chat/completions, /v1/completions, "
             "/v1/embeddings, /api/generate, /api/chat, /api/embed)", json_is_string(url) ? "'" : "",
             !url ? "missing" : json_is_string(url) ? json_string_value(url) : "a non-string",
             json_is_string(url) ? "'" : "");
        goto out;
    }
    if (!json_is_object(body)) {
        fail(err, err_len, "field 'body': %s", body ? "must be a JSON object" : "missing");
        goto out;
    }
    json_t *model = json_object_get(body, "model");
    if (model && !json_is_string(model)) { fail(err, err_len, "field 'body.model': must be a string"); goto out; }
    const char *m = model ? json_string_value(model) : default_model;
    if (!m) { fail(err, err_len, "field 'body.model': missing (and no default model given: --model)"); goto out; }
    if (!model_name_ok(m, strlen(m))) {
        fail(err, err_len, "field 'body.model': '%.64s' is not a model name (1-%d bytes, no spaces or control "
             "characters)", m, QFIT_BATCH_MAX_MODEL);
        goto out;
    }
    if (!model && json_object_set_new(body, "model", json_string(m)) != 0) {
        fail(err, err_len, "out of memory");
        goto out;
    }
    job->custom_id = strdup(json_string_value(cid));
    job->url = strdup(ENDPOINTS[e]);
    job->model = strdup(m);
    job->body = json_dumps(body, JSON_COMPACT);
    if (!job->custom_id || !job->url || !job->model || !job->body) {
        qfit_batch_job_clear(job);
        fail(err, err_len, "out of memory");
        goto out;
    }
    rc = 0;
out:
    json_decref(j);
    return rc;
}

void qfit_batch_input_free(qfit_batch_input *in)
{
    if (!in) return;
    for (size_t i = 0; i < in->n; i++) qfit_batch_job_clear(&in->jobs[i]);
    free(in->jobs);
    free(in);
}

/* a job's custom_id and line index; sorted by id, then index (qsort, no context: the
 * context-taking qsort_r differs between glibc and the BSDs / macOS) */
typedef struct {
    const char *id;
    size_t ix;
} id_line;

static int by_custom_id(const void *a, const void *b)
{
    const id_line *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->ix > y->ix) - (x->ix < y->ix);
}

/* The first (in file order) line whose custom_id an earlier line has: 0 when none. */
static int check_unique(const qfit_batch_input *in, char *err, size_t err_len)
{
    id_line *ix = malloc(in->n * sizeof *ix);
    if (!ix) return fail(err, err_len, "out of memory");
    for (size_t i = 0; i < in->n; i++) ix[i] = (id_line){in->jobs[i].custom_id, i};
    qsort(ix, in->n, sizeof *ix, by_custom_id);
    size_t worst = SIZE_MAX, first = 0;
    for (size_t i = 1; i < in->n; i++)
        if (!strcmp(ix[i].id, ix[i - 1].id) && ix[i].ix < worst) {
            size_t k = i;
            while (k > 0 && !strcmp(ix[k - 1].id, ix[i].id)) k--;
            worst = ix[i].ix;
            first = ix[k].ix;
        }
    free(ix);
    if (worst == SIZE_MAX) return 0;
    return fail(err, err_len, "line %zu: field 'custom_id': '%.64s' is already used on line %zu", worst + 1,
                in->jobs[worst].custom_id, first + 1);
}

qfit_batch_input *qfit_batch_parse(const char *data, size_t len, const char *default_model,
                                   char *err, size_t err_len)
{
    qfit_batch_input *in = calloc(1, sizeof *in);
    size_t cap = 0;
    if (!in) { fail(err, err_len, "out of memory"); return NULL; }
    size_t pos = 0, lineno = 0;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : len - pos;
        lineno++;
        if (in->n == QFIT_BATCH_MAX_JOBS) {
            fail(err, err_len, "line %zu: more than %d requests in one batch", lineno, QFIT_BATCH_MAX_JOBS);
            goto bad;
        }
        if (in->n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            qfit_batch_job *nj = realloc(in->jobs, nc * sizeof *nj);
            if (!nj) { fail(err, err_len, "out of memory"); goto bad; }
            in->jobs = nj;
            cap = nc;
        }
        char msg[512];
        if (qfit_batch_parse_line(data + pos, n, default_model, &in->jobs[in->n], msg, sizeof msg) != 0) {
            fail(err, err_len, "line %zu%s%s", lineno, strncmp(msg, "column ", 7) ? ": " : ", ", msg);
            goto bad;
        }
        in->n++;
        pos += n + (nl ? 1 : 0);
    }
    if (!in->n) { fail(err, err_len, "no requests: the file is empty"); goto bad; }
    if (check_unique(in, err, err_len) != 0) goto bad;
    return in;
bad:
    qfit_batch_input_free(in);
    return NULL;
}
