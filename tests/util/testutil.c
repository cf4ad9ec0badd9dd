#include "testutil.h"

#include "qfit/backend.h"
#include "qfit/imatrix.h"
#include "qfit/quantize.h"
#include "qfit/synth.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *tu_shared(void)
{
    const char *p = getenv("QFIT_SHARED");
    if (!p || !*p) p = "../shared";
    struct stat st;
    static char abs[4096];   /* absolute: tests run qfit in other directories */
    if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) return realpath(p, abs) ? abs : p;
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0)
        cr_assert_fail("shared test data folder '%s' is missing (set QFIT_SHARED); under CI this is a failure", p);
    cr_skip_test("shared test data folder '%s' not found (set QFIT_SHARED): skipped", p);
    return NULL; /* not reached */
}

const char *tu_shared_path(const char *rel)
{
    static char bufs[8][4096];
    static int slot;
    char *b = bufs[slot++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", tu_shared(), rel);
    return b;
}

void *tu_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return NULL; }
    long n = ftell(f);
    if (n < 0) { fclose(f); return NULL; }
    rewind(f);
    void *buf = malloc((size_t)n + 1);
    if (!buf) { fclose(f); return NULL; }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); fclose(f); return NULL; }
    ((char *)buf)[n] = 0;
    fclose(f);
    if (size) *size = (size_t)n;
    return buf;
}

static char tmpdir_path[4096];

static void rm_tmpdir(void)
{
    if (!tmpdir_path[0]) return;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir_path);
    if (system(cmd) != 0) { /* best effort */ }
}

const char *tu_tmpdir(void)
{
    if (tmpdir_path[0]) return tmpdir_path;
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    snprintf(tmpdir_path, sizeof tmpdir_path, "%s/qfit-test-XXXXXX", base);
    if (!mkdtemp(tmpdir_path)) cr_assert_fail("mkdtemp failed");
    atexit(rm_tmpdir);
    return tmpdir_path;
}

const char *tu_qfit_bin(void)
{
    const char *p = getenv("QFIT_BIN");
    return (p && *p) ? p : "build/debug/qfit";
}

char *tu_run(const char *cmd, int *status)
{
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) { if (status) *status = -1; return strdup(""); }
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) { cap *= 2; out = realloc(out, cap); }
    }
    out[len] = 0;
    int st = pclose(p);
    if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

void tu_isa_unavailable(const char *isa)
{
    const char *req = getenv("QFIT_REQUIRE_ISAS");
    const size_t n = strlen(isa);
    for (const char *p = req; p && *p;) {
        const char *end = strchr(p, ',');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, isa, n) == 0)
            cr_assert_fail("ISA %s is required (QFIT_REQUIRE_ISAS=%s) but this CPU does not have it", isa, req);
        p = end ? end + 1 : p + len;
    }
    cr_log_warn("ISA %s: not available on this CPU, its kernels are not tested here", isa);
    fprintf(stderr, "tests: ISA %s not available on this CPU, skipped\n", isa);
}

const char *tu_vulkan_device(void)
{
    const char *ci = getenv("CI");
    if (qfit_device_find("vulkan0") < 0) {
        if (ci && !strcmp(ci, "true")) cr_assert_fail("CI=true: no Vulkan device (devices: %s)", qfit_device_names());
        cr_skip_test("no Vulkan device (devices: %s)", qfit_device_names());
    }
    return "vulkan0";
}

/* tu_tmpdir()/name in one of 4 rotating static buffers (the generated-file helpers' return) */
static char *tmp_file(const char *name)
{
    static char paths[4][4200];
    static unsigned next;
    char *path = paths[next++ % 4];
    snprintf(path, sizeof paths[0], "%s/%s", tu_tmpdir(), name);
    return path;
}

const char *tu_synth(const char *shape, int ftype, uint64_t seed, const char *name)
{
    char *path = tmp_file(name);
    qfit_synth_params sp;
    memset(&sp, 0, sizeof sp);
    sp.shape = qfit_synth_find_shape(shape);
    cr_assert_not_null(sp.shape, "synth has no shape %s", shape);
    sp.ftype = ftype;
    sp.seed = seed;
    sp.n_threads = 2;
    char err[256];
    cr_assert_eq(qfit_synth_write(path, &sp, NULL, err, sizeof err), 0, "synth %s: %s", shape, err);
    return path;
}

const char *tu_kjv_quantized(const char *ftype_name, const char *name)
{
    char *path = tmp_file(name);
    qfit_quantize_params qp;
    memset(&qp, 0, sizeof qp);
    qp.ftype = qfit_ftype_from_name(ftype_name);
    cr_assert_geq(qp.ftype, 0, "unknown mix %s", ftype_name);
    qp.n_threads = 2;
    char err[256];
    cr_assert_eq(qfit_quantize_model(tu_shared_path("models/kjv-llama-7m-f32.gguf"), path, &qp, NULL, err,
                                     sizeof err), 0, "quantize %s: %s", ftype_name, err);
    return path;
}

/* FNV-1a 64 of a file's bytes, and its size */
static uint64_t file_fnv1a(const char *path, size_t *size)
{
    unsigned char *b = tu_read_file(path, size);
    cr_assert_not_null(b, "cannot read %s", path);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < *size; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    free(b);
    return h;
}

uint64_t tu_fnv1a_file(const char *path)
{
    size_t n = 0;
    return file_fnv1a(path, &n);
}

const char *tu_imatrix_kjv(void)
{
    static char path[4200];
    if (path[0]) return path;
    const char *src = "tests/data/imatrix/kjv-2x128.imatrix.txt";
    char *txt = tu_read_file(src, NULL);
    cr_assert_not_null(txt, "cannot read %s", src);
    qfit_imatrix *im = qfit_imatrix_new();
    cr_assert_not_null(im);
    char err[256] = "";
    uint64_t want_fnv = 0;
    size_t want_size = 0;
    qfit_imatrix_entry *e = NULL;
    int64_t at = 0;   /* values of e read so far */
    char *save = NULL;
    for (char *line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[128];
        long long a, b;
        unsigned long long u;
        if (sscanf(line, "llama_cpp_file_fnv1a64 %llx", &u) == 1) want_fnv = u;
        else if (sscanf(line, "llama_cpp_file_bytes %llu", &u) == 1) want_size = (size_t)u;
        else if (sscanf(line, "chunk_count %llu", &u) == 1) im->chunk_count = (uint32_t)u;
        else if (sscanf(line, "chunk_size %llu", &u) == 1) im->chunk_size = (uint32_t)u;
        else if (sscanf(line, "dataset %127s", name) == 1)
            cr_assert_eq(qfit_imatrix_set_dataset(im, name, err, sizeof err), 0, "%s", err);
        else if (sscanf(line, "entry %127s %lld %lld", name, &a, &b) == 3) {
            cr_assert(!e || at == e->n_per_mat * e->n_mat, "%s: %s is short of values", src, e ? e->name : "");
            e = qfit_imatrix_entry_get(im, name, a, b, err, sizeof err);
            cr_assert_not_null(e, "%s", err);
            at = 0;
        } else if (!strncmp(line, "counts ", 7)) {
            cr_assert_not_null(e, "%s: counts before an entry", src);
            char *p = line + 7;
            for (int64_t m = 0; m < e->n_mat; m++) e->counts[m] = strtoll(p, &p, 10);
        } else {
            cr_assert_not_null(e, "%s: values before an entry", src);
            for (char *p = line, *q; *p; p = q) {
                const float v = strtof(p, &q);
                if (q == p) break;
                cr_assert_lt(at, e->n_per_mat * e->n_mat, "%s: %s has too many values", src, e->name);
                e->sum2[at++] = v;
            }
        }
    }
    cr_assert(e && at == e->n_per_mat * e->n_mat, "%s: the last entry is short of values", src);
    free(txt);
    char out[4200];
    snprintf(out, sizeof out, "%s/kjv-2x128.imatrix.gguf", tu_tmpdir());
    cr_assert_eq(qfit_imatrix_save(im, out, QFIT_IMATRIX_GGUF, err, sizeof err), 0, "%s", err);
    qfit_imatrix_free(im);
    size_t size = 0;
    const uint64_t h = file_fnv1a(out, &size);
    cr_assert(h == want_fnv && size == want_size,
              "the rebuilt imatrix is not llama.cpp's file (FNV-1a %016llx, %zu bytes; llama.cpp's %016llx, %zu)",
              (unsigned long long)h, size, (unsigned long long)want_fnv, want_size);
    snprintf(path, sizeof path, "%s", out);
    return path;
}

