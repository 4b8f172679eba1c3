"""Passive health, retries and limits: backup, max_fails/fail_timeout,
proxy_next_upstream per condition, non-idempotent requests,
proxy_next_upstream_tries/_timeout, max_conns; and zone-shared state
across two workers.
"""

import threading
import time

import pytest

from conftest import Conn, wait_until
from lbtools import on_each_worker
from upstreams import close_now, hang, raw, respond


def group(*servers, head="", tail=""):
    lines = "\n".join(f"    server {s};" for s in servers)
    return f"upstream u {{\n    {head}\n{lines}\n    {tail}\n}}\n"


def site(location="", extra=""):
    return f"""
        {extra}
        server {{
            listen 127.0.0.1:{{port}} reuseport;
            location / {{ proxy_pass http://u; {location} }}
            location = /status {{ upstream_status; }}
        }}
    """


def test_backup_only_when_primaries_fail(gatehouse, upstream):
    a = upstream(respond(200, body="a"))
    b = upstream(respond(200, body="b"))
    bk = upstream(respond(200, body="backup"))
    gh = gatehouse(group(a.addr, b.addr, f"{bk.addr} backup") + site())
    got = {gh.get("/").body for _ in range(30)}
    assert got == {b"a", b"b"}
    assert bk.requests == []

    # an error (the default proxy_next_upstream) on both primaries
    a.handler = b.handler = close_now
    r = gh.get("/")
    assert r.body == b"backup"
    # both primaries are in their fail window: straight to the backup
    na, nb = len(a.requests), len(b.requests)
    for _ in range(10):
        assert gh.get("/").body == b"backup"
    assert (len(a.requests), len(b.requests)) == (na, nb)


def test_max_fails_and_fail_timeout(gatehouse, upstream):
    a = upstream(respond(502, body="bad"))
    b = upstream(respond(200, body="b"))
    gh = gatehouse(group(f"{a.addr} max_fails=2 fail_timeout=1s", b.addr)
                   + site("proxy_next_upstream error http_502;"))
    # two failures within the window take a out
    t0 = time.monotonic()
    for _ in range(8):
        assert gh.get("/").body == b"b"
    assert len(a.requests) == 2
    gh.wait_log("error.log", r"upstream server temporarily disabled")
    # out for fail_timeout, then one request tries it again
    wait_until(lambda: (gh.get("/"), len(a.requests) == 3)[1], 3,
               interval=0.05, what="a tried again")
    assert time.monotonic() - t0 >= 1.0
    # that failure takes it out again at once
    for _ in range(5):
        gh.get("/")
    assert len(a.requests) == 3


@pytest.mark.parametrize("cond,handler,status", [
    ("error", None, 502),
    ("timeout", hang, 504),
    ("invalid_header", raw(b"HTTP/1.1 2x0 no\r\n\r\n"), 502),
    ("http_500", respond(500), 500),
    ("http_502", respond(502), 502),
    ("http_503", respond(503), 503),
    ("http_504", respond(504), 504),
    ("http_403", respond(403), 403),
    ("http_404", respond(404), 404),
    ("http_429", respond(429), 429),
])
def test_next_upstream_condition(gatehouse, upstream, cond, handler, status):
    bad = upstream.closed_port() if handler is None else upstream(handler)
    good = upstream(respond(200, body="good"))
    text = (group(f"{bad.addr} max_fails=0", f"{good.addr} max_fails=0")
            + site(f"proxy_next_upstream {cond}; proxy_read_timeout 300ms;"
                   f"proxy_connect_timeout 300ms;"))
    gh = gatehouse(text)
    # round robin starts with the first server: the retry answers
    assert gh.get("/").body == b"good"
    gh.stop()

    # without the condition the first answer (or error) stands
    gh = gatehouse(group(f"{bad.addr} max_fails=0", f"{good.addr}")
                   + site("proxy_next_upstream off; "
                          "proxy_read_timeout 300ms;"))
    assert gh.get("/").status == status


def test_post_not_retried_unless_non_idempotent(gatehouse, upstream):
    a = upstream(respond(502, body="a"))
    b = upstream(respond(200, body="b"))
    gh = gatehouse(group(f"{a.addr} max_fails=0", f"{b.addr} max_fails=0")
                   + site("proxy_next_upstream error http_502;"))
    # the POST reached a: it is not sent again, a's answer is passed on
    # (as nginx does)
    r = gh.request("/", method="POST", body="x=1")
    assert (r.status, r.body) == (502, b"a")
    assert (len(a.requests), len(b.requests)) == (1, 0)
    # GET is retried
    assert gh.get("/").body == b"b"
    gh.stop()

    gh = gatehouse(group(f"{a.addr} max_fails=0", f"{b.addr} max_fails=0")
                   + site("proxy_next_upstream error http_502 "
                          "non_idempotent;"))
    r = gh.request("/", method="POST", body="x=1")
    assert (r.status, r.body) == (200, b"b")


def test_post_retried_when_never_sent(gatehouse, upstream):
    closed = upstream.closed_port()
    b = upstream(respond(200, body="b"))
    gh = gatehouse(group(closed.addr, b.addr) + site())
    # connect() refused: nothing was sent, so even a POST moves on
    r = gh.request("/", method="POST", body="x=1")
    assert (r.status, r.body) == (200, b"b")


def test_next_upstream_tries(gatehouse, upstream):
    ups = [upstream(respond(502)) for _ in range(4)]
    gh = gatehouse(group(*[f"{u.addr} max_fails=0" for u in ups])
                   + site("proxy_next_upstream http_502; "
                          "proxy_next_upstream_tries 2;"))
    r = gh.get("/")
    assert sum(len(u.requests) for u in ups) == 2
    # the last answer is passed on as it came, not replaced
    assert r.status == 502 and r.body == b""
    # without a limit every server is tried once
    gh.stop()
    gh = gatehouse(group(*[f"{u.addr} max_fails=0" for u in ups])
                   + site("proxy_next_upstream http_502;"))
    before = sum(len(u.requests) for u in ups)
    assert gh.get("/").status == 502
    assert sum(len(u.requests) for u in ups) - before == 4


def test_next_upstream_timeout(gatehouse, upstream):
    ups = [upstream(hang) for _ in range(5)]
    gh = gatehouse(group(*[f"{u.addr} max_fails=0" for u in ups])
                   + site("proxy_read_timeout 400ms; "
                          "proxy_next_upstream_timeout 1s;"))
    t0 = time.monotonic()
    assert gh.get("/").status == 504
    took = time.monotonic() - t0
    # 400 ms per try; no new try once a second has passed: 3 tries
    assert 1.0 <= took <= 1.8, took
    assert sum(len(u.requests) for u in ups) == 3


def test_max_conns_502_when_all_busy(gatehouse, upstream):
    slow = upstream(lambda req, w: (time.sleep(1.0), w.reply(200, body="s")))
    gh = gatehouse(group(f"{slow.addr} max_conns=1") + site())
    out = []
    t = threading.Thread(target=lambda: out.append(gh.get("/")))
    t.start()
    wait_until(lambda: len(slow.requests) == 1, 3, what="first request")
    t0 = time.monotonic()
    r = gh.get("/")
    assert r.status == 502 and time.monotonic() - t0 < 0.5
    gh.wait_log("error.log", r"no live upstreams")
    t.join(5)
    assert out[0].status == 200
    # free again
    assert gh.get("/").status == 200


def test_max_conns_spills_to_the_other_server(gatehouse, upstream):
    gate = threading.Event()
    slow = upstream(lambda req, w: (gate.wait(5), w.reply(200, body="s")))
    fast = upstream(respond(200, body="f"))
    gh = gatehouse(group(f"{slow.addr} max_conns=1", fast.addr,
                         head="least_conn;") + site())
    out = []
    t = threading.Thread(target=lambda: out.append(gh.get("/")))
    t.start()
    wait_until(lambda: len(slow.requests) == 1, 3, what="slow one busy")
    for _ in range(6):
        assert gh.get("/").body == b"f"
    gate.set()
    t.join(5)
    assert out[0].body == b"s"


def test_least_conn_with_slow_upstream(gatehouse, upstream):
    slow = upstream(lambda req, w: (time.sleep(0.6), w.reply(200, body="s")))
    fast = upstream(lambda req, w: (time.sleep(0.05),
                                    w.reply(200, body="f")))
    gh = gatehouse(group(slow.addr, fast.addr, head="least_conn;") + site())
    results = []

    def client():
        for _ in range(6):
            results.append(gh.get("/").body)
    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    # round robin would give the slow server half (12 of 24); least_conn
    # keeps new requests off it while it holds some
    assert len(results) == 24
    assert results.count(b"s") <= 8, results.count(b"s")


def test_least_time_prefers_fast_server(gatehouse, upstream):
    slow = upstream(lambda req, w: (time.sleep(0.08),
                                    w.reply(200, body="s")))
    fast = upstream(respond(200, body="f"))
    gh = gatehouse(group(slow.addr, fast.addr, head="least_time header;")
                   + site())
    with Conn(gh.port) as c:
        got = [c.request("/").body for _ in range(40)]
    # both are measured early on, then the fast one takes nearly all
    assert got[10:].count(b"s") <= 2, got


def test_zone_shares_failures_across_workers(gatehouse, upstream):
    a = upstream(respond(502, body="a"))
    b = upstream(respond(200, body="b"))
    gh = gatehouse(group(f"{a.addr} max_fails=1 fail_timeout=30s", b.addr,
                         tail="zone u 64k;")
                   + site("proxy_next_upstream error http_502;"),
                   workers=2)
    # both workers serve requests; only the first one reaches a
    on_each_worker(gh.port, lambda c: c.request("/").body)
    on_each_worker(gh.port, lambda c: c.request("/").body)
    # one worker's failure took a out for both
    assert len(a.requests) == 1


def test_zone_shares_max_conns_across_workers(gatehouse, upstream):
    gate = threading.Event()
    slow = upstream(lambda req, w: (gate.wait(5), w.reply(200, body="s")))
    fast = upstream(respond(200, body="f"))
    gh = gatehouse(group(f"{slow.addr} max_conns=1", fast.addr,
                         tail="zone u 64k;") + site(), workers=2)
    out = []
    t = threading.Thread(target=lambda: out.append(gh.get("/")))
    t.start()
    wait_until(lambda: len(slow.requests) == 1, 3, what="slow one busy")
    # whichever worker answers, the slow server is full
    got = on_each_worker(gh.port, lambda c: c.request("/").body)
    assert all(b == b"f" for bodies in got.values() for b in bodies)
    gate.set()
    t.join(5)
    assert len(slow.requests) == 1
