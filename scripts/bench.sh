#!/usr/bin/env bash
# Builds a release binary and measures it: stdio cold start (median of 20 spawns) and
# tools/call echo throughput with 64 requests in flight. Figures go to stdout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
build=${BUILD_DIR:-$root/build-bench}
BUILD_DIR=$build BUILD_TYPE=Release "$root/scripts/build.sh" >/dev/null
"$build/tests/mcph-bench-stdio" 20 200000 64
