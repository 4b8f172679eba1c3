"""Upstream failures: 502 for refused connections and broken responses,
504 for timeouts, each with nginx's error log line; proxy_next_upstream
and round robin across servers of an upstream block."""

import re
import time

import pytest

from conftest import simple_server
from upstreams import Seen, close_now, hang, raw, read_streamed, respond

# nginx's context suffix: client, server, request, upstream, host
CTX = (r', client: 127\.0\.0\.1, server: {server}, request: "{request}", '
       r'upstream: "{upstream}", host: "{host}"$')


def log_re(msg, server="", request="GET /x HTTP/1.1", upstream="",
           host="localhost"):
    return (r"\[error\] \d+#\d+: \*\d+ " + msg + CTX.format(
        server=re.escape(server), request=re.escape(request),
        upstream=re.escape(upstream), host=re.escape(host)))


def test_502_connection_refused(gatehouse, upstream):
    dead = upstream.closed_port()
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_pass http://{dead.addr}; }}
    """))
    r = gh.get("/x")
    assert r.status == 502
    assert b"502 Bad Gateway" in r.body
    gh.wait_log("error.log", log_re(
        r"connect\(\) failed \(111: Connection refused\) while connecting "
        r"to upstream", upstream=f"http://{dead.addr}/x"))


def test_502_connection_refused_server_name_and_uri_part(gatehouse,
                                                         upstream):
    dead = upstream.closed_port()
    gh = gatehouse(f"""\
        server {{
            listen 127.0.0.1:{{port}};
            server_name example.test;
            location /blog/ {{ proxy_pass http://{dead.addr}/wp/; }}
        }}
    """)
    r = gh.get("/blog/p?q=1", host="example.test")
    assert r.status == 502
    gh.wait_log("error.log", log_re(
        r"connect\(\) failed \(111: Connection refused\) while connecting "
        r"to upstream", server="example.test",
        request="GET /blog/p?q=1 HTTP/1.1",
        upstream=f"http://{dead.addr}/wp/p?q=1", host="example.test"))


def test_504_read_timeout(gatehouse, upstream):
    up = upstream(hang)
    gh = gatehouse(simple_server(f"""\
        location / {{
            proxy_read_timeout 1s;
            proxy_pass http://{up.addr};
        }}
    """))
    t0 = time.monotonic()
    r = gh.get("/x")
    took = time.monotonic() - t0
    assert r.status == 504
    assert b"504 Gateway Time-out" in r.body
    assert 0.9 <= took < 4, took
    gh.wait_log("error.log", log_re(
        r"upstream timed out \(110: Connection timed out\) while reading "
        r"response header from upstream", upstream=f"http://{up.addr}/x"))
    assert len(up.requests) == 1          # no second attempt on a timeout
    # with one server there is nobody to try next


def test_504_log_variables(gatehouse, upstream):
    up = upstream(hang)
    gh = gatehouse(f"""\
        log_format up '$status $upstream_addr $upstream_status';
        server {{
            listen 127.0.0.1:{{port}};
            access_log logs/up.log up;
            location / {{
                proxy_read_timeout 500ms;
                proxy_pass http://{up.addr};
            }}
        }}
    """)
    assert gh.get("/x").status == 504
    gh.wait_log("up.log", rf"^504 {re.escape(up.addr)} 504$")


@pytest.mark.parametrize("name, reply, msg", [
    ("garbage", b"\x00\x01\x02garbage\r\n\r\n",
     r"upstream sent no valid HTTP/1\.0 header while reading response "
     r"header from upstream"),
    ("bad header line", b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\nbody",
     r"upstream sent invalid header(?:: \"[^\"]*\")? while reading "
     r"response header from upstream"),
    ("partial head then close", b"HTTP/1.1 200 OK\r\nContent-Le",
     r"upstream prematurely closed connection while reading response "
     r"header from upstream"),
    ("too big header",
     b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n",
     r"upstream sent too big header while reading response header from "
     r"upstream"),
    ("bad content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n",
     r"upstream sent invalid \"Content-Length\" header while reading "
     r"response header from upstream"),
])
def test_502_broken_upstream_response(gatehouse, upstream, name, reply, msg):
    # nginx 1.22 passes total garbage through as an HTTP/0.9 answer and
    # ignores an invalid Content-Length (1.23 rejects it); gatehouse
    # answers 502 for any broken head
    up = upstream(raw(reply))
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_pass http://{up.addr}; }}
    """))
    r = gh.get("/x")
    assert r.status == 502, r
    gh.wait_log("error.log", log_re(msg, upstream=f"http://{up.addr}/x"))


def test_502_upstream_closes_without_answer(gatehouse, upstream):
    up = upstream(close_now)
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_pass http://{up.addr}; }}
    """))
    r = gh.get("/x")
    assert r.status == 502
    gh.wait_log("error.log", log_re(
        r"upstream prematurely closed connection while reading response "
        r"header from upstream", upstream=f"http://{up.addr}/x"))


def test_upstream_closes_in_the_middle_of_the_body(gatehouse, upstream):
    up = upstream(raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
                      + b"z" * 50000))
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_pass http://{up.addr}; }}
    """))
    with gh.conn() as c:
        c.send(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        r = read_streamed(c, allow_truncated=True)
        # the head and what arrived were passed on, then the client's
        # connection is closed: it can tell the body is short
        assert r.status == 200
        assert r.header("Content-Length") == "100000"
        assert not r.complete and r.body_len == 50000
        assert r.body == b"z" * 50000
    gh.wait_log("error.log", r"upstream prematurely closed connection while "
                r"reading upstream, client: 127\.0\.0\.1")


def test_upstream_sends_more_than_content_length(gatehouse, upstream):
    up = upstream(raw(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
                      b"helloEXTRA-BYTES"))
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_pass http://{up.addr}; }}
    """))
    with gh.conn() as c:
        r = c.request("/x")
        assert r.status == 200 and r.body == b"hello"
        r = c.request("/x")                  # the client connection is fine
        assert r.status == 200 and r.body == b"hello"


# --------------------------------------------------------------------------
# several servers

def test_proxy_next_upstream_moves_to_a_live_server(gatehouse, upstream):
    dead = upstream.closed_port()
    live = upstream()
    gh = gatehouse(f"""\
        log_format up '$upstream_addr|$upstream_status';
        upstream pool {{
            server {dead.addr};
            server {live.addr};
        }}
        server {{
            listen 127.0.0.1:{{port}};
            access_log logs/up.log up;
            location / {{ proxy_pass http://pool; }}
        }}
    """)
    for i in range(4):
        r = gh.get(f"/n{i}")
        assert r.status == 200, r
        assert Seen(r).target == f"/n{i}"
    assert len(live.requests) == 4
    # the dead one was tried first once (round robin), then left alone
    # for its fail_timeout
    log = gh.wait_log("up.log", r"(?s)(.*\n){4}").group(0)
    assert f"{dead.addr}, {live.addr}|502, 200" in log, log
    gh.wait_log("error.log", r"connect\(\) failed \(111: Connection "
                r"refused\) while connecting to upstream")


def test_proxy_next_upstream_off(gatehouse, upstream):
    dead = upstream.closed_port()
    live = upstream()
    gh = gatehouse(f"""\
        upstream pool {{
            server {dead.addr};
            server {live.addr};
        }}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{
                proxy_next_upstream off;
                proxy_pass http://pool;
            }}
        }}
    """)
    statuses = sorted(gh.get("/").status for _ in range(2))
    assert statuses == [200, 502]


def test_proxy_next_upstream_http_503(gatehouse, upstream):
    busy = upstream(respond(503, body="busy"))
    live = upstream()
    gh = gatehouse(f"""\
        upstream pool {{
            server {busy.addr};
            server {live.addr};
        }}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{
                proxy_next_upstream error timeout http_503;
                proxy_pass http://pool;
            }}
        }}
    """)
    for _ in range(4):
        assert gh.get("/").status == 200
    assert len(busy.requests) >= 1


def test_post_is_not_sent_to_the_next_server_after_a_timeout(gatehouse,
                                                            upstream):
    slow = upstream(hang)
    live = upstream()
    gh = gatehouse(f"""\
        upstream pool {{
            server {slow.addr};
            server {live.addr};
        }}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{
                proxy_read_timeout 500ms;
                proxy_pass http://pool;
            }}
        }}
    """)
    # round robin starts with the first server: the hanging one
    r = gh.get("/p", method="POST", body=b"once")
    assert r.status == 504
    assert len(live.requests) == 0 and len(slow.requests) == 1


def test_round_robin(gatehouse, upstream):
    a = upstream(name="a")
    b = upstream(name="b")
    gh = gatehouse(f"""\
        upstream pool {{
            server {a.addr};
            server {b.addr};
        }}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{ proxy_pass http://pool; }}
        }}
    """)
    for _ in range(10):
        assert gh.get("/").status == 200
    assert len(a.requests) == 5 and len(b.requests) == 5


def test_weighted_round_robin(gatehouse, upstream):
    a = upstream(name="a")
    b = upstream(name="b")
    gh = gatehouse(f"""\
        upstream pool {{
            server {a.addr} weight=3;
            server {b.addr};
        }}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{ proxy_pass http://pool; }}
        }}
    """)
    for _ in range(8):
        assert gh.get("/").status == 200
    assert len(a.requests) == 6 and len(b.requests) == 2


def test_all_servers_down_is_502(gatehouse, upstream):
    d1 = upstream.closed_port()
    d2 = upstream.closed_port()
    gh = gatehouse(f"""\
        upstream pool {{
            server {d1.addr};
            server {d2.addr};
        }}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{ proxy_pass http://pool; }}
        }}
    """)
    assert gh.get("/").status == 502
    # both are in their fail window now
    assert gh.get("/x").status == 502
    gh.wait_log("error.log", log_re(r"no live upstreams while connecting to "
                                    r"upstream", upstream="http://pool/x"))


class ResetAfterHead:
    """Accepts one connection, reads the request head, then resets the
    connection (RST): gatehouse is still sending the body."""

    def __init__(self):
        import socket
        import threading
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.srv.settimeout(10)
        self.addr = "127.0.0.1:%d" % self.srv.getsockname()[1]
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        import socket
        import struct
        try:
            s, _ = self.srv.accept()
        except OSError:
            return
        s.settimeout(10)
        got = b""
        while b"\r\n\r\n" not in got:
            d = s.recv(4096)
            if not d:
                break
            got += d
        # a reset while the body is still on its way
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        s.close()

    def stop(self):
        self.srv.close()
        self.t.join(5)


@pytest.mark.parametrize("where,call", [
    ("client_body_buffer_size 16m;", r"(sendmsg|send)"),
    ("client_body_buffer_size 16k;", r"(sendfile)"),
], ids=["memory", "file"])
def test_send_failure_names_the_call(gatehouse, where, call):
    """the message names the system call that failed (send/sendmsg for
    memory buffers, sendfile for a body in a temporary file), in nginx's
    shape, never a writev() that was not made"""
    up = ResetAfterHead()
    try:
        gh = gatehouse(simple_server(f"""\
            client_max_body_size 64m;
            client_connection_memory_max 64m;
            {where}
            location / {{
                proxy_pass http://{up.addr};
                proxy_next_upstream off;
            }}
        """))
        body = b"b" * (8 << 20)
        with gh.conn(timeout=20) as c:
            r = c.request("/x", method="POST", body=body)
        assert r.status == 502, gh.error_log()
        gh.wait_log("error.log", log_re(
            call + r"\(\) failed \(\d+: [^)]+\) while sending request to "
            r"upstream", request="POST /x HTTP/1.1",
            upstream=f"http://{up.addr}/x"))
        assert "writev" not in gh.error_log()
    finally:
        up.stop()
