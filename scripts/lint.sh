#!/usr/bin/env bash
# House style, checked by tools. Usage:
#   scripts/lint.sh            formatting check, then clang-tidy on every source file
#   scripts/lint.sh --format   formatting check only (what .ci/run runs first: seconds)
#   scripts/lint.sh --fix      rewrite files with clang-format instead of checking
# clang-tidy reads the checks from .clang-tidy and the flags from the build's
# compile_commands.json (scripts/build.sh configures ./build or $FEDMI_BUILD_DIR).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${FEDMI_BUILD_DIR:-$root/build}"
mode="${1:-all}"
cd "$root"

for tool in clang-format clang-tidy; do
  if ! command -v "$tool" >/dev/null; then
    echo "lint: $tool is missing (scripts/install-deps.sh installs it)" >&2
    exit 1
  fi
done

# Every C++ file git knows, generated code excluded (it lives in the build dir).
mapfile -t files < <(git ls-files '*.cc' '*.h')

if [ "$mode" = "--fix" ]; then
  clang-format -i "${files[@]}"
  echo "lint: formatted ${#files[@]} files"
  exit 0
fi

drift=()
for f in "${files[@]}"; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then drift+=("$f"); fi
done
if [ ${#drift[@]} -gt 0 ]; then
  echo "lint: ${#drift[@]} file(s) differ from clang-format (run scripts/lint.sh --fix):" >&2
  printf '  %s\n' "${drift[@]}" >&2
  exit 1
fi
echo "lint: formatting ok (${#files[@]} files)"
[ "$mode" = "--format" ] && exit 0

if [ ! -f "$build_dir/compile_commands.json" ]; then
  cmake -S "$root" -B "$build_dir" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
fi
# Generated protobuf headers must exist for clang-tidy to parse the sources.
cmake --build "$build_dir" --target fedmi_proto_messages fedmi_proto >/dev/null
mapfile -t sources < <(git ls-files '*.cc' | grep -v '^tests/fuzz/')
jobs="${FEDMI_JOBS:-$(nproc)}"
printf '%s\n' "${sources[@]}" |
  xargs -P "$jobs" -n 4 clang-tidy -p "$build_dir" --quiet --warnings-as-errors='*' \
    2> >(grep -v '^[0-9]* warnings generated' >&2)
echo "lint: clang-tidy ok (${#sources[@]} files)"
