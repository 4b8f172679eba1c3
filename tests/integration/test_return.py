"""`return` forms and `error_page`."""

import pytest

from conftest import simple_server

RETURNS = simple_server("""\
    location = /301 { return 301 /x; }
    location = /301abs { return 301 http://other.test/y; }
    location = /302 { return 302 "/rel?a=$arg_a"; }
    location = /307 { return 307 /t; }
    location = /url { return https://example.com/; }
    location = /204 { return 204; }
    location = /200 { return 200; }
    location = /404 { return 404; }
    location = /404text { return 404 "gone"; }
    location = /500 { return 500; }
    location = /444 { return 444; }
    location = /503 { return 503; }
    """)


@pytest.fixture
def returns(gatehouse):
    return gatehouse(RETURNS)


def test_return_301_relative_is_made_absolute(returns):
    r = returns.get("/301")
    assert r.status == 301
    assert r.header("Location") == f"http://localhost:{returns.port}/x"
    assert r.header("Content-Type", "").startswith("text/html")
    assert b"301 Moved Permanently" in r.body


def test_return_301_uses_host_header(returns):
    r = returns.get("/301", host="www.test:8080")
    assert r.header("Location") == f"http://www.test:{returns.port}/x"


def test_return_301_absolute(returns):
    r = returns.get("/301abs")
    assert (r.status, r.header("Location")) == (301, "http://other.test/y")


def test_return_302_with_variable(returns):
    r = returns.get("/302?a=5")
    assert r.status == 302
    assert r.header("Location") == \
        f"http://localhost:{returns.port}/rel?a=5"


def test_return_307(returns):
    r = returns.get("/307")
    assert r.status == 307
    assert r.header("Location").endswith("/t")


def test_return_url_is_302(returns):
    r = returns.get("/url")
    assert (r.status, r.header("Location")) == (302, "https://example.com/")


def test_return_204(returns):
    with returns.conn() as c:
        r = c.request("/204")
        assert r.status == 204
        assert r.header("Content-Type") is None
        # no body bytes: the connection stays in sync
        assert c.request("/404text").body == b"gone"


def test_return_200_without_text(returns):
    r = returns.get("/200")
    assert r.status == 200
    assert r.body == b""
    assert r.header("Content-Length") == "0"


def test_return_404_html_page(returns):
    r = returns.get("/404")
    assert r.status == 404
    assert r.header("Content-Type", "").startswith("text/html")
    assert b"<title>404 Not Found</title>" in r.body
    assert r.header("Content-Length") == str(len(r.body))


def test_return_404_with_text(returns):
    r = returns.get("/404text")
    assert (r.status, r.body) == (404, b"gone")


def test_return_500_and_503(returns):
    assert b"500 Internal Server Error" in returns.get("/500").body
    assert b"503 Service" in returns.get("/503").body


def test_return_444_closes_without_response(returns):
    with returns.conn() as c:
        c.send(b"GET /444 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert c.wait_closed(3)
        assert c.buf == b""


def test_return_on_keepalive_connection_mix(returns):
    with returns.conn() as c:
        assert c.request("/301").status == 301
        assert c.request("/404").status == 404
        assert c.request("/200").status == 200


# ---------------------------------------------------------------- error_page

ERROR_PAGES = simple_server("""\
    error_page 404 /custom404;
    error_page 502 503 /5xx;
    error_page 500 http://example.com/err;
    location = /custom404 { internal; return 200 "custom $uri"; }
    location = /5xx { return 200 "5xx page"; }
    location /missing { return 404; }
    location /changed {
        error_page 404 =200 /x;
        return 404;
    }
    location = /x { return 200 "x page"; }
    location /bad { return 502; }
    location /unavail { return 503; }
    location /err { return 500; }
    location /moved {
        error_page 404 =301 http://example.com/moved;
        return 404;
    }
    location /loop {
        error_page 404 /loop2;
        return 404;
    }
    location /loop2 { return 404; }
    """)


@pytest.fixture
def errors(gatehouse):
    return gatehouse(ERROR_PAGES)


def test_error_page_keeps_status(errors):
    r = errors.get("/missing")
    assert (r.status, r.text) == (404, "custom /custom404")


def test_error_page_internal_location_not_reachable(errors):
    r = errors.get("/custom404")
    assert r.status == 404


def test_error_page_with_new_status(errors):
    r = errors.get("/changed")
    assert (r.status, r.text) == (200, "x page")


def test_error_page_several_codes(errors):
    assert (errors.get("/bad").status, errors.get("/bad").text) == \
        (502, "5xx page")
    assert errors.get("/unavail").status == 503


def test_error_page_url_redirect(errors):
    r = errors.get("/err")
    assert (r.status, r.header("Location")) == (302, "http://example.com/err")


def test_error_page_url_with_code(errors):
    r = errors.get("/moved")
    assert (r.status, r.header("Location")) == \
        (301, "http://example.com/moved")


def test_error_page_does_not_loop(errors):
    r = errors.get("/loop")
    assert r.status == 404
    assert b"404 Not Found" in r.body
