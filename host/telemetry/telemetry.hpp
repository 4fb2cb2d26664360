// The host's telemetry, in the OpenTelemetry MCP semantic conventions:
// - metrics: mcp.server.operation.duration, mcp.server.session.duration, outbound HTTP per
//   plugin instance (http.client.request.duration), and what operators of this host need
//   (calls in flight, sessions and streams, plugin instances and their restarts), in
//   Prometheus text at /metrics and over OTLP (a MetricsExporter of metrics()). Named as
//   OpenTelemetry names them; Prometheus names follow the usual mapping (metrics.hpp). No
//   attribute carries a user, a secret or an argument; tool, prompt and instance names are
//   bounded by the configuration.
// - traces (with a Tracer): a SERVER span per request, its parent the client's
//   params._meta.traceparent, and a CLIENT span per outbound HTTP request a plugin makes
//   for it, whose traceparent header travels upstream.
// - the audit log (with an AuditLog): one JSON line per request.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "protocol/engine.hpp"
#include "services/http_client.hpp"
#include "telemetry/audit.hpp"
#include "telemetry/metrics.hpp"
#include "telemetry/trace.hpp"

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
  std::function<double()> store_errors;  // operations of the state store that failed
  struct Tasks {
    double created = 0, completed = 0, failed = 0, cancelled = 0;  // by this replica
    double running = 0;                                            // work running here now
  };
  std::function<Tasks()> tasks;  // null: tasks are off
};

class Telemetry final : public protocol::RequestObserver, public services::HttpClient::Observer {
 public:
  // `network_transport`: "pipe" (stdio) or "tcp" (HTTP), as the conventions name them.
  // `tracer` and `audit` are optional.
  Telemetry(std::string network_transport, std::unique_ptr<Tracer> tracer = nullptr, std::unique_ptr<AuditLog> audit = nullptr);

  void request_started(protocol::RequestRecord& record) override;
  void request_done(const protocol::RequestRecord& record) override;
  void session_done(const std::string& version, std::chrono::steady_clock::duration lasted) override;
  std::string task_started(const protocol::RequestRecord& request) override;
  void task_done(const protocol::RequestRecord& request, const std::string& trace, std::chrono::steady_clock::duration took,
                 const nlohmann::json& response) override;
  // Outbound HTTP requests plugins make through the host.
  std::string http_started(const services::HttpRequest& request) override;
  void http_done(const services::HttpRequest& request, const services::HttpResponse& response,
                 std::chrono::steady_clock::duration took, const std::string& traceparent) override;

  // One OAuth sign-in's outcome (granted, refused, unavailable).
  void sign_in(const char* outcome) { sign_ins_.add({outcome}); }
  // An HTTP request refused before it reached the engine (401, 403, 400 for Host/Origin).
  void refused(int status, const std::string& reason);
  // SIGHUP: the audit file again under its name (logrotate).
  void reopen_audit();

  void set_sources(Sources sources) { sources_ = std::move(sources); }
  std::string prometheus() const { return metrics_.prometheus(); }
  const Metrics& metrics() const { return metrics_; }

 private:
  // What a request's plugin asked of upstream APIs, for its audit line.
  struct Upstream {
    std::string method, host, outcome;  // outcome: the status, or how it failed
  };
  void trace_request(const protocol::RequestRecord& r, const std::string& error_type);
  void audit_request(const protocol::RequestRecord& r, std::vector<Upstream> upstream);

  const std::string transport_;
  const std::unique_ptr<Tracer> tracer_;
  const std::unique_ptr<AuditLog> audit_;
  Metrics metrics_;
  Family& operations_;
  Family& sessions_;
  Family& http_;
  Family& sign_ins_;
  Family& refused_;
  Family& retries_;
  Sources sources_;
  std::mutex upstream_mutex_;
  std::unordered_map<std::string, std::vector<Upstream>> upstream_;  // by the request's traceparent; guarded
  // Requests that failed lately (429, 5xx, no answer), by instance, method and URL, for
  // counting the ones repeated as retries.
  std::mutex failed_mutex_;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> failed_;  // guarded by failed_mutex_
  std::atomic<bool> any_failed_{false};
  void note_retry(const services::HttpRequest& request, const services::HttpResponse& response, const std::string& host);
};

}  // namespace mcph::telemetry
