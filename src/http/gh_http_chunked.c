/*
 * gh_http_chunked.c: decoder of the chunked transfer coding (RFC 9112 7.1).
 *
 * A byte-at-a-time state machine for the framing, bulk slices for the
 * data, so that any split of the input gives the same result.
 *
 *   SIZE_START -hex-> SIZE -CR-> SIZE_LF -LF-> DATA -> DATA_CR -> DATA_LF
 *        ^              | SP/HTAB/';'   ^        (size > 0)         |
 *        |              v               | CR                        |
 *        |            chunk-ext states -+                           |
 *        +----------------------------------------------------------+
 *   SIZE_LF -LF, size 0-> TRAILER_START -CR-> LAST_LF -LF-> DONE
 *                           | tchar                ^
 *                           v                      |
 *                TRAILER_NAME -':'-> TRAILER_VALUE -CR-> TRAILER_LF
 *                                                      -LF-> TRAILER_START
 *
 * Strictness: every line end in the framing must be CRLF.  A bare LF is
 * refused here although the head parser accepts it: chunk boundaries are
 * where request smuggling happens, and an upstream that reads "\n" as
 * data would see a different body.  Whitespace is only allowed where the
 * grammar has BWS (before ';' and around '=' in chunk-ext).
 */
#include "../core/gh_core.h"
#include "gh_http_parse.h"
#include "gh_http_char.h"

#define GH_CHUNKED_MAX_EXT      4096
#define GH_CHUNKED_MAX_TRAILER  8192
#define GH_CHUNKED_MAX_DIGITS   16

/* 2^62: far above any real body, and total + size cannot overflow */
#define GH_CHUNKED_MAX_SIZE     ((uint64_t) 1 << 62)

enum {
    CH_SIZE_START = 0,      /* first hex digit of chunk-size */
    CH_SIZE,                /* more hex digits */

    /* chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ) */
    CH_SIZE_BWS,            /* SP/HTAB after the size: ';' must follow */
    CH_EXT_PRE_NAME,        /* after ';' */
    CH_EXT_NAME,
    CH_EXT_NAME_BWS,        /* after the name and SP/HTAB: '=' or ';' */
    CH_EXT_PRE_VAL,         /* after '=' */
    CH_EXT_TOKEN,
    CH_EXT_QSTR,
    CH_EXT_QPAIR,           /* after '\' in a quoted-string */
    CH_EXT_QEND,            /* after the closing '"' */
    CH_EXT_VAL_BWS,         /* after a value and SP/HTAB: ';' only */

    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,

    CH_TRAILER_START,       /* a trailer field or the final CRLF */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_LAST_LF,

    CH_DONE,
    CH_ERROR
};

/* byte of a quoted-string (qdtext) */
static bool
is_qdtext(uint8_t c)
{
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b)
           || (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

/*
 * What may follow the size, an ext name or an ext value: ';' starts the
 * next extension, CR ends the line (not after BWS: the grammar has BWS
 * only before ';' and '='), SP/HTAB moves to the caller's BWS state.
 */
static int
ext_next(uint8_t c, bool cr_ok, int bws_state)
{
    if (c == ';') {
        return CH_EXT_PRE_NAME;
    }
    if (c == '\r' && cr_ok) {
        return CH_SIZE_LF;
    }
    if (gh_http_is_ows(c)) {
        return bws_state;
    }
    return CH_ERROR;
}

/* the chunk-size line: digits and extensions; returns the new state */
static int
step_size_line(gh_http_chunked_t *ctx, uint8_t c)
{
    int d;

    switch (ctx->state) {

    case CH_SIZE_START:
    case CH_SIZE:
        d = gh_http_hexval(c);
        if (d >= 0) {
            if (++ctx->size_digits > GH_CHUNKED_MAX_DIGITS) {
                return CH_ERROR;
            }
            /* 16 digits fit in 64 bits; the cap keeps sums far away */
            ctx->size = (ctx->size << 4) | (uint64_t) d;
            if (ctx->size > GH_CHUNKED_MAX_SIZE) {
                return CH_ERROR;
            }
            return CH_SIZE;
        }
        if (ctx->state == CH_SIZE_START) {
            return CH_ERROR;
        }
        return ext_next(c, true, CH_SIZE_BWS);

    case CH_SIZE_BWS:
        return ext_next(c, false, CH_SIZE_BWS);

    case CH_EXT_PRE_NAME:
        if (gh_http_is_ows(c)) {
            return CH_EXT_PRE_NAME;
        }
        return gh_http_is_tchar(c) ? CH_EXT_NAME : CH_ERROR;

    case CH_EXT_NAME:
        if (gh_http_is_tchar(c)) {
            return CH_EXT_NAME;
        }
        if (c == '=') {
            return CH_EXT_PRE_VAL;
        }
        return ext_next(c, true, CH_EXT_NAME_BWS);

    case CH_EXT_NAME_BWS:
        if (c == '=') {
            return CH_EXT_PRE_VAL;
        }
        return ext_next(c, false, CH_EXT_NAME_BWS);

    case CH_EXT_PRE_VAL:
        if (gh_http_is_ows(c)) {
            return CH_EXT_PRE_VAL;
        }
        if (c == '"') {
            return CH_EXT_QSTR;
        }
        return gh_http_is_tchar(c) ? CH_EXT_TOKEN : CH_ERROR;

    case CH_EXT_TOKEN:
        if (gh_http_is_tchar(c)) {
            return CH_EXT_TOKEN;
        }
        return ext_next(c, true, CH_EXT_VAL_BWS);

    case CH_EXT_QSTR:
        if (c == '"') {
            return CH_EXT_QEND;
        }
        if (c == '\\') {
            return CH_EXT_QPAIR;
        }
        return is_qdtext(c) ? CH_EXT_QSTR : CH_ERROR;

    case CH_EXT_QPAIR:
        /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
        return gh_http_is_field_char(c) ? CH_EXT_QSTR : CH_ERROR;

    case CH_EXT_QEND:
        return ext_next(c, true, CH_EXT_VAL_BWS);

    case CH_EXT_VAL_BWS:
        return ext_next(c, false, CH_EXT_VAL_BWS);

    case CH_SIZE_LF:
        if (c != '\n') {
            return CH_ERROR;
        }
        if (ctx->size == 0) {
            return CH_TRAILER_START;
        }
        return CH_DATA;
    }

    return CH_ERROR;
}

/* after the data, and the trailer section */
static int
step_tail(gh_http_chunked_t *ctx, uint8_t c)
{
    switch (ctx->state) {

    case CH_DATA_CR:
        return c == '\r' ? CH_DATA_LF : CH_ERROR;

    case CH_DATA_LF:
        if (c != '\n') {
            return CH_ERROR;
        }
        ctx->size_digits = 0;
        return CH_SIZE_START;

    case CH_TRAILER_START:
        if (c == '\r') {
            return CH_LAST_LF;
        }
        /* a leading SP/HTAB would be obs-fold: refused as in heads */
        return gh_http_is_tchar(c) ? CH_TRAILER_NAME : CH_ERROR;

    case CH_TRAILER_NAME:
        if (gh_http_is_tchar(c)) {
            return CH_TRAILER_NAME;
        }
        return c == ':' ? CH_TRAILER_VALUE : CH_ERROR;

    case CH_TRAILER_VALUE:
        if (c == '\r') {
            return CH_TRAILER_LF;
        }
        return gh_http_is_field_char(c) ? CH_TRAILER_VALUE : CH_ERROR;

    case CH_TRAILER_LF:
        return c == '\n' ? CH_TRAILER_START : CH_ERROR;

    case CH_LAST_LF:
        return c == '\n' ? CH_DONE : CH_ERROR;
    }

    return CH_ERROR;
}

/* one framing byte; returns the new state (CH_ERROR past a limit) */
static int
step(gh_http_chunked_t *ctx, uint8_t c, size_t max_ext, size_t max_trailer)
{
    int next;

    if (ctx->state < CH_DATA) {
        next = step_size_line(ctx, c);

        /* extension bytes count over the whole body: tiny chunks with
         * huge extensions would cost CPU for no data */
        if (next >= CH_SIZE_BWS && next <= CH_EXT_VAL_BWS
            && ++ctx->ext_len > max_ext)
        {
            return CH_ERROR;
        }
        if (next == CH_DATA && ctx->size > UINT64_MAX - ctx->total) {
            return CH_ERROR;
        }
        return next;
    }

    next = step_tail(ctx, c);

    /* trailer field bytes, not the final CRLF: an empty trailer section
     * is free whatever the limit */
    if (next >= CH_TRAILER_NAME && next <= CH_TRAILER_LF
        && ++ctx->trailer_len > max_trailer)
    {
        return CH_ERROR;
    }
    return next;
}

gh_int_t
gh_http_parse_chunked(gh_http_chunked_t *ctx, const uint8_t *p,
    size_t len, size_t *consumed, const uint8_t **data, size_t *data_len)
{
    size_t   i, n, max_ext, max_trailer;

    *consumed = 0;
    *data = NULL;
    *data_len = 0;

    if (ctx->state == CH_DONE) {
        return GH_DONE;
    }
    if (ctx->state == CH_ERROR) {
        return GH_ERROR;
    }

    max_ext = ctx->max_ext ? ctx->max_ext : GH_CHUNKED_MAX_EXT;
    max_trailer = ctx->max_trailer ? ctx->max_trailer : GH_CHUNKED_MAX_TRAILER;

    for (i = 0; i < len; /* void */) {

        if (ctx->state == CH_DATA) {
            /* one slice per call: the caller may have to pass it on
             * before it can take more */
            n = (size_t) gh_min((uint64_t) (len - i), ctx->size);
            *data = p + i;
            *data_len = n;
            ctx->size -= n;
            ctx->total += n;
            if (ctx->size == 0) {
                ctx->state = CH_DATA_CR;
            }
            i += n;
            *consumed = i;
            return i < len ? GH_OK : GH_AGAIN;
        }

        ctx->state = step(ctx, p[i], max_ext, max_trailer);
        i++;

        if (ctx->state == CH_ERROR) {
            *consumed = i;
            return GH_ERROR;
        }
        if (ctx->state == CH_DONE) {
            *consumed = i;
            return GH_DONE;
        }
    }

    *consumed = i;
    return GH_AGAIN;
}
