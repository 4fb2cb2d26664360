// Test support: the real mcp-host binary serving Streamable HTTP on 127.0.0.1 with a free
// port, and a small client for it.
#pragma once

#include <fstream>
#include <regex>

#include <httplib.h>

#include "host_fixture.hpp"
#include "process.hpp"

namespace mcph::testing {

class HttpHost {
 public:
  // `server_yaml` goes under `server:` (indented two spaces); `http_yaml` under `server.http:`;
  // `top` holds more top-level keys (e.g. `store:`).
  explicit HttpHost(const std::string& plugins_yaml, const std::string& http_yaml = "",
                    const std::string& server_yaml = "", const std::vector<std::string>& env = {},
                    const std::string& top = "") {
    const std::string cfg = dir_.str() + "/mcp-host.yaml";
    std::ofstream(cfg) << top << config_yaml(dir_.str() + "/state", plugins_yaml,
                                      server_yaml + "  http:\n    listen: 127.0.0.1:0\n" + http_yaml);
    process_ = std::make_unique<Process>(
        std::vector<std::string>{MCPH_BINARY, "serve", "--config", cfg, "--transport", "http", "--log-level", "debug"}, env);
    // The host logs its URL once it listens.
    const std::regex url_re("at (https?://127\\.0\\.0\\.1:([0-9]+))/");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::smatch m;
    while (std::chrono::steady_clock::now() < deadline) {
      std::string err = process_->stderr_text();
      if (std::regex_search(err, m, url_re)) {
        url_ = m[1];
        port_ = std::stoi(m[2]);
        return;
      }
      if (process_->wait(std::chrono::milliseconds(10))) break;
    }
    ADD_FAILURE() << "mcp-host did not start:\n" << process_->stderr_text();
  }

  const std::string& url() const { return url_; }
  std::string config_path() const { return dir_.str() + "/mcp-host.yaml"; }
  int port() const { return port_; }
  Process& process() { return *process_; }
  std::unique_ptr<httplib::Client> client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(10, 0);
    return c;
  }

 private:
  TempDir dir_;
  std::unique_ptr<Process> process_;
  std::string url_;
  int port_ = 0;
};

inline nlohmann::json body_json(const httplib::Result& r) {
  return r ? nlohmann::json::parse(r->body, nullptr, false) : nlohmann::json();
}

// The JSON messages of an SSE body ("data:" lines).
inline std::vector<nlohmann::json> sse_messages(const std::string& body) {
  std::vector<nlohmann::json> out;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    size_t end = body.find('\n', pos);
    out.push_back(nlohmann::json::parse(body.substr(pos + 6, end - pos - 6), nullptr, false));
    pos = end;
  }
  return out;
}

}  // namespace mcph::testing
