"""Configuration errors: nginx-shaped messages naming file:line, exit code 1,
nothing started, both with -t and on a normal start."""

import re

from conftest import simple_server


def emerg_lines(stderr):
    return [ln for ln in stderr.splitlines()
            if ln.startswith("gatehouse: [emerg] ")]


def has_emerg(stderr, msg):
    """A line `gatehouse: [emerg] MSG`, possibly followed by `, hint`."""
    want = "gatehouse: [emerg] " + msg
    return any(ln == want or ln.startswith(want + ",")
               for ln in stderr.splitlines())


def assert_rejected(gh, *msgs, all_on_start=False):
    """-t fails with every msg; a normal start fails with (at least) the
    first, exits 1, and leaves no pid file behind."""
    r = gh.run("-t")
    assert r.returncode == 1, (r.returncode, r.stderr)
    for m in msgs:
        assert has_emerg(r.stderr, m), f"missing {m!r} in:\n{r.stderr}"
    assert (f"gatehouse: configuration file {gh.conf_path} test failed"
            in r.stderr.splitlines()), r.stderr
    assert "syntax is ok" not in r.stderr

    rc, err = gh.start_fail()
    assert rc == 1, (rc, err)
    for m in (msgs if all_on_start else msgs[:1]):
        assert has_emerg(err, m), f"missing {m!r} on start:\n{err}"
    assert not gh.pid_path.exists()
    assert gh.stdout() == ""


def test_unknown_directive_in_included_file(gatehouse):
    gh = gatehouse("include sites-enabled/*;\n", start=False, files={
        "sites-enabled/app": """\
            server {
                listen 127.0.0.1:{port};

                location / {
                    proxy_pas http://127.0.0.1:1;
                }
            }
            """})
    assert_rejected(gh, 'unknown directive "proxy_pas" in '
                    + gh.where("proxy_pas", "sites-enabled/app"))
    # the absolute path, the 5th line of the included file
    assert gh.where("proxy_pas", "sites-enabled/app") == \
        f"{gh.prefix}/conf/sites-enabled/app:5"


def test_unknown_directive_in_main_file(gatehouse):
    gh = gatehouse(simple_server("frobnicate on;\nlocation / { return 200; }\n"),
                   start=False)
    assert_rejected(gh, 'unknown directive "frobnicate" in '
                    + gh.where("frobnicate"))


def test_all_unknown_directives_reported_at_once(gatehouse):
    gh = gatehouse("""\
        include sites-enabled/*;
        include conf.d/*.conf;
        proxy_bufering on;
        """, start=False, files={
        "sites-enabled/app": """\
            server {
                listen 127.0.0.1:{port};
                proxy_pas http://127.0.0.1:1;
                location / {
                    frobnicate yes;
                    return 200 ok;
                }
            }
            """,
        "conf.d/extra.conf": """\
            # a comment line
            made_up_directive 1 2 3;
            """})
    msgs = [
        'unknown directive "proxy_pas" in '
        + gh.where("proxy_pas", "sites-enabled/app"),
        'unknown directive "frobnicate" in '
        + gh.where("frobnicate", "sites-enabled/app"),
        'unknown directive "made_up_directive" in '
        + gh.where("made_up_directive", "conf.d/extra.conf"),
        'unknown directive "proxy_bufering" in ' + gh.where("proxy_bufering"),
    ]
    r = gh.run("-t")
    assert r.returncode == 1
    for m in msgs:
        assert has_emerg(r.stderr, m), f"missing {m!r} in:\n{r.stderr}"
    assert len(emerg_lines(r.stderr)) == 4, r.stderr
    rc, err = gh.start_fail()
    assert rc == 1 and emerg_lines(err), err
    assert not gh.pid_path.exists()


def test_directive_not_allowed_here(gatehouse):
    gh = gatehouse("""\
        listen 127.0.0.1:{port};
        server {
            listen 127.0.0.1:{port};
        }
        """, start=False)
    assert_rejected(gh, '"listen" directive is not allowed here in '
                    + gh.where("listen"))


def test_directive_not_allowed_here_main_context(gatehouse):
    gh = gatehouse(conf="""\
        daemon off;
        error_log logs/error.log info;
        pid logs/gatehouse.pid;
        events { worker_connections 64; }
        keepalive_timeout 5s;
        http {
            server { listen 127.0.0.1:{port}; }
        }
        """, start=False)
    assert_rejected(gh, '"keepalive_timeout" directive is not allowed here in '
                    + gh.where("keepalive_timeout"))


def test_invalid_number_of_arguments(gatehouse):
    gh = gatehouse(simple_server("""\
        client_max_body_size 1 2;
        location / { return 200 ok; }
        """), start=False)
    assert_rejected(gh, 'invalid number of arguments in "client_max_body_size"'
                    ' directive in ' + gh.where("client_max_body_size"))


def test_invalid_number_of_arguments_events(gatehouse):
    gh = gatehouse(conf="""\
        daemon off;
        error_log logs/error.log info;
        pid logs/gatehouse.pid;
        events {
            worker_connections;
        }
        http {
            server { listen 127.0.0.1:{port}; }
        }
        """, start=False)
    assert_rejected(gh, 'invalid number of arguments in "worker_connections"'
                    ' directive in ' + gh.where("worker_connections"))


def test_block_directive_without_brace(gatehouse):
    gh = gatehouse(simple_server("location /x;\n"), start=False)
    assert_rejected(gh, 'directive "location" has no opening "{" in '
                    + gh.where("location /x"))


def test_duplicate_listen(gatehouse):
    gh = gatehouse("""\
        server {
            listen 127.0.0.1:{port};
            server_name a;
            listen 127.0.0.1:{port};
        }
        """, start=False)
    where = gh.where("listen", nth=2)
    r = gh.run("-t")
    assert r.returncode == 1
    lines = [ln for ln in emerg_lines(r.stderr) if "duplicate listen" in ln]
    assert lines, r.stderr
    assert lines[0] == (f"gatehouse: [emerg] a duplicate listen "
                        f"127.0.0.1:{gh.port} in {where}"), r.stderr
    rc, err = gh.start_fail()
    assert rc == 1 and "duplicate listen" in err
    assert not gh.pid_path.exists()


def test_duplicate_default_server(gatehouse):
    gh = gatehouse("""\
        server { listen 127.0.0.1:{port} default_server; }
        server { listen 127.0.0.1:{port} default_server; server_name b; }
        """, start=False)
    r = gh.run("-t")
    assert r.returncode == 1
    where = gh.where("default_server", nth=2)
    assert any("duplicate default server" in ln and ln.endswith(" in " + where)
               for ln in emerg_lines(r.stderr)), r.stderr
    rc, err = gh.start_fail()
    assert rc == 1 and not gh.pid_path.exists()


def _assert_invalid_value(gh, directive, word="value"):
    """nginx: `"DIRECTIVE" directive invalid value in F:L` (or `invalid
    number` for plain numbers); the bad value may be quoted in between."""
    where = gh.where(directive)
    r = gh.run("-t")
    assert r.returncode == 1, r.stderr
    rx = re.compile(r'^gatehouse: \[emerg\] .*"%s".*invalid %s.* in %s$'
                    % (re.escape(directive), word, re.escape(where)))
    rx2 = re.compile(r'^gatehouse: \[emerg\] .*invalid %s.*"%s".* in %s$'
                     % (word, re.escape(directive), re.escape(where)))
    assert any(rx.match(ln) or rx2.match(ln)
               for ln in emerg_lines(r.stderr)), r.stderr
    rc, err = gh.start_fail()
    assert rc == 1 and re.search("invalid %s" % word, err), err
    assert not gh.pid_path.exists()


def test_invalid_size(gatehouse):
    gh = gatehouse(simple_server("client_max_body_size 10q;\n"), start=False)
    _assert_invalid_value(gh, "client_max_body_size")
    r = gh.run("-t")
    assert has_emerg(r.stderr, '"client_max_body_size" directive invalid '
                     'value "10q" in ' + gh.where("client_max_body_size")) or \
        has_emerg(r.stderr, '"client_max_body_size" directive invalid value in '
                  + gh.where("client_max_body_size")), r.stderr


def test_invalid_time(gatehouse):
    gh = gatehouse(simple_server("keepalive_timeout abc;\n"), start=False)
    _assert_invalid_value(gh, "keepalive_timeout")


def test_invalid_number(gatehouse):
    gh = gatehouse(simple_server("keepalive_requests 12x;\n"), start=False)
    _assert_invalid_value(gh, "keepalive_requests", "(?:value|number)")


def test_invalid_flag(gatehouse):
    gh = gatehouse(simple_server("absolute_redirect maybe;\n"), start=False)
    r = gh.run("-t")
    assert r.returncode == 1, r.stderr
    # nginx: invalid value "maybe" in "absolute_redirect" directive,
    # it must be "on" or "off" in F:L
    where = gh.where("absolute_redirect")
    assert any("maybe" in ln and "absolute_redirect" in ln
               and ln.endswith(" in " + where)
               for ln in emerg_lines(r.stderr)), r.stderr


def test_invalid_flag_on_accepted_but_ignored_directive(gatehouse):
    # directives accepted for compatibility (sendfile, tcp_nopush, ...)
    # still check their value, as nginx does
    gh = gatehouse(simple_server("sendfile maybe;\n"), start=False)
    r = gh.run("-t")
    assert r.returncode == 1, r.stderr
    where = gh.where("sendfile")
    assert any("maybe" in ln and "sendfile" in ln
               and ln.endswith(" in " + where)
               for ln in emerg_lines(r.stderr)), r.stderr


def test_unexpected_closing_brace(gatehouse):
    gh = gatehouse(conf="""\
        daemon off;
        error_log logs/error.log info;
        pid logs/gatehouse.pid;
        events { worker_connections 64; }
        http {
            server { listen 127.0.0.1:{port}; }
        }
        }
        """, start=False)
    assert_rejected(gh, 'unexpected "}" in ' + gh.conf_path.as_posix() + ":8")


def test_unexpected_end_of_file(gatehouse):
    gh = gatehouse(conf="""\
        daemon off;
        error_log logs/error.log info;
        pid logs/gatehouse.pid;
        events { worker_connections 64; }
        http {
            server { listen 127.0.0.1:{port}; }
        """, start=False)
    nlines = len(gh.conf_path.read_text().splitlines())
    assert_rejected(gh, 'unexpected end of file, expecting "}" in '
                    f"{gh.conf_path}:{nlines + 1}")


def test_unexpected_end_of_file_missing_semicolon(gatehouse):
    gh = gatehouse(conf="""\
        daemon off;
        error_log logs/error.log info;
        pid logs/gatehouse.pid;
        events { worker_connections 64; }
        http {
            server { listen 127.0.0.1:{port}; }
        }
        worker_processes 1""", start=False)
    r = gh.run("-t")
    assert r.returncode == 1
    assert any(ln.startswith('gatehouse: [emerg] unexpected end of file, '
                             'expecting ";" or "}" in ' + str(gh.conf_path))
               for ln in r.stderr.splitlines()), r.stderr


def test_unexpected_semicolon_and_brace(gatehouse):
    gh = gatehouse(simple_server("location / { return 200 ok; }\n;\n"),
                   start=False)
    r = gh.run("-t")
    assert r.returncode == 1
    assert any(ln.startswith('gatehouse: [emerg] unexpected ";" in '
                             + str(gh.conf_path))
               for ln in r.stderr.splitlines()), r.stderr


def test_missing_include_file(gatehouse):
    gh = gatehouse("include snippets/missing.conf;\n" + simple_server(),
                   start=False)
    path = gh.conf_dir / "snippets" / "missing.conf"
    where = gh.where("include snippets/missing.conf")
    r = gh.run("-t")
    assert r.returncode == 1
    rx = re.compile(r'^gatehouse: \[emerg\] open\(\) "%s" failed '
                    r'\(2: No such file or directory\) in %s$'
                    % (re.escape(str(path)), re.escape(where)))
    assert any(rx.match(ln) for ln in r.stderr.splitlines()), r.stderr
    rc, err = gh.start_fail()
    assert rc == 1 and "missing.conf" in err
    assert not gh.pid_path.exists()


def test_glob_include_matching_nothing_is_fine(gatehouse):
    gh = gatehouse("include conf.d/*.conf;\n"
                   + simple_server("location / { return 200 ok; }\n"))
    (gh.conf_dir / "conf.d").mkdir(exist_ok=True)
    assert gh.get("/").body == b"ok"


def test_include_forms_resolve_against_conf_dir(gatehouse):
    gh = gatehouse("""\
        include conf.d/*.conf;
        include sites-enabled/*;
        """, files={
        "conf.d/upgrade.conf": """\
            map $http_upgrade $connection_upgrade {
                default upgrade;
                ''      close;
            }
            """,
        "snippets/loc.conf": 'location /snip { return 200 "snippet"; }\n',
        "sites-enabled/app": """\
            server {
                listen 127.0.0.1:{port};
                include snippets/loc.conf;
                location / { return 200 "app $connection_upgrade"; }
            }
            """})
    assert gh.get("/snip").body == b"snippet"
    assert gh.get("/").body == b"app close"


def test_unknown_variable(gatehouse):
    gh = gatehouse(simple_server(
        'location / { return 200 "x $no_such_variable"; }\n'), start=False)
    r = gh.run("-t")
    assert r.returncode == 1
    # nginx checks variables at the end of http{}, so no file:line here
    assert any('unknown "no_such_variable" variable' in ln
               for ln in emerg_lines(r.stderr)), r.stderr
    rc, _ = gh.start_fail()
    assert rc == 1


def test_quotes_and_escapes(gatehouse):
    gh = gatehouse(simple_server(r"""
        location = /dq { return 200 "a\"b"; }
        location = /sq { return 200 'single "q" \'x\''; }
        location = /bs { return 200 "back\\slash"; }
        location = /tab { return 200 "t\tn\n"; }
        location = /hash { return 200 "not # a comment"; } # a comment
        location = /space { return 200 "two  spaces"; }
        location = "/quoted loc" { return 200 quoted-location; }
        """))
    assert gh.get("/dq").body == b'a"b'
    assert gh.get("/sq").body == b"single \"q\" 'x'"
    assert gh.get("/bs").body == b"back\\slash"
    assert gh.get("/tab").body == b"t\tn\n"
    assert gh.get("/hash").body == b"not # a comment"
    assert gh.get("/space").body == b"two  spaces"
    assert gh.get("/quoted%20loc").body == b"quoted-location"


def test_variables_in_values(gatehouse):
    gh = gatehouse(simple_server("""
        location /v {
            return 200 "[$uri] [${uri}x] [$request_method$uri] [${request_method}_$uri]";
        }
        """))
    r = gh.get("/var")
    assert r.status == 200
    assert r.body == b"[/var] [/varx] [GET/var] [GET_/var]", r.body
