/* qfit — settings from the environment (see qfit/config.h). */
#include "qfit/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
static bool is_quote(char c) { return c == '"' || c == '\''; }

const char *qfit_env(const char *suffix, char *buf, size_t cap, const char **which, bool *too_long)
{
    static const char *const PREFIX[] = { "QFIT_", "OLLAMA_" };
    static char names[2][64];   /* "which" must outlive the call: one slot per prefix */
    if (too_long) *too_long = false;
    for (int i = 0; i < 2; i++) {
        char name[64];
        if (snprintf(name, sizeof name, "%s%s", PREFIX[i], suffix) >= (int)sizeof name) return NULL;
        const char *v = getenv(name);
        if (!v) continue;
        /* as Ollama's envconfig.Var: spaces, then quotes (" ' a ' " is " a ") */
        size_t n = strlen(v);
        while (n && is_space(*v)) { v++; n--; }
        while (n && is_space(v[n - 1])) n--;
        while (n && is_quote(*v)) { v++; n--; }
        while (n && is_quote(v[n - 1])) n--;
        if (n == 0) continue;
        if (which) {
            memcpy(names[i], name, sizeof name);
            *which = names[i];
        }
        if (n >= cap) {
            if (too_long) *too_long = true;
            return NULL;
        }
        memcpy(buf, v, n);
        buf[n] = 0;
        return buf;
    }
    return NULL;
}

/* ---------------------------------------------------------------- durations */

static int64_t unit_ns(const char *u, size_t n)
{
    static const struct { const char *name; int64_t ns; } U[] = {
        { "ns", 1 }, { "us", 1000 }, { "\xc2\xb5s", 1000 }, { "\xce\xbcs", 1000 },
        { "ms", 1000000 }, { "s", 1000000000LL }, { "m", 60000000000LL }, { "h", 3600000000000LL },
    };
    for (size_t i = 0; i < sizeof U / sizeof U[0]; i++)
        if (strlen(U[i].name) == n && memcmp(U[i].name, u, n) == 0) return U[i].ns;
    return 0;
}

int qfit_parse_duration(const char *s, bool bare_seconds, int64_t *ns, char *err, size_t err_len)
{
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    if (!strcmp(p, "0")) { *ns = 0; return 0; }
    if (bare_seconds && *p) {   /* integer seconds, Ollama's environment form */
        char *end;
        long long v = strtoll(p, &end, 10);
        if (*end == 0 && isdigit((unsigned char)*p)) {
            if (v > INT64_MAX / 1000000000LL) goto overflow;
            *ns = neg ? (v ? QFIT_FOREVER_NS : 0) : v * 1000000000LL;
            return 0;
        }
    }
    if (!*p) goto invalid;
    double total = 0;
    while (*p) {
        const char *num = p;
        double whole = 0, frac = 0, scale = 1;
        bool digits = false;
        while (isdigit((unsigned char)*p)) { whole = whole * 10 + (*p++ - '0'); digits = true; }
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p)) { scale /= 10; frac += (*p++ - '0') * scale; digits = true; }
        }
        if (!digits) goto invalid;
        const char *u = p;
        while (*p && !isdigit((unsigned char)*p) && *p != '.') p++;
        int64_t mul = unit_ns(u, (size_t)(p - u));
        if (!mul) {
            if (p == u) snprintf(err, err_len, "'%s' is not a duration: '%.*s' has no unit (ns, us, ms, s, m, h)",
                                 s, (int)(p - num), num);
            else snprintf(err, err_len, "'%s' is not a duration: unknown unit '%.*s' (ns, us, ms, s, m, h)",
                          s, (int)(p - u), u);
            return -1;
        }
        total += (whole + frac) * (double)mul;
        if (total >= 9.2e18) goto overflow;
    }
    *ns = neg ? (total > 0 ? QFIT_FOREVER_NS : 0) : (int64_t)total;
    return 0;
invalid:
    snprintf(err, err_len, "'%s' is not a duration (examples: 5m, 1h30m, 300ms, -1m%s)", s,
             bare_seconds ? ", or seconds: 300, -1" : "");
    return -1;
overflow:
    snprintf(err, err_len, "'%s' is too long a duration (at most about 292 years)", s);
    return -1;
}

/* ---------------------------------------------------------------- settings */

int qfit_config_debug(int *level, char *err, size_t err_len)
{
    char v[64];
    const char *which = NULL;
    bool too_long;
    const char *s = qfit_env("DEBUG", v, sizeof v, &which, &too_long);
    *level = 0;
    if (!s && !too_long) return 0;
    static const struct { const char *text; int level; } L[] = {
        { "0", 0 }, { "false", 0 }, { "1", 1 }, { "true", 1 }, { "2", 2 },
    };
    for (size_t i = 0; s && i < sizeof L / sizeof L[0]; i++)
        if (!strcasecmp(s, L[i].text)) { *level = L[i].level; return 0; }
    snprintf(err, err_len, "%s=%s is invalid (use 0, 1 or 2; false or true)", which, s ? s : "(too long)");
    return -1;
}

int qfit_config_keep_alive(int64_t *ns, char *err, size_t err_len)
{
    char v[128], e[256];
    const char *which = NULL;
    bool too_long;
    const char *s = qfit_env("KEEP_ALIVE", v, sizeof v, &which, &too_long);
    *ns = QFIT_DEFAULT_KEEP_ALIVE_NS;
    if (!s && !too_long) return 0;
    if (!s || qfit_parse_duration(s, true, ns, e, sizeof e) != 0) {
        snprintf(err, err_len, "%s: %s", which, s ? e : "value too long");
        return -1;
    }
    return 0;
}

int qfit_config_int(const char *suffix, int min, int max, int def, int *out, char *err, size_t err_len)
{
    char v[64];
    const char *which = NULL;
    bool too_long;
    const char *s = qfit_env(suffix, v, sizeof v, &which, &too_long);
    *out = def;
    if (!s && !too_long) return 0;
    char *end = NULL;
    errno = 0;
    long x = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || x < min || x > max) {
        snprintf(err, err_len, "%s: '%s' is not an integer from %d to %d", which, s ? s : "(too long)", min, max);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int parse_port(const char *p, size_t n, int *port)
{
    if (n == 0 || n > 5) return -1;   /* 0 is allowed: any free port (tests use it) */
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i])) return -1;
        v = v * 10 + (p[i] - '0');
    }
    if (v > 65535) return -1;
    *port = v;
    return 0;
}

int qfit_parse_host(const char *s, qfit_host *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    strcpy(out->scheme, "http");
    out->port = QFIT_DEFAULT_PORT;
    while (is_space(*s)) s++;
    size_t len = strlen(s);
    while (len && is_space(s[len - 1])) len--;
    char trimmed[1024];
    if (len >= sizeof trimmed) { snprintf(err, err_len, "address too long"); return -1; }
    memcpy(trimmed, s, len);
    trimmed[len] = 0;
    s = trimmed;
    const char *p = s;
    const char *sep = strstr(p, "://");
    if (sep) {
        size_t n = (size_t)(sep - p);
        if (n == 4 && !strncasecmp(p, "http", 4)) out->port = 80;
        else if (n == 5 && !strncasecmp(p, "https", 5)) { strcpy(out->scheme, "https"); out->port = 443; }
        else {
            snprintf(err, err_len, "'%s': scheme '%.*s' is not http or https", s, (int)(n < 32 ? n : 32), p);
            return -1;
        }
        p = sep + 3;
    }
    const char *slash = strchr(p, '/');
    size_t hp_len = slash ? (size_t)(slash - p) : strlen(p);
    if (slash && snprintf(out->path, sizeof out->path, "%s", slash) >= (int)sizeof out->path) {
        snprintf(err, err_len, "'%s': path too long", s);
        return -1;
    }
    /* host part: [v6]:port, [v6], name:port, name, :port */
    const char *h = p, *port = NULL;
    size_t h_len = hp_len;
    if (hp_len && *p == '[') {
        const char *close = memchr(p, ']', hp_len);
        if (!close) { snprintf(err, err_len, "'%s': '[' without ']'", s); return -1; }
        h = p + 1;
        h_len = (size_t)(close - h);
        const char *rest = close + 1;
        if (rest < p + hp_len) {
            if (*rest != ':') { snprintf(err, err_len, "'%s': unexpected text after ']'", s); return -1; }
            port = rest + 1;
        }
    } else {
        const char *colon = memchr(p, ':', hp_len);
        /* two colons or more: an IPv6 address without brackets, no port ("::1") */
        bool v6 = colon && memchr(colon + 1, ':', hp_len - (size_t)(colon + 1 - p));
        if (colon && !v6) { h_len = (size_t)(colon - p); port = colon + 1; }
    }
    if (port && parse_port(port, hp_len - (size_t)(port - p), &out->port) != 0) {
        snprintf(err, err_len, "'%s': port '%.*s' is not a number from 0 to 65535", s,
                 (int)(hp_len - (size_t)(port - p)), port);
        return -1;
    }
    /* ":8080" and "" mean loopback (Ollama: every interface for ":8080"; qfit never
     * opens a network service beyond this machine unless a host is named) */
    if (h_len == 0) { h = "127.0.0.1"; h_len = 9; }
    for (size_t i = 0; i < h_len; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!(isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':' || c == '%')) {
            snprintf(err, err_len, "'%s': invalid character '%c' in the host", s, isprint(c) ? c : '?');
            return -1;
        }
    }
    if (h_len >= sizeof out->host) { snprintf(err, err_len, "'%s': host too long", s); return -1; }
    memcpy(out->host, h, h_len);
    out->host[h_len] = 0;
    return 0;
}

int qfit_config_host(qfit_host *out, char *err, size_t err_len)
{
    char v[512], e[512];
    const char *which = NULL;
    bool too_long;
    const char *s = qfit_env("HOST", v, sizeof v, &which, &too_long);
    if (too_long) { snprintf(err, err_len, "%s is too long", which); return -1; }
    if (qfit_parse_host(s ? s : "", out, e, sizeof e) != 0) {
        snprintf(err, err_len, "%s=%s", which, e);
        return -1;
    }
    return 0;
}

int qfit_config_check(char *err, size_t err_len)
{
    int level;
    int64_t ns;
    qfit_host h;
    char v[4096];
    const char *which = NULL;
    bool too_long;
    if (!qfit_env("MODELS", v, sizeof v, &which, &too_long) && too_long) {
        snprintf(err, err_len, "%s is too long (at most %zu bytes)", which, sizeof v - 1);
        return -1;
    }
    if (qfit_config_debug(&level, err, err_len) != 0) return -1;
    if (qfit_config_keep_alive(&ns, err, err_len) != 0) return -1;
    return qfit_config_host(&h, err, err_len);
}
