/*
 * gh_http_char.h: character classes of RFC 9110, shared by the HTTP/1.x
 * parsers (head, chunked framing, URI).  Private to src/http.
 *
 * The tests check every class against a spelled-out definition for all
 * 256 byte values, so the bitmap below is not trusted on its own.
 */
#ifndef GH_HTTP_CHAR_H
#define GH_HTTP_CHAR_H

#include "../core/gh_core.h"

/*
 * tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 *         "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
 * A bitmap (one bit per byte value) keeps the test branch-free; the token
 * loops in methods and field names run over every byte of a head.
 */
static inline bool
gh_http_is_tchar(uint8_t c)
{
    static const uint32_t map[8] = {
        0x00000000,     /* 0x00-0x1f: controls */
        0x03ff6cfa,     /* 0x20-0x3f: ! # $ % & ' * + - . 0-9 */
        0xc7fffffe,     /* 0x40-0x5f: A-Z ^ _ */
        0x57ffffff,     /* 0x60-0x7f: ` a-z | ~ */
        0, 0, 0, 0      /* 0x80-0xff: never in a token */
    };

    return (map[c >> 5] >> (c & 31)) & 1;
}

/* OWS / BWS: SP and HTAB only; other whitespace is an error everywhere */
static inline bool
gh_http_is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* field-value byte: HTAB, SP, VCHAR, obs-text.  NUL, CR, LF, the other
 * controls and DEL are refused: a peer could read them as framing. */
static inline bool
gh_http_is_field_char(uint8_t c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* value of a hex digit, or -1 */
static inline int
gh_http_hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = gh_tolower(c);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

#endif /* GH_HTTP_CHAR_H */
