// Test support: the fake Codegen API (tests/fakes/codegen_fake.py, a separate process on
// 127.0.0.1 with a free port that keeps its state while a host restarts or is killed) and
// its control endpoints (what it was asked, runs to seed and script, faults to inject).
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth/oauth.hpp"
#include "process.hpp"
#include "services/http_client.hpp"

namespace mcph::testing {

class CodegenFake {
 public:
  // Accepts each of `tokens` as a bearer token (a request's "user" is its index).
  explicit CodegenFake(const std::vector<std::string>& tokens) : proc_(command(tokens)) {
    if (auto line = proc_.read_line(std::chrono::seconds(15)); line && line->rfind("PORT ", 0) == 0) {
      port_ = std::stoi(line->substr(5));
    }
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // A raw request (to the API or the control endpoints): (status, parsed body).
  std::pair<int, nlohmann::json> send(const std::string& method, const std::string& path,
                                      const nlohmann::json& body = nullptr, const std::string& token = "") {
    services::HttpRequest req;
    req.method = method;
    req.url = url() + path;
    if (!body.is_null()) {
      req.body = body.dump();
      req.headers.emplace_back("Content-Type", "application/json");
    }
    if (!token.empty()) req.headers.emplace_back("Authorization", "Bearer " + token);
    auto res = http_.send(req);
    return {res.status, nlohmann::json::parse(res.body, nullptr, false)};
  }
  nlohmann::json post(const std::string& path, const nlohmann::json& body) { return send("POST", path, body).second; }

  // Recorded API requests (seq, method, path, query, body, auth_ok, user, status, fault,
  // traceparent), those whose path matches the regex (and method) when given.
  nlohmann::json requests(const std::string& path_regex = "", const std::string& method = "") {
    std::string q = "/_fake/requests";
    if (!path_regex.empty()) q += "?path=" + auth::url_encode(path_regex);
    if (!method.empty()) q += (path_regex.empty() ? "?method=" : "&method=") + method;
    return send("GET", q).second;
  }
  size_t gets_of(int64_t run) { return requests("/agent/run/" + std::to_string(run) + "$", "GET").size(); }
  // A run as the fake holds it (with its polls, resumes and scripts).
  nlohmann::json run(int64_t id) { return send("GET", "/_fake/runs/" + std::to_string(id)).second; }
  size_t resumes_of(int64_t id) { return run(id)["resumes"].size(); }
  // A run made outside the host (an orchestrator, say), in organisation 42.
  int64_t seed(nlohmann::json body) {
    body["org_id"] = 42;
    return post("/_fake/runs", body)["ids"][0].get<int64_t>();
  }
  void update(int64_t id, const nlohmann::json& body) { post("/_fake/runs/" + std::to_string(id), body); }
  void fault(const nlohmann::json& f) { post("/_fake/faults", f); }
  void script_next(const nlohmann::json& s) { post("/_fake/script_next", s); }

 private:
  static std::vector<std::string> command(const std::vector<std::string>& tokens) {
    std::vector<std::string> cmd{"/usr/bin/env", "python3", std::string(MCPH_SOURCE_DIR) + "/tests/fakes/codegen_fake.py", "--port", "0"};
    for (const auto& t : tokens) {
      cmd.push_back("--token");
      cmd.push_back(t);
    }
    return cmd;
  }
  Process proc_;
  int port_ = 0;
  services::HttpClient http_;
};

}  // namespace mcph::testing
