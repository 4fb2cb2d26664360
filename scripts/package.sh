#!/usr/bin/env bash
# Builds the Debian packages mcp-host (host + bundled plugins) and mcp-host-dev (plugin SDK)
# from a Release build (build-package/, or $BUILD_DIR) into build-package/dist (or
# $DIST_DIR), and prints their paths. Install with: sudo apt-get install ./mcp-host_*.deb
# Package contents and dependencies: cmake/packaging.cmake.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
build=${BUILD_DIR:-$root/build-package}
dist=${DIST_DIR:-$build/dist}
BUILD_DIR=$build BUILD_TYPE=Release "$root/scripts/build.sh" -DMCPH_BUILD_TESTS=OFF -DMCPH_SANITIZE=OFF >&2
mkdir -p "$dist"
(cd "$build" && cpack -G DEB -B "$dist" >&2)
rm -rf "$dist/_CPack_Packages"
ls "$dist"/*.deb
