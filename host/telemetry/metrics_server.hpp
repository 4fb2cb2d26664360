// telemetry.metrics_listen: a listener of its own that answers GET /metrics (and nothing
// else), so a stdio host can be scraped too, or metrics kept off the MCP address.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "result.hpp"

namespace mcph::telemetry {

// Part of the HTTP stack (http_stack/): an interface, so that mcp-host, which opens the
// stack as a module, holds one without linking its code.
class MetricsServer {
 public:
  // Listens on `listen` (host:port; port 0 picks one) and returns the server, whose url()
  // says where. (In the module: mcp-host calls http_stack::metrics_server().)
  static Result<std::unique_ptr<MetricsServer>> start(const std::string& listen, std::function<std::string()> metrics);
  virtual ~MetricsServer() = default;  // stops
  virtual const std::string& url() const = 0;
};

}  // namespace mcph::telemetry
