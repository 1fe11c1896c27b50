#!/usr/bin/env bash
# The GPU check: one command for a GPU machine (CUDA toolkit, CMake, ninja, Python with
# PyTorch; no package registry). Run scripts/bundle_device_deps.sh here first and carry .deps.
#
# Everything runs against ONE deadline, GPU_CHECK_BUDGET_S seconds after the start (default 480,
# the build included), so the whole check fits one device call with time left for the caller to
# pack the results; each step's timeout is the smaller of its own cap and the time left. The
# order is by what a run must not miss (issue 9): build; the whole suite with no GPU case
# allowed to skip (CUTRAIN_REQUIRE_GPU=1); cutrain's benchmarks and the PyTorch peers on the same
# GPU; the main job (cutrain-train, default recipe, full Fashion-MNIST, time to 89%: default,
# clipped, data resident on the GPU) next to the same MLP in PyTorch eager and CUDA graphs;
# compute-sanitizer (memcheck on every test binary's GPU cases, racecheck and initcheck on the
# kernels' suites); Nsight Compute on the small steps; then the tables.
#
# Writes summary.md, summary.json and every log to $GPU_CHECK_OUT (default: $OUT, else
# ./gpu_check_out). The device tool returns at most 8 files, so call it as
#   GPU_CHECK_OUT=/tmp/gc timeout 500 bash scripts/gpu_check.sh; tar czf $OUT/gc.tgz -C /tmp gc
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${GPU_CHECK_OUT:-${OUT:-$PWD/gpu_check_out}}
BUILD=${GPU_CHECK_BUILD_DIR:-build-gpu}
mkdir -p "$OUT_DIR"
SUMMARY="$OUT_DIR/summary.md"
JOBS=${JOBS:-$(nproc)}
export PATH="/usr/local/cuda/bin:$PATH"
status=0
t0=$(date +%s)
deadline=$((t0 + ${GPU_CHECK_BUDGET_S:-480}))
RESERVE=20 # kept for the tables at the end
note() { echo "$*" | tee -a "$SUMMARY"; }
# capped CAP CMD...: runs CMD under timeout min(CAP, time left - RESERVE); 124 when no time is left.
capped() {
  local cap=$1 left
  shift
  left=$((deadline - RESERVE - $(date +%s)))
  [ "$left" -lt "$cap" ] && cap=$left
  [ "$cap" -ge 5 ] || return 124
  timeout "$cap" "$@"
}
# GPU_CHECK_STEPS: which steps run (default all), e.g. "tests sanitize" for a re-check.
STEPS=" ${GPU_CHECK_STEPS:-tests bench train sanitize ncu} " # also: quickbench
want() { [[ "$STEPS" == *" $1 "* ]]; }
has_time() { [ $((deadline - RESERVE - $(date +%s))) -ge "${1:-5}" ]; }
: >"$SUMMARY"

# "-dirty" when the tree measured is not the commit named (a copied checkout can carry a stale .git).
COMMIT=$(git describe --always --dirty 2>/dev/null || echo '?')
note "# cutrain GPU check — $(date -u +%Y-%m-%dT%H:%MZ), commit $COMMIT"
note ""
note '```'
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | tee -a "$SUMMARY"
nvcc --version | tail -1 | tee -a "$SUMMARY"
python3 -c 'import torch; print("torch", torch.__version__, "cuDNN", torch.backends.cudnn.version())' 2>&1 | tee -a "$SUMMARY"
# Note [cuDNN loaded at run time]: whether the toolkit brings cuDNN's header (else the wheel's or
# the carried one is built against; the log's convolutions: lines say what ran).
ls /usr/local/cuda/include/cudnn_graph.h /usr/local/cuda/lib64/libcudnn.so.9 2>&1 | tee -a "$SUMMARY"
note '```'

if ! bash scripts/unpack_device_deps.sh 2>>"$OUT_DIR/unpack.log"; then
  note "BUNDLED PACKAGES UNUSABLE: $(tail -1 "$OUT_DIR/unpack.log")"
  exit 1
fi
gtest_arg=()
[ -f .deps/googletest/CMakeLists.txt ] && gtest_arg+=(-DCUTRAIN_GTEST_SOURCE="$PWD/.deps/googletest")
[ -d .deps/prefix/usr ] && gtest_arg+=(-DCMAKE_PREFIX_PATH="$PWD/.deps/prefix/usr")
# NCCL: the toolkit's, else the one PyTorch's wheel installed (issue 10's 1-rank NCCL check).
if [ ! -f /usr/local/cuda/include/nccl.h ]; then
  nccl_root=$(python3 -c 'import nvidia.nccl as m; print(list(m.__path__)[0])' 2>/dev/null || true)
  [ -n "$nccl_root" ] && [ -f "$nccl_root/include/nccl.h" ] && gtest_arg+=(-DCUTRAIN_NCCL_ROOT="$nccl_root")
fi
# cuDNN's graph API (Note [cuDNN loaded at run time]): the toolkit's header and library; else
# PyTorch's wheel's library, with the wheel's header or the one carried in .deps/cudnn.
cudnn_lib=""
if [ ! -f /usr/local/cuda/include/cudnn_graph.h ]; then
  cudnn_root=$(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null || true)
  if [ -n "$cudnn_root" ] && [ -f "$cudnn_root/include/cudnn_graph.h" ]; then
    gtest_arg+=(-DCUTRAIN_CUDNN_ROOT="$cudnn_root")
  elif [ -f .deps/cudnn/include/cudnn_graph.h ]; then
    gtest_arg+=(-DCUTRAIN_CUDNN_INCLUDE_DIR="$PWD/.deps/cudnn/include")
  fi
  [ -n "$cudnn_root" ] && [ -d "$cudnn_root/lib" ] && cudnn_lib="$cudnn_root/lib"
fi
# -DCUTRAIN_CUDA=ON: a machine without nvcc fails here, loudly, instead of building CPU-only.
if ! cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCUTRAIN_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${CUTRAIN_CUDA_ARCH:-native}" "${gtest_arg[@]}" >"$OUT_DIR/configure.log" 2>&1; then
  note "CONFIGURE FAILED"
  tail -40 "$OUT_DIR/configure.log"
  exit 1
fi
if ! cmake --build "$BUILD" -j "$JOBS" >"$OUT_DIR/build.log" 2>&1; then
  note "BUILD FAILED"
  grep -E "error|Error" "$OUT_DIR/build.log" | head -40
  exit 1
fi
note "- build: ok ($(($(date +%s) - t0)) s)"

# The carried OpenBLAS and libgfortran, for our binaries only (not for python3 below).
DEPS_LIB="$PWD/.deps/prefix/usr/lib/x86_64-linux-gnu"
# The wheel's cuDNN on the search path for everything (PyTorch loads the same one): its libcudnn
# finds its sub-libraries there.
[ -n "$cudnn_lib" ] && export LD_LIBRARY_PATH="$cudnn_lib:${LD_LIBRARY_PATH:-}"
SAVED_LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"
[ -d "$DEPS_LIB" ] && export LD_LIBRARY_PATH="$DEPS_LIB:$DEPS_LIB/openblas-openmp:${LD_LIBRARY_PATH:-}"
BIN="$BUILD/bin"

# 1. The whole suite; a skipped GPU case is a failure here. The slowest case takes ~10 s on the
#    2-core CPU machine: 90 s each bounds what one hung case (a never-run kernel that deadlocks)
#    can take from the device budget. GPU cases share the one GPU; none times itself.
# GPU_CHECK_CTEST_ARGS narrows it for a re-check (e.g. "-R Gpu").
if want tests; then
  (cd "$BUILD" && export CUTRAIN_REQUIRE_GPU=1 && capped 180 ctest -j 8 --output-on-failure --timeout 90 \
    ${GPU_CHECK_CTEST_ARGS:-}) >"$OUT_DIR/ctest.log" 2>&1
  rc=$?
  # Only GPU cases must not skip (a CPU-side case may skip for a missing python3 or data set).
  skipped=$(grep "(Skipped)" "$OUT_DIR/ctest.log" | grep -c "Gpu" || true)
  note "- ctest: $(grep -E 'tests passed|tests failed' "$OUT_DIR/ctest.log" | tail -1) (GPU cases skipped: $skipped, rc $rc, at $(($(date +%s) - t0)) s)"
  # Issue 10's check: training through a one-rank NCCL group (plain and bucketed) equals training
  # without one, bit for bit.
  note "- 1-rank NCCL run vs non-distributed: $(grep -E 'DistLocalGpu.OneRankNccl' "$OUT_DIR/ctest.log" | grep -oE 'Passed|Failed|Skipped|Not Run' | head -1)"
  if [ $rc -ne 0 ] || [ "$skipped" -ne 0 ]; then
    status=1
    grep -E "\*\*\*Failed|\*\*\*Exception|\*\*\*Timeout|Failed  |\(Skipped\)|\(Failed\)|\(Timeout\)" \
      "$OUT_DIR/ctest.log" | head -40 | tee -a "$SUMMARY"
  fi
  # Note [convolutions on cuDNN]: the suite ran the GPU's convolutions on cuDNN where it loads;
  # the lowering, their fallback, once more on its own.
  (cd "$BUILD" && export CUTRAIN_REQUIRE_GPU=1 CUTRAIN_CUDNN=0 && capped 90 ctest -j 8 --timeout 90 \
    -R "^(ConvGpu|CnnTrainingGpu|ResidualTrainingGpu|Precision16Gpu)\.") >"$OUT_DIR/ctest_lowering.log" 2>&1
  rc=$?
  note "- ctest, the GPU's convolutions lowered (CUTRAIN_CUDNN=0): $(grep -E 'tests passed|tests failed' "$OUT_DIR/ctest_lowering.log" | tail -1) (rc $rc)"
  [ $rc -eq 0 ] || status=1
fi

# 2. Benchmarks: cutrain's (JSON lines) and the PyTorch peers on the same GPU.
bench() { # cap name args... -> $OUT_DIR/name.jsonl
  local cap=$1 name=$2 r
  shift 2
  capped "$cap" "$@" --device cuda --json >>"$OUT_DIR/$name.jsonl" 2>>"$OUT_DIR/$name.err"
  r=$?
  note "- $name $(echo "$@" | sed "s|$BIN/||"): rc $r, $(wc -l <"$OUT_DIR/$name.jsonl") rows so far"
  [ $r -eq 0 ] || status=1
}
if want bench; then
  # Every optimizer at 2^10 .. 2^26 (4x), Adam also at 2^28 (issue 9's range).
  bench 90 bench_optim "$BIN/bench_optim" --min-seconds 0.05
  bench 40 bench_optim "$BIN/bench_optim" --min-seconds 0.05 --optimizer adam --n 268435456
  # --graph: each step also replayed from a CUDA graph, the device's time without launch overhead.
  bench 60 bench_optim_clip "$BIN/bench_optim" --min-seconds 0.05 --clip --graph --optimizer adam
  bench 40 bench_optim_bf16 "$BIN/bench_optim" --min-seconds 0.05 --optimizer adamw --precision bf16
  # Model-shaped sets: GPT-2-small's 148 tensors and a 1M/20-tensor MLP, clip + Adam.
  for model in gpt2-small mlp-1m; do
    bench 40 bench_optim_models "$BIN/bench_optim" --min-seconds 0.2 --clip --graph --optimizer adam --model $model
  done
  export LD_LIBRARY_PATH="$SAVED_LD_LIBRARY_PATH"
  capped 120 python3 bench/torch/optim_gpu.py --json --log2 20 22 24 26 28 --model gpt2-small mlp-1m \
    >"$OUT_DIR/optim_gpu.jsonl" 2>"$OUT_DIR/optim_gpu.err"
  note "- optim_gpu.py (PyTorch Adam fused/foreach/+clip): rc $?"
  [ -d "$DEPS_LIB" ] && export LD_LIBRARY_PATH="$DEPS_LIB:$DEPS_LIB/openblas-openmp:$SAVED_LD_LIBRARY_PATH"
  bench 60 bench_layers "$BIN/bench_layers" --min-seconds 0.05
  bench 60 bench_conv "$BIN/bench_conv" --min-seconds 0.05
  # Note [TF32 switch]: the same layers on TF32 tensor cores.
  bench 60 bench_layers_tf32 "$BIN/bench_layers" --min-seconds 0.05 --precision tf32
  bench 60 bench_conv_tf32 "$BIN/bench_conv" --min-seconds 0.05 --precision tf32
  # Note [16-bit values in fp32 storage]: the 4096 x 4096 Linear at batch 4096 in fp32, tf32 and
  # bf16 (issue 23's targets: bf16 >= 8x fp32, tf32 >= 4x; PyTorch autocast below), and the
  # CNN's convolutions in bf16.
  for p in fp32 tf32 bf16; do
    bench 60 bench_layers_4096 "$BIN/bench_layers" --min-seconds 0.05 --batch 4096 --precision $p
  done
  bench 60 bench_conv_bf16 "$BIN/bench_conv" --min-seconds 0.05 --precision bf16
  # Note [convolutions on cuDNN]: the same shapes lowered to GEMMs, for the comparison.
  CUTRAIN_CUDNN=0 bench 60 bench_conv_lowering "$BIN/bench_conv" --min-seconds 0.05
  export LD_LIBRARY_PATH="$SAVED_LD_LIBRARY_PATH"
  capped 60 python3 bench/torch/conv.py --min-seconds 0.05 >"$OUT_DIR/conv_torch.jsonl" \
    2>"$OUT_DIR/conv_torch.err"
  note "- conv.py (PyTorch Conv2d, cuDNN): rc $?"
  capped 60 python3 bench/torch/conv.py --min-seconds 0.05 --precision tf32 \
    >>"$OUT_DIR/conv_torch.jsonl" 2>>"$OUT_DIR/conv_torch.err"
  note "- conv.py --precision tf32 (PyTorch Conv2d, cuDNN TF32): rc $?"
  capped 60 python3 bench/torch/conv.py --min-seconds 0.05 --precision bf16 \
    >>"$OUT_DIR/conv_torch.jsonl" 2>>"$OUT_DIR/conv_torch.err"
  note "- conv.py --precision bf16 (PyTorch Conv2d under autocast): rc $?"
  for p in fp32 tf32 bf16; do
    capped 60 python3 bench/torch/linear.py --min-seconds 0.05 --batch 4096 --precision $p \
      >>"$OUT_DIR/linear_torch.jsonl" 2>>"$OUT_DIR/linear_torch.err"
    note "- linear.py --batch 4096 --precision $p (PyTorch Linear): rc $?"
  done
  [ -d "$DEPS_LIB" ] && export LD_LIBRARY_PATH="$DEPS_LIB:$DEPS_LIB/openblas-openmp:$SAVED_LD_LIBRARY_PATH"
  bench 40 bench_init "$BIN/bench_init" --min-seconds 0.05
  bench 60 bench_step "$BIN/bench_step" --min-seconds 0.1
  bench 40 bench_step "$BIN/bench_step" --min-seconds 0.1 --clip-norm 1
  bench 40 bench_step "$BIN/bench_step" --min-seconds 0.1 --batch 1024
  bench 40 bench_step "$BIN/bench_step" --min-seconds 0.1 --precision bf16
  # The default CNN's step, eager vs its graph (issue 24), in fp32 and bf16.
  bench 40 bench_step "$BIN/bench_step" --min-seconds 0.1 --model cnn
  bench 40 bench_step "$BIN/bench_step" --min-seconds 0.1 --model cnn --precision bf16
  bench 60 bench_loader "$BIN/bench_loader"
  bench 60 bench_loader "$BIN/bench_loader" --batch 1024
fi

# 2b. "quickbench" (a re-check, instead of "bench"): the small clipped steps and the loader.
if want quickbench; then
  for model in mlp-1m gpt2-small; do
    bench 40 bench_optim_models "$BIN/bench_optim" --min-seconds 0.2 --clip --graph --optimizer adam --model $model
  done
  bench 40 bench_optim_clip "$BIN/bench_optim" --min-seconds 0.1 --clip --graph --optimizer adam \
    --n 262144 1048576 4194304
  bench 40 bench_loader "$BIN/bench_loader"
  bench 40 bench_loader "$BIN/bench_loader" --batch 1024
fi

# 3. The main job on the GPU (the default run of the README's first command) with its time to
#    89% test accuracy; the same eager, with clipping, with the training set resident on the GPU
#    and in bf16;
#    then PyTorch on the same GPU, eager and with the whole step in a CUDA graph
#    (bench/torch/mlp_gpu.py, the data resident there).
DATA="$PWD/.deps/prefix/usr/share/datasets/fashion-mnist"
[ -d "$DATA" ] || DATA=/usr/share/datasets/fashion-mnist
TARGET=0.89
if [ -d "$DATA" ] && want train; then
  # default: the step replayed from a CUDA graph (--cuda-graph auto); eager: the same run with
  # every operation launched (Note [the step as one CUDA graph]: the same bits, so the same
  # accuracy - the ratio of their seconds is the graph's gain).
  for label in default eager clip resident bf16; do
    clip=$([ $label = clip ] && echo 1 || echo 0)
    extra=()
    [ $label = resident ] && extra=(--resident-data)
    [ $label = eager ] && extra=(--cuda-graph off)
    [ $label = bf16 ] && extra=(--precision bf16)
    capped 60 "$BIN/cutrain-train" --data "$DATA" --device cuda --clip-norm $clip \
      "${extra[@]}" --target-accuracy $TARGET --metrics "$OUT_DIR/metrics_gpu_$label.csv" \
      --report "$OUT_DIR/report_gpu_$label.json" >"$OUT_DIR/train_gpu_$label.log" 2>&1
    r=$?
    note "- cutrain-train ($label, cuda): rc $r; $(tail -2 "$OUT_DIR/train_gpu_$label.log" | tr '\n' ' ' | cut -c1-240)"
    [ $r -eq 0 ] || status=1
  done
  # The default CNN (Note [the default CNN]) and its time to 93% test accuracy: its convolutions
  # on cuDNN, then lowered (Note [convolutions on cuDNN]), the two paths end to end.
  for label in cnn cnn-lowering; do
    cudnn=$([ $label = cnn ] && echo 1 || echo 0)
    CUTRAIN_CUDNN=$cudnn capped 120 "$BIN/cutrain-train" --data "$DATA" --device cuda --model cnn \
      --target-accuracy 0.93 --metrics "$OUT_DIR/metrics_gpu_$label.csv" \
      --report "$OUT_DIR/report_gpu_$label.json" >"$OUT_DIR/train_gpu_$label.log" 2>&1
    r=$?
    note "- cutrain-train ($label, cuda): rc $r; $(grep -h 'convolutions:' "$OUT_DIR/train_gpu_$label.log" | head -1); $(tail -2 "$OUT_DIR/train_gpu_$label.log" | tr '\n' ' ' | cut -c1-200)"
    [ $r -eq 0 ] || status=1
  done
  # The headline: the same CNN in bf16, its step one CUDA graph (the default), the training set
  # resident - to 93%, and augmented (Note [augmentation on the device]; the 15-epoch recipe whose
  # three seeds passed 94% on the CPU, bench/RESULTS.md "Toward 94%") to 94%; last, that run
  # evaluated with test-time flips (Note [test-time flips]: its seed-0 model 94.08% -> 94.41%).
  for goal in 93 94 94flip; do
    extra=()
    [ $goal != 93 ] && extra=(--augment-shift 1 --augment-flip --label-smoothing 0.1 --epochs 15)
    [ $goal = 94flip ] && extra+=(--eval-flip)
    capped 90 "$BIN/cutrain-train" --data "$DATA" --device cuda --model cnn --precision bf16 \
      --resident-data "${extra[@]}" --target-accuracy 0.${goal:0:2} \
      --report "$OUT_DIR/report_gpu_headline$goal.json" >"$OUT_DIR/train_gpu_headline$goal.log" 2>&1
    r=$?
    note "- cutrain-train (headline $goal%, cuda): rc $r; $(tail -2 "$OUT_DIR/train_gpu_headline$goal.log" | tr '\n' ' ' | cut -c1-240)"
    [ $r -eq 0 ] || status=1
    if [ $r -ne 0 ]; then  # cuDNN's path had never run before this check: the lowered figure too
      CUTRAIN_CUDNN=0 capped 90 "$BIN/cutrain-train" --data "$DATA" --device cuda --model cnn \
        --precision bf16 --resident-data "${extra[@]}" --target-accuracy 0.${goal:0:2} \
        --report "$OUT_DIR/report_gpu_headline$goal-lowering.json" \
        >"$OUT_DIR/train_gpu_headline$goal-lowering.log" 2>&1
      note "- cutrain-train (headline $goal%, lowered, cuda): rc $?; $(tail -2 "$OUT_DIR/train_gpu_headline$goal-lowering.log" | tr '\n' ' ' | cut -c1-240)"
    fi
  done
  export LD_LIBRARY_PATH="$SAVED_LD_LIBRARY_PATH"
  # PyTorch's CNN: fp32 (strict, as cutrain's) eager and graphs, and the headline's peer - its
  # step in a CUDA graph under bf16 autocast (issue 23: next to PyTorch autocast, same run).
  for run in "graphs fp32" "eager fp32" "graphs bf16"; do
    read -r mode prec <<<"$run"
    capped 120 python3 bench/torch/mlp_gpu.py --model cnn --data "$DATA" --json --mode $mode \
      --precision $prec --target-accuracy 0.93 >>"$OUT_DIR/cnn_gpu.jsonl" 2>>"$OUT_DIR/cnn_gpu.err"
    note "- PyTorch $mode $prec, same CNN (mlp_gpu.py --model cnn): rc $?; $(tail -1 "$OUT_DIR/cnn_gpu.jsonl" | cut -c1-200)"
  done
  for clip in 0 1; do
    for mode in graphs eager; do
      capped 90 python3 bench/torch/mlp_gpu.py --data "$DATA" --json --mode $mode \
        --clip-norm $clip --target-accuracy $TARGET >>"$OUT_DIR/mlp_gpu.jsonl" 2>>"$OUT_DIR/mlp_gpu.err"
      note "- PyTorch $mode, same MLP, clip $clip (mlp_gpu.py): rc $?; $(tail -1 "$OUT_DIR/mlp_gpu.jsonl" | cut -c1-200)"
    done
  done
  # The MLP under bf16 autocast, beside cutrain's bf16 run above.
  capped 90 python3 bench/torch/mlp_gpu.py --data "$DATA" --json --mode graphs --precision bf16 \
    --target-accuracy $TARGET >>"$OUT_DIR/mlp_gpu.jsonl" 2>>"$OUT_DIR/mlp_gpu.err"
  note "- PyTorch graphs bf16, same MLP (mlp_gpu.py): rc $?; $(tail -1 "$OUT_DIR/mlp_gpu.jsonl" | cut -c1-200)"
  [ -d "$DEPS_LIB" ] && export LD_LIBRARY_PATH="$DEPS_LIB:$DEPS_LIB/openblas-openmp:$SAVED_LD_LIBRARY_PATH"
fi

if want tests && has_time 45; then
  # 3b. Random torch.nn architectures (tests/torch_random_models.py) on the GPU against PyTorch
  # on the CPU: cuDNN's convolutions (grouped ones included), the pooling and BatchNorm kernels;
  # 16 models, each a process of its own (a CUDA context and cuDNN loaded each time).
  # python3 without the carried libraries, cutrain-train with them (a wrapper).
  wrapped="$OUT_DIR/cutrain-train-wrapped"
  exe="$BIN/cutrain-train"
  [[ "$exe" = /* ]] || exe="$PWD/$exe"
  printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec "%s" "$@"\n' "${LD_LIBRARY_PATH:-}" "$exe" \
    >"$wrapped"
  chmod +x "$wrapped"
  LD_LIBRARY_PATH="$SAVED_LD_LIBRARY_PATH" capped 45 python3 tests/torch_random_models.py \
    "$wrapped" --device cuda --count 16 >"$OUT_DIR/random_models_gpu.log" 2>&1
  rc=$?
  rm -f "$wrapped"
  note "- random torch.nn models on the GPU vs PyTorch: $(tail -1 "$OUT_DIR/random_models_gpu.log") (rc $rc)"
  [ $rc -eq 0 ] || status=1
fi

# 4. compute-sanitizer on the GPU test cases while the time lasts: memcheck on every binary,
#    racecheck and initcheck on the kernels' own suites.
sanitize() { # tool binary filter
  local tool=$1 bin=$2 filter=$3 r
  if ! has_time 30; then
    note "- compute-sanitizer $tool $bin: not run (time budget)"
    return
  fi
  # A binary with no GPU case here (dist_test: MPI ranks) would only be the sanitizer's error
  # "terminated before first instrumented API call".
  if ! "$BIN/$bin" --gtest_list_tests --gtest_filter="$filter" | grep -q '^  '; then
    note "- compute-sanitizer $tool $bin: no case matches $filter"
    return
  fi
  # NCCL's own start-up probes kernels this GPU has no image for (cudaErrorNoKernelImageForDevice
  # from cudaFuncGetAttributes inside ncclCommInitRank, seen on the H100) and handles the error:
  # for the NCCL binary, API errors are not reported; memory errors still are.
  local api=()
  [ "$bin" = dist_local_test ] && api=(--report-api-errors no)
  echo "== $tool $bin $filter" >>"$OUT_DIR/sanitizer.log"
  capped 90 compute-sanitizer --tool "$tool" "${api[@]}" --error-exitcode 9 "$BIN/$bin" \
    --gtest_filter="$filter" >>"$OUT_DIR/sanitizer.log" 2>&1
  r=$?
  note "- compute-sanitizer $tool $bin ($filter): $([ $r -eq 0 ] && echo ok || echo "FAILED (rc $r)")"
  [ $r -eq 0 ] || status=1
}
if ! want sanitize; then
  :
elif command -v compute-sanitizer >/dev/null; then
  # The deliberate out-of-memory test is left out: the sanitizer reports its failed cudaMalloc.
  # GPU_CHECK_MEMCHECK_BINS narrows the memcheck pass for a re-check (names in $BIN).
  for bin in ${GPU_CHECK_MEMCHECK_BINS:-$(cd "$BIN" && echo *_test)}; do
    sanitize memcheck "$bin" '*Gpu*:-*OutOfMemory*'
  done
  for tool in racecheck initcheck; do
    sanitize $tool clip_test '*Gpu*'
    sanitize $tool ops_test '*Gpu*'
    sanitize $tool optim_test 'OptimizerGpu.*:*OptimGoldenGpu*adam_amsgrad*'
    sanitize $tool nn_test 'LayersGpu.*:SequentialGpu.*:ConvGpu.*'
  done
else
  note "- compute-sanitizer: not found"
  status=1
fi

# 5. Where the small steps' time goes (the 1M/20-tensor target, the dense layer's gap to SGEMM):
#    Nsight Compute's per-kernel durations for a few steps. Clocks left alone (METHOD.md).
if command -v ncu >/dev/null && want ncu; then
  capped 60 ncu --clock-control none --launch-skip 40 --launch-count 9 --section SpeedOfLight \
    --csv "$BIN/bench_optim" --device cuda --model mlp-1m --clip --optimizer adam \
    --min-seconds 0.01 >"$OUT_DIR/ncu_optim_mlp1m.csv" 2>"$OUT_DIR/ncu.err"
  note "- ncu, clip+Adam on mlp-1m: rc $? -> ncu_optim_mlp1m.csv"
  capped 60 ncu --clock-control none --launch-skip 20 --launch-count 12 --section SpeedOfLight \
    --csv "$BIN/bench_layers" --device cuda --min-seconds 0.01 \
    >"$OUT_DIR/ncu_layers.csv" 2>>"$OUT_DIR/ncu.err"
  note "- ncu, Linear forward+backward kernels: rc $? -> ncu_layers.csv"
  # The CNN step's kernels one by one (convolution lowering, BatchNorm2d's segment sums,
  # pooling, the GEMMs): where its time goes.
  capped 90 ncu --clock-control none --launch-skip 300 --launch-count 60 --section SpeedOfLight \
    --csv "$BIN/bench_step" --device cuda --model cnn --min-seconds 0.01 \
    >"$OUT_DIR/ncu_step_cnn.csv" 2>>"$OUT_DIR/ncu.err"
  note "- ncu, the default CNN's training step: rc $? -> ncu_step_cnn.csv"
fi

export LD_LIBRARY_PATH="$SAVED_LD_LIBRARY_PATH"
python3 scripts/bench_table.py --json-out "$OUT_DIR/summary.json" \
  --report default="$OUT_DIR/report_gpu_default.json" --report clip="$OUT_DIR/report_gpu_clip.json" \
  --report resident="$OUT_DIR/report_gpu_resident.json" \
  "$OUT_DIR"/*.jsonl 2>&1 | tee -a "$SUMMARY"
# bench/RESULTS.md's first-screen table for this GPU, written from the same JSON (no figure is
# retyped): paste results_summary.md over the GPU's summary there.
gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1 |
      sed 's/, / (driver /; s/$/)/')
torch_version=$(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo "not found")
python3 scripts/bench_table.py --summary "$gpu, $(date +%F), commit $COMMIT, PyTorch $torch_version" \
  --report default="$OUT_DIR/report_gpu_default.json" --report cnn="$OUT_DIR/report_gpu_cnn.json" \
  --report headline93="$OUT_DIR/report_gpu_headline93.json" \
  --report headline94="$OUT_DIR/report_gpu_headline94.json" \
  --report headline94flip="$OUT_DIR/report_gpu_headline94flip.json" \
  "$OUT_DIR"/*.jsonl >"$OUT_DIR/results_summary.md" 2>&1
cat "$OUT_DIR/results_summary.md" >>"$SUMMARY"

note ""
note "total: $(($(date +%s) - t0)) s; status: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
