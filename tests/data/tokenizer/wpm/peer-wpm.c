/*
 * peer-wpm MODEL.gguf CASES.txt IDS.tsv [PIECES.tsv]
 *
 * Writes llama.cpp's answers for the WordPiece tests (see README.md), one line per
 * line of CASES.txt (C escapes \xHH \\ unescaped first):
 *   ids(add_special=1, parse_special=0) TAB ids(0, 0) TAB ids(1, 1)
 *   TAB detokenize(first ids, remove_special=0, unparse_special=0)
 *   TAB detokenize(first ids, remove_special=1, unparse_special=1)
 * ids space-separated, texts escaped (bytes < 0x20, 0x7F and '\' as \xHH).
 * The first line is "#info n_vocab bos eos sep pad mask nl add_bos add_eos add_sep".
 * PIECES.tsv: for every id, token_to_piece(special=0) TAB token_to_piece(special=1)
 * TAB is_eog TAB is_control.
 * Built and run by make-refs.sh against the peer's prebuilt llama.cpp.
 */
#include "peer_common.h"

#include <stdlib.h>
#include <string.h>

static size_t unescape(const char * s, size_t n, char * out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\\') {
            out[o++] = '\\';
            i++;
        } else if (s[i] == '\\' && i + 3 < n && s[i + 1] == 'x') {
            char hx[3] = { s[i + 2], s[i + 3], 0 };
            out[o++] = (char) strtol(hx, NULL, 16);
            i += 3;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

static void put_escaped(FILE * f, const char * s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c < 0x20 || c == 0x7F || c == '\\') {
            fprintf(f, "\\x%02x", c);
        } else {
            fputc(c, f);
        }
    }
}

static void put_ids(FILE * f, const llama_token * t, int n) {
    for (int i = 0; i < n; i++) {
        fprintf(f, i ? " %d" : "%d", t[i]);
    }
}

static void put_detok(FILE * f, const struct llama_vocab * v, const llama_token * t, int n, bool rm, bool unparse) {
    int cap = 64;
    char * buf = malloc((size_t) cap);
    int r = llama_detokenize(v, t, n, buf, cap, rm, unparse);
    if (r < 0) {
        cap = -r;
        buf = realloc(buf, (size_t) cap);
        r = llama_detokenize(v, t, n, buf, cap, rm, unparse);
    }
    if (r < 0) {
        peer_die("detokenize failed");
    }
    put_escaped(f, buf, (size_t) r);
    free(buf);
}

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.gguf CASES.txt IDS.tsv [PIECES.tsv]\n", argv[0]);
        return 1;
    }
    peer_init(false);
    struct llama_model * model = peer_load_model(argv[1], true);
    const struct llama_vocab * v = llama_model_get_vocab(model);

    size_t len;
    char * cases = peer_read_file(argv[2], &len);
    FILE * f = fopen(argv[3], "w");
    if (!f) {
        peer_die("cannot write %s", argv[3]);
    }
    fprintf(f, "#info %d %d %d %d %d %d %d %d %d %d\n", llama_vocab_n_tokens(v), llama_vocab_bos(v),
            llama_vocab_eos(v), llama_vocab_sep(v), llama_vocab_pad(v), llama_vocab_mask(v), llama_vocab_nl(v),
            (int) llama_vocab_get_add_bos(v), (int) llama_vocab_get_add_eos(v), (int) llama_vocab_get_add_sep(v));
    char * text = malloc(len + 1);
    for (size_t pos = 0; pos < len;) {
        const char * nl = memchr(cases + pos, '\n', len - pos);
        size_t ll = nl ? (size_t) (nl - (cases + pos)) : len - pos;
        size_t n = unescape(cases + pos, ll, text);
        pos += ll + 1;
        int na, nb, nc;
        llama_token * a = peer_tokenize(v, text, n, true, false, &na);
        llama_token * b = peer_tokenize(v, text, n, false, false, &nb);
        llama_token * c = peer_tokenize(v, text, n, true, true, &nc);
        put_ids(f, a, na);
        fputc('\t', f);
        put_ids(f, b, nb);
        fputc('\t', f);
        put_ids(f, c, nc);
        fputc('\t', f);
        put_detok(f, v, a, na, false, false);
        fputc('\t', f);
        put_detok(f, v, a, na, true, true);
        fputc('\n', f);
        free(a);
        free(b);
        free(c);
    }
    fclose(f);
    if (argc > 4) {
        FILE * p = fopen(argv[4], "w");
        if (!p) {
            peer_die("cannot write %s", argv[4]);
        }
        char buf[1024];
        for (int id = 0; id < llama_vocab_n_tokens(v); id++) {
            int r = llama_token_to_piece(v, id, buf, sizeof buf, 0, false);
            put_escaped(p, buf, r > 0 ? (size_t) r : 0);
            fputc('\t', p);
            r = llama_token_to_piece(v, id, buf, sizeof buf, 0, true);
            put_escaped(p, buf, r > 0 ? (size_t) r : 0);
            fprintf(p, "\t%d\t%d\n", (int) llama_vocab_is_eog(v, id), (int) llama_vocab_is_control(v, id));
        }
        fclose(p);
    }
    free(text);
    free(cases);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
