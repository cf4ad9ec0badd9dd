/* Reading llama.cpp reference text files (tests/data/engine, shared/testdata/.../logits):
 * header-only and free of Criterion, so the cross-compiled NEON model test uses it too. */
#ifndef QFIT_REFPARSE_H
#define QFIT_REFPARSE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ids after "label" up to the end of its line ("prompt tokens (5): 1 1046 ..."),
 * at most cap of them; -1 if there is no such line. */
static inline int tu_parse_ids(const char *txt, const char *label, int32_t *out, int cap)
{
    const char *p = strstr(txt, label);
    if (!p || !(p = strchr(p, ':'))) return -1;
    p++;
    int n = 0;
    while (*p && *p != '\n' && n < cap) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) break;
        out[n++] = (int32_t)v;
        p = end;
    }
    return n;
}

/* The floats after "label" up to the end of its line, at most cap; -1 if no such line. */
static inline int tu_parse_floats(const char *txt, const char *label, float *out, int cap)
{
    const char *p = strstr(txt, label);
    if (!p || !(p = strchr(p, ':'))) return -1;
    p++;
    int n = 0;
    while (*p && *p != '\n' && n < cap) {
        char *end;
        float v = strtof(p, &end);
        if (end == p) break;
        out[n++] = v;
        p = end;
    }
    return n;
}

static inline double tu_max_abs_diff(const float *a, const float *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;   /* NaN propagates */
    }
    return m;
}

static inline double tu_rms_diff(const float *a, const float *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        s += d * d;
    }
    return sqrt(s / n);
}

/* first step where two greedy sequences differ, -1 if none */
static inline int tu_first_divergence(const int32_t *a, const int32_t *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return i;
    return -1;
}

/* ---- quantized logits of the shared model against same-machine llama.cpp references ----
 *
 * tests/data/kjv-logits holds llama.cpp's logits (libggml-cpu-zen4.so, the CPU of this
 * project's machines) for the shared model at F32 and peer-quantize's Q8_0 / Q6_K / Q4_K_M
 * (byte-identical to qfit's), on the 5 prompts of testdata/kjv-llama-7m/logits, with the
 * greedy continuation and llama.cpp's own top-2 margin at every greedy step (README there).
 *
 * What a quantized variant must satisfy, per prompt (measured on every ISA, see the README):
 *  - max |dlogit| <= TU_QLOGIT_TOL against the same variant (measured <= 0.138: re-quantizing
 *    every matmul input to Q8_0/Q8_K turns last-bit float differences into whole rounding
 *    steps, in llama.cpp between its own code paths as much as between the two engines);
 *  - the same top-1 token;
 *  - the greedy continuation identical, except from a step where llama.cpp's OWN top-2 margin
 *    is below TU_QLOGIT_NEAR_TIE (measured divergences: at llama.cpp margins 0.0012, 0.011,
 *    0.041; typical logit noise rms 0.01-0.06);
 *  - discrimination: the RMS distance (over the vocabulary) to the same variant's reference is
 *    below tu_kjv_discrimination() x the distance to each other variant's reference.
 *    Exception: Q8_0 against F32. llama.cpp's own activation-quantization noise (rms
 *    0.012-0.045 between code paths) is as large as the whole F32<->Q8_0 difference here
 *    (rms 0.02-0.05), so 5 last-position logit vectors cannot tell Q8_0 from F32 numerics;
 *    the KL-divergence over 8,160 tokens does (tests/test_eval.c: F32 numerics on Q8_0 give
 *    -69% KLD, the tolerance is 4%). */
#define TU_KJV_N_VARIANTS 4
#define TU_KJV_N_PROMPTS 5
#define TU_KJV_N_GREEDY 32
#define TU_KJV_VOCAB 2048
#define TU_QLOGIT_TOL 0.15
#define TU_QLOGIT_NEAR_TIE 0.1f
static const char *const TU_KJV_VARIANTS[TU_KJV_N_VARIANTS] = { "f32", "Q8_0", "Q6_K", "Q4_K_M" };

/* Required ratio rms(same) / rms(other) must stay below; 0: not compared. */
static inline double tu_kjv_discrimination(const char *variant, const char *other)
{
    if (!strcmp(variant, other)) return 0;
    if (!strcmp(variant, "f32")) return 0.5;     /* measured <= 0.07 */
    if (!strcmp(variant, "Q8_0") && !strcmp(other, "f32")) return 0;   /* see above */
    return 1.0;                                  /* measured <= 0.87 (Q6_K p3 vs f32) */
}

typedef struct {
    int32_t prompt[64];
    int     n_prompt;
    int32_t greedy[TU_KJV_N_GREEDY];
    float   margin[TU_KJV_N_GREEDY];        /* llama.cpp's top-1 minus top-2 logit per greedy step */
    float   logits[TU_KJV_VOCAB];
} tu_kjv_ref;

/* Reads DIR/VARIANT.pK.{txt,f32}; 0 on success, -1 (with a message in err) otherwise. */
static inline int tu_kjv_ref_load(const char *dir, const char *variant, int k, tu_kjv_ref *r, char *err, size_t n_err)
{
    char path[400];
    snprintf(path, sizeof path, "%.300s/%.32s.p%d.txt", dir, variant, k);
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, n_err, "cannot read %.400s", path); return -1; }
    static char txt[16384];
    size_t n = fread(txt, 1, sizeof txt - 1, f);
    fclose(f);
    txt[n] = 0;
    r->n_prompt = tu_parse_ids(txt, "prompt tokens", r->prompt, 64);
    if (r->n_prompt <= 0 || tu_parse_ids(txt, "greedy (", r->greedy, TU_KJV_N_GREEDY) != TU_KJV_N_GREEDY ||
        tu_parse_floats(txt, "margins (", r->margin, TU_KJV_N_GREEDY) != TU_KJV_N_GREEDY) {
        snprintf(err, n_err, "%.400s: malformed (prompt, greedy and margins lines expected)", path);
        return -1;
    }
    snprintf(path, sizeof path, "%.300s/%.32s.p%d.f32", dir, variant, k);
    f = fopen(path, "rb");
    if (!f) { snprintf(err, n_err, "cannot read %.400s", path); return -1; }
    n = fread(r->logits, 1, sizeof r->logits, f);
    const int extra = fgetc(f);
    fclose(f);
    if (n != sizeof r->logits || extra != EOF) { snprintf(err, n_err, "%.400s: not %d floats", path, TU_KJV_VOCAB); return -1; }
    return 0;
}

#endif
