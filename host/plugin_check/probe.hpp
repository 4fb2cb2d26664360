// The risky half of `mcp-host plugin check`: loads one plugin library and drives it
// through the contract (entry, descriptor, create, destroy, two instances side by side).
// Runs plugin code, so check.cpp runs it in a child process; every step is announced to
// the Reporter first, so a crash or hang can be reported with what the plugin was doing.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "plugin_check/contract.hpp"

namespace mcph::plugin_check {

struct ProbeOptions {
  std::string library;                        // a path, or a bare name searched like the host does
  std::vector<std::string> search_dirs;
  nlohmann::json settings = nlohmann::json::object();  // handed to every create
  std::map<std::string, std::string> credentials;
  std::string state_dir;                       // scratch folder for the durable state service
};

class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void stage(const std::string& what) = 0;  // "creating an instance with empty settings"
  virtual void finding(const Finding& f) = 0;
  virtual void plugin(const nlohmann::json& info) = 0;  // name, version, abi, tools
};

void probe(const ProbeOptions& options, Reporter& out);

}  // namespace mcph::plugin_check
