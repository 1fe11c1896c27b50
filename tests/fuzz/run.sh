#!/usr/bin/env bash
# Builds the libFuzzer targets (CMake, CUTRAIN_FUZZ=ON: clang, CPU-only, the library under
# ASan + UBSan) in build-fuzz/ and runs each for FUZZ_SECONDS (default 20) from its seed corpus.
# Crashes are written to build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-20}
out=build-fuzz
JOBS=${JOBS:-$(nproc)}
targets=(idx csv safetensors checkpoint npy)
log=$(mktemp)
if ! CC=${FUZZ_CC:-clang} CXX=${FUZZ_CXX:-clang++} cmake -S . -B "$out" -G Ninja \
     -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCUTRAIN_CUDA=OFF -DCUTRAIN_FUZZ=ON -DCUTRAIN_TESTS=OFF \
     -DCUTRAIN_BENCH=OFF -DCUTRAIN_EXAMPLES=OFF -DCUTRAIN_TOOLS=OFF -DCUTRAIN_DISTRIBUTED=OFF \
     >"$log" 2>&1 ||
   ! cmake --build "$out" -j "$JOBS" --target "${targets[@]/%/_fuzz}" >>"$log" 2>&1; then
  cat "$log"
  rm -f "$log"
  exit 1
fi
rm -f "$log"
# The checkpoint seed is written by the target itself, so it always has the current format.
mkdir -p "$out/seed_checkpoint"
CUTRAIN_FUZZ_WRITE_SEED="$out/seed_checkpoint/valid.safetensors" "$out/bin/checkpoint_fuzz"
export OMP_NUM_THREADS=1  # one input at a time; no thread pool to spin up per input
for target in "${targets[@]}"; do
  seeds=("../tests/fuzz/corpus/$target")
  # checkpoint: the freshly written seed, plus the inputs kept in the repository as regressions.
  [ "$target" = checkpoint ] && seeds=(seed_checkpoint "../tests/fuzz/corpus/checkpoint")
  dict=()
  [ -f "tests/fuzz/$target.dict" ] && dict=(-dict="../tests/fuzz/$target.dict")
  mkdir -p "$out/corpus_$target"
  echo "== fuzzing $target for ${seconds}s"
  (cd "$out" && "./bin/${target}_fuzz" -max_total_time="$seconds" -max_len=8192 \
     -rss_limit_mb=2048 "${dict[@]}" -artifact_prefix="./${target}_" "corpus_$target" \
     "${seeds[@]}" 2>&1 | grep -E "^#[0-9]+ +DONE|ERROR|SUMMARY|Done|changed" || true)
  # libFuzzer exits non-zero on a crash; look for the saved artifacts to fail loudly. (Not
  # `ls a b c`: it fails when any one pattern matches nothing, which hid every crash.)
  found=$(find "$out" -maxdepth 1 -type f \( -name "${target}_crash-*" -o -name "${target}_leak-*" \
          -o -name "${target}_oom-*" -o -name "${target}_timeout-*" \) | head -5)
  if [ -n "$found" ]; then
    echo "fuzz: $target found a crash, see $found"
    exit 1
  fi
done
echo "fuzz: no crashes"
