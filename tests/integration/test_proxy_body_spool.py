"""Request bodies spooled to a temp file (past client_body_buffer_size):
read in large blocks, written with pwrite(), sent upstream with
sendfile(), and the temp file reused by the worker for the next body.
Every body here has its own bytes, so a reused file that leaked the end
of an earlier, longer body, or an offset that was not reset, shows as a
wrong sha256 upstream."""

import hashlib
import socket

import pytest

from conftest import build_request
from upstreams import Seen, read_streamed

KiB = 1024
MiB = 1024 * 1024


def proxy(up, extra=""):
    # a keep-alive upstream connection: a body sent with bytes past its
    # Content-Length (say, the tail of a longer body that used the file
    # before) would leave garbage on it and cost it
    return f"""\
        upstream back {{
            server {up.addr};
            keepalive 4;
        }}
        server {{
            listen 127.0.0.1:{{port}};
            client_max_body_size 0;
            client_body_buffer_size 16k;
            location / {{
                {extra}
                proxy_pass http://back;
                proxy_http_version 1.1;
                proxy_set_header Connection "";
            }}
        }}
    """


def body_of(n, seed):
    # distinct bytes per body, cheap for large n
    block = hashlib.sha256(b"%d/%d" % (seed, n)).digest() * 2048
    reps = n // len(block) + 1
    return (block * reps)[:n]


def post(c, body, chunked=False, piece=65536):
    hdrs = [("Transfer-Encoding", "chunked")] if chunked \
        else [("Content-Length", str(len(body)))]
    c.send(build_request("/up", "POST", "localhost", hdrs))
    for i in range(0, len(body), piece):
        p = body[i:i + piece]
        if chunked:
            c.sock.sendall(b"%x\r\n" % len(p) + p + b"\r\n")
        else:
            c.sock.sendall(p)
    if chunked:
        c.sock.sendall(b"0\r\n\r\n")
    r = read_streamed(c)
    assert r.status == 200, r
    return Seen(r)


# around the memory buffer (16k), the read block (128k) and larger, then
# shorter again: every body after the first spooled one reuses a file
SIZES = [16 * KiB - 1, 16 * KiB, 16 * KiB + 1, 300 * KiB, 128 * KiB - 1,
         128 * KiB, 128 * KiB + 1, 1 * MiB + 7, 17 * KiB, 3 * MiB, 20 * KiB,
         1, 5 * MiB + 3, 16 * KiB + 1]


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_spooled_bodies_byte_exact_on_one_connection(gatehouse, upstream,
                                                     chunked):
    up = upstream()
    gh = gatehouse(proxy(up))
    with gh.conn(timeout=30) as c:
        for i, n in enumerate(SIZES):
            body = body_of(n, i)
            s = post(c, body, chunked=chunked, piece=251 * 67)
            assert s.body_len == n, (i, n)
            assert s.body_sha256 == hashlib.sha256(body).hexdigest(), (i, n)
            assert s.header("Content-Length") == str(n)
            # one upstream connection throughout, nothing left on it
            assert (s.conn, s.seq) == (1, i), (i, n)


def test_spooled_bodies_concurrent_connections(gatehouse, upstream):
    # several bodies in flight take several files, which come back to the
    # pool in another order than they left it
    up = upstream()
    gh = gatehouse(proxy(up))
    conns = [gh.conn(timeout=30) for _ in range(4)]
    try:
        for rnd in range(3):
            bodies = [body_of((200 + 150 * k + 37 * rnd) * KiB + k,
                              10 * rnd + k) for k in range(len(conns))]
            for c, body in zip(conns, bodies):
                c.send(build_request("/up", "POST", "localhost",
                                     [("Content-Length", str(len(body)))]))
            # interleave the bodies so all four are spooling at once
            step = 64 * KiB
            for off in range(0, max(map(len, bodies)), step):
                for c, body in zip(conns, bodies):
                    if off < len(body):
                        c.sock.sendall(body[off:off + step])
            for c, body in reversed(list(zip(conns, bodies))):
                r = read_streamed(c)
                assert r.status == 200, r
                s = Seen(r)
                assert s.body_sha256 == hashlib.sha256(body).hexdigest()
    finally:
        for c in conns:
            c.close()


def test_client_gone_mid_spliced_body(gatehouse, upstream):
    """A client that announces 1 MiB and leaves after 300 KiB, while the
    body is being spliced into its temp file: nothing reaches the
    upstream, the worker logs it and stays; the next spooled bodies (the
    same spool pipe, a reused file) arrive byte-exact."""
    up = upstream()
    gh = gatehouse(proxy(up))
    s = socket.create_connection(("127.0.0.1", gh.port), 10)
    s.sendall(build_request("/up", "POST", "localhost",
                            [("Content-Length", str(MiB))]))
    s.sendall(b"q" * (300 * KiB))
    s.close()
    gh.wait_log("error.log", r"client prematurely closed connection")
    with gh.conn(timeout=30) as c:
        for i, n in enumerate([MiB + 5, 200 * KiB, 700 * KiB + 3]):
            body = body_of(n, 100 + i)
            seen = post(c, body)
            assert seen.body_sha256 == hashlib.sha256(body).hexdigest()
    # the abandoned body never went upstream
    assert len(up.requests) == 3, up.requests
