// The HTTP stack: the Streamable HTTP transport, the outbound HTTP client plugins use, the
// metrics listener and the OTLP sender, everything built on cpp-httplib (and through it on
// libssl and libcrypto). mcp-host opens it as a module, mcp-host-http.so, the first time it
// serves or sends HTTP; a host on stdio that sends nothing never does. Linked, those
// libraries were close to half of a stdio host's start-up on this project's VM (`mcp-host
// --version`: 497 page faults and 14.9 ms with them, 265 and 8.8 ms without; ~4,100 symbols
// bound eagerly, OpenSSL's error strings loaded and its configuration file read).
//
// The module is this build's own, not a plugin: the table below is C++, valid only between
// an mcp-host and the mcp-host-http.so built with it (the loader checks the version). The
// module reaches the rest of the host through mcp-host's exported symbols (exports.list).
// Tests link the stack instead (linked.cpp); the code is the same.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "result.hpp"
#include "services/http_client.hpp"

namespace mcph {
namespace auth {
struct OAuthOptions;
}
namespace config {
struct HttpConfig;
}
namespace protocol {
class Engine;
}
namespace store {
class StateStore;
}
namespace telemetry {
struct Collector;
class MetricsServer;
class OtlpSender;
}  // namespace telemetry
namespace transport {
class HttpServer;
}
}  // namespace mcph

namespace mcph::http_stack {

// What the module hands the host: its constructors, each returning an interface (an abstract
// class defined in its header), so the host links none of the module's code and has the type
// info of what it holds (UBSan checks each virtual call against it).
struct Table {
  const char* version;  // kVersion of the build it belongs to
  std::unique_ptr<services::HttpService> (*client)(services::HttpClient::Observer* observer);
  Result<std::unique_ptr<telemetry::MetricsServer>> (*metrics_server)(const std::string& listen,
                                                                       std::function<std::string()> metrics);
  std::unique_ptr<telemetry::OtlpSender> (*otlp_sender)(const telemetry::Collector& collector, std::string_view signal);
  std::unique_ptr<transport::HttpServer> (*transport)(protocol::Engine& engine, const config::HttpConfig& config,
                                                      std::function<nlohmann::json()> health,
                                                      std::optional<auth::OAuthOptions> oauth, store::StateStore* store);
};

// The stack, opened on the first call (mcp-host: loader.cpp) or linked (tests: linked.cpp);
// an error says why it cannot be opened, the same error every time. Thread-safe.
Result<const Table*> open();

// The constructors, through open(); each fails with its error.
Result<std::unique_ptr<transport::HttpServer>> transport(protocol::Engine& engine, const config::HttpConfig& config,
                                                         std::function<nlohmann::json()> health,
                                                         std::optional<auth::OAuthOptions> oauth, store::StateStore* store);
Result<std::unique_ptr<telemetry::MetricsServer>> metrics_server(const std::string& listen, std::function<std::string()> metrics);
// The OTLP sender's callers have no one to tell: without the stack it logs why and returns
// null (every export then fails and is counted so).
std::unique_ptr<telemetry::OtlpSender> otlp_sender(const telemetry::Collector& collector, std::string_view signal);

// The outbound HTTP the host hands plugins: the stack's client, made at the first request
// (when the stack cannot be opened, every request fails with why, as Network).
class OutboundHttp final : public services::HttpService {
 public:
  explicit OutboundHttp(services::HttpClient::Observer* observer = nullptr) : observer_(observer) {}
  // Hears the requests (telemetry); before the first one.
  void set_observer(services::HttpClient::Observer* observer) { observer_ = observer; }
  services::HttpResponse send(const services::HttpRequest& request) override;

 private:
  services::HttpClient::Observer* observer_;
  std::once_flag made_;
  std::unique_ptr<services::HttpService> client_;
  std::string error_;  // why there is no client_
};

}  // namespace mcph::http_stack
