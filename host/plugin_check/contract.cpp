#include "plugin_check/contract.hpp"

#include "plugins/instance.hpp"

#include <set>

#include "protocol/schema.hpp"

namespace mcph::plugin_check {

using nlohmann::json;

const char* level_name(Finding::Level level) {
  switch (level) {
    case Finding::Level::kError: return "error";
    case Finding::Level::kWarning: return "warning";
    case Finding::Level::kNote: return "note";
  }
  return "error";
}

json to_json(const Finding& f) {
  return json{{"level", level_name(f.level)}, {"check", f.check}, {"message", f.message}};
}

Finding finding_from_json(const json& j) {
  const std::string level = j.value("level", "error");
  Finding f;
  f.level = level == "warning" ? Finding::Level::kWarning : level == "note" ? Finding::Level::kNote : Finding::Level::kError;
  f.check = j.value("check", "");
  f.message = j.value("message", "");
  return f;
}

namespace {

Finding error(std::string message) { return {Finding::Level::kError, "tools", std::move(message)}; }
Finding warning(std::string message) { return {Finding::Level::kWarning, "tools", std::move(message)}; }

// A JSON text field of a tool definition that must hold a schema for an object.
void check_schema(const std::string& tool, const char* field, const std::string& text, Findings& out) {
  if (text.empty()) return;  // absent: no arguments (input) or no structuredContent (output)
  const std::string where = "tool '" + tool + "': " + field;
  json schema;
  try {
    schema = json::parse(text);
  } catch (const json::parse_error& e) {
    out.push_back(error(where + " is not valid JSON (" + e.what() + ")"));
    return;
  }
  if (!schema.is_object()) {
    out.push_back(error(where + " must be a JSON Schema object, got " + std::string(schema.type_name())));
    return;
  }
  if (schema.value("type", json()) != "object") {
    out.push_back(error(where + " must have \"type\": \"object\" (MCP tools take and return objects)"));
  }
  if (auto compiled = protocol::Schema::compile(schema); !compiled) {
    out.push_back(error(where + " is not a valid JSON Schema: " + compiled.error()));
  }
}

// MCP ToolAnnotations (2025-06-18 and later): title is a string, the hints are booleans.
void check_annotations(const std::string& tool, const std::string& text, Findings& out) {
  if (text.empty()) return;
  const std::string where = "tool '" + tool + "': annotations";
  json a = json::parse(text, nullptr, false);
  if (a.is_discarded()) {
    out.push_back(error(where + " are not valid JSON"));
    return;
  }
  if (!a.is_object()) {
    out.push_back(error(where + " must be a JSON object (MCP ToolAnnotations), got " + std::string(a.type_name())));
    return;
  }
  static const std::set<std::string> kHints = {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"};
  for (const auto& [key, value] : a.items()) {
    if (key == "title") {
      if (!value.is_string()) out.push_back(error(where + ": title must be a string"));
    } else if (kHints.count(key) != 0) {
      if (!value.is_boolean()) out.push_back(error(where + ": " + key + " must be true or false"));
    } else {
      out.push_back(warning(where + ": unknown field '" + key + "' (clients ignore it)"));
    }
  }
}

}  // namespace

Findings check_tools(const std::vector<RawTool>& tools) {
  Findings out;
  std::set<std::string> seen;
  for (const auto& t : tools) {
    if (t.outside_create) {
      out.push_back(error("tool '" + t.name + "' was registered after create returned (register tools only inside create)"));
      continue;
    }
    if (!plugins::valid_tool_name(t.name)) {
      out.push_back(error(t.name.empty() ? std::string("a tool has an empty name")
                                         : "tool '" + t.name + "': invalid name (MCP tool names are 1-128 of A-Z a-z 0-9 _ . -)"));
    } else if (!seen.insert(t.name).second) {
      out.push_back(error("tool '" + t.name + "' is registered twice"));
      continue;  // the rest was said of its first registration
    }
    if (!t.has_handler) out.push_back(error("tool '" + t.name + "' has no handler"));
    if (t.description.empty()) {
      out.push_back(warning("tool '" + t.name + "' has no description (the model chooses tools by it)"));
    }
    check_schema(t.name, "input_schema", t.input_schema, out);
    check_schema(t.name, "output_schema", t.output_schema, out);
    check_annotations(t.name, t.annotations, out);
  }
  return out;
}

Findings check_descriptor(const DescriptorInfo& d, unsigned host_major, unsigned host_minor) {
  Findings out;
  auto add = [&](Finding::Level level, std::string message) { out.push_back({level, "descriptor", std::move(message)}); };
  if (d.name.empty()) add(Finding::Level::kError, "the descriptor has no name (logs and errors name the plugin by it)");
  if (d.version.empty()) add(Finding::Level::kError, "the descriptor has no version (state your plugin's own version)");
  if (d.description.empty()) add(Finding::Level::kWarning, "the descriptor has no description");
  if (d.abi_major == host_major && d.abi_minor > host_minor) {
    add(Finding::Level::kWarning, "built for ABI " + std::to_string(d.abi_major) + "." + std::to_string(d.abi_minor) +
                                      ", newer than this host's " + std::to_string(host_major) + "." +
                                      std::to_string(host_minor) +
                                      ": it loads, but must check host->struct_size before using newer services");
  }
  return out;
}

}  // namespace mcph::plugin_check
