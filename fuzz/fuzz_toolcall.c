/* libFuzzer target: the tool-call / thinking split on arbitrary text.
 *
 * Byte 0 picks the format, thinking flags and whether tools are given; byte 1
 * seeds the chunk sizes. The text is parsed whole and streamed in chunks; both
 * must agree (same success, content, thinking, calls), an error must come with
 * a message, and every call must carry an object of arguments.
 * Build: make fuzz; run:
 *   mkdir -p fuzz/corpus-toolcall
 *   ./build/fuzz/fuzz_toolcall -max_total_time=180 -max_len=4096 -timeout=10 \
 *       -artifact_prefix=build/fuzz/ -print_final_stats=1 fuzz/corpus-toolcall
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/toolcall.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char TOOLS[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\"},\"days\":{\"type\":\"integer\",\"minimum\":1},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\"]}}},\"required\":[\"city\"],"
    "\"additionalProperties\":false}}},{\"type\":\"function\",\"function\":{\"name\":\"now\"}}]";

static void die(const char *what)
{
    fprintf(stderr, "%s\n", what);
    abort();
}

static void append(char **s, size_t *n, const char *add, size_t k)
{
    char *q = realloc(*s, *n + k + 1);
    if (!q) die("out of memory");
    memcpy(q + *n, add, k);
    *n += k;
    q[*n] = 0;
    *s = q;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    qfit_toolcall_format fmt = (qfit_toolcall_format)(data[0] % QFIT_TOOLCALL_FORMAT_COUNT);
    bool think = data[0] & 0x08, starts = data[0] & 0x10;
    json_t *tools = (data[0] & 0x20) ? json_loads(TOOLS, 0, NULL) : NULL;
    uint32_t rng = data[1];
    const char *text = (const char *)data + 2;
    size_t n = size - 2;

    char err[512] = "";
    qfit_toolcall_result whole;
    int rc_whole = qfit_toolparse_text(fmt, think, starts, tools, text, n, &whole, err, sizeof err);
    if (rc_whole && !err[0]) die("whole: error without a message");

    qfit_toolparse *p = qfit_toolparse_new(fmt, think, starts, tools, err, sizeof err);
    if (!p) die(err);
    char *content = NULL, *thinking = NULL;
    size_t content_len = 0, thinking_len = 0, n_calls = 0;
    append(&content, &content_len, "", 0);
    append(&thinking, &thinking_len, "", 0);
    qfit_toolparse_delta d;
    int rc = 0;
    for (size_t at = 0; at <= n && !rc; ) {
        bool last = at == n;
        size_t k = 0;
        if (!last) {
            rng = rng * 1664525u + 1013904223u;
            k = 1 + (rng >> 16) % 16;
            if (k > n - at) k = n - at;
        }
        err[0] = 0;
        rc = last ? qfit_toolparse_finish(p, &d, err, sizeof err) : qfit_toolparse_feed(p, text + at, k, &d, err, sizeof err);
        if (rc) {
            if (!err[0]) die("stream: error without a message");
            break;
        }
        append(&content, &content_len, d.content, d.content_len);
        append(&thinking, &thinking_len, d.thinking, d.thinking_len);
        for (size_t i = 0; i < d.n_calls; i++) {
            if (!json_is_object(d.calls[i].arguments)) die("call without an arguments object");
            if (rc_whole == 0 && (n_calls >= whole.n_calls || strcmp(whole.calls[n_calls].name, d.calls[i].name) ||
                                  !json_equal(whole.calls[n_calls].arguments, d.calls[i].arguments)))
                die("streamed call differs from the whole-text call");
            n_calls++;
        }
        if (last) break;
        at += k;
    }
    if ((rc != 0) != (rc_whole != 0)) die("streamed and whole text disagree on success");
    if (!rc && (content_len != whole.content_len || memcmp(content, whole.content, content_len) ||
                thinking_len != whole.thinking_len || memcmp(thinking, whole.thinking, thinking_len) ||
                n_calls != whole.n_calls))
        die("streamed and whole text differ");
    qfit_toolparse_free(p);
    if (!rc_whole) qfit_toolcall_result_free(&whole);
    free(content);
    free(thinking);
    json_decref(tools);
    return 0;
}
