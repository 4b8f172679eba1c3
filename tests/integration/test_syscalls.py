"""System calls a worker makes per request, counted with strace on the
real worker: the regressions that cost CPU per request without changing
any answer.

- An accepted connection costs no setsockopt(): TCP_NODELAY is set once on
  the listening socket and Linux copies it to every accepted socket.
- Closing a connection costs no EPOLL_CTL_DEL: close() ends the
  registration (a worker never forks nor dups a connection's socket).
- A keep-alive proxied request in a steady state costs its socket calls
  and nothing else: no memory-management call (madvise, brk, mmap,
  munmap) per request, no clock or timer call.
- A large body relayed by splice() takes a pipe the worker kept from an
  earlier relay: no pipe2() and no close() per response.
"""

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import asan_binary, wait_until

from upstreams import pattern, sha256

STRACE = shutil.which("strace")

pytestmark = pytest.mark.skipif(STRACE is None,
                                reason="strace missing (scripts/deps.sh test "
                                       "installs it)")


def proxy_conf(up_addr, extra=""):
    return f"""\
        {extra}
        upstream backend {{
            server {up_addr};
            keepalive 64;
        }}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{
                proxy_http_version 1.1;
                proxy_set_header Connection "";
                proxy_pass http://backend;
            }}
        }}
    """


class Strace:
    """strace -f on one pid, its output in a file, stopped with SIGINT."""

    def __init__(self, pid, path, calls=None):
        argv = [STRACE, "-f", "-qq", "-o", str(path), "-p", str(pid)]
        if calls:
            argv[1:1] = ["-e", "trace=" + ",".join(calls)]
        self.path = path
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        # attached once the worker's status shows a tracer
        def traced():
            with open(f"/proc/{pid}/status") as f:
                m = re.search(r"^TracerPid:\s*(\d+)", f.read(), re.M)
            return m and int(m[1]) != 0
        wait_until(traced, 10, what="strace attached")

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(10)
        return [ln for ln in self.path.read_text().splitlines()
                if ln.strip() and "resumed>" not in ln]


def http_get(port, path, keep_alive):
    conn = "keep-alive" if keep_alive else "close"
    return (f"GET {path} HTTP/1.1\r\nHost: localhost\r\n"
            f"Connection: {conn}\r\n\r\n").encode()


def read_response(s):
    """One response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, "connection closed before the head"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
    assert m, head
    n = int(m[1])
    while len(body) < n:
        chunk = s.recv(65536)
        assert chunk, "connection closed in the body"
        body += chunk
    assert len(body) == n
    return body


def traced_gets(gh, tmp_path, size, n, calls):
    """On one keep-alive connection: 3 GETs to warm up (upstream pool,
    pipes, buffers), then n GETs with `calls` traced on the worker; each
    response must be `size` bytes.  Returns strace's lines."""
    with socket.create_connection(("127.0.0.1", gh.port), 5) as s:
        for i in range(3):
            s.sendall(http_get(gh.port, f"/w{i}", keep_alive=True))
            assert len(read_response(s)) == size
        [worker] = gh.workers()
        st = Strace(worker, tmp_path / "strace.out", calls)
        for i in range(n):
            s.sendall(http_get(gh.port, f"/r{i}", keep_alive=True))
            assert len(read_response(s)) == size
        return st.stop()


def test_accept_and_close_cost_no_setsockopt_nor_epoll_del(
        gatehouse, upstream, tmp_path):
    up = upstream()
    gh = gatehouse(proxy_conf(up.addr))
    gh.get("/warm")                        # upstream connection pooled
    [worker] = gh.workers()
    st = Strace(worker, tmp_path / "strace.out",
                ["setsockopt", "epoll_ctl", "accept4", "close"])
    n = 20
    for i in range(n):
        with socket.create_connection(("127.0.0.1", gh.port), 5) as s:
            s.sendall(http_get(gh.port, f"/c{i}", keep_alive=False))
            read_response(s)
            # the worker closes: wait for its FIN so the close is traced
            s.settimeout(5)
            assert s.recv(1) == b""
    lines = st.stop()
    accepts = [ln for ln in lines if "accept4(" in ln and "= -1" not in ln]
    assert len(accepts) == n, lines
    # every accepted socket has TCP_NODELAY from the listener
    assert not [ln for ln in lines if "setsockopt(" in ln], lines
    # close() ends the registration: no EPOLL_CTL_DEL before it
    assert not [ln for ln in lines if "EPOLL_CTL_DEL" in ln], lines
    adds = [ln for ln in lines if "EPOLL_CTL_ADD" in ln]
    assert len(adds) == n, lines


def test_accepted_socket_has_tcp_nodelay(gatehouse, upstream, tmp_path):
    """What the listener passes on, read off the worker's own socket: a
    duplicate of its fd (pidfd_getfd) answers getsockopt."""
    up = upstream()
    gh = gatehouse(proxy_conf(up.addr))
    [worker] = gh.workers()
    with socket.create_connection(("127.0.0.1", gh.port), 5) as s:
        s.sendall(http_get(gh.port, "/x", keep_alive=True))
        read_response(s)
        # the worker's end of this connection: our port is its peer's
        with worker_socket(worker, gh.port, s.getsockname()[1]) as dup:
            assert dup.getsockopt(socket.IPPROTO_TCP,
                                  socket.TCP_NODELAY) == 1


def worker_fd_for_peer(pid, port, peer_port):
    """The worker's fd of its IPv4 connection from local `port` (None:
    any) to `peer_port` (TIME_WAIT entries of earlier tests have inode 0,
    and the other end of a loopback connection is not the worker's)."""
    inodes = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for ln in f:
            parts = ln.split()
            loc_port = int(parts[1].split(":")[1], 16)
            rem_port = int(parts[2].split(":")[1], 16)
            if (port is None or loc_port == port) \
                    and rem_port == peer_port and parts[9] != "0":
                inodes.add(parts[9])
    assert inodes, f"no socket with remote port {peer_port}"
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return int(fd)
    raise AssertionError(f"worker {pid} has no fd for sockets {inodes}")


def worker_socket(pid, port, peer_port):
    """A duplicate (pidfd_getfd) of the worker's socket of its connection
    from local `port` (None: any) to `peer_port`: it answers getsockopt
    for the worker's own socket."""
    fd = worker_fd_for_peer(pid, port, peer_port)
    libc = ctypes.CDLL(None, use_errno=True)
    SYS_pidfd_getfd = 438
    pidfd = os.pidfd_open(pid)
    try:
        newfd = libc.syscall(SYS_pidfd_getfd, pidfd, fd, 0)
    finally:
        os.close(pidfd)
    if newfd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return socket.socket(fileno=newfd)


def test_keepalive_request_makes_no_memory_or_clock_calls(
        gatehouse, upstream, tmp_path):
    up = upstream()
    # access_log off: its write per request is not what is counted here
    gh = gatehouse(proxy_conf(up.addr, "access_log off;"))
    # more connections in flight than the worker caches request arenas
    # for (16): the ones beyond are freed to malloc every round
    conns = [socket.create_connection(("127.0.0.1", gh.port), 5)
             for _ in range(40)]
    stop = threading.Event()
    done = [0]
    errors = []

    def load():
        # steady load for the whole traced window: the heap trim (which
        # runs once the load drops) must never run under it
        try:
            i = 0
            while not stop.is_set():
                for s in conns:
                    s.sendall(http_get(gh.port, f"/k{i}", keep_alive=True))
                for s in conns:
                    read_response(s)
                done[0] += len(conns)
                i += 1
        except Exception as e:           # reported below
            errors.append(e)
    t = threading.Thread(target=load)
    t.start()
    try:
        wait_until(lambda: done[0] >= 400 or errors, 10, what="warm-up")
        [worker] = gh.workers()
        st = Strace(worker, tmp_path / "strace.out")
        time.sleep(0.5)
        lines = st.stop()
    finally:
        stop.set()
        t.join(10)
        for s in conns:
            s.close()
    assert not errors, errors
    names = [m[1] for ln in lines
             if (m := re.match(r"^\d+\s+([a-z_0-9]+)\(", ln))]
    assert names, lines
    counts = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    memory = {k: v for k, v in counts.items()
              if k in ("madvise", "brk", "mmap", "munmap", "mremap")}
    # AddressSanitizer's allocator maps and unmaps on its own
    if not asan_binary():
        assert not memory, counts
    clock = {k: v for k, v in counts.items()
             if k.startswith(("clock_", "timer", "gettimeofday"))}
    assert not clock, counts
    # each request: read the client, write the upstream, read it, write
    # the client (two sendto); the loop's waits are amortised
    requests = counts.get("sendto", 0) // 2
    assert requests >= 100, counts
    assert len(names) <= requests * 5 + 40, counts


def test_spliced_response_reuses_a_pipe(gatehouse, upstream, tmp_path):
    # large enough to be spliced once the first buffers are out
    n = 300007
    up = upstream(pattern(n))
    gh = gatehouse(proxy_conf(up.addr, "access_log off;"))
    lines = traced_gets(gh, tmp_path, n, 20,
                        ["splice", "pipe2", "close", "fcntl"])
    splices = [ln for ln in lines if "splice(" in ln]
    assert len(splices) >= 20 * 2, lines       # in and out, each response
    others = [ln for ln in lines if "splice(" not in ln]
    assert not others, others


def test_large_bodies_in_memory_make_no_heap_calls(gatehouse, upstream,
                                                   tmp_path):
    """1 MiB request bodies held in memory (client_body_buffer_size 2m)
    on 4 connections at once: each body's buffer is freed when its
    request ends and taken again by the next.  glibc's own trim on free()
    used to shrink the heap's top after most of them (a brk() per request)
    and the next body grew it again; the worker now trims only from its
    idle timer."""
    up = upstream(lambda req, w: w.reply(200, [], b"ok"))
    gh = gatehouse(proxy_conf(up.addr, """
        access_log off;
        client_max_body_size 4m;
        client_body_buffer_size 2m;
    """))
    body = b"b" * (1 << 20)
    req = (b"POST /p HTTP/1.1\r\nHost: localhost\r\nContent-Length: "
           + str(len(body)).encode() + b"\r\n\r\n" + body)
    conns = [socket.create_connection(("127.0.0.1", gh.port), 10)
             for _ in range(4)]
    try:
        def burst(rounds):
            for _ in range(rounds):
                for s in conns:
                    s.sendall(req)
                for s in conns:
                    assert read_response(s) == b"ok"
        burst(3)
        [worker] = gh.workers()
        st = Strace(worker, tmp_path / "strace.out",
                    ["brk", "mmap", "munmap", "madvise", "mremap"])
        burst(10)                          # 40 bodies
        lines = st.stop()
    finally:
        for s in conns:
            s.close()
    if not asan_binary():
        assert len(lines) <= 2, lines


def test_response_body_batch_is_one_readv(gatehouse, upstream, tmp_path):
    """A 40,000-byte body (below the splice threshold) comes through
    proxy_buffers 8 4k: one readv fills the batch's eight buffers, where a
    recv per 4 KiB buffer took ten calls per response."""
    n = 40000
    up = upstream(pattern(n))
    gh = gatehouse(proxy_conf(up.addr, "access_log off;"))
    lines = traced_gets(gh, tmp_path, n, 20,
                        ["recvfrom", "recvmsg", "read", "readv"])
    reads = [ln for ln in lines if "EAGAIN" not in ln]
    # per response: the client's request, the upstream's head, then the
    # body's 36 KiB in one or two readv (as the upstream's writes arrive)
    assert len(reads) <= 20 * 5, lines
    assert [ln for ln in lines if "readv(" in ln], lines


def test_spooled_body_is_spliced_into_its_temp_file(gatehouse, upstream,
                                                    tmp_path):
    """A 1 MiB Content-Length body past client_body_buffer_size goes from
    the socket to its temp file through a pipe (splice): one copy, into
    the page cache, where recv + pwrite made two.  Only what came with
    the head is written with pwrite; the body still arrives whole."""
    seen = []

    def handler(req, w):
        seen.append((req.body_len, req.body_sha256))
        w.reply(200, [], b"ok")
    up = upstream(handler)
    gh = gatehouse(proxy_conf(up.addr, """
        access_log off;
        client_max_body_size 4m;
        client_body_buffer_size 16k;
    """))
    bodies = [bytes([65 + i]) * (1 << 20) + b"%d" % i for i in range(6)]

    def post(s, body):
        s.sendall(b"POST /p HTTP/1.1\r\nHost: localhost\r\nContent-Length: "
                  + str(len(body)).encode() + b"\r\n\r\n" + body)
        assert read_response(s) == b"ok"
    with socket.create_connection(("127.0.0.1", gh.port), 10) as s:
        post(s, bodies[0])
        [worker] = gh.workers()
        st = Strace(worker, tmp_path / "strace.out",
                    ["splice", "pwrite64", "recvfrom"])
        for body in bodies[1:]:
            post(s, body)
        lines = st.stop()
    assert seen == [(len(b), sha256(b)) for b in bodies]
    splices = [ln for ln in lines if "splice(" in ln]
    pwrites = [ln for ln in lines if "pwrite64(" in ln]
    assert len(splices) >= 2 * 5, lines
    # at most the part that came with the head, per body
    assert len(pwrites) <= 2 * 5, lines
