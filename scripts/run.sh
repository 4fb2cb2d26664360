#!/usr/bin/env bash
# Installs what is missing, builds, and serves MCP over stdio with the default config
# (config/mcp-host.yaml). Extra arguments go to `mcp-host serve`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" >&2
exec "$root/build/mcp-host" serve --config "${MCP_HOST_CONFIG:-$root/config/mcp-host.yaml}" "$@"
