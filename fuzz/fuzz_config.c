/* libFuzzer target: the environment-value parsers of qfit/config.h on arbitrary bytes
 * (the text of QFIT_KEEP_ALIVE / OLLAMA_HOST as a user or a script may set it).
 *
 * qfit_parse_duration, with and without bare seconds: on success the value is >= 0
 * (a negative duration is QFIT_FOREVER_NS); on failure the message is not empty.
 * qfit_parse_host: on success the scheme is http or https, the port 0..65535, the host
 * non-empty and NUL-terminated inside its buffer, the path empty or starting with '/';
 * on failure a message. Build: make fuzz; run:
 *   ./build/fuzz/fuzz_config -max_total_time=60 -max_len=600 -artifact_prefix=build/fuzz/ \
 *       -print_final_stats=1
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;   /* the environment gives C strings: cut at the first NUL */
    char err[512];
    for (int bare = 0; bare < 2; bare++) {
        int64_t ns = -5;
        err[0] = 0;
        if (qfit_parse_duration(s, bare, &ns, err, sizeof err) == 0) {
            if (ns < 0) abort();
        } else if (!err[0]) {
            abort();
        }
    }
    qfit_host h;
    err[0] = 0;
    if (qfit_parse_host(s, &h, err, sizeof err) == 0) {
        if (strcmp(h.scheme, "http") && strcmp(h.scheme, "https")) abort();
        if (h.port < 0 || h.port > 65535) abort();
        if (!memchr(h.host, 0, sizeof h.host) || !h.host[0]) abort();
        if (!memchr(h.path, 0, sizeof h.path) || (h.path[0] && h.path[0] != '/')) abort();
    } else if (!err[0]) {
        abort();
    }
    free(s);
    return 0;
}
