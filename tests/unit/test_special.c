/*
 * test_special.c: status line table and the `return` directive's
 * configuration parsing.
 *
 * The directive is driven the way the dispatcher drives it (a node with
 * args, cf->ctx_type and cf->ctx set, then cmd->set) so that no full
 * http{} block has to be built; what it compiled is read back through
 * gh_http_script.h.  Error messages are part of the interface, so the log
 * goes to a temporary file and the tests read it.
 *
 * The module list is our own (core + rewrite), as in test_conf.c: the
 * real one in src/core/gh_modules.c is not linked in.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "http/gh_http.h"
#include "http/gh_http_modules.h"
#include "http/gh_http_script.h"

gh_module_t *gh_modules[] = {
    &gh_http_core_module,
    &gh_http_rewrite_module,
    NULL
};

/* --- status lines ---------------------------------------------------- */

static void
expect_line(gh_uint_t status, const char *text)
{
    const gh_str_t *sl = gh_http_status_line(status);

    assert_non_null(sl);
    assert_int_equal(sl->len, strlen(text));
    assert_memory_equal(sl->data, text, sl->len);
}

static void
test_status_line_known(void **state)
{
    expect_line(100, "100 Continue");
    expect_line(101, "101 Switching Protocols");
    expect_line(200, "200 OK");
    expect_line(204, "204 No Content");
    expect_line(206, "206 Partial Content");
    expect_line(301, "301 Moved Permanently");
    /* nginx's wording, not RFC 9110's "Found" */
    expect_line(302, "302 Moved Temporarily");
    expect_line(304, "304 Not Modified");
    expect_line(308, "308 Permanent Redirect");
    expect_line(400, "400 Bad Request");
    expect_line(404, "404 Not Found");
    expect_line(405, "405 Not Allowed");
    expect_line(408, "408 Request Time-out");
    expect_line(413, "413 Request Entity Too Large");
    expect_line(414, "414 Request-URI Too Large");
    expect_line(429, "429 Too Many Requests");
    expect_line(431, "431 Request Header Fields Too Large");
    expect_line(494, "494 Request Header Or Cookie Too Large");
    expect_line(500, "500 Internal Server Error");
    expect_line(502, "502 Bad Gateway");
    expect_line(503, "503 Service Temporarily Unavailable");
    expect_line(504, "504 Gateway Time-out");
    expect_line(505, "505 HTTP Version Not Supported");
    expect_line(511, "511 Network Authentication Required");
}

static void
test_status_line_unknown(void **state)
{
    static const gh_uint_t codes[] = {
        0, 1, 99, 104, 199, 299, 306, 418, 444, 499, 509, 599, 600, 999,
        1000, 123456, (gh_uint_t) -1
    };

    for (size_t i = 0; i < gh_nelems(codes); i++) {
        const gh_str_t *sl = gh_http_status_line(codes[i]);
        assert_non_null(sl);
        assert_int_equal(sl->len, 0);
    }
}

/* every entry is "NNN Text" for its own NNN: a typo in the table would
 * send one code with another's line */
static void
test_status_line_consistent(void **state)
{
    unsigned known = 0;

    for (gh_uint_t s = 0; s < 1000; s++) {
        const gh_str_t *sl = gh_http_status_line(s);
        char code[5];

        if (sl->len == 0) {
            continue;
        }
        known++;
        snprintf(code, sizeof(code), "%03u ", (unsigned) s);
        assert_true(sl->len > 4);
        assert_memory_equal(sl->data, code, 4);
    }
    /* 1xx..5xx of RFC 9110 and friends, plus 494 */
    assert_true(known >= 60);
}

static void
test_redirect_status(void **state)
{
    assert_true(gh_http_is_redirect_status(301));
    assert_true(gh_http_is_redirect_status(302));
    assert_true(gh_http_is_redirect_status(303));
    assert_true(gh_http_is_redirect_status(307));
    assert_true(gh_http_is_redirect_status(308));
    assert_false(gh_http_is_redirect_status(300));
    assert_false(gh_http_is_redirect_status(304));
    assert_false(gh_http_is_redirect_status(305));
    assert_false(gh_http_is_redirect_status(200));
}

/* --- fixture for `return` -------------------------------------------- */

static char           log_path[] = "/tmp/gh_special_test_XXXXXX";
static int            log_fd = -1;
static gh_log_file_t  log_file;
static gh_log_t       test_log;
static char          *log_text;

static gh_arena_t    *arena;
static gh_conf_t      cf;
static gh_conf_ctx_t  ctx;
static void          *main_confs[2];
static void          *srv_confs[2];
static void          *loc_confs[2];
static gh_conf_node_t node;
static gh_str_t       args[4];

static int
group_setup(void **state)
{
    log_fd = mkstemp(log_path);
    if (log_fd == -1) {
        return -1;
    }
    log_file.fd = log_fd;
    test_log.level = GH_LOG_DEBUG;
    test_log.file = &log_file;
    gh_log_startup_style = false;
    gh_modules_init();
    return 0;
}

static int
group_teardown(void **state)
{
    close(log_fd);
    unlink(log_path);
    return 0;
}

static int
setup(void **state)
{
    gh_http_core_main_conf_t *cmcf;

    arena = gh_arena_create(4096, 0);
    if (arena == NULL) {
        return -1;
    }
    gh_conf_init(&cf, NULL, arena, &test_log);

    /* just the parts of the core main conf that variable references and
     * phase registration touch */
    cmcf = gh_calloc(arena, sizeof(*cmcf));
    if (cmcf == NULL
        || gh_array_init(&cmcf->variables, arena, 4,
               sizeof(gh_http_variable_t)) != GH_OK
        || gh_array_init(&cmcf->prefix_variables, arena, 4,
               sizeof(gh_http_variable_t)) != GH_OK)
    {
        return -1;
    }
    memset(main_confs, 0, sizeof(main_confs));
    main_confs[gh_http_core_module.index] = cmcf;
    srv_confs[gh_http_rewrite_module.index] =
        gh_http_rewrite_module.create_srv_conf(&cf);
    loc_confs[gh_http_rewrite_module.index] =
        gh_http_rewrite_module.create_loc_conf(&cf);
    if (srv_confs[gh_http_rewrite_module.index] == NULL
        || loc_confs[gh_http_rewrite_module.index] == NULL)
    {
        return -1;
    }
    ctx.main_conf = main_confs;
    ctx.srv_conf = srv_confs;
    ctx.loc_conf = loc_confs;
    cf.ctx = &ctx;

    if (ftruncate(log_fd, 0) != 0) {
        return -1;
    }
    lseek(log_fd, 0, SEEK_SET);
    return 0;
}

static int
teardown(void **state)
{
    gh_arena_destroy(arena);
    free(log_text);
    log_text = NULL;
    return 0;
}

/* everything logged since the last call */
static const char *
log_take(void)
{
    struct stat st;
    ssize_t     n;

    free(log_text);
    assert_int_equal(fstat(log_fd, &st), 0);
    log_text = calloc(1, (size_t) st.st_size + 1);
    assert_non_null(log_text);
    n = pread(log_fd, log_text, (size_t) st.st_size, 0);
    assert_int_equal(n, st.st_size);
    assert_int_equal(ftruncate(log_fd, 0), 0);
    lseek(log_fd, 0, SEEK_SET);
    return log_text;
}

static const gh_command_t *
find_command(const char *name)
{
    for (const gh_command_t *c = gh_http_rewrite_module.commands; c->name;
         c++)
    {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

/* `return a1 [a2];` at level ctx_type, as the dispatcher would call it */
static const char *
run_return(unsigned ctx_type, const char *a1, const char *a2)
{
    const gh_command_t *cmd = find_command("return");

    assert_non_null(cmd);
    gh_str_set(&args[0], "return");
    args[1].data = (uint8_t *) a1;
    args[1].len = strlen(a1);
    node.nargs = 2;
    if (a2 != NULL) {
        args[2].data = (uint8_t *) a2;
        args[2].len = strlen(a2);
        node.nargs = 3;
    }
    node.args = args;
    node.file = "/etc/gatehouse/test.conf";
    node.line = 7;
    cf.node = &node;
    cf.ctx_type = ctx_type;

    void **level = cmd->conf == GH_CONF_SRV_OFFSET ? ctx.srv_conf
                 : cmd->conf == GH_CONF_LOC_OFFSET ? ctx.loc_conf
                 : ctx.main_conf;
    return cmd->set(&cf, cmd, level[gh_http_rewrite_module.index]);
}

static gh_http_rewrite_conf_t *
srv_rcf(void)
{
    return srv_confs[gh_http_rewrite_module.index];
}

static gh_http_rewrite_conf_t *
loc_rcf(void)
{
    return loc_confs[gh_http_rewrite_module.index];
}

static const gh_http_script_action_t *
action(gh_http_rewrite_conf_t *rcf, size_t i)
{
    assert_non_null(rcf->script);
    assert_true(i < rcf->script->nelts);
    return gh_array_at(rcf->script, gh_http_script_action_t, i);
}

static void
expect_text(const gh_http_script_action_t *a, const char *text)
{
    assert_true(a->u.ret.has_text);
    assert_int_equal(a->u.ret.text.literal.len, strlen(text));
    if (text[0] != '\0') {
        assert_memory_equal(a->u.ret.text.literal.data, text, strlen(text));
    }
}

/* --- `return` -------------------------------------------------------- */

static void
test_return_declaration(void **state)
{
    const gh_command_t *cmd = find_command("return");

    assert_non_null(cmd);
    assert_int_equal(cmd->ctx, GH_HTTP_SRV_CONF | GH_HTTP_SIF_CONF
        | GH_HTTP_LOC_CONF | GH_HTTP_LIF_CONF);
    assert_int_equal(cmd->args, GH_CONF_TAKE12);
}

static void
test_return_code_only(void **state)
{
    assert_null(run_return(GH_HTTP_LOC_CONF, "200", NULL));
    assert_null(run_return(GH_HTTP_LOC_CONF, "404", NULL));
    assert_null(run_return(GH_HTTP_LOC_CONF, "444", NULL));
    assert_null(run_return(GH_HTTP_LOC_CONF, "0", NULL));
    assert_null(run_return(GH_HTTP_LOC_CONF, "999", NULL));

    /* in the order written */
    gh_http_rewrite_conf_t *rcf = loc_rcf();
    assert_int_equal(rcf->script->nelts, 5);
    static const gh_uint_t want[] = { 200, 404, 444, 0, 999 };
    for (size_t i = 0; i < gh_nelems(want); i++) {
        assert_int_equal(action(rcf, i)->u.ret.status, want[i]);
        assert_false(action(rcf, i)->u.ret.has_text);
        assert_non_null(action(rcf, i)->handler);
    }
    assert_null(srv_rcf()->script);
    assert_string_equal(log_take(), "");
}

static void
test_return_code_text(void **state)
{
    assert_null(run_return(GH_HTTP_LOC_CONF, "200", "hello\n"));
    assert_null(run_return(GH_HTTP_LIF_CONF, "301", "/moved"));
    assert_null(run_return(GH_HTTP_LOC_CONF, "403", ""));

    gh_http_rewrite_conf_t *rcf = loc_rcf();
    assert_int_equal(rcf->script->nelts, 3);
    assert_int_equal(action(rcf, 0)->u.ret.status, 200);
    expect_text(action(rcf, 0), "hello\n");
    assert_int_equal(action(rcf, 1)->u.ret.status, 301);
    expect_text(action(rcf, 1), "/moved");
    /* an empty text is still a text: the body is empty, not a page */
    assert_int_equal(action(rcf, 2)->u.ret.status, 403);
    expect_text(action(rcf, 2), "");
}

static void
test_return_url(void **state)
{
    assert_null(run_return(GH_HTTP_LOC_CONF, "http://example.com/", NULL));
    assert_null(run_return(GH_HTTP_LOC_CONF, "https://example.com", NULL));

    gh_http_rewrite_conf_t *rcf = loc_rcf();
    assert_int_equal(action(rcf, 0)->u.ret.status, 302);
    expect_text(action(rcf, 0), "http://example.com/");
    assert_int_equal(action(rcf, 1)->u.ret.status, 302);
    expect_text(action(rcf, 1), "https://example.com");
}

/* server{} and server-level if{} actions run in SERVER_REWRITE, from the
 * srv conf; the location conf of the server level stays empty so that a
 * request matching no location does not run them twice */
static void
test_return_server_level(void **state)
{
    assert_null(run_return(GH_HTTP_SRV_CONF, "503", NULL));
    assert_null(run_return(GH_HTTP_SIF_CONF, "302", "/x"));

    assert_null(loc_rcf()->script);
    assert_int_equal(srv_rcf()->script->nelts, 2);
    assert_int_equal(action(srv_rcf(), 0)->u.ret.status, 503);
    assert_int_equal(action(srv_rcf(), 1)->u.ret.status, 302);
    expect_text(action(srv_rcf(), 1), "/x");
}

static void
expect_invalid(const char *a1, const char *a2, const char *shown)
{
    char want[128];

    assert_ptr_equal(run_return(GH_HTTP_LOC_CONF, a1, a2), GH_CONF_ERROR);
    snprintf(want, sizeof(want),
        "invalid return code \"%s\" in /etc/gatehouse/test.conf:7", shown);
    const char *log = log_take();
    if (strstr(log, want) == NULL) {
        fail_msg("expected \"%s\" in log, got \"%s\"", want, log);
    }
}

static void
test_return_invalid(void **state)
{
    expect_invalid("1000", NULL, "1000");
    expect_invalid("99999999999999999999999", NULL,
        "99999999999999999999999");
    expect_invalid("-1", NULL, "-1");
    expect_invalid("abc", NULL, "abc");
    expect_invalid("", NULL, "");
    expect_invalid("20x", "text", "20x");
    /* a bare URL takes no second argument */
    expect_invalid("http://example.com/", "x", "http://example.com/");
    /* a scheme alone is not a URL */
    expect_invalid("http://", NULL, "http://");
    expect_invalid("https://", NULL, "https://");
    expect_invalid("/relative", NULL, "/relative");
    expect_invalid("ftp://example.com/", NULL, "ftp://example.com/");

    assert_null(loc_rcf()->script);
    assert_int_equal(cf.errors, 11);
}

static void
test_phase_handlers(void **state)
{
    gh_http_core_main_conf_t *cmcf = main_confs[gh_http_core_module.index];

    assert_int_equal(gh_http_rewrite_module.postconfiguration(&cf), GH_OK);
    assert_int_equal(cmcf->phases[GH_HTTP_SERVER_REWRITE_PHASE].n, 1);
    assert_int_equal(cmcf->phases[GH_HTTP_REWRITE_PHASE].n, 1);
    assert_int_equal(cmcf->phases[GH_HTTP_CONTENT_PHASE].n, 0);
    assert_ptr_not_equal(cmcf->phases[GH_HTTP_SERVER_REWRITE_PHASE].handlers[0],
        cmcf->phases[GH_HTTP_REWRITE_PHASE].handlers[0]);

    /* growth keeps the order */
    gh_http_handler_pt first = cmcf->phases[GH_HTTP_REWRITE_PHASE].handlers[0];
    for (int i = 0; i < 9; i++) {
        assert_int_equal(gh_http_phase_add(&cf, GH_HTTP_ACCESS_PHASE, first),
            GH_OK);
    }
    assert_int_equal(cmcf->phases[GH_HTTP_ACCESS_PHASE].n, 9);
    assert_true(cmcf->phases[GH_HTTP_ACCESS_PHASE].cap >= 9);
    assert_int_equal(gh_http_phase_add(&cf, GH_HTTP_NPHASES, first),
        GH_ERROR);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_line_known),
        cmocka_unit_test(test_status_line_unknown),
        cmocka_unit_test(test_status_line_consistent),
        cmocka_unit_test(test_redirect_status),
        cmocka_unit_test_setup_teardown(test_return_declaration, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_return_code_only, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_return_code_text, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_return_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_return_server_level, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_return_invalid, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_phase_handlers, setup,
            teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
