/*
 * fuzz_h1_request.c: libFuzzer target for gh_http_parse_request_head().
 *
 * The input is parsed three ways and the results must agree: one call
 * on the whole input; growing the length one byte per call on the same
 * buffer (what a slow client does); and two calls split at a point taken
 * from the input, the second on a fresh copy (the caller moved its
 * buffer).  A successful parse must also satisfy the header's promises:
 * slices inside the head, tokens for names, no OWS or CR/LF around
 * values, and a path that is already normal when complex_uri is clear.
 */
#include "http/gh_http_parse.h"

#define MAXH 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    ssize_t                 rc;
    gh_http_request_head_t  r;
    gh_http_header_t        h[MAXH];
    size_t                  nh;
} res_t;

static const gh_http_limits_t limits = { 1024, 256, MAXH };

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static bool
is_tchar(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
           || (c >= 'A' && c <= 'Z')
           || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* a slice inside [base, base + n), or absent */
static void
check_in(const gh_str_t *s, const uint8_t *base, size_t n)
{
    if (s->data == NULL) {
        CHECK(s->len == 0);
        return;
    }
    CHECK(s->data >= base && s->data + s->len <= base + n);
}

/* compare a slice of two results (in different buffers) by content */
static void
same_slice(const gh_str_t *a, const gh_str_t *b)
{
    CHECK(a->len == b->len);
    CHECK((a->data == NULL) == (b->data == NULL));
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
    for (i = 0; i < a->nh; i++) {
        same_slice(&a->h[i].name, &b->h[i].name);
        same_slice(&a->h[i].value, &b->h[i].value);
    }
    same_slice(&a->r.request_line, &b->r.request_line);
    same_slice(&a->r.method, &b->r.method);
    same_slice(&a->r.target, &b->r.target);
    same_slice(&a->r.schema, &b->r.schema);
    same_slice(&a->r.authority, &b->r.authority);
    same_slice(&a->r.path, &b->r.path);
    same_slice(&a->r.args, &b->r.args);
    CHECK(a->r.method_id == b->r.method_id);
    CHECK(a->r.http_minor == b->r.http_minor);
    CHECK(a->r.complex_uri == b->r.complex_uri);
    CHECK(a->r.absolute_form == b->r.absolute_form);
    CHECK(a->r.authority_form == b->r.authority_form);
    CHECK(a->r.asterisk_form == b->r.asterisk_form);
}

static void
check_result(const res_t *q, const uint8_t *buf, size_t size)
{
    const gh_http_request_head_t *r = &q->r;
    uint8_t                       out[1024];
    size_t                        i, j, n, out_len;

    if (q->rc < 0) {
        CHECK(q->rc == GH_AGAIN || (q->rc <= -100 && q->rc >= -106));
        return;
    }

    n = (size_t) q->rc;
    CHECK(n <= size);
    CHECK(n >= 2 && buf[n - 1] == '\n');
    CHECK(q->nh <= MAXH);
    CHECK(r->http_major == 1 && r->http_minor <= 1);
    CHECK(r->method.len > 0 && r->target.len > 0);
    CHECK(r->request_line.len <= limits.max_request_line);

    check_in(&r->request_line, buf, n);
    check_in(&r->method, buf, n);
    check_in(&r->target, buf, n);
    check_in(&r->schema, buf, n);
    check_in(&r->authority, buf, n);
    check_in(&r->args, buf, n);
    if (!(r->absolute_form && r->path.len == 1)) {
        check_in(&r->path, buf, n);
    }

    for (i = 0; i < r->method.len; i++) {
        CHECK(is_tchar(r->method.data[i]));
    }
    for (i = 0; i < r->target.len; i++) {
        CHECK(r->target.data[i] > 0x20 && r->target.data[i] < 0x7f
              && r->target.data[i] != '#');
    }
    CHECK(r->absolute_form + r->authority_form + r->asterisk_form <= 1);
    CHECK(!r->authority_form || r->method_id == GH_HTTP_CONNECT);
    CHECK(!r->asterisk_form || r->method_id == GH_HTTP_OPTIONS);

    for (i = 0; i < q->nh; i++) {
        const gh_http_header_t *h = &q->h[i];

        check_in(&h->name, buf, n);
        check_in(&h->value, buf, n);
        CHECK(h->name.len > 0 && h->name.len < limits.max_header_line);
        for (j = 0; j < h->name.len; j++) {
            CHECK(is_tchar(h->name.data[j]));
        }
        for (j = 0; j < h->value.len; j++) {
            uint8_t c = h->value.data[j];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (h->value.len) {
            CHECK(h->value.data[0] != ' ' && h->value.data[0] != '\t');
            CHECK(h->value.data[h->value.len - 1] != ' '
                  && h->value.data[h->value.len - 1] != '\t');
        }
    }

    /* the two parsers agree: a path without the marks is already normal */
    if (!r->authority_form && !r->asterisk_form) {
        CHECK(r->path.len > 0 && r->path.data[0] == '/');
        if (gh_http_normalize_uri(r->path.data, r->path.len, out, &out_len,
                                  true) == GH_OK && !r->complex_uri)
        {
            CHECK(out_len == r->path.len);
            CHECK(memcmp(out, r->path.data, out_len) == 0);
        }
    }
}

static void
parse(res_t *q, const uint8_t *buf, size_t len)
{
    q->rc = gh_http_parse_request_head(buf, len, &q->r, q->h, &q->nh,
                                       &limits);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static res_t  one, inc, two;
    uint8_t      *copy, *first, *second;
    size_t        k, split;

    /* exact-size copies: ASan catches a read past the end */
    copy = malloc(size ? size : 1);
    memcpy(copy, data, size);

    memset(&one, 0, sizeof(one));
    parse(&one, copy, size);
    check_result(&one, copy, size);

    /* one more byte per call, same buffer */
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
