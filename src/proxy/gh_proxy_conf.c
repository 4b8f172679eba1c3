/*
 * gh_proxy_conf.c: proxy_* directives, defaults and inheritance.
 *
 * proxy_set_header follows nginx: a level that sets any header replaces
 * everything inherited; the defaults "Host: $proxy_host" and
 * "Connection: close" are added under the configured ones unless the same
 * name is configured.  A value that evaluates to "" removes the header.
 */
#include "gh_proxy.h"
#include "../http/gh_http_request.h"
#include <stdio.h>

static void *gh_proxy_create_loc_conf(gh_conf_t *cf);
static const char *gh_proxy_merge_loc_conf(gh_conf_t *cf, void *prev,
    void *conf);
static gh_int_t gh_proxy_preconf(gh_conf_t *cf);

static const char *gh_proxy_pass(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_proxy_set_header(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_proxy_http_version(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_proxy_buffers(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_proxy_redirect(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_proxy_cookie(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_proxy_next_upstream(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_proxy_ignore_headers(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_proxy_method(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_proxy_max_temp(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_proxy_accept(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);

#define ANY (GH_HTTP_MAIN_CONF | GH_HTTP_SRV_CONF | GH_HTTP_LOC_CONF)
#define ANYIF (ANY | GH_HTTP_LIF_CONF)
#define LOFF GH_CONF_LOC_OFFSET
#define P(f) offsetof(gh_proxy_loc_conf_t, f)

static const gh_command_t gh_proxy_commands[] = {
    { "proxy_pass", GH_HTTP_LOC_CONF | GH_HTTP_LIF_CONF | GH_HTTP_LMT_CONF,
      GH_CONF_TAKE1, gh_proxy_pass, LOFF, 0, NULL },
    { "proxy_set_header", ANY, GH_CONF_TAKE2, gh_proxy_set_header, LOFF, 0,
      NULL },
    { "proxy_pass_request_headers", ANY, GH_CONF_FLAG, gh_conf_set_flag, LOFF,
      P(pass_request_headers), NULL },
    { "proxy_pass_request_body", ANY, GH_CONF_FLAG, gh_conf_set_flag, LOFF,
      P(pass_request_body), NULL },
    { "proxy_http_version", ANY, GH_CONF_TAKE1, gh_proxy_http_version, LOFF,
      0, NULL },
    { "proxy_method", ANY, GH_CONF_TAKE1, gh_proxy_method, LOFF, 0, NULL },
    { "proxy_request_buffering", ANY, GH_CONF_FLAG, gh_conf_set_flag, LOFF,
      P(request_buffering), NULL },
    { "proxy_connect_timeout", ANY, GH_CONF_TAKE1, gh_conf_set_msec, LOFF,
      P(connect_timeout), NULL },
    { "proxy_send_timeout", ANY, GH_CONF_TAKE1, gh_conf_set_msec, LOFF,
      P(send_timeout), NULL },
    { "proxy_read_timeout", ANY, GH_CONF_TAKE1, gh_conf_set_msec, LOFF,
      P(read_timeout), NULL },
    { "proxy_buffering", ANY, GH_CONF_FLAG, gh_conf_set_flag, LOFF,
      P(buffering), NULL },
    { "proxy_buffer_size", ANY, GH_CONF_TAKE1, gh_conf_set_size, LOFF,
      P(buffer_size), NULL },
    { "proxy_buffers", ANY, GH_CONF_TAKE2, gh_proxy_buffers, LOFF, 0, NULL },
    { "proxy_busy_buffers_size", ANY, GH_CONF_TAKE1, gh_conf_set_size, LOFF,
      P(busy_buffers_size), NULL },
    { "proxy_max_temp_file_size", ANY, GH_CONF_TAKE1, gh_proxy_max_temp, LOFF,
      0, NULL },
    { "proxy_temp_file_write_size", ANY, GH_CONF_TAKE1, gh_conf_set_size,
      LOFF, P(temp_file_write_size), NULL },
    { "proxy_temp_path", ANY, GH_CONF_TAKE1234, gh_proxy_accept, LOFF, 0,
      NULL },
    { "proxy_hide_header", ANY, GH_CONF_TAKE1, gh_conf_set_str_array, LOFF,
      P(hide_headers), NULL },
    { "proxy_pass_header", ANY, GH_CONF_TAKE1, gh_conf_set_str_array, LOFF,
      P(pass_headers), NULL },
    { "proxy_ignore_headers", ANY, GH_CONF_1MORE, gh_proxy_ignore_headers,
      LOFF, 0, NULL },
    { "proxy_intercept_errors", ANY, GH_CONF_FLAG, gh_conf_set_flag, LOFF,
      P(intercept_errors), NULL },
    { "proxy_redirect", ANY, GH_CONF_TAKE12, gh_proxy_redirect, LOFF, 0,
      NULL },
    { "proxy_cookie_path", ANY, GH_CONF_TAKE12, gh_proxy_cookie, LOFF,
      P(cookie_paths), NULL },
    { "proxy_cookie_domain", ANY, GH_CONF_TAKE12, gh_proxy_cookie, LOFF,
      P(cookie_domains), NULL },
    { "proxy_ignore_client_abort", ANY, GH_CONF_FLAG, gh_conf_set_flag, LOFF,
      P(ignore_client_abort), NULL },
    { "proxy_next_upstream", ANY, GH_CONF_1MORE, gh_proxy_next_upstream, LOFF,
      0, NULL },
    { "proxy_next_upstream_tries", ANY, GH_CONF_TAKE1, gh_conf_set_num, LOFF,
      P(next_upstream_tries), NULL },
    { "proxy_next_upstream_timeout", ANY, GH_CONF_TAKE1, gh_conf_set_msec,
      LOFF, P(next_upstream_timeout), NULL },
    { "proxy_socket_keepalive", ANY, GH_CONF_FLAG, gh_conf_set_flag, LOFF,
      P(socket_keepalive), NULL },
    /* caching arrives with the cache issue; these parse so that the
     * recommended configuration blocks load today */
    { "proxy_cache_bypass", ANY, GH_CONF_1MORE, gh_proxy_accept, LOFF, 0,
      NULL },
    { "proxy_no_cache", ANY, GH_CONF_1MORE, gh_proxy_accept, LOFF, 0, NULL },
    { "proxy_headers_hash_max_size", ANY, GH_CONF_TAKE1, gh_proxy_accept,
      LOFF, 0, NULL },
    { "proxy_headers_hash_bucket_size", ANY, GH_CONF_TAKE1, gh_proxy_accept,
      LOFF, 0, NULL },
    GH_COMMAND_END
};

gh_module_t gh_http_proxy_module = {
    .name = "http_proxy",
    .commands = gh_proxy_commands,
    .create_main_conf = NULL,
    .create_loc_conf = gh_proxy_create_loc_conf,
    .merge_loc_conf = gh_proxy_merge_loc_conf,
    .postconfiguration = gh_proxy_preconf,
};

/* ------------------------------------------------------------------ */

gh_int_t
gh_proxy_parse_url(const gh_str_t *url, gh_proxy_url_t *u, const char **err)
{
    memset(u, 0, sizeof(*u));
    const uint8_t *p = url->data, *end = url->data + url->len;
    size_t skip;

    if (url->len > 7 && gh_strncasecmp(p, (const uint8_t *) "http://", 7)
        == 0)
    {
        gh_str_set(&u->scheme, "http");
        skip = 7;
    } else if (url->len > 8
        && gh_strncasecmp(p, (const uint8_t *) "https://", 8) == 0)
    {
        gh_str_set(&u->scheme, "https");
        skip = 8;
    } else {
        *err = "invalid URL prefix";
        return GH_ERROR;
    }
    p += skip;

    if ((size_t) (end - p) > 5 && memcmp(p, "unix:", 5) == 0) {
        /* unix:/path.sock[:/uri] */
        const uint8_t *colon = memchr(p + 5, ':', (size_t) (end - p - 5));
        const uint8_t *hend = colon ? colon : end;
        u->host.data = (uint8_t *) p;
        u->host.len = (size_t) (hend - p);
        u->host_port = u->host;
        if (u->host.len <= 5) {
            *err = "no path in the unix domain socket";
            return GH_ERROR;
        }
        if (colon) {
            u->uri.data = (uint8_t *) colon + 1;
            u->uri.len = (size_t) (end - colon - 1);
            if (u->uri.len == 0) {
                u->uri.data = NULL;
            }
        }
        return GH_OK;
    }

    const uint8_t *slash = memchr(p, '/', (size_t) (end - p));
    const uint8_t *hend = slash ? slash : end;
    if (hend == p) {
        *err = "no host in URL";
        return GH_ERROR;
    }
    u->host_port.data = (uint8_t *) p;
    u->host_port.len = (size_t) (hend - p);

    const uint8_t *colon = NULL;
    if (*p == '[') {
        const uint8_t *rb = memchr(p, ']', (size_t) (hend - p));
        if (rb == NULL) {
            *err = "invalid IPv6 address";
            return GH_ERROR;
        }
        if (rb + 1 < hend && rb[1] == ':') {
            colon = rb + 1;
        }
    } else {
        colon = memchr(p, ':', (size_t) (hend - p));
    }
    u->host.data = (uint8_t *) p;
    u->host.len = (size_t) ((colon ? colon : hend) - p);
    if (colon) {
        gh_int_t port = gh_atoi(colon + 1, (size_t) (hend - colon - 1));
        if (port < 1 || port > 65535) {
            *err = "invalid port";
            return GH_ERROR;
        }
        u->port = (int) port;
    }
    if (slash) {
        u->uri.data = (uint8_t *) slash;
        u->uri.len = (size_t) (end - slash);
    }
    return GH_OK;
}

static const char *
gh_proxy_pass(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_proxy_loc_conf_t *plcf = conf;
    gh_http_core_loc_conf_t *clcf =
        gh_http_conf_get_module_loc_conf(cf, gh_http_core_module);
    gh_str_t *value = &cf->node->args[1];

    if (plcf->set) {
        return "is duplicate";
    }
    plcf->set = true;
    plcf->url = *value;
    clcf->handler = gh_proxy_handler;
    /* "/dir/" with proxy_pass answers "/dir" with a 301 (nginx) */
    if (clcf->name.len && clcf->name.data[clcf->name.len - 1] == '/'
        && clcf->type != GH_HTTP_LOC_REGEX
        && clcf->type != GH_HTTP_LOC_REGEX_CASELESS
        && clcf->type != GH_HTTP_LOC_NAMED)
    {
        clcf->auto_redirect = 1;
    }

    if (memchr(value->data, '$', value->len)) {
        const char *rv = gh_http_compile_complex_value(cf, value,
            &plcf->url_cv);
        if (rv) {
            return rv;
        }
        plcf->url_vars = true;
        return NULL;
    }

    gh_proxy_url_t u;
    const char *err = NULL;
    if (gh_proxy_parse_url(value, &u, &err) != GH_OK) {
        gh_conf_error(cf, "%s in \"%.*s\"", err, (int) value->len,
            value->data);
        return GH_CONF_ERROR;
    }
    plcf->scheme.data = value->data;
    plcf->scheme.len = u.scheme.len + 3;

    if (u.uri.data) {
        bool in_if = cf->ctx_type == GH_HTTP_LIF_CONF;
        if (clcf->type == GH_HTTP_LOC_REGEX
            || clcf->type == GH_HTTP_LOC_REGEX_CASELESS || in_if
            || clcf->type == GH_HTTP_LOC_NAMED)
        {
            gh_conf_error(cf, "\"proxy_pass\" cannot have URI part in "
                "location given by regular expression, or inside named "
                "location, or inside \"if\" statement, or inside "
                "\"limit_except\" block");
            return GH_CONF_ERROR;
        }
        plcf->uri = u.uri;
        plcf->location = clcf->name;
        plcf->location_prefix = true;
    }
    plcf->location = clcf->name;

    /* https (issue 7): without a port the implicit group uses 443 */
    bool https = u.scheme.len == 5;
    plcf->upstream = https
        ? gh_upstream_add_default_port(cf, &u.host, u.port, 443)
        : gh_upstream_add(cf, &u.host, u.port, true);
    if (plcf->upstream == NULL) {
        return GH_CONF_ERROR;
    }
    /* $proxy_host: host[:port], the port only when not the default */
    plcf->host_header = u.host_port;
    if (u.port == (https ? 443 : 80)) {
        plcf->host_header = u.host;
    }
    if (u.host.len > 5 && memcmp(u.host.data, "unix:", 5) == 0) {
        gh_str_set(&plcf->host_header, "localhost");
    }
    char *pt = gh_alloc_unaligned(cf->arena, 8);
    if (pt == NULL) {
        return "out of memory";
    }
    int n = snprintf(pt, 8, "%d", u.port ? u.port : (https ? 443 : 80));
    plcf->port_text.data = (uint8_t *) pt;
    plcf->port_text.len = (size_t) n;
    return NULL;
}

static const char *
gh_proxy_set_header(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_proxy_loc_conf_t *plcf = conf;
    gh_str_t *args = cf->node->args;

    if (plcf->headers == NULL) {
        plcf->headers = gh_array_create(cf->arena, 8,
            sizeof(gh_proxy_header_t));
        if (plcf->headers == NULL) {
            return "out of memory";
        }
    }
    gh_proxy_header_t *h = gh_array_push(plcf->headers);
    if (h == NULL) {
        return "out of memory";
    }
    memset(h, 0, sizeof(*h));
    h->name = args[1];
    return gh_http_compile_complex_value(cf, &args[2], &h->value);
}

static const char *
gh_proxy_http_version(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_proxy_loc_conf_t *plcf = conf;
    gh_str_t *v = &cf->node->args[1];
    if (plcf->http_version != GH_UNSET) {
        return "is duplicate";
    }
    if (gh_str_eq_c(v, "1.0")) {
        plcf->http_version = 1000;
    } else if (gh_str_eq_c(v, "1.1")) {
        plcf->http_version = 1001;
    } else {
        gh_conf_error(cf, "invalid value \"%.*s\"", (int) v->len, v->data);
        return GH_CONF_ERROR;
    }
    return NULL;
}

static const char *
gh_proxy_method(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_proxy_loc_conf_t *plcf = conf;
    if (plcf->method) {
        return "is duplicate";
    }
    plcf->method = gh_calloc(cf->arena, sizeof(*plcf->method));
    if (plcf->method == NULL) {
        return "out of memory";
    }
    return gh_http_compile_complex_value(cf, &cf->node->args[1],
        plcf->method);
}

static const char *
gh_proxy_buffers(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_proxy_loc_conf_t *plcf = conf;
    gh_str_t *args = cf->node->args;
    if (plcf->buffers_num != GH_UNSET) {
        return "is duplicate";
    }
    gh_int_t n = gh_atoi(args[1].data, args[1].len);
    ssize_t size = gh_parse_size(&args[2]);
    if (n < 2 || size <= 0) {
        gh_conf_error(cf, "invalid value \"%.*s %.*s\"", (int) args[1].len,
            args[1].data, (int) args[2].len, args[2].data);
        return GH_CONF_ERROR;
    }
    plcf->buffers_num = n;
    plcf->buffers_size = (size_t) size;
    return NULL;
}

static const char *
gh_proxy_max_temp(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_proxy_loc_conf_t *plcf = conf;
    if (plcf->max_temp_file_size != -1) {
        return "is duplicate";
    }
    ssize_t size = gh_parse_size(&cf->node->args[1]);
    if (size < 0) {
        gh_conf_error(cf, "invalid value \"%.*s\"", (int) cf->node->args[1].len,
            cf->node->args[1].data);
        return GH_CONF_ERROR;
    }
    plcf->max_temp_file_size = (off_t) size;
    return NULL;
}

static gh_int_t
gh_proxy_add_pair(gh_conf_t *cf, gh_array_t **arr, const gh_str_t *from,
    const gh_str_t *to, bool is_default)
{
    if (*arr == NULL) {
        *arr = gh_array_create(cf->arena, 2, sizeof(gh_proxy_redirect_t));
        if (*arr == NULL) {
            return GH_ERROR;
        }
    }
    gh_proxy_redirect_t *pr = gh_array_push(*arr);
    if (pr == NULL) {
        return GH_ERROR;
    }
    memset(pr, 0, sizeof(*pr));
    pr->is_default = is_default;
    if (is_default) {
        return GH_OK;
    }
    if (from->len > 1 && from->data[0] == '~') {
        bool caseless = from->len > 2 && from->data[1] == '*';
        gh_str_t re = { from->len - (caseless ? 2 : 1),
                         from->data + (caseless ? 2 : 1) };
        const char *err = NULL;
        pr->regex = gh_http_regex_compile(cf, &re, caseless, &err);
        if (pr->regex == NULL) {
            gh_conf_error(cf, "%s", err ? err : "invalid regex");
            return GH_ERROR;
        }
    } else if (gh_http_compile_complex_value(cf, from, &pr->from)) {
        return GH_ERROR;
    }
    if (gh_http_compile_complex_value(cf, to, &pr->to)) {
        return GH_ERROR;
    }
    return GH_OK;
}

static const char *
gh_proxy_redirect(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_proxy_loc_conf_t *plcf = conf;
    gh_str_t *args = cf->node->args;

    if (cf->node->nargs == 2) {
        if (gh_str_eq_c(&args[1], "off")) {
            if (plcf->redirects) {
                return "is duplicate";
            }
            plcf->redirect_off = 1;
            return NULL;
        }
        if (gh_str_eq_c(&args[1], "false")) {
            plcf->redirect_off = 1;
            return NULL;
        }
        if (!gh_str_eq_c(&args[1], "default")) {
            gh_conf_error(cf, "invalid parameter \"%.*s\"", (int) args[1].len,
                args[1].data);
            return GH_CONF_ERROR;
        }
        if (plcf->redirect_off == 1) {
            return "is duplicate";
        }
        plcf->redirect_off = 0;
        return gh_proxy_add_pair(cf, &plcf->redirects, NULL, NULL, true)
            == GH_OK ? NULL : GH_CONF_ERROR;
    }
    if (plcf->redirect_off == 1) {
        return "is duplicate";
    }
    plcf->redirect_off = 0;
    return gh_proxy_add_pair(cf, &plcf->redirects, &args[1], &args[2], false)
        == GH_OK ? NULL : GH_CONF_ERROR;
}

static const char *
gh_proxy_cookie(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_array_t **arr = (gh_array_t **) ((uint8_t *) conf + cmd->offset);
    gh_str_t *args = cf->node->args;
    if (cf->node->nargs == 2) {
        if (!gh_str_eq_c(&args[1], "off")) {
            gh_conf_error(cf, "invalid parameter \"%.*s\"", (int) args[1].len,
                args[1].data);
            return GH_CONF_ERROR;
        }
        return NULL;
    }
    return gh_proxy_add_pair(cf, arr, &args[1], &args[2], false) == GH_OK
        ? NULL : GH_CONF_ERROR;
}

static const char *
gh_proxy_next_upstream(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    static const gh_conf_enum_t masks[] = {
        { "error", GH_PROXY_FT_ERROR }, { "timeout", GH_PROXY_FT_TIMEOUT },
        { "invalid_header", GH_PROXY_FT_INVALID_HEADER },
        { "http_500", GH_PROXY_FT_HTTP_500 },
        { "http_502", GH_PROXY_FT_HTTP_502 },
        { "http_503", GH_PROXY_FT_HTTP_503 },
        { "http_504", GH_PROXY_FT_HTTP_504 },
        { "http_403", GH_PROXY_FT_HTTP_403 },
        { "http_404", GH_PROXY_FT_HTTP_404 },
        { "http_429", GH_PROXY_FT_HTTP_429 },
        { "non_idempotent", GH_PROXY_FT_NON_IDEMPOTENT },
        { "off", GH_PROXY_FT_OFF }, { NULL, 0 }
    };
    gh_proxy_loc_conf_t *plcf = conf;
    if (plcf->next_upstream != (gh_uint_t) -1) {
        return "is duplicate";
    }
    plcf->next_upstream = 0;
    for (size_t i = 1; i < cf->node->nargs; i++) {
        gh_str_t *a = &cf->node->args[i];
        const gh_conf_enum_t *e = masks;
        for (; e->name; e++) {
            if (gh_str_eq_c(a, e->name)) {
                break;
            }
        }
        if (e->name == NULL) {
            gh_conf_error(cf, "invalid value \"%.*s\"", (int) a->len,
                a->data);
            return GH_CONF_ERROR;
        }
        plcf->next_upstream |= e->value;
    }
    if ((plcf->next_upstream & GH_PROXY_FT_OFF)
        && plcf->next_upstream != GH_PROXY_FT_OFF)
    {
        return "\"off\" cannot be combined with other values";
    }
    return NULL;
}

static const char *
gh_proxy_ignore_headers(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_proxy_loc_conf_t *plcf = conf;
    if (plcf->ignore_headers != (gh_uint_t) -1) {
        return "is duplicate";
    }
    plcf->ignore_headers = 0;
    for (size_t i = 1; i < cf->node->nargs; i++) {
        gh_str_t *a = &cf->node->args[i];
        if (gh_str_eq_c(a, "X-Accel-Redirect")) {
            plcf->ignore_headers |= GH_PROXY_IGN_XA_REDIRECT;
        } else if (gh_str_eq_c(a, "X-Accel-Buffering")) {
            plcf->ignore_headers |= GH_PROXY_IGN_XA_BUFFERING;
        } else if (gh_str_eq_c(a, "X-Accel-Expires")
                   || gh_str_eq_c(a, "X-Accel-Limit-Rate")
                   || gh_str_eq_c(a, "X-Accel-Charset")
                   || gh_str_eq_c(a, "Expires")
                   || gh_str_eq_c(a, "Cache-Control")
                   || gh_str_eq_c(a, "Set-Cookie")
                   || gh_str_eq_c(a, "Vary"))
        {
            plcf->ignore_headers |= GH_PROXY_IGN_OTHER;
        } else {
            gh_conf_error(cf, "invalid value \"%.*s\"", (int) a->len,
                a->data);
            return GH_CONF_ERROR;
        }
    }
    return NULL;
}

static const char *
gh_proxy_accept(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    return NULL;
}

/* ------------------------------------------------------------------ */

static void *
gh_proxy_create_loc_conf(gh_conf_t *cf)
{
    gh_proxy_loc_conf_t *p = gh_calloc(cf->arena, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->pass_request_headers = GH_UNSET;
    p->pass_request_body = GH_UNSET;
    p->http_version = GH_UNSET;
    p->request_buffering = GH_UNSET;
    p->connect_timeout = GH_UNSET_MSEC;
    p->send_timeout = GH_UNSET_MSEC;
    p->read_timeout = GH_UNSET_MSEC;
    p->buffering = GH_UNSET;
    p->buffer_size = GH_UNSET_SIZE;
    p->buffers_num = GH_UNSET;
    p->busy_buffers_size = GH_UNSET_SIZE;
    p->max_temp_file_size = -1;
    p->temp_file_write_size = GH_UNSET_SIZE;
    p->ignore_headers = (gh_uint_t) -1;
    p->intercept_errors = GH_UNSET;
    p->redirect_off = GH_UNSET;
    p->ignore_client_abort = GH_UNSET;
    p->next_upstream = (gh_uint_t) -1;
    p->next_upstream_tries = GH_UNSET;
    p->next_upstream_timeout = GH_UNSET_MSEC;
    p->socket_keepalive = GH_UNSET;
    return p;
}

#define MERGE(f, d) do { if (c->f == GH_UNSET) c->f = \
    (p->f == GH_UNSET ? (d) : p->f); } while (0)
#define MERGE_MSEC(f, d) do { if (c->f == GH_UNSET_MSEC) c->f = \
    (p->f == GH_UNSET_MSEC ? (d) : p->f); } while (0)
#define MERGE_SIZE(f, d) do { if (c->f == GH_UNSET_SIZE) c->f = \
    (p->f == GH_UNSET_SIZE ? (d) : p->f); } while (0)

static bool
gh_proxy_header_set(gh_array_t *h, const char *name)
{
    if (h == NULL) {
        return false;
    }
    for (size_t i = 0; i < h->nelts; i++) {
        gh_proxy_header_t *e = gh_array_at(h, gh_proxy_header_t, i);
        if (gh_str_caseeq_c(&e->name, name)) {
            return true;
        }
    }
    return false;
}

static const char *
gh_proxy_merge_headers(gh_conf_t *cf, gh_proxy_loc_conf_t *c)
{
    /* nginx's order: the configured headers, then the defaults that
     * were not configured (Host: $proxy_host, Connection: close) */
    gh_array_t *m = gh_array_create(cf->arena, 8, sizeof(gh_proxy_header_t));
    if (m == NULL) {
        return "out of memory";
    }
    if (c->headers) {
        for (size_t i = 0; i < c->headers->nelts; i++) {
            gh_proxy_header_t *h = gh_array_push(m);
            if (h == NULL) {
                return "out of memory";
            }
            *h = *gh_array_at(c->headers, gh_proxy_header_t, i);
        }
    }
    static const char *defaults[][2] = {
        { "Host", "$proxy_host" }, { "Connection", "close" },
    };
    for (size_t i = 0; i < gh_nelems(defaults); i++) {
        if (gh_proxy_header_set(c->headers, defaults[i][0])) {
            continue;
        }
        gh_proxy_header_t *h = gh_array_push(m);
        if (h == NULL) {
            return "out of memory";
        }
        memset(h, 0, sizeof(*h));
        h->name.data = (uint8_t *) defaults[i][0];
        h->name.len = strlen(defaults[i][0]);
        gh_str_t v = { strlen(defaults[i][1]), (uint8_t *) defaults[i][1] };
        const char *rv = gh_http_compile_complex_value(cf, &v, &h->value);
        if (rv) {
            return rv;
        }
    }
    c->headers_merged = m;
    return NULL;
}

static const char *
gh_proxy_merge_loc_conf(gh_conf_t *cf, void *prev, void *conf)
{
    gh_proxy_loc_conf_t *p = prev, *c = conf;

    MERGE(pass_request_headers, 1);
    MERGE(pass_request_body, 1);
    MERGE(http_version, 1000);
    if (c->method == NULL) {
        c->method = p->method;
    }
    MERGE(request_buffering, 1);
    MERGE_MSEC(connect_timeout, 60000);
    MERGE_MSEC(send_timeout, 60000);
    MERGE_MSEC(read_timeout, 60000);
    MERGE(buffering, 1);
    MERGE_SIZE(buffer_size, 4096);
    if (c->buffers_num == GH_UNSET) {
        c->buffers_num = p->buffers_num == GH_UNSET ? 8 : p->buffers_num;
        c->buffers_size = p->buffers_num == GH_UNSET ? 4096 : p->buffers_size;
    }
    MERGE_SIZE(busy_buffers_size, 2 * gh_max(c->buffer_size,
        c->buffers_size));
    if (c->max_temp_file_size == -1) {
        c->max_temp_file_size = p->max_temp_file_size == -1
            ? 1024L * 1024 * 1024 : p->max_temp_file_size;
    }
    MERGE_SIZE(temp_file_write_size, 2 * gh_max(c->buffer_size,
        c->buffers_size));
    if (c->hide_headers == NULL) {
        c->hide_headers = p->hide_headers;
    }
    if (c->pass_headers == NULL) {
        c->pass_headers = p->pass_headers;
    }
    if (c->ignore_headers == (gh_uint_t) -1) {
        c->ignore_headers = p->ignore_headers == (gh_uint_t) -1
            ? 0 : p->ignore_headers;
    }
    MERGE(intercept_errors, 0);
    if (c->redirect_off == GH_UNSET) {
        c->redirect_off = p->redirect_off == GH_UNSET ? 0 : p->redirect_off;
        if (c->redirects == NULL) {
            c->redirects = p->redirects;
        }
    }
    if (c->cookie_paths == NULL) {
        c->cookie_paths = p->cookie_paths;
    }
    if (c->cookie_domains == NULL) {
        c->cookie_domains = p->cookie_domains;
    }
    MERGE(ignore_client_abort, 0);
    if (c->next_upstream == (gh_uint_t) -1) {
        c->next_upstream = p->next_upstream == (gh_uint_t) -1
            ? (GH_PROXY_FT_ERROR | GH_PROXY_FT_TIMEOUT) : p->next_upstream;
    }
    MERGE(next_upstream_tries, 0);
    MERGE_MSEC(next_upstream_timeout, 0);
    MERGE(socket_keepalive, 0);

    if (c->headers == NULL) {
        c->headers = p->headers;
    }
    const char *rv = gh_proxy_merge_headers(cf, c);
    if (rv) {
        return rv;
    }

    /* The target is carried down so that an `if` block inside a proxied
     * location (which takes the location's content handler) proxies too;
     * as in nginx the URI part is then ignored and the full URI passed.
     * Nested locations do not get the handler, so this is inert there. */
    if (!c->set && p->set) {
        c->url = p->url;
        c->url_cv = p->url_cv;
        c->url_vars = p->url_vars;
        c->upstream = p->upstream;
        c->scheme = p->scheme;
        c->host_header = p->host_header;
        c->port_text = p->port_text;
        c->location = p->location;
        c->uri.data = NULL;
        c->uri.len = 0;
        c->location_prefix = false;
    }
    return NULL;
}

static gh_int_t
gh_proxy_preconf(gh_conf_t *cf)
{
    return gh_proxy_add_variables(cf);
}
