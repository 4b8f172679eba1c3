/*
 * gh_resolver.h: an asynchronous DNS stub resolver on a worker's loop.
 *
 * A gh_resolver_t asks the configured name servers (UDP, port 53 unless
 * given) for A and, unless ipv6 is off, AAAA records, and keeps the
 * answers in a per-worker cache.  Nothing blocks: gh_resolve() either
 * answers from the cache at once or starts (or joins) a lookup and calls
 * back later from the loop.
 *
 *   gh_resolve(name) --cached, fresh--> GH_OK, ctx->state/addrs set
 *        |
 *        +--pending lookup for name--> join its waiters  --> GH_AGAIN
 *        +--else--> start queries (A, AAAA) ------------> GH_AGAIN
 *   answer / error / resolver_timeout --> every waiter's handler, once
 *   gh_resolve_done(ctx): the caller is finished with ctx (frees it;
 *        before the handler ran it cancels: the handler is then never
 *        called; a lookup nobody waits for any more is dropped)
 *
 * Each query has its own connect()ed UDP socket, so the kernel picks a
 * random ephemeral source port per query and drops datagrams from any
 * other address; the 16-bit ID is random too, and an answer must echo
 * the ID and the question exactly.  A query is sent again after 1s, 2s,
 * 4s, 5s, ... (to the next server when there are several, with a new
 * socket and ID) until the lookup's deadline.  Truncated answers (TC) are
 * failures: there is no TCP fallback (answers that matter to a proxy,
 * a few A/AAAA records, fit in 512 bytes).
 *
 * Cache: keyed by the lowercased name, an answer is kept for `valid`
 * when set (as nginx's `valid=`, which overrides the records' TTL), else
 * for the smallest TTL on the CNAME chain and the addresses.  Failures
 * from a server (NXDOMAIN, no data, SERVFAIL...) are kept min(valid,
 * 30s), or 10s without `valid`; timeouts are not cached.  At most
 * GH_RESOLVER_MAX_NODES names, the least recently used go first.
 */
#ifndef GH_RESOLVER_H
#define GH_RESOLVER_H

#include "gh_conn.h"
#include <netinet/in.h>

/* result codes: nginx's numbers (the DNS RCODEs, then ETIMEDOUT), which
 * appear in log lines such as "x could not be resolved (3: Host not
 * found)" */
#define GH_RESOLVE_OK        0
#define GH_RESOLVE_FORMERR   1
#define GH_RESOLVE_SERVFAIL  2
#define GH_RESOLVE_NXDOMAIN  3   /* also: the name exists, no address */
#define GH_RESOLVE_NOTIMP    4
#define GH_RESOLVE_REFUSED   5
#define GH_RESOLVE_TRUNCATED 100 /* TC set; no TCP fallback */
#define GH_RESOLVE_INVALID   101 /* not a host name we can ask about */
#define GH_RESOLVE_TIMEDOUT  110

#define GH_DNS_MAX_ADDRS     32  /* per record type and answer */
#define GH_DNS_NAME_MAX      255 /* wire form, RFC 1035 2.3.4 */
#define GH_DNS_UDP_MAX       512 /* without EDNS0, RFC 1035 4.2.1 */
#define GH_DNS_TYPE_A        1
#define GH_DNS_TYPE_CNAME    5
#define GH_DNS_TYPE_AAAA     28

#define GH_RESOLVER_DEFAULT_TIMEOUT 30000   /* resolver_timeout, as nginx */
#define GH_RESOLVER_MAX_NODES       4096

typedef struct gh_resolver_s     gh_resolver_t;
typedef struct gh_resolve_ctx_s  gh_resolve_ctx_t;
typedef struct gh_resolver_node_s gh_resolver_node_t;

typedef void (*gh_resolve_handler_pt)(gh_resolve_ctx_t *ctx);

/* an address; the port is 0 in results (the caller sets its own) */
typedef struct {
    union {
        struct sockaddr      sa;
        struct sockaddr_in   sin;
        struct sockaddr_in6  sin6;
    } u;
    socklen_t                len;
} gh_resolver_addr_t;

/* a name server: address with port (53 unless given) */
typedef gh_resolver_addr_t gh_resolver_server_t;

struct gh_resolve_ctx_s {
    /* result, valid once gh_resolve() returned GH_OK or the handler runs */
    int                      state;       /* GH_RESOLVE_* */
    gh_resolver_addr_t      *addrs;       /* IPv4 first, then IPv6 */
    size_t                   naddrs;
    gh_msec_t                valid_until; /* the cache's expiry for the
                                             name (gh_current_msec
                                             clock); now if not cached */
    gh_str_t                 name;        /* as asked, owned by ctx */

    gh_resolve_handler_pt    handler;
    void                    *data;

    /* private */
    gh_resolver_t           *resolver;
    gh_resolver_node_t      *node;        /* waiting on it, else NULL */
    gh_resolve_ctx_t        *prev;
    gh_resolve_ctx_t        *next;
    gh_event_t               timer;       /* this waiter's own timeout */
    unsigned                 queued:1;    /* on the resolver's deliver list */
};

/* servers: n >= 1 addresses (copied).  valid: 0 = use the TTL.
 * At least one of ipv4/ipv6.  The log is used for warnings about
 * bogus answers and socket errors. */
gh_resolver_t *gh_resolver_create(gh_loop_t *loop, gh_log_t *log,
    const gh_resolver_server_t *servers, size_t n, gh_msec_t valid,
    bool ipv4, bool ipv6);
/* cancel every lookup (no handler is called), close sockets, free; not
 * from inside one of its handlers (worker exit, tests) */
void gh_resolver_destroy(gh_resolver_t *r);

/*
 * Look name up (a host name; a trailing dot is allowed, IP literals are
 * the caller's business).  timeout: this caller's limit, <= 0 for the
 * default.  *out is the ctx in every case but GH_ERROR:
 *   GH_OK     answered now (cache, or an invalid name): read ctx->state
 *             and ctx->addrs; no handler call follows
 *   GH_AGAIN  handler(ctx) is called exactly once, from the loop, unless
 *             gh_resolve_done(ctx) comes first
 *   GH_ERROR  bad arguments; nothing to free, no call
 * Either way the caller ends with gh_resolve_done(ctx).
 */
gh_int_t gh_resolve(gh_resolver_t *r, const gh_str_t *name,
    gh_msec_t timeout, gh_resolve_handler_pt handler, void *data,
    gh_resolve_ctx_t **out);
/* finished with ctx: cancels it if pending, frees it and its results.
 * Safe inside the ctx's own handler; ctx is invalid afterwards. */
void gh_resolve_done(gh_resolve_ctx_t *ctx);

/* "Host not found", "Operation timed out", ... (nginx's texts) */
const char *gh_resolver_strerror(int state);

/* lookups started (queries sent for new names), for tests */
uint64_t gh_resolver_lookups(const gh_resolver_t *r);

/* --- wire format (RFC 1035), exposed for the unit tests and fuzzer --- */

/* "www.Example.com" (optional trailing dot) -> lowercase wire labels;
 * letters, digits, '-' and '_' only.  Returns the wire length, or 0 if
 * the name is empty, too long or has an invalid label. */
size_t gh_dns_encode_name(const uint8_t *name, size_t len, uint8_t *out,
    size_t size);

/* a query with RD set for qname (wire form); returns its length, or 0
 * when it does not fit */
size_t gh_dns_build_query(uint8_t *buf, size_t size, uint16_t id,
    const uint8_t *qname, size_t qlen, uint16_t qtype);

typedef struct {
    int                 state;        /* GH_RESOLVE_* */
    uint32_t            ttl;          /* seconds, min over the records used */
    size_t              naddrs;
    gh_resolver_addr_t  addrs[GH_DNS_MAX_ADDRS];
} gh_dns_answer_t;

/*
 * Parse a datagram received for the query (id, qname, qtype).
 *   GH_OK        it answers our question: ans->state says how (OK with
 *                addresses; NXDOMAIN also for "no such record"; the
 *                server's RCODE; TRUNCATED; FORMERR for a malformed
 *                answer section)
 *   GH_DECLINED  not an answer to this query (ID, flags, question), or
 *                too broken to tell: ignore it and keep waiting
 * CNAME chains are followed inside the answer section (at most 16
 * links, in any record order); compression pointers must point
 * backwards, which also rules out loops.
 */
gh_int_t gh_dns_parse_response(const uint8_t *pkt, size_t n, uint16_t id,
    const uint8_t *qname, size_t qlen, uint16_t qtype, gh_dns_answer_t *ans);

#endif
