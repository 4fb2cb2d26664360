// The plugin contract as checks on what a plugin declared: its descriptor and the tool
// definitions it registered, exactly as it handed them over (before the host's own
// registration rules, so every problem is reported, not only the first). Pure functions,
// no plugin code runs here: probe.cpp collects the data, in a child process.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mcph::plugin_check {

struct Finding {
  enum class Level { kError, kWarning, kNote };
  Level level = Level::kError;
  std::string check;    // short id: load, descriptor, create, tools, destroy, instances, crash, timeout
  std::string message;  // one line
};
using Findings = std::vector<Finding>;

const char* level_name(Finding::Level level);
nlohmann::json to_json(const Finding& f);
Finding finding_from_json(const nlohmann::json& j);

// A tool as the plugin passed it to register_tool (JSON fields as raw text).
struct RawTool {
  std::string name;
  std::string title;
  std::string description;
  std::string input_schema;
  std::string output_schema;
  std::string annotations;
  bool has_handler = false;
  bool outside_create = false;  // register_tool called after create returned
};

// Every rule of the ABI and of MCP that a list of registered tools can break: names valid
// and unique, a handler, schemas that parse, are objects of "type": "object" and compile as
// JSON Schema, annotations with the types MCP's ToolAnnotations gives its fields.
Findings check_tools(const std::vector<RawTool>& tools);

// The descriptor's own fields: name and version filled, a description, the ABI minor.
struct DescriptorInfo {
  std::string name, version, description;
  unsigned abi_major = 0, abi_minor = 0;
};
Findings check_descriptor(const DescriptorInfo& d, unsigned host_major, unsigned host_minor);

}  // namespace mcph::plugin_check
