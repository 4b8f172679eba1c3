/*
 * gh_upstream_resolver.c: the `resolver` and `resolver_timeout`
 * directives, and names resolved at run time (see gh_upstream_resolver.h).
 *
 * Configuration: each `resolver` directive is a gh_upstream_resolver_conf_t
 * in the http main conf's list; location confs point at the one that
 * applies.  init_main_conf checks that `server NAME resolve;` has an
 * http-level resolver to use.
 *
 * In each worker (init_process): a gh_resolver_t per directive, then one
 * task per `resolve` server:
 *
 *   run --gh_resolve--> cached: apply now | pending: apply in the callback
 *   apply: OK       -> peers := the addresses
 *          NXDOMAIN -> peers := none (the name is gone)
 *          other    -> keep the peers we have (timeout, SERVFAIL: a
 *                      transient failure must not empty the group)
 *   then the timer: when the answer expires (at least 1s away) -> run
 *
 * The timers are cancelable: a quitting worker does not wait for them,
 * and a run while quitting does nothing.
 */
#include "gh_upstream_resolver.h"
#include "gh_upstream_int.h"

#include <arpa/inet.h>
#include <stdio.h>

#define GH_RESOLVE_TASK_MIN      1000     /* ms between two runs, at least */
#define GH_UPSTREAM_FAIL_TIMEOUT 10000    /* nginx's defaults, as for any */
#define GH_UPSTREAM_MAX_FAILS    1        /* proxy_pass group */

typedef struct {
    gh_upstream_resolver_conf_t *conf;    /* NULL: off; UNSET_PTR: unset */
    gh_msec_t                    timeout;
} gh_resolver_loc_conf_t;

typedef struct {
    gh_array_t                   confs;   /* gh_upstream_resolver_conf_t * */
} gh_resolver_main_conf_t;

/* a `server NAME resolve;` kept up to date in this worker */
typedef struct gh_resolve_task_s gh_resolve_task_t;
struct gh_resolve_task_s {
    gh_upstream_srv_conf_t      *us;
    gh_upstream_server_t        *s;
    gh_str_t                     host;
    int                          port;
    gh_resolver_t               *resolver;
    gh_msec_t                    timeout;
    gh_resolve_ctx_t            *ctx;     /* lookup under way */
    gh_event_t                   timer;
    gh_upstream_peer_t          *retired;
    gh_log_t                    *log;
    gh_loop_t                   *loop;
    gh_resolve_task_t           *next;
};

static const char *gh_resolver_set(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static void *gh_resolver_create_main_conf(gh_conf_t *cf);
static const char *gh_resolver_init_main_conf(gh_conf_t *cf, void *conf);
static void *gh_resolver_create_loc_conf(gh_conf_t *cf);
static const char *gh_resolver_merge_loc_conf(gh_conf_t *cf, void *prev,
    void *conf);
static gh_int_t gh_resolver_init_process(gh_cycle_t *cycle);
static void gh_resolver_exit_process(gh_cycle_t *cycle);
static void gh_resolve_task_run(gh_resolve_task_t *t);

#define RLCF(f) offsetof(gh_resolver_loc_conf_t, f)

static const gh_command_t gh_resolver_commands[] = {
    { "resolver", GH_ANY_HTTP_CONF, GH_CONF_1MORE, gh_resolver_set,
      GH_CONF_LOC_OFFSET, 0, NULL },
    { "resolver_timeout", GH_ANY_HTTP_CONF, GH_CONF_TAKE1, gh_conf_set_msec,
      GH_CONF_LOC_OFFSET, RLCF(timeout), NULL },
    GH_COMMAND_END
};

gh_module_t gh_http_resolver_module = {
    .name = "http_resolver",
    .commands = gh_resolver_commands,
    .create_main_conf = gh_resolver_create_main_conf,
    .init_main_conf = gh_resolver_init_main_conf,
    .create_loc_conf = gh_resolver_create_loc_conf,
    .merge_loc_conf = gh_resolver_merge_loc_conf,
    .init_process = gh_resolver_init_process,
    .exit_process = gh_resolver_exit_process,
};

/* this worker's */
static gh_resolve_task_t *gh_resolve_tasks;
static gh_array_t        *gh_resolver_confs;


/* --- configuration ----------------------------------------------------- */

static void *
gh_resolver_create_main_conf(gh_conf_t *cf)
{
    gh_resolver_main_conf_t *rmcf = gh_calloc(cf->arena, sizeof(*rmcf));

    if (rmcf == NULL || gh_array_init(&rmcf->confs, cf->arena, 2,
                            sizeof(gh_upstream_resolver_conf_t *)) != GH_OK)
    {
        return NULL;
    }
    return rmcf;
}


static void *
gh_resolver_create_loc_conf(gh_conf_t *cf)
{
    gh_resolver_loc_conf_t *rlcf = gh_calloc(cf->arena, sizeof(*rlcf));

    if (rlcf == NULL) {
        return NULL;
    }
    rlcf->conf = GH_UNSET_PTR;
    rlcf->timeout = GH_UNSET_MSEC;
    return rlcf;
}


static const char *
gh_resolver_merge_loc_conf(gh_conf_t *cf, void *prev, void *conf)
{
    gh_resolver_loc_conf_t *p = prev, *c = conf;

    if (c->conf == GH_UNSET_PTR) {
        c->conf = p->conf;
    }
    if (c->timeout == GH_UNSET_MSEC) {
        c->timeout = p->timeout;
    }
    /* the http level has no parent: the defaults land here */
    if (c->conf == GH_UNSET_PTR) {
        c->conf = NULL;
    }
    if (c->timeout == GH_UNSET_MSEC) {
        c->timeout = GH_RESOLVER_DEFAULT_TIMEOUT;
    }
    return NULL;
}


/* "on"/"off" after "name=": 1, 0, or -1 if neither */
static int
gh_resolver_flag(const gh_str_t *arg, size_t skip)
{
    gh_str_t v = { arg->len - skip, arg->data + skip };

    return gh_str_eq_c(&v, "on") ? 1 : gh_str_eq_c(&v, "off") ? 0 : -1;
}


static bool
gh_resolver_prefix(const gh_str_t *arg, const char *prefix)
{
    size_t n = strlen(prefix);

    return arg->len >= n && memcmp(arg->data, prefix, n) == 0;
}


/* one argument of `resolver`: a parameter or an address */
static const char *
gh_resolver_arg(gh_conf_t *cf, gh_upstream_resolver_conf_t *rc,
    gh_array_t *servers, const gh_str_t *arg)
{
    struct sockaddr_storage  ss;
    socklen_t                len;
    gh_resolver_server_t    *srv;
    const char              *err = NULL;
    gh_str_t                 v;
    int                      flag;

    if (gh_resolver_prefix(arg, "valid=")) {
        v.data = arg->data + 6;
        v.len = arg->len - 6;
        rc->valid = gh_parse_time(&v);
        if (rc->valid <= 0) {
            goto invalid;
        }
        return NULL;
    }
    if (gh_resolver_prefix(arg, "ipv4=") || gh_resolver_prefix(arg, "ipv6=")) {
        flag = gh_resolver_flag(arg, 5);
        if (flag < 0) {
            goto invalid;
        }
        if (arg->data[3] == '4') {
            rc->ipv4 = flag;
        } else {
            rc->ipv6 = flag;
        }
        return NULL;
    }
    if (gh_resolver_prefix(arg, "status_zone=")) {
        /* accepted: there is no status module to show it yet */
        if (arg->len == 12) {
            goto invalid;
        }
        return NULL;
    }

    if (gh_parse_addr_port(arg, &ss, &len, 53, &err) != GH_OK) {
        gh_conf_error(cf, "%s in resolver \"%.*s\"", err ? err : "invalid "
            "address", (int) arg->len, (const char *) arg->data);
        return GH_CONF_ERROR;
    }
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) {
        goto invalid;
    }
    srv = gh_array_push(servers);
    if (srv == NULL) {
        return "out of memory";
    }
    memset(srv, 0, sizeof(*srv));
    memcpy(&srv->u, &ss, len);
    srv->len = len;
    return NULL;

invalid:
    gh_conf_error(cf, "invalid parameter \"%.*s\"", (int) arg->len,
        (const char *) arg->data);
    return GH_CONF_ERROR;
}


static const char *
gh_resolver_set(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_resolver_loc_conf_t       *rlcf = conf;
    gh_resolver_main_conf_t      *rmcf;
    gh_upstream_resolver_conf_t  *rc, **slot;
    gh_str_t                     *args = gh_conf_args(cf);
    gh_array_t                    servers;
    const char                   *rv;

    if (rlcf->conf != GH_UNSET_PTR) {
        return "is duplicate";
    }
    rc = gh_calloc(cf->arena, sizeof(*rc));
    if (rc == NULL || gh_array_init(&servers, cf->arena, 2,
                          sizeof(gh_resolver_server_t)) != GH_OK)
    {
        return "out of memory";
    }
    rc->ipv4 = true;
    rc->ipv6 = true;
    for (size_t i = 1; i < cf->node->nargs; i++) {
        rv = gh_resolver_arg(cf, rc, &servers, &args[i]);
        if (rv != NULL) {
            return rv;
        }
    }
    if (servers.nelts == 0) {
        return "has no name server address";
    }
    if (!rc->ipv4 && !rc->ipv6) {
        gh_conf_error(cf, "\"ipv4\" and \"ipv6\" cannot both be \"off\"");
        return GH_CONF_ERROR;
    }
    rc->servers = servers.elts;
    rc->nservers = servers.nelts;

    rmcf = gh_http_conf_get_module_main_conf(cf, gh_http_resolver_module);
    slot = gh_array_push(&rmcf->confs);
    if (slot == NULL) {
        return "out of memory";
    }
    *slot = rc;
    rlcf->conf = rc;
    return NULL;
}


/* `server NAME resolve;` needs a resolver at the http level, which is
 * known only once the whole block is read */
static const char *
gh_resolver_init_main_conf(gh_conf_t *cf, void *conf)
{
    gh_upstream_main_conf_t *umcf;
    gh_resolver_loc_conf_t  *hlcf;
    gh_upstream_srv_conf_t  *us;
    gh_upstream_server_t    *s;
    gh_conf_node_t           at;

    umcf = gh_http_conf_get_module_main_conf(cf, gh_http_upstream_module);
    hlcf = gh_http_conf_get_module_loc_conf(cf, gh_http_resolver_module);
    if (hlcf->conf != GH_UNSET_PTR && hlcf->conf != NULL) {
        return NULL;
    }
    for (size_t i = 0; i < umcf->upstreams.nelts; i++) {
        us = *gh_array_at(&umcf->upstreams, gh_upstream_srv_conf_t *, i);
        for (size_t j = 0; !us->implicit && j < us->servers.nelts; j++) {
            s = gh_array_at(&us->servers, gh_upstream_server_t, j);
            if (!s->resolve || !gh_upstream_server_is_name(&s->name)) {
                continue;
            }
            memset(&at, 0, sizeof(at));
            at.file = s->file;
            at.line = s->line;
            gh_conf_error_at(cf, GH_LOG_EMERG, &at, "no resolver defined to "
                "resolve %.*s in upstream \"%.*s\"", (int) s->name.len,
                (const char *) s->name.data, (int) us->host.len,
                (const char *) us->host.data);
            return GH_CONF_ERROR;
        }
    }
    return NULL;
}


/* --- names and addresses ----------------------------------------------- */

gh_int_t
gh_upstream_split_host_port(const gh_str_t *name, gh_str_t *host, int *port,
    const char **err)
{
    const uint8_t *colon = name->len ? memchr(name->data, ':', name->len)
                                     : NULL;
    gh_int_t       v;

    *host = *name;
    *port = 80;
    if (colon != NULL) {
        host->len = (size_t) (colon - name->data);
        v = gh_atoi(colon + 1, name->len - host->len - 1);
        if (v < 1 || v > 65535) {
            *err = "invalid port";
            return GH_ERROR;
        }
        *port = (int) v;
    }
    if (host->len == 0) {
        *err = "no host";
        return GH_ERROR;
    }
    return GH_OK;
}


bool
gh_upstream_server_is_name(const gh_str_t *name)
{
    struct in_addr a4;
    gh_str_t       host;
    const char    *err;
    char           buf[INET_ADDRSTRLEN];
    int            port;

    if (name->len == 0 || name->data[0] == '['
        || (name->len >= 5 && memcmp(name->data, "unix:", 5) == 0))
    {
        return false;
    }
    if (gh_upstream_split_host_port(name, &host, &port, &err) != GH_OK) {
        /* still a name: the caller reports the port */
        return true;
    }
    if (host.len >= sizeof(buf)) {
        return true;
    }
    memcpy(buf, host.data, host.len);
    buf[host.len] = '\0';
    return inet_pton(AF_INET, buf, &a4) != 1;
}


bool
gh_upstream_resolvable(const gh_upstream_srv_conf_t *us)
{
    const gh_upstream_server_t *s;

    for (size_t i = 0; i < us->servers.nelts; i++) {
        s = gh_array_at(&us->servers, gh_upstream_server_t, i);
        if (s->resolve && !s->backup && gh_upstream_server_is_name(&s->name)) {
            return true;
        }
    }
    return false;
}


static void
gh_upstream_addr_port(struct sockaddr_storage *ss, socklen_t *len,
    const gh_resolver_addr_t *a, int port)
{
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &a->u, a->len);
    *len = a->len;
    /* sin_port and sin6_port are at the same offset */
    ((struct sockaddr_in *) ss)->sin_port = htons((uint16_t) port);
}


gh_upstream_srv_conf_t *
gh_upstream_resolved_group(gh_arena_t *a, const gh_str_t *host, int port,
    const gh_resolver_addr_t *addrs, size_t n)
{
    gh_upstream_srv_conf_t *us;
    gh_upstream_peer_t     *peers;

    n = gh_min(n, (size_t) GH_UPSTREAM_MAX_PEERS);
    us = gh_calloc(a, sizeof(*us));
    peers = n ? gh_calloc(a, n * sizeof(*peers)) : NULL;
    if (us == NULL || (n && peers == NULL)) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        gh_upstream_addr_port(&peers[i].sockaddr, &peers[i].socklen,
            &addrs[i], port);
        gh_sock_ntop((struct sockaddr *) &peers[i].sockaddr,
            peers[i].socklen, peers[i].name, sizeof(peers[i].name), true);
        peers[i].server = *host;
        peers[i].weight = 1;
        peers[i].max_fails = GH_UPSTREAM_MAX_FAILS;
        peers[i].fail_timeout = GH_UPSTREAM_FAIL_TIMEOUT;
        peers[i].next = i + 1 < n ? &peers[i + 1] : NULL;
        gh_upstream_st_reset(&peers[i], &peers[i].local);
    }
    us->host = *host;
    us->port = port;
    us->implicit = true;
    us->peers = peers;
    us->npeers = n;
    return us;
}


gh_resolver_t *
gh_http_resolver(gh_http_request_t *r, gh_msec_t *timeout)
{
    gh_resolver_loc_conf_t *rlcf;

    rlcf = gh_http_get_module_loc_conf(r, gh_http_resolver_module);
    if (rlcf == NULL || rlcf->conf == NULL || rlcf->conf == GH_UNSET_PTR) {
        return NULL;
    }
    *timeout = rlcf->timeout;
    return rlcf->conf->resolver;
}


/* --- peers of a `resolve` server --------------------------------------- */

static gh_upstream_peer_t *
gh_upstream_take_retired(gh_upstream_peer_t **retired,
    const struct sockaddr_storage *ss, socklen_t len)
{
    gh_upstream_peer_t **pp, *p;

    for (pp = retired; *pp; pp = &(*pp)->next) {
        p = *pp;
        if (p->socklen == len && memcmp(&p->sockaddr, ss, len) == 0) {
            *pp = p->next;
            p->next = NULL;
            return p;
        }
    }
    return NULL;
}


static gh_upstream_peer_t *
gh_upstream_new_peer(gh_upstream_srv_conf_t *us,
    const gh_upstream_server_t *s,
    const struct sockaddr_storage *ss, socklen_t len,
    gh_upstream_peer_t **retired)
{
    gh_upstream_peer_t *p = gh_upstream_take_retired(retired, ss, len);

    if (p == NULL) {
        /* process memory, not the conf arena: peers come and go for as
         * long as the worker lives */
        p = gh_xcalloc(1, sizeof(*p));
        memcpy(&p->sockaddr, ss, len);
        p->socklen = len;
        gh_sock_ntop((struct sockaddr *) &p->sockaddr, len, p->name,
            sizeof(p->name), true);
        p->server = s->name;
    }
    /* a returning address starts afresh, as a new one would; conns is
     * kept: requests still using the old object count there */
    p->weight = s->weight;
    p->max_fails = s->max_fails;
    p->fail_timeout = s->fail_timeout;
    p->max_conns = s->max_conns;
    p->slow_start = s->slow_start;
    p->down = s->down;
    p->backup = s->backup;
    p->next = NULL;
    /* issue 6: the run-time state (fails, weights...) is reset there, or
     * is the group zone's entry for this address, shared with the other
     * workers */
    gh_upstream_peer_attach(us, p);
    if (us->sticky != NULL && p->sticky_id[0] == '\0') {
        gh_upstream_sticky_id(p);
    }
    return p;
}


static void
gh_upstream_log_peers(gh_log_t *log, gh_upstream_srv_conf_t *us,
    gh_upstream_server_t *s)
{
    gh_upstream_peer_t *p = s->backup ? us->backup : us->peers;
    char                list[1024];
    size_t              off = 0;
    int                 k;

    list[0] = '\0';
    for (; p && off < sizeof(list); p = p->next) {
        if (p->server.data != s->name.data) {
            continue;
        }
        k = snprintf(list + off, sizeof(list) - off, "%s%s",
            off ? ", " : "", p->name);
        off += k > 0 ? (size_t) k : 0;
    }
    gh_log(GH_LOG_NOTICE, log, 0, "upstream \"%.*s\": server \"%.*s\" now "
        "resolves to %s", (int) us->host.len, (const char *) us->host.data,
        (int) s->name.len, (const char *) s->name.data,
        off ? list : "no address");
}


bool
gh_upstream_set_server_addrs(gh_upstream_srv_conf_t *us,
    gh_upstream_server_t *s, int port, const gh_resolver_addr_t *addrs,
    size_t n, gh_upstream_peer_t **retired, gh_log_t *log)
{
    struct sockaddr_storage  want[2 * GH_DNS_MAX_ADDRS];
    socklen_t                wlen[2 * GH_DNS_MAX_ADDRS];
    bool                     have[2 * GH_DNS_MAX_ADDRS];
    gh_upstream_peer_t     **list, **pp, *p;
    gh_uint_t               *count;
    bool                     changed = false, found;
    size_t                   i;

    n = gh_min(n, gh_nelems(want));
    for (i = 0; i < n; i++) {
        gh_upstream_addr_port(&want[i], &wlen[i], &addrs[i], port);
        have[i] = false;
    }
    list = s->backup ? &us->backup : &us->peers;
    count = s->backup ? &us->nbackup : &us->npeers;

    /* this server's peers whose address is gone leave the list (a
     * duplicate address counts once) */
    for (pp = list; *pp; ) {
        p = *pp;
        if (p->server.data != s->name.data) {
            pp = &p->next;
            continue;
        }
        found = false;
        for (i = 0; i < n && !found; i++) {
            if (!have[i] && wlen[i] == p->socklen
                && memcmp(&want[i], &p->sockaddr, wlen[i]) == 0)
            {
                have[i] = true;
                found = true;
            }
        }
        if (found) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        p->next = *retired;
        *retired = p;
        (*count)--;
        changed = true;
    }

    /* new addresses join at the end (pp is the list's tail) */
    for (i = 0; i < n; i++) {
        if (have[i]) {
            continue;
        }
        if (*count >= GH_UPSTREAM_MAX_PEERS) {
            gh_log(GH_LOG_WARN, log, 0, "upstream \"%.*s\": too many "
                "addresses for server \"%.*s\" (the limit is %d per list)",
                (int) us->host.len, (const char *) us->host.data,
                (int) s->name.len, (const char *) s->name.data,
                GH_UPSTREAM_MAX_PEERS);
            break;
        }
        p = gh_upstream_new_peer(us, s, &want[i], wlen[i], retired);
        *pp = p;
        pp = &p->next;
        (*count)++;
        changed = true;
        /* the same address twice in one answer: once is enough */
        for (size_t j = i + 1; j < n; j++) {
            if (wlen[j] == wlen[i] && memcmp(&want[j], &want[i], wlen[i]) == 0)
            {
                have[j] = true;
            }
        }
    }
    if (changed) {
        /* issue 6: hash ring and random ranges follow the new list */
        gh_upstream_peers_changed(us);
    }
    if (changed && log != NULL) {
        gh_upstream_log_peers(log, us, s);
    }
    return changed;
}


/* --- the worker's tasks ------------------------------------------------ */

static void
gh_resolve_task_timer(gh_event_t *ev)
{
    gh_resolve_task_run(ev->data);
}


static void
gh_resolve_task_apply(gh_resolve_task_t *t, gh_resolve_ctx_t *ctx)
{
    if (ctx->state == GH_RESOLVE_OK || ctx->state == GH_RESOLVE_NXDOMAIN) {
        gh_upstream_set_server_addrs(t->us, t->s, t->port, ctx->addrs,
            ctx->naddrs, &t->retired, t->log);
    }
    if (ctx->state != GH_RESOLVE_OK) {
        gh_log(GH_LOG_ERR, t->log, 0, "%.*s could not be resolved (%d: %s) "
            "while resolving upstream \"%.*s\"%s", (int) t->host.len,
            (const char *) t->host.data, ctx->state,
            gh_resolver_strerror(ctx->state), (int) t->us->host.len,
            (const char *) t->us->host.data,
            ctx->state == GH_RESOLVE_NXDOMAIN ? "" : ", addresses kept");
    }
    /* next when the answer expires: the lookup then misses the cache */
    gh_timer_add(t->loop, &t->timer, gh_max(ctx->valid_until
        - gh_current_msec, GH_RESOLVE_TASK_MIN));
}


static void
gh_resolve_task_done(gh_resolve_ctx_t *ctx)
{
    gh_resolve_task_t *t = ctx->data;

    t->ctx = NULL;
    gh_resolve_task_apply(t, ctx);
    gh_resolve_done(ctx);
}


static void
gh_resolve_task_run(gh_resolve_task_t *t)
{
    gh_resolve_ctx_t *ctx;
    gh_int_t          rc;

    if (gh_conns.quitting || t->ctx != NULL) {
        return;
    }
    rc = gh_resolve(t->resolver, &t->host, t->timeout, gh_resolve_task_done,
        t, &ctx);
    if (rc == GH_AGAIN) {
        t->ctx = ctx;
        return;
    }
    if (rc == GH_OK) {
        gh_resolve_task_apply(t, ctx);
        gh_resolve_done(ctx);
        return;
    }
    gh_timer_add(t->loop, &t->timer, GH_RESOLVE_TASK_MIN);
}


static gh_int_t
gh_resolver_start_tasks(gh_cycle_t *cycle, gh_conf_ctx_t *http)
{
    gh_upstream_main_conf_t *umcf;
    gh_resolver_loc_conf_t  *hlcf;
    gh_upstream_srv_conf_t  *us;
    gh_upstream_server_t    *s;
    gh_resolve_task_t       *t;
    const char              *err;

    umcf = http->main_conf[gh_http_upstream_module.index];
    hlcf = http->loc_conf[gh_http_resolver_module.index];
    for (size_t i = 0; i < umcf->upstreams.nelts; i++) {
        us = *gh_array_at(&umcf->upstreams, gh_upstream_srv_conf_t *, i);
        for (size_t j = 0; !us->implicit && j < us->servers.nelts; j++) {
            s = gh_array_at(&us->servers, gh_upstream_server_t, j);
            if (!s->resolve || !gh_upstream_server_is_name(&s->name)) {
                continue;
            }
            if (hlcf->conf == NULL || hlcf->conf == GH_UNSET_PTR
                || hlcf->conf->resolver == NULL)
            {
                /* init_main_conf made sure of it */
                return GH_ERROR;
            }
            t = gh_xcalloc(1, sizeof(*t));
            t->us = us;
            t->s = s;
            if (gh_upstream_split_host_port(&s->name, &t->host, &t->port,
                    &err) != GH_OK)
            {
                free(t);
                return GH_ERROR;
            }
            t->resolver = hlcf->conf->resolver;
            t->timeout = hlcf->timeout;
            t->log = cycle->log;
            t->loop = cycle->loop;
            t->timer.data = t;
            t->timer.handler = gh_resolve_task_timer;
            t->timer.cancelable = 1;
            t->next = gh_resolve_tasks;
            gh_resolve_tasks = t;
        }
    }
    for (t = gh_resolve_tasks; t; t = t->next) {
        gh_resolve_task_run(t);
    }
    return GH_OK;
}


static gh_int_t
gh_resolver_init_process(gh_cycle_t *cycle)
{
    gh_conf_ctx_t               *http = cycle->http_ctx;
    gh_resolver_main_conf_t     *rmcf;
    gh_upstream_resolver_conf_t *rc;

    if (http == NULL) {
        return GH_OK;
    }
    rmcf = http->main_conf[gh_http_resolver_module.index];
    gh_resolver_confs = &rmcf->confs;
    for (size_t i = 0; i < rmcf->confs.nelts; i++) {
        rc = *gh_array_at(&rmcf->confs, gh_upstream_resolver_conf_t *, i);
        rc->resolver = gh_resolver_create(cycle->loop, cycle->log,
            rc->servers, rc->nservers, rc->valid, rc->ipv4, rc->ipv6);
        if (rc->resolver == NULL) {
            return GH_ERROR;
        }
    }
    return gh_resolver_start_tasks(cycle, http);
}


static void
gh_resolver_exit_process(gh_cycle_t *cycle)
{
    gh_upstream_resolver_conf_t *rc;
    gh_resolve_task_t           *t;
    gh_upstream_peer_t          *p;

    while ((t = gh_resolve_tasks) != NULL) {
        gh_resolve_tasks = t->next;
        gh_timer_del(t->loop, &t->timer);
        gh_resolve_done(t->ctx);
        /* the upstream module, listed before us, has closed the pooled
         * connections that could still name a retired peer */
        while ((p = t->retired) != NULL) {
            t->retired = p->next;
            free(p);
        }
        free(t);
    }
    for (size_t i = 0; gh_resolver_confs && i < gh_resolver_confs->nelts;
         i++)
    {
        rc = *gh_array_at(gh_resolver_confs, gh_upstream_resolver_conf_t *,
            i);
        gh_resolver_destroy(rc->resolver);
        rc->resolver = NULL;
    }
    gh_resolver_confs = NULL;
}
