"""Bodies through the proxy, byte-exact by sha256: request bodies up
(Content-Length and chunked; buffered, so sent upstream with a length),
response bodies down (Content-Length, chunked, close-delimited; re-framed
for HTTP/1.1 and HTTP/1.0 clients), buffering off streaming, SSE."""

import socket
import time

import pytest

from conftest import build_request
from upstreams import (Seen, echo, pattern, pattern_chunks, pattern_sha256,
                       read_streamed, send_body, sha256, trickle)

KiB = 1024
MiB = 1024 * 1024

SIZES = [0, 1 * KiB, 1 * MiB, 10 * MiB]


def proxy(up, extra=""):
    return f"""\
        server {{
            listen 127.0.0.1:{{port}};
            client_max_body_size 0;
            location / {{
                {extra}
                proxy_pass http://{up.addr};
            }}
        }}
    """


def upload(gh, n, chunked=False, path="/up", piece=65511):
    """POST the n-byte pattern; returns (Streamed response, Seen)."""
    with gh.conn(timeout=30) as c:
        hdrs = [("Transfer-Encoding", "chunked")] if chunked \
            else [("Content-Length", str(n))]
        head = build_request(path, "POST", "localhost", hdrs)
        send_body(c, head, pattern_chunks(n, piece), chunked=chunked)
        r = read_streamed(c)
    assert r.status == 200, r
    return r, Seen(r)


# --------------------------------------------------------------------------
# request bodies

@pytest.mark.parametrize("n", SIZES, ids=["0B", "1KiB", "1MiB", "10MiB"])
def test_request_body_content_length(gatehouse, upstream, n):
    up = upstream()
    gh = gatehouse(proxy(up))
    r, s = upload(gh, n)
    assert s.body_len == n
    assert s.body_sha256 == pattern_sha256(n)
    assert s.header("Content-Length") == str(n)
    assert not s.chunked


@pytest.mark.parametrize("n", [0, 1 * KiB, 1 * MiB, 10 * MiB],
                         ids=["0B", "1KiB", "1MiB", "10MiB"])
def test_request_body_chunked_goes_up_with_length(gatehouse, upstream, n):
    up = upstream()
    gh = gatehouse(proxy(up))
    r, s = upload(gh, n, chunked=True, piece=251 * 17)
    # the body is buffered, so the upstream gets a Content-Length
    assert s.body_len == n
    assert s.body_sha256 == pattern_sha256(n)
    assert s.header("Content-Length") == str(n)
    assert s.header("Transfer-Encoding") is None
    assert not s.chunked


def test_request_body_small_memory_buffer_uses_temp_file(gatehouse,
                                                         upstream):
    up = upstream()
    gh = gatehouse(proxy(up, "client_body_buffer_size 1k;"))
    r, s = upload(gh, 300 * KiB)
    assert s.body_sha256 == pattern_sha256(300 * KiB)


def test_request_body_too_large_is_413_and_not_proxied(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(proxy(up).replace("client_max_body_size 0;",
                                     "client_max_body_size 1k;"))
    r = gh.get("/", method="POST", body=b"x" * 2000)
    assert r.status == 413
    assert up.requests == []


def test_request_body_default_client_max_body_size(gatehouse, upstream):
    # nginx's default limit is 1m: exactly 1 MiB passes
    up = upstream()
    gh = gatehouse(proxy(up).replace("client_max_body_size 0;", ""))
    r, s = upload(gh, 1 * MiB)
    assert s.body_sha256 == pattern_sha256(1 * MiB)


def test_put_and_patch_bodies(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(proxy(up))
    for method in ("PUT", "PATCH", "DELETE"):
        body = f"body of {method}".encode()
        s = Seen(gh.get("/m", method=method, body=body))
        assert s.method == method and s.body_sha256 == sha256(body)


# --------------------------------------------------------------------------
# response bodies

@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
@pytest.mark.parametrize("n", SIZES, ids=["0B", "1KiB", "1MiB", "10MiB"])
def test_response_body_http11_client(gatehouse, upstream, n, framing):
    up = upstream(pattern(n, framing))
    gh = gatehouse(proxy(up))
    with gh.conn(timeout=30) as c:
        c.send(build_request("/down"))
        r = read_streamed(c)
    assert r.status == 200
    assert r.body_len == n and r.sha256 == pattern_sha256(n)
    if framing == "length":
        assert r.framing == "length"
        assert r.header("Content-Length") == str(n)
    else:
        # an unknown length is chunked to an HTTP/1.1 client
        assert r.framing == "chunked", r
        assert r.header("Content-Length") is None


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_response_body_http10_client(gatehouse, upstream, framing):
    n = 200 * KiB
    up = upstream(pattern(n, framing))
    gh = gatehouse(proxy(up))
    with gh.conn(timeout=30) as c:
        c.send(build_request("/down", version="HTTP/1.0"))
        r = read_streamed(c)
        assert r.body_len == n and r.sha256 == pattern_sha256(n)
        assert r.header("Transfer-Encoding") is None
        if framing == "length":
            assert r.framing == "length"
        else:
            # close-delimited for HTTP/1.0
            assert r.framing == "close"
            assert c.wait_closed(1.0)


def test_response_trailers_and_chunk_extensions_upstream(gatehouse,
                                                         upstream):
    from upstreams import raw
    up = upstream(raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n"
                      b"X-Trailer: t\r\n\r\n"))
    gh = gatehouse(proxy(up))
    r = gh.get("/")
    assert r.status == 200 and r.body == b"hello world"


def test_head_request_keeps_length(gatehouse, upstream):
    up = upstream(pattern(12345))
    gh = gatehouse(proxy(up))
    with gh.conn() as c:
        r = c.request("/", method="HEAD")
        assert r.status == 200 and r.body == b""
        assert r.header("Content-Length") == "12345"
        r = c.request("/")                     # the connection is still in sync
        assert len(r.body) == 12345
    assert up.requests[0].method == "HEAD"


def test_204_and_304_have_no_body(gatehouse, upstream):
    from upstreams import respond
    up = upstream(respond(204))
    gh = gatehouse(proxy(up))
    with gh.conn() as c:
        r = c.request("/")
        assert r.status == 204 and r.body == b""
        assert r.header("Transfer-Encoding") is None
        r = c.request("/")
        assert r.status == 204


@pytest.mark.slow
def test_100_mib_both_ways(gatehouse, upstream):
    n = 100 * MiB
    up = upstream(pattern(n, "length"))
    gh = gatehouse(proxy(up))
    # down: streamed from the upstream, hashed as it arrives
    with gh.conn(timeout=60) as c:
        c.send(build_request("/down"))
        r = read_streamed(c)
    assert r.status == 200 and r.body_len == n
    assert r.sha256 == pattern_sha256(n)
    # up: a chunked request body, streamed from a generator
    up.handler = echo
    r, s = upload(gh, n, chunked=True)
    assert s.body_len == n and s.body_sha256 == pattern_sha256(n)
    assert s.header("Content-Length") == str(n)


# --------------------------------------------------------------------------
# streaming: proxy_buffering off, X-Accel-Buffering: no

PIECES = [b"data: %d\n\n" % i for i in range(5)]
DELAY = 0.25


def check_streamed(r, t0):
    """Each piece reached the client soon after the upstream sent it:
    the first long before the upstream finished."""
    assert r.status == 200
    assert r.body == b"".join(PIECES)
    first = r.pieces[0][0] - t0
    last = r.pieces[-1][0] - t0
    total = DELAY * (len(PIECES) - 1)
    assert first < total / 2, (first, total, r.pieces)
    assert last - first >= total * 0.6, r.pieces
    assert len(r.pieces) >= 3, r.pieces


@pytest.mark.parametrize("framing", ["chunked", "close", "length"])
def test_buffering_off_delivers_each_piece(gatehouse, upstream, framing):
    up = upstream(trickle(PIECES, DELAY, framing=framing))
    gh = gatehouse(proxy(up, "proxy_buffering off;"))
    with gh.conn() as c:
        t0 = time.monotonic()
        c.send(build_request("/events"))
        r = read_streamed(c)
    check_streamed(r, t0)


def test_x_accel_buffering_no(gatehouse, upstream):
    up = upstream(trickle(PIECES, DELAY, headers=[
        ("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"),
        ("X-Accel-Buffering", "no")]))
    gh = gatehouse(proxy(up))                  # proxy_buffering on
    with gh.conn() as c:
        t0 = time.monotonic()
        c.send(build_request("/events", headers=[("Accept",
                                                  "text/event-stream")]))
        r = read_streamed(c)
    check_streamed(r, t0)
    assert r.header("Content-Type") == "text/event-stream"
    assert r.header("X-Accel-Buffering") is None


def test_buffering_off_large_body_exact(gatehouse, upstream):
    n = 5 * MiB + 7
    up = upstream(pattern(n, "chunked"))
    gh = gatehouse(proxy(up, "proxy_buffering off; proxy_buffer_size 4k;"))
    with gh.conn(timeout=30) as c:
        c.send(build_request("/"))
        r = read_streamed(c)
    assert r.body_len == n and r.sha256 == pattern_sha256(n)


def test_slow_client_large_body_exact(gatehouse, upstream):
    # the client reads slowly at first: gatehouse must hold back
    # (bounded memory) and still deliver every byte in order
    n = 8 * MiB
    up = upstream(pattern(n, "length"))
    gh = gatehouse(proxy(up))
    with gh.conn(timeout=30) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        c.send(build_request("/"))
        time.sleep(0.5)
        r = read_streamed(c)
    assert r.body_len == n and r.sha256 == pattern_sha256(n)
