"""Upstream addresses (unix: sockets, names resolved at start, upstream
blocks) and the $upstream_* log variables."""

import re

from conftest import simple_server
from upstreams import Seen, respond


def test_unix_socket_proxy_pass(gatehouse, upstream):
    up = upstream(unix=True)
    gh = gatehouse(simple_server(f"""\
        location /u/ {{ proxy_pass http://{up.addr}:/; }}
        location /raw {{ proxy_pass http://{up.addr}; }}
        location /pre/ {{ proxy_pass http://{up.addr}:/x/; }}
    """))
    s = Seen(gh.get("/u/a%20b?q=1"))
    assert s.target == "/a%20b?q=1"
    assert s.header("Host") == "localhost"
    assert Seen(gh.get("/raw/p?q")).target == "/raw/p?q"
    assert Seen(gh.get("/pre/y")).target == "/x/y"
    assert up.connections == 3


def test_unix_socket_in_upstream_block(gatehouse, upstream):
    up = upstream(unix=True)
    gh = gatehouse(f"""\
        upstream sock {{
            server {up.addr};
            keepalive 4;
        }}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{
                proxy_http_version 1.1;
                proxy_set_header Connection "";
                proxy_pass http://sock;
            }}
        }}
    """)
    for i in range(5):
        r = gh.get(f"/s{i}", method="POST", body=f"body{i}")
        assert r.status == 200
        s = Seen(r)
        assert s.target == f"/s{i}" and s.header("Host") == "sock"
        assert s.body_len == 5
    assert up.connections == 1


def test_unix_socket_missing_is_502(gatehouse, tmp_path):
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_pass http://unix:{tmp_path}/nope.sock; }}
    """))
    assert gh.get("/x").status == 502
    gh.wait_log("error.log", r"connect\(\) to unix:\S*nope\.sock failed "
                r"\(2: No such file or directory\) while connecting to "
                r"upstream")


def test_upstream_variables_in_access_log(gatehouse, upstream):
    up = upstream(respond(201, [], "made"))
    unix = upstream(unix=True)
    gh = gatehouse(f"""\
        log_format up '$request_uri|$status|$upstream_addr|$upstream_status|'
                      '$upstream_response_time|$upstream_connect_time|'
                      '$upstream_header_time';
        server {{
            listen 127.0.0.1:{{port}};
            access_log logs/up.log up;
            location / {{ proxy_pass http://{up.addr}; }}
            location /unix/ {{ proxy_pass http://{unix.addr}:/; }}
            location /local {{ return 200 "local"; }}
        }}
    """)
    assert gh.get("/tcp").status == 201
    assert gh.get("/unix/x").status == 200
    assert gh.get("/local").status == 200
    t = r"\d+\.\d{3}"
    gh.wait_log("up.log", rf"^/tcp\|201\|{re.escape(up.addr)}\|201\|{t}\|"
                rf"{t}\|{t}$")
    gh.wait_log("up.log", rf"^/unix/x\|200\|{re.escape(unix.addr)}\|200\|"
                rf"{t}\|{t}\|{t}$")
    # no upstream: the variables are empty ("-" in the log)
    gh.wait_log("up.log", r"^/local\|200\|-\|-\|-\|-\|-$")


def test_upstream_variables_on_502(gatehouse, upstream):
    dead = upstream.closed_port()
    gh = gatehouse(f"""\
        log_format up '$status|$upstream_addr|$upstream_status|'
                      '$upstream_response_time|$upstream_header_time';
        server {{
            listen 127.0.0.1:{{port}};
            access_log logs/up.log up;
            location / {{ proxy_pass http://{dead.addr}; }}
        }}
    """)
    assert gh.get("/").status == 502
    gh.wait_log("up.log", rf"^502\|{re.escape(dead.addr)}\|502\|"
                r"\d+\.\d{3}\|-$")


def test_localhost_resolves_at_start(gatehouse, upstream):
    # the tutorial config, pointed at a test upstream
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location / {{
            proxy_set_header Host $host;
            proxy_set_header Accept-Encoding "";
            proxy_pass http://localhost:{up.port};
        }}
    """))
    r = gh.get("/page?x=1", host="www.example.test",
               headers=[("Accept-Encoding", "gzip, deflate")])
    assert r.status == 200
    s = Seen(r)
    assert s.line == "GET /page?x=1 HTTP/1.0"
    assert s.header("Host") == "www.example.test"
    assert s.header("Accept-Encoding") is None


def test_proxy_host_of_a_name(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_pass http://localhost:{up.port}; }}
    """))
    assert Seen(gh.get("/")).header("Host") == f"localhost:{up.port}"


def test_unknown_host_is_a_config_error(gatehouse):
    gh = gatehouse(simple_server(
        "location / { proxy_pass http://no-such-host.invalid:8080; }"),
        start=False)
    r = gh.run("-t")
    assert r.returncode != 0
    # nginx names the upstream with its port, as in the classic Docker
    # error 'host not found in upstream "app:3000"'
    assert 'host not found in upstream "no-such-host.invalid:8080" in ' \
        in r.stderr, r.stderr
    assert gh.where("proxy_pass") in r.stderr


def test_upstream_block_defined_after_use(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(f"""\
        server {{
            listen 127.0.0.1:{{port}};
            location / {{ proxy_pass http://later; }}
        }}
        upstream later {{ server {up.addr}; }}
    """)
    s = Seen(gh.get("/l"))
    assert s.target == "/l" and s.header("Host") == "later"


def test_backup_server(gatehouse, upstream):
    main = upstream.closed_port()
    backup = upstream(name="backup")
    gh = gatehouse(f"""\
        upstream pool {{
            server {main.addr};
            server {backup.addr} backup;
        }}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{ proxy_pass http://pool; }}
        }}
    """)
    for _ in range(3):
        assert gh.get("/").status == 200
    assert len(backup.requests) == 3


def test_down_server_is_skipped(gatehouse, upstream):
    a = upstream(name="a")
    b = upstream(name="b")
    gh = gatehouse(f"""\
        upstream pool {{
            server {a.addr} down;
            server {b.addr};
        }}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{ proxy_pass http://pool; }}
        }}
    """)
    for _ in range(4):
        assert gh.get("/").status == 200
    assert len(a.requests) == 0 and len(b.requests) == 4
