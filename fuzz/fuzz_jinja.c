/* libFuzzer target: the Jinja chat-template engine on arbitrary template text.
 *
 * The input (any bytes, made NUL-terminated; an embedded NUL ends the template early) is
 * rendered by qfit_template_render_jinja() over a fixed conversation with system, user,
 * assistant (with a tool call) and tool turns and a tools list, so templates that walk
 * messages, tool calls and schemas reach real data. A render must either succeed with a
 * NUL-terminated output no longer than QFIT_TEMPLATE_MAX_OUTPUT or fail with a message that
 * starts with "jinja template"; anything else aborts. Bounds (steps, depth, memory, output)
 * keep every input finite.
 * Build: make fuzz (needs the Go engine of src/template linked in too; until then:
 *   clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -O1 -g -fsanitize=fuzzer,address,undefined \
 *         fuzz/fuzz_jinja.c src/template/jinja*.c -o build/fuzz/fuzz_jinja -ljansson -lm)
 * Run, seeded with the real templates (new inputs go to the first, git-ignored directory):
 *   mkdir -p fuzz/corpus-run && ./build/fuzz/fuzz_jinja -max_total_time=180 -max_len=20000 \
 *       -timeout=10 -rss_limit_mb=2048 fuzz/corpus-run tests/data/templates/jinja/llama.cpp
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "qfit/template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const conversation =
    "{\"messages\":["
    "{\"role\":\"system\",\"content\":\"You are helpful.\"},"
    "{\"role\":\"user\",\"content\":\"Weather in Paris? \\u4e16\\u754c \\ud83d\\udc4b\"},"
    "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"call12345\",\"type\":\"function\","
    "\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\",\"days\":2}}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call12345\",\"name\":\"get_weather\",\"content\":\"21.5\"},"
    "{\"role\":\"assistant\",\"content\":\"It is 21.5 C.\\nAnything else?\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"
    "\"days\":{\"type\":\"integer\"}},\"required\":[\"city\"]}}}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *conv;
    if (!conv) {
        conv = json_loads(conversation, 0, NULL);
        if (!conv) abort();
    }
    char *tmpl = malloc(size + 1);
    if (!tmpl) return 0;
    memcpy(tmpl, data, size);
    tmpl[size] = 0;
    qfit_chat_input in = {
        .messages = json_object_get(conv, "messages"),
        .tools = json_object_get(conv, "tools"),
        .add_generation_prompt = size & 1,
        .bos_token = "<s>",
        .eos_token = "</s>",
        .think = (int)(size % 3) - 1,
    };
    char *out = NULL, err[512];
    err[0] = 0;
    if (qfit_template_render_jinja(tmpl, &in, &out, err, sizeof err) == 0) {
        if (!out || strlen(out) > QFIT_TEMPLATE_MAX_OUTPUT) abort();
        free(out);
    } else if (out || strncmp(err, "jinja template", 14) != 0) {
        abort();
    }
    free(tmpl);
    return 0;
}
