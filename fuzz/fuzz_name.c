/* libFuzzer target: model names, digests, manifests and config blobs (src/store).
 *
 * The first byte picks the parser, the rest is its input (an exact-size heap copy,
 * so ASan sees any read past the end). Properties checked beyond "no crash":
 *  - an accepted name has only characters of its part's class, no empty part, and
 *    its full and display forms parse back to an equal name;
 *  - an accepted digest is 64 lowercase hex and prints back to the input's hex;
 *  - an accepted manifest is within the limits (layers, sizes) and rebuilding it
 *    gives bytes that parse to the same layers;
 *  - every refusal comes with a message.
 * Build: make fuzz; run: see fuzz/README.md.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_part(const char *p, bool dots, bool colons)
{
    if (!*p) abort();
    for (const char *c = p; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_';
        if (c != p) ok = ok || *c == '-' || (dots && *c == '.') || (colons && *c == ':');
        if (!ok) abort();
    }
}

static void fuzz_name(const char *s, size_t n)
{
    qfit_name a, b;
    char err[512] = "";
    if (qfit_name_parse_len(s, n, &a, err, sizeof err) != 0) {
        if (!err[0]) abort();
        return;
    }
    check_part(a.host, true, true);
    check_part(a.ns, false, false);
    check_part(a.model, true, false);
    check_part(a.tag, true, false);
    char full[QFIT_NAME_STR_MAX], disp[QFIT_NAME_STR_MAX];
    if (qfit_name_full(&a, full, sizeof full) < 0 || qfit_name_display(&a, disp, sizeof disp) < 0) abort();
    if (qfit_name_parse(full, &b, err, sizeof err) != 0 || !qfit_name_equal(&a, &b)) abort();
    if (qfit_name_parse(disp, &b, err, sizeof err) != 0 || !qfit_name_equal(&a, &b)) abort();
}

static void fuzz_digest(const char *s, size_t n)
{
    qfit_digest d;
    char err[512] = "";
    if (qfit_digest_parse_len(s, n, &d, err, sizeof err) != 0) {
        if (!err[0]) abort();
        return;
    }
    if (n != 71 || memcmp(d.hex, s + 7, 64) != 0) abort();
    char str[QFIT_DIGEST_STR];
    qfit_digest_str(&d, str);
    if (memcmp(str + 7, s + 7, 64) != 0) abort();
}

static void fuzz_manifest(const char *s, size_t n)
{
    char err[512] = "";
    qfit_manifest *m = qfit_manifest_parse(s, n, err, sizeof err);
    if (!m) {
        if (!err[0]) abort();
        return;
    }
    if (m->n_layers > QFIT_MANIFEST_MAX_LAYERS || m->total_size < 0) abort();
    size_t len;
    char *b = qfit_manifest_build(&m->config, m->layers, m->n_layers, &len, err, sizeof err);
    if (!b) abort();
    qfit_manifest *m2 = qfit_manifest_parse(b, len, err, sizeof err);
    if (!m2 || m2->n_layers != m->n_layers || m2->total_size != m->total_size) abort();
    for (size_t i = 0; i < m->n_layers; i++) {
        if (!qfit_digest_equal(&m->layers[i].digest, &m2->layers[i].digest) || m->layers[i].kind != m2->layers[i].kind)
            abort();
        (void)qfit_manifest_layer(m, m->layers[i].kind);
    }
    free(b);
    qfit_manifest_free(m2);
    qfit_manifest_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t n = size - 1;
    char *s = malloc(n ? n : 1);
    if (!s) return 0;
    memcpy(s, data + 1, n);
    switch (data[0] % 4) {
    case 0: fuzz_name(s, n); break;
    case 1: fuzz_digest(s, n); break;
    case 2: fuzz_manifest(s, n); break;
    default: {
        qfit_model_config c;
        char err[256];
        (void)qfit_model_config_parse(s, n, &c, err, sizeof err);
        break;
    }
    }
    free(s);
    return 0;
}
