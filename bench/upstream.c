/*
 * bench/upstream.c: the upstream server behind every proxy in `make bench`.
 *
 * One process, one thread, one level-triggered epoll loop; pin it with
 * taskset.  It has to cost as little CPU as possible, because it shares a
 * core with the proxy under test and every cycle it burns is a cycle the
 * proxy does not get.  So responses are never formatted per request: the
 * body is one pattern buffer built at start, the header for each size is
 * built once and cached, and a response is a single writev().
 *
 *   GET /size/N        200 with N bytes (N up to -m, default 16 MiB)
 *   GET /stats         200 {"accepted":..,"requests":..,"open":..}, so a
 *                      test can count upstream connections (keep-alive)
 *   POST|PUT any       body drained (Content-Length or chunked), 200 "ok"
 *   GET /ws + Upgrade  101, then every websocket frame is echoed back
 *   anything else      200 "ok"
 *
 * HTTP/1.1 keep-alive unless "Connection: close"; HTTP/1.0 closes unless
 * "Connection: keep-alive".  Pipelined requests are served in order.
 *
 * Per connection state:
 *
 *   HEAD --(headers, no body)------------------> respond --> HEAD
 *   HEAD --(Content-Length)--> BODY ------------> respond --> HEAD
 *   HEAD --(chunked)--> CHUNK_SIZE <-> CHUNK_DATA -> TRAILER -> respond
 *   HEAD --(Upgrade: websocket)--> 101 --> WS (echo frames until close)
 *
 * Usage: upstream [-l 127.0.0.1:PORT] [-m MAXBODY]
 * Build: cc -O2 -o upstream bench/upstream.c -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define RBUF_SIZE   (64 * 1024)  /* also the largest request head */
#define WS_MAX      (RBUF_SIZE - 16) /* largest websocket frame echoed */
#define HDR_CACHE   32

enum { ST_HEAD, ST_BODY, ST_CHUNK_SIZE, ST_CHUNK_DATA, ST_CHUNK_CRLF,
       ST_TRAILER, ST_WS };
enum { R_PROGRESS, R_NEED, R_ERROR };

typedef struct {
    int fd;
    int state;
    int events;          /* what epoll is armed for, to skip no-op ctl */
    int keepalive;       /* of the request being served */
    int closing;         /* close once the output is flushed */
    int is_post;
    uint64_t left;       /* body bytes (or chunk bytes) still to drain */
    size_t rs, re;       /* unparsed input is rbuf[rs, re) */
    struct iovec iov[2]; /* pending output */
    int iovcnt;
    char *wbuf;          /* owned output (101, websocket echo) */
    char rbuf[RBUF_SIZE];
} conn_t;

typedef struct {
    uint64_t size;
    int len_ka, len_close;
    char ka[160], close[160];
} hdr_t;

static int ep;
static char *body;
static uint64_t body_max = 16u << 20;
static hdr_t hdrs[HDR_CACHE];
static int nhdrs, next_evict;
static unsigned long long n_accepted, n_requests, n_open;

static const char OK_KA[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    "\r\nok";
static const char OK_CLOSE[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    "Connection: close\r\n\r\nok";
static const char BAD[] =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
    "Connection: close\r\n\r\n";

static void
die(const char *what)
{
    perror(what);
    exit(1);
}

static void
arm(conn_t *c, int events)
{
    struct epoll_event ev = { .events = events, .data.ptr = c };

    if (c->events == events) {
        return;
    }
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        die("epoll_ctl");
    }
    c->events = events;
}

static void
conn_close(conn_t *c)
{
    close(c->fd);
    free(c->wbuf);
    free(c);
    n_open--;
}

/* The header for a body of `size` bytes, built on first use. */
static const hdr_t *
hdr_for(uint64_t size)
{
    hdr_t *h;
    int i;

    for (i = 0; i < nhdrs; i++) {
        if (hdrs[i].size == size) {
            return &hdrs[i];
        }
    }
    if (nhdrs < HDR_CACHE) {
        h = &hdrs[nhdrs++];
    } else {
        h = &hdrs[next_evict];
        next_evict = (next_evict + 1) % HDR_CACHE;
    }
    h->size = size;
    h->len_ka = snprintf(h->ka, sizeof(h->ka),
                         "HTTP/1.1 200 OK\r\n"
                         "Content-Type: application/octet-stream\r\n"
                         "Content-Length: %llu\r\n\r\n",
                         (unsigned long long) size);
    h->len_close = snprintf(h->close, sizeof(h->close),
                            "HTTP/1.1 200 OK\r\n"
                            "Content-Type: application/octet-stream\r\n"
                            "Content-Length: %llu\r\n"
                            "Connection: close\r\n\r\n",
                            (unsigned long long) size);
    return h;
}

static void
out_static(conn_t *c, const char *p, size_t n)
{
    c->iov[0].iov_base = (void *) p;
    c->iov[0].iov_len = n;
    c->iovcnt = 1;
}

/* The connection's own output buffer (101, websocket echo), made once:
 * output is always flushed before the next input is processed. */
static char *
wbuf(conn_t *c)
{
    if (c->wbuf == NULL) {
        c->wbuf = malloc(RBUF_SIZE + 16);
        if (c->wbuf == NULL) {
            die("malloc");
        }
    }
    return c->wbuf;
}

/* Answer the request whose head (and body, if any) has been consumed. */
static void
respond(conn_t *c, const char *path, size_t plen)
{
    static char stats[160];
    const hdr_t *h;
    uint64_t n;
    int len;

    n_requests++;
    c->closing = !c->keepalive;
    if (c->is_post) {
        goto ok;
    }
    if (plen > 6 && memcmp(path, "/size/", 6) == 0) {
        n = strtoull(path + 6, NULL, 10);
        if (n > body_max) {
            out_static(c, BAD, sizeof(BAD) - 1);
            c->closing = 1;
            return;
        }
        h = hdr_for(n);
        if (c->keepalive) {
            c->iov[0].iov_base = (void *) h->ka;
            c->iov[0].iov_len = h->len_ka;
        } else {
            c->iov[0].iov_base = (void *) h->close;
            c->iov[0].iov_len = h->len_close;
        }
        c->iov[1].iov_base = body;
        c->iov[1].iov_len = n;
        c->iovcnt = n ? 2 : 1;
        return;
    }
    if (plen == 6 && memcmp(path, "/stats", 6) == 0) {
        char js[96];
        int jl = snprintf(js, sizeof(js),
                          "{\"accepted\":%llu,\"requests\":%llu,"
                          "\"open\":%llu}\n",
                          n_accepted, n_requests, n_open);
        len = snprintf(stats, sizeof(stats),
                       "HTTP/1.1 200 OK\r\nContent-Type: application/json"
                       "\r\nContent-Length: %d\r\n%s\r\n%s",
                       jl, c->keepalive ? "" : "Connection: close\r\n", js);
        out_static(c, stats, len);
        return;
    }
ok:
    if (c->keepalive) {
        out_static(c, OK_KA, sizeof(OK_KA) - 1);
    } else {
        out_static(c, OK_CLOSE, sizeof(OK_CLOSE) - 1);
    }
}

/* Sec-WebSocket-Accept = base64(SHA-1(key + RFC 6455 GUID)) */
static void
ws_accept(conn_t *c, const char *key, size_t klen)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char in[128], md[EVP_MAX_MD_SIZE], b64[64];
    unsigned int mdlen;
    char *resp;
    int n;

    if (klen > sizeof(in) - sizeof(guid)) {
        klen = sizeof(in) - sizeof(guid);
    }
    memcpy(in, key, klen);
    memcpy(in + klen, guid, sizeof(guid) - 1);
    EVP_Digest(in, klen + sizeof(guid) - 1, md, &mdlen, EVP_sha1(), NULL);
    EVP_EncodeBlock(b64, md, (int) mdlen);
    resp = wbuf(c);
    n = snprintf(resp, 256,
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n\r\n", b64);
    out_static(c, resp, n);
    n_requests++;
    c->state = ST_WS;
}

static int
hdr_is(const char *p, size_t n, const char *name)
{
    size_t l = strlen(name);

    return n > l && p[l] == ':' && strncasecmp(p, name, l) == 0;
}

static const char *
hdr_value(const char *p, const char *end, size_t *vlen)
{
    p = memchr(p, ':', end - p) + 1;
    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    *vlen = end - p;
    return p;
}

static int
has_token(const char *v, size_t n, const char *tok)
{
    size_t l = strlen(tok), i;

    for (i = 0; i + l <= n; i++) {
        if (strncasecmp(v + i, tok, l) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Parse one request head in rbuf[rs, re); respond or enter a body state. */
static int
parse_head(conn_t *c)
{
    char *p = c->rbuf + c->rs, *end, *eol, *line, *sp1, *sp2;
    const char *key = NULL, *v;
    size_t avail = c->re - c->rs, vlen, klen = 0;
    int http10, chunked = 0, upgrade = 0, conn_close = 0, conn_ka = 0;
    uint64_t clen = 0;

    end = memmem(p, avail, "\r\n\r\n", 4);
    if (end == NULL) {
        return avail >= RBUF_SIZE ? R_ERROR : R_NEED;
    }
    end += 2; /* end of the last header line's CRLF */
    eol = memmem(p, end - p, "\r\n", 2);
    sp1 = memchr(p, ' ', eol - p);
    sp2 = sp1 ? memchr(sp1 + 1, ' ', eol - sp1 - 1) : NULL;
    if (sp2 == NULL) {
        return R_ERROR;
    }
    http10 = (eol - sp2 - 1 == 8 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0);
    c->is_post = !(sp1 - p == 3 && memcmp(p, "GET", 3) == 0)
                 && !(sp1 - p == 4 && memcmp(p, "HEAD", 4) == 0);
    for (line = eol + 2; line < end; line = eol + 2) {
        eol = memmem(line, end + 2 - line, "\r\n", 2);
        if (eol == line) {
            break;
        }
        if (hdr_is(line, eol - line, "content-length")) {
            clen = strtoull(hdr_value(line, eol, &vlen), NULL, 10);
        } else if (hdr_is(line, eol - line, "transfer-encoding")) {
            v = hdr_value(line, eol, &vlen);
            chunked = has_token(v, vlen, "chunked");
        } else if (hdr_is(line, eol - line, "connection")) {
            v = hdr_value(line, eol, &vlen);
            conn_close = has_token(v, vlen, "close");
            conn_ka = has_token(v, vlen, "keep-alive");
        } else if (hdr_is(line, eol - line, "upgrade")) {
            v = hdr_value(line, eol, &vlen);
            upgrade = has_token(v, vlen, "websocket");
        } else if (hdr_is(line, eol - line, "sec-websocket-key")) {
            key = hdr_value(line, eol, &klen);
        }
    }
    c->keepalive = http10 ? conn_ka : !conn_close;
    c->rs = end + 2 - c->rbuf;
    if (upgrade && key != NULL) {
        ws_accept(c, key, klen);
        return R_PROGRESS;
    }
    if (chunked) {
        c->state = ST_CHUNK_SIZE;
        c->is_post = 1;
        return R_PROGRESS;
    }
    if (clen > 0) {
        c->left = clen;
        c->state = ST_BODY;
        c->is_post = 1;
        return R_PROGRESS;
    }
    /* the path is still in rbuf: respond() reads it before any compaction */
    respond(c, sp1 + 1, sp2 - sp1 - 1);
    return R_PROGRESS;
}

/* Consume up to c->left bytes of the buffered input. */
static void
drain(conn_t *c)
{
    size_t n = c->re - c->rs;

    if (n > c->left) {
        n = c->left;
    }
    c->rs += n;
    c->left -= n;
}

static char *
find_crlf(conn_t *c)
{
    return memmem(c->rbuf + c->rs, c->re - c->rs, "\r\n", 2);
}

/* One websocket frame in, one out (ping -> pong, close -> close). */
static int
ws_frame(conn_t *c)
{
    unsigned char *p = (unsigned char *) c->rbuf + c->rs, *mask, *out;
    size_t avail = c->re - c->rs, hl = 2, i;
    uint64_t len;
    int op;

    if (avail < 2) {
        return R_NEED;
    }
    op = p[0] & 0x0f;
    len = p[1] & 0x7f;
    if (len == 126) {
        if (avail < 4) {
            return R_NEED;
        }
        len = ((uint64_t) p[2] << 8) | p[3];
        hl = 4;
    } else if (len == 127) {
        if (avail < 10) {
            return R_NEED;
        }
        for (len = 0, i = 0; i < 8; i++) {
            len = (len << 8) | p[2 + i];
        }
        hl = 10;
    }
    if (len > WS_MAX) {
        return R_ERROR;
    }
    mask = (p[1] & 0x80) ? p + hl : NULL;
    hl += mask ? 4 : 0;
    if (avail < hl + len) {
        return R_NEED;
    }
    c->rs += hl + len;
    if (op == 0xa) {
        return R_PROGRESS; /* pong: nothing to answer */
    }
    out = (unsigned char *) wbuf(c);
    out[0] = 0x80 | (op == 0x9 ? 0xa : op);
    if (len < 126) {
        out[1] = (unsigned char) len;
        hl = 2;
    } else if (len < 65536) {
        out[1] = 126;
        out[2] = (unsigned char) (len >> 8);
        out[3] = (unsigned char) len;
        hl = 4;
    } else {
        out[1] = 127;
        for (i = 0; i < 8; i++) {
            out[2 + i] = (unsigned char) (len >> (56 - 8 * i));
        }
        hl = 10;
    }
    /* the payload ends where the consumed input ends */
    p = (unsigned char *) c->rbuf + c->rs - len;
    for (i = 0; i < len; i++) {
        out[hl + i] = mask ? p[i] ^ mask[i & 3] : p[i];
    }
    out_static(c, (char *) out, hl + len);
    if (op == 0x8) {
        c->closing = 1;
    }
    return R_PROGRESS;
}

/* Advance the state machine over buffered input. */
static int
process(conn_t *c)
{
    char *eol;
    uint64_t size;

    switch (c->state) {
    case ST_HEAD:
        if (c->rs == c->re) {
            return R_NEED;
        }
        return parse_head(c);
    case ST_BODY:
        drain(c);
        if (c->left) {
            return R_NEED;
        }
        c->state = ST_HEAD;
        respond(c, "", 0);
        return R_PROGRESS;
    case ST_CHUNK_SIZE:
        eol = find_crlf(c);
        if (eol == NULL) {
            return c->re - c->rs > 256 ? R_ERROR : R_NEED;
        }
        if (!isxdigit((unsigned char) c->rbuf[c->rs])) {
            return R_ERROR;
        }
        size = strtoull(c->rbuf + c->rs, NULL, 16);
        c->rs = eol + 2 - c->rbuf;
        c->left = size;
        c->state = size ? ST_CHUNK_DATA : ST_TRAILER;
        return R_PROGRESS;
    case ST_CHUNK_DATA:
        drain(c);
        if (c->left) {
            return R_NEED;
        }
        c->state = ST_CHUNK_CRLF;
        return R_PROGRESS;
    case ST_CHUNK_CRLF:
        if (c->re - c->rs < 2) {
            return R_NEED;
        }
        c->rs += 2;
        c->state = ST_CHUNK_SIZE;
        return R_PROGRESS;
    case ST_TRAILER:
        eol = find_crlf(c);
        if (eol == NULL) {
            return c->re - c->rs >= RBUF_SIZE ? R_ERROR : R_NEED;
        }
        if (eol == c->rbuf + c->rs) { /* the empty line ends the body */
            c->rs += 2;
            c->state = ST_HEAD;
            respond(c, "", 0);
            return R_PROGRESS;
        }
        c->rs = eol + 2 - c->rbuf; /* a trailer field: ignored */
        return R_PROGRESS;
    case ST_WS:
        return ws_frame(c);
    }
    return R_ERROR;
}

/* Write pending output. 1: all written, 0: would block, -1: error. */
static int
flush(conn_t *c)
{
    ssize_t n;

    while (c->iovcnt) {
        n = writev(c->fd, c->iov, c->iovcnt);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EAGAIN ? 0 : -1;
        }
        while (c->iovcnt && (size_t) n >= c->iov[0].iov_len) {
            n -= c->iov[0].iov_len;
            c->iov[0] = c->iov[1];
            c->iovcnt--;
        }
        if (c->iovcnt) {
            c->iov[0].iov_base = (char *) c->iov[0].iov_base + n;
            c->iov[0].iov_len -= n;
        }
    }
    return 1;
}

static void
conn_run(conn_t *c)
{
    ssize_t n;
    int r;

    for (;;) {
        if (c->iovcnt) {
            r = flush(c);
            if (r < 0) {
                conn_close(c);
                return;
            }
            if (r == 0) {
                arm(c, EPOLLOUT);
                return;
            }
            if (c->closing) {
                conn_close(c);
                return;
            }
        }
        r = process(c);
        if (r == R_ERROR) {
            if (c->state == ST_HEAD) {
                out_static(c, BAD, sizeof(BAD) - 1);
                c->closing = 1;
                flush(c);
            }
            conn_close(c);
            return;
        }
        if (r == R_PROGRESS) {
            continue;
        }
        /* R_NEED: make room at the end of rbuf, then read */
        if (c->rs == c->re) {
            c->rs = c->re = 0;
        } else if (c->rs > 0 && c->re == RBUF_SIZE) {
            memmove(c->rbuf, c->rbuf + c->rs, c->re - c->rs);
            c->re -= c->rs;
            c->rs = 0;
        }
        if (c->re == RBUF_SIZE) {
            conn_close(c);
            return;
        }
        n = read(c->fd, c->rbuf + c->re, RBUF_SIZE - c->re);
        if (n > 0) {
            c->re += n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            arm(c, EPOLLIN);
            return;
        }
        conn_close(c);
        return;
    }
}

static void
accept_all(int lfd)
{
    struct epoll_event ev;
    conn_t *c;
    int fd, one = 1;

    for (;;) {
        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            return; /* EAGAIN, or EMFILE: retried on the next event */
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            die("calloc");
        }
        c->fd = fd;
        c->events = EPOLLIN;
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            die("epoll_ctl");
        }
        n_accepted++;
        n_open++;
    }
}

static int
listen_on(const char *spec)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    char host[64];
    const char *colon = strrchr(spec, ':');
    int fd, one = 1;

    if (colon == NULL || (size_t) (colon - spec) >= sizeof(host)) {
        fprintf(stderr, "upstream: -l wants ADDR:PORT\n");
        exit(2);
    }
    memcpy(host, spec, colon - spec);
    host[colon - spec] = '\0';
    sa.sin_port = htons((uint16_t) atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "upstream: bad address %s\n", host);
        exit(2);
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        die("socket");
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
        die("bind");
    }
    if (listen(fd, 4096) < 0) {
        die("listen");
    }
    return fd;
}

int
main(int argc, char **argv)
{
    struct epoll_event evs[256], ev;
    const char *addr = "127.0.0.1:18080";
    int lfd, n, i, opt;
    uint64_t k;

    while ((opt = getopt(argc, argv, "l:m:")) != -1) {
        switch (opt) {
        case 'l':
            addr = optarg;
            break;
        case 'm':
            body_max = strtoull(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr, "usage: upstream [-l ADDR:PORT] [-m MAXBODY]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    body = malloc(body_max ? body_max : 1);
    if (body == NULL) {
        die("malloc");
    }
    for (k = 0; k < body_max; k++) {
        body[k] = "abcdefghijklmnopqrstuvwxyz0123456789"[k % 36];
    }
    lfd = listen_on(addr);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        die("epoll_create1");
    }
    ev.events = EPOLLIN;
    ev.data.ptr = NULL; /* NULL marks the listener */
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        die("epoll_ctl");
    }
    for (;;) {
        n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno != EINTR) {
            die("epoll_wait");
        }
        for (i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                accept_all(lfd);
            } else {
                conn_run(evs[i].data.ptr);
            }
        }
    }
}
