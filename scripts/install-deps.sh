#!/usr/bin/env bash
# Installs fedmi's build and runtime dependencies from Debian's packages.
# Idempotent: packages already present are skipped, and apt is not touched
# at all when nothing is missing. Nothing is downloaded outside apt.
#   scripts/install-deps.sh               what building, testing and linting need
#   scripts/install-deps.sh --build-only  what compiling the three binaries needs
#                                         (the container image's build stage)
set -euo pipefail

mode="${1:-all}"
case "$mode" in
  all | --build-only) ;;
  *) echo "usage: scripts/install-deps.sh [--build-only]" >&2; exit 2 ;;
esac

# Compiling fedmi-coordinator, fedmi-client and fedmi needs these.
packages=(
  build-essential cmake pkg-config ccache git
  protobuf-compiler libprotobuf-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc
  libabsl-dev
  libtorch-dev
  # LibTorch calls the system BLAS (libblas.so.3) for matrix products;
  # Debian's default is the reference implementation. Installing OpenBLAS
  # (serial: LibTorch's own threads, never oversubscribed) makes it the
  # alternative in use: fully connected layers and per-example gradients
  # (DP-SGD) ran 1.4x and 2.2x faster here (bench/dp_sgd_benchmark.cc).
  libopenblas0-serial
  libssl-dev openssl
  libsqlite3-dev sqlite3
  libcli11-dev nlohmann-json3-dev libtomlplusplus-dev
  libzip-dev libstb-dev
  # the --http listeners (/metrics); Debian's build has TLS support
  libcpp-httplib-dev
  libdcmtk-dev
)
# Tests, benchmarks, lint and the deployment checks (not in the image).
dev_packages=(
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-format clang-tidy
  # promtool, the reference checker of the /metrics format (tests only)
  prometheus
  # scripts/multihost-test.sh: network namespaces, the dial-out-only site's
  # firewall, its inbound probe and the JSON it reads
  iproute2 iptables python3 jq
  # the dashboard's headless browser test (tests/integration/dashboard_browser_test.cc)
  chromium
  # deploy/ checks (scripts/check-deploy.sh): kubectl kustomize,
  # systemd-analyze verify, the compose schema, YAML parsing. PACKAGE:COMMAND
  # entries count as present when the command is (a kubectl from elsewhere
  # conflicts with Debian's package).
  kubernetes-client:kubectl systemd:systemd-analyze docker-compose python3-yaml
)
[ "$mode" = "all" ] && packages+=("${dev_packages[@]}")

missing=()
for entry in "${packages[@]}"; do
  pkg="${entry%%:*}"
  if [ "$pkg" != "$entry" ] && command -v "${entry#*:}" >/dev/null 2>&1; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
