#!/usr/bin/env bash
# Installs the Debian packages mcp-host needs to build and test. Idempotent: quiet and
# fast when nothing is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates openssl python3
  libboost-dev nlohmann-json3-dev libspdlog-dev libyaml-cpp-dev libcpp-httplib-dev
  libssl-dev libsqlite3-dev libcli11-dev libgtest-dev json-schema-test-suite
  dpkg-dev file   # scripts/package.sh: CPack's Debian generator runs dpkg-shlibdeps and file
  chromium chromium-driver python3-selenium   # the sign-in page's browser test
  clang           # the sanitizer build (scripts/test.sh): it compiles it in about half the time
  libseccomp-dev  # isolation: process with sandbox: strict (a seccomp filter in the child)
  libpq-dev postgresql-15   # store.backend: postgresql; the tests start a PostgreSQL 15 server of their own
  haproxy                   # the replica tests put three hosts behind it
  prometheus                # the metrics tests: a real Prometheus scrapes a host; promtool checks /metrics
  libclang-rt-14-dev   # libFuzzer and the sanitizer runtimes for clang (tests/fuzz, scripts/fuzz.sh)
  libbenchmark-dev     # the engine's micro-benchmark (tests/bench/dispatch_bench.cpp, scripts/bench.sh)
  libmimalloc-dev      # malloc of mcp-host and mcp-host-plugin (host/CMakeLists.txt says why)
  iproute2             # ss: a test reads the HTTP listener's accept queue length
)
# Node.js runs the official MCP client tests; any recent node on PATH will do.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
