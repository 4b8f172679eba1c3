"""Configuration of the balancing directives: nginx's messages where nginx
has the directive, file:line always."""

from test_config_errors import assert_rejected


def up(body, location="proxy_pass http://u;", extra=""):
    return f"""
        upstream u {{
            {body}
        }}
        {extra}
        server {{
            listen 127.0.0.1:{{port}};
            location / {{ {location} }}
        }}
    """


def test_backup_after_a_hash_method(gatehouse):
    for method in ("ip_hash;", "hash $uri;", "hash $uri consistent;",
                   "random;", "random two least_conn;"):
        gh = gatehouse(up(f"{method}\nserver 127.0.0.1:1;\n"
                          "server 127.0.0.1:2 backup;"), start=False)
        assert_rejected(gh, 'balancing method does not support parameter '
                        f'"backup" in {gh.where("backup")}')


def test_slow_start_after_a_hash_method(gatehouse):
    gh = gatehouse(up("ip_hash;\nserver 127.0.0.1:1 slow_start=10s;"),
                   start=False)
    assert_rejected(gh, 'balancing method does not support parameter '
                    f'"slow_start=10s" in {gh.where("slow_start")}')


def test_backup_before_the_method_is_accepted(gatehouse):
    # nginx accepts this order (the backup then only serves the round
    # robin fallback); so does gatehouse
    gh = gatehouse(up("server 127.0.0.1:1 backup;\nserver 127.0.0.1:2;\n"
                      "ip_hash;"), start=False)
    r = gh.run("-t")
    assert r.returncode == 0, r.stderr


def test_method_redefined_warns(gatehouse):
    gh = gatehouse(up("least_conn;\nip_hash;\nserver 127.0.0.1:1;"),
                   start=False)
    r = gh.run("-t")
    assert r.returncode == 0
    assert (f"gatehouse: [warn] load balancing method redefined in "
            f"{gh.where('ip_hash')}") in r.stderr


def test_invalid_method_parameters(gatehouse):
    for line, bad in (("hash $uri ketama;", "ketama"),
                      ("random three;", "three"),
                      ("random two least_time;", "least_time"),
                      ("least_time first_byte;", "first_byte"),
                      ("least_time header always;", "always")):
        gh = gatehouse(up(f"{line}\nserver 127.0.0.1:1;"), start=False)
        assert_rejected(gh, f'invalid parameter "{bad}" in '
                        f'{gh.where(line.split()[0])}')


def test_health_check_needs_a_zone(gatehouse):
    gh = gatehouse(up("server 127.0.0.1:1;",
                      "proxy_pass http://u; health_check;"), start=False)
    assert_rejected(gh, 'health check requires upstream "u" to be in '
                    f'shared memory ("zone") in {gh.where("health_check")}')


def test_health_check_needs_a_group(gatehouse):
    gh = gatehouse(up("zone u 64k; server 127.0.0.1:1;",
                      "return 200; health_check;"), start=False)
    assert_rejected(gh, '"health_check" needs "proxy_pass" to an upstream '
                    f'group in the same location in '
                    f'{gh.where("health_check")}')


def test_health_check_parameters(gatehouse):
    for param in ("interval=0", "fails=0", "passes=x", "uri=noslash",
                  "port=70000", "bogus"):
        gh = gatehouse(up("zone u 64k; server 127.0.0.1:1;",
                          f"proxy_pass http://u; health_check {param};"),
                       start=False)
        assert_rejected(gh, f'invalid parameter "{param}" in '
                        f'{gh.where("health_check")}')


def test_match_errors(gatehouse):
    gh = gatehouse(up("zone u 64k; server 127.0.0.1:1;",
                      "proxy_pass http://u; health_check match=nope;"),
                   start=False)
    assert_rejected(gh, f'match "nope" not found in '
                    f'{gh.where("health_check")}')
    for test, msg in (("status 99;", 'invalid status "99"'),
                      ("status 300-200;", 'invalid status "300-200"'),
                      ("header X >< y;", 'invalid parameter "><"'),
                      ("body = x;", 'invalid "body" test'),
                      ("color blue;", 'unknown test "color" in "match"'),
                      ('body ~ "(";', "pcre2_compile() failed")):
        gh = gatehouse(up("zone u 64k; server 127.0.0.1:1;",
                          "proxy_pass http://u; health_check match=m;",
                          extra=f"match m {{\n    {test}\n}}"), start=False)
        r = gh.run("-t")
        assert r.returncode == 1
        assert msg in r.stderr, r.stderr
        assert gh.where(test.split()[0]) in r.stderr


def test_sticky_errors(gatehouse):
    gh = gatehouse(up("server 127.0.0.1:1;\nsticky route $cookie_x;"),
                   start=False)
    assert_rejected(gh, 'sticky "route" is not supported, only "cookie" in '
                    f'{gh.where("sticky")}')
    gh = gatehouse(up("server 127.0.0.1:1;\nsticky cookie s expires=soon;"),
                   start=False)
    assert_rejected(gh, 'invalid parameter "expires=soon" in '
                    f'{gh.where("sticky")}')


def test_zone_shared_by_two_groups(gatehouse, upstream):
    a = upstream()
    b = upstream()
    gh = gatehouse(f"""
        upstream one {{ zone shared 64k; server {a.addr}; }}
        upstream two {{ zone shared; server {b.addr}; }}
        server {{
            listen 127.0.0.1:{{port}};
            location /1 {{ proxy_pass http://one; }}
            location /2 {{ proxy_pass http://two; }}
        }}
    """)
    assert gh.get("/1").status == 200 and gh.get("/2").status == 200
    assert len(a.requests) == 1 and len(b.requests) == 1


def test_zone_too_small_for_its_servers(gatehouse):
    servers = "\n".join(f"server 127.0.0.{i}:80;" for i in range(1, 200))
    gh = gatehouse(up(f"zone tiny 8k;\n{servers}"), start=False)
    rc, err = gh.start_fail()
    assert rc == 1
    assert 'upstream zone "tiny" is too small for its servers' in err, err
