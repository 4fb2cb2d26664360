#!/usr/bin/env bash
# The Debian packages (cmake/packaging.cmake) of this build: both build with cpack; their
# file lists and dependencies are right; unpacked into a scratch root (dpkg -x, no root
# needed) the host finds its bundled plugins and the SDK's pkg-config file works.
#
#   tests/sdk/packages.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/mcph-deb-XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }
has() {  # list needle what
  grep -qxF -- "$2" <<< "$1" || fail "$3 lacks $2"
}
lacks() {
  ! grep -q -- "$2" <<< "$1" || fail "$3 should not contain $2"
}

(cd "$build" && cpack -G DEB -B "$work/dist" > "$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack"; }
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")
host_deb=$work/dist/mcp-host_${version}-1_amd64.deb
dev_deb=$work/dist/mcp-host-dev_${version}-1_all.deb
[ -f "$host_deb" ] && [ -f "$dev_deb" ] || fail "expected $host_deb and $dev_deb; got: $(ls "$work/dist")"

files=$(dpkg-deb -c "$host_deb" | awk '{print $6}')
for f in ./usr/bin/mcp-host ./usr/lib/mcp-host/mcp-host-http.so ./usr/lib/mcp-host/plugins/libexample-echo.so ./usr/lib/mcp-host/plugins/libexample-counter.so \
         ./usr/lib/mcp-host/plugins/libcodesphere.so ./usr/lib/mcp-host/plugins/libcodegen.so ./usr/share/mcp-host/mcp-host.yaml; do
  has "$files" "$f" "mcp-host"
done
lacks "$files" "libtest-" "mcp-host"
lacks "$files" "libmy_plugin" "mcp-host"
lacks "$files" "/usr/include" "mcp-host"
depends=$(dpkg-deb -f "$host_deb" Depends)
for d in libc6 libstdc++6 libyaml-cpp0.7 libsqlite3-0 libssl3 libcpp-httplib0.11 ca-certificates; do
  grep -q "\b$d\b" <<< "$depends" || fail "mcp-host Depends lacks $d: $depends"
done
lacks "$depends" "libasan" "mcp-host Depends"
lacks "$depends" "libpq5" "mcp-host Depends"  # recommended, not required: only a PostgreSQL store opens it
grep -q "\blibpq5\b" <<< "$(dpkg-deb -f "$host_deb" Recommends)" || fail "mcp-host Recommends lacks libpq5"

files=$(dpkg-deb -c "$dev_deb" | awk '{print $6}')
for f in ./usr/include/mcp_plugin/abi.h ./usr/include/mcp_plugin/sdk.hpp ./usr/include/mcp_plugin/testing.hpp \
         ./usr/lib/cmake/mcp_plugin/mcp_plugin-config.cmake ./usr/lib/cmake/mcp_plugin/mcp_plugin-targets.cmake \
         ./usr/lib/cmake/mcp_plugin/mcp_plugin_add.cmake ./usr/lib/pkgconfig/mcp_plugin.pc \
         ./usr/share/mcp-host/plugin-guide.md ./usr/share/mcp-host/new-plugin.sh ./usr/share/mcp-host/template/CMakeLists.txt; do
  has "$files" "$f" "mcp-host-dev"
done
lacks "$files" "/usr/bin" "mcp-host-dev"
depends=$(dpkg-deb -f "$dev_deb" Depends)
grep -qF "mcp-host (= ${version}-1)" <<< "$depends" || fail "mcp-host-dev must depend on its exact mcp-host: $depends"
grep -q "nlohmann-json3-dev" <<< "$depends" || fail "mcp-host-dev Depends lacks nlohmann-json3-dev: $depends"

# Unpacked, as apt would lay them out (below a scratch root instead of /).
dpkg -x "$host_deb" "$work/root"
dpkg -x "$dev_deb" "$work/root"
out=$("$work/root/usr/bin/mcp-host" plugin check example-echo codesphere) || fail "plugin check from the package: $out"
grep -q "^example-echo: ok: example-echo" <<< "$out" || fail "the packaged host did not find its bundled plugin: $out"
# It opens its HTTP stack (mcp-host-http.so) from ../lib/mcp-host.
printf 'state_dir: %s\nserver: { transport: http, http: { listen: "127.0.0.1:0" } }\nplugins: [ { name: echo, library: example-echo } ]\n' \
  "$work/state" > "$work/http.yaml"
"$work/root/usr/bin/mcp-host" serve --config "$work/http.yaml" 2> "$work/serve.log" &
pid=$!
for _ in $(seq 100); do grep -q 'http://' "$work/serve.log" && break; sleep 0.05; done
kill "$pid"
wait "$pid" || true
grep -q "serving 2 tools from 1 plugin instances at http://127.0.0.1:" "$work/serve.log" ||
  fail "the packaged host does not serve HTTP: $(cat "$work/serve.log")"
PKG_CONFIG_PATH=$work/root/usr/lib/pkgconfig
export PKG_CONFIG_PATH
# shellcheck disable=SC2046
cc -shared -fPIC $(pkg-config --cflags mcp_plugin) "$src/plugins/example-echo/echo.c" -o "$work/libecho_from_deb.so" ||
  fail "the packaged pkg-config file does not build the C example"
echo "Debian packages: mcp-host and mcp-host-dev $version-1 pass"
