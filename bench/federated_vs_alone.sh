#!/usr/bin/env bash
# Pooled training and each site trained alone, with `fedmi sim`'s own
# recipe, for comparison with a federated `fedmi sim --compare` of the same
# split (docs/strategies-measured.md, "Federated against pooled, and against
# each site alone").
#
# Pooled: all training images at one site, `fedmi sim --sites 1`, ROUNDS
# rounds of one local epoch (ROUNDS epochs, the optimizer restarted each
# round as in a federation). Alone: each shard of a federated run's work
# directory (its shards/site-K.npz: that site's train and val rows) with the
# data set's test split added, trained by `fedmi sim --sites 1` for ROUNDS
# rounds and tested on the common test split.
#
# Usage: bench/federated_vs_alone.sh FEDMI DATA RUN_DIR OUT_DIR [SEED]
#   FEDMI    the fedmi binary (e.g. build/bin/fedmi)
#   DATA     the .npz the federated run split
#   RUN_DIR  a federated run's work directory (e.g. one run of sim --compare)
#   OUT_DIR  where to write pooled.json, site-K.json and their logs
#   SEED     the federated run's --seed (default 0)
# Environment: ROUNDS (default 8). Prints test AUC per run; the JSON files
# are `fedmi sim --json-out` summaries.
set -euo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
fedmi=$1 data=$2 run_dir=$3 out=$4 seed=${5:-0}
rounds=${ROUNDS:-8}
[ -d "$run_dir/shards" ] || { echo "error: $run_dir/shards not found (a fedmi sim work dir?)" >&2; exit 1; }
mkdir -p "$out/npz"

run() {  # name data
  "$fedmi" sim --sites 1 --partition iid --rounds "$rounds" --seed "$seed" --data "$2" \
    --work-dir "$out/$1" --json-out "$out/$1.json" > "$out/$1.log" 2>&1 ||
    { echo "$1: fedmi sim failed, see $out/$1.log" >&2; return 0; }
  python3 -c 'import json,sys; print(sys.argv[1], "test AUC", json.load(open(sys.argv[2]))["test"]["auc"])' \
    "$1" "$out/$1.json"
}

run pooled "$data"
for shard in "$run_dir"/shards/site-*.npz; do
  name=$(basename "$shard" .npz)
  # An .npz is a zip of .npy arrays: the shard's, plus the test split's.
  python3 - "$shard" "$data" "$out/npz/$name.npz" <<'PY'
import sys, zipfile
shard, data, out = sys.argv[1:]
with zipfile.ZipFile(shard) as s, zipfile.ZipFile(data) as d, zipfile.ZipFile(out, "w") as w:
    for entry in s.namelist():
        w.writestr(entry, s.read(entry))
    for entry in ("test_images.npy", "test_labels.npy"):
        w.writestr(entry, d.read(entry))
PY
  run "$name" "$out/npz/$name.npz"
done
