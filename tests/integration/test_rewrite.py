"""The rewrite module beyond `return`: rewrite (flags, captures, the
arguments rule), if (every condition type, the block's own confs), set and
break, as nginx's ngx_http_rewrite_module documents them."""

import pytest

from conftest import simple_server

# ---------------------------------------------------------------- rewrite

REWRITES = simple_server("""\
    # server level: runs before the location search
    rewrite ^/old/(.*)$ /new/$1;

    location /new/ { return 200 "new uri=$uri args=$args"; }

    location /last/ {
        rewrite ^/last/(\\w+)/(\\w+)$ /dest/$2/$1 last;
        return 500 "not reached";
    }
    location /dest/ { return 200 "dest uri=$uri args=$args"; }

    location /chain/ {
        # no flag: the script goes on with the new URI, then the
        # location is searched again
        rewrite ^/chain/a$ /chain/b;
        rewrite ^/chain/b$ /dest/c;
    }

    location /args/ {
        rewrite ^/args/keep$ /dest/keep last;
        rewrite ^/args/add$ /dest/add?x=1 last;
        rewrite ^/args/only$ /dest/only?x=1? last;
        rewrite ^/args/drop$ /dest/drop? last;
        rewrite ^/args/cap/(\\w+)$ /dest/cap?user=$1 last;
    }

    location /redir/ {
        rewrite ^/redir/temp/(.*)$ /dest/$1 redirect;
        rewrite ^/redir/perm/(.*)$ /dest/$1 permanent;
        rewrite ^/redir/url$ http://example.com/x;
        rewrite ^/redir/urlperm$ https://example.com/y permanent;
        rewrite ^/redir/scheme$ $scheme://other.test/z last;
        rewrite ^/redir/q$ /dest/q?a=1 redirect;
        rewrite ^/redir/qq$ /dest/qq? redirect;
    }

    location /loop/ {
        rewrite ^ /loop/again last;
    }

    location = /to-internal { rewrite ^ /hidden last; }
    location /hidden { internal; return 200 "hidden"; }

    location /nomatch/ {
        rewrite ^/nothing$ /dest/x last;
        return 200 "no match";
    }
    """)


@pytest.fixture
def rw(gatehouse):
    return gatehouse(REWRITES)


def test_rewrite_last_with_captures(rw):
    r = rw.get("/last/one/two")
    assert (r.status, r.text) == (200, "dest uri=/dest/two/one args=")


def test_rewrite_break_stays_in_location(gatehouse, tmp_path):
    """break: the rest of the script (the return) is skipped and the
    request is served by this location with the new URI."""
    www = tmp_path / "www"
    (www / "dest").mkdir(parents=True)
    (www / "dest" / "x.txt").write_text("file x")
    gh = gatehouse(simple_server(f"""\
        root {www};
        location /brk/ {{
            add_header X-Where brk;
            rewrite ^/brk/(.*)$ /dest/$1 break;
            return 500 "not reached";
        }}
        location /dest/ {{ return 200 "wrong location"; }}
        """))
    r = gh.get("/brk/x.txt")
    assert (r.status, r.text) == (200, "file x")
    assert r.header("X-Where") == "brk"
    assert r.header("Content-Type") == "text/plain"


def test_rewrite_server_level(rw):
    r = rw.get("/old/thing?z=9")
    assert (r.status, r.text) == (200, "new uri=/new/thing args=z=9")


def test_rewrite_without_flag_goes_on_then_searches(rw):
    r = rw.get("/chain/a")
    assert (r.status, r.text) == (200, "dest uri=/dest/c args=")


@pytest.mark.parametrize("uri,want", [
    # no '?' in the replacement: the request's arguments stay
    ("/args/keep?a=1", "dest uri=/dest/keep args=a=1"),
    # new arguments, the request's appended (nginx's documented rule)
    ("/args/add?a=1", "dest uri=/dest/add args=x=1&a=1"),
    ("/args/add", "dest uri=/dest/add args=x=1"),
    # a trailing '?' keeps the old ones out
    ("/args/only?a=1", "dest uri=/dest/only args=x=1"),
    ("/args/drop?a=1", "dest uri=/dest/drop args="),
    ("/args/cap/bob?a=1", "dest uri=/dest/cap args=user=bob&a=1"),
])
def test_rewrite_arguments(rw, uri, want):
    r = rw.get(uri)
    assert (r.status, r.text) == (200, want)


def test_rewrite_redirect_302(rw):
    r = rw.get("/redir/temp/abc?k=v")
    assert r.status == 302
    assert r.header("Location") == \
        f"http://localhost:{rw.port}/dest/abc?k=v"


def test_rewrite_permanent_301(rw):
    r = rw.get("/redir/perm/abc")
    assert r.status == 301
    assert r.header("Location") == f"http://localhost:{rw.port}/dest/abc"
    assert b"301 Moved Permanently" in r.body


def test_rewrite_url_replacement_is_302(rw):
    r = rw.get("/redir/url")
    assert (r.status, r.header("Location")) == (302, "http://example.com/x")


def test_rewrite_url_replacement_permanent(rw):
    r = rw.get("/redir/urlperm?a=b")
    assert (r.status, r.header("Location")) == \
        (301, "https://example.com/y?a=b")


def test_rewrite_scheme_replacement_is_redirect(rw):
    r = rw.get("/redir/scheme")
    assert (r.status, r.header("Location")) == (302, "http://other.test/z")


def test_rewrite_redirect_arguments(rw):
    r = rw.get("/redir/q?b=2")
    assert r.header("Location").endswith("/dest/q?a=1&b=2")
    r = rw.get("/redir/qq?b=2")
    assert r.header("Location").endswith("/dest/qq")


def test_rewrite_cycle_is_500(rw):
    r = rw.get("/loop/x")
    assert r.status == 500
    rw.wait_log("error.log", r"rewrite or internal redirection cycle")


def test_rewrite_reaches_internal_location(rw):
    assert rw.get("/hidden").status == 404
    r = rw.get("/to-internal")
    assert (r.status, r.text) == (200, "hidden")


def test_rewrite_no_match_goes_on(rw):
    r = rw.get("/nomatch/y")
    assert (r.status, r.text) == (200, "no match")


def test_rewrite_escapes_captures_in_redirects(rw):
    # "%3F" is a '?' in the decoded URI: it must not become the start of
    # the arguments of the Location
    r = rw.get("/redir/temp/a%3Fb")
    assert r.status == 302
    assert r.header("Location").endswith("/dest/a%3Fb")


def test_rewrite_bad_flag_is_config_error(gatehouse):
    gh = gatehouse(simple_server("rewrite ^ /x sideways;\n"), start=False)
    r = gh.run("-t")
    assert r.returncode != 0
    assert 'invalid parameter "sideways"' in r.stderr


def test_rewrite_bad_regex_is_config_error(gatehouse):
    gh = gatehouse(simple_server("rewrite ^(/x /y;\n"), start=False)
    r = gh.run("-t")
    assert r.returncode != 0


# --------------------------------------------------------------------- if

IFS = simple_server("""\
    location /var {
        if ($arg_x) { return 200 "x is set"; }
        return 200 "x is empty or 0";
    }
    location /eq {
        if ($arg_a = yes) { return 200 "eq"; }
        if ($arg_a != "no") { return 200 "ne $arg_a"; }
        return 200 "is no";
    }
    location /re {
        if ($http_user_agent ~ ^Mozilla/(\\d+)) { return 200 "moz $1"; }
        if ($http_user_agent ~* curl) { return 200 "curl, any case"; }
        if ($http_user_agent !~ ^x) { return 200 "not x"; }
        return 200 "x";
    }
    location /re-nocase {
        if ($http_user_agent !~* ^bot) { return 200 "human"; }
        return 403;
    }
    location /files/ {
        if (-f $request_filename) { return 200 "file"; }
        if (-d $request_filename) { return 200 "dir"; }
        if (!-e $request_filename) { return 200 "nothing"; }
        return 200 "other";
    }
    location /spaced {
        if ( $http_x_s = "a b" ) { return 200 "spaced"; }
        return 200 "plain";
    }
    location /method {
        if ($request_method = POST) { return 405; }
        return 200 "get";
    }
    location /set {
        set $who "world";
        if ($arg_name) { set $who $arg_name; }
        return 200 "hello $who";
    }
    location /set-chain {
        set $a "1";
        set $b "${a}2";
        set $a "x";
        return 200 "$a $b";
    }
    location /setargs {
        set $args "forced=1";
        return 200 "args=$args";
    }
    location /brk {
        set $v "before";
        break;
        set $v "after";
        return 200 "not reached";
    }
    location /if-rewrite {
        if ($arg_go) { rewrite ^ /dest last; }
        return 200 "stayed";
    }
    location /dest { return 200 "dest"; }
    """)


@pytest.fixture
def ifs(gatehouse, tmp_path):
    www = tmp_path / "www"
    (www / "files" / "sub").mkdir(parents=True)
    (www / "files" / "a.txt").write_text("a")
    return gatehouse(f"root {www};\n" + IFS)


@pytest.mark.parametrize("uri,want", [
    ("/var?x=1", "x is set"),
    ("/var?x=abc", "x is set"),
    ("/var?x=0", "x is empty or 0"),
    ("/var?x=", "x is empty or 0"),
    ("/var", "x is empty or 0"),
])
def test_if_variable(ifs, uri, want):
    assert ifs.get(uri).text == want


@pytest.mark.parametrize("uri,want", [
    ("/eq?a=yes", "eq"),
    ("/eq?a=maybe", "ne maybe"),
    ("/eq?a=no", "is no"),
    ("/eq?a=YES", "ne YES"),           # = is case-sensitive
])
def test_if_equal_and_not_equal(ifs, uri, want):
    assert ifs.get(uri).text == want


@pytest.mark.parametrize("ua,want", [
    ("Mozilla/5.0 (X11)", "moz 5"),     # captures
    ("CURL/8", "curl, any case"),       # ~*
    ("wget", "not x"),                  # !~
    ("xyz", "x"),
])
def test_if_regex(ifs, ua, want):
    assert ifs.get("/re", headers=[("User-Agent", ua)]).text == want


def test_if_regex_negated_caseless(ifs):
    assert ifs.get("/re-nocase", headers=[("User-Agent", "Firefox")]).text \
        == "human"
    assert ifs.get("/re-nocase", headers=[("User-Agent", "BOTx")]).status \
        == 403


@pytest.mark.parametrize("uri,want", [
    ("/files/a.txt", "file"),
    ("/files/sub", "dir"),
    ("/files/none", "nothing"),
])
def test_if_file_tests(ifs, uri, want):
    assert ifs.get(uri).text == want


def test_if_quoted_value_and_spaced_parentheses(ifs):
    assert ifs.get("/spaced", headers=[("X-S", "a b")]).text == "spaced"
    assert ifs.get("/spaced", headers=[("X-S", "ab")]).text == "plain"


def test_if_return_inside(ifs):
    assert ifs.get("/method", method="POST", body="x").status == 405
    assert ifs.get("/method").text == "get"


def test_set_and_use_in_return(ifs):
    assert ifs.get("/set").text == "hello world"
    assert ifs.get("/set?name=bob").text == "hello bob"


def test_set_values_are_evaluated_in_order(ifs):
    assert ifs.get("/set-chain").text == "x 12"


def test_set_args(ifs):
    assert ifs.get("/setargs?a=1").text == "args=forced=1"


def test_break_stops_the_script(ifs):
    # after `break` nothing of the script runs: no return, so the
    # location serves files (none here)
    assert ifs.get("/brk").status == 404


def test_rewrite_inside_if(ifs):
    assert ifs.get("/if-rewrite?go=1").text == "dest"
    assert ifs.get("/if-rewrite").text == "stayed"


def test_if_block_confs_apply(gatehouse, tmp_path):
    """The if{} block is a location-level conf: add_header inside it
    applies when the condition holds (and replaces the location's own
    list, as in nginx), and the location's content handling goes on."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "page.html").write_text("<p>page</p>")
    gh = gatehouse(simple_server(f"""\
        root {www};
        location / {{
            add_header X-Loc loc;
            if ($arg_tag) {{
                add_header X-Tag $arg_tag;
            }}
        }}
        location /two {{
            set $t 1;
            if ($t) {{ add_header X-First 1; }}
            if ($t) {{ add_header X-Second 2; }}
            return 204;
        }}
        """))
    r = gh.get("/page.html")
    assert r.status == 200 and r.text == "<p>page</p>"
    assert r.header("X-Loc") == "loc" and r.header("X-Tag") is None
    r = gh.get("/page.html?tag=t1")
    assert r.status == 200 and r.text == "<p>page</p>"
    assert r.header("X-Tag") == "t1" and r.header("X-Loc") is None
    # nginx's "if is evil" example: only the last true block counts
    r = gh.get("/two")
    assert r.status == 204
    assert r.header("X-First") is None and r.header("X-Second") == "2"


def test_server_level_if(gatehouse):
    gh = gatehouse(simple_server("""\
        if ($http_x_block) { return 403; }
        if ($arg_moved) { rewrite ^ /moved last; }
        location / { return 200 "root $uri"; }
        """))
    assert gh.get("/a", headers=[("X-Block", "1")]).status == 403
    assert gh.get("/a?moved=1").text == "root /moved"
    assert gh.get("/a").text == "root /a"


@pytest.mark.parametrize("cond,msg", [
    ("$a = b", "invalid condition"),             # no parentheses
    ("($a === b)", 'unexpected "===" in condition'),
    ("(-q /tmp)", 'invalid condition "-q"'),
    ("(a = b)", 'invalid condition "a"'),
])
def test_if_bad_conditions(gatehouse, cond, msg):
    gh = gatehouse(simple_server(
        f"location / {{ if {cond} {{ return 200; }} }}\n"), start=False)
    r = gh.run("-t")
    assert r.returncode != 0
    assert msg in r.stderr, r.stderr


def test_set_bad_name_and_duplicate(gatehouse):
    gh = gatehouse(simple_server("location / { set x 1; }\n"), start=False)
    r = gh.run("-t")
    assert r.returncode != 0 and 'invalid variable name "x"' in r.stderr
    gh = gatehouse(simple_server("location / { set $uri 1; }\n"), start=False)
    r = gh.run("-t")
    assert r.returncode != 0 and 'the duplicate "uri" variable' in r.stderr


def test_if_not_allowed_inside_if(gatehouse):
    gh = gatehouse(simple_server(
        "location / { if ($a) { if ($b) { return 200; } } }\n"), start=False)
    r = gh.run("-t")
    assert r.returncode != 0
    assert '"if" directive is not allowed here' in r.stderr


def test_rewrite_log_and_uninitialized_variable_warn(gatehouse):
    gh = gatehouse(simple_server("""\
        rewrite_log on;
        uninitialized_variable_warn on;
        location / {
            if ($never) { set $never 1; }
            rewrite ^/a$ /b;
            return 200 "ok $uri";
        }
        """))
    assert gh.get("/a").text == "ok /b"
    gh.wait_log("error.log", r'"\^/a\$" matches "/a"')
    gh.wait_log("error.log", r'rewritten data: "/b"')
    gh.wait_log("error.log", r'using uninitialized "never" variable')
