// Streamable HTTP transport (mcp-spec §4.2) for both eras from one endpoint:
//  - legacy (2024-11-05 ... 2025-11-25): initialize opens a session (Mcp-Session-Id);
//    GET opens the session's server-to-client SSE stream; DELETE ends it.
//  - modern (2026-07-28): stateless POSTs whose Mcp-* headers must match the body; closing
//    a call's response stream cancels the call.
// Answers are plain JSON unless the call sends notifications (progress, logs) or runs long,
// and the client accepts text/event-stream: then that POST's answer becomes an SSE stream.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "auth/oauth.hpp"
#include "config/config.hpp"
#include "protocol/engine.hpp"
#include "result.hpp"

namespace mcph::transport {

// The transport as the host drives it: an interface, so that mcp-host, which opens the HTTP
// stack as a module (http_stack/), holds one without linking its code.
class HttpServer {
 public:
  virtual ~HttpServer() = default;
  // Binds the listen address (port 0 picks a free port); returns the base URL,
  // e.g. "http://127.0.0.1:41234".
  virtual Result<std::string> bind() = 0;
  // Serves GET /metrics (no auth, like /healthz) with `metrics`'s text. Call before bind().
  virtual void serve_metrics(std::function<std::string()> metrics) = 0;
  // Hears each request refused before it reached MCP (status, reason): telemetry. Before run().
  virtual void on_refused(std::function<void(int status, const std::string& reason)> fn) = 0;
  // Serves until stop(). In-flight requests finish before it returns.
  virtual void run() = 0;
  // Stops accepting and ends idle streams. Thread-safe.
  virtual void stop() = 0;
};

// Part of the HTTP stack: mcp-host makes it through http_stack::transport().
class HttpTransport final : public HttpServer {
 public:
  // `health` produces the body of GET /healthz (no auth). With auth.mode oauth, `oauth`
  // (keys and form fields; the issuer defaults to the bound URL) and `store` are required;
  // `store` also answers GET /readyz.
  HttpTransport(protocol::Engine& engine, const config::HttpConfig& config, std::function<nlohmann::json()> health,
                std::optional<auth::OAuthOptions> oauth = std::nullopt, store::StateStore* store = nullptr);
  ~HttpTransport() override;

  Result<std::string> bind() override;
  void serve_metrics(std::function<std::string()> metrics) override;
  void on_refused(std::function<void(int status, const std::string& reason)> fn) override;
  void run() override;
  void stop() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcph::transport
