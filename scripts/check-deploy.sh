#!/usr/bin/env bash
# Offline checks of everything under deploy/ (the ctest tests deploy_*):
#   scripts/check-deploy.sh systemd  [--bin-dir DIR]  systemd-analyze verify + security
#   scripts/check-deploy.sh k8s      [--bin-dir DIR]  kubectl kustomize + scripts/check_deploy.py
#   scripts/check-deploy.sh compose  [--bin-dir DIR]  docker-compose config (schema) + check_deploy.py
#   scripts/check-deploy.sh configs  [--bin-dir DIR]  deploy/*.toml
#   scripts/check-deploy.sh image    --bin-dir DIR    only with FEDMI_TEST_IMAGE=1: build-image.sh
#                                                     --from-build (minutes) and its smoke check
#   scripts/check-deploy.sh all      [--bin-dir DIR]  the four offline checks
# --bin-dir: the fedmi binaries (build/bin); with it every flag the units,
# manifests, compose file and configs pass is checked against the binary's
# --help. Exit 77 (ctest: skipped) when a tool the check needs is missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
what="${1:-all}"
shift || true
bin_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) bin_dir="$(cd "${2:?--bin-dir needs a folder}" && pwd)"; shift 2 ;;
    *) echo "check-deploy: unknown argument $1" >&2; exit 2 ;;
  esac
done
bin_args=()
[ -n "$bin_dir" ] && bin_args=(--bin-dir "$bin_dir")
# Debian's python3 (3.11: tomllib) with python3-yaml, not a user's own.
python=/usr/bin/python3
[ -x "$python" ] || python=python3

skip() { echo "check-deploy: SKIPPED: $*"; exit 77; }
need_python_yaml() {
  "$python" -c 'import tomllib, yaml' 2>/dev/null ||
    skip "$what needs Python 3.11 with python3-yaml (scripts/install-deps.sh)"
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

check_systemd() {
  command -v systemd-analyze >/dev/null || skip "systemd-analyze is missing (package systemd)"
  # verify needs each ExecStart binary to exist: copies of the units run
  # the real binaries of --bin-dir, or stand-ins.
  mkdir -p "$tmp/units" "$tmp/bin"
  for b in fedmi-coordinator fedmi-client; do
    if [ -n "$bin_dir" ]; then ln -s "$bin_dir/$b" "$tmp/bin/$b"
    else printf '#!/bin/sh\n' >"$tmp/bin/$b"; chmod +x "$tmp/bin/$b"; fi
  done
  for unit in "$root"/deploy/systemd/*.service; do
    sed "s|/usr/local/bin/|$tmp/bin/|" "$unit" >"$tmp/units/$(basename "$unit")"
  done
  # A template is verified as an instance.
  cp "$tmp/units/fedmi-client@.service" "$tmp/units/fedmi-client@st-marys.service"
  local units=("$tmp/units/fedmi-coordinator.service" "$tmp/units/fedmi-client@st-marys.service")
  # verify exits 0 on unknown keys and bad values, but says so: any output fails.
  local out
  out="$(cd "$tmp/units" && systemd-analyze verify --man=no "${units[@]}" 2>&1)" || true
  if [ -n "$out" ]; then
    echo "$out" >&2
    echo "check-deploy: systemd-analyze verify complained (above)" >&2
    exit 1
  fi
  # The hardening keeps the exposure score systemd computes at 2.0 or less
  # ("OK"; coordinator 1.2, client 1.4 when written).
  for unit in "${units[@]}"; do
    if ! systemd-analyze security --offline=yes --threshold=20 "$unit" >"$tmp/security.txt" 2>&1; then
      grep -E '✗|Overall' "$tmp/security.txt" >&2 || cat "$tmp/security.txt" >&2
      echo "check-deploy: $(basename "$unit") is exposed more than 2.0 (systemd-analyze security)" >&2
      exit 1
    fi
    echo "check-deploy: $(grep -o 'Overall exposure level.*' "$tmp/security.txt")"
  done
  # What the units must keep (the flags they pass are checked by verify
  # running nothing, so check them against --help here).
  for unit in "$root"/deploy/systemd/*.service; do
    for key in ProtectSystem=strict NoNewPrivileges=yes DynamicUser=yes StateDirectory= \
        ConfigurationDirectory= CapabilityBoundingSet= PrivateTmp=yes ProtectHome=yes \
        'SystemCallFilter=@system-service'; do
      grep -q "^$key" "$unit" || { echo "check-deploy: $unit lacks $key" >&2; exit 1; }
    done
    if [ -n "$bin_dir" ]; then
      local cmd
      cmd="$(sed -n '/^ExecStart=/,/[^\\]$/p' "$unit" | sed 's/^ExecStart=//; s/\\$//' | tr '\n' ' ')"
      local binary flag help
      binary="$(basename "$(awk '{print $1}' <<<"$cmd")")"
      # Read whole: `--help | grep -q` closes the pipe at the first match, and
      # a help text longer than the pipe's buffer then dies of SIGPIPE.
      help="$("$bin_dir/$binary" --help)"
      # shellcheck disable=SC2013  # words, one flag each
      for flag in $(grep -o -- '--[a-z][a-z0-9-]*' <<<"$cmd"); do
        grep -qE -- "(^|[^a-z-])$flag([^a-z-]|\$)" <<<"$help" ||
          { echo "check-deploy: $unit passes $flag, which $binary does not have" >&2; exit 1; }
      done
    fi
  done
  echo "check-deploy: systemd units ok"
}

check_k8s() {
  command -v kubectl >/dev/null || skip "kubectl is missing (package kubernetes-client)"
  need_python_yaml
  local dir
  for dir in overlays/example sim; do
    # Newer kustomize warns that bases/commonLabels are deprecated; they are
    # what Debian's kubectl 1.20 (kustomize 2.0) understands.
    if ! kubectl kustomize "$root/deploy/k8s/$dir" >"$tmp/rendered.yaml" 2>"$tmp/kustomize.err"; then
      cat "$tmp/kustomize.err" >&2
      echo "check-deploy: kubectl kustomize deploy/k8s/$dir failed" >&2
      exit 1
    fi
    "$python" "$root/scripts/check_deploy.py" k8s "${bin_args[@]}" "$tmp/rendered.yaml"
    echo "check-deploy: deploy/k8s/$dir: $(grep -c '^kind:' "$tmp/rendered.yaml") objects ok"
  done
}

check_compose() {
  command -v docker-compose >/dev/null || skip "docker-compose is missing (package docker-compose)"
  need_python_yaml
  # The schema check needs no daemon and no kit files.
  (cd "$root/deploy" && docker-compose -f compose.yaml config -q)
  "$python" "$root/scripts/check_deploy.py" compose "${bin_args[@]}" "$root/deploy/compose.yaml"
  echo "check-deploy: deploy/compose.yaml ok"
}

check_configs() {
  need_python_yaml
  "$python" "$root/scripts/check_deploy.py" configs --root "$root" "${bin_args[@]}"
  echo "check-deploy: deploy/*.toml ok"
}

check_image() {
  [ "${FEDMI_TEST_IMAGE:-0}" = 1 ] ||
    skip "the image build takes minutes: set FEDMI_TEST_IMAGE=1 to run it"
  [ -n "$bin_dir" ] || { echo "check-deploy: image needs --bin-dir" >&2; exit 2; }
  command -v podman >/dev/null || command -v docker >/dev/null || skip "neither podman nor docker"
  "$root/scripts/build-image.sh" --from-build "$bin_dir" --tag fedmi:check
}

case "$what" in
  systemd) check_systemd ;;
  k8s) check_k8s ;;
  compose) check_compose ;;
  configs) check_configs ;;
  image) check_image ;;
  all)
    # Each check in its own process, so one that skips does not stop the rest.
    status=0
    for check in configs systemd k8s compose; do
      rc=0
      "$0" "$check" "${bin_args[@]}" || rc=$?
      if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then status=1; fi
    done
    exit "$status"
    ;;
  *) echo "usage: scripts/check-deploy.sh systemd|k8s|compose|configs|image|all [--bin-dir DIR]" >&2; exit 2 ;;
esac
