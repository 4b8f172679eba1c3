/*
 * gh_http_special.c: responses gatehouse makes up itself.
 *
 *   gh_http_status_line()   "404 Not Found" for the status line
 *   gh_http_special_response_handler()
 *                           what a handler's `finalize(r, 404)` turns
 *                           into: an error_page (internal redirect, named
 *                           location or redirect), else the built-in page
 *   gh_http_send_response() a complete small response (used by `return`)
 *
 * Behaviour follows nginx's documentation and what its clients see, so
 * that error pages, keep-alive decisions and status strings stay the same
 * when a config moves over.  Where nginx's strings differ from RFC 9110
 * ("302 Moved Temporarily", "405 Not Allowed", "504 Gateway Time-out") we
 * keep nginx's: monitoring scripts and tests grep for them.
 *
 * Contract with the request core (gh_http_request.c / gh_http_output.c):
 *   - gh_http_send_header() uses r->err_status, when non-zero, in place of
 *     r->headers_out.status (nginx's rule); error_page relies on it to keep
 *     the original status across the internal redirect.
 *   - the value returned by the special handler is what the caller
 *     finalizes with next: the output filter's result, GH_ERROR (drop the
 *     connection) or the internal redirect's result.
 *   - with r->header_only set, the body filters drop data; the handler
 *     still sends one (empty) last_buf so the response is marked complete.
 */
#include "gh_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

/* --- status lines ---------------------------------------------------- */

#define GH_STATUS(code, text) [code] = gh_string(#code " " text)

/* Indexed by code: a lookup on every response header is one load. */
static const gh_str_t gh_http_status_lines[600] = {
    GH_STATUS(100, "Continue"),
    GH_STATUS(101, "Switching Protocols"),
    GH_STATUS(102, "Processing"),
    GH_STATUS(103, "Early Hints"),

    GH_STATUS(200, "OK"),
    GH_STATUS(201, "Created"),
    GH_STATUS(202, "Accepted"),
    GH_STATUS(203, "Non-Authoritative Information"),
    GH_STATUS(204, "No Content"),
    GH_STATUS(205, "Reset Content"),
    GH_STATUS(206, "Partial Content"),
    GH_STATUS(207, "Multi-Status"),
    GH_STATUS(208, "Already Reported"),
    GH_STATUS(226, "IM Used"),

    GH_STATUS(300, "Multiple Choices"),
    GH_STATUS(301, "Moved Permanently"),
    GH_STATUS(302, "Moved Temporarily"),
    GH_STATUS(303, "See Other"),
    GH_STATUS(304, "Not Modified"),
    GH_STATUS(305, "Use Proxy"),
    GH_STATUS(307, "Temporary Redirect"),
    GH_STATUS(308, "Permanent Redirect"),

    GH_STATUS(400, "Bad Request"),
    GH_STATUS(401, "Unauthorized"),
    GH_STATUS(402, "Payment Required"),
    GH_STATUS(403, "Forbidden"),
    GH_STATUS(404, "Not Found"),
    GH_STATUS(405, "Not Allowed"),
    GH_STATUS(406, "Not Acceptable"),
    GH_STATUS(407, "Proxy Authentication Required"),
    GH_STATUS(408, "Request Time-out"),
    GH_STATUS(409, "Conflict"),
    GH_STATUS(410, "Gone"),
    GH_STATUS(411, "Length Required"),
    GH_STATUS(412, "Precondition Failed"),
    GH_STATUS(413, "Request Entity Too Large"),
    GH_STATUS(414, "Request-URI Too Large"),
    GH_STATUS(415, "Unsupported Media Type"),
    GH_STATUS(416, "Requested Range Not Satisfiable"),
    GH_STATUS(417, "Expectation Failed"),
    GH_STATUS(421, "Misdirected Request"),
    GH_STATUS(422, "Unprocessable Entity"),
    GH_STATUS(423, "Locked"),
    GH_STATUS(424, "Failed Dependency"),
    GH_STATUS(425, "Too Early"),
    GH_STATUS(426, "Upgrade Required"),
    GH_STATUS(428, "Precondition Required"),
    GH_STATUS(429, "Too Many Requests"),
    GH_STATUS(431, "Request Header Fields Too Large"),
    GH_STATUS(451, "Unavailable For Legal Reasons"),
    /* nginx's own; on the wire it is a 400 (see gh_http_wire_status) */
    GH_STATUS(494, "Request Header Or Cookie Too Large"),

    GH_STATUS(500, "Internal Server Error"),
    GH_STATUS(501, "Not Implemented"),
    GH_STATUS(502, "Bad Gateway"),
    GH_STATUS(503, "Service Temporarily Unavailable"),
    GH_STATUS(504, "Gateway Time-out"),
    GH_STATUS(505, "HTTP Version Not Supported"),
    GH_STATUS(506, "Variant Also Negotiates"),
    GH_STATUS(507, "Insufficient Storage"),
    GH_STATUS(508, "Loop Detected"),
    GH_STATUS(510, "Not Extended"),
    GH_STATUS(511, "Network Authentication Required"),
};

static const gh_str_t gh_http_no_status_line = gh_string("");

const gh_str_t *
gh_http_status_line(gh_uint_t status)
{
    if (status < gh_nelems(gh_http_status_lines)
        && gh_http_status_lines[status].len != 0)
    {
        return &gh_http_status_lines[status];
    }
    return &gh_http_no_status_line;
}

/*
 * nginx's internal 494..497 are errors found while reading the request
 * (header too large, TLS client certificate problems, plain HTTP on a TLS
 * port).  Clients get a 400 with a page that says which one; error_page
 * can still match the internal code.
 */
static const gh_str_t gh_http_internal_titles[] = {
    gh_string("400 Request Header Or Cookie Too Large"),   /* 494 */
    gh_string("400 The SSL certificate error"),            /* 495 */
    gh_string("400 No required SSL certificate was sent"), /* 496 */
    gh_string("400 The plain HTTP request was sent to HTTPS port"), /* 497 */
};

static gh_uint_t
gh_http_wire_status(gh_uint_t status)
{
    return (status >= 494 && status <= 497) ? 400 : status;
}

/* --- small helpers shared with the rewrite module -------------------- */

static gh_http_core_loc_conf_t *
gh_http_special_clcf(gh_http_request_t *r)
{
    /* a request that failed before a server was chosen (bad request
     * line) has no confs yet */
    if (r->loc_conf == NULL) {
        return NULL;
    }
    return r->loc_conf[gh_http_core_module.index];
}

bool
gh_http_is_redirect_status(gh_uint_t status)
{
    return status == 301 || status == 302 || status == 303 || status == 307
        || status == 308;
}

/* one buf holding [data, data + len), last in the response */
static gh_chain_t *
gh_http_last_buf(gh_http_request_t *r, const uint8_t *data, size_t len)
{
    static const uint8_t empty[1];
    gh_buf_t            *b = gh_calloc(r->arena, sizeof(gh_buf_t));

    if (b == NULL) {
        return NULL;
    }
    /* pointer arithmetic on NULL is undefined even for + 0 */
    if (data == NULL) {
        data = empty;
        len = 0;
    }
    /* the output chain only reads the bytes: conf or request memory can
     * be pointed at without a copy */
    b->start = (uint8_t *) data;
    b->pos = b->start;
    b->last = b->start + len;
    b->end = b->last;
    b->fd = -1;
    b->last_buf = 1;
    return gh_chain_link(r->arena, b);
}

/* header, then the body with last_buf; HEAD gets the header only */
static gh_int_t
gh_http_send_whole(gh_http_request_t *r, const uint8_t *data, size_t len)
{
    gh_int_t    rc;
    gh_chain_t *cl;

    if (r->method == GH_HTTP_HEAD) {
        r->header_only = 1;
    }
    rc = gh_http_send_header(r);
    if (rc == GH_ERROR || rc > GH_OK) {
        return rc;
    }
    if (r->header_only) {
        len = 0;
    }
    cl = gh_http_last_buf(r, data, len);
    if (cl == NULL) {
        return GH_ERROR;
    }
    return gh_http_output_filter(r, cl);
}

/* 1xx, 204 and 304 never carry a body nor, except 304, a length */
static bool
gh_http_status_no_body(gh_uint_t status)
{
    return status < 200 || status == 204 || status == 304;
}

static gh_uint_t
gh_http_local_port(gh_conn_t *c)
{
    if (gh_conn_local_addr(c) != GH_OK) {
        return 0;
    }
    switch (c->local_sockaddr.sa.sa_family) {
    case AF_INET:
        return ntohs(c->local_sockaddr.sin.sin_port);
    case AF_INET6:
        return ntohs(c->local_sockaddr.sin6.sin6_port);
    default:
        return 0;
    }
}

/* the host part of an absolute redirect: as $host (Host header, else the
 * server's first name), else the local address the client reached */
static gh_int_t
gh_http_redirect_host(gh_http_request_t *r, gh_str_t *host)
{
    gh_http_core_srv_conf_t *cscf = NULL;
    char                     text[128];
    size_t                   n;

    if (r->headers_in.server.len != 0) {
        *host = r->headers_in.server;
        return GH_OK;
    }
    if (r->srv_conf != NULL) {
        cscf = r->srv_conf[gh_http_core_module.index];
    }
    if (cscf != NULL && cscf->server_name.len != 0) {
        *host = cscf->server_name;
        return GH_OK;
    }

    gh_conn_t *c = r->conn;
    if (c->local_socklen == 0) {
        (void) gh_http_local_port(c);
    }
    n = gh_sock_ntop((struct sockaddr *) &c->local_sockaddr,
        c->local_socklen, text, sizeof(text), false);
    host->data = gh_alloc_unaligned(r->arena, n + 2);
    if (host->data == NULL) {
        return GH_ERROR;
    }
    /* an IPv6 literal needs brackets in a URL */
    if (memchr(text, ':', n) != NULL && text[0] != '[') {
        host->data[0] = '[';
        memcpy(host->data + 1, text, n);
        host->data[n + 1] = ']';
        host->len = n + 2;
    } else {
        memcpy(host->data, text, n);
        host->len = n;
    }
    return GH_OK;
}

gh_int_t
gh_http_absolute_location(gh_http_request_t *r, const gh_str_t *uri,
    gh_str_t *out)
{
    gh_http_core_loc_conf_t *clcf = gh_http_special_clcf(r);
    gh_str_t                 scheme, host;
    gh_uint_t                port = 0;
    char                     portbuf[8];
    int                      plen = 0;

    /* only a path is ours to complete; a full URL or a relative
     * reference ("x.html") is passed as written, as nginx does */
    if (uri->len == 0 || uri->data[0] != '/' || clcf == NULL
        || clcf->absolute_redirect == 0)
    {
        *out = *uri;
        return GH_OK;
    }

    if (r->schema.len != 0) {
        scheme = r->schema;
    } else if (r->conn->tls != NULL) {
        gh_str_set(&scheme, "https");
    } else {
        gh_str_set(&scheme, "http");
    }
    if (gh_http_redirect_host(r, &host) != GH_OK) {
        return GH_ERROR;
    }
    if (clcf->port_in_redirect != 0) {
        port = gh_http_local_port(r->conn);
        bool https = gh_str_eq_c(&scheme, "https");
        if (port != 0 && port != (https ? 443u : 80u)) {
            plen = snprintf(portbuf, sizeof(portbuf), ":%u", (unsigned) port);
        }
    }

    size_t len = scheme.len + 3 + host.len + (size_t) plen + uri->len;
    uint8_t *p = gh_alloc_unaligned(r->arena, len);
    if (p == NULL) {
        return GH_ERROR;
    }
    out->data = p;
    memcpy(p, scheme.data, scheme.len);
    p += scheme.len;
    memcpy(p, "://", 3);
    p += 3;
    memcpy(p, host.data, host.len);
    p += host.len;
    memcpy(p, portbuf, (size_t) plen);
    p += plen;
    memcpy(p, uri->data, uri->len);
    out->len = len;
    return GH_OK;
}

gh_int_t
gh_http_set_location(gh_http_request_t *r, const gh_str_t *value)
{
    gh_http_table_elt_t *h;
    gh_array_t          *hs = &r->headers_out.headers;

    /* one Location only: an earlier one (a handler's, an upstream's) is
     * deleted rather than sent twice.  Found by name, not through
     * headers_out.location: that points into the array, which moves when
     * it grows. */
    for (size_t i = 0; i < hs->nelts; i++) {
        h = gh_array_at(hs, gh_http_table_elt_t, i);
        if (gh_str_caseeq_c(&h->name, "Location")) {
            h->hash_skip = 1;
        }
    }
    r->headers_out.location = NULL;
    h = gh_http_add_header_out(r, "Location", value);
    if (h == NULL) {
        return GH_ERROR;
    }
    r->headers_out.location = h;
    return GH_OK;
}

/* --- gh_http_send_response ------------------------------------------- */

gh_int_t
gh_http_send_response(gh_http_request_t *r, gh_uint_t status,
    const gh_str_t *content_type, const gh_str_t *body)
{
    gh_http_core_loc_conf_t *clcf = gh_http_special_clcf(r);
    static const gh_str_t    empty = gh_null_string;

    if (body == NULL) {
        body = &empty;
    }
    /* the request body is not wanted; if it cannot be skipped cleanly
     * the connection cannot carry another request */
    if (r->keepalive && gh_http_discard_request_body(r) != GH_OK) {
        r->keepalive = 0;
    }

    r->headers_out.status = status;
    r->headers_out.last_modified_time = -1;

    if (gh_http_status_no_body(status)) {
        r->header_only = 1;
        r->headers_out.content_type.len = 0;
        r->headers_out.content_length_n = -1;
        return gh_http_send_whole(r, NULL, 0);
    }

    if (content_type != NULL) {
        r->headers_out.content_type = *content_type;
    } else if (clcf != NULL && clcf->default_type.len != 0) {
        r->headers_out.content_type = clcf->default_type;
    } else {
        gh_str_set(&r->headers_out.content_type, "text/plain");
    }
    r->headers_out.content_length_n = (off_t) body->len;
    return gh_http_send_whole(r, body->data, body->len);
}

/* --- built-in pages -------------------------------------------------- */

/*
 * MSIE and old Chrome replace error pages shorter than 512 bytes with
 * their own "friendly" page; msie_padding appends comments past that.
 */
static const char gh_http_msie_padding[] =
    "<!-- padded so that MSIE shows the server's error page           -->\r\n"
    "<!-- padded so that MSIE shows the server's error page           -->\r\n"
    "<!-- padded so that MSIE shows the server's error page           -->\r\n"
    "<!-- padded so that MSIE shows the server's error page           -->\r\n"
    "<!-- padded so that MSIE shows the server's error page           -->\r\n"
    "<!-- padded so that MSIE shows the server's error page           -->\r\n";

static bool
gh_http_wants_msie_padding(gh_http_request_t *r,
    const gh_http_core_loc_conf_t *clcf, gh_uint_t status)
{
    const gh_http_table_elt_t *ua = r->headers_in.user_agent;

    if (clcf == NULL || clcf->msie_padding != 1 || status < 400 || ua == NULL
        || ua->value.len < 5)
    {
        return false;
    }
    return memmem(ua->value.data, ua->value.len, "MSIE ", 5) != NULL;
}

/* the page title for a status, or an empty string: no page */
static const gh_str_t *
gh_http_page_title(gh_uint_t status)
{
    if (status >= 494 && status <= 497) {
        return &gh_http_internal_titles[status - 494];
    }
    if (status < 300 || status == 304) {
        return &gh_http_no_status_line;
    }
    return gh_http_status_line(status);
}

/* "<html>...<h1>404 Not Found</h1>...</html>" in the request's arena */
static gh_int_t
gh_http_build_page(gh_http_request_t *r, const gh_http_core_loc_conf_t *clcf,
    gh_uint_t status, gh_str_t *page)
{
    const gh_str_t *title = gh_http_page_title(status);
    const char     *server;
    const char     *pad = "";

    if (title->len == 0) {
        page->len = 0;
        page->data = NULL;
        return GH_OK;
    }
    server = (clcf != NULL && clcf->server_tokens == 0)
        ? GH_NAME : GH_NAME "/" GH_VERSION;
    if (gh_http_wants_msie_padding(r, clcf, status)) {
        pad = gh_http_msie_padding;
    }

    /* sized by a first pass rather than by hand, so that a change of
     * the template cannot overflow */
    static const char fmt[] =
        "<html>\r\n"
        "<head><title>%.*s</title></head>\r\n"
        "<body>\r\n"
        "<center><h1>%.*s</h1></center>\r\n"
        "<hr><center>%s</center>\r\n"
        "</body>\r\n"
        "</html>\r\n"
        "%s";
    int n = snprintf(NULL, 0, fmt, (int) title->len, title->data,
        (int) title->len, title->data, server, pad);
    if (n < 0) {
        return GH_ERROR;
    }
    page->data = gh_alloc_unaligned(r->arena, (size_t) n + 1);
    if (page->data == NULL) {
        return GH_ERROR;
    }
    snprintf((char *) page->data, (size_t) n + 1, fmt, (int) title->len,
        title->data, (int) title->len, title->data, server, pad);
    page->len = (size_t) n;
    return GH_OK;
}

static gh_int_t
gh_http_send_special_page(gh_http_request_t *r,
    const gh_http_core_loc_conf_t *clcf, gh_uint_t status)
{
    gh_uint_t wire = gh_http_wire_status(status);
    gh_str_t  page;

    r->err_status = wire;
    r->headers_out.status = wire;
    r->headers_out.status_line.len = 0;
    r->headers_out.last_modified_time = -1;

    if (gh_http_status_no_body(wire)) {
        r->header_only = 1;
        r->headers_out.content_type.len = 0;
        r->headers_out.content_length_n = -1;
        return gh_http_send_whole(r, NULL, 0);
    }

    if (gh_http_build_page(r, clcf, status, &page) != GH_OK) {
        return GH_ERROR;
    }
    if (page.len != 0) {
        gh_str_set(&r->headers_out.content_type, "text/html");
    } else {
        /* 201, or a code without a name: an empty body, as nginx */
        r->headers_out.content_type.len = 0;
    }
    r->headers_out.content_length_n = (off_t) page.len;
    return gh_http_send_whole(r, page.data, page.len);
}

/* --- error_page ------------------------------------------------------ */

static const gh_http_err_page_t *
gh_http_find_error_page(const gh_http_core_loc_conf_t *clcf,
    gh_uint_t status)
{
    const gh_array_t *pages = clcf->error_pages;

    for (size_t i = 0; i < pages->nelts; i++) {
        const gh_http_err_page_t *ep =
            gh_array_at(pages, gh_http_err_page_t, i);
        for (size_t j = 0; j < ep->codes->nelts; j++) {
            if (*gh_array_at(ep->codes, gh_int_t, j) == (gh_int_t) status) {
                return ep;
            }
        }
    }
    return NULL;
}

/* "/path?args" -> path and args (args.data NULL without '?') */
static void
gh_http_split_args(const gh_str_t *uri, gh_str_t *path, gh_str_t *args)
{
    uint8_t *q = memchr(uri->data, '?', uri->len);

    if (q == NULL) {
        *path = *uri;
        args->len = 0;
        args->data = NULL;
        return;
    }
    path->data = uri->data;
    path->len = (size_t) (q - uri->data);
    args->data = q + 1;
    args->len = uri->len - path->len - 1;
}

static gh_int_t
gh_http_send_error_page(gh_http_request_t *r,
    const gh_http_core_loc_conf_t *clcf, const gh_http_err_page_t *ep,
    gh_uint_t status)
{
    gh_str_t uri, path, args;

    if (gh_http_complex_value(r, &ep->uri, &uri) != GH_OK) {
        return GH_ERROR;
    }

    /* err_status is what gh_http_send_header will put on the wire for
     * the target's response: the original code (a 400 for nginx's
     * internal ones), the "=code" given, or with a bare "=" whatever the
     * target answers */
    if (ep->overwrite > 0) {
        r->err_status = (gh_uint_t) ep->overwrite;
    } else if (ep->overwrite == 0) {
        r->err_status = 0;
    } else {
        r->err_status = gh_http_wire_status(status);
    }

    if (uri.len != 0 && uri.data[0] == '/') {
        gh_http_split_args(&uri, &path, &args);
        /* the page is fetched as a GET whatever the failed method was
         * (a POST to a static error page would be refused); HEAD stays
         * HEAD so that no body is sent */
        if (r->method != GH_HTTP_HEAD) {
            r->method = GH_HTTP_GET;
            gh_str_set(&r->method_name, "GET");
        }
        return gh_http_internal_redirect(r, &path, &args);
    }

    if (uri.len != 0 && uri.data[0] == '@') {
        return gh_http_named_location(r, &uri);
    }

    /* anything else is a URL to redirect the client to */
    gh_uint_t code = gh_http_is_redirect_status((gh_uint_t) ep->overwrite)
        ? (gh_uint_t) ep->overwrite : 302;
    if (r->keepalive && gh_http_discard_request_body(r) != GH_OK) {
        r->keepalive = 0;
    }
    gh_str_t location;
    if (gh_http_absolute_location(r, &uri, &location) != GH_OK
        || gh_http_set_location(r, &location) != GH_OK)
    {
        return GH_ERROR;
    }
    return gh_http_send_special_page(r, clcf, code);
}

/* --- the handler ----------------------------------------------------- */

/*
 * After these errors the connection's state is unknown (a head or body
 * not read to its end, a broken parser state, a server fault), so the
 * response says "Connection: close".
 */
static bool
gh_http_status_closes(gh_uint_t status)
{
    switch (status) {
    case 400: case 408: case 413: case 414: case 431:
    case 494: case 495: case 496: case 497:
    case 500: case 501: case 505:
        return true;
    default:
        return false;
    }
}

gh_int_t
gh_http_special_response_handler(gh_http_request_t *r, gh_uint_t status)
{
    gh_http_core_loc_conf_t  *clcf = gh_http_special_clcf(r);
    const gh_http_err_page_t *ep;

    /* 444 (`return 444`) and 499 (client went away) have no response */
    if (status == GH_HTTP_CLOSE || status == 499) {
        r->keepalive = 0;
        return GH_ERROR;
    }

    r->err_status = status;
    if (gh_http_status_closes(status)) {
        r->keepalive = 0;
    }
    /* a malformed request: there is no use waiting for the client to
     * finish sending whatever it was sending */
    if (status == 400 || (status >= 494 && status <= 497)) {
        r->lingering_close = 0;
    }
    r->headers_out.content_type.len = 0;

    /* error_page applies once per request unless recursive_error_pages:
     * a failing error page must not loop.  internal_redirect's own limit
     * bounds the recursive case. */
    if (clcf != NULL && clcf->error_pages != NULL
        && (!r->error_page || clcf->recursive_error_pages == 1))
    {
        ep = gh_http_find_error_page(clcf, status);
        if (ep != NULL) {
            r->error_page = 1;
            return gh_http_send_error_page(r, clcf, ep, status);
        }
    }

    if (r->keepalive && gh_http_discard_request_body(r) != GH_OK) {
        r->keepalive = 0;
    }
    return gh_http_send_special_page(r, clcf, status);
}
