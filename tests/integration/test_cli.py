"""Command line: -t, -T, -v, -V, -h, -s reload|quit|stop|reopen, -g, -p."""

import os
import re
import subprocess

from conftest import BIN, pid_alive, simple_server, wait_until


def test_t_success(gatehouse):
    gh = gatehouse(simple_server("location / { return 200 ok; }\n"),
                   start=False)
    r = gh.run("-t")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert (f"gatehouse: the configuration file {gh.conf_path} syntax is ok"
            in lines), r.stderr
    assert (f"gatehouse: configuration file {gh.conf_path} test is successful"
            in lines), r.stderr
    assert r.stdout == ""
    assert not gh.pid_path.exists()


def test_T_dumps_main_and_included_files(gatehouse):
    app = """\
        server {
            listen 127.0.0.1:{port};
            include snippets/loc.conf;
        }
        """
    gh = gatehouse("include sites-enabled/*;\n", start=False, files={
        "sites-enabled/app": app,
        "snippets/loc.conf": 'location / { return 200 "from snippet"; }\n'})
    r = gh.run("-T")
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr
    out = r.stdout
    for name in ("gatehouse.conf", "sites-enabled/app", "snippets/loc.conf"):
        path = gh.conf_dir / name
        block = f"# configuration file {path}:\n{path.read_text()}"
        assert block in out, f"{block!r} not in -T output:\n{out}"
    # order: main file first, includes in the order they are read
    assert out.index(str(gh.conf_path) + ":") \
        < out.index(str(gh.conf_dir / "sites-enabled/app") + ":") \
        < out.index(str(gh.conf_dir / "snippets/loc.conf") + ":")
    assert out.count("# configuration file ") == 3


def test_T_with_error_fails(gatehouse):
    gh = gatehouse(simple_server("bogus_directive;\n"), start=False)
    r = gh.run("-T")
    assert r.returncode == 1
    assert 'unknown directive "bogus_directive"' in r.stderr


def test_v_prints_version(gatehouse):
    r = subprocess.run([BIN, "-v"], capture_output=True, text=True,
                       timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 0
    assert re.search(r"^gatehouse version: gatehouse/\d+\.\d+\.\d+",
                     r.stderr + r.stdout, re.M), (r.stdout, r.stderr)


def test_V_prints_version_and_more(gatehouse):
    r = subprocess.run([BIN, "-V"], capture_output=True, text=True,
                       timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 0
    out = r.stderr + r.stdout
    assert re.search(r"^gatehouse version: gatehouse/\d+\.\d+", out, re.M)
    assert len(out.splitlines()) > 1, out


def test_h_prints_usage(gatehouse):
    r = subprocess.run([BIN, "-h"], capture_output=True, text=True,
                       timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 0
    out = r.stderr + r.stdout
    for opt in ("-t", "-T", "-s", "-c", "-p", "-g"):
        assert opt in out, out


def test_unknown_option(gatehouse):
    r = subprocess.run([BIN, "-Z"], capture_output=True, text=True,
                       timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert "invalid option" in r.stderr, r.stderr


def test_start_writes_pid_and_logs_relative_to_prefix(gatehouse):
    gh = gatehouse(simple_server("location / { return 200 ok; }\n"))
    assert gh.master_pid_file() == gh.pid
    assert gh.get("/").body == b"ok"
    assert gh.error_log_path.exists()     # logs/error.log under -p
    assert gh.stdout() == ""              # nothing on stdout normally


def test_s_reload_applies_new_config(gatehouse):
    gh = gatehouse(simple_server('location / { return 200 "one"; }\n'))
    assert gh.get("/").body == b"one"
    old_workers = gh.wait_workers(1)
    gh.configure(simple_server('location / { return 200 "two"; }\n'))
    gh.reload()
    wait_until(lambda: gh.get("/").body == b"two", 5, what="new config")
    assert gh.proc.poll() is None          # same master, no restart
    assert gh.master_pid_file() == gh.pid
    gh.wait_workers(1, exclude=old_workers)


def test_s_reload_can_add_a_listener(gatehouse):
    gh = gatehouse(simple_server('location / { return 200 "a"; }\n'))
    gh.configure(simple_server('location / { return 200 "a"; }\n') +
                 simple_server('location / { return 200 "b"; }\n',
                               listen="127.0.0.1:{port2}"))
    gh.reload()
    wait_until(lambda: _try_get(gh, gh.port2) == b"b", 5, what="new port")
    assert gh.get("/").body == b"a"


def _try_get(gh, port):
    try:
        return gh.get("/", port=port, timeout=1).body
    except OSError:
        return None


def test_s_quit_stops_gracefully(gatehouse):
    gh = gatehouse(simple_server("location / { return 200 ok; }\n"))
    assert gh.get("/").status == 200
    workers = gh.wait_workers(1)
    r = gh.run("-s", "quit")
    assert r.returncode == 0, r.stderr
    assert gh.proc.wait(timeout=5) == 0
    assert not gh.pid_path.exists()
    wait_until(lambda: not any(pid_alive(w) for w in workers), 3,
               what="workers to exit")


def test_s_stop_stops(gatehouse):
    gh = gatehouse(simple_server("location / { return 200 ok; }\n"))
    r = gh.run("-s", "stop")
    assert r.returncode == 0, r.stderr
    assert gh.proc.wait(timeout=5) == 0
    assert not gh.pid_path.exists()


def test_s_without_running_master_fails(gatehouse):
    gh = gatehouse(simple_server("location / { return 200 ok; }\n"),
                   start=False)
    r = gh.run("-s", "reload")
    assert r.returncode == 1
    assert "gatehouse.pid" in r.stderr, r.stderr


def test_s_reopen_reopens_logs(gatehouse):
    gh = gatehouse(simple_server("""\
        access_log logs/access.log;
        location / { return 200 ok; }
        """))
    gh.get("/first")
    gh.wait_log("access.log", r'"GET /first HTTP/1.1" 200')
    os.rename(gh.logs_dir / "access.log", gh.logs_dir / "access.log.1")
    r = gh.run("-s", "reopen")
    assert r.returncode == 0, r.stderr
    wait_until(lambda: (gh.logs_dir / "access.log").exists(), 5,
               what="reopened access.log")
    gh.get("/second")
    gh.wait_log("access.log", r'"GET /second HTTP/1.1" 200')
    assert "/second" not in gh.log("access.log.1")


def test_g_directives(gatehouse):
    gh = gatehouse(simple_server("location / { return 200 ok; }\n"),
                   workers=None, args=("-g", "worker_processes 2;"))
    assert len(gh.wait_workers(2)) == 2
    assert gh.get("/").body == b"ok"


def test_g_duplicate_of_config_is_an_error(gatehouse):
    gh = gatehouse(simple_server("location / { return 200 ok; }\n"),
                   workers=1, start=False)
    r = gh.run("-t", "-g", "worker_processes 2;")
    assert r.returncode == 1
    assert '"worker_processes" directive is duplicate' in r.stderr, r.stderr


def test_worker_processes_auto(gatehouse):
    gh = gatehouse(simple_server("location / { return 200 ok; }\n"),
                   workers="auto")
    # the CPUs online, or those this process may run on (nginx >= 1.25)
    allowed = {len(os.sched_getaffinity(0)), os.cpu_count()}
    wait_until(lambda: len(gh.workers()) in allowed, 5,
               what=f"one worker per CPU {allowed}, have {gh.workers()}")
