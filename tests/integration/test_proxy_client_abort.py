"""A client that goes away while its response is being proxied must not
hurt the worker: the upstream connection is closed with the request and
later requests are served by the same worker."""

import socket
import time

from upstreams import pattern, trickle


def conf(up):
    return f"""\
        server {{
            listen 127.0.0.1:{{port}};
            location / {{
                proxy_buffers 2 4k;
                proxy_pass http://{up.addr};
            }}
        }}
    """


def test_client_closes_during_large_response(gatehouse, upstream):
    up = upstream(pattern(20 * 1024 * 1024))
    gh = gatehouse(conf(up))
    workers = gh.workers()
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", gh.port), timeout=5)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(1000)            # the head and a little of the body
        # RST instead of FIN: the worker's next write fails at once
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    time.sleep(0.3)
    up.handler = pattern(10)
    assert gh.get("/small").status == 200
    assert gh.workers() == workers


def test_client_closes_while_upstream_trickles(gatehouse, upstream):
    up = upstream(trickle([b"a" * 100] * 5, 0.2))
    gh = gatehouse(conf(up))
    workers = gh.workers()
    s = socket.create_connection(("127.0.0.1", gh.port), timeout=5)
    s.sendall(b"GET /t HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(100)
    s.close()
    time.sleep(1.2)             # the upstream goes on writing meanwhile
    up.handler = pattern(10)
    assert gh.get("/after").status == 200
    assert gh.workers() == workers
