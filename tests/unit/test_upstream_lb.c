/*
 * test_upstream_lb.c: the balancing methods on hand-built groups, with
 * fixed vectors.
 *
 * The vectors were computed from the documented algorithms by a separate
 * Python implementation (zlib.crc32), not by this code:
 *
 *   ip_hash   h = 89; for each of the first 3 octets (16 for IPv6):
 *             h = (h * 113 + octet) % 6271; peer by h % total weight
 *   hash      h += (crc32(str(n) if n else "" + key) >> 16) & 0x7fff,
 *             n = 0, 1, 2... per pick; peer by h % total weight
 *   ketama    point_0 = crc32(host "\0" port le32(0)),
 *             point_k = crc32(host "\0" port le32(point_k-1)); 160 per
 *             weight unit; sorted, duplicates dropped; crc32(key) finds
 *             the first point >= it
 *
 * and the Python sequences also match what Debian's nginx 1.22 picks
 * (tests/integration/test_lb_nginx_compat.py runs both side by side).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <time.h>
#include <cmocka.h>
#include <zlib.h>

#include "upstream/gh_upstream.h"
#include "upstream/gh_upstream_int.h"

static gh_arena_t             *ta;
static gh_upstream_srv_conf_t *groups[64];
static size_t                  ngroups;


static int
setup(void **state)
{
    gh_time_init();
    ta = gh_arena_create(4096, 0);
    return ta ? 0 : -1;
}


static int
teardown(void **state)
{
    /* the method tables built at run time are the process's */
    for (size_t i = 0; i < ngroups; i++) {
        gh_upstream_lb_release(groups[i]);
    }
    gh_arena_destroy(ta);
    return 0;
}


static gh_upstream_srv_conf_t *
mk_group(gh_uint_t method)
{
    gh_upstream_srv_conf_t *us = gh_calloc(ta, sizeof(*us));

    assert_non_null(us);
    gh_str_set(&us->host, "test");
    us->method = method;
    us->flags = GH_UPSTREAM_F_ALL;
    assert_true(ngroups < gh_nelems(groups));
    groups[ngroups++] = us;
    return us;
}


/* a peer named name whose `server` text is server (NULL: the name) */
static gh_upstream_peer_t *
mk_peer(gh_upstream_srv_conf_t *us, const char *name, const char *server,
    gh_int_t weight, bool backup)
{
    gh_upstream_peer_t  *peer = gh_calloc(ta, sizeof(*peer));
    gh_upstream_peer_t **tail = backup ? &us->backup : &us->peers;

    assert_non_null(peer);
    snprintf(peer->name, sizeof(peer->name), "%s", name);
    peer->server.data = (uint8_t *) (server ? server : peer->name);
    peer->server.len = strlen((const char *) peer->server.data);
    peer->weight = weight;
    peer->max_fails = 1;
    peer->fail_timeout = 10000;
    peer->backup = backup;
    gh_upstream_st(peer)->effective_weight = weight;
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


/* the first letter of the peer picked for one successful request */
static char
pick(gh_upstream_srv_conf_t *us)
{
    gh_upstream_peer_state_t ps;
    char                     c;

    assert_int_equal(gh_upstream_peer_init(&ps, us, NULL, 0), GH_OK);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    c = ps.peer->name[0];
    gh_upstream_peer_free(&ps, false);
    return c;
}


/* every peer of one request in turn, each attempt failing: the retry
 * order as letters */
static void
retry_order(gh_upstream_peer_state_t *ps, char *out, size_t n)
{
    size_t i = 0;

    while (i + 1 < n && gh_upstream_peer_get(ps) == GH_OK) {
        out[i++] = ps->peer->name[0];
        gh_upstream_peer_free(ps, true);
    }
    out[i] = '\0';
}


/* --- the building blocks ---------------------------------------------- */

static void
test_ip_hash_vectors(void **state)
{
    static const uint8_t v4a[] = { 192, 168, 1 };
    static const uint8_t v4b[] = { 10, 0, 0 };
    uint8_t              v6[16] = { 0 };

    assert_int_equal(gh_upstream_ip_hash_step(89, v4a, 3), 154);
    /* a rehash continues from the last value */
    assert_int_equal(gh_upstream_ip_hash_step(154, v4a, 3), 5654);
    assert_int_equal(gh_upstream_ip_hash_step(89, v4b, 3), 2565);
    v6[15] = 1;                                 /* ::1 */
    assert_int_equal(gh_upstream_ip_hash_step(89, v6, 16), 5945);
}


static void
test_hash_vectors(void **state)
{
    gh_str_t a = gh_string("user42"), b = gh_string("/index.html");

    assert_int_equal(gh_upstream_hash_value(&a, 0), 31791);
    assert_int_equal(gh_upstream_hash_value(&a, 1), 24213);
    assert_int_equal(gh_upstream_hash_value(&a, 2), 28541);
    assert_int_equal(gh_upstream_hash_value(&b, 0), 27170);
    assert_int_equal(gh_upstream_hash_value(&b, 1), 30204);
    assert_int_equal(gh_upstream_hash_value(&b, 2), 610);
}


static void
test_ketama_vectors(void **state)
{
    gh_str_t s = gh_string("127.0.0.1:8080");
    gh_str_t u = gh_string("unix:/tmp/a.sock");
    gh_str_t n = gh_string("backend1");

    assert_int_equal(gh_upstream_chash_point(&s, 0), 0x6dca9547);
    assert_int_equal(gh_upstream_chash_point(&s, 0x6dca9547), 0x92c7adf9);
    /* "unix:" paths are all host; no ":digits" means no port */
    assert_int_equal(gh_upstream_chash_point(&u, 0), 0xca7eb1df);
    assert_int_equal(gh_upstream_chash_point(&n, 0), 0x5157ccd2);
}


static void
test_ketama_ring(void **state)
{
    gh_upstream_srv_conf_t *us = mk_group(GH_UPSTREAM_LB_CHASH);
    uint32_t                h, prev = 0;
    gh_str_t                server;

    mk_peer(us, "a", "10.0.0.1:80", 1, false);
    mk_peer(us, "b", "10.0.0.2:80", 2, false);
    /* 160 points per weight unit, no collisions among these */
    assert_int_equal(gh_upstream_chash_points(us), 480);
    gh_upstream_chash_point_at(us, 0, &h, &server);
    assert_int_equal(h, 0x393daa);
    assert_true(gh_str_eq_c(&server, "10.0.0.1:80"));
    gh_upstream_chash_point_at(us, 1, &h, &server);
    assert_int_equal(h, 0xd989c3);
    gh_upstream_chash_point_at(us, 2, &h, &server);
    assert_int_equal(h, 0xf1faa2);
    for (gh_uint_t i = 0; i < 480; i++) {
        gh_upstream_chash_point_at(us, i, &h, &server);
        assert_true(i == 0 || h > prev);
        prev = h;
    }
    /* a changed list is picked up */
    mk_peer(us, "c", "10.0.0.3:80", 1, false);
    gh_upstream_peers_changed(us);
    assert_int_equal(gh_upstream_chash_points(us), 640);
}


/* --- orders ----------------------------------------------------------- */

static void
test_smooth_rr_vector(void **state)
{
    gh_upstream_srv_conf_t *us = mk_group(GH_UPSTREAM_LB_RR);
    char                    seq[19];

    mk_peer(us, "a", NULL, 5, false);
    mk_peer(us, "b", NULL, 1, false);
    mk_peer(us, "c", NULL, 3, false);
    gh_current_msec = 1000000;
    for (int i = 0; i < 18; i++) {
        seq[i] = pick(us);
    }
    seq[18] = '\0';
    assert_string_equal(seq, "acabacacaacabacaca");
}


static void
test_hash_order(void **state)
{
    static const struct {
        const char *key;
        const char *order;
    } v[] = {
        { "user4", "badc" },        /* the fourth after 20 misses: rr */
        { "user1", "cdba" },
        { "/index.html", "cbad" },
    };
    gh_upstream_srv_conf_t  *us = mk_group(GH_UPSTREAM_LB_HASH);
    gh_upstream_peer_state_t ps;
    char                     got[8];

    mk_peer(us, "a", NULL, 1, false)->max_fails = 0;
    mk_peer(us, "b", NULL, 2, false)->max_fails = 0;
    mk_peer(us, "c", NULL, 1, false)->max_fails = 0;
    mk_peer(us, "d", NULL, 3, false)->max_fails = 0;
    for (size_t i = 0; i < gh_nelems(v); i++) {
        gh_upstream_peer_init(&ps, us, NULL, 0);
        ps.key.data = (uint8_t *) v[i].key;
        ps.key.len = strlen(v[i].key);
        retry_order(&ps, got, sizeof(got));
        assert_string_equal(got, v[i].order);
    }
    /* an empty key: round robin, as nginx */
    gh_upstream_peer_init(&ps, us, NULL, 0);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    gh_upstream_peer_free(&ps, false);
}


static void
test_ip_hash_order(void **state)
{
    static const struct {
        uint8_t     addr[3];
        const char *order;
    } v[] = {
        { { 10, 0, 0 }, "abc" },
        { { 192, 168, 1 }, "cba" },
        { { 172, 16, 5 }, "bca" },
    };
    gh_upstream_srv_conf_t  *us = mk_group(GH_UPSTREAM_LB_IP_HASH);
    gh_upstream_peer_state_t ps;
    char                     got[8];

    mk_peer(us, "a", NULL, 1, false)->max_fails = 0;
    mk_peer(us, "b", NULL, 3, false)->max_fails = 0;
    mk_peer(us, "c", NULL, 1, false)->max_fails = 0;
    for (size_t i = 0; i < gh_nelems(v); i++) {
        gh_upstream_peer_init(&ps, us, NULL, 0);
        ps.addr = v[i].addr;
        ps.addrlen = 3;
        retry_order(&ps, got, sizeof(got));
        assert_string_equal(got, v[i].order);
    }
    /* a `down` server keeps its place in the weights: clients of the
     * others stay where they were */
    us->peers->next->down = 1;
    gh_upstream_peer_init(&ps, us, NULL, 0);
    ps.addr = v[0].addr;
    ps.addrlen = 3;
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    assert_int_equal(ps.peer->name[0], 'a');
    gh_upstream_peer_free(&ps, false);
}


static void
test_chash_order(void **state)
{
    static const struct {
        const char *key;
        const char *order;
    } v[] = {
        { "alpha", "cba" }, { "beta", "bac" }, { "user42", "bca" },
        { "k2", "cba" },
    };
    gh_upstream_srv_conf_t  *us = mk_group(GH_UPSTREAM_LB_CHASH);
    gh_upstream_peer_state_t ps;
    gh_uint_t                n, i;
    uint32_t                 key, h;
    gh_str_t                 server;
    char                     got[8];

    mk_peer(us, "a", "10.0.0.1:80", 1, false)->max_fails = 0;
    mk_peer(us, "b", "10.0.0.2:80", 2, false)->max_fails = 0;
    mk_peer(us, "c", "10.0.0.3:80", 1, false)->max_fails = 0;
    n = gh_upstream_chash_points(us);
    assert_int_equal(n, 640);
    for (size_t k = 0; k < gh_nelems(v); k++) {
        gh_upstream_peer_init(&ps, us, NULL, 0);
        ps.key.data = (uint8_t *) v[k].key;
        ps.key.len = strlen(v[k].key);
        /* what peer_init does with a request: the first point >= key */
        key = (uint32_t) crc32(0, ps.key.data, (uInt) ps.key.len);
        for (i = 0; i < n; i++) {
            gh_upstream_chash_point_at(us, i, &h, &server);
            if (h >= key) {
                break;
            }
        }
        ps.hash = i;
        retry_order(&ps, got, sizeof(got));
        assert_string_equal(got, v[k].order);
    }
}


/* --- load-aware methods ------------------------------------------------- */

static void
test_least_conn(void **state)
{
    gh_upstream_srv_conf_t  *us = mk_group(GH_UPSTREAM_LB_LEAST_CONN);
    gh_upstream_peer_state_t held[3];
    gh_upstream_peer_t      *a, *b;

    a = mk_peer(us, "a", NULL, 1, false);
    b = mk_peer(us, "b", NULL, 2, false);
    gh_current_msec = 2000000;

    /* nothing in flight: ties, broken by round robin on the weights */
    char seq[7];
    for (int i = 0; i < 6; i++) {
        seq[i] = pick(us);
    }
    seq[6] = '\0';
    assert_string_equal(seq, "babbab");

    /* a holds one, b holds one: b (1/2) is less loaded than a (1/1) */
    gh_upstream_st(a)->conns = 1;
    gh_upstream_st(b)->conns = 1;
    assert_int_equal(pick(us), 'b');
    /* b holds three: a (1/1) beats b (3/2) */
    gh_upstream_st(b)->conns = 3;
    assert_int_equal(pick(us), 'a');

    /* requests kept open pile up on the least loaded */
    gh_upstream_st(a)->conns = 0;
    gh_upstream_st(b)->conns = 0;
    for (int i = 0; i < 3; i++) {
        gh_upstream_peer_init(&held[i], us, NULL, 0);
        assert_int_equal(gh_upstream_peer_get(&held[i]), GH_OK);
    }
    /* b twice (weight 2), a once */
    assert_int_equal(gh_upstream_st(a)->conns, 1);
    assert_int_equal(gh_upstream_st(b)->conns, 2);
    for (int i = 0; i < 3; i++) {
        gh_upstream_peer_free(&held[i], false);
        /* a second free is a no-op */
        gh_upstream_peer_free(&held[i], false);
    }
    assert_int_equal(gh_upstream_st(a)->conns, 0);
    assert_int_equal(gh_upstream_st(b)->conns, 0);
}


static void
test_least_conn_backup(void **state)
{
    gh_upstream_srv_conf_t  *us = mk_group(GH_UPSTREAM_LB_LEAST_CONN);
    gh_upstream_peer_t      *a, *c, *d;

    a = mk_peer(us, "a", NULL, 1, false);
    c = mk_peer(us, "c", NULL, 1, true);
    d = mk_peer(us, "d", NULL, 1, true);
    a->down = 1;
    gh_upstream_st(c)->conns = 4;
    /* the backups are balanced by least_conn too */
    assert_int_equal(pick(us), 'd');
    gh_upstream_st(d)->conns = 5;
    assert_int_equal(pick(us), 'c');
    (void) d;
}


static void
test_least_time(void **state)
{
    gh_upstream_srv_conf_t  *us = mk_group(GH_UPSTREAM_LB_LEAST_TIME);
    gh_upstream_peer_t      *a, *b;

    a = mk_peer(us, "a", NULL, 1, false);
    b = mk_peer(us, "b", NULL, 1, false);
    /* never measured: (0 + 1) * (conns + 1): both count as fast */
    gh_upstream_st(a)->header_us = 5000;
    gh_upstream_st(b)->header_us = 500;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pick(us), 'b');
    }
    /* b busier: 501 * 11 > 5001 * 1 */
    gh_upstream_st(b)->conns = 10;
    assert_int_equal(pick(us), 'a');
    /* last_byte looks at the other average */
    gh_upstream_st(b)->conns = 0;
    us->least_time_last_byte = true;
    gh_upstream_st(a)->response_us = 100;
    gh_upstream_st(b)->response_us = 9000;
    assert_int_equal(pick(us), 'a');
}


static void
test_random(void **state)
{
    gh_upstream_srv_conf_t *us = mk_group(GH_UPSTREAM_LB_RANDOM);
    int                     n[3] = { 0, 0, 0 };

    mk_peer(us, "a", NULL, 5, false);
    mk_peer(us, "b", NULL, 3, false);
    mk_peer(us, "c", NULL, 2, false);
    gh_upstream_random_seed(12345);
    for (int i = 0; i < 10000; i++) {
        n[pick(us) - 'a']++;
    }
    /* 5000/3000/2000 expected; 3% is more than 6 standard deviations */
    assert_in_range(n[0], 4700, 5300);
    assert_in_range(n[1], 2700, 3300);
    assert_in_range(n[2], 1700, 2300);
}


static void
test_random_two(void **state)
{
    gh_upstream_srv_conf_t *us = mk_group(GH_UPSTREAM_LB_RANDOM2);
    gh_upstream_peer_t     *a, *b;

    a = mk_peer(us, "a", NULL, 1, false);
    b = mk_peer(us, "b", NULL, 1, false);
    gh_upstream_random_seed(99);
    /* two servers: both are drawn every time, the less loaded wins */
    gh_upstream_st(a)->conns = 3;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(pick(us), 'b');
    }
    gh_upstream_st(a)->conns = 0;
    gh_upstream_st(b)->conns = 2;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(pick(us), 'a');
    }
}


static void
test_slow_start(void **state)
{
    gh_upstream_srv_conf_t  *us = mk_group(GH_UPSTREAM_LB_RR);
    gh_upstream_peer_state_t ps;
    gh_upstream_peer_t      *a;
    int                      got;

    a = mk_peer(us, "a", NULL, 1, false);
    mk_peer(us, "b", NULL, 1, false);
    a->slow_start = 10000;
    gh_current_msec = 5000000;

    /* a fails and is out for fail_timeout */
    gh_upstream_peer_init(&ps, us, NULL, 0);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    assert_ptr_equal(ps.peer, a);
    gh_upstream_peer_free(&ps, true);
    assert_int_equal(gh_upstream_st(a)->unavail, 1);
    assert_int_equal(pick(us), 'b');

    /* back after the window: its share grows from nothing over 10 s */
    gh_current_msec += 10001;
    got = 0;
    for (int i = 0; i < 100; i++) {
        got += pick(us) == 'a';
    }
    assert_true(got <= 2);
    assert_int_not_equal(gh_upstream_st(a)->recovered, 0);
    gh_current_msec += 5000;                   /* half way: about 1/3 */
    got = 0;
    for (int i = 0; i < 300; i++) {
        got += pick(us) == 'a';
    }
    assert_in_range(got, 80, 120);
    gh_current_msec += 5000;                   /* done: half */
    got = 0;
    for (int i = 0; i < 100; i++) {
        got += pick(us) == 'a';
    }
    assert_in_range(got, 49, 51);
    assert_int_equal(gh_upstream_st(a)->recovered, 0);
}


static void
test_max_conns(void **state)
{
    gh_upstream_srv_conf_t  *us = mk_group(GH_UPSTREAM_LB_IP_HASH);
    gh_upstream_peer_state_t p1, p2, p3;

    mk_peer(us, "a", NULL, 1, false)->max_conns = 1;
    mk_peer(us, "b", NULL, 1, false)->max_conns = 1;
    gh_upstream_peer_init(&p1, us, NULL, 0);
    gh_upstream_peer_init(&p2, us, NULL, 0);
    gh_upstream_peer_init(&p3, us, NULL, 0);
    assert_int_equal(gh_upstream_peer_get(&p1), GH_OK);
    /* the same client: its server is busy, the next one takes it */
    assert_int_equal(gh_upstream_peer_get(&p2), GH_OK);
    assert_ptr_not_equal(p1.peer, p2.peer);
    /* all busy: "no live upstreams" */
    assert_int_equal(gh_upstream_peer_get(&p3), GH_DECLINED);
    gh_upstream_peer_free(&p1, false);
    assert_int_equal(gh_upstream_peer_get(&p3), GH_OK);
    gh_upstream_peer_free(&p2, false);
    gh_upstream_peer_free(&p3, false);
}


/* response times come from the loop's cached clock: no clock read of
 * their own (a syscall or vDSO call per request), one per iteration */
static void
test_now_us_is_cached(void **state)
{
    struct timespec ts = { 0, 3 * 1000 * 1000 };
    uint64_t        a, b;

    gh_time_update();
    a = gh_upstream_now_us();
    assert_int_equal(a, gh_current_usec);
    nanosleep(&ts, NULL);
    assert_int_equal(gh_upstream_now_us(), a);
    gh_time_update();
    b = gh_upstream_now_us();
    assert_true(b >= a + 3000);
}

static void
test_statistics(void **state)
{
    gh_upstream_srv_conf_t  *us = mk_group(GH_UPSTREAM_LB_RR);
    gh_upstream_peer_state_t ps;
    gh_upstream_peer_st_t   *st;

    mk_peer(us, "a", NULL, 1, false);
    mk_peer(us, "b", NULL, 1, false)->down = 1;
    gh_upstream_peer_init(&ps, us, NULL, 0);
    /* `down` servers are not counted in the tries */
    assert_int_equal(ps.tries, 1);
    assert_int_equal(gh_upstream_peer_get(&ps), GH_OK);
    st = gh_upstream_st(ps.peer);
    gh_upstream_peer_response(&ps, 404);
    gh_upstream_peer_response(&ps, 200);       /* once per attempt */
    gh_upstream_peer_free(&ps, false);
    assert_int_equal(st->requests, 1);
    assert_int_equal(st->responses[3], 1);
    assert_true(st->header_us > 0);
    assert_true(st->response_us >= st->header_us);
    assert_int_equal(st->conns, 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ip_hash_vectors),
        cmocka_unit_test(test_now_us_is_cached),
        cmocka_unit_test(test_hash_vectors),
        cmocka_unit_test(test_ketama_vectors),
        cmocka_unit_test(test_ketama_ring),
        cmocka_unit_test(test_smooth_rr_vector),
        cmocka_unit_test(test_hash_order),
        cmocka_unit_test(test_ip_hash_order),
        cmocka_unit_test(test_chash_order),
        cmocka_unit_test(test_least_conn),
        cmocka_unit_test(test_least_conn_backup),
        cmocka_unit_test(test_least_time),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_random_two),
        cmocka_unit_test(test_slow_start),
        cmocka_unit_test(test_max_conns),
        cmocka_unit_test(test_statistics),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
