"""proxy_request_buffering off: the request body goes upstream as it
arrives, byte-exact; Content-Length bodies keep their length, chunked ones
stay chunked to an HTTP/1.1 upstream (and are buffered for HTTP/1.0)."""

import time

import pytest

from conftest import build_request
from upstreams import Seen, pattern_chunks, pattern_sha256, read_streamed, \
    send_body

KiB = 1024
MiB = 1024 * 1024


def proxy(up, version="1.1"):
    return f"""\
        server {{
            listen 127.0.0.1:{{port}};
            client_max_body_size 0;
            location / {{
                proxy_request_buffering off;
                proxy_http_version {version};
                proxy_pass http://{up.addr};
            }}
        }}
    """


def upload(gh, n, chunked=False, piece=65511):
    with gh.conn(timeout=30) as c:
        hdrs = [("Transfer-Encoding", "chunked")] if chunked \
            else [("Content-Length", str(n))]
        head = build_request("/up", "POST", "localhost", hdrs)
        send_body(c, head, pattern_chunks(n, piece), chunked=chunked)
        r = read_streamed(c)
    assert r.status == 200, r
    return Seen(r)


@pytest.mark.parametrize("n", [1, 1 * KiB, 3 * MiB])
def test_streamed_content_length_body(gatehouse, upstream, n):
    up = upstream()
    gh = gatehouse(proxy(up))
    s = upload(gh, n)
    assert s.body_len == n
    assert s.body_sha256 == pattern_sha256(n)
    assert s.header("Content-Length") == str(n)


@pytest.mark.parametrize("n", [0, 1 * KiB, 3 * MiB])
def test_streamed_chunked_body_stays_chunked(gatehouse, upstream, n):
    up = upstream()
    gh = gatehouse(proxy(up))
    s = upload(gh, n, chunked=True, piece=251 * 31)
    assert s.body_len == n
    assert s.body_sha256 == pattern_sha256(n)
    assert s.header("Transfer-Encoding") == "chunked"
    assert s.header("Content-Length") is None


def test_chunked_body_to_http10_upstream_is_buffered(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(proxy(up, "1.0"))
    s = upload(gh, 100 * KiB, chunked=True)
    assert s.body_sha256 == pattern_sha256(100 * KiB)
    assert s.header("Content-Length") == str(100 * KiB)


def test_upstream_sees_the_body_before_the_client_finishes(gatehouse,
                                                           upstream):
    """With buffering off the first bytes reach the upstream while the
    client is still sending; with buffering on nothing would arrive until
    the end."""
    up = upstream()
    gh = gatehouse(proxy(up))
    with gh.conn(timeout=10) as c:
        c.send(build_request("/up", "POST", "localhost",
                             [("Content-Length", "20")]) + b"0123456789")
        deadline = time.time() + 3
        while time.time() < deadline and not up.connections:
            time.sleep(0.02)
        assert up.connections, "upstream not contacted before the body ended"
        c.send(b"abcdefghij")
        r = c.read_response()
    assert r.status == 200
    assert Seen(r).body_len == 20
