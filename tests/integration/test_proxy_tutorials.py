"""The configurations users copy from the usual tutorials, unchanged but
for the addresses, and websockets through the recommended block."""

import socket
import time

import pytest

from conftest import build_request, simple_server
from upstreams import Seen, respond, ws_frame, ws_read_frame, ws_roundtrip

RECOMMENDED = """\
proxy_http_version  1.1;
proxy_cache_bypass  $http_upgrade;
proxy_set_header Upgrade           $http_upgrade;
proxy_set_header Connection        "upgrade";
proxy_set_header Host              $host;
proxy_set_header X-Real-IP         $remote_addr;
proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;
proxy_set_header X-Forwarded-Proto $scheme;
proxy_set_header X-Forwarded-Host  $host;
proxy_set_header X-Forwarded-Port  $server_port;
"""


def recommended(addr, loc="/", extra=""):
    block = "\n".join("        " + ln for ln in RECOMMENDED.splitlines())
    return simple_server(f"""\
        location {loc} {{
            proxy_pass http://{addr};
    {block}
            {extra}
        }}
    """)


def test_app_location(gatehouse, upstream):
    # location /app { proxy_pass http://127.0.0.1:8080; }
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location /app {{ proxy_pass http://127.0.0.1:{up.port}; }}
    """))
    s = Seen(gh.get("/app/dashboard?tab=2"))
    assert s.line == "GET /app/dashboard?tab=2 HTTP/1.0"
    assert s.header("Host") == f"127.0.0.1:{up.port}"
    assert gh.get("/other").status == 404


def test_blog_location(gatehouse, upstream):
    # location /blog/ { proxy_pass http://node1:8000/wordpress/; }
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location /blog/ {{ proxy_pass http://127.0.0.1:{up.port}/wordpress/; }}
    """))
    assert Seen(gh.get("/blog/my-post")).target == "/wordpress/my-post"


def test_recommended_block_plain_request(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(recommended(up.addr))
    r = gh.get("/page", host=f"site.test:{gh.port}",
               headers=[("X-Forwarded-For", "203.0.113.9")])
    assert r.status == 200
    s = Seen(r)
    assert s.line == "GET /page HTTP/1.1"
    assert s.header("Upgrade") is None          # $http_upgrade is empty
    assert s.header_all("Connection") == ["upgrade"]
    assert s.header_all("Host") == ["site.test"]
    assert s.header("X-Real-IP") == "127.0.0.1"
    assert s.header_all("X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"]
    assert s.header("X-Forwarded-Proto") == "http"
    assert s.header("X-Forwarded-Host") == "site.test"
    assert s.header("X-Forwarded-Port") == str(gh.port)


def test_recommended_block_websocket_echo(gatehouse, upstream):
    ws = upstream.websocket()
    gh = gatehouse(recommended(ws.addr))
    msgs = ["hello", "ünïcödé", b"\x00\x01binary\xff", "x" * 100000,
            b"\xab" * (1 << 20)]
    got, _ = ws_roundtrip(f"ws://127.0.0.1:{gh.port}/chat?room=1", msgs)
    assert got == msgs
    path, headers = ws.handshakes[0]
    h = {k.lower(): v for k, v in headers}
    assert path == "/chat?room=1"
    assert h["upgrade"].lower() == "websocket"
    assert h["connection"].lower() == "upgrade"
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["host"] == "127.0.0.1"


def test_websocket_several_at_once(gatehouse, upstream):
    import asyncio
    import websockets
    ws = upstream.websocket()
    gh = gatehouse(recommended(ws.addr))

    async def one(i):
        async with websockets.connect(f"ws://127.0.0.1:{gh.port}/s{i}",
                                      open_timeout=5) as c:
            out = []
            for k in range(20):
                await c.send(f"{i}:{k}")
                out.append(await asyncio.wait_for(c.recv(), 5))
            return out

    async def main():
        return await asyncio.wait_for(
            asyncio.gather(*(one(i) for i in range(8))), 20)

    results = asyncio.run(main())
    for i, out in enumerate(results):
        assert out == [f"{i}:{k}" for k in range(20)]


HANDSHAKE = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
             ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
             ("Sec-WebSocket-Version", "13")]


def test_websocket_raw_tunnel(gatehouse, upstream):
    # the first frame pipelined right behind the handshake
    ws = upstream.websocket()
    gh = gatehouse(recommended(ws.addr))
    with gh.conn() as c:
        c.send(build_request("/raw", headers=HANDSHAKE) + ws_frame("early"))
        r = c.read_response()
        assert r.status == 101
        assert r.header("Upgrade").lower() == "websocket"
        assert r.header("Connection").lower() == "upgrade"
        assert r.header("Sec-WebSocket-Accept") == \
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        assert ws_read_frame(c) == (1, b"early")
        c.send(ws_frame(b"\x01\x02", opcode=2))
        assert ws_read_frame(c) == (2, b"\x01\x02")
        c.send(ws_frame(b"\x03\xe8", opcode=8))         # close 1000
        op, _ = ws_read_frame(c)
        assert op == 8
        assert c.wait_closed(3)


def test_websocket_tunnel_idle_timeout(gatehouse, upstream):
    ws = upstream.websocket()
    gh = gatehouse(recommended(ws.addr, extra="proxy_read_timeout 1s;"))
    with gh.conn() as c:
        c.send(build_request("/idle", headers=HANDSHAKE))
        assert c.read_response().status == 101
        c.send(ws_frame("ping"))
        assert ws_read_frame(c) == (1, b"ping")
        t0 = time.monotonic()
        # python3-websockets pings every 20 s: nothing moves before that
        assert c.wait_closed(4)
        took = time.monotonic() - t0
        assert 0.8 <= took < 3.5, took


def test_websocket_unix_upstream(gatehouse, upstream):
    ws = upstream.websocket(unix=True)
    gh = gatehouse(recommended(ws.addr, loc="/ws/"))
    got, _ = ws_roundtrip(f"ws://127.0.0.1:{gh.port}/ws/u", ["via unix"])
    assert got == ["via unix"]
    assert ws.handshakes[0][0] == "/ws/u"


def test_websocket_refused_by_upstream(gatehouse, upstream):
    # the upstream answers the handshake with a normal response: it is
    # passed on as such and the connection stays HTTP
    up = upstream(respond(403, [], "no websockets here"))
    gh = gatehouse(recommended(up.addr))
    with gh.conn() as c:
        r = c.request("/ws", headers=HANDSHAKE)
        assert r.status == 403 and r.body == b"no websockets here"
        c.send(build_request("/again"))
        assert c.read_response().status == 403


def test_101_without_upgrade_request_is_502(gatehouse, upstream):
    # a 101 nobody asked for is an invalid answer (nginx 1.22 passes it on
    # to the client and then has no tunnel to offer)
    from upstreams import raw
    up = upstream(raw(b"HTTP/1.1 101 Switching Protocols\r\n"
                      b"Upgrade: websocket\r\nConnection: upgrade\r\n\r\n"))
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_pass http://{up.addr}; }}
    """))
    assert gh.get("/").status == 502


def test_websocket_client_closes_first(gatehouse, upstream):
    ws = upstream.websocket()
    gh = gatehouse(recommended(ws.addr))
    for _ in range(3):
        c = socket.create_connection(("127.0.0.1", gh.port), timeout=5)
        c.sendall(build_request("/bye", headers=HANDSHAKE))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(4096)
            assert chunk
            data += chunk
        assert data.startswith(b"HTTP/1.1 101")
        c.close()
    # gatehouse is still fine
    got, _ = ws_roundtrip(f"ws://127.0.0.1:{gh.port}/after", ["still here"])
    assert got == ["still here"]
