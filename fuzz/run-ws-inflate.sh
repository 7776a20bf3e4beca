#!/usr/bin/env bash
# Builds the HubWebSocket permessage-deflate libFuzzer target (fuzz/ws-inflate) and runs it for
# SECONDS (default 60): arbitrary compressed payloads with bounded output, and a compress →
# inflate round trip.
#
#   fuzz/run-ws-inflate.sh [SECONDS]
#
# Exits non-zero if the build fails or the fuzzer finds a crash, a trap (output over the limit,
# invalid UTF-8 delivered, split-dependent result, round-trip mismatch), an out-of-memory or a
# timeout; the reproducer is left in fuzz/out/. Seeds in fuzz/ws-inflate/corpus/ are only read;
# discoveries go to fuzz/corpus-run/ws-inflate/.
set -euo pipefail
source "$(dirname "$0")/ws-common.sh"
ws_fuzz ws-inflate "${1:-60}" 65536
