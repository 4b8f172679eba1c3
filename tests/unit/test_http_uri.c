/*
 * test_http_uri.c: path normalisation and percent-decoding.
 *
 * Besides the table, normalisation is compared with a slow reference
 * (decode everything, split on '/', run a segment stack) on many random
 * paths made of the bytes that matter: '/', '.', '%', hex digits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>

#include "http/gh_http_parse.h"

/* normalise s; returns NULL for GH_ERROR, else a static string */
static const char *
norm_n(const char *s, size_t n, bool merge)
{
    static char  res[512];
    uint8_t     *out;
    size_t       out_len = 12345;
    gh_int_t     rc;

    assert_true(n < sizeof(res));
    /* exactly len bytes: the documented room, checked by ASan */
    out = malloc(n ? n : 1);
    assert_non_null(out);
    rc = gh_http_normalize_uri((const uint8_t *) s, n, out, &out_len, merge);
    if (rc == GH_ERROR) {
        free(out);
        return NULL;
    }
    assert_int_equal(rc, GH_OK);
    assert_true(out_len <= n);
    memcpy(res, out, out_len);
    res[out_len] = '\0';
    free(out);
    return res;
}

static const char *
norm(const char *s, bool merge)
{
    return norm_n(s, strlen(s), merge);
}

static void
test_normalize_table(void **state)
{
    static const struct {
        const char *in;
        const char *merged;       /* NULL: GH_ERROR */
        const char *unmerged;
    } t[] = {
        { "/", "/", "/" },
        { "/a/b", "/a/b", "/a/b" },
        { "/a/b/", "/a/b/", "/a/b/" },
        { "/a/./b", "/a/b", "/a/b" },
        { "/a/../b", "/b", "/b" },
        { "/..", NULL, NULL },
        { "/../a", NULL, NULL },
        { "/a/../..", NULL, NULL },
        { "/a/..", "/", "/" },
        { "/a/../", "/", "/" },
        { "/a/.", "/a/", "/a/" },
        { "/a/./", "/a/", "/a/" },
        { "/.", "/", "/" },
        { "/./", "/", "/" },
        { "/./.", "/", "/" },
        { "/a/b/../../c", "/c", "/c" },
        { "/a/b/../../../c", NULL, NULL },
        { "//a///b", "/a/b", "//a///b" },
        { "//", "/", "//" },
        { "/a//", "/a/", "/a//" },
        { "/a//../b", "/b", "/a/b" },
        { "//..", NULL, "/" },
        /* decoding comes first: %2F separates, %2E%2E is ".." */
        { "/a%2Fb", "/a/b", "/a/b" },
        { "/a%2f..%2fb", "/b", "/b" },
        { "/%2e%2e/", NULL, NULL },
        { "/%2E%2E", NULL, NULL },
        { "/%2E/a", "/a", "/a" },
        { "/a/%2e./b", "/b", "/b" },
        { "/a/b/%2e%2e", "/a/", "/a/" },
        { "/%2F%2F", "/", "///" },
        { "/a%20b", "/a b", "/a b" },
        { "/%41%62", "/Ab", "/Ab" },
        /* no double decoding */
        { "/a%25", "/a%", "/a%" },
        { "/a%252e%252e", "/a%2e%2e", "/a%2e%2e" },
        { "/%25/..", "/", "/" },
        /* bad escapes and NUL */
        { "/%", NULL, NULL },
        { "/a%4", NULL, NULL },
        { "/%zz", NULL, NULL },
        { "/%4g", NULL, NULL },
        { "/%g4", NULL, NULL },
        { "/%00", NULL, NULL },
        { "/a%00b", NULL, NULL },
        { "/%%41", NULL, NULL },
        /* not a path */
        { "", NULL, NULL },
        { "a/b", NULL, NULL },
        { "%2Fa", NULL, NULL },
        { ".", NULL, NULL },
        /* not dot segments */
        { "/a/.b", "/a/.b", "/a/.b" },
        { "/a/..b", "/a/..b", "/a/..b" },
        { "/a/b..", "/a/b..", "/a/b.." },
        { "/...", "/...", "/..." },
        { "/.../..", "/", "/" },
        { "/.well-known/x", "/.well-known/x", "/.well-known/x" },
        /* nothing else is special */
        { "/a\\..\\b", "/a\\..\\b", "/a\\..\\b" },
        { "/a?b/../c", "/c", "/c" },
        { "/a%3Fb", "/a?b", "/a?b" },
        { "/+;=,", "/+;=,", "/+;=," },
        { "/\xc3\xa9/%C3%A9", "/\xc3\xa9/\xc3\xa9", "/\xc3\xa9/\xc3\xa9" },
    };
    const char *got;
    size_t      i;

    for (i = 0; i < gh_nelems(t); i++) {
        got = norm(t[i].in, true);
        if (t[i].merged == NULL) {
            if (got != NULL) {
                fail_msg("\"%s\" (merged): \"%s\", expected an error",
                         t[i].in, got);
            }
        } else {
            if (got == NULL || strcmp(got, t[i].merged) != 0) {
                fail_msg("\"%s\" (merged): \"%s\", expected \"%s\"",
                         t[i].in, got ? got : "(error)", t[i].merged);
            }
        }

        got = norm(t[i].in, false);
        if (t[i].unmerged == NULL) {
            if (got != NULL) {
                fail_msg("\"%s\": \"%s\", expected an error", t[i].in, got);
            }
        } else {
            if (got == NULL || strcmp(got, t[i].unmerged) != 0) {
                fail_msg("\"%s\": \"%s\", expected \"%s\"", t[i].in,
                         got ? got : "(error)", t[i].unmerged);
            }
        }
    }
}

/* a raw NUL is refused like %00; other bytes are just bytes */
static void
test_normalize_binary(void **state)
{
    const char *got;

    assert_null(norm_n("/a\0/..", 6, true));
    assert_null(norm_n("/\0", 2, false));
    got = norm_n("/\x01\x7f\xff/./\x80", 8, true);
    assert_non_null(got);
    assert_string_equal(got, "/\x01\x7f\xff/\x80");
}

/* --- reference: decode, split, segment stack ------------------------- */

static int
hexv(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static bool
ref_norm(const char *in, size_t n, bool merge, char *out)
{
    char    dec[64], seg[32][64];
    size_t  i, d = 0, nseg = 0, start, len;
    bool    trailing = false, last;

    if (n == 0 || in[0] != '/') {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (in[i] != '%') {
            dec[d++] = in[i];
            continue;
        }
        if (n - i < 3 || hexv(in[i + 1]) < 0 || hexv(in[i + 2]) < 0) {
            return false;
        }
        dec[d] = (char) (hexv(in[i + 1]) * 16 + hexv(in[i + 2]));
        if (dec[d++] == 0) {
            return false;
        }
        i += 2;
    }
    dec[d] = '\0';

    for (start = 1; start <= d; start += len + 1) {
        len = strcspn(dec + start, "/");
        last = (start + len >= d);
        trailing = false;

        if (len == 0) {
            if (last) {
                trailing = true;
            } else if (!merge) {
                seg[nseg++][0] = '\0';
            }
        } else if (len == 1 && dec[start] == '.') {
            trailing = last;
        } else if (len == 2 && dec[start] == '.' && dec[start + 1] == '.') {
            if (nseg == 0) {
                return false;
            }
            nseg--;
            trailing = last;
        } else {
            memcpy(seg[nseg], dec + start, len);
            seg[nseg++][len] = '\0';
        }
    }

    strcpy(out, "/");
    for (i = 0; i < nseg; i++) {
        strcat(out, seg[i]);
        if (i + 1 < nseg) {
            strcat(out, "/");
        }
    }
    if (trailing && nseg) {
        strcat(out, "/");
    }
    return true;
}

static void
test_normalize_vs_reference(void **state)
{
    static const char  alpha[] = "//..%%2eEfF0a";
    char               in[24], ref[128];
    const char        *got;
    uint32_t           x = 12345;
    size_t             i, n, iter;
    bool               ok, merge;

    for (iter = 0; iter < 300000; iter++) {
        x = x * 1103515245 + 12345;
        n = 1 + (x >> 16) % 14;
        in[0] = '/';
        for (i = 1; i < n; i++) {
            x = x * 1103515245 + 12345;
            in[i] = alpha[(x >> 16) % (sizeof(alpha) - 1)];
        }
        in[n] = '\0';
        merge = iter & 1;

        ok = ref_norm(in, n, merge, ref);
        got = norm_n(in, n, merge);
        if (!ok) {
            if (got != NULL) {
                fail_msg("\"%s\" merge=%d: \"%s\", reference: error", in,
                         merge, got);
            }
            continue;
        }
        if (got == NULL || strcmp(got, ref) != 0) {
            fail_msg("\"%s\" merge=%d: \"%s\", reference: \"%s\"", in, merge,
                     got ? got : "(error)", ref);
        }
    }
}

/* --- unescape -------------------------------------------------------- */

static void
test_unescape(void **state)
{
    static const struct {
        const char *in;
        bool        plus;
        const char *out;
        size_t      out_len;
    } t[] = {
        { "", false, "", 0 },
        { "abc", false, "abc", 3 },
        { "a%20b", false, "a b", 3 },
        { "a+b", false, "a+b", 3 },
        { "a+b", true, "a b", 3 },
        { "%2B", true, "+", 1 },          /* an escaped '+' stays '+' */
        { "%41%42c", false, "ABc", 3 },
        { "%e9%C3%A9", false, "\xe9\xc3\xa9", 3 },
        /* broken escapes are copied */
        { "%", false, "%", 1 },
        { "100%", false, "100%", 4 },
        { "%4", false, "%4", 2 },
        { "%zz", false, "%zz", 3 },
        { "%4g%41", false, "%4gA", 4 },
        { "%%41", false, "%A", 2 },
        { "%+1", true, "% 1", 3 },
        /* values may hold NUL; the caller knows the length */
        { "a%00b", false, "a\0b", 3 },
    };
    uint8_t out[64];
    size_t  i, n;

    for (i = 0; i < gh_nelems(t); i++) {
        memset(out, 0xee, sizeof(out));
        n = gh_http_unescape(out, (const uint8_t *) t[i].in, strlen(t[i].in),
                             t[i].plus);
        assert_int_equal(n, t[i].out_len);
        if (n) {
            assert_memory_equal(out, t[i].out, n);
        }
        assert_int_equal(out[n], 0xee);     /* nothing written past */
    }
}

static void
test_unescape_in_place(void **state)
{
    char   buf[] = "x=%41+%2b%%zz%4";
    size_t n;

    n = gh_http_unescape((uint8_t *) buf, (uint8_t *) buf, strlen(buf), true);
    assert_int_equal(n, 11);
    assert_memory_equal(buf, "x=A +%%zz%4", 11);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_table),
        cmocka_unit_test(test_normalize_binary),
        cmocka_unit_test(test_normalize_vs_reference),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_unescape_in_place),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
