"""TLS to upstreams: proxy_pass https://, proxy_ssl_server_name /
proxy_ssl_name, proxy_ssl_verify with proxy_ssl_trusted_certificate,
client certificates, session reuse over pooled and new connections."""

import json
import time

import pytest

from conftest import build_request, simple_server
from tlsutil import (pki, client_ctx, tls_conn, TlsUpstream,   # noqa: F401
                     server_ctx)
from upstreams import pattern_sha256, sha256, pattern_chunks


@pytest.fixture
def tls_upstream(pki):
    started = []

    def make(cn="up.test", handler=None, ca=None, require_client=False,
             **kw):
        ctx = server_ctx(pki.cert(cn), ca=ca, require_client=require_client)
        up = TlsUpstream(ctx, handler, **kw)
        started.append(up)
        return up.start()
    yield make
    for up in started:
        up.stop()


def test_proxy_pass_https_basic(gatehouse, tls_upstream):
    up = tls_upstream()
    gh = gatehouse(simple_server(f"""
        location / {{ proxy_pass https://{up.addr}; }}
    """))
    r = gh.get("/x?y=1")
    assert r.status == 200, r
    seen = json.loads(r.body)
    assert seen["line"] == "GET /x?y=1 HTTP/1.0"
    assert up.tls_info[0]["sni"] is None      # proxy_ssl_server_name off


def test_sni_sent_with_proxy_ssl_server_name(gatehouse, tls_upstream):
    up = tls_upstream()
    gh = gatehouse(simple_server(f"""
        location /default/ {{
            proxy_pass https://{up.addr}/;
            proxy_ssl_server_name on;
        }}
        location /named/ {{
            proxy_pass https://{up.addr}/;
            proxy_ssl_server_name on;
            proxy_ssl_name up.test;
        }}
        location /var/ {{
            proxy_pass https://{up.addr}/;
            proxy_ssl_server_name on;
            proxy_ssl_name $http_x_name;
        }}
    """))
    assert gh.get("/default/").status == 200
    # the address is not a name: no SNI at all (RFC 6066)
    assert up.tls_info[-1]["sni"] is None
    assert gh.get("/named/").status == 200
    assert up.tls_info[-1]["sni"] == "up.test"
    assert gh.get("/var/", headers=[("X-Name", "v.test:8443")]).status == 200
    assert up.tls_info[-1]["sni"] == "v.test"


def test_verify_fails_on_wrong_name_and_passes_on_right(gatehouse, pki,
                                                        tls_upstream):
    up = tls_upstream("up.test")
    gh = gatehouse(simple_server(f"""
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate {pki.ca};
        proxy_ssl_server_name on;
        location /right/ {{
            proxy_pass https://{up.addr}/;
            proxy_ssl_name up.test;
        }}
        location /wrong/ {{
            proxy_pass https://{up.addr}/;
            proxy_ssl_name wrong.test;
        }}
        location /ip/ {{
            proxy_pass https://{up.addr}/;
        }}
    """))
    r = gh.get("/right/")
    assert r.status == 200
    r = gh.get("/wrong/")
    assert r.status == 502
    gh.wait_log("error.log", r'\[error\] .*upstream SSL certificate does not '
                r'match "wrong\.test" while SSL handshaking to upstream, '
                r'client: 127\.0\.0\.1, .*upstream: "https://127\.0\.0\.1:'
                + str(up.port) + '/"')
    r = gh.get("/ip/")
    assert r.status == 502
    gh.wait_log("error.log", r'does not match "127\.0\.0\.1"')


def test_verify_fails_on_untrusted_ca(gatehouse, pki, tls_upstream):
    up = tls_upstream("up.test")
    gh = gatehouse(simple_server(f"""
        location / {{
            proxy_pass https://{up.addr};
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {pki.other_ca};
            proxy_ssl_name up.test;
        }}
    """))
    r = gh.get("/")
    assert r.status == 502
    gh.wait_log("error.log", r"upstream SSL certificate verify error: "
                r"\(\d+:[^)]+\) while SSL handshaking to upstream")


def test_verify_off_by_default_accepts_anything(gatehouse, pki, tls_upstream):
    up = tls_upstream("whatever.test")
    gh = gatehouse(simple_server(f"""
        location / {{ proxy_pass https://{up.addr}; }}
    """))
    assert gh.get("/").status == 200


def test_client_certificate_to_upstream(gatehouse, pki, tls_upstream):
    up = tls_upstream("up.test", ca=pki.ca, require_client=True)
    crt, key = pki.client("gatehouse")
    gh = gatehouse(simple_server(f"""
        location /with/ {{
            proxy_pass https://{up.addr}/;
            proxy_ssl_certificate {crt};
            proxy_ssl_certificate_key {key};
        }}
        location /without/ {{
            proxy_pass https://{up.addr}/;
        }}
    """))
    assert gh.get("/with/").status == 200
    assert gh.get("/without/").status == 502


def test_session_reuse_across_new_and_pooled_connections(gatehouse,
                                                         tls_upstream):
    up = tls_upstream("up.test", keepalive=False)
    gh = gatehouse(simple_server(f"""
        location / {{ proxy_pass https://{up.addr}; }}
        location /noreuse/ {{
            proxy_pass https://{up.addr}/;
            proxy_ssl_session_reuse off;
        }}
    """))
    for _ in range(5):
        assert gh.get("/").status == 200
    reused = [i["reused"] for i in up.tls_info]
    assert reused[0] is False and all(reused[1:]), reused
    n = len(up.tls_info)
    for _ in range(3):
        assert gh.get("/noreuse/").status == 200
    assert not any(i["reused"] for i in up.tls_info[n:])


def test_keepalive_pool_over_tls(gatehouse, tls_upstream):
    up = tls_upstream("up.test")
    gh = gatehouse(f"""
        upstream backend {{
            server {up.addr};
            keepalive 4;
        }}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{
                proxy_pass https://backend;
                proxy_http_version 1.1;
                proxy_set_header Connection "";
            }}
        }}
    """)
    with gh.conn() as c:
        for i in range(10):
            r = c.request(f"/{i}")
            assert r.status == 200
            assert json.loads(r.body)["target"] == f"/{i}"
    assert up.connections == 1 and len(up.tls_info) == 1


def test_https_upstream_block_and_default_port(gatehouse, pki, tls_upstream):
    # proxy_pass https://NAME names an upstream{} block (no port 443 added)
    up = tls_upstream()
    gh = gatehouse(f"""
        server {{
            listen 127.0.0.1:{{port}};
            location / {{ proxy_pass https://backend; }}
            location /h {{ return 200 "$proxy_host"; }}
        }}
        upstream backend {{ server {up.addr}; }}
    """)
    r = gh.get("/a")
    assert r.status == 200
    assert json.loads(r.body)["line"] == "GET /a HTTP/1.0"
    assert up.requests[0].header("Host") == "backend"


def test_big_bodies_through_tls_on_both_sides(gatehouse, pki, tls_upstream):
    size = 10 * 1024 * 1024
    up = tls_upstream("up.test", handler=lambda req, w: w.reply(
        200, [("X-Sha", req.body_sha256)], b"".join(pattern_chunks(size))))
    crt, key = pki.cert("a.test")
    gh = gatehouse(simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        client_max_body_size 64m;
        location / {{ proxy_pass https://{up.addr}; }}
    """, listen="127.0.0.1:{port} ssl"))
    body = b"".join(pattern_chunks(size))
    with tls_conn(gh.port, "a.test", client_ctx(pki), timeout=60) as c:
        r = c.request("/big", method="POST", host="a.test", body=body)
    assert r.status == 200
    assert r.header("X-Sha") == pattern_sha256(size)
    assert sha256(r.body) == pattern_sha256(size)


def test_handshake_timeout_to_plain_http_upstream(gatehouse, upstream):
    up = upstream()              # speaks plain HTTP: waits for a request
    gh = gatehouse(simple_server(f"""
        location / {{
            proxy_pass https://{up.addr};
            proxy_connect_timeout 1s;
        }}
    """))
    r = gh.get("/")
    assert r.status == 504
    gh.wait_log("error.log", r"upstream timed out \(110: Connection timed "
                r"out\) while SSL handshaking to upstream")


def test_handshake_error_from_plain_http_upstream(gatehouse):
    # a server that answers the ClientHello with plain HTTP
    import socket
    import threading
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    port = ls.getsockname()[1]

    def serve():
        ls.settimeout(5)
        try:
            s, _ = ls.accept()
        except OSError:
            return
        s.settimeout(5)
        try:
            s.recv(4096)
            s.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        finally:
            s.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    gh = gatehouse(simple_server(f"""
        location / {{ proxy_pass https://127.0.0.1:{port}; }}
    """))
    r = gh.get("/")
    t.join(5)
    ls.close()
    assert r.status == 502
    gh.wait_log("error.log", r"SSL_do_handshake\(\) failed .*while SSL "
                 r"handshaking to upstream")


def test_upstream_verify_needs_trusted_certificate(gatehouse):
    gh = gatehouse(simple_server("""
        location / {
            proxy_pass https://127.0.0.1:1;
            proxy_ssl_verify on;
        }
    """), start=False)
    r = gh.run("-t")
    assert r.returncode != 0
    assert "no proxy_ssl_trusted_certificate for proxy_ssl_verify" in r.stderr
    assert gh.where("proxy_ssl_verify on") in r.stderr


@pytest.mark.parametrize("buffering", [
    "proxy_buffering off;",
    "proxy_buffering on; proxy_max_temp_file_size 0; proxy_buffers 4 8k;",
], ids=["unbuffered", "buffered-no-spool"])
def test_slow_client_pauses_reading_of_tls_upstream(gatehouse, pki,
                                                    tls_upstream, buffering):
    """the client does not read for a while: gatehouse stops reading the
    upstream with records already inside SSL (read-ahead), and must take
    them up again when the client drains, with no new edge from epoll"""
    size = 6 << 20
    # small records (one per 2008-byte piece): a read() takes several
    up = tls_upstream("up.test", handler=lambda req, w: w.reply(
        200, [], pattern_chunks(size, 251 * 8), length=size))
    crt, key = pki.cert("a.test")
    # a kept-alive upstream connection: no FIN to wake the reader up at
    # the end of the response
    gh = gatehouse(f"""
        upstream backend {{
            server {up.addr};
            keepalive 4;
        }}
        server {{
            listen 127.0.0.1:{{port}} ssl;
            server_name a.test;
            ssl_certificate {crt};
            ssl_certificate_key {key};
            location / {{
                proxy_pass https://backend;
                proxy_http_version 1.1;
                proxy_set_header Connection "";
                {buffering}
            }}
        }}
    """)
    with tls_conn(gh.port, "a.test", client_ctx(pki), timeout=20) as c:
        for _ in range(2):
            c.send(build_request("/big", host="a.test"))
            time.sleep(1.5)
            r = c.read_response()
            assert r.status == 200
            assert len(r.body) == size
            assert sha256(r.body) == pattern_sha256(size)
    assert up.connections == 1
