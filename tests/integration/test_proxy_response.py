"""What gatehouse does with the upstream's answer: proxy_redirect,
X-Accel-Redirect to internal locations, proxy_intercept_errors with
error_page, statuses passed through."""

import pytest

from conftest import simple_server
from upstreams import Seen, respond, route


def redirecting(location, status=302, extra=()):
    return respond(status, [("Location", location)] + list(extra), "moved")


# --------------------------------------------------------------------------
# proxy_redirect

def test_redirect_default(gatehouse, upstream):
    up = upstream()
    up.handler = route({
        "/wordpress/abs": redirecting(f"http://{up.addr}/wordpress/x?y=1"),
        "/wordpress/other": redirecting(f"http://{up.addr}/elsewhere/x"),
        "/wordpress/rel": redirecting("/wordpress/r"),
        "/wordpress/foreign": redirecting("http://other.test/wordpress/x"),
    })
    gh = gatehouse(simple_server(f"""\
        location /blog/ {{ proxy_pass http://{up.addr}/wordpress/; }}
    """))
    base = f"http://localhost:{gh.port}"
    r = gh.get("/blog/abs")
    assert r.status == 302
    # "http://127.0.0.1:P/wordpress/" -> "/blog/", made absolute as any
    # relative redirect gatehouse sends (absolute_redirect on)
    assert r.header("Location") == f"{base}/blog/x?y=1"
    assert gh.get("/blog/other").header("Location") == \
        f"http://{up.addr}/elsewhere/x"
    assert gh.get("/blog/rel").header("Location") == "/wordpress/r"
    assert gh.get("/blog/foreign").header("Location") == \
        "http://other.test/wordpress/x"


def test_redirect_default_absolute_redirect_off(gatehouse, upstream):
    up = upstream(redirecting("PLACEHOLDER"))
    up.handler = redirecting(f"http://{up.addr}/wordpress/x")
    gh = gatehouse(simple_server(f"""\
        absolute_redirect off;
        location /blog/ {{ proxy_pass http://{up.addr}/wordpress/; }}
    """))
    assert gh.get("/blog/a").header("Location") == "/blog/x"


def test_redirect_default_without_uri_part(gatehouse, upstream):
    up = upstream()
    up.handler = redirecting(f"http://{up.addr}/login")
    gh = gatehouse(simple_server(f"""\
        absolute_redirect off;
        location /app {{ proxy_pass http://{up.addr}; }}
    """))
    # proxy_pass without a URI: "http://127.0.0.1:P/" -> "/"
    assert gh.get("/app/x").header("Location") == "/login"


def test_redirect_from_to(gatehouse, upstream):
    up = upstream()
    up.handler = route({
        "/a": redirecting("http://backend.internal:8080/app/page"),
        "/b": redirecting("http://other.test/x"),
        "/c": redirecting("http://backend.internal:8080/app/c", 301),
        "/r": respond(200, [("Refresh",
                             "5; url=http://backend.internal:8080/app/z")],
                      "refresh"),
    })
    gh = gatehouse(simple_server(f"""\
        location / {{
            proxy_redirect http://backend.internal:8080/app/ https://www.example.com/;
            proxy_pass http://{up.addr};
        }}
    """))
    assert gh.get("/a").header("Location") == "https://www.example.com/page"
    assert gh.get("/b").header("Location") == "http://other.test/x"
    r = gh.get("/c")
    assert r.status == 301
    assert r.header("Location") == "https://www.example.com/c"
    assert gh.get("/r").header("Refresh") == \
        "5; url=https://www.example.com/z"


def test_redirect_off(gatehouse, upstream):
    up = upstream()
    up.handler = redirecting(f"http://{up.addr}/wordpress/x")
    gh = gatehouse(simple_server(f"""\
        location /blog/ {{
            proxy_redirect off;
            proxy_pass http://{up.addr}/wordpress/;
        }}
    """))
    assert gh.get("/blog/").header("Location") == \
        f"http://{up.addr}/wordpress/x"


def test_redirect_regex(gatehouse, upstream):
    up = upstream(redirecting("http://node7.internal/users/42/edit"))
    gh = gatehouse(simple_server(f"""\
        location / {{
            proxy_redirect ~^http://node\\d+\\.internal/users/(\\d+)/(.*)$ /u/$1/$2;
            absolute_redirect off;
            proxy_pass http://{up.addr};
        }}
    """))
    assert gh.get("/").header("Location") == "/u/42/edit"


# --------------------------------------------------------------------------
# statuses and bodies passed through

@pytest.mark.parametrize("status", [201, 202, 400, 401, 403, 404, 409, 418,
                                    500, 502, 503])
def test_status_passed_through(gatehouse, upstream, status):
    up = upstream(respond(status, [("X-Up", "1")], f"upstream {status}",
                          reason="Upstream Reason"))
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_pass http://{up.addr}; }}
    """))
    r = gh.get("/")
    assert r.status == status
    assert r.body == f"upstream {status}".encode()
    assert r.header("X-Up") == "1"


def test_unknown_status_and_reason(gatehouse, upstream):
    up = upstream(respond(299, body="odd", reason="Odd Thing"))
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_pass http://{up.addr}; }}
    """))
    r = gh.get("/")
    assert r.status == 299 and r.body == b"odd"
    assert r.reason == "Odd Thing"


def test_interim_100_continue_from_upstream_is_not_passed(gatehouse,
                                                         upstream):
    # (nginx 1.22 mistakes the 100 for the final answer and passes the
    # real head as body bytes; gatehouse skips interim answers)
    from upstreams import raw
    up = upstream(raw(b"HTTP/1.1 100 Continue\r\n\r\n"
                      b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_pass http://{up.addr}; }}
    """))
    r = gh.get("/", method="POST", body="x")
    assert r.status == 200 and r.body == b"ok" and r.interim == []


def test_http10_upstream_response(gatehouse, upstream):
    up = upstream(respond(200, body="old", framing="close",
                          version="HTTP/1.0"))
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_pass http://{up.addr}; }}
    """))
    r = gh.get("/")
    assert r.status == 200 and r.body == b"old" and r.version == "HTTP/1.1"


# --------------------------------------------------------------------------
# X-Accel-Redirect

def test_x_accel_redirect_to_internal_location(gatehouse, upstream):
    up = upstream()
    up.handler = route({
        "/download/": respond(200, [("X-Accel-Redirect",
                                     "/protected/file.bin?k=v"),
                                    ("Content-Type", "text/html"),
                                    ("X-Hidden-By-Redirect", "1")],
                              "upstream body that is not sent"),
        "/named": respond(200, [("X-Accel-Redirect", "@files")], "no"),
    })
    gh = gatehouse(simple_server(f"""\
        location /download/ {{ proxy_pass http://{up.addr}; }}
        location /named {{ proxy_pass http://{up.addr}; }}
        location /protected/ {{
            internal;
            return 200 "internal $uri $args";
        }}
        location @files {{ return 200 "named files"; }}
    """))
    r = gh.get("/download/a", method="POST", body="x")
    assert r.status == 200
    assert r.body == b"internal /protected/file.bin k=v"
    assert r.header("X-Accel-Redirect") is None
    assert r.header("X-Hidden-By-Redirect") is None
    # the internal location is not reachable directly
    assert gh.get("/protected/file.bin").status == 404
    r = gh.get("/named")
    assert r.status == 200 and r.body == b"named files"


def test_x_accel_redirect_ignored(gatehouse, upstream):
    up = upstream(respond(200, [("X-Accel-Redirect", "/protected/x")],
                          "upstream body"))
    gh = gatehouse(simple_server(f"""\
        location / {{
            proxy_ignore_headers X-Accel-Redirect;
            proxy_pass http://{up.addr};
        }}
        location /protected/ {{ internal; return 200 "internal"; }}
    """))
    r = gh.get("/")
    assert r.body == b"upstream body"


def test_x_accel_redirect_to_another_upstream(gatehouse, upstream):
    files = upstream(name="files")
    app = upstream(respond(200, [("X-Accel-Redirect", "/files/abc")], ""))
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_pass http://{app.addr}; }}
        location /files/ {{ internal; proxy_pass http://{files.addr}/store/; }}
    """))
    r = gh.get("/get?id=1")
    assert r.status == 200
    s = Seen(r)
    assert s.method == "GET" and s.target == "/store/abc"


# --------------------------------------------------------------------------
# proxy_intercept_errors

INTERCEPT = """\
    location / {
        proxy_intercept_errors on;
        error_page 404 /custom404.html;
        error_page 500 502 = @fallback;
        proxy_pass http://UP;
    }
    location /nointercept {
        error_page 404 /custom404.html;
        proxy_pass http://UP;
    }
    location = /custom404.html { internal; return 200 "custom not found"; }
    location @fallback { return 200 "fallback page"; }
"""


@pytest.fixture
def intercept(gatehouse, upstream):
    up = upstream()
    up.handler = route({
        "/missing": respond(404, [("X-Up", "1")], "upstream 404 page"),
        "/nointercept": respond(404, [("X-Up", "1")], "upstream 404 page"),
        "/broken": respond(500, [], "upstream 500 page"),
        "/teapot": respond(418, [], "upstream 418"),
        "/ok": respond(200, [], "fine"),
    })
    return gatehouse(simple_server(INTERCEPT.replace("UP", up.addr)))


def test_intercept_errors_uses_error_page(intercept):
    r = intercept.get("/missing")
    assert r.status == 404
    assert r.body == b"custom not found"
    assert r.header("X-Up") is None


def test_intercept_errors_named_location_with_equals(intercept):
    r = intercept.get("/broken")
    assert r.status == 200 and r.body == b"fallback page"


def test_intercept_errors_without_matching_error_page(intercept):
    r = intercept.get("/teapot")
    assert r.status == 418 and r.body == b"upstream 418"
    assert intercept.get("/ok").body == b"fine"


def test_without_intercept_upstream_error_passes(intercept):
    r = intercept.get("/nointercept")
    assert r.status == 404
    assert r.body == b"upstream 404 page"
    assert r.header("X-Up") == "1"


def test_gatehouse_502_uses_error_page(gatehouse, upstream):
    dead = upstream.closed_port()
    gh = gatehouse(simple_server(f"""\
        location / {{
            error_page 502 /down.html;
            proxy_pass http://{dead.addr};
        }}
        location = /down.html {{ internal; return 200 "we are down"; }}
    """))
    r = gh.get("/")
    assert r.status == 502 and r.body == b"we are down"
