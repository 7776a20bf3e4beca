# Shared by the benchmark scripts (source it after setting `work`, `pg_port`, `redis_port`):
# the run's throw-away credentials, stopping processes, waiting for HTTP, starting
# redis-server and PostgreSQL (as the postgres user, with the server's durability defaults),
# starting hubs, and the machine's state.

# Credentials of this run only (loopback, thrown away with $work).
admin_token=bench-admin-$(openssl rand -hex 16)
jwt_secret=$(openssl rand -hex 32)
hash_key=$(openssl rand -hex 32)
# 10,000,000 per minute is the most a RateLimit accepts (RateLimit.validate): every request
# still goes through the limiters' counters, none is refused.
huge=10000000

redis_pid=""; pg_dir="$work/pg"; pg_bin=""

# The first of the run's ports (each script takes a few after it): below the kernel's
# ephemeral range (32768 and up), so a client connection's local port never takes a port a
# server of the run is about to bind (a run once failed with "Address already in use" so).
base_port=$((20000 + $$ % 12000))

stop_pid() { # pid: SIGTERM, then SIGKILL after 10 s
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

stop_stores() {
  stop_pid "$redis_pid"
  if [ -n "$pg_bin" ] && [ -f "$pg_dir/data/postmaster.pid" ]; then
    timeout 30 runuser -u postgres -- "$pg_bin/pg_ctl" stop -D "$pg_dir/data" -m fast -w >/dev/null 2>&1 \
      || kill -9 "$(head -1 "$pg_dir/data/postmaster.pid")" 2>/dev/null || true
  fi
}

wait_http() { # url: up to 60 s
  for _ in $(seq 600); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; return 1
}

# redis-server (no persistence) on $redis_port and PostgreSQL on $pg_port, as the tests start
# them (Tests/HubTestSupport) but with the server's durability defaults (no fsync=off, no
# synchronous_commit=off). Extra arguments are more `-c name=value` server settings.
start_stores() {
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
  redis_pid=$!
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$pg_bin/initdb" ] || { echo "PostgreSQL server binaries not found under /usr/lib/postgresql" >&2; exit 1; }
  mkdir -p "$pg_dir"; chown postgres:postgres "$pg_dir"
  runuser -u postgres -- "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1
  runuser -u postgres -- "$pg_bin/pg_ctl" start -D "$pg_dir/data" -w -t 30 -l "$pg_dir/server.log" \
    -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c max_connections=200 $*" >/dev/null \
    || { tail -20 "$pg_dir/server.log" >&2; exit 1; }
  for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
}

# The machine's state: cores, CPU, memory, load, and idle % over 3 s right before the runs.
machine_json() {
  local idle vm
  vm=$(vmstat 1 4 | tail -3)
  idle=$(awk '{s+=$15} END {printf "%.0f", s/NR}' <<<"$vm")
  jq -n --arg cpu "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" --argjson cores "$(nproc)" \
    --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --argjson idle "$idle" \
    --argjson mem "$(free -m | awk '/^Mem:/ {print $2}')" --argjson avail "$(free -m | awk '/^Mem:/ {print $7}')" \
    --arg kernel "$(uname -r)" --arg top "$(ps -eo pcpu,comm --sort=-pcpu | sed -n 2,6p | xargs)" \
    '{cpu: $cpu, cores: $cores, loadavg_1_5_15: $load, idle_percent_3s: $idle, mem_total_mib: $mem, mem_available_mib: $avail,
      kernel: $kernel, top_processes_pcpu: $top}'
}

# A hub on 127.0.0.1:port, release-style flags: access log off, log level warning, rate limits
# out of the way (10,000,000/min: every request still goes through the counters). Networked:
# on $redis_url (one Redis, or a cluster seed) and $pg_url; else the embedded store in
# $work/embedded-data. Uses the caller's $bin, $loops, $out and the associative array hub_pid
# (name → pid); returns once /readyz answers.
start_hub() { # name port [networked node-id]
  local name=$1 port=$2 args=(--host 127.0.0.1 --port "$2" --loops "$loops" --no-access-log --log-level warning
    --admin-token "$admin_token" --supabase-jwt-secret "$jwt_secret"
    --requests-per-minute "$huge" --auth-failures-per-minute-per-ip "$huge")
  if [ "${3:-}" = networked ]; then
    args+=(--redis-url "$redis_url" --postgres-url "$pg_url" --hash-key "$hash_key" --node-id "$4")
  else
    args+=(--data-dir "$work/embedded-data")
  fi
  args+=(${HUB_EXTRA_ARGS:-})
  "$bin/devicehub" "${args[@]}" >"$out/hub-$name.log" 2>&1 &
  hub_pid[$name]=$!
  wait_http "http://127.0.0.1:$port/readyz"
}

store_pids() { # redis-server, postmaster and its children (the backends present now)
  local pm; pm=$(head -1 "$pg_dir/data/postmaster.pid")
  echo "$redis_pid $pm $(pgrep -P "$pm" | tr '\n' ' ')" | xargs | tr ' ' ','
}

# A 3-master Redis Cluster on the given ports (no replicas, no persistence), in $work; sets
# cluster_url (redis+cluster://) and appends the servers to cluster_pids. Bus ports are port + 30,
# below the ephemeral range (the default port + 10,000 lands in it, where a benchmark's thousands
# of client sockets may hold it).
start_redis_cluster() { # port...
  local p
  for p in "$@"; do
    mkdir -p "$work/cluster-$p"
    (cd "$work/cluster-$p" && exec redis-server --port "$p" --cluster-port $((p + 30)) --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file nodes.conf --save "" --appendonly no --daemonize no >"$work/cluster-$p/log" 2>&1) &
    cluster_pids+=($!)
  done
  for p in "$@"; do for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done; done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "$@") --cluster-replicas 0 --cluster-yes >"$out/cluster-create.log" 2>&1
  for _ in $(seq 100); do redis-cli -p "$1" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.1; done
  cluster_url="redis+cluster://127.0.0.1:$1"
}
