#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite.
# Extra arguments go to ctest (e.g. -R codec, -L integration).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${FEDMI_BUILD_DIR:-$root/build}"

"$root/scripts/install-deps.sh"
start=$(date +%s)
"$root/scripts/build.sh"
echo "test.sh: build finished in $(( $(date +%s) - start )) s"

cd "$build_dir"
ctest --output-on-failure -j "${FEDMI_TEST_JOBS:-2}" "$@"
