"""Memory per connection: what an idle keep-alive connection costs, the
per-connection account (client_connection_memory_max) and the worker's
totals in upstream_status.

An idle HTTP/1.1 keep-alive connection is two slab objects (gh_conn_t and
the HTTP state, 432 bytes on x86-64): no arena, no buffer.  Every byte a
connection's requests take (arenas, head buffer, body and proxy buffers)
is charged to its account; the worker's sum and peak are exported.
"""

import json
import resource
import socket
import time

import pytest

from conftest import Conn, asan_binary, wait_until
from upstreams import pattern



def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def status(gh):
    r = gh.get("/status")
    assert r.status == 200
    return json.loads(r.body)["connections"]


def open_idle(port, n, path="/"):
    """n keep-alive connections, each after one complete request."""
    req = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(req)
            got = b""
            while not got.endswith(b"ok"):
                chunk = s.recv(4096)
                assert chunk, got
                got += chunk
            assert got.startswith(b"HTTP/1.1 200"), got
            socks.append(s)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


CONF = """
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 8192;
error_log logs/error.log info;
pid logs/gatehouse.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    {extra}
    server {{
        listen 127.0.0.1:{{port}};
        location / {{ return 200 "ok"; }}
        location = /status {{ upstream_status; }}
        {locations}
    }}
}}
"""


def need_fds(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        if hard < n:
            pytest.skip(f"open-file limit {hard} below {n}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


def test_idle_keepalive_rss_per_connection(gatehouse):
    """2,000 idle keep-alive connections, each after one request: the
    worker's resident memory grows by less than 560 bytes each (measured
    426: 432 bytes of objects, a timer heap slot, page rounding).  Before
    the slab objects this test measured 643 (a malloc'd 312-byte gh_conn_t
    and a 320-byte connection arena each)."""
    if asan_binary():
        pytest.skip("AddressSanitizer's redzones and malloc per object")
    n = 2000
    need_fds(n + 200)
    gh = gatehouse(conf=CONF.format(extra="", locations=""))
    worker = gh.workers()[0]
    # warm up: the request path's caches and the first pages of the slabs
    warm = open_idle(gh.port, 64)
    for s in warm:
        s.close()
    time.sleep(0.2)
    before = rss(worker)
    socks = open_idle(gh.port, n)
    try:
        time.sleep(0.2)
        per_conn = (rss(worker) - before) / n
        st = status(gh)
    finally:
        for s in socks:
            s.close()
    assert per_conn < 560, f"{per_conn:.0f} bytes per idle connection"
    # the account of an idle connection is its two objects
    assert n * 400 <= st["memory"] <= n * 512 + 64 * 1024, st


def test_memory_account_returns_to_baseline(gatehouse, upstream):
    """Connections charge their objects, head buffers (grown for a large
    head), request arenas, request bodies and proxy buffers; once they are
    closed the worker's total is back where it started, and the peak
    remembers the high-water mark."""
    up = upstream(pattern(200000))
    gh = gatehouse(conf=CONF.format(extra="", locations=f"""
        location /big {{ proxy_pass http://{up.addr}; }}
        location /post {{ proxy_pass http://{up.addr}; }}
    """))
    # the status request's own connection and request are in each figure,
    # the same every time
    base = status(gh)
    assert base["memory"] > 0 and base["open"] >= 2

    conns = []
    try:
        # plain, a large head, a proxied 200 KB response, a chunked body
        for i in range(10):
            c = Conn(gh.port)
            conns.append(c)
            assert c.request("/").status == 200
            big = c.request("/", headers=[("X-Big", "a" * 6000)])
            assert big.status == 200
            r = c.request("/big")
            assert r.status == 200 and len(r.body) == 200000
            r = c.request("/post", method="POST",
                          headers=[("Transfer-Encoding", "chunked")],
                          body=b"5\r\nhello\r\n0\r\n\r\n")
            assert r.status == 200
        # a request pipelined behind a chunked body: read past the body
        # and kept for the next request
        for c in conns[:3]:
            c.send(b"POST /post HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n")
            time.sleep(0.05)       # the body comes in a read of its own
            c.send(b"5\r\nhello\r\n0\r\n\r\n"
                   b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.read_response().status == 200
            assert c.read_response().status == 200
        idle = status(gh)
        # ten idle connections: exactly their objects, no buffer
        per = (idle["memory"] - base["memory"]) / 10
        assert 0 < per <= 512 and per == int(per), (base, idle)
        # the proxied response had its proxy_buffers (8 x 4k) and more
        assert idle["memory_peak"] > idle["memory"] + 40000, idle
    finally:
        for c in conns:
            c.close()
    wait_until(lambda: status(gh)["memory"] == base["memory"], 3.0,
               what=f"the account back at {base['memory']}")
    assert status(gh)["memory_refused"] == 0


def test_memory_account_of_tunnels_with_leftovers(gatehouse, upstream):
    """Upgraded connections whose client sent more than the tunnel buffer
    behind its head (in a grown head buffer, or past a chunked body): the
    bytes are sent from where they are, nothing new is taken for them,
    and once the tunnels close the account is back at its start."""
    from conftest import build_request
    from upstreams import switch
    h = switch()
    up = upstream(h)
    gh = gatehouse(conf=CONF.format(extra="", locations=f"""
        location /ws {{
            proxy_pass http://{up.addr};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
    """))
    base = status(gh)
    hs = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
    data = bytes(range(256)) * 48                  # 12 KiB, 3 tunnel buffers
    sends = [
        build_request("/ws", headers=hs + [("X-Pad", "p" * 1500)]) + data,
        build_request("/ws", headers=hs + [("Transfer-Encoding", "chunked")])
        + b"bb8\r\n" + b"b" * 3000 + b"\r\n0\r\n\r\n" + data,
    ]
    conns = []
    try:
        for i in range(6):
            c = Conn(gh.port)
            conns.append(c)
            c.send(sends[i % 2])
            assert c.read_response().status == 101
            assert c._read_exact(len(data)) == data
        st = status(gh)
        assert st["memory"] > base["memory"], (base, st)
    finally:
        for c in conns:
            c.close()
    wait_until(lambda: status(gh)["memory"] == base["memory"], 3.0,
               what=f"the account back at {base['memory']}")
    assert status(gh)["memory_refused"] == 0
    assert h.echoed == 6 * len(data)


def test_memory_cap_refuses_and_worker_keeps_serving(gatehouse, upstream):
    """A request that needs more than client_connection_memory_max is
    answered 503 (a head that outgrows the cap) or 500 (a body buffer the
    request arena cannot take), and the other connections are served."""
    up = upstream(pattern(100))
    gh = gatehouse(conf=CONF.format(
        extra="client_connection_memory_max 32k;",
        locations=f"location /up {{ proxy_pass http://{up.addr}; }}"))
    worker = gh.workers()[0]
    # a 16 KiB request arena, a head buffer grown to 8 KiB and the objects
    # fit
    assert gh.get("/").status == 200
    assert gh.get("/up").status == 200
    assert gh.get("/", headers=[("X-Big", "a" * 6000)]).status == 200
    # growing the head buffer to 16 KiB does not
    with Conn(gh.port) as c:
        r = c.request("/", headers=[("X-Big", "a" * 12000)])
        assert r.status == 503
        assert c.wait_closed()
    gh.wait_log("error.log", r"client_connection_memory_max reached")
    # neither does a 16,000-byte body buffered for the upstream
    with Conn(gh.port) as c:
        r = c.request("/up", method="POST", body=b"x" * 16000)
        assert r.status == 500, r
    # the others are served, by the same worker
    assert gh.get("/").status == 200
    assert gh.get("/up").status == 200
    st = status(gh)
    assert st["memory_refused"] >= 2
    assert gh.workers() == [worker]


def test_memory_cap_cuts_proxied_response(gatehouse, upstream):
    """A proxied 300 KB response takes about 70 KiB of proxy buffers and
    arena blocks: under a 40k cap the connection is closed without a
    complete response, with one [error] line; without a cap it passes."""
    up = upstream(pattern(300000))
    gh = gatehouse(conf=CONF.format(
        extra="client_connection_memory_max 40k;",
        locations=f"location /up {{ proxy_pass http://{up.addr}; }}"))
    with Conn(gh.port) as c:
        c.send(b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while True:
            try:
                chunk = c.sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        assert len(got) < 300000
    gh.wait_log("error.log", r"\[error\].*client_connection_memory_max "
                r"\(40960\) reached: \d+ bytes in use, 1 allocations "
                r"refused, client: 127\.0\.0\.1.*request: \"GET /up")
    assert gh.get("/").status == 200
    st = status(gh)
    assert st["memory_refused"] == 1 and st["memory_peak"] <= 40960 + 4096

    gh2 = gatehouse(conf=CONF.format(
        extra="client_connection_memory_max 0;",
        locations=f"location /up {{ proxy_pass http://{up.addr}; }}"))
    r = gh2.get("/up")
    assert r.status == 200 and len(r.body) == 300000
    assert 40960 < status(gh2)["memory_peak"] < 256 * 1024


def test_memory_metrics_prometheus(gatehouse):
    gh = gatehouse(conf=CONF.format(extra="", locations=""))
    with Conn(gh.port) as c:
        assert c.request("/").status == 200
        r = gh.get("/status?format=prometheus")
    assert r.status == 200
    text = r.body.decode()
    pid = gh.workers()[0]
    for name, kind in (("connections", "gauge"),
                       ("connection_memory_bytes", "gauge"),
                       ("connection_memory_peak_bytes", "gauge"),
                       ("connection_memory_refused_total", "counter")):
        assert f"# TYPE gatehouse_{name} {kind}\n" in text
        line = [ln for ln in text.splitlines()
                if ln.startswith(f"gatehouse_{name}{{")]
        assert line == [line[0]] and f'pid="{pid}"' in line[0], text
    mem = [ln for ln in text.splitlines()
           if ln.startswith("gatehouse_connection_memory_bytes{")][0]
    assert int(mem.split()[-1]) > 0


def test_memory_max_directive(gatehouse):
    gh = gatehouse(conf=CONF.format(
        extra="client_connection_memory_max 1x;", locations=""),
        start=False)
    r = gh.run("-t")
    assert r.returncode != 0
    assert "client_connection_memory_max" in r.stderr
    for bad in ("5g", "16k"):
        gh = gatehouse(conf=CONF.format(
            extra=f"client_connection_memory_max {bad};", locations=""),
            start=False)
        r = gh.run("-t")
        assert r.returncode != 0
        assert "must be 0 or from 32k to 4g" in r.stderr, r.stderr
    gh = gatehouse(conf=CONF.format(
        extra="client_connection_memory_max 0;", locations=""))
    assert gh.get("/").status == 200


def test_memory_returns_to_kernel_after_a_burst(gatehouse):
    """A burst of 400 connections each holding a request in progress (an
    unfinished 6 KiB head: a request arena and a large header buffer
    each) takes several MiB; once they are gone and the load has stopped,
    the worker gives the free pages back within about half a second
    (malloc_trim from a timer that waits for the load to drop), instead of
    keeping the burst's peak resident for good."""
    if asan_binary():
        pytest.skip("AddressSanitizer keeps freed memory in quarantine")
    n = 400
    need_fds(n + 200)
    gh = gatehouse(conf=CONF.format(extra="", locations="").replace(
        "error.log info;", "error.log debug;"))
    worker = gh.workers()[0]
    socks = open_idle(gh.port, 32)           # warm up
    for s in socks:
        s.close()
    time.sleep(0.3)
    base = rss(worker)
    part = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 6000
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", gh.port), timeout=5)
            s.sendall(part)
            socks.append(s)
        wait_until(lambda: status(gh)["memory"] > n * 8192, 5,
                   what="the burst's heads buffered")
        peak = rss(worker)
    finally:
        for s in socks:
            s.close()
    assert peak - base > 2 * 1024 * 1024, (base, peak)
    wait_until(lambda: rss(worker) - base < (peak - base) / 3, 4,
               what=f"RSS back near {base} from {peak} "
                    f"(now {rss(worker)})")
    # one trim did it (logged at debug level), not one per connection
    assert gh.error_log().count("malloc_trim(): ") == 1
