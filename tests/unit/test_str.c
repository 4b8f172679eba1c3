/*
 * test_str.c: string helpers and the size / time / number parsers,
 * including their error and overflow cases.
 */
#include "core/gh_core.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

static ssize_t
size_of(const char *s)
{
    gh_str_t str = { strlen(s), (uint8_t *) s };

    return gh_parse_size(&str);
}

static gh_msec_t
time_of(const char *s)
{
    gh_str_t str = { strlen(s), (uint8_t *) s };

    return gh_parse_time(&str);
}

static gh_int_t
atoi_of(const char *s)
{
    return gh_atoi((const uint8_t *) s, strlen(s));
}

static gh_int_t
hextoi_of(const char *s)
{
    return gh_hextoi((const uint8_t *) s, strlen(s));
}

static void
test_parse_size(void **state)
{
    assert_int_equal(size_of("0"), 0);
    assert_int_equal(size_of("10"), 10);
    assert_int_equal(size_of("10k"), 10 * 1024);
    assert_int_equal(size_of("10K"), 10 * 1024);
    assert_int_equal(size_of("10m"), 10 * 1024 * 1024);
    assert_int_equal(size_of("10M"), 10 * 1024 * 1024);
    assert_int_equal(size_of("1g"), 1024 * 1024 * 1024);
    assert_int_equal(size_of("2G"), 2LL * 1024 * 1024 * 1024);
    assert_int_equal(size_of("9223372036854775807"), INT64_MAX);

    assert_int_equal(size_of(""), GH_ERROR);
    assert_int_equal(size_of("k"), GH_ERROR);
    assert_int_equal(size_of("10x"), GH_ERROR);
    assert_int_equal(size_of("10kk"), GH_ERROR);
    assert_int_equal(size_of("-1"), GH_ERROR);
    assert_int_equal(size_of(" 10"), GH_ERROR);
    assert_int_equal(size_of("10 "), GH_ERROR);
    assert_int_equal(size_of("1.5m"), GH_ERROR);
    assert_int_equal(size_of("9223372036854775808"), GH_ERROR);
    assert_int_equal(size_of("9007199254740992k"), GH_ERROR);
    assert_int_equal(size_of("8589934592g"), GH_ERROR);
    assert_int_equal(size_of("99999999999999999999999"), GH_ERROR);
}

static void
test_parse_time(void **state)
{
    assert_int_equal(time_of("0"), 0);
    assert_int_equal(time_of("10"), 10000);
    assert_int_equal(time_of("30s"), 30000);
    assert_int_equal(time_of("500ms"), 500);
    assert_int_equal(time_of("1m"), 60000);
    assert_int_equal(time_of("1h"), 3600000);
    assert_int_equal(time_of("1h 30m"), 5400000);
    assert_int_equal(time_of("1h30m"), 5400000);
    assert_int_equal(time_of("1m 30"), 90000);
    assert_int_equal(time_of("1s 500ms"), 1500);
    assert_int_equal(time_of("1d"), 86400000);
    assert_int_equal(time_of("1w"), 7 * 86400000LL);
    assert_int_equal(time_of("1M"), 30 * 86400000LL);
    assert_int_equal(time_of("1y"), 365 * 86400000LL);
    assert_int_equal(time_of("1y 1M 1w 1d 1h 1m 1s 1ms"),
        (365 + 30 + 7 + 1) * 86400000LL + 3600000 + 60000 + 1000 + 1);
    assert_int_equal(time_of(" 5s "), 5000);
    assert_int_equal(time_of("106751991167d"), 106751991167LL * 86400000);

    assert_int_equal(time_of(""), GH_ERROR);
    assert_int_equal(time_of("  "), GH_ERROR);
    assert_int_equal(time_of("s"), GH_ERROR);
    assert_int_equal(time_of("ms"), GH_ERROR);
    assert_int_equal(time_of("1x"), GH_ERROR);
    assert_int_equal(time_of("5S"), GH_ERROR);
    assert_int_equal(time_of("1H"), GH_ERROR);
    assert_int_equal(time_of("-1"), GH_ERROR);
    assert_int_equal(time_of("1.5s"), GH_ERROR);
    assert_int_equal(time_of("1 h"), GH_ERROR);
    assert_int_equal(time_of("30m 1h"), GH_ERROR);
    assert_int_equal(time_of("1h 1h"), GH_ERROR);
    assert_int_equal(time_of("500ms 1s"), GH_ERROR);
    assert_int_equal(time_of("10 5"), GH_ERROR);
    assert_int_equal(time_of("1s 5"), GH_ERROR);
    assert_int_equal(time_of("1hh"), GH_ERROR);
    assert_int_equal(time_of("1mss"), GH_ERROR);
    /* overflow in the number, in the product and in the sum */
    assert_int_equal(time_of("99999999999999999999"), GH_ERROR);
    assert_int_equal(time_of("300000000y"), GH_ERROR);
    assert_int_equal(time_of("106751991168d"), GH_ERROR);
    assert_int_equal(time_of("292471208y 247d"),
        292471208LL * 365 * 86400000 + 247LL * 86400000);
    assert_int_equal(time_of("292471208y 248d"), GH_ERROR);
}

static void
test_atoi(void **state)
{
    char buf[32];

    assert_int_equal(atoi_of("0"), 0);
    assert_int_equal(atoi_of("123"), 123);
    assert_int_equal(atoi_of("007"), 7);
    snprintf(buf, sizeof(buf), "%jd", (intmax_t) INTPTR_MAX);
    assert_int_equal(atoi_of(buf), INTPTR_MAX);
    assert_int_equal(atoi_of("9223372036854775808"), GH_ERROR);
    assert_int_equal(atoi_of(""), GH_ERROR);
    assert_int_equal(atoi_of("12a"), GH_ERROR);
    assert_int_equal(atoi_of("-1"), GH_ERROR);
    assert_int_equal(atoi_of("+1"), GH_ERROR);
    assert_int_equal(atoi_of(" 1"), GH_ERROR);
    /* length-delimited: the rest of the C string is not looked at */
    assert_int_equal(gh_atoi((const uint8_t *) "12x", 2), 12);

    assert_int_equal(hextoi_of("0"), 0);
    assert_int_equal(hextoi_of("ff"), 255);
    assert_int_equal(hextoi_of("FF"), 255);
    assert_int_equal(hextoi_of("1a2B"), 0x1a2b);
    assert_int_equal(hextoi_of("7fffffffffffffff"), INT64_MAX);
    assert_int_equal(hextoi_of("8000000000000000"), GH_ERROR);
    assert_int_equal(hextoi_of("0x10"), GH_ERROR);
    assert_int_equal(hextoi_of("g"), GH_ERROR);
    assert_int_equal(hextoi_of(""), GH_ERROR);
}

static void
test_case(void **state)
{
    gh_str_t a = gh_string("Content-Length");
    gh_str_t b = gh_string("content-length");
    gh_str_t c = gh_string("content-lengtx");
    gh_str_t d = gh_string("content-len");
    uint8_t  low[16];

    assert_true(gh_str_caseeq(&a, &b));
    assert_false(gh_str_caseeq(&a, &c));
    assert_false(gh_str_caseeq(&a, &d));
    assert_true(gh_str_caseeq_c(&a, "CONTENT-LENGTH"));
    assert_false(gh_str_caseeq_c(&a, "CONTENT-LENGTH2"));
    assert_false(gh_str_eq(&a, &b));
    assert_true(gh_str_eq_c(&b, "content-length"));

    assert_int_equal(gh_strncasecmp(a.data, b.data, a.len), 0);
    assert_true(gh_strncasecmp((const uint8_t *) "a", (const uint8_t *) "B",
        1) < 0);
    /* only ASCII letters fold */
    assert_true(gh_strncasecmp((const uint8_t *) "[", (const uint8_t *) "{",
        1) != 0);

    gh_strlow(low, a.data, a.len);
    assert_memory_equal(low, b.data, b.len);
}

static void
test_escape(void **state)
{
    const uint8_t in[] = "a\"b\\c\n\x01\x7f\xff";
    uint8_t       out[64];
    size_t        n = gh_escape_log(out, in, sizeof(in) - 1);

    assert_int_equal(gh_escape_log(NULL, in, sizeof(in) - 1), n);
    assert_int_equal(n, 3 + 6 * 4);
    assert_memory_equal(out, "a\\x22b\\x5Cc\\x0A\\x01\\x7F\\xFF", n);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_atoi),
        cmocka_unit_test(test_case),
        cmocka_unit_test(test_escape),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
