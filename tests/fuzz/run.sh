#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for FUZZ_SECONDS
# (default 20) from its seed corpus. Crashes are written to build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-20}
out=build-fuzz
mkdir -p "$out"
CXX=${FUZZ_CXX:-clang++}
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -fopenmp -DCUTRAIN_WITH_CUDA=0 -Iinclude -I.)
# The readers, the checkpoint parser and the CPU-only core they need (no CUDA).
sources=(src/data/idx_reader.cpp src/data/csv_reader.cpp src/data/file.cpp src/data/dataset.cpp
         src/io/safetensors.cpp src/core/error.cpp src/core/arena.cpp src/core/buffer.cpp
         src/core/device.cpp src/core/stream.cpp src/cuda/runtime_none.cpp)
for target in idx csv safetensors; do
  "$CXX" "${flags[@]}" "tests/fuzz/${target}_fuzz.cpp" "${sources[@]}" -lz -o "$out/${target}_fuzz"
  mkdir -p "$out/corpus_$target"
  echo "== fuzzing $target for ${seconds}s"
  (cd "$out" && "./${target}_fuzz" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 \
     -artifact_prefix="./${target}_" "corpus_$target" "../tests/fuzz/corpus/$target" 2>&1 |
     grep -E "^#[0-9]+ +DONE|ERROR|SUMMARY|Done" || true)
  # libFuzzer exits non-zero on a crash; re-run the saved artifacts to fail loudly.
  if ls "$out/${target}_"crash-* "$out/${target}_"leak-* "$out/${target}_"oom-* >/dev/null 2>&1; then
    echo "fuzz: $target found a crash, see $out/"
    exit 1
  fi
done
echo "fuzz: no crashes"
