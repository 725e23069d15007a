#!/usr/bin/env bash
# Configures and builds fedmi into ./build (or $FEDMI_BUILD_DIR).
# Usage: scripts/build.sh [cmake --build arguments, e.g. --target fedmi]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${FEDMI_BUILD_DIR:-$root/build}"
jobs="${FEDMI_JOBS:-$(nproc)}"

if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${FEDMI_CMAKE_ARGS:-}
fi
cmake --build "$build_dir" -j "$jobs" "$@"
