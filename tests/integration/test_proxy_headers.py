"""Request headers sent upstream: defaults, proxy_set_header (override,
removal with "", inheritance), X-Forwarded-For, hop-by-hop stripping,
proxy_http_version, proxy_pass_request_headers/body, and the headers of
the response passed back (Server/Date, hide/pass)."""

import pytest

from conftest import simple_server
from upstreams import Seen, respond

CLIENT_HEADERS = [("User-Agent", "test-agent/1.0"), ("Accept", "*/*"),
                  ("X-Custom", "Value With  Spaces"), ("x-lower", "v")]


def test_defaults(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_pass http://{up.addr}; }}
    """))
    r = gh.get("/x?y=1", headers=CLIENT_HEADERS)
    assert r.status == 200
    s = Seen(r)
    # HTTP/1.0 request line by default, Host: $proxy_host, Connection:
    # close, then the client's headers as sent (names' case kept)
    assert s.line == "GET /x?y=1 HTTP/1.0"
    assert s.headers == [("Host", up.addr), ("Connection", "close")] \
        + CLIENT_HEADERS
    assert up.requests[0].raw_head.startswith(
        f"GET /x?y=1 HTTP/1.0\r\nHost: {up.addr}\r\n"
        "Connection: close\r\n".encode())


def test_proxy_host_without_port_and_default_port(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location /a {{
            proxy_set_header X-PH $proxy_host;
            proxy_set_header X-PP $proxy_port;
            proxy_pass http://{up.addr};
        }}
    """))
    s = Seen(gh.get("/a"))
    assert s.header("X-PH") == up.addr
    assert s.header("X-PP") == str(up.port)


def test_http_version_1_1(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location / {{
            proxy_http_version 1.1;
            proxy_pass http://{up.addr};
        }}
    """))
    s = Seen(gh.get("/v"))
    assert s.line == "GET /v HTTP/1.1"
    # still Connection: close without an upstream keepalive pool
    assert s.header("Connection") == "close"
    assert up.connections == 1


def test_http_version_invalid(gatehouse):
    gh = gatehouse(simple_server(
        "location / { proxy_http_version 2.0; proxy_pass http://127.0.0.1:9; }"),
        start=False)
    r = gh.run("-t")
    assert r.returncode != 0
    assert 'invalid value "2.0"' in r.stderr, r.stderr


def test_set_header_override_add_and_remove(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location / {{
            proxy_set_header Host $host;
            proxy_set_header Accept-Encoding "";
            proxy_set_header X-Added "added $request_method";
            proxy_set_header User-Agent "replaced";
            proxy_set_header X-Empty-Var $http_x_not_sent;
            proxy_pass http://{up.addr};
        }}
    """))
    r = gh.get("/", host="example.test:8080",
               headers=[("Accept-Encoding", "gzip, br"),
                        ("User-Agent", "orig"), ("X-Keep", "k")])
    s = Seen(r)
    assert s.header("Host") == "example.test"           # $host: no port
    assert s.header_all("Host") == ["example.test"]
    assert s.header("Accept-Encoding") is None           # removed by ""
    assert s.header("X-Added") == "added GET"
    assert s.header_all("User-Agent") == ["replaced"]    # once, replaced
    assert s.header("X-Empty-Var") is None               # "" after eval
    assert s.header("X-Keep") == "k"
    assert s.header("Connection") == "close"             # default kept


def test_configured_headers_come_first(gatehouse, upstream):
    # nginx sends the configured headers, then the defaults (Host,
    # Connection) not configured, then the client's
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location / {{
            proxy_set_header X-A a;
            proxy_set_header X-B b;
            proxy_pass http://{up.addr};
        }}
    """))
    s = Seen(gh.get("/", headers=[("X-C", "c")]))
    assert s.headers == [("X-A", "a"), ("X-B", "b"), ("Host", up.addr),
                         ("Connection", "close"), ("X-C", "c")]


def test_set_header_inheritance(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(f"""\
        proxy_set_header X-Http http;
        server {{
            listen 127.0.0.1:{{port}};
            proxy_set_header X-Server s;
            proxy_set_header X-Server-2 s2;
            location /inherit {{ proxy_pass http://{up.addr}; }}
            location /own {{
                proxy_set_header X-Loc l;
                proxy_pass http://{up.addr};
            }}
            location /outer {{
                location /outer/inner {{ proxy_pass http://{up.addr}; }}
            }}
        }}
        server {{
            listen 127.0.0.1:{{port2}};
            location / {{ proxy_pass http://{up.addr}; }}
        }}
    """)
    s = Seen(gh.get("/inherit"))
    assert s.header("X-Server") == "s" and s.header("X-Server-2") == "s2"
    assert s.header("X-Http") is None      # the server level replaced it
    s = Seen(gh.get("/own"))
    assert s.header("X-Loc") == "l"
    assert s.header("X-Server") is None and s.header("X-Server-2") is None
    assert s.header("X-Http") is None
    assert s.header("Host") == up.addr     # defaults are never dropped
    s = Seen(gh.get("/outer/inner"))
    assert s.header("X-Server") == "s"
    s = Seen(gh.get("/", port=gh.port2))
    assert s.header("X-Http") == "http" and s.header("X-Server") is None


XFF = simple_server("""\
    location / {
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_pass http://UP;
    }
    location /plain { proxy_pass http://UP; }
""")


@pytest.mark.parametrize("sent, expect", [
    ([], "127.0.0.1"),
    ([("X-Forwarded-For", "10.0.0.1")], "10.0.0.1, 127.0.0.1"),
    ([("X-Forwarded-For", "10.0.0.1, 10.0.0.2")],
     "10.0.0.1, 10.0.0.2, 127.0.0.1"),
    ([("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-For", "10.0.0.2")],
     "10.0.0.1, 10.0.0.2, 127.0.0.1"),
])
def test_x_forwarded_for_appends(gatehouse, upstream, sent, expect):
    up = upstream()
    gh = gatehouse(XFF.replace("UP", up.addr))
    s = Seen(gh.get("/", headers=sent))
    assert s.header_all("X-Forwarded-For") == [expect]
    assert s.header("X-Real-IP") == "127.0.0.1"


def test_x_forwarded_for_passed_unchanged_without_config(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(XFF.replace("UP", up.addr))
    s = Seen(gh.get("/plain", headers=[("X-Forwarded-For", "10.9.9.9")]))
    assert s.header_all("X-Forwarded-For") == ["10.9.9.9"]


def test_hop_by_hop_headers_are_not_passed(gatehouse, upstream):
    # gatehouse also drops the headers the client's Connection names and
    # Trailer (RFC 9110 7.6.1); nginx 1.22 passes those two through
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_pass http://{up.addr}; }}
    """))
    s = Seen(gh.get("/", headers=[
        ("Connection", "keep-alive, X-Hop, Upgrade"), ("X-Hop", "h"),
        ("Keep-Alive", "timeout=300"), ("TE", "trailers"),
        ("Upgrade", "websocket"), ("Trailer", "X-T"),
        ("X-End-To-End", "e")]))
    names = s.lower_names()
    for hop in ("keep-alive", "te", "upgrade", "trailer", "x-hop"):
        assert hop not in names, (hop, s.headers)
    assert s.header_all("Connection") == ["close"]
    assert s.header("X-End-To-End") == "e"


def test_upgrade_not_passed_without_config(gatehouse, upstream):
    # a websocket handshake to a location without the Upgrade/Connection
    # settings is proxied as a plain request
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_http_version 1.1; proxy_pass http://{up.addr}; }}
    """))
    r = gh.get("/ws", headers=[("Connection", "Upgrade"),
                               ("Upgrade", "websocket"),
                               ("Sec-WebSocket-Version", "13"),
                               ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")])
    assert r.status == 200
    s = Seen(r)
    assert s.header("Upgrade") is None
    assert s.header("Connection") == "close"


def test_pass_request_headers_off(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location / {{
            proxy_pass_request_headers off;
            proxy_set_header X-Only yes;
            proxy_pass http://{up.addr};
        }}
    """))
    s = Seen(gh.get("/", headers=CLIENT_HEADERS))
    assert sorted(s.lower_names()) == ["connection", "host", "x-only"]


def test_pass_request_body_off(gatehouse, upstream):
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location / {{
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_pass http://{up.addr};
        }}
    """))
    r = gh.get("/", method="POST", body=b"x" * 1000)
    assert r.status == 200
    s = Seen(r)
    assert s.body_len == 0 and s.header("Content-Length") is None


def test_header_value_with_crlf_from_variable_does_not_split(gatehouse,
                                                            upstream):
    # $arg_x is "%0D%0A..." decoded? no: args are not decoded, but a
    # variable holding CR/LF must never inject a header
    up = upstream()
    gh = gatehouse(simple_server(f"""\
        location / {{
            proxy_set_header X-Arg $arg_x;
            proxy_pass http://{up.addr};
        }}
    """))
    s = Seen(gh.get("/?x=a%0D%0AInjected:%201"))
    assert s.header("Injected") is None
    assert s.header("X-Arg") == "a%0D%0AInjected:%201"


# --------------------------------------------------------------------------
# response headers

def test_server_and_date_are_gatehouses(gatehouse, upstream):
    up = upstream(respond(200, [("Server", "upstream/9"),
                                ("Date", "Mon, 01 Jan 2001 00:00:00 GMT"),
                                ("X-Powered-By", "php"),
                                ("X-Accel-Limit-Rate", "1000"),
                                ("X-Pad", "avoid browser bug")], "ok"))
    gh = gatehouse(simple_server(f"""\
        location / {{ proxy_pass http://{up.addr}; }}
    """))
    r = gh.get("/")
    assert r.status == 200 and r.body == b"ok"
    assert r.header_all("Server") != ["upstream/9"]
    assert len(r.header_all("Server")) == 1
    assert len(r.header_all("Date")) == 1
    assert "2001" not in r.header("Date")
    assert r.header("X-Powered-By") == "php"
    assert r.header("X-Accel-Limit-Rate") is None
    assert r.header("X-Pad") is None


def test_hide_and_pass_header(gatehouse, upstream):
    up = upstream(respond(200, [("Server", "upstream/9"),
                                ("X-Secret", "s"), ("X-Other", "o"),
                                ("Date", "Mon, 01 Jan 2001 00:00:00 GMT")],
                          "ok"))
    gh = gatehouse(simple_server(f"""\
        location / {{
            proxy_hide_header X-Secret;
            proxy_pass_header Server;
            proxy_pass http://{up.addr};
        }}
        location /date {{
            proxy_pass_header Date;
            proxy_pass http://{up.addr};
        }}
    """))
    r = gh.get("/")
    assert r.header("X-Secret") is None
    assert r.header("X-Other") == "o"
    assert r.header_all("Server") == ["upstream/9"]
    r = gh.get("/date")
    assert r.header_all("Date") == ["Mon, 01 Jan 2001 00:00:00 GMT"]
    assert r.header("X-Secret") == "s"


def test_add_header_on_proxied_response(gatehouse, upstream):
    up = upstream(respond(404, [("X-Up", "1")], "nope"))
    gh = gatehouse(simple_server(f"""\
        location / {{
            add_header X-Added yes;
            add_header X-Always yes always;
            proxy_pass http://{up.addr};
        }}
    """))
    r = gh.get("/")
    assert r.status == 404 and r.body == b"nope"
    assert r.header("X-Up") == "1"
    assert r.header("X-Added") is None      # 404: only "always" ones
    assert r.header("X-Always") == "yes"


def test_upstream_http_variable(gatehouse, upstream):
    up = upstream(respond(200, [("X-App-Version", "3.1")], "ok"))
    gh = gatehouse(f"""\
        log_format up '$upstream_http_x_app_version|$sent_http_x_app_version';
        server {{
            listen 127.0.0.1:{{port}};
            access_log logs/up.log up;
            location / {{ proxy_pass http://{up.addr}; }}
        }}
    """)
    assert gh.get("/").status == 200
    gh.wait_log("up.log", r"^3\.1\|3\.1$")
