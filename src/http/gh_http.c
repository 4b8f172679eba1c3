/*
 * gh_http.c: the http{} block and the core HTTP module (server, location,
 * listen, server_name and the core limits/timeouts).
 *
 * Reading http{}:
 *   http_block: create main/srv/loc confs of every module, declare the
 *     core variables, dispatch the children (server{} -> srv ctx,
 *     location{} -> loc ctx, nested locations chain through `parent`).
 *   then: init_main_conf, merge every server and location level into the
 *     level below, build location lookup trees, phase handlers
 *     (postconfiguration), resolve variable references, and group the
 *     `listen` addresses into listening sockets.
 */
#include "gh_http.h"
#include "gh_http_modules.h"
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <unistd.h>

static const char *gh_http_block(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_http_core_server(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_http_core_location(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_core_listen(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_http_core_server_name(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_core_large_buffers(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_core_keepalive(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_core_error_page(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_core_internal(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_core_error_log(gh_conf_t *cf,
    const gh_command_t *cmd, void *conf);
static const char *gh_http_core_ignore(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);
static const char *gh_http_core_types(gh_conf_t *cf, const gh_command_t *cmd,
    void *conf);

static void *gh_http_core_create_main_conf(gh_conf_t *cf);
static const char *gh_http_core_init_main_conf(gh_conf_t *cf, void *conf);
static void *gh_http_core_create_srv_conf(gh_conf_t *cf);
static const char *gh_http_core_merge_srv_conf(gh_conf_t *cf, void *prev,
    void *conf);
static void *gh_http_core_create_loc_conf(gh_conf_t *cf);
static const char *gh_http_core_merge_loc_conf(gh_conf_t *cf, void *prev,
    void *conf);

static const gh_command_t gh_http_commands[] = {
    { "http", GH_MAIN_CONF, GH_CONF_BLOCK | GH_CONF_NOARGS, gh_http_block,
      0, 0, NULL },
    GH_COMMAND_END
};

gh_module_t gh_http_module = {
    .name = "http",
    .commands = gh_http_commands,
};

static const gh_conf_enum_t gh_http_server_tokens[] = {
    { "off", 0 }, { "on", 1 }, { "build", 2 }, { NULL, 0 }
};

#define SRV GH_HTTP_SRV_CONF
#define LOC GH_HTTP_LOC_CONF
#define MAIN GH_HTTP_MAIN_CONF
#define SOFF GH_CONF_SRV_OFFSET
#define LOFF GH_CONF_LOC_OFFSET
#define CSCF(f) offsetof(gh_http_core_srv_conf_t, f)
#define CLCF(f) offsetof(gh_http_core_loc_conf_t, f)

static const gh_command_t gh_http_core_commands[] = {
    { "server", MAIN, GH_CONF_BLOCK | GH_CONF_NOARGS, gh_http_core_server,
      0, 0, NULL },
    { "location", SRV | LOC, GH_CONF_BLOCK | GH_CONF_TAKE12,
      gh_http_core_location, 0, 0, NULL },
    { "listen", SRV, GH_CONF_1MORE, gh_http_core_listen, SOFF, 0, NULL },
    { "server_name", SRV, GH_CONF_1MORE, gh_http_core_server_name, SOFF, 0,
      NULL },
    { "client_header_buffer_size", MAIN | SRV, GH_CONF_TAKE1,
      gh_conf_set_size, SOFF, CSCF(client_header_buffer_size), NULL },
    { "client_connection_memory_max", MAIN | SRV, GH_CONF_TAKE1,
      gh_conf_set_size, SOFF, CSCF(connection_memory_max), NULL },
    { "large_client_header_buffers", MAIN | SRV, GH_CONF_TAKE2,
      gh_http_core_large_buffers, SOFF, 0, NULL },
    { "client_header_timeout", MAIN | SRV, GH_CONF_TAKE1, gh_conf_set_msec,
      SOFF, CSCF(client_header_timeout), NULL },
    { "merge_slashes", MAIN | SRV, GH_CONF_FLAG, gh_conf_set_flag, SOFF,
      CSCF(merge_slashes), NULL },
    { "underscores_in_headers", MAIN | SRV, GH_CONF_FLAG, gh_conf_set_flag,
      SOFF, CSCF(underscores_in_headers), NULL },
    { "ignore_invalid_headers", MAIN | SRV, GH_CONF_FLAG, gh_conf_set_flag,
      SOFF, CSCF(ignore_invalid_headers), NULL },
    { "client_max_body_size", MAIN | SRV | LOC, GH_CONF_TAKE1,
      gh_conf_set_off, LOFF, CLCF(client_max_body_size), NULL },
    { "client_body_buffer_size", MAIN | SRV | LOC, GH_CONF_TAKE1,
      gh_conf_set_size, LOFF, CLCF(client_body_buffer_size), NULL },
    { "client_body_timeout", MAIN | SRV | LOC, GH_CONF_TAKE1,
      gh_conf_set_msec, LOFF, CLCF(client_body_timeout), NULL },
    { "client_body_temp_path", MAIN | SRV | LOC, GH_CONF_TAKE1234,
      gh_conf_set_path, LOFF, CLCF(client_body_temp_path), NULL },
    { "send_timeout", MAIN | SRV | LOC, GH_CONF_TAKE1, gh_conf_set_msec,
      LOFF, CLCF(send_timeout), NULL },
    { "keepalive_timeout", MAIN | SRV | LOC, GH_CONF_TAKE12,
      gh_http_core_keepalive, LOFF, 0, NULL },
    { "keepalive_requests", MAIN | SRV | LOC, GH_CONF_TAKE1, gh_conf_set_num,
      LOFF, CLCF(keepalive_requests), NULL },
    { "keepalive_time", MAIN | SRV | LOC, GH_CONF_TAKE1, gh_conf_set_msec,
      LOFF, CLCF(keepalive_time), NULL },
    { "lingering_timeout", MAIN | SRV | LOC, GH_CONF_TAKE1, gh_conf_set_msec,
      LOFF, CLCF(lingering_timeout), NULL },
    { "server_tokens", MAIN | SRV | LOC, GH_CONF_TAKE1, gh_conf_set_enum,
      LOFF, CLCF(server_tokens), gh_http_server_tokens },
    { "error_page", MAIN | SRV | LOC | GH_HTTP_LIF_CONF, GH_CONF_2MORE,
      gh_http_core_error_page, LOFF, 0, NULL },
    { "recursive_error_pages", MAIN | SRV | LOC, GH_CONF_FLAG,
      gh_conf_set_flag, LOFF, CLCF(recursive_error_pages), NULL },
    { "internal", LOC, GH_CONF_NOARGS, gh_http_core_internal, LOFF, 0, NULL },
    { "default_type", MAIN | SRV | LOC, GH_CONF_TAKE1, gh_conf_set_str, LOFF,
      CLCF(default_type), NULL },
    { "absolute_redirect", MAIN | SRV | LOC, GH_CONF_FLAG, gh_conf_set_flag,
      LOFF, CLCF(absolute_redirect), NULL },
    { "port_in_redirect", MAIN | SRV | LOC, GH_CONF_FLAG, gh_conf_set_flag,
      LOFF, CLCF(port_in_redirect), NULL },
    { "chunked_transfer_encoding", MAIN | SRV | LOC, GH_CONF_FLAG,
      gh_conf_set_flag, LOFF, CLCF(chunked_transfer_encoding), NULL },
    { "error_log", MAIN | SRV | LOC, GH_CONF_1MORE, gh_http_core_error_log,
      LOFF, 0, NULL },
    /* Accepted for compatibility with stock nginx.conf files; they tune
     * things gatehouse does differently (see README). */
    { "sendfile", MAIN | SRV | LOC, GH_CONF_FLAG, gh_http_core_ignore, LOFF,
      0, NULL },
    { "tcp_nopush", MAIN | SRV | LOC, GH_CONF_FLAG, gh_http_core_ignore, LOFF,
      0, NULL },
    { "tcp_nodelay", MAIN | SRV | LOC, GH_CONF_FLAG, gh_http_core_ignore,
      LOFF, 0, NULL },
    { "types_hash_max_size", MAIN | SRV | LOC, GH_CONF_TAKE1,
      gh_http_core_ignore, LOFF, 0, NULL },
    { "types_hash_bucket_size", MAIN | SRV | LOC, GH_CONF_TAKE1,
      gh_http_core_ignore, LOFF, 0, NULL },
    { "server_names_hash_bucket_size", MAIN, GH_CONF_TAKE1,
      gh_http_core_ignore, 0, 0, NULL },
    { "server_names_hash_max_size", MAIN, GH_CONF_TAKE1,
      gh_http_core_ignore, 0, 0, NULL },
    { "variables_hash_bucket_size", MAIN, GH_CONF_TAKE1,
      gh_http_core_ignore, 0, 0, NULL },
    { "variables_hash_max_size", MAIN, GH_CONF_TAKE1,
      gh_http_core_ignore, 0, 0, NULL },
    { "lingering_close", MAIN | SRV | LOC, GH_CONF_TAKE1,
      gh_http_core_ignore, LOFF, 0, NULL },
    { "lingering_time", MAIN | SRV | LOC, GH_CONF_TAKE1,
      gh_http_core_ignore, LOFF, 0, NULL },
    { "server_name_in_redirect", MAIN | SRV | LOC, GH_CONF_FLAG,
      gh_http_core_ignore, LOFF, 0, NULL },
    { "types", MAIN | SRV | LOC, GH_CONF_BLOCK | GH_CONF_RAW | GH_CONF_NOARGS,
      gh_http_core_types, LOFF, 0, NULL },
    GH_COMMAND_END
};

gh_module_t gh_http_core_module = {
    .name = "http_core",
    .commands = gh_http_core_commands,
    .create_main_conf = gh_http_core_create_main_conf,
    .init_main_conf = gh_http_core_init_main_conf,
    .create_srv_conf = gh_http_core_create_srv_conf,
    .merge_srv_conf = gh_http_core_merge_srv_conf,
    .create_loc_conf = gh_http_core_create_loc_conf,
    .merge_loc_conf = gh_http_core_merge_loc_conf,
};

/* ------------------------------------------------------------------ */

static void **
gh_http_create_level(gh_conf_t *cf, int level)
{
    void **confs = gh_calloc(cf->arena, sizeof(void *) * gh_modules_n);
    if (confs == NULL) {
        return NULL;
    }
    for (gh_uint_t i = 0; gh_modules[i]; i++) {
        gh_module_t *m = gh_modules[i];
        void *(*create)(gh_conf_t *) = level == 0 ? m->create_main_conf
            : level == 1 ? m->create_srv_conf : m->create_loc_conf;
        if (create) {
            confs[m->index] = create(cf);
            if (confs[m->index] == NULL) {
                return NULL;
            }
        }
    }
    return confs;
}

void **
gh_http_create_loc_level(gh_conf_t *cf)
{
    return gh_http_create_level(cf, 2);
}

static const char *gh_http_merge_servers(gh_conf_t *cf,
    gh_http_core_main_conf_t *cmcf, gh_conf_ctx_t *http);
static const char *gh_http_optimize_servers(gh_conf_t *cf,
    gh_http_core_main_conf_t *cmcf);

static const char *
gh_http_block(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    if (cf->cycle->http_ctx) {
        return "is duplicate";
    }
    gh_conf_ctx_t *ctx = gh_calloc(cf->arena, sizeof(*ctx));
    if (ctx == NULL) {
        return "out of memory";
    }
    ctx->main_conf = gh_http_create_level(cf, 0);
    ctx->srv_conf = gh_http_create_level(cf, 1);
    ctx->loc_conf = gh_http_create_level(cf, 2);
    if (!ctx->main_conf || !ctx->srv_conf || !ctx->loc_conf) {
        return "out of memory";
    }
    cf->cycle->http_ctx = ctx;

    gh_conf_ctx_t *saved_ctx = cf->ctx;
    unsigned saved_type = cf->ctx_type;
    gh_conf_node_t *node = cf->node;
    cf->ctx = ctx;
    cf->ctx_type = GH_HTTP_MAIN_CONF;

    gh_http_core_main_conf_t *cmcf = ctx->main_conf[gh_http_core_module.index];
    const char *rv = NULL;

    if (gh_http_variables_add_core_vars(cf) != GH_OK) {
        rv = GH_CONF_ERROR;
        goto done;
    }
    if (gh_conf_dispatch(cf, node->children, GH_HTTP_MAIN_CONF, ctx)
        != GH_OK)
    {
        rv = GH_CONF_ERROR;
        goto done;
    }
    cf->node = node;

    for (gh_uint_t i = 0; gh_modules[i]; i++) {
        gh_module_t *m = gh_modules[i];
        if (m->init_main_conf) {
            rv = m->init_main_conf(cf, ctx->main_conf[m->index]);
            if (rv) {
                goto done;
            }
        }
    }

    rv = gh_http_merge_servers(cf, cmcf, ctx);
    if (rv) {
        goto done;
    }

    gh_http_filters_reset();
    for (gh_uint_t i = 0; gh_modules[i]; i++) {
        if (gh_modules[i]->postconfiguration
            && gh_modules[i]->postconfiguration(cf) != GH_OK)
        {
            rv = GH_CONF_ERROR;
            goto done;
        }
    }

    if (gh_http_variables_init_vars(cf) != GH_OK) {
        rv = GH_CONF_ERROR;
        goto done;
    }
    cf->node = node;
    rv = gh_http_optimize_servers(cf, cmcf);

done:
    cf->node = node;
    cf->ctx = saved_ctx;
    cf->ctx_type = saved_type;
    return rv;
}

/* merge the levels of one location subtree */
static const char *
gh_http_merge_locations(gh_conf_t *cf, gh_http_core_loc_conf_t *pclcf,
    void **parent_loc)
{
    if (pclcf->locations == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < pclcf->locations->nelts; i++) {
        gh_http_core_loc_conf_t *clcf =
            *gh_array_at(pclcf->locations, gh_http_core_loc_conf_t *, i);
        for (gh_uint_t m = 0; gh_modules[m]; m++) {
            gh_module_t *mod = gh_modules[m];
            if (mod->merge_loc_conf) {
                const char *rv = mod->merge_loc_conf(cf,
                    parent_loc[mod->index], clcf->loc_conf[mod->index]);
                if (rv) {
                    return rv;
                }
            }
        }
        const char *rv = gh_http_merge_locations(cf, clcf, clcf->loc_conf);
        if (rv) {
            return rv;
        }
    }
    return NULL;
}

static const char *
gh_http_merge_servers(gh_conf_t *cf, gh_http_core_main_conf_t *cmcf,
    gh_conf_ctx_t *http)
{
    for (size_t s = 0; s < cmcf->servers.nelts; s++) {
        gh_http_core_srv_conf_t *cscf =
            *gh_array_at(&cmcf->servers, gh_http_core_srv_conf_t *, s);
        gh_conf_ctx_t *ctx = cscf->ctx;

        for (gh_uint_t m = 0; gh_modules[m]; m++) {
            gh_module_t *mod = gh_modules[m];
            const char *rv;
            if (mod->merge_srv_conf) {
                rv = mod->merge_srv_conf(cf, http->srv_conf[mod->index],
                    ctx->srv_conf[mod->index]);
                if (rv) {
                    return rv;
                }
            }
            if (mod->merge_loc_conf) {
                rv = mod->merge_loc_conf(cf, http->loc_conf[mod->index],
                    ctx->loc_conf[mod->index]);
                if (rv) {
                    return rv;
                }
            }
        }

        gh_http_core_loc_conf_t *clcf =
            ctx->loc_conf[gh_http_core_module.index];
        const char *rv = gh_http_merge_locations(cf, clcf, ctx->loc_conf);
        if (rv) {
            return rv;
        }
        rv = gh_http_init_locations(cf, cscf, clcf);
        if (rv) {
            return rv;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */

static const char *
gh_http_core_server(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_conf_ctx_t *http = cf->ctx;
    gh_conf_ctx_t *ctx = gh_calloc(cf->arena, sizeof(*ctx));
    if (ctx == NULL) {
        return "out of memory";
    }
    ctx->main_conf = http->main_conf;
    ctx->srv_conf = gh_http_create_level(cf, 1);
    ctx->loc_conf = gh_http_create_level(cf, 2);
    if (!ctx->srv_conf || !ctx->loc_conf) {
        return "out of memory";
    }

    gh_http_core_srv_conf_t *cscf = ctx->srv_conf[gh_http_core_module.index];
    cscf->ctx = ctx;
    cscf->file = cf->node->file;
    cscf->line = cf->node->line;
    gh_http_core_loc_conf_t *clcf = ctx->loc_conf[gh_http_core_module.index];
    clcf->loc_conf = ctx->loc_conf;

    gh_http_core_main_conf_t *cmcf = http->main_conf[gh_http_core_module.index];
    gh_http_core_srv_conf_t **slot = gh_array_push(&cmcf->servers);
    if (slot == NULL) {
        return "out of memory";
    }
    *slot = cscf;

    gh_conf_node_t *node = cf->node;
    gh_int_t rc = gh_conf_dispatch(cf, node->children, GH_HTTP_SRV_CONF, ctx);
    cf->node = node;
    cf->ctx = http;
    cf->ctx_type = GH_HTTP_MAIN_CONF;
    if (rc != GH_OK) {
        return GH_CONF_ERROR;
    }

    if (!cscf->listen_set) {
        /* nginx: "listen *:80" (or 8000 when not root) if none given */
        gh_http_listen_t *l = gh_array_push(&cmcf->listens);
        if (l == NULL) {
            return "out of memory";
        }
        memset(l, 0, sizeof(*l));
        struct sockaddr_in *sin = (struct sockaddr_in *) &l->sockaddr;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(getuid() == 0 ? 80 : 8000);
        sin->sin_addr.s_addr = INADDR_ANY;
        l->socklen = sizeof(*sin);
        l->wildcard = 1;
        l->backlog = 511;
        l->server = cscf;
        l->file = node->file;
        l->line = node->line;
        gh_sock_ntop((struct sockaddr *) sin, l->socklen, l->addr_text,
            sizeof(l->addr_text), true);
    }
    return NULL;
}

static const char *
gh_http_core_location(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_conf_ctx_t *pctx = cf->ctx;
    gh_conf_node_t *node = cf->node;
    gh_str_t *args = node->args;
    gh_http_core_loc_conf_t *pclcf = pctx->loc_conf[gh_http_core_module.index];

    gh_conf_ctx_t *ctx = gh_calloc(cf->arena, sizeof(*ctx));
    if (ctx == NULL) {
        return "out of memory";
    }
    ctx->main_conf = pctx->main_conf;
    ctx->srv_conf = pctx->srv_conf;
    ctx->loc_conf = gh_http_create_level(cf, 2);
    if (ctx->loc_conf == NULL) {
        return "out of memory";
    }
    gh_http_core_loc_conf_t *clcf = ctx->loc_conf[gh_http_core_module.index];
    clcf->loc_conf = ctx->loc_conf;
    clcf->parent = pclcf;
    clcf->file = node->file;
    clcf->line = node->line;

    gh_str_t mod = gh_null_string, name;
    if (node->nargs == 3) {
        mod = args[1];
        name = args[2];
    } else {
        name = args[1];
        /* "=/x", "~*re" written without a space */
        if (name.len > 1 && name.data[0] == '=') {
            gh_str_set(&mod, "=");
            name.data++; name.len--;
        } else if (name.len > 2 && name.data[0] == '^' && name.data[1] == '~') {
            gh_str_set(&mod, "^~");
            name.data += 2; name.len -= 2;
        } else if (name.len > 2 && name.data[0] == '~' && name.data[1] == '*') {
            gh_str_set(&mod, "~*");
            name.data += 2; name.len -= 2;
        } else if (name.len > 1 && name.data[0] == '~') {
            gh_str_set(&mod, "~");
            name.data++; name.len--;
        }
    }

    if (mod.len == 0) {
        clcf->type = (name.len && name.data[0] == '@') ? GH_HTTP_LOC_NAMED
                                                       : GH_HTTP_LOC_PREFIX;
    } else if (gh_str_eq_c(&mod, "=")) {
        clcf->type = GH_HTTP_LOC_EXACT;
    } else if (gh_str_eq_c(&mod, "^~")) {
        clcf->type = GH_HTTP_LOC_NOREGEX;
    } else if (gh_str_eq_c(&mod, "~")) {
        clcf->type = GH_HTTP_LOC_REGEX;
    } else if (gh_str_eq_c(&mod, "~*")) {
        clcf->type = GH_HTTP_LOC_REGEX_CASELESS;
    } else {
        gh_conf_error(cf, "invalid location modifier \"%.*s\"",
            (int) mod.len, mod.data);
        return GH_CONF_ERROR;
    }
    clcf->name = name;
    if (name.len == 0) {
        return "has an empty name";
    }

    if (clcf->type == GH_HTTP_LOC_REGEX
        || clcf->type == GH_HTTP_LOC_REGEX_CASELESS)
    {
        const char *err = NULL;
        clcf->regex = gh_http_regex_compile(cf, &name,
            clcf->type == GH_HTTP_LOC_REGEX_CASELESS, &err);
        if (clcf->regex == NULL) {
            gh_conf_error(cf, "%s", err ? err : "invalid regex");
            return GH_CONF_ERROR;
        }
    }
    if (clcf->type == GH_HTTP_LOC_NAMED) {
        clcf->internal = 1;
    }

    /* nesting rules (nginx) */
    if (pclcf->name.len) {
        if (pclcf->type == GH_HTTP_LOC_EXACT) {
            gh_conf_error(cf, "location \"%.*s\" cannot be inside the exact "
                "location \"%.*s\"", (int) name.len, name.data,
                (int) pclcf->name.len, pclcf->name.data);
            return GH_CONF_ERROR;
        }
        if (pclcf->type == GH_HTTP_LOC_NAMED) {
            gh_conf_error(cf, "location \"%.*s\" cannot be inside the named "
                "location \"%.*s\"", (int) name.len, name.data,
                (int) pclcf->name.len, pclcf->name.data);
            return GH_CONF_ERROR;
        }
        if (clcf->type == GH_HTTP_LOC_NAMED) {
            gh_conf_error(cf, "named location \"%.*s\" can be on the server "
                "level only", (int) name.len, name.data);
            return GH_CONF_ERROR;
        }
        if ((clcf->type == GH_HTTP_LOC_PREFIX
             || clcf->type == GH_HTTP_LOC_EXACT
             || clcf->type == GH_HTTP_LOC_NOREGEX)
            && pclcf->regex == NULL
            && (name.len < pclcf->name.len
                || memcmp(name.data, pclcf->name.data, pclcf->name.len) != 0))
        {
            gh_conf_error(cf, "location \"%.*s\" is outside location "
                "\"%.*s\"", (int) name.len, name.data,
                (int) pclcf->name.len, pclcf->name.data);
            return GH_CONF_ERROR;
        }
    }

    if (pclcf->locations == NULL) {
        pclcf->locations = gh_array_create(cf->arena, 4, sizeof(void *));
        if (pclcf->locations == NULL) {
            return "out of memory";
        }
    }
    gh_http_core_loc_conf_t **slot = gh_array_push(pclcf->locations);
    if (slot == NULL) {
        return "out of memory";
    }
    *slot = clcf;

    unsigned saved_type = cf->ctx_type;
    gh_int_t rc = gh_conf_dispatch(cf, node->children, GH_HTTP_LOC_CONF, ctx);
    cf->node = node;
    cf->ctx = pctx;
    cf->ctx_type = saved_type;
    return rc == GH_OK ? NULL : GH_CONF_ERROR;
}

/* ------------------------------------------------------------------ */

static bool
gh_http_sockaddr_eq(const struct sockaddr_storage *a, socklen_t alen,
    const struct sockaddr_storage *b, socklen_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

static bool
gh_http_sockaddr_wildcard(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        return ((const struct sockaddr_in *) ss)->sin_addr.s_addr
            == INADDR_ANY;
    }
    if (ss->ss_family == AF_INET6) {
        return IN6_IS_ADDR_UNSPECIFIED(
            &((const struct sockaddr_in6 *) ss)->sin6_addr);
    }
    return false;
}

static int
gh_http_sockaddr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        return ntohs(((const struct sockaddr_in *) ss)->sin_port);
    }
    if (ss->ss_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *) ss)->sin6_port);
    }
    return -1;
}

static const char *
gh_http_core_listen(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_core_srv_conf_t *cscf = conf;
    gh_str_t *args = cf->node->args;
    gh_http_core_main_conf_t *cmcf =
        gh_http_conf_get_module_main_conf(cf, gh_http_core_module);
    static char err_buf[256];

    gh_http_listen_t l;
    memset(&l, 0, sizeof(l));
    const char *err = NULL;
    if (gh_parse_addr_port(&args[1], &l.sockaddr, &l.socklen, 80, &err)
        != GH_OK)
    {
        snprintf(err_buf, sizeof(err_buf), "%s in \"%.*s\" of the \"listen\""
            " directive", err ? err : "invalid address", (int) args[1].len,
            (char *) args[1].data);
        gh_conf_error(cf, "%s", err_buf);
        return GH_CONF_ERROR;
    }
    l.backlog = 511;
    l.server = cscf;
    l.file = cf->node->file;
    l.line = cf->node->line;
    l.wildcard = gh_http_sockaddr_wildcard(&l.sockaddr);
    l.ipv6only = 1;
    gh_sock_ntop((struct sockaddr *) &l.sockaddr, l.socklen, l.addr_text,
        sizeof(l.addr_text), true);

    for (size_t i = 2; i < cf->node->nargs; i++) {
        gh_str_t *a = &args[i];
        if (gh_str_eq_c(a, "default_server") || gh_str_eq_c(a, "default")) {
            l.default_server = 1;
        } else if (a->len > 8 && memcmp(a->data, "backlog=", 8) == 0) {
            l.backlog = gh_atoi(a->data + 8, a->len - 8);
            if (l.backlog == GH_ERROR || l.backlog == 0) {
                gh_conf_error(cf, "invalid backlog \"%.*s\"",
                    (int) (a->len - 8), a->data + 8);
                return GH_CONF_ERROR;
            }
        } else if (gh_str_eq_c(a, "reuseport")) {
            l.reuseport = 1;
        } else if (gh_str_eq_c(a, "ssl")) {
            l.ssl = 1;
        } else if (gh_str_eq_c(a, "http2")) {
            l.http2 = 1;
        } else if (gh_str_eq_c(a, "ipv6only=on")) {
            l.ipv6only = 1;
        } else if (gh_str_eq_c(a, "ipv6only=off")) {
            l.ipv6only = 0;
        } else if (gh_str_eq_c(a, "deferred") || gh_str_eq_c(a, "bind")
                   || (a->len > 7 && memcmp(a->data, "rcvbuf=", 7) == 0)
                   || (a->len > 7 && memcmp(a->data, "sndbuf=", 7) == 0)
                   || (a->len >= 12
                       && memcmp(a->data, "so_keepalive", 12) == 0)
                   || (a->len > 12 && memcmp(a->data, "fastopen=", 9) == 0))
        {
            /* accepted: tuning we either do always or not at all */
        } else {
            gh_conf_error(cf, "invalid parameter \"%.*s\"", (int) a->len,
                a->data);
            return GH_CONF_ERROR;
        }
    }

    /* duplicates: the same address twice in one server, or two default
     * servers on one address */
    for (size_t i = 0; i < cmcf->listens.nelts; i++) {
        gh_http_listen_t *o = gh_array_at(&cmcf->listens, gh_http_listen_t, i);
        if (!gh_http_sockaddr_eq(&o->sockaddr, o->socklen, &l.sockaddr,
                l.socklen))
        {
            continue;
        }
        if (o->server == cscf) {
            gh_conf_error(cf, "a duplicate listen %s", l.addr_text);
            return GH_CONF_ERROR;
        }
        if (o->default_server && l.default_server) {
            gh_conf_error(cf, "a duplicate default server for %s in %s:%u",
                l.addr_text, o->file, o->line);
            return GH_CONF_ERROR;
        }
    }

    gh_http_listen_t *slot = gh_array_push(&cmcf->listens);
    if (slot == NULL) {
        return "out of memory";
    }
    *slot = l;
    cscf->listen_set = true;
    return NULL;
}

static const char *
gh_http_core_server_name(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_core_srv_conf_t *cscf = conf;
    gh_str_t *args = cf->node->args;

    for (size_t i = 1; i < cf->node->nargs; i++) {
        gh_str_t v = args[i];
        gh_http_server_name_t *sn = gh_array_push(&cscf->server_names);
        if (sn == NULL) {
            return "out of memory";
        }
        memset(sn, 0, sizeof(*sn));
        sn->server = cscf;
        if (cscf->server_name.data == NULL) {
            cscf->server_name = v;
        }
        if (v.len > 1 && v.data[0] == '~') {
            gh_str_t re = { v.len - 1, v.data + 1 };
            const char *err = NULL;
            sn->regex = gh_http_regex_compile(cf, &re, true, &err);
            if (sn->regex == NULL) {
                gh_conf_error(cf, "%s", err ? err : "invalid regex");
                return GH_CONF_ERROR;
            }
            sn->name = re;
            continue;
        }
        uint8_t *low = gh_alloc_unaligned(cf->arena, v.len + 1);
        if (low == NULL) {
            return "out of memory";
        }
        gh_strlow(low, v.data, v.len);
        low[v.len] = '\0';
        sn->name.data = low;
        sn->name.len = v.len;
    }
    return NULL;
}

static const char *
gh_http_core_large_buffers(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_core_srv_conf_t *cscf = conf;
    gh_str_t *args = cf->node->args;

    if (cscf->large_client_header_buffers_num != GH_UNSET) {
        return "is duplicate";
    }
    gh_int_t n = gh_atoi(args[1].data, args[1].len);
    ssize_t size = gh_parse_size(&args[2]);
    if (n == GH_ERROR || n == 0 || size <= 0) {
        return "invalid value";
    }
    cscf->large_client_header_buffers_num = n;
    cscf->large_client_header_buffers_size = (size_t) size;
    return NULL;
}

static const char *
gh_http_core_keepalive(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_core_loc_conf_t *clcf = conf;
    gh_str_t *args = cf->node->args;

    if (clcf->keepalive_timeout != GH_UNSET_MSEC) {
        return "is duplicate";
    }
    clcf->keepalive_timeout = gh_parse_time(&args[1]);
    if (clcf->keepalive_timeout == GH_ERROR) {
        return "invalid value";
    }
    if (cf->node->nargs == 3) {
        clcf->keepalive_header_timeout = gh_parse_time(&args[2]);
        if (clcf->keepalive_header_timeout == GH_ERROR) {
            return "invalid value";
        }
    }
    return NULL;
}

static const char *
gh_http_core_error_page(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_core_loc_conf_t *clcf = conf;
    gh_str_t *args = cf->node->args;
    size_t n = cf->node->nargs;

    if (clcf->error_pages == NULL) {
        clcf->error_pages = gh_array_create(cf->arena, 4,
            sizeof(gh_http_err_page_t));
        if (clcf->error_pages == NULL) {
            return "out of memory";
        }
    }

    gh_int_t overwrite = -1;
    size_t last = n - 1;
    gh_str_t *ov = &args[n - 2];
    if (ov->len && ov->data[0] == '=') {
        if (ov->len == 1) {
            overwrite = 0;
        } else {
            overwrite = gh_atoi(ov->data + 1, ov->len - 1);
            if (overwrite == GH_ERROR || overwrite < 100 || overwrite > 599
                || overwrite == 499)
            {
                gh_conf_error(cf, "invalid value \"%.*s\"", (int) ov->len,
                    ov->data);
                return GH_CONF_ERROR;
            }
        }
        last = n - 2;
    }
    if (last < 2) {
        gh_conf_error(cf, "invalid number of arguments in \"error_page\"");
        return GH_CONF_ERROR;
    }

    gh_http_err_page_t *ep = gh_array_push(clcf->error_pages);
    if (ep == NULL) {
        return "out of memory";
    }
    memset(ep, 0, sizeof(*ep));
    ep->overwrite = overwrite;
    ep->codes = gh_array_create(cf->arena, last - 1, sizeof(gh_int_t));
    if (ep->codes == NULL) {
        return "out of memory";
    }
    for (size_t i = 1; i < last; i++) {
        gh_int_t code = gh_atoi(args[i].data, args[i].len);
        if (code == GH_ERROR || code < 300 || code > 599) {
            gh_conf_error(cf, "value \"%.*s\" must be between 300 and 599",
                (int) args[i].len, args[i].data);
            return GH_CONF_ERROR;
        }
        if (code == 499) {
            gh_conf_error(cf, "value \"499\" is invalid");
            return GH_CONF_ERROR;
        }
        gh_int_t *c = gh_array_push(ep->codes);
        if (c == NULL) {
            return "out of memory";
        }
        *c = code;
    }
    const char *rv = gh_http_compile_complex_value(cf, &args[n - 1], &ep->uri);
    if (rv) {
        return rv;
    }
    return NULL;
}

static const char *
gh_http_core_internal(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_core_loc_conf_t *clcf = conf;
    if (clcf->internal) {
        return "is duplicate";
    }
    clcf->internal = 1;
    return NULL;
}

static const char *
gh_http_core_error_log(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    gh_http_core_loc_conf_t *clcf = conf;
    return gh_conf_set_error_log(cf, &clcf->error_log);
}

static const char *
gh_http_core_ignore(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    /* accepted without effect, but still checked as nginx would */
    gh_str_t *v = &cf->node->args[1];
    if ((cmd->args & GH_CONF_FLAG) && !gh_str_eq_c(v, "on")
        && !gh_str_eq_c(v, "off"))
    {
        gh_conf_error(cf, "invalid value \"%.*s\" in \"%s\" directive, it "
            "must be \"on\" or \"off\"", (int) v->len, v->data, cmd->name);
        return GH_CONF_ERROR;
    }
    return NULL;
}

static const char *
gh_http_core_types(gh_conf_t *cf, const gh_command_t *cmd, void *conf)
{
    /* Static files take their type from a built-in table, not from
     * types{}; the block is accepted so that `include mime.types;`
     * works. */
    return NULL;
}

/* ------------------------------------------------------------------ */

static void *
gh_http_core_create_main_conf(gh_conf_t *cf)
{
    gh_http_core_main_conf_t *cmcf = gh_calloc(cf->arena, sizeof(*cmcf));
    if (cmcf == NULL) {
        return NULL;
    }
    if (gh_array_init(&cmcf->servers, cf->arena, 4, sizeof(void *)) != GH_OK
        || gh_array_init(&cmcf->variables, cf->arena, 64,
               sizeof(gh_http_variable_t)) != GH_OK
        || gh_array_init(&cmcf->prefix_variables, cf->arena, 8,
               sizeof(gh_http_variable_t)) != GH_OK
        || gh_array_init(&cmcf->listens, cf->arena, 4,
               sizeof(gh_http_listen_t)) != GH_OK
        || gh_array_init(&cmcf->ports, cf->arena, 4,
               sizeof(gh_http_port_t)) != GH_OK)
    {
        return NULL;
    }
    cmcf->variables_hash_max_size = GH_UNSET;
    cmcf->server_names_hash_max_size = GH_UNSET;
    return cmcf;
}

static const char *
gh_http_core_init_main_conf(gh_conf_t *cf, void *conf)
{
    return NULL;
}

static void *
gh_http_core_create_srv_conf(gh_conf_t *cf)
{
    gh_http_core_srv_conf_t *cscf = gh_calloc(cf->arena, sizeof(*cscf));
    if (cscf == NULL) {
        return NULL;
    }
    if (gh_array_init(&cscf->server_names, cf->arena, 2,
            sizeof(gh_http_server_name_t)) != GH_OK)
    {
        return NULL;
    }
    cscf->client_header_buffer_size = GH_UNSET_SIZE;
    cscf->connection_memory_max = GH_UNSET_SIZE;
    cscf->large_client_header_buffers_num = GH_UNSET;
    cscf->client_header_timeout = GH_UNSET_MSEC;
    cscf->merge_slashes = GH_UNSET;
    cscf->underscores_in_headers = GH_UNSET;
    cscf->ignore_invalid_headers = GH_UNSET;
    return cscf;
}

#define MERGE(f, def) do { if (conf->f == GH_UNSET) conf->f = \
    (prev->f == GH_UNSET ? (def) : prev->f); } while (0)
#define MERGE_SIZE(f, def) do { if (conf->f == GH_UNSET_SIZE) conf->f = \
    (prev->f == GH_UNSET_SIZE ? (def) : prev->f); } while (0)
#define MERGE_MSEC(f, def) do { if (conf->f == GH_UNSET_MSEC) conf->f = \
    (prev->f == GH_UNSET_MSEC ? (def) : prev->f); } while (0)

static const char *
gh_http_core_merge_srv_conf(gh_conf_t *cf, void *parent, void *child)
{
    gh_http_core_srv_conf_t *prev = parent, *conf = child;

    MERGE_SIZE(client_header_buffer_size, 1024);
    /* far above what proxying at the default buffer sizes holds: about
     * 70 KiB for a long proxied response (request arena blocks, 4 + 8 x
     * 4 KiB proxy buffers, batch arena), plus at most a 16 KiB body
     * buffer and 32 KiB of head buffers */
    MERGE_SIZE(connection_memory_max, 8 * 1024 * 1024);
    /* a request's first arena block alone is 16 KiB: below 32k every
     * request would be refused */
    if (conf->connection_memory_max != 0
        && (conf->connection_memory_max < 32 * 1024
            || conf->connection_memory_max > UINT32_MAX))
    {
        return "client_connection_memory_max must be 0 or from 32k to 4g";
    }
    if (conf->large_client_header_buffers_num == GH_UNSET) {
        if (prev->large_client_header_buffers_num == GH_UNSET) {
            conf->large_client_header_buffers_num = 4;
            conf->large_client_header_buffers_size = 8192;
        } else {
            conf->large_client_header_buffers_num =
                prev->large_client_header_buffers_num;
            conf->large_client_header_buffers_size =
                prev->large_client_header_buffers_size;
        }
    }
    if (conf->large_client_header_buffers_size
        < conf->client_header_buffer_size)
    {
        /* the large buffer must hold what the small one did */
        conf->large_client_header_buffers_size =
            conf->client_header_buffer_size;
    }
    MERGE_MSEC(client_header_timeout, 60000);
    MERGE(merge_slashes, 1);
    MERGE(underscores_in_headers, 0);
    MERGE(ignore_invalid_headers, 1);
    if (conf->server_name.data == NULL) {
        gh_str_set(&conf->server_name, "");
    }
    return NULL;
}

static void *
gh_http_core_create_loc_conf(gh_conf_t *cf)
{
    gh_http_core_loc_conf_t *clcf = gh_calloc(cf->arena, sizeof(*clcf));
    if (clcf == NULL) {
        return NULL;
    }
    clcf->client_max_body_size = -1;
    clcf->client_body_buffer_size = GH_UNSET_SIZE;
    clcf->client_body_timeout = GH_UNSET_MSEC;
    clcf->send_timeout = GH_UNSET_MSEC;
    clcf->keepalive_timeout = GH_UNSET_MSEC;
    clcf->keepalive_header_timeout = GH_UNSET_MSEC;
    clcf->keepalive_requests = GH_UNSET;
    clcf->keepalive_time = GH_UNSET_MSEC;
    clcf->lingering_timeout = GH_UNSET_MSEC;
    clcf->server_tokens = GH_UNSET;
    clcf->recursive_error_pages = GH_UNSET;
    clcf->absolute_redirect = GH_UNSET;
    clcf->port_in_redirect = GH_UNSET;
    clcf->chunked_transfer_encoding = GH_UNSET;
    clcf->msie_padding = GH_UNSET;
    return clcf;
}

static const char *
gh_http_core_merge_loc_conf(gh_conf_t *cf, void *parent, void *child)
{
    gh_http_core_loc_conf_t *prev = parent, *conf = child;

    if (conf->client_max_body_size == -1) {
        conf->client_max_body_size = prev->client_max_body_size == -1
            ? 1024 * 1024 : prev->client_max_body_size;
    }
    MERGE_SIZE(client_body_buffer_size, 16384);
    MERGE_MSEC(client_body_timeout, 60000);
    MERGE_MSEC(send_timeout, 60000);
    MERGE_MSEC(keepalive_timeout, 75000);
    MERGE_MSEC(keepalive_header_timeout, 0);
    MERGE(keepalive_requests, 1000);
    MERGE_MSEC(keepalive_time, 3600000);
    MERGE_MSEC(lingering_timeout, 5000);
    if (conf->server_tokens == (gh_int_t) GH_UNSET) {
        conf->server_tokens = prev->server_tokens == GH_UNSET
            ? 1 : prev->server_tokens;
    }
    MERGE(recursive_error_pages, 0);
    MERGE(absolute_redirect, 1);
    MERGE(port_in_redirect, 1);
    MERGE(chunked_transfer_encoding, 1);
    if (conf->error_pages == NULL) {
        conf->error_pages = prev->error_pages;
    }
    if (conf->default_type.data == NULL) {
        conf->default_type = prev->default_type;
        if (conf->default_type.data == NULL) {
            gh_str_set(&conf->default_type, "text/plain");
        }
    }
    if (conf->client_body_temp_path == NULL) {
        conf->client_body_temp_path = prev->client_body_temp_path;
        if (conf->client_body_temp_path == NULL) {
            gh_str_t p = gh_string("client_body_temp");
            conf->client_body_temp_path = gh_conf_full_name(cf, &p, false);
        }
    }
    if (conf->error_log == NULL) {
        conf->error_log = prev->error_log;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */

static gh_http_addr_conf_t *
gh_http_port_add_addr(gh_http_port_t *port, gh_http_listen_t *l)
{
    for (size_t i = 0; i < port->addrs.nelts; i++) {
        gh_http_addr_conf_t *a = gh_array_at(&port->addrs,
            gh_http_addr_conf_t, i);
        if (gh_http_sockaddr_eq(&a->sockaddr, a->socklen, &l->sockaddr,
                l->socklen))
        {
            return a;
        }
    }
    gh_http_addr_conf_t *a = gh_array_push(&port->addrs);
    if (a == NULL) {
        return NULL;
    }
    memset(a, 0, sizeof(*a));
    a->sockaddr = l->sockaddr;
    a->socklen = l->socklen;
    memcpy(a->addr_text, l->addr_text, sizeof(a->addr_text));
    if (gh_array_init(&a->servers, port->addrs.arena, 2, sizeof(void *))
        != GH_OK)
    {
        return NULL;
    }
    return a;
}

static bool
gh_http_same_port(const gh_http_listen_t *a, const gh_http_listen_t *b)
{
    if (a->sockaddr.ss_family != b->sockaddr.ss_family) {
        return false;
    }
    if (a->sockaddr.ss_family == AF_UNIX) {
        return gh_http_sockaddr_eq(&a->sockaddr, a->socklen, &b->sockaddr,
            b->socklen);
    }
    return gh_http_sockaddr_port(&a->sockaddr)
        == gh_http_sockaddr_port(&b->sockaddr);
}

/*
 * Group `listen`s: per port (and family), if a wildcard address is
 * among them only the wildcard is bound and the specific addresses are
 * told apart with getsockname() per connection (as nginx does); else each
 * address gets its own socket.
 */
static const char *
gh_http_optimize_servers(gh_conf_t *cf, gh_http_core_main_conf_t *cmcf)
{
    size_t n = cmcf->listens.nelts;
    bool *done = gh_calloc(cf->arena, n + 1);
    if (done == NULL) {
        return "out of memory";
    }

    for (size_t i = 0; i < n; i++) {
        if (done[i]) {
            continue;
        }
        gh_http_listen_t *li = gh_array_at(&cmcf->listens, gh_http_listen_t, i);
        bool has_wild = false;
        for (size_t j = i; j < n; j++) {
            gh_http_listen_t *lj = gh_array_at(&cmcf->listens,
                gh_http_listen_t, j);
            if (gh_http_same_port(li, lj) && lj->wildcard) {
                has_wild = true;
            }
        }

        for (size_t j = i; j < n; j++) {
            gh_http_listen_t *lj = gh_array_at(&cmcf->listens,
                gh_http_listen_t, j);
            if (done[j] || !gh_http_same_port(li, lj)) {
                continue;
            }
            if (!has_wild) {
                /* own socket per distinct address: collect all listens
                 * of this exact address */
                if (j != i && !gh_http_sockaddr_eq(&li->sockaddr, li->socklen,
                        &lj->sockaddr, lj->socklen))
                {
                    continue;
                }
            }
            done[j] = true;
        }

        gh_http_port_t *port = gh_array_push(&cmcf->ports);
        if (port == NULL) {
            return "out of memory";
        }
        memset(port, 0, sizeof(*port));
        if (gh_array_init(&port->addrs, cf->arena, 2,
                sizeof(gh_http_addr_conf_t)) != GH_OK)
        {
            return "out of memory";
        }

        gh_http_listen_t *bind_l = li;
        for (size_t j = i; j < n; j++) {
            gh_http_listen_t *lj = gh_array_at(&cmcf->listens,
                gh_http_listen_t, j);
            if (!gh_http_same_port(li, lj)) {
                continue;
            }
            if (!has_wild && !gh_http_sockaddr_eq(&li->sockaddr, li->socklen,
                    &lj->sockaddr, lj->socklen))
            {
                continue;
            }
            if (has_wild && lj->wildcard) {
                bind_l = lj;
            }
            gh_http_addr_conf_t *a = gh_http_port_add_addr(port, lj);
            if (a == NULL) {
                return "out of memory";
            }
            /* as nginx: one `listen ... ssl` makes the address TLS for
             * every server on it */
            a->ssl |= lj->ssl;
            a->http2 |= lj->http2;
            bool present = false;
            for (size_t k = 0; k < a->servers.nelts; k++) {
                if (*gh_array_at(&a->servers, void *, k) == lj->server) {
                    present = true;
                }
            }
            if (!present) {
                void **s = gh_array_push(&a->servers);
                if (s == NULL) {
                    return "out of memory";
                }
                *s = lj->server;
            }
            if (lj->default_server || a->default_server == NULL) {
                if (lj->default_server || a->servers.nelts == 1) {
                    a->default_server = lj->server;
                }
            }
        }

        /* the wildcard goes last so that specific addresses win */
        if (has_wild && port->addrs.nelts > 1) {
            gh_http_addr_conf_t *arr = port->addrs.elts;
            for (size_t k = 0; k + 1 < port->addrs.nelts; k++) {
                if (gh_http_sockaddr_wildcard(&arr[k].sockaddr)) {
                    gh_http_addr_conf_t tmp = arr[k];
                    memmove(&arr[k], &arr[k + 1],
                        (port->addrs.nelts - k - 1) * sizeof(tmp));
                    arr[port->addrs.nelts - 1] = tmp;
                    break;
                }
            }
        }
        port->wildcard_only = port->addrs.nelts == 1;

        for (size_t k = 0; k < port->addrs.nelts; k++) {
            gh_http_addr_conf_t *a = gh_array_at(&port->addrs,
                gh_http_addr_conf_t, k);
            /* specific addresses also serve the wildcard's servers? No:
             * nginx keeps them separate; the default of a specific
             * address is its own first server. */
            if (gh_http_server_names_init(cf, a) != GH_OK) {
                return GH_CONF_ERROR;
            }
        }

        gh_listening_t *ls = gh_array_push(&cf->cycle->listening);
        if (ls == NULL) {
            return "out of memory";
        }
        memset(ls, 0, sizeof(*ls));
        ls->fd = -1;
        ls->sockaddr = bind_l->sockaddr;
        ls->socklen = bind_l->socklen;
        memcpy(ls->addr_text, bind_l->addr_text, sizeof(ls->addr_text));
        ls->backlog = (int) bind_l->backlog;
        ls->reuseport = bind_l->reuseport;
        ls->ipv6only = bind_l->ipv6only;
        ls->handler = gh_http_init_connection;
        ls->servers = port;
        ls->log = cf->cycle->new_log ? cf->cycle->new_log : cf->log;
        ls->worker = -1;
        /* no arena until TLS or HTTP/2 needs one: an idle keep-alive
         * connection is its gh_conn_t and its gh_http_connection_t, two
         * slab objects.  The TLS state (with the SNI name and its
         * cleanup) fits in a 384-byte block; HTTP/2 takes more blocks. */
        ls->close_handler = gh_http_conn_release;
        ls->conn_arena_size = 384;
    }
    return NULL;
}
