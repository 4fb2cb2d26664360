#!/usr/bin/env bash
# The SDK as a third party meets it, outside this source tree (issue 9):
#   1. `cmake --install` this build into a temporary prefix;
#   2. the installed new-plugin.sh copies the installed plugins/template to a folder outside
#      the tree and renames it; configure it with only CMAKE_PREFIX_PATH, build, run its unit
#      test, `plugin check` it, and call its tool through the installed mcp-host over stdio
#      (against a local HTTP server);
#   3. build the plain-C example through pkg-config alone, check it exports only the entry,
#      and call its tool the same way;
#   4. move the prefix and call a bundled plugin's tool from the moved host, with no
#      plugin_paths; the moved CMake package and .pc file still point inside it.
#
#   tests/sdk/out_of_tree.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/mcph-oot-XXXXXX")
server_pid=""
cleanup() { [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
step() { echo "== $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
export PKG_CONFIG_PATH=""  # nothing but what we point at

# One MCP session over stdio: initialize, then tools/call; prints the call's response line.
mcp_call() {  # host config tool arguments-json
  printf '%s\n' \
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"out-of-tree","version":"1"}}}' \
    '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
    "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"$3\",\"arguments\":$4}}" |
    timeout 60 "$1" serve --config "$2" 2>> "$work/host.log" | grep '"id":2' || { cat "$work/host.log" >&2; fail "no answer to tools/call $3"; }
}
expect() {  # text needle what
  case "$1" in *"$2"*) ;; *) fail "$3: expected $2 in: $1" ;; esac
}

step "install into a temporary prefix"
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
for f in bin/mcp-host lib/mcp-host/plugins/libexample-echo.so include/mcp_plugin/abi.h \
         lib/cmake/mcp_plugin/mcp_plugin-config.cmake lib/pkgconfig/mcp_plugin.pc share/mcp-host/mcp-host.yaml \
         share/mcp-host/plugin-guide.md share/mcp-host/template/CMakeLists.txt; do
  [ -e "$prefix/$f" ] || fail "the install has no $f"
done
[ ! -e "$prefix/lib/mcp-host/plugins/libtest-bad-major.so" ] || fail "a test plugin was installed"
host=$prefix/bin/mcp-host

step "new plugin from the template, outside the tree"
"$prefix/share/mcp-host/new-plugin.sh" acme_items "$work/acme_items" > /dev/null
[ -f "$work/acme_items/acme_items.cpp" ] || fail "new-plugin.sh did not rename the template"
cmake -S "$work/acme_items" -B "$work/acme_items/build" -DCMAKE_PREFIX_PATH="$prefix" > "$work/configure.log" ||
  { cat "$work/configure.log"; fail "configure"; }
cmake --build "$work/acme_items/build" --parallel 2 > "$work/build.log" || { cat "$work/build.log"; fail "build"; }
ctest --test-dir "$work/acme_items/build" --output-on-failure > "$work/ctest.log" || { cat "$work/ctest.log"; fail "unit test"; }
grep -q "100% tests passed" "$work/ctest.log" || fail "the template's unit test did not run"
out=$("$host" plugin check "$work/acme_items/build/libacme_items.so") || fail "plugin check: $out"
expect "$out" "ok: acme_items 0.1.0" "plugin check"

step "call its tool through the installed host over stdio"
mkdir -p "$work/api/items"
echo '{"id":"42","name":"Answer"}' > "$work/api/items/42"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$work/api" > "$work/api.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q 'port [0-9]' "$work/api.log" && break; sleep 0.05; done
port=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$work/api.log" | head -1)
[ -n "$port" ] || fail "the local HTTP server did not start"
cat > "$work/acme.yaml" <<YAML
state_dir: $work/state
plugin_paths: [$work/acme_items/build]
plugins:
  - name: acme
    library: acme_items
    credentials: { api_token: oot-token }
    settings: { base_url: "http://127.0.0.1:$port" }
YAML
out=$(mcp_call "$host" "$work/acme.yaml" get_item '{"id":"42"}')
expect "$out" '"structuredContent":{"id":"42","name":"Answer"}' "get_item"

step "the plain-C example through pkg-config alone"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
mkdir -p "$work/c"
# shellcheck disable=SC2046  # the flags are meant to split
cc -shared -fPIC -Wall -Wextra $(pkg-config --cflags mcp_plugin) "$src/plugins/example-echo/echo.c" -o "$work/c/libc_echo.so"
exported=$(nm -D --defined-only "$work/c/libc_echo.so" | awk '{print $3}' | sort | tr '\n' ' ')
[ "$exported" = "mcph_plugin_entry " ] || fail "the C plugin exports more than its entry: $exported"
out=$("$host" plugin check "$work/c/libc_echo.so") || fail "plugin check: $out"
cat > "$work/c.yaml" <<YAML
state_dir: $work/state
plugin_paths: [$work/c]
plugins:
  - { name: c_echo, library: c_echo }
YAML
out=$(mcp_call "$host" "$work/c.yaml" echo '{"text":"from C"}')
expect "$out" '"text":"from C"' "echo"

step "move the prefix; the host finds its bundled plugins relative to itself"
mv "$prefix" "$work/moved"
cat > "$work/moved.yaml" <<YAML
state_dir: $work/state
plugins:
  - { name: counter, library: example-counter }
YAML
out=$(mcp_call "$work/moved/bin/mcp-host" "$work/moved.yaml" slow_count '{"n":2,"delay_ms":1}')
expect "$out" '"structuredContent":{"counted":2}' "slow_count from the moved host"
[ "$(PKG_CONFIG_PATH=$work/moved/lib/pkgconfig pkg-config --variable=includedir mcp_plugin)" -ef "$work/moved/include" ] ||
  fail "the moved .pc file does not point into the moved prefix"
cmake -S "$work/acme_items" -B "$work/acme_moved" -DCMAKE_PREFIX_PATH="$work/moved" -DBUILD_TESTING=OFF > "$work/configure2.log" ||
  { cat "$work/configure2.log"; fail "configure against the moved prefix"; }
grep -q "^mcp_plugin_DIR:PATH=$work/moved/lib/cmake/mcp_plugin$" "$work/acme_moved/CMakeCache.txt" ||
  fail "find_package did not use the moved prefix"
echo "out-of-tree SDK: all steps passed"
