// A loaded plugin library: the shared object and its descriptor, checked against our ABI.
// Kept alive (shared_ptr) by every instance and tool that came from it, so the library is
// never unloaded while any of its code may still run (ABI rule 10).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/dll/shared_library.hpp>

#include "mcp_plugin/abi.h"
#include "result.hpp"

namespace mcph::plugins {

// Which file a path names, and which version of it: a library replaced on disk (installed
// anew, or rebuilt) gets another identity even under the same path.
struct FileId {
  uint64_t device = 0, inode = 0, size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileId&) const = default;
};
// The identity of the file at `path` now (all zero when it cannot be read).
FileId file_id(const std::string& path);

class Library {
 public:
  // `spec` is a bare name ("example-echo", searched as lib<name>.so and <name>.so in each
  // of `search_dirs`, in order) or a path (contains '/' or ends in ".so"). Errors name the
  // file, every path tried and, for version mismatches, both versions.
  // A library replaced on disk since it was first loaded is loaded anew (from a private
  // copy, since the dynamic loader would hand back the old code for the same path).
  static Result<std::shared_ptr<Library>> load(const std::string& spec,
                                               const std::vector<std::string>& search_dirs);
  // The file `spec` names (canonical path), as load() finds it; empty when there is none.
  static std::string resolve(const std::string& spec, const std::vector<std::string>& search_dirs);

  const std::string& path() const { return path_; }
  const FileId& id() const { return id_; }
  // The plugin's descriptor, copied into a zeroed struct of our size (fields the plugin
  // does not know read as absent).
  const mcph_plugin_descriptor& descriptor() const { return descriptor_; }
  std::string name() const;
  std::string version() const;

 private:
  Library() = default;
  boost::dll::shared_library lib_;
  std::string path_;
  FileId id_;
  mcph_plugin_descriptor descriptor_{};
};

// The places a bare library name is looked for: the YAML plugin_paths, then the folder
// next to the executable's (build tree: build/plugins; installed: ../lib/mcp-host/plugins).
std::vector<std::string> default_search_dirs(const std::vector<std::string>& configured);

}  // namespace mcph::plugins
