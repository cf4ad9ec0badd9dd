/* Chat templates: which language a template is written in, and dispatch to its engine. */
#include "qfit/template.h"

#include <stdio.h>
#include <string.h>

/* Go text/template actions start with "{{" (optionally "{{-") and the first word of an Ollama
 * template action is a field (".Messages"), a keyword (if/range/with/else/end/template/block/
 * define), a variable ("$x") or a function call (eq, and, len, json, ...). Jinja statements use
 * "{%", which Go never does; Jinja expressions reference names without a leading dot. */
static int go_action_start(const char *p)
{
    static const char *const kw[] = { "if ", "range ", "with ", "else", "end", "template ",
                                      "block ", "define ", "break", "continue", NULL };
    if (*p == '-') p++;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (*p == '.' || *p == '$') return 1;
    for (int i = 0; kw[i]; i++)
        if (!strncmp(p, kw[i], strlen(kw[i]))) return 1;
    return 0;
}

qfit_template_kind qfit_template_detect(const char *text)
{
    if (!text) return QFIT_TEMPLATE_UNKNOWN;
    if (strstr(text, "{%") || strstr(text, "{#")) return QFIT_TEMPLATE_JINJA;
    int go = 0, other = 0;
    for (const char *p = strstr(text, "{{"); p; p = strstr(p + 2, "{{")) {
        if (go_action_start(p + 2)) go++;
        else other++;
    }
    if (go > 0 && go >= other) return QFIT_TEMPLATE_GO;
    if (other > 0) return QFIT_TEMPLATE_JINJA;
    return QFIT_TEMPLATE_GO; /* no actions at all: literal text, Ollama's default language */
}

const char *qfit_template_kind_name(qfit_template_kind k)
{
    switch (k) {
    case QFIT_TEMPLATE_GO:    return "go";
    case QFIT_TEMPLATE_JINJA: return "jinja";
    default:                  return "unknown";
    }
}

int qfit_template_render(const char *tmpl, qfit_template_kind kind, const qfit_chat_input *in,
                         char **out, char *err, size_t err_len)
{
    if (!tmpl || !in || !out) {
        snprintf(err, err_len, "template: missing argument");
        return -1;
    }
    if (kind == QFIT_TEMPLATE_UNKNOWN) kind = qfit_template_detect(tmpl);
    switch (kind) {
    case QFIT_TEMPLATE_GO:    return qfit_template_render_go(tmpl, in, out, err, err_len);
    case QFIT_TEMPLATE_JINJA: return qfit_template_render_jinja(tmpl, in, out, err, err_len);
    default:
        snprintf(err, err_len, "template: unknown template language");
        return -1;
    }
}
