# What `cmake --install build --prefix P` puts where (and what scripts/package.sh packs):
#
#   component runtime  (Debian package mcp-host)
#     P/bin/mcp-host
#     P/lib/mcp-host/mcp-host-plugin                (the child-process runner for
#                                                    isolation: process; found from bin/)
#     P/lib/mcp-host/mcp-host-http.so               (the HTTP stack, opened on first use;
#                                                    found from bin/ the same way)
#     P/lib/mcp-host/plugins/lib<bundled>.so       (mcph_add_plugin; the host searches
#                                                    <exe>/../lib/mcp-host/plugins)
#     P/share/mcp-host/mcp-host.yaml, README.md
#   component dev      (Debian package mcp-host-dev)
#     P/include/mcp_plugin/{abi.h,sdk.hpp,testing.hpp}
#     P/lib/cmake/mcp_plugin/                       (find_package(mcp_plugin CONFIG))
#     P/lib/pkgconfig/mcp_plugin.pc
#     P/share/mcp-host/plugin-guide.md, new-plugin.sh, template/   (the guide; the template
#                                                    and the script that copies it)
#
# Every path is relative to P, and the host, the CMake package and the .pc file find their
# folders relative to themselves: a moved prefix keeps working.
# The package files themselves are generated into build/mcp_plugin by cmake/sdk_package.cmake.
install(TARGETS mcp-host RUNTIME DESTINATION bin COMPONENT runtime)
install(TARGETS mcp-host-plugin RUNTIME DESTINATION lib/mcp-host COMPONENT runtime)
install(TARGETS mcp-host-http LIBRARY DESTINATION lib/mcp-host COMPONENT runtime)
install(FILES ${CMAKE_SOURCE_DIR}/config/mcp-host.yaml ${CMAKE_SOURCE_DIR}/README.md
        DESTINATION share/mcp-host COMPONENT runtime)

install(DIRECTORY ${CMAKE_SOURCE_DIR}/plugin_api/include/mcp_plugin DESTINATION include COMPONENT dev)
install(TARGETS mcph_plugin_api mcph_plugin_sdk mcph_plugin_testing EXPORT mcp_plugin_targets)
install(EXPORT mcp_plugin_targets NAMESPACE mcp_plugin:: FILE mcp_plugin-targets.cmake
        DESTINATION lib/cmake/mcp_plugin COMPONENT dev)
install(FILES ${CMAKE_BINARY_DIR}/mcp_plugin/mcp_plugin-config.cmake
              ${CMAKE_BINARY_DIR}/mcp_plugin/mcp_plugin-config-version.cmake
              ${CMAKE_BINARY_DIR}/mcp_plugin/mcp_plugin_add.cmake
        DESTINATION lib/cmake/mcp_plugin COMPONENT dev)
install(FILES ${CMAKE_BINARY_DIR}/mcp_plugin.pc DESTINATION lib/pkgconfig COMPONENT dev)
install(FILES ${CMAKE_SOURCE_DIR}/plugin_api/README.md DESTINATION share/mcp-host
        RENAME plugin-guide.md COMPONENT dev)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/plugins/template/ DESTINATION share/mcp-host/template COMPONENT dev)
install(PROGRAMS ${CMAKE_SOURCE_DIR}/scripts/new-plugin.sh DESTINATION share/mcp-host COMPONENT dev)
