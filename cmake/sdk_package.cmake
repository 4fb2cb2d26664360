# Generates the SDK's CMake package and pkg-config file into the build tree
# (build/mcp_plugin/, build/mcp_plugin.pc); cmake/install.cmake installs them. The package
# folder also serves plugins/template in-tree: mcp_plugin_DIR points there, and the config
# sees that the targets exist already (they are the in-tree ones).
include(CMakePackageConfigHelpers)
# The package version is mcp-host's; any SDK of the same major builds plugins for this
# host's ABI major (the ABI version itself is mcp_plugin_ABI_VERSION).
write_basic_package_version_file(${CMAKE_BINARY_DIR}/mcp_plugin/mcp_plugin-config-version.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
configure_file(${CMAKE_SOURCE_DIR}/cmake/mcp_plugin-config.cmake.in
               ${CMAKE_BINARY_DIR}/mcp_plugin/mcp_plugin-config.cmake @ONLY)
configure_file(${CMAKE_SOURCE_DIR}/cmake/mcp_plugin_add.cmake
               ${CMAKE_BINARY_DIR}/mcp_plugin/mcp_plugin_add.cmake COPYONLY)
configure_file(${CMAKE_SOURCE_DIR}/cmake/mcp_plugin.pc.in ${CMAKE_BINARY_DIR}/mcp_plugin.pc @ONLY)
