"""Bytes buffered inside OpenSSL: TLS contexts read ahead, so one read()
takes several records and what follows the first waits inside SSL, where
edge-triggered epoll cannot see it.  Each test here makes the client put
several records into one write (tlsutil.RecordSocket), then checks that
everything is answered -- after back-pressure too, when a reader stopped
early and resumes with no new edge.  A reader that forgot those bytes
hangs here (the client's socket times out).

HTTP/2 with many streams in one write is in test_http2.py; a TLS upstream
behind a slow client in test_tls_upstream.py.
"""

import threading
import time

from conftest import build_request, simple_server
from tlsutil import pki, client_ctx, record_conn   # noqa: F401
from upstreams import (pattern_bytes, pattern_sha256, sha256, ws_frame,
                       ws_read_frame)


def tls_server(pki_, body):
    crt, key = pki_.cert("a.test")
    return simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        {body}
    """, listen="127.0.0.1:{port} ssl")


def test_pipelined_requests_one_record_each_in_one_write(gatehouse, pki):
    gh = gatehouse(tls_server(pki, """
        location / { return 200 "r $request_uri\\n"; }
    """))
    n = 40
    with record_conn(gh.port, "a.test", client_ctx(pki)) as c:
        c.sock.write_records([build_request(f"/{i}", host="a.test")
                              for i in range(n)])
        for i in range(n):
            r = c.read_response()
            assert r.status == 200 and r.body == f"r /{i}\n".encode()
        # and again after the connection went idle in between
        time.sleep(0.2)
        c.sock.write_records([build_request("/a", host="a.test"),
                              build_request("/b", host="a.test")])
        assert c.read_response().body == b"r /a\n"
        assert c.read_response().body == b"r /b\n"


def test_bodies_at_full_speed_with_requests_behind(gatehouse, pki, upstream):
    """a 1 MiB POST proxied (read into memory), one discarded, and GETs,
    all written at once: head, body records and the next heads arrive
    together in SSL's read buffer"""
    up = upstream(lambda req, w: w.reply(
        200, [("X-Got", str(req.body_len)), ("X-Sha", req.body_sha256)],
        b"up"))
    gh = gatehouse(tls_server(pki, f"""
        client_max_body_size 8m;
        client_body_buffer_size 2m;
        location /up {{ proxy_pass http://{up.addr}; }}
        location /drop {{ return 200 "dropped\\n"; }}
        location / {{ return 200 "r $request_uri\\n"; }}
    """))
    size = 1 << 20
    body = pattern_bytes(size)
    reqs = [build_request("/up", "POST", "a.test", body=body),
            build_request("/drop", "POST", "a.test", body=body),
            build_request("/last", host="a.test")]
    with record_conn(gh.port, "a.test", client_ctx(pki), timeout=20) as c:
        # big records first, then the small ones in the same write
        c.sock.write_records(reqs)
        r = c.read_response()
        assert r.status == 200
        assert r.header("X-Got") == str(size)
        assert r.header("X-Sha") == pattern_sha256(size)
        r = c.read_response()
        assert r.status == 200 and r.body == b"dropped\n"
        assert c.read_response().body == b"r /last\n"


def test_slow_reader_then_pipelined_requests_resume(gatehouse, pki,
                                                     tmp_path):
    """the first response fills the socket; the next requests wait in SSL
    until it is out, then must be served with no new edge from epoll"""
    root = tmp_path / "www"
    root.mkdir()
    size = 3 << 20
    (root / "big.bin").write_bytes(pattern_bytes(size))
    gh = gatehouse(tls_server(pki, f"""
        root {root};
        location = /small {{ return 200 "small\\n"; }}
    """))
    with record_conn(gh.port, "a.test", client_ctx(pki), timeout=20) as c:
        c.sock.write_records(
            [build_request("/big.bin", host="a.test")] * 3
            + [build_request("/small", host="a.test")])
        time.sleep(1.5)          # not reading: the server must wait
        for _ in range(3):
            r = c.read_response()
            assert r.status == 200 and len(r.body) == size
            assert sha256(r.body) == pattern_sha256(size)
        assert c.read_response().body == b"small\n"


def test_websocket_bursts_over_tls(gatehouse, pki, upstream):
    """a burst of frames, small and large, in one write through a tunnel
    whose buffers are far smaller: the tunnel stops reading the client
    and must resume from what SSL holds"""
    ws = upstream.websocket()
    gh = gatehouse(tls_server(pki, f"""
        location / {{
            proxy_pass http://{ws.addr};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_buffer_size 4k;
        }}
    """))
    with record_conn(gh.port, "a.test", client_ctx(pki), timeout=20) as c:
        c.send(build_request("/chat", host="a.test", headers=[
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13")]))
        assert c.read_response().status == 101
        for burst in range(2):
            msgs = [f"m{burst}-{i}".encode() for i in range(200)]
            msgs += [bytes([i]) * (60000 + i) for i in range(8)]
            # encrypted here, sent by a thread: the echoes must be read
            # while the burst is still going out
            c.sock.obj.write(b"".join(ws_frame(m, opcode=2,
                                               mask=b"\0\0\0\0")
                                      for m in msgs[:100]))
            for m in msgs[100:]:
                c.sock.obj.write(ws_frame(m, opcode=2, mask=b"\0\0\0\0"))
            blob = c.sock.out.read()
            t = threading.Thread(target=c.sock.raw.sendall, args=(blob,))
            t.start()
            try:
                for m in msgs:
                    op, data = ws_read_frame(c)
                    assert op == 2 and data == m
            finally:
                t.join(20)
