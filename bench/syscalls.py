#!/usr/bin/python3
"""bench/syscalls.py: where a proxied request's kernel time goes.

For each proxy (gatehouse, nginx, HAProxy; one worker, the configs of
bench/run.sh; and bench/forwarder.c, a byte forwarder with no HTTP at
all, which shows the floor: what any epoll proxy pays the kernel per
request on this machine) and each load (wrk, keep-alive, `GET /size/N`),
counts per request, over one wrk run:

  - system calls, by name (perf's syscall tracepoints, or `strace -c`
    with SC_TOOL=strace: several times slower, same counts), of the
    proxy's worker only;
  - context switches of the worker and of the upstream (from
    /proc/PID/status): the worker's "nonvoluntary" ones are preemptions
    by the upstream that shares its core when a request wakes it;
  - TCP segments (`nstat`, system-wide: other traffic on the machine
    adds to it; 4 per request is the minimum, with every ACK riding on
    data);
  - CPU us/req of the worker (utime + stime), as scenario 5 of run.sh.

Needs root (or perf_event_paranoid <= -1) for the tracepoints, `perf`,
`wrk`, `nstat` (iproute2), nginx and haproxy; run after `make`.

  bench/syscalls.py
  SC_PATHS=/size/1024 SC_CONNS=256 BENCH_PROXIES=gatehouse bench/syscalls.py

Knobs: BENCH_PROXIES (gatehouse nginx haproxy forwarder), SC_PATHS
(/size/100), SC_CONNS (64), BENCH_DURATION (4 s), BENCH_ROUNDS (1),
SC_PORT (28480: upstream; proxies on the next ports), SC_TOOL (perf;
strace; none: no syscall counts, CPU us/req without a tracer's
overhead), GATEHOUSE_BIN, BENCH_CPU_LOAD / BENCH_CPU_SERVER (0 / 1).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
ENV = os.environ.get

PROXIES = ENV("BENCH_PROXIES", "gatehouse nginx haproxy forwarder").split()
PATHS = ENV("SC_PATHS", "/size/100").split(",")
CONNS = ENV("SC_CONNS", "64").split(",")
DURATION = int(ENV("BENCH_DURATION", "4"))
ROUNDS = int(ENV("BENCH_ROUNDS", "1"))
PORT = int(ENV("SC_PORT", "28480"))
TOOL = ENV("SC_TOOL", "perf")
CPU_LOAD = ENV("BENCH_CPU_LOAD", "0")
CPU_SERVER = ENV("BENCH_CPU_SERVER", "1")
GH = ENV("GATEHOUSE_BIN", os.path.join(ROOT, "build", "gatehouse"))

# the calls a proxy makes per request, and the ones that would betray an
# avoidable round (EAGAIN reads, clock or timer syscalls, option churn)
CALLS = ("recvfrom read readv recvmsg sendto sendmsg write writev "
         "sendfile64 splice epoll_wait epoll_pwait epoll_pwait2 epoll_ctl "
         "accept4 connect close setsockopt getsockopt ioctl clock_gettime "
         "gettimeofday timer_settime io_uring_enter").split()

PROCS = []
TOOLS = {}


def wait_port(port, proc, timeout=15.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def spawn(argv, cpu):
    p = subprocess.Popen(["taskset", "-c", cpu] + argv,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    PROCS.append(p)
    return p


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in PROCS:
        PROCS.remove(p)


def ctx_switches(pid):
    with open("/proc/%s/status" % pid) as f:
        text = f.read()
    vol = int(re.search(r"^voluntary_ctxt_switches:\s*(\d+)", text, re.M)[1])
    nonvol = int(re.search(r"^nonvoluntary_ctxt_switches:\s*(\d+)", text,
                           re.M)[1])
    return vol, nonvol


def cpu_ticks(pid):
    with open("/proc/%s/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def tcp_segments():
    out = subprocess.run(["nstat", "-az", "TcpOutSegs"], capture_output=True,
                         text=True).stdout
    m = re.search(r"TcpOutSegs\s+(\d+)", out)
    return int(m[1]) if m else 0


def make_cert(work):
    """One self-signed ECDSA certificate per run, made once."""
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    pem = os.path.join(work, "cert-key.pem")
    if not os.path.exists(pem):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-subj", "/CN=bench.test", "-days", "2",
                        "-keyout", key, "-out", cert],
                       check=True, capture_output=True, timeout=60)
        with open(pem, "w") as out:
            for f in (cert, key):
                with open(f) as fh:
                    out.write(fh.read())
    return cert, key, pem


class Proxy:
    def __init__(self, kind, work, port, upstream_port):
        self.kind, self.port = kind, port
        self.upstream_port = upstream_port
        self.prefix = os.path.join(work, "px-" + kind)
        for d in ("conf", "logs", "tmp"):
            os.makedirs(os.path.join(self.prefix, d), exist_ok=True)
        src = "haproxy.cfg.in" if kind == "haproxy" else "proxy.conf.in"
        with open(os.path.join(BENCH, src)) as f:
            text = f.read()
        # the scenario-9 TLS server{} of the same file needs a
        # certificate; nothing here connects to it
        cert, key, pem = make_cert(work)
        for k, v in {"@WORKERS@": "1", "@THREADS@": "1",
                     "@TLS_PORT@": str(port + 50), "@CERT@": cert,
                     "@KEY@": key, "@PEM@": pem,
                     "@PORT@": str(port), "@UPSTREAM_PORT@": str(upstream_port),
                     "@NOFILE@": "4096", "@CONNS@": "3000",
                     "@MAXCONN@": "2000", "@PREFIX@": self.prefix}.items():
            text = text.replace(k, v)
        self.conf = os.path.join(self.prefix, "conf", "bench.conf")
        with open(self.conf, "w") as f:
            f.write(text)
        self.proc = None

    def start(self):
        if self.kind == "forwarder":
            argv = [TOOLS["forwarder"], str(self.port),
                    str(self.upstream_port)]
        elif self.kind == "haproxy":
            argv = [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db",
                    "-f", self.conf]
        else:
            binary = GH if self.kind == "gatehouse" else (
                shutil.which("nginx") or "/usr/sbin/nginx")
            argv = [binary, "-p", self.prefix + "/", "-c", self.conf,
                    "-g", "daemon off;"]
        self.proc = spawn(argv, CPU_SERVER)
        if not wait_port(self.port, self.proc):
            raise SystemExit("syscalls: %s did not start" % self.kind)
        time.sleep(0.2)
        kids = subprocess.run(["pgrep", "-P", str(self.proc.pid)],
                              capture_output=True, text=True).stdout.split()
        # nginx and gatehouse: the one worker; HAProxy: its one process
        self.worker = kids[0] if kids else str(self.proc.pid)

    def stop(self):
        if self.proc:
            stop(self.proc)
            self.proc = None


def tracer(pid):
    if TOOL == "none":
        return None
    if TOOL == "strace":
        return subprocess.Popen(["strace", "-c", "-f", "-p", pid],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    have = set(subprocess.run(["perf", "list", "--raw-dump", "tracepoint"],
                              capture_output=True, text=True).stdout.split())
    events = ["raw_syscalls:sys_enter"] + [
        "syscalls:sys_enter_" + c for c in CALLS
        if "syscalls:sys_enter_" + c in have]
    return subprocess.Popen(["perf", "stat", "-x,", "--no-big-num", "-e",
                             ",".join(events), "-p", pid],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def tracer_counts(tr):
    if tr is None:
        return {"TOTAL": 0}, ""
    tr.send_signal(signal.SIGINT)
    err = tr.communicate(timeout=30)[1]
    counts = {}
    if TOOL == "strace":
        for line in err.splitlines():
            f = line.split()
            if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
                counts[f[-1]] = int(f[3])
        counts["TOTAL"] = sum(counts.values())
        return counts, err
    for line in err.splitlines():
        f = line.split(",")
        if len(f) > 3 and f[0].isdigit():
            name = f[2].split(":")[-1].replace("sys_enter_", "")
            counts["TOTAL" if name == "sys_enter" else name] = int(f[0])
    return counts, err


def measure(px, upstream, path, conns):
    url = "http://127.0.0.1:%d%s" % (px.port, path)
    wrk = ["taskset", "-c", CPU_LOAD, "wrk", "-t1", "-c" + conns]
    subprocess.run(wrk + ["-d1", url], capture_output=True)   # warm-up
    tr = tracer(px.worker)
    time.sleep(0.5)          # perf/strace attached
    w0, u0 = ctx_switches(px.worker), ctx_switches(upstream.pid)
    t0, s0 = cpu_ticks(px.worker), tcp_segments()
    out = subprocess.run(wrk + ["-d%d" % DURATION, url], capture_output=True,
                         text=True).stdout
    w1, u1 = ctx_switches(px.worker), ctx_switches(upstream.pid)
    t1, s1 = cpu_ticks(px.worker), tcp_segments()
    counts, raw = tracer_counts(tr)
    m = re.search(r"(\d+) requests in", out)
    if not m or int(m[1]) == 0 or "TOTAL" not in counts:
        raise SystemExit("syscalls: no figures for %s %s:\n%s\n%s"
                         % (px.kind, url, out, raw[-2000:]))
    n = int(m[1])
    hz = os.sysconf("SC_CLK_TCK")
    return {
        "requests": n,
        "calls": {k: v / n for k, v in counts.items()},
        "worker_vol": (w1[0] - w0[0]) / n, "worker_nonvol": (w1[1] - w0[1]) / n,
        "upstream_vol": (u1[0] - u0[0]) / n,
        "segments": (s1 - s0) / n,
        "cpu_us": (t1 - t0) * 1e6 / hz / n,
    }


def report(results):
    for (path, conns), by_proxy in results.items():
        print("\n%s, %s connections (per request%s)" % (
            path, conns, "" if TOOL == "none"
            else "; CPU us/req measured under the tracer"))
        names = list(by_proxy)
        rows = sorted({k for r in by_proxy.values() for s in r
                       for k, v in s["calls"].items() if v} - {"TOTAL"})
        print("%-26s" % "" + "".join("%12s" % p for p in names))

        def row(label, get):
            vals = []
            for p in names:
                xs = sorted(get(s) for s in by_proxy[p])
                vals.append(xs[len(xs) // 2])
            print("%-26s" % label + "".join("%12.3f" % v for v in vals))
        if TOOL != "none":
            row("syscalls", lambda s: s["calls"].get("TOTAL", 0))
        for c in rows:
            row("  " + c, lambda s, c=c: s["calls"].get(c, 0))
        row("ctx switches (vol)", lambda s: s["worker_vol"])
        row("ctx switches (preempted)", lambda s: s["worker_nonvol"])
        row("upstream sleeps", lambda s: s["upstream_vol"])
        row("TCP segments out", lambda s: s["segments"])
        row("CPU us/req", lambda s: s["cpu_us"])
        print("%-26s" % "requests" + "".join(
            "%12d" % by_proxy[p][0]["requests"] for p in names))


def main():
    global GH
    if not os.access(GH, os.X_OK):
        raise SystemExit("syscalls: no gatehouse binary at %s" % GH)
    work = tempfile.mkdtemp(prefix="gatehouse-sc.")
    os.chmod(work, 0o755)   # nginx workers run as nobody
    # a copy, so a rebuild during the run changes nothing
    shutil.copy2(GH, os.path.join(work, "gatehouse"))
    GH = os.path.join(work, "gatehouse")
    up_bin = os.path.join(work, "upstream")
    subprocess.run([ENV("CC", "cc"), "-O2", "-o", up_bin,
                    os.path.join(BENCH, "upstream.c"), "-lcrypto"], check=True)
    TOOLS["forwarder"] = os.path.join(work, "forwarder")
    subprocess.run([ENV("CC", "cc"), "-O2", "-o", TOOLS["forwarder"],
                    os.path.join(BENCH, "forwarder.c")], check=True)
    for p in range(PORT, PORT + 1 + len(PROXIES)):
        try:
            socket.create_connection(("127.0.0.1", p), 0.2).close()
            raise SystemExit("syscalls: port %d is in use (SC_PORT)" % p)
        except OSError:
            pass
    results = {}
    try:
        upstream = spawn([up_bin, "-l", "127.0.0.1:%d" % PORT], CPU_SERVER)
        if not wait_port(PORT, upstream):
            raise SystemExit("syscalls: the upstream did not start")
        for r in range(ROUNDS):
            for path in PATHS:
                for conns in CONNS:
                    for i, kind in enumerate(PROXIES):
                        px = Proxy(kind, work, PORT + 1 + i, PORT)
                        px.start()
                        try:
                            s = measure(px, upstream, path, conns)
                        finally:
                            px.stop()
                        results.setdefault((path, conns), {}).setdefault(
                            kind, []).append(s)
                        print("round %d %s c%s %-9s CPU us/req %.2f%s"
                              % (r + 1, path, conns, kind, s["cpu_us"],
                                 "" if TOOL == "none" else
                                 "  syscalls/req %.3f" % s["calls"]["TOTAL"]),
                              file=sys.stderr)
    finally:
        for p in list(reversed(PROCS)):
            stop(p)
    report(results)
    print("\n(medians over %d round(s) of %d s; work directory %s)"
          % (ROUNDS, DURATION, work))


def on_signal(signum, frame):
    for p in list(reversed(PROCS)):
        stop(p)
    sys.exit(1)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    main()
