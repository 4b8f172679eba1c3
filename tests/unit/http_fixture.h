/*
 * http_fixture.h: a hand-built http{} configuration for the unit tests of
 * locations, server names, variables, map and the access log.
 *
 * The real module list (src/core/gh_modules.c) is linked, so conf
 * structures come from the modules' own create hooks, and `map`,
 * `log_format` and `access_log` lines can go through gh_conf_dispatch()
 * exactly as in a real configuration.  The http{} block handler itself is
 * not used: the fixture plays its part (core variables first, init_vars
 * at the end).
 *
 * Error messages are read back from a log sink on a temporary file.
 */
#ifndef HTTP_FIXTURE_H
#define HTTP_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

#include "http/gh_http.h"
#include "http/gh_http_modules.h"

typedef struct {
    gh_arena_t               *arena;
    gh_cycle_t                cycle;
    gh_conf_t                 cf;
    gh_conf_ctx_t             http;      /* http{} level */
    gh_conf_ctx_t             srv;       /* one server{} */
    gh_http_core_main_conf_t *cmcf;
    gh_http_core_srv_conf_t  *cscf;
    gh_http_core_loc_conf_t  *srv_clcf;  /* the server level's locations */
    gh_conf_node_t            node;      /* "current line" for messages */
    gh_log_t                  log;
    gh_log_file_t             log_file;
    long                      log_pos;
    char                      log_buf[4096];
    char                      dir[64];   /* temporary directory */
    unsigned                  line;
} fx_t;

static fx_t fx;

static inline void **
fx_level(int level)
{
    void **confs = gh_calloc(fx.arena, sizeof(void *) * gh_modules_n);

    assert_non_null(confs);
    for (gh_uint_t i = 0; gh_modules[i]; i++) {
        gh_module_t *m = gh_modules[i];
        void *(*create)(gh_conf_t *) = level == 0 ? m->create_main_conf
            : level == 1 ? m->create_srv_conf : m->create_loc_conf;

        if (create) {
            confs[m->index] = create(&fx.cf);
            assert_non_null(confs[m->index]);
        }
    }
    return confs;
}

static inline int
fx_setup(void **state)
{
    FILE *f;

    (void) state;
    gh_modules_init();
    gh_time_init();
    memset(&fx, 0, sizeof(fx));
    fx.arena = gh_arena_create(4096, 0);
    assert_non_null(fx.arena);

    snprintf(fx.dir, sizeof(fx.dir), "/tmp/gh_test_XXXXXX");
    assert_non_null(mkdtemp(fx.dir));

    f = tmpfile();
    assert_non_null(f);
    fx.log_file.fd = dup(fileno(f));
    fclose(f);
    fx.log.level = GH_LOG_DEBUG;
    fx.log.file = &fx.log_file;

    fx.cycle.arena = fx.arena;
    gh_conf_init(&fx.cf, &fx.cycle, fx.arena, &fx.log);
    fx.cf.prefix = fx.dir;
    fx.node.file = "/test.conf";
    fx.node.line = 1;
    fx.cf.node = &fx.node;

    fx.cf.ctx = &fx.http;
    fx.cf.ctx_type = GH_HTTP_MAIN_CONF;
    fx.http.main_conf = fx_level(0);
    fx.http.srv_conf = fx_level(1);
    fx.http.loc_conf = fx_level(2);
    fx.cmcf = fx.http.main_conf[gh_http_core_module.index];
    assert_int_equal(gh_http_variables_add_core_vars(&fx.cf), GH_OK);

    fx.srv.main_conf = fx.http.main_conf;
    fx.srv.srv_conf = fx_level(1);
    fx.srv.loc_conf = fx_level(2);
    fx.cscf = fx.srv.srv_conf[gh_http_core_module.index];
    fx.cscf->ctx = &fx.srv;
    fx.cscf->file = "/test.conf";
    fx.cscf->line = 1;
    fx.srv_clcf = fx.srv.loc_conf[gh_http_core_module.index];
    fx.srv_clcf->loc_conf = fx.srv.loc_conf;
    fx.line = 1;
    return 0;
}

static inline int
fx_teardown(void **state)
{
    char cmd[128];

    (void) state;
    gh_log_files_close(fx.cycle.files);
    gh_arena_destroy(fx.arena);
    close(fx.log_file.fd);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", fx.dir);
    if (system(cmd) != 0) {
        return -1;
    }
    return 0;
}

/* what was logged since the last call */
static inline const char *
fx_log_take(void)
{
    ssize_t n = pread(fx.log_file.fd, fx.log_buf, sizeof(fx.log_buf) - 1,
        fx.log_pos);

    n = n < 0 ? 0 : n;
    fx.log_buf[n] = '\0';
    fx.log_pos += n;
    return fx.log_buf;
}

static inline gh_str_t
fx_str(const char *s)
{
    gh_str_t r;

    r.data = (uint8_t *) s;
    r.len = strlen(s);
    return r;
}

/* a location under parent (NULL: the server level) */
static inline gh_http_core_loc_conf_t *
fx_location(gh_http_core_loc_conf_t *parent, unsigned type, const char *name)
{
    void                    **lc = fx_level(2);
    gh_http_core_loc_conf_t  *clcf = lc[gh_http_core_module.index];
    gh_http_core_loc_conf_t **slot;

    if (parent == NULL) {
        parent = fx.srv_clcf;
    }
    clcf->loc_conf = lc;
    clcf->type = type;
    clcf->name = fx_str(name);
    clcf->parent = parent;
    clcf->file = "/test.conf";
    clcf->line = ++fx.line;
    if (type == GH_HTTP_LOC_REGEX || type == GH_HTTP_LOC_REGEX_CASELESS) {
        const char *err = NULL;

        clcf->regex = gh_http_regex_compile(&fx.cf, &clcf->name,
            type == GH_HTTP_LOC_REGEX_CASELESS, &err);
        assert_non_null(clcf->regex);
    }
    if (parent->locations == NULL) {
        parent->locations = gh_array_create(fx.arena, 4, sizeof(void *));
    }
    slot = gh_array_push(parent->locations);
    assert_non_null(slot);
    *slot = clcf;
    return clcf;
}

/* a request on the fixture's server */
static inline gh_http_request_t *
fx_request(void)
{
    gh_http_request_t *r = gh_calloc(fx.arena, sizeof(*r));

    assert_non_null(r);
    r->arena = fx.arena;
    r->main_conf = fx.http.main_conf;
    r->srv_conf = fx.srv.srv_conf;
    r->loc_conf = fx.srv.loc_conf;
    assert_int_equal(gh_array_init(&r->headers_in.headers, fx.arena, 8,
        sizeof(gh_http_table_elt_t)), GH_OK);
    assert_int_equal(gh_array_init(&r->headers_out.headers, fx.arena, 8,
        sizeof(gh_http_table_elt_t)), GH_OK);
    r->headers_in.content_length_n = -1;
    r->headers_out.content_length_n = -1;
    r->start_msec = gh_current_msec;
    gh_str_set(&r->schema, "http");
    assert_int_equal(gh_http_variables_request_init(r), GH_OK);
    return r;
}

static inline void
fx_header_in(gh_http_request_t *r, const char *name, const char *value)
{
    gh_http_table_elt_t *h = gh_array_push(&r->headers_in.headers);

    assert_non_null(h);
    memset(h, 0, sizeof(*h));
    h->name = fx_str(name);
    h->value = fx_str(value);
}

/* parse configuration text and dispatch it at the http{} level */
static inline gh_int_t
fx_dispatch(const char *text)
{
    gh_conf_node_t *nodes;
    gh_int_t        rc;

    rc = gh_conf_parse_string(&fx.cf, "/test.conf", (const uint8_t *) text,
        strlen(text), &nodes);
    if (rc != GH_OK) {
        return rc;
    }
    rc = gh_conf_dispatch(&fx.cf, nodes, GH_HTTP_MAIN_CONF, &fx.http);
    fx.cf.node = &fx.node;
    return rc;
}

#endif
