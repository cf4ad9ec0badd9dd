/* Go text/template: the values Ollama gives its templates (internal to src/template).
 *
 * Ollama executes templates over Go structs (template/template.go: templateMessage,
 * templateToolCall, templateTool, api.ToolProperty ...) inside a map[string]any. Their look in a
 * template depends on the Go type: .Function.Arguments prints as JSON (a String method), a
 * struct without one prints as "{a b c}", a map as "map[k:v]", a missing map key as
 * "<no value>". This file describes those types as data (gt_type) over the JSON input and
 * implements, once, what Go does with any of them: field access, len/index/range, truth,
 * fmt's %v printing and encoding/json's Marshal (sorted map keys, HTML-safe escapes).
 */
#include "template/gotmpl_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- the types */

const gt_type gt_t_string = { .kind = GK_STRING, .go_name = "string" };
const gt_type gt_t_bool = { .kind = GK_BOOL, .go_name = "bool" };
const gt_type gt_t_int = { .kind = GK_INT, .go_name = "int" };
const gt_type gt_t_any = { .kind = GK_ANY, .go_name = "interface {}" };

#define NF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const gt_type t_strings = { .kind = GK_SLICE, .go_name = "[]string", .elem = &gt_t_string };
static const gt_type t_any_slice = { .kind = GK_SLICE, .go_name = "[]interface {}", .elem = &gt_t_any };
static const gt_type t_any_map = { .kind = GK_MAP, .go_name = "map[string]interface {}", .elem = &gt_t_any };
static const gt_type t_args = { .kind = GK_MAP, .go_name = "template.templateArgs", .elem = &gt_t_any,
                                .stringer = GS_JSON_NIL_EMPTY };
static const gt_type t_proptype = { .kind = GK_PROPTYPE, .go_name = "api.PropertyType" };
static const gt_type t_prop_ordered = { .kind = GK_PROPMAP, .go_name = "*api.ToolPropertiesMap",
                                        .elem = &gt_t_tool_property };
static const gt_type t_prop_list = { .kind = GK_SLICE, .go_name = "[]api.ToolProperty",
                                     .elem = &gt_t_tool_property };

static const gt_field prop_fields[] = {
    { "AnyOf", "anyOf", "anyOf", true, &t_prop_list },
    { "Type", "type", "type", true, &t_proptype },
    { "Items", "items", "items", true, &gt_t_any },
    { "Description", "description", "description", true, &gt_t_string },
    { "Enum", "enum", "enum", true, &t_any_slice },
    { "Properties", "properties", "properties", true, &t_prop_ordered },
    { "Required", "required", "required", true, &t_strings },
};
const gt_type gt_t_tool_property = { .kind = GK_STRUCT, .go_name = "api.ToolProperty", .fields = prop_fields,
                                     .nfields = NF(prop_fields), .ts_method = true };
static const gt_type t_properties = { .kind = GK_MAP, .go_name = "template.templateProperties",
                                      .elem = &gt_t_tool_property, .stringer = GS_JSON_NIL_EMPTY };

static const gt_field params_fields[] = {
    { "Type", "type", "type", false, &gt_t_string },
    { "Defs", "$defs", "$defs", true, &gt_t_any },
    { "Items", "items", "items", true, &gt_t_any },
    { "Required", "required", "required", true, &t_strings },
    { "Properties", "properties", "properties", false, &t_properties },
};
static const gt_type t_params = { .kind = GK_STRUCT, .go_name = "template.templateToolFunctionParameters",
                                  .fields = params_fields, .nfields = NF(params_fields) };
static const gt_field toolfn_fields[] = {
    { "Name", "name", "name", false, &gt_t_string },
    { "Description", "description", "description", false, &gt_t_string },
    { "Parameters", "parameters", "parameters", false, &t_params },
};
static const gt_type t_toolfn = { .kind = GK_STRUCT, .go_name = "template.templateToolFunction",
                                  .fields = toolfn_fields, .nfields = NF(toolfn_fields) };
static const gt_field tool_fields[] = {
    { "Type", "type", "type", false, &gt_t_string },
    { "Items", "items", "items", true, &gt_t_any },
    { "Function", "function", "function", false, &t_toolfn },
};
static const gt_type t_tool = { .kind = GK_STRUCT, .go_name = "template.templateTool", .fields = tool_fields,
                                .nfields = NF(tool_fields), .stringer = GS_JSON };
const gt_type gt_t_tools = { .kind = GK_SLICE, .go_name = "template.templateTools", .elem = &t_tool,
                             .stringer = GS_JSON };

static const gt_field callfn_fields[] = {
    { "Index", "index", NULL, false, &gt_t_int },
    { "Name", "name", NULL, false, &gt_t_string },
    { "Arguments", "arguments", NULL, false, &t_args },
};
static const gt_type t_callfn = { .kind = GK_STRUCT, .go_name = "template.templateToolCallFunction",
                                  .fields = callfn_fields, .nfields = NF(callfn_fields) };
static const gt_field call_fields[] = {
    { "ID", "id", NULL, false, &gt_t_string },
    { "Function", "function", NULL, false, &t_callfn },
};
static const gt_type t_call = { .kind = GK_STRUCT, .go_name = "template.templateToolCall",
                                .fields = call_fields, .nfields = NF(call_fields) };
static const gt_type t_calls = { .kind = GK_SLICE, .go_name = "[]template.templateToolCall", .elem = &t_call };
static const gt_type t_image = { .kind = GK_BYTES, .go_name = "api.ImageData" };
static const gt_type t_images = { .kind = GK_SLICE, .go_name = "[]api.ImageData", .elem = &t_image };

static const gt_field msg_fields[] = {
    { "Role", "role", NULL, false, &gt_t_string },
    { "Content", "content", NULL, false, &gt_t_string },
    { "Thinking", "thinking", NULL, false, &gt_t_string },
    { "Images", "images", NULL, false, &t_images },
    { "ToolCalls", "tool_calls", NULL, false, &t_calls },
    { "ToolName", "tool_name", NULL, false, &gt_t_string },
    { "ToolCallID", "tool_call_id", NULL, false, &gt_t_string },
};
static const gt_type t_msg = { .kind = GK_STRUCT, .go_name = "*template.templateMessage", .fields = msg_fields,
                               .nfields = NF(msg_fields), .ptr = true };
const gt_type gt_t_messages = { .kind = GK_SLICE, .go_name = "[]*template.templateMessage", .elem = &t_msg };

/* The keys Ollama puts in its map[string]any (which ones depends on the mode). */
static const gt_field values_fields[] = {
    { "System", "System", NULL, false, &gt_t_string },
    { "Messages", "Messages", NULL, false, &gt_t_messages },
    { "Tools", "Tools", NULL, false, &gt_t_tools },
    { "Prompt", "Prompt", NULL, false, &gt_t_string },
    { "Suffix", "Suffix", NULL, false, &gt_t_string },
    { "Response", "Response", NULL, false, &gt_t_string },
    { "Think", "Think", NULL, false, &gt_t_bool },
    { "ThinkLevel", "ThinkLevel", NULL, false, &gt_t_string },
    { "IsThinkSet", "IsThinkSet", NULL, false, &gt_t_bool },
};
const gt_type gt_t_values = { .kind = GK_VALUES, .go_name = "map[string]interface {}", .fields = values_fields,
                              .nfields = NF(values_fields) };

/* ------------------------------------------------------------ constructors */

gt_val gt_invalid(void) { return (gt_val){ .k = GV_INVALID }; }
gt_val gt_nil(void) { return (gt_val){ .k = GV_NIL }; }
gt_val gt_bool(bool b) { return (gt_val){ .k = GV_BOOL, .b = b }; }
gt_val gt_int(int64_t i) { return (gt_val){ .k = GV_INT, .i = i }; }
gt_val gt_str(const char *s, size_t n) { return (gt_val){ .k = GV_STRING, .s = s, .n = n }; }
gt_val gt_typed(const gt_type *t, const json_t *j) { return (gt_val){ .k = GV_TYPED, .t = t, .j = j }; }

int gt_verr(gt_vctx *c, const char *fmt, ...)
{
    if (c->failed) return -1;
    c->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->err_len, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY:  return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static int want(gt_vctx *c, const char *what, const char *expected, const json_t *j)
{
    return gt_verr(c, "%s: expected %s, got %s", what, expected, json_kind(j));
}

int gt_from_json(gt_vctx *c, const gt_type *t, const json_t *j, const char *what, gt_val *out)
{
    if (j && json_is_null(j)) j = NULL; /* Go's decoder leaves the zero value for null */
    switch (t->kind) {
    case GK_STRING:
        if (!j) *out = gt_str("", 0);
        else if (json_is_string(j)) *out = gt_str(json_string_value(j), json_string_length(j));
        else return want(c, what, "a string", j);
        return 0;
    case GK_BOOL:
        if (!j) *out = gt_bool(false);
        else if (json_is_boolean(j)) *out = gt_bool(json_is_true(j));
        else return want(c, what, "a boolean", j);
        return 0;
    case GK_INT:
        if (!j) *out = gt_int(0);
        else if (json_is_integer(j)) *out = gt_int(json_integer_value(j));
        else return want(c, what, "an integer", j);
        return 0;
    case GK_ANY:
        if (!j) *out = gt_nil();
        else if (json_is_string(j)) *out = gt_str(json_string_value(j), json_string_length(j));
        else if (json_is_integer(j)) *out = (gt_val){ .k = GV_FLOAT, .f = (double)json_integer_value(j) };
        else if (json_is_real(j)) *out = (gt_val){ .k = GV_FLOAT, .f = json_real_value(j) };
        else if (json_is_boolean(j)) *out = gt_bool(json_is_true(j));
        else if (json_is_object(j)) *out = gt_typed(&t_any_map, j);
        else *out = gt_typed(&t_any_slice, j);
        return 0;
    case GK_SLICE:
        if (j && !json_is_array(j)) return want(c, what, "an array", j);
        *out = gt_typed(t, j);
        return 0;
    case GK_PROPTYPE:
        if (j && !json_is_string(j) && !json_is_array(j)) return want(c, what, "a string or an array", j);
        if (j && json_is_array(j))
            for (size_t i = 0; i < json_array_size(j); i++)
                if (!json_is_string(json_array_get(j, i))) return want(c, what, "strings", json_array_get(j, i));
        *out = gt_typed(t, j);
        return 0;
    case GK_BYTES:
        if (j && !json_is_string(j)) return want(c, what, "a base64 string", j);
        *out = gt_typed(t, j);
        return 0;
    case GK_MAP: case GK_STRUCT: case GK_VALUES: case GK_PROPMAP:
        if (j && !json_is_object(j)) return want(c, what, "an object", j);
        *out = gt_typed(t, j);
        return 0;
    }
    return gt_verr(c, "%s: unsupported type", what);
}

/* ------------------------------------------------------------ access */

bool gt_is_map(gt_val v)
{
    return v.k == GV_TYPED && (v.t->kind == GK_MAP || v.t->kind == GK_VALUES);
}

bool gt_is_slice(gt_val v)
{
    return v.k == GV_TYPED && (v.t->kind == GK_SLICE || v.t->kind == GK_PROPTYPE);
}

const char *gt_type_name(gt_val v)
{
    switch (v.k) {
    case GV_INVALID: return "<invalid>";
    case GV_NIL:     return "interface {}";
    case GV_BOOL:    return "bool";
    case GV_INT:     return v.u8 ? "uint8" : "int";
    case GV_FLOAT:   return "float64";
    case GV_STRING:  return "string";
    default:         return v.t->go_name;
    }
}

int64_t gt_len(gt_vctx *c, gt_val v)
{
    (void)c;
    if (v.k == GV_STRING) return (int64_t)v.n;
    if (v.k != GV_TYPED) return -1;
    switch (v.t->kind) {
    case GK_SLICE:    return v.j ? (int64_t)json_array_size(v.j) : 0;
    case GK_MAP: case GK_VALUES: return v.j ? (int64_t)json_object_size(v.j) : 0;
    case GK_PROPTYPE: return !v.j ? 0 : json_is_string(v.j) ? 1 : (int64_t)json_array_size(v.j);
    default:          return -1;
    }
}

static const gt_field *field_of(const gt_type *t, const char *name)
{
    for (int i = 0; i < t->nfields; i++)
        if (!strcmp(t->fields[i].name, name)) return &t->fields[i];
    return NULL;
}

static const gt_field *field_by_key(const gt_type *t, const char *key)
{
    for (int i = 0; i < t->nfields; i++)
        if (!strcmp(t->fields[i].key, key)) return &t->fields[i];
    return NULL;
}

int gt_index(gt_vctx *c, gt_val v, int64_t i, gt_val *out)
{
    if (v.t->kind == GK_PROPTYPE) {
        const json_t *s = json_is_string(v.j) ? v.j : json_array_get(v.j, (size_t)i);
        *out = gt_str(json_string_value(s), json_string_length(s));
        return 0;
    }
    char what[64];
    snprintf(what, sizeof(what), "element %lld", (long long)i);
    return gt_from_json(c, v.t->elem, json_array_get(v.j, (size_t)i), what, out);
}

int gt_map_get(gt_vctx *c, gt_val v, const char *key, gt_val *out)
{
    const json_t *j = v.j ? json_object_get(v.j, key) : NULL;
    if (v.t->kind == GK_VALUES) {
        const gt_field *f = field_by_key(v.t, key);
        if (!j || !f) {
            *out = gt_nil(); /* map[string]any with missingkey=zero: a nil interface */
            return 0;
        }
        return gt_from_json(c, f->type, j, key, out) ? -1 : 1;
    }
    if (!j) {
        /* the zero value of the element type: nil for any, a zero struct for ToolProperty */
        if (gt_from_json(c, v.t->elem, NULL, key, out)) return -1;
        return 0;
    }
    return gt_from_json(c, v.t->elem, j, key, out) ? -1 : 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int gt_map_keys(gt_vctx *c, gt_val v, const char ***keys, int64_t *n)
{
    size_t cnt = v.j ? json_object_size(v.j) : 0;
    const char **k = gt_alloc(c->arena, (cnt ? cnt : 1) * sizeof(*k));
    if (!k) return gt_verr(c, "out of memory (template arena)");
    size_t i = 0;
    const char *key;
    json_t *val;
    if (v.j) json_object_foreach((json_t *)v.j, key, val) k[i++] = key;
    qsort(k, cnt, sizeof(*k), cmp_str);
    *keys = k;
    *n = (int64_t)cnt;
    return 0;
}

static int method_string(gt_vctx *c, gt_val v, gt_val *out);

int gt_field_get(gt_vctx *c, gt_val v, const char *name, gt_val *out)
{
    if (v.k == GV_INVALID) {
        *out = gt_invalid();
        return 1;
    }
    if (v.k == GV_NIL) return gt_verr(c, "nil pointer evaluating interface {}.%s", name);
    if (v.k != GV_TYPED) return 0;
    const gt_type *t = v.t;
    if (!strcmp(name, "String") && (t->stringer != GS_NONE || t->kind == GK_PROPTYPE))
        return method_string(c, v, out) ? -1 : 1;
    if (!strcmp(name, "ToTypeScriptType") && t->ts_method) {
        gt_buf b = { .limit = GT_MAX_STRING };
        if (gt_typescript(c, &b, v.j)) {
            gt_buf_free(&b);
            return -1;
        }
        char *s = gt_strndup(c->arena, b.p ? b.p : "", b.n);
        size_t n = b.n;
        gt_buf_free(&b);
        if (!s) return gt_verr(c, "out of memory (template arena)");
        *out = gt_str(s, n);
        return 1;
    }
    switch (t->kind) {
    case GK_STRUCT: {
        const gt_field *f = field_of(t, name);
        if (!f) return 0;
        if (t->ptr && !v.j) return gt_verr(c, "nil pointer evaluating %s.%s", t->go_name, name);
        return gt_from_json(c, f->type, v.j ? json_object_get(v.j, f->key) : NULL, f->key, out) ? -1 : 1;
    }
    case GK_MAP: case GK_VALUES:
        return gt_map_get(c, v, name, out) < 0 ? -1 : 1;
    case GK_PROPMAP:
        if (!v.j) return gt_verr(c, "nil pointer evaluating %s.%s", t->go_name, name);
        return 0;
    default:
        return 0;
    }
}

bool gt_truth(gt_val v)
{
    switch (v.k) {
    case GV_INVALID: case GV_NIL: return false;
    case GV_BOOL:   return v.b;
    case GV_INT:    return v.i != 0;
    case GV_FLOAT:  return v.f != 0;
    case GV_STRING: return v.n > 0;
    default: break;
    }
    switch (v.t->kind) {
    case GK_STRUCT:  return !v.t->ptr || v.j;
    case GK_PROPMAP: return v.j != NULL;
    case GK_BYTES:   return v.j && json_string_length(v.j) > 0;
    default:         return gt_len(NULL, v) > 0;
    }
}

/* ------------------------------------------------------------ output buffer */

int gt_buf_put(gt_buf *b, const char *s, size_t n)
{
    if (b->overflow) return -1;
    if (n > b->limit || b->n > b->limit - n) {
        b->overflow = 1;
        return -1;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->overflow = 1;
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

static int put(gt_buf *b, const char *s) { return gt_buf_put(b, s, strlen(s)); }

void gt_buf_free(gt_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* ------------------------------------------------------------ numbers */

/* Shortest decimal digits that read back as f (f > 0, finite): digits and the decimal point
 * position dp (value = 0.d1d2... * 10^dp), as strconv's shortest formatting gives. */
static int shortest_digits(double f, char *digits, int *dp)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec - 1, f);
        if (strtod(buf, NULL) == f || prec == 17) break;
    }
    int nd = 0;
    const char *s = buf;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') digits[nd++] = *s;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    *dp = atoi(s + 1) + 1;
    return nd;
}

/* Go's strconv.FormatFloat(f, 'g', -1, 64) (json=false: fmt's %v) or encoding/json's float. */
void gt_fmt_float(gt_buf *b, double f, bool json)
{
    char out[64], digits[32];
    size_t k = 0;
    if (isnan(f)) { put(b, "NaN"); return; }
    if (isinf(f)) { put(b, f > 0 ? "+Inf" : "-Inf"); return; }
    if (signbit(f)) out[k++] = '-';
    f = fabs(f);
    int nd, dp;
    if (f == 0) {
        digits[0] = '0';
        digits[1] = 0;
        nd = 1;
        dp = 1;
    } else {
        nd = shortest_digits(f, digits, &dp);
    }
    int exp = dp - 1;
    bool use_e = json ? (f != 0 && (f < 1e-6 || f >= 1e21)) : (exp < -4 || exp >= 6);
    if (use_e) {
        out[k++] = digits[0];
        if (nd > 1) {
            out[k++] = '.';
            for (int i = 1; i < nd; i++) out[k++] = digits[i];
        }
        out[k++] = 'e';
        out[k++] = exp < 0 ? '-' : '+';
        int ae = exp < 0 ? -exp : exp;
        if (ae < 10 && !json) out[k++] = '0'; /* json drops the padding zero of e-07 */
        else if (ae < 10 && json && exp >= 0) out[k++] = '0';
        k += (size_t)snprintf(out + k, sizeof(out) - k, "%d", ae);
    } else {
        if (dp <= 0) {
            out[k++] = '0';
        } else {
            for (int i = 0; i < dp; i++) out[k++] = i < nd ? digits[i] : '0';
        }
        if (nd > dp) {
            out[k++] = '.';
            for (int i = dp; i < 0; i++) out[k++] = '0';
            for (int i = dp > 0 ? dp : 0; i < nd; i++) out[k++] = digits[i];
        }
    }
    gt_buf_put(b, out, k);
}

/* ------------------------------------------------------------ printing (fmt %v) */

static int print_v(gt_vctx *c, gt_buf *b, gt_val v, int depth, char verb);

static int str_of(gt_vctx *c, gt_val v, gt_buf *b)
{
    /* the String method of a type, written to b */
    if (v.t->kind == GK_PROPTYPE) {
        int64_t n = gt_len(c, v);
        if (n == 1) {
            gt_val s;
            gt_index(c, v, 0, &s);
            return gt_buf_put(b, s.s, s.n);
        }
        if (n == 0) return 0;
        put(b, "[");
        for (int64_t i = 0; i < n; i++) {
            gt_val s;
            gt_index(c, v, i, &s);
            if (i) put(b, " ");
            gt_buf_put(b, s.s, s.n);
        }
        return put(b, "]");
    }
    if (v.t->stringer == GS_JSON_NIL_EMPTY && !v.j) return put(b, "{}");
    return gt_json(c, b, v);
}

static int method_string(gt_vctx *c, gt_val v, gt_val *out)
{
    gt_buf b = { .limit = GT_MAX_STRING };
    if (str_of(c, v, &b) || c->failed) {
        gt_buf_free(&b);
        return c->failed ? -1 : gt_verr(c, "value too large");
    }
    char *s = gt_strndup(c->arena, b.p ? b.p : "", b.n);
    size_t n = b.n;
    gt_buf_free(&b);
    if (!s) return gt_verr(c, "out of memory (template arena)");
    *out = gt_str(s, n);
    return 0;
}

static int print_v(gt_vctx *c, gt_buf *b, gt_val v, int depth, char verb)
{
    char num[32];
    if (verb == 's' && (v.k == GV_BOOL || v.k == GV_INT || v.k == GV_FLOAT)) {
        /* fmt's %s inside a composite: "%!s(int=1)"; a nil interface stays "<nil>" */
        put(b, "%!s(");
        put(b, gt_type_name(v));
        put(b, "=");
        if (print_v(c, b, v, depth, 'v')) return -1;
        return put(b, ")");
    }
    if (verb == 's' && v.k == GV_TYPED && v.t->kind == GK_PROPMAP && !v.j) {
        put(b, "%!s(");
        put(b, v.t->go_name);
        return put(b, "=<nil>)");
    }
    switch (v.k) {
    case GV_INVALID: return put(b, depth == 0 ? "<no value>" : "<invalid reflect.Value>");
    case GV_NIL:     return put(b, "<nil>");
    case GV_BOOL:    return put(b, v.b ? "true" : "false");
    case GV_INT:
        snprintf(num, sizeof(num), "%lld", (long long)v.i);
        return put(b, num);
    case GV_FLOAT:
        gt_fmt_float(b, v.f, false);
        return b->overflow ? -1 : 0;
    case GV_STRING:  return gt_buf_put(b, v.s, v.n);
    default: break;
    }
    const gt_type *t = v.t;
    if (t->stringer != GS_NONE || t->kind == GK_PROPTYPE) return str_of(c, v, b);
    switch (t->kind) {
    case GK_SLICE: {
        put(b, "[");
        int64_t n = gt_len(c, v);
        for (int64_t i = 0; i < n; i++) {
            gt_val e;
            if (i) put(b, " ");
            if (gt_index(c, v, i, &e) || print_v(c, b, e, depth + 1, verb)) return -1;
        }
        return put(b, "]");
    }
    case GK_MAP: case GK_VALUES: {
        const char **keys;
        int64_t n;
        if (gt_map_keys(c, v, &keys, &n)) return -1;
        put(b, "map[");
        for (int64_t i = 0; i < n; i++) {
            gt_val e;
            if (i) put(b, " ");
            put(b, keys[i]);
            put(b, ":");
            if (gt_map_get(c, v, keys[i], &e) < 0 || print_v(c, b, e, depth + 1, verb)) return -1;
        }
        return put(b, "]");
    }
    case GK_STRUCT:
        if (t->ptr && !v.j) return put(b, "<nil>");
        if (t->ptr && depth > 0)
            return gt_verr(c, "printing a %s inside another value shows a memory address; "
                              "not reproducible", t->go_name);
        put(b, "{");
        for (int i = 0; i < t->nfields; i++) {
            gt_val e;
            if (i) put(b, " ");
            if (gt_field_get(c, v, t->fields[i].name, &e) < 0 || print_v(c, b, e, depth + 1, verb)) return -1;
        }
        return put(b, "}");
    case GK_PROPMAP:
        if (!v.j) return put(b, "<nil>");
        return gt_verr(c, "printing a %s shows a memory address; not reproducible", t->go_name);
    case GK_BYTES:
        return gt_verr(c, "printing image data (%s) is not supported", t->go_name);
    default:
        return gt_verr(c, "cannot print a value of type %s", t->go_name);
    }
}

int gt_print(gt_vctx *c, gt_buf *b, gt_val v, bool action, char verb)
{
    if (!action && v.k == GV_TYPED && v.t->kind == GK_STRUCT && v.t->ptr && v.j) put(b, "&");
    int rc = print_v(c, b, v, 0, verb);
    if (c->failed) return -1;
    return rc || b->overflow ? -1 : 0;
}

/* ------------------------------------------------------------ json.Marshal */

/* Go's utf8.DecodeRuneInString: length of a valid sequence at s, or 0 if invalid. */
static size_t utf8_valid(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
    if (!len || len > n || s[0] > 0xF4) return 0;
    uint32_t c = s[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)))
        return 0;
    *cp = c;
    return len;
}

static int json_quote(gt_buf *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    put(b, "\"");
    size_t start = 0;
    for (size_t i = 0; i < n;) {
        unsigned char ch = s[i];
        char esc[8];
        const char *rep = NULL;
        size_t adv = 1;
        if (ch < 0x80) {
            if (ch >= 0x20 && ch != '"' && ch != '\\' && ch != '<' && ch != '>' && ch != '&') {
                i++;
                continue;
            }
            switch (ch) {
            case '"':  rep = "\\\""; break;
            case '\\': rep = "\\\\"; break;
            case '\n': rep = "\\n"; break;
            case '\r': rep = "\\r"; break;
            case '\t': rep = "\\t"; break;
            case '\b': rep = "\\b"; break;
            case '\f': rep = "\\f"; break;
            default:
                snprintf(esc, sizeof(esc), "\\u00%c%c", hex[ch >> 4], hex[ch & 15]);
                rep = esc;
            }
        } else {
            uint32_t cp;
            size_t len = utf8_valid(s + i, n - i, &cp);
            if (len == 0) {
                rep = "\\ufffd";
            } else if (cp == 0x2028 || cp == 0x2029) {
                snprintf(esc, sizeof(esc), "\\u202%c", hex[cp & 15]);
                rep = esc;
                adv = len;
            } else {
                i += len;
                continue;
            }
        }
        gt_buf_put(b, str + start, i - start);
        put(b, rep);
        i += adv;
        start = i;
    }
    gt_buf_put(b, str + start, n - start);
    return put(b, "\"");
}

static bool json_empty(gt_val v)
{
    switch (v.k) {
    case GV_INVALID: case GV_NIL: return true;
    case GV_BOOL:   return !v.b;
    case GV_INT:    return v.i == 0;
    case GV_FLOAT:  return v.f == 0;
    case GV_STRING: return v.n == 0;
    default: break;
    }
    switch (v.t->kind) {
    case GK_STRUCT:  return v.t->ptr && !v.j;
    case GK_PROPMAP: return !v.j;
    case GK_BYTES:   return !v.j || json_string_length(v.j) == 0;
    default:         return gt_len(NULL, v) == 0;
    }
}

int gt_json(gt_vctx *c, gt_buf *b, gt_val v)
{
    char num[32];
    switch (v.k) {
    case GV_INVALID: case GV_NIL: return put(b, "null");
    case GV_BOOL:    return put(b, v.b ? "true" : "false");
    case GV_INT:
        snprintf(num, sizeof(num), "%lld", (long long)v.i);
        return put(b, num);
    case GV_FLOAT:
        gt_fmt_float(b, v.f, true);
        return b->overflow ? -1 : 0;
    case GV_STRING:  return json_quote(b, v.s, v.n);
    default: break;
    }
    const gt_type *t = v.t;
    switch (t->kind) {
    case GK_PROPTYPE:
        if (v.j && json_is_string(v.j)) return json_quote(b, json_string_value(v.j), json_string_length(v.j));
        /* fall through: []string */
        __attribute__((fallthrough));
    case GK_SLICE: {
        if (!v.j) return put(b, "null");
        put(b, "[");
        int64_t n = gt_len(c, v);
        for (int64_t i = 0; i < n; i++) {
            gt_val e;
            if (i) put(b, ",");
            if (gt_index(c, v, i, &e) || gt_json(c, b, e)) return -1;
        }
        return put(b, "]");
    }
    case GK_MAP: case GK_VALUES: case GK_PROPMAP: {
        if (!v.j) return put(b, "null");
        const char **keys;
        int64_t n;
        if (t->kind == GK_PROPMAP) { /* insertion order */
            size_t cnt = json_object_size(v.j), i = 0;
            keys = gt_alloc(c->arena, (cnt ? cnt : 1) * sizeof(*keys));
            if (!keys) return gt_verr(c, "out of memory (template arena)");
            const char *key;
            json_t *val;
            json_object_foreach((json_t *)v.j, key, val) keys[i++] = key;
            n = (int64_t)cnt;
        } else if (gt_map_keys(c, v, &keys, &n)) {
            return -1;
        }
        put(b, "{");
        for (int64_t i = 0; i < n; i++) {
            gt_val e;
            if (i) put(b, ",");
            json_quote(b, keys[i], strlen(keys[i]));
            put(b, ":");
            if (t->kind == GK_PROPMAP) {
                if (gt_from_json(c, t->elem, json_object_get(v.j, keys[i]), keys[i], &e)) return -1;
            } else if (gt_map_get(c, v, keys[i], &e) < 0) {
                return -1;
            }
            if (gt_json(c, b, e)) return -1;
        }
        return put(b, "}");
    }
    case GK_STRUCT: {
        if (t->ptr && !v.j) return put(b, "null");
        put(b, "{");
        bool first = true;
        for (int i = 0; i < t->nfields; i++) {
            const gt_field *f = &t->fields[i];
            gt_val e;
            if (gt_field_get(c, v, f->name, &e) < 0) return -1;
            if (f->omitempty && json_empty(e)) continue;
            if (!first) put(b, ",");
            first = false;
            const char *name = f->json ? f->json : f->name;
            json_quote(b, name, strlen(name));
            put(b, ":");
            if (gt_json(c, b, e)) return -1;
        }
        return put(b, "}");
    }
    case GK_BYTES:
        if (!v.j) return put(b, "null");
        return json_quote(b, json_string_value(v.j), json_string_length(v.j));
    default:
        return gt_verr(c, "cannot marshal a value of type %s", t->go_name);
    }
}

/* ------------------------------------------------------------ ToTypeScriptType */

static const char *ts_of(const char *json_type)
{
    static const char *const map[][2] = {
        { "string", "string" }, { "number", "number" }, { "integer", "number" },
        { "boolean", "boolean" }, { "array", "any[]" }, { "object", "Record<string, any>" },
        { "null", "null" },
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(map[i][0], json_type)) return map[i][1];
    return "any";
}

int gt_typescript(gt_vctx *c, gt_buf *b, const json_t *prop)
{
    const json_t *any_of = prop ? json_object_get(prop, "anyOf") : NULL;
    if (any_of && json_is_array(any_of) && json_array_size(any_of) > 0) {
        for (size_t i = 0; i < json_array_size(any_of); i++) {
            const json_t *sub = json_array_get(any_of, i);
            if (!json_is_object(sub)) return want(c, "anyOf", "objects", sub);
            if (i) put(b, " | ");
            if (gt_typescript(c, b, sub)) return -1;
        }
        return 0;
    }
    const json_t *type = prop ? json_object_get(prop, "type") : NULL;
    if (!type || json_is_null(type) || (json_is_array(type) && json_array_size(type) == 0))
        return put(b, "any");
    if (json_is_string(type)) return put(b, ts_of(json_string_value(type)));
    if (!json_is_array(type)) return want(c, "type", "a string or an array", type);
    for (size_t i = 0; i < json_array_size(type); i++) {
        const json_t *s = json_array_get(type, i);
        if (!json_is_string(s)) return want(c, "type", "strings", s);
        if (i) put(b, " | ");
        put(b, ts_of(json_string_value(s)));
    }
    return 0;
}
