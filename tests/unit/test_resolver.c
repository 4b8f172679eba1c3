/*
 * test_resolver.c: the DNS stub resolver and what builds on it.
 *
 *   wire      names to labels, queries, and the answer parser: plain A
 *             and AAAA, compression, CNAME chains (in any order, looping,
 *             too long), RCODEs and TC, and every kind of bad packet: not
 *             ours, cut short, pointer loops, forward pointers, bad
 *             rdlength; then every prefix and a few thousand mutations
 *             of good packets (nothing may read out of bounds: run under
 *             ASan with make SANITIZE=1)
 *   loop      a resolver on a real loop against a fake name server made
 *             here (a UDP socket on 127.0.0.1 the test reads and answers
 *             by hand): caching by TTL and valid=, negative caching,
 *             coalescing, cancel (also from inside another handler),
 *             resend and timeout, rotation to a second server, forged
 *             answers, A + AAAA
 *   upstream  a `resolve` server's peers following answers (kept,
 *             retired, revived), the one-request group, names vs
 *             literals, and the configuration errors
 */
#include "http_fixture.h"
#include "event/gh_resolver.h"
#include "upstream/gh_upstream_resolver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

static gh_log_t quiet = { .level = -1 };

/* --- a packet builder ---------------------------------------------------- */

typedef struct {
    uint8_t b[4096];
    size_t  n;
} pkt_t;

static void
put8(pkt_t *p, unsigned v)
{
    assert_true(p->n < sizeof(p->b));
    p->b[p->n++] = (uint8_t) v;
}

static void
put16(pkt_t *p, unsigned v)
{
    put8(p, v >> 8);
    put8(p, v & 0xff);
}

static void
put32(pkt_t *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p, v & 0xffff);
}

static void
put_name(pkt_t *p, const char *name)
{
    const char *dot;

    while (*name) {
        dot = strchr(name, '.');
        size_t l = dot ? (size_t) (dot - name) : strlen(name);
        put8(p, (unsigned) l);
        for (size_t i = 0; i < l; i++) {
            put8(p, (uint8_t) name[i]);
        }
        name += l + (dot ? 1 : 0);
    }
    put8(p, 0);
}

static void
put_ptr(pkt_t *p, unsigned off)
{
    put16(p, 0xc000 | off);
}

static void
pkt_start(pkt_t *p, unsigned id, unsigned flags, unsigned an,
    const char *qname, unsigned qtype)
{
    p->n = 0;
    put16(p, id);
    put16(p, flags);
    put16(p, 1);
    put16(p, an);
    put16(p, 0);
    put16(p, 0);
    put_name(p, qname);
    put16(p, qtype);
    put16(p, 1);
}

/* an A record whose owner is a pointer to off (12: the question) */
static void
put_a(pkt_t *p, unsigned owner, uint32_t ttl, const char *ip)
{
    struct in_addr a;

    assert_int_equal(inet_pton(AF_INET, ip, &a), 1);
    put_ptr(p, owner);
    put16(p, GH_DNS_TYPE_A);
    put16(p, 1);
    put32(p, ttl);
    put16(p, 4);
    memcpy(p->b + p->n, &a, 4);
    p->n += 4;
}

static void
put_aaaa(pkt_t *p, unsigned owner, uint32_t ttl, const char *ip)
{
    struct in6_addr a;

    assert_int_equal(inet_pton(AF_INET6, ip, &a), 1);
    put_ptr(p, owner);
    put16(p, GH_DNS_TYPE_AAAA);
    put16(p, 1);
    put32(p, ttl);
    put16(p, 16);
    memcpy(p->b + p->n, &a, 16);
    p->n += 16;
}

static const char *
addr_text(const gh_resolver_addr_t *a)
{
    static char buf[64];

    if (a->u.sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &a->u.sin.sin_addr, buf, sizeof(buf));
    } else {
        inet_ntop(AF_INET6, &a->u.sin6.sin6_addr, buf, sizeof(buf));
    }
    return buf;
}

static gh_int_t
parse(const pkt_t *p, const char *name, unsigned qtype, gh_dns_answer_t *ans)
{
    uint8_t q[GH_DNS_NAME_MAX];
    size_t  ql = gh_dns_encode_name((const uint8_t *) name, strlen(name), q,
        sizeof(q));

    assert_true(ql > 0);
    return gh_dns_parse_response(p->b, p->n, 0x1234, q, ql,
        (uint16_t) qtype, ans);
}


/* --- wire ---------------------------------------------------------------- */

static size_t
enc(const char *name, uint8_t *out)
{
    return gh_dns_encode_name((const uint8_t *) name, strlen(name), out,
        GH_DNS_NAME_MAX);
}

static void
test_encode_name(void **state)
{
    uint8_t out[GH_DNS_NAME_MAX];
    char    long_label[80], long_name[300];

    assert_int_equal(enc("www.Example.COM", out), 17);
    assert_memory_equal(out, "\3www\7example\3com\0", 17);
    assert_int_equal(enc("app.test.", out), 10);
    assert_memory_equal(out, "\3app\4test\0", 10);
    assert_int_equal(enc("a-b_c", out), 7);

    assert_int_equal(enc("", out), 0);
    assert_int_equal(enc(".", out), 0);
    assert_int_equal(enc("a..b", out), 0);
    assert_int_equal(enc(".a", out), 0);
    assert_int_equal(enc("a b", out), 0);
    assert_int_equal(enc("a/b", out), 0);
    assert_int_equal(gh_dns_encode_name((const uint8_t *) "a\0b", 3, out,
        sizeof(out)), 0);

    memset(long_label, 'x', 63);
    long_label[63] = '\0';
    assert_int_equal(enc(long_label, out), 65);
    memset(long_label, 'x', 64);
    long_label[64] = '\0';
    assert_int_equal(enc(long_label, out), 0);

    /* 253 characters is the most a name can have */
    for (size_t i = 0; i < sizeof(long_name) - 1; i++) {
        long_name[i] = i % 50 == 49 ? '.' : 'y';
    }
    long_name[253] = '\0';
    assert_int_equal(enc(long_name, out), 255);
    long_name[253] = 'y';
    long_name[254] = '\0';
    assert_int_equal(enc(long_name, out), 0);
    /* a small buffer is refused, not overrun */
    assert_int_equal(gh_dns_encode_name((const uint8_t *) "abc.de", 6, out,
        7), 0);
}

static void
test_build_query(void **state)
{
    uint8_t q[GH_DNS_NAME_MAX], buf[GH_DNS_UDP_MAX];
    size_t  ql = enc("app.test", q), n;

    n = gh_dns_build_query(buf, sizeof(buf), 0xbeef, q, ql, GH_DNS_TYPE_AAAA);
    assert_int_equal(n, 12 + ql + 4);
    assert_memory_equal(buf, "\xbe\xef\x01\x00\x00\x01\0\0\0\0\0\0", 12);
    assert_memory_equal(buf + 12, q, ql);
    assert_memory_equal(buf + 12 + ql, "\0\x1c\0\x01", 4);
    assert_int_equal(gh_dns_build_query(buf, 20, 1, q, ql, 1), 0);
}

static void
test_parse_a(void **state)
{
    gh_dns_answer_t ans;
    pkt_t           p;

    pkt_start(&p, 0x1234, 0x8180, 3, "App.Test", GH_DNS_TYPE_A);
    put_a(&p, 12, 300, "10.0.0.1");
    put_a(&p, 12, 60, "10.0.0.2");
    put_a(&p, 12, 300, "10.0.0.1");     /* duplicate: once */
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_OK);
    assert_int_equal(ans.naddrs, 2);
    assert_string_equal(addr_text(&ans.addrs[0]), "10.0.0.1");
    assert_string_equal(addr_text(&ans.addrs[1]), "10.0.0.2");
    assert_int_equal(ans.ttl, 60);
    assert_int_equal(ans.addrs[0].len, sizeof(struct sockaddr_in));

    /* AAAA; a TTL with the top bit set counts as 0 */
    pkt_start(&p, 0x1234, 0x8180, 1, "app.test", GH_DNS_TYPE_AAAA);
    put_aaaa(&p, 12, 0x80000001u, "2001:db8::7");
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_AAAA, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_OK);
    assert_int_equal(ans.naddrs, 1);
    assert_string_equal(addr_text(&ans.addrs[0]), "2001:db8::7");
    assert_int_equal(ans.ttl, 0);

    /* records of other types and classes are skipped */
    pkt_start(&p, 0x1234, 0x8180, 3, "app.test", GH_DNS_TYPE_A);
    put_aaaa(&p, 12, 5, "::1");
    put_ptr(&p, 12);
    put16(&p, GH_DNS_TYPE_A);
    put16(&p, 3);                       /* CHAOS */
    put32(&p, 5);
    put16(&p, 4);
    put32(&p, 0x01020304);
    put_a(&p, 12, 5, "192.0.2.1");
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.naddrs, 1);
    assert_string_equal(addr_text(&ans.addrs[0]), "192.0.2.1");

    /* more than GH_DNS_MAX_ADDRS: capped */
    pkt_start(&p, 0x1234, 0x8180, 40, "app.test", GH_DNS_TYPE_A);
    for (int i = 0; i < 40; i++) {
        char ip[32];

        snprintf(ip, sizeof(ip), "10.1.0.%d", i);
        put_a(&p, 12, 5, ip);
    }
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.naddrs, GH_DNS_MAX_ADDRS);
}

/* c0 -> c1 -> ... -> cN, then cN's A record, the links in reverse */
static void
chain(pkt_t *p, int links)
{
    char from[16], to[16];

    pkt_start(p, 0x1234, 0x8180, (unsigned) links + 1, "c0.test",
        GH_DNS_TYPE_A);
    for (int i = links - 1; i >= 0; i--) {
        snprintf(from, sizeof(from), "c%d.test", i);
        snprintf(to, sizeof(to), "c%d.test", i + 1);
        put_name(p, from);
        put16(p, GH_DNS_TYPE_CNAME);
        put16(p, 1);
        put32(p, 10);
        put16(p, (unsigned) strlen(to) + 2);
        put_name(p, to);
    }
    snprintf(from, sizeof(from), "c%d.test", links);
    put_name(p, from);
    put16(p, GH_DNS_TYPE_A);
    put16(p, 1);
    put32(p, 10);
    put16(p, 4);
    put32(p, 0x7f000001);
}

static void
test_parse_cname(void **state)
{
    gh_dns_answer_t ans;
    pkt_t           p;
    size_t          cname_at, lb_at;

    /* www.app.test CNAME lb.app.test (compressed against the question),
     * lb.app.test A, with the address record first */
    pkt_start(&p, 0x1234, 0x8180, 2, "www.app.test", GH_DNS_TYPE_A);
    /* A owned by "lb" + pointer to "app.test" (offset 16) */
    lb_at = p.n;
    put8(&p, 2);
    put8(&p, 'l');
    put8(&p, 'b');
    put_ptr(&p, 16);
    put16(&p, GH_DNS_TYPE_A);
    put16(&p, 1);
    put32(&p, 20);
    put16(&p, 4);
    put32(&p, 0xc0000205);              /* 192.0.2.5 */
    cname_at = p.n;
    put_ptr(&p, 12);
    put16(&p, GH_DNS_TYPE_CNAME);
    put16(&p, 1);
    put32(&p, 10);
    put16(&p, 2);
    put_ptr(&p, (unsigned) lb_at);      /* "lb.app.test" above */
    assert_int_equal(parse(&p, "www.app.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_OK);
    assert_int_equal(ans.naddrs, 1);
    assert_string_equal(addr_text(&ans.addrs[0]), "192.0.2.5");
    assert_int_equal(ans.ttl, 10);      /* the chain's smallest */

    /* a CNAME without the target's records: no address */
    pkt_start(&p, 0x1234, 0x8180, 1, "a.test", GH_DNS_TYPE_A);
    put_ptr(&p, 12);
    put16(&p, GH_DNS_TYPE_CNAME);
    put16(&p, 1);
    put32(&p, 10);
    put16(&p, 8);
    put_name(&p, "b.test");
    assert_int_equal(parse(&p, "a.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_NXDOMAIN);

    /* a -> b -> a: ends, without an address */
    pkt_start(&p, 0x1234, 0x8180, 2, "a.test", GH_DNS_TYPE_A);
    put_ptr(&p, 12);
    put16(&p, GH_DNS_TYPE_CNAME);
    put16(&p, 1);
    put32(&p, 10);
    put16(&p, 8);
    cname_at = p.n;
    put_name(&p, "b.test");
    put_ptr(&p, (unsigned) cname_at);
    put16(&p, GH_DNS_TYPE_CNAME);
    put16(&p, 1);
    put32(&p, 10);
    put16(&p, 2);
    put_ptr(&p, 12);
    assert_int_equal(parse(&p, "a.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_NXDOMAIN);
    assert_int_equal(ans.naddrs, 0);

    /* a chain of 16 links is followed, one of 17 is cut */
    chain(&p, 16);
    assert_int_equal(parse(&p, "c0.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_OK);
    chain(&p, 17);
    assert_int_equal(parse(&p, "c0.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_NXDOMAIN);
}

static void
test_parse_codes(void **state)
{
    gh_dns_answer_t ans;
    pkt_t           p;

    pkt_start(&p, 0x1234, 0x8183, 0, "app.test", GH_DNS_TYPE_A);
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_NXDOMAIN);
    assert_string_equal(gh_resolver_strerror(ans.state), "Host not found");

    pkt_start(&p, 0x1234, 0x8182, 0, "app.test", GH_DNS_TYPE_A);
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_SERVFAIL);

    pkt_start(&p, 0x1234, 0x8185, 0, "app.test", GH_DNS_TYPE_A);
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_REFUSED);

    /* no data */
    pkt_start(&p, 0x1234, 0x8180, 0, "app.test", GH_DNS_TYPE_A);
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_NXDOMAIN);

    /* TC: a failure, whatever records came along */
    pkt_start(&p, 0x1234, 0x8380, 1, "app.test", GH_DNS_TYPE_A);
    put_a(&p, 12, 5, "10.0.0.1");
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_TRUNCATED);

    assert_string_equal(gh_resolver_strerror(GH_RESOLVE_TIMEDOUT),
        "Operation timed out");
    assert_string_equal(gh_resolver_strerror(77), "Unknown error");
}

static void
test_parse_not_ours(void **state)
{
    gh_dns_answer_t ans;
    pkt_t           p;

    /* wrong ID */
    pkt_start(&p, 0x1235, 0x8180, 1, "app.test", GH_DNS_TYPE_A);
    put_a(&p, 12, 5, "10.0.0.1");
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_DECLINED);
    /* a query, not a response */
    pkt_start(&p, 0x1234, 0x0100, 0, "app.test", GH_DNS_TYPE_A);
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_DECLINED);
    /* another opcode */
    pkt_start(&p, 0x1234, 0x8980, 0, "app.test", GH_DNS_TYPE_A);
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_DECLINED);
    /* another question: name, type, class */
    pkt_start(&p, 0x1234, 0x8180, 1, "evil.test", GH_DNS_TYPE_A);
    put_a(&p, 12, 5, "10.0.0.1");
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_DECLINED);
    pkt_start(&p, 0x1234, 0x8180, 0, "app.test", GH_DNS_TYPE_AAAA);
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_DECLINED);
    pkt_start(&p, 0x1234, 0x8180, 0, "app.test", GH_DNS_TYPE_A);
    p.b[p.n - 1] = 3;
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_DECLINED);
    /* no question, two questions */
    pkt_start(&p, 0x1234, 0x8183, 0, "app.test", GH_DNS_TYPE_A);
    p.b[5] = 0;
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_DECLINED);
    p.b[5] = 2;
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_DECLINED);
    /* shorter than a header; the question cut */
    pkt_start(&p, 0x1234, 0x8180, 0, "app.test", GH_DNS_TYPE_A);
    p.n = 11;
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_DECLINED);
    p.n = 20;
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_DECLINED);

    /* the question's name as a pointer to itself, forward, or a loop */
    p.n = 0;
    put16(&p, 0x1234);
    put16(&p, 0x8180);
    put16(&p, 1);
    put16(&p, 0);
    put32(&p, 0);
    put_ptr(&p, 12);
    put32(&p, 0x00010001);
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_DECLINED);
    p.b[13] = 20;
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_DECLINED);
    /* reserved label types 01 and 10 */
    pkt_start(&p, 0x1234, 0x8180, 0, "app.test", GH_DNS_TYPE_A);
    p.b[12] = 0x43;
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_DECLINED);
    p.b[12] = 0x83;
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_DECLINED);
}

static void
test_parse_bad_answers(void **state)
{
    gh_dns_answer_t ans;
    pkt_t           p;
    size_t          at;

    /* ANCOUNT larger than what is there */
    pkt_start(&p, 0x1234, 0x8180, 2, "app.test", GH_DNS_TYPE_A);
    put_a(&p, 12, 5, "10.0.0.1");
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_FORMERR);
    assert_int_equal(ans.naddrs, 0);

    /* RDLENGTH past the end */
    pkt_start(&p, 0x1234, 0x8180, 1, "app.test", GH_DNS_TYPE_A);
    put_a(&p, 12, 5, "10.0.0.1");
    p.b[p.n - 5] = 9;
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_FORMERR);

    /* an A record of 5 bytes */
    pkt_start(&p, 0x1234, 0x8180, 1, "app.test", GH_DNS_TYPE_A);
    put_ptr(&p, 12);
    put16(&p, 1);
    put16(&p, 1);
    put32(&p, 5);
    put16(&p, 5);
    put32(&p, 0);
    put8(&p, 0);
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_FORMERR);

    /* an owner name pointing forward (at itself) */
    pkt_start(&p, 0x1234, 0x8180, 1, "app.test", GH_DNS_TYPE_A);
    at = p.n;
    put_ptr(&p, (unsigned) at);
    put16(&p, 1);
    put16(&p, 1);
    put32(&p, 5);
    put16(&p, 4);
    put32(&p, 0);
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_FORMERR);

    /* a CNAME whose name runs past its RDLENGTH */
    pkt_start(&p, 0x1234, 0x8180, 1, "app.test", GH_DNS_TYPE_A);
    put_ptr(&p, 12);
    put16(&p, GH_DNS_TYPE_CNAME);
    put16(&p, 1);
    put32(&p, 5);
    put16(&p, 3);
    put_name(&p, "b.test");
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_FORMERR);

    /* a name of more than 255 bytes */
    p.n = 0;
    put16(&p, 0x1234);
    put16(&p, 0x8180);
    put16(&p, 1);
    put16(&p, 0);
    put32(&p, 0);
    for (int i = 0; i < 5; i++) {
        put8(&p, 63);
        for (int j = 0; j < 63; j++) {
            put8(&p, 'a');
        }
    }
    put8(&p, 0);
    put32(&p, 0x00010001);
    assert_int_equal(parse(&p, "app.test", GH_DNS_TYPE_A, &ans), GH_DECLINED);
}

/* a small deterministic generator for the mutation tests */
static uint32_t
rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void
test_parse_hostile(void **state)
{
    gh_dns_answer_t ans;
    pkt_t           good, p;
    uint32_t        seed = 12345;
    gh_int_t        rc;

    pkt_start(&good, 0x1234, 0x8180, 3, "www.app.test", GH_DNS_TYPE_A);
    put_ptr(&good, 12);
    put16(&good, GH_DNS_TYPE_CNAME);
    put16(&good, 1);
    put32(&good, 10);
    put16(&good, 5);
    put8(&good, 2);
    put8(&good, 'l');
    put8(&good, 'b');
    put_ptr(&good, 16);
    put_ptr(&good, (unsigned) (good.n - 5));
    put16(&good, GH_DNS_TYPE_A);
    put16(&good, 1);
    put32(&good, 20);
    put16(&good, 4);
    put32(&good, 0x0a000001);
    put_a(&good, 12, 30, "10.0.0.9");
    assert_int_equal(parse(&good, "www.app.test", GH_DNS_TYPE_A, &ans), GH_OK);
    assert_int_equal(ans.state, GH_RESOLVE_OK);

    /* every prefix: declined or answered, never out of bounds */
    for (size_t n = 0; n < good.n; n++) {
        p = good;
        p.n = n;
        rc = parse(&p, "www.app.test", GH_DNS_TYPE_A, &ans);
        assert_true(rc == GH_OK || rc == GH_DECLINED);
        assert_true(ans.naddrs <= GH_DNS_MAX_ADDRS);
    }
    /* mutations: a few random bytes changed, or the packet cut */
    for (int i = 0; i < 20000; i++) {
        p = good;
        for (int k = 1 + (int) (rnd(&seed) % 4); k > 0; k--) {
            p.b[rnd(&seed) % p.n] = (uint8_t) rnd(&seed);
        }
        if (rnd(&seed) % 4 == 0) {
            p.n = rnd(&seed) % (p.n + 1);
        }
        rc = parse(&p, "www.app.test", GH_DNS_TYPE_A, &ans);
        assert_true(rc == GH_OK || rc == GH_DECLINED);
        assert_true(ans.naddrs <= GH_DNS_MAX_ADDRS);
        if (rc == GH_OK && ans.state == GH_RESOLVE_OK) {
            assert_true(ans.naddrs > 0);
        }
    }
}


/* --- a resolver on a loop, against a fake server ------------------------- */

typedef struct {
    int                 fd;
    gh_resolver_server_t addr;
    struct sockaddr_in  from;          /* of the last query */
    uint8_t             q[512];        /* the last query */
    size_t              qn;
} fake_t;

typedef struct {
    int                 calls;
    int                 state;
    size_t              naddrs;
    char                first[64];
    char                last[64];
    gh_resolve_ctx_t   *cancel;        /* done() on it from the handler */
    gh_resolve_ctx_t  **cancel_slot;
    bool                keep;          /* do not call done() */
} got_t;

static gh_loop_t *loop;

static void
fake_open(fake_t *f)
{
    socklen_t len = sizeof(struct sockaddr_in);

    memset(f, 0, sizeof(*f));
    f->fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(f->fd >= 0);
    f->addr.u.sin.sin_family = AF_INET;
    f->addr.u.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->fd, &f->addr.u.sa, sizeof(struct sockaddr_in)),
        0);
    assert_int_equal(getsockname(f->fd, &f->addr.u.sa, &len), 0);
    f->addr.len = len;
}

/* the next query within ms; false if none */
static bool
fake_recv(fake_t *f, int ms)
{
    struct pollfd pfd = { .fd = f->fd, .events = POLLIN };
    socklen_t     len = sizeof(f->from);
    ssize_t       n;

    if (poll(&pfd, 1, ms) != 1) {
        return false;
    }
    n = recvfrom(f->fd, f->q, sizeof(f->q), 0, (struct sockaddr *) &f->from,
        &len);
    assert_true(n > 16);
    f->qn = (size_t) n;
    return true;
}

static unsigned
fake_qtype(const fake_t *f)
{
    return (unsigned) f->q[f->qn - 4] << 8 | f->q[f->qn - 3];
}

static unsigned
fake_id(const fake_t *f)
{
    return (unsigned) f->q[0] << 8 | f->q[1];
}

/* answer the last query: rcode, and addresses (of the query's type) */
static void
fake_answer_ex(fake_t *f, unsigned id, unsigned rcode, uint32_t ttl,
    const char **ips, int nips)
{
    pkt_t p;

    p.n = 0;
    put16(&p, id);
    put16(&p, 0x8180 | rcode);
    put16(&p, 1);
    put16(&p, (unsigned) nips);
    put16(&p, 0);
    put16(&p, 0);
    memcpy(p.b + p.n, f->q + 12, f->qn - 12);
    p.n += f->qn - 12;
    for (int i = 0; i < nips; i++) {
        if (fake_qtype(f) == GH_DNS_TYPE_A) {
            put_a(&p, 12, ttl, ips[i]);
        } else {
            put_aaaa(&p, 12, ttl, ips[i]);
        }
    }
    assert_int_equal(sendto(f->fd, p.b, p.n, 0, (struct sockaddr *) &f->from,
        sizeof(f->from)), (ssize_t) p.n);
}

static void
fake_answer(fake_t *f, uint32_t ttl, const char *ip)
{
    fake_answer_ex(f, fake_id(f), 0, ttl, &ip, ip ? 1 : 0);
}

static void
on_resolved(gh_resolve_ctx_t *ctx)
{
    got_t *g = ctx->data;

    g->calls++;
    g->state = ctx->state;
    g->naddrs = ctx->naddrs;
    g->first[0] = g->last[0] = '\0';
    if (ctx->naddrs) {
        snprintf(g->first, sizeof(g->first), "%s", addr_text(&ctx->addrs[0]));
        snprintf(g->last, sizeof(g->last), "%s",
            addr_text(&ctx->addrs[ctx->naddrs - 1]));
    }
    if (g->cancel) {
        gh_resolve_done(g->cancel);
        *g->cancel_slot = NULL;
        g->cancel = NULL;
    }
    if (!g->keep) {
        gh_resolve_done(ctx);
    }
}

static void
run_until(int *flag, int want, int ms)
{
    struct timespec t0, t;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (*flag < want) {
        gh_loop_run_once(loop, 20);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000
            + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
        {
            break;
        }
    }
}

static void
run_for(int ms)
{
    int never = 0;

    run_until(&never, 1, ms);
}

/* the next query, running the loop meanwhile (resends need it) */
static bool
fake_recv_running(fake_t *f, int ms)
{
    for (int t = 0; t < ms; t += 20) {
        if (fake_recv(f, 0)) {
            return true;
        }
        gh_loop_run_once(loop, 20);
    }
    return fake_recv(f, 0);
}

static gh_int_t
resolve(gh_resolver_t *r, const char *name, gh_msec_t timeout, got_t *g,
    gh_resolve_ctx_t **ctx)
{
    gh_str_t n = fx_str(name);

    return gh_resolve(r, &n, timeout, on_resolved, g, ctx);
}

static int
loop_setup(void **state)
{
    gh_time_init();
    loop = gh_loop_create(64, &quiet);
    return loop ? 0 : -1;
}

static int
loop_teardown(void **state)
{
    gh_loop_destroy(loop);
    loop = NULL;
    return 0;
}

static void
test_cache_and_ttl(void **state)
{
    fake_t            f;
    gh_resolver_t    *r;
    gh_resolve_ctx_t *ctx;
    got_t             g = { 0 };
    gh_msec_t         now;

    fake_open(&f);
    r = gh_resolver_create(loop, &quiet, &f.addr, 1, 0, true, false);
    assert_non_null(r);

    assert_int_equal(resolve(r, "App.Test", 5000, &g, &ctx), GH_AGAIN);
    assert_true(fake_recv(&f, 1000));
    assert_int_equal(fake_qtype(&f), GH_DNS_TYPE_A);
    assert_memory_equal(f.q + 12, "\3app\4test\0", 10);
    fake_answer(&f, 300, "127.0.0.9");
    run_until(&g.calls, 1, 2000);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.state, GH_RESOLVE_OK);
    assert_string_equal(g.first, "127.0.0.9");

    /* from the cache, with the TTL's expiry; the name's case does not
     * matter, nor a trailing dot */
    g.keep = true;
    now = gh_current_msec;
    assert_int_equal(resolve(r, "app.test.", 5000, &g, &ctx), GH_OK);
    assert_int_equal(ctx->state, GH_RESOLVE_OK);
    assert_int_equal(ctx->naddrs, 1);
    assert_true(ctx->valid_until >= now + 299000
        && ctx->valid_until <= now + 300000);
    assert_int_equal(ctx->addrs[0].u.sin.sin_port, 0);
    gh_resolve_done(ctx);
    assert_int_equal(g.calls, 1);
    assert_int_equal(gh_resolver_lookups(r), 1);
    assert_false(fake_recv(&f, 50));

    /* past the TTL: asked again */
    gh_current_msec += 301000;
    g.keep = false;
    assert_int_equal(resolve(r, "app.test", 5000, &g, &ctx), GH_AGAIN);
    assert_true(fake_recv(&f, 1000));
    fake_answer(&f, 0, "127.0.0.10");
    run_until(&g.calls, 2, 2000);
    assert_int_equal(g.calls, 2);
    assert_string_equal(g.first, "127.0.0.10");
    assert_int_equal(gh_resolver_lookups(r), 2);

    /* TTL 0: not served from the cache */
    assert_int_equal(resolve(r, "app.test", 5000, &g, &ctx), GH_AGAIN);
    assert_true(fake_recv(&f, 1000));
    fake_answer(&f, 0, "127.0.0.11");
    run_until(&g.calls, 3, 2000);
    assert_string_equal(g.first, "127.0.0.11");

    gh_resolver_destroy(r);
    close(f.fd);
}

static void
test_valid_and_negative(void **state)
{
    fake_t            f;
    gh_resolver_t    *r;
    gh_resolve_ctx_t *ctx;
    got_t             g = { 0 };
    gh_msec_t         now;

    fake_open(&f);
    /* valid=5s overrides the TTL, as nginx's valid= */
    r = gh_resolver_create(loop, &quiet, &f.addr, 1, 5000, true, false);
    assert_int_equal(resolve(r, "app.test", 5000, &g, &ctx), GH_AGAIN);
    assert_true(fake_recv(&f, 1000));
    fake_answer(&f, 300, "127.0.0.9");
    run_until(&g.calls, 1, 2000);
    g.keep = true;
    now = gh_current_msec;
    assert_int_equal(resolve(r, "app.test", 5000, &g, &ctx), GH_OK);
    assert_true(ctx->valid_until > now + 4000
        && ctx->valid_until <= now + 5000);
    gh_resolve_done(ctx);

    /* NXDOMAIN: reported, and cached briefly (min(valid, 30s)) */
    g.keep = false;
    assert_int_equal(resolve(r, "gone.test", 5000, &g, &ctx), GH_AGAIN);
    assert_true(fake_recv(&f, 1000));
    fake_answer_ex(&f, fake_id(&f), 3, 0, NULL, 0);
    run_until(&g.calls, 2, 2000);
    assert_int_equal(g.state, GH_RESOLVE_NXDOMAIN);
    g.keep = true;
    assert_int_equal(resolve(r, "gone.test", 5000, &g, &ctx), GH_OK);
    assert_int_equal(ctx->state, GH_RESOLVE_NXDOMAIN);
    assert_int_equal(ctx->naddrs, 0);
    gh_resolve_done(ctx);
    assert_false(fake_recv(&f, 50));

    /* an invalid name never reaches the server */
    assert_int_equal(resolve(r, "bad name", 5000, &g, &ctx), GH_OK);
    assert_int_equal(ctx->state, GH_RESOLVE_INVALID);
    gh_resolve_done(ctx);
    assert_int_equal(resolve(r, "", 5000, &g, &ctx), GH_OK);
    assert_int_equal(ctx->state, GH_RESOLVE_INVALID);
    gh_resolve_done(ctx);
    assert_int_equal(gh_resolve(r, NULL, 5000, on_resolved, &g, &ctx),
        GH_ERROR);
    assert_null(ctx);

    gh_resolver_destroy(r);
    close(f.fd);
}

static void
test_coalesce_and_cancel(void **state)
{
    fake_t            f;
    gh_resolver_t    *r;
    gh_resolve_ctx_t *c1, *c2, *c3, *c4;
    got_t             g1 = { 0 }, g2 = { 0 }, g3 = { 0 }, g4 = { 0 };

    fake_open(&f);
    r = gh_resolver_create(loop, &quiet, &f.addr, 1, 0, true, false);

    /* three callers, one query; the third is cancelled before the
     * answer and never called */
    assert_int_equal(resolve(r, "app.test", 5000, &g1, &c1), GH_AGAIN);
    assert_int_equal(resolve(r, "APP.test", 5000, &g2, &c2), GH_AGAIN);
    assert_int_equal(resolve(r, "app.test", 5000, &g3, &c3), GH_AGAIN);
    gh_resolve_done(c3);
    assert_true(fake_recv(&f, 1000));
    assert_false(fake_recv(&f, 50));
    assert_int_equal(gh_resolver_lookups(r), 1);
    fake_answer(&f, 60, "127.0.0.5");
    run_until(&g2.calls, 1, 2000);
    assert_int_equal(g1.calls, 1);
    assert_int_equal(g2.calls, 1);
    assert_int_equal(g3.calls, 0);
    assert_string_equal(g1.first, "127.0.0.5");
    assert_string_equal(g2.first, "127.0.0.5");

    /* a handler cancelling another waiter of the same answer */
    assert_int_equal(resolve(r, "other.test", 5000, &g3, &c3), GH_AGAIN);
    assert_int_equal(resolve(r, "other.test", 5000, &g4, &c4), GH_AGAIN);
    g3.cancel = c4;
    g3.cancel_slot = &c4;
    assert_true(fake_recv(&f, 1000));
    fake_answer(&f, 60, "127.0.0.6");
    run_until(&g3.calls, 1, 2000);
    run_for(50);
    assert_int_equal(g3.calls, 1);
    assert_int_equal(g4.calls, 0);
    assert_null(c4);

    /* cancelled while nobody else waits: the lookup is dropped (its
     * socket closed), the answer goes nowhere, the next call asks again */
    assert_int_equal(resolve(r, "third.test", 5000, &g4, &c4), GH_AGAIN);
    gh_resolve_done(c4);
    assert_true(fake_recv(&f, 1000));
    fake_answer(&f, 60, "127.0.0.7");
    run_for(100);
    assert_int_equal(g4.calls, 0);
    assert_int_equal(resolve(r, "third.test", 5000, &g4, &c4), GH_AGAIN);
    assert_true(fake_recv(&f, 1000));
    fake_answer(&f, 60, "127.0.0.7");
    run_until(&g4.calls, 1, 2000);
    assert_string_equal(g4.first, "127.0.0.7");

    /* destroy with a lookup and a caller pending: no call, and the
     * caller's done() afterwards is still fine */
    g4.calls = 0;
    assert_int_equal(resolve(r, "late.test", 5000, &g4, &c4), GH_AGAIN);
    gh_resolver_destroy(r);
    assert_int_equal(g4.calls, 0);
    gh_resolve_done(c4);
    run_for(50);
    close(f.fd);
}

static void
test_resend_and_timeout(void **state)
{
    fake_t            f;
    gh_resolver_t    *r;
    gh_resolve_ctx_t *c1, *c2;
    got_t             g1 = { 0 }, g2 = { 0 };
    struct sockaddr_in first;
    unsigned          id;

    fake_open(&f);
    r = gh_resolver_create(loop, &quiet, &f.addr, 1, 0, true, false);

    /* one server: the same datagram again after a second, same socket
     * and ID; the short caller gives up on its own */
    assert_int_equal(resolve(r, "slow.test", 1600, &g1, &c1), GH_AGAIN);
    assert_int_equal(resolve(r, "slow.test", 300, &g2, &c2), GH_AGAIN);
    assert_true(fake_recv(&f, 1000));
    first = f.from;
    id = fake_id(&f);
    run_until(&g2.calls, 1, 1000);
    assert_int_equal(g2.calls, 1);
    assert_int_equal(g2.state, GH_RESOLVE_TIMEDOUT);
    assert_int_equal(g1.calls, 0);
    assert_true(fake_recv_running(&f, 1200));
    assert_int_equal(fake_id(&f), id);
    assert_int_equal(f.from.sin_port, first.sin_port);
    run_until(&g1.calls, 1, 2000);
    assert_int_equal(g1.calls, 1);
    assert_int_equal(g1.state, GH_RESOLVE_TIMEDOUT);
    assert_string_equal(gh_resolver_strerror(g1.state),
        "Operation timed out");

    /* a caller alone whose time runs out takes the lookup with it */
    assert_int_equal(resolve(r, "alone.test", 200, &g2, &c2), GH_AGAIN);
    assert_true(fake_recv(&f, 1000));
    run_until(&g2.calls, 2, 1000);
    assert_int_equal(g2.state, GH_RESOLVE_TIMEDOUT);
    fake_answer(&f, 60, "127.0.0.8");
    run_for(50);
    assert_int_equal(resolve(r, "alone.test", 2000, &g2, &c2), GH_AGAIN);
    assert_true(fake_recv(&f, 1000));
    fake_answer(&f, 60, "127.0.0.8");
    run_until(&g2.calls, 3, 1000);
    assert_int_equal(g2.state, GH_RESOLVE_OK);

    /* a timeout is not cached */
    assert_int_equal(resolve(r, "slow.test", 2000, &g1, &c1), GH_AGAIN);
    assert_true(fake_recv(&f, 1000));
    fake_answer(&f, 60, "127.0.0.8");
    run_until(&g1.calls, 2, 2000);
    assert_int_equal(g1.state, GH_RESOLVE_OK);

    gh_resolver_destroy(r);
    close(f.fd);
}

static void
test_rotation(void **state)
{
    fake_t               silent, f;
    gh_resolver_server_t servers[2];
    gh_resolver_t       *r;
    gh_resolve_ctx_t    *ctx;
    got_t                g = { 0 };

    fake_open(&silent);
    fake_open(&f);
    servers[0] = silent.addr;
    servers[1] = f.addr;
    r = gh_resolver_create(loop, &quiet, servers, 2, 0, true, false);
    assert_int_equal(resolve(r, "app.test", 4000, &g, &ctx), GH_AGAIN);
    assert_true(fake_recv(&silent, 1000));
    assert_false(fake_recv(&f, 10));
    /* after a second: the other server */
    assert_true(fake_recv_running(&f, 1500));
    fake_answer(&f, 60, "127.0.0.12");
    run_until(&g.calls, 1, 2000);
    assert_int_equal(g.state, GH_RESOLVE_OK);
    assert_string_equal(g.first, "127.0.0.12");
    gh_resolver_destroy(r);
    close(silent.fd);
    close(f.fd);
}

static void
test_forged_answers(void **state)
{
    fake_t            f, other;
    gh_resolver_t    *r;
    gh_resolve_ctx_t *ctx;
    got_t             g = { 0 };
    const char       *ip = "6.6.6.6";
    pkt_t             junk;

    fake_open(&f);
    fake_open(&other);
    r = gh_resolver_create(loop, &quiet, &f.addr, 1, 0, true, false);
    assert_int_equal(resolve(r, "app.test", 4000, &g, &ctx), GH_AGAIN);
    assert_true(fake_recv(&f, 1000));

    /* a wrong ID, garbage, and a right answer from another address */
    fake_answer_ex(&f, fake_id(&f) ^ 1, 0, 60, &ip, 1);
    memset(junk.b, 0xc0, 64);
    assert_int_equal(sendto(f.fd, junk.b, 64, 0,
        (struct sockaddr *) &f.from, sizeof(f.from)), 64);
    other.from = f.from;
    memcpy(other.q, f.q, f.qn);
    other.qn = f.qn;
    fake_answer(&other, 60, ip);
    run_for(200);
    assert_int_equal(g.calls, 0);

    fake_answer(&f, 60, "127.0.0.13");
    run_until(&g.calls, 1, 2000);
    assert_int_equal(g.calls, 1);
    assert_string_equal(g.first, "127.0.0.13");
    gh_resolver_destroy(r);
    close(f.fd);
    close(other.fd);
}

static void
test_a_and_aaaa(void **state)
{
    fake_t            f;
    gh_resolver_t    *r;
    gh_resolve_ctx_t *ctx;
    got_t             g = { 0 };
    fake_t            qa, qaaaa;

    fake_open(&f);
    r = gh_resolver_create(loop, &quiet, &f.addr, 1, 0, true, true);
    assert_int_equal(resolve(r, "dual.test", 4000, &g, &ctx), GH_AGAIN);
    assert_true(fake_recv(&f, 1000));
    qa = f;
    assert_true(fake_recv(&f, 1000));
    qaaaa = f;
    if (fake_qtype(&qa) != GH_DNS_TYPE_A) {
        qaaaa = qa;
        qa = f;
    }
    assert_int_equal(fake_qtype(&qa), GH_DNS_TYPE_A);
    assert_int_equal(fake_qtype(&qaaaa), GH_DNS_TYPE_AAAA);
    /* AAAA answered first; IPv4 still comes first in the result */
    fake_answer(&qaaaa, 60, "::1");
    run_for(50);
    assert_int_equal(g.calls, 0);
    fake_answer(&qa, 60, "127.0.0.1");
    run_until(&g.calls, 1, 2000);
    assert_int_equal(g.naddrs, 2);
    assert_string_equal(g.first, "127.0.0.1");
    assert_string_equal(g.last, "::1");

    /* no AAAA record: the A answer alone */
    assert_int_equal(resolve(r, "v4.test", 4000, &g, &ctx), GH_AGAIN);
    assert_true(fake_recv(&f, 1000));
    qa = f;
    assert_true(fake_recv(&f, 1000));
    fake_answer(&f, 60, fake_qtype(&f) == GH_DNS_TYPE_A ? "10.0.0.3" : NULL);
    fake_answer(&qa, 60, fake_qtype(&qa) == GH_DNS_TYPE_A ? "10.0.0.3" : NULL);
    run_until(&g.calls, 2, 2000);
    assert_int_equal(g.state, GH_RESOLVE_OK);
    assert_int_equal(g.naddrs, 1);
    gh_resolver_destroy(r);
    close(f.fd);
}


/* --- upstream side ------------------------------------------------------- */

static gh_resolver_addr_t
ip4(const char *s)
{
    gh_resolver_addr_t a;

    memset(&a, 0, sizeof(a));
    a.u.sin.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, s, &a.u.sin.sin_addr), 1);
    a.len = sizeof(struct sockaddr_in);
    return a;
}

static gh_upstream_peer_t *
peer_named(gh_upstream_peer_t *list, const char *name)
{
    for (; list; list = list->next) {
        if (strcmp(list->name, name) == 0) {
            return list;
        }
    }
    return NULL;
}

static size_t
list_len(gh_upstream_peer_t *p)
{
    size_t n = 0;

    for (; p; p = p->next) {
        n++;
    }
    return n;
}

static void
test_server_peers(void **state)
{
    gh_arena_t             *a = gh_arena_create(4096, 0);
    gh_upstream_srv_conf_t *us = gh_calloc(a, sizeof(*us));
    gh_upstream_server_t    s, other;
    gh_upstream_peer_t      fixed, *retired = NULL, *p1, *p2, *p;
    gh_resolver_addr_t      addrs[3];

    memset(&s, 0, sizeof(s));
    s.name = fx_str("app.test:8080");
    s.weight = 2;
    s.max_fails = 1;
    s.fail_timeout = 10000;
    memset(&other, 0, sizeof(other));
    other.name = fx_str("127.0.0.1:9");
    memset(&fixed, 0, sizeof(fixed));
    snprintf(fixed.name, sizeof(fixed.name), "127.0.0.1:9");
    fixed.server = other.name;
    us->peers = &fixed;
    us->npeers = 1;
    gh_str_set(&us->host, "backend");

    addrs[0] = ip4("10.0.0.1");
    addrs[1] = ip4("10.0.0.2");
    addrs[2] = ip4("10.0.0.1");
    assert_true(gh_upstream_set_server_addrs(us, &s, 8080, addrs, 3,
        &retired, NULL));
    assert_int_equal(us->generation, 1);
    assert_int_equal(us->npeers, 3);
    assert_int_equal(list_len(us->peers), 3);
    assert_ptr_equal(us->peers, &fixed);
    p1 = peer_named(us->peers, "10.0.0.1:8080");
    p2 = peer_named(us->peers, "10.0.0.2:8080");
    assert_non_null(p1);
    assert_non_null(p2);
    assert_int_equal(p1->weight, 2);
    assert_int_equal(ntohs(((struct sockaddr_in *) &p1->sockaddr)->sin_port),
        8080);

    /* the same answer: nothing changes */
    assert_false(gh_upstream_set_server_addrs(us, &s, 8080, addrs, 2,
        &retired, NULL));
    assert_int_equal(us->generation, 1);

    /* 10.0.0.2 goes, 10.0.0.3 comes; 10.0.0.1 keeps its object and its
     * failures */
    gh_upstream_st(p1)->fails = 1;    /* issue 6: state via gh_upstream_st */
    gh_upstream_st(p1)->conns = 2;
    addrs[1] = ip4("10.0.0.3");
    assert_true(gh_upstream_set_server_addrs(us, &s, 8080, addrs, 2,
        &retired, NULL));
    assert_int_equal(us->npeers, 3);
    assert_ptr_equal(peer_named(us->peers, "10.0.0.1:8080"), p1);
    assert_int_equal(gh_upstream_st(p1)->fails, 1);
    assert_null(peer_named(us->peers, "10.0.0.2:8080"));
    assert_ptr_equal(retired, p2);
    assert_non_null(peer_named(us->peers, "10.0.0.3:8080"));

    /* 10.0.0.2 comes back: the same object, fresh state */
    gh_upstream_st(p2)->fails = 5;
    gh_upstream_st(p2)->conns = 1;
    addrs[0] = ip4("10.0.0.2");
    assert_true(gh_upstream_set_server_addrs(us, &s, 8080, addrs, 1,
        &retired, NULL));
    assert_int_equal(us->npeers, 2);
    assert_ptr_equal(peer_named(us->peers, "10.0.0.2:8080"), p2);
    assert_int_equal(gh_upstream_st(p2)->fails, 0);
    assert_int_equal(gh_upstream_st(p2)->conns, 1);
    assert_int_equal(gh_upstream_st(p2)->effective_weight, 2);
    assert_int_equal(list_len(retired), 2);

    /* the name is gone: only the other server's peer stays */
    assert_true(gh_upstream_set_server_addrs(us, &s, 8080, NULL, 0,
        &retired, NULL));
    assert_int_equal(us->npeers, 1);
    assert_ptr_equal(us->peers, &fixed);
    assert_null(fixed.next);

    while ((p = retired) != NULL) {
        retired = p->next;
        free(p);
    }
    gh_arena_destroy(a);
}

static void
test_names_and_groups(void **state)
{
    gh_arena_t             *a = gh_arena_create(4096, 0);
    gh_upstream_srv_conf_t *us;
    gh_resolver_addr_t      addrs[2];
    gh_str_t                n, host;
    const char             *err = NULL;
    int                     port;

    n = fx_str("app.test");
    assert_true(gh_upstream_server_is_name(&n));
    n = fx_str("app.test:81");
    assert_true(gh_upstream_server_is_name(&n));
    n = fx_str("127.0.0.1:81");
    assert_false(gh_upstream_server_is_name(&n));
    n = fx_str("[::1]:81");
    assert_false(gh_upstream_server_is_name(&n));
    n = fx_str("unix:/tmp/x.sock");
    assert_false(gh_upstream_server_is_name(&n));

    n = fx_str("app.test:81");
    assert_int_equal(gh_upstream_split_host_port(&n, &host, &port, &err),
        GH_OK);
    assert_int_equal(port, 81);
    assert_int_equal(host.len, 8);
    n = fx_str("app.test");
    assert_int_equal(gh_upstream_split_host_port(&n, &host, &port, &err),
        GH_OK);
    assert_int_equal(port, 80);
    n = fx_str("app.test:0");
    assert_int_equal(gh_upstream_split_host_port(&n, &host, &port, &err),
        GH_ERROR);
    assert_string_equal(err, "invalid port");
    n = fx_str(":80");
    assert_int_equal(gh_upstream_split_host_port(&n, &host, &port, &err),
        GH_ERROR);
    assert_string_equal(err, "no host");

    addrs[0] = ip4("127.0.0.2");
    memset(&addrs[1], 0, sizeof(addrs[1]));
    addrs[1].u.sin6.sin6_family = AF_INET6;
    addrs[1].u.sin6.sin6_addr = in6addr_loopback;
    addrs[1].len = sizeof(struct sockaddr_in6);
    host = fx_str("app.test");
    us = gh_upstream_resolved_group(a, &host, 8080, addrs, 2);
    assert_non_null(us);
    assert_int_equal(us->npeers, 2);
    assert_string_equal(us->peers->name, "127.0.0.2:8080");
    assert_string_equal(us->peers->next->name, "[::1]:8080");
    assert_null(us->peers->next->next);
    gh_arena_destroy(a);
}


/* --- configuration ------------------------------------------------------- */

static const char *
init_mains(void)
{
    const char *rv;

    rv = gh_http_upstream_module.init_main_conf(&fx.cf,
        fx.http.main_conf[gh_http_upstream_module.index]);
    if (rv == NULL) {
        rv = gh_http_resolver_module.init_main_conf(&fx.cf,
            fx.http.main_conf[gh_http_resolver_module.index]);
    }
    return rv;
}

static void
expect_conf(const char *conf, const char *msg)
{
    gh_int_t    rc;
    const char *log;

    fx_setup(NULL);
    gh_log_startup_style = false;
    rc = fx_dispatch(conf);
    if (rc == GH_OK && init_mains() != NULL) {
        rc = GH_ERROR;
    }
    log = fx_log_take();
    if ((msg == NULL) != (rc == GH_OK)
        || (msg != NULL && strstr(log, msg) == NULL))
    {
        print_error("config: %s\nwanted: %s\nlogged: %s\n", conf,
            msg ? msg : "(success)", log);
        fx_teardown(NULL);
        fail();
    }
    fx_teardown(NULL);
}

static void
test_conf(void **state)
{
    expect_conf("resolver 127.0.0.1:5353 [::1] valid=30s ipv6=off "
        "status_zone=z;\nresolver_timeout 5s;\n", NULL);
    expect_conf("resolver 127.0.0.1 ipv4=off;\n", NULL);
    expect_conf("resolver 127.0.0.1;\n"
        "upstream b { server app.test:8080 resolve; }\n", NULL);
    /* a literal with resolve: nothing to resolve, no resolver needed */
    expect_conf("upstream b { server 127.0.0.1 resolve; }\n", NULL);
    /* a block of resolve names alone starts with no peers */
    expect_conf("resolver 127.0.0.1;\n"
        "upstream b { server app.test resolve;\n"
        "             server app2.test resolve backup; }\n",
        NULL);

    expect_conf("upstream b {\n server app.test:8080 resolve;\n}\n",
        "no resolver defined to resolve app.test:8080 in upstream \"b\" in "
        "/test.conf:2");
    expect_conf("resolver 127.0.0.1;\nresolver 127.0.0.2;\n",
        "\"resolver\" directive is duplicate");
    expect_conf("resolver valid=10s;\n",
        "\"resolver\" directive has no name server address");
    expect_conf("resolver 127.0.0.1 valid=x;\n",
        "invalid parameter \"valid=x\"");
    expect_conf("resolver 127.0.0.1 ipv6=maybe;\n",
        "invalid parameter \"ipv6=maybe\"");
    expect_conf("resolver 127.0.0.1 ipv4=off ipv6=off;\n",
        "\"ipv4\" and \"ipv6\" cannot both be \"off\"");
    expect_conf("resolver 127.0.0.1:99999;\n",
        "invalid port in resolver \"127.0.0.1:99999\"");
    expect_conf("resolver unix:/tmp/x;\n",
        "invalid parameter \"unix:/tmp/x\"");
    expect_conf("resolver_timeout soon;\n",
        "\"resolver_timeout\" directive invalid value \"soon\"");
    expect_conf("upstream b { server app.test:0 resolve; }\n",
        "invalid port in upstream \"app.test:0\"");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_name),
        cmocka_unit_test(test_build_query),
        cmocka_unit_test(test_parse_a),
        cmocka_unit_test(test_parse_cname),
        cmocka_unit_test(test_parse_codes),
        cmocka_unit_test(test_parse_not_ours),
        cmocka_unit_test(test_parse_bad_answers),
        cmocka_unit_test(test_parse_hostile),
        cmocka_unit_test_setup_teardown(test_cache_and_ttl, loop_setup,
            loop_teardown),
        cmocka_unit_test_setup_teardown(test_valid_and_negative, loop_setup,
            loop_teardown),
        cmocka_unit_test_setup_teardown(test_coalesce_and_cancel, loop_setup,
            loop_teardown),
        cmocka_unit_test_setup_teardown(test_resend_and_timeout, loop_setup,
            loop_teardown),
        cmocka_unit_test_setup_teardown(test_rotation, loop_setup,
            loop_teardown),
        cmocka_unit_test_setup_teardown(test_forged_answers, loop_setup,
            loop_teardown),
        cmocka_unit_test_setup_teardown(test_a_and_aaaa, loop_setup,
            loop_teardown),
        cmocka_unit_test(test_server_peers),
        cmocka_unit_test(test_names_and_groups),
        cmocka_unit_test(test_conf),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
