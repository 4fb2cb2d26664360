/* Registers the same tool name twice: the host must refuse the instance. */
#include <stddef.h>
#include "mcp_plugin/abi.h"

static mcph_status handler(void *i, void *u, mcph_call *c, mcph_str a) {
  (void)i; (void)u; (void)c; (void)a;
  return MCPH_OK;
}

static mcph_status create(const mcph_host_api *host, mcph_host_instance *hi, mcph_str s, void **out) {
  (void)s;
  mcph_tool_def def = {0};
  def.struct_size = sizeof def;
  def.name = MCPH_LIT("twice");
  def.handler = handler;
  host->register_tool(hi, &def);
  host->register_tool(hi, &def); /* refused; the host remembers why */
  *out = NULL;
  return MCPH_OK;
}
static void destroy(void *i) { (void)i; }

MCPH_PLUGIN_EXPORT const mcph_plugin_descriptor *mcph_plugin_entry(uint16_t major, uint16_t minor) {
  static const mcph_plugin_descriptor d = {sizeof(mcph_plugin_descriptor), MCPH_ABI_MAJOR, MCPH_ABI_MINOR,
                                           MCPH_LIT("test-duplicate-tool"), MCPH_LIT("0"),
                                           MCPH_LIT("registers a tool twice"), create, destroy};
  (void)minor;
  return major == MCPH_ABI_MAJOR ? &d : NULL;
}
