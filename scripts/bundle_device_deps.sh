#!/usr/bin/env bash
# Run HERE (a machine with Debian's registry) before a GPU check: fetches what the GPU machine,
# which has no package registry, lacks for the build into .deps/ (git-ignored; carry it):
# GoogleTest's sources (Debian's `googletest`), the header-only nlohmann-json and CLI11, and
# OpenBLAS (OpenMP build) with libgfortran, unpacked under .deps/prefix, which
# scripts/gpu_check.sh adds to CMAKE_PREFIX_PATH and, for the test binaries, LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/debs
fetch() {
  (cd .deps/debs && apt-get download "$@" >/dev/null 2>&1) ||
    { apt-get update -qq && (cd .deps/debs && apt-get download "$@"); }
}
if [ ! -f .deps/googletest/CMakeLists.txt ]; then
  fetch googletest
  rm -rf .deps/unpacked && mkdir -p .deps/unpacked
  dpkg -x .deps/debs/googletest_*.deb .deps/unpacked
  rm -rf .deps/googletest && cp -r .deps/unpacked/usr/src/googletest .deps/googletest
  rm -rf .deps/unpacked
fi
if [ ! -d .deps/prefix/usr/include/nlohmann ] || [ ! -d .deps/prefix/usr/include/CLI ] ||
   [ ! -d .deps/prefix/usr/lib/x86_64-linux-gnu/openblas-openmp ]; then
  fetch nlohmann-json3-dev libcli11-dev libopenblas-openmp-dev libopenblas0-openmp libgfortran5
  mkdir -p .deps/prefix
  for deb in .deps/debs/*.deb; do
    case "$deb" in *googletest*) continue ;; esac
    dpkg -x "$deb" .deps/prefix
  done
  # Keep the carried tree small (the device tool carries 64 MiB): shared OpenBLAS only.
  find .deps/prefix -name '*.a' -delete
  rm -rf .deps/prefix/usr/share/doc .deps/prefix/usr/lib/x86_64-linux-gnu/openblas-openmp/liblapack* \
    .deps/prefix/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas*
fi
rm -rf .deps/debs
du -sh .deps
