/* Internal to src/server: do not include from other modules.
 * What the built-in route files need from http.c. */
#ifndef QFIT_SERVER_INT_H
#define QFIT_SERVER_INT_H

#include "qfit/server.h"

/* The store root of the server's config (NULL when none). */
const char *qfit_server_store_root(const qfit_server *s);
/* The server a request belongs to. */
qfit_server *qfit_http_req_server(const qfit_http_req *r);

/* GET|HEAD /api/version, /health (routes_basic in routes_store.c). */
int qfit_server_add_basic_routes(qfit_server *s, char *err, size_t err_len);
/* /api/tags, show, copy, delete, blobs; /v1/models (routes_store.c). */
int qfit_server_add_store_routes(qfit_server *s, char *err, size_t err_len);

/* GET|HEAD / and /ui/FILE: the web page; GET|POST /api/plan (routes_web.c). */
int qfit_server_add_web_routes(qfit_server *s, char *err, size_t err_len);

/* POST /api/pull (routes_manage.c). */
int qfit_server_add_manage_routes(qfit_server *s, char *err, size_t err_len);

/* The path scrubbing of error messages (server.h, Errors), in place. Reads $HOME. */
void qfit_server_scrub_paths(const char *store_root, char *msg, size_t cap);

/* Bytes of s that are not UTF-8 become '?', in place (messages quoting a client or
 * a registry must still encode as JSON). */
void qfit_server_make_utf8(char *s);

#endif
