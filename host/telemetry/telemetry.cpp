#include "telemetry/telemetry.hpp"

namespace mcph::telemetry {
namespace {

using Seconds = std::chrono::duration<double>;

// The conventions' ExplicitBucketBoundaries for both MCP histograms.
const std::vector<double> kMcpBuckets = {0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300};
// http.client.request.duration's (HTTP semantic conventions).
const std::vector<double> kHttpBuckets = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10};

std::string host_of(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  const size_t end = url.find_first_of(":/?#", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

const char* outcome_name(services::HttpResponse::Outcome o) {
  switch (o) {
    case services::HttpResponse::Outcome::Ok: return "";
    case services::HttpResponse::Outcome::Cancelled: return "cancelled";
    case services::HttpResponse::Outcome::Timeout: return "timeout";
    case services::HttpResponse::Outcome::Network: return "network";
    case services::HttpResponse::Outcome::InvalidRequest: return "invalid_request";
  }
  return "_OTHER";
}

}  // namespace

Telemetry::Telemetry(std::string network_transport)
    : transport_(std::move(network_transport)),
      operations_(metrics_.histogram("mcp_server_operation_duration_seconds",
                                     "MCP request or notification duration as observed on the receiver from the time it was "
                                     "received until the result or ack is sent (mcp.server.operation.duration)",
                                     {"mcp_method_name", "gen_ai_tool_name", "gen_ai_prompt_name", "gen_ai_operation_name",
                                      "error_type", "rpc_response_status_code", "mcp_protocol_version", "network_transport",
                                      "mcp_host_instance"},
                                     kMcpBuckets)),
      sessions_(metrics_.histogram("mcp_server_session_duration_seconds",
                                   "The duration of the MCP session as observed on the MCP server (mcp.server.session.duration)",
                                   {"mcp_protocol_version", "network_transport"}, kMcpBuckets)),
      http_(metrics_.histogram("http_client_request_duration_seconds",
                               "Outbound HTTP requests plugins made through the host (http.client.request.duration)",
                               {"mcp_host_instance", "http_request_method", "http_response_status_code", "server_address", "error_type"},
                               kHttpBuckets)),
      sign_ins_(metrics_.counter("mcp_host_oauth_sign_ins", "OAuth sign-ins through the credentials form, by outcome", {"outcome"})) {
  metrics_.gauge("mcp_host_calls_in_flight", "Plugin calls running now (stuck ones included)", [this] {
    return std::vector<Sample>{{{}, sources_.calls_in_flight ? sources_.calls_in_flight() : 0}};
  });
  metrics_.gauge("mcp_host_sessions", "Legacy MCP sessions open", [this] {
    return std::vector<Sample>{{{}, sources_.sessions ? sources_.sessions() : 0}};
  });
  metrics_.gauge("mcp_host_streams", "SSE and subscriptions/listen streams open", [this] {
    return std::vector<Sample>{{{}, sources_.streams ? sources_.streams() : 0}};
  });
  auto instances = [this] { return sources_.instances ? sources_.instances() : std::vector<Sources::Instance>{}; };
  metrics_.gauge("mcp_host_plugin_instance_up", "1 for each plugin instance, labelled with its isolation and state", [instances] {
    std::vector<Sample> out;
    for (const auto& i : instances()) out.push_back({{{"mcp_host_instance", i.name}, {"isolation", i.isolation}, {"state", i.state}}, 1});
    return out;
  });
  metrics_.gauge("mcp_host_plugin_restarts_total", "Restarts of an isolated plugin instance's process", [instances] {
    std::vector<Sample> out;
    for (const auto& i : instances()) out.push_back({{{"mcp_host_instance", i.name}}, static_cast<double>(i.restarts)});
    return out;
  }, "counter");
}

void Telemetry::request_done(const protocol::RequestRecord& r) {
  std::string error_type, status_code;
  if (r.error_code) {
    status_code = std::to_string(*r.error_code);
    error_type = status_code;
  } else if (r.is_error) {
    error_type = "tool_error";
  }
  operations_.observe({r.method, r.tool, r.prompt, r.method == "tools/call" ? "execute_tool" : "", error_type, status_code, r.version,
                       transport_, r.instance},
                      Seconds(r.duration).count());
}

void Telemetry::session_done(const std::string& version, std::chrono::steady_clock::duration lasted) {
  sessions_.observe({version, transport_}, Seconds(lasted).count());
}

void Telemetry::http_done(const services::HttpRequest& request, const services::HttpResponse& response,
                          std::chrono::steady_clock::duration took) {
  const std::string error = response.status >= 400 ? std::to_string(response.status) : outcome_name(response.outcome);
  http_.observe({request.origin, request.method, response.status > 0 ? std::to_string(response.status) : "", host_of(request.url), error},
                Seconds(took).count());
}

}  // namespace mcph::telemetry
