/* Tools whose JSON is wrong in three ways: an input schema with a keyword of the wrong
 * type, an output schema that is not JSON, annotations with a hint that is not a boolean.
 * `plugin check` must report each. */
#include "broken_plugin.h"

static mcph_status create(const mcph_host_api *host, mcph_host_instance *hi, mcph_str s, void **out) {
  mcph_tool_def count = tool_def(MCPH_LIT("count"));
  mcph_tool_def report = tool_def(MCPH_LIT("report"));
  (void)s;
  count.input_schema = MCPH_LIT("{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":\"zero\"}}}");
  host->register_tool(hi, &count);
  report.output_schema = MCPH_LIT("{\"type\":\"object\",");
  report.annotations = MCPH_LIT("{\"readOnlyHint\":\"yes\"}");
  host->register_tool(hi, &report);
  *out = NULL;
  return MCPH_OK;
}

MCPH_TEST_PLUGIN("test-bad-schema", "registers tools with broken schemas", create)
