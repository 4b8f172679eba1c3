"""Files from disk (root, alias, index, try_files, conditional requests)
and add_header, as nginx's static, index and headers modules."""

import email.utils
import os
import socket
import time

import pytest

from conftest import simple_server


@pytest.fixture
def www(tmp_path):
    """A document root made by the test."""
    root = tmp_path / "www"
    (root / "dir").mkdir(parents=True)
    (root / "noindex").mkdir()
    (root / "css").mkdir()
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "dir" / "index.html").write_text("dir index")
    (root / "hello.txt").write_text("hello, world\n")
    (root / "css" / "site.css").write_text("body{}")
    (root / "data.json").write_text('{"a":1}')
    (root / "app.js").write_text("let x;")
    (root / "pic.PNG").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "blob.unknownext").write_bytes(b"\x00\x01")
    (root / "empty.txt").write_text("")
    big = bytes(range(256)) * 4096          # 1 MiB: sendfile in pieces
    (root / "big.bin").write_bytes(big)
    secret = root / "secret.txt"
    secret.write_text("no")
    secret.chmod(0)
    return root


def served(gh, path, **kw):
    r = gh.get(path, **kw)
    return r.status, r.header("Content-Type"), r.body


# ------------------------------------------------------------------ files

@pytest.fixture
def static(gatehouse, www):
    return gatehouse(simple_server(f"""\
        root {www}/;
        location / {{ }}
        location /typed {{ default_type application/x-typed; }}
        """))


@pytest.mark.parametrize("path,ctype,body", [
    ("/hello.txt", "text/plain", b"hello, world\n"),
    ("/css/site.css", "text/css", b"body{}"),
    ("/data.json", "application/json", b'{"a":1}'),
    ("/app.js", "application/javascript", b"let x;"),
    ("/pic.PNG", "image/png", b"\x89PNG\r\n\x1a\n"),   # case-insensitive
    ("/blob.unknownext", "text/plain", b"\x00\x01"),    # default_type
    ("/index.html", "text/html", b"<h1>home</h1>"),
])
def test_file_with_type_and_length(static, path, ctype, body):
    r = static.get(path)
    assert r.status == 200
    assert r.header("Content-Type") == ctype
    assert r.header("Content-Length") == str(len(body))
    assert r.body == body


def test_big_file_via_sendfile(static, www):
    with static.conn() as c:
        r = c.request("/big.bin")
        assert r.status == 200
        assert r.body == (www / "big.bin").read_bytes()
        # keep-alive: the next response follows the file's last byte
        assert c.request("/hello.txt").body == b"hello, world\n"


def test_slow_reader_gets_whole_file(static, www):
    """More than the socket buffers hold: the rest goes out on write
    events, the descriptor stays open until the response is done."""
    data = os.urandom(1 << 16) * 128         # 8 MiB
    (www / "huge.bin").write_bytes(data)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    with s:
        s.connect(("127.0.0.1", static.port))
        s.sendall(b"GET /huge.bin HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n")
        time.sleep(0.3)
        got = bytearray()
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            got += b
    head, _, body = bytes(got).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == data


def test_empty_file(static):
    r = static.get("/empty.txt")
    assert (r.status, r.header("Content-Length"), r.body) == (200, "0", b"")


def test_validators(static, www):
    r = static.get("/hello.txt")
    st = os.stat(www / "hello.txt")
    assert r.header("Last-Modified") == \
        email.utils.formatdate(int(st.st_mtime), usegmt=True)
    assert r.header("ETag") == f'"{int(st.st_mtime):x}-{st.st_size:x}"'


def test_if_modified_since_304(static):
    r = static.get("/hello.txt")
    lm = r.header("Last-Modified")
    with static.conn() as c:
        r = c.request("/hello.txt", headers=[("If-Modified-Since", lm)])
        assert r.status == 304
        assert r.body == b""
        assert r.header("Content-Length") is None
        assert r.header("ETag") is not None
        # the connection stays in sync: no body bytes followed
        assert c.request("/hello.txt").body == b"hello, world\n"
    # another date (exact match, nginx's default) or garbage: full answer
    old = email.utils.formatdate(0, usegmt=True)
    assert static.get("/hello.txt",
                      headers=[("If-Modified-Since", old)]).status == 200
    assert static.get("/hello.txt",
                      headers=[("If-Modified-Since", "yesterday")]).status \
        == 200


def test_if_modified_since_other_date_forms(static, www):
    mtime = int(os.stat(www / "hello.txt").st_mtime)
    t = time.gmtime(mtime)
    rfc850 = time.strftime("%A, %d-%b-%y %H:%M:%S GMT", t)
    asctime = time.strftime("%a %b ", t) + f"{t.tm_mday:2d}" + \
        time.strftime(" %H:%M:%S %Y", t)
    for value in (rfc850, asctime):
        r = static.get("/hello.txt", headers=[("If-Modified-Since", value)])
        assert r.status == 304, value


def test_if_none_match(static):
    etag = static.get("/hello.txt").header("ETag")
    assert static.get("/hello.txt",
                      headers=[("If-None-Match", etag)]).status == 304
    assert static.get("/hello.txt",
                      headers=[("If-None-Match", f'"x", W/{etag}')]).status \
        == 304
    assert static.get("/hello.txt",
                      headers=[("If-None-Match", "*")]).status == 304
    assert static.get("/hello.txt",
                      headers=[("If-None-Match", '"other"')]).status == 200


def test_if_match_412(static):
    etag = static.get("/hello.txt").header("ETag")
    assert static.get("/hello.txt",
                      headers=[("If-Match", etag)]).status == 200
    assert static.get("/hello.txt",
                      headers=[("If-Match", '"nope"')]).status == 412


def test_head(static):
    with static.conn() as c:
        r = c.request("/hello.txt", method="HEAD")
        assert r.status == 200
        assert r.header("Content-Length") == "13"
        assert r.header("Content-Type") == "text/plain"
        assert c.request("/hello.txt").body == b"hello, world\n"


def test_missing_is_404(static):
    r = static.get("/nothing.txt")
    assert r.status == 404
    static.wait_log("error.log", r'open\(\) ".*/nothing.txt" failed')


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_permission_denied_is_403(static):
    assert static.get("/secret.txt").status == 403


def test_post_to_file_is_405(static):
    assert static.get("/hello.txt", method="POST", body="x").status == 405
    assert static.get("/hello.txt", method="DELETE").status == 405


def test_directory_without_slash_is_301(static):
    r = static.get("/dir?a=1")
    assert r.status == 301
    assert r.header("Location") == f"http://localhost:{static.port}/dir/?a=1"


def test_directory_index(static):
    r = static.get("/dir/")
    assert (r.status, r.header("Content-Type"), r.body) == \
        (200, "text/html", b"dir index")
    r = static.get("/")
    assert (r.status, r.body) == (200, b"<h1>home</h1>")


def test_directory_without_index_is_403(static):
    assert static.get("/noindex/").status == 403
    static.wait_log("error.log", r"directory index of .* is forbidden")


def test_missing_directory_is_404(static):
    assert static.get("/nodir/").status == 404


def test_default_type_per_location(static, www):
    (www / "typed").mkdir()
    (www / "typed" / "x.unknown").write_text("t")
    assert static.get("/typed/x.unknown").header("Content-Type") == \
        "application/x-typed"


def test_default_root_is_html_under_prefix(gatehouse):
    gh = gatehouse(simple_server("location / { }\n"), start=False)
    (gh.prefix / "html").mkdir()
    (gh.prefix / "html" / "index.html").write_text("default root")
    gh.start()
    r = gh.get("/")
    assert (r.status, r.body) == (200, b"default root")


def test_relative_root_is_under_prefix(gatehouse):
    gh = gatehouse(simple_server("root site;\nlocation / { }\n"),
                   start=False)
    (gh.prefix / "site").mkdir()
    (gh.prefix / "site" / "a.txt").write_text("rel")
    gh.start()
    assert gh.get("/a.txt").body == b"rel"


def test_index_list_and_absolute_fallback(gatehouse, www):
    (www / "dir2").mkdir()
    (www / "dir2" / "default.htm").write_text("second")
    (www / "fallback.html").write_text("fallback")
    gh = gatehouse(simple_server(f"""\
        root {www};
        index index.html default.htm /fallback.html;
        location / {{ }}
        """))
    assert gh.get("/dir/").body == b"dir index"
    assert gh.get("/dir2/").body == b"second"
    assert gh.get("/noindex/").body == b"fallback"


def test_alias(gatehouse, www, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "img.gif").write_bytes(b"GIF89a")
    gh = gatehouse(simple_server(f"""\
        root {www};
        location /i/ {{ alias {other}/; }}
        location ~ ^/re/(.+)$ {{ alias {other}/$1; }}
        """))
    assert served(gh, "/i/img.gif") == (200, "image/gif", b"GIF89a")
    assert served(gh, "/re/img.gif") == (200, "image/gif", b"GIF89a")
    assert gh.get("/i/none.gif").status == 404


def test_root_and_alias_conflict(gatehouse):
    gh = gatehouse(simple_server("location /x/ { root /a; alias /b/; }\n"),
                   start=False)
    r = gh.run("-t")
    assert r.returncode != 0
    assert '"alias" directive is duplicate, "root" directive was ' \
        'specified earlier' in r.stderr


def test_root_with_variable(gatehouse, tmp_path):
    for host in ("a.test", "b.test"):
        d = tmp_path / "sites" / host
        d.mkdir(parents=True)
        (d / "who.txt").write_text(host)
    gh = gatehouse(simple_server(f"""\
        root {tmp_path}/sites/$host;
        location / {{ }}
        location = /docroot {{ return 200 "$document_root"; }}
        """))
    assert gh.get("/who.txt", host="a.test").body == b"a.test"
    assert gh.get("/who.txt", host="b.test").body == b"b.test"
    assert gh.get("/docroot", host="a.test").text == \
        f"{tmp_path}/sites/a.test"


# -------------------------------------------------------------- try_files

@pytest.fixture
def tf(gatehouse, www):
    return gatehouse(simple_server(f"""\
        root {www};
        location / {{
            try_files $uri $uri/ @fallback;
        }}
        location @fallback {{
            return 200 "fallback for $uri";
        }}
        location /code/ {{ try_files $uri =418; }}
        location /front/ {{ try_files $uri /front.php?q=$uri&$args; }}
        location = /front.php {{ return 200 "front $args"; }}
        location /fb/ {{ try_files /nope /hello.txt =404; }}
        """))


def test_try_files_serves_the_file(tf):
    r = tf.get("/hello.txt")
    assert r.status == 200
    assert r.header("Content-Type") == "text/plain"
    assert r.header("Content-Length") == "13"
    assert r.body == b"hello, world\n"


def test_try_files_directory(tf):
    # "$uri/" finds the directory "/dir": the static handler then
    # redirects to "/dir/" (nginx), whose index is served
    r = tf.get("/dir")
    assert r.status == 301
    assert r.header("Location") == f"http://localhost:{tf.port}/dir/"
    r = tf.get("/dir/")
    assert (r.status, r.body) == (200, b"dir index")
    # "$uri" alone never takes a directory
    assert tf.get("/noindex/").status == 403


def test_try_files_named_location(tf):
    r = tf.get("/missing/file.txt")
    assert (r.status, r.text) == (200, "fallback for /missing/file.txt")


def test_try_files_code(tf):
    assert tf.get("/code/none").status == 418


def test_try_files_uri_with_args(tf):
    r = tf.get("/front/page?x=1")
    assert (r.status, r.text) == (200, "front q=/front/page&x=1")


def test_try_files_second_file(tf):
    r = tf.get("/fb/anything")
    assert (r.status, r.body) == (200, b"hello, world\n")


def test_try_files_bad_code_is_config_error(gatehouse):
    gh = gatehouse(simple_server("location / { try_files $uri =abc; }\n"),
                   start=False)
    r = gh.run("-t")
    assert r.returncode != 0
    assert 'invalid code "=abc"' in r.stderr


def test_request_filename_in_if(gatehouse, www):
    gh = gatehouse(simple_server(f"""\
        root {www};
        location / {{
            if (!-f $request_filename) {{ return 200 "no file $uri"; }}
        }}
        """))
    assert gh.get("/hello.txt").body == b"hello, world\n"
    assert gh.get("/nothere").text == "no file /nothere"


# ------------------------------------------------------------- add_header

@pytest.fixture
def hdr(gatehouse, www):
    return gatehouse(simple_server(f"""\
        root {www};
        add_header X-Server srv;
        add_header X-Always yes always;
        add_header X-Empty $arg_none;
        add_header X-Uri "u=$uri";
        location / {{ }}
        location /own/ {{
            add_header X-Own own;
            return 200 "own";
        }}
        location /redirect {{ return 302 /x; }}
        location /nocontent {{ return 204; }}
        location /teapot {{ return 418; }}
        location /err {{ return 500 "boom"; }}
        """))


def test_add_header_on_200(hdr):
    r = hdr.get("/hello.txt")
    assert r.status == 200
    assert r.header("X-Server") == "srv"
    assert r.header("X-Always") == "yes"
    assert r.header("X-Uri") == "u=/hello.txt"
    # an empty value adds nothing
    assert r.header("X-Empty") is None


def test_add_header_not_on_404_unless_always(hdr):
    r = hdr.get("/nothing")
    assert r.status == 404
    assert r.header("X-Server") is None
    assert r.header("X-Always") == "yes"


@pytest.mark.parametrize("path,status,present", [
    ("/redirect", 302, True),
    ("/nocontent", 204, True),
    ("/teapot", 418, False),
    ("/err", 500, False),
])
def test_add_header_status_list(hdr, path, status, present):
    r = hdr.get(path)
    assert r.status == status
    assert (r.header("X-Server") == "srv") is present
    assert r.header("X-Always") == "yes"


def test_add_header_on_304(hdr):
    lm = hdr.get("/hello.txt").header("Last-Modified")
    r = hdr.get("/hello.txt", headers=[("If-Modified-Since", lm)])
    assert r.status == 304
    assert r.header("X-Server") == "srv"


def test_add_header_level_replaces_parent(hdr):
    r = hdr.get("/own/")
    assert r.header("X-Own") == "own"
    # the location has its own add_header: none of the server's
    assert r.header("X-Server") is None
    assert r.header("X-Always") is None


def test_add_header_inherited_through_levels(gatehouse):
    gh = gatehouse(f"""\
        add_header X-Http http;
        server {{
            listen 127.0.0.1:{{port}};
            location / {{ return 200 "a"; }}
            location /s {{
                add_header X-Loc loc;
                location /s/nested {{ return 200 "n"; }}
            }}
        }}
        """)
    assert gh.get("/").header("X-Http") == "http"
    r = gh.get("/s/nested")
    assert r.header("X-Loc") == "loc" and r.header("X-Http") is None


def test_add_header_replaces_etag(gatehouse, www):
    gh = gatehouse(simple_server(f"""\
        root {www};
        location / {{ add_header ETag '"mine"'; }}
        """))
    r = gh.get("/hello.txt")
    assert r.header_all("ETag") == ['"mine"']


def test_add_header_bad_parameter(gatehouse):
    gh = gatehouse(simple_server("add_header X-A b sometimes;\n"),
                   start=False)
    r = gh.run("-t")
    assert r.returncode != 0
    assert 'invalid parameter "sometimes"' in r.stderr
