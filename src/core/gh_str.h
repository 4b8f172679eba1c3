/*
 * gh_str.h: length-delimited strings.  A gh_str_t is a slice {ptr, len};
 * it is NOT NUL-terminated unless the producer says so.
 */
#ifndef GH_STR_H
#define GH_STR_H

typedef struct {
    size_t   len;
    uint8_t *data;
} gh_str_t;

#define gh_string(s)     { sizeof(s) - 1, (uint8_t *) (s) }
#define gh_null_string   { 0, NULL }
#define gh_str_set(str, text) \
    do { (str)->len = sizeof(text) - 1; (str)->data = (uint8_t *) (text); } while (0)

static inline bool
gh_str_eq(const gh_str_t *a, const gh_str_t *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static inline bool
gh_str_eq_c(const gh_str_t *a, const char *c)
{
    size_t n = strlen(c);
    return a->len == n && memcmp(a->data, c, n) == 0;
}

static inline uint8_t
gh_tolower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t) (c | 0x20) : c;
}

int gh_strncasecmp(const uint8_t *a, const uint8_t *b, size_t n);
void gh_strlow(uint8_t *dst, const uint8_t *src, size_t n);

/* inline so that strlen() of a literal folds to a constant and a length
 * mismatch (most header-name compares on the hot path) costs nothing */
static inline bool
gh_str_caseeq(const gh_str_t *a, const gh_str_t *b)
{
    return a->len == b->len
        && (a->len == 0 || gh_tolower(a->data[0]) == gh_tolower(b->data[0]))
        && gh_strncasecmp(a->data, b->data, a->len) == 0;
}

static inline bool
gh_str_caseeq_c(const gh_str_t *a, const char *c)
{
    size_t n = strlen(c);

    /* the first byte inline too: names of equal length mostly differ
     * there ("Connection" / "Set-Cookie") */
    return a->len == n
        && (n == 0 || gh_tolower(a->data[0]) == gh_tolower((uint8_t) c[0]))
        && gh_strncasecmp(a->data, (const uint8_t *) c, n) == 0;
}

/* parse helpers; return GH_ERROR on invalid input or overflow */
gh_int_t gh_atoi(const uint8_t *p, size_t n);          /* decimal >= 0 */
gh_int_t gh_hextoi(const uint8_t *p, size_t n);        /* hex >= 0 */
/* "10", "10k", "10m", "1g" -> bytes */
ssize_t gh_parse_size(const gh_str_t *s);
/* "500ms", "10s", "1m", "1h", "1d", "1w", "1M" (30d), "1y" (365d),
 * "1h 30m" (units decreasing), plain number = seconds -> milliseconds */
gh_msec_t gh_parse_time(const gh_str_t *s);

/* number formatting without snprintf: writes digits at p, returns end */
uint8_t *gh_utoa(uint8_t *p, uint64_t v);
uint8_t *gh_xtoa(uint8_t *p, uint64_t v);   /* lowercase hex */

/* escape untrusted bytes for a log line: non-printables, '"' and '\\'
 * -> \xHH.  dst must hold 4 * n bytes; with dst NULL only the length
 * is computed.  Returns the bytes written. */
size_t gh_escape_log(uint8_t *dst, const uint8_t *src, size_t n);

#endif
