/*
 * gh_http_static_module.c: files from disk.  root, alias, index, try_files
 * and the content handler the core falls back on when a location has no
 * handler of its own (nginx's static and index modules).
 *
 *   URI -> path:  root + URI, or alias + the URI past the location's name
 *                 (in a regex location the alias is the whole path, built
 *                 from the location's captures)
 *   PRECONTENT:   try_files checks each file ("name/" asks for the
 *                 directory "name"); the first one found becomes r->uri,
 *                 else the last parameter: "=code", "@named" or a URI for
 *                 an internal redirect
 *   CONTENT:      ".../" -> the first index file that exists (internal
 *                 redirect), 403 when none, 404 without the directory;
 *                 a directory without its '/' -> 301 to uri + "/";
 *                 a regular file -> 200 (or 304 / 412 by the conditional
 *                 headers) with the body as a file buf, sent by sendfile
 *
 * The file descriptor belongs to the request: an arena cleanup closes it,
 * whatever way the response ends.  Content-Type comes from a small
 * built-in table of extensions (the `types` block is accepted but not
 * read), default_type for the rest.  No range requests yet.
 */
#include "gh_http.h"
#include "gh_http_modules.h"
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    gh_http_complex_value_t  value;
    bool                     dir;       /* written with a trailing '/' */
} gh_http_try_file_t;

typedef struct {
    gh_http_complex_value_t  root;      /* root, or alias when `alias` */
    bool                     root_set;
    bool                     alias;
    bool                     alias_regex;  /* alias is the whole path */
    size_t                   alias_len;    /* location name it replaces */
    const char              *prefix;    /* for a root made of variables */
    gh_array_t              *index;     /* gh_http_complex_value_t */
    gh_array_t              *try_files; /* gh_http_try_file_t, the last
                                           one the fallback; not
                                           inherited, as in nginx */
} gh_http_static_loc_conf_t;

static const char *gh_http_static_root(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_http_static_index_set(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_static_try_files_set(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static void *gh_http_static_create_loc_conf(gh_conf_t *cf);
static const char *gh_http_static_merge_loc_conf(gh_conf_t *cf, void *parent,
    void *child);
static gh_int_t gh_http_static_init(gh_conf_t *cf);

static const gh_command_t gh_http_static_commands[] = {
    { "root", GH_HTTP_MAIN_CONF | GH_HTTP_SRV_CONF | GH_HTTP_LOC_CONF
          | GH_HTTP_LIF_CONF,
      GH_CONF_TAKE1, gh_http_static_root, GH_CONF_LOC_OFFSET, 0, NULL },
    { "alias", GH_HTTP_LOC_CONF, GH_CONF_TAKE1, gh_http_static_root,
      GH_CONF_LOC_OFFSET, 0, NULL },
    { "index", GH_HTTP_MAIN_CONF | GH_HTTP_SRV_CONF | GH_HTTP_LOC_CONF,
      GH_CONF_1MORE, gh_http_static_index_set, GH_CONF_LOC_OFFSET, 0, NULL },
    { "try_files", GH_HTTP_SRV_CONF | GH_HTTP_LOC_CONF, GH_CONF_2MORE,
      gh_http_static_try_files_set, GH_CONF_LOC_OFFSET, 0, NULL },
    GH_COMMAND_END
};

gh_module_t gh_http_static_module = {
    .name = "http_static",
    .commands = gh_http_static_commands,
    .create_loc_conf = gh_http_static_create_loc_conf,
    .merge_loc_conf = gh_http_static_merge_loc_conf,
    .postconfiguration = gh_http_static_init,
};

/* --- helpers shared with the rewrite module -------------------------- */

void
gh_http_set_uri(gh_http_request_t *r, const gh_str_t *uri)
{
    r->uri = *uri;
    r->exten.len = 0;
    r->exten.data = NULL;
    /* extension: after the last '.' of the last segment */
    for (size_t i = uri->len; i > 0; i--) {
        uint8_t ch = uri->data[i - 1];

        if (ch == '/') {
            break;
        }
        if (ch == '.') {
            r->exten.data = uri->data + i;
            r->exten.len = uri->len - i;
            break;
        }
    }
}

/* --- MIME types ------------------------------------------------------ */

static const struct {
    const char *ext;
    const char *type;
} gh_http_static_types[] = {
    { "html", "text/html" },         { "htm", "text/html" },
    { "shtml", "text/html" },        { "css", "text/css" },
    { "xml", "text/xml" },           { "txt", "text/plain" },
    { "csv", "text/csv" },           { "md", "text/markdown" },
    { "js", "application/javascript" },
    { "mjs", "application/javascript" },
    { "json", "application/json" },  { "map", "application/json" },
    { "wasm", "application/wasm" },  { "pdf", "application/pdf" },
    { "zip", "application/zip" },    { "gz", "application/gzip" },
    { "tar", "application/x-tar" },  { "rss", "application/rss+xml" },
    { "atom", "application/atom+xml" },
    { "bin", "application/octet-stream" },
    { "png", "image/png" },          { "jpg", "image/jpeg" },
    { "jpeg", "image/jpeg" },        { "gif", "image/gif" },
    { "svg", "image/svg+xml" },      { "svgz", "image/svg+xml" },
    { "ico", "image/x-icon" },       { "webp", "image/webp" },
    { "avif", "image/avif" },        { "bmp", "image/x-ms-bmp" },
    { "woff", "font/woff" },         { "woff2", "font/woff2" },
    { "ttf", "font/ttf" },           { "otf", "font/otf" },
    { "mp4", "video/mp4" },          { "webm", "video/webm" },
    { "mpeg", "video/mpeg" },        { "mov", "video/quicktime" },
    { "mp3", "audio/mpeg" },         { "ogg", "audio/ogg" },
    { "wav", "audio/wav" },          { "m4a", "audio/x-m4a" },
};

const char *
gh_http_static_type(const gh_str_t *exten)
{
    for (size_t i = 0; i < gh_nelems(gh_http_static_types); i++) {
        if (gh_str_caseeq_c(exten, gh_http_static_types[i].ext)) {
            return gh_http_static_types[i].type;
        }
    }
    return NULL;
}

/* --- HTTP dates ------------------------------------------------------ */

static const char gh_http_static_months[] =
    "JanFebMarAprMayJunJulAugSepOctNovDec";
static const char gh_http_static_wdays[] = "SunMonTueWedThuFriSat";

size_t
gh_http_format_time(uint8_t *buf, size_t len, int64_t t)
{
    struct tm tm;
    time_t    tt = (time_t) t;
    int       n;

    if (gmtime_r(&tt, &tm) == NULL) {
        return 0;
    }
    /* by hand rather than strftime(): the names must not follow a locale */
    n = snprintf((char *) buf, len, "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT",
        &gh_http_static_wdays[tm.tm_wday * 3], tm.tm_mday,
        &gh_http_static_months[tm.tm_mon * 3], tm.tm_year + 1900, tm.tm_hour,
        tm.tm_min, tm.tm_sec);
    return n > 0 && (size_t) n < len ? (size_t) n : 0;
}

static bool
gh_http_time_num(const uint8_t **pp, const uint8_t *end, size_t digits,
    int *out)
{
    const uint8_t *p = *pp;
    int            v = 0;

    if ((size_t) (end - p) < digits) {
        return false;
    }
    for (size_t i = 0; i < digits; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        v = v * 10 + (p[i] - '0');
    }
    *pp = p + digits;
    *out = v;
    return true;
}

static bool
gh_http_time_month(const uint8_t **pp, const uint8_t *end, int *mon)
{
    const uint8_t *p = *pp;

    if (end - p < 3) {
        return false;
    }
    for (int m = 0; m < 12; m++) {
        if (memcmp(p, &gh_http_static_months[m * 3], 3) == 0) {
            *mon = m;
            *pp = p + 3;
            return true;
        }
    }
    return false;
}

static bool
gh_http_time_char(const uint8_t **pp, const uint8_t *end, uint8_t c)
{
    if (*pp < end && **pp == c) {
        (*pp)++;
        return true;
    }
    return false;
}

/* "HH:MM:SS" */
static bool
gh_http_time_clock(const uint8_t **pp, const uint8_t *end, struct tm *tm)
{
    return gh_http_time_num(pp, end, 2, &tm->tm_hour)
        && gh_http_time_char(pp, end, ':')
        && gh_http_time_num(pp, end, 2, &tm->tm_min)
        && gh_http_time_char(pp, end, ':')
        && gh_http_time_num(pp, end, 2, &tm->tm_sec);
}

/*
 * The three date forms HTTP allows (RFC 9110 5.6.7):
 *   Sun, 06 Nov 1994 08:49:37 GMT     IMF-fixdate
 *   Sunday, 06-Nov-94 08:49:37 GMT    RFC 850 (two-digit year)
 *   Sun Nov  6 08:49:37 1994          asctime
 * Returns seconds since the epoch, or -1.
 */
int64_t
gh_http_parse_time(const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    struct tm      tm;
    bool           ok;

    memset(&tm, 0, sizeof(tm));
    while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
        p++;
    }
    if (gh_http_time_char(&p, end, ',')) {
        if (!gh_http_time_char(&p, end, ' ')
            || !gh_http_time_num(&p, end, 2, &tm.tm_mday))
        {
            return -1;
        }
        if (gh_http_time_char(&p, end, ' ')) {
            ok = gh_http_time_month(&p, end, &tm.tm_mon)
                && gh_http_time_char(&p, end, ' ')
                && gh_http_time_num(&p, end, 4, &tm.tm_year);
            tm.tm_year -= 1900;
        } else {
            ok = gh_http_time_char(&p, end, '-')
                && gh_http_time_month(&p, end, &tm.tm_mon)
                && gh_http_time_char(&p, end, '-')
                && gh_http_time_num(&p, end, 2, &tm.tm_year);
            /* RFC 9110: a year that looks more than 50 years ahead is in
             * the past century */
            if (tm.tm_year < 70) {
                tm.tm_year += 100;
            }
        }
        ok = ok && gh_http_time_char(&p, end, ' ')
            && gh_http_time_clock(&p, end, &tm)
            && end - p == 4 && memcmp(p, " GMT", 4) == 0;
    } else {
        ok = gh_http_time_char(&p, end, ' ')
            && gh_http_time_month(&p, end, &tm.tm_mon)
            && gh_http_time_char(&p, end, ' ');
        if (ok && p < end && *p == ' ') {
            p++;
            ok = gh_http_time_num(&p, end, 1, &tm.tm_mday);
        } else {
            ok = ok && gh_http_time_num(&p, end, 2, &tm.tm_mday);
        }
        ok = ok && gh_http_time_char(&p, end, ' ')
            && gh_http_time_clock(&p, end, &tm)
            && gh_http_time_char(&p, end, ' ')
            && gh_http_time_num(&p, end, 4, &tm.tm_year) && p == end;
        tm.tm_year -= 1900;
    }
    if (!ok || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23
        || tm.tm_min > 59 || tm.tm_sec > 60)
    {
        return -1;
    }
    return (int64_t) timegm(&tm);
}

/* --- paths ----------------------------------------------------------- */

static gh_http_static_loc_conf_t *
gh_http_static_conf(gh_http_request_t *r)
{
    /* without the module in the list (some unit tests) its index names
     * another module's conf */
    if (gh_modules[gh_http_static_module.index] != &gh_http_static_module
        || r->loc_conf == NULL)
    {
        return NULL;
    }
    return gh_http_get_module_loc_conf(r, gh_http_static_module);
}

/* the document root as configured: root or alias, variables expanded,
 * made absolute against the prefix */
static gh_int_t
gh_http_static_root_value(gh_http_request_t *r,
    const gh_http_static_loc_conf_t *slcf, gh_str_t *root, gh_str_t *prefix)
{
    if (gh_http_complex_value(r, &slcf->root, root) != GH_OK) {
        return GH_ERROR;
    }
    prefix->len = 0;
    prefix->data = NULL;
    /* a constant root was made absolute at configuration time; one made
     * of variables is joined at run time, as nginx does */
    if ((root->len == 0 || root->data[0] != '/') && slcf->prefix != NULL) {
        prefix->data = (uint8_t *) slcf->prefix;
        prefix->len = strlen(slcf->prefix);
    }
    return GH_OK;
}

/* uri's file under the location's root or alias, NUL-terminated */
static gh_int_t
gh_http_static_map(gh_http_request_t *r, const gh_http_static_loc_conf_t *slcf,
    const gh_str_t *uri, gh_str_t *path)
{
    gh_str_t  root, prefix, rest = *uri;
    uint8_t  *p;

    if (gh_http_static_root_value(r, slcf, &root, &prefix) != GH_OK) {
        return GH_ERROR;
    }
    if (slcf->alias) {
        if (slcf->alias_regex) {
            rest.len = 0;
        } else {
            size_t skip = gh_min(slcf->alias_len, uri->len);

            rest.data = uri->data + skip;
            rest.len = uri->len - skip;
        }
    }
    path->len = prefix.len + root.len + rest.len;
    p = gh_alloc_unaligned(r->arena, path->len + 1);
    if (p == NULL) {
        return GH_ERROR;
    }
    path->data = p;
    if (prefix.len != 0) {
        memcpy(p, prefix.data, prefix.len);
        p += prefix.len;
    }
    if (root.len != 0) {
        memcpy(p, root.data, root.len);
        p += root.len;
    }
    if (rest.len != 0) {
        memcpy(p, rest.data, rest.len);
        p += rest.len;
    }
    *p = '\0';
    return GH_OK;
}

/* a + b in the request's arena, NUL-terminated */
static gh_int_t
gh_http_static_join(gh_http_request_t *r, const gh_str_t *a, const gh_str_t *b,
    gh_str_t *out)
{
    uint8_t *p = gh_alloc_unaligned(r->arena, a->len + b->len + 1);

    if (p == NULL) {
        return GH_ERROR;
    }
    if (a->len != 0) {
        memcpy(p, a->data, a->len);
    }
    if (b->len != 0) {
        memcpy(p + a->len, b->data, b->len);
    }
    p[a->len + b->len] = '\0';
    out->data = p;
    out->len = a->len + b->len;
    return GH_OK;
}

static bool
gh_http_static_not_found_errno(int err)
{
    return err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG;
}

/* the status an open()/stat() failure answers with, logged */
static gh_int_t
gh_http_static_fail(gh_http_request_t *r, const char *what, const char *path,
    int err)
{
    if (gh_http_static_not_found_errno(err)) {
        gh_log(GH_LOG_ERR, &r->conn->log, err, "%s \"%s\" failed", what,
            path);
        return 404;
    }
    if (err == EACCES) {
        gh_log(GH_LOG_ERR, &r->conn->log, err, "%s \"%s\" failed", what,
            path);
        return 403;
    }
    gh_log(GH_LOG_CRIT, &r->conn->log, err, "%s \"%s\" failed", what, path);
    return 500;
}

/* --- variables ------------------------------------------------------- */

static gh_int_t
gh_http_static_var_document_root(gh_http_request_t *r, gh_str_t *v,
    uintptr_t data)
{
    gh_http_static_loc_conf_t *slcf = gh_http_static_conf(r);
    gh_str_t                   root, prefix;

    if (slcf == NULL
        || gh_http_static_root_value(r, slcf, &root, &prefix) != GH_OK)
    {
        return GH_ERROR;
    }
    return gh_http_static_join(r, &prefix, &root, v);
}

static gh_int_t
gh_http_static_var_request_filename(gh_http_request_t *r, gh_str_t *v,
    uintptr_t data)
{
    gh_http_static_loc_conf_t *slcf = gh_http_static_conf(r);

    if (slcf == NULL || gh_http_static_map(r, slcf, &r->uri, v) != GH_OK) {
        return GH_ERROR;
    }
    return GH_OK;
}

/* --- try_files ------------------------------------------------------- */

static gh_int_t
gh_http_static_try_fallback(gh_http_request_t *r, const gh_str_t *v)
{
    gh_str_t uri = *v, args = gh_null_string;
    uint8_t *q;

    if (v->len > 1 && v->data[0] == '=') {
        gh_int_t code = gh_atoi(v->data + 1, v->len - 1);

        if (code == GH_ERROR || code < 100 || code > 999) {
            gh_log(GH_LOG_ERR, &r->conn->log, 0,
                "invalid try_files code \"%.*s\"", (int) v->len,
                (const char *) v->data);
            return 500;
        }
        return code;
    }
    if (v->len != 0 && v->data[0] == '@') {
        return gh_http_named_location(r, v);
    }
    /* only the arguments the parameter names: "/index.php?$args" */
    q = memchr(v->data, '?', v->len);
    if (q != NULL) {
        uri.len = (size_t) (q - v->data);
        args.data = q + 1;
        args.len = v->len - uri.len - 1;
    }
    return gh_http_internal_redirect(r, &uri, &args);
}

static gh_int_t
gh_http_static_try_files(gh_http_request_t *r)
{
    gh_http_static_loc_conf_t *slcf = gh_http_static_conf(r);
    const gh_http_try_file_t  *tf;
    gh_str_t                   v, path;
    struct stat                st;
    size_t                     n;

    if (slcf == NULL || slcf->try_files == NULL) {
        return GH_DECLINED;
    }
    tf = slcf->try_files->elts;
    n = slcf->try_files->nelts;

    for (size_t i = 0; i + 1 < n; i++) {
        if (gh_http_complex_value(r, &tf[i].value, &v) != GH_OK
            || (v.len != 0
                && gh_http_static_map(r, slcf, &v, &path) != GH_OK))
        {
            return 500;
        }
        if (v.len == 0) {
            continue;
        }
        if (stat((const char *) path.data, &st) != 0) {
            if (!gh_http_static_not_found_errno(errno)) {
                gh_log(GH_LOG_ERR, &r->conn->log, errno,
                    "stat() \"%s\" failed", (const char *) path.data);
            }
            continue;
        }
        if ((S_ISDIR(st.st_mode) != 0) != tf[i].dir) {
            continue;
        }
        /* found: the request goes on with it as its URI */
        gh_http_set_uri(r, &v);
        return GH_DECLINED;
    }

    if (gh_http_complex_value(r, &tf[n - 1].value, &v) != GH_OK) {
        return 500;
    }
    return gh_http_static_try_fallback(r, &v);
}

/* --- index ----------------------------------------------------------- */

/* "/dir/" -> the first index file that exists, by internal redirect */
static gh_int_t
gh_http_static_index(gh_http_request_t *r,
    const gh_http_static_loc_conf_t *slcf)
{
    const gh_http_complex_value_t *idx = slcf->index->elts;
    gh_str_t                       dir, name, path, uri;
    struct stat                    st;

    if (gh_http_static_map(r, slcf, &r->uri, &dir) != GH_OK) {
        return 500;
    }
    for (size_t i = 0; i < slcf->index->nelts; i++) {
        if (gh_http_complex_value(r, &idx[i], &name) != GH_OK) {
            return 500;
        }
        if (name.len == 0) {
            continue;
        }
        if (name.data[0] == '/') {
            /* an absolute one (normally the last) is taken unchecked */
            return gh_http_internal_redirect(r, &name, &r->args);
        }
        if (gh_http_static_join(r, &dir, &name, &path) != GH_OK) {
            return 500;
        }
        if (stat((const char *) path.data, &st) == 0) {
            if (gh_http_static_join(r, &r->uri, &name, &uri) != GH_OK) {
                return 500;
            }
            return gh_http_internal_redirect(r, &uri, &r->args);
        }
        if (!gh_http_static_not_found_errno(errno)) {
            return gh_http_static_fail(r, "stat()", (const char *) path.data,
                errno);
        }
        if (i == 0 && stat((const char *) dir.data, &st) != 0) {
            /* no directory at all is a 404, not a forbidden index */
            gh_log(GH_LOG_ERR, &r->conn->log, errno, "\"%s\" is not found",
                (const char *) dir.data);
            return gh_http_static_not_found_errno(errno) ? 404 : 500;
        }
    }
    if (stat((const char *) dir.data, &st) != 0 || !S_ISDIR(st.st_mode)) {
        gh_log(GH_LOG_ERR, &r->conn->log, errno, "\"%s\" is not found",
            (const char *) dir.data);
        return 404;
    }
    gh_log(GH_LOG_ERR, &r->conn->log, 0,
        "directory index of \"%s\" is forbidden", (const char *) dir.data);
    return 403;
}

/* --- the content handler --------------------------------------------- */

static void
gh_http_static_close(void *data)
{
    int *fd = data;

    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static bool
gh_http_static_uri_unsafe(uint8_t c)
{
    return c <= 0x20 || c >= 0x7f || strchr("\"#%?<>\\^`{|}", c) != NULL;
}

/* "/dir" is a directory: 301 to "/dir/" (+ "?args"), the path escaped so
 * that the Location header holds a valid URL */
static gh_int_t
gh_http_static_dir_redirect(gh_http_request_t *r)
{
    static const char hex[] = "0123456789ABCDEF";
    gh_str_t          loc, abs;
    size_t            len = r->uri.len + 2 + r->args.len;
    uint8_t          *p;

    for (size_t i = 0; i < r->uri.len; i++) {
        len += gh_http_static_uri_unsafe(r->uri.data[i]) ? 2 : 0;
    }
    p = gh_alloc_unaligned(r->arena, len);
    if (p == NULL) {
        return 500;
    }
    loc.data = p;
    for (size_t i = 0; i < r->uri.len; i++) {
        uint8_t c = r->uri.data[i];

        if (gh_http_static_uri_unsafe(c)) {
            *p++ = '%';
            *p++ = (uint8_t) hex[c >> 4];
            *p++ = (uint8_t) hex[c & 0x0f];
        } else {
            *p++ = c;
        }
    }
    *p++ = '/';
    if (r->args.len != 0) {
        *p++ = '?';
        memcpy(p, r->args.data, r->args.len);
        p += r->args.len;
    }
    loc.len = (size_t) (p - loc.data);
    if (gh_http_absolute_location(r, &loc, &abs) != GH_OK
        || gh_http_set_location(r, &abs) != GH_OK)
    {
        return 500;
    }
    return 301;
}

/* does one entity tag of a list match etag?  "*" matches any; weak
 * comparison (a W/ prefix is ignored) for If-None-Match */
static bool
gh_http_static_etag_match(const gh_str_t *list, const gh_str_t *etag,
    bool weak)
{
    const uint8_t *p = list->data, *end = p + list->len;

    while (p < end) {
        const uint8_t *s, *e;

        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }
        s = p;
        while (p < end && *p != ',') {
            p++;
        }
        e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }
        if (e - s == 1 && *s == '*') {
            return true;
        }
        if (e - s > 2 && s[0] == 'W' && s[1] == '/') {
            if (!weak) {
                continue;
            }
            s += 2;
        }
        if ((size_t) (e - s) == etag->len && memcmp(s, etag->data, etag->len)
            == 0)
        {
            return true;
        }
    }
    return false;
}

static gh_http_table_elt_t *
gh_http_static_header(gh_http_request_t *r, const char *name)
{
    gh_str_t n;

    n.data = (uint8_t *) name;
    n.len = strlen(name);
    return gh_http_find_header_in(r, &n);
}

/* 0: send the file; 304; 412 (RFC 9110 13.2.2 order, as nginx: the
 * If-Modified-Since test is exact, nginx's default) */
static gh_uint_t
gh_http_static_conditional(gh_http_request_t *r, const gh_str_t *etag,
    int64_t mtime)
{
    gh_http_table_elt_t *im = gh_http_static_header(r, "If-Match");
    gh_http_table_elt_t *ius = gh_http_static_header(r, "If-Unmodified-Since");
    gh_http_table_elt_t *inm = gh_http_static_header(r, "If-None-Match");
    gh_http_table_elt_t *ims = gh_http_static_header(r, "If-Modified-Since");

    if (im != NULL && !gh_http_static_etag_match(&im->value, etag, false)) {
        return 412;
    }
    if (im == NULL && ius != NULL) {
        int64_t t = gh_http_parse_time(ius->value.data, ius->value.len);

        if (t != -1 && mtime > t) {
            return 412;
        }
    }
    if (inm == NULL && ims == NULL) {
        return 0;
    }
    if (ims != NULL
        && gh_http_parse_time(ims->value.data, ims->value.len) != mtime)
    {
        return 0;
    }
    if (inm != NULL && !gh_http_static_etag_match(&inm->value, etag, true)) {
        return 0;
    }
    return 304;
}

/* nginx's strong ETag, "mtime-size" in hex, and the Last-Modified date */
static gh_int_t
gh_http_static_validators(gh_http_request_t *r, const struct stat *st,
    gh_str_t *etag, gh_str_t *lm)
{
    int n;

    etag->data = gh_alloc_unaligned(r->arena, 48);
    lm->data = gh_alloc_unaligned(r->arena, 32);
    if (etag->data == NULL || lm->data == NULL) {
        return GH_ERROR;
    }
    n = snprintf((char *) etag->data, 48, "\"%llx-%llx\"",
        (unsigned long long) st->st_mtime, (unsigned long long) st->st_size);
    etag->len = (size_t) n;
    lm->len = gh_http_format_time(lm->data, 32, (int64_t) st->st_mtime);
    return lm->len != 0 ? GH_OK : GH_ERROR;
}

static gh_int_t
gh_http_static_send(gh_http_request_t *r, int fd, const struct stat *st)
{
    static uint8_t           empty[1];
    gh_http_core_loc_conf_t *clcf = gh_http_get_module_loc_conf(r,
        gh_http_core_module);
    const char              *type = gh_http_static_type(&r->exten);
    gh_str_t                 etag, lm;
    gh_uint_t                cond;
    gh_buf_t                *b;
    gh_chain_t              *cl;
    gh_int_t                 rc;

    if (gh_http_static_validators(r, st, &etag, &lm) != GH_OK) {
        return 500;
    }
    cond = gh_http_static_conditional(r, &etag, (int64_t) st->st_mtime);
    if (cond == 412) {
        return 412;
    }
    /* a 304 carries the validators and the type too, as nginx's */
    if (gh_http_add_header_out(r, "Last-Modified", &lm) == NULL
        || gh_http_add_header_out(r, "ETag", &etag) == NULL)
    {
        return 500;
    }
    if (type != NULL) {
        r->headers_out.content_type.data = (uint8_t *) type;
        r->headers_out.content_type.len = strlen(type);
    } else {
        r->headers_out.content_type = clcf->default_type;
    }
    r->headers_out.status = cond == 304 ? 304 : 200;
    r->headers_out.content_length_n = cond == 304 ? -1 : st->st_size;
    r->headers_out.last_modified_time = (int64_t) st->st_mtime;
    if (cond == 304 || r->method == GH_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = gh_http_send_header(r);
    if (rc == GH_ERROR || rc > GH_OK) {
        return rc;
    }

    b = gh_calloc(r->arena, sizeof(*b));
    if (b == NULL) {
        return GH_ERROR;
    }
    b->last_buf = 1;
    b->fd = -1;
    if (r->header_only || st->st_size == 0) {
        /* the end of the response still has to pass the filters */
        b->start = b->pos = b->last = b->end = empty;
    } else {
        b->in_file = 1;
        b->fd = fd;
        b->file_pos = 0;
        b->file_last = st->st_size;
    }
    cl = gh_chain_link(r->arena, b);
    if (cl == NULL) {
        return GH_ERROR;
    }
    return gh_http_output_filter(r, cl);
}

gh_int_t
gh_http_static_handler(gh_http_request_t *r)
{
    gh_http_static_loc_conf_t *slcf = gh_http_static_conf(r);
    gh_str_t                   path;
    struct stat                st;
    gh_cleanup_t              *cln;
    int                       *fdp;
    int                        fd;

    if (slcf == NULL) {
        return 404;
    }
    if (r->method != GH_HTTP_GET && r->method != GH_HTTP_HEAD
        && r->method != GH_HTTP_POST)
    {
        return 405;
    }
    if (r->uri.len == 0 || r->uri.data[r->uri.len - 1] == '/') {
        return gh_http_static_index(r, slcf);
    }
    if (gh_http_static_map(r, slcf, &r->uri, &path) != GH_OK) {
        return 500;
    }

    /* the cleanup first, so that the fd cannot leak */
    fdp = gh_alloc(r->arena, sizeof(*fdp));
    cln = fdp ? gh_cleanup_add(r->arena, gh_http_static_close, fdp) : NULL;
    if (cln == NULL) {
        return 500;
    }
    *fdp = -1;
    fd = open((const char *) path.data, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd == -1) {
        return gh_http_static_fail(r, "open()", (const char *) path.data,
            errno);
    }
    *fdp = fd;
    if (fstat(fd, &st) != 0) {
        return gh_http_static_fail(r, "fstat()", (const char *) path.data,
            errno);
    }
    if (S_ISDIR(st.st_mode)) {
        return gh_http_static_dir_redirect(r);
    }
    if (!S_ISREG(st.st_mode)) {
        gh_log(GH_LOG_ERR, &r->conn->log, 0, "\"%s\" is not a regular file",
            (const char *) path.data);
        return 404;
    }
    if (r->method == GH_HTTP_POST) {
        return 405;
    }
    /* the request body is not wanted; if it cannot be skipped cleanly
     * the connection cannot carry another request */
    if (r->keepalive && gh_http_discard_request_body(r) != GH_OK) {
        r->keepalive = 0;
    }
    return gh_http_static_send(r, fd, &st);
}

/* --- configuration --------------------------------------------------- */

static void *
gh_http_static_create_loc_conf(gh_conf_t *cf)
{
    /* calloc: nothing set, index and try_files NULL */
    return gh_calloc(cf->arena, sizeof(gh_http_static_loc_conf_t));
}

static const char *
gh_http_static_set_root(gh_conf_t *cf, gh_http_static_loc_conf_t *slcf,
    const gh_str_t *value)
{
    gh_str_t    full;
    const char *err;

    if (memchr(value->data, '$', value->len) != NULL) {
        err = gh_http_compile_complex_value(cf, value, &slcf->root);
        if (err != NULL) {
            return err;
        }
        slcf->prefix = cf->prefix;
        return NULL;
    }
    full.data = (uint8_t *) gh_conf_full_name(cf, value, false);
    if (full.data == NULL) {
        return "out of memory";
    }
    full.len = strlen((const char *) full.data);
    return gh_http_compile_complex_value(cf, &full, &slcf->root);
}

/* root path;  alias path; */
static const char *
gh_http_static_root(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_static_loc_conf_t *slcf = conf;
    gh_http_core_loc_conf_t   *clcf =
        gh_http_conf_get_module_loc_conf(cf, gh_http_core_module);
    gh_str_t                   value = gh_conf_args(cf)[1];
    bool                       alias = strcmp(cmd->name, "alias") == 0;
    const char                *err;

    if (slcf->root_set) {
        if (slcf->alias == alias) {
            return "is duplicate";
        }
        gh_conf_error(cf, "\"%s\" directive is duplicate, \"%s\" directive "
            "was specified earlier", cmd->name, slcf->alias ? "alias" : "root");
        return GH_CONF_ERROR;
    }
    if (alias && clcf->type == GH_HTTP_LOC_NAMED) {
        return "cannot be used inside the named location";
    }
    if (value.len == 0) {
        return "has an empty path";
    }
    /* "root /srv/www/;" is "/srv/www": the URI brings its own '/' */
    if (!alias && value.len > 1 && value.data[value.len - 1] == '/') {
        value.len--;
    }
    err = gh_http_static_set_root(cf, slcf, &value);
    if (err != NULL) {
        return err;
    }
    slcf->root_set = true;
    slcf->alias = alias;
    if (alias) {
        slcf->alias_len = clcf->name.len;
        slcf->alias_regex = clcf->regex != NULL;
    }
    return NULL;
}

/* index file ...; */
static const char *
gh_http_static_index_set(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_static_loc_conf_t *slcf = conf;
    gh_str_t                  *args = gh_conf_args(cf);

    if (slcf->index == NULL) {
        slcf->index = gh_array_create(cf->arena, cf->node->nargs,
            sizeof(gh_http_complex_value_t));
        if (slcf->index == NULL) {
            return "out of memory";
        }
    }
    for (size_t i = 1; i < cf->node->nargs; i++) {
        gh_http_complex_value_t *cv;
        const char              *err;

        if (args[i].len == 0) {
            gh_conf_error(cf, "index \"%.*s\" in \"index\" directive is "
                "invalid", (int) args[i].len, (const char *) args[i].data);
            return GH_CONF_ERROR;
        }
        if (args[i].data[0] == '/' && i != cf->node->nargs - 1) {
            gh_conf_error(cf, "only the last index in \"index\" directive "
                "should be absolute");
            return GH_CONF_ERROR;
        }
        cv = gh_array_push(slcf->index);
        if (cv == NULL) {
            return "out of memory";
        }
        err = gh_http_compile_complex_value(cf, &args[i], cv);
        if (err != NULL) {
            return err;
        }
    }
    return NULL;
}

/* try_files file ... uri | =code | @name; */
static const char *
gh_http_static_try_files_set(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf)
{
    gh_http_static_loc_conf_t *slcf = conf;
    gh_str_t                  *args = gh_conf_args(cf);
    size_t                     n = cf->node->nargs;
    gh_str_t                  *last = &args[n - 1];

    if (slcf->try_files != NULL) {
        return "is duplicate";
    }
    if (last->len > 1 && last->data[0] == '='
        && memchr(last->data, '$', last->len) == NULL)
    {
        gh_int_t code = gh_atoi(last->data + 1, last->len - 1);

        if (code == GH_ERROR || code < 100 || code > 999) {
            gh_conf_error(cf, "invalid code \"%.*s\"", (int) last->len,
                (const char *) last->data);
            return GH_CONF_ERROR;
        }
    }
    slcf->try_files = gh_array_create(cf->arena, n - 1,
        sizeof(gh_http_try_file_t));
    if (slcf->try_files == NULL) {
        return "out of memory";
    }
    for (size_t i = 1; i < n; i++) {
        gh_http_try_file_t *tf = gh_array_push(slcf->try_files);
        gh_str_t            value;
        const char         *err;

        if (tf == NULL) {
            return "out of memory";
        }
        memset(tf, 0, sizeof(*tf));
        value = args[i];
        /* "$uri/" asks for a directory named $uri: the '/' is not part of
         * the name, so "/dir" found that way becomes "/dir" and the
         * content handler redirects it to "/dir/", as nginx does */
        if (i + 1 < n && value.len > 1 && value.data[value.len - 1] == '/') {
            tf->dir = true;
            value.len--;
        }
        err = gh_http_compile_complex_value(cf, &value, &tf->value);
        if (err != NULL) {
            return err;
        }
    }
    return NULL;
}

static const char *
gh_http_static_merge_loc_conf(gh_conf_t *cf, void *parent, void *child)
{
    gh_http_static_loc_conf_t *prev = parent, *conf = child;

    if (!conf->root_set) {
        if (prev->root_set) {
            conf->root = prev->root;
            conf->alias = prev->alias;
            conf->alias_regex = prev->alias_regex;
            conf->alias_len = prev->alias_len;
            conf->prefix = prev->prefix;
        } else {
            /* nginx's default: "html" under the prefix */
            gh_str_t    html = gh_string("html");
            const char *err = gh_http_static_set_root(cf, conf, &html);

            if (err != NULL) {
                return err;
            }
        }
        conf->root_set = true;
    }
    if (conf->index == NULL) {
        conf->index = prev->index;
    }
    if (conf->index == NULL) {
        gh_str_t                 def = gh_string("index.html");
        gh_http_complex_value_t *cv;

        conf->index = gh_array_create(cf->arena, 1,
            sizeof(gh_http_complex_value_t));
        cv = conf->index ? gh_array_push(conf->index) : NULL;
        if (cv == NULL) {
            return "out of memory";
        }
        return gh_http_compile_complex_value(cf, &def, cv);
    }
    return NULL;
}

static gh_int_t
gh_http_static_add_var(gh_conf_t *cf, const char *name, gh_http_var_get_pt get)
{
    gh_str_t            n;
    gh_http_variable_t *v;

    n.data = (uint8_t *) name;
    n.len = strlen(name);
    v = gh_http_add_variable(cf, &n, GH_HTTP_VAR_NOCACHEABLE);
    if (v == NULL) {
        gh_conf_error(cf, "the duplicate \"%s\" variable", name);
        return GH_ERROR;
    }
    v->get = get;
    return GH_OK;
}

static gh_int_t
gh_http_static_init(gh_conf_t *cf)
{
    /* the variables follow the location (root) and the URI: not cached */
    if (gh_http_static_add_var(cf, "document_root",
            gh_http_static_var_document_root) != GH_OK
        || gh_http_static_add_var(cf, "request_filename",
            gh_http_static_var_request_filename) != GH_OK)
    {
        return GH_ERROR;
    }
    return gh_http_phase_add(cf, GH_HTTP_PRECONTENT_PHASE,
        gh_http_static_try_files);
}
