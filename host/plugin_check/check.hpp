// `mcp-host plugin check LIBRARY...`: checks plugin libraries against the contract, each in
// a child process (probe.cpp) so that a plugin that crashes or hangs is reported with what
// it was doing, never suffered. One line per finding; exit status 1 on any error.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "plugin_check/contract.hpp"

namespace CLI {
class App;
}

namespace mcph::plugin_check {

struct CheckOptions {
  nlohmann::json settings = nlohmann::json::object();
  std::map<std::string, std::string> credentials;
  std::chrono::milliseconds step_timeout{10000};  // per step (load, create, destroy, ...)
};

struct LibraryReport {
  std::string library;     // as given
  nlohmann::json plugin;   // name, version, path, abi, tools (what the probe got to see)
  Findings findings;
  bool ok() const;
};

// Checks one library in a child process. Never throws; a crash, a hang or an exit of the
// child is itself a finding.
LibraryReport check_library(const std::string& library, const CheckOptions& options);

// Adds `plugin check` to the command line. When that command was chosen, run() does it and
// returns the exit status. Call chosen() after parsing.
class Command {
 public:
  explicit Command(CLI::App& app);
  bool chosen() const;
  int run() const;

 private:
  CLI::App* check_ = nullptr;
  std::vector<std::string> libraries_;
  bool json_ = false;
  double timeout_s_ = 10;
  std::string settings_ = "{}";
  std::vector<std::string> credentials_;
  std::string log_level_ = "off";
};

}  // namespace mcph::plugin_check
