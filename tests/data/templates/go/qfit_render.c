/* Renders each case of a cases file with qfit_template_render_go and prints the results as JSON
 * (the differential check in README.md). Build from the repository root:
 *   cc -std=c11 -D_GNU_SOURCE -Iinclude -Isrc tests/data/templates/go/qfit_render.c \
 *      src/template/gotmpl_*.c -ljansson -lm -o /tmp/qfit_render
 */
#include <string.h>
#include "qfit/template.h"
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    json_error_t je; json_t *cases = json_load_file(argv[1], 0, &je);
    if (!cases) { fprintf(stderr, "%s\n", je.text); return 1; }
    json_t *res = json_array(); size_t i; json_t *c;
    json_array_foreach(cases, i, c) {
        json_t *think = json_object_get(c, "think");
        qfit_chat_input in = { .messages = json_object_get(c, "messages"), .tools = json_object_get(c, "tools"),
                               .think = think ? json_is_true(think) : -1 };
        char err[512], *out = NULL;
        json_t *r = json_object();
        if (qfit_template_render_go(json_string_value(json_object_get(c, "template")), &in, &out, err, sizeof err) == 0) {
            { json_t *s = json_stringn(out, strlen(out)); json_object_set_new(r, s ? "expected" : "invalid_utf8", s ? s : json_true()); free(out); }
        } else json_object_set_new(r, "error", json_string(err));
        json_array_append_new(res, r);
    }
    json_dumpf(res, stdout, JSON_INDENT(1)); fflush(stdout); json_decref(res); json_decref(cases); return 0;
}
