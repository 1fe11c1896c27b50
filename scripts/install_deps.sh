#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build, test and run cutrain (idempotent, quiet
# when everything is present): build tools and libraries, clang's libFuzzer, Fashion-MNIST,
# PyTorch + matplotlib for the equivalence test, the goldens and the plots, Doxygen for the
# API reference, and glibc's locale sources (the German-locale test builds de_DE from them). The CUDA
# toolkit itself is expected at /usr/local/cuda (nvcc 13).
set -euo pipefail

packages=(cmake ninja-build g++ libgtest-dev libopenblas-openmp-dev zlib1g-dev nlohmann-json3-dev
          libcli11-dev clang libclang-rt-14-dev libomp-dev dataset-fashion-mnist python3-torch
          python3-matplotlib libopenmpi-dev openmpi-bin clang-tidy doxygen locales)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install_deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
# cuobjdump + nvdisasm for the SASS check (tests/kernels/sass_check.py); the toolkit here ships
# without them. Best effort: without them that one check reports skipped.
if ! command -v cuobjdump >/dev/null && [ ! -x /usr/local/cuda/bin/cuobjdump ] &&
   ! python3 -c "import glob, sysconfig, sys; sys.exit(not glob.glob(sysconfig.get_paths()['purelib'] + '/nvidia/cu*/bin/nvdisasm'))" 2>/dev/null; then
  echo "install_deps: pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm"
  python3 -m pip install -q nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm >/dev/null 2>&1 ||
    python3 -m pip install -q --user nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm >/dev/null 2>&1 ||
    echo "install_deps: could not pip install them; the SASS check will report skipped"
fi
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "install_deps: nvcc is at /usr/local/cuda/bin (add it to PATH)"
fi
