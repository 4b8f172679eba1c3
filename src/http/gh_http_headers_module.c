/*
 * gh_http_headers_module.c: `add_header name value [always];`
 *
 * A header filter adds the configured fields to a response, as nginx:
 *   - a level's add_header list replaces its parent's entirely: a
 *     location with one add_header of its own loses the server's;
 *   - without `always` only successful and redirect responses get them
 *     (200 201 204 206 301 302 303 304 307 308);
 *   - the value may hold variables; an empty value adds nothing;
 *   - Last-Modified and ETag replace the response's own field rather than
 *     adding a second one.
 * The filter sits in front of the core header filter, which serialises
 * what it finds in headers_out.
 */
#include "gh_http.h"
#include "gh_http_modules.h"

typedef struct {
    gh_str_t                 name;
    gh_http_complex_value_t  value;
    bool                     always;
} gh_http_header_val_t;

typedef struct {
    gh_array_t *headers;         /* gh_http_header_val_t; NULL: inherit */
} gh_http_headers_conf_t;

static const char *gh_http_headers_add(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static void *gh_http_headers_create_conf(gh_conf_t *cf);
static const char *gh_http_headers_merge_conf(gh_conf_t *cf, void *parent,
    void *child);
static gh_int_t gh_http_headers_init(gh_conf_t *cf);

static const gh_command_t gh_http_headers_commands[] = {
    { "add_header", GH_HTTP_MAIN_CONF | GH_HTTP_SRV_CONF | GH_HTTP_LOC_CONF
          | GH_HTTP_LIF_CONF,
      GH_CONF_TAKE23, gh_http_headers_add, GH_CONF_LOC_OFFSET, 0, NULL },
    GH_COMMAND_END
};

gh_module_t gh_http_headers_module = {
    .name = "http_headers",
    .commands = gh_http_headers_commands,
    .create_loc_conf = gh_http_headers_create_conf,
    .merge_loc_conf = gh_http_headers_merge_conf,
    .postconfiguration = gh_http_headers_init,
};

static gh_http_output_header_filter_pt gh_http_headers_next;

/* --- the filter ------------------------------------------------------ */

static bool
gh_http_headers_status_ok(gh_uint_t status)
{
    switch (status) {
    case 200: case 201: case 204: case 206:
    case 301: case 302: case 303: case 304: case 307: case 308:
        return true;
    default:
        return false;
    }
}

/* fields the response holds once: the configured value replaces it */
static void
gh_http_headers_drop(gh_http_request_t *r, const gh_str_t *name)
{
    if (!gh_str_caseeq_c(name, "Last-Modified")
        && !gh_str_caseeq_c(name, "ETag"))
    {
        return;
    }
    for (size_t i = 0; i < r->headers_out.headers.nelts; i++) {
        gh_http_table_elt_t *e = gh_array_at(&r->headers_out.headers,
            gh_http_table_elt_t, i);

        if (gh_str_caseeq(&e->name, name)) {
            e->hash_skip = 1;
        }
    }
    if (gh_str_caseeq_c(name, "Last-Modified")) {
        r->headers_out.last_modified_time = -1;
    }
}

static gh_int_t
gh_http_headers_filter(gh_http_request_t *r)
{
    gh_http_headers_conf_t *hcf;
    gh_http_header_val_t   *h;
    gh_uint_t               status;
    bool                    ok;

    /* a request refused before its server was chosen has no confs */
    if (r->loc_conf == NULL) {
        return gh_http_headers_next(r);
    }
    hcf = gh_http_get_module_loc_conf(r, gh_http_headers_module);
    if (hcf == NULL || hcf->headers == NULL) {
        return gh_http_headers_next(r);
    }
    status = r->headers_out.status ? r->headers_out.status : 200;
    ok = gh_http_headers_status_ok(status);

    h = hcf->headers->elts;
    for (size_t i = 0; i < hcf->headers->nelts; i++) {
        gh_str_t             value;
        gh_http_table_elt_t *e;

        if (!ok && !h[i].always) {
            continue;
        }
        if (gh_http_complex_value(r, &h[i].value, &value) != GH_OK) {
            return GH_ERROR;
        }
        if (value.len == 0) {
            continue;
        }
        if (!gh_http_cv_is_const(&h[i].value)) {
            /* a variable ($uri is decoded) must not split the head; the
             * value was built in the request's arena, ours to change */
            for (size_t j = 0; j < value.len; j++) {
                if (value.data[j] == '\r' || value.data[j] == '\n') {
                    value.data[j] = ' ';
                }
            }
        }
        gh_http_headers_drop(r, &h[i].name);
        /* the name lives in the configuration, which outlives requests */
        e = gh_array_push(&r->headers_out.headers);
        if (e == NULL) {
            return GH_ERROR;
        }
        e->name = h[i].name;
        e->value = value;
        e->hash_skip = 0;
    }
    return gh_http_headers_next(r);
}

/* --- configuration --------------------------------------------------- */

static void *
gh_http_headers_create_conf(gh_conf_t *cf)
{
    return gh_calloc(cf->arena, sizeof(gh_http_headers_conf_t));
}

static const char *
gh_http_headers_merge_conf(gh_conf_t *cf, void *parent, void *child)
{
    gh_http_headers_conf_t *prev = parent, *conf = child;

    /* all or nothing, as nginx: a level with its own list keeps only it */
    if (conf->headers == NULL) {
        conf->headers = prev->headers;
    }
    return NULL;
}

static bool
gh_http_headers_valid_name(const gh_str_t *name)
{
    /* an RFC 9110 token: no room for a CR/LF or ':' to split the head */
    for (size_t i = 0; i < name->len; i++) {
        uint8_t c = name->data[i];

        if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c)) {
            return false;
        }
    }
    return name->len != 0;
}

/* add_header name value [always]; */
static const char *
gh_http_headers_add(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_headers_conf_t *hcf = conf;
    gh_str_t               *args = gh_conf_args(cf);
    gh_http_header_val_t   *h;
    const char             *err;

    if (!gh_http_headers_valid_name(&args[1])) {
        gh_conf_error(cf, "invalid header name \"%.*s\"", (int) args[1].len,
            (const char *) args[1].data);
        return GH_CONF_ERROR;
    }
    for (size_t i = 0; i < args[2].len; i++) {
        if (args[2].data[i] == '\r' || args[2].data[i] == '\n') {
            gh_conf_error(cf, "invalid header value \"%.*s\"",
                (int) args[2].len, (const char *) args[2].data);
            return GH_CONF_ERROR;
        }
    }
    if (cf->node->nargs == 4 && !gh_str_eq_c(&args[3], "always")) {
        gh_conf_error(cf, "invalid parameter \"%.*s\"", (int) args[3].len,
            (const char *) args[3].data);
        return GH_CONF_ERROR;
    }

    if (hcf->headers == NULL) {
        hcf->headers = gh_array_create(cf->arena, 4,
            sizeof(gh_http_header_val_t));
        if (hcf->headers == NULL) {
            return "out of memory";
        }
    }
    h = gh_array_push(hcf->headers);
    if (h == NULL) {
        return "out of memory";
    }
    memset(h, 0, sizeof(*h));
    h->name = args[1];
    h->always = cf->node->nargs == 4;
    err = gh_http_compile_complex_value(cf, &args[2], &h->value);
    if (err != NULL) {
        return err;
    }
    return NULL;
}

static gh_int_t
gh_http_headers_init(gh_conf_t *cf)
{
    gh_http_headers_next = gh_http_top_header_filter;
    gh_http_top_header_filter = gh_http_headers_filter;
    return GH_OK;
}
