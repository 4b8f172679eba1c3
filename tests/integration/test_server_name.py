"""server_name selection in nginx's order: exact name, longest wildcard
starting with "*", longest wildcard ending with "*", first matching regex;
otherwise the default server of the listen address."""

import pytest

from conftest import simple_server


def srv(names, text, listen="127.0.0.1:{port}"):
    return simple_server(
        f"server_name {names};\nlocation / {{ return 200 \"{text}\"; }}\n",
        listen=listen)


NAMES_CONF = (
    srv("first.example.com", "first")
    + srv("exact.example.com", "exact")
    + srv("*.example.com", "wild-front")
    + srv("*.sub.example.com", "wild-front-long")
    + srv("www.example.*", "wild-back")
    + srv("www.example.co.*", "wild-back-long")
    + srv(r"~^(?<sub>\w+)\.example\.net$", "regex $sub")
    + srv(r"~^(\w+)\.(\w+)\.example\.net$", "regex2 $1 $2")
    + srv(".example.org", "dot-org")
    + srv("_", "default", listen="127.0.0.1:{port} default_server")
)


@pytest.fixture
def names(gatehouse):
    return gatehouse(NAMES_CONF)


@pytest.mark.parametrize("host,expect", [
    ("exact.example.com", "exact"),
    ("first.example.com", "first"),
    ("EXACT.Example.COM", "exact"),             # case-insensitive
    ("exact.example.com:8080", "exact"),        # port is not part of it
    ("exact.example.com.", "exact"),            # trailing dot dropped
    ("www.example.com", "wild-front"),          # *.x beats x.*
    ("a.b.example.com", "wild-front"),
    ("a.sub.example.com", "wild-front-long"),   # longest wildcard wins
    ("www.example.net", "wild-back"),           # wildcard beats regex
    ("www.example.co.uk", "wild-back-long"),
    ("www.example.org", "dot-org"),
    ("foo.example.net", "regex foo"),           # named capture
    ("a.b.example.net", "regex2 a b"),          # second regex, $1 $2
    ("example.org", "dot-org"),                 # .x matches x
    ("a.example.org", "dot-org"),               # ... and *.x
    ("x.y.example.org", "dot-org"),
    ("example.com", "default"),                 # *.example.com needs a label
    ("nomatch.test", "default"),                # default_server
    ("127.0.0.1", "default"),
])
def test_server_name_selection(names, host, expect):
    r = names.get("/", host=host)
    assert (r.status, r.text) == (200, expect), (host, r)


def test_server_name_variable(gatehouse):
    gh = gatehouse(simple_server("""\
        server_name main.test alias.test;
        location / { return 200 "$server_name|$host"; }
        """))
    assert gh.get("/", host="alias.test").text == "main.test|alias.test"
    assert gh.get("/", host="Alias.TEST:99").text == "main.test|alias.test"


def test_default_server_is_first_unless_marked(gatehouse):
    gh = gatehouse(
        srv("a.test", "port1-first")
        + srv("b.test", "port1-second")
        + srv("a.test", "port2-first", listen="127.0.0.1:{port2}")
        + srv("b.test", "port2-default",
              listen="127.0.0.1:{port2} default_server"))
    assert gh.get("/", host="other.test").text == "port1-first"
    assert gh.get("/", host="b.test").text == "port1-second"
    assert gh.get("/", host="other.test", port=gh.port2).text == \
        "port2-default"
    assert gh.get("/", host="a.test", port=gh.port2).text == "port2-first"


def test_names_are_per_listen_address(gatehouse):
    gh = gatehouse(
        srv("one.test", "one")
        + srv("two.test", "two", listen="127.0.0.1:{port2}"))
    # two.test does not listen on port: the default server of port answers
    assert gh.get("/", host="two.test").text == "one"
    assert gh.get("/", host="two.test", port=gh.port2).text == "two"


def test_http11_without_host_is_400(names):
    r = names.get("/", host=None, version="HTTP/1.1")
    assert r.status == 400


def test_http10_without_host_goes_to_default_server(names):
    r = names.get("/", host=None, version="HTTP/1.0")
    assert (r.status, r.text) == (200, "default")


def test_two_host_headers_is_400(names):
    r = names.get("/", headers=[("Host", "exact.example.com")])
    assert r.status == 400


@pytest.mark.parametrize("host", ["bad/host", "a..b", "a\\b"])
def test_invalid_host_is_400(names, host):
    r = names.get("/", host=host)
    assert r.status == 400, (host, r)


def test_absolute_uri_host_wins_over_header(names):
    r = names.get("http://exact.example.com/x", host="nomatch.test")
    assert r.text == "exact"


def test_server_level_return(gatehouse):
    gh = gatehouse("""\
        server {
            listen 127.0.0.1:{port};
            return 200 "server-level";
            location / { return 200 "location-level"; }
        }
        """)
    assert gh.get("/").text == "server-level"
