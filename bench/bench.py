#!/usr/bin/python3
"""bench/bench.py: gatehouse side by side with nginx and HAProxy.

Started by bench/run.sh (`make bench`), which builds bench/upstream.c and
bench/load.c into the work directory and passes their paths.  Standard
library only.

Per worker setting (BENCH_WORKERS, "1 auto"): start the upstream and every
proxy once, warm each up, then for every round and scenario run the
scenario against each proxy in turn (A B C A B C ...), so slow drift of the
machine hits all of them alike.  Medians over rounds go into the table and
the JSON; each sample's figures stay in the JSON too.

Processes: load generators run pinned to BENCH_CPU_LOAD (0), the upstream
and the proxies to BENCH_CPU_SERVER (1).  Every process started here is
tracked in PROCS and stopped on exit, error or signal.

Scenario 9 (HTTPS) runs against a second listener of the same config,
`listen ... ssl http2` on the proxy's port + TLS_OFFSET, with a
certificate made here with the openssl CLI (make_cert) and no session
cache nor tickets: wrk over TLS for handshakes and HTTP/1.1 keep-alive,
h2load for HTTP/2.

The environment knobs are listed in bench/README.md and in KNOBS below.
"""

import datetime
import hashlib
import json
import os
import platform
import resource
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
RESULTS = os.path.join(BENCH, "results")

KNOBS = {
    "BENCH_ROUNDS": "3",          # rounds of every scenario
    "BENCH_DURATION": "3",        # seconds per wrk / load run
    "BENCH_WORKERS": "1 auto",    # worker settings to run, in order
    "BENCH_SCENARIOS": "",        # e.g. "1,3,4" (default: all)
    "BENCH_AUTO_SCENARIOS": "1k-c64,1k-c256,100k-c64,tls-hs,h2-1k",
    "BENCH_TLS_KEY": "ec",        # scenario 9 certificate: ec (P-256), rsa
    "BENCH_AA": "0",              # 1: nginx against a second nginx
    "BENCH_PROXIES": "",          # default "gatehouse nginx haproxy"
    "BENCH_IDLE_CONNS": "10000",  # scenario 4
    "BENCH_RATE": "10000",        # scenario 6, requests/s
    "BENCH_CALLGRIND_REQUESTS": "2000",  # scenario 7
    "BENCH_PORT": "28080",        # upstream; proxies on the next ports
    "BENCH_PIN": "1",             # 0: no taskset
    "BENCH_CPU_LOAD": "0",
    "BENCH_CPU_SERVER": "1",
    "BENCH_SMOKE": "0",           # 1: a few hundred requests each, check
    "GATEHOUSE_BIN": os.path.join(ROOT, "build", "gatehouse"),
}


def knob(name):
    return os.environ.get(name, KNOBS[name])


PROCS = []          # every Popen started here, stopped by cleanup()
WORK = None         # the work directory (configs, logs, binaries)
TOOLS = {}          # upstream, load: paths of the built helpers
CERT = {}           # cert, key, pem (both in one file): made by make_cert
TLS_OFFSET = 50     # a proxy's TLS listener is on its port + TLS_OFFSET


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def pin(cpu_knob):
    if knob("BENCH_PIN") == "0":
        return []
    return ["taskset", "-c", knob(cpu_knob)]


# ---------------------------------------------------------------- processes

def spawn(argv, name, cpu="BENCH_CPU_SERVER", **kw):
    out = open(os.path.join(WORK, name + ".out"), "ab")
    p = subprocess.Popen(pin(cpu) + argv, stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True,
                         **kw)
    p.bench_name = name
    PROCS.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=10.0):
    """Stop one process we started (and its process group: the workers)."""
    if p.poll() is None:
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)
    # workers that outlived their master are in the same new session
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if p in PROCS:
        PROCS.remove(p)
    return p.returncode


def cleanup():
    for p in list(PROCS):
        stop(p, timeout=5.0)


def on_signal(signum, frame):
    cleanup()
    sys.exit(128 + signum)


def wait_port(port, proc, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def children(pid):
    """pid and its descendants, from /proc (master + workers)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_ticks(pids):
    """utime + stime of the given processes (all their threads)."""
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total


def rss_bytes(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


CLK_TCK = os.sysconf("SC_CLK_TCK")
# the open-file limit run.sh could set: a container may cap it (20000 here)
NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def max_conns():
    """Client connections every proxy can hold: HAProxy reserves two
    descriptors per connection and refuses to start beyond the limit."""
    return (NOFILE - 200) // 2


def idle_conns():
    return min(int(knob("BENCH_IDLE_CONNS")), max_conns() - 100)


def port_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def make_cert():
    """The one self-signed certificate every proxy serves in scenario 9:
    ECDSA P-256 (BENCH_TLS_KEY=ec) or RSA 2048 (rsa).  No verification
    happens, so the name does not matter."""
    kind = knob("BENCH_TLS_KEY")
    newkey = {"ec": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
              "rsa": ["-newkey", "rsa:2048"]}.get(kind)
    if newkey is None:
        raise SystemExit("bench: BENCH_TLS_KEY is ec or rsa, not %r" % kind)
    CERT["cert"] = os.path.join(WORK, "cert.pem")
    CERT["key"] = os.path.join(WORK, "key.pem")
    CERT["pem"] = os.path.join(WORK, "cert-key.pem")
    subprocess.run(["openssl", "req", "-x509"] + newkey +
                   ["-nodes", "-subj", "/CN=bench.test", "-days", "2",
                    "-keyout", CERT["key"], "-out", CERT["cert"]],
                   check=True, capture_output=True, timeout=60)
    with open(CERT["pem"], "w") as out:
        for f in (CERT["cert"], CERT["key"]):
            with open(f) as fh:
                out.write(fh.read())
    CERT["kind"] = {"ec": "ECDSA P-256", "rsa": "RSA 2048"}[kind]


def tls_client(version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def tls_get(port, path, ctx=None, session=None, timeout=5.0):
    """One HTTP/1.1 GET over a new TLS connection, no verification.
    (status, body, info) or (None, error, None); info has the session
    (to offer again with the same ctx), whether it was a resumed one, the
    protocol and the cipher."""
    ctx = ctx or tls_client()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout)
        t = ctx.wrap_socket(s, server_hostname="bench.test", session=session)
        t.sendall(b"GET %s HTTP/1.1\r\nHost: bench.test\r\n"
                  b"Connection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            b = t.recv(65536)
            if not b:
                break
            data += b
        info = dict(session=t.session, reused=t.session_reused,
                    version=t.version(), cipher=t.cipher()[0])
        t.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body, info
    except (OSError, ValueError, IndexError) as e:
        return None, str(e), None


def http_get(port, path, timeout=5.0):
    """One HTTP/1.0 GET; (status, body) or (None, error)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout)
        s.sendall(b"GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
                  % path.encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body
    except (OSError, ValueError, IndexError) as e:
        return None, str(e)


def upstream_accepted(port):
    st, body = http_get(port, "/stats")
    if st != 200:
        return None
    return json.loads(body)["accepted"]


# ---------------------------------------------------------------- proxies

class Proxy:
    """One proxy under test: its config, prefix and processes."""

    def __init__(self, name, kind, binary, port, upstream_port, workers):
        self.name, self.kind, self.binary = name, kind, binary
        self.port, self.upstream_port = port, upstream_port
        self.tls_port = port + TLS_OFFSET
        self.workers = workers
        self.prefix = os.path.join(WORK, "%s-w%s-%d" % (name, workers, port))
        self.proc = None
        self.broken = None      # why it was dropped, if it was

    def threads(self):
        return "1" if self.workers == "1" else str(os.cpu_count())

    def write_config(self):
        for d in ("conf", "logs", "tmp"):
            os.makedirs(os.path.join(self.prefix, d), exist_ok=True)
        subst = {"@WORKERS@": self.workers, "@PORT@": str(self.port),
                 "@NOFILE@": str(NOFILE), "@CONNS@": str(NOFILE - 1000),
                 "@MAXCONN@": str(max_conns()),
                 "@UPSTREAM_PORT@": str(self.upstream_port),
                 "@THREADS@": self.threads(), "@PREFIX@": self.prefix,
                 "@TLS_PORT@": str(self.tls_port), "@CERT@": CERT["cert"],
                 "@KEY@": CERT["key"], "@PEM@": CERT["pem"]}
        src = "haproxy.cfg.in" if self.kind == "haproxy" else "proxy.conf.in"
        with open(os.path.join(BENCH, src)) as f:
            text = f.read()
        for k, v in subst.items():
            text = text.replace(k, v)
        self.conf = os.path.join(self.prefix, "conf", "bench.conf")
        with open(self.conf, "w") as f:
            f.write(text)

    def argv(self, single=False):
        if self.kind == "haproxy":
            return [self.binary, "-db", "-f", self.conf]
        g = "daemon off;" + (" master_process off;" if single else "")
        return [self.binary, "-p", self.prefix + "/", "-c", self.conf,
                "-g", g]

    def start(self, wrapper=(), timeout=15.0):
        self.write_config()
        self.proc = spawn(list(wrapper) + self.argv(single=bool(wrapper)),
                          "%s-w%s-%d" % (self.name, self.workers, self.port))
        if not wait_port(self.port, self.proc, timeout):
            rc = self.proc.poll()
            stop(self.proc)
            self.proc = None
            return "did not start (exit %s); see %s" % (rc, self.logs())
        return None

    def pids(self):
        return children(self.proc.pid) if self.proc else []

    def worker_pids(self):
        """The processes that hold connections: workers, or the only one."""
        ps = self.pids()
        return ps[1:] if len(ps) > 1 else ps

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        rc = None
        if self.proc is not None:
            rc = stop(self.proc, signal.SIGTERM)
            self.proc = None
        return rc

    def logs(self):
        return os.path.join(self.prefix, "logs", "error.log") \
            if self.kind != "haproxy" else \
            os.path.join(WORK, "%s-w%s-%d.out" % (self.name, self.workers,
                                                  self.port))

    def log_problems(self):
        """Lines of the error log (or output) that say something broke."""
        path = self.logs()
        if not os.path.exists(path):
            return []
        bad = re.compile(r"\[(emerg|alert|crit)\]|signal|sanitizer|"
                         r"Segmentation|Aborted|ALERT", re.I)
        with open(path, errors="replace") as f:
            return [l.rstrip() for l in f if bad.search(l)][:20]


def make_proxies(workers, base_port):
    names = knob("BENCH_PROXIES").split()
    if knob("BENCH_AA") == "1":
        names = names or ["nginx", "nginx-b"]
    names = names or ["gatehouse", "nginx", "haproxy"]
    out = []
    for i, n in enumerate(names):
        kind = n.split("-")[0]
        binary = {"gatehouse": TOOLS["gatehouse"],
                  "nginx": shutil.which("nginx") or "/usr/sbin/nginx",
                  "haproxy": shutil.which("haproxy") or "/usr/sbin/haproxy",
                  }[kind]
        out.append(Proxy(n, kind, binary, base_port + 1 + i, base_port,
                         workers))
    return out


def check_proxy(px):
    """A few requests through px; None if all is well, else why not."""
    st, body = http_get(px.port, "/size/100")
    if st != 200 or len(body) != 100:
        return "GET /size/100 gave %s %r" % (st, body[:200])
    r = run_load(["count", "-p", str(px.port), "-c", "4", "-n", "200",
                  "-u", "/size/1024"], timeout=30)
    if r is None or r["requests"] != 200 or r["errors"] or r["non2xx"]:
        return "200 keep-alive requests gave %s" % r
    st, body, _ = tls_get(px.tls_port, "/size/100")
    if st != 200 or len(body) != 100:
        return "GET /size/100 over TLS gave %s %r" % (st, body[:200])
    return None


def check_full_handshakes(px):
    """Scenario 9 measures full handshakes: in TLS 1.3 and 1.2 alike, a
    client that offers the session of its previous connection must get a
    full handshake.  (A proxy may still send TLS 1.3 tickets it cannot
    honour: OpenSSL sends "stateful" ones unless told to send none.)
    None, or what is wrong."""
    for v in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        ctx = tls_client(v)
        st, body, t = tls_get(px.tls_port, "/size/100", ctx)
        if st != 200:
            return "%s GET gave %s %r" % (v.name, st, body[:200])
        st, body, t2 = tls_get(px.tls_port, "/size/100", ctx,
                               session=t["session"])
        if st != 200:
            return "%s GET offering a session gave %s %r" % (v.name, st,
                                                             body[:200])
        if t2["reused"]:
            return "%s: the proxy resumed a session" % v.name
    return None


# ---------------------------------------------------------------- load

def run_load(args, timeout=120, stdin=None):
    cmd = pin("BENCH_CPU_LOAD") + [TOOLS["load"]] + args
    try:
        out = subprocess.run(cmd, capture_output=True, text=True,
                             timeout=timeout, stdin=stdin)
    except subprocess.TimeoutExpired:
        return None
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        log("load %s: %s %s" % (" ".join(args), out.stdout, out.stderr))
        return None


def parse_wrk(text):
    r = {"requests": 0, "rps": 0.0, "non2xx": 0, "sock_connect": 0,
         "sock_read": 0, "sock_write": 0, "sock_timeout": 0}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", text)
    if m:
        for k, v in zip(("connect", "read", "write", "timeout"), m.groups()):
            r["sock_" + k] = int(v)
    m = re.search(r"Latency\s+([\d.]+)(\w+)", text)
    if m:
        mult = {"us": 1, "ms": 1e3, "s": 1e6}.get(m.group(2), 1)
        r["lat_avg_us"] = float(m.group(1)) * mult
    return r


def measured(px, cmd, timeout):
    """Run a load generator against px: its output, and the proxy's CPU
    seconds (master and workers) and upstream connections meanwhile."""
    pids = px.pids()
    up0 = upstream_accepted(px.upstream_port)
    t0 = cpu_ticks(pids)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True,
                             timeout=timeout)
        text = out.stdout + out.stderr
    except subprocess.TimeoutExpired:
        text = "%s timed out" % os.path.basename(cmd[len(pin(
            "BENCH_CPU_LOAD"))])
    except OSError as e:
        text = "%s: %s" % (cmd, e)
    t1 = cpu_ticks(pids)
    up1 = upstream_accepted(px.upstream_port)
    m = {"cpu_s": (t1 - t0) / CLK_TCK}
    if up0 is not None and up1 is not None:
        # minus our own /stats connection
        m["upstream_connects"] = up1 - up0 - 1
    return text, m


def per_request(r, m):
    r.update(m)
    r["cpu_us_per_req"] = (r["cpu_s"] * 1e6 / r["requests"]
                           if r["requests"] else None)
    return r


def run_wrk(px, sc, duration):
    if sc.get("tls"):
        url = "https://127.0.0.1:%d%s" % (px.tls_port, sc["path"])
    else:
        url = "http://127.0.0.1:%d%s" % (px.port, sc["path"])
    cmd = pin("BENCH_CPU_LOAD") + ["wrk", "-t1", "-c", str(sc["conns"]),
                                   "-d", "%ss" % duration]
    if sc.get("close"):
        cmd += ["-H", "Connection: close"]
    if sc.get("script"):
        cmd += ["-s", sc["script"]]
    cmd.append(url)
    text, m = measured(px, cmd, float(duration) + 30)
    r = per_request(parse_wrk(text), m)
    errs = (r["non2xx"] + r["sock_connect"] + r["sock_read"]
            + r["sock_write"] + r["sock_timeout"])
    if errs or not r["requests"]:
        r["wrk_output"] = text[-2000:]
    return r


def parse_h2load(text):
    r = {"requests": 0, "rps": 0.0, "non2xx": 0, "errors": 0,
         "protocol": None}
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, "
                  r"(\d+) succeeded, (\d+) failed, (\d+) errored, "
                  r"(\d+) timeout", text)
    if m:
        r["requests"] = int(m.group(4))
        r["errors"] = int(m.group(5)) + int(m.group(6)) + int(m.group(7))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, "
                  r"(\d+) 5xx", text)
    if m:
        r["non2xx"] = sum(int(g) for g in m.groups()[1:])
    m = re.search(r"Application protocol: (\S+)", text)
    if m:
        r["protocol"] = m.group(1)
    return r


def run_h2load(px, sc, duration):
    """HTTP/2 over TLS (ALPN h2): sc["conns"] connections with
    sc["streams"] concurrent streams each, for `duration` seconds or,
    with sc["requests"], for that many requests (the smoke run)."""
    if not shutil.which("h2load"):
        return {"error": "h2load is not installed (Debian nghttp2-client; "
                         "scripts/deps.sh bench)"}
    cmd = pin("BENCH_CPU_LOAD") + ["h2load", "-t1", "-c", str(sc["conns"]),
                                   "-m", str(sc["streams"])]
    if sc.get("requests"):
        cmd += ["-n", str(sc["requests"])]
    else:
        cmd += ["-D", str(duration)]
    cmd.append("https://127.0.0.1:%d%s" % (px.tls_port, sc["path"]))
    text, m = measured(px, cmd, float(duration) + 30)
    r = per_request(parse_h2load(text), m)
    if r["protocol"] != "h2":
        r["error"] = "h2load negotiated %s, not h2" % r["protocol"]
    if r["errors"] or r["non2xx"] or not r["requests"] or r.get("error"):
        r["h2load_output"] = text[-2000:]
    return r


def run_idle(px, sc, duration):
    """Scenario 4: RSS per idle keep-alive connection, on a fresh proxy."""
    fresh = Proxy(px.name, px.kind, px.binary, px.port + 100,
                  px.upstream_port, px.workers)
    why = fresh.start()
    if why:
        return {"error": why}
    try:
        warm = run_load(["count", "-p", str(fresh.port), "-c", "8", "-n",
                         "1000"])
        time.sleep(0.3)
        before = rss_bytes(fresh.worker_pids())
        n = idle_conns()
        cmd = pin("BENCH_CPU_LOAD") + [TOOLS["load"], "idle", "-p",
                                       str(fresh.port), "-c", str(n),
                                       "-k", "64", "-u", "/size/100",
                                       "-d", "60"]
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        PROCS.append(p)
        line = p.stdout.readline()
        time.sleep(0.5)
        after = rss_bytes(fresh.worker_pids())
        p.stdin.close()
        p.wait(30)
        PROCS.remove(p)
        try:
            r = json.loads(line)
        except ValueError:
            return {"error": "idle client printed %r" % line}
        r["rss_before"], r["rss_after"] = before, after
        r["bytes_per_conn"] = ((after - before) / r["open"]
                               if r["open"] else None)
        r["warmup"] = warm
        if not fresh.alive():
            r["error"] = "proxy died"
        return r
    finally:
        fresh.stop()


def run_rate(px, sc, duration):
    return run_load(["rate", "-p", str(px.port), "-c", "32", "-r",
                     knob("BENCH_RATE"), "-d", str(duration), "-w", "1",
                     "-u", sc["path"]], timeout=float(duration) + 60)


def run_ws(px, sc, duration):
    pids = px.pids()
    t0 = cpu_ticks(pids)
    r = run_load(["ws", "-p", str(px.port), "-c", str(sc["conns"]), "-d",
                  str(duration), "-s", "64"], timeout=float(duration) + 60)
    if r and r.get("messages"):
        r["cpu_us_per_msg"] = (cpu_ticks(pids) - t0) / CLK_TCK * 1e6 \
            / r["messages"]
    return r


def run_callgrind(px, sc, duration):
    """Scenario 7: instructions per request, single process, no master."""
    if px.kind == "haproxy":
        return None
    n = int(knob("BENCH_CALLGRIND_REQUESTS"))
    cg = Proxy(px.name, px.kind, px.binary, px.port + 200,
               px.upstream_port, "1")
    out = os.path.join(WORK, "callgrind.%s.out" % px.name)
    for f in os.listdir(WORK):
        if f.startswith("callgrind.%s.out" % px.name):
            os.unlink(os.path.join(WORK, f))
    why = cg.start(wrapper=["valgrind", "--tool=callgrind",
                            "--callgrind-out-file=" + out], timeout=60)
    if why:
        return {"error": why}
    try:
        run_load(["count", "-p", str(cg.port), "-c", "4", "-n", "300",
                  "-u", sc["path"]], timeout=120)
        ctl = subprocess.run(["callgrind_control", "-z", str(cg.proc.pid)],
                             capture_output=True, text=True, timeout=60)
        r = run_load(["count", "-p", str(cg.port), "-c", "4", "-n", str(n),
                      "-u", sc["path"]], timeout=300)
        ctl = subprocess.run(["callgrind_control", "-d", str(cg.proc.pid)],
                             capture_output=True, text=True, timeout=60)
        if ctl.returncode != 0 or r is None:
            return {"error": "callgrind_control: %s" % ctl.stdout[-300:]}
        dumps = sorted(f for f in os.listdir(WORK)
                       if f.startswith("callgrind.%s.out." % px.name))
        ir = None
        for f in dumps:
            with open(os.path.join(WORK, f)) as fh:
                for line in fh:
                    if line.startswith("summary:"):
                        ir = int(line.split()[1])
        r["instructions"] = ir
        r["instr_per_req"] = ir / r["requests"] if ir and r["requests"] \
            else None
        r["profile"] = dumps[-1] if dumps else None
        return r
    finally:
        cg.stop()


# ---------------------------------------------------------------- scenarios

def scenarios(work):
    post = os.path.join(work, "post1m.lua")
    with open(post, "w") as f:
        f.write('wrk.method = "POST"\n'
                'wrk.body = string.rep("x", 1048576)\n'
                'wrk.headers["Content-Type"] = "application/octet-stream"\n')
    W, L = "wrk", "load"
    return [
        # id, group, title, runner, params
        dict(id="100b-c64", n=1, title="100 B, 64 conns", run=W,
             path="/size/100", conns=64),
        dict(id="100b-c256", n=1, title="100 B, 256 conns", run=W,
             path="/size/100", conns=256),
        dict(id="1k-c64", n=1, title="1 KiB, 64 conns", run=W,
             path="/size/1024", conns=64),
        dict(id="1k-c256", n=1, title="1 KiB, 256 conns", run=W,
             path="/size/1024", conns=256),
        dict(id="close-1k-c64", n=2, title="new conn/request, 1 KiB, 64",
             run=W, path="/size/1024", conns=64, close=True),
        dict(id="100k-c64", n=3, title="100 KiB, 64 conns", run=W,
             path="/size/102400", conns=64),
        dict(id="1m-c16", n=3, title="1 MiB, 16 conns", run=W,
             path="/size/1048576", conns=16),
        dict(id="post1m-c16", n=3, title="POST 1 MiB body, 16 conns",
             run=W, path="/upload", conns=16, script=post),
        dict(id="idle", n=4, title="idle keep-alive conns", run="idle"),
        dict(id="rate", n=6, title="latency at fixed rate", run="rate",
             path="/size/1024"),
        dict(id="callgrind", n=7, title="callgrind", run="callgrind",
             path="/size/1024", once=True),
        dict(id="ws", n=8, title="websocket echo, 64 conns", run="ws",
             conns=64),
        # 9: HTTPS, the TLS listener of the same config (make_cert's key)
        dict(id="tls-hs", n=9, title="TLS handshake/req, 1 KiB, 64",
             run=W, path="/size/1024", conns=64, close=True, tls=True,
             metrics=[("rps", "handshake/s", True, "%.0f"),
                      ("cpu_us_per_req", "CPU us/hs", False, "%.2f")]),
        dict(id="tls-1k-c64", n=9, title="HTTPS keep-alive 1 KiB, 64",
             run=W, path="/size/1024", conns=64, tls=True),
        dict(id="h2-1k", n=9, title="HTTP/2 TLS 1 KiB, 16 x 10 str",
             run="h2load", path="/size/1024", conns=16, streams=10),
    ]


RUNNERS = {"wrk": run_wrk, "idle": run_idle, "rate": run_rate,
           "ws": run_ws, "callgrind": run_callgrind, "h2load": run_h2load}

# (key in a sample, label, unit, higher_is_better, format)
METRICS = {
    "wrk": [("rps", "req/s", True, "%.0f"),
            ("cpu_us_per_req", "CPU us/req", False, "%.2f")],
    "h2load": [("rps", "req/s", True, "%.0f"),
               ("cpu_us_per_req", "CPU us/req", False, "%.2f")],
    "idle": [("bytes_per_conn", "B/idle conn", False, "%.0f")],
    "rate": [("p50_us", "p50 us", False, "%.0f"),
             ("p99_us", "p99 us", False, "%.0f")],
    "ws": [("rate", "msg/s", True, "%.0f"),
           ("cpu_us_per_msg", "CPU us/msg", False, "%.2f")],
    "callgrind": [("instr_per_req", "instr/req", False, "%.0f")],
}


def metrics_of(sc):
    """What a scenario reports: its runner's metrics unless it names its
    own (same keys, other labels)."""
    return sc.get("metrics") or METRICS[sc["run"]]


def selected(scs, workers):
    want = knob("BENCH_SCENARIOS").replace(",", " ").split()
    if want:
        scs = [s for s in scs if str(s["n"]) in want or s["id"] in want]
    if workers != "1":
        auto = knob("BENCH_AUTO_SCENARIOS").replace(",", " ").split()
        if auto != ["all"]:
            scs = [s for s in scs if s["id"] in auto]
    return scs


def errors_of(sample):
    if sample is None:
        return "no result"
    if sample.get("error"):
        return sample["error"]
    bad = {k: sample[k] for k in ("non2xx", "sock_connect", "sock_read",
                                  "sock_write", "sock_timeout", "errors",
                                  "non101")
           if sample.get(k)}
    return bad or None


# ---------------------------------------------------------------- main run

def run_workers(workers, results, upstream_port):
    proxies = make_proxies(workers, upstream_port)
    duration = knob("BENCH_DURATION")
    rounds = int(knob("BENCH_ROUNDS"))
    live = []
    for px in proxies:
        why = px.start() or check_proxy(px)
        if why:
            px.broken = why
            log("bench: %s (workers %s) dropped: %s" % (px.name, workers, why))
            px.stop()
            continue
        # warm-up: page faults, upstream pool, CPU frequency
        run_wrk(px, dict(path="/size/1024", conns=64), 1)
        live.append(px)
    scs = selected(scenarios(WORK), workers)
    samples = []
    for rnd in range(rounds):
        for sc in scs:
            if sc.get("once") and (rnd > 0 or workers != "1"):
                continue
            for px in live:
                if not px.alive():
                    if not px.broken:
                        px.broken = "died (exit %s) before %s round %d" % (
                            px.proc.poll(), sc["id"], rnd + 1)
                        log("bench: %s %s" % (px.name, px.broken))
                    continue
                t = time.monotonic()
                r = RUNNERS[sc["run"]](px, sc, duration)
                if r is None:
                    continue
                r.update(proxy=px.name, scenario=sc["id"], round=rnd + 1,
                         workers=workers, seconds=round(time.monotonic() - t,
                                                        1))
                samples.append(r)
                e = errors_of(r)
                log("  w=%s r%d %-12s %-10s %s%s" % (
                    workers, rnd + 1, sc["id"], px.name,
                    " ".join("%s=%s" % (m[1], fmt(r.get(m[0]), m[3]))
                             for m in metrics_of(sc)),
                    ("  ERRORS %s" % e) if e else ""))
    problems = {}
    for px in proxies:
        lines = px.log_problems()
        if px.proc is not None and not px.alive():
            lines.insert(0, "exited with %s during the run" % px.proc.poll())
        rc = px.stop()
        if rc is not None and rc < 0 and rc != -signal.SIGTERM:
            lines.insert(0, "stopped by signal %d" % -rc)
        if px.broken:
            lines.insert(0, px.broken)
        if lines:
            problems[px.name] = lines
    results["runs"].append(dict(workers=workers, samples=samples,
                                proxies=[p.name for p in proxies],
                                problems=problems,
                                summary=summarize(samples, scs, proxies)))


def fmt(v, f):
    return "-" if v is None else f % v


def summarize(samples, scs, proxies):
    out = []
    for sc in scs:
        for key, label, higher, f in metrics_of(sc):
            row = dict(scenario=sc["id"], group=sc["n"], title=sc["title"],
                       metric=key, label=label, higher_is_better=higher,
                       median={}, samples={}, errors={})
            for px in proxies:
                vals = [s[key] for s in samples
                        if s["scenario"] == sc["id"] and s["proxy"] == px.name
                        and s.get(key) is not None]
                errs = [errors_of(s) for s in samples
                        if s["scenario"] == sc["id"]
                        and s["proxy"] == px.name and errors_of(s)]
                row["samples"][px.name] = vals
                row["median"][px.name] = (statistics.median(vals)
                                          if vals else None)
                if errs:
                    row["errors"][px.name] = errs
            base = proxies[0].name
            row["ratios"] = {}
            for px in proxies[1:]:
                a, b = row["median"][base], row["median"][px.name]
                row["ratios"]["%s/%s" % (base, px.name)] = (
                    a / b if a is not None and b else None)
            out.append(row)
    return out


def table(results):
    lines = []
    for run in results["runs"]:
        names = run["proxies"]
        base = names[0]
        lines.append("")
        lines.append("workers %s  (median of %s rounds, %s s each; "
                     "proxy+upstream on CPU %s, load on CPU %s)" % (
                         run["workers"], results["settings"]["BENCH_ROUNDS"],
                         results["settings"]["BENCH_DURATION"],
                         results["settings"]["BENCH_CPU_SERVER"],
                         results["settings"]["BENCH_CPU_LOAD"]))
        hdr = "%-2s %-30s %-12s" % ("#", "scenario", "metric")
        hdr += "".join("%11s" % n[:11] for n in names)
        hdr += "".join("%11s" % ("/" + n[:9]) for n in names[1:])
        lines.append(hdr)
        lines.append("-" * len(hdr))
        for row in run["summary"]:
            s = "%-2s %-30s %-12s" % (row["group"], row["title"][:30],
                                       row["label"])
            for n in names:
                v = row["median"].get(n)
                cell = fmt(v, METRICS_BY_KEY[row["metric"]])
                if row["errors"].get(n):
                    cell += "!"
                s += "%11s" % cell
            for n in names[1:]:
                r = row["ratios"].get("%s/%s" % (base, n))
                s += "%11s" % fmt(r, "%.2f")
            lines.append(s)
        lines.append("ratios are %s / the column's proxy: above 1.00 is "
                     "better for req/s and msg/s, below 1.00 for CPU, "
                     "memory, latency, instructions" % base)
        if any(r["errors"] for r in run["summary"]) or run["problems"]:
            lines.append("! = errors in some sample:")
            for row in run["summary"]:
                for n, errs in row["errors"].items():
                    lines.append("  %s %s: %s" % (n, row["scenario"],
                                                  errs[0]))
            for n, pl in run["problems"].items():
                for p in pl[:5]:
                    lines.append("  %s: %s" % (n, p))
    return "\n".join(lines)


METRICS_BY_KEY = {}
for _ms in METRICS.values():
    for _m in _ms:
        METRICS_BY_KEY.setdefault(_m[0], _m[3])


def versions():
    v = {}
    for name, cmd in (("nginx", ["nginx", "-v"]),
                      ("haproxy", ["haproxy", "-v"]),
                      ("wrk", ["wrk", "-v"]),
                      ("h2load", ["h2load", "--version"]),
                      ("openssl", ["openssl", "version"])):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True,
                                 timeout=10)
            v[name] = (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            v[name] = None
    try:
        v["gatehouse"] = subprocess.run(
            ["git", "-C", ROOT, "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        v["gatehouse"] = None
    # the tree's commit may not be what was built: name the binary too
    try:
        with open(TOOLS["gatehouse"], "rb") as f:
            v["gatehouse_sha256"] = hashlib.sha256(f.read()).hexdigest()[:16]
        v["gatehouse_built"] = datetime.datetime.fromtimestamp(
            os.path.getmtime(TOOLS["gatehouse"])).isoformat(timespec="seconds")
    except OSError:
        pass
    return v


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return dict(cpu=cpu, cpus=os.cpu_count(), kernel=platform.release(),
                host=platform.node())


def smoke(upstream_port):
    """BENCH_SMOKE=1: a few hundred requests of each kind through each."""
    failed = []
    for px in make_proxies("1", upstream_port):
        why = px.start() or check_proxy(px)
        if not why:
            for args in (["-u", "/size/100", "-n", "300"],
                         ["-u", "/size/102400", "-n", "100"],
                         ["-u", "/upload", "-n", "20", "-b", "1048576"]):
                r = run_load(["count", "-p", str(px.port), "-c", "4"] + args,
                             timeout=60)
                if r is None or r["errors"] or r["non2xx"] or \
                        r["requests"] != int(args[3]):
                    why = "%s: %s" % (" ".join(args), r)
                    break
        if not why:
            r = run_load(["ws", "-p", str(px.port), "-c", "2", "-d", "0.5"],
                         timeout=30)
            if r is None or r["errors"] or not r["messages"]:
                why = "websocket: %s" % r
        if not why:
            why = smoke_tls(px)
        px.stop()
        print("smoke %-10s %s" % (px.name, why or "ok"), flush=True)
        if why:
            failed.append(px.name)
    return 1 if failed else 0


def smoke_tls(px):
    """Scenario 9 in small: no resumption, a few full handshakes, and 200
    HTTP/2 requests through h2load's runner.  None or what went wrong."""
    why = check_full_handshakes(px)
    if why:
        return why
    for i in range(10):
        st, body, _ = tls_get(px.tls_port, "/size/1024")
        if st != 200 or len(body) != 1024:
            return "TLS GET %d gave %s %r" % (i, st, body[:200])
    r = run_h2load(px, dict(path="/size/1024", conns=2, streams=10,
                            requests=200), 0)
    if errors_of(r) or r["requests"] != 200:
        return "h2load: %s" % (r.get("error") or r.get("h2load_output"))
    return None


def https_note(results):
    """The closing note: scenario 9's ratios, per worker setting and per
    proxy compared."""
    lines = []
    for run in results["runs"]:
        rows = [r for r in run["summary"] if r["group"] == 9]
        if not rows:
            continue
        lines.append("HTTPS (scenario 9, %s certificate, full handshakes), "
                     "workers %s:" % (results["tls_certificate"],
                                      run["workers"]))
        for key in rows[0]["ratios"]:
            by_sc = {}
            for row in rows:
                by_sc.setdefault(row["scenario"], []).append(
                    "%s %s" % (row["label"], fmt(row["ratios"][key],
                                                 "%.2f")))
            lines.append("  %s: %s" % (key, "; ".join(
                "%s %s" % (sc, ", ".join(v)) for sc, v in by_sc.items())))
    return "\n".join(lines)


def main():
    global WORK
    WORK = sys.argv[1]
    TOOLS["upstream"], TOOLS["load"] = sys.argv[2], sys.argv[3]
    TOOLS["gatehouse"] = sys.argv[4]
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    port = int(knob("BENCH_PORT"))
    nprox = len(make_proxies("1", port))
    busy = [p for p in [port] + [port + i + d + t
                                 for i in range(1, nprox + 1)
                                 for d in (0, 100, 200)
                                 for t in (0, TLS_OFFSET)]
            if not port_free(p)]
    if busy:
        log("bench: ports %s on 127.0.0.1 are in use; pick another base "
            "with BENCH_PORT (now %d)" % (busy, port))
        return 1
    try:
        make_cert()
        up = spawn([TOOLS["upstream"], "-l", "127.0.0.1:%d" % port],
                   "upstream")
        if not wait_port(port, up, 5):
            log("bench: the upstream did not start; see %s/upstream.out"
                % WORK)
            return 1
        if knob("BENCH_SMOKE") == "1":
            rc = smoke(port)
            if rc == 0:     # keep the logs of a failure only
                cleanup()
                shutil.rmtree(WORK, ignore_errors=True)
            else:
                log("bench: logs in %s" % WORK)
            return rc
        started = datetime.datetime.now()
        results = dict(started=started.isoformat(timespec="seconds"),
                       machine=machine(), versions=versions(),
                       settings={k: knob(k) for k in KNOBS}, work=WORK,
                       tls_certificate=CERT["kind"], runs=[])
        for w in knob("BENCH_WORKERS").split():
            log("bench: workers %s" % w)
            run_workers(w, results, port)
        results["seconds"] = round(
            (datetime.datetime.now() - started).total_seconds())
        m = results["machine"]
        text = ("gatehouse bench %s on %s (%d CPUs, Linux %s); %s; %s\n"
                % (results["started"], m["cpu"], m["cpus"], m["kernel"],
                   results["versions"]["nginx"],
                   results["versions"]["haproxy"]))
        text += table(results) + "\n"
        note = https_note(results)
        if note:
            text += "\n" + note + "\n"
        print(text)
        os.makedirs(RESULTS, exist_ok=True)
        stamp = started.strftime("%Y%m%d-%H%M%S")
        # only a full comparison becomes "latest" (what README shows)
        full = not knob("BENCH_SCENARIOS") and not knob("BENCH_PROXIES") \
            and knob("BENCH_AA") != "1"
        names = [stamp + ".json"] + (["latest.json"] if full else [])
        for name in names:
            with open(os.path.join(RESULTS, name), "w") as f:
                json.dump(results, f, indent=1)
        if full:
            with open(os.path.join(RESULTS, "latest.txt"), "w") as f:
                f.write(text)
        log("bench: %s s; results in bench/results/%s; logs in %s" % (
            results["seconds"], " and ".join(names), WORK))
        return 0
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
