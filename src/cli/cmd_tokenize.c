/* qfit tokenize — token ids and pieces of a text, printed like llama.cpp's
 * llama-tokenize tool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "qfit/gguf.h"
#include "qfit/tokenizer.h"

static void tokenize_usage(FILE *f)
{
    fprintf(f,
            "usage: qfit tokenize MODEL.gguf TEXT [options]\n"
            "       qfit tokenize MODEL.gguf -f FILE [options]\n"
            "\n"
            "Prints one line per token, 'ID -> 'PIECE'' (as llama-tokenize does).\n"
            "  -f FILE          tokenize the content of FILE (as is)\n"
            "  --ids-only       print only the ids, as a list: [1, 2, 3]\n"
            "  --no-bos         do not add BOS/EOS even if the model asks for them\n"
            "  --parse-special  control tokens written in the text (e.g. <s>) become those tokens\n"
            "  --show-count     print the number of tokens at the end\n");
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        cap *= 2;
        char *t = realloc(buf, cap);
        if (!t) { free(buf); buf = NULL; break; }
        buf = t;
    }
    if (buf && ferror(f)) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) *len = n;
    return buf;
}

int qfit_cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *text = NULL, *file = NULL;
    bool ids_only = false, no_bos = false, parse_special = false, show_count = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { tokenize_usage(stdout); return 0; }
        else if (!strcmp(a, "--ids-only") || !strcmp(a, "--ids")) ids_only = true;
        else if (!strcmp(a, "--no-bos")) no_bos = true;
        else if (!strcmp(a, "--parse-special")) parse_special = true;
        else if (!strcmp(a, "--show-count")) show_count = true;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (i + 1 >= argc) { fprintf(stderr, "qfit tokenize: %s needs a file name\n", a); return 2; }
            file = argv[++i];
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "qfit tokenize: unknown option %s\n", a);
            tokenize_usage(stderr);
            return 2;
        } else if (!model) model = a;
        else if (!text) text = a;
        else { fprintf(stderr, "qfit tokenize: unexpected argument '%s'\n", a); tokenize_usage(stderr); return 2; }
    }
    if (!model || (!text && !file) || (text && file)) {
        fprintf(stderr, "qfit tokenize: need MODEL.gguf and either TEXT or -f FILE\n");
        tokenize_usage(stderr);
        return 2;
    }

    char err[512] = "";
    qfit_gguf *g = qfit_gguf_open(model, err, sizeof err);
    if (!g) { fprintf(stderr, "qfit tokenize: %s: %s\n", model, err); return 1; }
    qfit_tokenizer *t = qfit_tokenizer_from_gguf(g, err, sizeof err);
    qfit_gguf_close(g);   /* the tokenizer keeps its own copies */
    if (!t) { fprintf(stderr, "qfit tokenize: %s: %s\n", model, err); return 1; }

    char *content = NULL;
    size_t len = 0;
    if (file) {
        content = read_all(file, &len);
        if (!content) {
            fprintf(stderr, "qfit tokenize: cannot read %s\n", file);
            qfit_tokenizer_free(t);
            return 1;
        }
    } else {
        len = strlen(text);
    }
    const char *src = file ? content : text;

    int32_t *ids = NULL;
    size_t n = 0;
    const bool add_special = qfit_tokenizer_add_bos(t) && !no_bos;
    if (qfit_tokenize_alloc(t, src, len, add_special, parse_special, &ids, &n)) {
        fprintf(stderr, "qfit tokenize: tokenization failed (out of memory?)\n");
        free(content);
        qfit_tokenizer_free(t);
        return 1;
    }

    if (ids_only) {
        fputc('[', stdout);
        for (size_t i = 0; i < n; i++) printf(i ? ", %d" : "%d", ids[i]);
        fputs("]\n", stdout);
    } else {
        size_t cap = 256;
        char *piece = malloc(cap);
        for (size_t i = 0; piece && i < n; i++) {
            size_t pl = qfit_token_to_piece(t, ids[i], piece, cap, 0, true);
            if (pl > cap) {
                char *np = realloc(piece, pl);
                if (!np) break;
                piece = np;
                cap = pl;
                qfit_token_to_piece(t, ids[i], piece, cap, 0, true);
            }
            printf("%6d -> '", ids[i]);
            fwrite(piece, 1, pl, stdout);
            fputs("'\n", stdout);
        }
        free(piece);
    }
    if (show_count) printf("Total number of tokens: %zu\n", n);

    free(ids);
    free(content);
    qfit_tokenizer_free(t);
    return fflush(stdout) == 0 ? 0 : 1;
}
