/*
 * test_http_chunked.c: the chunked decoder.
 *
 * decode() feeds the input in two parts split anywhere, each part in
 * pieces of at most `piece` bytes, each piece in an exact-size copy (the
 * sanitizers see any read past it).  run() decodes every case one-shot,
 * split at every byte, and one byte at a time, and demands the same
 * result, body and consumed count from all of them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>

#include "http/gh_http_parse.h"

typedef struct {
    gh_int_t  rc;
    size_t    used;          /* input bytes consumed in total */
    uint8_t   body[16384];
    size_t    body_len;
    uint64_t  total;
} dec_t;

static const gh_http_chunked_t defctx;

static void
decode(const uint8_t *in, size_t len, size_t split, size_t piece,
    const gh_http_chunked_t *init, dec_t *d)
{
    gh_http_chunked_t  ctx = *init;
    const uint8_t     *data;
    uint8_t           *copy;
    size_t             off = 0, end, n, pos, consumed, dl;
    gh_int_t           rc = GH_AGAIN;

    memset(d, 0, sizeof(*d));

    while (off < len) {
        end = off + gh_min(piece, len - off);
        if (off < split && end > split) {
            end = split;
        }
        n = end - off;
        copy = malloc(n);
        assert_non_null(copy);
        memcpy(copy, in + off, n);

        for (pos = 0; ; ) {
            rc = gh_http_parse_chunked(&ctx, copy + pos, n - pos, &consumed,
                                       &data, &dl);
            assert_true(consumed <= n - pos);
            if (dl) {
                /* the slice lies in what this call consumed */
                assert_true(data >= copy + pos);
                assert_true(data + dl <= copy + pos + consumed);
                assert_true(d->body_len + dl <= sizeof(d->body));
                memcpy(d->body + d->body_len, data, dl);
                d->body_len += dl;
            }
            pos += consumed;
            if (rc == GH_OK) {
                assert_true(pos < n);       /* OK: there is more to do */
                continue;
            }
            if (rc == GH_AGAIN) {
                assert_int_equal(pos, n);   /* AGAIN: all consumed */
            }
            break;
        }

        free(copy);
        off += pos;
        if (rc != GH_AGAIN) {
            break;
        }
    }

    d->rc = rc;
    d->used = off;
    d->total = ctx.total;
}

static void
same(const dec_t *a, const dec_t *b)
{
    assert_int_equal(a->rc, b->rc);
    assert_int_equal(a->used, b->used);
    assert_int_equal(a->body_len, b->body_len);
    if (a->body_len) {
        assert_memory_equal(a->body, b->body, a->body_len);
    }
    assert_int_equal(a->total, b->total);
}

static gh_int_t
run_n(const void *in, size_t len, const gh_http_chunked_t *init, dec_t *d)
{
    static dec_t  other;
    size_t        split;

    decode(in, len, len, SIZE_MAX, init, d);

    for (split = 0; split <= len; split++) {
        decode(in, len, split, SIZE_MAX, init, &other);
        same(d, &other);
    }
    decode(in, len, len, 1, init, &other);
    same(d, &other);
    decode(in, len, len, 3, init, &other);
    same(d, &other);

    if (d->rc == GH_DONE || d->rc == GH_AGAIN) {
        assert_int_equal(d->total, d->body_len);
    }
    return d->rc;
}

static gh_int_t
run(const char *s, dec_t *d)
{
    return run_n(s, strlen(s), &defctx, d);
}

static gh_int_t
rc_of(const char *s)
{
    static dec_t d;

    return run(s, &d);
}

#define assert_body(d, s) do {                                         \
        assert_int_equal((d)->body_len, strlen(s));                    \
        assert_memory_equal((d)->body, (s), strlen(s));                \
    } while (0)

static void
test_basic(void **state)
{
    static dec_t  d;
    const char   *s = "5\r\nhello\r\n0\r\n\r\n";

    assert_int_equal(run(s, &d), GH_DONE);
    assert_int_equal(d.used, strlen(s));
    assert_body(&d, "hello");

    assert_int_equal(run("0\r\n\r\n", &d), GH_DONE);
    assert_int_equal(d.used, 5);
    assert_int_equal(d.body_len, 0);
}

static void
test_multi(void **state)
{
    static dec_t  d;
    const char   *s = "3\r\nabc\r\n"
                      "A\r\n0123456789\r\n"
                      "1f\r\n0123456789abcdefghijklmnopqrstu\r\n"
                      "1F\r\n0123456789ABCDEFGHIJKLMNOPQRSTU\r\n"
                      "000\r\n\r\n";

    assert_int_equal(run(s, &d), GH_DONE);
    assert_int_equal(d.used, strlen(s));
    assert_body(&d, "abc0123456789"
                    "0123456789abcdefghijklmnopqrstu"
                    "0123456789ABCDEFGHIJKLMNOPQRSTU");
    assert_int_equal(d.total, 3 + 10 + 31 + 31);
}

/* data bytes are opaque: CR, LF, NUL and "0\r\n\r\n" inside a chunk */
static void
test_binary_data(void **state)
{
    static dec_t        d;
    static const char   s[] = "9\r\n\r\n0\r\n\r\n\0\xff\r\n0\r\n\r\n";

    assert_int_equal(run_n(s, sizeof(s) - 1, &defctx, &d), GH_DONE);
    assert_int_equal(d.used, sizeof(s) - 1);
    assert_int_equal(d.body_len, 9);
    assert_memory_equal(d.body, "\r\n0\r\n\r\n\0\xff", 9);
}

static void
test_stops_at_end(void **state)
{
    static dec_t d;

    /* the next request on the connection is not ours */
    assert_int_equal(run("2\r\nab\r\n0\r\n\r\nGET / HTTP/1.1\r\n", &d),
                     GH_DONE);
    assert_int_equal(d.used, 12);
    assert_body(&d, "ab");
}

static void
test_incomplete(void **state)
{
    static dec_t  d;
    const char   *s = "4;x=\"y\"\r\nwiki\r\n0\r\nT: v\r\n\r\n";
    size_t        k;

    for (k = 0; k < strlen(s); k++) {
        assert_int_equal(run_n(s, k, &defctx, &d), GH_AGAIN);
        assert_int_equal(d.used, k);
    }
    assert_int_equal(run(s, &d), GH_DONE);
    assert_body(&d, "wiki");
}

/* return codes of single calls, as the header documents them */
static void
test_call_protocol(void **state)
{
    gh_http_chunked_t  ctx;
    const char        *s = "5\r\nhello\r\n0\r\n\r\n";
    const uint8_t     *data;
    size_t             consumed, dl;

    memset(&ctx, 0, sizeof(ctx));
    assert_int_equal(gh_http_parse_chunked(&ctx, (const uint8_t *) s, 15,
                                           &consumed, &data, &dl), GH_OK);
    assert_int_equal(consumed, 8);
    assert_int_equal(dl, 5);
    assert_ptr_equal(data, s + 3);

    assert_int_equal(gh_http_parse_chunked(&ctx, (const uint8_t *) s + 8, 7,
                                           &consumed, &data, &dl), GH_DONE);
    assert_int_equal(consumed, 7);
    assert_int_equal(dl, 0);

    /* done stays done, consuming nothing */
    assert_int_equal(gh_http_parse_chunked(&ctx, (const uint8_t *) s, 15,
                                           &consumed, &data, &dl), GH_DONE);
    assert_int_equal(consumed, 0);

    /* a slice that ends the input comes with AGAIN */
    memset(&ctx, 0, sizeof(ctx));
    assert_int_equal(gh_http_parse_chunked(&ctx, (const uint8_t *) s, 6,
                                           &consumed, &data, &dl), GH_AGAIN);
    assert_int_equal(consumed, 6);
    assert_int_equal(dl, 3);

    /* errors are sticky */
    memset(&ctx, 0, sizeof(ctx));
    assert_int_equal(gh_http_parse_chunked(&ctx, (const uint8_t *) "x", 1,
                                           &consumed, &data, &dl), GH_ERROR);
    assert_int_equal(gh_http_parse_chunked(&ctx, (const uint8_t *) s, 15,
                                           &consumed, &data, &dl), GH_ERROR);

    /* empty input */
    memset(&ctx, 0, sizeof(ctx));
    assert_int_equal(gh_http_parse_chunked(&ctx, (const uint8_t *) s, 0,
                                           &consumed, &data, &dl), GH_AGAIN);
    assert_int_equal(consumed, 0);
}

static void
test_size_errors(void **state)
{
    static const char *bad[] = {
        "\r\n",                 /* no digits */
        "\r\n\r\n",
        " 5\r\nhello\r\n0\r\n\r\n",
        "+5\r\nhello\r\n",
        "-5\r\nhello\r\n",
        "0x5\r\nhello\r\n",
        "5x\r\nhello\r\n",
        "g\r\n",
        "5\x0b;a\r\nhello\r\n",
        "5 \r\nhello\r\n",      /* BWS must lead to ';' */
        "5\t\r\nhello\r\n",
        "5 5\r\nhello\r\n",
        "5\nhello\r\n0\r\n\r\n",  /* bare LF */
        "5\r\r\nhello\r\n",
        "5\rhello\r\n",
        ";a\r\n",
        "\xff\r\n",
    };
    size_t i;

    for (i = 0; i < gh_nelems(bad); i++) {
        assert_int_equal(rc_of(bad[i]), GH_ERROR);
    }
}

static void
test_size_overflow(void **state)
{
    static dec_t d;

    /* 2^62 is the largest accepted; it then waits for that much data */
    assert_int_equal(run("4000000000000000\r\nabc", &d), GH_AGAIN);
    assert_int_equal(d.body_len, 3);
    assert_int_equal(run("4000000000000001\r\n", &d), GH_ERROR);
    assert_int_equal(run("7fffffffffffffff\r\n", &d), GH_ERROR);
    assert_int_equal(run("FFFFFFFFFFFFFFFF\r\n", &d), GH_ERROR);
    /* would wrap to 5 in 64 bits */
    assert_int_equal(run("10000000000000005\r\nhello\r\n0\r\n\r\n", &d),
                     GH_ERROR);

    /* at most 16 digits, leading zeros included */
    assert_int_equal(run("0000000000000005\r\nhello\r\n0\r\n\r\n", &d),
                     GH_DONE);
    assert_body(&d, "hello");
    assert_int_equal(run("00000000000000005\r\nhello\r\n0\r\n\r\n", &d),
                     GH_ERROR);
    assert_int_equal(run("5\r\nhello\r\n00000000000000000\r\n\r\n", &d),
                     GH_ERROR);
    assert_int_equal(run("0000000000000000\r\n\r\n", &d), GH_DONE);
    /* the digit count starts over for each chunk */
    assert_int_equal(run("0000000000000001\r\na\r\n000000000000001\r\nb\r\n"
                         "0\r\n\r\n", &d), GH_DONE);
    assert_body(&d, "ab");
}

static void
test_data_crlf(void **state)
{
    assert_int_equal(rc_of("5\r\nhelloX\r\n0\r\n\r\n"), GH_ERROR);
    assert_int_equal(rc_of("5\r\nhello\n0\r\n\r\n"), GH_ERROR);
    assert_int_equal(rc_of("5\r\nhello\r0\r\n\r\n"), GH_ERROR);
    assert_int_equal(rc_of("5\r\nhello\r\r\n0\r\n\r\n"), GH_ERROR);
    assert_int_equal(rc_of("5\r\nhello0\r\n\r\n"), GH_ERROR);
    /* a chunk longer than its size */
    assert_int_equal(rc_of("4\r\nhello\r\n0\r\n\r\n"), GH_ERROR);
    /* bare LF after the last chunk */
    assert_int_equal(rc_of("0\n\r\n"), GH_ERROR);
    assert_int_equal(rc_of("0\r\n\n"), GH_ERROR);
    assert_int_equal(rc_of("0\r\n\r\r"), GH_ERROR);
}

static void
test_extensions(void **state)
{
    static const char *good[] = {
        "5;a\r\nhello\r\n0\r\n\r\n",
        "5;a=b\r\nhello\r\n0\r\n\r\n",
        "5 ;a\r\nhello\r\n0\r\n\r\n",
        "5\t; a\r\nhello\r\n0\r\n\r\n",
        "5;a = b\r\nhello\r\n0\r\n\r\n",
        "5;a;b;c=d\r\nhello\r\n0\r\n\r\n",
        "5;a ;b\r\nhello\r\n0\r\n\r\n",
        "5;a=b ;c\r\nhello\r\n0\r\n\r\n",
        "5;a=\"\"\r\nhello\r\n0\r\n\r\n",
        "5;a=\"b c;d=e\"\r\nhello\r\n0\r\n\r\n",
        "5;a=\"q\\\"x\\\\\"\r\nhello\r\n0\r\n\r\n",
        "5;a=\"b\" ;c\r\nhello\r\n0\r\n\r\n",
        "5;a=\"\xff\t\"\r\nhello\r\n0\r\n\r\n",
        "5;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~\r\nhello\r\n0\r\n\r\n",
        "5\r\nhello\r\n0;last=1\r\n\r\n",
    };
    static const char *bad[] = {
        "5;\r\nhello\r\n",
        "5; \r\nhello\r\n",
        "5;=b\r\nhello\r\n",
        "5;a=\r\nhello\r\n",
        "5;a==b\r\nhello\r\n",
        "5;a \r\nhello\r\n",        /* BWS only before ';' or '=' */
        "5;a=b \r\nhello\r\n",
        "5;a=\"b\" \r\nhello\r\n",
        "5;a=\"b\"c\r\nhello\r\n",
        "5;a=\"b\r\nhello\r\n",     /* unterminated: CR not in qdtext */
        "5;a=\"b\x7f\"\r\nhello\r\n",
        "5;a=\"b\x01\"\r\nhello\r\n",
        "5;a=\"\\\x01\"\r\nhello\r\n",
        "5;a=b c\r\nhello\r\n",
        "5;a(b)\r\nhello\r\n",
        "5;a=b,c\r\nhello\r\n",
        "5;a\nhello\r\n",
        "5;a=b\nhello\r\n",
        "5;a=\"b\"\nhello\r\n",
        "5;a\x0b\r\nhello\r\n",
    };
    static dec_t d;
    size_t       i;

    for (i = 0; i < gh_nelems(good); i++) {
        assert_int_equal(run(good[i], &d), GH_DONE);
        assert_body(&d, "hello");
    }
    for (i = 0; i < gh_nelems(bad); i++) {
        assert_int_equal(rc_of(bad[i]), GH_ERROR);
    }
}

static void
test_ext_limit(void **state)
{
    gh_http_chunked_t  ctx;
    static dec_t       d;
    static char        big[8192];
    const char        *s;

    memset(&ctx, 0, sizeof(ctx));
    ctx.max_ext = 8;

    /* ";aaaaaaa" is 8 bytes: at the limit */
    s = "1;aaaaaaa\r\nx\r\n0\r\n\r\n";
    assert_int_equal(run_n(s, strlen(s), &ctx, &d), GH_DONE);
    s = "1;aaaaaaaa\r\nx\r\n0\r\n\r\n";
    assert_int_equal(run_n(s, strlen(s), &ctx, &d), GH_ERROR);
    /* BWS before ';' counts too */
    s = "1  ;aaaaaa\r\nx\r\n0\r\n\r\n";
    assert_int_equal(run_n(s, strlen(s), &ctx, &d), GH_ERROR);
    /* the limit is for the whole body, not per chunk */
    s = "1;aaa\r\nx\r\n1;bbb\r\ny\r\n0;c\r\n\r\n";
    assert_int_equal(run_n(s, strlen(s), &ctx, &d), GH_ERROR);
    assert_int_equal(d.body_len, 2);

    /* default: 4096 */
    memset(big, 0, sizeof(big));
    strcpy(big, "1;");
    memset(big + 2, 'e', 4095);
    strcat(big, "\r\nx\r\n0\r\n\r\n");
    assert_int_equal(run(big, &d), GH_DONE);
    memset(big, 0, sizeof(big));
    strcpy(big, "1;");
    memset(big + 2, 'e', 4096);
    strcat(big, "\r\nx\r\n0\r\n\r\n");
    assert_int_equal(run(big, &d), GH_ERROR);
}

static void
test_trailers(void **state)
{
    static const char *good[] = {
        "0\r\nA: b\r\n\r\n",
        "0\r\nA:b\r\nC-D: e f \t\r\n\r\n",
        "0\r\nA:\r\n\r\n",
        "0\r\nA: caf\xc3\xa9\r\n\r\n",
    };
    static const char *bad[] = {
        "0\r\nA : b\r\n\r\n",
        "0\r\n A: b\r\n\r\n",
        "0\r\nA: b\r\n c\r\n\r\n",       /* obs-fold */
        "0\r\nA: b\r\n\tc\r\n\r\n",
        "0\r\n: b\r\n\r\n",
        "0\r\nA\r\n\r\n",
        "0\r\nA: b\x01\r\n\r\n",
        "0\r\nA: b\x7f\r\n\r\n",
        "0\r\nA: b\rc\r\n\r\n",
        "0\r\nA: b\n\r\n",
        "0\r\nA: b\r\n\n",
        "0\r\nA\"B: b\r\n\r\n",
    };
    static dec_t d;
    size_t       i;

    for (i = 0; i < gh_nelems(good); i++) {
        assert_int_equal(run(good[i], &d), GH_DONE);
        assert_int_equal(d.used, strlen(good[i]));
        assert_int_equal(d.body_len, 0);
    }
    for (i = 0; i < gh_nelems(bad); i++) {
        assert_int_equal(rc_of(bad[i]), GH_ERROR);
    }
    assert_int_equal(run_n("0\r\nA: b\0\r\n\r\n", 12, &defctx, &d), GH_ERROR);
}

static void
test_trailer_limit(void **state)
{
    gh_http_chunked_t  ctx;
    static dec_t       d;
    static char        big[16384];
    const char        *s = "0\r\nA: 12345\r\n\r\n";

    /* "A: 12345\r" counts: 9 bytes; the final CRLF is free */
    memset(&ctx, 0, sizeof(ctx));
    ctx.max_trailer = 9;
    assert_int_equal(run_n(s, strlen(s), &ctx, &d), GH_DONE);
    ctx.max_trailer = 8;
    assert_int_equal(run_n(s, strlen(s), &ctx, &d), GH_ERROR);
    ctx.max_trailer = 1;
    assert_int_equal(run_n("0\r\n\r\n", 5, &ctx, &d), GH_DONE);

    /* default: 8192, over several fields */
    memset(big, 0, sizeof(big));
    strcpy(big, "0\r\n");
    while (strlen(big) < 9000) {
        strcat(big, "X-Trailer: 0123456789\r\n");
    }
    strcat(big, "\r\n");
    assert_int_equal(run(big, &d), GH_ERROR);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_multi),
        cmocka_unit_test(test_binary_data),
        cmocka_unit_test(test_stops_at_end),
        cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_call_protocol),
        cmocka_unit_test(test_size_errors),
        cmocka_unit_test(test_size_overflow),
        cmocka_unit_test(test_data_crlf),
        cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_ext_limit),
        cmocka_unit_test(test_trailers),
        cmocka_unit_test(test_trailer_limit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
