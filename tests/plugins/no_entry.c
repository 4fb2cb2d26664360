/* A shared library without the entry symbol: the host must say it is not a plugin. */
#include "mcp_plugin/abi.h"

MCPH_PLUGIN_EXPORT int not_the_entry(void);
MCPH_PLUGIN_EXPORT int not_the_entry(void) { return MCPH_ABI_MAJOR; }
