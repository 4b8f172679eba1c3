#!/bin/sh
# Runs every fuzz target in BUILD for SECONDS each on a copy of its seed
# corpus (fuzz/corpus/<name>/), with its dictionary, and prints the final
# stats of each run.  A crash leaves fuzz/crash-* (or leak-*, timeout-*,
# oom-*) and makes the script fail.
#   scripts/fuzz.sh [BUILD [SECONDS [TARGET...]]]
BUILD=${1:-build-fuzz}
SECONDS_EACH=${2:-60}
[ $# -ge 2 ] && shift 2 || shift $#
ROOT=$(cd "$(dirname "$0")/.." && pwd)
status=0
if [ $# -gt 0 ]; then
  targets=""
  for n in "$@"; do targets="$targets $BUILD/fuzz_${n#fuzz_}"; done
else
  targets=$(ls "$BUILD"/fuzz_* 2>/dev/null)
fi
for t in $targets; do
  # build-fuzz/fuzz_x.p is meson's object directory, not a target
  [ -f "$t" ] && [ -x "$t" ] || continue
  name=$(basename "$t")
  corpus="$ROOT/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null
  case "$name" in
    *conf*) dict="$ROOT/fuzz/fuzz_conf.dict" ;;
    *)      dict="$ROOT/fuzz/http.dict" ;;
  esac
  [ -f "$dict" ] && dict="-dict=$dict" || dict=""
  echo "== $name ($SECONDS_EACH s)"
  "$t" $dict -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
      -artifact_prefix="$ROOT/fuzz/" "$work" >"$work.log" 2>&1
  rc=$?
  grep -E "^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss|ERROR:|SUMMARY:" \
      "$work.log" | tail -6
  [ $rc -ne 0 ] && { echo "   $name exited with $rc (log: $work.log)"; status=1; }
  [ $rc -eq 0 ] && rm -f "$work.log"
  rm -rf "$work"
done
ls "$ROOT"/fuzz/crash-* "$ROOT"/fuzz/leak-* "$ROOT"/fuzz/timeout-* \
   "$ROOT"/fuzz/oom-* >/dev/null 2>&1 && status=1
exit $status
