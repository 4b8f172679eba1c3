"""TLS termination: listen ... ssl, certificates and SNI, ALPN, plain HTTP
to a TLS port, variables, big bodies, curl.

Certificates come from the session `pki` fixture (tlsutil.py): one CA,
server certificates per name, client certificates.
"""

import json
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from conftest import simple_server
from tlsutil import (pki, client_ctx, tls_conn, tls_socket,   # noqa: F401
                     peer_fingerprint)
from upstreams import pattern, pattern_sha256, sha256, echo

CURL = shutil.which("curl")


def two_servers(pki, extra_a="", extra_b="", listen="127.0.0.1:{port} ssl"):
    a_crt, a_key = pki.cert("a.test")
    b_crt, b_key = pki.cert("b.test")
    return f"""
        server {{
            listen {listen};
            server_name a.test;
            ssl_certificate {a_crt};
            ssl_certificate_key {a_key};
            {extra_a}
            location / {{ return 200 "server a $scheme $https $ssl_server_name\\n"; }}
        }}
        server {{
            listen {listen};
            server_name b.test;
            ssl_certificate {b_crt};
            ssl_certificate_key {b_key};
            {extra_b}
            location / {{ return 200 "server b $scheme $https $ssl_server_name\\n"; }}
        }}
    """


def test_sni_picks_certificate_and_server(gatehouse, pki):
    gh = gatehouse(two_servers(pki))
    ctx = client_ctx(pki)
    for name in ("a.test", "b.test"):
        with tls_conn(gh.port, name, ctx) as c:
            assert peer_fingerprint(c.sock) == pki.fingerprint(
                pki.cert(name)[0])
            r = c.request("/", host=name)
            assert r.status == 200
            assert r.body == f"server {name[0]} https on {name}\n".encode()
            # keep-alive over TLS
            r = c.request("/again", host=name)
            assert r.status == 200


def test_no_sni_gets_default_server_certificate(gatehouse, pki):
    gh = gatehouse(two_servers(pki))
    ctx = client_ctx(pki, verify=False)
    with tls_conn(gh.port, None, ctx) as c:
        assert peer_fingerprint(c.sock) == pki.fingerprint(
            pki.cert("a.test")[0])
        # Host still selects the server, $ssl_server_name is empty
        r = c.request("/", host="b.test")
        assert r.body == b"server b https on \n"


def test_alpn_http11_offered_and_h2_with_http2(gatehouse, pki):
    gh = gatehouse(two_servers(pki, listen="127.0.0.1:{port} ssl http2"))
    ctx = client_ctx(pki, alpn=["h2", "http/1.1"])
    s = tls_socket(gh.port, "a.test", ctx)
    assert s.selected_alpn_protocol() == "h2"     # test_http2.py
    s.close()
    ctx = client_ctx(pki, alpn=["http/1.1"])
    with tls_conn(gh.port, "a.test", ctx) as c:
        assert c.sock.selected_alpn_protocol() == "http/1.1"
        assert c.request("/", host="a.test").status == 200
    # a client that speaks only something else is refused, as nginx does
    ctx = client_ctx(pki, alpn=["spdy/3"])
    with pytest.raises((ssl.SSLError, OSError)):
        tls_socket(gh.port, "a.test", ctx).close()


def test_plain_http_to_tls_port_gets_400(gatehouse, pki):
    gh = gatehouse(two_servers(pki))
    r = gh.get("/", host="a.test")
    assert r.status == 400
    assert b"The plain HTTP request was sent to HTTPS port" in r.body
    assert r.header("Connection") == "close"
    gh.wait_log("error.log", r"client sent plain HTTP request to HTTPS port")
    # the server is fine afterwards
    with tls_conn(gh.port, "a.test", client_ctx(pki)) as c:
        assert c.request("/", host="a.test").status == 200


def test_error_page_497_redirects_to_https(gatehouse, pki):
    gh = gatehouse(two_servers(
        pki, extra_a="error_page 497 =301 https://$host:{port}$request_uri;"))
    r = gh.get("/x?y=1", host="a.test")
    assert r.status == 301
    assert r.header("Location") == f"https://a.test:{gh.port}/x?y=1"


def test_garbage_handshake_is_logged_and_closed(gatehouse, pki):
    gh = gatehouse(two_servers(pki))
    with socket.create_connection(("127.0.0.1", gh.port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x00\x05hello")
        s.settimeout(5)
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        # an alert or a close, never an HTTP answer
        assert not data.startswith(b"HTTP/")
    gh.wait_log("error.log", r"SSL_do_handshake\(\) failed .* while SSL "
                r"handshaking, client: 127\.0\.0\.1")


def test_plain_listener_next_to_tls_listener(gatehouse, pki):
    a_crt, a_key = pki.cert("a.test")
    gh = gatehouse(f"""
        server {{
            listen 127.0.0.1:{{port}} ssl;
            listen 127.0.0.1:{{port2}};
            server_name a.test;
            ssl_certificate {a_crt};
            ssl_certificate_key {a_key};
            location / {{ return 200 "$scheme $https.\\n"; }}
        }}
    """)
    assert gh.get("/", port=gh.port2).body == b"http .\n"
    with tls_conn(gh.port, "a.test", client_ctx(pki)) as c:
        assert c.request("/", host="a.test").body == b"https on.\n"


def test_rsa_and_ecdsa_certificates_together(gatehouse, pki):
    ec_crt, ec_key = pki.cert("a.test")
    rsa_crt, rsa_key = pki.cert("a.test", key="rsa")
    gh = gatehouse(f"""
        server {{
            listen 127.0.0.1:{{port}} ssl;
            server_name a.test;
            ssl_certificate {rsa_crt};
            ssl_certificate_key {rsa_key};
            ssl_certificate {ec_crt};
            ssl_certificate_key {ec_key};
            location / {{ return 200 "$ssl_protocol $ssl_cipher"; }}
        }}
    """)
    ctx = client_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    with tls_conn(gh.port, "a.test", ctx) as c:
        assert peer_fingerprint(c.sock) == pki.fingerprint(ec_crt)
        r = c.request("/", host="a.test")
        assert r.body == b"TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256"
    ctx = client_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
    with tls_conn(gh.port, "a.test", ctx) as c:
        assert peer_fingerprint(c.sock) == pki.fingerprint(rsa_crt)


def test_relative_certificate_paths_resolve_against_conf_dir(gatehouse, pki):
    crt, key = pki.cert("a.test")
    gh = gatehouse(f"""
        server {{
            listen 127.0.0.1:{{port}} ssl;
            server_name a.test;
            ssl_certificate certs/a.crt;
            ssl_certificate_key certs/a.key;
            location / {{ return 200 "ok"; }}
        }}
    """, files={"certs/a.crt": open(crt).read(),
                "certs/a.key": open(key).read()})
    with tls_conn(gh.port, "a.test", client_ctx(pki)) as c:
        assert c.request("/", host="a.test").body == b"ok"


def test_protocols_default_and_configured(gatehouse, pki):
    gh = gatehouse(two_servers(pki))
    # default: TLSv1.2 and TLSv1.3
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_ctx(pki, min_version=v, max_version=v)
        with tls_conn(gh.port, "b.test", ctx) as c:
            r = c.request("/", host="b.test")
            assert r.status == 200
    ctx = client_ctx(pki, min_version=ssl.TLSVersion.TLSv1_2,
                     max_version=ssl.TLSVersion.TLSv1_2)
    gh2 = gatehouse(simple_server(f"""
        server_name a.test;
        ssl_certificate {pki.cert('a.test')[0]};
        ssl_certificate_key {pki.cert('a.test')[1]};
        ssl_protocols TLSv1.3;
        location / {{ return 200 "$ssl_protocol"; }}
    """, listen="127.0.0.1:{port} ssl"))
    with pytest.raises(ssl.SSLError):
        tls_socket(gh2.port, "a.test", ctx).close()
    with tls_conn(gh2.port, "a.test", client_ctx(pki)) as c:
        assert c.request("/", host="a.test").body == b"TLSv1.3"


def test_variables(gatehouse, pki):
    crt, key = pki.cert("a.test")
    gh = gatehouse(simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        location / {{
            return 200 "p=$ssl_protocol c=$ssl_cipher n=$ssl_server_name r=$ssl_session_reused v=$ssl_client_verify a=$ssl_alpn_protocol s=$scheme h=$https";
        }}
    """, listen="127.0.0.1:{port} ssl"))
    ctx = client_ctx(pki, alpn=["http/1.1"])
    with tls_conn(gh.port, "a.test", ctx) as c:
        body = c.request("/", host="a.test").text
    fields = dict(kv.split("=", 1) for kv in body.split())
    assert fields["p"] == "TLSv1.3"
    assert fields["c"].startswith("TLS_")
    assert fields["n"] == "a.test"
    assert fields["r"] == "."
    assert fields["v"] == "NONE"
    assert fields["a"] == "http/1.1"
    assert fields["s"] == "https" and fields["h"] == "on"


def test_x_forwarded_proto_https_through_recommended_block(gatehouse, pki,
                                                           upstream):
    up = upstream()
    crt, key = pki.cert("a.test")
    gh = gatehouse(simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://{up.addr};
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    """, listen="127.0.0.1:{port} ssl"))
    with tls_conn(gh.port, "a.test", client_ctx(pki)) as c:
        r = c.request("/app", host="a.test")
    assert r.status == 200
    seen = up.requests[0]
    assert seen.header("X-Forwarded-Proto") == "https"
    assert seen.header("Host") == "a.test"


def test_redirect_location_uses_https(gatehouse, pki):
    crt, key = pki.cert("a.test")
    gh = gatehouse(simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        location /d/ {{ return 200 "dir"; }}
        location /r {{ return 302 /elsewhere; }}
    """, listen="127.0.0.1:{port} ssl"))
    with tls_conn(gh.port, "a.test", client_ctx(pki)) as c:
        r = c.request("/r", host="a.test")
        assert r.header("Location") == f"https://a.test:{gh.port}/elsewhere"


@pytest.mark.parametrize("size", [0, 1, 16383, 16385, 10 * 1024 * 1024])
def test_large_bodies_both_ways_byte_exact(gatehouse, pki, upstream, size):
    up = upstream(lambda req, w: w.reply(
        200, [("X-Got", str(req.body_len)), ("X-Sha", req.body_sha256)],
        b"".join(pattern_chunks_list(size))))
    crt, key = pki.cert("a.test")
    gh = gatehouse(simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        client_max_body_size 64m;
        location / {{ proxy_pass http://{up.addr}; }}
    """, listen="127.0.0.1:{port} ssl"))
    body = b"".join(pattern_chunks_list(size))
    with tls_conn(gh.port, "a.test", client_ctx(pki), timeout=30) as c:
        r = c.request("/up", method="POST", host="a.test", body=body)
        assert r.status == 200
        assert r.header("X-Got") == str(size)
        assert r.header("X-Sha") == pattern_sha256(size)
        assert len(r.body) == size and sha256(r.body) == pattern_sha256(size)
        # and the connection is still good for another request
        assert c.request("/again", method="GET", host="a.test").status == 200


def pattern_chunks_list(n):
    from upstreams import pattern_chunks
    return list(pattern_chunks(n))


def test_static_file_over_tls_byte_exact(gatehouse, pki, tmp_path):
    crt, key = pki.cert("a.test")
    root = tmp_path / "www"
    root.mkdir()
    data = b"".join(pattern_chunks_list(3 * 1024 * 1024 + 17))
    (root / "big.bin").write_bytes(data)
    gh = gatehouse(simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        root {root};
    """, listen="127.0.0.1:{port} ssl"))
    with tls_conn(gh.port, "a.test", client_ctx(pki), timeout=30) as c:
        r = c.request("/big.bin", host="a.test")
        assert r.status == 200 and r.body == data
        r = c.request("/big.bin", host="a.test",
                      headers=[("Range", "bytes=100-70000")])
        if r.status == 206:
            assert r.body == data[100:70001]


@pytest.mark.skipif(CURL is None, reason="curl not installed")
def test_curl_https(gatehouse, pki):
    gh = gatehouse(two_servers(pki))
    for name in ("a.test", "b.test"):
        r = subprocess.run(
            [CURL, "-sS", "--cacert", pki.ca, "--resolve",
             f"{name}:{gh.port}:127.0.0.1", "-w", "\n%{http_version}",
             f"https://{name}:{gh.port}/"],
            capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        body, version = r.stdout.rsplit("\n", 1)
        assert body == f"server {name[0]} https on {name}\n"
        assert version == "1.1"


def test_handshake_timeout_closes(gatehouse, pki):
    gh = gatehouse(two_servers(pki, extra_a="client_header_timeout 1s;"),
                   )
    with socket.create_connection(("127.0.0.1", gh.port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01")          # a handshake that never ends
        s.settimeout(5)
        start = time.monotonic()
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        assert data == b"" and time.monotonic() - start < 4
    gh.wait_log("error.log", r"client timed out .*while SSL handshaking")


def _ocsp_response(pki, cert, tmp_path):
    """A DER OCSP response saying `cert` is good, signed by the CA."""
    serial = subprocess.run(
        ["openssl", "x509", "-in", cert, "-noout", "-serial"],
        capture_output=True, text=True, timeout=20, check=True,
    ).stdout.strip().split("=", 1)[1]
    index = tmp_path / "index.txt"
    index.write_text(f"V\t301231235959Z\t\t{serial}\tunknown\t/CN=a.test\n")
    req, resp = tmp_path / "req.der", tmp_path / "resp.der"
    for args in (["-issuer", pki.ca, "-cert", cert, "-no_nonce", "-reqout",
                  str(req)],
                 ["-index", str(index), "-rsigner", pki.ca, "-rkey",
                  pki.p("ca.key"), "-CA", pki.ca, "-reqin", str(req),
                  "-respout", str(resp), "-ndays", "1"]):
        subprocess.run(["openssl", "ocsp", *args], capture_output=True,
                       timeout=20, check=True, stdin=subprocess.DEVNULL)
    return resp


def test_ocsp_stapling_from_file(gatehouse, pki, tmp_path):
    crt, key = pki.cert("a.test")
    resp = _ocsp_response(pki, crt, tmp_path)
    gh = gatehouse(simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_stapling on;
        ssl_stapling_file {resp};
        location / {{ return 200 "ok"; }}
    """, listen="127.0.0.1:{port} ssl"))
    r = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{gh.port}",
         "-servername", "a.test", "-status", "-CAfile", pki.ca],
        capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert "OCSP Response Status: successful" in r.stdout, r.stdout
    assert "Cert Status: good" in r.stdout


def test_ssl_stapling_without_file_warns(gatehouse, pki):
    crt, key = pki.cert("a.test")
    gh = gatehouse(simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_stapling on;
    """, listen="127.0.0.1:{port} ssl"), start=False)
    r = gh.run("-t")
    assert r.returncode == 0, r.stderr
    assert "ssl_stapling" in r.stderr and "[warn]" in r.stderr


def test_dhparam_and_ecdh_curve(gatehouse, pki, tmp_path):
    dh = tmp_path / "dh.pem"
    subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH",
                    "-pkeyopt", "dh_param:ffdhe2048", "-out", str(dh)],
                   capture_output=True, timeout=20, check=True)
    crt, key = pki.cert("a.test", key="rsa")
    gh = gatehouse(simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_dhparam {dh};
        ssl_ecdh_curve X25519:prime256v1;
        ssl_ciphers DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256;
        ssl_prefer_server_ciphers on;
        location / {{ return 200 "$ssl_cipher $ssl_curve"; }}
    """, listen="127.0.0.1:{port} ssl"))
    ctx = client_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("DHE-RSA-AES128-GCM-SHA256")
    with tls_conn(gh.port, "a.test", ctx) as c:
        assert c.request("/", host="a.test").text.startswith(
            "DHE-RSA-AES128-GCM-SHA256")
    with tls_conn(gh.port, "a.test", client_ctx(pki)) as c:
        assert c.request("/", host="a.test").text.endswith("X25519")


def test_websocket_over_tls(gatehouse, pki, upstream):
    import asyncio
    import websockets
    ws = upstream.websocket()
    crt, key = pki.cert("a.test")
    gh = gatehouse(simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://{ws.addr};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    """, listen="127.0.0.1:{port} ssl"))
    msgs = ["hello", b"\x00\xff" * 40000, "x" * 100000]

    async def main():
        async with websockets.connect(
                f"wss://a.test:{gh.port}/chat", ssl=client_ctx(pki),
                host="127.0.0.1", port=gh.port, server_hostname="a.test",
                open_timeout=5, max_size=None) as c:
            out = []
            for m in msgs:
                await c.send(m)
                out.append(await asyncio.wait_for(c.recv(), 5))
            return out

    assert asyncio.run(asyncio.wait_for(main(), 20)) == msgs
    h = {k.lower(): v for k, v in ws.handshakes[0][1]}
    assert h["x-forwarded-proto"] == "https"


def test_certificate_named_by_ssl_server_name(gatehouse, pki):
    files = {}
    for name in ("a.test", "b.test"):
        crt, key = pki.cert(name)
        files[f"certs/{name}.crt"] = open(crt).read()
        files[f"certs/{name}.key"] = open(key).read()
    gh = gatehouse(simple_server("""
        ssl_certificate certs/$ssl_server_name.crt;
        ssl_certificate_key certs/${ssl_server_name}.key;
        location / { return 200 "$ssl_server_name"; }
    """, listen="127.0.0.1:{port} ssl"), files=files)
    for name in ("a.test", "b.test"):
        with tls_conn(gh.port, name, client_ctx(pki)) as c:
            assert peer_fingerprint(c.sock) == pki.fingerprint(
                pki.cert(name)[0])
            assert c.request("/", host=name).body == name.encode()
    # no file for that name: the handshake fails and the log says why
    with pytest.raises((ssl.SSLError, OSError)):
        tls_socket(gh.port, "c.test", client_ctx(pki)).close()
    gh.wait_log("error.log", r'cannot load certificate "[^"]*certs/c\.test'
                r'\.crt"')


def test_certificate_variables_other_than_server_name(gatehouse, pki):
    gh = gatehouse(simple_server("""
        ssl_certificate certs/$host.crt;
        ssl_certificate_key certs/$host.key;
    """, listen="127.0.0.1:{port} ssl"), start=False)
    r = gh.run("-t")
    assert r.returncode != 0
    assert "only $ssl_server_name is supported" in r.stderr


def test_protocols_follow_sni(gatehouse, pki):
    gh = gatehouse(two_servers(pki, extra_b="ssl_protocols TLSv1.3;"))
    tls12 = client_ctx(pki, min_version=ssl.TLSVersion.TLSv1_2,
                       max_version=ssl.TLSVersion.TLSv1_2)
    with tls_conn(gh.port, "a.test", tls12) as c:
        assert c.request("/", host="a.test").status == 200
    with pytest.raises(ssl.SSLError):
        tls_socket(gh.port, "b.test", tls12).close()
    with tls_conn(gh.port, "b.test", client_ctx(pki)) as c:
        assert c.request("/", host="b.test").status == 200


def test_reject_handshake(gatehouse, pki):
    gh = gatehouse(two_servers(pki) + """
        server {
            listen 127.0.0.1:{port} ssl;
            server_name bad.test;
            ssl_reject_handshake on;
        }
    """)
    with pytest.raises(ssl.SSLError):
        tls_socket(gh.port, "bad.test", client_ctx(pki, verify=False)).close()
    with tls_conn(gh.port, "a.test", client_ctx(pki)) as c:
        assert c.request("/", host="a.test").status == 200
