#!/usr/bin/env bash
# Identity benchmark, on both backends (embedded; Redis + PostgreSQL started here):
#   1. device handshakes/s: POST /api/v1/device/auth (new connection) + WebSocket upgrade of
#      /ws/device with the token + 101 + close (tools/auth-bench handshake);
#   2. requests/s of an authenticated GET /api/v1/device/me (device token) against the same
#      hub's GET /healthz, same wrk connections and duration (target: >= 0.5x).
# Both hubs run at once (release, --loops 2, access log off, log level warning); each run
# measures embedded then networked, handshakes then the two wrk routes, whose order flips every
# run. Nothing is pinned: hub, redis-server, PostgreSQL, wrk and auth-bench share the 2 cores,
# so only same-run ratios mean much. Medians of RUNS are printed; raw results stay in $OUT.
#   tools/bench/identity-bench.sh [RUNS=3] [SECONDS=10] [CONNECTIONS=50]
# Environment: HANDSHAKE_CONCURRENCY (32), DEVICES (64), LOOPS (2), BACKENDS ("embedded networked"),
#   OUT (.build-bench/identity: results kept there).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/deps.sh
ensure_apt_packages $BUILD_PACKAGES wrk redis-server postgresql jq curl util-linux

runs=${1:-3}; secs=${2:-10}; conns=${3:-50}
hs_conc=${HANDSHAKE_CONCURRENCY:-32}; devices=${DEVICES:-64}; loops=${LOOPS:-2}
backends=${BACKENDS:-embedded networked}
out=${OUT:-.build-bench/identity}
mkdir -p "$out"; rm -f "$out"/*.json "$out"/*.txt "$out"/*.log
work=$(mktemp -d /tmp/identity-bench.XXXXXX)
chmod 755 "$work"

user_id=$(cat /proc/sys/kernel/random/uuid)

source "$(dirname "$0")/lib.sh"
redis_port=$((base_port + 1)); pg_port=$((base_port + 2))
declare -A hub_port=([embedded]=$((base_port + 3)) [networked]=$((base_port + 4)))
declare -A hub_pid=() token=()

cleanup() {
  set +e
  for b in "${!hub_pid[@]}"; do stop_pid "${hub_pid[$b]}"; done
  stop_stores
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "==> building (release): devicehub, auth-bench, hubctl" >&2
for p in devicehub auth-bench hubctl; do swift build -c release --product "$p" >/dev/null; done
bin=.build/release

if [[ " $backends " == *" networked "* ]]; then
  echo "==> redis-server on 127.0.0.1:$redis_port, PostgreSQL on 127.0.0.1:$pg_port (defaults: fsync, synchronous_commit on)" >&2
  start_stores
fi

start_hub() { # backend
  local b=$1 args=(--host 127.0.0.1 --port "${hub_port[$b]}" --loops "$loops" --no-access-log --log-level warning
    --admin-token "$admin_token" --supabase-jwt-secret "$jwt_secret"
    --requests-per-minute "$huge" --auth-failures-per-minute-per-ip "$huge")
  if [ "$b" = networked ]; then
    args+=(--redis-url "redis://127.0.0.1:$redis_port/0" --postgres-url "postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"
      --hash-key "$hash_key")
  else
    args+=(--data-dir "$work/embedded-data")
  fi
  "$bin/devicehub" "${args[@]}" >"$out/hub-$b.log" 2>&1 &
  hub_pid[$b]=$!
  wait_http "http://127.0.0.1:${hub_port[$b]}/readyz"
}

user_jwt=$("$bin/hubctl" mint-dev-jwt --secret "$jwt_secret" --sub "$user_id" --ttl 86400)
for b in $backends; do
  echo "==> $b: hub on 127.0.0.1:${hub_port[$b]}, setup ($devices devices)" >&2
  start_hub "$b"
  "$bin/auth-bench" setup --url "http://127.0.0.1:${hub_port[$b]}" --devices "$work/devices-$b.txt" \
    --admin-token "$admin_token" --user-jwt "$user_jwt" --user-id "$user_id" --count "$devices" >&2
  # wrk's token (the last device's): handshakes issue new tokens and revoke none, so it stays valid.
  token[$b]=$("$bin/auth-bench" token --url "http://127.0.0.1:${hub_port[$b]}" --devices "$work/devices-$b.txt" --index $((devices - 1)))
done

# utime + stime of the given pids, summed, in clock ticks
ticks() { local s=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$s"; }
hz=$(getconf CLK_TCK)
store_pids() { # the networked backend's server processes: redis-server, postmaster and its children
  [ "$1" = networked ] || return 0
  local pm; pm=$(head -1 "$pg_dir/data/postmaster.pid")
  echo "$redis_pid $pm $(pgrep -P "$pm" | tr '\n' ' ')"
}

handshake() { # backend run
  local b=$1 i=$2 sp; sp=$(store_pids "$b" | xargs | tr ' ' ',')
  "$bin/auth-bench" handshake --url "http://127.0.0.1:${hub_port[$b]}" --devices "$work/devices-$b.txt" \
    --concurrency "$hs_conc" --seconds "$secs" --server-pid "${hub_pid[$b]}" ${sp:+--store-pids "$sp"} \
    >"$out/handshake-$b-$i.json" 2>>"$out/auth-bench.log" \
    || { echo "handshake run $i on $b reported errors:" >&2; cat "$out/handshake-$b-$i.json" >&2; exit 1; }
  jq -r '"  \(.handshakes_per_second|floor) handshakes/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, hub \(.hub_cpu_us_per_handshake|floor) CPU-µs/handshake, errors \(.errors)"' \
    "$out/handshake-$b-$i.json" >&2
}

wrk_run() { # backend route run -> appends "rps p99_ms hub_us_per_req store_us_per_req" to $out/wrk-<b>-<route>.txt
  local b=$1 route=$2 i=$3 path hdr=() pids h0 s0 o rps reqs non2xx
  if [ "$route" = me ]; then path=/api/v1/device/me; hdr=(-H "Authorization: Bearer ${token[$b]}"); else path=/healthz; fi
  pids=$(store_pids "$b")
  h0=$(ticks "${hub_pid[$b]}"); s0=$(ticks $pids)
  o=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "${hdr[@]}" "http://127.0.0.1:${hub_port[$b]}$path")
  local h1 s1; h1=$(ticks "${hub_pid[$b]}"); s1=$(ticks $pids)
  echo "$o" >"$out/wrk-$b-$route-$i.log"
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$o"); non2xx=${non2xx:-0}
  if [ "$non2xx" != 0 ] || grep -q "Socket errors" <<<"$o"; then
    echo "wrk $path on $b: errors" >&2; echo "$o" >&2; exit 1
  fi
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$o")
  reqs=$(awk '/requests in/ {print $1}' <<<"$o")
  local p99; p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}' <<<"$o")
  awk -v rps="$rps" -v p99="$p99" -v n="$reqs" -v h=$((h1 - h0)) -v s=$((s1 - s0)) -v hz="$hz" \
    'BEGIN {printf "%s %s %.2f %.2f\n", rps, p99, h / hz * 1e6 / n, s / hz * 1e6 / n}' >>"$out/wrk-$b-$route.txt"
  echo "  GET $path: $(tail -1 "$out/wrk-$b-$route.txt" | awk '{printf "%d req/s, p99 %s ms, hub %s CPU-µs/request, stores %s", $1, $2, $3, $4}')" >&2
}

# Warm-up, not reported: the hub's PostgreSQL pool opens connections under load, and a backend
# that appears during a measured window would be missed by the store CPU reading.
for b in $backends; do
  "$bin/auth-bench" handshake --url "http://127.0.0.1:${hub_port[$b]}" --devices "$work/devices-$b.txt" \
    --concurrency "$hs_conc" --seconds 3 >/dev/null 2>>"$out/auth-bench.log" || { echo "warm-up on $b failed" >&2; exit 1; }
done

for i in $(seq "$runs"); do
  for b in $backends; do
    echo "==> run $i/$runs, $b" >&2
    handshake "$b" "$i"
    if [ $((i % 2)) = 1 ]; then wrk_run "$b" me "$i"; wrk_run "$b" healthz "$i"
    else wrk_run "$b" healthz "$i"; wrk_run "$b" me "$i"; fi
  done
done

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
hs_col() { for i in $(seq "$runs"); do jq -r ".$2" "$out/handshake-$1-$i.json"; done; }
wcol() { cut -d' ' -f"$3" "$out/wrk-$1-$2.txt"; }
{
  echo "Identity benchmark: $runs runs x ${secs}s, wrk -t1 -c$conns, handshake concurrency $hs_conc, $devices devices, hub --loops $loops"
  echo
  echo "| backend | handshakes/s (median) | p50 ms | p99 ms | hub CPU µs/handshake | store CPU µs/handshake | auth-bench CPU s per ${secs} s | errors (all runs) | runs: handshakes/s |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for b in $backends; do
    errs=$(hs_col "$b" errors | awk '{s+=$1} END {print s}')
    store=$(hs_col "$b" store_cpu_us_per_handshake | median)
    echo "| $b | $(hs_col "$b" handshakes_per_second | median | xargs printf '%.0f') | $(hs_col "$b" p50_ms | median | xargs printf '%.1f') | $(hs_col "$b" p99_ms | median | xargs printf '%.1f') | $(hs_col "$b" hub_cpu_us_per_handshake | median | xargs printf '%.0f') | $( [ "$store" = null ] && echo – || printf '%.0f' "$store") | $(hs_col "$b" client_cpu_seconds | median | xargs printf '%.1f') | $errs | $(hs_col "$b" handshakes_per_second | xargs printf '%.0f / ' | sed 's| / $||') |"
  done
  echo
  echo "| backend | GET /api/v1/device/me req/s | GET /healthz req/s | **ratio** (target >= 0.5) | hub CPU µs/req me / healthz | store CPU µs/req me | p99 ms me / healthz | runs: me / healthz |"
  echo "|---|---|---|---|---|---|---|---|"
  for b in $backends; do
    me=$(wcol "$b" me 1 | median); hz_=$(wcol "$b" healthz 1 | median)
    echo "| $b | $(printf '%.0f' "$me") | $(printf '%.0f' "$hz_") | **$(awk -v a="$me" -v c="$hz_" 'BEGIN {printf "%.2f", a/c}')** | $(wcol "$b" me 3 | median) / $(wcol "$b" healthz 3 | median) | $(wcol "$b" me 4 | median) | $(wcol "$b" me 2 | median) / $(wcol "$b" healthz 2 | median) | $(wcol "$b" me 1 | xargs printf '%.0f ' | xargs | tr ' ' '/') vs $(wcol "$b" healthz 1 | xargs printf '%.0f ' | xargs | tr ' ' '/') |"
  done
  echo
  echo "same-run ratios /me / /healthz per run:"
  for b in $backends; do
    echo "  $b: $(paste -d' ' <(wcol "$b" me 1) <(wcol "$b" healthz 1) | awk '{printf "%.2f ", $1/$2}')"
  done
} | tee "$out/summary.md"
