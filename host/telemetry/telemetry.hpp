// The host's telemetry: the OpenTelemetry MCP semantic conventions' metrics
// (mcp.server.operation.duration, mcp.server.session.duration), outbound HTTP per plugin
// instance (http.client.request.duration), and what operators of this host need (calls in
// flight, sessions and streams, plugin instances and their restarts), in Prometheus text
// at /metrics. Names follow the OpenTelemetry-to-Prometheus mapping: dots become
// underscores, seconds get "_seconds", counters "_total". No label carries a user, a
// secret or an argument; tool, prompt and instance names are bounded by the configuration.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "protocol/engine.hpp"
#include "services/http_client.hpp"
#include "telemetry/metrics.hpp"

namespace mcph::telemetry {

// What the scrape-time gauges read (set once, before the first scrape).
struct Sources {
  std::function<double()> calls_in_flight;
  std::function<double()> sessions;        // legacy sessions open
  std::function<double()> streams;         // SSE and listen streams open
  struct Instance {
    std::string name, isolation, state;
    int restarts = 0;
  };
  std::function<std::vector<Instance>()> instances;
};

class Telemetry final : public protocol::RequestObserver {
 public:
  // `network_transport`: "pipe" (stdio) or "tcp" (HTTP), as the conventions name them.
  explicit Telemetry(std::string network_transport);

  void request_done(const protocol::RequestRecord& record) override;
  void session_done(const std::string& version, std::chrono::steady_clock::duration lasted) override;
  // One outbound HTTP request a plugin made through the host.
  void http_done(const services::HttpRequest& request, const services::HttpResponse& response,
                 std::chrono::steady_clock::duration took);

  // One OAuth sign-in's outcome (granted, refused, unavailable).
  void sign_in(const char* outcome) { sign_ins_.add({outcome}); }

  void set_sources(Sources sources) { sources_ = std::move(sources); }
  std::string prometheus() const { return metrics_.prometheus(); }

 private:
  const std::string transport_;
  Metrics metrics_;
  Family& operations_;
  Family& sessions_;
  Family& http_;
  Family& sign_ins_;
  Sources sources_;
};

}  // namespace mcph::telemetry
