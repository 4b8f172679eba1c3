/*
 * gh_http_parse.c: HTTP/1.x request and response heads, and the checks of
 * Content-Length and Transfer-Encoding values.
 *
 * A head is parsed in two linear passes:
 *
 *   scan   From the resume point, find line ends with memchr, check each
 *          line against its limit (the unfinished last line too, so an
 *          over-long line fails before it ends), count header lines, and
 *          parse the start line as soon as it is complete so that garbage
 *          is refused early.  The progress lives in the head struct: a
 *          client sending one byte per read costs O(1) per byte.
 *
 *   parse  Once the blank line is there, walk the head again and fill in
 *          the slices.  Slices are made only in this last call because
 *          the caller may have moved its buffer between calls.  When the
 *          whole head came in one call (the usual case), the scan has
 *          already parsed every field of this buffer into `headers`, and
 *          this pass is skipped.
 *
 * Strictness: this is a proxy; when the upstream could read a message
 * differently than we do, we refuse it.  Bare LF line ends are accepted
 * (RFC 9112 2.2 allows it, and we re-serialise the head with CRLF), but a
 * CR anywhere except right before LF is an error.
 */
#include "../core/gh_core.h"
#include "gh_http_parse.h"
#include "gh_http_char.h"

/* RFC 9112 2.2 asks to ignore "at least one" empty line before a request;
 * a few are enough for clients that add CRLF after a POST body. */
#define GH_HTTP_MAX_EMPTY_LINES  8

typedef struct {
    size_t    scan_from;
    size_t    line_start;
    unsigned  lines;
    unsigned  empty_lines;
} head_scan_t;

/* what differs between a request head and a response head in the scan */
typedef struct {
    bool      response;
    size_t    max_start;     /* limit of the start line */
    ssize_t   start_err;     /* error for a start line over the limit */
    unsigned  max_empty;     /* empty lines skipped before the start line */
    void     *out;           /* gh_http_request_head_t or status head */
} head_kind_t;

static const struct {
    const char *name;
    size_t      len;
    unsigned    id;
} methods[] = {
    { "GET", 3, GH_HTTP_GET },
    { "HEAD", 4, GH_HTTP_HEAD },
    { "POST", 4, GH_HTTP_POST },
    { "PUT", 3, GH_HTTP_PUT },
    { "DELETE", 6, GH_HTTP_DELETE },
    { "OPTIONS", 7, GH_HTTP_OPTIONS },
    { "PATCH", 5, GH_HTTP_PATCH },
    { "TRACE", 5, GH_HTTP_TRACE },
    { "CONNECT", 7, GH_HTTP_CONNECT },
};

static bool
is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static bool
is_alnum(uint8_t c)
{
    uint8_t l = gh_tolower(c);

    return is_digit(c) || (l >= 'a' && l <= 'z');
}

/* request-target bytes: visible ASCII.  '#' starts a fragment, which a
 * client must not send (RFC 9112 3.2); upstreams disagree on whether it
 * ends the path, so it is refused. */
static bool
is_target_char(uint8_t c)
{
    return c >= 0x21 && c <= 0x7e && c != '#';
}

/* case-insensitive compare against a lowercase literal */
static bool
caseeq_lit(const uint8_t *p, const char *lit, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (gh_tolower(p[i]) != (uint8_t) lit[i]) {
            return false;
        }
    }
    return true;
}

static unsigned
method_id(const uint8_t *p, size_t n)
{
    size_t i;

    /* case-sensitive (RFC 9110 9.1): "get" is some other method */
    for (i = 0; i < gh_nelems(methods); i++) {
        if (methods[i].len == n && memcmp(methods[i].name, p, n) == 0) {
            return methods[i].id;
        }
    }
    return GH_HTTP_UNKNOWN;
}

/*
 * "HTTP/" DIGIT "." DIGIT (RFC 9112 2.3).  Well-formed versions other than
 * 1.0 and 1.1 get GH_HTTP_PARSE_VERSION (505), anything else is INVALID.
 */
static ssize_t
parse_version(const uint8_t *p, size_t n, unsigned *major, unsigned *minor)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || !is_digit(p[5])
        || p[6] != '.' || !is_digit(p[7]))
    {
        return GH_HTTP_PARSE_INVALID;
    }

    *major = p[5] - '0';
    *minor = p[7] - '0';

    if (*major != 1 || *minor > 1) {
        return GH_HTTP_PARSE_VERSION;
    }
    return GH_OK;
}

/*
 * authority = host [ ":" port ] with a stricter host than RFC 3986:
 * an IP-literal "[...]" of hex digits, ':' and '.', or a name of letters,
 * digits, "-._~".  Userinfo ('@'), percent-encoding and sub-delims are
 * legal in a URI but only ever seen in attacks on a proxy, so they are
 * refused.  An empty port after ':' is refused as well.
 */
static bool
authority_ok(const uint8_t *p, size_t n, bool need_port)
{
    size_t    i;
    uint32_t  port;

    if (n == 0) {
        return false;
    }

    if (p[0] == '[') {
        for (i = 1; i < n && p[i] != ']'; i++) {
            if (gh_http_hexval(p[i]) < 0 && p[i] != ':' && p[i] != '.') {
                return false;
            }
        }
        if (i == n || i == 1) {
            return false;
        }
        i++;

    } else {
        for (i = 0; i < n && p[i] != ':'; i++) {
            if (!is_alnum(p[i]) && p[i] != '-' && p[i] != '.' && p[i] != '_'
                && p[i] != '~')
            {
                return false;
            }
        }
        if (i == 0) {
            return false;
        }
    }

    if (i == n) {
        return !need_port;
    }
    if (p[i] != ':') {
        return false;
    }

    i++;
    if (i == n || n - i > 5) {
        return false;
    }
    for (port = 0; i < n; i++) {
        if (!is_digit(p[i])) {
            return false;
        }
        port = port * 10 + (p[i] - '0');
    }
    return port <= 65535;
}

/* path may need normalising: an escape, a dot segment or an empty one.
 * "/." also matches "/.well-known"; a false positive only costs a pass. */
static bool
path_is_complex(const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (p[i] == '%') {
            return true;
        }
        if (p[i] == '/' && i + 1 < n && (p[i + 1] == '.' || p[i + 1] == '/')) {
            return true;
        }
    }
    return false;
}

/* p starts with '/': split path and args at the first '?' */
static void
split_path(const uint8_t *p, size_t n, gh_http_request_head_t *r)
{
    const uint8_t *q;
    size_t         pn;

    q = memchr(p, '?', n);
    pn = q ? (size_t) (q - p) : n;

    r->path.data = (uint8_t *) p;
    r->path.len = pn;
    if (q) {
        r->args.data = (uint8_t *) q + 1;
        r->args.len = n - pn - 1;
    }
    r->complex_uri = path_is_complex(p, pn);
}

/* http://authority[/path][?args] (RFC 9112 3.2.2) */
static ssize_t
parse_absolute_form(const uint8_t *p, size_t n, gh_http_request_head_t *r)
{
    size_t a, e, sl;

    if (n >= 7 && caseeq_lit(p, "http://", 7)) {
        sl = 4;
    } else if (n >= 8 && caseeq_lit(p, "https://", 8)) {
        sl = 5;
    } else {
        return GH_HTTP_PARSE_INVALID;
    }

    a = sl + 3;
    for (e = a; e < n && p[e] != '/' && p[e] != '?'; e++) {
        /* void */
    }
    if (!authority_ok(p + a, e - a, false)) {
        return GH_HTTP_PARSE_INVALID;
    }

    r->schema.data = (uint8_t *) p;
    r->schema.len = sl;
    r->authority.data = (uint8_t *) p + a;
    r->authority.len = e - a;
    r->absolute_form = 1;

    if (e < n && p[e] == '/') {
        split_path(p + e, n - e, r);
        return GH_OK;
    }

    /* "http://h" and "http://h?a" mean the path "/" (RFC 9112 3.2.1);
     * the literal is never written through, despite the cast */
    r->path.data = (uint8_t *) "/";
    r->path.len = 1;
    if (e < n) {
        r->args.data = (uint8_t *) p + e + 1;
        r->args.len = n - e - 1;
    }
    return GH_OK;
}

/* the four forms of RFC 9112 3.2, each only where it is allowed */
static ssize_t
parse_target(const uint8_t *p, size_t n, gh_http_request_head_t *r)
{
    bool connect = (r->method_id == GH_HTTP_CONNECT);

    if (p[0] == '/') {
        if (connect) {
            return GH_HTTP_PARSE_INVALID;
        }
        split_path(p, n, r);
        return GH_OK;
    }

    if (connect) {
        /* authority-form: host and port, nothing else */
        if (!authority_ok(p, n, true)) {
            return GH_HTTP_PARSE_INVALID;
        }
        r->authority.data = (uint8_t *) p;
        r->authority.len = n;
        r->authority_form = 1;
        return GH_OK;
    }

    if (n == 1 && p[0] == '*') {
        if (r->method_id != GH_HTTP_OPTIONS) {
            return GH_HTTP_PARSE_INVALID;
        }
        /* path is "*" so it can be forwarded as it is; callers must look
         * at asterisk_form before treating path as a file path */
        r->path.data = (uint8_t *) p;
        r->path.len = 1;
        r->asterisk_form = 1;
        return GH_OK;
    }

    return parse_absolute_form(p, n, r);
}

/* method SP request-target SP HTTP-version, exactly one SP each */
static ssize_t
parse_request_line(const uint8_t *p, size_t n, gh_http_request_head_t *r)
{
    size_t   i, t;
    ssize_t  rc;

    /* the line may be parsed twice (scan, then final pass): start clean */
    memset(&r->schema, 0, sizeof(r->schema));
    memset(&r->authority, 0, sizeof(r->authority));
    memset(&r->path, 0, sizeof(r->path));
    memset(&r->args, 0, sizeof(r->args));
    r->http09 = 0;
    r->complex_uri = 0;
    r->absolute_form = 0;
    r->authority_form = 0;
    r->asterisk_form = 0;

    r->request_line.data = (uint8_t *) p;
    r->request_line.len = n;

    for (i = 0; i < n && gh_http_is_tchar(p[i]); i++) {
        /* void */
    }
    if (i == 0 || (i < n && p[i] != ' ')) {
        return GH_HTTP_PARSE_INVALID_METHOD;
    }
    if (i == n) {
        return GH_HTTP_PARSE_INVALID;
    }
    r->method.data = (uint8_t *) p;
    r->method.len = i;
    r->method_id = method_id(p, i);

    t = ++i;
    for ( /* void */ ; i < n && p[i] != ' '; i++) {
        if (!is_target_char(p[i])) {
            return GH_HTTP_PARSE_INVALID;
        }
    }
    if (i == t) {
        return GH_HTTP_PARSE_INVALID;
    }
    r->target.data = (uint8_t *) p + t;
    r->target.len = i - t;

    if (i == n) {
        /* "GET /": HTTP/0.9 has no headers and no framing; never */
        r->http09 = 1;
        return GH_HTTP_PARSE_INVALID;
    }

    rc = parse_version(p + i + 1, n - i - 1, &r->http_major, &r->http_minor);
    if (rc != GH_OK) {
        return rc;
    }

    return parse_target(p + t, i - t, r);
}

/* HTTP-version SP 3DIGIT [ SP reason-phrase ] (RFC 9112 4) */
static ssize_t
parse_status_line(const uint8_t *p, size_t n, gh_http_status_head_t *s)
{
    size_t i;

    memset(&s->reason, 0, sizeof(s->reason));

    /* an upstream speaking anything but 1.0/1.1 is broken, not a 505 */
    if (n < 12 || parse_version(p, 8, &s->http_major, &s->http_minor) != GH_OK
        || p[8] != ' ' || p[9] < '1' || p[9] > '9' || !is_digit(p[10])
        || !is_digit(p[11]))
    {
        return GH_HTTP_PARSE_INVALID;
    }
    s->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');

    if (n == 12) {
        /* "HTTP/1.1 200": no SP, no reason; tolerated, it is unambiguous */
        s->reason.data = (uint8_t *) p + 12;
        return GH_OK;
    }
    if (p[12] != ' ') {
        return GH_HTTP_PARSE_INVALID;
    }
    for (i = 13; i < n; i++) {
        if (!gh_http_is_field_char(p[i])) {
            return GH_HTTP_PARSE_INVALID;
        }
    }
    s->reason.data = (uint8_t *) p + 13;
    s->reason.len = n - 13;
    return GH_OK;
}

/*
 * field-name ":" OWS field-value OWS (RFC 9112 5).  A line starting with
 * whitespace is obs-fold (or junk before the name) and whitespace before
 * the colon is forbidden (5.1): both are refused, never repaired.
 */
static ssize_t
parse_field(const uint8_t *p, size_t n, gh_http_header_t *h)
{
    size_t i, name, vs, ve;

    for (name = 0; name < n && gh_http_is_tchar(p[name]); name++) {
        /* void */
    }
    if (name == 0 || name == n || p[name] != ':') {
        return GH_HTTP_PARSE_INVALID_HEADER;
    }

    for (vs = name + 1; vs < n && gh_http_is_ows(p[vs]); vs++) {
        /* void */
    }
    for (ve = n; ve > vs && gh_http_is_ows(p[ve - 1]); ve--) {
        /* void */
    }
    for (i = vs; i < ve; i++) {
        if (!gh_http_is_field_char(p[i])) {
            return GH_HTTP_PARSE_INVALID_HEADER;
        }
    }

    h->name.data = (uint8_t *) p;
    h->name.len = name;
    h->value.data = (uint8_t *) p + vs;
    h->value.len = ve - vs;
    return GH_OK;
}

static ssize_t
parse_start_line(const head_kind_t *k, const uint8_t *p, size_t n)
{
    if (k->response) {
        return parse_status_line(p, n, k->out);
    }
    return parse_request_line(p, n, k->out);
}

/* length of a line's content: the line end is LF or CRLF */
static size_t
content_len(const uint8_t *buf, size_t start, size_t end)
{
    size_t n = end - start;

    if (n > 0 && buf[end - 1] == '\r') {
        n--;
    }
    return n;
}

/*
 * A CR is only allowed right before the LF that ends a line.  A bare one
 * is refused as soon as it is seen, not when (if ever) the line ends: a
 * client using CR alone as a line end would otherwise wait for the
 * timeout.  To give the same answer however the input is split, the CR
 * wins over the length limit exactly when it is at most `max` bytes into
 * the line (where a byte-by-byte reader meets it first), and the answer
 * is the one the whole line would get: a start line is parsed up to the
 * CR (no valid start line contains one, and its parser stops at the first
 * bad byte), any header line gets INVALID_HEADER.
 */
static ssize_t
bare_cr(const uint8_t *buf, size_t line_start, size_t from, size_t to,
    size_t max, bool start, const head_kind_t *k)
{
    const uint8_t *cr;
    size_t         p;
    ssize_t        rc;

    if (to <= from) {
        return GH_OK;
    }
    cr = memchr(buf + from, '\r', to - from);
    if (cr == NULL) {
        return GH_OK;
    }
    p = (size_t) (cr - buf) - line_start;
    if (p > max) {
        return GH_OK;
    }
    if (!start) {
        return GH_HTTP_PARSE_INVALID_HEADER;
    }
    rc = parse_start_line(k, buf + line_start, p + 1);
    GH_ASSERT(rc != GH_OK);
    return rc != GH_OK ? rc : GH_HTTP_PARSE_INVALID;
}

/*
 * The scan pass: returns the head length once the blank line is in the
 * buffer, GH_AGAIN, or an error.  Every byte is searched once over all
 * calls (a CR at the end of one call's input is looked at again in the
 * next); the start line is parsed and each header field checked as soon
 * as its line is complete, so garbage is refused before the head ends.
 */
static ssize_t
scan_head(const uint8_t *buf, size_t len, head_scan_t *st,
    const head_kind_t *k, const gh_http_limits_t *limits,
    gh_http_header_t *headers)
{
    const uint8_t    *nl;
    size_t            end, n, max, from;
    ssize_t           rc;

    /* where this call's new input starts, less the byte before it */
    from = st->scan_from > 0 ? st->scan_from - 1 : 0;

    while (st->scan_from < len) {
        nl = memchr(buf + st->scan_from, '\n', len - st->scan_from);
        if (nl == NULL) {
            st->scan_from = len;
            break;
        }
        end = (size_t) (nl - buf);
        n = content_len(buf, st->line_start, end);

        if (st->lines == 0) {
            rc = bare_cr(buf, st->line_start, st->line_start,
                st->line_start + n, k->max_start, true, k);
            if (rc != GH_OK) {
                return rc;
            }
            if (n == 0) {
                if (++st->empty_lines > k->max_empty) {
                    return GH_HTTP_PARSE_INVALID;
                }
            } else {
                if (n > k->max_start) {
                    return k->start_err;
                }
                rc = parse_start_line(k, buf + st->line_start, n);
                if (rc != GH_OK) {
                    return rc;
                }
                st->lines = 1;
            }

        } else if (n == 0) {
            st->scan_from = end + 1;
            return (ssize_t) (end + 1);

        } else {
            rc = bare_cr(buf, st->line_start, st->line_start,
                st->line_start + n, limits->max_header_line, false, k);
            if (rc != GH_OK) {
                return rc;
            }
            if (n > limits->max_header_line) {
                return GH_HTTP_PARSE_HEADER_TOO_LARGE;
            }
            /* lines - 1 headers so far; this one would be one more */
            if (st->lines > limits->max_headers) {
                return GH_HTTP_PARSE_TOO_MANY_HEADERS;
            }
            /* kept: when the whole head was scanned in this call, these
             * are the results and the parse pass is skipped */
            rc = parse_field(buf + st->line_start, n,
                &headers[st->lines - 1]);
            if (rc != GH_OK) {
                return rc;
            }
            st->lines++;
        }

        st->scan_from = st->line_start = end + 1;
    }

    /* the unfinished line: a CR at the very end may be half a CRLF; the
     * byte before this call's input is looked at again for that reason */
    n = content_len(buf, st->line_start, len);
    max = st->lines == 0 ? k->max_start : limits->max_header_line;
    from = gh_max(from, st->line_start);
    rc = bare_cr(buf, st->line_start, from, len > 0 ? len - 1 : 0, max,
        st->lines == 0, k);
    if (rc != GH_OK) {
        return rc;
    }
    if (n > max) {
        return st->lines == 0 ? k->start_err : GH_HTTP_PARSE_HEADER_TOO_LARGE;
    }
    return GH_AGAIN;
}

/* next line of a complete head: returns its start, sets *n, moves *pos */
static const uint8_t *
next_line(const uint8_t *buf, size_t len, size_t *pos, size_t *n)
{
    const uint8_t *nl, *start;
    size_t         end;

    start = buf + *pos;
    nl = memchr(start, '\n', len - *pos);
    GH_ASSERT(nl != NULL);
    end = (size_t) (nl - buf);
    *n = content_len(buf, *pos, end);
    *pos = end + 1;
    return start;
}

/* the start line, after the skipped empty lines; the scan saw it whole */
static const uint8_t *
start_line(const uint8_t *buf, size_t len, size_t *pos, size_t *n)
{
    const uint8_t *line;

    do {
        line = next_line(buf, len, pos, n);
    } while (*n == 0);

    return line;
}

/*
 * The parse pass over a complete head of head_len bytes: the start line
 * (again, when the scan parsed it in an earlier call on what may have
 * been another buffer) and the fields.  Limits were checked by the scan.
 */
static ssize_t
parse_head(const uint8_t *buf, size_t head_len, const head_kind_t *k,
    bool reparse, gh_http_header_t *headers, size_t *nheaders)
{
    const uint8_t *line;
    size_t         pos, n, nh;
    ssize_t        rc;

    pos = 0;
    line = start_line(buf, head_len, &pos, &n);

    if (reparse) {
        rc = parse_start_line(k, line, n);
        if (rc != GH_OK) {
            return rc;
        }
    }

    for (nh = 0; ; nh++) {
        line = next_line(buf, head_len, &pos, &n);
        if (n == 0) {
            break;
        }
        rc = parse_field(line, n, &headers[nh]);
        if (rc != GH_OK) {
            return rc;
        }
    }

    *nheaders = nh;
    return (ssize_t) head_len;
}

static ssize_t
parse_any_head(const uint8_t *buf, size_t len, head_scan_t *st,
    const head_kind_t *k, const gh_http_limits_t *limits,
    gh_http_header_t *headers, size_t *nheaders)
{
    const uint8_t  *line;
    size_t          pos, n;
    ssize_t         rc;
    bool            reparse, whole;

    *nheaders = 0;

    /* a buffer shorter than what was scanned is a new one: start over */
    if (st->scan_from > len) {
        memset(st, 0, sizeof(*st));
    }
    reparse = (st->lines != 0);
    /* the usual case, a head that arrives whole: the scan below sees
     * every line of this very buffer, parses the start line and leaves
     * each field in headers[], so the second pass has nothing to add */
    whole = (st->scan_from == 0);

    rc = scan_head(buf, len, st, k, limits, headers);

    if (rc < 0 && rc != GH_AGAIN && reparse) {
        /* the caller logs the request line of a refused request: point it
         * into this buffer, not the one of the call that parsed it */
        pos = 0;
        line = start_line(buf, st->line_start, &pos, &n);
        (void) parse_start_line(k, line, n);
    }
    if (rc < 0) {
        return rc;
    }
    if (whole) {
        *nheaders = st->lines - 1;
        return rc;
    }
    return parse_head(buf, (size_t) rc, k, reparse, headers, nheaders);
}

ssize_t
gh_http_parse_request_head(const uint8_t *buf, size_t len,
    gh_http_request_head_t *r, gh_http_header_t *headers, size_t *nheaders,
    const gh_http_limits_t *limits)
{
    head_scan_t  st;
    head_kind_t  k;
    ssize_t      rc;

    st.scan_from = r->scan_from;
    st.line_start = r->line_start;
    st.lines = r->lines;
    st.empty_lines = r->empty_lines;

    k.response = false;
    k.max_start = limits->max_request_line;
    k.start_err = GH_HTTP_PARSE_URI_TOO_LONG;
    k.max_empty = GH_HTTP_MAX_EMPTY_LINES;
    k.out = r;

    rc = parse_any_head(buf, len, &st, &k, limits, headers, nheaders);

    r->scan_from = st.scan_from;
    r->line_start = st.line_start;
    r->lines = st.lines;
    r->empty_lines = st.empty_lines;
    return rc;
}

ssize_t
gh_http_parse_response_head(const uint8_t *buf, size_t len,
    gh_http_status_head_t *s, gh_http_header_t *headers, size_t *nheaders,
    const gh_http_limits_t *limits)
{
    head_scan_t  st;
    head_kind_t  k;
    ssize_t      rc;

    st.scan_from = s->scan_from;
    st.line_start = s->line_start;
    st.lines = s->lines;
    st.empty_lines = s->empty_lines;

    /* the status line has no limit of its own; a header's is plenty.  No
     * empty lines are skipped: before a response they mean the previous
     * response on this connection was longer than its framing said. */
    k.response = true;
    k.max_start = limits->max_header_line;
    k.start_err = GH_HTTP_PARSE_HEADER_TOO_LARGE;
    k.max_empty = 0;
    k.out = s;

    rc = parse_any_head(buf, len, &st, &k, limits, headers, nheaders);

    s->scan_from = st.scan_from;
    s->line_start = st.line_start;
    s->lines = st.lines;
    s->empty_lines = st.empty_lines;
    return rc;
}

/*
 * Transfer-Encoding = #transfer-coding (RFC 9112 6.1).  Only "chunked"
 * alone is supported: other codings return 0 and the caller answers 501.
 * Empty list elements, parameters and any byte that is not a token or
 * OWS make the value malformed (-1): whether "chunked;x" or ", chunked"
 * means chunked is exactly what a proxy and its upstream may disagree on.
 */
int
gh_http_te_is_chunked(const gh_str_t *value)
{
    const uint8_t *p = value->data;
    size_t         n = value->len, i = 0, t;
    unsigned       count = 0;
    bool           chunked = false;

    if (n == 0) {
        return -1;
    }

    for (;;) {
        while (i < n && gh_http_is_ows(p[i])) {
            i++;
        }
        for (t = i; i < n && gh_http_is_tchar(p[i]); i++) {
            /* void */
        }
        if (i == t) {
            return -1;
        }
        chunked = (i - t == 7 && caseeq_lit(p + t, "chunked", 7));
        count++;

        while (i < n && gh_http_is_ows(p[i])) {
            i++;
        }
        if (i == n) {
            break;
        }
        if (p[i] != ',') {
            return -1;
        }
        i++;
    }

    return (count == 1 && chunked) ? 1 : 0;
}

/*
 * Content-Length = 1*DIGIT (RFC 9110 8.6).  A list "5, 5" is legal to
 * collapse, but refusing it costs nothing and removes a smuggling vector.
 */
int64_t
gh_http_parse_content_length(const gh_str_t *value)
{
    int64_t  v = 0;
    size_t   i;
    int      d;

    if (value->len == 0 || value->len > 19) {
        return -1;
    }
    for (i = 0; i < value->len; i++) {
        if (!is_digit(value->data[i])) {
            return -1;
        }
        d = value->data[i] - '0';
        if (v > (INT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    return v;
}
