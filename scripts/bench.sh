#!/usr/bin/env bash
# Builds a release binary and measures it. Figures go to stdout.
#  - stdio: cold start (spawn -> initialize response, median of 20) and tools/call echo
#    throughput with 64 requests in flight;
#  - HTTP: tools/call echo requests/s and latency at 1 and 8 keep-alive connections (wrk),
#    next to a bare cpp-httplib server with a fixed body (the library's ceiling here);
#  - HTTP auth: the same call at 8 connections with a static bearer token and with an OAuth
#    access token, so the token check stays off the hot path;
#  - isolation: the same stdio (1 and 64 in flight) and HTTP (8 connections) calls with every
#    instance in a child process, cold start with two isolated instances, and the resident
#    memory of one idle child;
#  - store: p50/p99 of a state put and a lease renewal on SQLite and on a PostgreSQL 15 the
#    bench starts on loopback (fsync off, as in the tests: the figures are the host's and
#    libpq's cost, not a disk's).
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

echo "== HTTP auth (wrk, 8 conn, ${duration}s each)"
for mode in bearer oauth; do
  auth='{ mode: oauth }'
  [ "$mode" = bearer ] && auth='{ mode: bearer, bearer_tokens: ["${MCPH_BENCH_TOKEN}"] }'
  sed "s|worker_threads: 64 }|worker_threads: 64, auth: $auth }|;s|^state_dir: .*|state_dir: $work/state-$mode|" \
    "$work/mcp-host.yaml" > "$work/$mode.yaml"
  MCPH_BENCH_TOKEN=bench-static-token-1234 "$build/mcp-host" serve --config "$work/$mode.yaml" > /dev/null 2> "$work/$mode.log" &
done
for mode in bearer oauth; do
  for _ in $(seq 100); do grep -q 'http://' "$work/$mode.log" && break; sleep 0.05; done
done
bearer_port=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/bearer.log" | head -1 | cut -d: -f3)
oauth_port=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/oauth.log" | head -1 | cut -d: -f3)
oauth_token=$(python3 "$root/tests/bench/oauth_token.py" "http://127.0.0.1:$oauth_port")
for target in "none:$host_port:" "bearer:$bearer_port:bench-static-token-1234" "oauth:$oauth_port:$oauth_token"; do
  IFS=: read -r name port token <<< "$target"
  auth=()
  [ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
  line=$(wrk -t 2 -c 8 -d "${duration}s" -s "$root/tests/bench/echo_call.lua" "${auth[@]}" \
             "http://127.0.0.1:$port/mcp" | awk '/Requests\/sec/ {rps=$2} /^requests / {sub(/^requests [0-9]+, /, ""); rest=$0} END {print rps " req/s, " rest}')
  printf '%-13s  8 conn: %s\n' "auth $name" "$line"
done

echo "== isolation: in-process vs isolation: process"
for mode in none process; do
  echo "-- $mode"
  MCP_HOST_ISOLATION=$mode "$build/tests/mcph-bench-stdio" 20 20000 1 | sed "s/^/stdio W=1   /"
  MCP_HOST_ISOLATION=$mode "$build/tests/mcph-bench-stdio" 1 200000 64 | grep calls/s | sed "s/^/stdio W=64  /"
done
MCP_HOST_ISOLATION=process "$build/mcp-host" serve --config "$work/mcp-host.yaml" 2> "$work/iso.log" &
for _ in $(seq 100); do grep -q 'http://' "$work/iso.log" && break; sleep 0.05; done
iso_port=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/iso.log" | head -1 | cut -d: -f3)
for target in "in-process:$host_port" "isolated:$iso_port"; do
  name=${target%%:*} port=${target##*:}
  line=$(wrk -t 2 -c 8 -d "${duration}s" -s "$root/tests/bench/echo_call.lua" \
             "http://127.0.0.1:$port/mcp" | awk '/Requests\/sec/ {rps=$2} /^requests / {sub(/^requests [0-9]+, /, ""); rest=$0} END {print rps " req/s, " rest}')
  printf '%-13s  8 conn: %s\n' "$name" "$line"
done
child=$(curl -s "http://127.0.0.1:$iso_port/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["plugins"][0]["pid"])')
sleep 1
echo "idle isolated instance (example-echo): $(awk '/VmRSS/ {print $2 " KiB resident"}' /proc/"$child"/status)"

echo "== store"
"$build/tests/mcph-bench-store" 2000
