/*
 * test_location.c: location selection (nginx's rules), named locations,
 * duplicate detection and the auto-redirect case.
 */
#include "http_fixture.h"

#define EXACT   GH_HTTP_LOC_EXACT
#define PREFIX  GH_HTTP_LOC_PREFIX
#define NOREGEX GH_HTTP_LOC_NOREGEX
#define REGEX   GH_HTTP_LOC_REGEX
#define IREGEX  GH_HTTP_LOC_REGEX_CASELESS
#define NAMED   GH_HTTP_LOC_NAMED

static void
init_ok(void)
{
    assert_null(gh_http_init_locations(&fx.cf, fx.cscf, NULL));
}

/* the location a URI selects; NULL: none (server level) */
static gh_http_core_loc_conf_t *
match_rc(const char *uri, gh_int_t *rc)
{
    gh_http_request_t       *r = fx_request();
    gh_http_core_loc_conf_t *clcf;

    r->uri = fx_str(uri);
    *rc = gh_http_find_location(r);
    clcf = r->loc_conf[gh_http_core_module.index];
    if (*rc == GH_DECLINED) {
        assert_ptr_equal(r->loc_conf, fx.srv.loc_conf);
        return NULL;
    }
    return clcf;
}

static gh_http_core_loc_conf_t *
match(const char *uri)
{
    gh_int_t                 rc;
    gh_http_core_loc_conf_t *clcf = match_rc(uri, &rc);

    assert_true(rc == GH_OK || rc == GH_DECLINED);
    return clcf;
}

/* the example of nginx's documentation for `location` */
static void
test_nginx_doc_example(void **state)
{
    gh_http_core_loc_conf_t *a, *b, *c, *d, *e;

    a = fx_location(NULL, EXACT, "/");
    b = fx_location(NULL, PREFIX, "/");
    c = fx_location(NULL, PREFIX, "/documents/");
    d = fx_location(NULL, NOREGEX, "/images/");
    e = fx_location(NULL, IREGEX, "\\.(gif|jpg|jpeg)$");
    init_ok();

    assert_ptr_equal(match("/"), a);
    assert_ptr_equal(match("/index.html"), b);
    assert_ptr_equal(match("/documents/document.html"), c);
    assert_ptr_equal(match("/images/1.gif"), d);
    assert_ptr_equal(match("/documents/1.jpg"), e);
    assert_ptr_equal(match("/documents/1.JPG"), e);
}

static void
test_longest_prefix(void **state)
{
    gh_http_core_loc_conf_t *root, *a, *ab, *abc_d, *b_x;

    root = fx_location(NULL, PREFIX, "/");
    a = fx_location(NULL, PREFIX, "/a");
    ab = fx_location(NULL, PREFIX, "/ab");
    abc_d = fx_location(NULL, PREFIX, "/abc/d");
    b_x = fx_location(NULL, PREFIX, "/b/x");
    init_ok();

    assert_ptr_equal(match("/abc"), ab);
    assert_ptr_equal(match("/ab/x"), ab);
    assert_ptr_equal(match("/abc/d"), abc_d);
    assert_ptr_equal(match("/abc/de"), abc_d);
    assert_ptr_equal(match("/abc/"), ab);
    assert_ptr_equal(match("/a"), a);
    assert_ptr_equal(match("/aa"), a);
    assert_ptr_equal(match("/b"), root);
    assert_ptr_equal(match("/b/"), root);
    assert_ptr_equal(match("/b/xy"), b_x);
    assert_ptr_equal(match("/"), root);
}

static void
test_no_match(void **state)
{
    gh_int_t rc;

    fx_location(NULL, PREFIX, "/a/");
    fx_location(NULL, REGEX, "\\.php$");
    fx_location(NULL, NAMED, "@fallback");
    init_ok();

    assert_null(match_rc("/b/", &rc));
    assert_int_equal(rc, GH_DECLINED);
    /* a named location is never selected by URI */
    assert_null(match("@fallback"));
    assert_null(match("/fallback"));
}

/* the longest-prefix search (binary searches on a sorted array) against
 * a plain scan, over random sets of names */
static void
test_longest_prefix_random(void **state)
{
    const char  alphabet[] = "/ab";
    char        names[40][8];
    size_t      n = 40;

    srand(12345);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        bool   again;

        do {
            len = 1 + (size_t) rand() % 6;
            names[i][0] = '/';
            for (size_t j = 1; j < len; j++) {
                names[i][j] = alphabet[rand() % 3];
            }
            names[i][len] = '\0';
            again = false;
            for (size_t k = 0; k < i; k++) {
                again |= strcmp(names[k], names[i]) == 0;
            }
        } while (again);
        fx_location(NULL, i % 3 ? PREFIX : NOREGEX, names[i]);
    }
    init_ok();

    for (int t = 0; t < 3000; t++) {
        char                     uri[12];
        size_t                   len = 1 + (size_t) rand() % 10, best = 0;
        gh_http_core_loc_conf_t *want = NULL, *got;

        uri[0] = '/';
        for (size_t j = 1; j < len; j++) {
            uri[j] = alphabet[rand() % 3];
        }
        uri[len] = '\0';

        for (size_t i = 0; i < fx.srv_clcf->locations->nelts; i++) {
            gh_http_core_loc_conf_t *l = *gh_array_at(
                fx.srv_clcf->locations, gh_http_core_loc_conf_t *, i);

            if (l->name.len <= len && l->name.len > best
                && memcmp(l->name.data, uri, l->name.len) == 0)
            {
                best = l->name.len;
                want = l;
            }
        }
        got = match(uri);
        if (got != want) {
            print_error("uri %s: got %.*s, want %.*s\n", uri,
                got ? (int) got->name.len : 4,
                got ? (char *) got->name.data : "NULL",
                want ? (int) want->name.len : 4,
                want ? (char *) want->name.data : "NULL");
        }
        assert_ptr_equal(got, want);
    }
}

static void
test_regex_order_and_noregex(void **state)
{
    gh_http_core_loc_conf_t *stat, *css, *first, *second, *root;

    root = fx_location(NULL, PREFIX, "/");
    stat = fx_location(NULL, NOREGEX, "/static/");
    first = fx_location(NULL, REGEX, "^/r/a");
    second = fx_location(NULL, REGEX, "^/r/a/b");
    css = fx_location(NULL, REGEX, "\\.css$");
    init_ok();

    /* ^~ as the longest prefix: no regex is tried */
    assert_ptr_equal(match("/static/a.css"), stat);
    assert_ptr_equal(match("/other/a.css"), css);
    /* regexes in order of appearance, first match wins */
    assert_ptr_equal(match("/r/a/b"), first);
    assert_ptr_equal(match("/r/a/b.css"), first);
    /* ~ is case-sensitive */
    assert_ptr_equal(match("/other/a.CSS"), root);
    (void) second;
}

static void
test_exact_beats_everything(void **state)
{
    gh_http_core_loc_conf_t *exact, *nore, *re;

    nore = fx_location(NULL, NOREGEX, "/x");
    re = fx_location(NULL, REGEX, "^/y");
    exact = fx_location(NULL, EXACT, "/x.css");
    fx_location(NULL, EXACT, "/y");
    init_ok();

    assert_ptr_equal(match("/x.css"), exact);
    /* an exact location only matches the whole URI */
    assert_ptr_equal(match("/x.cssx"), nore);
    assert_ptr_equal(match("/y/"), re);
    assert_ptr_not_equal(match("/y"), re);
}

static void
test_nested(void **state)
{
    gh_http_core_loc_conf_t *a, *ab, *a_php, *php, *r, *r_y, *ab_nore, *abc;

    a = fx_location(NULL, PREFIX, "/a/");
    ab = fx_location(a, PREFIX, "/a/b/");
    a_php = fx_location(a, REGEX, "\\.php$");
    ab_nore = fx_location(a, NOREGEX, "/a/n/");
    abc = fx_location(ab, EXACT, "/a/b/c");
    php = fx_location(NULL, REGEX, "\\.php$");
    r = fx_location(NULL, REGEX, "^/r/");
    r_y = fx_location(r, REGEX, "\\.y$");
    init_ok();

    assert_ptr_equal(match("/a/x"), a);
    assert_ptr_equal(match("/a/b/x"), ab);
    assert_ptr_equal(match("/a/b/c"), abc);
    /* nested regexes of the longest prefix come before the outer ones */
    assert_ptr_equal(match("/a/x.php"), a_php);
    assert_ptr_equal(match("/a/b/x.php"), a_php);
    assert_ptr_equal(match("/x.php"), php);
    /* a matching regex location's own nested locations are searched */
    assert_ptr_equal(match("/r/q.y"), r_y);
    assert_ptr_equal(match("/r/q.z"), r);
    /*
     * nginx: a nested "^~" stops the regexes of its own level (/a/'s),
     * not those of the levels above, which are still tried.
     */
    assert_ptr_equal(match("/a/n/x"), ab_nore);
    assert_ptr_equal(match("/a/n/x.php"), php);
}

static void
test_noregex_with_nested_regex(void **state)
{
    gh_http_core_loc_conf_t *img, *img_png, *png;

    img = fx_location(NULL, NOREGEX, "/img/");
    img_png = fx_location(img, REGEX, "\\.png$");
    png = fx_location(NULL, REGEX, "\\.png$");
    init_ok();

    /* the ^~ blocks the server's regexes, not its own nested ones */
    assert_ptr_equal(match("/img/a.png"), img_png);
    assert_ptr_equal(match("/img/a.gif"), img);
    assert_ptr_equal(match("/x/a.png"), png);
}

static void
test_named(void **state)
{
    gh_http_core_loc_conf_t *fb, *other;
    gh_str_t                 name;

    fx_location(NULL, PREFIX, "/");
    fb = fx_location(NULL, NAMED, "@fallback");
    other = fx_location(NULL, NAMED, "@other");
    init_ok();

    name = fx_str("@fallback");
    assert_ptr_equal(gh_http_find_named_location(fx.cscf, &name), fb);
    name = fx_str("@other");
    assert_ptr_equal(gh_http_find_named_location(fx.cscf, &name), other);
    name = fx_str("@none");
    assert_null(gh_http_find_named_location(fx.cscf, &name));
    name = fx_str("/");
    assert_null(gh_http_find_named_location(fx.cscf, &name));
}

static void
test_duplicates(void **state)
{
    const char *log;

    fx_location(NULL, PREFIX, "/x");
    fx_location(NULL, EXACT, "/x");            /* another kind: fine */
    fx_location(NULL, REGEX, "^/x");
    fx_location(NULL, REGEX, "^/x");           /* nginx allows this */
    fx_location(NULL, NOREGEX, "/x");          /* line 6 */
    assert_ptr_equal(gh_http_init_locations(&fx.cf, fx.cscf, NULL),
        GH_CONF_ERROR);
    log = fx_log_take();
    assert_non_null(strstr(log,
        "duplicate location \"/x\" in /test.conf:6"));
}

static void
test_duplicates_nested_and_named(void **state)
{
    gh_http_core_loc_conf_t *a;

    a = fx_location(NULL, PREFIX, "/a/");
    fx_location(a, EXACT, "/a/e");
    fx_location(a, EXACT, "/a/e");             /* line 4 */
    assert_ptr_equal(gh_http_init_locations(&fx.cf, fx.cscf, NULL),
        GH_CONF_ERROR);
    assert_non_null(strstr(fx_log_take(),
        "duplicate location \"/a/e\" in /test.conf:4"));
}

static void
test_duplicate_named(void **state)
{
    fx_location(NULL, NAMED, "@n");
    fx_location(NULL, NAMED, "@n");
    assert_ptr_equal(gh_http_init_locations(&fx.cf, fx.cscf, NULL),
        GH_CONF_ERROR);
    assert_non_null(strstr(fx_log_take(), "duplicate location \"@n\""));
}

static void
test_auto_redirect(void **state)
{
    gh_http_core_loc_conf_t *api, *exact, *root;
    gh_int_t                 rc;

    root = fx_location(NULL, PREFIX, "/");
    api = fx_location(NULL, PREFIX, "/api/");
    api->auto_redirect = 1;
    exact = fx_location(NULL, EXACT, "/e/");
    exact->auto_redirect = 1;
    fx_location(NULL, PREFIX, "/plain/");
    fx_location(NULL, REGEX, "i$");
    init_ok();

    assert_ptr_equal(match_rc("/api", &rc), api);
    assert_int_equal(rc, GH_DONE);
    assert_ptr_equal(match_rc("/e", &rc), exact);
    assert_int_equal(rc, GH_DONE);
    assert_ptr_equal(match_rc("/api/x", &rc), api);
    assert_int_equal(rc, GH_OK);
    /* without auto_redirect: the usual rules ("/plain" ends in "i"? no) */
    assert_ptr_equal(match_rc("/plain", &rc), root);
    assert_int_equal(rc, GH_OK);
}

static void
test_captures_from_location(void **state)
{
    gh_http_core_loc_conf_t *re;
    gh_http_request_t       *r;
    gh_str_t                 v;

    re = fx_location(NULL, REGEX, "^/u/(\\w+)/(?<rest>.*)$");
    init_ok();
    assert_int_equal(gh_http_variables_init_vars(&fx.cf), GH_OK);

    r = fx_request();
    r->uri = fx_str("/u/bob/a/b");
    assert_int_equal(gh_http_find_location(r), GH_OK);
    assert_ptr_equal(r->loc_conf, re->loc_conf);
    assert_int_equal(gh_http_capture_value(r, 1, &v), GH_OK);
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.data, "bob", 3);
    v = fx_str("rest");
    assert_int_equal(gh_http_get_variable(r, &v, &v), GH_OK);
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.data, "a/b", 3);
    assert_int_equal(gh_http_capture_value(r, 3, &v), GH_DECLINED);
}

#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_nginx_doc_example),
        T(test_longest_prefix),
        T(test_no_match),
        T(test_longest_prefix_random),
        T(test_regex_order_and_noregex),
        T(test_exact_beats_everything),
        T(test_nested),
        T(test_noregex_with_nested_regex),
        T(test_named),
        T(test_duplicates),
        T(test_duplicates_nested_and_named),
        T(test_duplicate_named),
        T(test_auto_redirect),
        T(test_captures_from_location),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
