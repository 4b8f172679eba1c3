/*
 * bench/load.c: the load generator for what wrk cannot do.
 *
 * One process, one thread, one epoll loop, HTTP/1.1 over keep-alive
 * connections to 127.0.0.1.  Each mode prints one JSON object on stdout.
 *
 *   load count -p PORT -c CONNS -n N [-u PATH] [-b BODY]
 *       exactly N requests, spread over CONNS connections (callgrind's
 *       fixed request count, the smoke test)
 *   load rate  -p PORT -c CONNS -r RATE -d SECS [-w WARMUP] [-u PATH]
 *       open loop: request i is due at start + i/RATE whether or not
 *       the previous ones were answered, and its latency is counted from
 *       when it was due, so a stall is not hidden by the client waiting
 *       (coordinated omission).  Prints p50/p90/p99/p99.9/max in µs.
 *   load ws    -p PORT -c CONNS -d SECS [-s SIZE] [-u PATH]
 *       websocket upgrade, then each connection sends a masked frame of
 *       SIZE bytes and waits for the echo, again and again: messages/s
 *   load idle  -p PORT -c N [-k WINDOW] [-u PATH] [-d MAXSECS]
 *       N connections, each makes one request and stays open (idle
 *       keep-alive); prints {"open":..} once all are idle (or after
 *       MAXSECS, counting only those answered), holds them
 *       until stdin reaches EOF, then closes them with RST (no TIME_WAIT).
 *
 * Client connection states:
 *
 *   CONNECTING --> SENDING --> HEAD --> BODY/CHUNK* --> READY --> SENDING
 *                                   \-> WS_OPEN (ws mode: frames to and fro)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define RBUF_SIZE (64 * 1024)

enum { M_COUNT, M_RATE, M_WS, M_IDLE };
enum { S_CONNECTING, S_SENDING, S_HEAD, S_BODY, S_CHUNK_SIZE, S_CHUNK_DATA,
       S_CHUNK_CRLF, S_TRAILER, S_CLOSE_DELIM, S_READY, S_WS_OPEN };
enum { R_PROGRESS, R_NEED, R_DONE, R_ERROR };

typedef struct {
    int fd;
    int state;
    int events;
    int close_after;      /* response said Connection: close */
    int status;
    uint64_t left;
    const char *out;      /* request (or frame) being sent */
    size_t out_len, out_off;
    size_t rs, re;
    double due;           /* rate mode: when this request was due */
    char rbuf[RBUF_SIZE];
} conn_t;

static int mode, ep, tfd = -1, port = 18081;
static int nconns = 64, window = 64;
static long long total = 1000;
static double rate = 1000, duration = 5, warmup = 1;
static size_t body_len, ws_size = 32;
static const char *path = "/size/100";
static char *req, *frame;
static size_t req_len, frame_len;
static struct sockaddr_in sa;

static long long issued, done, errors, non2xx, connects, opened, closed_idle;
static double t_start, *lat;
static long long nlat, lat_cap;

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

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

    if (c->events != events) {
        if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
            die("epoll_ctl");
        }
        c->events = events;
    }
}

static void
conn_open(conn_t *c)
{
    struct epoll_event ev;
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        die("socket");
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    connects++;
    c->rs = c->re = 0;
    c->state = S_CONNECTING;
    c->events = EPOLLOUT;
    ev.events = EPOLLOUT;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        die("epoll_ctl");
    }
    if (connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0
        && errno != EINPROGRESS) {
        die("connect");
    }
}

static void
conn_drop(conn_t *c, int rst)
{
    struct linger lg = { 1, 0 };

    if (rst) {
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(c->fd);
    c->fd = -1;
}

static void
send_request(conn_t *c, const char *p, size_t n)
{
    c->out = p;
    c->out_len = n;
    c->out_off = 0;
    c->state = S_SENDING;
    issued++;
}

static int
hdr_is(const char *p, size_t n, const char *name)
{
    size_t l = strlen(name);

    return n > l && p[l] == ':' && strncasecmp(p, name, l) == 0;
}

static int
has_token(const char *v, const char *end, const char *tok)
{
    size_t l = strlen(tok);

    for (; v + l <= end; v++) {
        if (strncasecmp(v, tok, l) == 0) {
            return 1;
        }
    }
    return 0;
}

static int
parse_head(conn_t *c)
{
    char *p = c->rbuf + c->rs, *end, *line, *eol;
    int chunked = 0, have_len = 0;

    end = memmem(p, c->re - c->rs, "\r\n\r\n", 4);
    if (end == NULL) {
        return c->re - c->rs >= RBUF_SIZE ? R_ERROR : R_NEED;
    }
    if (c->re - c->rs < 12 || memcmp(p, "HTTP/1.", 7) != 0) {
        return R_ERROR;
    }
    c->status = atoi(p + 9);
    c->close_after = memcmp(p, "HTTP/1.0", 8) == 0;
    c->left = 0;
    eol = memmem(p, end + 2 - p, "\r\n", 2);
    for (line = eol + 2; line < end + 2; line = eol + 2) {
        eol = memmem(line, end + 4 - line, "\r\n", 2);
        if (hdr_is(line, eol - line, "content-length")) {
            c->left = strtoull(memchr(line, ':', eol - line) + 1, NULL, 10);
            have_len = 1;
        } else if (hdr_is(line, eol - line, "transfer-encoding")) {
            chunked = has_token(line, eol, "chunked");
        } else if (hdr_is(line, eol - line, "connection")) {
            if (has_token(line, eol, "close")) {
                c->close_after = 1;
            } else if (has_token(line, eol, "keep-alive")) {
                c->close_after = 0;
            }
        }
    }
    c->rs = end + 4 - c->rbuf;
    if (c->status == 101) {
        c->state = S_WS_OPEN;
        return R_DONE;
    }
    if (c->status == 204 || c->status == 304 || (c->status >= 100
                                                 && c->status < 200)) {
        return R_DONE;
    }
    if (chunked) {
        c->state = S_CHUNK_SIZE;
    } else if (have_len) {
        c->state = S_BODY;
    } else {
        c->state = S_CLOSE_DELIM;
        c->close_after = 1;
    }
    return R_PROGRESS;
}

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

/* Parse the response; R_DONE once it is complete. */
static int
process(conn_t *c)
{
    char *eol;

    switch (c->state) {
    case S_HEAD:
        return parse_head(c);
    case S_BODY:
        drain(c);
        return c->left ? R_NEED : R_DONE;
    case S_CLOSE_DELIM:
        c->rs = c->re;
        return R_NEED;
    case S_CHUNK_SIZE:
        eol = memmem(c->rbuf + c->rs, c->re - c->rs, "\r\n", 2);
        if (eol == NULL) {
            return R_NEED;
        }
        if (!isxdigit((unsigned char) c->rbuf[c->rs])) {
            return R_ERROR;
        }
        c->left = strtoull(c->rbuf + c->rs, NULL, 16);
        c->rs = eol + 2 - c->rbuf;
        c->state = c->left ? S_CHUNK_DATA : S_TRAILER;
        return R_PROGRESS;
    case S_CHUNK_DATA:
        drain(c);
        if (c->left) {
            return R_NEED;
        }
        c->state = S_CHUNK_CRLF;
        return R_PROGRESS;
    case S_CHUNK_CRLF:
        if (c->re - c->rs < 2) {
            return R_NEED;
        }
        c->rs += 2;
        c->state = S_CHUNK_SIZE;
        return R_PROGRESS;
    case S_TRAILER:
        eol = memmem(c->rbuf + c->rs, c->re - c->rs, "\r\n", 2);
        if (eol == NULL) {
            return R_NEED;
        }
        if (eol == c->rbuf + c->rs) { /* the empty line ends it */
            c->rs += 2;
            return R_DONE;
        }
        c->rs = eol + 2 - c->rbuf;
        return R_PROGRESS;
    case S_WS_OPEN: {
        /* one echoed frame: 2..10 byte header, unmasked payload */
        unsigned char *p = (unsigned char *) c->rbuf + c->rs;
        size_t avail = c->re - c->rs, hl = 2;
        uint64_t len;

        if (avail < 2) {
            return R_NEED;
        }
        len = p[1] & 0x7f;
        if (len == 126) {
            hl = 4;
            if (avail < 4) {
                return R_NEED;
            }
            len = ((uint64_t) p[2] << 8) | p[3];
        } else if (len == 127) {
            return R_ERROR;
        }
        if (avail < hl + len) {
            return R_NEED;
        }
        c->rs += hl + len;
        return R_DONE;
    }
    }
    return R_ERROR;
}

static void next_request(conn_t *c);

static void
record(conn_t *c, double t)
{
    done++;
    if (mode == M_RATE && c->due >= t_start + warmup) {
        if (nlat == lat_cap) {
            lat_cap = lat_cap ? lat_cap * 2 : 65536;
            lat = realloc(lat, lat_cap * sizeof(*lat));
            if (lat == NULL) {
                die("realloc");
            }
        }
        lat[nlat++] = t - c->due;
    }
    if (c->status < 200 || c->status >= 400) {
        if (c->status != 101) {
            non2xx++;
        }
    }
}

/* The connection failed or the server closed it: count and reconnect. */
static void
conn_failed(conn_t *c, int counts)
{
    if (counts) {
        errors++;
    }
    conn_drop(c, 0);
    if (mode == M_IDLE) {
        return;
    }
    conn_open(c);
}

static int
do_write(conn_t *c)
{
    ssize_t n;

    while (c->out_off < c->out_len) {
        n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EAGAIN ? R_NEED : R_ERROR;
        }
        c->out_off += n;
    }
    return R_DONE;
}

static void
conn_run(conn_t *c, int events)
{
    ssize_t n;
    int r, err;
    socklen_t el = sizeof(err);

    if (c->state == S_CONNECTING) {
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            conn_failed(c, 1);
            return;
        }
        opened++;
        c->state = S_READY;
        next_request(c);
        if (c->state != S_SENDING) {
            arm(c, EPOLLIN);
            return;
        }
    }
    if (c->state == S_READY && events) {
        /* nothing is expected on an idle connection: the server closed
         * it (keep-alive timeout) or sent garbage */
        n = read(c->fd, c->rbuf, RBUF_SIZE);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        closed_idle++;
        conn_failed(c, n > 0);
        return;
    }
    for (;;) {
        if (c->state == S_SENDING) {
            r = do_write(c);
            if (r == R_ERROR) {
                conn_failed(c, 1);
                return;
            }
            if (r == R_NEED) {
                arm(c, EPOLLOUT);
                return;
            }
            c->state = (mode == M_WS && req != c->out) ? S_WS_OPEN : S_HEAD;
        }
        if (c->state == S_READY) {
            arm(c, EPOLLIN);
            return;
        }
        r = process(c);
        if (r == R_ERROR) {
            conn_failed(c, 1);
            return;
        }
        if (r == R_PROGRESS) {
            continue;
        }
        if (r == R_DONE) {
            record(c, now());
            if (c->close_after) {
                conn_failed(c, 0);
                return;
            }
            if (c->state != S_WS_OPEN) {
                c->state = S_READY;
            }
            next_request(c);
            continue;
        }
        if (c->rs == c->re) {
            c->rs = c->re = 0;
        } else if (c->re == RBUF_SIZE) {
            memmove(c->rbuf, c->rbuf + c->rs, c->re - c->rs);
            c->re -= c->rs;
            c->rs = 0;
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
        if (n == 0 && c->state == S_CLOSE_DELIM) {
            record(c, now());
            conn_failed(c, 0);
            return;
        }
        conn_failed(c, 1);
        return;
    }
}

static int stop_sending;

/* Give a ready connection its next request, if the mode has one. */
static void
next_request(conn_t *c)
{
    double t;

    if (stop_sending) {
        return;
    }
    switch (mode) {
    case M_COUNT:
        if (issued < total) {
            send_request(c, req, req_len);
        }
        break;
    case M_IDLE:
        if (c->state == S_READY && c->out == NULL) {
            send_request(c, req, req_len);
        }
        break;
    case M_WS:
        if (c->state == S_WS_OPEN) {
            send_request(c, frame, frame_len);
        } else if (c->out == NULL) {
            send_request(c, req, req_len);
        }
        break;
    case M_RATE:
        t = now();
        if (t_start + issued / rate <= t) {
            c->due = t_start + issued / rate;
            send_request(c, req, req_len);
        }
        break;
    }
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}

static double
pct(double p)
{
    long long i;

    if (nlat == 0) {
        return 0;
    }
    i = (long long) (p / 100.0 * (nlat - 1) + 0.5);
    return lat[i] * 1e6;
}

static void
build_request(void)
{
    size_t cap = 512 + body_len;
    int n;

    req = malloc(cap);
    if (req == NULL) {
        die("malloc");
    }
    if (mode == M_WS) {
        n = snprintf(req, cap,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n", path, port);
    } else if (body_len) {
        n = snprintf(req, cap,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Content-Type: application/octet-stream\r\n"
                     "Content-Length: %zu\r\n\r\n", path, port, body_len);
        memset(req + n, 'x', body_len);
        n += body_len;
    } else {
        n = snprintf(req, cap, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
                     path, port);
    }
    req_len = n;
    if (mode == M_WS) {
        size_t hl = ws_size < 126 ? 2 : 4, i;

        if (ws_size > 65535) {
            fprintf(stderr, "load: -s at most 65535\n");
            exit(2);
        }
        frame_len = hl + 4 + ws_size;
        frame = malloc(frame_len);
        frame[0] = (char) 0x82; /* FIN, binary */
        if (hl == 2) {
            frame[1] = (char) (0x80 | ws_size);
        } else {
            frame[1] = (char) (0x80 | 126);
            frame[2] = (char) (ws_size >> 8);
            frame[3] = (char) ws_size;
        }
        memcpy(frame + hl, "\x12\x34\x56\x78", 4);
        for (i = 0; i < ws_size; i++) {
            frame[hl + 4 + i] = (char) ('a' ^ "\x12\x34\x56\x78"[i & 3]);
        }
    }
}

static void
usage(void)
{
    fprintf(stderr, "usage: load count|rate|ws|idle -p PORT [-c CONNS] "
                    "[-n N] [-r RATE] [-d SECS] [-w WARMUP] [-u PATH] "
                    "[-b BODYLEN] [-s WSSIZE] [-k WINDOW]\n");
    exit(2);
}

static void
parse_args(int argc, char **argv)
{
    int opt;

    if (argc < 2) {
        usage();
    }
    if (strcmp(argv[1], "count") == 0) {
        mode = M_COUNT;
    } else if (strcmp(argv[1], "rate") == 0) {
        mode = M_RATE;
    } else if (strcmp(argv[1], "ws") == 0) {
        mode = M_WS;
        path = "/ws";
    } else if (strcmp(argv[1], "idle") == 0) {
        mode = M_IDLE;
    } else {
        usage();
    }
    optind = 2;
    while ((opt = getopt(argc, argv, "p:c:n:r:d:w:u:b:s:k:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'c': nconns = atoi(optarg); break;
        case 'n': total = atoll(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'u': path = optarg; break;
        case 'b': body_len = strtoull(optarg, NULL, 10); break;
        case 's': ws_size = strtoull(optarg, NULL, 10); break;
        case 'k': window = atoi(optarg); break;
        default: usage();
        }
    }
    if (nconns < 1 || window < 1 || rate <= 0) {
        usage();
    }
}

static void
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* idle mode: keep at most `window` connections connecting or requesting */
static int
idle_busy(conn_t *conns, int started)
{
    int i, busy = 0;

    for (i = 0; i < started; i++) {
        if (conns[i].fd >= 0 && conns[i].state != S_READY) {
            busy++;
        }
    }
    return busy;
}

static int
idle_open(conn_t *conns)
{
    int i, n = 0;

    for (i = 0; i < nconns; i++) {
        n += conns[i].fd >= 0 && conns[i].state == S_READY;
    }
    return n;
}

int
main(int argc, char **argv)
{
    struct epoll_event evs[512];
    struct itimerspec its = { { 0, 0 }, { 0, 0 } };
    conn_t *conns;
    double t, end, timeout;
    int i, n, started = 0, busy = 0, ms;
    char buf[64];

    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    build_request();
    ep = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc(nconns, sizeof(*conns));
    if (ep < 0 || conns == NULL) {
        die("setup");
    }
    if (mode == M_RATE) {
        struct epoll_event tev = { .events = EPOLLIN, .data.ptr = &tfd };

        prctl(PR_SET_TIMERSLACK, 1UL);
        tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (tfd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev) < 0) {
            die("timerfd");
        }
    }
    t_start = now();
    end = t_start + duration + (mode == M_RATE ? warmup : 0);
    for (i = 0; i < nconns; i++) {
        conns[i].fd = -1;
    }
    if (mode != M_IDLE) {
        for (i = 0; i < nconns; i++) {
            conn_open(&conns[i]);
        }
        started = nconns;
    }
    for (;;) {
        t = now();
        if (mode == M_IDLE) {
            /* start new connections while fewer than window are busy */
            if (busy < window && started < nconns) {
                busy = idle_busy(conns, started);
                while (busy < window && started < nconns) {
                    conn_open(&conns[started++]);
                    busy++;
                }
            }
            if (started == nconns && (busy = idle_busy(conns, started)) == 0) {
                break;
            }
            if (t >= t_start + duration) {
                break; /* the rest never got an answer: not counted */
            }
        } else if (mode == M_COUNT) {
            if (done + errors >= total) {
                break;
            }
        } else if (t >= end) {
            break;
        }
        if (mode == M_RATE) {
            /* hand due requests to ready connections */
            for (i = 0; i < nconns && t_start + issued / rate <= t; i++) {
                if (conns[i].state == S_READY) {
                    next_request(&conns[i]);
                    conn_run(&conns[i], 0);
                }
            }
            /* epoll_wait counts in ms; the timerfd wakes us on time */
            timeout = t_start + issued / rate;
            if (timeout > now()) {
                its.it_value.tv_sec = (time_t) timeout;
                its.it_value.tv_nsec =
                    (long) ((timeout - (double) its.it_value.tv_sec) * 1e9);
                timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
                ms = 50;
            } else {
                ms = 0;
            }
        } else {
            ms = 100;
        }
        n = epoll_wait(ep, evs, 512, ms);
        for (i = 0; i < n; i++) {
            if (evs[i].data.ptr == &tfd) {
                uint64_t ticks;
                if (read(tfd, &ticks, sizeof(ticks)) < 0) {
                    /* EAGAIN: already consumed */
                }
                continue;
            }
            conn_run(evs[i].data.ptr, evs[i].events);
        }
        if (mode == M_IDLE) {
            busy = idle_busy(conns, started);
        }
    }
    t = now() - t_start;
    stop_sending = 1;
    switch (mode) {
    case M_COUNT:
        printf("{\"requests\":%lld,\"errors\":%lld,\"non2xx\":%lld,"
               "\"connects\":%lld,\"seconds\":%.3f}\n",
               done, errors, non2xx, connects, t);
        break;
    case M_RATE:
        qsort(lat, nlat, sizeof(*lat), cmp_double);
        printf("{\"requests\":%lld,\"measured\":%lld,\"target_rate\":%.0f,"
               "\"rate\":%.1f,\"errors\":%lld,\"non2xx\":%lld,"
               "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
               "\"p999_us\":%.1f,\"max_us\":%.1f}\n",
               done, nlat, rate, nlat / duration, errors, non2xx, pct(50),
               pct(90), pct(99), pct(99.9), pct(100));
        break;
    case M_WS:
        printf("{\"messages\":%lld,\"seconds\":%.3f,\"rate\":%.1f,"
               "\"errors\":%lld,\"non101\":%lld}\n",
               done - opened, t, (done - opened) / t, errors, non2xx);
        break;
    case M_IDLE:
        printf("{\"open\":%lld,\"requests\":%lld,\"errors\":%lld,"
               "\"non2xx\":%lld,\"closed\":%lld,\"seconds\":%.3f}\n",
               (long long) idle_open(conns), done, errors, non2xx,
               closed_idle, t);
        fflush(stdout);
        while (fgets(buf, sizeof(buf), stdin) != NULL) {
        }
        for (i = 0; i < nconns; i++) {
            if (conns[i].fd >= 0) {
                conn_drop(&conns[i], 1);
            }
        }
        break;
    }
    return 0;
}
