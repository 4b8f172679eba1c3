/*
 * gh_str.c: string slices, number/size/time parsing, log escaping.
 *
 * The parsers follow nginx's directive syntax so that configurations move
 * over unchanged; every one of them rejects junk and overflow instead of
 * saturating, because a silently clamped "client_max_body_size" is worse
 * than a startup error.
 */
#include "gh_core.h"

#include <limits.h>

int
gh_strncasecmp(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* header names mostly come in the expected case */
        if (a[i] == b[i]) {
            continue;
        }
        int d = (int) gh_tolower(a[i]) - (int) gh_tolower(b[i]);

        if (d != 0) {
            return d;
        }
    }
    return 0;
}

void
gh_strlow(uint8_t *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = gh_tolower(src[i]);
    }
}

gh_int_t
gh_atoi(const uint8_t *p, size_t n)
{
    gh_int_t v = 0;

    if (n == 0) {
        return GH_ERROR;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return GH_ERROR;
        }
        if (v > (INTPTR_MAX - (p[i] - '0')) / 10) {
            return GH_ERROR;
        }
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

static int
gh_hexval(uint8_t c)
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

gh_int_t
gh_hextoi(const uint8_t *p, size_t n)
{
    gh_int_t v = 0;

    if (n == 0) {
        return GH_ERROR;
    }
    for (size_t i = 0; i < n; i++) {
        int d = gh_hexval(p[i]);

        if (d < 0 || v > (INTPTR_MAX - d) / 16) {
            return GH_ERROR;
        }
        v = v * 16 + d;
    }
    return v;
}

ssize_t
gh_parse_size(const gh_str_t *s)
{
    size_t   len = s->len;
    ssize_t  scale = 1;
    gh_int_t v;

    if (len == 0) {
        return GH_ERROR;
    }
    switch (s->data[len - 1]) {
    case 'k': case 'K': scale = 1024; len--; break;
    case 'm': case 'M': scale = 1024 * 1024; len--; break;
    case 'g': case 'G': scale = 1024 * 1024 * 1024; len--; break;
    default: break;
    }
    v = gh_atoi(s->data, len);
    if (v == GH_ERROR || v > SSIZE_MAX / scale) {
        return GH_ERROR;
    }
    return (ssize_t) v * scale;
}

/*
 * Time units in decreasing order; "1h 30m" is fine, "30m 1h" or "1h 1h"
 * is rejected as nginx does, which catches typos like "1m 1m".
 */
/* not a character a configuration can contain, so "5S" stays invalid */
#define GH_UNIT_MS '\001'

typedef struct {
    char      unit;      /* 'M' month, 'm' minute; GH_UNIT_MS is "ms" */
    int       rank;
    gh_msec_t msec;
} gh_time_unit_t;

static const gh_time_unit_t gh_time_units[] = {
    { 'y', 8, 365LL * 24 * 3600 * 1000 },
    { 'M', 7, 30LL * 24 * 3600 * 1000 },
    { 'w', 6, 7LL * 24 * 3600 * 1000 },
    { 'd', 5, 24LL * 3600 * 1000 },
    { 'h', 4, 3600LL * 1000 },
    { 'm', 3, 60LL * 1000 },
    { 's', 2, 1000 },
    { GH_UNIT_MS, 1, 1 },
};

static const gh_time_unit_t *
gh_time_unit(const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp;
    char           u;

    if (p == end || *p == ' ' || *p == '\t') {
        /* a bare number means seconds, and only at the very end */
        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }
        *pp = p;
        return p == end ? &gh_time_units[6] : NULL;
    }
    u = (char) *p++;
    if (u == 'm' && p < end && *p == 's') {
        u = GH_UNIT_MS;
        p++;
    }
    *pp = p;
    for (size_t i = 0; i < gh_nelems(gh_time_units); i++) {
        if (gh_time_units[i].unit == u) {
            return &gh_time_units[i];
        }
    }
    return NULL;
}

gh_msec_t
gh_parse_time(const gh_str_t *s)
{
    const uint8_t        *p = s->data, *end = s->data + s->len;
    const gh_time_unit_t *u;
    gh_msec_t             total = 0, v;
    int                   rank = INT_MAX;
    bool                  any = false;

    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }
        if (p == end) {
            break;
        }
        if (*p < '0' || *p > '9') {
            return GH_ERROR;
        }
        for (v = 0; p < end && *p >= '0' && *p <= '9'; p++) {
            if (v > (INT64_MAX - (*p - '0')) / 10) {
                return GH_ERROR;
            }
            v = v * 10 + (*p - '0');
        }
        u = gh_time_unit(&p, end);
        if (u == NULL || u->rank >= rank
            || v > (INT64_MAX - total) / u->msec)
        {
            return GH_ERROR;
        }
        rank = u->rank;
        total += v * u->msec;
        any = true;
    }
    return any ? total : GH_ERROR;
}

size_t
gh_escape_log(uint8_t *dst, const uint8_t *src, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t            len = 0;

    /* '"' and '\\' too: log context puts values in quotes, and an
     * unescaped quote or backslash would let a client forge fields */
    for (size_t i = 0; i < n; i++) {
        uint8_t c = src[i];

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            if (dst) {
                dst[len] = c;
            }
            len++;
            continue;
        }
        if (dst) {
            dst[len] = '\\';
            dst[len + 1] = 'x';
            dst[len + 2] = (uint8_t) hex[c >> 4];
            dst[len + 3] = (uint8_t) hex[c & 0xf];
        }
        len += 4;
    }
    return len;
}

/* decimal digits of v at p, no NUL; returns the end (hot paths use this
 * instead of snprintf, which costs hundreds of instructions) */
uint8_t *
gh_utoa(uint8_t *p, uint64_t v)
{
    uint8_t tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t) ('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) {
        *p++ = tmp[--n];
    }
    return p;
}

uint8_t *
gh_xtoa(uint8_t *p, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t) hex[v & 0xf];
        v >>= 4;
    } while (v);
    while (n) {
        *p++ = tmp[--n];
    }
    return p;
}
