#!/usr/bin/env bash
# Prints, one per line, the Debian packages that hold the shared libraries
# the given binaries link directly (their ELF NEEDED entries), plus OpenBLAS
# (LibTorch reaches the BLAS through libblas.so.3, not a NEEDED entry; see
# install-deps.sh). apt pulls in the rest. The container image's runtime stage
# installs exactly these, so it carries no compiler and no -dev package.
#   scripts/runtime-packages.sh build/bin/fedmi-coordinator build/bin/fedmi-client build/bin/fedmi
# Runs where the binaries were built (it asks dpkg which package owns each
# library), so the names fit that Debian release.
set -euo pipefail

if [ $# -eq 0 ] || [ "$1" = "--help" ] || [ "$1" = "-h" ]; then
  echo "usage: scripts/runtime-packages.sh BINARY..." >&2
  exit 2
fi
for tool in readelf ldd dpkg-query; do
  if ! command -v "$tool" >/dev/null; then
    echo "runtime-packages: $tool is missing (binutils, libc-bin, dpkg)" >&2
    exit 1
  fi
done

# Every library file the binaries link directly, resolved as the loader
# would (ldd).
declare -A paths=()
for binary in "$@"; do
  [ -f "$binary" ] || { echo "runtime-packages: no such file: $binary" >&2; exit 1; }
  declare -A resolved=()
  while read -r name _ path _; do
    [ -n "${path:-}" ] && [ "${path:0:1}" = "/" ] && resolved[$name]="$path"
  done < <(ldd "$binary")
  while read -r needed; do
    # The loader itself belongs to libc6, which every Debian image has.
    case "$needed" in ld-linux*) continue ;; esac
    path="${resolved[$needed]:-}"
    if [ -z "$path" ]; then
      echo "runtime-packages: $binary needs $needed, which the loader cannot find" >&2
      exit 1
    fi
    paths[$path]=1
  done < <(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p')
  unset resolved
done

# One dpkg-query for all of them (each call reads every file list). Debian
# 12 registers a library under /lib or /usr/lib (merged /usr), so each file
# is asked for in both spellings and resolved.
queries=()
for path in "${!paths[@]}"; do
  queries+=("$path" "/usr${path#/usr}" "${path#/usr}" "$(readlink -f "$path")")
done
declare -A owned=() packages=([libopenblas0-serial]=1)
while IFS= read -r line; do
  case "$line" in diversion*) continue ;; esac
  pkg="${line%%: *}"
  file="${line#*: }"
  packages[${pkg%%:*}]=1
  owned[$file]=1
done < <(dpkg-query -S "${queries[@]}" 2>/dev/null || true)
for path in "${!paths[@]}"; do
  if [ -z "${owned[$path]:-}${owned[/usr${path#/usr}]:-}${owned[${path#/usr}]:-}${owned[$(readlink -f "$path")]:-}" ]; then
    echo "runtime-packages: no Debian package owns $path" >&2
    exit 1
  fi
done
printf '%s\n' "${!packages[@]}" | sort
