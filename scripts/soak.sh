#!/usr/bin/env bash
# A soak: mixed normal, slow, cancelled, malformed and dribbling load over both transports
# and both eras, upstream faults from the fake Codesphere API, and a kill -9 and restart of
# the HTTP host half way (tests/soak/soak.py says what exactly). Prints a line per minute
# (p50/p99 of a normal call, failures, RSS and threads of both hosts) and exits 1 if a
# normal call failed or memory or threads kept growing.
#
#   scripts/soak.sh MINUTES
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 1 ] || { echo "usage: $0 MINUTES" >&2; exit 2; }
"$root/scripts/setup.sh"
build=${BUILD_DIR:-$root/build}
BUILD_DIR=$build "$root/scripts/build.sh" >/dev/null
exec python3 "$root/tests/soak/soak.py" "$1" "$build"
