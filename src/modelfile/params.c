/* Typed model parameters: Ollama's options table, string and JSON parsing,
 * merge, and the message helpers of the module. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelfile/mf_internal.h"

/* Ollama api/types.go `Options` + `Runner` (json tags and Go types). */
static const struct {
    const char     *name;
    qfit_param_type type;
} OPTIONS[] = {
    { "num_ctx", QFIT_PARAM_INT },          { "num_batch", QFIT_PARAM_INT },
    { "num_gpu", QFIT_PARAM_INT },          { "main_gpu", QFIT_PARAM_INT },
    { "use_mmap", QFIT_PARAM_BOOL },        { "num_thread", QFIT_PARAM_INT },
    { "draft_num_predict", QFIT_PARAM_INT }, { "num_keep", QFIT_PARAM_INT },
    { "seed", QFIT_PARAM_INT },             { "num_predict", QFIT_PARAM_INT },
    { "top_k", QFIT_PARAM_INT },            { "top_p", QFIT_PARAM_FLOAT },
    { "min_p", QFIT_PARAM_FLOAT },          { "typical_p", QFIT_PARAM_FLOAT },
    { "repeat_last_n", QFIT_PARAM_INT },    { "temperature", QFIT_PARAM_FLOAT },
    { "repeat_penalty", QFIT_PARAM_FLOAT }, { "presence_penalty", QFIT_PARAM_FLOAT },
    { "frequency_penalty", QFIT_PARAM_FLOAT }, { "stop", QFIT_PARAM_STRINGS },
};

/* Ollama parser/parser.go `deprecatedParameters`: warned about and skipped. */
static const char *const DEPRECATED[] = {
    "penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only",
    "use_mlock", "mirostat", "mirostat_tau", "mirostat_eta",
};

struct qfit_params {
    qfit_param *e;
    size_t      n, cap;
};

/* ------------------------------------------------------------ helpers */

void mf_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

int mf_warn(qfit_warnings *w, const char *fmt, ...)
{
    if (!w) return 0;
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4;
        char **m = realloc(w->msgs, cap * sizeof *m);
        if (!m) return -1;
        w->msgs = m;
        w->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    w->msgs[w->count++] = s;
    return 0;
}

void qfit_warnings_free(qfit_warnings *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->count; i++) free(w->msgs[i]);
    free(w->msgs);
    w->msgs = NULL;
    w->count = w->cap = 0;
}

void *mf_grow(void *arr, size_t n, size_t elem)
{
    if (n != 0 && (n & (n - 1)) != 0) return arr;
    return realloc(arr, (n ? 2 * n : 1) * elem);
}

char *mf_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static const char *type_name(qfit_param_type t)
{
    switch (t) {
    case QFIT_PARAM_INT: return "integer";
    case QFIT_PARAM_FLOAT: return "float32";
    case QFIT_PARAM_BOOL: return "boolean";
    default: return "array";
    }
}

/* Index into OPTIONS, -2 for a deprecated name, -1 for an unknown one. */
static int find_option(const char *name)
{
    for (size_t i = 0; i < sizeof OPTIONS / sizeof OPTIONS[0]; i++)
        if (strcmp(OPTIONS[i].name, name) == 0) return (int)i;
    for (size_t i = 0; i < sizeof DEPRECATED / sizeof DEPRECATED[0]; i++)
        if (strcmp(DEPRECATED[i], name) == 0) return -2;
    return -1;
}

int qfit_params_lookup(const char *name, qfit_param_type *type)
{
    int i = find_option(name);
    if (i >= 0 && type) *type = OPTIONS[i].type;
    return i >= 0 ? 1 : i == -2 ? 0 : -1;
}

/* ------------------------------------------------------- the collection */

qfit_params *qfit_params_new(void)
{
    return calloc(1, sizeof(qfit_params));
}

static void clear_strs(qfit_param *e)
{
    for (size_t i = 0; i < e->nstrs; i++) free(e->strs[i]);
    free(e->strs);
    e->strs = NULL;
    e->nstrs = 0;
}

void qfit_params_free(qfit_params *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) clear_strs(&p->e[i]);
    free(p->e);
    free(p);
}

size_t qfit_params_count(const qfit_params *p) { return p->n; }

const qfit_param *qfit_params_at(const qfit_params *p, size_t i)
{
    return i < p->n ? &p->e[i] : NULL;
}

const qfit_param *qfit_params_get(const qfit_params *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->e[i].name, name) == 0) return &p->e[i];
    return NULL;
}

/* The entry for option index oi, appended (zeroed) when absent; NULL when out of memory. */
static qfit_param *slot(qfit_params *p, int oi)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->e[i].name == OPTIONS[oi].name) return &p->e[i];
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        qfit_param *e = realloc(p->e, cap * sizeof *e);
        if (!e) return NULL;
        p->e = e;
        p->cap = cap;
    }
    qfit_param *e = &p->e[p->n++];
    memset(e, 0, sizeof *e);
    e->name = OPTIONS[oi].name;
    e->type = OPTIONS[oi].type;
    return e;
}

static int append_str(qfit_param *e, const char *s, char *err, size_t err_len)
{
    if (e->nstrs >= QFIT_PARAMS_MAX_STOP) {
        mf_err(err, err_len, "too many %s values (at most %u)", e->name, QFIT_PARAMS_MAX_STOP);
        return -1;
    }
    char **v = mf_grow(e->strs, e->nstrs, sizeof *v);
    if (!v) goto oom;
    e->strs = v;
    if (!(v[e->nstrs] = mf_strdup(s))) goto oom;
    e->nstrs++;
    return 0;
oom:
    mf_err(err, err_len, "out of memory");
    return -1;
}

/* Copy src's value into dst (same option); the stop list is replaced. */
static int copy_value(qfit_param *dst, const qfit_param *src, char *err, size_t err_len)
{
    clear_strs(dst);
    dst->i = src->i;
    dst->f = src->f;
    dst->b = src->b;
    for (size_t k = 0; k < src->nstrs; k++)
        if (append_str(dst, src->strs[k], err, err_len) < 0) return -1;
    return 0;
}

qfit_params *qfit_params_clone(const qfit_params *p)
{
    qfit_params *c = qfit_params_new();
    if (!c || qfit_params_merge(c, p, NULL, 0) < 0) {
        qfit_params_free(c);
        return NULL;
    }
    return c;
}

int qfit_params_merge(qfit_params *dst, const qfit_params *src, char *err, size_t err_len)
{
    for (size_t i = 0; i < src->n; i++) {
        qfit_param *d = slot(dst, find_option(src->e[i].name));
        if (!d) {
            mf_err(err, err_len, "out of memory");
            return -1;
        }
        if (copy_value(d, &src->e[i], err, err_len) < 0) return -1;
    }
    return 0;
}

/* An empty stop list is the same as none: a Modelfile cannot say "stop: []". */
static bool is_empty_list(const qfit_param *e) { return e->type == QFIT_PARAM_STRINGS && e->nstrs == 0; }

static bool same_value(const qfit_param *x, const qfit_param *y)
{
    if (strcmp(x->name, y->name) != 0 || x->type != y->type) return false;
    switch (x->type) {
    case QFIT_PARAM_INT: return x->i == y->i;
    case QFIT_PARAM_FLOAT: return memcmp(&x->f, &y->f, sizeof x->f) == 0;   /* bitwise: -0 != 0; NaN never stored */
    case QFIT_PARAM_BOOL: return x->b == y->b;
    case QFIT_PARAM_STRINGS:
        if (x->nstrs != y->nstrs) return false;
        for (size_t k = 0; k < x->nstrs; k++)
            if (strcmp(x->strs[k], y->strs[k]) != 0) return false;
        return true;
    }
    return false;
}

bool qfit_params_equal(const qfit_params *a, const qfit_params *b)
{
    size_t i = 0, j = 0;
    for (;;) {
        while (i < a->n && is_empty_list(&a->e[i])) i++;
        while (j < b->n && is_empty_list(&b->e[j])) j++;
        if (i == a->n || j == b->n) return i == a->n && j == b->n;
        if (!same_value(&a->e[i++], &b->e[j++])) return false;
    }
}

/* ------------------------------------------------------ value parsing */

/* Go strconv.ParseInt(s, 10, 64): optional sign, decimal digits, in range. */
static int parse_int(const char *s, int64_t *out)
{
    const char *q = s;
    bool neg = false;
    if (*q == '+' || *q == '-') neg = *q++ == '-';
    if (*q == '\0') return -1;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
    for (; *q; q++) {
        if (*q < '0' || *q > '9') return -1;
        unsigned d = (unsigned)(*q - '0');
        if (v > (limit - d) / 10) return -2;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* A decimal float32: [+-](digits[.digits]|.digits)([eE][+-]digits)?, finite. */
static int parse_float(const char *s, float *out)
{
    const char *q = s;
    if (*q == '+' || *q == '-') q++;
    size_t digits = 0;
    while (*q >= '0' && *q <= '9') q++, digits++;
    if (*q == '.') {
        q++;
        while (*q >= '0' && *q <= '9') q++, digits++;
    }
    if (digits == 0) return -1;
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-') q++;
        if (!(*q >= '0' && *q <= '9')) return -1;
        while (*q >= '0' && *q <= '9') q++;
    }
    if (*q != '\0') return -1;
    errno = 0;
    float f = strtof(s, NULL);
    if (isinf(f)) return -2;   /* beyond float32; underflow to 0/subnormal is accepted, as in Go */
    *out = f;
    return 0;
}

/* Go strconv.ParseBool. */
static int parse_bool(const char *s, bool *out)
{
    static const char *const T[] = { "1", "t", "T", "TRUE", "true", "True" };
    static const char *const F[] = { "0", "f", "F", "FALSE", "false", "False" };
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(s, T[i]) == 0) return *out = true, 0;
        if (strcmp(s, F[i]) == 0) return *out = false, 0;
    }
    return -1;
}

int qfit_params_set_string(qfit_params *p, const char *name, const char *value,
                           qfit_warnings *w, char *err, size_t err_len)
{
    int oi = find_option(name);
    if (oi == -2) {
        if (mf_warn(w, "parameter %s is deprecated and ignored", name) < 0) goto oom;
        return 0;
    }
    if (oi < 0) {
        mf_err(err, err_len, "unknown parameter '%s'", name);
        return -1;
    }
    qfit_param v = { 0 };
    int rc = 0;
    switch (OPTIONS[oi].type) {
    case QFIT_PARAM_INT: rc = parse_int(value, &v.i); break;
    case QFIT_PARAM_FLOAT: rc = parse_float(value, &v.f); break;
    case QFIT_PARAM_BOOL: rc = parse_bool(value, &v.b); break;
    case QFIT_PARAM_STRINGS: break;
    }
    if (rc < 0) {
        const char *what = OPTIONS[oi].type == QFIT_PARAM_INT ? "int" : OPTIONS[oi].type == QFIT_PARAM_FLOAT ? "float" : "bool";
        mf_err(err, err_len, "invalid %s value for %s: '%s'%s", what, name, value,
               rc == -2 ? " (out of range)" : OPTIONS[oi].type == QFIT_PARAM_BOOL ? " (expected true or false)" : "");
        return -1;
    }
    qfit_param *e = slot(p, oi);
    if (!e) goto oom;
    if (e->type == QFIT_PARAM_STRINGS) return append_str(e, value, err, err_len) < 0 ? -1 : 1;
    e->i = v.i;
    e->f = v.f;
    e->b = v.b;
    return 1;
oom:
    mf_err(err, err_len, "out of memory");
    return -1;
}

/* Shortest %g text that reads back (strtof) to exactly f. */
static void float_text(float f, char *buf, size_t len)
{
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, len, "%.*g", prec, (double)f);
        float back = strtof(buf, NULL);
        if (memcmp(&back, &f, sizeof f) == 0) return;
    }
}

char *qfit_params_value_text(const qfit_param *e)
{
    char buf[64];
    switch (e->type) {
    case QFIT_PARAM_INT: snprintf(buf, sizeof buf, "%lld", (long long)e->i); break;
    case QFIT_PARAM_FLOAT: float_text(e->f, buf, sizeof buf); break;
    case QFIT_PARAM_BOOL: snprintf(buf, sizeof buf, "%s", e->b ? "true" : "false"); break;
    default: return NULL;
    }
    return mf_strdup(buf);
}

/* ---------------------------------------------------------------- JSON */

json_t *qfit_params_to_json(const qfit_params *p)
{
    json_t *o = json_object();
    if (!o) return NULL;
    for (size_t i = 0; i < p->n; i++) {
        const qfit_param *e = &p->e[i];
        json_t *v = NULL;
        char buf[64];
        switch (e->type) {
        case QFIT_PARAM_INT: v = json_integer(e->i); break;
        case QFIT_PARAM_FLOAT:
            float_text(e->f, buf, sizeof buf);
            v = json_real(strtod(buf, NULL));
            break;
        case QFIT_PARAM_BOOL: v = json_boolean(e->b); break;
        case QFIT_PARAM_STRINGS:
            v = json_array();
            for (size_t k = 0; v && k < e->nstrs; k++)
                if (json_array_append_new(v, json_string(e->strs[k])) < 0) {
                    json_decref(v);
                    v = NULL;
                }
            break;
        }
        if (!v || json_object_set_new(o, e->name, v) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* One JSON value into e; 0 or -1. */
static int json_value(qfit_param *e, const json_t *v, char *err, size_t err_len)
{
    switch (e->type) {
    case QFIT_PARAM_INT:
        if (json_is_integer(v)) {
            e->i = json_integer_value(v);
            return 0;
        }
        if (json_is_real(v)) {
            double d = json_real_value(v);
            /* integral and inside int64 (2^63 is exactly representable) */
            if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
                e->i = (int64_t)d;
                return 0;
            }
            mf_err(err, err_len, "option \"%s\" must be an integer, got %.17g", e->name, d);
            return -1;
        }
        break;
    case QFIT_PARAM_FLOAT:
        if (json_is_number(v)) {
            double d = json_number_value(v);
            if (!(fabs(d) <= FLT_MAX)) {
                mf_err(err, err_len, "option \"%s\" value %g is out of range for float32", e->name, d);
                return -1;
            }
            e->f = (float)d;
            return 0;
        }
        break;
    case QFIT_PARAM_BOOL:
        if (json_is_boolean(v)) {
            e->b = json_is_true(v);
            return 0;
        }
        break;
    case QFIT_PARAM_STRINGS:
        if (json_is_array(v)) {
            clear_strs(e);
            for (size_t k = 0; k < json_array_size(v); k++) {
                const json_t *s = json_array_get(v, k);
                if (!json_is_string(s)) {
                    mf_err(err, err_len, "option \"%s\" must be an array of strings", e->name);
                    return -1;
                }
                if (strlen(json_string_value(s)) != json_string_length(s)) {
                    mf_err(err, err_len, "option \"%s\" value %zu contains a NUL character", e->name, k);
                    return -1;
                }
                if (append_str(e, json_string_value(s), err, err_len) < 0) return -1;
            }
            return 0;
        }
        break;
    }
    mf_err(err, err_len, "option \"%s\" must be of type %s", e->name, type_name(e->type));
    return -1;
}

qfit_params *qfit_params_from_json(const json_t *obj, qfit_warnings *w, char *err, size_t err_len)
{
    if (!json_is_object(obj)) {
        mf_err(err, err_len, "parameters must be a JSON object");
        return NULL;
    }
    qfit_params *p = qfit_params_new();
    if (!p) goto oom;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        int oi = find_option(key);
        if (oi < 0) {
            if (mf_warn(w, oi == -2 ? "option \"%s\" is deprecated and ignored" : "ignoring unknown option \"%s\"", key) < 0)
                goto oom;
            continue;
        }
        if (json_is_null(v)) continue;   /* Ollama skips null values */
        qfit_param *e = slot(p, oi);
        if (!e) goto oom;
        if (json_value(e, v, err, err_len) < 0) {
            qfit_params_free(p);
            return NULL;
        }
    }
    return p;
oom:
    qfit_params_free(p);
    mf_err(err, err_len, "out of memory");
    return NULL;
}
