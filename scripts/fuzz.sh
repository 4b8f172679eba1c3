#!/bin/sh
# Runs every fuzz target in BUILD for SECONDS each on its seed corpus.
BUILD=${1:-build-fuzz}
SECONDS_EACH=${2:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
status=0
for t in "$BUILD"/fuzz_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  corpus="$ROOT/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null
  dict=""
  [ -f "$ROOT/fuzz/http.dict" ] && case "$name" in *h1*|*chunked*|*uri*) dict="-dict=$ROOT/fuzz/http.dict";; esac
  echo "== $name ($SECONDS_EACH s)"
  "$t" $dict -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
      -artifact_prefix="$ROOT/fuzz/" "$work" 2>&1 | grep -E "stat::number_of_executed_units|cov:|ERROR|SUMMARY" | tail -4 || true
  [ -n "$(ls "$ROOT"/fuzz/crash-* 2>/dev/null)" ] && status=1
  rm -rf "$work"
done
exit $status
