/*
 * fuzz_dns.c: libFuzzer target for the DNS answer parser
 * (gh_dns_parse_response) and the name encoder (gh_dns_encode_name).
 *
 * The first byte picks the record type asked for (bit 0: AAAA, else A);
 * the rest is the datagram, parsed as the answer to a query for
 * "www.example.com" whose ID is the datagram's own (so the fuzzer gets
 * past the ID check and into the question and answer sections; the
 * seeds in corpus/dns/ carry that question).  Whatever the bytes: the
 * parser returns OK or DECLINED, never reports more addresses than it
 * has room for, only addresses of the type asked for, at least one when
 * it says OK, and the same result twice.  The encoder, fed the raw
 * bytes as a name, either refuses them or yields a well-formed wire
 * name of at most 255 bytes.
 */
#include "event/gh_resolver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static void
check_answer(const gh_dns_answer_t *a, gh_int_t rc, uint16_t qtype)
{
    CHECK(rc == GH_OK || rc == GH_DECLINED);
    CHECK(a->naddrs <= GH_DNS_MAX_ADDRS);
    if (rc != GH_OK) {
        return;
    }
    if (a->state == GH_RESOLVE_OK) {
        CHECK(a->naddrs > 0);
    } else {
        CHECK(a->naddrs == 0);
    }
    for (size_t i = 0; i < a->naddrs; i++) {
        if (qtype == GH_DNS_TYPE_A) {
            CHECK(a->addrs[i].u.sa.sa_family == AF_INET);
            CHECK(a->addrs[i].len == sizeof(struct sockaddr_in));
        } else {
            CHECK(a->addrs[i].u.sa.sa_family == AF_INET6);
            CHECK(a->addrs[i].len == sizeof(struct sockaddr_in6));
        }
    }
}

static void
check_encode(const uint8_t *data, size_t size)
{
    uint8_t out[GH_DNS_NAME_MAX];
    size_t  n, i;

    n = gh_dns_encode_name(data, size, out, sizeof(out));
    if (n == 0) {
        return;
    }
    CHECK(n <= GH_DNS_NAME_MAX);
    for (i = 0; out[i] != 0; i += 1 + out[i]) {
        CHECK(out[i] <= 63);
        CHECK(i + 1 + out[i] < n);
        for (size_t j = 1; j <= out[i]; j++) {
            CHECK(out[i + j] != '.' && !(out[i + j] >= 'A'
                && out[i + j] <= 'Z'));
        }
    }
    CHECK(i + 1 == n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t qname[] = "\3www\7example\3com";
    gh_dns_answer_t      one, two;
    uint16_t             qtype, id;
    gh_int_t             rc1, rc2;

    if (size < 1) {
        return 0;
    }
    qtype = (data[0] & 1) ? GH_DNS_TYPE_AAAA : GH_DNS_TYPE_A;
    data++;
    size--;
    check_encode(data, size);

    id = size >= 2 ? (uint16_t) (data[0] << 8 | data[1]) : 0;
    /* sizeof includes the root label's 0 */
    rc1 = gh_dns_parse_response(data, size, id, qname, sizeof(qname), qtype,
        &one);
    check_answer(&one, rc1, qtype);
    rc2 = gh_dns_parse_response(data, size, id, qname, sizeof(qname), qtype,
        &two);
    CHECK(rc1 == rc2);
    if (rc1 == GH_OK) {
        CHECK(one.state == two.state && one.ttl == two.ttl
              && one.naddrs == two.naddrs);
        CHECK(one.naddrs == 0 || memcmp(one.addrs, two.addrs,
            one.naddrs * sizeof(one.addrs[0])) == 0);
    }
    return 0;
}
