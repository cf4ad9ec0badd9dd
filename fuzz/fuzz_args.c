/* libFuzzer target: the engine's command-line options (qfit_context_params_parse_arg:
 * --ctx, the cache types, --flash-attn, --device, --gpu-layers, --gpu-mem) and the memory
 * size parser behind --gpu-mem, `qfit plan --mem` and QFIT_MAX_MEMORY (qfit_parse_size), and
 * QFIT_VK_FEATURES (qfit_vk_parse_features).
 *
 * The first byte picks the option, the rest is its value (an exact-size, NUL-terminated
 * heap copy, so ASan sees any read past the end). Properties beyond "no crash":
 *  - every option either takes the value (1) or refuses it with a message (-1), never 0;
 *  - an accepted size is at least one byte, prints back (as bytes) to a string that parses
 *    to the same value, and --gpu-mem stores exactly what qfit_parse_size gives;
 *  - an accepted --gpu-layers is -1 or more;
 *  - an accepted feature list is a mask of known features whose names parse back to it.
 * Build: make fuzz; run: see fuzz/README.md.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/model.h"
#include "qfit/vulkan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const OPTS[] = { "--ctx", "-c", "--kv-type", "--cache-type-k", "-ctv", "--flash-attn",
                                    "--device", "--gpu-layers", "-ngl", "--gpu-mem" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char *val = malloc(size);
    if (!val) return 0;
    memcpy(val, data + 1, size - 1);
    val[size - 1] = 0;
    const char *opt = OPTS[data[0] % (sizeof OPTS / sizeof OPTS[0])];
    uint64_t bytes = 0;
    const int sz = qfit_parse_size(val, &bytes);
    if (sz == 0) {
        char back[32];
        uint64_t again = 0;
        if (bytes < 1) abort();
        snprintf(back, sizeof back, "%" PRIu64, bytes);
        if (qfit_parse_size(back, &again) != 0 || again != bytes) abort();
    } else if (sz != -1) {
        abort();
    }
    unsigned feat = 0;
    char ferr[128] = "";
    if (qfit_vk_parse_features(val, &feat, ferr, sizeof ferr) == 0) {
        char names[64];
        unsigned again = 99;
        if (feat & ~(unsigned)QFIT_VK_FEAT_ALL) abort();
        if (qfit_vk_parse_features(qfit_vk_feature_names(feat, names, sizeof names), &again, ferr, sizeof ferr) != 0 ||
            again != feat)
            abort();
    } else if (!ferr[0]) {
        abort();
    }
    qfit_context_params p = qfit_context_default_params();
    char err[256] = "";
    const int r = qfit_context_params_parse_arg(&p, opt, val, err, sizeof err);
    if (r == 0 || (r < 0 && !err[0])) abort();
    if (r == 1 && !strcmp(opt, "--gpu-mem") && (sz != 0 || p.gpu_mem != bytes)) abort();
    if (r == 1 && (!strcmp(opt, "--gpu-layers") || !strcmp(opt, "-ngl")) && p.n_gpu_layers < -1) abort();
    free(val);
    return 0;
}
