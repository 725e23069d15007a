#!/usr/bin/env bash
# The Python examples of docs/models.md ("In Python", under "Using a model
# file"), run as written: every ```python block from the marker line
# "<!-- tested: tests/scripts/models_doc_test.sh -->" to the next heading,
# concatenated, in a
# directory holding what the page says it holds: a `fedmi sim` run's
# final-model.pt and final-model.safetensors, pneumoniamnist.npz and
# `fedmi model predict`'s predictions.csv. The examples assert that
# predict_proba matches fedmi within 1e-6 and that both files carry one card.
#
# Python's torch is a hand check, never a dependency: without it (or
# without the data) the test is skipped (exit 77).
# Usage: models_doc_test.sh SOURCE_DIR FEDMI_BINARY
set -uo pipefail
source_dir="$1"
fedmi="$2"
data="${FEDMI_DATA:-$source_dir/../shared/data/pneumoniamnist.npz}"
# Debian's python3-torch lives in /usr/bin/python3, which a python3 earlier
# on the PATH (a virtualenv, pyenv) may hide; $PYTHON names another.
python=""
for candidate in ${PYTHON:-} /usr/bin/python3 python3; do
  if "$candidate" -c "import torch, numpy" 2>/dev/null; then python="$candidate"; break; fi
done
if [ -z "$python" ]; then
  echo "SKIP: no python3 with torch and numpy (python3-torch): nothing to check against"
  exit 77
fi
if [ ! -f "$data" ]; then
  echo "SKIP: no PneumoniaMNIST at $data"
  exit 77
fi
fail() { echo "FAIL: $*"; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$fedmi" --insecure sim --sites 2 --rounds 1 --data "$data" --class-names normal,pneumonia \
  --work-dir "$work/sim" >"$work/sim.log" 2>&1 || fail "fedmi sim: $(tail -5 "$work/sim.log")"
cp "$work/sim/final-model.pt" "$work/sim/final-model.safetensors" "$work/"
ln -s "$(realpath "$data")" "$work/pneumoniamnist.npz"
"$fedmi" model predict --model "$work/final-model.pt" --data "$data" --split test \
  --out "$work/predictions.csv" >/dev/null || fail "fedmi model predict"

awk '/<!-- tested: tests\/scripts\/models_doc_test.sh -->/ { on = 1 }
     on && !block && /^#/ { exit }
     on && /^```python$/ { block = 1; next }
     block && /^```$/ { block = 0; next }
     block { print }' "$source_dir/docs/models.md" >"$work/example.py"
[ -s "$work/example.py" ] || fail "no tested python block in docs/models.md"
(cd "$work" && "$python" example.py) >"$work/example.log" 2>&1 ||
  fail "the docs' example failed: $(cat "$work/example.log")"
cat "$work/example.log"
echo "PASS"
