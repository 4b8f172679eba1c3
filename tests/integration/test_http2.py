"""HTTP/2 to clients (src/http/v2): ALPN h2 over TLS and prior knowledge
on cleartext `listen ... http2`, compared with HTTP/1.1 answers of the same
configuration.  Client: python3-h2 over a plain or TLS socket.
"""

import json
import shutil
import signal
import socket
import subprocess
import time

import h2.config
import h2.errors
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import pytest

from conftest import Conn, pid_alive, simple_server
from tlsutil import (pki, client_ctx, tls_conn, tls_socket,   # noqa: F401
                     RecordSocket)
from upstreams import pattern, pattern_sha256, sha256

MiB = 1 << 20
HOP = {"connection", "keep-alive", "transfer-encoding", "date"}


class H2:
    """A minimal blocking HTTP/2 client over sock."""

    def __init__(self, sock):
        self.sock = sock
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True,
                                      header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(16 * MiB)
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def open_stream(self, path, authority="localhost", method="GET",
                    headers=(), end_stream=True):
        """Send one stream's HEADERS (not flushed); its id."""
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":path", path), (":scheme", "http"),
                (":authority", authority)] + list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=end_stream)
        return sid

    def send_gets(self, paths, authority="localhost"):
        """GET streams for paths, sent together; their ids."""
        sids = [self.open_stream(p, authority) for p in paths]
        self.flush()
        return sids

    def request(self, path, authority="localhost", method="GET",
                headers=(), body=None):
        sid = self.open_stream(path, authority, method, headers,
                               end_stream=body is None)
        self.flush()
        if body is not None:
            self.send_body(sid, body)
        return self.response(sid)

    def send_body(self, sid, body):
        """send within the flow-control windows, reading what comes"""
        view = memoryview(body)
        while True:
            room = min(self.conn.local_flow_control_window(sid),
                       self.conn.max_outbound_frame_size, len(view))
            if room > 0 or not view:
                self.conn.send_data(sid, view[:room].tobytes(),
                                    end_stream=room == len(view))
                view = view[room:]
                self.flush()
                if not view and room >= 0:
                    return
                continue
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("connection closed")
            self.pending = getattr(self, "pending", []) + \
                self.conn.receive_data(data)
            self.flush()

    def response(self, sid):
        status, headers, body = None, [], bytearray()
        while True:
            events, self.pending = getattr(self, "pending", []), []
            if not events:
                data = self.sock.recv(65536)
                if not data:
                    raise AssertionError("connection closed")
                events = self.conn.receive_data(data)
            for ev in events:
                if isinstance(ev, h2.events.ResponseReceived) \
                        and ev.stream_id == sid:
                    headers = ev.headers
                    status = int(dict(headers)[":status"])
                elif isinstance(ev, h2.events.DataReceived):
                    if ev.stream_id == sid:
                        body += ev.data
                    self.conn.acknowledge_received_data(
                        ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamReset) \
                        and ev.stream_id == sid:
                    raise AssertionError(f"stream reset {ev.error_code}")
                elif isinstance(ev, h2.events.StreamEnded) \
                        and ev.stream_id == sid:
                    self.flush()
                    return status, headers, bytes(body)
            self.flush()

    def close(self):
        self.conn.close_connection()
        self.flush()
        self.sock.close()


def norm(headers):
    """h2 headers or an HTTP/1.1 response -> comparable {name: value}."""
    out = {}
    for k, v in headers:
        k = k.lower()
        if k.startswith(":") or k in HOP:
            continue
        out[k] = v
    return out


def h1_headers(r):
    return norm(r.headers)


def conf(pki_=None, up=None, tls=False, extra=""):
    loc = extra + f"""
        client_max_body_size 20m;
        location = /x {{ return 200 "x"; }}
        location = /empty {{ return 200 ""; }}
    """
    if up:
        loc += f"""
        location /up/ {{ proxy_pass http://{up.addr}; }}
        """
    if tls:
        crt, key = pki_.cert("a.test")
        return simple_server(f"""
            server_name a.test;
            ssl_certificate {crt};
            ssl_certificate_key {key};
            {loc}
        """, listen="127.0.0.1:{port} ssl http2")
    return simple_server(loc, listen="127.0.0.1:{port} http2")


def h2_plain(gh):
    s = socket.create_connection(("127.0.0.1", gh.port), timeout=10)
    return H2(s)


def h2_tls(gh, pki_):
    s = tls_socket(gh.port, "a.test", client_ctx(pki_, alpn=["h2",
                                                             "http/1.1"]))
    assert s.selected_alpn_protocol() == "h2"
    return H2(s)


def test_prior_knowledge_return(gatehouse):
    gh = gatehouse(conf())
    c = h2_plain(gh)
    st, hd, body = c.request("/x")
    assert st == 200 and body == b"x"
    st, hd, body = c.request("/empty")
    assert st == 200 and body == b""
    st, hd, body = c.request("/nope")
    assert st == 404
    c.close()
    # HTTP/1.1 still works on the same listener, with the same answer
    r = gh.get("/x")
    assert r.status == 200 and r.body == b"x"
    c = h2_plain(gh)
    st, hd, body = c.request("/x")
    assert norm(hd) == h1_headers(r)
    c.close()


def test_alpn_h2_return(gatehouse, pki):
    gh = gatehouse(conf(pki, tls=True))
    c = h2_tls(gh, pki)
    st, hd, body = c.request("/x", authority="a.test")
    assert st == 200 and body == b"x"
    c.close()
    # a client without h2 still gets HTTP/1.1
    with tls_conn(gh.port, "a.test", client_ctx(pki, alpn=["http/1.1"])) \
            as t:
        r = t.request("/x", host="a.test")
        assert r.status == 200 and r.body == b"x"
        assert norm(hd) == h1_headers(r)


def test_http2_not_offered_without_http2(gatehouse, pki):
    crt, key = pki.cert("a.test")
    gh = gatehouse(simple_server(f"""
        ssl_certificate {crt};
        ssl_certificate_key {key};
        location / {{ return 200 "x"; }}
    """, listen="127.0.0.1:{port} ssl"))
    s = tls_socket(gh.port, "a.test", client_ctx(pki, alpn=["h2",
                                                            "http/1.1"]))
    assert s.selected_alpn_protocol() == "http/1.1"
    s.close()


SIZES = [0, 5000, 1 * MiB, 10 * MiB]
SIZE_IDS = ["0B", "5KB", "1MiB", "10MiB"]


def clients(gh, pki_, tls):
    """an HTTP/1.1 connection and an HTTP/2 one to the same server"""
    if tls:
        h1 = tls_conn(gh.port, "a.test", client_ctx(pki_, alpn=["http/1.1"]),
                      timeout=30)
        return h1, h2_tls(gh, pki_)
    return gh.conn(timeout=30), h2_plain(gh)


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
@pytest.mark.parametrize("n", SIZES, ids=SIZE_IDS)
def test_proxied_same_as_http11(gatehouse, upstream, pki, tls, n):
    up = upstream(pattern(n, headers=[("X-Up", "yes")]))
    gh = gatehouse(conf(pki, up, tls=tls))
    h1, c = clients(gh, pki, tls)
    with h1:
        r = h1.request("/up/a", host="a.test")
    assert r.status == 200 and sha256(r.body) == pattern_sha256(n)
    st, hd, body = c.request("/up/a", authority="a.test")
    assert st == 200
    assert len(body) == n and sha256(body) == pattern_sha256(n)
    assert norm(hd) == h1_headers(r)
    # several streams on one connection, one after the other
    for _ in range(3 if n < 10 * MiB else 1):
        st, hd, body = c.request("/up/b", authority="a.test")
        assert st == 200 and len(body) == n
    c.close()


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
@pytest.mark.parametrize("n", SIZES, ids=SIZE_IDS)
def test_upload_same_as_http11(gatehouse, upstream, pki, tls, n):
    """a request body through the proxy: the upstream sees the same
    request from an HTTP/1.1 and an HTTP/2 client (the HTTP/2 client keeps
    to its flow-control windows: 10 MiB needs gatehouse's WINDOW_UPDATEs)"""
    up = upstream()
    gh = gatehouse(conf(pki, up, tls=tls))
    data = bytes(range(256)) * (n // 256) + b"z" * (n % 256)
    hdrs = [("x-a", "1"), ("content-type", "application/octet-stream")]
    h1, c = clients(gh, pki, tls)
    with h1:
        r = h1.request("/up/post", method="POST", host="a.test",
                       headers=hdrs, body=data)
    assert r.status == 200
    seen1 = json.loads(r.body)
    st, hd, body = c.request("/up/post", method="POST", authority="a.test",
                             headers=hdrs + [("content-length", str(n))],
                             body=data)
    assert st == 200
    seen2 = json.loads(body)
    c.close()
    assert seen2["body_len"] == n and seen2["body_sha256"] == sha256(data)
    for k in ("line", "method", "target", "version", "headers", "body_len",
              "body_sha256", "chunked"):
        assert seen1[k] == seen2[k], k
    assert norm(hd) == h1_headers(r)


def collect(c, sids):
    """{sid: (status, body)} once every stream in sids has ended"""
    want, done = set(sids), {}
    state = {sid: [None, bytearray()] for sid in sids}
    while want - done.keys():
        data = c.sock.recv(65536)
        if not data:
            raise AssertionError("connection closed")
        for ev in c.conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                state[ev.stream_id][0] = int(dict(ev.headers)[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                state[ev.stream_id][1] += ev.data
                c.conn.acknowledge_received_data(
                    ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                raise AssertionError(f"stream {ev.stream_id} reset")
            elif isinstance(ev, h2.events.StreamEnded):
                done[ev.stream_id] = (state[ev.stream_id][0],
                                      bytes(state[ev.stream_id][1]))
        c.flush()
    return done


def test_many_streams_in_one_write_over_tls(gatehouse, upstream, pki):
    """100 streams' HEADERS, some with bodies, in small records sent in
    one write: the records after the first wait inside SSL (read-ahead)
    and must all be read"""
    up = upstream()
    gh = gatehouse(conf(pki, up, tls=True))
    s = RecordSocket(gh.port, "a.test", client_ctx(pki, alpn=["h2"]))
    assert s.obj.selected_alpn_protocol() == "h2"
    c = H2(s)
    for _ in range(2):
        sids = {}
        for i in range(100):
            if i % 3 == 2:
                sid = c.open_stream(f"/up/p{i}", "a.test", "POST",
                                    [("content-length", "300")],
                                    end_stream=False)
                c.conn.send_data(sid, bytes([i]) * 300, end_stream=True)
            else:
                sid = c.open_stream(f"/up/g{i}" if i % 3 else "/x",
                                    "a.test")
            sids[sid] = i
        data = c.conn.data_to_send()
        s.write_records([data[i:i + 500] for i in range(0, len(data), 500)])
        got = collect(c, sids)
        for sid, i in sids.items():
            st, body = got[sid]
            assert st == 200, i
            if i % 3 == 0:
                assert body == b"x"
            else:
                seen = json.loads(body)
                assert seen["target"] == (f"/up/p{i}" if i % 3 == 2
                                          else f"/up/g{i}")
                assert seen["body_len"] == (300 if i % 3 == 2 else 0)
    c.close()


def test_head_and_headers(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(conf(None, up))
    c = h2_plain(gh)
    st, hd, body = c.request("/x", method="HEAD")
    assert st == 200 and body == b""
    st, hd, body = c.request("/up/h", headers=[("x-a", "1"),
                                               ("cookie", "a=1"),
                                               ("cookie", "b=2")])
    seen = json.loads(body)
    names = {k.lower(): v for k, v in seen["headers"]}
    assert names["x-a"] == "1"
    assert names["cookie"] == "a=1; b=2"
    c.close()


def test_static_file(gatehouse, tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    data = bytes(range(256)) * 4096 + b"tail"
    (root / "f.bin").write_bytes(data)
    gh = gatehouse(simple_server(f"""
        root {root};
    """, listen="127.0.0.1:{port} http2"))
    c = h2_plain(gh)
    st, hd, body = c.request("/f.bin")
    assert st == 200 and body == data
    assert dict(hd)["content-length"] == str(len(data))
    c.close()


def test_concurrent_streams_and_cancel(gatehouse, upstream):
    up = upstream(pattern(1 * MiB))
    gh = gatehouse(conf(None, up))
    c = h2_plain(gh)
    sids = c.send_gets([f"/up/{i}" for i in range(5)],
                       authority="localhost")
    # cancel one right away, read the others completely
    c.conn.reset_stream(sids[0])
    c.flush()
    got = {sid: bytearray() for sid in sids[1:]}
    ended = set()
    while len(ended) < len(got):
        data = c.sock.recv(65536)
        assert data
        for ev in c.conn.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                if ev.stream_id in got:
                    got[ev.stream_id] += ev.data
                c.conn.acknowledge_received_data(ev.flow_controlled_length,
                                                 ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                ended.add(ev.stream_id)
        c.flush()
    for sid, body in got.items():
        assert sha256(bytes(body)) == pattern_sha256(1 * MiB)
    st, hd, body = c.request("/x")
    assert st == 200
    # a connection dropped in the middle of responses hurts nobody else
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, [(":method", "GET"), (":path", "/up/z"),
                              (":scheme", "http"), (":authority", "l")],
                        end_stream=True)
    c.flush()
    c.sock.recv(100)
    c.sock.close()
    c2 = h2_plain(gh)
    assert c2.request("/x")[0] == 200
    c2.close()


def test_max_concurrent_streams_setting(gatehouse):
    gh = gatehouse(simple_server("""
        http2_max_concurrent_streams 7;
        location / { return 200 "x"; }
    """, listen="127.0.0.1:{port} http2"))
    c = h2_plain(gh)
    assert c.request("/")[0] == 200
    assert c.conn.remote_settings.max_concurrent_streams == 7
    c.close()


def test_max_concurrent_streams_enforced(gatehouse):
    """a client that opens more streams than announced (before it has
    even read our SETTINGS) gets the extra one refused; the others and
    the connection go on"""
    gh = gatehouse(simple_server("""
        http2_max_concurrent_streams 2;
        location / { return 200 "x"; }
    """, listen="127.0.0.1:{port} http2"))
    c = h2_plain(gh)
    sids = c.send_gets([f"/{i}" for i in range(3)],
                       authority="l")
    ended, reset = set(), {}
    while len(ended) + len(reset) < 3:
        data = c.sock.recv(65536)
        assert data
        for ev in c.conn.receive_data(data):
            if isinstance(ev, h2.events.StreamEnded):
                ended.add(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                reset[ev.stream_id] = ev.error_code
        c.flush()
    assert ended == set(sids[:2])
    assert list(reset) == [sids[2]]
    assert reset[sids[2]] in (h2.errors.ErrorCodes.REFUSED_STREAM,
                              h2.errors.ErrorCodes.PROTOCOL_ERROR)
    assert c.request("/again")[0] == 200
    c.close()


def test_keepalive_requests_goaway(gatehouse):
    """keepalive_requests on HTTP/2, as nginx: after the 3rd stream a
    GOAWAY naming it; streams sent past it are refused (the client may
    retry them), the ones before it are answered, then the connection
    ends"""
    gh = gatehouse(simple_server("""
        keepalive_requests 3;
        location / { return 200 "x"; }
    """, listen="127.0.0.1:{port} http2"))
    c = h2_plain(gh)
    assert c.request("/1")[0] == 200
    sids = c.send_gets([f"/{i}" for i in range(3)],
                       authority="l")
    ended, reset, goaway, closed = set(), {}, None, False
    c.sock.settimeout(5)
    while not closed:
        data = c.sock.recv(65536)
        if not data:
            closed = True
            break
        for ev in c.conn.receive_data(data):
            if isinstance(ev, h2.events.StreamEnded):
                ended.add(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                reset[ev.stream_id] = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                goaway = ev
        c.flush()
    assert goaway is not None
    assert goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
    assert goaway.last_stream_id == sids[1]
    assert ended == set(sids[:2])
    assert sids[2] not in ended
    c2 = h2_plain(gh)
    assert c2.request("/x")[0] == 200
    c2.close()


def test_large_header_rejected(gatehouse):
    gh = gatehouse(conf())
    c = h2_plain(gh)
    with pytest.raises(AssertionError, match="reset|closed"):
        c.request("/x", headers=[("x-big", "a" * 60000)])


def test_http2_on_directive(gatehouse):
    gh = gatehouse(simple_server("""
        http2 on;
        location / { return 200 "on"; }
    """))
    c = h2_plain(gh)
    st, hd, body = c.request("/")
    assert st == 200 and body == b"on"
    c.close()


def test_rapid_reset_goaway(gatehouse):
    gh = gatehouse(conf())
    c = h2_plain(gh)
    for _ in range(400):
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(":method", "GET"), (":path", "/x"),
                                  (":scheme", "http"),
                                  (":authority", "localhost")])
        c.conn.reset_stream(sid)
    try:
        c.flush()
    except OSError:
        pass
    got_goaway = False
    c.sock.settimeout(5)
    try:
        while True:
            data = c.sock.recv(65536)
            if not data:
                break
            for ev in c.conn.receive_data(data):
                if isinstance(ev, h2.events.ConnectionTerminated):
                    got_goaway = True
            if got_goaway:
                break
    except (OSError, h2.exceptions.ProtocolError):
        pass
    assert got_goaway
    # other connections are fine
    c2 = h2_plain(gh)
    st, hd, body = c2.request("/x")
    assert st == 200
    c2.close()


def test_variables_say_http2(gatehouse):
    gh = gatehouse(simple_server("""
        location / { return 200 "$server_protocol|$request|$scheme"; }
    """, listen="127.0.0.1:{port} http2"))
    c = h2_plain(gh)
    st, hd, body = c.request("/v?a=1")
    assert body == b"HTTP/2.0|GET /v?a=1 HTTP/2.0|http"
    c.close()
    assert gh.get("/v").body == b"HTTP/1.1|GET /v HTTP/1.1|http"


def test_zero_window_stall_times_out(gatehouse, upstream):
    up = upstream(pattern(1 * MiB))
    gh = gatehouse(simple_server(f"""
        send_timeout 1s;
        location / {{ proxy_pass http://{up.addr}; }}
    """, listen="127.0.0.1:{port} http2"))
    s = socket.create_connection(("127.0.0.1", gh.port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8"))
    conn.local_settings = h2.settings.Settings(
        client=True, initial_values={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "GET"), (":path", "/big"),
                            (":scheme", "http"), (":authority", "l")],
                      end_stream=True)
    s.sendall(conn.data_to_send())
    s.settimeout(0.5)
    start = time.monotonic()
    closed = False
    while time.monotonic() - start < 8:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
        if not data:
            closed = True
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ConnectionTerminated):
                closed = True
        if closed:
            break
    assert closed, "a stalled client keeps its connection forever"
    assert time.monotonic() - start < 5
    # others are served meanwhile and after
    c = h2_plain(gh)
    assert c.request("/x")[0] == 200
    c.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl")
@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_curl_http2(gatehouse, upstream, pki, tls):
    up = upstream(pattern(1 * MiB))
    gh = gatehouse(conf(pki, up, tls=tls))
    if tls:
        url = f"https://a.test:{gh.port}/up/c"
        args = ["--http2", "--cacert", pki.ca, "--resolve",
                f"a.test:{gh.port}:127.0.0.1"]
    else:
        url = f"http://127.0.0.1:{gh.port}/up/c"
        args = ["--http2-prior-knowledge"]
    # several transfers over one connection, in parallel, over TLS (curl
    # 7.88 cannot reuse a prior-knowledge connection, against nginx too)
    n = 3 if tls else 1
    more = [x for _ in range(n - 1) for x in ("-o", "/dev/null", url)]
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "-Z",
                        "-w", "%{http_version} %{http_code}\\n",
                        "-o", "/dev/null", *args, url, *more],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:n] == ["2 200"] * n
    r = subprocess.run(["curl", "-sS", "--max-time", "20", *args, url],
                       capture_output=True, timeout=30)
    assert sha256(r.stdout) == pattern_sha256(1 * MiB)


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl")
@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_curl_http2_upload(gatehouse, upstream, pki, tls, tmp_path):
    """curl uploads 10 MiB over HTTP/2 through the proxy: --data-binary
    from a file, then from a pipe with chunked asked for"""
    up = upstream()
    gh = gatehouse(conf(pki, up, tls=tls))
    if tls:
        url = f"https://a.test:{gh.port}/up/post"
        args = ["--http2", "--cacert", pki.ca, "--resolve",
                f"a.test:{gh.port}:127.0.0.1"]
    else:
        url = f"http://127.0.0.1:{gh.port}/up/post"
        args = ["--http2-prior-knowledge"]
    data = bytes(range(256)) * (40 * 1024)
    f = tmp_path / "up.bin"
    f.write_bytes(data)
    for how in (["--data-binary", f"@{f}"],
                ["-H", "Transfer-Encoding: chunked", "--data-binary", "@-"]):
        r = subprocess.run(["curl", "-sS", "--max-time", "30",
                            "-w", "\n%{http_version} %{http_code}", *args,
                            *how, url], input=data, capture_output=True,
                           timeout=40)
        assert r.returncode == 0, r.stderr
        body, _, status = r.stdout.rpartition(b"\n")
        assert status == b"2 200"
        seen = json.loads(body)
        assert seen["body_len"] == len(data)
        assert seen["body_sha256"] == sha256(data)


@pytest.mark.parametrize("flood", ["ping", "settings"])
def test_flood_cut_off(gatehouse, flood):
    gh = gatehouse(conf())
    c = h2_plain(gh)
    raw = b""
    for i in range(5000):
        if flood == "ping":
            c.conn.ping(i.to_bytes(8, "big"))
        else:
            # SETTINGS (type 4) ENABLE_PUSH=0, by hand: h2 would wait for
            # each ACK first
            raw += (b"\x00\x00\x06\x04\x00\x00\x00\x00\x00"
                    b"\x00\x02\x00\x00\x00\x00")
    # never read: the ACKs pile up on the server until it gives up
    closed = False
    c.sock.settimeout(5)
    try:
        c.flush()
        c.sock.sendall(raw)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            data = c.sock.recv(1 << 20)
            if not data:
                closed = True
                break
            try:
                evs = c.conn.receive_data(data)
            except Exception:
                continue
            if any(isinstance(e, h2.events.ConnectionTerminated)
                   for e in evs):
                closed = True
                break
    except socket.timeout:
        pass
    except OSError:
        closed = True
    assert closed
    c2 = h2_plain(gh)
    assert c2.request("/x")[0] == 200
    c2.close()


def test_slow_headers_time_out(gatehouse):
    gh = gatehouse(simple_server("""
        client_header_timeout 1s;
        location / { return 200 "x"; }
    """, listen="127.0.0.1:{port} http2"))
    c = h2_plain(gh)
    # HEADERS without END_HEADERS, and no CONTINUATION ever
    c.sock.sendall(b"\x00\x00\x01\x01\x00\x00\x00\x00\x01\x82")
    c.sock.settimeout(0.5)
    start = time.monotonic()
    closed = False
    while time.monotonic() - start < 6 and not closed:
        try:
            data = c.sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
        if not data:
            closed = True
    assert closed
    assert time.monotonic() - start < 4


@pytest.mark.parametrize("buffering", ["on", "off"])
def test_slow_body_times_out(gatehouse, upstream, buffering):
    """client_body_timeout ends a stream whose body stalls (its own timer),
    the connection and its other streams go on"""
    up = upstream()
    gh = gatehouse(simple_server(f"""
        client_body_timeout 1s;
        proxy_request_buffering {buffering};
        location / {{ proxy_pass http://{up.addr}; }}
        location = /x {{ return 200 "x"; }}
    """, listen="127.0.0.1:{port} http2"))
    c = h2_plain(gh)
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, [(":method", "POST"), (":path", "/p"),
                              (":scheme", "http"), (":authority", "l"),
                              ("content-length", "10")])
    c.conn.send_data(sid, b"abc")
    c.flush()
    start = time.monotonic()
    st, hd, body = c.response(sid)
    assert st == 408
    assert 0.8 < time.monotonic() - start < 4
    assert c.request("/x")[0] == 200
    c.close()


def test_many_streams_some_cancelled(gatehouse, upstream):
    up = upstream(pattern(256 * 1024))
    gh = gatehouse(conf(None, up))
    c = h2_plain(gh)
    sids = c.send_gets([f"/up/{i}" for i in range(60)],
                       authority="localhost")
    cancel = set(sids[::3])
    got = {sid: 0 for sid in sids if sid not in cancel}
    ended, reset = set(), set()
    while len(ended) < len(got):
        data = c.sock.recv(65536)
        assert data
        for ev in c.conn.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                if ev.stream_id in cancel and ev.stream_id not in reset:
                    reset.add(ev.stream_id)
                    c.conn.reset_stream(ev.stream_id)
                elif ev.stream_id in got:
                    got[ev.stream_id] += len(ev.data)
                c.conn.acknowledge_received_data(ev.flow_controlled_length,
                                                 ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded) \
                    and ev.stream_id in got:
                ended.add(ev.stream_id)
        c.flush()
    assert all(n == 256 * 1024 for n in got.values())
    # more requests in flight, then the client vanishes
    for i in range(10):
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(":method", "GET"), (":path", f"/up/z{i}"),
                                  (":scheme", "http"), (":authority", "l")],
                            end_stream=True)
    c.flush()
    c.sock.close()
    c2 = h2_plain(gh)
    assert c2.request("/x")[0] == 200
    c2.close()


def body_conf(up, extra=""):
    return simple_server(f"""
        client_max_body_size 1k;
        {extra}
        location / {{ proxy_pass http://{up.addr}; }}
        location /big/ {{
            client_max_body_size 64m;
            proxy_pass http://{up.addr};
        }}
        location = /x {{ return 200 "x"; }}
    """, listen="127.0.0.1:{port} http2")


def post_stream(c, path, body, length=True, end=True):
    """open a POST stream and send what the windows allow of body; the
    stream id"""
    sid = c.conn.get_next_available_stream_id()
    hdrs = [(":method", "POST"), (":path", path), (":scheme", "http"),
            (":authority", "a.test")]
    if length:
        hdrs.append(("content-length", str(len(body))))
    c.conn.send_headers(sid, hdrs)
    room = min(c.conn.local_flow_control_window(sid), len(body))
    while room > 0:
        n = min(room, c.conn.max_outbound_frame_size)
        c.conn.send_data(sid, body[:n])
        body, room = body[n:], room - n
    if end and not body:
        c.conn.end_stream(sid)
    c.flush()
    return sid


@pytest.mark.parametrize("buffering", ["on", "off"])
@pytest.mark.parametrize("length", [True, False], ids=["length", "nolength"])
def test_client_max_body_size(gatehouse, upstream, buffering, length):
    """over client_max_body_size: 413 on that stream (at once for a
    declared length, once the DATA passes it otherwise), then a stop
    request; the connection's other streams are served"""
    up = upstream()
    gh = gatehouse(body_conf(up, f"proxy_request_buffering {buffering};"))
    c = h2_plain(gh)
    # a stream in flight on the same connection, finished afterwards
    other = post_stream(c, "/p/other", b"o" * 100, length=False, end=False)
    # more than the limit, less than a window: all of it is sent
    sid = post_stream(c, "/p/big", b"b" * 5000, length=length)
    st, hd, body = c.response(sid)
    assert st == 413
    if buffering == "on" or length:
        assert all(r.target != "/p/big" for r in up.requests)
    c.conn.end_stream(other)
    c.flush()
    st, hd, body = c.response(other)
    assert st == 200 and json.loads(body)["body_len"] == 100
    assert c.request("/x")[0] == 200
    st, hd, body = c.request("/p/small", method="POST", body=b"s" * 1000)
    assert st == 200 and json.loads(body)["body_len"] == 1000
    c.close()


@pytest.mark.parametrize("buffering", ["on", "off"])
def test_upload_without_length(gatehouse, upstream, buffering):
    """a body without content-length: buffered, the upstream gets its
    length (as from nginx); streamed, it goes chunked to HTTP/1.1"""
    up = upstream()
    gh = gatehouse(body_conf(up, f"proxy_request_buffering {buffering};"
                                 "proxy_http_version 1.1;"))
    c = h2_plain(gh)
    data = bytes(range(256)) * 4096          # 1 MiB, > the stream window
    st, hd, body = c.request("/big/u", method="POST", body=data)
    assert st == 200
    seen = json.loads(body)
    assert seen["body_len"] == len(data)
    assert seen["body_sha256"] == sha256(data)
    names = {k.lower(): v for k, v in seen["headers"]}
    if buffering == "on":
        assert names["content-length"] == str(len(data))
        assert not seen["chunked"] and "transfer-encoding" not in names
    else:
        assert seen["chunked"] and "content-length" not in names
    c.close()


def vm(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} for {pid}")


def test_upload_memory_bounded(gatehouse, upstream):
    """a 48 MiB upload does not grow the worker by its size: DATA waits
    within the stream window, the request spools it to a temp file"""
    up = upstream()
    gh = gatehouse(body_conf(up))
    (worker,) = gh.workers()
    c = h2_plain(gh)
    assert c.request("/x")[0] == 200          # warm up
    base = vm(worker, "VmHWM")
    n = 48 * MiB
    data = b"m" * n
    st, hd, body = c.request("/big/m", method="POST", body=data,
                             headers=[("content-length", str(n))])
    assert st == 200 and json.loads(body)["body_len"] == n
    grown = vm(worker, "VmHWM") - base
    assert grown < 12 * MiB, f"peak RSS grew by {grown >> 20} MiB"
    c.close()


def frames(sock, until, timeout=5):
    """read raw frames until until(type, flags, sid, payload) is true;
    the frames as a list of those tuples (None when the peer closed)"""
    buf, got = b"", []
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            f = (buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff,
                 buf[9:9 + n])
            buf = buf[9 + n:]
            got.append(f)
            if until(*f):
                return got
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            got.append(None)
            return got
        buf += data
    raise AssertionError(f"no answer in time: {got!r}")


def test_hpack_bomb_refused(gatehouse):
    """one large header in the HPACK dynamic table, then a header block of
    16000 one-byte references to it (61 MB decoded): the stream is refused
    without the worker growing, the connection's next stream and other
    connections are served"""
    import hpack
    gh = gatehouse(conf())
    (worker,) = gh.workers()
    s = socket.create_connection(("127.0.0.1", gh.port), timeout=10)
    enc, dec = hpack.Encoder(), hpack.Decoder()
    pseudo = [(":method", "GET", True), (":path", "/x", True),
              (":scheme", "http", True), (":authority", "l", True)]

    def headers(sid, block):
        return (len(block).to_bytes(3, "big") + b"\x01\x05"
                + sid.to_bytes(4, "big") + block)

    big = ("x-bomb", "b" * 3800)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
              + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
              + headers(1, enc.encode(pseudo + [big])))
    got = frames(s, lambda t, fl, sid, p: sid == 1 and fl & 1)
    st = [dict(dec.decode(p)).get(":status") for t, fl, sid, p in got
          if t == 1 and sid == 1]
    assert st == ["200"]
    base = vm(worker, "VmHWM")
    ref = enc.encode([big])
    assert ref == b"\xbe"            # one byte: the dynamic table's entry
    s.sendall(headers(3, enc.encode(pseudo) + ref * 16000))
    got = frames(s, lambda t, fl, sid, p: (t == 3 and sid == 3) or t == 7
                 or (t == 1 and sid == 3))
    last = got[-1]
    assert last is not None, "connection closed without RST/GOAWAY"
    if last[0] == 1:
        # an answer: only a refusal will do
        assert dict(dec.decode(last[3]))[":status"] in ("431", "400")
    assert vm(worker, "VmHWM") - base < 8 * MiB
    if last[0] == 3:
        # only the stream went: the connection goes on
        s.sendall(headers(5, enc.encode(pseudo)))
        got = frames(s, lambda t, fl, sid, p: sid == 5 and fl & 1)
        st = [dict(dec.decode(p)).get(":status") for t, fl, sid, p in got
              if t == 1 and sid == 5]
        assert st == ["200"]
    s.close()
    c = h2_plain(gh)
    assert c.request("/x")[0] == 200
    c.close()


def syscw(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("syscw:"):
                return int(line.split()[1])
    raise AssertionError(f"no syscw for {pid}")


def test_frames_of_one_batch_leave_in_one_write(gatehouse, pki):
    """ten requests arriving together: their HEADERS and DATA frames are
    gathered and written with one call, not one write per frame.  Over
    TLS, as OpenSSL writes with write(2), which /proc/PID/io counts (send
    does not)"""
    # no access log: its writes would count
    gh = gatehouse(conf(pki, tls=True, extra="access_log off;"))
    (worker,) = gh.workers()
    c = h2_tls(gh, pki)
    assert c.request("/x")[0] == 200          # settings exchanged
    time.sleep(0.2)
    before = syscw(worker)
    sids = []
    for i in range(10):
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(":method", "GET"), (":path", "/x"),
                                  (":scheme", "http"),
                                  (":authority", "a.test")],
                            end_stream=True)
        sids.append(sid)
    c.flush()                                 # one segment, one read
    got = {sid: bytearray() for sid in sids}
    ended = set()
    while len(ended) < len(sids):
        data = c.sock.recv(65536)
        assert data
        for ev in c.conn.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                got[ev.stream_id] += ev.data
            elif isinstance(ev, h2.events.StreamEnded):
                ended.add(ev.stream_id)
        c.flush()
    assert all(body == b"x" for body in got.values())
    writes = syscw(worker) - before
    # one write for the batch (two or three if TCP split the requests);
    # it was two per response (HEADERS, DATA) before gathering
    assert 1 <= writes <= 3, f"{writes} write calls for 10 responses"
    c.close()


# --------------------------------------------------------------------------
# graceful shutdown (QUIT, reload) with HTTP/2 connections open

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = \
    0, 1, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 1, 4, 1
BIG_WINDOW = 16 * MiB


def h2frame(ftype, flags, sid, payload=b""):
    return (len(payload).to_bytes(3, "big") + bytes([ftype, flags])
            + sid.to_bytes(4, "big") + payload)


class RawH2:
    """HTTP/2 on raw frames for the shutdown tests: python-h2 takes a
    GOAWAY for the end of the connection and refuses the frames of the
    streams the server still finishes.  It announces 16 MiB windows, so
    responses need no WINDOW_UPDATE (the client sends nothing while it
    reads them); request bodies keep to the server's windows.  Each frame
    received lands in .events as (monotonic time, kind, stream id), with
    kind "headers", "end", "rst", "goaway" or "eof"."""

    def __init__(self, sock):
        import hpack
        self.sock = sock
        self.sock.settimeout(10)
        self.enc, self.dec = hpack.Encoder(), hpack.Decoder()
        self.buf = b""
        self.next_sid = 1
        self.status, self.body, self.ended, self.reset = {}, {}, set(), {}
        self.goaway = None                       # (last stream id, code)
        self.events = []
        self.eof = False
        self.conn_reset = False                  # ECONNRESET, not EOF
        self.window = {0: 65535}                 # ours to send into
        self.initial = 65535
        self.sock.sendall(PREFACE
                          + h2frame(SETTINGS, 0, 0,
                                    (4).to_bytes(2, "big")
                                    + BIG_WINDOW.to_bytes(4, "big"))
                          + h2frame(WINDOW_UPDATE, 0, 0,
                                    (BIG_WINDOW - 65535).to_bytes(4, "big")))

    def open(self, path, method="GET", headers=(), end=True):
        """send a stream's HEADERS; its id"""
        sid, self.next_sid = self.next_sid, self.next_sid + 2
        block = self.enc.encode([(":method", method), (":path", path),
                                 (":scheme", "http"), (":authority", "l")]
                                + list(headers))
        self.window[sid] = self.initial
        self.sock.sendall(h2frame(HEADERS, END_HEADERS
                                  | (END_STREAM if end else 0), sid, block))
        return sid

    def send_data(self, sid, data, end=True):
        """DATA within the windows, reading frames while they are shut"""
        view = memoryview(data)
        while view:
            n = min(len(view), 16384, self.window[0], self.window[sid])
            if n <= 0:
                if not self.read_frame():
                    raise AssertionError("closed while sending a body")
                continue
            last = end and n == len(view)
            self.sock.sendall(h2frame(DATA, END_STREAM if last else 0, sid,
                                      view[:n].tobytes()))
            self.window[0] -= n
            self.window[sid] -= n
            view = view[n:]

    def read_frame(self):
        """read and handle one frame; False at EOF"""
        while len(self.buf) < 9 or \
                len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            try:
                data = self.sock.recv(1 << 20)
            except ConnectionResetError:
                self.conn_reset = True
                data = b""
            if not data:
                if not self.eof:
                    self.eof = True
                    self.events.append((time.monotonic(), "eof", 0))
                return False
            self.buf += data
        n = int.from_bytes(self.buf[:3], "big")
        ftype, flags = self.buf[3], self.buf[4]
        sid = int.from_bytes(self.buf[5:9], "big") & 0x7fffffff
        p, self.buf = self.buf[9:9 + n], self.buf[9 + n:]
        now = time.monotonic()
        if ftype == SETTINGS and not flags & ACK:
            for i in range(0, len(p), 6):
                if int.from_bytes(p[i:i + 2], "big") == 4:
                    v = int.from_bytes(p[i + 2:i + 6], "big")
                    for s in self.window:
                        if s:
                            self.window[s] += v - self.initial
                    self.initial = v
            self.sock.sendall(h2frame(SETTINGS, ACK, 0))
        elif ftype == PING and not flags & ACK:
            self.sock.sendall(h2frame(PING, ACK, 0, p))
        elif ftype == WINDOW_UPDATE:
            inc = int.from_bytes(p, "big") & 0x7fffffff
            if sid == 0 or sid in self.window:
                self.window[sid] += inc
        elif ftype == HEADERS:
            hdrs = dict(self.dec.decode(p))
            if ":status" in hdrs:
                self.status[sid] = int(hdrs[":status"])
                self.events.append((now, "headers", sid))
        elif ftype == DATA:
            self.body[sid] = self.body.get(sid, b"") + p
        elif ftype == RST_STREAM:
            self.reset[sid] = int.from_bytes(p, "big")
            self.events.append((now, "rst", sid))
        elif ftype == GOAWAY:
            self.goaway = (int.from_bytes(p[:4], "big") & 0x7fffffff,
                           int.from_bytes(p[4:8], "big"))
            self.events.append((now, "goaway", 0))
        if ftype in (DATA, HEADERS) and flags & END_STREAM:
            self.ended.add(sid)
            self.events.append((now, "end", sid))
        return True

    def read_until(self, pred, timeout=5.0):
        """read frames until pred() holds; False if EOF came first"""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; events {self.kinds()}")
            if not self.read_frame():
                return pred()
        return True

    def read_to_eof(self, timeout=5.0):
        self.read_until(lambda: self.eof, timeout)

    def kinds(self):
        return [(k, s) for t, k, s in self.events]

    def close(self):
        self.sock.close()


def raw_plain(gh, port=None):
    return RawH2(socket.create_connection(("127.0.0.1", port or gh.port),
                                          timeout=10))


def raw_tls(gh, pki_):
    s = tls_socket(gh.port, "a.test", client_ctx(pki_, alpn=["h2"]))
    assert s.selected_alpn_protocol() == "h2"
    return RawH2(s)


def slow_then(n, delay):
    """the upstream waits `delay` seconds, then sends n pattern bytes"""
    handler = pattern(n)

    def slow(req, w):
        time.sleep(delay)
        handler(req, w)
    return slow


def exits_soon(gh, t0, limit=2.0):
    """the master exits with 0 well within the test's kill timeout"""
    assert gh.proc.wait(timeout=limit + 3) == 0
    took = time.monotonic() - t0
    assert took < limit, f"exited after {took:.1f}s"


@pytest.mark.parametrize("state", ["after_stream", "fresh", "mid_headers"])
@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_quit_closes_idle_connection(gatehouse, pki, tls, state):
    """QUIT with an idle HTTP/2 connection open: GOAWAY(NO_ERROR) naming
    the last stream served, EOF, and the processes exit at once.  Idle
    too: a connection in the middle of a header block (no stream started;
    nginx closes it at once, it was left for client_header_timeout)"""
    gh = gatehouse(conf(pki, tls=tls))
    c = raw_tls(gh, pki) if tls else raw_plain(gh)
    last = 0
    if state in ("after_stream", "mid_headers"):
        last = c.open("/x")
        assert c.read_until(lambda: last in c.ended)
        assert c.status[last] == 200 and c.body[last] == b"x"
    # the settings exchange is over: nothing is on its way
    c.sock.sendall(h2frame(PING, 0, 0, b"12345678"))
    if state == "mid_headers":
        # HEADERS without END_HEADERS: a CONTINUATION should follow
        sid, c.next_sid = c.next_sid, c.next_sid + 2
        c.sock.sendall(h2frame(HEADERS, END_STREAM, sid, c.enc.encode(
            [(":method", "GET"), (":path", "/x"), (":scheme", "http")])))
    time.sleep(0.2)
    t0 = time.monotonic()
    gh.signal(signal.SIGQUIT)
    c.read_to_eof(timeout=4)
    assert c.goaway == (last, 0), c.kinds()        # 0: NO_ERROR
    assert c.kinds()[-2:] == [("goaway", 0), ("eof", 0)]
    exits_soon(gh, t0)
    c.close()


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_quit_finishes_stream_in_flight(gatehouse, upstream, pki, tls):
    """QUIT while a stream waits for a slow upstream: GOAWAY(NO_ERROR)
    naming that stream comes at once; a stream the client opens after it
    is not served; the response arrives whole (8 MiB, more than the
    socket buffers hold while the client does not read), then EOF"""
    n = 8 * MiB
    up = upstream(slow_then(n, 0.8))
    gh = gatehouse(conf(pki, up, tls=tls))
    c = raw_tls(gh, pki) if tls else raw_plain(gh)
    first = c.open("/x")
    assert c.read_until(lambda: first in c.ended)
    sid = c.open("/up/slow")
    up.wait_requests(1)
    t0 = time.monotonic()
    gh.signal(signal.SIGQUIT)
    assert c.read_until(lambda: c.goaway is not None, timeout=3), c.kinds()
    assert c.goaway == (sid, 0)
    assert sid not in c.status, "GOAWAY only after the response"
    # a client that did not look: past the GOAWAY, ignored or refused
    late = c.open("/x")
    time.sleep(1.5)                     # the socket fills meanwhile
    c.read_to_eof(timeout=10)
    assert c.status.get(sid) == 200
    assert len(c.body[sid]) == n and sha256(c.body[sid]) == pattern_sha256(n)
    assert sid in c.ended and sid not in c.reset
    assert late not in c.status and late not in c.ended
    assert c.reset.get(late, 7) == 7     # REFUSED_STREAM if anything
    assert c.kinds()[-1] == ("eof", 0)
    exits_soon(gh, t0, limit=4.0)
    c.close()


def test_quit_finishes_upload_in_flight(gatehouse, upstream):
    """QUIT while a request body is half sent: GOAWAY comes, the client
    sends the rest (through the windows gatehouse keeps opening), the
    upstream gets all of it and the answer comes back, then EOF"""
    up = upstream()
    gh = gatehouse(body_conf(up))
    c = raw_plain(gh)
    data = bytes(range(256)) * 2048                 # 512 KiB, 8 windows
    sid = c.open("/big/up", method="POST", end=False,
                 headers=[("content-length", str(len(data)))])
    c.send_data(sid, data[:40000], end=False)
    time.sleep(0.3)
    t0 = time.monotonic()
    gh.signal(signal.SIGQUIT)
    assert c.read_until(lambda: c.goaway is not None, timeout=3), c.kinds()
    assert c.goaway == (sid, 0)
    c.send_data(sid, data[40000:])
    c.read_to_eof(timeout=10)
    assert c.status.get(sid) == 200 and sid in c.ended
    seen = json.loads(c.body[sid])
    assert seen["body_len"] == len(data)
    assert seen["body_sha256"] == sha256(data)
    exits_soon(gh, t0, limit=3.0)
    c.close()


def test_reload_old_worker_finishes_http2(gatehouse, upstream):
    """reload (HUP) with an idle HTTP/2 connection and one with a stream
    in flight: both get GOAWAY at once, the idle one ends, the stream is
    answered by the old worker, which then exits; new connections are
    served by the new worker with the new configuration"""
    up = upstream(slow_then(1000, 1.0))

    def version(v):
        return conf(up=up, extra=f'location = /v {{ return 200 "{v}"; }}')
    gh = gatehouse(version("old"))
    (old,) = gh.workers()
    idle, busy = raw_plain(gh), raw_plain(gh)
    s1 = idle.open("/v")
    assert idle.read_until(lambda: s1 in idle.ended)
    assert idle.body[s1] == b"old"
    sid = busy.open("/up/slow")
    up.wait_requests(1)
    gh.configure(version("new"))
    t0 = time.monotonic()
    gh.reload()
    idle.read_to_eof(timeout=4)
    assert idle.goaway == (s1, 0) and idle.kinds()[-1] == ("eof", 0)
    assert busy.read_until(lambda: busy.goaway is not None, timeout=3)
    assert busy.goaway == (sid, 0) and sid not in busy.status
    busy.read_to_eof(timeout=5)
    assert busy.status.get(sid) == 200 and len(busy.body[sid]) == 1000
    assert sid in busy.ended
    gh.wait_workers(1, timeout=2, exclude=[old])
    assert not pid_alive(old)
    assert time.monotonic() - t0 < 3.0
    c = raw_plain(gh)
    s = c.open("/v")
    assert c.read_until(lambda: s in c.ended)
    assert c.body[s] == b"new"
    c.close()
    idle.close()
    busy.close()


# --- lingering close ---------------------------------------------------

def linger_conf(pki_, tls, root, extra=""):
    """keepalive_requests 1: the first stream's answer brings GOAWAY;
    /sink answers without reading the body, /small refuses it with 413
    and a 1 MiB error page (more than the socket buffers take while the
    client sends and does not read)"""
    return conf(pki_, tls=tls, extra=f"""
        keepalive_requests 1;
        {extra}
        location = /sink {{ return 200 "sunk"; }}
        location = /small {{
            client_max_body_size 1k;
            error_page 413 /page.bin;
        }}
        location = /page.bin {{ root {root}; }}
    """)


def page(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    data = bytes(range(256)) * 4096                  # 1 MiB
    (root / "page.bin").write_bytes(data)
    return root, data


def upload_paced(c, sid, frames, every):
    """DATA frames of 1000 bytes on sid, one every `every` seconds and
    all within the first stream window, without reading anything (a
    client busy sending a large body); False if the connection was
    reset under it"""
    for _ in range(frames):
        try:
            c.sock.sendall(h2frame(DATA, 0, sid, b"u" * 1000))
        except OSError:                 # EPIPE, ECONNRESET, TLS's EOF
            return False
        time.sleep(every)
    return True


@pytest.mark.parametrize("path", ["/sink", "/small"])
@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_lingering_close_keeps_last_response(gatehouse, pki, tmp_path, tls,
                                             path):
    """the client is still sending a large body when gatehouse ends the
    connection (its only stream answered: GOAWAY after keepalive_requests
    1, the body reset with NO_ERROR).  A plain close() with those bytes
    unread makes the kernel send RST: the client saw ECONNRESET and, with
    a large answer (the 413 page), lost part of it.  With the lingering
    close the client gets the whole answer, the GOAWAY and a clean EOF
    (after close_notify on TLS)"""
    root, data = page(tmp_path)
    gh = gatehouse(linger_conf(pki, tls, root))
    c = raw_tls(gh, pki) if tls else raw_plain(gh)
    sid = c.open(path, method="POST", end=False,
                 headers=[("content-length", str(10 * MiB))])
    # 60 KB over ~0.3 s: gatehouse answers and ends meanwhile
    assert upload_paced(c, sid, 60, 0.005), "reset while sending"
    c.read_to_eof(timeout=10)
    assert not c.conn_reset, f"ECONNRESET after {c.kinds()}"
    assert c.goaway == (sid, 0)
    if path == "/sink":
        assert c.status.get(sid) == 200 and c.body[sid] == b"sunk"
    else:
        assert c.status.get(sid) == 413
        assert len(c.body.get(sid, b"")) == len(data)
        assert c.body[sid] == data
    assert sid in c.ended
    assert c.kinds()[-2:] == [("goaway", 0), ("eof", 0)]
    c.close()
    # nothing of it stays behind: a new connection is served
    c2 = raw_tls(gh, pki) if tls else raw_plain(gh)
    s2 = c2.open("/x")
    assert c2.read_until(lambda: s2 in c2.ended)
    assert c2.body[s2] == b"x"
    c2.close()


def test_lingering_close_bounded(gatehouse, pki, tmp_path):
    """a client that sends on and on: the lingering close lasts
    lingering_timeout in all, then the socket is closed"""
    root, _ = page(tmp_path)
    gh = gatehouse(linger_conf(pki, False, root, "lingering_timeout 1s;"))
    c = raw_plain(gh)
    sid = c.open("/sink", method="POST", end=False,
                 headers=[("content-length", str(10 * MiB))])
    c.sock.sendall(h2frame(DATA, 0, sid, b"u" * 1000))
    assert c.read_until(lambda: c.goaway is not None)
    t0 = time.monotonic()
    # 1000 bytes every 50 ms for 3 s: still within the stream window
    ok = upload_paced(c, sid, 60, 0.05)
    took = time.monotonic() - t0
    assert not ok, "the lingering close never ended"
    assert 0.8 < took < 2.5, f"reset after {took:.1f}s"
    c.read_to_eof()
    assert c.status.get(sid) == 200 and c.body[sid] == b"sunk"
    c.close()


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_quit_with_lingering_connection(gatehouse, pki, tmp_path, tls):
    """QUIT while a connection lingers (the client still sending): the
    worker waits for it as for an HTTP/1 lingering close, at most
    lingering_timeout, and exits; the client had its answer and EOF"""
    root, _ = page(tmp_path)
    gh = gatehouse(linger_conf(pki, tls, root, "lingering_timeout 1s;"))
    c = raw_tls(gh, pki) if tls else raw_plain(gh)
    sid = c.open("/sink", method="POST", end=False,
                 headers=[("content-length", str(10 * MiB))])
    assert upload_paced(c, sid, 5, 0.01)
    c.read_to_eof()
    assert not c.conn_reset and c.goaway == (sid, 0)
    assert c.status.get(sid) == 200 and c.body[sid] == b"sunk"
    t0 = time.monotonic()
    gh.signal(signal.SIGQUIT)
    # the client goes on sending (and never closes): the worker does not
    # wait past lingering_timeout
    upload_paced(c, sid, 10, 0.05)
    exits_soon(gh, t0, limit=2.0)
    c.close()


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_quit_while_upload_refused(gatehouse, upstream, pki, tls):
    """QUIT: GOAWAY while a stream's body is still coming; the request
    then answers without reading the rest (413 past client_max_body_size
    without a length).  The client, still sending, gets the 413, the
    GOAWAY and EOF, no RST, and the worker exits"""
    up = upstream()
    gh = gatehouse(conf(pki, up, tls=tls, extra="""
        location /small/ {
            client_max_body_size 50k;
            proxy_pass http://%s;
        }
    """ % up.addr))
    c = raw_tls(gh, pki) if tls else raw_plain(gh)
    sid = c.open("/small/up", method="POST", end=False)
    c.send_data(sid, b"u" * 40000, end=False)
    time.sleep(0.3)
    t0 = time.monotonic()
    gh.signal(signal.SIGQUIT)
    assert c.read_until(lambda: c.goaway is not None, timeout=3), c.kinds()
    assert c.goaway == (sid, 0)
    # past the limit (at the 10th frame): 413 while the client sends on,
    # all within the first stream window
    assert upload_paced(c, sid, 25, 0.005), "reset while sending"
    c.read_to_eof(timeout=5)
    assert not c.conn_reset, f"ECONNRESET after {c.kinds()}"
    assert c.status.get(sid) == 413 and sid in c.ended
    assert c.kinds()[-1] == ("eof", 0)
    # the client closes in turn: the lingering close ends at once
    c.close()
    exits_soon(gh, t0, limit=3.0)
