#!/usr/bin/env bash
# Builds the HubWebSocket frame-reader libFuzzer target (fuzz/ws-frames) and runs it for
# SECONDS (default 60). Both roles, with and without permessage-deflate, whole and split input.
#
#   fuzz/run-ws-frames.sh [SECONDS]
#
# Exits non-zero if the build fails or the fuzzer finds a crash, a trap (a violated property:
# split-dependent result, invalid UTF-8 delivered, a limit exceeded) or a timeout; the reproducer
# is left in fuzz/out/ (run it with: fuzz/out/fuzz-ws-frames fuzz/out/crash-…). Seeds in
# fuzz/ws-frames/corpus/ are only read; discoveries go to fuzz/corpus-run/ws-frames/.
set -euo pipefail
source "$(dirname "$0")/ws-common.sh"
ws_fuzz ws-frames "${1:-60}" 4096
