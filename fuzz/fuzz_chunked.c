/*
 * fuzz_chunked.c: libFuzzer target for gh_http_parse_chunked().
 *
 * The first two bytes pick small limits now and then (so the ext and
 * trailer caps are reached), the next two a split point; the rest is the
 * body.  It is decoded in one piece, in two pieces split at that point,
 * and one byte at a time; the result, the consumed count and the decoded
 * bytes must be the same every time, or the target traps.
 */
#include "http/gh_http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

typedef struct {
    gh_int_t  rc;
    size_t    used;
    uint8_t  *body;          /* decoded bytes; never more than the input */
    size_t    body_len;
    uint64_t  total;
} dec_t;

static void
decode(const uint8_t *in, size_t len, size_t split, size_t piece,
    const gh_http_chunked_t *init, dec_t *d)
{
    gh_http_chunked_t  ctx = *init;
    const uint8_t     *data;
    uint8_t           *copy;
    size_t             off = 0, end, n, pos, consumed, dl;
    gh_int_t           rc = GH_AGAIN;

    d->body_len = 0;

    while (off < len) {
        end = off + (piece < len - off ? piece : len - off);
        if (off < split && end > split) {
            end = split;
        }
        n = end - off;
        copy = malloc(n);
        memcpy(copy, in + off, n);

        for (pos = 0; ; ) {
            rc = gh_http_parse_chunked(&ctx, copy + pos, n - pos, &consumed,
                                       &data, &dl);
            CHECK(consumed <= n - pos);
            CHECK(rc == GH_OK || rc == GH_AGAIN || rc == GH_DONE
                  || rc == GH_ERROR);
            if (dl) {
                CHECK(data >= copy + pos && data + dl <= copy + pos + consumed);
                CHECK(d->body_len + dl <= len);
                memcpy(d->body + d->body_len, data, dl);
                d->body_len += dl;
            }
            pos += consumed;
            if (rc == GH_OK) {
                CHECK(pos < n && dl > 0);
                continue;
            }
            if (rc == GH_AGAIN) {
                CHECK(pos == n);
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
    CHECK(d->total == d->body_len);
}

static void
same(const dec_t *a, const dec_t *b)
{
    CHECK(a->rc == b->rc);
    CHECK(a->used == b->used);
    CHECK(a->body_len == b->body_len);
    CHECK(a->body_len == 0 || memcmp(a->body, b->body, a->body_len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gh_http_chunked_t  init;
    dec_t              one, other;
    size_t             split;

    if (size < 4) {
        return 0;
    }

    memset(&init, 0, sizeof(init));
    if (data[0] & 1) {
        init.max_ext = 1 + data[0] / 2;
    }
    if (data[1] & 1) {
        init.max_trailer = 1 + data[1] / 2;
    }
    split = (size_t) data[2] << 8 | data[3];
    data += 4;
    size -= 4;
    split = size ? split % (size + 1) : 0;

    one.body = malloc(size + 1);
    other.body = malloc(size + 1);

    decode(data, size, size, SIZE_MAX, &init, &one);

    if (one.rc == GH_DONE) {
        /* a finished message ends with CRLF and never decodes more than
         * it consumed */
        CHECK(one.used >= 5 && data[one.used - 1] == '\n'
              && data[one.used - 2] == '\r');
        CHECK(one.body_len < one.used);
    }

    decode(data, size, split, SIZE_MAX, &init, &other);
    same(&one, &other);
    decode(data, size, size, 1, &init, &other);
    same(&one, &other);

    free(one.body);
    free(other.body);
    return 0;
}
