/* Compiled as strict C99: abi.h must need nothing from C++ (ARCHITECTURE rule 1). */
#include "mcp_plugin/abi.h"

static mcph_status handler(void *instance, void *user, mcph_call *call, mcph_str args) {
  (void)instance; (void)user; (void)call; (void)args;
  return MCPH_OK;
}

int mcph_abi_as_c_check(void);
int mcph_abi_as_c_check(void) {
  mcph_tool_def def = {0};
  mcph_str name = MCPH_LIT("x");
  def.struct_size = sizeof def;
  def.name = name;
  def.handler = handler;
  return (int)def.struct_size + MCPH_ABI_MAJOR;
}
