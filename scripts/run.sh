#!/bin/sh
# make run: the demo app on 127.0.0.1:8081 and gatehouse on 127.0.0.1:8080
# in the foreground with the default config.  Ctrl-C stops both.
set -e
BIN=${1:-build/gatehouse}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$ROOT/logs"
/usr/bin/python3 "$ROOT/demo/app.py" 8081 &
APP=$!
trap 'kill $APP 2>/dev/null; kill -QUIT $GH 2>/dev/null; wait' INT TERM EXIT
"$BIN" -p "$ROOT/" -c "$ROOT/conf/gatehouse.conf" -t
echo "gatehouse: http://127.0.0.1:8080/  (demo app: http://127.0.0.1:8081/)"
"$BIN" -p "$ROOT/" -c "$ROOT/conf/gatehouse.conf" -g "daemon off;" &
GH=$!
wait $GH
