#!/usr/bin/env bash
# Multi-host test: a coordinator, three sites and an administrator, each in
# its own Linux network namespace with its own address on a private bridge
# (10.231.0.0/24, inside the test's namespaces only), each holding only its
# own kit from `fedmi provision`. Proves, over mutual TLS:
#   1. a full run to the coordinator's provisioned name (resolved through the
#      namespace's own /etc/hosts), then a second to its provisioned IP;
#   2. a site whose namespace drops every inbound connection still trains,
#      because sites only dial out;
#   3. the admin's TLS check refuses an address of the coordinator that is not
#      in its certificate, and an unresolvable name fails naming the cause;
#   4. `localhost` works where /etc/hosts lacks it and there is no DNS.
# Exit codes: 0 passed, 1 failed, 2 usage error, 77 skipped (the machine does
# not allow network namespaces, or a tool or the data is missing).
set -euo pipefail

readonly kSkip=77
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${FEDMI_BUILD_DIR:-$root/build}/bin"
data=""
keep=0

usage() {
  cat <<'EOF'
Usage: scripts/multihost-test.sh [--bin DIR] [--data FILE] [--keep] [-h|--help]

Runs a federation across Linux network namespaces: coordinator, site-1..3 and
admin on separate addresses of a private bridge (10.231.0.0/24), mutual TLS
with kits from `fedmi provision`, each party seeing only its own kit. Two runs
(2 rounds, 1 local epoch, cnn): one to the coordinator's provisioned name, one
to its IP; site-3's namespace drops all inbound connections. Needs root (or
CAP_NET_ADMIN and CAP_SYS_ADMIN), iproute2, iptables or nft, python3 and jq.

Options:
  --bin DIR    fedmi, fedmi-coordinator and fedmi-client (default:
               $FEDMI_BUILD_DIR/bin, else build/bin)
  --data FILE  a MedMNIST .npz (default: $FEDMI_DATA, else
               ../shared/data/pneumoniamnist.npz next to the checkout)
  --keep       keep the work directory (kits, logs, state) after a pass
  -h, --help   this text

Exit codes: 0 passed, 1 failed, 2 usage error, 77 skipped (no network
namespaces here, or a tool or the data is missing; the reason is printed).
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin_dir="${2:?--bin needs a directory}"; shift 2 ;;
    --data) data="${2:?--data needs a file}"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "multihost: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

started=$(date +%s)
say() { echo "multihost: [$(($(date +%s) - started))s] $*"; }
skip() { echo "multihost: skipped: $*"; exit "$kSkip"; }
fail() { echo "multihost: FAILED: $*" >&2; exit 1; }

# --- Preconditions: what is missing skips, what is broken fails. ----------
[ "$(uname -s)" = Linux ] || skip "network namespaces need Linux"
command -v ip > /dev/null || skip "the 'ip' command (iproute2) is not installed"
command -v unshare > /dev/null || skip "the 'unshare' command (util-linux) is not installed"
command -v jq > /dev/null || skip "jq is not installed (scripts/install-deps.sh installs it)"
# Debian's own python3 first: a version manager's shim costs a second a start.
python3=/usr/bin/python3
[ -x "$python3" ] || python3=$(command -v python3) ||
  skip "python3 is not installed (the inbound-connection probe)"
if command -v iptables > /dev/null; then
  firewall=iptables
elif command -v nft > /dev/null; then
  firewall=nft
else
  skip "neither iptables nor nft is installed (scripts/install-deps.sh installs iptables)"
fi
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root (or CAP_NET_ADMIN and CAP_SYS_ADMIN); run with sudo"
for b in fedmi fedmi-coordinator fedmi-client; do
  [ -x "$bin_dir/$b" ] || fail "$bin_dir/$b not found; build first (scripts/build.sh) or pass --bin"
done
bin_dir="$(cd "$bin_dir" && pwd)"
if [ -z "$data" ]; then
  for candidate in "${FEDMI_DATA:-}" "$root/../shared/data/pneumoniamnist.npz"; do
    if [ -n "$candidate" ] && [ -f "$candidate" ]; then data="$candidate"; break; fi
  done
  [ -n "$data" ] || skip "PneumoniaMNIST not found (set FEDMI_DATA or pass --data; see README.md)"
fi
[ -f "$data" ] || fail "--data $data: no such file"

# --- Names. The PID keeps concurrent runs apart. ---------------------------
readonly tag="fmh$$"
readonly net=10.231.0
readonly coordinator_name=coord.fedmi.test
readonly coordinator_ip=$net.1
readonly unlisted_ip=$net.2 # also the coordinator's, but not in its certificate
readonly port=7000
readonly parties=(coordinator site-1 site-2 site-3 admin)
declare -A ip_of=([coordinator]=$coordinator_ip [site-1]=$net.11 [site-2]=$net.12
  [site-3]=$net.13 [admin]=$net.20)
ns_of() { echo "$tag-$1"; }
readonly switch_ns="$tag-switch"
readonly newcomer_ns="$tag-newcomer"

work="$(mktemp -d "${TMPDIR:-/tmp}/fedmi-multihost.XXXXXX")"
hosts_dir="$work/hosts" # one folder per party: all it holds
stash_dir="$work/stash" # mount points used while hiding the other parties
logs="$work/logs"
mkdir -p "$hosts_dir" "$stash_dir" "$logs"
namespaces=()
made_etc_netns=0
passed=0

# Sends signal $1 to every process in network namespace $2.
signal_ns() {
  ip netns pids "$2" 2> /dev/null | xargs -r kill -s "$1" 2> /dev/null || true
}

# Namespaces of an earlier run killed before its trap ran (SIGKILL, e.g. a
# ctest timeout): their PID is gone, so nothing else owns them.
for stale in $(ip netns list 2> /dev/null | awk '{print $1}' | grep -E '^fmh[0-9]+-' || true); do
  owner=${stale#fmh}
  owner=${owner%%-*}
  kill -0 "$owner" 2> /dev/null && continue
  signal_ns KILL "$stale"
  ip netns del "$stale" 2> /dev/null && echo "multihost: removed namespace $stale of a dead run"
  rm -rf "/etc/netns/$stale"
done

# Every wait is bounded by this, well inside ctest's TIMEOUT of 600 s.
readonly budget_s=420
check_budget() {
  [ $(($(date +%s) - started)) -lt "$budget_s" ] || fail "over the ${budget_s} s budget while $1"
}

cleanup() {
  local code=$?
  set +e
  for ns in "${namespaces[@]}"; do signal_ns TERM "$ns"; done
  sleep 0.5
  for ns in "${namespaces[@]}"; do
    signal_ns KILL "$ns"
    ip netns del "$ns" 2> /dev/null
    rm -rf "/etc/netns/$ns"
  done
  [ "$made_etc_netns" = 1 ] && rmdir /etc/netns 2> /dev/null
  if { [ "$passed" = 1 ] && [ "$keep" = 0 ]; } || [ "$code" = "$kSkip" ]; then
    rm -rf "$work"
  else
    if [ "$passed" = 0 ]; then
      for log in "$logs"/*.log; do
        [ -f "$log" ] || continue
        echo "--- last lines of $log" >&2
        tail -n 15 "$log" >&2
      done
    fi
    echo "multihost: work directory kept: $work" >&2
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'echo "multihost: FAILED: interrupted" >&2; exit 1' INT TERM

# --- Network: a bridge in its own namespace, one veth per party. ----------
add_ns() {
  local ns=$1
  if ! err=$(ip netns add "$ns" 2>&1); then
    [ ${#namespaces[@]} -eq 0 ] && skip "'ip netns add' failed here: $err"
    fail "ip netns add $ns: $err"
  fi
  namespaces+=("$ns")
  ip -n "$ns" link set lo up
}

# The namespace's own /etc/hosts and resolv.conf (ip netns exec bind-mounts
# /etc/netns/NS/* over /etc/*): the coordinator's name and nothing else, no
# `localhost`, and no name server, so nothing outside the test is asked.
write_hosts() {
  local ns=$1 with_name=$2
  {
    echo "# fedmi multi-host test ($ns); no localhost line on purpose"
    if [ "$with_name" = 1 ]; then echo "$coordinator_ip $coordinator_name"; fi
  } > "/etc/netns/$ns/hosts"
}

[ -d /etc/netns ] || made_etc_netns=1
add_ns "$switch_ns"
ip -n "$switch_ns" link add br0 type bridge || skip "the kernel refused a bridge"
ip -n "$switch_ns" link set br0 up
for party in "${parties[@]}"; do
  ns=$(ns_of "$party")
  add_ns "$ns"
  ip -n "$switch_ns" link add "v-$party" type veth peer name eth0 netns "$ns" ||
    skip "the kernel refused a veth pair"
  ip -n "$switch_ns" link set "v-$party" master br0 up
  ip -n "$ns" addr add "${ip_of[$party]}/24" dev eth0
  ip -n "$ns" link set eth0 up
  mkdir -p "/etc/netns/$ns"
  write_hosts "$ns" 1
  : > "/etc/netns/$ns/resolv.conf"
done
# The newcomer's machine: a namespace with loopback only.
add_ns "$newcomer_ns"
mkdir -p "/etc/netns/$newcomer_ns"
write_hosts "$newcomer_ns" 0
: > "/etc/netns/$newcomer_ns/resolv.conf"
ip -n "$(ns_of coordinator)" addr add "$unlisted_ip/24" dev eth0

say "network: bridge $net.0/24 in namespace $switch_ns; coordinator $coordinator_ip," \
  "site-1..3 ${ip_of[site-1]}-13, admin ${ip_of[admin]}, each in its own $tag-* namespace"

# site-3 accepts no inbound connection from the network: NEW ones are
# dropped, replies to its own outbound ones pass (loopback stays open, as on
# any host, for the resolver's queries).
site3_ns=$(ns_of site-3)
if [ "$firewall" = iptables ]; then
  if ! { ip netns exec "$site3_ns" iptables -A INPUT -i lo -j ACCEPT &&
    ip netns exec "$site3_ns" iptables -A INPUT -m conntrack --ctstate NEW -j DROP; }; then
    skip "iptables cannot filter inside a network namespace here"
  fi
elif ! { ip netns exec "$site3_ns" nft add table inet fedmi_test &&
  ip netns exec "$site3_ns" nft add chain inet fedmi_test input \
    '{ type filter hook input priority 0; policy accept; }' &&
  ip netns exec "$site3_ns" nft add rule inet fedmi_test input iif lo accept &&
  ip netns exec "$site3_ns" nft add rule inet fedmi_test input ct state new drop; }; then
  skip "nft cannot filter inside a network namespace here"
fi

# Listeners for the inbound probe, started now to be ready when it runs.
probe_port=7999
for site in site-1 site-3; do
  ip netns exec "$(ns_of "$site")" "$python3" -c "
import socket
s = socket.socket(); s.bind(('0.0.0.0', $probe_port)); s.listen(8)
while True: s.accept()[0].close()" > "$logs/probe-$site.log" 2>&1 &
done

# --- Provisioning, offline, in a folder no party sees. --------------------
provision="$hosts_dir/provisioning"
fedmi() { "$bin_dir/fedmi" "$@"; }
say "provisioning project 'multihost': coordinator $coordinator_name + $coordinator_ip, 3 sites, admin"
fedmi data split --input "$data" --sites 3 --partition iid --seed 1 --out "$work/split" \
  > "$logs/split.log" 2>&1 &
split_pid=$!
fedmi provision init --project multihost --out "$provision" > "$logs/provision.log"
coordinator_json=$(fedmi provision add-coordinator --dir "$provision" --host "$coordinator_name" \
  --ip "$coordinator_ip" --port "$port" --json | tail -n 1)
jq -e --arg n "$coordinator_name" '.dns_names | index($n)' <<< "$coordinator_json" > /dev/null ||
  fail "the coordinator's certificate lacks the DNS name $coordinator_name: $coordinator_json"
jq -e --arg i "$coordinator_ip" '.ip_addresses | index($i)' <<< "$coordinator_json" > /dev/null ||
  fail "the coordinator's certificate lacks the IP address $coordinator_ip: $coordinator_json"
jq -e --arg i "$unlisted_ip" '.ip_addresses | index($i) | not' <<< "$coordinator_json" > /dev/null ||
  fail "the coordinator's certificate names $unlisted_ip, which the test needs unlisted"
say "  certificate names: $(jq -r '(.dns_names + .ip_addresses) | join(", ")' <<< "$coordinator_json")"
for site in site-1 site-2 site-3; do
  fedmi provision add-site "$site" --dir "$provision" >> "$logs/provision.log"
done
fedmi provision add-admin admin --dir "$provision" >> "$logs/provision.log"
wait "$split_pid" || fail "fedmi data split failed (see $logs/split.log)"

# Each party's folder is a copy of its kit; a site's also holds its shard.
for party in "${parties[@]}"; do
  cp -a "$provision/kits/$party" "$hosts_dir/$party"
  mkdir -p "$stash_dir/$party"
done
for site in site-1 site-2 site-3; do cp "$work/split/$site.npz" "$hosts_dir/$site/data.npz"; done

# Runs a command as PARTY: in its network namespace, and in a mount
# namespace where $hosts_dir holds its own folder only (a tmpfs hides the
# others and the provisioning folder with the CA key), from that folder.
as_party() {
  local party=$1
  shift
  # shellcheck disable=SC2016 # the inner script expands its own arguments
  $exec_prefix ip netns exec "$(ns_of "$party")" unshare --mount --propagation private \
    bash -c 'set -e; hosts=$1 stash=$2 party=$3; shift 3
      mount --bind "$hosts/$party" "$stash/$party"
      mount -t tmpfs -o size=1m,mode=0755 fedmi-hidden "$hosts"
      mkdir "$hosts/$party"
      mount --move "$stash/$party" "$hosts/$party"
      cd "$hosts/$party"
      exec "$@"' _ "$hosts_dir" "$stash_dir" "$party" "$@"
}
exec_prefix="" # `exec` in spawn_party, so that $! is the party's own process
spawn_party() { exec_prefix="exec" as_party "$@"; }
seen=$(as_party site-1 ls -A "$hosts_dir" | tr '\n' ' ')
[ "$seen" = "site-1 " ] || fail "site-1 sees more than its own folder in $hosts_dir: $seen"
say "  each party sees only its own folder: site-1's view of $hosts_dir is '${seen% }'"
admin() { as_party admin "$bin_dir/fedmi" --config "$hosts_dir/admin/fedmi.toml" "$@"; }

# --- The dial-out-only site really refuses inbound connections. -----------
reachable() {
  ip netns exec "$(ns_of coordinator)" timeout 3 bash -c "exec 3<> /dev/tcp/$1/$probe_port" \
    2> /dev/null
}
for _ in $(seq 50); do reachable "${ip_of[site-1]}" && break; sleep 0.1; done
reachable "${ip_of[site-1]}" || fail "the probe cannot reach site-1's listener (control)"
if reachable "${ip_of[site-3]}"; then
  fail "site-3 accepted an inbound connection despite its $firewall rule"
fi
for site in site-1 site-3; do signal_ns TERM "$(ns_of "$site")"; done
say "inbound: site-1 accepts connections, site-3 drops them ($firewall, ct state new)"

# --- Coordinator and sites. ------------------------------------------------
say "starting coordinator on $coordinator_ip:$port (mutual TLS)"
spawn_party coordinator "$bin_dir/fedmi-coordinator" --config coordinator.toml \
  --port-file port > "$logs/coordinator.log" 2>&1 &
for _ in $(seq 300); do [ -s "$hosts_dir/coordinator/port" ] && break; sleep 0.1; done
[ -s "$hosts_dir/coordinator/port" ] || fail "the coordinator did not start"

declare -A site_pid
start_sites() { # extra fedmi-client flags
  for site in site-1 site-2 site-3; do
    spawn_party "$site" "$bin_dir/fedmi-client" --config client.toml --data data.npz \
      --threads 1 --give-up-after 120 "$@" >> "$logs/$site.log" 2>&1 &
    site_pid[$site]=$!
  done
}
stop_sites() {
  for site in site-1 site-2 site-3; do kill "${site_pid[$site]}" 2> /dev/null || true; done
  for site in site-1 site-2 site-3; do wait "${site_pid[$site]}" 2> /dev/null || true; done
}

# Waits until the admin sees all three sites connected.
wait_for_sites() { # extra global flags for fedmi
  local listed="" connected
  for _ in $(seq 120); do
    check_budget "waiting for the sites to connect"
    listed=$(admin "$@" site list --json 2> /dev/null | tail -n 1) || listed=""
    connected=$(jq -r '[.sites[]? | select(.connected)] | length' <<< "$listed" 2> /dev/null) ||
      connected=0
    [ "$connected" = 3 ] && return 0
    sleep 0.5
  done
  fail "the sites did not all connect; last 'site list --json': ${listed:-nothing}"
}

# Starts a run from the admin's namespace and polls `run status --json`.
federate() { # label, extra global flags for fedmi
  local label=$1
  shift
  local start_json run_id status_json state=""
  start_json=$(admin "$@" run start --model cnn --rounds 2 --local-epochs 1 --min-sites 3 \
    --batch-size 64 --lr 0.001 --seed 1 --json | tail -n 1) || fail "run start ($label) failed"
  run_id=$(jq -r '.run_id' <<< "$start_json")
  say "  run $run_id started ($label)"
  for _ in $(seq 300); do
    check_budget "waiting for run $run_id ($label)"
    status_json=$(admin "$@" run status "$run_id" --json | tail -n 1) ||
      fail "run status $run_id ($label) failed"
    state=$(jq -r '.state' <<< "$status_json")
    case "$state" in done | failed | aborted) break ;; esac
    sleep 1
  done
  [ "$state" = "done" ] || fail "run $run_id ($label) ended '$state': $status_json"
  local completed auc
  completed=$(jq -r '.completed_rounds' <<< "$status_json")
  [ "$completed" = 2 ] || fail "run $run_id ($label) completed $completed rounds, not 2"
  # Every site, the one that accepts no inbound connection included, trained
  # in every round.
  for site in site-1 site-2 site-3; do
    trained=$(jq --arg s "$site" '[.rounds[].sites[] | select(.site == $s and .train != null)]
      | length' <<< "$status_json")
    [ "$trained" = 2 ] || fail "run $run_id ($label): $site trained in $trained of 2 rounds"
  done
  auc=$(jq -r '[.rounds[]?.eval.auc // empty] | last // "n/a" | tostring | .[0:5]' \
    <<< "$status_json")
  say "  run $run_id done: 2/2 rounds, last validation AUC $auc"
}

say "run A: every party dials the provisioned name $coordinator_name"
start_sites
wait_for_sites
say "  3 sites connected, as the admin sees them over mutual TLS"
federate "by name"
stop_sites

# Run B: the name resolves nowhere now, so only the IP can work.
for party in "${parties[@]}"; do write_hosts "$(ns_of "$party")" 0; done
say "run B: $coordinator_name removed from every hosts file; every party dials $coordinator_ip"
start_sites --coordinator "$coordinator_ip:$port" # they load their data meanwhile
if out=$(admin site list 2>&1); then
  fail "'site list' reached $coordinator_name with no way to resolve it: $out"
fi
say "  by name now fails: $(tail -n 1 <<< "$out")"
if out=$(admin --coordinator "$unlisted_ip:$port" site list 2>&1); then
  fail "the admin accepted the coordinator at $unlisted_ip, which its certificate does not name"
fi
say "  $unlisted_ip (not in the certificate) refused: $(tail -n 1 <<< "$out")"
wait_for_sites --coordinator "$coordinator_ip:$port"
federate "by IP" --coordinator "$coordinator_ip:$port"
stop_sites

# --- localhost without /etc/hosts or DNS (a newcomer's minimal system). ---
say "newcomer: coordinator and admin on one host whose /etc/hosts lacks localhost, no DNS"
newcomer="$work/newcomer"
mkdir -p "$newcomer"
cp -a "$provision/kits/coordinator" "$newcomer/coordinator"
cp -a "$provision/kits/admin" "$newcomer/admin"
rm -rf "$newcomer/coordinator/state"
ip netns exec "$newcomer_ns" "$bin_dir/fedmi-coordinator" \
  --config "$newcomer/coordinator/coordinator.toml" --listen "localhost:$port" \
  --port-file "$newcomer/port" > "$logs/newcomer-coordinator.log" 2>&1 &
for _ in $(seq 300); do [ -s "$newcomer/port" ] && break; sleep 0.1; done
[ -s "$newcomer/port" ] ||
  fail "fedmi-coordinator --listen localhost:$port failed without localhost in /etc/hosts"
out=$(ip netns exec "$newcomer_ns" "$bin_dir/fedmi" --config "$newcomer/admin/fedmi.toml" \
  --coordinator "localhost:$port" site list 2>&1) ||
  fail "fedmi --coordinator localhost:$port failed without localhost in /etc/hosts: $out"
say "  listen on and dial localhost:$port over mutual TLS: ok ($(tail -n 1 <<< "$out"))"

passed=1
say "PASSED in $(($(date +%s) - started)) s"
