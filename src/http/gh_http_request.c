/*
 * gh_http_request.c: HTTP/1.x connections and requests.
 *
 *   accept -> init_connection -> wait_request (keep-alive idle) -> read
 *   head (grow buffer up to large_client_header_buffers) -> parse ->
 *   process headers -> pick server -> phases -> content handler ->
 *   output (gh_http_output.c) -> request_done -> log -> keep-alive
 *   (pipelined bytes processed at once) | lingering close | close
 *
 * The connection's head buffer is malloc'd and grows by realloc only
 * while no request slice points into it (before the head is complete).
 */
#include "gh_http_request.h"
#include "gh_http_modules.h"
#include "v2/gh_http_v2.h"
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

static void gh_http_process_request_head(gh_http_request_t *r);
static void gh_http_conn_read_handler(gh_event_t *ev);
static void gh_http_conn_write_handler(gh_event_t *ev);
static void gh_http_set_keepalive(gh_http_request_t *r);
static void gh_http_lingering_close(gh_http_request_t *r);

gh_http_core_loc_conf_t *
gh_http_clcf(gh_http_request_t *r)
{
    return r->loc_conf[gh_http_core_module.index];
}

static gh_http_core_srv_conf_t *
gh_http_cscf(gh_http_request_t *r)
{
    return r->srv_conf[gh_http_core_module.index];
}

gh_log_t *
gh_http_request_log(gh_http_request_t *r)
{
    return &r->conn->log;
}

static void
gh_http_empty_handler(gh_event_t *ev)
{
}

void
gh_http_block_reading(gh_http_request_t *r)
{
    /* edge-triggered: data stays in the socket until someone reads it;
     * read.ready stays set so the next reader tries at once */
}

/*
 * Head buffers given up by connections going idle (or closing), for the
 * next requests: a keep-alive connection gives its buffer back after
 * every request and takes one again at the next.  A few per worker.
 */
#define GH_HTTP_HEAD_BUF_CACHE 16

static struct {
    uint8_t *p;
    size_t   size;
} gh_http_head_bufs[GH_HTTP_HEAD_BUF_CACHE];
static size_t gh_http_head_bufs_n;

static uint8_t *
gh_http_head_buf_get(size_t size)
{
    for (size_t i = gh_http_head_bufs_n; i-- > 0;) {
        if (gh_http_head_bufs[i].size == size) {
            uint8_t *p = gh_http_head_bufs[i].p;
            gh_http_head_bufs[i] = gh_http_head_bufs[--gh_http_head_bufs_n];
            return p;
        }
    }
    return gh_xmalloc(size);
}

/* give hc's head buffer up (it may be NULL) */
static void
gh_http_head_buf_put(gh_http_connection_t *hc)
{
    if (hc->buf.start) {
        gh_mem_uncharge(&hc->mem, (size_t) (hc->buf.end - hc->buf.start));
    }
    if (hc->buf.start && gh_http_head_bufs_n < GH_HTTP_HEAD_BUF_CACHE) {
        gh_http_head_bufs[gh_http_head_bufs_n].p = hc->buf.start;
        gh_http_head_bufs[gh_http_head_bufs_n].size =
            (size_t) (hc->buf.end - hc->buf.start);
        gh_http_head_bufs_n++;
    } else {
        free(hc->buf.start);
    }
    hc->buf.start = hc->buf.pos = hc->buf.last = hc->buf.end = NULL;
}

/*
 * gh_http_connection_t objects come from a slab: with the gh_conn_t they
 * are all an idle keep-alive connection holds (no arena, no buffer).
 */
static gh_slab_t gh_http_conn_slab;

/* what an idle connection is charged: its two objects and a peer
 * address text too long for the connection object */
static size_t
gh_http_conn_fixed_size(gh_conn_t *c)
{
    return gh_conn_object_size() + gh_http_conn_slab.size
        + (c->addr_text_alloc ? c->addr_text.len + 1 : 0);
}

/* ls->close_handler: after the connection's arena is gone (its cleanups
 * may still use hc), before the socket is closed */
void
gh_http_conn_release(gh_conn_t *c)
{
    gh_http_connection_t *hc = c->udata;

    if (hc == NULL) {
        return;
    }
    gh_http_head_buf_put(hc);
    free(hc->stash);
    hc->stash = NULL;
    gh_mem_uncharge(&hc->mem, hc->stash_len);
    hc->stash_len = 0;
    gh_mem_uncharge(&hc->mem, gh_http_conn_fixed_size(c));
    GH_ASSERT(hc->mem.used == 0);
    c->udata = NULL;
    gh_slab_free(&gh_http_conn_slab, hc);
}

/* one line for the allocations the cap refused since the last one */
static void
gh_http_mem_refused(gh_conn_t *c, gh_http_connection_t *hc)
{
    if (hc->mem.refused) {
        gh_log(GH_LOG_ERR, &c->log, 0, "client_connection_memory_max (%u) "
            "reached: %zu bytes in use, %u allocations refused",
            (unsigned) hc->mem.max, hc->mem.used, (unsigned) hc->mem.refused);
        hc->mem.refused = 0;
    }
}

gh_arena_t *
gh_http_conn_arena(gh_conn_t *c)
{
    gh_http_connection_t *hc = c->udata;

    if (c->arena == NULL) {
        gh_conn_arena(c);
        if (hc) {
            /* memory taken already: charged whatever the cap says */
            gh_mem_charge_force(&hc->mem, c->arena->used);
            c->arena->account = &hc->mem;
        }
    }
    return c->arena;
}

static gh_http_addr_conf_t *
gh_http_find_addr(gh_conn_t *c, gh_http_port_t *port)
{
    if (port->addrs.nelts == 1) {
        return gh_array_at(&port->addrs, gh_http_addr_conf_t, 0);
    }
    if (gh_conn_local_addr(c) == GH_OK) {
        for (size_t i = 0; i < port->addrs.nelts; i++) {
            gh_http_addr_conf_t *a = gh_array_at(&port->addrs,
                gh_http_addr_conf_t, i);
            if (a->sockaddr.ss_family != c->local_sockaddr.sa.sa_family) {
                continue;
            }
            if (a->sockaddr.ss_family == AF_INET
                && ((struct sockaddr_in *) &a->sockaddr)->sin_addr.s_addr
                   == c->local_sockaddr.sin.sin_addr.s_addr)
            {
                return a;
            }
            if (a->sockaddr.ss_family == AF_INET6
                && memcmp(&((struct sockaddr_in6 *) &a->sockaddr)->sin6_addr,
                       &c->local_sockaddr.sin6.sin6_addr, 16) == 0)
            {
                return a;
            }
        }
    }
    /* the wildcard is kept last */
    return gh_array_at(&port->addrs, gh_http_addr_conf_t,
        port->addrs.nelts - 1);
}

void
gh_http_init_connection(gh_conn_t *c)
{
    if (gh_http_conn_slab.size == 0) {
        gh_slab_init(&gh_http_conn_slab, sizeof(gh_http_connection_t));
    }
    gh_http_connection_t *hc = gh_slab_alloc(&gh_http_conn_slab);
    memset(hc, 0, sizeof(*hc));
    c->udata = hc;
    hc->addr_conf = gh_http_find_addr(c, c->listening->servers);
    /* the configuration keeps it within 4 GiB */
    hc->mem.max = (uint32_t) hc->addr_conf->default_server->
        connection_memory_max;
    gh_mem_charge_force(&hc->mem, gh_http_conn_fixed_size(c));
    hc->start_msec = gh_current_msec;
    c->data = hc;
    c->log.handler = gh_http_log_error_handler;
    c->log.data = hc;

    c->read.handler = gh_http_wait_request_handler;
    c->write.handler = gh_http_empty_handler;
    /* a fresh socket has room to write: the first EPOLLOUT edge may come
     * only after we answered from the accept handler */
    c->write.ready = 1;
    /* gh_event_accept has registered the connection with epoll already;
     * try at once: the request usually came with the handshake's ACK */
    c->read.ready = 1;
    gh_timer_add(c->loop, &c->read, hc->addr_conf->default_server->client_header_timeout);
    if (hc->addr_conf->ssl) {
        /* TLS first (the header timeout bounds the handshake), then
         * gh_http_wait_request_handler (gh_http_ssl_module.c) */
        gh_http_ssl_init_connection(c);
        return;
    }
    gh_http_wait_request_handler(&c->read);
}

void
gh_http_close_connection(gh_conn_t *c)
{
    gh_conn_close(c);
}

/*
 * A worker keeps the arenas of a few finished requests, reset, for the
 * next ones: a malloc/free pair less per request.  Reset runs the
 * cleanups and frees what grew beyond the first block, so a reused arena
 * is as good as a new one.  16 KiB: a proxied request with its 4 KiB
 * header buffer fits in one block (4 KiB took a second block and a
 * large allocation every time, 8 KiB still a second block): about what
 * it used before, in one malloc.  The cache holds arenas of any block
 * size (a proxy's 4 KiB batch arenas too), 16 at most.
 */
#define GH_HTTP_REQ_ARENA_SIZE  16384
#define GH_HTTP_REQ_ARENA_CACHE 16

static gh_arena_t *gh_http_req_arenas[GH_HTTP_REQ_ARENA_CACHE];
static size_t      gh_http_req_arenas_n;

/*
 * After a burst, the arenas beyond the cache are freed to malloc, which
 * keeps the pages: the worker's resident memory would stay at the
 * burst's peak for good, however few connections are left.  So once
 * GH_HTTP_TRIM_AFTER bytes were freed, a timer looks every
 * GH_HTTP_TRIM_EVERY ms whether the load has dropped (fewer than
 * GH_HTTP_TRIM_BUSY requests started in that time, i.e. under 64 a
 * second, and none in flight) and
 * then gives the free pages back to the kernel (malloc_trim: madvise on
 * the free ranges, no I/O).
 *
 * Never under load: trimming from the request path (as this did first)
 * ran malloc_trim every few requests at 64 connections, and every page
 * it released was faulted in again by the next requests: a sixth of the
 * worker's CPU went to madvise and page faults.  Under load the freed
 * memory is what the next requests take anyway.
 */
#define GH_HTTP_TRIM_AFTER      (256 * 1024)
#define GH_HTTP_TRIM_EVERY      250
#define GH_HTTP_TRIM_BUSY       16

static size_t      gh_http_arenas_out;   /* taken from the cache, not back */
static size_t      gh_http_freed;        /* bytes freed since the last trim */
static uint64_t    gh_http_arena_gets;   /* requests started, ever */
static uint64_t    gh_http_trim_mark;    /* gh_http_arena_gets at arming */
static gh_loop_t  *gh_http_trim_loop;    /* the worker's loop */
static gh_event_t  gh_http_trim_ev;

static void
gh_http_trim_handler(gh_event_t *ev)
{
    uint64_t started = gh_http_arena_gets - gh_http_trim_mark;

    gh_http_trim_mark = gh_http_arena_gets;
    if (gh_http_arenas_out > 0 || started >= GH_HTTP_TRIM_BUSY) {
        gh_timer_add(gh_http_trim_loop, ev, GH_HTTP_TRIM_EVERY);
        return;
    }
    if (gh_http_trim_loop->log) {
        gh_log(GH_LOG_DEBUG, gh_http_trim_loop->log, 0, "malloc_trim(): "
            "%zu bytes freed since the last trim", gh_http_freed);
    }
    gh_http_freed = 0;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static void
gh_http_trim(void)
{
    if (gh_http_freed < GH_HTTP_TRIM_AFTER || gh_http_trim_ev.timer_set
        || gh_http_trim_loop == NULL)
    {
        return;
    }
    gh_http_trim_ev.handler = gh_http_trim_handler;
    /* a quitting worker does not wait for it */
    gh_http_trim_ev.cancelable = 1;
    gh_http_trim_mark = gh_http_arena_gets;
    gh_timer_add(gh_http_trim_loop, &gh_http_trim_ev, GH_HTTP_TRIM_EVERY);
}

gh_arena_t *
gh_http_arena_get(size_t block_size)
{
    gh_http_arenas_out++;
    gh_http_arena_gets++;
    for (size_t i = gh_http_req_arenas_n; i-- > 0;) {
        gh_arena_t *a = gh_http_req_arenas[i];
        if (a->block_size == block_size) {
            gh_http_req_arenas[i] =
                gh_http_req_arenas[--gh_http_req_arenas_n];
            return a;
        }
    }
    return gh_arena_create(block_size, 0);
}

void
gh_http_arena_put(gh_arena_t *a)
{
    size_t used = a->used;

    if (a->budget != 0) {
        gh_arena_destroy(a);
        goto done;
    }
    /* reset first: its cleanups may put arenas (a proxy's batch arena)
     * into the cache themselves; then off the connection's account */
    gh_arena_reset(a);
    gh_arena_set_account(a, NULL);
    if (gh_http_req_arenas_n == GH_HTTP_REQ_ARENA_CACHE) {
        gh_arena_destroy(a);
        goto done;
    }
    used -= a->used;
    gh_http_req_arenas[gh_http_req_arenas_n++] = a;
done:
    gh_http_freed += used;
    /* HTTP/2 hands its own arenas to gh_http_create_request_on, whose
     * failure path puts them here */
    if (gh_http_arenas_out > 0) {
        gh_http_arenas_out--;
    }
    gh_http_trim();
}

static gh_http_request_t *
gh_http_create_request(gh_conn_t *c)
{
    gh_arena_t *a = gh_http_arena_get(GH_HTTP_REQ_ARENA_SIZE);
    if (a == NULL) {
        return NULL;
    }
    return gh_http_create_request_on(c, c->data, a);
}

gh_http_request_t *
gh_http_create_request_on(gh_conn_t *c, gh_http_connection_t *hc,
    gh_arena_t *a)
{
    gh_http_request_t *r = NULL;
    gh_http_trim_loop = c->loop;
    if (gh_arena_set_account(a, &hc->mem) == GH_OK) {
        r = gh_calloc(a, sizeof(*r));
    }
    if (r == NULL) {
        gh_http_mem_refused(c, hc);
        gh_http_arena_put(a);
        return NULL;
    }
    r->arena = a;
    r->conn = c;
    r->http_conn = hc;
    gh_conf_ctx_t *ctx = hc->addr_conf->default_server->ctx;
    r->main_conf = ctx->main_conf;
    r->srv_conf = ctx->srv_conf;
    r->loc_conf = ctx->loc_conf;
    r->addr_conf = hc->addr_conf;
    r->ctx = gh_calloc(a, sizeof(void *) * gh_modules_n);
    if (r->ctx == NULL
        || gh_array_init(&r->headers_in.headers, a, 16,
               sizeof(gh_http_table_elt_t)) != GH_OK
        || gh_array_init(&r->headers_out.headers, a, 8,
               sizeof(gh_http_table_elt_t)) != GH_OK
        || gh_http_variables_request_init(r) != GH_OK)
    {
        gh_http_arena_put(a);
        return NULL;
    }
    r->headers_in.content_length_n = -1;
    r->headers_out.content_length_n = -1;
    r->headers_out.last_modified_time = -1;
    r->start_msec = gh_current_msec;
    r->start_sec = gh_current_sec;
    r->uri_changes = 11;
    r->conn_requests = hc->requests + 1;
    if (c->tls) {
        gh_str_set(&r->schema, "https");
    } else {
        gh_str_set(&r->schema, "http");
    }
    r->read_event_handler = gh_http_process_request_head;
    r->write_event_handler = gh_http_block_reading;
    hc->r = r;
    return r;
}

static void
gh_http_free_request(gh_http_request_t *r)
{
    gh_http_connection_t *hc = r->http_conn;
    if (hc->r == r) {
        hc->r = NULL;
    }
    gh_http_arena_put(r->arena);
}

/* make sure the head buffer exists */
static gh_int_t
gh_http_alloc_head_buf(gh_http_connection_t *hc)
{
    if (hc->buf.start) {
        return GH_OK;
    }
    gh_http_core_srv_conf_t *cscf = hc->addr_conf->default_server;
    size_t size = cscf->client_header_buffer_size;
    if (gh_mem_charge(&hc->mem, size) != GH_OK) {
        return GH_ERROR;
    }
    hc->buf.start = gh_http_head_buf_get(size);
    hc->buf.pos = hc->buf.last = hc->buf.start;
    hc->buf.end = hc->buf.start + size;
    return GH_OK;
}

void
gh_http_wait_request_handler(gh_event_t *ev)
{
    gh_conn_t *c = ev->data;
    gh_http_connection_t *hc = c->data;

    if (ev->timedout || c->close) {
        /* keep-alive timeout, or closed as idle on shutdown/reload */
        gh_conn_close(c);
        return;
    }
    if (gh_http_alloc_head_buf(hc) != GH_OK) {
        gh_http_mem_refused(c, hc);
        gh_conn_close(c);
        return;
    }

    if (hc->buf.last == hc->buf.pos) {
        if (!c->read.ready) {
            return;
        }
        ssize_t n = c->recv(c, hc->buf.last, (size_t) (hc->buf.end
            - hc->buf.last));
        if (n == GH_AGAIN) {
            if (c->idle && hc->buf.pos == hc->buf.start) {
                /* idle keep-alive connections keep no buffer */
                gh_http_head_buf_put(hc);
            }
            return;
        }
        if (n <= 0) {
            /* closed by the client between requests: not an error */
            gh_conn_close(c);
            return;
        }
        hc->buf.last += n;
    }

    /* `listen ... http2` without TLS: a client with prior knowledge
     * starts with the HTTP/2 preface ("PRI" is no HTTP/1 method) */
    if (hc->addr_conf->http2 && !c->tls && gh_http_v2_init_connection
        && hc->requests == 0 && hc->buf.last - hc->buf.pos >= 4
        && memcmp(hc->buf.pos, "PRI ", 4) == 0)
    {
        gh_http_v2_init_connection(c);
        return;
    }

    if (c->idle && c->read.timer_set) {
        /* the keep-alive wait is over: the request gets the whole
         * client_header_timeout from its first byte, not what is left
         * of keepalive_timeout (a slowloris after a first request) */
        gh_timer_del(c->loop, &c->read);
    }
    gh_conn_set_idle(c, false);
    gh_http_request_t *r = gh_http_create_request(c);
    if (r == NULL) {
        gh_conn_close(c);
        return;
    }
    c->read.handler = gh_http_conn_read_handler;
    c->write.handler = gh_http_conn_write_handler;
    gh_http_process_request_head(r);
}

static void
gh_http_conn_read_handler(gh_event_t *ev)
{
    gh_conn_t *c = ev->data;
    gh_http_connection_t *hc = c->data;
    if (hc->r) {
        hc->r->read_event_handler(hc->r);
    }
}

static void
gh_http_conn_write_handler(gh_event_t *ev)
{
    gh_conn_t *c = ev->data;
    gh_http_connection_t *hc = c->data;
    if (hc->r) {
        hc->r->write_event_handler(hc->r);
    }
}

/* ------------------------------------------------------------------ */

static gh_uint_t
gh_http_parse_error_status(ssize_t rc)
{
    switch (rc) {
    case GH_HTTP_PARSE_URI_TOO_LONG:
        return 414;
    case GH_HTTP_PARSE_HEADER_TOO_LARGE:
    case GH_HTTP_PARSE_TOO_MANY_HEADERS:
        return 431;
    case GH_HTTP_PARSE_VERSION:
        return 505;
    default:
        return 400;
    }
}

static gh_int_t gh_http_process_headers(gh_http_request_t *r,
    gh_http_header_t *h, size_t n);
static gh_int_t gh_http_process_request_uri(gh_http_request_t *r);

static void
gh_http_request_error(gh_http_request_t *r, gh_uint_t status,
    const char *why)
{
    gh_log(GH_LOG_INFO, &r->conn->log, 0, "%s", why);
    r->read_event_handler = gh_http_block_reading;
    r->keepalive = 0;
    r->lingering_close = 0;
    gh_http_finalize_request(r, (gh_int_t) status);
}

static void
gh_http_process_request_head(gh_http_request_t *r)
{
    gh_conn_t *c = r->conn;
    gh_http_connection_t *hc = r->http_conn;
    gh_http_core_srv_conf_t *cscf = hc->addr_conf->default_server;
    static gh_http_header_t headers[GH_HTTP_MAX_HEADERS];
    gh_http_limits_t limits = {
        .max_request_line = cscf->large_client_header_buffers_size,
        .max_header_line = cscf->large_client_header_buffers_size,
        .max_headers = GH_HTTP_MAX_HEADERS,
    };

    if (c->read.timedout) {
        c->read.timedout = 0;
        gh_log(GH_LOG_INFO, &c->log, 0, "client timed out");
        r->keepalive = 0;
        gh_http_finalize_request(r, 408);
        return;
    }

    for (;;) {
        size_t nh = 0;
        ssize_t rc = gh_http_parse_request_head(hc->buf.pos,
            (size_t) (hc->buf.last - hc->buf.pos), &r->head, headers, &nh,
            &limits);
        if (rc > 0) {
            r->header_size = (size_t) rc;
            r->request_length = rc;
            if (gh_http_process_headers(r, headers, nh) != GH_OK) {
                return;
            }
            hc->buf.pos += rc;
            break;
        }
        if (rc != GH_AGAIN) {
            r->request_line = r->head.request_line;
            gh_http_request_error(r, gh_http_parse_error_status(rc),
                "client sent invalid request");
            return;
        }

        if (hc->buf.last == hc->buf.end) {
            size_t used = (size_t) (hc->buf.last - hc->buf.start);
            size_t size = (size_t) (hc->buf.end - hc->buf.start);
            /* large_client_header_buffers total, at least one buffer */
            size_t max = gh_max((size_t) cscf->large_client_header_buffers_num
                * cscf->large_client_header_buffers_size,
                cscf->client_header_buffer_size);
            if (size >= max) {
                gh_http_request_error(r, 431,
                    "client sent too large request header");
                return;
            }
            /* move to a large buffer, then double up to the total */
            size_t nsize = size < cscf->large_client_header_buffers_size
                ? cscf->large_client_header_buffers_size : size * 2;
            if (nsize > max) {
                nsize = max;
            }
            if (gh_mem_charge(&hc->mem, nsize - size) != GH_OK) {
                /* the [error] line comes from gh_http_request_done */
                gh_http_request_error(r, 503,
                    "client_connection_memory_max reached");
                return;
            }
            size_t off = (size_t) (hc->buf.pos - hc->buf.start);
            hc->buf.start = gh_xrealloc(hc->buf.start, nsize);
            hc->buf.pos = hc->buf.start + off;
            hc->buf.last = hc->buf.start + used;
            hc->buf.end = hc->buf.start + nsize;
        }

        if (!c->read.ready) {
            r->read_event_handler = gh_http_process_request_head;
            if (!c->read.timer_set) {
                gh_timer_add(c->loop, &c->read, cscf->client_header_timeout);
            }
            return;
        }
        ssize_t n = c->recv(c, hc->buf.last,
            (size_t) (hc->buf.end - hc->buf.last));
        if (n == GH_AGAIN) {
            r->read_event_handler = gh_http_process_request_head;
            if (!c->read.timer_set) {
                gh_timer_add(c->loop, &c->read, cscf->client_header_timeout);
            }
            return;
        }
        if (n <= 0) {
            gh_log(GH_LOG_INFO, &c->log, 0,
                "client prematurely closed connection");
            gh_http_request_done(r, true);
            return;
        }
        hc->buf.last += n;
    }

    if (c->read.timer_set) {
        gh_timer_del(c->loop, &c->read);
    }
    r->read_event_handler = gh_http_block_reading;
    r->phase = 0;
    r->phase_handler = 0;
    gh_http_core_run_phases(r);
}

void
gh_http_process_request_text(gh_http_request_t *r, uint8_t *p, size_t len,
    unsigned version)
{
    gh_http_core_srv_conf_t *cscf = gh_http_cscf(r);
    static gh_http_header_t headers[GH_HTTP_MAX_HEADERS];
    gh_http_limits_t limits = {
        .max_request_line = cscf->large_client_header_buffers_size,
        .max_header_line = cscf->large_client_header_buffers_size,
        .max_headers = GH_HTTP_MAX_HEADERS,
    };
    size_t nh = 0;
    ssize_t rc = gh_http_parse_request_head(p, len, &r->head, headers, &nh,
        &limits);

    r->read_event_handler = gh_http_block_reading;
    if (rc != (ssize_t) len) {
        r->request_line = r->head.request_line;
        gh_http_request_error(r, rc == GH_AGAIN ? 400
            : gh_http_parse_error_status(rc), "client sent invalid request");
        return;
    }
    r->header_size = len;
    r->request_length = (off_t) len;
    if (gh_http_process_headers(r, headers, nh) != GH_OK) {
        return;
    }
    r->http_version = version;
    if (version == 2000 && r->request_line.len > 3) {
        /* $request shows what the client spoke, as nginx's "HTTP/2.0" */
        memcpy(r->request_line.data + r->request_line.len - 3, "2.0", 3);
    }
    r->phase = 0;
    r->phase_handler = 0;
    gh_http_core_run_phases(r);
}

static bool
gh_http_token_in(const gh_str_t *v, const char *tok)
{
    size_t tl = strlen(tok);
    const uint8_t *p = v->data, *end = v->data + v->len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }
        const uint8_t *s = p;
        while (p < end && *p != ',') {
            p++;
        }
        const uint8_t *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }
        if ((size_t) (e - s) == tl && gh_strncasecmp(s, (const uint8_t *) tok,
                tl) == 0)
        {
            return true;
        }
    }
    return false;
}

#define KNOWN(field, lit) \
    if (gh_str_caseeq_c(&h[i].name, lit)) { \
        if (r->headers_in.field) { dup = true; } \
        r->headers_in.field = e; \
    }

static gh_int_t
gh_http_process_headers(gh_http_request_t *r, gh_http_header_t *h, size_t n)
{
    gh_http_core_srv_conf_t *cscf = r->srv_conf[gh_http_core_module.index];
    gh_http_request_head_t *hd = &r->head;

    r->request_line = hd->request_line;
    r->method_name = hd->method;
    r->method = hd->method_id;
    r->http_version = hd->http_major * 1000 + hd->http_minor;
    r->unparsed_uri = hd->target;

    for (size_t i = 0; i < n; i++) {
        if (!cscf->underscores_in_headers
            && memchr(h[i].name.data, '_', h[i].name.len))
        {
            /* nginx drops these: they could spoof CGI-style variables */
            continue;
        }
        gh_http_table_elt_t *e = gh_array_push(&r->headers_in.headers);
        if (e == NULL) {
            gh_http_request_error(r, 500, "out of memory");
            return GH_ERROR;
        }
        e->name = h[i].name;
        e->value = h[i].value;
        e->hash_skip = 0;
        bool dup = false;

        KNOWN(host, "Host")
        else KNOWN(content_length, "Content-Length")
        else KNOWN(transfer_encoding, "Transfer-Encoding")
        else if (gh_str_caseeq_c(&h[i].name, "Connection")) {
            r->headers_in.connection = e;
            if (gh_http_token_in(&e->value, "close")) {
                r->headers_in.connection_close = 1;
            }
            if (gh_http_token_in(&e->value, "keep-alive")) {
                r->headers_in.keep_alive = 1;
            }
            if (gh_http_token_in(&e->value, "upgrade")) {
                r->headers_in.connection_upgrade = 1;
            }
        }
        else KNOWN(expect, "Expect")
        else if (gh_str_caseeq_c(&h[i].name, "Upgrade")) {
            r->headers_in.upgrade = e;
        }
        else if (gh_str_caseeq_c(&h[i].name, "User-Agent")) {
            r->headers_in.user_agent = e;
        }
        else if (gh_str_caseeq_c(&h[i].name, "Referer")) {
            r->headers_in.referer = e;
        }
        else if (gh_str_caseeq_c(&h[i].name, "X-Forwarded-For")) {
            r->headers_in.x_forwarded_for = e;
        }
        else if (gh_str_caseeq_c(&h[i].name, "Cookie")) {
            r->headers_in.cookie = e;
        }
        else if (gh_str_caseeq_c(&h[i].name, "TE")) {
            r->headers_in.te = e;
        }
        if (dup) {
            gh_http_request_error(r, 400, "client sent duplicate header line");
            return GH_ERROR;
        }
    }

    /* not a forward proxy: the bytes after a CONNECT are tunnel data for
     * whoever is in front of us, never a request of ours, so answer 405
     * (as nginx 1.21.1+) and close */
    if (r->method == GH_HTTP_CONNECT) {
        gh_http_request_error(r, 405, "client sent CONNECT method");
        return GH_ERROR;
    }

    /* keep-alive default by version */
    if (r->http_version >= 1001) {
        r->keepalive = !r->headers_in.connection_close;
    } else {
        r->keepalive = r->headers_in.keep_alive
            && !r->headers_in.connection_close;
    }

    /* framing (RFC 9112 6.1-6.3): never guess */
    if (r->headers_in.transfer_encoding) {
        if (r->headers_in.content_length) {
            gh_http_request_error(r, 400, "client sent \"Content-Length\" and "
                "\"Transfer-Encoding\" headers at the same time");
            return GH_ERROR;
        }
        if (r->http_version < 1001) {
            gh_http_request_error(r, 400,
                "client sent \"Transfer-Encoding\" in an HTTP/1.0 request");
            return GH_ERROR;
        }
        int te = gh_http_te_is_chunked(&r->headers_in.transfer_encoding->value);
        if (te == 0) {
            gh_http_request_error(r, 501,
                "client sent unknown \"Transfer-Encoding\"");
            return GH_ERROR;
        }
        if (te < 0) {
            gh_http_request_error(r, 400,
                "client sent invalid \"Transfer-Encoding\"");
            return GH_ERROR;
        }
        r->headers_in.chunked = 1;
    } else if (r->headers_in.content_length) {
        int64_t cl = gh_http_parse_content_length(
            &r->headers_in.content_length->value);
        if (cl < 0) {
            gh_http_request_error(r, 400,
                "client sent invalid \"Content-Length\" header");
            return GH_ERROR;
        }
        r->headers_in.content_length_n = (off_t) cl;
    }

    if (r->headers_in.expect) {
        if (gh_str_caseeq_c(&r->headers_in.expect->value, "100-continue")) {
            r->headers_in.expect_continue = r->http_version >= 1001;
        } else {
            gh_http_request_error(r, 417, "client sent unknown \"Expect\"");
            return GH_ERROR;
        }
    }

    /* Host: the absolute-form authority wins; they must agree */
    gh_str_t host = gh_null_string;
    if (hd->absolute_form || hd->authority_form) {
        host = hd->authority;
        if (gh_http_validate_host(&host, r->arena) != GH_OK) {
            gh_http_request_error(r, 400, "client sent invalid host in "
                "request line");
            return GH_ERROR;
        }
        /* RFC 9112 3.2.2: the target's authority wins and Host is
         * ignored; $host and the upstream Host follow the target */
    } else if (r->headers_in.host) {
        host = r->headers_in.host->value;
        if (gh_http_validate_host(&host, r->arena) != GH_OK) {
            gh_http_request_error(r, 400, "client sent invalid host header");
            return GH_ERROR;
        }
    } else if (r->http_version >= 1001) {
        gh_http_request_error(r, 400, "client sent HTTP/1.1 request without "
            "\"Host\" header");
        return GH_ERROR;
    }
    r->headers_in.server = host;

    if (gh_http_process_request_uri(r) != GH_OK) {
        return GH_ERROR;
    }

    gh_http_core_srv_conf_t *srv = gh_http_find_server(r, r->addr_conf,
        &host);
    if (srv) {
        r->srv_conf = srv->ctx->srv_conf;
        r->loc_conf = srv->ctx->loc_conf;
    }
    return GH_OK;
}

static gh_int_t
gh_http_process_request_uri(gh_http_request_t *r)
{
    gh_http_request_head_t *hd = &r->head;
    gh_http_core_srv_conf_t *cscf = gh_http_cscf(r);

    if (hd->asterisk_form || hd->authority_form) {
        gh_str_set(&r->uri, "*");
        if (hd->authority_form) {
            r->uri = hd->authority;
        }
        return GH_OK;
    }
    r->args = hd->args;
    if (hd->complex_uri) {
        uint8_t *out = gh_alloc_unaligned(r->arena, hd->path.len + 1);
        size_t len = 0;
        if (out == NULL) {
            gh_http_request_error(r, 500, "out of memory");
            return GH_ERROR;
        }
        if (gh_http_normalize_uri(hd->path.data, hd->path.len, out, &len,
                cscf->merge_slashes != 0) != GH_OK)
        {
            gh_http_request_error(r, 400, "client sent invalid request URI");
            return GH_ERROR;
        }
        r->uri.data = out;
        r->uri.len = len;
    } else {
        r->uri = hd->path;
    }
    /* extension: after the last '.' of the last segment */
    for (size_t i = r->uri.len; i > 0; i--) {
        uint8_t ch = r->uri.data[i - 1];
        if (ch == '/') {
            break;
        }
        if (ch == '.') {
            r->exten.data = r->uri.data + i;
            r->exten.len = r->uri.len - i;
            break;
        }
    }
    return GH_OK;
}

/* ------------------------------------------------------------------ */

static gh_int_t
gh_http_core_find_config(gh_http_request_t *r)
{
    gh_http_core_srv_conf_t *cscf = gh_http_cscf(r);
    r->loc_conf = cscf->ctx->loc_conf;
    gh_int_t lrc = gh_http_find_location(r);
    if (lrc == GH_ERROR) {
        return 500;
    }
    gh_http_core_loc_conf_t *clcf = gh_http_clcf(r);

    if (lrc == GH_DONE) {
        /* "/dir" asked, only "/dir/" (with proxy_pass) configured: nginx
         * answers with a 301 to "/dir/" */
        gh_str_t loc;
        size_t len = r->uri.len + 1 + (r->args.len ? r->args.len + 1 : 0);
        loc.data = gh_alloc_unaligned(r->arena, len);
        if (loc.data == NULL) {
            return 500;
        }
        memcpy(loc.data, r->uri.data, r->uri.len);
        loc.len = r->uri.len;
        loc.data[loc.len++] = '/';
        if (r->args.len) {
            loc.data[loc.len++] = '?';
            memcpy(loc.data + loc.len, r->args.data, r->args.len);
            loc.len += r->args.len;
        }
        if (gh_http_set_location(r, &loc) != GH_OK) {
            return 500;
        }
        return 301;
    }
    r->valid_location = 1;
    if (clcf->internal && !r->internal) {
        return 404;
    }
    if (clcf->error_log) {
        r->conn->log.file = clcf->error_log->file;
        r->conn->log.level = clcf->error_log->level;
        r->conn->log.next = clcf->error_log->next;
    }
    if (r->headers_in.content_length_n > 0 && clcf->client_max_body_size
        && r->headers_in.content_length_n > clcf->client_max_body_size)
    {
        gh_log(GH_LOG_ERR, &r->conn->log, 0, "client intended to send too "
            "large body: %lld bytes", (long long)
            r->headers_in.content_length_n);
        r->lingering_close = 1;
        return 413;
    }
    return GH_OK;
}

void
gh_http_core_run_phases(gh_http_request_t *r)
{
    gh_http_core_main_conf_t *cmcf = r->main_conf[gh_http_core_module.index];

    while (r->phase < GH_HTTP_LOG_PHASE) {
        gh_int_t rc;

        if (r->phase == GH_HTTP_FIND_CONFIG_PHASE) {
            rc = gh_http_core_find_config(r);
            if (rc != GH_OK) {
                gh_http_finalize_request(r, rc);
                return;
            }
            r->phase++;
            r->phase_handler = 0;
            continue;
        }

        if (r->phase == GH_HTTP_CONTENT_PHASE) {
            gh_http_core_loc_conf_t *clcf = gh_http_clcf(r);
            gh_http_handler_pt h = r->content_handler ? r->content_handler
                                                      : clcf->handler;
            r->phase = GH_HTTP_LOG_PHASE;
            if (h == NULL) {
                /* no handler of its own (proxy_pass, ...): files under
                 * root/alias, as nginx's static and index modules */
                h = gh_http_static_handler;
            }
            gh_http_finalize_request(r, h(r));
            return;
        }

        gh_http_phase_t *ph = &cmcf->phases[r->phase];
        if (r->phase_handler >= ph->n) {
            r->phase++;
            r->phase_handler = 0;
            continue;
        }
        rc = ph->handlers[r->phase_handler](r);
        if (rc == GH_DECLINED) {
            r->phase_handler++;
            continue;
        }
        if (rc == GH_OK) {
            r->phase++;
            r->phase_handler = 0;
            continue;
        }
        if (rc == GH_AGAIN || rc == GH_DONE) {
            return;
        }
        gh_http_finalize_request(r, rc);
        return;
    }
}

gh_int_t
gh_http_internal_redirect(gh_http_request_t *r, const gh_str_t *uri,
    const gh_str_t *args)
{
    if (--r->uri_changes == 0) {
        gh_log(GH_LOG_ERR, &r->conn->log, 0, "rewrite or internal "
            "redirection cycle while internally redirecting to \"%.*s\"",
            (int) uri->len, uri->data);
        return 500;
    }
    r->uri = *uri;
    if (args) {
        r->args = *args;
    } else {
        r->args.len = 0;
        r->args.data = NULL;
    }
    r->exten.len = 0;
    r->exten.data = NULL;
    for (size_t i = r->uri.len; i > 0; i--) {
        uint8_t ch = r->uri.data[i - 1];
        if (ch == '/') {
            break;
        }
        if (ch == '.') {
            r->exten.data = r->uri.data + i;
            r->exten.len = r->uri.len - i;
            break;
        }
    }
    memset(r->ctx, 0, sizeof(void *) * gh_modules_n);
    if (gh_http_variables_request_init(r) != GH_OK) {
        return 500;
    }
    r->internal = 1;
    r->uri_changed = 1;
    r->content_handler = NULL;
    r->phase = GH_HTTP_SERVER_REWRITE_PHASE;
    r->phase_handler = 0;
    gh_http_core_srv_conf_t *cscf = gh_http_cscf(r);
    r->loc_conf = cscf->ctx->loc_conf;
    gh_http_core_run_phases(r);
    return GH_DONE;
}

gh_int_t
gh_http_named_location(gh_http_request_t *r, const gh_str_t *name)
{
    gh_http_core_loc_conf_t *clcf =
        gh_http_find_named_location(gh_http_cscf(r), name);
    if (clcf == NULL) {
        gh_log(GH_LOG_ERR, &r->conn->log, 0,
            "could not find named location \"%.*s\"",
            (int) name->len, name->data);
        return 500;
    }
    if (--r->uri_changes == 0) {
        gh_log(GH_LOG_ERR, &r->conn->log, 0, "rewrite or internal "
            "redirection cycle while redirect to named location \"%.*s\"",
            (int) name->len, name->data);
        return 500;
    }
    r->loc_conf = clcf->loc_conf;
    memset(r->ctx, 0, sizeof(void *) * gh_modules_n);
    r->internal = 1;
    r->content_handler = NULL;
    /* named locations skip location search: go to REWRITE */
    r->phase = GH_HTTP_REWRITE_PHASE;
    r->phase_handler = 0;
    gh_http_core_run_phases(r);
    return GH_DONE;
}

/* ------------------------------------------------------------------ */

void
gh_http_finalize_request(gh_http_request_t *r, gh_int_t rc)
{
    if (rc == GH_DONE || rc == GH_AGAIN) {
        /* the handler owns the request (body reading, upstream) or the
         * writer is flushing; they finalize again later */
        if (rc == GH_AGAIN && r->response_sent && r->out == NULL) {
            gh_http_request_done(r, false);
        }
        return;
    }
    if (rc == GH_ERROR || rc == GH_HTTP_CLOSE || rc == 499) {
        if (rc == GH_HTTP_CLOSE) {
            r->headers_out.status = GH_HTTP_CLOSE;
        }
        gh_http_request_done(r, true);
        return;
    }
    if (rc >= 100) {
        if (r->header_sent) {
            /* too late for an error page: cut the connection */
            gh_http_request_done(r, true);
            return;
        }
        gh_http_finalize_request(r,
            gh_http_special_response_handler(r, (gh_uint_t) rc));
        return;
    }
    /* GH_OK: the response is out, or queued for the writer */
    if (r->out) {
        return;
    }
    if (!r->response_sent && r->header_sent) {
        /* handler said OK but never ended the body: treat as broken */
        gh_http_request_done(r, true);
        return;
    }
    gh_http_request_done(r, false);
}

void
gh_http_request_done(gh_http_request_t *r, bool close)
{
    gh_conn_t *c = r->conn;

    if (r->done) {
        return;
    }
    r->done = 1;
    gh_http_mem_refused(c, r->http_conn);
    if (!r->logged) {
        r->body_bytes_sent = r->bytes_sent > (off_t) r->header_size
            ? r->bytes_sent - (off_t) r->header_size : 0;
        r->logged = 1;
        if (r->head.request_line.len || r->headers_out.status) {
            gh_http_log_handler(r);
        }
    }
    if (r->stream) {
        /* HTTP/2: the stream ends, the connection is not ours */
        gh_http_v2_request_done(r, close);
        return;
    }
    if (c->write.timer_set) {
        gh_timer_del(c->loop, &c->write);
    }
    if (c->read.timer_set) {
        gh_timer_del(c->loop, &c->read);
    }
    if (close || !r->keepalive || gh_conns.quitting || c->read.error) {
        gh_http_connection_t *hc = r->http_conn;
        bool unread = gh_http_body_pending(r)
            || (hc->buf.start && hc->buf.last > hc->buf.pos);
        if (!c->read.eof && !c->read.error && unread
            && (!close || r->headers_out.status >= 400))
        {
            /* unread input: closing now would make the kernel answer with
             * RST and the client could lose our response */
            gh_http_lingering_close(r);
            return;
        }
        gh_http_free_request(r);
        gh_conn_close(c);
        return;
    }
    if (gh_http_body_pending(r)) {
        /* the body was not consumed: read and drop it, then keep alive */
        gh_int_t rc = gh_http_discard_body_step(r);
        if (rc == GH_ERROR) {
            gh_http_free_request(r);
            gh_conn_close(c);
            return;
        }
        if (rc == GH_AGAIN) {
            r->done = 0;   /* we come back through discard */
            return;
        }
    }
    gh_http_set_keepalive(r);
}

static void
gh_http_set_keepalive(gh_http_request_t *r)
{
    gh_conn_t *c = r->conn;
    gh_http_connection_t *hc = r->http_conn;
    gh_http_core_loc_conf_t *clcf = gh_http_clcf(r);
    gh_msec_t timeout = clcf->keepalive_timeout;

    hc->requests++;
    gh_http_free_request(r);

    /* leftover bytes of a pipelined request move to the buffer start */
    size_t left = hc->buf.start ? (size_t) (hc->buf.last - hc->buf.pos) : 0;
    if (hc->stash_len) {
        if (gh_http_alloc_head_buf(hc) != GH_OK) {
            gh_conn_close(c);
            return;
        }
        size_t need = left + hc->stash_len;
        size_t size = (size_t) (hc->buf.end - hc->buf.start);
        if (need > size) {
            size_t off = (size_t) (hc->buf.pos - hc->buf.start);
            /* bytes the client sent already: charged whatever the cap */
            gh_mem_charge_force(&hc->mem, need - size);
            hc->buf.start = gh_xrealloc(hc->buf.start, need);
            hc->buf.pos = hc->buf.start + off;
            hc->buf.last = hc->buf.pos + left;
            hc->buf.end = hc->buf.start + need;
        }
    }
    if (hc->buf.start) {
        memmove(hc->buf.start, hc->buf.pos, left);
        hc->buf.pos = hc->buf.start;
        hc->buf.last = hc->buf.start + left;
        if (hc->stash_len) {
            memcpy(hc->buf.last, hc->stash, hc->stash_len);
            hc->buf.last += hc->stash_len;
            free(hc->stash);
            gh_mem_uncharge(&hc->mem, hc->stash_len);
            hc->stash = NULL;
            hc->stash_len = 0;
        }
        /* a buffer grown for a large head shrinks back */
        size_t small = hc->addr_conf->default_server->client_header_buffer_size;
        if ((size_t) (hc->buf.end - hc->buf.start) > small
            && (size_t) (hc->buf.last - hc->buf.start) <= small)
        {
            size_t used = (size_t) (hc->buf.last - hc->buf.start);
            gh_mem_uncharge(&hc->mem,
                (size_t) (hc->buf.end - hc->buf.start) - small);
            hc->buf.start = gh_xrealloc(hc->buf.start, small);
            hc->buf.pos = hc->buf.start;
            hc->buf.last = hc->buf.start + used;
            hc->buf.end = hc->buf.start + small;
        }
    }

    c->read.handler = gh_http_wait_request_handler;
    c->write.handler = gh_http_empty_handler;

    if (hc->buf.start && hc->buf.last > hc->buf.pos) {
        /* pipelined: go on at once; posted to bound recursion */
        gh_post_event(c->loop, &c->read);
        gh_timer_add(c->loop, &c->read, hc->addr_conf->default_server->
            client_header_timeout);
        return;
    }
    /* an idle keep-alive connection keeps no buffer: it is allocated
     * again when the next request arrives */
    if (hc->buf.start && hc->buf.last == hc->buf.pos) {
        gh_http_head_buf_put(hc);
    }
    gh_conn_set_idle(c, true);
    gh_timer_add(c->loop, &c->read, timeout);
    if (c->read.ready) {
        gh_post_event(c->loop, &c->read);
    }
}

/* ------------------------------------------------------------------ */

/*
 * Lingering close: the client may still be sending a body we did not
 * read; closing now would make the kernel answer with RST and the client
 * could lose our response.  Shut down our side and drain for a while.
 */
static void
gh_http_lingering_close(gh_http_request_t *r)
{
    gh_conn_t *c = r->conn;
    gh_msec_t t = gh_http_clcf(r)->lingering_timeout;
    gh_http_free_request(r);
    gh_conn_lingering_close(c, t, false);
}

/* ------------------------------------------------------------------ */

size_t
gh_http_log_error_handler(gh_log_t *log, uint8_t *buf, size_t len)
{
    gh_http_connection_t *hc = log->data;
    if (hc == NULL || hc->r == NULL) {
        return 0;
    }
    gh_http_request_t *r = hc->r;
    gh_conn_t *c = r->conn;
    gh_http_core_srv_conf_t *cscf = gh_http_cscf(r);
    int n = snprintf((char *) buf, len, ", client: %.*s, server: %.*s",
        (int) c->addr_text.len, c->addr_text.data,
        (int) cscf->server_name.len, cscf->server_name.data);
    if (n < 0 || (size_t) n >= len) {
        return len ? len - 1 : 0;
    }
    size_t off = (size_t) n;
    if (r->request_line.len && off + 16 < len) {
        uint8_t tmp[1024];
        size_t l = gh_min(r->request_line.len, sizeof(tmp) / 4);
        size_t el = gh_escape_log(tmp, r->request_line.data, l);
        n = snprintf((char *) buf + off, len - off, ", request: \"%.*s\"",
            (int) el, tmp);
        if (n > 0 && (size_t) n < len - off) {
            off += (size_t) n;
        }
    }
    if (r->log_upstream.len && off + 16 < len) {
        n = snprintf((char *) buf + off, len - off, ", upstream: \"%.*s\"",
            (int) gh_min(r->log_upstream.len, 512), r->log_upstream.data);
        if (n > 0 && (size_t) n < len - off) {
            off += (size_t) n;
        }
    }
    if (r->headers_in.server.len && off + 16 < len) {
        n = snprintf((char *) buf + off, len - off, ", host: \"%.*s\"",
            (int) gh_min(r->headers_in.server.len, 256),
            r->headers_in.server.data);
        if (n > 0 && (size_t) n < len - off) {
            off += (size_t) n;
        }
    }
    return off;
}

gh_http_table_elt_t *
gh_http_find_header_in(gh_http_request_t *r, const gh_str_t *name)
{
    for (size_t i = 0; i < r->headers_in.headers.nelts; i++) {
        gh_http_table_elt_t *e = gh_array_at(&r->headers_in.headers,
            gh_http_table_elt_t, i);
        if (gh_str_caseeq(&e->name, name)) {
            return e;
        }
    }
    return NULL;
}

gh_http_table_elt_t *
gh_http_add_header_out(gh_http_request_t *r, const char *name,
    const gh_str_t *value)
{
    gh_http_table_elt_t *e = gh_array_push(&r->headers_out.headers);
    if (e == NULL) {
        return NULL;
    }
    e->name.data = (uint8_t *) name;
    e->name.len = strlen(name);
    e->value = *value;
    e->hash_skip = 0;
    return e;
}
