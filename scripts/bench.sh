#!/usr/bin/env bash
# Builds a release binary and measures it. Figures go to stdout.
#  - stdio: cold start (spawn -> initialize response, median of 20) and tools/call echo
#    throughput with 64 requests in flight;
#  - HTTP: tools/call echo requests/s and latency at 1 and 8 keep-alive connections (wrk),
#    next to a bare cpp-httplib server with a fixed body (the library's ceiling here).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq wrk >/dev/null; }
build=${BUILD_DIR:-$root/build-bench}
BUILD_DIR=$build BUILD_TYPE=Release "$root/scripts/build.sh" >/dev/null
duration=${BENCH_SECONDS:-10}

echo "== stdio"
"$build/tests/mcph-bench-stdio" 20 200000 64

echo "== HTTP (wrk, ${duration}s each)"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
cat > "$work/mcp-host.yaml" <<YAML
state_dir: $work/state
log: { level: warn }
plugin_paths: [$build/plugins]
server:
  transport: http
  http: { listen: "127.0.0.1:0", worker_threads: 64 }
plugins:
  - { name: echo, library: example-echo }
YAML
"$build/mcp-host" serve --config "$work/mcp-host.yaml" 2> "$work/host.log" &
for _ in $(seq 100); do grep -q 'http://' "$work/host.log" && break; sleep 0.05; done
host_port=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/host.log" | head -1 | cut -d: -f3)
"$build/tests/mcph-bench-bare-httplib" 64 > "$work/bare.port" &
for _ in $(seq 100); do [ -s "$work/bare.port" ] && break; sleep 0.05; done
bare_port=$(cat "$work/bare.port")

for c in 1 8 32; do
  for target in "mcp-host:$host_port" "bare-httplib:$bare_port"; do
    name=${target%%:*} port=${target##*:}
    line=$(wrk -t "$(( c < 2 ? 1 : 2 ))" -c "$c" -d "${duration}s" -s "$root/tests/bench/echo_call.lua" \
               "http://127.0.0.1:$port/mcp" | awk '/Requests\/sec/ {rps=$2} /^requests / {sub(/^requests [0-9]+, /, ""); rest=$0} END {print rps " req/s, " rest}')
    printf '%-13s %2d conn: %s\n' "$name" "$c" "$line"
  done
done
