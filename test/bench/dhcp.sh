#!/usr/bin/env bash
# DHCP benchmark: rackboot vs Kea (kea-dhcp4-server, memfile) vs dnsmasq (--no-ping), same machine,
# same run, inside network namespaces made here (never a real network). perfdhcp (kea-admin) acts
# as a relay agent (giaddr 10.68.0.1) and sends DISCOVERs (-i: DISCOVER->OFFER) or full DORA with
# distinct MACs, at rising capped rates and once with no cap (-r unset: perfdhcp's own pace). Then the closed loop
# (test/bench/dhcp-loop.c): 32 exchanges in flight from 20,000 MACs that cycle, broadcast from the client namespace.
# Prints tables with rates, ratios to Kea, and p99 latency.
# Usage (root): bash test/bench/dhcp.sh [seconds-per-run, default 10]; OFFER_RATES="..." DORA_RATES="..."
# SERVERS="ours kea dnsmasq" SYNC=NORMAL|FULL METHODS="perfdhcp loop" LOOP_OUTSTANDING=32 LOOP_MACS=20000
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; exit 1; }

need=()
command -v perfdhcp >/dev/null || need+=(kea-admin)
command -v kea-dhcp4 >/dev/null || need+=(kea-dhcp4-server)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

S=rbdhcp-bench-s C=rbdhcp-bench-c SI=rbbench0s CI=rbbench0c
W=$(mktemp -d /tmp/rbdhcp-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  sleep 0.3
  ip netns del $S 2>/dev/null || true; ip netns del $C 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
ip netns del $S 2>/dev/null || true; ip netns del $C 2>/dev/null || true
ip netns add $S; ip netns add $C
ip -n $S link set lo up; ip -n $C link set lo up
ip link add $SI netns $S type veth peer name $CI netns $C
# 10.99.0.0/16 on the link itself: the closed loop's clients broadcast there (20,000 of them need the room).
ip -n $S addr add 10.99.0.1/16 dev $SI; ip -n $S link set $SI up
ip -n $C addr add 10.99.0.2/16 dev $CI; ip -n $C addr add 10.68.0.1/14 dev $CI; ip -n $C link set $CI up
ip -n $S route add 10.68.0.0/14 via 10.99.0.2
# Kea's and dnsmasq's lease files, our SQLite: all on the same disk.

start_ours() {
  cat > "$W/ours.json" <<EOF
{"config":{"mode":"authoritative","interface":"$SI","serverIp":"10.99.0.1","offerHoldSec":30,
 "subnets":[{"cidr":"10.99.0.0/16","ranges":["10.99.1.0-10.99.255.250"]},
            {"cidr":"10.68.0.0/14","ranges":["10.68.1.0-10.71.255.250"],"router":"10.68.0.1","dns":["10.99.0.1"],"leaseTimeSec":3600}]},
 "db":"$W/ours.db","quiet":true,"synchronous":"${SYNC:-NORMAL}"}
EOF
  RB_WAL_AUTOCHECKPOINT=${RB_WAL_AUTOCHECKPOINT:-} ip netns exec $S node --import tsx test/fixtures/dhcp/run-server.ts "$W/ours.json" > "$W/ours.out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q ready "$W/ours.out" 2>/dev/null && return; sleep 0.1; done
  echo "rackboot did not start:"; cat "$W/ours.out"; exit 1
}
start_kea() {
  cat > "$W/kea.json" <<EOF
{"Dhcp4":{"interfaces-config":{"interfaces":["$SI"],"dhcp-socket-type":"${KEA_SOCKET:-udp}"},
 "lease-database":{"type":"memfile","persist":true,"name":"$W/kea.leases","lfc-interval":0},
 "valid-lifetime":3600,"option-data":[{"name":"domain-name-servers","data":"10.99.0.1"}],
 "subnet4":[{"id":1,"subnet":"10.99.0.0/16","pools":[{"pool":"10.99.1.0 - 10.99.255.250"}]},
            {"id":2,"subnet":"10.68.0.0/14","pools":[{"pool":"10.68.1.0 - 10.71.255.250"}],"option-data":[{"name":"routers","data":"10.68.0.1"}]}],
 "loggers":[{"name":"kea-dhcp4","severity":"ERROR","output_options":[{"output":"$W/kea.log"}]}]}}
EOF
  mkdir -p /run/kea /var/run/kea 2>/dev/null || true
  KEA_PIDFILE_DIR=$W KEA_LOCKFILE_DIR=$W ip netns exec $S kea-dhcp4 -c "$W/kea.json" > "$W/kea.out" 2>&1 &
  PIDS+=($!)
  sleep 1.5
}
start_dnsmasq() {
  ip netns exec $S dnsmasq --no-daemon --conf-file=/dev/null --port=0 --no-ping --quiet-dhcp --log-facility=/dev/null \
    --interface=$SI --bind-interfaces --dhcp-lease-max=1000000 --dhcp-leasefile="$W/dnsmasq.leases" --pid-file="$W/dnsmasq.pid" \
    --dhcp-range=10.99.1.0,10.99.255.250,255.255.0.0,1h --dhcp-range=10.68.1.0,10.71.255.250,255.252.0.0,1h \
    --dhcp-option=3,10.68.0.1 --dhcp-option=6,10.99.0.1 > "$W/dnsmasq.out" 2>&1 &
  PIDS+=($!)
  sleep 1
}
stop_last() { kill "${PIDS[-1]}" 2>/dev/null || true; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'; sleep 0.5; }

# One perfdhcp run at a target rate -> "rate p99ms drops%". $1 = -i (DISCOVER->OFFER only) or "" (DORA).
measure() {
  local flag=$1 label=$2 rate=$3 want
  local out="$W/perf-$label-$rate.txt"
  want=$([ -n "$flag" ] && echo DISCOVER-OFFER || echo REQUEST-ACK)
  local cap=(-r "$rate")
  [ "$rate" = max ] && cap=()
  ip netns exec $C perfdhcp -4 $flag -l 10.68.0.1 "${cap[@]}" -R 4000000 -p "$SECS" -x t -W 1000000 10.99.0.1 > "$out" 2>&1 || true
  [ -n "${KEEP:-}" ] && cp "$out" /tmp/ || true
  local got p99 drops
  got=$(grep -m1 -oP 'Rate: \K[0-9.]+' "$out" || echo 0)
  # -x t prints "sent / received: S / R" for every answered exchange: p99 of R - S.
  p99=$(awk -v want="$want" '/^\*\*\*Timestamps for packets: /{ on = index($0, want) > 0; next } /^\*\*\*/{ on = 0 }
    on && /^sent \/ received:/ { printf "%.3f\n", ($6 - $4) * 1000 }' "$out" | sort -n |
    awk '{ a[NR] = $1 } END { if (NR == 0) print "n/a"; else { i = int(NR * 0.99); if (i < 1) i = 1; print a[i] } }')
  drops=$(awk -v want="$want" '/Statistics for: /{ cur = $0 } /drops ratio:/ && index(cur, want) { print $3 "%"; exit }' "$out")
  echo "$got $p99 ${drops:-?}"
}

# Each server at rising target rates; the best sustained rate counts (with its p99 and drops).
OFFER_RATES=${OFFER_RATES:-"4000 8000 16000 24000 max"}
DORA_RATES=${DORA_RATES:-"1500 3000 6000 9000 max"}
METHODS=${METHODS:-"perfdhcp loop"}
# Interleaved (rate by rate, the three servers back to back) so a change in machine load hits all
# three alike; each server's best sustained rate counts, with its p99 and drop ratio.
declare -A R
for srv in ours kea dnsmasq; do R[$srv-offer]="0 n/a ?"; R[$srv-dora]="0 n/a ?"; done
for kind in offer dora; do
  [[ " $METHODS " == *" perfdhcp "* ]] || break
  flag=$([ $kind = offer ] && echo -i || echo "")
  rates=$([ $kind = offer ] && echo "$OFFER_RATES" || echo "$DORA_RATES")
  for rate in $rates; do
    for srv in ${SERVERS:-ours kea dnsmasq}; do
      "start_$srv"
      res=$(measure "$flag" "$srv-$kind" "$rate")
      echo "$srv $kind @$rate/s: $res" >&2
      stop_last
      rm -f "$W"/ours.db* "$W"/kea.leases* "$W"/dnsmasq.leases
      best=${R[$srv-$kind]}
      if awk -v a="${res%% *}" -v b="${best%% *}" 'BEGIN { exit !(a > b) }'; then R[$srv-$kind]=$res; fi
    done
  done
done

# The closed loop: three alternating rounds per server and kind, the median counts.
gcc -O2 -o "$W/dhcp-loop" test/bench/dhcp-loop.c
declare -A L
if [[ " $METHODS " == *" loop "* ]]; then
  for kind in offer dora; do
    for round in 1 2 3; do
      for srv in ${SERVERS:-ours kea dnsmasq}; do
        # Kea answers clients on its own link only with raw sockets (its UDP sockets are for relayed traffic).
        KEA_SOCKET=raw "start_$srv"
        res=$(ip netns exec $C "$W/dhcp-loop" $CI $kind "$SECS" "${LOOP_OUTSTANDING:-32}" "${LOOP_MACS:-20000}")
        echo "$srv loop $kind round $round: $res (exchanges/s p99ms lost sent)" >&2
        stop_last
        rm -f "$W"/ours.db* "$W"/kea.leases* "$W"/dnsmasq.leases
        L[$srv-$kind]="${L[$srv-$kind]:-}$res"$'\n'
      done
    done
  done
fi
median() { printf '%s' "${L[$1]:-}" | grep . | sort -n -k1,1 | awk '{ a[NR] = $0 } END { if (NR) print a[int((NR + 1) / 2)]; else print "0 n/a ?" }'; }

kea_o=$(echo "${R[kea-offer]}" | cut -d' ' -f1); kea_d=$(echo "${R[kea-dora]}" | cut -d' ' -f1)
printf '\nDHCP benchmark, %ss per run, perfdhcp as relay, best of target rates offers [%s] DORA [%s], distinct MACs, %s cores, load %s\n' "$SECS" "$OFFER_RATES" "$DORA_RATES" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s | %12s %8s %9s %7s | %12s %8s %9s %7s\n' server 'offers/s' 'vs Kea' 'p99 ms' 'drop' 'leases/s' 'vs Kea' 'p99 ms' 'drop'
for srv in ${SERVERS:-ours kea dnsmasq}; do
  read -r o op od <<<"${R[$srv-offer]}"; read -r d dp dd <<<"${R[$srv-dora]}"
  ro=$(awk -v a="$o" -v b="$kea_o" 'BEGIN{ if (b>0) printf "%.2fx", a/b; else print "n/a" }')
  rd=$(awk -v a="$d" -v b="$kea_d" 'BEGIN{ if (b>0) printf "%.2fx", a/b; else print "n/a" }')
  name=$([ $srv = ours ] && echo rackboot || echo $srv)
  printf '%-10s | %12.0f %8s %9s %7s | %12.0f %8s %9s %7s\n' "$name" "$o" "$ro" "$op" "$od" "$d" "$rd" "$dp" "$dd"
done
echo "(rackboot: leases in SQLite WAL, synchronous=${SYNC:-NORMAL} as serve.ts opens it (SYNC=FULL to fsync each commit), group commit before replies; Kea: memfile persist; dnsmasq: lease file)"
if [[ " $METHODS " == *" loop "* ]]; then
  lko=$(median kea-offer | cut -d' ' -f1); lkd=$(median kea-dora | cut -d' ' -f1)
  printf '\nClosed loop (test/bench/dhcp-loop.c), %ss per run, %s outstanding, %s MACs cycling, broadcast, median of 3 alternating rounds\n' "$SECS" "${LOOP_OUTSTANDING:-32}" "${LOOP_MACS:-20000}"
  printf '%-10s | %12s %8s %9s %7s | %12s %8s %9s %7s\n' server 'offers/s' 'vs Kea' 'p99 ms' 'lost' 'leases/s' 'vs Kea' 'p99 ms' 'lost'
  for srv in ${SERVERS:-ours kea dnsmasq}; do
    read -r o op od _ <<<"$(median $srv-offer)"; read -r d dp dd _ <<<"$(median $srv-dora)"
    ro=$(awk -v a="$o" -v b="$lko" 'BEGIN{ if (b>0) printf "%.2fx", a/b; else print "n/a" }')
    rd=$(awk -v a="$d" -v b="$lkd" 'BEGIN{ if (b>0) printf "%.2fx", a/b; else print "n/a" }')
    name=$([ $srv = ours ] && echo rackboot || echo $srv)
    printf '%-10s | %12.0f %8s %9s %7s | %12.0f %8s %9s %7s\n' "$name" "$o" "$ro" "$op" "$od" "$d" "$rd" "$dp" "$dd"
  done
fi
