// The HTTP stack's one entry point: mcp-host looks it up by name in mcp-host-http.so
// (loader.cpp); tests call it (linked.cpp).
#include "version.hpp"
#include "http_stack/http_stack.hpp"

#include "auth/oauth.hpp"
#include "config/config.hpp"
#include "telemetry/metrics_server.hpp"
#include "telemetry/otlp.hpp"
#include "transport/http.hpp"

namespace {

using namespace mcph;

const http_stack::Table kTable{
    kVersion,
    [](services::HttpClient::Observer* observer) -> std::unique_ptr<services::HttpService> {
      auto client = std::make_unique<services::HttpClient>();
      client->set_observer(observer);
      return client;
    },
    [](const std::string& listen, std::function<std::string()> metrics) {
      return telemetry::MetricsServer::start(listen, std::move(metrics));
    },
    [](const telemetry::Collector& collector, std::string_view signal) {
      return telemetry::OtlpSender::connect(collector, signal);
    },
    [](protocol::Engine& engine, const config::HttpConfig& config, std::function<nlohmann::json()> health,
       std::optional<auth::OAuthOptions> oauth, store::StateStore* store) -> std::unique_ptr<transport::HttpServer> {
      return std::make_unique<transport::HttpTransport>(engine, config, std::move(health), std::move(oauth), store);
    },
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const mcph::http_stack::Table* mcph_http_stack() { return &kTable; }
