/* qfit run --format json|SCHEMA.json and --grammar FILE.gbnf (run_grammar.h). */
#include "cli/run_grammar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfit/schema.h"

/* a whole file of at most max bytes, NUL-terminated; NULL with a message */
static char *read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "qfit run: cannot open %s\n", path); return NULL; }
    char *buf = malloc(max + 2);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    const int bad = !buf || ferror(f);
    fclose(f);
    if (bad) { fprintf(stderr, "qfit run: cannot read %s\n", path); free(buf); return NULL; }
    if (n > max) { fprintf(stderr, "qfit run: %s is larger than %zu bytes\n", path, max); free(buf); return NULL; }
    buf[n] = 0;
    *len = n;
    return buf;
}

int qfit_run_grammar_load(const char *format, const char *grammar_path, qfit_grammar **out)
{
    *out = NULL;
    if (!format && !grammar_path) return 0;
    if (format && grammar_path) { fprintf(stderr, "qfit run: --format and --grammar cannot be combined\n"); return -1; }
    char err[512];
    size_t len = 0;
    char *text = NULL;
    const char *src = format ? format : grammar_path;
    if (format && !strcmp(format, "json")) {
        text = strdup(qfit_schema_any_json_gbnf());
        len = text ? strlen(text) : 0;
    } else if (format) {
        char *schema = read_file(format, QFIT_SCHEMA_MAX_BYTES, &len);
        if (!schema) return -1;
        text = qfit_schema_to_gbnf(schema, len, err, sizeof err);
        free(schema);
        if (!text) { fprintf(stderr, "qfit run: --format %s: %s\n", format, err); return -1; }
        len = strlen(text);
    } else if (!(text = read_file(grammar_path, QFIT_GRAMMAR_MAX_TEXT, &len))) return -1;
    if (!text) { fprintf(stderr, "qfit run: out of memory\n"); return -1; }
    *out = qfit_grammar_parse(text, len, err, sizeof err);
    free(text);
    if (!*out) {
        fprintf(stderr, "qfit run: %s %s: %s\n", format ? "--format" : "--grammar", src, err);
        return -1;
    }
    return 0;
}
