# mcp_plugin_add(NAME [SOURCES] src... [OUTPUT_DIRECTORY dir] [NO_INSTALL])
#
# Makes the mcp-host plugin NAME: a MODULE library lib<NAME>.so (the file name the host
# looks for when a config says `library: NAME`), built with hidden visibility so that only
# mcph_plugin_entry (MCPH_PLUGIN_EXPORT) is exported, linked to mcp_plugin::sdk (the
# headers; C plugins use only abi.h from it), and installed into lib/mcp-host/plugins under
# the install prefix: the folder an mcp-host installed in the same prefix searches.
#
#   OUTPUT_DIRECTORY  where the built .so lands (default: the current binary folder)
#   NO_INSTALL        no install rule (also when the variable MCP_PLUGIN_NO_INSTALL is set)
#   COMPONENT c       the install component (for packaging)
#
# Shipped with the SDK (lib/cmake/mcp_plugin/) and used by mcp-host's own tree, so bundled
# plugins and third-party plugins are built the same way.
include_guard(GLOBAL)

# Relative to the install prefix; the host finds it relative to its own executable
# (<prefix>/bin/../lib/mcp-host/plugins), so it is not a multiarch libdir on purpose.
set(MCP_PLUGIN_INSTALL_DIR "lib/mcp-host/plugins")

function(mcp_plugin_add name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "NO_INSTALL" "OUTPUT_DIRECTORY;COMPONENT" "SOURCES")
  set(sources ${arg_SOURCES} ${arg_UNPARSED_ARGUMENTS})
  if(NOT sources)
    message(FATAL_ERROR "mcp_plugin_add(${name}): no source files (mcp_plugin_add(${name} SOURCES my_plugin.c))")
  endif()
  if(NOT name MATCHES "^[A-Za-z0-9_.-]+$")
    message(FATAL_ERROR "mcp_plugin_add(${name}): a plugin name may use A-Z a-z 0-9 _ . - only")
  endif()
  add_library(${name} MODULE ${sources})
  set_target_properties(${name} PROPERTIES
    PREFIX "lib" OUTPUT_NAME ${name} SUFFIX ".so"
    C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  if(arg_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${arg_OUTPUT_DIRECTORY})
  endif()
  target_link_libraries(${name} PRIVATE mcp_plugin::sdk)
  if(NOT arg_NO_INSTALL AND NOT MCP_PLUGIN_NO_INSTALL)
    set(component)
    if(arg_COMPONENT)
      set(component COMPONENT ${arg_COMPONENT})
    endif()
    install(TARGETS ${name} LIBRARY DESTINATION ${MCP_PLUGIN_INSTALL_DIR} ${component})
  endif()
endfunction()
