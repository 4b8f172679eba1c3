/*
 * gh_http_v2.h: HTTP/2 to clients (libnghttp2), the part the HTTP/1 core
 * calls.  A request on an HTTP/2 stream has r->stream set; the core's
 * base header filter, write filter and request_done branch here for it.
 */
#ifndef GH_HTTP_V2_H
#define GH_HTTP_V2_H

#include "../gh_http.h"

extern gh_module_t gh_http_v2_module;

/* serialise the response head as an nghttp2 HEADERS submission */
gh_int_t gh_http_v2_header_filter(gh_http_request_t *r);
/* queue body bufs for the stream's data provider; GH_OK when r->out is
 * empty again, GH_AGAIN (r->write_event_handler runs once drained) */
gh_int_t gh_http_v2_write_filter(gh_http_request_t *r, gh_chain_t *in);
/* the request is over (logged): reset the stream if the response is not
 * complete, free the request */
void gh_http_v2_request_done(gh_http_request_t *r, bool close);
/* up to size bytes of the stream's request body (gh_http_body.c): n > 0,
 * 0 at its end, GH_AGAIN (the request's read_event_handler runs when more
 * comes) or GH_ERROR (the stream or the connection is gone) */
ssize_t gh_http_v2_read_body(gh_http_request_t *r, uint8_t *buf,
    size_t size);
/* the stream's own event for client_body_timeout (its handler runs the
 * request's read_event_handler with timedout set) */
gh_event_t *gh_http_v2_body_event(gh_http_request_t *r);

#endif
