/* create never returns: `plugin check` must give up after its timeout, name the step and
 * kill the child process. */
#define _POSIX_C_SOURCE 200809L
#include <unistd.h>
#include "broken_plugin.h"

static mcph_status create(const mcph_host_api *host, mcph_host_instance *hi, mcph_str s, void **out) {
  (void)host; (void)hi; (void)s; (void)out;
  for (;;) sleep(1);
  return MCPH_OK;
}

MCPH_TEST_PLUGIN("test-hang-create", "never returns from create", create)
