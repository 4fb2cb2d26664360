/* Registers a tool whose name MCP does not allow (a space) next to a good one, and ignores
 * the host's refusal: `plugin check` must name the bad tool. */
#include "broken_plugin.h"

static mcph_status create(const mcph_host_api *host, mcph_host_instance *hi, mcph_str s, void **out) {
  mcph_tool_def bad = tool_def(MCPH_LIT("list files"));
  mcph_tool_def good = tool_def(MCPH_LIT("list_files"));
  (void)s;
  host->register_tool(hi, &bad); /* refused */
  host->register_tool(hi, &good);
  *out = NULL;
  return MCPH_OK;
}

MCPH_TEST_PLUGIN("test-bad-tool-name", "registers a tool with a space in its name", create)
