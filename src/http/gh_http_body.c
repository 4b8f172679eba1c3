/*
 * gh_http_body.c: reading (or discarding) a client request body.
 *
 * Bytes come first from what followed the head in the connection buffer,
 * then from the socket through a scratch buffer.  Content-Length bodies
 * are read to the byte; chunked bodies go through the incremental decoder
 * and whatever follows the last chunk (a pipelined request) is stashed
 * for the connection.  A body that outgrows client_body_buffer_size is
 * spooled to an unlinked temp file (O_TMPFILE) in client_body_temp_path,
 * written with pwrite() in blocks of up to GH_BODY_READ_MAX bytes (one
 * recv, one write: the per-call cost of an ext4 write, which updates the
 * inode times, dominates at 16 KiB); from a plain socket, the rest of a
 * Content-Length body of GH_BODY_SPLICE_MIN or more is spliced into the
 * file instead (gh_http_body_splice).  Temp files are reused: a request's
 * file goes back to a small per-worker pool when it ends and the next
 * spooled body in the same directory overwrites it from offset 0, which
 * saves the open(O_TMPFILE) and the close() that frees the file's pages
 * (together about a quarter of a 1 MiB body's cost on ext4).  A reused
 * file may be longer than the new body; every reader stops at the
 * buffer's file_last.
 * On an HTTP/2 stream the bytes come unframed from gh_http_v2_read_body()
 * instead of the socket (a body without a length is "chunked" there only
 * in name), and the body timer is the stream's own event.
 */
#include "gh_http_request.h"
#include "v2/gh_http_v2.h"
#include "../event/gh_splice.h"
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

typedef struct {
    gh_http_request_body_t  rb;
    gh_buf_t               *mem;       /* in-memory body */
    bool                    discard;
    bool                    chunked;
    off_t                   max;       /* client_max_body_size, 0 = none */
    off_t                   file_off;  /* bytes written to temp_fd */
    off_t                   file_size; /* temp_fd's length (a reused file) */
    const char             *file_dir;  /* client_body_temp_path of temp_fd */
} gh_http_body_ctx_t;

/* one recv from the client while a body is read: a per-worker buffer, so
 * no request holds it across events */
#define GH_BODY_READ_MAX  (128 * 1024)

/*
 * The per-worker pool of spooled-body temp files.  Bounded three ways: at
 * most GH_BODY_POOL_FILES files, none longer than GH_BODY_POOL_FILE_MAX
 * (a longer one is closed, freeing its pages), GH_BODY_POOL_BYTES in all
 * (that much page cache per worker, written back to disk by the kernel
 * at its own pace like any file's).
 */
#define GH_BODY_POOL_FILES     32
#define GH_BODY_POOL_FILE_MAX  (4 * 1024 * 1024)
#define GH_BODY_POOL_BYTES     (32 * 1024 * 1024)

typedef struct {
    int     fd;
    off_t   size;
    char   *dir;                        /* gh_xmalloc'd copy */
} gh_body_file_t;

static gh_body_file_t gh_body_pool[GH_BODY_POOL_FILES];
static unsigned       gh_body_pool_n;
static off_t          gh_body_pool_bytes;

/* a pooled temp file in `dir`, or -1 */
static int
gh_body_pool_get(const char *dir, off_t *size)
{
    for (unsigned i = gh_body_pool_n; i-- > 0;) {
        gh_body_file_t *f = &gh_body_pool[i];
        if (strcmp(f->dir, dir) != 0) {
            continue;
        }
        int fd = f->fd;
        *size = f->size;
        gh_body_pool_bytes -= f->size;
        free(f->dir);
        *f = gh_body_pool[--gh_body_pool_n];
        return fd;
    }
    return -1;
}

/* keep fd for the next body, or close it */
static void
gh_body_pool_put(int fd, off_t size, const char *dir)
{
    if (dir == NULL || size > GH_BODY_POOL_FILE_MAX
        || gh_body_pool_n == GH_BODY_POOL_FILES
        || gh_body_pool_bytes + size > GH_BODY_POOL_BYTES)
    {
        close(fd);
        return;
    }
    size_t len = strlen(dir) + 1;
    gh_body_file_t *f = &gh_body_pool[gh_body_pool_n++];
    f->fd = fd;
    f->size = size;
    f->dir = gh_xmalloc(len);
    memcpy(f->dir, dir, len);
    gh_body_pool_bytes += size;
}

/* write all of p at the body's file offset */
static gh_int_t
gh_http_body_file_write(gh_http_request_t *r, gh_http_body_ctx_t *bc,
    const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = pwrite(bc->rb.temp_fd, p, n, bc->file_off);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            gh_log(GH_LOG_CRIT, &r->conn->log, errno,
                "write() to temp file failed");
            return GH_ERROR;
        }
        p += w;
        n -= (size_t) w;
        bc->file_off += w;
    }
    return GH_OK;
}

static void gh_http_read_body_handler(gh_http_request_t *r);

gh_event_t *
gh_http_client_read_event(gh_http_request_t *r)
{
    return r->stream ? gh_http_v2_body_event(r) : &r->conn->read;
}
static void gh_http_discard_handler(gh_http_request_t *r);

bool
gh_http_body_pending(gh_http_request_t *r)
{
    if (r->request_body) {
        return !r->request_body->done;
    }
    return r->headers_in.content_length_n > 0 || r->headers_in.chunked;
}

static void
gh_http_body_file_cleanup(void *data)
{
    gh_http_body_ctx_t *bc = data;
    if (bc->rb.temp_fd >= 0) {
        gh_body_pool_put(bc->rb.temp_fd, gh_max(bc->file_size, bc->file_off),
            bc->file_dir);
        bc->rb.temp_fd = -1;
    }
}

static gh_http_body_ctx_t *
gh_http_body_ctx(gh_http_request_t *r, bool discard)
{
    gh_http_body_ctx_t *bc = (gh_http_body_ctx_t *) r->request_body;
    if (bc) {
        return bc;
    }
    bc = gh_calloc(r->arena, sizeof(*bc));
    if (bc == NULL) {
        return NULL;
    }
    bc->rb.temp_fd = -1;
    bc->rb.last = &bc->rb.bufs;
    bc->discard = discard;
    bc->chunked = r->headers_in.chunked;
    bc->rb.rest = bc->chunked ? -1 : gh_max(r->headers_in.content_length_n, 0);
    if (!bc->chunked && bc->rb.rest == 0) {
        bc->rb.done = 1;
    }
    if (!discard) {
        bc->max = gh_http_clcf(r)->client_max_body_size;
    }
    if (gh_cleanup_add(r->arena, gh_http_body_file_cleanup, bc) == NULL) {
        return NULL;
    }
    r->request_body = &bc->rb;
    return bc;
}

static gh_int_t
gh_http_body_spool(gh_http_request_t *r, gh_http_body_ctx_t *bc)
{
    gh_http_core_loc_conf_t *clcf = gh_http_clcf(r);
    const char *dir = clcf->client_body_temp_path;
    off_t size = 0;
    int fd = gh_body_pool_get(dir, &size);
    if (fd == -1) {
        fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    }
    if (fd == -1 && errno == ENOENT) {
        mkdir(dir, 0700);
        fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    }
    if (fd == -1) {
        gh_log(GH_LOG_CRIT, &r->conn->log, errno,
            "open() temp file in \"%s\" failed", dir);
        return GH_ERROR;
    }
    bc->rb.temp_fd = fd;
    bc->file_off = 0;
    bc->file_size = size;
    /* the conf outlives the request, and so this cleanup */
    bc->file_dir = dir;
    gh_buf_t *mem = bc->mem;
    bc->mem = NULL;
    if (mem && mem->last > mem->pos) {
        return gh_http_body_file_write(r, bc, mem->pos,
            (size_t) (mem->last - mem->pos));
    }
    return GH_OK;
}

/* store decoded body bytes */
static gh_int_t
gh_http_body_store(gh_http_request_t *r, gh_http_body_ctx_t *bc,
    const uint8_t *p, size_t n)
{
    bc->rb.received += (off_t) n;
    if (bc->max && bc->rb.received > bc->max) {
        gh_log(GH_LOG_ERR, &r->conn->log, 0, "client intended to send too "
            "large chunked body: %lld+ bytes", (long long) bc->rb.received);
        return 413;
    }
    if (bc->discard || n == 0) {
        return GH_OK;
    }
    if (bc->rb.temp_fd < 0) {
        if (bc->mem == NULL) {
            size_t size = gh_http_clcf(r)->client_body_buffer_size;
            if (!bc->chunked && bc->rb.rest >= 0
                && (size_t) bc->rb.rest + n < size)
            {
                size = (size_t) bc->rb.rest + n;
            }
            bc->mem = gh_buf_create(r->arena, gh_max(size, 1));
            if (bc->mem == NULL) {
                return 500;
            }
        }
        if ((size_t) (bc->mem->end - bc->mem->last) >= n) {
            memcpy(bc->mem->last, p, n);
            bc->mem->last += n;
            return GH_OK;
        }
        if (gh_http_body_spool(r, bc) != GH_OK) {
            return 500;
        }
    }
    return gh_http_body_file_write(r, bc, p, n) == GH_OK ? GH_OK : 500;
}

/* feed raw bytes; *used receives how many belonged to the body */
static gh_int_t
gh_http_body_feed(gh_http_request_t *r, gh_http_body_ctx_t *bc,
    const uint8_t *p, size_t n, size_t *used)
{
    *used = 0;
    if (!bc->chunked) {
        size_t take = (size_t) gh_min((off_t) n, bc->rb.rest);
        gh_int_t rc = gh_http_body_store(r, bc, p, take);
        if (rc != GH_OK) {
            return rc;
        }
        bc->rb.rest -= (off_t) take;
        *used = take;
        if (bc->rb.rest == 0) {
            bc->rb.done = 1;
        }
        return GH_OK;
    }
    while (*used < n) {
        size_t consumed = 0, dlen = 0;
        const uint8_t *data = NULL;
        gh_int_t rc = gh_http_parse_chunked(&bc->rb.chunked, p + *used,
            n - *used, &consumed, &data, &dlen);
        *used += consumed;
        if (rc == GH_ERROR) {
            gh_log(GH_LOG_INFO, &r->conn->log, 0,
                "client sent invalid chunked body");
            return 400;
        }
        if (dlen) {
            gh_int_t src = gh_http_body_store(r, bc, data, dlen);
            if (src != GH_OK) {
                return src;
            }
        }
        if (rc == GH_DONE) {
            bc->rb.done = 1;
            return GH_OK;
        }
        if (rc == GH_AGAIN) {
            return GH_OK;
        }
    }
    return GH_OK;
}

/* the HTTP/2 stream's DATA until GH_AGAIN or its end */
static gh_int_t
gh_http_body_step_v2(gh_http_request_t *r, gh_http_body_ctx_t *bc)
{
    uint8_t scratch[16384];

    while (!bc->rb.done) {
        size_t want = sizeof(scratch);
        if (!bc->chunked && bc->rb.rest < (off_t) want) {
            want = (size_t) bc->rb.rest;
        }
        ssize_t n = gh_http_v2_read_body(r, scratch, want);
        if (n == GH_AGAIN) {
            return GH_AGAIN;
        }
        if (n < 0 || (n == 0 && !bc->chunked)) {
            /* reset, or shorter than its content-length (nghttp2 has
             * reset such a stream already) */
            gh_log(GH_LOG_INFO, &r->conn->log, 0,
                "client prematurely closed stream");
            return 400;
        }
        if (n == 0) {
            bc->rb.done = 1;
            break;
        }
        r->request_length += n;
        gh_int_t rc = gh_http_body_store(r, bc, scratch, (size_t) n);
        if (rc != GH_OK) {
            return rc;
        }
        if (!bc->chunked) {
            bc->rb.rest -= n;
            if (bc->rb.rest == 0) {
                bc->rb.done = 1;
            }
        }
    }
    return GH_OK;
}

/*
 * The rest of a Content-Length body going to its temp file, from a plain
 * socket: spliced (socket -> pipe -> file), one copy instead of recv's
 * and pwrite's two.  Below GH_BODY_SPLICE_MIN the recv path is as cheap.
 */
#define GH_BODY_SPLICE_MIN  (64 * 1024)

static gh_int_t
gh_http_body_splice(gh_http_request_t *r, gh_http_body_ctx_t *bc)
{
    gh_conn_t *c = r->conn;
    off_t      rest = bc->rb.rest, before = bc->file_off;
    bool       file_failed;

    gh_int_t rc = gh_splice_to_file(c, bc->rb.temp_fd, &bc->file_off, &rest,
        &file_failed);
    off_t got = bc->file_off - before;
    bc->rb.rest = rest;
    bc->rb.received += got;
    r->request_length += got;
    switch (rc) {
    case GH_OK:
        bc->rb.done = 1;
        return GH_OK;
    case GH_AGAIN:
        return GH_AGAIN;
    case GH_DONE:
        gh_log(GH_LOG_INFO, &c->log, 0,
            "client prematurely closed connection");
        r->keepalive = 0;
        return 400;
    default:
        if (file_failed) {
            gh_log(GH_LOG_CRIT, &c->log, errno,
                "splice() to temp file failed");
            return 500;
        }
        gh_log(GH_LOG_INFO, &c->log, errno,
            "splice() failed while reading client request body");
        r->keepalive = 0;
        return 400;
    }
}

/* one pass: buffered bytes, then the socket until EAGAIN or done */
static gh_int_t
gh_http_body_step(gh_http_request_t *r, gh_http_body_ctx_t *bc)
{
    gh_http_connection_t *hc = r->http_conn;
    gh_conn_t *c = r->conn;
    size_t used;
    static uint8_t scratch[GH_BODY_READ_MAX];

    if (r->stream) {
        return gh_http_body_step_v2(r, bc);
    }
    if (!bc->rb.done && hc->buf.start && hc->buf.last > hc->buf.pos) {
        gh_int_t rc = gh_http_body_feed(r, bc, hc->buf.pos,
            (size_t) (hc->buf.last - hc->buf.pos), &used);
        hc->buf.pos += used;
        r->request_length += (off_t) used;
        if (rc != GH_OK) {
            return rc;
        }
    }
    while (!bc->rb.done) {
        if (!c->read.ready) {
            return GH_AGAIN;
        }
        if (bc->rb.temp_fd >= 0 && !bc->chunked && !bc->discard
            && c->recv == gh_unix_recv && bc->rb.rest >= GH_BODY_SPLICE_MIN)
        {
            return gh_http_body_splice(r, bc);
        }
        size_t want = sizeof(scratch);
        if (!bc->chunked && bc->rb.rest < (off_t) want) {
            want = (size_t) bc->rb.rest;
        }
        ssize_t n = c->recv(c, scratch, want);
        if (n == GH_AGAIN) {
            return GH_AGAIN;
        }
        if (n <= 0) {
            gh_log(GH_LOG_INFO, &c->log, 0,
                "client prematurely closed connection");
            r->keepalive = 0;
            return 400;
        }
        gh_int_t rc = gh_http_body_feed(r, bc, scratch, (size_t) n, &used);
        r->request_length += (off_t) used;
        if (rc != GH_OK) {
            return rc;
        }
        if (used < (size_t) n) {
            /* a pipelined request followed the chunked body */
            size_t left = (size_t) n - used;
            /* bytes the client sent: charged whatever the cap */
            gh_mem_charge_force(&hc->mem, left);
            hc->stash = gh_xrealloc(hc->stash, hc->stash_len + left);
            memcpy(hc->stash + hc->stash_len, scratch + used, left);
            hc->stash_len += left;
        }
    }
    return GH_OK;
}

static void
gh_http_body_finish(gh_http_request_t *r, gh_http_body_ctx_t *bc)
{
    gh_event_t *rev = gh_http_client_read_event(r);
    if (rev->timer_set) {
        gh_timer_del(r->conn->loop, rev);
    }
    if (bc->discard) {
        return;
    }
    gh_buf_t *b = NULL;
    if (bc->rb.temp_fd >= 0) {
        b = gh_calloc(r->arena, sizeof(*b));
        if (b) {
            b->in_file = 1;
            b->fd = bc->rb.temp_fd;
            b->file_pos = 0;
            b->file_last = bc->rb.received;
        }
    } else if (bc->mem) {
        b = bc->mem;
    }
    if (b) {
        gh_chain_t *cl = gh_chain_link(r->arena, b);
        if (cl) {
            *bc->rb.last = cl;
            bc->rb.last = &cl->next;
        }
    }
}

static void
gh_http_send_continue(gh_http_request_t *r)
{
    gh_http_connection_t *hc = r->http_conn;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (!r->headers_in.expect_continue || r->expect_sent
        || (hc->buf.start && hc->buf.last > hc->buf.pos))
    {
        return;
    }
    r->expect_sent = 1;
    /* best effort, a few bytes into an empty socket buffer */
    (void) r->conn->send(r->conn, (const uint8_t *) cont, sizeof(cont) - 1);
}

gh_int_t
gh_http_read_client_request_body(gh_http_request_t *r,
    gh_http_client_body_handler_pt post_handler)
{
    gh_http_body_ctx_t *bc = gh_http_body_ctx(r, false);
    if (bc == NULL) {
        return 500;
    }
    if (bc->discard) {
        return 500;
    }
    bc->rb.post_handler = post_handler;
    if (!bc->rb.done) {
        gh_http_send_continue(r);
    }
    gh_int_t rc = gh_http_body_step(r, bc);
    if (rc == GH_AGAIN) {
        r->reading_body = 1;
        r->read_event_handler = gh_http_read_body_handler;
        gh_timer_add(r->conn->loop, gh_http_client_read_event(r),
            gh_http_clcf(r)->client_body_timeout);
        return GH_AGAIN;
    }
    if (rc != GH_OK) {
        return rc;
    }
    gh_http_body_finish(r, bc);
    post_handler(r);
    return GH_OK;
}

static void
gh_http_read_body_handler(gh_http_request_t *r)
{
    gh_http_body_ctx_t *bc = (gh_http_body_ctx_t *) r->request_body;
    gh_conn_t *c = r->conn;
    gh_event_t *rev = gh_http_client_read_event(r);

    if (rev->timedout) {
        rev->timedout = 0;
        gh_log(GH_LOG_INFO, &c->log, 0, "client timed out");
        r->keepalive = 0;
        r->read_event_handler = gh_http_block_reading;
        gh_http_finalize_request(r, 408);
        return;
    }
    gh_int_t rc = gh_http_body_step(r, bc);
    if (rc == GH_AGAIN) {
        gh_timer_add(c->loop, rev, gh_http_clcf(r)->client_body_timeout);
        return;
    }
    r->reading_body = 0;
    r->read_event_handler = gh_http_block_reading;
    if (rc != GH_OK) {
        r->keepalive = 0;
        gh_http_finalize_request(r, rc);
        return;
    }
    gh_http_body_finish(r, bc);
    bc->rb.post_handler(r);
}

/* ------------------------------------------------------------------ */

gh_int_t
gh_http_discard_request_body(gh_http_request_t *r)
{
    if (r->request_body) {
        return GH_OK;
    }
    if (gh_http_body_ctx(r, true) == NULL) {
        return GH_ERROR;
    }
    r->discard_body = 1;
    return GH_OK;
}

gh_int_t
gh_http_discard_body_step(gh_http_request_t *r)
{
    gh_http_body_ctx_t *bc = gh_http_body_ctx(r, true);
    if (bc == NULL) {
        return GH_ERROR;
    }
    if (!bc->discard) {
        /* a reader stopped half-way (error path): do not reuse */
        bc->discard = 1;
    }
    gh_int_t rc = gh_http_body_step(r, bc);
    gh_event_t *rev = gh_http_client_read_event(r);
    if (rc == GH_AGAIN) {
        r->read_event_handler = gh_http_discard_handler;
        if (!rev->timer_set) {
            gh_timer_add(r->conn->loop, rev,
                gh_http_clcf(r)->lingering_timeout);
        }
        return GH_AGAIN;
    }
    if (rev->timer_set) {
        gh_timer_del(r->conn->loop, rev);
    }
    return rc == GH_OK ? GH_OK : GH_ERROR;
}

static void
gh_http_discard_handler(gh_http_request_t *r)
{
    gh_event_t *rev = gh_http_client_read_event(r);
    if (rev->timedout) {
        rev->timedout = 0;
        gh_http_request_done(r, true);
        return;
    }
    gh_int_t rc = gh_http_discard_body_step(r);
    if (rc == GH_AGAIN) {
        return;
    }
    gh_http_request_done(r, rc != GH_OK);
}

/* ------------------------------------------------------------------ */
/*
 * Streaming (proxy_request_buffering off): the caller pulls decoded body
 * bytes as they arrive instead of waiting for the whole body.  Raw bytes
 * come from the head buffer first, then from the socket into `raw`;
 * chunked framing is decoded with the same decoder; bytes after the end
 * of a chunked body are stashed for the next request.
 */
typedef struct {
    gh_http_body_ctx_t   bc;
    gh_buf_t            *raw;
} gh_http_stream_ctx_t;

static gh_int_t
gh_http_stream_decode(gh_http_request_t *r, gh_http_body_ctx_t *bc,
    const uint8_t *in, size_t len, uint8_t *dst, size_t room,
    size_t *used, size_t *out)
{
    *used = 0;
    *out = 0;
    if (!bc->chunked) {
        size_t take = (size_t) gh_min((off_t) gh_min(len, room), bc->rb.rest);
        memcpy(dst, in, take);
        *used = take;
        *out = take;
        bc->rb.rest -= (off_t) take;
        bc->rb.received += (off_t) take;
        if (bc->rb.rest == 0) {
            bc->rb.done = 1;
        }
        return GH_OK;
    }
    /* never offer the decoder more than fits: a data slice is always a
     * part of its input */
    size_t offer = gh_min(len, room);
    while (*used < offer && *out < room && !bc->rb.done) {
        size_t consumed = 0, dlen = 0;
        const uint8_t *data = NULL;
        size_t lim = gh_min(offer - *used, room - *out);
        gh_int_t rc = gh_http_parse_chunked(&bc->rb.chunked, in + *used, lim,
            &consumed, &data, &dlen);
        *used += consumed;
        if (rc == GH_ERROR) {
            gh_log(GH_LOG_INFO, &r->conn->log, 0,
                "client sent invalid chunked body");
            return 400;
        }
        if (dlen) {
            memcpy(dst + *out, data, dlen);
            *out += dlen;
            bc->rb.received += (off_t) dlen;
            if (bc->max && bc->rb.received > bc->max) {
                gh_log(GH_LOG_ERR, &r->conn->log, 0, "client intended to "
                    "send too large chunked body: %lld+ bytes",
                    (long long) bc->rb.received);
                return 413;
            }
        }
        if (rc == GH_DONE) {
            bc->rb.done = 1;
        }
        if (rc == GH_AGAIN || consumed == 0) {
            break;
        }
    }
    /* what is left of `in` past `offer` is handled on the next call */
    return GH_OK;
}

/* gh_http_read_body_stream() on an HTTP/2 stream: unframed bytes */
static gh_int_t
gh_http_read_body_stream_v2(gh_http_request_t *r, gh_http_body_ctx_t *bc,
    uint8_t *dst, size_t size, size_t *n)
{
    while (*n < size && !bc->rb.done) {
        size_t want = size - *n;
        if (!bc->chunked && bc->rb.rest < (off_t) want) {
            want = (size_t) bc->rb.rest;
        }
        ssize_t got = gh_http_v2_read_body(r, dst + *n, want);
        if (got == GH_AGAIN) {
            break;
        }
        if (got < 0 || (got == 0 && !bc->chunked)) {
            gh_log(GH_LOG_INFO, &r->conn->log, 0,
                "client prematurely closed stream");
            return 400;
        }
        if (got == 0) {
            bc->rb.done = 1;
            break;
        }
        *n += (size_t) got;
        r->request_length += got;
        bc->rb.received += got;
        if (bc->max && bc->rb.received > bc->max) {
            gh_log(GH_LOG_ERR, &r->conn->log, 0, "client intended to send "
                "too large chunked body: %lld+ bytes",
                (long long) bc->rb.received);
            return 413;
        }
        if (!bc->chunked) {
            bc->rb.rest -= got;
            if (bc->rb.rest == 0) {
                bc->rb.done = 1;
            }
        }
    }
    if (bc->rb.done) {
        gh_event_t *rev = gh_http_client_read_event(r);
        if (rev->timer_set) {
            gh_timer_del(r->conn->loop, rev);
        }
        return GH_DONE;
    }
    return *n ? GH_OK : GH_AGAIN;
}

gh_int_t
gh_http_read_body_stream(gh_http_request_t *r, uint8_t *dst, size_t size,
    size_t *n)
{
    gh_http_connection_t *hc = r->http_conn;
    gh_conn_t *c = r->conn;
    gh_http_stream_ctx_t *sc = (gh_http_stream_ctx_t *) r->request_body;

    *n = 0;
    if (sc == NULL) {
        sc = gh_calloc(r->arena, sizeof(*sc));
        if (sc == NULL) {
            return 500;
        }
        gh_http_body_ctx_t *bc = &sc->bc;
        bc->rb.temp_fd = -1;
        bc->rb.last = &bc->rb.bufs;
        bc->rb.streaming = 1;
        bc->chunked = r->headers_in.chunked;
        bc->rb.rest = bc->chunked ? -1
            : gh_max(r->headers_in.content_length_n, 0);
        bc->max = gh_http_clcf(r)->client_max_body_size;
        if (!bc->chunked && bc->rb.rest == 0) {
            bc->rb.done = 1;
        }
        sc->raw = gh_buf_create(r->arena, 16384);
        if (sc->raw == NULL) {
            return 500;
        }
        r->request_body = &bc->rb;
        gh_http_send_continue(r);
    }
    gh_http_body_ctx_t *bc = &sc->bc;
    gh_buf_t *raw = sc->raw;

    if (r->stream) {
        return gh_http_read_body_stream_v2(r, bc, dst, size, n);
    }
    while (*n < size && !bc->rb.done) {
        size_t used, out;
        gh_int_t rc;
        if (raw->pos < raw->last) {
            rc = gh_http_stream_decode(r, bc, raw->pos,
                (size_t) (raw->last - raw->pos), dst + *n, size - *n,
                &used, &out);
            raw->pos += used;
        } else if (hc->buf.start && hc->buf.last > hc->buf.pos) {
            rc = gh_http_stream_decode(r, bc, hc->buf.pos,
                (size_t) (hc->buf.last - hc->buf.pos), dst + *n, size - *n,
                &used, &out);
            hc->buf.pos += used;
        } else {
            if (!c->read.ready) {
                break;
            }
            raw->pos = raw->last = raw->start;
            size_t want = (size_t) (raw->end - raw->start);
            if (!bc->chunked && bc->rb.rest < (off_t) want) {
                want = (size_t) bc->rb.rest;
            }
            ssize_t got = c->recv(c, raw->last, want);
            if (got == GH_AGAIN) {
                break;
            }
            if (got <= 0) {
                gh_log(GH_LOG_INFO, &c->log, 0,
                    "client prematurely closed connection");
                r->keepalive = 0;
                return 400;
            }
            raw->last += got;
            r->request_length += got;
            continue;
        }
        if (rc != GH_OK) {
            return rc;
        }
        *n += out;
        if (used == 0 && out == 0) {
            break;
        }
    }
    if (bc->rb.done) {
        /* anything still in `raw` belongs to the next request */
        if (raw->pos < raw->last) {
            size_t left = (size_t) (raw->last - raw->pos);
            /* bytes the client sent: charged whatever the cap */
            gh_mem_charge_force(&hc->mem, left);
            hc->stash = gh_xrealloc(hc->stash, hc->stash_len + left);
            memcpy(hc->stash + hc->stash_len, raw->pos, left);
            hc->stash_len += left;
            raw->pos = raw->last;
        }
        if (c->read.timer_set) {
            gh_timer_del(c->loop, &c->read);
        }
        return GH_DONE;
    }
    return *n ? GH_OK : GH_AGAIN;
}
