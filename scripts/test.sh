#!/usr/bin/env bash
# The test command (README): installs what is missing, builds everything with CUDA on (kernels
# for sm_80 and sm_90, examples, benchmarks) and runs the suite; then a CPU-only build with
# AddressSanitizer + UndefinedBehaviorSanitizer runs the suite again, clang-tidy checks the host
# code (.clang-tidy), and a ThreadSanitizer build
# runs the suites that start threads; the API reference is built and its warnings checked
# (scripts/api_docs_check.py). GPU cases report as
# skipped, with the reason, on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"
JOBS=${JOBS:-$(nproc)}
# ctest -j runs OpenMP suites side by side: short spins keep them from stalling each other
# (Note [OpenMP spin] in tools/cutrain_train.cpp).
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-1000}

# Runs a command quietly, printing its output only when it fails.
quiet() {
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    cat "$log"
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

echo "== CUDA build (build/) =="
quiet cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCUTRAIN_CUDA=ON
cmake --build build -j "$JOBS"
(cd build && ctest --output-on-failure -j "$JOBS")

echo "== API reference (Doxygen; docs/api-undocumented.txt only shrinks) =="
cmake --build build --target docs

echo "== libFuzzer: IDX, CSV, NumPy, safetensors and checkpoint loaders (${FUZZ_SECONDS:-15}s each) =="
FUZZ_SECONDS=${FUZZ_SECONDS:-15} bash tests/fuzz/run.sh

echo "== CPU-only ASan/UBSan build (build-asan/) =="
quiet cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCUTRAIN_CUDA=OFF \
  -DCUTRAIN_SANITIZE=ON -DCUTRAIN_BENCH=OFF -DCUTRAIN_EXAMPLES=OFF
cmake --build build-asan -j "$JOBS"
(cd build-asan && ctest --output-on-failure -j "$JOBS")

echo "== clang-tidy (.clang-tidy) over src/ and tools/ =="
# run-clang-tidy matches its pattern against absolute paths: anchor it at this checkout, or a
# clone under a directory named src/ or tools/ (~/src/cutrain) would select tests/ too.
root=$(python3 -c 'import os, re; print(re.escape(os.getcwd()))')
# ... and keep it so: the pattern must select the host code of this checkout and nothing else.
python3 - "^$root/(src|tools)/" "$PWD" build-asan/compile_commands.json <<'PY'
import json, os, re, sys
pattern, root, db = sys.argv[1:]
chosen = [e["file"] for e in json.load(open(db)) if re.search(pattern, e["file"])]
wrong = [f for f in chosen if not os.path.relpath(f, root).startswith(("src/", "tools/"))]
if not chosen or wrong:
    sys.exit(f"clang-tidy would check {len(chosen)} files, {len(wrong)} outside src/ and tools/: "
             f"{wrong[:3]}")
PY
quiet run-clang-tidy -p build-asan -quiet -j "$JOBS" "^$root/(src|tools)/"
# The CPU-only build compiles neither src/cuda/ nor the CUDA branches of the files that have
# them: those once more as the CUDA build compiles them.
cuda_files=$( (ls src/cuda/*.cpp; grep -rlE 'CUTRAIN_(WITH_CUDA|ON_CUDA|WITH_NCCL|WITH_CURAND|WITH_CUDNN)' \
  src tools --include='*.cpp') | grep -v runtime_none | sort -u | paste -sd'|')
quiet run-clang-tidy -p build -quiet -j "$JOBS" "^$root/($cuda_files)\$"
echo "clang-tidy: clean"

echo "== CPU-only ThreadSanitizer build (build-tsan/): the suites with cutrain's own threads =="
# The loader's prefetch thread, the trainer around it, the collective watchdog, and ranks as
# threads exchanging BatchNorm statistics (nn_test's BatchNormSync). OpenMP off (libgomp is not
# instrumented and would report false races).
tsan_suites=(core_test data_test train_test dist_local_test nn_test)
quiet cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCUTRAIN_CUDA=OFF \
  -DCUTRAIN_TSAN=ON -DCUTRAIN_DISTRIBUTED=OFF -DCUTRAIN_BENCH=OFF -DCUTRAIN_EXAMPLES=OFF \
  -DCUTRAIN_TOOLS=OFF
cmake --build build-tsan -j "$JOBS" --target "${tsan_suites[@]}"
for suite in "${tsan_suites[@]}"; do
  filter='*'
  [ "$suite" = nn_test ] && filter='BatchNormSync*'  # the rest of nn_test starts no thread
  OMP_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1:allocator_may_return_null=1" \
    quiet "build-tsan/bin/$suite" --gtest_brief=1 --gtest_filter="$filter"
  echo "tsan $suite: ok"
done
