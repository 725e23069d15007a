#!/usr/bin/env bash
# Times securely aggregated rounds of two fedmi builds side by side, on the
# same machine in the same run: `fedmi bench round --secure-aggregation on`
# for each site count, the builds alternating (A B A B ...) so that load
# from anything else falls on both. Prints, per site count, the median over
# the repetitions of each build's median secure round and coordinator CPU.
#
# Usage: bench/secagg_compare.sh BASE_BIN_DIR NEW_BIN_DIR [SITES...]
#   BASE_BIN_DIR, NEW_BIN_DIR  folders holding fedmi, fedmi-coordinator and
#                              fedmi-client (e.g. build/bin of two checkouts)
#   SITES                      site counts (default: 5 10 20)
# Environment: PARAMS (default 1000000), ROUNDS (3), REPEATS (3).
#
# Example, against the code before a change:
#   git worktree add /tmp/base <rev> && (cd /tmp/base && scripts/build.sh \
#     --target fedmi fedmi-coordinator fedmi-client)
#   bench/secagg_compare.sh /tmp/base/build/bin build/bin
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
base_dir="$1"
new_dir="$2"
shift 2
sites_list=("$@")
[ ${#sites_list[@]} -eq 0 ] && sites_list=(5 10 20)
params="${PARAMS:-1000000}"
rounds="${ROUNDS:-3}"
repeats="${REPEATS:-3}"
for dir in "$base_dir" "$new_dir"; do
  for binary in fedmi fedmi-coordinator fedmi-client; do
    if [ ! -x "$dir/$binary" ]; then
      echo "secagg_compare: $dir/$binary is missing (build it first)" >&2
      exit 1
    fi
  done
done

# The value of "key": in the "secure" object of bench's JSON line.
secure_field() {
  grep -o "\"secure\":{[^}]*}" | grep -o "\"$1\":[0-9.e+-]*" | cut -d: -f2
}

median() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
                  else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

printf '%-6s %-10s %-8s %14s %16s %14s\n' sites params build secure_round_s coordinator_cpu_s overhead_vs_plain
for sites in "${sites_list[@]}"; do
  declare -A round_s=() cpu_s=() ratio=()
  for ((r = 1; r <= repeats; r++)); do
    for build in base new; do
      dir="$base_dir"
      [ "$build" = new ] && dir="$new_dir"
      echo "secagg_compare: $sites sites, $build build, repeat $r/$repeats" >&2
      line="$("$dir/fedmi" bench round --sites "$sites" --params "$params" --rounds "$rounds" \
        --secure-aggregation on --json | tail -n 1)"
      if ! echo "$line" | grep -q '"within_bound":true'; then
        echo "secagg_compare: the $build build's secure aggregate missed its bound: $line" >&2
        exit 1
      fi
      round_s[$build]+="$(echo "$line" | secure_field median_round_seconds) "
      cpu_s[$build]+="$(echo "$line" | secure_field coordinator_cpu_seconds) "
      ratio[$build]+="$(echo "$line" | secure_field overhead_ratio) "
    done
  done
  for build in base new; do
    printf '%-6s %-10s %-8s %14.3f %16.2f %13.2fx\n' "$sites" "$params" "$build" \
      "$(tr ' ' '\n' <<<"${round_s[$build]}" | grep . | median)" \
      "$(tr ' ' '\n' <<<"${cpu_s[$build]}" | grep . | median)" \
      "$(tr ' ' '\n' <<<"${ratio[$build]}" | grep . | median)"
  done
  unset round_s cpu_s ratio
done
