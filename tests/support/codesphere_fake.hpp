// Test support: the fake Codesphere API (tests/fakes/codesphere_fake.py) on 127.0.0.1 with a
// free port, and its control endpoints (what it was asked, faults to inject, its state).
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "process.hpp"
#include "services/http_client.hpp"

namespace mcph::testing {

class CodesphereFake {
 public:
  // Accepts each of `tokens` (a request's "user" is its index).
  explicit CodesphereFake(const std::vector<std::string>& tokens) : proc_(command(tokens)) {
    auto line = proc_.read_line(std::chrono::seconds(15));
    if (line && line->rfind("PORT ", 0) == 0) port_ = std::stoi(line->substr(5));
  }

  int port() const { return port_; }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }

  nlohmann::json control(const std::string& method, const std::string& what, const nlohmann::json& body = nlohmann::json()) {
    services::HttpRequest req;
    req.method = method;
    req.url = base() + "/_fake/" + what;
    if (!body.is_null()) {
      req.body = body.dump();
      req.headers.emplace_back("Content-Type", "application/json");
    }
    auto r = http_.send(req);
    EXPECT_EQ(r.status, 200) << what << ": " << r.error << r.body;
    return nlohmann::json::parse(r.body, nullptr, false);
  }
  void reset() { control("POST", "reset"); }
  void fault(const nlohmann::json& f) { control("POST", "faults", f); }
  void pipeline(const nlohmann::json& p) { control("POST", "pipeline", p); }
  void logs(const nlohmann::json& l) { control("POST", "logs", l); }
  void state(const nlohmann::json& s) { control("POST", "state", s); }
  nlohmann::json streams() { return control("GET", "streams"); }
  std::vector<nlohmann::json> requests() { return control("GET", "requests")["requests"].get<std::vector<nlohmann::json>>(); }

 private:
  static std::vector<std::string> command(const std::vector<std::string>& tokens) {
    std::vector<std::string> argv{"/usr/bin/env", "python3", std::string(MCPH_SOURCE_DIR) + "/tests/fakes/codesphere_fake.py", "--port", "0",
                                  "--exit-on-stdin-eof"};
    for (const auto& t : tokens) {
      argv.push_back("--token");
      argv.push_back(t);
    }
    return argv;
  }
  Process proc_;
  services::HttpClient http_;
  int port_ = 0;
};

}  // namespace mcph::testing
