"""Same server list, same key -> the server nginx would choose.

Each test runs one configuration twice: through gatehouse, then through
Debian's nginx (skipped when /usr/sbin/nginx is not installed), with the
same ports so that the `server` texts the consistent hash is built from
are identical.  The backends answer their index, so the test compares
which backend every key, client address or request number reached.
"""

import pytest

from lbtools import (Nginx, backend_ports, backends, fetch, fetch_from,
                     have_nginx, upstream_block)

pytestmark = pytest.mark.skipif(not have_nginx(),
                                reason="nginx is not installed")


def both(gatehouse, tmp_path, ports, params, head, collect):
    """collect(port) through gatehouse, then through nginx."""
    text = (backends(ports) + upstream_block("u", ports, params, head=head)
            + "server { listen 127.0.0.1:{port}; "
              "location / { proxy_pass http://u; } }\n")
    gh = gatehouse(text)
    port = gh.port
    ours = collect(port)
    gh.stop()
    ngx = Nginx(tmp_path / "nginx", gh.subst(text), port).start()
    try:
        theirs = collect(port)
    finally:
        ngx.stop()
    return ours, theirs


def keyed(paths):
    def collect(port):
        from conftest import Conn
        with Conn(port) as c:
            return [fetch(c, p) for p in paths]
    return collect


def test_round_robin_order(gatehouse, tmp_path):
    ports = backend_ports(4)
    ours, theirs = both(gatehouse, tmp_path, ports,
                        ["weight=5", "", "weight=3", "weight=2 down"], "",
                        keyed(["/"] * 40))
    assert ours == theirs
    assert ours[:9] == ["0", "2", "0", "1", "0", "2", "0", "2", "0"]


def test_least_conn_sequential_is_round_robin(gatehouse, tmp_path):
    ports = backend_ports(3)
    ours, theirs = both(gatehouse, tmp_path, ports,
                        ["weight=2", "", ""], "least_conn;",
                        keyed(["/"] * 24))
    assert ours == theirs


def test_hash_key(gatehouse, tmp_path):
    ports = backend_ports(5)
    keys = [f"/?k=user{i}" for i in range(400)]
    ours, theirs = both(gatehouse, tmp_path, ports,
                        ["", "weight=2", "", "weight=3", "down"],
                        "hash $arg_k;", keyed(keys))
    assert ours == theirs
    assert "4" not in ours
    assert set(ours) == {"0", "1", "2", "3"}


def test_hash_consistent(gatehouse, tmp_path):
    ports = backend_ports(5)
    keys = [f"/?k=session-{i * 7919}" for i in range(400)]
    ours, theirs = both(gatehouse, tmp_path, ports,
                        ["", "weight=2", "", "", "down"],
                        "hash $arg_k consistent;", keyed(keys))
    assert ours == theirs
    assert "4" not in ours
    assert set(ours) == {"0", "1", "2", "3"}


def test_ip_hash(gatehouse, tmp_path):
    ports = backend_ports(4)
    ips = [f"127.{a}.{b}.9" for a in range(1, 16) for b in range(0, 250, 25)]

    def collect(port):
        return [fetch_from(port, "/", ip) for ip in ips]

    ours, theirs = both(gatehouse, tmp_path, ports,
                        ["", "weight=3", "down", ""], "ip_hash;", collect)
    assert ours == theirs
    assert "2" not in ours
    assert set(ours) == {"0", "1", "3"}


def test_next_upstream_answers(gatehouse, tmp_path):
    """Which answer a client gets when servers fail by status: retried
    GETs, POSTs passed on as the server answered, the last try's answer
    passed on as it came."""
    ports = backend_ports(3)
    body = {0: 'return 502 "a";', 1: 'return 503 "b";', 2: 'return 200 "c";'}
    text = (backends(ports, body=lambda i: body[i])
            + upstream_block("u", ports, ["max_fails=0"] * 3)
            + "server { listen 127.0.0.1:{port}; "
              "location / { proxy_pass http://u; "
              "proxy_next_upstream error http_502 http_503; } "
              "location /two { proxy_pass http://u; "
              "proxy_next_upstream_tries 2; "
              "proxy_next_upstream error http_502 http_503; } "
              "location /ni { proxy_pass http://u; "
              "proxy_next_upstream error http_502 non_idempotent; } }\n")

    def collect(port):
        from conftest import Conn
        out = []
        with Conn(port) as c:
            for path in ("/", "/two", "/ni"):
                for method in ("GET", "POST", "GET", "POST", "GET", "POST"):
                    r = c.request(path, method=method,
                                  body="x" if method == "POST" else None)
                    b = r.body.decode()
                    out.append((path, method, r.status,
                                b if b in ("a", "b", "c") else "page"))
        return out

    gh = gatehouse(text)
    port = gh.port
    ours = collect(port)
    gh.stop()
    ngx = Nginx(tmp_path / "nginx", gh.subst(text), port).start()
    try:
        theirs = collect(port)
    finally:
        ngx.stop()
    assert ours == theirs
    # the cases are not all alike
    assert {x[2:] for x in ours} >= {(200, "c"), (502, "a"), (503, "b")}
