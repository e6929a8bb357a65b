#!/usr/bin/env bash
# HTTP benchmark: rackboot vs nginx on this machine, same run, loopback only.
#  1. kickstarts: 1,000 hosts in build, wrk GETs random /ks/<token>; nginx serves a static file of the same size.
#     Each server runs on core 0 and wrk on core 1, after WARM (3) seconds of the same load.
#  2. images: a 1 GiB file, 8 parallel curl downloads, 3 alternating rounds; ratio of the medians to nginx's.
# Prints a table; not a test. Needs root for apt-get if wrk/nginx are missing.
# RB_NODE_OPTS='--cpu-prof --cpu-prof-dir=/tmp/x': extra node flags for the measured rackboot.
set -euo pipefail
cd "$(dirname "$0")/../.."
need=(); command -v wrk >/dev/null || need+=(wrk); command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; fi
W=$(mktemp -d /tmp/rackboot-bench.XXXXXX)
RB_PORT=18080; NG_PORT=18081; DUR=${DUR:-10}; CONN=${CONN:-64}
# Each server on core 0, wrk on core 1: neither server shares a core with the load (SERVER_CPU=0-1 to float).
SERVER_CPU=${SERVER_CPU:-0}
cleanup() { kill "${RB_PID:-}" 2>/dev/null || true; [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$W/images" "$W/tftpboot" "$W/www"; chmod 755 "$W"
node --import tsx test/bench/http-setup.ts "$W/data" profiles "http://127.0.0.1:$RB_PORT" 1000 "$W/paths.txt"
RACKBOOT_ADMIN_TOKEN=bench taskset -c "$SERVER_CPU" node ${RB_NODE_OPTS:-} bin/rackboot.mjs serve --listen 127.0.0.1 --http-port $RB_PORT --tftp-port 0 --data-dir "$W/data" \
  --profiles-dir profiles --tftp-root "$W/tftpboot" --images-dir "$W/images" --public-url "http://127.0.0.1:$RB_PORT" --log-level warn > "$W/rb.log" 2>&1 &
RB_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$RB_PORT/healthz" >/dev/null && break; sleep 0.1; done
first=$(head -1 "$W/paths.txt")
curl -sf "http://127.0.0.1:$RB_PORT$first" > "$W/www/ks.cfg"
KS_SIZE=$(stat -c %s "$W/www/ks.cfg")
truncate -s 1G "$W/images/big.img"; ln "$W/images/big.img" "$W/www/big.img" 2>/dev/null || cp --sparse=always "$W/images/big.img" "$W/www/big.img"
cat > "$W/nginx.conf" <<NGX
worker_processes 1; pid $W/nginx.pid; error_log $W/nginx.err; daemon on;
events { worker_connections 4096; }
http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  server { listen 127.0.0.1:$NG_PORT; root $W/www; location / { default_type text/plain; } } }
NGX
taskset -c "$SERVER_CPU" nginx -c "$W/nginx.conf"
cat > "$W/ks.lua" <<LUA
local paths = {}
for line in io.lines("$W/paths.txt") do paths[#paths + 1] = line end
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
LUA
wrk_run() { # url script -> "req/s p99"
  local out; out=$(taskset -c 1 wrk -t1 -c"$CONN" -d"${DUR}s" --latency ${2:+-s "$2"} "$1")
  local rps p99; rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $4}' <<<"$out"); echo "$rps $p99 ${non2xx:-0}"
}
# Each server first gets WARM seconds of the same load, not counted: cold, Node's JIT compiles while the first
# requests wait (a plain node http server had p99 22 ms cold and 4 ms warm on this machine; nginx has no warm-up).
WARM=${WARM:-3}
warm() { [ "$WARM" -gt 0 ] && taskset -c 1 wrk -t1 -c"$CONN" -d"${WARM}s" ${2:+-s "$2"} "$1" >/dev/null || true; }
warm "http://127.0.0.1:$RB_PORT/" "$W/ks.lua"
read -r rb_rps rb_p99 rb_bad < <(wrk_run "http://127.0.0.1:$RB_PORT/" "$W/ks.lua")
warm "http://127.0.0.1:$NG_PORT/ks.cfg"
read -r ng_rps ng_p99 ng_bad < <(wrk_run "http://127.0.0.1:$NG_PORT/ks.cfg")
dl() { # url -> MB/s for 8 parallel full downloads
  local start end; start=$(date +%s.%N)
  for _ in $(seq 8); do curl -sf -o /dev/null "$1" & done; wait
  end=$(date +%s.%N); awk -v s="$start" -v e="$end" 'BEGIN { printf "%.0f", 8 * 1024 / (e - s) }'
}
# The image is one sparse file hard-linked into both roots: read it once first, or whichever server goes
# first pays for filling the page cache (that alone made the first round ~0.6 of the next ones).
cat "$W/images/big.img" > /dev/null
# Three rounds, alternating, and the median of each: single rounds on this shared machine vary by +-30 %.
median() { sort -n | sed -n 2p; }
rb_runs=(); ng_runs=()
for _ in 1 2 3; do rb_runs+=("$(dl "http://127.0.0.1:$RB_PORT/images/big.img")"); ng_runs+=("$(dl "http://127.0.0.1:$NG_PORT/big.img")"); done
rb_img=$(printf '%s\n' "${rb_runs[@]}" | median); ng_img=$(printf '%s\n' "${ng_runs[@]}" | median)
printf '\n%-34s %14s %14s %8s\n' "HTTP ($(nproc) cores, wrk -c$CONN ${DUR}s)" rackboot nginx ratio
printf '%-34s %14s %14s %8s\n' "kickstart GET/s (${KS_SIZE} B, 1000 tokens)" "$rb_rps" "$ng_rps" "$(awk -v a="$rb_rps" -v b="$ng_rps" 'BEGIN{printf "%.2f", a/b}')"
printf '%-34s %14s %14s\n' "kickstart p99 latency" "$rb_p99" "$ng_p99"
printf '%-34s %14s %14s\n' "non-2xx responses" "$rb_bad" "$ng_bad"
printf '%-34s %14s %14s %8s\n' "1 GiB image, 8 parallel, MB/s" "$rb_img" "$ng_img" "$(awk -v a="$rb_img" -v b="$ng_img" 'BEGIN{printf "%.2f", a/b}')"
printf '%-34s %14s %14s\n' "  (rounds, MB/s)" "${rb_runs[*]}" "${ng_runs[*]}"
