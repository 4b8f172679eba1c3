"""Integration tests for gatehouse: the real binary over loopback.

Run the whole suite (Debian's interpreter, which has python3-pytest):

    make                     # builds build/gatehouse
    GATEHOUSE_BIN=$PWD/build/gatehouse /usr/bin/python3 -m pytest -q tests/integration

Run one file, one test, or every test whose name matches a word:

    GATEHOUSE_BIN=$PWD/build/gatehouse /usr/bin/python3 -m pytest -q \\
        tests/integration/test_locations.py::test_nginx_documentation_example
    GATEHOUSE_BIN=... /usr/bin/python3 -m pytest -q tests/integration -k reload

Without GATEHOUSE_BIN the suite uses build/gatehouse of this checkout.
Under AddressSanitizer: `make SANITIZE=1` then
GATEHOUSE_BIN=$PWD/build-asan/gatehouse; teardown fails a test whose
server printed a sanitizer report or whose worker died on SIGSEGV/SIGABRT.
The binary is read once per test: do not relink it during a run (copy it
elsewhere first if others are building).
Add `-x -vv` to stop at the first failure and see each test's name; each
test's prefix directory (conf/, logs/, stdout, stderr) is kept under
pytest's tmp_path (printed on failure) for a post-mortem.

How a test looks:

    def test_x(gatehouse):
        gh = gatehouse('''
            server {
                listen 127.0.0.1:{port};
                location / { return 200 "hello"; }
            }
        ''')
        r = gh.get("/")
        assert r.status == 200 and r.body == b"hello"

`gatehouse(http_text)` writes PREFIX/conf/gatehouse.conf = a small main part
(daemon off, master_process on, worker_processes 1, error_log, pid, events)
+ `http { http_text }`, substitutes {port} {port2} {port3} (free ephemeral
ports on 127.0.0.1) and {prefix} {conf_dir}, starts `gatehouse -p PREFIX -c
CONF`, and waits (bounded) until the pid file exists and the ports accept.
Pass `conf=` for a whole config instead, `files={"sites-enabled/app": text}`
for extra files under conf/, `start=False` to only write the files (for
`-t` and config-error tests).  Teardown sends QUIT, then KILL after a bound,
and fails the test if the server did not stop gracefully or crashed.

Everything runs on 127.0.0.1 with ephemeral ports; every socket has a
timeout and every wait is bounded, so a broken server fails a test, never
hangs the suite.
"""

import os
import re
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("GATEHOUSE_BIN", str(REPO / "build" / "gatehouse"))

START_TIMEOUT = 10.0   # pid file + listening ports
STOP_TIMEOUT = 5.0     # after QUIT, before KILL
SOCK_TIMEOUT = 5.0     # default for every client socket
CMD_TIMEOUT = 10.0     # gatehouse -t / -T / -s ...

MAIN_TEMPLATE = """\
daemon off;
master_process on;
{workers}error_log logs/error.log info;
pid logs/gatehouse.pid;

events {{
    worker_connections 1024;
}}

"""

# crash signatures that must never show up in the error log or on stderr
CRASH_RE = re.compile(
    r"AddressSanitizer|LeakSanitizer|runtime error:|core dumped|"
    r"exited on signal (?:4|6|7|8|11)\b|signal (?:SIGSEGV|SIGABRT|SIGBUS)")


# --------------------------------------------------------------------------
# small utilities

_handed_out = []


def free_port():
    """A port that was free on 127.0.0.1 a moment ago, and not one this
    test process handed out recently: the kernel may give the same port
    to two bind(0) calls in a row once the first socket is closed, and two
    servers of one config on one port would silently share it (the first
    becomes the default server), so a test would talk to the wrong one."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.append(port)
            del _handed_out[:-4096]
            return port


def asan_binary():
    """The gatehouse under test is built with AddressSanitizer (its
    allocator keeps freed memory and maps on its own)."""
    with open(BIN, "rb") as f:
        return b"__asan_init" in f.read()


def wait_until(pred, timeout, interval=0.02, what="condition"):
    """Poll pred() until it returns a true value; return it.  Bounded."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    # field 3 (after the parenthesised comm) is the state; Z = zombie
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def children_of(pid):
    """Live child pids of pid (the master's workers)."""
    kids = set()
    found_proc_children = False
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    found_proc_children = True
                    kids.update(int(x) for x in f.read().split())
            except OSError:
                pass
    except OSError:
        return []
    if not found_proc_children:
        # kernel without CONFIG_PROC_CHILDREN: scan /proc/*/stat for ppid
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    rest = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(rest[1]) == pid:
                kids.add(int(d))
    return sorted(k for k in kids if pid_alive(k))


def is_gatehouse_pid(pid):
    """Guard before signalling a pid we did not Popen ourselves."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
    except OSError:
        return False
    return b"gatehouse" in cmd


# --------------------------------------------------------------------------
# HTTP client over raw sockets

class Response:
    def __init__(self, version, status, reason, headers, body, raw_head,
                 interim=()):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value), in order
        self.body = body                # bytes
        self.raw_head = raw_head        # bytes, status line + headers
        self.interim = list(interim)    # 1xx responses seen before this one

    def header(self, name, default=None):
        """First value of header `name` (case-insensitive)."""
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return (f"<Response {self.status} {self.reason!r} "
                f"headers={self.headers!r} body={self.body[:200]!r}>")


class ConnectionClosed(Exception):
    """The peer closed the connection (EOF or reset)."""

    def __init__(self, msg, got=b""):
        super().__init__(msg)
        self.got = got      # bytes received before the close


class Conn:
    """One client connection; several requests on it (keep-alive)."""

    def __init__(self, port, host="127.0.0.1", timeout=SOCK_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.received_any = False     # any byte since the last request sent

    # -- low level
    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.received_any = False
        self.sock.sendall(data)

    def _fill(self):
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise ConnectionClosed(f"connection reset: {e}", self.buf)
        if not data:
            raise ConnectionClosed("connection closed by peer", self.buf)
        self.received_any = True
        self.buf += data

    def _read_until(self, sep, limit=1 << 20):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(sep):]
                return out
            if len(self.buf) > limit:
                raise AssertionError(f"no {sep!r} within {limit} bytes")
            self._fill()

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read_to_eof(self):
        while True:
            try:
                self._fill()
            except ConnectionClosed:
                out, self.buf = self.buf, b""
                return out

    # -- HTTP
    def read_response(self, method="GET", skip_interim=True):
        """Read one response; 1xx responses are collected into .interim."""
        interim = []
        while True:
            head = self._read_until(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            m = re.match(rb"(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
            if not m:
                raise AssertionError(f"bad status line {lines[0]!r}")
            version = m.group(1).decode()
            status = int(m.group(2))
            reason = (m.group(3) or b"").decode("latin-1")
            headers = []
            for ln in lines[1:]:
                k, sep, v = ln.partition(b":")
                if not sep:
                    raise AssertionError(f"bad header line {ln!r}")
                headers.append((k.decode("latin-1"),
                                v.strip().decode("latin-1")))
            if 100 <= status < 200 and status != 101:
                interim.append(Response(version, status, reason, headers,
                                        b"", head))
                if skip_interim:
                    continue
                return interim[-1]
            r = Response(version, status, reason, headers, b"", head, interim)
            r.body = self._read_body(r, method)
            return r

    def _read_body(self, r, method):
        if method == "HEAD" or r.status in (101, 204, 304):
            return b""
        te = r.header("Transfer-Encoding")
        if te is not None and "chunked" in te.lower():
            body = b""
            while True:
                size_line = self._read_until(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self._read_until(b"\r\n") != b"":   # trailers
                        pass
                    return body
                body += self._read_exact(size)
                if self._read_exact(2) != b"\r\n":
                    raise AssertionError("chunk not followed by CRLF")
        cl = r.header("Content-Length")
        if cl is not None:
            return self._read_exact(int(cl))
        return self._read_to_eof()

    def request(self, path="/", method="GET", host="localhost", headers=(),
                body=None, version="HTTP/1.1"):
        """Send one request and read its response."""
        self.send(build_request(path, method, host, headers, body, version))
        return self.read_response(method)

    def wait_closed(self, timeout=3.0):
        """True if the server closes (EOF/RST) within timeout, False if the
        connection is still open then.  Unread data is an error, except a
        408 the server may send before closing."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    data = self.sock.recv(65536)
                except (ConnectionResetError, BrokenPipeError):
                    return True
                except socket.timeout:
                    return False
                if not data:
                    return True
                self.buf += data
        finally:
            self.sock.settimeout(old)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build_request(path="/", method="GET", host="localhost", headers=(),
                  body=None, version="HTTP/1.1"):
    """Bytes of one request.  headers is a list of (name, value) or a dict;
    a str/bytes body gets a Content-Length unless headers name one or a
    Transfer-Encoding."""
    if isinstance(headers, dict):
        headers = list(headers.items())
    lines = [f"{method} {path} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    names = {k.lower() for k, _ in headers}
    for k, v in headers:
        lines.append(f"{k}: {v}")
    if isinstance(body, str):
        body = body.encode()
    if body is not None and "content-length" not in names \
            and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return data + (body or b"")


# --------------------------------------------------------------------------
# one gatehouse instance

class Gatehouse:
    def __init__(self, prefix):
        self.bin = BIN
        self.prefix = Path(prefix)
        self.conf_dir = self.prefix / "conf"
        self.logs_dir = self.prefix / "logs"
        self.conf_path = self.conf_dir / "gatehouse.conf"
        self.pid_path = self.logs_dir / "gatehouse.pid"
        self.error_log_path = self.logs_dir / "error.log"
        self.stdout_path = self.prefix / "stdout"
        self.stderr_path = self.prefix / "stderr"
        self.ports = {"port": free_port(), "port2": free_port(),
                      "port3": free_port()}
        self.port = self.ports["port"]
        self.port2 = self.ports["port2"]
        self.port3 = self.ports["port3"]
        self.wait_ports = []
        self.proc = None
        self.problems = []            # reported at teardown
        self.allow_crash_log = False
        for d in (self.conf_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)

    # -- configuration files
    def subst(self, text):
        text = textwrap.dedent(text)
        for k, v in self.ports.items():
            text = text.replace("{" + k + "}", str(v))
        text = text.replace("{prefix}", str(self.prefix))
        text = text.replace("{conf_dir}", str(self.conf_dir))
        return text

    def main_part(self, workers=1):
        w = "" if workers is None else f"worker_processes {workers};\n"
        return MAIN_TEMPLATE.format(workers=w)

    def configure(self, http=None, conf=None, files=None, workers=1):
        """Write conf/gatehouse.conf (and extra files).  Returns the text."""
        if conf is not None:
            text = self.subst(conf)
        else:
            body = textwrap.indent(self.subst(http or ""), "    ")
            text = self.main_part(workers) + "http {\n" + body + "}\n"
        self.write("gatehouse.conf", text)
        for name, content in (files or {}).items():
            self.write(name, self.subst(content))
        self.wait_ports = [v for k, v in self.ports.items()
                           if str(v) in self.all_conf_text()]
        return text

    def write(self, name, text):
        """Write conf/<name> (creating directories); placeholders are not
        substituted here, use subst()."""
        p = self.conf_dir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p

    def all_conf_text(self):
        out = []
        for p in self.conf_dir.rglob("*"):
            if p.is_file():
                out.append(p.read_text(errors="replace"))
        return "\n".join(out)

    def line_of(self, needle, name="gatehouse.conf", nth=1):
        """1-based line number of the nth line containing needle in
        conf/<name>."""
        seen = 0
        path = self.conf_dir / name
        for i, ln in enumerate(path.read_text().splitlines(), 1):
            if needle in ln:
                seen += 1
                if seen == nth:
                    return i
        raise AssertionError(f"{needle!r} not in {path}")

    def where(self, needle, name="gatehouse.conf", nth=1):
        """'ABS_PATH:LINE' as the server should print it."""
        return f"{self.conf_dir / name}:{self.line_of(needle, name, nth)}"

    # -- command line
    def cmd(self, *args):
        return [self.bin, "-p", str(self.prefix), "-c",
                str(self.conf_path), *args]

    def run(self, *args, timeout=CMD_TIMEOUT):
        """Run gatehouse with this prefix/conf and extra args (-t, -T, -s
        reload, ...).  Returns CompletedProcess with text stdout/stderr."""
        return subprocess.run(self.cmd(*args), capture_output=True,
                              text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def start(self, *args, wait=True):
        assert self.proc is None, "already started"
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.cmd(*args), stdout=self._out,
                                     stderr=self._err,
                                     stdin=subprocess.DEVNULL)
        if wait:
            self.wait_started()
        return self

    def wait_started(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout

        def check(what):
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"gatehouse exited with {self.proc.returncode} while "
                    f"waiting for {what}\nstderr:\n{self.stderr()}\n"
                    f"error.log:\n{self.error_log()}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"gatehouse not ready within {timeout}s ({what})\n"
                    f"stderr:\n{self.stderr()}\nerror.log:\n"
                    f"{self.error_log()}")

        while not (self.pid_path.exists() and self.pid_path.read_text().strip()):
            check("the pid file")
            time.sleep(0.01)
        for port in self.wait_ports:
            while True:
                check(f"port {port}")
                try:
                    socket.create_connection(("127.0.0.1", port),
                                             timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.01)
        # the master listens before it forks: without this a test reading
        # gh.workers() at once may see none yet (often under ASan)
        if "master_process off" not in self.all_conf_text():
            while not self.workers():
                check("a worker process")
                time.sleep(0.01)
        return self

    def start_fail(self, *args, timeout=CMD_TIMEOUT):
        """Start and expect it to exit by itself; returns (rc, stderr)."""
        self.start(*args, wait=False)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("gatehouse kept running; expected it to "
                                 "refuse the configuration")
        return rc, self.stderr()

    @property
    def pid(self):
        return self.proc.pid

    def master_pid_file(self):
        return int(self.pid_path.read_text().strip())

    def workers(self):
        return children_of(self.proc.pid)

    def wait_workers(self, n, timeout=5.0, exclude=()):
        """Wait until the master has exactly n live children none of which
        is in exclude; returns their pids."""
        def ok():
            w = self.workers()
            return w if len(w) == n and not set(w) & set(exclude) else None
        return wait_until(ok, timeout, what=f"{n} workers (have "
                          f"{self.workers()})")

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def reload(self):
        r = self.run("-s", "reload")
        assert r.returncode == 0, r.stderr
        return r

    # -- logs
    def error_log(self):
        try:
            return self.error_log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stderr(self):
        if hasattr(self, "_err") and not self._err.closed:
            self._err.flush()
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stdout(self):
        try:
            return self.stdout_path.read_text(errors="replace")
        except OSError:
            return ""

    def log(self, name):
        try:
            return (self.logs_dir / name).read_text(errors="replace")
        except OSError:
            return ""

    def wait_log(self, name, pattern, timeout=3.0):
        """Wait until logs/<name> matches regex pattern; return the match."""
        rx = re.compile(pattern, re.M)
        return wait_until(lambda: rx.search(self.log(name)), timeout,
                          what=f"{pattern!r} in logs/{name}:\n"
                               f"{self.log(name)}")

    # -- client helpers
    def conn(self, port=None, timeout=SOCK_TIMEOUT):
        return Conn(port or self.port, timeout=timeout)

    def request(self, path="/", method="GET", host="localhost", headers=(),
                body=None, version="HTTP/1.1", port=None,
                timeout=SOCK_TIMEOUT):
        with self.conn(port, timeout) as c:
            return c.request(path, method, host, headers, body, version)

    get = request

    def raw(self, data, port=None, timeout=SOCK_TIMEOUT, method="GET"):
        """Send raw bytes on a new connection and read one response."""
        with self.conn(port, timeout) as c:
            c.send(data)
            return c.read_response(method)

    # -- teardown
    def stop(self):
        if self.proc is None:
            return
        workers = []
        if self.proc.poll() is None:
            workers = self.workers()
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.problems.append(
                    f"master {self.proc.pid} did not exit within "
                    f"{STOP_TIMEOUT}s of SIGQUIT; killed")
                for w in self.workers():
                    if is_gatehouse_pid(w):
                        os.kill(w, signal.SIGKILL)
                self.proc.kill()
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.problems.append("master survived SIGKILL")
        # workers must not outlive the master
        if workers:
            try:
                wait_until(lambda: not any(pid_alive(w) and is_gatehouse_pid(w)
                                           for w in workers), 3.0)
            except AssertionError:
                left = [w for w in workers if pid_alive(w)]
                self.problems.append(f"workers {left} outlived the master")
                for w in left:
                    if is_gatehouse_pid(w):
                        os.kill(w, signal.SIGKILL)
        for f in ("_out", "_err"):
            if hasattr(self, f):
                getattr(self, f).close()
        if not self.allow_crash_log:
            for name, text in (("error.log", self.error_log()),
                               ("stderr", self.stderr())):
                m = CRASH_RE.search(text)
                if m:
                    line = text[text.rfind("\n", 0, m.start()) + 1:
                                text.find("\n", m.end())]
                    self.problems.append(f"crash in {name}: {line}")


@pytest.fixture
def gatehouse(tmp_path):
    """Factory: gatehouse(http_text=None, *, conf=None, files=None,
    start=True, args=(), workers=1) -> Gatehouse."""
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"gatehouse binary {BIN} not found; run make or set "
                    f"GATEHOUSE_BIN")
    instances = []

    def factory(http=None, *, conf=None, files=None, start=True, args=(),
                workers=1):
        gh = Gatehouse(tmp_path / f"gh{len(instances)}")
        instances.append(gh)
        gh.configure(http=http, conf=conf, files=files, workers=workers)
        if start:
            gh.start(*args)
        return gh

    yield factory
    problems = []
    for gh in instances:
        gh.stop()
        problems += gh.problems
    if problems:
        pytest.fail("teardown: " + "; ".join(problems), pytrace=False)


def simple_server(body="", listen="127.0.0.1:{port}"):
    """http{} text with one server: listen + body."""
    return f"server {{\n    listen {listen};\n{textwrap.indent(textwrap.dedent(body), '    ')}}}\n"


# --------------------------------------------------------------------------
# test upstreams (see upstreams.py)

def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: a long test (seconds); still part of make test, "
        "deselect with -m 'not slow'")


class _UpstreamFactory:
    """upstream(handler=None, **kw) -> a started upstreams.Upstream;
    .websocket(unix=False) -> a started WebSocketEcho; .closed_port() ->
    a ClosedPort.  Everything is stopped at teardown."""

    def __init__(self):
        self.started = []

    def _keep(self, srv):
        self.started.append(srv)
        return srv.start()

    def __call__(self, handler=None, **kw):
        from upstreams import Upstream
        return self._keep(Upstream(handler, **kw))

    def websocket(self, unix=False):
        from upstreams import WebSocketEcho
        return self._keep(WebSocketEcho(unix=unix))

    def closed_port(self):
        from upstreams import ClosedPort
        return self._keep(ClosedPort())

    def stop_all(self):
        for srv in reversed(self.started):
            srv.stop()


@pytest.fixture
def upstream():
    f = _UpstreamFactory()
    yield f
    f.stop_all()
    errors = [e for srv in f.started for e in getattr(srv, "errors", [])]
    if errors:
        pytest.fail("upstream handler errors: " + "; ".join(errors),
                    pytrace=False)
