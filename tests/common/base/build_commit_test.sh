#!/usr/bin/env bash
# cmake/BuildCommit.cmake: what `--version` reports as the commit.
# Usage: build_commit_test.sh BuildCommit.cmake CMAKE
set -euo pipefail
script="$1"
cmake="$2"
command -v git >/dev/null || { echo "SKIP: git is not installed"; exit 77; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
commit_of() {  # SOURCE_DIR OUTPUT -> the string BuildCommit() returns
  "$cmake" -DSOURCE_DIR="$1" -DOUTPUT="$2" -P "$script"
  sed -n 's/.*return "\(.*\)";.*/\1/p' "$2"
}
unset FEDMI_GIT_COMMIT

# A tarball: no .git.
mkdir "$tmp/tarball"
[ "$(commit_of "$tmp/tarball" "$tmp/a.cc")" = unknown ] || fail "no .git should say unknown"

# A checkout: the commit's 12-digit hash; "-dirty" with a changed tracked file.
mkdir "$tmp/repo"
git -C "$tmp/repo" init -q
echo one > "$tmp/repo/file"
git -C "$tmp/repo" add file
git -C "$tmp/repo" -c user.name=t -c user.email=t@example.org commit -qm one
head="$(git -C "$tmp/repo" rev-parse HEAD)"
got="$(commit_of "$tmp/repo" "$tmp/b.cc")"
[ "$got" = "${head:0:12}" ] || fail "expected ${head:0:12}, got $got"
# Not rewritten when nothing changed, so nothing recompiles.
touch -d '2000-01-01 00:00:00' "$tmp/b.cc"
commit_of "$tmp/repo" "$tmp/b.cc" >/dev/null
[ "$(date -r "$tmp/b.cc" +%Y)" = 2000 ] || fail "unchanged commit rewrote the file"
echo two > "$tmp/repo/file"
got="$(commit_of "$tmp/repo" "$tmp/b.cc")"
[ "$got" = "${head:0:12}-dirty" ] || fail "expected ${head:0:12}-dirty, got $got"
# An untracked file is not a change to what was built from the commit.
git -C "$tmp/repo" checkout -q file
touch "$tmp/repo/untracked"
[ "$(commit_of "$tmp/repo" "$tmp/b.cc")" = "${head:0:12}" ] || fail "untracked file made it dirty"

# A tarball unpacked inside another repository is not that repository.
mkdir "$tmp/repo/unpacked"
[ "$(commit_of "$tmp/repo/unpacked" "$tmp/c.cc")" = unknown ] || fail "inner tree took the outer commit"

# A packager's override, sanitised for a C++ string literal.
got="$(FEDMI_GIT_COMMIT='v1.2 "x"' commit_of "$tmp/tarball" "$tmp/d.cc")"
[ "$got" = "v1.2__x_" ] || fail "expected v1.2__x_, got $got"
echo "PASS"
