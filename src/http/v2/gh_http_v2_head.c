/*
 * gh_http_v2_head.c: an HTTP/2 request head collected and rebuilt as
 * HTTP/1.1 text (see gh_http_v2_head.h).
 *
 * The rebuilt head is: the request line from :method and :path, Host
 * from :authority (else the first host field), the regular fields in the
 * order received, the cookie crumbs joined into one Cookie (RFC 9113
 * 8.2.3), then Content-Length as declared, or Transfer-Encoding: chunked
 * for a body without one.  Expect is dropped: there is no 100-continue
 * on a stream (its window says "send" already).  Field names arrive in
 * lower case, and nghttp2 has refused CR, LF, NUL and connection-specific
 * fields, so the text cannot smuggle a line; the HTTP/1 parser checks
 * it all again.
 */
#include "gh_http_v2_head.h"

#define GH_H2_LINE_EXTRA  4        /* ": " and CRLF */

static gh_int_t
gh_h2_head_copy(gh_str_t *dst, const uint8_t *v, size_t len)
{
    if (dst->data) {
        return GH_ERROR;    /* a duplicate */
    }
    dst->data = gh_xmalloc(len + 1);
    memcpy(dst->data, v, len);
    dst->len = len;
    return GH_OK;
}

static void
gh_h2_head_line(gh_http_v2_head_t *h, const uint8_t *name, size_t nlen,
    const uint8_t *value, size_t vlen)
{
    size_t need = h->hlen + nlen + vlen + GH_H2_LINE_EXTRA;
    if (need > h->hcap) {
        size_t n = h->hcap ? h->hcap : 512;
        while (n < need) {
            n *= 2;
        }
        h->hdrs = gh_xrealloc(h->hdrs, n);
        h->hcap = n;
    }
    uint8_t *p = h->hdrs + h->hlen;
    memcpy(p, name, nlen);
    p += nlen;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, value, vlen);
    p += vlen;
    *p++ = '\r';
    *p++ = '\n';
    h->hlen = (size_t) (p - h->hdrs);
}

gh_int_t
gh_http_v2_head_add(gh_http_v2_head_t *h, const uint8_t *name, size_t nlen,
    const uint8_t *value, size_t vlen)
{
    gh_str_t n = { .data = (uint8_t *) name, .len = nlen };

    /* the size of RFC 9113 6.5.2, checked before anything is kept: the
     * bound of every buffer below (an HPACK bomb stops here) */
    h->size += nlen + vlen + 32;
    if (h->size > h->max) {
        return GH_ERROR;
    }
    if (nlen && name[0] == ':') {
        if (gh_str_eq_c(&n, ":method")) {
            return gh_h2_head_copy(&h->method, value, vlen);
        }
        if (gh_str_eq_c(&n, ":path")) {
            return gh_h2_head_copy(&h->path, value, vlen);
        }
        if (gh_str_eq_c(&n, ":authority")) {
            return gh_h2_head_copy(&h->authority, value, vlen);
        }
        return GH_OK;
    }
    if (gh_str_eq_c(&n, "host")) {
        if (h->host.data == NULL) {
            return gh_h2_head_copy(&h->host, value, vlen);
        }
        return GH_OK;
    }
    if (gh_str_eq_c(&n, "cookie")) {
        h->cookie = gh_xrealloc(h->cookie, h->clen + vlen + 2);
        if (h->clen) {
            h->cookie[h->clen++] = ';';
            h->cookie[h->clen++] = ' ';
        }
        memcpy(h->cookie + h->clen, value, vlen);
        h->clen += vlen;
        return GH_OK;
    }
    if (gh_str_eq_c(&n, "content-length")) {
        /* nghttp2 has checked it is a number; 19 digits fit an off_t */
        if (vlen > 19) {
            return GH_ERROR;
        }
        return gh_h2_head_copy(&h->content_length, value, vlen);
    }
    if (gh_str_eq_c(&n, "expect")) {
        return GH_OK;
    }
    gh_h2_head_line(h, name, nlen, value, vlen);
    return GH_OK;
}

size_t
gh_http_v2_head_text_size(const gh_http_v2_head_t *h)
{
    const gh_str_t *host = h->authority.data ? &h->authority : &h->host;
    return h->method.len + 1 + h->path.len + sizeof(" HTTP/1.1\r\n")
        + sizeof("Host: \r\n") + host->len + h->hlen
        + sizeof("Cookie: \r\n") + h->clen
        + sizeof("Transfer-Encoding: chunked\r\n")
        + sizeof("Content-Length: \r\n") + h->content_length.len + 2;
}

#define GH_H2_PUT(p, lit) (memcpy(p, lit, sizeof(lit) - 1), \
    (p) + sizeof(lit) - 1)

static uint8_t *
gh_h2_put(uint8_t *p, const void *s, size_t n)
{
    if (n) {
        memcpy(p, s, n);
    }
    return p + n;
}

ssize_t
gh_http_v2_head_build(const gh_http_v2_head_t *h, bool has_body,
    uint8_t *out)
{
    const gh_str_t *host = h->authority.data ? &h->authority : &h->host;
    uint8_t *p = out;

    if (h->method.data == NULL || h->path.data == NULL) {
        return GH_ERROR;
    }
    p = gh_h2_put(p, h->method.data, h->method.len);
    *p++ = ' ';
    p = gh_h2_put(p, h->path.data, h->path.len);
    p = GH_H2_PUT(p, " HTTP/1.1\r\n");
    if (host->data) {
        p = GH_H2_PUT(p, "Host: ");
        p = gh_h2_put(p, host->data, host->len);
        p = GH_H2_PUT(p, "\r\n");
    }
    p = gh_h2_put(p, h->hdrs, h->hlen);
    if (h->clen) {
        p = GH_H2_PUT(p, "Cookie: ");
        p = gh_h2_put(p, h->cookie, h->clen);
        p = GH_H2_PUT(p, "\r\n");
    }
    /* the declared length goes on (nghttp2 holds the DATA to it); a body
     * without one is "chunked" for the HTTP/1 code, which then counts it
     * (the body readers take it unframed from the stream) */
    if (h->content_length.data) {
        p = GH_H2_PUT(p, "Content-Length: ");
        p = gh_h2_put(p, h->content_length.data, h->content_length.len);
        p = GH_H2_PUT(p, "\r\n");
    } else if (has_body) {
        p = GH_H2_PUT(p, "Transfer-Encoding: chunked\r\n");
    }
    p = GH_H2_PUT(p, "\r\n");
    return p - out;
}

void
gh_http_v2_head_free(gh_http_v2_head_t *h)
{
    free(h->hdrs);
    free(h->cookie);
    free(h->method.data);
    free(h->path.data);
    free(h->authority.data);
    free(h->host.data);
    free(h->content_length.data);
    size_t max = h->max;
    memset(h, 0, sizeof(*h));
    h->max = max;
}
