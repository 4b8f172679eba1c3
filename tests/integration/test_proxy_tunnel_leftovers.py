"""Upgraded connections (101, websockets): the bytes that came with a
head must all cross the tunnel, in order, however many there are.

The client's: frames pipelined behind the upgrade request in the same
write sit in the client's head buffer (up to large_client_header_buffers)
when the tunnel starts, and there can be more of them than the tunnel's
own client -> upstream buffer (proxy_buffer_size) holds.  The upstream's:
data right behind its 101 head sits in the proxy's head buffer.  Each
case over plain TCP and over TLS on the client side.
"""

import threading
import time

import pytest

from conftest import build_request, simple_server
from tlsutil import pki, client_ctx, tls_conn       # noqa: F401
from upstreams import pattern_bytes, switch, ws_frame, ws_read_frame

TUNNEL_BUF = 4096             # proxy_buffer_size below

HANDSHAKE = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
             ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
             ("Sec-WebSocket-Version", "13")]


def server(pki_, tls, addr, extra=""):
    body = f"""
        {extra}
        location / {{
            proxy_pass http://{addr};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_buffer_size {TUNNEL_BUF};
            proxy_read_timeout 10s;
        }}
    """
    if not tls:
        return simple_server(body)
    crt, key = pki_.cert("a.test")
    return simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        {body}
    """, listen="127.0.0.1:{port} ssl")


def connect(gh, pki_, tls):
    if tls:
        return tls_conn(gh.port, "a.test", client_ctx(pki_), timeout=10)
    c = gh.conn()
    c.settimeout(10)
    return c


def messages(total, size):
    """Distinct binary messages of `size` bytes, `total` bytes in all."""
    return [bytes([i % 251]) * 3 + pattern_bytes(size - 3)
            for i in range((total + size - 1) // size)]


# head buffer big enough for head + frames in one read; or the default
# 1k buffer, which a large head grows to an 8k one (the usual way)
HEAD_BUFFERS = {
    "big-buffer": ("client_header_buffer_size 64k;", []),
    "grown-buffer": ("", [("X-Pad", "p" * 1500)]),
}


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize("how", sorted(HEAD_BUFFERS))
def test_frames_with_the_handshake_reach_the_echo(gatehouse, upstream, pki,
                                                  tls, how):
    ws = upstream.websocket()
    extra, pad = HEAD_BUFFERS[how]
    gh = gatehouse(server(pki, tls, ws.addr, extra))
    msgs = messages(3 * TUNNEL_BUF, 100)
    frames = b"".join(ws_frame(m, opcode=2) for m in msgs)
    with connect(gh, pki, tls) as c:
        c.send(build_request("/burst", host="a.test",
                             headers=HANDSHAKE + pad) + frames)
        r = c.read_response()
        assert r.status == 101
        got = [ws_read_frame(c) for _ in msgs]
        assert got == [(2, m) for m in msgs]
        assert ws.messages == msgs
        c.send(ws_frame(b"\x03\xe8", opcode=8))         # close 1000
        assert ws_read_frame(c)[0] == 8


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize("n", [3 * TUNNEL_BUF, 60000])
def test_raw_bytes_with_the_handshake_echoed_exactly(gatehouse, upstream,
                                                     pki, tls, n):
    # a 64k head buffer holds them all (over TLS one record of 16k at most)
    h = switch()
    up = upstream(h)
    gh = gatehouse(server(pki, tls, up.addr, "client_header_buffer_size 64k;"))
    data = pattern_bytes(n)
    with connect(gh, pki, tls) as c:
        c.send(build_request("/raw", host="a.test", headers=HANDSHAKE) + data)
        assert c.read_response().status == 101
        got = c._read_exact(n)
        assert got == data
        assert h.echoed == n


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_bytes_sent_before_the_101_echoed(gatehouse, upstream, pki, tls):
    # the upstream answers late: what the client sent meanwhile waits in
    # the socket (or in OpenSSL) until the tunnel starts
    h = switch(delay=0.5)
    up = upstream(h)
    gh = gatehouse(server(pki, tls, up.addr))
    n = 3 * TUNNEL_BUF
    data = pattern_bytes(n)
    with connect(gh, pki, tls) as c:
        c.send(build_request("/late", host="a.test", headers=HANDSHAKE))
        time.sleep(0.1)
        c.send(data)
        assert c.read_response().status == 101
        assert c._read_exact(n) == data
        assert h.echoed == n


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize("n", [100, 3 * TUNNEL_BUF, 1 << 20])
def test_upstream_burst_with_its_101_reaches_the_client(gatehouse, upstream,
                                                        pki, tls, n):
    burst = pattern_bytes(n)
    up = upstream(switch(burst))
    gh = gatehouse(server(pki, tls, up.addr))
    with connect(gh, pki, tls) as c:
        c.send(build_request("/down", host="a.test", headers=HANDSHAKE))
        assert c.read_response().status == 101
        assert c._read_exact(n) == burst
        c.send(b"after")                 # the tunnel still works both ways
        assert c._read_exact(5) == b"after"


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_upstream_burst_and_close_reach_the_client(gatehouse, upstream, pki,
                                                   tls):
    # 101, a burst, then EOF at once: the client gets every byte, then EOF
    n = 3 * TUNNEL_BUF + 7
    burst = pattern_bytes(n)
    up = upstream(switch(burst, echo_max=0))
    gh = gatehouse(server(pki, tls, up.addr))
    with connect(gh, pki, tls) as c:
        c.send(build_request("/bye", host="a.test", headers=HANDSHAKE))
        assert c.read_response().status == 101
        assert c._read_exact(n) == burst
        assert c._read_to_eof() == b""


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_bytes_after_a_chunked_body_echoed(gatehouse, upstream, pki, tls):
    # the body reader reads past the end of a chunked body: what follows
    # it is tunnel data, sent after the body and before anything newer
    h = switch()
    up = upstream(h)
    gh = gatehouse(server(pki, tls, up.addr))
    body = pattern_bytes(3000)
    n = 3 * TUNNEL_BUF
    data = bytes(reversed(pattern_bytes(n)))
    head = build_request("/body", host="a.test",
                         headers=HANDSHAKE + [("Transfer-Encoding",
                                               "chunked")])
    with connect(gh, pki, tls) as c:
        c.send(head + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n" + data)
        assert c.read_response().status == 101
        assert c._read_exact(n) == data
        assert h.echoed == n
    assert up.requests[0].body == body


def test_big_leftover_then_socket_to_a_slow_upstream(gatehouse, upstream):
    # 3 MB right behind the head: the first read takes what the socket
    # holds (about 128 KB here) into a 4 MB head buffer, the rest comes
    # through the tunnel buffer after it.  The upstream (a unix socket,
    # whose send buffer does not grow) reads nothing for half a second,
    # so the proxy's sends hit EAGAIN and go on at its write event; the
    # echo must be the bytes in order
    h = switch(read_delay=0.5)
    up = upstream(h, unix=True)
    gh = gatehouse(server(None, False, up.addr,
                          "client_header_buffer_size 4m;"))
    n = 3 << 20
    data = bytes(reversed(pattern_bytes(n)))
    with connect(gh, None, False) as c:
        t = threading.Thread(target=c.send, args=(
            build_request("/slow", headers=HANDSHAKE) + data,))
        t.start()
        assert c.read_response().status == 101
        try:
            assert c._read_exact(n) == data
        finally:
            t.join(10)
        assert h.echoed == n
