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

/* LOG phase: write the request's access_log lines; call once when the
 * request is finished (after the response, before the arena goes) */
gh_int_t gh_http_log_handler(gh_http_request_t *r);

#endif
