/*
 * gh_upstream_hc.c: active health checks (nginx's commercial syntax).
 *
 *   location / {
 *       proxy_pass http://backend;          # a group with `zone`
 *       health_check [interval=5s] [jitter=0] [fails=1] [passes=1]
 *                    [uri=/] [port=N] [match=NAME] [mandatory];
 *   }
 *   match NAME { status 200-399; header X = y; body ~ "re"; }   # http{}
 *
 * Each check probes every server of its group (backups too, `down` ones
 * not): GET uri HTTP/1.0 with Host: <group name>, on a fresh connection.
 * Without `match` a 2xx or 3xx answer passes; with it every test of the
 * block must hold (the first 256 KiB of the body are examined).
 *
 * One probe per interval per server across all workers: the check's
 * state for each server lives in the group's zone (gh_upstream_hc_st_t)
 * and a worker claims a due probe under the zone's lock:
 *
 *   timer (each worker) -> lock: for each server
 *        owner set, claim recent ........ someone is probing: skip
 *        now < next ..................... not due: note when it is
 *        else: owner = me, next = now + interval (+ jitter)
 *     unlock -> start the claimed probes -> timer at the earliest `next`
 *   probe: connect -> send -> read head [-> body] -> judge, or
 *          error / timeout (interval, at least 1 s) -> fail
 *   result -> lock: passes/fails in a row; fails reached: unhealthy
 *        (the peer's hc_down bit: balancing skips it); passes reached:
 *        healthy again (slow_start ramps it back); owner = 0
 *
 * A claim older than the timeout plus a second belongs to a worker that
 * died and is taken over.  A quitting worker stops probing and drops its
 * probes at once (they are registered as idle connections).
 */
#include "gh_upstream_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <unistd.h>

#define GH_HC_INTERVAL     5000
#define GH_HC_MIN_TIMEOUT  1000
#define GH_HC_MAX_TIMEOUT  60000
#define GH_HC_HEAD_MAX     16384
#define GH_HC_BODY_MAX     (256 * 1024)
#define GH_HC_MAX_PROBES   (2 * GH_UPSTREAM_MAX_PEERS)

enum { GH_HC_STATUS, GH_HC_HEADER, GH_HC_BODY };
enum { GH_HC_EXISTS, GH_HC_ABSENT, GH_HC_EQ, GH_HC_NE, GH_HC_RE, GH_HC_NRE };

typedef struct {
    uint16_t                 lo;
    uint16_t                 hi;
} gh_hc_range_t;

typedef struct {
    unsigned                 kind;          /* GH_HC_STATUS... */
    bool                     negate;        /* status ! .., body !~ */
    gh_hc_range_t           *ranges;        /* status */
    gh_uint_t                nranges;
    unsigned                 op;            /* header: GH_HC_EXISTS... */
    gh_str_t                 name;          /* header */
    gh_str_t                 value;         /* header = / != */
    gh_http_regex_t         *re;            /* header ~, body ~ */
} gh_hc_test_t;

typedef struct {
    gh_str_t                 name;
    gh_array_t               tests;         /* gh_hc_test_t */
    bool                     body;          /* a body test: read it */
} gh_hc_match_t;

struct gh_upstream_hc_s {
    gh_upstream_srv_conf_t  *us;
    gh_uint_t                index;         /* bit / slot in the group */
    gh_msec_t                interval;
    gh_msec_t                jitter;
    gh_msec_t                timeout;
    gh_uint_t                fails;
    gh_uint_t                passes;
    gh_str_t                 uri;
    int                      port;          /* 0: the server's */
    bool                     mandatory;
    gh_str_t                 match_name;
    gh_hc_match_t           *match;
    const char              *file;
    unsigned                 line;
    /* this worker's */
    gh_event_t               timer;
    gh_loop_t               *loop;
    gh_log_t                *log;
};

typedef struct {
    gh_array_t               matches;       /* gh_hc_match_t */
    gh_array_t               checks;        /* gh_upstream_hc_t *, bound */
} gh_hc_main_conf_t;

typedef struct {
    gh_upstream_srv_conf_t  *upstream;      /* proxy_pass's group here */
    gh_array_t              *checks;        /* gh_upstream_hc_t *, NULL */
} gh_hc_loc_conf_t;

/* one probe in flight */
typedef struct {
    gh_upstream_hc_t        *hc;
    gh_upstream_peer_t      *peer;
    gh_conn_t               *c;
    gh_buf_t                 out;           /* the request */
    uint8_t                 *buf;           /* response */
    size_t                   len;
    size_t                   size;
    gh_http_status_head_t    sh;
    size_t                   head_len;      /* 0: head not complete */
    gh_http_header_t        *headers;
    size_t                   nheaders;
    off_t                    rest;          /* Content-Length, -1 */
    bool                     chunked;
    bool                     connected;
    /* a chunked body is decoded in place as it comes: decoded bytes go
     * to the front, never past the raw bytes not yet decoded */
    gh_http_chunked_t        ck;
    size_t                   ck_in;         /* raw body bytes decoded */
    size_t                   ck_out;        /* decoded bytes */
    bool                     ck_done;
} gh_hc_probe_t;

static const char *gh_hc_health_check(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_hc_match_block(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static void *gh_hc_create_main_conf(gh_conf_t *cf);
static void *gh_hc_create_loc_conf(gh_conf_t *cf);
static const char *gh_hc_merge_loc_conf(gh_conf_t *cf, void *prev,
    void *conf);
static gh_int_t gh_hc_init_process(gh_cycle_t *cycle);
static void gh_hc_read(gh_event_t *ev);
static void gh_hc_write(gh_event_t *ev);

static const gh_command_t gh_hc_commands[] = {
    { "health_check", GH_HTTP_LOC_CONF, GH_CONF_ANY, gh_hc_health_check,
      GH_CONF_LOC_OFFSET, 0, NULL },
    { "match", GH_HTTP_MAIN_CONF, GH_CONF_BLOCK | GH_CONF_RAW | GH_CONF_TAKE1,
      gh_hc_match_block, GH_CONF_MAIN_OFFSET, 0, NULL },
    GH_COMMAND_END
};

gh_module_t gh_http_upstream_hc_module = {
    .name = "http_upstream_hc",
    .commands = gh_hc_commands,
    .create_main_conf = gh_hc_create_main_conf,
    .create_loc_conf = gh_hc_create_loc_conf,
    .merge_loc_conf = gh_hc_merge_loc_conf,
    .init_process = gh_hc_init_process,
};


/* --- configuration -------------------------------------------------------- */

static void *
gh_hc_create_main_conf(gh_conf_t *cf)
{
    gh_hc_main_conf_t *hmcf = gh_calloc(cf->arena, sizeof(*hmcf));

    if (hmcf == NULL
        || gh_array_init(&hmcf->matches, cf->arena, 2, sizeof(gh_hc_match_t))
           != GH_OK
        || gh_array_init(&hmcf->checks, cf->arena, 2,
               sizeof(gh_upstream_hc_t *)) != GH_OK)
    {
        return NULL;
    }
    return hmcf;
}


static void *
gh_hc_create_loc_conf(gh_conf_t *cf)
{
    return gh_calloc(cf->arena, sizeof(gh_hc_loc_conf_t));
}


void
gh_upstream_hc_location_group(gh_conf_t *cf, gh_upstream_srv_conf_t *us)
{
    gh_hc_loc_conf_t *hlcf;

    if (cf->ctx == NULL || cf->ctx->loc_conf == NULL) {
        return;
    }
    hlcf = cf->ctx->loc_conf[gh_http_upstream_hc_module.index];
    if (hlcf != NULL) {
        hlcf->upstream = us;
    }
}


bool
gh_upstream_hc_mandatory(const gh_upstream_srv_conf_t *us, gh_uint_t i)
{
    gh_upstream_hc_t *hc;

    if (us->checks == NULL || i >= us->checks->nelts) {
        return false;
    }
    hc = *gh_array_at(us->checks, gh_upstream_hc_t *, i);
    return hc->mandatory;
}


static bool
gh_hc_param(const gh_str_t *s, const char *name, gh_str_t *value)
{
    size_t n = strlen(name);

    if (s->len < n || memcmp(s->data, name, n) != 0) {
        return false;
    }
    value->data = s->data + n;
    value->len = s->len - n;
    return true;
}


/* one parameter of health_check; false: invalid */
static bool
gh_hc_set_param(gh_upstream_hc_t *hc, const gh_str_t *arg)
{
    gh_str_t v;
    gh_int_t n;

    if (gh_hc_param(arg, "interval=", &v)) {
        hc->interval = gh_parse_time(&v);
        return hc->interval > 0;
    }
    if (gh_hc_param(arg, "jitter=", &v)) {
        hc->jitter = gh_parse_time(&v);
        return hc->jitter >= 0;
    }
    if (gh_hc_param(arg, "fails=", &v)) {
        n = gh_atoi(v.data, v.len);
        hc->fails = (gh_uint_t) n;
        return n > 0;
    }
    if (gh_hc_param(arg, "passes=", &v)) {
        n = gh_atoi(v.data, v.len);
        hc->passes = (gh_uint_t) n;
        return n > 0;
    }
    if (gh_hc_param(arg, "uri=", &v)) {
        /* goes into the request line as it is: no spaces, no controls */
        for (size_t i = 0; i < v.len; i++) {
            if (v.data[i] <= ' ' || v.data[i] == 0x7f) {
                return false;
            }
        }
        hc->uri = v;
        return v.len > 0 && v.data[0] == '/';
    }
    if (gh_hc_param(arg, "port=", &v)) {
        n = gh_atoi(v.data, v.len);
        hc->port = (int) n;
        return n >= 1 && n <= 65535;
    }
    if (gh_hc_param(arg, "match=", &v)) {
        hc->match_name = v;
        return v.len > 0;
    }
    if (gh_str_eq_c(arg, "mandatory")) {
        hc->mandatory = true;
        return true;
    }
    /* `persistent` keeps the state over a reload in nginx; gatehouse
     * always starts afresh at a reload, so it is only accepted */
    return gh_str_eq_c(arg, "persistent");
}


static const char *
gh_hc_health_check(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_hc_loc_conf_t  *hlcf = conf;
    gh_str_t          *args = gh_conf_args(cf);
    gh_upstream_hc_t  *hc, **slot;

    hc = gh_calloc(cf->arena, sizeof(*hc));
    if (hc == NULL) {
        return "out of memory";
    }
    hc->interval = GH_HC_INTERVAL;
    hc->fails = 1;
    hc->passes = 1;
    gh_str_set(&hc->uri, "/");
    hc->file = cf->node->file;
    hc->line = cf->node->line;
    for (size_t i = 1; i < cf->node->nargs; i++) {
        if (!gh_hc_set_param(hc, &args[i])) {
            gh_conf_error(cf, "invalid parameter \"%.*s\"",
                (int) args[i].len, (const char *) args[i].data);
            return GH_CONF_ERROR;
        }
    }
    /* a probe must end before the next one is due; answers slower than
     * a second still count on a busy machine */
    hc->timeout = gh_min(gh_max(hc->interval, GH_HC_MIN_TIMEOUT),
        GH_HC_MAX_TIMEOUT);
    if (hlcf->checks == NULL) {
        hlcf->checks = gh_calloc(cf->arena, sizeof(gh_array_t));
        if (hlcf->checks == NULL
            || gh_array_init(hlcf->checks, cf->arena, 1,
                   sizeof(gh_upstream_hc_t *)) != GH_OK)
        {
            return "out of memory";
        }
    }
    slot = gh_array_push(hlcf->checks);
    if (slot == NULL) {
        return "out of memory";
    }
    *slot = hc;
    return NULL;
}


/* "200", "200-399" */
static bool
gh_hc_range(const gh_str_t *s, gh_hc_range_t *r)
{
    const uint8_t *dash = memchr(s->data, '-', s->len);
    gh_int_t       lo, hi;

    if (dash == NULL) {
        lo = hi = gh_atoi(s->data, s->len);
    } else {
        lo = gh_atoi(s->data, (size_t) (dash - s->data));
        hi = gh_atoi(dash + 1, s->len - (size_t) (dash - s->data) - 1);
    }
    if (lo < 100 || hi > 999 || lo > hi) {
        return false;
    }
    r->lo = (uint16_t) lo;
    r->hi = (uint16_t) hi;
    return true;
}


static const char *
gh_hc_test_status(gh_conf_t *cf, gh_hc_test_t *t, gh_str_t *args,
    size_t nargs)
{
    size_t i = 1;

    t->kind = GH_HC_STATUS;
    if (i < nargs && gh_str_eq_c(&args[i], "!")) {
        t->negate = true;
        i++;
    }
    if (i == nargs) {
        return "invalid number of arguments in \"status\"";
    }
    t->ranges = gh_alloc(cf->arena, (nargs - i) * sizeof(gh_hc_range_t));
    if (t->ranges == NULL) {
        return "out of memory";
    }
    for (; i < nargs; i++) {
        if (!gh_hc_range(&args[i], &t->ranges[t->nranges++])) {
            gh_conf_error(cf, "invalid status \"%.*s\"", (int) args[i].len,
                (const char *) args[i].data);
            return GH_CONF_ERROR;
        }
    }
    return NULL;
}


static const char *
gh_hc_regex(gh_conf_t *cf, gh_hc_test_t *t, const gh_str_t *re)
{
    const char *err = NULL;

    t->re = gh_http_regex_compile(cf, re, false, &err);
    return t->re ? NULL : err;
}


/* header NAME; header ! NAME; header NAME (=|!=|~|!~) VALUE; */
static const char *
gh_hc_test_header(gh_conf_t *cf, gh_hc_test_t *t, gh_str_t *args,
    size_t nargs)
{
    t->kind = GH_HC_HEADER;
    if (nargs == 2) {
        t->op = GH_HC_EXISTS;
        t->name = args[1];
        return NULL;
    }
    if (nargs == 3 && gh_str_eq_c(&args[1], "!")) {
        t->op = GH_HC_ABSENT;
        t->name = args[2];
        return NULL;
    }
    if (nargs != 4) {
        return "invalid number of arguments in \"header\"";
    }
    t->name = args[1];
    t->value = args[3];
    if (gh_str_eq_c(&args[2], "=")) {
        t->op = GH_HC_EQ;
    } else if (gh_str_eq_c(&args[2], "!=")) {
        t->op = GH_HC_NE;
    } else if (gh_str_eq_c(&args[2], "~")) {
        t->op = GH_HC_RE;
        return gh_hc_regex(cf, t, &args[3]);
    } else if (gh_str_eq_c(&args[2], "!~")) {
        t->op = GH_HC_NRE;
        return gh_hc_regex(cf, t, &args[3]);
    } else {
        gh_conf_error(cf, "invalid parameter \"%.*s\"", (int) args[2].len,
            (const char *) args[2].data);
        return GH_CONF_ERROR;
    }
    return NULL;
}


static const char *
gh_hc_match_entry(gh_conf_t *cf, gh_hc_match_t *m)
{
    gh_str_t     *args = cf->node->args;
    size_t        nargs = cf->node->nargs;
    gh_hc_test_t *t;

    if (cf->node->block) {
        return "\"match\" takes no nested blocks";
    }
    t = gh_array_push(&m->tests);
    if (t == NULL) {
        return "out of memory";
    }
    memset(t, 0, sizeof(*t));
    if (gh_str_eq_c(&args[0], "status")) {
        return gh_hc_test_status(cf, t, args, nargs);
    }
    if (gh_str_eq_c(&args[0], "header")) {
        return gh_hc_test_header(cf, t, args, nargs);
    }
    if (gh_str_eq_c(&args[0], "body")) {
        if (nargs != 3 || (!gh_str_eq_c(&args[1], "~")
                           && !gh_str_eq_c(&args[1], "!~")))
        {
            return "invalid \"body\" test (body ~ \"regex\" or "
                "body !~ \"regex\")";
        }
        t->kind = GH_HC_BODY;
        t->negate = args[1].len == 2;
        m->body = true;
        return gh_hc_regex(cf, t, &args[2]);
    }
    gh_conf_error(cf, "unknown test \"%.*s\" in \"match\"",
        (int) args[0].len, (const char *) args[0].data);
    return GH_CONF_ERROR;
}


static const char *
gh_hc_match_block(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_hc_main_conf_t *hmcf = conf;
    gh_conf_node_t    *node = cf->node;
    gh_hc_match_t     *m;
    const char        *rv;

    for (size_t i = 0; i < hmcf->matches.nelts; i++) {
        m = gh_array_at(&hmcf->matches, gh_hc_match_t, i);
        if (gh_str_eq(&m->name, &node->args[1])) {
            return "is duplicate";
        }
    }
    m = gh_array_push(&hmcf->matches);
    if (m == NULL) {
        return "out of memory";
    }
    memset(m, 0, sizeof(*m));
    m->name = node->args[1];
    if (gh_array_init(&m->tests, cf->arena, 4, sizeof(gh_hc_test_t))
        != GH_OK)
    {
        return "out of memory";
    }
    for (gh_conf_node_t *c = node->children; c != NULL; c = c->next) {
        cf->node = c;
        rv = gh_hc_match_entry(cf, m);
        if (rv != NULL && rv != GH_CONF_ERROR) {
            gh_conf_error(cf, "%s", rv);
            rv = GH_CONF_ERROR;
        }
        cf->node = node;
        if (rv != NULL) {
            return rv;
        }
    }
    return NULL;
}


static const char *
gh_hc_bind(gh_conf_t *cf, gh_hc_loc_conf_t *hlcf, gh_upstream_hc_t *hc)
{
    gh_hc_main_conf_t      *hmcf;
    gh_upstream_srv_conf_t *us = hlcf->upstream;
    gh_upstream_hc_t      **slot;
    gh_conf_node_t          at;

    memset(&at, 0, sizeof(at));
    at.file = hc->file;
    at.line = hc->line;
    hmcf = cf->ctx->main_conf[gh_http_upstream_hc_module.index];
    if (us == NULL) {
        gh_conf_error_at(cf, GH_LOG_EMERG, &at, "\"health_check\" needs "
            "\"proxy_pass\" to an upstream group in the same location");
        return GH_CONF_ERROR;
    }
    if (us->zone == NULL) {
        gh_conf_error_at(cf, GH_LOG_EMERG, &at, "health check requires "
            "upstream \"%.*s\" to be in shared memory (\"zone\")",
            (int) us->host.len, (const char *) us->host.data);
        return GH_CONF_ERROR;
    }
    if (hc->match_name.len) {
        for (size_t i = 0; i < hmcf->matches.nelts; i++) {
            gh_hc_match_t *m = gh_array_at(&hmcf->matches, gh_hc_match_t, i);

            if (gh_str_eq(&m->name, &hc->match_name)) {
                hc->match = m;
            }
        }
        if (hc->match == NULL) {
            gh_conf_error_at(cf, GH_LOG_EMERG, &at, "match \"%.*s\" not "
                "found", (int) hc->match_name.len,
                (const char *) hc->match_name.data);
            return GH_CONF_ERROR;
        }
    }
    if (us->checks == NULL) {
        us->checks = gh_calloc(cf->arena, sizeof(gh_array_t));
        if (us->checks == NULL
            || gh_array_init(us->checks, cf->arena, 1,
                   sizeof(gh_upstream_hc_t *)) != GH_OK)
        {
            return "out of memory";
        }
    }
    if (us->checks->nelts == GH_UPSTREAM_MAX_CHECKS) {
        gh_conf_error_at(cf, GH_LOG_EMERG, &at, "too many health checks "
            "for upstream \"%.*s\" (the limit is %d)", (int) us->host.len,
            (const char *) us->host.data, GH_UPSTREAM_MAX_CHECKS);
        return GH_CONF_ERROR;
    }
    hc->us = us;
    hc->index = us->checks->nelts;
    slot = gh_array_push(us->checks);
    if (slot == NULL) {
        return "out of memory";
    }
    *slot = hc;
    slot = gh_array_push(&hmcf->checks);
    if (slot == NULL) {
        return "out of memory";
    }
    *slot = hc;
    return NULL;
}


static const char *
gh_hc_merge_loc_conf(gh_conf_t *cf, void *prev, void *conf)
{
    gh_hc_loc_conf_t *hlcf = conf;
    const char       *rv;

    /* neither the checks nor the group are inherited: a check belongs to
     * the location that proxies to its group */
    if (hlcf->checks == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < hlcf->checks->nelts; i++) {
        rv = gh_hc_bind(cf, hlcf,
            *gh_array_at(hlcf->checks, gh_upstream_hc_t *, i));
        if (rv != NULL) {
            return rv;
        }
    }
    hlcf->checks = NULL;
    return NULL;
}


/* --- judging a response --------------------------------------------------- */

static bool
gh_hc_regex_match(gh_http_regex_t *re, const uint8_t *p, size_t len)
{
    gh_str_t s;

    s.data = (uint8_t *) p;
    s.len = len;
    return gh_http_regex_exec(NULL, re, &s) == GH_OK;
}


static bool
gh_hc_header_test(const gh_hc_test_t *t, gh_hc_probe_t *pr)
{
    bool found = false, any = false;

    for (size_t i = 0; i < pr->nheaders; i++) {
        gh_http_header_t *h = &pr->headers[i];
        bool              ok;

        if (!gh_str_caseeq(&h->name, &t->name)) {
            continue;
        }
        found = true;
        switch (t->op) {
        case GH_HC_EQ:
        case GH_HC_NE:
            ok = gh_str_eq(&h->value, &t->value);
            break;
        case GH_HC_RE:
        case GH_HC_NRE:
            ok = gh_hc_regex_match(t->re, h->value.data, h->value.len);
            break;
        default:
            ok = true;
        }
        any |= ok;
    }
    switch (t->op) {
    case GH_HC_EXISTS:
        return found;
    case GH_HC_ABSENT:
        return !found;
    case GH_HC_EQ:
    case GH_HC_RE:
        return any;
    default:
        /* != and !~: the header is there and no value matches */
        return found && !any;
    }
}


/* the verdict on a complete response */
static bool
gh_hc_judge(gh_hc_probe_t *pr, const uint8_t *body, size_t blen)
{
    gh_hc_match_t *m = pr->hc->match;
    gh_uint_t      status = pr->sh.status;

    if (m == NULL) {
        return status >= 200 && status < 400;
    }
    for (size_t i = 0; i < m->tests.nelts; i++) {
        gh_hc_test_t *t = gh_array_at(&m->tests, gh_hc_test_t, i);
        bool          ok = false;

        switch (t->kind) {
        case GH_HC_STATUS:
            for (gh_uint_t r = 0; r < t->nranges && !ok; r++) {
                ok = status >= t->ranges[r].lo && status <= t->ranges[r].hi;
            }
            ok = ok != t->negate;
            break;
        case GH_HC_HEADER:
            ok = gh_hc_header_test(t, pr);
            break;
        default:
            ok = gh_hc_regex_match(t->re, body, blen) != t->negate;
        }
        if (!ok) {
            return false;
        }
    }
    return true;
}


/* --- results -------------------------------------------------------------- */

static gh_upstream_hc_st_t *
gh_hc_state(gh_upstream_hc_t *hc, gh_upstream_peer_t *peer)
{
    return &((gh_upstream_hc_st_t *) peer->hc)[hc->index];
}


static void
gh_hc_record(gh_upstream_hc_t *hc, gh_upstream_peer_t *peer, bool passed,
    gh_uint_t status, const char *why)
{
    gh_upstream_srv_conf_t *us = hc->us;
    gh_upstream_peer_st_t  *st = gh_upstream_st(peer);
    gh_upstream_hc_st_t    *hs = gh_hc_state(hc, peer);
    uint32_t                bit = (uint32_t) 1 << hc->index;
    int                     change = 0;     /* -1 down, 1 up */

    gh_upstream_lock(us);
    hs->owner = 0;
    hs->checks++;
    hs->last_passed = passed;
    hs->last_status = status;
    hs->last_time = gh_current_wall_msec;
    if (passed) {
        hs->passes_in_row++;
        hs->fails_in_row = 0;
        if ((hs->unhealthy && hs->passes_in_row >= hc->passes)
            || hs->checking)
        {
            hs->unhealthy = false;
            st->hc_down &= ~bit;
            /* slow start once nothing else holds it out */
            if (st->hc_down == 0 && peer->slow_start) {
                st->recovered = gh_current_msec;
            }
            change = 1;
        }
    } else {
        hs->fails++;
        hs->fails_in_row++;
        hs->passes_in_row = 0;
        if ((!hs->unhealthy && hs->fails_in_row >= hc->fails)
            || hs->checking)
        {
            hs->unhealthy = true;
            hs->unhealthy_count++;
            st->hc_down |= bit;
            change = -1;
        }
    }
    hs->checking = false;
    st->hc_checking &= ~bit;
    gh_upstream_unlock(us);

    if (change < 0) {
        gh_log(GH_LOG_WARN, hc->log, 0, "upstream server %s of \"%.*s\" "
            "failed its health check (%s), now unhealthy", peer->name,
            (int) us->host.len, (const char *) us->host.data, why);
    } else if (change > 0) {
        gh_log(GH_LOG_NOTICE, hc->log, 0, "upstream server %s of \"%.*s\" "
            "passed its health check, now healthy", peer->name,
            (int) us->host.len, (const char *) us->host.data);
    }
}


/* end of a probe: record (unless dropped) and close; err: an errno
 * that goes with why */
static void
gh_hc_done(gh_hc_probe_t *pr, int verdict, const char *why, int err)
{
    gh_upstream_hc_t *hc = pr->hc;
    char              reason[160];

    if (verdict >= 0) {
        if (err) {
            snprintf(reason, sizeof(reason), "%s (%d: %s)", why, err,
                strerror(err));
            why = reason;
        }
        gh_hc_record(hc, pr->peer, verdict > 0, pr->sh.status, why);
    } else {
        /* dropped (worker quitting): let another worker probe it */
        gh_upstream_lock(hc->us);
        gh_hc_state(hc, pr->peer)->owner = 0;
        gh_upstream_unlock(hc->us);
    }
    gh_conn_close(pr->c);
}


/* --- the probe ------------------------------------------------------------ */

static void
gh_hc_probe_start(gh_upstream_hc_t *hc, gh_upstream_peer_t *peer)
{
    struct sockaddr_storage ss;
    gh_hc_probe_t          *pr;
    gh_conn_t              *c;
    gh_arena_t             *a;
    size_t                  rlen, size;
    int                     fd, one = 1, rc;

    memcpy(&ss, &peer->sockaddr, peer->socklen);
    if (hc->port && ss.ss_family != AF_UNIX) {
        /* sin_port and sin6_port are at the same offset */
        ((struct sockaddr_in *) &ss)->sin_port = htons((uint16_t) hc->port);
    }
    size = GH_HC_HEAD_MAX + (hc->match && hc->match->body ? GH_HC_BODY_MAX
                                                          : 0);
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c = fd >= 0 ? gh_conn_get(fd, hc->loop, hc->log) : NULL;
    if (c == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        gh_hc_record(hc, peer, false, 0, "no socket");
        return;
    }
    a = gh_arena_create(1024, 0);
    c->arena = a;
    pr = gh_calloc(a, sizeof(*pr));
    rlen = hc->uri.len + hc->us->host.len + 96;
    if (pr == NULL
        || (pr->out.start = gh_alloc_unaligned(a, rlen)) == NULL
        || (pr->buf = gh_alloc_unaligned(a, size)) == NULL
        || (pr->headers = gh_alloc(a, GH_HTTP_MAX_HEADERS
                                      * sizeof(gh_http_header_t))) == NULL)
    {
        gh_conn_close(c);
        gh_hc_record(hc, peer, false, 0, "out of memory");
        return;
    }
    pr->hc = hc;
    pr->peer = peer;
    pr->c = c;
    pr->size = size;
    pr->rest = -1;
    pr->out.pos = pr->out.start;
    pr->out.last = pr->out.start + snprintf((char *) pr->out.start, rlen,
        "GET %.*s HTTP/1.0\r\nHost: %.*s\r\nUser-Agent: gatehouse health "
        "check\r\n\r\n", (int) hc->uri.len, (const char *) hc->uri.data,
        (int) hc->us->host.len, (const char *) hc->us->host.data);
    c->data = pr;
    c->read.handler = gh_hc_read;
    c->write.handler = gh_hc_write;
    c->upstream = 1;
    c->socklen = gh_min(peer->socklen, (socklen_t) sizeof(c->sockaddr));
    memcpy(&c->sockaddr, &ss, c->socklen);
    if (ss.ss_family != AF_UNIX) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    /* idle: a graceful shutdown drops it instead of waiting */
    gh_conn_set_idle(c, true);
    rc = connect(fd, (struct sockaddr *) &ss, peer->socklen);
    if ((rc == -1 && errno != EINPROGRESS && errno != EINTR)
        || gh_loop_add_conn(hc->loop, c) != GH_OK)
    {
        gh_hc_done(pr, 0, "connect() failed", errno);
        return;
    }
    c->read.cancelable = 1;
    gh_timer_add(hc->loop, &c->read, hc->timeout);
    if (rc == 0) {
        pr->connected = true;
        c->write.ready = 1;
        gh_hc_write(&c->write);
    }
}


static void
gh_hc_write(gh_event_t *ev)
{
    gh_conn_t     *c = ev->data;
    gh_hc_probe_t *pr = c->data;
    ssize_t        n;

    if (!pr->connected) {
        if (gh_upstream_connect_check(c) != GH_OK) {
            gh_hc_done(pr, 0, "connect() failed", errno);
            return;
        }
        pr->connected = true;
    }
    while (pr->out.pos < pr->out.last) {
        n = c->send(c, pr->out.pos, (size_t) (pr->out.last - pr->out.pos));
        if (n == GH_AGAIN) {
            return;
        }
        if (n < 0) {
            gh_hc_done(pr, 0, "send() failed", errno);
            return;
        }
        pr->out.pos += n;
    }
    if (c->read.ready) {
        gh_hc_read(&c->read);
    }
}


/* the head is in: framing of the body, or the verdict right away */
static int
gh_hc_head(gh_hc_probe_t *pr, size_t nh)
{
    pr->nheaders = nh;
    for (size_t i = 0; i < nh; i++) {
        gh_http_header_t *h = &pr->headers[i];

        if (gh_str_caseeq_c(&h->name, "Content-Length")) {
            pr->rest = (off_t) gh_http_parse_content_length(&h->value);
        } else if (gh_str_caseeq_c(&h->name, "Transfer-Encoding")) {
            pr->chunked = true;
        }
    }
    if (pr->hc->match == NULL || !pr->hc->match->body) {
        return gh_hc_judge(pr, NULL, 0);
    }
    return -2;          /* read the body */
}


/* the body so far (decoded if chunked): a verdict, or -2 for more */
static int
gh_hc_body(gh_hc_probe_t *pr, bool eof)
{
    uint8_t        *body = pr->buf + pr->head_len;
    size_t          blen = pr->len - pr->head_len;
    size_t          full = pr->size - pr->head_len, used, dlen;
    const uint8_t  *d;
    gh_int_t        rc;

    if (pr->chunked) {
        while (!pr->ck_done && pr->ck_in < blen) {
            rc = gh_http_parse_chunked(&pr->ck, body + pr->ck_in,
                blen - pr->ck_in, &used, &d, &dlen);
            if (rc == GH_ERROR) {
                return 0;
            }
            if (dlen) {
                /* d is NULL when there is no data: memmove(NULL) is UB
                 * even for 0 bytes (UBSan, test_lb_health) */
                memmove(body + pr->ck_out, d, dlen);
            }
            pr->ck_out += dlen;
            pr->ck_in += used;
            pr->ck_done = rc == GH_DONE;
            if (rc == GH_AGAIN) {
                break;
            }
        }
        if (pr->ck_done || eof || blen == full) {
            return gh_hc_judge(pr, body, pr->ck_out);
        }
        return -2;
    }
    if (pr->rest >= 0 && (off_t) blen >= pr->rest) {
        return gh_hc_judge(pr, body, (size_t) pr->rest);
    }
    if (eof || blen == full) {
        /* the end, or the first 256 KiB: judged on what there is */
        return gh_hc_judge(pr, body, blen);
    }
    return -2;
}


static void
gh_hc_read(gh_event_t *ev)
{
    gh_conn_t        *c = ev->data;
    gh_hc_probe_t    *pr = c->data;
    gh_http_limits_t  limits = { GH_HC_HEAD_MAX, GH_HC_HEAD_MAX,
                                 GH_HTTP_MAX_HEADERS };
    ssize_t           n, rc;
    size_t            nh = 0;
    int               verdict = -2;
    bool              eof = false;

    if (c->close) {
        gh_hc_done(pr, -1, "", 0);
        return;
    }
    if (ev->timedout) {
        gh_hc_done(pr, 0, "timed out", 0);
        return;
    }
    if (!pr->connected) {
        return;
    }
    while (verdict == -2) {
        if (pr->len == pr->size) {
            eof = true;     /* buffer full: judge on what there is */
        } else {
            n = c->recv(c, pr->buf + pr->len, pr->size - pr->len);
            if (n == GH_AGAIN) {
                return;
            }
            if (n < 0) {
                gh_hc_done(pr, 0, "recv() failed", errno);
                return;
            }
            eof = n == 0;
            pr->len += (size_t) n;
        }
        if (pr->head_len == 0) {
            rc = gh_http_parse_response_head(pr->buf, pr->len, &pr->sh,
                pr->headers, &nh, &limits);
            if (rc == GH_AGAIN && !eof && pr->len < GH_HC_HEAD_MAX) {
                continue;
            }
            if (rc <= 0) {
                gh_hc_done(pr, 0, eof && pr->len == 0
                    ? "connection closed" : "invalid response", 0);
                return;
            }
            pr->head_len = (size_t) rc;
            verdict = gh_hc_head(pr, nh);
            if (verdict != -2) {
                break;
            }
        }
        verdict = gh_hc_body(pr, eof);
        if (verdict == -2 && eof) {
            verdict = 0;
        }
    }
    gh_hc_done(pr, verdict, verdict ? "" : pr->sh.status
        ? "response did not match" : "no response", 0);
}


/* --- scheduling ----------------------------------------------------------- */

static gh_msec_t
gh_hc_jitter(const gh_upstream_hc_t *hc)
{
    return hc->jitter > 0 ? (gh_msec_t) (random() % (hc->jitter + 1)) : 0;
}


static void
gh_hc_timer(gh_event_t *ev)
{
    gh_upstream_hc_t   *hc = ev->data;
    gh_upstream_peer_t *due[GH_HC_MAX_PROBES], *peer;
    gh_upstream_hc_st_t *hs;
    gh_msec_t           now = gh_current_msec, next = now + hc->interval;
    gh_uint_t           n = 0;
    pid_t               me = getpid();

    if (gh_conns.quitting) {
        return;
    }
    gh_upstream_lock(hc->us);
    for (int l = 0; l < 2; l++) {
        for (peer = l ? hc->us->backup : hc->us->peers; peer;
             peer = peer->next)
        {
            if (peer->down || peer->hc == NULL || n == GH_HC_MAX_PROBES) {
                continue;
            }
            hs = gh_hc_state(hc, peer);
            if (hs->owner != 0) {
                if (now - hs->started <= hc->timeout + 1000) {
                    next = gh_min(next, hs->started + hc->timeout + 1000);
                    continue;
                }
                hs->owner = 0;          /* its worker is gone */
            }
            if (now < hs->next) {
                next = gh_min(next, hs->next);
                continue;
            }
            hs->owner = me;
            hs->started = now;
            hs->next = now + hc->interval + gh_hc_jitter(hc);
            due[n++] = peer;
        }
    }
    gh_upstream_unlock(hc->us);

    for (gh_uint_t i = 0; i < n; i++) {
        gh_hc_probe_start(hc, due[i]);
    }
    gh_timer_add(hc->loop, &hc->timer, gh_max(next - gh_current_msec, 1));
}


static gh_int_t
gh_hc_init_process(gh_cycle_t *cycle)
{
    gh_conf_ctx_t     *http = cycle->http_ctx;
    gh_hc_main_conf_t *hmcf;
    gh_upstream_hc_t  *hc;

    if (http == NULL) {
        return GH_OK;
    }
    hmcf = http->main_conf[gh_http_upstream_hc_module.index];
    srandom((unsigned) getpid() ^ (unsigned) gh_current_msec);
    for (size_t i = 0; i < hmcf->checks.nelts; i++) {
        hc = *gh_array_at(&hmcf->checks, gh_upstream_hc_t *, i);
        hc->loop = cycle->loop;
        hc->log = cycle->log;
        hc->timer.handler = gh_hc_timer;
        hc->timer.data = hc;
        /* a quitting worker does not wait for the next round */
        hc->timer.cancelable = 1;
        gh_timer_add(cycle->loop, &hc->timer, 0);
    }
    return GH_OK;
}
