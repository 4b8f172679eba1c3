"""sticky cookie: the cookie names the server; requests carrying it go
there while it is usable; responses set it when the client is not bound.
"""

import hashlib
import re

from conftest import Conn
from lbtools import backend_ports, backends, upstream_block


def md5(text):
    return hashlib.md5(text.encode()).hexdigest()


def make(gatehouse, params=("", "", ""), sticky="sticky cookie srv;",
          workers=1):
    ports = backend_ports(len(params))
    gh = gatehouse(backends(ports)
                   + upstream_block("u", ports, list(params), tail=sticky)
                   + "server { listen 127.0.0.1:{port} reuseport; "
                     "location / { proxy_pass http://u; } }\n",
                   workers=workers)
    return gh, ports


def cookie_of(r):
    v = r.header("Set-Cookie")
    if v is None:
        return None
    return v.split(";")[0].split("=", 1)[1]


def test_cookie_binds_client_to_server(gatehouse):
    gh, ports = make(gatehouse)
    with Conn(gh.port) as c:
        first = c.request("/")
        sid = cookie_of(first)
        # the id is the MD5 of the server's address, as nginx documents
        assert sid == md5(f"127.0.0.1:{ports[int(first.body)]}")
        for _ in range(10):
            r = c.request("/", headers=[("Cookie", f"a=1; srv={sid}; b=2")])
            assert r.body == first.body
            # bound already: no new cookie
            assert r.header("Set-Cookie") is None
    # without the cookie the method balances as usual
    assert len({gh.get("/").body for _ in range(6)}) == 3


def test_each_server_gets_its_own_cookie(gatehouse):
    gh, ports = make(gatehouse)
    ids = {}
    for _ in range(3):
        r = gh.get("/")
        ids[r.body] = cookie_of(r)
    assert len(set(ids.values())) == 3
    for body, sid in ids.items():
        for _ in range(3):
            assert gh.get("/", headers=[("Cookie", f"srv={sid}")]).body \
                == body


def test_unusable_server_rebinds(gatehouse):
    gh, ports = make(gatehouse, params=("", "", "down"))
    # a cookie naming the `down` server, or nonsense: balanced afresh
    # and told where it is now
    down = md5(f"127.0.0.1:{ports[2]}")
    for bad in (down, "0" * 32, "junk"):
        r = gh.get("/", headers=[("Cookie", f"srv={bad}")])
        assert r.body in (b"0", b"1")
        assert cookie_of(r) == md5(f"127.0.0.1:{ports[int(r.body)]}")


def test_cookie_attributes(gatehouse):
    gh, _ = make(gatehouse, sticky="sticky cookie route expires=1h "
                  "domain=.example.com path=/app httponly secure "
                  "samesite=lax;")
    v = gh.get("/").header("Set-Cookie")
    assert re.fullmatch(r"route=[0-9a-f]{32}; expires=\w{3}, \d\d \w{3} "
                        r"\d{4} \d\d:\d\d:\d\d GMT; max-age=3600; "
                        r"domain=\.example\.com; path=/app; samesite=lax; "
                        r"secure; httponly", v), v


def test_sticky_across_workers(gatehouse):
    gh, _ = make(gatehouse, workers=2)
    r = gh.get("/")
    sid = cookie_of(r)
    for _ in range(20):
        assert gh.get("/", headers=[("Cookie", f"srv={sid}")]).body == r.body
