#!/usr/bin/env bash
# Installs what is missing, builds, and serves MCP over stdio with the default config
# (config/mcp-host.yaml). Extra arguments go to `mcp-host serve` (e.g. --transport http).
#
#   scripts/run.sh --demo [serve args]   tries every plugin without an account: starts the
#       fake Codesphere and Codegen APIs (tests/fakes/) on loopback and points the plugins
#       at them; they stop when the host stops.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
demo=0
if [ "${1:-}" = "--demo" ]; then demo=1; shift; fi
"$root/scripts/setup.sh"
"$root/scripts/build.sh" >&2
if [ $demo -eq 0 ]; then
  exec "$root/build/mcp-host" serve --config "${MCP_HOST_CONFIG:-$root/config/mcp-host.yaml}" "$@"
fi

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
start_fake() {  # name -> prints its port
  python3 "$root/tests/fakes/$1_fake.py" --port 0 > "$work/$1.out" 2> "$work/$1.err" &
  pids+=($!)
  for _ in $(seq 100); do
    port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$work/$1.out" | head -1)
    if [ -n "$port" ]; then echo "$port"; return; fi
    sleep 0.05
  done
  echo "the fake $1 API did not start" >&2; exit 1
}
cs=$(start_fake codesphere)
cg=$(start_fake codegen)
cat > "$work/demo.yaml" <<YAML
# Demo: every plugin against fake upstream APIs on loopback (tests/fakes/).
state_dir: $work/state
plugins:
  - { name: echo, library: example-echo }
  - { name: counter, library: example-counter }
  - name: codesphere
    library: codesphere
    credentials: { api_token: fake-token }
    settings: { base_url: "http://127.0.0.1:$cs/api", poll_interval_ms: 500 }
  - name: codegen
    library: codegen
    credentials: { api_token: demo-token, org_id: "1" }
    settings: { base_url: "http://127.0.0.1:$cg", poll_interval_ms: 500 }
YAML
echo "demo: fake Codesphere API at http://127.0.0.1:$cs/api, fake Codegen API at http://127.0.0.1:$cg" >&2
"$root/build/mcp-host" serve --config "$work/demo.yaml" "$@"
