#!/usr/bin/env bash
# Installs what is missing, builds, and runs a real federation on this
# machine: one coordinator and five hospital clients as separate processes
# over gRPC on loopback, training on real chest X-rays (PneumoniaMNIST).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${FEDMI_BUILD_DIR:-$root/build}"

# The lookup order of `fedmi sim` (cli/sim_commands.cc, README.md): $FEDMI_DATA,
# then ../shared/data next to this project. A set $FEDMI_DATA that names no
# file is an error, not a reason to take another file silently.
data=""
if [ -n "${FEDMI_DATA:-}" ]; then
  if [ ! -f "$FEDMI_DATA" ]; then
    echo "demo: \$FEDMI_DATA names $FEDMI_DATA, which is not a file" >&2
    exit 1
  fi
  data="$FEDMI_DATA"
elif [ -f "$root/../shared/data/pneumoniamnist.npz" ]; then
  data="$root/../shared/data/pneumoniamnist.npz"
fi
if [ -z "$data" ]; then
  cat >&2 <<'MSG'
demo: PneumoniaMNIST not found.
  Looked at $FEDMI_DATA (unset), then ../shared/data/pneumoniamnist.npz (next to this project).
  Get pneumoniamnist.npz from the MedMNIST v2 release (https://medmnist.com,
  Zenodo record 10519652; CC BY 4.0), then run:
    FEDMI_DATA=/path/to/pneumoniamnist.npz ./scripts/demo.sh
MSG
  exit 1
fi

"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" --target fedmi fedmi-coordinator fedmi-client

rounds="${FEDMI_DEMO_ROUNDS:-20}"
echo "demo: federating over 5 hospital sites, Dirichlet(0.5) label skew, $rounds rounds," \
  "mutual TLS and secure aggregation, the training recipe of README.md"
exec "$build_dir/bin/fedmi" sim --data "$data" --sites 5 --partition dirichlet --alpha 0.5 \
  --rounds "$rounds" --local-epochs 2 --model cnn-gn --lr 2e-3 --augment standard \
  --lr-schedule cosine --weight-decay 1e-4 --seed 0 --secure-aggregation on \
  --class-names normal,pneumonia "$@"
