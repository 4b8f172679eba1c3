/*
 * gh_http_output.c: response header serialisation and the body filter
 * chain's two base filters.
 *
 *   header:  gh_http_top_header_filter -> ... -> gh_http_header_filter
 *            (decides chunking and keep-alive, serialises, hands the head
 *            to the write filter unsent so it leaves with the first body
 *            bytes in one send: a small body is copied behind it)
 *   body:    gh_http_top_body_filter -> ... -> chunked -> write
 *
 * Filter modules (gzip, ...) insert themselves at postconfiguration by
 * saving the current top and replacing it; gh_http_filters_reset() puts
 * the base chain back before each configuration load.
 */
#include "gh_http_request.h"
#include "v2/gh_http_v2.h"
#include <stdio.h>

gh_http_output_header_filter_pt gh_http_top_header_filter;
gh_http_output_body_filter_pt   gh_http_top_body_filter;

static gh_int_t gh_http_header_filter(gh_http_request_t *r);
static gh_int_t gh_http_chunked_body_filter(gh_http_request_t *r,
    gh_chain_t *in);

/* output is sent once this much is queued even without flush */
#define GH_HTTP_POSTPONE_OUTPUT 16384
/* a body up to this size gets room behind the head (see below) */
#define GH_HTTP_COALESCE_BODY   2048

void
gh_http_filters_reset(void)
{
    gh_http_top_header_filter = gh_http_header_filter;
    gh_http_top_body_filter = gh_http_chunked_body_filter;
}

/* no filter module transforms bodies right now: a producer may move bytes
 * past the filters (zero-copy splice) once r->out is empty */
bool
gh_http_body_filters_plain(void)
{
    return gh_http_top_body_filter == gh_http_chunked_body_filter
        || gh_http_top_body_filter == NULL;
}

gh_int_t
gh_http_send_header(gh_http_request_t *r)
{
    if (r->header_sent) {
        gh_log(GH_LOG_ALERT, &r->conn->log, 0, "header already sent");
        return GH_ERROR;
    }
    if (r->err_status) {
        r->headers_out.status = r->err_status;
    }
    r->header_sent = 1;
    if (r->method == GH_HTTP_HEAD) {
        r->header_only = 1;
    }
    if (gh_http_top_header_filter == NULL) {
        gh_http_filters_reset();
    }
    return gh_http_top_header_filter(r);
}

gh_int_t
gh_http_output_filter(gh_http_request_t *r, gh_chain_t *in)
{
    if (gh_http_top_body_filter == NULL) {
        gh_http_filters_reset();
    }
    return gh_http_top_body_filter(r, in);
}

/* ------------------------------------------------------------------ */

static bool
gh_http_keepalive_allowed(gh_http_request_t *r)
{
    gh_http_connection_t *hc = r->http_conn;
    gh_http_core_loc_conf_t *clcf = gh_http_clcf(r);

    if (!r->keepalive || gh_conns.quitting || clcf->keepalive_timeout == 0) {
        return false;
    }
    if (hc->requests + 1 >= (gh_uint_t) clcf->keepalive_requests) {
        return false;
    }
    if (gh_current_msec - hc->start_msec > clcf->keepalive_time) {
        return false;
    }
    return true;
}

static uint8_t *
gh_cpy(uint8_t *p, const void *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define CPYL(p, lit) gh_cpy(p, lit, sizeof(lit) - 1)

/* a header value can come from variables (`return 302 .../$uri`,
 * add_header, a rewritten Location): it goes out on one line whatever it
 * holds, CR, LF and NUL becoming spaces (no response splitting; nginx
 * sends them as they are) */
static uint8_t *
gh_cpy_value(uint8_t *p, const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        *p++ = (c == '\r' || c == '\n' || c == '\0') ? ' ' : c;
    }
    return p;
}

static gh_int_t
gh_http_header_filter(gh_http_request_t *r)
{
    gh_http_headers_out_t *ho = &r->headers_out;
    gh_http_core_loc_conf_t *clcf = gh_http_clcf(r);
    gh_uint_t status = ho->status ? ho->status : 200;
    char numbuf[64];

    if (r->stream) {
        return gh_http_v2_header_filter(r);
    }

    if (status == 204 || status == 304 || status < 200) {
        r->header_only = 1;
        ho->content_length_n = -1;
    }
    if (!r->header_only && ho->content_length_n < 0 && status != 101) {
        if (r->http_version >= 1001 && clcf->chunked_transfer_encoding) {
            r->chunked = 1;
        } else {
            /* HTTP/1.0: the end of the body is the end of the connection */
            r->keepalive = 0;
        }
    }
    if (status != 101 && !gh_http_keepalive_allowed(r)) {
        r->keepalive = 0;
    }

    /* a relative Location becomes absolute (absolute_redirect, as nginx
     * does in its header filter, for every response) */
    if (ho->location && ho->location->value.len
        && ho->location->value.data[0] == '/' && clcf->absolute_redirect)
    {
        gh_str_t abs;
        if (gh_http_absolute_location(r, &ho->location->value, &abs)
            == GH_OK)
        {
            ho->location->value = abs;
        }
    }

    const gh_str_t *sl = ho->status_line.len ? &ho->status_line
                                             : gh_http_status_line(status);

    /* size first, then fill */
    size_t len = sizeof("HTTP/1.1 \r\n") - 1 + 16 + sl->len;
    len += sizeof("Server: " GH_NAME "/" GH_VERSION "\r\n");
    len += sizeof("Date: \r\n") + gh_cached_http_time.len;
    if (ho->content_type.len) {
        len += sizeof("Content-Type: \r\n") + ho->content_type.len;
    }
    len += sizeof("Content-Length: \r\n") + 24;
    len += sizeof("Transfer-Encoding: chunked\r\n");
    len += sizeof("Connection: keep-alive\r\n");
    len += sizeof("Keep-Alive: timeout=\r\n") + 24;
    for (size_t i = 0; i < ho->headers.nelts; i++) {
        gh_http_table_elt_t *e = gh_array_at(&ho->headers,
            gh_http_table_elt_t, i);
        len += e->name.len + e->value.len + 4;
    }
    len += 2;

    /* room for a small body behind the head: send_chain copies it there
     * and the response leaves in one send() (gh_send_iov) */
    size_t room = 0;
    if (!r->header_only && ho->content_length_n > 0
        && ho->content_length_n <= GH_HTTP_COALESCE_BODY
        && r->conn->tls == NULL)
    {
        room = (size_t) ho->content_length_n;
    }

    gh_buf_t *b = gh_buf_create(r->arena, len + room);
    if (b == NULL) {
        return GH_ERROR;
    }
    b->coalesce = room != 0;
    uint8_t *p = b->last;
    p = CPYL(p, "HTTP/1.1 ");
    if (sl->len) {
        p = gh_cpy(p, sl->data, sl->len);
    } else {
        p = gh_utoa(p, status);
        *p++ = ' ';
    }
    p = CPYL(p, "\r\n");
    if (ho->server == NULL) {
        if (clcf->server_tokens) {
            p = CPYL(p, "Server: " GH_NAME "/" GH_VERSION "\r\n");
        } else {
            p = CPYL(p, "Server: " GH_NAME "\r\n");
        }
    }
    if (ho->date == NULL) {
        p = CPYL(p, "Date: ");
        p = gh_cpy(p, gh_cached_http_time.data, gh_cached_http_time.len);
        p = CPYL(p, "\r\n");
    }
    if (ho->content_type.len) {
        p = CPYL(p, "Content-Type: ");
        p = gh_cpy_value(p, ho->content_type.data, ho->content_type.len);
        p = CPYL(p, "\r\n");
    }
    if (ho->content_length_n >= 0) {
        p = CPYL(p, "Content-Length: ");
        p = gh_utoa(p, (uint64_t) ho->content_length_n);
        p = CPYL(p, "\r\n");
    }
    if (r->chunked) {
        p = CPYL(p, "Transfer-Encoding: chunked\r\n");
    }
    if (status == 101) {
        p = CPYL(p, "Connection: upgrade\r\n");
    } else if (r->keepalive) {
        p = CPYL(p, "Connection: keep-alive\r\n");
        if (clcf->keepalive_header_timeout > 0) {
            int n = snprintf(numbuf, sizeof(numbuf),
                "Keep-Alive: timeout=%lld\r\n",
                (long long) (clcf->keepalive_header_timeout / 1000));
            p = gh_cpy(p, numbuf, (size_t) n);
        }
    } else {
        p = CPYL(p, "Connection: close\r\n");
    }
    for (size_t i = 0; i < ho->headers.nelts; i++) {
        gh_http_table_elt_t *e = gh_array_at(&ho->headers,
            gh_http_table_elt_t, i);
        if (e->hash_skip) {
            continue;
        }
        p = gh_cpy(p, e->name.data, e->name.len);
        p = CPYL(p, ": ");
        p = gh_cpy_value(p, e->value.data, e->value.len);
        p = CPYL(p, "\r\n");
    }
    p = CPYL(p, "\r\n");
    b->last = p;
    r->header_size = (size_t) (p - b->pos);

    gh_chain_t *cl = gh_chain_link(r->arena, b);
    if (cl == NULL) {
        return GH_ERROR;
    }
    if (r->header_only) {
        b->last_buf = 1;
    }
    return gh_http_write_filter(r, cl);
}

/* ------------------------------------------------------------------ */

static gh_int_t
gh_http_chunked_body_filter(gh_http_request_t *r, gh_chain_t *in)
{
    if (r->header_only) {
        /* HEAD/204/304: the body is dropped, the end still counts */
        for (gh_chain_t *cl = in; cl; cl = cl->next) {
            if (cl->buf->last_buf) {
                r->response_sent = 1;
                return r->out ? gh_http_write_filter(r, NULL) : GH_OK;
            }
        }
        return GH_OK;
    }
    if (!r->chunked || in == NULL) {
        return gh_http_write_filter(r, in);
    }

    gh_arena_t *a = r->batch_arena ? r->batch_arena : r->arena;
    gh_chain_t *out = NULL, **ll = &out;
    for (gh_chain_t *cl = in; cl; cl = cl->next) {
        gh_buf_t *b = cl->buf;
        off_t size = gh_buf_size(b);
        if (size > 0) {
            gh_buf_t *h = gh_buf_create(a, 20);
            gh_buf_t *t = gh_buf_create(a, 2);
            if (h == NULL || t == NULL) {
                return GH_ERROR;
            }
            h->last = gh_xtoa(h->last, (uint64_t) size);
            *h->last++ = '\r';
            *h->last++ = '\n';
            *t->last++ = '\r';
            *t->last++ = '\n';
            gh_buf_t *d = gh_alloc(a, sizeof(*d));
            if (d == NULL) {
                return GH_ERROR;
            }
            *d = *b;
            d->last_buf = 0;
            d->flush = 0;
            b->pos = b->last;      /* consumed by us, sent via d */
            if (b->in_file) {
                b->file_pos = b->file_last;
            }
            t->flush = b->flush;
            *ll = gh_chain_link(a, h);
            if (*ll == NULL) {
                return GH_ERROR;
            }
            ll = &(*ll)->next;
            *ll = gh_chain_link(a, d);
            if (*ll == NULL) {
                return GH_ERROR;
            }
            ll = &(*ll)->next;
            *ll = gh_chain_link(a, t);
            if (*ll == NULL) {
                return GH_ERROR;
            }
            ll = &(*ll)->next;
        }
        if (b->last_buf || (size == 0 && b->flush)) {
            gh_buf_t *e = gh_buf_create(a, 5);
            if (e == NULL) {
                return GH_ERROR;
            }
            if (b->last_buf) {
                memcpy(e->last, "0\r\n\r\n", 5);
                e->last += 5;
                e->last_buf = 1;
            } else {
                e->flush = 1;
            }
            *ll = gh_chain_link(a, e);
            if (*ll == NULL) {
                return GH_ERROR;
            }
            ll = &(*ll)->next;
        }
    }
    return gh_http_write_filter(r, out);
}

/* ------------------------------------------------------------------ */

static void
gh_http_writer_handler(gh_http_request_t *r)
{
    gh_conn_t *c = r->conn;
    if (c->write.timedout) {
        c->write.timedout = 0;
        gh_log(GH_LOG_INFO, &c->log, 0, "client timed out");
        gh_http_request_done(r, true);
        return;
    }
    gh_http_writer(r);
}

void
gh_http_writer(gh_http_request_t *r)
{
    gh_int_t rc = gh_http_write_filter(r, NULL);
    if (rc == GH_ERROR) {
        gh_http_request_done(r, true);
        return;
    }
    if (rc == GH_AGAIN) {
        return;
    }
    if (r->response_sent) {
        gh_http_request_done(r, false);
        return;
    }
    if (r->output_drained) {
        r->output_drained(r);
    }
}

/* append `in` to r->out and recount r->out_size; *flush and *last say
 * whether any queued buffer asks for a flush or ends the response (the
 * HTTP/1 and HTTP/2 write filters share this) */
void
gh_http_out_append(gh_http_request_t *r, gh_chain_t *in, bool *flush,
    bool *last)
{
    gh_chain_t **ll = &r->out;
    while (*ll) {
        ll = &(*ll)->next;
    }
    *ll = in;
    r->out_size = 0;
    for (gh_chain_t *cl = r->out; cl; cl = cl->next) {
        r->out_size += gh_buf_size(cl->buf);
        *flush |= cl->buf->flush;
        *last |= cl->buf->last_buf;
    }
}

gh_int_t
gh_http_write_filter(gh_http_request_t *r, gh_chain_t *in)
{
    gh_conn_t *c = r->conn;
    bool flush = false, last = false;

    if (r->stream) {
        return gh_http_v2_write_filter(r, in);
    }
    gh_http_out_append(r, in, &flush, &last);
    if (last) {
        r->response_sent = 1;
    }
    if (r->out == NULL) {
        return GH_OK;
    }
    if (!flush && !last && r->out_size < GH_HTTP_POSTPONE_OUTPUT
        && in != NULL)
    {
        return GH_OK;
    }
    if (c->write.error) {
        return GH_ERROR;
    }
    if (!c->write.ready) {
        goto again;
    }

    off_t before = c->sent;
    gh_chain_t *rest = c->send_chain(c, r->out, 0);
    if (rest == GH_CHAIN_ERROR) {
        c->write.error = 1;
        gh_log(GH_LOG_INFO, &c->log, errno, "%s() failed",
            gh_conn_send_failed);
        return GH_ERROR;
    }
    r->bytes_sent += c->sent - before;
    r->out = rest;
    if (rest == NULL) {
        r->out_size = 0;
        if (c->write.timer_set) {
            gh_timer_del(c->loop, &c->write);
        }
        return GH_OK;
    }
    if (c->sent > before && c->write.timer_set) {
        /* send_timeout is the time between two writes, as in nginx: a
         * slow reader that keeps reading is not cut in the middle of a
         * long response */
        gh_timer_del(c->loop, &c->write);
    }

again:
    r->write_event_handler = gh_http_writer_handler;
    if (!c->write.timer_set) {
        gh_timer_add(c->loop, &c->write, gh_http_clcf(r)->send_timeout);
    }
    return GH_AGAIN;
}
