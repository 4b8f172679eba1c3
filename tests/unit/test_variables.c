/*
 * test_variables.c: the variable registry, core variables, complex
 * values, `map` and the access log.
 */
#include "http_fixture.h"
#include <fcntl.h>
#include <sys/stat.h>

/* a test variable whose value is the C string in data */
static gh_int_t
const_var(gh_http_request_t *r, gh_str_t *v, uintptr_t data)
{
    if (data == 0) {
        return GH_DECLINED;
    }
    v->data = (uint8_t *) data;
    v->len = strlen((const char *) data);
    return GH_OK;
}

static void
declare(const char *name, const char *value)
{
    gh_str_t            n = fx_str(name);
    gh_http_variable_t *v = gh_http_add_variable(&fx.cf, &n, 0);

    assert_non_null(v);
    v->get = const_var;
    v->data = (uintptr_t) value;
}

static gh_http_complex_value_t *
compile(const char *text)
{
    gh_http_complex_value_t *cv = gh_calloc(fx.arena, sizeof(*cv));
    gh_str_t                 s = fx_str(text);

    assert_null(gh_http_compile_complex_value(&fx.cf, &s, cv));
    return cv;
}

static void
check_cv(gh_http_request_t *r, const gh_http_complex_value_t *cv,
    const char *want)
{
    gh_str_t out;

    assert_int_equal(gh_http_complex_value(r, cv, &out), GH_OK);
    if (out.len != strlen(want) || memcmp(out.data, want, out.len) != 0) {
        print_error("got \"%.*s\", want \"%s\"\n", (int) out.len, out.data,
            want);
        fail();
    }
}

/* value of $name, or NULL if not found */
static const char *
var(gh_http_request_t *r, const char *name)
{
    static char buf[512];
    gh_str_t    n = fx_str(name), v;
    gh_int_t    rc = gh_http_get_variable(r, &n, &v);

    assert_true(rc == GH_OK || rc == GH_DECLINED);
    if (rc == GH_DECLINED) {
        return NULL;
    }
    assert_true(v.len < sizeof(buf));
    memcpy(buf, v.data, v.len);
    buf[v.len] = '\0';
    return buf;
}

/* --- complex values -------------------------------------------------- */

static void
test_complex_value_parse(void **state)
{
    gh_http_complex_value_t *lit, *br, *two, *cap, *mixed, *tail;
    gh_http_request_t       *r;

    declare("a", "A");
    declare("b", "B");
    declare("ab", "AB");
    lit = compile("plain text");
    br = compile("${a}b");
    two = compile("$a$b");
    mixed = compile("x-$ab-${ab}_$a.");
    cap = compile("[$1|$2|$10]");
    tail = compile("$A");           /* names are case-insensitive */
    assert_true(gh_http_cv_is_const(lit));
    assert_false(gh_http_cv_is_const(br));
    assert_int_equal(gh_http_variables_init_vars(&fx.cf), GH_OK);

    r = fx_request();
    check_cv(r, lit, "plain text");
    check_cv(r, br, "Ab");
    check_cv(r, two, "AB");
    check_cv(r, mixed, "x-AB-AB_A.");
    check_cv(r, tail, "A");
    /* no captures yet: empty */
    check_cv(r, cap, "[||0]");
}

static void
test_complex_value_errors(void **state)
{
    static const struct {
        const char *text;
        const char *msg;
    } bad[] = {
        { "a$", "invalid variable name" },
        { "$ b", "invalid variable name" },
        { "x$-", "invalid variable name" },
        { "${}", "invalid variable name" },
        { "${a", "the closing bracket in \"a\" variable is missing" },
        { "${a-}", "invalid variable name" },
    };

    for (size_t i = 0; i < gh_nelems(bad); i++) {
        gh_http_complex_value_t cv;
        gh_str_t                s = fx_str(bad[i].text);

        assert_ptr_equal(gh_http_compile_complex_value(&fx.cf, &s, &cv),
            GH_CONF_ERROR);
        if (strstr(fx_log_take(), bad[i].msg) == NULL) {
            print_error("\"%s\": no \"%s\"\n", bad[i].text, bad[i].msg);
            fail();
        }
    }
}

static void
test_unknown_variable(void **state)
{
    fx.node.line = 7;
    compile("$nope and $http_ok and $remote_addr");
    fx.node.line = 9;
    compile("$nope2");
    assert_int_equal(gh_http_variables_init_vars(&fx.cf), GH_ERROR);
    const char *log = fx_log_take();
    assert_non_null(strstr(log, "unknown \"nope\" variable in /test.conf:7"));
    assert_non_null(strstr(log, "unknown \"nope2\" variable in /test.conf:9"));
    assert_null(strstr(log, "http_ok"));
}

static void
test_duplicate_declaration(void **state)
{
    gh_str_t            n = fx_str("host");
    gh_http_variable_t *v;

    /* core variables are not changeable */
    assert_null(gh_http_add_variable(&fx.cf, &n, GH_HTTP_VAR_CHANGEABLE));
    n = fx_str("mine");
    v = gh_http_add_variable(&fx.cf, &n, GH_HTTP_VAR_CHANGEABLE);
    assert_non_null(v);
    assert_ptr_equal(gh_http_add_variable(&fx.cf, &n, 0), v);
}

/* --- core variables -------------------------------------------------- */

static void
test_http_headers(void **state)
{
    gh_http_request_t *r;

    assert_int_equal(gh_http_variables_init_vars(&fx.cf), GH_OK);
    r = fx_request();
    fx_header_in(r, "User-Agent", "curl/8");
    fx_header_in(r, "X-Forwarded-For", "1.1.1.1");
    fx_header_in(r, "Cookie", "a=1; b=2 ");
    fx_header_in(r, "x-forwarded-for", "2.2.2.2");
    fx_header_in(r, "cookie", "c=3;d=;b=9");
    fx_header_in(r, "X_Under", "u");

    assert_string_equal(var(r, "http_user_agent"), "curl/8");
    assert_string_equal(var(r, "HTTP_USER_AGENT"), "curl/8");
    assert_string_equal(var(r, "http_x_forwarded_for"), "1.1.1.1, 2.2.2.2");
    assert_string_equal(var(r, "http_cookie"), "a=1; b=2 ; c=3;d=;b=9");
    assert_string_equal(var(r, "http_x_under"), "u");
    assert_null(var(r, "http_referer"));
    assert_string_equal(var(r, "cookie_a"), "1");
    assert_string_equal(var(r, "cookie_b"), "2");
    assert_string_equal(var(r, "cookie_c"), "3");
    assert_string_equal(var(r, "cookie_d"), "");
    assert_null(var(r, "cookie_e"));
    assert_null(var(r, "cookie_"));

    ((gh_http_table_elt_t *) r->headers_in.headers.elts)[0].hash_skip = 1;
    assert_null(var(r, "http_user_agent"));
}

static void
test_http_header_indexed(void **state)
{
    gh_http_complex_value_t *cv;
    gh_http_request_t       *r;

    cv = compile("<$http_x_a|$sent_http_x_b|$sent_http_content_type>");
    assert_int_equal(gh_http_variables_init_vars(&fx.cf), GH_OK);
    r = fx_request();
    fx_header_in(r, "X-A", "one");
    r->headers_out.content_type = fx_str("text/html");
    gh_http_table_elt_t *h = gh_array_push(&r->headers_out.headers);
    memset(h, 0, sizeof(*h));
    h->name = fx_str("X-B");
    h->value = fx_str("two");
    check_cv(r, cv, "<one|two|text/html>");
}

static void
test_args(void **state)
{
    gh_http_request_t *r;

    assert_int_equal(gh_http_variables_init_vars(&fx.cf), GH_OK);
    r = fx_request();
    assert_null(var(r, "args"));
    assert_string_equal(var(r, "is_args"), "");
    r->args = fx_str("foo=1&Bar=%20x&baz&q=&foo=2&longname=v");
    assert_string_equal(var(r, "arg_foo"), "1");
    assert_string_equal(var(r, "arg_bar"), "%20x");
    assert_string_equal(var(r, "arg_BAR"), "%20x");
    assert_null(var(r, "arg_baz"));
    assert_string_equal(var(r, "arg_q"), "");
    assert_null(var(r, "arg_fo"));
    assert_null(var(r, "arg_name"));
    assert_string_equal(var(r, "arg_longname"), "v");
    assert_string_equal(var(r, "args"), "foo=1&Bar=%20x&baz&q=&foo=2&"
        "longname=v");
    assert_string_equal(var(r, "query_string"), var(r, "args"));
    assert_string_equal(var(r, "is_args"), "?");
}

static void
test_request_vars(void **state)
{
    gh_http_request_t       *r;
    gh_http_complex_value_t *rid;
    gh_str_t                 one, two;
    char                     first[33];

    rid = compile("$request_id");
    assert_int_equal(gh_http_variables_init_vars(&fx.cf), GH_OK);
    r = fx_request();
    r->request_line = fx_str("GET /a?b HTTP/1.1");
    r->unparsed_uri = fx_str("/a?b");
    r->uri = fx_str("/a");
    r->method_name = fx_str("GET");
    r->http_version = 1001;
    r->headers_in.server = fx_str("example.com");
    fx.cscf->server_name = fx_str("srv.example");

    assert_string_equal(var(r, "request"), "GET /a?b HTTP/1.1");
    assert_string_equal(var(r, "request_uri"), "/a?b");
    assert_string_equal(var(r, "uri"), "/a");
    assert_string_equal(var(r, "document_uri"), "/a");
    assert_string_equal(var(r, "request_method"), "GET");
    assert_string_equal(var(r, "server_protocol"), "HTTP/1.1");
    assert_string_equal(var(r, "host"), "example.com");
    assert_string_equal(var(r, "server_name"), "srv.example");
    assert_string_equal(var(r, "scheme"), "http");
    assert_string_equal(var(r, "https"), "");
    assert_string_equal(var(r, "gatehouse_version"), GH_VERSION);
    assert_null(var(r, "remote_user"));
    assert_null(var(r, "content_length"));

    /* $uri follows the request */
    r->uri = fx_str("/b");
    assert_string_equal(var(r, "uri"), "/b");
    r->headers_in.server.len = 0;
    assert_string_equal(var(r, "host"), "srv.example");

    assert_string_equal(var(r, "status"), "000");
    r->headers_out.status = 404;
    assert_string_equal(var(r, "status"), "404");
    r->body_bytes_sent = 1234;
    assert_string_equal(var(r, "body_bytes_sent"), "1234");

    /* $request_id: 32 hex digits, the same for the whole request */
    assert_int_equal(gh_http_complex_value(r, rid, &one), GH_OK);
    assert_int_equal(gh_http_complex_value(r, rid, &two), GH_OK);
    assert_int_equal(one.len, 32);
    assert_memory_equal(one.data, two.data, 32);
    for (size_t i = 0; i < 32; i++) {
        assert_non_null(strchr("0123456789abcdef", one.data[i]));
    }
    memcpy(first, one.data, 32);
    r = fx_request();
    assert_int_equal(gh_http_complex_value(r, rid, &two), GH_OK);
    assert_memory_not_equal(first, two.data, 32);
}

static void
test_times(void **state)
{
    gh_http_request_t *r;
    const char        *msec;

    assert_int_equal(gh_http_variables_init_vars(&fx.cf), GH_OK);
    r = fx_request();
    r->start_msec = gh_current_msec - 1234;
    assert_string_equal(var(r, "request_time"), "1.234");
    r->start_msec = gh_current_msec - 3;
    assert_string_equal(var(r, "request_time"), "0.003");
    r->start_msec = gh_current_msec + 5;       /* clock oddity: never < 0 */
    assert_string_equal(var(r, "request_time"), "0.000");

    msec = var(r, "msec");
    assert_int_equal(strlen(msec), 14);
    assert_int_equal(msec[10], '.');
    assert_int_equal(strlen(var(r, "time_local")),
        strlen("26/Nov/2026:15:04:05 +0000"));
    assert_int_equal(strlen(var(r, "time_iso8601")),
        strlen("2026-11-26T15:04:05+00:00"));
}

static void
test_captures(void **state)
{
    gh_http_complex_value_t *cv;
    gh_http_regex_t         *re;
    gh_http_request_t       *r;
    gh_str_t                 pat = fx_str("^/(\\w+)/(\\w+)?(x)?$"), s;
    const char              *err = NULL;

    re = gh_http_regex_compile(&fx.cf, &pat, false, &err);
    assert_non_null(re);
    assert_true(fx.cmcf->ncaptures >= 3);
    cv = compile("$1-$2-$3-$4");
    assert_int_equal(gh_http_variables_init_vars(&fx.cf), GH_OK);

    r = fx_request();
    s = fx_str("/abc/def");
    assert_int_equal(gh_http_regex_exec(r, re, &s), GH_OK);
    check_cv(r, cv, "abc-def--");
    assert_string_equal(var(r, "1"), "abc");
    assert_null(var(r, "3"));
    s = fx_str("/x");
    assert_int_equal(gh_http_regex_exec(r, re, &s), GH_DECLINED);
    check_cv(r, cv, "abc-def--");
}

static void
test_regex_errors(void **state)
{
    gh_str_t    pat = fx_str("(unclosed");
    const char *err = NULL;

    assert_null(gh_http_regex_compile(&fx.cf, &pat, false, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "pcre2_compile() failed: "));
    assert_non_null(strstr(err, "in \"(unclosed\""));

    /* a named group may not take a core variable's name */
    pat = fx_str("(?<host>.*)");
    assert_null(gh_http_regex_compile(&fx.cf, &pat, false, &err));
    assert_string_equal(err, "the duplicate \"host\" variable");
}

/* --- map ------------------------------------------------------------- */

static void
test_map(void **state)
{
    gh_http_complex_value_t *cv;
    gh_http_request_t       *r;

    assert_int_equal(fx_dispatch(
        "map $uri $m {\n"
        "    default d;\n"
        "    /exact e;\n"
        "    \\~tilde t;\n"
        "    ~^/u/(?<user>[a-z]+)/(\\d+)$ \"user=$user id=$2 [$m2]\";\n"
        "    ~*^/CASE c;\n"
        "    ~^/u/ never;\n"
        "}\n"
        "map $uri $m2 { /u/bob/42 fromm2; }\n"
        "map $http_upgrade $connection_upgrade {\n"
        "    default upgrade;\n"
        "    '' close;\n"
        "}\n"
        "map $host $h {\n"
        "    hostnames;\n"
        "    .example.com ex;\n"
        "    *.sub.example.com sub;\n"
        "    www.test.* t;\n"
        "    plain.org $host-p;\n"
        "}\n"
        "map $uri $nodefault { /a A; }\n"
        "map $uri $vol { volatile; default 0; /one 1; }\n"
        "map $uri $nvol { default 0; /one 1; }\n"
        "map_hash_bucket_size 128;\n"
        "map_hash_max_size 4096;\n"), GH_OK);
    cv = compile("$m|$connection_upgrade|$h|$nodefault");
    compile("$vol $nvol");     /* indexed, hence cached per request */
    assert_int_equal(gh_http_variables_init_vars(&fx.cf), GH_OK);

    r = fx_request();
    r->uri = fx_str("/exact");
    r->headers_in.server = fx_str("a.example.com");
    check_cv(r, cv, "e|close|ex|");

    r = fx_request();
    r->uri = fx_str("/EXACT");           /* exact keys: case-insensitive */
    fx_header_in(r, "Upgrade", "websocket");
    r->headers_in.server = fx_str("example.com");
    check_cv(r, cv, "e|upgrade|ex|");
    /* volatile: evaluated again on each use ($uri is never cached) */
    assert_string_equal(var(r, "vol"), "0");
    assert_string_equal(var(r, "nvol"), "0");
    r->uri = fx_str("/one");
    assert_string_equal(var(r, "vol"), "1");
    assert_string_equal(var(r, "nvol"), "0");

    r = fx_request();
    r->uri = fx_str("/u/bob/42");
    r->headers_in.server = fx_str("x.sub.example.com");
    check_cv(r, cv, "user=bob id=42 [fromm2]|close|sub|");
    assert_string_equal(var(r, "user"), "bob");

    r = fx_request();
    r->uri = fx_str("/case/x");
    r->headers_in.server = fx_str("plain.org");
    check_cv(r, cv, "c|close|plain.org-p|");

    r = fx_request();
    r->uri = fx_str("~tilde");
    r->headers_in.server = fx_str("other.org");
    check_cv(r, cv, "t|close||");

    r = fx_request();
    r->uri = fx_str("/a");
    r->headers_in.server = fx_str("www.test.co.uk.");
    check_cv(r, cv, "d|close|t|A");
}

static void
test_map_errors(void **state)
{
    assert_int_equal(fx_dispatch("map $uri $a { default 1; default 2; }"),
        GH_ERROR);
    assert_non_null(strstr(fx_log_take(),
        "duplicate default map parameter in /test.conf:1"));

    assert_int_equal(fx_dispatch("map $uri $b {\n x 1;\n X 2;\n}"), GH_ERROR);
    assert_non_null(strstr(fx_log_take(),
        "conflicting parameter \"X\" in /test.conf:3"));

    assert_int_equal(fx_dispatch("map $uri $c { hostnames; *.a*b 1; }"),
        GH_ERROR);
    assert_non_null(strstr(fx_log_take(),
        "invalid hostname or wildcard \"*.a*b\""));

    assert_int_equal(fx_dispatch("map $uri $d { a b c; }"), GH_ERROR);
    assert_non_null(strstr(fx_log_take(),
        "invalid number of the map parameters"));

    assert_int_equal(fx_dispatch("map $uri e { }"), GH_ERROR);
    assert_non_null(strstr(fx_log_take(), "invalid variable name \"e\""));

    assert_int_equal(fx_dispatch("map $uri $host { }"), GH_ERROR);
    assert_non_null(strstr(fx_log_take(),
        "the duplicate \"host\" variable"));

    assert_int_equal(fx_dispatch("map $uri $f { ~( 1; }"), GH_ERROR);
    assert_non_null(strstr(fx_log_take(), "pcre2_compile() failed"));
}

/* --- access log ------------------------------------------------------ */

static const char *
read_file(const char *path)
{
    static char buf[4096];
    int         fd = open(path, O_RDONLY);
    ssize_t     n;

    assert_true(fd >= 0);
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n < 0 ? 0 : n] = '\0';
    return buf;
}

static void
test_access_log(void **state)
{
    char               conf[1024], path[128], jpath[128], cpath[128];
    gh_http_request_t *r;
    void              *srv_log;

    snprintf(path, sizeof(path), "%s/a.log", fx.dir);
    snprintf(jpath, sizeof(jpath), "%s/j.log", fx.dir);
    snprintf(cpath, sizeof(cpath), "%s/c.log", fx.dir);
    snprintf(conf, sizeof(conf),
        "log_format t '[$remote_user|$http_x|$args]'\n"
        "             ' \"$request\" $status';\n"
        "log_format j escape=json '{\"u\":\"$remote_user\","
        "\"r\":\"$request\"}';\n"
        "access_log %s t;\n"
        "access_log %s j buffer=32k flush=5s;\n"
        "access_log %s combined if=$http_log;\n", path, jpath, cpath);
    assert_int_equal(fx_dispatch(conf), GH_OK);

    /* the server inherits the http{} level's list */
    srv_log = fx.srv.loc_conf[gh_http_log_module.index];
    assert_null(gh_http_log_module.merge_loc_conf(&fx.cf,
        fx.http.loc_conf[gh_http_log_module.index], srv_log));
    assert_int_equal(gh_http_variables_init_vars(&fx.cf), GH_OK);

    r = fx_request();
    r->request_line = fx_str("GET /\"x\\\x01\xff HTTP/1.1");
    r->headers_out.status = 200;
    fx_header_in(r, "X", "");
    assert_int_equal(gh_http_log_handler(r), GH_OK);

    r = fx_request();
    r->request_line = fx_str("GET / HTTP/1.0");
    r->args = fx_str("a=1");
    fx_header_in(r, "Log", "1");
    fx_header_in(r, "User-Agent", "ua \"q\"");
    assert_int_equal(gh_http_log_handler(r), GH_OK);

    assert_string_equal(read_file(path),
        "[-||-] \"GET /\\x22x\\x5C\\x01\\xFF HTTP/1.1\" 200\n"
        "[-|-|a=1] \"GET / HTTP/1.0\" 000\n");
    assert_string_equal(read_file(jpath),
        "{\"u\":\"\",\"r\":\"GET /\\\"x\\\\\\u0001\xff HTTP/1.1\"}\n"
        "{\"u\":\"\",\"r\":\"GET / HTTP/1.0\"}\n");
    /* if=: only the second request; combined's format */
    const char *c = read_file(cpath);
    assert_non_null(strstr(c, "- - - ["));
    assert_non_null(strstr(c, "] \"GET / HTTP/1.0\" 000 0 \"-\" "
        "\"ua \\x22q\\x22\"\n"));
    assert_ptr_equal(strchr(c, '\n'), c + strlen(c) - 1);
}

static void
test_access_log_levels(void **state)
{
    char  conf[512], path[128], dpath[128];
    void *http_log = fx.http.loc_conf[gh_http_log_module.index];
    void *srv_log = fx.srv.loc_conf[gh_http_log_module.index];
    void *loc_log = fx_level(2)[gh_http_log_module.index];
    gh_http_request_t *r;

    snprintf(path, sizeof(path), "%s/s.log", fx.dir);
    snprintf(dpath, sizeof(dpath), "%s/logs", fx.dir);
    assert_int_equal(mkdir(dpath, 0755), 0);

    /* nothing anywhere: logs/access.log under the prefix, "combined" */
    assert_null(gh_http_log_module.merge_loc_conf(&fx.cf, http_log,
        srv_log));
    snprintf(dpath, sizeof(dpath), "%s/logs/access.log", fx.dir);
    assert_int_equal(access(dpath, F_OK), 0);

    /* `off` at a level silences it and what inherits from it */
    snprintf(conf, sizeof(conf), "access_log off;");
    fx.cf.ctx_type = GH_HTTP_LOC_CONF;
    gh_conf_ctx_t loc = { fx.http.main_conf, fx.srv.srv_conf, NULL };
    void *lc[64] = { 0 };
    lc[gh_http_log_module.index] = loc_log;
    loc.loc_conf = lc;
    gh_conf_node_t *nodes;
    assert_int_equal(gh_conf_parse_string(&fx.cf, "/test.conf",
        (const uint8_t *) conf, strlen(conf), &nodes), GH_OK);
    assert_int_equal(gh_conf_dispatch(&fx.cf, nodes, GH_HTTP_LOC_CONF, &loc),
        GH_OK);
    assert_null(gh_http_log_module.merge_loc_conf(&fx.cf, srv_log, loc_log));

    r = fx_request();
    r->loc_conf = lc;
    assert_int_equal(gh_http_log_handler(r), GH_OK);

    /* errors */
    snprintf(conf, sizeof(conf), "access_log %s nosuch;", path);
    assert_int_equal(fx_dispatch(conf), GH_ERROR);
    assert_non_null(strstr(fx_log_take(), "unknown log format \"nosuch\""));
    assert_int_equal(fx_dispatch("log_format combined x;"), GH_ERROR);
    assert_non_null(strstr(fx_log_take(),
        "duplicate \"log_format\" name \"combined\""));
    assert_int_equal(fx_dispatch("log_format e escape=xml x;"), GH_ERROR);
    assert_non_null(strstr(fx_log_take(),
        "unknown log format escaping \"xml\""));
    snprintf(conf, sizeof(conf), "access_log %s combined bogus=1;", path);
    assert_int_equal(fx_dispatch(conf), GH_ERROR);
    assert_non_null(strstr(fx_log_take(), "invalid parameter \"bogus=1\""));
    assert_int_equal(fx_dispatch("access_log /nonexistent/dir/x.log;"),
        GH_ERROR);
    assert_non_null(strstr(fx_log_take(),
        "open() \"/nonexistent/dir/x.log\" failed"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_complex_value_parse),
        T(test_complex_value_errors),
        T(test_unknown_variable),
        T(test_duplicate_declaration),
        T(test_http_headers),
        T(test_http_header_indexed),
        T(test_args),
        T(test_request_vars),
        T(test_times),
        T(test_captures),
        T(test_regex_errors),
        T(test_map),
        T(test_map_errors),
        T(test_access_log),
        T(test_access_log_levels),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
