/*
 * gh_http_v2.c: HTTP/2 to clients through libnghttp2's server session.
 *
 * Strictly opt-in: only addresses with `listen ... http2` (or a server
 * with `http2 on;`) get here, through ALPN "h2" after the TLS handshake
 * or the client preface on a cleartext listener (prior knowledge).
 *
 *   init_connection -> read handler: recv -> nghttp2_session_mem_recv
 *     callbacks collect a stream's headers -> end of the header block:
 *     the stream is queued
 *   after mem_recv: queued streams start as HTTP/1-shaped requests (the
 *     head rebuilt as HTTP/1.1 text by gh_http_v2_head.c, parsed by the
 *     same code) -> the same phases, location and proxy pipeline
 *   request body: DATA waits in a per-stream buffer no larger than the
 *     stream window; the HTTP/1 body readers (gh_http_body.c) pull it
 *     through gh_http_v2_read_body(), and only what they took is given
 *     back to the client as stream window (WINDOW_UPDATE), so the memory
 *     a connection holds for bodies is bounded by max_concurrent_streams
 *     x GH_H2_STREAM_WINDOW; what the readers keep goes to memory or a
 *     temp file per client_body_buffer_size, client_max_body_size gives
 *     413 as on HTTP/1.1.  New DATA or END_STREAM wakes the request's
 *     read_event_handler (after mem_recv); client_body_timeout runs on a
 *     per-stream timer event, not on the shared connection
 *   response: base header filter -> gh_http_v2_header_filter (HEADERS),
 *     write filter -> gh_http_v2_write_filter: r->out feeds the stream's
 *     data provider; nghttp2 does flow control; when r->out drains, the
 *     producer's r->write_event_handler runs
 *   send: the filters and the request end run nghttp2_session_mem_send
 *     at once (r->out drains into nghttp2's frames, the producer goes
 *     on) but the frames only gather in h2c->wbuf; one posted event per
 *     loop iteration writes them, so the responses of several streams
 *     that came in one epoll batch leave in one TLS record and one
 *     syscall (the read and write handlers write at once).  Past
 *     GH_H2_WBUF gathered bytes they are written without waiting; what
 *     the socket refuses waits in h2c->wbuf for the write event, and no
 *     more frames are made meanwhile (nghttp2 keeps the data, the
 *     producers block)
 *   close: GOAWAY / EOF / error -> posted teardown (never from inside a
 *     request's call stack): abort live requests, free the session ->
 *     close, or a lingering close when the client may still be sending
 *     (see gh_h2_close)
 *
 * Defences: MAX_CONCURRENT_STREAMS and MAX_HEADER_LIST_SIZE announced
 * and enforced; nghttp2 limits SETTINGS entries and queued ACKs (settings
 * and ping floods); RST_STREAM frames are counted per second and past a
 * limit the connection gets GOAWAY(ENHANCE_YOUR_CALM) (rapid reset,
 * CVE-2023-44487); request bodies are flow-controlled (above);
 * keepalive_requests streams end the connection with GOAWAY(NO_ERROR).
 *
 * Graceful shutdown (QUIT, or the old workers of a reload), as nginx: an
 * HTTP/2 connection stays on the worker's idle list for its whole life,
 * so gh_conn_close_idle() reaches it busy or not; its read handler then
 * sends GOAWAY(NO_ERROR) naming the last stream started.  Streams up to
 * it finish (responses, request bodies still arriving), later ones are
 * refused, and the connection ends once nghttp2 has no stream left and
 * the last frames are written (at once when it was idle).
 */
#include "gh_http_v2.h"
#include "gh_http_v2_head.h"
#include "../gh_http_request.h"
#include "../gh_http_modules.h"
#include "../../tls/gh_tls.h"
#include <nghttp2/nghttp2.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>

#define GH_H2_RBUF          16384
#define GH_H2_RST_PER_SEC   200      /* rapid reset: resets per second */
/* the stream window we announce (nginx's http2_body_preread_size is the
 * same 64k): DATA a stream may have in flight, unread by its request */
#define GH_H2_STREAM_WINDOW 65535
/* the connection window: given back as DATA arrives (the streams' own
 * windows bound the memory), so large to spare WINDOW_UPDATEs */
#define GH_H2_CONN_WINDOW   (1 << 24)
#define GH_H2_OUT_MAX       65536    /* queued r->out before GH_AGAIN */
/* frames gathered in h2c->wbuf before they are written: one TLS record's
 * worth (what SSL_write puts in one record, so usually one syscall) */
#define GH_H2_WBUF          16384

typedef struct {
    int      enable;                 /* http2 on|off */
    gh_int_t max_concurrent_streams;
} gh_http_v2_srv_conf_t;

typedef struct gh_h2_conn_s   gh_h2_conn_t;
typedef struct gh_h2_stream_s gh_h2_stream_t;

struct gh_h2_stream_s {
    int32_t             id;
    gh_h2_conn_t       *h2c;
    gh_http_request_t  *r;
    gh_h2_stream_t     *prev, *next;     /* all streams of h2c */
    gh_h2_stream_t     *qnext;           /* start / abort queue */
    gh_http_v2_head_t   head;            /* until the request starts */
    uint8_t            *body;            /* DATA not yet read */
    size_t              bpos, blen, bcap;
    gh_event_t          rev;             /* client_body_timeout */
    unsigned            queued:1;
    unsigned            started:1;
    unsigned            closed:1;        /* nghttp2 closed it */
    unsigned            deferred:1;      /* data provider waits */
    unsigned            blocked:1;       /* write filter said GH_AGAIN */
    unsigned            aborting:1;
    unsigned            bad:1;
    unsigned            has_body:1;      /* HEADERS without END_STREAM */
    unsigned            in_eof:1;        /* the client's END_STREAM */
    unsigned            rwake:1;         /* body news for the request */
    unsigned            out_done:1;      /* request over, response whole */
};

struct gh_h2_conn_s {
    gh_conn_t             *c;
    gh_http_connection_t  *hc;
    nghttp2_session       *session;
    gh_h2_stream_t        *streams;
    gh_h2_stream_t        *start_q, **start_tail;
    gh_uint_t              nreq;          /* running requests */
    int32_t                last_started;  /* highest stream started */
    size_t                 body_buffered; /* DATA held, all streams */
    size_t                 header_max;
    uint8_t               *wbuf;          /* frames not yet written */
    size_t                 wpos, wlen, wcap;  /* wbuf: malloc'd, freed
                                               * when no stream is left */
    gh_event_t             close_ev;
    gh_event_t             send_ev;       /* WINDOW_UPDATEs to send */
    off_t                  last_sent;     /* c->sent at the last write */
    gh_msec_t              rst_start;
    gh_uint_t              rst_count;
    unsigned               sending:1;
    unsigned               send_again:1;
    unsigned               send_now:1;    /* a caller wants the write now */
    unsigned               dead:1;        /* teardown posted */
    unsigned               goaway:1;      /* GOAWAY submitted: keepalive_
                                           * requests, or shutdown */
    unsigned               freed:1;
    unsigned               linger:1;      /* the client may still be
                                           * sending: a lingering close */
};

static gh_int_t gh_http_v2_postconf(gh_conf_t *cf);

/* the connection's location conf: its address's default server's */
static gh_http_core_loc_conf_t *
gh_h2_clcf(gh_h2_conn_t *h2c)
{
    return h2c->hc->addr_conf->default_server->ctx
        ->loc_conf[gh_http_core_module.index];
}
static void *gh_http_v2_create_srv_conf(gh_conf_t *cf);
static const char *gh_http_v2_merge_srv_conf(gh_conf_t *cf, void *prev,
    void *conf);
static void gh_h2_send(gh_h2_conn_t *h2c);
static void gh_h2_send_gather(gh_h2_conn_t *h2c);
static void gh_h2_wbuf_release(gh_h2_conn_t *h2c);
static void gh_h2_fail(gh_h2_conn_t *h2c);
static void gh_h2_arm_send_timer(gh_h2_conn_t *h2c);
static void gh_h2_wake_readers(gh_h2_conn_t *h2c);

#define V2SRV (GH_HTTP_MAIN_CONF | GH_HTTP_SRV_CONF)

static const gh_command_t gh_http_v2_commands[] = {
    { "http2", V2SRV, GH_CONF_FLAG, gh_conf_set_flag, GH_CONF_SRV_OFFSET,
      offsetof(gh_http_v2_srv_conf_t, enable), NULL },
    { "http2_max_concurrent_streams", V2SRV, GH_CONF_TAKE1, gh_conf_set_num,
      GH_CONF_SRV_OFFSET,
      offsetof(gh_http_v2_srv_conf_t, max_concurrent_streams), NULL },
    GH_COMMAND_END
};

gh_module_t gh_http_v2_module = {
    .name = "http_v2",
    .commands = gh_http_v2_commands,
    .create_srv_conf = gh_http_v2_create_srv_conf,
    .merge_srv_conf = gh_http_v2_merge_srv_conf,
    .postconfiguration = gh_http_v2_postconf,
};

/* --- configuration --------------------------------------------------- */

static void *
gh_http_v2_create_srv_conf(gh_conf_t *cf)
{
    gh_http_v2_srv_conf_t *conf = gh_calloc(cf->arena, sizeof(*conf));
    if (conf == NULL) {
        return NULL;
    }
    conf->enable = GH_UNSET;
    conf->max_concurrent_streams = GH_UNSET;
    return conf;
}

static const char *
gh_http_v2_merge_srv_conf(gh_conf_t *cf, void *parent, void *child)
{
    gh_http_v2_srv_conf_t *prev = parent, *conf = child;
    if (conf->enable == GH_UNSET) {
        conf->enable = prev->enable == GH_UNSET ? 0 : prev->enable;
    }
    if (conf->max_concurrent_streams == GH_UNSET) {
        conf->max_concurrent_streams = prev->max_concurrent_streams
            == GH_UNSET ? 128 : prev->max_concurrent_streams;
    }
    if (conf->max_concurrent_streams < 1) {
        return "\"http2_max_concurrent_streams\" must be at least 1";
    }
    return NULL;
}

static void gh_http_v2_init(gh_conn_t *c);

static gh_int_t
gh_http_v2_postconf(gh_conf_t *cf)
{
    gh_http_core_main_conf_t *cmcf =
        gh_http_conf_get_module_main_conf(cf, gh_http_core_module);

    /* `http2 on;` marks the server's listens as `listen ... http2`,
     * before the addresses are grouped (which ORs the flags) */
    for (size_t i = 0; i < cmcf->listens.nelts; i++) {
        gh_http_listen_t *l = gh_array_at(&cmcf->listens, gh_http_listen_t,
            i);
        gh_http_v2_srv_conf_t *h2scf =
            l->server->ctx->srv_conf[gh_http_v2_module.index];
        if (h2scf->enable == 1) {
            l->http2 = 1;
        }
    }
    gh_http_v2_init_connection = gh_http_v2_init;
    return GH_OK;
}

/* --- streams --------------------------------------------------------- */

static gh_int_t
gh_h2_grow(uint8_t **p, size_t *cap, size_t need, size_t max)
{
    if (need <= *cap) {
        return GH_OK;
    }
    if (need > max) {
        return GH_ERROR;
    }
    size_t n = *cap ? *cap : 512;
    while (n < need) {
        n *= 2;
    }
    *p = gh_xrealloc(*p, n);
    *cap = n;
    return GH_OK;
}

static void
gh_h2_stream_free(gh_h2_stream_t *st)
{
    gh_h2_conn_t *h2c = st->h2c;
    if (st->prev) {
        st->prev->next = st->next;
    } else {
        h2c->streams = st->next;
    }
    if (st->next) {
        st->next->prev = st->prev;
    }
    if (h2c->session && !h2c->freed) {
        nghttp2_session_set_stream_user_data(h2c->session, st->id, NULL);
    }
    if (st->rev.timer_set) {
        gh_timer_del(h2c->c->loop, &st->rev);
    }
    free(st->body);
    h2c->body_buffered -= st->blen - st->bpos;
    gh_http_v2_head_free(&st->head);
    free(st);
}

/* --- nghttp2 callbacks ----------------------------------------------- */

static int
gh_h2_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
    void *user_data)
{
    gh_h2_conn_t *h2c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS
        || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    {
        return 0;
    }
    gh_h2_stream_t *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    st->id = frame->hd.stream_id;
    st->h2c = h2c;
    st->head.max = h2c->header_max;
    st->next = h2c->streams;
    if (h2c->streams) {
        h2c->streams->prev = st;
    }
    h2c->streams = st;
    nghttp2_session_set_stream_user_data(session, st->id, st);
    if (h2c->c->read.timer_set) {
        gh_timer_del(h2c->c->loop, &h2c->c->read);
    }
    return 0;
}

static int
gh_h2_on_header(nghttp2_session *session, const nghttp2_frame *frame,
    const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen,
    uint8_t flags, void *user_data)
{
    gh_h2_stream_t *st = nghttp2_session_get_stream_user_data(session,
        frame->hd.stream_id);
    if (st == NULL || st->started || frame->hd.type != NGHTTP2_HEADERS
        || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    {
        return 0;   /* trailers: ignored */
    }
    if (gh_http_v2_head_add(&st->head, name, nlen, value, vlen) != GH_OK) {
        gh_log(GH_LOG_INFO, &st->h2c->c->log, 0, st->head.size
            > st->head.max ? "client exceeded http2 header list size"
            : "client sent duplicate http2 header");
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

static void
gh_h2_queue(gh_h2_conn_t *h2c, gh_h2_stream_t *st)
{
    if (st->queued || st->started) {
        return;
    }
    st->queued = 1;
    st->qnext = NULL;
    *h2c->start_tail = st;
    h2c->start_tail = &st->qnext;
}

static int
gh_h2_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
    void *user_data)
{
    gh_h2_conn_t *h2c = user_data;

    if (frame->hd.type == NGHTTP2_RST_STREAM) {
        /* rapid reset (CVE-2023-44487): streams opened and cancelled at
         * once cost us work each; past a rate the connection goes */
        if (gh_current_msec - h2c->rst_start >= 1000) {
            h2c->rst_start = gh_current_msec;
            h2c->rst_count = 0;
        }
        if (++h2c->rst_count > GH_H2_RST_PER_SEC) {
            gh_log(GH_LOG_INFO, &h2c->c->log, 0,
                "client sent too many RST_STREAM frames");
            nghttp2_session_terminate_session(session,
                NGHTTP2_ENHANCE_YOUR_CALM);
        }
        return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
    {
        return 0;
    }
    gh_h2_stream_t *st = nghttp2_session_get_stream_user_data(session,
        frame->hd.stream_id);
    if (st == NULL) {
        return 0;
    }
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (end) {
        st->in_eof = 1;
        st->rwake = 1;
    }
    if (frame->hd.type == NGHTTP2_HEADERS
        && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
    {
        /* the head is complete: the request starts now, its body (if
         * any) follows through gh_http_v2_read_body() */
        st->has_body = !end;
        if (!st->bad) {
            gh_h2_queue(h2c, st);
        }
    }
    return 0;
}

/* our END_STREAM went out while the client is still sending a body no
 * one will read: ask it to stop (RFC 9113 8.1, as nginx does) */
static int
gh_h2_on_frame_send(nghttp2_session *session, const nghttp2_frame *frame,
    void *user_data)
{
    gh_h2_conn_t *h2c = user_data;
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    {
        return 0;
    }
    gh_h2_stream_t *st = nghttp2_session_get_stream_user_data(session,
        frame->hd.stream_id);
    if (st && !st->in_eof && !st->closed) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, st->id,
            NGHTTP2_NO_ERROR);
        /* its DATA may be on the way until the client sees the reset */
        h2c->linger = 1;
    }
    return 0;
}

static int
gh_h2_on_data_chunk(nghttp2_session *session, uint8_t flags,
    int32_t stream_id, const uint8_t *data, size_t len, void *user_data)
{
    gh_h2_conn_t *h2c = user_data;
    gh_h2_stream_t *st = nghttp2_session_get_stream_user_data(session,
        stream_id);

    (void) flags;
    /* the connection window comes back at once: each stream's own window
     * bounds what it may hold */
    nghttp2_session_consume_connection(session, len);
    if (st == NULL || st->bad || (st->started && st->r == NULL)) {
        /* nobody will read it (a request answered already, a refused
         * stream): dropped, and the stream window given back too */
        nghttp2_session_consume_stream(session, stream_id, len);
        h2c->linger = 1;
        return 0;
    }
    if (st->bpos == st->blen) {
        st->bpos = st->blen = 0;
    } else if (st->bpos && st->blen + len > st->bcap) {
        memmove(st->body, st->body + st->bpos, st->blen - st->bpos);
        st->blen -= st->bpos;
        st->bpos = 0;
    }
    /* flow control keeps it under the window; a peer that ignores it has
     * had FLOW_CONTROL_ERROR from nghttp2 before this */
    if (gh_h2_grow(&st->body, &st->bcap, st->blen + len,
            2 * GH_H2_STREAM_WINDOW) != GH_OK)
    {
        st->bad = 1;
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id,
            NGHTTP2_FLOW_CONTROL_ERROR);
        return 0;
    }
    memcpy(st->body + st->blen, data, len);
    st->blen += len;
    h2c->body_buffered += len;
    st->rwake = 1;
    return 0;
}

static void
gh_h2_send_posted(gh_event_t *ev)
{
    gh_h2_send(ev->data);
}

/* gh_h2_send after the io handlers of this loop iteration */
static void
gh_h2_post_send(gh_h2_conn_t *h2c)
{
    if (!h2c->send_ev.posted) {
        h2c->send_ev.data = h2c;
        h2c->send_ev.handler = gh_h2_send_posted;
        gh_post_event(h2c->c->loop, &h2c->send_ev);
    }
}

ssize_t
gh_http_v2_read_body(gh_http_request_t *r, uint8_t *buf, size_t size)
{
    gh_h2_stream_t *st = r->stream;
    gh_h2_conn_t *h2c = st->h2c;

    if (h2c->dead) {
        return GH_ERROR;
    }
    if (st->bpos < st->blen) {
        size_t n = gh_min(size, st->blen - st->bpos);
        memcpy(buf, st->body + st->bpos, n);
        st->bpos += n;
        h2c->body_buffered -= n;
        if (st->bpos == st->blen) {
            st->bpos = st->blen = 0;
        }
        if (!st->closed) {
            /* nghttp2 sends WINDOW_UPDATE once half the window is used;
             * posted, as the reader may be deep in a request's stack */
            nghttp2_session_consume_stream(h2c->session, st->id, n);
            if (nghttp2_session_want_write(h2c->session)) {
                gh_h2_post_send(h2c);
            }
        }
        return (ssize_t) n;
    }
    if (st->in_eof) {
        return 0;
    }
    return st->closed ? GH_ERROR : GH_AGAIN;
}

static void
gh_h2_body_timer_handler(gh_event_t *ev)
{
    gh_h2_stream_t *st = ev->data;
    if (st->r) {
        st->r->read_event_handler(st->r);
    }
}

gh_event_t *
gh_http_v2_body_event(gh_http_request_t *r)
{
    gh_h2_stream_t *st = r->stream;
    st->rev.data = st;
    st->rev.handler = gh_h2_body_timer_handler;
    return &st->rev;
}

static int
gh_h2_on_stream_close(nghttp2_session *session, int32_t stream_id,
    uint32_t error_code, void *user_data)
{
    gh_h2_stream_t *st = nghttp2_session_get_stream_user_data(session,
        stream_id);
    if (st == NULL) {
        return 0;
    }
    st->closed = 1;
    if (st->r == NULL && !st->queued) {
        gh_h2_stream_free(st);
        return 0;
    }
    if (st->r && st->r->response_sent && st->r->out == NULL) {
        return 0;   /* our END_STREAM went out: request_done follows */
    }
    if (st->r && !st->aborting) {
        /* the client cancelled a running request: finish it once we are
         * out of nghttp2 (through the start queue, which aborts) */
        st->aborting = 1;
        st->queued = 0;
        gh_h2_queue(st->h2c, st);
    }
    return 0;
}

/* the data provider: r->out -> DATA frames */
static ssize_t
gh_h2_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
    size_t length, uint32_t *data_flags, nghttp2_data_source *source,
    void *user_data)
{
    gh_h2_stream_t *st = source->ptr;
    gh_http_request_t *r = st ? st->r : NULL;
    size_t n = 0;

    if (r == NULL) {
        if (st && st->out_done) {
            /* the request ended with all of its body handed over, the
             * END_STREAM waited for window */
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    while (r->out && n < length) {
        gh_buf_t *b = r->out->buf;
        size_t want = length - n;
        if (b->in_file) {
            off_t left = b->file_last - b->file_pos;
            if ((off_t) want > left) {
                want = (size_t) left;
            }
            ssize_t got = want ? pread(b->fd, buf + n, want, b->file_pos)
                               : 0;
            if (got < 0 || (want && got == 0)) {
                gh_log(GH_LOG_ERR, &r->conn->log, errno, "pread() failed");
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            }
            b->file_pos += got;
            n += (size_t) got;
        } else {
            size_t left = (size_t) (b->last - b->pos);
            if (want > left) {
                want = left;
            }
            if (want) {
                memcpy(buf + n, b->pos, want);
                b->pos += want;
                n += want;
            }
        }
        if (gh_buf_size(b) == 0) {
            r->out = r->out->next;
        }
    }
    r->out_size -= (off_t) n;
    r->bytes_sent += (off_t) n;
    if (r->out == NULL && r->response_sent) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t) n;
    }
    if (n == 0) {
        st->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t) n;
}

/* --- starting a request ---------------------------------------------- */

static void
gh_h2_hc_free(void *data)
{
    gh_http_connection_t *hc = data;
    free(hc->buf.start);
    free(hc->stash);
}

static void
gh_h2_reset(gh_h2_stream_t *st, uint32_t code)
{
    if (!st->closed) {
        nghttp2_submit_rst_stream(st->h2c->session, NGHTTP2_FLAG_NONE,
            st->id, code);
        if (st->has_body && !st->in_eof) {
            st->h2c->linger = 1;     /* its body may still be coming */
        }
    }
}

static void
gh_h2_start(gh_h2_conn_t *h2c, gh_h2_stream_t *st)
{
    gh_conn_t *c = h2c->c;

    if (st->head.method.data == NULL || st->head.path.data == NULL) {
        gh_h2_reset(st, NGHTTP2_PROTOCOL_ERROR);
        return;
    }

    /* per-stream HTTP/1 connection state: an empty head buffer, so the
     * body readers go to gh_http_v2_read_body(), never to the socket */
    gh_arena_t *a = gh_arena_create(4096, 0);
    if (a == NULL) {
        gh_h2_reset(st, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    gh_http_connection_t *hc = gh_calloc(a, sizeof(*hc));
    uint8_t *p = gh_alloc_unaligned(a, gh_http_v2_head_text_size(&st->head));
    if (hc == NULL || p == NULL || gh_cleanup_add(a, gh_h2_hc_free, hc)
        == NULL)
    {
        gh_arena_destroy(a);
        gh_h2_reset(st, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    *hc = *h2c->hc;
    /* a stream is accounted on its own, with the connection's max */
    hc->mem.used = 0;
    hc->mem.refused = 0;
    hc->buf.start = hc->buf.pos = hc->buf.last = hc->buf.end = NULL;
    hc->stash = NULL;
    hc->stash_len = 0;
    hc->r = NULL;

    ssize_t len = gh_http_v2_head_build(&st->head, st->has_body, p);
    gh_http_v2_head_free(&st->head);

    gh_http_request_t *r = gh_http_create_request_on(c, hc, a);
    if (r == NULL) {
        gh_h2_reset(st, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    st->r = r;
    r->stream = st;
    h2c->nreq++;
    h2c->hc->requests++;
    gh_http_process_request_text(r, p, (size_t) len, 2000);
}

/* GOAWAY (NO_ERROR) naming the last stream started: those up to it
 * finish, queued ones are refused, nghttp2 closes the later ones once the
 * frame is out; the connection ends when no stream is left (nghttp2 then
 * wants neither to read nor to write) */
static void
gh_h2_goaway(gh_h2_conn_t *h2c)
{
    if (h2c->goaway || h2c->dead) {
        return;
    }
    h2c->goaway = 1;
    nghttp2_submit_goaway(h2c->session, NGHTTP2_FLAG_NONE, h2c->last_started,
        NGHTTP2_NO_ERROR, NULL, 0);
}

/* keepalive_requests, as nginx: after that many streams the connection
 * says GOAWAY */
static void
gh_h2_count_request(gh_h2_conn_t *h2c)
{
    gh_http_core_loc_conf_t *clcf = gh_h2_clcf(h2c);
    if (h2c->hc->requests >= (gh_uint_t) clcf->keepalive_requests) {
        gh_h2_goaway(h2c);
    }
}

/* start queued streams and abort cancelled ones: only from the top of
 * our own handlers, never inside nghttp2 */
static void
gh_h2_run_queue(gh_h2_conn_t *h2c)
{
    while (h2c->start_q && !h2c->dead) {
        gh_h2_stream_t *st = h2c->start_q;
        h2c->start_q = st->qnext;
        if (h2c->start_q == NULL) {
            h2c->start_tail = &h2c->start_q;
        }
        st->queued = 0;
        if (st->aborting) {
            if (st->r) {
                gh_log(GH_LOG_INFO, &h2c->c->log, 0,
                    "client cancelled stream %d", (int) st->id);
                if (!st->r->header_sent) {
                    st->r->headers_out.status = 499;
                }
                gh_http_request_done(st->r, true);
            } else if (st->closed) {
                gh_h2_stream_free(st);
            }
            continue;
        }
        if (st->closed) {
            gh_h2_stream_free(st);
            continue;
        }
        if (h2c->goaway) {
            /* past the GOAWAY's last stream: the client may retry it */
            gh_h2_reset(st, NGHTTP2_REFUSED_STREAM);
            continue;
        }
        /* the request may be over and its stream freed on return */
        h2c->last_started = st->id;
        st->started = 1;
        gh_h2_start(h2c, st);
        gh_h2_count_request(h2c);
    }
}

/* --- the response ---------------------------------------------------- */

static bool
gh_h2_hop_by_hop(const gh_str_t *n)
{
    return gh_str_caseeq_c(n, "connection") || gh_str_caseeq_c(n, "keep-alive")
        || gh_str_caseeq_c(n, "transfer-encoding")
        || gh_str_caseeq_c(n, "upgrade")
        || gh_str_caseeq_c(n, "proxy-connection");
}

static void
gh_h2_nv(nghttp2_nv *nv, const uint8_t *n, size_t nl, const uint8_t *v,
    size_t vl)
{
    nv->name = (uint8_t *) n;
    nv->namelen = nl;
    nv->value = (uint8_t *) v;
    nv->valuelen = vl;
    nv->flags = NGHTTP2_NV_FLAG_NONE;
}

#define NVL(nv, lit, v, vl) gh_h2_nv(nv, (const uint8_t *) lit, \
    sizeof(lit) - 1, (const uint8_t *) (v), vl)

gh_int_t
gh_http_v2_header_filter(gh_http_request_t *r)
{
    gh_h2_stream_t *st = r->stream;
    gh_h2_conn_t *h2c = st->h2c;
    gh_http_headers_out_t *ho = &r->headers_out;
    gh_http_core_loc_conf_t *clcf = gh_http_clcf(r);
    gh_uint_t status = ho->status ? ho->status : 200;

    if (h2c->dead || st->closed) {
        return GH_ERROR;
    }
    if (status == 204 || status == 304 || status < 200) {
        r->header_only = 1;
        ho->content_length_n = -1;
    }
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

    nghttp2_nv *nva = gh_alloc(r->arena, sizeof(nghttp2_nv)
        * (ho->headers.nelts + 5));
    uint8_t *num = gh_alloc_unaligned(r->arena, 48);
    if (nva == NULL || num == NULL) {
        return GH_ERROR;
    }
    size_t n = 0, hsize = 0;
    uint8_t *e = gh_utoa(num, status);
    NVL(&nva[n++], ":status", num, (size_t) (e - num));
    if (ho->server == NULL) {
        if (clcf->server_tokens) {
            NVL(&nva[n++], "server", GH_NAME "/" GH_VERSION,
                sizeof(GH_NAME "/" GH_VERSION) - 1);
        } else {
            NVL(&nva[n++], "server", GH_NAME, sizeof(GH_NAME) - 1);
        }
    }
    if (ho->date == NULL) {
        NVL(&nva[n++], "date", gh_cached_http_time.data,
            gh_cached_http_time.len);
    }
    if (ho->content_type.len) {
        NVL(&nva[n++], "content-type", ho->content_type.data,
            ho->content_type.len);
    }
    if (ho->content_length_n >= 0) {
        uint8_t *s = e + 1;
        uint8_t *t = gh_utoa(s, (uint64_t) ho->content_length_n);
        NVL(&nva[n++], "content-length", s, (size_t) (t - s));
    }
    for (size_t i = 0; i < ho->headers.nelts; i++) {
        gh_http_table_elt_t *h = gh_array_at(&ho->headers,
            gh_http_table_elt_t, i);
        if (h->hash_skip || h->name.len == 0 || gh_h2_hop_by_hop(&h->name))
        {
            continue;
        }
        uint8_t *lc = gh_alloc_unaligned(r->arena, h->name.len);
        if (lc == NULL) {
            return GH_ERROR;
        }
        for (size_t j = 0; j < h->name.len; j++) {
            uint8_t ch = h->name.data[j];
            lc[j] = (ch >= 'A' && ch <= 'Z') ? (uint8_t) (ch | 0x20) : ch;
        }
        gh_str_t v = h->value;
        if (v.len && (memchr(v.data, '\r', v.len)
                      || memchr(v.data, '\n', v.len)
                      || memchr(v.data, '\0', v.len)))
        {
            /* as the HTTP/1 filter: one line whatever variables hold
             * (a client resets a stream with such a field) */
            v.data = gh_alloc_unaligned(r->arena, v.len);
            if (v.data == NULL) {
                return GH_ERROR;
            }
            for (size_t j = 0; j < v.len; j++) {
                uint8_t ch = h->value.data[j];
                v.data[j] = (ch == '\r' || ch == '\n' || ch == '\0')
                    ? ' ' : ch;
            }
        }
        gh_h2_nv(&nva[n++], lc, h->name.len, v.data, v.len);
    }
    for (size_t i = 0; i < n; i++) {
        hsize += nva[i].namelen + nva[i].valuelen + 2;
    }
    r->header_size = hsize;
    r->bytes_sent += (off_t) hsize;

    nghttp2_data_provider dp = { .source.ptr = st,
                                 .read_callback = gh_h2_read_cb };
    int rv = nghttp2_submit_response(h2c->session, st->id, nva, n,
        r->header_only ? NULL : &dp);
    if (rv != 0) {
        gh_log(GH_LOG_ERR, &r->conn->log, 0,
            "nghttp2_submit_response() failed: %s", nghttp2_strerror(rv));
        return GH_ERROR;
    }
    if (r->header_only) {
        r->response_sent = 1;
        gh_h2_send_gather(h2c);
    } else {
        /* the body usually follows at once (the write filter): HEADERS
         * and DATA are made together by the posted write or by it */
        gh_h2_post_send(h2c);
    }
    return h2c->dead ? GH_ERROR : GH_OK;
}

static void
gh_h2_writer(gh_http_request_t *r)
{
    gh_http_writer(r);
}

gh_int_t
gh_http_v2_write_filter(gh_http_request_t *r, gh_chain_t *in)
{
    gh_h2_stream_t *st = r->stream;
    gh_h2_conn_t *h2c = st->h2c;
    bool flush = false, last = false;

    gh_http_out_append(r, in, &flush, &last);
    /* empty bufs (flush, last_buf) are nothing to send */
    while (r->out && gh_buf_size(r->out->buf) == 0) {
        r->out = r->out->next;
    }
    if (last) {
        r->response_sent = 1;
    }
    if (h2c->dead || st->closed) {
        return GH_ERROR;
    }
    if (st->deferred && (r->out || r->response_sent)) {
        st->deferred = 0;
        nghttp2_session_resume_data(h2c->session, st->id);
    }
    gh_h2_send_gather(h2c);
    if (h2c->dead) {
        return GH_ERROR;
    }
    if (r->out == NULL) {
        st->blocked = 0;
        return GH_OK;
    }
    st->blocked = 1;
    r->write_event_handler = gh_h2_writer;
    gh_h2_arm_send_timer(h2c);
    return GH_AGAIN;
}

void
gh_http_v2_request_done(gh_http_request_t *r, bool close)
{
    gh_h2_stream_t *st = r->stream;
    gh_h2_conn_t *h2c = st->h2c;

    if (!h2c->dead && !st->closed
        && (close || !r->response_sent || r->out != NULL))
    {
        gh_h2_reset(st, r->header_sent ? NGHTTP2_INTERNAL_ERROR
                                       : NGHTTP2_REFUSED_STREAM);
        if (!r->header_sent && !close) {
            /* no response at all: nothing to reset into */
        }
    }
    if (r->response_sent && r->out == NULL) {
        st->out_done = 1;
    }
    if (st->rev.timer_set) {
        gh_timer_del(h2c->c->loop, &st->rev);
    }
    /* body bytes no one will read now: back to the client as window */
    if (st->blen > st->bpos && !st->closed && !h2c->dead) {
        nghttp2_session_consume_stream(h2c->session, st->id,
            st->blen - st->bpos);
    }
    h2c->body_buffered -= st->blen - st->bpos;
    st->bpos = st->blen = 0;
    st->rwake = 0;
    st->r = NULL;
    r->stream = NULL;
    gh_arena_destroy(r->arena);
    h2c->nreq--;
    if (st->closed && !st->queued) {
        gh_h2_stream_free(st);
    }
    if (!h2c->dead) {
        gh_h2_send_gather(h2c);
    }
}

/* --- connection I/O -------------------------------------------------- */

static gh_int_t gh_h2_flush(gh_h2_conn_t *h2c);

/* --- lingering close ------------------------------------------------- */

/*
 * The connection ends (GOAWAY after keepalive_requests or a shutdown, an
 * error, a timeout) while the client may still be sending: a body no one
 * reads, frames behind a bad one.  A close() with unread bytes makes the
 * kernel answer with RST, and the client may lose the GOAWAY and the
 * last responses still on their way.  So, as on HTTP/1 (and nginx since
 * 1.19.1): the last frames are written, TLS sends close_notify (one try),
 * the socket is shut for writing, and whatever comes is read raw and
 * dropped until EOF, an error or lingering_timeout, in all as on HTTP/1.
 * Only with a sign of more input (h2c->linger, or bytes waiting in the
 * socket): a quiet connection (an idle one told GOAWAY by a shutdown)
 * closes at once.  A lingering connection leaves the idle list: a
 * quitting worker waits for it as for an HTTP/1 lingering close, at most
 * lingering_timeout (and worker_shutdown_timeout).
 */
static void
gh_h2_linger_read(gh_event_t *ev)
{
    /* raw even on TLS: nothing of it will be decrypted */
    gh_conn_linger_drain(ev, true);
}

static void
gh_h2_linger_shut(gh_h2_conn_t *h2c)
{
    gh_conn_t *c = h2c->c;

    gh_h2_wbuf_release(h2c);
    if (c->tls) {
        gh_tls_close_notify(c);
    }
    /* the read timer set by gh_h2_close bounds it all */
    gh_conn_lingering_close(c, 0, true);
}

/* the last frames wait for the socket: written before the shutdown */
static void
gh_h2_linger_write(gh_event_t *ev)
{
    gh_conn_t *c = ev->data;
    gh_h2_conn_t *h2c = c->data;

    gh_int_t rc = gh_h2_flush(h2c);
    if (rc == GH_AGAIN) {
        return;
    }
    if (rc == GH_ERROR) {
        gh_conn_close(c);
        return;
    }
    gh_h2_linger_shut(h2c);
}

static void
gh_h2_close(gh_h2_conn_t *h2c)
{
    gh_conn_t *c = h2c->c;
    gh_http_core_loc_conf_t *clcf = gh_h2_clcf(h2c);
    int unread = 0;

    if (c->read.error || c->write.error || clcf->lingering_timeout == 0) {
        gh_h2_wbuf_release(h2c);
        gh_conn_close(c);
        return;
    }
    /* bytes unread in the socket make the RST whatever else; past the
     * client's FIN nothing more is coming */
    if ((!h2c->linger || c->read.eof)
        && (ioctl(c->fd, FIONREAD, &unread) == -1 || unread == 0))
    {
        gh_h2_wbuf_release(h2c);
        gh_conn_close(c);
        return;
    }
    gh_conn_set_idle(c, false);
    if (c->read.timer_set) {
        gh_timer_del(c->loop, &c->read);
    }
    gh_timer_add(c->loop, &c->read, clcf->lingering_timeout);
    c->read.handler = gh_h2_linger_read;
    c->write.handler = gh_h2_linger_write;
    if (h2c->wpos < h2c->wlen) {
        /* send_timeout does not apply: lingering_timeout bounds it all */
        if (c->write.timer_set) {
            gh_timer_del(c->loop, &c->write);
        }
        gh_h2_linger_write(&c->write);
        return;
    }
    gh_h2_linger_shut(h2c);
}

static void
gh_h2_teardown(gh_event_t *ev)
{
    gh_h2_conn_t *h2c = ev->data;
    gh_conn_t *c = h2c->c;

    /* requests first: they still use the session and the connection */
    for (gh_h2_stream_t *st = h2c->streams, *nx; st; st = nx) {
        nx = st->next;
        if (st->has_body && !st->in_eof) {
            h2c->linger = 1;         /* a request body still coming */
        }
        if (st->r) {
            gh_http_request_done(st->r, true);
        }
    }
    h2c->freed = 1;
    if (h2c->send_ev.posted) {
        gh_delete_posted_event(c->loop, &h2c->send_ev);
    }
    nghttp2_session_del(h2c->session);
    h2c->session = NULL;
    while (h2c->streams) {
        gh_h2_stream_free(h2c->streams);
    }
    gh_h2_close(h2c);
}

static void
gh_h2_fail(gh_h2_conn_t *h2c)
{
    if (h2c->dead) {
        return;
    }
    h2c->dead = 1;
    h2c->close_ev.data = h2c;
    h2c->close_ev.handler = gh_h2_teardown;
    gh_post_event(h2c->c->loop, &h2c->close_ev);
}

/* flush h2c->wbuf; GH_OK when empty */
static gh_int_t
gh_h2_flush(gh_h2_conn_t *h2c)
{
    gh_conn_t *c = h2c->c;
    while (h2c->wpos < h2c->wlen) {
        ssize_t n = c->send(c, h2c->wbuf + h2c->wpos, h2c->wlen - h2c->wpos);
        if (n == GH_AGAIN) {
            return GH_AGAIN;
        }
        if (n <= 0) {
            return GH_ERROR;
        }
        h2c->wpos += (size_t) n;
        c->sent += n;
    }
    h2c->wpos = h2c->wlen = 0;
    return GH_OK;
}

/* append one chunk of nghttp2's output to h2c->wbuf */
static void
gh_h2_wbuf_add(gh_h2_conn_t *h2c, const uint8_t *data, size_t n)
{
    if (h2c->wcap - h2c->wlen < n && h2c->wpos > 0) {
        memmove(h2c->wbuf, h2c->wbuf + h2c->wpos, h2c->wlen - h2c->wpos);
        h2c->wlen -= h2c->wpos;
        h2c->wpos = 0;
    }
    if (h2c->wcap - h2c->wlen < n) {
        size_t cap = h2c->wcap ? h2c->wcap : GH_H2_WBUF;
        while (cap - h2c->wlen < n) {
            cap *= 2;
        }
        h2c->wbuf = gh_xrealloc(h2c->wbuf, cap);
        h2c->wcap = cap;
    }
    memcpy(h2c->wbuf + h2c->wlen, data, n);
    h2c->wlen += n;
}

static void
gh_h2_wbuf_release(gh_h2_conn_t *h2c)
{
    free(h2c->wbuf);
    h2c->wbuf = NULL;
    h2c->wpos = h2c->wlen = h2c->wcap = 0;
}

/* wake producers whose r->out has drained */
static void
gh_h2_wake(gh_h2_conn_t *h2c)
{
    /* a handler may free streams: start over after each (each wake
     * clears its `blocked`, so this ends) */
again:
    for (gh_h2_stream_t *st = h2c->streams; st && !h2c->dead; st = st->next)
    {
        if (st->r && st->blocked && st->r->out == NULL) {
            st->blocked = 0;
            st->r->write_event_handler(st->r);
            goto again;
        }
    }
}

/* DATA or END_STREAM came for requests: their read_event_handler (a body
 * reader, or the proxy's client watcher) runs, outside nghttp2 */
static void
gh_h2_wake_readers(gh_h2_conn_t *h2c)
{
again:
    for (gh_h2_stream_t *st = h2c->streams; st && !h2c->dead; st = st->next)
    {
        if (st->rwake && st->r) {
            st->rwake = 0;
            st->r->read_event_handler(st->r);
            goto again;
        }
    }
}

/* make frames into h2c->wbuf, writing them when GH_H2_WBUF gathered and,
 * with `now`, at the end; without, the write is posted (send_ev) */
static void
gh_h2_send_once(gh_h2_conn_t *h2c, bool now)
{
    gh_int_t rc;

    for (;;) {
        if (h2c->wlen - h2c->wpos >= GH_H2_WBUF) {
            rc = gh_h2_flush(h2c);
            if (rc == GH_ERROR) {
                gh_h2_fail(h2c);
                return;
            }
            if (rc == GH_AGAIN) {
                return;
            }
        }
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(h2c->session, &data);
        if (n < 0) {
            gh_h2_fail(h2c);
            return;
        }
        if (n == 0) {
            break;
        }
        gh_h2_wbuf_add(h2c, data, (size_t) n);
    }
    if (h2c->wpos == h2c->wlen) {
        return;
    }
    if (!now) {
        gh_h2_post_send(h2c);
        return;
    }
    if (gh_h2_flush(h2c) == GH_ERROR) {
        gh_h2_fail(h2c);
    }
}

/* frames out: written at once (`now`) or gathered for the posted write */
static void
gh_h2_output(gh_h2_conn_t *h2c, bool now)
{
    if (h2c->dead || h2c->freed) {
        return;
    }
    h2c->send_now |= now;
    if (h2c->sending) {
        h2c->send_again = 1;
        return;
    }
    if (gh_conns.quitting) {
        /* normally sent when shutdown began (the read handler) */
        gh_h2_goaway(h2c);
    }
    h2c->sending = 1;
    do {
        h2c->send_again = 0;
        gh_h2_send_once(h2c, h2c->send_now);
        if (!h2c->dead) {
            gh_h2_wake(h2c);
        }
    } while (h2c->send_again && !h2c->dead);
    h2c->sending = 0;
    h2c->send_now = 0;
    if (h2c->dead) {
        return;
    }
    if (!nghttp2_session_want_read(h2c->session)
        && !nghttp2_session_want_write(h2c->session) && h2c->wlen == 0)
    {
        gh_h2_fail(h2c);
        return;
    }
    gh_conn_t *c = h2c->c;
    gh_http_core_loc_conf_t *clcf = gh_h2_clcf(h2c);
    if (h2c->streams == NULL) {
        if (h2c->wpos == h2c->wlen && h2c->wbuf) {
            /* idle: no buffer held (it is malloc'd again when needed) */
            gh_h2_wbuf_release(h2c);
        }
        if (!c->read.timer_set) {
            gh_timer_add(c->loop, &c->read, clcf->keepalive_timeout
                ? clcf->keepalive_timeout : 1);
        }
    } else if (h2c->nreq == 0 && !c->read.timer_set) {
        /* streams still arriving (headers, a request body) and nothing
         * running: the client must keep sending (slowloris) */
        gh_timer_add(c->loop, &c->read,
            h2c->hc->addr_conf->default_server->client_header_timeout);
    }
    gh_h2_arm_send_timer(h2c);
}

static void
gh_h2_send(gh_h2_conn_t *h2c)
{
    gh_h2_output(h2c, true);
}

/* from the filters and the end of a request: the frames wait for the
 * posted write, with those of other streams answered meanwhile */
static void
gh_h2_send_gather(gh_h2_conn_t *h2c)
{
    gh_h2_output(h2c, false);
}

/* send_timeout: between two successful writes while something waits for
 * the client (a full socket, or a zero window: a stalled reader) */
static void
gh_h2_arm_send_timer(gh_h2_conn_t *h2c)
{
    gh_conn_t *c = h2c->c;
    gh_http_core_loc_conf_t *clcf = gh_h2_clcf(h2c);
    bool waiting = h2c->wlen > 0;
    for (gh_h2_stream_t *st = h2c->streams; st && !waiting; st = st->next) {
        waiting = st->r && st->blocked;
    }
    if (!waiting) {
        if (c->write.timer_set) {
            gh_timer_del(c->loop, &c->write);
        }
    } else if (!c->write.timer_set || c->sent != h2c->last_sent) {
        h2c->last_sent = c->sent;
        gh_timer_add(c->loop, &c->write, clcf->send_timeout);
    }
}

static void
gh_h2_feed(gh_h2_conn_t *h2c, const uint8_t *p, size_t n)
{
    ssize_t rv = nghttp2_session_mem_recv(h2c->session, p, n);
    if (rv < 0) {
        gh_log(GH_LOG_INFO, &h2c->c->log, 0, "http2 error: %s",
            nghttp2_strerror((int) rv));
        if (rv != NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
            nghttp2_session_terminate_session(h2c->session,
                NGHTTP2_PROTOCOL_ERROR);
            gh_h2_send(h2c);
            /* more frames may follow the bad one: the GOAWAY must not be
             * lost to a reset */
            h2c->linger = 1;
        }
        gh_h2_fail(h2c);
        return;
    }
    gh_h2_run_queue(h2c);
    gh_h2_wake_readers(h2c);
}

static void
gh_h2_read_handler(gh_event_t *ev)
{
    gh_conn_t *c = ev->data;
    gh_h2_conn_t *h2c = c->data;
    uint8_t buf[GH_H2_RBUF];

    if (h2c->dead) {
        return;
    }
    if (ev->timedout) {
        ev->timedout = 0;
        nghttp2_session_terminate_session(h2c->session, NGHTTP2_NO_ERROR);
        gh_h2_send(h2c);
        gh_h2_fail(h2c);
        return;
    }
    if (c->close) {
        /* worker shutdown (gh_conn_close_idle): GOAWAY, the streams under
         * way go on, the socket is read on for their frames */
        c->close = 0;
        gh_h2_goaway(h2c);
    }
    while (c->read.ready && !h2c->dead) {
        ssize_t n = c->recv(c, buf, sizeof(buf));
        if (n == GH_AGAIN) {
            break;
        }
        if (n <= 0) {
            gh_h2_fail(h2c);
            return;
        }
        if (c->read.timer_set) {
            gh_timer_del(c->loop, &c->read);   /* re-armed by gh_h2_send */
        }
        gh_h2_feed(h2c, buf, (size_t) n);
    }
    gh_h2_send(h2c);
}

static void
gh_h2_write_handler(gh_event_t *ev)
{
    gh_conn_t *c = ev->data;
    gh_h2_conn_t *h2c = c->data;
    if (h2c->dead) {
        return;
    }
    if (ev->timedout) {
        ev->timedout = 0;
        gh_log(GH_LOG_INFO, &c->log, 0, "client timed out");
        gh_h2_fail(h2c);
        return;
    }
    gh_h2_send(h2c);
}

/* the connection went away without our teardown (it should not): at
 * least the session and the streams do not leak */
static void
gh_h2_cleanup(void *data)
{
    gh_h2_conn_t *h2c = data;
    if (h2c->freed) {
        /* a lingering close may end with frames still unwritten */
        gh_h2_wbuf_release(h2c);
        return;
    }
    h2c->freed = 1;
    if (h2c->send_ev.posted) {
        gh_delete_posted_event(h2c->c->loop, &h2c->send_ev);
    }
    if (h2c->close_ev.posted) {
        gh_delete_posted_event(h2c->c->loop, &h2c->close_ev);
    }
    nghttp2_session_del(h2c->session);
    h2c->session = NULL;
    while (h2c->streams) {
        gh_h2_stream_free(h2c->streams);
    }
    gh_h2_wbuf_release(h2c);
}

static void
gh_http_v2_init(gh_conn_t *c)
{
    gh_http_connection_t *hc = c->data;
    gh_http_core_srv_conf_t *cscf = hc->addr_conf->default_server;
    gh_http_v2_srv_conf_t *h2scf =
        cscf->ctx->srv_conf[gh_http_v2_module.index];
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;

    gh_h2_conn_t *h2c = gh_calloc(gh_http_conn_arena(c), sizeof(*h2c));
    if (h2c == NULL) {
        gh_conn_close(c);
        return;
    }
    h2c->c = c;
    h2c->hc = hc;
    h2c->start_tail = &h2c->start_q;
    h2c->header_max = (size_t) cscf->large_client_header_buffers_num
        * cscf->large_client_header_buffers_size;
    if (h2c->header_max < 4096) {
        h2c->header_max = 4096;
    }
    if (nghttp2_session_callbacks_new(&cb) != 0
        || nghttp2_option_new(&opt) != 0)
    {
        goto failed;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
        gh_h2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, gh_h2_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb,
        gh_h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
        gh_h2_on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb,
        gh_h2_on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb,
        gh_h2_on_frame_send);
    /* windows come back as the requests read their bodies */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* floods: SETTINGS with many entries, unread ACKs piling up */
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    if (nghttp2_session_server_new2(&h2c->session, cb, h2c, opt) != 0) {
        goto failed;
    }
    if (gh_cleanup_add(c->arena, gh_h2_cleanup, h2c) == NULL) {
        goto failed;
    }
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    cb = NULL;
    opt = NULL;

    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
          (uint32_t) h2scf->max_concurrent_streams },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t) h2c->header_max },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, GH_H2_STREAM_WINDOW },
    };
    if (nghttp2_submit_settings(h2c->session, NGHTTP2_FLAG_NONE, iv, 3)
        != 0
        || nghttp2_session_set_local_window_size(h2c->session,
               NGHTTP2_FLAG_NONE, 0, GH_H2_CONN_WINDOW) != 0)
    {
        goto failed;
    }

    if (c->read.timer_set) {
        gh_timer_del(c->loop, &c->read);
    }
    c->data = h2c;
    c->read.handler = gh_h2_read_handler;
    c->write.handler = gh_h2_write_handler;
    c->write.ready = 1;
    /* idle or not, a graceful shutdown must reach it (see the top) */
    gh_conn_set_idle(c, true);

    /* bytes read already (the client preface on a cleartext listener) */
    if (hc->buf.start && hc->buf.last > hc->buf.pos) {
        gh_h2_feed(h2c, hc->buf.pos, (size_t) (hc->buf.last - hc->buf.pos));
        hc->buf.pos = hc->buf.last;
    }
    if (!h2c->dead) {
        c->read.ready = 1;
        gh_h2_read_handler(&c->read);
    }
    return;

failed:
    if (cb) {
        nghttp2_session_callbacks_del(cb);
    }
    if (opt) {
        nghttp2_option_del(opt);
    }
    if (h2c->session) {
        nghttp2_session_del(h2c->session);
        h2c->session = NULL;
        h2c->freed = 1;
    }
    gh_conn_close(c);
}
