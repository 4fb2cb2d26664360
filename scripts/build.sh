#!/usr/bin/env bash
# Configures and builds mcp-host into build/ (or $BUILD_DIR). Extra arguments go to cmake,
# e.g. scripts/build.sh -DMCPH_SANITIZE=ON.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
