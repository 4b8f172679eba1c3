/*
 * gh_upstream_resolver.h: `resolver` and `resolver_timeout` for HTTP,
 * and the two places names are resolved at run time:
 *
 *   proxy_pass with variables naming a host: the proxy asks
 *       gh_http_resolver() for the location's resolver, looks the name
 *       up (gh_resolve) and builds a group for the one request out of
 *       the addresses (gh_upstream_resolved_group)
 *   `server NAME resolve;` in an upstream{} block: each worker looks
 *       NAME up through the http-level resolver when it starts and again
 *       whenever the answer expires (TTL, or `valid=`), and rewrites that
 *       server's peers: unchanged addresses keep their peer (and its
 *       fail state), gone ones leave the list, new ones join it
 *
 * A resolver runs per worker (gh_resolver_t, made in init_process for
 * each `resolver` directive); locations without their own inherit the
 * enclosing level's, as in nginx.
 */
#ifndef GH_UPSTREAM_RESOLVER_H
#define GH_UPSTREAM_RESOLVER_H

#include "gh_upstream.h"
#include "../event/gh_resolver.h"

/* one `resolver` directive */
typedef struct {
    gh_resolver_server_t    *servers;
    size_t                   nservers;
    gh_msec_t                valid;        /* 0: the answers' TTL */
    bool                     ipv4;
    bool                     ipv6;
    gh_resolver_t           *resolver;     /* this worker's (init_process) */
} gh_upstream_resolver_conf_t;

extern gh_module_t gh_http_resolver_module;

/* the resolver of r's location and its resolver_timeout; NULL when no
 * `resolver` applies there */
gh_resolver_t *gh_http_resolver(gh_http_request_t *r, gh_msec_t *timeout);

/* a group of one request's own (in arena a): one peer per address, all
 * on port, round robin with next-upstream between them as for any
 * group; NULL when the arena is out of budget */
gh_upstream_srv_conf_t *gh_upstream_resolved_group(gh_arena_t *a,
    const gh_str_t *host, int port, const gh_resolver_addr_t *addrs,
    size_t n);

/* "host[:port]" whose host is a name, not an IP literal or unix: path:
 * what `resolve` applies to */
bool gh_upstream_server_is_name(const gh_str_t *name);
/* split "host[:port]" (port 80 if none); GH_ERROR with *err in nginx's
 * words ("invalid port", "no host") */
gh_int_t gh_upstream_split_host_port(const gh_str_t *name, gh_str_t *host,
    int *port, const char **err);
/* a group whose primary list is to be filled by `resolve` servers: it
 * may have no peers at configuration time */
bool gh_upstream_resolvable(const gh_upstream_srv_conf_t *us);

/* rewrite the peers of server s of us to addrs (port added), keeping
 * the peer objects of unchanged addresses; retired peers are never freed
 * (a request or a pooled connection may still point at one) but come
 * back if their address does.  Returns true when the list changed.
 * Exposed for the unit tests. */
bool gh_upstream_set_server_addrs(gh_upstream_srv_conf_t *us,
    gh_upstream_server_t *s, int port, const gh_resolver_addr_t *addrs,
    size_t n, gh_upstream_peer_t **retired, gh_log_t *log);

#endif
