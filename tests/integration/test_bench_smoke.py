"""The benchmark harness cannot rot: `BENCH_SMOKE=1 bench/run.sh` builds
bench/upstream.c and bench/load.c, starts the upstream and each proxy with
the bench configs, and sends a few hundred requests through each (small,
100 KiB, 1 MiB request bodies, websocket echo) and, on their TLS listener
(scenario 9), checks that no session resumes (TLS 1.3 and 1.2), makes ten
full handshakes and sends 200 HTTP/2 requests with h2load (Debian's
nghttp2-client, in `scripts/deps.sh test`).  nginx and HAProxy take part
when installed (`scripts/deps.sh bench`); gatehouse always does.
"""

import os
import random
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("GATEHOUSE_BIN", str(REPO / "build" / "gatehouse"))


def test_bench_smoke():
    proxies = ["gatehouse"] + [p for p in ("nginx", "haproxy")
                               if shutil.which(p)
                               or os.path.exists("/usr/sbin/" + p)]
    for _ in range(5):
        # below the ephemeral range, so no client socket can hold them
        base = random.randrange(20000, 32000, 10)
        env = dict(os.environ, BENCH_SMOKE="1", GATEHOUSE_BIN=BIN,
                   BENCH_PROXIES=" ".join(proxies), BENCH_PORT=str(base))
        r = subprocess.run([str(REPO / "bench" / "run.sh")], env=env,
                           capture_output=True, text=True, timeout=180)
        if "are in use" not in r.stderr:
            break
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    for p in proxies:
        assert "smoke %-10s ok" % p in r.stdout, out
