# Debian packages with CPack (scripts/package.sh runs it):
#   mcp-host      the runtime install component: /usr/bin/mcp-host, the bundled plugins in
#                 /usr/lib/mcp-host/plugins, /usr/share/mcp-host; library dependencies
#                 computed by dpkg-shlibdeps.
#   mcp-host-dev  the dev component: headers, CMake package, pkg-config file, test harness,
#                 template and guide; depends on the exact mcp-host it belongs to and on
#                 nlohmann-json3-dev (sdk.hpp and the CMake package need it).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mcp-host)
set(CPACK_PACKAGE_VENDOR "mcp-host")
set(CPACK_PACKAGE_CONTACT "mcp-host maintainers <mcp-host@users.noreply.github.com>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # <name>_<version>-<release>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://modelcontextprotocol.io")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME mcp-host)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION net)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "ca-certificates")  # the HTTP client verifies TLS with the system store
# libpq is opened only for store.backend: postgresql (host/store/libpq.cpp), so shlibdeps
# does not see it.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_RECOMMENDS "libpq5")
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
  "Model Context Protocol host for plugin-provided tools\n mcp-host speaks MCP over stdio and Streamable HTTP and loads tool plugins\n (shared libraries behind a stable C ABI) chosen by a YAML file. Bundled\n plugins: example-echo, example-counter, codesphere, codegen.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME mcp-host-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_DEV_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "mcp-host (= ${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}), nlohmann-json3-dev (>= 3.11)")
set(CPACK_DEBIAN_DEV_PACKAGE_RECOMMENDS "cmake (>= 3.16), g++, pkg-config, libgtest-dev")
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "SDK for mcp-host plugins\n The C ABI (mcp_plugin/abi.h), the header-only C++ layer (sdk.hpp) and test\n harness (testing.hpp), a CMake package (find_package(mcp_plugin)), a\n pkg-config file (mcp_plugin), the plugin template and the author's guide.")
include(CPack)
