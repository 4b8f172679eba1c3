/*
 * fuzz_h1_response.c: libFuzzer target for gh_http_parse_response_head().
 *
 * Upstream bytes are as untrusted as client bytes.  As for requests: one
 * call, one byte more per call, and a split at a point from the input
 * with the rest in a moved buffer must all agree, and a parsed head must
 * keep the promises of the header.
 */
#include "http/gh_http_parse.h"

#define MAXH 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    ssize_t                 rc;
    gh_http_status_head_t   s;
    gh_http_header_t        h[MAXH];
    size_t                  nh;
} res_t;

static const gh_http_limits_t limits = { 1024, 256, MAXH };

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static void
check_in(const gh_str_t *s, const uint8_t *base, size_t n)
{
    CHECK(s->data != NULL || s->len == 0);
    if (s->data) {
        CHECK(s->data >= base && s->data + s->len <= base + n);
    }
}

static void
same_slice(const gh_str_t *a, const gh_str_t *b)
{
    CHECK(a->len == b->len);
    if (a->len) {
        CHECK(memcmp(a->data, b->data, a->len) == 0);
    }
}

static void
same(const res_t *a, const res_t *b)
{
    size_t i;

    CHECK(a->rc == b->rc);
    if (a->rc < 0) {
        return;
    }
    CHECK(a->nh == b->nh);
    CHECK(a->s.status == b->s.status);
    CHECK(a->s.http_minor == b->s.http_minor);
    same_slice(&a->s.reason, &b->s.reason);
    for (i = 0; i < a->nh; i++) {
        same_slice(&a->h[i].name, &b->h[i].name);
        same_slice(&a->h[i].value, &b->h[i].value);
    }
}

static void
check_result(const res_t *q, const uint8_t *buf, size_t size)
{
    size_t i, j, n;

    if (q->rc < 0) {
        CHECK(q->rc == GH_AGAIN || (q->rc <= -100 && q->rc >= -106));
        CHECK(q->rc != GH_HTTP_PARSE_VERSION
              && q->rc != GH_HTTP_PARSE_URI_TOO_LONG
              && q->rc != GH_HTTP_PARSE_INVALID_METHOD);
        return;
    }

    n = (size_t) q->rc;
    CHECK(n <= size && n >= 14 && buf[n - 1] == '\n');
    CHECK(memcmp(buf, "HTTP/1.", 7) == 0);
    CHECK(q->s.http_major == 1 && q->s.http_minor <= 1);
    CHECK(q->s.status >= 100 && q->s.status <= 999);
    CHECK(q->nh <= MAXH);
    check_in(&q->s.reason, buf, n);
    for (i = 0; i < q->s.reason.len; i++) {
        uint8_t c = q->s.reason.data[i];
        CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
    }
    for (i = 0; i < q->nh; i++) {
        check_in(&q->h[i].name, buf, n);
        check_in(&q->h[i].value, buf, n);
        CHECK(q->h[i].name.len > 0);
        for (j = 0; j < q->h[i].value.len; j++) {
            uint8_t c = q->h[i].value.data[j];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
    }
}

static void
parse(res_t *q, const uint8_t *buf, size_t len)
{
    q->rc = gh_http_parse_response_head(buf, len, &q->s, q->h, &q->nh,
                                        &limits);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static res_t  one, inc, two;
    uint8_t      *copy, *first, *second;
    size_t        k, split;

    copy = malloc(size ? size : 1);
    memcpy(copy, data, size);

    memset(&one, 0, sizeof(one));
    parse(&one, copy, size);
    check_result(&one, copy, size);

    memset(&inc, 0, sizeof(inc));
    inc.rc = GH_AGAIN;
    for (k = 0; k <= size && inc.rc == GH_AGAIN; k++) {
        parse(&inc, copy, k);
    }
    same(&one, &inc);

    /* split at a point from the input; the first part in a buffer that
     * is then wiped, the rest in a new one (the caller moved its buffer) */
    split = size ? (data[size - 1] * 31u + data[0]) % size : 0;
    first = malloc(split ? split : 1);
    memcpy(first, data, split);
    memset(&two, 0, sizeof(two));
    parse(&two, first, split);
    memset(first, 0xAA, split);
    if (two.rc == GH_AGAIN) {
        second = malloc(size ? size : 1);
        memcpy(second, data, size);
        parse(&two, second, size);
        same(&one, &two);
        free(second);
    } else if (two.rc < 0) {
        /* refused within the first part: the same as one-shot */
        same(&one, &two);
    } else {
        /* done within the first part (its slices are wiped now) */
        CHECK(two.rc == one.rc);
    }
    free(first);

    free(copy);
    return 0;
}
