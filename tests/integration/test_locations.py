"""Location selection exactly as nginx does it (the tables are nginx's
documentation examples), URI normalisation before matching."""

import pytest

from conftest import simple_server

DOC_EXAMPLE = simple_server("""\
    location = / {
        return 200 "A";
    }
    location / {
        return 200 "B";
    }
    location /documents/ {
        return 200 "C";
    }
    location ^~ /images/ {
        return 200 "D";
    }
    location ~* \\.(gif|jpg|jpeg)$ {
        return 200 "E";
    }
    """)


@pytest.fixture
def doc_example(gatehouse):
    return gatehouse(DOC_EXAMPLE)


@pytest.mark.parametrize("uri,conf", [
    ("/", "A"),                          # exact match
    ("/?a=b", "A"),                      # arguments are not matched
    ("/index.html", "B"),
    ("/documents/document.html", "C"),
    ("/documents/", "C"),
    ("/images/1.gif", "D"),              # ^~ stops the regex search
    ("/images/sub/2.jpg", "D"),
    ("/documents/1.jpg", "E"),           # regex beats the longest prefix
    ("/documents/1.JPG", "E"),           # ~* is case-insensitive
    ("/other/x.jpeg", "E"),
    ("/documents?x=1.jpg", "B"),
])
def test_nginx_documentation_example(doc_example, uri, conf):
    r = doc_example.get(uri)
    assert (r.status, r.text) == (200, conf), (uri, r)


def test_exact_does_not_match_longer(gatehouse):
    gh = gatehouse(simple_server("""\
        location = /exact { return 200 "exact"; }
        location / { return 200 "prefix"; }
        """))
    assert gh.get("/exact").text == "exact"
    assert gh.get("/exact/").text == "prefix"
    assert gh.get("/exactly").text == "prefix"


def test_regexes_in_order_of_appearance(gatehouse):
    gh = gatehouse(simple_server("""\
        location /r/ { return 200 "prefix-r"; }
        location ~ ^/r/ { return 200 "first"; }
        location ~ ^/r/x { return 200 "second"; }
        location ~* ^/R/Y { return 200 "ci"; }
        location / { return 200 "prefix"; }
        """))
    assert gh.get("/r/x").text == "first"
    assert gh.get("/r/y").text == "first"
    assert gh.get("/R/y").text == "ci"
    assert gh.get("/R/z").text == "prefix"
    assert gh.get("/z").text == "prefix"


def test_longest_prefix_wins_regardless_of_order(gatehouse):
    gh = gatehouse(simple_server("""\
        location /a/ { return 200 "a"; }
        location /a/b/c/ { return 200 "abc"; }
        location /a/b/ { return 200 "ab"; }
        """))
    assert gh.get("/a/b/c/d").text == "abc"
    assert gh.get("/a/b/x").text == "ab"
    assert gh.get("/a/x").text == "a"
    assert gh.get("/x").status == 404


def test_nested_locations(gatehouse):
    gh = gatehouse(simple_server("""\
        location /a/ {
            return 200 "a";
            location /a/b/ {
                return 200 "ab";
            }
            location ~ \\.php$ {
                return 200 "a-php";
            }
        }
        location ~ \\.php$ {
            return 200 "php";
        }
        """))
    assert gh.get("/a/x").text == "a"
    assert gh.get("/a/b/c").text == "ab"
    assert gh.get("/a/x.php").text == "a-php"
    assert gh.get("/a/b/c.php").text == "a-php"
    assert gh.get("/x.php").text == "php"


def test_named_location_via_error_page(gatehouse):
    gh = gatehouse(simple_server("""\
        error_page 404 = @fallback;
        location / { return 404; }
        location @fallback { return 200 "fallback $uri"; }
        """))
    r = gh.get("/missing")
    assert (r.status, r.text) == (200, "fallback /missing")


def test_named_location_not_reachable_by_uri(gatehouse):
    gh = gatehouse(simple_server("""\
        location @named { return 200 "named"; }
        location / { return 200 "prefix $uri"; }
        """))
    assert gh.get("/@named").text == "prefix /@named"


def test_blog_vs_blog_slash(gatehouse):
    gh = gatehouse(simple_server("""\
        location /blog { return 200 "blog"; }
        location /blog/ { return 200 "blog-slash"; }
        location / { return 200 "root"; }
        """))
    assert gh.get("/blog").text == "blog"
    assert gh.get("/blogpost").text == "blog"
    assert gh.get("/blog/").text == "blog-slash"
    assert gh.get("/blog/post").text == "blog-slash"
    assert gh.get("/blo").text == "root"


def test_regex_captures_in_location(gatehouse):
    gh = gatehouse(simple_server("""\
        location ~ ^/user/(?<id>\\d+)/(\\w+)$ { return 200 "user $id $2"; }
        """))
    assert gh.get("/user/42/edit").text == "user 42 edit"


URI_CONF = simple_server("""\
    location = /b/c/d { return 200 "bcd $uri $request_uri"; }
    location = /Abc { return 200 "decoded $uri"; }
    location = "/x y" { return 200 "space $uri"; }
    location /documents/ { return 200 "docs $uri"; }
    location / { return 200 "root $uri"; }
    """)


@pytest.fixture
def uri_server(gatehouse):
    return gatehouse(URI_CONF)


@pytest.mark.parametrize("raw,expect", [
    ("/a/../b/./c//d", "bcd /b/c/d /a/../b/./c//d"),
    ("/b/c/./d", "bcd /b/c/d /b/c/./d"),
    ("/b//c///d", "bcd /b/c/d /b//c///d"),
    ("/b/c/d/.", "root /b/c/d/"),
    ("/%41bc", "decoded /Abc"),
    ("/%41b%63", "decoded /Abc"),
    ("/x%20y", "space /x y"),
    ("//documents///a", "docs /documents/a"),
    ("/documents/x/../y", "docs /documents/y"),
    ("/documents/..", "root /"),
    ("/a/%2e%2e/b/c/d", "bcd /b/c/d /a/%2e%2e/b/c/d"),
])
def test_uri_normalised_before_matching(uri_server, raw, expect):
    r = uri_server.get(raw)
    assert (r.status, r.text) == (200, expect), (raw, r)


@pytest.mark.parametrize("raw", ["/..", "/../x", "/a/../../x",
                                 "/%2e%2e/x", "/a/b/../../../c"])
def test_dotdot_above_root_is_400(uri_server, raw):
    r = uri_server.get(raw)
    assert r.status == 400, (raw, r)


@pytest.mark.parametrize("raw", ["/%zz", "/a%2", "/%00x"])
def test_bad_percent_encoding_is_400(uri_server, raw):
    r = uri_server.get(raw)
    assert r.status == 400, (raw, r)


def test_absolute_uri_in_request_line(uri_server):
    r = uri_server.get("http://localhost/b/c/d?x=1")
    assert r.status == 200
    assert r.text.startswith("bcd /b/c/d ")
