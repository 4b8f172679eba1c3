"""Real upstream servers for the proxy tests, and a streaming client.

Everything here runs in the pytest process as threads, on 127.0.0.1
ephemeral ports or on unix sockets in short-lived directories under /tmp.
Every socket has a timeout and every wait is bounded; stop() ends a server
within a couple of seconds whatever its handlers are doing.

Use the `upstream` fixture of conftest.py (it stops what it started):

    def test_x(gatehouse, upstream):
        up = upstream()                  # the echo server
        gh = gatehouse(simple_server(f'''
            location / {{ proxy_pass http://{up.addr}; }}
        '''))
        r = gh.get("/a?b=c")
        seen = json.loads(r.body)        # what the upstream received
        assert seen["line"] == "GET /a?b=c HTTP/1.0"
        assert up.requests[0].header("Connection") == "close"
        assert up.connections == 1       # accepted TCP connections

An upstream is an HTTP/1.1 server written on raw sockets: it parses the
request head itself (raw header names and values, in order), reads
Content-Length and chunked bodies (hashing them as they stream, keeping
the bytes only when small), keeps connections alive when the request
allows it, and calls a handler(req, w) that answers through a Writer.
Handlers for the usual cases:

    echo                   JSON description of the request (the default)
    respond(status, headers, body, framing)   a fixed answer
    pattern(n, framing)    n bytes of the deterministic pattern
    trickle(pieces, delay) pieces sent with delays (SSE, buffering off)
    hang                   reads the request, never answers (504)
    raw(data)              sends bytes as they are, then closes (garbage)
    switch(burst, delay)   101 Switching Protocols (after delay) with burst
                           in the same write, then echoes raw bytes
    close_now              closes without a byte (premature close)

framing is "length" (Content-Length), "chunked" or "close" (delimited by
closing the connection).  Special servers: ClosedPort (nothing listens:
connect() is refused) and WebSocketEcho (Debian's python3-websockets).

The pattern: byte p of a pattern body is p % 251, so bodies of any size
are generated and hashed in blocks without holding them (pattern_chunks,
pattern_sha256).  read_streamed()/exchange() read a response from
gatehouse the same way: body length, sha256 and arrival times, never the
whole body.

To check a test's expectations against nginx itself, point GATEHOUSE_BIN
at a script that runs `exec /usr/sbin/nginx -g 'user root;' "$@"`.
"""

import asyncio
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import tempfile
import threading
import time

UP_TIMEOUT = 10.0        # every blocking socket operation of an upstream
HANG_MAX = 30.0          # the longest a hanging handler holds a connection
KEEP_BODY = 1 << 20      # request bodies up to this size are kept as bytes
STOP_JOIN = 3.0          # per thread, at stop()

# --------------------------------------------------------------------------
# the deterministic body pattern

_BLOCK = bytes(range(251)) * 261          # 65511 bytes, a multiple of 251


def pattern_chunks(n, size=len(_BLOCK)):
    """Yield the n-byte pattern in pieces of at most `size` bytes."""
    if size % 251:
        raise ValueError("size must be a multiple of 251")
    block = _BLOCK if size == len(_BLOCK) else (_BLOCK * (size // 251 + 1))[:size]
    full, rest = divmod(n, size)
    for _ in range(full):
        yield block
    if rest:
        yield block[:rest]


def pattern_bytes(n):
    return b"".join(pattern_chunks(n))


@functools.lru_cache(maxsize=None)
def pattern_sha256(n):
    h = hashlib.sha256()
    for piece in pattern_chunks(n):
        h.update(piece)
    return h.hexdigest()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------
# the request as an upstream saw it

class UpRequest:
    def __init__(self):
        self.line = ""             # request line, e.g. "GET /x HTTP/1.0"
        self.method = ""
        self.target = ""           # request-target exactly as received
        self.version = ""
        self.headers = []          # [(raw name, raw value)] in order
        self.raw_head = b""
        self.body_len = 0
        self.body_sha256 = sha256(b"")
        self.body = b""            # None when larger than KEEP_BODY
        self.chunked = False       # the body came chunked
        self.trailers = []
        self.conn_id = 0           # 1-based, per server, accept order
        self.seq = 0               # 0-based, requests before it on the conn
        self.time = 0.0            # monotonic, head received
        self.dropped = False       # read and then dropped (drop_reused)
        self.peer = None

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def names(self):
        return [k for k, _ in self.headers]

    def as_dict(self):
        return {"line": self.line, "method": self.method,
                "target": self.target, "version": self.version,
                "headers": [[k, v] for k, v in self.headers],
                "body_len": self.body_len, "body_sha256": self.body_sha256,
                "chunked": self.chunked, "conn": self.conn_id,
                "seq": self.seq}

    def __repr__(self):
        return f"<UpRequest {self.line!r} {self.headers!r} len={self.body_len}>"


class Seen:
    """The echo's JSON, parsed (what the upstream received)."""

    def __init__(self, response):
        try:
            d = json.loads(response.body)
        except ValueError:
            raise AssertionError(f"not an echo response: {response!r}")
        self.__dict__.update(d)
        self.headers = [tuple(h) for h in d["headers"]]

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def names(self):
        return [k for k, _ in self.headers]

    def lower_names(self):
        return [k.lower() for k, _ in self.headers]

    def __repr__(self):
        return f"<Seen {self.line!r} {self.headers!r}>"


class _Closed(Exception):
    pass


class _Reader:
    """Buffered reads from an upstream's client connection."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def fill(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(262144)
        except (ConnectionResetError, BrokenPipeError, OSError) as e:
            if isinstance(e, socket.timeout):
                raise
            raise _Closed(str(e))
        finally:
            if timeout is not None:
                self.sock.settimeout(UP_TIMEOUT)
        if not data:
            raise _Closed("eof")
        self.buf += data

    def read_until(self, sep, limit=1 << 20, first_timeout=None):
        start = 0
        first = True
        while True:
            i = self.buf.find(sep, start)
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[:i + len(sep)]
                return out
            if len(self.buf) > limit:
                raise _Closed("head too long")
            start = max(0, len(self.buf) - len(sep) + 1)
            self.fill(first_timeout if first and not self.buf else None)
            first = False

    def read_into(self, n, sink):
        """Pass the next n bytes to sink(bytes), streaming."""
        if self.buf:
            take = min(n, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            n -= take
        while n > 0:
            try:
                data = self.sock.recv(min(n, 262144))
            except (ConnectionResetError, BrokenPipeError) as e:
                raise _Closed(str(e))
            if not data:
                raise _Closed("eof in body")
            sink(data)
            n -= len(data)


def _read_request(rd, first_timeout):
    head = rd.read_until(b"\r\n\r\n", first_timeout=first_timeout)
    req = UpRequest()
    req.time = time.monotonic()
    req.raw_head = head
    lines = head.split(b"\r\n")
    req.line = lines[0].decode("latin-1")
    parts = req.line.split(" ")
    if len(parts) == 3:
        req.method, req.target, req.version = parts
    for ln in lines[1:]:
        k, sep, v = ln.partition(b":")
        if not sep:
            raise _Closed(f"bad header line {ln!r}")
        req.headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))

    h = hashlib.sha256()
    kept = bytearray()

    def sink(data):
        h.update(data)
        req.body_len += len(data)
        if req.body_len <= KEEP_BODY:
            kept.extend(data)

    te = req.header("Transfer-Encoding")
    cl = req.header("Content-Length")
    if te is not None and "chunked" in te.lower():
        req.chunked = True
        while True:
            size = int(rd.read_until(b"\r\n").split(b";")[0].strip(), 16)
            if size == 0:
                while True:
                    t = rd.read_until(b"\r\n")
                    if t == b"":
                        break
                    k, _, v = t.partition(b":")
                    req.trailers.append((k.decode("latin-1"),
                                         v.strip().decode("latin-1")))
                break
            rd.read_into(size, sink)
            if rd.read_until(b"\r\n") != b"":
                raise _Closed("chunk not followed by CRLF")
    elif cl is not None:
        rd.read_into(int(cl), sink)
    req.body_sha256 = h.hexdigest()
    req.body = bytes(kept) if req.body_len <= KEEP_BODY else None
    return req


def _wants_keepalive(req):
    conn = (req.header("Connection") or "").lower()
    tokens = [t.strip() for t in conn.split(",")]
    if req.version == "HTTP/1.1":
        return "close" not in tokens
    return "keep-alive" in tokens


# --------------------------------------------------------------------------
# answering

class Writer:
    """How a handler answers.  After the handler returns, the connection
    stays open for the next request only if the request allowed it, the
    answer was framed (length/chunked) and close() was not called."""

    def __init__(self, server, sock, req):
        self.server = server
        self.sock = sock
        self.req = req
        self.keep = server.keepalive and _wants_keepalive(req)
        self.closed = False
        self.sent_times = []        # monotonic time of each send()
        self.reader = None          # the _Reader: bytes read past the head

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)
        self.sent_times.append(time.monotonic())

    def close(self):
        """Close the connection after the handler (no keep-alive)."""
        self.keep = False

    def reset(self):
        """Close at once with a RST."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
        self.sock.close()
        self.closed = True

    def head(self, status=200, headers=(), reason=None, version="HTTP/1.1",
             framing="length", length=None):
        """Send a status line and headers.  framing adds Content-Length
        (with length), Transfer-Encoding: chunked, or nothing (close)."""
        reason = _REASONS.get(status, "Other") if reason is None else reason
        lines = [f"{version} {status} {reason}"]
        names = {k.lower() for k, _ in headers}
        for k, v in headers:
            lines.append(f"{k}: {v}")
        if framing == "length" and "content-length" not in names:
            lines.append(f"Content-Length: {length or 0}")
        elif framing == "chunked" and "transfer-encoding" not in names:
            lines.append("Transfer-Encoding: chunked")
        if framing == "close" or not self.keep:
            self.keep = False
            if "connection" not in names and version == "HTTP/1.1":
                lines.append("Connection: close")
        self.framing = framing
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def piece(self, data):
        """One piece of the body in the framing chosen by head()."""
        if self.framing == "chunked":
            if data:
                self.send(b"%x\r\n" % len(data) + data + b"\r\n")
        else:
            self.send(data)

    def end(self, trailers=()):
        if self.framing == "chunked":
            t = "".join(f"{k}: {v}\r\n" for k, v in trailers)
            self.send(b"0\r\n" + t.encode("latin-1") + b"\r\n")

    def reply(self, status=200, headers=(), body=b"", framing="length",
              version="HTTP/1.1", length=None, reason=None):
        """A whole answer.  body: bytes/str, or an iterable of bytes (then
        give length= for framing "length")."""
        if isinstance(body, str):
            body = body.encode()
        if isinstance(body, (bytes, bytearray)):
            length = len(body) if length is None else length
            body = [bytes(body)]
        self.head(status, headers, reason, version, framing, length)
        if self.req.method == "HEAD" or status in (204, 304):
            return
        for p in body:
            self.piece(p)
        self.end()

    def hang(self, limit=HANG_MAX):
        """Never answer: hold the connection until the peer closes it, the
        server stops, or limit seconds pass."""
        self.keep = False
        deadline = time.monotonic() + limit
        self.sock.settimeout(0.1)
        while time.monotonic() < deadline and not self.server.stopping:
            try:
                if not self.sock.recv(65536):
                    return
            except socket.timeout:
                continue
            except OSError:
                return


_REASONS = {200: "OK", 101: "Switching Protocols", 201: "Created",
            204: "No Content", 206: "Partial Content",
            301: "Moved Permanently", 302: "Found", 304: "Not Modified",
            400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


def echo(req, w):
    """Answer with a JSON description of what was received.  A request
    may ask for a status or extra response headers: X-Echo-Status: 404,
    X-Echo-Header: Name: value (repeatable)."""
    status = int(req.header("X-Echo-Status") or 200)
    extra = [tuple(s.strip() for s in h.split(":", 1))
             for h in req.header_all("X-Echo-Header")]
    w.reply(status, [("Content-Type", "application/json")] + extra,
            json.dumps(req.as_dict()).encode())


def respond(status=200, headers=(), body=b"", framing="length",
            version="HTTP/1.1", reason=None):
    def handler(req, w):
        w.reply(status, list(headers), body, framing, version, reason=reason)
    return handler


def pattern(n, framing="length", headers=(), status=200):
    """n bytes of the pattern, streamed."""
    def handler(req, w):
        w.reply(status, list(headers), pattern_chunks(n), framing, length=n)
    return handler


def trickle(pieces, delay, framing="chunked", headers=(), status=200):
    """The head and the first piece at once, then each further piece after
    `delay` seconds.  w.sent_times of the last call: server.last_writer."""
    def handler(req, w):
        h = list(headers)
        total = sum(len(p) for p in pieces)
        w.head(status, h, framing=framing, length=total)
        for i, p in enumerate(pieces):
            if i:
                time.sleep(delay)
            w.piece(p)
        w.end()
    return handler


def hang(req, w):
    w.hang()


def raw(data, close=True):
    """Send raw bytes (garbage, a partial head...) and close."""
    def handler(req, w):
        w.send(data)
        if close:
            w.close()
    return handler


def switch(burst=b"", delay=0.0, echo_max=1 << 24, read_delay=0.0):
    """Answer an upgrade with 101 and `burst` in the same write (after
    `delay` seconds), then (after read_delay more) echo every byte that
    comes (those read with the head first) until EOF or echo_max bytes;
    .echoed of the function counts them."""
    def handler(req, w):
        time.sleep(delay)
        w.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\n\r\n" + burst)
        w.close()
        time.sleep(read_delay)
        data = bytes(w.reader.buf)
        w.reader.buf.clear()
        while handler.echoed < echo_max:
            if data:
                handler.echoed += len(data)
                w.send(data)
            try:
                data = w.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
    handler.echoed = 0
    return handler


def close_now(req, w):
    w.close()


def route(table, default=echo):
    """Pick a handler by the longest matching prefix of the target."""
    def handler(req, w):
        best = None
        for prefix, h in table.items():
            if req.target.startswith(prefix) and (
                    best is None or len(prefix) > len(best)):
                best = prefix
        (table[best] if best is not None else default)(req, w)
    return handler


# --------------------------------------------------------------------------
# the server

class Upstream:
    """An HTTP upstream on 127.0.0.1:0 (or a unix socket with unix=True).

    handler(req, w)  answers each request (default: echo)
    keepalive        honour keep-alive at all (False: close after each)
    idle_timeout     close a kept-alive connection idle this long (seconds)
    drop_reused      on a reused connection, read the request and close
                     without answering: the race a keep-alive pool meets
                     when the upstream closes an idle connection just as a
                     request is sent on it
    max_requests     close (with Connection: close) after this many answers
                     on one connection
    host, port       the TCP address to bind (default 127.0.0.1, any free
                     port); e.g. 127.0.0.2 for a second loopback address

    .connections     accepted connections so far
    .requests        every request read, in order (UpRequest; dropped ones
                     have .dropped = True)
    .addr            "127.0.0.1:PORT" or "unix:/path"
    """

    def __init__(self, handler=None, *, unix=False, keepalive=True,
                 idle_timeout=None, drop_reused=False, max_requests=None,
                 name="upstream", host="127.0.0.1", port=0):
        self.handler = handler or echo
        self.keepalive = keepalive
        self.idle_timeout = idle_timeout
        self.drop_reused = drop_reused
        self.max_requests = max_requests
        self.name = name
        self.connections = 0
        self.requests = []
        self.errors = []            # exceptions in handlers
        self.last_writer = None
        self.stopping = False
        self._lock = threading.Lock()
        self._socks = set()
        self._threads = []
        self._dir = None
        if unix:
            self._dir = tempfile.mkdtemp(prefix="ghup", dir="/tmp")
            self.path = os.path.join(self._dir, "up.sock")
            self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.lsock.bind(self.path)
            self.port = None
            self.addr = "unix:" + self.path
        else:
            self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.lsock.bind((host, port))
            self.port = self.lsock.getsockname()[1]
            self.path = None
            self.addr = f"{host}:{self.port}"
        self.lsock.listen(128)
        self.lsock.settimeout(0.05)
        self._acceptor = threading.Thread(target=self._accept_loop,
                                          name=f"{name}-accept", daemon=True)

    @property
    def url(self):
        return "http://" + self.addr

    def start(self):
        self._acceptor.start()
        return self

    def _accept_loop(self):
        while not self.stopping:
            try:
                s, peer = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                if self.stopping:
                    s.close()
                    return
                self.connections += 1
                cid = self.connections
                self._socks.add(s)
                t = threading.Thread(target=self._serve, args=(s, cid, peer),
                                     name=f"{self.name}-conn{cid}",
                                     daemon=True)
                self._threads.append(t)
            t.start()

    def _serve(self, s, cid, peer):
        s.settimeout(UP_TIMEOUT)
        if s.family != socket.AF_UNIX:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rd = _Reader(s)
        seq = 0
        try:
            while not self.stopping:
                first_timeout = self.idle_timeout if seq else None
                try:
                    req = _read_request(rd, first_timeout)
                except (socket.timeout, _Closed, ValueError, OSError):
                    return
                req.conn_id, req.seq, req.peer = cid, seq, peer
                if self.drop_reused and seq > 0:
                    req.dropped = True
                    with self._lock:
                        self.requests.append(req)
                    return
                with self._lock:
                    self.requests.append(req)
                w = Writer(self, s, req)
                w.reader = rd
                if self.max_requests and seq + 1 >= self.max_requests:
                    w.keep = False
                self.last_writer = w
                try:
                    self.handler(req, w)
                except (BrokenPipeError, ConnectionResetError):
                    return
                except OSError as e:
                    if not self.stopping and not w.closed:
                        self.errors.append(repr(e))
                    return
                except Exception as e:      # a bug in a test handler
                    self.errors.append(repr(e))
                    return
                if w.closed or not w.keep:
                    return
                seq += 1
        finally:
            with self._lock:
                self._socks.discard(s)
            try:
                s.close()
            except OSError:
                pass

    def wait_requests(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.requests) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {len(self.requests)} "
                                     f"requests, waited for {n}")
            time.sleep(0.01)
        return self.requests

    def served(self):
        """Requests that were answered (not dropped)."""
        return [r for r in self.requests if not r.dropped]

    def stop(self):
        self.stopping = True
        try:
            self.lsock.close()
        except OSError:
            pass
        with self._lock:
            socks = list(self._socks)
            threads = list(self._threads)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._acceptor.is_alive():
            self._acceptor.join(STOP_JOIN)
        for t in threads:
            t.join(STOP_JOIN)
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)


class ClosedPort:
    """A 127.0.0.1 port where nothing listens: connect() is refused.  The
    port is held by a bound, non-listening socket so that nothing else
    takes it during the test."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"

    def start(self):
        return self

    def stop(self):
        self.sock.close()


# --------------------------------------------------------------------------
# websockets

class WebSocketEcho:
    """Echo every message back (python3-websockets, asyncio in a thread).
    .handshakes: [(path, [(header, value), ...])] of each opening request.
    """

    def __init__(self, unix=False):
        import websockets          # noqa: F401  (fail early if missing)
        self.unix = unix
        self.handshakes = []
        self.messages = []
        self.connections = 0
        self.port = None
        self.path = None
        self._dir = None
        self._loop = None
        self._server = None
        self._ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="ws-echo",
                                        daemon=True)

    @property
    def addr(self):
        return f"unix:{self.path}" if self.unix else f"127.0.0.1:{self.port}"

    def start(self):
        self._thread.start()
        if not self._ready.wait(5.0):
            raise AssertionError("websocket echo server did not start")
        if self._error:
            raise self._error
        return self

    def _run(self):
        import websockets
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def process_request(path, headers):
            self.handshakes.append((path, list(headers.raw_items())))
            return None

        async def handler(ws, path=None):
            self.connections += 1
            try:
                async for msg in ws:
                    self.messages.append(msg)
                    await ws.send(msg)
            except websockets.ConnectionClosed:
                pass

        try:
            if self.unix:
                self._dir = tempfile.mkdtemp(prefix="ghws", dir="/tmp")
                self.path = os.path.join(self._dir, "ws.sock")
                coro = websockets.unix_serve(handler, self.path,
                                             process_request=process_request)
            else:
                coro = websockets.serve(handler, "127.0.0.1", 0,
                                        process_request=process_request)
            self._server = loop.run_until_complete(coro)
            if not self.unix:
                self.port = self._server.sockets[0].getsockname()[1]
        except Exception as e:           # reported by start()
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            try:
                loop.run_until_complete(
                    asyncio.wait_for(self._server.wait_closed(), 2.0))
            except Exception:
                pass
            loop.close()

    def stop(self):
        if self._loop and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(STOP_JOIN)
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)


def ws_roundtrip(url, messages, headers=None, timeout=5.0):
    """Open a websocket to url (through gatehouse), send each message and
    collect the echoes.  Returns (echoes, response_headers)."""
    import websockets

    async def run():
        async with websockets.connect(url, extra_headers=headers or {},
                                      open_timeout=timeout,
                                      close_timeout=timeout,
                                      max_size=None) as ws:
            got = []
            for m in messages:
                await ws.send(m)
                got.append(await asyncio.wait_for(ws.recv(), timeout))
            return got, list(ws.response_headers.raw_items())

    return asyncio.run(asyncio.wait_for(run(), timeout * 3))


def ws_frame(payload, opcode=1, mask=b"\x01\x02\x03\x04"):
    """One final client frame (masked)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload)
    if n < 126:
        hdr = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        hdr = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack("!H", n)
    else:
        hdr = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return hdr + mask + masked


def ws_read_frame(conn):
    """Read one unmasked server frame from a conftest Conn:
    (opcode, payload)."""
    h = conn._read_exact(2)
    opcode, n = h[0] & 0x0F, h[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", conn._read_exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", conn._read_exact(8))[0]
    if h[1] & 0x80:
        mask = conn._read_exact(4)
        data = conn._read_exact(n)
        return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return opcode, conn._read_exact(n)


# --------------------------------------------------------------------------
# client side: responses read as a stream (length, hash, arrival times)

class Streamed:
    def __init__(self):
        self.version = ""
        self.status = 0
        self.reason = ""
        self.headers = []
        self.raw_head = b""
        self.body_len = 0
        self.sha256 = None
        self.body = b""             # kept up to KEEP_BODY bytes
        self.pieces = []            # [(monotonic time, nbytes)] of body data
        self.chunk_sizes = []       # wire chunk sizes when chunked
        self.framing = ""           # "length" / "chunked" / "close"
        self.complete = False       # the framing said the body ended
        self.head_time = 0.0

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return (f"<Streamed {self.status} {self.headers!r} "
                f"len={self.body_len} {self.framing} "
                f"complete={self.complete}>")


def read_streamed(conn, method="GET", allow_truncated=False):
    """Read one response from a conftest Conn, hashing the body as it
    arrives instead of keeping it.  A body cut short by a close raises
    unless allow_truncated (then .complete is False)."""
    from conftest import ConnectionClosed

    r = Streamed()
    while True:
        head = conn._read_until(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        m = re.match(rb"(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise AssertionError(f"bad status line {lines[0]!r}")
        status = int(m.group(2))
        if 100 <= status < 200 and status != 101:
            continue
        break
    r.head_time = time.monotonic()
    r.raw_head = head
    r.version = m.group(1).decode()
    r.status = status
    r.reason = (m.group(3) or b"").decode("latin-1")
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        r.headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))

    h = hashlib.sha256()
    kept = bytearray()

    def sink(data):
        r.pieces.append((time.monotonic(), len(data)))
        h.update(data)
        r.body_len += len(data)
        if r.body_len <= KEEP_BODY:
            kept.extend(data)

    def take(n):
        if conn.buf:
            k = min(n, len(conn.buf))
            sink(conn.buf[:k])
            conn.buf = conn.buf[k:]
            n -= k
        while n > 0:
            try:
                data = conn.sock.recv(min(n, 1 << 20))
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                raise ConnectionClosed("closed in body")
            sink(data)
            n -= len(data)

    te = r.header("Transfer-Encoding")
    cl = r.header("Content-Length")
    try:
        if method == "HEAD" or status in (101, 204, 304):
            r.framing = "none"
        elif te is not None and "chunked" in te.lower():
            r.framing = "chunked"
            while True:
                size = int(conn._read_until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    while conn._read_until(b"\r\n") != b"":
                        pass
                    break
                r.chunk_sizes.append(size)
                take(size)
                if conn._read_exact(2) != b"\r\n":
                    raise AssertionError("chunk not followed by CRLF")
        elif cl is not None:
            r.framing = "length"
            take(int(cl))
        else:
            r.framing = "close"
            if conn.buf:
                sink(conn.buf)
                conn.buf = b""
            while True:
                try:
                    data = conn.sock.recv(1 << 20)
                except (ConnectionResetError, BrokenPipeError):
                    raise ConnectionClosed("reset in close-delimited body")
                if not data:
                    break
                sink(data)
        r.complete = True
    except ConnectionClosed:
        if not allow_truncated:
            raise
    r.sha256 = h.hexdigest()
    r.body = bytes(kept) if r.body_len <= KEEP_BODY else None
    return r


def send_body(conn, head, body_iter, chunked=False):
    """Send a request head, then the body pieces (chunk-encoded if
    chunked) without building the whole body."""
    conn.send(head)
    for piece in body_iter:
        if chunked:
            if piece:
                conn.sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        else:
            conn.sock.sendall(piece)
    if chunked:
        conn.sock.sendall(b"0\r\n\r\n")
