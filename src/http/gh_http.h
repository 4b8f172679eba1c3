/*
 * gh_http.h: the HTTP server core.
 *
 * Configuration levels follow nginx: http{} (main), server{}, location{};
 * each module has one conf struct per level, reached through the
 * gh_conf_ctx_t arrays by module index.  A request carries pointers to the
 * arrays of the server and location it was matched to, so
 * gh_http_get_loc_conf(r, module) is an array lookup.
 *
 * Request life:
 *   read head -> parse -> pick server (Host) -> phases:
 *   POST_READ, SERVER_REWRITE (server-level rewrite script), FIND_CONFIG
 *   (location), REWRITE (location-level script), PREACCESS, ACCESS,
 *   PRECONTENT (try_files), CONTENT (proxy/..., else static files), then
 *   LOG when the response is done.
 * The response passes the header filter chain and body filter chain,
 * built by modules in postconfiguration (last registered runs first).
 */
#ifndef GH_HTTP_H
#define GH_HTTP_H

#include "../core/gh_core.h"
#include "../core/gh_module.h"
#include "../core/gh_cycle.h"
#include "../event/gh_conn.h"
#include "gh_http_parse.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

typedef struct gh_http_request_s        gh_http_request_t;
typedef struct gh_http_core_main_conf_s gh_http_core_main_conf_t;
typedef struct gh_http_core_srv_conf_s  gh_http_core_srv_conf_t;
typedef struct gh_http_core_loc_conf_s  gh_http_core_loc_conf_t;
typedef struct gh_http_variable_s       gh_http_variable_t;
typedef struct gh_http_regex_s          gh_http_regex_t;

/* --- regex ----------------------------------------------------------- */

struct gh_http_regex_s {
    pcre2_code *code;
    gh_str_t    pattern;
    gh_uint_t   ncaptures;     /* capture groups */
    /* named captures become variables: indexes of those variables */
    gh_uint_t   nnames;
    gh_int_t   *name_vars;     /* variable index per named group */
    gh_uint_t  *name_groups;   /* group number per named group */
};

/* compile with JIT; caseless for ~*; on error returns NULL and sets
 * *err to a message allocated in cf->arena */
gh_http_regex_t *gh_http_regex_compile(gh_conf_t *cf, const gh_str_t *re,
    bool caseless, const char **err);
/* match subject; on match stores captures in r (for $1..$9 and named
 * captures) and returns GH_OK; GH_DECLINED if no match; GH_ERROR */
gh_int_t gh_http_regex_exec(gh_http_request_t *r, gh_http_regex_t *re,
    const gh_str_t *subject);

/* --- variables and complex values ------------------------------------ */

/* a getter fills *v (v->data may point into request memory); returns
 * GH_OK, or GH_DECLINED for "not found" (empty value, not_found set) */
typedef gh_int_t (*gh_http_var_get_pt)(gh_http_request_t *r, gh_str_t *v,
    uintptr_t data);

#define GH_HTTP_VAR_NOCACHEABLE 0x01    /* evaluate every time */
#define GH_HTTP_VAR_PREFIX      0x02    /* name is a prefix: http_, arg_ */
#define GH_HTTP_VAR_CHANGEABLE  0x04    /* may be defined twice (set/map) */

struct gh_http_variable_s {
    gh_str_t            name;
    gh_http_var_get_pt  get;
    uintptr_t           data;
    unsigned            flags;
    gh_uint_t           index;
};

typedef struct {
    gh_str_t  value;
    unsigned  valid:1;
    unsigned  not_found:1;
} gh_http_var_value_t;

/* declare a variable (config time); prefix variables are matched when an
 * unknown name starts with their name.  Returns NULL on a conflict (the
 * name exists and is not CHANGEABLE on both sides); the caller reports
 * `the duplicate "name" variable`.  The pointer is valid until the next
 * gh_http_add_variable(): set get/data right away.  Names are
 * case-insensitive (stored lowercased).  A PREFIX variable's getter
 * receives as `data` a `const gh_str_t *` of the full name referenced
 * ("http_user_agent"), not the `data` given here. */
gh_http_variable_t *gh_http_add_variable(gh_conf_t *cf, const gh_str_t *name,
    unsigned flags);
/* index of a variable for fast access; creates a pending reference that
 * must be resolved by the end of the configuration (unknown variable ->
 * `unknown "name" variable` error at its file:line) */
gh_int_t gh_http_get_variable_index(gh_conf_t *cf, const gh_str_t *name);
/* value by index (cached per request unless NOCACHEABLE) */
gh_http_var_value_t *gh_http_get_indexed_variable(gh_http_request_t *r,
    gh_uint_t index);
/* value by name at run time (for $http_x etc. from code) */
gh_int_t gh_http_get_variable(gh_http_request_t *r, const gh_str_t *name,
    gh_str_t *v);

/* value of regex capture n ($1..$9) of the last match; GH_DECLINED if
 * there is no such capture */
gh_int_t gh_http_capture_value(gh_http_request_t *r, gh_uint_t n,
    gh_str_t *v);

/* core variables ($host, $http_*, $remote_addr, ...): call when http{}
 * starts, right after the main confs exist */
gh_int_t gh_http_variables_add_core_vars(gh_conf_t *cf);
/* resolve every index handed out by gh_http_get_variable_index(): call at
 * the end of http{}, after merges and postconfiguration.  Logs
 * `unknown "name" variable` at the file:line of the first use. */
gh_int_t gh_http_variables_init_vars(gh_conf_t *cf);
/* allocate r->variables (the per-request cache) in r->arena; needs
 * r->main_conf.  Calling it again clears the cache, which an internal
 * redirect must do (as nginx does). */
gh_int_t gh_http_variables_request_init(gh_http_request_t *r);

/* compiled part of a complex value (also read by the log module) */
enum {
    GH_HTTP_CV_LITERAL = 0,
    GH_HTTP_CV_VAR,            /* index: variable index */
    GH_HTTP_CV_CAPTURE         /* index: capture number ($1..$9) */
};

typedef struct {
    unsigned   type;
    gh_str_t   literal;
    gh_uint_t  index;
} gh_http_cv_part_t;

/* A value with variables: "$scheme://$host$request_uri", "${var}x".
 * `parts` points to an array of gh_http_cv_part_t. */
typedef struct {
    gh_str_t    literal;     /* whole raw value */
    void       *parts;       /* compiled parts; NULL if constant */
    gh_uint_t   nparts;
    size_t      lit_len;     /* sum of literal parts */
} gh_http_complex_value_t;

/* compile; returns NULL on success or an error message */
const char *gh_http_compile_complex_value(gh_conf_t *cf, const gh_str_t *value,
    gh_http_complex_value_t *cv);
/* evaluate into request memory; escape_fn may transform each variable's
 * value (log escaping), NULL for none */
typedef size_t (*gh_http_escape_pt)(uint8_t *dst, const uint8_t *src,
    size_t len);   /* dst NULL: return needed length */
gh_int_t gh_http_complex_value(gh_http_request_t *r,
    const gh_http_complex_value_t *cv, gh_str_t *out);
gh_int_t gh_http_complex_value_escaped(gh_http_request_t *r,
    const gh_http_complex_value_t *cv, gh_str_t *out,
    gh_http_escape_pt escape);

static inline bool
gh_http_cv_is_const(const gh_http_complex_value_t *cv)
{
    return cv->parts == NULL;
}

/* --- configuration --------------------------------------------------- */

enum {
    GH_HTTP_POST_READ_PHASE = 0,
    GH_HTTP_SERVER_REWRITE_PHASE,
    GH_HTTP_FIND_CONFIG_PHASE,
    GH_HTTP_REWRITE_PHASE,
    GH_HTTP_PREACCESS_PHASE,
    GH_HTTP_ACCESS_PHASE,
    GH_HTTP_PRECONTENT_PHASE,   /* try_files: after access, before content */
    GH_HTTP_CONTENT_PHASE,
    GH_HTTP_LOG_PHASE,
    GH_HTTP_NPHASES
};

/* phase handler result: GH_OK -> next phase; GH_DECLINED -> next handler
 * of the same phase; GH_AGAIN/GH_DONE -> handler took over, stop;
 * >= 100 -> finalize the request with that status */
typedef gh_int_t (*gh_http_handler_pt)(gh_http_request_t *r);

typedef struct {
    gh_http_handler_pt *handlers;
    gh_uint_t           n;
    gh_uint_t           cap;
} gh_http_phase_t;

/* an address clients connect to: the servers that listen on it */
typedef struct {
    struct sockaddr_storage   sockaddr;
    socklen_t                 socklen;
    char                      addr_text[128];
    gh_http_core_srv_conf_t  *default_server;
    gh_array_t                servers;   /* gh_http_core_srv_conf_t * */
    unsigned                  ssl:1;     /* some `listen ... ssl` on it */
    unsigned                  http2:1;   /* some `listen ... http2` */
    /* built by gh_http_server_names_init() */
    void                     *names;     /* opaque lookup structure */
} gh_http_addr_conf_t;

/* one listening socket: a single address, or a wildcard with several
 * specific addresses of the same port found by getsockname() */
typedef struct {
    gh_array_t  addrs;     /* gh_http_addr_conf_t; wildcard last */
    bool        wildcard_only;
} gh_http_port_t;

struct gh_http_core_main_conf_s {
    gh_array_t       servers;         /* gh_http_core_srv_conf_t * */
    gh_http_phase_t  phases[GH_HTTP_NPHASES];
    gh_array_t       variables;       /* gh_http_variable_t (all declared) */
    gh_array_t       prefix_variables;/* gh_http_variable_t */
    gh_array_t       pending_vars;    /* indexed variables: references
                                         handed out by get_variable_index,
                                         resolved by init_vars (element
                                         type private to
                                         gh_http_variables.c) */
    gh_uint_t        ncaptures;       /* max captures of any regex */
    gh_array_t       listens;         /* gh_http_listen_t, gathered */
    gh_array_t       ports;           /* gh_http_port_t */
    gh_int_t         variables_hash_max_size;
    gh_int_t         server_names_hash_max_size;
};

typedef struct {
    struct sockaddr_storage  sockaddr;
    socklen_t                socklen;
    char                     addr_text[128];
    gh_http_core_srv_conf_t *server;
    gh_int_t                 backlog;
    unsigned                 default_server:1;
    unsigned                 reuseport:1;
    unsigned                 ssl:1;         /* issue 7 */
    unsigned                 http2:1;       /* issue 7 */
    unsigned                 wildcard:1;
    unsigned                 ipv6only:1;
    const char              *file;
    unsigned                 line;
} gh_http_listen_t;

typedef struct {
    gh_str_t          name;       /* lowercased; for regex the pattern */
    gh_http_regex_t  *regex;      /* ~regex */
    gh_http_core_srv_conf_t *server;
} gh_http_server_name_t;

/* location tree of one level (server or a location with nested ones) */
typedef struct gh_http_location_tree_s gh_http_location_tree_t;

struct gh_http_core_srv_conf_s {
    gh_array_t                server_names;   /* gh_http_server_name_t */
    gh_conf_ctx_t            *ctx;            /* this server's confs */
    const char               *file;
    unsigned                  line;
    gh_str_t                  server_name;    /* first name, for $server_name */
    bool                      listen_set;

    size_t                    client_header_buffer_size;
    gh_int_t                  large_client_header_buffers_num;
    size_t                    large_client_header_buffers_size;
    gh_msec_t                 client_header_timeout;
    int                       merge_slashes;
    int                       underscores_in_headers;
    int                       ignore_invalid_headers;
    /* gatehouse's own: the memory one connection may hold (0: no cap),
     * read from the address's default server as client_header_buffer_size */
    size_t                    connection_memory_max;
};

enum {
    GH_HTTP_LOC_PREFIX = 0,
    GH_HTTP_LOC_EXACT,          /* = */
    GH_HTTP_LOC_NOREGEX,        /* ^~ */
    GH_HTTP_LOC_REGEX,          /* ~ */
    GH_HTTP_LOC_REGEX_CASELESS, /* ~* */
    GH_HTTP_LOC_NAMED,          /* @name */
    GH_HTTP_LOC_IF              /* an if{} block's confs (rewrite module):
                                   kept in the parent's `locations` so the
                                   merge pass covers it; never matched */
};

typedef struct {
    gh_array_t  *codes;         /* int status codes */
    gh_int_t     overwrite;     /* -1: keep; 0: "=" (from target); >0: =code */
    gh_http_complex_value_t uri;
} gh_http_err_page_t;

struct gh_http_core_loc_conf_s {
    gh_str_t                  name;        /* as written, without modifier */
    unsigned                  type;        /* GH_HTTP_LOC_* */
    gh_http_regex_t          *regex;
    void                    **loc_conf;    /* this location's conf array */
    gh_http_core_loc_conf_t  *parent;
    const char               *file;
    unsigned                  line;

    /* nested locations, gathered while parsing, then compiled */
    gh_array_t               *locations;   /* gh_http_core_loc_conf_t * */
    gh_http_location_tree_t  *tree;        /* built from `locations` */

    /* content handler set by proxy/... (NULL: static files) */
    gh_http_handler_pt        handler;
    unsigned                  internal:1;  /* `internal;` or named */
    unsigned                  auto_redirect:1;  /* proxy_pass in /x/ */
    unsigned                  has_uri_part_allowed:1;

    /* directives */
    off_t                     client_max_body_size;
    size_t                    client_body_buffer_size;
    gh_msec_t                 client_body_timeout;
    gh_msec_t                 send_timeout;
    gh_msec_t                 keepalive_timeout;
    gh_msec_t                 keepalive_header_timeout;
    gh_int_t                  keepalive_requests;
    gh_msec_t                 keepalive_time;
    gh_msec_t                 lingering_timeout;
    gh_int_t                  server_tokens;    /* 0 off, 1 on, 2 build */
    int                       recursive_error_pages;
    int                       absolute_redirect;
    int                       port_in_redirect;
    int                       chunked_transfer_encoding;
    gh_int_t                  msie_padding;
    gh_array_t               *error_pages;      /* gh_http_err_page_t */
    gh_str_t                  default_type;
    char                     *client_body_temp_path;
    gh_log_t                 *error_log;        /* NULL: inherit */
};

extern gh_module_t gh_http_module;        /* the http{} block */
extern gh_module_t gh_http_core_module;   /* server, location, listen... */

#define gh_http_conf_get_module_main_conf(cf, m) \
    (((gh_conf_ctx_t *) (cf)->ctx)->main_conf[(m).index])
#define gh_http_conf_get_module_srv_conf(cf, m) \
    (((gh_conf_ctx_t *) (cf)->ctx)->srv_conf[(m).index])
#define gh_http_conf_get_module_loc_conf(cf, m) \
    (((gh_conf_ctx_t *) (cf)->ctx)->loc_conf[(m).index])

#define gh_http_get_module_main_conf(r, m) ((r)->main_conf[(m).index])
#define gh_http_get_module_srv_conf(r, m)  ((r)->srv_conf[(m).index])
#define gh_http_get_module_loc_conf(r, m)  ((r)->loc_conf[(m).index])

/* a new location-level conf array, one conf per module (for blocks that
 * act like a location: if{}) */
void **gh_http_create_loc_level(gh_conf_t *cf);

/* location lookup: sets r->loc_conf to the best location for r->uri
 * (nginx's rules).  Returns GH_OK, GH_DECLINED (none matched: the server
 * level conf stays), GH_ERROR, or GH_DONE: r->uri + "/" names a location
 * with auto_redirect (proxy_pass in "location /x/") and nothing matched
 * r->uri better; r->loc_conf is that location and the caller answers 301
 * to uri + "/" (+ "?args"), as nginx does. */
gh_int_t gh_http_find_location(gh_http_request_t *r);
/* build `tree` for every level of the server (called at postconfig);
 * pclcf NULL means the server level.  Returns NULL, or GH_CONF_ERROR
 * after logging `duplicate location "/x" in file:line` itself. */
const char *gh_http_init_locations(gh_conf_t *cf,
    gh_http_core_srv_conf_t *cscf, gh_http_core_loc_conf_t *pclcf);
/* find named location "@name" of a server */
gh_http_core_loc_conf_t *gh_http_find_named_location(
    gh_http_core_srv_conf_t *cscf, const gh_str_t *name);

/* server selection on an address by Host (already lowercased, without
 * port and trailing dot); returns the default server if nothing matches */
gh_int_t gh_http_server_names_init(gh_conf_t *cf, gh_http_addr_conf_t *addr);
gh_http_core_srv_conf_t *gh_http_find_server(gh_http_request_t *r,
    gh_http_addr_conf_t *addr, const gh_str_t *host);
/* validate and normalise a Host value: lowercase, strip port, strip one
 * trailing dot; GH_ERROR if invalid (-> 400) */
gh_int_t gh_http_validate_host(gh_str_t *host, gh_arena_t *a);

/* --- request --------------------------------------------------------- */

typedef struct {
    gh_str_t name;
    gh_str_t value;
    unsigned hash_skip:1;     /* deleted */
} gh_http_table_elt_t;

typedef struct {
    gh_array_t            headers;      /* gh_http_table_elt_t, in order */
    gh_http_table_elt_t  *host;
    gh_http_table_elt_t  *connection;
    gh_http_table_elt_t  *content_length;
    gh_http_table_elt_t  *transfer_encoding;
    gh_http_table_elt_t  *expect;
    gh_http_table_elt_t  *upgrade;
    gh_http_table_elt_t  *user_agent;
    gh_http_table_elt_t  *referer;
    gh_http_table_elt_t  *x_forwarded_for;
    gh_http_table_elt_t  *cookie;
    gh_http_table_elt_t  *te;
    gh_str_t              server;       /* normalised host (no port) */
    off_t                 content_length_n;  /* -1: none */
    unsigned              chunked:1;
    unsigned              keep_alive:1;      /* Connection: keep-alive */
    unsigned              connection_close:1;
    unsigned              connection_upgrade:1;
    unsigned              expect_continue:1;
} gh_http_headers_in_t;

typedef struct {
    gh_array_t            headers;      /* gh_http_table_elt_t */
    gh_uint_t             status;
    gh_str_t              status_line;  /* optional "200 OK" override */
    gh_str_t              content_type;
    gh_http_table_elt_t  *location;
    gh_http_table_elt_t  *server;
    gh_http_table_elt_t  *date;
    off_t                 content_length_n;  /* -1: unknown */
    int64_t               last_modified_time;
} gh_http_headers_out_t;

/* request body reading state */
typedef struct gh_http_request_body_s gh_http_request_body_t;
typedef void (*gh_http_client_body_handler_pt)(gh_http_request_t *r);

struct gh_http_request_body_s {
    gh_chain_t                      *bufs;      /* body read so far */
    gh_chain_t                     **last;
    int                              temp_fd;   /* spooled to a file */
    char                            *temp_path;
    off_t                            rest;      /* -1 for chunked */
    off_t                            received;
    gh_http_chunked_t                chunked;
    gh_http_client_body_handler_pt   post_handler;
    unsigned                         done:1;
    unsigned                         streaming:1;  /* proxy_request_buffering off */
};

typedef gh_int_t (*gh_http_output_header_filter_pt)(gh_http_request_t *r);
typedef gh_int_t (*gh_http_output_body_filter_pt)(gh_http_request_t *r,
    gh_chain_t *in);

extern gh_http_output_header_filter_pt gh_http_top_header_filter;
extern gh_http_output_body_filter_pt   gh_http_top_body_filter;

struct gh_http_request_s {
    gh_conn_t                *conn;
    gh_arena_t               *arena;
    void                    **main_conf;
    void                    **srv_conf;
    void                    **loc_conf;
    gh_http_addr_conf_t      *addr_conf;

    gh_http_request_head_t    head;          /* parse result */
    gh_buf_t                 *header_in;     /* buffer the head was read into */
    gh_http_headers_in_t      headers_in;
    gh_http_headers_out_t     headers_out;
    gh_http_request_body_t   *request_body;

    gh_str_t                  request_line;
    gh_str_t                  method_name;
    unsigned                  method;        /* GH_HTTP_GET ... */
    unsigned                  http_version;  /* 1000 / 1001 (major*1000+minor) */
    gh_str_t                  unparsed_uri;  /* request target as sent */
    gh_str_t                  uri;           /* normalised path */
    gh_str_t                  args;
    gh_str_t                  exten;
    gh_str_t                  schema;        /* "http" / "https" */

    gh_http_var_value_t      *variables;     /* cache, by variable index */
    int                      *captures;      /* ovector of the last regex */
    gh_uint_t                 ncaptures;     /* pairs */
    gh_uint_t                 ncaptures_alloc; /* pairs r->captures holds */
    const uint8_t            *captures_data; /* subject of the captures */

    gh_int_t                  phase;
    gh_uint_t                 phase_handler;
    gh_http_handler_pt        content_handler;
    gh_uint_t                 uri_changes;   /* internal redirects left */
    gh_uint_t                 count;         /* references (body reading, upstream) */

    gh_uint_t                 conn_requests; /* nth request on the
                                                connection, from 1
                                                ($connection_requests) */
    gh_msec_t                 start_msec;
    int64_t                   start_sec;
    off_t                     bytes_sent;       /* incl. header */
    off_t                     body_bytes_sent;
    off_t                     request_length;
    size_t                    header_size;

    gh_chain_t               *out;           /* unsent output (write filter) */
    off_t                     out_size;      /* bytes in out */
    /* where body filters allocate their per-call buffer and chain shells
     * when set (NULL: r->arena); a streaming producer resets it once
     * r->out is empty, so a long response costs bounded memory */
    gh_arena_t               *batch_arena;
    void                    (*read_event_handler)(gh_http_request_t *r);
    void                    (*write_event_handler)(gh_http_request_t *r);
    void                     *http_conn;     /* gh_http_connection_t */
    void                     *stream;        /* HTTP/2 stream (src/http/v2),
                                                NULL for HTTP/1 */
    /* called when r->out has been flushed and the response is not over
     * (a streaming producer waiting for the client to take data) */
    void                    (*output_drained)(gh_http_request_t *r);
    /* shown as `upstream: "..."` in error log lines (proxy) */
    gh_str_t                  log_upstream;
    void                     *ctx_data;      /* per-module contexts */
    void                    **ctx;           /* by module index */
    char                      request_id[33];

    gh_uint_t                 err_status;    /* status being served by error_page */
    gh_http_core_loc_conf_t  *named_from;

    unsigned                  keepalive:1;
    unsigned                  lingering_close:1;
    unsigned                  header_sent:1;
    unsigned                  header_only:1;   /* HEAD or 204/304 */
    unsigned                  chunked:1;       /* response chunked */
    unsigned                  internal:1;      /* after internal redirect */
    unsigned                  error_page:1;
    unsigned                  uri_changed:1;
    unsigned                  valid_location:1;
    unsigned                  done:1;
    unsigned                  logged:1;
    unsigned                  discard_body:1;
    unsigned                  reading_body:1;
    unsigned                  expect_sent:1;
    unsigned                  pipeline:1;
    unsigned                  response_sent:1; /* last_buf went out */
    unsigned                  blocked:1;       /* waiting on upstream etc */
    unsigned                  upgraded:1;      /* websocket tunnel */
};

#define gh_http_get_module_ctx(r, m)  ((r)->ctx[(m).index])
#define gh_http_set_ctx(r, c, m)      ((r)->ctx[(m).index] = (c))

/* --- request API for modules ----------------------------------------- */

/* start the response: run header filters (status line + headers) */
gh_int_t gh_http_send_header(gh_http_request_t *r);
/* pass body through body filters; a buf with last_buf ends the body */
gh_int_t gh_http_output_filter(gh_http_request_t *r, gh_chain_t *in);
/* finish the request with rc (GH_OK/GH_DONE after a response was sent,
 * GH_ERROR to drop, or an HTTP status to send a generated response) */
void gh_http_finalize_request(gh_http_request_t *r, gh_int_t rc);
/* send a small complete response with a body (for `return`) */
gh_int_t gh_http_send_response(gh_http_request_t *r, gh_uint_t status,
    const gh_str_t *content_type, const gh_str_t *body);
/* internal redirect to uri?args (error_page, X-Accel) */
gh_int_t gh_http_internal_redirect(gh_http_request_t *r, const gh_str_t *uri,
    const gh_str_t *args);
gh_int_t gh_http_named_location(gh_http_request_t *r, const gh_str_t *name);
/* read the whole body (buffering per client_body_buffer_size, spooling to
 * a temp file past it), then call post_handler */
gh_int_t gh_http_read_client_request_body(gh_http_request_t *r,
    gh_http_client_body_handler_pt post_handler);
gh_int_t gh_http_discard_request_body(gh_http_request_t *r);
/* the event whose timer and `timedout` stand for the client side while
 * a body is read: the connection's read event, or an HTTP/2 stream's */
gh_event_t *gh_http_client_read_event(gh_http_request_t *r);

gh_http_table_elt_t *gh_http_add_header_out(gh_http_request_t *r,
    const char *name, const gh_str_t *value);
gh_http_table_elt_t *gh_http_find_header_in(gh_http_request_t *r,
    const gh_str_t *name);

/* status line text ("404 Not Found"), empty if unknown */
const gh_str_t *gh_http_status_line(gh_uint_t status);

/* `return 444`: finalize closes the connection without a response */
#define GH_HTTP_CLOSE 444

/* what finalize does with an HTTP status when no header was sent: an
 * error_page of the location (internal redirect, @named, redirect), else
 * the built-in page.  Returns what to finalize with next. */
gh_int_t gh_http_special_response_handler(gh_http_request_t *r,
    gh_uint_t status);
/* 301, 302, 303, 307, 308 */
bool gh_http_is_redirect_status(gh_uint_t status);
/* "/path" -> "scheme://host[:port]/path" per absolute_redirect and
 * port_in_redirect; anything else is copied as is */
gh_int_t gh_http_absolute_location(gh_http_request_t *r, const gh_str_t *uri,
    gh_str_t *out);
/* replace the response's Location header */
gh_int_t gh_http_set_location(gh_http_request_t *r, const gh_str_t *value);

/* register a phase handler (from a module's postconfiguration) */
gh_int_t gh_http_phase_add(gh_conf_t *cf, int phase, gh_http_handler_pt h);

/* set the error log context handler of a request's connection */
size_t gh_http_log_error_handler(gh_log_t *log, uint8_t *buf, size_t len);

/* the error log of a request (location's error_log or the cycle's) */
gh_log_t *gh_http_request_log(gh_http_request_t *r);


/* --- connection (gh_http_request.c) ---------------------------------- */

/* listening handler: a new client connection */
void gh_http_init_connection(gh_conn_t *c);
/* listening close handler: frees the connection's HTTP state */
void gh_http_conn_release(gh_conn_t *c);
/* run the phase engine from r->phase */
void gh_http_core_run_phases(gh_http_request_t *r);
/* handler of the write event while a response is being sent */
void gh_http_writer(gh_http_request_t *r);
/* a request whose response is complete (or dropped): log, then keep-alive
 * or close */
void gh_http_request_done(gh_http_request_t *r, bool close);

#define GH_HTTP_MAX_HEADERS 100


/* true when only the base body filters run (nothing inspects bodies) */
bool gh_http_body_filters_plain(void);

/* put the base header/body filter chain back (before postconfiguration) */
void gh_http_filters_reset(void);

#endif
