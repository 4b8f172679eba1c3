/*
 * gh_upstream_status.c: `upstream_status;` in a location answers with the
 * state of every upstream{} group and server.
 *
 *   GET /status                      JSON (application/json)
 *   GET /status?format=prometheus    Prometheus text exposition 0.0.4
 *   Accept: text/plain (no JSON)     Prometheus as well
 *
 * The numbers are the zone's when the group has one (every worker's
 * together), else those of the worker that answers ("shared": false in
 * the JSON, shared="0" in Prometheus).  README.md describes each field.
 * Each group is read under its zone's lock into a snapshot, which is
 * then formatted without holding the lock.
 */
#include "gh_upstream_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

/* bytes reserved per server and per group: names are at most 128 bytes,
 * escaped at most six times as long in the worst case */
#define GH_STATUS_PER_PEER   4096
#define GH_STATUS_PER_GROUP  1024

typedef struct {
    gh_upstream_peer_t      *peer;
    gh_upstream_peer_st_t    st;
    const char              *state;
    bool                     checked;       /* has health checks */
    uint64_t                 checks;
    uint64_t                 check_fails;
    uint64_t                 unhealthy;
    bool                     last_passed;
    gh_uint_t                last_status;
    gh_msec_t                last_time;
} gh_status_peer_t;

typedef struct {
    char                    *p;
    size_t                   len;
    size_t                   cap;
    bool                     overflow;
} gh_status_buf_t;

static const char *gh_status_directive(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);

static const gh_command_t gh_status_commands[] = {
    { "upstream_status", GH_HTTP_LOC_CONF, GH_CONF_NOARGS,
      gh_status_directive, GH_CONF_LOC_OFFSET, 0, NULL },
    GH_COMMAND_END
};

gh_module_t gh_http_upstream_status_module = {
    .name = "http_upstream_status",
    .commands = gh_status_commands,
};


static void
gh_status_printf(gh_status_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
gh_status_printf(gh_status_buf_t *b, const char *fmt, ...)
{
    va_list args;
    int     n;

    if (b->overflow) {
        return;
    }
    va_start(args, fmt);
    n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, args);
    va_end(args);
    if (n < 0 || (size_t) n >= b->cap - b->len) {
        b->overflow = true;
        return;
    }
    b->len += (size_t) n;
}


/* s as the inside of a JSON string or a Prometheus label value: '"'
 * and '\\' escaped, control bytes as \u00XX (JSON) or dropped */
static void
gh_status_escaped(gh_status_buf_t *b, const uint8_t *s, size_t len,
    bool json)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            gh_status_printf(b, "\\%c", s[i]);
        } else if (s[i] == '\n' && !json) {
            gh_status_printf(b, "\\n");
        } else if (s[i] < 0x20 || s[i] == 0x7f) {
            if (json) {
                gh_status_printf(b, "\\u%04x", s[i]);
            }
        } else {
            gh_status_printf(b, "%c", s[i]);
        }
    }
}


/* --- the snapshot --------------------------------------------------------- */

static const char *
gh_status_state(gh_upstream_peer_t *peer, gh_upstream_peer_st_t *st,
    gh_msec_t now)
{
    if (peer->down) {
        return "down";
    }
    if (st->hc_checking) {
        return "checking";
    }
    if (st->hc_down) {
        return "unhealthy";
    }
    if (peer->max_fails && st->fails >= (gh_uint_t) peer->max_fails
        && now - st->checked <= peer->fail_timeout)
    {
        return "unavail";
    }
    return "up";
}


static gh_uint_t
gh_status_snapshot(gh_upstream_srv_conf_t *us, gh_status_peer_t *out)
{
    gh_upstream_peer_t  *peer;
    gh_upstream_hc_st_t *hs;
    gh_uint_t            n = 0, nchecks;
    gh_msec_t            now = gh_current_msec;

    nchecks = us->checks ? us->checks->nelts : 0;
    gh_upstream_lock(us);
    for (int l = 0; l < 2; l++) {
        for (peer = l ? us->backup : us->peers; peer; peer = peer->next) {
            gh_status_peer_t *sp = &out[n++];

            memset(sp, 0, sizeof(*sp));
            sp->peer = peer;
            sp->st = *gh_upstream_st(peer);
            sp->state = gh_status_state(peer, &sp->st, now);
            sp->checked = nchecks > 0 && peer->hc != NULL;
            sp->last_passed = true;
            for (gh_uint_t i = 0; sp->checked && i < nchecks; i++) {
                hs = &((gh_upstream_hc_st_t *) peer->hc)[i];
                sp->checks += hs->checks;
                sp->check_fails += hs->fails;
                sp->unhealthy += hs->unhealthy_count;
                if (hs->last_time >= sp->last_time) {
                    sp->last_time = hs->last_time;
                    sp->last_status = hs->last_status;
                }
                sp->last_passed &= hs->last_passed || hs->checks == 0;
            }
        }
    }
    gh_upstream_unlock(us);
    return n;
}


/* --- JSON ----------------------------------------------------------------- */

static void
gh_status_json_time(gh_status_buf_t *b, const char *name, uint64_t us)
{
    if (us == 0) {
        gh_status_printf(b, ",\"%s\":null", name);
    } else {
        gh_status_printf(b, ",\"%s\":%.3f", name, (double) us / 1000.0);
    }
}


static void
gh_status_json_peer(gh_status_buf_t *b, gh_status_peer_t *sp, gh_uint_t id)
{
    gh_upstream_peer_t    *peer = sp->peer;
    gh_upstream_peer_st_t *st = &sp->st;
    static const char     *cls[] = { "1xx", "2xx", "3xx", "4xx", "5xx",
                                     "other" };

    gh_status_printf(b, "%s{\"id\":%lu,\"server\":\"", id ? "," : "",
        (unsigned long) id);
    gh_status_escaped(b, peer->server.data, peer->server.len, true);
    gh_status_printf(b, "\",\"name\":\"");
    gh_status_escaped(b, (const uint8_t *) peer->name, strlen(peer->name),
        true);
    gh_status_printf(b, "\",\"backup\":%s,\"weight\":%ld,\"state\":\"%s\","
        "\"active\":%lu,\"max_conns\":%lu,\"requests\":%llu,"
        "\"responses\":{", peer->backup ? "true" : "false",
        (long) peer->weight, sp->state, (unsigned long) st->conns,
        (unsigned long) peer->max_conns, (unsigned long long) st->requests);
    for (int i = 0; i < 6; i++) {
        gh_status_printf(b, "%s\"%s\":%llu", i ? "," : "", cls[i],
            (unsigned long long) st->responses[i]);
    }
    gh_status_printf(b, "},\"fails\":%llu,\"unavail\":%llu",
        (unsigned long long) st->failures, (unsigned long long) st->unavail);
    if (sp->checked) {
        gh_status_printf(b, ",\"health_checks\":{\"checks\":%llu,"
            "\"fails\":%llu,\"unhealthy\":%llu,\"last_passed\":%s,"
            "\"last_status\":%lu}", (unsigned long long) sp->checks,
            (unsigned long long) sp->check_fails,
            (unsigned long long) sp->unhealthy,
            sp->checks ? (sp->last_passed ? "true" : "false") : "null",
            (unsigned long) sp->last_status);
    }
    gh_status_json_time(b, "header_time", st->header_us);
    gh_status_json_time(b, "response_time", st->response_us);
    if (st->selected) {
        gh_status_printf(b, ",\"selected\":%lld", (long long) st->selected);
    } else {
        gh_status_printf(b, ",\"selected\":null");
    }
    gh_status_printf(b, "}");
}


static void
gh_status_json_group(gh_status_buf_t *b, gh_upstream_srv_conf_t *us,
    gh_status_peer_t *snap, gh_uint_t n, bool first)
{
    gh_status_printf(b, "%s\"", first ? "" : ",");
    gh_status_escaped(b, us->host.data, us->host.len, true);
    gh_status_printf(b, "\":{\"method\":\"%s\",\"zone\":",
        gh_upstream_method_name(us->method));
    if (us->zone) {
        gh_status_printf(b, "\"");
        gh_status_escaped(b, (const uint8_t *) us->zone->name,
            strlen(us->zone->name), true);
        gh_status_printf(b, "\"");
    } else {
        gh_status_printf(b, "null");
    }
    gh_status_printf(b, ",\"shared\":%s,\"keepalive\":%ld,\"peers\":[",
        us->zone ? "true" : "false", (long) us->keepalive);
    for (gh_uint_t i = 0; i < n; i++) {
        gh_status_json_peer(b, &snap[i], i);
    }
    gh_status_printf(b, "]}");
}


/* --- Prometheus ----------------------------------------------------------- */

static const struct {
    const char *name;
    const char *type;
    const char *help;
} gh_status_metrics[] = {
    { "up", "gauge", "1 when the server takes requests now" },
    { "state", "gauge", "the server's state (label state)" },
    { "weight", "gauge", "configured weight" },
    { "active", "gauge", "requests using the server now" },
    { "requests_total", "counter", "times the server was chosen" },
    { "responses_total", "counter", "response heads by status class" },
    { "fails_total", "counter", "failed attempts" },
    { "unavail_total", "counter", "times max_fails took it out" },
    { "health_checks_total", "counter", "active health check probes" },
    { "health_check_fails_total", "counter", "probes that failed" },
    { "unhealthy_total", "counter", "times a check marked it unhealthy" },
    { "header_time_seconds", "gauge",
      "moving average of the time to the response head" },
    { "response_time_seconds", "gauge",
      "moving average of the time to the last byte" },
};


static void
gh_status_prom_labels(gh_status_buf_t *b, gh_upstream_srv_conf_t *us,
    gh_status_peer_t *sp)
{
    gh_status_printf(b, "{upstream=\"");
    gh_status_escaped(b, us->host.data, us->host.len, false);
    gh_status_printf(b, "\",server=\"");
    gh_status_escaped(b, (const uint8_t *) sp->peer->name,
        strlen(sp->peer->name), false);
    gh_status_printf(b, "\",backup=\"%d\",shared=\"%d\"",
        sp->peer->backup ? 1 : 0, us->zone ? 1 : 0);
}


static void
gh_status_prom_metric(gh_status_buf_t *b, gh_uint_t m,
    gh_upstream_srv_conf_t *us, gh_status_peer_t *sp)
{
    static const char     *cls[] = { "1xx", "2xx", "3xx", "4xx", "5xx",
                                     "other" };
    gh_upstream_peer_st_t *st = &sp->st;
    const char            *name = gh_status_metrics[m].name;
    uint64_t               v = 0;

    if (m == 5) {
        for (int i = 0; i < 6; i++) {
            gh_status_printf(b, "gatehouse_upstream_server_%s", name);
            gh_status_prom_labels(b, us, sp);
            gh_status_printf(b, ",code=\"%s\"} %llu\n", cls[i],
                (unsigned long long) st->responses[i]);
        }
        return;
    }
    if ((m >= 8 && m <= 10) && !sp->checked) {
        return;
    }
    gh_status_printf(b, "gatehouse_upstream_server_%s", name);
    gh_status_prom_labels(b, us, sp);
    if (m == 1) {
        gh_status_printf(b, ",state=\"%s\"", sp->state);
    }
    gh_status_printf(b, "} ");
    switch (m) {
    case 0: v = strcmp(sp->state, "up") == 0; break;
    case 1: v = 1; break;
    case 2: v = (uint64_t) sp->peer->weight; break;
    case 3: v = st->conns; break;
    case 4: v = st->requests; break;
    case 6: v = st->failures; break;
    case 7: v = st->unavail; break;
    case 8: v = sp->checks; break;
    case 9: v = sp->check_fails; break;
    case 10: v = sp->unhealthy; break;
    default:
        gh_status_printf(b, "%.6f\n", (double) (m == 11 ? st->header_us
            : st->response_us) / 1e6);
        return;
    }
    gh_status_printf(b, "%llu\n", (unsigned long long) v);
}


/* --- the handler ---------------------------------------------------------- */

static bool
gh_status_want_prometheus(gh_http_request_t *r)
{
    const uint8_t *p = r->args.data, *end = p + r->args.len, *amp;
    gh_str_t       accept = gh_string("Accept"), arg;
    gh_http_table_elt_t *h;

    while (p && p < end) {
        amp = memchr(p, '&', (size_t) (end - p));
        arg.data = (uint8_t *) p;
        arg.len = (size_t) ((amp ? amp : end) - p);
        if (gh_str_eq_c(&arg, "format=prometheus")) {
            return true;
        }
        if (gh_str_eq_c(&arg, "format=json")) {
            return false;
        }
        p = amp ? amp + 1 : end;
    }
    h = gh_http_find_header_in(r, &accept);
    return h && memmem(h->value.data, h->value.len, "text/plain", 10)
        && !memmem(h->value.data, h->value.len, "json", 4);
}


/*
 * The answering worker's connections and the memory they hold: the sum
 * of every connection's account (gh_mem.h; client_connection_memory_max
 * caps each), its peak since the worker started, and the charges a cap
 * refused.  Per worker, like the numbers of a group without a zone.
 */
#define GH_STATUS_WORKER 1024

static void
gh_status_worker(gh_status_buf_t *b, bool prom)
{
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        { "connections", "gauge",
          "open connections of this worker (clients, upstreams, listeners)" },
        { "connection_memory_bytes", "gauge",
          "memory held by this worker's client connections" },
        { "connection_memory_peak_bytes", "gauge",
          "highest connection_memory_bytes since the worker started" },
        { "connection_memory_refused_total", "counter",
          "allocations refused by client_connection_memory_max" },
    };
    uint64_t v[] = { gh_conns.active, gh_mem_conns.current,
                     gh_mem_conns.peak, gh_mem_conns.refused };

    if (!prom) {
        gh_status_printf(b, "\"connections\":{\"open\":%llu,"
            "\"memory\":%llu,\"memory_peak\":%llu,\"memory_refused\":%llu},",
            (unsigned long long) v[0], (unsigned long long) v[1],
            (unsigned long long) v[2], (unsigned long long) v[3]);
        return;
    }
    for (size_t i = 0; i < gh_nelems(m); i++) {
        gh_status_printf(b, "# HELP gatehouse_%s %s\n# TYPE gatehouse_%s %s\n"
            "gatehouse_%s{pid=\"%ld\"} %llu\n", m[i].name, m[i].help,
            m[i].name, m[i].type, m[i].name, (long) getpid(),
            (unsigned long long) v[i]);
    }
}

static gh_int_t
gh_status_handler(gh_http_request_t *r)
{
    gh_upstream_main_conf_t *umcf;
    gh_upstream_srv_conf_t  *us;
    gh_status_peer_t        *snap;
    gh_status_buf_t          b;
    gh_str_t                 body, type, nocache = gh_string("no-store");
    gh_uint_t                n, max = 0;
    bool                     prom, first = true;

    if (r->method != GH_HTTP_GET && r->method != GH_HTTP_HEAD) {
        return 405;
    }
    umcf = r->main_conf[gh_http_upstream_module.index];
    prom = gh_status_want_prometheus(r);
    memset(&b, 0, sizeof(b));
    b.cap = 256;
    for (size_t i = 0; i < umcf->upstreams.nelts; i++) {
        us = *gh_array_at(&umcf->upstreams, gh_upstream_srv_conf_t *, i);
        n = us->npeers + us->nbackup;
        max = gh_max(max, n);
        b.cap += GH_STATUS_PER_GROUP + n * GH_STATUS_PER_PEER;
    }
    if (prom) {
        b.cap += gh_nelems(gh_status_metrics) * 160;
    }
    b.cap += GH_STATUS_WORKER;
    b.p = gh_alloc_unaligned(r->arena, b.cap);
    snap = gh_alloc(r->arena, (max ? max : 1) * sizeof(*snap));
    if (b.p == NULL || snap == NULL) {
        return 500;
    }

    if (!prom) {
        gh_status_printf(&b, "{\"pid\":%ld,\"time\":%lld,",
            (long) getpid(), (long long) gh_current_wall_msec);
        gh_status_worker(&b, false);
        gh_status_printf(&b, "\"upstreams\":{");
    }
    for (gh_uint_t m = 0; m < (prom ? gh_nelems(gh_status_metrics) : 1);
         m++)
    {
        if (prom) {
            gh_status_printf(&b, "# HELP gatehouse_upstream_server_%s %s\n"
                "# TYPE gatehouse_upstream_server_%s %s\n",
                gh_status_metrics[m].name, gh_status_metrics[m].help,
                gh_status_metrics[m].name, gh_status_metrics[m].type);
        }
        for (size_t i = 0; i < umcf->upstreams.nelts; i++) {
            us = *gh_array_at(&umcf->upstreams, gh_upstream_srv_conf_t *, i);
            if (us->implicit) {
                continue;       /* proxy_pass host:port, not a block */
            }
            n = gh_status_snapshot(us, snap);
            if (!prom) {
                gh_status_json_group(&b, us, snap, n, first);
                first = false;
                continue;
            }
            for (gh_uint_t k = 0; k < n; k++) {
                gh_status_prom_metric(&b, m, us, &snap[k]);
            }
        }
    }
    if (!prom) {
        gh_status_printf(&b, "}}\n");
    } else {
        gh_status_worker(&b, true);
    }
    if (b.overflow) {
        gh_log(GH_LOG_ERR, &r->conn->log, 0, "upstream_status: the answer "
            "outgrew its %zu bytes", b.cap);
        return 500;
    }
    body.data = (uint8_t *) b.p;
    body.len = b.len;
    if (prom) {
        gh_str_set(&type, "text/plain; version=0.0.4; charset=utf-8");
    } else {
        gh_str_set(&type, "application/json");
    }
    if (gh_http_add_header_out(r, "Cache-Control", &nocache) == NULL) {
        return 500;
    }
    return gh_http_send_response(r, 200, &type, &body);
}


static const char *
gh_status_directive(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_core_loc_conf_t *clcf =
        gh_http_conf_get_module_loc_conf(cf, gh_http_core_module);

    if (clcf->handler != NULL) {
        return "is duplicate";
    }
    clcf->handler = gh_status_handler;
    return NULL;
}
