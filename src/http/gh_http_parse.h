/*
 * gh_http_parse.h: HTTP/1.x parsers.  They never allocate: results are
 * slices into the caller's buffer.  Strict per RFC 9110/9112 (a proxy must
 * never let the upstream see a different message boundary than it did).
 *
 * The head parsers are "stateless with a resume hint": the caller passes
 * the whole buffer received so far; while the blank line that ends the
 * head has not arrived they return GH_AGAIN (after checking the limits on
 * what is there, so an over-long line fails early).  `scan_from` in the
 * state lets repeated calls skip what was already searched.
 */
#ifndef GH_HTTP_PARSE_H
#define GH_HTTP_PARSE_H

#include "../core/gh_core.h"

/* errors (negative, distinct from GH_AGAIN) */
#define GH_HTTP_PARSE_INVALID        -100  /* 400 */
#define GH_HTTP_PARSE_URI_TOO_LONG   -101  /* 414 */
#define GH_HTTP_PARSE_HEADER_TOO_LARGE -102/* 431 (one line over the limit) */
#define GH_HTTP_PARSE_TOO_MANY_HEADERS -103/* 431 */
#define GH_HTTP_PARSE_VERSION        -104  /* 505 */
#define GH_HTTP_PARSE_INVALID_METHOD -105  /* 400 */
#define GH_HTTP_PARSE_INVALID_HEADER -106  /* 400 */

enum {
    GH_HTTP_UNKNOWN = 0, GH_HTTP_GET, GH_HTTP_HEAD, GH_HTTP_POST, GH_HTTP_PUT,
    GH_HTTP_DELETE, GH_HTTP_OPTIONS, GH_HTTP_PATCH, GH_HTTP_TRACE,
    GH_HTTP_CONNECT
};

typedef struct {
    gh_str_t name;
    gh_str_t value;      /* without leading/trailing OWS */
} gh_http_header_t;

typedef struct {
    size_t max_request_line;   /* 414 past this */
    size_t max_header_line;    /* 431 past this */
    size_t max_headers;        /* 431 past this; <= capacity of the array */
} gh_http_limits_t;

typedef struct {
    /* request line */
    gh_str_t   request_line;   /* without CRLF; also set after an error
                                * once the line was complete (for logs) */
    gh_str_t   method;
    unsigned   method_id;      /* GH_HTTP_GET ... or GH_HTTP_UNKNOWN */
    gh_str_t   target;         /* raw request-target */
    gh_str_t   schema;         /* absolute-form: "http" */
    gh_str_t   authority;      /* absolute-form / authority-form host[:port] */
    gh_str_t   path;           /* origin-form path, up to '?' (raw) */
    gh_str_t   args;           /* after '?', without it; data NULL if no '?' */
    unsigned   http_major;
    unsigned   http_minor;
    unsigned   http09:1;       /* never accepted: parser returns INVALID */
    unsigned   complex_uri:1;  /* path has %, '.', '//' segments: normalise */
    unsigned   absolute_form:1;
    unsigned   authority_form:1;
    unsigned   asterisk_form:1;

    /* resume hint, private to the parser: the caller zeroes it before
     * the first call for each request.  Besides the search position the
     * parser keeps where the unfinished line began, so that checking its
     * length does not mean rescanning it on every call. */
    size_t     scan_from;      /* bytes already searched for line ends */
    size_t     line_start;     /* offset of the line not yet complete */
    unsigned   lines;          /* complete lines: request line + headers */
    unsigned   empty_lines;    /* CRLFs skipped before the request line */
} gh_http_request_head_t;

/*
 * Parse request line and headers.  `headers` has room for
 * limits->max_headers entries; *nheaders receives the count.
 * Returns the number of bytes of the head (including the final blank
 * line), GH_AGAIN, or a GH_HTTP_PARSE_* error.
 * Empty lines before the request line are skipped (RFC 9112 2.2).
 */
ssize_t gh_http_parse_request_head(const uint8_t *buf, size_t len,
    gh_http_request_head_t *r, gh_http_header_t *headers, size_t *nheaders,
    const gh_http_limits_t *limits);

typedef struct {
    unsigned   http_major;
    unsigned   http_minor;
    unsigned   status;         /* 100..999 */
    gh_str_t   reason;
    /* resume hint, as in gh_http_request_head_t */
    size_t     scan_from;
    size_t     line_start;
    unsigned   lines;
    unsigned   empty_lines;    /* unused: responses may not start empty */
} gh_http_status_head_t;

/* upstream response: status line and headers, same conventions */
ssize_t gh_http_parse_response_head(const uint8_t *buf, size_t len,
    gh_http_status_head_t *s, gh_http_header_t *headers, size_t *nheaders,
    const gh_http_limits_t *limits);

/*
 * Chunked transfer coding decoder (incremental, resumable at any byte).
 *
 * Each call consumes some of [p, p+len) and may yield one slice of body
 * data:  returns
 *   GH_OK     *consumed bytes used, *data, *data_len a body slice (may be
 *             empty); call again with the rest
 *   GH_AGAIN  all input consumed (any data slice returned as with GH_OK)
 *   GH_DONE   last-chunk and trailers consumed (*consumed bytes)
 *   GH_ERROR  invalid framing, size overflow, extension/trailer abuse
 */
typedef struct {
    int        state;
    uint64_t   size;          /* remaining bytes of the current chunk */
    size_t     ext_len;       /* bytes of chunk extensions seen */
    size_t     trailer_len;   /* bytes of trailers seen */
    uint64_t   total;         /* decoded body bytes so far */
    size_t     max_ext;       /* limits; 0 = defaults (4096, 8192) */
    size_t     max_trailer;
    unsigned   size_digits;   /* private: hex digits of the chunk-size so
                               * far; leading zeros count, so "000...01"
                               * cannot stall the parser forever */
} gh_http_chunked_t;

gh_int_t gh_http_parse_chunked(gh_http_chunked_t *ctx, const uint8_t *p,
    size_t len, size_t *consumed, const uint8_t **data, size_t *data_len);

/*
 * URI normalisation (nginx semantics): percent-decode, resolve "." and
 * ".." segments, merge consecutive slashes when merge_slashes is set.
 * in is a path beginning with '/'; out must have room for len bytes.
 * Returns GH_OK, or GH_ERROR for ".." above the root, "%00" (or a raw
 * NUL), a bad escape, or a path not starting with '/'.
 */
gh_int_t gh_http_normalize_uri(const uint8_t *in, size_t len, uint8_t *out,
    size_t *out_len, bool merge_slashes);

/* percent-decode helpers for $arg_ etc.; returns out length */
size_t gh_http_unescape(uint8_t *out, const uint8_t *in, size_t len,
    bool plus_as_space);

/* "chunked" check per RFC 9112: returns 1 if the Transfer-Encoding value
 * is exactly one coding "chunked" (case-insensitive), 0 if other codings,
 * -1 if malformed */
int gh_http_te_is_chunked(const gh_str_t *value);

/* parse a Content-Length value: digits only, no sign, no overflow;
 * "5, 5" lists are rejected. -1 if invalid */
int64_t gh_http_parse_content_length(const gh_str_t *value);

#endif
