/*
 * test_rewrite.c: rewrite, if, set and break (compiled scripts and
 * running them on a request), the static module's configuration, dates
 * and types, and the add_header filter.
 *
 * Configuration text goes through the real parser and dispatcher at the
 * server level of the fixture (http_fixture.h); scripts run through the
 * rewrite module's REWRITE phase handler, registered by its
 * postconfiguration.  `rewrite ... last` re-enters the phase engine,
 * which needs a connection: the integration tests cover it.
 */
#include "http_fixture.h"
#include "http/gh_http_script.h"
#include <sys/stat.h>

static gh_int_t
srv_dispatch(const char *text)
{
    gh_conf_node_t *nodes;
    gh_int_t        rc;

    rc = gh_conf_parse_string(&fx.cf, "/test.conf", (const uint8_t *) text,
        strlen(text), &nodes);
    if (rc != GH_OK) {
        return rc;
    }
    rc = gh_conf_dispatch(&fx.cf, nodes, GH_HTTP_SRV_CONF, &fx.srv);
    fx.cf.node = &fx.node;
    return rc;
}

static void
expect_log(const char *want)
{
    const char *log = fx_log_take();

    if (strstr(log, want) == NULL) {
        fail_msg("expected \"%s\" in the log, got \"%s\"", want, log);
    }
}

static gh_http_rewrite_conf_t *
rcf_of(void **confs)
{
    return confs[gh_http_rewrite_module.index];
}

static const gh_http_script_action_t *
action(const gh_http_rewrite_conf_t *rcf, size_t i)
{
    assert_non_null(rcf->script);
    assert_true(i < rcf->script->nelts);
    return gh_array_at(rcf->script, gh_http_script_action_t, i);
}

/* the n-th location{} (or if{}) entry under parent (NULL: the server) */
static gh_http_core_loc_conf_t *
child(gh_http_core_loc_conf_t *parent, size_t n)
{
    if (parent == NULL) {
        parent = fx.srv_clcf;
    }
    assert_non_null(parent->locations);
    assert_true(n < parent->locations->nelts);
    return *gh_array_at(parent->locations, gh_http_core_loc_conf_t *, n);
}

static void
expect_str(const gh_str_t *s, const char *want)
{
    if (s->len != strlen(want) || (s->len && memcmp(s->data, want, s->len))) {
        fail_msg("got \"%.*s\", want \"%s\"", (int) s->len,
            s->data ? (const char *) s->data : "", want);
    }
}

static void
expect_var(gh_http_request_t *r, const char *name, const char *want)
{
    gh_str_t n = fx_str(name), v;

    assert_int_equal(gh_http_get_variable(r, &n, &v), GH_OK);
    expect_str(&v, want);
}

/* resolve variables and register the phase handlers, as the end of
 * http{} does */
static void
finish_config(void)
{
    assert_int_equal(gh_http_static_module.postconfiguration(&fx.cf), GH_OK);
    assert_int_equal(gh_http_rewrite_module.postconfiguration(&fx.cf),
        GH_OK);
    assert_int_equal(gh_http_variables_init_vars(&fx.cf), GH_OK);
}

static gh_int_t
run_location(gh_http_request_t *r, gh_http_core_loc_conf_t *clcf)
{
    gh_http_phase_t *ph = &fx.cmcf->phases[GH_HTTP_REWRITE_PHASE];

    assert_true(ph->n >= 1);
    r->loc_conf = clcf->loc_conf;
    return ph->handlers[0](r);
}

static void
set_target(gh_http_request_t *r, const char *uri, const char *args,
    const char *unparsed)
{
    r->uri = fx_str(uri);
    r->args = fx_str(args);
    r->unparsed_uri = fx_str(unparsed);
}

/* --- rewrite: compiling ---------------------------------------------- */

static void
test_rewrite_compile(void **state)
{
    const gh_http_rewrite_conf_t *rcf;
    static const struct {
        unsigned    flag;
        gh_uint_t   status;
        bool        has_args;
        bool        add_args;
        const char *uri;
    } want[] = {
        { GH_HTTP_REWRITE_NONE, 0, false, true, "/b" },
        { GH_HTTP_REWRITE_LAST, 0, true, true, "/d" },
        { GH_HTTP_REWRITE_BREAK, 0, false, false, "/f" },
        { GH_HTTP_REWRITE_REDIRECT, 302, false, true, "http://x/$1" },
        { GH_HTTP_REWRITE_REDIRECT, 301, true, false, "/i" },
        { GH_HTTP_REWRITE_REDIRECT, 302, false, true, "/k" },
        { GH_HTTP_REWRITE_REDIRECT, 301, false, true, "$scheme://h/" },
    };

    assert_int_equal(srv_dispatch(
        "rewrite ^/a$ /b;\n"
        "rewrite ^/c$ /d?x=1 last;\n"
        "rewrite ^/e$ /f? break;\n"
        "rewrite ^/(g)$ http://x/$1 last;\n"
        "rewrite ^/h$ /i?y=$1? permanent;\n"
        "rewrite ^/j /k redirect;\n"
        "rewrite ^/l $scheme://h/ permanent;\n"), GH_OK);

    /* server-level actions live in the srv conf, in order */
    rcf = rcf_of(fx.srv.srv_conf);
    assert_int_equal(rcf->script->nelts, gh_nelems(want));
    assert_null(rcf_of(fx.srv.loc_conf)->script);
    for (size_t i = 0; i < gh_nelems(want); i++) {
        const gh_http_script_action_t *a = action(rcf, i);

        assert_int_equal(a->u.rewrite.flag, want[i].flag);
        assert_int_equal(a->u.rewrite.status, want[i].status);
        assert_int_equal(a->u.rewrite.has_args, want[i].has_args);
        assert_int_equal(a->u.rewrite.add_args, want[i].add_args);
        expect_str(&a->u.rewrite.uri.literal, want[i].uri);
        assert_non_null(a->u.rewrite.regex);
    }
    expect_str(&action(rcf, 1)->u.rewrite.args.literal, "x=1");
    expect_str(&action(rcf, 4)->u.rewrite.args.literal, "y=$1");
}

static void
test_rewrite_errors(void **state)
{
    assert_int_equal(srv_dispatch("rewrite ^/a /b sideways;"), GH_ERROR);
    expect_log("invalid parameter \"sideways\" in /test.conf:1");
    assert_int_equal(srv_dispatch("rewrite ^/a( /b;"), GH_ERROR);
    assert_int_equal(srv_dispatch("rewrite ^/a ?;"), GH_ERROR);
    expect_log("invalid replacement \"?\"");
    assert_int_equal(srv_dispatch("rewrite ^/a;"), GH_ERROR);
    expect_log("invalid number of arguments in \"rewrite\" directive");
}

/* --- rewrite: running ------------------------------------------------ */

static void
test_rewrite_run_break(void **state)
{
    gh_http_request_t *r;

    assert_int_equal(srv_dispatch(
        "location /r/ {\n"
        "    rewrite ^/r/(\\w+)/(\\w+)$ /s/$2/$1.txt?u=$1 break;\n"
        "    return 500;\n"
        "}\n"), GH_OK);
    finish_config();

    r = fx_request();
    set_target(r, "/r/a/b", "q=1", "/r/a/b?q=1");
    r->valid_location = 1;
    assert_int_equal(run_location(r, child(NULL, 0)), GH_DECLINED);
    expect_str(&r->uri, "/s/b/a.txt");
    expect_str(&r->exten, "txt");
    expect_str(&r->args, "u=a&q=1");
    assert_true(r->internal);
    assert_false(r->valid_location);

    /* no match: the script goes on to the return */
    r = fx_request();
    set_target(r, "/r/a", "", "/r/a");
    assert_int_equal(run_location(r, child(NULL, 0)), 500);
    expect_str(&r->uri, "/r/a");
}

static void
test_rewrite_run_args_rules(void **state)
{
    static const struct {
        const char *args;
        const char *want;
    } cases[] = {
        { "", "x=1" },
        { "q=2", "x=1&q=2" },
    };
    gh_http_request_t *r;

    assert_int_equal(srv_dispatch(
        "location /keep { rewrite ^ /kept break; }\n"
        "location /add { rewrite ^ /added?x=1 break; }\n"
        "location /only { rewrite ^ /only?x=1? break; }\n"
        "location /drop { rewrite ^ /dropped? break; }\n"), GH_OK);
    finish_config();

    r = fx_request();
    set_target(r, "/keep", "q=2", "/keep?q=2");
    run_location(r, child(NULL, 0));
    expect_str(&r->uri, "/kept");
    expect_str(&r->args, "q=2");

    for (size_t i = 0; i < gh_nelems(cases); i++) {
        r = fx_request();
        set_target(r, "/add", cases[i].args, "/add");
        run_location(r, child(NULL, 1));
        expect_str(&r->args, cases[i].want);
    }

    r = fx_request();
    set_target(r, "/only", "q=2", "/only?q=2");
    run_location(r, child(NULL, 2));
    expect_str(&r->args, "x=1");

    r = fx_request();
    set_target(r, "/drop", "q=2", "/drop?q=2");
    run_location(r, child(NULL, 3));
    expect_str(&r->uri, "/dropped");
    expect_str(&r->args, "");
}

static void
test_rewrite_quoted_captures_in_args(void **state)
{
    gh_http_request_t *r;

    assert_int_equal(srv_dispatch(
        "location /q/ { rewrite ^/q/(.*)$ /p/$1?v=$1 break; }\n"), GH_OK);
    finish_config();

    /* the request had "%26": the decoded '&' is escaped again in the
     * arguments, the path keeps the decoded form */
    r = fx_request();
    set_target(r, "/q/a&b", "", "/q/a%26b");
    run_location(r, child(NULL, 0));
    expect_str(&r->uri, "/p/a&b");
    expect_str(&r->args, "v=a%26b");
}

/* --- if -------------------------------------------------------------- */

static void
test_if_layout(void **state)
{
    gh_http_core_loc_conf_t      *loc, *ifc;
    const gh_http_rewrite_conf_t *rcf;

    assert_int_equal(srv_dispatch(
        "location /a/ {\n"
        "    set $x 1;\n"
        "    if ($x) {\n"
        "        set $y 2;\n"
        "        return 200;\n"
        "    }\n"
        "    return 404;\n"
        "}\n"), GH_OK);

    loc = child(NULL, 0);
    rcf = rcf_of(loc->loc_conf);
    assert_int_equal(rcf->script->nelts, 5);
    assert_int_equal(action(rcf, 1)->u.cond.op, GH_HTTP_IF_VAR);
    /* a false condition jumps past the block's two actions */
    assert_int_equal(action(rcf, 1)->u.cond.next, 4);
    assert_int_equal(action(rcf, 3)->u.ret.status, 200);
    assert_int_equal(action(rcf, 4)->u.ret.status, 404);

    /* the block's confs: a GH_HTTP_LOC_IF entry under the location */
    ifc = child(loc, 0);
    assert_int_equal(ifc->type, GH_HTTP_LOC_IF);
    assert_ptr_equal(ifc->loc_conf, action(rcf, 1)->u.cond.loc_conf);
    assert_ptr_equal(ifc->parent, loc);
    expect_str(&ifc->name, "/a/");
    assert_int_equal(ifc->line, 3);
    /* its own script array was only borrowed */
    assert_null(rcf_of(ifc->loc_conf)->script);
}

static void
test_if_entries_are_never_matched(void **state)
{
    gh_http_request_t *r;

    assert_int_equal(srv_dispatch(
        "if ($a) { return 403; }\n"
        "location /a/ { if ($b) { return 200; } }\n"), GH_OK);
    assert_null(gh_http_init_locations(&fx.cf, fx.cscf, NULL));
    assert_int_equal(child(NULL, 0)->type, GH_HTTP_LOC_IF);

    r = fx_request();
    r->uri = fx_str("/a/x");
    assert_int_equal(gh_http_find_location(r), GH_OK);
    assert_ptr_equal(r->loc_conf, child(NULL, 1)->loc_conf);
    r->uri = fx_str("/b");
    assert_int_equal(gh_http_find_location(r), GH_DECLINED);
    assert_ptr_equal(r->loc_conf, fx.srv.loc_conf);
}

static gh_int_t
fake_content_handler(gh_http_request_t *r)
{
    return 204;
}

/* an if{} without a content handler takes its location's (a proxy_pass
 * outside the block still serves requests the block matched) */
static void
test_if_inherits_content_handler(void **state)
{
    gh_http_core_srv_conf_t **slot;
    gh_http_core_loc_conf_t  *loc;

    assert_int_equal(srv_dispatch(
        "if ($arg_a) { set $x 1; }\n"
        "location /p/ {\n"
        "    if ($arg_a) { set $x 1; }\n"
        "    if ($arg_b) { set $y 1; }\n"
        "}\n"),
        GH_OK);
    slot = gh_array_push(&fx.cmcf->servers);
    assert_non_null(slot);
    *slot = fx.cscf;
    loc = child(NULL, 1);
    loc->handler = fake_content_handler;
    child(loc, 1)->handler = gh_http_static_handler;
    finish_config();

    assert_ptr_equal(child(loc, 0)->handler, fake_content_handler);
    /* one of its own stays */
    assert_ptr_equal(child(loc, 1)->handler, gh_http_static_handler);
    /* the server level has none to give */
    assert_null(child(NULL, 0)->handler);
}

static void
test_if_conditions(void **state)
{
    static const struct {
        const char *cond;
        unsigned    op;
        bool        negate;
    } ok[] = {
        { "($a)", GH_HTTP_IF_VAR, false },
        { "( $a )", GH_HTTP_IF_VAR, false },
        { "($a = b)", GH_HTTP_IF_EQ, false },
        { "($a != \"b c\")", GH_HTTP_IF_EQ, true },
        { "($a ~ ^x(.*))", GH_HTTP_IF_REGEX, false },
        { "($a ~* ^x)", GH_HTTP_IF_REGEX, false },
        { "($a !~ ^x)", GH_HTTP_IF_REGEX, true },
        { "($a !~* ^x )", GH_HTTP_IF_REGEX, true },
        { "(-f /x)", GH_HTTP_IF_FILE, false },
        { "(!-f $a)", GH_HTTP_IF_FILE, true },
        { "(-d /x)", GH_HTTP_IF_DIR, false },
        { "( !-d /x )", GH_HTTP_IF_DIR, true },
        { "(-e /x)", GH_HTTP_IF_EXISTS, false },
        { "(!-e /x)", GH_HTTP_IF_EXISTS, true },
        { "(-x /x)", GH_HTTP_IF_EXEC, false },
        { "(!-x /x)", GH_HTTP_IF_EXEC, true },
    };
    static const struct {
        const char *cond;
        const char *msg;
    } bad[] = {
        { "$a", "invalid condition \"$a\"" },
        { "(a)", "invalid condition \"a\"" },
        { "($a = b", "invalid condition \"b\"" },
        { "($a === b)", "unexpected \"===\" in condition" },
        { "(-q /x)", "invalid condition \"-q\"" },
        { "($a = b c)", "invalid condition" },
        { "($a ~ \"(\")", "missing closing parenthesis" },
    };
    char text[128];

    for (size_t i = 0; i < gh_nelems(ok); i++) {
        snprintf(text, sizeof(text), "if %s { return 204; }", ok[i].cond);
        assert_int_equal(srv_dispatch(text), GH_OK);
    }
    for (size_t i = 0; i < gh_nelems(ok); i++) {
        /* each if is followed by its block's return */
        const gh_http_script_action_t *a =
            action(rcf_of(fx.srv.srv_conf), 2 * i);

        if (a->u.cond.op != ok[i].op || a->u.cond.negate != ok[i].negate) {
            fail_msg("%s: op %u negate %d", ok[i].cond, a->u.cond.op,
                (int) a->u.cond.negate);
        }
        assert_int_equal(a->u.cond.next, 2 * i + 2);
    }
    for (size_t i = 0; i < gh_nelems(bad); i++) {
        snprintf(text, sizeof(text), "if %s { return 204; }", bad[i].cond);
        assert_int_equal(srv_dispatch(text), GH_ERROR);
        expect_log(bad[i].msg);
    }
}

static void
test_if_and_set_run(void **state)
{
    gh_http_core_loc_conf_t *loc;
    gh_http_request_t       *r;

    assert_int_equal(srv_dispatch(
        "location /t/ {\n"
        "    set $v \"${arg_a}-x\";\n"
        "    if ($v = \"1-x\") { set $w yes; }\n"
        "    if ($http_user_agent ~* ^cu(r)l) { set $cap $1; }\n"
        "    if ($v != \"1-x\") { set $w no; }\n"
        "}\n"), GH_OK);
    finish_config();
    loc = child(NULL, 0);

    r = fx_request();
    set_target(r, "/t/", "a=1", "/t/?a=1");
    fx_header_in(r, "User-Agent", "CURL/8");
    assert_int_equal(run_location(r, loc), GH_DECLINED);
    expect_var(r, "v", "1-x");
    expect_var(r, "w", "yes");
    expect_var(r, "cap", "R");
    /* the last block whose condition held rules the request */
    assert_ptr_equal(r->loc_conf, child(loc, 1)->loc_conf);

    r = fx_request();
    set_target(r, "/t/", "a=2", "/t/?a=2");
    fx_header_in(r, "User-Agent", "wget");
    assert_int_equal(run_location(r, loc), GH_DECLINED);
    expect_var(r, "w", "no");
    expect_var(r, "cap", "");
    assert_ptr_equal(r->loc_conf, child(loc, 2)->loc_conf);
}

static void
test_if_file_tests_run(void **state)
{
    char                     text[1024], file[128];
    gh_http_core_loc_conf_t *loc;
    gh_http_request_t       *r;
    FILE                    *f;

    snprintf(file, sizeof(file), "%s/f.sh", fx.dir);
    f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(chmod(file, 0755), 0);

    snprintf(text, sizeof(text),
        "location / {\n"
        "    set $r \"\";\n"
        "    if (-f %s/$arg_p) { set $r \"${r}f\"; }\n"
        "    if (-d %s/$arg_p) { set $r \"${r}d\"; }\n"
        "    if (-e %s/$arg_p) { set $r \"${r}e\"; }\n"
        "    if (-x %s/$arg_p) { set $r \"${r}x\"; }\n"
        "    if (!-e %s/$arg_p) { set $r \"${r}-\"; }\n"
        "}\n", fx.dir, fx.dir, fx.dir, fx.dir, fx.dir);
    assert_int_equal(srv_dispatch(text), GH_OK);
    finish_config();
    loc = child(NULL, 0);

    r = fx_request();
    set_target(r, "/", "p=f.sh", "/");
    run_location(r, loc);
    expect_var(r, "r", "fex");

    r = fx_request();
    set_target(r, "/", "p=", "/");
    run_location(r, loc);
    expect_var(r, "r", "dex");

    r = fx_request();
    set_target(r, "/", "p=none", "/");
    run_location(r, loc);
    expect_var(r, "r", "-");
}

static void
test_break_and_set_args(void **state)
{
    gh_http_request_t *r;

    assert_int_equal(srv_dispatch(
        "location / {\n"
        "    set $args \"a=1\";\n"
        "    set $s one;\n"
        "    break;\n"
        "    set $s two;\n"
        "    return 500;\n"
        "}\n"), GH_OK);
    finish_config();

    r = fx_request();
    set_target(r, "/", "old=1", "/?old=1");
    assert_int_equal(run_location(r, child(NULL, 0)), GH_DECLINED);
    expect_str(&r->args, "a=1");
    expect_var(r, "s", "one");
}

static void
test_set_errors(void **state)
{
    assert_int_equal(srv_dispatch("set x 1;"), GH_ERROR);
    expect_log("invalid variable name \"x\"");
    assert_int_equal(srv_dispatch("set $a-b 1;"), GH_ERROR);
    expect_log("invalid variable name \"$a-b\"");
    assert_int_equal(srv_dispatch("set $host 1;"), GH_ERROR);
    expect_log("the duplicate \"host\" variable");
    /* two sets of one name are fine */
    assert_int_equal(srv_dispatch("set $mine 1; set $mine 2;"), GH_OK);
}

static void
test_misc_directives(void **state)
{
    assert_int_equal(srv_dispatch(
        "rewrite_log on;\n"
        "uninitialized_variable_warn off;\n"
        "location / { rewrite_log off; }\n"), GH_OK);
    assert_int_equal(rcf_of(fx.srv.loc_conf)->log, 1);
    assert_int_equal(rcf_of(fx.srv.loc_conf)->uninit_warn, 0);
    assert_int_equal(gh_http_rewrite_module.merge_loc_conf(&fx.cf,
        fx.srv.loc_conf[gh_http_rewrite_module.index],
        child(NULL, 0)->loc_conf[gh_http_rewrite_module.index]), 0);
    assert_int_equal(rcf_of(child(NULL, 0)->loc_conf)->log, 0);
    assert_int_equal(rcf_of(child(NULL, 0)->loc_conf)->uninit_warn, 0);

    assert_int_equal(srv_dispatch("location /x { if ($a) { if ($b) { } } }"),
        GH_ERROR);
    expect_log("\"if\" directive is not allowed here");
    assert_int_equal(srv_dispatch("break 1;"), GH_ERROR);
}

/* --- static: configuration ------------------------------------------- */

static void
test_static_defaults_and_alias(void **state)
{
    gh_http_request_t *r;
    char               want[256];

    assert_int_equal(srv_dispatch(
        "location /i/ { alias /data/img/; }\n"
        "location /r/ { root /srv/www/; }\n"
        "location /d/ { }\n"
        "location ~ ^/re/(.*)$ { alias /data/$1; }\n"), GH_OK);
    /* merges as http{} does it: server from the http level, then the
     * locations from the server */
    assert_null(gh_http_static_module.merge_loc_conf(&fx.cf,
        fx.http.loc_conf[gh_http_static_module.index],
        fx.srv.loc_conf[gh_http_static_module.index]));
    for (size_t i = 0; i < 4; i++) {
        assert_null(gh_http_static_module.merge_loc_conf(&fx.cf,
            fx.srv.loc_conf[gh_http_static_module.index],
            child(NULL, i)->loc_conf[gh_http_static_module.index]));
    }
    finish_config();

    r = fx_request();
    r->uri = fx_str("/i/a/b.gif");
    r->loc_conf = child(NULL, 0)->loc_conf;
    expect_var(r, "request_filename", "/data/img/a/b.gif");
    expect_var(r, "document_root", "/data/img/");

    r->uri = fx_str("/r/x.html");
    r->loc_conf = child(NULL, 1)->loc_conf;
    expect_var(r, "request_filename", "/srv/www/r/x.html");

    /* the default root: "html" under the prefix */
    r->uri = fx_str("/d/");
    r->loc_conf = child(NULL, 2)->loc_conf;
    snprintf(want, sizeof(want), "%s/html/d/", fx.dir);
    expect_var(r, "request_filename", want);

    /* a regex location's alias is the whole path */
    r->uri = fx_str("/re/p/q.txt");
    r->loc_conf = child(NULL, 3)->loc_conf;
    assert_int_equal(gh_http_regex_exec(r, child(NULL, 3)->regex, &r->uri),
        GH_OK);
    expect_var(r, "request_filename", "/data/p/q.txt");
}

static void
test_static_errors(void **state)
{
    assert_int_equal(srv_dispatch("location / { root /a; alias /b; }"),
        GH_ERROR);
    expect_log("\"alias\" directive is duplicate, \"root\" directive was "
        "specified earlier");
    assert_int_equal(srv_dispatch("location / { root /a; root /b; }"),
        GH_ERROR);
    expect_log("\"root\" directive is duplicate");
    assert_int_equal(srv_dispatch("location @n { alias /b; }"), GH_ERROR);
    expect_log("cannot be used inside the named location");
    assert_int_equal(srv_dispatch("alias /b;"), GH_ERROR);
    expect_log("\"alias\" directive is not allowed here");
    assert_int_equal(srv_dispatch("try_files $uri =4x4;"), GH_ERROR);
    expect_log("invalid code \"=4x4\"");
    assert_int_equal(srv_dispatch("try_files $uri;"), GH_ERROR);
    assert_int_equal(srv_dispatch("index /a.html b.html;"), GH_ERROR);
    expect_log("only the last index");
}

/* --- dates and types ------------------------------------------------- */

static void
test_http_time(void **state)
{
    static const char *same[] = {
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    };
    static const char *bad[] = {
        "", "yesterday", "Sun, 06 Nov 1994 08:49:37",
        "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMTX",
        "Sun Nov  6 08:49:37 1994 ",
    };
    uint8_t buf[64];
    size_t  n;

    for (size_t i = 0; i < gh_nelems(same); i++) {
        assert_int_equal(gh_http_parse_time((const uint8_t *) same[i],
            strlen(same[i])), 784111777);
    }
    for (size_t i = 0; i < gh_nelems(bad); i++) {
        if (gh_http_parse_time((const uint8_t *) bad[i], strlen(bad[i]))
            != -1)
        {
            fail_msg("\"%s\" parsed", bad[i]);
        }
    }
    n = gh_http_format_time(buf, sizeof(buf), 784111777);
    assert_int_equal(n, 29);
    assert_memory_equal(buf, same[0], n);
    assert_int_equal(gh_http_format_time(buf, 10, 0), 0);
    /* RFC 850 years before 70 are this century */
    assert_int_equal(gh_http_parse_time((const uint8_t *)
        "Monday, 01-Jan-24 00:00:00 GMT", 30), 1704067200);
}

static void
test_types(void **state)
{
    static const struct {
        const char *ext;
        const char *type;
    } cases[] = {
        { "html", "text/html" }, { "HTML", "text/html" },
        { "css", "text/css" }, { "js", "application/javascript" },
        { "json", "application/json" }, { "png", "image/png" },
        { "jpg", "image/jpeg" }, { "svg", "image/svg+xml" },
        { "woff2", "font/woff2" }, { "wasm", "application/wasm" },
        { "mp4", "video/mp4" }, { "pdf", "application/pdf" },
        { "txt", "text/plain" }, { "ico", "image/x-icon" },
    };

    for (size_t i = 0; i < gh_nelems(cases); i++) {
        gh_str_t e = fx_str(cases[i].ext);

        assert_string_equal(gh_http_static_type(&e), cases[i].type);
    }
    gh_str_t none = fx_str("nope"), empty = fx_str("");
    assert_null(gh_http_static_type(&none));
    assert_null(gh_http_static_type(&empty));
}

/* --- add_header ------------------------------------------------------ */

static unsigned next_calls;

static gh_int_t
next_filter(gh_http_request_t *r)
{
    next_calls++;
    return GH_OK;
}

static const char *
header_out(gh_http_request_t *r, const char *name)
{
    static char buf[128];

    for (size_t i = 0; i < r->headers_out.headers.nelts; i++) {
        gh_http_table_elt_t *e = gh_array_at(&r->headers_out.headers,
            gh_http_table_elt_t, i);

        if (!e->hash_skip && gh_str_caseeq_c(&e->name, name)) {
            snprintf(buf, sizeof(buf), "%.*s", (int) e->value.len,
                (const char *) e->value.data);
            return buf;
        }
    }
    return NULL;
}

static void
test_add_header_filter(void **state)
{
    gh_http_request_t *r;

    assert_int_equal(srv_dispatch(
        "add_header X-A a;\n"
        "add_header X-B \"$arg_b\" always;\n"
        "location /own { add_header ETag '\"e\"'; }\n"
        "location /inh { }\n"), GH_OK);
    assert_null(gh_http_headers_module.merge_loc_conf(&fx.cf,
        fx.srv.loc_conf[gh_http_headers_module.index],
        child(NULL, 1)->loc_conf[gh_http_headers_module.index]));
    finish_config();
    gh_http_top_header_filter = next_filter;
    assert_int_equal(gh_http_headers_module.postconfiguration(&fx.cf),
        GH_OK);

    r = fx_request();
    r->args = fx_str("b=1");
    r->loc_conf = child(NULL, 1)->loc_conf;
    r->headers_out.status = 200;
    next_calls = 0;
    assert_int_equal(gh_http_top_header_filter(r), GH_OK);
    assert_int_equal(next_calls, 1);
    assert_string_equal(header_out(r, "X-A"), "a");
    assert_string_equal(header_out(r, "X-B"), "1");

    /* 404: only `always`; an empty value adds nothing */
    r = fx_request();
    r->loc_conf = child(NULL, 1)->loc_conf;
    r->headers_out.status = 404;
    assert_int_equal(gh_http_top_header_filter(r), GH_OK);
    assert_null(header_out(r, "X-A"));
    assert_null(header_out(r, "X-B"));
    r->args = fx_str("b=2");
    assert_int_equal(gh_http_top_header_filter(r), GH_OK);
    assert_string_equal(header_out(r, "X-B"), "2");

    /* a level with its own list; ETag replaces the response's */
    r = fx_request();
    r->loc_conf = child(NULL, 0)->loc_conf;
    r->headers_out.status = 304;
    gh_str_t old = fx_str("\"old\"");
    assert_non_null(gh_http_add_header_out(r, "ETag", &old));
    assert_int_equal(gh_http_top_header_filter(r), GH_OK);
    assert_string_equal(header_out(r, "ETag"), "\"e\"");
    assert_null(header_out(r, "X-A"));

    assert_int_equal(srv_dispatch("add_header X-C c sometimes;"), GH_ERROR);
    expect_log("invalid parameter \"sometimes\"");
    assert_int_equal(srv_dispatch("add_header \"X C\" c;"), GH_ERROR);
    expect_log("invalid header name \"X C\"");
}

#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_rewrite_compile),
        T(test_rewrite_errors),
        T(test_rewrite_run_break),
        T(test_rewrite_run_args_rules),
        T(test_rewrite_quoted_captures_in_args),
        T(test_if_layout),
        T(test_if_entries_are_never_matched),
        T(test_if_inherits_content_handler),
        T(test_if_conditions),
        T(test_if_and_set_run),
        T(test_if_file_tests_run),
        T(test_break_and_set_args),
        T(test_set_errors),
        T(test_misc_directives),
        T(test_static_defaults_and_alias),
        T(test_static_errors),
        T(test_http_time),
        T(test_types),
        T(test_add_header_filter),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
