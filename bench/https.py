#!/usr/bin/python3
"""bench/https.py: TLS termination, gatehouse against Debian's nginx.

Both servers run the same configuration (CONF below): one
worker, `listen ... ssl` with the same ECDSA P-256 certificate, no access
log, `return 200` (so the figures are TLS and HTTP, not proxying).  Two
measures, alternated per round (gatehouse, nginx, gatehouse, nginx...):

  handshakes/s   full handshakes, no resumption: `openssl s_time -new`
                 from BENCH_TLS_CLIENTS processes at once, each connection
                 one handshake and one small request
  requests/s     keep-alive HTTPS: `wrk -t1 -c64` over TLS 1.3

The load runs on CPU 0, the servers on CPU 1 (taskset), as bench/run.sh
does.  Medians of BENCH_ROUNDS rounds of BENCH_DURATION seconds; the
table ends with the ratio gatehouse/nginx.  Every process started here
is stopped at the end (also on error and Ctrl-C).

    bench/https.py                       # defaults: 3 rounds of 5 s
    BENCH_ROUNDS=1 BENCH_DURATION=2 bench/https.py
    GATEHOUSE_BIN=/tmp/gh bench/https.py
"""

import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
DURATION = int(os.environ.get("BENCH_DURATION", "5"))
CLIENTS = int(os.environ.get("BENCH_TLS_CLIENTS", "2"))
PIN = os.environ.get("BENCH_PIN", "1") != "0" and (os.cpu_count() or 1) >= 2
GH = os.environ.get("GATEHOUSE_BIN", str(ROOT / "build" / "gatehouse"))
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PORT = int(os.environ.get("BENCH_TLS_PORT", "28443"))

CONF = """\
worker_processes 1;
daemon off;
master_process on;
{user}
error_log logs/error.log warn;
pid logs/server.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name bench.test;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_session_cache off;
        ssl_session_tickets off;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""

procs = []


def taskset(cpu, argv):
    return (["taskset", "-c", str(cpu)] + argv) if PIN else argv


def stop_all():
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGQUIT)
    deadline = time.monotonic() + 5
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    procs.clear()


def on_signal(signum, frame):
    stop_all()
    sys.exit(1)


def wait_tls(port, timeout=15.0):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 1) as s:
                with ctx.wrap_socket(s, server_hostname="bench.test") as t:
                    t.sendall(b"GET / HTTP/1.1\r\nHost: bench.test\r\n"
                              b"Connection: close\r\n\r\n")
                    if t.recv(100).startswith(b"HTTP/1.1 200"):
                        return True
        except OSError:
            time.sleep(0.05)
    return False


def start(name, binary, work, cert, key):
    prefix = work / name
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    (prefix / "conf").mkdir(exist_ok=True)
    conf = prefix / "conf" / "server.conf"
    conf.write_text(CONF.format(
        port=PORT, cert=cert, key=key,
        user="user root;" if name == "nginx" and os.getuid() == 0 else ""))
    argv = [binary, "-p", str(prefix), "-c", str(conf)]
    p = subprocess.Popen(taskset(1, argv), stdout=subprocess.DEVNULL,
                         stderr=open(prefix / "stderr", "wb"),
                         stdin=subprocess.DEVNULL)
    procs.append(p)
    if not wait_tls(PORT):
        raise RuntimeError(f"{name} did not answer on {PORT}: "
                           f"{(prefix / 'stderr').read_text()}")
    return p


def stop(p):
    p.send_signal(signal.SIGQUIT)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    procs.remove(p)
    # the port must be free before the next server starts
    time.sleep(0.2)


def handshakes():
    """Full handshakes per second, CLIENTS s_time processes at once."""
    argv = taskset(0, ["openssl", "s_time", "-connect",
                       f"127.0.0.1:{PORT}", "-new", "-time", str(DURATION),
                       "-www", "/"])
    ps = [subprocess.Popen(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
          for _ in range(CLIENTS)]
    total = 0
    for p in ps:
        out, _ = p.communicate(timeout=DURATION + 30)
        m = re.search(r"(\d+) connections in [\d.]+s", out)
        if m:
            total += int(m.group(1))
    return total / DURATION


def requests():
    out = subprocess.run(
        taskset(0, ["wrk", "-t1", "-c64", f"-d{DURATION}s",
                    f"https://127.0.0.1:{PORT}/"]),
        capture_output=True, text=True, timeout=DURATION + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return float(m.group(1)) if m else 0.0


def main():
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for tool in ("openssl", "wrk"):
        if not shutil.which(tool):
            sys.exit(f"bench/https.py: {tool} is not installed "
                     f"(scripts/deps.sh bench)")
    work = Path(tempfile.mkdtemp(prefix="gatehouse-https.", dir="/tmp"))
    os.chmod(work, 0o755)
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj",
                    "/CN=bench.test", "-days", "2", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    os.chmod(key, 0o644)
    servers = [("gatehouse", GH), ("nginx", NGINX)]
    servers = [(n, b) for n, b in servers if os.access(b, os.X_OK)]
    results = {n: {"handshakes/s": [], "requests/s": []} for n, _ in servers}
    try:
        for rnd in range(ROUNDS):
            for name, binary in servers:
                p = start(name, binary, work, cert, key)
                hs = handshakes()
                rq = requests()
                stop(p)
                results[name]["handshakes/s"].append(hs)
                results[name]["requests/s"].append(rq)
                print(f"round {rnd + 1} {name:9s} handshakes/s {hs:9.0f} "
                      f"requests/s {rq:9.0f}", flush=True)
    finally:
        stop_all()
    print()
    print(f"{'HTTPS (1 worker)':22s} {'gatehouse':>10s} {'nginx':>10s} "
          f"{'ratio':>7s}")
    for metric in ("handshakes/s", "requests/s"):
        med = {n: statistics.median(v[metric]) for n, v in results.items()
               if v[metric]}
        g, x = med.get("gatehouse"), med.get("nginx")
        ratio = f"{g / x:7.2f}" if g and x else "      -"
        print(f"{metric:22s} {g or 0:10.0f} {x or 0:10.0f} {ratio}")
    print(f"\nwork directory: {work}")


if __name__ == "__main__":
    main()
