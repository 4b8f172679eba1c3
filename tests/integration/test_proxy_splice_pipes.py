"""Large Content-Length bodies are relayed with splice(2) through a pipe,
and the worker keeps its empty pipes (at most 16) for the next relays
instead of making and closing one per response.

The proxy splices only once what came with the head and the first
buffers is out and at least 64 KiB remain, so the bodies here are larger
than ~150 KB.

What a client must see: every body byte-exact, however relays interleave,
end early or are abandoned, and never a byte of another response, which a
pipe handed on with data still in it would deliver.  What the worker must
do: reuse one pipe for sequential responses, keep no more than 16 idle,
and close a pipe that still held bytes.  The worker's pipes are read from
/proc/<worker>/fd ("pipe:[inode]"), with worker_processes 1.
"""

import functools
import hashlib
import os
import random
import socket
import struct
import threading
import time

from conftest import Conn, simple_server, wait_until
from upstreams import sha256

CACHE_MAX = 16              # GH_SPLICE_PIPE_CACHE


@functools.lru_cache(maxsize=None)
def block_of(seed):
    """4096 bytes particular to seed: a body is this block repeated, so
    bytes of another response are told apart."""
    return b"".join(hashlib.sha256(b"%d-%d" % (seed, i)).digest()
                    for i in range(128))


def pieces(n, seed):
    """The n-byte body of seed, in pieces of 64 KiB at most."""
    big = block_of(seed) * 16
    full, rest = divmod(n, len(big))
    for _ in range(full):
        yield big
    if rest:
        yield big[:rest]


@functools.lru_cache(maxsize=None)
def expected_sha(n, seed):
    h = hashlib.sha256()
    for p in pieces(n, seed):
        h.update(p)
    return h.hexdigest()


def _ints(target):
    return [int(x) for x in target.split("?")[0].strip("/").split("/")[1:]]


def handler(req, w):
    """/body/N/SEED      N bytes of SEED, Content-Length
       /cut/N/M/SEED     Content-Length N, M bytes, then a close
       /reset/N/M/SEED   the same, then a RST"""
    kind = req.target.strip("/").split("/")[0]
    args = _ints(req.target)
    n, seed = args[0], args[-1]
    head = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % n)
    w.close()
    if kind == "body":
        w.send(head)
        for p in pieces(n, seed):
            w.send(p)
        return
    # the head alone first, so that what follows is relayed by splice
    w.send(head)
    time.sleep(0.05)
    for p in pieces(args[1], seed):
        w.send(p)
    time.sleep(0.05)
    if kind == "reset":
        w.reset()


def start(gatehouse, upstream):
    up = upstream(handler)
    gh = gatehouse(simple_server(f"""
        location / {{
            proxy_pass http://{up.addr};
        }}
    """))
    [pid] = gh.workers()
    return gh, pid


def pipes_of(pid):
    """{inode: number of fds} of the process's pipes."""
    out = {}
    d = f"/proc/{pid}/fd"
    for fd in os.listdir(d):
        try:
            link = os.readlink(f"{d}/{fd}")
        except OSError:
            continue
        if link.startswith("pipe:["):
            ino = int(link[6:-1])
            out[ino] = out.get(ino, 0) + 1
    return out


def new_pipes(pid, base):
    return {i: n for i, n in pipes_of(pid).items() if i not in base}


def send_get(gh, path, slow=False):
    """A request on a new connection.  slow: a small receive buffer (no
    autotuning), so that a client that does not read stops the relay
    with bytes in its pipe."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    if slow:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect(("127.0.0.1", gh.port))
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    return s


class Got:
    def __init__(self, status, length, sha, complete):
        self.status, self.length = status, length
        self.sha, self.complete = sha, complete


def read_response(s):
    """The response on s, its body hashed as it comes: up to
    Content-Length, or what came before the close."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = s.recv(65536)
        if not piece:
            return Got(0, 0, None, False)
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    cl = None
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            cl = int(v)
    h = hashlib.sha256(body)
    got = len(body)
    while cl is None or got < cl:
        try:
            piece = s.recv(1 << 20)
        except ConnectionResetError:
            piece = b""
        if not piece:
            break
        h.update(piece)
        got += len(piece)
    return Got(status, got, h.hexdigest(), cl is not None and got == cl)


def get(gh, path):
    s = send_get(gh, path)
    try:
        return read_response(s)
    finally:
        s.close()


def reset(s):
    """Close with a RST: the worker's next write fails at once."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def assert_exact(g, n, seed):
    assert g.status == 200 and g.complete
    assert g.length == n
    assert g.sha == expected_sha(n, seed), f"body of seed {seed}"


def assert_cut(g, n, seed):
    """Cut short, and what came was the beginning of the right body."""
    assert g.status == 200 and not g.complete
    assert g.length < n
    assert g.sha == expected_sha(g.length, seed), f"body of seed {seed}"


def test_sequential_responses_reuse_one_pipe(gatehouse, upstream):
    gh, pid = start(gatehouse, upstream)
    base = pipes_of(pid)
    seen = set()
    keep = Conn(gh.port, timeout=10)
    for i in range(12):
        n = 200000 + i * 4097 + 13
        # alternately on a kept-alive connection and on new ones
        if i % 2:
            r = keep.request(f"/body/{n}/{i}")
            assert r.status == 200
            assert sha256(r.body) == expected_sha(n, i)
        else:
            assert_exact(get(gh, f"/body/{n}/{i}"), n, i)
        # the pipe is back in the cache: open, both ends, and always the
        # same one
        pipes = wait_until(lambda: new_pipes(pid, base), 3,
                           what="a cached pipe")
        assert list(pipes.values()) == [2], pipes
        seen |= set(pipes)
    keep.close()
    assert len(seen) == 1, f"pipes made: {seen}"


def test_idle_pipes_bounded(gatehouse, upstream):
    gh, pid = start(gatehouse, upstream)
    base = pipes_of(pid)
    clients = CACHE_MAX + 6
    n = 8 * 1024 * 1024 + 333
    socks = [send_get(gh, f"/body/{n}/{i}", slow=True)
             for i in range(clients)]
    # nobody reads yet: every relay holds its own pipe
    wait_until(lambda: len(new_pipes(pid, base)) == clients, 10,
               what=f"{clients} pipes in use")
    for i, s in enumerate(socks):
        assert_exact(read_response(s), n, i)
        s.close()
    # all came back empty; the cache keeps 16, the others were closed
    wait_until(lambda: len(new_pipes(pid, base)) == CACHE_MAX, 3,
               what=f"{CACHE_MAX} cached pipes")
    cached = new_pipes(pid, base)
    assert set(cached.values()) == {2}
    time.sleep(0.2)
    assert new_pipes(pid, base) == cached

    # the next relays take these, no new pipe
    for i in range(3):
        assert_exact(get(gh, f"/body/{170000 + i}/{100 + i}"), 170000 + i,
                     100 + i)
    assert set(new_pipes(pid, base)) == set(cached)


def test_client_abort_pipe_with_bytes_is_closed(gatehouse, upstream):
    gh, pid = start(gatehouse, upstream)
    base = pipes_of(pid)
    # a pipe in the cache first, so the aborted relay takes that one
    assert_exact(get(gh, "/body/200001/1"), 200001, 1)
    [first] = wait_until(lambda: new_pipes(pid, base), 3, what="a pipe")

    # the client reads nothing: the relay stops with bytes in the pipe
    s = send_get(gh, "/body/8000001/2", slow=True)
    time.sleep(0.5)
    assert set(new_pipes(pid, base)) == {first}
    reset(s)
    wait_until(lambda: "/body/8000001/2 HTTP" in gh.error_log(), 3,
               what="the relay ended")

    # the next response is exact: none of those bytes in it
    assert_exact(get(gh, "/body/300007/3"), 300007, 3)
    # because that pipe was closed, not kept, and a fresh one used
    [second] = wait_until(lambda: new_pipes(pid, base), 3, what="a pipe")
    assert second != first
    assert gh.workers() == [pid]


def test_upstream_abort_pipe_reused_exact(gatehouse, upstream):
    gh, pid = start(gatehouse, upstream)
    base = pipes_of(pid)
    assert_exact(get(gh, "/body/200001/1"), 200001, 1)
    [pipe] = wait_until(lambda: new_pipes(pid, base), 3, what="a pipe")

    for i, kind in enumerate(["cut", "reset", "cut"]):
        n, m = 400000 + i, 250001 + i * 4099
        g = get(gh, f"/{kind}/{n}/{m}/{10 + i}")
        assert_cut(g, n, 10 + i)
        assert g.length <= m
        if kind == "reset":
            # the upstream's fault, and told as such
            line = wait_until(lambda: [
                ln for ln in gh.error_log().splitlines()
                if f"/reset/{n}/" in ln], 3, what="the error line")[0]
            assert "failed while reading upstream (104: Connection reset " \
                "by peer)" in line, line
        # everything read was written: the pipe was empty, it is kept
        wait_until(lambda: list(new_pipes(pid, base)) == [pipe], 3,
                   what="the pipe back in the cache")

        # and the next response through it is exact: no stale bytes
        assert_exact(get(gh, f"/body/{200003 + i}/{20 + i}"), 200003 + i,
                     20 + i)
        assert list(new_pipes(pid, base)) == [pipe]
    assert gh.workers() == [pid]


def test_interleaved_relays_exact(gatehouse, upstream):
    gh, pid = start(gatehouse, upstream)
    base = pipes_of(pid)
    errors = []
    rng = random.Random(7)
    plans = []
    for t in range(8):
        jobs = []
        for j in range(6):
            n = rng.randrange(150 * 1024, 2 * 1024 * 1024) | 1
            kind = rng.choice(["body", "body", "body", "client-abort",
                               "cut", "reset"])
            jobs.append((kind, n, t * 100 + j))
        plans.append(jobs)

    def run(jobs):
        try:
            for kind, n, seed in jobs:
                if kind == "body":
                    assert_exact(get(gh, f"/body/{n}/{seed}"), n, seed)
                elif kind == "client-abort":
                    # more than the kernel buffers between the worker and
                    # a client that does not read (4 MiB of send buffer)
                    n += 6 * 1024 * 1024
                    s = send_get(gh, f"/body/{n}/{seed}", slow=True)
                    assert s.recv(1000).startswith(b"HTTP/1.1 200")
                    # long enough for the relay to fill its pipe
                    time.sleep(0.3)
                    reset(s)
                else:
                    m = n // 3 + 1
                    assert_cut(get(gh, f"/{kind}/{n}/{m}/{seed}"), n, seed)
        except Exception as e:          # reported by the main thread
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(p,)) for p in plans]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not any(th.is_alive() for th in threads)
    assert not errors, errors

    # afterwards: a few pipes kept, and the next responses exact
    wait_until(lambda: 1 <= len(new_pipes(pid, base)) <= CACHE_MAX, 3,
               what="bounded cached pipes")
    for i in range(CACHE_MAX + 2):
        n = 166000 + i * 511
        assert_exact(get(gh, f"/body/{n}/{900 + i}"), n, 900 + i)
    assert len(new_pipes(pid, base)) <= CACHE_MAX
    assert gh.workers() == [pid]


def test_cached_pipes_given_up_when_fds_run_out(gatehouse, upstream):
    up = upstream(handler)
    gh = gatehouse(conf=(
        "worker_rlimit_nofile 48;\n"
        "daemon off;\nmaster_process on;\nworker_processes 1;\n"
        "error_log logs/error.log info;\npid logs/gatehouse.pid;\n"
        "events { worker_connections 512; }\n"
        "http {\n" + simple_server(
            f"location / {{ proxy_pass http://{up.addr}; }}\n") + "}\n"))
    [pid] = gh.workers()
    base = pipes_of(pid)
    assert len(os.listdir(f"/proc/{pid}/fd")) < 40
    assert_exact(get(gh, "/body/200001/1"), 200001, 1)
    wait_until(lambda: new_pipes(pid, base), 3, what="a cached pipe")

    # more clients than fds: accept4 fails with EMFILE, and the idle
    # pipes are closed to make room
    flood = [socket.create_connection(("127.0.0.1", gh.port), timeout=5)
             for _ in range(60)]
    try:
        gh.wait_log("error.log", r"accept4\(\) .* Too many open files", 5)
        wait_until(lambda: not new_pipes(pid, base), 3,
                   what="the cached pipe closed")
    finally:
        for s in flood:
            s.close()
    # once the clients are gone, relays work again
    wait_until(lambda: len(os.listdir(f"/proc/{pid}/fd")) < 40, 5,
               what="the clients' fds closed")
    assert_exact(get(gh, "/body/200003/2"), 200003, 2)
    assert gh.workers() == [pid]
