#!/usr/bin/env bash
# Whole-server benchmark (test/bench/nodes.ts): kickstarts/s and DORA leases/s of real `rackboot serve` processes
# on 1 node SQLite, 1 node PostgreSQL (fsync on) and 2 nodes PostgreSQL, same run, one table. Everything runs in
# network namespaces made here: the nodes and wrk in a server namespace (its loopback for HTTP, one veth per node
# for DHCP), one perfdhcp relay per node in its own client namespace. Cleans up every process and namespace.
# Usage (root): bash test/bench/nodes.sh; env BENCH_SECONDS (10), BENCH_HOSTS (500), BENCH_CONCURRENCY (32),
# DORA_RATES ("2000 4000 8000 12000 16000 24000", total over the nodes), CONFIGS ("sqlite pg pg2"),
# RACKBOOT_CHECKOUT (another checkout to measure; default this one), BENCH_LOG_LEVEL (warn), KEEP=1 (keep logs). Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; exit 1; }
need=()
command -v perfdhcp >/dev/null || need+=(kea-admin)
command -v wrk >/dev/null || need+=(wrk)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

S=rbnodes-s C0=rbnodes-c0 C1=rbnodes-c1
W=$(mktemp -d /tmp/rbnodes-bench.XXXXXX)
chmod 755 "$W"
ORCH=
cleanup() {
  [ -n "$ORCH" ] && kill "$ORCH" 2>/dev/null && wait "$ORCH" 2>/dev/null || true
  # Whatever is still running inside our namespaces is ours (nodes, wrk, perfdhcp).
  for ns in $S $C0 $C1; do
    pids=$(ip netns pids $ns 2>/dev/null || true)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
    ip netns del $ns 2>/dev/null || true
  done
  [ -n "${KEEP:-}" ] && echo "kept $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for ns in $S $C0 $C1; do ip netns del $ns 2>/dev/null || true; ip netns add $ns; ip -n $ns link set lo up; done
# Node n answers DHCP on rbn<n>s (10.99.<n>.1); its perfdhcp relays from 10.6<8+n>.0.1 (giaddr, in 10.64.0.0/12:
# a million addresses, so the rising rates of one configuration never run the pool dry).
for n in 0 1; do
  c=$([ $n = 0 ] && echo $C0 || echo $C1)
  ip link add rbn${n}s netns $S type veth peer name rbn${n}c netns $c
  ip -n $S addr add 10.99.$n.1/24 dev rbn${n}s; ip -n $S link set rbn${n}s up
  ip -n $c addr add 10.99.$n.2/24 dev rbn${n}c; ip -n $c addr add 10.6$((8 + n)).0.1/32 dev rbn${n}c
  ip -n $c link set rbn${n}c up
  ip -n $S route add 10.6$((8 + n)).0.1/32 via 10.99.$n.2 dev rbn${n}s
done
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)" >&2
BENCH_WORK=$W BENCH_NS_C0=$C0 BENCH_NS_C1=$C1 ip netns exec $S node --import tsx test/bench/nodes.ts &
ORCH=$!
rc=0; wait $ORCH || rc=$?
ORCH=
exit $rc
