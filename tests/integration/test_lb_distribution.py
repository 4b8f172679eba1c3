"""How 10,000 requests spread over weighted servers, per method.

The backends are `return 200 "<index>"` servers of the same gatehouse, the
client uses keep-alive connections and the group keeps its connections
too, so each run takes a second or two.  The tolerances:

  round robin, least_conn   exact: smooth weighted round robin gives each
                            server weight/total of every `total` picks
  same, 2 workers + zone    exact: the workers share one round robin
  2 workers, no zone        each worker is exact on its own share; the
                            sum is off by less than the weight total per
                            worker (stated as 0.5% here)
  random                    +-3 percentage points (over 6 standard
                            deviations at n = 10,000)
  hash KEY (10,000 keys)    +-3 percentage points
  hash KEY consistent       +-6 percentage points (ketama's 160 points
                            per weight unit leave a few percent of
                            imbalance)

Each test prints the shares it measured (pytest -s shows them).
"""

import json

from conftest import Conn
from lbtools import backend_ports, backends, counts, fetch, upstream_block

N = 10000


def run(gatehouse, head, params, paths, workers=1, zone=False, conns=20):
    ports = backend_ports(len(params))
    tail = "keepalive 16;" + (" zone lbz 64k;" if zone else "")
    gh = gatehouse(backends(ports)
                   + upstream_block("u", ports, params, head=head, tail=tail)
                   + "server { listen 127.0.0.1:{port} reuseport; location / { "
                     "proxy_pass http://u; proxy_http_version 1.1; "
                     "proxy_set_header Connection \"\"; } }\n",
                   workers=workers)
    ids = []
    per = (len(paths) + conns - 1) // conns
    for k in range(conns):
        with Conn(gh.port) as c:
            for p in paths[k * per:(k + 1) * per]:
                ids.append(fetch(c, p))
    assert all(not x.startswith("E") for x in ids), set(ids)
    return counts(ids, len(params))


def report(name, got, weights):
    total = sum(got)
    want = [w / sum(weights) for w in weights]
    err = max(abs(g / total - w) for g, w in zip(got, want))
    print(f"\n{name}: counts {got}, expected shares "
          f"{[round(w, 4) for w in want]}, max error {err * 100:.2f} "
          f"percentage points")
    return err


def test_round_robin_exact(gatehouse):
    got = run(gatehouse, "", ["weight=5", "weight=3", "weight=2"],
              ["/"] * N)
    assert report("round robin 5:3:2", got, [5, 3, 2]) == 0
    assert got == [5000, 3000, 2000]


def test_least_conn_sequential_exact(gatehouse):
    got = run(gatehouse, "least_conn;", ["weight=5", "weight=3", "weight=2"],
              ["/"] * N)
    assert got == [5000, 3000, 2000]


def test_round_robin_two_workers_shared(gatehouse):
    got = run(gatehouse, "", ["weight=5", "weight=3", "weight=2"],
              ["/"] * N, workers=2, zone=True, conns=20)
    report("round robin 5:3:2, 2 workers, zone", got, [5, 3, 2])
    assert got == [5000, 3000, 2000]


def test_round_robin_two_workers_own(gatehouse):
    got = run(gatehouse, "", ["weight=5", "weight=3", "weight=2"],
              ["/"] * N, workers=2, conns=20)
    assert report("round robin 5:3:2, 2 workers, no zone", got,
                  [5, 3, 2]) <= 0.005


def test_random(gatehouse):
    got = run(gatehouse, "random;", ["weight=5", "weight=3", "weight=2"],
              ["/"] * N)
    assert report("random 5:3:2", got, [5, 3, 2]) <= 0.03


def test_random_two(gatehouse):
    # sequential requests: every pick sees no load, so `two` spreads by
    # weight like plain random
    got = run(gatehouse, "random two least_conn;", ["", "", ""], ["/"] * N)
    assert report("random two 1:1:1", got, [1, 1, 1]) <= 0.03


def test_hash(gatehouse):
    got = run(gatehouse, "hash $arg_k;", ["", "weight=2", ""],
              [f"/?k=user{i}" for i in range(N)])
    assert report("hash 1:2:1", got, [1, 2, 1]) <= 0.03


def test_hash_consistent(gatehouse):
    got = run(gatehouse, "hash $arg_k consistent;", ["", "", "", ""],
              [f"/?k=user{i}" for i in range(N)])
    assert report("hash consistent 1:1:1:1", got, [1, 1, 1, 1]) <= 0.06


def test_status_counts_match(gatehouse):
    """The status endpoint's request counters add up to what was sent."""
    ports = backend_ports(2)
    gh = gatehouse(backends(ports)
                   + upstream_block("u", ports, ["weight=3", ""],
                                    tail="zone lbz 64k;")
                   + "server { listen 127.0.0.1:{port} reuseport; "
                     "location / { proxy_pass http://u; } "
                     "location = /status { upstream_status; } }\n",
                   workers=2)
    for _ in range(10):
        with Conn(gh.port) as c:
            for _ in range(40):
                fetch(c)
    st = json.loads(gh.get("/status").body)
    peers = st["upstreams"]["u"]["peers"]
    assert [p["requests"] for p in peers] == [300, 100]
    assert [p["responses"]["2xx"] for p in peers] == [300, 100]
