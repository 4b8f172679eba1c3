"""Client certificates: ssl_verify_client on|optional|optional_no_ca,
ssl_client_certificate, ssl_verify_depth, the $ssl_client_* variables and
nginx's 400 pages."""

import ssl

import pytest

from conftest import simple_server
from tlsutil import pki, client_ctx, tls_conn   # noqa: F401

SHOW = ('return 200 "verify=$ssl_client_verify dn=$ssl_client_s_dn '
        'issuer=$ssl_client_i_dn\\n";')


def mtls_server(pki, mode, extra=""):
    crt, key = pki.cert("a.test")
    return simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_client_certificate {pki.ca};
        ssl_verify_client {mode};
        {extra}
        location / {{ {SHOW} }}
    """, listen="127.0.0.1:{port} ssl")


def fields(body):
    out = {}
    for part in body.strip().split(" "):
        k, _, v = part.partition("=")
        out[k] = v
    return out


def get(port, cert=None, pki=None, host="a.test"):
    with tls_conn(port, "a.test", client_ctx(pki, cert=cert)) as c:
        return c.request("/", host=host)


def test_verify_on_accepts_a_trusted_client(gatehouse, pki):
    gh = gatehouse(mtls_server(pki, "on"))
    r = get(gh.port, pki.client("alice"), pki)
    assert r.status == 200, r
    f = fields(r.text)
    assert f["verify"] == "SUCCESS"
    assert f["dn"] == "CN=alice,O=Gatehouse"   # RFC 2253, first word only
    assert "CN=Gatehouse" in r.text


def test_verify_on_rejects_missing_certificate(gatehouse, pki):
    gh = gatehouse(mtls_server(pki, "on"))
    r = get(gh.port, None, pki)
    assert r.status == 400
    assert b"No required SSL certificate was sent" in r.body
    gh.wait_log("error.log", r"client sent no required SSL certificate")


def test_verify_on_rejects_untrusted_certificate(gatehouse, pki):
    gh = gatehouse(mtls_server(pki, "on"))
    r = get(gh.port, pki.other_client, pki)
    assert r.status == 400
    assert b"The SSL certificate error" in r.body
    gh.wait_log("error.log", r"client SSL certificate verify error: \(\d+:")


def test_verify_optional(gatehouse, pki):
    gh = gatehouse(mtls_server(pki, "optional"))
    r = get(gh.port, None, pki)
    assert r.status == 200 and fields(r.text)["verify"] == "NONE"
    r = get(gh.port, pki.client("bob"), pki)
    assert r.status == 200 and fields(r.text)["verify"] == "SUCCESS"
    assert "CN=bob" in r.text
    # optional still refuses a certificate that does not verify
    r = get(gh.port, pki.other_client, pki)
    assert r.status == 400


def test_verify_optional_no_ca_lets_the_app_decide(gatehouse, pki):
    crt, key = pki.cert("a.test")
    gh = gatehouse(simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_verify_client optional_no_ca;
        location / {{ {SHOW} }}
    """, listen="127.0.0.1:{port} ssl"))
    r = get(gh.port, pki.other_client, pki)
    assert r.status == 200
    assert r.text.startswith("verify=FAILED:"), r.text
    assert "CN=mallory" in r.text


def test_verify_client_error_page_can_be_replaced(gatehouse, pki):
    gh = gatehouse(mtls_server(pki, "on", extra="error_page 496 = @nocert;\n"
                               "location @nocert { return 403 \"cert please\"; }"))
    r = get(gh.port, None, pki)
    assert r.status == 403 and r.body == b"cert please"


def test_host_other_than_sni_with_client_verification_is_421(gatehouse, pki):
    gh = gatehouse(mtls_server(pki, "on"))
    r = get(gh.port, pki.client("alice"), pki, host="other.test")
    assert r.status == 421


def test_verify_needs_a_ca(gatehouse, pki):
    crt, key = pki.cert("a.test")
    gh = gatehouse(simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_verify_client on;
    """, listen="127.0.0.1:{port} ssl"), start=False)
    r = gh.run("-t")
    assert r.returncode != 0
    assert "no ssl_client_certificate or ssl_trusted_certificate for " \
        "ssl_verify_client" in r.stderr
