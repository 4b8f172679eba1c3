"""proxy_pass URI rules: what request-target reaches the upstream.

nginx's rules: with a URI part in proxy_pass, the part of the normalised
URI that matched the location prefix is replaced by it (escaped again);
without one, the URI goes as the client sent it (percent-encoding, `..`,
query and all).  The echo upstream reports the request line it received.
"""

import pytest

from conftest import simple_server
from upstreams import Seen


def target(gh, path, **kw):
    r = gh.get(path, **kw)
    assert r.status == 200, r
    return Seen(r).target


# --------------------------------------------------------------------------
# prefix locations with a URI part: /blog vs /blog/

@pytest.fixture
def blog_slash(gatehouse, upstream):
    up = upstream()
    return gatehouse(simple_server(f"""\
        location /blog/ {{ proxy_pass http://{up.addr}/wordpress/; }}
        location / {{ return 200 "fallback"; }}
    """))


@pytest.mark.parametrize("path, sent", [
    ("/blog/my-post", "/wordpress/my-post"),
    ("/blog/", "/wordpress/"),
    ("/blog/a/b.html?x=1&y=%2F", "/wordpress/a/b.html?x=1&y=%2F"),
    # the normalised URI is used, then escaped again
    ("/blog/a%20b", "/wordpress/a%20b"),
    ("/blog/%7Euser", "/wordpress/~user"),
    ("/blog/x/../my-post", "/wordpress/my-post"),
    ("/blog//double", "/wordpress/double"),
])
def test_slash_location_with_uri_part(blog_slash, path, sent):
    assert target(blog_slash, path) == sent


def test_slash_location_redirects_bare_name(blog_slash):
    # `location /blog/` with proxy_pass answers /blog with a 301 to /blog/
    r = blog_slash.get("/blog")
    assert r.status == 301
    assert r.header("Location") == f"http://localhost:{blog_slash.port}/blog/"
    r = blog_slash.get("/blog?a=1")
    assert r.status == 301
    assert r.header("Location") == \
        f"http://localhost:{blog_slash.port}/blog/?a=1"


def test_slash_location_does_not_take_longer_names(blog_slash):
    r = blog_slash.get("/blogpost")
    assert r.status == 200 and r.body == b"fallback"


@pytest.fixture
def blog_bare(gatehouse, upstream):
    up = upstream()
    return gatehouse(simple_server(f"""\
        location /blog {{ proxy_pass http://{up.addr}/wordpress/; }}
        location / {{ return 200 "fallback"; }}
    """))


@pytest.mark.parametrize("path, sent", [
    # "/blog" is replaced by "/wordpress/": what follows is kept as is,
    # so /blog/my-post gets a double slash (nginx does exactly this)
    ("/blog/my-post", "/wordpress//my-post"),
    ("/blog", "/wordpress/"),
    ("/blogpost", "/wordpress/post"),
    ("/blog?q=1", "/wordpress/?q=1"),
])
def test_bare_location_with_uri_part(blog_bare, path, sent):
    assert target(blog_bare, path) == sent


def test_bare_location_with_uri_part_without_slash(gatehouse, upstream):
    # the tutorial form: location /blog/ + proxy_pass .../wordpress/
    # gives /wordpress/my-post; /blog + .../wordpress (no slash) too
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location /blog {{ proxy_pass http://{up.addr}/wordpress; }}
    """))
    assert target(gh, "/blog/my-post") == "/wordpress/my-post"
    assert target(gh, "/blog") == "/wordpress"
    assert target(gh, "/blogpost") == "/wordpresspost"


def test_uri_part_is_just_a_slash(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location /api/ {{ proxy_pass http://{up.addr}/; }}
    """))
    assert target(gh, "/api/v1/users?id=7") == "/v1/users?id=7"
    assert target(gh, "/api/") == "/"


# --------------------------------------------------------------------------
# no URI part: the client's URI, untouched

@pytest.fixture
def app(gatehouse, upstream):
    up = upstream()
    return gatehouse(simple_server(f"""\
        location /app {{ proxy_pass http://{up.addr}; }}
        location = /exact {{ proxy_pass http://{up.addr}; }}
        location ~ ^/re/(.*)$ {{ proxy_pass http://{up.addr}; }}
        location ~* \\.PHP$ {{ proxy_pass http://{up.addr}; }}
    """))


@pytest.mark.parametrize("path", [
    "/app",
    "/app/",
    "/app/x",
    "/appendix",
    "/app/a%20b%2Fc?q=%2F%3F&r=a+b",
    "/app/../app/x",
    "/app//x///y",
    "/app/%7Euser/%E2%82%AC",
    "/app/x?",
    "/app/x;p=1?a",
])
def test_no_uri_part_passes_raw_uri(app, path):
    assert target(app, path) == path


def test_no_uri_part_exact_location(app):
    assert target(app, "/exact?a=1") == "/exact?a=1"


def test_no_uri_part_regex_location(app):
    assert target(app, "/re/x%41y?b=2") == "/re/x%41y?b=2"
    assert target(app, "/dir/index.php?x") == "/dir/index.php?x"


def test_absolute_form_request_target(app):
    # an absolute-form target: the origin-form part goes upstream
    r = app.raw(b"GET http://localhost/app/abs?q=1 HTTP/1.1\r\n"
                b"Host: localhost\r\n\r\n")
    assert r.status == 200
    assert Seen(r).target == "/app/abs?q=1"


# --------------------------------------------------------------------------
# exact locations with a URI part

def test_exact_location_with_uri_part(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location = /exact {{ proxy_pass http://{up.addr}/target; }}
        location = /e/ {{ proxy_pass http://{up.addr}/t/; }}
    """))
    assert target(gh, "/exact") == "/target"
    assert target(gh, "/exact?a=1") == "/target?a=1"
    assert target(gh, "/e/") == "/t/"


# --------------------------------------------------------------------------
# a URI part where nginx forbids one

NGINX_URI_ERR = ('"proxy_pass" cannot have URI part in location given by '
                 'regular expression, or inside named location, or inside '
                 '"if" statement, or inside "limit_except" block')


@pytest.mark.parametrize("loc", [
    "location ~ ^/re/ { proxy_pass http://127.0.0.1:9/x/; }",
    "location ~* \\.php$ { proxy_pass http://127.0.0.1:9/; }",
    "location @named { proxy_pass http://127.0.0.1:9/uri; }",
])
def test_uri_part_in_regex_or_named_location_is_an_error(gatehouse, loc):
    gh = gatehouse(simple_server(loc), start=False)
    r = gh.run("-t")
    assert r.returncode != 0
    assert NGINX_URI_ERR in r.stderr, r.stderr
    assert gh.where("proxy_pass") in r.stderr, r.stderr


def test_regex_location_without_uri_part_is_fine(gatehouse):
    gh = gatehouse(simple_server(
        "location ~ ^/re/ { proxy_pass http://127.0.0.1:9; }"), start=False)
    r = gh.run("-t")
    assert r.returncode == 0, r.stderr


# --------------------------------------------------------------------------
# named locations

def test_named_location_via_error_page(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location /missing {{ error_page 404 = @fallback; return 404; }}
        location @fallback {{ proxy_pass http://{up.addr}; }}
    """))
    r = gh.get("/missing/x%41?q=1")
    assert r.status == 200, r
    # the client's URI as sent
    assert Seen(r).target == "/missing/x%41?q=1"


def test_named_location_passes_upstream_status(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location /m {{ error_page 404 = @fallback; return 404; }}
        location @fallback {{ proxy_pass http://{up.addr}; }}
    """))
    r = gh.get("/m", headers=[("X-Echo-Status", "201")])
    assert r.status == 201
    assert Seen(r).target == "/m"


# --------------------------------------------------------------------------
# variables in proxy_pass

def test_request_uri_variable(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location /v/ {{ proxy_pass http://{up.addr}$request_uri; }}
        location /w/ {{ proxy_pass http://{up.addr}/pre$request_uri; }}
        location /u/ {{ proxy_pass http://{up.addr}/u$uri$is_args$args; }}
    """))
    for path in ("/v/a%20b/../c?x=%2F", "/v/", "/v/plain"):
        r = gh.get(path)
        assert r.status == 200, r
        s = Seen(r)
        assert s.target == path
        assert s.header("Host") == up.addr
    assert target(gh, "/w/x?y") == "/pre/w/x?y"
    # $uri is the decoded URI: exactly what the variable holds goes out
    assert target(gh, "/u/a?k=v") == "/u/u/a?k=v"


def test_variable_proxy_pass_host_and_port(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location / {{
            proxy_set_header X-PH $proxy_host;
            proxy_set_header X-PP $proxy_port;
            proxy_pass http://127.0.0.1:{up.port}$request_uri;
        }}
    """))
    s = Seen(gh.get("/x"))
    assert s.header("Host") == f"127.0.0.1:{up.port}"
    assert s.header("X-PH") == f"127.0.0.1:{up.port}"
    assert s.header("X-PP") == str(up.port)
