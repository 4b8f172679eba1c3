/*
 * gh_upstream.h: upstream groups, peers, connections and keep-alive pools.
 *
 * An upstream group comes from an `upstream NAME { server ...; }` block or
 * is made implicitly for `proxy_pass http://host:port` (one server, whose
 * host name resolves to one or more peers).  The proxy (and later
 * fastcgi/uwsgi/...) modules use this layer to:
 *
 *   gh_upstream_peer_get()     pick a peer (round robin, skipping peers in
 *                              their fail window), honouring tries
 *   gh_upstream_connect()      get a connection to it: an idle pooled one
 *                              (already registered, ready) or a new one
 *                              connecting in the background
 *   gh_upstream_peer_free()    report the outcome (failure accounting)
 *   gh_upstream_keepalive_put() return a clean connection to the pool or
 *                              close it
 *
 * Peer state lives in the worker today; issue 6 (load balancing) moves
 * the shared parts (fails, health) into a shm zone without changing this
 * interface.
 */
#ifndef GH_UPSTREAM_H
#define GH_UPSTREAM_H

#include "../http/gh_http.h"

typedef struct gh_upstream_peer_s     gh_upstream_peer_t;
typedef struct gh_upstream_srv_conf_s gh_upstream_srv_conf_t;
typedef struct gh_upstream_main_conf_s gh_upstream_main_conf_t;

struct gh_upstream_peer_s {
    struct sockaddr_storage  sockaddr;
    socklen_t                socklen;
    char                     name[128];     /* "127.0.0.1:8080", "unix:/p" */
    gh_str_t                 server;        /* `server` value it came from */
    gh_int_t                 weight;
    gh_int_t                 effective_weight;
    gh_int_t                 current_weight;
    gh_int_t                 max_fails;
    gh_msec_t                fail_timeout;
    gh_uint_t                fails;
    gh_msec_t                checked;       /* start of the fail window */
    gh_msec_t                accessed;      /* last failure */
    gh_uint_t                conns;         /* active connections (this worker) */
    gh_uint_t                max_conns;     /* 0: no limit (per worker) */
    unsigned                 down:1;
    unsigned                 backup:1;
    gh_upstream_peer_t      *next;
};

typedef struct {
    gh_str_t                 name;          /* as written, without params */
    gh_int_t                 weight;
    gh_int_t                 max_fails;
    gh_msec_t                fail_timeout;
    gh_uint_t                max_conns;
    unsigned                 down:1;
    unsigned                 backup:1;
    unsigned                 resolve:1;     /* re-resolve at run time */
    const char              *file;
    unsigned                 line;
} gh_upstream_server_t;

/* idle pooled connection: links embedded in gh_upstream_conn_info_t,
 * owned by gh_upstream_keepalive.c */
typedef struct gh_upstream_idle_s gh_upstream_idle_t;

struct gh_upstream_idle_s {
    gh_conn_t               *c;             /* NULL: not in a pool */
    gh_upstream_idle_t      *prev;          /* in us->idle, newest first */
    gh_upstream_idle_t      *next;
    gh_upstream_idle_t      *all_prev;      /* every pooled conn of the */
    gh_upstream_idle_t      *all_next;      /* worker (close_all) */
};

struct gh_upstream_srv_conf_s {
    gh_str_t                 host;          /* upstream name or host */
    int                      port;          /* implicit: port, 0 = block */
    bool                     implicit;      /* made from proxy_pass */
    bool                     no_port;       /* implicit, proxy_pass gave no
                                               port (port is then 80) */
    bool                     ssl;           /* https (issue 7) */
    gh_array_t               servers;       /* gh_upstream_server_t */
    gh_upstream_peer_t      *peers;         /* primary, list */
    gh_upstream_peer_t      *backup;        /* backup, list */
    gh_uint_t                npeers;
    gh_uint_t                nbackup;
    const char              *file;
    unsigned                 line;

    /* keepalive N; keepalive_requests; keepalive_timeout; keepalive_time */
    gh_int_t                 keepalive;     /* 0: no pool */
    gh_int_t                 keepalive_requests;
    gh_msec_t                keepalive_timeout;
    gh_msec_t                keepalive_time;

    /* per worker */
    gh_upstream_idle_t      *idle;          /* LRU list of idle conns */
    gh_upstream_idle_t      *idle_tail;     /* least recently used */
    gh_uint_t                nidle;
};

struct gh_upstream_main_conf_s {
    gh_array_t               upstreams;     /* gh_upstream_srv_conf_t * */
};

extern gh_module_t gh_http_upstream_module;

/* find or create an upstream group: for `proxy_pass http://NAME...` the
 * name refers to an upstream{} block if one exists (anywhere in http{},
 * also after the proxy_pass), else an implicit group for host:port is
 * made and resolved at the end of the http block.  port 0 = not given
 * (the implicit group then uses 80).  NULL: the error is logged already
 * (return GH_CONF_ERROR).  Call it from the directive handler: implicit
 * groups are resolved by this module's init_main_conf, which the http
 * block runs before the merges. */
gh_upstream_srv_conf_t *gh_upstream_add(gh_conf_t *cf, const gh_str_t *host,
    int port, bool implicit);

/* find an explicit upstream{} group by name at run time (proxy_pass with
 * variables); NULL if none */
gh_upstream_srv_conf_t *gh_upstream_find(gh_http_request_t *r,
    const gh_str_t *name);

/* per-request peer selection state */
typedef struct {
    gh_upstream_srv_conf_t  *us;
    gh_upstream_peer_t      *peer;          /* current */
    gh_uint_t                tries;         /* attempts left */
    uint64_t                 tried[4];      /* bitmap of tried peers (<= 256) */
    gh_uint_t                ntried;
    bool                     backup;        /* moved on to us->backup */
    gh_log_t                *log;           /* caller may set after init:
                                               "temporarily disabled"
                                               warnings go there */
} gh_upstream_peer_state_t;

/* peers per list (primary, backup): the size of the tried bitmap */
#define GH_UPSTREAM_MAX_PEERS 256

/* init state for a request: tries = number of peers (or the given
 * proxy_next_upstream_tries if smaller and > 0) */
void gh_upstream_peer_init(gh_upstream_peer_state_t *ps,
    gh_upstream_srv_conf_t *us, gh_uint_t max_tries);
/* pick the next peer; GH_OK, or GH_DECLINED when none is usable
 * ("no live upstreams") */
gh_int_t gh_upstream_peer_get(gh_upstream_peer_state_t *ps);
/* report the attempt's outcome, once per GH_OK from peer_get: failed =
 * connection error/timeout/invalid header (counts towards max_fails).
 * Decrements tries.  A group of one server and no backup is never marked
 * failed and gets tries = 0: as nginx, there is nothing to retry.  If a
 * pooled connection failed before any response byte, nginx retries
 * without spending a try: ps->tries++ after this call. */
void gh_upstream_peer_free(gh_upstream_peer_state_t *ps, bool failed);

/*
 * Connect to ps->peer.  Returns a connection registered in the loop with
 * c->data = NULL for the caller to set:
 *   GH_OK     *pooled = true: an idle keep-alive connection, ready now
 *   GH_AGAIN  a new connection, connect() in progress: wait for the write
 *             event, then call gh_upstream_connect_check()
 *   GH_OK     *pooled = false: connected at once (unix sockets)
 *   GH_ERROR  socket/connect failed at once (errno kept, logged by caller)
 * The connection's arena is small; the caller owns it and ends it with
 * gh_upstream_keepalive_put() or gh_conn_close().  It must not be reset:
 * the gh_upstream_conn_info_t lives in it.  A pooled connection has
 * write.ready set: write the request at once.
 */
gh_int_t gh_upstream_connect(gh_upstream_peer_state_t *ps, gh_loop_t *loop,
    gh_log_t *log, gh_conn_t **out, bool *pooled);
/* after the write event of a connecting socket: GH_OK or GH_ERROR (errno) */
gh_int_t gh_upstream_connect_check(gh_conn_t *c);

/* bookkeeping of an upstream connection, kept in c->udata (allocated
 * in c->arena by gh_upstream_connect) */
typedef struct {
    gh_uint_t                requests;      /* responses completed on it */
    gh_msec_t                created;
    gh_upstream_peer_t      *peer;
    gh_upstream_srv_conf_t  *us;
    gh_upstream_idle_t       idle;          /* pool links (private) */
} gh_upstream_conn_info_t;

#define gh_upstream_conn_info(c) ((gh_upstream_conn_info_t *) (c)->udata)

/* a response ended cleanly and the connection may be reused: the caller
 * has incremented info->requests.  Keep it in the pool (closing the
 * oldest when full) or close it (pool off, keepalive_requests or
 * keepalive_time reached).  The pool watches idle connections: the
 * upstream closing one, or sending unexpected bytes, or
 * keepalive_timeout passing, closes it.  c belongs to the pool after
 * the call, which may already have closed it: do not touch it again. */
void gh_upstream_keepalive_put(gh_conn_t *c);

/* take an idle connection to peer (same sockaddr) out of us's pool:
 * its timer is stopped, it is no longer c->idle, handlers are no-ops
 * and c->data is NULL.  NULL if none.  gh_upstream_connect() calls it. */
gh_conn_t *gh_upstream_keepalive_get(gh_upstream_srv_conf_t *us,
    const gh_upstream_peer_t *peer);

/* close every pooled connection (worker exit) */
void gh_upstream_keepalive_close_all(void);

#endif
