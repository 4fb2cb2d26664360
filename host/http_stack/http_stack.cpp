#include "http_stack/http_stack.hpp"

#include <spdlog/spdlog.h>

#include "auth/oauth.hpp"
#include "config/config.hpp"
#include "telemetry/metrics_server.hpp"
#include "telemetry/otlp.hpp"
#include "transport/http.hpp"

namespace mcph::http_stack {

Result<std::unique_ptr<transport::HttpServer>> transport(protocol::Engine& engine, const config::HttpConfig& config,
                                                         std::function<nlohmann::json()> health,
                                                         std::optional<auth::OAuthOptions> oauth, store::StateStore* store) {
  auto stack = open();
  if (!stack) return Error{stack.error()};
  return (*stack)->transport(engine, config, std::move(health), std::move(oauth), store);
}

Result<std::unique_ptr<telemetry::MetricsServer>> metrics_server(const std::string& listen, std::function<std::string()> metrics) {
  auto stack = open();
  if (!stack) return Error{stack.error()};
  return (*stack)->metrics_server(listen, std::move(metrics));
}

std::unique_ptr<telemetry::OtlpSender> otlp_sender(const telemetry::Collector& collector, std::string_view signal) {
  auto stack = open();
  if (stack) return (*stack)->otlp_sender(collector, signal);
  spdlog::error("OTLP export of {}: {}", signal, stack.error());
  return nullptr;
}

services::HttpResponse OutboundHttp::send(const services::HttpRequest& request) {
  std::call_once(made_, [this] {
    auto stack = open();
    if (!stack) {
      error_ = stack.error();
      return;
    }
    client_ = (*stack)->client(observer_);
  });
  if (client_) return client_->send(request);
  services::HttpResponse failed;
  failed.outcome = services::HttpResponse::Outcome::Network;
  failed.error = error_;
  return failed;
}

}  // namespace mcph::http_stack
