"""TLS session resumption: ssl_session_cache shared:NAME:SIZE across
workers, session tickets (derived keys shared by workers, key files),
ssl_session_tickets off, and resumption across a reload.

Cross-process resumption is shown deterministically: the worker that
made a session is killed and its replacement (a new process, $pid in the
responses) must resume it."""

import os
import signal
import ssl

import pytest

from conftest import simple_server
from tlsutil import pki, client_ctx, tls_conn   # noqa: F401

ROUNDS = 24


def server(pki, extra, listen="127.0.0.1:{port} ssl"):
    crt, key = pki.cert("a.test")
    return simple_server(f"""
        server_name a.test;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        {extra}
        location / {{ return 200 "$pid $ssl_session_reused $ssl_protocol"; }}
    """, listen=listen)


def one(port, ctx, session=None):
    with tls_conn(port, "a.test", ctx, session=session) as c:
        r = c.request("/", host="a.test")
        assert r.status == 200
        pid, reused, proto = r.text.split()
        assert (reused == "r") == c.sock.session_reused
        return pid, c.sock.session_reused, c.sock.session, proto


def rounds(gh, ctx, chain):
    """A full handshake, then the worker that made the session is killed
    (the master replaces it: a new process that never saw the session),
    then ROUNDS connections resume it.  chain: take the newest session
    each time (TLS 1.3 stateful tickets are single-use) or keep the
    first."""
    pid0, reused, sess, _ = one(gh.port, ctx)
    assert not reused
    n = len(gh.workers())
    os.kill(int(pid0), signal.SIGKILL)
    gh.wait_workers(n, timeout=10, exclude=[int(pid0)])
    pids, results = set(), []
    for _ in range(ROUNDS):
        pid, reused, new, _ = one(gh.port, ctx, sess)
        pids.add(pid)
        results.append(reused)
        if chain:
            sess = new
    assert pid0 not in pids
    return pids, results


def test_shared_cache_across_workers_tls12(gatehouse, pki):
    gh = gatehouse(server(pki, "ssl_session_cache shared:SSL:1m;\n"
                          "ssl_session_tickets off;"), workers=2)
    ctx = client_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2, tickets=False)
    pids, results = rounds(gh, ctx, chain=False)
    assert all(results), results


def test_shared_cache_across_workers_tls13_stateful(gatehouse, pki):
    # tickets off: TLS 1.3 "tickets" are session ids into the shared cache
    gh = gatehouse(server(pki, "ssl_session_cache shared:SSL:1m;\n"
                          "ssl_session_tickets off;"), workers=2)
    ctx = client_ctx(pki)
    pids, results = rounds(gh, ctx, chain=True)
    assert all(results), results


def test_builtin_cache_is_per_worker_so_tickets_do_the_work(gatehouse, pki):
    # tickets on (the default) with derived keys: any worker decrypts
    gh = gatehouse(server(pki, ""), workers=2)
    ctx = client_ctx(pki)
    pids, results = rounds(gh, ctx, chain=False)
    assert all(results), results


def test_tickets_tls12(gatehouse, pki):
    gh = gatehouse(server(pki, ""), workers=2)
    ctx = client_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2)
    pids, results = rounds(gh, ctx, chain=False)
    assert all(results), results


def test_no_cache_no_tickets_no_resumption(gatehouse, pki):
    gh = gatehouse(server(pki, "ssl_session_tickets off;"), workers=2)
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_ctx(pki, max_version=v)
        _, results = rounds(gh, ctx, chain=True)
        assert not any(results)


def test_ticket_key_file_shared_by_two_servers(gatehouse, pki, tmp_path):
    key = tmp_path / "ticket.key"
    key.write_bytes(bytes(range(80)))
    extra = f"ssl_session_ticket_key {key};"
    gh1 = gatehouse(server(pki, extra, listen="127.0.0.1:{port} ssl"))
    gh2 = gatehouse(server(pki, extra, listen="127.0.0.1:{port} ssl"))
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_ctx(pki, max_version=v)
        _, reused, sess, _ = one(gh1.port, ctx)
        assert not reused
        _, reused, _, _ = one(gh2.port, ctx, sess)
        assert reused, f"ticket of instance 1 not accepted by 2 ({v})"


def test_ticket_key_file_must_be_48_or_80_bytes(gatehouse, pki, tmp_path):
    key = tmp_path / "bad.key"
    key.write_bytes(b"x" * 50)
    gh = gatehouse(server(pki, f"ssl_session_ticket_key {key};"), start=False)
    r = gh.run("-t")
    assert r.returncode != 0
    assert "must be 48 or 80 bytes" in r.stderr
    assert str(gh.conf_path) in r.stderr


def test_sessions_survive_a_reload(gatehouse, pki):
    gh = gatehouse(server(pki, "ssl_session_cache shared:SSL:1m;"),
                   workers=2)
    for tickets in (True, False):
        ctx = client_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2,
                         tickets=tickets)
        _, reused, sess, _ = one(gh.port, ctx)
        assert not reused
        old = gh.workers()
        gh.reload()
        gh.wait_workers(2, timeout=10, exclude=old)
        _, reused, _, _ = one(gh.port, ctx, sess)
        assert reused, f"not resumed after reload (tickets={tickets})"


def test_session_cache_syntax(gatehouse, pki):
    for bad, msg in (("shared:SSL", "invalid session cache"),
                     ("shared:SSL:1k", "is too small"),
                     ("sideways", "invalid session cache")):
        gh = gatehouse(server(pki, f"ssl_session_cache {bad};"), start=False)
        r = gh.run("-t")
        assert r.returncode != 0 and msg in r.stderr, r.stderr
    gh = gatehouse(server(pki, "ssl_session_cache builtin:1000 "
                          "shared:X:1m;"), start=False)
    r = gh.run("-t")
    assert r.returncode == 0, r.stderr


def test_builtin_cache_alone_is_per_process(gatehouse, pki):
    # the control for the tests above: without the shared zone and
    # without tickets, a new process cannot resume
    gh = gatehouse(server(pki, "ssl_session_cache builtin:1000;\n"
                          "ssl_session_tickets off;"), workers=1)
    ctx = client_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2, tickets=False)
    pid0, reused, sess, _ = one(gh.port, ctx)
    assert not reused
    # the same process: the builtin cache works ...
    for _ in range(3):
        pid, reused, _, _ = one(gh.port, ctx, sess)
        assert pid == pid0 and reused
    os.kill(int(pid0), signal.SIGKILL)
    gh.wait_workers(1, timeout=10, exclude=[int(pid0)])
    # ... and a process that never saw the session cannot resume it
    pid, reused, _, _ = one(gh.port, ctx, sess)
    assert pid != pid0 and not reused


def test_resumption_on_a_server_chosen_by_sni(gatehouse, pki):
    a_crt, a_key = pki.cert("a.test")
    b_crt, b_key = pki.cert("b.test")
    gh = gatehouse(f"""
        ssl_session_cache shared:SSL:1m;
        server {{
            listen 127.0.0.1:{{port}} ssl;
            server_name a.test;
            ssl_certificate {a_crt};
            ssl_certificate_key {a_key};
            location / {{ return 200 "a $ssl_session_reused"; }}
        }}
        server {{
            listen 127.0.0.1:{{port}} ssl;
            server_name b.test;
            ssl_certificate {b_crt};
            ssl_certificate_key {b_key};
            location / {{ return 200 "b $ssl_session_reused"; }}
        }}
    """)
    for tickets in (True, False):
        ctx = client_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2,
                         tickets=tickets)
        with tls_conn(gh.port, "b.test", ctx) as c:
            assert c.request("/", host="b.test").body == b"b ."
            sess = c.sock.session
        with tls_conn(gh.port, "b.test", ctx, session=sess) as c:
            assert c.request("/", host="b.test").body == b"b r"
        # a session of b.test does not open a.test
        with tls_conn(gh.port, "a.test", ctx, session=sess) as c:
            assert c.request("/", host="a.test").body == b"a ."
