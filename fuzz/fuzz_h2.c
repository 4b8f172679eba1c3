/*
 * fuzz_h2.c: libFuzzer target for HTTP/2 request heads: an nghttp2
 * server session set up as gh_http_v2.c sets it up (the same options and
 * settings), fed the client preface and then the input (in pieces whose
 * sizes come from the input), with callbacks that collect each stream's
 * fields through gh_http_v2_head_add() and, at the end of a header block,
 * rebuild the head with gh_http_v2_head_build() and parse it with the
 * HTTP/1 parser.
 *
 * Checks: the rebuilt text fits the size promised; it is either refused
 * by the HTTP/1 parser or read whole, never as a shorter head (a field
 * that smuggled a line); a head that parses names the method and path
 * the stream sent; no field is kept past the header list limit; nothing
 * leaks (ASan), whatever the session does with the input.
 */
#include "http/v2/gh_http_v2_head.h"
#include "http/gh_http_parse.h"
#include <nghttp2/nghttp2.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

#define HEADER_MAX  4096
#define MAXH        64

/* the heads of the streams still open: nghttp2_session_del() frees its
 * streams without on_stream_close */
typedef struct node_s node_t;
struct node_s {
    gh_http_v2_head_t  h;
    node_t            *prev, *next;
};
static node_t *live;

static void
node_free(node_t *n)
{
    if (n->prev) {
        n->prev->next = n->next;
    } else {
        live = n->next;
    }
    if (n->next) {
        n->next->prev = n->prev;
    }
    gh_http_v2_head_free(&n->h);
    free(n);
}

static int
on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void) ud;
    if (f->hd.type != NGHTTP2_HEADERS
        || f->headers.cat != NGHTTP2_HCAT_REQUEST)
    {
        return 0;
    }
    node_t *n = calloc(1, sizeof(*n));
    n->h.max = HEADER_MAX;
    n->next = live;
    if (live) {
        live->prev = n;
    }
    live = n;
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, n);
    return 0;
}

static int
on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
    size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void) flags;
    (void) ud;
    gh_http_v2_head_t *h = nghttp2_session_get_stream_user_data(s,
        f->hd.stream_id);
    if (h == NULL || f->hd.type != NGHTTP2_HEADERS
        || f->headers.cat != NGHTTP2_HCAT_REQUEST)
    {
        return 0;
    }
    if (gh_http_v2_head_add(h, name, nlen, value, vlen) != GH_OK) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    CHECK(h->size <= h->max && h->hlen <= h->max && h->clen <= h->max);
    return 0;
}

static void
rebuild(gh_http_v2_head_t *h, bool has_body)
{
    static gh_http_header_t hd[MAXH];
    gh_http_request_head_t r;
    const gh_http_limits_t lim = { 2 * HEADER_MAX, 2 * HEADER_MAX, MAXH };
    size_t bound = gh_http_v2_head_text_size(h), nh = 0;
    uint8_t *text = malloc(bound);

    ssize_t n = gh_http_v2_head_build(h, has_body, text);
    if (n < 0) {
        CHECK(h->method.data == NULL || h->path.data == NULL);
        free(text);
        return;
    }
    CHECK((size_t) n <= bound);
    memset(&r, 0, sizeof(r));
    ssize_t rc = gh_http_parse_request_head(text, (size_t) n, &r, hd, &nh,
        &lim);
    CHECK(rc == n || (rc < 0 && rc != GH_AGAIN));
    if (rc == n) {
        CHECK(r.method.len == h->method.len
              && memcmp(r.method.data, h->method.data, h->method.len) == 0);
        CHECK(r.target.len == h->path.len
              && memcmp(r.target.data, h->path.data, h->path.len) == 0);
    }
    free(text);
}

static int
on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void) ud;
    if (f->hd.type != NGHTTP2_HEADERS
        || f->headers.cat != NGHTTP2_HCAT_REQUEST)
    {
        return 0;
    }
    gh_http_v2_head_t *h = nghttp2_session_get_stream_user_data(s,
        f->hd.stream_id);
    if (h) {
        rebuild(h, !(f->hd.flags & NGHTTP2_FLAG_END_STREAM));
        gh_http_v2_head_free(h);
    }
    return 0;
}

static int
on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id,
    const uint8_t *d, size_t len, void *ud)
{
    (void) flags;
    (void) d;
    (void) ud;
    /* gatehouse gives the windows back as the request reads */
    nghttp2_session_consume(s, id, len);
    return 0;
}

static int
on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    (void) code;
    (void) ud;
    node_t *n = nghttp2_session_get_stream_user_data(s, id);
    if (n) {
        node_free(n);
        nghttp2_session_set_stream_user_data(s, id, NULL);
    }
    return 0;
}

static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    nghttp2_session *s;
    const uint8_t *out;

    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
        on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
        on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb,
        on_stream_close);
    nghttp2_option_new(&opt);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    CHECK(nghttp2_session_server_new2(&s, cb, NULL, opt) == 0);
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);

    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 16 },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, HEADER_MAX },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535 },
    };
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, 3);

    ssize_t rv = nghttp2_session_mem_recv(s, preface, sizeof(preface) - 1);
    CHECK(rv == (ssize_t) sizeof(preface) - 1);
    /* the first byte picks the piece size: frames split anywhere */
    size_t piece = size ? (size_t) data[0] * 7 + 1 : 1;
    for (size_t off = size ? 1 : 0; off < size && rv >= 0; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        rv = nghttp2_session_mem_recv(s, data + off, n);
        /* what gatehouse would send back, discarded */
        while (rv >= 0 && nghttp2_session_mem_send(s, &out) > 0) {
        }
    }
    nghttp2_session_del(s);
    while (live) {
        node_free(live);
    }
    return 0;
}
