/* Model names (Ollama's types/model/name.go grammar) and sha256 digests.
 *
 * Both are validated completely before anything else sees them: the store builds
 * paths only from parts that passed these checks, so no "..", "/", "\\", "%" or
 * NUL can ever reach the file system.
 */
#include "qfit/store.h"
#include "store/store_internal.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_HOST   "registry.ollama.ai"
#define DEFAULT_NS     "library"
#define DEFAULT_TAG    "latest"

typedef enum { PART_HOST, PART_NS, PART_MODEL, PART_TAG } part_kind;

static const char *const PART_NAME[] = { "host", "namespace", "model", "tag" };
static const char *const PART_ALLOWED[] = {
    "letters, digits, '_', '-', '.', ':'",
    "letters, digits, '_', '-'",
    "letters, digits, '_', '-', '.'",
    "letters, digits, '_', '-', '.'",
};

void st_quote(const char *s, size_t len, char *buf, size_t cap)
{
    /* printable ASCII kept, everything else as \xNN; cut at 80 input bytes */
    size_t o = 0;
    if (cap == 0) return;
    for (size_t i = 0; i < len && i < 80 && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    if (len > 80 && o + 4 < cap) { memcpy(buf + o, "...", 3); o += 3; }
    buf[o] = 0;
}

static bool alnum_us(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static int check_part(part_kind k, const char *p, size_t len, const char *whole, size_t whole_len,
                      char *err, size_t err_len)
{
    char q[400];
    st_quote(whole, whole_len, q, sizeof q);
    size_t max = k == PART_HOST ? QFIT_NAME_HOST_MAX : QFIT_NAME_PART_MAX;
    if (len == 0) {
        snprintf(err, err_len, "invalid model name \"%s\": empty %s", q, PART_NAME[k]);
        return -1;
    }
    if (len > max) {
        snprintf(err, err_len, "invalid model name \"%s\": %s is %zu characters, at most %zu allowed",
                 q, PART_NAME[k], len, max);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        bool ok = alnum_us(c);
        if (!ok && i > 0) {
            ok = c == '-' || (c == '.' && k != PART_NS) || (c == ':' && k == PART_HOST);
        }
        if (!ok) {
            char pq[200], cq[16];
            st_quote(p, len, pq, sizeof pq);
            st_quote((const char *)&p[i], 1, cq, sizeof cq);
            snprintf(err, err_len, "invalid model name \"%s\": %s \"%s\" has '%s' at position %zu "
                     "(a %s starts with a letter, digit or '_' and contains only %s)",
                     q, PART_NAME[k], pq, cq, i + 1, PART_NAME[k], PART_ALLOWED[k]);
            return -1;
        }
    }
    return 0;
}

/* Last index of c in s[0..len), or -1. */
static long last_index(const char *s, size_t len, char c)
{
    for (size_t i = len; i > 0; i--)
        if (s[i - 1] == c) return (long)(i - 1);
    return -1;
}

static void set_part(char *dst, const char *src, size_t len)
{
    memcpy(dst, src, len);
    dst[len] = 0;
}

int qfit_name_parse_len(const char *s, size_t len, qfit_name *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (!s || len == 0) {
        snprintf(err, err_len, "invalid model name: empty");
        return -1;
    }
    if (len > QFIT_NAME_MAX_INPUT) {
        snprintf(err, err_len, "invalid model name: %zu bytes long, at most %d allowed", len, QFIT_NAME_MAX_INPUT);
        return -1;
    }
    const char *nul = memchr(s, 0, len);
    if (nul) {
        char q[400];
        st_quote(s, len, q, sizeof q);
        snprintf(err, err_len, "invalid model name \"%s\": NUL byte at position %zu", q, (size_t)(nul - s) + 1);
        return -1;
    }
    /* Ollama's ParseNameBare, right to left. Each part is [p, p+n). */
    const char *part[4] = { 0 };
    size_t plen[4] = { 0 };
    bool given[4] = { false, false, false, false };
    size_t n = len;
    long colon = last_index(s, n, ':'), slash = last_index(s, n, '/');
    if (colon > slash) {
        part[PART_TAG] = s + colon + 1;
        plen[PART_TAG] = n - (size_t)colon - 1;
        given[PART_TAG] = true;
        n = (size_t)colon;
    }
    slash = last_index(s, n, '/');
    part[PART_MODEL] = s + slash + 1;
    plen[PART_MODEL] = n - (size_t)(slash + 1);
    given[PART_MODEL] = true;
    if (slash >= 0) {
        n = (size_t)slash;
        slash = last_index(s, n, '/');
        part[PART_NS] = s + slash + 1;
        plen[PART_NS] = n - (size_t)(slash + 1);
        given[PART_NS] = true;
        if (slash >= 0) {
            n = (size_t)slash;
            part[PART_HOST] = s;
            plen[PART_HOST] = n;
            given[PART_HOST] = true;
            /* an optional scheme:// before the host */
            for (size_t i = 0; i + 3 <= n; i++) {
                if (memcmp(s + i, "://", 3) != 0) continue;
                if (i == 4 && strncasecmp(s, "http", 4) == 0) strcpy(out->scheme, "http");
                else if (i == 5 && strncasecmp(s, "https", 5) == 0) strcpy(out->scheme, "https");
                else {
                    char q[400], sq[64];
                    st_quote(s, len, q, sizeof q);
                    st_quote(s, i, sq, sizeof sq);
                    snprintf(err, err_len, "invalid model name \"%s\": scheme \"%s\" is not http or https", q, sq);
                    return -1;
                }
                part[PART_HOST] = s + i + 3;
                plen[PART_HOST] = n - i - 3;
                break;
            }
        }
    }
    for (int k = PART_HOST; k <= PART_TAG; k++) {
        if (!given[k]) continue;
        if (check_part((part_kind)k, part[k], plen[k], s, len, err, err_len) != 0) return -1;
    }
    if (!out->scheme[0]) strcpy(out->scheme, "https");
    if (given[PART_HOST]) set_part(out->host, part[PART_HOST], plen[PART_HOST]);
    else strcpy(out->host, DEFAULT_HOST);
    if (given[PART_NS]) set_part(out->ns, part[PART_NS], plen[PART_NS]);
    else strcpy(out->ns, DEFAULT_NS);
    set_part(out->model, part[PART_MODEL], plen[PART_MODEL]);
    if (given[PART_TAG]) set_part(out->tag, part[PART_TAG], plen[PART_TAG]);
    else strcpy(out->tag, DEFAULT_TAG);
    return 0;
}

int qfit_name_parse(const char *s, qfit_name *out, char *err, size_t err_len)
{
    /* strnlen: a huge string is refused without walking all of it */
    return qfit_name_parse_len(s, s ? strnlen(s, QFIT_NAME_MAX_INPUT + 1) : 0, out, err, err_len);
}

static int emit(char *buf, size_t cap, int n)
{
    if (n < 0 || (size_t)n >= cap) { if (cap) buf[0] = 0; return -1; }
    return n;
}

int qfit_name_display(const qfit_name *n, char *buf, size_t cap)
{
    if (strcasecmp(n->host, DEFAULT_HOST) != 0)
        return emit(buf, cap, snprintf(buf, cap, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag));
    if (strcasecmp(n->ns, DEFAULT_NS) != 0)
        return emit(buf, cap, snprintf(buf, cap, "%s/%s:%s", n->ns, n->model, n->tag));
    return emit(buf, cap, snprintf(buf, cap, "%s:%s", n->model, n->tag));
}

int qfit_name_full(const qfit_name *n, char *buf, size_t cap)
{
    return emit(buf, cap, snprintf(buf, cap, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag));
}

bool qfit_name_equal(const qfit_name *a, const qfit_name *b)
{
    return strcasecmp(a->host, b->host) == 0 && strcasecmp(a->ns, b->ns) == 0 &&
           strcasecmp(a->model, b->model) == 0 && strcasecmp(a->tag, b->tag) == 0;
}

/* ---------------------------------------------------------------- digests */

int qfit_digest_parse_len(const char *s, size_t len, qfit_digest *out, char *err, size_t err_len)
{
    char q[400];
    memset(out, 0, sizeof *out);
    if (!s) len = 0;
    st_quote(s ? s : "", len, q, sizeof q);
    if (len < 7 || memcmp(s, "sha256", 6) != 0 || (s[6] != ':' && s[6] != '-')) {
        snprintf(err, err_len, "invalid digest \"%s\": expected \"sha256:\" followed by 64 lowercase hex digits", q);
        return -1;
    }
    size_t nhex = len - 7;
    for (size_t i = 0; i < nhex; i++) {
        unsigned char c = (unsigned char)s[7 + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            snprintf(err, err_len, "invalid digest \"%s\": character %zu is not a lowercase hex digit", q, 8 + i);
            return -1;
        }
    }
    if (nhex != QFIT_DIGEST_HEX) {
        snprintf(err, err_len, "invalid digest \"%s\": %zu hex digits, expected %d", q, nhex, QFIT_DIGEST_HEX);
        return -1;
    }
    memcpy(out->hex, s + 7, QFIT_DIGEST_HEX);
    out->hex[QFIT_DIGEST_HEX] = 0;
    return 0;
}

int qfit_digest_parse(const char *s, qfit_digest *out, char *err, size_t err_len)
{
    return qfit_digest_parse_len(s, s ? strnlen(s, 128) : 0, out, err, err_len);
}

void qfit_digest_str(const qfit_digest *d, char buf[QFIT_DIGEST_STR])
{
    snprintf(buf, QFIT_DIGEST_STR, "sha256:%s", d->hex);
}

bool qfit_digest_equal(const qfit_digest *a, const qfit_digest *b)
{
    return memcmp(a->hex, b->hex, QFIT_DIGEST_HEX) == 0;
}

void st_hex(const unsigned char md[32], qfit_digest *out)
{
    static const char H[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out->hex[2 * i] = H[md[i] >> 4];
        out->hex[2 * i + 1] = H[md[i] & 15];
    }
    out->hex[QFIT_DIGEST_HEX] = 0;
}

void qfit_digest_of(const void *data, size_t len, qfit_digest *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        memset(out, 0, sizeof *out);   /* cannot happen with a working libcrypto */
        return;
    }
    st_hex(md, out);
}
