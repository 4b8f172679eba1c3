/*
 * gh_http_rewrite_module.c: the rewrite "script" of a server and of a
 * location: return, rewrite, if, set, break.
 *
 * The rewrite directives of one level compile, in the order written, into
 * an array of actions.  The SERVER_REWRITE phase runs the server{} level's
 * script (before a location is chosen), the REWRITE phase runs the chosen
 * location's.  Like nginx, scripts are not inherited: a location without
 * rewrite directives runs nothing, and since server-level actions live in
 * the srv conf they cannot run a second time when no location matches.
 *
 * Execution model:
 *   - an action is a handler plus its compiled arguments (a union member);
 *     the handler returns GH_DECLINED to go on with the next action, or a
 *     result that ends the script (a status, GH_OK once a response was
 *     sent, GH_ERROR);
 *   - `set` and a flagless `rewrite` change the request and go on;
 *     `break`, `rewrite ... break` and `rewrite ... last` set e->quit.  A
 *     rewritten URI also sets e->search (cleared by the break forms): at
 *     the end of a location's script the location is searched again, at
 *     most 10 times per request (nginx's cycle limit), by re-entering the
 *     phase engine at FIND_CONFIG.  At server level the search follows
 *     anyway, so `last` and `break` both just end the script there;
 *   - `if (cond) { ... }` compiles its block's actions inline, right after
 *     an IF action that records the index past the block: when the
 *     condition is false the handler sets e->ip there, when true it also
 *     switches r->loc_conf to the block's confs and lets the block run.
 *
 * An if{} block is a location-level conf array of its own ("if is evil":
 * whatever the block sets, add_header, root, proxy_pass, applies to the
 * request once the condition held).  Its core loc conf is kept in the
 * enclosing level's `locations` as a GH_HTTP_LOC_IF entry, which the
 * location tree never matches but the core's merge pass covers, so every
 * module inherits into it from the enclosing location.  Without a content
 * handler of its own it takes the enclosing location's (postconfiguration).
 */
#include "gh_http.h"
#include "gh_http_modules.h"
#include "gh_http_script.h"
#include <sys/stat.h>

static const char *gh_http_rewrite_return(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_rewrite_rewrite(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_rewrite_if(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_rewrite_set(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_rewrite_break(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static void *gh_http_rewrite_create_conf(gh_conf_t *cf);
static const char *gh_http_rewrite_merge_loc_conf(gh_conf_t *cf,
    void *parent, void *child);
static gh_int_t gh_http_rewrite_init(gh_conf_t *cf);

#define GH_HTTP_SCRIPT_CTX (GH_HTTP_SRV_CONF | GH_HTTP_SIF_CONF \
    | GH_HTTP_LOC_CONF | GH_HTTP_LIF_CONF)

static const gh_command_t gh_http_rewrite_commands[] = {
    { "return", GH_HTTP_SCRIPT_CTX, GH_CONF_TAKE12, gh_http_rewrite_return,
      GH_CONF_LOC_OFFSET, 0, NULL },
    { "rewrite", GH_HTTP_SCRIPT_CTX, GH_CONF_TAKE23, gh_http_rewrite_rewrite,
      GH_CONF_LOC_OFFSET, 0, NULL },
    { "if", GH_HTTP_SRV_CONF | GH_HTTP_LOC_CONF,
      GH_CONF_BLOCK | GH_CONF_1MORE, gh_http_rewrite_if, GH_CONF_LOC_OFFSET,
      0, NULL },
    { "set", GH_HTTP_SCRIPT_CTX, GH_CONF_TAKE2, gh_http_rewrite_set,
      GH_CONF_LOC_OFFSET, 0, NULL },
    { "break", GH_HTTP_SCRIPT_CTX, GH_CONF_NOARGS, gh_http_rewrite_break,
      GH_CONF_LOC_OFFSET, 0, NULL },
    { "rewrite_log", GH_HTTP_MAIN_CONF | GH_HTTP_SCRIPT_CTX, GH_CONF_FLAG,
      gh_conf_set_flag, GH_CONF_LOC_OFFSET,
      offsetof(gh_http_rewrite_conf_t, log), NULL },
    { "uninitialized_variable_warn", GH_HTTP_MAIN_CONF | GH_HTTP_SCRIPT_CTX,
      GH_CONF_FLAG, gh_conf_set_flag, GH_CONF_LOC_OFFSET,
      offsetof(gh_http_rewrite_conf_t, uninit_warn), NULL },
    GH_COMMAND_END
};

gh_module_t gh_http_rewrite_module = {
    .name = "rewrite",
    .commands = gh_http_rewrite_commands,
    .create_srv_conf = gh_http_rewrite_create_conf,
    .create_loc_conf = gh_http_rewrite_create_conf,
    .merge_loc_conf = gh_http_rewrite_merge_loc_conf,
    .postconfiguration = gh_http_rewrite_init,
};

/* --- run time -------------------------------------------------------- */

/* runs the script; *search tells whether the URI was rewritten without a
 * break form, i.e. whether the location must be searched again */
static gh_int_t
gh_http_script_run(gh_http_request_t *r, const gh_http_rewrite_conf_t *rcf,
    bool *search)
{
    gh_http_script_engine_t e = { .r = r, .ip = 0 };

    *search = false;
    if (rcf == NULL || rcf->script == NULL) {
        return GH_DECLINED;
    }
    while (e.ip < rcf->script->nelts) {
        const gh_http_script_action_t *a =
            gh_array_at(rcf->script, gh_http_script_action_t, e.ip);
        e.ip++;
        gh_int_t rc = a->handler(&e, a);
        if (rc != GH_DECLINED) {
            return rc;
        }
        if (e.quit) {
            break;
        }
    }
    *search = e.search;
    return GH_DECLINED;
}

/*
 * Phase handler results: a status is handed to the phase runner, which
 * finalizes with it (444 closes, >= 400 goes through error_page);
 * anything else means the script already answered, so the request is
 * finalized here and the runner told to stop.
 */
static gh_int_t
gh_http_rewrite_result(gh_http_request_t *r, gh_int_t rc)
{
    if (rc == GH_DECLINED || rc >= 100) {
        return rc;
    }
    /* GH_AGAIN: part of the response waits in r->out; finalize leaves
     * the request to the writer, which finishes it once drained */
    gh_http_finalize_request(r, rc);
    return GH_DONE;
}

static gh_int_t
gh_http_rewrite_server_handler(gh_http_request_t *r)
{
    bool search;

    /* a new URI is searched for by FIND_CONFIG, the next phase anyway */
    return gh_http_rewrite_result(r, gh_http_script_run(r,
        gh_http_get_module_srv_conf(r, gh_http_rewrite_module), &search));
}

static gh_int_t
gh_http_rewrite_location_handler(gh_http_request_t *r)
{
    bool     search;
    gh_int_t rc;

    rc = gh_http_script_run(r,
        gh_http_get_module_loc_conf(r, gh_http_rewrite_module), &search);
    if (rc != GH_DECLINED || !search) {
        return gh_http_rewrite_result(r, rc);
    }

    /* nginx's post-rewrite step: the URI changed, find its location.  The
     * budget is the one internal redirects use, so that a rewrite loop
     * and a redirect loop together still stop. */
    if (--r->uri_changes == 0) {
        gh_log(GH_LOG_ERR, &r->conn->log, 0, "rewrite or internal "
            "redirection cycle while processing \"%.*s\"", (int) r->uri.len,
            (const char *) r->uri.data);
        return 500;
    }
    /* re-entered like gh_http_internal_redirect does; the inner run owns
     * the request from here */
    r->phase = GH_HTTP_FIND_CONFIG_PHASE;
    r->phase_handler = 0;
    gh_http_core_run_phases(r);
    return GH_DONE;
}

static gh_http_rewrite_conf_t *
gh_http_rewrite_req_loc_conf(gh_http_request_t *r)
{
    return r->loc_conf != NULL
        ? gh_http_get_module_loc_conf(r, gh_http_rewrite_module) : NULL;
}

static bool
gh_http_rewrite_logging(gh_http_request_t *r)
{
    gh_http_rewrite_conf_t *rcf = gh_http_rewrite_req_loc_conf(r);

    return rcf != NULL && rcf->log == 1;
}

/* --- rewrite --------------------------------------------------------- */

/* bytes of a capture that must be %XX-escaped when copied into a redirect
 * or into arguments: they would end or change that part of the URL */
static bool
gh_http_rewrite_unsafe(uint8_t c)
{
    return c <= 0x20 || c >= 0x7f || strchr("\"#%&+?<>\\^`{|}'", c) != NULL;
}

static size_t
gh_http_rewrite_escape(uint8_t *dst, const uint8_t *src, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t            n = 0;

    for (size_t i = 0; i < len; i++) {
        uint8_t c = src[i];

        if (!gh_http_rewrite_unsafe(c)) {
            if (dst != NULL) {
                dst[n] = c;
            }
            n++;
            continue;
        }
        if (dst != NULL) {
            dst[n] = '%';
            dst[n + 1] = (uint8_t) hex[c >> 4];
            dst[n + 2] = (uint8_t) hex[c & 0x0f];
        }
        n += 3;
    }
    return n;
}

/*
 * Captures come from r->uri, which is decoded: "%3F" in the request is a
 * '?' there.  As nginx does, when the request's path had escapes (or a
 * '+'), a capture going into a redirect or into arguments is escaped
 * again, so that it stays one piece of the URL it lands in; variables are
 * copied as they are.
 */
static bool
gh_http_rewrite_quoted(gh_http_request_t *r)
{
    const uint8_t *p = r->unparsed_uri.data;
    const uint8_t *end = p + r->unparsed_uri.len;

    for (; p < end && *p != '?'; p++) {
        if (*p == '%' || *p == '+') {
            return true;
        }
    }
    return false;
}

static gh_int_t
gh_http_rewrite_value(gh_http_request_t *r, const gh_http_complex_value_t *cv,
    bool escape, gh_str_t *out)
{
    const gh_http_cv_part_t *parts = cv->parts;
    gh_str_t                *vals;
    size_t                   len = 0;
    uint8_t                 *p;

    if (!escape || parts == NULL) {
        return gh_http_complex_value(r, cv, out);
    }
    vals = gh_alloc(r->arena, cv->nparts * sizeof(gh_str_t));
    if (vals == NULL) {
        return GH_ERROR;
    }
    for (gh_uint_t i = 0; i < cv->nparts; i++) {
        gh_http_var_value_t *vv;

        switch (parts[i].type) {
        case GH_HTTP_CV_LITERAL:
            vals[i] = parts[i].literal;
            len += vals[i].len;
            break;
        case GH_HTTP_CV_VAR:
            vv = gh_http_get_indexed_variable(r, parts[i].index);
            if (vv == NULL) {
                return GH_ERROR;
            }
            vals[i] = vv->not_found ? (gh_str_t) gh_null_string : vv->value;
            len += vals[i].len;
            break;
        default:
            if (gh_http_capture_value(r, parts[i].index, &vals[i]) != GH_OK) {
                vals[i].len = 0;
                vals[i].data = NULL;
            }
            len += gh_http_rewrite_escape(NULL, vals[i].data, vals[i].len);
            break;
        }
    }
    p = gh_alloc_unaligned(r->arena, len + 1);
    if (p == NULL) {
        return GH_ERROR;
    }
    out->data = p;
    out->len = len;
    for (gh_uint_t i = 0; i < cv->nparts; i++) {
        if (parts[i].type == GH_HTTP_CV_CAPTURE) {
            p += gh_http_rewrite_escape(p, vals[i].data, vals[i].len);
        } else if (vals[i].len != 0) {
            memcpy(p, vals[i].data, vals[i].len);
            p += vals[i].len;
        }
    }
    *p = '\0';
    return GH_OK;
}

/* a "b" c "d" ... into one string in the request's arena */
static gh_int_t
gh_http_rewrite_concat(gh_http_request_t *r, gh_str_t *out,
    const gh_str_t *parts, size_t n)
{
    size_t   len = 0;
    uint8_t *p;

    for (size_t i = 0; i < n; i++) {
        len += parts[i].len;
    }
    p = gh_alloc_unaligned(r->arena, len + 1);
    if (p == NULL) {
        return GH_ERROR;
    }
    out->data = p;
    out->len = len;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len != 0) {
            memcpy(p, parts[i].data, parts[i].len);
            p += parts[i].len;
        }
    }
    *p = '\0';
    return GH_OK;
}

/*
 * The arguments after a rewrite (nginx's documented rule):
 *   "/new"          the request's arguments stay;
 *   "/new?a=1"      "a=1", then "&" and the request's arguments if any;
 *   "/new?" or "/new?a=1?"   only what the replacement gives.
 */
static gh_int_t
gh_http_rewrite_args(gh_http_request_t *r, const gh_http_script_action_t *a,
    bool escape, gh_str_t *args)
{
    static const gh_str_t amp = gh_string("&");
    gh_str_t              parts[3];

    if (!a->u.rewrite.has_args) {
        if (a->u.rewrite.add_args) {
            *args = r->args;
        } else {
            args->len = 0;
            args->data = NULL;
        }
        return GH_OK;
    }
    if (gh_http_rewrite_value(r, &a->u.rewrite.args, escape, &parts[0])
        != GH_OK)
    {
        return GH_ERROR;
    }
    if (!a->u.rewrite.add_args || r->args.len == 0) {
        *args = parts[0];
        return GH_OK;
    }
    if (parts[0].len == 0) {
        *args = r->args;
        return GH_OK;
    }
    parts[1] = amp;
    parts[2] = r->args;
    return gh_http_rewrite_concat(r, args, parts, 3);
}

static gh_int_t
gh_http_rewrite_redirect(gh_http_request_t *r,
    const gh_http_script_action_t *a, bool quoted)
{
    static const gh_str_t qmark = gh_string("?");
    gh_str_t              parts[3], url, location;

    if (gh_http_rewrite_value(r, &a->u.rewrite.uri, quoted, &parts[0])
        != GH_OK
        || gh_http_rewrite_args(r, a, quoted, &parts[2]) != GH_OK)
    {
        return 500;
    }
    if (parts[2].len != 0) {
        parts[1] = qmark;
        if (gh_http_rewrite_concat(r, &url, parts, 3) != GH_OK) {
            return 500;
        }
    } else {
        url = parts[0];
    }
    if (gh_http_rewrite_logging(r)) {
        gh_log(GH_LOG_NOTICE, &r->conn->log, 0,
            "rewritten redirect: \"%.*s\"", (int) url.len,
            (const char *) url.data);
    }
    /* as `return`: the page and error_page come from finalize */
    if (r->keepalive && gh_http_discard_request_body(r) != GH_OK) {
        r->keepalive = 0;
    }
    if (gh_http_absolute_location(r, &url, &location) != GH_OK
        || gh_http_set_location(r, &location) != GH_OK)
    {
        return 500;
    }
    return (gh_int_t) a->u.rewrite.status;
}

static gh_int_t
gh_http_script_rewrite(gh_http_script_engine_t *e,
    const gh_http_script_action_t *a)
{
    gh_http_request_t *r = e->r;
    gh_str_t           uri, args;
    gh_int_t           rc;
    bool               quoted;

    rc = gh_http_regex_exec(r, a->u.rewrite.regex, &r->uri);
    if (gh_http_rewrite_logging(r) && rc != GH_ERROR) {
        gh_log(GH_LOG_NOTICE, &r->conn->log, 0, "\"%.*s\" %s \"%.*s\"",
            (int) a->u.rewrite.regex->pattern.len,
            (const char *) a->u.rewrite.regex->pattern.data,
            rc == GH_OK ? "matches" : "does not match", (int) r->uri.len,
            (const char *) r->uri.data);
    }
    if (rc == GH_DECLINED) {
        return GH_DECLINED;
    }
    if (rc != GH_OK) {
        return 500;
    }

    quoted = gh_http_rewrite_quoted(r);
    if (a->u.rewrite.flag == GH_HTTP_REWRITE_REDIRECT) {
        return gh_http_rewrite_redirect(r, a, quoted);
    }

    /* the old arguments may be part of the new ones: evaluate first */
    if (gh_http_rewrite_value(r, &a->u.rewrite.uri, false, &uri) != GH_OK
        || gh_http_rewrite_args(r, a, quoted, &args) != GH_OK)
    {
        return 500;
    }
    if (uri.len == 0) {
        gh_log(GH_LOG_ERR, &r->conn->log, 0,
            "the rewritten URI has a zero length");
        return 500;
    }
    if (gh_http_rewrite_logging(r)) {
        gh_log(GH_LOG_NOTICE, &r->conn->log, 0,
            "rewritten data: \"%.*s\", args: \"%.*s\"", (int) uri.len,
            (const char *) uri.data, (int) args.len,
            args.len ? (const char *) args.data : "");
    }
    gh_http_set_uri(r, &uri);
    r->args = args;
    /* as in nginx, a rewritten request may enter `internal` locations */
    r->internal = 1;
    r->uri_changed = 1;

    switch (a->u.rewrite.flag) {
    case GH_HTTP_REWRITE_LAST:
        e->quit = 1;
        e->search = 1;
        break;
    case GH_HTTP_REWRITE_BREAK:
        e->quit = 1;
        e->search = 0;
        /* the URI no longer comes from this location's match (a proxy
         * with a URI part then passes it whole, as nginx) */
        r->valid_location = 0;
        break;
    default:
        e->search = 1;
        break;
    }
    return GH_DECLINED;
}

/* `break` */
static gh_int_t
gh_http_script_break(gh_http_script_engine_t *e,
    const gh_http_script_action_t *a)
{
    e->quit = 1;
    e->search = 0;
    return GH_DECLINED;
}

/* --- if -------------------------------------------------------------- */

/* GH_OK: the condition holds; GH_DECLINED: it does not; GH_ERROR */
static gh_int_t
gh_http_script_test(gh_http_request_t *r, const gh_http_script_action_t *a)
{
    gh_str_t    left, right;
    struct stat st;
    char       *path;
    bool        yes;
    gh_int_t    rc;

    if (gh_http_complex_value(r, &a->u.cond.left, &left) != GH_OK) {
        return GH_ERROR;
    }

    switch (a->u.cond.op) {
    case GH_HTTP_IF_VAR:
        yes = left.len != 0 && !(left.len == 1 && left.data[0] == '0');
        break;

    case GH_HTTP_IF_EQ:
        if (gh_http_complex_value(r, &a->u.cond.right, &right) != GH_OK) {
            return GH_ERROR;
        }
        yes = gh_str_eq(&left, &right);
        break;

    case GH_HTTP_IF_REGEX:
        rc = gh_http_regex_exec(r, a->u.cond.regex, &left);
        if (rc == GH_ERROR) {
            return GH_ERROR;
        }
        yes = rc == GH_OK;
        break;

    default:
        /* a NUL-terminated copy for the file system */
        path = gh_cstr(r->arena, &left);
        if (path == NULL) {
            return GH_ERROR;
        }
        /* stat() follows links, as nginx's tests do */
        if (stat(path, &st) != 0) {
            yes = false;
        } else if (a->u.cond.op == GH_HTTP_IF_FILE) {
            yes = S_ISREG(st.st_mode);
        } else if (a->u.cond.op == GH_HTTP_IF_DIR) {
            yes = S_ISDIR(st.st_mode);
        } else if (a->u.cond.op == GH_HTTP_IF_EXEC) {
            yes = (st.st_mode & S_IXUSR) != 0;
        } else {
            yes = true;
        }
        break;
    }
    return yes != a->u.cond.negate ? GH_OK : GH_DECLINED;
}

static gh_int_t
gh_http_script_if(gh_http_script_engine_t *e,
    const gh_http_script_action_t *a)
{
    gh_int_t rc = gh_http_script_test(e->r, a);

    if (rc == GH_ERROR) {
        return 500;
    }
    if (rc == GH_OK) {
        /* the block's confs rule the rest of the request (content
         * handler, headers, root) unless a new location is searched */
        e->r->loc_conf = a->u.cond.loc_conf;
    } else {
        e->ip = a->u.cond.next;
    }
    return GH_DECLINED;
}

/* --- set ------------------------------------------------------------- */

static gh_int_t
gh_http_script_set(gh_http_script_engine_t *e,
    const gh_http_script_action_t *a)
{
    gh_http_request_t   *r = e->r;
    gh_http_var_value_t *vv;
    gh_str_t             v;

    if (gh_http_complex_value(r, &a->u.set.value, &v) != GH_OK) {
        return 500;
    }
    if (a->u.set.args) {
        r->args = v;
        return GH_DECLINED;
    }
    if (r->variables == NULL && gh_http_variables_request_init(r) != GH_OK) {
        return 500;
    }
    /* the per-request cache is the variable's storage: readers find the
     * value there (a `set` variable is never NOCACHEABLE) */
    vv = &r->variables[a->u.set.index];
    vv->value = v;
    vv->valid = 1;
    vv->not_found = 0;
    return GH_DECLINED;
}

/* getter of a `set` variable read before any `set` ran */
static gh_int_t
gh_http_rewrite_var_uninit(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    const gh_str_t         *name = (const gh_str_t *) data;
    gh_http_rewrite_conf_t *rcf = gh_http_rewrite_req_loc_conf(r);

    if (rcf != NULL && rcf->uninit_warn != 0 && r->conn != NULL) {
        gh_log(GH_LOG_WARN, &r->conn->log, 0,
            "using uninitialized \"%.*s\" variable", (int) name->len,
            (const char *) name->data);
    }
    v->len = 0;
    v->data = (uint8_t *) "";
    return GH_OK;
}

/* --- return ---------------------------------------------------------- */

/* `return`: see the directive's comment below for the cases */
static gh_int_t
gh_http_script_return(gh_http_script_engine_t *e,
    const gh_http_script_action_t *a)
{
    gh_http_request_t *r = e->r;
    gh_uint_t          status = a->u.ret.status;
    gh_str_t           text, location;

    if (status == GH_HTTP_CLOSE) {
        return GH_HTTP_CLOSE;
    }
    if (!a->u.ret.has_text) {
        if (status >= 400) {
            return (gh_int_t) status;
        }
        return gh_http_send_response(r, status, NULL, NULL);
    }

    if (gh_http_complex_value(r, &a->u.ret.text, &text) != GH_OK) {
        return 500;
    }
    if (gh_http_is_redirect_status(status)) {
        /* the page and any error_page for the code come from finalize */
        if (r->keepalive && gh_http_discard_request_body(r) != GH_OK) {
            r->keepalive = 0;
        }
        if (gh_http_absolute_location(r, &text, &location) != GH_OK
            || gh_http_set_location(r, &location) != GH_OK)
        {
            return 500;
        }
        return (gh_int_t) status;
    }
    return gh_http_send_response(r, status, NULL, &text);
}

/* --- configuration --------------------------------------------------- */

static void *
gh_http_rewrite_create_conf(gh_conf_t *cf)
{
    gh_http_rewrite_conf_t *rcf = gh_calloc(cf->arena, sizeof(*rcf));

    /* script NULL until a directive appends to it */
    if (rcf != NULL) {
        rcf->log = GH_UNSET;
        rcf->uninit_warn = GH_UNSET;
    }
    return rcf;
}

static const char *
gh_http_rewrite_merge_loc_conf(gh_conf_t *cf, void *parent, void *child)
{
    gh_http_rewrite_conf_t *prev = parent, *conf = child;

    /* the script itself is not inherited (see the file comment) */
    if (conf->log == GH_UNSET) {
        conf->log = prev->log == GH_UNSET ? 0 : prev->log;
    }
    if (conf->uninit_warn == GH_UNSET) {
        conf->uninit_warn = prev->uninit_warn == GH_UNSET
            ? 1 : prev->uninit_warn;
    }
    return NULL;
}

/* the conf a directive at the current level appends to: server-level
 * actions go to the srv conf (SERVER_REWRITE), the rest to the loc conf */
static gh_http_rewrite_conf_t *
gh_http_rewrite_level_conf(gh_conf_t *cf, void *loc)
{
    if (cf->ctx_type & (GH_HTTP_SRV_CONF | GH_HTTP_SIF_CONF)) {
        return gh_http_conf_get_module_srv_conf(cf, gh_http_rewrite_module);
    }
    return loc;
}

static gh_http_script_action_t *
gh_http_rewrite_add_action(gh_conf_t *cf, gh_http_rewrite_conf_t *rcf,
    gh_http_script_op_pt handler)
{
    gh_http_script_action_t *a;

    if (rcf->script == NULL) {
        rcf->script = gh_array_create(cf->arena, 4,
            sizeof(gh_http_script_action_t));
        if (rcf->script == NULL) {
            return NULL;
        }
    }
    a = gh_array_push(rcf->script);
    if (a == NULL) {
        return NULL;
    }
    memset(a, 0, sizeof(*a));
    a->handler = handler;
    return a;
}

/* "http://x", "https://x" or "$scheme...": a bare URL for `return URL` */
static bool
gh_http_rewrite_is_url(const gh_str_t *v)
{
    return (v->len > 7 && memcmp(v->data, "http://", 7) == 0)
        || (v->len > 8 && memcmp(v->data, "https://", 8) == 0)
        || (v->len >= 7 && memcmp(v->data, "$scheme", 7) == 0);
}

/*
 * return code [text];  return code URL;  return URL;
 *
 *   444                    close the connection, no response
 *   URL                    302 with Location
 *   301|302|303|307|308 URL  that code with Location (a path is made
 *                          absolute per absolute_redirect) and the
 *                          code's page
 *   code text              text as the body, Content-Type default_type
 *   code < 400             empty body
 *   code >= 400            the code's page or error_page
 * Codes 0..999 are accepted, as in nginx: a config may use private ones.
 */
static const char *
gh_http_rewrite_return(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_rewrite_conf_t  *rcf = gh_http_rewrite_level_conf(cf, conf);
    gh_str_t                *args = gh_conf_args(cf);
    const gh_str_t          *text = NULL;
    gh_http_script_action_t *a;
    gh_int_t                 code;

    code = gh_atoi(args[1].data, args[1].len);
    if (code == GH_ERROR) {
        if (cf->node->nargs != 2 || !gh_http_rewrite_is_url(&args[1])) {
            gh_conf_error(cf, "invalid return code \"%.*s\"",
                (int) args[1].len, args[1].data);
            return GH_CONF_ERROR;
        }
        code = 302;
        text = &args[1];
    } else if (code > 999) {
        gh_conf_error(cf, "invalid return code \"%.*s\"", (int) args[1].len,
            args[1].data);
        return GH_CONF_ERROR;
    } else if (cf->node->nargs == 3) {
        text = &args[2];
    }

    a = gh_http_rewrite_add_action(cf, rcf, gh_http_script_return);
    if (a == NULL) {
        return "out of memory";
    }
    a->u.ret.status = (gh_uint_t) code;
    if (text != NULL) {
        const char *err = gh_http_compile_complex_value(cf, text,
            &a->u.ret.text);
        if (err != NULL) {
            return err;
        }
        a->u.ret.has_text = true;
    }
    return NULL;
}

/*
 * rewrite regex replacement [last | break | redirect | permanent];
 *
 * A replacement starting with "http://", "https://" or "$scheme" is a
 * redirect (302, or 301 with `permanent`) whatever the flag.  A '?' in
 * the replacement starts new arguments, a trailing '?' keeps the
 * request's own arguments from being appended (gh_http_rewrite_args).
 */
static const char *
gh_http_rewrite_rewrite(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_rewrite_conf_t  *rcf = gh_http_rewrite_level_conf(cf, conf);
    gh_str_t                *args = gh_conf_args(cf);
    gh_str_t                 repl = args[2], uri, qargs;
    gh_http_script_action_t *a;
    const char              *err = NULL;
    gh_http_regex_t         *re;
    unsigned                 flag = GH_HTTP_REWRITE_NONE;
    gh_uint_t                status = 0;
    uint8_t                 *q;

    re = gh_http_regex_compile(cf, &args[1], false, &err);
    if (re == NULL) {
        gh_conf_error(cf, "%s", err ? err : "invalid regex");
        return GH_CONF_ERROR;
    }

    if (cf->node->nargs == 4) {
        gh_str_t *f = &args[3];

        if (gh_str_eq_c(f, "last")) {
            flag = GH_HTTP_REWRITE_LAST;
        } else if (gh_str_eq_c(f, "break")) {
            flag = GH_HTTP_REWRITE_BREAK;
        } else if (gh_str_eq_c(f, "redirect")) {
            flag = GH_HTTP_REWRITE_REDIRECT;
            status = 302;
        } else if (gh_str_eq_c(f, "permanent")) {
            flag = GH_HTTP_REWRITE_REDIRECT;
            status = 301;
        } else {
            gh_conf_error(cf, "invalid parameter \"%.*s\"", (int) f->len,
                (const char *) f->data);
            return GH_CONF_ERROR;
        }
    }
    if (gh_http_rewrite_is_url(&repl) && status == 0) {
        flag = GH_HTTP_REWRITE_REDIRECT;
        status = 302;
    }

    a = gh_http_rewrite_add_action(cf, rcf, gh_http_script_rewrite);
    if (a == NULL) {
        return "out of memory";
    }
    a->u.rewrite.regex = re;
    a->u.rewrite.flag = flag;
    a->u.rewrite.status = status;
    a->u.rewrite.add_args = true;

    if (repl.len > 1 && repl.data[repl.len - 1] == '?') {
        repl.len--;
        a->u.rewrite.add_args = false;
    } else if (repl.len == 1 && repl.data[0] == '?') {
        gh_conf_error(cf, "invalid replacement \"?\"");
        return GH_CONF_ERROR;
    }
    /* variable names cannot hold a '?': the first one is literal */
    uri = repl;
    q = memchr(repl.data, '?', repl.len);
    if (q != NULL) {
        uri.len = (size_t) (q - repl.data);
        qargs.data = q + 1;
        qargs.len = repl.len - uri.len - 1;
        a->u.rewrite.has_args = true;
        err = gh_http_compile_complex_value(cf, &qargs, &a->u.rewrite.args);
        if (err != NULL) {
            return err;
        }
    }
    return gh_http_compile_complex_value(cf, &uri, &a->u.rewrite.uri);
}

static const char *
gh_http_rewrite_break(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_rewrite_conf_t *rcf = gh_http_rewrite_level_conf(cf, conf);

    if (gh_http_rewrite_add_action(cf, rcf, gh_http_script_break) == NULL) {
        return "out of memory";
    }
    return NULL;
}

/*
 * set $variable value;
 *
 * Declares a changeable variable (a map or another `set` may name it
 * too); its value lives in the request's variable cache.  `$args` is
 * the request's arguments themselves, as in nginx.
 */
static const char *
gh_http_rewrite_set(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_rewrite_conf_t  *rcf = gh_http_rewrite_level_conf(cf, conf);
    gh_str_t                *args = gh_conf_args(cf);
    gh_str_t                 name = args[1];
    gh_http_script_action_t *a;
    gh_http_variable_t      *v;
    gh_int_t                 index = 0;
    bool                     is_args;

    if (name.len < 2 || name.data[0] != '$') {
        gh_conf_error(cf, "invalid variable name \"%.*s\"", (int) name.len,
            (const char *) name.data);
        return GH_CONF_ERROR;
    }
    name.data++;
    name.len--;
    for (size_t i = 0; i < name.len; i++) {
        uint8_t c = name.data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_'))
        {
            gh_conf_error(cf, "invalid variable name \"%.*s\"",
                (int) args[1].len, (const char *) args[1].data);
            return GH_CONF_ERROR;
        }
    }

    is_args = gh_str_caseeq_c(&name, "args");
    if (!is_args) {
        v = gh_http_add_variable(cf, &name, GH_HTTP_VAR_CHANGEABLE);
        if (v == NULL) {
            gh_conf_error(cf, "the duplicate \"%.*s\" variable",
                (int) name.len, (const char *) name.data);
            return GH_CONF_ERROR;
        }
        if (v->get == NULL) {
            /* the getter only runs while no `set` has stored a value */
            gh_str_t *copy = gh_alloc(cf->arena, sizeof(*copy));

            if (copy == NULL) {
                return "out of memory";
            }
            *copy = gh_str_dup(cf->arena, &name);
            v->get = gh_http_rewrite_var_uninit;
            v->data = (uintptr_t) copy;
        }
        index = gh_http_get_variable_index(cf, &name);
        if (index == GH_ERROR) {
            return "out of memory";
        }
    }

    a = gh_http_rewrite_add_action(cf, rcf, gh_http_script_set);
    if (a == NULL) {
        return "out of memory";
    }
    a->u.set.index = (gh_uint_t) index;
    a->u.set.args = is_args;
    return gh_http_compile_complex_value(cf, &args[2], &a->u.set.value);
}

/* --- if{} ------------------------------------------------------------ */

static const char *
gh_http_rewrite_bad_condition(gh_conf_t *cf, const gh_str_t *tok)
{
    gh_conf_error(cf, "invalid condition \"%.*s\"", (int) tok->len,
        (const char *) tok->data);
    return GH_CONF_ERROR;
}

static const char *
gh_http_rewrite_variable_side(gh_conf_t *cf, const gh_str_t *tok,
    gh_http_complex_value_t *cv)
{
    if (tok->len < 2 || tok->data[0] != '$') {
        return gh_http_rewrite_bad_condition(cf, tok);
    }
    return gh_http_compile_complex_value(cf, tok, cv);
}

static const struct {
    const char *name;
    unsigned    op;
    bool        negate;
} gh_http_rewrite_file_ops[] = {
    { "-f", GH_HTTP_IF_FILE, false },   { "!-f", GH_HTTP_IF_FILE, true },
    { "-d", GH_HTTP_IF_DIR, false },    { "!-d", GH_HTTP_IF_DIR, true },
    { "-e", GH_HTTP_IF_EXISTS, false }, { "!-e", GH_HTTP_IF_EXISTS, true },
    { "-x", GH_HTTP_IF_EXEC, false },   { "!-x", GH_HTTP_IF_EXEC, true },
};

/*
 * The condition's words, parentheses taken off:
 *   ($v)  ($v = s)  ($v != s)  ($v ~ re)  ($v ~* re)  ($v !~ re)
 *   ($v !~* re)  (-f path)  (!-f path)  and -d, -e, -x likewise.
 * "(" and ")" may stand alone or stick to the first and last word.
 */
static const char *
gh_http_rewrite_condition(gh_conf_t *cf, gh_http_script_action_t *a)
{
    gh_str_t   *args = gh_conf_args(cf);
    gh_str_t    w[GH_CONF_MAX_ARGS];
    size_t      n = 0;
    const char *err = NULL;

    for (size_t i = 1; i < cf->node->nargs && n < gh_nelems(w); i++) {
        w[n++] = args[i];
    }
    if (w[0].len == 0 || w[0].data[0] != '(') {
        return gh_http_rewrite_bad_condition(cf, &w[0]);
    }
    w[0].data++;
    w[0].len--;
    if (w[n - 1].len == 0 || w[n - 1].data[w[n - 1].len - 1] != ')') {
        return gh_http_rewrite_bad_condition(cf, &w[n - 1]);
    }
    w[n - 1].len--;
    /* words that were only a parenthesis */
    if (w[0].len == 0) {
        memmove(&w[0], &w[1], (n - 1) * sizeof(w[0]));
        n--;
    }
    if (n != 0 && w[n - 1].len == 0) {
        n--;
    }

    if (n == 1) {
        a->u.cond.op = GH_HTTP_IF_VAR;
        return gh_http_rewrite_variable_side(cf, &w[0], &a->u.cond.left);
    }

    if (n == 2) {
        for (size_t i = 0; i < gh_nelems(gh_http_rewrite_file_ops); i++) {
            if (gh_str_eq_c(&w[0], gh_http_rewrite_file_ops[i].name)) {
                a->u.cond.op = gh_http_rewrite_file_ops[i].op;
                a->u.cond.negate = gh_http_rewrite_file_ops[i].negate;
                return gh_http_compile_complex_value(cf, &w[1],
                    &a->u.cond.left);
            }
        }
        gh_conf_error(cf, "invalid condition \"%.*s\"", (int) w[0].len,
            (const char *) w[0].data);
        return GH_CONF_ERROR;
    }

    if (n != 3) {
        gh_conf_error(cf, "invalid condition");
        return GH_CONF_ERROR;
    }

    err = gh_http_rewrite_variable_side(cf, &w[0], &a->u.cond.left);
    if (err != NULL) {
        return err;
    }
    if (gh_str_eq_c(&w[1], "=") || gh_str_eq_c(&w[1], "!=")) {
        a->u.cond.op = GH_HTTP_IF_EQ;
        a->u.cond.negate = w[1].data[0] == '!';
        return gh_http_compile_complex_value(cf, &w[2], &a->u.cond.right);
    }
    if (gh_str_eq_c(&w[1], "~") || gh_str_eq_c(&w[1], "~*")
        || gh_str_eq_c(&w[1], "!~") || gh_str_eq_c(&w[1], "!~*"))
    {
        a->u.cond.op = GH_HTTP_IF_REGEX;
        a->u.cond.negate = w[1].data[0] == '!';
        a->u.cond.regex = gh_http_regex_compile(cf, &w[2],
            w[1].data[w[1].len - 1] == '*', &err);
        if (a->u.cond.regex == NULL) {
            gh_conf_error(cf, "%s", err ? err : "invalid regex");
            return GH_CONF_ERROR;
        }
        return NULL;
    }
    gh_conf_error(cf, "unexpected \"%.*s\" in condition", (int) w[1].len,
        (const char *) w[1].data);
    return GH_CONF_ERROR;
}

/* the block's confs: a location-level array, entered in the enclosing
 * level's `locations` as a GH_HTTP_LOC_IF so that the merge pass gives it
 * every inherited value (see the file comment) */
static gh_conf_ctx_t *
gh_http_rewrite_if_ctx(gh_conf_t *cf)
{
    gh_conf_ctx_t            *pctx = cf->ctx, *ctx;
    gh_http_core_loc_conf_t  *pclcf, *clcf, **slot;

    ctx = gh_calloc(cf->arena, sizeof(*ctx));
    if (ctx == NULL) {
        return NULL;
    }
    ctx->main_conf = pctx->main_conf;
    ctx->srv_conf = pctx->srv_conf;
    ctx->loc_conf = gh_http_create_loc_level(cf);
    if (ctx->loc_conf == NULL) {
        return NULL;
    }

    pclcf = pctx->loc_conf[gh_http_core_module.index];
    clcf = ctx->loc_conf[gh_http_core_module.index];
    clcf->loc_conf = ctx->loc_conf;
    clcf->parent = pclcf;
    clcf->type = GH_HTTP_LOC_IF;
    /* nginx names it after the enclosing location (proxy_pass reads it) */
    clcf->name = pclcf->name;
    clcf->file = cf->node->file;
    clcf->line = cf->node->line;

    if (pclcf->locations == NULL) {
        pclcf->locations = gh_array_create(cf->arena, 4, sizeof(void *));
        if (pclcf->locations == NULL) {
            return NULL;
        }
    }
    slot = gh_array_push(pclcf->locations);
    if (slot == NULL) {
        return NULL;
    }
    *slot = clcf;
    return ctx;
}

static const char *
gh_http_rewrite_if(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_rewrite_conf_t  *rcf = gh_http_rewrite_level_conf(cf, conf);
    gh_http_rewrite_conf_t  *ircf;
    gh_http_script_action_t *a;
    gh_conf_ctx_t           *ctx;
    gh_conf_node_t          *node = cf->node;
    unsigned                 ctx_type;
    size_t                   at;
    const char              *rv;
    gh_int_t                 rc;

    ctx_type = (cf->ctx_type & GH_HTTP_SRV_CONF) ? GH_HTTP_SIF_CONF
                                                 : GH_HTTP_LIF_CONF;
    a = gh_http_rewrite_add_action(cf, rcf, gh_http_script_if);
    if (a == NULL) {
        return "out of memory";
    }
    at = rcf->script->nelts - 1;
    rv = gh_http_rewrite_condition(cf, a);
    if (rv != NULL) {
        return rv;
    }
    ctx = gh_http_rewrite_if_ctx(cf);
    if (ctx == NULL) {
        return "out of memory";
    }
    a->u.cond.loc_conf = ctx->loc_conf;

    /* the block's own actions go inline into the enclosing script: its
     * rewrite conf borrows the array while the block is read, and gives
     * it back so that no script runs twice */
    ircf = ctx->loc_conf[gh_http_rewrite_module.index];
    ircf->script = rcf->script;
    rc = gh_conf_dispatch(cf, node->children, ctx_type, ctx);
    ircf->script = NULL;
    cf->node = node;
    if (rc != GH_OK) {
        return GH_CONF_ERROR;
    }

    /* the array may have moved while the block grew it */
    a = gh_array_at(rcf->script, gh_http_script_action_t, at);
    a->u.cond.next = rcf->script->nelts;
    return NULL;
}

/* --- phases ---------------------------------------------------------- */

gh_int_t
gh_http_phase_add(gh_conf_t *cf, int phase, gh_http_handler_pt h)
{
    gh_http_core_main_conf_t *cmcf =
        gh_http_conf_get_module_main_conf(cf, gh_http_core_module);
    gh_http_phase_t          *ph;

    if (phase < 0 || phase >= GH_HTTP_NPHASES) {
        return GH_ERROR;
    }
    ph = &cmcf->phases[phase];
    if (ph->n == ph->cap) {
        /* configuration time, a handful per phase: copy on growth, the
         * old storage stays in the conf arena */
        gh_uint_t cap = ph->cap ? ph->cap * 2 : 4;
        gh_http_handler_pt *hs = gh_alloc(cf->arena, cap * sizeof(*hs));
        if (hs == NULL) {
            return GH_ERROR;
        }
        if (ph->n != 0) {
            memcpy(hs, ph->handlers, ph->n * sizeof(*hs));
        }
        ph->handlers = hs;
        ph->cap = cap;
    }
    ph->handlers[ph->n++] = h;
    return GH_OK;
}

/* an if{} without a content handler of its own serves the request the
 * way its enclosing location would (proxy_pass outside, add_header
 * inside), as nginx keeps the location's handler across an `if` */
static void
gh_http_rewrite_if_handlers(gh_http_core_loc_conf_t *pclcf)
{
    if (pclcf->locations == NULL) {
        return;
    }
    for (size_t i = 0; i < pclcf->locations->nelts; i++) {
        gh_http_core_loc_conf_t *clcf =
            *gh_array_at(pclcf->locations, gh_http_core_loc_conf_t *, i);

        if (clcf->type == GH_HTTP_LOC_IF && clcf->handler == NULL) {
            clcf->handler = pclcf->handler;
        }
        gh_http_rewrite_if_handlers(clcf);
    }
}

static gh_int_t
gh_http_rewrite_init(gh_conf_t *cf)
{
    gh_http_core_main_conf_t *cmcf =
        gh_http_conf_get_module_main_conf(cf, gh_http_core_module);

    if (gh_http_phase_add(cf, GH_HTTP_SERVER_REWRITE_PHASE,
            gh_http_rewrite_server_handler) != GH_OK
        || gh_http_phase_add(cf, GH_HTTP_REWRITE_PHASE,
            gh_http_rewrite_location_handler) != GH_OK)
    {
        return GH_ERROR;
    }
    for (size_t s = 0; s < cmcf->servers.nelts; s++) {
        gh_http_core_srv_conf_t *cscf =
            *gh_array_at(&cmcf->servers, gh_http_core_srv_conf_t *, s);

        gh_http_rewrite_if_handlers(
            cscf->ctx->loc_conf[gh_http_core_module.index]);
    }
    return GH_OK;
}
