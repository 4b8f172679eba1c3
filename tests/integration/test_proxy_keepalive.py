"""Upstream keep-alive: `upstream { keepalive N; }` with proxy_http_version
1.1 and Connection "" reuses connections; a pooled connection the upstream
dropped is retried transparently for idempotent requests only."""

import time

from conftest import simple_server
from upstreams import Seen


def pooled(up_addr, extra_upstream="", extra_location=""):
    return f"""\
        upstream backend {{
            server {up_addr};
            keepalive 8;
            {extra_upstream}
        }}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{
                proxy_http_version 1.1;
                proxy_set_header Connection "";
                {extra_location}
                proxy_pass http://backend;
            }}
        }}
    """


def test_requests_share_one_upstream_connection(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(pooled(up.addr))
    for i in range(20):
        r = gh.get(f"/r{i}")           # a new client connection each time
        assert r.status == 200
        s = Seen(r)
        assert s.line == f"GET /r{i} HTTP/1.1"
        assert s.header("Connection") is None
        assert s.header("Host") == "backend"
    assert up.connections == 1
    assert [q.seq for q in up.requests] == list(range(20))


def test_keepalive_client_and_upstream(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(pooled(up.addr))
    with gh.conn() as c:
        for i in range(10):
            r = c.request(f"/k{i}", method="POST", body=b"b" * i)
            assert r.status == 200 and Seen(r).body_len == i
    assert up.connections == 1


def test_no_pool_means_a_connection_per_request(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://{up.addr};
        }}
    """))
    for i in range(5):
        assert gh.get("/").status == 200
    assert up.connections == 5


def test_keepalive_requests_limit(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(pooled(up.addr, "keepalive_requests 3;"))
    for i in range(7):
        assert gh.get(f"/{i}").status == 200
    assert up.connections == 3


def test_close_delimited_response_is_not_pooled(gatehouse, upstream):
    from upstreams import respond
    up = upstream(respond(200, body=b"closing", framing="close"))
    gh = gatehouse(pooled(up.addr))
    for i in range(3):
        r = gh.get("/")
        assert r.status == 200 and r.body == b"closing"
    assert up.connections == 3


def test_upstream_connection_close_is_honoured(gatehouse, upstream):
    up = upstream(max_requests=2)      # answers 2, then Connection: close
    gh = gatehouse(pooled(up.addr))
    for i in range(6):
        assert gh.get(f"/{i}").status == 200
    assert up.connections == 3
    assert "[error]" not in gh.error_log()


def test_upstream_closing_idle_pooled_connection(gatehouse, upstream):
    # the upstream's own keep-alive timeout closes the idle connection;
    # the pool notices and the next request opens a new one
    up = upstream(idle_timeout=0.2)
    gh = gatehouse(pooled(up.addr))
    assert gh.get("/one").status == 200
    time.sleep(0.6)
    r = gh.get("/two")
    assert r.status == 200 and Seen(r).target == "/two"
    assert up.connections == 2
    assert len(up.requests) == 2


def test_dropped_pooled_connection_is_retried_for_get(gatehouse, upstream):
    # the race: the upstream closes a reused connection just as the next
    # request arrives on it.  An idempotent request is sent again on a
    # fresh connection and the client never notices.
    up = upstream(drop_reused=True)
    gh = gatehouse(pooled(up.addr))
    for i in range(4):
        r = gh.get(f"/g{i}")
        assert r.status == 200, (i, r)
        assert Seen(r).target == f"/g{i}"
    served = [q.target for q in up.served()]
    assert served == ["/g0", "/g1", "/g2", "/g3"]
    dropped = [q.target for q in up.requests if q.dropped]
    assert dropped == ["/g1", "/g2", "/g3"]
    assert up.connections == 4


def test_dropped_pooled_connection_is_not_retried_for_post(gatehouse,
                                                          upstream):
    # a POST that reached the upstream is never sent a second time
    up = upstream(drop_reused=True)
    gh = gatehouse(pooled(up.addr))
    assert gh.get("/first").status == 200
    r = gh.get("/post", method="POST", body=b"pay once")
    assert r.status == 502
    posts = [q for q in up.requests if q.method == "POST"]
    assert len(posts) == 1 and posts[0].dropped
    assert posts[0].body == b"pay once"
    gh.wait_log("error.log", r"upstream prematurely closed connection while "
                r"reading response header from upstream, client: 127\.0\.0\.1,"
                r".*request: \"POST /post HTTP/1\.1\"")


def test_pooled_connection_with_http_1_0_does_not_pool(gatehouse, upstream):
    # without proxy_http_version 1.1 nothing is kept alive
    up = upstream()
    gh = gatehouse(f"""\
        upstream backend {{ server {up.addr}; keepalive 8; }}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{ proxy_pass http://backend; }}
        }}
    """)
    for i in range(3):
        s = Seen(gh.get("/"))
        assert s.line == "GET / HTTP/1.0" and s.header("Connection") == "close"
    assert up.connections == 3
