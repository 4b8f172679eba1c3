/*
 * gh_proxy.c: proxy_pass at run time.
 *
 *   gh_proxy_handler
 *     -> a host name in variables? gh_resolve -> gh_proxy_resolve_handler
 *     -> gh_proxy_proceed: body? gh_http_read_client_request_body
 *     -> gh_proxy_start
 *   gh_proxy_start / gh_proxy_connect      (peer, pooled or new conn)
 *     CONNECTING --write ev--> SENDING --all sent--> READING_HEADER
 *   READING_HEADER --head parsed--> gh_proxy_process_header
 *     -> 101: TUNNEL | X-Accel-Redirect | intercepted error |
 *        send head to client -> READING_BODY
 *   READING_BODY: upstream -> proxy_buffers -> output filters; reading
 *     pauses while the client has not taken the previous batch
 *     (r->output_drained resumes it), so memory stays bounded.
 *   done: last_buf to the client, connection back to the pool or closed.
 *
 * Any failure before the client saw a byte goes through gh_proxy_next():
 * another peer per proxy_next_upstream, or 502/504 with nginx's log line.
 */
#include "gh_proxy.h"
#include "gh_proxy_ssl.h"
#include "../http/gh_http_request.h"
#include "../event/gh_splice.h"
#include "../http/gh_http_char.h"
#include "../upstream/gh_upstream_resolver.h"
#include <stdio.h>
#include <sys/socket.h>
#include <arpa/inet.h>

enum {
    GH_PROXY_CONNECTING = 1,
    GH_PROXY_SENDING,
    GH_PROXY_READING_HEADER,
    GH_PROXY_READING_BODY,
    GH_PROXY_TUNNEL,
    GH_PROXY_DONE
};

#define GH_PROXY_MAX_TRIES 16

typedef struct {
    gh_upstream_peer_t       *peer;
    gh_uint_t                 status;
    gh_msec_t                 rtime;
    gh_msec_t                 ctime;        /* -1: not connected */
    gh_msec_t                 htime;        /* -1: no header */
} gh_proxy_try_t;

typedef struct {
    gh_http_request_t        *r;
    gh_proxy_loc_conf_t      *plcf;
    gh_upstream_srv_conf_t   *us;
    gh_upstream_peer_state_t  ps;
    gh_conn_t                *uc;
    int                       state;
    bool                      pooled;
    bool                      same_peer;
    bool                      ssl;          /* https upstream (issue 7) */
    gh_uint_t                 pool_retries;

    gh_str_t                  proxy_host;
    gh_str_t                  proxy_port;
    gh_str_t                  uri;          /* sent upstream */
    gh_buf_t                 *req_head;
    gh_chain_t               *req_out;      /* this attempt */
    bool                      request_sent; /* some attempt sent it all */
    bool                      head_sent;    /* this attempt: head out */
    bool                      streaming;    /* proxy_request_buffering off */
    bool                      stream_started; /* body bytes went out */
    bool                      stream_eof;   /* client body complete */
    gh_buf_t                 *sbuf;         /* streamed body bytes */
    gh_chain_t               *s_out;        /* streamed bytes being sent */
    bool                      bytes_sent;   /* this attempt wrote bytes */

    gh_buf_t                 *hbuf;         /* response head */
    gh_http_status_head_t     sh;
    gh_http_table_elt_t      *uheaders;     /* for $upstream_http_ */
    size_t                    nuheaders;
    gh_uint_t                 status;
    bool                      got_bytes;    /* response bytes this attempt */

    off_t                     rest;         /* CL left, -1 unknown */
    bool                      chunked;
    bool                      close_delimited;
    bool                      keepalive;
    bool                      buffering;
    bool                      out_blocked;  /* client socket full */
    bool                      splicing;     /* zero-copy body relay */
    gh_splice_t               splice;
    gh_http_chunked_t         chunked_state;
    gh_buf_t                **bufs;
    gh_int_t                  nbufs;

    /* tunnel */
    gh_buf_t                 *t_up;         /* client -> upstream */
    gh_buf_t                 *t_down;       /* upstream -> client */
    gh_http_head_buf_t        t_stash;      /* hc->stash not yet sent */
    bool                      t_client_eof;
    bool                      t_up_eof;

    /* timing and log variables */
    gh_msec_t                 start;        /* first attempt */
    gh_msec_t                 try_start;
    gh_msec_t                 connect_ms;
    gh_msec_t                 header_ms;
    gh_proxy_try_t            tries[GH_PROXY_MAX_TRIES];
    gh_uint_t                 ntries;
} gh_proxy_ctx_t;

static void gh_proxy_start(gh_http_request_t *r);
static void gh_proxy_connect(gh_proxy_ctx_t *ctx);
static void gh_proxy_send_request(gh_proxy_ctx_t *ctx);
static void gh_proxy_read_header(gh_proxy_ctx_t *ctx);
static void gh_proxy_read_body(gh_proxy_ctx_t *ctx);
static void gh_proxy_send_failed(gh_proxy_ctx_t *ctx);
static void gh_proxy_next(gh_proxy_ctx_t *ctx, gh_uint_t ft, int err,
    const char *what);
static void gh_proxy_finish(gh_proxy_ctx_t *ctx, gh_int_t rc);
static void gh_proxy_tunnel(gh_proxy_ctx_t *ctx);
static void gh_proxy_log(gh_http_request_t *r, int err, const char *what);
static void gh_proxy_upstream_read_ev(gh_event_t *ev);
static void gh_proxy_upstream_write_ev(gh_event_t *ev);
static void gh_proxy_client_read(gh_http_request_t *r);
static void gh_proxy_connected(gh_proxy_ctx_t *ctx);

#define gh_proxy_ctx(r) \
    ((gh_proxy_ctx_t *) gh_http_get_module_ctx(r, gh_http_proxy_module))

/* ------------------------------------------------------------------ */
/* URI and request head                                                */

size_t
gh_proxy_escape_uri(uint8_t *dst, const uint8_t *src, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = src[i];
        bool esc = ch <= 0x20 || ch >= 0x7f || ch == '#' || ch == '%'
            || ch == '?' || ch == '"';
        if (esc) {
            if (dst) {
                dst[n] = '%';
                dst[n + 1] = (uint8_t) hex[ch >> 4];
                dst[n + 2] = (uint8_t) hex[ch & 0xf];
            }
            n += 3;
        } else {
            if (dst) {
                dst[n] = ch;
            }
            n++;
        }
    }
    return n;
}

/* a request-target from variables: escape what is not a visible ASCII
 * byte, and '#', which would start a fragment */
static gh_int_t
gh_proxy_escape_target(gh_http_request_t *r, const gh_str_t *in,
    gh_str_t *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = in->len;

    for (size_t i = 0; i < in->len; i++) {
        uint8_t ch = in->data[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '#') {
            n += 2;
        }
    }
    if (n == in->len) {
        *out = *in;
        return GH_OK;
    }
    uint8_t *p = gh_alloc_unaligned(r->arena, n);
    if (p == NULL) {
        return GH_ERROR;
    }
    out->data = p;
    out->len = n;
    for (size_t i = 0; i < in->len; i++) {
        uint8_t ch = in->data[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '#') {
            *p++ = '%';
            *p++ = (uint8_t) hex[ch >> 4];
            *p++ = (uint8_t) hex[ch & 0xf];
        } else {
            *p++ = ch;
        }
    }
    return GH_OK;
}

/* prefix + escape(path) + ["?" args] */
static gh_int_t
gh_proxy_join_uri(gh_http_request_t *r, const gh_str_t *prefix,
    const uint8_t *path, size_t plen, gh_str_t *out)
{
    size_t elen = gh_proxy_escape_uri(NULL, path, plen);
    size_t len = prefix->len + elen + (r->args.len ? r->args.len + 1 : 0);
    uint8_t *p = gh_alloc_unaligned(r->arena, len + 1);
    if (p == NULL) {
        return GH_ERROR;
    }
    out->data = p;
    if (prefix->len) {
        memcpy(p, prefix->data, prefix->len);
        p += prefix->len;
    }
    p += gh_proxy_escape_uri(p, path, plen);
    if (r->args.len) {
        *p++ = '?';
        memcpy(p, r->args.data, r->args.len);
        p += r->args.len;
    }
    out->len = (size_t) (p - out->data);
    return GH_OK;
}

static gh_int_t
gh_proxy_build_uri(gh_proxy_ctx_t *ctx, const gh_str_t *var_uri)
{
    gh_http_request_t *r = ctx->r;
    gh_proxy_loc_conf_t *plcf = ctx->plcf;
    gh_str_t empty = gh_null_string;

    if (var_uri && var_uri->data) {
        /* a URI from variables is passed as it evaluated ('%' and '?'
         * included), except for the bytes a request-target cannot hold:
         * a decoded $uri may carry SP, CR or LF that would split the
         * request line (nginx sends them as they are) */
        return gh_proxy_escape_target(r, var_uri, &ctx->uri);
    }
    if (r->head.asterisk_form) {
        gh_str_set(&ctx->uri, "*");
        return GH_OK;
    }
    /* valid_location: the URI still matches the location (a `rewrite
     * ... break` in it clears the flag, and nginx then passes the whole
     * changed URI) */
    if (!var_uri && plcf->uri.data && plcf->location_prefix
        && r->valid_location && r->uri.len >= plcf->location.len
        && memcmp(r->uri.data, plcf->location.data, plcf->location.len) == 0)
    {
        return gh_proxy_join_uri(r, &plcf->uri,
            r->uri.data + plcf->location.len,
            r->uri.len - plcf->location.len, &ctx->uri);
    }
    if (!r->uri_changed) {
        /* as the client sent it (also in a named location, which keeps
         * the URI) */
        if (r->head.absolute_form) {
            size_t len = r->head.path.len
                + (r->head.args.data ? r->head.args.len + 1 : 0);
            uint8_t *p = gh_alloc_unaligned(r->arena, len + 1);
            if (p == NULL) {
                return GH_ERROR;
            }
            memcpy(p, r->head.path.data, r->head.path.len);
            if (r->head.args.data) {
                p[r->head.path.len] = '?';
                memcpy(p + r->head.path.len + 1, r->head.args.data,
                    r->head.args.len);
            }
            ctx->uri.data = p;
            ctx->uri.len = len;
        } else {
            ctx->uri = r->unparsed_uri;
        }
        return GH_OK;
    }
    return gh_proxy_join_uri(r, &empty, r->uri.data, r->uri.len, &ctx->uri);
}

static bool
gh_proxy_hop_by_hop(gh_http_request_t *r, const gh_str_t *name)
{
    /* with their lengths: most names fail on the length alone */
    static const gh_str_t hop[] = {
        gh_string("Connection"), gh_string("Keep-Alive"),
        gh_string("Proxy-Connection"), gh_string("TE"),
        gh_string("Trailer"), gh_string("Transfer-Encoding"),
        gh_string("Upgrade"), gh_string("Expect"),
        gh_string("Content-Length"), gh_string("Host"),
    };
    for (size_t i = 0; i < gh_nelems(hop); i++) {
        if (gh_str_caseeq(name, &hop[i])) {
            return true;
        }
    }
    /* headers the client named in Connection are hop-by-hop too
     * (RFC 9110 7.6.1; nginx passes them, we do not) */
    gh_http_table_elt_t *c = r->headers_in.connection;
    if (c) {
        const uint8_t *p = c->value.data, *end = p + c->value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
                p++;
            }
            const uint8_t *s = p;
            while (p < end && *p != ',' && *p != ' ' && *p != '\t') {
                p++;
            }
            if ((size_t) (p - s) == name->len && name->len
                && gh_strncasecmp(s, name->data, name->len) == 0)
            {
                return true;
            }
        }
    }
    return false;
}

/* header values from variables must not split the request: CR, LF and
 * NUL become spaces */
static void
gh_proxy_sanitize(gh_str_t *v)
{
    for (size_t i = 0; i < v->len; i++) {
        if (v->data[i] == '\r' || v->data[i] == '\n' || v->data[i] == '\0') {
            v->data[i] = ' ';
        }
    }
}

static gh_int_t
gh_proxy_create_request(gh_proxy_ctx_t *ctx)
{
    gh_http_request_t *r = ctx->r;
    gh_proxy_loc_conf_t *plcf = ctx->plcf;
    gh_array_t *hs = plcf->headers_merged;

    gh_str_t method = r->method_name;
    if (plcf->method) {
        if (gh_http_complex_value(r, plcf->method, &method) != GH_OK) {
            return GH_ERROR;
        }
        /* from variables it could be anything, SP and CRLF included */
        for (size_t i = 0; i < method.len; i++) {
            if (!gh_http_is_tchar(method.data[i])) {
                method.len = 0;
                break;
            }
        }
        if (method.len == 0) {
            gh_log(GH_LOG_ERR, &r->conn->log, 0,
                "proxy_method is not a token");
            return GH_ERROR;
        }
    }

    gh_str_t *vals = gh_alloc(r->arena, sizeof(gh_str_t) * (hs->nelts + 1));
    if (vals == NULL) {
        return GH_ERROR;
    }
    size_t len = method.len + 1 + ctx->uri.len + sizeof(" HTTP/1.1\r\n");
    for (size_t i = 0; i < hs->nelts; i++) {
        gh_proxy_header_t *h = gh_array_at(hs, gh_proxy_header_t, i);
        if (gh_http_complex_value(r, &h->value, &vals[i]) != GH_OK) {
            return GH_ERROR;
        }
        if (vals[i].len) {
            if (!gh_http_cv_is_const(&h->value)) {
                /* evaluated into request memory: safe to edit */
                gh_proxy_sanitize(&vals[i]);
            }
            len += h->name.len + 2 + vals[i].len + 2;
        }
    }
    if (plcf->pass_request_headers) {
        for (size_t i = 0; i < r->headers_in.headers.nelts; i++) {
            gh_http_table_elt_t *e = gh_array_at(&r->headers_in.headers,
                gh_http_table_elt_t, i);
            len += e->name.len + 2 + e->value.len + 2;
        }
    }
    len += sizeof("Content-Length: \r\n") + 24 + 2;

    gh_buf_t *b = gh_buf_create(r->arena, len);
    if (b == NULL) {
        return GH_ERROR;
    }
    uint8_t *p = b->last;
    memcpy(p, method.data, method.len);
    p += method.len;
    *p++ = ' ';
    memcpy(p, ctx->uri.data, ctx->uri.len);
    p += ctx->uri.len;
    memcpy(p, plcf->http_version == 1001 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n",
        11);
    p += 11;

    for (size_t i = 0; i < hs->nelts; i++) {
        gh_proxy_header_t *h = gh_array_at(hs, gh_proxy_header_t, i);
        if (vals[i].len == 0) {
            continue;     /* an empty value removes the header */
        }
        memcpy(p, h->name.data, h->name.len);
        p += h->name.len;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, vals[i].data, vals[i].len);
        p += vals[i].len;
        *p++ = '\r';
        *p++ = '\n';
    }
    if (plcf->pass_request_headers) {
        for (size_t i = 0; i < r->headers_in.headers.nelts; i++) {
            gh_http_table_elt_t *e = gh_array_at(&r->headers_in.headers,
                gh_http_table_elt_t, i);
            if (e->hash_skip || gh_proxy_hop_by_hop(r, &e->name)) {
                continue;
            }
            bool overridden = false;
            for (size_t k = 0; k < hs->nelts; k++) {
                gh_proxy_header_t *h = gh_array_at(hs, gh_proxy_header_t, k);
                if (gh_str_caseeq(&h->name, &e->name)) {
                    overridden = true;
                    break;
                }
            }
            if (overridden) {
                continue;
            }
            memcpy(p, e->name.data, e->name.len);
            p += e->name.len;
            *p++ = ':';
            *p++ = ' ';
            memcpy(p, e->value.data, e->value.len);
            p += e->value.len;
            *p++ = '\r';
            *p++ = '\n';
        }
    }
    /* canonical framing: a buffered body is always sent with its length */
    if (ctx->streaming && r->headers_in.chunked) {
        memcpy(p, "Transfer-Encoding: chunked\r\n", 28);
        p += 28;
    } else if (plcf->pass_request_body && (r->headers_in.content_length ||
            r->headers_in.chunked))
    {
        off_t blen = r->request_body ? r->request_body->received
                                     : gh_max(r->headers_in.content_length_n,
                                           0);
        memcpy(p, "Content-Length: ", 16);
        p = gh_utoa(p + 16, (uint64_t) blen);
        *p++ = '\r';
        *p++ = '\n';
    }
    *p++ = '\r';
    *p++ = '\n';
    b->last = p;
    ctx->req_head = b;
    return GH_OK;
}

/* ------------------------------------------------------------------ */
/* handler                                                              */

static void
gh_proxy_body_ready(gh_http_request_t *r)
{
    gh_proxy_start(r);
}

/* ------------------------------------------------------------------ */
/* proxy_pass with variables naming a host: the location's resolver     */
/* looks it up (gh_upstream_resolver.c); the handler returns GH_DONE    */
/* and gh_proxy_resolve_handler() goes on with gh_proxy_proceed().      */

typedef struct {
    gh_http_request_t        *r;
    gh_resolve_ctx_t         *rctx;         /* lookup under way */
    gh_str_t                  host;
    int                       port;
} gh_proxy_resolve_t;

static gh_int_t gh_proxy_proceed(gh_http_request_t *r);

/* the request ended first (client gone): no call may follow */
static void
gh_proxy_resolve_cleanup(void *data)
{
    gh_proxy_resolve_t *rs = data;

    gh_resolve_done(rs->rctx);
    rs->rctx = NULL;
}

/* the answer as this request's group (every address a peer, so next
 * upstream moves between them); GH_OK or a status, with nginx's line */
static gh_int_t
gh_proxy_resolved_group(gh_proxy_resolve_t *rs, gh_resolve_ctx_t *rctx)
{
    gh_http_request_t *r = rs->r;
    gh_proxy_ctx_t *ctx = gh_proxy_ctx(r);

    if (rctx->state != GH_RESOLVE_OK) {
        gh_log(GH_LOG_ERR, &r->conn->log, 0, "%.*s could not be resolved "
            "(%d: %s)", (int) rs->host.len, rs->host.data, rctx->state,
            gh_resolver_strerror(rctx->state));
        return 502;
    }
    ctx->us = gh_upstream_resolved_group(r->arena, &rs->host, rs->port,
        rctx->addrs, rctx->naddrs);
    return ctx->us ? GH_OK : 500;
}

static void
gh_proxy_resolve_handler(gh_resolve_ctx_t *rctx)
{
    gh_proxy_resolve_t *rs = rctx->data;
    gh_http_request_t *r = rs->r;
    gh_int_t rc;

    rs->rctx = NULL;
    if (r->done) {
        gh_resolve_done(rctx);
        return;
    }
    rc = gh_proxy_resolved_group(rs, rctx);
    gh_resolve_done(rctx);
    if (rc == GH_OK) {
        rc = gh_proxy_proceed(r);
    }
    if (rc != GH_DONE) {
        gh_proxy_finish(gh_proxy_ctx(r), rc);
    }
}

/* GH_OK (answer cached: ctx->us set), GH_AGAIN (the handler above goes
 * on), or a status */
static gh_int_t
gh_proxy_resolve(gh_http_request_t *r, gh_proxy_ctx_t *ctx,
    gh_proxy_url_t *u)
{
    gh_resolve_ctx_t *rctx;
    gh_proxy_resolve_t *rs;
    gh_resolver_t *res;
    gh_msec_t timeout = 0;
    gh_int_t rc;

    res = gh_http_resolver(r, &timeout);
    if (res == NULL) {
        gh_log(GH_LOG_ERR, &r->conn->log, 0, "no resolver defined to resolve "
            "%.*s", (int) u->host.len, u->host.data);
        return 502;
    }
    rs = gh_calloc(r->arena, sizeof(*rs));
    if (rs == NULL
        || gh_cleanup_add(r->arena, gh_proxy_resolve_cleanup, rs) == NULL)
    {
        return 500;
    }
    rs->r = r;
    rs->host = u->host;
    rs->port = u->port ? u->port : (u->scheme.len == 5 ? 443 : 80);
    rc = gh_resolve(res, &u->host, timeout, gh_proxy_resolve_handler, rs,
        &rctx);
    if (rc == GH_AGAIN) {
        rs->rctx = rctx;
        /* a client giving up meanwhile ends the request (499) */
        r->read_event_handler = gh_proxy_client_read;
        return GH_AGAIN;
    }
    if (rc != GH_OK) {
        return 500;
    }
    rc = gh_proxy_resolved_group(rs, rctx);
    gh_resolve_done(rctx);
    return rc;
}

/* ctx->us for a proxy_pass with variables: an upstream{} name, an
 * address literal, or a host name to resolve; GH_OK, GH_AGAIN (being
 * resolved) or a status */
static gh_int_t
gh_proxy_runtime_upstream(gh_http_request_t *r, gh_proxy_ctx_t *ctx,
    gh_proxy_url_t *u)
{
    gh_upstream_srv_conf_t *us = NULL;
    if (u->port == 0) {
        us = gh_upstream_find(r, &u->host);
        if (us) {
            ctx->us = us;
            return GH_OK;
        }
    }
    /* an address literal makes a one-peer group for this request */
    gh_str_t hp = u->host;
    char tmp[300];
    if (!(hp.len > 5 && memcmp(hp.data, "unix:", 5) == 0)) {
        int n = snprintf(tmp, sizeof(tmp), "%.*s:%d", (int) hp.len,
            hp.data, u->port ? u->port : (u->scheme.len == 5 ? 443 : 80));
        if (n <= 0 || (size_t) n >= sizeof(tmp)) {
            return 502;
        }
        hp.data = (uint8_t *) tmp;
        hp.len = (size_t) n;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    const char *err = NULL;
    /* only literals: gh_parse_addr_port would block on a name lookup */
    const uint8_t *h = u->host.data;
    bool literal = (u->host.len > 5 && memcmp(h, "unix:", 5) == 0)
        || h[0] == '[';
    if (!literal) {
        struct in_addr a4;
        char hb[64];
        if (u->host.len < sizeof(hb)) {
            memcpy(hb, h, u->host.len);
            hb[u->host.len] = '\0';
            literal = inet_pton(AF_INET, hb, &a4) == 1;
        }
    }
    if (!literal) {
        return gh_proxy_resolve(r, ctx, u);
    }
    if (gh_parse_addr_port(&hp, &ss, &sl, 80, &err) != GH_OK) {
        return 502;
    }
    us = gh_calloc(r->arena, sizeof(*us));
    gh_upstream_peer_t *peer = gh_calloc(r->arena, sizeof(*peer));
    if (us == NULL || peer == NULL) {
        return 502;
    }
    peer->sockaddr = ss;
    peer->socklen = sl;
    gh_sock_ntop((struct sockaddr *) &ss, sl, peer->name, sizeof(peer->name),
        true);
    peer->weight = 1;
    peer->max_fails = 1;
    peer->fail_timeout = 10000;
    us->host = u->host;
    us->implicit = true;
    us->peers = peer;
    us->npeers = 1;
    ctx->us = us;
    return GH_OK;
}

/* the request can end from the client side (write error, timeout) while
 * an upstream connection is open: close it with the request's arena */
static void
gh_proxy_cleanup(void *data)
{
    gh_proxy_ctx_t *ctx = data;
    if (ctx->uc) {
        gh_conn_close(ctx->uc);
        ctx->uc = NULL;
    }
    /* issue 6: the peer's active count (least_conn, max_conns) must not
     * keep a request that is gone; a no-op if already released */
    gh_upstream_peer_free(&ctx->ps, false);
    ctx->state = GH_PROXY_DONE;
}

gh_int_t
gh_proxy_handler(gh_http_request_t *r)
{
    gh_proxy_loc_conf_t *plcf = gh_http_get_module_loc_conf(r,
        gh_http_proxy_module);
    gh_proxy_ctx_t *ctx = gh_calloc(r->arena, sizeof(*ctx));
    if (ctx == NULL) {
        return 500;
    }
    ctx->r = r;
    ctx->plcf = plcf;
    ctx->buffering = plcf->buffering != 0;
    ctx->start = gh_current_msec;
    if (gh_cleanup_add(r->arena, gh_proxy_cleanup, ctx) == NULL) {
        return 500;
    }
    gh_http_set_ctx(r, ctx, gh_http_proxy_module);

    gh_str_t var_uri = gh_null_string;
    if (plcf->url_vars) {
        gh_str_t url;
        gh_proxy_url_t u;
        const char *err = NULL;
        if (gh_http_complex_value(r, &plcf->url_cv, &url) != GH_OK) {
            return 500;
        }
        if (gh_proxy_parse_url(&url, &u, &err) != GH_OK
            || (u.scheme.len != 4 && u.scheme.len != 5))
        {
            gh_log(GH_LOG_ERR, &r->conn->log, 0, "invalid URL prefix in "
                "\"%.*s\"", (int) url.len, url.data);
            return 500;
        }
        /* https (issue 7): 443 is the default port there */
        ctx->ssl = u.scheme.len == 5;
        ctx->proxy_host = u.port == (ctx->ssl ? 443 : 80) ? u.host
                                                          : u.host_port;
        char *pt = gh_alloc_unaligned(r->arena, 8);
        if (pt == NULL) {
            return 500;
        }
        ctx->proxy_port.data = (uint8_t *) pt;
        ctx->proxy_port.len = (size_t) snprintf(pt, 8, "%d",
            u.port ? u.port : (ctx->ssl ? 443 : 80));
        var_uri = u.uri;
        if (gh_proxy_build_uri(ctx, &var_uri) != GH_OK) {
            return 500;
        }
        gh_int_t rc = gh_proxy_runtime_upstream(r, ctx, &u);
        if (rc != GH_OK) {
            /* GH_AGAIN: a name being resolved; the lookup goes on */
            return rc == GH_AGAIN ? GH_DONE : rc;
        }
    } else {
        ctx->us = plcf->upstream;
        ctx->ssl = plcf->scheme.len == 8;     /* "https://" (issue 7) */
        ctx->proxy_host = plcf->host_header;
        ctx->proxy_port = plcf->port_text;
        if (gh_proxy_build_uri(ctx, NULL) != GH_OK) {
            return 500;
        }
    }
    return gh_proxy_proceed(r);
}

/* the rest of the handler, also run once a name is resolved: the body
 * (streamed, read or discarded), then the upstream; GH_DONE or a status */
static gh_int_t
gh_proxy_proceed(gh_http_request_t *r)
{
    gh_proxy_ctx_t *ctx = gh_proxy_ctx(r);
    gh_proxy_loc_conf_t *plcf = ctx->plcf;

    /* proxy_request_buffering off: the body goes up as it arrives (a
     * chunked body needs an HTTP/1.1 upstream to stay chunked; for 1.0 it
     * is buffered, as nginx does) */
    if (plcf->pass_request_body && !plcf->request_buffering
        && gh_http_body_pending(r) && r->request_body == NULL
        && (!r->headers_in.chunked || plcf->http_version == 1001))
    {
        ctx->streaming = true;
        gh_proxy_start(r);
        return GH_DONE;
    }
    if (plcf->pass_request_body && gh_http_body_pending(r)) {
        gh_int_t rc = gh_http_read_client_request_body(r, gh_proxy_body_ready);
        if (rc >= 100) {
            return rc;
        }
        /* GH_OK: gh_proxy_start already ran; GH_AGAIN: it will */
        return GH_DONE;
    }
    if (!plcf->pass_request_body && gh_http_body_pending(r)) {
        gh_http_discard_request_body(r);
    }
    gh_proxy_start(r);
    return GH_DONE;
}

static void
gh_proxy_start(gh_http_request_t *r)
{
    gh_proxy_ctx_t *ctx = gh_proxy_ctx(r);

    if (gh_proxy_create_request(ctx) != GH_OK) {
        gh_http_finalize_request(r, 500);
        return;
    }
    /* issue 6: the request gives hash keys, ip_hash its client address
     * and sticky its cookie */
    if (gh_upstream_peer_init(&ctx->ps, ctx->us, r,
            (gh_uint_t) ctx->plcf->next_upstream_tries) != GH_OK)
    {
        gh_http_finalize_request(r, 500);
        return;
    }
    r->read_event_handler = gh_proxy_client_read;
    gh_proxy_connect(ctx);
}

/* ------------------------------------------------------------------ */
/* log helpers                                                          */

static void
gh_proxy_set_log_upstream(gh_proxy_ctx_t *ctx)
{
    gh_http_request_t *r = ctx->r;
    const char *name = ctx->ps.peer ? ctx->ps.peer->name : "";
    size_t nl = strlen(name);
    size_t sl = ctx->ssl ? 8 : 7;     /* "https://" (issue 7) */
    uint8_t *p = gh_alloc_unaligned(r->arena, sl + nl + ctx->uri.len);
    if (p == NULL) {
        return;
    }
    r->log_upstream.data = p;
    memcpy(p, ctx->ssl ? "https://" : "http://", sl);
    memcpy(p + sl, name, nl);
    memcpy(p + sl + nl, ctx->uri.data, ctx->uri.len);
    r->log_upstream.len = sl + nl + ctx->uri.len;
}

/* one attempt's facts; the $upstream_* strings are made from them only
 * when a log format asks (formatting per request was measurable) */
static void
gh_proxy_end_try(gh_proxy_ctx_t *ctx, gh_uint_t status)
{
    if (ctx->ntries >= GH_PROXY_MAX_TRIES) {
        return;
    }
    gh_proxy_try_t *t = &ctx->tries[ctx->ntries++];
    t->peer = ctx->ps.peer;
    t->status = status;
    t->rtime = gh_current_msec - ctx->try_start;
    t->ctime = ctx->state > GH_PROXY_CONNECTING ? ctx->connect_ms : -1;
    t->htime = ctx->header_ms >= 0 ? ctx->header_ms : -1;
}

static uint8_t *
gh_proxy_fmt_msec(uint8_t *p, gh_msec_t ms)
{
    if (ms < 0) {
        *p++ = '-';
        return p;
    }
    p = gh_utoa(p, (uint64_t) (ms / 1000));
    *p++ = '.';
    *p++ = (uint8_t) ('0' + (ms % 1000) / 100);
    *p++ = (uint8_t) ('0' + (ms % 100) / 10);
    *p++ = (uint8_t) ('0' + ms % 10);
    return p;
}

/* ------------------------------------------------------------------ */
/* connect and send                                                     */

static void
gh_proxy_connect(gh_proxy_ctx_t *ctx)
{
    gh_http_request_t *r = ctx->r;

    if (ctx->same_peer) {
        ctx->same_peer = false;
    } else if (gh_upstream_peer_get(&ctx->ps) != GH_OK) {
        size_t len = 7 + ctx->ssl + ctx->us->host.len + ctx->uri.len;
        uint8_t *p = gh_alloc_unaligned(r->arena, len + 1);
        if (p) {
            snprintf((char *) p, len + 1, "%s://%.*s%.*s",
                ctx->ssl ? "https" : "http",
                (int) ctx->us->host.len, ctx->us->host.data,
                (int) ctx->uri.len, ctx->uri.data);
            r->log_upstream.data = p;
            r->log_upstream.len = len;
        }
        gh_log(GH_LOG_ERR, &r->conn->log, 0,
            "no live upstreams while connecting to upstream");
        gh_proxy_finish(ctx, 502);
        return;
    }
    ctx->ps.log = &r->conn->log;
    /* a new attempt starts from a clean response state */
    if (ctx->hbuf) {
        ctx->hbuf->pos = ctx->hbuf->last = ctx->hbuf->start;
    }
    memset(&ctx->sh, 0, sizeof(ctx->sh));
    memset(&ctx->chunked_state, 0, sizeof(ctx->chunked_state));
    ctx->close_delimited = false;
    ctx->chunked = false;
    ctx->status = 0;
    ctx->try_start = gh_current_msec;
    ctx->connect_ms = -1;
    ctx->header_ms = -1;
    ctx->got_bytes = false;
    ctx->bytes_sent = false;
    ctx->head_sent = false;
    ctx->state = GH_PROXY_CONNECTING;
    gh_proxy_set_log_upstream(ctx);

    gh_conn_t *uc = NULL;
    bool pooled = false;
    errno = 0;
    gh_int_t rc = gh_upstream_connect(&ctx->ps, r->conn->loop, &r->conn->log,
        &uc, &pooled);
    if (rc == GH_ERROR) {
        int err = errno;
        char msg[300];
        ctx->uc = NULL;
        snprintf(msg, sizeof(msg), "connect() to %s failed while connecting "
            "to upstream", ctx->ps.peer->name);
        gh_proxy_next(ctx, GH_PROXY_FT_ERROR, err, msg);
        return;
    }
    ctx->uc = uc;
    ctx->pooled = pooled;
    uc->data = ctx;
    uc->read.handler = gh_proxy_upstream_read_ev;
    uc->write.handler = gh_proxy_upstream_write_ev;
    uc->log.handler = r->conn->log.handler;
    uc->log.data = r->conn->log.data;

    if (rc == GH_AGAIN) {
        gh_timer_add(uc->loop, &uc->write, ctx->plcf->connect_timeout);
        return;
    }
    gh_proxy_connected(ctx);
}

/* TLS to the upstream (issue 7, gh_proxy_ssl.c): a new connection to an
 * https upstream does its handshake before the request goes out; pooled
 * connections are past theirs.  $upstream_connect_time includes it, as
 * in nginx. */
static void
gh_proxy_ssl_done(void *data, gh_uint_t ft, const char *what)
{
    gh_proxy_ctx_t *ctx = data;

    if (ft) {
        gh_proxy_next(ctx, ft, 0, what);
        return;
    }
    ctx->connect_ms = gh_current_msec - ctx->try_start;
    ctx->state = GH_PROXY_SENDING;
    gh_proxy_send_request(ctx);
}

static void
gh_proxy_connected(gh_proxy_ctx_t *ctx)
{
    ctx->connect_ms = gh_current_msec - ctx->try_start;
    if (ctx->ssl && !ctx->pooled) {
        char err[1536];
        gh_int_t rc = gh_proxy_ssl_handshake(ctx->r, ctx->uc,
            &ctx->proxy_host, ctx->plcf->connect_timeout, gh_proxy_ssl_done,
            ctx, err, sizeof(err));
        if (rc == GH_AGAIN) {
            return;
        }
        if (rc != GH_OK) {
            gh_proxy_next(ctx, GH_PROXY_FT_ERROR, 0, err);
            return;
        }
    }
    ctx->state = GH_PROXY_SENDING;
    gh_proxy_send_request(ctx);
}

static gh_chain_t *
gh_proxy_request_chain(gh_proxy_ctx_t *ctx)
{
    gh_http_request_t *r = ctx->r;
    gh_buf_t *h = gh_alloc(r->arena, sizeof(*h));
    if (h == NULL) {
        return NULL;
    }
    *h = *ctx->req_head;
    h->pos = h->start;
    gh_chain_t *head = gh_chain_link(r->arena, h), **ll;
    if (head == NULL) {
        return NULL;
    }
    ll = &head->next;
    if (ctx->plcf->pass_request_body && r->request_body) {
        for (gh_chain_t *cl = r->request_body->bufs; cl; cl = cl->next) {
            gh_buf_t *b = gh_alloc(r->arena, sizeof(*b));
            if (b == NULL) {
                return NULL;
            }
            *b = *cl->buf;
            if (b->in_file) {
                b->file_pos = 0;
            } else {
                b->pos = b->start;
            }
            if (gh_buf_size(b) == 0) {
                continue;
            }
            *ll = gh_chain_link(r->arena, b);
            if (*ll == NULL) {
                return NULL;
            }
            ll = &(*ll)->next;
        }
    }
    return head;
}

static void gh_proxy_send_body(gh_proxy_ctx_t *ctx);

static void
gh_proxy_send_request(gh_proxy_ctx_t *ctx)
{
    gh_conn_t *uc = ctx->uc;

    if (ctx->head_sent) {
        gh_proxy_send_body(ctx);
        return;
    }
    if (ctx->req_out == NULL) {
        ctx->req_out = gh_proxy_request_chain(ctx);
        if (ctx->req_out == NULL) {
            gh_proxy_finish(ctx, 500);
            return;
        }
    }
    off_t before = uc->sent;
    gh_chain_t *rest = uc->send_chain(uc, ctx->req_out, 0);
    if (uc->sent != before) {
        ctx->bytes_sent = true;
    }
    if (rest == GH_CHAIN_ERROR) {
        ctx->req_out = NULL;
        gh_proxy_send_failed(ctx);
        return;
    }
    ctx->req_out = rest;
    if (rest) {
        gh_timer_add(uc->loop, &uc->write, ctx->plcf->send_timeout);
        return;
    }
    if (uc->write.timer_set) {
        gh_timer_del(uc->loop, &uc->write);
    }
    ctx->head_sent = true;
    if (ctx->streaming) {
        gh_proxy_send_body(ctx);
        return;
    }
    ctx->request_sent = true;
    ctx->state = GH_PROXY_READING_HEADER;
    gh_timer_add(uc->loop, &uc->read, ctx->plcf->read_timeout);
    if (uc->read.ready) {
        gh_proxy_read_header(ctx);
    }
}

/* proxy_request_buffering off: client body -> upstream as it arrives */
static void
gh_proxy_send_body(gh_proxy_ctx_t *ctx)
{
    gh_http_request_t *r = ctx->r;
    gh_conn_t *uc = ctx->uc, *c = r->conn;
    bool chunked = r->headers_in.chunked;

    if (ctx->sbuf == NULL) {
        ctx->sbuf = gh_buf_create(r->arena,
            gh_http_clcf(r)->client_body_buffer_size + 32);
        if (ctx->sbuf == NULL) {
            gh_proxy_finish(ctx, 500);
            return;
        }
    }
    for (;;) {
        if (ctx->s_out) {
            off_t before = uc->sent;
            gh_chain_t *rest = uc->send_chain(uc, ctx->s_out, 0);
            if (uc->sent != before) {
                ctx->bytes_sent = true;
            }
            if (rest == GH_CHAIN_ERROR) {
                ctx->s_out = NULL;
                gh_proxy_send_failed(ctx);
                return;
            }
            ctx->s_out = rest;
            if (rest) {
                gh_timer_add(uc->loop, &uc->write, ctx->plcf->send_timeout);
                return;
            }
            if (uc->write.timer_set) {
                gh_timer_del(uc->loop, &uc->write);
            }
        }
        if (ctx->stream_eof) {
            ctx->request_sent = true;
            ctx->state = GH_PROXY_READING_HEADER;
            gh_event_t *rev = gh_http_client_read_event(r);
            if (rev->timer_set) {
                gh_timer_del(c->loop, rev);
            }
            gh_timer_add(uc->loop, &uc->read, ctx->plcf->read_timeout);
            if (uc->read.ready) {
                gh_proxy_read_header(ctx);
            }
            return;
        }

        /* room for "hex\r\n" before and "\r\n0\r\n\r\n" after */
        gh_buf_t *b = ctx->sbuf;
        uint8_t *data = b->start + 20;
        size_t room = (size_t) (b->end - b->start) - 20 - 12;
        size_t n = 0;
        gh_int_t rc = gh_http_read_body_stream(r, data, room, &n);
        if (rc == GH_AGAIN) {
            /* wait for the client; gh_proxy_client_read comes back here */
            gh_timer_add(c->loop, gh_http_client_read_event(r),
                gh_http_clcf(r)->client_body_timeout);
            return;
        }
        if (rc != GH_OK && rc != GH_DONE) {
            /* a broken client body: the upstream got part of it */
            r->keepalive = 0;
            gh_proxy_finish(ctx, rc);
            return;
        }
        ctx->stream_eof = rc == GH_DONE;
        uint8_t *start = data, *end = data + n;
        if (chunked) {
            if (n) {
                char hdr[20];
                uint8_t *he = gh_xtoa((uint8_t *) hdr, n);
                *he++ = '\r';
                *he++ = '\n';
                int hl = (int) (he - (uint8_t *) hdr);
                start = data - hl;
                memcpy(start, hdr, (size_t) hl);
                memcpy(end, "\r\n", 2);
                end += 2;
            }
            if (ctx->stream_eof) {
                memcpy(end, "0\r\n\r\n", 5);
                end += 5;
            }
        }
        if (end == start) {
            continue;
        }
        b->pos = start;
        b->last = end;
        ctx->s_out = gh_chain_link(r->arena, b);
        if (ctx->s_out == NULL) {
            gh_proxy_finish(ctx, 500);
            return;
        }
        ctx->stream_started = true;
    }
}

static void
gh_proxy_upstream_write_ev(gh_event_t *ev)
{
    gh_conn_t *uc = ev->data;
    gh_proxy_ctx_t *ctx = uc->data;

    if (ctx->state == GH_PROXY_CONNECTING) {
        if (ev->timedout) {
            ev->timedout = 0;
            gh_proxy_next(ctx, GH_PROXY_FT_TIMEOUT, ETIMEDOUT,
                "upstream timed out while connecting to upstream");
            return;
        }
        if (gh_upstream_connect_check(uc) != GH_OK) {
            gh_proxy_next(ctx, GH_PROXY_FT_ERROR, errno,
                "connect() failed while connecting to upstream");
            return;
        }
        if (uc->write.timer_set) {
            gh_timer_del(uc->loop, &uc->write);
        }
        gh_proxy_connected(ctx);
        return;
    }
    if (ctx->state == GH_PROXY_SENDING) {
        if (ev->timedout) {
            ev->timedout = 0;
            gh_proxy_next(ctx, GH_PROXY_FT_TIMEOUT, ETIMEDOUT,
                "upstream timed out while sending request to upstream");
            return;
        }
        gh_proxy_send_request(ctx);
        return;
    }
    if (ctx->state == GH_PROXY_TUNNEL) {
        gh_proxy_tunnel(ctx);
    }
}

static void
gh_proxy_upstream_read_ev(gh_event_t *ev)
{
    gh_conn_t *uc = ev->data;
    gh_proxy_ctx_t *ctx = uc->data;

    switch (ctx->state) {
    case GH_PROXY_READING_HEADER:
        if (ev->timedout) {
            ev->timedout = 0;
            gh_proxy_next(ctx, GH_PROXY_FT_TIMEOUT, ETIMEDOUT,
                "upstream timed out while reading response header from "
                "upstream");
            return;
        }
        gh_proxy_read_header(ctx);
        return;
    case GH_PROXY_READING_BODY:
        if (ev->timedout) {
            ev->timedout = 0;
            gh_proxy_log(ctx->r, ETIMEDOUT,
                "upstream timed out while reading upstream");
            gh_proxy_finish(ctx, GH_ERROR);
            return;
        }
        gh_proxy_read_body(ctx);
        return;
    case GH_PROXY_TUNNEL:
        if (ev->timedout) {
            ev->timedout = 0;
            gh_proxy_finish(ctx, GH_ERROR);
            return;
        }
        gh_proxy_tunnel(ctx);
        return;
    case GH_PROXY_SENDING:
        /* an early answer (413, 401...) or a close: let the write path
         * find out; data stays in the socket until we read the head */
        if (uc->read.eof && !ctx->bytes_sent) {
            gh_proxy_next(ctx, GH_PROXY_FT_ERROR, 0, "upstream prematurely "
                "closed connection while sending request to upstream");
        }
        return;
    default:
        return;
    }
}

/* the client went away while we wait for the upstream */
static void
gh_proxy_client_read(gh_http_request_t *r)
{
    gh_proxy_ctx_t *ctx = gh_proxy_ctx(r);
    gh_conn_t *c = r->conn;

    if (ctx == NULL || ctx->state == GH_PROXY_TUNNEL) {
        if (ctx) {
            gh_proxy_tunnel(ctx);
        }
        return;
    }
    if (ctx->streaming && !ctx->stream_eof && ctx->state == GH_PROXY_SENDING
        && ctx->head_sent)
    {
        gh_event_t *rev = gh_http_client_read_event(r);
        if (rev->timedout) {
            rev->timedout = 0;
            gh_log(GH_LOG_INFO, &c->log, 0, "client timed out while sending "
                "request body");
            r->keepalive = 0;
            gh_proxy_finish(ctx, 408);
            return;
        }
        if (ctx->s_out == NULL) {
            gh_proxy_send_body(ctx);
        }
        return;
    }
    if (!(c->read.eof || c->read.error) || ctx->plcf->ignore_client_abort) {
        return;
    }
    gh_log(GH_LOG_INFO, &c->log, 0, "client prematurely closed connection "
        "while %s upstream", ctx->state == GH_PROXY_READING_BODY
        ? "reading" : "waiting for");
    r->headers_out.status = r->header_sent ? r->headers_out.status : 499;
    gh_proxy_finish(ctx, 499);
}

/* ------------------------------------------------------------------ */
/* failures and the end                                                 */

static void
gh_proxy_close_upstream(gh_proxy_ctx_t *ctx)
{
    if (ctx->uc) {
        gh_conn_close(ctx->uc);
        ctx->uc = NULL;
    }
}

static bool
gh_proxy_idempotent(gh_http_request_t *r)
{
    switch (r->method) {
    case GH_HTTP_POST:
    case GH_HTTP_PATCH:
    case GH_HTTP_CONNECT:
        return false;
    case GH_HTTP_UNKNOWN:
        return gh_str_eq_c(&r->method_name, "LOCK") ? false : true;
    default:
        return true;
    }
}

/* nginx's shape: "connect() failed (111: Connection refused) while
 * connecting to upstream, client: ..." -- the errno goes before the
 * "while" part of the message */
static void
gh_proxy_log(gh_http_request_t *r, int err, const char *what)
{
    const char *w = strstr(what, " while ");
    if (err == 0 || w == NULL) {
        gh_log(GH_LOG_ERR, &r->conn->log, err, "%s", what);
        return;
    }
    gh_log(GH_LOG_ERR, &r->conn->log, 0, "%.*s (%d: %s)%s",
        (int) (w - what), what, err, strerror(err), w);
}

/* send_chain to the upstream failed: the message names the call that
 * failed (gh_conn_send_failed), in nginx's shape */
static void
gh_proxy_send_failed(gh_proxy_ctx_t *ctx)
{
    int  err = errno;
    char what[96];

    snprintf(what, sizeof(what), "%s() failed while sending request to "
        "upstream", gh_conn_send_failed);
    gh_proxy_next(ctx, GH_PROXY_FT_ERROR, err, what);
}

static void
gh_proxy_next(gh_proxy_ctx_t *ctx, gh_uint_t ft, int err, const char *what)
{
    gh_http_request_t *r = ctx->r;
    gh_proxy_loc_conf_t *plcf = ctx->plcf;

    /* a pooled connection the upstream had closed: try a fresh one
     * without blaming the peer (only when a replay is safe) */
    if (ctx->pooled && !ctx->got_bytes && ft == GH_PROXY_FT_ERROR
        && !ctx->stream_started
        && (gh_proxy_idempotent(r) || !ctx->bytes_sent)
        && ctx->pool_retries++ < 16)
    {
        gh_log(GH_LOG_DEBUG, &r->conn->log, err,
            "%s (keep-alive connection), retrying", what);
        gh_proxy_close_upstream(ctx);
        ctx->req_out = NULL;
        ctx->same_peer = true;      /* same peer, no try used up */
        gh_proxy_connect(ctx);
        return;
    }

    if (ft & (GH_PROXY_FT_TIMEOUT | GH_PROXY_FT_ERROR
              | GH_PROXY_FT_INVALID_HEADER))
    {
        gh_proxy_log(r, ft == GH_PROXY_FT_TIMEOUT ? ETIMEDOUT : err, what);
    }

    gh_uint_t status = ft == GH_PROXY_FT_TIMEOUT ? 504
        : ft == GH_PROXY_FT_HTTP_500 ? 500 : ft == GH_PROXY_FT_HTTP_503 ? 503
        : ft == GH_PROXY_FT_HTTP_504 ? 504 : ft == GH_PROXY_FT_HTTP_403 ? 403
        : ft == GH_PROXY_FT_HTTP_404 ? 404 : ft == GH_PROXY_FT_HTTP_429 ? 429
        : 502;
    bool failure = ft != GH_PROXY_FT_HTTP_403 && ft != GH_PROXY_FT_HTTP_404;

    gh_proxy_end_try(ctx, status);
    gh_upstream_peer_free(&ctx->ps, failure);
    gh_proxy_close_upstream(ctx);
    ctx->req_out = NULL;

    bool may_retry = (plcf->next_upstream & ft) && ctx->ps.tries > 0
        && !r->header_sent && !ctx->stream_started
        && (!ctx->bytes_sent || gh_proxy_idempotent(r)
            || (plcf->next_upstream & GH_PROXY_FT_NON_IDEMPOTENT))
        && (plcf->next_upstream_timeout == 0
            || gh_current_msec - ctx->start < plcf->next_upstream_timeout);
    if (may_retry) {
        gh_proxy_connect(ctx);
        return;
    }
    ctx->state = GH_PROXY_DONE;
    if (r->header_sent) {
        gh_proxy_finish(ctx, GH_ERROR);
        return;
    }
    gh_proxy_finish(ctx, (gh_int_t) status);
}

/* end of the proxied request: rc as for gh_http_finalize_request */
static void
gh_proxy_finish(gh_proxy_ctx_t *ctx, gh_int_t rc)
{
    gh_http_request_t *r = ctx->r;
    if (ctx->state != GH_PROXY_DONE && ctx->uc) {
        gh_proxy_end_try(ctx, ctx->status);
    }
    ctx->state = GH_PROXY_DONE;
    gh_proxy_close_upstream(ctx);
    /* issue 6: errors mid-body, tunnels, 5xx of our own: the attempt
     * ends here (nginx frees the peer in finalize, not as a failure) */
    gh_upstream_peer_free(&ctx->ps, false);
    r->output_drained = NULL;
    r->read_event_handler = gh_http_block_reading;
    gh_http_finalize_request(r, rc);
}

/* ------------------------------------------------------------------ */
/* response head                                                        */

static gh_int_t gh_proxy_process_header(gh_proxy_ctx_t *ctx, size_t nh,
    gh_http_header_t *h);

static void
gh_proxy_read_header(gh_proxy_ctx_t *ctx)
{
    gh_http_request_t *r = ctx->r;
    gh_conn_t *uc = ctx->uc;
    static gh_http_header_t headers[GH_HTTP_MAX_HEADERS];
    gh_http_limits_t limits = {
        .max_request_line = ctx->plcf->buffer_size,
        .max_header_line = ctx->plcf->buffer_size,
        .max_headers = GH_HTTP_MAX_HEADERS,
    };

    if (ctx->hbuf == NULL) {
        ctx->hbuf = gh_buf_create(r->arena, ctx->plcf->buffer_size);
        if (ctx->hbuf == NULL) {
            gh_proxy_finish(ctx, 500);
            return;
        }
    }
    gh_buf_t *b = ctx->hbuf;

    for (;;) {
        if (b->last > b->pos) {
            size_t nh = 0;
            ssize_t rc = gh_http_parse_response_head(b->pos,
                (size_t) (b->last - b->pos), &ctx->sh, headers, &nh, &limits);
            if (rc > 0) {
                if (ctx->sh.status >= 100 && ctx->sh.status < 200
                    && ctx->sh.status != 101)
                {
                    /* interim responses are not passed on */
                    b->pos += rc;
                    memset(&ctx->sh, 0, sizeof(ctx->sh));
                    continue;
                }
                b->pos += rc;
                if (uc->read.timer_set) {
                    gh_timer_del(uc->loop, &uc->read);
                }
                ctx->header_ms = gh_current_msec - ctx->try_start;
                /* issue 6: time to the head, status counters */
                gh_upstream_peer_response(&ctx->ps, ctx->sh.status);
                gh_proxy_process_header(ctx, nh, headers);
                return;
            }
            if (rc != GH_AGAIN) {
                gh_proxy_next(ctx, GH_PROXY_FT_INVALID_HEADER, 0,
                    ctx->sh.status == 0 ? "upstream sent no valid HTTP/1.0 "
                    "header while reading response header from upstream"
                    : "upstream sent invalid header while reading response "
                    "header from upstream");
                return;
            }
            if (b->last == b->end) {
                gh_proxy_next(ctx, GH_PROXY_FT_INVALID_HEADER, 0,
                    "upstream sent too big header while reading response "
                    "header from upstream");
                return;
            }
        }
        if (!uc->read.ready) {
            return;
        }
        ssize_t n = uc->recv(uc, b->last, (size_t) (b->end - b->last));
        if (n == GH_AGAIN) {
            return;
        }
        if (n == 0) {
            gh_proxy_next(ctx, GH_PROXY_FT_ERROR, 0, "upstream prematurely "
                "closed connection while reading response header from "
                "upstream");
            return;
        }
        if (n < 0) {
            gh_proxy_next(ctx, GH_PROXY_FT_ERROR, errno, "recv() failed "
                "while reading response header from upstream");
            return;
        }
        ctx->got_bytes = true;
        b->last += n;
    }
}

static bool
gh_proxy_str_in(gh_array_t *list, const gh_str_t *name)
{
    if (list == NULL) {
        return false;
    }
    for (size_t i = 0; i < list->nelts; i++) {
        if (gh_str_caseeq(gh_array_at(list, gh_str_t, i), name)) {
            return true;
        }
    }
    return false;
}

/* proxy_redirect on a Location/Refresh value; returns the new value */
static gh_str_t
gh_proxy_rewrite_redirect(gh_proxy_ctx_t *ctx, gh_str_t v)
{
    gh_http_request_t *r = ctx->r;
    gh_proxy_loc_conf_t *plcf = ctx->plcf;
    if (plcf->redirect_off == 1) {
        return v;
    }
    gh_array_t *list = plcf->redirects;
    gh_proxy_redirect_t def = { .is_default = 1 };
    size_t n = list ? list->nelts : 1;

    for (size_t i = 0; i < n; i++) {
        gh_proxy_redirect_t *pr = list ? gh_array_at(list,
            gh_proxy_redirect_t, i) : &def;
        gh_str_t from, to;
        if (pr->is_default) {
            if (plcf->url_vars) {
                continue;
            }
            /* "http://host:port/uri" -> location name */
            size_t flen = plcf->scheme.len + plcf->upstream->host.len + 8
                + (plcf->uri.len ? plcf->uri.len : 1);
            uint8_t *f = gh_alloc_unaligned(r->arena, flen);
            if (f == NULL) {
                return v;
            }
            int k = snprintf((char *) f, flen, "%.*s%.*s%.*s",
                (int) plcf->scheme.len, plcf->scheme.data,
                (int) plcf->url.len - (int) plcf->scheme.len
                    - (int) plcf->uri.len, plcf->url.data + plcf->scheme.len,
                plcf->uri.len ? (int) plcf->uri.len : 1,
                plcf->uri.len ? (const char *) plcf->uri.data : "/");
            from.data = f;
            from.len = (size_t) gh_max(k, 0);
            to = plcf->uri.len ? plcf->location : (gh_str_t) gh_string("/");
        } else if (pr->regex) {
            if (gh_http_regex_exec(r, pr->regex, &v) != GH_OK) {
                continue;
            }
            if (gh_http_complex_value(r, &pr->to, &to) != GH_OK) {
                return v;
            }
            return to;
        } else {
            if (gh_http_complex_value(r, &pr->from, &from) != GH_OK
                || gh_http_complex_value(r, &pr->to, &to) != GH_OK)
            {
                return v;
            }
        }
        if (from.len && v.len >= from.len
            && memcmp(v.data, from.data, from.len) == 0)
        {
            gh_str_t out;
            out.len = to.len + v.len - from.len;
            out.data = gh_alloc_unaligned(r->arena, out.len + 1);
            if (out.data == NULL) {
                return v;
            }
            memcpy(out.data, to.data, to.len);
            memcpy(out.data + to.len, v.data + from.len, v.len - from.len);
            return out;
        }
    }
    return v;
}

/* Refresh: "5; url=http://..." -- the URL after "url=" is rewritten */
static gh_str_t
gh_proxy_rewrite_refresh(gh_proxy_ctx_t *ctx, gh_str_t v)
{
    for (size_t i = 0; i + 4 <= v.len; i++) {
        if (gh_strncasecmp(v.data + i, (const uint8_t *) "url=", 4) != 0) {
            continue;
        }
        gh_str_t url = { v.len - i - 4, v.data + i + 4 };
        gh_str_t nu = gh_proxy_rewrite_redirect(ctx, url);
        if (nu.data == url.data && nu.len == url.len) {
            return v;
        }
        gh_str_t out;
        out.len = i + 4 + nu.len;
        out.data = gh_alloc_unaligned(ctx->r->arena, out.len + 1);
        if (out.data == NULL) {
            return v;
        }
        memcpy(out.data, v.data, i + 4);
        memcpy(out.data + i + 4, nu.data, nu.len);
        return out;
    }
    return v;
}

/* proxy_cookie_path / proxy_cookie_domain on one Set-Cookie value */
static gh_str_t
gh_proxy_rewrite_cookie(gh_proxy_ctx_t *ctx, gh_str_t v, gh_array_t *list,
    const char *attr)
{
    gh_http_request_t *r = ctx->r;
    if (list == NULL) {
        return v;
    }
    size_t alen = strlen(attr);
    for (size_t i = 0; i + alen < v.len; i++) {
        if ((i == 0 || v.data[i - 1] == ';' || v.data[i - 1] == ' ')
            && gh_strncasecmp(v.data + i, (const uint8_t *) attr, alen) == 0)
        {
            size_t s = i + alen, e = s;
            while (e < v.len && v.data[e] != ';') {
                e++;
            }
            gh_str_t val = { e - s, v.data + s };
            for (size_t k = 0; k < list->nelts; k++) {
                gh_proxy_redirect_t *pr = gh_array_at(list,
                    gh_proxy_redirect_t, k);
                gh_str_t from, to;
                bool match;
                if (pr->regex) {
                    match = gh_http_regex_exec(r, pr->regex, &val) == GH_OK;
                    from = val;
                } else {
                    if (gh_http_complex_value(r, &pr->from, &from) != GH_OK) {
                        return v;
                    }
                    match = val.len >= from.len && gh_strncasecmp(val.data,
                        from.data, from.len) == 0;
                }
                if (!match || gh_http_complex_value(r, &pr->to, &to)
                    != GH_OK)
                {
                    continue;
                }
                gh_str_t out;
                size_t keep = pr->regex ? 0 : val.len - from.len;
                out.len = s + to.len + keep + (v.len - e);
                out.data = gh_alloc_unaligned(r->arena, out.len + 1);
                if (out.data == NULL) {
                    return v;
                }
                uint8_t *p = out.data;
                memcpy(p, v.data, s);
                p += s;
                memcpy(p, to.data, to.len);
                p += to.len;
                memcpy(p, val.data + from.len * !pr->regex, keep);
                p += keep;
                memcpy(p, v.data + e, v.len - e);
                return out;
            }
            return v;
        }
    }
    return v;
}

static gh_int_t
gh_proxy_intercept(gh_proxy_ctx_t *ctx)
{
    gh_http_request_t *r = ctx->r;
    gh_http_core_loc_conf_t *clcf = gh_http_clcf(r);
    if (!ctx->plcf->intercept_errors || ctx->status < 300
        || clcf->error_pages == NULL)
    {
        return GH_DECLINED;
    }
    for (size_t i = 0; i < clcf->error_pages->nelts; i++) {
        gh_http_err_page_t *ep = gh_array_at(clcf->error_pages,
            gh_http_err_page_t, i);
        for (size_t k = 0; k < ep->codes->nelts; k++) {
            if ((gh_uint_t) *gh_array_at(ep->codes, gh_int_t, k)
                == ctx->status)
            {
                return GH_OK;
            }
        }
    }
    return GH_DECLINED;
}

static gh_uint_t
gh_proxy_status_ft(gh_uint_t status)
{
    switch (status) {
    case 500: return GH_PROXY_FT_HTTP_500;
    case 502: return GH_PROXY_FT_HTTP_502;
    case 503: return GH_PROXY_FT_HTTP_503;
    case 504: return GH_PROXY_FT_HTTP_504;
    case 403: return GH_PROXY_FT_HTTP_403;
    case 404: return GH_PROXY_FT_HTTP_404;
    case 429: return GH_PROXY_FT_HTTP_429;
    default: return 0;
    }
}

static void gh_proxy_output_drained(gh_http_request_t *r);

static gh_int_t
gh_proxy_process_header(gh_proxy_ctx_t *ctx, size_t nh, gh_http_header_t *h)
{
    gh_http_request_t *r = ctx->r;
    gh_proxy_loc_conf_t *plcf = ctx->plcf;
    gh_http_headers_out_t *ho = &r->headers_out;
    bool conn_close = false, te_seen = false, cl_seen = false;
    gh_int_t location_idx = -1;
    gh_str_t xaccel = gh_null_string;

    ctx->status = ctx->sh.status;

    /* issue 6: as nginx's ngx_http_upstream_test_next, a status moves on
     * only with a try left after this one (the last answer passes as it
     * came), within proxy_next_upstream_timeout, never for a streamed
     * body, and for a POST/PATCH/LOCK (which reached this server) only
     * with non_idempotent; otherwise the answer passes as it came */
    gh_uint_t ft = gh_proxy_status_ft(ctx->status);
    gh_uint_t mask = ft | (gh_proxy_idempotent(r) ? 0
                                                  : GH_PROXY_FT_NON_IDEMPOTENT);
    if (ft && (plcf->next_upstream & mask) == mask && ctx->ps.tries > 1
        && !ctx->streaming
        && (plcf->next_upstream_timeout == 0
            || gh_current_msec - ctx->start < plcf->next_upstream_timeout))
    {
        gh_proxy_next(ctx, ft, 0, "");
        return GH_DONE;
    }

    ctx->uheaders = gh_alloc(r->arena, sizeof(gh_http_table_elt_t)
        * (nh ? nh : 1));
    if (ctx->uheaders == NULL) {
        gh_proxy_finish(ctx, 500);
        return GH_DONE;
    }
    ctx->nuheaders = nh;
    ctx->rest = -1;
    ctx->chunked = false;

    ho->headers.nelts = 0;
    ho->content_length_n = -1;
    ho->content_type.len = 0;
    ho->location = NULL;

    for (size_t i = 0; i < nh; i++) {
        gh_str_t *n = &h[i].name, v = h[i].value;
        ctx->uheaders[i].name = *n;
        ctx->uheaders[i].value = v;
        ctx->uheaders[i].hash_skip = 0;

        if (gh_str_caseeq_c(n, "Content-Length")) {
            int64_t cl = gh_http_parse_content_length(&v);
            if (cl < 0 || (cl_seen && cl != ctx->rest)) {
                gh_proxy_next(ctx, GH_PROXY_FT_INVALID_HEADER, 0,
                    "upstream sent invalid \"Content-Length\" header while "
                    "reading response header from upstream");
                return GH_DONE;
            }
            cl_seen = true;
            ctx->rest = (off_t) cl;
            continue;
        }
        if (gh_str_caseeq_c(n, "Transfer-Encoding")) {
            if (gh_http_te_is_chunked(&v) != 1 || te_seen) {
                gh_proxy_next(ctx, GH_PROXY_FT_INVALID_HEADER, 0,
                    "upstream sent unknown \"Transfer-Encoding\" while "
                    "reading response header from upstream");
                return GH_DONE;
            }
            te_seen = true;
            continue;
        }
        if (gh_str_caseeq_c(n, "Connection")) {
            if (v.len >= 5 && memmem(v.data, v.len, "close", 5)) {
                conn_close = true;
            }
            continue;
        }
        if (gh_str_caseeq_c(n, "Keep-Alive")
            || gh_str_caseeq_c(n, "Proxy-Connection")
            || gh_str_caseeq_c(n, "TE") || gh_str_caseeq_c(n, "Trailer"))
        {
            continue;
        }
        if (gh_str_caseeq_c(n, "Upgrade") && ctx->status != 101) {
            continue;
        }
        if (gh_str_caseeq_c(n, "X-Accel-Redirect")) {
            if (!(plcf->ignore_headers & GH_PROXY_IGN_XA_REDIRECT)) {
                xaccel = v;
            }
            continue;
        }
        if (gh_str_caseeq_c(n, "X-Accel-Buffering")) {
            if (!(plcf->ignore_headers & GH_PROXY_IGN_XA_BUFFERING)) {
                ctx->buffering = !gh_str_caseeq_c(&v, "no");
            }
            continue;
        }
        bool pass = gh_proxy_str_in(plcf->pass_headers, n);
        if (!pass && (gh_str_caseeq_c(n, "Date")
                      || gh_str_caseeq_c(n, "Server")
                      || gh_str_caseeq_c(n, "X-Pad")
                      || (n->len > 8 && gh_strncasecmp(n->data,
                              (const uint8_t *) "X-Accel-", 8) == 0)))
        {
            continue;
        }
        if (gh_proxy_str_in(plcf->hide_headers, n)) {
            continue;
        }
        if (gh_str_caseeq_c(n, "Content-Type")) {
            ho->content_type = v;
            continue;
        }
        bool rewritten = false;
        if (gh_str_caseeq_c(n, "Location")) {
            gh_str_t nv = gh_proxy_rewrite_redirect(ctx, v);
            rewritten = nv.data != v.data || nv.len != v.len;
            v = nv;
        } else if (gh_str_caseeq_c(n, "Refresh")) {
            v = gh_proxy_rewrite_refresh(ctx, v);
        } else if (gh_str_caseeq_c(n, "Set-Cookie")) {
            v = gh_proxy_rewrite_cookie(ctx, v, plcf->cookie_paths, "path=");
            v = gh_proxy_rewrite_cookie(ctx, v, plcf->cookie_domains,
                "domain=");
        }
        gh_http_table_elt_t *e = gh_array_push(&ho->headers);
        if (e == NULL) {
            gh_proxy_finish(ctx, 500);
            return GH_DONE;
        }
        e->name = *n;
        e->value = v;
        e->hash_skip = 0;
        if (rewritten) {
            location_idx = (gh_int_t) ho->headers.nelts - 1;
        }
    }
    /* issue 6: the sticky cookie, if the client is not bound yet (pushed
     * before the pointers below are taken) */
    gh_upstream_peer_headers_out(&ctx->ps, r);
    /* pointers into the array only now: pushing may have moved it.  As in
     * nginx only a Location that proxy_redirect rewrote becomes
     * r->headers_out.location (and so absolute); others pass as sent. */
    for (size_t i = 0; i < ho->headers.nelts; i++) {
        gh_http_table_elt_t *e = gh_array_at(&ho->headers,
            gh_http_table_elt_t, i);
        if ((gh_int_t) i == location_idx) {
            ho->location = e;
        } else if (gh_str_caseeq_c(&e->name, "Server")) {
            ho->server = e;
        } else if (gh_str_caseeq_c(&e->name, "Date")) {
            ho->date = e;
        }
    }
    if (te_seen && cl_seen) {
        gh_proxy_next(ctx, GH_PROXY_FT_INVALID_HEADER, 0, "upstream sent "
            "\"Content-Length\" and \"Transfer-Encoding\" headers at the same "
            "time while reading response header from upstream");
        return GH_DONE;
    }

    /* framing */
    bool no_body = r->method == GH_HTTP_HEAD || ctx->status == 204
        || ctx->status == 304 || ctx->status < 200;
    if (no_body) {
        ctx->rest = 0;
    } else if (te_seen) {
        ctx->chunked = true;
        if (ctx->sh.http_minor == 0) {
            gh_proxy_next(ctx, GH_PROXY_FT_INVALID_HEADER, 0, "upstream sent "
                "\"Transfer-Encoding\" in an HTTP/1.0 response");
            return GH_DONE;
        }
    } else if (!cl_seen) {
        ctx->close_delimited = true;
    }
    ctx->keepalive = ctx->us->keepalive > 0 && plcf->http_version == 1001
        && ctx->sh.http_minor == 1 && !conn_close && !ctx->close_delimited
        && ctx->status != 101;
    ho->status = ctx->status;
    if (ctx->sh.reason.len) {
        /* nginx passes the upstream's status line as it came */
        size_t sl = 4 + ctx->sh.reason.len;
        uint8_t *p = gh_alloc_unaligned(r->arena, sl + 1);
        if (p) {
            uint8_t *e = gh_utoa(p, ctx->status);
            *e++ = ' ';
            memcpy(e, ctx->sh.reason.data, ctx->sh.reason.len);
            sl = (size_t) (e - p) + ctx->sh.reason.len;
            ho->status_line.data = p;
            ho->status_line.len = sl;
        }
    }
    if (!no_body || r->method == GH_HTTP_HEAD) {
        ho->content_length_n = cl_seen ? ctx->rest : -1;
        if (r->method == GH_HTTP_HEAD && !cl_seen) {
            ho->content_length_n = -1;
        }
    }
    if (cl_seen && r->method == GH_HTTP_HEAD) {
        /* HEAD: the representation's length is passed, no body follows */
        int64_t cl = -1;
        for (size_t i = 0; i < nh; i++) {
            if (gh_str_caseeq_c(&h[i].name, "Content-Length")) {
                cl = gh_http_parse_content_length(&h[i].value);
            }
        }
        ho->content_length_n = (off_t) cl;
    }

    if (ctx->status == 101) {
        if (r->headers_in.upgrade == NULL) {
            gh_proxy_next(ctx, GH_PROXY_FT_INVALID_HEADER, 0, "upstream sent "
                "\"101 Switching Protocols\" without request \"Upgrade\" "
                "header while reading response header from upstream");
            return GH_DONE;
        }
        ho->content_length_n = -1;
        gh_int_t rc = gh_http_send_header(r);
        if (rc == GH_ERROR) {
            gh_proxy_finish(ctx, GH_ERROR);
            return GH_DONE;
        }
        r->upgraded = 1;
        ctx->state = GH_PROXY_TUNNEL;
        gh_proxy_tunnel(ctx);
        return GH_DONE;
    }

    if (xaccel.len) {
        gh_proxy_end_try(ctx, ctx->status);
        gh_upstream_peer_free(&ctx->ps, false);
        ctx->state = GH_PROXY_DONE;
        gh_proxy_close_upstream(ctx);
        r->output_drained = NULL;
        r->read_event_handler = gh_http_block_reading;
        ho->headers.nelts = 0;
        ho->status = 0;
        ho->status_line.len = 0;
        ho->location = ho->server = ho->date = NULL;
        ho->content_length_n = -1;
        ho->content_type.len = 0;
        if (r->method != GH_HTTP_HEAD) {
            r->method = GH_HTTP_GET;
            gh_str_set(&r->method_name, "GET");
        }
        gh_str_t uri = xaccel, args = gh_null_string;
        if (uri.data[0] == '@') {
            gh_http_finalize_request(r, gh_http_named_location(r, &uri));
            return GH_DONE;
        }
        uint8_t *q = memchr(uri.data, '?', uri.len);
        if (q) {
            args.data = q + 1;
            args.len = uri.len - (size_t) (q - uri.data) - 1;
            uri.len = (size_t) (q - uri.data);
        }
        gh_str_t u2 = gh_str_dup(r->arena, &uri);
        gh_str_t a2 = gh_str_dup(r->arena, &args);
        gh_http_finalize_request(r, gh_http_internal_redirect(r, &u2,
            q ? &a2 : NULL));
        return GH_DONE;
    }

    if (gh_proxy_intercept(ctx) == GH_OK) {
        gh_uint_t st = ctx->status;
        gh_proxy_end_try(ctx, st);
        gh_upstream_peer_free(&ctx->ps, false);
        ctx->state = GH_PROXY_DONE;
        gh_proxy_close_upstream(ctx);
        r->output_drained = NULL;
        r->read_event_handler = gh_http_block_reading;
        ho->headers.nelts = 0;
        ho->status_line.len = 0;
        ho->location = ho->server = ho->date = NULL;
        ho->content_length_n = -1;
        ho->content_type.len = 0;
        gh_http_finalize_request(r, (gh_int_t) st);
        return GH_DONE;
    }

    gh_int_t rc = gh_http_send_header(r);
    if (rc == GH_ERROR) {
        gh_proxy_finish(ctx, GH_ERROR);
        return GH_DONE;
    }
    ctx->state = GH_PROXY_READING_BODY;
    r->output_drained = gh_proxy_output_drained;
    gh_proxy_read_body(ctx);
    return GH_DONE;
}

/* ------------------------------------------------------------------ */
/* response body                                                        */

static void
gh_proxy_body_done(gh_proxy_ctx_t *ctx, bool clean)
{
    gh_http_request_t *r = ctx->r;
    gh_conn_t *uc = ctx->uc;

    gh_proxy_end_try(ctx, ctx->status);
    gh_upstream_peer_free(&ctx->ps, false);
    if (uc && uc->read.timer_set) {
        gh_timer_del(uc->loop, &uc->read);
    }
    if (uc && clean && ctx->keepalive) {
        gh_upstream_conn_info(uc)->requests++;
        uc->data = NULL;
        gh_upstream_keepalive_put(uc);
        ctx->uc = NULL;
    } else {
        gh_proxy_close_upstream(ctx);
    }
    ctx->state = GH_PROXY_DONE;
    r->output_drained = NULL;
    r->read_event_handler = gh_http_block_reading;

    gh_buf_t *last = gh_calloc(r->arena, sizeof(*last));
    gh_chain_t *cl = last ? gh_chain_link(r->arena, last) : NULL;
    if (cl == NULL) {
        gh_http_finalize_request(r, GH_ERROR);
        return;
    }
    last->last_buf = 1;
    gh_int_t rc = gh_http_output_filter(r, cl);
    gh_http_finalize_request(r, rc == GH_ERROR ? GH_ERROR
        : rc == GH_AGAIN ? GH_AGAIN : GH_OK);
}

static void
gh_proxy_output_drained(gh_http_request_t *r)
{
    gh_proxy_ctx_t *ctx = gh_proxy_ctx(r);
    if (ctx && ctx->state == GH_PROXY_READING_BODY) {
        ctx->out_blocked = false;
        gh_proxy_read_body(ctx);
    }
}

/* append body slice [p, p+n) of buffer b to the chain */
static gh_int_t
gh_proxy_add_slice(gh_http_request_t *r, gh_chain_t ***ll, const uint8_t *p,
    size_t n)
{
    gh_arena_t *a = r->batch_arena ? r->batch_arena : r->arena;
    gh_buf_t *d = gh_calloc(a, sizeof(*d));
    if (d == NULL) {
        return GH_ERROR;
    }
    d->start = d->pos = (uint8_t *) p;
    d->last = d->end = (uint8_t *) p + n;
    d->fd = -1;
    **ll = gh_chain_link(a, d);
    if (**ll == NULL) {
        return GH_ERROR;
    }
    *ll = &(**ll)->next;
    return GH_OK;
}

/* decode/limit the bytes [b->pos, b->last) just read; sets *done */
static gh_int_t
gh_proxy_body_input(gh_proxy_ctx_t *ctx, gh_buf_t *b, gh_chain_t ***ll,
    bool *done, bool *extra)
{
    gh_http_request_t *r = ctx->r;
    if (ctx->chunked) {
        while (b->pos < b->last) {
            size_t consumed = 0, dlen = 0;
            const uint8_t *data = NULL;
            gh_int_t rc = gh_http_parse_chunked(&ctx->chunked_state, b->pos,
                (size_t) (b->last - b->pos), &consumed, &data, &dlen);
            b->pos += consumed;
            if (rc == GH_ERROR) {
                gh_log(GH_LOG_ERR, &r->conn->log, 0, "upstream sent invalid "
                    "chunked response while reading upstream");
                return GH_ERROR;
            }
            if (dlen && gh_proxy_add_slice(r, ll, data, dlen) != GH_OK) {
                return GH_ERROR;
            }
            if (rc == GH_DONE) {
                *done = true;
                *extra = b->pos < b->last;
                return GH_OK;
            }
            if (rc == GH_AGAIN) {
                break;
            }
        }
        return GH_OK;
    }
    size_t n = (size_t) (b->last - b->pos);
    if (ctx->rest >= 0 && (off_t) n > ctx->rest) {
        *extra = true;
        n = (size_t) ctx->rest;
    }
    if (n && gh_proxy_add_slice(r, ll, b->pos, n) != GH_OK) {
        return GH_ERROR;
    }
    b->pos += n;
    if (ctx->rest >= 0) {
        ctx->rest -= (off_t) n;
        if (ctx->rest == 0) {
            *done = true;
        }
    }
    return GH_OK;
}

/*
 * Zero-copy relay (splice) for a large Content-Length body that nothing
 * inspects: plain sockets on both sides, no body filter but the base ones,
 * nothing re-framed (the client gets the same Content-Length), and once
 * what was read with the head and the response head itself are out.
 */
#define GH_PROXY_SPLICE_MIN (64 * 1024)

static void gh_proxy_splice_write(gh_http_request_t *r);

static void
gh_proxy_splice_cleanup(void *data)
{
    gh_splice_release(data);
}

static bool
gh_proxy_splice_ready(gh_proxy_ctx_t *ctx)
{
    gh_http_request_t *r = ctx->r;
    if (ctx->splicing) {
        return true;
    }
    if (ctx->chunked || ctx->rest < GH_PROXY_SPLICE_MIN || r->chunked
        || r->header_only || ctx->out_blocked || r->out
        || r->conn->tls || ctx->uc->tls || !gh_http_body_filters_plain()
        || r->stream
        || (ctx->hbuf && ctx->hbuf->pos < ctx->hbuf->last))
    {
        return false;
    }
    gh_splice_init(&ctx->splice);
    if (gh_cleanup_add(r->arena, gh_proxy_splice_cleanup, &ctx->splice)
        == NULL)
    {
        return false;
    }
    ctx->splicing = true;
    r->write_event_handler = gh_proxy_splice_write;
    return true;
}

static void
gh_proxy_splice(gh_proxy_ctx_t *ctx)
{
    gh_http_request_t *r = ctx->r;
    gh_conn_t *c = r->conn, *uc = ctx->uc;
    off_t moved = 0;

    gh_int_t rc = gh_splice_pump(&ctx->splice, uc, c, &ctx->rest, &moved);
    r->bytes_sent += moved;
    if (rc == GH_OK) {
        if (c->write.timer_set) {
            gh_timer_del(c->loop, &c->write);
        }
        ctx->splicing = false;
        /* the pipe is empty: back to the cache now, for the next relay,
         * rather than when the request ends */
        gh_splice_release(&ctx->splice);
        gh_proxy_body_done(ctx, true);
        return;
    }
    if (rc == GH_DONE) {
        gh_log(GH_LOG_ERR, &r->conn->log, 0, "upstream prematurely "
            "closed connection while reading upstream");
        gh_proxy_finish(ctx, GH_ERROR);
        return;
    }
    if (rc == GH_ERROR) {
        /* the client's fault, the upstream's, or no pipe to be had */
        if (c->write.error) {
            gh_log(GH_LOG_INFO, &r->conn->log, errno,
                "splice() failed while sending to client");
        } else if (uc->read.error) {
            gh_log(GH_LOG_ERR, &r->conn->log, errno,
                "splice() failed while reading upstream");
        } else {
            gh_log(GH_LOG_ALERT, &r->conn->log, errno, "pipe2() failed");
        }
        gh_proxy_finish(ctx, GH_ERROR);
        return;
    }
    /* waiting: for the client when the pipe holds bytes, else upstream */
    if (ctx->splice.in_pipe) {
        if (uc->read.timer_set) {
            gh_timer_del(uc->loop, &uc->read);
        }
        gh_timer_add(c->loop, &c->write, gh_http_clcf(r)->send_timeout);
    } else {
        if (c->write.timer_set) {
            gh_timer_del(c->loop, &c->write);
        }
        gh_timer_add(uc->loop, &uc->read, ctx->plcf->read_timeout);
    }
}

static void
gh_proxy_splice_write(gh_http_request_t *r)
{
    gh_proxy_ctx_t *ctx = gh_proxy_ctx(r);
    gh_conn_t *c = r->conn;
    if (c->write.timedout) {
        c->write.timedout = 0;
        gh_log(GH_LOG_INFO, &c->log, 0, "client timed out");
        gh_proxy_finish(ctx, GH_ERROR);
        return;
    }
    if (ctx && ctx->splicing && ctx->state == GH_PROXY_READING_BODY) {
        gh_proxy_splice(ctx);
    }
}

/*
 * The upstream body broke (bad framing, reset, early close) after the
 * head was queued for the client.  Pass on what was decoded, try once to
 * flush, then close without ending the body (no last chunk): the client
 * sees a response cut short, never a clean end, and not an empty reply
 * because the head was still waiting in the output.
 */
static void
gh_proxy_body_broken(gh_proxy_ctx_t *ctx, gh_chain_t *out)
{
    gh_http_request_t *r = ctx->r;
    gh_buf_t *f = gh_calloc(r->arena, sizeof(*f));
    gh_chain_t *cl = f ? gh_chain_link(r->arena, f) : NULL;

    r->keepalive = 0;
    if (cl != NULL) {
        f->flush = 1;
        gh_chain_t **ll = &out;
        while (*ll) {
            ll = &(*ll)->next;
        }
        *ll = cl;
        (void) gh_http_output_filter(r, out);
    }
    gh_proxy_finish(ctx, GH_ERROR);
}


/* cleanup of the request arena: the batch arena goes back to the cache */
static void
gh_proxy_batch_arena_put(void *data)
{
    gh_http_arena_put(data);
}

/* at most this many buffers per readv (proxy_buffers may name more) */
#define GH_PROXY_READV_MAX  64

/*
 * One batch from a plain upstream socket in as few readv as it takes
 * (nginx's readv chain), instead of one recv per proxy_buffers_size
 * piece: 8 syscalls -> 1 for a 32 KiB batch.  Buffers are taken as the
 * body needs them, as the recv loop did: for a known length exactly what
 * is left of it (up to the batch); for chunked or unknown lengths the
 * ones this request already has (at least one), then twice as many
 * while a read fills them all, so a slow stream (SSE) keeps one buffer.
 * A Content-Length body is never over-read; a chunked one may be, as
 * with recv: bytes after its end are "extra" (the connection is not
 * reused).
 */
static gh_int_t
gh_proxy_read_batch(gh_proxy_ctx_t *ctx, gh_chain_t ***ll, bool *done,
    bool *extra, bool *eof)
{
    gh_http_request_t *r = ctx->r;
    struct iovec       iov[GH_PROXY_READV_MAX];
    size_t             bsize = ctx->plcf->buffers_size;
    gh_int_t           nbufs = gh_min(ctx->nbufs, GH_PROXY_READV_MAX);
    gh_int_t           from = 0, to;
    bool               capped = !ctx->chunked && ctx->rest > 0;

    if (capped) {
        off_t need = (ctx->rest + (off_t) bsize - 1) / (off_t) bsize;
        to = need < nbufs ? (gh_int_t) need : nbufs;
    } else {
        to = 1;
        while (to < nbufs && ctx->bufs[to] != NULL) {
            to++;
        }
    }

    for (;;) {
        size_t total = 0;
        int    cnt = 0;

        for (gh_int_t i = from; i < to; i++) {
            if (ctx->bufs[i] == NULL) {
                ctx->bufs[i] = gh_buf_create(r->arena, bsize);
                if (ctx->bufs[i] == NULL) {
                    return GH_ERROR;
                }
            }
            gh_buf_t *b = ctx->bufs[i];
            b->pos = b->last = b->start;
            size_t want = (size_t) (b->end - b->last);
            if (capped && (off_t) (total + want) > ctx->rest) {
                want = (size_t) (ctx->rest - (off_t) total);
            }
            iov[cnt].iov_base = b->last;
            iov[cnt].iov_len = want;
            cnt++;
            total += want;
        }
        ssize_t n = gh_unix_readv(ctx->uc, iov, cnt);
        if (n == GH_AGAIN) {
            return GH_OK;
        }
        if (n == 0) {
            *eof = true;
            return GH_OK;
        }
        if (n < 0) {
            gh_log(GH_LOG_ERR, &r->conn->log, errno, "readv() failed "
                "while reading upstream");
            return GH_ERROR;
        }
        bool full = (size_t) n == total;
        for (int i = 0; i < cnt && n > 0; i++) {
            gh_buf_t *b = ctx->bufs[from + i];
            size_t take = gh_min((size_t) n, iov[i].iov_len);
            b->last += take;
            n -= (ssize_t) take;
            if (*done) {
                /* past the end of a chunked body */
                *extra = true;
                continue;
            }
            if (gh_proxy_body_input(ctx, b, ll, done, extra) != GH_OK) {
                return GH_ERROR;
            }
        }
        if (capped || *done || !full || to == nbufs
            || !ctx->uc->read.ready)
        {
            return GH_OK;
        }
        from = to;
        to = gh_min(to * 2, nbufs);
    }
}

/* One batch through uc->recv (TLS), a proxy_buffers_size piece at a
 * time while the connection has data. */
static gh_int_t
gh_proxy_read_bufs(gh_proxy_ctx_t *ctx, gh_chain_t ***ll, bool *done,
    bool *extra, bool *eof)
{
    gh_http_request_t *r = ctx->r;
    gh_conn_t *uc = ctx->uc;

    for (gh_int_t i = 0; i < ctx->nbufs && !*done && uc->read.ready; i++) {
        if (ctx->bufs[i] == NULL) {
            ctx->bufs[i] = gh_buf_create(r->arena, ctx->plcf->buffers_size);
            if (ctx->bufs[i] == NULL) {
                return GH_ERROR;
            }
        }
        gh_buf_t *b = ctx->bufs[i];
        b->pos = b->last = b->start;
        size_t want = (size_t) (b->end - b->last);
        if (!ctx->chunked && ctx->rest > 0 && (off_t) want > ctx->rest) {
            want = (size_t) ctx->rest;
        }
        ssize_t n = uc->recv(uc, b->last, want);
        if (n == GH_AGAIN) {
            break;
        }
        if (n == 0) {
            *eof = true;
            break;
        }
        if (n < 0) {
            gh_log(GH_LOG_ERR, &r->conn->log, errno, "recv() failed "
                "while reading upstream");
            return GH_ERROR;
        }
        b->last += n;
        if (gh_proxy_body_input(ctx, b, ll, done, extra) != GH_OK) {
            return GH_ERROR;
        }
    }
    return GH_OK;
}

static void
gh_proxy_read_body(gh_proxy_ctx_t *ctx)
{
    gh_http_request_t *r = ctx->r;
    gh_conn_t *uc = ctx->uc;
    gh_proxy_loc_conf_t *plcf = ctx->plcf;

    if (ctx->bufs == NULL) {
        ctx->nbufs = plcf->buffers_num;
        ctx->bufs = gh_calloc(r->arena, sizeof(gh_buf_t *)
            * (size_t) ctx->nbufs);
        if (ctx->bufs == NULL) {
            gh_proxy_finish(ctx, GH_ERROR);
            return;
        }
        /* the shells of each batch (slices, chunk framing) live here and
         * die with it: without this a long or endless (SSE) response
         * would grow the request arena by ~13% of its length */
        r->batch_arena = gh_http_arena_get(4096);
        if (r->batch_arena == NULL
            || gh_arena_set_account(r->batch_arena, r->arena->account)
               != GH_OK
            || gh_cleanup_add(r->arena,
                gh_proxy_batch_arena_put, r->batch_arena) == NULL)
        {
            if (r->batch_arena) {
                gh_http_arena_put(r->batch_arena);
                r->batch_arena = NULL;
            }
            gh_proxy_finish(ctx, GH_ERROR);
            return;
        }
    }

    for (;;) {
        if (gh_proxy_splice_ready(ctx)) {
            gh_proxy_splice(ctx);
            return;
        }
        if (ctx->out_blocked) {
            /* the client has not taken the last batch: wait (bounded
             * memory); gh_proxy_output_drained resumes */
            if (uc->read.timer_set) {
                gh_timer_del(uc->loop, &uc->read);
            }
            return;
        }
        gh_chain_t *out = NULL, **ll = &out;
        bool done = ctx->rest == 0, extra = false, eof = false;

        if (r->out == NULL) {
            /* everything handed over so far has been sent */
            gh_arena_reset(r->batch_arena);
        }

        /* what followed the head in the head buffer comes first */
        if (ctx->hbuf && ctx->hbuf->pos < ctx->hbuf->last && !done) {
            if (gh_proxy_body_input(ctx, ctx->hbuf, &ll, &done, &extra)
                != GH_OK)
            {
                gh_proxy_body_broken(ctx, out);
                return;
            }
        }

        if (!done && uc->read.ready) {
            /* a plain socket fills the batch with readv, TLS buffer by
             * buffer */
            gh_int_t rc = uc->recv == gh_unix_recv
                ? gh_proxy_read_batch(ctx, &ll, &done, &extra, &eof)
                : gh_proxy_read_bufs(ctx, &ll, &done, &extra, &eof);
            if (rc != GH_OK) {
                gh_proxy_body_broken(ctx, out);
                return;
            }
        }

        if (out) {
            for (gh_chain_t *cl = out; cl; cl = cl->next) {
                if (cl->next == NULL) {
                    cl->buf->flush = 1;
                }
            }
            gh_int_t rc = gh_http_output_filter(r, out);
            if (rc == GH_ERROR) {
                gh_proxy_finish(ctx, GH_ERROR);
                return;
            }
            ctx->out_blocked = rc == GH_AGAIN;
        }
        if (done) {
            gh_proxy_body_done(ctx, !extra);
            return;
        }
        if (eof) {
            if (ctx->close_delimited) {
                ctx->keepalive = false;
                gh_proxy_body_done(ctx, false);
                return;
            }
            gh_log(GH_LOG_ERR, &r->conn->log, 0, "upstream prematurely "
                "closed connection while reading upstream");
            gh_proxy_body_broken(ctx, NULL);
            return;
        }
        if (!uc->read.ready && !ctx->out_blocked) {
            gh_timer_add(uc->loop, &uc->read, plcf->read_timeout);
            return;
        }
    }
}

/* ------------------------------------------------------------------ */
/* upgraded connections (websockets)                                    */

/*
 * Move bytes from src to dst through b until either side would block.
 * left: NULL, or regions of bytes src sent before the tunnel started,
 * NULL-terminated, in order.  They go first, sent from where they are,
 * and nothing is read into b until all of them are gone: any amount of
 * them crosses in order, without a copy and without more memory.
 */
static int
gh_proxy_pump(gh_conn_t *src, gh_conn_t *dst, gh_buf_t *b,
    gh_http_head_buf_t *const *left, bool *src_eof)
{
    int moved = 0;
    for (;;) {
        uint8_t **pos = &b->pos, *last = b->last;
        for (size_t i = 0; left && left[i]; i++) {
            if (left[i]->pos < left[i]->last) {
                pos = &left[i]->pos;
                last = left[i]->last;
                break;
            }
        }
        if (*pos < last) {
            if (!dst->write.ready) {
                return moved;
            }
            ssize_t n = dst->send(dst, *pos, (size_t) (last - *pos));
            if (n == GH_AGAIN) {
                return moved;
            }
            if (n < 0) {
                return -1;
            }
            *pos += n;
            moved = 1;
            continue;
        }
        b->pos = b->last = b->start;
        if (*src_eof) {
            return moved;
        }
        if (!src->read.ready) {
            return moved;
        }
        ssize_t n = src->recv(src, b->last, (size_t) (b->end - b->last));
        if (n == GH_AGAIN) {
            return moved;
        }
        if (n == 0) {
            *src_eof = true;
            shutdown(dst->fd, SHUT_WR);
            return 1;
        }
        if (n < 0) {
            return -1;
        }
        b->last += n;
        moved = 1;
    }
}

static void
gh_proxy_tunnel(gh_proxy_ctx_t *ctx)
{
    gh_http_request_t *r = ctx->r;
    gh_conn_t *c = r->conn, *uc = ctx->uc;
    gh_http_connection_t *hc = r->http_conn;

    if (ctx->t_up == NULL) {
        ctx->t_up = gh_buf_create(r->arena, ctx->plcf->buffer_size);
        ctx->t_down = ctx->hbuf;     /* bytes after the 101 head first */
        if (ctx->t_up == NULL || ctx->t_down == NULL) {
            gh_proxy_finish(ctx, GH_ERROR);
            return;
        }
        /* bytes the client sent after its request head: the rest of
         * the head buffer, then what a chunked body's reader read past
         * the body (one of them is empty); pumped from there */
        ctx->t_stash.start = ctx->t_stash.pos = hc->stash;
        ctx->t_stash.last = ctx->t_stash.end = hc->stash
            ? hc->stash + hc->stash_len : NULL;
        r->read_event_handler = gh_proxy_client_read;
        r->write_event_handler = gh_proxy_client_read;
    }
    if (r->out) {
        gh_int_t rc = gh_http_write_filter(r, NULL);
        if (rc == GH_ERROR) {
            gh_proxy_finish(ctx, GH_ERROR);
            return;
        }
        if (rc == GH_AGAIN) {
            r->write_event_handler = gh_proxy_client_read;
            return;
        }
    }
    r->write_event_handler = gh_proxy_client_read;

    gh_http_head_buf_t *const left[] = { &hc->buf, &ctx->t_stash, NULL };
    int a = gh_proxy_pump(c, uc, ctx->t_up, left, &ctx->t_client_eof);
    int b = gh_proxy_pump(uc, c, ctx->t_down, NULL, &ctx->t_up_eof);
    if (a < 0 || b < 0 || (ctx->t_client_eof && ctx->t_up_eof)
        || (ctx->t_up_eof && ctx->t_down->pos == ctx->t_down->last
            && c->read.eof))
    {
        ctx->status = 101;
        gh_proxy_finish(ctx, GH_ERROR);
        return;
    }
    if (a > 0 || b > 0 || !uc->read.timer_set) {
        gh_timer_add(uc->loop, &uc->read, ctx->plcf->read_timeout);
    }
}

/* ------------------------------------------------------------------ */
/* variables                                                            */

static gh_int_t
gh_proxy_var_str(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    gh_proxy_ctx_t *ctx = gh_proxy_ctx(r);
    if (ctx == NULL) {
        return GH_DECLINED;
    }
    if (data == 0) {
        *v = ctx->proxy_host;
        return GH_OK;
    }
    if (data == 1) {
        *v = ctx->proxy_port;
        return GH_OK;
    }
    if (ctx->ntries == 0) {
        return GH_DECLINED;
    }
    uint8_t *p = gh_alloc_unaligned(r->arena, ctx->ntries * 136);
    if (p == NULL) {
        return GH_ERROR;
    }
    v->data = p;
    for (gh_uint_t i = 0; i < ctx->ntries; i++) {
        gh_proxy_try_t *t = &ctx->tries[i];
        if (i) {
            *p++ = ',';
            *p++ = ' ';
        }
        switch (data) {
        case 2: {
            const char *n = t->peer ? t->peer->name : "";
            size_t nl = strlen(n);
            memcpy(p, n, nl);
            p += nl;
            break;
        }
        case 3:
            if (t->status) {
                p = gh_utoa(p, t->status);
            } else {
                *p++ = '-';
            }
            break;
        case 4:
            p = gh_proxy_fmt_msec(p, t->rtime);
            break;
        case 5:
            p = gh_proxy_fmt_msec(p, t->ctime);
            break;
        default:
            p = gh_proxy_fmt_msec(p, t->htime);
            break;
        }
    }
    v->len = (size_t) (p - v->data);
    return GH_OK;
}

static gh_int_t
gh_proxy_var_xff(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    gh_str_t addr = r->conn->addr_text;
    size_t len = addr.len;
    gh_http_table_elt_t *all[32];
    size_t n = 0;
    for (size_t i = 0; i < r->headers_in.headers.nelts && n < 32; i++) {
        gh_http_table_elt_t *e = gh_array_at(&r->headers_in.headers,
            gh_http_table_elt_t, i);
        if (gh_str_caseeq_c(&e->name, "X-Forwarded-For")) {
            all[n++] = e;
            len += e->value.len + 2;
        }
    }
    if (n == 0) {
        *v = addr;
        return GH_OK;
    }
    uint8_t *p = gh_alloc_unaligned(r->arena, len);
    if (p == NULL) {
        return GH_ERROR;
    }
    v->data = p;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, all[i]->value.data, all[i]->value.len);
        p += all[i]->value.len;
        *p++ = ',';
        *p++ = ' ';
    }
    memcpy(p, addr.data, addr.len);
    p += addr.len;
    v->len = (size_t) (p - v->data);
    return GH_OK;
}

static gh_int_t
gh_proxy_var_upstream_http(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    const gh_str_t *full = (const gh_str_t *) data;
    gh_proxy_ctx_t *ctx = gh_proxy_ctx(r);
    if (ctx == NULL || ctx->uheaders == NULL || full->len <= 14) {
        return GH_DECLINED;
    }
    const uint8_t *name = full->data + 14;       /* after "upstream_http_" */
    size_t nlen = full->len - 14;
    for (size_t i = 0; i < ctx->nuheaders; i++) {
        gh_str_t *hn = &ctx->uheaders[i].name;
        if (hn->len != nlen) {
            continue;
        }
        size_t k = 0;
        for (; k < nlen; k++) {
            uint8_t a = gh_tolower(hn->data[k]), b = name[k];
            if (a == '-') {
                a = '_';
            }
            if (a != gh_tolower(b)) {
                break;
            }
        }
        if (k == nlen) {
            *v = ctx->uheaders[i].value;
            return GH_OK;
        }
    }
    return GH_DECLINED;
}

gh_int_t
gh_proxy_add_variables(gh_conf_t *cf)
{
    static const char *names[] = {
        "proxy_host", "proxy_port", "upstream_addr", "upstream_status",
        "upstream_response_time", "upstream_connect_time",
        "upstream_header_time",
    };
    for (size_t i = 0; i < gh_nelems(names); i++) {
        gh_str_t n = { strlen(names[i]), (uint8_t *) names[i] };
        gh_http_variable_t *v = gh_http_add_variable(cf, &n,
            GH_HTTP_VAR_NOCACHEABLE);
        if (v == NULL) {
            return GH_ERROR;
        }
        v->get = gh_proxy_var_str;
        v->data = i;
    }
    gh_str_t n = gh_string("proxy_add_x_forwarded_for");
    gh_http_variable_t *v = gh_http_add_variable(cf, &n,
        GH_HTTP_VAR_NOCACHEABLE);
    if (v == NULL) {
        return GH_ERROR;
    }
    v->get = gh_proxy_var_xff;
    gh_str_t p = gh_string("upstream_http_");
    v = gh_http_add_variable(cf, &p, GH_HTTP_VAR_PREFIX
        | GH_HTTP_VAR_NOCACHEABLE);
    if (v == NULL) {
        return GH_ERROR;
    }
    v->get = gh_proxy_var_upstream_http;
    return GH_OK;
}
