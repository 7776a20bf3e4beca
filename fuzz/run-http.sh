#!/usr/bin/env bash
# Builds the HubHTTP libFuzzer target and runs it for SECONDS (default 60).
#
#   fuzz/run-http.sh [SECONDS]
#
# Exits non-zero if the build fails or the fuzzer finds a crash, a trap (a violated
# property: non-termination, split-dependent result, header injection) or a timeout; the
# reproducer is left in fuzz/out/ (run it with: fuzz/out/fuzz-http fuzz/out/crash-…).
# The checked-in seeds in fuzz/http/corpus/ are only read; what the fuzzer discovers goes
# to fuzz/corpus-run/http/ (git-ignored), so repeated runs build on earlier ones.
set -euo pipefail

seconds="${1:-60}"
case "$seconds" in
    ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/fuzz/out"
work_corpus="$root/fuzz/corpus-run/http"
mkdir -p "$out" "$work_corpus"

# One module: the codec's sources plus the target, optimised as a whole module (-wmo) like a
# release build, so the fuzzer runs the code that ships. -parse-as-library because main.swift only
# defines the libFuzzer entry point (libFuzzer provides main). lld avoids gold's warnings
# about ASan's local symbols when it is installed.
linker=()
if command -v ld.lld >/dev/null 2>&1; then linker=(-use-ld=lld); fi
echo "building fuzz/out/fuzz-http ..."
# Compile from inside fuzz/out: with -g, swiftc drops a debugger module
# (HubHTTPFuzz-1.swiftmodule, .swiftdoc, .swiftsourceinfo) into the working directory, and
# that must land in the git-ignored output folder, not in the caller's directory.
(
    cd "$out"
    swiftc -sanitize=fuzzer,address -parse-as-library -O -wmo -g "${linker[@]}" \
        -module-name HubHTTPFuzz \
        "$root"/Sources/HubHTTP/*.swift "$root/fuzz/http/main.swift" \
        -o "$out/fuzz-http"
)

log="$out/fuzz-http.log"
echo "fuzzing for ${seconds}s (log: $log) ..."
# Swift's runtime backtracer (swift-backtrace) can hang after a trap inside the fuzzer; turn
# it off so libFuzzer's own deadly-signal handler writes the reproducer and exits at once.
# The outer timeout is a last resort so this script always ends (libFuzzer stops itself
# after -max_total_time; the margin covers loading the corpus and the final merge).
export SWIFT_BACKTRACE=enable=no
set +e
timeout --kill-after=10 $((seconds + 120)) "$out/fuzz-http" \
    -max_total_time="$seconds" \
    -timeout=10 \
    -max_len=4096 \
    -print_final_stats=1 \
    -dict="$root/fuzz/http/http.dict" \
    -artifact_prefix="$out/" \
    "$work_corpus" "$root/fuzz/http/corpus" 2>&1 | tee "$log" | grep -E "INITED|DONE|pulse|ERROR|SUMMARY|stat::|Test unit written|fatal error|Fatal error" 
status=${PIPESTATUS[0]}
set -e

if [ "$status" -ne 0 ]; then
    echo "fuzz-http: FAILED (exit $status); reproducer(s):" >&2
    ls -1 "$out"/crash-* "$out"/timeout-* "$out"/oom-* 2>/dev/null >&2 || true
    exit "$status"
fi
echo "fuzz-http: no crash in ${seconds}s"
