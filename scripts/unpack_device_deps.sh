#!/usr/bin/env bash
# On the GPU machine: unpacks .deps/debs (from bundle_device_deps.sh) into .deps/prefix and
# .deps/googletest. Prints the CMake arguments and exports nothing; gpu_check.sh uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .deps/debs ] || exit 0
# Packages of another architecture (x86-64 packages on an aarch64 GH200 host) cannot be used:
# say so, and leave them packed, rather than let the build fail on foreign libraries.
machine=$(dpkg --print-architecture 2>/dev/null || uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')
for deb in .deps/debs/*.deb; do
  arch=$(dpkg-deb -f "$deb" Architecture 2>/dev/null || echo all)
  if [ "$arch" != all ] && [ "$arch" != "$machine" ]; then
    echo "unpack_device_deps: $(basename "$deb") is for $arch, this machine is $machine:" \
      "run scripts/bundle_device_deps.sh on a $machine machine; the bundle is not used" >&2
    exit 3
  fi
done
if [ ! -d .deps/prefix/usr ]; then
  mkdir -p .deps/prefix
  for deb in .deps/debs/*.deb; do dpkg -x "$deb" .deps/prefix; done
fi
if [ ! -f .deps/googletest/CMakeLists.txt ] && [ -d .deps/prefix/usr/src/googletest ]; then
  cp -r .deps/prefix/usr/src/googletest .deps/googletest
fi
