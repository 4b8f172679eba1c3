#!/bin/sh
# Prints the source lists meson builds: lib (everything but main.c),
# unit (tests/unit/test_*.c), fuzz (fuzz/fuzz_*.c).
cd "$(dirname "$0")/.." || exit 1
case "$1" in
  lib)  find src -name '*.c' ! -path src/main.c | LC_ALL=C sort ;;
  unit) find tests/unit -name 'test_*.c' 2>/dev/null | LC_ALL=C sort ;;
  fuzz) find fuzz -maxdepth 1 -name 'fuzz_*.c' 2>/dev/null | LC_ALL=C sort ;;
  *) echo "usage: $0 lib|unit|fuzz" >&2; exit 2 ;;
esac
