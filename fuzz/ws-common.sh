# Sourced by fuzz/run-ws-frames.sh and fuzz/run-ws-inflate.sh: builds and runs one HubWebSocket
# libFuzzer target. Mirrors fuzz/run-http.sh, plus what the codec's C dependencies need:
# the CHubShims C file compiled with clang (ASan-instrumented), a module map for it (SwiftPM
# generates one; plain swiftc needs it spelled out), the CZlib/COpenSSL system module maps,
# and -lz -lcrypto -lssl at link time (shims.c also wraps libssl calls).
# shellcheck shell=bash
#
#   ws_fuzz NAME SECONDS MAX_LEN
#
# NAME is the folder under fuzz/ (ws-frames, ws-inflate) holding main.swift, corpus/ and an
# optional NAME.dict. Exits non-zero if the build fails or the fuzzer finds a crash, a trap
# (a violated property) or a timeout; the reproducer is left in fuzz/out/.
set -euo pipefail

ws_fuzz() {
    local name="$1" seconds="$2" max_len="$3"
    case "$seconds" in
        ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
    esac
    local root out work_corpus modules
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    out="$root/fuzz/out"
    work_corpus="$root/fuzz/corpus-run/$name"
    modules="$out/ws-modules"
    mkdir -p "$out" "$work_corpus" "$modules/CHubShims"

    cat > "$modules/CHubShims/module.modulemap" <<MAP
module CHubShims {
    header "$root/Sources/CHubShims/include/CHubShims.h"
    export *
}
MAP
    local clang=clang
    if command -v "$(dirname "$(command -v swiftc)")/clang" >/dev/null 2>&1; then clang="$(dirname "$(command -v swiftc)")/clang"; fi
    echo "building fuzz/out/fuzz-$name ..."
    "$clang" -c -O1 -g -fsanitize=address,fuzzer-no-link -I "$root/Sources/CHubShims/include" \
        "$root/Sources/CHubShims/shims.c" -o "$out/chubshims-asan.o"

    # One module: the codec's sources plus the target, optimised as a whole module (-wmo) like a
    # release build, so the fuzzer runs the code that ships. Built from inside fuzz/out so the
    # compiler's side files land there (git-ignored). lld avoids gold's warnings about ASan's
    # local symbols when it is installed.
    local linker=()
    if command -v ld.lld >/dev/null 2>&1; then linker=(-use-ld=lld); fi
    (cd "$out" && swiftc -sanitize=fuzzer,address -parse-as-library -O -wmo -g "${linker[@]}" \
        -module-name HubWebSocketFuzz \
        -I "$modules/CHubShims" -I "$root/Sources/CZlib" -I "$root/Sources/COpenSSL" \
        "$root"/Sources/HubWebSocket/*.swift "$root/fuzz/$name/main.swift" "$out/chubshims-asan.o" \
        -lz -lcrypto -lssl \
        -o "$out/fuzz-$name")

    local log="$out/fuzz-$name.log"
    local dict=()
    if [ -f "$root/fuzz/$name/$name.dict" ]; then dict=(-dict="$root/fuzz/$name/$name.dict"); fi
    echo "fuzzing for ${seconds}s (log: $log) ..."
    # As in run-http.sh: no Swift backtracer (it can hang after a trap inside the fuzzer), and
    # an outer timeout as a last resort. -rss_limit_mb catches a buffer that grows without bound
    # (the limits cap every buffer far below it).
    export SWIFT_BACKTRACE=enable=no
    set +e
    timeout --kill-after=10 $((seconds + 120)) "$out/fuzz-$name" \
        -max_total_time="$seconds" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -max_len="$max_len" \
        -print_final_stats=1 \
        "${dict[@]}" \
        -artifact_prefix="$out/" \
        "$work_corpus" "$root/fuzz/$name/corpus" 2>&1 | tee "$log" | grep -E "INITED|DONE|pulse|ERROR|SUMMARY|stat::|Test unit written|fatal error|Fatal error"
    local status=${PIPESTATUS[0]}
    set -e

    if [ "$status" -ne 0 ]; then
        echo "fuzz-$name: FAILED (exit $status); reproducer(s):" >&2
        ls -1 "$out"/crash-* "$out"/timeout-* "$out"/oom-* 2>/dev/null >&2 || true
        exit "$status"
    fi
    echo "fuzz-$name: no crash in ${seconds}s"
}
