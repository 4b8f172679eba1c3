"""access_log and log_format (escape=default|json|none, combined)."""

import datetime
import json
import re
import time

from conftest import simple_server

LOGS = """\
log_format main '$remote_addr "$request" $status $body_bytes_sent $request_time';
log_format js escape=json '{"req":"$request","status":$status,"ua":"$http_user_agent","t":$request_time}';
log_format dflt '$remote_addr "$http_user_agent"';
log_format raw escape=none 'raw "$http_user_agent"';
access_log logs/main.log main;
""" + simple_server("""\
    location /j { access_log logs/json.log js; return 200 "ok"; }
    location /d { access_log logs/dflt.log dflt; return 200 "ok"; }
    location /n { access_log logs/raw.log raw; return 200 "ok"; }
    location /two {
        access_log logs/dflt.log dflt;
        access_log logs/json.log js;
        return 200 "ok";
    }
    location /off { access_log off; return 200 "ok"; }
    location /nf { return 404; }
    location / { return 200 "hello"; }
    """)

UA = 'a"b\\c\td'       # a quote, a backslash, a control character (tab)


def test_custom_format_line(gatehouse):
    gh = gatehouse(LOGS)
    gh.get("/a?q=1")
    m = gh.wait_log("main.log", r'^127\.0\.0\.1 "GET /a\?q=1 HTTP/1\.1" 200 5 '
                    r'(\d+\.\d{3})$')
    assert float(m.group(1)) < 5
    gh.get("/nf")
    gh.wait_log("main.log", r'^127\.0\.0\.1 "GET /nf HTTP/1\.1" 404 \d+ ')
    gh.get("/a", method="HEAD")
    gh.wait_log("main.log", r'^127\.0\.0\.1 "HEAD /a HTTP/1\.1" 200 0 ')


def test_escape_json(gatehouse):
    gh = gatehouse(LOGS)
    gh.get("/j", headers=[("User-Agent", UA)])
    gh.wait_log("json.log", r"\S")
    line = gh.log("json.log").splitlines()[0]
    rec = json.loads(line)
    assert rec["req"] == "GET /j HTTP/1.1"
    assert rec["status"] == 200
    assert rec["ua"] == UA
    assert isinstance(rec["t"], float)
    assert '\\"' in line and "\\\\" in line and "\\t" in line


def test_escape_default(gatehouse):
    gh = gatehouse(LOGS)
    gh.get("/d", headers=[("User-Agent", UA)])
    gh.wait_log("dflt.log", r"\S")
    assert gh.log("dflt.log") == '127.0.0.1 "a\\x22b\\x5Cc\\x09d"\n'


def test_escape_none(gatehouse):
    gh = gatehouse(LOGS)
    gh.get("/n", headers=[("User-Agent", 'q"q')])
    gh.wait_log("raw.log", r"\S")
    assert gh.log("raw.log") == 'raw "q"q"\n'


def test_location_access_log_overrides_and_off(gatehouse):
    gh = gatehouse(LOGS)
    gh.get("/off")
    gh.get("/j")
    gh.get("/two", headers=[("User-Agent", "two")])
    gh.get("/last")
    gh.wait_log("main.log", r'"GET /last ')
    main = gh.log("main.log")
    assert "/off" not in main and "/j " not in main and "/two" not in main
    gh.wait_log("dflt.log", r'"two"')
    gh.wait_log("json.log", r'"GET /two HTTP/1.1"')


def test_default_combined_format(gatehouse):
    gh = gatehouse(simple_server("""\
        access_log logs/access.log;
        location / { return 200 "hello"; }
        """))
    gh.get("/c?x=1", headers=[("Referer", "http://ref.test/"),
                              ("User-Agent", "ua/1.0")])
    gh.get("/noref")
    m = gh.wait_log(
        "access.log",
        r'^127\.0\.0\.1 - - \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d '
        r'[+-]\d{4})\] "GET /c\?x=1 HTTP/1\.1" 200 5 "http://ref\.test/" '
        r'"ua/1\.0"$')
    t = datetime.datetime.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S %z")
    assert abs(t.timestamp() - time.time()) < 5
    gh.wait_log("access.log",
                r'^127\.0\.0\.1 - - \[[^]]+\] "GET /noref HTTP/1\.1" 200 5 '
                r'"-" "-"$')


def test_access_log_written_after_each_request(gatehouse):
    gh = gatehouse(simple_server("""\
        access_log logs/access.log;
        location / { return 200 "hello"; }
        """))
    with gh.conn() as c:
        for i in range(3):
            c.request(f"/k{i}")
            gh.wait_log("access.log", rf'"GET /k{i} HTTP/1\.1"')
    assert len(gh.log("access.log").splitlines()) == 3


def test_bad_request_is_logged(gatehouse):
    gh = gatehouse(simple_server("""\
        access_log logs/access.log;
        location / { return 200 "hello"; }
        """))
    r = gh.raw(b"BAD LINE HERE\r\n\r\n")
    assert r.status == 400
    gh.wait_log("access.log", r'" 400 \d+ ')
    assert re.search(r"\S", gh.log("access.log"))
