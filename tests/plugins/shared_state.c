/* Keeps its instance in a global: the second create registers nothing and hands out the
 * same instance pointer. `plugin check` must say that two instances share state. */
#include "broken_plugin.h"

static int g_instance;
static int g_created;

static mcph_status create(const mcph_host_api *host, mcph_host_instance *hi, mcph_str s, void **out) {
  (void)s;
  if (g_created++ == 0) {
    mcph_tool_def once = tool_def(MCPH_LIT("only_once"));
    host->register_tool(hi, &once);
  }
  *out = &g_instance;
  return MCPH_OK;
}

MCPH_TEST_PLUGIN("test-shared-state", "keeps its instance in a global", create)
