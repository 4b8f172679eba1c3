"""Active health checks: health_check, match, one probe per interval.

The upstreams are the test servers of upstreams.py (threads that count
requests); a probe is recognised by its User-Agent.  Intervals are short
(200-300 ms) to keep the file fast; every wait is bounded.
"""

import json
import time

from conftest import wait_until
from lbtools import on_each_worker
from upstreams import respond


def probes(up):
    return [r for r in up.requests
            if r.header("User-Agent") == "gatehouse health check"]


def traffic(up):
    return [r for r in up.requests
            if r.header("User-Agent") != "gatehouse health check"]


def status(gh):
    return json.loads(gh.get("/status").body)


def peer_state(gh, name="u"):
    return [p["state"] for p in status(gh)["upstreams"][name]["peers"]]


def conf(a, b, check="health_check interval=200ms;", extra="",
         params=("", "")):
    return f"""
        upstream u {{
            zone u 64k;
            server {a.addr} {params[0]};
            server {b.addr} {params[1]};
        }}
        {extra}
        server {{
            listen 127.0.0.1:{{port}} reuseport;
            location / {{
                proxy_pass http://u;
                {check}
            }}
            location = /status {{ upstream_status; }}
        }}
    """


def test_failing_server_marked_down_and_up(gatehouse, upstream):
    a = upstream(respond(200, body="a"))
    b = upstream(respond(200, body="b"))
    gh = gatehouse(conf(a, b, "health_check interval=200ms fails=2 "
                              "passes=2 uri=/hc;"))
    wait_until(lambda: len(probes(a)) >= 1 and len(probes(b)) >= 1, 3,
               what="first probes")
    assert probes(a)[0].target == "/hc"
    assert probes(a)[0].header("Host") == "u"
    assert peer_state(gh) == ["up", "up"]

    # a starts failing: two failed probes (about 400 ms) take it out
    t0 = time.monotonic()
    a.handler = respond(500, body="broken")
    wait_until(lambda: peer_state(gh)[0] == "unhealthy", 3,
               what="a unhealthy")
    took = time.monotonic() - t0
    assert 0.2 <= took <= 1.5, took
    gh.wait_log("error.log", r"upstream server 127\.0\.0\.1:\d+ of \"u\" "
                r"failed its health check .*now unhealthy")
    before = len(traffic(a))
    bodies = {gh.get("/").body for _ in range(10)}
    assert bodies == {b"b"}
    assert len(traffic(a)) == before

    # a recovers: two passing probes bring it back
    a.handler = respond(200, body="a")
    wait_until(lambda: peer_state(gh)[0] == "up", 3, what="a healthy")
    assert {gh.get("/").body for _ in range(10)} == {b"a", b"b"}
    st = status(gh)["upstreams"]["u"]["peers"][0]["health_checks"]
    assert st["unhealthy"] == 1 and st["fails"] >= 2
    assert st["last_passed"] is True and st["last_status"] == 200


def test_one_probe_per_interval_across_workers(gatehouse, upstream):
    a = upstream(respond(200))
    b = upstream(respond(200))
    gatehouse(conf(a, b, "health_check interval=250ms;"), workers=2)
    wait_until(lambda: len(probes(a)) >= 1, 3, what="first probe")
    start = len(probes(a))
    time.sleep(2.0)
    n = len(probes(a)) - start
    # 8 intervals; two workers probing on their own would make 16
    assert 6 <= n <= 10, n
    times = [r.time for r in probes(a)]
    gaps = [y - x for x, y in zip(times, times[1:])]
    # probes are timed on arrival: one delayed by a busy machine shortens
    # the gap to the next, but two workers probing on their own would also
    # show gaps near 0 (the count above is the main check)
    assert min(gaps) >= 0.1, gaps


def test_workers_agree_on_health(gatehouse, upstream):
    a = upstream(respond(503))
    b = upstream(respond(200))
    gh = gatehouse(conf(a, b), workers=2)
    wait_until(lambda: peer_state(gh)[0] == "unhealthy", 3, what="verdict")
    # every worker sees the verdict and sends no client traffic to a
    got = on_each_worker(gh.port, lambda c: (
        json.loads(c.request("/status").body)["upstreams"]["u"]["peers"][0][
            "state"], c.request("/").status))
    for answers in got.values():
        assert all(x == ("unhealthy", 200) for x in answers), got
    assert traffic(a) == []


def test_match_block(gatehouse, upstream):
    ok = respond(200, [("X-Ready", "yes")], body="all systems go")
    a = upstream(ok)
    b = upstream(ok)
    gh = gatehouse(conf(a, b, "health_check interval=200ms match=ready;",
                        extra="""
        match ready {
            status 200-399;
            header X-Ready = yes;
            header ! X-Maintenance;
            body ~ "systems go";
        }
    """))
    wait_until(lambda: len(probes(a)) >= 2, 3, what="probes")
    assert peer_state(gh) == ["up", "up"]
    # each test on its own fails the check
    for bad in (respond(200, [("X-Ready", "no")], body="all systems go"),
                respond(200, [("X-Ready", "yes"), ("X-Maintenance", "1")],
                        body="all systems go"),
                respond(200, [("X-Ready", "yes")], body="down for repairs"),
                respond(404, [("X-Ready", "yes")], body="all systems go")):
        a.handler = bad
        wait_until(lambda: peer_state(gh)[0] == "unhealthy", 3,
                   what="unhealthy")
        a.handler = ok
        wait_until(lambda: peer_state(gh)[0] == "up", 3, what="healthy")


def test_chunked_body_and_port(gatehouse, upstream):
    a = upstream(respond(200, body="hello healthy world", framing="chunked"))
    probe_port = upstream(respond(200, body="ok"))
    b = upstream(respond(200))
    gh = gatehouse(conf(a, b, f"health_check interval=200ms match=m "
                              f"port={probe_port.port};",
                        extra='match m { body ~ "^ok$"; }'))
    # both servers are probed on the probe port, which answers "ok"
    wait_until(lambda: len(probes(probe_port)) >= 4, 3, what="probes")
    assert probes(a) == [] and probes(b) == []
    assert peer_state(gh) == ["up", "up"]

    gh2 = gatehouse(conf(a, b, "health_check interval=200ms match=m;",
                         extra='match m { body ~ "healthy w[aeiou]rld"; }'))
    # a's chunked answer is decoded before the regex; b's is empty
    wait_until(lambda: peer_state(gh2) == ["up", "unhealthy"], 3,
               what="verdicts on the bodies")
    wait_until(lambda: len(probes(a)) >= 3, 3, what="probes")
    assert peer_state(gh2) == ["up", "unhealthy"]


def test_mandatory_starts_unhealthy(gatehouse, upstream):
    a = upstream(respond(200, body="a"))
    b = upstream(respond(500, body="b"))
    gh = gatehouse(conf(a, b, "health_check interval=200ms mandatory;"))
    # until its first probe passes a server is "checking" and gets
    # nothing (502 while both are); b never passes, so never gets any
    seen = []

    def a_answers():
        r = gh.get("/")
        seen.append(r.status)
        return r.status == 200 and r.body == b"a"
    wait_until(a_answers, 3, interval=0.01, what="a in service")
    assert set(seen) <= {200, 502}
    wait_until(lambda: peer_state(gh) == ["up", "unhealthy"], 3,
               what="first verdicts")
    for _ in range(10):
        assert gh.get("/").body == b"a"
    assert traffic(b) == []


def test_unreachable_and_hanging_servers(gatehouse, upstream):
    a = upstream(respond(200))
    hang = upstream(lambda req, w: w.hang(3))
    closed = upstream.closed_port()
    gh = gatehouse(f"""
        upstream u {{
            zone u 64k;
            server {a.addr};
            server {hang.addr};
            server {closed.addr};
            server 127.0.0.1:1 down;
        }}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{ proxy_pass http://u; health_check interval=300ms; }}
            location = /status {{ upstream_status; }}
        }}
    """)
    # refused at once; the hanging one after the timeout (1 s)
    wait_until(lambda: peer_state(gh)[2] == "unhealthy", 3,
               what="closed port unhealthy")
    wait_until(lambda: peer_state(gh)[1] == "unhealthy", 4,
               what="hanging server unhealthy")
    assert peer_state(gh) == ["up", "unhealthy", "unhealthy", "down"]
    for _ in range(5):
        assert gh.get("/").status == 200


def test_slow_start_after_recovery(gatehouse, upstream):
    a = upstream(respond(200, body="a"))
    b = upstream(respond(200, body="b"))
    gh = gatehouse(conf(a, b, "health_check interval=200ms;",
                        params=("slow_start=3s", "")))
    wait_until(lambda: peer_state(gh) == ["up", "up"], 3, what="up")
    a.handler = respond(500)
    wait_until(lambda: peer_state(gh)[0] == "unhealthy", 3, what="down")
    a.handler = respond(200, body="a")
    wait_until(lambda: peer_state(gh)[0] == "up", 3, what="up again")
    # right after its return a gets far less than its half
    got = [gh.get("/").body for _ in range(40)]
    assert got.count(b"a") <= 12, got.count(b"a")
