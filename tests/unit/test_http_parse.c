/*
 * test_http_parse.c: HTTP/1.x head parsers, Transfer-Encoding and
 * Content-Length checks.
 *
 * Every request and response goes through check_req()/check_resp(): the
 * one-shot result must equal the result of feeding the same bytes one at
 * a time, each time in a fresh buffer of exactly the received size (so
 * the sanitizers catch any read past the end and any slice kept from an
 * earlier call).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>

#include "http/gh_http_parse.h"

#define MAXH 64

static const gh_http_limits_t deflimits = { 8192, 8192, MAXH };

typedef struct {
    gh_http_request_head_t  r;
    gh_http_status_head_t   s;
    gh_http_header_t        h[MAXH];
    size_t                  nh;
    ssize_t                 rc;
    uint8_t                *buf;      /* owned copy the slices point to */
} res_t;

static void
res_free(res_t *q)
{
    free(q->buf);
    q->buf = NULL;
}

static void
slice_eq(const gh_str_t *a, const gh_str_t *b)
{
    assert_int_equal(a->len, b->len);
    assert_int_equal(a->data == NULL, b->data == NULL);
    if (a->len) {
        assert_memory_equal(a->data, b->data, a->len);
    }
}

#define assert_slice(s, c) do {                                        \
        gh_str_t s_ = (s);                                             \
        assert_int_equal(s_.len, strlen(c));                           \
        if (s_.len) {                                                  \
            assert_memory_equal(s_.data, (c), s_.len);                 \
        }                                                              \
    } while (0)

static ssize_t
parse_once(res_t *q, const uint8_t *in, size_t n, bool response,
    const gh_http_limits_t *lim)
{
    memset(q, 0, sizeof(*q));
    q->buf = malloc(n ? n : 1);
    assert_non_null(q->buf);
    memcpy(q->buf, in, n);
    if (response) {
        q->rc = gh_http_parse_response_head(q->buf, n, &q->s, q->h, &q->nh,
                                            lim);
    } else {
        q->rc = gh_http_parse_request_head(q->buf, n, &q->r, q->h, &q->nh,
                                           lim);
    }
    return q->rc;
}

/* byte at a time, each call on a new exact-size copy */
static ssize_t
parse_bytewise(res_t *q, const uint8_t *in, size_t n, bool response,
    const gh_http_limits_t *lim)
{
    size_t k;

    memset(q, 0, sizeof(*q));
    q->rc = GH_AGAIN;

    for (k = 1; k <= n; k++) {
        free(q->buf);
        q->buf = malloc(k);
        assert_non_null(q->buf);
        memcpy(q->buf, in, k);
        if (response) {
            q->rc = gh_http_parse_response_head(q->buf, k, &q->s, q->h,
                                                &q->nh, lim);
        } else {
            q->rc = gh_http_parse_request_head(q->buf, k, &q->r, q->h,
                                               &q->nh, lim);
        }
        if (q->rc != GH_AGAIN) {
            break;
        }
        /* the resume hint covers everything: nothing is searched twice */
        assert_int_equal(response ? q->s.scan_from : q->r.scan_from, k);
    }
    return q->rc;
}

static void
same_result(const res_t *a, const res_t *b, bool response)
{
    size_t i;

    assert_int_equal(a->rc, b->rc);
    if (a->rc < 0) {
        return;
    }

    assert_int_equal(a->nh, b->nh);
    for (i = 0; i < a->nh; i++) {
        slice_eq(&a->h[i].name, &b->h[i].name);
        slice_eq(&a->h[i].value, &b->h[i].value);
    }

    if (response) {
        assert_int_equal(a->s.status, b->s.status);
        assert_int_equal(a->s.http_minor, b->s.http_minor);
        slice_eq(&a->s.reason, &b->s.reason);
        return;
    }

    slice_eq(&a->r.request_line, &b->r.request_line);
    slice_eq(&a->r.method, &b->r.method);
    slice_eq(&a->r.target, &b->r.target);
    slice_eq(&a->r.schema, &b->r.schema);
    slice_eq(&a->r.authority, &b->r.authority);
    slice_eq(&a->r.path, &b->r.path);
    slice_eq(&a->r.args, &b->r.args);
    assert_int_equal(a->r.method_id, b->r.method_id);
    assert_int_equal(a->r.http_major, b->r.http_major);
    assert_int_equal(a->r.http_minor, b->r.http_minor);
    assert_int_equal(a->r.complex_uri, b->r.complex_uri);
    assert_int_equal(a->r.absolute_form, b->r.absolute_form);
    assert_int_equal(a->r.authority_form, b->r.authority_form);
    assert_int_equal(a->r.asterisk_form, b->r.asterisk_form);
}

static ssize_t
check_n(res_t *q, const void *in, size_t n, bool response,
    const gh_http_limits_t *lim)
{
    res_t b;

    parse_bytewise(&b, in, n, response, lim);
    parse_once(q, in, n, response, lim);
    same_result(q, &b, response);
    res_free(&b);
    return q->rc;
}

static ssize_t
check_req(res_t *q, const char *s)
{
    return check_n(q, s, strlen(s), false, &deflimits);
}

static ssize_t
check_resp(res_t *q, const char *s)
{
    return check_n(q, s, strlen(s), true, &deflimits);
}

/* result code only, for the long lists of rejections */
static ssize_t
req_rc(const char *s)
{
    res_t   q;
    ssize_t rc = check_req(&q, s);

    res_free(&q);
    return rc;
}

static ssize_t
req_rc_n(const void *s, size_t n)
{
    res_t   q;
    ssize_t rc = check_n(&q, s, n, false, &deflimits);

    res_free(&q);
    return rc;
}

static ssize_t
resp_rc(const char *s)
{
    res_t   q;
    ssize_t rc = check_resp(&q, s);

    res_free(&q);
    return rc;
}

/* --- request line ---------------------------------------------------- */

static void
test_simple_get(void **state)
{
    const char *s = "GET /index.html HTTP/1.1\r\n"
                    "Host: example.com\r\n"
                    "User-Agent: t/1.0\r\n"
                    "\r\n";
    res_t q;

    assert_int_equal(check_req(&q, s), strlen(s));
    assert_slice(q.r.request_line, "GET /index.html HTTP/1.1");
    assert_slice(q.r.method, "GET");
    assert_int_equal(q.r.method_id, GH_HTTP_GET);
    assert_slice(q.r.target, "/index.html");
    assert_slice(q.r.path, "/index.html");
    assert_null(q.r.args.data);
    assert_null(q.r.schema.data);
    assert_null(q.r.authority.data);
    assert_int_equal(q.r.http_major, 1);
    assert_int_equal(q.r.http_minor, 1);
    assert_false(q.r.complex_uri);
    assert_false(q.r.absolute_form || q.r.authority_form
                 || q.r.asterisk_form || q.r.http09);
    assert_int_equal(q.nh, 2);
    assert_slice(q.h[0].name, "Host");
    assert_slice(q.h[0].value, "example.com");
    assert_slice(q.h[1].name, "User-Agent");
    assert_slice(q.h[1].value, "t/1.0");
    /* slices point into the caller's buffer */
    assert_ptr_equal(q.r.method.data, q.buf);
    assert_ptr_equal(q.h[0].name.data, q.buf + 26);
    res_free(&q);
}

static void
test_query_and_body_after_head(void **state)
{
    const char *s = "POST /a/b?x=1&y=/./ HTTP/1.0\r\n"
                    "Content-Length: 4\r\n"
                    "\r\n"
                    "body";
    res_t q;

    assert_int_equal(check_req(&q, s), strlen(s) - 4);
    assert_int_equal(q.r.method_id, GH_HTTP_POST);
    assert_slice(q.r.path, "/a/b");
    assert_slice(q.r.args, "x=1&y=/./");
    assert_false(q.r.complex_uri);      /* dots in args do not count */
    assert_int_equal(q.r.http_minor, 0);
    res_free(&q);

    /* '?' with nothing after: empty args, not absent */
    assert_int_equal(check_req(&q, "GET /a? HTTP/1.1\r\n\r\n"), 20);
    assert_non_null(q.r.args.data);
    assert_int_equal(q.r.args.len, 0);
    res_free(&q);
}

static void
test_methods(void **state)
{
    static const struct {
        const char *m;
        unsigned    id;
    } t[] = {
        { "GET", GH_HTTP_GET }, { "HEAD", GH_HTTP_HEAD },
        { "POST", GH_HTTP_POST }, { "PUT", GH_HTTP_PUT },
        { "DELETE", GH_HTTP_DELETE }, { "OPTIONS", GH_HTTP_OPTIONS },
        { "PATCH", GH_HTTP_PATCH }, { "TRACE", GH_HTTP_TRACE },
        /* case-sensitive: valid tokens, unknown methods */
        { "get", GH_HTTP_UNKNOWN }, { "Post", GH_HTTP_UNKNOWN },
        { "M-SEARCH", GH_HTTP_UNKNOWN }, { "PROPFIND", GH_HTTP_UNKNOWN },
        { "GETS", GH_HTTP_UNKNOWN }, { "GE", GH_HTTP_UNKNOWN },
        { "!#$%&'*+-.^_`|~09", GH_HTTP_UNKNOWN },
    };
    char   buf[128];
    size_t i;
    res_t  q;

    for (i = 0; i < gh_nelems(t); i++) {
        snprintf(buf, sizeof(buf), "%s / HTTP/1.1\r\n\r\n", t[i].m);
        assert_int_equal(check_req(&q, buf), strlen(buf));
        assert_int_equal(q.r.method_id, t[i].id);
        assert_slice(q.r.method, t[i].m);
        res_free(&q);
    }
}

static void
test_method_rejects(void **state)
{
    assert_int_equal(req_rc("G(T / HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID_METHOD);
    assert_int_equal(req_rc(" GET / HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID_METHOD);
    assert_int_equal(req_rc("GET\t/ HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID_METHOD);
    assert_int_equal(req_rc("GE\xc3\x89T / HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID_METHOD);
    /* TLS ClientHello on the plain port */
    assert_int_equal(req_rc_n("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\n\r\n",
                              12), GH_HTTP_PARSE_INVALID_METHOD);
    assert_int_equal(req_rc("GET\r\n\r\n"), GH_HTTP_PARSE_INVALID);
}

/* every byte value, against the RFC 9110 5.6.2 tchar list spelled out */
static bool
ref_tchar(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
           || (c >= 'A' && c <= 'Z') || (c != 0 && strchr("!#$%&'*+-.^_`|~",
                                                          c) != NULL);
}

static void
test_tchar_every_byte(void **state)
{
    uint8_t m[] = "GxT / HTTP/1.1\r\n\r\n";
    uint8_t h[] = "GET / HTTP/1.1\r\nAxB: v\r\n\r\n";
    ssize_t rc;
    int     c;

    for (c = 0; c < 256; c++) {
        m[1] = (uint8_t) c;
        rc = req_rc_n(m, sizeof(m) - 1);
        if (ref_tchar(c)) {
            assert_int_equal(rc, sizeof(m) - 1);
        } else if (c == ' ') {
            assert_int_equal(rc, GH_HTTP_PARSE_INVALID); /* "G" "T" ... */
        } else if (c == '\n') {
            assert_int_equal(rc, GH_HTTP_PARSE_INVALID); /* line "G" */
        } else {
            assert_int_equal(rc, GH_HTTP_PARSE_INVALID_METHOD);
        }

        h[17] = (uint8_t) c;
        rc = req_rc_n(h, sizeof(h) - 1);
        if (ref_tchar(c)) {
            assert_int_equal(rc, sizeof(h) - 1);
        } else if (c == ':') {
            assert_int_equal(rc, sizeof(h) - 1);    /* name "A", value ... */
        } else {
            assert_int_equal(rc, GH_HTTP_PARSE_INVALID_HEADER);
        }
    }
}

static void
test_spaces(void **state)
{
    assert_int_equal(req_rc("GET  / HTTP/1.1\r\n\r\n"), GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET /  HTTP/1.1\r\n\r\n"), GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET / HTTP/1.1 \r\n\r\n"), GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET / HTTP/1.1\t\r\n\r\n"), GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET\x0b/ HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID_METHOD);
    assert_int_equal(req_rc("GET / HTTP/1.1 x\r\n\r\n"), GH_HTTP_PARSE_INVALID);
}

static void
test_target_chars(void **state)
{
    uint8_t m[] = "GET /ax HTTP/1.1\r\n\r\n";
    ssize_t rc;
    int     c;

    for (c = 0; c < 256; c++) {
        m[6] = (uint8_t) c;
        rc = req_rc_n(m, sizeof(m) - 1);
        if (c >= 0x21 && c <= 0x7e && c != '#') {
            assert_int_equal(rc, sizeof(m) - 1);
        } else {
            /* SP: "GET /a x HTTP/1.1" has a bad version */
            assert_int_equal(rc, GH_HTTP_PARSE_INVALID);
        }
    }

    assert_int_equal(req_rc("GET /a#frag HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET /a\\b HTTP/1.1\r\n\r\n"), 21);
}

static void
test_complex_uri(void **state)
{
    static const struct {
        const char *target;
        bool        complex;
    } t[] = {
        { "/", false }, { "/a/b.html", false }, { "/a\\..\\b", false },
        { "/a.b/c", false }, { "/a?%2e/./..//", false },
        { "/a%20b", true }, { "/a/./b", true }, { "/a/../b", true },
        { "/a//b", true }, { "//", true }, { "/.", true },
        { "/.well-known/x", true }, { "/a/", false },
    };
    char   buf[128];
    size_t i;
    res_t  q;

    for (i = 0; i < gh_nelems(t); i++) {
        snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\n\r\n", t[i].target);
        assert_int_equal(check_req(&q, buf), strlen(buf));
        assert_int_equal(q.r.complex_uri, t[i].complex);
        res_free(&q);
    }
}

static void
test_asterisk_form(void **state)
{
    res_t q;

    assert_int_equal(check_req(&q, "OPTIONS * HTTP/1.1\r\n\r\n"), 22);
    assert_true(q.r.asterisk_form);
    assert_int_equal(q.r.method_id, GH_HTTP_OPTIONS);
    assert_slice(q.r.path, "*");
    res_free(&q);

    assert_int_equal(req_rc("GET * HTTP/1.1\r\n\r\n"), GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("OPTIONS *x HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("options * HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    /* OPTIONS may use the other forms too */
    assert_int_equal(req_rc("OPTIONS /x HTTP/1.1\r\n\r\n"), 23);
}

static void
test_authority_form(void **state)
{
    res_t q;

    assert_int_equal(check_req(&q, "CONNECT example.com:443 HTTP/1.1\r\n"
                                   "Host: example.com:443\r\n\r\n"), 59);
    assert_true(q.r.authority_form);
    assert_int_equal(q.r.method_id, GH_HTTP_CONNECT);
    assert_slice(q.r.authority, "example.com:443");
    assert_int_equal(q.r.path.len, 0);
    res_free(&q);

    assert_int_equal(check_req(&q, "CONNECT [::1]:8443 HTTP/1.1\r\n\r\n"),
                     31);
    assert_slice(q.r.authority, "[::1]:8443");
    res_free(&q);

    assert_int_equal(req_rc("CONNECT 10.0.0.1:1 HTTP/1.1\r\n\r\n"), 31);

    /* port required, and valid */
    assert_int_equal(req_rc("CONNECT example.com HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("CONNECT example.com: HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("CONNECT h:65536 HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("CONNECT h:123456 HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("CONNECT h:44a HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("CONNECT :443 HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("CONNECT u@h:443 HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("CONNECT [::1 HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("CONNECT [::g]:1 HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("CONNECT []:1 HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("CONNECT [::1]x:1 HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("CONNECT h:443/x HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    /* other forms are not for CONNECT, and authority-form only for it */
    assert_int_equal(req_rc("CONNECT / HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("CONNECT * HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("CONNECT http://h:1/ HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET example.com:443 HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
}

static void
test_absolute_form(void **state)
{
    res_t q;

    assert_int_equal(check_req(&q, "GET http://example.com/a/b?c=d HTTP/1.1"
                                   "\r\n\r\n"), 43);
    assert_true(q.r.absolute_form);
    assert_slice(q.r.schema, "http");
    assert_slice(q.r.authority, "example.com");
    assert_slice(q.r.path, "/a/b");
    assert_slice(q.r.args, "c=d");
    assert_slice(q.r.target, "http://example.com/a/b?c=d");
    res_free(&q);

    /* scheme is case-insensitive; no path means "/" */
    assert_int_equal(check_req(&q, "GET HTTPS://Example.com:8443 HTTP/1.1"
                                   "\r\n\r\n"), 41);
    assert_slice(q.r.schema, "HTTPS");
    assert_slice(q.r.authority, "Example.com:8443");
    assert_slice(q.r.path, "/");
    assert_null(q.r.args.data);
    res_free(&q);

    assert_int_equal(check_req(&q, "GET http://h?x=1 HTTP/1.1\r\n\r\n"), 29);
    assert_slice(q.r.path, "/");
    assert_slice(q.r.args, "x=1");
    res_free(&q);

    assert_int_equal(check_req(&q, "GET http://[2001:db8::1]:80//x/./y "
                                   "HTTP/1.1\r\n\r\n"), 47);
    assert_slice(q.r.authority, "[2001:db8::1]:80");
    assert_slice(q.r.path, "//x/./y");
    assert_true(q.r.complex_uri);
    res_free(&q);

    assert_int_equal(req_rc("GET ftp://h/ HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET http:/h/ HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET http:///a HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET http:// HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET http://u:p@h/ HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET http://h:/ HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET http://h:99999/ HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET http://h%41/ HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET http://a,b/ HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET a/b HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
}

static void
test_versions(void **state)
{
    res_t q;

    assert_int_equal(check_req(&q, "GET / HTTP/1.0\r\n\r\n"), 18);
    assert_int_equal(q.r.http_major, 1);
    assert_int_equal(q.r.http_minor, 0);
    res_free(&q);

    /* well-formed but not ours: 505 */
    assert_int_equal(req_rc("GET / HTTP/2.0\r\n\r\n"), GH_HTTP_PARSE_VERSION);
    assert_int_equal(req_rc("GET / HTTP/1.2\r\n\r\n"), GH_HTTP_PARSE_VERSION);
    assert_int_equal(req_rc("GET / HTTP/0.9\r\n\r\n"), GH_HTTP_PARSE_VERSION);
    assert_int_equal(req_rc("GET / HTTP/9.9\r\n\r\n"), GH_HTTP_PARSE_VERSION);

    /* malformed: 400 */
    assert_int_equal(req_rc("GET / HTTP/1.10\r\n\r\n"), GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET / HTTP/01.1\r\n\r\n"), GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET / http/1.1\r\n\r\n"), GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET / HTTP/1\r\n\r\n"), GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET / HTTP/1.\r\n\r\n"), GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET / HTTP/a.b\r\n\r\n"), GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET / HTTP/1,1\r\n\r\n"), GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET / HTTPS/1.1\r\n\r\n"), GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET / \r\n\r\n"), GH_HTTP_PARSE_INVALID);

    /* HTTP/0.9: no version at all */
    assert_int_equal(check_req(&q, "GET /\r\n\r\n"), GH_HTTP_PARSE_INVALID);
    assert_true(q.r.http09);
    res_free(&q);
}

static void
test_line_endings(void **state)
{
    res_t q;

    /* bare LF is accepted everywhere in a head */
    assert_int_equal(check_req(&q, "GET / HTTP/1.1\nHost: a\nX: b\n\n"), 29);
    assert_int_equal(q.nh, 2);
    assert_slice(q.h[1].value, "b");
    res_free(&q);
    assert_int_equal(req_rc("GET / HTTP/1.1\r\nHost: a\n\r\n"), 26);
    assert_int_equal(req_rc("GET / HTTP/1.1\nHost: a\r\n\n"), 25);

    /* a CR not followed by LF is never a line end */
    assert_int_equal(req_rc("GET / HTTP/1.1\rHost: a\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET / HTTP/1.1\r\r\n\r\n"), GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET /\r HTTP/1.1\r\n\r\n"), GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID_HEADER);
    assert_int_equal(req_rc("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID_HEADER);
    assert_int_equal(req_rc("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID_HEADER);
    assert_int_equal(req_rc("\rGET / HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID_METHOD);
}

static void
test_leading_empty_lines(void **state)
{
    char   buf[256];
    size_t i;
    res_t  q;

    assert_int_equal(check_req(&q, "\r\n\nGET / HTTP/1.1\r\n\r\n"), 21);
    assert_slice(q.r.request_line, "GET / HTTP/1.1");
    res_free(&q);

    for (i = 0; i <= 12; i++) {
        buf[0] = '\0';
        while (strlen(buf) < 2 * i) {
            strcat(buf, "\r\n");
        }
        strcat(buf, "GET / HTTP/1.1\r\n\r\n");
        if (i <= 8) {
            assert_int_equal(req_rc(buf), strlen(buf));
        } else {
            assert_int_equal(req_rc(buf), GH_HTTP_PARSE_INVALID);
        }
    }

    /* fails without waiting for a request line */
    assert_int_equal(req_rc("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID);
    /* leading whitespace is not an empty line */
    assert_int_equal(req_rc(" \r\nGET / HTTP/1.1\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID_METHOD);
}

/* --- header fields --------------------------------------------------- */

static void
test_header_values(void **state)
{
    const char *s = "GET / HTTP/1.1\r\n"
                    "A:  x y \t\r\n"
                    "B:\r\n"
                    "C: \t \r\n"
                    "D:\tq\t\"r\"\r\n"
                    "E: caf\xc3\xa9 \x80\xff\r\n"
                    "F:v\r\n"
                    "\r\n";
    res_t       q;

    assert_int_equal(check_req(&q, s), strlen(s));
    assert_int_equal(q.nh, 6);
    assert_slice(q.h[0].value, "x y");
    assert_slice(q.h[1].value, "");
    assert_slice(q.h[2].value, "");
    assert_slice(q.h[3].value, "q\t\"r\"");
    assert_slice(q.h[4].value, "caf\xc3\xa9 \x80\xff");
    assert_slice(q.h[5].name, "F");
    assert_slice(q.h[5].value, "v");
    res_free(&q);
}

static void
test_header_value_every_byte(void **state)
{
    uint8_t h[] = "GET / HTTP/1.1\r\nA: axb\r\n\r\n";
    ssize_t rc;
    int     c;

    for (c = 0; c < 256; c++) {
        h[20] = (uint8_t) c;
        rc = req_rc_n(h, sizeof(h) - 1);
        if (c == '\t' || (c >= 0x20 && c != 0x7f) || c == '\n') {
            /* '\n' splits it into "A: a" and "b" (no colon) */
            assert_int_equal(rc, c == '\n' ? GH_HTTP_PARSE_INVALID_HEADER
                                           : (ssize_t) sizeof(h) - 1);
        } else {
            assert_int_equal(rc, GH_HTTP_PARSE_INVALID_HEADER);
        }
    }
}

static void
test_header_rejects(void **state)
{
    static const char *bad[] = {
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",         /* SP before ':' */
        "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n",
        "GET / HTTP/1.1\r\n: a\r\n\r\n",              /* empty name */
        "GET / HTTP/1.1\r\nHost a\r\n\r\n",           /* no colon */
        "GET / HTTP/1.1\r\nHost\r\n\r\n",
        "GET / HTTP/1.1\r\n Host: a\r\n\r\n",         /* leading SP */
        "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",       /* obs-fold */
        "GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n",
        "GET / HTTP/1.1\r\nA\"B: c\r\n\r\n",
        "GET / HTTP/1.1\r\nA(B): c\r\n\r\n",
        "GET / HTTP/1.1\r\nA\xff: c\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n",        /* DEL */
        "GET / HTTP/1.1\r\nA: b\001c\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\x0b\r\n\r\n",
        "GET / HTTP/1.1\r\nA: \x1b[31m\r\n\r\n",
    };
    size_t i;

    for (i = 0; i < gh_nelems(bad); i++) {
        assert_int_equal(req_rc(bad[i]), GH_HTTP_PARSE_INVALID_HEADER);
    }

    /* NUL in a value and in a name */
    assert_int_equal(req_rc_n("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", 27),
                     GH_HTTP_PARSE_INVALID_HEADER);
    assert_int_equal(req_rc_n("GET / HTTP/1.1\r\nA\0: c\r\n\r\n", 26),
                     GH_HTTP_PARSE_INVALID_HEADER);
    /* NUL in the request line */
    assert_int_equal(req_rc_n("GET /\0 HTTP/1.1\r\n\r\n", 19),
                     GH_HTTP_PARSE_INVALID);
}

/* --- limits and incremental input ------------------------------------ */

static void
fill(char *buf, const char *pre, size_t n, const char *post)
{
    size_t l = strlen(pre);

    memcpy(buf, pre, l);
    memset(buf + l, 'a', n);
    strcpy(buf + l + n, post);
}

static void
test_limits_request_line(void **state)
{
    gh_http_limits_t lim = { 64, 64, 4 };
    char             buf[512];
    res_t            q;

    /* "GET /aaa HTTP/1.1" exactly 64 bytes: fine */
    fill(buf, "GET /", 64 - 14, " HTTP/1.1\r\n\r\n");
    assert_int_equal(check_n(&q, buf, strlen(buf), false, &lim), strlen(buf));
    assert_int_equal(q.r.request_line.len, 64);
    res_free(&q);

    fill(buf, "GET /", 65 - 14, " HTTP/1.1\r\n\r\n");
    assert_int_equal(check_n(&q, buf, strlen(buf), false, &lim),
                     GH_HTTP_PARSE_URI_TOO_LONG);
    res_free(&q);

    /* no line end yet: 64 bytes and a CR is still fine... */
    fill(buf, "GET /", 64 - 14, " HTTP/1.1\r");
    assert_int_equal(check_n(&q, buf, strlen(buf), false, &lim), GH_AGAIN);
    res_free(&q);
    /* ...but the 65th byte that is not a CR fails now */
    fill(buf, "GET /", 65, "");
    assert_int_equal(check_n(&q, buf, strlen(buf), false, &lim),
                     GH_HTTP_PARSE_URI_TOO_LONG);
    res_free(&q);
    fill(buf, "GET /", 64 - 5, "");
    assert_int_equal(check_n(&q, buf, strlen(buf), false, &lim), GH_AGAIN);
    res_free(&q);

    /* a line end of bare LF counts the same */
    fill(buf, "GET /", 64 - 14, " HTTP/1.1\n\n");
    assert_int_equal(check_n(&q, buf, strlen(buf), false, &lim), strlen(buf));
    res_free(&q);
}

static void
test_limits_header_line(void **state)
{
    gh_http_limits_t lim = { 64, 32, 4 };
    char             buf[512];
    res_t            q;

    fill(buf, "GET / HTTP/1.1\r\nX: ", 32 - 3, "\r\n\r\n");
    assert_int_equal(check_n(&q, buf, strlen(buf), false, &lim), strlen(buf));
    assert_int_equal(q.h[0].value.len, 29);
    res_free(&q);

    fill(buf, "GET / HTTP/1.1\r\nX: ", 33 - 3, "\r\n\r\n");
    assert_int_equal(check_n(&q, buf, strlen(buf), false, &lim),
                     GH_HTTP_PARSE_HEADER_TOO_LARGE);
    res_free(&q);

    /* partial: fails as soon as it is too long */
    fill(buf, "GET / HTTP/1.1\r\nX: ", 33 - 3, "");
    assert_int_equal(check_n(&q, buf, strlen(buf), false, &lim),
                     GH_HTTP_PARSE_HEADER_TOO_LARGE);
    res_free(&q);
    fill(buf, "GET / HTTP/1.1\r\nX: ", 32 - 3, "\r");
    assert_int_equal(check_n(&q, buf, strlen(buf), false, &lim), GH_AGAIN);
    res_free(&q);

    /* long header after a good one; limit is per line */
    fill(buf, "GET / HTTP/1.1\r\nA: b\r\nX: ", 40, "");
    assert_int_equal(check_n(&q, buf, strlen(buf), false, &lim),
                     GH_HTTP_PARSE_HEADER_TOO_LARGE);
    res_free(&q);
}

static void
test_limits_header_count(void **state)
{
    gh_http_limits_t lim = { 64, 64, 3 };
    res_t            q;
    const char      *ok = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    const char      *bad = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n";

    assert_int_equal(check_n(&q, ok, strlen(ok), false, &lim), strlen(ok));
    assert_int_equal(q.nh, 3);
    res_free(&q);

    /* the fourth line fails when it is complete, before the blank line */
    assert_int_equal(check_n(&q, bad, strlen(bad), false, &lim),
                     GH_HTTP_PARSE_TOO_MANY_HEADERS);
    res_free(&q);

    lim.max_headers = 0;
    assert_int_equal(check_n(&q, "GET / HTTP/1.1\r\n\r\n", 18, false, &lim),
                     18);
    assert_int_equal(q.nh, 0);
    res_free(&q);
    assert_int_equal(check_n(&q, "GET / HTTP/1.1\r\nA: 1\r\n\r\n", 24, false,
                             &lim), GH_HTTP_PARSE_TOO_MANY_HEADERS);
    res_free(&q);
}

static void
test_incomplete(void **state)
{
    const char *s = "GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
    size_t      k, n = strlen(s);
    res_t       q;

    for (k = 0; k < n; k++) {
        assert_int_equal(check_n(&q, s, k, false, &deflimits), GH_AGAIN);
        assert_int_equal(q.nh, 0);
        res_free(&q);
    }
    assert_int_equal(check_n(&q, s, n, false, &deflimits), n);
    res_free(&q);
}

/* invalid request line: fails before the rest of the head arrives */
static void
test_fail_early(void **state)
{
    assert_int_equal(req_rc("GET / HTTP/1.1 \r\nHost:"),
                     GH_HTTP_PARSE_INVALID);
    assert_int_equal(req_rc("GET / HTTP/3.0\n"), GH_HTTP_PARSE_VERSION);
    assert_int_equal(req_rc("BAD(METHOD / HTTP/1.1\n"),
                     GH_HTTP_PARSE_INVALID_METHOD);
}

/* a client sending one byte per read: the hint keeps it linear */
static void
test_slowloris_linear(void **state)
{
    gh_http_limits_t        lim = { 1 << 20, 1 << 20, 8 };
    gh_http_request_head_t  r;
    gh_http_header_t        h[8];
    size_t                  n, k, nh;
    uint8_t                *buf;
    ssize_t                 rc = GH_AGAIN;

    n = 16 + 3 + 200000 + 4;
    buf = malloc(n);
    assert_non_null(buf);
    memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
    memset(buf + 19, 'v', 200000);
    memcpy(buf + n - 4, "\r\n\r\n", 4);

    memset(&r, 0, sizeof(r));
    for (k = 1; k <= n; k++) {
        rc = gh_http_parse_request_head(buf, k, &r, h, &nh, &lim);
        if (rc != GH_AGAIN) {
            break;
        }
    }
    assert_int_equal(rc, n);
    assert_int_equal(nh, 1);
    assert_int_equal(h[0].value.len, 200000);
    free(buf);
}

/* buffer moved between calls (the caller grew it): slices follow */
static void
test_moved_buffer(void **state)
{
    const char             *s = "GET /a?b HTTP/1.1\r\nHost: h\r\n\r\n";
    gh_http_request_head_t  r;
    gh_http_header_t        h[4];
    gh_http_limits_t        lim = { 100, 100, 4 };
    uint8_t                 a[256], b[256];
    size_t                  nh;

    memset(&r, 0, sizeof(r));
    memcpy(a, s, 25);
    assert_int_equal(gh_http_parse_request_head(a, 25, &r, h, &nh, &lim),
                     GH_AGAIN);
    memset(a, 'X', sizeof(a));
    memcpy(b, s, strlen(s));
    assert_int_equal(gh_http_parse_request_head(b, strlen(s), &r, h, &nh,
                                                &lim), strlen(s));
    assert_ptr_equal(r.method.data, b);
    assert_ptr_equal(r.path.data, b + 4);
    assert_slice(r.args, "b");
    assert_ptr_equal(h[0].value.data, b + 25);
    assert_slice(h[0].value, "h");

    /* an error after a move: the request line to log is in b */
    memset(&r, 0, sizeof(r));
    memcpy(a, "GET /x HTTP/1.1\r\nA: 1\r\n", 23);
    assert_int_equal(gh_http_parse_request_head(a, 23, &r, h, &nh, &lim),
                     GH_AGAIN);
    memset(a, 'X', sizeof(a));
    memcpy(b, "GET /x HTTP/1.1\r\nA: 1\r\nB : 2\r\n\r\n", 32);
    assert_int_equal(gh_http_parse_request_head(b, 32, &r, h, &nh, &lim),
                     GH_HTTP_PARSE_INVALID_HEADER);
    assert_ptr_equal(r.request_line.data, b);
    assert_slice(r.request_line, "GET /x HTTP/1.1");
    memset(&r, 0, sizeof(r));
    memcpy(a, b, 17);
    assert_int_equal(gh_http_parse_request_head(a, 17, &r, h, &nh, &lim),
                     GH_AGAIN);
    memset(b + 17, 'v', 200);
    assert_int_equal(gh_http_parse_request_head(b, 217, &r, h, &nh, &lim),
                     GH_HTTP_PARSE_HEADER_TOO_LARGE);
    assert_ptr_equal(r.request_line.data, b);
    assert_slice(r.request_line, "GET /x HTTP/1.1");
    memcpy(b, s, strlen(s));

    /* a shorter buffer than what was scanned restarts the parse */
    assert_int_equal(gh_http_parse_request_head(b, 5, &r, h, &nh, &lim),
                     GH_AGAIN);
    assert_int_equal(gh_http_parse_request_head(b, strlen(s), &r, h, &nh,
                                                &lim), strlen(s));
}

/* --- response heads -------------------------------------------------- */

static void
test_response(void **state)
{
    res_t q;

    assert_int_equal(check_resp(&q, "HTTP/1.1 200 OK\r\n"
                                    "Content-Length: 5\r\n"
                                    "Server: x\r\n\r\nhello"), 49);
    assert_int_equal(q.s.status, 200);
    assert_int_equal(q.s.http_major, 1);
    assert_int_equal(q.s.http_minor, 1);
    assert_slice(q.s.reason, "OK");
    assert_int_equal(q.nh, 2);
    assert_slice(q.h[0].name, "Content-Length");
    assert_slice(q.h[0].value, "5");
    res_free(&q);

    assert_int_equal(check_resp(&q, "HTTP/1.0 404 Not  Found\t\xe9\n\n"), 27);
    assert_int_equal(q.s.status, 404);
    assert_int_equal(q.s.http_minor, 0);
    assert_slice(q.s.reason, "Not  Found\t\xe9");
    res_free(&q);

    assert_int_equal(check_resp(&q, "HTTP/1.1 204\r\n\r\n"), 16);
    assert_int_equal(q.s.status, 204);
    assert_int_equal(q.s.reason.len, 0);
    res_free(&q);

    assert_int_equal(check_resp(&q, "HTTP/1.1 100 \r\n\r\n"), 17);
    assert_int_equal(q.s.status, 100);
    assert_int_equal(q.s.reason.len, 0);
    res_free(&q);

    assert_int_equal(resp_rc("HTTP/1.1 999 x\r\n\r\n"), 18);
}

static void
test_response_rejects(void **state)
{
    static const char *bad[] = {
        "HTTP/1.1 099 x\r\n\r\n",
        "HTTP/1.1 000 x\r\n\r\n",
        "HTTP/1.1 20 x\r\n\r\n",
        "HTTP/1.1 2000 x\r\n\r\n",
        "HTTP/1.1 20x OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",
        "HTTP/1.1 200  \x01\r\n\r\n",
        "HTTP/1.1 200 O\x7fK\r\n\r\n",
        "HTTP/1.1 200 O\rK\r\n\r\n",
        "HTTP/1.1 200\tOK\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n",
        "HTTP/1.2 200 OK\r\n\r\n",
        "HTTP/0.9 200 OK\r\n\r\n",
        "HTTP/1.10 200 OK\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n",
        "HTTP/1.1\r\n\r\n",
        "HTTP/1.1 \r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "\r\nHTTP/1.1 200 OK\r\n\r\n",   /* no leading empty lines */
        "<html>\r\n\r\n",
    };
    size_t i;

    for (i = 0; i < gh_nelems(bad); i++) {
        assert_int_equal(resp_rc(bad[i]), GH_HTTP_PARSE_INVALID);
    }

    assert_int_equal(resp_rc("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID_HEADER);
    assert_int_equal(resp_rc("HTTP/1.1 200 OK\r\nA : b\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID_HEADER);
    assert_int_equal(resp_rc("HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n"),
                     GH_HTTP_PARSE_INVALID_HEADER);
}

static void
test_response_limits(void **state)
{
    gh_http_limits_t lim = { 16, 32, 2 };
    char             buf[256];
    res_t            q;

    /* the status line is held to the header line limit */
    fill(buf, "HTTP/1.1 200 ", 32 - 13, "\r\n\r\n");
    assert_int_equal(check_n(&q, buf, strlen(buf), true, &lim), strlen(buf));
    res_free(&q);
    fill(buf, "HTTP/1.1 200 ", 33 - 13, "");
    assert_int_equal(check_n(&q, buf, strlen(buf), true, &lim),
                     GH_HTTP_PARSE_HEADER_TOO_LARGE);
    res_free(&q);

    strcpy(buf, "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
    assert_int_equal(check_n(&q, buf, strlen(buf), true, &lim),
                     GH_HTTP_PARSE_TOO_MANY_HEADERS);
    res_free(&q);

    assert_int_equal(check_n(&q, buf, 16, true, &lim), GH_AGAIN);
    res_free(&q);
}

/* --- Transfer-Encoding, Content-Length ------------------------------- */

static int
te(const char *s)
{
    gh_str_t v = { strlen(s), (uint8_t *) s };

    return gh_http_te_is_chunked(&v);
}

static void
test_te(void **state)
{
    assert_int_equal(te("chunked"), 1);
    assert_int_equal(te("Chunked"), 1);
    assert_int_equal(te("CHUNKED"), 1);
    assert_int_equal(te(" chunked\t"), 1);
    assert_int_equal(te("\tchunked"), 1);

    assert_int_equal(te("gzip"), 0);
    assert_int_equal(te("identity"), 0);
    assert_int_equal(te("xchunked"), 0);
    assert_int_equal(te("chunkedx"), 0);
    assert_int_equal(te("chunked, identity"), 0);
    assert_int_equal(te("gzip, chunked"), 0);
    assert_int_equal(te("gzip,chunked"), 0);
    assert_int_equal(te("chunked, chunked"), 0);
    assert_int_equal(te("gzip \t, \tchunked"), 0);

    assert_int_equal(te(""), -1);
    assert_int_equal(te(" "), -1);
    assert_int_equal(te(","), -1);
    assert_int_equal(te(", chunked"), -1);
    assert_int_equal(te("chunked,"), -1);
    assert_int_equal(te("chunked, "), -1);
    assert_int_equal(te("gzip,,chunked"), -1);
    assert_int_equal(te("chunked\x0b"), -1);
    assert_int_equal(te("\x0b" "chunked"), -1);
    assert_int_equal(te("chunked\r"), -1);
    assert_int_equal(te("chun ked"), -1);
    assert_int_equal(te("chunked;q=1"), -1);
    assert_int_equal(te("\"chunked\""), -1);
    assert_int_equal(te("chunked\xc2\xa0"), -1);
    {
        gh_str_t v = { 8, (uint8_t *) "chunked\0" };
        assert_int_equal(gh_http_te_is_chunked(&v), -1);
    }
}

static int64_t
cl(const char *s)
{
    gh_str_t v = { strlen(s), (uint8_t *) s };

    return gh_http_parse_content_length(&v);
}

static void
test_content_length(void **state)
{
    assert_int_equal(cl("0"), 0);
    assert_int_equal(cl("5"), 5);
    assert_int_equal(cl("007"), 7);
    assert_int_equal(cl("1234567890"), 1234567890);
    assert_true(cl("9223372036854775807") == INT64_MAX);

    assert_int_equal(cl(""), -1);
    assert_int_equal(cl("+5"), -1);
    assert_int_equal(cl("-1"), -1);
    assert_int_equal(cl(" 5"), -1);
    assert_int_equal(cl("5 "), -1);
    assert_int_equal(cl("5,5"), -1);
    assert_int_equal(cl("5, 5"), -1);
    assert_int_equal(cl("0x10"), -1);
    assert_int_equal(cl("1e3"), -1);
    assert_int_equal(cl("5\t"), -1);
    assert_int_equal(cl("9223372036854775808"), -1);
    assert_int_equal(cl("9999999999999999999"), -1);
    assert_int_equal(cl("00000000000000000001"), -1);   /* 20 digits */
    assert_int_equal(cl("18446744073709551621"), -1);   /* wraps to 5 */
    {
        gh_str_t v = { 2, (uint8_t *) "5\0" };
        assert_int_equal(gh_http_parse_content_length(&v), -1);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_query_and_body_after_head),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_method_rejects),
        cmocka_unit_test(test_tchar_every_byte),
        cmocka_unit_test(test_spaces),
        cmocka_unit_test(test_target_chars),
        cmocka_unit_test(test_complex_uri),
        cmocka_unit_test(test_asterisk_form),
        cmocka_unit_test(test_authority_form),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_leading_empty_lines),
        cmocka_unit_test(test_header_values),
        cmocka_unit_test(test_header_value_every_byte),
        cmocka_unit_test(test_header_rejects),
        cmocka_unit_test(test_limits_request_line),
        cmocka_unit_test(test_limits_header_line),
        cmocka_unit_test(test_limits_header_count),
        cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_fail_early),
        cmocka_unit_test(test_slowloris_linear),
        cmocka_unit_test(test_moved_buffer),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_response_rejects),
        cmocka_unit_test(test_response_limits),
        cmocka_unit_test(test_te),
        cmocka_unit_test(test_content_length),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
