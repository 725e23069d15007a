#!/usr/bin/env bash
# `fedmi sim` and scripts/demo.sh look for PneumoniaMNIST in one order
# (docs/data.md): --data, then $FEDMI_DATA, then ../shared/data. A set
# $FEDMI_DATA wins over a copy next to the checkout, and one that names no
# file is an error naming it. Both fail before starting or installing
# anything, so no data, network or root is needed.
# Usage: data_lookup_test.sh SOURCE_DIR FEDMI_BINARY
set -uo pipefail
source_dir="$1"
fedmi="$2"
fail() { echo "FAIL: $*"; exit 1; }
missing="/nonexistent-fedmi-data/pneumoniamnist.npz"

out="$(FEDMI_DATA="$missing" "$fedmi" sim --sites 2 --rounds 1 2>&1)"
rc=$?
[ "$rc" -eq 1 ] || fail "sim with a missing \$FEDMI_DATA: rc $rc, want 1: $out"
grep -q "data file $missing not found (named by \$FEDMI_DATA)" <<<"$out" ||
  fail "sim did not name \$FEDMI_DATA: $out"

# --data comes before $FEDMI_DATA.
out="$(FEDMI_DATA=/dev/null "$fedmi" sim --sites 2 --rounds 1 --data "$missing" 2>&1)"
grep -q "data file $missing not found" <<<"$out" || fail "sim did not take --data first: $out"
grep -q "named by" <<<"$out" && fail "sim blamed \$FEDMI_DATA for --data: $out"

out="$(FEDMI_DATA="$missing" "$source_dir/scripts/demo.sh" 2>&1)"
rc=$?
[ "$rc" -eq 1 ] || fail "demo.sh with a missing \$FEDMI_DATA: rc $rc, want 1: $out"
grep -q "FEDMI_DATA names $missing, which is not a file" <<<"$out" ||
  fail "demo.sh did not name \$FEDMI_DATA: $out"
echo "PASS"
