/* ABI 1.1 registrations that break the rules: a template with an operator the host does not
 * match, a resource without a read handler, a prompt whose arguments are not an array.
 * `plugin check` must report each with the host's reason. */
#include "broken_plugin.h"

static mcph_status create(const mcph_host_api *host, mcph_host_instance *hi, mcph_str s, void **out) {
  mcph_resource_def docs = {0};
  mcph_resource_def orphan = {0};
  mcph_prompt_def prompt = {0};
  mcph_tool_def ping = tool_def(MCPH_LIT("ping"));
  (void)s;
  host->register_tool(hi, &ping);
  docs.struct_size = sizeof docs;
  docs.uri_template = MCPH_LIT("docs://{+path}");
  docs.name = MCPH_LIT("docs");
  docs.read = noop_handler;
  host->register_resource(hi, &docs);
  orphan.struct_size = sizeof orphan;
  orphan.uri = MCPH_LIT("notes://today");
  orphan.name = MCPH_LIT("today");
  host->register_resource(hi, &orphan);
  prompt.struct_size = sizeof prompt;
  prompt.name = MCPH_LIT("review");
  prompt.arguments = MCPH_LIT("{\"name\":\"diff\"}");
  prompt.get = noop_handler;
  host->register_prompt(hi, &prompt);
  *out = NULL;
  return MCPH_OK;
}

MCPH_TEST_PLUGIN("test-bad-resource", "registers broken resources and prompts", create)
