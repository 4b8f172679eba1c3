"""Variables in `return` text, and `map`."""

import re
import time

import pytest

from conftest import simple_server

VARS = simple_server("""\
    server_name vars.test alias.test;
    location /v/ {
        return 200 "host=$host|uri=$uri|args=$args|a=$arg_a|b=$arg_b|miss=$arg_missing|foo=$http_x_foo|ua=$http_user_agent|m=$request_method|ru=$request_uri|scheme=$scheme|sp=$server_port|sa=$server_addr|ra=$remote_addr|sn=$server_name|req=$request";
    }
    location = /rid { return 200 "$request_id"; }
    location = /rp { return 200 "$remote_port"; }
    location = /time { return 200 "$time_iso8601|$time_local|$msec"; }
    """)


@pytest.fixture
def vars_server(gatehouse):
    return gatehouse(VARS)


def test_request_variables(vars_server):
    gh = vars_server
    r = gh.get("/v/path?a=1&b=two%20x", host="Vars.Test:1234",
               headers=[("X-Foo", "bar baz"), ("User-Agent", "t/1")])
    assert r.status == 200
    assert r.text == (
        "host=vars.test|uri=/v/path|args=a=1&b=two%20x|a=1|b=two%20x|miss="
        "|foo=bar baz|ua=t/1|m=GET|ru=/v/path?a=1&b=two%20x|scheme=http"
        f"|sp={gh.port}|sa=127.0.0.1|ra=127.0.0.1|sn=vars.test"
        "|req=GET /v/path?a=1&b=two%20x HTTP/1.1"), r.text


def test_uri_is_normalised_request_uri_is_raw(vars_server):
    r = vars_server.get("/v/x/../%41b//c?q", method="POST", body="")
    fields = dict(f.split("=", 1) for f in r.text.split("|"))
    assert fields["uri"] == "/v/Ab/c"
    assert fields["ru"] == "/v/x/../%41b//c?q"
    assert fields["args"] == "q"
    assert fields["m"] == "POST"


def test_host_falls_back_to_server_name(vars_server):
    r = vars_server.get("/v/", host=None, version="HTTP/1.0")
    fields = dict(f.split("=", 1) for f in r.text.split("|"))
    assert fields["host"] == "vars.test"
    assert fields["sn"] == "vars.test"


def test_request_id(vars_server):
    ids = {vars_server.get("/rid").text for _ in range(5)}
    assert len(ids) == 5
    for i in ids:
        assert re.fullmatch(r"[0-9a-f]{32}", i), i


def test_remote_port(vars_server):
    with vars_server.conn() as c:
        r = c.request("/rp")
        assert r.text == str(c.sock.getsockname()[1])


def test_time_variables(vars_server):
    r = vars_server.get("/time")
    iso, local, msec = r.text.split("|")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", iso)
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}",
                        local)
    assert re.fullmatch(r"\d+\.\d{3}", msec)
    assert abs(float(msec) - time.time()) < 5


MAPS = """\
map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
}
map $uri $mapped {
    default                        "none";
    /exact                         "exact-hit";
    ~^/m/(?<name>[a-z]+)/(\\d+)$    "$name-$2";
    ~*^/CI/(.*)$                   "ci-$1";
    ~^/m/                          "second-regex";
}
map $host $hmap {
    hostnames;
    default        "no";
    example.com    "exact";
    *.example.com  "wild";
    www.example.*  "back";
}
map $arg_x $chained {
    default   "d:$mapped";
    1         "one";
}
""" + simple_server("""\
    location / {
        return 200 "$connection_upgrade|$mapped|$hmap|$chained";
    }
    """)


@pytest.fixture
def maps(gatehouse):
    return gatehouse(MAPS)


def test_map_connection_upgrade_both_ways(maps):
    assert maps.get("/").text.split("|")[0] == "close"
    r = maps.get("/", headers=[("Upgrade", "websocket")])
    assert r.text.split("|")[0] == "upgrade"


@pytest.mark.parametrize("uri,expect", [
    ("/exact", "exact-hit"),
    ("/m/abc/42", "abc-42"),         # named and positional captures
    ("/CI/xyz", "ci-xyz"),            # ~* case-insensitive
    ("/ci/Q", "ci-Q"),
    ("/m/abc", "second-regex"),       # regexes in order
    ("/other", "none"),
])
def test_map_strings_and_regex_captures(maps, uri, expect):
    assert maps.get(uri).text.split("|")[1] == expect


@pytest.mark.parametrize("host,expect", [
    ("example.com", "exact"),
    ("a.example.com", "wild"),
    ("www.example.org", "back"),
    ("other.test", "no"),
])
def test_map_hostnames(maps, host, expect):
    assert maps.get("/", host=host).text.split("|")[2] == expect


def test_map_value_with_variable(maps):
    assert maps.get("/exact?x=1").text.split("|")[3] == "one"
    assert maps.get("/exact?x=2").text.split("|")[3] == "d:exact-hit"
