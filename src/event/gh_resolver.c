/*
 * gh_resolver.c: asynchronous DNS stub resolver (see gh_resolver.h).
 *
 * A name is a node in the cache; a lookup is the node's pending state:
 *
 *   node_start: one query per record type (A, AAAA), each with a socket,
 *   a random ID and a resend timer
 *     recv -> gh_dns_parse_response
 *         DECLINED (not ours, forged, garbage) -> keep waiting
 *         OK -> query done -----------------+
 *     timer -> before the deadline: resend  |
 *              (next server, new socket/ID) |
 *           -> at the deadline: TIMEDOUT ---+
 *   every query done -> node_complete: merge, cache (expires), move the
 *   waiters to the deliver list -> their handlers, one by one
 *
 * Waiters are gh_resolve_ctx_t owned by their callers; each has its own
 * timer (callers may want less than the lookup's deadline).  The deliver
 * list decouples the node from the callbacks: a handler may cancel other
 * waiters, start new lookups (which may evict nodes) or free its ctx, and
 * the loop below only ever touches the list head.
 *
 * Sockets are bare gh_conn_t (not counted in worker_connections: a
 * quitting worker must not wait for a lookup nobody needs).  A closed one
 * is freed from a posted event, after the epoll batch that may still name
 * it, the same reason gh_conn_close() parks objects.
 *
 * Wire format: RFC 1035 sections 3.1 (names), 4.1 (message), 4.1.4
 * (compression); TTLs with the top bit set count as 0 (RFC 2181 8).
 */
#include "gh_resolver.h"

#include <arpa/inet.h>
#include <sys/random.h>
#include <unistd.h>

#define GH_DNS_HDR              12
#define GH_DNS_CLASS_IN         1
#define GH_DNS_MAX_CNAME        16
#define GH_DNS_MAX_HOPS         64       /* compression pointers per name */
#define GH_DNS_RECV_MAX         4096     /* larger datagrams are cut */

#define GH_RESOLVER_RESEND_FIRST 1000
#define GH_RESOLVER_RESEND_MAX   5000
#define GH_RESOLVER_NEG_MAX      30000   /* failures: min(valid, this) */
#define GH_RESOLVER_NEG_DEFAULT  10000   /* failures without valid= */
#define GH_RESOLVER_BUCKETS      1024
#define GH_RESOLVER_READ_BATCH   64

typedef struct gh_dns_sock_s  gh_dns_sock_t;
typedef struct gh_dns_query_s gh_dns_query_t;

struct gh_dns_sock_s {
    gh_conn_t           c;           /* first: the epoll data pointer */
    gh_event_t          free_ev;     /* posted once closed */
    gh_dns_query_t     *query;       /* NULL once closed */
    gh_resolver_t      *resolver;
    gh_dns_sock_t      *prev;        /* every socket of the resolver, */
    gh_dns_sock_t      *next;        /* open or awaiting its free */
};

struct gh_dns_query_s {
    gh_resolver_t      *resolver;
    gh_resolver_node_t *node;
    gh_dns_sock_t      *sock;
    gh_event_t          timer;       /* resend, deadline */
    gh_msec_t           interval;
    size_t              server;
    uint16_t            id;
    uint16_t            qtype;
    bool                done;
    size_t              plen;
    uint8_t             packet[GH_DNS_UDP_MAX];
    gh_dns_answer_t     ans;
};

struct gh_resolver_node_s {
    gh_resolver_node_t *hnext;
    gh_resolver_node_t *lprev;       /* LRU list, most recent first */
    gh_resolver_node_t *lnext;
    uint32_t            hash;
    int                 state;
    bool                pending;
    bool                answered;    /* state/addrs/expires are set */
    gh_resolver_addr_t *addrs;
    size_t              naddrs;
    gh_msec_t           expires;
    gh_msec_t           deadline;    /* of the pending lookup */
    gh_dns_query_t     *q[2];
    size_t              nq;
    size_t              nleft;
    gh_resolve_ctx_t   *waiters;
    size_t              qlen;
    uint8_t             qname[GH_DNS_NAME_MAX];   /* the key */
};

struct gh_resolver_s {
    gh_loop_t          *loop;
    gh_log_t           *log;
    gh_resolver_server_t *servers;
    size_t              nservers;
    size_t              next_server;
    gh_msec_t           valid;
    bool                ipv4;
    bool                ipv6;

    gh_resolver_node_t *buckets[GH_RESOLVER_BUCKETS];
    gh_resolver_node_t *lru_head;
    gh_resolver_node_t *lru_tail;
    size_t              nnodes;

    gh_resolve_ctx_t   *deliver_head;
    gh_resolve_ctx_t   *deliver_tail;
    bool                delivering;

    gh_dns_sock_t      *socks;
    uint64_t            lookups;
    uint64_t            rnd_state;   /* fallback only */
    uint8_t             rnd[64];
    size_t              rnd_left;
};

static void gh_resolver_read(gh_event_t *ev);
static void gh_resolver_query_timer(gh_event_t *ev);
static void gh_resolver_waiter_timer(gh_event_t *ev);
static void gh_resolver_node_complete(gh_resolver_t *r,
    gh_resolver_node_t *node);


/* --- wire format --------------------------------------------------------- */

static inline uint16_t
gh_dns_rd16(const uint8_t *p)
{
    return (uint16_t) ((unsigned) p[0] << 8 | p[1]);
}


static inline uint32_t
gh_dns_rd32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
        | (uint32_t) p[2] << 8 | p[3];
}


static inline void
gh_dns_wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}


static bool
gh_dns_label_char(uint8_t ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
        || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}


size_t
gh_dns_encode_name(const uint8_t *name, size_t len, uint8_t *out,
    size_t size)
{
    size_t o = 0, start = 0;

    if (len > 0 && name[len - 1] == '.') {
        len--;
    }
    /* 253 characters make 255 wire bytes: a length octet per label
     * instead of each dot, one more before the first, the root's 0 */
    if (len == 0 || len > GH_DNS_NAME_MAX - 2 || size < len + 2) {
        return 0;
    }
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '.') {
            if (!gh_dns_label_char(name[i])) {
                return 0;
            }
            continue;
        }
        size_t l = i - start;
        if (l == 0 || l > 63) {
            return 0;
        }
        out[o++] = (uint8_t) l;
        gh_strlow(out + o, name + start, l);
        o += l;
        start = i + 1;
    }
    out[o++] = 0;
    return o;
}


size_t
gh_dns_build_query(uint8_t *buf, size_t size, uint16_t id,
    const uint8_t *qname, size_t qlen, uint16_t qtype)
{
    size_t n = GH_DNS_HDR + qlen + 4;

    if (n > size || qlen == 0) {
        return 0;
    }
    memset(buf, 0, GH_DNS_HDR);
    gh_dns_wr16(buf, id);
    buf[2] = 0x01;                  /* RD: the server recurses for us */
    gh_dns_wr16(buf + 4, 1);        /* QDCOUNT */
    memcpy(buf + GH_DNS_HDR, qname, qlen);
    gh_dns_wr16(buf + GH_DNS_HDR + qlen, qtype);
    gh_dns_wr16(buf + GH_DNS_HDR + qlen + 2, GH_DNS_CLASS_IN);
    return n;
}


/*
 * The name at *off, decompressed into out (lowercase wire form, root
 * label included), and *off moved past the name where it is written.
 * Every pointer must land strictly below the previous one (the first
 * below the name's own start): well-formed messages only point back at
 * names written earlier, and a decreasing walk cannot loop.
 */
static gh_int_t
gh_dns_read_name(const uint8_t *pkt, size_t n, size_t *off, uint8_t *out,
    size_t *outlen)
{
    size_t   pos = *off, limit = *off, len = 0, ptr;
    bool     jumped = false;
    unsigned hops = 0;
    uint8_t  l;

    for (;;) {
        if (pos >= n) {
            return GH_ERROR;
        }
        l = pkt[pos];
        if ((l & 0xc0) == 0xc0) {
            if (pos + 1 >= n) {
                return GH_ERROR;
            }
            ptr = (size_t) (l & 0x3f) << 8 | pkt[pos + 1];
            if (!jumped) {
                *off = pos + 2;
                jumped = true;
            }
            if (ptr >= limit || ++hops > GH_DNS_MAX_HOPS) {
                return GH_ERROR;
            }
            limit = ptr;
            pos = ptr;
            continue;
        }
        if (l & 0xc0) {
            /* 01 and 10: reserved (extended label types) */
            return GH_ERROR;
        }
        if (l == 0) {
            if (len + 1 > GH_DNS_NAME_MAX) {
                return GH_ERROR;
            }
            out[len++] = 0;
            if (!jumped) {
                *off = pos + 1;
            }
            *outlen = len;
            return GH_OK;
        }
        if (pos + 1 + l > n || len + 1 + l + 1 > GH_DNS_NAME_MAX) {
            return GH_ERROR;
        }
        out[len++] = l;
        gh_strlow(out + len, pkt + pos + 1, l);
        len += l;
        pos += 1 + (size_t) l;
    }
}


static void
gh_dns_add_addr(gh_dns_answer_t *ans, uint16_t qtype, const uint8_t *rd)
{
    gh_resolver_addr_t a;

    memset(&a, 0, sizeof(a));
    if (qtype == GH_DNS_TYPE_A) {
        a.u.sin.sin_family = AF_INET;
        memcpy(&a.u.sin.sin_addr, rd, 4);
        a.len = sizeof(struct sockaddr_in);
    } else {
        a.u.sin6.sin6_family = AF_INET6;
        memcpy(&a.u.sin6.sin6_addr, rd, 16);
        a.len = sizeof(struct sockaddr_in6);
    }
    for (size_t i = 0; i < ans->naddrs; i++) {
        if (ans->addrs[i].len == a.len
            && memcmp(&ans->addrs[i].u, &a.u, a.len) == 0)
        {
            return;
        }
    }
    if (ans->naddrs < GH_DNS_MAX_ADDRS) {
        ans->addrs[ans->naddrs++] = a;
    }
}


static inline uint32_t
gh_dns_ttl(const uint8_t *p)
{
    uint32_t ttl = gh_dns_rd32(p);

    return ttl & 0x80000000u ? 0 : ttl;
}


/* one pass over the answer section looking for records owned by
 * target: addresses of qtype go into ans, the first CNAME's target into
 * next.  GH_ERROR if a record does not parse. */
static gh_int_t
gh_dns_answer_pass(const uint8_t *pkt, size_t n, size_t off, unsigned an,
    const uint8_t *target, size_t tlen, uint16_t qtype, gh_dns_answer_t *ans,
    uint32_t *addr_ttl, uint8_t *next, size_t *nlen, uint32_t *cname_ttl)
{
    uint8_t  owner[GH_DNS_NAME_MAX];
    size_t   olen, rd, rdlen, roff;
    uint16_t type, class;
    uint32_t ttl;

    *nlen = 0;
    for (unsigned i = 0; i < an; i++) {
        if (gh_dns_read_name(pkt, n, &off, owner, &olen) != GH_OK
            || off + 10 > n)
        {
            return GH_ERROR;
        }
        type = gh_dns_rd16(pkt + off);
        class = gh_dns_rd16(pkt + off + 2);
        ttl = gh_dns_ttl(pkt + off + 4);
        rdlen = gh_dns_rd16(pkt + off + 8);
        rd = off + 10;
        if (rd + rdlen > n) {
            return GH_ERROR;
        }
        off = rd + rdlen;
        if (class != GH_DNS_CLASS_IN || olen != tlen
            || memcmp(owner, target, tlen) != 0)
        {
            continue;
        }
        if (type == qtype) {
            if (rdlen != (qtype == GH_DNS_TYPE_A ? 4u : 16u)) {
                return GH_ERROR;
            }
            gh_dns_add_addr(ans, qtype, pkt + rd);
            *addr_ttl = gh_min(*addr_ttl, ttl);
        } else if (type == GH_DNS_TYPE_CNAME && *nlen == 0) {
            roff = rd;
            if (gh_dns_read_name(pkt, n, &roff, next, nlen) != GH_OK
                || roff != rd + rdlen)
            {
                return GH_ERROR;
            }
            *cname_ttl = ttl;
        }
    }
    return GH_OK;
}


gh_int_t
gh_dns_parse_response(const uint8_t *pkt, size_t n, uint16_t id,
    const uint8_t *qname, size_t qlen, uint16_t qtype, gh_dns_answer_t *ans)
{
    uint8_t  name[GH_DNS_NAME_MAX], target[GH_DNS_NAME_MAX];
    uint8_t  next[GH_DNS_NAME_MAX];
    size_t   off = GH_DNS_HDR, nlen, tlen;
    uint16_t flags;
    unsigned an;
    uint32_t chain_ttl = UINT32_MAX, addr_ttl = UINT32_MAX, cname_ttl = 0;

    ans->state = GH_RESOLVE_FORMERR;
    ans->ttl = 0;
    ans->naddrs = 0;

    if (n < GH_DNS_HDR || gh_dns_rd16(pkt) != id) {
        return GH_DECLINED;
    }
    flags = gh_dns_rd16(pkt + 2);
    /* a response (QR), to a standard query (opcode 0), to one question */
    if (!(flags & 0x8000) || (flags & 0x7800) != 0
        || gh_dns_rd16(pkt + 4) != 1)
    {
        return GH_DECLINED;
    }
    an = gh_dns_rd16(pkt + 6);
    if (gh_dns_read_name(pkt, n, &off, name, &nlen) != GH_OK
        || nlen != qlen || memcmp(name, qname, qlen) != 0 || off + 4 > n
        || gh_dns_rd16(pkt + off) != qtype
        || gh_dns_rd16(pkt + off + 2) != GH_DNS_CLASS_IN)
    {
        return GH_DECLINED;
    }
    off += 4;

    if (flags & 0x0200) {
        ans->state = GH_RESOLVE_TRUNCATED;
        return GH_OK;
    }
    if ((flags & 0x000f) != 0) {
        ans->state = flags & 0x000f;
        return GH_OK;
    }

    memcpy(target, qname, qlen);
    tlen = qlen;
    for (unsigned depth = 0; depth <= GH_DNS_MAX_CNAME; depth++) {
        if (gh_dns_answer_pass(pkt, n, off, an, target, tlen, qtype, ans,
                &addr_ttl, next, &nlen, &cname_ttl) != GH_OK)
        {
            ans->state = GH_RESOLVE_FORMERR;
            ans->naddrs = 0;
            return GH_OK;
        }
        if (ans->naddrs > 0) {
            ans->state = GH_RESOLVE_OK;
            ans->ttl = gh_min(chain_ttl, addr_ttl);
            return GH_OK;
        }
        if (nlen == 0) {
            break;
        }
        memcpy(target, next, nlen);
        tlen = nlen;
        chain_ttl = gh_min(chain_ttl, cname_ttl);
    }
    /* the name exists, but not with this record type (or the chain was
     * cut or too long): as nginx, "Host not found" */
    ans->state = GH_RESOLVE_NXDOMAIN;
    return GH_OK;
}


const char *
gh_resolver_strerror(int state)
{
    switch (state) {
    case GH_RESOLVE_OK:        return "OK";
    case GH_RESOLVE_FORMERR:   return "Format error";
    case GH_RESOLVE_SERVFAIL:  return "Server failure";
    case GH_RESOLVE_NXDOMAIN:  return "Host not found";
    case GH_RESOLVE_NOTIMP:    return "Unimplemented";
    case GH_RESOLVE_REFUSED:   return "Operation refused";
    case GH_RESOLVE_TRUNCATED: return "Truncated answer";
    case GH_RESOLVE_INVALID:   return "Invalid host name";
    case GH_RESOLVE_TIMEDOUT:  return "Operation timed out";
    default:                   return "Unknown error";
    }
}


/* --- randomness ---------------------------------------------------------- */

static uint16_t
gh_resolver_rand16(gh_resolver_t *r)
{
    uint16_t v;
    uint64_t z;

    if (r->rnd_left < 2) {
        if (getrandom(r->rnd, sizeof(r->rnd), GRND_NONBLOCK)
            == (ssize_t) sizeof(r->rnd))
        {
            r->rnd_left = sizeof(r->rnd);
        } else {
            /* the kernel pool is not ready (early boot): splitmix64 is
             * weak, but better than stalling the worker */
            z = (r->rnd_state += 0x9e3779b97f4a7c15ull
                + (uint64_t) gh_current_msec);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            return (uint16_t) (z ^ (z >> 31));
        }
    }
    r->rnd_left -= 2;
    memcpy(&v, r->rnd + r->rnd_left, 2);
    return v;
}


/* --- sockets ------------------------------------------------------------- */

static void
gh_resolver_sock_free(gh_event_t *ev)
{
    gh_dns_sock_t *s = ev->data;
    gh_resolver_t *r = s->resolver;

    if (s->prev) {
        s->prev->next = s->next;
    } else {
        r->socks = s->next;
    }
    if (s->next) {
        s->next->prev = s->prev;
    }
    free(s);
}


static void
gh_resolver_sock_close(gh_resolver_t *r, gh_dns_sock_t *s)
{
    if (s == NULL || s->c.destroyed) {
        return;
    }
    if (s->query) {
        s->query->sock = NULL;
        s->query = NULL;
    }
    gh_delete_posted_event(r->loop, &s->c.read);
    gh_loop_del_conn(r->loop, &s->c);
    close(s->c.fd);
    s->c.fd = -1;
    s->c.destroyed = 1;
    /* the current epoll batch may still hold an event for it */
    gh_post_event(r->loop, &s->free_ev);
}


static gh_dns_sock_t *
gh_resolver_sock_open(gh_resolver_t *r, gh_dns_query_t *q)
{
    const gh_resolver_server_t *srv = &r->servers[q->server];
    gh_dns_sock_t              *s;
    char                        text[64];
    int                         fd;

    fd = socket(srv->u.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK
        | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        gh_log(GH_LOG_ALERT, r->log, errno, "socket() for resolver failed");
        return NULL;
    }
    /* connect(): a random ephemeral port now, and the kernel drops
     * datagrams from any other address than the server's */
    if (connect(fd, &srv->u.sa, srv->len) < 0) {
        gh_sock_ntop(&srv->u.sa, srv->len, text, sizeof(text), true);
        gh_log(GH_LOG_ERR, r->log, errno, "connect() to resolver %s failed",
            text);
        close(fd);
        return NULL;
    }
    s = gh_xcalloc(1, sizeof(*s));
    s->c.fd = fd;
    s->c.data = s;
    s->c.log = *r->log;
    s->c.read.data = &s->c;
    s->c.read.handler = gh_resolver_read;
    s->c.write.data = &s->c;
    s->c.write.write = 1;
    s->free_ev.data = s;
    s->free_ev.handler = gh_resolver_sock_free;
    s->resolver = r;
    if (gh_loop_add_conn(r->loop, &s->c) != GH_OK) {
        close(fd);
        free(s);
        return NULL;
    }
    s->query = q;
    s->next = r->socks;
    if (r->socks) {
        r->socks->prev = s;
    }
    r->socks = s;
    return s;
}


/* --- queries ------------------------------------------------------------- */

static void
gh_resolver_send(gh_resolver_t *r, gh_dns_query_t *q, bool fresh)
{
    char text[64];

    if (fresh || q->sock == NULL) {
        /* a new socket and ID for every server tried: an answer to an
         * earlier transmission is not awaited any more */
        gh_resolver_sock_close(r, q->sock);
        q->id = gh_resolver_rand16(r);
        gh_dns_wr16(q->packet, q->id);
        q->sock = gh_resolver_sock_open(r, q);
        if (q->sock == NULL) {
            return;
        }
    }
    if (send(q->sock->c.fd, q->packet, q->plen, 0) < 0
        && errno != EAGAIN && errno != EINTR)
    {
        const gh_resolver_server_t *srv = &r->servers[q->server];

        gh_sock_ntop(&srv->u.sa, srv->len, text, sizeof(text), true);
        gh_log(GH_LOG_ERR, r->log, errno, "send() to resolver %s failed",
            text);
        gh_resolver_sock_close(r, q->sock);
    }
}


static void
gh_resolver_query_finish(gh_resolver_t *r, gh_dns_query_t *q)
{
    gh_resolver_node_t *node = q->node;

    q->done = true;
    gh_resolver_sock_close(r, q->sock);
    gh_timer_del(r->loop, &q->timer);
    if (--node->nleft == 0) {
        gh_resolver_node_complete(r, node);
    }
}


static void
gh_resolver_query_timer(gh_event_t *ev)
{
    gh_dns_query_t     *q = ev->data;
    gh_resolver_node_t *node = q->node;
    gh_resolver_t      *r = q->resolver;
    gh_msec_t           now = gh_current_msec;

    if (now >= node->deadline) {
        q->ans.state = GH_RESOLVE_TIMEDOUT;
        q->ans.naddrs = 0;
        gh_resolver_query_finish(r, q);
        return;
    }
    if (r->nservers > 1) {
        q->server = (q->server + 1) % r->nservers;
        gh_resolver_send(r, q, true);
    } else {
        gh_resolver_send(r, q, false);
    }
    q->interval = gh_min(q->interval * 2, GH_RESOLVER_RESEND_MAX);
    gh_timer_add(r->loop, &q->timer, gh_min(q->interval,
        node->deadline - now));
}


static void
gh_resolver_read(gh_event_t *ev)
{
    gh_conn_t      *c = ev->data;
    gh_dns_sock_t  *s = (gh_dns_sock_t *) c;     /* c is s's first member */
    gh_resolver_t  *r = s->resolver;
    gh_dns_query_t *q = s->query;
    uint8_t         buf[GH_DNS_RECV_MAX];
    char            text[64];
    ssize_t         n;

    if (c->destroyed || q == NULL) {
        return;
    }
    for (int i = 0; i < GH_RESOLVER_READ_BATCH; i++) {
        n = recv(c->fd, buf, sizeof(buf), 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                ev->ready = 0;
                return;
            }
            /* ICMP port unreachable and the like, reported on the
             * connected socket: the resend timer opens a new one (to
             * the next server, if there is one) */
            gh_sock_ntop(&r->servers[q->server].u.sa,
                r->servers[q->server].len, text, sizeof(text), true);
            gh_log(GH_LOG_ERR, r->log, errno,
                "recv() from resolver %s failed", text);
            gh_resolver_sock_close(r, s);
            return;
        }
        if (gh_dns_parse_response(buf, (size_t) n, q->id, q->node->qname,
                q->node->qlen, q->qtype, &q->ans) == GH_OK)
        {
            gh_resolver_query_finish(r, q);
            return;
        }
        /* info, not error: whoever floods us with forgeries must not
         * flood the log too */
        gh_log(GH_LOG_INFO, r->log, 0, "unexpected DNS response ignored "
            "(%zd bytes)", n);
    }
    /* edge-triggered: no new event would come for what is left */
    gh_post_event(r->loop, ev);
}


/* --- cache nodes --------------------------------------------------------- */

static uint32_t
gh_resolver_hash(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;       /* FNV-1a */

    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}


static void
gh_resolver_lru_unlink(gh_resolver_t *r, gh_resolver_node_t *node)
{
    if (node->lprev) {
        node->lprev->lnext = node->lnext;
    } else {
        r->lru_head = node->lnext;
    }
    if (node->lnext) {
        node->lnext->lprev = node->lprev;
    } else {
        r->lru_tail = node->lprev;
    }
    node->lprev = node->lnext = NULL;
}


static void
gh_resolver_lru_front(gh_resolver_t *r, gh_resolver_node_t *node)
{
    if (r->lru_head == node) {
        return;
    }
    if (node->lprev || node->lnext || r->lru_tail == node) {
        gh_resolver_lru_unlink(r, node);
    }
    node->lnext = r->lru_head;
    if (r->lru_head) {
        r->lru_head->lprev = node;
    }
    r->lru_head = node;
    if (r->lru_tail == NULL) {
        r->lru_tail = node;
    }
}


static gh_resolver_node_t *
gh_resolver_find(gh_resolver_t *r, const uint8_t *qname, size_t qlen,
    uint32_t hash)
{
    gh_resolver_node_t *node = r->buckets[hash % GH_RESOLVER_BUCKETS];

    for (; node; node = node->hnext) {
        if (node->hash == hash && node->qlen == qlen
            && memcmp(node->qname, qname, qlen) == 0)
        {
            return node;
        }
    }
    return NULL;
}


/* only for a node with no lookup under way (hence no waiters) */
static void
gh_resolver_node_free(gh_resolver_t *r, gh_resolver_node_t *node)
{
    gh_resolver_node_t **pp = &r->buckets[node->hash % GH_RESOLVER_BUCKETS];

    while (*pp != node) {
        pp = &(*pp)->hnext;
    }
    *pp = node->hnext;
    gh_resolver_lru_unlink(r, node);
    free(node->addrs);
    free(node);
    r->nnodes--;
}


static gh_resolver_node_t *
gh_resolver_node_create(gh_resolver_t *r, const uint8_t *qname,
    size_t qlen, uint32_t hash)
{
    gh_resolver_node_t *node, *prev;
    size_t              b = hash % GH_RESOLVER_BUCKETS;

    /* least recently used first; nodes with a lookup under way stay, so
     * the cache may briefly exceed the cap under a burst of new names */
    for (node = r->lru_tail; node && r->nnodes >= GH_RESOLVER_MAX_NODES;
         node = prev)
    {
        prev = node->lprev;
        if (!node->pending) {
            gh_resolver_node_free(r, node);
        }
    }
    node = gh_xcalloc(1, sizeof(*node));
    memcpy(node->qname, qname, qlen);
    node->qlen = qlen;
    node->hash = hash;
    node->hnext = r->buckets[b];
    r->buckets[b] = node;
    gh_resolver_lru_front(r, node);
    r->nnodes++;
    return node;
}


static void
gh_resolver_node_start(gh_resolver_t *r, gh_resolver_node_t *node,
    gh_msec_t deadline)
{
    uint16_t        types[2];
    size_t          ntypes = 0, server;
    gh_dns_query_t *q;

    node->pending = true;
    node->deadline = deadline;
    r->lookups++;
    server = r->next_server++ % r->nservers;
    if (r->ipv4) {
        types[ntypes++] = GH_DNS_TYPE_A;
    }
    if (r->ipv6) {
        types[ntypes++] = GH_DNS_TYPE_AAAA;
    }
    node->nq = 0;
    for (size_t i = 0; i < ntypes; i++) {
        q = gh_xcalloc(1, sizeof(*q));
        q->resolver = r;
        q->node = node;
        q->qtype = types[i];
        q->server = server;
        q->interval = GH_RESOLVER_RESEND_FIRST;
        q->timer.data = q;
        q->timer.handler = gh_resolver_query_timer;
        q->timer.cancelable = 1;
        /* 12 + 255 + 4 bytes always fit; the ID is set at each send */
        q->plen = gh_dns_build_query(q->packet, sizeof(q->packet), 0,
            node->qname, node->qlen, q->qtype);
        node->q[node->nq++] = q;
    }
    node->nleft = node->nq;
    for (size_t i = 0; i < node->nq; i++) {
        q = node->q[i];
        gh_resolver_send(r, q, true);
        gh_timer_add(r->loop, &q->timer,
            gh_min(q->interval, deadline - gh_current_msec));
    }
}


/* --- waiters ------------------------------------------------------------- */

static void
gh_resolver_ctx_unlink(gh_resolve_ctx_t *ctx)
{
    gh_resolver_t     *r = ctx->resolver;
    gh_resolve_ctx_t **head, **tail = NULL;

    if (ctx->node) {
        head = &ctx->node->waiters;
    } else if (ctx->queued) {
        head = &r->deliver_head;
        tail = &r->deliver_tail;
    } else {
        return;
    }
    if (ctx->prev) {
        ctx->prev->next = ctx->next;
    } else {
        *head = ctx->next;
    }
    if (ctx->next) {
        ctx->next->prev = ctx->prev;
    } else if (tail) {
        *tail = ctx->prev;
    }
    ctx->prev = ctx->next = NULL;
    ctx->node = NULL;
    ctx->queued = 0;
}


static void
gh_resolver_ctx_result(gh_resolve_ctx_t *ctx, const gh_resolver_node_t *node)
{
    ctx->state = node->state;
    ctx->valid_until = node->expires;
    ctx->naddrs = node->naddrs;
    if (node->naddrs > 0) {
        ctx->addrs = gh_xmalloc(node->naddrs * sizeof(gh_resolver_addr_t));
        memcpy(ctx->addrs, node->addrs,
            node->naddrs * sizeof(gh_resolver_addr_t));
    }
}


static void
gh_resolver_deliver(gh_resolver_t *r)
{
    gh_resolve_ctx_t *ctx;

    if (r->delivering) {
        return;
    }
    r->delivering = true;
    /* only the head is ever touched: a handler may cancel or free any
     * other queued ctx */
    while ((ctx = r->deliver_head) != NULL) {
        gh_resolver_ctx_unlink(ctx);
        ctx->handler(ctx);
    }
    r->delivering = false;
}


/* nobody waits for the lookup any more: drop it rather than keep its
 * sockets open until the deadline (clients that connect, make a lookup
 * start and leave must not pile up sockets) */
static void
gh_resolver_node_abandoned(gh_resolver_t *r, gh_resolver_node_t *node)
{
    if (node == NULL || !node->pending || node->waiters != NULL) {
        return;
    }
    for (size_t i = 0; i < node->nq; i++) {
        gh_timer_del(r->loop, &node->q[i]->timer);
        gh_resolver_sock_close(r, node->q[i]->sock);
        free(node->q[i]);
        node->q[i] = NULL;
    }
    node->nq = 0;
    node->nleft = 0;
    node->pending = false;
}


static void
gh_resolver_waiter_timer(gh_event_t *ev)
{
    gh_resolve_ctx_t   *ctx = ev->data;
    gh_resolver_node_t *node = ctx->node;

    /* this caller's patience ran out; the lookup goes on for others */
    gh_resolver_ctx_unlink(ctx);
    gh_resolver_node_abandoned(ctx->resolver, node);
    ctx->state = GH_RESOLVE_TIMEDOUT;
    ctx->naddrs = 0;
    ctx->valid_until = gh_current_msec;
    ctx->handler(ctx);
}


static void
gh_resolver_node_complete(gh_resolver_t *r, gh_resolver_node_t *node)
{
    gh_msec_t         now = gh_current_msec, neg;
    gh_resolve_ctx_t *ctx, *last = NULL;
    uint32_t          ttl = UINT32_MAX;
    bool              timedout = false;
    size_t            n = 0;

    for (size_t i = 0; i < node->nq; i++) {
        if (node->q[i]->ans.state == GH_RESOLVE_OK) {
            n += node->q[i]->ans.naddrs;
            ttl = gh_min(ttl, node->q[i]->ans.ttl);
        } else if (node->q[i]->ans.state == GH_RESOLVE_TIMEDOUT) {
            timedout = true;
        }
    }
    free(node->addrs);
    node->addrs = n ? gh_xmalloc(n * sizeof(gh_resolver_addr_t)) : NULL;
    node->naddrs = 0;
    for (size_t i = 0; i < node->nq; i++) {
        if (node->q[i]->ans.state == GH_RESOLVE_OK) {
            memcpy(node->addrs + node->naddrs, node->q[i]->ans.addrs,
                node->q[i]->ans.naddrs * sizeof(gh_resolver_addr_t));
            node->naddrs += node->q[i]->ans.naddrs;
        }
    }

    if (n > 0) {
        node->state = GH_RESOLVE_OK;
        node->expires = now + (r->valid ? r->valid : (gh_msec_t) ttl * 1000);
    } else if (timedout) {
        /* says nothing about the name: not cached */
        node->state = GH_RESOLVE_TIMEDOUT;
        node->expires = now;
    } else {
        node->state = node->q[0]->ans.state;
        neg = r->valid ? gh_min(r->valid, GH_RESOLVER_NEG_MAX)
            : GH_RESOLVER_NEG_DEFAULT;
        node->expires = now + neg;
    }
    for (size_t i = 0; i < node->nq; i++) {
        free(node->q[i]);
        node->q[i] = NULL;
    }
    node->nq = 0;
    node->pending = false;
    node->answered = true;

    /* waiters to the deliver list, in the order they came (the node's
     * list is newest first) */
    while ((ctx = node->waiters) != NULL) {
        gh_resolver_ctx_unlink(ctx);
        gh_timer_del(r->loop, &ctx->timer);
        gh_resolver_ctx_result(ctx, node);
        ctx->queued = 1;
        ctx->next = NULL;
        ctx->prev = NULL;
        if (last == NULL) {
            /* the first one taken is the newest: it goes last */
            ctx->prev = r->deliver_tail;
            if (r->deliver_tail) {
                r->deliver_tail->next = ctx;
            } else {
                r->deliver_head = ctx;
            }
            r->deliver_tail = ctx;
        } else {
            /* older ones go in front of the previous one */
            ctx->next = last;
            ctx->prev = last->prev;
            if (last->prev) {
                last->prev->next = ctx;
            } else {
                r->deliver_head = ctx;
            }
            last->prev = ctx;
        }
        last = ctx;
    }
    gh_resolver_deliver(r);
}


/* --- API ----------------------------------------------------------------- */

gh_resolver_t *
gh_resolver_create(gh_loop_t *loop, gh_log_t *log,
    const gh_resolver_server_t *servers, size_t n, gh_msec_t valid,
    bool ipv4, bool ipv6)
{
    gh_resolver_t *r;

    if (loop == NULL || servers == NULL || n == 0 || (!ipv4 && !ipv6)) {
        return NULL;
    }
    r = gh_xcalloc(1, sizeof(*r));
    r->loop = loop;
    r->log = log ? log : &gh_log_stderr;
    r->servers = gh_xmalloc(n * sizeof(*servers));
    memcpy(r->servers, servers, n * sizeof(*servers));
    r->nservers = n;
    r->valid = valid > 0 ? valid : 0;
    r->ipv4 = ipv4;
    r->ipv6 = ipv6;
    r->rnd_state = (uint64_t) getpid() << 32 ^ (uint64_t) (uintptr_t) r;
    return r;
}


void
gh_resolver_destroy(gh_resolver_t *r)
{
    gh_resolver_node_t *node, *next;
    gh_resolve_ctx_t   *ctx;
    gh_dns_sock_t      *s, *snext;

    if (r == NULL) {
        return;
    }
    /* callers still hold their ctx: detach them (no call will come),
     * their gh_resolve_done() then only frees */
    for (node = r->lru_head; node; node = next) {
        next = node->lnext;
        while ((ctx = node->waiters) != NULL) {
            gh_resolver_ctx_unlink(ctx);
            gh_timer_del(r->loop, &ctx->timer);
            ctx->resolver = NULL;
        }
        for (size_t i = 0; i < node->nq; i++) {
            gh_timer_del(r->loop, &node->q[i]->timer);
            free(node->q[i]);
        }
        free(node->addrs);
        free(node);
    }
    while ((ctx = r->deliver_head) != NULL) {
        gh_resolver_ctx_unlink(ctx);
        ctx->resolver = NULL;
    }
    for (s = r->socks; s; s = snext) {
        snext = s->next;
        if (!s->c.destroyed) {
            gh_delete_posted_event(r->loop, &s->c.read);
            gh_loop_del_conn(r->loop, &s->c);
            close(s->c.fd);
        }
        gh_delete_posted_event(r->loop, &s->free_ev);
        free(s);
    }
    free(r->servers);
    free(r);
}


gh_int_t
gh_resolve(gh_resolver_t *r, const gh_str_t *name, gh_msec_t timeout,
    gh_resolve_handler_pt handler, void *data, gh_resolve_ctx_t **out)
{
    uint8_t             qname[GH_DNS_NAME_MAX];
    gh_resolve_ctx_t   *ctx;
    gh_resolver_node_t *node;
    gh_msec_t           now = gh_current_msec, deadline;
    uint32_t            hash;
    size_t              qlen;

    if (out != NULL) {
        *out = NULL;
    }
    if (r == NULL || name == NULL || handler == NULL || out == NULL
        || (name->len > 0 && name->data == NULL))
    {
        return GH_ERROR;
    }
    ctx = gh_xcalloc(1, sizeof(*ctx) + name->len + 1);
    ctx->name.data = (uint8_t *) (ctx + 1);
    if (name->len > 0) {
        memcpy(ctx->name.data, name->data, name->len);
    }
    ctx->name.len = name->len;
    ctx->handler = handler;
    ctx->data = data;
    ctx->resolver = r;
    ctx->timer.data = ctx;
    ctx->timer.handler = gh_resolver_waiter_timer;
    ctx->timer.cancelable = 1;
    *out = ctx;

    qlen = gh_dns_encode_name(name->data, name->len, qname, sizeof(qname));
    if (qlen == 0) {
        ctx->state = GH_RESOLVE_INVALID;
        ctx->valid_until = now;
        return GH_OK;
    }
    hash = gh_resolver_hash(qname, qlen);
    node = gh_resolver_find(r, qname, qlen, hash);
    if (node == NULL) {
        node = gh_resolver_node_create(r, qname, qlen, hash);
    } else {
        gh_resolver_lru_front(r, node);
    }
    if (!node->pending && node->answered && now < node->expires) {
        gh_resolver_ctx_result(ctx, node);
        return GH_OK;
    }

    if (timeout <= 0) {
        timeout = GH_RESOLVER_DEFAULT_TIMEOUT;
    }
    deadline = timeout > INT64_MAX - now ? INT64_MAX : now + timeout;
    ctx->node = node;
    ctx->next = node->waiters;
    if (node->waiters) {
        node->waiters->prev = ctx;
    }
    node->waiters = ctx;
    gh_timer_add(r->loop, &ctx->timer, timeout);
    if (node->pending) {
        /* coalesced: the lookup under way answers this caller too */
        node->deadline = gh_max(node->deadline, deadline);
        return GH_AGAIN;
    }
    gh_resolver_node_start(r, node, deadline);
    return GH_AGAIN;
}


void
gh_resolve_done(gh_resolve_ctx_t *ctx)
{
    gh_resolver_node_t *node;

    if (ctx == NULL) {
        return;
    }
    if (ctx->resolver != NULL) {
        node = ctx->node;
        gh_resolver_ctx_unlink(ctx);
        gh_timer_del(ctx->resolver->loop, &ctx->timer);
        gh_resolver_node_abandoned(ctx->resolver, node);
    }
    free(ctx->addrs);
    free(ctx);
}


uint64_t
gh_resolver_lookups(const gh_resolver_t *r)
{
    return r->lookups;
}
