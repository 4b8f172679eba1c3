/*
 * gh_upstream.c: upstream groups (the `upstream` block, groups made
 * implicitly by proxy_pass), their `server` lines, and connecting to a
 * peer.  Choosing a peer is gh_upstream_balance.c's, shared state
 * gh_upstream_zone.c's.
 *
 * Configuration time:
 *   upstream NAME { server ...; }  an explicit group; each `server` name
 *       is resolved when the line is read and every A/AAAA record becomes
 *       a peer (as nginx does); `server NAME resolve;` is left to the
 *       workers' resolver instead (gh_upstream_resolver.c)
 *   proxy_pass http://host[:port]  gh_upstream_add(): the upstream{}
 *       block of that name if there is one (written before or after),
 *       else an implicit group per host:port, shared by every proxy_pass
 *       naming it and resolved in init_main_conf, once the whole http{}
 *       block has been read and no later block can claim the name
 *
 * Per request:
 *   peer_init -> peer_get --none--> "no live upstreams" (502)
 *                   |
 *                   v
 *                connect -> ... -> peer_free(failed) --tries left--> peer_get
 *
 * Peer state (weights, fails, connections) lives in each worker's copy
 * of the configuration, so a worker learns about a dead peer on its own,
 * unless the group has a `zone`: then all workers share it.
 */
#include "gh_upstream_int.h"
#include "gh_upstream_resolver.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <unistd.h>

/* nginx's defaults */
#define GH_UPSTREAM_DEFAULT_PORT   80

/* the port of an implicit group made without one: 80, or 443 while
 * gh_upstream_add_default_port() runs (https, issue 7) */
static int gh_upstream_default_port = GH_UPSTREAM_DEFAULT_PORT;
#define GH_UPSTREAM_MAX_FAILS      1
#define GH_UPSTREAM_FAIL_TIMEOUT   10000
#define GH_UPSTREAM_KA_REQUESTS    1000
#define GH_UPSTREAM_KA_TIMEOUT     60000
#define GH_UPSTREAM_KA_TIME        3600000

/* an upstream connection keeps little of its own (the bookkeeping and
 * whatever the proxy adds): buffers belong to the request */
#define GH_UPSTREAM_CONN_ARENA     512

typedef struct {
    struct sockaddr_storage  sockaddr;
    socklen_t                socklen;
} gh_upstream_addr_t;

static const char *gh_upstream_block(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_upstream_server(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_upstream_keepalive(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_upstream_set_num(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_upstream_set_msec(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static void *gh_upstream_create_main_conf(gh_conf_t *cf);
static const char *gh_upstream_init_main_conf(gh_conf_t *cf, void *conf);
static const char *gh_upstream_loopback_cc(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static void gh_upstream_exit_process(gh_cycle_t *cycle);

#define UPS GH_HTTP_UPS_CONF
#define USCF(f) offsetof(gh_upstream_srv_conf_t, f)

/* Directives inside upstream{} find their group through
 * cf->handler_data, which the block handler sets; `conf` is the module's
 * main conf and of no use to them. */
static const gh_command_t gh_upstream_commands[] = {
    { "upstream", GH_HTTP_MAIN_CONF, GH_CONF_BLOCK | GH_CONF_TAKE1,
      gh_upstream_block, 0, 0, NULL },
    { "server", UPS, GH_CONF_1MORE, gh_upstream_server, 0, 0, NULL },
    { "keepalive", UPS, GH_CONF_TAKE1, gh_upstream_keepalive, 0, 0, NULL },
    { "keepalive_requests", UPS, GH_CONF_TAKE1, gh_upstream_set_num, 0,
      USCF(keepalive_requests), NULL },
    { "keepalive_timeout", UPS, GH_CONF_TAKE1, gh_upstream_set_msec, 0,
      USCF(keepalive_timeout), NULL },
    { "keepalive_time", UPS, GH_CONF_TAKE1, gh_upstream_set_msec, 0,
      USCF(keepalive_time), NULL },
    { "zone", UPS, GH_CONF_TAKE12, gh_upstream_zone, 0, 0, NULL },
    /* balancing methods (gh_upstream_balance.c) */
    { "least_conn", UPS, GH_CONF_NOARGS, gh_upstream_least_conn, 0, 0,
      NULL },
    { "ip_hash", UPS, GH_CONF_NOARGS, gh_upstream_ip_hash, 0, 0, NULL },
    { "hash", UPS, GH_CONF_TAKE12, gh_upstream_hash, 0, 0, NULL },
    { "random", UPS, GH_CONF_NOARGS | GH_CONF_TAKE12, gh_upstream_random,
      0, 0, NULL },
    { "least_time", UPS, GH_CONF_TAKE12, gh_upstream_least_time, 0, 0,
      NULL },
    /* sticky cookie NAME ... (gh_upstream_sticky.c) */
    { "sticky", UPS, GH_CONF_2MORE, gh_upstream_sticky, 0, 0, NULL },
    { "upstream_loopback_congestion", GH_HTTP_MAIN_CONF, GH_CONF_TAKE1,
      gh_upstream_loopback_cc, 0, 0, NULL },
    GH_COMMAND_END
};

gh_module_t gh_http_upstream_module = {
    .name = "http_upstream",
    .commands = gh_upstream_commands,
    .create_main_conf = gh_upstream_create_main_conf,
    .init_main_conf = gh_upstream_init_main_conf,
    .exit_process = gh_upstream_exit_process,
};


/* --- groups ------------------------------------------------------------ */

static void *
gh_upstream_create_main_conf(gh_conf_t *cf)
{
    gh_upstream_main_conf_t *umcf = gh_calloc(cf->arena, sizeof(*umcf));

    if (umcf == NULL || gh_array_init(&umcf->upstreams, cf->arena, 4,
                            sizeof(gh_upstream_srv_conf_t *)) != GH_OK)
    {
        return NULL;
    }
    return umcf;
}


/*
 * upstream_loopback_congestion NAME | off (gatehouse only, default reno).
 * On loopback there is no queue to keep short and no loss to react to,
 * so congestion control has nothing to do -- but a pacing one (BBR, the
 * default on many hosts) still spaces every burst with a timer: a 1 MiB
 * request body sent to a local application cost about 40% of the
 * worker's CPU in pacing timers and their softirqs.  New connections to
 * a loopback peer get NAME instead; `off` keeps the system's default.
 */
static const char *
gh_upstream_loopback_cc(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_upstream_main_conf_t *umcf = conf;
    gh_str_t                *v = &gh_conf_args(cf)[1];

    (void) cmd;
    if (umcf->loopback_cc != NULL) {
        return "is duplicate";
    }
    if (v->len == 3 && memcmp(v->data, "off", 3) == 0) {
        umcf->loopback_cc = "";
        return NULL;
    }
    /* the kernel's TCP_CA_NAME_MAX is 16 with the NUL */
    if (v->len == 0 || v->len > 15) {
        return "invalid congestion control name";
    }
    for (size_t i = 0; i < v->len; i++) {
        uint8_t ch = v->data[i];
        if (!(isalnum(ch) || ch == '_' || ch == '-')) {
            return "invalid congestion control name";
        }
    }
    char *name = gh_alloc_unaligned(cf->arena, v->len + 1);
    if (name == NULL) {
        return GH_CONF_ERROR;
    }
    memcpy(name, v->data, v->len);
    name[v->len] = '\0';
    umcf->loopback_cc = name;
    return NULL;
}

bool
gh_upstream_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) ss;
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) ss;
        const struct in6_addr *a = &sin6->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) {
            return true;
        }
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

/* a name the kernel does not know, or may not allow, is reported once
 * per worker and the connection goes on with the system's default */
static void
gh_upstream_set_cc(int fd, const char *name, gh_log_t *log)
{
    static bool warned;

    if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, strlen(name)) < 0
        && !warned)
    {
        warned = true;
        gh_log(GH_LOG_WARN, log ? log : &gh_log_stderr, errno,
            "setsockopt(TCP_CONGESTION, \"%s\") failed, "
            "upstream_loopback_congestion ignored", name);
    }
}

static gh_upstream_main_conf_t *
gh_upstream_main(gh_conf_t *cf)
{
    if (cf->ctx == NULL || cf->ctx->main_conf == NULL) {
        return NULL;
    }
    return cf->ctx->main_conf[gh_http_upstream_module.index];
}


/* "host:port" as the implicit group's one server, for messages and
 * $upstream_addr-like uses; a unix socket is its path alone */
static gh_int_t
gh_upstream_implicit_server(gh_conf_t *cf, gh_upstream_srv_conf_t *us)
{
    gh_upstream_server_t *s = gh_array_push(&us->servers);
    bool                  unix_sock;
    size_t                n;
    char                 *p;

    if (s == NULL) {
        return GH_ERROR;
    }
    memset(s, 0, sizeof(*s));
    unix_sock = us->host.len >= 5 && memcmp(us->host.data, "unix:", 5) == 0;
    n = us->host.len + sizeof(":65535");
    p = gh_alloc_unaligned(cf->arena, n);
    if (p == NULL) {
        return GH_ERROR;
    }
    if (unix_sock) {
        n = (size_t) snprintf(p, n, "%.*s", (int) us->host.len,
            (const char *) us->host.data);
    } else {
        n = (size_t) snprintf(p, n, "%.*s:%d", (int) us->host.len,
            (const char *) us->host.data, us->port);
    }
    s->name.data = (uint8_t *) p;
    s->name.len = n;
    s->weight = 1;
    s->max_fails = GH_UPSTREAM_MAX_FAILS;
    s->fail_timeout = GH_UPSTREAM_FAIL_TIMEOUT;
    s->file = us->file;
    s->line = us->line;
    return GH_OK;
}


static gh_upstream_srv_conf_t *
gh_upstream_create(gh_conf_t *cf, const gh_str_t *host, int port,
    bool implicit)
{
    gh_upstream_main_conf_t  *umcf = gh_upstream_main(cf);
    gh_upstream_srv_conf_t   *us, **slot;

    us = gh_calloc(cf->arena, sizeof(*us));
    if (us == NULL) {
        return NULL;
    }
    us->host = gh_str_dup(cf->arena, host);
    us->implicit = implicit;
    us->flags = GH_UPSTREAM_F_ALL;
    us->no_port = implicit && port == 0;
    us->port = implicit ? (port ? port : gh_upstream_default_port) : 0;
    us->file = cf->node ? cf->node->file : NULL;
    us->line = cf->node ? cf->node->line : 0;
    /* defaults are applied in init_main_conf: a block may still take
     * this group over and set them */
    us->keepalive = GH_UNSET;
    us->keepalive_requests = GH_UNSET;
    us->keepalive_timeout = GH_UNSET_MSEC;
    us->keepalive_time = GH_UNSET_MSEC;
    if (us->host.data == NULL
        || gh_array_init(&us->servers, cf->arena, 4,
               sizeof(gh_upstream_server_t)) != GH_OK
        || (implicit && gh_upstream_implicit_server(cf, us) != GH_OK))
    {
        return NULL;
    }

    us->index = umcf->upstreams.nelts;
    slot = gh_array_push(&umcf->upstreams);
    if (slot == NULL) {
        return NULL;
    }
    *slot = us;
    return us;
}


/* the checks nginx makes before an upstream{} block may have a name:
 * no other block, and no earlier proxy_pass naming it with a port */
static gh_int_t
gh_upstream_block_name_ok(gh_conf_t *cf, gh_upstream_main_conf_t *umcf,
    const gh_str_t *host)
{
    gh_upstream_srv_conf_t *us;
    gh_conf_node_t          at;

    for (size_t i = 0; i < umcf->upstreams.nelts; i++) {
        us = *gh_array_at(&umcf->upstreams, gh_upstream_srv_conf_t *, i);
        if (!gh_str_caseeq(&us->host, host)) {
            continue;
        }
        if (!us->implicit) {
            gh_conf_error(cf, "duplicate upstream \"%.*s\"",
                (int) host->len, (const char *) host->data);
            return GH_ERROR;
        }
        if (!us->no_port) {
            /* reported where the port was written, as nginx does */
            memset(&at, 0, sizeof(at));
            at.file = us->file;
            at.line = us->line;
            gh_conf_error_at(cf, GH_LOG_EMERG, &at,
                "upstream \"%.*s\" may not have port %d",
                (int) host->len, (const char *) host->data, us->port);
            return GH_ERROR;
        }
    }
    return GH_OK;
}


static gh_upstream_srv_conf_t *
gh_upstream_lookup(gh_conf_t *cf, const gh_str_t *host, int port,
    bool implicit)
{
    gh_upstream_main_conf_t *umcf = gh_upstream_main(cf);
    gh_upstream_srv_conf_t  *us;
    int                      want;

    if (umcf == NULL) {
        gh_conf_error(cf, "upstream used outside of the http block");
        return NULL;
    }
    if (!implicit && gh_upstream_block_name_ok(cf, umcf, host) != GH_OK) {
        return NULL;
    }
    want = port ? port : gh_upstream_default_port;

    for (size_t i = 0; i < umcf->upstreams.nelts; i++) {
        us = *gh_array_at(&umcf->upstreams, gh_upstream_srv_conf_t *, i);
        if (!gh_str_caseeq(&us->host, host)) {
            continue;
        }
        if (!us->implicit) {
            /* proxy_pass http://NAME names the block; with a port it
             * cannot be meant as one, and nginx refuses the ambiguity */
            if (port != 0) {
                gh_conf_error(cf, "upstream \"%.*s\" may not have port %d",
                    (int) host->len, (const char *) host->data, port);
                return NULL;
            }
            return us;
        }
        if (implicit) {
            if (us->port != want) {
                continue;
            }
            return us;
        }

        /* a block for a name an earlier proxy_pass used without a port:
         * the block takes that group over, so the pointer the proxy_pass
         * holds now leads to the block's servers */
        us->implicit = false;
        us->no_port = false;
        us->port = 0;
        us->servers.nelts = 0;
        us->file = cf->node->file;
        us->line = cf->node->line;
        return us;
    }
    return gh_upstream_create(cf, host, port, implicit);
}


gh_upstream_srv_conf_t *
gh_upstream_add_default_port(gh_conf_t *cf, const gh_str_t *host, int port,
    int default_port)
{
    gh_upstream_srv_conf_t *us;

    gh_upstream_default_port = default_port;
    us = gh_upstream_add(cf, host, port, true);
    gh_upstream_default_port = GH_UPSTREAM_DEFAULT_PORT;
    return us;
}


gh_upstream_srv_conf_t *
gh_upstream_add(gh_conf_t *cf, const gh_str_t *host, int port, bool implicit)
{
    gh_upstream_srv_conf_t *us = gh_upstream_lookup(cf, host, port, implicit);

    /* an implicit lookup is a location's proxy_pass: its health_check
     * (if any) probes this group */
    if (us != NULL && implicit) {
        gh_upstream_hc_location_group(cf, us);
    }
    return us;
}


gh_upstream_srv_conf_t *
gh_upstream_find(gh_http_request_t *r, const gh_str_t *name)
{
    gh_upstream_main_conf_t *umcf;
    gh_upstream_srv_conf_t  *us;

    umcf = r->main_conf[gh_http_upstream_module.index];
    if (umcf == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < umcf->upstreams.nelts; i++) {
        us = *gh_array_at(&umcf->upstreams, gh_upstream_srv_conf_t *, i);
        if (!us->implicit && gh_str_caseeq(&us->host, name)) {
            return us;
        }
    }
    return NULL;
}


/* --- addresses --------------------------------------------------------- */

static gh_int_t
gh_upstream_push_addr(gh_array_t *addrs, const struct sockaddr *sa,
    socklen_t len, int port)
{
    gh_upstream_addr_t *a;

    /* a name listed twice in /etc/hosts must not become two peers */
    for (size_t i = 0; i < addrs->nelts; i++) {
        a = gh_array_at(addrs, gh_upstream_addr_t, i);
        if (a->socklen == len && memcmp(&a->sockaddr, sa, len) == 0) {
            return GH_OK;
        }
    }
    a = gh_array_push(addrs);
    if (a == NULL) {
        return GH_ERROR;
    }
    memset(a, 0, sizeof(*a));
    memcpy(&a->sockaddr, sa, len);
    a->socklen = len;
    /* sin_port and sin6_port are at the same offset */
    ((struct sockaddr_in *) &a->sockaddr)->sin_port = htons((uint16_t) port);
    return GH_OK;
}


/* every address of a host name: IPv4 first, then IPv6, each in resolver
 * order (nginx's order), so that the peer list, and with it the round
 * robin, does not depend on gai.conf */
static gh_int_t
gh_upstream_getaddrinfo(const char *host, int port, gh_array_t *addrs,
    const char **err)
{
    static const int  families[] = { AF_INET, AF_INET6 };
    struct addrinfo   hints = { .ai_socktype = SOCK_STREAM };
    struct addrinfo  *res, *ai;
    gh_int_t          rc = GH_OK;

    if (getaddrinfo(host, NULL, &hints, &res) != 0) {
        *err = "host not found";
        return GH_ERROR;
    }
    for (size_t f = 0; f < gh_nelems(families) && rc == GH_OK; f++) {
        for (ai = res; ai != NULL && rc == GH_OK; ai = ai->ai_next) {
            if (ai->ai_family != families[f]
                || ai->ai_addrlen > sizeof(struct sockaddr_storage))
            {
                continue;
            }
            rc = gh_upstream_push_addr(addrs, ai->ai_addr, ai->ai_addrlen,
                port);
        }
    }
    freeaddrinfo(res);
    if (rc != GH_OK) {
        *err = "out of memory";
        return GH_ERROR;
    }
    if (addrs->nelts == 0) {
        *err = "host not found";
        return GH_ERROR;
    }
    return GH_OK;
}


/* "host[:port]", "IP[:port]", "[v6][:port]", "unix:/path" -> addresses.
 * Blocking: configuration time only. */
static gh_int_t
gh_upstream_resolve(const gh_str_t *name, int default_port,
    gh_array_t *addrs, const char **err)
{
    const uint8_t      *p = name->data, *colon;
    size_t              n = name->len;
    int                 port = default_port;
    gh_int_t            v;
    char                host[NI_MAXHOST];
    gh_upstream_addr_t *a;

    if ((n >= 5 && memcmp(p, "unix:", 5) == 0) || (n > 0 && p[0] == '[')) {
        /* a single address, nothing to look up */
        a = gh_array_push(addrs);
        if (a == NULL) {
            *err = "out of memory";
            return GH_ERROR;
        }
        return gh_parse_addr_port(name, &a->sockaddr, &a->socklen,
            default_port, err);
    }

    colon = n ? memchr(p, ':', n) : NULL;
    if (colon != NULL) {
        if (memchr(colon + 1, ':', (size_t) (p + n - colon - 1)) != NULL) {
            /* a bare IPv6 address: nginx wants it in brackets */
            *err = "invalid host";
            return GH_ERROR;
        }
        v = gh_atoi(colon + 1, (size_t) (p + n - colon - 1));
        if (v < 1 || v > 65535) {
            *err = "invalid port";
            return GH_ERROR;
        }
        port = (int) v;
        n = (size_t) (colon - p);
    }
    if (n == 0) {
        *err = "no host";
        return GH_ERROR;
    }
    if (n >= sizeof(host) || memchr(p, '\0', n) != NULL) {
        *err = "invalid host";
        return GH_ERROR;
    }
    memcpy(host, p, n);
    host[n] = '\0';
    return gh_upstream_getaddrinfo(host, port, addrs, err);
}


/* one peer per address of server s, appended to the primary or backup
 * list in configuration order; NULL or an error message */
static const char *
gh_upstream_add_peers(gh_conf_t *cf, gh_upstream_srv_conf_t *us,
    const gh_upstream_server_t *s, const gh_array_t *addrs)
{
    gh_upstream_peer_t  **tail, *peer;
    gh_uint_t            *count;
    gh_upstream_addr_t   *a;

    tail = s->backup ? &us->backup : &us->peers;
    count = s->backup ? &us->nbackup : &us->npeers;
    while (*tail != NULL) {
        tail = &(*tail)->next;
    }
    for (size_t i = 0; i < addrs->nelts; i++) {
        if (*count >= GH_UPSTREAM_MAX_PEERS) {
            return "too many addresses (the limit is 256 per list)";
        }
        a = gh_array_at(addrs, gh_upstream_addr_t, i);
        peer = gh_calloc(cf->arena, sizeof(*peer));
        if (peer == NULL) {
            return "out of memory";
        }
        memcpy(&peer->sockaddr, &a->sockaddr, a->socklen);
        peer->socklen = a->socklen;
        gh_sock_ntop((struct sockaddr *) &peer->sockaddr, peer->socklen,
            peer->name, sizeof(peer->name), true);
        peer->server = s->name;
        peer->weight = s->weight;
        peer->max_fails = s->max_fails;
        peer->fail_timeout = s->fail_timeout;
        peer->max_conns = s->max_conns;
        peer->slow_start = s->slow_start;
        peer->down = s->down;
        peer->backup = s->backup;
        gh_upstream_st_reset(peer, &peer->local);
        *tail = peer;
        tail = &peer->next;
        (*count)++;
    }
    return NULL;
}


/* --- directives -------------------------------------------------------- */

static const char *
gh_upstream_block(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_conf_node_t         *node = cf->node;
    gh_upstream_srv_conf_t *us;
    void                   *saved;
    gh_int_t                rc;

    us = gh_upstream_add(cf, &node->args[1], 0, false);
    if (us == NULL) {
        return GH_CONF_ERROR;
    }

    saved = cf->handler_data;
    cf->handler_data = us;
    rc = gh_conf_dispatch(cf, node->children, GH_HTTP_UPS_CONF, cf->ctx);
    cf->handler_data = saved;
    cf->node = node;
    if (rc != GH_OK) {
        return GH_CONF_ERROR;
    }

    if (us->servers.nelts == 0) {
        gh_conf_error(cf, "no servers are inside upstream");
        return GH_CONF_ERROR;
    }
    if (us->npeers == 0 && !gh_upstream_resolvable(us)) {
        /* backup servers only: nothing to fall back from */
        gh_conf_error(cf, "no servers in upstream \"%.*s\"",
            (int) us->host.len, (const char *) us->host.data);
        return GH_CONF_ERROR;
    }
    return NULL;
}


/* "name=value" parameter: value if s starts with name= */
static bool
gh_upstream_param(const gh_str_t *s, const char *name, gh_str_t *value)
{
    size_t n = strlen(name);

    if (s->len < n || memcmp(s->data, name, n) != 0) {
        return false;
    }
    value->data = s->data + n;
    value->len = s->len - n;
    return true;
}


/* 0, or the index of a bad parameter: positive when invalid, negative
 * when the group's balancing method does not allow it (nginx refuses
 * `backup` after ip_hash, hash and random; slow_start likewise) */
static gh_int_t
gh_upstream_server_params(gh_upstream_server_t *s, const gh_str_t *args,
    size_t nargs, unsigned flags)
{
    gh_str_t  v;
    gh_int_t  n;
    gh_msec_t t;

    for (size_t i = 2; i < nargs; i++) {
        if (gh_upstream_param(&args[i], "weight=", &v)) {
            /* bounded so that sums of current weights over a full list
             * of peers cannot overflow */
            n = gh_atoi(v.data, v.len);
            if (n <= 0 || n > INT32_MAX) {
                return (gh_int_t) i;
            }
            s->weight = n;
        } else if (gh_upstream_param(&args[i], "max_fails=", &v)) {
            n = gh_atoi(v.data, v.len);
            if (n < 0) {
                return (gh_int_t) i;
            }
            s->max_fails = n;
        } else if (gh_upstream_param(&args[i], "fail_timeout=", &v)) {
            /* seconds, as nginx: "500ms" is refused there too */
            t = gh_parse_time(&v);
            if (t < 0 || t % 1000 != 0) {
                return (gh_int_t) i;
            }
            s->fail_timeout = t;
        } else if (gh_upstream_param(&args[i], "max_conns=", &v)) {
            n = gh_atoi(v.data, v.len);
            if (n < 0) {
                return (gh_int_t) i;
            }
            s->max_conns = (gh_uint_t) n;
        } else if (gh_upstream_param(&args[i], "slow_start=", &v)) {
            /* weight ramps from nothing over this time after the server
             * comes back (nginx commercial) */
            if (!(flags & GH_UPSTREAM_F_SLOW_START)) {
                return -(gh_int_t) i;
            }
            t = gh_parse_time(&v);
            if (t < 0) {
                return (gh_int_t) i;
            }
            s->slow_start = t;
        } else if (gh_str_eq_c(&args[i], "backup")) {
            if (!(flags & GH_UPSTREAM_F_BACKUP)) {
                return -(gh_int_t) i;
            }
            s->backup = 1;
        } else if (gh_str_eq_c(&args[i], "down")) {
            s->down = 1;
        } else if (gh_str_eq_c(&args[i], "resolve")) {
            /* a name is then resolved by each worker at run time, and
             * again as answers expire (gh_upstream_resolver.c) */
            s->resolve = 1;
        } else {
            return (gh_int_t) i;
        }
    }
    return 0;
}


static const char *
gh_upstream_server(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_upstream_srv_conf_t *us = cf->handler_data;
    gh_str_t               *args = gh_conf_args(cf);
    gh_upstream_server_t   *s;
    gh_array_t              addrs;
    const char             *err = NULL;
    gh_int_t                bad;

    s = gh_array_push(&us->servers);
    if (s == NULL) {
        return "out of memory";
    }
    memset(s, 0, sizeof(*s));
    s->name = args[1];
    s->weight = 1;
    s->max_fails = GH_UPSTREAM_MAX_FAILS;
    s->fail_timeout = GH_UPSTREAM_FAIL_TIMEOUT;
    s->file = cf->node->file;
    s->line = cf->node->line;

    bad = gh_upstream_server_params(s, args, cf->node->nargs, us->flags);
    if (bad < 0) {
        gh_conf_error(cf, "balancing method does not support parameter "
            "\"%.*s\"", (int) args[-bad].len, (const char *) args[-bad].data);
        return GH_CONF_ERROR;
    }
    if (bad != 0) {
        gh_conf_error(cf, "invalid parameter \"%.*s\"", (int) args[bad].len,
            (const char *) args[bad].data);
        return GH_CONF_ERROR;
    }

    if (s->resolve && gh_upstream_server_is_name(&s->name)) {
        /* no lookup now: the workers' resolver fills the peers in (the
         * system resolver may not even know the name) */
        gh_str_t host;
        int      port;

        if (gh_upstream_split_host_port(&s->name, &host, &port, &err)
            != GH_OK)
        {
            gh_conf_error(cf, "%s in upstream \"%.*s\"", err,
                (int) s->name.len, (const char *) s->name.data);
            return GH_CONF_ERROR;
        }
        return NULL;
    }
    if (gh_array_init(&addrs, cf->arena, 2, sizeof(gh_upstream_addr_t))
        != GH_OK)
    {
        return "out of memory";
    }
    if (gh_upstream_resolve(&s->name, GH_UPSTREAM_DEFAULT_PORT, &addrs, &err)
        != GH_OK)
    {
        gh_conf_error(cf, "%s in upstream \"%.*s\"", err, (int) s->name.len,
            (const char *) s->name.data);
        return GH_CONF_ERROR;
    }
    err = gh_upstream_add_peers(cf, us, s, &addrs);
    if (err != NULL) {
        gh_conf_error(cf, "%s in upstream \"%.*s\"", err, (int) s->name.len,
            (const char *) s->name.data);
        return GH_CONF_ERROR;
    }
    return NULL;
}


static const char *
gh_upstream_keepalive(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_upstream_srv_conf_t *us = cf->handler_data;
    gh_str_t               *value = &gh_conf_args(cf)[1];
    gh_int_t                n;

    if (us->keepalive != GH_UNSET) {
        return "is duplicate";
    }
    /* 0 is refused as nginx does: leaving the directive out says that */
    n = gh_atoi(value->data, value->len);
    if (n <= 0) {
        gh_conf_error(cf, "invalid value \"%.*s\" in \"keepalive\" directive",
            (int) value->len, (const char *) value->data);
        return GH_CONF_ERROR;
    }
    us->keepalive = n;
    return NULL;
}


/* the generic setters, pointed at the group being read */
static const char *
gh_upstream_set_num(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    return gh_conf_set_num(cf, cmd, cf->handler_data);
}


static const char *
gh_upstream_set_msec(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    return gh_conf_set_msec(cf, cmd, cf->handler_data);
}


/* resolve an implicit group's host:port (from proxy_pass) into peers */
static gh_int_t
gh_upstream_init_implicit(gh_conf_t *cf, gh_upstream_srv_conf_t *us)
{
    gh_upstream_server_t *s;
    gh_array_t            addrs;
    gh_conf_node_t        at;
    const char           *err = NULL;

    s = gh_array_at(&us->servers, gh_upstream_server_t, 0);
    if (gh_array_init(&addrs, cf->arena, 2, sizeof(gh_upstream_addr_t))
        != GH_OK)
    {
        err = "out of memory";
    } else if (gh_upstream_resolve(&s->name, us->port, &addrs, &err)
               == GH_OK)
    {
        err = gh_upstream_add_peers(cf, us, s, &addrs);
        if (err == NULL) {
            return GH_OK;
        }
    }
    /* at the proxy_pass that made the group: init runs at the end of
     * http{}, where cf->node means nothing to the reader */
    memset(&at, 0, sizeof(at));
    at.file = us->file;
    at.line = us->line;
    gh_conf_error_at(cf, GH_LOG_EMERG, &at, "%s in upstream \"%.*s\"", err,
        (int) s->name.len, (const char *) s->name.data);
    return GH_ERROR;
}


static const char *
gh_upstream_init_main_conf(gh_conf_t *cf, void *conf)
{
    gh_upstream_main_conf_t *umcf = conf;
    gh_upstream_srv_conf_t  *us;
    const char              *err;

    for (size_t i = 0; i < umcf->upstreams.nelts; i++) {
        us = *gh_array_at(&umcf->upstreams, gh_upstream_srv_conf_t *, i);
        if (us->implicit && us->peers == NULL
            && gh_upstream_init_implicit(cf, us) != GH_OK)
        {
            return GH_CONF_ERROR;
        }
        if (umcf->loopback_cc == NULL) {
            umcf->loopback_cc = GH_UPSTREAM_LOOPBACK_CC;
        }
        us->loopback_cc = umcf->loopback_cc[0] ? umcf->loopback_cc : NULL;
        /* implicit groups have no pool: nginx keeps connections only
         * where `keepalive` asks for it */
        GH_CONF_UNSET_INT(us->keepalive, 0);
        GH_CONF_UNSET_INT(us->keepalive_requests, GH_UPSTREAM_KA_REQUESTS);
        if (us->keepalive_timeout == GH_UNSET_MSEC) {
            us->keepalive_timeout = GH_UPSTREAM_KA_TIMEOUT;
        }
        if (us->keepalive_time == GH_UNSET_MSEC) {
            us->keepalive_time = GH_UPSTREAM_KA_TIME;
        }
        err = gh_upstream_balance_init(cf, us);
        if (err != NULL) {
            gh_conf_error(cf, "%s", err);
            return GH_CONF_ERROR;
        }
    }
    return NULL;
}


static void
gh_upstream_exit_process(gh_cycle_t *cycle)
{
    gh_upstream_keepalive_close_all();
}


/* --- connecting -------------------------------------------------------- */

static void
gh_upstream_noop(gh_event_t *ev)
{
}


static gh_int_t
gh_upstream_conn_fail(gh_conn_t *c)
{
    int err = errno;

    gh_conn_close(c);
    errno = err;
    return GH_ERROR;
}


gh_int_t
gh_upstream_connect(gh_upstream_peer_state_t *ps, gh_loop_t *loop,
    gh_log_t *log, gh_conn_t **out, bool *pooled)
{
    gh_upstream_peer_t      *peer = ps->peer;
    gh_upstream_conn_info_t *info;
    gh_conn_t               *c;
    uint64_t                 number;
    int                      fd, one = 1, rc;

    *out = NULL;
    *pooled = false;
    if (peer == NULL) {
        errno = EINVAL;
        return GH_ERROR;
    }

    c = gh_upstream_keepalive_get(ps->us, peer);
    if (c != NULL) {
        /* the log of the request it serves now, with its own number */
        number = c->log.connection;
        c->log = log ? *log : gh_log_stderr;
        c->log.connection = number;
        gh_upstream_conn_info(c)->peer = peer;
        *out = c;
        *pooled = true;
        return GH_OK;
    }

    fd = socket(peer->sockaddr.ss_family,
        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return GH_ERROR;
    }
    c = gh_conn_get(fd, loop, log);
    if (c == NULL) {
        close(fd);
        gh_log(GH_LOG_ALERT, log ? log : &gh_log_stderr, 0,
            "%lu worker_connections are not enough",
            (unsigned long) gh_conns.max);
        errno = EMFILE;
        return GH_ERROR;
    }
    c->arena = gh_arena_create(GH_UPSTREAM_CONN_ARENA, 0);
    info = gh_calloc(c->arena, sizeof(*info));
    if (info == NULL) {
        errno = ENOMEM;
        return gh_upstream_conn_fail(c);
    }
    info->created = gh_current_msec;
    info->peer = peer;
    info->us = ps->us;
    c->udata = info;
    c->upstream = 1;
    c->data = NULL;
    c->read.handler = gh_upstream_noop;
    c->write.handler = gh_upstream_noop;
    memcpy(&info->sockaddr, &peer->sockaddr, peer->socklen);
    info->socklen = peer->socklen;
    c->socklen = gh_min(peer->socklen, (socklen_t) sizeof(c->sockaddr));
    memcpy(&c->sockaddr, &peer->sockaddr, c->socklen);
    /* the peer's name lives as long as the configuration */
    c->addr_text.data = (uint8_t *) peer->name;
    c->addr_text.len = strlen(peer->name);
    if (peer->sockaddr.ss_family == AF_UNIX) {
        c->unix_socket = 1;
    } else if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))
               == 0)
    {
        c->tcp_nodelay = 1;
    }
    if (info->us->loopback_cc && gh_upstream_is_loopback(&peer->sockaddr)) {
        gh_upstream_set_cc(fd, info->us->loopback_cc, log);
    }

    rc = connect(fd, (struct sockaddr *) &peer->sockaddr, peer->socklen);
    /* EINTR: the connection goes on in the background, as EINPROGRESS.
     * EAGAIN on a unix socket is a full backlog: an error, as nginx has
     * it, not something to wait for. */
    if (rc == -1 && errno != EINPROGRESS && errno != EINTR) {
        return gh_upstream_conn_fail(c);
    }
    /* registered after connect(): epoll reports the state as it is at
     * EPOLL_CTL_ADD, so a handshake finished in between is not lost */
    if (gh_loop_add_conn(loop, c) != GH_OK) {
        return gh_upstream_conn_fail(c);
    }
    *out = c;
    if (rc == -1) {
        return GH_AGAIN;
    }
    c->write.ready = 1;
    return GH_OK;
}


gh_int_t
gh_upstream_connect_check(gh_conn_t *c)
{
    int       err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
        err = errno;
    }
    if (err != 0) {
        c->write.error = 1;
        errno = err;
        return GH_ERROR;
    }
    return GH_OK;
}
