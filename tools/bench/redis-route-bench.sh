#!/usr/bin/env bash
# Requests/s of a route doing one Redis GET, two designs in the same run (tools/route-bench):
#   loop: async handler on its connection's loop, Redis connection of that loop (no hop)
#   hop:  callback handler → global-pool task → one Redis connection on loop 0 → responder
# The hub runs 2 loops; redis-server and wrk share the machine (2 cores here), so the absolute
# figures are low and only the ratio, measured in alternating runs, means anything.
#   tools/bench/redis-route-bench.sh [RUNS=3] [SECONDS=10] [CONNECTIONS=50]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/deps.sh
ensure_apt_packages $BUILD_PACKAGES wrk redis-server

runs=${1:-3}; secs=${2:-10}; conns=${3:-50}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

swift build -c release --product route-bench >/dev/null
redis_port=$((20000 + $$ % 20000))
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null &
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done

hub_port=$((redis_port + 1))
.build/release/route-bench --port "$hub_port" --loops 2 --redis-url "redis://127.0.0.1:$redis_port/0" > "$work/hub.out" &
for _ in $(seq 200); do grep -q ready "$work/hub.out" 2>/dev/null && break; sleep 0.05; done
grep -q ready "$work/hub.out" || { echo "route-bench did not start" >&2; exit 1; }

hub_pid=$!
redis_pid=$(pgrep -f "redis-server 127.0.0.1:$redis_port" | head -1)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # utime + stime, in clock ticks
hz=$(getconf CLK_TCK)
# One run: "req/s hub-CPU-µs-per-request redis-CPU-µs-per-request"
measure() {
  local h0 r0 out rps reqs
  h0=$(ticks "$hub_pid"); r0=$(ticks "$redis_pid")
  out=$(wrk -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$hub_port$1")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  awk -v rps="$rps" -v n="$reqs" -v h=$(( $(ticks "$hub_pid") - h0 )) -v r=$(( $(ticks "$redis_pid") - r0 )) -v hz="$hz" \
    'BEGIN {printf "%s %.2f %.2f\n", rps, h / hz * 1e6 / n, r / hz * 1e6 / n}'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$work/loop"; : > "$work/hop"
for _ in $(seq "$runs"); do
  measure /bench/get/loop >> "$work/loop"
  measure /bench/get/hop >> "$work/hop"
done
col() { cut -d' ' -f"$1" "$2" | median; }
loop_rps=$(col 1 "$work/loop"); hop_rps=$(col 1 "$work/hop")
loop_cpu=$(col 2 "$work/loop"); hop_cpu=$(col 2 "$work/hop")
echo "runs (req/s, hub CPU µs/request, redis CPU µs/request):"
sed 's/^/  loop: /' "$work/loop"; sed 's/^/  hop:  /' "$work/hop"
echo "loop (hop-free): median $loop_rps req/s, $loop_cpu hub CPU µs/request"
echo "hop (old design): median $hop_rps req/s, $hop_cpu hub CPU µs/request"
awk -v a="$loop_rps" -v b="$hop_rps" -v c="$loop_cpu" -v d="$hop_cpu" \
  'BEGIN {printf "throughput loop/hop: %.2fx; hub CPU per request loop/hop: %.2fx\n", a/b, c/d}'
