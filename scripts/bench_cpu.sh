#!/usr/bin/env bash
# The CPU benchmarks and their PyTorch peers, each pair back to back on this machine, then
# bench/RESULTS.md's summary table for it (scripts/bench_table.py --summary): the CPU twin of
# scripts/gpu_check.sh's benchmark steps. About 6 minutes on 2 cores; run it on a quiet machine.
#   bash scripts/bench_cpu.sh [OUT_DIR]      (needs build/bin from scripts/test.sh or any build;
#                                             BIN=build-cpu/bin for another; /usr/bin/python3's torch)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/bench_cpu}
bin=${BIN:-build/bin}
threads=${THREADS:-$(nproc)}
export OMP_NUM_THREADS=$threads GOMP_SPINCOUNT=1000
py=/usr/bin/python3
mkdir -p "$out"
rm -f "$out"/*.jsonl
data=${DATA:-/usr/share/datasets/fashion-mnist}

echo "== main job: cutrain-train defaults, then the same MLP in PyTorch"
"$bin/cutrain-train" --device cpu --data "$data" --report "$out/report_cpu_default.json" >/dev/null
$py bench/torch/mlp_gpu.py --device cpu --data "$data" --threads "$threads" --json >>"$out/mlp.jsonl"
echo "== the default CNN, 2 epochs of 6000 images each"
"$bin/cutrain-train" --device cpu --data "$data" --model cnn --epochs 2 --train-subset 6000 \
  --report "$out/report_cpu_cnn.json" >/dev/null
$py bench/torch/mlp_gpu.py --device cpu --data "$data" --model cnn --epochs 2 --train-subset 6000 \
  --threads "$threads" --json >>"$out/mlp.jsonl"
echo "== Adam, 2^24 parameters; clip + Adam on the model-shaped sets"
"$bin/bench_optim" --device cpu --optimizer adam --n 16777216 --min-seconds 1 --json >>"$out/optim.jsonl"
$py bench/torch/optim_cpu.py --n 16777216 --threads "$threads" >>"$out/optim.jsonl"
for model in mlp-1m gpt2-small; do
  "$bin/bench_optim" --device cpu --optimizer adam --model $model --clip --min-seconds 1 --json \
    >>"$out/optim.jsonl"
  $py bench/torch/optim_cpu.py --model $model --clip --threads "$threads" >>"$out/optim.jsonl"
done
echo "== layers and convolutions"
"$bin/bench_layers" --device cpu --json >>"$out/layers.jsonl"
"$bin/bench_conv" --device cpu --json >>"$out/conv.jsonl"
$py bench/torch/conv.py --device cpu >>"$out/conv.jsonl"

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
machine="$threads cores of $cpu, $(date +%F), commit $(git rev-parse --short HEAD), PyTorch $($py -c 'import torch; print(torch.__version__)')"
python3 scripts/bench_table.py --summary "$machine" --report default="$out/report_cpu_default.json" \
  --report cnn="$out/report_cpu_cnn.json" "$out"/*.jsonl | tee "$out/summary.md"
