/*
 * gh_proxy.h: the proxy module (proxy_pass and friends).
 *
 * Config (gh_proxy_conf.c) turns proxy_* directives into a
 * gh_proxy_loc_conf_t; the runtime (gh_proxy.c) is a state machine per
 * request:
 *
 *   handler -> [read client body] -> connect -> send request ->
 *   read response head -> (101: tunnel) | (X-Accel-Redirect) |
 *   (intercepted error) | send head to client -> relay body -> done
 *
 * Failures before anything reached the client move to the next peer
 * (proxy_next_upstream) or end in 502/504 with nginx's log lines.
 */
#ifndef GH_PROXY_H
#define GH_PROXY_H

#include "../http/gh_http.h"
#include "../upstream/gh_upstream.h"

typedef struct {
    gh_str_t                 name;        /* as written */
    gh_http_complex_value_t  value;
} gh_proxy_header_t;

typedef struct {
    gh_http_complex_value_t  from;        /* literal prefix */
    gh_http_regex_t         *regex;       /* ~from */
    gh_http_complex_value_t  to;
    unsigned                 is_default:1;
} gh_proxy_redirect_t;

/* proxy_next_upstream conditions */
#define GH_PROXY_FT_ERROR          0x0001
#define GH_PROXY_FT_TIMEOUT        0x0002
#define GH_PROXY_FT_INVALID_HEADER 0x0004
#define GH_PROXY_FT_HTTP_500       0x0008
#define GH_PROXY_FT_HTTP_502       0x0010
#define GH_PROXY_FT_HTTP_503       0x0020
#define GH_PROXY_FT_HTTP_504       0x0040
#define GH_PROXY_FT_HTTP_403       0x0080
#define GH_PROXY_FT_HTTP_404       0x0100
#define GH_PROXY_FT_HTTP_429       0x0200
#define GH_PROXY_FT_NON_IDEMPOTENT 0x0400
#define GH_PROXY_FT_OFF            0x8000

/* proxy_ignore_headers */
#define GH_PROXY_IGN_XA_REDIRECT   0x0001
#define GH_PROXY_IGN_XA_BUFFERING  0x0002
#define GH_PROXY_IGN_OTHER         0x0004

typedef struct {
    /* proxy_pass */
    gh_str_t                 url;         /* as written */
    gh_http_complex_value_t  url_cv;      /* when it has variables */
    bool                     url_vars;
    gh_upstream_srv_conf_t  *upstream;    /* static target */
    gh_str_t                 scheme;      /* "http://" */
    gh_str_t                 host_header; /* $proxy_host */
    gh_str_t                 port_text;   /* $proxy_port */
    gh_str_t                 uri;         /* URI part, data NULL if none */
    gh_str_t                 location;    /* location name for URI rules */
    bool                     location_prefix; /* URI part replaces prefix */
    bool                     set;         /* proxy_pass given here */

    /* request */
    gh_array_t              *headers;     /* gh_proxy_header_t, NULL unset */
    gh_array_t              *headers_merged; /* incl. defaults */
    int                      pass_request_headers;
    int                      pass_request_body;
    gh_int_t                 http_version;   /* 1000 / 1001 */
    gh_http_complex_value_t *method;
    int                      request_buffering;

    /* timeouts */
    gh_msec_t                connect_timeout;
    gh_msec_t                send_timeout;
    gh_msec_t                read_timeout;

    /* response */
    int                      buffering;
    size_t                   buffer_size;
    gh_int_t                 buffers_num;
    size_t                   buffers_size;
    size_t                   busy_buffers_size;
    off_t                    max_temp_file_size;
    size_t                   temp_file_write_size;
    gh_array_t              *hide_headers;   /* gh_str_t */
    gh_array_t              *pass_headers;   /* gh_str_t */
    gh_uint_t                ignore_headers;
    int                      intercept_errors;
    gh_array_t              *redirects;      /* gh_proxy_redirect_t; NULL+off */
    gh_int_t                 redirect_off;
    gh_array_t              *cookie_paths;   /* gh_proxy_redirect_t */
    gh_array_t              *cookie_domains; /* gh_proxy_redirect_t */
    int                      ignore_client_abort;

    /* next upstream */
    gh_uint_t                next_upstream;
    gh_int_t                 next_upstream_tries;
    gh_msec_t                next_upstream_timeout;
    int                      socket_keepalive;
} gh_proxy_loc_conf_t;

extern gh_module_t gh_http_proxy_module;

/* the content handler (gh_proxy.c) */
gh_int_t gh_proxy_handler(gh_http_request_t *r);
/* variables (gh_proxy.c) */
gh_int_t gh_proxy_add_variables(gh_conf_t *cf);

/* split "http://host:port/uri" / "http://unix:/p.sock:/uri";
 * GH_OK or GH_ERROR with *err */
typedef struct {
    gh_str_t  scheme;      /* "http" / "https" */
    gh_str_t  host;        /* "host" or "unix:/path" */
    int       port;        /* 0 = not given */
    gh_str_t  uri;         /* data NULL if none */
    gh_str_t  host_port;   /* "host:port" as written */
} gh_proxy_url_t;

gh_int_t gh_proxy_parse_url(const gh_str_t *url, gh_proxy_url_t *u,
    const char **err);

/* URI escaping for paths sent upstream (space, #, %, ?, controls,
 * non-ASCII); dst NULL: returns the length needed */
size_t gh_proxy_escape_uri(uint8_t *dst, const uint8_t *src, size_t len);

#endif
