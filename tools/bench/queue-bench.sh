#!/usr/bin/env bash
# Command queue benchmark (issue 9), one run per backend (embedded; Redis + PostgreSQL started
# here), through the public API only (tools/queue-bench):
#   1. commands/s through propose → command.available → claim → result with DEVICES device
#      sockets on /ws/device (proposals: an API key with scope commands:propose, a kind the
#      org auto-approves, into each device's approved session; at most WINDOW commands in
#      flight over PROPOSERS keep-alive connections), against the bound the backend's durable
#      store sets:
#        PostgreSQL: pgbench write transactions/s (one single-row INSERT or UPDATE per
#          transaction, mix 1:2, on a table shaped like the command rows) at PGBENCH_CLIENTS
#          clients (default 10: the hub's PostgreSQL pool size), same server, / 3 durable
#          writes per command (insert, claim, result). The run also counts the server's own
#          transactions, tuples, WAL records and WAL syncs per command (pg_stat_database,
#          pg_stat_wal), the statements per command (pg_stat_statements) and Redis calls per
#          command (INFO commandstats), to check the 3 and see where the time goes.
#        SQLite: single-row write transactions/s in WAL mode with the hub's synchronous=NORMAL,
#          one connection on one thread, same mix, same disk (queue-bench sqlite-bound) / 3.
#      Target: ratio >= 0.5.
#   2. latency from sending POST /api/v1/customer/commands/:id/approve until the device's
#      socket receives command.available, DEVICES sockets connected, one command at a time:
#      one node (embedded; Redis + PostgreSQL node A), and across two nodes (devices on node
#      B, proposal and approval through node A). Targets: p99 < 2 ms one node, < 5 ms two.
# Hubs: release build, --loops LOOPS, access log off, log level warning, rate limits out of
# the way (10,000,000/min). PostgreSQL: server defaults (fsync, synchronous_commit on) plus
# pg_stat_statements. Nothing is pinned: the hub(s), redis-server, PostgreSQL and the client
# share the machine's cores; the machine's state (cores, load, idle %) is recorded in the
# results. Prints human lines and writes $OUT/summary.json (machine-readable) and summary.md.
# REDIS_CLUSTER=1: the networked hubs' hot state on a 3-master Redis Cluster started here
# (redis+cluster://) instead of the single Redis (which still runs, unused by the hubs).
#   tools/bench/queue-bench.sh [DEVICES=1000] [SECONDS=20]
# Environment: BACKENDS ("embedded networked"), LOOPS (2), WINDOW (128), PROPOSERS (16),
#   CLAIM_MAX (10), SAMPLES (2000), WARMUP_SAMPLES (100), PGBENCH_CLIENTS (10), CLIENT_LOOPS (1),
#   SKIP_BUILD=1, OUT (.build-bench/queue).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/deps.sh
ensure_apt_packages $BUILD_PACKAGES redis-server postgresql jq curl util-linux procps

devices=${1:-1000}; secs=${2:-20}
backends=${BACKENDS:-embedded networked}
loops=${LOOPS:-2}; window=${WINDOW:-128}; proposers=${PROPOSERS:-16}; claim_max=${CLAIM_MAX:-10}
samples=${SAMPLES:-2000}; warmup_samples=${WARMUP_SAMPLES:-100}; pg_clients=${PGBENCH_CLIENTS:-10}
client_loops=${CLIENT_LOOPS:-1}
out=${OUT:-.build-bench/queue}
mkdir -p "$out"; rm -f "$out"/*.json "$out"/*.txt "$out"/*.log "$out"/*.md
work=$(mktemp -d /tmp/queue-bench.XXXXXX)
chmod 755 "$work"

operator_id=$(cat /proc/sys/kernel/random/uuid)
approver_id=$(cat /proc/sys/kernel/random/uuid)

source "$(dirname "$0")/lib.sh"
redis_port=$((base_port + 1)); pg_port=$((base_port + 2))
port_embedded=$((base_port + 3)); port_a=$((base_port + 4)); port_b=$((base_port + 5))
cluster_ports=($((base_port + 7)) $((base_port + 8)) $((base_port + 9))); cluster_pids=()
declare -A hub_pid=()
redis_url="redis://127.0.0.1:$redis_port/0"
pg_url="postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"

cleanup() {
  set +e
  for k in "${!hub_pid[@]}"; do stop_pid "${hub_pid[$k]}"; done
  for p in "${cluster_pids[@]}"; do stop_pid "$p"; done
  stop_stores
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "==> building (release): devicehub, queue-bench, hubctl" >&2
  for p in devicehub queue-bench hubctl; do swift build -c release --product "$p" >/dev/null; done
fi
bin=.build/release
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

machine_json >"$out/machine-before.json"
echo "==> machine: $(jq -r '"\(.cores) cores (\(.cpu)), load \(.loadavg_1_5_15), idle \(.idle_percent_3s)% over 3 s, \(.mem_available_mib) MiB available"' "$out/machine-before.json")" >&2

start_networked_stores() {
  echo "==> redis-server on 127.0.0.1:$redis_port, PostgreSQL on 127.0.0.1:$pg_port (defaults: fsync, synchronous_commit on; pg_stat_statements)" >&2
  start_stores -c shared_preload_libraries=pg_stat_statements
  psql -X -q -d "$pg_url" -c "create extension if not exists pg_stat_statements" >/dev/null
}

operator_jwt=$("$bin/hubctl" mint-dev-jwt --secret "$jwt_secret" --sub "$operator_id" --ttl 86400)
approver_jwt=$("$bin/hubctl" mint-dev-jwt --secret "$jwt_secret" --sub "$approver_id" --ttl 86400)

setup() { # name url -> api key on stdout
  "$bin/queue-bench" setup --url "$2" --admin-token "$admin_token" --operator-jwt "$operator_jwt" --operator-id "$operator_id" \
    --approver-jwt "$approver_jwt" --approver-id "$approver_id" --count "$devices" --devices "$work/devices-$1.txt" \
    >"$out/setup-$1.json" 2>>"$out/queue-bench.log" || { echo "setup on $1 failed:" >&2; tail -5 "$out/queue-bench.log" >&2; exit 1; }
  jq -r .api_key "$out/setup-$1.json"
}

throughput() { # name url devices-file api-key result-file [extra args...]
  local name=$1 url=$2 file=$3 key=$4 result=$5; shift 5
  "$bin/queue-bench" throughput --url "$url" --devices "$file" --api-key "$key" --loops "$client_loops" \
    --window "$window" --proposers "$proposers" --claim-max "$claim_max" "$@" \
    >"$result" 2>>"$out/queue-bench.log" || { echo "throughput on $name reported errors:" >&2; cat "$result" >&2; exit 1; }
}

latency() { # label proposal-url device-url devices-file api-key result-file [extra args...]
  local label=$1 url=$2 durl=$3 file=$4 key=$5 result=$6; shift 6
  "$bin/queue-bench" latency --label "$label" --url "$url" --device-url "$durl" --devices "$file" --api-key "$key" \
    --approver-jwt "$approver_jwt" --samples "$samples" --warmup-samples "$warmup_samples" --claim-max "$claim_max" "$@" \
    >"$result" 2>>"$out/queue-bench.log" || { echo "latency ($label) reported errors:" >&2; cat "$result" >&2; exit 1; }
  jq -r '"  \(.label): approve sent → command.available p50 \(.available_p50_ms) ms, p99 \(.available_p99_ms) ms, max \(.available_max_ms) ms (\(.available_samples) samples); approve response p50 \(.approve_response_p50_ms) ms, p99 \(.approve_response_p99_ms) ms"' "$result" >&2
}

tp_line() { jq -r '"  \(.commands_per_second|floor) commands/s (\(.commands) in \(.seconds|.*10|floor/10) s), end-to-end p50 \(.end_to_end_p50_ms) ms p99 \(.end_to_end_p99_ms) ms, hub \(.hub_cpu_us_per_command|floor) CPU-µs/command, claims/command \(.claims_per_command)"' "$1" >&2; }

if [[ " $backends " == *" embedded "* ]]; then
  echo "==> embedded: hub on 127.0.0.1:$port_embedded, setup ($devices devices, each with an approved session)" >&2
  start_hub embedded "$port_embedded"
  url="http://127.0.0.1:$port_embedded"
  key=$(setup embedded "$url")
  echo "==> embedded bound: SQLite single-row write transactions/s, WAL, synchronous=NORMAL, on the data dir's disk" >&2
  "$bin/queue-bench" sqlite-bound --path "$work/bound.sqlite" --seconds 10 --synchronous normal >"$out/embedded-bound.json"
  "$bin/queue-bench" sqlite-bound --path "$work/bound.sqlite" --seconds 5 --synchronous full >"$out/embedded-bound-full.json"
  rm -f "$work"/bound.sqlite*
  jq -r '"  \(.write_transactions_per_second|floor) write tx/s (synchronous=\(.synchronous)) → bound \(.bound_commands_per_second|floor) commands/s"' \
    "$out/embedded-bound.json" "$out/embedded-bound-full.json" >&2
  echo "==> embedded: throughput (warm-up run 5 s, then ${secs} s)" >&2
  throughput embedded "$url" "$work/devices-embedded.txt" "$key" "$out/embedded-throughput-warmup.json" --seconds 5 --warmup 1
  sleep 2
  throughput embedded "$url" "$work/devices-embedded.txt" "$key" "$out/embedded-throughput.json" --seconds "$secs" \
    --hub-pids "${hub_pid[embedded]}"
  tp_line "$out/embedded-throughput.json"
  sleep 2
  echo "==> embedded: approval latency ($samples samples)" >&2
  latency embedded-one-node "$url" "$url" "$work/devices-embedded.txt" "$key" "$out/embedded-latency.json" --hub-pids "${hub_pid[embedded]}"
  stop_pid "${hub_pid[embedded]}"; unset 'hub_pid[embedded]'
fi

if [[ " $backends " == *" networked "* ]]; then
  start_networked_stores
  if [ -n "${REDIS_CLUSTER:-}" ]; then
    start_redis_cluster "${cluster_ports[@]}"
    echo "==> Redis Cluster: 3 masters on 127.0.0.1:${cluster_ports[*]}; the hubs use $cluster_url" >&2
    redis_url=$cluster_url
  fi
  echo "==> Redis + PostgreSQL: hubs A (127.0.0.1:$port_a) and B (127.0.0.1:$port_b), setup ($devices devices) through A" >&2
  start_hub a "$port_a" networked node-a
  start_hub b "$port_b" networked node-b
  url_a="http://127.0.0.1:$port_a"; url_b="http://127.0.0.1:$port_b"
  key=$(setup networked "$url_a")

  echo "==> PostgreSQL bound: pgbench, $pg_clients clients, single-row INSERT : UPDATE = 1 : 2 transactions, ${secs} s" >&2
  psql -X -q -d "$pg_url" >/dev/null <<'SQL'
drop table if exists bound;
create table bound (seq bigserial primary key, id uuid not null unique, device_id uuid not null, state text not null,
  args jsonb not null, attempts int not null default 0, lease_token uuid,
  created_at timestamptz not null default now(), updated_at timestamptz not null default now());
create index bound_device on bound (device_id, state);
create index bound_state on bound (state, seq);
insert into bound (id, device_id, state, args)
  select gen_random_uuid(), gen_random_uuid(), 'queued', '{"kind":"bench.auto","args":{"n":1}}' from generate_series(1, 10000);
vacuum analyze bound;
SQL
  cat >"$work/insert.sql" <<'SQL'
insert into bound (id, device_id, state, args) values (gen_random_uuid(), gen_random_uuid(), 'queued', '{"kind":"bench.auto","args":{"n":1}}');
SQL
  cat >"$work/update.sql" <<'SQL'
\set k random(1, 10000)
update bound set state = 'claimed', attempts = attempts + 1, lease_token = gen_random_uuid(), updated_at = now() where seq = :k;
SQL
  "$pg_bin/pgbench" -n -h 127.0.0.1 -p "$pg_port" -U postgres -M prepared -c "$pg_clients" -j 2 -T "$secs" \
    -f "$work/insert.sql@1" -f "$work/update.sql@2" postgres >"$out/pgbench.txt" 2>&1 \
    || { cat "$out/pgbench.txt" >&2; exit 1; }
  pg_tps=$(awk '/^tps = / {print $3; exit}' "$out/pgbench.txt")
  # For reference: the same with unnamed statements (parse + plan every time), which is how
  # the hub sends its statements (PQsendQueryParams); not the bound.
  "$pg_bin/pgbench" -n -h 127.0.0.1 -p "$pg_port" -U postgres -M extended -c "$pg_clients" -j 2 -T 10 \
    -f "$work/insert.sql@1" -f "$work/update.sql@2" postgres >"$out/pgbench-extended.txt" 2>&1 || true
  pg_tps_ext=$(awk '/^tps = / {print $3; exit}' "$out/pgbench-extended.txt")
  jq -n --argjson tps "$pg_tps" --argjson ext "${pg_tps_ext:-null}" --argjson c "$pg_clients" --argjson s "$secs" \
    '{mode: "pgbench-bound", protocol: "prepared", clients: $c, seconds: $s, write_transactions_per_second: $tps, writes_per_command: 3,
      bound_commands_per_second: ($tps / 3), unnamed_statements_write_transactions_per_second: $ext}' \
    >"$out/networked-bound.json"
  psql -X -q -d "$pg_url" -c "drop table bound" >/dev/null
  # The floor under any durable write's latency on this disk: one 8 kB write + fdatasync, as
  # PostgreSQL's WAL flush does at each commit (pg_test_fsync, in the data directory's file system).
  "$pg_bin/pg_test_fsync" -s 3 -f "$pg_dir/fsync-test" >"$out/pg_test_fsync.txt" 2>&1 || true
  fsync_us=$(awk '/fdatasync/ && /usecs\/op/ {print $(NF-1); exit}' "$out/pg_test_fsync.txt")
  jq --argjson us "${fsync_us:-null}" '. + {fdatasync_us: $us}' "$out/networked-bound.json" >"$work/nb.json" && mv "$work/nb.json" "$out/networked-bound.json"
  jq -r '"  \(.write_transactions_per_second|floor) write tx/s at \(.clients) clients → bound \(.bound_commands_per_second|floor) commands/s (unnamed statements: \(.unnamed_statements_write_transactions_per_second) tx/s); one 8 kB write + fdatasync: \(.fdatasync_us) µs"' "$out/networked-bound.json" >&2

  echo "==> Redis + PostgreSQL: throughput through A (warm-up run 5 s, then ${secs} s)" >&2
  throughput networked "$url_a" "$work/devices-networked.txt" "$key" "$out/networked-throughput-warmup.json" --seconds 5 --warmup 1
  sleep 2
  throughput networked "$url_a" "$work/devices-networked.txt" "$key" "$out/networked-throughput.json" --seconds "$secs" \
    --hub-pids "${hub_pid[a]}" --store-pids "$(store_pids)" --postgres-url "$pg_url" --redis-url "$redis_url"
  tp_line "$out/networked-throughput.json"
  jq -r '"  PostgreSQL per command: \(.postgres.xact_commit_per_command) transactions, \(.postgres.tup_inserted_per_command) rows inserted, \(.postgres.tup_updated_per_command) updated, \(.postgres.wal_records_per_command) WAL records, \(.postgres.wal_sync_per_command) WAL syncs"' \
    "$out/networked-throughput.json" >&2
  sleep 2
  echo "==> Redis + PostgreSQL: approval latency ($samples samples), one node (A), then two nodes (devices on B, approvals through A)" >&2
  latency networked-one-node "$url_a" "$url_a" "$work/devices-networked.txt" "$key" "$out/networked-latency-one-node.json" \
    --hub-pids "${hub_pid[a]}" --postgres-url "$pg_url"
  sleep 3   # the closed sockets' presence on A is gone before the devices reconnect on B
  latency networked-two-node "$url_a" "$url_b" "$work/devices-networked.txt" "$key" "$out/networked-latency-two-node.json" \
    --hub-pids "${hub_pid[a]},${hub_pid[b]}"
fi
machine_json >"$out/machine-after.json"

# Summary: one JSON document, and the same figures as lines.
read_or_null() { [ -f "$1" ] && cat "$1" || echo null; }
jq -n --arg commit "$commit" --argjson devices "$devices" --argjson secs "$secs" --argjson loops "$loops" \
  --argjson window "$window" --argjson proposers "$proposers" --argjson claim_max "$claim_max" \
  --argjson before "$(cat "$out/machine-before.json")" --argjson after "$(cat "$out/machine-after.json")" \
  --argjson eb "$(read_or_null "$out/embedded-bound.json")" --argjson ebf "$(read_or_null "$out/embedded-bound-full.json")" \
  --argjson et "$(read_or_null "$out/embedded-throughput.json")" --argjson el "$(read_or_null "$out/embedded-latency.json")" \
  --argjson nb "$(read_or_null "$out/networked-bound.json")" --argjson nt "$(read_or_null "$out/networked-throughput.json")" \
  --argjson n1 "$(read_or_null "$out/networked-latency-one-node.json")" --argjson n2 "$(read_or_null "$out/networked-latency-two-node.json")" '
  def ratio(t; b): if t == null or b == null then null else (t.commands_per_second / b.bound_commands_per_second) end;
  def lat(l; target): if l == null then null else {p50_ms: l.available_p50_ms, p99_ms: l.available_p99_ms, max_ms: l.available_max_ms,
    samples: l.available_samples, target_p99_ms: target, met: (l.available_p99_ms < target)} end;
  {commit: $commit, devices: $devices, seconds: $secs, hub_loops: $loops, window: $window, proposers: $proposers, claim_max: $claim_max,
   machine_before: $before, machine_after: $after,
   embedded: (if $et == null then null else {
     throughput_commands_per_second: $et.commands_per_second, bound: $eb, bound_synchronous_full: $ebf,
     ratio: ratio($et; $eb), ratio_target: 0.5, ratio_met: (ratio($et; $eb) >= 0.5),
     latency_one_node: lat($el; 2), throughput: $et, latency: $el} end),
   networked: (if $nt == null then null else {
     throughput_commands_per_second: $nt.commands_per_second, bound: $nb,
     ratio: ratio($nt; $nb), ratio_target: 0.5, ratio_met: (ratio($nt; $nb) >= 0.5),
     postgres_transactions_per_command: $nt.postgres.xact_commit_per_command,
     latency_one_node: lat($n1; 2), latency_two_node: lat($n2; 5),
     throughput: $nt, latency_one_node_raw: $n1, latency_two_node_raw: $n2} end)}' >"$out/summary.json"

{
  echo "Command queue benchmark ($commit): $devices devices, ${secs} s windows, hub --loops $loops, window $window, $proposers proposer connections, claim max $claim_max"
  jq -r '.machine_before | "machine before: \(.cores) cores (\(.cpu)), load \(.loadavg_1_5_15), idle \(.idle_percent_3s)%, \(.mem_available_mib) MiB available; busiest: \(.top_processes_pcpu)"' "$out/summary.json"
  jq -r '.machine_after | "machine after:  load \(.loadavg_1_5_15), idle \(.idle_percent_3s)%"' "$out/summary.json"
  jq -r 'def f: if . == null then "–" else (.*100|round/100|tostring) end;
    (if .embedded then .embedded | "embedded:  \(.throughput_commands_per_second|floor) commands/s vs SQLite bound \(.bound.bound_commands_per_second|floor) (\(.bound.write_transactions_per_second|floor) write tx/s / 3) → ratio \(.ratio|f) (target ≥ 0.5: \(if .ratio_met then "met" else "MISSED" end)); approval → command.available p50 \(.latency_one_node.p50_ms|f) ms, p99 \(.latency_one_node.p99_ms|f) ms (target < 2 ms: \(if .latency_one_node.met then "met" else "MISSED" end))" else empty end),
    (if .networked then .networked | "networked: \(.throughput_commands_per_second|floor) commands/s vs pgbench bound \(.bound.bound_commands_per_second|floor) (\(.bound.write_transactions_per_second|floor) write tx/s at \(.bound.clients) clients / 3) → ratio \(.ratio|f) (target ≥ 0.5: \(if .ratio_met then "met" else "MISSED" end)); PostgreSQL transactions per command \(.postgres_transactions_per_command|f)\n           approval → command.available one node p50 \(.latency_one_node.p50_ms|f) ms, p99 \(.latency_one_node.p99_ms|f) ms (target < 2 ms: \(if .latency_one_node.met then "met" else "MISSED" end); one fdatasync on this disk: \(.bound.fdatasync_us) µs); two nodes p50 \(.latency_two_node.p50_ms|f) ms, p99 \(.latency_two_node.p99_ms|f) ms (target < 5 ms: \(if .latency_two_node.met then "met" else "MISSED" end))" else empty end)' "$out/summary.json"
} | tee "$out/summary.md"
echo "machine-readable: $out/summary.json"
