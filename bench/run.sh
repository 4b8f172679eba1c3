#!/bin/sh
# bench/run.sh: `make bench`.  Builds the upstream server and the load
# generator of bench/ into a fresh work directory, copies the gatehouse
# binary there (so a rebuild during the run changes nothing), raises the
# open-file limit for 10,000 idle connections, then hands over to
# bench/bench.py, which starts, measures and stops everything (its signal
# handlers and `finally` stop every process it started).
#   bench/run.sh                    the full comparison (see bench/README.md)
#   BENCH_SMOKE=1 bench/run.sh      a few hundred requests through each proxy
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
chmod 755 "$WORK"   # nginx workers run as nobody and need their temp dirs

CC=${CC:-cc}
$CC -O2 -Wall -o "$WORK/upstream" "$ROOT/bench/upstream.c" -lcrypto
$CC -O2 -Wall -o "$WORK/load" "$ROOT/bench/load.c"
GH=${GATEHOUSE_BIN:-$ROOT/build/gatehouse}
if [ -x "$GH" ]; then
    cp -p "$GH" "$WORK/gatehouse"
else
    echo "bench: no gatehouse binary at $GH; running without it" >&2
fi

# one core for the load generator, one for proxy + upstream
if [ "$(nproc)" -lt 2 ] && [ -z "${BENCH_PIN:-}" ]; then
    echo "bench: fewer than 2 CPUs: not pinning" >&2
    export BENCH_PIN=0
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

exec /usr/bin/python3 "$ROOT/bench/bench.py" "$WORK" "$WORK/upstream" \
    "$WORK/load" "$WORK/gatehouse"
