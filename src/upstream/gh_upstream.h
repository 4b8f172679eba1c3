/*
 * gh_upstream.h: upstream groups, peers, balancing, connections and
 * keep-alive pools.
 *
 * An upstream group comes from an `upstream NAME { server ...; }` block or
 * is made implicitly for `proxy_pass http://host:port` (one server, whose
 * host name resolves to one or more peers).  The proxy (and later
 * fastcgi/uwsgi/...) modules use this layer to:
 *
 *   gh_upstream_peer_init()    start a request's selection (hash key,
 *                              client address, sticky cookie)
 *   gh_upstream_peer_get()     pick a peer with the group's method,
 *                              skipping unusable ones, honouring tries
 *   gh_upstream_connect()      get a connection to it: an idle pooled one
 *                              (already registered, ready) or a new one
 *                              connecting in the background
 *   gh_upstream_peer_response() the response head arrived (latency,
 *                              status counters, sticky Set-Cookie)
 *   gh_upstream_peer_free()    report the outcome (failure accounting)
 *   gh_upstream_keepalive_put() return a clean connection to the pool or
 *                              close it
 *
 * A peer's run-time state (fails, connections, weights, health, counters)
 * is a gh_upstream_peer_st_t: the worker's own, or, with `zone NAME SIZE`,
 * one in shared memory that every worker reads and writes under the
 * zone's lock (gh_upstream_zone.c).  Balancing is in
 * gh_upstream_balance.c, active health checks in gh_upstream_hc.c, the
 * status endpoint in gh_upstream_status.c.
 */
#ifndef GH_UPSTREAM_H
#define GH_UPSTREAM_H

#include "../http/gh_http.h"

typedef struct gh_upstream_peer_s     gh_upstream_peer_t;
typedef struct gh_upstream_srv_conf_s gh_upstream_srv_conf_t;
typedef struct gh_upstream_main_conf_s gh_upstream_main_conf_t;

/* internal unit of current_weight: weights are multiplied by it when
 * added, so that a peer in slow start can carry a fraction of its
 * weight while the order stays nginx's for whole weights (the smooth
 * round robin is unchanged when every weight is scaled alike) */
#define GH_UPSTREAM_WSCALE  1000

/* health check results a peer can carry (one bit per check, at most) */
#define GH_UPSTREAM_MAX_CHECKS 32

/* run-time state of a peer.  Without a zone each worker has its own (in
 * the peer); with `zone` it lives in shared memory and is read and
 * written under the zone's lock only (gh_upstream_lock()). */
typedef struct {
    /* balancing */
    gh_int_t                 effective_weight;  /* weight units */
    gh_int_t                 current_weight;    /* x GH_UPSTREAM_WSCALE */
    /* passive health: max_fails / fail_timeout */
    gh_uint_t                fails;         /* in the current window */
    gh_msec_t                checked;       /* start of the fail window */
    gh_msec_t                accessed;      /* last failure */
    gh_uint_t                conns;         /* requests using it now */
    /* slow start: when it came back into service (0: not ramping) */
    gh_msec_t                recovered;
    uint32_t                 hc_down;       /* bit per health check
                                               holding it out */
    uint32_t                 hc_checking;   /* bit per mandatory check
                                               not run yet */
    unsigned                 unavailable:1; /* max_fails reached; cleared
                                               when it is picked again */
    /* statistics (the status endpoint) */
    uint64_t                 requests;      /* times picked */
    uint64_t                 responses[6];  /* 1xx..5xx, other */
    uint64_t                 failures;      /* failed attempts */
    uint64_t                 unavail;       /* times max_fails took it out */
    uint64_t                 header_us;     /* EWMA of the time to the */
    uint64_t                 response_us;   /* head / the last byte, us */
    gh_msec_t                selected;      /* wall clock ms, last pick */
} gh_upstream_peer_st_t;

struct gh_upstream_peer_s {
    struct sockaddr_storage  sockaddr;
    socklen_t                socklen;
    char                     name[128];     /* "127.0.0.1:8080", "unix:/p" */
    gh_str_t                 server;        /* `server` value it came from */
    /* from the server line */
    gh_int_t                 weight;
    gh_int_t                 max_fails;
    gh_msec_t                fail_timeout;
    gh_uint_t                max_conns;     /* 0: no limit (per worker
                                               without a zone) */
    gh_msec_t                slow_start;    /* 0: off */
    unsigned                 down:1;
    unsigned                 backup:1;
    gh_upstream_peer_t      *next;

    /* run-time state: read it through gh_upstream_st().  st points into
     * the group's zone, or is NULL for the worker's own `local` */
    gh_upstream_peer_st_t   *st;
    gh_upstream_peer_st_t    local;
    void                    *hc;            /* health check state (zone) */
    char                     sticky_id[33]; /* hex MD5 of the name, for
                                               `sticky cookie`; "" unset */
};

static inline gh_upstream_peer_st_t *
gh_upstream_st(gh_upstream_peer_t *peer)
{
    return peer->st ? peer->st : &peer->local;
}

typedef struct {
    gh_str_t                 name;          /* as written, without params */
    gh_int_t                 weight;
    gh_int_t                 max_fails;
    gh_msec_t                fail_timeout;
    gh_uint_t                max_conns;
    gh_msec_t                slow_start;
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
    gh_uint_t                index;         /* in the main conf's list */
    /* bumped whenever a peer list changes at run time (`resolve`):
     * derived tables (hash ring, random ranges) are rebuilt on use */
    gh_uint_t                generation;

    /* balancing method (gh_upstream_balance.c) */
    gh_uint_t                method;        /* GH_UPSTREAM_LB_* */
    unsigned                 flags;         /* server parameters allowed */
    const char              *method_file;  /* where it was set, for the */
    unsigned                 method_line;   /* "redefined" warning */
    gh_http_complex_value_t *hash_key;      /* hash KEY */
    bool                     least_time_last_byte;
    bool                     least_time_inflight;
    void                    *lb_data;       /* the method's tables */
    gh_uint_t                lb_generation; /* generation they are for */

    /* zone NAME [SIZE] (gh_upstream_zone.c) */
    gh_shm_zone_t           *zone;
    void                    *zone_group;    /* this group in the zone */

    /* sticky cookie (gh_upstream_sticky.c) */
    void                    *sticky;

    /* health_check in locations proxying here (gh_upstream_hc.c) */
    gh_array_t              *checks;        /* gh_upstream_hc_t *, NULL */

    /* keepalive N; keepalive_requests; keepalive_timeout; keepalive_time */
    gh_int_t                 keepalive;     /* 0: no pool */
    gh_int_t                 keepalive_requests;
    gh_msec_t                keepalive_timeout;
    gh_msec_t                keepalive_time;

    /* upstream_loopback_congestion (of http{}): the TCP congestion
     * control of new connections to a loopback peer, NULL = the system's */
    const char              *loopback_cc;

    /* per worker */
    gh_upstream_idle_t      *idle;          /* LRU list of idle conns */
    gh_upstream_idle_t      *idle_tail;     /* least recently used */
    gh_uint_t                nidle;
};

struct gh_upstream_main_conf_s {
    gh_array_t               upstreams;     /* gh_upstream_srv_conf_t * */
    /* upstream_loopback_congestion NAME | off: "" = off, NULL = unset */
    const char              *loopback_cc;
};

/* the default of upstream_loopback_congestion */
#define GH_UPSTREAM_LOOPBACK_CC  "reno"

/* a peer on this host's loopback: 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 */
bool gh_upstream_is_loopback(const struct sockaddr_storage *ss);

/* balancing methods */
enum {
    GH_UPSTREAM_LB_RR = 0,          /* smooth weighted round robin */
    GH_UPSTREAM_LB_LEAST_CONN,
    GH_UPSTREAM_LB_IP_HASH,
    GH_UPSTREAM_LB_HASH,
    GH_UPSTREAM_LB_CHASH,           /* hash KEY consistent (ketama) */
    GH_UPSTREAM_LB_RANDOM,
    GH_UPSTREAM_LB_RANDOM2,         /* random two [least_conn] */
    GH_UPSTREAM_LB_LEAST_TIME
};

/* server parameters a method allows (nginx's flags: the hash methods
 * and random refuse backup; slow_start only where weights ramp) */
#define GH_UPSTREAM_F_BACKUP      0x01
#define GH_UPSTREAM_F_SLOW_START  0x02
#define GH_UPSTREAM_F_ALL         0x03

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

/* as gh_upstream_add (implicit) for a scheme whose default port is not
 * 80 (https: 443): a group made without a port uses default_port, and an
 * upstream{} block of that name still takes it over (issue 7) */
gh_upstream_srv_conf_t *gh_upstream_add_default_port(gh_conf_t *cf,
    const gh_str_t *host, int port, int default_port);

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
    bool                     held;          /* peer got, not freed yet */
    gh_log_t                *log;           /* caller may set after init:
                                               "temporarily disabled"
                                               warnings go there */
    /* the method's per-request state */
    gh_str_t                 key;           /* hash KEY's value */
    const uint8_t           *addr;          /* ip_hash: client address */
    size_t                   addrlen;
    gh_uint_t                hash;          /* ip_hash/hash: running hash;
                                               chash: point index */
    gh_uint_t                rehash;
    gh_uint_t                hash_tries;    /* picks that missed (<= 20) */
    gh_upstream_peer_t      *sticky;        /* the cookie's peer, if any */
    bool                     sticky_set;    /* Set-Cookie wanted */
    /* the attempt's timing and outcome (latency, statistics) */
    uint64_t                 start_us;
    uint64_t                 header_us;     /* 0: no head yet */
    gh_uint_t                status;
} gh_upstream_peer_state_t;

/* peers per list (primary, backup): the size of the tried bitmap */
#define GH_UPSTREAM_MAX_PEERS 256

/* init state for a request: tries = number of peers not `down` (or
 * proxy_next_upstream_tries if smaller and > 0).  r gives the method
 * what it hashes (hash KEY, the client address) and the sticky cookie;
 * it may be NULL (then hash methods fall back to round robin, as nginx
 * does for an empty key).  GH_OK, or GH_ERROR (the key could not be
 * evaluated: 500). */
gh_int_t gh_upstream_peer_init(gh_upstream_peer_state_t *ps,
    gh_upstream_srv_conf_t *us, gh_http_request_t *r, gh_uint_t max_tries);
/* pick the next peer; GH_OK, or GH_DECLINED when none is usable
 * ("no live upstreams": every peer down, failed, unhealthy, at max_conns
 * or tried) */
gh_int_t gh_upstream_peer_get(gh_upstream_peer_state_t *ps);
/* the response head of the current attempt arrived with status: the
 * time to the head and the status class go into the peer's statistics
 * (and least_time header).  Call as soon as the head is parsed. */
void gh_upstream_peer_response(gh_upstream_peer_state_t *ps,
    gh_uint_t status);
/* the head is about to go to the client: adds the sticky cookie to r's
 * response headers when the client is not bound to this peer yet.  Call
 * after the upstream's headers were copied. */
void gh_upstream_peer_headers_out(gh_upstream_peer_state_t *ps,
    gh_http_request_t *r);
/* report the attempt's outcome, once per GH_OK from peer_get (a second
 * call does nothing, so an end-of-request path may call it again):
 * failed = connection error/timeout/invalid header (counts towards
 * max_fails).  Decrements tries.  A group of one server and no backup is
 * never marked failed and gets tries = 0: as nginx, there is nothing to
 * retry.  If a pooled connection failed before any response byte,
 * nginx retries without spending a try: ps->tries++ after this call. */
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
    /* the whole peer address, a unix path included (c->sockaddr keeps
     * only IPv4/IPv6): what the keep-alive pool and the TLS session
     * cache match on */
    struct sockaddr_storage  sockaddr;
    socklen_t                socklen;
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

/* --- for code that changes peer lists at run time (`resolve`) -------- */

/* give a peer made at run time its state, reset to a fresh peer's
 * (conns is kept: requests still using it count there).  With a zone
 * the state is the zone's entry for this group and address, shared by
 * every worker that has the same address; without, the peer's own. */
void gh_upstream_peer_attach(gh_upstream_srv_conf_t *us,
    gh_upstream_peer_t *peer);
/* a peer list of us changed: derived tables are rebuilt on next use */
void gh_upstream_peers_changed(gh_upstream_srv_conf_t *us);
/* free the method tables built at run time (those of the configuration
 * go with its arena); for groups made outside a configuration (tests) */
void gh_upstream_lb_release(gh_upstream_srv_conf_t *us);

/* --- the methods' building blocks, exposed for the unit tests -------- */

/* nginx's ip_hash over addr: hash = (hash * 113 + byte) % 6271 from 89,
 * once per pick; returns the new hash */
gh_uint_t gh_upstream_ip_hash_step(gh_uint_t hash, const uint8_t *addr,
    size_t len);
/* hash KEY's value for try number rehash (0 first):
 * (crc32([rehash] KEY) >> 16) & 0x7fff, as Cache::Memcached */
uint32_t gh_upstream_hash_value(const gh_str_t *key, gh_uint_t rehash);
/* one ketama point of a server: crc32(host "\0" port prev_hash_le32) */
uint32_t gh_upstream_chash_point(const gh_str_t *server, uint32_t prev);
/* the consistent-hash ring of us's primary peers (built on demand):
 * number of points and, for point i, its hash and server name */
gh_uint_t gh_upstream_chash_points(gh_upstream_srv_conf_t *us);
void gh_upstream_chash_point_at(gh_upstream_srv_conf_t *us, gh_uint_t i,
    uint32_t *hash, gh_str_t *server);
/* seed this process's generator for `random` (tests; workers seed from
 * their pid and the clock) */
void gh_upstream_random_seed(uint64_t seed);

#endif
