"""Key stability: ip_hash and hash keep a key on its server; consistent
hashing moves only about 1/N of the keys when a server is removed (and
only keys of that server), where plain hashing moves most of them.
"""

from conftest import Conn
from lbtools import backend_ports, backends, fetch, fetch_from, upstream_block

KEYS = [f"/?k=key{i}" for i in range(2000)]


def site(ports, head, params=None):
    return (backends(ports) + upstream_block("u", ports, params, head=head)
            + "server { listen 127.0.0.1:{port}; "
              "location / { proxy_pass http://u; } }\n")


def spread(port, keys):
    out = []
    for k in range(0, len(keys), 400):
        with Conn(port) as c:
            out += [fetch(c, p) for p in keys[k:k + 400]]
    return out


def test_ip_hash_keeps_clients(gatehouse):
    ports = backend_ports(3)
    gh = gatehouse(site(ports, "ip_hash;"))
    ips = [f"127.{a}.{b}.1" for a in range(1, 6) for b in range(0, 100, 10)]
    first = [fetch_from(gh.port, "/", ip) for ip in ips]
    assert len(set(first)) == 3
    # the same client always lands on the same server; so does its /24
    for ip, want in zip(ips, first):
        assert fetch_from(gh.port, "/", ip) == want
        assert fetch_from(gh.port, "/", ip[:-1] + "77") == want


def test_consistent_hash_moves_one_nth(gatehouse):
    ports = backend_ports(4)
    gh = gatehouse(site(ports, "hash $arg_k consistent;"))
    before = spread(gh.port, KEYS)
    assert spread(gh.port, KEYS[:200]) == before[:200]       # stable
    gh.stop()

    # server 2 removed from the list
    keep = [p for i, p in enumerate(ports) if i != 2]
    gh2 = gatehouse(backends(ports)
                    + upstream_block("u", keep, head="hash $arg_k consistent;")
                    + "server { listen 127.0.0.1:{port}; "
                      "location / { proxy_pass http://u; } }\n")
    after = spread(gh2.port, KEYS)
    moved = [k for k, (x, y) in enumerate(zip(before, after)) if x != y]
    # only the removed server's keys move, and they are about a quarter
    assert all(before[k] == "2" for k in moved)
    assert len(moved) == before.count("2")
    share = len(moved) / len(KEYS)
    print(f"\nconsistent hash: removing 1 of 4 servers moved "
          f"{share * 100:.1f}% of the keys")
    assert 0.15 <= share <= 0.35, share


def test_plain_hash_moves_most_keys(gatehouse):
    ports = backend_ports(4)
    gh = gatehouse(site(ports, "hash $arg_k;"))
    before = spread(gh.port, KEYS)
    gh.stop()
    keep = [p for i, p in enumerate(ports) if i != 2]
    gh2 = gatehouse(backends(ports)
                    + upstream_block("u", keep, head="hash $arg_k;")
                    + "server { listen 127.0.0.1:{port}; "
                      "location / { proxy_pass http://u; } }\n")
    after = spread(gh2.port, KEYS)
    moved = sum(x != y for x, y in zip(before, after)) / len(KEYS)
    print(f"\nplain hash: removing 1 of 4 servers moved {moved * 100:.1f}% "
          f"of the keys")
    assert moved > 0.5


def test_down_keeps_the_others_in_place(gatehouse):
    """Marking a server `down` (nginx's advice for ip_hash and hash)
    moves only its own keys."""
    ports = backend_ports(4)
    gh = gatehouse(site(ports, "hash $arg_k;"))
    before = spread(gh.port, KEYS)
    gh.stop()
    gh2 = gatehouse(site(ports, "hash $arg_k;", ["", "", "down", ""]))
    after = spread(gh2.port, KEYS)
    for x, y in zip(before, after):
        assert x == y or x == "2"
    assert "2" not in after
