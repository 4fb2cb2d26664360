#include "telemetry/otlp.hpp"

#include <spdlog/spdlog.h>

#include "telemetry/trace.hpp"

namespace mcph::telemetry {

void append_resource(std::string& out, const Collector& c) {
  out += "\"resource\":{\"attributes\":[";
  auto attribute = [&](std::string_view key, std::string_view value, bool first = false) {
    if (!first) out += ',';
    out += "{\"key\":";
    append_json_string(out, key);
    out += ",\"value\":{\"stringValue\":";
    append_json_string(out, value);
    out += "}}";
  };
  attribute("service.name", c.service_name, true);
  if (!c.service_version.empty()) attribute("service.version", c.service_version);
  if (!c.service_instance.empty()) attribute("service.instance.id", c.service_instance);
  out += "]}";
}

void append_scope(std::string& out, const Collector& c) {
  out += "\"scope\":{\"name\":\"mcp-host\"";
  if (!c.service_version.empty()) {
    out += ",\"version\":";
    append_json_string(out, c.service_version);
  }
  out += '}';
}

}  // namespace mcph::telemetry
