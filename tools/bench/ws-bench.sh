#!/usr/bin/env bash
# WebSocket engine benchmark (issue 3): DeviceHub's ws-echo against SwiftNIO and Python
# `websockets`, in one invocation, servers alternating, medians of RUNS.
#
#   tools/bench/ws-bench.sh [RUNS=3] [SECONDS=10]
#
# Scenarios (each server started fresh for every measurement, pinned to CPU 0; the load
# client ws-load, on our engine, pinned to CPU 1):
#   echo    connections × message size ∈ ECHO_CONNS × ECHO_SIZES, ECHO_WINDOW messages in
#           flight per connection: messages/s, server CPU seconds (utime+stime from
#           /proc/PID/stat over the measured window) and messages per server-CPU-second.
#   idle    IDLE_CONNS connections opened and left idle: (server VmRSS after − before) / N.
#   fanout  1 publisher (/pub), FANOUT_SUBS subscribers (/), FANOUT_SIZE-byte messages, at most
#           FANOUT_WINDOW outstanding: deliveries/s and deliveries per server-CPU-second.
#
# Environment knobs: SERVERS (default "devicehub nio python"; "nio-async" is the example's
# NIOAsyncChannel style, echo/idle only), SCENARIOS, ECHO_CONNS, ECHO_SIZES, ECHO_WINDOW,
# IDLE_CONNS, IDLE_HOLD, FANOUT_SUBS, FANOUT_SIZE, FANOUT_WINDOW, SKIP_BUILD=1, OUT=dir.
# Loopback only. Needs ~2×IDLE_CONNS descriptors across the two processes (each raises its
# own soft RLIMIT_NOFILE to the hard limit).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${1:-3}
SECS=${2:-10}
B=$ROOT/.build-bench
SERVERS=${SERVERS:-"devicehub nio python"}
SCENARIOS=${SCENARIOS:-"echo idle fanout"}
ECHO_CONNS=${ECHO_CONNS:-"100 1000"}
ECHO_SIZES=${ECHO_SIZES:-"16 1024"}
ECHO_WINDOW=${ECHO_WINDOW:-1}
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_HOLD=${IDLE_HOLD:-4}
FANOUT_SUBS=${FANOUT_SUBS:-1000}
FANOUT_SIZE=${FANOUT_SIZE:-16}
FANOUT_WINDOW=${FANOUT_WINDOW:-1024}
PORT_BASE=${PORT_BASE:-27000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT=${OUT:-$B/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: > "$RESULTS"

log() { echo "[ws-bench] $*" >&2; }

# ---------------------------------------------------------------------------------------
# Build (release). One swift build at a time.
MAIN_SCRATCH=$B/main
if grep -q '"ws-load"' "$ROOT/Package.swift"; then
    PKG=$ROOT
else
    # The ws-load target is not in Package.swift yet: build from an overlay package whose
    # manifest is ours plus that one target, the sources being symlinks to this tree.
    PKG=$B/overlay
    mkdir -p "$PKG"
    for f in "$ROOT"/* "$ROOT"/.git; do
        name=$(basename "$f")
        case "$name" in Package.swift|Package.resolved) continue ;; esac
        ln -sfn "$f" "$PKG/$name"
    done
    python3 - "$ROOT/Package.swift" "$PKG/Package.swift" <<'EOF'
import sys
src, dst = sys.argv[1], sys.argv[2]
text = open(src).read()
target = '''        .executableTarget(name: "ws-load", dependencies: ["HubIO", "HubWebSocket", "HubWebSocketIO",
            .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "tools/ws-load", swiftSettings: hotPath),
'''
anchor = '        .testTarget('
i = text.index(anchor)
new = text[:i] + target + "\n" + text[i:]
old = open(dst).read() if __import__("os").path.exists(dst) else None
if new != old:
    open(dst, "w").write(new)
EOF
    MAIN_SCRATCH=$B/overlay-build
fi
WSECHO=$MAIN_SCRATCH/release/ws-echo
WSLOAD=$MAIN_SCRATCH/release/ws-load
NIO=$B/nio/release/nio-ws-echo
VENV=$B/venv
PY=$VENV/bin/python

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building ws-echo and ws-load (release) in $PKG"
    (cd "$PKG" && swift build -c release --scratch-path "$MAIN_SCRATCH" --product ws-echo)
    (cd "$PKG" && swift build -c release --scratch-path "$MAIN_SCRATCH" --product ws-load)
    log "building nio-ws-echo (release)"
    swift build -c release --package-path "$ROOT/tools/bench/nio-ws-echo" --scratch-path "$B/nio"
    if [[ ! -x $PY ]] || ! "$PY" -c 'import websockets' 2>/dev/null; then
        log "creating the Python venv with websockets"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q websockets
    fi
fi
for bin in "$WSECHO" "$WSLOAD"; do [[ -x $bin ]] || { log "missing $bin"; exit 1; }; done

# ---------------------------------------------------------------------------------------
# Machine and versions.
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) (+ uncommitted: $(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) paths)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs"
    echo "memory: $(free -g | awk '/Mem:/{print $2}') GiB"
    echo "kernel: $(uname -r)"
    echo "swift: $(swift --version 2>&1 | head -1)"
    echo "swift-nio: $(grep -A6 '"swift-nio"' "$ROOT/tools/bench/nio-ws-echo/Package.resolved" 2>/dev/null | grep -m1 version | tr -d ' ",' | cut -d: -f2)"
    echo "python: $("$PY" --version 2>&1), websockets $("$PY" -c 'import websockets; print(websockets.__version__)' 2>/dev/null)"
    echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "runs: $RUNS, seconds: $SECS, echo window: $ECHO_WINDOW, fanout window: $FANOUT_WINDOW"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# ---------------------------------------------------------------------------------------
# Servers.
SERVER_PID=
server_cmd() { # name port broadcast(0|1)
    local name=$1 port=$2 bc=$3 flag=
    case $name in
        devicehub) [[ $bc == 1 ]] && flag=--broadcast
                   echo "$WSECHO --host 127.0.0.1 --port $port --loops 1 --log-level error $flag" ;;
        nio)       [[ $bc == 1 ]] && flag=--broadcast
                   echo "$NIO --host 127.0.0.1 --port $port --loops 1 $flag" ;;
        nio-async) echo "$NIO --host 127.0.0.1 --port $port --loops 1 --api async" ;;
        python)    [[ $bc == 1 ]] && flag=--broadcast
                   echo "$PY $ROOT/tools/bench/py-ws-echo.py --host 127.0.0.1 --port $port $flag" ;;
        *) log "unknown server $name"; exit 1 ;;
    esac
}

start_server() { # name port broadcast log
    local cmd
    cmd=$(server_cmd "$1" "$2" "$3")
    # taskset execs the server, so $! is the server's own PID.
    taskset -c "$SERVER_CPU" $cmd > "$4" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then log "$1 exited at start:"; cat "$4" >&2; return 1; fi
        sleep 0.1
    done
    log "$1 did not listen on $2 within 10 s"; return 1
}

stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}
trap stop_server EXIT

# One measurement: fresh server, one ws-load run, one JSON line appended to results.jsonl.
PORT_SEQ=0
measure() { # scenario label server broadcast ws-load args...
    local scenario=$1 label=$2 server=$3 bc=$4; shift 4
    # A new port each time (no TIME_WAIT reuse across runs), below the ephemeral range, and
    # skipping any port that something else (another engineer's server) already listens on.
    local port
    while :; do
        PORT_SEQ=$((PORT_SEQ + 1))
        port=$((PORT_BASE + PORT_SEQ))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
    done
    local tag="$scenario-$label-$server-$RUN"
    start_server "$server" "$port" "$bc" "$OUT/$tag.server.log" || { echo "{\"scenario\":\"$scenario\",\"label\":\"$label\",\"server\":\"$server\",\"run\":$RUN,\"error\":\"server did not start\"}" >> "$RESULTS"; return; }
    sleep 0.3
    local url="ws://127.0.0.1:$port"
    [[ $scenario != fanout ]] && url="$url/"
    local rc=0
    taskset -c "$CLIENT_CPU" "$WSLOAD" "$@" --url "$url" --server-pid "$SERVER_PID" > "$OUT/$tag.json" 2> "$OUT/$tag.err" || rc=$?
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "$server died during $tag (see $OUT/$tag.server.log)"; rc=99
    fi
    stop_server
    local line
    line=$(tail -1 "$OUT/$tag.json")
    [[ $line == \{* ]] || line='{}'
    python3 - "$scenario" "$label" "$server" "$RUN" "$rc" "$line" >> "$RESULTS" <<'EOF'
import json, sys
scenario, label, server, run, rc, line = sys.argv[1:]
d = json.loads(line)
d.update(scenario=scenario, label=label, server=server, run=int(run), exit=int(rc))
print(json.dumps(d))
EOF
    log "$tag: exit $rc $(echo "$line" | cut -c1-300)"
}

# Server order rotates each run so that none is always first (or always after the same one).
rotated() { # run index → servers in rotated order
    local -a s=($SERVERS); local n=${#s[@]} k=$(( ($1 - 1) % ${#s[@]} )) i
    for ((i = 0; i < n; i++)); do echo -n "${s[(i + k) % n]} "; done
}

for RUN in $(seq 1 "$RUNS"); do
    for scenario in $SCENARIOS; do
        case $scenario in
            echo)
                for c in $ECHO_CONNS; do for s in $ECHO_SIZES; do
                    for server in $(rotated "$RUN"); do
                        label="${c}x${s}B"; [[ $ECHO_WINDOW == 1 ]] || label="$label-window$ECHO_WINDOW"
                        measure echo "$label" "$server" 0 echo --connections "$c" --size "$s" --seconds "$SECS" --window "$ECHO_WINDOW"
                    done
                done; done ;;
            idle)
                for server in $(rotated "$RUN"); do
                    measure idle "$IDLE_CONNS" "$server" 0 idle --connections "$IDLE_CONNS" --hold "$IDLE_HOLD" --settle 2
                done ;;
            fanout)
                for server in $(rotated "$RUN"); do
                    [[ $server == nio-async ]] && continue
                    measure fanout "${FANOUT_SUBS}subs" "$server" 1 fanout --subscribers "$FANOUT_SUBS" --seconds "$SECS" --size "$FANOUT_SIZE" --window "$FANOUT_WINDOW"
                done ;;
        esac
    done
done

# ---------------------------------------------------------------------------------------
# Medians, table, ratios against nio.
python3 - "$RESULTS" "$OUT/machine.txt" <<'EOF' | tee "$OUT/summary.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(open(sys.argv[2]).read().rstrip().replace("\n", "  \n"))
print()
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def fmt(x, nd=0):
    if x is None: return "–"
    return f"{x:,.{nd}f}"
servers = []
for r in rows:
    if r["server"] not in servers: servers.append(r["server"])
failed = [r for r in rows if r.get("exit", 1) != 0]
groups = {}
for r in rows: groups.setdefault((r["scenario"], r["label"], r["server"]), []).append(r)

def table(scenario, cols):
    keys = [k for k in groups if k[0] == scenario]
    if not keys: return
    labels = []
    for k in keys:
        if k[1] not in labels: labels.append(k[1])
    print("| scenario | server | " + " | ".join(c[0] for c in cols) + " | runs (first metric) |")
    print("|---|---|" + "---|" * len(cols) + "---|")
    meds = {}
    for label in labels:
        for s in servers:
            rs = groups.get((scenario, label, s))
            if not rs: continue
            vals = [med([r.get(c[1]) for r in rs]) for c in cols]
            meds[(label, s)] = vals
            runs = " / ".join(fmt(r.get(cols[0][1]), cols[0][2]) + ("" if r.get("exit") == 0 else "!") for r in rs)
            print(f"| {scenario} {label} | {s} | " + " | ".join(fmt(v, c[2]) for v, c in zip(vals, cols)) + f" | {runs} |")
    print()
    return meds, labels

def ratios(scenario, meds_labels, cols, peer="nio"):
    if not meds_labels: return
    meds, labels = meds_labels
    for label in labels:
        base = meds.get((label, peer))
        mine = meds.get((label, "devicehub"))
        if not base or not mine: continue
        parts = []
        for (name, _, _, better), a, b in zip(cols, mine, base):
            if a is None or b is None or b == 0: continue
            parts.append(f"{name}: {a / b:.2f}×")
        print(f"- {scenario} {label}, devicehub / {peer}: " + "; ".join(parts))

echo_cols = [("msgs/s", "messages_per_second", 0, "high"), ("server CPU s", "server_cpu_seconds", 2, "low"),
             ("of which user s", "server_user_seconds", 2, "low"), ("of which system s", "server_system_seconds", 2, "low"),
             ("msgs per server-CPU-s", "messages_per_server_cpu_second", 0, "high"), ("client CPU s", "client_cpu_seconds", 2, "low")]
idle_cols = [("server bytes/conn", "server_bytes_per_connection", 0, "low"), ("server RSS before KiB", "server_rss_before_kib", 0, "low"),
             ("server RSS after KiB", "server_rss_after_kib", 0, "low"), ("client bytes/conn", "client_bytes_per_connection", 0, "low")]
fan_cols = [("deliveries/s", "deliveries_per_second", 0, "high"), ("server CPU s", "server_cpu_seconds", 2, "low"),
            ("of which user s", "server_user_seconds", 2, "low"), ("of which system s", "server_system_seconds", 2, "low"),
            ("deliveries per server-CPU-s", "deliveries_per_server_cpu_second", 0, "high"), ("client CPU s", "client_cpu_seconds", 2, "low")]
print("### Medians\n")
e = table("echo", echo_cols); i = table("idle", idle_cols); f = table("fanout", fan_cols)
print("### Ratios (devicehub / nio, medians)\n")
ratios("echo", e, echo_cols); ratios("idle", i, idle_cols); ratios("fanout", f, fan_cols)
if "python" in servers:
    print()
    ratios("echo", e, echo_cols, "python"); ratios("idle", i, idle_cols, "python"); ratios("fanout", f, fan_cols, "python")
if failed:
    print("\n### Runs that failed (marked ! above)\n")
    for r in failed:
        print(f"- {r['scenario']} {r['label']} {r['server']} run {r['run']}: exit {r.get('exit')}, {r.get('first_problems') or r.get('error')}")
EOF
log "results in $OUT"
