// The tools every enabled plugin instance registered, under their public names
// (tool_prefix + name), filtered by each instance's allow/deny lists; their prompts (also
// under tool_prefix + name) and resources (by URI, which must be unique across
// instances). Shares its instances with the registry a reload makes from it: an instance
// lives while any registry (or request) that serves it does.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "plugins/instance.hpp"
#include "result.hpp"

namespace mcph::plugins {

// Creates the instance an entry describes, in the runner its `isolation` names. Errors
// name the instance (and the YAML line).
Result<std::unique_ptr<Instance>> create_instance(const config::PluginConfig& entry, const std::vector<std::string>& search_dirs,
                                                  Services services);

class Registry {
 public:
  struct Entry {
    std::string public_name;
    const Instance* instance;
    const Tool* tool;
    // The YAML's, else the tool's. kDefault: the host runs no task for it, but its handler
    // may hand the call over as one (host->call_continue_as_task); kForbidden: neither.
    TaskSupport task_support = TaskSupport::kDefault;
  };

  // Loads the library and creates the instance of every enabled plugin entry, in file
  // order. Any failure (library, ABI, create, name collision) is an error naming the
  // instance; instances created before it are destroyed again.
  static Result<std::unique_ptr<Registry>> load(const config::Config& config, Services services);
  // For tests: build from instances that already exist.
  static Result<std::unique_ptr<Registry>> build(std::vector<std::shared_ptr<Instance>> instances);

  // What a reload does to each instance, by name.
  struct Changes {
    std::vector<std::string> added, replaced, removed, unchanged;
    bool any() const { return !added.empty() || !replaced.empty() || !removed.empty(); }
  };
  // The registry `config` describes, made from this one: an instance whose entry (all but
  // its line) and library file are unchanged is kept as it is; the others are created
  // anew with `services` (their generation tells their leases apart). This registry is
  // not changed: on failure the new instances are destroyed again.
  Result<std::unique_ptr<Registry>> reload(const config::Config& config, Services services, Changes& changes) const;

  ~Registry();  // ends the instances no other registry shares, in reverse order of creation

  template <typename T>
  struct Item {
    std::string public_name;  // prompts: tool_prefix + name; resources: uri or uri_template
    const Instance* instance;
    const T* item;
  };
  using ResourceEntry = Item<Resource>;
  using PromptEntry = Item<Prompt>;

  const Entry* find(std::string_view public_name) const;
  // The fixed resource with this URI, else the first template (in order) it matches, with
  // the template's variables in `values`; null when none.
  const ResourceEntry* find_resource(std::string_view uri, nlohmann::json& values) const;
  const PromptEntry* find_prompt(std::string_view public_name) const;
  // In file order, then registration order: deterministic, as tools/list SHOULD be.
  const std::vector<Entry>& tools() const { return tools_; }
  const std::vector<ResourceEntry>& resources() const { return resources_; }  // fixed URIs
  const std::vector<ResourceEntry>& templates() const { return templates_; }
  const std::vector<PromptEntry>& prompts() const { return prompts_; }
  const std::vector<std::shared_ptr<Instance>>& instances() const { return instances_; }
  const Instance* instance(std::string_view name) const;  // null when none has that name
  // Every call_cancelled() turns true, so long calls end.
  void begin_shutdown();

  // Claude Code calls a tool mcp__<server>__<tool> and refuses names over 64 characters:
  // one warning per tool whose public name gets there with `server` as the server's name.
  std::vector<std::string> long_name_warnings(const std::string& server = "mcp-host") const;

 private:
  Registry() = default;
  // With `keep(entry)`: an existing instance to serve that entry with, or null to create one.
  using Keep = std::function<std::shared_ptr<Instance>(const config::PluginConfig&)>;
  static Result<std::unique_ptr<Registry>> assemble(const config::Config& config, Services services, const Keep& keep);

  std::vector<std::shared_ptr<Instance>> instances_;
  std::vector<Entry> tools_;
  std::unordered_map<std::string_view, size_t> by_name_;  // views into tools_[i].public_name
  std::vector<ResourceEntry> resources_;
  std::vector<ResourceEntry> templates_;
  std::vector<PromptEntry> prompts_;
};

}  // namespace mcph::plugins
