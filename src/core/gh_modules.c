/*
 * gh_modules.c: every module, in order.
 *
 * The order matters and is kept visible here rather than spread over
 * registration calls: it is the order in which conf structures are
 * created, directives are looked up (the first module declaring a name
 * for a context wins) and HTTP phase handlers and filters are registered
 * in postconfiguration (the last registered filter runs first).
 *
 * The externs are declared here rather than taken from the modules'
 * headers: includes point down only (core <- event <- http), and this
 * list is the one place in core that has to name HTTP modules.
 * gh_modules_n and gh_modules_init() live in gh_module_table.c, so that
 * unit tests can link their own list instead of this one.
 */
#include "gh_core.h"
#include "gh_module.h"

extern gh_module_t gh_core_module;
extern gh_module_t gh_events_module;
extern gh_module_t gh_http_module;
extern gh_module_t gh_http_core_module;
extern gh_module_t gh_http_ssl_module;
extern gh_module_t gh_http_upstream_module;
extern gh_module_t gh_http_upstream_hc_module;
extern gh_module_t gh_http_upstream_status_module;
extern gh_module_t gh_http_resolver_module;
extern gh_module_t gh_http_map_module;
extern gh_module_t gh_http_log_module;
extern gh_module_t gh_http_rewrite_module;
extern gh_module_t gh_http_static_module;
extern gh_module_t gh_http_headers_module;
extern gh_module_t gh_http_proxy_module;
extern gh_module_t gh_http_proxy_ssl_module;
extern gh_module_t gh_http_v2_module;

gh_module_t *gh_modules[] = {
    &gh_core_module,
    &gh_events_module,
    &gh_http_module,
    &gh_http_core_module,
    &gh_http_ssl_module,        /* ssl_*: TLS contexts, POST_READ checks */
    &gh_http_upstream_module,
    &gh_http_upstream_hc_module,        /* health_check, match */
    &gh_http_upstream_status_module,    /* upstream_status */
    &gh_http_resolver_module,   /* after upstream: checks its `resolve` */
    &gh_http_map_module,
    &gh_http_log_module,
    &gh_http_rewrite_module,
    &gh_http_static_module,     /* try_files, content fallback */
    &gh_http_headers_module,    /* header filter: in front of the core's */
    &gh_http_proxy_module,
    &gh_http_proxy_ssl_module,  /* proxy_ssl_*: after proxy (reads its conf) */
    &gh_http_v2_module,         /* http2: ALPN h2 / prior knowledge */
    NULL
};
