#!/bin/sh
# The one list of Debian packages gatehouse needs to build and test.
# Installs whatever is missing (as root; otherwise prints the command).
#   scripts/deps.sh build   - to build
#   scripts/deps.sh test    - to build and run the tests
#   scripts/deps.sh fuzz    - to build the fuzz targets
#   scripts/deps.sh bench   - to run the benchmarks
BUILD="build-essential pkg-config meson ninja-build clang libssl-dev libpcre2-dev zlib1g-dev libbrotli-dev libzstd-dev libnghttp2-dev libmaxminddb-dev"
# nghttp2-client (h2load): the bench smoke test sends HTTP/2 through it
# strace: tests count the system calls a worker makes per request
TEST="$BUILD libcmocka-dev python3 python3-pytest python3-h2 python3-websockets curl openssl nghttp2-client strace"
FUZZ="$BUILD libclang-rt-14-dev"
BENCH="$BUILD nginx-light haproxy wrk valgrind python3 openssl nghttp2-client"

case "${1:-build}" in
  build) want=$BUILD ;;
  test)  want=$TEST ;;
  fuzz)  want=$FUZZ ;;
  bench) want=$BENCH ;;
  *) echo "usage: $0 build|test|fuzz|bench" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "gatehouse: installing missing packages:$missing" >&2
if [ "$(id -u)" != 0 ]; then
  SUDO=sudo
  command -v sudo >/dev/null 2>&1 || {
    echo "run as root: apt-get update && apt-get install -y$missing" >&2; exit 1; }
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null || true
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null || {
  echo "apt-get install failed; run: apt-get install -y$missing" >&2; exit 1; }
