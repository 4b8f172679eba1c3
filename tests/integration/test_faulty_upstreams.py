"""Upstreams that misbehave: refuse, hang, answer garbage, close or reset
in the middle of the head or the body, send oversized or invalid heads,
ambiguous framing, or trickle.

The client must get a 502/504 when nothing was sent to it yet, or a
connection cut short (never a clean end) once the body had started, and
the worker must keep serving everyone else: after each case a normal
request through the same gatehouse still works and the worker is the same
process (no crash, no restart).  One gatehouse and one routing upstream
are shared by the module to keep this fast.
"""

import re
import socket
import threading
import time

import pytest

from conftest import CRASH_RE, Gatehouse
from hostile import read_all
from upstreams import ClosedPort, Upstream, echo, route

READ_TIMEOUT = 1            # proxy_read_timeout of the shared server


def _raw(data, then=None):
    def handler(req, w):
        w.send(data)
        if then == "reset":
            w.reset()
        else:
            w.close()
    return handler


def _sleepy(parts, delay):
    """Send each part with `delay` seconds before all but the first."""
    def handler(req, w):
        for i, p in enumerate(parts):
            if i:
                time.sleep(delay)
            w.send(p)
        w.close()
    return handler


def _hang(req, w):
    w.hang(limit=10)


def _extra_after_body(req, w):
    # a full response, then bytes that would be read as the answer to the
    # next request if the pooled connection were reused
    w.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
           b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled")


def _body_anyway(status):
    """A status that has no body (or a HEAD), answered with one anyway,
    on a connection kept alive."""
    def handler(req, w):
        w.send(b"HTTP/1.1 %d X\r\nContent-Length: 24\r\n\r\n" % status
               + b"HTTP/1.1 200 OK\r\n\r\nxx")
    return handler


OK_HEAD = b"HTTP/1.1 200 OK\r\n"

HANDLERS = {
    "/garbage": _raw(b"garbage\r\n\r\n"),
    "/binary": _raw(bytes(range(256)) * 8),
    "/close-now": _raw(b""),
    "/mid-status": _raw(b"HTTP/1.1 20"),
    "/mid-header": _raw(OK_HEAD + b"Content-Type: text/pl"),
    "/no-blank-line": _raw(OK_HEAD + b"Content-Length: 2\r\n"),
    "/reset-mid-header": _raw(OK_HEAD + b"Content-Le", then="reset"),
    "/mid-body-length": _raw(OK_HEAD + b"Content-Length: 100000\r\n\r\n"
                             + b"x" * 1000),
    "/mid-body-chunked": _raw(OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
                              b"3e8\r\n" + b"x" * 500),
    "/mid-body-large": _sleepy([OK_HEAD + b"Content-Length: 4000000\r\n\r\n",
                                b"y" * 300000], 0.2),
    "/mid-body-reset": _raw(OK_HEAD + b"Content-Length: 100000\r\n\r\n"
                            + b"x" * 1000, then="reset"),
    "/bad-chunk": _raw(OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
                       b"5\r\nhello\r\nzz\r\n"),
    "/huge-chunk": _raw(OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
                        b"ffffffffffffffffff\r\nhello"),
    "/big-header": _raw(OK_HEAD + b"X-Big: " + b"a" * 65536
                        + b"\r\nContent-Length: 0\r\n\r\n"),
    "/many-headers": _raw(OK_HEAD + b"".join(b"X-%d: v\r\n" % i
                                             for i in range(5000))
                          + b"Content-Length: 0\r\n\r\n"),
    "/status-4digits": _raw(b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"),
    "/status-letters": _raw(b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n"),
    "/status-http2": _raw(b"HTTP/2 200\r\nContent-Length: 0\r\n\r\n"),
    "/status-icy": _raw(b"ICY 200 OK\r\nContent-Length: 0\r\n\r\n"),
    "/status-099": _raw(b"HTTP/1.1 099 X\r\nContent-Length: 0\r\n\r\n"),
    "/status-cr": _raw(b"HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n\r\n"),
    "/http09": _raw(b"hello, no head at all"),
    "/cl-te": _raw(OK_HEAD + b"Content-Length: 5\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "/negative-cl": _raw(OK_HEAD + b"Content-Length: -1\r\n\r\nhello"),
    "/two-cl": _raw(OK_HEAD + b"Content-Length: 5\r\nContent-Length: 6\r\n"
                    b"\r\nhello!"),
    "/junk-cl": _raw(OK_HEAD + b"Content-Length: 5x\r\n\r\nhello"),
    "/te-gzip": _raw(OK_HEAD + b"Transfer-Encoding: gzip\r\n\r\nhello"),
    "/obs-fold": _raw(OK_HEAD + b"X-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
    "/nul-header": _raw(OK_HEAD + b"X-A: a\0b\r\nContent-Length: 0\r\n\r\n"),
    "/space-colon": _raw(OK_HEAD + b"Content-Length : 0\r\n\r\n"),
    "/hang": _hang,
    "/slow-head": _sleepy([b"HTTP/1.1 200 OK\r\n",
                           b"Content-Length: 2\r\n\r\nok"], 2.0),
    "/slow-body": _sleepy([OK_HEAD + b"Content-Length: 4\r\n\r\nab", b"cd"],
                          2.0),
    "/trickle-ok": _sleepy([bytes([b]) for b in
                            OK_HEAD + b"Content-Length: 5\r\n\r\nhello"],
                           0.01),
    "/many-interim": _raw(b"HTTP/1.1 100 Continue\r\n\r\n" * 2000 + OK_HEAD
                          + b"Content-Length: 2\r\n\r\nok"),
    "/bare-lf": _raw(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"),
    "/extra": _extra_after_body,
    "/head-body": _body_anyway(200),
    "/204-body": _body_anyway(204),
    "/304-body": _body_anyway(304),
}

CONF = """\
upstream ka {{
    server {up};
    keepalive 4;
}}
server {{
    listen 127.0.0.1:{{port}};
    proxy_read_timeout {rt}s;
    proxy_connect_timeout 1s;
    proxy_next_upstream off;
    location / {{ proxy_pass http://{up}; }}
    location /refused {{ proxy_pass http://{closed}; }}
    location /ka/ {{
        proxy_pass http://ka/;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }}
}}
"""


class Env:
    pass


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = Env()
    e.up = Upstream(route(HANDLERS, default=echo)).start()
    e.closed = ClosedPort()
    e.gh = Gatehouse(tmp_path_factory.mktemp("faulty"))
    e.gh.configure(CONF.format(up=e.up.addr, closed=e.closed.addr,
                               rt=READ_TIMEOUT))
    e.gh.start()
    e.gh.wait_workers(1)
    yield e
    e.gh.stop()
    e.up.stop()
    e.closed.stop()
    if e.gh.problems:
        pytest.fail("teardown: " + "; ".join(e.gh.problems), pytrace=False)


@pytest.fixture(autouse=True)
def still_serving(env):
    """After each case: the same worker, a normal request still answered,
    no crash report."""
    before = env.gh.workers()
    yield
    r = env.gh.get("/echo")
    assert r.status == 200 and b'"target": "/echo"' in r.body, r
    assert env.gh.workers() == before, "the worker died or was replaced"
    for text in (env.gh.error_log(), env.gh.stderr()):
        m = CRASH_RE.search(text)
        assert m is None, text[max(0, m.start() - 200):m.end() + 800]


def fetch(env, path, timeout=5.0, version=b"HTTP/1.1"):
    """GET path on a new connection; read until the server closes.
    Returns (head bytes, body bytes, closed)."""
    s = socket.create_connection(("127.0.0.1", env.gh.port), timeout=5)
    try:
        s.sendall(b"GET " + path.encode() + b" " + version
                  + b"\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        out, closed = read_all(s, timeout)
    finally:
        s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    return head, body, closed


def status_of(head):
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
    assert m, head
    return int(m.group(1))


def header_of(head, name):
    m = re.search(rb"\r\n" + name.encode() + rb": *([^\r]*)", head, re.I)
    return m.group(1) if m else None


def bad_gateway(env, path, status=502):
    head, body, closed = fetch(env, path)
    assert status_of(head) == status, head
    assert closed
    return head


def cut(env, path):
    """The head went out (200), then the body ended early: fewer bytes
    than the Content-Length, or a chunked body without its last chunk."""
    head, body, closed = fetch(env, path)
    assert status_of(head) == 200, head
    assert closed, "connection not closed after a broken upstream body"
    cl = header_of(head, "Content-Length")
    if cl is not None:
        assert len(body) < int(cl), (head, len(body))
    else:
        assert header_of(head, "Transfer-Encoding") == b"chunked", head
        assert not body.endswith(b"0\r\n\r\n"), body[-20:]
    return head, body


# --------------------------------------------------------------------------
# nothing usable: 502 / 504

def test_refused(env):
    bad_gateway(env, "/refused")


def test_hang_is_504(env):
    t0 = time.monotonic()
    bad_gateway(env, "/hang", 504)
    assert time.monotonic() - t0 < READ_TIMEOUT + 2


@pytest.mark.parametrize("path", ["/garbage", "/binary", "/http09"])
def test_garbage(env, path):
    bad_gateway(env, path)


@pytest.mark.parametrize("path", ["/close-now", "/mid-status", "/mid-header",
                                  "/no-blank-line", "/reset-mid-header"])
def test_closed_before_the_head_ended(env, path):
    bad_gateway(env, path)


@pytest.mark.parametrize("path", ["/big-header", "/many-headers"])
def test_oversized_head(env, path):
    bad_gateway(env, path)


@pytest.mark.parametrize("path", ["/status-4digits", "/status-letters",
                                  "/status-http2", "/status-icy",
                                  "/status-099", "/status-cr"])
def test_invalid_status_line(env, path):
    bad_gateway(env, path)


@pytest.mark.parametrize("path", ["/cl-te", "/negative-cl", "/two-cl",
                                  "/junk-cl", "/te-gzip"])
def test_ambiguous_framing(env, path):
    """The client could be handed a body whose end the upstream and we see
    differently: refused before a byte goes out."""
    bad_gateway(env, path)


@pytest.mark.parametrize("path", ["/obs-fold", "/nul-header",
                                  "/space-colon"])
def test_malformed_header_line(env, path):
    bad_gateway(env, path)


def test_slow_head_is_504(env):
    """A head that stalls longer than proxy_read_timeout between two
    bytes."""
    bad_gateway(env, "/slow-head", 504)


# --------------------------------------------------------------------------
# the body had started: the client connection is cut, never ended cleanly

def test_close_mid_body_with_length(env):
    head, body = cut(env, "/mid-body-length")
    assert body == b"x" * 1000


def test_close_mid_large_body(env):
    """A large Content-Length body goes by splice(2) once the head is out;
    a cut there is a cut for the client too."""
    head, body = cut(env, "/mid-body-large")
    assert body == b"y" * 300000


def test_close_mid_body_chunked(env):
    cut(env, "/mid-body-chunked")


def test_reset_mid_body(env):
    # the RST may overtake the head in the kernel: then nothing was sent
    # yet and 502 is the answer
    head, body, closed = fetch(env, "/mid-body-reset")
    assert closed
    if status_of(head) != 502:
        cut(env, "/mid-body-reset")


def test_bad_chunk_mid_body(env):
    head, body = cut(env, "/bad-chunk")
    assert b"hello" in body


def test_huge_chunk_size(env):
    head, body, closed = fetch(env, "/huge-chunk")
    assert closed
    assert status_of(head) in (200, 502), head
    if status_of(head) == 200:
        assert not body.endswith(b"0\r\n\r\n")


def test_slow_body_is_cut(env):
    head, body = cut(env, "/slow-body")
    assert body == b"ab"


def test_http10_client_sees_a_short_body(env):
    """An HTTP/1.0 client has no chunked framing: what it is given has a
    Content-Length or ends at the close; a cut must then be visible as a
    short body, so gatehouse keeps the upstream's length."""
    head, body, closed = fetch(env, "/mid-body-length", version=b"HTTP/1.0")
    assert status_of(head) == 200 and closed
    assert header_of(head, "Content-Length") == b"100000"
    assert len(body) == 1000


# --------------------------------------------------------------------------
# odd but well-formed enough: answered

def test_trickle_within_timeout_is_complete(env):
    head, body, closed = fetch(env, "/trickle-ok")
    assert status_of(head) == 200 and body == b"hello"


def test_many_interim_responses(env):
    t0 = time.monotonic()
    head, body, closed = fetch(env, "/many-interim")
    assert status_of(head) in (200, 502), head
    if status_of(head) == 200:
        assert body == b"ok"
    assert time.monotonic() - t0 < 3


def test_bare_lf_response_head(env):
    head, body, closed = fetch(env, "/bare-lf")
    assert status_of(head) == 200 and body == b"ok", head


def test_extra_bytes_after_response_are_not_a_response(env):
    """Bytes after the end of a response on a keep-alive upstream
    connection must not become the answer to the next request."""
    with env.gh.conn() as c:
        r1 = c.request("/ka/extra")
        assert r1.status == 200 and r1.body == b"hello"
        r2 = c.request("/ka/echo")
        assert r2.status == 200 and b"smuggled" not in r2.body, r2
        assert b'"target": "/echo"' in r2.body


# --------------------------------------------------------------------------
# everyone else keeps being served while upstreams misbehave

def test_others_served_while_upstreams_hang(env):
    """Ten clients stuck on a hanging upstream and five on a trickling one;
    meanwhile requests to a healthy one keep being answered at once."""
    stop = threading.Event()
    results = []

    def stuck(path):
        try:
            head, _, _ = fetch(env, path, timeout=8)
            results.append(status_of(head))
        except (OSError, AssertionError) as e:
            results.append(repr(e))

    threads = [threading.Thread(target=stuck, args=("/hang",), daemon=True)
               for _ in range(10)]
    threads += [threading.Thread(target=stuck, args=("/slow-head",),
                                 daemon=True) for _ in range(5)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.1)
        worst = 0.0
        for _ in range(20):
            t0 = time.monotonic()
            r = env.gh.get("/echo")
            worst = max(worst, time.monotonic() - t0)
            assert r.status == 200
        assert worst < 0.5, worst
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert sorted(results) == [504] * 15, results


@pytest.mark.parametrize("method,path", [("HEAD", "/ka/head-body"),
                                         ("GET", "/ka/204-body"),
                                         ("GET", "/ka/304-body")],
                         ids=["head", "204", "304"])
def test_body_where_none_belongs(env, method, path):
    """An upstream that sends a body after a HEAD, 204 or 304: the client
    gets no body, and those bytes never become the next response, on the
    client's connection or on the pooled upstream one."""
    with env.gh.conn() as c:
        r1 = c.request(path, method=method)
        assert r1.body == b""
        r2 = c.request("/ka/echo")
        assert r2.status == 200 and b'"target": "/echo"' in r2.body, r2
