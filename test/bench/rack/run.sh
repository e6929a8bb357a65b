#!/usr/bin/env bash
# Rack simulation bench (issue 5): 200 simulated PXE hosts, each with its own MAC and leased IP, power
# on at once and go DHCP -> TFTP loader -> TFTP pxelinux.cfg/01-<mac> -> kernel + 60 MB initrd -> GET
# kickstart -> POST events -> POST built. Same workload, same run, same machine against:
#   reference: dnsmasq (DHCP + TFTP, --no-ping) + nginx serving the same files as static equivalents
#              (the configs and kickstarts rackboot rendered, a `return 200` for events and built);
#   rackboot:  `rackboot serve --dhcp-mode authoritative` on TFTP 69 / HTTP 8080, hosts added and put
#              in build through its API.
# Everything runs in two network namespaces made here (server side / client side of one veth pair);
# nothing is sent outside them. Prints a table; not part of `npm test`.
# Usage (root): bash test/bench/rack/run.sh
#   HOSTS=200  INITRD=http|tftp (how kernel+initrd travel; http is what iPXE does)  TIMEOUT=600 (s per run)
#   RB_LOG_LEVEL=info  KEEP=1 (keep the work dir and logs)  ONLY=rackboot|reference
#   RB_NODE_OPTS='--cpu-prof --cpu-prof-dir=/tmp/x' (extra node flags for the measured rackboot)
#   PCAP=1 (with KEEP: packet headers on the client veth into WORKDIR/<server>.pcap, for looking at one phase)
set -euo pipefail
cd "$(dirname "$0")/../../.."
HOSTS=${HOSTS:-200}
INITRD=${INITRD:-http}
TIMEOUT=${TIMEOUT:-600}
RB_LOG_LEVEL=${RB_LOG_LEVEL:-info}
ONLY=${ONLY:-}
[ "$(id -u)" = 0 ] || { echo "rack bench: needs root (network namespaces, port 67/68/69)"; exit 1; }

need=()
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
command -v nginx >/dev/null || need+=(nginx-light)
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq && timeout 300 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

S=rbrack-s C=rbrack-c SI=rbrack0s CI=rbrack0c
SIP=10.98.0.1
BASE=http://$SIP:8080
W=$(mktemp -d /tmp/rbrack.XXXXXX)
chmod 755 "$W"
PIDS=()
cleanup() {
  local rc=$?
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  ip netns del $S 2>/dev/null || true
  ip netns del $C 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "work dir kept: $W"; else rm -rf "$W"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
# CPU seconds (utime+stime) and peak RSS (VmHWM, MB) of the given pids, summed.
cpu_s() { local t=0 p; for p in "$@"; do t=$(awk -v t="$t" '{ sub(/^.*\) /, ""); printf "%.2f", t + ($12 + $13) / 100 }' "/proc/$p/stat"); done; echo "$t"; }
sys_s() { local t=0 p; for p in "$@"; do t=$(awk -v t="$t" '{ sub(/^.*\) /, ""); printf "%.2f", t + $13 / 100 }' "/proc/$p/stat"); done; echo "$t"; }
hwm_mb() { local t=0 p; for p in "$@"; do t=$(awk -v t="$t" '/^VmHWM:/ { printf "%.1f", t + $2 / 1024 }' "/proc/$p/status"); done; echo "$t"; }
wait_http() { # url what pid
  for _ in $(seq 150); do
    ip netns exec $S curl -sf -o /dev/null "$1" && return 0
    kill -0 "$3" 2>/dev/null || { log "$2 exited during start-up"; return 1; }
    sleep 0.2
  done
  log "$2 did not answer $1 within 30 s"; return 1
}
pcap_start() { PCAP_PID=; [ -n "${PCAP:-}" ] || return 0; ip netns exec $C tcpdump -i $CI -s 128 -U -w "$W/$1.pcap" 2>/dev/null & PCAP_PID=$!; PIDS+=($PCAP_PID); sleep 1; }
pcap_stop() { [ -z "${PCAP_PID:-}" ] || stop_pid "$PCAP_PID"; }
stop_pid() { kill "$1" 2>/dev/null || true; for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; kill -9 "$1" 2>/dev/null || true; }

# ---------- files: the same bytes for both servers ----------
log "work dir $W: making boot files (pxelinux.0, 8 MB vmlinuz, 60 MB initrd.img)"
mkdir -p "$W/tftpboot/rhvh-4.3" "$W/images/rhvh-4.3" "$W/profiles" "$W/ref/ks" "$W/ngx"
if [ -f /usr/lib/PXELINUX/pxelinux.0 ]; then cp /usr/lib/PXELINUX/pxelinux.0 "$W/tftpboot/pxelinux.0"; else head -c 42000 /dev/urandom > "$W/tftpboot/pxelinux.0"; fi
head -c 8M /dev/urandom > "$W/tftpboot/rhvh-4.3/vmlinuz"
head -c 60M /dev/urandom > "$W/tftpboot/rhvh-4.3/initrd.img"
truncate -s 64M "$W/images/rhvh-4.3/redhat-virtualization-host-4.3.squashfs.img"
cp profiles/*.yaml "$W/profiles/"
for i in $(seq 0 $((HOSTS - 1))); do printf '52:54:00:98:%02x:%02x\n' $((i >> 8)) $((i & 255)); done > "$W/macs.txt"
export RACKBOOT_ADMIN_TOKEN=rack-bench-$RANDOM$RANDOM

# ---------- network: server ns <-veth-> client ns ----------
ip netns del $S 2>/dev/null || true; ip netns del $C 2>/dev/null || true
ip netns add $S; ip netns add $C
ip -n $S link set lo up; ip -n $C link set lo up
ip link add $SI netns $S type veth peer name $CI netns $C
ip -n $S addr add $SIP/21 dev $SI; ip -n $S link set $SI up
ip -n $C addr add 10.98.0.2/21 dev $CI; ip -n $C link set $CI up
# The pool's addresses are local in the client ns (AnyIP): each simulated host binds its sockets to
# the address it leased, without 1,000 `ip addr add` calls.
ip -n $C route add local 10.98.1.0/24 dev lo
ip -n $C route add local 10.98.2.0/23 dev lo
ip -n $C route add local 10.98.4.0/22 dev lo
ip -n $C route add 255.255.255.255/32 dev $CI   # DHCP broadcasts leave by the veth
# One NIC per host, as on a rack: rackboot ties an address to a host only when its ARP table agrees
# with the lease, so ARP for a leased address must be answered with that host's MAC, not the veth's.
# nics.py does that; the client kernel neither answers nor announces the pool's addresses, and frames
# sent to a host MAC (52:54:00:98:*) are handed to the veth (the kernel would drop them as for another host).
ip netns exec $C sysctl -qw net.ipv4.conf.$CI.arp_ignore=8 net.ipv4.conf.$CI.arp_announce=2
CMAC=$(ip netns exec $C cat /sys/class/net/$CI/address)
ip netns exec $C nft -f - <<NFT
table netdev rbrack {
  chain nics { type filter hook ingress device $CI priority 0; ether daddr & ff:ff:ff:ff:00:00 == 52:54:00:98:00:00 ether daddr set $CMAC meta pkttype set host; }
}
NFT
NICS_PORT=6767
ip netns exec $C python3 test/bench/rack/nics.py $CI $NICS_PORT 2> "$W/nics.log" &
PIDS+=($!)
# 1,786 addresses: HOSTS=1000 fits with room for the offers nobody took.
RANGE_DNSMASQ=10.98.1.1,10.98.7.250 RANGE_RB=10.98.1.1-10.98.7.250

RB_COMMON=(--http-port 8080 --server-ip $SIP --public-url $BASE --profiles-dir "$W/profiles" --tftp-root "$W/tftpboot" --images-dir "$W/images")

# ---------- prep: a throwaway rackboot renders the per-host configs and kickstarts for the reference ----------
log "prep: rendering $HOSTS pxelinux configs and kickstarts with a throwaway rackboot (not measured)"
ip netns exec $S node bin/rackboot.mjs serve "${RB_COMMON[@]}" --tftp-port 0 --data-dir "$W/prep-data" --log-level warn > "$W/prep.log" 2>&1 &
PREP=$!; PIDS+=($PREP)
wait_http "$BASE/healthz" "prep rackboot" $PREP || { cat "$W/prep.log"; exit 1; }
ip netns exec $S timeout 120 node --import tsx test/bench/rack/setup.ts --url $BASE --macs "$W/macs.txt" --capture "$W/ref" >&2
stop_pid $PREP
cp -al "$W/tftpboot/." "$W/ref/tftp/"
chmod -R a+rX "$W"

SIM=(node --import tsx test/bench/rack/sim.ts --macs "$W/macs.txt" --initrd "$INITRD" --timeout "$TIMEOUT" --nics $NICS_PORT)

# ---------- reference: dnsmasq + nginx ----------
run_reference() {
  log "reference: dnsmasq (DHCP + TFTP) + nginx"
  cat > "$W/nginx.conf" <<NGX
worker_processes 1; daemon off; pid $W/nginx.pid; error_log $W/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log $W/nginx.access combined buffer=64k; sendfile on; tcp_nopush on;
  client_body_temp_path $W/ngx/body; proxy_temp_path $W/ngx/proxy; fastcgi_temp_path $W/ngx/fcgi; uwsgi_temp_path $W/ngx/uwsgi; scgi_temp_path $W/ngx/scgi;
  server {
    listen $SIP:8080;
    location /tftp/   { alias $W/ref/tftp/; default_type application/octet-stream; }
    location /ks/     { alias $W/ref/ks/; default_type text/plain; }
    location /images/ { alias $W/images/; }
    location /events/ { return 200 "ok\n"; }
    location /built/  { return 200 "ok\n"; }
  }
}
NGX
  ip netns exec $S nginx -c "$W/nginx.conf" > "$W/nginx.out" 2>&1 &
  NGX=$!; PIDS+=($NGX)
  ip netns exec $S dnsmasq --no-daemon --conf-file=/dev/null --port=0 --no-ping --user=root --group=root \
    --interface=$SI --bind-interfaces --log-facility="$W/dnsmasq.log" --pid-file="$W/dnsmasq.pid" \
    --dhcp-range=$RANGE_DNSMASQ,255.255.248.0,1h --dhcp-leasefile="$W/dnsmasq.leases" --dhcp-lease-max=10000 \
    --dhcp-boot=pxelinux.0,,$SIP --enable-tftp --tftp-root="$W/ref/tftp" --tftp-max=1000 > "$W/dnsmasq.out" 2>&1 &
  DNSMASQ=$!; PIDS+=($DNSMASQ)
  wait_http "$BASE/tftp/pxelinux.0" nginx $NGX || { cat "$W/nginx.out" "$W/nginx.err"; exit 1; }
  sleep 0.5
  kill -0 $DNSMASQ || { log "dnsmasq exited:"; cat "$W/dnsmasq.out"; exit 1; }
  local workers; workers=$(pgrep -P $NGX | tr '\n' ' ')
  local pids=($DNSMASQ $NGX $workers)
  local c0; c0=$(cpu_s "${pids[@]}"); local k0; k0=$(sys_s "${pids[@]}")
  pcap_start reference
  ip -n $S neigh flush dev $SI  # the other run's leases are not this one's
  ip netns exec $C "${SIM[@]}" --label reference --json "$W/ref-sim.json" --watch "$(echo "${pids[@]}" | tr ' ' ',')" >&2 || true
  local c1; c1=$(cpu_s "${pids[@]}"); local k1; k1=$(sys_s "${pids[@]}")
  pcap_stop
  printf '{"name":"dnsmasq+nginx","cpuSec":%s,"sysSec":%s,"hwmMB":%s}\n' "$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b - a}')" "$(awk -v a="$k0" -v b="$k1" 'BEGIN{printf "%.2f", b - a}')" "$(hwm_mb "${pids[@]}")" > "$W/ref-proc.json"
  stop_pid $DNSMASQ; stop_pid $NGX
}

# ---------- rackboot ----------
run_rackboot() {
  log "rackboot: serve --dhcp-mode authoritative, TFTP 69, HTTP 8080 (log level $RB_LOG_LEVEL)"
  # shellcheck disable=SC2086
  ip netns exec $S node ${RB_NODE_OPTS:-} bin/rackboot.mjs serve "${RB_COMMON[@]}" --tftp-port 69 --data-dir "$W/rb-data" --log-level "$RB_LOG_LEVEL" \
    --dhcp-mode authoritative --dhcp-interface $SI --dhcp-subnet 10.98.0.0/21 --dhcp-range $RANGE_RB --dhcp-router $SIP > "$W/rackboot.log" 2>&1 &
  RB=$!; PIDS+=($RB)
  wait_http "$BASE/healthz" rackboot $RB || { cat "$W/rackboot.log"; exit 1; }
  ip netns exec $S timeout 120 node --import tsx test/bench/rack/setup.ts --url $BASE --macs "$W/macs.txt" >&2
  local h0; h0=$(hwm_mb $RB)
  local c0; c0=$(cpu_s $RB); local k0; k0=$(sys_s $RB)
  pcap_start rackboot
  ip -n $S neigh flush dev $SI  # the other run's leases are not this one's
  ip netns exec $C "${SIM[@]}" --label rackboot --json "$W/rb-sim.json" --watch $RB >&2 || true
  local c1; c1=$(cpu_s $RB); local k1; k1=$(sys_s $RB)
  pcap_stop
  printf '{"name":"rackboot","cpuSec":%s,"sysSec":%s,"hwmMB":%s,"startupHwmMB":%s}\n' "$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b - a}')" "$(awk -v a="$k0" -v b="$k1" 'BEGIN{printf "%.2f", b - a}')" "$(hwm_mb $RB)" "$h0" > "$W/rb-proc.json"
  # What rackboot itself recorded: every host built, and one host's timeline.
  ip netns exec $S curl -sf -H "Authorization: Bearer $RACKBOOT_ADMIN_TOKEN" "$BASE/api/hosts?limit=1000" > "$W/rb-hosts.json" || echo '{"items":[]}' > "$W/rb-hosts.json"
  ip netns exec $S curl -sf -H "Authorization: Bearer $RACKBOOT_ADMIN_TOKEN" "$BASE/api/hosts/$(head -1 "$W/macs.txt")" > "$W/rb-host0.json" || echo '{}' > "$W/rb-host0.json"
  node -e '
    const fs = require("fs"); const hosts = JSON.parse(fs.readFileSync(process.argv[1], "utf8")).items; const h0 = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
    const ev = h0.timeline ?? h0.events ?? [];
    fs.writeFileSync(process.argv[3], JSON.stringify({ built: hosts.filter((h) => h.state === "built").length, total: hosts.length, timelineTypes: [...new Set(ev.map((e) => e.type))] }));
  ' "$W/rb-hosts.json" "$W/rb-host0.json" "$W/rb-api.json"
  stop_pid $RB
}

[ "$ONLY" = rackboot ] || run_reference
sleep 1
[ "$ONLY" = reference ] || run_rackboot
if [ -n "$ONLY" ]; then cat "$W"/*-proc.json; exit 0; fi

echo
node --import tsx test/bench/rack/report.ts "$W/ref-sim.json" "$W/ref-proc.json" "$W/rb-sim.json" "$W/rb-proc.json" "$W/rb-api.json"
