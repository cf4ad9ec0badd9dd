/* libFuzzer target for the Go text/template engine (qfit_template_render_go).
 *
 * The input is the template text (NUL-terminated copy, so ASan sees reads past its end); it is
 * rendered over a fixed conversation with tools, tool calls and Unicode, twice: once as given,
 * and once with the word "Messages" removed so the same text also runs in Ollama's legacy
 * per-turn mode. Either the render succeeds with a NUL-terminated output no longer than
 * QFIT_TEMPLATE_MAX_OUTPUT, or it fails with a message starting "template".
 *
 * The engine's three files are compiled into this target directly (FUZZ_DIRS_fuzz_gotmpl is
 * empty): src/template/template.c also dispatches to the Jinja engine, which lives elsewhere.
 * make does not see those #includes as dependencies: rebuild with
 * `make -B build/fuzz/fuzz_gotmpl` after changing the engine.
 *
 * Run (seeds: Ollama's templates and the test templates; new inputs go to the first folder):
 *   mkdir -p fuzz/corpus-run
 *   ./build/fuzz/fuzz_gotmpl -max_total_time=180 -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
 *       -artifact_prefix=build/fuzz/ fuzz/corpus-run tests/data/templates/ollama
 */
#include "template/gotmpl_exec.c"
#include "template/gotmpl_parse.c"
#include "template/gotmpl_value.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char conversation[] =
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"Hi <there> & caf\\u00e9 \\ud83d\\ude00\"},"
    "{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"hmm\",\"tool_calls\":[{\"id\":\"c1\","
    "\"function\":{\"index\":0,\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\",\"days\":3,"
    "\"x\":[1.5,null,{\"b\":true}]}}}]},"
    "{\"role\":\"tool\",\"content\":\"sunny\",\"tool_name\":\"get_weather\"},"
    "{\"role\":\"user\",\"content\":\"thanks\"},{\"role\":\"assistant\",\"content\":\"You are\"}]";

static const char tools[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
    "\"parameters\":{\"type\":\"object\",\"required\":[\"city\"],\"properties\":{"
    "\"city\":{\"type\":\"string\",\"description\":\"City\"},"
    "\"unit\":{\"type\":[\"string\",\"null\"],\"enum\":[\"c\",\"f\"]},"
    "\"opts\":{\"type\":\"object\",\"properties\":{\"z\":{\"type\":\"integer\"}}}}}}}]";

static void check(const char *tmpl, const qfit_chat_input *in)
{
    char err[512], *out = NULL;
    err[0] = 0;
    if (qfit_template_render_go(tmpl, in, &out, err, sizeof(err)) == 0) {
        if (!out) abort();
        if (strlen(out) > QFIT_TEMPLATE_MAX_OUTPUT) abort();
        free(out);
    } else {
        if (out || strncmp(err, "template", 8)) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *msgs, *tl;
    if (!msgs) {
        msgs = json_loads(conversation, 0, NULL);
        tl = json_loads(tools, 0, NULL);
        if (!msgs || !tl) abort();
    }
    char *tmpl = malloc(size + 1);
    if (!tmpl) return 0;
    memcpy(tmpl, data, size);
    tmpl[size] = 0;
    qfit_chat_input in = { .messages = msgs, .tools = tl, .think = (int)(size % 3) - 1 };
    check(tmpl, &in);
    /* the same text without ".Messages": Ollama's legacy mode */
    for (char *p = tmpl; (p = strstr(p, "Messages")); p++) memcpy(p, "Massages", 8);
    check(tmpl, &in);
    free(tmpl);
    return 0;
}
