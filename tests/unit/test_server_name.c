/*
 * test_server_name.c: server selection by Host (exact, wildcards,
 * regexes, default), invalid names, the shared host-name table, and Host
 * validation.
 */
#include "http_fixture.h"
#include "http/gh_http_names.h"

static gh_http_addr_conf_t addr;

static gh_http_core_srv_conf_t *
server(const char *names[])
{
    void                   **sc = fx_level(1);
    gh_conf_ctx_t           *ctx = gh_calloc(fx.arena, sizeof(*ctx));
    gh_http_core_srv_conf_t *cscf = sc[gh_http_core_module.index];
    void                   **slot;

    ctx->main_conf = fx.http.main_conf;
    ctx->srv_conf = sc;
    ctx->loc_conf = fx_level(2);
    cscf->ctx = ctx;
    cscf->file = "/test.conf";
    cscf->line = ++fx.line;

    for (size_t i = 0; names && names[i]; i++) {
        gh_http_server_name_t *sn = gh_array_push(&cscf->server_names);
        gh_str_t               v = fx_str(names[i]);

        memset(sn, 0, sizeof(*sn));
        sn->server = cscf;
        if (v.data[0] == '~') {
            const char *err = NULL;

            sn->name.data = v.data + 1;
            sn->name.len = v.len - 1;
            /* as the server_name directive does */
            sn->regex = gh_http_regex_compile(&fx.cf, &sn->name, true, &err);
            assert_non_null(sn->regex);
        } else {
            sn->name = v;
        }
        if (cscf->server_name.data == NULL) {
            cscf->server_name = v;
        }
    }

    if (addr.servers.elts == NULL) {
        gh_array_init(&addr.servers, fx.arena, 4, sizeof(void *));
        strcpy(addr.addr_text, "0.0.0.0:80");
    }
    slot = gh_array_push(&addr.servers);
    *slot = cscf;
    if (addr.default_server == NULL) {
        addr.default_server = cscf;
    }
    return cscf;
}

static gh_http_core_srv_conf_t *
find(gh_http_request_t *r, const char *host)
{
    gh_str_t h = fx_str(host);

    return gh_http_find_server(r, &addr, &h);
}

static int
setup(void **state)
{
    memset(&addr, 0, sizeof(addr));
    return fx_setup(state);
}

static void
test_precedence(void **state)
{
    gh_http_core_srv_conf_t *def, *exact, *star, *star_a, *dot, *tail, *re,
                            *noname, *tail_long;
    gh_http_request_t       *r;
    gh_str_t                 v, name;

    def = server((const char *[]) { "_", NULL });
    exact = server((const char *[]) { "example.com", "www.example.com",
        NULL });
    star = server((const char *[]) { "*.example.com", NULL });
    star_a = server((const char *[]) { "*.a.example.com", NULL });
    dot = server((const char *[]) { ".example.org", NULL });
    tail = server((const char *[]) { "www.example.*", NULL });
    tail_long = server((const char *[]) { "www.example.co.*", NULL });
    re = server((const char *[]) { "~^(?<sub>[a-z]+)\\.example\\.net$",
        "~^www\\d+\\.", NULL });
    noname = server(NULL);

    assert_int_equal(gh_http_server_names_init(&fx.cf, &addr), GH_OK);
    assert_int_equal(gh_http_variables_init_vars(&fx.cf), GH_OK);
    r = fx_request();

    /* exact first, even where a wildcard would match too */
    assert_ptr_equal(find(r, "example.com"), exact);
    assert_ptr_equal(find(r, "www.example.com"), exact);
    /* leading wildcards: the longest wins, and "*.x" needs a label */
    assert_ptr_equal(find(r, "foo.example.com"), star);
    assert_ptr_equal(find(r, "x.y.example.com"), star);
    assert_ptr_equal(find(r, "a.example.com"), star);
    assert_ptr_equal(find(r, "x.a.example.com"), star_a);
    assert_ptr_equal(find(r, "y.x.a.example.com"), star_a);
    /* ".x" covers x itself and everything below */
    assert_ptr_equal(find(r, "example.org"), dot);
    assert_ptr_equal(find(r, "a.b.example.org"), dot);
    assert_ptr_equal(find(r, "xexample.org"), def);
    /* trailing wildcards, longest first, before any regex */
    assert_ptr_equal(find(r, "www.example.net"), tail);
    assert_ptr_equal(find(r, "www.example.co.uk"), tail_long);
    assert_ptr_equal(find(r, "www.example"), def);
    /* regexes, with captures */
    assert_ptr_equal(find(r, "foo.example.net"), re);
    name = fx_str("sub");
    assert_int_equal(gh_http_get_variable(r, &name, &v), GH_OK);
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.data, "foo", 3);
    assert_ptr_equal(find(r, "www12.other.org"), re);
    /* nothing: the default server; no Host: the server without a name */
    assert_ptr_equal(find(r, "unknown.com"), def);
    assert_ptr_equal(find(r, ""), noname);
    /* names compare case-insensitively */
    assert_ptr_equal(find(r, "WWW.Example.COM"), exact);
    assert_ptr_equal(find(NULL, "bar.example.net"), re);
}

static void
test_single_server(void **state)
{
    gh_http_core_srv_conf_t *only;
    gh_http_request_t       *r;

    only = server((const char *[]) { "a.com", NULL });
    assert_int_equal(gh_http_server_names_init(&fx.cf, &addr), GH_OK);
    assert_null(addr.names);
    r = fx_request();
    assert_ptr_equal(find(r, "b.com"), only);
}

static void
test_default_server_flag(void **state)
{
    gh_http_core_srv_conf_t *a, *b;
    gh_http_request_t       *r;

    a = server((const char *[]) { "a.com", NULL });
    b = server((const char *[]) { "b.com", NULL });
    addr.default_server = b;     /* listen ... default_server */
    assert_int_equal(gh_http_server_names_init(&fx.cf, &addr), GH_OK);
    r = fx_request();
    assert_ptr_equal(find(r, "a.com"), a);
    assert_ptr_equal(find(r, "c.com"), b);
}

static void
test_invalid_names(void **state)
{
    static const char *bad[] = {
        "*.ex*ample.com", "www.*.com", "*", "*.", ".", "ex..ample.com",
        "*example.com", "example.*.*", NULL
    };

    for (size_t i = 0; bad[i]; i++) {
        char want[128];

        memset(&addr, 0, sizeof(addr));
        server((const char *[]) { "ok.com", NULL });
        server((const char *[]) { bad[i], NULL });
        assert_int_equal(gh_http_server_names_init(&fx.cf, &addr), GH_ERROR);
        snprintf(want, sizeof(want),
            "invalid server name or wildcard \"%s\" on 0.0.0.0:80", bad[i]);
        if (strstr(fx_log_take(), want) == NULL) {
            print_error("no error for \"%s\"\n", bad[i]);
            fail();
        }
    }
}

static void
test_conflicting(void **state)
{
    gh_http_core_srv_conf_t *first;
    gh_http_request_t       *r;

    first = server((const char *[]) { "dup.com", "*.w.com", NULL });
    server((const char *[]) { "dup.com", ".w.com", NULL });
    assert_int_equal(gh_http_server_names_init(&fx.cf, &addr), GH_OK);
    assert_non_null(strstr(fx_log_take(),
        "conflicting server name \"dup.com\" on 0.0.0.0:80, ignored"));
    r = fx_request();
    assert_ptr_equal(find(r, "dup.com"), first);
    assert_ptr_equal(find(r, "x.w.com"), first);
}

static void
test_names_table(void **state)
{
    gh_http_names_t *t = gh_http_names_create(fx.arena);
    int              a, b, c;
    char             name[64];
    gh_str_t         s;

    s = fx_str("Exact.Com");
    assert_int_equal(gh_http_names_add(t, &s, &a, false), GH_OK);
    s = fx_str("exact.com");
    assert_int_equal(gh_http_names_add(t, &s, &b, false), GH_BUSY);
    /* without wildcards, "*" is just a byte */
    s = fx_str("*.x.com");
    assert_int_equal(gh_http_names_add(t, &s, &c, false), GH_OK);
    assert_ptr_equal(gh_http_names_find(t, (uint8_t *) "EXACT.com", 9), &a);
    assert_ptr_equal(gh_http_names_find(t, (uint8_t *) "*.x.com", 7), &c);
    assert_null(gh_http_names_find(t, (uint8_t *) "a.x.com", 7));

    /* enough names to make the tables grow */
    t = gh_http_names_create(fx.arena);
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "*.h%d.example.com", i);
        s = fx_str(name);
        assert_int_equal(gh_http_names_add(t, &s, &a, true), GH_OK);
        snprintf(name, sizeof(name), "n%d.example.com", i);
        s = gh_str_dup(fx.arena, &(gh_str_t) { strlen(name),
            (uint8_t *) name });
        assert_int_equal(gh_http_names_add(t, &s, &b, true), GH_OK);
    }
    assert_int_equal(gh_http_names_count(t), 1000);
    assert_ptr_equal(gh_http_names_find(t, (uint8_t *) "x.h77.example.com",
        17), &a);
    assert_ptr_equal(gh_http_names_find(t, (uint8_t *) "n499.example.com",
        16), &b);
    assert_null(gh_http_names_find(t, (uint8_t *) "h77.example.com", 15));
    assert_null(gh_http_names_find(t, (uint8_t *) "n500.example.com", 16));
}

static void
check_host(const char *in, const char *want)
{
    gh_str_t h = { strlen(in), (uint8_t *) in };
    gh_int_t rc = gh_http_validate_host(&h, fx.arena);

    if (want == NULL) {
        if (rc != GH_ERROR) {
            print_error("\"%s\" accepted as \"%.*s\"\n", in, (int) h.len,
                h.data);
        }
        assert_int_equal(rc, GH_ERROR);
        return;
    }
    if (rc != GH_OK) {
        print_error("\"%s\" rejected\n", in);
    }
    assert_int_equal(rc, GH_OK);
    assert_int_equal(h.len, strlen(want));
    assert_memory_equal(h.data, want, h.len);
}

static void
test_validate_host(void **state)
{
    check_host("example.com", "example.com");
    check_host("Example.COM:8080", "example.com");
    check_host("example.com.", "example.com");
    check_host("example.com.:80", "example.com");
    check_host("a:", "a");
    check_host("[::1]:8080", "[::1]");
    check_host("[::FFFF:1.2.3.4]", "[::ffff:1.2.3.4]");
    check_host("under_score.com", "under_score.com");
    check_host("127.0.0.1:80", "127.0.0.1");

    check_host("", NULL);
    check_host(".", NULL);
    check_host(":80", NULL);
    check_host(".example.com", NULL);
    check_host("ex..ample.com", NULL);
    check_host("example.com..", NULL);
    check_host("a/b", NULL);
    check_host("a\\b", NULL);
    check_host("a b", NULL);
    check_host("a\tb", NULL);
    check_host("a\x7f", NULL);
    check_host("a:b", NULL);
    check_host("a:80:90", NULL);
    check_host("[::1", NULL);
    check_host("[]", NULL);
    check_host("[::g]", NULL);
    check_host("[::1]x", NULL);
    check_host("[::1]:8a", NULL);
    check_host("good.example@evil.example", NULL);
    check_host("evil.example#good.example", NULL);
    check_host("evil.example?good.example", NULL);
    check_host("a\"b", NULL);
    check_host("a<b>", NULL);
    check_host("a|b", NULL);

    gh_str_t nul = { 3, (uint8_t *) "a\0b" };
    assert_int_equal(gh_http_validate_host(&nul, fx.arena), GH_ERROR);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, fx_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_precedence),
        T(test_single_server),
        T(test_default_server_flag),
        T(test_invalid_names),
        T(test_conflicting),
        T(test_names_table),
        T(test_validate_host),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
