"""Helpers for the load-balancing tests (test_lb_*.py).

Backends: the fastest upstream for counting is gatehouse itself.  One
gatehouse instance gets, next to the proxying server, N small servers
that answer `return 200 "<id>"`: each response body names the backend
that served it, in C and on the same event loop, so thousands of
requests take a second or two.

    ports = backend_ports(3)
    gh = gatehouse(backends(ports) + simple_server('''
        location / { proxy_pass http://u; }
    ''') + upstream_block("u", ports, ["weight=5", "", ""]))
    with gh.conn() as c:
        ids = [fetch(c, "/") for _ in range(100)]

`nginx_run()` runs Debian's nginx (when installed) on the same http text
for the compatibility tests: the same upstream lines and keys must land on
the same backends.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
import textwrap

from conftest import free_port, wait_until, build_request

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def have_nginx():
    return os.access(NGINX, os.X_OK)


def backend_ports(n):
    ports = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def backends(ports, body=None):
    """http{} text: one server per port answering its index (0-based)."""
    out = []
    for i, p in enumerate(ports):
        text = body(i) if body else f'return 200 "{i}";'
        out.append(f"server {{ listen 127.0.0.1:{p}; "
                   f"location / {{ {text} }} }}\n")
    return "".join(out)


def upstream_block(name, ports, params=None, head="", tail=""):
    params = params or [""] * len(ports)
    lines = [f"upstream {name} {{", f"    {head}" if head else ""]
    for p, extra in zip(ports, params):
        lines.append(f"    server 127.0.0.1:{p} {extra};")
    if tail:
        lines.append(f"    {tail}")
    lines.append("}")
    return "\n".join(x for x in lines if x) + "\n"


def fetch(conn, path="/", headers=(), host="localhost"):
    """One request on a keep-alive conftest Conn; the backend id (the
    body as text) or the status as 'E<status>'."""
    r = conn.request(path, headers=headers, host=host)
    if r.status != 200:
        return f"E{r.status}"
    return r.body.decode()


def fetch_from(port, path, src_ip, timeout=5.0):
    """One request on a new connection from src_ip (any 127.x.y.z is
    local on Linux): the body, or 'E<status>'."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((src_ip, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(build_request(path, headers=[("Connection", "close")]))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return body.decode() if status == 200 else f"E{status}"


def counts(ids, n):
    c = [0] * n
    for x in ids:
        c[int(x)] += 1
    return c


# --------------------------------------------------------------------------
# nginx, for the compatibility tests

class Nginx:
    def __init__(self, prefix, http_text, port):
        self.prefix = prefix
        self.port = port
        os.makedirs(prefix / "logs", exist_ok=True)
        os.makedirs(prefix / "conf", exist_ok=True)
        conf = ("daemon off;\nmaster_process off;\n"
                "error_log logs/error.log info;\npid logs/nginx.pid;\n"
                "events { worker_connections 1024; }\n"
                "http {\n    access_log off;\n"
                + textwrap.indent(http_text, "    ") + "}\n")
        (prefix / "conf" / "nginx.conf").write_text(conf)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.prefix), "-c",
             str(self.prefix / "conf" / "nginx.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("nginx exited: "
                                     + self.proc.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(up, 10, what="nginx")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        time.sleep(0.05)


def on_each_worker(port, fn, workers=2, limit=400, status="/status"):
    """Run fn(conn) on connections served by each of `workers` workers:
    new connections until every worker has been seen (the server should
    listen with `reuseport`, so that connections spread over the workers
    by their source port).  A connection's worker is told by the pid in
    the upstream_status JSON at `status`.  Returns {pid: [fn results]}."""
    import json
    from conftest import Conn
    seen = {}
    for _ in range(limit):
        with Conn(port) as c:
            pid = json.loads(c.request(status).body)["pid"]
            seen.setdefault(pid, []).append(fn(c))
        if len(seen) == workers:
            return seen
    raise AssertionError(f"only workers {list(seen)} answered in {limit} "
                         f"connections")
