#!/usr/bin/env bash
# The main job (README's first command): installs what a fresh machine lacks (the build tools
# and Debian's dataset-fashion-mnist), builds cutrain, trains the default MLP on Fashion-MNIST
# on the first usable GPU (else the CPU), and writes out/metrics.csv, out/report.json and
# out/training.png. Extra arguments go to cutrain-train (e.g. --epochs 5 --device cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target cutrain-train
mkdir -p out
build/bin/cutrain-train --metrics out/metrics.csv --report out/report.json "$@"
if python3 -c 'import matplotlib' 2>/dev/null || /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  py=python3; python3 -c 'import matplotlib' 2>/dev/null || py=/usr/bin/python3
  acc=$($py -c 'import json; print(json.load(open("out/report.json"))["test_accuracy"])')
  # No plot is no failure of the training (a run of 0 epochs has nothing to plot; the reason is
  # printed).
  if $py tools/plot_metrics.py out/metrics.csv out/training.png --test-accuracy "$acc"; then
    echo "plot: out/training.png"
  fi
fi
