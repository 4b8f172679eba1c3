"""Hostile clients against gatehouse in front of a recording upstream.

Every case sends raw bytes and checks both sides:

  * the client: the status (400, 501, 505, 414, 431, 413, 408...), that
    nothing else was answered (a smuggled second request gets no response
    of its own) and that the connection was closed;
  * the upstream (hostile.RecordingUpstream, which keeps every byte it was
    sent): how many requests it got, each in canonical form (origin-form
    line, CRLF, one Host, Content-Length framing) with no stray bytes.

Most cases share one gatehouse (module scope) to keep the suite fast; an
autouse fixture resets the upstream's records before each case and checks
after it that the worker is the same process (no crash, no restart) and
that no sanitizer report was printed.  Cases with a configuration of their
own (slow clients, worker_connections) start their own server.
"""

import socket
import threading
import time

import pytest

from conftest import CRASH_RE, Gatehouse
from hostile import RecordingUpstream, read_all, statuses

H = b"Host: localhost\r\n"

CONF = """\
server {{
    listen 127.0.0.1:{{port}};
    server_name localhost;
    client_header_timeout 3s;
    client_body_timeout 2s;
    lingering_timeout 1s;
    client_max_body_size 1k;
    large_client_header_buffers 4 1k;

    location / {{
        proxy_pass http://{up};
        proxy_set_header X-Host $host;
    }}
    location /inject/ {{
        proxy_pass http://{up};
        proxy_set_header X-Arg $arg_x;
        proxy_set_header X-Uri "u=$uri";
        proxy_set_header X-Cookie $cookie_c;
    }}
    location /var/ {{
        proxy_pass http://{up}$uri$is_args$args;
    }}
    location /rw/ {{
        # [^?] matches CR and LF, where "." would not
        rewrite "^/rw/([^?]*)$" /rewritten?a=$1 break;
        proxy_pass http://{up};
    }}
    location /method/ {{
        proxy_pass http://{up};
        proxy_method $arg_m;
    }}
    location /stream/ {{
        proxy_pass http://{up};
        proxy_http_version 1.1;
        proxy_request_buffering off;
    }}
    location /local {{
        return 200 "local";
    }}
    location /redir/ {{
        return 302 http://localhost$uri;
    }}
    location /addh/ {{
        add_header X-U $uri;
        return 200 "ok";
    }}
}}
"""


class Env:
    def __init__(self, gh, up):
        self.gh = gh
        self.up = up


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    up = RecordingUpstream().start()
    gh = Gatehouse(tmp_path_factory.mktemp("attacks"))
    gh.configure(CONF.format(up=up.addr))
    gh.start()
    gh.wait_workers(1)
    yield Env(gh, up)
    gh.stop()
    up.stop()
    if gh.problems:
        pytest.fail("teardown: " + "; ".join(gh.problems), pytrace=False)


@pytest.fixture(autouse=True)
def same_worker(request):
    """Around each case using `env`: fresh upstream records before, and
    after it the same worker alive and no crash report anywhere."""
    if "env" not in request.fixturenames:
        yield
        return
    e = request.getfixturevalue("env")
    e.up.settle()
    with e.up.lock:
        e.up.conns.clear()
    before = e.gh.workers()
    yield
    assert e.gh.workers() == before, "the worker died or was replaced"
    for text in (e.gh.error_log(), e.gh.stderr()):
        m = CRASH_RE.search(text)
        assert m is None, text[max(0, m.start() - 200):m.end() + 800]


def exchange(env, data, timeout=4.0, pieces=None, pause=0.0):
    """Send data (or the list `pieces` with `pause` between them) on a new
    connection and read until the server closes.  Returns (statuses,
    bytes, closed)."""
    s = socket.create_connection(("127.0.0.1", env.gh.port), timeout=5)
    try:
        for i, p in enumerate(pieces or [data]):
            if i and pause:
                time.sleep(pause)
            try:
                s.sendall(p)
            except (BrokenPipeError, ConnectionResetError):
                break
        out, closed = read_all(s, timeout)
    finally:
        s.close()
    return statuses(out), out, closed


def rejected(env, data, status=400, **kw):
    """The request is refused with `status` alone, the connection closed,
    and nothing at all reached the upstream."""
    st, out, closed = exchange(env, data, **kw)
    want = status if isinstance(status, (list, tuple)) else [status]
    assert len(st) == 1 and st[0] in want, out
    assert closed, f"connection left open after {st}: {out!r}"
    env.up.assert_canonical(count=0)
    return out


def accepted(env, data, count=1, responses=None, **kw):
    """Every request gets 200; the upstream got `count` canonical
    requests (returned)."""
    st, out, closed = exchange(env, data, **kw)
    assert st == [200] * (responses or count), out
    return env.up.assert_canonical(count=count)


def post(headers, body=b"", target=b"/", version=b"HTTP/1.1"):
    return (b"POST " + target + b" " + version + b"\r\n" + H + headers
            + b"Connection: close\r\n\r\n" + body)


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"


# --------------------------------------------------------------------------
# Content-Length and Transfer-Encoding together, several, malformed

def test_cl_and_te(env):
    rejected(env, post(b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
                       b"0\r\n\r\n" + SMUGGLED))


def test_te_and_cl(env):
    rejected(env, post(b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                       b"0\r\n\r\n" + SMUGGLED))


def test_te_obfuscated_and_cl(env):
    # an upstream that ignores the odd TE would frame by CL, we by TE
    rejected(env, post(b"Content-Length: 40\r\n"
                       b"Transfer-Encoding: xchunked\r\n",
                       b"0\r\n\r\n" + SMUGGLED), status=(400, 501))


@pytest.mark.parametrize("cls", [
    [b"5", b"5"], [b"5", b"6"], [b"5, 5"], [b"5,6"], [b"+5"], [b"-5"],
    [b"0x5"], [b"5.0"], [b"1 0"], [b""], [b"5a"], [b"\xd9\xa5"],
    [b"99999999999999999999"], [b"9223372036854775808"],
], ids=["same-twice", "different-twice", "list", "list-differ", "plus",
        "negative", "hex", "decimal", "inner-space", "empty", "junk",
        "arabic-digit", "overflow-20", "overflow-int64"])
def test_malformed_or_several_content_length(env, cls):
    hdrs = b"".join(b"Content-Length: " + v + b"\r\n" for v in cls)
    rejected(env, post(hdrs, b"hello" + SMUGGLED))


def test_content_length_leading_zeros_is_normalised(env):
    # 1*DIGIT allows them; the upstream gets the canonical number
    (r,) = accepted(env, post(b"Content-Length: 0005\r\n", b"hello"))
    assert r.body == b"hello" and r.header("Content-Length") == "5"


# --------------------------------------------------------------------------
# Transfer-Encoding other than a final chunked, obfuscated codings

@pytest.mark.parametrize("te,status", [
    (b"gzip", 501), (b"identity", 501), (b"gzip, chunked", 501),
    (b"chunked, gzip", 501), (b"chunked, identity", 501),
    (b"chunked, chunked", 501), (b"xchunked", 501), (b"chunked2", 501),
    (b"chunk", 501), (b"chunked;q=1", 400), (b"chunked,", 400),
    (b", chunked", 400), (b'"chunked"', 400), (b"chunked\x0b", 400),
    (b"chunked\x0c", 400), (b"chu nked", 400), (b"\xe2\x80\x8bchunked", 400),
], ids=["gzip", "identity", "gzip-chunked", "chunked-gzip",
        "chunked-identity", "chunked-twice", "xchunked", "chunked2", "chunk",
        "param", "trailing-comma", "leading-comma", "quoted", "vtab",
        "formfeed", "inner-space", "zero-width-space"])
def test_transfer_encoding_not_a_final_chunked(env, te, status):
    rejected(env, post(b"Transfer-Encoding: " + te + b"\r\n",
                       b"5\r\nhello\r\n0\r\n\r\n" + SMUGGLED), status)


def test_te_header_twice(env):
    rejected(env, post(b"Transfer-Encoding: chunked\r\n"
                       b"Transfer-Encoding: chunked\r\n",
                       b"0\r\n\r\n" + SMUGGLED))


@pytest.mark.parametrize("name", [
    b"Transfer-Encoding ", b"Transfer-Encoding\t", b" Transfer-Encoding",
    b"Transfer-Encoding\x00", b"Transfer\rEncoding", b"Transfer-Encoding\x0b",
], ids=["space-before-colon", "tab-before-colon", "leading-space",
        "nul-in-name", "cr-in-name", "vtab-in-name"])
def test_te_name_games(env, name):
    rejected(env, post(b"Content-Length: 5\r\n" + name + b": chunked\r\n",
                       b"0\r\n\r\n" + SMUGGLED))


def test_te_obs_folded(env):
    rejected(env, post(b"Transfer-Encoding:\r\n chunked\r\n",
                       b"0\r\n\r\n" + SMUGGLED))


def test_te_in_http10(env):
    rejected(env, post(b"Transfer-Encoding: chunked\r\n",
                       b"0\r\n\r\n" + SMUGGLED, version=b"HTTP/1.0"))


@pytest.mark.parametrize("te", [b"Chunked", b"CHUNKED", b"chunked ",
                                b"\tchunked", b" chunked\t "],
                         ids=["capital", "upper", "trailing-sp",
                              "leading-tab", "ows-both"])
def test_te_case_and_ows_are_normalised(env, te):
    """Case-insensitive, OWS around the value is not part of it (RFC 9110
    5.5): accepted, and the upstream gets the decoded body with a length
    and no Transfer-Encoding at all."""
    (r,) = accepted(env, post(b"Transfer-Encoding: " + te + b"\r\n",
                              b"5\r\nhello\r\n0\r\n\r\n"))
    assert r.body == b"hello" and not r.chunked
    assert r.header("Content-Length") == "5"


def test_te_with_underscore_is_not_framing(env):
    """Transfer_Encoding is dropped (underscores_in_headers off), so the
    body is framed by its Content-Length alone, on both sides."""
    (r,) = accepted(env, post(b"Content-Length: 5\r\n"
                              b"Transfer_Encoding: chunked\r\n", b"0\r\n\r\n"))
    assert r.body == b"0\r\n\r\n"
    assert r.header("Transfer-Encoding") is None
    assert r.header("Transfer_Encoding") is None


# --------------------------------------------------------------------------
# line ends, CR, LF, NUL and control bytes, obs-fold

@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\rb\r\n\r\n",
    b"GET /\r HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"GET / HTTP/1.1\r\r\nHost: localhost\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: localhost\r\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\r\n",
    b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\rX-B: b\r\n\r\n",
], ids=["in-value", "in-line", "before-crlf", "after-value",
        "blank-line", "double"])
def test_bare_cr(env, data):
    rejected(env, data)


def test_bare_cr_as_line_terminator(env):
    """Old Macs' line ends: refused, promptly, without waiting for an LF
    that never comes."""
    t0 = time.monotonic()
    rejected(env, b"GET / HTTP/1.1\rHost: localhost\r\r", timeout=2.5)
    assert time.monotonic() - t0 < 2.5


def test_bare_lf_head_is_normalised(env):
    """RFC 9112 2.2 lets a server take LF as a line end in the head; the
    upstream then gets CRLF."""
    (r,) = accepted(env, b"GET /lf HTTP/1.1\nHost: localhost\nX-A: 1\n"
                         b"Connection: close\n\n")
    assert r.target == "/lf" and r.header("X-A") == "1"


@pytest.mark.parametrize("body", [
    b"5\nhello\r\n0\r\n\r\n", b"5\r\nhello\n0\r\n\r\n",
    b"5\r\nhello\r\n0\n\r\n", b"5\r\nhello\r\n0\r\n\n",
    b"5;a=b\nhello\r\n0\r\n\r\n", b"5\r\nhello\r\n0\r\nX: y\n\r\n",
], ids=["size-line", "after-data", "last-chunk", "end", "after-ext",
        "trailer"])
def test_bare_lf_in_chunked_framing(env, body):
    rejected(env, post(b"Transfer-Encoding: chunked\r\n", body + SMUGGLED))


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\x00b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: localhost\r\nX-\x00A: a\r\n\r\n",
    b"GET /a\x00b HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"G\x00ET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: local\x00host\r\n\r\n",
    b"GET / HTTP/1.1\x00\r\nHost: localhost\r\n\r\n",
], ids=["value", "name", "target", "method", "host", "version"])
def test_nul_bytes(env, data):
    rejected(env, data)


@pytest.mark.parametrize("byte", [b"\x01", b"\x08", b"\x0b", b"\x0c",
                                  b"\x1b", b"\x1f", b"\x7f"],
                         ids=["soh", "bs", "vt", "ff", "esc", "us", "del"])
def test_control_bytes_in_header_value(env, byte):
    rejected(env, b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a" + byte
             + b"b\r\n\r\n")


def test_control_byte_in_target(env):
    rejected(env, b"GET /a\x1b[2Jb HTTP/1.1\r\nHost: localhost\r\n\r\n")


@pytest.mark.parametrize("fold", [b" ", b"\t", b"   \t"],
                         ids=["space", "tab", "mixed"])
def test_obs_fold(env, fold):
    rejected(env, b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n" + fold
             + b"b\r\n\r\n")


def test_obs_fold_of_host(env):
    rejected(env, b"GET / HTTP/1.1\r\nHost:\r\n localhost\r\n\r\n")


def test_whitespace_before_first_header(env):
    rejected(env, b"GET / HTTP/1.1\r\n Host: localhost\r\n\r\n")


@pytest.mark.parametrize("line", [b"X-A", b": value", b"X A: b",
                                  b"X-A\x80: b", b"X-(A): b"],
                         ids=["no-colon", "empty-name", "space-in-name",
                              "high-byte-in-name", "paren-in-name"])
def test_malformed_header_lines(env, line):
    rejected(env, b"GET / HTTP/1.1\r\nHost: localhost\r\n" + line
             + b"\r\n\r\n")


# --------------------------------------------------------------------------
# chunked framing: sizes, missing CRLF, extensions and trailers

@pytest.mark.parametrize("size", [
    b"10000000000000000", b"ffffffffffffffff", b"4000000000000001",
    b"0000000000000000005", b"5x", b"0x5", b"-5", b" 5", b"5 ", b"",
    b"+5", b"5\t", b"g",
], ids=["overflow-17-digits", "16-f", "above-2^62", "many-zeros", "junk",
        "0x", "negative", "leading-space", "trailing-space", "empty", "plus",
        "trailing-tab", "not-hex"])
def test_bad_chunk_size(env, size):
    rejected(env, post(b"Transfer-Encoding: chunked\r\n",
                       size + b"\r\nhello\r\n0\r\n\r\n" + SMUGGLED))


@pytest.mark.parametrize("body", [
    b"5\r\nhelloX\r\n0\r\n\r\n", b"5\r\nhello0\r\n\r\n",
    b"3\r\nhello\r\n0\r\n\r\n", b"5\r\nhello\r\n0\r\n",
    b"5\r\nhello\r\n0\r\nX\r\n\r\n",
], ids=["junk-after-data", "no-crlf-after-data", "data-longer",
        "no-final-crlf-then-request", "trailer-without-colon"])
def test_chunk_missing_crlf(env, body):
    rejected(env, post(b"Transfer-Encoding: chunked\r\n", body + SMUGGLED),
             status=(400, 408))


def test_chunk_extension_is_dropped(env):
    (r,) = accepted(env, post(b"Transfer-Encoding: chunked\r\n",
                              b'5;name="v\\"x";y=z\r\nhello\r\n0;e\r\n\r\n'))
    assert r.body == b"hello" and b";" not in r.raw_head


def test_chunk_extension_too_long(env):
    rejected(env, post(b"Transfer-Encoding: chunked\r\n",
                       b"5;" + b"a" * 5000 + b"\r\nhello\r\n0\r\n\r\n"))


def test_chunk_extensions_too_long_in_total(env):
    """Many one-byte chunks each with a small extension: the budget is per
    body, so they cannot make the CPU work for free."""
    chunk = b"1;" + b"e" * 100 + b"\r\nx\r\n"
    rejected(env, post(b"Transfer-Encoding: chunked\r\n",
                       chunk * 60 + b"0\r\n\r\n"))


def test_trailers_are_not_forwarded(env):
    """Trailers could carry framing headers; they are dropped."""
    (r,) = accepted(env, post(b"Transfer-Encoding: chunked\r\n",
                              b"5\r\nhello\r\n0\r\nContent-Length: 50\r\n"
                              b"Transfer-Encoding: chunked\r\nX-T: 1\r\n\r\n"))
    assert r.body == b"hello" and r.header("X-T") is None
    assert r.header("Content-Length") == "5"


def test_trailers_too_large(env):
    trailers = b"".join(b"X-T%d: %s\r\n" % (i, b"v" * 500) for i in range(20))
    rejected(env, post(b"Transfer-Encoding: chunked\r\n",
                       b"5\r\nhello\r\n0\r\n" + trailers + b"\r\n"))


def test_trailer_obs_fold(env):
    rejected(env, post(b"Transfer-Encoding: chunked\r\n",
                       b"5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n"))


# --------------------------------------------------------------------------
# methods, versions, request targets

@pytest.mark.parametrize("line", [
    b"GE(T / HTTP/1.1", b"GET  / HTTP/1.1", b"GET\t/\tHTTP/1.1",
    b" GET / HTTP/1.1", b"GET / HTTP/1.1 ", b"/ HTTP/1.1",
    b"GET/ HTTP/1.1", b"G@T / HTTP/1.1",
], ids=["paren-in-method", "two-spaces", "tabs", "leading-space",
        "trailing-space", "no-method", "no-space", "at-in-method"])
def test_invalid_request_line(env, line):
    rejected(env, line + b"\r\n" + H + b"\r\n")


@pytest.mark.parametrize("version,status", [
    (b"HTTP/1.2", 505), (b"HTTP/2.0", 505), (b"HTTP/3.0", 505),
    (b"HTTP/0.9", 505), (b"http/1.1", 400), (b"HTTP/1.10", 400),
    (b"HTTP/01.1", 400), (b"HTTP/1", 400), (b"HTTP/1.1x", 400),
    (b"HTTPS/1.1", 400), (b"HTTP/1.a", 400),
], ids=["1.2", "2.0", "3.0", "0.9", "lower", "1.10", "01.1", "no-minor",
        "suffix", "https", "letter"])
def test_invalid_version(env, version, status):
    rejected(env, b"GET / " + version + b"\r\n" + H + b"\r\n", status)


def test_http09_request(env):
    rejected(env, b"GET /\r\n\r\n")


@pytest.mark.parametrize("target", [
    b"/a#frag", b"a/b", b"/../etc/passwd", b"/a/../../b", b"/%2e%2e/x",
    b"/%2E%2e%2fx/../../y", b"/a%00b", b"/a%zz", b"/a%", b"/a\xffb",
    b"http://u@localhost/", b"http://localhost:99999/", b"ftp://localhost/",
    b"http:///x", b"http://local host/", b"http://[::1/x", b"//evil/x",
], ids=["fragment", "relative", "dotdot-root", "dotdot-deep", "encoded-dots",
        "mixed-dots", "encoded-nul", "bad-escape", "truncated-escape",
        "high-byte", "userinfo", "port-range", "scheme", "empty-authority",
        "space-host", "bad-ipv6", "network-path"])
def test_invalid_target(env, target):
    st, out, closed = exchange(env, b"GET " + target + b" HTTP/1.1\r\n" + H
                               + b"Connection: close\r\n\r\n")
    # "//evil/x" is a path in origin-form: merge_slashes makes it "/evil/x";
    # nothing of it may become an authority upstream
    if target == b"//evil/x":
        (r,) = env.up.assert_canonical(count=1)
        assert r.target in ("//evil/x", "/evil/x")
        assert r.header("Host") == env.up.addr
        return
    assert st == [400], out
    assert closed
    env.up.assert_canonical(count=0)


def test_absolute_form_is_forwarded_in_origin_form(env):
    """The target's authority wins over Host (RFC 9112 3.2.2); the upstream
    gets an origin-form line and never the client's Host."""
    (r,) = accepted(env, b"GET http://localhost/abs?q=1 HTTP/1.1\r\n"
                         b"Host: evil.example\r\nConnection: close\r\n\r\n")
    assert r.target == "/abs?q=1"
    assert r.header("X-Host") == "localhost"
    assert r.header_all("Host") == [env.up.addr]
    assert b"evil.example" not in r.raw_head


def test_absolute_form_without_host_header(env):
    (r,) = accepted(env, b"GET http://localhost HTTP/1.1\r\n"
                         b"Connection: close\r\n\r\n")
    assert r.target == "/"


@pytest.mark.parametrize("line", [
    b"GET localhost:80 HTTP/1.1", b"POST localhost:80 HTTP/1.1",
    b"OPTIONS localhost:80 HTTP/1.1",
], ids=["get", "post", "options"])
def test_authority_form_outside_connect(env, line):
    rejected(env, line + b"\r\n" + H + b"\r\n")


@pytest.mark.parametrize("line,status", [
    (b"CONNECT localhost:443 HTTP/1.1", (400, 403, 404, 405, 501)),
    (b"CONNECT 127.0.0.1:22 HTTP/1.1", (400, 403, 404, 405, 501)),
    (b"CONNECT / HTTP/1.1", 400),
    (b"CONNECT localhost HTTP/1.1", 400),
    (b"CONNECT u@localhost:443 HTTP/1.1", 400),
    (b"CONNECT http://localhost:443/ HTTP/1.1", 400),
], ids=["to-proxy-location", "to-ssh", "origin-form", "no-port", "userinfo",
        "absolute"])
def test_connect_is_never_tunnelled(env, line, status):
    """gatehouse is not a forward proxy: CONNECT never reaches a location
    that proxies, whatever its target."""
    rejected(env, line + b"\r\n" + H + b"\r\n" + SMUGGLED, status)


@pytest.mark.parametrize("line", [b"GET * HTTP/1.1", b"POST * HTTP/1.1"],
                         ids=["get", "post"])
def test_asterisk_form_outside_options(env, line):
    rejected(env, line + b"\r\n" + H + b"\r\n")


def test_many_empty_lines_before_request(env):
    rejected(env, b"\r\n" * 20 + b"GET / HTTP/1.1\r\n" + H + b"\r\n")


def test_unknown_expectation(env):
    rejected(env, post(b"Content-Length: 5\r\nExpect: 200-ok\r\n", b"hello"),
             417)


# --------------------------------------------------------------------------
# Host

def test_missing_host_http11(env):
    rejected(env, b"GET / HTTP/1.1\r\n\r\n")


def test_missing_host_http10_is_fine(env):
    (r,) = accepted(env, b"GET /ten HTTP/1.0\r\n\r\n")
    assert r.header_all("Host") == [env.up.addr]


@pytest.mark.parametrize("hosts", [
    [b"localhost", b"localhost"], [b"localhost", b"evil"],
    [b"localhost", b""],
], ids=["same", "different", "second-empty"])
def test_several_host_headers(env, hosts):
    rejected(env, b"GET / HTTP/1.1\r\n"
             + b"".join(b"Host: " + h + b"\r\n" for h in hosts) + b"\r\n")


def test_several_host_headers_case(env):
    rejected(env, b"GET / HTTP/1.1\r\nHost: localhost\r\nhOST: evil\r\n\r\n")


@pytest.mark.parametrize("host", [
    b"a b", b"a/b", b"a\\b", b"local@host", b"localhost:80:80", b"[::1",
    b"..", b"a..b", b"x:abc",
], ids=["space", "slash", "backslash", "at", "two-ports", "open-bracket",
        "dots", "empty-label", "port-letters"])
def test_invalid_host(env, host):
    rejected(env, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")


# --------------------------------------------------------------------------
# CR/LF injection through variables into the upstream request

def test_arg_with_encoded_crlf_into_header(env):
    (r,) = accepted(env, b"GET /inject/?x=a%0d%0aX-Evil:%201%0d%0a%0d%0a"
                         b"GET%20/smuggled%20HTTP/1.1 HTTP/1.1\r\n" + H
                         + b"Connection: close\r\n\r\n")
    assert r.header("X-Evil") is None
    assert r.header("X-Arg").startswith("a%0d%0aX-Evil")


def test_decoded_uri_with_crlf_into_header(env):
    """$uri is decoded: CR and LF would split the header; they become
    spaces."""
    (r,) = accepted(env, b"GET /inject/a%0d%0aX-Evil:%201%0d%0a%0d%0a"
                         b"GET%20/smuggled HTTP/1.1\r\n" + H
                         + b"Connection: close\r\n\r\n")
    assert r.header("X-Evil") is None
    assert "\r" not in r.header("X-Uri") and "\n" not in r.header("X-Uri")


def test_cookie_variable_cannot_inject(env):
    # a cookie value is a header value: CR/LF cannot even arrive
    rejected(env, b"GET /inject/ HTTP/1.1\r\n" + H
             + b"Cookie: c=a\rX-Evil: 1\r\n\r\n")


def test_decoded_uri_with_crlf_into_request_line(env):
    """proxy_pass with variables: the evaluated URI goes into the request
    line; decoded CR/LF/SP there would split it."""
    (r,) = accepted(env, b"GET /var/a%0d%0aX-Evil:%201%0d%0a%0d%0a"
                         b"GET%20/smuggled%20HTTP/1.1 HTTP/1.1\r\n" + H
                         + b"Connection: close\r\n\r\n")
    assert r.header("X-Evil") is None
    assert r.target.startswith("/var/a")


def test_rewrite_capture_with_crlf_into_args(env):
    (r,) = accepted(env, b"GET /rw/a%0d%0aX-Evil:%201%20HTTP/1.1 HTTP/1.1\r\n"
                         + H + b"Connection: close\r\n\r\n")
    assert r.header("X-Evil") is None
    assert r.target.startswith("/rewritten?a=")


def test_proxy_method_from_variable_cannot_inject(env):
    st, out, closed = exchange(env, b"GET /method/?m=GET%20/x%20HTTP/1.1%0d"
                               b"%0aX-Evil:%201%0d%0a HTTP/1.1\r\n" + H
                               + b"Connection: close\r\n\r\n")
    assert st and st[0] in (200, 400, 500), out
    for r in env.up.assert_canonical():
        assert r.header("X-Evil") is None


@pytest.mark.parametrize("path", [b"/redir/", b"/addh/"],
                         ids=["return-location", "add-header"])
def test_response_splitting_through_uri(env, path):
    """$uri is decoded: in a response header (a `return` Location,
    add_header) its CR/LF must not start a header or a response of their
    own."""
    st, out, closed = exchange(env, b"GET " + path + b"a%0d%0aSet-Cookie:%20"
                               b"evil=1%0d%0a%0d%0aHTTP/1.1%20200%20OK HTTP/1.1"
                               b"\r\n" + H + b"Connection: close\r\n\r\n")
    head = out.split(b"\r\n\r\n", 1)[0]
    assert len(st) == 1 and st[0] in (200, 302), out
    for line in head.split(b"\r\n")[1:]:
        assert not line.lower().startswith(b"set-cookie"), head
        assert not line.startswith(b"HTTP/"), head
    env.up.assert_canonical(count=0)


# --------------------------------------------------------------------------
# pipelining, lying Content-Length, smuggling attempts

def test_body_containing_a_request_stays_body(env):
    """CL covers a whole request: it is body, not a second request."""
    body = b"x=1" + SMUGGLED
    (r,) = accepted(env, post(b"Content-Length: %d\r\n" % len(body), body))
    assert r.body == body


def test_pipelined_request_after_body(env):
    """CL 5 then a second request: two requests on both sides, each with
    its own canonical framing."""
    data = (b"POST /one HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello"
            + b"GET /two HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    reqs = accepted(env, data, count=2)
    assert [r.target for r in reqs] == ["/one", "/two"]
    assert reqs[0].body == b"hello" and reqs[1].body == b""
    assert reqs[1].header("Content-Length") is None


def test_pipelined_request_after_chunked_body(env):
    data = (b"POST /one HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
            b"\r\n5\r\nhello\r\n0\r\n\r\n"
            + b"GET /two HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    reqs = accepted(env, data, count=2)
    assert [r.target for r in reqs] == ["/one", "/two"]
    assert reqs[0].body == b"hello"


def test_lying_content_length_shorter_then_garbage(env):
    """The client's CL is shorter than what it sends: the rest is a second
    'request' that is garbage and refused; only the first went up."""
    data = post(b"Content-Length: 2\r\n", b"hello world")
    st, out, closed = exchange(env, data)
    assert st in ([200], [200, 400]), out
    assert closed
    (r,) = env.up.assert_canonical(count=1)
    assert r.body == b"he"


def test_lying_content_length_longer_then_close(env):
    """CL promises more than comes: nothing is forwarded (the body is
    buffered) and the connection is closed."""
    st, out, closed = exchange(env, post(b"Content-Length: 100\r\n",
                                         b"hello" + SMUGGLED), timeout=4)
    assert st in ([], [400], [408]), out
    assert closed
    env.up.assert_canonical(count=0)


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_discarded_body_is_not_parsed_as_requests(env, framing):
    """A body that gatehouse answers without reading (return 200) is
    discarded by its framing; a request inside it is never processed."""
    body = SMUGGLED * 3
    if framing == "length":
        hdr, wire = b"Content-Length: %d\r\n" % len(body), body
    else:
        hdr = b"Transfer-Encoding: chunked\r\n"
        wire = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    data = (b"POST /local HTTP/1.1\r\n" + H + hdr + b"\r\n" + wire
            + b"GET /after HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    reqs = accepted(env, data, count=1, responses=2)
    assert reqs[0].target == "/after"


def test_many_pipelined_requests(env):
    """200 requests in one write: 200 answers, in order, nothing lost or
    merged, and each went upstream alone."""
    data = b"".join(b"GET /p%d HTTP/1.1\r\n" % i + H + b"\r\n"
                    for i in range(199))
    data += b"GET /p199 HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"
    reqs = accepted(env, data, count=200, timeout=10)
    assert [r.target for r in reqs] == ["/p%d" % i for i in range(200)]


def test_get_with_body(env):
    (r,) = accepted(env, b"GET /g HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n"
                         b"Connection: close\r\n\r\nhello")
    assert r.body == b"hello" and r.header("Content-Length") == "5"


def test_connection_header_cannot_strip_framing(env):
    """Connection may name hop-by-hop headers; naming Content-Length or
    Host must not change the framing gatehouse sends."""
    (r,) = accepted(env, post(b"Content-Length: 5\r\n"
                              b"Connection: close, content-length, host\r\n",
                              b"hello"))
    assert r.body == b"hello" and r.header("Content-Length") == "5"
    assert len(r.header_all("Host")) == 1


def test_upgrade_h2c_is_not_forwarded(env):
    """h2c smuggling: an Upgrade the location does not ask for never goes
    upstream, so no tunnel opens past the proxy's checks."""
    (r,) = accepted(env, b"GET / HTTP/1.1\r\n" + H + b"Upgrade: h2c\r\n"
                         b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
                         b"Connection: Upgrade, HTTP2-Settings, close\r\n\r\n")
    assert r.header("Upgrade") is None
    assert r.header("HTTP2-Settings") is None
    assert r.header("Connection") == "close"


def test_keepalive_then_smuggle_attempt(env):
    """A good request then CL+TE on the same connection: the first is
    answered, the second refused, the upstream saw the first only."""
    data = (b"GET /first HTTP/1.1\r\n" + H + b"\r\n"
            + b"POST /second HTTP/1.1\r\n" + H + b"Content-Length: 6\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED)
    st, out, closed = exchange(env, data)
    assert st == [200, 400], out
    assert closed
    (r,) = env.up.assert_canonical(count=1)
    assert r.target == "/first"


def test_streamed_body_cut_by_bad_chunk(env):
    """proxy_request_buffering off: the upstream has the head and some body
    already when a bad chunk arrives; it must never see a complete
    request (its connection is cut), and the client gets 400 or a close."""
    data = (b"POST /stream/x HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked"
            b"\r\n\r\n5\r\nhello\r\n")
    st, out, closed = exchange(env, None, pieces=[data, b"zz\r\n" + SMUGGLED],
                               pause=0.3)
    assert st in ([], [400], [502]), out
    assert closed
    env.up.settle()
    assert env.up.requests == []
    for c in env.up.conns:
        assert b"smuggled" not in c.raw


def test_streamed_chunked_body_is_reencoded(env):
    """Streaming keeps chunked framing to an HTTP/1.1 upstream, but it is
    gatehouse's own: no extensions, no trailers."""
    data = (b"POST /stream/y HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked"
            b"\r\nConnection: close\r\n\r\n5;ext=1\r\nhello\r\n"
            b"0\r\nX-Trailer: t\r\n\r\n")
    st, out, closed = exchange(env, data)
    assert st == [200], out
    (r,) = env.up.assert_canonical(count=1, allow_chunked=True)
    assert r.body == b"hello"
    raw = env.up.conns[0].raw
    assert b"ext=1" not in raw and b"X-Trailer" not in raw


# --------------------------------------------------------------------------
# limits

def test_request_line_too_long(env):
    rejected(env, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n" + H + b"\r\n",
             414)


def test_request_line_too_long_before_it_ends(env):
    """No line end in sight: refused as soon as the limit is passed."""
    rejected(env, b"GET /" + b"a" * 3000, 414)


def test_header_line_too_long(env):
    rejected(env, b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"v" * 2000
             + b"\r\n\r\n", 431)


def test_header_block_too_large(env):
    hdrs = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 900) for i in range(8))
    rejected(env, b"GET / HTTP/1.1\r\n" + H + hdrs + b"\r\n", 431)


def test_too_many_header_lines(env):
    hdrs = b"".join(b"X%d: 1\r\n" % i for i in range(101))
    rejected(env, b"GET / HTTP/1.1\r\n" + H + hdrs + b"\r\n", 431)


def test_body_too_large_content_length(env):
    rejected(env, post(b"Content-Length: 2000\r\n", b"x" * 2000), 413)


def test_body_too_large_chunked(env):
    body = b"".join(b"100\r\n" + b"x" * 256 + b"\r\n" for _ in range(6))
    rejected(env, post(b"Transfer-Encoding: chunked\r\n",
                       body + b"0\r\n\r\n"), 413)


def test_body_too_large_streamed(env):
    body = b"".join(b"100\r\n" + b"x" * 256 + b"\r\n" for _ in range(6))
    st, out, closed = exchange(env, post(b"Transfer-Encoding: chunked\r\n",
                                         body + b"0\r\n\r\n",
                                         target=b"/stream/big"))
    assert st in ([413], []), out
    assert closed
    env.up.settle()
    assert env.up.requests == []


def test_slow_body_is_cut_at_client_body_timeout(env):
    """Head and part of the body, then silence: 408 after
    client_body_timeout (2 s here) and nothing forwarded."""
    t0 = time.monotonic()
    st, out, closed = exchange(env, post(b"Content-Length: 100\r\n", b"abc"),
                               timeout=5)
    assert closed and st in ([408], []), out
    assert 1.5 < time.monotonic() - t0 < 4.5
    env.up.assert_canonical(count=0)


def test_slow_header_is_cut_at_client_header_timeout(env):
    """A header that never ends is cut at client_header_timeout (3 s),
    however steadily it trickles."""
    s = socket.create_connection(("127.0.0.1", env.gh.port), timeout=5)
    t0 = time.monotonic()
    s.sendall(b"GET / HTTP/1.1\r\n" + H)
    closed = False
    try:
        for i in range(60):
            time.sleep(0.1)
            s.sendall(b"X-%d: 1\r\n" % i)
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    out, eof = read_all(s, 2)
    s.close()
    assert closed or eof
    assert time.monotonic() - t0 < 6.5
    assert statuses(out) in ([], [408]), out
    env.up.assert_canonical(count=0)


def test_slow_header_after_keepalive_is_cut_at_client_header_timeout(env):
    """The same on a kept-alive connection: once the next request starts,
    client_header_timeout applies, not what is left of keepalive_timeout
    (75 s by default)."""
    s = socket.create_connection(("127.0.0.1", env.gh.port), timeout=5)
    s.sendall(b"GET /local HTTP/1.1\r\n" + H + b"\r\n")
    first = b""
    while b"local" not in first:
        first += s.recv(65536)
    time.sleep(0.2)
    t0 = time.monotonic()
    s.sendall(b"GET / HTTP/1.1\r\n" + H)
    closed = False
    try:
        for i in range(60):
            time.sleep(0.1)
            s.sendall(b"X-%d: 1\r\n" % i)
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    out, eof = read_all(s, 2)
    s.close()
    assert closed or eof
    assert time.monotonic() - t0 < 6.5
    assert statuses(out) in ([], [408]), out
    env.up.assert_canonical(count=0)


# --------------------------------------------------------------------------
# many slow clients, a connection cap

def _slowloris(port, stop, conns):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return
    conns.append(s)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        while not stop.is_set():
            s.sendall(b"X-Slow: 1\r\n")
            stop.wait(0.3)
    except OSError:
        pass


def _slowbody(port, stop, conns):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return
    conns.append(s)
    try:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: localhost\r\n"
                  b"Content-Length: 100000\r\n\r\n")
        while not stop.is_set():
            s.sendall(b"x")
            stop.wait(0.3)
    except OSError:
        pass


def _fast(port, path="/local"):
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: localhost"
                  b"\r\nConnection: close\r\n\r\n")
        out, _ = read_all(s, 3)
    return statuses(out)


def test_slow_clients_do_not_stall_fast_ones(gatehouse):
    """50 slowloris and slow-body clients on one worker: a fast client
    keeps being answered quickly all along, and the slow ones are cut at
    client_header_timeout / by client_max_body_size."""
    up = RecordingUpstream().start()
    try:
        gh = gatehouse(f"""\
            server {{
                listen 127.0.0.1:{{port}};
                client_header_timeout 2s;
                client_body_timeout 2s;
                client_max_body_size 0;
                location / {{ proxy_pass http://{up.addr}; }}
                location /local {{ return 200 "fast"; }}
            }}
        """)
        worker = gh.wait_workers(1)
        stop = threading.Event()
        conns = []
        threads = [threading.Thread(target=_slowloris if i % 2 else _slowbody,
                                    args=(gh.port, stop, conns), daemon=True)
                   for i in range(50)]
        for t in threads:
            t.start()
        try:
            worst = 0.0
            n = 0
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                t0 = time.monotonic()
                assert _fast(gh.port) == [200]
                assert _fast(gh.port, "/proxied") == [200]
                worst = max(worst, time.monotonic() - t0)
                n += 1
            assert n >= 10 and worst < 1.0, (n, worst)
        finally:
            stop.set()
            for t in threads:
                t.join(3)
            for s in conns:
                s.close()
        # the slowloris half was cut at the header timeout
        assert "client timed out" in gh.error_log()
        assert gh.workers() == worker
        # the upstream got the fast requests only, all canonical
        reqs = up.assert_canonical()
        assert all(r.target == "/proxied" for r in reqs)
    finally:
        up.stop()


def _static_big(gatehouse, tmp_path, size):
    root = tmp_path / "www"
    root.mkdir()
    (root / "big.bin").write_bytes(b"z" * size)
    return gatehouse(f"""\
        server {{
            listen 127.0.0.1:{{port}};
            send_timeout 1s;
            location / {{ root {root}; }}
        }}
    """)


def _small_rcvbuf_conn(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n"
              b"Connection: close\r\n\r\n")
    return s


def test_stalled_reader_is_cut_at_send_timeout(gatehouse, tmp_path):
    """A client that stops reading a large response is dropped after
    send_timeout (1 s here); the worker goes on serving."""
    gh = _static_big(gatehouse, tmp_path, 32 << 20)
    s = _small_rcvbuf_conn(gh.port)
    time.sleep(1.8)
    got = 0
    try:
        while True:
            data = s.recv(1 << 20)
            if not data:
                break
            got += len(data)
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    assert got < 32 << 20
    assert "client timed out" in gh.error_log()
    assert gh.request("/big.bin", method="HEAD").status == 200


def test_slow_but_steady_reader_is_not_cut(gatehouse, tmp_path):
    """send_timeout is the time between two writes: a reader that keeps
    taking data gets the whole response even when it takes longer than
    send_timeout in all."""
    size = 6 << 20
    gh = _static_big(gatehouse, tmp_path, size)
    s = _small_rcvbuf_conn(gh.port)
    got = 0
    t0 = time.monotonic()
    while True:
        data = s.recv(65536)
        if not data:
            break
        got += len(data)
        time.sleep(0.01)
    s.close()
    assert got > size, f"cut after {got} bytes"
    assert time.monotonic() - t0 > 1.3, "too fast to tell"
    head = 400
    assert got > size and got < size + head, got


def _asan(pid):
    """The process runs with AddressSanitizer (linked in, or libasan)."""
    with open(f"/proc/{pid}/maps") as f:
        if "libasan" in f.read():
            return True
    with open(f"/proc/{pid}/exe", "rb") as f:
        return b"AddressSanitizer" in f.read()


def _rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_long_streamed_response_memory_is_bounded(gatehouse, upstream):
    """128 MiB of small chunks through the proxy: the worker's memory
    stays flat (buffers are reused, per-batch bookkeeping is freed), it
    does not grow with the length of the response."""
    from upstreams import Upstream      # noqa: F401  (fixture's class)

    def many_chunks(req, w):
        w.head(200, [], framing="chunked")
        block = b"y" * 1000
        for _ in range(128 * 1024 * 1024 // 1000):
            w.piece(block)
        w.end()

    up = upstream(many_chunks)
    gh = gatehouse(f"""\
        server {{
            listen 127.0.0.1:{{port}};
            location / {{ proxy_pass http://{up.addr}; }}
        }}
    """)
    (worker,) = gh.wait_workers(1)
    if _asan(worker):
        pytest.skip("RSS is not meaningful under ASan (quarantine)")
    base = _rss_kb(worker)
    peak = base
    got = 0
    with socket.create_connection(("127.0.0.1", gh.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while True:
            data = s.recv(1 << 20)
            if not data:
                break
            got += len(data)
            if got % (4 << 20) < len(data):
                peak = max(peak, _rss_kb(worker))
    assert got > 128 * 1024 * 1024
    assert peak - base < 8 * 1024, (base, peak)


def test_worker_connections_cap(gatehouse):
    """worker_connections 64 and 200 clients at once: connections past the
    cap are refused (closed), the worker does not crash, and service
    resumes as soon as the crowd is gone."""
    gh = gatehouse(conf="""\
        daemon off;
        master_process on;
        worker_processes 1;
        error_log logs/error.log info;
        pid logs/gatehouse.pid;
        events { worker_connections 64; }
        http {
            server {
                listen 127.0.0.1:{port};
                client_header_timeout 10s;
                location / { return 200 "ok"; }
            }
        }
    """)
    worker = gh.wait_workers(1)
    socks = []
    try:
        for _ in range(200):
            try:
                s = socket.create_connection(("127.0.0.1", gh.port),
                                             timeout=2)
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")   # unfinished
                socks.append(s)
            except OSError:
                pass
        time.sleep(0.5)
        # how many of them the server dropped: EOF/RST at once
        dropped = 0
        for s in socks:
            s.settimeout(0.01)
            try:
                if s.recv(1) == b"":
                    dropped += 1
            except socket.timeout:
                pass
            except OSError:
                dropped += 1
        assert dropped >= 200 - 64, dropped
        assert "worker_connections are not enough" in gh.error_log()
        assert gh.workers() == worker
    finally:
        for s in socks:
            s.close()
    # service resumes
    def ok():
        try:
            return _fast(gh.port, "/") == [200]
        except OSError:
            return False
    t0 = time.monotonic()
    while not ok():
        assert time.monotonic() - t0 < 3, "no service after the crowd left"
        time.sleep(0.05)
    for _ in range(20):
        assert _fast(gh.port, "/") == [200]
    assert gh.workers() == worker
