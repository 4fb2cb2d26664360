/* create dereferences a null pointer: `plugin check` must report the crash and the step,
 * and survive it. */
#include "broken_plugin.h"

static mcph_status create(const mcph_host_api *host, mcph_host_instance *hi, mcph_str s, void **out) {
  volatile int *nowhere = NULL;
  (void)host; (void)hi; (void)s;
  *nowhere = 42;
  *out = NULL;
  return MCPH_OK;
}

MCPH_TEST_PLUGIN("test-crash-create", "crashes in create", create)
