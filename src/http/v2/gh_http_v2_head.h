/*
 * gh_http_v2_head.h: an HTTP/2 request head, collected field by field
 * (as nghttp2 hands them over, already HPACK-decoded and checked by its
 * HTTP messaging rules) and rebuilt as HTTP/1.1 text for the HTTP/1
 * parser.  No connection, no session: the fuzzer and the unit tests call
 * it directly.
 */
#ifndef GH_HTTP_V2_HEAD_H
#define GH_HTTP_V2_HEAD_H

#include "../../core/gh_core.h"

typedef struct {
    size_t     max;            /* header list limit (RFC 9113 size) */
    size_t     size;           /* counted so far: name + value + 32 each */
    uint8_t   *hdrs;           /* "Name: value\r\n" lines, malloc'd */
    size_t     hlen, hcap;
    gh_str_t   method, path, authority, host;   /* malloc'd copies */
    uint8_t   *cookie;         /* crumbs joined with "; " */
    size_t     clen;
    gh_str_t   content_length; /* as sent */
} gh_http_v2_head_t;

/* one field; GH_OK, or GH_ERROR (past the limit, a duplicate pseudo or
 * content-length): the stream is refused; :scheme and other pseudo-
 * headers nghttp2 lets through are left out (the connection decides
 * $scheme, as nginx) */
gh_int_t gh_http_v2_head_add(gh_http_v2_head_t *h, const uint8_t *name,
    size_t nlen, const uint8_t *value, size_t vlen);
/* an upper bound of the text gh_http_v2_head_build() writes */
size_t gh_http_v2_head_text_size(const gh_http_v2_head_t *h);
/* the HTTP/1.1 text into out (gh_http_v2_head_text_size() bytes); its
 * length, or GH_ERROR when :method or :path is missing.  A body without
 * a content-length is announced as chunked */
ssize_t gh_http_v2_head_build(const gh_http_v2_head_t *h, bool has_body,
    uint8_t *out);
void gh_http_v2_head_free(gh_http_v2_head_t *h);

#endif
