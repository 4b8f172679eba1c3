"""Master/worker processes: reload under load, bad reload, dead workers."""

import os
import re
import signal
import socket
import threading
import time

from conftest import ConnectionClosed, simple_server, wait_until


def version_conf(v):
    return simple_server(f'location / {{ return 200 "{v}"; }}\n')


class ClientLoop:
    """Two client threads hammering the server: one opens a new connection
    per request, one reuses a keep-alive connection.  Any failed request
    is recorded, except the one case HTTP allows a client to retry: the
    server closed an idle kept-alive connection before sending any byte
    of the response (RFC 9112 section 9.3.1)."""

    def __init__(self, gh):
        self.gh = gh
        self.stop = threading.Event()
        self.failures = []
        self.counts = {"new": 0, "keepalive": 0, "retries": 0}
        self.last = {"new": [], "keepalive": []}
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.new_loop, daemon=True),
                        threading.Thread(target=self.ka_loop, daemon=True)]

    def record(self, kind, r):
        with self.lock:
            if r.status != 200:
                self.failures.append(f"{kind}: status {r.status} {r.body!r}")
                return
            self.counts[kind] += 1
            self.last[kind].append(r.body.decode())
            del self.last[kind][:-20]

    def new_loop(self):
        while not self.stop.is_set():
            try:
                r = self.gh.get("/", timeout=5)
            except Exception as e:       # noqa: BLE001 - any failure counts
                with self.lock:
                    self.failures.append(f"new: {e!r}")
                continue
            self.record("new", r)

    def ka_loop(self):
        c = None
        while not self.stop.is_set():
            fresh = c is None
            try:
                if fresh:
                    c = self.gh.conn(timeout=5)
                r = c.request("/")
            except (ConnectionClosed, ConnectionResetError,
                    BrokenPipeError) as e:
                got = getattr(e, "got", b"")
                c.close() if c else None
                c = None
                if not fresh and not got:
                    with self.lock:
                        self.counts["retries"] += 1
                    continue
                with self.lock:
                    self.failures.append(f"keepalive: {e!r} got={got!r}")
                continue
            except Exception as e:       # noqa: BLE001
                with self.lock:
                    self.failures.append(f"keepalive: {e!r}")
                if c:
                    c.close()
                c = None
                continue
            self.record("keepalive", r)
            if (r.header("Connection") or "").lower() == "close":
                c.close()
                c = None
        if c:
            c.close()

    def settled_on(self, text):
        with self.lock:
            return all(len(v) >= 5 and set(v[-5:]) == {text}
                       for v in self.last.values())

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)
        assert not any(t.is_alive() for t in self.threads), "client hung"


def test_reload_under_client_loop_loses_no_request(gatehouse):
    gh = gatehouse(version_conf("v0"))
    with ClientLoop(gh) as loop:
        wait_until(lambda: loop.settled_on("v0"), 5, what="v0 traffic")
        for v in ("v1", "v2", "v3"):
            gh.configure(version_conf(v))
            gh.reload()
            wait_until(lambda: loop.settled_on(v), 5,
                       what=f"responses to switch to {v}: {loop.last}")
            time.sleep(0.2)      # keep the traffic going a little longer
    assert loop.failures == [], loop.failures[:10]
    assert loop.counts["new"] > 20 and loop.counts["keepalive"] > 20, \
        loop.counts
    print("client loop:", loop.counts)
    assert gh.get("/").body == b"v3"
    gh.wait_workers(1)            # old workers are gone


def test_bad_reload_keeps_old_config(gatehouse):
    gh = gatehouse(version_conf("good"))
    workers = gh.wait_workers(1)
    gh.configure(simple_server("""\
        location / { return 200 "bad"; }
        bogus_directive on;
        """))
    where = gh.where("bogus_directive")
    gh.signal(signal.SIGHUP)
    gh.wait_log("error.log", r'\[emerg\].*unknown directive "bogus_directive"'
                r' in ' + re.escape(where))
    time.sleep(0.2)
    for _ in range(5):
        r = gh.get("/")
        assert (r.status, r.body) == (200, b"good")
    assert gh.proc.poll() is None
    assert gh.workers() == workers
    # a fixed config is then picked up by the next reload
    gh.configure(version_conf("fixed"))
    gh.signal(signal.SIGHUP)
    wait_until(lambda: gh.get("/").body == b"fixed", 5, what="fixed config")


def test_bad_reload_under_load_fails_no_request(gatehouse):
    gh = gatehouse(version_conf("good"))
    with ClientLoop(gh) as loop:
        wait_until(lambda: loop.settled_on("good"), 5, what="traffic")
        gh.configure(simple_server("location / { return 200 'x' }\n"))
        gh.signal(signal.SIGHUP)
        gh.wait_log("error.log", r"\[emerg\]")
        time.sleep(0.3)
        assert loop.settled_on("good")
    assert loop.failures == [], loop.failures[:10]


def test_killed_worker_is_replaced(gatehouse):
    gh = gatehouse(version_conf("alive"))
    (w,) = gh.wait_workers(1)
    os.kill(w, signal.SIGKILL)
    t0 = time.monotonic()
    (w2,) = gh.wait_workers(1, timeout=2, exclude=[w])
    assert time.monotonic() - t0 < 2
    assert w2 != w
    for _ in range(5):
        assert gh.get("/").body == b"alive"
    gh.wait_log("error.log", r"\b(signal 9|SIGKILL)\b")


def test_killed_worker_of_two_requests_keep_working(gatehouse):
    gh = gatehouse(version_conf("alive"), workers=2)
    ws = gh.wait_workers(2)
    os.kill(ws[0], signal.SIGKILL)
    for _ in range(20):
        r = gh.get("/", timeout=3)
        assert (r.status, r.body) == (200, b"alive")
    new = gh.wait_workers(2, timeout=2, exclude=[ws[0]])
    assert ws[1] in new


def test_reload_then_killed_worker_gets_new_config(gatehouse):
    gh = gatehouse(version_conf("old"))
    old = gh.wait_workers(1)
    gh.configure(version_conf("new"))
    gh.reload()
    (w,) = gh.wait_workers(1, exclude=old)
    wait_until(lambda: gh.get("/").body == b"new", 5, what="new config")
    os.kill(w, signal.SIGKILL)
    gh.wait_workers(1, timeout=2, exclude=old + [w])
    for _ in range(5):
        assert gh.get("/").body == b"new"


def test_quit_with_idle_keepalive_connection_exits(gatehouse):
    gh = gatehouse(version_conf("x"))
    c = gh.conn()
    assert c.request("/").body == b"x"
    gh.signal(signal.SIGQUIT)
    # the idle keep-alive connection is closed, the master exits
    assert c.wait_closed(3), "idle keep-alive connection kept open on QUIT"
    assert gh.proc.wait(timeout=5) == 0
    c.close()


def test_term_fast_stop(gatehouse):
    gh = gatehouse(version_conf("x"))
    gh.wait_workers(1)
    gh.signal(signal.SIGTERM)
    assert gh.proc.wait(timeout=5) == 0
    assert not gh.pid_path.exists()


def test_quit_lets_in_flight_request_finish(gatehouse):
    gh = gatehouse(version_conf("finished"))
    with gh.conn() as c:
        c.send(b"GET /inflight HTTP/1.1\r\nHost: localhost\r\n")
        time.sleep(0.1)
        gh.signal(signal.SIGQUIT)
        time.sleep(0.3)
        assert gh.proc.poll() is None, "master exited with a request in flight"
        c.send(b"X-Last: 1\r\n\r\n")
        r = c.read_response()
        assert (r.status, r.text) == (200, "finished")
        assert c.wait_closed(2)
    assert gh.proc.wait(timeout=5) == 0


def test_pid_file_written_after_listening_sockets(gatehouse):
    gh = gatehouse(version_conf("x") + simple_server(
        'location / { return 200 "y"; }\n', listen="127.0.0.1:{port2}"),
        start=False)
    gh.start(wait=False)
    wait_until(lambda: gh.pid_path.exists() or gh.proc.poll() is not None, 10,
               what="pid file")
    assert gh.proc.poll() is None, gh.stderr()
    # the moment the pid file exists, both ports accept connections
    for port in (gh.port, gh.port2):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    gh.wait_started()
