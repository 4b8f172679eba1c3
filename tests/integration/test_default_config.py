"""The shipped configuration (conf/) that `make run` starts: it must load,
and proxy /app/ to the demo app with the recommended header block."""

import json
import subprocess
import sys
import time
from pathlib import Path

from conftest import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _copy_conf(gh, port, app_port):
    for src in (ROOT / "conf").rglob("*"):
        if src.is_dir():
            continue
        rel = src.relative_to(ROOT / "conf")
        text = src.read_text()
        text = text.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        text = text.replace("127.0.0.1:8081", f"127.0.0.1:{app_port}")
        gh.write(str(rel), text)


def test_default_config_passes_t(gatehouse):
    gh = gatehouse("", start=False)
    _copy_conf(gh, gh.port, free_port())
    r = gh.run("-t")
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr


def test_make_run_setup_proxies_demo_app(gatehouse):
    gh = gatehouse("", start=False)
    app_port = free_port()
    _copy_conf(gh, gh.port, app_port)
    # worker_processes auto in the shipped file: keep the test light
    gh.write("gatehouse.conf", (gh.conf_dir / "gatehouse.conf").read_text()
             .replace("worker_processes auto;", "worker_processes 1;")
             .replace("pid logs/gatehouse.pid;", "pid logs/gatehouse.pid;\n"
                      "daemon off;"))
    app = subprocess.Popen([sys.executable if sys.executable.startswith(
        "/usr/bin") else "/usr/bin/python3", str(ROOT / "demo" / "app.py"),
        str(app_port)])
    try:
        import socket

        def app_up():
            try:
                socket.create_connection(("127.0.0.1", app_port), 0.2).close()
                return True
            except OSError:
                return False
        wait_until(app_up, 5, what="demo app")
        gh.wait_ports = [gh.port]
        gh.start()
        r = gh.get("/app/hello?x=1", headers=[("X-Forwarded-For", "10.1.1.1")])
        assert r.status == 200, r
        doc = json.loads(r.body)
        assert doc["path"] == "/hello?x=1"
        h = doc["headers"]
        assert h["Host"] == "localhost"
        assert h["X-Real-IP"] == "127.0.0.1"
        assert h["X-Forwarded-For"] == "10.1.1.1, 127.0.0.1"
        assert h["X-Forwarded-Proto"] == "http"
        assert h["X-Forwarded-Port"] == str(gh.port)
        assert h["Connection"] == "upgrade"
        assert "Upgrade" not in h          # empty $http_upgrade: not sent
        assert gh.get("/app").status == 301
        assert gh.get("/health").body == b"ok\n"
    finally:
        app.terminate()
        app.wait(5)
