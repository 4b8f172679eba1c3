"""upstream_status: JSON and Prometheus views of every upstream{} group."""

import json
import re

from conftest import Conn, wait_until
from upstreams import close_now, respond


def make(gatehouse, a, b, c, workers=1, zone=True):
    return gatehouse(f"""
        upstream app {{
            {"zone app 64k;" if zone else ""}
            least_conn;
            server {a.addr} weight=2;
            server {b.addr} max_fails=1 fail_timeout=30s;
            server {c.addr} backup;
        }}
        server {{
            listen 127.0.0.1:{{port}} reuseport;
            location / {{ proxy_pass http://app; }}
            location /implicit {{ proxy_pass http://{a.addr}; }}
            location = /status {{ upstream_status; }}
        }}
    """, workers=workers)


def test_json(gatehouse, upstream):
    a = upstream(respond(200))
    b = upstream(close_now)
    c = upstream(respond(404))
    gh = make(gatehouse, a, b, c)
    with Conn(gh.port) as conn:
        for _ in range(6):
            assert conn.request("/").status == 200
    r = gh.get("/status")
    assert r.status == 200
    assert r.header("Content-Type") == "application/json"
    assert r.header("Cache-Control") == "no-store"
    st = json.loads(r.body)
    assert isinstance(st["pid"], int) and st["time"] > 1.6e12
    # only upstream{} blocks, not proxy_pass host:port
    assert list(st["upstreams"]) == ["app"]
    app = st["upstreams"]["app"]
    assert app["method"] == "least_conn"
    assert app["zone"] == "app" and app["shared"] is True
    pa, pb, pc = app["peers"]
    assert pa["server"] == a.addr and pa["name"] == a.addr
    assert (pa["weight"], pa["backup"], pa["state"]) == (2, False, "up")
    assert pa["requests"] == 6 and pa["responses"]["2xx"] == 6
    assert pa["fails"] == 0 and pa["active"] == 0
    assert pa["header_time"] > 0 and pa["response_time"] >= \
        pa["header_time"]
    assert pa["selected"] > 1.6e12
    assert "health_checks" not in pa
    # b closed on its first request: one failure, out for 30 s
    assert (pb["requests"], pb["fails"], pb["unavail"]) == (1, 1, 1)
    assert pb["state"] == "unavail"
    assert pb["header_time"] is None
    assert pc["backup"] is True and pc["requests"] == 0


def test_prometheus(gatehouse, upstream):
    a, b, c = (upstream(respond(200)) for _ in range(3))
    gh = make(gatehouse, a, b, c)
    for _ in range(3):
        gh.get("/")
    for ask in ({"path": "/status?format=prometheus"},
                {"path": "/status", "headers": [("Accept", "text/plain")]}):
        r = gh.get(**ask)
        assert r.header("Content-Type").startswith("text/plain; "
                                                   "version=0.0.4")
        text = r.text
        for line in text.splitlines():
            assert line.startswith("#") or re.fullmatch(
                r'gatehouse_(upstream_server_\w+|connections'
                r'|connection_memory_\w+)\{[^}]*\} [0-9.e+-]+', line), \
                line
        lab = f'upstream="app",server="{a.addr}",backup="0",shared="1"'
        assert f"gatehouse_upstream_server_up{{{lab}}} 1" in text
        assert f'gatehouse_upstream_server_state{{{lab},state="up"}} 1' \
            in text
        assert f"gatehouse_upstream_server_weight{{{lab}}} 2" in text
        assert f'gatehouse_upstream_server_responses_total{{{lab},' \
               f'code="2xx"}}' in text
        assert "# TYPE gatehouse_upstream_server_requests_total counter" \
            in text
        total = sum(int(m) for m in re.findall(
            r'gatehouse_upstream_server_requests_total\{[^}]*\} (\d+)',
            text))
        assert total == 3
    # ?format=json wins over Accept
    r = gh.get("/status?format=json", headers=[("Accept", "text/plain")])
    assert r.header("Content-Type") == "application/json"


def test_without_zone_counts_are_per_worker(gatehouse, upstream):
    a, b, c = (upstream(respond(200)) for _ in range(3))
    gh = make(gatehouse, a, b, c, zone=False)
    gh.get("/")
    app = json.loads(gh.get("/status").body)["upstreams"]["app"]
    assert app["zone"] is None and app["shared"] is False
    assert sum(p["requests"] for p in app["peers"]) == 1


def test_status_method(gatehouse, upstream):
    a, b, c = (upstream(respond(200)) for _ in range(3))
    gh = make(gatehouse, a, b, c)
    assert gh.request("/status", method="POST", body="x").status == 405
    r = gh.request("/status", method="HEAD")
    assert r.status == 200 and r.body == b""


def test_reload_starts_the_zone_afresh(gatehouse, upstream):
    a, b, c = (upstream(respond(200)) for _ in range(3))
    gh = make(gatehouse, a, b, c, workers=2)
    for _ in range(5):
        assert gh.get("/").status == 200
    app = json.loads(gh.get("/status").body)["upstreams"]["app"]
    assert sum(p["requests"] for p in app["peers"]) == 5
    old = set(gh.workers())
    gh.reload()
    new = gh.wait_workers(2, exclude=old)

    # the new workers have a zone of their own, laid out for the new
    # configuration; counting starts over (as nginx's upstream zones do)
    def fresh():
        st = json.loads(gh.get("/status").body)
        return st["pid"] in new and st
    st = wait_until(fresh, 3, what="a new worker answering")
    assert sum(p["requests"] for p in st["upstreams"]["app"]["peers"]) == 0
    for _ in range(4):
        assert gh.get("/").status == 200
    st = wait_until(fresh, 3, what="a new worker answering")
    assert sum(p["requests"] for p in st["upstreams"]["app"]["peers"]) == 4


def test_resolved_servers_share_the_zone(gatehouse, upstream, request):
    """Peers made by `resolve` at run time find their state in the zone by
    address: every worker counts into the same entry."""
    from test_resolver import dns_server
    dns = dns_server(request)
    a = upstream(respond(200))
    dns.set("app.test", "127.0.0.1")
    gh = gatehouse(f"""
        resolver {dns.addr} valid=30s ipv6=off;
        upstream app {{
            zone app 64k;
            server app.test:{a.port} resolve;
        }}
        server {{
            listen 127.0.0.1:{{port}} reuseport;
            location / {{ proxy_pass http://app; }}
            location = /status {{ upstream_status; }}
        }}
    """, workers=2)
    pids = set()

    def both_workers_resolved():
        r = gh.get("/")
        pids.add(json.loads(gh.get("/status").body)["pid"])
        return r.status == 200 and len(pids) == 2
    wait_until(both_workers_resolved, 5, interval=0.05,
               what="both workers serving")
    sent = len(a.requests)
    for _ in range(6):
        peers = json.loads(gh.get("/status").body)["upstreams"]["app"][
            "peers"]
        assert [p["name"] for p in peers] == [a.addr]
        assert peers[0]["requests"] == sent
