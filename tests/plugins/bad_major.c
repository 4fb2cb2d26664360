/* Claims ABI major 2: the host must refuse it, naming both versions. */
#include <stddef.h>
#include "mcp_plugin/abi.h"

static mcph_status create(const mcph_host_api *h, mcph_host_instance *hi, mcph_str s, void **out) {
  (void)h; (void)hi; (void)s; *out = NULL;
  return MCPH_OK;
}
static void destroy(void *i) { (void)i; }

MCPH_PLUGIN_EXPORT const mcph_plugin_descriptor *mcph_plugin_entry(uint16_t major, uint16_t minor) {
  static const mcph_plugin_descriptor d = {sizeof(mcph_plugin_descriptor), 2, 3, MCPH_LIT("test-bad-major"),
                                           MCPH_LIT("0"), MCPH_LIT("wrong major"), create, destroy};
  (void)major; (void)minor;
  return &d;
}
