"""Certificates and reloads: a reload re-reads certificates; a bad
certificate fails the reload with file:line and the old configuration
keeps serving; connections in flight are not dropped."""

import shutil
import signal
import threading
import time

from conftest import simple_server
from tlsutil import pki, client_ctx, tls_conn, peer_fingerprint  # noqa: F401
from upstreams import trickle


def conf(up_addr=None):
    loc = (f"location /slow {{ proxy_pass http://{up_addr}; }}"
           if up_addr else "")
    return simple_server(f"""
        server_name a.test;
        ssl_certificate certs/a.crt;
        ssl_certificate_key certs/a.key;
        location / {{ return 200 "ok"; }}
        {loc}
    """, listen="127.0.0.1:{port} ssl")


def install(gh, cert):
    (gh.conf_dir / "certs").mkdir(exist_ok=True)
    shutil.copy(cert[0], gh.conf_dir / "certs" / "a.crt")
    shutil.copy(cert[1], gh.conf_dir / "certs" / "a.key")


def fp_now(gh, pki):
    with tls_conn(gh.port, "a.test", client_ctx(pki)) as c:
        assert c.request("/", host="a.test").status == 200
        return peer_fingerprint(c.sock)


def test_reload_swaps_certificate_without_dropping_live_request(
        gatehouse, pki, upstream):
    first = pki.cert("a.test")
    second = pki.cert("a.test", sans=["a.test", "www.a.test"])
    up = upstream(trickle([b"part1-", b"part2"], 1.0, framing="length"))
    gh = gatehouse(conf(up.addr), start=False)
    install(gh, first)
    gh.start()
    assert fp_now(gh, pki) == pki.fingerprint(first[0])

    # a request in flight on an old worker while the reload happens
    result = {}
    c = tls_conn(gh.port, "a.test", client_ctx(pki), timeout=10)

    def slow():
        try:
            result["r"] = c.request("/slow", host="a.test")
        except Exception as e:         # reported below
            result["e"] = e
    t = threading.Thread(target=slow)
    t.start()
    up.wait_requests(1)
    old = gh.workers()
    install(gh, second)
    gh.reload()
    gh.wait_workers(1, timeout=10, exclude=old)
    assert fp_now(gh, pki) == pki.fingerprint(second[0])
    t.join(10)
    c.close()
    assert "e" not in result, result.get("e")
    assert result["r"].status == 200 and result["r"].body == b"part1-part2"


def test_bad_certificate_on_reload_keeps_old_one(gatehouse, pki):
    good = pki.cert("a.test")
    gh = gatehouse(conf(), start=False)
    install(gh, good)
    gh.start()
    old = gh.workers()
    (gh.conf_dir / "certs" / "a.crt").write_text("not a certificate\n")
    # HUP straight to the master: `-s reload` would itself refuse to load
    # the configuration (it reads it to find the pid file), as nginx does
    gh.signal(signal.SIGHUP)
    m = gh.wait_log("error.log", r"\[emerg\] .*cannot load certificate "
                    r"\"[^\"]*certs/a\.crt\".* in (\S+):(\d+)")
    assert m.group(1) == str(gh.conf_path)
    assert int(m.group(2)) == gh.line_of("ssl_certificate certs/a.crt")
    gh.wait_log("error.log", r"reload failed")
    assert gh.workers() == old
    assert fp_now(gh, pki) == pki.fingerprint(good[0])


def test_key_not_matching_certificate_is_an_error(gatehouse, pki):
    a = pki.cert("a.test")
    b = pki.cert("b.test")
    gh = gatehouse(conf(), start=False)
    install(gh, (a[0], b[1]))
    r = gh.run("-t")
    assert r.returncode != 0
    assert "SSL_CTX_use_PrivateKey" in r.stderr
    assert "key values mismatch" in r.stderr
    assert gh.where("ssl_certificate_key") in r.stderr


def test_missing_files_and_directive_errors(gatehouse, pki):
    crt, key = pki.cert("a.test")
    cases = [
        ("ssl_certificate /nonexistent.crt; ssl_certificate_key /x.key;",
         'cannot load certificate "/nonexistent.crt"'),
        (f"ssl_certificate {crt};",
         f'no "ssl_certificate_key" is defined for certificate "{crt}"'),
        ("ssl on;", 'use the "listen ... ssl" directive instead'),
        (f"ssl_certificate {crt}; ssl_certificate_key {key}; "
         "ssl_ciphers NOTACIPHER;", 'SSL_CTX_set_cipher_list("NOTACIPHER")'),
        (f"ssl_certificate {crt}; ssl_certificate_key {key}; "
         "ssl_protocols TLSv9;", 'invalid value "TLSv9"'),
        (f"ssl_certificate {crt}; ssl_certificate_key {key}; "
         "ssl_dhparam /nonexistent.pem;", 'ssl_dhparam'),
    ]
    for extra, msg in cases:
        gh = gatehouse(simple_server(f"""
            server_name a.test;
            {extra}
        """, listen="127.0.0.1:{port} ssl"), start=False)
        r = gh.run("-t")
        assert r.returncode != 0, extra
        if msg == "ssl_dhparam":
            assert "/nonexistent.pem" in r.stderr, r.stderr
        else:
            assert msg in r.stderr, r.stderr
        assert str(gh.conf_path) in r.stderr


def test_listen_ssl_without_certificate(gatehouse, pki):
    gh = gatehouse(simple_server("""
        server_name a.test;
    """, listen="127.0.0.1:{port} ssl"), start=False)
    r = gh.run("-t")
    assert r.returncode != 0
    assert ('no "ssl_certificate" is defined for the "listen ... ssl" '
            'directive in ' + str(gh.conf_path)) in r.stderr


def test_early_data_on_is_a_warning(gatehouse, pki):
    crt, key = pki.cert("a.test")
    gh = gatehouse(simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_early_data on;
        location / {{ return 200 "ok"; }}
    """, listen="127.0.0.1:{port} ssl"), start=False)
    r = gh.run("-t")
    assert r.returncode == 0, r.stderr
    assert "[warn]" in r.stderr and "ssl_early_data" in r.stderr
