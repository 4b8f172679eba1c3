/*
 * gh_http_request.h: per-connection HTTP/1.x state, shared by the request,
 * body and output code (internal to src/http).
 */
#ifndef GH_HTTP_REQUEST_H
#define GH_HTTP_REQUEST_H

#include "gh_http.h"

/* the head buffer: malloc'd, grown by realloc (not a gh_buf_t: no file
 * part, half the size) */
typedef struct {
    uint8_t *start;
    uint8_t *pos;
    uint8_t *last;
    uint8_t *end;
} gh_http_head_buf_t;

/* an HTTP/1.x connection's own state: a slab object (c->udata), the
 * only thing besides the gh_conn_t that an idle keep-alive connection
 * holds.  mem is the connection's memory account: this object, the
 * connection object, the head buffer, the request's arenas and the
 * connection's arena (TLS, HTTP/2) are charged to it. */
typedef struct {
    gh_http_addr_conf_t      *addr_conf;  /* ->default_server: its confs */
    gh_http_head_buf_t        buf;        /* NULL while idle */
    gh_http_request_t        *r;          /* current request */
    gh_uint_t                 requests;
    gh_msec_t                 start_msec;
    uint8_t                  *stash;      /* bytes read past a body */
    size_t                    stash_len;
    gh_mem_account_t          mem;
} gh_http_connection_t;

void gh_http_close_connection(gh_conn_t *c);
/* c's arena, created on first use and charged to the connection's
 * account (TLS, HTTP/2 state); aborts on system OOM */
gh_arena_t *gh_http_conn_arena(gh_conn_t *c);
/* an arena of block_size (no budget) from the worker's small cache of
 * finished requests' arenas, or a new one; put resets it for reuse, or
 * destroys it when the cache is full or it has a budget */
gh_arena_t *gh_http_arena_get(size_t block_size);
void gh_http_arena_put(gh_arena_t *a);
/* HTTP/2 (src/http/v2): a request of connection c with its own state hc,
 * in arena a (which the request then owns) */
gh_http_request_t *gh_http_create_request_on(gh_conn_t *c,
    gh_http_connection_t *hc, gh_arena_t *a);
/* HTTP/2: parse a head rebuilt as HTTP/1.1 text [p, p + len) (request
 * memory), set r->http_version to version, then run the phases */
void gh_http_process_request_text(gh_http_request_t *r, uint8_t *p,
    size_t len, unsigned version);
/* read handler of a connection waiting for a request (keep-alive, or
 * right after accept / the TLS handshake) */
void gh_http_wait_request_handler(gh_event_t *ev);
/* a connection on a `listen ... ssl` address: handshake (or plain HTTP
 * detection), then gh_http_wait_request_handler (gh_http_ssl_module.c) */
void gh_http_ssl_init_connection(gh_conn_t *c);
gh_http_core_loc_conf_t *gh_http_clcf(gh_http_request_t *r);
gh_int_t gh_http_write_filter(gh_http_request_t *r, gh_chain_t *in);
void gh_http_out_append(gh_http_request_t *r, gh_chain_t *in, bool *flush,
    bool *last);
void gh_http_block_reading(gh_http_request_t *r);
/* body bytes not read yet (CL rest or unfinished chunked) */
bool gh_http_body_pending(gh_http_request_t *r);
/* continue discarding a body; GH_OK when done, GH_AGAIN, GH_ERROR */
gh_int_t gh_http_discard_body_step(gh_http_request_t *r);
/* streaming body (proxy_request_buffering off): up to size decoded bytes
 * into dst, *n set; GH_OK (*n > 0), GH_AGAIN (nothing now: wait for the
 * read event), GH_DONE (the body is complete, *n may be > 0), or an HTTP
 * status / GH_ERROR */
gh_int_t gh_http_read_body_stream(gh_http_request_t *r, uint8_t *dst,
    size_t size, size_t *n);

#endif
