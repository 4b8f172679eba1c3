/*
 * gh_http_modules.h: the HTTP modules outside the core, so that
 * src/core/gh_modules.c and the tests can name them.  Each module file
 * adds its own line.
 */
#ifndef GH_HTTP_MODULES_H
#define GH_HTTP_MODULES_H

#include "gh_http.h"

extern gh_module_t gh_http_rewrite_module;
extern gh_module_t gh_http_map_module;
extern gh_module_t gh_http_log_module;
extern gh_module_t gh_http_static_module;
extern gh_module_t gh_http_headers_module;
extern gh_module_t gh_http_ssl_module;

/* HTTP/2 plugs in here: an HTTP/2 module sets it (postconfiguration);
 * until then ALPN never selects "h2".  Called after the TLS handshake
 * when "h2" was negotiated; it owns the connection from then on. */
extern void (*gh_http_v2_init_connection)(gh_conn_t *c);

/* LOG phase: write the request's access_log lines; call once when the
 * request is finished (after the response, before the arena goes) */
gh_int_t gh_http_log_handler(gh_http_request_t *r);

/* CONTENT fallback of a location without a handler of its own (the core
 * calls it): files under root/alias, index files, directory redirects */
gh_int_t gh_http_static_handler(gh_http_request_t *r);
/* r->uri = *uri, r->exten recomputed (rewrite, try_files) */
void gh_http_set_uri(gh_http_request_t *r, const gh_str_t *uri);
/* Content-Type of a file extension from the built-in table, or NULL */
const char *gh_http_static_type(const gh_str_t *exten);
/* HTTP dates: "Sun, 06 Nov 1994 08:49:37 GMT" into buf (returns the
 * length, 0 if it does not fit); parsing takes the three forms RFC 9110
 * allows and returns -1 for anything else */
size_t gh_http_format_time(uint8_t *buf, size_t len, int64_t t);
int64_t gh_http_parse_time(const uint8_t *p, size_t len);

#endif
