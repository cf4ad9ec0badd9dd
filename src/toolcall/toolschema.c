/* A small JSON-schema checker for tool-call arguments.
 *
 * One recursive walk serves two uses: with inst == NULL it only checks that
 * every keyword of the schema is supported and well formed (done once per tool
 * when a parser is created); with an instance it validates it. Keeping both in
 * one function means a keyword cannot be accepted by one and ignored by the
 * other. Recursion is bounded by QFIT_TOOLCALL_MAX_DEPTH.
 */
#include <math.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "qfit/toolcall.h"
#include "toolcall/toolcall_int.h"

/* Keywords that describe and never constrain. */
static const char *const ANNOTATIONS[] = {
    "description", "title", "default", "examples", "format", "$schema", "$comment", "$id", NULL,
};

static bool is_annotation(const char *k)
{
    for (const char *const *a = ANNOTATIONS; *a; a++)
        if (!strcmp(*a, k)) return true;
    return false;
}

typedef struct {
    char  *err;
    size_t err_len;
} ctx;

static int fail(ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(ctx *c, const char *path, const char *fmt, ...)
{
    if (!c->err || !c->err_len) return -1;
    int n = snprintf(c->err, c->err_len, "%s: ", path);
    if (n < 0 || (size_t)n >= c->err_len) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->err_len - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *type_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:  return "object";
    case JSON_ARRAY:   return "array";
    case JSON_STRING:  return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL:    return "number";
    case JSON_TRUE:
    case JSON_FALSE:   return "boolean";
    default:           return "null";
    }
}

static bool known_type(const char *t)
{
    static const char *const T[] = { "object", "array", "string", "number", "integer", "boolean", "null", NULL };
    for (const char *const *p = T; *p; p++)
        if (!strcmp(*p, t)) return true;
    return false;
}

static bool has_type(const json_t *v, const char *t)
{
    if (!strcmp(t, "number")) return json_is_number(v);
    if (!strcmp(t, "integer")) {
        if (json_is_integer(v)) return true;
        if (!json_is_real(v)) return false;
        double d = json_real_value(v);
        return isfinite(d) && d == floor(d); /* 1.0 is an integer in JSON schema */
    }
    return !strcmp(type_of(v), t);
}

static size_t utf8_len(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

/* path + suffix into buf (truncated with "..." if it would not fit). */
static const char *sub_path(char *buf, size_t cap, const char *path, const char *fmt, const char *name, size_t idx)
{
    int n = name ? snprintf(buf, cap, fmt, path, name) : snprintf(buf, cap, fmt, path, idx);
    if (n < 0 || (size_t)n >= cap) snprintf(buf + cap - 4, 4, "...");
    return buf;
}

static int walk(ctx *c, const json_t *s, const json_t *inst, const char *path, int depth);

static int check_count(ctx *c, const json_t *v, const char *path, const char *k)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return fail(c, path, "schema keyword \"%s\" must be a non-negative integer", k);
    return 0;
}

static int walk_type(ctx *c, const json_t *t, const json_t *inst, const char *path)
{
    if (json_is_string(t)) {
        if (!known_type(json_string_value(t)))
            return fail(c, path, "unknown schema type \"%s\"", json_string_value(t));
        if (inst && !has_type(inst, json_string_value(t)))
            return fail(c, path, "expected %s, got %s", json_string_value(t), type_of(inst));
        return 0;
    }
    if (!json_is_array(t) || !json_array_size(t))
        return fail(c, path, "schema \"type\" must be a string or a non-empty array of strings");
    size_t i;
    const json_t *e;
    bool ok = false;
    json_array_foreach(t, i, e) {
        if (!json_is_string(e) || !known_type(json_string_value(e)))
            return fail(c, path, "schema \"type\"[%zu] is not a known type", i);
        if (inst && has_type(inst, json_string_value(e))) ok = true;
    }
    if (inst && !ok) return fail(c, path, "type %s is not one of the allowed types", type_of(inst));
    return 0;
}

static int walk_object(ctx *c, const json_t *s, const json_t *inst, const char *path, int depth)
{
    const json_t *props = json_object_get(s, "properties");
    const json_t *req = json_object_get(s, "required");
    const json_t *addl = json_object_get(s, "additionalProperties");
    char sub[512];
    const char *k;
    const json_t *v;

    if (props && !json_is_object(props)) return fail(c, path, "schema \"properties\" must be an object");
    if (req && !json_is_array(req)) return fail(c, path, "schema \"required\" must be an array");
    if (addl && !json_is_boolean(addl) && !json_is_object(addl))
        return fail(c, path, "schema \"additionalProperties\" must be a boolean or a schema");

    if (!inst) { /* schema check: every subschema */
        json_object_foreach((json_t *)props, k, v)
            if (walk(c, v, NULL, sub_path(sub, sizeof sub, path, "%s.%s", k, 0), depth + 1)) return -1;
        if (json_is_object(addl) && walk(c, addl, NULL, path, depth + 1)) return -1;
        size_t i;
        json_array_foreach(req, i, v)
            if (!json_is_string(v)) return fail(c, path, "schema \"required\"[%zu] is not a string", i);
        return 0;
    }
    if (!json_is_object(inst)) return 0; /* these keywords only constrain objects */

    size_t i;
    json_array_foreach(req, i, v)
        if (!json_object_get(inst, json_string_value(v)))
            return fail(c, path, "missing required property \"%s\"", json_string_value(v));
    json_object_foreach((json_t *)inst, k, v) {
        const json_t *ps = props ? json_object_get(props, k) : NULL;
        const char *sp = sub_path(sub, sizeof sub, path, "%s.%s", k, 0);
        if (ps) {
            if (walk(c, ps, v, sp, depth + 1)) return -1;
        } else if (json_is_false(addl)) {
            return fail(c, path, "property \"%s\" is not allowed (additionalProperties is false)", k);
        } else if (json_is_object(addl)) {
            if (walk(c, addl, v, sp, depth + 1)) return -1;
        }
    }
    return 0;
}

/* anyOf / oneOf / allOf */
static int walk_combinator(ctx *c, const char *k, const json_t *list, const json_t *inst, const char *path, int depth)
{
    if (!json_is_array(list) || !json_array_size(list))
        return fail(c, path, "schema \"%s\" must be a non-empty array of schemas", k);
    size_t i, matched = 0;
    const json_t *e;
    char first[256] = "";
    json_array_foreach(list, i, e) {
        if (!inst) {
            if (walk(c, e, NULL, path, depth + 1)) return -1;
            continue;
        }
        char scratch[256] = "";
        ctx sc = { scratch, sizeof scratch };
        if (walk(&sc, e, inst, path, depth + 1) == 0) {
            matched++;
        } else {
            if (!strcmp(k, "allOf")) return fail(c, path, "allOf[%zu]: %s", i, scratch);
            if (!first[0]) snprintf(first, sizeof first, "%s", scratch);
        }
    }
    if (!inst) return 0;
    if (!strcmp(k, "anyOf") && !matched) return fail(c, path, "matches none of anyOf (first: %s)", first);
    if (!strcmp(k, "oneOf") && matched != 1)
        return matched ? fail(c, path, "matches %zu of oneOf, not exactly one", matched)
                       : fail(c, path, "matches none of oneOf (first: %s)", first);
    return 0;
}

static int walk(ctx *c, const json_t *s, const json_t *inst, const char *path, int depth)
{
    if (depth > QFIT_TOOLCALL_MAX_DEPTH) return fail(c, path, "schema nested deeper than %d", QFIT_TOOLCALL_MAX_DEPTH);
    if (json_is_true(s)) return 0;
    if (json_is_false(s)) return inst ? fail(c, path, "no value is allowed here (schema false)") : 0;
    if (!json_is_object(s)) return fail(c, path, "schema must be an object or a boolean");

    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if (is_annotation(k) || !strcmp(k, "properties") || !strcmp(k, "required") ||
            !strcmp(k, "additionalProperties")) {
            continue; /* the object keywords are handled together below */
        } else if (!strcmp(k, "type")) {
            if (walk_type(c, v, inst, path)) return -1;
        } else if (!strcmp(k, "enum") || !strcmp(k, "const")) {
            bool is_enum = k[0] == 'e';
            if (is_enum && (!json_is_array(v) || !json_array_size(v)))
                return fail(c, path, "schema \"enum\" must be a non-empty array");
            if (!inst) continue;
            bool found = !is_enum && json_equal((json_t *)v, (json_t *)inst);
            size_t i;
            const json_t *e;
            if (is_enum) json_array_foreach(v, i, e) if (json_equal((json_t *)e, (json_t *)inst)) found = true;
            if (!found) {
                char *got = json_dumps(inst, JSON_ENCODE_ANY | JSON_COMPACT);
                int r = fail(c, path, "value %.80s is not %s", got ? got : "?",
                             is_enum ? "one of the enum values" : "the const value");
                free(got);
                return r;
            }
        } else if (!strcmp(k, "items")) {
            if (!json_is_object(v) && !json_is_boolean(v))
                return fail(c, path, "schema \"items\" must be a schema (tuple form is not supported)");
            if (!inst) {
                if (walk(c, v, NULL, path, depth + 1)) return -1;
            } else if (json_is_array(inst)) {
                size_t i;
                const json_t *e;
                char sub[512];
                json_array_foreach(inst, i, e)
                    if (walk(c, v, e, sub_path(sub, sizeof sub, path, "%s[%zu]", NULL, i), depth + 1)) return -1;
            }
        } else if (!strcmp(k, "minItems") || !strcmp(k, "maxItems") ||
                   !strcmp(k, "minLength") || !strcmp(k, "maxLength")) {
            if (check_count(c, v, path, k)) return -1;
            bool items = k[3] == 'I';
            if (!inst || (items ? !json_is_array(inst) : !json_is_string(inst))) continue;
            size_t n = items ? json_array_size(inst) : utf8_len(json_string_value(inst), json_string_length(inst));
            json_int_t lim = json_integer_value(v);
            bool is_min = k[1] == 'i';
            if (is_min ? (json_int_t)n < lim : (json_int_t)n > lim)
                return fail(c, path, "%s %zu is %s than %s %lld", items ? "array length" : "string length", n,
                            is_min ? "less" : "more", k, (long long)lim);
        } else if (!strcmp(k, "minimum") || !strcmp(k, "maximum") ||
                   !strcmp(k, "exclusiveMinimum") || !strcmp(k, "exclusiveMaximum")) {
            if (!json_is_number(v)) return fail(c, path, "schema keyword \"%s\" must be a number", k);
            if (!inst || !json_is_number(inst)) continue;
            double x = json_number_value(inst), lim = json_number_value(v);
            bool excl = k[0] == 'e';
            bool is_min = strstr(k, "inimum") != NULL;
            bool bad = is_min ? (excl ? x <= lim : x < lim) : (excl ? x >= lim : x > lim);
            if (bad) return fail(c, path, "%g violates %s %g", x, k, lim);
        } else if (!strcmp(k, "anyOf") || !strcmp(k, "oneOf") || !strcmp(k, "allOf")) {
            if (walk_combinator(c, k, v, inst, path, depth)) return -1;
        } else {
            return fail(c, path, "unsupported schema keyword \"%s\"", k);
        }
    }
    return walk_object(c, s, inst, path, depth);
}

int tc_schema_check(const json_t *schema, const char *path, char *err, size_t err_len)
{
    ctx c = { err, err_len };
    return walk(&c, schema, NULL, path, 0);
}

int qfit_toolcall_validate(const json_t *schema, const json_t *args, char *err, size_t err_len)
{
    ctx c = { err, err_len };
    if (!schema || !args) return fail(&c, "arguments", "no schema or no value");
    if (walk(&c, schema, NULL, "arguments", 0)) return -1;
    return walk(&c, schema, args, "arguments", 0);
}
