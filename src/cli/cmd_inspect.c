/* qfit inspect MODEL.gguf — header facts, metadata, tensor table and totals. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "qfit/backend.h"
#include "qfit/gguf.h"
#include "qfit/vulkan.h"
#include "qfit/quant.h"

#define MAX_STR_SHOWN 64
#define MAX_ELEMS_SHOWN 5

typedef struct {
    char  *p;
    size_t cap, len;
} sbuf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->len + 1 >= b->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    b->len += (size_t)n;
    if (b->len >= b->cap) b->len = b->cap - 1;
}

/* A quoted string with control bytes escaped, cut at MAX_STR_SHOWN bytes. */
static void sb_str(sbuf *b, const char *s, uint64_t len)
{
    sb_printf(b, "\"");
    for (uint64_t i = 0; i < len && i < MAX_STR_SHOWN; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') sb_printf(b, "\\%c", c);
        else if (c == '\n') sb_printf(b, "\\n");
        else if (c == '\t') sb_printf(b, "\\t");
        else if (c < 0x20 || c == 0x7f) sb_printf(b, "\\x%02x", c);
        else sb_printf(b, "%c", c);
    }
    sb_printf(b, "\"");
    if (len > MAX_STR_SHOWN) sb_printf(b, "… (%" PRIu64 " bytes)", len);
}

/* A name from the file, control bytes escaped, cut at 120 bytes. */
static const char *safe_name(char *buf, size_t cap, const char *s, uint64_t len)
{
    sbuf b = { buf, cap, 0 };
    buf[0] = 0;
    for (uint64_t i = 0; i < len && i < 120; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '\\') sb_printf(&b, "\\x%02x", c);
        else sb_printf(&b, "%c", c);
    }
    if (len > 120) sb_printf(&b, "…");
    return buf;
}

static uint64_t ld(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void sb_value(sbuf *b, const qfit_gguf_value *v, int depth)
{
    const uint8_t *r = v->raw;
    switch (v->type) {
    case QFIT_GGUF_UINT8:  sb_printf(b, "%u", (unsigned)r[0]); break;
    case QFIT_GGUF_INT8:   sb_printf(b, "%d", (int)(int8_t)r[0]); break;
    case QFIT_GGUF_UINT16: sb_printf(b, "%u", (unsigned)ld(r, 2)); break;
    case QFIT_GGUF_INT16:  sb_printf(b, "%d", (int)(int16_t)ld(r, 2)); break;
    case QFIT_GGUF_UINT32: sb_printf(b, "%" PRIu32, (uint32_t)ld(r, 4)); break;
    case QFIT_GGUF_INT32:  sb_printf(b, "%" PRId32, (int32_t)(uint32_t)ld(r, 4)); break;
    case QFIT_GGUF_UINT64: sb_printf(b, "%" PRIu64, ld(r, 8)); break;
    case QFIT_GGUF_INT64:  sb_printf(b, "%" PRId64, (int64_t)ld(r, 8)); break;
    case QFIT_GGUF_BOOL:   sb_printf(b, "%s", r[0] ? "true" : "false"); break;
    case QFIT_GGUF_FLOAT32: {
        uint32_t u = (uint32_t)ld(r, 4);
        float f;
        memcpy(&f, &u, sizeof f);
        sb_printf(b, "%.9g", (double)f);
        break;
    }
    case QFIT_GGUF_FLOAT64: {
        uint64_t u = ld(r, 8);
        double d;
        memcpy(&d, &u, sizeof d);
        sb_printf(b, "%.17g", d);
        break;
    }
    case QFIT_GGUF_STRING: sb_str(b, (const char *)r + 8, ld(r, 8)); break;
    case QFIT_GGUF_ARRAY: {
        sb_printf(b, "[%s × %" PRIu64 "]", qfit_gguf_type_name(v->arr_type), v->arr_len);
        if (depth > 0) break; /* nested arrays: the summary only */
        for (uint64_t j = 0; j < v->arr_len && j < MAX_ELEMS_SHOWN; j++) {
            qfit_gguf_value e;
            if (!qfit_gguf_value_elem(v, j, &e)) break;
            sb_printf(b, j ? ", " : " ");
            sb_value(b, &e, depth + 1);
        }
        if (v->arr_len > MAX_ELEMS_SHOWN) sb_printf(b, ", …");
        break;
    }
    default: sb_printf(b, "?"); break;
    }
}

static void human_bytes(char *buf, size_t cap, uint64_t n)
{
    if (n >= (1ull << 30)) snprintf(buf, cap, "%.2f GiB", (double)n / (1ull << 30));
    else if (n >= (1ull << 20)) snprintf(buf, cap, "%.2f MiB", (double)n / (1ull << 20));
    else if (n >= 1024) snprintf(buf, cap, "%.2f KiB", (double)n / 1024);
    else snprintf(buf, cap, "%" PRIu64 " B", n);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: qfit inspect [--no-tensors] MODEL.gguf | qfit inspect --devices\n"
               "  Prints the GGUF version, architecture, alignment, every metadata key,\n"
               "  the tensor table (name, shape, type, bytes) and totals (parameters,\n"
               "  data size, bits per weight, tensors per type).\n"
               "  --no-tensors   omit the per-tensor table\n"
               "  --devices      list the devices a model can run on (--device NAME) and their memory\n");
}

/* qfit inspect --devices: one line per device */
static int list_devices(void)
{
    printf("%-6s %12s %12s  %s\n", "device", "memory", "free", "description");
    for (int i = 0; i < qfit_device_count(); i++) {
        qfit_device_info d;
        if (qfit_device_get(i, &d) != 0) continue;
        char total[32] = "unknown", avail[32] = "unknown";
        if (d.mem_total) human_bytes(total, sizeof total, d.mem_total);
        if (d.mem_free) human_bytes(avail, sizeof avail, d.mem_free);
        printf("%-6s %12s %12s  %s%s\n", d.name, total, avail, d.description, d.host_memory ? " (host memory)" : "");
    }
    /* the Vulkan devices' features (each is --device vulkanN above) */
    char err[256];
    const int nv = qfit_vk_device_count(err, sizeof err);
    if (nv < 0) {
        printf("\nVulkan: %s\n", err);
        return 0;
    }
    printf("\nVulkan devices: %d\n", nv);
    static const char *const kinds[] = { "other", "integrated GPU", "discrete GPU", "virtual GPU", "CPU" };
    for (int i = 0; i < nv; i++) {
        qfit_vk_device_info v;
        if (qfit_vk_device_get(i, &v) != 0) continue;
        char mem[32], paths[64];
        human_bytes(mem, sizeof mem, v.mem_device_local);
        printf("  vulkan%d  %s (%s, Vulkan %u.%u): %s device-local, subgroup %u, shared memory %u, one binding "
               "%llu MiB; fp16 %s, int8 %s, 16-bit storage %s, 8-bit storage %s, subgroup operations %s; "
               "paths: %s\n",
               i, v.name, (unsigned)v.kind < 5 ? kinds[v.kind] : "other", v.api_version >> 22,
               (v.api_version >> 12) & 0x3FFu, mem, v.subgroup_size, v.max_shared_bytes,
               (unsigned long long)(v.max_storage_range >> 20), v.fp16 ? "yes" : "no", v.int8 ? "yes" : "no",
               v.storage16 ? "yes" : "no", v.storage8 ? "yes" : "no", v.subgroup_ops ? "yes" : "no",
               qfit_vk_feature_names(v.features, paths, sizeof paths));
    }
    return 0;
}

int qfit_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    bool show_tensors = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        if (!strcmp(argv[i], "--no-tensors")) { show_tensors = false; continue; }
        if (!strcmp(argv[i], "--devices")) {
            if (argc != 2) { fprintf(stderr, "qfit inspect: --devices takes no other argument\n"); return 2; }
            return list_devices();
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "qfit inspect: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (path) { fprintf(stderr, "qfit inspect: more than one file given\n"); usage(stderr); return 2; }
        path = argv[i];
    }
    if (!path) { usage(stderr); return 2; }

    char err[512];
    qfit_gguf *g = qfit_gguf_open(path, err, sizeof err);
    if (!g) {
        fprintf(stderr, "qfit inspect: %s: %s\n", path, err);
        return 1;
    }

    char arch[128] = "?", hb[32];
    qfit_gguf_get_string(g, "general.architecture", arch, sizeof arch);
    printf("%-14s%s\n", "file:", path);
    printf("%-14s%" PRIu32 "\n", "GGUF version:", qfit_gguf_version(g));
    printf("%-14s%s\n", "architecture:", arch);
    printf("%-14s%zu\n", "alignment:", qfit_gguf_alignment(g));
    printf("%-14s%" PRIu64 "\n", "data offset:", qfit_gguf_data_offset(g));
    human_bytes(hb, sizeof hb, qfit_gguf_file_size(g));
    printf("%-14s%" PRIu64 " bytes (%s)\n", "file size:", qfit_gguf_file_size(g), hb);

    int64_t n_kv = qfit_gguf_n_kv(g);
    printf("\nmetadata: %" PRId64 " keys\n", n_kv);
    char line[1024];
    for (int64_t i = 0; i < n_kv; i++) {
        qfit_gguf_str k = qfit_gguf_key(g, i);
        qfit_gguf_value v = qfit_gguf_kv_value(g, i);
        sbuf b = { line, sizeof line, 0 };
        line[0] = 0;
        sb_value(&b, &v, 0);
        char nm[512];
        printf("  %-44s %-4s %s\n", safe_name(nm, sizeof nm, k.data, k.len), qfit_gguf_type_name(v.type), line);
    }

    int64_t n_t = qfit_gguf_n_tensors(g);
    int64_t per_type[QFIT_TYPE_COUNT] = { 0 };
    int64_t params = 0;
    uint64_t bytes = 0;
    if (show_tensors) {
        printf("\ntensors: %" PRId64 "\n", n_t);
        printf("  %5s  %-40s %-24s %-8s %12s %12s\n", "#", "name", "shape", "type", "bytes", "offset");
    }
    for (int64_t i = 0; i < n_t; i++) {
        const qfit_gguf_tensor *t = qfit_gguf_tensor_at(g, i);
        int64_t ne = qfit_gguf_tensor_nelements(t);
        params += ne > 0 ? ne : 0;
        bytes += t->nbytes;
        if (t->type >= 0 && t->type < QFIT_TYPE_COUNT) per_type[t->type]++;
        if (!show_tensors) continue;
        char shape[128];
        sbuf sb = { shape, sizeof shape, 0 };
        shape[0] = 0;
        sb_printf(&sb, "[");
        for (uint32_t d = 0; d < t->n_dims; d++) sb_printf(&sb, d ? ", %" PRId64 : "%" PRId64, t->ne[d]);
        sb_printf(&sb, "]");
        char nm[512];
        printf("  %5" PRId64 "  %-40s %-24s %-8s %12" PRIu64 " %12" PRIu64 "\n", i,
               safe_name(nm, sizeof nm, t->name.data, t->name.len), shape, qfit_type_name(t->type),
               t->nbytes, t->offset);
    }

    printf("\ntotals:\n");
    printf("  %-14s%" PRId64 "\n", "tensors:", n_t);
    printf("  %-14s%" PRId64 " (%.2f M)\n", "parameters:", params, (double)params / 1e6);
    human_bytes(hb, sizeof hb, bytes);
    printf("  %-14s%" PRIu64 " bytes (%s)\n", "data size:", bytes, hb);
    if (params > 0) printf("  %-14s%.3f\n", "bits/weight:", (double)bytes * 8.0 / (double)params);
    else printf("  %-14s-\n", "bits/weight:");
    printf("  %-14s", "types:");
    bool first = true;
    for (int t = 0; t < QFIT_TYPE_COUNT; t++) {
        if (!per_type[t]) continue;
        printf("%s%s: %" PRId64, first ? "" : ", ", qfit_type_name(t), per_type[t]);
        first = false;
    }
    printf("%s\n", first ? "none" : "");
    qfit_gguf_close(g);
    return 0;
}
