"""upstream_loopback_congestion (gatehouse only): new connections to a
loopback upstream get the named TCP congestion control (default reno)
instead of the system's (often bbr, whose pacing timers cost a large
share of the CPU when bulk bodies go to a local application and do
nothing useful on loopback).  `off` keeps the system's default.  The
setting is read off gatehouse's own upstream socket (a duplicate of the
worker's fd answers getsockopt)."""

import socket

from test_syscalls import proxy_conf as conf
from test_syscalls import worker_socket

TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)


def system_cc():
    with open("/proc/sys/net/ipv4/tcp_congestion_control") as f:
        return f.read().strip()


def congestion_of_upstream_conn(gh, up):
    assert gh.get("/x").status == 200          # leaves it in the pool
    [worker] = gh.workers()
    with worker_socket(worker, None, up.port) as s:
        return s.getsockopt(socket.IPPROTO_TCP, TCP_CONGESTION,
                            16).rstrip(b"\0").decode()


def test_loopback_upstream_gets_reno_by_default(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(conf(up.addr))
    assert congestion_of_upstream_conn(gh, up) == "reno"


def test_off_keeps_the_system_default(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(conf(up.addr, "upstream_loopback_congestion off;"))
    assert congestion_of_upstream_conn(gh, up) == system_cc()


def test_named_algorithm(gatehouse, upstream):
    up = upstream()
    name = system_cc()        # one the kernel surely has
    gh = gatehouse(conf(up.addr, f"upstream_loopback_congestion {name};"))
    assert congestion_of_upstream_conn(gh, up) == name


def test_unknown_algorithm_warns_once_and_proxies(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(conf(up.addr, "upstream_loopback_congestion nosuchcc;"))
    for i in range(3):
        # a new upstream connection each time
        r = gh.get(f"/n{i}", headers=[("Connection", "close")])
        assert r.status == 200
    log = gh.error_log()
    assert log.count('setsockopt(TCP_CONGESTION, "nosuchcc") failed') == 1, \
        log


def test_config_errors(gatehouse):
    for line, msg in [
        ("upstream_loopback_congestion a/b;",
         "invalid congestion control name"),
        ("upstream_loopback_congestion abcdefghijklmnopq;",
         "invalid congestion control name"),
        ("upstream_loopback_congestion reno;\n"
         "upstream_loopback_congestion reno;",
         "is duplicate"),
    ]:
        gh = gatehouse(f"""\
            {line}
            server {{ listen 127.0.0.1:{{port}}; }}
            """, start=False)
        r = gh.run("-t")
        assert r.returncode != 0
        assert msg in r.stderr, r.stderr
        assert str(gh.conf_path) + ":" in r.stderr, r.stderr
    gh = gatehouse("""\
        server {
            listen 127.0.0.1:{port};
            upstream_loopback_congestion reno;
        }
        """, start=False)
    r = gh.run("-t")
    assert r.returncode != 0
    assert '"upstream_loopback_congestion" directive is not allowed here' \
        in r.stderr, r.stderr
