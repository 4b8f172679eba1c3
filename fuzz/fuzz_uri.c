/*
 * fuzz_uri.c: libFuzzer target for gh_http_normalize_uri() and
 * gh_http_unescape().
 *
 * The first byte holds the flags; the rest is the path.  A normalised
 * path must keep the promises locations rely on: not longer than the
 * input, starting with '/', no "//" when merging, no "." or ".."
 * segment left, and normalising it again (when it has no '%' left to
 * decode) changes nothing.
 */
#include "http/gh_http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static void
check_normal(const uint8_t *p, size_t n, bool merge)
{
    size_t i;

    CHECK(n >= 1 && p[0] == '/');

    for (i = 0; i < n; i++) {
        CHECK(p[i] != '\0');
        if (p[i] != '/') {
            continue;
        }
        if (merge) {
            CHECK(i + 1 == n || p[i + 1] != '/');
        }
        /* "/." followed by '/' or the end, "/.." likewise */
        if (i + 1 < n && p[i + 1] == '.') {
            CHECK(i + 2 < n && p[i + 2] != '/');
            if (p[i + 2] == '.') {
                CHECK(i + 3 < n && p[i + 3] != '/');
            }
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t  *in, *out, *again, *u1, *u2;
    size_t    n, out_len, again_len, ul1, ul2;
    bool      merge, plus, has_pct;
    gh_int_t  rc;

    if (size < 1) {
        return 0;
    }
    merge = data[0] & 1;
    plus = data[0] & 2;
    n = size - 1;

    /* exact sizes: out gets the documented len bytes and no more */
    in = malloc(n ? n : 1);
    out = malloc(n ? n : 1);
    memcpy(in, data + 1, n);

    rc = gh_http_normalize_uri(in, n, out, &out_len, merge);
    CHECK(rc == GH_OK || rc == GH_ERROR);
    if (rc == GH_OK) {
        CHECK(out_len <= n);
        check_normal(out, out_len, merge);

        has_pct = memchr(out, '%', out_len) != NULL;
        if (!has_pct) {
            again = malloc(out_len);
            CHECK(gh_http_normalize_uri(out, out_len, again, &again_len,
                                        merge) == GH_OK);
            CHECK(again_len == out_len
                  && memcmp(again, out, out_len) == 0);
            free(again);
        }
    } else {
        /* refusals have a cause in the input */
        CHECK(n == 0 || in[0] != '/' || memchr(in, '%', n) != NULL
              || memchr(in, '\0', n) != NULL
              || memmem(in, n, "..", 2) != NULL);
    }

    /* unescape: out of place and in place agree, never longer */
    u1 = malloc(n ? n : 1);
    u2 = malloc(n ? n : 1);
    memcpy(u2, in, n);
    ul1 = gh_http_unescape(u1, in, n, plus);
    ul2 = gh_http_unescape(u2, u2, n, plus);
    CHECK(ul1 <= n && ul1 == ul2);
    CHECK(ul1 == 0 || memcmp(u1, u2, ul1) == 0);
    if (!memchr(in, '%', n) && !plus) {
        CHECK(ul1 == n && (n == 0 || memcmp(u1, in, n) == 0));
    }
    if (plus && !memchr(in, '%', n)) {
        CHECK(ul1 == 0 || !memchr(u1, '+', ul1));
    }

    free(u1);
    free(u2);
    free(in);
    free(out);
    return 0;
}
