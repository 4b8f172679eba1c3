/*
 * gh_proxy_ssl.h: TLS to upstreams (proxy_pass https://...).
 *
 * The proxy_ssl_* directives are their own module (gh_proxy_ssl.c) so
 * that the proxy module only has to call one function: after a new
 * connection to an https upstream is established, and before the request
 * is sent, gh_proxy_ssl_handshake() runs the TLS handshake on it (SNI,
 * session reuse, verification) and reports back.  Pooled connections
 * are past their handshake already.
 */
#ifndef GH_PROXY_SSL_H
#define GH_PROXY_SSL_H

#include "gh_proxy.h"

extern gh_module_t gh_http_proxy_ssl_module;

/* ft: 0 when the connection is ready for the request, else
 * GH_PROXY_FT_ERROR / GH_PROXY_FT_TIMEOUT with `what` in nginx's shape
 * ("upstream SSL certificate verify error: (N:...) while SSL handshaking
 * to upstream") for gh_proxy_next() to log */
typedef void (*gh_proxy_ssl_done_pt)(void *data, gh_uint_t ft,
    const char *what);

/*
 * Start the handshake on uc (connected, registered, its handlers the
 * proxy's).  proxy_host is $proxy_host, the default of proxy_ssl_name;
 * timeout bounds the whole handshake (proxy_connect_timeout, as nginx).
 *   GH_AGAIN  done(data, ...) will be called; until then uc's read and
 *             write handlers are the handshake's, and the proxy's are
 *             put back before done runs
 *   GH_OK     finished at once (done is not called)
 *   GH_ERROR  failed at once, err holds the message (done is not called)
 */
gh_int_t gh_proxy_ssl_handshake(gh_http_request_t *r, gh_conn_t *uc,
    const gh_str_t *proxy_host, gh_msec_t timeout, gh_proxy_ssl_done_pt done,
    void *data, char *err, size_t errlen);

#endif
