#!/usr/bin/env bash
# Long fuzz runs (docs/operations.md, "Fuzzing"): builds tests/fuzz with clang,
# libFuzzer and AddressSanitizer in build-fuzz/, seeds each corpus from the
# regular build's targets, and runs every target for SECONDS (default 600),
# JOBS at a time (default 2). Prints each target's exec count; exits 1 if a
# target crashed, leaked or hung (its reproducer is left in build-fuzz/).
#   ./scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(bundle_stream_fuzz update_check_fuzz run_spec_fuzz site_policy_fuzz audit_export_fuzz)
fi
jobs="${JOBS:-2}"
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is needed (apt install clang)"; exit 1; }

"$root/scripts/build.sh" --target "${targets[@]}" >/dev/null
CC=clang CXX=clang++ cmake -S "$root" -B "$root/build-fuzz" -DFEDMI_FUZZ=ON \
  -DFEDMI_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build-fuzz" -j"$(nproc)" --target "${targets[@]}"

status=0
run_one() {
  local target="$1" dir="$root/build-fuzz/fuzz/$1"
  mkdir -p "$dir/corpus"
  "$root/build/bin/$target" --write-seeds "$dir/seeds"
  (cd "$dir" && ASAN_OPTIONS=detect_leaks=1 "$root/build-fuzz/bin/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    corpus seeds >"$dir/log.txt" 2>&1)
}
pending=("${targets[@]}")
while [ ${#pending[@]} -gt 0 ]; do
  batch=("${pending[@]:0:$jobs}")
  pending=("${pending[@]:$jobs}")
  pids=()
  for target in "${batch[@]}"; do run_one "$target" & pids+=($!); done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      echo "${batch[$i]}: FAILED, see build-fuzz/fuzz/${batch[$i]}/log.txt"
      status=1
    fi
  done
done
for target in "${targets[@]}"; do
  log="$root/build-fuzz/fuzz/$target/log.txt"
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}')
  echo "$target: ${execs:-?} executions in ${seconds} s, $(grep -c '' "$root/build-fuzz/fuzz/$target/corpus"/* 2>/dev/null | wc -l) corpus files"
done
exit $status
