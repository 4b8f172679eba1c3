/*
 * gh_upstream_balance.c: choosing a peer.
 *
 *   peer_init: tries, the method's key (hash KEY, client address),
 *              the sticky cookie's peer
 *   peer_get:  [sticky peer, first try] -> method on the primaries
 *              --none--> backups (round robin, or least_conn/least_time
 *              for those methods) --none--> "no live upstreams"
 *   peer_response / peer_headers_out: statistics, latency, Set-Cookie
 *   peer_free: failure accounting, latency, conns--
 *
 * The methods follow nginx's documented algorithms so that a key, a
 * client or a request sequence lands on the server nginx would pick for
 * the same server list:
 *
 *   round robin  smooth weighted: each usable peer's current weight grows
 *                by its effective weight, the largest wins and loses the
 *                sum.  Weights 5,1,1 give a a b a c a a.
 *   least_conn   fewest active requests relative to weight
 *                (conns_a * w_b < conns_b * w_a); ties by round robin
 *   ip_hash      hash = (hash * 113 + octet) % 6271 from 89 over the first
 *                three octets of IPv4 (all 16 of IPv6), then hash % total
 *                weight walks the list; up to 20 rehashes past unusable
 *                peers, then round robin
 *   hash KEY     (crc32([n] KEY) >> 16) & 0x7fff added up, % total weight;
 *                n the rehash count (left out the first time)
 *   consistent   ketama: 160 points per weight unit and address,
 *                crc32(HOST "\0" PORT prev_point) of the `server` text;
 *                crc32(KEY) finds the first point >= it; the next points
 *                are tried, 20 at most, then round robin
 *   random       weighted; `two`: the less loaded of two distinct picks
 *   least_time   (EWMA latency + 1) * (conns + 1) / weight, smallest wins;
 *                ties by round robin (not in nginx open source)
 *
 * Weights in current_weight are in units of 1/GH_UPSTREAM_WSCALE so that
 * slow_start can give a returning peer a fraction of its weight; scaling
 * every weight alike leaves the round-robin order as it was.
 *
 * With a zone the peers' state is shared: selection and accounting run
 * under the zone's lock.  The method tables (ring, ranges) belong to the
 * worker and are rebuilt when `resolve` changes a peer list.
 */
#include "gh_upstream_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define GH_UPSTREAM_HASH_TRIES    20     /* nginx: then round robin */
#define GH_UPSTREAM_CHASH_POINTS  160    /* per weight unit */
#define GH_UPSTREAM_EWMA_NUM      3      /* new = (7 old + 3 sample) / 10 */
#define GH_UPSTREAM_EWMA_DEN      10

typedef struct {
    uint32_t                 hash;
    const gh_str_t          *server;
} gh_upstream_chash_pt_t;

typedef struct {
    gh_uint_t                range;         /* cumulative weight, end */
    gh_upstream_peer_t      *peer;
} gh_upstream_range_t;

/* a group's method tables, for one generation of its peer list */
typedef struct {
    bool                     heap;          /* malloc'd (run time) */
    gh_uint_t                total_weight;  /* primaries, down ones too */
    gh_uint_t                npoints;
    gh_upstream_chash_pt_t  *points;
    gh_uint_t                nranges;
    gh_upstream_range_t     *ranges;
} gh_upstream_lb_t;

static uint64_t gh_upstream_rng;


/* --- small helpers -------------------------------------------------------- */

/* The loop's cached clock (read once after each epoll_wait), not a clock
 * read of its own: three per request were ~1% of a proxied request's CPU
 * on the bench machine.  A time is thus that of the loop iteration that
 * saw the event, as nginx's $upstream_response_time; the work done
 * earlier in the same batch counts in, and a response parsed in the
 * iteration that chose the peer takes 0 (stored as 1 us). */
uint64_t
gh_upstream_now_us(void)
{
    return gh_current_usec;
}


void
gh_upstream_random_seed(uint64_t seed)
{
    gh_upstream_rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}


/* xorshift64*: each worker seeds its own on first use, so that two
 * workers do not draw the same sequence (the state is forked) */
static uint64_t
gh_upstream_random_next(void)
{
    uint64_t x;

    if (gh_upstream_rng == 0) {
        gh_upstream_random_seed(((uint64_t) getpid() << 32)
            ^ gh_upstream_now_us());
    }
    x = gh_upstream_rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    gh_upstream_rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}


static bool
gh_upstream_tried(const gh_upstream_peer_state_t *ps, gh_uint_t i)
{
    return (ps->tried[i / 64] >> (i % 64)) & 1;
}


/* a group of one server and no backup: nginx never takes it out of
 * service (where else would requests go?) and does not retry it */
static bool
gh_upstream_single(const gh_upstream_srv_conf_t *us)
{
    return us->npeers == 1 && us->nbackup == 0;
}


void
gh_upstream_st_reset(const gh_upstream_peer_t *peer,
    gh_upstream_peer_st_t *st)
{
    gh_uint_t conns = st->conns;

    memset(st, 0, sizeof(*st));
    st->effective_weight = peer->weight;
    st->conns = conns;
}


bool
gh_upstream_peer_usable(gh_upstream_peer_t *peer, gh_upstream_peer_st_t *st,
    gh_msec_t now)
{
    if (peer->down || st->hc_down) {
        return false;
    }
    /* in its fail window: max_fails failures, the last fail_timeout ago
     * or less; max_fails=0 turns the accounting off */
    if (peer->max_fails && st->fails >= (gh_uint_t) peer->max_fails
        && now - st->checked <= peer->fail_timeout)
    {
        return false;
    }
    if (st->unavailable) {
        /* the window is over: back in service, ramping with slow_start */
        st->unavailable = 0;
        if (peer->slow_start) {
            st->recovered = now;
        }
    }
    return !(peer->max_conns && st->conns >= peer->max_conns);
}


/* the weight w (of peer) as it counts now, in 1/GH_UPSTREAM_WSCALE
 * units: all of it, or during slow start the part of it the time since
 * the peer's return gives (at least one unit) */
static gh_int_t
gh_upstream_ramp(gh_upstream_peer_t *peer, gh_upstream_peer_st_t *st,
    gh_int_t w, gh_msec_t now)
{
    gh_int_t  full = w * GH_UPSTREAM_WSCALE;
    gh_msec_t t;
    double    part;

    if (peer->slow_start == 0 || st->recovered == 0) {
        return full;
    }
    t = now - st->recovered;
    if (t < 0 || t >= peer->slow_start) {
        st->recovered = 0;
        return full;
    }
    part = (double) full * (double) t / (double) peer->slow_start;
    return part < 1 ? 1 : (gh_int_t) part;
}


/* the bookkeeping of a pick, whatever the method */
static gh_upstream_peer_t *
gh_upstream_picked(gh_upstream_peer_state_t *ps, gh_upstream_peer_t *peer,
    gh_uint_t index, gh_msec_t now)
{
    gh_upstream_peer_st_t *st = gh_upstream_st(peer);

    ps->tried[index / 64] |= (uint64_t) 1 << (index % 64);
    st->conns++;
    st->requests++;
    st->selected = gh_current_wall_msec;
    /* a pick after the window opens a new one; a success on it then
     * clears the failures (see gh_upstream_peer_free) */
    if (now - st->checked > peer->fail_timeout) {
        st->checked = now;
    }
    return peer;
}


/* --- the method tables ---------------------------------------------------- */

static int
gh_upstream_chash_cmp(const void *a, const void *b)
{
    uint32_t x = ((const gh_upstream_chash_pt_t *) a)->hash;
    uint32_t y = ((const gh_upstream_chash_pt_t *) b)->hash;

    return x < y ? -1 : x > y;
}


/* split a `server` value as ketama does: "unix:" paths are all host;
 * otherwise trailing digits after the last ':' are the port */
static void
gh_upstream_chash_split(const gh_str_t *server, gh_str_t *host,
    gh_str_t *port)
{
    size_t  j;
    uint8_t c;

    port->data = NULL;
    port->len = 0;
    *host = *server;
    if (server->len >= 5
        && gh_strncasecmp(server->data, (const uint8_t *) "unix:", 5) == 0)
    {
        host->data = server->data + 5;
        host->len = server->len - 5;
        return;
    }
    for (j = 0; j < server->len; j++) {
        c = server->data[server->len - j - 1];
        if (c == ':') {
            host->len = server->len - j - 1;
            port->data = server->data + server->len - j;
            port->len = j;
            return;
        }
        if (c < '0' || c > '9') {
            return;
        }
    }
}


uint32_t
gh_upstream_chash_point(const gh_str_t *server, uint32_t prev)
{
    gh_str_t host, port;
    uint8_t  le[4];
    uLong    crc;

    gh_upstream_chash_split(server, &host, &port);
    crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, host.data, (uInt) host.len);
    crc = crc32(crc, (const Bytef *) "", 1);
    if (port.len) {
        crc = crc32(crc, port.data, (uInt) port.len);
    }
    /* the previous point, as its little-endian bytes */
    le[0] = (uint8_t) prev;
    le[1] = (uint8_t) (prev >> 8);
    le[2] = (uint8_t) (prev >> 16);
    le[3] = (uint8_t) (prev >> 24);
    return (uint32_t) crc32(crc, le, 4);
}


/* the ring: every primary peer's points, sorted, duplicates dropped */
static gh_int_t
gh_upstream_build_ring(gh_upstream_srv_conf_t *us, gh_upstream_lb_t *lb,
    gh_arena_t *a)
{
    gh_upstream_peer_t *peer;
    gh_uint_t           n = 0, i, j, k;
    uint32_t            h;

    for (peer = us->peers; peer; peer = peer->next) {
        n += (gh_uint_t) peer->weight * GH_UPSTREAM_CHASH_POINTS;
    }
    if (n == 0) {
        return GH_OK;
    }
    lb->points = a ? gh_alloc(a, n * sizeof(gh_upstream_chash_pt_t))
                   : gh_xmalloc(n * sizeof(gh_upstream_chash_pt_t));
    if (lb->points == NULL) {
        return GH_ERROR;
    }
    for (peer = us->peers; peer; peer = peer->next) {
        h = 0;
        for (k = 0; k < (gh_uint_t) peer->weight * GH_UPSTREAM_CHASH_POINTS;
             k++)
        {
            h = gh_upstream_chash_point(&peer->server, h);
            lb->points[lb->npoints].hash = h;
            lb->points[lb->npoints].server = &peer->server;
            lb->npoints++;
        }
    }
    qsort(lb->points, lb->npoints, sizeof(gh_upstream_chash_pt_t),
        gh_upstream_chash_cmp);
    for (i = 0, j = 1; j < lb->npoints; j++) {
        if (lb->points[i].hash != lb->points[j].hash) {
            lb->points[++i] = lb->points[j];
        }
    }
    lb->npoints = i + 1;
    return GH_OK;
}


static gh_int_t
gh_upstream_build_ranges(gh_upstream_srv_conf_t *us, gh_upstream_lb_t *lb,
    gh_arena_t *a)
{
    gh_upstream_peer_t *peer;
    gh_uint_t           i = 0, sum = 0;

    if (us->npeers == 0) {
        return GH_OK;
    }
    lb->ranges = a ? gh_alloc(a, us->npeers * sizeof(gh_upstream_range_t))
                   : gh_xmalloc(us->npeers * sizeof(gh_upstream_range_t));
    if (lb->ranges == NULL) {
        return GH_ERROR;
    }
    /* range i ends where peer i's share of the total weight ends */
    for (peer = us->peers; peer && i < us->npeers; peer = peer->next, i++) {
        sum += (gh_uint_t) peer->weight;
        lb->ranges[i].peer = peer;
        lb->ranges[i].range = sum;
    }
    lb->nranges = i;
    return GH_OK;
}


/* (re)build us's tables; a NULL arena: at run time, in process memory */
static gh_upstream_lb_t *
gh_upstream_lb_build(gh_upstream_srv_conf_t *us, gh_arena_t *a)
{
    gh_upstream_lb_t   *lb;
    gh_upstream_peer_t *peer;

    /* only an arena can fail: gh_xmalloc aborts on system OOM */
    lb = a ? gh_calloc(a, sizeof(*lb)) : gh_xcalloc(1, sizeof(*lb));
    if (lb == NULL) {
        return NULL;
    }
    lb->heap = a == NULL;
    for (peer = us->peers; peer; peer = peer->next) {
        lb->total_weight += (gh_uint_t) peer->weight;
    }
    if ((us->method == GH_UPSTREAM_LB_CHASH
         && gh_upstream_build_ring(us, lb, a) != GH_OK)
        || ((us->method == GH_UPSTREAM_LB_RANDOM
             || us->method == GH_UPSTREAM_LB_RANDOM2)
            && gh_upstream_build_ranges(us, lb, a) != GH_OK))
    {
        return NULL;
    }
    gh_upstream_lb_release(us);
    us->lb_data = lb;
    us->lb_generation = us->generation;
    return lb;
}


static gh_upstream_lb_t *
gh_upstream_lb(gh_upstream_srv_conf_t *us)
{
    if (us->lb_data == NULL || us->lb_generation != us->generation) {
        return gh_upstream_lb_build(us, NULL);
    }
    return us->lb_data;
}


void
gh_upstream_peers_changed(gh_upstream_srv_conf_t *us)
{
    us->generation++;
}


void
gh_upstream_lb_release(gh_upstream_srv_conf_t *us)
{
    gh_upstream_lb_t *lb = us->lb_data;

    if (lb && lb->heap) {
        free(lb->points);
        free(lb->ranges);
        free(lb);
    }
    us->lb_data = NULL;
}


gh_uint_t
gh_upstream_chash_points(gh_upstream_srv_conf_t *us)
{
    gh_upstream_lb_t *lb = gh_upstream_lb(us);

    return lb ? lb->npoints : 0;
}


void
gh_upstream_chash_point_at(gh_upstream_srv_conf_t *us, gh_uint_t i,
    uint32_t *hash, gh_str_t *server)
{
    gh_upstream_lb_t *lb = gh_upstream_lb(us);

    *hash = lb->points[i].hash;
    *server = *lb->points[i].server;
}


/* first point >= hash (npoints if none: the ring wraps to 0) */
static gh_uint_t
gh_upstream_chash_find(const gh_upstream_lb_t *lb, uint32_t hash)
{
    gh_uint_t i = 0, j = lb->npoints, k;

    while (i < j) {
        k = (i + j) / 2;
        if (hash > lb->points[k].hash) {
            i = k + 1;
        } else if (hash < lb->points[k].hash) {
            j = k;
        } else {
            return k;
        }
    }
    return i;
}


/* --- hashes --------------------------------------------------------------- */

gh_uint_t
gh_upstream_ip_hash_step(gh_uint_t hash, const uint8_t *addr, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        hash = (hash * 113 + addr[i]) % 6271;
    }
    return hash;
}


uint32_t
gh_upstream_hash_value(const gh_str_t *key, gh_uint_t rehash)
{
    uint8_t buf[24], *end;
    uLong   crc = crc32(0L, Z_NULL, 0);

    if (rehash > 0) {
        end = gh_utoa(buf, rehash);
        crc = crc32(crc, buf, (uInt) (end - buf));
    }
    crc = crc32(crc, key->data, (uInt) key->len);
    return (uint32_t) ((crc >> 16) & 0x7fff);
}


/* --- round robin ---------------------------------------------------------- */

static gh_upstream_peer_t *
gh_upstream_get_rr(gh_upstream_peer_state_t *ps, gh_upstream_peer_t *list,
    gh_msec_t now)
{
    gh_upstream_peer_t    *peer, *best = NULL;
    gh_upstream_peer_st_t *st, *bst = NULL;
    gh_int_t               total = 0, w;
    gh_uint_t              i, bi = 0;

    for (peer = list, i = 0; peer != NULL; peer = peer->next, i++) {
        st = gh_upstream_st(peer);
        if (gh_upstream_tried(ps, i)
            || !gh_upstream_peer_usable(peer, st, now))
        {
            continue;
        }
        w = gh_upstream_ramp(peer, st, st->effective_weight, now);
        st->current_weight += w;
        total += w;
        if (st->effective_weight < peer->weight) {
            st->effective_weight++;
        }
        if (best == NULL || st->current_weight > bst->current_weight) {
            best = peer;
            bst = st;
            bi = i;
        }
    }
    if (best == NULL) {
        return NULL;
    }
    bst->current_weight -= total;
    return gh_upstream_picked(ps, best, bi, now);
}


/* --- least_conn and least_time -------------------------------------------- */

/* a peer's load for least_time: (EWMA + 1) * (conns + 1), over weight */
static double
gh_upstream_time_score(const gh_upstream_srv_conf_t *us,
    gh_upstream_peer_st_t *st, gh_int_t w)
{
    uint64_t t = us->least_time_last_byte ? st->response_us : st->header_us;

    return ((double) t + 1) * ((double) st->conns + 1) / (double) w;
}


/* -1: a is less loaded than b, 0: as loaded, 1: more */
static int
gh_upstream_load_cmp(gh_upstream_srv_conf_t *us, gh_upstream_peer_st_t *a,
    gh_int_t wa, gh_upstream_peer_st_t *b, gh_int_t wb)
{
    double x, y;

    if (us->method == GH_UPSTREAM_LB_LEAST_TIME) {
        x = gh_upstream_time_score(us, a, wa);
        y = gh_upstream_time_score(us, b, wb);
    } else {
        /* conns_a / w_a against conns_b / w_b, without dividing */
        x = (double) a->conns * (double) wb;
        y = (double) b->conns * (double) wa;
    }
    return x < y ? -1 : x > y;
}


static gh_upstream_peer_t *
gh_upstream_get_least(gh_upstream_peer_state_t *ps, gh_upstream_peer_t *list,
    gh_msec_t now)
{
    gh_upstream_srv_conf_t *us = ps->us;
    gh_upstream_peer_t     *peer, *best = NULL;
    gh_upstream_peer_st_t  *st, *bst = NULL;
    gh_int_t                w, bw = 0, total = 0;
    gh_uint_t               i, p = 0;
    bool                    many = false;
    int                     c;

    for (peer = list, i = 0; peer; peer = peer->next, i++) {
        st = gh_upstream_st(peer);
        if (gh_upstream_tried(ps, i)
            || !gh_upstream_peer_usable(peer, st, now))
        {
            continue;
        }
        w = gh_upstream_ramp(peer, st, peer->weight, now);
        c = best ? gh_upstream_load_cmp(us, st, w, bst, bw) : -1;
        if (c < 0) {
            best = peer;
            bst = st;
            bw = w;
            p = i;
            many = false;
        } else if (c == 0) {
            many = true;
        }
    }
    if (best == NULL) {
        return NULL;
    }
    if (many) {
        /* several as loaded: round robin among them, from the first */
        gh_upstream_peer_t    *first = best;
        gh_upstream_peer_st_t *fst = bst;
        gh_int_t               fw = bw;

        for (peer = first, i = p; peer; peer = peer->next, i++) {
            st = gh_upstream_st(peer);
            if (gh_upstream_tried(ps, i)
                || !gh_upstream_peer_usable(peer, st, now))
            {
                continue;
            }
            w = gh_upstream_ramp(peer, st, peer->weight, now);
            if (gh_upstream_load_cmp(us, st, w, fst, fw) != 0) {
                continue;
            }
            w = gh_upstream_ramp(peer, st, st->effective_weight, now);
            st->current_weight += w;
            total += w;
            if (st->effective_weight < peer->weight) {
                st->effective_weight++;
            }
            if (st->current_weight > bst->current_weight) {
                best = peer;
                bst = st;
                p = i;
            }
        }
        bst->current_weight -= total;
    }
    return gh_upstream_picked(ps, best, p, now);
}


/* --- ip_hash, hash, consistent hash --------------------------------------- */

/* the primary peer at weight position w of the list, and its index */
static gh_upstream_peer_t *
gh_upstream_weight_walk(gh_upstream_peer_t *list, gh_uint_t w,
    gh_uint_t *index)
{
    gh_upstream_peer_t *peer = list;
    gh_uint_t           p = 0;

    while (w >= (gh_uint_t) peer->weight) {
        w -= (gh_uint_t) peer->weight;
        peer = peer->next;
        p++;
    }
    *index = p;
    return peer;
}


static bool
gh_upstream_hash_candidate(gh_upstream_peer_state_t *ps,
    gh_upstream_peer_t *peer, gh_uint_t p, gh_msec_t now)
{
    return !gh_upstream_tried(ps, p)
        && gh_upstream_peer_usable(peer, gh_upstream_st(peer), now);
}


static gh_upstream_peer_t *
gh_upstream_get_ip_hash(gh_upstream_peer_state_t *ps, gh_upstream_lb_t *lb,
    gh_msec_t now)
{
    gh_upstream_peer_t *peer;
    gh_uint_t           hash = ps->hash, p;

    if (ps->hash_tries > GH_UPSTREAM_HASH_TRIES || ps->us->npeers < 2
        || lb->total_weight == 0)
    {
        return gh_upstream_get_rr(ps, ps->us->peers, now);
    }
    for ( ;; ) {
        hash = gh_upstream_ip_hash_step(hash, ps->addr, ps->addrlen);
        peer = gh_upstream_weight_walk(ps->us->peers,
            hash % lb->total_weight, &p);
        if (gh_upstream_hash_candidate(ps, peer, p, now)) {
            break;
        }
        if (++ps->hash_tries > GH_UPSTREAM_HASH_TRIES) {
            return gh_upstream_get_rr(ps, ps->us->peers, now);
        }
    }
    ps->hash = hash;
    return gh_upstream_picked(ps, peer, p, now);
}


static gh_upstream_peer_t *
gh_upstream_get_hash(gh_upstream_peer_state_t *ps, gh_upstream_lb_t *lb,
    gh_msec_t now)
{
    gh_upstream_peer_t *peer;
    gh_uint_t           p;

    if (ps->hash_tries > GH_UPSTREAM_HASH_TRIES || ps->us->npeers < 2
        || ps->key.len == 0 || lb->total_weight == 0)
    {
        return gh_upstream_get_rr(ps, ps->us->peers, now);
    }
    for ( ;; ) {
        /* 32-bit as nginx's: the sum of at most 21 15-bit values */
        ps->hash = (uint32_t) (ps->hash
            + gh_upstream_hash_value(&ps->key, ps->rehash));
        ps->rehash++;
        peer = gh_upstream_weight_walk(ps->us->peers,
            ps->hash % lb->total_weight, &p);
        if (gh_upstream_hash_candidate(ps, peer, p, now)) {
            break;
        }
        if (++ps->hash_tries > GH_UPSTREAM_HASH_TRIES) {
            return gh_upstream_get_rr(ps, ps->us->peers, now);
        }
    }
    return gh_upstream_picked(ps, peer, p, now);
}


static gh_upstream_peer_t *
gh_upstream_get_chash(gh_upstream_peer_state_t *ps, gh_upstream_lb_t *lb,
    gh_msec_t now)
{
    gh_upstream_peer_t    *peer, *best;
    gh_upstream_peer_st_t *st, *bst;
    const gh_str_t        *server;
    gh_int_t               total, w;
    gh_uint_t              i, bi;

    if (ps->hash_tries > GH_UPSTREAM_HASH_TRIES || ps->us->npeers < 2
        || ps->key.len == 0 || lb->npoints == 0)
    {
        return gh_upstream_get_rr(ps, ps->us->peers, now);
    }
    for ( ;; ) {
        server = lb->points[ps->hash % lb->npoints].server;
        best = NULL;
        bst = NULL;
        bi = 0;
        total = 0;
        /* every address of that server: round robin among them */
        for (peer = ps->us->peers, i = 0; peer; peer = peer->next, i++) {
            st = gh_upstream_st(peer);
            if (gh_upstream_tried(ps, i)
                || !gh_upstream_peer_usable(peer, st, now)
                || !gh_str_eq(&peer->server, server))
            {
                continue;
            }
            w = st->effective_weight * GH_UPSTREAM_WSCALE;
            st->current_weight += w;
            total += w;
            if (st->effective_weight < peer->weight) {
                st->effective_weight++;
            }
            if (best == NULL || st->current_weight > bst->current_weight) {
                best = peer;
                bst = st;
                bi = i;
            }
        }
        if (best) {
            bst->current_weight -= total;
            return gh_upstream_picked(ps, best, bi, now);
        }
        ps->hash++;
        if (++ps->hash_tries > GH_UPSTREAM_HASH_TRIES) {
            return gh_upstream_get_rr(ps, ps->us->peers, now);
        }
    }
}


/* --- random --------------------------------------------------------------- */

static gh_uint_t
gh_upstream_random_index(const gh_upstream_lb_t *lb)
{
    gh_uint_t x = (gh_uint_t) (gh_upstream_random_next() % lb->total_weight);
    gh_uint_t i = 0, j = lb->nranges, k;

    /* the first range whose end is past x */
    while (i < j) {
        k = (i + j) / 2;
        if (x < lb->ranges[k].range) {
            j = k;
        } else {
            i = k + 1;
        }
    }
    return i;
}


static gh_upstream_peer_t *
gh_upstream_get_random(gh_upstream_peer_state_t *ps, gh_upstream_lb_t *lb,
    gh_msec_t now)
{
    gh_upstream_peer_t    *peer, *prev = NULL;
    gh_upstream_peer_st_t *st, *pst = NULL;
    gh_uint_t              i, pi = 0;
    bool                   two = ps->us->method == GH_UPSTREAM_LB_RANDOM2;

    if (ps->hash_tries > GH_UPSTREAM_HASH_TRIES || ps->us->npeers < 2
        || lb->total_weight == 0 || lb->nranges == 0)
    {
        return gh_upstream_get_rr(ps, ps->us->peers, now);
    }
    for ( ;; ) {
        i = gh_upstream_random_index(lb);
        peer = lb->ranges[i].peer;
        st = gh_upstream_st(peer);
        if (peer != prev && gh_upstream_hash_candidate(ps, peer, i, now)) {
            if (!two) {
                return gh_upstream_picked(ps, peer, i, now);
            }
            if (prev) {
                /* two distinct usable picks: the less loaded one (the
                 * second on a tie, as nginx) */
                if ((double) st->conns * (double) prev->weight
                    > (double) pst->conns * (double) peer->weight)
                {
                    return gh_upstream_picked(ps, prev, pi, now);
                }
                return gh_upstream_picked(ps, peer, i, now);
            }
            prev = peer;
            pst = st;
            pi = i;
        }
        if (++ps->hash_tries > GH_UPSTREAM_HASH_TRIES) {
            return gh_upstream_get_rr(ps, ps->us->peers, now);
        }
    }
}


/* --- per request ---------------------------------------------------------- */

static const uint8_t gh_upstream_pseudo_addr[3];

static void
gh_upstream_client_addr(gh_upstream_peer_state_t *ps, gh_http_request_t *r)
{
    const struct sockaddr *sa = (const struct sockaddr *) &r->conn->sockaddr;

    switch (sa->sa_family) {
    case AF_INET:
        ps->addr = (const uint8_t *)
            &((const struct sockaddr_in *) sa)->sin_addr.s_addr;
        ps->addrlen = 3;
        break;
    case AF_INET6:
        ps->addr = ((const struct sockaddr_in6 *) sa)->sin6_addr.s6_addr;
        ps->addrlen = 16;
        break;
    default:
        /* unix sockets: every client is the same one */
        ps->addr = gh_upstream_pseudo_addr;
        ps->addrlen = 3;
    }
}


gh_int_t
gh_upstream_peer_init(gh_upstream_peer_state_t *ps,
    gh_upstream_srv_conf_t *us, gh_http_request_t *r, gh_uint_t max_tries)
{
    gh_upstream_peer_t *peer;
    gh_upstream_lb_t   *lb;

    memset(ps, 0, sizeof(*ps));
    ps->us = us;
    ps->addr = gh_upstream_pseudo_addr;
    ps->addrlen = 3;
    ps->hash = 89;
    /* nginx counts the servers that are not `down` */
    for (peer = us->peers; peer; peer = peer->next) {
        ps->tries += !peer->down;
    }
    for (peer = us->backup; peer; peer = peer->next) {
        ps->tries += !peer->down;
    }
    if (max_tries > 0 && max_tries < ps->tries) {
        ps->tries = max_tries;
    }

    switch (us->method) {
    case GH_UPSTREAM_LB_IP_HASH:
        if (r != NULL) {
            gh_upstream_client_addr(ps, r);
        }
        break;
    case GH_UPSTREAM_LB_HASH:
    case GH_UPSTREAM_LB_CHASH:
        ps->hash = 0;
        if (r != NULL && us->hash_key != NULL
            && gh_http_complex_value(r, us->hash_key, &ps->key) != GH_OK)
        {
            return GH_ERROR;
        }
        if (us->method == GH_UPSTREAM_LB_CHASH) {
            lb = gh_upstream_lb(us);
            if (lb && lb->npoints) {
                ps->hash = gh_upstream_chash_find(lb, (uint32_t) crc32(
                    crc32(0L, Z_NULL, 0), ps->key.data, (uInt) ps->key.len));
            }
        }
        break;
    default:
        break;
    }
    if (r != NULL && us->sticky != NULL) {
        gh_upstream_sticky_request(ps, r);
    }
    return GH_OK;
}


/* the cookie's peer on the first try, if it can take the request */
static gh_upstream_peer_t *
gh_upstream_get_sticky(gh_upstream_peer_state_t *ps, gh_msec_t now)
{
    gh_upstream_peer_t *peer;
    gh_uint_t           i;

    for (peer = ps->us->peers, i = 0; peer; peer = peer->next, i++) {
        if (peer == ps->sticky) {
            break;
        }
    }
    if (peer == NULL || gh_upstream_tried(ps, i)
        || !gh_upstream_peer_usable(peer, gh_upstream_st(peer), now))
    {
        return NULL;
    }
    return gh_upstream_picked(ps, peer, i, now);
}


static gh_upstream_peer_t *
gh_upstream_get_primary(gh_upstream_peer_state_t *ps, gh_msec_t now)
{
    gh_upstream_srv_conf_t *us = ps->us;
    gh_upstream_lb_t       *lb;

    if (ps->sticky != NULL && ps->ntried == 0) {
        gh_upstream_peer_t *peer = gh_upstream_get_sticky(ps, now);

        if (peer != NULL) {
            return peer;
        }
    }
    switch (us->method) {
    case GH_UPSTREAM_LB_LEAST_CONN:
    case GH_UPSTREAM_LB_LEAST_TIME:
        return gh_upstream_get_least(ps, us->peers, now);
    case GH_UPSTREAM_LB_IP_HASH:
    case GH_UPSTREAM_LB_HASH:
    case GH_UPSTREAM_LB_CHASH:
    case GH_UPSTREAM_LB_RANDOM:
    case GH_UPSTREAM_LB_RANDOM2:
        lb = gh_upstream_lb(us);
        if (lb == NULL) {
            break;
        }
        if (us->method == GH_UPSTREAM_LB_IP_HASH) {
            return gh_upstream_get_ip_hash(ps, lb, now);
        }
        if (us->method == GH_UPSTREAM_LB_HASH) {
            return gh_upstream_get_hash(ps, lb, now);
        }
        if (us->method == GH_UPSTREAM_LB_CHASH) {
            return gh_upstream_get_chash(ps, lb, now);
        }
        return gh_upstream_get_random(ps, lb, now);
    default:
        break;
    }
    return gh_upstream_get_rr(ps, us->peers, now);
}


static gh_upstream_peer_t *
gh_upstream_get_single(gh_upstream_peer_state_t *ps, gh_msec_t now)
{
    gh_upstream_peer_t    *peer = ps->us->peers;
    gh_upstream_peer_st_t *st = gh_upstream_st(peer);

    /* fails are ignored, `down`, health checks and max_conns are not */
    if (peer->down || st->hc_down
        || (peer->max_conns && st->conns >= peer->max_conns))
    {
        return NULL;
    }
    return gh_upstream_picked(ps, peer, 0, now);
}


gh_int_t
gh_upstream_peer_get(gh_upstream_peer_state_t *ps)
{
    gh_upstream_srv_conf_t *us = ps->us;
    gh_upstream_peer_t     *peer = NULL;
    gh_msec_t               now = gh_current_msec;

    GH_ASSERT(!ps->held);
    ps->peer = NULL;
    if (ps->tries == 0) {
        return GH_DECLINED;
    }
    gh_upstream_lock(us);
    if (!ps->backup && us->peers != NULL) {
        peer = gh_upstream_single(us) ? gh_upstream_get_single(ps, now)
                                      : gh_upstream_get_primary(ps, now);
    }
    if (peer == NULL && !ps->backup && us->backup != NULL) {
        /* every primary is down, failed or tried: the backups take over
         * for the rest of this request, with a fresh bitmap since
         * indexes are per list */
        ps->backup = true;
        memset(ps->tried, 0, sizeof(ps->tried));
    }
    if (peer == NULL && ps->backup) {
        peer = us->method == GH_UPSTREAM_LB_LEAST_CONN
               || us->method == GH_UPSTREAM_LB_LEAST_TIME
               ? gh_upstream_get_least(ps, us->backup, now)
               : gh_upstream_get_rr(ps, us->backup, now);
    }
    gh_upstream_unlock(us);
    if (peer == NULL) {
        return GH_DECLINED;
    }
    ps->peer = peer;
    ps->held = true;
    ps->ntried++;
    ps->start_us = gh_upstream_now_us();
    ps->header_us = 0;
    ps->status = 0;
    return GH_OK;
}


/* --- outcome -------------------------------------------------------------- */

static void
gh_upstream_ewma(uint64_t *avg, uint64_t sample)
{
    *avg = *avg == 0 ? sample
        : (*avg * (GH_UPSTREAM_EWMA_DEN - GH_UPSTREAM_EWMA_NUM)
           + sample * GH_UPSTREAM_EWMA_NUM) / GH_UPSTREAM_EWMA_DEN;
}


void
gh_upstream_peer_response(gh_upstream_peer_state_t *ps, gh_uint_t status)
{
    gh_upstream_peer_st_t *st;
    uint64_t               us;

    if (!ps->held || ps->header_us != 0) {
        return;
    }
    us = gh_upstream_now_us() - ps->start_us;
    ps->header_us = us ? us : 1;
    ps->status = status;
    gh_upstream_lock(ps->us);
    st = gh_upstream_st(ps->peer);
    st->responses[status >= 100 && status < 600 ? status / 100 - 1 : 5]++;
    gh_upstream_ewma(&st->header_us, ps->header_us);
    gh_upstream_unlock(ps->us);
}


void
gh_upstream_peer_free(gh_upstream_peer_state_t *ps, bool failed)
{
    gh_upstream_peer_t    *peer = ps->peer;
    gh_upstream_peer_st_t *st;
    gh_msec_t              now = gh_current_msec;
    uint64_t               us;

    if (peer == NULL || !ps->held) {
        return;
    }
    ps->held = false;
    gh_upstream_lock(ps->us);
    st = gh_upstream_st(peer);
    if (st->conns > 0) {
        st->conns--;
    }
    /* the time to the last byte of a whole response (a websocket's
     * lifetime is not a response time) */
    if (!failed && ps->header_us && ps->status != 101) {
        us = gh_upstream_now_us() - ps->start_us;
        gh_upstream_ewma(&st->response_us, us ? us : 1);
    }
    if (failed) {
        st->failures++;
    }
    if (!ps->backup && gh_upstream_single(ps->us)) {
        gh_upstream_unlock(ps->us);
        ps->tries = 0;
        return;
    }

    if (failed) {
        st->fails++;
        st->accessed = now;
        st->checked = now;
        if (peer->max_fails) {
            st->effective_weight -= peer->weight / peer->max_fails;
            if (st->fails >= (gh_uint_t) peer->max_fails) {
                if (!st->unavailable) {
                    st->unavailable = 1;
                    st->unavail++;
                }
                if (ps->log) {
                    gh_log(GH_LOG_WARN, ps->log, 0, "upstream server "
                        "temporarily disabled, upstream: %s", peer->name);
                }
            }
        }
        if (st->effective_weight < 0) {
            st->effective_weight = 0;
        }
    } else if (st->accessed < st->checked) {
        /* success on the first pick after the fail window */
        st->fails = 0;
    }
    gh_upstream_unlock(ps->us);
    if (ps->tries > 0) {
        ps->tries--;
    }
}


/* --- configuration -------------------------------------------------------- */

const char *
gh_upstream_method_name(gh_uint_t method)
{
    static const char *const names[] = {
        "round_robin", "least_conn", "ip_hash", "hash", "hash_consistent",
        "random", "random_two", "least_time"
    };

    return method < gh_nelems(names) ? names[method] : "unknown";
}


/* the method directives share this: one method per group (a second
 * one wins, with nginx's warning) and the server parameters it allows */
static void
gh_upstream_set_method(gh_conf_t *cf, gh_upstream_srv_conf_t *us,
    gh_uint_t method, unsigned flags)
{
    if (us->method_file != NULL) {
        gh_conf_error_at(cf, GH_LOG_WARN, cf->node,
            "load balancing method redefined");
    }
    us->method = method;
    us->flags = flags;
    us->method_file = cf->node->file;
    us->method_line = cf->node->line;
}


const char *
gh_upstream_least_conn(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_upstream_set_method(cf, cf->handler_data, GH_UPSTREAM_LB_LEAST_CONN,
        GH_UPSTREAM_F_ALL);
    return NULL;
}


const char *
gh_upstream_ip_hash(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_upstream_set_method(cf, cf->handler_data, GH_UPSTREAM_LB_IP_HASH, 0);
    return NULL;
}


static const char *
gh_upstream_invalid(gh_conf_t *cf, const gh_str_t *v)
{
    gh_conf_error(cf, "invalid parameter \"%.*s\"", (int) v->len,
        (const char *) v->data);
    return GH_CONF_ERROR;
}


const char *
gh_upstream_hash(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_upstream_srv_conf_t *us = cf->handler_data;
    gh_str_t               *args = gh_conf_args(cf);
    const char             *err;

    if (cf->node->nargs == 3 && !gh_str_eq_c(&args[2], "consistent")) {
        return gh_upstream_invalid(cf, &args[2]);
    }
    us->hash_key = gh_calloc(cf->arena, sizeof(gh_http_complex_value_t));
    if (us->hash_key == NULL) {
        return "out of memory";
    }
    err = gh_http_compile_complex_value(cf, &args[1], us->hash_key);
    if (err != NULL) {
        return err;
    }
    gh_upstream_set_method(cf, us, cf->node->nargs == 3
        ? GH_UPSTREAM_LB_CHASH : GH_UPSTREAM_LB_HASH, 0);
    return NULL;
}


const char *
gh_upstream_random(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_str_t *args = gh_conf_args(cf);
    size_t    n = cf->node->nargs;

    if (n >= 2 && !gh_str_eq_c(&args[1], "two")) {
        return gh_upstream_invalid(cf, &args[1]);
    }
    /* least_conn is the only method `two` knows (and its default) */
    if (n == 3 && !gh_str_eq_c(&args[2], "least_conn")) {
        return gh_upstream_invalid(cf, &args[2]);
    }
    gh_upstream_set_method(cf, cf->handler_data,
        n >= 2 ? GH_UPSTREAM_LB_RANDOM2 : GH_UPSTREAM_LB_RANDOM, 0);
    return NULL;
}


const char *
gh_upstream_least_time(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_upstream_srv_conf_t *us = cf->handler_data;
    gh_str_t               *args = gh_conf_args(cf);

    if (gh_str_eq_c(&args[1], "last_byte")) {
        us->least_time_last_byte = true;
    } else if (!gh_str_eq_c(&args[1], "header")) {
        return gh_upstream_invalid(cf, &args[1]);
    }
    if (cf->node->nargs == 3) {
        /* gatehouse always weighs in the requests in flight */
        if (!gh_str_eq_c(&args[2], "inflight")) {
            return gh_upstream_invalid(cf, &args[2]);
        }
        us->least_time_inflight = true;
    }
    gh_upstream_set_method(cf, us, GH_UPSTREAM_LB_LEAST_TIME,
        GH_UPSTREAM_F_ALL);
    return NULL;
}


const char *
gh_upstream_balance_init(gh_conf_t *cf, gh_upstream_srv_conf_t *us)
{
    gh_upstream_peer_t *peer;

    for (int l = 0; l < 2; l++) {
        for (peer = l ? us->backup : us->peers; peer; peer = peer->next) {
            if (peer->st == NULL && peer->local.effective_weight == 0) {
                gh_upstream_st_reset(peer, &peer->local);
            }
            if (us->sticky != NULL) {
                gh_upstream_sticky_id(peer);
            }
        }
    }
    if (us->method != GH_UPSTREAM_LB_RR
        && gh_upstream_lb_build(us, cf->arena) == NULL)
    {
        return "out of memory";
    }
    return NULL;
}
