/*
 * fuzz_header_values.c: libFuzzer target for the parsers of header values
 * that decide framing and routing: gh_http_parse_content_length(),
 * gh_http_te_is_chunked() and gh_http_validate_host().
 *
 * Each input is given to all three.  The first two are checked against a
 * straightforward reference written here from the RFC grammar (1*DIGIT
 * that fits in int64; a list of tokens with OWS, "chunked" alone or
 * nothing), so that any disagreement traps.  A host that validates must
 * come out lowercase, without port, trailing dot, "..", or a byte that
 * could end a path or a URL's authority, and validating the result again
 * must change nothing.
 */
#include "core/gh_core.h"
#include "core/gh_arena.h"
#include "http/gh_http.h"
#include "http/gh_http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static bool
ref_tchar(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
           || (c >= 'A' && c <= 'Z')
           || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
ref_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

static int64_t
ref_content_length(const uint8_t *p, size_t n)
{
    __int128 v = 0;
    size_t   i;

    if (n == 0) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }
        v = v * 10 + (p[i] - '0');
        if (v > INT64_MAX) {
            return -1;
        }
    }
    /* more than 19 digits are refused even with leading zeros */
    return n > 19 ? -1 : (int64_t) v;
}

static int
ref_te(const uint8_t *p, size_t n)
{
    size_t i = 0, s, e, count = 0;
    bool   chunked = false;

    if (n == 0) {
        return -1;
    }
    for (;;) {
        /* one element: OWS token OWS, then ',' or the end */
        for (s = i; s < n && p[s] != ','; s++) {
            /* void */
        }
        e = s;
        while (i < e && ref_ows(p[i])) {
            i++;
        }
        while (e > i && ref_ows(p[e - 1])) {
            e--;
        }
        if (e == i) {
            return -1;
        }
        for (size_t k = i; k < e; k++) {
            if (!ref_tchar(p[k])) {
                return -1;
            }
        }
        chunked = e - i == 7 && strncasecmp((const char *) p + i, "chunked",
                                            7) == 0;
        count++;
        if (s == n) {
            break;
        }
        i = s + 1;
    }
    return count == 1 && chunked ? 1 : 0;
}

static void
check_host(const uint8_t *in, size_t n, const gh_str_t *h)
{
    size_t i;

    CHECK(h->len >= 1 && h->len <= n);
    CHECK(h->data[0] != '.' && h->data[h->len - 1] != '.');
    for (i = 0; i < h->len; i++) {
        uint8_t c = h->data[i];

        CHECK(c > 0x20 && c != 0x7f);
        CHECK(!(c >= 'A' && c <= 'Z'));
        CHECK(strchr("/\\@#?", c) == NULL);
        if (h->data[0] != '[') {
            /* a name: no empty label ("a..b" could be a path) */
            CHECK(!(c == '.' && i + 1 < h->len && h->data[i + 1] == '.'));
        }
        if (c == ':') {
            /* only inside an IPv6 literal */
            CHECK(h->data[0] == '[');
        }
    }
    if (h->data[0] == '[') {
        CHECK(h->data[h->len - 1] == ']');
    }
    (void) in;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gh_str_t    v, h, again;
    uint8_t    *copy;
    gh_arena_t *a;

    /* a private copy: the parsers must not read past the slice */
    copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    v.data = copy;
    v.len = size;

    CHECK(gh_http_parse_content_length(&v) == ref_content_length(copy, size));
    CHECK(gh_http_te_is_chunked(&v) == ref_te(copy, size));

    a = gh_arena_create(1024, 64 * 1024);
    CHECK(a != NULL);
    h = v;
    if (gh_http_validate_host(&h, a) == GH_OK) {
        check_host(copy, size, &h);
        again = h;
        CHECK(gh_http_validate_host(&again, a) == GH_OK);
        CHECK(again.len == h.len && memcmp(again.data, h.data, h.len) == 0);
    }
    gh_arena_destroy(a);
    free(copy);
    return 0;
}
