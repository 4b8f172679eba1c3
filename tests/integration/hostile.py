"""Helpers for the hardening suites (test_attacks.py,
test_faulty_upstreams.py): an upstream that records every byte it is sent,
and small raw-socket client tools.

RecordingUpstream is deliberately strict where upstreams.Upstream is
lenient: it keeps the exact bytes of each accepted connection, parses them
as an HTTP/1.1 server that believes whatever framing it is given, and
remembers anything that does not parse or is left over after the last
request.  That is what a smuggling test needs: if gatehouse ever forwarded
a second request it did not itself see as one, it shows up here as an
extra request or as leftover bytes.

    up = RecordingUpstream().start()
    ...
    up.assert_canonical(count=1)     # one clean request, nothing more

Everything is bounded: socket timeouts, a short drain after the answer,
and stop() joins every thread with a timeout.
"""

import re
import socket
import threading
import time

REQ_LINE_RE = re.compile(rb"^([A-Z][A-Z0-9_-]*) (/[\x21-\x7e]*|\*) "
                         rb"HTTP/1\.[01]$")
FIELD_RE = re.compile(rb"^([!#$%&'*+.^_`|~0-9A-Za-z-]+): "
                      rb"([\x21-\x7e\x80-\xff](?:[\x20-\x7e\x80-\xff\t]*"
                      rb"[\x21-\x7e\x80-\xff])?)?$")
DRAIN = 0.3          # seconds to wait for stray bytes after an answer
TIMEOUT = 5.0


class RecRequest:
    def __init__(self, head, body, chunked):
        self.raw_head = head
        lines = head.split(b"\r\n")
        self.line = lines[0]
        self.fields = lines[1:]
        self.headers = []
        for ln in self.fields:
            k, _, v = ln.partition(b":")
            self.headers.append((k.decode("latin-1"),
                                 v.strip().decode("latin-1")))
        self.body = body
        self.chunked = chunked

    @property
    def target(self):
        parts = self.line.split(b" ")
        return parts[1].decode("latin-1") if len(parts) == 3 else ""

    def header(self, name, default=None):
        vals = self.header_all(name)
        return vals[0] if vals else default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return f"<RecRequest {self.raw_head!r} body={self.body[:80]!r}>"


class RecConn:
    def __init__(self):
        self.raw = b""           # every byte received on the connection
        self.requests = []
        self.leftover = b""      # bytes that did not make a request
        self.error = None        # what did not parse


class RecordingUpstream:
    """Answers each request with 200 and a small body naming the request
    number; keep-alive when the request allows it (HTTP/1.1 without
    Connection: close)."""

    def __init__(self, reply=b"upstream-ok"):
        self.reply = reply
        self.conns = []
        self.lock = threading.Lock()
        self.stopping = False
        self.threads = []
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(256)
        self.lsock.settimeout(0.05)
        self.port = self.lsock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.acceptor = threading.Thread(target=self._accept, daemon=True)

    def start(self):
        self.acceptor.start()
        return self

    def _accept(self):
        while not self.stopping:
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            rc = RecConn()
            with self.lock:
                self.conns.append(rc)
            t = threading.Thread(target=self._serve, args=(s, rc),
                                 daemon=True)
            t.start()
            with self.lock:
                self.threads.append(t)

    # -- a strict little server
    def _recv(self, s, rc, buf):
        data = s.recv(65536)
        if not data:
            raise EOFError
        rc.raw += data
        return buf + data

    def _until(self, s, rc, buf, sep):
        while sep not in buf:
            if len(buf) > 1 << 20:
                raise ValueError("head too long")
            buf = self._recv(s, rc, buf)
        i = buf.index(sep)
        return buf[:i], buf[i + len(sep):]

    def _exact(self, s, rc, buf, n):
        while len(buf) < n:
            buf = self._recv(s, rc, buf)
        return buf[:n], buf[n:]

    def _read_one(self, s, rc, buf):
        head, buf = self._until(s, rc, buf, b"\r\n\r\n")
        req = RecRequest(head, b"", False)
        te = req.header_all("Transfer-Encoding")
        cl = req.header_all("Content-Length")
        body = b""
        if te:
            req.chunked = True
            while True:
                line, buf = self._until(s, rc, buf, b"\r\n")
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while True:
                        t, buf = self._until(s, rc, buf, b"\r\n")
                        if t == b"":
                            break
                    break
                data, buf = self._exact(s, rc, buf, size + 2)
                if data[-2:] != b"\r\n":
                    raise ValueError("chunk without CRLF")
                body += data[:-2]
        elif cl:
            body, buf = self._exact(s, rc, buf, int(cl[0]))
        req.body = body
        return req, buf

    def _serve(self, s, rc):
        s.settimeout(TIMEOUT)
        buf = b""
        try:
            while not self.stopping:
                try:
                    req, buf = self._read_one(s, rc, buf)
                except EOFError:
                    rc.leftover = buf
                    return
                with self.lock:
                    rc.requests.append(req)
                n = sum(len(c.requests) for c in self.conns)
                keep = req.line.endswith(b"HTTP/1.1") and "close" not in \
                    (req.header("Connection") or "").lower()
                body = self.reply + b" %d" % n
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n"
                          % (len(body), b"" if keep else
                             b"Connection: close\r\n") + body)
                if not keep:
                    # what follows the answer would be a smuggled request
                    s.settimeout(DRAIN)
                    try:
                        while True:
                            buf = self._recv(s, rc, buf)
                    except (EOFError, socket.timeout, OSError):
                        pass
                    rc.leftover = buf
                    return
        except socket.timeout:
            rc.leftover = buf
            rc.error = rc.error or "timeout"
        except (ValueError, IndexError) as e:
            rc.leftover = buf
            rc.error = repr(e)
        except OSError as e:
            rc.leftover = buf
            rc.error = rc.error or repr(e)
        finally:
            try:
                s.close()
            except OSError:
                pass

    # -- what tests look at
    @property
    def requests(self):
        with self.lock:
            return [r for c in self.conns for r in c.requests]

    def wait_requests(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.requests) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"upstream got {len(self.requests)} "
                                     f"requests, waited for {n}")
            time.sleep(0.01)
        return self.requests

    def settle(self, timeout=DRAIN + 0.5):
        """Wait until every connection's thread ended (or timeout)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            threads = list(self.threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def assert_canonical(self, count=None, allow_chunked=False):
        """Every byte gatehouse sent parsed into requests with canonical
        framing: origin-form line, CRLF, one Host, Content-Length (no
        Transfer-Encoding unless allow_chunked) and no leftover bytes.
        count: the exact number of requests expected.  Returns them."""
        self.settle()
        with self.lock:
            conns = list(self.conns)
        reqs = []
        for c in conns:
            assert c.error is None or c.error == "timeout", \
                f"upstream could not parse what it got: {c.error}: {c.raw!r}"
            assert c.leftover == b"", \
                f"stray bytes upstream after the request(s): {c.leftover!r}"
            for r in c.requests:
                assert REQ_LINE_RE.match(r.line), f"request line {r.line!r}"
                for f in r.fields:
                    assert FIELD_RE.match(f), f"header line {f!r}"
                    assert b"\r" not in f and b"\n" not in f and \
                        b"\0" not in f
                assert len(r.header_all("Host")) == 1, r
                te = r.header_all("Transfer-Encoding")
                cl = r.header_all("Content-Length")
                if te:
                    assert allow_chunked and te == ["chunked"] and not cl, r
                else:
                    assert len(cl) <= 1, r
                    if r.body:
                        assert cl == [str(len(r.body))], r
                reqs.append(r)
        if count is not None:
            assert len(reqs) == count, \
                f"upstream got {len(reqs)} requests, expected {count}: {reqs}"
        return reqs

    def stop(self):
        self.stopping = True
        try:
            self.lsock.close()
        except OSError:
            pass
        self.acceptor.join(2.0)
        with self.lock:
            threads = list(self.threads)
        for t in threads:
            t.join(2.0)


# --------------------------------------------------------------------------
# client side

def read_all(sock, timeout=3.0, limit=1 << 20):
    """Everything the server sends until it closes (or timeout).  Returns
    (bytes, closed): closed is True on EOF/RST, False on timeout."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    out = b""
    while len(out) < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            return out, False
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return out, False
        except (ConnectionResetError, BrokenPipeError):
            return out, True
        if not data:
            return out, True
        out += data
    return out, False


def statuses(data):
    """Status codes of the responses in a byte stream, in order; parsing
    stops at anything that is not a response head."""
    out = []
    while data:
        i = data.find(b"\r\n\r\n")
        if i < 0:
            break
        head, data = data[:i], data[i + 4:]
        m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
        if not m:
            break
        out.append(int(m.group(1)))
        m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        if re.search(rb"\r\ntransfer-encoding: *chunked", head, re.I):
            while True:
                j = data.find(b"\r\n")
                if j < 0:
                    return out
                n = int(data[:j].split(b";")[0], 16)
                data = data[j + 2 + n + 2:] if n else data[j + 2:]
                if n == 0:
                    k = data.find(b"\r\n\r\n") if not \
                        data.startswith(b"\r\n") else -2
                    data = data[k + 4:] if k >= 0 else data[2:]
                    break
        elif m:
            data = data[int(m.group(1)):]
        elif 100 <= out[-1] < 200 or out[-1] in (204, 304):
            pass
        else:
            break
    return out
