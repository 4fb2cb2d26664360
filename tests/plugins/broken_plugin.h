/* Shared parts of the deliberately broken test plugins: each file writes only its create()
 * (the rule it breaks) and names itself with MCPH_TEST_PLUGIN. */
#ifndef MCPH_TESTS_BROKEN_PLUGIN_H
#define MCPH_TESTS_BROKEN_PLUGIN_H

#include <stddef.h>
#include "mcp_plugin/abi.h"

static inline mcph_status noop_handler(void *i, void *u, mcph_call *c, mcph_str a) {
  (void)i; (void)u; (void)c; (void)a;
  return MCPH_OK;
}

static inline void noop_destroy(void *i) { (void)i; }

/* A tool definition with a description and the no-op handler; set the rest. */
static inline mcph_tool_def tool_def(mcph_str name) {
  mcph_tool_def def = {0};
  def.struct_size = sizeof def;
  def.name = name;
  def.description = MCPH_LIT("a tool");
  def.handler = noop_handler;
  return def;
}

#define MCPH_TEST_PLUGIN(NAME, DESCRIPTION, CREATE)                                                   \
  MCPH_PLUGIN_EXPORT const mcph_plugin_descriptor *mcph_plugin_entry(uint16_t major, uint16_t minor) { \
    static const mcph_plugin_descriptor d = {sizeof(mcph_plugin_descriptor), MCPH_ABI_MAJOR,           \
                                             MCPH_ABI_MINOR, MCPH_LIT(NAME), MCPH_LIT("0"),          \
                                             MCPH_LIT(DESCRIPTION), CREATE, noop_destroy};            \
    (void)minor;                                                                                      \
    return major == MCPH_ABI_MAJOR ? &d : NULL;                                                       \
  }

#endif
