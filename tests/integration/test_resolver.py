"""Names resolved at run time: `resolver`, `resolver_timeout`, proxy_pass
with a host name in variables, and `server NAME resolve;` following a
changing A record.

The name server is DNSServer below: stdlib UDP on 127.0.0.1 (ephemeral
port), answering A/AAAA from a dict the test changes, NXDOMAIN for names
it does not know, nothing at all when silent, and counting the queries.
Upstreams on 127.0.0.2 work because Linux routes all of 127/8 to lo.
"""

import socket
import struct
import threading
import time

import pytest

from conftest import simple_server, wait_until
from upstreams import Seen

TYPE_A, TYPE_AAAA = 1, 28


class DNSServer:
    """records: {"name": ["127.0.0.1", "::1", ...]} (lowercase, no final
    dot).  .queries: [(name, qtype)] in arrival order; .silent: drop
    everything; .ttl: TTL of the answers."""

    def __init__(self, ttl=300):
        self.records = {}
        self.queries = []
        self.silent = False
        self.ttl = ttl
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="dns",
                                       daemon=True)
        self.thread.start()

    def set(self, name, *ips):
        with self.lock:
            self.records[name] = list(ips)

    def count(self, name, qtype=TYPE_A):
        with self.lock:
            return sum(1 for q in self.queries if q == (name, qtype))

    def stop(self):
        self.stopping = True
        self.thread.join(3)
        self.sock.close()

    @staticmethod
    def _qname(data):
        labels, off = [], 12
        while data[off]:
            n = data[off]
            labels.append(data[off + 1:off + 1 + n].decode("ascii").lower())
            off += 1 + n
        return ".".join(labels), off + 1

    def _run(self):
        while not self.stopping:
            try:
                data, peer = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                reply = self._answer(data)
            except (IndexError, UnicodeDecodeError, struct.error):
                continue
            if reply is not None:
                self.sock.sendto(reply, peer)

    def _answer(self, data):
        ident = data[:2]
        name, end = self._qname(data)
        qtype, _ = struct.unpack(">HH", data[end:end + 4])
        question = data[12:end + 4]
        with self.lock:
            self.queries.append((name, qtype))
            if self.silent:
                return None
            ips = self.records.get(name)
        if ips is None:
            return ident + struct.pack(">HHHHH", 0x8183, 1, 0, 0, 0) + question
        answers = b""
        n = 0
        for ip in ips:
            if qtype == TYPE_A and ":" not in ip:
                rdata = socket.inet_pton(socket.AF_INET, ip)
            elif qtype == TYPE_AAAA and ":" in ip:
                rdata = socket.inet_pton(socket.AF_INET6, ip)
            else:
                continue
            answers += struct.pack(">HHHIH", 0xc00c, qtype, 1, self.ttl,
                                   len(rdata)) + rdata
            n += 1
        return (ident + struct.pack(">HHHHH", 0x8180, 1, n, 0, 0) + question
                + answers)


def dns_server(request, ttl=300):
    srv = DNSServer(ttl)
    request.addfinalizer(srv.stop)
    return srv


def proxy_by_variable(dns, host, port, extra=""):
    return f"""\
        resolver {dns.addr} valid=30s ipv6=off;
        {extra}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{
                set $backend_host {host};
                proxy_pass http://$backend_host:{port}$request_uri;
            }}
        }}
    """


def test_variable_host_is_resolved_and_cached(gatehouse, upstream, request):
    dns = dns_server(request)
    up = upstream()
    dns.set("backend.test", "127.0.0.1")
    gh = gatehouse(proxy_by_variable(dns, "Backend.Test", up.port))

    r = gh.get("/a/b?c=d")
    assert r.status == 200, r
    seen = Seen(r)
    assert seen.target == "/a/b?c=d"
    assert seen.header("Host") == f"Backend.Test:{up.port}"
    # the second request is answered from the worker's cache
    assert gh.get("/again").status == 200
    assert dns.count("backend.test") == 1
    assert dns.count("backend.test", TYPE_AAAA) == 0     # ipv6=off
    assert len(up.requests) == 2


def test_valid_expires(gatehouse, upstream, request):
    dns = dns_server(request)
    up = upstream()
    dns.set("short.test", "127.0.0.1")
    gh = gatehouse(proxy_by_variable(dns, "short.test", up.port).replace(
        "valid=30s", "valid=1s"))
    assert gh.get("/").status == 200
    assert gh.get("/").status == 200
    assert dns.count("short.test") == 1
    time.sleep(1.2)
    assert gh.get("/").status == 200
    assert dns.count("short.test") == 2


def test_all_addresses_are_peers(gatehouse, upstream, request):
    """Two A records, one refusing connections: next upstream moves on."""
    dns = dns_server(request)
    up = upstream()
    dns.set("multi.test", "127.0.0.3", "127.0.0.1")
    gh = gatehouse(proxy_by_variable(dns, "multi.test", up.port))
    for _ in range(4):
        assert gh.get("/").status == 200
    assert len(up.requests) == 4


def test_nxdomain_is_502(gatehouse, request):
    dns = dns_server(request)
    gh = gatehouse(proxy_by_variable(dns, "nope.test", 9))
    r = gh.get("/x")
    assert r.status == 502
    line = gh.wait_log("error.log",
                       r"\[error\] .*nope\.test could not be resolved "
                       r"\(3: Host not found\).*")
    assert 'request: "GET /x HTTP/1.1"' in line.group(0)
    # negative answers are cached too
    assert gh.get("/x").status == 502
    assert dns.count("nope.test") == 1


def test_timeout_is_502(gatehouse, request):
    dns = dns_server(request)
    dns.silent = True
    gh = gatehouse(proxy_by_variable(dns, "slow.test", 9,
                                     extra="resolver_timeout 1s;"))
    t0 = time.monotonic()
    r = gh.get("/")
    took = time.monotonic() - t0
    assert r.status == 502
    assert 0.8 <= took < 4, took
    gh.wait_log("error.log", r"slow\.test could not be resolved "
                r"\(110: Operation timed out\)")
    assert dns.count("slow.test") >= 1


def test_no_resolver_is_502(gatehouse):
    gh = gatehouse(simple_server("""\
        location / {
            set $h backend.test;
            proxy_pass http://$h:9;
        }
    """))
    assert gh.get("/").status == 502
    gh.wait_log("error.log", r"no resolver defined to resolve backend\.test")


def test_client_gone_while_resolving(gatehouse, upstream, request):
    """The lookup outlives the request: it is cancelled, nothing breaks,
    and the next request for the name is answered."""
    dns = dns_server(request)
    up = upstream()
    dns.silent = True
    gh = gatehouse(proxy_by_variable(dns, "later.test", up.port,
                                     extra="resolver_timeout 3s;"))
    c = gh.conn()
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_until(lambda: dns.count("later.test") >= 1, 3, what="the query")
    c.close()
    time.sleep(0.2)
    dns.silent = False
    dns.set("later.test", "127.0.0.1")
    r = gh.get("/after")
    assert r.status == 200
    assert Seen(r).target == "/after"
    assert [q.target for q in up.requests] == ["/after"]


@pytest.mark.parametrize("zone", ["", "zone app 64k;"])
def test_upstream_server_follows_dns(gatehouse, upstream, request, zone):
    dns = dns_server(request)
    b = upstream(name="B")                           # 127.0.0.1:P
    a = upstream(name="A", host="127.0.0.2", port=b.port)
    dns.set("app.test", "127.0.0.2")
    gh = gatehouse(f"""\
        resolver {dns.addr} valid=1s ipv6=off;
        resolver_timeout 2s;
        upstream app {{
            {zone}
            server app.test:{b.port} resolve;
        }}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{ proxy_pass http://app; }}
        }}
    """)
    # the worker resolves the name right after it starts
    wait_until(lambda: gh.get("/").status == 200, 5, interval=0.1,
               what="a first answer through app.test")
    n_a = len(a.requests)
    assert n_a >= 1 and len(b.requests) == 0
    gh.wait_log("error.log", r'upstream "app": server "app\.test:\d+" now '
                r"resolves to 127\.0\.0\.2:\d+")

    dns.set("app.test", "127.0.0.1")
    wait_until(lambda: (gh.get("/").status == 200 and len(b.requests) > 0),
               5, interval=0.1, what="requests moving to B")
    before = len(a.requests)
    for _ in range(3):
        assert gh.get("/").status == 200
    assert len(a.requests) == before
    assert dns.count("app.test") >= 2

    # the name disappears: the group is left without peers
    with dns.lock:
        del dns.records["app.test"]
    wait_until(lambda: gh.get("/").status == 502, 5, interval=0.1,
               what="502 once the name is gone")
    gh.wait_log("error.log", r"app\.test could not be resolved "
                r"\(3: Host not found\) while resolving upstream \"app\"")


def test_resolve_needs_a_resolver(gatehouse):
    gh = gatehouse("""\
        upstream app {
            server app.test:8080 resolve;
        }
        server {
            listen 127.0.0.1:{port};
            location / { proxy_pass http://app; }
        }
    """, start=False)
    r = gh.run("-t")
    assert r.returncode == 1
    assert ('[emerg] no resolver defined to resolve app.test:8080 in '
            f'upstream "app" in {gh.where("server app.test")}') in r.stderr, \
        r.stderr


def test_resolver_directive_errors(gatehouse):
    for conf, msg in [
        ("resolver 127.0.0.1 ipv4=off ipv6=off;",
         '"ipv4" and "ipv6" cannot both be "off"'),
        ("resolver 127.0.0.1 valid=soon;", 'invalid parameter "valid=soon"'),
        ("resolver valid=5s;", '"resolver" directive has no name server'),
    ]:
        gh = gatehouse(conf + "\n" + simple_server(
            "location / { return 200; }\n"), start=False)
        r = gh.run("-t")
        assert r.returncode == 1, conf
        assert msg in r.stderr, (conf, r.stderr)
