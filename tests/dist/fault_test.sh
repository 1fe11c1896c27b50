#!/usr/bin/env bash
# A rank dying or hanging mid-run must end the whole MPI job with a clear error, not hang it:
#   fault_test.sh <mpirun> <dist_fault binary> kill|hang
# kill: rank 1 SIGKILLs itself; mpirun notices and ends the job.
# hang: rank 1 stops taking part; rank 0's collective watchdog (CUTRAIN_DIST_TIMEOUT_S=3) exits
#       with its message and mpirun ends the job.
# Both must finish within 60 s with a non-zero status.
set -uo pipefail
mpirun=$1 binary=$2 mode=$3
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
timeout -k 10 90 "$mpirun" --allow-run-as-root --oversubscribe -np 2 \
  -x CUTRAIN_DIST_TIMEOUT_S=3 -x OMP_NUM_THREADS=1 "$binary" "$mode" >"$log" 2>&1
rc=$?
elapsed=$(($(date +%s) - start))
sed 's/^/  | /' "$log" | tail -n 25
echo "fault_test $mode: exit status $rc after ${elapsed}s"
fail() { echo "FAIL: $*"; exit 1; }
[ "$rc" -ne 0 ] || fail "the job exited 0: the failure went unnoticed"
[ "$rc" -ne 124 ] && [ "$elapsed" -lt 90 ] || fail "still running after 90 s: the job hung"
[ "$elapsed" -le 60 ] || fail "took ${elapsed}s (limit 60)"
grep -q "rank 1 .* at step 5" "$log" || fail "the failure was never injected"
if [ "$mode" = hang ]; then
  grep -q "cutrain: rank 0: MPI_Allreduce of the gradients has not completed after" "$log" ||
    fail "rank 0's watchdog did not report the stuck all-reduce"
fi
echo PASS
