#!/usr/bin/env bash
# Checks that a coordinator host can build fedmi without LibTorch: configures
# a second build directory from scratch with -DFEDMI_WITH_TRAINING=OFF and
# LibTorch made unfindable, builds only fedmi-coordinator and fedmi (and what
# they need), and fails unless
#  - neither binary links libtorch or libc10 (ldd),
#  - no compile command of that build has a torch include path,
#  - `fedmi model evaluate` and `fedmi sim` exit 1 saying that this fedmi was
#    built without training, while `fedmi --help` still lists them.
# Objects come from ccache: the directory sits next to ./build, at the same
# depth, so paths match. ctest runs this as build_without_training (label
# `build`). Usage: scripts/check-no-torch.sh [build dir]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${1:-${FEDMI_WITHOUT_TRAINING_BUILD_DIR:-$root/build-without-training}}"
jobs="${FEDMI_JOBS:-$(nproc)}"

fail() {
  echo "check-no-torch: FAIL: $*" >&2
  exit 1
}

mkdir -p "$build_dir"
log="$build_dir/configure.log"
# --fresh drops any CMakeCache.txt, so a stale cache cannot hide an OFF
# configure that no longer works from scratch.
cmake --fresh -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFEDMI_WITH_TRAINING=OFF -DCMAKE_DISABLE_FIND_PACKAGE_Torch=ON -DTorch_DIR=/nonexistent \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$log" 2>&1 ||
  { cat "$log" >&2; fail "configure with FEDMI_WITH_TRAINING=OFF"; }
cmake --build "$build_dir" -j "$jobs" --target fedmi-coordinator fedmi ||
  fail "building fedmi-coordinator and fedmi without LibTorch"

for binary in fedmi-coordinator fedmi; do
  path="$build_dir/bin/$binary"
  [ -x "$path" ] || fail "$path was not built"
  if ldd "$path" | grep -E 'libtorch|libc10'; then
    fail "$binary links LibTorch"
  fi
done

commands="$build_dir/compile_commands.json"
[ -f "$commands" ] || fail "$commands is missing"
if grep -E -- '-(I|isystem) ?[^ "]*(/torch/|libtorch|/c10/)' "$commands"; then
  fail "a compile command uses a torch include path"
fi

fedmi="$build_dir/bin/fedmi"
expect_refusal() {
  local what="$1"
  shift
  local output status=0
  output="$("$fedmi" "$@" 2>&1)" || status=$?
  [ "$status" -eq 1 ] || fail "\`$what\` exited $status, expected 1: $output"
  echo "$output" | grep -qF "\`$what\` runs models, and this fedmi was built without training (cmake -DFEDMI_WITH_TRAINING=ON)" ||
    fail "\`$what\` did not say why: $output"
}
expect_refusal "fedmi model evaluate" model evaluate --model model.pt --data data.npz
expect_refusal "fedmi model predict" model predict --model model.pt --data data.npz --out p.csv
expect_refusal "fedmi sim" sim --sites 2
expect_refusal "fedmi model export --out *.pt" model export 1 --out model.pt
# .safetensors export needs no model code: it gets as far as dialling the
# (absent) coordinator.
output="$("$fedmi" --insecure --coordinator 127.0.0.1:1 model export 1 --out m.safetensors 2>&1)" &&
  fail "export from an absent coordinator succeeded"
if echo "$output" | grep -q "without training"; then
  fail "\`fedmi model export --out *.safetensors\` was refused: $output"
fi
help="$("$fedmi" --help)"
for command in model sim bench run site audit provision data; do
  echo "$help" | grep -qE "^  $command( |$)" || fail "\`fedmi --help\` does not list $command"
done

echo "check-no-torch: OK: fedmi-coordinator and fedmi build and run without LibTorch ($build_dir)"
