#!/usr/bin/env bash
# The official TypeScript SDK client (@modelcontextprotocol/sdk, pinned) lists and calls the
# example tools of the real binary over stdio or Streamable HTTP. The SDK is installed once
# into a cache folder (no global install): $MCPH_CACHE or ~/.cache/mcp-host.
#   run.sh stdio|http|oauth BINARY PLUGIN_DIR
#   run.sh url URL      a host (or a load balancer) already serving the example plugins
#   run.sh install      only installs the SDK, and prints the folder that holds it
#                       (scripts/bench.sh runs the SDK's own server from there)
# oauth: the SDK client's OAuth flow against auth.mode oauth, with the codesphere plugin in
# front of the fake Codesphere API (tests/fakes/codesphere_fake.py).
set -euo pipefail
mode=$1 bin=${2:-} plugin_dir=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
cache=${MCPH_CACHE:-$HOME/.cache/mcp-host}/ts-sdk-1.32.2
if [ ! -f "$cache/node_modules/@modelcontextprotocol/sdk/package.json" ]; then
  mkdir -p "$cache"
  echo '{"name":"mcph-ts-sdk-test","private":true,"type":"module"}' > "$cache/package.json"
  npm install --prefix "$cache" --no-audit --no-fund --loglevel=error @modelcontextprotocol/sdk@1.32.2 >&2
fi
if [ "$mode" = install ]; then
  echo "$cache"
  exit 0
fi
if [ "$mode" = url ]; then
  cp "$here/client.mjs" "$cache/client.mjs"
  exec node "$cache/client.mjs" url "$bin"
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
if [ "$mode" = oauth ]; then
  key=user-key-$RANDOM$RANDOM
  # The fake exits when its stdin (the coprocess pipe) closes, i.e. with this script.
  coproc FAKE { python3 "$here/../../fakes/codesphere_fake.py" --port 0 --token "$key" --exit-on-stdin-eof; }
  read -r _ port <&"${FAKE[0]}"
  cat > "$work/mcp-host.yaml" <<YAML
state_dir: $work/state
plugin_paths: [$plugin_dir]
server:
  http: { auth: { mode: oauth } }
plugins:
  - { name: cs, library: codesphere, settings: { base_url: "http://127.0.0.1:$port/api", team_id: 1 } }
YAML
  cp "$here/oauth.mjs" "$cache/oauth.mjs"
  status=0
  node "$cache/oauth.mjs" "$bin" "$work/mcp-host.yaml" "http://127.0.0.1:$port" "$key" || status=$?
  kill "$FAKE_PID" 2>/dev/null || true
  exit $status
fi
cp "$here/client.mjs" "$cache/client.mjs"
node "$cache/client.mjs" "$mode" "$bin" "$work/mcp-host.yaml"
