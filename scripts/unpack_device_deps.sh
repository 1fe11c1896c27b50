#!/usr/bin/env bash
# On the GPU machine: unpacks .deps/debs (from bundle_device_deps.sh) into .deps/prefix and
# .deps/googletest. Prints the CMake arguments and exports nothing; gpu_check.sh uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .deps/debs ] || exit 0
if [ ! -d .deps/prefix/usr ]; then
  mkdir -p .deps/prefix
  for deb in .deps/debs/*.deb; do dpkg -x "$deb" .deps/prefix; done
fi
if [ ! -f .deps/googletest/CMakeLists.txt ] && [ -d .deps/prefix/usr/src/googletest ]; then
  cp -r .deps/prefix/usr/src/googletest .deps/googletest
fi
