#!/usr/bin/env bash
# HTTP keep-alive throughput: devicehub GET /healthz vs nginx returning the same fixed 200.
# Both servers run one worker pinned to CPU 0; wrk runs pinned to CPU 1. Runs alternate
# (devicehub, nginx, devicehub, ...) so drift affects both; the median of RUNS is reported.
#   tools/bench/http-vs-nginx.sh [RUNS=3] [SECONDS=10] [CONNECTIONS=50]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/deps.sh
ensure_apt_packages $BUILD_PACKAGES nginx-light wrk util-linux

runs=${1:-3}; secs=${2:-10}; conns=${3:-50}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

swift build -c release --product devicehub >/dev/null
hub_port=18080; nginx_port=18081

cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  client_body_temp_path $work;
  proxy_temp_path $work; fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
  server {
    listen 127.0.0.1:$nginx_port;
    location = /healthz { default_type application/json; return 200 '{"status":"ok"}'; }
  }
}
NGINX

taskset -c 0 .build/release/devicehub --host 127.0.0.1 --port $hub_port --loops 1 --no-access-log --log-level warning &
taskset -c 0 nginx -c "$work/nginx.conf" &
for p in $hub_port $nginx_port; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/healthz" >/dev/null && break; sleep 0.1; done
done

measure() { # port -> "rps p99_ms"
  local out
  out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$1/healthz")
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}' <<<"$out")
  echo "$rps $p99"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: > "$work/hub"; : > "$work/nginx"
for i in $(seq "$runs"); do
  measure $hub_port >> "$work/hub"
  measure $nginx_port >> "$work/nginx"
done
hub_rps=$(cut -d' ' -f1 "$work/hub" | median); hub_p99=$(cut -d' ' -f2 "$work/hub" | median)
ng_rps=$(cut -d' ' -f1 "$work/nginx" | median); ng_p99=$(cut -d' ' -f2 "$work/nginx" | median)
ratio=$(awk -v a="$hub_rps" -v b="$ng_rps" 'BEGIN {printf "%.2f", a/b}')
echo "runs: devicehub [$(cut -d' ' -f1 "$work/hub" | tr '\n' ' ')] nginx [$(cut -d' ' -f1 "$work/nginx" | tr '\n' ' ')]"
echo "| server | requests/s (median of $runs) | p99 latency (ms) |"
echo "|---|---|---|"
echo "| devicehub | $hub_rps | $hub_p99 |"
echo "| nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') | $ng_rps | $ng_p99 |"
echo "ratio devicehub/nginx requests/s: $ratio"
