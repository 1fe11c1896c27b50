#!/usr/bin/env bash
# Run HERE (a machine with Debian's registry) before a GPU check: fetches what the GPU machine,
# which has no package registry, lacks for the build into .deps/ (git-ignored; carry it).
# Today: GoogleTest's sources (Debian's `googletest` package). Keep .deps/ to tens of MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/debs
if [ ! -f .deps/googletest/CMakeLists.txt ]; then
  (cd .deps/debs && apt-get download googletest >/dev/null 2>&1) ||
    { apt-get update -qq && (cd .deps/debs && apt-get download googletest); }
  rm -rf .deps/unpacked && mkdir -p .deps/unpacked
  dpkg -x .deps/debs/googletest_*.deb .deps/unpacked
  rm -rf .deps/googletest && cp -r .deps/unpacked/usr/src/googletest .deps/googletest
  rm -rf .deps/unpacked
fi
du -sh .deps
