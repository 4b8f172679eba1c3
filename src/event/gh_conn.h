/*
 * gh_conn.h: a connection: fd, read and write events, arena, addresses and
 * I/O function pointers.  The HTTP code only calls c->recv / c->send /
 * c->send_chain, so TLS (issue 7) can be slotted in by swapping them.
 *
 * recv:  >0 bytes; 0 on EOF (read.eof set); GH_AGAIN (read.ready cleared);
 *        GH_ERROR (read.error set, errno kept)
 * send:  >=0 bytes written (short writes clear write.ready);
 *        GH_AGAIN; GH_ERROR
 * send_chain: writes as much of the chain as possible (send/sendmsg
 *        with MSG_NOSIGNAL; sendfile for file bufs), advances
 *        buf->pos/file_pos, returns the first unsent link (NULL when all
 *        sent) or GH_CHAIN_ERROR.  limit 0 means no limit.  sendfile()
 *        cannot take MSG_NOSIGNAL: workers must ignore SIGPIPE (as nginx
 *        does).
 */
#ifndef GH_CONN_H
#define GH_CONN_H

#include "gh_event.h"
#include <netinet/in.h>

#define GH_CHAIN_ERROR ((gh_chain_t *) -1)

typedef void (*gh_conn_handler_pt)(gh_conn_t *c);

/* a connection's own addresses: IPv4 or IPv6, 28 bytes rather than a
 * 128-byte sockaddr_storage, for an idle connection's footprint.  A
 * unix-domain address keeps its family but not its path (clients are
 * unnamed; a listener's path is in gh_listening_t, an upstream's in its
 * peer), and socklen is clamped to this size. */
typedef union {
    struct sockaddr      sa;
    struct sockaddr_in   sin;
    struct sockaddr_in6  sin6;
} gh_sockaddr_t;

struct gh_listening_s {
    int                      fd;
    struct sockaddr_storage  sockaddr;
    socklen_t                socklen;
    char                     addr_text[128];   /* "127.0.0.1:8080", "[::1]:80", "unix:/p" */
    int                      backlog;
    int                      rcvbuf, sndbuf;
    unsigned                 reuseport:1;
    unsigned                 ipv6only:1;
    unsigned                 deferred:1;
    unsigned                 inherited:1;   /* taken over from the previous cycle */
    unsigned                 keep:1;        /* still used by the new cycle */
    /* TCP_NODELAY set on the listener: accepted sockets inherit it, so
     * accepting costs no setsockopt() per connection */
    unsigned                 nodelay:1;
    gh_conn_handler_pt       handler;       /* init an accepted connection */
    /* called by gh_conn_close for an accepted connection, after its
     * arena is gone (the arena's cleanups may still use the protocol's
     * state) and before the socket is closed: the protocol frees what it
     * keeps outside the arena */
    gh_conn_handler_pt       close_handler;
    void                    *servers;       /* protocol data (http: address conf) */
    gh_log_t                *log;
    gh_conn_t               *conn;          /* pseudo-connection in a worker */
    size_t                   conn_arena_size;
    gh_int_t                 worker;        /* reuseport: worker index, else -1 */
};

typedef ssize_t (*gh_recv_pt)(gh_conn_t *c, uint8_t *buf, size_t size);
typedef ssize_t (*gh_send_pt)(gh_conn_t *c, const uint8_t *buf, size_t size);
typedef gh_chain_t *(*gh_send_chain_pt)(gh_conn_t *c, gh_chain_t *in,
    off_t limit);

struct gh_conn_s {
    void                    *data;
    gh_event_t               read;
    gh_event_t               write;
    gh_loop_t               *loop;
    gh_arena_t              *arena;
    gh_log_t                 log;       /* copy with per-connection handler */

    gh_recv_pt               recv;
    gh_send_pt               send;
    gh_send_chain_pt         send_chain;
    void                    *tls;       /* issue 7 */
    void                    *udata;     /* owner's bookkeeping (upstream) */

    gh_listening_t          *listening;
    gh_sockaddr_t            sockaddr;       /* peer */
    socklen_t                socklen;
    socklen_t                local_socklen;  /* 0: not asked for yet */
    gh_sockaddr_t            local_sockaddr; /* filled lazily */
    gh_str_t                 addr_text;      /* peer address, no port */
    /* the text of an IPv4 peer, NUL-terminated; a longer one is malloc'd
     * (addr_text_alloc) */
    char                     addr_text_buf[16];

    off_t                    sent;
    gh_conn_t               *idle_next;      /* idle list (keep-alive) */
    gh_conn_t               *idle_prev;

    /* the connection's number is log.connection; fd sits by the flags
     * so that neither leaves a hole in the object */
    int                      fd;
    unsigned                 idle:1;         /* may be closed on shutdown */
    unsigned                 close:1;        /* close requested (shutdown) */
    unsigned                 destroyed:1;
    unsigned                 tcp_nodelay:1;
    unsigned                 unix_socket:1;
    unsigned                 upstream:1;     /* outgoing */
    unsigned                 accepted:1;     /* by gh_event_accept */
    unsigned                 addr_text_alloc:1;
};

/* per-worker connection accounting */
typedef struct {
    gh_uint_t  active;
    gh_uint_t  max;              /* worker_connections (default 512,
                                    0: no limit); listening sockets' and
                                    upstream connections count too */
    uint64_t   accepted;
    uint64_t   handled;
    gh_conn_t *idle_head;        /* keep-alive connections */
    bool       quitting;         /* graceful shutdown in progress */
} gh_conn_stats_t;

extern gh_conn_stats_t gh_conns;

/* allocate a connection object for fd (NULL if worker_connections hit) */
gh_conn_t *gh_conn_get(int fd, gh_loop_t *loop, gh_log_t *log);
/* remove from epoll, delete timers and posted events, destroy the arena,
 * call ls->close_handler (accepted connections), close fd, free the
 * object.  The arena's cleanups run before close(fd), so they may still
 * use the socket (TLS close_notify).  The object itself
 * goes back to the pool only at gh_conn_release_closed(): until then it
 * stays readable with c->destroyed set, so a handler further down the
 * same epoll batch (or the caller) can notice the close safely. */
void gh_conn_close(gh_conn_t *c);
/* return the objects closed since the last call to the pool; the loop
 * calls it after each epoll batch and after timers/posted events */
void gh_conn_release_closed(void);

/* the connection's arena, created on first use (block size
 * ls->conn_arena_size, default 1024): an accepted connection has none
 * until its protocol needs one, so an idle keep-alive connection is its
 * object and its protocol's state only.  Aborts on system OOM. */
gh_arena_t *gh_conn_arena(gh_conn_t *c);
/* bytes of a connection object (it comes from a slab) */
size_t gh_conn_object_size(void);

/* fill c->local_sockaddr once (getsockname); GH_ERROR with errno kept */
gh_int_t gh_conn_local_addr(gh_conn_t *c);

void gh_conn_set_idle(gh_conn_t *c, bool idle);
/* close every idle connection (graceful shutdown / reload): as nginx,
 * each one is taken off the idle list, gets c->close = 1 and its read
 * handler is called, which must check c->close and close (a conn without
 * a read handler is closed directly).  An HTTP/2 connection is on the
 * list all its life: it answers with GOAWAY and ends once its streams
 * are done. */
void gh_conn_close_idle(void);

/* the call that made the last send / send_chain fail: "send",
 * "sendmsg", "sendfile", "SSL_write" or "pread" (a file buffer under
 * TLS), so that the caller's log line names the call actually made, as
 * nginx's "writev() failed (32: Broken pipe) while ...".  Workers are
 * single-threaded: read it right after the failure. */
extern const char *gh_conn_send_failed;

/* plain socket I/O, default for c->recv etc. */
ssize_t gh_unix_recv(gh_conn_t *c, uint8_t *buf, size_t size);
/* readv(2) with gh_unix_recv's contract (short read clears read.ready);
 * for plain sockets only (c->recv == gh_unix_recv) */
ssize_t gh_unix_readv(gh_conn_t *c, struct iovec *iov, int cnt);
/* the read handler's work in a lingering close: read and drop what the
 * peer still sends, close on EOF, an error or the caller's timer (ev
 * timed out).  raw: the socket itself even under TLS (after our
 * close_notify nothing of it will be decrypted) */
void gh_conn_linger_drain(gh_event_t *ev, bool raw);
/* lingering close: our side shut for writing (a failure closes), then
 * gh_conn_linger_drain as the read handler, bounded by a read timer of
 * `timeout` ms (0: the one already set stays) */
void gh_conn_lingering_close(gh_conn_t *c, gh_msec_t timeout, bool raw);
ssize_t gh_unix_send(gh_conn_t *c, const uint8_t *buf, size_t size);
gh_chain_t *gh_unix_send_chain(gh_conn_t *c, gh_chain_t *in, off_t limit);

/* accept handler for a listening socket's pseudo-connection: accept4 in a
 * loop (bounded), gh_conn_get, set addresses, call ls->handler(c).
 * The new connection has its addresses (no arena yet: gh_conn_arena) and
 * is registered in epoll (gh_loop_add_conn) when the handler runs.  Past worker_connections the socket is closed at once; on
 * EMFILE/ENFILE accepting pauses for 500ms. */
void gh_event_accept(gh_event_t *ev);
/* in a worker: make the pseudo-connection for ls (read handler
 * gh_event_accept), set ls->conn and register it with
 * gh_loop_add_listen.  Closing ls->conn closes the listening fd. */
gh_int_t gh_listening_add(gh_loop_t *loop, gh_listening_t *ls);

/* open listening sockets (bind, listen, nonblocking, options);
 * GH_ERROR with a logged message on failure.  Does nothing for an
 * inherited socket.  IPv6 sockets always get IPV6_V6ONLY (nginx's
 * default), so "[::]:80" and "80" can both be bound.  A stale unix
 * socket file (nobody accepting on it) is removed first.  Fills
 * addr_text if empty. */
gh_int_t gh_listening_open(gh_listening_t *ls, gh_log_t *log);

/* "127.0.0.1:8080" / "[::1]:80" / "unix:/path" from a sockaddr; returns len */
size_t gh_sock_ntop(const struct sockaddr *sa, socklen_t len, char *buf,
    size_t size, bool port);
/* parse "addr:port", "port", "[::]:port", "*:port", "unix:/path";
 * host names are resolved with getaddrinfo (config time only, the first
 * IPv4 address is preferred).  Without a port default_port is used, or
 * with default_port <= 0 it is an error.  *err is nginx's wording:
 * "invalid port", "host not found", "invalid host", "no host",
 * "invalid IPv6 address", "no path in the unix domain socket", ... */
gh_int_t gh_parse_addr_port(const gh_str_t *s, struct sockaddr_storage *ss,
    socklen_t *len, int default_port, const char **err);

#endif
