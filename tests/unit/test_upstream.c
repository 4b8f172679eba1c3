/*
 * test_upstream.c: upstream groups.
 *
 *   round robin   hand-built groups: the smooth weighted sequence, the
 *                 tried bitmap and tries, fail accounting and
 *                 fail_timeout, backups, a single server
 *   keep-alive    real loopback sockets: a listener made here plays the
 *                 upstream; put/get, the pool noticing a close or stray
 *                 bytes, the cap, the limits, timeouts, shutdown
 *   config        upstream{} through the real dispatcher (the http
 *                 fixture), gh_upstream_add() sharing and precedence,
 *                 implicit resolution, error messages; and once through
 *                 gh_cycle_load() to see the http block run our init
 *
 * "Now" is set by hand in the round-robin tests: gh_current_msec is
 * whatever the test says until a loop run refreshes it.
 */
#include "http_fixture.h"
#include "upstream/gh_upstream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* for calls expected to log: keeps the test output readable */
static gh_log_t quiet = { .level = -1 };

static gh_arena_t *ta;


static int
setup_arena(void **state)
{
    gh_time_init();
    /* errors are read back from the log, not echoed to the terminal */
    gh_log_startup_style = false;
    ta = gh_arena_create(4096, 0);
    return ta ? 0 : -1;
}


static int
teardown_arena(void **state)
{
    gh_arena_destroy(ta);
    return 0;
}


/* --- hand-built groups ------------------------------------------------ */

static gh_upstream_srv_conf_t *
mk_group(void)
{
    gh_upstream_srv_conf_t *us = gh_calloc(ta, sizeof(*us));

    assert_non_null(us);
    gh_str_set(&us->host, "test");
    us->keepalive = 0;
    us->keepalive_requests = 1000;
    us->keepalive_timeout = 60000;
    us->keepalive_time = 3600000;
    return us;
}


static gh_upstream_peer_t *
mk_peer(gh_upstream_srv_conf_t *us, const char *name, gh_int_t weight,
    bool backup)
{
    gh_upstream_peer_t  *peer = gh_calloc(ta, sizeof(*peer));
    gh_upstream_peer_t **tail = backup ? &us->backup : &us->peers;

    assert_non_null(peer);
    snprintf(peer->name, sizeof(peer->name), "%s", name);
    peer->weight = weight;
    gh_upstream_st(peer)->effective_weight = weight;
    peer->max_fails = 1;
    peer->fail_timeout = 10000;
    peer->backup = backup;
    while (*tail != NULL) {
        tail = &(*tail)->next;
    }
    *tail = peer;
    if (backup) {
        us->nbackup++;
    } else {
        us->npeers++;
    }
    return peer;
}


/* one request: pick, succeed; returns the first letter of the name */
static char
pick_one(gh_upstream_srv_conf_t *us)
{
    gh_upstream_peer_state_t ps;
    char                     name;

    gh_upstream_peer_init(&ps, us, NULL, 0);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    name = ps.peer->name[0];
    gh_upstream_peer_free(&ps, false);
    return name;
}


static void
test_rr_smooth(void **state)
{
    gh_upstream_srv_conf_t *us = mk_group();
    char                    seq[15];

    mk_peer(us, "a", 5, false);
    mk_peer(us, "b", 1, false);
    mk_peer(us, "c", 1, false);
    gh_current_msec = 1000000;

    /* nginx's smooth weighted round robin: a's five turns spread out,
     * the same 7-pick cycle over and over */
    for (int i = 0; i < 14; i++) {
        seq[i] = pick_one(us);
    }
    seq[14] = '\0';
    assert_string_equal(seq, "aabacaaaabacaa");
    for (gh_upstream_peer_t *p = us->peers; p; p = p->next) {
        assert_int_equal(gh_upstream_st(p)->current_weight, 0);
        assert_int_equal(gh_upstream_st(p)->conns, 0);
    }

    /* equal weights: plain rotation */
    us = mk_group();
    mk_peer(us, "x", 1, false);
    mk_peer(us, "y", 1, false);
    mk_peer(us, "z", 1, false);
    for (int i = 0; i < 6; i++) {
        seq[i] = pick_one(us);
    }
    seq[6] = '\0';
    assert_string_equal(seq, "xyzxyz");
}


static void
test_rr_tried(void **state)
{
    gh_upstream_srv_conf_t  *us = mk_group();
    gh_upstream_peer_state_t ps;
    gh_upstream_peer_t      *seen[3];

    mk_peer(us, "a", 1, false)->max_fails = 0;
    mk_peer(us, "b", 1, false)->max_fails = 0;
    mk_peer(us, "c", 1, false)->max_fails = 0;
    gh_current_msec = 1000000;

    /* one request retrying: each peer once, then no tries left */
    gh_upstream_peer_init(&ps, us, NULL, 0);
    assert_int_equal(ps.tries, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
        seen[i] = ps.peer;
        assert_int_equal(gh_upstream_st(ps.peer)->conns, 1);
        gh_upstream_peer_free(&ps, true);
        assert_int_equal(gh_upstream_st(seen[i])->conns, 0);
    }
    assert_true(seen[0] != seen[1] && seen[1] != seen[2]
                && seen[0] != seen[2]);
    assert_int_equal(ps.ntried, 3);
    assert_int_equal(ps.tries, 0);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_DECLINED);
    assert_null(ps.peer);

    /* proxy_next_upstream_tries 2 */
    gh_upstream_peer_init(&ps, us, NULL, 2);
    assert_int_equal(ps.tries, 2);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    gh_upstream_peer_free(&ps, true);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    gh_upstream_peer_free(&ps, true);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_DECLINED);

    /* a larger limit than there are peers changes nothing */
    gh_upstream_peer_init(&ps, us, NULL, 10);
    assert_int_equal(ps.tries, 3);

    /* the tried bitmap without the tries counter: a request that has
     * seen every peer gets none, even with tries to spare */
    gh_upstream_peer_init(&ps, us, NULL, 0);
    ps.tries = 100;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
        gh_upstream_peer_free(&ps, false);
    }
    assert_int_equal(gh_upstream_peer_get(&ps), GH_DECLINED);
}


static void
test_rr_fails(void **state)
{
    gh_upstream_srv_conf_t  *us = mk_group();
    gh_upstream_peer_state_t ps;
    gh_upstream_peer_t      *a, *b;
    bool                     got_a;

    a = mk_peer(us, "a", 1, false);
    b = mk_peer(us, "b", 1, false);
    gh_current_msec = 1000000;

    /* a fails once: max_fails=1 takes it out for fail_timeout */
    gh_upstream_peer_init(&ps, us, NULL, 0);
    ps.log = &quiet;
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    assert_ptr_equal(ps.peer, a);
    gh_upstream_peer_free(&ps, true);
    assert_int_equal(gh_upstream_st(a)->fails, 1);
    assert_int_equal(gh_upstream_st(a)->checked, 1000000);
    assert_int_equal(gh_upstream_st(a)->effective_weight, 0);
    assert_int_equal(ps.tries, 1);
    /* the same request moves on to b */
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    assert_ptr_equal(ps.peer, b);
    gh_upstream_peer_free(&ps, false);

    for (int i = 0; i < 5; i++) {
        gh_current_msec += 1000;
        assert_int_equal(pick_one(us), 'b');
    }
    gh_current_msec = 1000000 + 10000;   /* the window's last moment */
    assert_int_equal(pick_one(us), 'b');

    /* past fail_timeout: a is back (eased in: its effective weight
     * climbs again), and a success clears its failures */
    gh_current_msec = 1000000 + 10001;
    got_a = false;
    for (int i = 0; i < 4 && !got_a; i++) {
        gh_upstream_peer_init(&ps, us, NULL, 0);
        assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
        got_a = ps.peer == a;
        if (got_a) {
            assert_int_equal(gh_upstream_st(a)->checked, gh_current_msec);
            assert_int_equal(gh_upstream_st(a)->fails, 1);
        }
        gh_upstream_peer_free(&ps, false);
    }
    assert_true(got_a);
    assert_int_equal(gh_upstream_st(a)->fails, 0);
    assert_int_equal(gh_upstream_st(a)->effective_weight, 1);

    /* max_fails=3: two failures keep it in service, the third does not */
    a->max_fails = 3;
    for (int i = 0; i < 3; i++) {
        gh_upstream_peer_init(&ps, us, NULL, 0);
        ps.peer = a;            /* as if picked: report on a */
        ps.held = true;
        gh_upstream_st(a)->conns++;
        gh_upstream_peer_free(&ps, true);
        if (i < 2) {
            got_a = false;
            for (int j = 0; j < 4; j++) {
                got_a |= pick_one(us) == 'a';
            }
            assert_true(got_a);
        }
    }
    assert_int_equal(gh_upstream_st(a)->fails, 3);
    for (int j = 0; j < 4; j++) {
        assert_int_equal(pick_one(us), 'b');
    }

    /* max_fails=0: no accounting at all */
    a->max_fails = 0;
    got_a = false;
    for (int j = 0; j < 4; j++) {
        got_a |= pick_one(us) == 'a';
    }
    assert_true(got_a);

    /* every peer in its window: "no live upstreams" */
    a->max_fails = 1;
    gh_upstream_st(b)->fails = 1;
    gh_upstream_st(b)->checked = gh_current_msec;
    gh_upstream_st(a)->checked = gh_current_msec;
    gh_upstream_peer_init(&ps, us, NULL, 0);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_DECLINED);
}


static void
test_rr_backup(void **state)
{
    gh_upstream_srv_conf_t  *us = mk_group();
    gh_upstream_peer_state_t ps;
    gh_upstream_peer_t      *a, *b, *c, *d;

    a = mk_peer(us, "a", 1, false);
    b = mk_peer(us, "b", 1, false);
    c = mk_peer(us, "c", 1, true);
    d = mk_peer(us, "d", 1, true);
    gh_current_msec = 2000000;

    /* primaries healthy: backups unused */
    for (int i = 0; i < 4; i++) {
        char n = pick_one(us);
        assert_true(n == 'a' || n == 'b');
    }

    /* one request failing on both primaries moves on to the backups */
    gh_upstream_peer_init(&ps, us, NULL, 0);
    ps.log = &quiet;
    assert_int_equal(ps.tries, 4);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    gh_upstream_peer_free(&ps, true);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    gh_upstream_peer_free(&ps, true);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    assert_true(ps.backup);
    assert_ptr_equal(ps.peer, c);
    gh_upstream_peer_free(&ps, true);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    assert_ptr_equal(ps.peer, d);
    gh_upstream_peer_free(&ps, false);
    assert_int_equal(ps.tries, 0);

    /* the primaries are in their fail window now: new requests go to
     * the backups straight away */
    assert_int_equal(gh_upstream_st(a)->fails, 1);
    assert_int_equal(gh_upstream_st(b)->fails, 1);
    for (int i = 0; i < 4; i++) {
        char n = pick_one(us);
        assert_true(n == 'c' || n == 'd');
    }
    /* down primaries count as unusable too */
    gh_upstream_st(a)->fails = gh_upstream_st(b)->fails = 0;
    a->down = b->down = 1;
    assert_true(pick_one(us) >= 'c');
    a->down = b->down = 0;
    assert_true(pick_one(us) <= 'b');

    /* backups all down as well: nothing */
    a->down = b->down = c->down = d->down = 1;
    gh_upstream_peer_init(&ps, us, NULL, 0);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_DECLINED);
}


static void
test_rr_single(void **state)
{
    gh_upstream_srv_conf_t  *us = mk_group();
    gh_upstream_peer_state_t ps;
    gh_upstream_peer_t      *a;

    a = mk_peer(us, "a", 1, false);
    gh_current_msec = 3000000;

    /* one server: never taken out of service, never retried */
    for (int i = 0; i < 5; i++) {
        gh_upstream_peer_init(&ps, us, NULL, 0);
        assert_int_equal(ps.tries, 1);
        assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
        assert_ptr_equal(ps.peer, a);
        gh_upstream_peer_free(&ps, true);
        assert_int_equal(ps.tries, 0);
        assert_int_equal(gh_upstream_peer_get(&ps), GH_DECLINED);
    }
    assert_int_equal(gh_upstream_st(a)->fails, 0);
    assert_int_equal(gh_upstream_st(a)->conns, 0);

    /* but `down` is honoured */
    a->down = 1;
    gh_upstream_peer_init(&ps, us, NULL, 0);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_DECLINED);
    a->down = 0;

    /* max_conns (per worker) */
    a->max_conns = 1;
    gh_upstream_peer_init(&ps, us, NULL, 0);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    {
        gh_upstream_peer_state_t ps2;

        gh_upstream_peer_init(&ps2, us, NULL, 0);
        assert_int_equal(gh_upstream_peer_get(&ps2), GH_DECLINED);
    }
    gh_upstream_peer_free(&ps, false);
    assert_int_equal(pick_one(us), 'a');
}


/* --- keep-alive over loopback ----------------------------------------- */

typedef struct {
    gh_loop_t              *loop;
    int                     lfd;
    gh_upstream_srv_conf_t *us;
    gh_uint_t               active;     /* gh_conns.active at the start */
} ka_t;


static void
ka_init(ka_t *k, gh_int_t keepalive)
{
    struct sockaddr_in  sin = { .sin_family = AF_INET };
    socklen_t           len = sizeof(sin);
    gh_upstream_peer_t *peer;

    /* the RR tests played with the clock: timers need the real one */
    gh_time_update();
    k->active = gh_conns.active;
    k->loop = gh_loop_create(64, &quiet);
    assert_non_null(k->loop);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    k->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(k->lfd >= 0);
    assert_int_equal(bind(k->lfd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    assert_int_equal(listen(k->lfd, 16), 0);
    assert_int_equal(getsockname(k->lfd, (struct sockaddr *) &sin, &len), 0);

    k->us = mk_group();
    k->us->keepalive = keepalive;
    peer = mk_peer(k->us, "p", 1, false);
    memcpy(&peer->sockaddr, &sin, sizeof(sin));
    peer->socklen = sizeof(sin);
    gh_sock_ntop((struct sockaddr *) &sin, sizeof(sin), peer->name,
        sizeof(peer->name), true);
}


static void
ka_done(ka_t *k)
{
    gh_upstream_keepalive_close_all();
    gh_conn_release_closed();
    close(k->lfd);
    gh_loop_destroy(k->loop);
    assert_int_equal(gh_conns.active, k->active);
}


/* a connection to the group's peer; *sfd: the upstream's side of a new
 * one, -1 for a pooled one */
static gh_conn_t *
ka_connect(ka_t *k, bool *pooled, int *sfd)
{
    gh_upstream_peer_state_t ps;
    gh_conn_t               *c = NULL;
    gh_int_t                 rc;

    gh_upstream_peer_init(&ps, k->us, NULL, 0);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    rc = gh_upstream_connect(&ps, k->loop, &quiet, &c, pooled);
    assert_non_null(c);
    assert_true(c->upstream);
    assert_null(c->data);
    assert_non_null(gh_upstream_conn_info(c));
    assert_ptr_equal(gh_upstream_conn_info(c)->peer, ps.peer);
    assert_ptr_equal(gh_upstream_conn_info(c)->us, k->us);
    assert_string_equal((const char *) c->addr_text.data, ps.peer->name);
    *sfd = -1;
    if (*pooled) {
        assert_int_equal(rc, GH_OK);
    } else {
        assert_true(rc == GH_AGAIN || rc == GH_OK);
        /* blocking accept: the kernel finishes the handshake alone */
        *sfd = accept(k->lfd, NULL, NULL);
        assert_true(*sfd >= 0);
        assert_int_equal(gh_upstream_connect_check(c), GH_OK);
    }
    gh_upstream_peer_free(&ps, false);
    return c;
}


/* run the loop until cond holds or about a second has passed */
#define RUN_UNTIL(k, cond) \
    do { \
        for (int i_ = 0; i_ < 50 && !(cond); i_++) { \
            gh_loop_run_once((k)->loop, 20); \
        } \
    } while (0)


static void
test_ka_put_get(void **state)
{
    ka_t       k;
    gh_conn_t *c, *c2;
    bool       pooled;
    int        sfd, sfd2;
    char       buf[8];

    ka_init(&k, 4);
    c = ka_connect(&k, &pooled, &sfd);
    assert_false(pooled);

    /* a response done: back to the pool */
    gh_upstream_conn_info(c)->requests++;
    gh_upstream_keepalive_put(c);
    assert_false(c->destroyed);
    assert_int_equal(k.us->nidle, 1);
    assert_true(c->idle);
    assert_true(c->read.timer_set);

    /* a quiet upstream: the pool keeps it across loop runs */
    gh_loop_run_once(k.loop, 20);
    assert_int_equal(k.us->nidle, 1);

    /* the next connect to the same peer reuses it, ready to write */
    c2 = ka_connect(&k, &pooled, &sfd2);
    assert_true(pooled);
    assert_ptr_equal(c2, c);
    assert_int_equal(k.us->nidle, 0);
    assert_false(c->idle);
    assert_false(c->read.timer_set);
    assert_int_equal(c->send(c, (const uint8_t *) "ping", 4), 4);
    assert_int_equal(recv(sfd, buf, sizeof(buf), 0), 4);

    /* the pool empty again: a new connection */
    c2 = ka_connect(&k, &pooled, &sfd2);
    assert_false(pooled);
    assert_true(c2 != c);
    gh_conn_close(c2);
    gh_conn_close(c);
    close(sfd);
    close(sfd2);
    ka_done(&k);
}


static void
test_ka_upstream_closes(void **state)
{
    ka_t       k;
    gh_conn_t *c;
    bool       pooled;
    int        sfd;
    gh_uint_t  active;

    ka_init(&k, 4);

    /* the upstream closes an idle connection: gone from the pool as soon
     * as the loop sees it */
    c = ka_connect(&k, &pooled, &sfd);
    active = gh_conns.active;
    gh_upstream_keepalive_put(c);
    assert_int_equal(k.us->nidle, 1);
    close(sfd);
    RUN_UNTIL(&k, k.us->nidle == 0);
    assert_int_equal(k.us->nidle, 0);
    assert_null(k.us->idle);
    assert_null(k.us->idle_tail);
    assert_int_equal(gh_conns.active, active - 1);

    /* bytes nobody asked for: closed too */
    c = ka_connect(&k, &pooled, &sfd);
    assert_false(pooled);
    gh_upstream_keepalive_put(c);
    assert_int_equal(send(sfd, "x", 1, 0), 1);
    RUN_UNTIL(&k, k.us->nidle == 0);
    assert_int_equal(k.us->nidle, 0);
    close(sfd);

    /* and a close that came before the put (read.ready still set from
     * the edge) is caught at put time, without another edge */
    c = ka_connect(&k, &pooled, &sfd);
    close(sfd);
    RUN_UNTIL(&k, c->read.ready);
    c->read.eof = 0;        /* as if only EPOLLIN had been seen */
    gh_upstream_keepalive_put(c);
    assert_true(c->destroyed);
    assert_int_equal(k.us->nidle, 0);
    ka_done(&k);
}


static void
test_ka_cap(void **state)
{
    ka_t       k;
    gh_conn_t *c[3], *r;
    bool       pooled;
    int        sfd[3], s;

    ka_init(&k, 2);
    for (int i = 0; i < 3; i++) {
        c[i] = ka_connect(&k, &pooled, &sfd[i]);
        assert_false(pooled);
    }
    /* keepalive 2: the third put closes the least recently used */
    for (int i = 0; i < 3; i++) {
        gh_upstream_keepalive_put(c[i]);
    }
    assert_int_equal(k.us->nidle, 2);
    assert_true(c[0]->destroyed);
    assert_false(c[1]->destroyed);
    assert_false(c[2]->destroyed);

    /* most recently used first */
    r = ka_connect(&k, &pooled, &s);
    assert_true(pooled);
    assert_ptr_equal(r, c[2]);
    gh_upstream_keepalive_put(r);
    r = ka_connect(&k, &pooled, &s);
    assert_ptr_equal(r, c[2]);
    gh_upstream_keepalive_put(r);
    assert_int_equal(k.us->nidle, 2);

    /* graceful shutdown closes idle pooled connections */
    gh_conn_close_idle();
    assert_int_equal(k.us->nidle, 0);
    assert_true(c[1]->destroyed && c[2]->destroyed);
    for (int i = 0; i < 3; i++) {
        close(sfd[i]);
    }
    ka_done(&k);
}


static void
test_ka_limits(void **state)
{
    ka_t                     k;
    gh_conn_t               *c;
    gh_upstream_conn_info_t *info;
    bool                     pooled;
    int                      sfd;

    ka_init(&k, 4);
    k.us->keepalive_requests = 3;
    k.us->keepalive_time = 1000;

    c = ka_connect(&k, &pooled, &sfd);
    info = gh_upstream_conn_info(c);
    info->requests = 3;
    gh_upstream_keepalive_put(c);
    assert_true(c->destroyed);
    assert_int_equal(k.us->nidle, 0);
    close(sfd);

    c = ka_connect(&k, &pooled, &sfd);
    info = gh_upstream_conn_info(c);
    info->requests = 1;
    info->created = gh_current_msec - 1000;
    gh_upstream_keepalive_put(c);
    assert_true(c->destroyed);
    close(sfd);

    /* no `keepalive`: never pooled */
    k.us->keepalive = 0;
    c = ka_connect(&k, &pooled, &sfd);
    gh_upstream_keepalive_put(c);
    assert_true(c->destroyed);
    close(sfd);

    /* a quitting worker keeps nothing */
    k.us->keepalive = 4;
    c = ka_connect(&k, &pooled, &sfd);
    gh_conns.quitting = true;
    gh_upstream_keepalive_put(c);
    gh_conns.quitting = false;
    assert_true(c->destroyed);
    close(sfd);

    /* keepalive_timeout */
    k.us->keepalive_timeout = 30;
    c = ka_connect(&k, &pooled, &sfd);
    gh_upstream_keepalive_put(c);
    assert_int_equal(k.us->nidle, 1);
    RUN_UNTIL(&k, k.us->nidle == 0);
    assert_int_equal(k.us->nidle, 0);
    close(sfd);
    ka_done(&k);
}


static void
test_ka_close_all(void **state)
{
    ka_t       k1, k2;
    gh_conn_t *c;
    bool       pooled;
    int        s1, s2;

    ka_init(&k1, 4);
    ka_init(&k2, 4);
    k2.active = k1.active;
    c = ka_connect(&k1, &pooled, &s1);
    gh_upstream_keepalive_put(c);
    c = ka_connect(&k2, &pooled, &s2);
    gh_upstream_keepalive_put(c);
    assert_int_equal(k1.us->nidle, 1);
    assert_int_equal(k2.us->nidle, 1);

    gh_upstream_keepalive_close_all();
    assert_int_equal(k1.us->nidle, 0);
    assert_int_equal(k2.us->nidle, 0);
    close(s1);
    close(s2);
    close(k1.lfd);
    gh_loop_destroy(k1.loop);
    ka_done(&k2);
}


static void
test_connect_refused(void **state)
{
    ka_t                     k;
    gh_upstream_peer_state_t ps;
    gh_conn_t               *c = NULL;
    bool                     pooled;
    gh_int_t                 rc;

    /* a port nobody listens on: refused at once or after the edge */
    ka_init(&k, 4);
    close(k.lfd);
    k.lfd = -1;
    gh_upstream_peer_init(&ps, k.us, NULL, 0);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    rc = gh_upstream_connect(&ps, k.loop, &quiet, &c, &pooled);
    if (rc == GH_ERROR) {
        assert_int_equal(errno, ECONNREFUSED);
        assert_null(c);
    } else {
        assert_int_equal(rc, GH_AGAIN);
        RUN_UNTIL(&k, c->write.ready);
        assert_int_equal(gh_upstream_connect_check(c), GH_ERROR);
        assert_int_equal(errno, ECONNREFUSED);
        gh_conn_close(c);
    }
    gh_upstream_peer_free(&ps, true);
    gh_conn_release_closed();
    gh_loop_destroy(k.loop);
    assert_int_equal(gh_conns.active, k.active);
}


/* --- configuration ----------------------------------------------------- */

static gh_upstream_main_conf_t *
umcf(void)
{
    return fx.http.main_conf[gh_http_upstream_module.index];
}


static const char *
init_main(void)
{
    return gh_http_upstream_module.init_main_conf(&fx.cf, umcf());
}


static gh_upstream_srv_conf_t *
group(const char *name)
{
    gh_str_t n = fx_str(name);

    for (size_t i = 0; i < umcf()->upstreams.nelts; i++) {
        gh_upstream_srv_conf_t *us =
            *gh_array_at(&umcf()->upstreams, gh_upstream_srv_conf_t *, i);
        if (gh_str_caseeq(&us->host, &n)) {
            return us;
        }
    }
    return NULL;
}


static void
test_conf_parse(void **state)
{
    gh_upstream_srv_conf_t *us;
    gh_upstream_peer_t     *p;
    gh_upstream_server_t   *s;

    assert_int_equal(fx_dispatch(
        "upstream backend {\n"
        "    zone backend 64k;\n"
        "    server 127.0.0.1:8081 weight=5 max_fails=3 fail_timeout=30s;\n"
        "    server [::1]:8083 down max_conns=7;\n"
        "    server 127.0.0.2 backup;\n"
        "    server unix:/tmp/gh.sock resolve;\n"
        "    keepalive 16;\n"
        "    keepalive_requests 100;\n"
        "    keepalive_timeout 5s;\n"
        "    keepalive_time 10m;\n"
        "}\n"
        "upstream Plain {\n"
        "    server localhost:9000;\n"
        "}\n"), GH_OK);
    assert_null(init_main());
    assert_int_equal(umcf()->upstreams.nelts, 2);

    us = group("backend");
    assert_non_null(us);
    assert_false(us->implicit);
    assert_int_equal(us->port, 0);
    assert_int_equal(us->servers.nelts, 4);
    s = gh_array_at(&us->servers, gh_upstream_server_t, 3);
    assert_true(s->resolve);
    assert_int_equal(s->line, 6);
    assert_int_equal(us->npeers, 3);
    assert_int_equal(us->nbackup, 1);
    assert_int_equal(us->line, 1);

    p = us->peers;
    assert_string_equal(p->name, "127.0.0.1:8081");
    assert_true(gh_str_eq_c(&p->server, "127.0.0.1:8081"));
    assert_int_equal(p->weight, 5);
    assert_int_equal(gh_upstream_st(p)->effective_weight, 5);
    assert_int_equal(p->max_fails, 3);
    assert_int_equal(p->fail_timeout, 30000);
    assert_false(p->down);
    p = p->next;
    assert_string_equal(p->name, "[::1]:8083");
    assert_true(p->down);
    assert_int_equal(p->max_conns, 7);
    assert_int_equal(p->weight, 1);
    assert_int_equal(p->max_fails, 1);
    assert_int_equal(p->fail_timeout, 10000);
    p = p->next;
    assert_string_equal(p->name, "unix:/tmp/gh.sock");
    assert_int_equal(p->sockaddr.ss_family, AF_UNIX);
    assert_null(p->next);
    assert_string_equal(us->backup->name, "127.0.0.2:80");
    assert_true(us->backup->backup);

    assert_int_equal(us->keepalive, 16);
    assert_int_equal(us->keepalive_requests, 100);
    assert_int_equal(us->keepalive_timeout, 5000);
    assert_int_equal(us->keepalive_time, 600000);

    /* names are case-insensitive; defaults; localhost gives every
     * address it has, IPv4 first */
    us = group("plain");
    assert_non_null(us);
    assert_true(us->npeers >= 1);
    assert_string_equal(us->peers->name, "127.0.0.1:9000");
    assert_int_equal(us->keepalive, 0);
    assert_int_equal(us->keepalive_requests, 1000);
    assert_int_equal(us->keepalive_timeout, 60000);
    assert_int_equal(us->keepalive_time, 3600000);

    /* run time lookup, for proxy_pass with variables */
    {
        gh_http_request_t *r = fx_request();
        gh_str_t           n = fx_str("BACKEND");

        assert_ptr_equal(gh_upstream_find(r, &n), group("backend"));
        n = fx_str("nope");
        assert_null(gh_upstream_find(r, &n));
    }
}


static void
test_conf_add(void **state)
{
    gh_upstream_srv_conf_t *a, *b, *c, *blk, *late, *ip, *lh, *ux;
    gh_str_t                host;
    gh_http_request_t      *r;

    /* implicit groups are shared per host:port; no port means 80 */
    host = fx_str("localhost");
    fx.node.line = 3;
    a = gh_upstream_add(&fx.cf, &host, 0, true);
    assert_non_null(a);
    assert_true(a->implicit);
    assert_true(a->no_port);
    assert_int_equal(a->port, 80);
    assert_int_equal(a->line, 3);
    b = gh_upstream_add(&fx.cf, &host, 80, true);
    assert_ptr_equal(a, b);
    host = fx_str("LocalHost");
    b = gh_upstream_add(&fx.cf, &host, 0, true);
    assert_ptr_equal(a, b);
    c = gh_upstream_add(&fx.cf, &host, 8080, true);
    assert_true(c != a);
    assert_false(c->no_port);
    assert_int_equal(c->port, 8080);

    /* a block written after proxy_pass http://late takes that group
     * over: the earlier pointer leads to the block's servers */
    host = fx_str("late");
    late = gh_upstream_add(&fx.cf, &host, 0, true);
    assert_non_null(late);
    assert_int_equal(fx_dispatch(
        "upstream blk { server 127.0.0.1:7001; }\n"
        "upstream late {\n"
        "    server 127.0.0.1:7002;\n"
        "    server 127.0.0.1:7003;\n"
        "}\n"), GH_OK);
    assert_ptr_equal(group("late"), late);
    assert_false(late->implicit);
    assert_int_equal(late->port, 0);
    assert_int_equal(late->servers.nelts, 2);
    assert_int_equal(late->npeers, 2);
    assert_string_equal(late->peers->name, "127.0.0.1:7002");

    /* and one written before: proxy_pass http://blk names it */
    host = fx_str("blk");
    blk = gh_upstream_add(&fx.cf, &host, 0, true);
    assert_ptr_equal(blk, group("blk"));
    assert_false(blk->implicit);

    /* implicit groups resolve at the end of http{} */
    host = fx_str("127.0.0.1");
    ip = gh_upstream_add(&fx.cf, &host, 8080, true);
    host = fx_str("localhost");
    lh = gh_upstream_add(&fx.cf, &host, 0, true);
    assert_ptr_equal(lh, a);
    host = fx_str("[::1]");
    c = gh_upstream_add(&fx.cf, &host, 8443, true);
    host = fx_str("unix:/tmp/app.sock");
    ux = gh_upstream_add(&fx.cf, &host, 0, true);
    assert_null(ip->peers);
    assert_null(init_main());
    fx_log_take();
    assert_int_equal(ip->npeers, 1);
    assert_string_equal(ip->peers->name, "127.0.0.1:8080");
    assert_true(gh_str_eq_c(&ip->peers->server, "127.0.0.1:8080"));
    assert_string_equal(lh->peers->name, "127.0.0.1:80");
    assert_string_equal(c->peers->name, "[::1]:8443");
    assert_string_equal(ux->peers->name, "unix:/tmp/app.sock");
    assert_int_equal(ip->peers->max_fails, 1);
    assert_int_equal(ip->peers->fail_timeout, 10000);
    assert_int_equal(ip->keepalive, 0);
    assert_int_equal(late->npeers, 2);     /* not resolved twice */

    /* implicit groups are not found by name at run time */
    r = fx_request();
    host = fx_str("localhost");
    assert_null(gh_upstream_find(r, &host));
    host = fx_str("late");
    assert_ptr_equal(gh_upstream_find(r, &host), late);
}


/* each case on a fresh fixture: the configuration must fail and log msg */
static void
expect_conf_error(const char *conf, const char *msg)
{
    gh_int_t    rc;
    const char *log;

    fx_setup(NULL);
    rc = fx_dispatch(conf);
    if (rc == GH_OK && init_main() != NULL) {
        rc = GH_ERROR;
    }
    log = fx_log_take();
    if (rc == GH_OK || strstr(log, msg) == NULL) {
        print_error("config: %s\nwanted: %s\nlogged: %s\n", conf, msg, log);
        fx_teardown(NULL);
        fail();
    }
    fx_teardown(NULL);
}


static void
test_conf_errors(void **state)
{
    expect_conf_error(
        "upstream b { server 127.0.0.1; }\n"
        "upstream b { server 127.0.0.1; }\n",
        "duplicate upstream \"b\" in /test.conf:2");
    expect_conf_error("upstream b {\n}\n",
        "no servers are inside upstream in /test.conf:1");
    expect_conf_error("upstream b { keepalive 2; }\n",
        "no servers are inside upstream in /test.conf:1");
    expect_conf_error("upstream b { server 127.0.0.1 backup; }\n",
        "no servers in upstream \"b\" in /test.conf:1");
    expect_conf_error("upstream b {\n server 127.0.0.1 weight=0;\n}\n",
        "invalid parameter \"weight=0\" in /test.conf:2");
    expect_conf_error("upstream b { server 127.0.0.1 weight=x; }\n",
        "invalid parameter \"weight=x\"");
    expect_conf_error("upstream b { server 127.0.0.1 max_fails=-1; }\n",
        "invalid parameter \"max_fails=-1\"");
    expect_conf_error("upstream b { server 127.0.0.1 fail_timeout=500ms; }\n",
        "invalid parameter \"fail_timeout=500ms\"");
    expect_conf_error("upstream b { server 127.0.0.1 slow_start=x; }\n",
        "invalid parameter \"slow_start=x\"");
    /* the hash methods and random keep nginx's list of parameters */
    expect_conf_error("upstream b { ip_hash; server 127.0.0.1 "
        "slow_start=10s; }\n",
        "balancing method does not support parameter \"slow_start=10s\"");
    expect_conf_error("upstream b { hash $uri; server 127.0.0.1; "
        "server 127.0.0.2 backup; }\n",
        "balancing method does not support parameter \"backup\"");
    expect_conf_error("upstream b { random two least_time; "
        "server 127.0.0.1; }\n", "invalid parameter \"least_time\"");
    expect_conf_error("upstream b { hash $uri ketama; "
        "server 127.0.0.1; }\n", "invalid parameter \"ketama\"");
    expect_conf_error("upstream b { least_time first_byte; "
        "server 127.0.0.1; }\n", "invalid parameter \"first_byte\"");
    expect_conf_error("upstream b { sticky route $x; "
        "server 127.0.0.1; }\n", "sticky \"route\" is not supported");
    expect_conf_error("upstream b { server no-such-host.invalid; }\n",
        "host not found in upstream \"no-such-host.invalid\" in /test.conf:1");
    expect_conf_error("upstream b { server 127.0.0.1:99999; }\n",
        "invalid port in upstream \"127.0.0.1:99999\"");
    expect_conf_error("upstream b { server ::1; }\n",
        "invalid host in upstream \"::1\"");
    expect_conf_error("upstream b { server unix:; }\n",
        "no path in the unix domain socket in upstream \"unix:\"");
    expect_conf_error("upstream b { server 127.0.0.1; keepalive 0; }\n",
        "invalid value \"0\" in \"keepalive\" directive");
    expect_conf_error(
        "upstream b { server 127.0.0.1; keepalive 1; keepalive 2; }\n",
        "\"keepalive\" directive is duplicate");
    expect_conf_error(
        "upstream b { server 127.0.0.1; keepalive_timeout x; }\n",
        "\"keepalive_timeout\" directive invalid value \"x\"");
    expect_conf_error("upstream b { server 127.0.0.1; zone z 0; }\n",
        "invalid zone size \"0\"");
    expect_conf_error("upstream b { random three; server 127.0.0.1; }\n",
        "invalid parameter \"three\"");
    expect_conf_error("upstream b { server 127.0.0.1; zone z 1k; }\n",
        "zone \"z\" is too small");
    expect_conf_error("keepalive 5;\n",
        "\"keepalive\" directive is not allowed here");
    expect_conf_error("upstream b { server 127.0.0.1 { } }\n",
        "unexpected \"{\"");
}


static void
test_conf_port_errors(void **state)
{
    gh_str_t    host = fx_str("b");
    const char *log;

    /* proxy_pass http://b:8080 when b is a block */
    fx_setup(NULL);
    assert_int_equal(fx_dispatch("upstream b { server 127.0.0.1; }\n"),
        GH_OK);
    fx.node.line = 9;
    assert_null(gh_upstream_add(&fx.cf, &host, 8080, true));
    log = fx_log_take();
    assert_non_null(strstr(log,
        "upstream \"b\" may not have port 8080 in /test.conf:9"));
    fx_teardown(NULL);

    /* the same, block written after: reported at the proxy_pass */
    fx_setup(NULL);
    fx.node.file = "/other.conf";
    fx.node.line = 4;
    assert_non_null(gh_upstream_add(&fx.cf, &host, 8080, true));
    fx.node.file = "/test.conf";
    assert_int_equal(fx_dispatch("upstream b { server 127.0.0.1; }\n"),
        GH_ERROR);
    log = fx_log_take();
    assert_non_null(strstr(log,
        "upstream \"b\" may not have port 8080 in /other.conf:4"));
    fx_teardown(NULL);

    /* an implicit group that does not resolve */
    fx_setup(NULL);
    host = fx_str("no-such-host.invalid");
    fx.node.line = 12;
    assert_non_null(gh_upstream_add(&fx.cf, &host, 81, true));
    fx.node.line = 1;
    assert_non_null(init_main());
    log = fx_log_take();
    assert_non_null(strstr(log, "host not found in upstream "
        "\"no-such-host.invalid:81\" in /test.conf:12"));
    fx_teardown(NULL);
}


/* the real http{} block calls our init_main_conf after its children */
static void
test_conf_cycle(void **state)
{
    char        dir[64], path[128];
    FILE       *f;
    gh_cycle_t *cycle;
    gh_conf_ctx_t *http;
    gh_upstream_main_conf_t *m;
    gh_upstream_srv_conf_t  *us;

    snprintf(dir, sizeof(dir), "/tmp/gh_test_ups_XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/logs", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/conf", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/conf/gatehouse.conf", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("events { }\n"
          "http {\n"
          "    upstream backend {\n"
          "        server 127.0.0.1:8081;\n"
          "        keepalive 8;\n"
          "    }\n"
          "}\n", f);
    fclose(f);

    gh_modules_init();
    gh_log_startup_style = false;
    cycle = gh_cycle_load(path, NULL, NULL, NULL, &quiet, NULL);
    assert_non_null(cycle);
    http = cycle->http_ctx;
    assert_non_null(http);
    m = http->main_conf[gh_http_upstream_module.index];
    assert_int_equal(m->upstreams.nelts, 1);
    us = *gh_array_at(&m->upstreams, gh_upstream_srv_conf_t *, 0);
    assert_int_equal(us->keepalive, 8);
    assert_int_equal(us->keepalive_requests, 1000);   /* init ran */
    assert_string_equal(us->peers->name, "127.0.0.1:8081");
    gh_cycle_free(cycle);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("events { }\nhttp {\n    upstream backend { }\n}\n", f);
    fclose(f);
    cycle = gh_cycle_load(path, NULL, NULL, NULL, &quiet, NULL);
    assert_null(cycle);

    snprintf(path, sizeof(path), "rm -rf %s", dir);
    assert_int_equal(system(path), 0);
}


static void
test_is_loopback(void **state)
{
    static const struct { const char *addr; bool loop; } cases[] = {
        { "127.0.0.1", true }, { "127.255.0.9", true },
        { "126.255.255.255", false }, { "128.0.0.1", false },
        { "10.0.0.1", false }, { "0.0.0.0", false },
        { "::1", true }, { "::", false }, { "::2", false },
        { "::ffff:127.0.0.1", true }, { "::ffff:10.0.0.1", false },
        { "fe80::1", false },
    };
    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        if (strchr(cases[i].addr, ':')) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;
            s6->sin6_family = AF_INET6;
            assert_int_equal(inet_pton(AF_INET6, cases[i].addr,
                &s6->sin6_addr), 1);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;
            s4->sin_family = AF_INET;
            assert_int_equal(inet_pton(AF_INET, cases[i].addr,
                &s4->sin_addr), 1);
        }
        if (gh_upstream_is_loopback(&ss) != cases[i].loop) {
            fail_msg("%s", cases[i].addr);
        }
    }
    struct sockaddr_storage un = { .ss_family = AF_UNIX };
    assert_false(gh_upstream_is_loopback(&un));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rr_smooth),
        cmocka_unit_test(test_rr_tried),
        cmocka_unit_test(test_rr_fails),
        cmocka_unit_test(test_rr_backup),
        cmocka_unit_test(test_rr_single),
        cmocka_unit_test(test_ka_put_get),
        cmocka_unit_test(test_ka_upstream_closes),
        cmocka_unit_test(test_ka_cap),
        cmocka_unit_test(test_ka_limits),
        cmocka_unit_test(test_ka_close_all),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test_setup_teardown(test_conf_parse, fx_setup,
            fx_teardown),
        cmocka_unit_test_setup_teardown(test_conf_add, fx_setup,
            fx_teardown),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_conf_port_errors),
        cmocka_unit_test(test_conf_cycle),
        cmocka_unit_test(test_is_loopback),
    };

    return cmocka_run_group_tests(tests, setup_arena, teardown_arena);
}
