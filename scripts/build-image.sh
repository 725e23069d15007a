#!/usr/bin/env bash
# Builds the fedmi container image (./Dockerfile) with no container registry:
# the Debian base images the Dockerfile names are made here with debootstrap
# from a Debian mirror and imported under those tags. See --help.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat <<'EOF'
Usage: scripts/build-image.sh [OPTIONS]

Builds the fedmi image (fedmi-coordinator, fedmi-client, fedmi; user fedmi,
uid 10001) from ./Dockerfile, offline as far as registries go:

 1. base images: debian:bookworm and debian:bookworm-slim are used as they
    are if the engine has them; otherwise a minbase Debian 12 root file system
    is made with debootstrap (needs root and a Debian mirror), kept as a tar in
    the cache folder, and imported under those two tags.
 2. the image: the Dockerfile's build stage compiles with cmake and ccache
    (about an hour on 2 cores with an empty cache, minutes with a warm one),
    or, with --from-build, the binaries of a host build are packed instead.
 3. smoke check: `--help` of all three binaries and the user inside the image.

Options:
  --from-build DIR   pack DIR/bin/{fedmi-coordinator,fedmi-client,fedmi} (debug
                     info stripped) instead of compiling: seconds, not an hour.
                     DIR must be a build of this checkout on Debian 12.
  --tag TAG          image tag (default: fedmi:latest)
  --engine NAME      podman or docker (default: podman if installed)
  --build-type TYPE  CMAKE_BUILD_TYPE of the build stage (default: Release)
  --jobs N           compile jobs in the build stage (default: nproc)
  --ccache-dir DIR   podman: mount this host ccache folder into the build stage
                     instead of the engine's cache mount (it then also holds
                     what host builds cached: with --build-type RelWithDebInfo,
                     scripts/build.sh's type, most objects are hits)
  --cache-dir DIR    where base root file systems are kept
                     (default: ${XDG_CACHE_HOME:-~/.cache}/fedmi-image)
  --mirror URL       Debian mirror for debootstrap (default: http://deb.debian.org/debian)
  --refresh-base     make and import the base images again even if present
  --no-smoke         skip the smoke check
  -h, --help         this text

Examples:
  scripts/build.sh && scripts/build-image.sh --from-build build
  scripts/build-image.sh --tag registry.example.org/fedmi:0.1.0
  podman run --rm fedmi:latest fedmi-coordinator --help
EOF
}

log() { echo "build-image: $*"; }
die() { echo "build-image: error: $*" >&2; exit 1; }

tag="fedmi:latest"
engine=""
from_build=""
build_type="Release"
jobs="$(nproc)"
ccache_dir=""
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/fedmi-image"
mirror="http://deb.debian.org/debian"
refresh_base=0
smoke=1
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --from-build) from_build="${2:?--from-build needs a folder}"; shift 2 ;;
    --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
    --engine) engine="${2:?--engine needs podman or docker}"; shift 2 ;;
    --build-type) build_type="${2:?--build-type needs a value}"; shift 2 ;;
    --jobs) jobs="${2:?--jobs needs a number}"; shift 2 ;;
    --ccache-dir) ccache_dir="${2:?--ccache-dir needs a folder}"; shift 2 ;;
    --cache-dir) cache_dir="${2:?--cache-dir needs a folder}"; shift 2 ;;
    --mirror) mirror="${2:?--mirror needs a URL}"; shift 2 ;;
    --refresh-base) refresh_base=1; shift ;;
    --no-smoke) smoke=0; shift ;;
    *) echo "build-image: unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then engine=podman
  elif command -v docker >/dev/null; then engine=docker
  else die "neither podman nor docker is installed (apt-get install podman)"; fi
fi
case "$engine" in
  podman | docker) command -v "$engine" >/dev/null || die "$engine is not installed" ;;
  *) die "--engine must be podman or docker, not '$engine'" ;;
esac
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive number, not '$jobs'"
if [ -n "$ccache_dir" ] && [ "$engine" != podman ]; then
  die "--ccache-dir needs podman (docker build cannot mount host folders; its cache mount persists on its own)"
fi

image_exists() {
  if [ "$engine" = podman ]; then podman image exists "$1"
  else docker image inspect "$1" >/dev/null 2>&1; fi
}

# ---- 1. base images ------------------------------------------------------
# The tar of a minbase bookworm; the slim variant drops documentation, man
# pages and translations and keeps dpkg from installing them again, as
# Debian's own -slim images do.
make_rootfs_tars() {
  command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
  [ "$(id -u)" -eq 0 ] || die "debootstrap needs root: run as root, or load debian:bookworm and debian:bookworm-slim into $engine yourself"
  mkdir -p "$cache_dir/debs"
  local rootfs="$cache_dir/rootfs.partial"
  rm -rf "$rootfs"
  log "debootstrap: minbase Debian 12 from $mirror into $rootfs (a few minutes; packages cached in $cache_dir/debs)"
  if ! debootstrap --variant=minbase --cache-dir="$cache_dir/debs" bookworm "$rootfs" "$mirror" \
      >"$cache_dir/debootstrap.log" 2>&1; then
    tail -n 20 "$cache_dir/debootstrap.log" >&2
    die "debootstrap failed (full log: $cache_dir/debootstrap.log)"
  fi
  local security="${mirror%/debian}/debian-security"
  [ "$security" = "$mirror/debian-security" ] && security="http://deb.debian.org/debian-security"
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
  # The engine provides these per container.
  rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/*
  log "packing $cache_dir/bookworm.tar"
  tar --numeric-owner --xattrs -C "$rootfs" -cf "$cache_dir/bookworm.tar.partial" .
  mv "$cache_dir/bookworm.tar.partial" "$cache_dir/bookworm.tar"
  rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/*
  mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
# No documentation in the slim image (as Debian's -slim images).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
  log "packing $cache_dir/bookworm-slim.tar"
  tar --numeric-owner --xattrs -C "$rootfs" -cf "$cache_dir/bookworm-slim.tar.partial" .
  mv "$cache_dir/bookworm-slim.tar.partial" "$cache_dir/bookworm-slim.tar"
  rm -rf "$rootfs"
}

import_base() {
  local tar="$1" name="$2"
  log "importing $tar as $name"
  local quiet=()
  [ "$engine" = podman ] && quiet=(--quiet)
  "$engine" import "${quiet[@]}" --change 'CMD ["/bin/bash"]' "$tar" "$name" >/dev/null
}

ensure_bases() {
  local need=0 name
  for name in debian:bookworm debian:bookworm-slim; do
    if [ "$refresh_base" -eq 1 ] || ! image_exists "$name"; then need=1; fi
  done
  if [ "$need" -eq 0 ]; then
    log "[1/3] base images debian:bookworm and debian:bookworm-slim present (--refresh-base remakes them)"
    return
  fi
  log "[1/3] base images"
  if [ "$refresh_base" -eq 1 ] || [ ! -f "$cache_dir/bookworm.tar" ] ||
      [ ! -f "$cache_dir/bookworm-slim.tar" ]; then
    make_rootfs_tars
  else
    log "using the cached root file systems in $cache_dir"
  fi
  # docker.io/library/ is how both engines spell the short name, so the
  # Dockerfile's FROM lines find the imports without a registry.
  import_base "$cache_dir/bookworm.tar" docker.io/library/debian:bookworm
  import_base "$cache_dir/bookworm-slim.tar" docker.io/library/debian:bookworm-slim
}

# ---- how containers can run on this host -----------------------------------
# Some hosts (containers within containers, CI sandboxes) refuse what
# podman's defaults ask for: raising RLIMIT_NOFILE/NPROC past the host's hard
# limits without CAP_SYS_RESOURCE ("setrlimit ... Operation not permitted"),
# or crun on a cgroup v1 host whose cgroup v2 hierarchy holds controllers
# ("cgroups in hybrid mode not supported"), which runc accepts. Probe the
# plainest setting first and keep the first that runs a container.
engine_flags=()
run_flags=()
probe_runtime() {
  local probe_image="docker.io/library/debian:bookworm-slim"
  if "$engine" run --rm "$probe_image" true >/dev/null 2>"$cache_dir/probe.log"; then
    return 0
  fi
  log "a plain '$engine run' fails here: $(grep -m1 -i error "$cache_dir/probe.log" || head -n1 "$cache_dir/probe.log")"
  [ "$engine" = podman ] || die "docker cannot run containers here (see above)"
  local nofile nproc
  nofile="$(ulimit -Hn)"; [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
  nproc=8192
  local limits=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
  local runtimes=("")
  command -v runc >/dev/null && runtimes+=(runc)
  local runtime
  for runtime in "${runtimes[@]}"; do
    local flags=()
    [ -n "$runtime" ] && flags=(--runtime "$runtime")
    if podman "${flags[@]}" run --rm "${limits[@]}" "$probe_image" true >/dev/null \
        2>"$cache_dir/probe.log"; then
      engine_flags=("${flags[@]}")
      run_flags=("${limits[@]}")
      log "containers run with: podman ${engine_flags[*]} run ${run_flags[*]}"
      return 0
    fi
    log "  not with runtime '${runtime:-default}' and lowered limits: $(grep -m1 -i error "$cache_dir/probe.log" || true)"
  done
  return 1
}

# ---- 2. the image ----------------------------------------------------------
mkdir -p "$cache_dir"
ensure_bases
can_run=1
if ! probe_runtime; then
  can_run=0
  if [ "$engine" = podman ]; then
    log "no container runtime works here (installing runc may help: apt-get install runc);"
    log "building with --isolation chroot, which needs none; the smoke check cannot run"
  fi
fi
build_flags=(--pull=never -t "$tag" -f "$root/Dockerfile")
[ "$engine" = docker ] && build_flags=(-t "$tag" -f "$root/Dockerfile")
if [ "$engine" = podman ]; then
  if [ "$can_run" -eq 1 ]; then build_flags+=("${run_flags[@]}")
  else build_flags+=(--isolation chroot); fi
fi

staged="$root/.image-prebuilt"
cleanup() { rm -rf "$staged"; }
trap cleanup EXIT
if [ -n "$from_build" ]; then
  bindir="$from_build/bin"
  [ -d "$bindir" ] || bindir="$from_build"
  for b in fedmi-coordinator fedmi-client fedmi; do
    [ -x "$bindir/$b" ] || die "--from-build: $bindir/$b is missing (build it: scripts/build.sh --target $b)"
  done
  if ! grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
    die "--from-build packs host binaries into a Debian 12 image; this host is not Debian 12"
  fi
  log "[2/3] packing the binaries of $bindir (debug info stripped) into $tag"
  rm -rf "$staged"
  mkdir -p "$staged/bin"
  for b in fedmi-coordinator fedmi-client fedmi; do
    strip --strip-debug -o "$staged/bin/$b" "$bindir/$b"
  done
  "$root/scripts/runtime-packages.sh" "$staged"/bin/* >"$staged/runtime-packages.txt"
  log "runtime packages: $(tr '\n' ' ' <"$staged/runtime-packages.txt")"
  build_flags+=(--build-arg BINARIES=prebuilt --target runtime)
else
  log "[2/3] compiling fedmi in the build stage ($build_type, $jobs jobs) and making $tag"
  # The build context leaves .git out (.dockerignore): the commit that
  # `--version` reports comes in as an argument (cmake/BuildCommit.cmake).
  commit="unknown"
  if head=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null); then
    commit="$head"
    [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ] && commit="$commit-dirty"
  fi
  build_flags+=(--build-arg BINARIES=build --build-arg "BUILD_TYPE=$build_type"
    --build-arg "JOBS=$jobs" --build-arg "FEDMI_GIT_COMMIT=$commit")
  if [ -n "$ccache_dir" ]; then
    mkdir -p "$ccache_dir"
    build_flags+=(-v "$(cd "$ccache_dir" && pwd):/ccache-host:z" --build-arg CCACHE_DIR=/ccache-host)
  fi
fi
[ "$engine" = docker ] && export DOCKER_BUILDKIT=1
start=$(date +%s)
"$engine" "${engine_flags[@]}" build "${build_flags[@]}" "$root"
log "image $tag built in $(($(date +%s) - start)) s"

# ---- 3. smoke check --------------------------------------------------------
if [ "$smoke" -eq 0 ] || [ "$can_run" -eq 0 ]; then
  [ "$smoke" -eq 1 ] && log "[3/3] smoke check skipped: containers cannot run here"
  exit 0
fi
log "[3/3] smoke check"
for b in fedmi-coordinator fedmi-client fedmi; do
  if ! out="$("$engine" "${engine_flags[@]}" run --rm "${run_flags[@]}" "$tag" "$b" --help 2>&1)" ||
      ! grep -q '^Usage: ' <<<"$out"; then
    echo "$out" >&2
    die "'$b --help' failed in $tag"
  fi
  log "  $b --help: $(head -n1 <<<"$out")"
done
user="$("$engine" "${engine_flags[@]}" run --rm "${run_flags[@]}" "$tag" id -un)"
[ "$user" = fedmi ] || die "the image runs as '$user', not fedmi"
log "  runs as user $user; size $("$engine" image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
if [ ${#engine_flags[@]} -gt 0 ] || [ ${#run_flags[@]} -gt 0 ]; then
  log "on this host run it as: $engine ${engine_flags[*]} run ${run_flags[*]} $tag ..."
fi
