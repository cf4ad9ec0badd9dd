/* Reading llama.cpp reference text files (tests/data/engine, shared/testdata/.../logits):
 * header-only and free of Criterion, so the cross-compiled NEON model test uses it too. */
#ifndef QFIT_REFPARSE_H
#define QFIT_REFPARSE_H

#include <stdint.h>
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

#endif
