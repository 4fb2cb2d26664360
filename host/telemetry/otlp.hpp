// Where OTLP exports go: an OpenTelemetry collector's OTLP/HTTP receiver, JSON encoding.
// Traces (trace.hpp) and metrics (metrics.hpp) share the collector's address, its headers
// and the resource that names this host; each signal posts to <endpoint>/v1/<signal>, as
// OTEL_EXPORTER_OTLP_ENDPOINT defines it.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mcph::telemetry {

struct Collector {
  std::string endpoint;  // base URL of the collector's OTLP/HTTP receiver (http or https)
  std::vector<std::pair<std::string, std::string>> headers;  // sent with every export (may hold secrets)
  std::chrono::milliseconds timeout{10000};  // per export request
  // The resource: who sends.
  std::string service_name = "mcp-host";
  std::string service_version;
  std::string service_instance;  // the replica id
};

// Appends `"resource":{...}` (service.*) and, after the caller's `,"scope...":[{`, the scope
// object `"scope":{...}`: the parts every export of this host starts with.
void append_resource(std::string& out, const Collector& collector);
void append_scope(std::string& out, const Collector& collector);

// Posts exports of one signal ("traces", "metrics"). Keeps one connection; use it from one
// thread. Part of the HTTP stack (http_stack/): an interface, so that mcp-host, which opens
// the stack as a module, holds one without linking its code.
class OtlpSender {
 public:
  // (In the module: mcp-host calls http_stack::otlp_sender().)
  static std::unique_ptr<OtlpSender> connect(const Collector& collector, std::string_view signal);
  virtual ~OtlpSender() = default;
  // True when the collector accepted `body` (2xx). `what` names it in the debug log
  // ("12 spans"); never the headers, which may be the collector's credentials.
  virtual bool post(const std::string& body, std::string_view what) = 0;
};

}  // namespace mcph::telemetry
