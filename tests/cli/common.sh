# The cutrain-train scripts' shared start (cli_test.sh, tables_test.sh, folds_arrays_test.sh,
# hostile_test.sh):
# `source "$(dirname "$0")/common.sh" BINARY` sets $bin and a scratch directory $tmp removed on
# exit, and defines fail and expect_usage_error.
set -uo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# expect_usage_error PATTERN ARGS...: cutrain-train ARGS exits 2 with one line matching PATTERN
# (a grep regular expression: escape [ and ]).
expect_usage_error() {
  local name=$1; shift
  out=$("$bin" "$@" 2>&1 >/dev/null)
  rc=$?
  [ $rc -eq 2 ] || fail "$* exited $rc, expected 2"
  [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "$*: expected one line, got: $out"
  printf '%s' "$out" | grep -q -- "$name" || fail "$*: message does not name $name: $out"
}
