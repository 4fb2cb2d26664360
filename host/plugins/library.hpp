// A loaded plugin library: the shared object and its descriptor, checked against our ABI.
// Kept alive (shared_ptr) by every instance and tool that came from it, so the library is
// never unloaded while any of its code may still run (ABI rule 10).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/dll/shared_library.hpp>

#include "mcp_plugin/abi.h"
#include "result.hpp"

namespace mcph::plugins {

class Library {
 public:
  // `spec` is a bare name ("example-echo", searched as lib<name>.so and <name>.so in each
  // of `search_dirs`, in order) or a path (contains '/' or ends in ".so"). Errors name the
  // file, every path tried and, for version mismatches, both versions.
  static Result<std::shared_ptr<Library>> load(const std::string& spec,
                                               const std::vector<std::string>& search_dirs);

  const std::string& path() const { return path_; }
  // The plugin's descriptor, copied into a zeroed struct of our size (fields the plugin
  // does not know read as absent).
  const mcph_plugin_descriptor& descriptor() const { return descriptor_; }
  std::string name() const;
  std::string version() const;

 private:
  Library() = default;
  boost::dll::shared_library lib_;
  std::string path_;
  mcph_plugin_descriptor descriptor_{};
};

// The places a bare library name is looked for: the YAML plugin_paths, then the folder
// next to the executable's (build tree: build/plugins; installed: ../lib/mcp-host/plugins).
std::vector<std::string> default_search_dirs(const std::vector<std::string>& configured);

}  // namespace mcph::plugins
