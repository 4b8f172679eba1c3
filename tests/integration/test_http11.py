"""HTTP/1.1 server behaviour: keep-alive, pipelining, HEAD, standard
headers, request bodies, limits and timeouts."""

import email.utils
import re
import time

import pytest

from conftest import build_request, simple_server

BASIC = simple_server("""\
    location / { return 200 "uri=$uri"; }
    location = /hello { return 200 "hello"; }
    """)


@pytest.fixture
def basic(gatehouse):
    return gatehouse(BASIC)


# ---------------------------------------------------------------- keep-alive

def test_keepalive_several_requests(basic):
    with basic.conn() as c:
        for i in range(5):
            r = c.request(f"/r{i}")
            assert (r.status, r.text) == (200, f"uri=/r{i}")
            assert (r.header("Connection") or "").lower() == "keep-alive"
        assert not c.wait_closed(0.2)


def test_keepalive_requests_limit(gatehouse):
    gh = gatehouse(simple_server("""\
        keepalive_requests 2;
        location / { return 200 "ok"; }
        """))
    with gh.conn() as c:
        r1 = c.request("/")
        assert (r1.header("Connection") or "").lower() == "keep-alive"
        r2 = c.request("/")
        assert r2.status == 200
        assert r2.header("Connection").lower() == "close"
        assert c.wait_closed(2)


def test_pipelining(basic):
    with basic.conn() as c:
        c.send(build_request("/one") + build_request("/two", method="POST",
                                                     body="xyz")
               + build_request("/hello", method="HEAD")
               + build_request("/three"))
        assert c.read_response().text == "uri=/one"
        assert c.read_response().text == "uri=/two"
        h = c.read_response(method="HEAD")
        assert h.status == 200 and h.body == b""
        assert c.read_response().text == "uri=/three"
        assert not c.wait_closed(0.2)


def test_pipelining_byte_by_byte(basic):
    data = build_request("/one") + build_request("/two")
    with basic.conn() as c:
        for i in range(len(data)):
            c.send(data[i:i + 1])
        assert c.read_response().text == "uri=/one"
        assert c.read_response().text == "uri=/two"


def test_connection_close_honoured(basic):
    with basic.conn() as c:
        r = c.request("/", headers=[("Connection", "close")])
        assert r.status == 200
        assert r.header("Connection").lower() == "close"
        assert c.wait_closed(2)


def test_http10_closes_by_default(basic):
    with basic.conn() as c:
        r = c.request("/", version="HTTP/1.0")
        assert r.status == 200 and r.text == "uri=/"
        assert (r.header("Connection") or "close").lower() == "close"
        assert c.wait_closed(2)


def test_http10_keepalive_on_request(basic):
    with basic.conn() as c:
        r = c.request("/a", version="HTTP/1.0",
                      headers=[("Connection", "keep-alive")])
        assert r.header("Connection").lower() == "keep-alive"
        r = c.request("/b", version="HTTP/1.0",
                      headers=[("Connection", "keep-alive")])
        assert r.text == "uri=/b"


def test_keepalive_timeout_zero_disables(gatehouse):
    gh = gatehouse(simple_server("""\
        keepalive_timeout 0;
        location / { return 200 "ok"; }
        """))
    with gh.conn() as c:
        r = c.request("/")
        assert r.header("Connection").lower() == "close"
        assert c.wait_closed(2)


def test_keepalive_timeout_closes_idle_connection(gatehouse):
    gh = gatehouse(simple_server("""\
        keepalive_timeout 1s;
        location / { return 200 "ok"; }
        """))
    with gh.conn() as c:
        assert c.request("/").status == 200
        t0 = time.monotonic()
        assert c.wait_closed(4), "idle connection not closed"
        dt = time.monotonic() - t0
        assert 0.5 < dt < 3.0, dt
        assert c.buf == b""         # closed silently


# ------------------------------------------------------------ HEAD, headers

def test_head_has_headers_but_no_body(basic):
    with basic.conn() as c:
        r = c.request("/hello", method="HEAD")
        assert r.status == 200
        assert r.header("Content-Length") == "5"
        assert r.body == b""
        # no stray body bytes: the next response parses cleanly
        assert c.request("/hello").body == b"hello"


def test_date_and_server_headers(basic):
    r = basic.get("/")
    date = r.header("Date")
    assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} "
                        r"\d\d:\d\d:\d\d GMT", date), date
    ts = email.utils.parsedate_to_datetime(date).timestamp()
    assert abs(ts - time.time()) < 5
    assert re.fullmatch(r"gatehouse/\d+\.\d+\.\d+", r.header("Server")), \
        r.header("Server")
    assert len(r.header_all("Date")) == 1
    assert len(r.header_all("Server")) == 1
    assert r.header("Content-Length") == str(len(r.body))
    assert r.header("Content-Type")


def test_server_tokens_off(gatehouse):
    gh = gatehouse(simple_server("""\
        server_tokens off;
        location / { return 200 "ok"; }
        location /e { return 404; }
        """))
    assert gh.get("/").header("Server") == "gatehouse"
    r = gh.get("/e")
    assert r.header("Server") == "gatehouse"
    assert b"gatehouse/" not in r.body


# ------------------------------------------------------------ request bodies

def test_content_length_body_then_next_request(basic):
    with basic.conn() as c:
        r = c.request("/post", method="POST", body="hello world")
        assert (r.status, r.text) == (200, "uri=/post")
        assert c.request("/next").text == "uri=/next"


def test_large_content_length_body_then_next_request(basic):
    body = b"x" * 200000
    with basic.conn() as c:
        r = c.request("/big", method="PUT", body=body)
        assert r.status == 200
        assert c.request("/next").text == "uri=/next"


def test_body_in_pieces(basic):
    with basic.conn() as c:
        c.send(build_request("/p", method="POST",
                             headers=[("Content-Length", "10")]))
        c.send(b"01234")
        time.sleep(0.05)
        c.send(b"56789" + build_request("/after"))
        assert c.read_response().text == "uri=/p"
        assert c.read_response().text == "uri=/after"


def test_chunked_body_then_next_request(basic):
    with basic.conn() as c:
        c.send(build_request("/chunked", method="POST",
                             headers=[("Transfer-Encoding", "chunked")])
               + b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
        assert c.read_response().text == "uri=/chunked"
        assert c.request("/next").text == "uri=/next"


def test_chunked_body_with_trailer_in_pieces(basic):
    with basic.conn() as c:
        c.send(build_request("/chunked", method="POST",
                             headers=[("Transfer-Encoding", "chunked")]))
        for piece in (b"a\r\n0123", b"456789\r", b"\n0\r\nX-Trailer: v\r\n",
                      b"\r\n"):
            c.send(piece)
            time.sleep(0.02)
        assert c.read_response().text == "uri=/chunked"
        assert c.request("/next").text == "uri=/next"


def test_expect_100_continue(basic):
    with basic.conn(timeout=3) as c:
        c.send(build_request("/e", method="POST",
                             headers=[("Expect", "100-continue"),
                                      ("Content-Length", "5")]))
        r = c.read_response(skip_interim=False)
        if r.status == 100:
            c.send(b"hello")
            r = c.read_response()
        assert (r.status, r.text) == (200, "uri=/e")


def test_expect_100_continue_over_limit(gatehouse):
    gh = gatehouse(simple_server("""\
        client_max_body_size 10;
        location / { return 200 "ok"; }
        """))
    with gh.conn(timeout=3) as c:
        c.send(build_request("/", method="POST",
                             headers=[("Expect", "100-continue"),
                                      ("Content-Length", "20")]))
        r = c.read_response()
        assert r.status == 413
        assert not r.interim          # no 100 for a body that is refused


def test_client_max_body_size(gatehouse):
    gh = gatehouse(simple_server("""\
        client_max_body_size 10;
        location / { return 200 "ok"; }
        location /big { client_max_body_size 100; return 200 "big"; }
        """))
    assert gh.get("/", method="POST", body=b"x" * 10).status == 200
    r = gh.get("/", method="POST", body=b"x" * 20)
    assert r.status == 413
    assert b"413" in r.body
    assert gh.get("/big", method="POST", body=b"x" * 20).text == "big"


def test_content_length_and_chunked_is_400(basic):
    r = basic.raw(build_request("/", method="POST", headers=[
        ("Content-Length", "5"), ("Transfer-Encoding", "chunked")])
        + b"0\r\n\r\n")
    assert r.status == 400


def test_bad_content_length_is_400(basic):
    r = basic.raw(build_request("/", method="POST",
                                headers=[("Content-Length", "12abc")]))
    assert r.status == 400


def test_unknown_transfer_encoding_is_501(basic):
    r = basic.raw(build_request("/", method="POST",
                                headers=[("Transfer-Encoding", "gzip")]))
    assert r.status == 501


def test_bad_chunk_size_is_rejected(basic):
    """400, or (a `return` needs no body) the response and then a close:
    never read the bad body as the next request."""
    with basic.conn() as c:
        c.send(build_request("/", method="POST",
                             headers=[("Transfer-Encoding", "chunked")])
               + b"zz\r\nhello\r\n0\r\n\r\n" + build_request("/next"))
        r = c.read_response()
        if r.status != 400:
            assert c.wait_closed(2), "connection kept after a bad chunk"
            assert b"uri=/next" not in c.buf


# ------------------------------------------------------- limits, bad input

LIMITS = simple_server("""\
    client_header_buffer_size 1k;
    large_client_header_buffers 4 1k;
    location / { return 200 "ok"; }
    """)


@pytest.fixture
def limits(gatehouse):
    return gatehouse(LIMITS)


def test_long_request_line_is_414(limits):
    r = limits.get("/" + "a" * 2000)
    assert r.status == 414


def test_request_line_fits_large_buffer(limits):
    # longer than client_header_buffer_size, shorter than a large buffer
    assert limits.get("/" + "a" * 900, headers=[("X-Pad", "p" * 600)]).status \
        == 200


def test_too_large_header_line(limits):
    r = limits.get("/", headers=[("X-Big", "b" * 2000)])
    assert r.status in (400, 431), r


def test_too_many_headers(limits):
    # 60 KB of headers: the server stops reading long before the end, and
    # must still deliver its answer (lingering close, not a RST that makes
    # the client's kernel drop the response, RFC 9112 section 9.6)
    hdrs = [(f"X-H{i}", "v" * 300) for i in range(200)]
    r = _send_then_read(limits, build_request("/", headers=hdrs))
    assert r.status in (400, 431), r


def _send_then_read(gh, data):
    """A client that sends everything, then reads a little later."""
    with gh.conn() as c:
        c.send(data)
        time.sleep(0.2)
        return c.read_response()


def test_default_limits_allow_8k_line(basic):
    assert basic.get("/" + "a" * 7000).status == 200
    assert basic.get("/" + "a" * 9000).status == 414


@pytest.mark.parametrize("line", [
    b"BAD LINE HERE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n Folded: y\r\n\r\n",
])
def test_invalid_request_is_400(basic, line):
    r = basic.raw(line)
    assert r.status == 400, (line, r)


def test_http_major_version_3_is_505(basic):
    r = basic.raw(b"GET / HTTP/3.0\r\nHost: x\r\n\r\n")
    assert r.status == 505


def test_client_header_timeout_half_request(gatehouse):
    gh = gatehouse(simple_server("""\
        client_header_timeout 1s;
        location / { return 200 "ok"; }
        """))
    with gh.conn() as c:
        c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        t0 = time.monotonic()
        assert c.wait_closed(4), "half request: connection not closed"
        dt = time.monotonic() - t0
        assert 0.5 < dt < 3.0, dt
        sent_408 = c.buf.startswith(b"HTTP/1.1 408")
        assert c.buf == b"" or sent_408, c.buf
    if not sent_408:
        gh.wait_log("error.log", r"timed out")


def test_client_header_timeout_nothing_sent(gatehouse):
    gh = gatehouse(simple_server("""\
        client_header_timeout 1s;
        location / { return 200 "ok"; }
        """))
    with gh.conn() as c:
        t0 = time.monotonic()
        assert c.wait_closed(4)
        assert time.monotonic() - t0 < 3.0


def test_too_many_small_headers(basic):
    # ~24 KB: within the size limits, over any sane count limit
    hdrs = [(f"X-H{i}", "v") for i in range(2000)]
    r = _send_then_read(basic, build_request("/", headers=hdrs))
    assert r.status in (400, 431), r


def test_many_headers_within_limits(basic):
    hdrs = [(f"X-H{i}", "v" * 20) for i in range(60)]
    assert basic.get("/", headers=hdrs).status == 200
