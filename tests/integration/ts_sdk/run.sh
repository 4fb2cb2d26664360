#!/usr/bin/env bash
# The official TypeScript SDK client (@modelcontextprotocol/sdk, pinned) lists and calls the
# example tools of the real binary over stdio or Streamable HTTP. The SDK is installed once
# into a cache folder (no global install): $MCPH_CACHE or ~/.cache/mcp-host.
#   run.sh stdio|http BINARY PLUGIN_DIR
set -euo pipefail
mode=$1 bin=$2 plugin_dir=$3
here=$(cd "$(dirname "$0")" && pwd)
cache=${MCPH_CACHE:-$HOME/.cache/mcp-host}/ts-sdk-1.32.2
if [ ! -f "$cache/node_modules/@modelcontextprotocol/sdk/package.json" ]; then
  mkdir -p "$cache"
  echo '{"name":"mcph-ts-sdk-test","private":true,"type":"module"}' > "$cache/package.json"
  npm install --prefix "$cache" --no-audit --no-fund --loglevel=error @modelcontextprotocol/sdk@1.32.2 >&2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/mcp-host.yaml" <<YAML
state_dir: $work/state
plugin_paths: [$plugin_dir]
plugins:
  - { name: echo, library: example-echo }
  - { name: counter, library: example-counter }
YAML
cp "$here/client.mjs" "$cache/client.mjs"
node "$cache/client.mjs" "$mode" "$bin" "$work/mcp-host.yaml"
