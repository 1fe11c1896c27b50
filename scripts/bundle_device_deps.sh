#!/usr/bin/env bash
# Run HERE (a machine with Debian's registry) before a GPU check: downloads, as Debian packages,
# what the GPU machine (no package registry) lacks: GoogleTest's sources, nlohmann-json, CLI11,
# OpenBLAS (OpenMP build) with libgfortran, and Fashion-MNIST. They stay compressed in
# .deps/debs (git-ignored; ~45 MiB, under the device tool's 64 MiB carry limit) and
# scripts/gpu_check.sh unpacks them there; cuDNN's headers go to .deps/cudnn (below).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/debs
packages=(googletest nlohmann-json3-dev libcli11-dev libopenblas-openmp-dev libopenblas0-openmp
          libgfortran5 dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  ls .deps/debs/"${p}"_*.deb >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  (cd .deps/debs && apt-get download "${missing[@]}" >/dev/null 2>&1) ||
    { apt-get update -qq && (cd .deps/debs && apt-get download "${missing[@]}"); }
fi
# cuDNN's headers from this machine's toolkit, for a GPU machine whose toolkit lacks them (its
# library comes with PyTorch there: Note [cuDNN loaded at run time]).
if ls /usr/local/cuda/include/cudnn*.h >/dev/null 2>&1; then
  mkdir -p .deps/cudnn/include
  cp /usr/local/cuda/include/cudnn*.h .deps/cudnn/include/
fi
rm -rf .deps/prefix .deps/googletest  # unpacked on the GPU machine, not carried
du -sh .deps
