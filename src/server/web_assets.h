/* Internal to src/server: do not include from other modules.
 * The web page's files (web/), compiled into the binary: the table is generated at
 * build time by tools/embed_web.c (build/<config>/gen/web_assets.c). Read-only data,
 * safe from any thread. */
#ifndef QFIT_WEB_ASSETS_H
#define QFIT_WEB_ASSETS_H

#include <stddef.h>

typedef struct {
    const char          *name;   /* path under web/: "index.html", "app.js" */
    const unsigned char *data;   /* len bytes, then a NUL */
    size_t               len;
    const char          *etag;   /* "\"<16 hex digits>\"": FNV-1a 64 of the bytes */
} qfit_web_asset;

extern const qfit_web_asset qfit_web_assets[];
extern const size_t         qfit_web_asset_count;

#endif
