/*
 * gh_http_log_module.c: the access log.
 *
 *   log_format name [escape=default|json|none] string ...;   (http)
 *   access_log path [format [buffer=size] [flush=time] [if=cond]] | off;
 *
 * As nginx: the strings of a log_format are concatenated; "combined" is
 * predefined; several access_log lines may be given at one level, and a
 * level inherits its parent's list only if it sets none; with none
 * anywhere, logs/access.log (relative to the prefix) in "combined" is
 * used.  With escape=default a variable's `"`, `\`, control bytes and
 * bytes >= 0x7f become \xHH, and a variable that is not found is logged
 * as "-"; escape=json escapes for a JSON string and logs a missing value
 * as nothing; escape=none copies bytes as they are.  Literal text of the
 * format is never escaped.
 *
 * Lines are written whole with one write(2) on an O_APPEND descriptor, so
 * the lines of several workers do not interleave.  buffer= and flush= are
 * accepted and checked but do nothing yet: every line is written when
 * its request ends.  Files are opened through the cycle's list, so that
 * USR1 reopens them.  Not supported (rejected): variables in the path,
 * syslog:, gzip.
 */
#include "gh_http.h"
#include "gh_http_modules.h"
#include <stdio.h>
#include <unistd.h>

enum {
    GH_HTTP_LOG_ESCAPE_DEFAULT = 0,
    GH_HTTP_LOG_ESCAPE_JSON,
    GH_HTTP_LOG_ESCAPE_NONE
};

typedef struct {
    gh_str_t                 name;
    unsigned                 escape;
    gh_http_complex_value_t  format;
} gh_http_log_fmt_t;

typedef struct {
    gh_array_t  formats;      /* gh_http_log_fmt_t * */
} gh_http_log_main_conf_t;

typedef struct {
    gh_log_file_t            *file;
    gh_http_log_fmt_t        *format;
    gh_http_complex_value_t  *filter;     /* if=; NULL: always */
} gh_http_log_t;

typedef struct {
    gh_array_t  *logs;        /* gh_http_log_t; NULL: not set here */
    bool         off;
} gh_http_log_loc_conf_t;

static const char *gh_http_log_format(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_http_log_access_log(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static void *gh_http_log_create_main_conf(gh_conf_t *cf);
static void *gh_http_log_create_loc_conf(gh_conf_t *cf);
static const char *gh_http_log_merge_loc_conf(gh_conf_t *cf, void *parent,
    void *child);

static const gh_command_t gh_http_log_commands[] = {
    { "log_format", GH_HTTP_MAIN_CONF, GH_CONF_2MORE, gh_http_log_format,
      GH_CONF_MAIN_OFFSET, 0, NULL },
    { "access_log", GH_ANY_HTTP_CONF | GH_HTTP_LIF_CONF | GH_HTTP_LMT_CONF,
      GH_CONF_1MORE, gh_http_log_access_log, GH_CONF_LOC_OFFSET, 0, NULL },
    GH_COMMAND_END
};

gh_module_t gh_http_log_module = {
    .name = "http_log",
    .commands = gh_http_log_commands,
    .create_main_conf = gh_http_log_create_main_conf,
    .create_loc_conf = gh_http_log_create_loc_conf,
    .merge_loc_conf = gh_http_log_merge_loc_conf,
};

static const char gh_http_log_combined[] =
    "$remote_addr - $remote_user [$time_local] \"$request\" $status "
    "$body_bytes_sent \"$http_referer\" \"$http_user_agent\"";


/* --- escaping -------------------------------------------------------- */

static size_t
gh_http_log_escape_json(uint8_t *dst, const uint8_t *src, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t            len = 0;

    for (size_t i = 0; i < n; i++) {
        uint8_t c = src[i];
        uint8_t e = 0;

        switch (c) {
        case '"':  e = '"'; break;
        case '\\': e = '\\'; break;
        case '\n': e = 'n'; break;
        case '\r': e = 'r'; break;
        case '\t': e = 't'; break;
        case '\b': e = 'b'; break;
        case '\f': e = 'f'; break;
        default: break;
        }
        if (e) {
            if (dst) {
                dst[len] = '\\';
                dst[len + 1] = e;
            }
            len += 2;
        } else if (c < 0x20) {
            if (dst) {
                memcpy(dst + len, "\\u00", 4);
                dst[len + 4] = (uint8_t) hex[c >> 4];
                dst[len + 5] = (uint8_t) hex[c & 0xf];
            }
            len += 6;
        } else {
            if (dst) {
                dst[len] = c;
            }
            len++;
        }
    }
    return len;
}


static size_t
gh_http_log_escape_none(uint8_t *dst, const uint8_t *src, size_t n)
{
    if (dst && n) {
        memcpy(dst, src, n);
    }
    return n;
}


/* --- writing a line -------------------------------------------------- */

static void
gh_http_log_write(gh_http_request_t *r, gh_log_file_t *file,
    const uint8_t *buf, size_t len)
{
    gh_log_t *log = r->conn ? &r->conn->log : &gh_log_stderr;

    while (len) {
        ssize_t n = write(file->fd, buf, len);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            /* EAGAIN included: a log on a pipe must not stall the worker */
            gh_log(GH_LOG_ALERT, log, errno, "write() to \"%s\" failed",
                file->path ? file->path : "stderr");
            return;
        }
        buf += n;
        len -= (size_t) n;
    }
}


static gh_int_t
gh_http_log_line(gh_http_request_t *r, const gh_http_log_t *lg)
{
    const gh_http_log_fmt_t *fmt = lg->format;
    const gh_http_cv_part_t *parts = fmt->format.parts;
    gh_http_escape_pt        escape;
    gh_str_t                 stack_vals[32], *vals = stack_vals;
    uint8_t                  stack_line[4096], *line = stack_line, *p;
    size_t                   len = 1;   /* '\n' */
    gh_uint_t                n = fmt->format.nparts;

    escape = fmt->escape == GH_HTTP_LOG_ESCAPE_JSON ? gh_http_log_escape_json
        : fmt->escape == GH_HTTP_LOG_ESCAPE_NONE ? gh_http_log_escape_none
        : gh_escape_log;

    if (parts == NULL) {
        len += fmt->format.literal.len;
    } else if (n > gh_nelems(stack_vals)) {
        vals = gh_alloc(r->arena, n * sizeof(gh_str_t));
        if (vals == NULL) {
            return GH_ERROR;
        }
    }

    /* values are fetched once (a NOCACHEABLE one could change between a
     * sizing pass and a copying pass); data NULL marks "not found" */
    for (gh_uint_t i = 0; parts && i < n; i++) {
        gh_http_var_value_t *vv;

        if (parts[i].type == GH_HTTP_CV_LITERAL) {
            len += parts[i].literal.len;
            continue;
        }
        vals[i].data = NULL;
        vals[i].len = 0;
        if (parts[i].type == GH_HTTP_CV_VAR) {
            vv = gh_http_get_indexed_variable(r, parts[i].index);
            if (vv != NULL && !vv->not_found) {
                vals[i] = vv->value;
                if (vals[i].data == NULL) {
                    vals[i].data = (uint8_t *) "";
                }
            }
        } else if (gh_http_capture_value(r, parts[i].index, &vals[i])
                   != GH_OK)
        {
            vals[i].data = NULL;
        }
        if (vals[i].data == NULL) {
            len += fmt->escape == GH_HTTP_LOG_ESCAPE_DEFAULT ? 1 : 0;
        } else {
            len += escape(NULL, vals[i].data, vals[i].len);
        }
    }

    if (len > sizeof(stack_line)) {
        line = gh_alloc_unaligned(r->arena, len);
        if (line == NULL) {
            return GH_ERROR;
        }
    }

    p = line;
    if (parts == NULL) {
        memcpy(p, fmt->format.literal.data, fmt->format.literal.len);
        p += fmt->format.literal.len;
    }
    for (gh_uint_t i = 0; parts && i < n; i++) {
        if (parts[i].type == GH_HTTP_CV_LITERAL) {
            memcpy(p, parts[i].literal.data, parts[i].literal.len);
            p += parts[i].literal.len;
        } else if (vals[i].data != NULL) {
            p += escape(p, vals[i].data, vals[i].len);
        } else if (fmt->escape == GH_HTTP_LOG_ESCAPE_DEFAULT) {
            *p++ = '-';
        }
    }
    *p++ = '\n';

    gh_http_log_write(r, lg->file, line, (size_t) (p - line));
    return GH_OK;
}


gh_int_t
gh_http_log_handler(gh_http_request_t *r)
{
    gh_http_log_loc_conf_t *llcf;

    if (r->loc_conf == NULL) {
        return GH_OK;
    }
    llcf = r->loc_conf[gh_http_log_module.index];
    if (llcf == NULL || llcf->off || llcf->logs == NULL) {
        return GH_OK;
    }

    for (size_t i = 0; i < llcf->logs->nelts; i++) {
        const gh_http_log_t *lg = gh_array_at(llcf->logs, gh_http_log_t, i);

        if (lg->filter != NULL) {
            gh_str_t v;

            /* nginx: a condition that is empty or "0" skips the line */
            if (gh_http_complex_value(r, lg->filter, &v) != GH_OK
                || v.len == 0 || (v.len == 1 && v.data[0] == '0'))
            {
                continue;
            }
        }
        (void) gh_http_log_line(r, lg);
    }
    return GH_OK;
}


/* --- configuration --------------------------------------------------- */

static gh_http_log_fmt_t *
gh_http_log_add_format(gh_conf_t *cf, gh_http_log_main_conf_t *lmcf,
    const gh_str_t *name, unsigned escape, const gh_str_t *text)
{
    gh_http_log_fmt_t  *fmt, **slot;
    const char         *rv;

    fmt = gh_calloc(cf->arena, sizeof(*fmt));
    slot = gh_array_push(&lmcf->formats);
    if (fmt == NULL || slot == NULL) {
        return NULL;
    }
    fmt->name = *name;
    fmt->escape = escape;
    rv = gh_http_compile_complex_value(cf, text, &fmt->format);
    if (rv != NULL) {
        if (rv != GH_CONF_ERROR) {
            gh_conf_error(cf, "%s", rv);
        }
        lmcf->formats.nelts--;
        return NULL;
    }
    *slot = fmt;
    return fmt;
}


/* "combined" is compiled on first use: its variable references need the
 * core main conf, which may not exist yet when this module's confs are
 * created */
static gh_http_log_fmt_t *
gh_http_log_find_format(gh_conf_t *cf, gh_http_log_main_conf_t *lmcf,
    const gh_str_t *name)
{
    for (size_t i = 0; i < lmcf->formats.nelts; i++) {
        gh_http_log_fmt_t *fmt =
            *gh_array_at(&lmcf->formats, gh_http_log_fmt_t *, i);

        if (gh_str_eq(&fmt->name, name)) {
            return fmt;
        }
    }
    if (gh_str_eq_c(name, "combined")) {
        gh_str_t text = { sizeof(gh_http_log_combined) - 1,
                          (uint8_t *) gh_http_log_combined };

        return gh_http_log_add_format(cf, lmcf, name, 0, &text);
    }
    return NULL;
}


static const char *
gh_http_log_format(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_log_main_conf_t *lmcf = conf;
    gh_conf_node_t          *n = cf->node;
    gh_str_t                *args = n->args;
    unsigned                 escape = GH_HTTP_LOG_ESCAPE_DEFAULT;
    size_t                   first = 2, len = 0;
    gh_str_t                 text;
    uint8_t                 *p;

    if (gh_str_eq_c(&args[1], "combined")) {
        gh_conf_error(cf, "duplicate \"log_format\" name \"combined\"");
        return GH_CONF_ERROR;
    }
    for (size_t i = 0; i < lmcf->formats.nelts; i++) {
        gh_http_log_fmt_t *fmt =
            *gh_array_at(&lmcf->formats, gh_http_log_fmt_t *, i);

        if (gh_str_eq(&fmt->name, &args[1])) {
            gh_conf_error(cf, "duplicate \"log_format\" name \"%.*s\"",
                (int) args[1].len, (const char *) args[1].data);
            return GH_CONF_ERROR;
        }
    }

    if (args[2].len > 7 && memcmp(args[2].data, "escape=", 7) == 0) {
        gh_str_t e = { args[2].len - 7, args[2].data + 7 };

        if (gh_str_eq_c(&e, "default")) {
            escape = GH_HTTP_LOG_ESCAPE_DEFAULT;
        } else if (gh_str_eq_c(&e, "json")) {
            escape = GH_HTTP_LOG_ESCAPE_JSON;
        } else if (gh_str_eq_c(&e, "none")) {
            escape = GH_HTTP_LOG_ESCAPE_NONE;
        } else {
            gh_conf_error(cf, "unknown log format escaping \"%.*s\"",
                (int) e.len, (const char *) e.data);
            return GH_CONF_ERROR;
        }
        first = 3;
    }
    if (first >= n->nargs) {
        gh_conf_error(cf, "invalid number of arguments in \"log_format\" "
            "directive");
        return GH_CONF_ERROR;
    }

    for (size_t i = first; i < n->nargs; i++) {
        len += args[i].len;
    }
    p = gh_alloc_unaligned(cf->arena, len + 1);
    if (p == NULL) {
        return "out of memory";
    }
    text.data = p;
    text.len = len;
    for (size_t i = first; i < n->nargs; i++) {
        memcpy(p, args[i].data, args[i].len);
        p += args[i].len;
    }
    *p = '\0';

    if (gh_http_log_add_format(cf, lmcf, &args[1], escape, &text) == NULL) {
        return GH_CONF_ERROR;
    }
    return NULL;
}


static gh_int_t
gh_http_log_open(gh_conf_t *cf, gh_http_log_t *lg, const gh_str_t *path)
{
    const char *full;

    if (gh_str_eq_c(path, "stderr")) {
        full = "stderr";
    } else {
        full = gh_conf_full_name(cf, path, false);
        if (full == NULL) {
            return GH_ERROR;
        }
    }
    lg->file = gh_log_open_file(&cf->cycle->files, full);
    if (lg->file == NULL) {
        gh_conf_error(cf, "open() \"%s\" failed (%d: %s)", full, errno,
            strerror(errno));
        return GH_ERROR;
    }
    return GH_OK;
}


static const char *
gh_http_log_param(gh_conf_t *cf, gh_http_log_t *lg, const gh_str_t *a)
{
    if (a->len > 7 && memcmp(a->data, "buffer=", 7) == 0) {
        gh_str_t v = { a->len - 7, a->data + 7 };

        if (gh_parse_size(&v) <= 0) {
            gh_conf_error(cf, "invalid buffer size \"%.*s\"", (int) v.len,
                (const char *) v.data);
            return GH_CONF_ERROR;
        }
        return NULL;
    }
    if (a->len > 6 && memcmp(a->data, "flush=", 6) == 0) {
        gh_str_t v = { a->len - 6, a->data + 6 };

        if (gh_parse_time(&v) <= 0) {
            gh_conf_error(cf, "invalid flush time \"%.*s\"", (int) v.len,
                (const char *) v.data);
            return GH_CONF_ERROR;
        }
        return NULL;
    }
    if (a->len > 3 && memcmp(a->data, "if=", 3) == 0) {
        gh_str_t    v = { a->len - 3, a->data + 3 };
        const char *rv;

        lg->filter = gh_calloc(cf->arena, sizeof(*lg->filter));
        if (lg->filter == NULL) {
            return "out of memory";
        }
        rv = gh_http_compile_complex_value(cf, &v, lg->filter);
        if (rv != NULL && rv != GH_CONF_ERROR) {
            gh_conf_error(cf, "%s", rv);
        }
        return rv ? GH_CONF_ERROR : NULL;
    }
    if (a->len >= 4 && memcmp(a->data, "gzip", 4) == 0) {
        gh_conf_error(cf, "gzip in \"access_log\" is not supported");
        return GH_CONF_ERROR;
    }
    gh_conf_error(cf, "invalid parameter \"%.*s\"", (int) a->len,
        (const char *) a->data);
    return GH_CONF_ERROR;
}


static const char *
gh_http_log_access_log(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_log_loc_conf_t  *llcf = conf;
    gh_http_log_main_conf_t *lmcf;
    gh_conf_node_t          *n = cf->node;
    gh_str_t                *args = n->args;
    gh_str_t                 fname = gh_string("combined");
    gh_http_log_t           *lg;
    const char              *rv;

    if (gh_str_eq_c(&args[1], "off")) {
        if (n->nargs > 2) {
            gh_conf_error(cf, "invalid parameter \"%.*s\"", (int) args[2].len,
                (const char *) args[2].data);
            return GH_CONF_ERROR;
        }
        llcf->off = true;
        return NULL;
    }
    if (memchr(args[1].data, '$', args[1].len) != NULL) {
        gh_conf_error(cf, "variables in the \"access_log\" path are not "
            "supported");
        return GH_CONF_ERROR;
    }
    if (args[1].len >= 7 && memcmp(args[1].data, "syslog:", 7) == 0) {
        gh_conf_error(cf, "syslog in \"access_log\" is not supported");
        return GH_CONF_ERROR;
    }

    if (llcf->logs == NULL) {
        llcf->logs = gh_array_create(cf->arena, 2, sizeof(gh_http_log_t));
        if (llcf->logs == NULL) {
            return "out of memory";
        }
    }
    lg = gh_array_push(llcf->logs);
    if (lg == NULL) {
        return "out of memory";
    }
    memset(lg, 0, sizeof(*lg));

    if (n->nargs >= 3) {
        fname = args[2];
    }
    lmcf = gh_http_conf_get_module_main_conf(cf, gh_http_log_module);
    lg->format = gh_http_log_find_format(cf, lmcf, &fname);
    if (lg->format == NULL) {
        if (!gh_str_eq_c(&fname, "combined")) {
            gh_conf_error(cf, "unknown log format \"%.*s\"", (int) fname.len,
                (const char *) fname.data);
        }
        return GH_CONF_ERROR;
    }

    for (size_t i = 3; i < n->nargs; i++) {
        rv = gh_http_log_param(cf, lg, &args[i]);
        if (rv != NULL) {
            return rv;
        }
    }

    if (gh_http_log_open(cf, lg, &args[1]) != GH_OK) {
        return GH_CONF_ERROR;
    }
    return NULL;
}


static void *
gh_http_log_create_main_conf(gh_conf_t *cf)
{
    gh_http_log_main_conf_t *lmcf = gh_calloc(cf->arena, sizeof(*lmcf));

    if (lmcf == NULL
        || gh_array_init(&lmcf->formats, cf->arena, 4,
               sizeof(gh_http_log_fmt_t *)) != GH_OK)
    {
        return NULL;
    }
    return lmcf;
}


static void *
gh_http_log_create_loc_conf(gh_conf_t *cf)
{
    return gh_calloc(cf->arena, sizeof(gh_http_log_loc_conf_t));
}


static const char *
gh_http_log_merge_loc_conf(gh_conf_t *cf, void *parent, void *child)
{
    gh_http_log_loc_conf_t  *prev = parent, *conf = child;
    gh_http_log_main_conf_t *lmcf;
    gh_http_log_t           *lg;
    gh_str_t                 path = gh_string("logs/access.log");
    gh_str_t                 name = gh_string("combined");

    if (conf->logs != NULL || conf->off) {
        return NULL;
    }
    conf->logs = prev->logs;
    conf->off = prev->off;
    if (conf->logs != NULL || conf->off) {
        return NULL;
    }

    /* nothing anywhere above: nginx's default log */
    conf->logs = gh_array_create(cf->arena, 1, sizeof(gh_http_log_t));
    if (conf->logs == NULL) {
        return "out of memory";
    }
    lg = gh_array_push(conf->logs);
    if (lg == NULL) {
        return "out of memory";
    }
    memset(lg, 0, sizeof(*lg));
    lmcf = gh_http_conf_get_module_main_conf(cf, gh_http_log_module);
    lg->format = gh_http_log_find_format(cf, lmcf, &name);
    if (lg->format == NULL || gh_http_log_open(cf, lg, &path) != GH_OK) {
        return GH_CONF_ERROR;
    }
    return NULL;
}
