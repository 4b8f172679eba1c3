/*
 * gh_conn.c: connection objects, plain socket I/O and accepting.
 *
 * Connection objects come from a free list: they are fixed-size, hot, and
 * a worker cycles through many of them.  A closed object is not reused at
 * once but parked on the "closed" list until the loop calls
 * gh_conn_release_closed(): epoll may have returned several events for
 * the same batch, and a later one may name a connection an earlier
 * handler closed; its c->destroyed must still be readable then.
 *
 * The objects themselves come from a slab (gh_mem.h): no malloc header,
 * and kept apart from request memory in the heap.
 *
 *   accept4 -> gh_conn_get -> addresses, TCP_NODELAY
 *           -> gh_loop_add_conn -> ls->handler(c) -> ... -> gh_conn_close
 *           -> (end of batch) gh_conn_release_closed -> free list
 */
#include "gh_conn.h"
#include "gh_splice.h"

#include <limits.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <unistd.h>

#define GH_ACCEPT_BATCH       64
#define GH_ACCEPT_PAUSE       500     /* ms after EMFILE/ENFILE */
#define GH_CONN_ARENA_DEFAULT 1024
#ifndef IOV_MAX
#define IOV_MAX               1024
#endif
/* Linux transfers at most this much per sendfile() call */
#define GH_SENDFILE_MAX       0x7ffff000

gh_conn_stats_t gh_conns = { .max = 512 };

static gh_slab_t  gh_conn_slab;
static gh_conn_t *gh_conn_free_list;
static gh_conn_t *gh_conn_closed;     /* linked through idle_next */
static uint64_t   gh_conn_number;

/* --- objects ------------------------------------------------------------- */

gh_conn_t *
gh_conn_get(int fd, gh_loop_t *loop, gh_log_t *log)
{
    gh_conn_t *c;

    if (gh_conns.max && gh_conns.active >= gh_conns.max) {
        return NULL;
    }
    c = gh_conn_free_list;
    if (c) {
        gh_conn_free_list = c->idle_next;
    } else {
        if (gh_conn_slab.size == 0) {
            gh_slab_init(&gh_conn_slab, sizeof(gh_conn_t));
        }
        c = gh_slab_alloc(&gh_conn_slab);
    }
    memset(c, 0, sizeof(gh_conn_t));

    c->fd = fd;
    c->loop = loop;
    c->read.data = c;
    c->write.data = c;
    c->write.write = 1;
    c->log = log ? *log : gh_log_stderr;
    c->log.connection = ++gh_conn_number;
    c->recv = gh_unix_recv;
    c->send = gh_unix_send;
    c->send_chain = gh_unix_send_chain;
    gh_conns.active++;
    return c;
}

/* The socket is closed right after, which ends its epoll
 * registration with it (a worker never forks nor dups a connection's
 * socket, so close() drops the last reference to the file description);
 * an explicit EPOLL_CTL_DEL would be one more syscall per connection */
static void
gh_conn_unhook(gh_conn_t *c)
{
    gh_loop_t *loop = c->loop;

    if (loop == NULL) {
        return;
    }
    gh_timer_del(loop, &c->read);
    gh_timer_del(loop, &c->write);
    gh_delete_posted_event(loop, &c->read);
    gh_delete_posted_event(loop, &c->write);
    c->read.active = 0;
    c->write.active = 0;
}

void
gh_conn_close(gh_conn_t *c)
{
    if (c == NULL || c->destroyed) {
        return;
    }
    gh_conn_unhook(c);
    gh_conn_set_idle(c, false);
    if (c->arena) {
        gh_arena_destroy(c->arena);
        c->arena = NULL;
    }
    /* after the arena: its cleanups (TLS, HTTP/2) may use the protocol's
     * state */
    if (c->accepted && c->listening->close_handler) {
        c->listening->close_handler(c);
    }
    if (c->addr_text_alloc) {
        free(c->addr_text.data);
        c->addr_text.data = NULL;
        c->addr_text_alloc = 0;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->destroyed = 1;
    gh_conns.active--;
    c->idle_next = gh_conn_closed;
    gh_conn_closed = c;
}

void
gh_conn_release_closed(void)
{
    gh_conn_t *c, *next;

    for (c = gh_conn_closed; c; c = next) {
        next = c->idle_next;
        c->idle_next = gh_conn_free_list;
        gh_conn_free_list = c;
    }
    gh_conn_closed = NULL;
}

gh_arena_t *
gh_conn_arena(gh_conn_t *c)
{
    if (c->arena == NULL) {
        size_t size = c->listening && c->listening->conn_arena_size
            ? c->listening->conn_arena_size : GH_CONN_ARENA_DEFAULT;
        c->arena = gh_arena_create(size, 0);
    }
    return c->arena;
}

size_t
gh_conn_object_size(void)
{
    return gh_align(sizeof(gh_conn_t), 16);
}

gh_int_t
gh_conn_local_addr(gh_conn_t *c)
{
    socklen_t len = sizeof(c->local_sockaddr);

    if (c->local_socklen != 0) {
        return GH_OK;
    }
    /* a unix-domain path does not fit and is cut: the family is what
     * the callers need (and the listener has the path) */
    if (getsockname(c->fd, &c->local_sockaddr.sa, &len) != 0) {
        return GH_ERROR;
    }
    c->local_socklen = gh_min(len, (socklen_t) sizeof(c->local_sockaddr));
    return GH_OK;
}

void
gh_conn_set_idle(gh_conn_t *c, bool idle)
{
    if ((bool) c->idle == idle) {
        return;
    }
    if (idle) {
        c->idle_prev = NULL;
        c->idle_next = gh_conns.idle_head;
        if (gh_conns.idle_head) {
            gh_conns.idle_head->idle_prev = c;
        }
        gh_conns.idle_head = c;
    } else {
        if (c->idle_prev) {
            c->idle_prev->idle_next = c->idle_next;
        } else {
            gh_conns.idle_head = c->idle_next;
        }
        if (c->idle_next) {
            c->idle_next->idle_prev = c->idle_prev;
        }
        c->idle_next = NULL;
        c->idle_prev = NULL;
    }
    c->idle = idle;
}

void
gh_conn_close_idle(void)
{
    size_t     n = 0;
    gh_conn_t *c;

    for (c = gh_conns.idle_head; c; c = c->idle_next) {
        n++;
    }
    /* bounded by the count at the start, in case a handler puts its
     * connection back on the list instead of closing it */
    while (n-- > 0 && (c = gh_conns.idle_head) != NULL) {
        gh_conn_set_idle(c, false);
        c->close = 1;
        if (c->read.handler) {
            c->read.handler(&c->read);
        } else {
            gh_conn_close(c);
        }
    }
}

/* --- plain socket I/O ---------------------------------------------------- */

/* what recv() or readv() of `size` bytes returned, for the caller: a
 * short read on a stream socket means it is drained for now: as nginx
 * with EPOLLRDHUP, clear ready and save the call that would only say
 * EAGAIN; new data brings a new edge.  Not when the peer's FIN was
 * announced (eof), which no further edge would report, nor for a socket
 * that is not registered (active) with that edge.  GH_DECLINED: EINTR,
 * call again. */
static ssize_t
gh_unix_read_result(gh_conn_t *c, ssize_t n, size_t size)
{
    if (n > 0) {
        if ((size_t) n < size && c->read.active && !c->read.eof) {
            c->read.ready = 0;
        }
        return n;
    }
    if (n == 0) {
        c->read.ready = 0;
        c->read.eof = 1;
        return 0;
    }
    if (errno == EINTR) {
        return GH_DECLINED;
    }
    c->read.ready = 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return GH_AGAIN;
    }
    c->read.error = 1;
    return GH_ERROR;
}

ssize_t
gh_unix_recv(gh_conn_t *c, uint8_t *buf, size_t size)
{
    ssize_t n;

    do {
        n = gh_unix_read_result(c, recv(c->fd, buf, size, 0), size);
    } while (n == GH_DECLINED);
    return n;
}

ssize_t
gh_unix_readv(gh_conn_t *c, struct iovec *iov, int cnt)
{
    size_t  size = 0;
    ssize_t n;

    for (int i = 0; i < cnt; i++) {
        size += iov[i].iov_len;
    }
    do {
        n = gh_unix_read_result(c, readv(c->fd, iov, cnt), size);
    } while (n == GH_DECLINED);
    return n;
}

void
gh_conn_linger_drain(gh_event_t *ev, bool raw)
{
    gh_conn_t *c = ev->data;
    uint8_t    buf[16384];

    if (ev->timedout) {
        gh_conn_close(c);
        return;
    }
    for (;;) {
        ssize_t n = raw ? gh_unix_recv(c, buf, sizeof(buf))
                        : c->recv(c, buf, sizeof(buf));
        if (n == GH_AGAIN) {
            return;
        }
        if (n <= 0) {
            gh_conn_close(c);
            return;
        }
    }
}

static void
gh_conn_linger_read(gh_event_t *ev)
{
    gh_conn_linger_drain(ev, false);
}

static void
gh_conn_linger_read_raw(gh_event_t *ev)
{
    gh_conn_linger_drain(ev, true);
}

static void
gh_conn_linger_write(gh_event_t *ev)
{
    (void) ev;
}

void
gh_conn_lingering_close(gh_conn_t *c, gh_msec_t timeout, bool raw)
{
    if (shutdown(c->fd, SHUT_WR) == -1) {
        gh_conn_close(c);
        return;
    }
    if (c->write.timer_set) {
        gh_timer_del(c->loop, &c->write);
    }
    c->write.handler = gh_conn_linger_write;
    c->read.handler = raw ? gh_conn_linger_read_raw : gh_conn_linger_read;
    if (timeout) {
        gh_timer_add(c->loop, &c->read, timeout);
    }
    c->read.ready = 1;
    c->read.handler(&c->read);
}

const char *gh_conn_send_failed = "send";

ssize_t
gh_unix_send(gh_conn_t *c, const uint8_t *buf, size_t size)
{
    ssize_t n;

    for (;;) {
        /* MSG_NOSIGNAL: a peer reset must be an error, not SIGPIPE */
        n = send(c->fd, buf, size, MSG_NOSIGNAL);
        if (n >= 0) {
            c->sent += n;
            if ((size_t) n < size) {
                /* the socket buffer is full; EPOLLOUT will edge again */
                c->write.ready = 0;
            }
            return n;
        }
        if (errno == EINTR) {
            continue;
        }
        c->write.ready = 0;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return GH_AGAIN;
        }
        c->write.error = 1;
        gh_conn_send_failed = "send";
        return GH_ERROR;
    }
}

/* a buffer at most this big that follows a `coalesce` buffer with room is
 * copied into it: copying 1 KiB costs less than the second iovec saves
 * (measured on loopback: ~0.15 us for 100 B and 1 KiB bodies, nothing
 * left at 4 KiB) */
#define GH_COALESCE_MAX       2048

/* consume n sent bytes from the chain; returns the first unsent link */
static gh_chain_t *
gh_chain_advance(gh_chain_t *in, off_t n)
{
    for (; in; in = in->next) {
        gh_buf_t *b = in->buf;
        off_t     size = gh_buf_size(b);

        if (n < size) {
            if (b->in_file) {
                b->file_pos += n;
            } else {
                b->pos += n;
            }
            return in;
        }
        n -= size;
        if (b->in_file) {
            b->file_pos = b->file_last;
        } else {
            b->pos = b->last;
        }
    }
    return NULL;
}

static gh_chain_t *
gh_chain_skip_empty(gh_chain_t *in)
{
    while (in && gh_buf_size(in->buf) == 0) {
        in = in->next;
    }
    return in;
}

/* Send the memory buffers at the head of the chain, up to IOV_MAX of
 * them and at most limit bytes; adjacent buffers are merged into one
 * iovec.  Returns bytes written or GH_AGAIN / GH_ERROR; *all is set when
 * everything attempted went out (so trying more makes sense).
 *
 * send()/sendmsg() rather than writev(): every fd here is a socket, and
 * the socket calls skip the VFS layer writev() goes through (the file
 * position lock, rw_verify_area, fsnotify): about 0.1 us less per call
 * for one iovec on this project's bench machine, two calls per proxied
 * request.  They also take MSG_NOSIGNAL, so a peer that reset the
 * connection is an EPIPE error even where SIGPIPE is not ignored. */
static ssize_t
gh_send_iov(gh_conn_t *c, gh_chain_t *in, off_t limit, bool *all)
{
    struct iovec iov[IOV_MAX];
    int          niov = 0;
    off_t        total = 0;
    ssize_t      n;
    gh_buf_t    *prev = NULL;      /* the buffer iov[niov - 1] ends with */

    for (; in && !in->buf->in_file && total < limit; in = in->next) {
        gh_buf_t *b = in->buf;
        size_t    size = (size_t) gh_min((off_t) (b->last - b->pos),
            limit - total);

        if (size == 0) {
            continue;
        }
        if (niov > 0 && (uint8_t *) iov[niov - 1].iov_base
                        + iov[niov - 1].iov_len == b->pos)
        {
            iov[niov - 1].iov_len += size;
            prev = b;
        } else if (prev && prev->coalesce && size <= GH_COALESCE_MAX
                   && (size_t) (prev->end - prev->last) >= size)
        {
            /* the bytes move into prev: if the send falls short, the
             * chain still holds them, now in prev, and b is consumed */
            memcpy(prev->last, b->pos, size);
            prev->last += size;
            b->pos += size;
            iov[niov - 1].iov_len += size;
        } else if (niov == IOV_MAX) {
            break;
        } else {
            iov[niov].iov_base = b->pos;
            iov[niov++].iov_len = size;
            prev = b;
        }
        total += (off_t) size;
    }
    for (;;) {
        if (niov == 1) {
            n = send(c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
        } else {
            struct msghdr msg = { .msg_iov = iov,
                                  .msg_iovlen = (size_t) niov };

            n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        }
        if (n >= 0) {
            *all = n == total;
            if (!*all) {
                c->write.ready = 0;
            }
            return n;
        }
        if (errno != EINTR) {
            break;
        }
    }
    c->write.ready = 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return GH_AGAIN;
    }
    c->write.error = 1;
    gh_conn_send_failed = niov == 1 ? "send" : "sendmsg";
    gh_log_error(GH_LOG_INFO, &c->log, errno, "%s() failed",
        gh_conn_send_failed);
    return GH_ERROR;
}

static ssize_t
gh_send_file(gh_conn_t *c, gh_buf_t *b, off_t limit, bool *all)
{
    off_t   pos = b->file_pos;
    size_t  size;
    ssize_t n;

    size = (size_t) gh_min(gh_min(b->file_last - b->file_pos, limit),
        (off_t) GH_SENDFILE_MAX);
    for (;;) {
        n = sendfile(c->fd, b->fd, &pos, size);
        if (n > 0) {
            *all = (size_t) n == size;
            if (!*all) {
                c->write.ready = 0;
            }
            return n;
        }
        if (n == 0) {
            /* the file shrank under us: the response length we announced
             * can no longer be met */
            gh_log_error(GH_LOG_ALERT, &c->log, 0,
                "sendfile() reported that file was truncated at %lld",
                (long long) pos);
            gh_conn_send_failed = "sendfile";
            return GH_ERROR;
        }
        if (errno != EINTR) {
            break;
        }
    }
    c->write.ready = 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return GH_AGAIN;
    }
    c->write.error = 1;
    gh_conn_send_failed = "sendfile";
    gh_log_error(GH_LOG_INFO, &c->log, errno, "sendfile() failed");
    return GH_ERROR;
}

gh_chain_t *
gh_unix_send_chain(gh_conn_t *c, gh_chain_t *in, off_t limit)
{
    off_t   max = limit > 0 ? limit : INT64_MAX, sent = 0;
    ssize_t n;
    bool    all = false;

    for (;;) {
        in = gh_chain_skip_empty(in);
        if (in == NULL || sent >= max) {
            return in;
        }
        n = in->buf->in_file ? gh_send_file(c, in->buf, max - sent, &all)
                             : gh_send_iov(c, in, max - sent, &all);
        if (n == GH_ERROR) {
            return GH_CHAIN_ERROR;
        }
        if (n == GH_AGAIN) {
            return in;
        }
        sent += n;
        c->sent += n;
        in = gh_chain_advance(in, n);
        if (!all) {
            /* a short write: the socket buffer is full */
            return gh_chain_skip_empty(in);
        }
    }
}

/* --- accepting ----------------------------------------------------------- */

static void
gh_accept_pause(gh_conn_t *lc)
{
    /* out of fds: a level-triggered listener would spin on the same
     * error, so step out of epoll for a moment and come back on a timer
     * (gh_event_accept sees timedout) */
    gh_loop_del_conn(lc->loop, lc);
    lc->read.cancelable = 1;
    gh_timer_add(lc->loop, &lc->read, GH_ACCEPT_PAUSE);
}

/* GH_OK: try the next accept4; anything else: stop this round */
static gh_int_t
gh_accept_error(gh_conn_t *lc, int err)
{
    switch (err) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
        return GH_DONE;
    case EINTR:
    case ECONNABORTED:     /* the client gave up while queued */
    case EPROTO:
        return GH_OK;
    case EMFILE:
    case ENFILE:
        gh_log_error(GH_LOG_CRIT, &lc->log, err, "accept4() on %s failed",
            lc->listening->addr_text);
        /* idle pipes kept for splice() are fds a client can use */
        gh_splice_cache_drop();
        gh_accept_pause(lc);
        return GH_DONE;
    default:
        gh_log_error(GH_LOG_ALERT, &lc->log, err, "accept4() on %s failed",
            lc->listening->addr_text);
        return GH_DONE;
    }
}

static void
gh_accept_overloaded(gh_conn_t *lc)
{
    static int64_t last;

    /* once a second at most: under overload this would flood the log */
    if (last != gh_current_sec) {
        last = gh_current_sec;
        gh_log_error(GH_LOG_ALERT, &lc->log, 0,
            "%lu worker_connections are not enough, dropping connections",
            (unsigned long) gh_conns.max);
    }
}

/* ss is the whole peer address: the text of a named unix-domain client
 * comes from it, c->sockaddr keeps only the family of such a peer */
static void
gh_accept_setup(gh_conn_t *c, gh_listening_t *ls,
    const struct sockaddr_storage *ss, socklen_t socklen)
{
    char   buf[128];
    int    one = 1;
    size_t len;

    c->listening = ls;
    c->accepted = 1;
    if (c->sockaddr.sa.sa_family == AF_UNIX) {
        c->unix_socket = 1;
    } else if (ls->nodelay) {
        c->tcp_nodelay = 1;
    } else if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one,
                   sizeof(one)) == 0)
    {
        c->tcp_nodelay = 1;
    }
    len = gh_sock_ntop((const struct sockaddr *) ss, socklen, buf,
        sizeof(buf), false);
    if (len < sizeof(c->addr_text_buf)) {
        memcpy(c->addr_text_buf, buf, len + 1);
        c->addr_text.data = (uint8_t *) c->addr_text_buf;
    } else {
        c->addr_text.data = (uint8_t *) gh_xstrdup(buf);
        c->addr_text_alloc = 1;
    }
    c->addr_text.len = len;
}

static void
gh_accept_one(gh_conn_t *lc, int fd, const struct sockaddr_storage *ss,
    socklen_t socklen)
{
    gh_listening_t *ls = lc->listening;
    gh_conn_t      *c;

    gh_conns.accepted++;
    /* graceful degradation past worker_connections: refuse this one
     * connection rather than stop accepting altogether */
    c = gh_conn_get(fd, lc->loop, ls->log ? ls->log : &lc->log);
    if (c == NULL) {
        close(fd);
        gh_accept_overloaded(lc);
        return;
    }
    c->socklen = gh_min(socklen, (socklen_t) sizeof(c->sockaddr));
    memcpy(&c->sockaddr, ss, c->socklen);
    gh_accept_setup(c, ls, ss, socklen);
    gh_conns.handled++;

    if (gh_loop_add_conn(lc->loop, c) != GH_OK || ls->handler == NULL) {
        gh_conn_close(c);
        return;
    }
    ls->handler(c);
}

void
gh_event_accept(gh_event_t *ev)
{
    gh_conn_t              *lc = ev->data;
    struct sockaddr_storage ss;
    socklen_t               len;
    int                     fd;

    if (ev->timedout) {
        ev->timedout = 0;
        if (gh_loop_add_listen(lc->loop, lc) != GH_OK) {
            gh_timer_add(lc->loop, ev, GH_ACCEPT_PAUSE);
            return;
        }
    }
    /* bounded, so one busy listener cannot starve the connections that
     * are already established; level-triggered epoll calls us again */
    for (int i = 0; i < GH_ACCEPT_BATCH; i++) {
        len = sizeof(ss);
        fd = accept4(lc->fd, (struct sockaddr *) &ss, &len,
            SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (gh_accept_error(lc, errno) != GH_OK) {
                return;
            }
            continue;
        }
        gh_accept_one(lc, fd, &ss, len);
        if (lc->destroyed) {
            return;      /* a handler closed the listener (shutdown) */
        }
    }
}

gh_int_t
gh_listening_add(gh_loop_t *loop, gh_listening_t *ls)
{
    gh_log_t  *log = ls->log ? ls->log : loop->log;
    gh_conn_t *c = gh_conn_get(ls->fd, loop, log);

    if (c == NULL) {
        gh_log_error(GH_LOG_EMERG, log, 0,
            "%lu worker_connections are not enough for the listening "
            "sockets", (unsigned long) gh_conns.max);
        return GH_ERROR;
    }
    c->listening = ls;
    c->unix_socket = ls->sockaddr.ss_family == AF_UNIX;
    c->read.handler = gh_event_accept;
    /* listening sockets are not connections: no "*N" in their lines */
    c->log.connection = 0;
    if (gh_loop_add_listen(loop, c) != GH_OK) {
        c->fd = -1;         /* the listening fd belongs to the cycle */
        gh_conn_close(c);
        return GH_ERROR;
    }
    ls->conn = c;
    return GH_OK;
}
