#!/usr/bin/env bash
# TFTP throughput benchmark: rackboot vs tftpd-hpa vs dnsmasq, same machine, same run, loopback.
# 64 MiB file; atftp and curl at blksize 512 and 1468, atftp with windowsize 8; clients pinned to one
# CPU and servers to another with taskset. Prints MB/s per cell, ratios vs the better reference, and
# server CPU per MB. Not part of npm test. Needs root for apt-get and for dnsmasq's port 69.
#   bash test/bench/tftp.sh            # REPS=3 SIZE_MB=64 CLIENT_CPU=1 SERVER_CPU=0
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${REPS:-3}
SIZE_MB=${SIZE_MB:-64}
CLIENT_CPU=${CLIENT_CPU:-1}
SERVER_CPU=${SERVER_CPU:-0}
OUR_PORT=${OUR_PORT:-16969}
HPA_PORT=${HPA_PORT:-16970}
DNSMASQ_PORT=69 # dnsmasq's TFTP port is fixed

need=()
command -v in.tftpd >/dev/null || need+=(tftpd-hpa)
command -v dnsmasq >/dev/null || need+=(dnsmasq)
command -v atftp >/dev/null || need+=(atftp)
command -v curl >/dev/null || need+=(curl)
command -v taskset >/dev/null || need+=(util-linux)
command -v bc >/dev/null || need+=(bc)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The packages start their daemons on port 69/53; stop any we just caused (by pid file, not by name).
  for pf in /run/dnsmasq/dnsmasq.pid /run/tftpd-hpa.pid; do [ -f "$pf" ] && kill "$(cat "$pf")" 2>/dev/null || true; done
fi

work=$(mktemp -d /tmp/rb-tftp-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
head -c $((SIZE_MB * 1048576)) /dev/urandom > "$work/big.bin"
chmod 644 "$work/big.bin"
want=$(sha256sum < "$work/big.bin" | cut -c1-64)

# --- servers, each pinned to SERVER_CPU -------------------------------------------------------
taskset -c "$SERVER_CPU" node --import tsx test/bench/tftp-serve.ts --root "$work" --address 127.0.0.1 --port "$OUR_PORT" > "$work/ours.out" &
pids+=($!); OUR_PID=$!
taskset -c "$SERVER_CPU" in.tftpd -L -a "127.0.0.1:$HPA_PORT" -s "$work" &
pids+=($!); HPA_PID=$!
taskset -c "$SERVER_CPU" dnsmasq -k --port=0 --enable-tftp --tftp-root="$work" --listen-address=127.0.0.1 --bind-interfaces \
  --tftp-max=500 --quiet-tftp --pid-file="$work/dnsmasq.pid" --user=root --log-facility=- 2>/dev/null &
pids+=($!); DNSMASQ_PID=$!
for _ in $(seq 50); do [ -s "$work/ours.out" ] && break; sleep 0.1; done
sleep 0.5

cpu_ticks() { awk '{print $14+$15+$16+$17}' "/proc/$1/stat"; } # utime+stime+reaped children (tftpd-hpa forks per transfer)
declare -A CPU_START MB_DONE PID_OF PORT_OF
PID_OF=([ours]=$OUR_PID [hpa]=$HPA_PID [dnsmasq]=$DNSMASQ_PID)
PORT_OF=([ours]=$OUR_PORT [hpa]=$HPA_PORT [dnsmasq]=$DNSMASQ_PORT)
echo hi > "$work/tiny.txt"; chmod 644 "$work/tiny.txt"
for s in ours hpa dnsmasq; do CPU_START[$s]=$(cpu_ticks "${PID_OF[$s]}"); MB_DONE[$s]=0; done
# tftpd-hpa ignores SIGCHLD, so its per-transfer children never show up in its own counters: sample
# them every 50 ms and keep each child's last value (misses at most the final 50 ms of each transfer).
( while :; do
    for c in $(ps -o pid= --ppid "$HPA_PID" 2>/dev/null); do
      t=$(awk '{print $14+$15}' "/proc/$c/stat" 2>/dev/null) && echo "$c $t"
    done
    sleep 0.05
  done > "$work/hpa-children" ) &
pids+=($!); SAMPLER_PID=$!

# one_run SERVER PORT CLIENT BLKSIZE WINDOW -> prints MB/s (best of REPS), checks the bytes on the first rep
one_run() {
  local srv=$1 port=$2 client=$3 bs=$4 win=$5 best=0
  for rep in $(seq "$REPS"); do
    local out=/dev/null
    [ "$rep" = 1 ] && out="$work/got.bin"
    local t0 t1
    t0=$(date +%s.%N)
    if [ "$client" = atftp ]; then
      local opts=(--option "blksize $bs")
      [ "$win" -gt 1 ] && opts+=(--option "windowsize $win")
      taskset -c "$CLIENT_CPU" atftp -g -r big.bin -l "$out" "${opts[@]}" 127.0.0.1 "$port" >/dev/null 2>&1 || true
    else
      taskset -c "$CLIENT_CPU" curl -s --tftp-blksize "$bs" "tftp://127.0.0.1:$port/big.bin" -o "$out" || true
    fi
    t1=$(date +%s.%N)
    if [ "$rep" = 1 ]; then
      if [ "$(sha256sum < "$work/got.bin" | cut -c1-64)" != "$want" ]; then echo "FAIL: $srv $client bs=$bs w=$win: wrong bytes" >&2; echo 0; return; fi
      rm -f "$work/got.bin"
    fi
    MB_DONE[$srv]=$(( ${MB_DONE[$srv]} + SIZE_MB ))
    local mbs
    mbs=$(echo "scale=1; $SIZE_MB / ($t1 - $t0)" | bc)
    best=$(echo "if ($mbs > $best) $mbs else $best" | bc)
  done
  echo "$best"
}

printf '\nTFTP bench: %s MiB file, best of %s, clients on CPU %s, servers on CPU %s (MB/s = MiB/s)\n\n' "$SIZE_MB" "$REPS" "$CLIENT_CPU" "$SERVER_CPU"
printf '%-26s %9s %10s %9s %8s\n' cell rackboot tftpd-hpa dnsmasq ratio
cells=("atftp 512 1" "atftp 1468 1" "curl 512 1" "curl 1468 1" "atftp 1468 8")
for cell in "${cells[@]}"; do
  read -r client bs win <<< "$cell"
  # Redirect, not $(...): the function must run in this shell so its CPU counters persist.
  one_run ours "$OUR_PORT" "$client" "$bs" "$win" > "$work/r"; ours=$(cat "$work/r")
  one_run hpa "$HPA_PORT" "$client" "$bs" "$win" > "$work/r"; hpa=$(cat "$work/r")
  one_run dnsmasq "$DNSMASQ_PORT" "$client" "$bs" "$win" > "$work/r"; dns=$(cat "$work/r")
  ref=$(echo "if ($hpa > $dns) $hpa else $dns" | bc)
  ratio=$(echo "scale=2; $ours / $ref" | bc)
  label="$client blksize $bs"; [ "$win" -gt 1 ] && label="$label window $win"
  printf '%-26s %9s %10s %9s %7sx\n' "$label" "$ours" "$hpa" "$dns" "$ratio"
done
hz=$(getconf CLK_TCK)
# One tiny transfer each, so tftpd-hpa reaps the child of its last big transfer before we read its CPU.
for s in ours hpa dnsmasq; do curl -s "tftp://127.0.0.1:${PORT_OF[$s]}/tiny.txt" -o /dev/null || true; done
sleep 1
for s in ours hpa dnsmasq; do curl -s "tftp://127.0.0.1:${PORT_OF[$s]}/tiny.txt" -o /dev/null || true; done
sleep 0.5
printf '\nserver CPU per MiB (ms, all cells): '
for s in ours hpa dnsmasq; do
  used=$(( $(cpu_ticks "${PID_OF[$s]}") - ${CPU_START[$s]} ))
  if [ "$s" = hpa ]; then
    kill "$SAMPLER_PID" 2>/dev/null || true
    used=$(( used + $(awk '{ if ($2 > m[$1]) m[$1] = $2 } END { s = 0; for (k in m) s += m[k]; print s }' "$work/hpa-children") ))
  fi
  printf '%s %s  ' "$s" "$(echo "scale=2; $used * 1000 / $hz / ${MB_DONE[$s]}" | bc)"
done
printf '\n(tftpd-hpa and dnsmasq do not implement windowsize: their "window 8" cell is lockstep)\n'
