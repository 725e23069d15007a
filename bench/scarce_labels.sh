#!/usr/bin/env bash
# The scarce-label experiments of docs/scarce-labels.md, with the real
# commands a site's operator runs: PneumoniaMNIST split over 5 sites
# (Dirichlet alpha 0.5) by `fedmi data split`, federations by `fedmi sim
# --shards`, and at the sites `fedmi al rank`, `fedmi al import` and `fedmi
# data audit-labels`. The radiologist is simulated: the labels the split
# hid (site-K.truth.csv) fill in the lists. Appends one JSON object per
# result to OUT/results.jsonl; bench/scarce_labels_report makes the tables
# and the learning-curve PNG from it.
#
#   al     each site starts with 5% of its training images labelled; three
#          acquisition rounds add 5% each, chosen by entropy, bald or random;
#          every stage trains a new federation from scratch on the labels
#          so far, and the first stage's model ranks for all methods.
#   ssl    10% labelled: labelled-only against --semi-supervised
#          pseudo-label and fixmatch.
#   noise  all labelled; 10% of the largest site's labels flipped: clean,
#          noisy, and noisy with the audit's flagged images down-weighted
#          (audit-labels on that site with the noisy run's global model of
#          round AUDIT_ROUND, or its final model when that is 0). Each
#          federation trains TRAIN_SEEDS times on the same shards (training
#          seeds SEED*1000+t) and the mean test AUC is recorded.
#
# Usage: bench/scarce_labels.sh FEDMI DATA OUT EXPERIMENT SEED...
# Environment: ROUNDS (default 10), LOCAL_EPOCHS (default 5), METHODS
# (default "entropy bald random"), SSL_VARIANTS (default "labelled-only
# pseudo-label fixmatch"), NOISE_WEIGHT (default 0), TRAIN_SEEDS
# (default 1), AUDIT_EPOCHS (audit-labels --epochs, default 3; 0: the
# federated model as it is), AUDIT_ROUND (the noisy run's round whose
# global model is audited, default 3; 0: its final model).
set -euo pipefail
if [ $# -lt 5 ]; then
  sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
fedmi=$(realpath "$1") data=$(realpath "$2") out=$(realpath -m "$3") experiment=$4
shift 4
rounds=${ROUNDS:-10} epochs=${LOCAL_EPOCHS:-5}
methods=${METHODS:-entropy bald random}
ssl_variants=${SSL_VARIANTS:-labelled-only pseudo-label fixmatch}
train_seeds=${TRAIN_SEEDS:-1}
audit_epochs=${AUDIT_EPOCHS:-3}
audit_round=${AUDIT_ROUND:-3}
if [ "$experiment" = noise ]; then
  if ! [[ $audit_round =~ ^[0-9]+$ ]] || ((10#$audit_round > rounds)); then
    echo "error: AUDIT_ROUND '$audit_round' is not 0 (the final model) or a round from 1 to $rounds" >&2
    exit 2
  fi
  audit_round=$((10#$audit_round))
fi
noise_weight=${NOISE_WEIGHT:-0}
mkdir -p "$out"
results=$out/results.jsonl

json_field() {  # FILE PYTHON-EXPRESSION-ON-j
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"
}

split() {  # SEED DIR EXTRA-FLAGS...
  local seed=$1 dir=$2
  shift 2
  rm -rf "$dir"
  "$fedmi" data split --input "$data" --sites 5 --partition dirichlet --alpha 0.5 \
    --seed "$seed" --out "$dir" --json "$@" | tail -n 1 > "$dir.json"
}

sim() {  # SEED SHARDS WORK EXTRA-FLAGS... ; prints the test AUC
  local seed=$1 shards=$2 work=$3
  shift 3
  rm -rf "$work"
  "$fedmi" sim --shards "$shards" --sites 5 --rounds "$rounds" --local-epochs "$epochs" \
    --seed "$seed" --data "$data" --secure-aggregation off --work-dir "$work" \
    --json-out "$work.json" "$@" > "$work.log" 2>&1 ||
    { echo "fedmi sim failed, see $work.log" >&2; exit 1; }
  json_field "$work.json" 'j["test"]["auc"]'
}

sim_mean() {  # SEED SHARDS WORK EXTRA-FLAGS... ; the mean test AUC of TRAIN_SEEDS runs
  local seed=$1 shards=$2 work=$3 t aucs=""
  shift 3
  for ((t = 0; t < train_seeds; t++)); do
    aucs="$aucs $(sim $((seed * 1000 + t)) "$shards" "$work-t$t" "$@")"
  done
  python3 -c 'import sys; a = [float(x) for x in sys.argv[1:]]; print(sum(a) / len(a))' $aucs
}

labelled() {  # SHARDS: labelled training images over the sites
  local total=0 n
  for k in 1 2 3 4 5; do
    n=$("$fedmi" data inspect "$1/site-$k.npz" --json | tail -n 1 |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["splits"]["train"]["images"])')
    total=$((total + n))
  done
  echo "$total"
}

acquire() {  # SEED METHOD STAGE MODEL SHARDS TRUTH-DIR
  local seed=$1 method=$2 stage=$3 model=$4 shards=$5 truth=$6 k list
  for k in 1 2 3 4 5; do
    list=$shards/to-label-site-$k.csv
    "$fedmi" al rank --model "$model" --data "$shards/site-$k.npz" --budget 5% \
      --method "$method" --seed $((seed * 100 + stage)) --out "$list" > /dev/null
    awk -F, -v OFS=, 'NR == FNR { label[$1] = $2; next }
                      FNR == 1 { print; next } { $7 = label[$2]; print }' \
      "$truth/site-$k.truth.csv" "$list" > "$list.filled"
    "$fedmi" al import "$list.filled" --data "$shards/site-$k.npz" > /dev/null
  done
}

run_al() {  # SEED
  local seed=$1 base=$out/al/seed$1 auc0 labels0 model0
  mkdir -p "$base"
  split "$seed" "$base/shards0" --labelled-fraction 0.05
  auc0=$(sim "$seed" "$base/shards0" "$base/stage0")
  labels0=$(labelled "$base/shards0")
  model0=$base/stage0/final-model.pt
  for method in $methods; do
    echo "{\"experiment\":\"al\",\"seed\":$seed,\"method\":\"$method\",\"stage\":0,\"labels\":$labels0,\"auc\":$auc0}" >> "$results"
    rm -rf "$base/$method" && mkdir -p "$base/$method"
    cp -r "$base/shards0" "$base/$method/shards"
    local model=$model0 stage auc
    for stage in 1 2 3; do
      acquire "$seed" "$method" "$stage" "$model" "$base/$method/shards" "$base/shards0"
      auc=$(sim "$seed" "$base/$method/shards" "$base/$method/stage$stage")
      model=$base/$method/stage$stage/final-model.pt
      echo "{\"experiment\":\"al\",\"seed\":$seed,\"method\":\"$method\",\"stage\":$stage,\"labels\":$(labelled "$base/$method/shards"),\"auc\":$auc}" >> "$results"
      echo "al seed $seed $method stage $stage: AUC $auc"
    done
  done
}

run_ssl() {  # SEED
  local seed=$1 base=$out/ssl/seed$1 auc
  mkdir -p "$base"
  split "$seed" "$base/shards" --labelled-fraction 0.1
  local variant
  for variant in $ssl_variants; do
    if [ "$variant" = labelled-only ]; then
      auc=$(sim "$seed" "$base/shards" "$base/$variant")
    else
      auc=$(sim "$seed" "$base/shards" "$base/$variant" --semi-supervised "$variant")
    fi
    echo "{\"experiment\":\"ssl\",\"seed\":$seed,\"variant\":\"$variant\",\"auc\":$auc}" >> "$results"
  done
  echo "ssl seed $seed done"
}

run_noise() {  # SEED
  local seed=$1 base=$out/noise/seed$1 auc site
  mkdir -p "$base"
  split "$seed" "$base/clean-shards"
  site=$(json_field "$base/clean-shards.json" \
    'max(j["sites"], key=lambda s: s["train_examples"])["site"]')
  split "$seed" "$base/noisy-shards" --flip-labels "$site:0.1"
  auc=$(sim_mean "$seed" "$base/clean-shards" "$base/clean")
  echo "{\"experiment\":\"noise\",\"seed\":$seed,\"variant\":\"clean\",\"auc\":$auc}" >> "$results"
  local audit_model=$base/noisy-t0/final-model.pt round_flags=()
  if [ "$audit_round" -gt 0 ]; then
    audit_model=$base/noisy-t0/round-$audit_round-model.pt
    round_flags=(--round-models "$audit_round")
  fi
  auc=$(sim_mean "$seed" "$base/noisy-shards" "$base/noisy" ${round_flags[@]+"${round_flags[@]}"})
  echo "{\"experiment\":\"noise\",\"seed\":$seed,\"variant\":\"noisy\",\"auc\":$auc}" >> "$results"
  "$fedmi" data audit-labels --model "$audit_model" \
    --data "$base/noisy-shards/$site.npz" --out "$base/suspects.csv" --seed "$seed" \
    --epochs "$audit_epochs" \
    > "$base/audit.log" 2>&1
  python3 - "$base/suspects.csv" "$base/noisy-shards/$site.flipped.csv" "$seed" >> "$results" <<'PY'
import csv, json, math, sys
ranked = list(csv.DictReader(open(sys.argv[1])))
flipped = {row["id"] for row in csv.DictReader(open(sys.argv[2]))}
top = math.ceil(0.1 * len(ranked))
print(json.dumps({"experiment": "audit", "seed": int(sys.argv[3]), "site_images": len(ranked),
                  "flipped": len(flipped), "top": top,
                  "found_top": sum(r["id"] in flipped for r in ranked[:top]),
                  "flagged": sum(r["flagged"] == "1" for r in ranked),
                  "flagged_flipped": sum(r["flagged"] == "1" and r["id"] in flipped
                                         for r in ranked)}))
PY
  auc=$(sim_mean "$seed" "$base/noisy-shards" "$base/down-weighted" \
    --noisy-labels "$site:$base/suspects.csv" --noisy-label-weight "$noise_weight")
  echo "{\"experiment\":\"noise\",\"seed\":$seed,\"variant\":\"down-weighted\",\"auc\":$auc}" >> "$results"
  echo "noise seed $seed done ($site flipped)"
}

for seed in "$@"; do
  case $experiment in
    al) run_al "$seed" ;;
    ssl) run_ssl "$seed" ;;
    noise) run_noise "$seed" ;;
    *) echo "error: unknown experiment '$experiment' (al, ssl or noise)" >&2; exit 2 ;;
  esac
done
