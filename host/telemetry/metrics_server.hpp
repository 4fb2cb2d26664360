// telemetry.metrics_listen: a listener of its own that answers GET /metrics (and nothing
// else), so a stdio host can be scraped too, or metrics kept off the MCP address.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "result.hpp"

namespace httplib {
class Server;
}

namespace mcph::telemetry {

class MetricsServer {
 public:
  // Listens on `listen` (host:port; port 0 picks one) and returns the server, whose url()
  // says where.
  static Result<std::unique_ptr<MetricsServer>> start(const std::string& listen, std::function<std::string()> metrics);
  virtual ~MetricsServer();  // stops (virtual: part of the HTTP stack, see http_stack/)
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  const std::string& url() const { return url_; }

 private:
  MetricsServer();
  std::unique_ptr<httplib::Server> server_;
  std::string url_;
  std::thread thread_;
};

}  // namespace mcph::telemetry
