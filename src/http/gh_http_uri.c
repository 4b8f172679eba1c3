/*
 * gh_http_uri.c: URI path normalisation and percent-decoding.
 *
 * Normalisation follows nginx: the path is decoded first and dot
 * segments are resolved on the decoded bytes, so "%2e%2e" is ".." and
 * "%2F" is a '/' that separates segments.  Locations match the result,
 * so "/admin" cannot be reached as "/x/../admin" or "/%61dmin" without
 * the location seeing "/admin".
 *
 * One pass, writing to out: a segment is checked when the '/' after it
 * (or the end) arrives; "." is dropped, ".." drops itself and the segment
 * before.  Nothing is ever longer than the input, so out needs len bytes.
 */
#include "../core/gh_core.h"
#include "gh_http_parse.h"
#include "gh_http_char.h"

/*
 * The segment out[seg..o) just ended.  Returns 1 if it was a dot segment
 * and was removed (*o then ends with '/'), 0 if it stays, GH_ERROR for
 * ".." above the root.  seg > 0: out[seg - 1] is always '/'.
 */
static int
close_segment(uint8_t *out, size_t *o, size_t seg)
{
    size_t n = *o - seg;

    if (n == 1 && out[seg] == '.') {
        *o = seg;
        return 1;
    }

    if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
        if (seg == 1) {
            return GH_ERROR;
        }
        /* back over "/" and the parent, to just after the '/' before it */
        seg -= 2;
        while (out[seg] != '/') {
            seg--;
        }
        *o = seg + 1;
        return 1;
    }

    return 0;
}

gh_int_t
gh_http_normalize_uri(const uint8_t *in, size_t len, uint8_t *out,
    size_t *out_len, bool merge_slashes)
{
    size_t   i, o, seg;
    int      hi, lo, rc;
    uint8_t  c;

    *out_len = 0;

    if (len == 0 || in[0] != '/') {
        return GH_ERROR;
    }

    out[0] = '/';
    o = 1;
    seg = 1;

    for (i = 1; i < len; /* void */) {
        c = in[i];

        if (c == '%') {
            if (len - i < 3) {
                return GH_ERROR;
            }
            hi = gh_http_hexval(in[i + 1]);
            lo = gh_http_hexval(in[i + 2]);
            /* %00 would end the path for any C string API behind us */
            if (hi < 0 || lo < 0 || (hi | lo) == 0) {
                return GH_ERROR;
            }
            c = (uint8_t) (hi << 4 | lo);
            i += 3;

        } else if (c == '\0') {
            /* cannot come from the request parser; refused like %00 for
             * other callers */
            return GH_ERROR;

        } else {
            i++;
        }

        if (c != '/') {
            out[o++] = c;
            continue;
        }

        rc = close_segment(out, &o, seg);
        if (rc == GH_ERROR) {
            return GH_ERROR;
        }
        /* a removed dot segment leaves its leading '/' in place */
        if (rc == 0 && !(merge_slashes && out[o - 1] == '/')) {
            out[o++] = '/';
        }
        seg = o;
    }

    if (close_segment(out, &o, seg) == GH_ERROR) {
        return GH_ERROR;
    }

    *out_len = o;
    return GH_OK;
}

/*
 * %XX becomes the byte, anything else (also a broken escape) is copied.
 * For values ($arg_x), not paths: nothing is refused.  out may be in:
 * the write index never passes the read index.
 */
size_t
gh_http_unescape(uint8_t *out, const uint8_t *in, size_t len,
    bool plus_as_space)
{
    size_t  i, o;
    int     hi, lo;
    uint8_t c;

    for (i = 0, o = 0; i < len; o++) {
        c = in[i];

        if (c == '%' && len - i >= 3) {
            hi = gh_http_hexval(in[i + 1]);
            lo = gh_http_hexval(in[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out[o] = (uint8_t) (hi << 4 | lo);
                i += 3;
                continue;
            }
        }

        out[o] = (c == '+' && plus_as_space) ? ' ' : c;
        i++;
    }

    return o;
}
