#!/usr/bin/env bash
# The benches' command line (bench/options.hpp): a value they cannot use - a NaN or endless
# --min-seconds, a batch or count of 0 - exits 2 with one line naming the flag, at once, instead
# of CLI11's own exit codes, a deep error in a layer, or timing forever.
set -uo pipefail
bin=$1
fail() { echo "FAIL: $*"; exit 1; }
check() {  # bench flag value
  local err rc
  err=$(timeout 20 "$bin/$1" "$2" "$3" 2>&1 >/dev/null)
  rc=$?
  [ $rc -eq 2 ] || fail "$1 $2 $3 exited $rc, expected 2: $err"
  [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || fail "$1 $2 $3: expected one line, got: $err"
  printf '%s' "$err" | grep -q -- "^$1: error: $2: must be" || fail "$1 $2 $3: $err"
}
for b in bench_conv bench_init bench_layers bench_loader bench_optim bench_step; do
  for v in nan -1 1e300; do check "$b" --min-seconds "$v"; done
done
for b in bench_conv bench_layers bench_loader bench_step; do check "$b" --batch 0; done
check bench_conv --shape foo
check bench_init --n 0
check bench_optim --n 0
check bench_loader --rows -5
check bench_step --clip-norm nan
"$bin/bench_init" --help >/dev/null || fail "bench_init --help exited $?"
echo "bench arguments: ok"
