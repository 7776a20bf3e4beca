# Shared by the benchmark scripts (source it after setting `work`, `pg_port`, `redis_port`):
# the run's throw-away credentials, stopping processes, waiting for HTTP, and starting
# redis-server and PostgreSQL (as the postgres user, with the server's durability defaults).

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
