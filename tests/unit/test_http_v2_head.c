/*
 * test_http_v2_head.c: an HTTP/2 request head collected field by field
 * and rebuilt as HTTP/1.1 text (src/http/v2/gh_http_v2_head.c); the text
 * must be what the HTTP/1 parser reads back to the same request.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>

#include "http/v2/gh_http_v2_head.h"
#include "http/gh_http_parse.h"

static gh_int_t
add(gh_http_v2_head_t *h, const char *n, const char *v)
{
    return gh_http_v2_head_add(h, (const uint8_t *) n, strlen(n),
                               (const uint8_t *) v, strlen(v));
}

/* the rebuilt text as a NUL-terminated string (caller frees), NULL when
 * the build refuses */
static char *
build(gh_http_v2_head_t *h, bool has_body)
{
    size_t size = gh_http_v2_head_text_size(h);
    char *out = malloc(size + 1);
    ssize_t n = gh_http_v2_head_build(h, has_body, (uint8_t *) out);
    if (n < 0) {
        free(out);
        return NULL;
    }
    assert_true((size_t) n <= size);
    out[n] = '\0';
    return out;
}

static void
test_request_line_host_order(void **state)
{
    gh_http_v2_head_t h = { .max = 4096 };
    (void) state;
    assert_int_equal(add(&h, ":method", "GET"), GH_OK);
    assert_int_equal(add(&h, ":scheme", "https"), GH_OK);
    assert_int_equal(add(&h, ":authority", "a.test:8443"), GH_OK);
    assert_int_equal(add(&h, ":path", "/p?q=1"), GH_OK);
    assert_int_equal(add(&h, "host", "other"), GH_OK);
    assert_int_equal(add(&h, "x-b", "2"), GH_OK);
    assert_int_equal(add(&h, "accept", "*/*"), GH_OK);
    assert_int_equal(add(&h, "expect", "100-continue"), GH_OK);
    char *t = build(&h, false);
    /* :authority wins over host, :scheme is the connection's business,
     * fields keep their order, Expect is gone */
    assert_string_equal(t, "GET /p?q=1 HTTP/1.1\r\nHost: a.test:8443\r\n"
                        "x-b: 2\r\naccept: */*\r\n\r\n");

    /* the HTTP/1 parser reads it back whole */
    gh_http_request_head_t r;
    gh_http_header_t hd[8];
    size_t nh = 0;
    gh_http_limits_t lim = { 8192, 8192, 8 };
    memset(&r, 0, sizeof(r));
    ssize_t rc = gh_http_parse_request_head((uint8_t *) t, strlen(t), &r, hd,
                                            &nh, &lim);
    assert_int_equal(rc, (ssize_t) strlen(t));
    assert_int_equal(nh, 3);
    assert_int_equal(r.method_id, GH_HTTP_GET);
    free(t);
    gh_http_v2_head_free(&h);
}

static void
test_host_field_without_authority(void **state)
{
    gh_http_v2_head_t h = { .max = 4096 };
    (void) state;
    add(&h, ":method", "GET");
    add(&h, ":path", "/");
    add(&h, "host", "first");
    add(&h, "host", "second");
    char *t = build(&h, false);
    assert_string_equal(t, "GET / HTTP/1.1\r\nHost: first\r\n\r\n");
    free(t);
    gh_http_v2_head_free(&h);

    /* neither: no Host line (the HTTP/1 code answers as for 1.1) */
    h.max = 4096;
    add(&h, ":method", "GET");
    add(&h, ":path", "/");
    t = build(&h, false);
    assert_string_equal(t, "GET / HTTP/1.1\r\n\r\n");
    free(t);
    gh_http_v2_head_free(&h);
}

static void
test_cookies_joined(void **state)
{
    gh_http_v2_head_t h = { .max = 4096 };
    (void) state;
    add(&h, ":method", "GET");
    add(&h, ":path", "/");
    add(&h, "cookie", "a=1");
    add(&h, "x", "y");
    add(&h, "cookie", "b=2");
    add(&h, "cookie", "c=3");
    char *t = build(&h, false);
    assert_string_equal(t, "GET / HTTP/1.1\r\nx: y\r\n"
                        "Cookie: a=1; b=2; c=3\r\n\r\n");
    free(t);
    gh_http_v2_head_free(&h);
}

static void
test_body_framing(void **state)
{
    gh_http_v2_head_t h = { .max = 4096 };
    (void) state;
    add(&h, ":method", "POST");
    add(&h, ":path", "/u");
    add(&h, "content-length", "12");
    char *t = build(&h, true);
    assert_string_equal(t, "POST /u HTTP/1.1\r\nContent-Length: 12\r\n\r\n");
    free(t);
    /* the declared length goes on whether DATA follows or not (nghttp2
     * holds the stream to it) */
    t = build(&h, false);
    assert_string_equal(t, "POST /u HTTP/1.1\r\nContent-Length: 12\r\n\r\n");
    free(t);
    gh_http_v2_head_free(&h);

    h.max = 4096;
    add(&h, ":method", "POST");
    add(&h, ":path", "/u");
    t = build(&h, true);
    assert_string_equal(t, "POST /u HTTP/1.1\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n");
    free(t);
    t = build(&h, false);
    assert_string_equal(t, "POST /u HTTP/1.1\r\n\r\n");
    free(t);
    gh_http_v2_head_free(&h);
}

static void
test_refused(void **state)
{
    gh_http_v2_head_t h = { .max = 4096 };
    (void) state;
    /* no :path, no :method */
    add(&h, ":method", "GET");
    assert_null(build(&h, false));
    gh_http_v2_head_free(&h);
    h.max = 4096;
    add(&h, ":path", "/");
    assert_null(build(&h, false));
    gh_http_v2_head_free(&h);

    /* duplicates */
    h.max = 4096;
    assert_int_equal(add(&h, ":path", "/"), GH_OK);
    assert_int_equal(add(&h, ":path", "/b"), GH_ERROR);
    gh_http_v2_head_free(&h);
    h.max = 4096;
    assert_int_equal(add(&h, "content-length", "1"), GH_OK);
    assert_int_equal(add(&h, "content-length", "1"), GH_ERROR);
    gh_http_v2_head_free(&h);
    h.max = 4096;
    assert_int_equal(add(&h, "content-length", "12345678901234567890"),
                     GH_ERROR);
    gh_http_v2_head_free(&h);
}

static void
test_size_limit(void **state)
{
    gh_http_v2_head_t h = { .max = 1000 };
    char v[400];
    (void) state;
    memset(v, 'v', sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    /* 32 + name + value each (RFC 9113 6.5.2), pseudo-headers and
     * cookies included: an HPACK bomb of references stops here */
    assert_int_equal(add(&h, ":method", "GET"), GH_OK);
    assert_int_equal(add(&h, "cookie", v), GH_OK);
    assert_int_equal(add(&h, "x-a", v), GH_OK);
    assert_int_equal(h.size, (7 + 3 + 32) + (6 + 399 + 32) + (3 + 399 + 32));
    assert_int_equal(add(&h, "x-b", v), GH_ERROR);
    assert_true(h.hlen < h.max);
    gh_http_v2_head_free(&h);
    assert_int_equal(h.max, 1000);
    assert_null(h.hdrs);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_line_host_order),
        cmocka_unit_test(test_host_field_without_authority),
        cmocka_unit_test(test_cookies_joined),
        cmocka_unit_test(test_body_framing),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_size_limit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
