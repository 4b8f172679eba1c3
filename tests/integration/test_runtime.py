"""Runtime set-up: listen forms, user, worker_rlimit_nofile, daemon on,
error_log levels, paths relative to the config directory and the prefix."""

import grp
import os
import pwd
import signal
import socket
import subprocess
import time

import pytest

from conftest import (Conn, build_request, is_gatehouse_pid, pid_alive,
                      simple_server, wait_until)


class UnixConn(Conn):
    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.received_any = False


def test_listen_unix_socket(gatehouse):
    gh = gatehouse(simple_server('location / { return 200 "tcp"; }\n')
                   + simple_server('location / { return 200 "unix $uri"; }\n',
                                   listen="unix:{prefix}/logs/gh.sock"))
    path = str(gh.logs_dir / "gh.sock")
    wait_until(lambda: os.path.exists(path), 5, what="unix socket")
    with UnixConn(path) as c:
        r = c.request("/u")
        assert (r.status, r.text) == (200, "unix /u")
        assert c.request("/v").text == "unix /v"      # keep-alive
    assert gh.get("/").text == "tcp"


def test_listen_parameters(gatehouse):
    gh = gatehouse(simple_server(
        'location / { return 200 "params"; }\n',
        listen="127.0.0.1:{port} default_server backlog=64 reuseport"))
    for _ in range(3):
        assert gh.get("/").text == "params"


def test_listen_same_port_two_servers_share_it(gatehouse):
    gh = gatehouse(
        simple_server('server_name a.test; location / { return 200 "a"; }\n')
        + simple_server('server_name b.test; location / { return 200 "b"; }\n'))
    assert gh.get("/", host="b.test").text == "b"
    assert gh.get("/", host="a.test").text == "a"


def test_port_in_use_fails_to_start(gatehouse):
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        gh = gatehouse(simple_server("", listen=f"127.0.0.1:{port}"),
                       start=False)
        rc, err = gh.start_fail()
        assert rc == 1
        assert "Address already in use" in err or \
            "Address already in use" in gh.error_log(), err
        assert not gh.pid_path.exists()
    finally:
        busy.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="user needs root")
def test_user_directive_drops_privileges(gatehouse):
    nobody = pwd.getpwnam("nobody")
    # as in nginx, the group defaults to the user's name; Debian has none
    group = grp.getgrgid(nobody.pw_gid).gr_name
    gh2 = gatehouse(conf=(
        f"user nobody {group};\n"
        "daemon off;\nmaster_process on;\nworker_processes 1;\n"
        "error_log logs/error.log info;\npid logs/gatehouse.pid;\n"
        "events { worker_connections 512; }\n"
        "http {\n" + simple_server('location / { return 200 "ok"; }\n')
        + "}\n"))
    (w,) = gh2.wait_workers(1)

    def uids():
        with open(f"/proc/{w}/status") as f:
            return next(ln for ln in f if ln.startswith("Uid:")).split()[1:]
    # the worker drops privileges right after fork: poll, bounded
    wait_until(lambda: all(int(u) == nobody.pw_uid for u in uids()), 5,
               what="worker running as nobody")
    assert gh2.get("/").text == "ok"
    assert os.stat(f"/proc/{gh2.pid}").st_uid == 0   # master stays root


def test_worker_rlimit_nofile(gatehouse):
    gh = gatehouse(conf=(
        "worker_rlimit_nofile 1234;\n"
        "daemon off;\nmaster_process on;\nworker_processes 1;\n"
        "error_log logs/error.log info;\npid logs/gatehouse.pid;\n"
        "events { worker_connections 512; }\n"
        "http {\n" + simple_server('location / { return 200 "ok"; }\n')
        + "}\n"))
    (w,) = gh.wait_workers(1)

    def soft_limit():
        with open(f"/proc/{w}/limits") as f:
            line = next(ln for ln in f if ln.startswith("Max open files"))
        return line.split()[3]
    wait_until(lambda: soft_limit() == "1234", 5,
               what="worker_rlimit_nofile applied")
    assert gh.get("/").text == "ok"


def test_daemon_on(gatehouse):
    gh = gatehouse(simple_server('location / { return 200 "daemon"; }\n'),
                   start=False)
    text = gh.conf_path.read_text().replace("daemon off;", "daemon on;")
    gh.conf_path.write_text(text)
    r = subprocess.run(gh.cmd(), capture_output=True, text=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    master = None
    try:
        assert r.returncode == 0, r.stderr
        assert r.stdout == ""
        wait_until(lambda: gh.pid_path.exists()
                   and gh.pid_path.read_text().strip(), 5, what="pid file")
        master = int(gh.pid_path.read_text())
        assert is_gatehouse_pid(master)
        wait_until(lambda: _try(gh), 5, what="daemon answering")
        assert gh.get("/").text == "daemon"
        q = gh.run("-s", "quit")
        assert q.returncode == 0, q.stderr
        wait_until(lambda: not pid_alive(master), 5, what="daemon exit")
        assert not gh.pid_path.exists()
    finally:
        if master and pid_alive(master) and is_gatehouse_pid(master):
            os.kill(master, signal.SIGKILL)


def _try(gh):
    try:
        return gh.get("/", timeout=1).status == 200
    except OSError:
        return False


def test_several_error_logs_with_levels(gatehouse):
    gh = gatehouse(conf="""\
        daemon off;
        master_process on;
        worker_processes 1;
        error_log logs/info.log info;
        error_log logs/warn.log warn;
        pid logs/gatehouse.pid;
        events { worker_connections 64; }
        http {
            server {
                listen 127.0.0.1:{port};
                location / { return 200 "ok"; }
            }
        }
        """)
    assert gh.raw(b"BAD LINE HERE\r\n\r\n").status == 400
    # "client sent invalid ..." is an info-level message in nginx
    gh.wait_log("info.log", r"\[info\].*client")
    time.sleep(0.1)
    assert "[info]" not in gh.log("warn.log")


def test_relative_paths_custom_conf_dir(gatehouse):
    """include resolves against the main config's directory, pid/logs
    against the prefix."""
    gh = gatehouse(start=False)
    etc = gh.prefix / "etc"
    gh.conf_dir = etc
    gh.conf_path = etc / "main.conf"
    gh.write("main.conf", gh.main_part() + "http {\n    include inc/*.conf;\n}\n")
    gh.write("inc/a.conf", gh.subst(
        simple_server('location / { return 200 "from etc/inc"; }\n')))
    gh.wait_ports = [gh.port]
    gh.start()
    assert gh.get("/").text == "from etc/inc"
    assert (gh.prefix / "logs" / "gatehouse.pid").exists()


def test_recursive_include_is_an_error(gatehouse):
    gh = gatehouse("include conf.d/*.conf;\n", start=False, files={
        "conf.d/self.conf": "include conf.d/self.conf;\n"})
    r = gh.run("-t")
    assert r.returncode == 1
    assert "[emerg]" in r.stderr and "include" in r.stderr, r.stderr


def test_no_stdout_output_in_normal_operation(gatehouse):
    gh = gatehouse(simple_server('location / { return 200 "ok"; }\n'))
    with gh.conn() as c:
        c.send(build_request("/") * 3)
        for _ in range(3):
            assert c.read_response().status == 200
    gh.reload()
    wait_until(lambda: len(gh.workers()) == 1, 5)
    gh.stop()
    assert gh.stdout() == ""
