#!/usr/bin/env bash
# Rooms benchmark (issue 10), one invocation, through the public API only (tools/room-bench):
# devices on /ws/device stream events about the command they hold into their session rooms
# (SOURCE=logs, the default: `logs` batches of BATCH (50) lines → one `execution.log` per line,
# as an agent ships output; SOURCE=log: one `log` line per message; SOURCE=progress: `progress`
# → `command.progress`), portals on /ws/customer (the operator's JWT) subscribe to the rooms and
# count what arrives.
#   1. fan-out: 1 device → 1 room with SUBSCRIBERS portals, as fast as the hub takes it (at
#      most 32 (progress) / 16 (log) messages unanswered, and DELIVERY_WINDOW events not yet
#      received by the room's first portal): deliveries/s at the portals and hub CPU per
#      delivery; beside the engine's raw fan-out in the same invocation (ws-echo --broadcast,
#      1 publisher on /pub → SUBSCRIBERS on /, ws-load fanout, message size = the measured
#      event frame size, same window, same hub loops) → ratio (target ≥ 0.8).
#   2. DEVICES devices, each into its own room with 1 portal, as fast as each device's windows
#      allow: deliveries/s and hub CPU µs per delivery, one hub.
#   3. latency device → portal (the device's monotonic clock in each event, read by the portal
#      on the same host), at LATENCY_RATE events/s offered over LATENCY_DEVICES devices, one
#      portal per room: one node, and two nodes (devices on A, portals on B). Target: p99 < 5 ms
#      across nodes.
#   4. the load of (2) over two hubs A and B (device i on node i % 2); each room's portal on
#      the OTHER node (SPLIT=other, default) or on its device's node (SPLIT=same) → deliveries/s
#      against (2)'s one node (target ≥ 1.6).
#   5. REDIS_CLUSTER=1 (or REDIS_CLUSTER_URL=redis+cluster://HOST:PORT of a running cluster):
#      (1)–(4) again with both hubs on a 3-master Redis Cluster the script starts (same
#      PostgreSQL), beside single Redis; skipped with a message when the hub binary does not
#      take a cluster URL (`$cluster_scheme` in its --help).
# Stores: redis-server (no persistence) and PostgreSQL with the server's durability defaults,
# started here, for all; BACKENDS="networked embedded" adds (1)–(3) on the embedded store (one
# node). Hubs: --loops LOOPS, access log off, log level warning, rate limits out of the way.
# Nothing is pinned: hubs, stores and the client share the machine's cores (2 on the machine
# this was written on) — the summary says how many there were.
#   tools/bench/room-bench.sh [SUBSCRIBERS=1000] [DEVICES=1000] [SECONDS=10]
# Environment: STEPS ("1 2 3 4": which of the above), SOURCE (progress), BACKENDS (networked), LOOPS (2), CLIENT_LOOPS (1),
#   DELIVERY_WINDOW (256), PAYLOAD_BYTES (0), LATENCY_RATE (10000), LATENCY_DEVICES (100),
#   WARMUP (3), SPLIT (other), REDIS_CLUSTER, REDIS_CLUSTER_URL, BUILD (release; debug for a
#   quick check), HUB_BIN (another devicehub binary to measure, e.g. a branch's), SKIP_BUILD=1,
#   OUT (.build-bench/room).
# Writes $OUT/summary.json and $OUT/summary.md (a markdown table); raw JSON per step beside.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/deps.sh
ensure_apt_packages $BUILD_PACKAGES redis-server postgresql jq curl procps

subscribers=${1:-1000}; devices=${2:-1000}; secs=${3:-10}
source_kind=${SOURCE:-logs}
batch=${BATCH:-50}
# Device sockets may send as many lines as the bench offers (the hub's default is 500/s).
export HUB_EXTRA_ARGS="${HUB_EXTRA_ARGS:---device-log-rate 1000000}"
backends=${BACKENDS:-networked}
loops=${LOOPS:-2}; client_loops=${CLIENT_LOOPS:-1}
window=${DELIVERY_WINDOW:-256}; payload=${PAYLOAD_BYTES:-0}; warmup=${WARMUP:-3}
latency_rate=${LATENCY_RATE:-10000}; latency_devices=${LATENCY_DEVICES:-100}
split=${SPLIT:-other}
steps=" ${STEPS:-1 2 3 4} "
build=${BUILD:-release}
out=${OUT:-.build-bench/room}
# The hub takes a Redis Cluster as a --redis-url with this scheme (the seed node's address).
cluster_scheme=redis+cluster
cluster_url=${REDIS_CLUSTER_URL:-}
[ "$split" = other ] && shift_split=1 || shift_split=0
mkdir -p "$out"; rm -f "$out"/*.json "$out"/*.log "$out"/*.md
work=$(mktemp -d /tmp/room-bench.XXXXXX)
chmod 755 "$work"
operator_id=$(cat /proc/sys/kernel/random/uuid)
approver_id=$(cat /proc/sys/kernel/random/uuid)

source "$(dirname "$0")/lib.sh"
redis_port=$((base_port + 1)); pg_port=$((base_port + 2))
port_embedded=$((base_port + 3)); port_a=$((base_port + 4)); port_b=$((base_port + 5)); port_raw=$((base_port + 6))
cluster_ports=($((base_port + 7)) $((base_port + 8)) $((base_port + 9)))
# (Their bus ports are port + 30, below the ephemeral range: the default port + 10,000 lands in
# it, where the benchmark's thousands of client sockets may hold it.)
declare -A hub_pid=()
raw_pid=""; cluster_pids=()
redis_url="redis://127.0.0.1:$redis_port/0"
pg_url="postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"

cleanup() {
  set +e
  for k in "${!hub_pid[@]}"; do stop_pid "${hub_pid[$k]}"; done
  stop_pid "$raw_pid"
  for p in "${cluster_pids[@]}"; do stop_pid "$p"; done
  stop_stores
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$build" = release ]; then bin=.build/release; flags=(-c release); else bin=.build/debug; flags=(); fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "==> building ($build): devicehub, room-bench, hubctl, ws-echo, ws-load" >&2
  for p in devicehub room-bench hubctl ws-echo ws-load; do swift build "${flags[@]}" --product "$p" >/dev/null; done
fi
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "${HUB_BIN:-}" ]; then
  # start_hub runs $bin/devicehub: a directory of links to this build's tools and HUB_BIN.
  mkdir -p "$work/bin"
  for t in room-bench hubctl ws-echo ws-load; do ln -s "$PWD/$bin/$t" "$work/bin/$t"; done
  ln -s "$(realpath "$HUB_BIN")" "$work/bin/devicehub"
  bin=$work/bin; commit="$commit, hub $HUB_BIN"
fi
machine_json >"$out/machine-before.json"
echo "==> machine: $(jq -r '"\(.cores) cores (\(.cpu)), load \(.loadavg_1_5_15), idle \(.idle_percent_3s)% over 3 s, \(.mem_available_mib) MiB available"' "$out/machine-before.json")" >&2
echo "    hubs, stores and the client share these cores; nothing is pinned" >&2

operator_jwt=$("$bin/hubctl" mint-dev-jwt --secret "$jwt_secret" --sub "$operator_id" --ttl 86400)
approver_jwt=$("$bin/hubctl" mint-dev-jwt --secret "$jwt_secret" --sub "$approver_id" --ttl 86400)
setup_count=$(( devices > latency_devices ? devices : latency_devices ))

setup() { # name url -> api key on stdout
  "$bin/room-bench" setup --url "$2" --admin-token "$admin_token" --operator-jwt "$operator_jwt" --operator-id "$operator_id" \
    --approver-jwt "$approver_jwt" --approver-id "$approver_id" --count "$setup_count" --devices "$work/devices-$1.txt" \
    >"$out/setup-$1.json" 2>>"$out/room-bench.log" || { echo "setup on $1 failed:" >&2; tail -5 "$out/room-bench.log" >&2; exit 1; }
  jq -r .api_key "$out/setup-$1.json"
}

# One room-bench stream run; a run that reports errors is kept (its JSON says which) and
# the invocation goes on, so one failed step does not lose the others.
stream() { # result-file devices-file api-key [room-bench stream args...]
  local result=$1 file=$2 key=$3; shift 3
  echo "  $(basename "$result" .json): room-bench stream $*" >>"$out/room-bench.log"
  "$bin/room-bench" stream --devices "$file" --api-key "$key" --user-jwt "$operator_jwt" --source "$source_kind" --batch "$batch" \
    --payload-bytes "$payload" --delivery-window "$window" --loops "$client_loops" --seconds "$secs" --warmup "$warmup" "$@" \
    >"$result" 2>>"$out/room-bench.log" \
    || echo "  !! $(basename "$result" .json) reported errors: $(jq -c '.first_errors' "$result" 2>/dev/null || tail -3 "$out/room-bench.log")" >&2
  [ -s "$result" ] || echo null >"$result"
  jq -r '"  \(.label): \(.deliveries_per_second // 0 | floor) deliveries/s (\(.events_accepted_per_second // 0 | floor) events/s in, \(.subscribers) portals), hub \(.hub_cpu_us_per_delivery // "–") CPU-µs/delivery, latency p50 \(.latency_p50_ms) ms p99 \(.latency_p99_ms) ms; refused rate_limited \(.events_refused_rate_limited) unavailable \(.events_refused_unavailable), skipped \(.events_skipped_window_blocked); errors \(.errors)"' "$result" >&2 || true
  sleep 1   # the closed sockets' presence and room subscriptions settle before the next step
}

# The engine's raw fan-out: ws-echo --broadcast (same loops as the hubs), SUBSCRIBERS on /,
# one publisher on /pub, messages of the room events' frame size.
raw_fanout() { # size result-file
  local size=$1 result=$2
  "$bin/ws-echo" --host 127.0.0.1 --port "$port_raw" --loops "$loops" --log-level error --broadcast >"$out/ws-echo.log" 2>&1 &
  raw_pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port_raw") 2>/dev/null && break; sleep 0.1; done
  "$bin/ws-load" fanout --url "ws://127.0.0.1:$port_raw" --loops "$client_loops" --subscribers "$subscribers" --size "$size" \
    --seconds "$secs" --warmup "$warmup" --window "$window" --server-pid "$raw_pid" >"$result" 2>>"$out/room-bench.log" \
    || echo "  !! raw fan-out reported problems: $(jq -c .first_problems "$result" 2>/dev/null)" >&2
  stop_pid "$raw_pid"; raw_pid=""
  jq -r '"  engine raw fan-out (ws-echo --broadcast): \(.deliveries_per_second | floor) deliveries/s, \(.deliveries_per_server_cpu_second | floor) per server-CPU-s, \(.size) B messages"' "$result" >&2
}

# (1)-(3) or (1)-(4) on one backend; files prefixed with the backend's name.
room_runs() { # name url-a [url-b pids-a pids-b]
  local name=$1 a=$2 b=${3:-} pa=${4:-} pb=${5:-}
  local file="$work/devices-$name.txt" key; key=$(cat "$work/key-$name")
  # The stores' CPU beside the hubs' (networked: redis-server(s), PostgreSQL's processes).
  local sp=""
  if [ "$name" != embedded ]; then sp=$(store_pids); [ ${#cluster_pids[@]} -eq 0 ] || sp="$sp,$(IFS=,; echo "${cluster_pids[*]}")"; fi
  if [[ $steps == *" 1 "* ]]; then
    echo "==> $name (1) fan-out: 1 device → 1 room × $subscribers portals" >&2
    stream "$out/$name-fanout.json" "$file" "$key" --label "$name-fanout" --count 1 --subscribers-per-room "$subscribers" \
      --device-urls "$a" --hub-pids "$pa" --store-pids "$sp"
    if [ ! -f "$out/raw-fanout.json" ]; then
      local size; size=$(jq -r '.event_frame_bytes // 300 | floor' "$out/$name-fanout.json")
      raw_fanout "$size" "$out/raw-fanout.json"
    fi
  fi
  if [[ $steps == *" 2 "* || $steps == *" 4 "* ]]; then
    echo "==> $name (2) $devices devices → own rooms × 1 portal, one node" >&2
    stream "$out/$name-rooms-one-node.json" "$file" "$key" --label "$name-rooms-one-node" --count "$devices" --device-urls "$a" --hub-pids "$pa" --store-pids "$sp"
  fi
  if [[ $steps == *" 3 "* ]]; then
    echo "==> $name (3) latency at $latency_rate events/s over $latency_devices devices, one node" >&2
    stream "$out/$name-latency-one-node.json" "$file" "$key" --label "$name-latency-one-node" --count "$latency_devices" \
      --rate "$latency_rate" --device-urls "$a" --hub-pids "$pa"
    if [ -n "$b" ]; then
      echo "==> $name (3) latency, two nodes: devices on A, portals on B" >&2
      stream "$out/$name-latency-two-node.json" "$file" "$key" --label "$name-latency-two-node" --count "$latency_devices" \
        --rate "$latency_rate" --device-urls "$a" --subscriber-urls "$b" --hub-pids "$pa,$pb"
    fi
  fi
  if [[ $steps == *" 4 "* && -n $b ]]; then
    echo "==> $name (4) $devices devices over A and B, each room's portal on the $split node" >&2
    stream "$out/$name-rooms-two-node.json" "$file" "$key" --label "$name-rooms-two-node-$split" --count "$devices" \
      --device-urls "$a,$b" --subscriber-urls "$a,$b" --subscriber-shift "$shift_split" --hub-pids "$pa,$pb" --store-pids "$sp"
  fi
}

if [[ " $backends " == *" networked "* ]]; then
  echo "==> redis-server on 127.0.0.1:$redis_port, PostgreSQL on 127.0.0.1:$pg_port (server defaults: fsync, synchronous_commit on)" >&2
  start_stores
  start_hub a "$port_a" networked node-a
  start_hub b "$port_b" networked node-b
  url_a="http://127.0.0.1:$port_a"; url_b="http://127.0.0.1:$port_b"
  echo "==> setup through A: $setup_count devices with approved sessions" >&2
  setup networked "$url_a" >"$work/key-networked"
  room_runs networked "$url_a" "$url_b" "${hub_pid[a]}" "${hub_pid[b]}"

  if [ -n "${REDIS_CLUSTER:-}" ] || [ -n "$cluster_url" ]; then
    if ! "$bin/devicehub" --help 2>&1 | grep -q "$cluster_scheme"; then
      echo "==> (5) Redis Cluster: SKIPPED — this devicehub does not take a $cluster_scheme:// --redis-url (no cluster support in the binary)" >&2
      echo '{"skipped": "the hub binary does not take a redis+cluster:// URL"}' >"$out/cluster.json"
    else
      if [ -z "$cluster_url" ]; then
        echo "==> (5) Redis Cluster: 3 masters on 127.0.0.1:${cluster_ports[*]}" >&2
        start_redis_cluster "${cluster_ports[@]}"
      fi
      echo "==> (5) hubs A and B on $cluster_url (same PostgreSQL)" >&2
      stop_pid "${hub_pid[a]}"; stop_pid "${hub_pid[b]}"; unset 'hub_pid[a]' 'hub_pid[b]'
      single_redis_url=$redis_url; redis_url=$cluster_url
      start_hub cluster-a "$port_a" networked node-a
      start_hub cluster-b "$port_b" networked node-b
      redis_url=$single_redis_url
      cp "$work/devices-networked.txt" "$work/devices-cluster.txt"; cp "$work/key-networked" "$work/key-cluster"
      room_runs cluster "$url_a" "$url_b" "${hub_pid[cluster-a]}" "${hub_pid[cluster-b]}"
    fi
  fi
  for k in "${!hub_pid[@]}"; do stop_pid "${hub_pid[$k]}"; unset "hub_pid[$k]"; done
fi

if [[ " $backends " == *" embedded "* ]]; then
  echo "==> embedded store: one hub on 127.0.0.1:$port_embedded, setup ($setup_count devices)" >&2
  start_hub embedded "$port_embedded"
  setup embedded "http://127.0.0.1:$port_embedded" >"$work/key-embedded"
  room_runs embedded "http://127.0.0.1:$port_embedded" "" "${hub_pid[embedded]}"
  stop_pid "${hub_pid[embedded]}"; unset 'hub_pid[embedded]'
fi
machine_json >"$out/machine-after.json"

# Summary: one JSON document and a markdown table.
read_or_null() { [ -f "$1" ] && cat "$1" || echo null; }
backend_json() { # name
  jq -n --argjson f "$(read_or_null "$out/$1-fanout.json")" --argjson raw "$(read_or_null "$out/raw-fanout.json")" \
    --argjson r1 "$(read_or_null "$out/$1-rooms-one-node.json")" --argjson r2 "$(read_or_null "$out/$1-rooms-two-node.json")" \
    --argjson l1 "$(read_or_null "$out/$1-latency-one-node.json")" --argjson l2 "$(read_or_null "$out/$1-latency-two-node.json")" '
    def lat(l): if l == null then null else {p50_ms: l.latency_p50_ms, p99_ms: l.latency_p99_ms, max_ms: l.latency_max_ms,
      samples: l.latency_samples, offered_events_per_second: l.offered_events_per_second,
      achieved_events_per_second: l.events_accepted_per_second, errors: l.errors} end;
    if [$f, $r1, $r2, $l1, $l2] | all(. == null) then null else {
      fanout: (if $f == null then null else {deliveries_per_second: $f.deliveries_per_second, events_per_second: $f.events_accepted_per_second,
        hub_cpu_us_per_delivery: $f.hub_cpu_us_per_delivery, deliveries_per_hub_cpu_second: $f.deliveries_per_hub_cpu_second,
        event_frame_bytes: $f.event_frame_bytes, subscribers: $f.subscribers, errors: $f.errors,
        raw_deliveries_per_second: $raw.deliveries_per_second, raw_deliveries_per_server_cpu_second: $raw.deliveries_per_server_cpu_second,
        ratio: (if $raw == null or $raw.deliveries_per_second == 0 then null else $f.deliveries_per_second / $raw.deliveries_per_second end),
        ratio_per_cpu: (if $raw == null or $raw.deliveries_per_server_cpu_second == null or $f.deliveries_per_hub_cpu_second == null then null
                        else $f.deliveries_per_hub_cpu_second / $raw.deliveries_per_server_cpu_second end),
        ratio_target: 0.8} end),
      rooms_one_node: (if $r1 == null then null else {deliveries_per_second: $r1.deliveries_per_second, hub_cpu_us_per_delivery: $r1.hub_cpu_us_per_delivery,
        devices: $r1.devices, errors: $r1.errors} end),
      latency_one_node: lat($l1), latency_two_node: lat($l2),
      latency_two_node_target_p99_ms: 5,
      rooms_two_node: (if $r2 == null then null else {deliveries_per_second: $r2.deliveries_per_second, hub_cpu_us_per_delivery: $r2.hub_cpu_us_per_delivery,
        split: $r2.label, errors: $r2.errors,
        ratio: (if $r1 == null or $r1.deliveries_per_second == 0 then null else $r2.deliveries_per_second / $r1.deliveries_per_second end),
        ratio_target: 1.6} end),
      raw: {fanout: $f, raw_fanout: $raw, rooms_one_node: $r1, rooms_two_node: $r2, latency_one_node: $l1, latency_two_node: $l2}} end'
}
jq -n --arg commit "$commit" --arg source "$source_kind" --argjson subscribers "$subscribers" --argjson devices "$devices" \
  --argjson secs "$secs" --argjson loops "$loops" --argjson client_loops "$client_loops" --argjson window "$window" --arg split "$split" \
  --argjson latency_rate "$latency_rate" --argjson latency_devices "$latency_devices" --arg build "$build" \
  --argjson before "$(cat "$out/machine-before.json")" --argjson after "$(cat "$out/machine-after.json")" \
  --argjson networked "$(backend_json networked)" --argjson cluster "$(backend_json cluster)" --argjson embedded "$(backend_json embedded)" \
  --argjson cluster_note "$(read_or_null "$out/cluster.json")" '
  {commit: $commit, build: $build, source: $source, subscribers: $subscribers, devices: $devices, seconds: $secs, hub_loops: $loops,
   client_loops: $client_loops, delivery_window: $window, split: $split, latency_rate: $latency_rate, latency_devices: $latency_devices,
   cores: $before.cores, cores_note: "hubs, stores and the client share these cores (nothing pinned)",
   machine_before: $before, machine_after: $after, networked: $networked, cluster: ($cluster // $cluster_note), embedded: $embedded}' >"$out/summary.json"

{
  echo "Rooms benchmark ($commit, $build build): source $source_kind, fan-out $subscribers portals, $devices devices, ${secs} s windows, hub --loops $loops, client loops $client_loops, delivery window $window"
  jq -r '.machine_before | "machine: \(.cores) cores (\(.cpu)) shared by the hub(s), Redis, PostgreSQL and the client (nothing pinned); load before \(.loadavg_1_5_15), idle \(.idle_percent_3s)%"' "$out/summary.json"
  echo
  echo "| store | (1) fan-out deliveries/s | raw ws-echo | ratio (≥ 0.8) | hub µs/delivery (1) | (2) deliveries/s, one node | hub µs/delivery (2) | (3) p50 / p99 one node | (3) p50 / p99 two nodes (p99 < 5 ms) | (4) deliveries/s, two nodes | ratio (≥ 1.6) |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  jq -r 'def f: if . == null then "–" else (.*100|round/100|tostring) end; def i: if . == null then "–" else (floor|tostring) end;
    ["networked", "cluster", "embedded"][] as $k | .[$k] | select(. != null and has("fanout")) |
    "| \($k) | \(.fanout.deliveries_per_second|i) | \(.fanout.raw_deliveries_per_second|i) | \(.fanout.ratio|f) | \(.fanout.hub_cpu_us_per_delivery|f) | \(.rooms_one_node.deliveries_per_second|i) | \(.rooms_one_node.hub_cpu_us_per_delivery|f) | \(.latency_one_node.p50_ms|f) / \(.latency_one_node.p99_ms|f) | \(.latency_two_node.p50_ms|f) / \(.latency_two_node.p99_ms|f) | \(.rooms_two_node.deliveries_per_second|i) | \(.rooms_two_node.ratio|f) |"' "$out/summary.json"
  echo
  jq -r 'if .cluster.skipped then "(5) Redis Cluster: skipped: \(.cluster.skipped)" else empty end' "$out/summary.json"
  jq -r '"(4) split: each room'"'"'s portal on the \(.split) node; (3) offered \(.latency_rate) events/s over \(.latency_devices) devices, achieved: " +
    ([(.networked, .cluster, .embedded) | select(. != null and .latency_one_node != null) | "\(.latency_one_node.achieved_events_per_second // 0|floor) / \(.latency_two_node.achieved_events_per_second | if . == null then "–" else floor end)"] | join(", "))' "$out/summary.json"
} | tee "$out/summary.md"
echo "machine-readable: $out/summary.json" >&2
