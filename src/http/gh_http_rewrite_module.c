/*
 * gh_http_rewrite_module.c: the rewrite "script" of a server and of a
 * location.
 *
 * The rewrite directives of one level compile, in the order written, into
 * an array of actions.  The SERVER_REWRITE phase runs the server{} level's
 * script (before a location is chosen), the REWRITE phase runs the chosen
 * location's.  Like nginx, scripts are not inherited: a location without
 * rewrite directives runs nothing, and since server-level actions live in
 * the srv conf they cannot run a second time when no location matches.
 *
 * Today the only action is `return`.  The engine is built for the rest of
 * nginx's set:
 *   - an action is a handler plus its compiled arguments (a union member);
 *     the handler returns GH_DECLINED to go on with the next action, or a
 *     result that ends the script (a status, GH_OK once a response was
 *     sent, GH_ERROR);
 *   - `set` and `rewrite ... ;` are actions that change the request and
 *     return GH_DECLINED; `rewrite ... last` ends the script with an
 *     internal redirect, `break` ends it with GH_DECLINED;
 *   - `if (cond) { ... }` compiles its block's actions inline, right after
 *     an IF action that records the index past the block: when the
 *     condition is false the handler sets e->ip there, when true it also
 *     switches r->loc_conf to the block's conf and lets the block run.
 *   Directives at an `if` level (SIF/LIF) already append to the script of
 *   the enclosing server or location, which is what the inline layout needs.
 */
#include "gh_http.h"
#include "gh_http_modules.h"
#include "gh_http_script.h"

static const char *gh_http_rewrite_return(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static void *gh_http_rewrite_create_conf(gh_conf_t *cf);
static gh_int_t gh_http_rewrite_init(gh_conf_t *cf);

static const gh_command_t gh_http_rewrite_commands[] = {
    { "return", GH_HTTP_SRV_CONF | GH_HTTP_SIF_CONF | GH_HTTP_LOC_CONF
          | GH_HTTP_LIF_CONF,
      GH_CONF_TAKE12, gh_http_rewrite_return, GH_CONF_LOC_OFFSET, 0, NULL },
    GH_COMMAND_END
};

gh_module_t gh_http_rewrite_module = {
    .name = "rewrite",
    .commands = gh_http_rewrite_commands,
    .create_srv_conf = gh_http_rewrite_create_conf,
    .create_loc_conf = gh_http_rewrite_create_conf,
    .postconfiguration = gh_http_rewrite_init,
};

/* --- run time -------------------------------------------------------- */

static gh_int_t
gh_http_script_run(gh_http_request_t *r, const gh_http_rewrite_conf_t *rcf)
{
    gh_http_script_engine_t e = { .r = r, .ip = 0 };

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
    }
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
    return gh_http_rewrite_result(r, gh_http_script_run(r,
        gh_http_get_module_srv_conf(r, gh_http_rewrite_module)));
}

static gh_int_t
gh_http_rewrite_location_handler(gh_http_request_t *r)
{
    return gh_http_rewrite_result(r, gh_http_script_run(r,
        gh_http_get_module_loc_conf(r, gh_http_rewrite_module)));
}

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
    /* calloc: script NULL until a directive appends to it */
    return gh_calloc(cf->arena, sizeof(gh_http_rewrite_conf_t));
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

static gh_int_t
gh_http_rewrite_init(gh_conf_t *cf)
{
    if (gh_http_phase_add(cf, GH_HTTP_SERVER_REWRITE_PHASE,
            gh_http_rewrite_server_handler) != GH_OK
        || gh_http_phase_add(cf, GH_HTTP_REWRITE_PHASE,
            gh_http_rewrite_location_handler) != GH_OK)
    {
        return GH_ERROR;
    }
    return GH_OK;
}
